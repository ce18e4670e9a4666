/**
 * Per-device VT-d state (`struct device_domain_info`, drivers/iommu/intel/iommu.h) and how to find
 * it from a device (`dev_iommu_priv_get`). The flows that use it live in device.ts and domain.ts.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { Device, IommuDomain } from '@iommu-ts/iommu-core';
import type { ContextDeviceInfo } from './context.js';
import type { IntelIommu } from './intel-iommu.js';
import type { PasidDeviceInfo, PasidTable } from './pasid.js';

/** `struct device_domain_info`: one device behind a VT-d unit. */
export class DeviceDomainInfo implements ContextDeviceInfo, PasidDeviceInfo {
  /** The unit. */
  readonly iommu: IntelIommu;
  /** The device. */
  readonly dev: Device;
  /** Bus number of the requester ID. */
  readonly bus: number;
  /** devfn of the requester ID. */
  readonly devfn: number;
  /** `ats_supported`: unit ECAP.DT, device ATS capability, firmware allows it. */
  atsSupported = false;
  /** `ats_enabled`. */
  atsEnabled = false;
  /** `ats_qdep`: ATS invalidate queue depth. */
  atsQdep = 0;
  /** `pfsid`: PF requester ID with ECAP.DIT, else 0. */
  pfsid = 0;
  /** `dtlb_extra_inval`: quirk devices get every device-TLB invalidation twice. */
  dtlbExtraInval = false;
  /** `pasid_supported`: PASID features | 1, 0 when unsupported. */
  pasidSupported = 0;
  /** `pasid_enabled`. */
  pasidEnabled = false;
  /** `pri_supported`. */
  priSupported = false;
  /** `pri_enabled`. */
  priEnabled = false;
  /** `pasid_table` (scalable mode). */
  pasidTable: PasidTable | null = null;
  /** `domain`: the paging domain attached to the RID, or null (identity, blocked). */
  domain: IommuDomain | null = null;
  /** `domain_attached`: a domain (paging or identity) is programmed for the RID. */
  domainAttached = false;
  /** Domains attached to PASIDs other than 0 (`dev_pasids` of the domains). */
  readonly pasidDomains = new Map<number, IommuDomain>();

  /**
   * @param iommu - the unit
   * @param dev - the device
   * @param bus - bus number
   * @param devfn - devfn
   */
  constructor(iommu: IntelIommu, dev: Device, bus: number, devfn: number) {
    this.iommu = iommu;
    this.dev = dev;
    this.bus = bus;
    this.devfn = devfn;
  }
}

/**
 * `dev_iommu_priv_get(dev)` as a {@link DeviceDomainInfo}.
 * @param dev - the device
 * @returns its info
 * @throws ErrnoError `ENODEV` when the device was not probed by this driver
 */
export function infoOf(dev: Device): DeviceDomainInfo {
  const priv = dev.iommuPriv;
  if (!(priv instanceof DeviceDomainInfo))
    throw new ErrnoError('ENODEV', `${dev.name} is not behind a VT-d unit`);
  return priv;
}
