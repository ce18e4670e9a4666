/**
 * Per-device SMMUv3 state (`struct arm_smmu_master`, arm-smmu-v3.h) and how to find it from a
 * device (`dev_iommu_priv_get`). The attach flows that use it live in master.ts.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { Device } from '@iommu-ts/iommu-core';
import type { ArmSmmuDevice, ArmSmmuStreamMaster } from './arm-smmu-device.js';
import type { ArmSmmuCdTable } from './cd.js';

/**
 * `struct arm_smmu_master`: a device behind an SMMU. Also the {@link ArmSmmuStreamMaster} the
 * event and page-response paths look up in `smmu.streams`.
 */
export class ArmSmmuMaster implements ArmSmmuStreamMaster {
  /** The SMMU. */
  readonly smmu: ArmSmmuDevice;
  /** The device. */
  readonly dev: Device;
  /** `streams[]`: the StreamIDs, in fwspec order (a bridged PCI device may repeat one). */
  readonly streamIds: number[] = [];
  /** `cd_table`, `null` until the first CD is needed. */
  cdTable: ArmSmmuCdTable | null = null;
  /** `cd_table.in_ste`: the installed STE is a CD-table (Config=S1) STE. */
  cdTableInSte = false;
  /** `ste_ats_enabled`: the installed STE has EATS=1. */
  steAtsEnabled = false;
  /** `ssid_bits`: log2 of the CD table size (0 = no PASIDs). */
  ssidBits = 0;
  /** `stall_enabled`. */
  stallEnabled = false;
  /** `ats_enabled`: ATS is enabled at the PCI function. */
  atsEnabled = false;
  /** `iopf_refcount`. */
  iopfRefcount = 0;

  /**
   * @param smmu - the SMMU
   * @param dev - the device
   */
  constructor(smmu: ArmSmmuDevice, dev: Device) {
    this.smmu = smmu;
    this.dev = dev;
  }

  /** The StreamIDs (same array as {@link ArmSmmuMaster.streamIds}), for ATC invalidation. */
  get sids(): readonly number[] {
    return this.streamIds;
  }
}

/**
 * `dev_iommu_priv_get(dev)` as an {@link ArmSmmuMaster}.
 * @throws ErrnoError `ENODEV` when the device was not probed by this driver
 */
export function masterOfDev(dev: Device): ArmSmmuMaster {
  const priv = dev.iommuPriv;
  if (!(priv instanceof ArmSmmuMaster)) throw new ErrnoError('ENODEV', `${dev.name} is not an SMMUv3 master`);
  return priv;
}

/** Whether the SMMU has the `ARM_SMMU_FEAT_*` bit `flag`. */
export function smmuHas(smmu: ArmSmmuDevice, flag: number): boolean {
  return (smmu.features & flag) !== 0;
}
