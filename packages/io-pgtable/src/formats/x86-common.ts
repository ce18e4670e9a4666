/**
 * Pieces shared by the two Intel-style radix formats, x86-64 paging (`x86-64.ts`) and the VT-d
 * second-stage format (`vtd-sl.ts`): both use a 4 KiB granule, 4 KiB tables of 512 eight-byte
 * entries, 9 index bits per level and an output address in descriptor bits 51:12.
 *
 * Level numbering follows generic_pt (drivers/iommu/generic_pt/pt_defs.h): level 0 holds 4 KiB
 * leaves, level 1 2 MiB, level 2 1 GiB, level 3 512 GiB, level 4 256 TiB. VT-d's own numbering
 * (iommu.h `agaw_to_level`) is this plus one.
 *
 * Descriptors are handled as two unsigned 32-bit halves: `lo` = bits 31..0, `hi` = bits 63..32.
 * Output addresses are plain numbers (at most 52 bits, so always exact).
 */

import { ErrnoError } from '@iommu-ts/base';
import type { PtLevel } from '../format.js';

/** log2 of the translation granule (4 KiB) of both formats. */
export const X86_PT_GRANULE_SHIFT = 12;
/** Index bits resolved per level (512-entry tables). */
export const X86_PT_BITS_PER_LEVEL = 9;
/** Entries in every table, the top table included. */
export const X86_PT_ENTRIES = 512;
/** Size of one descriptor in bytes. */
export const X86_PT_ENTRY_BYTES = 8;
/** Size of every table in bytes (one 4 KiB page). */
export const X86_PT_TABLE_BYTES = 4096;
/** Widest output (physical) address either format can encode, in bits (generic_pt `max_oa` = 52). */
export const X86_PT_MAX_OA_BITS = 52;
/** Highest level at which a leaf may sit (generic_pt `pt_can_have_leaf`: 4K, 2M and 1G only). */
export const X86_PT_MAX_LEAF_LEVEL = 2;
/** Highest top level either format supports (5-level tables; generic_pt `MAX_TOP_LEVEL` = 4). */
export const X86_PT_MAX_TOP_LEVEL = 4;

/** The page sizes these formats can map (4 KiB | 2 MiB | 1 GiB), as a pgsize_bitmap number. */
export const X86_PT_PGSIZE_BITMAP = 0x1000 | 0x20_0000 | 0x4000_0000;

/** Bits 31..12 of the low half: the low part of the output-address field. */
export const X86_PT_ADDR_LO_MASK = 0xffff_f000;
/** Bits 19..0 of the high half: descriptor bits 51..32 of the output-address field. */
export const X86_PT_ADDR_HI_MASK = 0x000f_ffff;

const TWO_32 = 0x1_0000_0000;

/**
 * A 64-bit descriptor, or a set of descriptor bits, as two unsigned 32-bit halves.
 */
export interface X86PteBits {
  /** Bits 31..0, unsigned. */
  readonly lo: number;
  /** Bits 63..32, unsigned. */
  readonly hi: number;
}

/**
 * log2 of the size mapped by one entry at `level` (generic_pt `pt_table_item_lg2sz`):
 * 12, 21, 30, 39, 48 for levels 0..4.
 * @param level - generic_pt level, 0..4
 */
export function x86PtLevelShift(level: number): number {
  return X86_PT_GRANULE_SHIFT + X86_PT_BITS_PER_LEVEL * level;
}

/**
 * Bytes mapped by one entry at `level` (4 KiB, 2 MiB, 1 GiB, 512 GiB, 256 TiB).
 * @param level - generic_pt level, 0..4
 */
export function x86PtLevelSize(level: number): number {
  return 2 ** x86PtLevelShift(level);
}

/**
 * Index of `iova` in a table at `level`: address bits `[shift + 8 : shift]`.
 * @param iova - the input address (a u64; only bits below the top level's span matter)
 * @param level - generic_pt level, 0..4
 * @returns 0..511
 */
export function x86PtIndex(iova: bigint, level: number): number {
  return Number((iova >> BigInt(x86PtLevelShift(level))) & 0x1ffn);
}

/**
 * Number-based {@link x86PtIndex} for addresses below 2^53.
 * @param iova - the input address, a non-negative safe integer
 * @param level - generic_pt level, 0..4
 * @returns 0..511
 */
export function x86PtIndexNum(iova: number, level: number): number {
  return Math.floor(iova / 2 ** x86PtLevelShift(level)) % X86_PT_ENTRIES;
}

/**
 * Low half of the address field for output address `pa` (bits 31..12 of `pa`).
 * @param pa - a physical address below 2^52, at least 4 KiB aligned
 */
export function x86PtOaLo(pa: number): number {
  return (pa >>> 0) & X86_PT_ADDR_LO_MASK;
}

/**
 * High half of the address field for output address `pa` (bits 51..32 of `pa`, at 19..0).
 * @param pa - a physical address below 2^52
 */
export function x86PtOaHi(pa: number): number {
  return Math.floor(pa / TWO_32) & X86_PT_ADDR_HI_MASK;
}

/**
 * The output address held in descriptor bits 51:12, with the bits below the entry's size cleared
 * (generic_pt `entry_oa`: a 2 MiB leaf yields bits 51:21, so x86's PAT bit 12 is not mistaken for
 * address).
 * @param lo - descriptor bits 31..0
 * @param hi - descriptor bits 63..32
 * @param level - generic_pt level of the entry (0 for table pointers and 4 KiB leaves)
 * @returns the physical address, a number below 2^52
 */
export function x86PtDecodeOa(lo: number, hi: number, level: number): number {
  const shift = x86PtLevelShift(level);
  const loMask = shift >= 32 ? 0 : (X86_PT_ADDR_LO_MASK & ~(2 ** shift - 1)) >>> 0;
  const hiMask = shift > 32 ? X86_PT_ADDR_HI_MASK & ~(2 ** (shift - 32) - 1) : X86_PT_ADDR_HI_MASK;
  return (hi & hiMask) * TWO_32 + ((lo & loMask) >>> 0);
}

/**
 * The masks {@link x86PtDecodeOa} applies at `level`, for a format's fast codec.
 * @param level - generic_pt level of the entry (0 for table pointers and 4 KiB leaves)
 * @returns `lo`: the address mask within bits 31:0; `hi`: within bits 63:32
 */
export function x86PtOaMasks(level: number): X86PteBits {
  const shift = x86PtLevelShift(level);
  const lo = shift >= 32 ? 0 : (X86_PT_ADDR_LO_MASK & ~(2 ** shift - 1)) >>> 0;
  const hi = shift > 32 ? X86_PT_ADDR_HI_MASK & ~(2 ** (shift - 32) - 1) : X86_PT_ADDR_HI_MASK;
  return { lo, hi };
}

/**
 * Whether `pa` fits the address field: below 2^52 and 4 KiB aligned.
 * @param pa - a candidate physical address
 */
export function x86PtOaIsEncodable(pa: number): boolean {
  return Number.isSafeInteger(pa) && pa >= 0 && pa < 2 ** X86_PT_MAX_OA_BITS && pa % 4096 === 0;
}

/**
 * Join two halves into a `u64` (for diagnostics and tests; hot paths keep the halves).
 * @param bits - the descriptor
 */
export function x86PteToU64(bits: X86PteBits): bigint {
  return (BigInt(bits.hi >>> 0) << 32n) | BigInt(bits.lo >>> 0);
}

/**
 * Split a `u64` descriptor into halves.
 * @param value - the descriptor, 0..2^64-1
 */
export function x86PteFromU64(value: bigint): X86PteBits {
  return { lo: Number(value & 0xffff_ffffn), hi: Number((value >> 32n) & 0xffff_ffffn) };
}

/**
 * The descriptor bit a generic_pt software bit lands on, as a (half, mask) pair.
 * @param position - the descriptor bit number, 0..63
 * @returns the half (`'lo'` for bits 31..0) and the unsigned mask inside it
 */
export function x86PtBitInHalves(position: number): { readonly half: 'lo' | 'hi'; readonly mask: number } {
  return position < 32 ? { half: 'lo', mask: 2 ** position } : { half: 'hi', mask: 2 ** (position - 32) };
}

/**
 * Levels allowed to hold leaves for a pgsize_bitmap: bit `l` of the result is set when the entry
 * size of level `l` (4K, 2M, 1G) is in `pgsizeBitmap`.
 * @param pgsizeBitmap - sizes the caller allows (subset of {@link X86_PT_PGSIZE_BITMAP})
 */
export function x86PtLeafLevelMask(pgsizeBitmap: number): number {
  let mask = 0;
  for (let level = 0; level <= X86_PT_MAX_LEAF_LEVEL; level++) {
    const size = x86PtLevelSize(level);
    if (Math.floor(pgsizeBitmap / size) % 2 === 1) mask |= 1 << level;
  }
  return mask;
}

/**
 * Build the level table of a format instance (depth 0 = top) for an Intel-style radix table.
 * @param topLevel - generic_pt top level (2..4)
 * @param vaBits - translated width; the top table indexes `min(9, vaBits - shift)` bits (at least 0)
 * @param pgsizeBitmap - the narrowed page sizes; a level offers a leaf size only if it is present
 * @returns one {@link PtLevel} per level, top first; `label` is the 1-based VT-d/x86 level number
 */
export function x86PtBuildLevels(topLevel: number, vaBits: number, pgsizeBitmap: bigint): PtLevel[] {
  const levels: PtLevel[] = [];
  for (let level = topLevel; level >= 0; level--) {
    const shift = x86PtLevelShift(level);
    const indexBits =
      level === topLevel
        ? Math.max(0, Math.min(X86_PT_BITS_PER_LEVEL, vaBits - shift))
        : X86_PT_BITS_PER_LEVEL;
    const leafOk = level <= X86_PT_MAX_LEAF_LEVEL && ((pgsizeBitmap >> BigInt(shift)) & 1n) === 1n;
    levels.push({
      label: level + 1,
      shift,
      indexBits,
      runBits: indexBits,
      tableBytes: X86_PT_TABLE_BYTES,
      leafSizesLg2: leafOk ? [shift] : [],
    });
  }
  return levels;
}

/**
 * Narrow a caller's pgsize_bitmap to what an Intel-style table can map: 4K | 2M | 1G, without
 * sizes of 2^oasBits or more (generic_pt hides sizes the output space cannot hold).
 * @param requested - the caller's bitmap (`cfg.pgsizeBitmap`)
 * @param oasBits - the narrowed output size
 * @throws ErrnoError EINVAL if 4 KiB is not among the sizes
 */
export function x86PtNarrowPgsize(requested: bigint, oasBits: number): bigint {
  let out = requested & BigInt(X86_PT_PGSIZE_BITMAP);
  if (oasBits < 64) out &= (1n << BigInt(oasBits)) - 1n;
  if ((out & 0x1000n) === 0n) {
    throw new ErrnoError('EINVAL', 'x86/VT-d page tables need the 4 KiB page size in pgsizeBitmap');
  }
  return out;
}

/**
 * Narrow `cfg.oas` to the 52 bits these formats can encode.
 * @param oas - the caller's output size in bits
 * @throws ErrnoError EINVAL for an output size below 32 bits or not an integer
 */
export function x86PtNarrowOas(oas: number): number {
  if (!Number.isInteger(oas) || oas < 32) throw new ErrnoError('EINVAL', `unsupported output size ${oas}`);
  return Math.min(oas, X86_PT_MAX_OA_BITS);
}

/**
 * The level count of an x86-64 or VT-d second-stage table: the format object's fixed choice, else
 * `cfg.levels`, else the depth derived from `ias`.
 * @param fixed - the format object's `levels` option, if any
 * @param requested - `cfg.levels`, if any
 * @param allowed - the counts the format supports
 * @param derived - the count implied by `cfg.ias`
 * @returns the count to build
 * @throws ErrnoError EINVAL when `requested` is not among `allowed`, or differs from `fixed`
 */
export function x86PtPickLevels<const T extends number>(
  fixed: T | undefined,
  requested: number | undefined,
  allowed: readonly T[],
  derived: T,
): T {
  if (requested !== undefined) {
    const ok = allowed.find((n) => n === requested);
    if (ok === undefined) throw new ErrnoError('EINVAL', `unsupported level count ${requested}`);
    if (fixed !== undefined && fixed !== ok)
      throw new ErrnoError('EINVAL', `cfg.levels ${requested} contradicts the format's ${fixed} levels`);
    return ok;
  }
  return fixed ?? derived;
}

/**
 * Physical address of the next-level table a table entry points at (address bits 51:12), shared
 * by the x86-64 and VT-d second-level formats, whose table entries keep the address alike.
 * @param lo - entry bits 31:0
 * @param hi - entry bits 63:32
 * @returns the table's physical address in bytes
 */
export function x86PtTablePa(lo: number, hi: number): number {
  return (hi & X86_PT_ADDR_HI_MASK) * TWO_32 + ((lo & X86_PT_ADDR_LO_MASK) >>> 0);
}

/**
 * Write a table entry pointing at `tablePa` with the format's table attribute bits.
 * @param words - the table memory as 32-bit words
 * @param wi - word index of the entry's low half
 * @param tablePa - physical address of the next-level table (4 KiB aligned)
 * @param attrs - the format's attribute bits for table entries (bits 11:0)
 */
export function x86PtWriteTable(words: Uint32Array, wi: number, tablePa: number, attrs: number): void {
  words[wi] = ((tablePa >>> 0) & X86_PT_ADDR_LO_MASK) | attrs;
  words[wi + 1] = Math.floor(tablePa / TWO_32) & X86_PT_ADDR_HI_MASK;
}

/**
 * Write `count` consecutive leaf entries mapping `pa`, `pa + size`, ... with the given attribute
 * halves (the address goes in bits 51:12; `lo`/`hi` carry every other bit, P and PS included).
 * @param words - the table memory as 32-bit words
 * @param wi - word index of the first entry's low half
 * @param pa - physical address of the first leaf, in bytes
 * @param sizeLg2 - log2 of the bytes one leaf maps (12, 21 or 30)
 * @param count - number of leaves
 * @param lo - attribute bits 31:0 of every leaf
 * @param hi - attribute bits 63:32 of every leaf
 */
export function x86PtWriteLeaves(
  words: Uint32Array,
  wi: number,
  pa: number,
  sizeLg2: number,
  count: number,
  lo: number,
  hi: number,
): void {
  const size = sizeLg2 < 31 ? 1 << sizeLg2 : 2 ** sizeLg2;
  if (sizeLg2 < 31 && pa + count * size <= TWO_32) {
    // Fast path: the whole run is below 4 GiB; int32 arithmetic on the address.
    let a = pa | 0;
    const end = wi + 2 * count;
    for (let w = wi; w < end; w += 2) {
      words[w] = (a & X86_PT_ADDR_LO_MASK) | lo;
      words[w + 1] = hi;
      a = (a + size) | 0;
    }
    return;
  }
  let addr = pa;
  for (let i = 0; i < count; i++, addr += size) {
    words[wi + 2 * i] = ((addr >>> 0) & X86_PT_ADDR_LO_MASK) | lo;
    words[wi + 2 * i + 1] = (Math.floor(addr / TWO_32) & X86_PT_ADDR_HI_MASK) | hi;
  }
}
