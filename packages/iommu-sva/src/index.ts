/**
 * @packageDocumentation
 * Shared Virtual Addressing after Linux drivers/iommu/iommu-sva.c: bind a process address space
 * to a device through the mm's PASID, one SVA domain per mm and IOMMU, MMU notifier glue, and the
 * SVA I/O page fault handler; plus the seed series' per-device init and `mm_exit` callback.
 */

export * from './kva.js';
export * from './mm-data.js';
export * from './sva-bind.js';
export * from './sva-device.js';
export * from './sva-fault.js';
export { iommuSvaDomainReleased } from './sva-notifier.js';
export {
  type IommuSvaOptions,
  iommuSvaSetOptions,
  type MmExitCallback,
  type SvaGroupCheck,
} from './sva-state.js';
