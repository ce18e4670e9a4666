/**
 * BUG 1 (fixed in @iommu-ts/mm: `mm_pasid_drop` moved to the last `mmdrop`): the mm's PASID went back
 * to the allocator at the mm's last `mmput` (process exit) although an SVA binding still holds
 * the mm (`mmgrab`) and its PASID stays attached to the device. Linux drops it in `__mmdrop`
 * (kernel/fork.c, since "mm: Fix PASID use-after-free issue"), i.e. after the last unbind. A second
 * process binding the same device then gets the same PASID and the bind fails with EBUSY.
 * Found by the DST (seeds 12, 15, 20, 21… of the first run); shrunk trace:
 *   sva bind p1 accel0: pasid 1
 *   exit p1
 *   sva bind p0 accel0: threw
 *   UNEXPECTED ErrnoError EBUSY: PASID 1 of 0000:04:00.0 is in use
 */

import { describe, expect, it } from 'vitest';
import { noHooks } from '../hooks.js';
import { DstWorld } from '../world.js';

describe('regression: PASID freed at exit while still bound', () => {
  for (const platform of ['x86-vtd', 'arm-smmuv3'] as const)
    it(`${platform}: a new mm binding the device gets a fresh PASID`, () => {
      const w = new DstWorld(12, platform, noHooks);
      try {
        w.exec({ k: 'svaBind', p: 1, dev: 0 });
        w.exec({ k: 'exit', p: 1 });
        w.exec({ k: 'svaBind', p: 0, dev: 0 });
        expect(w.trace.at(-1)).toMatch(/pasid 2$/);
        w.teardown();
      } finally {
        w.dispose();
      }
    });
});
