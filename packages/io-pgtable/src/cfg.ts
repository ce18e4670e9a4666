/**
 * `struct io_pgtable_cfg` (include/linux/io-pgtable.h): what the caller asks for, and the register
 * values the format computes.
 */

import type { IommuFlushOps } from './gather.js';
import type { PageTableMemory } from './memory.js';

/**
 * Stage-1 translation-control fields (`arm_lpae_s1_cfg.tcr`). Small unsigned field values; the
 * driver packs them into TCR/CD words.
 */
export interface ArmLpaeS1Tcr {
  /** Intermediate/physical address size encoding (oas 32→0, 36→1, 40→2, 42→3, 44→4, 48→5, 52→6). */
  ips: number;
  /** Granule encoding: TG0 (4K→0, 64K→1, 16K→2) or, with quirk ARM_TTBR1, TG1 (16K→1, 4K→2, 64K→3). */
  tg: number;
  /** Shareability of table walks: 0 non, 2 outer, 3 inner. */
  sh: number;
  /** Outer cacheability of walks: 0 non-cacheable, 1 write-back write-allocate. */
  orgn: number;
  /** Inner cacheability of walks: 0 non-cacheable, 1 write-back write-allocate. */
  irgn: number;
  /** `64 - ias`. */
  tsz: number;
}

/** Stage-1 output of an LPAE format (`struct arm_lpae_s1_cfg`). */
export interface ArmLpaeS1Cfg {
  /** Physical address of the top-level table. */
  ttbr: bigint;
  /** Translation-control fields. */
  tcr: ArmLpaeS1Tcr;
  /** MAIR value, four attribute bytes (0x0000_0000_F404_FF44 in Linux). */
  mair: bigint;
}

/** Stage-2 virtualization translation-control fields (`arm_lpae_s2_cfg.vtcr`). */
export interface ArmLpaeS2Vtcr {
  /** Physical address size encoding (same table as stage-1 `ips`). */
  ps: number;
  /** TG0 granule encoding (4K→0, 64K→1, 16K→2). */
  tg: number;
  /** Shareability of walks. */
  sh: number;
  /** Outer cacheability of walks. */
  orgn: number;
  /** Inner cacheability of walks. */
  irgn: number;
  /** Starting-level encoding SL0. */
  sl: number;
  /** `64 - ias`. */
  tsz: number;
}

/** Stage-2 output of an LPAE format (`struct arm_lpae_s2_cfg`). */
export interface ArmLpaeS2Cfg {
  /** Physical address of the (possibly concatenated) top-level table. */
  vttbr: bigint;
  /** Virtualization translation-control fields. */
  vtcr: ArmLpaeS2Vtcr;
}

/** Output of the ARMv7 short-descriptor format (`struct arm_v7s_cfg`), 32-bit register values. */
export interface ArmV7sCfg {
  /** TTBR value (table PA plus walk attributes). */
  ttbr: number;
  /** TCR value (0 in Linux). */
  tcr: number;
  /** Normal memory remap register. */
  nmrr: number;
  /** Primary region remap register. */
  prrr: number;
}

/** Output of the x86-64 and VT-d second-level formats: the root pointer and depth. */
export interface PtRootCfg {
  /** Physical address of the top-level table (`gcr3_pt` / `ssptptr`). */
  rootPa: bigint;
  /** Number of levels (4 or 5 for x86-64; 3, 4 or 5 for VT-d second level). */
  levels: number;
  /** VT-d address width field (`aw = levels - 2`), x86 formats leave it undefined. */
  aw?: number;
}

/**
 * `struct io_pgtable_cfg`: input to `allocIoPgtableOps`, updated in place by it.
 *
 * @remarks
 * On success `pgsizeBitmap`, `ias` and `oas` hold the narrowed values the format will use and the
 * format's output field (`armLpaeS1Cfg`, `armLpaeS2Cfg`, `armV7sCfg`, `rootCfg`) is written.
 */
export interface IoPgtableCfg {
  /** Bitmap of `IO_PGTABLE_QUIRK_*` values. */
  quirks: number;
  /**
   * Page/block sizes, one bit per size in bytes (bit n = 2^n bytes). In: sizes the IOMMU supports;
   * out: sizes the format will use. A bigint because 4T (bit 42) exists.
   */
  pgsizeBitmap: bigint;
  /** Input (IOVA) address size in bits; may be lowered. */
  ias: number;
  /** Output (PA/IPA) address size in bits; may be lowered. */
  oas: number;
  /** Whether the table walker snoops CPU caches (`coherent_walk`). */
  coherentWalk: boolean;
  /** TLB maintenance callbacks (`tlb`); null or absent means none. */
  tlb?: IommuFlushOps | null;
  /**
   * Where tables live; stands for `cfg->alloc`/`cfg->free` and the kernel's page allocator.
   * Absent: `allocIoPgtableOps` creates a fresh {@link InMemoryPageTableMemory}.
   */
  memory?: PageTableMemory;
  /**
   * Number of table levels, for the formats whose depth is a hardware choice rather than a
   * function of `ias`: `X86_64` (4 or 5) and `VTD_SS` (3, 4 or 5; the Intel driver takes it from
   * CAP.SAGAW). `ias` is then lowered to what that depth translates. Any other value makes
   * allocation fail (`null`). Absent: derived from `ias`. Ignored by the ARM formats, whose depth
   * always follows `ias` and the granule.
   */
  levels?: number;
  /**
   * Where to report what Linux reports with `WARN_ON`/`WARN_ONCE` on the page-table paths: a map
   * onto an existing mapping, an unmap of nothing (or stopping at a hole), and an unmap of part of
   * a larger leaf. Quirk `IO_PGTABLE_QUIRK_NO_WARN` silences the first two as in Linux; the
   * partial-unmap warning is a `WARN_ONCE` that Linux prints whatever the quirk says. Absent:
   * warnings are dropped.
   * @param message - a one-line description of the event
   */
  warn?: (message: string) => void;
  /** Stage-1 LPAE output, written by ARM_32/64_LPAE_S1. */
  armLpaeS1Cfg?: ArmLpaeS1Cfg;
  /** Stage-2 LPAE output, written by ARM_32/64_LPAE_S2. */
  armLpaeS2Cfg?: ArmLpaeS2Cfg;
  /** v7s output, written by ARM_V7S. */
  armV7sCfg?: ArmV7sCfg;
  /** Root pointer output, written by the x86-64 and VT-d second-level formats. */
  rootCfg?: PtRootCfg;
}
