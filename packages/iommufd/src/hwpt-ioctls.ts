/**
 * The HWPT and device ioctls (drivers/iommu/iommufd/hw_pagetable.c, device.c `iommufd_get_hw_info`,
 * and the dirty-tracking half of io_pagetable.c): IOMMU_HWPT_ALLOC, IOMMU_GET_HW_INFO,
 * IOMMU_HWPT_SET_DIRTY_TRACKING, IOMMU_HWPT_GET_DIRTY_BITMAP and IOMMU_HWPT_INVALIDATE.
 *
 * There are no vIOMMU or FAULT objects in the model yet: a `pt_id` naming a vIOMMU is answered
 * `EOPNOTSUPP` (no driver vIOMMU ops), and `IOMMU_HWPT_FAULT_ID_VALID` with a `fault_id` that is
 * not a FAULT object is `ENOENT`.
 */

import { ErrnoError } from '@iommu-ts/base';
import {
  IOMMU_DIRTY_NO_CLEAR,
  IOMMU_HWPT_FAULT_ID_VALID,
  IommuCap,
  type IommuDomain,
  iommuIotlbSync,
  PciDevice,
} from '@iommu-ts/iommu-core';
import { type IommufdHwInfoOps, iommufdGetDevice } from './device.js';
import {
  type IommufdCacheInvalidateOps,
  type IommufdHwPagetable,
  type IommufdHwptPaging,
  type IommuUserData,
  type IommuUserDataArray,
  iommufdGetHwptPaging,
  iommufdHwptNestedAlloc,
  iommufdHwptPagingAlloc,
} from './hw-pagetable.js';
import { type IoPagetable, IoptAreaContigIter } from './io-pagetable.js';
import type { IommufdIoas } from './ioas.js';
import { defineIoctlOp, type IommufdIoctlOp, type UserMemory } from './ioctl-dispatch.js';
import { IommufdDirtyRecorder, IovaBitmap } from './iova-bitmap.js';
import { type IommufdCtx, type IommufdObject, IommufdObjectType } from './main.js';
import {
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HW_CAP_PCI_PASID_EXEC,
  IOMMU_HW_CAP_PCI_PASID_PRIV,
  IOMMU_HW_INFO_FLAG_INPUT_TYPE,
  IOMMU_HW_INFO_TYPE_DEFAULT,
  IOMMU_HW_INFO_TYPE_NONE,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
} from './uapi.js';
import {
  iommuGetHwInfoCommand,
  iommuHwptAllocCommand,
  iommuHwptGetDirtyBitmapCommand,
  iommuHwptInvalidateCommand,
  iommuHwptSetDirtyTrackingCommand,
} from './uapi-structs.js';

const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** `PCI_PASID_CTRL_EXEC` / `PCI_PASID_CTRL_PRIV` as kept in `PciPasidCap.enabledFeatures`. */
const PCI_PASID_CTRL_EXEC = 0x02;
const PCI_PASID_CTRL_PRIV = 0x04;

// ---- dirty tracking on an io_pagetable ----

/**
 * `iopt_clear_dirty_data`: read and clear the dirty state of every mapped area of `iopt` in
 * `domain`, discarding it, then flush the IOTLB for what was cleared.
 * @throws ErrnoError the driver's errno (the IOTLB is flushed for what was cleared before it)
 */
function ioptClearDirtyData(iopt: IoPagetable, domain: IommuDomain): void {
  const ops = domain.dirtyOps;
  if (ops === null) return;
  const dirty = new IommufdDirtyRecorder(null);
  try {
    for (const area of iopt.areas()) ops.readAndClearDirty(domain, area.iova, area.length, 0, dirty);
  } finally {
    iommuIotlbSync(domain, dirty.gather);
  }
}

/**
 * `iopt_set_dirty_tracking(iopt, domain, enable)`: start or stop dirty tracking of `domain`. When
 * starting, the dirty state left in the domain's mappings is cleared first so that the first read
 * reports only writes made from now on.
 * @param iopt - the IOAS's io_pagetable the domain mirrors
 * @param domain - the paging domain
 * @param enable - start (true) or stop (false)
 * @throws ErrnoError `EOPNOTSUPP` (the domain has no dirty ops), the driver's errno (the mock
 *   driver: `EINVAL` for a domain allocated without DIRTY_TRACKING)
 */
export function ioptSetDirtyTracking(iopt: IoPagetable, domain: IommuDomain, enable: boolean): void {
  const ops = domain.dirtyOps;
  if (ops === null) throw new ErrnoError('EOPNOTSUPP', 'the domain cannot track dirty pages');
  if (enable) ioptClearDirtyData(iopt, domain);
  ops.setDirtyTracking(domain, enable);
}

/** The dirty-bitmap request of IOMMU_HWPT_GET_DIRTY_BITMAP (`struct iommu_hwpt_get_dirty_bitmap`). */
export interface IoptDirtyBitmapRequest {
  /** IOVA of bit 0. */
  readonly iova: bigint;
  /** Bytes of IOVA covered. */
  readonly length: bigint;
  /** Bytes of IOVA per bit. */
  readonly pageSize: bigint;
  /** User address of the bitmap. */
  readonly data: bigint;
}

/**
 * `iommufd_check_iova_range`: validate a dirty-bitmap range against the IOAS alignment and the
 * bitmap page size.
 * @throws ErrnoError `EOVERFLOW` (`iova + length - 1` wraps), `EINVAL` (`iova` or its end not a
 *   multiple of the IOAS alignment; `pageSize` 0; `iova` or its end not a multiple of `pageSize`)
 */
function checkIovaRange(iopt: IoPagetable, req: IoptDirtyBitmapRequest): void {
  const last = (req.iova + req.length - 1n) & U64_MAX;
  if (req.iova + ((req.length - 1n) & U64_MAX) > U64_MAX)
    throw new ErrnoError('EOVERFLOW', 'dirty bitmap range wraps');
  const end = (last + 1n) & U64_MAX;
  const align = BigInt(iopt.iovaAlignment) - 1n;
  if ((req.iova & align) !== 0n || (end & align) !== 0n)
    throw new ErrnoError('EINVAL', 'dirty bitmap range not aligned to the IOAS');
  if (req.pageSize === 0n) throw new ErrnoError('EINVAL', 'page_size is 0');
  const mask = req.pageSize - 1n;
  if ((req.iova & mask) !== 0n || (end & mask) !== 0n)
    throw new ErrnoError('EINVAL', 'dirty bitmap range not aligned to page_size');
}

/**
 * `iopt_read_and_clear_dirty_data(iopt, domain, flags, bitmap)`: set the bits of the user bitmap
 * for the dirty IOVAs of `domain` in the requested range, clearing their dirty state unless
 * `flags` has `IOMMU_DIRTY_NO_CLEAR`, then flush the IOTLB for the cleared ranges.
 *
 * The range is walked window by window of the user bitmap; within a window the areas are walked
 * back to back from its first IOVA and the walk stops at the first gap. As in Linux, a failure of
 * the walk (a gap, an inaccessible bitmap window, a driver error) ends it early but is not
 * reported: the call still succeeds.
 *
 * @param iopt - the io_pagetable the domain mirrors
 * @param domain - the paging domain
 * @param flags - 0 or `IOMMU_DIRTY_NO_CLEAR`
 * @param req - range, page size, user bitmap address
 * @param userMemory - the caller's memory
 * @throws ErrnoError the range checks (`EOVERFLOW`, `EINVAL`), `EOPNOTSUPP` (no dirty ops)
 */
export function ioptReadAndClearDirtyData(
  iopt: IoPagetable,
  domain: IommuDomain,
  flags: number,
  req: IoptDirtyBitmapRequest,
  userMemory: UserMemory,
): void {
  checkIovaRange(iopt, req);
  const ops = domain.dirtyOps;
  if (ops === null) throw new ErrnoError('EOPNOTSUPP', 'the domain cannot track dirty pages');
  if (req.length === 0n) return;
  const bitmap = new IovaBitmap(userMemory, req.iova, req.length, req.pageSize, req.data);
  const dirty = new IommufdDirtyRecorder(bitmap);
  try {
    bitmap.forEach((iova, length) => {
      const last = iova + length - 1n;
      const it = new IoptAreaContigIter(iopt, iova, last);
      for (let area = it.first(); area; area = it.next()) {
        const pieceLast = it.pieceLast(area);
        ops.readAndClearDirty(domain, it.curIova, pieceLast - it.curIova + 1n, flags, dirty);
      }
      if (!it.done) throw new ErrnoError('EINVAL', 'gap in the dirty bitmap range');
    });
  } catch (e) {
    if (!(e instanceof ErrnoError)) throw e;
    // Not propagated, as in Linux (iova_bitmap_for_each's result is dropped).
  }
  if ((flags & IOMMU_DIRTY_NO_CLEAR) === 0) iommuIotlbSync(domain, dirty.gather);
}

// ---- handlers ----

/**
 * IOMMU_HWPT_ALLOC (`iommufd_hwpt_alloc`): a manual paging HWPT on an IOAS, or a nested HWPT on a
 * NEST_PARENT paging HWPT. Checks in Linux's order: `__reserved` (EOPNOTSUPP), data type vs length
 * (EINVAL), `dev_id` (ENOENT), `pt_id` lookup (EINVAL), per type, `fault_id` (ENOENT); then the
 * new ID is written back (EFAULT undoes the allocation) and the object becomes visible.
 */
const hwptAllocOp = defineIoctlOp(iommuHwptAllocCommand, (cmd, ucmd, ictx: IommufdCtx) => {
  if (cmd.__reserved !== 0) throw new ErrnoError('EOPNOTSUPP', '__reserved must be 0');
  if ((cmd.data_type === IOMMU_HWPT_DATA_NONE) !== (cmd.data_len === 0))
    throw new ErrnoError('EINVAL', 'data_type and data_len disagree');
  const userData: IommuUserData = {
    type: cmd.data_type,
    uptr: cmd.data_uptr,
    len: cmd.data_len,
    userMemory: ucmd.userMemory,
    read: (len) => ucmd.userMemory.read(cmd.data_uptr, len),
  };
  const idev = iommufdGetDevice(ictx, cmd.dev_id);
  let ptObj: IommufdObject;
  try {
    ptObj = ictx.getObject(cmd.pt_id, IommufdObjectType.ANY);
  } catch {
    throw new ErrnoError('EINVAL', `pt_id ${cmd.pt_id} does not exist`);
  }
  let hwpt: IommufdHwPagetable;
  switch (ptObj.type) {
    case IommufdObjectType.IOAS:
      hwpt = iommufdHwptPagingAlloc(
        ictx,
        ptObj as IommufdIoas,
        idev,
        cmd.flags,
        null,
        userData.len !== 0 ? userData : null,
      );
      break;
    case IommufdObjectType.HWPT_PAGING:
      hwpt = iommufdHwptNestedAlloc(ictx, ptObj as IommufdHwptPaging, idev, cmd.flags, userData);
      break;
    case IommufdObjectType.VIOMMU:
      throw new ErrnoError('EOPNOTSUPP', 'vIOMMU nested HWPTs are not modelled');
    default:
      throw new ErrnoError('EINVAL', `pt_id ${cmd.pt_id} is not an IOAS or a paging HWPT`);
  }
  try {
    if ((cmd.flags & IOMMU_HWPT_FAULT_ID_VALID) !== 0) {
      const fault = ictx.getObject(cmd.fault_id, IommufdObjectType.FAULT);
      hwpt.fault = fault;
      fault.users++;
    }
    cmd.out_hwpt_id = hwpt.id;
    ucmd.respond();
  } catch (e) {
    ictx.objectAbortAndDestroy(hwpt);
    throw e;
  }
  ictx.objectFinalize(hwpt);
});

/** `ilog2`. */
function ilog2(x: number): number {
  return 31 - Math.clz32(x);
}

/**
 * IOMMU_GET_HW_INFO (`iommufd_get_hw_info`): the driver's hardware information for a device, its
 * capabilities and PASID width. Unknown flags (other than `IOMMU_HW_INFO_FLAG_INPUT_TYPE`) or
 * non-zero `__reserved` → EOPNOTSUPP; `dev_id` → ENOENT; driver errors; a driver hook reporting
 * type NONE → ENODEV. `min(data_len, kernel length)` bytes are copied to `data_uptr` and the rest
 * of the user's `data_len` bytes zeroed (EFAULT), then `data_len` is set to the kernel's length.
 */
const getHwInfoOp = defineIoctlOp(iommuGetHwInfoCommand, (cmd, ucmd, ictx: IommufdCtx) => {
  if ((cmd.flags & ~IOMMU_HW_INFO_FLAG_INPUT_TYPE) !== 0) throw new ErrnoError('EOPNOTSUPP', 'unknown flags');
  if (cmd.__reserved.some((b) => b !== 0)) throw new ErrnoError('EOPNOTSUPP', '__reserved must be 0');
  if ((cmd.flags & IOMMU_HW_INFO_FLAG_INPUT_TYPE) === 0) cmd.in_data_type = IOMMU_HW_INFO_TYPE_DEFAULT;
  const idev = iommufdGetDevice(ictx, cmd.dev_id);
  const ops = ictx.iommu.devIommuOps(idev.dev);
  let data: Uint8Array = new Uint8Array(0);
  let type = IOMMU_HW_INFO_TYPE_NONE;
  if (ops !== null && 'hwInfo' in ops) {
    const info = (ops as unknown as IommufdHwInfoOps).hwInfo(idev.dev, cmd.in_data_type);
    if (info.type === IOMMU_HW_INFO_TYPE_NONE)
      throw new ErrnoError('ENODEV', 'the driver reported no hardware information type');
    type = info.type;
    data = info.data;
  }
  const copyLen = Math.min(cmd.data_len, data.length);
  if (cmd.data_len > 0) {
    const out = new Uint8Array(cmd.data_len);
    out.set(data.subarray(0, copyLen));
    ucmd.userMemory.write(cmd.data_uptr, out);
  }
  cmd.data_len = data.length;
  cmd.out_data_type = type;
  let caps = 0;
  if (ictx.iommu.deviceIommuCapable(idev.dev, IommuCap.DIRTY_TRACKING)) caps |= IOMMU_HW_CAP_DIRTY_TRACKING;
  cmd.out_max_pasid_log2 = 0;
  const maxPasids = idev.dev.iommu?.maxPasids ?? 0;
  if (maxPasids > 0) {
    cmd.out_max_pasid_log2 = ilog2(maxPasids);
    if (idev.dev instanceof PciDevice) {
      const ctrl = idev.dev.pasidCap?.enabledFeatures ?? 0;
      if ((ctrl & PCI_PASID_CTRL_EXEC) !== 0) caps |= IOMMU_HW_CAP_PCI_PASID_EXEC;
      if ((ctrl & PCI_PASID_CTRL_PRIV) !== 0) caps |= IOMMU_HW_CAP_PCI_PASID_PRIV;
    }
  }
  cmd.out_capabilities = BigInt(caps);
});

/**
 * IOMMU_HWPT_SET_DIRTY_TRACKING (`iommufd_hwpt_set_dirty_tracking`): unknown flags → EOPNOTSUPP
 * (`__reserved` is not checked); `hwpt_id` not a paging HWPT → ENOENT; then
 * {@link ioptSetDirtyTracking}. Nothing is written back.
 */
const setDirtyTrackingOp = defineIoctlOp(
  iommuHwptSetDirtyTrackingCommand,
  (cmd, _ucmd, ictx: IommufdCtx) => {
    if ((cmd.flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0)
      throw new ErrnoError('EOPNOTSUPP', 'unknown flags');
    const hwpt = iommufdGetHwptPaging(ictx, cmd.hwpt_id);
    ioptSetDirtyTracking(
      hwpt.ioas.iopt,
      hwpt.attachedDomain,
      (cmd.flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE) !== 0,
    );
  },
  { respond: false },
);

/**
 * IOMMU_HWPT_GET_DIRTY_BITMAP (`iommufd_hwpt_get_dirty_bitmap`): unknown flags (other than
 * NO_CLEAR) or `__reserved` → EOPNOTSUPP; `hwpt_id` not a paging HWPT → ENOENT; then
 * {@link ioptReadAndClearDirtyData}. Nothing is written back to the struct.
 */
const getDirtyBitmapOp = defineIoctlOp(
  iommuHwptGetDirtyBitmapCommand,
  (cmd, ucmd, ictx: IommufdCtx) => {
    if ((cmd.flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0 || cmd.__reserved !== 0)
      throw new ErrnoError('EOPNOTSUPP', 'unknown flags or non-zero __reserved');
    const hwpt = iommufdGetHwptPaging(ictx, cmd.hwpt_id);
    const flags = (cmd.flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0 ? IOMMU_DIRTY_NO_CLEAR : 0;
    ioptReadAndClearDirtyData(
      hwpt.ioas.iopt,
      hwpt.attachedDomain,
      flags,
      { iova: cmd.iova, length: cmd.length, pageSize: cmd.page_size, data: cmd.data },
      ucmd.userMemory,
    );
  },
  { respond: false },
);

/**
 * IOMMU_HWPT_INVALIDATE (`iommufd_hwpt_invalidate`): `__reserved` → EOPNOTSUPP; entries without
 * an array pointer or entry length → EINVAL; `hwpt_id` absent → ENOENT; a nested HWPT whose domain
 * ops have `cacheInvalidateUser` ({@link IommufdCacheInvalidateOps}) runs it, one without →
 * EOPNOTSUPP; a vIOMMU → EOPNOTSUPP (not modelled); other types → EINVAL. `entry_num` is always
 * written back with the number handled (EFAULT then replaces the result).
 */
const hwptInvalidateOp = defineIoctlOp(iommuHwptInvalidateCommand, (cmd, ucmd, ictx: IommufdCtx) => {
  let done = 0;
  let err: unknown = null;
  try {
    if (cmd.__reserved !== 0) throw new ErrnoError('EOPNOTSUPP', '__reserved must be 0');
    if (cmd.entry_num !== 0 && (cmd.data_uptr === 0n || cmd.entry_len === 0))
      throw new ErrnoError('EINVAL', 'entries without an array');
    const obj = ictx.getObject(cmd.hwpt_id, IommufdObjectType.ANY);
    if (obj.type === IommufdObjectType.HWPT_NESTED) {
      const domain = (obj as IommufdHwPagetable).attachedDomain;
      if (!('cacheInvalidateUser' in domain.ops))
        throw new ErrnoError('EOPNOTSUPP', 'the domain has no user cache invalidation');
      const array: IommuUserDataArray = {
        type: cmd.data_type,
        uptr: cmd.data_uptr,
        entryLen: cmd.entry_len,
        entryNum: cmd.entry_num,
        userMemory: ucmd.userMemory,
      };
      try {
        (domain.ops as unknown as IommufdCacheInvalidateOps).cacheInvalidateUser(domain, array);
      } finally {
        done = array.entryNum;
      }
    } else if (obj.type === IommufdObjectType.VIOMMU) {
      throw new ErrnoError('EOPNOTSUPP', 'vIOMMU invalidation is not modelled');
    } else {
      throw new ErrnoError('EINVAL', `object ${cmd.hwpt_id} is not a nested HWPT or vIOMMU`);
    }
  } catch (e) {
    err = e;
  }
  cmd.entry_num = done;
  ucmd.respond();
  if (err !== null) throw err;
});

/** The HWPT and device ioctls, for the command table (ioctl-table.ts). */
export const hwptIoctlOps: readonly IommufdIoctlOp<object, IommufdCtx>[] = [
  hwptAllocOp,
  getHwInfoOp,
  setDirtyTrackingOp,
  getDirtyBitmapOp,
  hwptInvalidateOp,
] as IommufdIoctlOp<object, IommufdCtx>[];
