/**
 * Register values of the ARM LPAE formats: MAIR, stage-1 TCR fields, stage-2 VTCR fields
 * (drivers/iommu/io-pgtable-arm.c, `arm_64_lpae_alloc_pgtable_s1/_s2`; packing as
 * drivers/iommu/arm/arm-smmu/arm-smmu.h).
 */

import { ErrnoError } from '@iommu-ts/base';
import type { ArmLpaeS1Tcr, ArmLpaeS2Vtcr } from '../cfg.js';

/** MAIR attribute index 0: Normal, inner and outer non-cacheable (0x44). */
export const ARM_LPAE_MAIR_ATTR_IDX_NC = 0;
/** MAIR attribute index 1: Normal, inner and outer write-back read/write-allocate (0xFF). */
export const ARM_LPAE_MAIR_ATTR_IDX_CACHE = 1;
/** MAIR attribute index 2: Device-nGnRE (0x04). */
export const ARM_LPAE_MAIR_ATTR_IDX_DEV = 2;
/** MAIR attribute index 3: inner non-cacheable, outer write-back (0xF4). */
export const ARM_LPAE_MAIR_ATTR_IDX_INC_OCACHE = 3;
/** The MAIR value Linux computes for stage 1: `0x0000_0000_F404_FF44`. */
export const ARM_LPAE_MAIR = 0xf404ff44n;

/**
 * The IPS/PS encoding of an output-address size.
 * @param oas - output address bits
 * @returns 0..6 for 32, 36, 40, 42, 44, 48, 52
 * @throws ErrnoError `EINVAL` for any other size (Linux's allocator returns NULL)
 */
export function armLpaeEncodePs(oas: number): number {
  const ps = [32, 36, 40, 42, 44, 48, 52].indexOf(oas);
  if (ps < 0) throw new ErrnoError('EINVAL', `unsupported output address size ${oas}`);
  return ps;
}

/**
 * Stage-1 TCR fields.
 * @param granule - 4096, 16384 or 65536
 * @param ias - input bits
 * @param oas - output bits
 * @param coherent - `coherent_walk`
 * @param outerWbwa - quirk ARM_OUTER_WBWA
 * @param ttbr1 - quirk ARM_TTBR1 (TG1 encoding)
 * @throws ErrnoError `EINVAL` for OUTER_WBWA with a coherent walker, or an unsupported oas
 */
export function armLpaeS1Tcr(
  granule: number,
  ias: number,
  oas: number,
  coherent: boolean,
  outerWbwa: boolean,
  ttbr1: boolean,
): ArmLpaeS1Tcr {
  let sh: number;
  let irgn: number;
  let orgn: number;
  if (coherent) {
    if (outerWbwa) throw new ErrnoError('EINVAL', 'OUTER_WBWA needs a non-coherent walker');
    sh = 3;
    irgn = 1;
    orgn = 1;
  } else {
    sh = 2;
    irgn = 0;
    orgn = outerWbwa ? 1 : 0;
  }
  const tg = ttbr1
    ? granule === 4096
      ? 2
      : granule === 16384
        ? 1
        : 3
    : granule === 4096
      ? 0
      : granule === 16384
        ? 2
        : 1;
  return { ips: armLpaeEncodePs(oas), tg, sh, orgn, irgn, tsz: 64 - ias };
}

/**
 * Stage-2 VTCR fields.
 * @param granule - 4096, 16384 or 65536
 * @param ias - input bits
 * @param oas - output bits
 * @param coherent - `coherent_walk`
 * @param startLevel - ARM start level (0..3) after concatenation
 * @throws ErrnoError `EINVAL` for an unsupported oas
 */
export function armLpaeS2Vtcr(
  granule: number,
  ias: number,
  oas: number,
  coherent: boolean,
  startLevel: number,
): ArmLpaeS2Vtcr {
  const s = granule === 4096 ? startLevel + 1 : startLevel;
  return {
    ps: armLpaeEncodePs(oas),
    tg: granule === 4096 ? 0 : granule === 16384 ? 2 : 1,
    sh: coherent ? 3 : 2,
    orgn: coherent ? 1 : 0,
    irgn: coherent ? 1 : 0,
    sl: ~s & 3,
    tsz: 64 - ias,
  };
}

/**
 * Pack stage-1 fields the way the SMMUv2 driver does (`arm_smmu_lpae_tcr`): T0SZ 5:0, IRGN0 9:8,
 * ORGN0 11:10, SH0 13:12, TG0 15:14, EPD1 (bit 23); with TTBR1 the value moves up 16 bits, A1
 * (bit 22) is cleared and EPD0 (bit 7) set.
 * @param tcr - the fields
 * @param ttbr1 - quirk ARM_TTBR1
 * @returns the 32-bit TCR value, e.g. 0x0080_3510 for 4K, ias 48, coherent
 */
export function armSmmuV2PackTcr(tcr: ArmLpaeS1Tcr, ttbr1: boolean): number {
  const v = tcr.tsz | (tcr.irgn << 8) | (tcr.orgn << 10) | (tcr.sh << 12) | (tcr.tg << 14);
  if (ttbr1) return ((v << 16) | (1 << 7)) >>> 0;
  return (v | (1 << 23)) >>> 0;
}

/**
 * Pack stage-2 fields as the SMMUv2 driver does (`arm_smmu_lpae_vtcr`): RES1 bit 31, PS 18:16,
 * TG0 15:14, SH0 13:12, ORGN0 11:10, IRGN0 9:8, SL0 7:6, T0SZ 5:0.
 * @param vtcr - the fields
 * @returns the 32-bit VTCR value
 */
export function armSmmuV2PackVtcr(vtcr: ArmLpaeS2Vtcr): number {
  return (
    ((1 << 31) |
      (vtcr.ps << 16) |
      (vtcr.tg << 14) |
      (vtcr.sh << 12) |
      (vtcr.orgn << 10) |
      (vtcr.irgn << 8) |
      (vtcr.sl << 6) |
      vtcr.tsz) >>>
    0
  );
}
