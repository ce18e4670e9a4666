/**
 * I/O page faults of a VT-d device: the per-device IOPF reference count that puts the device on
 * its unit's IOPF queue (drivers/iommu/intel/prq.c `intel_iommu_enable_iopf`,
 * `intel_iommu_disable_iopf`; iommu.h `iopf_for_domain_set` / `iopf_for_domain_remove`; older
 * iommu.c `intel_iommu_enable_iopf` that also turned PRI on; digest §5.5, §8.10 step 4).
 *
 * @remarks
 * PRI is enabled at probe when the rules of §5.5 allow it (device.ts). For a device whose PRI was
 * left off at probe, the first reference enables it here (reset, then enable with the PRQ's
 * request capacity) as kernels up to v6.14 did from `dev_enable_feat(IOPF)`, and the last
 * reference turns it off again.
 */

import { ErrnoError } from '@iommu-ts/base';
import { iopfQueueAddDevice, iopfQueueRemoveDevice } from '@iommu-ts/io-pgfault';
import {
  PciDevice,
  pciDisablePri,
  pciEnablePri,
  pciPrgRespPasidRequired,
  pciPriEnabled,
  pciResetPri,
} from '@iommu-ts/iommu-core';
import type { DeviceDomainInfo } from './device-info.js';
import { PRQ_ORDER } from './regs.js';

/** IOPF state per device (`info->iopf_refcount` and whether this file turned PRI on). */
interface IopfState {
  refcount: number;
  priEnabledHere: boolean;
}

const states = new WeakMap<DeviceDomainInfo, IopfState>();

/**
 * `info->iopf_refcount`: how many users have I/O page faults enabled on the device.
 * @param info - the device
 * @returns the count (0 = not on the unit's IOPF queue)
 */
export function intelIommuIopfRefcount(info: DeviceDomainInfo): number {
  return states.get(info)?.refcount ?? 0;
}

/**
 * `intel_iommu_enable_iopf(dev)`: take an IOPF reference; the first one enables PRI at the PCI
 * function if probe left it off (the device must have ATS enabled, PRI supported, and a PRG
 * response that carries the PASID when PASID is enabled) and adds the device to the unit's IOPF
 * queue.
 * @param info - the device
 * @throws ErrnoError `ENODEV` (not a PCI function with PRI support and ATS enabled, or the unit
 *   has no IOPF queue), `EINVAL` (PASID enabled but the PRG response carries no PASID), `EBUSY`
 *   (PRI enabled by someone else; the device is on another fault queue), the PCI errors of
 *   `pciResetPri` / `pciEnablePri`; nothing changes on error
 */
export function intelIommuEnableIopf(info: DeviceDomainInfo): void {
  const st = states.get(info);
  if (st !== undefined && st.refcount > 0) {
    st.refcount++;
    return;
  }
  const dev = info.dev;
  const queue = info.iommu.iopfQueue;
  if (!(dev instanceof PciDevice)) throw new ErrnoError('ENODEV', `${dev.name}: not a PCI function`);
  if (!info.priEnabled) {
    if (!info.atsEnabled || !info.priSupported)
      throw new ErrnoError('ENODEV', `${dev.name}: no ATS/PRI for I/O page faults`);
    if (info.pasidEnabled && !pciPrgRespPasidRequired(dev))
      throw new ErrnoError('EINVAL', `${dev.name}: PRG response without PASID`);
    if (pciPriEnabled(dev)) throw new ErrnoError('EBUSY', `${dev.name}: PRI already enabled`);
  }
  if (queue === null) throw new ErrnoError('ENODEV', `${info.iommu.name}: no IOPF queue`);
  let priEnabledHere = false;
  if (!info.priEnabled) {
    const r = pciResetPri(dev);
    if (r !== 0) throw new ErrnoError('EINVAL', `${dev.name}: PRI reset failed (${r})`);
    const e = pciEnablePri(dev, 4096 << PRQ_ORDER);
    if (e !== 0) throw new ErrnoError('EINVAL', `${dev.name}: PRI enable failed (${e})`);
    info.priEnabled = true;
    priEnabledHere = true;
  }
  try {
    iopfQueueAddDevice(queue, dev);
  } catch (e) {
    if (priEnabledHere) {
      pciDisablePri(dev);
      info.priEnabled = false;
    }
    throw e;
  }
  states.set(info, { refcount: 1, priEnabledHere });
  const rid = (info.bus << 8) | info.devfn;
  const entry = info.iommu.devices.get(rid);
  if (entry !== undefined) info.iommu.devices.set(rid, { ...entry, iopfEnabled: true });
}

/**
 * `intel_iommu_disable_iopf(dev)`: drop an IOPF reference; the last one removes the device from
 * the unit's IOPF queue (pending groups answered Invalid by io-pgfault) and turns off the PRI that
 * {@link intelIommuEnableIopf} turned on.
 * @param info - the device
 * @throws ErrnoError `EINVAL` when I/O page faults are not enabled
 */
export function intelIommuDisableIopf(info: DeviceDomainInfo): void {
  const st = states.get(info);
  if (st === undefined || st.refcount === 0)
    throw new ErrnoError('EINVAL', `${info.dev.name}: I/O page faults not enabled`);
  if (--st.refcount > 0) return;
  const queue = info.iommu.iopfQueue;
  if (queue !== null) iopfQueueRemoveDevice(queue, info.dev);
  if (st.priEnabledHere && info.dev instanceof PciDevice) {
    pciDisablePri(info.dev);
    info.priEnabled = false;
  }
  states.delete(info);
  const rid = (info.bus << 8) | info.devfn;
  const entry = info.iommu.devices.get(rid);
  if (entry !== undefined) info.iommu.devices.set(rid, { ...entry, iopfEnabled: info.priEnabled });
}
