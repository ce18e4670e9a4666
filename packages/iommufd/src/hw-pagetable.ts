/**
 * Hardware page tables (drivers/iommu/iommufd/hw_pagetable.c): the HWPT objects that wrap an
 * IOMMU domain.
 *
 * A paging HWPT ({@link IommufdHwptPaging}) holds a paging domain kept in sync with an IOAS: the
 * domain is added to the IOAS's io_pagetable, which maps every area into it. A nested HWPT
 * ({@link IommufdHwptNested}) holds a driver's NESTED domain on top of a paging parent that was
 * allocated with `IOMMU_HWPT_ALLOC_NEST_PARENT`.
 *
 * References (`users`): a paging HWPT holds one on its IOAS, a nested HWPT one on its parent, and
 * each device attached to a HWPT one on it (device.ts). Automatic paging HWPTs are created by
 * device attach to an IOAS and destroyed when their last device leaves; manual ones
 * (IOMMU_HWPT_ALLOC) live until IOMMU_DESTROY.
 *
 * The allocators return an object whose ID is reserved but not yet visible: the caller either
 * finalizes it (`ictx.objectFinalize`) or undoes it (`ictx.objectAbortAndDestroy`).
 */

import { ErrnoError } from '@iommu-ts/base';
import {
  IOMMU_DOMAIN_NESTED,
  IOMMU_DOMAIN_UNMANAGED,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_FAULT_ID_VALID,
  IommuCap,
  type IommuDomain,
  type IommuOps,
} from '@iommu-ts/iommu-core';
import type { IommufdDevice } from './device.js';
import type { IommufdIoas } from './ioas.js';
import type { UserMemory } from './ioctl-dispatch.js';
import { type IommufdCtx, IommufdObject, IommufdObjectType } from './main.js';

/**
 * Driver data given with IOMMU_HWPT_ALLOC (`struct iommu_user_data`): the `data_type`,
 * `data_uptr` and `data_len` of the command, and the caller's memory to read it from. Drivers
 * receive it as the `userData` argument of `domainAllocPagingFlags` / `domainAllocNested` and read
 * it with {@link iommuCopyStructFromUser}.
 */
export interface IommuUserData {
  /** `type`: one of the `IOMMU_HWPT_DATA_*` values. */
  readonly type: number;
  /** `uptr`: user address of the data. */
  readonly uptr: bigint;
  /** `len`: bytes at `uptr`. */
  readonly len: number;
  /** The memory of the process that made the call. */
  readonly userMemory: UserMemory;
  /**
   * Copy the first `len` bytes at `uptr` (`copy_from_user`).
   * @param len - bytes
   * @throws ErrnoError `EFAULT`
   */
  read(len: number): Uint8Array;
}

/**
 * `iommu_copy_struct_from_user(dst, user_data, data_type, min_last)`: read the driver data into a
 * kernel struct of `size` bytes (`copy_struct_from_user` rules: a shorter user struct is
 * zero-extended, a longer one must have only zero bytes past `size`).
 * @param userData - the data descriptor
 * @param dataType - the type the driver expects
 * @param minLen - the smallest `len` accepted (offset of the end of the last mandatory field)
 * @param size - the kernel struct's size in bytes
 * @returns `size` bytes
 * @throws ErrnoError `EINVAL` (type differs, or `len` below `minLen`), `E2BIG` (non-zero bytes past
 *   `size`), `EFAULT` (unreadable user memory)
 */
export function iommuCopyStructFromUser(
  userData: IommuUserData,
  dataType: number,
  minLen: number,
  size: number,
): Uint8Array {
  if (userData.type !== dataType) throw new ErrnoError('EINVAL', 'user data of another type');
  if (userData.len < minLen) throw new ErrnoError('EINVAL', 'user data too short');
  const out = new Uint8Array(size);
  const raw = userData.userMemory.read(userData.uptr, userData.len);
  if (raw.length > size) {
    for (let i = size; i < raw.length; i++)
      if (raw[i] !== 0) throw new ErrnoError('E2BIG', 'non-zero bytes past the known struct');
  }
  out.set(raw.subarray(0, Math.min(size, raw.length)));
  return out;
}

/**
 * The part common to both HWPT types (`struct iommufd_hw_pagetable`).
 */
export abstract class IommufdHwPagetable extends IommufdObject {
  /** `domain`: the IOMMU domain; null only while an allocation is being undone. */
  domain: IommuDomain | null = null;
  /** `fault`: the FAULT object receiving I/O page faults (`IOMMU_HWPT_FAULT_ID_VALID`), or null. */
  fault: IommufdObject | null = null;

  /** The domain, which every finalized HWPT has. */
  get attachedDomain(): IommuDomain {
    if (this.domain === null) throw new Error(`HWPT ${this.id} has no domain`);
    return this.domain;
  }

  /** `__iommufd_hwpt_destroy`: free the domain, drop the FAULT reference. */
  protected releaseCommon(): void {
    if (this.domain !== null) {
      this.ictx.iommu.iommuDomainFree(this.domain);
      this.domain.iommufdHwpt = null;
      this.domain = null;
    }
    if (this.fault !== null) {
      this.fault.users--;
      this.fault = null;
    }
  }
}

/**
 * A paging HWPT (`struct iommufd_hwpt_paging`, `IOMMUFD_OBJ_HWPT_PAGING`): a paging domain fed
 * from an IOAS.
 */
export class IommufdHwptPaging extends IommufdHwPagetable {
  /** Always `IOMMUFD_OBJ_HWPT_PAGING`. */
  readonly type = IommufdObjectType.HWPT_PAGING;
  /** `ioas`: the IOAS whose mappings the domain mirrors; the HWPT holds a `users` reference on it. */
  readonly ioas: IommufdIoas;
  /** `auto_domain`: created by a device attach to the IOAS (reused and destroyed automatically). */
  auto = false;
  /** `nest_parent`: allocated with `IOMMU_HWPT_ALLOC_NEST_PARENT`, may parent nested HWPTs. */
  nestParent = false;
  /** `enforce_cache_coherency`: the domain blocks no-snoop DMA. */
  enforceCacheCoherency = false;
  /** Whether the HWPT is on `ioas.hwptList` with its domain in the io_pagetable (`hwpt_item`). */
  linked = false;

  /**
   * Use {@link iommufdHwptPagingAlloc}.
   * @param ictx - the context
   * @param ioas - the IOAS
   */
  constructor(ictx: IommufdCtx, ioas: IommufdIoas) {
    super(ictx);
    this.ioas = ioas;
  }

  /**
   * `iommufd_hwpt_paging_destroy` (and `_abort`): take the domain out of the IOAS (unmapping every
   * area from it), free it, and drop the IOAS reference.
   */
  destroy(): void {
    if (this.linked) {
      const list = this.ioas.hwptList;
      const i = list.indexOf(this);
      if (i >= 0) list.splice(i, 1);
      if (this.domain !== null) this.ioas.iopt.tableRemoveDomain(this.domain);
      this.linked = false;
    }
    this.releaseCommon();
    this.ioas.users--;
  }
}

/**
 * A nested HWPT (`struct iommufd_hwpt_nested`, `IOMMUFD_OBJ_HWPT_NESTED`): a driver NESTED domain
 * (user-managed stage 1) on a paging parent (stage 2).
 */
export class IommufdHwptNested extends IommufdHwPagetable {
  /** Always `IOMMUFD_OBJ_HWPT_NESTED`. */
  readonly type = IommufdObjectType.HWPT_NESTED;
  /** `parent`: the NEST_PARENT paging HWPT; the nested HWPT holds a `users` reference on it. */
  readonly parent: IommufdHwptPaging;

  /**
   * Use the IOMMU_HWPT_ALLOC command (`iommufdHwptNestedAlloc`).
   * @param ictx - the context
   * @param parent - the parent
   */
  constructor(ictx: IommufdCtx, parent: IommufdHwptPaging) {
    super(ictx);
    this.parent = parent;
  }

  /** `iommufd_hwpt_nested_destroy`: free the domain and drop the parent reference. */
  destroy(): void {
    this.releaseCommon();
    this.parent.users--;
  }
}

/**
 * `find_hwpt_paging`: the paging HWPT whose IOAS a HWPT translates through (itself, or a nested
 * HWPT's parent).
 * @param hwpt - any HWPT
 * @returns the paging HWPT, or null for other kinds
 */
export function findHwptPaging(hwpt: IommufdHwPagetable): IommufdHwptPaging | null {
  if (hwpt.type === IommufdObjectType.HWPT_PAGING) return hwpt as IommufdHwptPaging;
  if (hwpt.type === IommufdObjectType.HWPT_NESTED) return (hwpt as IommufdHwptNested).parent;
  return null;
}

/**
 * `iommufd_hwpt_paging_enforce_cc`: make the domain block no-snoop DMA (once; it cannot be undone).
 * @param hwpt - the paging HWPT
 * @throws ErrnoError `EINVAL` when the domain cannot enforce it
 */
export function iommufdHwptPagingEnforceCc(hwpt: IommufdHwptPaging): void {
  if (hwpt.enforceCacheCoherency) return;
  const domain = hwpt.attachedDomain;
  if (domain.ops.enforceCacheCoherency) hwpt.enforceCacheCoherency = domain.ops.enforceCacheCoherency(domain);
  if (!hwpt.enforceCacheCoherency) throw new ErrnoError('EINVAL', 'domain cannot enforce cache coherency');
}

/** The `IOMMU_HWPT_ALLOC_*` flags a paging HWPT accepts. */
const PAGING_VALID_FLAGS =
  IOMMU_HWPT_ALLOC_NEST_PARENT |
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING |
  IOMMU_HWPT_FAULT_ID_VALID |
  IOMMU_HWPT_ALLOC_PASID;

/** The driver ops of a bound device (present: binding needed them). */
function devOps(idev: IommufdDevice): IommuOps {
  const ops = idev.ictx.iommu.devIommuOps(idev.dev);
  if (ops === null) throw new ErrnoError('ENODEV', `${idev.dev.name}: no IOMMU`);
  return ops;
}

/** Set what the core sets on a domain it allocated (`iommu_domain_init`-like): type, owner, ops. */
function initDomain(domain: IommuDomain, type: number, ops: IommuOps): void {
  if (domain.type === 0) domain.type = type;
  domain.owner = ops;
  if (Object.keys(domain.ops).length === 0 && ops.defaultDomainOps) domain.ops = ops.defaultDomainOps;
}

/**
 * The attach and detach of a device to a HWPT, as {@link iommufdHwptPagingAlloc} needs them for an
 * immediate attach (`iommufd_hw_pagetable_attach` / `_detach`, which live with the devices).
 */
export interface IommufdHwptImmediateAttach {
  /**
   * Attach `idev` to `hwpt`, taking a `users` reference on it.
   * @param hwpt - the new HWPT
   * @param idev - the device
   */
  attach(hwpt: IommufdHwPagetable, idev: IommufdDevice): void;
  /**
   * Undo {@link IommufdHwptImmediateAttach.attach} (the reference is dropped by the caller).
   * @param idev - the device
   * @returns the HWPT it was attached to
   */
  detach(idev: IommufdDevice): IommufdHwPagetable;
}

/**
 * `iommufd_hwpt_paging_alloc(ictx, ioas, idev, flags, immediate_attach, user_data)`: allocate a
 * paging domain for `idev`'s IOMMU and link it to `ioas` (every existing area gets mapped into it).
 *
 * The domain comes from the driver's `domainAllocPagingFlags(dev, flags, userData)` when it has
 * one, else from `iommuPagingDomainAllocFlags` (plain `domainAllocPaging`; flags must be 0 then).
 * With `immediateAttach` the device is attached before the domain is filled (drivers that finish a
 * domain only at attach), and stays attached on success.
 *
 * @param ictx - the context
 * @param ioas - the IOAS to mirror
 * @param idev - the device the domain is for
 * @param flags - `IOMMU_HWPT_ALLOC_*` flags (NEST_PARENT, DIRTY_TRACKING, FAULT_ID_VALID, PASID)
 * @param immediateAttach - how to attach `idev` as part of the allocation (device.ts passes its
 *   `iommufdHwPagetableAttach` / `iommufdHwPagetableDetach`), or null for no immediate attach
 * @param userData - driver data, or null
 * @returns the HWPT, ID reserved but not finalized; the caller finalizes or aborts it
 * @throws ErrnoError `EOPNOTSUPP` (flags or data but no `domainAllocPagingFlags`, unknown flags,
 *   DIRTY_TRACKING without the device's IOMMU reporting `IommuCap.DIRTY_TRACKING`), `ENOSPC` (no
 *   ID), the driver's allocation errno (`ENOMEM` for a null domain), `EINVAL` (coherency cannot be
 *   enforced), the attach errors, the io_pagetable's `tableAddDomain` errors (`EINVAL`,
 *   `EADDRINUSE`, pinning errors); on failure nothing is left behind
 */
export function iommufdHwptPagingAlloc(
  ictx: IommufdCtx,
  ioas: IommufdIoas,
  idev: IommufdDevice,
  flags: number,
  immediateAttach: IommufdHwptImmediateAttach | null,
  userData: IommuUserData | null = null,
): IommufdHwptPaging {
  const ops = devOps(idev);
  if ((flags !== 0 || userData !== null) && !ops.domainAllocPagingFlags)
    throw new ErrnoError('EOPNOTSUPP', 'the driver takes no allocation flags or data');
  if ((flags & ~PAGING_VALID_FLAGS) !== 0)
    throw new ErrnoError('EOPNOTSUPP', 'unknown HWPT allocation flags');
  if (
    (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0 &&
    !ictx.iommu.deviceIommuCapable(idev.dev, IommuCap.DIRTY_TRACKING)
  )
    throw new ErrnoError('EOPNOTSUPP', 'the IOMMU cannot track dirty pages');

  const hwpt = new IommufdHwptPaging(ictx, ioas);
  ictx.objectAlloc(hwpt);
  ioas.users++;
  hwpt.nestParent = (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0;
  let attached = false;
  try {
    let domain: IommuDomain | null;
    if (ops.domainAllocPagingFlags) {
      domain = ops.domainAllocPagingFlags(idev.dev, flags & ~IOMMU_HWPT_FAULT_ID_VALID, userData);
      if (domain === null) throw new ErrnoError('ENOMEM', 'paging domain allocation failed');
      initDomain(domain, IOMMU_DOMAIN_UNMANAGED, ops);
    } else {
      domain = ictx.iommu.iommuPagingDomainAllocFlags(idev.dev, 0);
    }
    hwpt.domain = domain;
    domain.iommufdHwpt = hwpt;
    // The coherency mode is fixed before anything is mapped (some IOMMUs keep it per PTE).
    if (idev.enforceCacheCoherency) iommufdHwptPagingEnforceCc(hwpt);
    if (immediateAttach !== null) {
      immediateAttach.attach(hwpt, idev);
      attached = true;
    }
    ioas.iopt.tableAddDomain(domain);
  } catch (e) {
    if (attached && immediateAttach !== null) {
      immediateAttach.detach(idev);
      hwpt.users--;
    }
    ictx.objectAbortAndDestroy(hwpt);
    throw e;
  }
  ioas.hwptList.push(hwpt);
  hwpt.linked = true;
  return hwpt;
}

/**
 * `iommufd_hwpt_nested_alloc(ictx, parent, idev, flags, user_data)`: a NESTED domain on `parent`.
 * @param ictx - the context
 * @param parent - a manual paging HWPT allocated with NEST_PARENT by the same driver
 * @param idev - the device the domain is for
 * @param flags - only `IOMMU_HWPT_FAULT_ID_VALID` is accepted
 * @param userData - the driver data (its `len` must not be 0)
 * @returns the HWPT, ID reserved but not finalized
 * @throws ErrnoError `EOPNOTSUPP` (other flags, no data, or no `domainAllocNested`), `EINVAL`
 *   (parent automatic, not NEST_PARENT, or from another driver; the driver returned a non-NESTED
 *   domain), the driver's errno
 */
export function iommufdHwptNestedAlloc(
  ictx: IommufdCtx,
  parent: IommufdHwptPaging,
  idev: IommufdDevice,
  flags: number,
  userData: IommuUserData,
): IommufdHwptNested {
  const ops = devOps(idev);
  if ((flags & ~IOMMU_HWPT_FAULT_ID_VALID) !== 0 || userData.len === 0 || !ops.domainAllocNested)
    throw new ErrnoError('EOPNOTSUPP', 'nested HWPT not supported with these arguments');
  if (parent.auto || !parent.nestParent || parent.domain?.owner !== ops)
    throw new ErrnoError('EINVAL', 'the parent cannot hold nested HWPTs for this device');
  const hwpt = new IommufdHwptNested(ictx, parent);
  ictx.objectAlloc(hwpt);
  parent.users++;
  try {
    const domain = ops.domainAllocNested(
      idev.dev,
      parent.attachedDomain,
      flags & ~IOMMU_HWPT_FAULT_ID_VALID,
      userData,
    );
    hwpt.domain = domain;
    domain.owner = ops;
    domain.iommufdHwpt = hwpt;
    if (domain.type !== IOMMU_DOMAIN_NESTED)
      throw new ErrnoError('EINVAL', 'the driver returned no NESTED domain');
  } catch (e) {
    ictx.objectAbortAndDestroy(hwpt);
    throw e;
  }
  return hwpt;
}

/**
 * `iommufd_hw_pagetable_put(ictx, hwpt)`: drop a holder's reference; an automatic paging HWPT whose
 * last holder this was is destroyed (`iommufd_object_put_and_try_destroy`).
 * @param ictx - the context
 * @param hwpt - the HWPT
 */
export function iommufdHwPagetablePut(ictx: IommufdCtx, hwpt: IommufdHwPagetable): void {
  hwpt.users--;
  if (hwpt.type === IommufdObjectType.HWPT_PAGING && (hwpt as IommufdHwptPaging).auto && hwpt.users === 1)
    ictx.objectRemove(hwpt.id, hwpt.type);
}

/**
 * `iommufd_get_hwpt_paging(ucmd, id)`: the paging HWPT with ID `id`.
 * @param ictx - the context
 * @param id - object ID
 * @returns the HWPT
 * @throws ErrnoError `ENOENT` if `id` is not a paging HWPT
 */
export function iommufdGetHwptPaging(ictx: IommufdCtx, id: number): IommufdHwptPaging {
  return ictx.getObject(id, IommufdObjectType.HWPT_PAGING) as IommufdHwptPaging;
}

/**
 * The entries of an IOMMU_HWPT_INVALIDATE call (`struct iommu_user_data_array`). The driver sets
 * `entryNum` to the number of entries it handled, also when it fails part-way.
 */
export interface IommuUserDataArray {
  /** `type`: the invalidation data type of every entry. */
  readonly type: number;
  /** `uptr`: user address of entry 0. */
  readonly uptr: bigint;
  /** `entry_len`: bytes per entry. */
  readonly entryLen: number;
  /** `entry_num`: in, the number of entries; out, the number handled. */
  entryNum: number;
  /** The memory of the process that made the call. */
  readonly userMemory: UserMemory;
}

/**
 * The user cache invalidation of a nested domain (`iommu_domain_ops.cache_invalidate_user`). A
 * nested domain whose `ops` object also has this method (checked with
 * `'cacheInvalidateUser' in ops`) answers IOMMU_HWPT_INVALIDATE; others fail it with `EOPNOTSUPP`.
 */
export interface IommufdCacheInvalidateOps {
  /**
   * Invalidate the caches of `domain` as the entries of `array` say, setting `array.entryNum` to
   * the number handled.
   * @param domain - the nested domain
   * @param array - the entries
   * @throws ErrnoError the driver's errno (after setting `entryNum`)
   */
  cacheInvalidateUser(domain: IommuDomain, array: IommuUserDataArray): void;
}

/**
 * `iommu_copy_struct_from_user_array(dst, array, data_type, index, min_last)`: read entry `index`
 * into a kernel struct of `size` bytes (`copy_struct_from_user` rules).
 * @param array - the entries
 * @param dataType - the type the driver expects
 * @param index - entry index
 * @param size - the kernel struct's size in bytes
 * @returns `size` bytes
 * @throws ErrnoError `EINVAL` (type differs, `index` out of range, `entryLen` 0), `E2BIG` (non-zero
 *   bytes past `size`), `EFAULT`
 */
export function iommuCopyStructFromUserArray(
  array: IommuUserDataArray,
  dataType: number,
  index: number,
  size: number,
): Uint8Array {
  if (array.type !== dataType) throw new ErrnoError('EINVAL', 'entries of another type');
  if (index >= array.entryNum || array.entryLen === 0) throw new ErrnoError('EINVAL', 'bad entry');
  const raw = array.userMemory.read(array.uptr + BigInt(array.entryLen) * BigInt(index), array.entryLen);
  for (let i = size; i < raw.length; i++)
    if (raw[i] !== 0) throw new ErrnoError('E2BIG', 'non-zero bytes past the known struct');
  const out = new Uint8Array(size);
  out.set(raw.subarray(0, Math.min(size, raw.length)));
  return out;
}
