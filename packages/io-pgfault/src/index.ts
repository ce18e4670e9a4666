/**
 * @packageDocumentation
 * I/O page faults after Linux drivers/iommu/io-pgfault.c: per-IOMMU fault queues with their
 * workqueues, page request groups, per-domain handlers (any domain type) and exactly-once
 * responses through the IOMMU driver's `page_response`.
 */

export * from './fault-param.js';
export * from './iopf-group.js';
export * from './iopf-queue.js';
export * from './iopf-trace.js';
export * from './report.js';
export * from './response.js';
export * from './work-handler.js';
