/**
 * The driver-facing interfaces: `struct iommu_ops` (per driver) and `struct iommu_domain_ops`
 * (per domain), include/linux/iommu.h.
 *
 * Changes (additive only): none yet.
 *
 * @remarks
 * Error style: where Linux returns `-errno` (or an `ERR_PTR`), a driver op throws `ErrnoError`
 * from `@iommu-ts/base` and leaves its state unchanged; where Linux returns a size (unmap) or a
 * sentinel (`iova_to_phys` 0, NULL from `domain_alloc_paging`), the op returns it (`null` for NULL).
 * Addresses (IOVA, PA) are `bigint` (u64); page sizes and counts are `number`.
 */

import type { IommuIotlbGather } from '@iommu-ts/io-pgtable';
import type { Mm } from '@iommu-ts/mm';
import type { Device } from './device.js';
import type { IommuDomain } from './domain.js';
import type { IommuFault, IommuPageResponse } from './fault.js';
import type { IommuGroup } from './group.js';
import type { IommuDevice } from './iommu-device.js';
import type { OfPhandleArgs } from './of-iommu.js';
import type { IommuResvRegion } from './resv-region.js';

/** `enum iommu_cap` values for `capable()` / `deviceIommuCapable()`. */
export const IommuCap = {
  /** DMA is cache coherent. */
  CACHE_COHERENCY: 0,
  /** `IOMMU_NOEXEC` flag is honoured. */
  NOEXEC: 1,
  /** Firmware left the IOMMU blocking DMA before the OS took over. */
  PRE_BOOT_PROTECTION: 2,
  /** Domains can enforce cache coherency (block no-snoop). */
  ENFORCE_CACHE_COHERENCY: 3,
  /** Unmap needs no TLB work, so a flush queue helps (DMA_FQ). */
  DEFERRED_FLUSH: 4,
  /** Dirty tracking is supported. */
  DIRTY_TRACKING: 5,
  /** PCI ATS is supported for this device. */
  PCI_ATS_SUPPORTED: 6,
} as const;
/** A value of {@link (IommuCap:variable)}. */
export type IommuCap = (typeof IommuCap)[keyof typeof IommuCap];

/**
 * `enum iommu_dev_features` (history, ≤ v6.14): features a device driver enabled explicitly with
 * `iommu_dev_enable_feature`. Values as in Linux.
 */
export const IommuDevFeature = {
  /** I/O page faults (PRI or stall). */
  IOPF: 1,
  /** Shared Virtual Addressing. */
  SVA: 2,
} as const;
/** A value of {@link (IommuDevFeature:variable)}. */
export type IommuDevFeature = (typeof IommuDevFeature)[keyof typeof IommuDevFeature];

/** iommufd allocation flag `IOMMU_HWPT_ALLOC_NEST_PARENT` (bit 0). */
export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
/** iommufd allocation flag `IOMMU_HWPT_ALLOC_DIRTY_TRACKING` (bit 1). */
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
/** iommufd allocation flag `IOMMU_HWPT_FAULT_ID_VALID` (bit 2). */
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
/** iommufd allocation flag `IOMMU_HWPT_ALLOC_PASID` (bit 3): the domain may be attached to PASIDs. */
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;

/**
 * `IOMMU_DIRTY_NO_CLEAR` (include/linux/iommu.h): read the dirty state without clearing it.
 */
export const IOMMU_DIRTY_NO_CLEAR = 1 << 0;

/**
 * `struct iommu_dirty_bitmap` as a driver sees it: where `read_and_clear_dirty` reports the dirty
 * IOVA ranges it found (`iommu_dirty_bitmap_record`). The caller (iommufd) turns the records into
 * the user's bitmap and flushes the IOTLB for the ranges whose dirty bits were cleared.
 */
export interface IommuDirtyBitmap {
  /**
   * Report `[iova, iova + length)` as dirty (`iommu_dirty_bitmap_record`).
   * @param iova - first dirty IOVA
   * @param length - bytes
   */
  record(iova: bigint, length: bigint): void;
}

/**
 * `struct iommu_dirty_ops` (include/linux/iommu.h): dirty tracking of a paging domain.
 */
export interface IommuDirtyOps {
  /**
   * `set_dirty_tracking(domain, enabled)`: start or stop recording writes.
   * @param domain - the domain
   * @param enabled - start (true) or stop (false)
   * @throws ErrnoError the driver's errno (e.g. `EINVAL`)
   */
  setDirtyTracking(domain: IommuDomain, enabled: boolean): void;
  /**
   * `read_and_clear_dirty(domain, iova, size, flags, dirty)`: report every dirty mapping in
   * `[iova, iova + size)` through `dirty.record`, clearing its dirty state unless `flags` has
   * `IOMMU_DIRTY_NO_CLEAR`.
   * @param domain - the domain
   * @param iova - first IOVA
   * @param size - bytes
   * @param flags - 0 or `IOMMU_DIRTY_NO_CLEAR`
   * @param dirty - where to report
   * @throws ErrnoError the driver's errno
   */
  readAndClearDirty(
    domain: IommuDomain,
    iova: bigint,
    size: bigint,
    flags: number,
    dirty: IommuDirtyBitmap,
  ): void;
}

/**
 * `struct iommu_domain_ops`: what a driver implements per domain. Every member is optional, as in
 * Linux; the core checks for presence exactly where Linux does.
 */
export interface IommuDomainOps {
  /**
   * `attach_dev(domain, dev, old)`: make `dev`'s RID translate through `domain`. `old` is the domain
   * being replaced (`null` on first or deferred attach).
   * @throws ErrnoError `EINVAL` incompatible (soft: caller may try another domain), `ENOMEM`,
   *   `ENOSPC`, `EBUSY` (attached elsewhere), `ENODEV` (device-specific failure)
   */
  attachDev?(domain: IommuDomain, dev: Device, old: IommuDomain | null): void;
  /**
   * `set_dev_pasid(domain, dev, pasid, old)`: install or replace `domain` for `(dev, pasid)`; on
   * failure the PASID keeps its old configuration. The static blocked domain's `setDevPasid` is how
   * a PASID is removed.
   * @throws ErrnoError as for `attachDev`
   */
  setDevPasid?(domain: IommuDomain, dev: Device, pasid: number, old: IommuDomain | null): void;
  /**
   * `map_pages(domain, iova, paddr, pgsize, pgcount, prot, gfp, &mapped)`: map `pgcount` pages of
   * `pgsize` bytes.
   * @returns bytes mapped
   * @throws ErrnoError on failure; a numeric `mapped` property on the error (as on io-pgtable's
   *   `IoPgtableMapError`) gives the bytes mapped before it (else 0)
   */
  mapPages?(
    domain: IommuDomain,
    iova: bigint,
    paddr: bigint,
    pgsize: number,
    pgcount: number,
    prot: number,
    gfp: number,
  ): number;
  /**
   * `unmap_pages(domain, iova, pgsize, pgcount, gather)`.
   * @returns bytes unmapped (0 = nothing at `iova`, or a partial unmap of a larger leaf)
   */
  unmapPages?(
    domain: IommuDomain,
    iova: bigint,
    pgsize: number,
    pgcount: number,
    gather: IommuIotlbGather,
  ): number;
  /** `flush_iotlb_all(domain)`: synchronous full invalidation. */
  flushIotlbAll?(domain: IommuDomain): void;
  /**
   * `iotlb_sync_map(domain, iova, size)`: make new mappings visible.
   * @throws ErrnoError as the driver's `-errno`
   */
  iotlbSyncMap?(domain: IommuDomain, iova: bigint, size: bigint): void;
  /** `iotlb_sync(domain, gather)`: invalidate everything recorded in `gather`. */
  iotlbSync?(domain: IommuDomain, gather: IommuIotlbGather): void;
  /** `iova_to_phys(domain, iova)`: the PA, 0n when unmapped. */
  iovaToPhys?(domain: IommuDomain, iova: bigint): bigint;
  /** `enforce_cache_coherency(domain)`: block no-snoop DMA; returns whether it succeeded. */
  enforceCacheCoherency?(domain: IommuDomain): boolean;
  /**
   * `set_pgtable_quirks(domain, quirks)`.
   * @throws ErrnoError as the driver's `-errno`
   */
  setPgtableQuirks?(domain: IommuDomain, quirks: number): void;
  /**
   * SVA domains: the shared mm's translations for user VAs `[start, end)` (bytes, `end` exclusive;
   * `(0, Infinity)`-style full ranges arrive as `start = 0, end = mm.taskSize`) changed; invalidate
   * the IOTLB and device TLBs (ATC) of every device and PASID the domain is attached to. Called by
   * `@iommu-ts/iommu-sva`'s MMU notifier (the seed's `mm_invalidate`, today's driver
   * `arch_invalidate_secondary_tlbs`); must not sleep.
   */
  mmInvalidate?(domain: IommuDomain, start: number, end: number): void;
  /**
   * SVA domains: the mm is exiting while still bound (the notifier's `release`). Make every PASID
   * of the domain non-translating without hard faults (DMA blocked, page requests still answered),
   * then invalidate.
   */
  mmRelease?(domain: IommuDomain): void;
  /** `free(domain)`: release the domain's resources. */
  free?(domain: IommuDomain): void;
}

/**
 * `struct iommu_ops`: what an IOMMU driver registers with {@link IommuDevice}s.
 *
 * @remarks
 * `probeDevice` and `deviceGroup` are mandatory; the rest is optional and checked where Linux checks
 * it. Group helpers for `deviceGroup`: `genericDeviceGroup`, `genericSingleDeviceGroup`,
 * `pciDeviceGroup` (group.ts).
 */
export interface IommuOps {
  /** Driver name, for messages. */
  readonly name: string;
  /** `capable(dev, cap)`. */
  capable?(dev: Device, cap: IommuCap): boolean;
  /**
   * `domain_alloc_identity(dev)`: a dynamic identity domain (prefer {@link IommuOps.identityDomain}).
   * @throws ErrnoError (ERR_PTR)
   */
  domainAllocIdentity?(dev: Device): IommuDomain;
  /** `domain_alloc_paging(dev)`: a paging domain, or `null` (NULL → the core's `ENOMEM`). */
  domainAllocPaging?(dev: Device): IommuDomain | null;
  /**
   * `domain_alloc_paging_flags(dev, flags, user_data)`: a paging domain with `IOMMU_HWPT_*` flags.
   * @throws ErrnoError (ERR_PTR), e.g. `EOPNOTSUPP` for unsupported flags
   */
  domainAllocPagingFlags?(dev: Device | null, flags: number, userData: unknown): IommuDomain | null;
  /**
   * `domain_alloc_sva(dev, mm)`: an SVA domain sharing `mm`.
   * @throws ErrnoError (ERR_PTR)
   */
  domainAllocSva?(dev: Device, mm: Mm): IommuDomain;
  /**
   * `domain_alloc_nested(dev, parent, flags, user_data)`: a NESTED domain on a stage-2 parent.
   * @throws ErrnoError (ERR_PTR)
   */
  domainAllocNested?(dev: Device, parent: IommuDomain, flags: number, userData: unknown): IommuDomain;
  /**
   * `probe_device(dev)`: claim the device.
   * @returns the IOMMU instance the device sits behind
   * @throws ErrnoError (ERR_PTR), e.g. `ENODEV` when the device is not for this driver
   */
  probeDevice(dev: Device): IommuDevice;
  /** `release_device(dev)`: stop using any domain attached to the device. */
  releaseDevice?(dev: Device): void;
  /** `probe_finalize(dev)`: called once the device is in a group with its default domain attached. */
  probeFinalize?(dev: Device): void;
  /**
   * `device_group(dev)`: the device's group (a new reference); `null` → the core's `EINVAL`.
   * @throws ErrnoError (ERR_PTR)
   */
  deviceGroup(dev: Device): IommuGroup | null;
  /** `get_resv_regions(dev, list)`: the device's reserved regions (appended to the core's list). */
  getResvRegions?(dev: Device): IommuResvRegion[];
  /**
   * `of_xlate(dev, args)`: turn a DT specifier into fwspec IDs (`iommuFwspecAddIds`).
   * @throws ErrnoError
   */
  ofXlate?(dev: Device, args: OfPhandleArgs): void;
  /** `is_attach_deferred(dev)`. */
  isAttachDeferred?(dev: Device): boolean;
  /**
   * `page_response(dev, evt, msg)`: send a PRI response or resume a stalled transaction for the
   * group `evt` belongs to.
   */
  pageResponse?(dev: Device, evt: IommuFault, msg: IommuPageResponse): void;
  /** `def_domain_type(dev)`: `IOMMU_DOMAIN_IDENTITY`, `IOMMU_DOMAIN_DMA`, or 0 = no preference. */
  defDomainType?(dev: Device): number;
  /**
   * `remove_dev_pasid(dev, pasid, domain)` (history, ~v6.2–v6.10): used by the core when
   * {@link IommuOps.blockedDomain} has no `setDevPasid`.
   */
  removeDevPasid?(dev: Device, pasid: number, domain: IommuDomain): void;
  /**
   * `dev_enable_feat(dev, feat)` (history, ≤ v6.14).
   * @throws ErrnoError e.g. `ENODEV`, `EINVAL`, `EBUSY`
   */
  devEnableFeat?(dev: Device, feat: IommuDevFeature): void;
  /**
   * `dev_disable_feat(dev, feat)` (history).
   * @throws ErrnoError
   */
  devDisableFeat?(dev: Device, feat: IommuDevFeature): void;
  /** `default_domain_ops`: installed into domains allocated without ops. */
  readonly defaultDomainOps?: IommuDomainOps;
  /** `identity_domain`: a static, always-attachable identity domain. */
  readonly identityDomain?: IommuDomain;
  /** `blocked_domain`: a static, always-attachable blocking domain. */
  readonly blockedDomain?: IommuDomain;
  /** `release_domain`: static domain attached before `release_device`. */
  readonly releaseDomain?: IommuDomain;
  /** `default_domain`: legacy, force this IDENTITY/BLOCKED/PLATFORM domain as every group's default. */
  readonly defaultDomain?: IommuDomain;
  /** `user_pasid_table`: faults on any PASID go to the NESTED domain attached at the RID. */
  readonly userPasidTable?: boolean;
}
