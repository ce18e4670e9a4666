// Test helpers for packages built on @iommu-ts/iommu-core: re-exports only.

export * from './hw-test-iommu.js';
export * from './testing/test-iommu.js';
