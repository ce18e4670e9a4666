import { ErrnoError } from '@iommu-ts/base';
import { iommufdUapiCommands } from '@iommu-ts/iommufd';
import { describe, expect, it } from 'vitest';
import type { FuzzGenerator } from './call.js';
import { fuzzLoop } from './engine.js';
import { IOASID_IOCTLS } from './ioasid-calls.js';
import { fuzzSubject, runFuzz } from './run.js';
import { VFIO_CONTAINER_IOCTLS, VFIO_DEVICE_IOCTLS, VFIO_GROUP_IOCTLS } from './vfio-calls.js';
import { FuzzWorld } from './world.js';

describe('runFuzz', () => {
  it('makes 20k calls of every ioctl of the three uAPIs (seed 7)', () => {
    const report = runFuzz({ calls: 20_000, seed: 7 });
    expect(report.calls).toBe(20_000);
    const total = Object.values(report.byIoctl).reduce((s, r) => s + r.calls, 0);
    expect(total).toBe(20_000);
    const names = [
      ...iommufdUapiCommands.map((c) => `iommufd ${c.name}`),
      'iommufd IOMMU_TEST_CMD',
      ...Object.keys(VFIO_CONTAINER_IOCTLS).map((n) => `vfio ${n}`),
      ...Object.keys(VFIO_GROUP_IOCTLS).map((n) => `vfio ${n}`),
      ...Object.keys(VFIO_DEVICE_IOCTLS).map((n) => `vfio ${n}`),
      ...Object.keys(IOASID_IOCTLS).map((n) => `ioasid ${n}`),
      'iommufd unknown',
      'vfio unknown',
      'ioasid unknown',
    ];
    for (const n of names) expect(report.byIoctl[n]?.calls ?? 0, n).toBeGreaterThan(0);
    for (const n of [
      'iommufd IOMMU_IOAS_ALLOC',
      'iommufd IOMMU_IOAS_MAP',
      'iommufd IOMMU_IOAS_UNMAP',
      'iommufd IOMMU_TEST_CMD',
      'vfio VFIO_IOMMU_MAP_DMA',
      'vfio VFIO_IOMMU_UNMAP_DMA',
      'ioasid IOASID_REQUEST_ALLOC',
    ]) {
      const r = report.byIoctl[n];
      expect(r?.ok ?? 0, n).toBeGreaterThan(0);
      expect(Object.keys(r?.errnos ?? {}).length, n).toBeGreaterThan(0);
    }
    expect(report.checks).toBeGreaterThan(20);
    expect(report.problems).toEqual([]);
  });

  it('reports a non-errno exception with the seed, call index, ioctl, bytes and stack line', () => {
    const world = new FuzzWorld(3);
    let n = 0;
    const planted: FuzzGenerator = {
      weight: 5,
      next: () => ({
        file: 'fake',
        ioctl: 'FAKE_IOCTL',
        bytes: Uint8Array.of(0xde, 0xad),
        invoke() {
          if (++n % 50 === 0) throw new TypeError('planted bug');
          throw new ErrnoError('EINVAL', 'fine');
        },
      }),
    };
    try {
      const report = fuzzLoop(fuzzSubject(world, { extraGenerators: [planted] }), { calls: 2000, seed: 3 });
      expect(report.byIoctl['fake FAKE_IOCTL']?.errnos['EINVAL']).toBeGreaterThan(0);
      expect(report.problems.length).toBeGreaterThan(0);
      expect(report.problems[0]).toMatch(
        /^seed 3 call #\d+: fake FAKE_IOCTL arg dead: TypeError: planted bug/,
      );
    } finally {
      world.dispose();
    }
  });

  it('reports a broken invariant', () => {
    const world = new FuzzWorld(5);
    try {
      const subject = fuzzSubject(world);
      const report = fuzzLoop(
        { ...subject, check: () => ['planted violation'] },
        { calls: 10, seed: 5, checkEvery: 5 },
      );
      expect(report.problems).toContain(
        'seed 5 check after call #4: planted violation (after call #4 ' +
          report.problems[0]?.split('(after call #4 ')[1],
      );
      expect(report.problems.filter((p) => p.includes('planted violation'))).toHaveLength(3);
    } finally {
      world.dispose();
    }
  });
});
