/**
 * `struct iommu_device`: one hardware IOMMU instance (include/linux/iommu.h).
 *
 * Changes (additive only): none yet.
 */

import type { FwNode } from './fwspec.js';
import type { IommuGroup } from './group.js';
import type { IommuOps } from './iommu-ops.js';

/**
 * An IOMMU instance, registered with `IommuSubsystem.iommuDeviceRegister`.
 *
 * @remarks
 * A driver creates one per hardware unit (`iommu_device_sysfs_add` + `iommu_device_register`),
 * sets `maxPasids` from the hardware (SSID/PASID width), and returns it from `probeDevice`.
 */
export class IommuDevice {
  /** Name (the sysfs name, e.g. `smmu3.0x2b400000`). */
  readonly name: string;
  /** `ops`: set at registration. */
  ops: IommuOps | null = null;
  /** `fwnode`: the IOMMU's firmware node, matched against fwspecs. */
  fwnode: FwNode | null;
  /** `max_pasids`: how many PASIDs the IOMMU supports (0 = none). */
  maxPasids: number;
  /** `singleton_group`: the one group of `genericSingleDeviceGroup`. */
  singletonGroup: IommuGroup | null = null;
  /** `ready`: registration finished. */
  ready = false;

  /**
   * @param name - instance name
   * @param options - `fwnode` (default `null`) and `maxPasids` (default 0)
   */
  constructor(name: string, options: { fwnode?: FwNode | null; maxPasids?: number } = {}) {
    this.name = name;
    this.fwnode = options.fwnode ?? null;
    this.maxPasids = options.maxPasids ?? 0;
  }
}
