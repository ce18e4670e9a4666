/**
 * ARM LPAE long-descriptor formats: ARM_32_LPAE_S1, ARM_32_LPAE_S2, ARM_64_LPAE_S1,
 * ARM_64_LPAE_S2 (drivers/iommu/io-pgtable-arm.c, io-pgtable-arm.h).
 *
 * @remarks
 * 4K, 16K and 64K granules; 52-bit input/output addresses with the 64K granule; stage-2
 * start-level concatenation where the architecture makes it mandatory; quirks ARM_NS, ARM_TTBR1,
 * ARM_OUTER_WBWA, ARM_HD (stage 1), ARM_S2FWB (stage 2), NO_WARN. The CPU page size used for the
 * granule choice is 4 KiB.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { IoPgtableCfg } from '../cfg.js';
import {
  IoPgtableFmt,
  type IoPgtableFormat,
  type PtDecodedEntry,
  type PtDirtyOps,
  PtEntryKind,
  type PtFormatInstance,
  type PtLeafTemplate,
  type PtLevel,
  type PtPolicy,
} from '../format.js';
import { IOMMU_CACHE, IOMMU_MMIO, IOMMU_NOEXEC, IOMMU_PRIV, IOMMU_READ, IOMMU_WRITE } from '../prot.js';
import {
  IO_PGTABLE_QUIRK_ARM_HD,
  IO_PGTABLE_QUIRK_ARM_NS,
  IO_PGTABLE_QUIRK_ARM_OUTER_WBWA,
  IO_PGTABLE_QUIRK_ARM_S2FWB,
  IO_PGTABLE_QUIRK_ARM_TTBR1,
  IO_PGTABLE_QUIRK_NO_WARN,
} from '../quirks.js';
import { ARM_LPAE_MAIR, armLpaeS1Tcr, armLpaeS2Vtcr } from './arm-lpae-regs.js';

/** LPAE descriptor bits, as masks of the low (`lo`, bits 31:0) or high (`hi`, bits 63:32) word. */
export const ArmLpaePte = {
  /** bits 1:0 = 0b11: table (levels 0–2) or page (level 3). */
  TYPE_TABLE: 0x3,
  /** bits 1:0 = 0b11 at level 3. */
  TYPE_PAGE: 0x3,
  /** bits 1:0 = 0b01: block (levels 0–2). */
  TYPE_BLOCK: 0x1,
  /** lo: stage-1 AttrIndx field, bits 4:2. */
  ATTRINDX_SHIFT: 2,
  /** lo: NS, bit 5. */
  NS: 1 << 5,
  /** lo: AP[1] unprivileged, bit 6. */
  AP_UNPRIV: 1 << 6,
  /** lo: AP[2] read-only, bit 7. */
  AP_RDONLY: 1 << 7,
  /** lo: S2AP read, bit 6. */
  HAP_READ: 1 << 6,
  /** lo: S2AP write, bit 7. */
  HAP_WRITE: 1 << 7,
  /** lo: SH outer shareable (0b10 at 9:8). */
  SH_OS: 2 << 8,
  /** lo: SH inner shareable (0b11 at 9:8). */
  SH_IS: 3 << 8,
  /** lo: access flag, bit 10. */
  AF: 1 << 10,
  /** lo: not-global, bit 11. */
  NG: 1 << 11,
  /** lo: stage-2 MemAttr Device-nGnRE (0b0001 at 5:2). */
  MEMATTR_DEV: 0x1 << 2,
  /** lo: stage-2 MemAttr FWB write-back (0b0110 at 5:2). */
  MEMATTR_FWB_WB: 0x6 << 2,
  /** lo: stage-2 MemAttr outer/inner write-back (0b1111 at 5:2). */
  MEMATTR_OIWB: 0xf << 2,
  /** lo: stage-2 MemAttr non-cacheable (0b0101 at 5:2). */
  MEMATTR_NC: 0x5 << 2,
  /** hi: DBM, bit 51. */
  HI_DBM: 1 << 19,
  /** hi: XN pair, bits 54:53. */
  HI_XN: 3 << 21,
  /** hi: software bit SW_SYNC, bit 55 (table PTE cleaned, non-coherent walkers). */
  HI_SW_SYNC: 1 << 23,
  /** hi: NSTABLE, bit 63. */
  HI_NSTABLE: 1 << 31,
} as const;

const TWO32 = 4294967296;
const PAGE_SIZE = 4096;

/** Which LPAE variant a {@link IoPgtableFormat} object is. */
interface LpaeKind {
  readonly stage: 1 | 2;
  readonly bits: 32 | 64;
}

/** The result of the granule and geometry computation (`arm_lpae_alloc_pgtable`). */
export interface ArmLpaeGeometry {
  /** Granule in bytes. */
  readonly granule: number;
  /** log2 granule. */
  readonly pgShift: number;
  /** Index bits per (non-top) level. */
  readonly bitsPerLevel: number;
  /** ARM level of the top table (0..3). */
  readonly startLevel: number;
  /** log2 of the entries of the top table. */
  readonly pgdBits: number;
}

/**
 * Narrow `cfg.pgsizeBitmap`, `ias` and `oas` as `arm_lpae_restrict_pgsizes` does.
 * @param cfg - updated in place
 * @returns the chosen granule in bytes, 0 when none fits
 */
export function armLpaeRestrictPgsizes(cfg: IoPgtableCfg): number {
  const bm = cfg.pgsizeBitmap;
  const page = BigInt(PAGE_SIZE);
  let granule = 0n;
  if (bm & page) granule = page;
  else if (bm & (page - 1n)) {
    let b = bm & (page - 1n);
    granule = 1n;
    while (b > 1n) {
      b >>= 1n;
      granule <<= 1n;
    }
  } else if (bm & ~(page - 1n)) {
    const b = bm & ~(page - 1n);
    granule = b & -b;
  }
  let sizes = 0n;
  let maxAddr = 48;
  if (granule === 4096n) sizes = 0x1000n | 0x200000n | 0x40000000n;
  else if (granule === 16384n) sizes = 0x4000n | 0x2000000n;
  else if (granule === 65536n) {
    maxAddr = 52;
    sizes = 0x10000n | 0x20000000n;
    if (cfg.oas > 48) sizes |= 1n << 42n;
  }
  cfg.pgsizeBitmap &= sizes;
  cfg.ias = Math.min(cfg.ias, maxAddr);
  cfg.oas = Math.min(cfg.oas, maxAddr);
  return Number(granule);
}

/**
 * Compute the geometry (`arm_lpae_alloc_pgtable`), after {@link armLpaeRestrictPgsizes}.
 * @param cfg - the narrowed configuration
 * @throws ErrnoError `EINVAL` when no 4K/16K/64K size is left or an address size exceeds 52 bits
 */
export function armLpaeGeometry(cfg: IoPgtableCfg): ArmLpaeGeometry {
  armLpaeRestrictPgsizes(cfg);
  const bm = cfg.pgsizeBitmap;
  if ((bm & (0x1000n | 0x4000n | 0x10000n)) === 0n)
    throw new ErrnoError('EINVAL', 'no usable granule in pgsize_bitmap');
  if (cfg.ias > 52 || cfg.oas > 52) throw new ErrnoError('EINVAL', 'address size above 52 bits');
  let pgShift = 0;
  while (((bm >> BigInt(pgShift)) & 1n) === 0n) pgShift++;
  const bpl = pgShift - 3;
  const vaBits = cfg.ias - pgShift;
  const levels = Math.ceil(vaBits / bpl);
  return {
    granule: 2 ** pgShift,
    pgShift,
    bitsPerLevel: bpl,
    startLevel: 4 - levels,
    pgdBits: vaBits - bpl * (levels - 1),
  };
}

/**
 * Apply the stage-2 concatenation rule (`arm_lpae_concat_mandatory`).
 * @param g - the stage-1-style geometry
 * @param ias - input bits
 * @param oas - output bits
 * @throws ErrnoError `EINVAL` when concatenation is mandatory but the top table has more than 16 entries
 */
export function armLpaeS2Concat(g: ArmLpaeGeometry, ias: number, oas: number): ArmLpaeGeometry {
  const s = g.startLevel;
  const mandatory =
    (g.granule === 16384 && s === 0 && (oas === 48 || ias === 48)) ||
    (g.granule === 4096 && s === 0 && (oas === 40 || oas === 42)) ||
    (g.granule === 16384 && s === 1 && oas === 40);
  if (!mandatory) return g;
  if (g.pgdBits > 4) throw new ErrnoError('EINVAL', 'concatenation needs more than 16 tables');
  return { ...g, pgdBits: g.pgdBits + g.bitsPerLevel, startLevel: s + 1 };
}

const LPAE_POLICY: PtPolicy = {
  mapPageByPage: false,
  unmapPageByPage: false,
  tlbAddPageWithoutGather: false,
  tlbAddPageForTables: true,
  existingLeafErrno: 'EEXIST',
  mapOverTable: 'free',
};

const LPAE_DIRTY: PtDirtyOps = {
  isDirty: (lo, hi) => (hi & ArmLpaePte.HI_DBM) !== 0 && (lo & ArmLpaePte.AP_RDONLY) === 0,
  clearDirty: (words, wi) => {
    words[wi] = (words[wi] as number) | ArmLpaePte.AP_RDONLY;
  },
  holes: 'abort',
};

/**
 * Leaf attribute bits for `prot` (`arm_lpae_prot_to_pte`), without type and address.
 * @param stage - 1 or 2
 * @param quirks - cfg quirks
 * @param prot - `IOMMU_*` flags
 * @returns `{ lo, hi }` halves of the attribute bits
 */
export function armLpaeProtToPte(stage: 1 | 2, quirks: number, prot: number): PtLeafTemplate {
  const P = ArmLpaePte;
  let lo = 0;
  let hi = 0;
  if (stage === 1) {
    lo = P.NG;
    if ((prot & IOMMU_WRITE) === 0 && (prot & IOMMU_READ) !== 0) lo |= P.AP_RDONLY;
    else if (quirks & IO_PGTABLE_QUIRK_ARM_HD) hi |= P.HI_DBM;
    if ((prot & IOMMU_PRIV) === 0) lo |= P.AP_UNPRIV;
    if (prot & IOMMU_MMIO) lo |= 2 << P.ATTRINDX_SHIFT;
    else if (prot & IOMMU_CACHE) lo |= 1 << P.ATTRINDX_SHIFT;
  } else {
    if (prot & IOMMU_READ) lo |= P.HAP_READ;
    if (prot & IOMMU_WRITE) lo |= P.HAP_WRITE;
    if (prot & IOMMU_MMIO) lo |= P.MEMATTR_DEV;
    else if (prot & IOMMU_CACHE)
      lo |= quirks & IO_PGTABLE_QUIRK_ARM_S2FWB ? P.MEMATTR_FWB_WB : P.MEMATTR_OIWB;
    else lo |= P.MEMATTR_NC;
  }
  lo |= prot & IOMMU_CACHE ? P.SH_IS : P.SH_OS;
  if (prot & IOMMU_NOEXEC) hi |= P.HI_XN;
  if (quirks & IO_PGTABLE_QUIRK_ARM_NS) lo |= P.NS;
  lo |= P.AF;
  return { lo, hi };
}

/** Build the configured format for an LPAE variant. */
function setupLpae(kind: LpaeKind, cfg: IoPgtableCfg): PtFormatInstance {
  if (kind.bits === 32) {
    if (kind.stage === 1 ? cfg.ias > 32 || cfg.oas > 40 : cfg.ias > 40 || cfg.oas > 40) {
      throw new ErrnoError('EINVAL', 'address size too large for 32-bit LPAE');
    }
    cfg.pgsizeBitmap &= 0x1000n | 0x200000n | 0x40000000n;
  }
  let g = armLpaeGeometry(cfg);
  const quirks = cfg.quirks;
  const ttbr1 = kind.stage === 1 && (quirks & IO_PGTABLE_QUIRK_ARM_TTBR1) !== 0;
  // Register fields first: they validate oas and the OUTER_WBWA/coherency combination.
  let regs: (rootPa: number) => void;
  if (kind.stage === 1) {
    const tcr = armLpaeS1Tcr(
      g.granule,
      cfg.ias,
      cfg.oas,
      cfg.coherentWalk,
      (quirks & IO_PGTABLE_QUIRK_ARM_OUTER_WBWA) !== 0,
      ttbr1,
    );
    regs = (rootPa) => {
      cfg.armLpaeS1Cfg = { ttbr: BigInt(rootPa), tcr, mair: ARM_LPAE_MAIR };
    };
  } else {
    g = armLpaeS2Concat(g, cfg.ias, cfg.oas);
    const vtcr = armLpaeS2Vtcr(g.granule, cfg.ias, cfg.oas, cfg.coherentWalk, g.startLevel);
    regs = (rootPa) => {
      cfg.armLpaeS2Cfg = { vttbr: BigInt(rootPa), vtcr };
    };
  }
  const { granule, pgShift, bitsPerLevel: bpl, startLevel, pgdBits } = g;
  const levels: PtLevel[] = [];
  for (let lvl = startLevel; lvl < 4; lvl++) {
    const shift = (4 - lvl) * bpl + 3;
    const top = lvl === startLevel;
    const indexBits = top ? pgdBits : bpl;
    levels.push({
      label: lvl,
      shift,
      indexBits,
      runBits: Math.min(indexBits, bpl),
      tableBytes: top ? Math.max(8 * 2 ** pgdBits, 64) : granule,
      leafSizesLg2: lvl === 0 ? [] : [shift],
    });
  }
  const last = levels.length - 1;
  const is64k = granule === 65536;
  const tableHi =
    (kind.stage === 1 && quirks & IO_PGTABLE_QUIRK_ARM_NS ? ArmLpaePte.HI_NSTABLE : 0) |
    (cfg.coherentWalk ? 0 : ArmLpaePte.HI_SW_SYNC);
  const stage = kind.stage;

  const decodePa = is64k
    ? (lo: number, hi: number): number =>
        ((hi & 0xffff) + (((lo >>> 12) & 0xf) << 16)) * TWO32 + ((lo & 0xffff0000) >>> 0)
    : (lo: number, hi: number): number => (hi & 0xffff) * TWO32 + ((lo & 0xfffff000) >>> 0);

  const writeEncoded = (words: Uint32Array, wi: number, pa: number, attrLo: number, attrHi: number): void => {
    const paHi = Math.floor(pa / TWO32);
    words[wi] = attrLo | (pa & 0xfffff000) | (((paHi >>> 16) & 0xf) << 12);
    words[wi + 1] = attrHi | (paHi & 0xffff);
  };

  const inst: PtFormatInstance = {
    entryWords: 2,
    levels,
    vaBits: cfg.ias,
    oaBits: cfg.oas,
    upperIova: ttbr1 ? 'ones' : 'zero',
    pgsizeBitmap: cfg.pgsizeBitmap,
    granule,
    policy: LPAE_POLICY,
    ...(kind.stage === 1 && kind.bits === 64 ? { dirty: LPAE_DIRTY } : {}),
    // 4K/16K granules: the address is plain bits 47:12; the 64K granule moves PA bits 51:48.
    ...(is64k
      ? {}
      : {
          fastCodec: {
            kindBitsLo: 0x3,
            tableAddrLo: 0xfffff000,
            tableAddrHi: 0xffff,
            leafAddrLo: levels.map(() => 0xfffff000),
            leafAddrHi: levels.map(() => 0xffff),
          },
        }),
    classify(lo, hi, depth) {
      if (lo === 0 && hi === 0) return PtEntryKind.EMPTY;
      const type = lo & 3;
      if (depth === last) return type === 3 ? PtEntryKind.LEAF : PtEntryKind.INVALID;
      return type === 3 ? PtEntryKind.TABLE : type === 1 ? PtEntryKind.LEAF : PtEntryKind.INVALID;
    },
    tablePa: decodePa,
    writeTable(words, wi, tablePa) {
      writeEncoded(words, wi, tablePa, ArmLpaePte.TYPE_TABLE, tableHi);
    },
    leafTemplate(prot, depth) {
      const t = armLpaeProtToPte(stage, quirks, prot);
      return { lo: t.lo | (depth === last ? ArmLpaePte.TYPE_PAGE : ArmLpaePte.TYPE_BLOCK), hi: t.hi };
    },
    writeLeaves(words, wi, pa, _depth, sizeLg2, count, t) {
      const size = sizeLg2 < 31 ? 1 << sizeLg2 : 2 ** sizeLg2;
      const tlo = t.lo;
      const thi = t.hi;
      if (!is64k && sizeLg2 < 31 && pa + count * size <= TWO32) {
        // Fast path: the whole run is below 4 GiB; int32 arithmetic on the address.
        let a = pa | 0;
        const end = wi + 2 * count;
        for (let w = wi; w < end; w += 2) {
          words[w] = tlo | a;
          words[w + 1] = thi;
          a = (a + size) | 0;
        }
        return;
      }
      for (let k = 0; k < count; k++) writeEncoded(words, wi + 2 * k, pa + k * size, tlo, thi);
    },
    leafPa: decodePa,
    leafSizeLg2(_lo, _hi, depth) {
      return (levels[depth] as PtLevel).shift;
    },
    decode(lo, hi, depth): PtDecodedEntry {
      const k = inst.classify(lo, hi, depth);
      if (k === PtEntryKind.EMPTY || k === PtEntryKind.INVALID) return { kind: k, attrs: {} };
      if (k === PtEntryKind.TABLE) {
        const attrs: Record<string, number> = {};
        if (hi & ArmLpaePte.HI_NSTABLE) attrs['NSTable'] = 1;
        if (hi & ArmLpaePte.HI_SW_SYNC) attrs['SW_SYNC'] = 1;
        return { kind: k, pa: decodePa(lo, hi), attrs };
      }
      const attrs: Record<string, number | string> = {};
      if (stage === 1) {
        attrs['AttrIndx'] = (lo >>> 2) & 7;
        attrs['NS'] = (lo >>> 5) & 1;
        attrs['AP'] = (lo >>> 6) & 3;
        attrs['nG'] = (lo >>> 11) & 1;
        attrs['DBM'] = (hi >>> 19) & 1;
      } else {
        attrs['MemAttr'] = (lo >>> 2) & 0xf;
        attrs['S2AP'] = (lo >>> 6) & 3;
      }
      attrs['SH'] = (lo >>> 8) & 3;
      attrs['AF'] = (lo >>> 10) & 1;
      attrs['XN'] = (hi >>> 21) & 3;
      attrs['type'] = depth === last ? 'page' : 'block';
      return { kind: k, pa: decodePa(lo, hi), sizeLg2: (levels[depth] as PtLevel).shift, attrs };
    },
    writeRegisters(_cfg, rootPa) {
      regs(rootPa);
    },
  };
  void pgShift;
  return inst;
}

function lpaeFormat(name: string, fmt: number, kind: LpaeKind, quirksAllowed: number): IoPgtableFormat {
  return {
    name,
    fmt,
    quirksAllowed,
    setup: (cfg) => setupLpae(kind, cfg),
  };
}

const S1_QUIRKS =
  IO_PGTABLE_QUIRK_ARM_NS |
  IO_PGTABLE_QUIRK_ARM_TTBR1 |
  IO_PGTABLE_QUIRK_ARM_OUTER_WBWA |
  IO_PGTABLE_QUIRK_ARM_HD |
  IO_PGTABLE_QUIRK_NO_WARN;
const S2_QUIRKS = IO_PGTABLE_QUIRK_ARM_S2FWB | IO_PGTABLE_QUIRK_NO_WARN;

/** ARM 64-bit LPAE stage 1 (`ARM_64_LPAE_S1`, `arm_64_lpae_alloc_pgtable_s1`). */
export const armLpae64S1Format: IoPgtableFormat = lpaeFormat(
  'ARM_64_LPAE_S1',
  IoPgtableFmt.ARM_64_LPAE_S1,
  { stage: 1, bits: 64 },
  S1_QUIRKS,
);
/** ARM 64-bit LPAE stage 2 (`ARM_64_LPAE_S2`, `arm_64_lpae_alloc_pgtable_s2`). */
export const armLpae64S2Format: IoPgtableFormat = lpaeFormat(
  'ARM_64_LPAE_S2',
  IoPgtableFmt.ARM_64_LPAE_S2,
  { stage: 2, bits: 64 },
  S2_QUIRKS,
);
/** ARM 32-bit LPAE stage 1 (`ARM_32_LPAE_S1`): ias ≤ 32, oas ≤ 40, sizes 4K/2M/1G. */
export const armLpae32S1Format: IoPgtableFormat = lpaeFormat(
  'ARM_32_LPAE_S1',
  IoPgtableFmt.ARM_32_LPAE_S1,
  { stage: 1, bits: 32 },
  S1_QUIRKS,
);
/** ARM 32-bit LPAE stage 2 (`ARM_32_LPAE_S2`): ias ≤ 40, oas ≤ 40, sizes 4K/2M/1G. */
export const armLpae32S2Format: IoPgtableFormat = lpaeFormat(
  'ARM_32_LPAE_S2',
  IoPgtableFmt.ARM_32_LPAE_S2,
  { stage: 2, bits: 32 },
  S2_QUIRKS,
);
