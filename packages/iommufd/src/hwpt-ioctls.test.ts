import { errnoOf } from '@iommu-ts/base/testing';
import { type Device, IOMMU_DOMAIN_UNMANAGED, IOMMU_READ, IOMMU_WRITE } from '@iommu-ts/iommu-core';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { type IommufdDevice, iommufdDeviceAttach, iommufdDeviceBind } from './device.js';
import type { IommufdHwptPaging } from './hw-pagetable.js';
import {
  addDirtyDevice,
  DIRTY_DRIVER_HW_INFO,
  DIRTY_DRIVER_HW_INFO_TYPE,
  type DirtyDomain,
  type DirtyEnv,
  makeDirtyEnv,
} from './hw-pagetable.test-helpers.js';
import { addDevice, BP, makeEnv, pinsAt, snapshot, userBuffer, userPa } from './io-pagetable.test-helpers.js';
import { type IommufdIoas, iommufdIoasAlloc } from './ioas.js';
import { Iommufd } from './iommufd.js';
import { IommufdObjectType } from './main.js';
import {
  IOMMU_DESTROY,
  IOMMU_GET_HW_INFO,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
} from './uapi.js';

const PROT_RW = IOMMU_READ | IOMMU_WRITE;
const BASE = 0x100_0000n;

interface DSetup {
  env: DirtyEnv;
  ioas: IommufdIoas;
  idev: IommufdDevice;
  va: bigint;
  pages: number;
}

function dsetup(pages = 70, options: Parameters<typeof makeDirtyEnv>[0] = {}): DSetup {
  const env = makeDirtyEnv(options);
  const ioas = iommufdIoasAlloc(env.file.ctx);
  const va = userBuffer(env.proc, pages);
  ioas.iopt.mapUserPages(env.proc, BASE, va, BigInt(pages) * BP, PROT_RW, 0);
  const idev = iommufdDeviceBind(env.file.ctx, addDirtyDevice(env));
  return { env, ioas, idev, va, pages };
}

function hwptAlloc(file: Iommufd, fields: Record<string, number | bigint>): { err?: string; id: number } {
  const cmd = { size: 48, flags: 0, dev_id: 0, pt_id: 0, out_hwpt_id: 0, ...fields };
  const err = errnoOf(() => file.ioctl(IOMMU_HWPT_ALLOC, cmd));
  return { ...(err === undefined ? {} : { err }), id: cmd.out_hwpt_id };
}

function objects(file: Iommufd): string[] {
  return file.ctx.listObjects().map((o) => `${o.id}:${o.type}:${o.users}`);
}

function userBytes(env: DirtyEnv, n: number): bigint {
  return env.proc.mmap(BigInt(Math.max(n, 1) + 4096), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
}

describe('IOMMU_HWPT_ALLOC', () => {
  it('checks in order and changes nothing on failure', () => {
    const s = dsetup(4);
    const f = s.env.file;
    const before = { objs: objects(f), iopt: snapshot(s.ioas.iopt, s.env.proc, [{ va: s.va, pages: 4 }]) };
    const ok = { dev_id: s.idev.id, pt_id: s.ioas.id };
    expect(hwptAlloc(f, { ...ok, __reserved: 1, dev_id: 99 }).err).toBe('EOPNOTSUPP');
    expect(hwptAlloc(f, { ...ok, data_len: 4, dev_id: 99 }).err).toBe('EINVAL');
    expect(hwptAlloc(f, { ...ok, data_type: 1, dev_id: 99 }).err).toBe('EINVAL');
    expect(hwptAlloc(f, { ...ok, dev_id: 99, pt_id: 99 }).err).toBe('ENOENT');
    expect(hwptAlloc(f, { ...ok, dev_id: s.ioas.id }).err).toBe('ENOENT');
    expect(hwptAlloc(f, { ...ok, pt_id: 99 }).err).toBe('EINVAL');
    expect(hwptAlloc(f, { ...ok, pt_id: s.idev.id }).err).toBe('EINVAL');
    expect(hwptAlloc(f, { ...ok, flags: 1 << 6 }).err).toBe('EOPNOTSUPP');
    expect(hwptAlloc(f, { ...ok, flags: IOMMU_HWPT_FAULT_ID_VALID, fault_id: 77 }).err).toBe('ENOENT');
    expect({ objs: objects(f), iopt: snapshot(s.ioas.iopt, s.env.proc, [{ va: s.va, pages: 4 }]) }).toEqual(
      before,
    );
    // Every domain allocated on the way was freed.
    expect(
      s.env.domains.filter((d) => d.type === IOMMU_DOMAIN_UNMANAGED).every((d) => d.freedCount === 1),
    ).toBe(true);
  });

  it('NEST_PARENT | DIRTY_TRACKING: a manual HWPT; plain and NEST_PARENT HWPTs mirror the IOAS', () => {
    const s = dsetup(4);
    const f = s.env.file;
    const r = hwptAlloc(f, {
      dev_id: s.idev.id,
      pt_id: s.ioas.id,
      flags: IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    });
    expect(r.err).toBeUndefined();
    const hwpt = f.ctx.getObject(r.id, IommufdObjectType.HWPT_PAGING) as IommufdHwptPaging;
    expect(hwpt.auto).toBe(false);
    expect(hwpt.nestParent).toBe(true);
    expect(s.ioas.users).toBe(2);
    const d = hwpt.domain as DirtyDomain;
    expect(d.dirtyCapable).toBe(true);
    for (let i = 0; i < 4; i++)
      expect(d.pa(BASE + BigInt(i) * BP)).toBe(BigInt(userPa(s.env.proc, s.va + BigInt(i) * BP)!));
    expect(pinsAt(s.env.proc, s.va)).toBe(1);
    // A device attaches to the manual HWPT directly; DESTROY is refused while it is attached.
    expect(iommufdDeviceAttach(s.idev, hwpt.id)).toBe(hwpt.id);
    expect(errnoOf(() => f.ioctl(IOMMU_DESTROY, { size: 8, id: hwpt.id }))).toBe('EBUSY');
    expect(errnoOf(() => f.ioctl(IOMMU_DESTROY, { size: 8, id: s.ioas.id }))).toBe('EBUSY');
  });

  it('DIRTY_TRACKING for a device whose IOMMU cannot track → EOPNOTSUPP', () => {
    const noDirty = new Set<Device>();
    const e = makeDirtyEnv({ noDirty });
    const d = addDirtyDevice(e);
    noDirty.add(d);
    const ioas = iommufdIoasAlloc(e.file.ctx);
    const idev = iommufdDeviceBind(e.file.ctx, d);
    const n = e.file.ctx.objectCount;
    expect(
      hwptAlloc(e.file, { dev_id: idev.id, pt_id: ioas.id, flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING }).err,
    ).toBe('EOPNOTSUPP');
    expect(e.file.ctx.objectCount).toBe(n);
    expect(e.domains.filter((d) => d.type === IOMMU_DOMAIN_UNMANAGED)).toHaveLength(0);
  });

  it('test IOMMU: flags without domainAllocPagingFlags → EOPNOTSUPP; nested without the op → EOPNOTSUPP; EADDRINUSE outside the aperture', () => {
    const env = makeEnv();
    const file = Iommufd.open({ iommu: env.sub, process: env.proc });
    const ioas = iommufdIoasAlloc(file.ctx);
    const idev = iommufdDeviceBind(file.ctx, addDevice(env));
    expect(
      hwptAlloc(file, { dev_id: idev.id, pt_id: ioas.id, flags: IOMMU_HWPT_ALLOC_NEST_PARENT }).err,
    ).toBe('EOPNOTSUPP');
    const r = hwptAlloc(file, { dev_id: idev.id, pt_id: ioas.id });
    expect(r.err).toBeUndefined();
    expect(
      hwptAlloc(file, { dev_id: idev.id, pt_id: r.id, data_type: 1, data_len: 8, data_uptr: 0x1000n }).err,
    ).toBe('EOPNOTSUPP');
    expect(errnoOf(() => file.ioctl(IOMMU_DESTROY, { size: 8, id: r.id }))).toBeUndefined();
    expect(ioas.users).toBe(1);
    // An area above the 48-bit aperture: adding the domain fails, nothing is left.
    const va = userBuffer(env.proc, 1);
    ioas.iopt.mapUserPages(env.proc, 1n << 50n, va, BP, PROT_RW, 0);
    const before = { objs: objects(file), iopt: snapshot(ioas.iopt, env.proc, [{ va, pages: 1 }]) };
    const frees = env.driver.calls.filter((c) => c.op === 'domain_free').length;
    expect(hwptAlloc(file, { dev_id: idev.id, pt_id: ioas.id }).err).toBe('EADDRINUSE');
    expect({ objs: objects(file), iopt: snapshot(ioas.iopt, env.proc, [{ va, pages: 1 }]) }).toEqual(before);
    expect(env.driver.calls.filter((c) => c.op === 'domain_free').length).toBe(frees + 1);
    expect(errnoOf(() => iommufdDeviceAttach(idev, ioas.id))).toBe('EADDRINUSE');
    expect(objects(file)).toEqual(before.objs);
  });
});

describe('IOMMU_GET_HW_INFO', () => {
  function hwInfo(s: DSetup, fields: Record<string, number | bigint | number[]>) {
    const cmd = {
      size: 40,
      flags: 0,
      dev_id: s.idev.id,
      data_len: 0,
      data_uptr: 0n,
      out_max_pasid_log2: 0,
      out_capabilities: 0n,
      ...fields,
    };
    const err = errnoOf(() => s.env.file.ioctl(IOMMU_GET_HW_INFO, cmd));
    return { err, cmd };
  }

  it('copies min(data_len, 12) bytes, zeroes the rest, reports the kernel length and caps', () => {
    const s = dsetup(1);
    const buf = userBytes(s.env, 32);
    const fill = () => s.env.proc.write(buf, new Uint8Array(32).fill(0xee));
    fill();
    let r = hwInfo(s, { data_len: 0, data_uptr: buf });
    expect(r.err).toBeUndefined();
    expect(r.cmd.data_len).toBe(12);
    expect((r.cmd as { out_data_type?: number }).out_data_type).toBe(DIRTY_DRIVER_HW_INFO_TYPE);
    expect(r.cmd.out_capabilities).toBe(BigInt(IOMMU_HW_CAP_DIRTY_TRACKING));
    expect(r.cmd.out_max_pasid_log2).toBe(0);
    expect([...s.env.proc.read(buf, 32)]).toEqual(new Array(32).fill(0xee));
    r = hwInfo(s, { data_len: 5, data_uptr: buf });
    expect(r.cmd.data_len).toBe(12);
    expect([...s.env.proc.read(buf, 8)]).toEqual([1, 2, 3, 4, 5, 0xee, 0xee, 0xee]);
    fill();
    r = hwInfo(s, { data_len: 20, data_uptr: buf });
    expect([...s.env.proc.read(buf, 24)]).toEqual([
      ...DIRTY_DRIVER_HW_INFO,
      ...new Array(8).fill(0),
      ...new Array(4).fill(0xee),
    ]);
    expect(hwInfo(s, { data_len: 4, data_uptr: 0x10n }).err).toBe('EFAULT');
  });

  it('errnos: flags, reserved, dev_id; drivers without the hook report type 0', () => {
    const s = dsetup(1);
    expect(hwInfo(s, { flags: 2 }).err).toBe('EOPNOTSUPP');
    expect(hwInfo(s, { __reserved: [0, 1, 0] }).err).toBe('EOPNOTSUPP');
    expect(hwInfo(s, { dev_id: s.ioas.id }).err).toBe('ENOENT');
    expect(hwInfo(s, { flags: 1, in_data_type: 5 }).err).toBe('EOPNOTSUPP');
    expect(hwInfo(s, { flags: 1, in_data_type: DIRTY_DRIVER_HW_INFO_TYPE }).err).toBeUndefined();
    const t = dsetup(1, { noHwInfo: true });
    const r = hwInfo(t, {});
    expect(r.err).toBeUndefined();
    expect((r.cmd as { out_data_type?: number }).out_data_type).toBe(0);
    expect(r.cmd.data_len).toBe(0);
  });
});

describe('dirty tracking', () => {
  function dirtyHwpt(s: DSetup, flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING): IommufdHwptPaging {
    const r = hwptAlloc(s.env.file, { dev_id: s.idev.id, pt_id: s.ioas.id, flags });
    expect(r.err).toBeUndefined();
    return s.env.file.ctx.getObject(r.id, IommufdObjectType.HWPT_PAGING) as IommufdHwptPaging;
  }
  function setTracking(s: DSetup, hwpt_id: number, flags: number): string | undefined {
    return errnoOf(() => s.env.file.ioctl(IOMMU_HWPT_SET_DIRTY_TRACKING, { size: 16, flags, hwpt_id }));
  }
  function getBitmap(s: DSetup, fields: Record<string, number | bigint>): string | undefined {
    const cmd = {
      size: 48,
      hwpt_id: 0,
      flags: 0,
      iova: BASE,
      length: 70n * BP,
      page_size: BP,
      data: 0n,
      ...fields,
    };
    return errnoOf(() => s.env.file.ioctl(IOMMU_HWPT_GET_DIRTY_BITMAP, cmd));
  }

  it('SET_DIRTY_TRACKING errnos, and enabling clears old dirty state', () => {
    const s = dsetup(70);
    const hwpt = dirtyHwpt(s);
    const plain = dirtyHwpt(s, 0);
    expect(setTracking(s, hwpt.id, 2)).toBe('EOPNOTSUPP');
    expect(setTracking(s, s.ioas.id, 1)).toBe('ENOENT');
    expect(setTracking(s, plain.id, 1)).toBe('EINVAL');
    const d = hwpt.domain as DirtyDomain;
    d.dirty.add(BASE);
    expect(setTracking(s, hwpt.id, 1)).toBeUndefined();
    expect(d.tracking).toBe(true);
    expect(d.dirty.size).toBe(0);
    expect(setTracking(s, hwpt.id, 1)).toBeUndefined();
    expect(setTracking(s, hwpt.id, 0)).toBeUndefined();
    expect(d.tracking).toBe(false);
    // A domain without dirty ops (the test IOMMU's) answers EOPNOTSUPP.
    const env = makeEnv();
    const file = Iommufd.open({ iommu: env.sub, process: env.proc });
    const ioas = iommufdIoasAlloc(file.ctx);
    const idev = iommufdDeviceBind(file.ctx, addDevice(env));
    const id = iommufdDeviceAttach(idev, ioas.id);
    expect(
      errnoOf(() => file.ioctl(IOMMU_HWPT_SET_DIRTY_TRACKING, { size: 16, flags: 1, hwpt_id: id })),
    ).toBe('EOPNOTSUPP');
    expect(
      errnoOf(() =>
        file.ioctl(IOMMU_HWPT_GET_DIRTY_BITMAP, {
          size: 48,
          hwpt_id: id,
          iova: 0n,
          length: BP,
          page_size: BP,
        }),
      ),
    ).toBe('EOPNOTSUPP');
  });

  it('GET_DIRTY_BITMAP writes LE u64 bits at any alignment, clears unless NO_CLEAR', () => {
    const s = dsetup(70);
    const hwpt = dirtyHwpt(s);
    expect(setTracking(s, hwpt.id, 1)).toBeUndefined();
    const d = hwpt.domain as DirtyDomain;
    for (const p of [0, 2, 5, 64, 65, 69]) d.dirty.add(BASE + BigInt(p) * BP);
    const mem = userBytes(s.env, 64);
    const data = mem + 3n; // neither page nor u64 aligned
    const zero = () => s.env.proc.write(mem, new Uint8Array(32).fill(0));
    zero();
    s.env.proc.write(mem + 2n, new Uint8Array([0x80])); // the byte before the bitmap
    expect(
      getBitmap(s, { hwpt_id: hwpt.id, data, flags: IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR }),
    ).toBeUndefined();
    const expected = [0x25, 0, 0, 0, 0, 0, 0, 0, 0x23];
    expect([...s.env.proc.read(mem + 2n, 12)]).toEqual([0x80, ...expected, 0, 0]);
    expect(d.dirty.size).toBe(6);
    zero();
    expect(getBitmap(s, { hwpt_id: hwpt.id, data })).toBeUndefined();
    expect([...s.env.proc.read(data, 9)]).toEqual(expected);
    expect(d.dirty.size).toBe(0);
    zero();
    expect(getBitmap(s, { hwpt_id: hwpt.id, data })).toBeUndefined();
    expect([...s.env.proc.read(data, 9)]).toEqual(new Array(9).fill(0));
    // Bits are OR-ed into the buffer, relative to the requested iova, with 2-page bits.
    s.env.proc.write(data, new Uint8Array([0x40]));
    d.dirty.add(BASE + 4n * BP);
    d.dirty.add(BASE + 5n * BP);
    expect(
      getBitmap(s, { hwpt_id: hwpt.id, data, iova: BASE + 2n * BP, length: 8n * BP, page_size: 2n * BP }),
    ).toBe(undefined);
    expect([...s.env.proc.read(data, 2)]).toEqual([0x42, 0]);
  });

  it('GET_DIRTY_BITMAP errnos', () => {
    const s = dsetup(70);
    const hwpt = dirtyHwpt(s);
    const id = hwpt.id;
    const data = userBytes(s.env, 16);
    expect(getBitmap(s, { hwpt_id: id, data, flags: 2 })).toBe('EOPNOTSUPP');
    expect(getBitmap(s, { hwpt_id: id, data, __reserved: 1 })).toBe('EOPNOTSUPP');
    expect(getBitmap(s, { hwpt_id: s.ioas.id, data })).toBe('ENOENT');
    expect(getBitmap(s, { hwpt_id: id, data, iova: 2n ** 64n - BP, length: 2n * BP })).toBe('EOVERFLOW');
    expect(getBitmap(s, { hwpt_id: id, data, iova: BASE + 0x800n })).toBe('EINVAL');
    expect(getBitmap(s, { hwpt_id: id, data, page_size: 0n })).toBe('EINVAL');
    expect(getBitmap(s, { hwpt_id: id, data, page_size: 4n * BP, length: 6n * BP })).toBe('EINVAL');
    // A bad bitmap pointer or a gap is not reported (Linux drops the walk's error).
    (hwpt.domain as DirtyDomain).dirty.add(BASE);
    expect(getBitmap(s, { hwpt_id: id, data: 0x10n })).toBeUndefined();
    expect((hwpt.domain as DirtyDomain).dirty.size).toBe(1);
  });
});

describe('IOMMU_HWPT_INVALIDATE', () => {
  it('errnos, entry_num written back as 0', () => {
    const s = dsetup(1);
    const r = hwptAlloc(s.env.file, { dev_id: s.idev.id, pt_id: s.ioas.id });
    const inv = (fields: Record<string, number | bigint>) => {
      const cmd = {
        size: 32,
        hwpt_id: r.id,
        data_uptr: 0x1000n,
        data_type: 0,
        entry_len: 8,
        entry_num: 3,
        ...fields,
      };
      const err = errnoOf(() => s.env.file.ioctl(IOMMU_HWPT_INVALIDATE, cmd));
      return { err, n: cmd.entry_num };
    };
    expect(inv({ __reserved: 1 })).toEqual({ err: 'EOPNOTSUPP', n: 0 });
    expect(inv({ data_uptr: 0n })).toEqual({ err: 'EINVAL', n: 0 });
    expect(inv({ entry_len: 0 })).toEqual({ err: 'EINVAL', n: 0 });
    expect(inv({ hwpt_id: 99 })).toEqual({ err: 'ENOENT', n: 0 });
    expect(inv({})).toEqual({ err: 'EINVAL', n: 0 });
  });
});
