/**
 * How a device driver of the SVA era (idxd, uacce, ≤ v6.14) brings an accelerator to a process:
 * enable I/O page faults and SVA on the device (`iommu_dev_enable_feature`), bind the process's mm
 * (`iommu_sva_bind_device`), and undo both in reverse order.
 */

import type { Device } from '@iommu-ts/iommu-core';
import { IommuDevFeature } from '@iommu-ts/iommu-core';
import {
  type IommuSva,
  iommuSvaBindDevice,
  iommuSvaGetPasid,
  iommuSvaUnbindDevice,
} from '@iommu-ts/iommu-sva';
import type { Mm } from '@iommu-ts/mm';
import type { SimMachine } from '../../machine/machine.js';

/** One device bound to a process. */
export interface SvaBinding {
  /** The device. */
  readonly dev: Device;
  /** The bind handle. */
  readonly handle: IommuSva;
  /** The PASID the device's DMA carries. */
  readonly pasid: number;
}

/**
 * Enable IOPF and SVA on `dev`, then bind `mm` to it.
 * @param machine - the machine (its IOMMU core)
 * @param dev - a probed device with PASID and PRI or stall
 * @param mm - the process's address space
 * @returns the binding
 * @throws ErrnoError from `iommuDevEnableFeature` or `iommuSvaBindDevice` (features enabled here are
 *   disabled again before the error propagates)
 */
export function svaBind(machine: SimMachine, dev: Device, mm: Mm): SvaBinding {
  const core = machine.iommu;
  core.iommuDevEnableFeature(dev, IommuDevFeature.IOPF);
  try {
    core.iommuDevEnableFeature(dev, IommuDevFeature.SVA);
  } catch (e) {
    core.iommuDevDisableFeature(dev, IommuDevFeature.IOPF);
    throw e;
  }
  try {
    const handle = iommuSvaBindDevice(dev, mm);
    return { dev, handle, pasid: iommuSvaGetPasid(handle) };
  } catch (e) {
    core.iommuDevDisableFeature(dev, IommuDevFeature.SVA);
    core.iommuDevDisableFeature(dev, IommuDevFeature.IOPF);
    throw e;
  }
}

/**
 * Unbind and disable SVA and IOPF on the device (the driver's release path).
 * @param machine - the machine
 * @param b - a binding from {@link svaBind}
 * @throws ErrnoError from `iommuDevDisableFeature`
 */
export function svaUnbind(machine: SimMachine, b: SvaBinding): void {
  iommuSvaUnbindDevice(b.handle);
  machine.iommu.iommuDevDisableFeature(b.dev, IommuDevFeature.SVA);
  machine.iommu.iommuDevDisableFeature(b.dev, IommuDevFeature.IOPF);
}
