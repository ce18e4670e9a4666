// The kernel's boot-time v7s selftest (CONFIG_IOMMU_IO_PGTABLE_ARMV7S_SELFTEST, digest §6.3),
// re-expressed through the public ops API.
import { describe, expect, it } from 'vitest';
import type { IoPgtableCfg } from '../cfg.js';
import type { IommuFlushOps } from '../gather.js';
import { allocIoPgtableOps, freeIoPgtableOps } from '../io-pgtable.js';
import { InMemoryPageTableMemory } from '../memory-arena.js';
import { IOMMU_CACHE, IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE } from '../prot.js';
import { IO_PGTABLE_QUIRK_ARM_NS } from '../quirks.js';
import { armV7sFormat } from './arm-v7s.js';

const SZ_16M = 0x1000000;
const SZ_1G = 0x40000000;
const SZ_2G = 0x80000000;

describe('ARM_V7S selftest (arm_v7s_do_selftests)', () => {
  it('self test ok', () => {
    const memory = new InMemoryPageTableMemory();
    const problems: string[] = [];
    // The dummy flush ops check that the cookie is the cfg and every flushed size is a page size.
    const tlb: IommuFlushOps = {
      tlbFlushAll: (cookie) => {
        if (cookie !== cfg) problems.push('flushAll cookie');
      },
      tlbFlushWalk: (_iova, size, _granule, cookie) => {
        if (cookie !== cfg) problems.push('flushWalk cookie');
        if ((BigInt(size) & cfg.pgsizeBitmap) === 0n) problems.push(`flushWalk size ${size}`);
      },
      tlbAddPage: (_gather, _iova, granule, cookie) => {
        if (cookie !== cfg) problems.push('addPage cookie');
        if ((BigInt(granule) & cfg.pgsizeBitmap) === 0n) problems.push(`addPage size ${granule}`);
      },
    };
    const cfg: IoPgtableCfg = {
      tlb,
      oas: 32,
      ias: 32,
      coherentWalk: true,
      quirks: IO_PGTABLE_QUIRK_ARM_NS,
      pgsizeBitmap: 0x01111000n,
      memory,
    };
    const ops = allocIoPgtableOps(armV7sFormat, cfg, cfg);
    expect(ops).not.toBeNull();
    if (ops === null) return;

    // Empty page tables provide no translation.
    expect(ops.iovaToPhys(42)).toBe(0);
    expect(ops.iovaToPhys(SZ_1G + 42)).toBe(0);
    expect(ops.iovaToPhys(SZ_2G + 42)).toBe(0);

    const sizes = [0x1000, 0x10000, 0x100000, SZ_16M];
    // Distinct mappings of different granule sizes, 16M apart.
    let iova = 0;
    for (const size of sizes) {
      expect(ops.mapPages(iova, iova, size, 1, IOMMU_READ | IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_CACHE)).toBe(
        size,
      );
      // Overlapping mapping must fail.
      expect(() => ops.mapPages(iova, iova + size, size, 1, IOMMU_READ | IOMMU_NOEXEC)).toThrow(
        expect.objectContaining({ code: 'EEXIST' }),
      );
      expect(ops.iovaToPhys(iova + 42)).toBe(iova + 42);
      iova += SZ_16M;
    }

    // Full unmap, then remap write-only.
    iova = 0;
    for (const size of sizes) {
      expect(ops.unmapPages(iova, size, 1, null)).toBe(size);
      expect(ops.iovaToPhys(iova + 42)).toBe(0);
      expect(ops.mapPages(iova, iova, size, 1, IOMMU_WRITE)).toBe(size);
      expect(ops.iovaToPhys(iova + 42)).toBe(iova + 42);
      iova += SZ_16M;
    }

    freeIoPgtableOps(ops);
    expect(problems).toEqual([]);
    expect(memory.liveTables).toBe(0);
  });
});
