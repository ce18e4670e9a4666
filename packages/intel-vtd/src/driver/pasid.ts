/**
 * Scalable-mode PASID directory and tables of a device, and PASID-entry setup, teardown and
 * replacement (drivers/iommu/intel/pasid.c `intel_pasid_alloc_table`, `intel_pasid_get_entry`,
 * `intel_pasid_setup_first_level`, `intel_pasid_setup_second_level`,
 * `intel_pasid_setup_pass_through`, `intel_pasid_tear_down_entry`, `pasid_flush_caches`,
 * `intel_pasid_setup_dirty_tracking`; pasid.h setters; digest §2.5–§2.7, §8.6, §8.7).
 *
 * @remarks
 * Entries are eight 64-bit words written with plain stores, P set last and cleared first. Leaf
 * PASID tables are allocated on first use and installed with a compare-exchange of the directory
 * entry; they are freed with the directory when the device is released.
 */

import { ErrnoError } from '@iommu-ts/base';
import { DEVTLB_MASK_ALL, pciDevid, VTD_PAGE_MASK } from './context.js';
import type { IntelIommu } from './intel-iommu.js';
import { qiFlushDevIotlb, qiFlushDevIotlbPasid, qiFlushPasidCache, qiFlushPiotlb } from './qi.js';
import {
  capFl5lpSupport,
  ecapFlts,
  ecapPassThrough,
  ecapSlts,
  ecapSmpwc,
  FLPT_DEFAULT_DID,
  QI_PC_PASID_SEL,
} from './regs.js';

/** `IOMMU_NO_PASID`: PASID 0 carries DMA without PASID in scalable mode. */
export const IOMMU_NO_PASID = 0;
/** `PASID_PDE_SHIFT`: PASIDs per leaf table = 2^6. */
export const PASID_PDE_SHIFT = 6;
/** Bytes per PASID-table entry. */
export const PASID_ENTRY_BYTES = 64;
/** PASID entry qw0 P. */
export const PASID_P = 1n;
/** PASID entry qw0 FPD. */
export const PASID_FPD = 1n << 1n;
/** PASID entry qw0 AW shift (bits 4:2). */
export const PASID_AW_SHIFT = 2n;
/** PASID entry qw0 PGTT shift (bits 8:6). */
export const PASID_PGTT_SHIFT = 6n;
/** PASID entry qw0 SSADE (bit 9): second-stage A/D enable. */
export const PASID_SSADE = 1n << 9n;
/** PASID entry qw1 PWSNP (bit 23 of qw1): page-walk snoop. */
export const PASID_PWSNP = 1n << 23n;
/** PASID entry qw1 PGSNP (bit 24 of qw1): page snoop. */
export const PASID_PGSNP = 1n << 24n;
/** PASID entry qw2 FLPM shift (bits 3:2 of qw2). */
export const PASID_FLPM_SHIFT = 2n;

/** `PASID_ENTRY_PGTT_*`: the translation type of a PASID entry. */
export const PasidPgtt = {
  /** First-stage only. */
  FL_ONLY: 1,
  /** Second-stage only. */
  SL_ONLY: 2,
  /** Nested. */
  NESTED: 3,
  /** Pass-through. */
  PT: 4,
} as const;
/** A value of {@link (PasidPgtt:variable)}. */
export type PasidPgtt = (typeof PasidPgtt)[keyof typeof PasidPgtt];

/** What PASID teardown needs to know about the device (`struct device_domain_info`). */
export interface PasidDeviceInfo {
  /** The unit. */
  readonly iommu: IntelIommu;
  /** Bus number. */
  readonly bus: number;
  /** devfn. */
  readonly devfn: number;
  /** `ats_enabled`. */
  readonly atsEnabled: boolean;
  /** `pfsid`. */
  readonly pfsid: number;
  /** `ats_qdep`. */
  readonly atsQdep: number;
  /** `dtlb_extra_inval`. */
  readonly dtlbExtraInval: boolean;
  /** The device's PASID table (`info->pasid_table`), `null` in legacy mode. */
  readonly pasidTable: PasidTable | null;
}

/**
 * `struct pasid_table`: a device's PASID directory (a power-of-two number of pages) and its lazily
 * allocated leaf tables.
 */
export class PasidTable {
  /** The unit. */
  readonly iommu: IntelIommu;
  /** Physical address of the directory. */
  readonly dir: number;
  /** Page order of the directory. */
  readonly order: number;
  /** `max_pasid`: 2^(order + 15). */
  readonly maxPasid: number;

  /**
   * @param iommu - the unit
   * @param dir - directory physical address
   * @param order - directory page order
   */
  private constructor(iommu: IntelIommu, dir: number, order: number) {
    this.iommu = iommu;
    this.dir = dir;
    this.order = order;
    this.maxPasid = 2 ** (order + 12 + 3);
  }

  /**
   * `intel_pasid_alloc_table`: directory bytes = maxPasid / 64 · 8 rounded up to a power-of-two
   * number of pages (one page at least).
   * @param iommu - the unit
   * @param maxPasid - the device's PASID count (0 for devices without PASID)
   * @returns the table
   * @throws ErrnoError `ENOMEM`
   */
  static alloc(iommu: IntelIommu, maxPasid: number): PasidTable {
    const size = Math.floor(maxPasid / 2 ** (PASID_PDE_SHIFT - 3));
    let order = 0;
    while (4096 * 2 ** order < size) order++;
    let dir: number;
    try {
      dir = iommu.memory.allocPages(order, { zero: true });
    } catch {
      throw new ErrnoError('ENOMEM', 'no pages for a PASID directory');
    }
    return new PasidTable(iommu, dir, order);
  }

  /**
   * `context_get_sm_pds`: PDTS for the context entry (log2(maxPasid / 64) − 7, at least 0).
   */
  get pdts(): number {
    const pds = Math.log2(this.maxPasid >> PASID_PDE_SHIFT);
    return pds < 7 ? 0 : pds - 7;
  }

  /**
   * `intel_pasid_get_entry(dev, pasid)`: the entry's physical address, allocating the leaf table
   * (installed as `phys | P` with compare-exchange from 0) when `alloc`.
   * @param pasid - the PASID
   * @param alloc - allocate a missing leaf
   * @returns the address, or `null` (PASID beyond `maxPasid`, or no leaf and not `alloc`)
   * @throws ErrnoError `ENOMEM` when a leaf cannot be allocated
   */
  entry(pasid: number, alloc = true): number | null {
    if (pasid < 0 || pasid >= this.maxPasid) return null;
    const mem = this.iommu.memory;
    const pde = this.dir + (pasid >> PASID_PDE_SHIFT) * 8;
    let v = mem.read64(pde);
    if ((v & 1n) === 0n) {
      if (!alloc) return null;
      let leaf: number;
      try {
        leaf = mem.allocPages(0, { zero: true });
      } catch {
        throw new ErrnoError('ENOMEM', 'no page for a PASID table');
      }
      if (mem.read64(pde) !== 0n) mem.freePages(leaf, 0);
      else mem.write64(pde, BigInt(leaf) | 1n);
      v = mem.read64(pde);
    }
    return Number(v & VTD_PAGE_MASK) + (pasid & ((1 << PASID_PDE_SHIFT) - 1)) * PASID_ENTRY_BYTES;
  }

  /** `intel_pasid_free_table`: free every leaf table and the directory. */
  free(): void {
    const mem = this.iommu.memory;
    const n = (4096 * 2 ** this.order) / 8;
    for (let i = 0; i < n; i++) {
      const v = mem.read64(this.dir + i * 8);
      if ((v & 1n) !== 0n) mem.freePages(Number(v & VTD_PAGE_MASK), 0);
    }
    mem.freePages(this.dir, this.order);
  }
}

/** The eight words of a PASID entry. */
export type PasidEntryWords = readonly [bigint, bigint, bigint, bigint, bigint, bigint, bigint, bigint];

/**
 * Read a PASID entry.
 * @param iommu - the unit
 * @param pa - entry address
 * @returns its eight words
 */
export function readPasidEntry(iommu: IntelIommu, pa: number): PasidEntryWords {
  const m = iommu.memory;
  return [0, 1, 2, 3, 4, 5, 6, 7].map((i) => m.read64(pa + i * 8)) as unknown as PasidEntryWords;
}

/** Write the eight words: zero everything, the upper words, then qw0 with P last. */
function writePasidEntry(iommu: IntelIommu, pa: number, w: readonly bigint[]): void {
  const m = iommu.memory;
  m.write64(pa, 0n);
  for (let i = 1; i < 8; i++) m.write64(pa + i * 8, w[i] ?? 0n);
  const qw0 = w[0] ?? 0n;
  m.write64(pa, qw0 & ~PASID_P);
  m.write64(pa, qw0 | PASID_P);
}

/** `pasid_get_domain_id`: DID (qw1 bits 15:0). */
export function pasidGetDomainId(w: PasidEntryWords): number {
  return Number(w[1] & 0xffffn);
}

/** `pasid_pte_get_pgtt`: PGTT (qw0 bits 8:6). */
export function pasidGetPgtt(w: PasidEntryWords): number {
  return Number((w[0] >> PASID_PGTT_SHIFT) & 7n);
}

function entryFor(info: PasidDeviceInfo, pasid: number): number {
  const table = info.pasidTable;
  if (table === null) throw new ErrnoError('ENODEV', 'no PASID table');
  const pa = table.entry(pasid, true);
  if (pa === null) throw new ErrnoError('ENODEV', `PASID ${pasid} beyond the table`);
  return pa;
}

/**
 * `pasid_flush_caches(iommu, pte, pasid, did)` after a not-present → present change: caching
 * mode → PASID-selective PASID-cache invalidation and PASID-based IOTLB "all"; else write-buffer
 * flush.
 * @param iommu - the unit
 * @param pasid - PASID
 * @param did - DID of the new entry
 */
export function pasidFlushCaches(iommu: IntelIommu, pasid: number, did: number): void {
  if (iommu.cachingMode) {
    qiFlushPasidCache(iommu, did, QI_PC_PASID_SEL, pasid);
    qiFlushPiotlb(iommu, did, pasid, 0n, 'all', false);
  } else {
    iommu.flushWriteBuffer();
  }
}

function install(info: PasidDeviceInfo, pasid: number, did: number, words: bigint[]): void {
  const iommu = info.iommu;
  const pa = entryFor(info, pasid);
  if ((iommu.memory.read64(pa) & PASID_P) !== 0n)
    throw new ErrnoError(
      'EBUSY',
      `PASID ${pasid} entry of ${pciDevid(info.bus, info.devfn).toString(16)} is present`,
    );
  writePasidEntry(iommu, pa, words);
  pasidFlushCaches(iommu, pasid, did);
}

/** Parameters of a first-stage PASID entry. */
export interface PasidFirstLevelConfig {
  /** First-stage table root. */
  readonly fsptptr: bigint;
  /** DID. */
  readonly did: number;
  /** 5-level paging (FLPM = 1). */
  readonly fl5lp: boolean;
  /** PGSNP (force snooping). */
  readonly pageSnoop: boolean;
  /** PWSNP (`PASID_FLAG_PWSNP`); default ECAP.SMPWC. SVA entries always set it (digest §8.10). */
  readonly pwsnp?: boolean;
}

/**
 * `intel_pasid_setup_first_level`: FLPTR, FLPM, PGSNP, DID, AW = unit agaw, PWSNP (`cfg.pwsnp`,
 * default ECAP.SMPWC), PGTT = 001, P.
 * @param info - the device
 * @param pasid - the PASID
 * @param cfg - the entry's parameters
 * @throws ErrnoError `EINVAL` (no FLTS, or 5-level without FL5LP), `ENODEV` (no PASID table or
 *   PASID too large), `EBUSY` (entry present), `ENOMEM`
 */
export function pasidSetupFirstLevel(info: PasidDeviceInfo, pasid: number, cfg: PasidFirstLevelConfig): void {
  const iommu = info.iommu;
  if (!ecapFlts(iommu.ecap))
    throw new ErrnoError('EINVAL', `No first level translation support on ${iommu.name}`);
  if (cfg.fl5lp && !capFl5lpSupport(iommu.cap))
    throw new ErrnoError('EINVAL', `No 5-level paging support for first-level on ${iommu.name}`);
  const qw0 = (BigInt(iommu.agaw & 7) << PASID_AW_SHIFT) | (BigInt(PasidPgtt.FL_ONLY) << PASID_PGTT_SHIFT);
  let qw1 = BigInt(cfg.did & 0xffff);
  if (cfg.pageSnoop) qw1 |= PASID_PGSNP;
  if (cfg.pwsnp ?? ecapSmpwc(iommu.ecap)) qw1 |= PASID_PWSNP;
  const qw2 = (cfg.fsptptr & VTD_PAGE_MASK) | (cfg.fl5lp ? 1n << PASID_FLPM_SHIFT : 0n);
  install(info, pasid, cfg.did, [qw0, qw1, qw2, 0n, 0n, 0n, 0n, 0n]);
}

/** Parameters of a second-stage PASID entry. */
export interface PasidSecondLevelConfig {
  /** Second-stage table root. */
  readonly slptptr: bigint;
  /** AW: levels − 2 of the table. */
  readonly aw: number;
  /** DID. */
  readonly did: number;
  /** SSADE (dirty tracking). */
  readonly dirtyTracking: boolean;
  /** PGSNP (force snooping). */
  readonly pageSnoop: boolean;
}

/**
 * `intel_pasid_setup_second_level`: DID, SLPTPTR, AW, PGTT = 010, FPD = 0, PWSNP = ECAP.SMPWC,
 * SSADE when dirty tracking, PGSNP when snooping is forced, P.
 * @param info - the device
 * @param pasid - the PASID
 * @param cfg - the entry's parameters
 * @throws ErrnoError `EINVAL` (no SLTS), `ENODEV`, `EBUSY`, `ENOMEM`
 */
export function pasidSetupSecondLevel(
  info: PasidDeviceInfo,
  pasid: number,
  cfg: PasidSecondLevelConfig,
): void {
  const iommu = info.iommu;
  if (!ecapSlts(iommu.ecap))
    throw new ErrnoError('EINVAL', `No second level translation support on ${iommu.name}`);
  let qw0 =
    (cfg.slptptr & VTD_PAGE_MASK) |
    (BigInt(cfg.aw & 7) << PASID_AW_SHIFT) |
    (BigInt(PasidPgtt.SL_ONLY) << PASID_PGTT_SHIFT);
  if (cfg.dirtyTracking) qw0 |= PASID_SSADE;
  let qw1 = BigInt(cfg.did & 0xffff);
  if (ecapSmpwc(iommu.ecap)) qw1 |= PASID_PWSNP;
  if (cfg.pageSnoop) qw1 |= PASID_PGSNP;
  install(info, pasid, cfg.did, [qw0, qw1, 0n, 0n, 0n, 0n, 0n, 0n]);
}

/**
 * `intel_pasid_setup_pass_through`: DID = 1, AW = unit agaw, PGTT = 100, FPD = 0, PWSNP =
 * ECAP.SMPWC, P.
 * @param info - the device
 * @param pasid - the PASID
 * @throws ErrnoError `EINVAL` (no ECAP.PT), `ENODEV`, `EBUSY`, `ENOMEM`
 */
export function pasidSetupPassThrough(info: PasidDeviceInfo, pasid: number): void {
  const iommu = info.iommu;
  if (!ecapPassThrough(iommu.ecap))
    throw new ErrnoError('EINVAL', `No pass-through support on ${iommu.name}`);
  const qw0 = (BigInt(iommu.agaw & 7) << PASID_AW_SHIFT) | (BigInt(PasidPgtt.PT) << PASID_PGTT_SHIFT);
  let qw1 = BigInt(FLPT_DEFAULT_DID);
  if (ecapSmpwc(iommu.ecap)) qw1 |= PASID_PWSNP;
  install(info, pasid, FLPT_DEFAULT_DID, [qw0, qw1, 0n, 0n, 0n, 0n, 0n, 0n]);
}

/**
 * Device-TLB invalidation after a PASID entry change (`devtlb_invalidation_with_pasid`): nothing
 * without ATS; PASID 0 → type 3 over everything; other PASIDs → type 8 over everything (each twice
 * for quirk devices).
 * @param info - the device
 * @param pasid - the PASID
 */
export function devtlbInvalidationWithPasid(info: PasidDeviceInfo, pasid: number): void {
  if (!info.atsEnabled) return;
  const sid = pciDevid(info.bus, info.devfn);
  const n = info.dtlbExtraInval ? 2 : 1;
  for (let i = 0; i < n; i++) {
    if (pasid === IOMMU_NO_PASID)
      qiFlushDevIotlb(info.iommu, sid, info.pfsid, info.atsQdep, 0n, DEVTLB_MASK_ALL);
    else qiFlushDevIotlbPasid(info.iommu, sid, info.pfsid, pasid, info.atsQdep, 0n, DEVTLB_MASK_ALL);
  }
}

/**
 * Steps of the PASID teardown that live in other files (installed by prq-drain.ts, which imports
 * this one): `intel_iommu_drain_pasid_prq` (digest §5.5), run after a teardown without
 * `fault_ignore` and after zeroing a leftover FPD-only entry.
 * @internal
 */
export const pasidTeardownHooks: { drainPrq: ((info: PasidDeviceInfo, pasid: number) => void) | null } = {
  drainPrq: null,
};

/**
 * `intel_pasid_tear_down_entry(iommu, dev, pasid, fault_ignore)`: clear P (a non-present entry
 * with FPD left by an earlier fault-ignore teardown is zeroed), then PASID-cache PSI (DID, PASID),
 * IOTLB (PASID-based "all" for first-stage / pass-through, domain-selective type 2 for
 * second-stage / nested), device-TLB; finally zero the entry, or leave only FPD when
 * `faultIgnore`; without `faultIgnore` the page requests of (device, PASID) are drained
 * (`pasidTeardownHooks.drainPrq`, digest §8.7 step 7).
 * @param info - the device
 * @param pasid - the PASID
 * @param faultIgnore - leave an FPD-only entry (mm exit)
 * @returns whether a present entry was torn down
 */
export function pasidTearDownEntry(info: PasidDeviceInfo, pasid: number, faultIgnore: boolean): boolean {
  const iommu = info.iommu;
  const pa = info.pasidTable?.entry(pasid, false) ?? null;
  if (pa === null) return false;
  const mem = iommu.memory;
  const w = readPasidEntry(iommu, pa);
  if ((w[0] & PASID_P) === 0n) {
    if ((w[0] & PASID_FPD) !== 0n) {
      for (let i = 0; i < 8; i++) mem.write64(pa + i * 8, 0n);
      pasidTeardownHooks.drainPrq?.(info, pasid);
    }
    return false;
  }
  const did = pasidGetDomainId(w);
  const pgtt = pasidGetPgtt(w);
  mem.write64(pa, w[0] & ~PASID_P);
  qiFlushPasidCache(iommu, did, QI_PC_PASID_SEL, pasid);
  if (pgtt === PasidPgtt.PT || pgtt === PasidPgtt.FL_ONLY) qiFlushPiotlb(iommu, did, pasid, 0n, 'all', false);
  else iommu.flushIotlb(did, 0n, 0, 'domain');
  devtlbInvalidationWithPasid(info, pasid);
  for (let i = 0; i < 8; i++) mem.write64(pa + i * 8, 0n);
  if (faultIgnore) mem.write64(pa, PASID_FPD);
  else pasidTeardownHooks.drainPrq?.(info, pasid);
  return true;
}

/**
 * `intel_pasid_setup_dirty_tracking`: set or clear SSADE of a present second-stage entry, then
 * PASID-cache PSI, domain-selective IOTLB and device-TLB invalidations. Nothing when the entry is
 * absent or already in the requested state.
 * @param info - the device
 * @param pasid - the PASID
 * @param enabled - SSADE value
 * @throws ErrnoError `ENODEV` (no entry), `EINVAL` (entry is not second-stage or nested)
 */
export function pasidSetupDirtyTracking(info: PasidDeviceInfo, pasid: number, enabled: boolean): void {
  const iommu = info.iommu;
  const pa = info.pasidTable?.entry(pasid, false) ?? null;
  if (pa === null) throw new ErrnoError('ENODEV', `no PASID entry ${pasid}`);
  const w = readPasidEntry(iommu, pa);
  const pgtt = pasidGetPgtt(w);
  if (pgtt !== PasidPgtt.SL_ONLY && pgtt !== PasidPgtt.NESTED)
    throw new ErrnoError('EINVAL', `dirty tracking needs a second-stage PASID entry (PGTT ${pgtt})`);
  const has = (w[0] & PASID_SSADE) !== 0n;
  if (has === enabled) return;
  iommu.memory.write64(pa, enabled ? w[0] | PASID_SSADE : w[0] & ~PASID_SSADE);
  const did = pasidGetDomainId(w);
  qiFlushPasidCache(iommu, did, QI_PC_PASID_SEL, pasid);
  iommu.flushIotlb(did, 0n, 0, 'domain');
  devtlbInvalidationWithPasid(info, pasid);
}
