/**
 * `struct iommu_domain` and the domain types (include/linux/iommu.h).
 *
 * Changes (additive only): none yet.
 *
 * @remarks
 * Drivers create domains with `new IommuDomain(ops, {...})` (or a subclass carrying their private
 * state, as `container_of` does) from their `IommuOps.domainAlloc*` ops; the core then sets `type`
 * and `owner`. Static identity/blocked domains are created with their type and have no owner.
 */

import type { Mm } from '@iommu-ts/mm';
import type { Device } from './device.js';
import type { IommuFaultHandler, IommuIopfHandler } from './fault.js';
import type { IommuDirtyOps, IommuDomainOps, IommuOps } from './iommu-ops.js';

export {
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
} from '@iommu-ts/io-pgtable';

/** `__IOMMU_DOMAIN_PAGING` (bit 0): supports map/unmap. */
export const __IOMMU_DOMAIN_PAGING = 1 << 0;
/** `__IOMMU_DOMAIN_DMA_API` (bit 1): owned by the DMA API. */
export const __IOMMU_DOMAIN_DMA_API = 1 << 1;
/** `__IOMMU_DOMAIN_PT` (bit 2): identity. */
export const __IOMMU_DOMAIN_PT = 1 << 2;
/** `__IOMMU_DOMAIN_DMA_FQ` (bit 3): DMA API with flush-queue invalidation. */
export const __IOMMU_DOMAIN_DMA_FQ = 1 << 3;
/** `__IOMMU_DOMAIN_SVA` (bit 4): shares a process mm. */
export const __IOMMU_DOMAIN_SVA = 1 << 4;
/** `__IOMMU_DOMAIN_PLATFORM` (bit 5): legacy driver-specific. */
export const __IOMMU_DOMAIN_PLATFORM = 1 << 5;
/** `__IOMMU_DOMAIN_NESTED` (bit 6): user-managed stage 1 on a stage-2 parent. */
export const __IOMMU_DOMAIN_NESTED = 1 << 6;

/** `IOMMU_DOMAIN_BLOCKED` (0x00): all DMA blocked. */
export const IOMMU_DOMAIN_BLOCKED = 0;
/** `IOMMU_DOMAIN_IDENTITY` (0x04): IOVA == PA. */
export const IOMMU_DOMAIN_IDENTITY = __IOMMU_DOMAIN_PT;
/** `IOMMU_DOMAIN_UNMANAGED` (0x01): mappings managed by an API user (VFIO, iommufd, drivers). */
export const IOMMU_DOMAIN_UNMANAGED = __IOMMU_DOMAIN_PAGING;
/** `IOMMU_DOMAIN_DMA` (0x03): DMA API, strict invalidation. */
export const IOMMU_DOMAIN_DMA = __IOMMU_DOMAIN_PAGING | __IOMMU_DOMAIN_DMA_API;
/** `IOMMU_DOMAIN_DMA_FQ` (0x0B): DMA API, batched invalidation. */
export const IOMMU_DOMAIN_DMA_FQ = __IOMMU_DOMAIN_PAGING | __IOMMU_DOMAIN_DMA_API | __IOMMU_DOMAIN_DMA_FQ;
/** `IOMMU_DOMAIN_SVA` (0x10): process address space. */
export const IOMMU_DOMAIN_SVA = __IOMMU_DOMAIN_SVA;
/** `IOMMU_DOMAIN_PLATFORM` (0x20): legacy. */
export const IOMMU_DOMAIN_PLATFORM = __IOMMU_DOMAIN_PLATFORM;
/** `IOMMU_DOMAIN_NESTED` (0x40): nested translation. */
export const IOMMU_DOMAIN_NESTED = __IOMMU_DOMAIN_NESTED;
/** `IOMMU_DOMAIN_ALLOC_FLAGS`: every type bit except DMA_FQ. */
export const IOMMU_DOMAIN_ALLOC_FLAGS = ~__IOMMU_DOMAIN_DMA_FQ & 0x7f;

/** `IOMMU_NO_PASID` (0): the RID / no PASID. */
export const IOMMU_NO_PASID = 0;

/** `enum iommu_domain_cookie_type`: which cookie slot of the domain is live. */
export const IommuDomainCookieType = {
  /** No cookie. */
  NONE: 0,
  /** The DMA layer's IOVA cookie. */
  DMA_IOVA: 1,
  /** An MSI-only cookie. */
  DMA_MSI: 2,
  /** Legacy fault handler (`iommu_set_fault_handler`). */
  FAULT_HANDLER: 3,
  /** SVA (mm). */
  SVA: 4,
  /** iommufd hw_pagetable. */
  IOMMUFD: 5,
} as const;
/** A value of {@link (IommuDomainCookieType:variable)}. */
export type IommuDomainCookieType = (typeof IommuDomainCookieType)[keyof typeof IommuDomainCookieType];

/** `struct iommu_domain_geometry`. */
export interface IommuDomainGeometry {
  /** First mappable IOVA (u64). */
  apertureStart: bigint;
  /** Last mappable IOVA, inclusive (u64). */
  apertureEnd: bigint;
  /** DMA only within the aperture. */
  forceAperture: boolean;
}

/** Options of the {@link IommuDomain} constructor. */
export interface IommuDomainOptions {
  /** Initial type; drivers leave it 0 and the core sets it (static domains pass their type). */
  type?: number;
  /** `pgsize_bitmap`: the page sizes the domain maps (bit n set = 2^n bytes). Default 0. */
  pgsizeBitmap?: bigint;
  /** Geometry; default `[0, 2^64 - 1]`, not forced. */
  geometry?: Partial<IommuDomainGeometry>;
  /** `is_iommupt` (a generic_pt domain using `mapRange`/`unmapRange`); default false. */
  isIommupt?: boolean;
}

/**
 * `struct iommu_domain`.
 *
 * @remarks
 * Cookie slots (one live at a time, per `cookieType`): `iovaCookie` (DMA layer), the legacy
 * `faultHandler`/`handlerToken`, `mm`/`users` (SVA), `iommufdHwpt`.
 */
export class IommuDomain {
  /** Domain type (`IOMMU_DOMAIN_*`). */
  type: number;
  /** `ops`: the driver's domain ops (filled from `IommuOps.defaultDomainOps` if the driver left them empty). */
  ops: IommuDomainOps;
  /** `owner`: the driver ops whose allocator created the domain; `null` for static domains. */
  owner: IommuOps | null = null;
  /** `pgsize_bitmap` (bit n = 2^n-byte pages). */
  pgsizeBitmap: bigint;
  /** `geometry`. */
  geometry: IommuDomainGeometry;
  /** `is_iommupt`. */
  isIommupt: boolean;
  /** `iopf_handler`: recoverable-fault handler, or `null`. */
  iopfHandler: IommuIopfHandler | null = null;
  /** `cookie_type`. */
  cookieType: IommuDomainCookieType = IommuDomainCookieType.NONE;
  /** DMA IOVA / MSI cookie (the dma-iommu layer's object), or `null`. */
  iovaCookie: object | null = null;
  /** Legacy fault handler. */
  faultHandler: IommuFaultHandler | null = null;
  /** Token passed to `faultHandler`. */
  handlerToken: unknown = null;
  /** SVA: the shared mm. */
  mm: Mm | null = null;
  /** SVA: user count (`domain->users`). */
  users = 0;
  /** iommufd hw_pagetable (opaque to the core). */
  iommufdHwpt: object | null = null;
  /**
   * `dirty_ops`: the driver's dirty-tracking operations, or null when the domain cannot track
   * dirty IOVAs (set by drivers on domains allocated with `IOMMU_HWPT_ALLOC_DIRTY_TRACKING`).
   */
  dirtyOps: IommuDirtyOps | null = null;
  /** Set by `iommuDomainFree`; using a freed domain is a bug. */
  freed = false;

  /**
   * @param ops - the driver's domain ops
   * @param options - type, page sizes, geometry
   */
  constructor(ops: IommuDomainOps, options: IommuDomainOptions = {}) {
    this.ops = ops;
    this.type = options.type ?? 0;
    this.pgsizeBitmap = options.pgsizeBitmap ?? 0n;
    this.geometry = {
      apertureStart: options.geometry?.apertureStart ?? 0n,
      apertureEnd: options.geometry?.apertureEnd ?? 0xffff_ffff_ffff_ffffn,
      forceAperture: options.geometry?.forceAperture ?? false,
    };
    this.isIommupt = options.isIommupt ?? false;
  }

  /** Whether the domain supports map/unmap (`__IOMMU_DOMAIN_PAGING`). */
  get isPaging(): boolean {
    return (this.type & __IOMMU_DOMAIN_PAGING) !== 0;
  }
}

/** `iommu_is_dma_domain(domain)`: the DMA_API bit is set. */
export function iommuIsDmaDomain(domain: IommuDomain): boolean {
  return (domain.type & __IOMMU_DOMAIN_DMA_API) !== 0;
}

/**
 * `iommu_domain_type_str(type)`: Blocked, Passthrough, Unmanaged, Translated (DMA, DMA_FQ),
 * Platform, or Unknown.
 */
export function iommuDomainTypeStr(type: number): string {
  switch (type) {
    case IOMMU_DOMAIN_BLOCKED:
      return 'Blocked';
    case IOMMU_DOMAIN_IDENTITY:
      return 'Passthrough';
    case IOMMU_DOMAIN_UNMANAGED:
      return 'Unmanaged';
    case IOMMU_DOMAIN_DMA:
    case IOMMU_DOMAIN_DMA_FQ:
      return 'Translated';
    case IOMMU_DOMAIN_PLATFORM:
      return 'Platform';
    default:
      return 'Unknown';
  }
}

/**
 * `iommu_set_fault_handler(domain, handler, token)`: install the legacy unrecoverable-fault handler.
 * Warns and does nothing if the domain already has a cookie.
 */
export function iommuSetFaultHandler(domain: IommuDomain, handler: IommuFaultHandler, token: unknown): void {
  if (domain.cookieType !== IommuDomainCookieType.NONE) return;
  domain.cookieType = IommuDomainCookieType.FAULT_HANDLER;
  domain.faultHandler = handler;
  domain.handlerToken = token;
}

/**
 * `report_iommu_fault(domain, dev, iova, flags)`: call the legacy handler.
 *
 * @returns the handler's result, or `-ENOSYS` (-38) when there is none
 */
export function reportIommuFault(domain: IommuDomain, dev: Device, iova: bigint, flags: number): number {
  if (domain.cookieType !== IommuDomainCookieType.FAULT_HANDLER || !domain.faultHandler) return -38;
  return domain.faultHandler(domain, dev, iova, flags, domain.handlerToken);
}
