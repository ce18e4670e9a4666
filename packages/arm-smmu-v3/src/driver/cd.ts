/**
 * Context descriptors and CD tables (arm-smmu-v3.h `CTXDESC_*`; arm-smmu-v3.c
 * `arm_smmu_make_s1_cd`, `arm_smmu_get_cd_used`, `arm_smmu_alloc_cd_tables`,
 * `arm_smmu_alloc_cd_ptr`; spec §3.1–§3.3, §8.5). Field definitions are the driver's own.
 */

import { IO_PGTABLE_QUIRK_ARM_HD, type IoPgtableCfg } from '@iommu-ts/io-pgtable';
import type { PhysicalMemory } from '@iommu-ts/mm';
import { NUM_ENTRY_QWORDS } from './entry-writer.js';
import { fieldPrep, STRTAB_STE_0_S1FMT_64K_L2, STRTAB_STE_0_S1FMT_LINEAR } from './ste.js';

function bit(n: number): bigint {
  return 1n << BigInt(n);
}
function genmask(hi: number, lo: number): bigint {
  return ((1n << BigInt(hi - lo + 1)) - 1n) << BigInt(lo);
}

/** `CTXDESC_CD_0_TCR_T0SZ`: DW0 bits 5:0. */
export const CTXDESC_CD_0_TCR_T0SZ = genmask(5, 0);
/** `CTXDESC_CD_0_TCR_TG0`: DW0 bits 7:6. */
export const CTXDESC_CD_0_TCR_TG0 = genmask(7, 6);
/** `CTXDESC_CD_0_TCR_IRGN0`: DW0 bits 9:8. */
export const CTXDESC_CD_0_TCR_IRGN0 = genmask(9, 8);
/** `CTXDESC_CD_0_TCR_ORGN0`: DW0 bits 11:10. */
export const CTXDESC_CD_0_TCR_ORGN0 = genmask(11, 10);
/** `CTXDESC_CD_0_TCR_SH0`: DW0 bits 13:12. */
export const CTXDESC_CD_0_TCR_SH0 = genmask(13, 12);
/** `CTXDESC_CD_0_TCR_EPD0`: DW0 bit 14. */
export const CTXDESC_CD_0_TCR_EPD0 = bit(14);
/** `CTXDESC_CD_0_ENDI`: DW0 bit 15. */
export const CTXDESC_CD_0_ENDI = bit(15);
/** `CTXDESC_CD_0_TCR_EPD1`: DW0 bit 30. */
export const CTXDESC_CD_0_TCR_EPD1 = bit(30);
/** `CTXDESC_CD_0_V`: DW0 bit 31. */
export const CTXDESC_CD_0_V = bit(31);
/** `CTXDESC_CD_0_TCR_IPS`: DW0 bits 34:32. */
export const CTXDESC_CD_0_TCR_IPS = genmask(34, 32);
/** `CTXDESC_CD_0_AA64`: DW0 bit 41. */
export const CTXDESC_CD_0_AA64 = bit(41);
/** `CTXDESC_CD_0_TCR_HD`: DW0 bit 42. */
export const CTXDESC_CD_0_TCR_HD = bit(42);
/** `CTXDESC_CD_0_TCR_HA`: DW0 bit 43. */
export const CTXDESC_CD_0_TCR_HA = bit(43);
/** `CTXDESC_CD_0_S`: DW0 bit 44 (stall). */
export const CTXDESC_CD_0_S = bit(44);
/** `CTXDESC_CD_0_R`: DW0 bit 45 (record faults). */
export const CTXDESC_CD_0_R = bit(45);
/** `CTXDESC_CD_0_A`: DW0 bit 46 (abort terminated transactions). */
export const CTXDESC_CD_0_A = bit(46);
/** `CTXDESC_CD_0_ASET`: DW0 bit 47. */
export const CTXDESC_CD_0_ASET = bit(47);
/** `CTXDESC_CD_0_ASID`: DW0 bits 63:48. */
export const CTXDESC_CD_0_ASID = genmask(63, 48);
/** `CTXDESC_CD_1_TTB0_MASK`: DW1 bits 51:4. */
export const CTXDESC_CD_1_TTB0_MASK = genmask(51, 4);
/** `CTXDESC_L1_DESC_V`: L1CD bit 0. */
export const CTXDESC_L1_DESC_V = 1n;
/** `CTXDESC_L1_DESC_L2PTR_MASK`: L1CD bits 51:12. */
export const CTXDESC_L1_DESC_L2PTR_MASK = genmask(51, 12);
/** `CTXDESC_SPLIT`: log2 of the CDs per leaf table (1024 CDs = 64 KiB). */
export const CTXDESC_SPLIT = 10;
/** `CTXDESC_L2_ENTRIES`: CDs per leaf table. */
export const CTXDESC_L2_ENTRIES = 1 << CTXDESC_SPLIT;
/** `CTXDESC_LINEAR_CDMAX`: the largest linear table, log2(64 KiB / 64 B). */
export const CTXDESC_LINEAR_CDMAX = 10;
/** Size of one CD in bytes. */
export const CTXDESC_CD_SIZE = 64;

/** A CD as 8 qwords (DW0..DW7, u64 each). */
export type ArmSmmuCd = bigint[];

/** Inputs of {@link makeS1Cd}. */
export interface S1CdParams {
  /** The domain's ASID. */
  asid: number;
  /** The io-pgtable configuration after `allocIoPgtableOps(ARM_64_LPAE_S1, …)` (reads `armLpaeS1Cfg`, quirks). */
  pgtblCfg: IoPgtableCfg;
  /** The master is stall-enabled (CD.S=1). */
  stallEnabled: boolean;
}

/**
 * `arm_smmu_make_s1_cd`: the CD of a stage-1 paging domain (spec §3.1, §3.3): TCR fields from
 * io-pgtable, EPD1, V, IPS, AA64, S (stall), R, A, ASET, ASID; TTB0; MAIR; HA|HD with the HD quirk.
 * @throws Error when the cfg has no stage-1 output
 */
export function makeS1Cd(p: S1CdParams): ArmSmmuCd {
  const s1 = p.pgtblCfg.armLpaeS1Cfg;
  if (s1 === undefined) throw new Error('makeS1Cd: io-pgtable cfg has no stage-1 output');
  const tcr = s1.tcr;
  const cd = new Array<bigint>(NUM_ENTRY_QWORDS).fill(0n);
  let dw0 =
    fieldPrep(CTXDESC_CD_0_TCR_T0SZ, tcr.tsz) |
    fieldPrep(CTXDESC_CD_0_TCR_TG0, tcr.tg) |
    fieldPrep(CTXDESC_CD_0_TCR_IRGN0, tcr.irgn) |
    fieldPrep(CTXDESC_CD_0_TCR_ORGN0, tcr.orgn) |
    fieldPrep(CTXDESC_CD_0_TCR_SH0, tcr.sh) |
    CTXDESC_CD_0_TCR_EPD1 |
    CTXDESC_CD_0_V |
    fieldPrep(CTXDESC_CD_0_TCR_IPS, tcr.ips) |
    CTXDESC_CD_0_AA64 |
    (p.stallEnabled ? CTXDESC_CD_0_S : 0n) |
    CTXDESC_CD_0_R |
    CTXDESC_CD_0_A |
    CTXDESC_CD_0_ASET |
    fieldPrep(CTXDESC_CD_0_ASID, p.asid);
  if ((p.pgtblCfg.quirks & IO_PGTABLE_QUIRK_ARM_HD) !== 0) dw0 |= CTXDESC_CD_0_TCR_HA | CTXDESC_CD_0_TCR_HD;
  cd[0] = dw0;
  cd[1] = s1.ttbr & CTXDESC_CD_1_TTB0_MASK;
  cd[3] = s1.mair & 0xffff_ffff_ffff_ffffn;
  return cd;
}

/** `arm_smmu_get_cd_used`: V only when invalid; else every bit, minus the TTB0 walk fields under EPD0. */
export function cdUsedBits(cd: readonly bigint[]): bigint[] {
  const used = new Array<bigint>(NUM_ENTRY_QWORDS).fill(0n);
  const dw0 = cd[0] ?? 0n;
  used[0] = CTXDESC_CD_0_V;
  if ((dw0 & CTXDESC_CD_0_V) === 0n) return used;
  used.fill(0xffff_ffff_ffff_ffffn);
  if ((dw0 & CTXDESC_CD_0_TCR_EPD0) !== 0n) {
    used[0] =
      (used[0] as bigint) &
      ~(
        CTXDESC_CD_0_TCR_T0SZ |
        CTXDESC_CD_0_TCR_TG0 |
        CTXDESC_CD_0_TCR_IRGN0 |
        CTXDESC_CD_0_TCR_ORGN0 |
        CTXDESC_CD_0_TCR_SH0
      );
    used[1] = (used[1] as bigint) & ~CTXDESC_CD_1_TTB0_MASK;
  }
  return used;
}

/**
 * A master's CD table (`struct arm_smmu_ctx_desc_cfg`): linear (S1Fmt 0) or two-level with 64 KiB
 * leaves allocated on demand (S1Fmt 2), in the machine's physical memory.
 */
export class ArmSmmuCdTable {
  /** `s1fmt`: `STRTAB_STE_0_S1FMT_LINEAR` or `STRTAB_STE_0_S1FMT_64K_L2`. */
  readonly s1fmt: number;
  /** `s1cdmax`: log2 of the number of CDs. */
  readonly s1cdmax: number;
  /** PA of the linear CD table or of the L1CD table (the STE's S1ContextPtr). */
  readonly cdtabDma: number;
  /** Linear: number of CDs; two-level: number of L1 descriptors. */
  readonly numEnts: number;
  /** Two-level: PA of each leaf table (`l2ptrs`), `null` when not allocated yet. */
  readonly leaves: (number | null)[];
  /** `used_ssids`: how many non-zero SSIDs hold a valid CD (maintained by master.ts). */
  usedSsids = 0;
  private readonly memory: PhysicalMemory;

  private constructor(memory: PhysicalMemory, s1cdmax: number, twoLevel: boolean) {
    this.memory = memory;
    this.s1cdmax = s1cdmax;
    const max = 2 ** s1cdmax;
    if (!twoLevel) {
      this.s1fmt = STRTAB_STE_0_S1FMT_LINEAR;
      this.numEnts = max;
      this.leaves = [];
      this.cdtabDma = memory.allocTable(max * CTXDESC_CD_SIZE);
    } else {
      this.s1fmt = STRTAB_STE_0_S1FMT_64K_L2;
      this.numEnts = Math.ceil(max / CTXDESC_L2_ENTRIES);
      this.leaves = new Array<number | null>(this.numEnts).fill(null);
      this.cdtabDma = memory.allocTable(this.numEnts * 8);
    }
  }

  /**
   * `arm_smmu_alloc_cd_tables`: linear when the SMMU lacks CD2L or 2^ssidBits fits one leaf, else
   * two-level.
   * @param memory - where to allocate (zeroed)
   * @param ssidBits - the master's ssid bits (`s1cdmax`)
   * @param cd2l - FEAT_2_LVL_CDTAB
   * @throws ErrnoError `ENOMEM`
   */
  static alloc(memory: PhysicalMemory, ssidBits: number, cd2l: boolean): ArmSmmuCdTable {
    const twoLevel = cd2l && 2 ** ssidBits > CTXDESC_L2_ENTRIES;
    return new ArmSmmuCdTable(memory, ssidBits, twoLevel);
  }

  /**
   * `arm_smmu_get_cd_ptr`: the PA of the CD for `ssid`, or `null` when its leaf is not allocated.
   * @param ssid - 0 .. 2^s1cdmax − 1
   */
  cdPtr(ssid: number): number | null {
    if (this.s1fmt === STRTAB_STE_0_S1FMT_LINEAR) return this.cdtabDma + ssid * CTXDESC_CD_SIZE;
    const leaf = this.leaves[ssid >> CTXDESC_SPLIT] ?? null;
    if (leaf === null) return null;
    return leaf + (ssid & (CTXDESC_L2_ENTRIES - 1)) * CTXDESC_CD_SIZE;
  }

  /**
   * The leaf half of `arm_smmu_alloc_cd_ptr`: allocate the leaf holding `ssid` if missing and
   * publish it with one 64-bit L1CD store.
   * @returns true when a leaf was allocated (the caller must then issue CFGI_CD(ssid, leaf=0) + SYNC)
   * @throws ErrnoError `ENOMEM`
   */
  ensureLeaf(ssid: number): boolean {
    if (this.s1fmt === STRTAB_STE_0_S1FMT_LINEAR) return false;
    const idx = ssid >> CTXDESC_SPLIT;
    if ((this.leaves[idx] ?? null) !== null) return false;
    const leaf = this.memory.allocTable(CTXDESC_L2_ENTRIES * CTXDESC_CD_SIZE);
    this.leaves[idx] = leaf;
    this.memory.write64(
      this.cdtabDma + idx * 8,
      (BigInt(leaf) & CTXDESC_L1_DESC_L2PTR_MASK) | CTXDESC_L1_DESC_V,
    );
    return true;
  }

  /** `arm_smmu_free_cd_tables`: free every leaf and the top table. */
  free(): void {
    if (this.s1fmt === STRTAB_STE_0_S1FMT_LINEAR) {
      this.memory.freeTable(this.cdtabDma, this.numEnts * CTXDESC_CD_SIZE);
      return;
    }
    for (const leaf of this.leaves)
      if (leaf !== null) this.memory.freeTable(leaf, CTXDESC_L2_ENTRIES * CTXDESC_CD_SIZE);
    this.memory.freeTable(this.cdtabDma, this.numEnts * 8);
  }
}
