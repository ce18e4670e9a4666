// Golden tests for the pure v7s layer: geometry, descriptors and register values. Expected numbers are
// written from the bit tables of the spec digest (§3.1–§3.3), never by calling the encoder under test.
import { describe, expect, it } from 'vitest';
import {
  ARM_V7S_PGSIZE_BITMAP,
  armV7sBlockSize,
  armV7sLevelIndex,
  armV7sLevelMask,
  armV7sMakeLeaf,
  armV7sMakeTable,
  armV7sPaddrToPte,
  armV7sPteAddrMask,
  armV7sPteIsCont,
  armV7sPteIsTable,
  armV7sPteIsValid,
  armV7sPtesPerLevel,
  armV7sPteToPaddr,
  armV7sTableAlign,
  armV7sTableSize,
  decodeArmV7sPte,
} from './arm-v7s-pte.js';
import {
  ARM_V7S_ACCEPTED_QUIRKS,
  ARM_V7S_NMRR,
  ARM_V7S_PRRR,
  ARM_V7S_TCR,
  armV7sCfgRegs,
  armV7sCheckCfg,
  armV7sPgsizeBitmap,
  armV7sTtbr,
} from './arm-v7s-regs.js';

// Literal flag values (include/linux/iommu.h, include/linux/io-pgtable.h).
const R = 1;
const W = 2;
const CACHE = 4;
const NOEXEC = 8;
const MMIO = 16;
const PRIV = 32;
const Q_NS = 1;
const Q_NO_PERMS = 2;
const Q_MTK = 8;
const Q_MTK_TTBR = 16;

const b = (n: number): number => 2 ** n; // no sign trouble at bit 31

type Kind = 'section' | 'supersection' | 'small' | 'large';

/** Field positions of each leaf kind, transcribed from the digest's §3.2 table. */
const LAYOUT: Record<
  Kind,
  {
    type: number;
    xn: number;
    ap0: number;
    ap1: number;
    tex: number;
    ap2: number;
    s: number;
    ng: number;
    extra: number;
    addrMask: number;
  }
> = {
  section: {
    type: 0b10,
    xn: 4,
    ap0: 10,
    ap1: 11,
    tex: 12,
    ap2: 15,
    s: 16,
    ng: 17,
    extra: 0,
    addrMask: 0xfff00000,
  },
  supersection: {
    type: 0b10,
    xn: 4,
    ap0: 10,
    ap1: 11,
    tex: 12,
    ap2: 15,
    s: 16,
    ng: 17,
    extra: b(18),
    addrMask: 0xff000000,
  },
  small: { type: 0b10, xn: 0, ap0: 4, ap1: 5, tex: 6, ap2: 9, s: 10, ng: 11, extra: 0, addrMask: 0xfffff000 },
  large: {
    type: 0b01,
    xn: 15,
    ap0: 4,
    ap1: 5,
    tex: 12,
    ap2: 9,
    s: 10,
    ng: 11,
    extra: 0,
    addrMask: 0xffff0000,
  },
};

/** The expected descriptor, composed from the digest's §3.3 rules field by field. */
function expected(kind: Kind, pa: number, prot: number, quirks: number): number {
  const l = LAYOUT[kind];
  const perms = (quirks & Q_NO_PERMS) === 0;
  let v = l.type + l.extra + b(l.ng) + b(l.s);
  if (!(prot & MMIO)) v += 1 * b(l.tex);
  if (perms) {
    v += b(l.ap0);
    if (!(prot & PRIV)) v += b(l.ap1);
    if (!(prot & W)) v += b(l.ap2);
    if (prot & NOEXEC) v += b(l.xn);
  }
  if (prot & MMIO) v += b(2);
  else if (prot & CACHE) v += b(2) + b(3);
  if ((kind === 'section' || kind === 'supersection') && quirks & Q_NS) v += b(19);
  v += (pa % 2 ** 32) - ((pa % 2 ** 32) % (2 ** 32 - l.addrMask));
  if (quirks & Q_MTK) {
    const hi = Math.floor(pa / 2 ** 32);
    if (hi & 1) v += b(9);
    if (hi & 2) v += b(4);
    if (hi & 4) v += b(5);
  }
  return v;
}

const KINDS: readonly { kind: Kind; level: 1 | 2; cont: boolean; pa: number }[] = [
  { kind: 'section', level: 1, cont: false, pa: 0x12300000 },
  { kind: 'supersection', level: 1, cont: true, pa: 0xab000000 },
  { kind: 'small', level: 2, cont: false, pa: 0x87654000 },
  { kind: 'large', level: 2, cont: true, pa: 0xfedc0000 },
];
const QUIRK_SETS = [0, Q_NS, Q_NO_PERMS, Q_NS | Q_NO_PERMS, Q_NO_PERMS | Q_MTK, Q_NS | Q_NO_PERMS | Q_MTK];

describe('v7s geometry', () => {
  it('level sizes, entry counts, table sizes and alignment', () => {
    expect(armV7sBlockSize(1)).toBe(0x100000);
    expect(armV7sBlockSize(2)).toBe(0x1000);
    expect(armV7sPtesPerLevel(1, 32)).toBe(4096);
    expect(armV7sPtesPerLevel(1, 34)).toBe(16384);
    expect(armV7sPtesPerLevel(2, 32)).toBe(256);
    expect(armV7sTableSize(1, 32)).toBe(16384);
    expect(armV7sTableSize(1, 34)).toBe(65536);
    expect(armV7sTableSize(2, 32)).toBe(1024);
    expect(armV7sTableAlign(1, 32)).toBe(16384);
    expect(armV7sTableAlign(2, 32)).toBe(1024);
    expect(armV7sLevelMask(1)).toBe(0xfff00000);
    expect(armV7sLevelMask(2)).toBe(0xfffff000);
  });

  it('index extraction uses VA bits ias-1:20 and 19:12', () => {
    expect(armV7sLevelIndex(0xfedcb000, 1, 32)).toBe(0xfed);
    expect(armV7sLevelIndex(0xfedcb000, 2, 32)).toBe(0xcb);
    expect(armV7sLevelIndex(0x3_fff0_0000, 1, 34)).toBe(0x3fff);
    expect(armV7sLevelIndex(0x3_fff0_0000, 1, 32)).toBe(0xfff);
    expect(armV7sLevelIndex(0x2_0001_2345, 2, 34)).toBe(0x12);
    expect(armV7sLevelIndex(0x80000000 + 42, 1, 32)).toBe(0x800);
  });

  it('pgsize_bitmap narrowing keeps only 4K|64K|1M|16M', () => {
    expect(ARM_V7S_PGSIZE_BITMAP).toBe(0x01111000);
    expect(armV7sPgsizeBitmap(0x40201000n)).toBe(0x1000n);
    expect(armV7sPgsizeBitmap(0xffffffffn)).toBe(0x01111000n);
    expect(armV7sPgsizeBitmap(0x00111000n)).toBe(0x00111000n); // no 16M offered: no supersections
    expect(armV7sPgsizeBitmap((1n << 42n) | 0x1000n)).toBe(0x1000n);
  });
});

describe('v7s leaf descriptors (every prot subset × quirk set × leaf kind)', () => {
  for (const { kind, level, cont, pa } of KINDS) {
    for (const quirks of QUIRK_SETS) {
      it(`${kind}, quirks 0x${quirks.toString(16)}`, () => {
        for (let prot = 0; prot < 64; prot++) {
          const got = armV7sMakeLeaf(pa, prot, level, cont, quirks);
          expect(got, `prot 0x${prot.toString(16)}`).toBe(expected(kind, pa, prot, quirks));
        }
      });
    }
  }

  it('hand-computed golden values', () => {
    const RWC = R | W | CACHE;
    // Section, R|W|CACHE: nG|S|TEX1|AP1|AP0 = 0xC7 << 10 = 0x31C00, +C|B 0xC, +type 0x2.
    expect(armV7sMakeLeaf(0, RWC, 1, false, 0)).toBe(0x00031c0e);
    expect(armV7sMakeLeaf(0x12300000, RWC | NOEXEC, 1, false, Q_NS)).toBe(0x123b1c1e);
    // Read-only, uncached section: AP2 (bit 15) set, no B/C: 0xE7 << 10 = 0x39C00, + type 0x2.
    expect(armV7sMakeLeaf(0x00100000, R, 1, false, 0)).toBe(0x00139c02);
    // Supersection, selftest prot with ARM_NS: section bits + bit 18.
    expect(armV7sMakeLeaf(0x03000000, RWC | NOEXEC, 1, true, Q_NS)).toBe(0x030f1c1e);
    // Small page, R|W|CACHE|NOEXEC: 0xC7 << 4 = 0xC70, +0xC, +type 0x2, +XN bit 0.
    expect(armV7sMakeLeaf(0x00001000, RWC | NOEXEC, 2, false, Q_NS)).toBe(0x00001c7f);
    // Large page of the same: XN → bit 15, TEX → bit 12, type 0b01.
    expect(armV7sMakeLeaf(0x00010000, RWC | NOEXEC, 2, true, 0)).toBe(0x00019c3d);
    // MMIO small page, privileged, write: nG|S|AP0 = 0xC1 << 4, +B, +type.
    expect(armV7sMakeLeaf(0x10000000, R | W | MMIO | PRIV, 2, false, 0)).toBe(0x10000c16);
    // WRITE-only (selftest remap) small page: still readable-encoded, AP2 clear.
    expect(armV7sMakeLeaf(0, W, 2, false, 0)).toBe(0x00000c72);
    // NO_PERMS: no AP/XN at all.
    expect(armV7sMakeLeaf(0, R | NOEXEC, 2, false, Q_NO_PERMS)).toBe(0x00000c42);
    expect(armV7sMakeLeaf(0, R | NOEXEC, 1, false, Q_NO_PERMS)).toBe(0x00031002);
    // MTK: PA 0x7_0000_0000 + 0x4000 → bits 9, 4, 5 set on a small page.
    expect(armV7sMakeLeaf(0x7_0000_4000, R | W, 2, false, Q_NO_PERMS | Q_MTK)).toBe(0x00004e72);
    expect(armV7sMakeLeaf(0x1_0010_0000, R | W, 1, false, Q_NO_PERMS | Q_MTK)).toBe(0x00131202);
  });

  it('MTK PA bits round-trip at every leaf kind and every PA high value', () => {
    for (const { level, cont } of KINDS) {
      for (let hi = 0; hi < 8; hi++) {
        const pa = hi * 2 ** 32 + (level === 1 ? 0x5f000000 : 0x5fff0000);
        const q = Q_NO_PERMS | Q_MTK;
        const pte = armV7sMakeLeaf(pa, R | W, level, cont, q);
        expect(armV7sPteToPaddr(pte, level, q)).toBe(pa);
        // Without the quirk the high bits are simply lost.
        expect(armV7sPteToPaddr(armV7sMakeLeaf(pa, R | W, level, cont, Q_NO_PERMS), level, 0)).toBe(
          pa % 2 ** 32,
        );
      }
    }
    expect(armV7sPaddrToPte(0x4_0000_0000, 2, Q_MTK)).toBe(b(5));
    expect(armV7sPaddrToPte(0x2_0000_0000, 2, Q_MTK)).toBe(b(4));
    expect(armV7sPaddrToPte(0x1_0000_0000, 1, Q_MTK)).toBe(b(9));
  });
});

describe('v7s table descriptors and predicates', () => {
  it('table descriptor: PA | 0b01, NS_TABLE bit 3 with ARM_NS, MTK bits only with MTK_TTBR_EXT', () => {
    expect(armV7sMakeTable(0x12345c00, 0)).toBe(0x12345c01);
    expect(armV7sMakeTable(0x12345c00, Q_NS)).toBe(0x12345c09);
    expect(armV7sMakeTable(0x3_0000_0400, Q_NO_PERMS | Q_MTK)).toBe(0x00000401);
    expect(armV7sMakeTable(0x3_0000_0400, Q_NO_PERMS | Q_MTK | Q_MTK_TTBR)).toBe(0x00000611);
    expect(armV7sPteToPaddr(0x00000611, 1, Q_NO_PERMS | Q_MTK | Q_MTK_TTBR)).toBe(0x3_0000_0400);
  });

  it('valid / table / contiguous predicates and address masks', () => {
    expect(armV7sPteIsValid(0)).toBe(false);
    expect(armV7sPteIsValid(0xfffffffc)).toBe(false);
    expect(armV7sPteIsValid(1)).toBe(true);
    expect(armV7sPteIsTable(0x12345c01, 1)).toBe(true);
    expect(armV7sPteIsTable(0x00019c3d, 2)).toBe(false); // large page is type 0b01 but at level 2
    expect(armV7sPteIsCont(0x030f1c1e, 1)).toBe(true);
    expect(armV7sPteIsCont(0x123b1c1e, 1)).toBe(false);
    expect(armV7sPteIsCont(0x00040001, 1)).toBe(false); // table with bit 18 (address) is no supersection
    expect(armV7sPteIsCont(0x00019c3d, 2)).toBe(true);
    expect(armV7sPteIsCont(0x00001c7f, 2)).toBe(false);
    expect(armV7sPteAddrMask(0x12345c01, 1)).toBe(0xfffffc00);
    expect(armV7sPteAddrMask(0x030f1c1e, 1)).toBe(0xff000000);
    expect(armV7sPteAddrMask(0x123b1c1e, 1)).toBe(0xfff00000);
    expect(armV7sPteAddrMask(0x00019c3d, 2)).toBe(0xffff0000);
    expect(armV7sPteAddrMask(0x00001c7f, 2)).toBe(0xfffff000);
  });

  it('decode reports every field of each kind', () => {
    expect(decodeArmV7sPte(0, 1).kind).toBe('invalid');
    expect(decodeArmV7sPte(0x12345c09, 1)).toMatchObject({ kind: 'table', paddr: 0x12345c00, ns: true });
    expect(decodeArmV7sPte(0x123b1c1e, 1)).toEqual({
      kind: 'section',
      paddr: 0x12300000,
      size: 0x100000,
      xn: true,
      b: true,
      c: true,
      tex: 1,
      ap0: true,
      ap1: true,
      ap2: false,
      s: true,
      ng: true,
      ns: true,
    });
    expect(decodeArmV7sPte(0x030f1c1e, 1)).toMatchObject({
      kind: 'supersection',
      paddr: 0x03000000,
      size: 0x1000000,
    });
    expect(decodeArmV7sPte(0x00019c3d, 2)).toMatchObject({
      kind: 'largePage',
      paddr: 0x00010000,
      size: 0x10000,
      xn: true,
      tex: 1,
      ap2: false,
    });
    expect(decodeArmV7sPte(0x0000127e, 2)).toMatchObject({
      kind: 'smallPage',
      paddr: 0x00001000,
      xn: false,
      tex: 1,
      ap2: true,
      ap1: true,
      ap0: true,
    });
  });
});

describe('v7s registers', () => {
  it('PRRR, NMRR and TCR are the fixed Linux values', () => {
    // PRRR: TR1=Device(1)<<2, TR4=Normal(2)<<8, TR7=Normal(2)<<14, DS0 16, DS1 17, NS1 19, NOS7 31.
    expect(ARM_V7S_PRRR).toBe(0x4 + 0x200 + 0x8000 + b(16) + b(17) + b(19) + b(31));
    expect(ARM_V7S_PRRR).toBe(0x800b8204);
    // NMRR: IR7 = WBWA (1) at bits 15:14, OR7 = WBWA at bits 31:30.
    expect(ARM_V7S_NMRR).toBe(0x40004000);
    expect(ARM_V7S_TCR).toBe(0);
  });

  it('TTBR: S, NOS and WBWA walk attributes when coherent; S and NC otherwise; MTK folding', () => {
    // coherent: S (0x2) | NOS (0x20) | IRGN WBWA (bit 6 = 0x40) | ORGN WBWA (1 << 3 = 0x8)
    expect(armV7sTtbr(0x80004000, true, 0)).toBe(0x8000406a);
    expect(armV7sTtbr(0x80004000, false, 0)).toBe(0x80004002);
    expect(armV7sTtbr(0x80004000, true, Q_NS)).toBe(0x8000406a);
    expect(armV7sTtbr(0x5_4000_c000, true, Q_NO_PERMS | Q_MTK)).toBe(0x4000c005);
    expect(armV7sCfgRegs(0x4000, true, 0)).toEqual({
      ttbr: 0x406a,
      tcr: 0,
      nmrr: 0x40004000,
      prrr: 0x800b8204,
    });
  });
});

describe('v7s configuration checks', () => {
  it('accepts exactly ARM_NS | NO_PERMS | MTK_EXT | MTK_TTBR_EXT', () => {
    expect(ARM_V7S_ACCEPTED_QUIRKS).toBe(0x1b);
    for (let bit = 0; bit < 12; bit++) {
      const ok = armV7sCheckCfg({ ias: 32, oas: 32, quirks: b(bit) | (b(bit) === Q_MTK ? Q_NO_PERMS : 0) });
      const expectOk = bit === 0 || bit === 1 || bit === 3;
      expect(ok === null, `quirk bit ${bit}`).toBe(expectOk);
    }
  });

  it('address sizes and quirk dependencies', () => {
    expect(armV7sCheckCfg({ ias: 32, oas: 32, quirks: 0 })).toBeNull();
    expect(armV7sCheckCfg({ ias: 33, oas: 32, quirks: 0 })).not.toBeNull();
    expect(armV7sCheckCfg({ ias: 32, oas: 33, quirks: 0 })).not.toBeNull();
    expect(armV7sCheckCfg({ ias: 34, oas: 35, quirks: Q_MTK | Q_NO_PERMS })).toBeNull();
    expect(armV7sCheckCfg({ ias: 35, oas: 35, quirks: Q_MTK | Q_NO_PERMS })).not.toBeNull();
    expect(armV7sCheckCfg({ ias: 34, oas: 36, quirks: Q_MTK | Q_NO_PERMS })).not.toBeNull();
    expect(armV7sCheckCfg({ ias: 32, oas: 32, quirks: Q_MTK })).toMatch(/NO_PERMS/);
    expect(armV7sCheckCfg({ ias: 32, oas: 32, quirks: Q_MTK_TTBR | Q_NO_PERMS })).toMatch(/MTK_EXT/);
    expect(armV7sCheckCfg({ ias: 32, oas: 32, quirks: Q_MTK_TTBR | Q_MTK | Q_NO_PERMS })).toBeNull();
  });
});
