/**
 * The iommufd side of the SMMUv3 driver: IOMMU_GET_HW_INFO data (`arm_smmu_hw_info` in
 * arm-smmu-v3-iommufd.c), dirty tracking through HTTU (`arm_smmu_dirty_ops` in arm-smmu-v3.c) and
 * the `domain_alloc_paging_flags` entry that gives dirty-tracking domains their dirty ops.
 *
 * @remarks
 * Nested (stage-1 over a nest-parent) domains, vIOMMU and vDEVICE objects are not modelled; a
 * nest parent is an ordinary stage-2 paging domain here (see `armSmmuDomainAllocPagingFlags`).
 */

import { ErrnoError } from '@iommu-ts/base';
import {
  type Device,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  type IommuDirtyOps,
  type IommuDomain,
} from '@iommu-ts/iommu-core';
import { armSmmuDomainAllocPagingFlags, toSmmuDomain } from './domain.js';
import { masterOfDev } from './master-state.js';
import { ARM_SMMU_AIDR, ARM_SMMU_IDR0, ARM_SMMU_IIDR } from './regs.js';

/** `IOMMU_HW_INFO_TYPE_DEFAULT`: the driver's own type, asked for when userspace names none. */
const HW_INFO_TYPE_DEFAULT = 0;
/** `IOMMU_HW_INFO_TYPE_ARM_SMMUV3` (include/uapi/linux/iommufd.h). */
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;
/** `sizeof(struct iommu_hw_info_arm_smmuv3)`: flags, __reserved, idr[6], iidr, aidr (u32 each). */
export const IOMMU_HW_INFO_ARM_SMMUV3_SIZE = 40;

/**
 * `arm_smmu_hw_info(dev, &length, &type)`: `struct iommu_hw_info_arm_smmuv3` of the SMMU behind
 * `dev`, little-endian: flags 0 (offset 0), `__reserved` 0 (4), SMMU_IDR0..IDR5 (8..31, read from
 * the SMMU's registers now), SMMU_IIDR (32), SMMU_AIDR (36).
 * @param dev - a device probed by an SMMUv3
 * @param type - `IOMMU_HW_INFO_TYPE_DEFAULT` (0) or `IOMMU_HW_INFO_TYPE_ARM_SMMUV3` (2)
 * @returns type 2 and the 40 bytes
 * @throws ErrnoError `EOPNOTSUPP` for any other type (no implementation-specific hw_info is
 *   modelled); `ENODEV` when `dev` is not an SMMUv3 master
 */
export function armSmmuHwInfo(dev: Device, type: number): { type: number; data: Uint8Array } {
  if (type !== HW_INFO_TYPE_DEFAULT && type !== IOMMU_HW_INFO_TYPE_ARM_SMMUV3)
    throw new ErrnoError('EOPNOTSUPP', `hw_info type ${type} not supported`);
  const smmu = masterOfDev(dev).smmu;
  const data = new Uint8Array(IOMMU_HW_INFO_ARM_SMMUV3_SIZE);
  const view = new DataView(data.buffer);
  for (let i = 0; i <= 5; i++) view.setUint32(8 + 4 * i, smmu.mmio.readl(ARM_SMMU_IDR0 + 4 * i) >>> 0, true);
  view.setUint32(32, smmu.mmio.readl(ARM_SMMU_IIDR) >>> 0, true);
  view.setUint32(36, smmu.mmio.readl(ARM_SMMU_AIDR) >>> 0, true);
  return { type: IOMMU_HW_INFO_TYPE_ARM_SMMUV3, data };
}

/**
 * `arm_smmu_dirty_ops`: dirty tracking of stage-1 domains allocated with
 * IOMMU_HWPT_ALLOC_DIRTY_TRACKING. The SMMU (CD.HA/HD) always updates the dirty state of DBM
 * leaves, so `setDirtyTracking` has nothing to switch (iommufd clears the dirty state before
 * enabling); `readAndClearDirty` walks the io-pgtable (`arm_lpae_read_and_clear_dirty`: dirty =
 * DBM set and AP[2] clear; clearing sets AP[2] back, the caller flushes the IOTLB).
 */
export const armSmmuDirtyOps: IommuDirtyOps = {
  setDirtyTracking(domain: IommuDomain, enabled: boolean): void {
    void domain;
    void enabled;
  },
  readAndClearDirty(domain, iova, size, flags, dirty): void {
    const d = toSmmuDomain(domain);
    if (d === null || d.pgtblOps === null) throw new ErrnoError('ENODEV', 'not a finalised SMMUv3 domain');
    d.pgtblOps.readAndClearDirty(iova, Number(size), flags, {
      record: (at, length) => dirty.record(BigInt(at), BigInt(length)),
    });
  },
};

/**
 * `arm_smmu_domain_alloc_paging_flags` as the ops entry: the domain of
 * `armSmmuDomainAllocPagingFlags`, and with IOMMU_HWPT_ALLOC_DIRTY_TRACKING its `dirtyOps` set to
 * {@link armSmmuDirtyOps}.
 * @param dev - the device the domain is for
 * @param flags - `IOMMU_HWPT_ALLOC_*`
 * @param userData - driver data (must be absent)
 * @returns the domain
 * @throws ErrnoError as `armSmmuDomainAllocPagingFlags` (`EOPNOTSUPP`, `ENODEV`, `ENOSPC`, `ENOMEM`)
 */
export function armSmmuDomainAllocPagingFlagsDirty(
  dev: Device | null,
  flags: number,
  userData: unknown,
): IommuDomain {
  const domain = armSmmuDomainAllocPagingFlags(dev, flags, userData);
  if ((flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0) domain.dirtyOps = armSmmuDirtyOps;
  return domain;
}
