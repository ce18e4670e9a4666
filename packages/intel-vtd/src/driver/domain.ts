/**
 * VT-d paging, identity and blocking domains: `struct dmar_domain`, first- or second-stage page
 * tables, per-unit DIDs, map/unmap with the cache-tag flushes, dirty tracking and GET_HW_INFO for
 * iommufd (drivers/iommu/intel/iommu.c `paging_domain_alloc`, `domain_attach_iommu`,
 * `domain_detach_iommu`, `intel_iommu_domain_alloc_paging_flags`, `paging_domain_compatible`,
 * `intel_iommu_hw_info`, `intel_dirty_ops`; digest §8.2, §8.3, §8.8).
 *
 * @remarks
 * Page tables come from io-pgtable (`VTD_SS` for second stage with the unit's AGAW as depth,
 * `X86_64` with 4 or 5 levels for first stage), allocated in the machine's memory. io-pgtable
 * frees table pages during the unmap itself rather than after the IOTLB flush as Linux does; the
 * unmap still records that tables were freed so the flush clears IH as Linux does.
 */

import { ErrnoError } from '@iommu-ts/base';
import {
  allocIoPgtableOps,
  freeIoPgtableOps,
  type IoPgtableCfg,
  IoPgtableFmt,
  type IoPgtableOps,
  type PageTableMemory,
} from '@iommu-ts/io-pgtable';
import {
  type Device,
  IOMMU_DOMAIN_BLOCKED,
  IOMMU_DOMAIN_IDENTITY,
  IOMMU_DOMAIN_UNMANAGED,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  type IommuDirtyOps,
  IommuDomain,
  type IommuDomainOps,
  iommuIotlbGatherAddPage,
  iommuIotlbGatherQueued,
} from '@iommu-ts/iommu-core';
import {
  type CacheTag,
  type CacheTagOwner,
  cacheTagFlushAll,
  cacheTagFlushRange,
  cacheTagFlushRangeNp,
} from './cache-tag.js';
import { infoOf } from './device-info.js';
import type { IntelIommu } from './intel-iommu.js';
import { IOMMU_NO_PASID, pasidSetupDirtyTracking } from './pasid.js';
import {
  capFl1gpSupport,
  capFl5lpSupport,
  capMgaw,
  capSuperPageVal,
  ecapCoherent,
  ecapFlts,
  ecapScSupport,
  ecapSlts,
  ecapSmpwc,
} from './regs.js';

export type { CacheTag, CacheTagType } from './cache-tag.js';

/** `IOMMU_HW_INFO_TYPE_DEFAULT`. */
const HW_INFO_TYPE_DEFAULT = 0;
/** `IOMMU_HW_INFO_TYPE_INTEL_VTD` (include/uapi/linux/iommufd.h). */
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
/** `sizeof(struct iommu_hw_info_vtd)`: flags u32 at 0, `__reserved` u32 at 4, cap_reg u64 at 8, ecap_reg u64 at 16. */
export const IOMMU_HW_INFO_VTD_SIZE = 24;
/** `IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17` (bit 0 of `flags`; Linux always reports it). */
export const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1;

/** Test hooks (not in Linux): show what a missing invalidation does. */
export interface DmarDomainTestHooks {
  /** Skip the IOTLB / device-TLB flushes of unmap and flush-all. */
  skipInvalidation: boolean;
}

/** `struct dmar_domain`: a paging domain of the VT-d driver. */
export class DmarDomain extends IommuDomain implements CacheTagOwner {
  /** `use_first_level`: first-stage (x86-64 format) tables instead of second-stage. */
  useFirstLevel = false;
  /** `nested_parent`. */
  nestedParent = false;
  /** `dirty_tracking`: SSADE set in the PASID entries of this domain. */
  dirtyTracking = false;
  /** `force_snooping`. */
  forceSnooping = false;
  /** `iommu_coherency`: page walks snoop (SMPWC in scalable mode, ECAP.C in legacy mode). */
  iommuCoherency = false;
  /** `iommu_superpage`: 0 none, 1 2 MiB, 2 2 MiB + 1 GiB. */
  iommuSuperpage = 0;
  /** `gaw`: guest address width in bits. */
  gaw = 0;
  /** `agaw`: adjusted guest address width (levels − 2). */
  agaw = 0;
  /** The io-pgtable instance (null before allocation completes). */
  pgtblOps: IoPgtableOps | null = null;
  /** Physical address of the top-level table. */
  pgdPhys = 0n;
  /** `iommu_array`: DID and reference count per unit. */
  readonly iommuArray = new Map<IntelIommu, { did: number; refcnt: number }>();
  /** `cache_tags`. */
  readonly cacheTags: CacheTag[] = [];
  /** Devices whose RID is attached (`devices`). */
  readonly devices: Device[] = [];
  /** Test hooks. */
  readonly testHooks: DmarDomainTestHooks = { skipInvalidation: false };
  /** Whether the last unmap freed page-table pages (clears IH of the next flush). */
  tablesFreed = false;

  /** An unallocated domain with {@link intelIommuDomainOps}. */
  constructor() {
    super(intelIommuDomainOps);
  }

  /** `intel_domain_use_piotlb`: first-stage domains flush with PASID-based IOTLB descriptors. */
  get usePiotlb(): boolean {
    return this.useFirstLevel;
  }
}

/**
 * `to_dmar_domain`: the domain as a {@link DmarDomain}, or null.
 * @param domain - any domain
 */
export function toDmarDomain(domain: IommuDomain | null): DmarDomain | null {
  return domain instanceof DmarDomain ? domain : null;
}

/**
 * `domain_id_iommu(domain, iommu)`: the DID of the domain on a unit (0 if not attached there).
 * @param domain - the domain
 * @param iommu - the unit
 */
export function domainIdIommu(domain: DmarDomain, iommu: IntelIommu): number {
  return domain.iommuArray.get(iommu)?.did ?? 0;
}

/**
 * `domain_attach_iommu(domain, iommu)`: take a reference on the domain's DID on the unit,
 * allocating the lowest free DID on first use.
 * @param domain - the domain
 * @param iommu - the unit
 * @returns the DID
 * @throws ErrnoError `ENOSPC` when the unit has no free DID (nothing changed)
 */
export function domainAttachIommu(domain: DmarDomain, iommu: IntelIommu): number {
  const e = domain.iommuArray.get(iommu);
  if (e !== undefined) {
    e.refcnt++;
    return e.did;
  }
  const did = iommu.allocDid();
  domain.iommuArray.set(iommu, { did, refcnt: 1 });
  return did;
}

/**
 * `domain_detach_iommu(domain, iommu)`: drop a reference; at zero the DID is released.
 * @param domain - the domain
 * @param iommu - the unit
 */
export function domainDetachIommu(domain: DmarDomain, iommu: IntelIommu): void {
  const e = domain.iommuArray.get(iommu);
  if (e === undefined) return;
  if (--e.refcnt === 0) {
    iommu.freeDid(e.did);
    domain.iommuArray.delete(iommu);
  }
}

/** `iommu_paging_structure_coherency`: SMPWC in scalable mode, ECAP.C in legacy mode. */
export function iommuPagingStructureCoherency(iommu: IntelIommu): boolean {
  return iommu.smSupported ? ecapSmpwc(iommu.ecap) : ecapCoherent(iommu.ecap);
}

/** `iommu_superpage_capability(iommu, first_stage)`: 0, 1 (2 MiB) or 2 (2 MiB and 1 GiB). */
export function iommuSuperpageCapability(iommu: IntelIommu, firstStage: boolean): number {
  if (firstStage) return capFl1gpSupport(iommu.cap) ? 2 : 1;
  const v = capSuperPageVal(iommu.cap);
  return v === 0 ? 0 : 32 - Math.clz32(v);
}

/** `first_level_by_default(iommu)`: legacy → no; scalable → FLTS when it is the only one, or both. */
export function firstLevelByDefault(iommu: IntelIommu): boolean {
  if (!iommu.smSupported) return false;
  const fl = ecapFlts(iommu.ecap);
  const sl = ecapSlts(iommu.ecap);
  if (fl && sl) return true;
  return fl;
}

/** A memory wrapper that notes table frees (for IH). */
function trackingMemory(domain: DmarDomain, mem: PageTableMemory): PageTableMemory {
  return {
    allocTable: (bytes) => mem.allocTable(bytes),
    freeTable: (pa, bytes) => {
      domain.tablesFreed = true;
      mem.freeTable(pa, bytes);
    },
    tableWords: (pa) => mem.tableWords(pa),
    tableWordIndex: (pa) => mem.tableWordIndex(pa),
    tableView: (pa) => mem.tableView(pa),
    read64: (pa) => mem.read64(pa),
    write64: (pa, v) => mem.write64(pa, v),
    read32: (pa) => mem.read32(pa),
    write32: (pa, v) => mem.write32(pa, v),
  };
}

/**
 * `paging_domain_alloc(dev, first_stage)`: gaw = min(width(unit agaw), MGAW), agaw = unit agaw,
 * coherency, superpages, aperture (first stage: lower canonical half), and the page table
 * (`VTD_SS` of agaw + 2 levels, or `X86_64` of 5 levels when agaw is 3 and else 4).
 * @param iommu - the unit of the device the domain is allocated for
 * @param firstStage - first-stage tables
 * @returns the domain (type `IOMMU_DOMAIN_UNMANAGED`)
 * @throws ErrnoError `ENOMEM` when io-pgtable refuses the configuration
 */
export function pagingDomainAlloc(iommu: IntelIommu, firstStage: boolean): DmarDomain {
  const domain = new DmarDomain();
  domain.type = IOMMU_DOMAIN_UNMANAGED;
  domain.useFirstLevel = firstStage;
  const width = Math.min(30 + 9 * iommu.agaw, capMgaw(iommu.cap));
  domain.gaw = width;
  domain.agaw = iommu.agaw;
  domain.iommuCoherency = iommuPagingStructureCoherency(iommu);
  domain.iommuSuperpage = iommuSuperpageCapability(iommu, firstStage);
  let pgsize = 0x1000n;
  if (domain.iommuSuperpage >= 1) pgsize |= 0x20_0000n;
  if (domain.iommuSuperpage >= 2) pgsize |= 0x4000_0000n;
  const levels = firstStage ? (iommu.agaw >= 3 ? 5 : 4) : iommu.agaw + 2;
  const cfg: IoPgtableCfg = {
    quirks: 0,
    pgsizeBitmap: pgsize,
    ias: firstStage ? Math.max(width, 48) : width,
    oas: 52,
    coherentWalk: domain.iommuCoherency,
    memory: trackingMemory(domain, iommu.memory),
    levels,
    tlb: {
      tlbFlushAll: () => cacheTagFlushAll(domain),
      tlbFlushWalk: () => {
        domain.tablesFreed = true;
      },
      tlbAddPage: (gather, iova, granule) => {
        if (gather !== null && !iommuIotlbGatherQueued(gather))
          iommuIotlbGatherAddPage(domain, gather, iova, granule);
      },
    },
  };
  const ops = allocIoPgtableOps(firstStage ? IoPgtableFmt.X86_64 : IoPgtableFmt.VTD_SS, cfg, domain);
  if (ops === null) throw new ErrnoError('ENOMEM', 'io-pgtable refused the VT-d configuration');
  domain.pgtblOps = ops;
  domain.pgdPhys = cfg.rootCfg?.rootPa ?? 0n;
  domain.pgsizeBitmap = cfg.pgsizeBitmap;
  domain.geometry.apertureStart = 0n;
  domain.geometry.apertureEnd = (1n << BigInt(firstStage ? width - 1 : width)) - 1n;
  domain.geometry.forceAperture = true;
  return domain;
}

/**
 * `intel_iommu_domain_alloc_paging_flags(dev, flags, user_data)` (also `domain_alloc_paging`
 * with flags 0): a first-stage domain when the unit prefers it (digest §8.3) and no flag needs
 * second stage, else a second-stage one; DIRTY_TRACKING sets {@link intelIommuDirtyOps}.
 * @param dev - a device probed by this driver
 * @param flags - `IOMMU_HWPT_ALLOC_*`
 * @param userData - must be absent
 * @returns the domain
 * @throws ErrnoError `EOPNOTSUPP` (unknown flags, user data, nesting or dirty tracking
 *   unsupported, no usable stage), `ENODEV` (no device), `ENOMEM`
 */
export function intelIommuDomainAllocPagingFlags(
  dev: Device | null,
  flags: number,
  userData: unknown,
): IommuDomain {
  if (dev === null) throw new ErrnoError('ENODEV', 'a device is needed');
  if (userData !== null && userData !== undefined)
    throw new ErrnoError('EOPNOTSUPP', 'no user data for paging domains');
  const iommu = infoOf(dev).iommu;
  const all = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID;
  if ((flags & ~all) !== 0) throw new ErrnoError('EOPNOTSUPP', `unsupported flags ${flags}`);
  // intel_iommu_domain_alloc_first_stage
  if ((flags & ~IOMMU_HWPT_ALLOC_PASID) === 0 && firstLevelByDefault(iommu))
    return pagingDomainAlloc(iommu, true);
  // intel_iommu_domain_alloc_second_stage
  const nest = (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0;
  const dirty = (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0;
  if ((nest && !iommu.nestedSupported) || (dirty && !iommu.ssadsSupported))
    throw new ErrnoError('EOPNOTSUPP', 'nesting or dirty tracking unsupported');
  if (iommu.smSupported && !ecapSlts(iommu.ecap))
    throw new ErrnoError('EOPNOTSUPP', 'no second-stage support');
  const domain = pagingDomainAlloc(iommu, false);
  domain.nestedParent = nest;
  if (dirty) domain.dirtyOps = intelIommuDirtyOps;
  return domain;
}

/**
 * `intel_iommu_domain_alloc_paging(dev)`.
 * @param dev - a device probed by this driver
 * @returns the domain
 * @throws ErrnoError as {@link intelIommuDomainAllocPagingFlags}
 */
export function intelIommuDomainAllocPaging(dev: Device): IommuDomain {
  return intelIommuDomainAllocPagingFlags(dev, 0, null);
}

/**
 * `paging_domain_compatible(domain, dev)`: whether `domain` can be used on the device's unit.
 * @param domain - a paging domain
 * @param iommu - the device's unit
 * @throws ErrnoError `EINVAL` (dirty tracking without SSADS, coherency or superpage mismatch,
 *   first stage without scalable FLTS, AGAW too small, forced snooping without ECAP.SC)
 */
export function pagingDomainCompatible(domain: DmarDomain, iommu: IntelIommu): void {
  if (domain.dirtyOps !== null && !iommu.ssadsSupported) throw new ErrnoError('EINVAL', 'no dirty tracking');
  if (domain.iommuCoherency !== iommuPagingStructureCoherency(iommu))
    throw new ErrnoError('EINVAL', 'coherency mismatch');
  if (domain.iommuSuperpage !== iommuSuperpageCapability(iommu, domain.useFirstLevel))
    throw new ErrnoError('EINVAL', 'superpage mismatch');
  if (domain.useFirstLevel && (!iommu.smSupported || !ecapFlts(iommu.ecap)))
    throw new ErrnoError('EINVAL', 'no first-stage support');
  const width = Math.min(30 + 9 * iommu.agaw, capMgaw(iommu.cap));
  if (domain.gaw > width || domain.agaw > iommu.agaw)
    throw new ErrnoError('EINVAL', 'address width too small');
  if (domain.forceSnooping && !ecapScSupport(iommu.ecap)) throw new ErrnoError('EINVAL', 'no snoop control');
  if (domain.useFirstLevel && domain.agaw >= 3 && !capFl5lpSupport(iommu.cap))
    throw new ErrnoError('EINVAL', 'no 5-level first stage');
}

function pgtbl(domain: IommuDomain): IoPgtableOps {
  const d = toDmarDomain(domain);
  if (d === null || d.pgtblOps === null) throw new ErrnoError('ENODEV', 'not a VT-d paging domain');
  return d.pgtblOps;
}

/**
 * The attach entry points device.ts installs (breaks the runtime cycle domain.ts → device.ts).
 * @internal
 */
export const attachHooks: {
  attachDev(domain: IommuDomain, dev: Device, old: IommuDomain | null): void;
  setDevPasid(domain: IommuDomain, dev: Device, pasid: number, old: IommuDomain | null): void;
} = {
  attachDev: () => {
    throw new ErrnoError('ENODEV', 'device.ts not loaded');
  },
  setDevPasid: () => {
    throw new ErrnoError('ENODEV', 'device.ts not loaded');
  },
};

/**
 * The domain ops of VT-d paging domains (`intel_fs_paging_domain_ops` / `intel_ss_paging_domain_ops`):
 * attach (device.ts), map/unmap/iova_to_phys through io-pgtable, `iotlb_sync_map`
 * (`cache_tag_flush_range_np`), `iotlb_sync` (`cache_tag_flush_range` with IH when no table was
 * freed), `flush_iotlb_all`, `enforce_cache_coherency`, `free`.
 */
export const intelIommuDomainOps: IommuDomainOps = {
  attachDev(domain, dev, old) {
    attachHooks.attachDev(domain, dev, old);
  },
  setDevPasid(domain, dev, pasid, old) {
    attachHooks.setDevPasid(domain, dev, pasid, old);
  },
  mapPages(domain, iova, paddr, pgsize, pgcount, prot) {
    return pgtbl(domain).mapPages(iova, paddr, pgsize, pgcount, prot);
  },
  unmapPages(domain, iova, pgsize, pgcount, gather) {
    return pgtbl(domain).unmapPages(iova, pgsize, pgcount, gather);
  },
  iotlbSyncMap(domain, iova, size) {
    const d = toDmarDomain(domain);
    if (d === null || size === 0n) return;
    cacheTagFlushRangeNp(d, iova, iova + size - 1n);
  },
  iotlbSync(domain, gather) {
    const d = toDmarDomain(domain);
    if (d === null || gather.end === 0) return;
    const ih = !d.tablesFreed;
    d.tablesFreed = false;
    cacheTagFlushRange(d, BigInt(gather.start), BigInt(gather.end), ih);
  },
  flushIotlbAll(domain) {
    const d = toDmarDomain(domain);
    if (d !== null) cacheTagFlushAll(d);
  },
  iovaToPhys(domain, iova) {
    return BigInt(pgtbl(domain).iovaToPhys(iova));
  },
  enforceCacheCoherency(domain) {
    const d = toDmarDomain(domain);
    if (d === null) return false;
    for (const [iommu] of d.iommuArray) if (!ecapScSupport(iommu.ecap)) return false;
    d.forceSnooping = true;
    return true;
  },
  free(domain) {
    const d = toDmarDomain(domain);
    if (d === null || d.pgtblOps === null) return;
    freeIoPgtableOps(d.pgtblOps);
    d.pgtblOps = null;
  },
};

/** Domain ops of the static identity and blocking domains (attach paths in device.ts). */
const staticDomainOps: IommuDomainOps = {
  attachDev(domain, dev, old) {
    attachHooks.attachDev(domain, dev, old);
  },
  setDevPasid(domain, dev, pasid, old) {
    attachHooks.setDevPasid(domain, dev, pasid, old);
  },
};

/** The static identity domain (`identity_domain`): pass-through PASID entry or TT = 10 context. */
export const intelIommuIdentityDomain: IommuDomain = new IommuDomain(staticDomainOps, {
  type: IOMMU_DOMAIN_IDENTITY,
});

/** The static blocking domain (`blocking_domain`): clears the device's entries. */
export const intelIommuBlockedDomain: IommuDomain = new IommuDomain(staticDomainOps, {
  type: IOMMU_DOMAIN_BLOCKED,
});

/**
 * `intel_dirty_ops`: `set_dirty_tracking` toggles SSADE in the PASID-0 entry of every attached
 * device (undoing on failure); `read_and_clear_dirty` harvests second-stage D bits (bit 9).
 */
export const intelIommuDirtyOps: IommuDirtyOps = {
  setDirtyTracking(domain, enabled) {
    const d = toDmarDomain(domain);
    if (d === null) throw new ErrnoError('EINVAL', 'not a VT-d domain');
    if (d.dirtyTracking === enabled) return;
    const done: Device[] = [];
    try {
      for (const dev of d.devices) {
        pasidSetupDirtyTracking(infoOf(dev), IOMMU_NO_PASID, enabled);
        done.push(dev);
      }
    } catch (e) {
      for (const dev of done) pasidSetupDirtyTracking(infoOf(dev), IOMMU_NO_PASID, d.dirtyTracking);
      throw e;
    }
    d.dirtyTracking = enabled;
  },
  readAndClearDirty(domain, iova, size, flags, dirty) {
    pgtbl(domain).readAndClearDirty(iova, Number(size), flags, {
      record: (at, length) => dirty.record(BigInt(at), BigInt(length)),
    });
  },
};

/**
 * `intel_iommu_hw_info(dev, &length, &type)`: `struct iommu_hw_info_vtd`, little-endian: flags
 * (ERRATA_772415_SPR17) at 0, `__reserved` 0 at 4, cap_reg at 8, ecap_reg at 16.
 * @param dev - a device behind a VT-d unit
 * @param type - `IOMMU_HW_INFO_TYPE_DEFAULT` (0) or `IOMMU_HW_INFO_TYPE_INTEL_VTD` (1)
 * @returns type 1 and the 24 bytes
 * @throws ErrnoError `EOPNOTSUPP` for another type, `ENODEV` for a device not behind VT-d
 */
export function intelIommuHwInfo(dev: Device, type: number): { type: number; data: Uint8Array } {
  if (type !== HW_INFO_TYPE_DEFAULT && type !== IOMMU_HW_INFO_TYPE_INTEL_VTD)
    throw new ErrnoError('EOPNOTSUPP', `hw_info type ${type} not supported`);
  const iommu = infoOf(dev).iommu;
  const data = new Uint8Array(IOMMU_HW_INFO_VTD_SIZE);
  const view = new DataView(data.buffer);
  view.setUint32(0, IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17, true);
  view.setBigUint64(8, iommu.cap, true);
  view.setBigUint64(16, iommu.ecap, true);
  return { type: IOMMU_HW_INFO_TYPE_INTEL_VTD, data };
}
