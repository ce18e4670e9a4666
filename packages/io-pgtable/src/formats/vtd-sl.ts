/**
 * The VT-d second-stage format (generic_pt `vtdss`, drivers/iommu/generic_pt/fmt/vtdss.h, as used
 * by drivers/iommu/intel/iommu.c; legacy `dma_pte` helpers in drivers/iommu/intel/iommu.h), 3, 4
 * or 5 levels, as an {@link IoPgtableFormat} for the io_pgtable_ops-style API.
 *
 * Notes on the core's support (see also x86-64.ts):
 * 1. Depth: derived from `cfg.ias` like `width_to_agaw` (≤ 39 → 3 levels, ≤ 48 → 4, else 5; ias
 *    clamped to 57, `EINVAL` below 32). The Intel driver instead takes the depth from CAP.SAGAW
 *    and may build a deeper table than the width needs: pass `cfg.levels` (3, 4 or 5, see
 *    {@link vtdSlGeometryFromCaps}; other values make allocation fail) with the format number, or a
 *    format object from {@link createVtdSlFormat} `{ levels }`.
 * 2. Force snoop (SNP on every leaf, feature VTDSS_FORCE_COHERENCE) and force writeable (refuse
 *    read-only maps, VTDSS_FORCE_WRITEABLE) are domain settings, not prot bits, so they come from
 *    {@link VtdSlFormatOptions}, kept by reference and read whenever a leaf template is computed.
 *    Linux lets `enforce_cache_coherency` turn snooping on for a second-stage domain only while it
 *    has no mappings; that works here too. Turning it on later would be defeated by PtWalker's
 *    cache of leaf templates across calls (keyed by prot and size only). A cfg field (e.g.
 *    `cfg.vtdSl?: { forceSnoop, forceWriteable }` or feature bits) would be the cleaner home.
 * 3. `leafTemplate` throws ErrnoError `EINVAL` for read-only maps under force-writeable; the walker
 *    must let that propagate as the map's error with nothing written.
 * 4. Dirty harvesting: D (bit 9), clean = clear D, holes skipped (generic_pt). Linux rejects
 *    `read_and_clear_dirty` on nothing else; the walker's size/range checks apply.
 * 5. Same policy notes as x86-64.ts (EEXIST vs EADDRINUSE; whole-leaf unmap at a leaf's start).
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
  type PtPolicy,
} from '../format.js';
import { IO_PGTABLE_QUIRK_NO_WARN } from '../quirks.js';
import {
  VTD_SL_PTE_A,
  VTD_SL_PTE_D,
  VTD_SL_PTE_PS,
  VTD_SL_PTE_R,
  VTD_SL_PTE_SNP,
  VTD_SL_PTE_W,
  VTD_SL_PTE_X,
  VTD_SL_TABLE_ATTRS,
  vtdAgawToWidth,
  vtdSlProtToAttrs,
} from './vtd-sl-bits.js';
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

/**
 * Options of {@link createVtdSlFormat}. The object is kept, not copied: `forceSnoop` and
 * `forceWriteable` are read when a map computes its leaf attributes, so they may be changed after
 * allocation as long as nothing has been mapped yet (Linux's rule for enforcing snooping on a
 * second-stage domain).
 */
export interface VtdSlFormatOptions {
  /** Force 3-, 4- or 5-level tables instead of deriving the depth from `cfg.ias`. */
  readonly levels?: 3 | 4 | 5;
  /** Set SNP (bit 11) on every new leaf (VTDSS_FORCE_COHERENCE). Default false. */
  forceSnoop?: boolean;
  /** Refuse maps without `IOMMU_WRITE` with `EINVAL` (VTDSS_FORCE_WRITEABLE). Default false. */
  forceWriteable?: boolean;
}

/**
 * Walker policy of the VT-d second-stage format (same choices as the x86-64 format): runs of slots
 * per table visit; `tlbAddPage` per cleared slot including table slots; `EEXIST` on a present leaf;
 * a table in the way of a larger leaf is freed only when it maps nothing.
 */
export const VTD_SL_POLICY: PtPolicy = {
  mapPageByPage: false,
  unmapPageByPage: false,
  tlbAddPageWithoutGather: false,
  tlbAddPageForTables: true,
  existingLeafErrno: 'EEXIST',
  mapOverTable: 'free-if-empty',
};

/**
 * Dirty hooks: a leaf is dirty when D (bit 9) is set; cleaning clears D; empty slots inside the
 * range are skipped (generic_pt `read_and_clear_dirty`).
 */
export const VTD_SL_DIRTY_OPS: PtDirtyOps = {
  isDirty(lo: number): boolean {
    return (lo & VTD_SL_PTE_D) !== 0;
  },
  clearDirty(words: Uint32Array, wi: number): void {
    words[wi] = (words[wi] ?? 0) & ~VTD_SL_PTE_D;
  },
  holes: 'skip',
};

/**
 * Build the VT-d second-stage format with options.
 * @param options - fixed depth and the domain's snoop / writeable settings (kept by reference)
 * @returns a format whose `setup` accepts quirk NO_WARN only, narrows `pgsizeBitmap` to
 * 4K | 2M | 1G (4K required, else `EINVAL`), `oas` to ≤ 52, `ias` to the depth's width (≤ 57;
 * `EINVAL` below 32), and writes `cfg.rootCfg = { rootPa, levels, aw: levels - 2 }`
 */
export function createVtdSlFormat(options: VtdSlFormatOptions = {}): IoPgtableFormat {
  return {
    name: 'VTD_SS',
    fmt: IoPgtableFmt.VTD_SS,
    quirksAllowed: IO_PGTABLE_QUIRK_NO_WARN,
    setup(cfg: IoPgtableCfg): PtFormatInstance {
      if (!Number.isInteger(cfg.ias) || cfg.ias < 32) {
        throw new ErrnoError('EINVAL', `VT-d second stage: input size ${cfg.ias} is below 32 bits`);
      }
      const levelsCount = pickLevels(
        options.levels,
        cfg.levels,
        [3, 4, 5] as const,
        cfg.ias <= 39 ? 3 : cfg.ias <= 48 ? 4 : 5,
      );
      const ias = Math.min(cfg.ias, vtdAgawToWidth(levelsCount - 2));
      const oas = x86PtNarrowOas(cfg.oas);
      const pgsize = x86PtNarrowPgsize(cfg.pgsizeBitmap, oas);
      cfg.ias = ias;
      cfg.oas = oas;
      cfg.pgsizeBitmap = pgsize;
      return makeInstance(levelsCount, ias, oas, pgsize, options);
    },
  };
}

/**
 * The VT-d second-stage format with defaults: depth from `cfg.ias`, no forced snooping, read-only
 * maps allowed. Format number {@link (IoPgtableFmt:variable)}.VTD_SS.
 */
export const vtdSlFormat: IoPgtableFormat = createVtdSlFormat();

function makeInstance(
  levelsCount: 3 | 4 | 5,
  vaBits: number,
  oaBits: number,
  pgsizeBitmap: bigint,
  options: VtdSlFormatOptions,
): PtFormatInstance {
  const topLevel = levelsCount - 1;
  const levels = x86PtBuildLevels(topLevel, vaBits, pgsizeBitmap);
  const levelOf = levels.map((_, depth) => topLevel - depth);
  const shiftOf = levels.map((l) => l.shift);

  const classify = (lo: number, hi: number, depth: number): PtEntryKind => {
    if (lo === 0 && hi === 0) return PtEntryKind.EMPTY;
    const level = levelOf[depth] ?? 0;
    if (level === 0 || (level <= X86_PT_MAX_LEAF_LEVEL && (lo & VTD_SL_PTE_PS) !== 0))
      return PtEntryKind.LEAF;
    return PtEntryKind.TABLE;
  };

  return {
    entryWords: 2,
    levels,
    vaBits,
    oaBits,
    upperIova: 'zero',
    pgsizeBitmap,
    granule: 4096,
    fastCodec: {
      kindBitsLo: VTD_SL_PTE_PS,
      tableAddrLo: X86_PT_ADDR_LO_MASK,
      tableAddrHi: X86_PT_ADDR_HI_MASK,
      leafAddrLo: levelOf.map((level) => x86PtOaMasks(level).lo),
      leafAddrHi: levelOf.map((level) => x86PtOaMasks(level).hi),
    },
    policy: VTD_SL_POLICY,
    dirty: VTD_SL_DIRTY_OPS,
    classify,
    tablePa: x86PtTablePa,
    writeTable(words: Uint32Array, wi: number, tablePa: number): void {
      x86PtWriteTable(words, wi, tablePa, VTD_SL_TABLE_ATTRS);
    },
    leafTemplate(prot: number): PtLeafTemplate {
      return vtdSlProtToAttrs(prot, options);
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
      const lo = t.lo | ((levelOf[depth] ?? 0) > 0 ? VTD_SL_PTE_PS : 0);
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
      const attrs = {
        R: (lo & VTD_SL_PTE_R) !== 0,
        W: (lo & VTD_SL_PTE_W) !== 0,
        X: (lo & VTD_SL_PTE_X) !== 0,
        PS: (lo & VTD_SL_PTE_PS) !== 0,
        A: (lo & VTD_SL_PTE_A) !== 0,
        D: (lo & VTD_SL_PTE_D) !== 0,
        SNP: (lo & VTD_SL_PTE_SNP) !== 0,
      };
      if (kind === PtEntryKind.LEAF) {
        return {
          kind,
          pa: x86PtDecodeOa(lo, hi, levelOf[depth] ?? 0),
          sizeLg2: shiftOf[depth] ?? 12,
          attrs,
        };
      }
      if (kind === PtEntryKind.TABLE) return { kind, pa: x86PtDecodeOa(lo, hi, 0), attrs };
      return { kind, attrs };
    },
    writeRegisters(cfg: IoPgtableCfg, rootPa: number): void {
      cfg.rootCfg = { rootPa: BigInt(rootPa), levels: levelsCount, aw: levelsCount - 2 };
    },
  };
}
