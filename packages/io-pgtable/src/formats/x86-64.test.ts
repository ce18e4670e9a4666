// The x86-64 format descriptor: setup narrowing, geometry handed to the walker, and behaviour
// through the generic walker (map / lookup / unmap / TLB callbacks / free), 4- and 5-level.
import { ErrnoError, isErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import type { IoPgtableCfg } from '../cfg.js';
import { IoPgtableFmt, PtEntryKind } from '../format.js';
import { IommuIotlbGather } from '../gather.js';
import { allocIoPgtableOps, freeIoPgtableOps } from '../io-pgtable.js';
import { IOMMU_CACHE, IOMMU_NOEXEC, IOMMU_PRIV, IOMMU_READ, IOMMU_WRITE } from '../prot.js';
import { IO_PGTABLE_QUIRK_NO_WARN } from '../quirks.js';
import { IoPgtableMapError } from '../walker.js';
import { createX86_64Format, X86_64_POLICY, x86_64Format } from './x86-64.js';
import { x86EntryAt, x86Harness } from './x86-common.test-helpers.js';

const SZ_4K = 0x1000;
const SZ_2M = 0x20_0000;
const SZ_1G = 0x4000_0000;
const RW = IOMMU_READ | IOMMU_WRITE;
const ADDR = 0x000f_ffff_ffff_f000n;

function cfgOf(over: Partial<IoPgtableCfg> = {}): IoPgtableCfg {
  return { quirks: 0, pgsizeBitmap: 0x4020_1000n, ias: 48, oas: 52, coherentWalk: true, ...over };
}

function errnoOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ErrnoError) return e.code;
    throw e;
  }
  return 'none';
}

describe('x86_64Format.setup', () => {
  it('cfg.levels fixes the depth through the format number; other values fail allocation', () => {
    const c5 = cfgOf({ ias: 48, levels: 5 });
    const ops5 = allocIoPgtableOps(IoPgtableFmt.X86_64, c5, null);
    expect(ops5?.instance.levels.length).toBe(5);
    expect(ops5?.instance.levels[0]?.indexBits).toBe(0);
    expect(c5.rootCfg?.levels).toBe(5);
    expect(c5.ias).toBe(48);
    const c4 = cfgOf({ ias: 57, levels: 4 });
    const ops4 = allocIoPgtableOps(IoPgtableFmt.X86_64, c4, null);
    expect(ops4?.instance.levels.length).toBe(4);
    expect(c4.ias).toBe(48);
    expect(c4.rootCfg?.levels).toBe(4);
    ops4?.mapPages(2 ** 47 - SZ_4K, 0x1000, SZ_4K, 1, RW);
    expect(ops4?.iovaToPhys(2 ** 47 - SZ_4K + 5)).toBe(0x1005);
    for (const levels of [3, 6, 4.5, 0]) {
      expect(allocIoPgtableOps(IoPgtableFmt.X86_64, cfgOf({ levels }), null)).toBeNull();
    }
    // A format object with a fixed depth accepts a matching cfg.levels only.
    expect(allocIoPgtableOps(createX86_64Format({ levels: 5 }), cfgOf({ levels: 5 }), null)).not.toBeNull();
    expect(allocIoPgtableOps(createX86_64Format({ levels: 5 }), cfgOf({ levels: 4 }), null)).toBeNull();
  });

  it('identifies itself and accepts only NO_WARN', () => {
    expect(x86_64Format.name).toBe('X86_64');
    expect(x86_64Format.fmt).toBe(IoPgtableFmt.X86_64);
    expect(x86_64Format.quirksAllowed).toBe(IO_PGTABLE_QUIRK_NO_WARN);
  });

  it('4-level for ias 48: four 4 KiB tables of 512 entries, leaves at 1G/2M/4K, sign-extended IOVAs', () => {
    const cfg = cfgOf({ pgsizeBitmap: 0xffff_ffff_f000n, oas: 64 });
    const f = x86_64Format.setup(cfg);
    expect(cfg).toMatchObject({ ias: 48, oas: 52, pgsizeBitmap: 0x4020_1000n });
    expect(f.entryWords).toBe(2);
    expect(f.vaBits).toBe(48);
    expect(f.oaBits).toBe(52);
    expect(f.upperIova).toBe('sign');
    expect(f.granule).toBe(4096);
    expect(f.pgsizeBitmap).toBe(0x4020_1000n);
    expect(f.policy).toEqual(X86_64_POLICY);
    expect(f.policy).toEqual({
      mapPageByPage: false,
      unmapPageByPage: false,
      tlbAddPageWithoutGather: false,
      tlbAddPageForTables: true,
      existingLeafErrno: 'EEXIST',
      mapOverTable: 'free-if-empty',
    });
    expect(f.dirty).toBeUndefined();
    expect(f.levels).toEqual([
      { label: 4, shift: 39, indexBits: 9, runBits: 9, tableBytes: 4096, leafSizesLg2: [] },
      { label: 3, shift: 30, indexBits: 9, runBits: 9, tableBytes: 4096, leafSizesLg2: [30] },
      { label: 2, shift: 21, indexBits: 9, runBits: 9, tableBytes: 4096, leafSizesLg2: [21] },
      { label: 1, shift: 12, indexBits: 9, runBits: 9, tableBytes: 4096, leafSizesLg2: [12] },
    ]);
  });

  it('5-level for ias > 48 (clamped to 57)', () => {
    const cfg = cfgOf({ ias: 64 });
    const f = x86_64Format.setup(cfg);
    expect(cfg.ias).toBe(57);
    expect(f.vaBits).toBe(57);
    expect(f.levels.map((l) => [l.label, l.shift, l.indexBits])).toEqual([
      [5, 48, 9],
      [4, 39, 9],
      [3, 30, 9],
      [2, 21, 9],
      [1, 12, 9],
    ]);
  });

  it('narrower VA (MGAW-limited) shrinks the top index; forced levels keep a 1-entry top', () => {
    expect(x86_64Format.setup(cfgOf({ ias: 46 })).levels[0]?.indexBits).toBe(7);
    const f = createX86_64Format({ levels: 5 }).setup(cfgOf({ ias: 48 }));
    expect(f.levels.length).toBe(5);
    expect(f.vaBits).toBe(48);
    expect(f.levels[0]?.indexBits).toBe(0);
    expect(createX86_64Format({ levels: 4 }).setup(cfgOf({ ias: 57 })).vaBits).toBe(48);
  });

  it('drops sizes not offered and refuses tables it cannot build', () => {
    const cfg = cfgOf({ pgsizeBitmap: 0x20_1000n });
    const f = x86_64Format.setup(cfg);
    expect(cfg.pgsizeBitmap).toBe(0x20_1000n);
    expect(f.levels[1]?.leafSizesLg2).toEqual([]);
    expect(errnoOf(() => x86_64Format.setup(cfgOf({ pgsizeBitmap: 0x4020_0000n })))).toBe('EINVAL');
    expect(errnoOf(() => x86_64Format.setup(cfgOf({ ias: 39 })))).toBe('EINVAL');
    expect(errnoOf(() => x86_64Format.setup(cfgOf({ oas: 31 })))).toBe('EINVAL');
  });

  it('writes the root pointer and level count', () => {
    const h = x86Harness(x86_64Format);
    expect(h.cfg.rootCfg).toEqual({ rootPa: BigInt(h.walker.rootPa), levels: 4 });
    expect('aw' in (h.cfg.rootCfg ?? {})).toBe(false);
    const h5 = x86Harness(x86_64Format, { ias: 57 });
    expect(h5.cfg.rootCfg?.levels).toBe(5);
  });
});

describe('x86-64 entry codec', () => {
  const f = x86_64Format.setup(cfgOf());

  it('writes table entries as P|RW|US|A|PA and reads their address back', () => {
    const w = new Uint32Array(4);
    f.writeTable(w, 2, 0x000f_ffff_ffff_f000, 0);
    expect([w[2], w[3]]).toEqual([0xffff_f027, 0x000f_ffff]);
    expect(f.classify(w[2] ?? 0, w[3] ?? 0, 0)).toBe(PtEntryKind.TABLE);
    expect(f.tablePa(w[2] ?? 0, w[3] ?? 0, 0)).toBe(0x000f_ffff_ffff_f000);
  });

  it('writes runs of leaves with consecutive addresses and PS above level 0', () => {
    const w = new Uint32Array(8);
    const t = f.leafTemplate(RW, 3, 12);
    f.writeLeaves(w, 0, 0x1_ffff_f000, 3, 12, 2, t);
    expect(Array.from(w.subarray(0, 4))).toEqual([0xffff_f067, 0x1, 0x0000_0067, 0x2]);
    const r = f.leafTemplate(IOMMU_READ, 2, 21);
    f.writeLeaves(w, 4, 0x3_ffe0_0000, 2, 21, 2, r);
    expect(Array.from(w.subarray(4, 8))).toEqual([0xffe0_00a5, 0x3, 0x0000_00a5, 0x4]);
    expect(f.classify(0xffe0_00a5, 3, 2)).toBe(PtEntryKind.LEAF);
    expect(f.leafPa(0xffe0_10a5, 3, 2)).toBe(0x3_ffe0_0000);
    expect(f.leafSizeLg2(0xffe0_00a5, 3, 2)).toBe(21);
    expect(f.leafSizeLg2(0x4000_00a5, 0, 1)).toBe(30);
  });

  it('classifies by P and PS per depth', () => {
    expect(f.classify(0, 0, 3)).toBe(PtEntryKind.EMPTY);
    expect(f.classify(0x1000, 0, 3)).toBe(PtEntryKind.EMPTY);
    expect(f.classify(0x1025, 0, 3)).toBe(PtEntryKind.LEAF);
    expect(f.classify(0x10a5, 0, 0)).toBe(PtEntryKind.TABLE);
    expect(f.classify(0x10a7, 0, 2)).toBe(PtEntryKind.LEAF);
    expect(f.classify(0x1027, 0, 2)).toBe(PtEntryKind.TABLE);
  });

  it('decodes entries for dump', () => {
    expect(f.decode(0x4000_00e7, 0x8000_0000, 1)).toEqual({
      kind: PtEntryKind.LEAF,
      pa: 0x4000_0000,
      sizeLg2: 30,
      attrs: {
        P: true,
        RW: true,
        US: true,
        PWT: false,
        PCD: false,
        A: true,
        D: true,
        PS: true,
        G: false,
        PAT: false,
        XD: true,
      },
    });
    expect(f.decode(0x5027, 0, 0)).toMatchObject({ kind: PtEntryKind.TABLE, pa: 0x5000 });
    expect(f.decode(0, 0, 0)).toMatchObject({ kind: PtEntryKind.EMPTY });
  });
});

describe('x86-64 through the ops API (4-level)', () => {
  it('maps each page size, refuses a second map, looks up first/middle/last byte, unmaps and remaps', () => {
    const { ops } = x86Harness(x86_64Format);
    const sizes = [SZ_4K, SZ_2M, SZ_1G];
    for (const iova of [42, SZ_1G + 42, 2 * SZ_1G + 42]) expect(ops.iovaToPhys(iova)).toBe(0);
    sizes.forEach((size, i) => {
      const iova = i * SZ_1G;
      expect(ops.mapPages(iova, iova, size, 1, RW | IOMMU_NOEXEC | IOMMU_CACHE)).toBe(size);
      expect(errnoOf(() => ops.mapPages(iova, iova + size, size, 1, IOMMU_READ | IOMMU_NOEXEC))).toBe(
        'EEXIST',
      );
      expect(ops.iovaToPhys(iova + 42)).toBe(iova + 42);
      expect(ops.iovaToPhys(BigInt(iova + size - 1))).toBe(iova + size - 1);
      expect(ops.iovaToPhys(iova + size)).toBe(0);
    });
    // iova 0 maps to PA 0: check the neighbour instead.
    expect(ops.iovaToPhys(SZ_4K - 1)).toBe(SZ_4K - 1);
    sizes.forEach((size, i) => {
      const iova = i * SZ_1G;
      expect(ops.unmapPages(iova, size, 1, null)).toBe(size);
      expect(ops.iovaToPhys(iova + 42)).toBe(0);
      expect(ops.mapPages(iova, iova, size, 1, IOMMU_WRITE)).toBe(size);
      expect(ops.iovaToPhys(iova + 42)).toBe(iova + 42);
    });
  });

  it('writes the exact descriptors Linux writes at every level', () => {
    const h = x86Harness(x86_64Format);
    const iova = 0x7f_c020_1000;
    h.ops.mapPages(iova, 0x1_2345_6000, SZ_4K, 1, RW);
    const walk = h.ops.pgtableWalk(iova);
    expect(walk.length).toBe(4);
    for (const e of walk.slice(0, 3)) {
      expect(e & 0xfffn).toBe(0x027n);
      expect(e >> 52n).toBe(0n);
      expect(h.mem.tables().some((t) => BigInt(t.pa) === (e & ADDR))).toBe(true);
    }
    expect(walk[3]).toBe(0x1_2345_6067n);
    h.ops.mapPages(0x40_0000, 0x8_0040_0000, SZ_2M, 1, IOMMU_READ);
    expect(x86EntryAt(h, 0x40_0000, 2)).toBe(0x8_0040_00a5n);
    h.ops.mapPages(SZ_1G, 0xf_ffff_c000_0000, SZ_1G, 1, IOMMU_WRITE | IOMMU_PRIV);
    expect(x86EntryAt(h, SZ_1G, 1)).toBe(0xf_ffff_c000_00e7n);
    expect(h.ops.iovaToPhys(SZ_1G + 0x3fff_ffff)).toBe(0xf_ffff_ffff_ffff);
  });

  it('CPU prot mode encodes PRIV and NOEXEC', () => {
    const h = x86Harness(createX86_64Format({ protMode: 'cpu' }));
    h.ops.mapPages(0, 0x5000, SZ_4K, 1, IOMMU_READ | IOMMU_PRIV | IOMMU_NOEXEC);
    expect(x86EntryAt(h, 0, 3)).toBe(0x8000_0000_0000_5021n);
  });

  it('maps page runs across table boundaries', () => {
    const { ops } = x86Harness(x86_64Format);
    const start = SZ_2M - 4 * SZ_4K;
    expect(ops.mapPages(start, 0x10_0000_0000, SZ_4K, 600, RW)).toBe(600 * SZ_4K);
    for (let i = 0; i < 600; i++)
      expect(ops.iovaToPhys(start + i * SZ_4K + 7)).toBe(0x10_0000_0000 + i * SZ_4K + 7);
    expect(ops.iovaToPhys(start - 1)).toBe(0);
    expect(ops.iovaToPhys(start + 600 * SZ_4K)).toBe(0);
    expect(ops.unmapPages(start, SZ_4K, 600, null)).toBe(600 * SZ_4K);
    expect(ops.iovaToPhys(start)).toBe(0);
  });

  it('does not split a large leaf on a partial unmap (io-pgtable behaviour; the leaf stays)', () => {
    const { ops } = x86Harness(x86_64Format);
    ops.mapPages(SZ_2M, 0x8000_0000, SZ_2M, 1, RW);
    expect(ops.unmapPages(SZ_2M, SZ_4K, 1, null)).toBe(0);
    expect(ops.unmapPages(SZ_2M + SZ_4K, SZ_4K, 1, null)).toBe(0);
    expect(ops.iovaToPhys(SZ_2M + SZ_4K + 5)).toBe(0x8000_0000 + SZ_4K + 5);
    expect(errnoOf(() => ops.mapPages(SZ_2M + SZ_4K, 0, SZ_4K, 1, RW))).toBe('EEXIST');
    expect(ops.unmapPages(SZ_2M, SZ_2M, 1, null)).toBe(SZ_2M);
  });

  it('replaces an empty table by a larger leaf (walk flush, table freed) but not a table still in use', () => {
    const h = x86Harness(x86_64Format);
    h.ops.mapPages(3 * SZ_2M, 0x9000, SZ_4K, 1, RW);
    const live = h.mem.liveTables;
    expect(h.ops.unmapPages(3 * SZ_2M, SZ_4K, 1, null)).toBe(SZ_4K);
    expect(h.mem.liveTables).toBe(live);
    h.tlb.length = 0;
    expect(h.ops.mapPages(3 * SZ_2M, 0x8020_0000, SZ_2M, 1, RW)).toBe(SZ_2M);
    expect(h.tlb).toEqual([{ op: 'flushWalk', iova: 3 * SZ_2M, size: SZ_2M, granule: SZ_4K }]);
    expect(h.mem.liveTables).toBe(live - 1);

    h.ops.mapPages(5 * SZ_2M + SZ_4K, 0x9000, SZ_4K, 1, RW);
    let err: unknown;
    try {
      h.ops.mapPages(5 * SZ_2M, 0x8040_0000, SZ_2M, 1, RW);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(IoPgtableMapError);
    expect((err as IoPgtableMapError).code).toBe('EEXIST');
    expect((err as IoPgtableMapError).mapped).toBe(0);
    expect(h.ops.iovaToPhys(5 * SZ_2M + SZ_4K)).toBe(0x9000);
  });

  it('TLB callbacks on unmap: one addPage per slot with a gather, walk flush for removed tables', () => {
    const h = x86Harness(x86_64Format);
    const gather = new IommuIotlbGather();
    h.ops.mapPages(0, 0, SZ_4K, 3, RW);
    h.ops.mapPages(SZ_2M, SZ_2M, SZ_4K, 2, RW);
    h.ops.mapPages(2 * SZ_2M, 0, SZ_2M, 1, RW);
    h.tlb.length = 0;
    expect(h.ops.unmapPages(0, SZ_4K, 3, gather)).toBe(3 * SZ_4K);
    expect(h.tlb).toEqual(
      [0, 1, 2].map((i) => ({ op: 'addPage', iova: i * SZ_4K, granule: SZ_4K, gather: true })),
    );
    h.tlb.length = 0;
    const live = h.mem.liveTables;
    expect(h.ops.unmapPages(0, SZ_2M, 3, gather)).toBe(3 * SZ_2M);
    expect(h.tlb).toEqual([
      { op: 'flushWalk', iova: 0, size: SZ_2M, granule: SZ_4K },
      { op: 'flushWalk', iova: SZ_2M, size: SZ_2M, granule: SZ_4K },
      { op: 'addPage', iova: 0, granule: SZ_2M, gather: true },
      { op: 'addPage', iova: SZ_2M, granule: SZ_2M, gather: true },
      { op: 'addPage', iova: 2 * SZ_2M, granule: SZ_2M, gather: true },
    ]);
    expect(h.mem.liveTables).toBe(live - 2);
    h.ops.mapPages(0, 0, SZ_4K, 1, RW);
    h.tlb.length = 0;
    expect(h.ops.unmapPages(0, SZ_4K, 1, null)).toBe(SZ_4K);
    gather.queued = true;
    h.ops.mapPages(0, 0, SZ_4K, 1, RW);
    expect(h.ops.unmapPages(0, SZ_4K, 1, gather)).toBe(SZ_4K);
    expect(h.tlb).toEqual([]);
    freeIoPgtableOps(h.ops);
    expect(h.tlb).toEqual([{ op: 'flushAll' }]);
    expect(h.mem.liveTables).toBe(0);
  });

  it('unmap stops at the first hole', () => {
    const { ops } = x86Harness(x86_64Format);
    ops.mapPages(0, 0, SZ_4K, 2, RW);
    ops.mapPages(3 * SZ_4K, 0x5000, SZ_4K, 1, RW);
    expect(ops.unmapPages(0, SZ_4K, 4, null)).toBe(2 * SZ_4K);
    expect(ops.iovaToPhys(3 * SZ_4K)).toBe(0x5000);
    expect(ops.unmapPages(SZ_1G, SZ_4K, 1, null)).toBe(0);
  });

  it('reports ENOMEM from table allocation with the bytes already mapped', () => {
    const h = x86Harness(x86_64Format);
    h.ops.mapPages(SZ_2M - SZ_4K, 0, SZ_4K, 1, RW);
    h.mem.failNextAllocs(1);
    let err: unknown;
    try {
      h.ops.mapPages(SZ_2M - 2 * SZ_4K, 0, SZ_4K, 4, RW);
    } catch (e) {
      err = e;
    }
    expect((err as IoPgtableMapError).code).toBe('EEXIST');
    h.mem.failNextAllocs(1);
    try {
      h.ops.mapPages(SZ_1G, 0, SZ_4K, 1, RW);
    } catch (e) {
      err = e;
    }
    expect((err as IoPgtableMapError).code).toBe('ENOMEM');
    expect((err as IoPgtableMapError).mapped).toBe(0);
    expect(h.ops.mapPages(SZ_1G, 0, SZ_4K, 1, RW)).toBe(SZ_4K);
  });

  it('refuses bad prot, sizes, alignment and out-of-range addresses', () => {
    const { ops } = x86Harness(x86_64Format);
    expect(errnoOf(() => ops.mapPages(0, 0, SZ_4K, 1, IOMMU_CACHE))).toBe('EINVAL');
    expect(errnoOf(() => ops.mapPages(0, 0, 0x1_0000, 1, RW))).toBe('EINVAL');
    expect(errnoOf(() => ops.mapPages(SZ_4K, 0, SZ_2M, 1, RW))).toBe('EINVAL');
    expect(errnoOf(() => ops.mapPages(0, 2 ** 52, SZ_4K, 1, RW))).toBe('ERANGE');
    // Non-canonical IOVAs (bit 47 not sign-extended).
    expect(errnoOf(() => ops.mapPages(2 ** 47, 0, SZ_4K, 1, RW))).toBe('ERANGE');
    expect(errnoOf(() => ops.mapPages(0xffff_0000_0000_0000n, 0, SZ_4K, 1, RW))).toBe('ERANGE');
    expect(ops.unmapPages(0x8000_0000_0000n, SZ_4K, 1, null)).toBe(0);
    expect(ops.iovaToPhys(0x8000_0000_0000n)).toBe(0);
  });

  it('has no dirty tracking: -EOPNOTSUPP, as generic_pt', () => {
    const { ops } = x86Harness(x86_64Format);
    ops.mapPages(0, 0, SZ_4K, 1, RW);
    let err: unknown;
    try {
      ops.readAndClearDirty(0, SZ_4K, 0, { record: () => undefined });
    } catch (e) {
      err = e;
    }
    expect(isErrnoError(err)).toBe(true);
    expect((err as ErrnoError).code).toBe('EOPNOTSUPP');
    expect((err as ErrnoError).errno).toBe(95);
  });

  it('maps the last 1 GiB of the lower canonical half and of the upper half', () => {
    const h = x86Harness(x86_64Format);
    const lowTop = 2 ** 47 - SZ_1G;
    expect(h.ops.mapPages(lowTop, SZ_1G, SZ_1G, 1, RW)).toBe(SZ_1G);
    expect(h.ops.iovaToPhys(lowTop + 42)).toBe(SZ_1G + 42);
    const highTop = 0xffff_ffff_c000_0000n; // root index 511
    expect(h.ops.mapPages(highTop, 2 * SZ_1G, SZ_1G, 1, RW)).toBe(SZ_1G);
    expect(h.ops.iovaToPhys(highTop + 42n)).toBe(2 * SZ_1G + 42);
    expect(h.ops.iovaToPhys(0xffff_ffff_ffff_ffffn)).toBe(3 * SZ_1G - 1);
    expect(h.mem.read64(h.walker.rootPa + 511 * 8) & 0xfffn).toBe(0x027n);
    expect(h.mem.read64(h.walker.rootPa + 255 * 8) & 0xfffn).toBe(0x027n);
    h.ops.mapPages(0xffff_8000_0000_0000n, 0x3000, SZ_4K, 1, RW); // root index 256
    expect(h.mem.read64(h.walker.rootPa + 256 * 8) & 0xfffn).toBe(0x027n);
    expect(h.ops.iovaToPhys(0xffff_8000_0000_0fffn)).toBe(0x3fff);
    h.tlb.length = 0;
    const gather = new IommuIotlbGather();
    expect(h.ops.unmapPages(0xffff_8000_0000_0000n, SZ_4K, 1, gather)).toBe(SZ_4K);
    expect(h.tlb).toEqual([
      { op: 'addPage', iova: Number(0xffff_8000_0000_0000n), granule: SZ_4K, gather: true },
    ]);
    expect(h.ops.unmapPages(highTop, SZ_1G, 1, null)).toBe(SZ_1G);
    expect(h.ops.unmapPages(lowTop, SZ_1G, 1, null)).toBe(SZ_1G);
  });

  it('frees every table', () => {
    const h = x86Harness(x86_64Format);
    h.ops.mapPages(0, 0, SZ_4K, 1000, RW);
    h.ops.mapPages(SZ_1G, 0, SZ_2M, 3, RW);
    h.ops.mapPages(0xffff_8000_0000_0000n, 0, SZ_4K, 1, RW);
    expect(h.mem.liveTables).toBeGreaterThan(5);
    freeIoPgtableOps(h.ops);
    expect(h.mem.liveTables).toBe(0);
  });
});

describe('x86-64 through the ops API (5-level)', () => {
  it('walks five levels and maps near the top of both canonical halves', () => {
    const h = x86Harness(x86_64Format, { ias: 57 });
    const lowTop = 2 ** 56 - SZ_4K;
    expect(h.ops.mapPages(lowTop, 0x7000, SZ_4K, 1, RW)).toBe(SZ_4K);
    expect(h.ops.pgtableWalk(lowTop).length).toBe(5);
    expect(h.ops.iovaToPhys(BigInt(lowTop) + 0xfffn)).toBe(0x7fff);
    const highTop = 0xffff_ffff_ffe0_0000n;
    expect(h.ops.mapPages(highTop, 0x4000_0000, SZ_2M, 1, RW)).toBe(SZ_2M);
    expect(h.ops.iovaToPhys(highTop + 0x1234n)).toBe(0x4000_1234);
    expect(h.mem.read64(h.walker.rootPa + 255 * 8) & 0xfffn).toBe(0x027n);
    expect(h.mem.read64(h.walker.rootPa + 511 * 8) & 0xfffn).toBe(0x027n);
    expect(x86EntryAt(h, highTop, 3)).toBe(0x4000_00e7n);
    expect(errnoOf(() => h.ops.mapPages(0x0100_0000_0000_0000n, 0, SZ_4K, 1, RW))).toBe('ERANGE');
    expect(h.ops.mapPages(0xff00_0000_0000_0000n, 0x1000, SZ_4K, 1, RW)).toBe(SZ_4K);
    expect(h.ops.iovaToPhys(0xff00_0000_0000_0010n)).toBe(0x1010);
    freeIoPgtableOps(h.ops);
    expect(h.mem.liveTables).toBe(0);
  });
});
