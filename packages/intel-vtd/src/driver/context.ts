/**
 * Root and context entries as the Linux driver programs them (drivers/iommu/intel/iommu.c
 * `iommu_context_addr`, `domain_context_mapping_one`, `context_setup_pass_through`,
 * `domain_context_clear_one`; pasid.c `intel_context_flush_no_pasid`,
 * `context_entry_set_pasid_table`, `device_pasid_table_setup`; iommu.h context helpers; digest
 * §2.1–§2.4, §8.4, §8.5).
 *
 * @remarks
 * Entries are written with plain 64-bit stores into the machine's memory, P last when creating and
 * first when destroying. The model's walks are cache coherent, so the `clflush` Linux issues when
 * ECAP.C is clear has no counterpart here.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { IntelIommu } from './intel-iommu.js';
import { qiFlushDevIotlb } from './qi.js';

/** Context entry P (bit 0). */
export const CONTEXT_P = 1n;
/** Context entry FPD (bit 1): fault processing disable. */
export const CONTEXT_FPD = 1n << 1n;
/** Legacy context TT field shift (bits 3:2). */
export const CONTEXT_TT_SHIFT = 2n;
/** Legacy TT 00: untranslated requests through the second-stage table (`CONTEXT_TT_MULTI_LEVEL`). */
export const CONTEXT_TT_MULTI_LEVEL = 0;
/** Legacy TT 01: as 00 plus ATS translation requests (`CONTEXT_TT_DEV_IOTLB`). */
export const CONTEXT_TT_DEV_IOTLB = 1;
/** Legacy TT 10: pass-through (`CONTEXT_TT_PASS_THROUGH`). */
export const CONTEXT_TT_PASS_THROUGH = 2;
/** Scalable-mode context DTE (bit 2): device-TLB enable. */
export const CONTEXT_DTE = 1n << 2n;
/** Scalable-mode context PASIDE (bit 3): requests with PASID allowed. */
export const CONTEXT_PASIDE = 1n << 3n;
/** Scalable-mode context PRE (bit 4): page requests allowed. */
export const CONTEXT_PRE = 1n << 4n;
/** Scalable-mode context PDTS field shift (bits 11:9). */
export const CONTEXT_PDTS_SHIFT = 9n;
/** Page-frame mask of a pointer field (bits 63:12). */
export const VTD_PAGE_MASK = ~0xfffn & 0xffff_ffff_ffff_ffffn;
/** `DMA_CCMD_MASK_NOBIT`: function mask "no bits masked". */
export const DMA_CCMD_MASK_NOBIT = 0;
/** `MAX_AGAW_PFN_WIDTH`: the device-TLB mask meaning "whole address space". */
export const DEVTLB_MASK_ALL = 52;

/** What the context-entry teardown needs to know about the device (`struct device_domain_info`). */
export interface ContextDeviceInfo {
  /** The unit. */
  readonly iommu: IntelIommu;
  /** Bus number. */
  readonly bus: number;
  /** devfn. */
  readonly devfn: number;
  /** `ats_enabled`. */
  readonly atsEnabled: boolean;
  /** `pfsid` (PF requester ID with ECAP.DIT, else 0). */
  readonly pfsid: number;
  /** `ats_qdep`. */
  readonly atsQdep: number;
  /** `dtlb_extra_inval`: issue every device-TLB invalidation twice (quirk devices 0x4940–0x4943). */
  readonly dtlbExtraInval: boolean;
}

/**
 * `PCI_DEVID(bus, devfn)`.
 * @param bus - bus number 0…255
 * @param devfn - devfn 0…255
 * @returns the 16-bit requester ID
 */
export function pciDevid(bus: number, devfn: number): number {
  return ((bus & 0xff) << 8) | (devfn & 0xff);
}

/**
 * `iommu_context_addr(iommu, bus, devfn, alloc)`: the physical address of the context entry of
 * `bus:devfn`. The root entry selects the table (the lower or upper half in scalable mode); a
 * missing table is allocated (a zeroed page, root half written as `phys | P`) when `alloc`.
 * Scalable-mode entries are 32 bytes, legacy ones 16.
 * @param iommu - the unit (root table allocated)
 * @param bus - bus number
 * @param devfn - devfn
 * @param alloc - allocate a missing context table
 * @returns the entry's physical address, or `null` when absent and not allocated
 * @throws ErrnoError `ENOMEM` when the page allocator is exhausted
 */
export function iommuContextAddr(
  iommu: IntelIommu,
  bus: number,
  devfn: number,
  alloc: boolean,
): number | null {
  const mem = iommu.memory;
  let slot = iommu.rootEntry + bus * 16;
  let index = devfn;
  if (iommu.smSupported) {
    if (devfn >= 0x80) {
      index -= 0x80;
      slot += 8;
    }
    index *= 2;
  }
  const root = mem.read64(slot);
  let table: number;
  if ((root & 1n) !== 0n) {
    table = Number(root & VTD_PAGE_MASK);
  } else {
    if (!alloc) return null;
    try {
      table = mem.allocPages(0, { zero: true });
    } catch {
      throw new ErrnoError('ENOMEM', `${iommu.name}: no page for a context table`);
    }
    mem.write64(slot, BigInt(table) | 1n);
  }
  return table + index * 16;
}

/**
 * Whether the context entry at `pa` is present (`context_present`).
 * @param iommu - the unit
 * @param pa - entry address
 */
export function contextPresent(iommu: IntelIommu, pa: number): boolean {
  return (iommu.memory.read64(pa) & CONTEXT_P) !== 0n;
}

/**
 * `context_domain_id`: the DID field (bits 87:72) of a legacy context entry.
 * @param iommu - the unit
 * @param pa - entry address
 */
export function contextDomainId(iommu: IntelIommu, pa: number): number {
  return Number((iommu.memory.read64(pa + 8) >> 8n) & 0xffffn);
}

/**
 * Write a context entry: zero the other words, the high word, then the low word with P last
 * (`context_clear_entry` … `context_set_present`).
 */
function writeContext(iommu: IntelIommu, pa: number, lo: bigint, hi: bigint): void {
  const mem = iommu.memory;
  mem.write64(pa, 0n);
  if (iommu.smSupported) {
    mem.write64(pa + 16, 0n);
    mem.write64(pa + 24, 0n);
  }
  mem.write64(pa + 8, hi);
  mem.write64(pa, lo & ~CONTEXT_P);
  mem.write64(pa, lo | CONTEXT_P);
}

/**
 * `context_present_cache_flush(iommu, did, bus, devfn)`: after a not-present → present change,
 * under caching mode a device-selective context-cache invalidation with DID 0 and a
 * domain-selective IOTLB invalidation of `did`; otherwise a write-buffer flush.
 * @param iommu - the unit
 * @param did - the DID now in the entry (0 in scalable mode)
 * @param bus - bus number
 * @param devfn - devfn
 */
export function contextPresentCacheFlush(iommu: IntelIommu, did: number, bus: number, devfn: number): void {
  if (iommu.cachingMode) {
    iommu.flushContext(0, pciDevid(bus, devfn), DMA_CCMD_MASK_NOBIT, 'device');
    iommu.flushIotlb(did, 0n, 0, 'domain');
  } else {
    iommu.flushWriteBuffer();
  }
}

/** What a legacy context entry is programmed with. */
export interface LegacyContextConfig {
  /** DID. */
  readonly did: number;
  /** Second-stage table root (ignored for pass-through). */
  readonly slptptr: bigint;
  /** AW: the table's AGAW (levels − 2), or the unit's msagaw for pass-through. */
  readonly aw: number;
  /** TT: `CONTEXT_TT_MULTI_LEVEL`, `CONTEXT_TT_DEV_IOTLB` or `CONTEXT_TT_PASS_THROUGH`. */
  readonly tt: number;
}

/**
 * `domain_context_mapping_one` / `context_setup_pass_through` for one requester ID (legacy mode):
 * get or allocate the context table; leave a present entry alone; otherwise write DID, SLPTPTR,
 * AW, TT, FPD = 0 and P last, then {@link contextPresentCacheFlush}.
 * @param iommu - the unit (legacy mode)
 * @param bus - bus number
 * @param devfn - devfn
 * @param cfg - the entry's fields
 * @returns whether the entry was written (false: it was already present)
 * @throws ErrnoError `ENOMEM` (no context table page; nothing changed)
 */
export function contextMapOne(
  iommu: IntelIommu,
  bus: number,
  devfn: number,
  cfg: LegacyContextConfig,
): boolean {
  const pa = iommuContextAddr(iommu, bus, devfn, true);
  if (pa === null) throw new ErrnoError('ENOMEM', 'no context table');
  if (contextPresent(iommu, pa)) return false;
  const slptptr = cfg.tt === CONTEXT_TT_PASS_THROUGH ? 0n : cfg.slptptr & VTD_PAGE_MASK;
  const lo = slptptr | (BigInt(cfg.tt & 3) << CONTEXT_TT_SHIFT);
  const hi = (BigInt(cfg.did & 0xffff) << 8n) | BigInt(cfg.aw & 7);
  writeContext(iommu, pa, lo, hi);
  contextPresentCacheFlush(iommu, cfg.did, bus, devfn);
  return true;
}

/**
 * Global device-TLB invalidation of a device's RID (`__context_flush_dev_iotlb`): a type-3
 * descriptor over the whole range when ATS is enabled (twice for quirk devices).
 * @param info - the device
 */
export function contextFlushDevIotlb(info: ContextDeviceInfo): void {
  if (!info.atsEnabled) return;
  const sid = pciDevid(info.bus, info.devfn);
  qiFlushDevIotlb(info.iommu, sid, info.pfsid, info.atsQdep, 0n, DEVTLB_MASK_ALL);
  if (info.dtlbExtraInval) qiFlushDevIotlb(info.iommu, sid, info.pfsid, info.atsQdep, 0n, DEVTLB_MASK_ALL);
}

/**
 * `intel_context_flush_no_pasid(info, context, did)`: device-selective context-cache invalidation
 * (SID = the device's own RID); in legacy mode a domain-selective IOTLB invalidation of `did`; then
 * the global device-TLB invalidation.
 * @param info - the device
 * @param did - the DID the entry carried
 */
export function contextFlushNoPasid(info: ContextDeviceInfo, did: number): void {
  const iommu = info.iommu;
  iommu.flushContext(did, pciDevid(info.bus, info.devfn), DMA_CCMD_MASK_NOBIT, 'device');
  if (!iommu.smSupported) iommu.flushIotlb(did, 0n, 0, 'domain');
  contextFlushDevIotlb(info);
}

/**
 * `domain_context_clear_one(info, bus, devfn)`: clear only P (keeping the rest), flush
 * ({@link contextFlushNoPasid} with the entry's DID), then zero the whole entry.
 * @param info - the device
 * @param bus - bus number of the (alias) requester ID
 * @param devfn - devfn of the (alias) requester ID
 * @returns whether an entry existed (its table was present)
 */
export function contextClearOne(info: ContextDeviceInfo, bus: number, devfn: number): boolean {
  const iommu = info.iommu;
  const pa = iommuContextAddr(iommu, bus, devfn, false);
  if (pa === null) return false;
  const mem = iommu.memory;
  const did = iommu.smSupported ? 0 : contextDomainId(iommu, pa);
  mem.write64(pa, mem.read64(pa) & ~CONTEXT_P);
  contextFlushNoPasid(info, did);
  mem.write64(pa, 0n);
  mem.write64(pa + 8, 0n);
  if (iommu.smSupported) {
    mem.write64(pa + 16, 0n);
    mem.write64(pa + 24, 0n);
  }
  return true;
}

/** What a scalable-mode context entry is programmed with. */
export interface ScalableContextConfig {
  /** PASID directory physical address. */
  readonly pasidDir: number;
  /** PDTS: the directory has 2^(PDTS+7) entries. */
  readonly pdts: number;
  /** DTE: ATS supported. */
  readonly dte: boolean;
  /** PASIDE: the device supports PASID. */
  readonly paside: boolean;
  /** PRE: the device supports PRI and the unit ECAP.PRS. */
  readonly pre: boolean;
}

/**
 * `context_entry_set_pasid_table` + `device_pasid_table_setup` for one requester ID: write
 * PASIDDIRPTR, PDTS, DTE, PASIDE, PRE, RID_PASID = 0, FPD = 0, P last; then under caching mode a
 * device-selective context-cache invalidation (DID 0) and a domain-selective IOTLB invalidation of
 * DID 0. A present entry is left alone.
 * @param iommu - the unit (scalable mode)
 * @param bus - bus number
 * @param devfn - devfn
 * @param cfg - the entry's fields
 * @returns whether the entry was written
 * @throws ErrnoError `ENOMEM` (no context table page; nothing changed)
 */
export function contextSetPasidTable(
  iommu: IntelIommu,
  bus: number,
  devfn: number,
  cfg: ScalableContextConfig,
): boolean {
  const pa = iommuContextAddr(iommu, bus, devfn, true);
  if (pa === null) throw new ErrnoError('ENOMEM', 'no context table');
  if (contextPresent(iommu, pa)) return false;
  let lo = (BigInt(cfg.pasidDir) & VTD_PAGE_MASK) | (BigInt(cfg.pdts & 7) << CONTEXT_PDTS_SHIFT);
  if (cfg.dte) lo |= CONTEXT_DTE;
  if (cfg.paside) lo |= CONTEXT_PASIDE;
  if (cfg.pre) lo |= CONTEXT_PRE;
  writeContext(iommu, pa, lo, 0n);
  contextPresentCacheFlush(iommu, 0, bus, devfn);
  return true;
}
