import { defineProject } from 'vitest/config';

// The repository checks spawn dependency-cruiser, api-extractor and pnpm pack on fixture trees:
// seconds each, more on a loaded 2-core machine, so they get a generous per-test timeout.
export default defineProject({
  test: {
    name: '@iommu-ts/repo-checks',
    testTimeout: 60_000,
  },
});
