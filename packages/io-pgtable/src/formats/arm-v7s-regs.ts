/**
 * ARMv7 short-descriptor (`ARM_V7S`) configuration checks and the register values the format
 * computes for the driver (`struct io_pgtable_cfg.arm_v7s_cfg`: TTBR, TCR, NMRR, PRRR).
 *
 * Pure functions. Mirrors `arm_v7s_alloc_pgtable` and the `ARM_V7S_PRRR_*`, `ARM_V7S_NMRR_*`,
 * `ARM_V7S_TTBR_*`, `ARM_V7S_RGN_*` macros of Linux drivers/iommu/io-pgtable-arm-v7s.c.
 */

import {
  IO_PGTABLE_QUIRK_ARM_MTK_EXT,
  IO_PGTABLE_QUIRK_ARM_MTK_TTBR_EXT,
  IO_PGTABLE_QUIRK_ARM_NS,
  IO_PGTABLE_QUIRK_NO_PERMS,
} from '../quirks.js';
import { ARM_V7S_ADDR_BITS, ARM_V7S_PGSIZE_BITMAP } from './arm-v7s-pte.js';

/** The `IO_PGTABLE_QUIRK_*` bits v7s accepts: ARM_NS | NO_PERMS | ARM_MTK_EXT | ARM_MTK_TTBR_EXT (0x1b). */
export const ARM_V7S_ACCEPTED_QUIRKS =
  IO_PGTABLE_QUIRK_ARM_NS |
  IO_PGTABLE_QUIRK_NO_PERMS |
  IO_PGTABLE_QUIRK_ARM_MTK_EXT |
  IO_PGTABLE_QUIRK_ARM_MTK_TTBR_EXT;

/** Cacheability encodings used in TTBR IRGN/ORGN and NMRR fields (`ARM_V7S_RGN_*`). */
export const ArmV7sRgn = {
  /** Non-cacheable. */
  NC: 0,
  /** Write-back, write-allocate. */
  WBWA: 1,
  /** Write-through. */
  WT: 2,
  /** Write-back, no write-allocate. */
  WB: 3,
} as const;

/** PRRR memory-type encodings (`ARM_V7S_PRRR_TYPE_*`). */
export const ArmV7sPrrrType = {
  /** Device memory. */
  DEVICE: 1,
  /** Normal memory. */
  NORMAL: 2,
} as const;

/**
 * PRRR.TRn field for TEX-remap index `n` (bits `2n+1:2n`).
 *
 * @param n - remap index 0–7 (TEX[0]:C:B)
 * @param type - a {@link ArmV7sPrrrType} value
 */
export function armV7sPrrrTr(n: number, type: number): number {
  return ((type & 0x3) << (n * 2)) >>> 0;
}

/**
 * NMRR.IRn (inner) field for index `n` (bits `2n+1:2n`).
 *
 * @param n - remap index 0–7
 * @param rgn - a {@link ArmV7sRgn} value
 */
export function armV7sNmrrIr(n: number, rgn: number): number {
  return ((rgn & 0x3) << (n * 2)) >>> 0;
}

/**
 * NMRR.ORn (outer) field for index `n` (bits `2n+17:2n+16`).
 *
 * @param n - remap index 0–7
 * @param rgn - a {@link ArmV7sRgn} value
 */
export function armV7sNmrrOr(n: number, rgn: number): number {
  return ((rgn & 0x3) << (n * 2 + 16)) >>> 0;
}

/**
 * The PRRR value v7s always writes: TR1 Device, TR4 Normal, TR7 Normal, DS0, DS1, NS1, NOS7
 * (`0x800B_8204`).
 */
export const ARM_V7S_PRRR =
  (armV7sPrrrTr(1, ArmV7sPrrrType.DEVICE) |
    armV7sPrrrTr(4, ArmV7sPrrrType.NORMAL) |
    armV7sPrrrTr(7, ArmV7sPrrrType.NORMAL) |
    (1 << 16) |
    (1 << 17) |
    (1 << 19) |
    (1 << 31)) >>>
  0;

/** The NMRR value v7s always writes: IR7 = OR7 = write-back write-allocate (`0x4000_4000`). */
export const ARM_V7S_NMRR = (armV7sNmrrIr(7, ArmV7sRgn.WBWA) | armV7sNmrrOr(7, ArmV7sRgn.WBWA)) >>> 0;

/** The TTBCR value v7s writes: 0 (T0SZ = 0, EAE = 0: short descriptors, TTBR0 covers everything). */
export const ARM_V7S_TCR = 0;

/**
 * TTBR IRGN field (`ARM_V7S_TTBR_IRGN_ATTR`): attribute bit 0 goes to TTBR bit 6, attribute bit 1
 * to TTBR bit 0.
 *
 * @param rgn - a {@link ArmV7sRgn} value
 */
export function armV7sTtbrIrgn(rgn: number): number {
  return ((rgn & 0x1) << 6) | ((rgn & 0x2) >> 1);
}

/**
 * TTBR ORGN field (`ARM_V7S_TTBR_ORGN_ATTR`), bits 4:3.
 *
 * @param rgn - a {@link ArmV7sRgn} value
 */
export function armV7sTtbrOrgn(rgn: number): number {
  return (rgn & 0x3) << 3;
}

/**
 * The TTBR value for a level-1 table at `pgdPa`.
 *
 * Without `ARM_MTK_EXT`: `pgdPa | S (bit 1)`, plus NOS (bit 5) | IRGN WBWA | ORGN WBWA when the
 * walker is coherent (so `pgdPa | 0x6A`), else IRGN NC | ORGN NC (`pgdPa | 0x2`). With
 * `ARM_MTK_EXT`: the low 32 bits of `pgdPa` OR its upper 32 bits (MediaTek reads TTBR bits 2:0 as
 * PA bits 34:32).
 *
 * @param pgdPa - physical address of the level-1 table (16 KiB aligned; below 2^35)
 * @param coherentWalk - `cfg.coherent_walk`
 * @param quirks - `IO_PGTABLE_QUIRK_*` bitmap
 * @returns the unsigned 32-bit register value
 */
export function armV7sTtbr(pgdPa: number, coherentWalk: boolean, quirks: number): number {
  const lo = pgdPa % 0x100000000;
  if (quirks & IO_PGTABLE_QUIRK_ARM_MTK_EXT) return (lo | Math.floor(pgdPa / 0x100000000)) >>> 0;
  const attrs = coherentWalk
    ? (1 << 5) | armV7sTtbrIrgn(ArmV7sRgn.WBWA) | armV7sTtbrOrgn(ArmV7sRgn.WBWA)
    : armV7sTtbrIrgn(ArmV7sRgn.NC) | armV7sTtbrOrgn(ArmV7sRgn.NC);
  return (lo | (1 << 1) | attrs) >>> 0;
}

/** The four 32-bit registers of `struct io_pgtable_cfg.arm_v7s_cfg`. */
export interface ArmV7sCfgRegs {
  /** TTBR0: level-1 table address with walk attributes (see {@link armV7sTtbr}). */
  readonly ttbr: number;
  /** TTBCR: always 0. */
  readonly tcr: number;
  /** NMRR: TEX-remap normal-memory cacheability ({@link ARM_V7S_NMRR}). */
  readonly nmrr: number;
  /** PRRR: TEX-remap memory types ({@link ARM_V7S_PRRR}). */
  readonly prrr: number;
}

/**
 * All four register values the format reports after allocating its level-1 table.
 *
 * @param pgdPa - physical address of the level-1 table
 * @param coherentWalk - `cfg.coherent_walk`
 * @param quirks - `IO_PGTABLE_QUIRK_*` bitmap
 */
export function armV7sCfgRegs(pgdPa: number, coherentWalk: boolean, quirks: number): ArmV7sCfgRegs {
  return {
    ttbr: armV7sTtbr(pgdPa, coherentWalk, quirks),
    tcr: ARM_V7S_TCR,
    nmrr: ARM_V7S_NMRR,
    prrr: ARM_V7S_PRRR,
  };
}

/**
 * Narrow a driver's page-size bitmap to what v7s can map: AND with 4K | 64K | 1M | 16M, so
 * supersections are used only when the driver offered 16 MiB.
 *
 * @param pgsizeBitmap - the driver's sizes (bit n set = 2^n bytes supported)
 * @returns the sizes v7s will use
 */
export function armV7sPgsizeBitmap(pgsizeBitmap: bigint): bigint {
  return pgsizeBitmap & BigInt(ARM_V7S_PGSIZE_BITMAP);
}

/** The configuration fields v7s validates at allocation time. */
export interface ArmV7sCfgCheck {
  /** Input (IOVA) address size, bits. */
  readonly ias: number;
  /** Output (PA) address size, bits. */
  readonly oas: number;
  /** `IO_PGTABLE_QUIRK_*` bitmap. */
  readonly quirks: number;
}

/**
 * Why `arm_v7s_alloc_pgtable` would refuse a configuration, or `null` if it accepts it.
 *
 * Rules, in the kernel's order: ias ≤ 32 (34 with `ARM_MTK_EXT`); oas ≤ 32 (35 with `ARM_MTK_EXT`);
 * no quirk outside {@link ARM_V7S_ACCEPTED_QUIRKS}; `ARM_MTK_EXT` requires `NO_PERMS`;
 * `ARM_MTK_TTBR_EXT` requires `ARM_MTK_EXT`. (Linux returns NULL for all of these; the caller maps
 * that to its own failure.)
 *
 * @param cfg - the fields to check
 * @returns a short human-readable reason, or `null`
 */
export function armV7sCheckCfg(cfg: ArmV7sCfgCheck): string | null {
  const mtk = (cfg.quirks & IO_PGTABLE_QUIRK_ARM_MTK_EXT) !== 0;
  if (cfg.ias > (mtk ? 34 : ARM_V7S_ADDR_BITS)) return `ias ${cfg.ias} too large`;
  if (cfg.oas > (mtk ? 35 : ARM_V7S_ADDR_BITS)) return `oas ${cfg.oas} too large`;
  if (cfg.quirks & ~ARM_V7S_ACCEPTED_QUIRKS) return 'unsupported quirk';
  if (mtk && !(cfg.quirks & IO_PGTABLE_QUIRK_NO_PERMS)) return 'ARM_MTK_EXT requires NO_PERMS';
  if (cfg.quirks & IO_PGTABLE_QUIRK_ARM_MTK_TTBR_EXT && !mtk) return 'ARM_MTK_TTBR_EXT requires ARM_MTK_EXT';
  return null;
}
