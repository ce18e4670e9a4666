/**
 * VT-d second-stage (`dma_pte`) descriptors as Linux writes them (drivers/iommu/generic_pt/fmt/
 * vtdss.h used by drivers/iommu/intel/iommu.c; legacy helpers in drivers/iommu/intel/iommu.h).
 * Pure functions: AGAW/level geometry, descriptor encode/decode, prot translation, dirty bit,
 * root-pointer values and software-bit positions.
 *
 * Levels use generic_pt numbering (0 = 4 KiB leaves; top level 2, 3 or 4 for 3-, 4- and 5-level
 * tables). VT-d's own level is this plus one. Descriptors are {@link X86PteBits} halves.
 */

import { ErrnoError } from '@iommu-ts/base';
import { IOMMU_READ, IOMMU_WRITE } from '../prot.js';
import {
  X86_PT_MAX_LEAF_LEVEL,
  X86_PT_MAX_OA_BITS,
  X86_PT_PGSIZE_BITMAP,
  type X86PteBits,
  x86PtDecodeOa,
  x86PtLevelShift,
  x86PtOaHi,
  x86PtOaLo,
} from './x86-common.js';

/** R, read (bit 0). */
export const VTD_SL_PTE_R = 0x1;
/** W, write (bit 1). */
export const VTD_SL_PTE_W = 0x2;
/** X, execute (bit 2; only with SSEE; Linux never sets it). */
export const VTD_SL_PTE_X = 0x4;
/** PS, large page (bit 7): set in 2 MiB and 1 GiB leaves. */
export const VTD_SL_PTE_PS = 0x80;
/** A, accessed (bit 8; written by hardware when SSADE = 1). */
export const VTD_SL_PTE_A = 0x100;
/** D, dirty (bit 9; written by hardware on writes when SSADE = 1). */
export const VTD_SL_PTE_D = 0x200;
/** SNP, snoop (bit 11): set on leaves when the domain forces snooping. */
export const VTD_SL_PTE_SNP = 0x800;

/** Bits of a table (non-leaf) descriptor other than its address: R | W. */
export const VTD_SL_TABLE_ATTRS = VTD_SL_PTE_R | VTD_SL_PTE_W;

/** Domain-wide options that change how leaves are written (generic_pt vtdss features). */
export interface VtdSlLeafOptions {
  /**
   * Set SNP on every leaf (feature VTDSS_FORCE_COHERENCE, the Intel driver's `force_snooping` /
   * legacy `set_pte_snp`). Default false.
   */
  readonly forceSnoop?: boolean;
  /**
   * Refuse read-only mappings (feature VTDSS_FORCE_WRITEABLE, nesting parents, erratum
   * ERRATA_772415_SPR17). Default false.
   */
  readonly forceWriteable?: boolean;
}

/**
 * Leaf attribute bits (everything but PS and the address) for `prot`: R if `IOMMU_READ`, W if
 * `IOMMU_WRITE`, SNP if the domain forces snooping. CACHE, NOEXEC, MMIO and PRIV are ignored, as in
 * Linux (IOMMU_CACHE does not select SNP; only the domain setting does).
 * @param prot - `IOMMU_*` flags
 * @param options - domain-wide leaf options
 * @returns the bits as halves (the high half is always 0)
 * @throws ErrnoError EINVAL when neither READ nor WRITE is set, or for a read-only mapping with
 * `forceWriteable`
 */
export function vtdSlProtToAttrs(prot: number, options: VtdSlLeafOptions = {}): X86PteBits {
  if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) {
    throw new ErrnoError('EINVAL', 'VT-d second stage: mapping needs IOMMU_READ or IOMMU_WRITE');
  }
  let lo = 0;
  if (prot & IOMMU_READ) lo |= VTD_SL_PTE_R;
  if (prot & IOMMU_WRITE) lo |= VTD_SL_PTE_W;
  if (options.forceSnoop === true) lo |= VTD_SL_PTE_SNP;
  if (options.forceWriteable === true && (prot & IOMMU_WRITE) === 0) {
    throw new ErrnoError('EINVAL', 'VT-d second stage: read-only mapping refused on a nesting parent');
  }
  return { lo, hi: 0 };
}

/**
 * Encode a leaf: `attrs | PS (levels 1, 2) | pa`.
 * @param pa - output address aligned to the level's size, below 2^52
 * @param level - 0 (4 KiB), 1 (2 MiB) or 2 (1 GiB)
 * @param attrs - from {@link vtdSlProtToAttrs}
 */
export function vtdSlMakeLeaf(pa: number, level: number, attrs: X86PteBits): X86PteBits {
  let lo = x86PtOaLo(pa) | attrs.lo;
  if (level > 0) lo |= VTD_SL_PTE_PS;
  return { lo: lo >>> 0, hi: (x86PtOaHi(pa) | attrs.hi) >>> 0 };
}

/**
 * Encode a table pointer: `tablePa | R | W`.
 * @param tablePa - physical address of the next-level table, 4 KiB aligned, below 2^52
 */
export function vtdSlMakeTable(tablePa: number): X86PteBits {
  return { lo: (x86PtOaLo(tablePa) | VTD_SL_TABLE_ATTRS) >>> 0, hi: x86PtOaHi(tablePa) };
}

/** What a descriptor is: 0 = empty (all zero), 1 = table pointer, 2 = leaf. */
export type VtdSlEntryKind = 0 | 1 | 2;

/**
 * Classify a descriptor (generic_pt vtdss): empty iff the whole 64-bit value is 0; a leaf at
 * level 0 or at levels 1..2 with PS; otherwise a table pointer.
 * @param lo - bits 31..0
 * @param hi - bits 63..32
 * @param level - generic_pt level of the slot
 * @remarks Hardware and the legacy `dma_pte_present` treat an entry as present iff R or W is set;
 * Linux only ever writes zero or an entry with R or W, so the two agree on tables it builds.
 */
export function vtdSlEntryKind(lo: number, hi: number, level: number): VtdSlEntryKind {
  if (lo === 0 && hi === 0) return 0;
  if (level === 0 || (level <= X86_PT_MAX_LEAF_LEVEL && (lo & VTD_SL_PTE_PS) !== 0)) return 2;
  return 1;
}

/**
 * Whether hardware would consider the entry present (`dma_pte_present`: R or W set).
 * @param lo - bits 31..0
 */
export function vtdSlHwPresent(lo: number): boolean {
  return (lo & (VTD_SL_PTE_R | VTD_SL_PTE_W)) !== 0;
}

/**
 * Output address of a leaf or table descriptor (bits 51:12, bits below the leaf size cleared).
 * @param lo - bits 31..0
 * @param hi - bits 63..32
 * @param level - the slot's level for a leaf; 0 for a table pointer
 */
export function vtdSlEntryOa(lo: number, hi: number, level: number): number {
  return x86PtDecodeOa(lo, hi, level);
}

/** Decoded view of a second-stage leaf. */
export interface VtdSlLeafInfo {
  /** Output address of the start of the leaf. */
  readonly oa: number;
  /** log2 of the leaf size (12, 21 or 30). */
  readonly sizeShift: number;
  /** R set. */
  readonly read: boolean;
  /** W set. */
  readonly write: boolean;
  /** SNP set. */
  readonly snoop: boolean;
  /** A set. */
  readonly accessed: boolean;
  /** D set. */
  readonly dirty: boolean;
}

/**
 * Decode a leaf descriptor.
 * @param lo - bits 31..0
 * @param hi - bits 63..32
 * @param level - 0, 1 or 2
 */
export function vtdSlDecodeLeaf(lo: number, hi: number, level: number): VtdSlLeafInfo {
  return {
    oa: x86PtDecodeOa(lo, hi, level),
    sizeShift: x86PtLevelShift(level),
    read: (lo & VTD_SL_PTE_R) !== 0,
    write: (lo & VTD_SL_PTE_W) !== 0,
    snoop: (lo & VTD_SL_PTE_SNP) !== 0,
    accessed: (lo & VTD_SL_PTE_A) !== 0,
    dirty: (lo & VTD_SL_PTE_D) !== 0,
  };
}

/**
 * Whether a leaf is write-dirty (generic_pt vtdss `entry_is_write_dirty`: D, bit 9).
 * @param lo - bits 31..0
 */
export function vtdSlIsDirty(lo: number): boolean {
  return (lo & VTD_SL_PTE_D) !== 0;
}

/**
 * The low half with D cleared (vtdss `entry_make_write_clean`); the high half is unchanged.
 * @param lo - bits 31..0
 */
export function vtdSlMakeClean(lo: number): number {
  return (lo & ~VTD_SL_PTE_D) >>> 0;
}

/**
 * The low half with D set (vtdss `entry_make_write_dirty`, used by tests in place of hardware).
 * @param lo - bits 31..0
 */
export function vtdSlMakeDirty(lo: number): number {
  return (lo | VTD_SL_PTE_D) >>> 0;
}

/**
 * Descriptor bit used for generic_pt software bit `n`: 0 → bit 10, 1..9 → bits 52..60,
 * 10 → bit 63.
 * @param n - software bit number, 0..10
 * @throws RangeError outside 0..10
 */
export function vtdSlSwBitPosition(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 10) throw new RangeError(`VT-d SL has no software bit ${n}`);
  if (n === 0) return 10;
  if (n === 10) return 63;
  return 52 + (n - 1);
}

/** Geometry of a VT-d second-stage table. */
export interface VtdSlGeometry {
  /** AGAW / AW encoding: 1 = 39-bit 3-level, 2 = 48-bit 4-level, 3 = 57-bit 5-level. */
  readonly agaw: 1 | 2 | 3;
  /** Number of levels: `agaw + 2`. */
  readonly levels: 3 | 4 | 5;
  /** generic_pt top level: `levels - 1`. */
  readonly topLevel: 2 | 3 | 4;
  /** Usable input width in bits: min(AGAW width, MGAW). */
  readonly vaBits: number;
  /** Last usable IOVA: 2^vaBits - 1. */
  readonly apertureEnd: bigint;
}

/**
 * Input width of an AGAW value: `30 + 9 * agaw` (39, 48, 57).
 * @param agaw - 0..4
 */
export function vtdAgawToWidth(agaw: number): number {
  return 30 + 9 * agaw;
}

/**
 * Smallest AGAW covering `widthBits` (`width_to_agaw`: ceil((w - 30) / 9)).
 * @param widthBits - address width in bits
 */
export function vtdWidthToAgaw(widthBits: number): number {
  return Math.ceil((widthBits - 30) / 9);
}

/**
 * Geometry for a level count.
 * @param levels - 3, 4 or 5
 * @param vaBits - usable width, default the full AGAW width (39/48/57); must exceed the width of
 * the level below the top
 * @throws ErrnoError EOPNOTSUPP for another level count (generic_pt vtdss accepts top level 2..4),
 * EINVAL for an impossible width
 */
export function vtdSlGeometry(levels: number, vaBits?: number): VtdSlGeometry {
  if (levels !== 3 && levels !== 4 && levels !== 5) {
    throw new ErrnoError('EOPNOTSUPP', `VT-d second stage has 3, 4 or 5 levels, not ${levels}`);
  }
  const agaw = (levels - 2) as 1 | 2 | 3;
  const full = vtdAgawToWidth(agaw);
  const va = vaBits ?? full;
  if (!Number.isInteger(va) || va > full || va <= x86PtLevelShift(levels - 2)) {
    throw new ErrnoError('EINVAL', `VT-d second stage: width ${va} does not fit ${levels} levels`);
  }
  return {
    agaw,
    levels,
    topLevel: (levels - 1) as 2 | 3 | 4,
    vaBits: va,
    apertureEnd: (1n << BigInt(va)) - 1n,
  };
}

/**
 * Geometry the Intel driver derives from CAP.MGAW and CAP.SAGAW (first matching row, as the
 * digest of drivers/iommu/intel/iommu.c states it; generic_pt top level = levels - 1):
 *
 * - `MGAW > 48 && SAGAW >= 0b01000`: top level 4, width `min(57, MGAW)`;
 * - `MGAW > 39 && SAGAW >= 0b00100`: top level `3 + ffs(SAGAW >> 3)`, width `min(48, MGAW)`;
 * - `MGAW > 30 && SAGAW >= 0b00010`: top level `2 + ffs(SAGAW >> 2)`, width `min(39, MGAW)`.
 *
 * `ffs` is 1-based (0 for no bit set); the top level is capped at 4.
 * @param mgawBits - maximum guest address width in bits (CAP.MGAW + 1)
 * @param sagaw - the 5-bit CAP.SAGAW field (bit i set ⇔ AGAW i supported)
 * @throws ErrnoError EOPNOTSUPP when no row matches (init fails)
 */
export function vtdSlGeometryFromCaps(mgawBits: number, sagaw: number): VtdSlGeometry {
  const ffs = (x: number): number => (x === 0 ? 0 : 32 - Math.clz32(x & -x));
  let top: number;
  let va: number;
  if (mgawBits > 48 && sagaw >= 0b01000) {
    top = 4;
    va = Math.min(57, mgawBits);
  } else if (mgawBits > 39 && sagaw >= 0b00100) {
    top = 3 + ffs(sagaw >> 3);
    va = Math.min(48, mgawBits);
  } else if (mgawBits > 30 && sagaw >= 0b00010) {
    top = 2 + ffs(sagaw >> 2);
    va = Math.min(39, mgawBits);
  } else {
    throw new ErrnoError('EOPNOTSUPP', `VT-d: no second-stage geometry for MGAW ${mgawBits}, SAGAW ${sagaw}`);
  }
  if (top > 4) top = 4;
  return vtdSlGeometry(top + 1, va);
}

/**
 * Page sizes for a second-stage table: 4 KiB always, 2 MiB with CAP.SLLPS bit 0, 1 GiB with bit 1.
 * @param sllps - the 4-bit CAP.SLLPS field (bits 37:34 shifted down)
 * @returns a pgsize_bitmap number
 */
export function vtdSlPgsizeFromSllps(sllps: number): number {
  let bitmap = 0x1000;
  if (sllps & 1) bitmap += 0x20_0000;
  if (sllps & 2) bitmap += 0x4000_0000;
  return bitmap;
}

/**
 * Page sizes usable by the format, restricted to the caller's request.
 * @param requested - the caller's pgsize_bitmap
 * @returns the subset of 4K | 2M | 1G present in `requested`
 */
export function vtdSlPgsizeBitmap(requested: number): number {
  let out = 0;
  for (const size of [0x1000, 0x20_0000, 0x4000_0000]) {
    if (Math.floor(requested / size) % 2 === 1) out += size;
  }
  return (out & X86_PT_PGSIZE_BITMAP) >>> 0;
}

/**
 * Whether an output address can be mapped: below 2^min(oasBits, 52).
 * @param pa - the physical address
 * @param oasBits - configured output size in bits
 */
export function vtdSlOaFits(pa: number, oasBits: number): boolean {
  return pa >= 0 && pa < 2 ** Math.min(oasBits, X86_PT_MAX_OA_BITS);
}

/** Values a driver programs to point a VT-d unit at a second-stage table. */
export interface VtdSlHwInfo {
  /** SSPTPTR/SLPTPTR: physical address of the top table (context entry bits 63:12, PASID qw0 63:12). */
  readonly ssptptr: number;
  /** AW field (context entry bits 66:64, PASID entry bits 4:2): `levels - 2` (1, 2, 3). */
  readonly aw: 1 | 2 | 3;
  /** The CAP.SAGAW bit this AW needs: `1 << aw`. */
  readonly sagawBit: number;
}

/**
 * Root-pointer values for a table (generic_pt vtdss hw_info: `ssptptr`, `aw = top_level - 1`).
 * @param rootPa - physical address of the top table, 4 KiB aligned
 * @param levels - 3, 4 or 5
 */
export function vtdSlHwInfo(rootPa: number, levels: 3 | 4 | 5): VtdSlHwInfo {
  const aw = (levels - 2) as 1 | 2 | 3;
  return { ssptptr: rootPa, aw, sagawBit: 1 << aw };
}
