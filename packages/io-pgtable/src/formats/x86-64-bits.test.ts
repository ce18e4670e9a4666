import { isErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import { IOMMU_CACHE, IOMMU_MMIO, IOMMU_NOEXEC, IOMMU_PRIV, IOMMU_READ, IOMMU_WRITE } from '../prot.js';
import {
  x86_64CheckProt,
  x86_64CheckRange,
  x86_64DecodeLeaf,
  x86_64EntryKind,
  x86_64EntryOa,
  x86_64FirstStageGeometry,
  x86_64Geometry,
  x86_64HwInfo,
  x86_64IsCanonical,
  x86_64MakeLeaf,
  x86_64MakeTable,
  x86_64PgsizeBitmap,
  x86_64ProtToAttrs,
  x86_64SignExtend,
  x86_64SwBitPosition,
} from './x86-64-bits.js';
import {
  x86PtBuildLevels,
  x86PtDecodeOa,
  x86PteFromU64,
  x86PteToU64,
  x86PtIndex,
  x86PtIndexNum,
  x86PtLeafLevelMask,
  x86PtLevelShift,
  x86PtNarrowPgsize,
} from './x86-common.js';

const u64 = (bits: { lo: number; hi: number }): bigint => x86PteToU64(bits);

function leaf(pa: number, level: number, prot: number, mode: 'iommu' | 'cpu' = 'iommu'): bigint {
  return u64(x86_64MakeLeaf(pa, level, x86_64ProtToAttrs(prot, mode)));
}

function expectErrno(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (e) {
    expect(isErrnoError(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe('x86-64 descriptor golden values (generic_pt x86_64, PA = 0)', () => {
  // Rules: table = P|RW|US|A = 0x27; leaf = P|US|A (0x25) + RW|D (0x42) if WRITE, + PS (0x80) above level 0.
  it('table entries are 0x27 | PA', () => {
    expect(u64(x86_64MakeTable(0))).toBe(0x27n);
    expect(u64(x86_64MakeTable(0x1234_5000))).toBe(0x1234_5027n);
    expect(u64(x86_64MakeTable(0x000f_ffff_ffff_f000))).toBe(0x000f_ffff_ffff_f027n);
  });

  const cases: Array<[string, number, bigint, bigint, bigint]> = [
    // name, prot, 4K, 2M, 1G
    ['READ', IOMMU_READ, 0x25n, 0xa5n, 0xa5n],
    ['WRITE', IOMMU_WRITE, 0x67n, 0xe7n, 0xe7n],
    ['READ|WRITE', IOMMU_READ | IOMMU_WRITE, 0x67n, 0xe7n, 0xe7n],
    ['READ|WRITE|CACHE', IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE, 0x67n, 0xe7n, 0xe7n],
    ['READ|WRITE|NOEXEC', IOMMU_READ | IOMMU_WRITE | IOMMU_NOEXEC, 0x67n, 0xe7n, 0xe7n],
    ['READ|MMIO', IOMMU_READ | IOMMU_MMIO, 0x25n, 0xa5n, 0xa5n],
    ['READ|PRIV', IOMMU_READ | IOMMU_PRIV, 0x25n, 0xa5n, 0xa5n],
    ['all', 63, 0x67n, 0xe7n, 0xe7n],
  ];
  for (const [name, prot, l0, l1, l2] of cases) {
    it(`leaf ${name}`, () => {
      expect(leaf(0, 0, prot)).toBe(l0);
      expect(leaf(0, 1, prot)).toBe(l1);
      expect(leaf(0, 2, prot)).toBe(l2);
    });
  }

  it('every prot combination with READ or WRITE follows the rule (IOMMU mode ignores all but WRITE)', () => {
    for (let prot = 0; prot < 64; prot++) {
      if ((prot & 3) === 0) continue;
      const w = (prot & IOMMU_WRITE) !== 0;
      expect(leaf(0, 0, prot)).toBe(w ? 0x67n : 0x25n);
      expect(leaf(0, 1, prot)).toBe(w ? 0xe7n : 0xa5n);
      expect(leaf(0, 2, prot)).toBe(w ? 0xe7n : 0xa5n);
    }
  });

  it('leaves with addresses', () => {
    expect(leaf(0x000f_ffff_ffff_f000, 0, IOMMU_READ | IOMMU_WRITE)).toBe(0x000f_ffff_ffff_f067n);
    expect(leaf(0x0001_2345_6740_0000, 1, IOMMU_READ | IOMMU_WRITE)).toBe(0x0001_2345_6740_00e7n);
    expect(leaf(0x000a_bcde_c000_0000, 2, IOMMU_READ)).toBe(0x000a_bcde_c000_00a5n);
    expect(leaf(0x8000_0000, 0, IOMMU_READ)).toBe(0x8000_0025n);
  });

  it('CPU prot mode: PRIV clears U/S, NOEXEC sets XD, MMIO sets PCD|PWT', () => {
    expect(leaf(0, 0, IOMMU_READ | IOMMU_PRIV, 'cpu')).toBe(0x21n);
    expect(leaf(0, 0, IOMMU_READ | IOMMU_WRITE | IOMMU_NOEXEC, 'cpu')).toBe(0x8000_0000_0000_0067n);
    expect(leaf(0, 1, IOMMU_READ | IOMMU_WRITE | IOMMU_MMIO, 'cpu')).toBe(0xffn);
    expect(leaf(0x20_0000, 1, 63, 'cpu')).toBe(0x8000_0000_0020_00fbn);
  });

  it('rejects prot without READ or WRITE (generic map path)', () => {
    expectErrno(() => x86_64CheckProt(IOMMU_CACHE | IOMMU_NOEXEC), 'EINVAL');
    expect(() => x86_64CheckProt(IOMMU_WRITE)).not.toThrow();
  });
});

describe('x86-64 decode', () => {
  it('classifies entries by P and PS', () => {
    expect(x86_64EntryKind(0, 0)).toBe(0);
    expect(x86_64EntryKind(0xfffff_ffe, 3)).toBe(0); // P clear
    expect(x86_64EntryKind(0x25, 0)).toBe(2);
    expect(x86_64EntryKind(0x25, 0 + 1)).toBe(1); // no PS at level 1 → table
    expect(x86_64EntryKind(0xa5, 1)).toBe(2);
    expect(x86_64EntryKind(0xa5, 2)).toBe(2);
    expect(x86_64EntryKind(0xa5, 3)).toBe(1); // PS reserved in PML4E: read as a table
    expect(x86_64EntryKind(0x27, 4)).toBe(1);
  });

  it('output address drops PAT(12), XD, software bits and the low bits of large leaves', () => {
    const twoMegWithPat = x86PteFromU64(0x0000_0000_0020_10e7n);
    expect(x86_64EntryOa(twoMegWithPat.lo, twoMegWithPat.hi, 1)).toBe(0x20_0000);
    const xdAndSw = x86PteFromU64(0xfff0_0001_2345_6e67n);
    expect(x86_64EntryOa(xdAndSw.lo, xdAndSw.hi, 0)).toBe(0x1_2345_6000);
    const gig = x86PteFromU64(0x000f_ffff_ffff_f0a5n);
    expect(x86_64EntryOa(gig.lo, gig.hi, 2)).toBe(0x000f_ffff_c000_0000);
    expect(x86PtDecodeOa(gig.lo, gig.hi, 1)).toBe(0x000f_ffff_ffe0_0000);
  });

  it('decodes leaf permissions', () => {
    const e = x86PteFromU64(0x8000_0000_4000_00e7n);
    expect(x86_64DecodeLeaf(e.lo, e.hi, 2)).toEqual({
      oa: 0x4000_0000,
      sizeShift: 30,
      writable: true,
      user: true,
      noExec: true,
      accessed: true,
      dirty: true,
    });
  });
});

describe('x86-64 geometry, canonical addresses and root values', () => {
  it('level shifts and indexes', () => {
    expect([0, 1, 2, 3, 4].map(x86PtLevelShift)).toEqual([12, 21, 30, 39, 48]);
    const va = 0x0000_7fff_ffff_f000n;
    expect([0, 1, 2, 3].map((l) => x86PtIndex(va, l))).toEqual([511, 511, 511, 255]);
    expect(x86PtIndex(0xffff_8000_0000_0000n, 3)).toBe(256);
    expect(x86PtIndex(0xff00_0000_0000_0000n, 4)).toBe(256);
    // (9 << 39) | (5 << 30) | (7 << 21) | (3 << 12)
    const iova = 0x0480_0000_0000 + 0x1_40e0_3000;
    expect([0, 1, 2, 3].map((l) => x86PtIndexNum(iova, l))).toEqual([3, 7, 5, 9]);
    expect([0, 1, 2, 3].map((l) => x86PtIndex(BigInt(iova), l))).toEqual([3, 7, 5, 9]);
  });

  it('4- and 5-level geometry', () => {
    expect(x86_64Geometry(4)).toEqual({ levels: 4, topLevel: 3, vaBits: 48, apertureEnd: 0x7fff_ffff_ffffn });
    expect(x86_64Geometry(5)).toEqual({
      levels: 5,
      topLevel: 4,
      vaBits: 57,
      apertureEnd: 0x00ff_ffff_ffff_ffffn,
    });
    expectErrno(() => x86_64Geometry(3), 'EOPNOTSUPP');
    expectErrno(() => x86_64Geometry(4, 49), 'EINVAL');
  });

  it('first-stage geometry from MGAW and FL5LP', () => {
    expect(x86_64FirstStageGeometry(57, true).levels).toBe(5);
    expect(x86_64FirstStageGeometry(57, false)).toMatchObject({ levels: 4, vaBits: 48 });
    expect(x86_64FirstStageGeometry(48, true)).toMatchObject({ levels: 4, vaBits: 48 });
    expect(x86_64FirstStageGeometry(52, true)).toMatchObject({ levels: 5, vaBits: 52 });
    expect(x86_64FirstStageGeometry(46, false)).toMatchObject({ levels: 4, vaBits: 46 });
  });

  it('canonical checks at bit 47 and bit 56', () => {
    expect(x86_64IsCanonical(0x0000_7fff_ffff_ffffn, 48)).toBe(true);
    expect(x86_64IsCanonical(0x0000_8000_0000_0000n, 48)).toBe(false);
    expect(x86_64IsCanonical(0xffff_8000_0000_0000n, 48)).toBe(true);
    expect(x86_64IsCanonical(0xffff_7fff_ffff_ffffn, 48)).toBe(false);
    expect(x86_64IsCanonical(0x00ff_ffff_ffff_ffffn, 57)).toBe(true);
    expect(x86_64IsCanonical(0x0100_0000_0000_0000n, 57)).toBe(false);
    expect(x86_64IsCanonical(0xff00_0000_0000_0000n, 57)).toBe(true);
    expect(x86_64IsCanonical(0x0000_8000_0000_0000n, 57)).toBe(true);
    expect(x86_64SignExtend(0x0000_8000_0000_1000n, 48)).toBe(0xffff_8000_0000_1000n);
    expect(x86_64SignExtend(0x0000_7000_0000_1000n, 48)).toBe(0x0000_7000_0000_1000n);
    expect(x86_64SignExtend(0x0100_0000_0000_0000n, 57)).toBe(0xff00_0000_0000_0000n);
    expectErrno(() => x86_64CheckRange(0x7fff_ffff_f000n, 0x8000_0000_0fffn, 48), 'ERANGE');
    expectErrno(() => x86_64CheckRange(0x7fff_ffff_f000n, 0xffff_8000_0000_0fffn, 48), 'ERANGE');
    expect(() => x86_64CheckRange(0xffff_8000_0000_0000n, 0xffff_8000_0000_0fffn, 48)).not.toThrow();
  });

  it('root values (gcr3_pt / FSPTPTR, levels, FLPM, CR3)', () => {
    expect(x86_64HwInfo(0x1234_5000, 4)).toEqual({
      rootPa: 0x1234_5000,
      levels: 4,
      flpm: 0,
      la57: false,
      cr3: 0x1234_5000n,
    });
    expect(x86_64HwInfo(0x000f_0000_0000_1000, 5)).toMatchObject({
      flpm: 1,
      la57: true,
      cr3: 0xf_0000_0000_1000n,
    });
  });

  it('pgsize bitmap and leaf levels', () => {
    expect(x86_64PgsizeBitmap(0xffff_f000)).toBe(0x4020_1000);
    expect(x86_64PgsizeBitmap(0x0020_1000)).toBe(0x0020_1000);
    expect(x86PtLeafLevelMask(0x4020_1000)).toBe(0b111);
    expect(x86PtLeafLevelMask(0x4000_1000)).toBe(0b101);
    expect(x86PtNarrowPgsize(0xffff_ffff_ffffn, 52)).toBe(0x4020_1000n);
    expect(x86PtNarrowPgsize(0x4020_1000n, 30)).toBe(0x20_1000n);
    expectErrno(() => x86PtNarrowPgsize(0x20_0000n, 52), 'EINVAL');
  });

  it('builds levels top first with 1-based labels and leaf sizes from the bitmap', () => {
    const levels = x86PtBuildLevels(3, 48, 0x4000_1000n);
    expect(levels.map((l) => [l.label, l.shift, l.indexBits, l.tableBytes, l.leafSizesLg2])).toEqual([
      [4, 39, 9, 4096, []],
      [3, 30, 9, 4096, [30]],
      [2, 21, 9, 4096, []],
      [1, 12, 9, 4096, [12]],
    ]);
    expect(x86PtBuildLevels(4, 48, 0x1000n)[0]?.indexBits).toBe(0);
    expect(x86PtBuildLevels(3, 46, 0x1000n)[0]?.indexBits).toBe(7);
  });

  it('software bit positions', () => {
    expect([0, 1, 2, 3, 12].map(x86_64SwBitPosition)).toEqual([9, 11, 52, 53, 62]);
    expect(() => x86_64SwBitPosition(13)).toThrow(RangeError);
  });
});
