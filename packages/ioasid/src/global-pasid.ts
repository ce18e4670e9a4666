/**
 * Constants of today's kernel PASID allocator (drivers/iommu/iommu.c `iommu_alloc_global_pasid`,
 * include/linux/iommu.h), which replaced the IOASID allocator in mainline. The allocator itself is
 * `IoasidSubsystem.allocGlobalPasid` / `freeGlobalPasid`, so that it shares the ID space of the
 * IOASID sets.
 */

import type { Ioasid } from './constants.js';

/** The lowest PASID the global allocator hands out (`IOMMU_FIRST_GLOBAL_PASID`); 0 is `IOMMU_NO_PASID`. */
export const IOMMU_FIRST_GLOBAL_PASID: Ioasid = 1;

/** The invalid PASID of the IOMMU core (`IOMMU_PASID_INVALID`, -1U = 0xFFFF_FFFF), equal to `INVALID_IOASID`. */
export const IOMMU_PASID_INVALID: Ioasid = 0xffff_ffff;
