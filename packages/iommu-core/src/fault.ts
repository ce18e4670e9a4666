/**
 * Fault and page-response types of the IOMMU core (include/linux/iommu.h): `struct iommu_fault`,
 * `struct iommu_fault_page_request`, `struct iommu_page_response`, `struct iopf_fault`, the
 * per-domain IOPF handler type and the legacy unrecoverable-fault handler.
 *
 * Changes: the request flags now follow current kernels (NEEDS_PASID is bit 2; no PRIV_DATA flag).
 *
 * @remarks
 * Reporting, grouping and queues live in `@iommu-ts/io-pgfault`; this file only defines the shapes.
 * Flag values follow current kernels (spec §13.1): `PASID_VALID` bit 0, `LAST_PAGE` bit 1,
 * `RESPONSE_NEEDS_PASID` bit 2. (The ~v5.3–v6.7 uAPI had a `PRIV_DATA` flag at bit 2 and
 * NEEDS_PASID at bit 3; current kernels keep `private_data` without a validity flag.)
 */

import type { Device } from './device.js';
import type { IommuDomain } from './domain.js';

/** Read access requested (`IOMMU_FAULT_PERM_READ`, bit 0). */
export const IOMMU_FAULT_PERM_READ = 1 << 0;
/** Write access requested (`IOMMU_FAULT_PERM_WRITE`, bit 1). */
export const IOMMU_FAULT_PERM_WRITE = 1 << 1;
/** Execute access requested (`IOMMU_FAULT_PERM_EXEC`, bit 2). */
export const IOMMU_FAULT_PERM_EXEC = 1 << 2;
/** Privileged access requested (`IOMMU_FAULT_PERM_PRIV`, bit 3). */
export const IOMMU_FAULT_PERM_PRIV = 1 << 3;

/** `IOMMU_FAULT_PAGE_REQUEST_PASID_VALID` (bit 0): `pasid` is meaningful. */
export const IOMMU_FAULT_PAGE_REQUEST_PASID_VALID = 1 << 0;
/** `IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE` (bit 1): last request of its page request group. */
export const IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE = 1 << 1;
/**
 * `IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID` (bit 2 in current kernels; bit 3 in the ~v5.3-v6.7
 * uAPI, where bit 2 was PRIV_DATA): the response must carry the request's PASID.
 */
export const IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID = 1 << 2;

/** `enum iommu_fault_type`. Current kernels have only `PAGE_REQ` (1); the uAPI era used DMA_UNRECOV 1, PAGE_REQ 2. */
export const IommuFaultType = {
  /** Recoverable page request (`IOMMU_FAULT_PAGE_REQ`). */
  PAGE_REQ: 1,
} as const;
/** A value of {@link (IommuFaultType:variable)}. */
export type IommuFaultType = (typeof IommuFaultType)[keyof typeof IommuFaultType];

/** `struct iommu_fault_page_request`. */
export interface IommuFaultPageRequest {
  /** `IOMMU_FAULT_PAGE_REQUEST_*` / `IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID` bits (u32). */
  flags: number;
  /** PASID (u32), meaningful with `PASID_VALID`. */
  pasid: number;
  /** Page Request Group Index (u32). */
  grpid: number;
  /** `IOMMU_FAULT_PERM_*` bits (u32). */
  perm: number;
  /** Page-aligned faulting address (u64). */
  addr: bigint;
  /** `private_data[2]` (u64 each): driver-private words echoed back in the response path. */
  privateData: [bigint, bigint];
}

/** `struct iommu_fault`: the type and the page request. */
export interface IommuFault {
  /** `type`: always `IommuFaultType.PAGE_REQ`. */
  type: IommuFaultType;
  /** `prm`: the page request. */
  prm: IommuFaultPageRequest;
}

/** `enum iommu_page_response_code`. */
export const IommuPageResponseCode = {
  /** PCI PRI "Success": the fault was handled, retry the access. */
  SUCCESS: 0,
  /** PCI PRI "Invalid Request": do not retry. */
  INVALID: 1,
  /** PCI PRI "Response Failure": the device should stop sending page requests. */
  FAILURE: 2,
} as const;
/** A value of {@link (IommuPageResponseCode:variable)}. */
export type IommuPageResponseCode = (typeof IommuPageResponseCode)[keyof typeof IommuPageResponseCode];

/** `struct iommu_page_response`: the answer to a page request group. */
export interface IommuPageResponse {
  /** PASID of the group (u32). */
  pasid: number;
  /** Page Request Group Index (u32). */
  grpid: number;
  /** Response code. */
  code: IommuPageResponseCode;
}

/** `struct iopf_fault`: one fault as queued by io-pgfault. */
export interface IopfFault {
  /** The fault. */
  fault: IommuFault;
}

/**
 * `struct iommu_attach_handle`: what is stored at a PASID (or at PASID 0 for handle-based RID
 * attaches). Users (iommufd, SVA) extend it with their data.
 */
export interface IommuAttachHandle {
  /** The attached domain. */
  domain: IommuDomain;
}

/**
 * The core's view of an `iopf_group` (defined fully by io-pgfault): the faults of one page request
 * group, delivered to a domain's {@link IommuIopfHandler}.
 */
export interface IopfGroupLike {
  /** `last_fault`: the request with `LAST_PAGE`. */
  readonly lastFault: IopfFault;
  /** `faults`: every request of the group, in arrival order. */
  readonly faults: readonly IopfFault[];
  /** The faulting device. */
  readonly dev: Device;
  /** `attach_handle`: what was attached at the fault's PASID (gives the domain). */
  readonly attachHandle: IommuAttachHandle | null;
}

/**
 * `domain->iopf_handler`: handle a page-request group for a domain.
 *
 * @remarks
 * Mirrors `int (*)(struct iopf_group *)`: return normally for 0, throw `ErrnoError` for `-errno`
 * (io-pgfault then answers INVALID itself).
 */
export type IommuIopfHandler = (group: IopfGroupLike) => void;

/** `IOMMU_FAULT_READ` (0): flags value of {@link IommuFaultHandler} for a read fault. */
export const IOMMU_FAULT_READ = 0x0;
/** `IOMMU_FAULT_WRITE` (1): flags value of {@link IommuFaultHandler} for a write fault. */
export const IOMMU_FAULT_WRITE = 0x1;

/**
 * Legacy unrecoverable-fault handler (`iommu_fault_handler_t`): `(domain, dev, iova, flags, token)`
 * → its int result, which `reportIommuFault` returns.
 */
export type IommuFaultHandler = (
  domain: IommuDomain,
  dev: Device,
  iova: bigint,
  flags: number,
  token: unknown,
) => number;
