/**
 * Binding a process address space to a device (drivers/iommu/iommu-sva.c `iommu_sva_bind_device`,
 * `iommu_sva_unbind_device`, `iommu_sva_get_pasid`, and the ~v5.x `iommu_sva_find`).
 */

import { ErrnoError } from '@iommu-ts/base';
import { IOMMU_PASID_INVALID } from '@iommu-ts/ioasid';
import {
  type Device,
  IOMMU_DOMAIN_SVA,
  type IommuAttachHandle,
  type IommuDomain,
  type IommuSubsystem,
  PCI_ACS_CR,
  PCI_ACS_RR,
  PCI_ACS_SV,
  PCI_ACS_UF,
  PciDevice,
  PlatformDevice,
  pciAcsPathEnabled,
  pciPriEnabled,
} from '@iommu-ts/iommu-core';
import type { Mm } from '@iommu-ts/mm';
import { IommuMmData, iommuAllocMmData } from './mm-data.js';
import { iommuSvaIopfHandler } from './sva-fault.js';
import { svaDomainInfo, svaNotifierRegister, svaNotifierUnregister } from './sva-notifier.js';
import { allSvaStates, type SvaState, svaStateOf } from './sva-state.js';

/**
 * `struct iommu_sva`: one binding of an mm to a device, returned by {@link iommuSvaBindDevice}. The
 * same handle comes back, with one more user, when the same device binds the same mm again.
 */
export class IommuSva {
  /** `handle`: the attach handle stored at the mm's PASID in the device's group. */
  readonly handle: IommuAttachHandle;
  /** `dev`: the device. */
  readonly dev: Device;
  /** `users`: binds not yet unbound. */
  users = 1;
  /** The driver data given to the first bind (passed to the seed's `mm_exit` callback). */
  readonly drvdata: unknown;
  /** Whether the `mm_exit` callback already ran for this binding. */
  mmExited = false;

  /** @internal */
  constructor(domain: IommuDomain, dev: Device, drvdata: unknown) {
    this.handle = { domain, sva: this } as IommuAttachHandle;
    this.dev = dev;
    this.drvdata = drvdata;
  }

  /** The SVA domain. */
  get domain(): IommuDomain {
    return this.handle.domain;
  }
}

/** Options of {@link iommuSvaBindDevice}. */
export interface IommuSvaBindOptions {
  /** Driver data for the seed's `mm_exit` callback (`drvdata` of the 2018 bind). */
  readonly drvdata?: unknown;
}

const REQ_ACS = PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF;

function checkIsolation(state: SvaState, dev: Device): void {
  const group = dev.iommuGroup;
  if (group === null) return;
  if (state.options.groupCheck === 'singleton') {
    const alone =
      group.deviceCount === 1 && (!(dev instanceof PciDevice) || pciAcsPathEnabled(dev, null, REQ_ACS));
    if (!alone)
      throw new ErrnoError('EINVAL', `${dev.name}: group ${group.id} is not an immutable singleton`);
  } else if (dev instanceof PciDevice && !dev.pasidCap?.enabled) {
    throw new ErrnoError('EINVAL', `${dev.name}: PASID not enabled (needs ACS RR|UF upstream)`);
  }
}

function checkIopf(state: SvaState, dev: Device): void {
  if (!state.options.requireIopf) return;
  const ok = dev instanceof PciDevice ? pciPriEnabled(dev) : dev instanceof PlatformDevice && dev.dmaCanStall;
  if (!ok) throw new ErrnoError('EINVAL', `${dev.name}: I/O page faults not enabled (PRI or stall)`);
}

function svaHandleAt(
  dev: Device,
  pasid: number,
): { handle: IommuAttachHandle | null; domain: IommuDomain } | null {
  const e = dev.iommuGroup?.pasidArray.get(pasid);
  return e === undefined ? null : { handle: e.handle, domain: e.domain };
}

/**
 * `iommu_sva_bind_device(dev, mm)`: let `dev` DMA on `mm`'s addresses through the mm's PASID.
 *
 * Order of checks and their errnos: no group → `ENODEV`; group isolation (see
 * {@link IommuSvaOptions.groupCheck}) → `EINVAL`; the mm's PASID (`EBUSY` page tables not
 * shareable, `EOVERFLOW` the mm's PASID is at or above the device's `max_pasids`, `ENOSPC` the
 * device has no PASIDs or none is free); the PASID already holds something else in the group →
 * `EBUSY` (a binding of the same mm: the same handle with one more user); I/O page faults not
 * enabled → `EINVAL`; then an existing SVA domain of this mm is tried (`set_dev_pasid`), else a new
 * one is allocated (`EOPNOTSUPP` if the driver has none) and attached, with the driver's errors.
 * The PASID stays with the mm whatever happens.
 *
 * @param dev - a probed device
 * @param mm - the address space; the caller holds a user reference (`mmget`)
 * @param options - `drvdata` for the seed's `mm_exit` callback
 * @returns the binding
 * @throws ErrnoError as above
 */
export function iommuSvaBindDevice(dev: Device, mm: Mm, options: IommuSvaBindOptions = {}): IommuSva {
  const group = dev.iommuGroup;
  const sub = dev.iommu?.subsystem;
  if (group === null || sub === undefined) throw new ErrnoError('ENODEV', `${dev.name}: no IOMMU group`);
  const state = svaStateOf(sub);
  checkIsolation(state, dev);
  const data = iommuAllocMmData(state, mm, dev);
  const cur = svaHandleAt(dev, data.pasid);
  if (cur !== null) {
    const sva = (cur.handle as { sva?: IommuSva } | null)?.sva;
    if (cur.domain.type !== IOMMU_DOMAIN_SVA || sva === undefined || cur.domain.mm !== mm)
      throw new ErrnoError('EBUSY', `PASID ${data.pasid} of ${dev.name} is in use`);
    sva.users++;
    return sva;
  }
  checkIopf(state, dev);
  for (const domain of data.svaDomains) {
    const sva = new IommuSva(domain, dev, options.drvdata);
    try {
      sub.iommuAttachDevicePasid(domain, dev, data.pasid, sva.handle);
    } catch {
      continue;
    }
    domain.users++;
    svaDomainInfo(domain).bindings.add(sva);
    return sva;
  }
  const domain = sub.iommuSvaDomainAlloc(dev, mm);
  domain.iopfHandler = iommuSvaIopfHandler;
  const sva = new IommuSva(domain, dev, options.drvdata);
  try {
    sub.iommuAttachDevicePasid(domain, dev, data.pasid, sva.handle);
  } catch (e) {
    sub.iommuDomainFree(domain);
    throw e;
  }
  domain.users = 1;
  svaNotifierRegister(data, domain).bindings.add(sva);
  if (data.svaDomains.length === 0) state.mms.add(data);
  data.svaDomains.unshift(domain);
  return sva;
}

/**
 * `iommu_sva_unbind_device(handle)`: drop one user of the binding; the last one detaches the PASID
 * from the device and, with the domain's last binding, frees the SVA domain. The device must have
 * stopped using the PASID, and its page requests must have been flushed, before the call.
 * @param handle - a binding from {@link iommuSvaBindDevice}
 * @throws Error if the binding was already fully unbound
 */
export function iommuSvaUnbindDevice(handle: IommuSva): void {
  if (handle.users <= 0) throw new Error(`${handle.dev.name}: unbind of a released SVA handle`);
  if (--handle.users > 0) return;
  const domain = handle.domain;
  const dev = handle.dev;
  const info = svaDomainInfo(domain);
  const sub = dev.iommu?.subsystem as IommuSubsystem;
  sub.iommuDetachDevicePasid(domain, dev, info.data.pasid);
  info.bindings.delete(handle);
  if (--domain.users > 0) return;
  const data = info.data;
  const i = data.svaDomains.indexOf(domain);
  if (i >= 0) data.svaDomains.splice(i, 1);
  if (data.svaDomains.length === 0) data.state.mms.delete(data);
  svaNotifierUnregister(domain);
  sub.iommuDomainFree(domain);
}

/**
 * `iommu_sva_get_pasid(handle)`: the PASID the device must put on its DMA for this binding.
 * @param handle - the binding
 * @returns the PASID, or `IOMMU_PASID_INVALID` once the mm's PASID was dropped
 */
export function iommuSvaGetPasid(handle: IommuSva): number {
  const mm = handle.domain.mm;
  return mm?.iommuMm instanceof IommuMmData ? mm.iommuMm.pasid : IOMMU_PASID_INVALID;
}

/**
 * `iommu_sva_find(pasid)` (2018 series and ~v5.13 to v6.3): the mm using `pasid`, with a user
 * reference the caller must drop with `mmput`, or `null` if no mm has it or the mm is exiting.
 * @param pasid - the PASID
 * @param sub - the subsystem to search; default every subsystem
 */
export function iommuSvaFind(pasid: number, sub?: IommuSubsystem): Mm | null {
  const states = sub === undefined ? [...allSvaStates] : [svaStateOf(sub)];
  for (const s of states) {
    const d = s.byPasid.get(pasid);
    if (d?.mm.mmgetNotZero()) return d.mm;
  }
  return null;
}
