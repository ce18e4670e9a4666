/**
 * The driver's `IommuOps` (`intel_iommu_ops` in drivers/iommu/intel/iommu.c) and the whole
 * per-unit bring-up of `intel_iommu_init` (digest §8.1): register probe, `init_dmars`,
 * `iommu_device_register`, then translation enable.
 *
 * @remarks
 * Linux has one static `intel_iommu_ops` and finds the unit through `dev_iommu_priv_get`; here the
 * ops object closes over its unit (the core matches the unit by the device's fwspec). SVA and IOPF
 * callbacks (svm.ts) are merged in through the `extra` argument, so that one unit's ops can carry
 * them without this file depending on the SVA code.
 */

import type { IommuOps } from '@iommu-ts/iommu-core';
import type { IommufdHwInfoOps } from '@iommu-ts/iommufd';
import {
  infoOf,
  intelIommuCapable,
  intelIommuDefDomainType,
  intelIommuDeviceGroup,
  intelIommuGetResvRegions,
  intelIommuProbeDevice,
  intelIommuReleaseDevice,
  intelIommuRemoveDevPasid,
} from './device.js';
import {
  intelIommuBlockedDomain,
  intelIommuDomainAllocPaging,
  intelIommuDomainAllocPagingFlags,
  intelIommuDomainOps,
  intelIommuHwInfo,
  intelIommuIdentityDomain,
} from './domain.js';
import { IntelIommu, type IntelIommuOptions } from './intel-iommu.js';
import { intelIommuPageResponse } from './prq.js';

/** The ops object of one unit: the core's `IommuOps` plus iommufd's `hw_info`. */
export type IntelIommuOps = IommuOps & IommufdHwInfoOps;

/**
 * Build the ops of one unit (`intel_iommu_ops`): device probe/release, groups, paging / identity /
 * blocked domains (attach, map, dirty tracking go through `intelIommuDomainOps`), capabilities,
 * reserved regions, default domain type, PASID removal, page responses through the invalidation
 * queue and iommufd's `hw_info`.
 * @param iommu - the unit the ops serve
 * @param extra - further callbacks merged over the result (the SVA / IOPF ops of svm.ts:
 *   `domainAllocSva`, `devEnableFeat`, `devDisableFeat`); default none
 * @returns the ops to pass to {@link IntelIommu.register}
 */
export function intelIommuOps(iommu: IntelIommu, extra: Partial<IommuOps> = {}): IntelIommuOps {
  return {
    name: 'intel-iommu',
    capable: (dev, cap) => intelIommuCapable(dev, cap),
    domainAllocPaging: (dev) => intelIommuDomainAllocPaging(dev),
    domainAllocPagingFlags: (dev, flags, userData) => intelIommuDomainAllocPagingFlags(dev, flags, userData),
    hwInfo: (dev, type) => intelIommuHwInfo(dev, type),
    probeDevice: (dev) => intelIommuProbeDevice(iommu, dev),
    releaseDevice: (dev) => intelIommuReleaseDevice(dev),
    deviceGroup: (dev) => intelIommuDeviceGroup(dev),
    getResvRegions: (dev) => intelIommuGetResvRegions(dev),
    defDomainType: (dev) => intelIommuDefDomainType(dev),
    removeDevPasid: (dev, pasid, domain) => intelIommuRemoveDevPasid(dev, pasid, domain),
    pageResponse: (dev, evt, msg) => {
      const info = infoOf(dev);
      intelIommuPageResponse(info.iommu, (info.bus << 8) | info.devfn, evt, msg);
    },
    defaultDomainOps: intelIommuDomainOps,
    identityDomain: intelIommuIdentityDomain,
    blockedDomain: intelIommuBlockedDomain,
    releaseDomain: intelIommuBlockedDomain,
    ...extra,
  };
}

/** Options of {@link intelIommuProbe}: the unit's constructor options plus extra ops. */
export interface IntelIommuProbeOptions extends IntelIommuOptions {
  /** Callbacks merged into the unit's ops (see {@link intelIommuOps}); default none. */
  readonly extraOps?: Partial<IommuOps>;
}

/**
 * Bring one unit up in Linux's order (`intel_iommu_init`, digest §8.1): construct, read CAP/ECAP
 * (`alloc_iommu`), the per-unit steps of `init_dmars`, register with the IOMMU core (devices behind
 * the unit are probed and get their default domains while translation is still off), then set
 * GCMD.TE. When registration or the enable fails, the unit is unregistered again.
 * @param opts - see {@link IntelIommuProbeOptions}
 * @returns the running unit
 * @throws `ErrnoError` from {@link IntelIommu.probe} (`ENODEV`, `EINVAL`), {@link IntelIommu.initDmar}
 *   (`ETIMEDOUT`, `ENOMEM`), {@link IntelIommu.register} and {@link IntelIommu.enableTranslation}
 *   (`ETIMEDOUT`)
 */
export function intelIommuProbe(opts: IntelIommuProbeOptions): IntelIommu {
  const { extraOps, ...unitOpts } = opts;
  const iommu = new IntelIommu(unitOpts);
  iommu.probe();
  iommu.initDmar();
  iommu.register(intelIommuOps(iommu, extraOps));
  try {
    iommu.enableTranslation();
  } catch (e) {
    iommu.unregister();
    throw e;
  }
  return iommu;
}
