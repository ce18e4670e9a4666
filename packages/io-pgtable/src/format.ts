/**
 * The format-descriptor interface: what a page-table format tells the one generic walker.
 *
 * @remarks
 * Modelled on Linux's generic page table (drivers/iommu/generic_pt/pt_defs.h, pt_iter.h,
 * fmt/*.h): a format is a small set of pure functions that encode and decode entries and a
 * description of its levels; `walker.ts` implements map, unmap, lookup, dirty harvesting,
 * contiguous handling and the gather/flush policy once for every format. Behaviour in which
 * Linux's formats differ (v7s maps page by page and calls `tlb_add_page` without a gather; LPAE
 * calls `tlb_add_page` for removed table slots too; generic_pt refuses to map over a non-empty
 * table) is expressed by {@link PtPolicy} flags, not by separate walkers.
 *
 * Stability: this file only grows (new optional members). Changes so far (all additive, optional):
 * `PtPolicy.tlbAddPagePerEntry` (now superseded by the walker's general rule for contiguous page
 * sizes), `PtPolicy.partialUnmap`, `PtFormatInstance.maxTablePa`,
 * `PtFormatInstance.dirtyUnsupportedErrno` (asked for by the v7s, x86-64 and VT-d formats),
 * `PtFormatInstance.fastCodec` (speed).
 *
 * Walker rules every format gets (not flags): a page size spanning several entries (a contiguous
 * run) is unmapped slot by slot as io-pgtable-arm-v7s does (all slots must be valid; then per slot
 * in order `tlbFlushWalk` + free for a table, `tlbAddPage` of the slot for a leaf); a table removed
 * by a map is flushed with its own slot's IOVA and size.
 *
 * Conventions used by every member below:
 *
 * - `depth` indexes {@link PtFormatInstance.levels}: 0 is the top (root) table, the last is the
 *   table of smallest pages. The format's own numbering (ARM level 0–3, VT-d level 5–1, …) is
 *   {@link PtLevel.label}, used for display only.
 * - An entry is read as two unsigned 32-bit halves `lo` (bits 31:0) and `hi` (bits 63:32). A 32-bit
 *   format (`entryWords` 1) always receives `hi = 0`.
 * - `words`/`wi` locate an entry for writing: the entry's low word is `words[wi]`, its high word
 *   (64-bit formats) `words[wi + 1]`. Consecutive entries are `entryWords` words apart.
 * - Physical addresses and sizes are `number`s (exact below 2^53); sizes are often given as log2.
 * - The all-zero value is the empty entry for every format; the walker clears entries by writing
 *   zeros and never asks a format to do it.
 */

import type { IoPgtableCfg } from './cfg.js';

/** Classification of an entry ({@link PtFormatInstance.classify}). */
export const PtEntryKind = {
  /** Nothing mapped (the value is 0, or not present for the format). */
  EMPTY: 0,
  /** Points to a next-level table. */
  TABLE: 1,
  /** Maps a page, block or one slot of a contiguous run. */
  LEAF: 2,
  /** Present but neither a usable table nor a leaf at this level (walks abort on it). */
  INVALID: 3,
} as const;

/** One of the {@link (PtEntryKind:variable)} values. */
export type PtEntryKind = (typeof PtEntryKind)[keyof typeof PtEntryKind];

/** One level of a table format, as configured. */
export interface PtLevel {
  /** The format's own number for this level (ARM: 0–3; VT-d/x86: 1-based from the leaves; v7s: 1–2). */
  readonly label: number;
  /** log2 of the bytes one entry of this level translates (12 for 4K pages, 21 for 2M blocks…). */
  readonly shift: number;
  /** log2 of the number of entries in one table of this level (for a concatenated top: all of them). */
  readonly indexBits: number;
  /**
   * log2 of the entries one map/unmap step may cover before the walker ends the step
   * (`arm_lpae_max_entries`: a step never crosses a granule-sized table, even inside a
   * concatenated pgd). Equal to `indexBits` when the format has no such rule.
   */
  readonly runBits: number;
  /** Bytes to allocate for a table of this level (power of two; includes any minimum size). */
  readonly tableBytes: number;
  /**
   * log2 byte sizes of the leaves this level can hold, ascending. A size above `shift` is a
   * contiguous run of `2^(size - shift)` entries (v7s large pages and supersections). Empty when
   * the level holds tables only. Only sizes also in the narrowed pgsize bitmap are used.
   */
  readonly leafSizesLg2: readonly number[];
}

/**
 * Attribute bits of a leaf, computed once per map call by {@link PtFormatInstance.leafTemplate}
 * and passed back to {@link PtFormatInstance.writeLeaves}. The walker treats it as opaque.
 */
export interface PtLeafTemplate {
  /** Attribute bits for descriptor bits 31:0 (without address, format-defined). */
  readonly lo: number;
  /** Attribute bits for descriptor bits 63:32 (0 for 32-bit formats). */
  readonly hi: number;
}

/** A decoded entry for `dump`. */
export interface PtDecodedEntry {
  /** What the entry is. */
  readonly kind: PtEntryKind;
  /** Output address (leaf) or next-table address (table); absent for empty/invalid entries. */
  readonly pa?: number;
  /** log2 of the bytes a leaf maps (including a contiguous run); leaves only. */
  readonly sizeLg2?: number;
  /** Named attribute fields, e.g. `{ AF: 1, SH: 3, AttrIndx: 1, nG: 1 }`, format-defined. */
  readonly attrs: Readonly<Record<string, number | boolean | string>>;
}

/** Dirty-tracking hooks of a format that supports `read_and_clear_dirty`. */
export interface PtDirtyOps {
  /**
   * Whether the leaf counts as written since the last clean.
   * @param lo - descriptor bits 31:0
   * @param hi - descriptor bits 63:32
   * @param depth - level index of the entry
   */
  isDirty(lo: number, hi: number, depth: number): boolean;
  /**
   * Make the leaf clean (e.g. LPAE: set AP[2]; VT-d: clear D) in place.
   * @param words - word array holding the entry
   * @param wi - index of the entry's low word
   * @param depth - level index of the entry
   */
  clearDirty(words: Uint32Array, wi: number, depth: number): void;
  /**
   * What the walker does at an empty or invalid slot inside the range: `'abort'` (LPAE:
   * `-EINVAL`, ranges already recorded stay recorded) or `'skip'` (generic_pt).
   */
  readonly holes: 'abort' | 'skip';
}

/**
 * Behaviour in which Linux's implementations differ, as flags of the one walker.
 */
export interface PtPolicy {
  /**
   * Map `pgcount` pages one at a time, each walked from the root, stopping at the first error
   * (io-pgtable-arm-v7s.c). False: map a run of consecutive slots per table visit (LPAE).
   */
  readonly mapPageByPage: boolean;
  /**
   * Unmap page by page, stopping at the first page that unmaps nothing (v7s). False: runs of slots
   * per table visit, as LPAE's `__arm_lpae_unmap`.
   */
  readonly unmapPageByPage: boolean;
  /** Call `tlbAddPage` even when the caller passed no gather (v7s). */
  readonly tlbAddPageWithoutGather: boolean;
  /**
   * Call `tlbAddPage` for slots that held a table too (LPAE: one call per cleared slot, after all
   * `tlbFlushWalk` calls of the run). False: only for leaf slots (v7s).
   */
  readonly tlbAddPageForTables: boolean;
  /** errno for a map onto a present leaf (LPAE/v7s `EEXIST`; generic_pt `EADDRINUSE`). */
  readonly existingLeafErrno: 'EEXIST' | 'EADDRINUSE';
  /**
   * A map at a slot holding a table: `'free'` removes the table and everything under it
   * (LPAE/v7s, with `tlbFlushWalk`); `'free-if-empty'` removes it only when it maps nothing, else
   * fails with {@link PtPolicy.existingLeafErrno} (generic_pt).
   */
  readonly mapOverTable: 'free' | 'free-if-empty';
  /**
   * No longer consulted (kept so that the interface only grows): a page size that spans several
   * entries (v7s large pages and supersections) is always unmapped slot by slot, with one
   * `tlbAddPage` of the entry size per cleared leaf slot and one `tlbFlushWalk` per table slot.
   */
  readonly tlbAddPagePerEntry?: boolean;
  /**
   * An unmap that meets a leaf larger than `pgsize`: `'refuse'` (default; io-pgtable: return what
   * was unmapped so far, the leaf stays) or `'whole-leaf-at-start'` (generic_pt: if the IOVA is
   * the leaf's first byte the whole leaf is removed and its full size counted, which may exceed
   * the request; otherwise refuse).
   */
  readonly partialUnmap?: 'refuse' | 'whole-leaf-at-start';
}

/**
 * The entry codec of a format as masks, so that the walker's hot paths (lookup, the leaf scan of
 * unmap, table descents) decode entries without calling the format
 * ({@link PtFormatInstance.fastCodec}).
 *
 * @remarks
 * A promise about the format's functions, for every depth `d` and every non-zero entry:
 * `classify(lo, hi, d)` depends only on `lo & kindBitsLo`; `tablePa` of a table entry is
 * `(hi & tableAddrHi) * 2^32 + (lo & tableAddrLo)`; `leafPa` of a leaf entry is
 * `(hi & leafAddrHi[d]) * 2^32 + (lo & leafAddrLo[d])`; and `leafSizeLg2` is the level's `shift`
 * (no contiguous runs). The walker builds a kind table from `classify` once, probing the 256
 * values of the low byte. Formats whose encoding does not fit (v7s, LPAE with the 64K granule)
 * leave `fastCodec` out and are walked through their functions.
 */
export interface PtFastCodec {
  /** The bits of `lo` that decide an entry's kind: a mask within bits 7:0 (LPAE 0x3, x86 P|PS). */
  readonly kindBitsLo: number;
  /** Mask of the next-table address in bits 31:0 (unsigned). */
  readonly tableAddrLo: number;
  /** Mask of the next-table address in bits 63:32 (address bits 63:32 at 31:0). */
  readonly tableAddrHi: number;
  /** Per depth: mask of a leaf's output address in bits 31:0 (unsigned). */
  readonly leafAddrLo: readonly number[];
  /** Per depth: mask of a leaf's output address in bits 63:32. */
  readonly leafAddrHi: readonly number[];
}

/**
 * A format configured for one `io_pgtable_cfg`: its geometry and its entry codec.
 *
 * @remarks
 * Produced by {@link IoPgtableFormat.setup}. Every function is pure apart from writing the
 * entries it is pointed at; none allocates memory or keeps state between calls. Hot-path
 * functions (`classify`, `tablePa`, `writeTable`, `writeLeaves`, `leafPa`, `leafSizeLg2`) must
 * not allocate.
 */
export interface PtFormatInstance {
  /** 2 for 64-bit descriptors, 1 for 32-bit (v7s). */
  readonly entryWords: 1 | 2;
  /** Levels from the top (depth 0) down to the smallest pages. */
  readonly levels: readonly PtLevel[];
  /** Number of IOVA bits translated (`ias`, or the generic_pt VA width). */
  readonly vaBits: number;
  /** Number of output-address bits (`oas`); larger output addresses fail with `ERANGE`. */
  readonly oaBits: number;
  /**
   * Rule for IOVA bits at and above `vaBits`: `'zero'` (TTBR0 / plain), `'ones'` (quirk
   * ARM_TTBR1: all ones), `'sign'` (generic_pt SIGN_EXTEND: copies of bit `vaBits - 1`, and the
   * table indexes only the low `vaBits` bits). Violations fail with `ERANGE` (map) or return 0
   * (unmap).
   */
  readonly upperIova: 'zero' | 'ones' | 'sign';
  /** The narrowed page-size bitmap (also written back to `cfg.pgsizeBitmap`). */
  readonly pgsizeBitmap: bigint;
  /** The smallest page size in bytes (the `granule` given to `tlbFlushWalk`). */
  readonly granule: number;
  /** Walker policy flags. */
  readonly policy: PtPolicy;
  /** Dirty tracking, when the format supports `read_and_clear_dirty`; absent: `EINVAL`. */
  readonly dirty?: PtDirtyOps;
  /** errno of `read_and_clear_dirty` when `dirty` is absent (default `'EINVAL'`; generic_pt `'EOPNOTSUPP'`). */
  readonly dirtyUnsupportedErrno?: 'EINVAL' | 'EOPNOTSUPP';
  /**
   * Exclusive upper bound for table physical addresses (v7s: 2^32). A table allocated at or above
   * it is freed again and the map fails with `ENOMEM` (allocation returns null for the top table).
   */
  readonly maxTablePa?: number;
  /**
   * The entry codec as masks, when the format's encoding allows it: lets the walker decode on hot
   * paths without calling `classify`, `tablePa`, `leafPa` and `leafSizeLg2`. Must agree with those
   * functions (see {@link PtFastCodec}).
   */
  readonly fastCodec?: PtFastCodec;

  /**
   * Classify an entry.
   * @param lo - bits 31:0
   * @param hi - bits 63:32 (0 for 32-bit formats)
   * @param depth - level index of the table holding the entry
   */
  classify(lo: number, hi: number, depth: number): PtEntryKind;
  /**
   * Physical address of the next-level table a TABLE entry points to.
   * @param lo - bits 31:0
   * @param hi - bits 63:32
   * @param depth - level index of the entry
   */
  tablePa(lo: number, hi: number, depth: number): number;
  /**
   * Write a table entry pointing to the next-level table at `tablePa`.
   * @param words - word array holding the entry
   * @param wi - index of the entry's low word
   * @param tablePa - physical address of the table for `depth + 1`
   * @param depth - level index of the entry
   */
  writeTable(words: Uint32Array, wi: number, tablePa: number, depth: number): void;
  /**
   * Attribute template of leaves of size `2^sizeLg2` at `depth` for `prot`; called once per map
   * call. The walker has already rejected prot without `IOMMU_READ | IOMMU_WRITE` when Linux does.
   * @param prot - `IOMMU_*` flags
   * @param depth - level index where the leaves go
   * @param sizeLg2 - log2 of the leaf size (one of the level's `leafSizesLg2`)
   */
  leafTemplate(prot: number, depth: number, sizeLg2: number): PtLeafTemplate;
  /**
   * Write `count` consecutive leaves of size `2^sizeLg2`, mapping `pa`, `pa + 2^sizeLg2`, …;
   * each occupies `2^(sizeLg2 - shift)` entries (contiguous runs are the format's business).
   * @param words - word array holding the entries
   * @param wi - index of the first entry's low word
   * @param pa - output address of the first leaf, aligned to its size
   * @param depth - level index
   * @param sizeLg2 - log2 leaf size
   * @param count - number of leaves (≥ 1)
   * @param t - the template from {@link PtFormatInstance.leafTemplate}
   */
  writeLeaves(
    words: Uint32Array,
    wi: number,
    pa: number,
    depth: number,
    sizeLg2: number,
    count: number,
    t: PtLeafTemplate,
  ): void;
  /**
   * Output address of the first byte of the leaf (of the whole contiguous run) a LEAF entry maps.
   * @param lo - bits 31:0
   * @param hi - bits 63:32
   * @param depth - level index
   */
  leafPa(lo: number, hi: number, depth: number): number;
  /**
   * log2 of the bytes the leaf containing this LEAF entry maps (`shift`, or more for a
   * contiguous entry).
   * @param lo - bits 31:0
   * @param hi - bits 63:32
   * @param depth - level index
   */
  leafSizeLg2(lo: number, hi: number, depth: number): number;
  /**
   * Decode an entry for display (cold path).
   * @param lo - bits 31:0
   * @param hi - bits 63:32
   * @param depth - level index
   */
  decode(lo: number, hi: number, depth: number): PtDecodedEntry;
  /**
   * Write the register values / root pointer into the format's output field of `cfg`, once the
   * top table exists.
   * @param cfg - the (already narrowed) configuration
   * @param rootPa - physical address of the top table
   */
  writeRegisters(cfg: IoPgtableCfg, rootPa: number): void;
}

/**
 * A page-table format (one value of `enum io_pgtable_fmt`, or a generic_pt format).
 *
 * @remarks
 * Mirrors `struct io_pgtable_init_fns` plus the format table of drivers/iommu/io-pgtable.c.
 */
export interface IoPgtableFormat {
  /** Linux's name, e.g. `'ARM_64_LPAE_S1'`. */
  readonly name: string;
  /** The {@link (IoPgtableFmt:variable)} value. */
  readonly fmt: number;
  /** Quirk bits this format accepts; any other bit makes allocation fail. */
  readonly quirksAllowed: number;
  /**
   * Check and narrow `cfg` in place (`pgsizeBitmap`, `ias`, `oas`) the way the format's Linux
   * `alloc` does, and return the configured format.
   * @param cfg - the caller's configuration, updated in place
   * @throws ErrnoError `EINVAL` (or the errno Linux uses) wherever Linux's alloc returns NULL;
   *   `allocIoPgtableOps` turns it into `null`
   */
  setup(cfg: IoPgtableCfg): PtFormatInstance;
}

/**
 * Format identifiers: `enum io_pgtable_fmt` values (include/linux/io-pgtable.h), plus numbers for
 * the generic_pt formats used by the Intel driver (not part of Linux's enum).
 */
export const IoPgtableFmt = {
  /** ARM 32-bit LPAE stage 1 (0). */
  ARM_32_LPAE_S1: 0,
  /** ARM 32-bit LPAE stage 2 (1). */
  ARM_32_LPAE_S2: 1,
  /** ARM 64-bit LPAE stage 1 (2). */
  ARM_64_LPAE_S1: 2,
  /** ARM 64-bit LPAE stage 2 (3). */
  ARM_64_LPAE_S2: 3,
  /** ARMv7 short descriptor (4). */
  ARM_V7S: 4,
  /** Mali LPAE (5), not implemented here. */
  ARM_MALI_LPAE: 5,
  /** Apple DART (6), not implemented here. */
  APPLE_DART: 6,
  /** Apple DART2 (7), not implemented here. */
  APPLE_DART2: 7,
  /** Number of Linux formats (sentinel). */
  IO_PGTABLE_NUM_FMTS: 8,
  /** generic_pt `x86_64` (4/5-level first stage), this package's number. */
  X86_64: 16,
  /** generic_pt `vtdss` (VT-d second level, 3/4/5 levels), this package's number. */
  VTD_SS: 17,
} as const;

/** One of the {@link (IoPgtableFmt:variable)} values. */
export type IoPgtableFmt = (typeof IoPgtableFmt)[keyof typeof IoPgtableFmt];
