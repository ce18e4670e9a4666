/**
 * `struct iommu_fwspec`: which IOMMU a device sits behind and the IDs it uses there
 * (include/linux/iommu.h; `iommu_fwspec_init`, `iommu_fwspec_add_ids` of iommu.c).
 *
 * Changes (additive only): none yet.
 */

import type { IommuOps } from './iommu-ops.js';

/** A firmware node (`struct fwnode_handle`): an IOMMU's identity in firmware. */
export interface FwNode {
  /** Printable name. */
  readonly name: string;
}

/** `IOMMU_FWSPEC_PCI_RC_ATS`: the root complex supports ATS (from firmware). */
export const IOMMU_FWSPEC_PCI_RC_ATS = 1 << 0;
/** `IOMMU_FWSPEC_PCI_RC_CANWBS`: the root complex can write back stash (IORT). */
export const IOMMU_FWSPEC_PCI_RC_CANWBS = 1 << 1;

/**
 * `struct iommu_fwspec`.
 *
 * @remarks
 * `iommuFwnode` names the IOMMU instance (matched against `IommuDevice.fwnode`); `ids` are the
 * StreamIDs/RIDs/device IDs the master emits at that IOMMU, in order of `iommuFwspecAddIds` calls.
 */
export interface IommuFwspec {
  /** `iommu_fwnode`: the IOMMU's firmware node. */
  readonly iommuFwnode: FwNode;
  /** The ops of the IOMMU driver found for the fwnode (`iommu_fwspec_ops`), `null` if not yet registered. */
  ops: IommuOps | null;
  /** `flags`: `IOMMU_FWSPEC_*`. */
  flags: number;
  /** `ids[]`. */
  readonly ids: number[];
}
