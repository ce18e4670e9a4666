// fail_nth point io_pgtable.alloc_table: a table allocation of a map fails with ENOMEM, reported as
// an IoPgtableMapError with the bytes mapped so far; what was mapped before stays, nothing else is.
import { faultInjector } from '@iommu-ts/base';
import { afterEach, describe, expect, it } from 'vitest';
import { armLpae64S1Format } from './formats/arm-lpae.js';
import { allocIoPgtableOps, type IoPgtableOps } from './io-pgtable.js';
import { IOMMU_READ, IOMMU_WRITE } from './prot.js';
import { IoPgtableMapError } from './walker.js';

afterEach(() => faultInjector.disarm());

const cfg = { quirks: 0, pgsizeBitmap: 0x40201000n, ias: 48, oas: 48, coherentWalk: true };

describe('fail_nth: io_pgtable.alloc_table', () => {
  it('a map needing three new tables fails at each of them with ENOMEM and 0 bytes mapped', () => {
    for (let nth = 1; nth <= 3; nth++) {
      const ops = allocIoPgtableOps(armLpae64S1Format, cfg, null) as IoPgtableOps;
      faultInjector.arm(nth, true);
      let err: unknown;
      try {
        ops.mapPages(0x4000_1000, 0x8000_0000, 0x1000, 1, IOMMU_READ | IOMMU_WRITE);
      } catch (e) {
        err = e;
      }
      faultInjector.disarm();
      expect(faultInjector.fired).toEqual({ nth, site: 'io_pgtable.alloc_table' });
      expect(err).toBeInstanceOf(IoPgtableMapError);
      expect((err as IoPgtableMapError).code).toBe('ENOMEM');
      expect((err as IoPgtableMapError).mapped).toBe(0);
      expect(ops.iovaToPhys(0x4000_1000)).toBe(0);
      // The retry succeeds and translates.
      ops.mapPages(0x4000_1000, 0x8000_0000, 0x1000, 1, IOMMU_READ | IOMMU_WRITE);
      expect(ops.iovaToPhys(0x4000_1234)).toBe(0x8000_0234);
    }
  });

  it('a map over two last-level tables keeps the first part when the second table fails', () => {
    const ops = allocIoPgtableOps(armLpae64S1Format, cfg, null) as IoPgtableOps;
    // 0x1ff000 is the last page of the first 2 MiB; 0x200000 needs a second leaf table.
    ops.mapPages(0x10_0000, 0x9000_0000, 0x1000, 1, IOMMU_READ);
    faultInjector.arm(1);
    let err: unknown;
    try {
      ops.mapPages(0x1f_f000, 0x8000_0000, 0x1000, 2, IOMMU_READ);
    } catch (e) {
      err = e;
    }
    faultInjector.disarm();
    expect((err as IoPgtableMapError).code).toBe('ENOMEM');
    expect((err as IoPgtableMapError).mapped).toBe(0x1000);
    expect(ops.iovaToPhys(0x1f_f000)).toBe(0x8000_0000);
    expect(ops.iovaToPhys(0x20_0000)).toBe(0);
  });
});
