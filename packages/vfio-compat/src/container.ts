/**
 * The VFIO type1 container provided by iommufd (drivers/iommu/iommufd/vfio_compat.c): opening
 * `/dev/vfio/vfio` gives an iommufd context in process (MM) accounting mode, and the container
 * ioctls (numbers below iommufd's 0x80) reach {@link iommufdVfioIoctl}, which runs them on the
 * context's compatibility IOAS.
 */

import { ErrnoError } from '@iommu-ts/base';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE, type IommuSubsystem } from '@iommu-ts/iommu-core';
import {
  IOPT_PAGES_ACCOUNT_MM,
  type IoctlArg,
  Iommufd,
  type IommufdCtx,
  IommufdHwptPaging,
  type IommufdIoas,
  type IoptUnmapResult,
  type UserMemory,
} from '@iommu-ts/iommufd';
import { PAGE_SIZE, type Process } from '@iommu-ts/mm';
import { iommufdVfioCompatIoas } from './compat-ioas.js';
import { vfioIommuBind } from './sva-bind.js';
import { type VfioUserArg, vfioUserArg } from './user-arg.js';
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_BIND,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNBIND,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  vfioIommuType1DmaMapStruct,
  vfioIommuType1DmaUnmapStruct,
  vfioIommuType1InfoCapIovaRangeStruct,
  vfioIommuType1InfoDmaAvailStruct,
  vfioIommuType1InfoStruct,
  vfioIovaRangeStruct,
} from './vfio-uapi.js';

export { iommufdVfioCompatIoasCreate, iommufdVfioCompatIoasGetId } from './compat-ioas.js';

/**
 * Whether the modelled kernel is built with VFIO no-IOMMU support (`CONFIG_VFIO_NOIOMMU`). It is
 * not: CHECK_EXTENSION(NOIOMMU) answers 0 and SET_IOMMU(NOIOMMU) is EINVAL.
 */
const CONFIG_VFIO_NOIOMMU = false;

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const U32_MAX = 0xffff_ffff;
const PAGE = BigInt(PAGE_SIZE);

/** What {@link openVfioContainer} takes. */
export interface VfioContainerOpenOptions {
  /** The IOMMU subsystem devices and domains come from. */
  readonly iommu: IommuSubsystem;
  /** The opening process: the fd goes into its table, user pointers point into its memory. */
  readonly process: Process;
  /** A selftest kernel's iommufd (IOMMU_TEST_CMD and the mock driver available); default false. */
  readonly selftest?: boolean;
}

/**
 * `open("/dev/vfio/vfio", O_RDWR)` on a kernel where iommufd provides the VFIO container: an
 * iommufd file whose context starts in process (MM) accounting mode and whose requests below 0x80
 * go to {@link iommufdVfioIoctl}. Every iommufd ioctl works on it too, as on `/dev/iommu`.
 *
 * @param options - subsystem, process, selftest flag
 * @returns the open container
 * @throws ErrnoError `EMFILE` (the process's fd table is full), `ENOMEM` (fail_nth point
 *   `iommufd.ctx_alloc`)
 */
export function openVfioContainer(options: VfioContainerOpenOptions): Iommufd {
  return Iommufd.open({
    iommu: options.iommu,
    process: options.process,
    ...(options.selftest === undefined ? {} : { selftest: options.selftest }),
    accountMode: IOPT_PAGES_ACCOUNT_MM,
    vfioIoctl: iommufdVfioIoctl,
  });
}

/** The numeric value of an integer ioctl argument (`unsigned long arg`). */
function integerArg(arg: IoctlArg): bigint {
  if (arg === undefined || arg === null) return 0n;
  if (typeof arg === 'bigint') return BigInt.asUintN(64, arg);
  if (typeof arg === 'number' && Number.isSafeInteger(arg)) return BigInt.asUintN(64, BigInt(arg));
  throw new TypeError(`ioctl argument ${String(arg)} is not an integer`);
}

/** Run a struct handler and copy its output back into an object argument, also on failure. */
function withArg<T>(arg: VfioUserArg<T>, fn: (arg: VfioUserArg<T>) => number): number {
  try {
    return fn(arg);
  } finally {
    arg.finish();
  }
}

/**
 * `iommufd_vfio_cc_iommu`: 1 if every paging HWPT of the compatibility IOAS enforces cache
 * coherency (also with none), else 0.
 */
function vfioCcIommu(ictx: IommufdCtx): number {
  const ioas = iommufdVfioCompatIoas(ictx);
  for (const hwpt of ioas.hwptList) {
    if (hwpt instanceof IommufdHwptPaging && !hwpt.enforceCacheCoherency) return 0;
  }
  return 1;
}

/** `iommufd_vfio_check_extension`. */
function vfioCheckExtension(ictx: IommufdCtx, type: bigint): number {
  switch (type) {
    case BigInt(VFIO_TYPE1_IOMMU):
    case BigInt(VFIO_TYPE1v2_IOMMU):
    case BigInt(VFIO_UNMAP_ALL):
      return 1;
    case BigInt(VFIO_NOIOMMU_IOMMU):
      return CONFIG_VFIO_NOIOMMU ? 1 : 0;
    case BigInt(VFIO_DMA_CC_IOMMU):
      return vfioCcIommu(ictx);
    default:
      // TYPE1_NESTING, UPDATE_VADDR, SPAPR, EEH and unknown extensions: not offered.
      return 0;
  }
}

/** `iommufd_vfio_set_iommu`. */
function vfioSetIommu(ictx: IommufdCtx, type: bigint): number {
  if (type !== BigInt(VFIO_TYPE1_IOMMU) && type !== BigInt(VFIO_TYPE1v2_IOMMU)) {
    throw new ErrnoError('EINVAL', `IOMMU type ${type} is not type1 or type1v2`);
  }
  const ioas = iommufdVfioCompatIoas(ictx);
  // TYPE1 may unmap inside a mapping: map every page on its own so that any page can be cut off.
  if (type === BigInt(VFIO_TYPE1_IOMMU)) ioas.iopt.disableLargePages();
  return 0;
}

/**
 * `iommufd_get_pagesizes`: the AND of the domains' page-size bitmaps (all ones with none), sizes
 * below PAGE_SIZE folded into PAGE_SIZE, then at least the IOAS's IOVA alignment.
 */
function vfioPageSizes(ioas: IommufdIoas): bigint {
  let bitmap = U64_MAX;
  for (const domain of ioas.iopt.domains) bitmap &= domain.pgsizeBitmap;
  if ((bitmap & (PAGE - 1n)) !== 0n) bitmap = (bitmap & ~(PAGE - 1n) & U64_MAX) | PAGE;
  const align = BigInt(ioas.iopt.iovaAlignment);
  return bitmap > align ? bitmap : align;
}

/** `iommufd_fill_cap_dma_avail`: writes the 12-byte cap if it fits; returns its size. */
function fillCapDmaAvail(arg: VfioUserArg<unknown>, at: number, avail: number): number {
  const size = vfioIommuType1InfoDmaAvailStruct.size;
  if (avail >= size) {
    arg.write(
      at,
      vfioIommuType1InfoDmaAvailStruct.encode({
        header: { id: VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version: 1, next: 0 },
        avail: U32_MAX,
      }),
    );
  }
  return size;
}

/**
 * `iommufd_fill_cap_iova`: each range is written as soon as the capability up to and including it
 * fits, the fixed part only if the whole capability fits; returns the full size.
 */
function fillCapIova(arg: VfioUserArg<unknown>, ioas: IommufdIoas, at: number, avail: number): number {
  const fixed = vfioIommuType1InfoCapIovaRangeStruct.size;
  const elem = vfioIovaRangeStruct.size;
  let nr = 0;
  for (const r of ioas.iopt.iovaRanges()) {
    if (avail >= fixed + elem * (nr + 1)) {
      arg.write(at + fixed + elem * nr, vfioIovaRangeStruct.encode({ start: r.start, end: r.last }));
    }
    nr++;
  }
  const size = fixed + elem * nr;
  if (avail >= size) {
    arg.write(
      at,
      vfioIommuType1InfoCapIovaRangeStruct.encode({
        header: { id: VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: 1, next: 0 },
        nr_iovas: nr,
        reserved: 0,
      }),
    );
  }
  return size;
}

/** `iommufd_vfio_iommu_get_info`. */
function vfioIommuGetInfo(ictx: IommufdCtx, arg: VfioUserArg<unknown>): number {
  const infoStruct = vfioIommuType1InfoStruct;
  const minsz = infoStruct.offsetofend('iova_pgsizes');
  const head = new Uint8Array(infoStruct.size);
  head.set(arg.read(0, minsz));
  const info = infoStruct.decode(head);
  if (info.argsz < minsz) throw new ErrnoError('EINVAL', `argsz ${info.argsz} is below ${minsz}`);
  const outsz = Math.min(info.argsz, infoStruct.size);
  const ioas = iommufdVfioCompatIoas(ictx);
  info.flags = VFIO_IOMMU_INFO_PGSIZES;
  info.iova_pgsizes = vfioPageSizes(ioas);
  info.cap_offset = 0;

  let total = infoStruct.size;
  let lastCap = -1;
  const fills = [
    (at: number, avail: number) => fillCapDmaAvail(arg, at, avail),
    (at: number, avail: number) => fillCapIova(arg, ioas, at, avail),
  ];
  for (const fill of fills) {
    const avail = info.argsz > total ? info.argsz - total : 0;
    let capSize = fill(total, avail);
    capSize = (capSize + 7) & ~7;
    if (lastCap >= 0 && info.argsz >= total) {
      const next = new Uint8Array(4);
      new DataView(next.buffer).setUint32(0, total, true);
      arg.write(lastCap + 4, next);
    }
    lastCap = total;
    total += capSize;
  }
  if (info.argsz >= total) info.cap_offset = infoStruct.size;
  info.argsz = total;
  info.flags |= VFIO_IOMMU_INFO_CAPS;
  arg.write(0, infoStruct.encode(info).subarray(0, outsz));
  return 0;
}

/** `iommufd_vfio_map_dma`. */
function vfioMapDma(ictx: IommufdCtx, arg: VfioUserArg<unknown>): number {
  const s = vfioIommuType1DmaMapStruct;
  const map = s.decode(arg.read(0, s.size));
  const supported = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
  if (map.argsz < s.size || (map.flags & ~supported) !== 0) {
    throw new ErrnoError('EINVAL', `bad argsz ${map.argsz} or flags 0x${map.flags.toString(16)}`);
  }
  let prot = IOMMU_CACHE;
  if (map.flags & VFIO_DMA_MAP_FLAG_READ) prot |= IOMMU_READ;
  if (map.flags & VFIO_DMA_MAP_FLAG_WRITE) prot |= IOMMU_WRITE;
  const ioas = iommufdVfioCompatIoas(ictx);
  ioas.iopt.mapUserPages(ictx.process, map.iova, map.vaddr, map.size, prot, 0, ictx.accountMode);
  return 0;
}

/** `iommufd_vfio_unmap_dma`. */
function vfioUnmapDma(ictx: IommufdCtx, arg: VfioUserArg<unknown>): number {
  const s = vfioIommuType1DmaUnmapStruct;
  const unmap = s.decode(arg.read(0, s.size));
  if (unmap.argsz < s.size || (unmap.flags & ~VFIO_DMA_UNMAP_FLAG_ALL) !== 0) {
    throw new ErrnoError('EINVAL', `bad argsz ${unmap.argsz} or flags 0x${unmap.flags.toString(16)}`);
  }
  const ioas = iommufdVfioCompatIoas(ictx);
  const all = (unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL) !== 0;
  if (all && (unmap.iova !== 0n || unmap.size !== 0n)) {
    throw new ErrnoError('EINVAL', 'UNMAP_ALL with a non-zero iova or size');
  }
  if (!all && ioas.iopt.largePagesDisabled) {
    // TYPE1: cut at the range's last byte, then just below its first byte (not needed at IOVA 0),
    // so that the walk below removes exactly the range. Errors here are not copied out.
    const cuts = [BigInt.asUintN(64, unmap.iova + unmap.size - 1n)];
    if (unmap.iova !== 0n) cuts.push(unmap.iova - 1n);
    ioas.iopt.cutIova(cuts);
  }
  const result: IoptUnmapResult = { unmapped: 0n };
  let error: unknown;
  try {
    if (all) ioas.iopt.unmapAll(result);
    else ioas.iopt.unmapIova(unmap.iova, unmap.size, result);
  } catch (e) {
    error = e;
  }
  // `size` reports the bytes unmapped, also when the walk failed part way.
  unmap.size = result.unmapped;
  arg.write(0, s.encode(unmap));
  if (error !== undefined) throw error;
  return 0;
}

/**
 * The VFIO container ioctls of an iommufd file (`iommufd_vfio_ioctl`), the fallback for requests
 * outside iommufd's command table. Give it as `vfioIoctl` to `Iommufd.open`, or use
 * {@link openVfioContainer}.
 *
 * @remarks
 * - `VFIO_GET_API_VERSION` returns 0.
 * - `VFIO_CHECK_EXTENSION` (arg: the extension number): 1 for TYPE1, TYPE1v2 and UNMAP_ALL; DMA_CC
 *   1 if every paging HWPT on the compatibility IOAS enforces cache coherency (ENODEV without one);
 *   0 for everything else, NOIOMMU included (no `CONFIG_VFIO_NOIOMMU`).
 * - `VFIO_SET_IOMMU` (arg: the type): EINVAL unless TYPE1 or TYPE1v2; ENODEV without the IOAS;
 *   TYPE1 disables huge pages on the IOAS (EINVAL if it already has domains and areas).
 * - `VFIO_IOMMU_GET_INFO`: page sizes plus the DMA_AVAIL (U32_MAX) and IOVA_RANGE capabilities,
 *   written only as far as `argsz` reaches; `argsz` comes back as the size of everything.
 * - `VFIO_IOMMU_MAP_DMA`: a fixed-IOVA map of the caller's memory with the context's accounting.
 * - `VFIO_IOMMU_UNMAP_DMA`: ALL, or a range; in TYPE1 mode the areas are first cut at the range's
 *   ends. `size` comes back as the bytes unmapped, also when the unmap walk fails.
 * - `VFIO_IOMMU_BIND` / `VFIO_IOMMU_UNBIND` (seed SVA series): `vfioIommuBind`.
 * - Anything else (DIRTY_PAGES, SPAPR ENABLE/DISABLE, unknown numbers): ENOTTY.
 *
 * Struct arguments are a user address of the struct or a plain object with its C field names
 * (u64 as bigint), into which out fields are written back.
 *
 * @param request - the request value, unsigned
 * @param arg - an integer (CHECK_EXTENSION, SET_IOMMU), or the struct (address or object)
 * @param userMemory - the caller's memory
 * @param ictx - the iommufd context of the file
 * @returns the ioctl's return value (0, or the answer of GET_API_VERSION and CHECK_EXTENSION)
 * @throws ErrnoError ENOTTY, EFAULT, EINVAL, ENODEV, and the errnos of the IOAS map and unmap
 *   (EEXIST, ENOENT, EBUSY, ENOMEM, EOVERFLOW, ...)
 */
export function iommufdVfioIoctl(
  request: number,
  arg: IoctlArg,
  userMemory: UserMemory,
  ictx: IommufdCtx,
): number {
  switch (request >>> 0) {
    case VFIO_GET_API_VERSION:
      return VFIO_API_VERSION;
    case VFIO_SET_IOMMU:
      return vfioSetIommu(ictx, integerArg(arg));
    case VFIO_CHECK_EXTENSION:
      return vfioCheckExtension(ictx, integerArg(arg));
    case VFIO_IOMMU_GET_INFO:
      return withArg(vfioUserArg(vfioIommuType1InfoStruct, arg, userMemory), (a) =>
        vfioIommuGetInfo(ictx, a),
      );
    case VFIO_IOMMU_MAP_DMA:
      return withArg(vfioUserArg(vfioIommuType1DmaMapStruct, arg, userMemory), (a) => vfioMapDma(ictx, a));
    case VFIO_IOMMU_UNMAP_DMA:
      return withArg(vfioUserArg(vfioIommuType1DmaUnmapStruct, arg, userMemory), (a) =>
        vfioUnmapDma(ictx, a),
      );
    case VFIO_IOMMU_BIND:
    case VFIO_IOMMU_UNBIND:
      return vfioIommuBind(ictx, request >>> 0, arg, userMemory);
    default:
      throw new ErrnoError('ENOTTY', `no ioctl 0x${(request >>> 0).toString(16)}`);
  }
}
