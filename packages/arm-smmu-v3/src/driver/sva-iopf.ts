/**
 * I/O page faults and SVA per master: `dev_enable_feat` / `dev_disable_feat` for
 * `IommuDevFeature.IOPF` and `IommuDevFeature.SVA` (arm-smmu-v3-sva.c / arm-smmu-v3.c up to v6.14:
 * `arm_smmu_master_iopf_supported`, `arm_smmu_master_enable_iopf`, `arm_smmu_master_sva_supported`,
 * `arm_smmu_master_enable_sva`, `arm_smmu_dev_enable_feature`; the seed series' PRI support:
 * `arm_smmu_enable_pri`; spec §8.8).
 *
 * @remarks
 * A stall-enabled master with exactly one StreamID faults through the event queue; a PCI function
 * with a PRI capability, on an SMMU with `FEAT_PRI`, faults through PRI (the seed series enables PRI
 * at the function here; mainline never did and answers every request DENY). Either way the device
 * joins the SMMU's IOPF queue. Device drivers enable IOPF first, then SVA, as Linux required.
 */

import { ErrnoError } from '@iommu-ts/base';
import { iopfQueueAddDevice, iopfQueueRemoveDevice } from '@iommu-ts/io-pgfault';
import {
  type Device,
  IommuDevFeature,
  PciDevice,
  pciDisablePri,
  pciEnablePri,
  pciPriEnabled,
  pciResetPri,
} from '@iommu-ts/iommu-core';
import { ARM_SMMU_FEAT_PRI, ARM_SMMU_FEAT_SVA } from './arm-smmu-device.js';
import { type ArmSmmuMaster, masterOfDev, smmuHas } from './master-state.js';

/** Per-master SVA/IOPF state that `struct arm_smmu_master` holds beside `iopf_refcount`. */
interface MasterSvaState {
  /** `sva_enabled`. */
  svaEnabled: boolean;
  /** The IOPF enable turned PRI on at the PCI function (and must turn it off). */
  priEnabledHere: boolean;
}

const states = new WeakMap<ArmSmmuMaster, MasterSvaState>();

function stateOf(master: ArmSmmuMaster): MasterSvaState {
  let s = states.get(master);
  if (s === undefined) {
    s = { svaEnabled: false, priEnabledHere: false };
    states.set(master, s);
  }
  return s;
}

/**
 * How a master can report I/O page faults: `'stall'` (stall-enabled, exactly one StreamID, as
 * `arm_smmu_master_iopf_supported`), `'pri'` (a PCI function with PRI on an SMMU with `FEAT_PRI`),
 * or null.
 * @param master - the master
 */
export function armSmmuMasterIopfKind(master: ArmSmmuMaster): 'stall' | 'pri' | null {
  if (master.stallEnabled) return master.streamIds.length === 1 ? 'stall' : null;
  if (
    master.dev instanceof PciDevice &&
    master.dev.priCap !== null &&
    smmuHas(master.smmu, ARM_SMMU_FEAT_PRI)
  )
    return 'pri';
  return null;
}

/**
 * `arm_smmu_master_sva_supported`: `FEAT_SVA` and at least one SSID bit.
 * @param master - the master
 */
export function armSmmuMasterSvaSupported(master: ArmSmmuMaster): boolean {
  return smmuHas(master.smmu, ARM_SMMU_FEAT_SVA) && master.ssidBits > 0;
}

/**
 * Whether SVA is enabled on the master (`arm_smmu_master_sva_enabled`).
 * @param master - the master
 */
export function armSmmuMasterSvaEnabled(master: ArmSmmuMaster): boolean {
  return states.get(master)?.svaEnabled ?? false;
}

/**
 * `arm_smmu_master_enable_iopf`: refcounted. The first enable turns PRI on at a PCI function (reset,
 * then `pci_enable_pri` with its full request capacity) and adds the device to the SMMU's IOPF
 * queue.
 * @param master - the master
 * @throws ErrnoError `EINVAL` (neither stall with one StreamID nor PRI), `ENODEV` (the SMMU has no
 *   IOPF queue), `EBUSY` (PRI already enabled by someone else, or the device is already on a fault
 *   queue); nothing changes on error
 */
export function armSmmuMasterEnableIopf(master: ArmSmmuMaster): void {
  if (master.iopfRefcount > 0) {
    master.iopfRefcount++;
    return;
  }
  const kind = armSmmuMasterIopfKind(master);
  if (kind === null) throw new ErrnoError('EINVAL', `${master.dev.name}: cannot report I/O page faults`);
  const queue = master.smmu.iopfQueue;
  if (queue === null) throw new ErrnoError('ENODEV', `${master.smmu.name}: no IOPF queue`);
  const st = stateOf(master);
  const dev = master.dev;
  if (kind === 'pri' && dev instanceof PciDevice) {
    if (pciPriEnabled(dev)) throw new ErrnoError('EBUSY', `${dev.name}: PRI already enabled`);
    pciResetPri(dev);
    const err = pciEnablePri(dev, dev.priCap?.maxRequests ?? 0);
    if (err !== 0) throw new ErrnoError('EINVAL', `${dev.name}: cannot enable PRI (${err})`);
    st.priEnabledHere = true;
  }
  try {
    iopfQueueAddDevice(queue, dev);
  } catch (e) {
    if (st.priEnabledHere && dev instanceof PciDevice) pciDisablePri(dev);
    st.priEnabledHere = false;
    throw e;
  }
  master.iopfRefcount = 1;
}

/**
 * `arm_smmu_master_disable_iopf`: drop one reference; the last one removes the device from the IOPF
 * queue (pending groups answered INVALID) and turns off the PRI this code turned on.
 * @param master - the master
 * @throws ErrnoError `EINVAL` when IOPF is not enabled, `EBUSY` while SVA is enabled and this is
 *   the last reference
 */
export function armSmmuMasterDisableIopf(master: ArmSmmuMaster): void {
  if (master.iopfRefcount === 0) throw new ErrnoError('EINVAL', `${master.dev.name}: IOPF not enabled`);
  if (master.iopfRefcount === 1 && armSmmuMasterSvaEnabled(master))
    throw new ErrnoError('EBUSY', `${master.dev.name}: SVA still enabled`);
  if (--master.iopfRefcount > 0) return;
  const queue = master.smmu.iopfQueue;
  if (queue !== null) iopfQueueRemoveDevice(queue, master.dev);
  const st = stateOf(master);
  if (st.priEnabledHere && master.dev instanceof PciDevice) pciDisablePri(master.dev);
  st.priEnabledHere = false;
}

/**
 * `arm_smmu_master_enable_sva`.
 * @param master - the master
 * @throws ErrnoError `EINVAL` (no SVA support, or a fault-capable master whose IOPF is not enabled
 *   yet: "drivers for devices supporting PRI or stall should enable IOPF first"), `EBUSY` (already
 *   enabled)
 */
export function armSmmuMasterEnableSva(master: ArmSmmuMaster): void {
  if (!armSmmuMasterSvaSupported(master)) throw new ErrnoError('EINVAL', `${master.dev.name}: no SVA`);
  const st = stateOf(master);
  if (st.svaEnabled) throw new ErrnoError('EBUSY', `${master.dev.name}: SVA already enabled`);
  if (armSmmuMasterIopfKind(master) !== null && master.iopfRefcount === 0)
    throw new ErrnoError('EINVAL', `${master.dev.name}: enable IOPF first`);
  st.svaEnabled = true;
}

/**
 * `arm_smmu_master_disable_sva`.
 * @param master - the master
 * @throws ErrnoError `EINVAL` (not enabled), `EBUSY` (PASIDs still bound: CDs in use)
 */
export function armSmmuMasterDisableSva(master: ArmSmmuMaster): void {
  const st = stateOf(master);
  if (!st.svaEnabled) throw new ErrnoError('EINVAL', `${master.dev.name}: SVA not enabled`);
  if ((master.cdTable?.usedSsids ?? 0) > 0) throw new ErrnoError('EBUSY', `${master.dev.name}: bonds remain`);
  st.svaEnabled = false;
}

/**
 * `arm_smmu_dev_enable_feature(dev, feat)` (the `devEnableFeat` op).
 * @param dev - a probed master
 * @param feat - `IommuDevFeature.IOPF` or `IommuDevFeature.SVA`
 * @throws ErrnoError `ENODEV` (not an SMMUv3 master), `EINVAL` (unknown feature), and the errors
 *   of {@link armSmmuMasterEnableIopf} / {@link armSmmuMasterEnableSva}
 */
export function armSmmuDevEnableFeat(dev: Device, feat: IommuDevFeature): void {
  const master = masterOfDev(dev);
  if (feat === IommuDevFeature.IOPF) armSmmuMasterEnableIopf(master);
  else if (feat === IommuDevFeature.SVA) armSmmuMasterEnableSva(master);
  else throw new ErrnoError('EINVAL', `unknown feature ${String(feat)}`);
}

/**
 * `arm_smmu_dev_disable_feature(dev, feat)` (the `devDisableFeat` op).
 * @param dev - a probed master
 * @param feat - `IommuDevFeature.IOPF` or `IommuDevFeature.SVA`
 * @throws ErrnoError `ENODEV`, `EINVAL` (unknown or not enabled), `EBUSY` (see
 *   {@link armSmmuMasterDisableIopf} / {@link armSmmuMasterDisableSva})
 */
export function armSmmuDevDisableFeat(dev: Device, feat: IommuDevFeature): void {
  const master = masterOfDev(dev);
  if (feat === IommuDevFeature.IOPF) armSmmuMasterDisableIopf(master);
  else if (feat === IommuDevFeature.SVA) armSmmuMasterDisableSva(master);
  else throw new ErrnoError('EINVAL', `unknown feature ${String(feat)}`);
}
