/**
 * Counter arithmetic shared by the machine builders and the recorder: summing units and endpoints
 * into {@link MachineCounters}, differences between two snapshots, and the per-reason tally of
 * DMA faults taken from the endpoints' `endpoint_dma_done` tracepoint.
 */

import { traceEndpointDmaDone } from '@iommu-ts/iommu-core';
import type { MachineCounters, SimEndpoint, SimUnit, UnitCounters } from '../machine/machine.js';

type Tally = Readonly<Record<string, number>>;

/** @returns unit counters that are all zero */
export function zeroUnitCounters(): UnitCounters {
  return {
    iotlbHits: 0,
    iotlbMisses: 0,
    pageWalks: 0,
    invalidations: {},
    hwFaults: {},
    pageRequests: 0,
    pageResponses: 0,
    stalls: 0,
  };
}

/**
 * Add two tallies key by key.
 * @param a - first
 * @param b - second
 * @returns a new tally
 */
export function addTally(a: Tally, b: Tally): Record<string, number> {
  const out: Record<string, number> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/**
 * Subtract tallies key by key, dropping keys whose difference is zero.
 * @param after - later snapshot
 * @param before - earlier snapshot
 * @returns a new tally
 */
export function diffTally(after: Tally, before: Tally): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/**
 * Sum unit counters.
 * @param list - one snapshot per unit
 * @returns their sum
 */
export function sumUnitCounters(list: readonly UnitCounters[]): UnitCounters {
  let acc = zeroUnitCounters();
  for (const c of list) {
    acc = {
      iotlbHits: acc.iotlbHits + c.iotlbHits,
      iotlbMisses: acc.iotlbMisses + c.iotlbMisses,
      pageWalks: acc.pageWalks + c.pageWalks,
      invalidations: addTally(acc.invalidations, c.invalidations),
      hwFaults: addTally(acc.hwFaults, c.hwFaults),
      pageRequests: acc.pageRequests + c.pageRequests,
      pageResponses: acc.pageResponses + c.pageResponses,
      stalls: acc.stalls + c.stalls,
    };
  }
  return acc;
}

/**
 * DMA faults by reason for a set of endpoint models, counted from the `endpoint_dma_done`
 * tracepoint (enabled while a tally is open). Endpoint model names must be unique among the
 * machines alive at once; builders prefix them with a per-machine serial.
 */
export class FaultTally {
  private readonly counts: Record<string, number> = {};
  private readonly names = new Set<string>();
  private unsubscribe: (() => void) | null;

  constructor() {
    this.unsubscribe = traceEndpointDmaDone.subscribe((e) => {
      if (e.ok || !this.names.has(e.endpoint)) return;
      const key = e.reason ?? 'unknown';
      this.counts[key] = (this.counts[key] ?? 0) + 1;
    });
  }

  /**
   * Count faults of one more endpoint model.
   * @param endpointName - the `name` given to its `Endpoint`
   */
  watch(endpointName: string): void {
    this.names.add(endpointName);
  }

  /** @returns a copy of the counts so far */
  snapshot(): Record<string, number> {
    return { ...this.counts };
  }

  /** Stop counting (the machine is done). */
  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }
}

/**
 * Machine counters from its units, endpoints and fault tally.
 * @param units - the units
 * @param endpoints - the endpoints
 * @param tally - DMA faults by reason
 * @returns the cumulative counters
 */
export function machineCounters(
  units: readonly SimUnit[],
  endpoints: readonly SimEndpoint[],
  tally: FaultTally,
): MachineCounters {
  const u = sumUnitCounters(units.map((x) => x.counters()));
  let dmaRequests = 0;
  let bytesRead = 0;
  let bytesWritten = 0;
  let atsRequests = 0;
  let atcInvalidations = 0;
  let atcHits = 0;
  let atcMisses = 0;
  for (const ep of endpoints) {
    const s = ep.endpoint.stats;
    dmaRequests += s.issued;
    bytesRead += s.bytesRead;
    bytesWritten += s.bytesWritten;
    atsRequests += s.atsRequests;
    atcInvalidations += s.atsInvalidations;
    atcHits += s.atcHits;
    atcMisses += s.atcMisses;
  }
  return {
    ...u,
    dmaRequests,
    bytesRead,
    bytesWritten,
    dmaFaults: tally.snapshot(),
    atsRequests,
    atcInvalidations,
    atcHits,
    atcMisses,
  };
}

/**
 * The difference of two machine snapshots.
 * @param after - later
 * @param before - earlier
 * @returns `after − before`, tallies without zero keys
 */
export function diffMachineCounters(after: MachineCounters, before: MachineCounters): MachineCounters {
  return {
    iotlbHits: after.iotlbHits - before.iotlbHits,
    iotlbMisses: after.iotlbMisses - before.iotlbMisses,
    pageWalks: after.pageWalks - before.pageWalks,
    invalidations: diffTally(after.invalidations, before.invalidations),
    hwFaults: diffTally(after.hwFaults, before.hwFaults),
    pageRequests: after.pageRequests - before.pageRequests,
    pageResponses: after.pageResponses - before.pageResponses,
    stalls: after.stalls - before.stalls,
    dmaRequests: after.dmaRequests - before.dmaRequests,
    bytesRead: after.bytesRead - before.bytesRead,
    bytesWritten: after.bytesWritten - before.bytesWritten,
    dmaFaults: diffTally(after.dmaFaults, before.dmaFaults),
    atsRequests: after.atsRequests - before.atsRequests,
    atcInvalidations: after.atcInvalidations - before.atcInvalidations,
    atcHits: after.atcHits - before.atcHits,
    atcMisses: after.atcMisses - before.atcMisses,
  };
}
