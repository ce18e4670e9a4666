// Test helpers for users of the SMMUv3 model (the `@iommu-ts/arm-smmu-v3/testing` entry):
// re-exports only.

export {
  makeTestMemory,
  TEST_RAM_BASE,
  TestPageTable,
  type TestPageTableOptions,
  type TestPteAttrs,
  type TestTableAttrs,
} from './hw/test-helpers.js';
