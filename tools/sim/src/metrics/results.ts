/**
 * What a run produces: per platform and workload, the figures of the summary table, a timeline of
 * faults and invalidations, and the IOVA spaces the workload used. The same shapes are written by
 * `--json` (schema in output/json-schema.ts) and drawn by `--report`.
 */

import type { TopologyView } from '../machine/machine.js';

/** The figures of one workload run on one platform (deltas over the run). */
export interface WorkloadFigures {
  /** DMA transactions issued by the endpoints. */
  readonly dmaRequests: number;
  /** Bytes moved by DMA (read + written). */
  readonly bytes: number;
  /** Bytes read from memory by DMA. */
  readonly bytesRead: number;
  /** Bytes written to memory by DMA. */
  readonly bytesWritten: number;
  /** IOTLB / TLB hits. */
  readonly iotlbHits: number;
  /** IOTLB / TLB misses. */
  readonly iotlbMisses: number;
  /** hits / (hits + misses), or `null` with no lookup. */
  readonly iotlbHitRate: number | null;
  /** Page-table walks by the hardware. */
  readonly pageWalks: number;
  /** DMA transactions that ended in a fault, by reason as the endpoint saw it. */
  readonly dmaFaults: Readonly<Record<string, number>>;
  /** Faults the hardware reported, by type. */
  readonly hwFaults: Readonly<Record<string, number>>;
  /** Page requests (PRI / PRQ) received by the OS. */
  readonly pageRequests: number;
  /** Page responses sent. */
  readonly pageResponses: number;
  /** Transactions stalled. */
  readonly stalls: number;
  /** Invalidation commands consumed by the hardware, by type. */
  readonly invalidations: Readonly<Record<string, number>>;
  /** ATS translation requests. */
  readonly atsRequests: number;
  /** ATC invalidations received by endpoints. */
  readonly atcInvalidations: number;
  /** Endpoint DMA translated by the device's own ATC (ATS devices). */
  readonly atcHits: number;
  /** Endpoint DMA that needed an ATS translation request first. */
  readonly atcMisses: number;
  /** atcHits / (atcHits + atcMisses), or `null` when no endpoint used ATS. */
  readonly atcHitRate: number | null;
  /** Highest number of pinned pages of RAM seen during the run. */
  readonly peakPinnedPages: number;
  /** Bytes compared by the workload's own data checks. */
  readonly bytesVerified: number;
  /** Data checks made. */
  readonly checks: number;
  /** Host wall time of the run in milliseconds. */
  readonly wallMs: number;
  /** Simulated time the run took on the machine's scheduler, in nanoseconds. */
  readonly virtualNs: number;
}

/** One step of a workload with what happened during it. */
export interface TimelineEntry {
  /** Position (0-based) in the run. */
  readonly index: number;
  /** What the workload was doing (`map guest RAM`, `rx burst 3`…). */
  readonly label: string;
  /** Simulated time at the end of the step, nanoseconds since the run began. */
  readonly atNs: number;
  /** DMA transactions during the step. */
  readonly dmaRequests: number;
  /** Faults during the step: endpoint-visible DMA faults and hardware-reported faults, by type. */
  readonly faults: Readonly<Record<string, number>>;
  /** Page requests during the step. */
  readonly pageRequests: number;
  /** Invalidation commands during the step, by type. */
  readonly invalidations: Readonly<Record<string, number>>;
  /** Pinned pages at the end of the step. */
  readonly pinnedPages: number;
}

/** A mapping a workload made in an I/O address space. */
export interface IovaRange {
  /** First IOVA (bytes). */
  readonly iova: bigint;
  /** Length in bytes. */
  readonly length: bigint;
  /** What it holds (`guest RAM 0-640K`, `rx ring`…). */
  readonly label: string;
  /** Timeline index when it was mapped. */
  readonly mappedAt: number;
  /** Timeline index when it was unmapped, or `null` when still mapped at the end. */
  readonly unmappedAt: number | null;
}

/** An I/O address space a workload used: an IOAS, a VFIO container, a DMA domain, an SVA mm. */
export interface IovaSpace {
  /** Name (`ioas 1`, `container`, `dma domain nvme0`, `sva pasid 1`). */
  readonly name: string;
  /** Kind. */
  readonly kind: 'ioas' | 'container' | 'dma-domain' | 'sva';
  /** Devices using it. */
  readonly devices: readonly string[];
  /** Every mapping, in the order made. */
  readonly ranges: readonly IovaRange[];
}

/** The outcome of one workload on one platform. */
export interface WorkloadResult {
  /** Platform name. */
  readonly platform: string;
  /** Workload name (for a workload file: the file's `name`). */
  readonly workload: string;
  /** `passed`; `failed` (the run threw, e.g. a data mismatch); `skipped` (the platform lacks what it needs). */
  readonly status: 'passed' | 'failed' | 'skipped';
  /** Why it was skipped or how it failed; `null` when it passed. */
  readonly message: string | null;
  /** Figures (all zero when skipped). */
  readonly figures: WorkloadFigures;
  /** Steps. */
  readonly timeline: readonly TimelineEntry[];
  /** I/O address spaces. */
  readonly spaces: readonly IovaSpace[];
}

/** Everything a run produced. */
export interface RunResult {
  /** Format version of this structure. */
  readonly version: 1;
  /** The seed used. */
  readonly seed: number;
  /** The platforms, as built. */
  readonly platforms: readonly TopologyView[];
  /** One entry per platform and workload, platforms outer. */
  readonly results: readonly WorkloadResult[];
  /** Host facts for the wall times. */
  readonly host: { readonly node: string; readonly platform: string; readonly cpus: number };
}

/** Figures of a run that did nothing (a skipped workload). */
export const ZERO_FIGURES: WorkloadFigures = {
  dmaRequests: 0,
  bytes: 0,
  bytesRead: 0,
  bytesWritten: 0,
  iotlbHits: 0,
  iotlbMisses: 0,
  iotlbHitRate: null,
  pageWalks: 0,
  dmaFaults: {},
  hwFaults: {},
  pageRequests: 0,
  pageResponses: 0,
  stalls: 0,
  invalidations: {},
  atsRequests: 0,
  atcInvalidations: 0,
  atcHits: 0,
  atcMisses: 0,
  atcHitRate: null,
  peakPinnedPages: 0,
  bytesVerified: 0,
  checks: 0,
  wallMs: 0,
  virtualNs: 0,
};
