/**
 * The IOAS ioctls (drivers/iommu/iommufd/ioas.c, plus the global IOMMU_OPTION and IOMMU_VFIO_IOAS
 * of main.c and vfio_compat.c): each handler checks the uAPI struct in the kernel's order (unknown
 * flags and non-zero reserved fields EOPNOTSUPP, values of `ULONG_MAX` and above EOVERFLOW, a
 * missing READ/WRITE flag EINVAL, then the object lookups) and hands the rest to the
 * {@link IoPagetable} of the IOAS.
 *
 * The calling task (`current`) is the context's process: user pointers are read in it, its
 * credentials decide `CAP_SYS_RESOURCE` and the accounting mode of new mappings.
 */

import { ErrnoError } from '@iommu-ts/base';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE } from '@iommu-ts/iommu-core';
import { CAP } from '@iommu-ts/mm';
import { IOPT_ALLOC_IOVA, type IoptIovaRange } from './io-pagetable.js';
import { IommufdIoas, iommufdGetIoas } from './ioas.js';
import { defineIoctlOp, type IommufdIoctlOp } from './ioctl-dispatch.js';
import type { IommufdCtx } from './main.js';
import { IOPT_PAGES_ACCOUNT_MM, IOPT_PAGES_ACCOUNT_USER } from './pages.js';
import { MOCK_FLAGS_ACCESS_SYZ } from './selftest-uapi.js';
import {
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
} from './uapi.js';
import { decodeUapi, encodeUapi } from './uapi-codec.js';
import {
  type IommuIoasCopy,
  type IommuOption,
  iommuIoasAllocCommand,
  iommuIoasAllowIovasCommand,
  iommuIoasChangeProcessCommand,
  iommuIoasCopyCommand,
  iommuIoasIovaRangesCommand,
  iommuIoasMapCommand,
  iommuIoasMapFileCommand,
  iommuIoasUnmapCommand,
  iommuIovaRangeStruct,
  iommuOptionCommand,
  iommuVfioIoasCommand,
} from './uapi-structs.js';

/** `ULONG_MAX` (and `U64_MAX`) of the 64-bit kernel. */
const ULONG_MAX = 0xffff_ffff_ffff_ffffn;
/** The flags IOAS_MAP, IOAS_MAP_FILE and IOAS_COPY know. */
const MAP_FLAGS = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;
const MAP_PROT = IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;
/** sizeof(struct iommu_iova_range). */
const RANGE_SIZE = BigInt(iommuIovaRangeStruct.size);

/**
 * `conv_iommu_prot`: map flags to `IOMMU_READ` / `IOMMU_WRITE`, always with `IOMMU_CACHE`: iommufd
 * offers no cache maintenance to userspace, so every mapping is CPU-coherent (bind already refused
 * IOMMUs without `IOMMU_CAP_CACHE_COHERENCY`).
 */
function convIommuProt(flags: number): number {
  let prot = IOMMU_CACHE;
  if (flags & IOMMU_IOAS_MAP_WRITEABLE) prot |= IOMMU_WRITE;
  if (flags & IOMMU_IOAS_MAP_READABLE) prot |= IOMMU_READ;
  return prot;
}

/** The first checks shared by MAP, MAP_FILE and COPY: EOPNOTSUPP, EOVERFLOW, EINVAL in that order. */
function checkMapArgs(flags: number, reserved: number, u64s: readonly bigint[]): void {
  if (flags & ~MAP_FLAGS || reserved !== 0)
    throw new ErrnoError('EOPNOTSUPP', 'unknown map flags or reserved');
  if (u64s.some((v) => v >= ULONG_MAX)) throw new ErrnoError('EOVERFLOW', 'value at or above ULONG_MAX');
  if (!(flags & MAP_PROT)) throw new ErrnoError('EINVAL', 'neither READABLE nor WRITEABLE');
}

function ioptFlags(flags: number): number {
  return flags & IOMMU_IOAS_MAP_FIXED_IOVA ? 0 : IOPT_ALLOC_IOVA;
}

function userAddr(base: bigint, index: number): bigint {
  return BigInt.asUintN(64, base + BigInt(index) * RANGE_SIZE);
}

/**
 * IOMMU_IOAS_ALLOC (`iommufd_ioas_alloc_ioctl`): EOPNOTSUPP for non-zero flags. The new IOAS
 * becomes visible only after the ID was copied out; if that faults it is discarded (EFAULT).
 */
const ioasAllocOp = defineIoctlOp(iommuIoasAllocCommand, (cmd, ucmd, ictx: IommufdCtx) => {
  if (cmd.flags !== 0) throw new ErrnoError('EOPNOTSUPP', 'IOAS_ALLOC flags must be 0');
  const ioas = new IommufdIoas(ictx);
  ictx.objectAlloc(ioas);
  cmd.out_ioas_id = ioas.id;
  try {
    ucmd.respond();
  } catch (e) {
    ictx.objectAbortAndDestroy(ioas);
    throw e;
  }
  ictx.objectFinalize(ioas);
});

/**
 * IOMMU_IOAS_IOVA_RANGES (`iommufd_ioas_iova_ranges`): write the usable ranges (up to the
 * capacity), then the struct with the total count and the alignment, then EMSGSIZE when the
 * capacity was too small.
 */
const ioasIovaRangesOp = defineIoctlOp(iommuIoasIovaRangesCommand, (cmd, ucmd, ictx: IommufdCtx) => {
  if (cmd.__reserved !== 0) throw new ErrnoError('EOPNOTSUPP', 'reserved field set');
  const ioas = iommufdGetIoas(ictx, cmd.ioas_id);
  const max = cmd.num_iovas;
  const ranges = ioas.iopt.iovaRanges();
  cmd.out_iova_alignment = BigInt(ioas.iopt.iovaAlignment);
  for (let i = 0; i < ranges.length && i < max; i++) {
    ucmd.userMemory.write(
      userAddr(cmd.allowed_iovas, i),
      encodeUapi(iommuIovaRangeStruct, ranges[i] as IoptIovaRange),
    );
  }
  cmd.num_iovas = ranges.length;
  ucmd.respond();
  if (ranges.length > max) throw new ErrnoError('EMSGSIZE', `${ranges.length} ranges, room for ${max}`);
});

/**
 * IOMMU_IOAS_ALLOW_IOVAS (`iommufd_ioas_allow_iovas`): read and check the elements one by one
 * (EFAULT, `start >= last` EINVAL, overlap with an earlier one EINVAL), then replace the list
 * (EADDRINUSE against reserved ranges, keeping the old list).
 */
const ioasAllowIovasOp = defineIoctlOp(
  iommuIoasAllowIovasCommand,
  (cmd, ucmd, ictx: IommufdCtx) => {
    if (cmd.__reserved !== 0) throw new ErrnoError('EOPNOTSUPP', 'reserved field set');
    const ioas = iommufdGetIoas(ictx, cmd.ioas_id);
    const list: IoptIovaRange[] = [];
    for (let i = 0; i < cmd.num_iovas; i++) {
      const bytes = ucmd.userMemory.read(userAddr(cmd.allowed_iovas, i), Number(RANGE_SIZE));
      const r = decodeUapi(iommuIovaRangeStruct, bytes);
      if (r.start >= r.last) throw new ErrnoError('EINVAL', `allowed range ${i}: start >= last`);
      if (list.some((o) => o.start <= r.last && r.start <= o.last))
        throw new ErrnoError('EINVAL', `allowed range ${i} overlaps an earlier one`);
      list.push({ start: r.start, last: r.last });
    }
    ioas.iopt.setAllowIova(list);
  },
  { respond: false },
);

/** IOMMU_IOAS_MAP (`iommufd_ioas_map`): map user memory at a fixed or an automatic IOVA. */
const ioasMapOp = defineIoctlOp(iommuIoasMapCommand, (cmd, _ucmd, ictx: IommufdCtx) => {
  checkMapArgs(cmd.flags, cmd.__reserved, [cmd.iova, cmd.length]);
  const ioas = iommufdGetIoas(ictx, cmd.ioas_id);
  cmd.iova = ioas.iopt.mapUserPages(
    ictx.process,
    cmd.iova,
    cmd.user_va,
    cmd.length,
    convIommuProt(cmd.flags),
    ioptFlags(cmd.flags),
    ictx.accountMode,
  );
});

/**
 * IOMMU_IOAS_MAP_FILE (`iommufd_ioas_map_file`): the model's processes have no memfd, so after
 * the MAP checks and the IOAS lookup every descriptor is EBADF.
 */
const ioasMapFileOp = defineIoctlOp(iommuIoasMapFileCommand, (cmd, _ucmd, ictx: IommufdCtx) => {
  checkMapArgs(cmd.flags, 0, [cmd.iova, cmd.length]);
  iommufdGetIoas(ictx, cmd.ioas_id);
  throw new ErrnoError('EBADF', `fd ${cmd.fd} is not a memfd`);
});

/**
 * `iommufd_test_syz_conv_src_iova` (selftest kernels): with `MOCK_FLAGS_ACCESS_SYZ`, `src_iova`
 * holds {u32 nth_area, u32 offset} and becomes the IOVA of that area plus the offset (0 when
 * there is no such area); the flag is cleared.
 */
function syzConvSrcIova(cmd: IommuIoasCopy, ictx: IommufdCtx): void {
  if (!ictx.selftest || !(cmd.flags & MOCK_FLAGS_ACCESS_SYZ)) return;
  cmd.flags &= ~MOCK_FLAGS_ACCESS_SYZ;
  const obj = ictx.peekObject(cmd.src_ioas_id);
  if (!(obj instanceof IommufdIoas)) return;
  const nth = Number(cmd.src_iova & 0xffff_ffffn);
  const offset = cmd.src_iova >> 32n;
  const area = obj.iopt.areas()[nth];
  cmd.src_iova = area === undefined ? 0n : BigInt.asUintN(64, area.iova + offset);
}

/**
 * IOMMU_IOAS_COPY (`iommufd_ioas_copy`): map the pages behind a source range again in the
 * destination, sharing them (no new pin or charge).
 */
const ioasCopyOp = defineIoctlOp(iommuIoasCopyCommand, (cmd, _ucmd, ictx: IommufdCtx) => {
  syzConvSrcIova(cmd, ictx);
  checkMapArgs(cmd.flags, 0, [cmd.length, cmd.src_iova, cmd.dst_iova]);
  const src = iommufdGetIoas(ictx, cmd.src_ioas_id);
  const list = src.iopt.getPages(cmd.src_iova, cmd.length);
  let dst: IommufdIoas;
  try {
    dst = iommufdGetIoas(ictx, cmd.dst_ioas_id);
  } catch (e) {
    src.iopt.freePagesList(list);
    throw e;
  }
  // mapPages consumes the list's references on success and on failure.
  cmd.dst_iova = dst.iopt.mapPages(
    list,
    cmd.length,
    cmd.dst_iova,
    convIommuProt(cmd.flags),
    ioptFlags(cmd.flags),
  );
});

/**
 * IOMMU_IOAS_UNMAP (`iommufd_ioas_unmap`): `iova` 0 with `length` `U64_MAX` unmaps everything
 * (success when empty); otherwise whole areas inside the range, ENOENT when there were none.
 * `length` reports the bytes unmapped.
 */
const ioasUnmapOp = defineIoctlOp(iommuIoasUnmapCommand, (cmd, _ucmd, ictx: IommufdCtx) => {
  const ioas = iommufdGetIoas(ictx, cmd.ioas_id);
  let unmapped: bigint;
  if (cmd.iova === 0n && cmd.length === ULONG_MAX) {
    unmapped = ioas.iopt.unmapAll();
  } else {
    if (cmd.iova >= ULONG_MAX || cmd.length >= ULONG_MAX)
      throw new ErrnoError('EOVERFLOW', 'value at or above ULONG_MAX');
    unmapped = ioas.iopt.unmapIova(cmd.iova, cmd.length);
    if (unmapped === 0n) throw new ErrnoError('ENOENT', 'nothing mapped in the range');
  }
  cmd.length = unmapped;
});

/** `iommufd_option_rlimit_mode`. */
function optionRlimitMode(cmd: IommuOption, ictx: IommufdCtx): void {
  if (cmd.object_id !== 0) throw new ErrnoError('EOPNOTSUPP', 'RLIMIT_MODE is global');
  if (cmd.op === IOMMU_OPTION_OP_GET) {
    cmd.val64 = ictx.accountMode === IOPT_PAGES_ACCOUNT_MM ? 1n : 0n;
    return;
  }
  if (cmd.op !== IOMMU_OPTION_OP_SET) throw new ErrnoError('EOPNOTSUPP', `unknown op ${cmd.op}`);
  if (!ictx.process.capable(CAP.SYS_RESOURCE)) throw new ErrnoError('EPERM', 'needs CAP_SYS_RESOURCE');
  if (ictx.objectCount !== 0) throw new ErrnoError('EBUSY', 'the context already holds objects');
  if (cmd.val64 === 0n) ictx.accountMode = IOPT_PAGES_ACCOUNT_USER;
  else if (cmd.val64 === 1n) ictx.accountMode = IOPT_PAGES_ACCOUNT_MM;
  else throw new ErrnoError('EINVAL', `RLIMIT_MODE value ${cmd.val64}`);
}

/** `iommufd_ioas_option` with `iommufd_ioas_option_huge_pages`. */
function optionHugePages(cmd: IommuOption, ictx: IommufdCtx): void {
  const ioas = iommufdGetIoas(ictx, cmd.object_id);
  if (cmd.op === IOMMU_OPTION_OP_GET) {
    cmd.val64 = ioas.iopt.largePagesDisabled ? 0n : 1n;
    return;
  }
  if (cmd.op !== IOMMU_OPTION_OP_SET) throw new ErrnoError('EOPNOTSUPP', `unknown op ${cmd.op}`);
  if (cmd.val64 === 0n) ioas.iopt.disableLargePages();
  else if (cmd.val64 === 1n) ioas.iopt.enableLargePages();
  else throw new ErrnoError('EINVAL', `HUGE_PAGES value ${cmd.val64}`);
}

/**
 * IOMMU_OPTION (`iommufd_option`): RLIMIT_MODE (global) and HUGE_PAGES (per IOAS); on success
 * `val64` is copied out.
 */
const optionOp = defineIoctlOp(iommuOptionCommand, (cmd, _ucmd, ictx: IommufdCtx) => {
  if (cmd.__reserved !== 0) throw new ErrnoError('EOPNOTSUPP', 'reserved field set');
  if (cmd.option_id === IOMMU_OPTION_RLIMIT_MODE) optionRlimitMode(cmd, ictx);
  else if (cmd.option_id === IOMMU_OPTION_HUGE_PAGES) optionHugePages(cmd, ictx);
  else throw new ErrnoError('EOPNOTSUPP', `unknown option ${cmd.option_id}`);
});

/**
 * IOMMU_VFIO_IOAS (`iommufd_vfio_ioas`): GET reports the compatibility IOAS (ENODEV without one),
 * SET makes an IOAS the compatibility IOAS, CLEAR forgets it (never destroying it).
 */
const vfioIoasOp = defineIoctlOp(
  iommuVfioIoasCommand,
  (cmd, ucmd, ictx: IommufdCtx) => {
    if (cmd.__reserved !== 0) throw new ErrnoError('EOPNOTSUPP', 'reserved field set');
    switch (cmd.op) {
      case IOMMU_VFIO_IOAS_GET: {
        const ioas = ictx.vfioIoas;
        if (ioas === null) throw new ErrnoError('ENODEV', 'no compatibility IOAS');
        cmd.ioas_id = ioas.id;
        ucmd.respond();
        return;
      }
      case IOMMU_VFIO_IOAS_SET:
        ictx.vfioIoas = iommufdGetIoas(ictx, cmd.ioas_id);
        return;
      case IOMMU_VFIO_IOAS_CLEAR:
        ictx.vfioIoas = null;
        return;
      default:
        throw new ErrnoError('EOPNOTSUPP', `unknown op ${cmd.op}`);
    }
  },
  { respond: false },
);

/**
 * IOMMU_IOAS_CHANGE_PROCESS (`iommufd_ioas_change_process`): only file-backed mappings can move,
 * and the model has none, so any area in any IOAS of the context is EINVAL; a context without
 * areas succeeds with nothing to move.
 */
const ioasChangeProcessOp = defineIoctlOp(
  iommuIoasChangeProcessCommand,
  (cmd, _ucmd, ictx: IommufdCtx) => {
    if (cmd.__reserved !== 0) throw new ErrnoError('EOPNOTSUPP', 'reserved field set');
    for (const obj of ictx.listObjects()) {
      if (obj instanceof IommufdIoas && obj.iopt.areaItree.size > 0)
        throw new ErrnoError('EINVAL', `IOAS ${obj.id} has mappings that are not file-backed`);
    }
  },
  { respond: false },
);

/**
 * The IOAS commands of the iommufd table: IOAS_ALLOC, IOAS_ALLOW_IOVAS, IOAS_COPY,
 * IOAS_IOVA_RANGES, IOAS_MAP, IOAS_UNMAP, OPTION, VFIO_IOAS, IOAS_MAP_FILE and
 * IOAS_CHANGE_PROCESS (drivers/iommu/iommufd/ioas.c and main.c).
 */
export const ioasIoctlOps: readonly IommufdIoctlOp<object, IommufdCtx>[] = Object.freeze([
  ioasAllocOp,
  ioasAllowIovasOp,
  ioasCopyOp,
  ioasIovaRangesOp,
  ioasMapOp,
  ioasUnmapOp,
  optionOp,
  vfioIoasOp,
  ioasMapFileOp,
  ioasChangeProcessOp,
] as IommufdIoctlOp<never, IommufdCtx>[] as IommufdIoctlOp<object, IommufdCtx>[]);
