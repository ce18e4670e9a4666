// The v7s format descriptor on its own: setup checks, geometry handed to the walker, entry codec.
import { ErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import type { IoPgtableCfg } from '../cfg.js';
import { IoPgtableFmt, PtEntryKind } from '../format.js';
import { armV7sFormat } from './arm-v7s.js';

const R = 1;
const W = 2;
const CACHE = 4;
const NOEXEC = 8;
const Q_NS = 1;
const Q_NO_PERMS = 2;
const Q_MTK = 8;
const Q_MTK_TTBR = 16;

function cfgOf(over: Partial<IoPgtableCfg> = {}): IoPgtableCfg {
  return { quirks: 0, pgsizeBitmap: 0x01111000n, ias: 32, oas: 32, coherentWalk: true, ...over };
}

describe('armV7sFormat.setup', () => {
  it('identifies itself as ARM_V7S (4) with quirks 0x1b', () => {
    expect(armV7sFormat.name).toBe('ARM_V7S');
    expect(armV7sFormat.fmt).toBe(IoPgtableFmt.ARM_V7S);
    expect(armV7sFormat.fmt).toBe(4);
    expect(armV7sFormat.quirksAllowed).toBe(0x1b);
  });

  it('describes two levels: 4096 × 1M/16M over 256 × 4K/64K, 16 KiB and 1 KiB tables', () => {
    const cfg = cfgOf({ pgsizeBitmap: 0xfffff000n });
    const f = armV7sFormat.setup(cfg);
    expect(cfg.pgsizeBitmap).toBe(0x01111000n);
    expect(f.pgsizeBitmap).toBe(0x01111000n);
    expect(f.entryWords).toBe(1);
    expect(f.vaBits).toBe(32);
    expect(f.oaBits).toBe(32);
    expect(f.upperIova).toBe('zero');
    expect(f.granule).toBe(4096);
    expect(f.levels).toEqual([
      { label: 1, shift: 20, indexBits: 12, runBits: 12, tableBytes: 16384, leafSizesLg2: [20, 24] },
      { label: 2, shift: 12, indexBits: 8, runBits: 8, tableBytes: 1024, leafSizesLg2: [12, 16] },
    ]);
    expect(f.policy).toEqual({
      mapPageByPage: true,
      unmapPageByPage: true,
      tlbAddPageWithoutGather: true,
      tlbAddPageForTables: false,
      existingLeafErrno: 'EEXIST',
      mapOverTable: 'free',
    });
    expect(f.dirty).toBeUndefined();
  });

  it('uses supersections only when the driver offered 16M', () => {
    const cfg = cfgOf({ pgsizeBitmap: 0x00101000n });
    const f = armV7sFormat.setup(cfg);
    expect(cfg.pgsizeBitmap).toBe(0x00101000n);
    expect(f.levels[0]?.leafSizesLg2).toEqual([20]);
    expect(f.levels[1]?.leafSizesLg2).toEqual([12]);
  });

  it('MediaTek ias 34 gives a 16384-entry, 64 KiB level-1 table', () => {
    const f = armV7sFormat.setup(cfgOf({ ias: 34, oas: 35, quirks: Q_NO_PERMS | Q_MTK }));
    expect(f.levels[0]).toMatchObject({ indexBits: 14, tableBytes: 65536 });
  });

  it.each([
    ['ias 33', cfgOf({ ias: 33 })],
    ['oas 33', cfgOf({ oas: 33 })],
    ['ias 35 with MTK', cfgOf({ ias: 35, quirks: Q_NO_PERMS | Q_MTK })],
    ['quirk TTBR1', cfgOf({ quirks: 1 << 5 })],
    ['quirk NO_WARN', cfgOf({ quirks: 1 << 9 })],
    ['quirk bit 2', cfgOf({ quirks: 1 << 2 })],
    ['MTK without NO_PERMS', cfgOf({ quirks: Q_MTK })],
    ['MTK_TTBR without MTK', cfgOf({ quirks: Q_MTK_TTBR | Q_NO_PERMS })],
  ])('rejects %s with EINVAL', (_name, cfg) => {
    let err: unknown;
    try {
      armV7sFormat.setup(cfg);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ErrnoError);
    expect((err as ErrnoError).code).toBe('EINVAL');
  });

  it('writes the four registers', () => {
    const cfg = cfgOf();
    armV7sFormat.setup(cfg).writeRegisters(cfg, 0x40004000);
    expect(cfg.armV7sCfg).toEqual({ ttbr: 0x4000406a, tcr: 0, nmrr: 0x40004000, prrr: 0x800b8204 });
    const nc = cfgOf({ coherentWalk: false });
    armV7sFormat.setup(nc).writeRegisters(nc, 0x40004000);
    expect(nc.armV7sCfg?.ttbr).toBe(0x40004002);
  });
});

describe('v7s entry codec', () => {
  const f = armV7sFormat.setup(cfgOf({ quirks: Q_NS }));

  it('classifies empty, table, leaves and garbage', () => {
    expect(f.classify(0, 0, 0)).toBe(PtEntryKind.EMPTY);
    expect(f.classify(0, 0, 1)).toBe(PtEntryKind.EMPTY);
    expect(f.classify(0x40000c09, 0, 0)).toBe(PtEntryKind.TABLE);
    expect(f.classify(0x001b1c1e, 0, 0)).toBe(PtEntryKind.LEAF);
    expect(f.classify(0x00019c3d, 0, 1)).toBe(PtEntryKind.LEAF); // large page: type 0b01 at level 2
    expect(f.classify(0x00001c7f, 0, 1)).toBe(PtEntryKind.LEAF);
    expect(f.classify(0x00001000, 0, 1)).toBe(PtEntryKind.INVALID);
  });

  it('writes table descriptors with NS_TABLE and reads them back', () => {
    const words = new Uint32Array(4);
    f.writeTable(words, 2, 0x40000c00, 0);
    expect(words[2]).toBe(0x40000c09);
    expect(f.tablePa(0x40000c09, 0, 0)).toBe(0x40000c00);
  });

  it('writes a large page as 16 identical copies and a supersection likewise', () => {
    const words = new Uint32Array(40);
    const t = f.leafTemplate(R | W | CACHE | NOEXEC, 1, 16);
    f.writeLeaves(words, 3, 0x00010000, 1, 16, 1, t);
    expect(words[2]).toBe(0);
    for (let i = 3; i < 19; i++) expect(words[i]).toBe(0x00019c3d);
    expect(words[19]).toBe(0);
    expect(f.leafSizeLg2(0x00019c3d, 0, 1)).toBe(16);
    expect(f.leafPa(0x00019c3d, 0, 1)).toBe(0x00010000);

    const l1 = new Uint32Array(40);
    const ts = f.leafTemplate(R | W | CACHE | NOEXEC, 0, 24);
    f.writeLeaves(l1, 16, 0x03000000, 0, 24, 1, ts);
    for (let i = 16; i < 32; i++) expect(l1[i]).toBe(0x030f1c1e);
    expect(f.leafSizeLg2(0x030f1c1e, 0, 0)).toBe(24);
    expect(f.leafPa(0x030f1c1e, 0, 0)).toBe(0x03000000);
  });

  it('writes consecutive plain leaves with consecutive addresses', () => {
    const words = new Uint32Array(4);
    const t = f.leafTemplate(W, 1, 12);
    f.writeLeaves(words, 0, 0x00001000, 1, 12, 3, t);
    expect(Array.from(words)).toEqual([0x00001c72, 0x00002c72, 0x00003c72, 0]);
    expect(f.leafSizeLg2(0x00001c72, 0, 1)).toBe(12);
    const sec = new Uint32Array(2);
    f.writeLeaves(sec, 0, 0x00100000, 0, 20, 2, f.leafTemplate(R, 0, 20));
    // R only at level 1 with ARM_NS: 0xE7 << 10 | type 2 | NS bit 19
    expect(Array.from(sec)).toEqual([0x001b9c02, 0x002b9c02]);
  });

  it('decodes for dump', () => {
    expect(f.decode(0, 0, 0)).toEqual({ kind: PtEntryKind.EMPTY, attrs: {} });
    expect(f.decode(0x40000c09, 0, 0)).toEqual({ kind: PtEntryKind.TABLE, pa: 0x40000c00, attrs: { NS: 1 } });
    expect(f.decode(0x00019c3d, 0, 1)).toMatchObject({
      kind: PtEntryKind.LEAF,
      pa: 0x10000,
      sizeLg2: 16,
      attrs: { type: 'largePage', XN: 1, TEX: 1, AP2: 0, B: 1, C: 1 },
    });
  });

  it('MediaTek: leaves and tables above 4 GiB', () => {
    const q = Q_NO_PERMS | Q_MTK | Q_MTK_TTBR;
    const m = armV7sFormat.setup(cfgOf({ ias: 34, oas: 35, quirks: q }));
    const words = new Uint32Array(1);
    m.writeLeaves(words, 0, 0x6_1234_5000, 1, 12, 1, m.leafTemplate(R | W, 1, 12));
    expect(words[0]).toBe((0x12345000 | 0xc42 | (1 << 4) | (1 << 5)) >>> 0);
    expect(m.leafPa(words[0]!, 0, 1)).toBe(0x6_1234_5000);
    m.writeTable(words, 0, 0x1_0000_0400, 0);
    expect(words[0]).toBe(0x00000601);
    expect(m.tablePa(words[0]!, 0, 0)).toBe(0x1_0000_0400);
    const c = cfgOf({ ias: 34, oas: 35, quirks: q });
    m.writeRegisters(c, 0x2_0001_0000);
    expect(c.armV7sCfg?.ttbr).toBe(0x00010002);
  });
});
