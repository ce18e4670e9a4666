/**
 * Devices bound to iommufd (drivers/iommu/iommufd/device.c, the device half): bind/unbind and
 * attach/replace/detach of a device to an IOAS or a HWPT.
 *
 * Binding makes the context the DMA owner of the device's IOMMU group (`iommuDeviceClaimDmaOwner`,
 * which moves the group to its blocking domain). Devices of one IOMMU group bound to the same
 * context share an {@link IommufdGroup}: the group is attached to one HWPT at a time, the first
 * device attaching it and the last one detaching it, while each device brings its own reserved
 * regions into the HWPT's IOAS.
 *
 * Attaching to an IOAS picks an automatic HWPT of that IOAS that accepts the device (an `EINVAL`
 * from a candidate means "incompatible, try the next"), or creates a new one; attaching to a HWPT
 * ID uses it directly.
 *
 * References: the binding driver holds one `users` reference on the device object from bind to
 * unbind, an attached device one more on itself and one on its HWPT. Binding also takes a context
 * reference (the context outlives its fd until unbind) except for selftest mock devices, which
 * say so with `{ mock: true }` (Linux asks `iommufd_selftest_is_mock_dev`).
 *
 * Not modelled: the isolated-MSI check of bind (there is no interrupt remapping in the model), the
 * installation of software-MSI pages into domains (the group only remembers the SW_MSI window).
 */

import { ErrnoError } from '@iommu-ts/base';
import { type Device, IommuCap, type IommuDomain, type IommuGroup } from '@iommu-ts/iommu-core';
import {
  findHwptPaging,
  type IommufdHwPagetable,
  type IommufdHwptImmediateAttach,
  type IommufdHwptPaging,
  iommufdHwPagetablePut,
  iommufdHwptPagingAlloc,
} from './hw-pagetable.js';
import type { IommufdIoas } from './ioas.js';
import { type IommufdCtx, IommufdObject, IommufdObjectType } from './main.js';

/**
 * The GET_HW_INFO hook of a driver (`iommu_ops.hw_info`). An `IommuOps` object that also has a
 * `hwInfo` method (checked with `'hwInfo' in ops`) answers IOMMU_GET_HW_INFO with it; drivers
 * without one report type `IOMMU_HW_INFO_TYPE_DEFAULT` (0) and no data.
 */
export interface IommufdHwInfoOps {
  /**
   * `hw_info(dev, &length, &type)`: the hardware information of the IOMMU behind `dev`.
   * @param dev - the device
   * @param type - the type asked for: `IOMMU_HW_INFO_TYPE_DEFAULT` (0, the driver's own) unless
   *   userspace passed `IOMMU_HW_INFO_FLAG_INPUT_TYPE`
   * @returns the type reported (not 0) and its data (the driver's struct, little-endian)
   * @throws ErrnoError e.g. `EOPNOTSUPP` for a type the driver does not know, `ENODEV`
   */
  hwInfo(dev: Device, type: number): { type: number; data: Uint8Array };
}

/** Options of {@link iommufdDeviceBind}. */
export interface IommufdDeviceBindOptions {
  /**
   * A selftest mock device (`iommufd_selftest_is_mock_dev`): the binding takes no context
   * reference, so closing the fd releases the context while the device is still bound (the
   * selftest object unbinds it then). Default false.
   */
  readonly mock?: boolean;
}

/**
 * The attach handle stored in the IOMMU group's PASID array for a RID attachment
 * (`struct iommufd_attach_handle`): the domain and the iommufd device, which the fault path uses.
 */
export interface IommufdAttachHandle {
  /** The attached domain. */
  domain: IommuDomain;
  /** The device that attached it. */
  readonly idev: IommufdDevice;
}

/**
 * Per-context state of one IOMMU group (`struct iommufd_group`), shared by the bound devices of
 * the group.
 */
export class IommufdGroup {
  /** The context. */
  readonly ictx: IommufdCtx;
  /** The IOMMU group. */
  readonly group: IommuGroup;
  /** Bound devices referencing this state (`ref`). */
  refs = 1;
  /** `hwpt`: the HWPT the group is attached to, or null. */
  hwpt: IommufdHwPagetable | null = null;
  /** `device_list`: the attached devices of the group, in attach order. */
  readonly devices: IommufdDevice[] = [];
  /** `sw_msi_start`: the software MSI window reported by a device's reserved regions, or null. */
  swMsiStart: bigint | null = null;

  /**
   * @param ictx - the context
   * @param group - the IOMMU group
   */
  constructor(ictx: IommufdCtx, group: IommuGroup) {
    this.ictx = ictx;
    this.group = group;
  }
}

/** `ictx->groups`: the {@link IommufdGroup}s of each context, by IOMMU group. */
const groupsOf = new WeakMap<IommufdCtx, Map<IommuGroup, IommufdGroup>>();

/** `iommufd_get_group`: the context's state of `dev`'s group, created on first use. */
function getGroup(ictx: IommufdCtx, dev: Device): IommufdGroup {
  const group = dev.iommuGroup;
  if (group === null) throw new ErrnoError('ENODEV', `${dev.name}: no IOMMU group`);
  let groups = groupsOf.get(ictx);
  if (groups === undefined) {
    groups = new Map();
    groupsOf.set(ictx, groups);
  }
  const cur = groups.get(group);
  if (cur !== undefined) {
    cur.refs++;
    return cur;
  }
  const igroup = new IommufdGroup(ictx, group);
  groups.set(group, igroup);
  return igroup;
}

/** `iommufd_put_group`. */
function putGroup(igroup: IommufdGroup): void {
  if (--igroup.refs > 0) return;
  groupsOf.get(igroup.ictx)?.delete(igroup.group);
}

/**
 * A device bound to an iommufd context (`struct iommufd_device`, `IOMMUFD_OBJ_DEVICE`).
 */
export class IommufdDevice extends IommufdObject {
  /** Always `IOMMUFD_OBJ_DEVICE`. */
  readonly type = IommufdObjectType.DEVICE;
  /** The device. */
  readonly dev: Device;
  /** The context's state of the device's IOMMU group. */
  readonly igroup: IommufdGroup;
  /** `enforce_cache_coherency`: the IOMMU reports `IommuCap.ENFORCE_CACHE_COHERENCY` for it. */
  readonly enforceCacheCoherency: boolean;
  /** A selftest mock device (no context reference). */
  readonly mock: boolean;

  /**
   * Use {@link iommufdDeviceBind}.
   * @param ictx - the context
   * @param dev - the device
   * @param igroup - its group state (the reference moves in)
   * @param mock - selftest mock device
   */
  constructor(ictx: IommufdCtx, dev: Device, igroup: IommufdGroup, mock: boolean) {
    super(ictx);
    this.dev = dev;
    this.igroup = igroup;
    this.mock = mock;
    this.enforceCacheCoherency = ictx.iommu.deviceIommuCapable(dev, IommuCap.ENFORCE_CACHE_COHERENCY);
  }

  /** The HWPT the device is attached to, or null (`iommufd_device_is_attached`). */
  get hwpt(): IommufdHwPagetable | null {
    return this.igroup.devices.includes(this) ? this.igroup.hwpt : null;
  }

  /**
   * `iommufd_device_destroy`: give DMA ownership back, drop the group state and (except for mock
   * devices) the context reference.
   */
  destroy(): void {
    this.ictx.iommu.iommuDeviceReleaseDmaOwner(this.dev);
    putGroup(this.igroup);
    if (!this.mock) this.ictx.put();
  }
}

/**
 * `iommufd_device_bind(ictx, dev, &id)`: bind a device to a context.
 * @param ictx - the context
 * @param dev - a probed device
 * @param options - `mock` for selftest devices
 * @returns the device object, finalized (ID in `.id`), `users` 2 (table + driver)
 * @throws ErrnoError `EINVAL` (the IOMMU does not report `IommuCap.CACHE_COHERENCY`, which includes
 *   devices without an IOMMU, as in Linux where that check comes first), `ENODEV` (no IOMMU group),
 *   the DMA-ownership errors of `iommuDeviceClaimDmaOwner` (`EPERM` while a kernel driver uses the
 *   DMA API on the group or another context owns it, `EBUSY` while the group is attached to a
 *   domain other than its default one), `ENOSPC`; nothing changes on failure
 */
export function iommufdDeviceBind(
  ictx: IommufdCtx,
  dev: Device,
  options: IommufdDeviceBindOptions = {},
): IommufdDevice {
  const sub = ictx.iommu;
  if (!sub.deviceIommuCapable(dev, IommuCap.CACHE_COHERENCY))
    throw new ErrnoError('EINVAL', `${dev.name}: DMA is not cache coherent`);
  const igroup = getGroup(ictx, dev);
  try {
    sub.iommuDeviceClaimDmaOwner(dev, ictx);
  } catch (e) {
    putGroup(igroup);
    throw e;
  }
  const mock = options.mock ?? false;
  const idev = new IommufdDevice(ictx, dev, igroup, mock);
  try {
    ictx.objectAlloc(idev);
  } catch (e) {
    sub.iommuDeviceReleaseDmaOwner(dev);
    putGroup(igroup);
    throw e;
  }
  if (!mock) ictx.get();
  idev.users++;
  ictx.objectFinalize(idev);
  return idev;
}

/**
 * `iommufd_device_unbind(idev)`: detach the device if it is still attached, then drop the driver's
 * reference, destroying the object (DMA ownership goes back, the context reference is dropped).
 * @param idev - from {@link iommufdDeviceBind}
 */
export function iommufdDeviceUnbind(idev: IommufdDevice): void {
  if (idev.hwpt !== null) iommufdDeviceDetach(idev);
  idev.ictx.objectDestroyUser(idev);
}

/**
 * `iommufd_get_device(ucmd, id)`: the device with ID `id`.
 * @param ictx - the context
 * @param id - object ID
 * @returns the device
 * @throws ErrnoError `ENOENT` if `id` is not a device
 */
export function iommufdGetDevice(ictx: IommufdCtx, id: number): IommufdDevice {
  return ictx.getObject(id, IommufdObjectType.DEVICE) as IommufdDevice;
}

/**
 * `iommufd_device_attach_reserved_iova`: reserve the device's reserved regions in the IOAS of
 * `paging` (owner: the device) and remember the SW_MSI window.
 */
function attachReservedIova(idev: IommufdDevice, paging: IommufdHwptPaging): void {
  const iopt = paging.ioas.iopt;
  const swMsi = iopt.tableEnforceDevResvRegions(idev.dev, idev.dev);
  if (swMsi !== null) {
    if (idev.igroup.swMsiStart !== null && idev.igroup.swMsiStart !== swMsi) {
      iopt.removeReservedIova(idev.dev);
      throw new ErrnoError('EINVAL', 'devices of one group report different SW_MSI windows');
    }
    idev.igroup.swMsiStart = swMsi;
  }
}

/**
 * `iommufd_hw_pagetable_attach(hwpt, idev)`: attach `idev` to `hwpt`. The first device of a group
 * attaches the whole IOMMU group; later ones only add their reserved regions. Takes a `users`
 * reference on `hwpt`.
 * @param hwpt - the HWPT
 * @param idev - the device
 * @throws ErrnoError `EINVAL` (the group is attached to another HWPT, or the device already is
 *   attached), reserved-region errors (`EADDRINUSE`), the core's attach errors (`EINVAL` for an
 *   incompatible domain, the driver's errno); nothing changes on failure
 */
export function iommufdHwPagetableAttach(hwpt: IommufdHwPagetable, idev: IommufdDevice): void {
  const igroup = idev.igroup;
  if (igroup.hwpt !== null && igroup.hwpt !== hwpt)
    throw new ErrnoError('EINVAL', 'the group is attached to another HWPT');
  if (igroup.devices.includes(idev)) throw new ErrnoError('EINVAL', 'the device is already attached');
  const paging = findHwptPaging(hwpt);
  if (paging !== null) attachReservedIova(idev, paging);
  if (igroup.devices.length === 0) {
    const domain = hwpt.attachedDomain;
    const handle: IommufdAttachHandle = { domain, idev };
    try {
      idev.ictx.iommu.iommuAttachGroupHandle(domain, igroup.group, handle);
    } catch (e) {
      if (paging !== null) paging.ioas.iopt.removeReservedIova(idev.dev);
      throw e;
    }
    igroup.hwpt = hwpt;
  }
  hwpt.users++;
  igroup.devices.push(idev);
}

/**
 * `iommufd_hw_pagetable_detach(idev)`: take `idev` off its HWPT (the last device of the group
 * detaches the group, which goes back to its blocking domain) and drop its reserved regions. The
 * device's reference on the HWPT is left for the caller to put.
 * @param idev - an attached device
 * @returns the HWPT it was attached to
 */
export function iommufdHwPagetableDetach(idev: IommufdDevice): IommufdHwPagetable {
  const igroup = idev.igroup;
  const hwpt = igroup.hwpt;
  const i = igroup.devices.indexOf(idev);
  if (hwpt === null || i < 0) throw new Error(`${idev.dev.name} is not attached`);
  igroup.devices.splice(i, 1);
  if (igroup.devices.length === 0) {
    idev.ictx.iommu.iommuDetachGroupHandle(hwpt.attachedDomain, igroup.group);
    igroup.hwpt = null;
  }
  const paging = findHwptPaging(hwpt);
  if (paging !== null) paging.ioas.iopt.removeReservedIova(idev.dev);
  return hwpt;
}

/** The attach pair {@link iommufdHwptPagingAlloc} uses for an immediate attach. */
const HWPT_ATTACH: IommufdHwptImmediateAttach = {
  attach: iommufdHwPagetableAttach,
  detach: iommufdHwPagetableDetach,
};

/** `attach_fn`: attach or replace; returns the HWPT whose reference the caller must put, or null. */
type AttachFn = (idev: IommufdDevice, hwpt: IommufdHwPagetable) => IommufdHwPagetable | null;

/** `iommufd_device_do_attach`. */
const doAttach: AttachFn = (idev, hwpt) => {
  iommufdHwPagetableAttach(hwpt, idev);
  return null;
};

/** Drop the reservations of every attached device of the group from `paging`'s IOAS. */
function groupRemoveReservedIova(igroup: IommufdGroup, paging: IommufdHwptPaging): void {
  for (const cur of igroup.devices) paging.ioas.iopt.removeReservedIova(cur.dev);
}

/** `iommufd_device_do_replace`. */
const doReplace: AttachFn = (idev, hwpt) => {
  const igroup = idev.igroup;
  const old = igroup.hwpt;
  if (old === null) throw new ErrnoError('EINVAL', 'the group is not attached');
  if (!igroup.devices.includes(idev)) throw new ErrnoError('EINVAL', 'the device is not attached');
  if (hwpt === old) return null;
  const paging = findHwptPaging(hwpt);
  const oldPaging = findHwptPaging(old);
  const otherIoas = paging !== null && (oldPaging === null || paging.ioas !== oldPaging.ioas);
  if (otherIoas) {
    try {
      for (const cur of igroup.devices) paging.ioas.iopt.tableEnforceDevResvRegions(cur.dev, cur.dev);
    } catch (e) {
      groupRemoveReservedIova(igroup, paging);
      throw e;
    }
  }
  const domain = hwpt.attachedDomain;
  try {
    const handle: IommufdAttachHandle = { domain, idev };
    idev.ictx.iommu.iommuReplaceGroupHandle(domain, igroup.group, handle);
  } catch (e) {
    // Linux drops the new IOAS's reservations of the group here; when the IOAS did not change that
    // would also drop the ones the attached devices hold, so only what was added is removed.
    if (otherIoas) groupRemoveReservedIova(igroup, paging);
    throw e;
  }
  if (oldPaging !== null && (paging === null || paging.ioas !== oldPaging.ioas))
    groupRemoveReservedIova(igroup, oldPaging);
  igroup.hwpt = hwpt;
  // The references the attached devices hold move to the new HWPT; the caller drops the last one
  // on the old HWPT (which may destroy it).
  const n = igroup.devices.length;
  hwpt.users += n;
  old.users -= n - 1;
  return old;
};

/**
 * `iommufd_device_auto_get_domain`: attach (or replace) `idev` to an automatic HWPT of `ioas`,
 * creating one if none accepts it.
 * @returns the HWPT ID and the HWPT to put
 */
function autoGetDomain(
  idev: IommufdDevice,
  ioas: IommufdIoas,
  fn: AttachFn,
): { id: number; destroy: IommufdHwPagetable | null } {
  const immediateAttach = fn === doAttach;
  for (const entry of [...ioas.hwptList]) {
    const hwpt = entry as IommufdHwptPaging;
    if (!hwpt.auto) continue;
    try {
      return { id: hwpt.id, destroy: fn(idev, hwpt) };
    } catch (e) {
      if (e instanceof ErrnoError && e.code === 'EINVAL') continue;
      throw e;
    }
  }
  const ictx = idev.ictx;
  const hwpt = iommufdHwptPagingAlloc(ictx, ioas, idev, 0, immediateAttach ? HWPT_ATTACH : null);
  let destroy: IommufdHwPagetable | null = null;
  if (!immediateAttach) {
    try {
      destroy = fn(idev, hwpt);
    } catch (e) {
      ictx.objectAbortAndDestroy(hwpt);
      throw e;
    }
  }
  hwpt.auto = true;
  ictx.objectFinalize(hwpt);
  return { id: hwpt.id, destroy };
}

/** `iommufd_device_change_pt`: look `ptId` up and attach or replace. @returns the HWPT ID */
function changePt(idev: IommufdDevice, ptId: number, fn: AttachFn): number {
  const ictx = idev.ictx;
  const obj = ictx.getObject(ptId, IommufdObjectType.ANY);
  let id: number;
  let destroy: IommufdHwPagetable | null;
  switch (obj.type) {
    case IommufdObjectType.HWPT_PAGING:
    case IommufdObjectType.HWPT_NESTED:
      destroy = fn(idev, obj as IommufdHwPagetable);
      id = obj.id;
      break;
    case IommufdObjectType.IOAS:
      ({ id, destroy } = autoGetDomain(idev, obj as IommufdIoas, fn));
      break;
    default:
      throw new ErrnoError('EINVAL', `object ${ptId} is neither an IOAS nor a HWPT`);
  }
  if (destroy !== null) iommufdHwPagetablePut(ictx, destroy);
  return id;
}

/**
 * `iommufd_device_attach(idev, &pt_id)`: connect the device to an IOAS (automatic HWPT) or a HWPT.
 * @param idev - a bound, unattached device
 * @param ptId - an IOAS, paging HWPT or nested HWPT ID
 * @returns the ID of the HWPT now attached
 * @throws ErrnoError `ENOENT` (no object `ptId`), `EINVAL` (another object type, the group
 *   attached to another HWPT, the device already attached, an incompatible HWPT), `EADDRINUSE`
 *   (a reserved region of the device meets an area or allowed range of the IOAS), HWPT allocation
 *   and attach errors; nothing changes on failure
 */
export function iommufdDeviceAttach(idev: IommufdDevice, ptId: number): number {
  const id = changePt(idev, ptId, doAttach);
  idev.users++;
  return id;
}

/**
 * `iommufd_device_replace(idev, &pt_id)`: move an attached device (its whole group) to another IOAS
 * or HWPT without a blocked window in between. Replacing with the current HWPT changes nothing; an
 * automatic HWPT left without devices is destroyed.
 * @param idev - an attached device
 * @param ptId - an IOAS, paging HWPT or nested HWPT ID
 * @returns the ID of the HWPT now attached
 * @throws ErrnoError `ENOENT` (no object `ptId`), `EINVAL` (another object type, the device not
 *   attached, an incompatible HWPT), `EADDRINUSE`, allocation and attach errors; nothing changes
 *   on failure
 */
export function iommufdDeviceReplace(idev: IommufdDevice, ptId: number): number {
  return changePt(idev, ptId, doReplace);
}

/**
 * `iommufd_device_detach(idev)`: disconnect the device; the group goes back to blocked DMA once
 * its last device leaves, and an automatic HWPT left without devices is destroyed.
 * @param idev - an attached device
 * @throws Error if the device is not attached (a caller bug; Linux warns)
 */
export function iommufdDeviceDetach(idev: IommufdDevice): void {
  const hwpt = iommufdHwPagetableDetach(idev);
  iommufdHwPagetablePut(idev.ictx, hwpt);
  idev.users--;
}
