import { defineProject } from 'vitest/config';

// Scenario, fault-injection and fuzzing runs drive the whole stack: seconds each on 2 cores.
export default defineProject({
  test: {
    name: '@iommu-ts/simtest',
    testTimeout: 120_000,
  },
});
