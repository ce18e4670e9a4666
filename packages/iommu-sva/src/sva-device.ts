/**
 * The seed's per-device SVA set-up (2018 series v2: `iommu_sva_device_init`,
 * `iommu_sva_device_shutdown`): a device driver declares the features it needs and registers its
 * `mm_exit` callback before binding.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { Device } from '@iommu-ts/iommu-core';
import { type MmExitCallback, svaStateOf } from './sva-state.js';

/** `IOMMU_SVA_FEAT_IOPF` (bit 0): the device resolves faults through I/O page faults. */
export const IOMMU_SVA_FEAT_IOPF = 1 << 0;

/**
 * `iommu_sva_device_init(dev, features, max_pasid, mm_exit)` (seed): register the device's SVA
 * parameters and its `mm_exit` callback, called when a bound mm exits.
 * @param dev - a probed device
 * @param features - `IOMMU_SVA_FEAT_*` bits
 * @param maxPasid - highest PASID the device can use (0: its `max_pasids - 1`)
 * @param mmExit - the callback, or `null`
 * @throws ErrnoError `ENODEV` without an IOMMU; `EINVAL` for unknown features; `EEXIST` if already
 *   initialised
 */
export function iommuSvaDeviceInit(
  dev: Device,
  features: number,
  maxPasid: number,
  mmExit: MmExitCallback | null,
): void {
  const sub = dev.iommu?.subsystem;
  if (sub === undefined || dev.iommuGroup === null) throw new ErrnoError('ENODEV', `${dev.name}: no IOMMU`);
  if (features & ~IOMMU_SVA_FEAT_IOPF)
    throw new ErrnoError('EINVAL', `unknown SVA features 0x${features.toString(16)}`);
  const params = svaStateOf(sub).deviceParams;
  if (params.has(dev)) throw new ErrnoError('EEXIST', `${dev.name}: SVA already initialised`);
  const max = maxPasid === 0 ? (dev.iommu?.maxPasids ?? 1) - 1 : maxPasid;
  params.set(dev, { mmExit, features, maxPasid: max });
}

/**
 * `iommu_sva_device_shutdown(dev)` (seed): forget the device's SVA parameters. The driver unbinds
 * its bindings first.
 * @param dev - the device
 * @throws ErrnoError `ENODEV` if the device was not initialised
 */
export function iommuSvaDeviceShutdown(dev: Device): void {
  const sub = dev.iommu?.subsystem;
  if (sub === undefined || !svaStateOf(sub).deviceParams.delete(dev))
    throw new ErrnoError('ENODEV', `${dev.name}: SVA not initialised`);
}
