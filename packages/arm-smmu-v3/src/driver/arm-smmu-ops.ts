/**
 * The driver's `IommuOps` (`arm_smmu_ops` in drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c) and the
 * whole platform-driver probe (`arm_smmu_device_probe`): hardware probe, reset, registration.
 *
 * @remarks
 * Linux has one static `arm_smmu_ops` and finds the SMMU through the device's fwspec; here the ops
 * object closes over its SMMU, which the core reaches through the fwnode match.
 */

import type { IommuOps } from '@iommu-ts/iommu-core';
import type { IommufdHwInfoOps } from '@iommu-ts/iommufd';
import { ArmSmmuDevice, type ArmSmmuDeviceOptions } from './arm-smmu-device.js';
import { armSmmuDefaultDomainOps, armSmmuDomainAllocPaging } from './domain.js';
import { armSmmuDomainAllocPagingFlagsDirty, armSmmuHwInfo } from './iommufd.js';
import {
  armSmmuAttachDev,
  armSmmuBlockedDomain,
  armSmmuCapable,
  armSmmuDefDomainType,
  armSmmuDeviceGroup,
  armSmmuGetResvRegions,
  armSmmuIdentityDomain,
  armSmmuProbeDevice,
  armSmmuReleaseDevice,
  armSmmuRemoveDevPasid,
} from './master.js';
import { armSmmuPageResponse } from './priq.js';
import { armSmmuSvaDomainAlloc, armSmmuSvaProbe } from './sva.js';
import { armSmmuDevDisableFeat, armSmmuDevEnableFeat } from './sva-iopf.js';

/**
 * Build the ops of one SMMU (`arm_smmu_ops`): probe/release, groups, domains, reserved regions,
 * capabilities, page responses, and iommufd's `hw_info`.
 * @param smmu - the SMMU the ops serve
 * @returns the ops object to pass to {@link ArmSmmuDevice.register}
 */
export function armSmmuOps(smmu: ArmSmmuDevice): IommuOps & IommufdHwInfoOps {
  void armSmmuAttachDev; // attach goes through the domain ops (armSmmuDefaultDomainOps)
  return {
    name: 'arm-smmu-v3',
    capable: (dev, cap) => armSmmuCapable(dev, cap),
    domainAllocPaging: (dev) => armSmmuDomainAllocPaging(dev),
    domainAllocPagingFlags: (dev, flags, userData) =>
      armSmmuDomainAllocPagingFlagsDirty(dev, flags, userData),
    hwInfo: (dev, type) => armSmmuHwInfo(dev, type),
    probeDevice: (dev) => armSmmuProbeDevice(smmu, dev),
    releaseDevice: (dev) => armSmmuReleaseDevice(dev),
    deviceGroup: (dev) => armSmmuDeviceGroup(dev),
    getResvRegions: (dev) => armSmmuGetResvRegions(dev),
    pageResponse: (dev, evt, msg) => armSmmuPageResponse(smmu, dev, evt, msg),
    defDomainType: (dev) => armSmmuDefDomainType(dev),
    removeDevPasid: (dev, pasid, domain) => armSmmuRemoveDevPasid(dev, pasid, domain),
    defaultDomainOps: armSmmuDefaultDomainOps,
    identityDomain: armSmmuIdentityDomain,
    blockedDomain: armSmmuBlockedDomain,
    releaseDomain: armSmmuBlockedDomain,
    domainAllocSva: (dev, mm) => armSmmuSvaDomainAlloc(dev, mm),
    devEnableFeat: (dev, feat) => armSmmuDevEnableFeat(dev, feat),
    devDisableFeat: (dev, feat) => armSmmuDevDisableFeat(dev, feat),
  };
}

/**
 * Probe (with the SVA capability check, `armSmmuSvaProbe`), reset and register an SMMU
 * (`arm_smmu_device_probe`).
 * @param options - see {@link ArmSmmuDeviceOptions}
 * @param rmrSids - StreamIDs of firmware reserved-memory nodes that get bypass STEs
 * @returns the registered SMMU
 * @throws `ErrnoError` from {@link ArmSmmuDevice.probe}, {@link ArmSmmuDevice.reset},
 *   {@link ArmSmmuDevice.register}
 */
export function armSmmuDeviceProbe(
  options: ArmSmmuDeviceOptions,
  rmrSids: readonly number[] = [],
): ArmSmmuDevice {
  const smmu = new ArmSmmuDevice(options);
  smmu.probe();
  armSmmuSvaProbe(smmu);
  smmu.reset(rmrSids);
  smmu.register(armSmmuOps(smmu));
  return smmu;
}
