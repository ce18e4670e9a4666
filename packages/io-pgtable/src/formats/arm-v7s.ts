/**
 * The ARMv7 short-descriptor format (`ARM_V7S`) as a format descriptor for the generic walker.
 *
 * Mirrors Linux drivers/iommu/io-pgtable-arm-v7s.c: two levels of 32-bit descriptors (level 1:
 * 4096 entries, 16 KiB table, 1 MiB sections and 16 MiB supersections; level 2: 256 entries, 1 KiB
 * table, 4 KiB small and 64 KiB large pages), contiguous entries written as 16 identical copies,
 * page-by-page map/unmap, `tlb_add_page` once per cleared leaf slot even without a gather, and
 * `tlb_flush_walk(iova, 1M, 4K)` when a level-2 table is removed.
 *
 * How the core covers what v7s needs (formerly open interface notes, all resolved):
 *
 * 1. Contiguous-size unmap, slot by slot: a walker rule for every page size spanning several
 *    entries (see format.ts). As Linux's `__arm_v7s_unmap` with num_entries = 16: all 16 target
 *    slots must be valid (else 0, nothing touched); no partial check (64K over 16 small pages, or
 *    16M over sections and level-2 tables, succeeds); all 16 are cleared, then in slot order a
 *    table slot gets `tlbFlushWalk(iova + i·slot, slot, 4K)` and its table is freed, a leaf slot
 *    gets `tlbAddPage(gather, iova + i·slot, slot)` unless the gather is queued (even when null).
 * 2. Map over tables under a supersection: each removed table is flushed with its own slot,
 *    `tlbFlushWalk(iova + i·1M, 1M, 4K)` (the walker does this for every format).
 * 3. Single-slot partial unmap (4K of a large page, 1M of a supersection, anything inside a
 *    section) returns 0 through the walker's `leafSizeLg2` check.
 * 4. Table placement: `maxTablePa` is 2^32, or 2^oas with `ARM_MTK_TTBR_EXT`; the walker checks it
 *    right after `allocTable` (map: the table is freed again and the map fails with `ENOMEM`;
 *    allocation: null).
 * 5. Registration: `allocIoPgtableOps(IoPgtableFmt.ARM_V7S, …)` works; `index.ts` exports the
 *    format and the pure helpers of arm-v7s-pte.ts / arm-v7s-regs.ts.
 * 6. Custom allocator: Linux v7s lacks `IO_PGTABLE_CAP_CUSTOM_ALLOCATOR`; here `cfg.memory` stands
 *    for the kernel's page allocator too, so it is accepted.
 * 7. Warnings: v7s does not accept quirk NO_WARN (as Linux), so `cfg.warn` always hears about
 *    EEXIST, invalid unmap slots and partial unmaps.
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
  type PtLevel,
  type PtPolicy,
} from '../format.js';
import { IO_PGTABLE_QUIRK_ARM_MTK_TTBR_EXT } from '../quirks.js';
import {
  type ArmV7sLevel,
  armV7sMakeTable,
  armV7sPaddrToPte,
  armV7sProtToPte,
  armV7sPteIsCont,
  armV7sPteToCont,
  armV7sPteToPaddr,
  armV7sTableSize,
  decodeArmV7sPte,
} from './arm-v7s-pte.js';
import {
  ARM_V7S_ACCEPTED_QUIRKS,
  armV7sCfgRegs,
  armV7sCheckCfg,
  armV7sPgsizeBitmap,
} from './arm-v7s-regs.js';

/** The walker policy of v7s: page by page, `tlbAddPage` without gather and only for leaf slots. */
export const ARM_V7S_POLICY: PtPolicy = {
  mapPageByPage: true,
  unmapPageByPage: true,
  tlbAddPageWithoutGather: true,
  tlbAddPageForTables: false,
  existingLeafErrno: 'EEXIST',
  mapOverTable: 'free',
};

const levelOf = (depth: number): ArmV7sLevel => (depth === 0 ? 1 : 2);

/** Level-1 leaf sizes (1M, 16M) and level-2 leaf sizes (4K, 64K), log2 bytes. */
const LEAF_LG2: readonly (readonly number[])[] = [
  [20, 24],
  [12, 16],
];

/**
 * Configure v7s for `cfg` (the checks and register values of `arm_v7s_alloc_pgtable`).
 *
 * @param cfg - the caller's configuration; `pgsizeBitmap` is narrowed in place
 * @returns the configured format
 * @throws ErrnoError `EINVAL` where Linux returns NULL: ias \> 32 (34 with MTK_EXT), oas \> 32 (35
 *   with MTK_EXT), a quirk outside ARM_NS | NO_PERMS | ARM_MTK_EXT | ARM_MTK_TTBR_EXT, MTK_EXT
 *   without NO_PERMS, MTK_TTBR_EXT without MTK_EXT
 */
function setupArmV7s(cfg: IoPgtableCfg): PtFormatInstance {
  const why = armV7sCheckCfg(cfg);
  if (why !== null) throw new ErrnoError('EINVAL', `ARM_V7S: ${why}`);
  const quirks = cfg.quirks;
  const ias = cfg.ias;
  const pgsizeBitmap = armV7sPgsizeBitmap(cfg.pgsizeBitmap);
  cfg.pgsizeBitmap = pgsizeBitmap;

  const offered = (lg2: number): boolean => ((pgsizeBitmap >> BigInt(lg2)) & 1n) === 1n;
  const levels: PtLevel[] = [
    {
      label: 1,
      shift: 20,
      indexBits: ias - 20,
      runBits: ias - 20,
      tableBytes: armV7sTableSize(1, ias),
      leafSizesLg2: LEAF_LG2[0]!.filter(offered),
    },
    {
      label: 2,
      shift: 12,
      indexBits: 8,
      runBits: 8,
      tableBytes: armV7sTableSize(2, ias),
      leafSizesLg2: LEAF_LG2[1]!.filter(offered),
    },
  ];

  return {
    entryWords: 1,
    levels,
    vaBits: ias,
    oaBits: cfg.oas,
    upperIova: 'zero',
    pgsizeBitmap,
    // Linux passes ARM_V7S_BLOCK_SIZE(2) to tlb_flush_walk whatever the bitmap holds.
    granule: 0x1000,
    policy: ARM_V7S_POLICY,
    // Table addresses must fit the table descriptor: 32 bits, or below 2^oas with MTK_TTBR_EXT.
    maxTablePa: quirks & IO_PGTABLE_QUIRK_ARM_MTK_TTBR_EXT ? 2 ** cfg.oas : 2 ** 32,

    classify(lo: number, _hi: number, depth: number): PtEntryKind {
      const type = lo & 0x3;
      if (type === 0) return lo === 0 ? PtEntryKind.EMPTY : PtEntryKind.INVALID;
      if (depth === 0 && type === 0x1) return PtEntryKind.TABLE;
      return PtEntryKind.LEAF;
    },

    tablePa(lo: number, _hi: number, _depth: number): number {
      return armV7sPteToPaddr(lo, 1, quirks);
    },

    writeTable(words: Uint32Array, wi: number, tablePa: number, _depth: number): void {
      words[wi] = armV7sMakeTable(tablePa, quirks);
    },

    leafTemplate(prot: number, depth: number, sizeLg2: number): PtLeafTemplate {
      const level = levelOf(depth);
      let lo = armV7sProtToPte(prot, level, quirks);
      if (sizeLg2 > (level === 1 ? 20 : 12)) lo = armV7sPteToCont(lo, level);
      return { lo, hi: 0 };
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
      const level = levelOf(depth);
      const per = 1 << (sizeLg2 - (level === 1 ? 20 : 12));
      const size = sizeLg2 < 31 ? 1 << sizeLg2 : 2 ** sizeLg2;
      let w = wi;
      for (let n = 0; n < count; n++) {
        const pte = (t.lo | armV7sPaddrToPte(pa + n * size, level, quirks)) >>> 0;
        for (let i = 0; i < per; i++) words[w++] = pte;
      }
    },

    leafPa(lo: number, _hi: number, depth: number): number {
      return armV7sPteToPaddr(lo, levelOf(depth), quirks);
    },

    leafSizeLg2(lo: number, _hi: number, depth: number): number {
      const level = levelOf(depth);
      const base = level === 1 ? 20 : 12;
      return armV7sPteIsCont(lo, level) ? base + 4 : base;
    },

    decode(lo: number, _hi: number, depth: number): PtDecodedEntry {
      const d = decodeArmV7sPte(lo >>> 0, levelOf(depth), quirks);
      if (d.kind === 'invalid') {
        return { kind: lo === 0 ? PtEntryKind.EMPTY : PtEntryKind.INVALID, attrs: {} };
      }
      if (d.kind === 'table') return { kind: PtEntryKind.TABLE, pa: d.paddr, attrs: { NS: d.ns ? 1 : 0 } };
      const attrs: Record<string, number | boolean | string> = {
        type: d.kind,
        XN: d.xn ? 1 : 0,
        B: d.b ? 1 : 0,
        C: d.c ? 1 : 0,
        TEX: d.tex,
        AP0: d.ap0 ? 1 : 0,
        AP1: d.ap1 ? 1 : 0,
        AP2: d.ap2 ? 1 : 0,
        S: d.s ? 1 : 0,
        nG: d.ng ? 1 : 0,
      };
      if (depth === 0) attrs['NS'] = d.ns ? 1 : 0;
      return { kind: PtEntryKind.LEAF, pa: d.paddr, sizeLg2: Math.log2(d.size), attrs };
    },

    writeRegisters(c: IoPgtableCfg, rootPa: number): void {
      c.armV7sCfg = { ...armV7sCfgRegs(rootPa, c.coherentWalk, c.quirks) };
    },
  };
}

/**
 * The `ARM_V7S` format (`io_pgtable_arm_v7s_init_fns`): pass it, or `IoPgtableFmt.ARM_V7S`, to
 * `allocIoPgtableOps`. Accepts quirks ARM_NS, NO_PERMS, ARM_MTK_EXT, ARM_MTK_TTBR_EXT; writes
 * `cfg.armV7sCfg` (TTBR, TCR = 0, NMRR = 0x4000_4000, PRRR = 0x800B_8204) and narrows
 * `cfg.pgsizeBitmap` to 4K | 64K | 1M | 16M.
 */
export const armV7sFormat: IoPgtableFormat = {
  name: 'ARM_V7S',
  fmt: IoPgtableFmt.ARM_V7S,
  quirksAllowed: ARM_V7S_ACCEPTED_QUIRKS,
  setup: setupArmV7s,
};
