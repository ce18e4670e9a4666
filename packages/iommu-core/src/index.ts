// The public surface of @iommu-ts/iommu-core: re-exports only.

export * from './ats.js';
export * from './ats-range.js';
export * from './device.js';
export * from './dma-iommu.js';
export * from './dma-mapping.js';
export * from './dma-request.js';
export * from './domain.js';
export * from './endpoint.js';
export * from './endpoint-atc.js';
export * from './endpoint-trace.js';
export * from './fault.js';
export * from './fwspec.js';
export * from './group.js';
export * from './hw-iommu.js';
export * from './iommu-device.js';
export * from './iommu-ops.js';
export * from './iommu-subsystem.js';
export * from './iova.js';
export * from './map.js';
export * from './mmio.js';
export * from './of-iommu.js';
export * from './pci.js';
export * from './pri.js';
export * from './resv-region.js';
