/**
 * Tracepoints of the `Endpoint` device model (include/linux/tracepoint.h style, via base's
 * `defineTracepoint`). Each event names the endpoint; addresses are bigints.
 */

import { defineTracepoint, type Tracepoint } from '@iommu-ts/base';
import type { DmaAccessKind, DmaFaultReason, PrgResponseCode } from './dma-request.js';

/** `endpoint_dma_issue`: a DMA operation was issued. */
export interface EndpointDmaIssueEvent {
  /** Endpoint name. */
  readonly endpoint: string;
  /** Ticket id. */
  readonly ticket: number;
  /** Read or write. */
  readonly access: DmaAccessKind;
  /** Address (IOVA). */
  readonly addr: bigint;
  /** Bytes. */
  readonly size: number;
  /** PASID, if any. */
  readonly pasid: number | undefined;
}

/** `endpoint_dma_done`: a DMA operation finished. */
export interface EndpointDmaDoneEvent {
  /** Endpoint name. */
  readonly endpoint: string;
  /** Ticket id. */
  readonly ticket: number;
  /** Completed or failed. */
  readonly ok: boolean;
  /** Fault reason when failed. */
  readonly reason: DmaFaultReason | undefined;
  /** Virtual time in ns. */
  readonly now: number;
}

/** `endpoint_ats_translate`: an ATS Translation Request and its completion. */
export interface EndpointAtsTranslateEvent {
  /** Endpoint name. */
  readonly endpoint: string;
  /** PASID, if any. */
  readonly pasid: number | undefined;
  /** Requested untranslated address. */
  readonly addr: bigint;
  /** Completion status. */
  readonly status: 'success' | 'ur' | 'ca';
  /** Translated base (success only). */
  readonly translated: bigint | undefined;
  /** Range size (success only). */
  readonly size: bigint | undefined;
  /** Permissions as `'rwxu'` letters, `-` when clear (success only). */
  readonly perm: string;
}

/** `endpoint_atc_inv`: an ATS Invalidate Request was received. */
export interface EndpointAtcInvEvent {
  /** Endpoint name. */
  readonly endpoint: string;
  /** PASID prefix, if any. */
  readonly pasid: number | undefined;
  /** Global Invalidate. */
  readonly global: boolean;
  /** Decoded range start. */
  readonly start: bigint;
  /** Decoded range size. */
  readonly size: bigint;
  /** ITag. */
  readonly itag: number;
  /** Entries dropped. */
  readonly dropped: number;
}

/** `endpoint_page_request`: a PRI Page Request Message was sent. */
export interface EndpointPageRequestEvent {
  /** Endpoint name. */
  readonly endpoint: string;
  /** PASID, if any. */
  readonly pasid: number | undefined;
  /** PRG index. */
  readonly prgIndex: number;
  /** Page address. */
  readonly addr: bigint;
  /** `'rwxpl'` flags, `-` when clear. */
  readonly flags: string;
}

/** `endpoint_prg_response`: a PRG Response Message was received. */
export interface EndpointPrgResponseEvent {
  /** Endpoint name. */
  readonly endpoint: string;
  /** PASID, if any. */
  readonly pasid: number | undefined;
  /** PRG index. */
  readonly prgIndex: number;
  /** Response code. */
  readonly code: PrgResponseCode;
  /** Whether it matched an outstanding group (false: Unexpected PRG Index). */
  readonly expected: boolean;
}

/** `endpoint_dma_stall`: the IOMMU held (stalled) a transaction, or released it. */
export interface EndpointDmaStallEvent {
  /** Endpoint name. */
  readonly endpoint: string;
  /** Ticket id. */
  readonly ticket: number;
  /** IOMMU stall tag. */
  readonly tag: number;
  /** Address of the held request. */
  readonly addr: bigint;
  /** `'held'`, then `'resumed'` (completed) or `'terminated'` (faulted). */
  readonly phase: 'held' | 'resumed' | 'terminated';
}

/** Tracepoint `endpoint_dma_issue`. */
export const traceEndpointDmaIssue: Tracepoint<EndpointDmaIssueEvent> =
  defineTracepoint('endpoint_dma_issue');
/** Tracepoint `endpoint_dma_done`. */
export const traceEndpointDmaDone: Tracepoint<EndpointDmaDoneEvent> = defineTracepoint('endpoint_dma_done');
/** Tracepoint `endpoint_ats_translate`. */
export const traceEndpointAtsTranslate: Tracepoint<EndpointAtsTranslateEvent> =
  defineTracepoint('endpoint_ats_translate');
/** Tracepoint `endpoint_atc_inv`. */
export const traceEndpointAtcInv: Tracepoint<EndpointAtcInvEvent> = defineTracepoint('endpoint_atc_inv');
/** Tracepoint `endpoint_page_request`. */
export const traceEndpointPageRequest: Tracepoint<EndpointPageRequestEvent> =
  defineTracepoint('endpoint_page_request');
/** Tracepoint `endpoint_prg_response`. */
export const traceEndpointPrgResponse: Tracepoint<EndpointPrgResponseEvent> =
  defineTracepoint('endpoint_prg_response');
/** Tracepoint `endpoint_dma_stall`. */
export const traceEndpointDmaStall: Tracepoint<EndpointDmaStallEvent> =
  defineTracepoint('endpoint_dma_stall');

/** One recorded endpoint event: the tracepoint name and its event. */
export type EndpointTraceRecord =
  | { readonly tp: 'endpoint_dma_issue'; readonly event: EndpointDmaIssueEvent }
  | { readonly tp: 'endpoint_dma_done'; readonly event: EndpointDmaDoneEvent }
  | { readonly tp: 'endpoint_ats_translate'; readonly event: EndpointAtsTranslateEvent }
  | { readonly tp: 'endpoint_atc_inv'; readonly event: EndpointAtcInvEvent }
  | { readonly tp: 'endpoint_page_request'; readonly event: EndpointPageRequestEvent }
  | { readonly tp: 'endpoint_prg_response'; readonly event: EndpointPrgResponseEvent }
  | { readonly tp: 'endpoint_dma_stall'; readonly event: EndpointDmaStallEvent };
