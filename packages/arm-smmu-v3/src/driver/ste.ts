/**
 * Stream table entries the driver writes, and which of their bits the SMMU uses
 * (arm-smmu-v3.h `STRTAB_STE_*`; arm-smmu-v3.c `arm_smmu_make_*_ste`, `arm_smmu_get_ste_used`;
 * spec §2.2, §2.4, §8.4). Field definitions are the driver's own, independent of `src/hw/`.
 */

import type { ArmLpaeS2Vtcr } from '@iommu-ts/io-pgtable';
import { NUM_ENTRY_QWORDS } from './entry-writer.js';
import { STRTAB_STE_0_CFG, STRTAB_STE_0_CFG_ABORT, STRTAB_STE_0_CFG_BYPASS, STRTAB_STE_0_V } from './regs.js';

/** Build a bigint mask of bits `hi..lo` (inclusive). */
function genmask(hi: number, lo: number): bigint {
  return ((1n << BigInt(hi - lo + 1)) - 1n) << BigInt(lo);
}

/** Place `value` into the field `mask` (`FIELD_PREP`). */
export function fieldPrep(mask: bigint, value: bigint | number): bigint {
  let shift = 0n;
  while (((mask >> shift) & 1n) === 0n) shift++;
  return (BigInt(value) << shift) & mask;
}

/** Extract the field `mask` from `value` (`FIELD_GET`). */
export function fieldGet(mask: bigint, value: bigint): bigint {
  let shift = 0n;
  while (((mask >> shift) & 1n) === 0n) shift++;
  return (value & mask) >> shift;
}

/** Config value: stage-1 translate. */
export const STRTAB_STE_0_CFG_S1_TRANS = 5n;
/** Config value: stage-2 translate. */
export const STRTAB_STE_0_CFG_S2_TRANS = 6n;
/** Config value: nested. */
export const STRTAB_STE_0_CFG_NESTED = 7n;
/** `STRTAB_STE_0_S1FMT`: DW0 bits 5:4. */
export const STRTAB_STE_0_S1FMT = genmask(5, 4);
/** S1Fmt: linear CD table. */
export const STRTAB_STE_0_S1FMT_LINEAR = 0;
/** S1Fmt: two-level CD table with 64 KiB leaves. */
export const STRTAB_STE_0_S1FMT_64K_L2 = 2;
/** `STRTAB_STE_0_S1CTXPTR_MASK`: DW0 bits 51:6. */
export const STRTAB_STE_0_S1CTXPTR_MASK = genmask(51, 6);
/** `STRTAB_STE_0_S1CDMAX`: DW0 bits 63:59. */
export const STRTAB_STE_0_S1CDMAX = genmask(63, 59);
/** `STRTAB_STE_1_S1DSS`: DW1 bits 1:0. */
export const STRTAB_STE_1_S1DSS = genmask(1, 0);
/** S1DSS: terminate transactions without SSID. */
export const STRTAB_STE_1_S1DSS_TERMINATE = 0;
/** S1DSS: bypass stage 1 for transactions without SSID. */
export const STRTAB_STE_1_S1DSS_BYPASS = 1;
/** S1DSS: transactions without SSID use CD 0. */
export const STRTAB_STE_1_S1DSS_SSID0 = 2;
/** `STRTAB_STE_1_S1CIR`: DW1 bits 3:2. */
export const STRTAB_STE_1_S1CIR = genmask(3, 2);
/** `STRTAB_STE_1_S1COR`: DW1 bits 5:4. */
export const STRTAB_STE_1_S1COR = genmask(5, 4);
/** `STRTAB_STE_1_S1CSH`: DW1 bits 7:6. */
export const STRTAB_STE_1_S1CSH = genmask(7, 6);
/** `STRTAB_STE_1_MEV`: DW1 bit 19. */
export const STRTAB_STE_1_MEV = 1n << 19n;
/** `STRTAB_STE_1_S2FWB`: DW1 bit 25. */
export const STRTAB_STE_1_S2FWB = 1n << 25n;
/** `STRTAB_STE_1_S1STALLD`: DW1 bit 27. */
export const STRTAB_STE_1_S1STALLD = 1n << 27n;
/** `STRTAB_STE_1_EATS`: DW1 bits 29:28. */
export const STRTAB_STE_1_EATS = genmask(29, 28);
/** EATS value: full ATS. */
export const STRTAB_STE_1_EATS_TRANS = 1;
/** `STRTAB_STE_1_STRW`: DW1 bits 31:30. */
export const STRTAB_STE_1_STRW = genmask(31, 30);
/** STRW value: EL2 (E2H). */
export const STRTAB_STE_1_STRW_EL2 = 2;
/** `STRTAB_STE_1_SHCFG`: DW1 bits 45:44. */
export const STRTAB_STE_1_SHCFG = genmask(45, 44);
/** SHCFG value: use the incoming shareability. */
export const STRTAB_STE_1_SHCFG_INCOMING = 1;
/** `STRTAB_STE_2_S2VMID`: DW2 bits 15:0. */
export const STRTAB_STE_2_S2VMID = genmask(15, 0);
/** `STRTAB_STE_2_VTCR`: DW2 bits 50:32 (T0SZ 5:0, SL0 7:6, IR0 9:8, OR0 11:10, SH0 13:12, TG 15:14, PS 18:16). */
export const STRTAB_STE_2_VTCR = genmask(50, 32);
/** `STRTAB_STE_2_S2AA64`: DW2 bit 51. */
export const STRTAB_STE_2_S2AA64 = 1n << 51n;
/** `STRTAB_STE_2_S2ENDI`: DW2 bit 52. */
export const STRTAB_STE_2_S2ENDI = 1n << 52n;
/** `STRTAB_STE_2_S2PTW`: DW2 bit 54. */
export const STRTAB_STE_2_S2PTW = 1n << 54n;
/** `STRTAB_STE_2_S2S`: DW2 bit 57. */
export const STRTAB_STE_2_S2S = 1n << 57n;
/** `STRTAB_STE_2_S2R`: DW2 bit 58. */
export const STRTAB_STE_2_S2R = 1n << 58n;
/** `STRTAB_STE_3_S2TTB_MASK`: DW3 bits 51:4. */
export const STRTAB_STE_3_S2TTB_MASK = genmask(51, 4);

/** An STE as 8 qwords (DW0..DW7, u64 each). */
export type ArmSmmuSte = bigint[];

function emptyEntry(): bigint[] {
  return new Array<bigint>(NUM_ENTRY_QWORDS).fill(0n);
}

/** `arm_smmu_make_abort_ste`: V=1, Config=abort. */
export function makeAbortSte(): ArmSmmuSte {
  const ste = emptyEntry();
  ste[0] = STRTAB_STE_0_V | fieldPrep(STRTAB_STE_0_CFG, STRTAB_STE_0_CFG_ABORT);
  return ste;
}

/**
 * `arm_smmu_make_bypass_ste`: V=1, Config=bypass; SHCFG=incoming when the SMMU has
 * FEAT_ATTR_TYPES_OVR.
 * @param attrTypesOvr - FEAT_ATTR_TYPES_OVR
 */
export function makeBypassSte(attrTypesOvr: boolean): ArmSmmuSte {
  const ste = emptyEntry();
  ste[0] = STRTAB_STE_0_V | fieldPrep(STRTAB_STE_0_CFG, STRTAB_STE_0_CFG_BYPASS);
  if (attrTypesOvr) ste[1] = fieldPrep(STRTAB_STE_1_SHCFG, STRTAB_STE_1_SHCFG_INCOMING);
  return ste;
}

/** Inputs of {@link makeCdtableSte}. */
export interface CdtableSteParams {
  /** Physical address of the CD table (linear) or of the L1CD table (two-level). */
  cdtabDma: bigint;
  /** `STRTAB_STE_0_S1FMT_LINEAR` or `STRTAB_STE_0_S1FMT_64K_L2`. */
  s1fmt: number;
  /** `s1cdmax`: log2 of the number of CDs (the master's ssid bits), 0 = no substreams. */
  s1cdmax: number;
  /** `STRTAB_STE_1_S1DSS_*`. */
  s1dss: number;
  /** EATS=1 (ATS enabled for the master). */
  ats: boolean;
  /** Set S1STALLD (FEAT_STALLS and the master is not stall-enabled). */
  s1stalld: boolean;
  /** FEAT_E2H: STRW=EL2 and no S2VMID. */
  e2h: boolean;
  /** FEAT_ATTR_TYPES_OVR: SHCFG=incoming when S1DSS=bypass. */
  attrTypesOvr: boolean;
}

/** `arm_smmu_make_cdtable_ste`: Config=S1 translate pointing at a CD table (spec §2.4). */
export function makeCdtableSte(p: CdtableSteParams): ArmSmmuSte {
  const ste = emptyEntry();
  ste[0] =
    STRTAB_STE_0_V |
    fieldPrep(STRTAB_STE_0_CFG, STRTAB_STE_0_CFG_S1_TRANS) |
    fieldPrep(STRTAB_STE_0_S1FMT, p.s1fmt) |
    (p.cdtabDma & STRTAB_STE_0_S1CTXPTR_MASK) |
    fieldPrep(STRTAB_STE_0_S1CDMAX, p.s1cdmax);
  let dw1 =
    fieldPrep(STRTAB_STE_1_S1DSS, p.s1dss) |
    fieldPrep(STRTAB_STE_1_S1CIR, 1) |
    fieldPrep(STRTAB_STE_1_S1COR, 1) |
    fieldPrep(STRTAB_STE_1_S1CSH, 3) |
    (p.s1stalld ? STRTAB_STE_1_S1STALLD : 0n) |
    fieldPrep(STRTAB_STE_1_EATS, p.ats ? STRTAB_STE_1_EATS_TRANS : 0);
  if (p.attrTypesOvr && p.s1dss === STRTAB_STE_1_S1DSS_BYPASS)
    dw1 |= fieldPrep(STRTAB_STE_1_SHCFG, STRTAB_STE_1_SHCFG_INCOMING);
  if (p.e2h) dw1 |= fieldPrep(STRTAB_STE_1_STRW, STRTAB_STE_1_STRW_EL2);
  ste[1] = dw1;
  // Without E2H the STE is NS-EL1 and S2VMID stays 0 (DW2 = 0).
  return ste;
}

/** Inputs of {@link makeS2DomainSte}. */
export interface S2SteParams {
  /** The domain's VMID. */
  vmid: number;
  /** io-pgtable's VTCR fields. */
  vtcr: ArmLpaeS2Vtcr;
  /** io-pgtable's VTTBR (table PA). */
  vttbr: bigint;
  /** EATS=1. */
  ats: boolean;
  /** The master is stall-enabled (S2S=1). */
  stallEnabled: boolean;
  /** The page table has the S2FWB quirk. */
  s2fwb: boolean;
  /** FEAT_ATTR_TYPES_OVR: SHCFG=incoming. */
  attrTypesOvr: boolean;
}

/** Pack io-pgtable's VTCR fields into the 19-bit STE VTCR field value. */
export function packSteVtcr(vtcr: ArmLpaeS2Vtcr): bigint {
  return (
    BigInt(vtcr.tsz & 0x3f) |
    (BigInt(vtcr.sl & 3) << 6n) |
    (BigInt(vtcr.irgn & 3) << 8n) |
    (BigInt(vtcr.orgn & 3) << 10n) |
    (BigInt(vtcr.sh & 3) << 12n) |
    (BigInt(vtcr.tg & 3) << 14n) |
    (BigInt(vtcr.ps & 7) << 16n)
  );
}

/** `arm_smmu_make_s2_domain_ste`: Config=S2 translate (spec §2.4). */
export function makeS2DomainSte(p: S2SteParams): ArmSmmuSte {
  const ste = emptyEntry();
  ste[0] = STRTAB_STE_0_V | fieldPrep(STRTAB_STE_0_CFG, STRTAB_STE_0_CFG_S2_TRANS);
  let dw1 = fieldPrep(STRTAB_STE_1_EATS, p.ats ? STRTAB_STE_1_EATS_TRANS : 0);
  if (p.s2fwb) dw1 |= STRTAB_STE_1_S2FWB;
  if (p.attrTypesOvr) dw1 |= fieldPrep(STRTAB_STE_1_SHCFG, STRTAB_STE_1_SHCFG_INCOMING);
  ste[1] = dw1;
  ste[2] =
    fieldPrep(STRTAB_STE_2_S2VMID, p.vmid) |
    fieldPrep(STRTAB_STE_2_VTCR, packSteVtcr(p.vtcr)) |
    STRTAB_STE_2_S2AA64 |
    STRTAB_STE_2_S2PTW |
    (p.stallEnabled ? STRTAB_STE_2_S2S : 0n) |
    STRTAB_STE_2_S2R;
  ste[3] = p.vttbr & STRTAB_STE_3_S2TTB_MASK;
  return ste;
}

/** `arm_smmu_get_ste_used`: the bits of `ste` the SMMU reads in its configuration (spec §8.4). */
export function steUsedBits(ste: readonly bigint[]): bigint[] {
  const used = emptyEntry();
  const dw0 = ste[0] ?? 0n;
  const dw1 = ste[1] ?? 0n;
  used[0] = STRTAB_STE_0_V;
  if ((dw0 & STRTAB_STE_0_V) === 0n) return used;
  used[0] |= STRTAB_STE_0_CFG;
  const cfg = fieldGet(STRTAB_STE_0_CFG, dw0);
  let u1 = 0n;
  let u2 = 0n;
  let u3 = 0n;
  if ((cfg & 1n) !== 0n) {
    used[0] |= STRTAB_STE_0_S1FMT | STRTAB_STE_0_S1CTXPTR_MASK | STRTAB_STE_0_S1CDMAX;
    u1 |=
      STRTAB_STE_1_S1DSS |
      STRTAB_STE_1_S1CIR |
      STRTAB_STE_1_S1COR |
      STRTAB_STE_1_S1CSH |
      STRTAB_STE_1_S1STALLD |
      STRTAB_STE_1_STRW |
      STRTAB_STE_1_EATS |
      STRTAB_STE_1_MEV;
    u2 |= STRTAB_STE_2_S2VMID;
    if (Number(fieldGet(STRTAB_STE_1_S1DSS, dw1)) === STRTAB_STE_1_S1DSS_BYPASS) u1 |= STRTAB_STE_1_SHCFG;
  }
  if ((cfg & 2n) !== 0n) {
    u1 |= STRTAB_STE_1_S2FWB | STRTAB_STE_1_EATS | STRTAB_STE_1_SHCFG | STRTAB_STE_1_MEV;
    u2 |=
      STRTAB_STE_2_S2VMID |
      STRTAB_STE_2_VTCR |
      STRTAB_STE_2_S2AA64 |
      STRTAB_STE_2_S2ENDI |
      STRTAB_STE_2_S2PTW |
      STRTAB_STE_2_S2S |
      STRTAB_STE_2_S2R;
    u3 |= STRTAB_STE_3_S2TTB_MASK;
  }
  if (cfg === STRTAB_STE_0_CFG_BYPASS) u1 |= STRTAB_STE_1_SHCFG;
  used[1] = u1;
  used[2] = u2;
  used[3] = u3;
  return used;
}
