/**
 * Tracepoints of the I/O page fault path (include/trace/events/iommu.h `dev_fault` and
 * `dev_page_response`, plus one per step of io-pgfault.c that Linux only logs): received, kept as
 * partial, grouped, handed to a handler, answered, aborted, discarded.
 */

import { defineTracepoint, type Tracepoint } from '@iommu-ts/base';
import type { IommuPageResponseCode } from '@iommu-ts/iommu-core';

/** Fields shared by the fault events: the request as the driver reported it. */
export interface IopfFaultEventBase {
  /** `dev_name()` of the faulting device. */
  readonly dev: string;
  /** `IOMMU_FAULT_PAGE_REQUEST_*` flags of the request (u32). */
  readonly flags: number;
  /** PASID of the request (meaningful with `PASID_VALID`). */
  readonly pasid: number;
  /** Page Request Group Index (or stall tag). */
  readonly grpid: number;
  /** `IOMMU_FAULT_PERM_*` bits. */
  readonly perm: number;
  /** Page address (u64). */
  readonly addr: bigint;
}

/** `iopf_fault_received` (Linux `dev_fault`): `iommuReportDeviceFault` was called. */
export type IopfFaultReceivedEvent = IopfFaultEventBase;

/** `iopf_fault_partial`: a non-last request was kept on the device's partial list. */
export type IopfFaultPartialEvent = IopfFaultEventBase;

/** `iopf_group_queued`: the last request arrived and its group went on the pending list. */
export interface IopfGroupQueuedEvent {
  /** Device name. */
  readonly dev: string;
  /** PASID of the last request. */
  readonly pasid: number;
  /** Group index. */
  readonly grpid: number;
  /** Requests in the group (`fault_count`). */
  readonly faultCount: number;
}

/** `iopf_group_handled`: a group went to its domain's handler, with the handler's verdict. */
export interface IopfGroupHandledEvent {
  /** Device name. */
  readonly dev: string;
  /** PASID of the last request. */
  readonly pasid: number;
  /** Group index. */
  readonly grpid: number;
  /** `0` when the handler took the group, else the errno name it failed with. */
  readonly result: string | 0;
}

/** `iopf_page_response` (Linux `dev_page_response`): a response went to the driver. */
export interface IopfPageResponseEvent {
  /** Device name. */
  readonly dev: string;
  /** PASID passed in the response. */
  readonly pasid: number;
  /** Group index. */
  readonly grpid: number;
  /** Response code. */
  readonly code: IommuPageResponseCode;
  /** Why: the handler's answer, no handler, an abort, or a teardown. */
  readonly cause: 'handler' | 'no-handler' | 'abort' | 'teardown';
}

/** `iopf_partial_discarded`: partial requests were dropped (discard or device removal). */
export interface IopfPartialDiscardedEvent {
  /** Device name. */
  readonly dev: string;
  /** How many requests were dropped. */
  readonly count: number;
}

/** Tracepoint `iopf_fault_received`. */
export const traceIopfFaultReceived: Tracepoint<IopfFaultReceivedEvent> =
  defineTracepoint('iopf_fault_received');
/** Tracepoint `iopf_fault_partial`. */
export const traceIopfFaultPartial: Tracepoint<IopfFaultPartialEvent> =
  defineTracepoint('iopf_fault_partial');
/** Tracepoint `iopf_group_queued`. */
export const traceIopfGroupQueued: Tracepoint<IopfGroupQueuedEvent> = defineTracepoint('iopf_group_queued');
/** Tracepoint `iopf_group_handled`. */
export const traceIopfGroupHandled: Tracepoint<IopfGroupHandledEvent> =
  defineTracepoint('iopf_group_handled');
/** Tracepoint `iopf_page_response`. */
export const traceIopfPageResponse: Tracepoint<IopfPageResponseEvent> =
  defineTracepoint('iopf_page_response');
/** Tracepoint `iopf_partial_discarded`. */
export const traceIopfPartialDiscarded: Tracepoint<IopfPartialDiscardedEvent> =
  defineTracepoint('iopf_partial_discarded');

/** `iopf_warn`: a misuse Linux would `WARN_ON` (or silently corrupt memory with). */
export interface IopfWarnEvent {
  /** Device name, or `''` when there is none. */
  readonly dev: string;
  /** What went wrong. */
  readonly message: string;
}

/** Tracepoint `iopf_warn`: subscribe to see misuses (a test can assert none happened). */
export const traceIopfWarn: Tracepoint<IopfWarnEvent> = defineTracepoint('iopf_warn');

/**
 * Emit an `iopf_warn` event.
 * @param dev - device name or `''`
 * @param message - what went wrong
 * @internal
 */
export function iopfWarn(dev: string, message: string): void {
  if (traceIopfWarn.enabled) traceIopfWarn.emit({ dev, message });
}
