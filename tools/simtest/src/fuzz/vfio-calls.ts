/**
 * Calls on the VFIO files: the container's type1 ioctls (also answered by /dev/iommu), the group
 * file's and the device file's, and unknown numbers. Structs are generated field by field with an
 * `argsz` below, at or above the struct, and passed as a user pointer or a plain object; the
 * integer arguments (CHECK_EXTENSION, SET_IOMMU, SET_CONTAINER's fd) and the device name strings
 * are generated too.
 */

import { _IO, isErrnoError, type UapiStruct } from '@iommu-ts/base';
import type { Iommufd } from '@iommu-ts/iommufd';
import {
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_GET_INFO,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_BIND,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DISABLE,
  VFIO_IOMMU_ENABLE,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNBIND,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE,
  vfioDeviceInfoStruct,
  vfioGroupStatusStruct,
  vfioIommuType1DmaMapStruct,
  vfioIommuType1DmaUnmapStruct,
  vfioIommuType1InfoStruct,
} from '@iommu-ts/vfio-compat';
import { choosePlacement, idValue, sizeWord } from './args.js';
import type { FuzzCall, FuzzGenerator } from './call.js';
import { type ArgPlacement, placeArg, pointer } from './memory.js';
import { type FuzzValues, fillFields, PAGE, U32_MAX } from './values.js';
import { BUF_PAGES, FilePool, type FuzzWorld } from './world.js';

/** The container ioctls, by name. */
export const VFIO_CONTAINER_IOCTLS: Readonly<Record<string, number>> = {
  VFIO_GET_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_SET_IOMMU,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_IOMMU_ENABLE,
  VFIO_IOMMU_DISABLE,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_BIND,
  VFIO_IOMMU_UNBIND,
};

/** The group file's ioctls, by name. */
export const VFIO_GROUP_IOCTLS: Readonly<Record<string, number>> = {
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_GROUP_GET_DEVICE_FD,
};

/** The device file's ioctls, by name. */
export const VFIO_DEVICE_IOCTLS: Readonly<Record<string, number>> = { VFIO_DEVICE_GET_INFO };

const BIND_SIZE = 20;

interface VfioFile {
  ioctl(request: number, arg?: never): number;
}

/** A generic call with a fixed argument (integer, string or nothing). */
function plainCall(
  label: string,
  name: string,
  file: VfioFile,
  request: number,
  arg: unknown,
  onOk?: (ret: number) => void,
): FuzzCall {
  return {
    file: label,
    ioctl: name,
    bytes: new Uint8Array(0),
    invoke: () => file.ioctl(request, arg as never),
    ...(onOk === undefined ? {} : { onSuccess: onOk }),
  };
}

/**
 * VFIO_IOMMU_UNMAP_DMA on the iommufd file unmaps from its compat IOAS, which may be any IOAS the
 * fuzzer mapped into (IOMMU_VFIO_IOAS SET): forget every believed mapping the range touches (all
 * of them with VFIO_DMA_UNMAP_FLAG_ALL), whatever IOAS it is in.
 */
function forgetCompatUnmap(world: FuzzWorld, label: string, request: number, bytes: Uint8Array): void {
  if (label !== 'iommufd' || request !== VFIO_IOMMU_UNMAP_DMA || bytes.length < 24) return;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const all = (view.getUint32(4, true) & 2) !== 0;
  const iova = view.getBigUint64(8, true);
  const size = view.getBigUint64(16, true);
  world.maps = all ? [] : world.maps.filter((m) => m.iova + m.length <= iova || m.iova >= iova + size);
}

/** A call with a struct argument in bytes, as a pointer or an object. */
function structCall(
  world: FuzzWorld,
  label: string,
  name: string,
  file: VfioFile,
  request: number,
  bytes: Uint8Array,
  toObject: ((b: Uint8Array) => object) | null,
  placement: ArgPlacement,
  onOk?: (back: Uint8Array) => void,
): FuzzCall {
  return {
    file: label,
    ioctl: name,
    bytes,
    invoke() {
      try {
        if (placement.kind === 'object' && toObject !== null)
          return file.ioctl(request, toObject(bytes) as never);
        return file.ioctl(request, placeArg(world, bytes, placement) as never);
      } catch (e) {
        // UNMAP_DMA unmaps before it writes the size back: EFAULT comes after the unmap.
        if (isErrnoError(e) && e.code === 'EFAULT') forgetCompatUnmap(world, label, request, bytes);
        throw e;
      }
    },
    onSuccess() {
      forgetCompatUnmap(world, label, request, bytes);
      onOk?.(bytes);
    },
    remake: (b) => structCall(world, label, name, file, request, b, toObject, placement, onOk),
  };
}

function decoder(struct: UapiStruct<object>): (b: Uint8Array) => object {
  return (b) => {
    const full = new Uint8Array(struct.size);
    full.set(b.subarray(0, struct.size));
    return struct.decode(full);
  };
}

function vfioStructBytes(
  v: FuzzValues,
  world: FuzzWorld,
  pool: FilePool,
  struct: UapiStruct<object>,
  minsz: number,
): Uint8Array {
  const bytes = new Uint8Array(struct.size);
  const view = new DataView(bytes.buffer);
  fillFields(view, 0, struct.fields, (name, type) => {
    if (name === 'flags') return v.flags(3);
    if (name === 'vaddr') return pointer(v, world);
    if (name === 'iova') return v.iova(pool.iovas);
    if (name === 'size' && type === 'u64') return v.length(PAGE * BigInt(BUF_PAGES));
    if (name === 'cap_offset' || name === 'pad') return v.chance(0.9) ? 0 : v.u32();
    return type === 'u64' ? v.u64() : v.u32();
  });
  view.setUint32(0, vfioArgsz(v, struct.size, minsz), true);
  return bytes;
}

function vfioArgsz(v: FuzzValues, size: number, minsz: number): number {
  return v.chance(0.1) ? v.pick([128, 256, 4096, 8192]) : sizeWord(v, size, minsz);
}

/**
 * One call of a VFIO container ioctl (or an unknown number below iommufd's) on a file that
 * answers them.
 * @param v - value source
 * @param world - the world
 * @param label - report label of the file (`vfio` for the container, `iommufd` for /dev/iommu)
 * @param file - the file
 * @param pool - what the file returned before
 * @param onOk - told of every successful request
 * @returns the call
 */
export function vfioContainerCall(
  v: FuzzValues,
  world: FuzzWorld,
  label: string,
  file: Iommufd,
  pool: FilePool,
  onOk?: (request: number) => void,
): FuzzCall {
  const placement = choosePlacement(v);
  const f = file as unknown as VfioFile;
  const r = v.int(100);
  if (r < 4) {
    const nr = v.chance(0.7) ? 100 + v.int(28) : v.int(0x80);
    const req = _IO(VFIO_TYPE, nr);
    const name =
      Object.entries(VFIO_CONTAINER_IOCTLS).find(([, q]) => q === req)?.[0] ??
      `unknown 0x${req.toString(16)}`;
    return plainCall(
      label,
      name,
      f,
      req,
      v.chance(0.5) ? 0 : placeArg(world, new Uint8Array(32), { kind: 'arg', offset: 0 }),
    );
  }
  if (r < 8) return plainCall(label, 'VFIO_GET_API_VERSION', f, VFIO_GET_API_VERSION, undefined);
  if (r < 14)
    return plainCall(
      label,
      'VFIO_CHECK_EXTENSION',
      f,
      VFIO_CHECK_EXTENSION,
      v.chance(0.8) ? v.int(12) : v.u32() | 0,
    );
  if (r < 18)
    return plainCall(
      label,
      'VFIO_SET_IOMMU',
      f,
      VFIO_SET_IOMMU,
      v.chance(0.9) ? v.pick([1, 3, 3, 3, 0, 2, 6, 8]) : v.u32() | 0,
      () => onOk?.(VFIO_SET_IOMMU),
    );
  if (r < 26) {
    const bytes = vfioStructBytes(v, world, pool, vfioIommuType1InfoStruct as UapiStruct<object>, 16);
    return structCall(
      world,
      label,
      'VFIO_IOMMU_GET_INFO',
      f,
      VFIO_IOMMU_GET_INFO,
      bytes,
      decoder(vfioIommuType1InfoStruct as UapiStruct<object>),
      placement,
    );
  }
  if (r < 58) {
    const bytes = vfioStructBytes(v, world, pool, vfioIommuType1DmaMapStruct as UapiStruct<object>, 32);
    return structCall(
      world,
      label,
      'VFIO_IOMMU_MAP_DMA',
      f,
      VFIO_IOMMU_MAP_DMA,
      bytes,
      decoder(vfioIommuType1DmaMapStruct as UapiStruct<object>),
      placement,
      (b) => {
        FilePool.remember(pool.iovas, new DataView(b.buffer).getBigUint64(16, true));
        onOk?.(VFIO_IOMMU_MAP_DMA);
      },
    );
  }
  if (r < 84) {
    const bytes = vfioStructBytes(v, world, pool, vfioIommuType1DmaUnmapStruct as UapiStruct<object>, 24);
    return structCall(
      world,
      label,
      'VFIO_IOMMU_UNMAP_DMA',
      f,
      VFIO_IOMMU_UNMAP_DMA,
      bytes,
      decoder(vfioIommuType1DmaUnmapStruct as UapiStruct<object>),
      placement,
      () => onOk?.(VFIO_IOMMU_UNMAP_DMA),
    );
  }
  if (r < 88) {
    const req = v.pick([VFIO_IOMMU_ENABLE, VFIO_IOMMU_DISABLE, VFIO_IOMMU_DIRTY_PAGES]);
    const name = Object.entries(VFIO_CONTAINER_IOCTLS).find(([, q]) => q === req)?.[0] ?? 'unknown';
    return plainCall(label, name, f, req, placeArg(world, new Uint8Array(24), { kind: 'arg', offset: 0 }));
  }
  const bind = v.chance(0.5);
  const bytes = new Uint8Array(BIND_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, vfioArgsz(v, BIND_SIZE, 8), true);
  view.setUint32(4, v.flags(1), true);
  view.setUint32(8, v.flags(1), true);
  view.setUint32(12, v.chance(0.5) ? v.int(8) : v.u32(), true);
  view.setInt32(16, v.chance(0.7) ? world.proc.pid : v.pick([0, -1, 99999, idValue(v, pool)]), true);
  const toObject = (b: Uint8Array): object => {
    const d = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return {
      argsz: d.getUint32(0, true),
      flags: d.getUint32(4, true),
      data: { flags: d.getUint32(8, true), pasid: d.getUint32(12, true), pid: d.getInt32(16, true) },
    };
  };
  const req = bind ? VFIO_IOMMU_BIND : VFIO_IOMMU_UNBIND;
  return structCall(
    world,
    label,
    bind ? 'VFIO_IOMMU_BIND' : 'VFIO_IOMMU_UNBIND',
    f,
    req,
    bytes,
    toObject,
    placement,
  );
}

/**
 * The container's calls: mostly its VFIO ioctls; the iommufd ioctls it also answers come from
 * the iommufd generator labelled `vfio`.
 * @param world - the world
 * @param weight - relative weight
 * @returns the generator
 */
export function vfioContainerGenerator(world: FuzzWorld, weight: number): FuzzGenerator {
  return {
    weight,
    next(v) {
      const file = world.container;
      if (file === null) return null;
      return vfioContainerCall(v, world, 'vfio', file, world.vfioPool);
    },
  };
}

function ownFds(world: FuzzWorld): number[] {
  return [world.container?.fd, world.iommufd?.fd, world.group?.fd, world.device?.fd].filter(
    (fd): fd is number => fd !== undefined,
  );
}

/**
 * The group file's calls.
 * @param world - the world
 * @param weight - relative weight
 * @returns the generator
 */
export function vfioGroupGenerator(world: FuzzWorld, weight: number): FuzzGenerator {
  return {
    weight,
    next(v) {
      const group = world.group;
      if (group === null) return null;
      const f = group as unknown as VfioFile;
      const r = v.int(100);
      if (r < 5) {
        const req = _IO(VFIO_TYPE, v.chance(0.7) ? 100 + v.int(28) : v.int(256));
        const name =
          Object.entries(VFIO_GROUP_IOCTLS).find(([, q]) => q === req)?.[0] ??
          `unknown 0x${req.toString(16)}`;
        return plainCall('vfio', name, f, req, 0n);
      }
      if (r < 30) {
        const s = vfioGroupStatusStruct as UapiStruct<object>;
        const bytes = new Uint8Array(s.size);
        const view = new DataView(bytes.buffer);
        view.setUint32(0, vfioArgsz(v, s.size, 8), true);
        view.setUint32(4, v.flags(2), true);
        return structCall(
          world,
          'vfio',
          'VFIO_GROUP_GET_STATUS',
          f,
          VFIO_GROUP_GET_STATUS,
          bytes,
          decoder(s),
          choosePlacement(v),
        );
      }
      if (r < 50) {
        const own = ownFds(world);
        const fd =
          v.chance(0.8) && own.length > 0
            ? v.pick(own)
            : v.pick([-1, 0, 999, 0x7fff_ffff, ...world.vfioPool.fds]);
        const bytes = new Uint8Array(4);
        new DataView(bytes.buffer).setInt32(0, fd, true);
        const placement = choosePlacement(v);
        return structCall(
          world,
          'vfio',
          'VFIO_GROUP_SET_CONTAINER',
          f,
          VFIO_GROUP_SET_CONTAINER,
          bytes,
          (b) => ({ fd: new DataView(b.buffer, b.byteOffset).getInt32(0, true) }),
          placement,
        );
      }
      if (r < 65)
        return plainCall('vfio', 'VFIO_GROUP_UNSET_CONTAINER', f, VFIO_GROUP_UNSET_CONTAINER, undefined);
      // GET_DEVICE_FD: the name as a string, or a pointer to it (terminated, unterminated at the
      // guard page, or faulting).
      const real = world.vfioDeviceName;
      const learnFd = (ret: number) => FilePool.remember(world.vfioPool.fds, ret);
      const kind = v.int(6);
      if (kind < 3) {
        const name = v.pick([
          real,
          real,
          real,
          '',
          'bogus',
          `${real}\0junk`,
          real.toUpperCase(),
          'x'.repeat(5000),
        ]);
        return plainCall('vfio', 'VFIO_GROUP_GET_DEVICE_FD', f, VFIO_GROUP_GET_DEVICE_FD, name, learnFd);
      }
      const text = new TextEncoder().encode(v.chance(0.7) ? real : 'nope');
      if (kind < 5) {
        const bytes = new Uint8Array(text.length + 1);
        bytes.set(text);
        const va = placeArg(world, bytes, { kind: 'arg', offset: v.int(16) });
        return plainCall('vfio', 'VFIO_GROUP_GET_DEVICE_FD', f, VFIO_GROUP_GET_DEVICE_FD, va, learnFd);
      }
      const va = v.chance(0.5) ? placeArg(world, text, { kind: 'edge', short: 0 }) : v.pick([0n, world.hole]);
      return plainCall('vfio', 'VFIO_GROUP_GET_DEVICE_FD', f, VFIO_GROUP_GET_DEVICE_FD, va, learnFd);
    },
  };
}

/**
 * The device file's calls.
 * @param world - the world
 * @param weight - relative weight
 * @returns the generator
 */
export function vfioDeviceGenerator(world: FuzzWorld, weight: number): FuzzGenerator {
  return {
    weight,
    next(v) {
      const device = world.device;
      if (device === null) return null;
      const f = device as unknown as VfioFile;
      if (v.chance(0.1)) {
        const req = v.chance(0.7) ? _IO(VFIO_TYPE, 100 + v.int(28)) : v.u32();
        const name =
          req === VFIO_DEVICE_GET_INFO ? 'VFIO_DEVICE_GET_INFO' : `unknown 0x${(req >>> 0).toString(16)}`;
        return plainCall('vfio', name, f, req, 0n);
      }
      const s = vfioDeviceInfoStruct as UapiStruct<object>;
      const bytes = new Uint8Array(s.size);
      const view = new DataView(bytes.buffer);
      view.setUint32(0, v.chance(0.1) ? U32_MAX : vfioArgsz(v, s.size, 16), true);
      view.setUint32(4, v.flags(9), true);
      return structCall(
        world,
        'vfio',
        'VFIO_DEVICE_GET_INFO',
        f,
        VFIO_DEVICE_GET_INFO,
        bytes,
        decoder(s),
        choosePlacement(v),
      );
    },
  };
}
