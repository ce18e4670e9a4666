// Seeds 1 and 2 of the uAPI fuzzer once reported MD_CHECK_MAP failures after a MOCK_DOMAIN attach.
// Neither was a bug of the stack; both were the fuzzer's own bookkeeping, fixed here and kept as
// regressions with a check after every call:
// - seed 1: IOMMU_IOAS_UNMAP unmaps before it writes the unmapped length back, so an EFAULT on the
//   copy-out comes after the areas are gone (as in Linux); the fuzzer kept believing them mapped.
// - seed 2: the argument area's guard page was left unmapped, so the next one-page mmap (the
//   scratch page) landed in it; an "edge" argument running into the guard page was then read whole.
//   The guard page and the hole are PROT_NONE mappings now.
import { describe, expect, it } from 'vitest';
import { fuzzLoop } from '../engine.js';
import { fuzzSubject } from '../run.js';
import { FuzzWorld } from '../world.js';

describe('fuzzer regressions: seeds 1 and 2 with a check after every call', () => {
  for (const [seed, calls] of [
    [1, 10_479],
    [2, 16_000],
  ] as const)
    it(`seed ${seed}: every believed mapping stays translated in every mock domain`, () => {
      const world = new FuzzWorld(seed);
      try {
        const report = fuzzLoop(fuzzSubject(world), { calls, seed, checkEvery: 1 });
        expect(report.problems).toEqual([]);
      } finally {
        world.dispose();
      }
    });
});
