/**
 * `IOMMU_*` protection flags, as passed to `mapPages` (include/linux/iommu.h).
 */

/** Read access (`IOMMU_READ`, bit 0). */
export const IOMMU_READ = 1 << 0;
/** Write access (`IOMMU_WRITE`, bit 1). */
export const IOMMU_WRITE = 1 << 1;
/** Cache-coherent / cacheable memory (`IOMMU_CACHE`, bit 2). */
export const IOMMU_CACHE = 1 << 2;
/** Not executable (`IOMMU_NOEXEC`, bit 3). */
export const IOMMU_NOEXEC = 1 << 3;
/** Device memory, e.g. a doorbell (`IOMMU_MMIO`, bit 4). */
export const IOMMU_MMIO = 1 << 4;
/** Privileged access only (`IOMMU_PRIV`, bit 5). */
export const IOMMU_PRIV = 1 << 5;

/**
 * Flag of `readAndClearDirty`: report dirty ranges without cleaning them
 * (`IOMMU_DIRTY_NO_CLEAR`, bit 0).
 */
export const IOMMU_DIRTY_NO_CLEAR = 1 << 0;
