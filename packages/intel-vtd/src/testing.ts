// Test helpers for users of the VT-d model (the `@iommu-ts/intel-vtd/testing` entry): re-exports only.

// V2 — a builder that lays out root/context tables and PASID directories/tables in memory.
export { VtdStructureBuilder } from './hw/structures.test-helpers.js';

// V3 — a RAM and hand-built second-level / first-level page tables.
export {
  FlTestPageTable,
  type FlTestPteAttrs,
  makeVtdTestMemory,
  SlTestPageTable,
  type SlTestPteAttrs,
  TestPageTableBase,
  VTD_TEST_RAM_BASE,
  type VtdTestPageSize,
  type VtdTestPageTableOptions,
} from './hw/test-helpers.js';
