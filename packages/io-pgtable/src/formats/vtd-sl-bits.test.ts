import { isErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import { IOMMU_CACHE, IOMMU_MMIO, IOMMU_NOEXEC, IOMMU_PRIV, IOMMU_READ, IOMMU_WRITE } from '../prot.js';
import {
  type VtdSlLeafOptions,
  vtdAgawToWidth,
  vtdSlDecodeLeaf,
  vtdSlEntryKind,
  vtdSlEntryOa,
  vtdSlGeometry,
  vtdSlGeometryFromCaps,
  vtdSlHwInfo,
  vtdSlHwPresent,
  vtdSlIsDirty,
  vtdSlMakeClean,
  vtdSlMakeDirty,
  vtdSlMakeLeaf,
  vtdSlMakeTable,
  vtdSlPgsizeBitmap,
  vtdSlPgsizeFromSllps,
  vtdSlProtToAttrs,
  vtdSlSwBitPosition,
  vtdWidthToAgaw,
} from './vtd-sl-bits.js';
import { x86PteFromU64, x86PteToU64 } from './x86-common.js';

function leaf(pa: number, level: number, prot: number, options: VtdSlLeafOptions = {}): bigint {
  return x86PteToU64(vtdSlMakeLeaf(pa, level, vtdSlProtToAttrs(prot, options)));
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

describe('VT-d second-stage golden values (PA = 0)', () => {
  // Rules: table = R|W = 0x3; leaf = R (0x1) if READ, W (0x2) if WRITE, SNP (0x800) if forced,
  // PS (0x80) above level 0.
  it('table entries are PA | 0x3', () => {
    expect(x86PteToU64(vtdSlMakeTable(0))).toBe(0x3n);
    expect(x86PteToU64(vtdSlMakeTable(0x1234_5000))).toBe(0x1234_5003n);
    expect(x86PteToU64(vtdSlMakeTable(0x000f_ffff_ffff_f000))).toBe(0x000f_ffff_ffff_f003n);
  });

  const cases: Array<[string, number, bigint, bigint, bigint, bigint]> = [
    // name, prot, 4K, 2M, 1G, 4K with force-snoop
    ['READ', IOMMU_READ, 0x1n, 0x81n, 0x81n, 0x801n],
    ['WRITE', IOMMU_WRITE, 0x2n, 0x82n, 0x82n, 0x802n],
    ['READ|WRITE', IOMMU_READ | IOMMU_WRITE, 0x3n, 0x83n, 0x83n, 0x803n],
    ['READ|WRITE|CACHE', IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE, 0x3n, 0x83n, 0x83n, 0x803n],
    ['READ|NOEXEC', IOMMU_READ | IOMMU_NOEXEC, 0x1n, 0x81n, 0x81n, 0x801n],
    ['WRITE|MMIO', IOMMU_WRITE | IOMMU_MMIO, 0x2n, 0x82n, 0x82n, 0x802n],
    ['READ|PRIV', IOMMU_READ | IOMMU_PRIV, 0x1n, 0x81n, 0x81n, 0x801n],
    ['all', 63, 0x3n, 0x83n, 0x83n, 0x803n],
  ];
  for (const [name, prot, l0, l1, l2, snp] of cases) {
    it(`leaf ${name}`, () => {
      expect(leaf(0, 0, prot)).toBe(l0);
      expect(leaf(0, 1, prot)).toBe(l1);
      expect(leaf(0, 2, prot)).toBe(l2);
      expect(leaf(0, 0, prot, { forceSnoop: true })).toBe(snp);
      expect(leaf(0, 2, prot, { forceSnoop: true })).toBe(snp | 0x80n);
    });
  }

  it('every prot combination follows the rule', () => {
    for (let prot = 0; prot < 64; prot++) {
      if ((prot & 3) === 0) {
        expectErrno(() => vtdSlProtToAttrs(prot), 'EINVAL');
        continue;
      }
      const rw = BigInt(prot & 3);
      expect(leaf(0, 0, prot)).toBe(rw);
      expect(leaf(0, 1, prot)).toBe(rw | 0x80n);
      expect(leaf(0, 1, prot, { forceSnoop: true })).toBe(rw | 0x880n);
    }
  });

  it('force-writeable refuses read-only maps', () => {
    expectErrno(() => vtdSlProtToAttrs(IOMMU_READ, { forceWriteable: true }), 'EINVAL');
    expect(leaf(0, 0, IOMMU_WRITE, { forceWriteable: true })).toBe(0x2n);
  });

  it('leaves with addresses', () => {
    expect(leaf(0x000f_ffff_ffff_f000, 0, IOMMU_READ | IOMMU_WRITE)).toBe(0x000f_ffff_ffff_f003n);
    expect(leaf(0x0001_2345_6740_0000, 1, IOMMU_READ)).toBe(0x0001_2345_6740_0081n);
    expect(leaf(0x000a_bcde_c000_0000, 2, IOMMU_WRITE, { forceSnoop: true })).toBe(0x000a_bcde_c000_0882n);
  });
});

describe('VT-d second-stage decode and dirty bit', () => {
  it('empty iff the value is 0; leaf at level 0 or with PS at 1..2', () => {
    expect(vtdSlEntryKind(0, 0, 0)).toBe(0);
    expect(vtdSlEntryKind(0, 1, 0)).toBe(2);
    expect(vtdSlEntryKind(0x1003, 0, 1)).toBe(1);
    expect(vtdSlEntryKind(0x83, 0, 1)).toBe(2);
    expect(vtdSlEntryKind(0x83, 0, 2)).toBe(2);
    expect(vtdSlEntryKind(0x83, 0, 3)).toBe(1);
    expect(vtdSlHwPresent(0x800)).toBe(false);
    expect(vtdSlHwPresent(0x2)).toBe(true);
  });

  it('address decode masks large-leaf low bits and ignored high bits', () => {
    const e = x86PteFromU64(0xfff0_0000_4020_1383n);
    expect(vtdSlEntryOa(e.lo, e.hi, 0)).toBe(0x4020_1000);
    expect(vtdSlEntryOa(e.lo, e.hi, 1)).toBe(0x4020_0000);
    expect(vtdSlEntryOa(e.lo, e.hi, 2)).toBe(0x4000_0000);
    expect(vtdSlDecodeLeaf(e.lo, e.hi, 1)).toEqual({
      oa: 0x4020_0000,
      sizeShift: 21,
      read: true,
      write: true,
      snoop: false,
      accessed: true,
      dirty: true,
    });
  });

  it('D is bit 9; clean clears only D', () => {
    expect(vtdSlIsDirty(0x203)).toBe(true);
    expect(vtdSlIsDirty(0x103)).toBe(false);
    expect(vtdSlMakeClean(0xffff_ffff)).toBe(0xffff_fdff);
    expect(vtdSlMakeDirty(0x3)).toBe(0x203);
  });

  it('software bit positions', () => {
    expect([0, 1, 9, 10].map(vtdSlSwBitPosition)).toEqual([10, 52, 60, 63]);
    expect(() => vtdSlSwBitPosition(11)).toThrow(RangeError);
  });
});

describe('VT-d second-stage geometry, AGAW and root values', () => {
  it('AGAW widths and width_to_agaw', () => {
    expect([1, 2, 3].map(vtdAgawToWidth)).toEqual([39, 48, 57]);
    expect([39, 40, 48, 49, 57].map(vtdWidthToAgaw)).toEqual([1, 2, 2, 3, 3]);
  });

  it('geometry per level count', () => {
    expect(vtdSlGeometry(3)).toEqual({
      agaw: 1,
      levels: 3,
      topLevel: 2,
      vaBits: 39,
      apertureEnd: 0x7f_ffff_ffffn,
    });
    expect(vtdSlGeometry(4)).toMatchObject({ agaw: 2, topLevel: 3, vaBits: 48 });
    expect(vtdSlGeometry(5)).toMatchObject({ agaw: 3, topLevel: 4, vaBits: 57 });
    expect(vtdSlGeometry(4, 46).apertureEnd).toBe(0x3fff_ffff_ffffn);
    expectErrno(() => vtdSlGeometry(2), 'EOPNOTSUPP');
    expectErrno(() => vtdSlGeometry(3, 40), 'EINVAL');
  });

  it('geometry from MGAW and SAGAW (Intel driver table)', () => {
    expect(vtdSlGeometryFromCaps(57, 0b01000)).toMatchObject({ levels: 5, vaBits: 57 });
    expect(vtdSlGeometryFromCaps(57, 0b01100)).toMatchObject({ levels: 5, vaBits: 57 });
    expect(vtdSlGeometryFromCaps(57, 0b00100)).toMatchObject({ levels: 4, vaBits: 48 });
    expect(vtdSlGeometryFromCaps(48, 0b00100)).toMatchObject({ levels: 4, vaBits: 48 });
    expect(vtdSlGeometryFromCaps(48, 0b01000)).toMatchObject({ levels: 5, vaBits: 48 });
    expect(vtdSlGeometryFromCaps(46, 0b00100)).toMatchObject({ levels: 4, vaBits: 46 });
    expect(vtdSlGeometryFromCaps(39, 0b00010)).toMatchObject({ levels: 3, vaBits: 39 });
    expectErrno(() => vtdSlGeometryFromCaps(30, 0b00110), 'EOPNOTSUPP');
    expectErrno(() => vtdSlGeometryFromCaps(48, 0b00001), 'EOPNOTSUPP');
  });

  it('root values: SSPTPTR and AW = levels - 2', () => {
    expect(vtdSlHwInfo(0x1234_5000, 3)).toEqual({ ssptptr: 0x1234_5000, aw: 1, sagawBit: 0b10 });
    expect(vtdSlHwInfo(0x1000, 4)).toEqual({ ssptptr: 0x1000, aw: 2, sagawBit: 0b100 });
    expect(vtdSlHwInfo(0x1000, 5)).toEqual({ ssptptr: 0x1000, aw: 3, sagawBit: 0b1000 });
  });

  it('page sizes from SLLPS and from a requested bitmap', () => {
    expect(vtdSlPgsizeFromSllps(0)).toBe(0x1000);
    expect(vtdSlPgsizeFromSllps(1)).toBe(0x20_1000);
    expect(vtdSlPgsizeFromSllps(3)).toBe(0x4020_1000);
    expect(vtdSlPgsizeBitmap(0x4020_1000 + 0x8000_0000 * 2)).toBe(0x4020_1000);
  });
});
