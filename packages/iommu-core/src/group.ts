/**
 * `struct iommu_group` and the group selection helpers (`generic_device_group`,
 * `generic_single_device_group`, `pci_device_group` of iommu.c).
 *
 * Changes (additive only): none yet.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { Device } from './device.js';
import type { IommuDomain } from './domain.js';
import type { IommuAttachHandle } from './fault.js';
import {
  PciDevice,
  pciAcsEnabled,
  pciAcsPathEnabled,
  pciDevsAreDmaAliases,
  pciForEachDmaAlias,
  REQ_ACS_FLAGS,
} from './pci.js';

/** `struct group_device`: a member of a group and its sysfs link name. */
export interface GroupDevice {
  /** The device. */
  readonly dev: Device;
  /** Link name (the device name, `.N`-suffixed on a clash). */
  readonly name: string;
}

/** One entry of a group's `pasid_array`: a bare domain (tag 0) or an attach handle (tag 1). */
export interface GroupPasidEntry {
  /** The domain attached at that PASID. */
  readonly domain: IommuDomain;
  /** The handle, or `null` for a bare-domain entry. */
  readonly handle: IommuAttachHandle | null;
}

/**
 * `struct iommu_group`.
 *
 * @remarks
 * Created by `IommuSubsystem.iommuGroupAlloc` (drivers use the helpers below). All state changes go
 * through the subsystem's calls; fields are public for inspection.
 */
export class IommuGroup {
  /** `id`, from the subsystem's group IDA. */
  readonly id: number;
  /** `devices`, in the order they joined. */
  readonly devices: GroupDevice[] = [];
  /** `pasid_array`: PASID → entry. PASID 0 holds handle-based RID attachments. */
  readonly pasidArray = new Map<number, GroupPasidEntry>();
  /** `default_domain`. */
  defaultDomain: IommuDomain | null = null;
  /** `blocking_domain`. */
  blockingDomain: IommuDomain | null = null;
  /** `resetting_domain`: non-null while a PCI reset is in progress. */
  resettingDomain: IommuDomain | null = null;
  /** `domain`: the RID domain attached to every device of the group. */
  domain: IommuDomain | null = null;
  /** `owner_cnt`. */
  ownerCnt = 0;
  /** `owner`: the DMA owner cookie (`iommu_group_claim_dma_owner`), or `null`. */
  owner: object | null = null;
  /** `name` (`iommu_group_set_name`), or `null`. */
  name: string | null = null;
  /** `iommu_data` (`iommu_group_set_iommudata`). */
  iommuData: unknown = null;
  /**
   * Seed (SVA/IOPF refactoring RFC v3): the group can never have more than one member, even after
   * hot plug (`iommu_group_singleton_lockdown`). Set by `pciDeviceGroup` when the function is
   * isolated by ACS on the whole path; drivers may set it for groups they know to be singletons.
   */
  immutableSingleton = false;
  /** Reference count (`iommu_group_get` / `iommu_group_put`). */
  refcount = 1;

  /** @internal use `IommuSubsystem.iommuGroupAlloc` */
  constructor(id: number) {
    this.id = id;
  }

  /** `iommu_group_device_count(group)`. */
  get deviceCount(): number {
    return this.devices.length;
  }

  /** The first device (`list_first_entry(&group->devices)`), or `undefined`. */
  get firstDevice(): Device | undefined {
    return this.devices[0]?.dev;
  }

  /** `iommu_group_for_each_dev(group, fn)`: stops at and returns the first non-zero result. */
  forEachDev(fn: (dev: Device) => number): number {
    for (const gd of this.devices) {
      const r = fn(gd.dev);
      if (r !== 0) return r;
    }
    return 0;
  }
}

function subsystemOf(dev: Device) {
  const sub = dev.iommu?.subsystem;
  if (!sub) throw new ErrnoError('ENODEV', `${dev.name}: not being probed`);
  return sub;
}

/**
 * `generic_device_group(dev)`: a new group for every device.
 * @throws ErrnoError `ENODEV` when the device is not being probed by a subsystem
 */
export function genericDeviceGroup(dev: Device): IommuGroup {
  return subsystemOf(dev).iommuGroupAlloc();
}

/**
 * `generic_single_device_group(dev)`: one group per IOMMU instance, shared by all its devices.
 * @throws ErrnoError `EINVAL` if the device has no IOMMU instance yet
 */
export function genericSingleDeviceGroup(dev: Device): IommuGroup {
  const iommu = dev.iommu?.iommuDev;
  if (!iommu) throw new ErrnoError('EINVAL', `${dev.name}: no IOMMU instance`);
  if (!iommu.singletonGroup) {
    iommu.singletonGroup = subsystemOf(dev).iommuGroupAlloc();
  } else {
    iommu.singletonGroup.refcount++;
  }
  return iommu.singletonGroup;
}

function groupGet(dev: Device): IommuGroup | null {
  const g = dev.iommuGroup;
  if (g) g.refcount++;
  return g;
}

function getPciFunctionAliasGroup(pdev: PciDevice, seen: Set<number>): IommuGroup | null {
  if (!pdev.multifunction || pciAcsEnabled(pdev, REQ_ACS_FLAGS)) return null;
  for (const tmp of pdev.bus.devices) {
    if (tmp === pdev || tmp.slot !== pdev.slot || pciAcsEnabled(tmp, REQ_ACS_FLAGS)) continue;
    const g = getPciAliasGroup(tmp, seen);
    if (g) return g;
  }
  return null;
}

function getPciAliasGroup(pdev: PciDevice, seen: Set<number>): IommuGroup | null {
  if (seen.has(pdev.devfn)) return null;
  seen.add(pdev.devfn);
  const own = groupGet(pdev);
  if (own) return own;
  for (const tmp of pdev.bus.devices) {
    if (tmp === pdev || !pciDevsAreDmaAliases(pdev, tmp)) continue;
    let g = getPciAliasGroup(tmp, seen);
    if (g) return g;
    g = getPciFunctionAliasGroup(tmp, seen);
    if (g) return g;
  }
  return null;
}

/**
 * `pci_device_group(dev)`: the PCI grouping rules.
 *
 * @remarks
 * 1. Any DMA alias on the way up (the function itself, PCIe-to-PCI bridges) already in a group →
 *    that group. 2. Walk up the buses until a bridge has ACS SV|RR|CR|UF on its whole upstream path;
 *    every bridge passed without that isolation becomes the device grouped with, and its group (if
 *    any) is returned. 3. Functions on the same bus aliasing it (`dma_alias_mask`, either way),
 *    recursively, then non-isolated functions of the same slot of a multifunction device → their
 *    group. 4. Else a new group. A new group for a function with ACS isolation on the full path is
 *    marked {@link IommuGroup.immutableSingleton} (seed).
 *
 * @throws ErrnoError `EINVAL` for a non-PCI device
 */
export function pciDeviceGroup(dev: Device): IommuGroup {
  if (!(dev instanceof PciDevice)) throw new ErrnoError('EINVAL', `${dev.name}: not a PCI device`);
  const aliasGroup = pciForEachDmaAlias(dev, (d) => groupGet(d));
  if (aliasGroup) return aliasGroup;
  let pdev: PciDevice = dev;
  for (let bus = dev.bus; !bus.isRoot && bus.parent; bus = bus.parent) {
    const self = bus.self;
    if (!self) continue;
    if (pciAcsPathEnabled(self, null, REQ_ACS_FLAGS)) break;
    pdev = self;
    const g = groupGet(pdev);
    if (g) return g;
  }
  const seen = new Set<number>();
  let g = getPciAliasGroup(pdev, seen);
  if (g) return g;
  g = getPciFunctionAliasGroup(pdev, seen);
  if (g) return g;
  const group = subsystemOf(dev).iommuGroupAlloc();
  group.immutableSingleton =
    pdev === dev &&
    dev.dmaAliases.size === 0 &&
    pciAcsPathEnabled(dev, null, REQ_ACS_FLAGS) &&
    !dev.bus.devices.some((o) => o !== dev && pciDevsAreDmaAliases(o, dev));
  return group;
}
