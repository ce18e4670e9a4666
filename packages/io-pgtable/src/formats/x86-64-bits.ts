/**
 * x86-64 4/5-level paging descriptors, as Linux writes them for VT-d first-stage tables
 * (drivers/iommu/generic_pt/fmt/x86_64.h, used by drivers/iommu/intel/iommu.c) and as the CPU
 * walks them. Pure functions: geometry, descriptor encode/decode, prot translation, canonical
 * address checks, the root-pointer values and software-bit positions.
 *
 * Levels use generic_pt numbering (0 = 4 KiB leaves; top level 3 for 4-level, 4 for 5-level).
 * Descriptors are {@link X86PteBits} halves.
 */

import { ErrnoError } from '@iommu-ts/base';
import { IOMMU_MMIO, IOMMU_NOEXEC, IOMMU_PRIV, IOMMU_READ, IOMMU_WRITE } from '../prot.js';
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

/** P, present (bit 0). */
export const X86_64_PTE_P = 0x1;
/** R/W, writable (bit 1); ANDed over all levels by the walker. */
export const X86_64_PTE_RW = 0x2;
/** U/S, user accessible (bit 2); ANDed over all levels. */
export const X86_64_PTE_US = 0x4;
/** PWT, page write-through (bit 3). */
export const X86_64_PTE_PWT = 0x8;
/** PCD, page cache disable (bit 4). */
export const X86_64_PTE_PCD = 0x10;
/** A, accessed (bit 5). */
export const X86_64_PTE_A = 0x20;
/** D, dirty (bit 6; leaves only). */
export const X86_64_PTE_D = 0x40;
/** PS, page size (bit 7): a leaf in a PDE (2 MiB) or PDPTE (1 GiB); PAT in a 4 KiB PTE. */
export const X86_64_PTE_PS = 0x80;
/** PAT bit of a 4 KiB PTE (bit 7, same position as PS). */
export const X86_64_PTE_PAT_4K = 0x80;
/** G, global (bit 8; leaves only). */
export const X86_64_PTE_G = 0x100;
/** PAT bit of a 2 MiB / 1 GiB leaf (bit 12). */
export const X86_64_PTE_PAT_LARGE = 0x1000;
/** XD, execute disable: descriptor bit 63, i.e. bit 31 of the high half. */
export const X86_64_PTE_XD_HI = 0x8000_0000;

/** Bits of a table (non-leaf) descriptor other than its address: P | R/W | U/S | A (0x27). */
export const X86_64_TABLE_ATTRS = X86_64_PTE_P | X86_64_PTE_RW | X86_64_PTE_US | X86_64_PTE_A;

/**
 * How IOMMU prot flags become leaf bits.
 *
 * - `'iommu'` (default): exactly Linux's IOMMU encoding (generic_pt x86_64 `set_prot`): U/S and A
 *   always, R/W and D when `IOMMU_WRITE`; READ, CACHE, NOEXEC, MMIO and PRIV are ignored.
 * - `'cpu'`: the same plus CPU-page-table meanings for the other flags: `IOMMU_PRIV` clears U/S
 *   (supervisor page), `IOMMU_NOEXEC` sets XD, `IOMMU_MMIO` sets PCD | PWT (uncacheable). Not a
 *   Linux io-pgtable behaviour; offered for CPU page tables built with this format.
 */
export type X86_64ProtMode = 'iommu' | 'cpu';

/**
 * Leaf attribute bits (everything but P, PS and the address) for `prot`.
 * @param prot - `IOMMU_*` flags (READ 1, WRITE 2, CACHE 4, NOEXEC 8, MMIO 16, PRIV 32)
 * @param mode - see {@link X86_64ProtMode}
 * @returns the bits as halves; `'iommu'` mode yields 0x24 (read-only) or 0x66 (writable)
 * @remarks Linux's x86_64 `set_prot` accepts prot without READ|WRITE; the generic map path rejects
 * it earlier (`-EINVAL`), which {@link x86_64CheckProt} mirrors.
 */
export function x86_64ProtToAttrs(prot: number, mode: X86_64ProtMode = 'iommu'): X86PteBits {
  let lo = X86_64_PTE_US | X86_64_PTE_A;
  let hi = 0;
  if (prot & IOMMU_WRITE) lo |= X86_64_PTE_RW | X86_64_PTE_D;
  if (mode === 'cpu') {
    if (prot & IOMMU_PRIV) lo &= ~X86_64_PTE_US;
    if (prot & IOMMU_MMIO) lo |= X86_64_PTE_PCD | X86_64_PTE_PWT;
    if (prot & IOMMU_NOEXEC) hi = X86_64_PTE_XD_HI;
  }
  return { lo: lo >>> 0, hi: hi >>> 0 };
}

/**
 * The generic map path's prot check (generic_pt `map_range`).
 * @param prot - `IOMMU_*` flags
 * @throws ErrnoError EINVAL when neither READ nor WRITE is set
 */
export function x86_64CheckProt(prot: number): void {
  if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) {
    throw new ErrnoError('EINVAL', 'x86-64: mapping needs IOMMU_READ or IOMMU_WRITE');
  }
}

/**
 * Encode a leaf: `P | attrs | PS (levels 1, 2) | pa`.
 * @param pa - output address, aligned to the level's size, below 2^52
 * @param level - 0 (4 KiB), 1 (2 MiB) or 2 (1 GiB)
 * @param attrs - from {@link x86_64ProtToAttrs}
 */
export function x86_64MakeLeaf(pa: number, level: number, attrs: X86PteBits): X86PteBits {
  let lo = x86PtOaLo(pa) | attrs.lo | X86_64_PTE_P;
  if (level > 0) lo |= X86_64_PTE_PS;
  return { lo: lo >>> 0, hi: (x86PtOaHi(pa) | attrs.hi) >>> 0 };
}

/**
 * Encode a table pointer: `P | R/W | U/S | A | tablePa` (0x27 plus the address).
 * @param tablePa - physical address of the next-level table, 4 KiB aligned, below 2^52
 */
export function x86_64MakeTable(tablePa: number): X86PteBits {
  return { lo: (x86PtOaLo(tablePa) | X86_64_TABLE_ATTRS) >>> 0, hi: x86PtOaHi(tablePa) };
}

/** What a descriptor is: 0 = empty (P clear), 1 = table pointer, 2 = leaf. */
export type X86_64EntryKind = 0 | 1 | 2;

/**
 * Classify a descriptor (generic_pt x86_64 `load_entry_raw`): empty when P is clear; a leaf at
 * level 0, or at levels 1..2 with PS set; otherwise a table pointer. PS at levels 3..4 is reserved
 * and read as a table, as Linux does.
 * @param lo - bits 31..0
 * @param level - generic_pt level of the slot
 */
export function x86_64EntryKind(lo: number, level: number): X86_64EntryKind {
  if ((lo & X86_64_PTE_P) === 0) return 0;
  if (level === 0 || (level <= X86_PT_MAX_LEAF_LEVEL && (lo & X86_64_PTE_PS) !== 0)) return 2;
  return 1;
}

/**
 * Output address of a leaf or table descriptor (bits 51:12, with bits below the leaf's size
 * cleared so a large leaf's PAT bit 12 is dropped; XD and software bits are never address).
 * @param lo - bits 31..0
 * @param hi - bits 63..32
 * @param level - the slot's level for a leaf; pass 0 for a table pointer
 */
export function x86_64EntryOa(lo: number, hi: number, level: number): number {
  return x86PtDecodeOa(lo, hi, level);
}

/** Decoded permission/attribute view of a leaf, for walkers and debugging. */
export interface X86_64LeafInfo {
  /** Output address of the start of the leaf. */
  readonly oa: number;
  /** log2 of the leaf size (12, 21 or 30). */
  readonly sizeShift: number;
  /** R/W set. */
  readonly writable: boolean;
  /** U/S set. */
  readonly user: boolean;
  /** XD set. */
  readonly noExec: boolean;
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
export function x86_64DecodeLeaf(lo: number, hi: number, level: number): X86_64LeafInfo {
  return {
    oa: x86PtDecodeOa(lo, hi, level),
    sizeShift: x86PtLevelShift(level),
    writable: (lo & X86_64_PTE_RW) !== 0,
    user: (lo & X86_64_PTE_US) !== 0,
    noExec: (hi & X86_64_PTE_XD_HI) !== 0,
    accessed: (lo & X86_64_PTE_A) !== 0,
    dirty: (lo & X86_64_PTE_D) !== 0,
  };
}

/**
 * Descriptor bit used for generic_pt software bit `n` in this format: 0 → bit 9, 1 → bit 11,
 * 2..12 → bits 52..62.
 * @param n - software bit number, 0..12
 * @throws RangeError outside 0..12
 */
export function x86_64SwBitPosition(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 12) throw new RangeError(`x86-64 has no software bit ${n}`);
  if (n === 0) return 9;
  if (n === 1) return 11;
  return 52 + (n - 2);
}

/** Paging geometry of an x86-64 table. */
export interface X86_64Geometry {
  /** Number of levels: 4 (PML4 root) or 5 (PML5 root). */
  readonly levels: 4 | 5;
  /** generic_pt top level: 3 or 4. */
  readonly topLevel: 3 | 4;
  /**
   * Virtual-address width in bits including the sign bit (48 or 57, or less when capped by the
   * IOMMU's MGAW). Canonical addresses sign-extend bit `vaBits - 1`.
   */
  readonly vaBits: number;
  /** Largest address of the lower canonical half usable as IOVA: 2^(vaBits-1) - 1. */
  readonly apertureEnd: bigint;
}

/**
 * Geometry for a given number of levels.
 * @param levels - 4 or 5
 * @param vaBits - VA width to use; default 48 / 57. Must be at most that and at least 32.
 * @throws ErrnoError EOPNOTSUPP for another level count (generic_pt x86_64 init only accepts top
 * level 3 or 4), EINVAL for an impossible width
 */
export function x86_64Geometry(levels: number, vaBits?: number): X86_64Geometry {
  if (levels !== 4 && levels !== 5) {
    throw new ErrnoError('EOPNOTSUPP', `x86-64 paging has 4 or 5 levels, not ${levels}`);
  }
  const full = levels === 5 ? 57 : 48;
  const va = vaBits ?? full;
  if (!Number.isInteger(va) || va > full || va <= x86PtLevelShift(levels - 2)) {
    throw new ErrnoError('EINVAL', `x86-64: VA width ${va} does not fit ${levels}-level paging`);
  }
  return {
    levels,
    topLevel: levels === 5 ? 4 : 3,
    vaBits: va,
    apertureEnd: (1n << BigInt(va - 1)) - 1n,
  };
}

/**
 * First-stage geometry the Intel driver picks for a VT-d unit: 5-level when `MGAW > 48` and the
 * unit has FL5LP (ECAP/CAP FS5LP), else 4-level; VA width = min(57 or 48, MGAW).
 * @param mgawBits - the unit's maximum guest address width in bits (CAP.MGAW + 1)
 * @param fiveLevelCapable - whether the unit supports first-stage 5-level paging
 * @throws ErrnoError EINVAL if MGAW is too small for 4-level paging
 */
export function x86_64FirstStageGeometry(mgawBits: number, fiveLevelCapable: boolean): X86_64Geometry {
  const levels = mgawBits > 48 && fiveLevelCapable ? 5 : 4;
  return x86_64Geometry(levels, Math.min(levels === 5 ? 57 : 48, mgawBits));
}

/**
 * Whether `iova` is canonical for a `vaBits`-wide table: bits 63..vaBits-1 all equal.
 * @param iova - a u64 (0..2^64-1)
 * @param vaBits - VA width including the sign bit (48 or 57 typically)
 */
export function x86_64IsCanonical(iova: bigint, vaBits: number): boolean {
  const upper = iova >> BigInt(vaBits - 1);
  return upper === 0n || upper === (1n << BigInt(65 - vaBits)) - 1n;
}

/**
 * Sign-extend bit `vaBits - 1` of `va` into bits 63..vaBits (the canonical form), as a u64.
 * @param va - an address whose bits at and above `vaBits` are ignored
 * @param vaBits - VA width including the sign bit
 */
export function x86_64SignExtend(va: bigint, vaBits: number): bigint {
  const low = va & ((1n << BigInt(vaBits)) - 1n);
  const sign = (low >> BigInt(vaBits - 1)) & 1n;
  return sign === 0n ? low : low | (((1n << 64n) - 1n) ^ ((1n << BigInt(vaBits)) - 1n));
}

/**
 * Check an input address range for a sign-extended table (generic_pt SIGN_EXTEND feature).
 * @param iova - first address, a u64
 * @param lastIova - last address (inclusive), a u64
 * @param vaBits - VA width including the sign bit
 * @throws ErrnoError ERANGE if either end is not canonical or the range crosses the hole
 */
export function x86_64CheckRange(iova: bigint, lastIova: bigint, vaBits: number): void {
  if (
    !x86_64IsCanonical(iova, vaBits) ||
    !x86_64IsCanonical(lastIova, vaBits) ||
    iova >> BigInt(vaBits - 1) !== lastIova >> BigInt(vaBits - 1)
  ) {
    throw new ErrnoError('ERANGE', `x86-64: [${iova}, ${lastIova}] is not canonical for ${vaBits} bits`);
  }
}

/**
 * Whether an output address can be mapped: below 2^min(oasBits, 52).
 * @param pa - the physical address (number)
 * @param oasBits - configured output size in bits
 */
export function x86_64OaFits(pa: number, oasBits: number): boolean {
  return pa >= 0 && pa < 2 ** Math.min(oasBits, X86_PT_MAX_OA_BITS);
}

/**
 * Page sizes usable by an x86-64 table: 4K | 2M | 1G, restricted to what the caller allows
 * (the Intel driver drops 1 GiB when the unit lacks CAP.FL1GP/FS1GP).
 * @param requested - the caller's pgsize_bitmap (a number; bits above 1 GiB are ignored)
 * @returns the usable sizes; 0 means the table cannot be used (no 4 KiB pages)
 */
export function x86_64PgsizeBitmap(requested: number): number {
  let out = 0;
  for (const size of [0x1000, 0x20_0000, 0x4000_0000]) {
    if (Math.floor(requested / size) % 2 === 1) out += size;
  }
  return (out & X86_PT_PGSIZE_BITMAP) >>> 0;
}

/** Values a driver programs to point hardware at an x86-64 table. */
export interface X86_64HwInfo {
  /** Physical address of the top table (generic_pt `gcr3_pt`; VT-d PASID-entry FSPTPTR; CR3 bits 51:12). */
  readonly rootPa: number;
  /** Number of levels (generic_pt hw_info `levels = top_level + 1`). */
  readonly levels: 4 | 5;
  /** VT-d PASID-entry FSPM/FLPM (bits 131:130): 0 = 4-level, 1 = 5-level. */
  readonly flpm: 0 | 1;
  /** CR4.LA57 needed by a CPU walking this table (true for 5-level). */
  readonly la57: boolean;
  /** CR3 value for a CPU (root PA, PWT/PCD and PCID zero), as a u64. */
  readonly cr3: bigint;
}

/**
 * Root-pointer values for a table.
 * @param rootPa - physical address of the top table, 4 KiB aligned
 * @param levels - 4 or 5
 */
export function x86_64HwInfo(rootPa: number, levels: 4 | 5): X86_64HwInfo {
  return {
    rootPa,
    levels,
    flpm: levels === 5 ? 1 : 0,
    la57: levels === 5,
    cr3: BigInt(rootPa) & 0x000f_ffff_ffff_f000n,
  };
}
