/**
 * The x86-64 4/5-level paging format (generic_pt `x86_64`, drivers/iommu/generic_pt/fmt/x86_64.h),
 * used by the Intel driver for VT-d first-stage tables and usable for x86 CPU page tables, as an
 * {@link IoPgtableFormat} for the io_pgtable_ops-style API.
 *
 * Notes on the core's support (see also vtd-sl.ts):
 * 0. Wiring: registered as fmt 16 in io-pgtable.ts; exported from index.ts.
 * 1. Level count: derived from `cfg.ias` (≤ 48 → 4 levels, else 5; ias is clamped to 57 and must be
 *    ≥ 40), or fixed by `cfg.levels` (4 or 5; anything else makes allocation fail), or by a format
 *    object from {@link createX86_64Format} `{ levels }` (a `cfg.levels` must then agree).
 * 2. Dirty tracking is not supported (no `dirty` ops); `readAndClearDirty` fails with
 *    `EOPNOTSUPP` as generic_pt does (`dirtyUnsupportedErrno`).
 * 3. Unmap of a range starting at a larger leaf's first byte: generic_pt removes the whole leaf and
 *    reports its full size (test_unmap_split); io-pgtable-arm refuses (returns 0). The policy flag
 *    `partialUnmap: 'whole-leaf-at-start'` would give generic_pt's answer; this format keeps the
 *    walker's io-pgtable behaviour (tested as such).
 * 4. `upperIova: 'sign'` relies on the ops layer stripping the sign-extended upper bits and on
 *    walker offsets being exact: offsets above 2^53 (5-level upper half) are only exact at
 *    multiples of the double's ULP, so every walker entry point receives page-aligned offsets
 *    (iovaToPhys splits the low 12 bits off; mapPages/unmapPages need aligned IOVAs anyway;
 *    readAndClearDirty ranges should be aligned too).
 *
 * Behaviour choices where io-pgtable and generic_pt differ (stated in {@link X86_64_POLICY}): map
 * onto a present leaf fails with `EEXIST` (io-pgtable's errno; generic_pt says `EADDRINUSE`); a map
 * at a slot holding a table replaces the table only if it maps nothing (generic_pt), else `EEXIST`.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { IoPgtableCfg } from '../cfg.js';
import {
  IoPgtableFmt,
  type IoPgtableFormat,
  type PtDecodedEntry,
  PtEntryKind,
  type PtFormatInstance,
  type PtLeafTemplate,
  type PtPolicy,
} from '../format.js';
import { IO_PGTABLE_QUIRK_NO_WARN } from '../quirks.js';
import {
  X86_64_PTE_A,
  X86_64_PTE_D,
  X86_64_PTE_G,
  X86_64_PTE_P,
  X86_64_PTE_PAT_LARGE,
  X86_64_PTE_PCD,
  X86_64_PTE_PS,
  X86_64_PTE_PWT,
  X86_64_PTE_RW,
  X86_64_PTE_US,
  X86_64_PTE_XD_HI,
  X86_64_TABLE_ATTRS,
  type X86_64ProtMode,
  x86_64ProtToAttrs,
} from './x86-64-bits.js';
import {
  x86PtPickLevels as pickLevels,
  X86_PT_ADDR_HI_MASK,
  X86_PT_ADDR_LO_MASK,
  X86_PT_MAX_LEAF_LEVEL,
  x86PtBuildLevels,
  x86PtDecodeOa,
  x86PtNarrowOas,
  x86PtNarrowPgsize,
  x86PtOaMasks,
  x86PtTablePa,
  x86PtWriteLeaves,
  x86PtWriteTable,
} from './x86-common.js';

/** Options of {@link createX86_64Format}. */
export interface X86_64FormatOptions {
  /** Force 4- or 5-level paging instead of deriving it from `cfg.ias`. */
  readonly levels?: 4 | 5;
  /** How prot flags become leaf bits (default `'iommu'`, Linux's encoding). */
  readonly protMode?: X86_64ProtMode;
}

/**
 * Walker policy of the x86-64 format: runs of slots per table visit; `tlbAddPage` per cleared slot
 * (table slots included) when a non-queued gather is given; `EEXIST` on a present leaf; a table in
 * the way of a larger leaf is freed only when it maps nothing (generic_pt).
 */
export const X86_64_POLICY: PtPolicy = {
  mapPageByPage: false,
  unmapPageByPage: false,
  tlbAddPageWithoutGather: false,
  tlbAddPageForTables: true,
  existingLeafErrno: 'EEXIST',
  mapOverTable: 'free-if-empty',
};

/**
 * Build the x86-64 format with options.
 * @param options - fixed level count and prot mode
 * @returns a format whose `setup` accepts quirk NO_WARN only, narrows `pgsizeBitmap` to
 * 4K | 2M | 1G (4K required, else `EINVAL`), `oas` to ≤ 52 and `ias` to ≤ 57 (`EINVAL` below 40),
 * and writes `cfg.rootCfg = { rootPa, levels }` once the top table exists
 */
export function createX86_64Format(options: X86_64FormatOptions = {}): IoPgtableFormat {
  const protMode: X86_64ProtMode = options.protMode ?? 'iommu';
  return {
    name: 'X86_64',
    fmt: IoPgtableFmt.X86_64,
    quirksAllowed: IO_PGTABLE_QUIRK_NO_WARN,
    setup(cfg: IoPgtableCfg): PtFormatInstance {
      if (!Number.isInteger(cfg.ias) || cfg.ias < 40) {
        throw new ErrnoError('EINVAL', `x86-64: input size ${cfg.ias} is below 4-level paging's 40 bits`);
      }
      const levelsCount = pickLevels(options.levels, cfg.levels, [4, 5] as const, cfg.ias > 48 ? 5 : 4);
      const ias = Math.min(cfg.ias, levelsCount === 5 ? 57 : 48);
      const oas = x86PtNarrowOas(cfg.oas);
      const pgsize = x86PtNarrowPgsize(cfg.pgsizeBitmap, oas);
      cfg.ias = ias;
      cfg.oas = oas;
      cfg.pgsizeBitmap = pgsize;
      return makeInstance(levelsCount, ias, oas, pgsize, protMode);
    },
  };
}

/**
 * The x86-64 paging format with defaults: depth from `cfg.ias` (≤ 48 → 4 levels, else 5), Linux's
 * IOMMU prot encoding. Format number {@link (IoPgtableFmt:variable)}.X86_64.
 */
export const x86_64Format: IoPgtableFormat = createX86_64Format();

function makeInstance(
  levelsCount: 4 | 5,
  vaBits: number,
  oaBits: number,
  pgsizeBitmap: bigint,
  protMode: X86_64ProtMode,
): PtFormatInstance {
  const topLevel = levelsCount - 1;
  const levels = x86PtBuildLevels(topLevel, vaBits, pgsizeBitmap);
  // Per depth: generic_pt level and log2 entry size, looked up on hot paths.
  const levelOf = levels.map((_, depth) => topLevel - depth);
  const shiftOf = levels.map((l) => l.shift);

  const classify = (lo: number, _hi: number, depth: number): PtEntryKind => {
    if ((lo & X86_64_PTE_P) === 0) return PtEntryKind.EMPTY;
    const level = levelOf[depth] ?? 0;
    if (level === 0 || (level <= X86_PT_MAX_LEAF_LEVEL && (lo & X86_64_PTE_PS) !== 0))
      return PtEntryKind.LEAF;
    return PtEntryKind.TABLE;
  };

  return {
    entryWords: 2,
    levels,
    vaBits,
    oaBits,
    upperIova: 'sign',
    pgsizeBitmap,
    granule: 4096,
    fastCodec: {
      kindBitsLo: X86_64_PTE_P | X86_64_PTE_PS,
      tableAddrLo: X86_PT_ADDR_LO_MASK,
      tableAddrHi: X86_PT_ADDR_HI_MASK,
      leafAddrLo: levelOf.map((level) => x86PtOaMasks(level).lo),
      leafAddrHi: levelOf.map((level) => x86PtOaMasks(level).hi),
    },
    policy: X86_64_POLICY,
    dirtyUnsupportedErrno: 'EOPNOTSUPP',
    classify,
    tablePa: x86PtTablePa,
    writeTable(words: Uint32Array, wi: number, tablePa: number): void {
      x86PtWriteTable(words, wi, tablePa, X86_64_TABLE_ATTRS);
    },
    leafTemplate(prot: number): PtLeafTemplate {
      return x86_64ProtToAttrs(prot, protMode);
    },
    writeLeaves(
      words: Uint32Array,
      wi: number,
      pa: number,
      depth: number,
      sizeLg2: number,
      count: number,
      t: PtLeafTemplate,
    ): void {
      const lo = t.lo | X86_64_PTE_P | ((levelOf[depth] ?? 0) > 0 ? X86_64_PTE_PS : 0);
      x86PtWriteLeaves(words, wi, pa, sizeLg2, count, lo, t.hi);
    },
    leafPa(lo: number, hi: number, depth: number): number {
      return x86PtDecodeOa(lo, hi, levelOf[depth] ?? 0);
    },
    leafSizeLg2(_lo: number, _hi: number, depth: number): number {
      return shiftOf[depth] ?? 12;
    },
    decode(lo: number, hi: number, depth: number): PtDecodedEntry {
      const kind = classify(lo, hi, depth);
      const level = levelOf[depth] ?? 0;
      const attrs = {
        P: (lo & X86_64_PTE_P) !== 0,
        RW: (lo & X86_64_PTE_RW) !== 0,
        US: (lo & X86_64_PTE_US) !== 0,
        PWT: (lo & X86_64_PTE_PWT) !== 0,
        PCD: (lo & X86_64_PTE_PCD) !== 0,
        A: (lo & X86_64_PTE_A) !== 0,
        D: (lo & X86_64_PTE_D) !== 0,
        PS: (lo & X86_64_PTE_PS) !== 0,
        G: (lo & X86_64_PTE_G) !== 0,
        PAT: level > 0 && kind === PtEntryKind.LEAF ? (lo & X86_64_PTE_PAT_LARGE) !== 0 : false,
        XD: (hi & X86_64_PTE_XD_HI) !== 0,
      };
      if (kind === PtEntryKind.LEAF) {
        return { kind, pa: x86PtDecodeOa(lo, hi, level), sizeLg2: shiftOf[depth] ?? 12, attrs };
      }
      if (kind === PtEntryKind.TABLE) return { kind, pa: x86PtDecodeOa(lo, hi, 0), attrs };
      return { kind, attrs };
    },
    writeRegisters(cfg: IoPgtableCfg, rootPa: number): void {
      cfg.rootCfg = { rootPa: BigInt(rootPa), levels: levelsCount };
    },
  };
}
