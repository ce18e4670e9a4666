// The VT-d second-stage format descriptor: setup narrowing, AGAW geometry, descriptors written, and
// behaviour through the ops API (map / lookup / unmap / TLB callbacks / dirty harvesting / free)
// for 3-, 4- and 5-level tables.
import { ErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import type { IoPgtableCfg } from '../cfg.js';
import { IoPgtableFmt, PtEntryKind } from '../format.js';
import { IommuIotlbGather } from '../gather.js';
import { allocIoPgtableOps, freeIoPgtableOps } from '../io-pgtable.js';
import {
  IOMMU_CACHE,
  IOMMU_DIRTY_NO_CLEAR,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_READ,
  IOMMU_WRITE,
} from '../prot.js';
import { IO_PGTABLE_QUIRK_NO_WARN } from '../quirks.js';
import { createVtdSlFormat, VTD_SL_DIRTY_OPS, VTD_SL_POLICY, vtdSlFormat } from './vtd-sl.js';
import { vtdSlGeometryFromCaps } from './vtd-sl-bits.js';
import { type X86Harness, x86EntryAt, x86ErrnoOf, x86Harness } from './x86-common.test-helpers.js';

const SZ_4K = 0x1000;
const SZ_2M = 0x20_0000;
const SZ_1G = 0x4000_0000;
const RW = IOMMU_READ | IOMMU_WRITE;
const D = 0x200n;

function cfgOf(over: Partial<IoPgtableCfg> = {}): IoPgtableCfg {
  return { quirks: 0, pgsizeBitmap: 0x4020_1000n, ias: 48, oas: 52, coherentWalk: true, ...over };
}

/** Physical address of the leaf entry translating `iova` (simulates where hardware writes D). */
function leafEntryPa(h: X86Harness, iova: number): number {
  let found = -1;
  h.walker.forEachEntry((_d, _i, entryPa, _lo, _hi, kind, off) => {
    if (kind === PtEntryKind.LEAF && off === iova) found = entryPa;
  });
  if (found < 0) throw new Error(`no leaf at ${iova}`);
  return found;
}

function setDirty(h: X86Harness, iova: number): void {
  const pa = leafEntryPa(h, iova);
  h.mem.write64(pa, h.mem.read64(pa) | D);
}

function harvest(h: X86Harness, iova: number, size: number, flags = 0): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  h.ops.readAndClearDirty(iova, size, flags, { record: (a, l) => out.push([a, l]) });
  return out;
}

describe('vtdSlFormat.setup', () => {
  it('identifies itself and accepts only NO_WARN', () => {
    expect(vtdSlFormat.name).toBe('VTD_SS');
    expect(vtdSlFormat.fmt).toBe(IoPgtableFmt.VTD_SS);
    expect(vtdSlFormat.quirksAllowed).toBe(IO_PGTABLE_QUIRK_NO_WARN);
  });

  it('depth follows width_to_agaw: 39 → 3 levels, 48 → 4, 57 → 5; zero-extended IOVAs; dirty via D', () => {
    const c3 = cfgOf({ ias: 39 });
    const f3 = vtdSlFormat.setup(c3);
    expect(f3.levels.map((l) => [l.label, l.shift, l.indexBits, l.tableBytes, l.leafSizesLg2])).toEqual([
      [3, 30, 9, 4096, [30]],
      [2, 21, 9, 4096, [21]],
      [1, 12, 9, 4096, [12]],
    ]);
    expect(f3.vaBits).toBe(39);
    expect(f3.upperIova).toBe('zero');
    expect(f3.policy).toEqual(VTD_SL_POLICY);
    expect(f3.dirty).toBe(VTD_SL_DIRTY_OPS);
    expect(f3.dirty?.holes).toBe('skip');
    expect(vtdSlFormat.setup(cfgOf({ ias: 40 })).levels.length).toBe(4);
    expect(vtdSlFormat.setup(cfgOf({ ias: 48 })).levels.length).toBe(4);
    const c5 = cfgOf({ ias: 64, oas: 64, pgsizeBitmap: 0xffff_f000n });
    const f5 = vtdSlFormat.setup(c5);
    expect(f5.levels.length).toBe(5);
    expect(c5).toMatchObject({ ias: 57, oas: 52, pgsizeBitmap: 0x4020_1000n });
  });

  it('a depth forced from SAGAW may exceed the width (top table with one usable entry)', () => {
    const g = vtdSlGeometryFromCaps(48, 0b01000);
    const cfg = cfgOf({ ias: g.vaBits });
    const f = createVtdSlFormat({ levels: g.levels }).setup(cfg);
    expect(f.levels.length).toBe(5);
    expect(f.levels[0]?.indexBits).toBe(0);
    expect(f.vaBits).toBe(48);
  });

  it('cfg.levels fixes the depth through the format number (SAGAW), lowering ias to fit', () => {
    for (const [ias, levels, wantIas, aw] of [
      [48, 5, 48, 3],
      [48, 3, 39, 1],
      [39, 4, 39, 2],
      [57, 4, 48, 2],
    ] as const) {
      const cfg = cfgOf({ ias, levels });
      const ops = allocIoPgtableOps(IoPgtableFmt.VTD_SS, cfg, null);
      expect(ops?.instance.levels.length).toBe(levels);
      expect(cfg.ias).toBe(wantIas);
      expect(cfg.rootCfg).toEqual({ rootPa: BigInt(ops?.walker.rootPa ?? -1), levels, aw });
      ops?.mapPages(2 ** wantIas - SZ_2M, 0x4000_0000, SZ_2M, 1, IOMMU_READ);
      expect(ops?.iovaToPhys(2 ** wantIas - 1)).toBe(0x4000_0000 + SZ_2M - 1);
      expect(ops?.pgtableWalk(2 ** wantIas - 1).length).toBe(levels - 1);
    }
    for (const levels of [2, 6, 3.5]) {
      expect(allocIoPgtableOps(IoPgtableFmt.VTD_SS, cfgOf({ levels }), null)).toBeNull();
    }
    expect(allocIoPgtableOps(createVtdSlFormat({ levels: 3 }), cfgOf({ levels: 4 }), null)).toBeNull();
  });

  it('refuses what it cannot build', () => {
    expect(x86ErrnoOf(() => vtdSlFormat.setup(cfgOf({ ias: 31 })))).toBe('EINVAL');
    expect(x86ErrnoOf(() => vtdSlFormat.setup(cfgOf({ pgsizeBitmap: 0x20_0000n })))).toBe('EINVAL');
  });

  it('writes SSPTPTR and AW = levels - 2', () => {
    for (const [ias, levels, aw] of [
      [39, 3, 1],
      [48, 4, 2],
      [57, 5, 3],
    ] as const) {
      const h = x86Harness(vtdSlFormat, { ias });
      expect(h.cfg.rootCfg).toEqual({ rootPa: BigInt(h.walker.rootPa), levels, aw });
    }
  });
});

describe('VT-d second-stage entry codec', () => {
  const f = vtdSlFormat.setup(cfgOf());

  it('tables are PA | R | W; leaves R/W/PS; any non-zero value is present', () => {
    const w = new Uint32Array(8);
    f.writeTable(w, 0, 0x000f_ffff_ffff_f000, 1);
    expect([w[0], w[1]]).toEqual([0xffff_f003, 0x000f_ffff]);
    f.writeLeaves(w, 2, 0x7_ffe0_0000, 2, 21, 2, f.leafTemplate(IOMMU_WRITE, 2, 21));
    expect(Array.from(w.subarray(2, 6))).toEqual([0xffe0_0082, 0x7, 0x0000_0082, 0x8]);
    expect(f.classify(0, 0, 3)).toBe(PtEntryKind.EMPTY);
    expect(f.classify(0x800, 0, 3)).toBe(PtEntryKind.LEAF);
    expect(f.classify(0x1003, 0, 2)).toBe(PtEntryKind.TABLE);
    expect(f.classify(0x1083, 0, 1)).toBe(PtEntryKind.LEAF);
    expect(f.classify(0x1083, 0, 0)).toBe(PtEntryKind.TABLE);
    expect(f.decode(0x4000_0b83, 0, 1)).toEqual({
      kind: PtEntryKind.LEAF,
      pa: 0x4000_0000,
      sizeLg2: 30,
      attrs: { R: true, W: true, X: false, PS: true, A: true, D: true, SNP: true },
    });
  });

  it('dirty hooks test and clear D only', () => {
    const w = new Uint32Array([0x1283, 0x1]);
    expect(VTD_SL_DIRTY_OPS.isDirty(w[0] ?? 0, 0, 3)).toBe(true);
    VTD_SL_DIRTY_OPS.clearDirty(w, 0, 3);
    expect(Array.from(w)).toEqual([0x1083, 0x1]);
    expect(VTD_SL_DIRTY_OPS.isDirty(0x1083, 0, 3)).toBe(false);
  });
});

describe('VT-d second stage through the ops API', () => {
  for (const ias of [39, 48, 57]) {
    it(`${ias}-bit: maps each size, refuses a second map, unmaps, remaps, maps the last 1 GiB`, () => {
      const h = x86Harness(vtdSlFormat, { ias });
      const { ops } = h;
      const sizes = [SZ_4K, SZ_2M, SZ_1G];
      for (const iova of [42, SZ_1G + 42, 2 * SZ_1G + 42]) expect(ops.iovaToPhys(iova)).toBe(0);
      sizes.forEach((size, i) => {
        const iova = i * SZ_1G;
        expect(ops.mapPages(iova, iova + SZ_1G, size, 1, RW | IOMMU_NOEXEC | IOMMU_CACHE)).toBe(size);
        expect(x86ErrnoOf(() => ops.mapPages(iova, iova + size, size, 1, IOMMU_READ | IOMMU_NOEXEC))).toBe(
          'EEXIST',
        );
        expect(ops.iovaToPhys(iova)).toBe(iova + SZ_1G);
        expect(ops.iovaToPhys(iova + 42)).toBe(iova + SZ_1G + 42);
        expect(ops.iovaToPhys(iova + size - 1)).toBe(iova + SZ_1G + size - 1);
        expect(ops.iovaToPhys(iova + size)).toBe(0);
        expect(ops.pgtableWalk(iova).length).toBe(h.fmt.levels.length - Math.log2(size / SZ_4K) / 9);
      });
      sizes.forEach((size, i) => {
        const iova = i * SZ_1G;
        expect(ops.unmapPages(iova, size, 1, null)).toBe(size);
        expect(ops.iovaToPhys(iova + 42)).toBe(0);
        expect(ops.mapPages(iova, iova + SZ_1G, size, 1, IOMMU_WRITE)).toBe(size);
        expect(ops.iovaToPhys(iova + 42)).toBe(iova + SZ_1G + 42);
      });
      const last = 2n ** BigInt(ias) - BigInt(SZ_1G);
      expect(ops.mapPages(last, SZ_1G, SZ_1G, 1, RW)).toBe(SZ_1G);
      expect(ops.iovaToPhys(last + 0x3fff_ffffn)).toBe(2 * SZ_1G - 1);
      expect(x86ErrnoOf(() => ops.mapPages(2n ** BigInt(ias), 0, SZ_4K, 1, RW))).toBe('ERANGE');
      expect(ops.unmapPages(last, SZ_1G, 1, null)).toBe(SZ_1G);
      freeIoPgtableOps(ops);
      expect(h.mem.liveTables).toBe(0);
    });
  }

  it('writes the exact descriptors Linux writes (3-level)', () => {
    const h = x86Harness(vtdSlFormat, { ias: 39 });
    const iova = 0x7f_c020_1000;
    h.ops.mapPages(iova, 0x1_2345_6000, SZ_4K, 1, RW);
    const walk = h.ops.pgtableWalk(iova);
    expect(walk.length).toBe(3);
    expect((walk[0] ?? 0n) & 0xfffn).toBe(0x003n);
    expect((walk[1] ?? 0n) & 0xfffn).toBe(0x003n);
    expect(walk[2]).toBe(0x1_2345_6003n);
    h.ops.mapPages(0x40_0000, 0x8_0040_0000, SZ_2M, 1, IOMMU_READ | IOMMU_MMIO);
    expect(x86EntryAt(h, 0x40_0000, 1)).toBe(0x8_0040_0081n);
    h.ops.mapPages(SZ_1G, 0xf_ffff_c000_0000, SZ_1G, 1, IOMMU_WRITE);
    expect(x86EntryAt(h, SZ_1G, 0)).toBe(0xf_ffff_c000_0082n);
  });

  it('force snoop sets SNP on leaves only; it may be turned on after allocation, before any map', () => {
    const opts: { forceSnoop?: boolean } = {};
    const h = x86Harness(createVtdSlFormat(opts));
    opts.forceSnoop = true; // enforce_cache_coherency on a domain without mappings
    h.ops.mapPages(0, 0x5000, SZ_4K, 1, RW);
    h.ops.mapPages(SZ_2M, 0x4000_0000, SZ_2M, 1, IOMMU_READ);
    const walk = h.ops.pgtableWalk(0);
    expect(walk.slice(0, 3).map((e) => e & 0xfffn)).toEqual([0x3n, 0x3n, 0x3n]);
    expect(walk[3]).toBe(0x5803n);
    expect(x86EntryAt(h, SZ_2M, 2)).toBe(0x4000_0881n);
    const h2 = x86Harness(createVtdSlFormat({ forceSnoop: false }));
    h2.ops.mapPages(0, 0x5000, SZ_4K, 1, RW);
    expect(x86EntryAt(h2, 0, 3)).toBe(0x5003n);
  });

  it('force writeable refuses read-only maps with EINVAL and writes nothing', () => {
    const h = x86Harness(createVtdSlFormat({ forceWriteable: true }));
    expect(x86ErrnoOf(() => h.ops.mapPages(0, 0, SZ_4K, 1, IOMMU_READ))).toBe('EINVAL');
    expect(h.ops.iovaToPhys(0)).toBe(0);
    expect(h.ops.mapPages(0, 0x1000, SZ_4K, 1, IOMMU_WRITE)).toBe(SZ_4K);
    expect(h.ops.iovaToPhys(0)).toBe(0x1000);
  });

  it('does not split a large leaf on a partial unmap, and frees empty tables for larger leaves only', () => {
    const h = x86Harness(vtdSlFormat);
    h.ops.mapPages(SZ_1G, 0x8000_0000, SZ_1G, 1, RW);
    expect(h.ops.unmapPages(SZ_1G, SZ_2M, 1, null)).toBe(0);
    expect(h.ops.unmapPages(SZ_1G + SZ_2M, SZ_4K, 1, null)).toBe(0);
    expect(h.ops.iovaToPhys(SZ_1G + SZ_2M + 1)).toBe(0x8000_0000 + SZ_2M + 1);
    h.ops.mapPages(2 * SZ_1G + SZ_4K, 0x1000, SZ_4K, 1, RW);
    expect(x86ErrnoOf(() => h.ops.mapPages(2 * SZ_1G, 0, SZ_1G, 1, RW))).toBe('EEXIST');
    expect(h.ops.unmapPages(2 * SZ_1G + SZ_4K, SZ_4K, 1, null)).toBe(SZ_4K);
    const live = h.mem.liveTables;
    h.tlb.length = 0;
    expect(h.ops.mapPages(2 * SZ_1G, 0, SZ_1G, 1, RW)).toBe(SZ_1G);
    expect(h.tlb).toEqual([{ op: 'flushWalk', iova: 2 * SZ_1G, size: SZ_1G, granule: SZ_4K }]);
    expect(h.mem.liveTables).toBe(live - 2);
  });

  it('TLB callbacks: addPage per cleared slot with a gather; walk flush when a table is removed', () => {
    const h = x86Harness(vtdSlFormat);
    const gather = new IommuIotlbGather();
    h.ops.mapPages(SZ_1G, 0, SZ_4K, 2, RW);
    h.tlb.length = 0;
    expect(h.ops.unmapPages(SZ_1G, SZ_1G, 1, gather)).toBe(SZ_1G);
    expect(h.tlb).toEqual([
      { op: 'flushWalk', iova: SZ_1G, size: SZ_1G, granule: SZ_4K },
      { op: 'addPage', iova: SZ_1G, granule: SZ_1G, gather: true },
    ]);
    h.ops.mapPages(0, 0, SZ_2M, 2, RW);
    h.tlb.length = 0;
    expect(h.ops.unmapPages(0, SZ_2M, 2, gather)).toBe(2 * SZ_2M);
    expect(h.tlb).toEqual([
      { op: 'addPage', iova: 0, granule: SZ_2M, gather: true },
      { op: 'addPage', iova: SZ_2M, granule: SZ_2M, gather: true },
    ]);
  });
});

describe('VT-d second-stage dirty tracking (D bit 9)', () => {
  it('records dirty leaves of every size, clears D, skips holes, honours NO_CLEAR', () => {
    const h = x86Harness(vtdSlFormat);
    h.ops.mapPages(0, 0x10_0000, SZ_4K, 4, RW);
    h.ops.mapPages(SZ_2M, 0x20_0000, SZ_2M, 1, RW);
    h.ops.mapPages(SZ_1G, SZ_1G, SZ_1G, 1, RW);
    expect(harvest(h, 0, 2 * SZ_1G)).toEqual([]);
    setDirty(h, SZ_4K);
    setDirty(h, 3 * SZ_4K);
    setDirty(h, SZ_2M);
    setDirty(h, SZ_1G);
    expect(harvest(h, 0, 2 * SZ_1G, IOMMU_DIRTY_NO_CLEAR)).toEqual([
      [SZ_4K, SZ_4K],
      [3 * SZ_4K, SZ_4K],
      [SZ_2M, SZ_2M],
      [SZ_1G, SZ_1G],
    ]);
    expect(h.mem.read64(leafEntryPa(h, SZ_4K)) & D).toBe(D);
    // A sub-range starting inside a large leaf reports the whole leaf.
    expect(harvest(h, SZ_2M + SZ_4K, SZ_4K)).toEqual([[SZ_2M, SZ_2M]]);
    expect(h.mem.read64(leafEntryPa(h, SZ_2M)) & D).toBe(0n);
    expect(harvest(h, 0, 2 * SZ_1G)).toEqual([
      [SZ_4K, SZ_4K],
      [3 * SZ_4K, SZ_4K],
      [SZ_1G, SZ_1G],
    ]);
    for (const iova of [SZ_4K, 3 * SZ_4K, SZ_2M, SZ_1G]) {
      const e = h.mem.read64(leafEntryPa(h, iova));
      expect(e & D).toBe(0n);
      expect(e & 0x3n).toBe(0x3n);
    }
    expect(harvest(h, 0, 2 * SZ_1G)).toEqual([]);
    expect(h.ops.iovaToPhys(SZ_1G + 5)).toBe(SZ_1G + 5);
  });

  it('rejects size 0 and ranges beyond the input size', () => {
    const h = x86Harness(vtdSlFormat, { ias: 39 });
    expect(x86ErrnoOf(() => harvest(h, 0, 0))).toBe('EINVAL');
    expect(x86ErrnoOf(() => harvest(h, 2 ** 39 - SZ_4K, 2 * SZ_4K))).toBe('EINVAL');
    expect(() => harvest(h, 2 ** 39 - SZ_4K, SZ_4K)).not.toThrow(ErrnoError);
  });
});
