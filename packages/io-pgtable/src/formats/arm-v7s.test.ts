// ARM_V7S through the real ops API: allocation, descriptors in memory, EEXIST, partial unmap,
// contiguous entries, TLB callback sequences (digest §3.4), table lifetime, and a model-based
// property test.
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IoPgtableCfg } from '../cfg.js';
import { IommuIotlbGather } from '../gather.js';
import { allocIoPgtableOps, freeIoPgtableOps, type IoPgtableOps } from '../io-pgtable.js';
import { InMemoryPageTableMemory } from '../memory-arena.js';
import { IOMMU_CACHE, IOMMU_MMIO, IOMMU_NOEXEC, IOMMU_PRIV, IOMMU_READ, IOMMU_WRITE } from '../prot.js';
import {
  IO_PGTABLE_QUIRK_ARM_MTK_EXT,
  IO_PGTABLE_QUIRK_ARM_MTK_TTBR_EXT,
  IO_PGTABLE_QUIRK_ARM_NS,
  IO_PGTABLE_QUIRK_ARM_TTBR1,
  IO_PGTABLE_QUIRK_NO_PERMS,
} from '../quirks.js';
import { armV7sFormat } from './arm-v7s.js';

const SZ_4K = 0x1000;
const SZ_64K = 0x10000;
const SZ_1M = 0x100000;
const SZ_16M = 0x1000000;
const RWXC = IOMMU_READ | IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_CACHE;

type TlbEvent =
  | { op: 'flushAll' }
  | { op: 'flushWalk'; iova: number; size: number; granule: number }
  | { op: 'addPage'; gather: IommuIotlbGather | null; iova: number; granule: number };

interface Harness {
  ops: IoPgtableOps;
  cfg: IoPgtableCfg;
  memory: InMemoryPageTableMemory;
  events: TlbEvent[];
  /** Events since the last call, then clears the log. */
  take(): TlbEvent[];
}

function setup(over: Partial<IoPgtableCfg> = {}): Harness {
  const memory = new InMemoryPageTableMemory();
  const events: TlbEvent[] = [];
  const cookie = { name: 'v7s-test' };
  const cfg: IoPgtableCfg = {
    quirks: IO_PGTABLE_QUIRK_ARM_NS,
    pgsizeBitmap: 0x01111000n,
    ias: 32,
    oas: 32,
    coherentWalk: true,
    memory,
    tlb: {
      tlbFlushAll: (c) => {
        expect(c).toBe(cookie);
        events.push({ op: 'flushAll' });
      },
      tlbFlushWalk: (iova, size, granule, c) => {
        expect(c).toBe(cookie);
        events.push({ op: 'flushWalk', iova, size, granule });
      },
      tlbAddPage: (gather, iova, granule, c) => {
        expect(c).toBe(cookie);
        events.push({ op: 'addPage', gather, iova, granule });
      },
    },
    ...over,
  };
  const ops = allocIoPgtableOps(armV7sFormat, cfg, cookie);
  if (ops === null) throw new Error('allocation failed');
  return {
    ops,
    cfg,
    memory,
    events,
    take: () => events.splice(0, events.length),
  };
}

const addPages = (
  iova: number,
  granule: number,
  n: number,
  gather: IommuIotlbGather | null = null,
): TlbEvent[] =>
  Array.from({ length: n }, (_, i) => ({
    op: 'addPage' as const,
    gather,
    iova: iova + i * granule,
    granule,
  }));

/** The raw 32-bit words of the table at `pa`, `count` entries from `index`. */
function words(memory: InMemoryPageTableMemory, pa: number, index: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => memory.read32(pa + (index + i) * 4));
}

describe('ARM_V7S allocation', () => {
  it('writes TTBR/TCR/NMRR/PRRR, narrows the bitmap and allocates one 16 KiB level-1 table', () => {
    const h = setup({ pgsizeBitmap: 0xfffff000n });
    const root = h.ops.walker.rootPa;
    expect(root % 16384).toBe(0);
    expect(root).toBeLessThan(2 ** 32);
    expect(h.cfg.pgsizeBitmap).toBe(0x01111000n);
    expect(h.cfg.armV7sCfg).toEqual({
      ttbr: (root | 0x6a) >>> 0,
      tcr: 0,
      nmrr: 0x40004000,
      prrr: 0x800b8204,
    });
    expect(h.memory.liveTables).toBe(1);
    expect(h.memory.liveBytes).toBe(16384);
  });

  it('non-coherent walk: TTBR carries S and non-cacheable walk attributes only', () => {
    const h = setup({ coherentWalk: false });
    expect(h.cfg.armV7sCfg?.ttbr).toBe((h.ops.walker.rootPa | 0x2) >>> 0);
  });

  it('is reachable through the format number once registered', () => {
    // allocIoPgtableOps(4, …) needs ARM_V7S in io-pgtable.ts's format table (core's file).
    const cfg: IoPgtableCfg = { quirks: 0, pgsizeBitmap: 0x01111000n, ias: 32, oas: 32, coherentWalk: true };
    const ops = allocIoPgtableOps(4, cfg, null);
    if (ops !== null) {
      expect(ops.format).toBe(armV7sFormat);
      freeIoPgtableOps(ops);
    }
  });

  it.each([
    ['ias 33', { ias: 33 }],
    ['oas 40', { oas: 40 }],
    ['quirk ARM_TTBR1', { quirks: IO_PGTABLE_QUIRK_ARM_TTBR1 }],
    ['MTK_EXT without NO_PERMS', { quirks: IO_PGTABLE_QUIRK_ARM_MTK_EXT }],
    [
      'MTK_TTBR_EXT without MTK_EXT',
      { quirks: IO_PGTABLE_QUIRK_ARM_MTK_TTBR_EXT | IO_PGTABLE_QUIRK_NO_PERMS },
    ],
  ])('returns null for %s', (_name, over) => {
    const cfg: IoPgtableCfg = {
      quirks: 0,
      pgsizeBitmap: 0x01111000n,
      ias: 32,
      oas: 32,
      coherentWalk: true,
      ...over,
    };
    expect(allocIoPgtableOps(armV7sFormat, cfg, null)).toBeNull();
  });
});

describe('ARM_V7S map', () => {
  it('writes the expected descriptors: table + small page, section, 16 × supersection, 16 × large page', () => {
    const h = setup();
    const root = h.ops.walker.rootPa;
    h.ops.mapPages(0x00001000, 0x00001000, SZ_4K, 1, RWXC);
    const [l1] = words(h.memory, root, 0, 1);
    expect((l1! & 0x3ff) >>> 0).toBe(0x009); // table type | NS_TABLE
    const l2 = (l1! & 0xfffffc00) >>> 0;
    expect(l2 % 1024).toBe(0);
    expect(words(h.memory, l2, 1, 1)).toEqual([0x00001c7f]);
    expect(h.ops.pgtableWalk(0x1000)).toEqual([BigInt(l1!), 0x00001c7fn]);

    h.ops.mapPages(0x00100000, 0x12300000, SZ_1M, 1, RWXC);
    expect(words(h.memory, root, 1, 1)).toEqual([0x123b1c1e]);

    h.ops.mapPages(0x03000000, 0x03000000, SZ_16M, 1, RWXC);
    expect(words(h.memory, root, 0x30, 16)).toEqual(new Array(16).fill(0x030f1c1e));
    expect(words(h.memory, root, 0x40, 1)).toEqual([0]);

    h.ops.mapPages(0x00010000, 0x00010000, SZ_64K, 1, RWXC);
    expect(words(h.memory, l2, 0x10, 16)).toEqual(new Array(16).fill(0x00019c3d));
    expect(words(h.memory, l2, 0x20, 1)).toEqual([0]);
    // One level-2 table (1 KiB) besides the level-1 table.
    expect(h.memory.liveTables).toBe(2);
    expect(h.take()).toEqual([]);
  });

  it('maps pgcount pages one by one and reports the bytes', () => {
    const h = setup();
    expect(h.ops.mapPages(0x00200000, 0x80000000, SZ_64K, 3, IOMMU_READ)).toBe(3 * SZ_64K);
    for (let i = 0; i < 3; i++) {
      expect(h.ops.iovaToPhys(0x00200000 + i * SZ_64K + 0x1234)).toBe(0x80000000 + i * SZ_64K + 0x1234);
    }
  });

  it('EEXIST on remap at every size, and on a smaller page inside a larger one', () => {
    const h = setup();
    const cases: [number, number][] = [
      [0x00000000, SZ_4K],
      [0x01000000, SZ_64K],
      [0x02000000, SZ_1M],
      [0x03000000, SZ_16M],
    ];
    for (const [iova, size] of cases) {
      h.ops.mapPages(iova, iova, size, 1, RWXC);
      expect(() => h.ops.mapPages(iova, iova + size, size, 1, IOMMU_READ)).toThrow(
        expect.objectContaining({ code: 'EEXIST', errno: 17 }),
      );
      expect(h.ops.iovaToPhys(iova + 42)).toBe(iova + 42);
    }
    // 4K inside a section / supersection; 4K inside a large page; 64K over one small page.
    expect(() => h.ops.mapPages(0x02001000, 0, SZ_4K, 1, IOMMU_READ)).toThrow(
      expect.objectContaining({ code: 'EEXIST' }),
    );
    expect(() => h.ops.mapPages(0x03801000, 0, SZ_4K, 1, IOMMU_READ)).toThrow(
      expect.objectContaining({ code: 'EEXIST' }),
    );
    expect(() => h.ops.mapPages(0x01008000, 0, SZ_4K, 1, IOMMU_READ)).toThrow(
      expect.objectContaining({ code: 'EEXIST' }),
    );
    expect(() => h.ops.mapPages(0x00000000, 0, SZ_64K, 1, IOMMU_READ)).toThrow(
      expect.objectContaining({ code: 'EEXIST' }),
    );
    // 1M over the supersection's slot.
    expect(() => h.ops.mapPages(0x03500000, 0, SZ_1M, 1, IOMMU_READ)).toThrow(
      expect.objectContaining({ code: 'EEXIST' }),
    );
    // Nothing of the failed 64K was written.
    expect(h.ops.iovaToPhys(0x00001000)).toBe(0);
  });

  it('stops at the first failing page: mapped bytes are reported and stay mapped (EEXIST, ENOMEM)', () => {
    const h = setup();
    h.ops.mapPages(0x00002000, 0, SZ_4K, 1, IOMMU_READ);
    expect(() => h.ops.mapPages(0, 0x10000000, SZ_4K, 4, IOMMU_READ)).toThrow(
      expect.objectContaining({ code: 'EEXIST', mapped: 2 * SZ_4K }),
    );
    expect(h.ops.iovaToPhys(0x00001000)).toBe(0x10001000);
    expect(h.ops.iovaToPhys(0x00003000)).toBe(0);
    h.memory.failNextAllocs(1);
    expect(() => h.ops.mapPages(0x00f00000, 0, SZ_4K, 1, IOMMU_READ)).toThrow(
      expect.objectContaining({ code: 'ENOMEM', mapped: 0 }),
    );
    expect(h.ops.pgtableWalk(0x00f00000)).toEqual([0n]);
    expect(h.memory.liveTables).toBe(2);
  });

  it('ERANGE for an IOVA or PA beyond 32 bits, EINVAL without READ or WRITE', () => {
    const h = setup();
    expect(() => h.ops.mapPages(2 ** 32, 0, SZ_4K, 1, IOMMU_READ)).toThrow(
      expect.objectContaining({ code: 'ERANGE' }),
    );
    expect(() => h.ops.mapPages(0, 2 ** 32, SZ_4K, 1, IOMMU_READ)).toThrow(
      expect.objectContaining({ code: 'ERANGE' }),
    );
    expect(() => h.ops.mapPages(0, 0, SZ_4K, 1, IOMMU_NOEXEC | IOMMU_CACHE)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(h.ops.unmapPages(2 ** 32, SZ_4K, 1, null)).toBe(0);
    expect(h.ops.iovaToPhys(2 ** 32 + 42)).toBe(0);
  });

  it('mapping a section over a level-2 table flushes its walk (iova, 1M, 4K) and frees it', () => {
    const h = setup();
    h.ops.mapPages(0x00500000, 0x1000, SZ_4K, 1, IOMMU_READ);
    expect(h.memory.liveTables).toBe(2);
    h.take();
    h.ops.mapPages(0x00500000, 0x40000000, SZ_1M, 1, IOMMU_READ);
    expect(h.take()).toEqual([{ op: 'flushWalk', iova: 0x00500000, size: SZ_1M, granule: SZ_4K }]);
    expect(h.memory.liveTables).toBe(1);
    expect(h.ops.iovaToPhys(0x00500000 + 42)).toBe(0x40000000 + 42);
  });

  // Linux removes the table under slot i of a contiguous leaf being mapped as an unmap of
  // `iova + i * 1M`, 1M: each table is flushed with its own slot's IOVA and size.
  it('mapping a supersection over level-2 tables flushes each slot as (iova + i·1M, 1M, 4K)', () => {
    const h = setup();
    h.ops.mapPages(0x01000000, 0, SZ_4K, 1, IOMMU_READ);
    h.ops.mapPages(0x01300000, 0, SZ_4K, 1, IOMMU_READ);
    h.take();
    h.ops.mapPages(0x01000000, 0x20000000, SZ_16M, 1, IOMMU_READ);
    expect(h.take()).toEqual([
      { op: 'flushWalk', iova: 0x01000000, size: SZ_1M, granule: SZ_4K },
      { op: 'flushWalk', iova: 0x01300000, size: SZ_1M, granule: SZ_4K },
    ]);
  });

  it('a supersection over level-2 tables frees them all (whatever the flush arguments)', () => {
    const h = setup();
    h.ops.mapPages(0x01000000, 0, SZ_4K, 1, IOMMU_READ);
    h.ops.mapPages(0x01300000, 0, SZ_4K, 1, IOMMU_READ);
    expect(h.memory.liveTables).toBe(3);
    h.ops.mapPages(0x01000000, 0x20000000, SZ_16M, 1, IOMMU_READ);
    expect(h.memory.liveTables).toBe(1);
    expect(h.ops.iovaToPhys(0x01300000 + 5)).toBe(0x20300005);
  });

  it('NO_PERMS maps everything with full access: no AP, no XN', () => {
    const h = setup({ quirks: IO_PGTABLE_QUIRK_NO_PERMS });
    h.ops.mapPages(0x00100000, 0x00100000, SZ_1M, 1, IOMMU_READ | IOMMU_NOEXEC | IOMMU_PRIV);
    expect(words(h.memory, h.ops.walker.rootPa, 1, 1)).toEqual([0x00131002]);
    h.ops.mapPages(0x00001000, 0x00001000, SZ_4K, 1, IOMMU_WRITE | IOMMU_MMIO | IOMMU_NOEXEC);
    expect(h.ops.pgtableWalk(0x1000)[1]).toBe(0x00001c06n);
  });
});

describe('ARM_V7S contiguous entries and iova_to_phys', () => {
  it('offsets inside a large page and a supersection use 16 × the level size', () => {
    const h = setup();
    h.ops.mapPages(0x00010000, 0x7ab50000, SZ_64K, 1, IOMMU_READ);
    h.ops.mapPages(0x05000000, 0x9c000000, SZ_16M, 1, IOMMU_READ);
    expect(h.ops.iovaToPhys(0x00010000)).toBe(0x7ab50000);
    expect(h.ops.iovaToPhys(0x0001fedc)).toBe(0x7ab5fedc);
    expect(h.ops.iovaToPhys(0x00020000)).toBe(0);
    expect(h.ops.iovaToPhys(0x05abcdef)).toBe(0x9cabcdef);
    expect(h.ops.iovaToPhys(0x05ffffff)).toBe(0x9cffffff);
    expect(h.ops.iovaToPhys(0x06000000)).toBe(0);
  });

  it('partial unmap of a large page, section or supersection returns 0 and keeps the mapping', () => {
    const h = setup();
    h.ops.mapPages(0x00010000, 0x00010000, SZ_64K, 1, IOMMU_READ);
    h.ops.mapPages(0x00200000, 0x00200000, SZ_1M, 1, IOMMU_READ);
    h.ops.mapPages(0x02000000, 0x02000000, SZ_16M, 1, IOMMU_READ);
    h.take();
    expect(h.ops.unmapPages(0x00010000, SZ_4K, 1, null)).toBe(0);
    expect(h.ops.unmapPages(0x00018000, SZ_4K, 1, null)).toBe(0);
    expect(h.ops.unmapPages(0x00200000, SZ_4K, 1, null)).toBe(0);
    expect(h.ops.unmapPages(0x00210000, SZ_64K, 1, null)).toBe(0);
    expect(h.ops.unmapPages(0x02000000, SZ_1M, 1, null)).toBe(0);
    expect(h.ops.unmapPages(0x02500000, SZ_1M, 1, null)).toBe(0);
    expect(h.ops.unmapPages(0x02500000, SZ_64K, 1, null)).toBe(0);
    expect(h.ops.unmapPages(0x02500000, SZ_4K, 1, null)).toBe(0);
    expect(h.take()).toEqual([]);
    expect(h.ops.iovaToPhys(0x00018000)).toBe(0x00018000);
    expect(h.ops.iovaToPhys(0x00200000)).toBe(0x00200000);
    expect(h.ops.iovaToPhys(0x02500000)).toBe(0x02500000);
  });

  it('unmapping a contiguous entry as a whole clears all 16 copies', () => {
    const h = setup();
    const root = h.ops.walker.rootPa;
    h.ops.mapPages(0x02000000, 0x02000000, SZ_16M, 1, IOMMU_READ);
    expect(h.ops.unmapPages(0x02000000, SZ_16M, 1, null)).toBe(SZ_16M);
    expect(words(h.memory, root, 0x20, 16)).toEqual(new Array(16).fill(0));
    h.ops.mapPages(0x00010000, 0x00010000, SZ_64K, 1, IOMMU_READ);
    expect(h.ops.unmapPages(0x00010000, SZ_64K, 1, null)).toBe(SZ_64K);
    const l2 = (words(h.memory, root, 0, 1)[0]! & 0xfffffc00) >>> 0;
    expect(words(h.memory, l2, 0x10, 16)).toEqual(new Array(16).fill(0));
    // The level-2 table outlives its last leaf.
    expect(h.memory.liveTables).toBe(2);
  });
});

describe('ARM_V7S unmap and TLB callbacks', () => {
  it('small page and section: one tlbAddPage each, even with a null gather', () => {
    const h = setup();
    h.ops.mapPages(0x00001000, 0, SZ_4K, 1, IOMMU_READ);
    h.ops.mapPages(0x00300000, 0, SZ_1M, 1, IOMMU_READ);
    h.take();
    expect(h.ops.unmapPages(0x00001000, SZ_4K, 1, null)).toBe(SZ_4K);
    expect(h.ops.unmapPages(0x00300000, SZ_1M, 1, null)).toBe(SZ_1M);
    expect(h.take()).toEqual([...addPages(0x00001000, SZ_4K, 1), ...addPages(0x00300000, SZ_1M, 1)]);
  });

  it('a gather is passed through; a queued gather suppresses tlbAddPage', () => {
    const h = setup();
    h.ops.mapPages(0, 0, SZ_4K, 4, IOMMU_READ);
    h.take();
    const g = new IommuIotlbGather();
    expect(h.ops.unmapPages(0, SZ_4K, 2, g)).toBe(2 * SZ_4K);
    expect(h.take()).toEqual(addPages(0, SZ_4K, 2, g));
    const q = new IommuIotlbGather();
    q.queued = true;
    expect(h.ops.unmapPages(2 * SZ_4K, SZ_4K, 2, q)).toBe(2 * SZ_4K);
    expect(h.take()).toEqual([]);
  });

  it('unmapping 1M over a level-2 table: tlbFlushWalk(iova, 1M, 4K), no tlbAddPage, table freed', () => {
    const h = setup();
    h.ops.mapPages(0x00700000, 0, SZ_4K, 3, IOMMU_READ);
    h.ops.mapPages(0x00710000, 0, SZ_64K, 1, IOMMU_READ);
    expect(h.memory.liveTables).toBe(2);
    h.take();
    expect(h.ops.unmapPages(0x00700000, SZ_1M, 1, null)).toBe(SZ_1M);
    expect(h.take()).toEqual([{ op: 'flushWalk', iova: 0x00700000, size: SZ_1M, granule: SZ_4K }]);
    expect(h.memory.liveTables).toBe(1);
    expect(h.ops.iovaToPhys(0x00700000)).toBe(0);
    expect(h.ops.iovaToPhys(0x00712345)).toBe(0);
  });

  it('unmap stops at the first page that unmaps nothing', () => {
    const h = setup();
    h.ops.mapPages(0, 0, SZ_4K, 2, IOMMU_READ);
    h.ops.mapPages(3 * SZ_4K, 0, SZ_4K, 1, IOMMU_READ);
    h.take();
    expect(h.ops.unmapPages(0, SZ_4K, 4, null)).toBe(2 * SZ_4K);
    expect(h.take()).toEqual(addPages(0, SZ_4K, 2));
    expect(h.ops.iovaToPhys(3 * SZ_4K)).toBe(0);
    expect(h.ops.iovaToPhys(3 * SZ_4K + 1)).toBe(1);
  });

  // A contiguous page size is unmapped slot by slot, as __arm_v7s_unmap does with num_entries = 16:
  // every slot must be valid (else 0, nothing touched), then all 16 are cleared, then per slot in
  // order: a table gets tlbFlushWalk(iova + i·slot, slot, 4K) and is freed, a leaf gets
  // tlbAddPage(gather, iova + i·slot, slot).
  it('a large page: 16 × tlbAddPage(iova + i·4K, 4K)', () => {
    const h = setup();
    h.ops.mapPages(0x00010000, 0, SZ_64K, 1, IOMMU_READ);
    h.take();
    expect(h.ops.unmapPages(0x00010000, SZ_64K, 1, null)).toBe(SZ_64K);
    expect(h.take()).toEqual(addPages(0x00010000, SZ_4K, 16));
  });

  it('a supersection: 16 × tlbAddPage(iova + i·1M, 1M)', () => {
    const h = setup();
    h.ops.mapPages(0x01000000, 0, SZ_16M, 1, IOMMU_READ);
    h.take();
    expect(h.ops.unmapPages(0x01000000, SZ_16M, 1, null)).toBe(SZ_16M);
    expect(h.take()).toEqual(addPages(0x01000000, SZ_1M, 16));
  });

  it('64K over 16 small pages unmaps them all (16 × tlbAddPage 4K)', () => {
    const h = setup();
    h.ops.mapPages(0x00010000, 0x00010000, SZ_4K, 16, IOMMU_READ);
    h.take();
    expect(h.ops.unmapPages(0x00010000, SZ_64K, 1, null)).toBe(SZ_64K);
    expect(h.take()).toEqual(addPages(0x00010000, SZ_4K, 16));
    expect(h.ops.iovaToPhys(0x00015000)).toBe(0);
  });

  it('16M over sections and level-2 tables: per-slot flushes, every table freed', () => {
    const h = setup();
    for (let i = 0; i < 16; i++) {
      if (i % 4 === 1) h.ops.mapPages(0x01000000 + i * SZ_1M, 0, SZ_4K, 1, IOMMU_READ);
      else h.ops.mapPages(0x01000000 + i * SZ_1M, i * SZ_1M, SZ_1M, 1, IOMMU_READ);
    }
    expect(h.memory.liveTables).toBe(5);
    h.take();
    expect(h.ops.unmapPages(0x01000000, SZ_16M, 1, null)).toBe(SZ_16M);
    const expected: TlbEvent[] = [];
    for (let i = 0; i < 16; i++) {
      const iova = 0x01000000 + i * SZ_1M;
      expected.push(
        i % 4 === 1
          ? { op: 'flushWalk', iova, size: SZ_1M, granule: SZ_4K }
          : { op: 'addPage', gather: null, iova, granule: SZ_1M },
      );
    }
    expect(h.take()).toEqual(expected);
    expect(h.memory.liveTables).toBe(1);
  });

  it('a contiguous-size unmap over a region whose first slot is empty returns 0', () => {
    const h = setup();
    h.ops.mapPages(0x00011000, 0, SZ_4K, 1, IOMMU_READ);
    h.ops.mapPages(0x01100000, 0, SZ_1M, 1, IOMMU_READ);
    h.take();
    expect(h.ops.unmapPages(0x00010000, SZ_64K, 1, null)).toBe(0);
    expect(h.ops.unmapPages(0x01000000, SZ_16M, 1, null)).toBe(0);
    expect(h.take()).toEqual([]);
    expect(h.ops.iovaToPhys(0x00011000)).toBe(0);
    expect(h.ops.iovaToPhys(0x01100000)).toBe(0);
    expect(h.ops.pgtableWalk(0x01100000)[0]).not.toBe(0n);
  });

  it('a contiguous-size unmap with any empty slot (not only the first) changes nothing', () => {
    const h = setup();
    // 15 of the 16 small pages of a 64K region (slot 7 missing).
    for (let i = 0; i < 16; i++)
      if (i !== 7) h.ops.mapPages(0x00010000 + i * SZ_4K, i * SZ_4K, SZ_4K, 1, IOMMU_READ);
    // 15 of the 16 level-1 slots of a 16M region: sections and one level-2 table (slot 9 missing).
    for (let i = 0; i < 16; i++) {
      if (i === 9) continue;
      if (i === 3) h.ops.mapPages(0x01000000 + i * SZ_1M, 0, SZ_4K, 1, IOMMU_READ);
      else h.ops.mapPages(0x01000000 + i * SZ_1M, i * SZ_1M, SZ_1M, 1, IOMMU_READ);
    }
    const tables = h.memory.liveTables;
    const before = [...words(h.memory, h.ops.walker.rootPa, 0, 0x20)];
    h.take();
    expect(h.ops.unmapPages(0x00010000, SZ_64K, 1, null)).toBe(0);
    expect(h.ops.unmapPages(0x01000000, SZ_16M, 1, null)).toBe(0);
    expect(h.take()).toEqual([]);
    expect(words(h.memory, h.ops.walker.rootPa, 0, 0x20)).toEqual(before);
    expect(h.memory.liveTables).toBe(tables);
    expect(h.ops.iovaToPhys(0x00018000)).toBe(0x8000);
    expect(h.ops.iovaToPhys(0x01a00000)).toBe(0xa00000);
  });

  it('contiguous-size unmap: tlbAddPage gets the caller gather per slot; a queued gather none', () => {
    const h = setup();
    h.ops.mapPages(0x00010000, 0, SZ_64K, 2, IOMMU_READ);
    h.ops.mapPages(0x01000000, 0, SZ_16M, 1, IOMMU_READ);
    h.take();
    const g = new IommuIotlbGather();
    expect(h.ops.unmapPages(0x00010000, SZ_64K, 1, g)).toBe(SZ_64K);
    expect(h.take()).toEqual(addPages(0x00010000, SZ_4K, 16, g));
    const q = new IommuIotlbGather();
    q.queued = true;
    expect(h.ops.unmapPages(0x00020000, SZ_64K, 1, q)).toBe(SZ_64K);
    expect(h.ops.unmapPages(0x01000000, SZ_16M, 1, q)).toBe(SZ_16M);
    expect(h.take()).toEqual([]);
    expect(h.ops.iovaToPhys(0x01000000)).toBe(0);
  });

  it('free: one tlbFlushAll, then every table returned', () => {
    const h = setup();
    h.ops.mapPages(0, 0, SZ_4K, 1, IOMMU_READ);
    h.ops.mapPages(0x00100000, 0, SZ_64K, 1, IOMMU_READ);
    h.ops.mapPages(0x01000000, 0, SZ_16M, 1, IOMMU_READ);
    expect(h.memory.liveTables).toBe(3);
    h.take();
    freeIoPgtableOps(h.ops);
    expect(h.take()).toEqual([{ op: 'flushAll' }]);
    expect(h.memory.liveTables).toBe(0);
  });
});

describe('ARM_V7S table placement (tables must fit the descriptor)', () => {
  const cfgAbove = (memory: InMemoryPageTableMemory, over: Partial<IoPgtableCfg> = {}): IoPgtableCfg => ({
    quirks: 0,
    pgsizeBitmap: 0x01111000n,
    ias: 32,
    oas: 32,
    coherentWalk: true,
    memory,
    ...over,
  });

  it('allocation fails (null) when the level-1 table lands at or above 4 GiB, and frees it', () => {
    const memory = new InMemoryPageTableMemory({ base: 2 ** 32 });
    expect(allocIoPgtableOps(armV7sFormat, cfgAbove(memory), null)).toBeNull();
    expect(memory.liveTables).toBe(0);
    expect(memory.allocCount).toBe(1);
    expect(memory.freeCount).toBe(1);
  });

  it('MTK_TTBR_EXT accepts tables below 2^oas, above 4 GiB', () => {
    const memory = new InMemoryPageTableMemory({ base: 2 ** 33 });
    const quirks =
      IO_PGTABLE_QUIRK_NO_PERMS | IO_PGTABLE_QUIRK_ARM_MTK_EXT | IO_PGTABLE_QUIRK_ARM_MTK_TTBR_EXT;
    const cfg = cfgAbove(memory, { quirks, ias: 32, oas: 35 });
    const ops = allocIoPgtableOps(armV7sFormat, cfg, null);
    if (ops === null) throw new Error('allocation failed');
    expect(ops.walker.rootPa).toBe(2 ** 33);
    ops.mapPages(0x1000, 0x5_0000_3000, SZ_4K, 1, IOMMU_READ);
    expect(ops.iovaToPhys(0x1abc)).toBe(0x5_0000_3abc);
    expect(memory.liveTables).toBe(2);
    freeIoPgtableOps(ops);
    expect(memory.liveTables).toBe(0);
    // Not below 2^oas: refused.
    const high = new InMemoryPageTableMemory({ base: 2 ** 35 });
    expect(allocIoPgtableOps(armV7sFormat, cfgAbove(high, { quirks, oas: 35 }), null)).toBeNull();
  });

  it('map fails with ENOMEM when a level-2 table lands above 4 GiB; the table is freed again', () => {
    // The first 1 MiB chunk sits just below 4 GiB: the level-1 table and 1008 level-2 tables fit.
    const memory = new InMemoryPageTableMemory({ base: 2 ** 32 - SZ_1M });
    const ops = allocIoPgtableOps(armV7sFormat, cfgAbove(memory), null);
    if (ops === null) throw new Error('allocation failed');
    const fits = (SZ_1M - 16384) / 1024;
    for (let i = 0; i < fits; i++) ops.mapPages(i * SZ_1M, 0, SZ_4K, 1, IOMMU_READ);
    expect(memory.liveTables).toBe(1 + fits);
    expect(() => ops.mapPages(fits * SZ_1M, 0x2000, SZ_4K, 2, IOMMU_READ)).toThrow(
      expect.objectContaining({ code: 'ENOMEM', errno: 12, mapped: 0 }),
    );
    expect(memory.liveTables).toBe(1 + fits);
    expect(ops.pgtableWalk(fits * SZ_1M)).toEqual([0n]);
    // Sections need no table and still work.
    expect(ops.mapPages(fits * SZ_1M, 0x0010_0000, SZ_1M, 1, IOMMU_READ)).toBe(SZ_1M);
    freeIoPgtableOps(ops);
    expect(memory.liveTables).toBe(0);
  });
});

describe('ARM_V7S MediaTek extension', () => {
  it('ias 34 / oas 35: 64 KiB level-1 table, PAs up to 2^35, IOVAs above 4 GiB', () => {
    const h = setup({ ias: 34, oas: 35, quirks: IO_PGTABLE_QUIRK_NO_PERMS | IO_PGTABLE_QUIRK_ARM_MTK_EXT });
    expect(h.memory.liveBytes).toBe(65536);
    const root = h.ops.walker.rootPa;
    expect(h.cfg.armV7sCfg?.ttbr).toBe(root);
    h.ops.mapPages(0x3_0000_1000, 0x7_1234_5000, SZ_4K, 1, IOMMU_READ | IOMMU_WRITE);
    h.ops.mapPages(0x2_0010_0000, 0x4_0010_0000, SZ_1M, 1, IOMMU_READ);
    h.ops.mapPages(0x1_0100_0000, 0x5_0100_0000, SZ_16M, 1, IOMMU_READ);
    h.ops.mapPages(0x0_0001_0000, 0x1_0001_0000, SZ_64K, 1, IOMMU_READ);
    expect(h.ops.iovaToPhys(0x3_0000_1abc)).toBe(0x7_1234_5abc);
    expect(h.ops.iovaToPhys(0x2_001f_ffff)).toBe(0x4_001f_ffff);
    expect(h.ops.iovaToPhys(0x1_01ab_cdef)).toBe(0x5_01ab_cdef);
    expect(h.ops.iovaToPhys(0x0_0001_8000)).toBe(0x1_0001_8000);
    // Section at level-1 index 0x2001: PA bit 34 → bit 5, low bits 0x0010_0000.
    expect(words(h.memory, root, 0x2001, 1)).toEqual([(0x00100000 | 0x31002 | (1 << 5)) >>> 0]);
    expect(() => h.ops.mapPages(0, 2 ** 35, SZ_4K, 1, IOMMU_READ)).toThrow(
      expect.objectContaining({ code: 'ERANGE' }),
    );
    freeIoPgtableOps(h.ops);
    expect(h.memory.liveTables).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Model-based property test: a slot-level model of Linux's v7s map/unmap rules.

type L2Slot = { large: boolean; pa: number };
type L1Slot =
  | { kind: 'sec'; pa: number }
  | { kind: 'ss'; pa: number }
  | { kind: 'tbl'; l2: Map<number, L2Slot> };

class V7sModel {
  readonly l1 = new Map<number, L1Slot>();

  get tables(): number {
    let n = 0;
    for (const s of this.l1.values()) if (s.kind === 'tbl') n++;
    return n;
  }

  map(iova: number, pa: number, size: number): 'ok' | 'EEXIST' {
    const i1 = Math.floor(iova / SZ_1M);
    if (size >= SZ_1M) {
      const n = size / SZ_1M;
      for (let i = 0; i < n; i++) {
        const s = this.l1.get(i1 + i);
        if (s === undefined) continue;
        if (s.kind === 'tbl') this.l1.delete(i1 + i);
        else return 'EEXIST';
      }
      for (let i = 0; i < n; i++) this.l1.set(i1 + i, n > 1 ? { kind: 'ss', pa } : { kind: 'sec', pa });
      return 'ok';
    }
    let s = this.l1.get(i1);
    if (s !== undefined && s.kind !== 'tbl') return 'EEXIST';
    if (s === undefined) {
      s = { kind: 'tbl', l2: new Map() };
      this.l1.set(i1, s);
    }
    const j0 = (iova >>> 12) & 0xff;
    const n = size / SZ_4K;
    for (let j = 0; j < n; j++) if (s.l2.has(j0 + j)) return 'EEXIST';
    for (let j = 0; j < n; j++) s.l2.set(j0 + j, { large: n > 1, pa });
    return 'ok';
  }

  /** Kernel result of one unmap (`__arm_v7s_unmap` for one page). */
  unmap(iova: number, size: number): number {
    const i1 = Math.floor(iova / SZ_1M);
    if (size >= SZ_1M) {
      const n = size / SZ_1M;
      const slots = Array.from({ length: n }, (_, i) => this.l1.get(i1 + i));
      // Every target slot must be valid.
      if (slots.some((s) => s === undefined)) return 0;
      // One slot of a supersection is a partial unmap.
      if (n === 1 && slots[0]?.kind === 'ss') return 0;
      // Sections, supersections and level-2 tables (freed) all go.
      for (let i = 0; i < n; i++) this.l1.delete(i1 + i);
      return size;
    }
    const s = this.l1.get(i1);
    // Nothing there, or inside a section/supersection (partial).
    if (s === undefined || s.kind !== 'tbl') return 0;
    const j0 = (iova >>> 12) & 0xff;
    const n = size / SZ_4K;
    const slots = Array.from({ length: n }, (_, j) => s.l2.get(j0 + j));
    if (slots.some((x) => x === undefined)) return 0;
    if (n === 1 && slots[0]?.large) return 0;
    // A 64K unmap takes a large page or up to 16 small pages alike.
    for (let j = 0; j < n; j++) s.l2.delete(j0 + j);
    return size;
  }

  /** IOVA and size of every leaf (one per contiguous entry). */
  leaves(): [number, number][] {
    const out: [number, number][] = [];
    for (const [i, s] of this.l1) {
      if (s.kind === 'sec') out.push([i * SZ_1M, SZ_1M]);
      else if (s.kind === 'ss') {
        if (i % 16 === 0) out.push([i * SZ_1M, SZ_16M]);
      } else {
        for (const [j, e] of s.l2) {
          if (!e.large) out.push([i * SZ_1M + j * SZ_4K, SZ_4K]);
          else if (j % 16 === 0) out.push([i * SZ_1M + j * SZ_4K, SZ_64K]);
        }
      }
    }
    return out;
  }

  lookup(iova: number): number {
    const s = this.l1.get(Math.floor(iova / SZ_1M));
    if (s === undefined) return 0;
    if (s.kind === 'sec') return s.pa + (iova % SZ_1M);
    if (s.kind === 'ss') return s.pa + (iova % SZ_16M);
    const e = s.l2.get((iova >>> 12) & 0xff);
    if (e === undefined) return 0;
    return e.pa + (iova % (e.large ? SZ_64K : SZ_4K));
  }
}

describe('ARM_V7S against a model (fast-check)', () => {
  const SIZES = [SZ_4K, SZ_64K, SZ_1M, SZ_16M] as const;
  const SPAN = 4 * SZ_16M; // four supersection regions: lots of collisions
  const opArb = fc.record({
    unmap: fc.boolean(),
    /** Unmap at an existing leaf: 0 no, 1 with its own size, 2 with the random size. */
    pick: fc.constantFrom(0, 1, 1, 2),
    size: fc.constantFrom(...SIZES),
    where: fc.nat({ max: SPAN - 1 }),
    pa: fc.nat({ max: 0xffffffff }),
    count: fc.integer({ min: 1, max: 3 }),
  });

  it('map/unmap of 4K/64K/1M/16M agree with the model; iovaToPhys agrees; all tables freed', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (opsList) => {
        const h = setup({ tlb: null });
        const model = new V7sModel();
        for (const op of opsList) {
          let size: number = op.size;
          let iova = Math.floor(op.where / size) * size;
          const leaves = op.unmap && op.pick !== 0 ? model.leaves() : [];
          const leaf = leaves[op.where % Math.max(1, leaves.length)];
          if (leaf !== undefined) {
            if (op.pick === 1) size = leaf[1];
            iova = Math.floor(leaf[0] / size) * size;
          }
          if (op.unmap) {
            // Page by page, as Linux: stop at the first page that unmaps nothing.
            const probe = new V7sModel();
            for (const [k, v] of model.l1)
              probe.l1.set(k, v.kind === 'tbl' ? { kind: 'tbl', l2: new Map(v.l2) } : v);
            let total = 0;
            for (let p = 0; p < op.count && iova + p * size < SPAN; p++) {
              const r = probe.unmap(iova + p * size, size);
              if (r === 0) break;
              total += r;
            }
            const pages = Math.min(op.count, (SPAN - iova) / size);
            expect(h.ops.unmapPages(iova, size, pages, null)).toBe(total);
            model.l1.clear();
            for (const [k, v] of probe.l1) model.l1.set(k, v);
          } else {
            const pa = Math.floor(op.pa / size) * size;
            if (pa + size > 2 ** 32) continue;
            const r = model.map(iova, pa, size);
            if (r === 'ok') {
              expect(h.ops.mapPages(iova, pa, size, 1, IOMMU_READ | IOMMU_WRITE)).toBe(size);
            } else {
              expect(() => h.ops.mapPages(iova, pa, size, 1, IOMMU_READ)).toThrow(
                expect.objectContaining({ code: 'EEXIST' }),
              );
            }
          }
          expect(h.memory.liveTables).toBe(1 + model.tables);
        }
        const bad: string[] = [];
        for (let a = 0x123; a < SPAN; a += SZ_4K * 3 + 0x111) {
          const got = h.ops.iovaToPhys(a);
          const want = model.lookup(a);
          if (got !== want) bad.push(`0x${a.toString(16)}: 0x${got.toString(16)} != 0x${want.toString(16)}`);
        }
        expect(bad).toEqual([]);
        freeIoPgtableOps(h.ops);
        expect(h.memory.liveTables).toBe(0);
      }),
      { numRuns: 150 },
    );
  });
});
