import { defineProject } from 'vitest/config';

// Workload runs go through every layer down to the hardware models, and the report test starts
// Chromium: seconds each on a loaded 2-core machine.
export default defineProject({
  test: {
    name: '@iommu-ts/sim',
    testTimeout: 60_000,
  },
});
