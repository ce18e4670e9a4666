/**
 * The recorder a workload reports to: steps (the timeline, with counter deltas per step), IOVA
 * space changes, data checks, progress. It samples pinned pages at every step and tick to find
 * the peak, and turns everything into a {@link WorkloadResult}'s figures at the end.
 */

import type { MachineCounters, SimMachine } from '../machine/machine.js';
import { addTally, diffMachineCounters } from './counters.js';
import type { IovaRange, IovaSpace, TimelineEntry, WorkloadFigures } from './results.js';

/** A workload's data check failed: the bytes a device moved are not the bytes expected. */
export class DataMismatchError extends Error {
  /**
   * @param what - what was checked
   * @param offset - first differing byte offset
   * @param expected - expected byte there (or -1 past the end)
   * @param actual - actual byte there (or -1 past the end)
   */
  constructor(
    readonly what: string,
    readonly offset: number,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(
      `data check failed: ${what}: byte ${offset} is ${actual < 0 ? 'missing' : `0x${actual.toString(16)}`}, expected ${
        expected < 0 ? 'nothing' : `0x${expected.toString(16)}`
      }`,
    );
    this.name = 'DataMismatchError';
  }
}

interface MutableSpace {
  name: string;
  kind: IovaSpace['kind'];
  devices: string[];
  ranges: Array<{ iova: bigint; length: bigint; label: string; mappedAt: number; unmappedAt: number | null }>;
}

/** Collects what a workload does on a machine. */
export class Recorder {
  private readonly start: MachineCounters;
  private last: MachineCounters;
  private readonly t0: number;
  private readonly ns0: number;
  private peakPinned: number;
  private readonly timelineEntries: TimelineEntry[] = [];
  private readonly spaceMap = new Map<string, MutableSpace>();
  private verifiedBytes = 0;
  private checkCount = 0;
  private finished: WorkloadFigures | null = null;

  /**
   * @param machine - the machine the workload runs on
   * @param onProgress - called with (done, total) when the workload reports progress
   */
  constructor(
    readonly machine: SimMachine,
    private readonly onProgress: (done: number, total: number) => void = () => {},
  ) {
    this.start = machine.counters();
    this.last = this.start;
    this.t0 = performance.now();
    this.ns0 = machine.scheduler.now;
    this.peakPinned = machine.memory.stats().pinnedPages;
  }

  /** Sample pinned pages now (cheap; call it inside long loops). */
  tick(): void {
    const p = this.machine.memory.stats().pinnedPages;
    if (p > this.peakPinned) this.peakPinned = p;
  }

  /**
   * End a step: what happened since the previous step becomes one timeline entry.
   * @param label - what the workload did in it
   */
  step(label: string): void {
    const now = this.machine.counters();
    const d = diffMachineCounters(now, this.last);
    this.last = now;
    const pinned = this.machine.memory.stats().pinnedPages;
    if (pinned > this.peakPinned) this.peakPinned = pinned;
    this.timelineEntries.push({
      index: this.timelineEntries.length,
      label,
      atNs: this.machine.scheduler.now - this.ns0,
      dmaRequests: d.dmaRequests,
      faults: addTally(d.dmaFaults, d.hwFaults),
      pageRequests: d.pageRequests,
      invalidations: d.invalidations,
      pinnedPages: pinned,
    });
  }

  /**
   * Report progress (drives the progress bar).
   * @param done - units done
   * @param total - units in all
   */
  progress(done: number, total: number): void {
    this.tick();
    this.onProgress(done, total);
  }

  /**
   * Declare an I/O address space (idempotent; devices are merged).
   * @param name - unique name in the run
   * @param kind - what it is
   * @param devices - devices using it
   */
  space(name: string, kind: IovaSpace['kind'], devices: readonly string[] = []): void {
    const s = this.spaceMap.get(name);
    if (s === undefined) {
      this.spaceMap.set(name, { name, kind, devices: [...devices], ranges: [] });
      return;
    }
    for (const d of devices) if (!s.devices.includes(d)) s.devices.push(d);
  }

  /**
   * Record a mapping (after the call that made it succeeded).
   * @param space - space name (declared on first use as `ioas`)
   * @param iova - first IOVA
   * @param length - bytes
   * @param label - what it holds
   */
  mapped(space: string, iova: bigint, length: bigint, label: string): void {
    let s = this.spaceMap.get(space);
    if (s === undefined) {
      this.space(space, 'ioas');
      s = this.spaceMap.get(space) as MutableSpace;
    }
    s.ranges.push({ iova, length, label, mappedAt: this.timelineEntries.length, unmappedAt: null });
  }

  /**
   * Record an unmap: every live range inside [iova, iova + length) ends now.
   * @param space - space name
   * @param iova - first IOVA
   * @param length - bytes
   */
  unmapped(space: string, iova: bigint, length: bigint): void {
    const s = this.spaceMap.get(space);
    if (s === undefined) return;
    const end = iova + length;
    for (const r of s.ranges) {
      if (r.unmappedAt === null && r.iova >= iova && r.iova + r.length <= end)
        r.unmappedAt = this.timelineEntries.length;
    }
  }

  /**
   * Compare bytes a device moved with the bytes expected; throws on the first difference.
   * @param what - what is checked (named in the error)
   * @param expected - expected bytes
   * @param actual - bytes found
   * @throws DataMismatchError when they differ
   */
  verify(what: string, expected: Uint8Array, actual: Uint8Array): void {
    this.checkCount++;
    const n = Math.max(expected.length, actual.length);
    if (expected.length === actual.length) {
      let i = 0;
      for (; i < n; i++) if (expected[i] !== actual[i]) break;
      if (i === n) {
        this.verifiedBytes += n;
        return;
      }
      throw new DataMismatchError(what, i, expected[i] as number, actual[i] as number);
    }
    let i = 0;
    const m = Math.min(expected.length, actual.length);
    while (i < m && expected[i] === actual[i]) i++;
    throw new DataMismatchError(what, i, expected[i] ?? -1, actual[i] ?? -1);
  }

  /**
   * Record a check of something other than bytes (a fault that had to happen, a count).
   * @param what - what is checked
   * @param ok - whether it held
   * @throws Error when it did not
   */
  expect(what: string, ok: boolean): void {
    this.checkCount++;
    if (!ok) throw new Error(`check failed: ${what}`);
  }

  /** @returns the figures of the run; the first call fixes them (wall time ends there) */
  figures(): WorkloadFigures {
    if (this.finished !== null) return this.finished;
    this.tick();
    const d = diffMachineCounters(this.machine.counters(), this.start);
    const lookups = d.iotlbHits + d.iotlbMisses;
    const atcLookups = d.atcHits + d.atcMisses;
    this.finished = {
      dmaRequests: d.dmaRequests,
      bytes: d.bytesRead + d.bytesWritten,
      bytesRead: d.bytesRead,
      bytesWritten: d.bytesWritten,
      iotlbHits: d.iotlbHits,
      iotlbMisses: d.iotlbMisses,
      iotlbHitRate: lookups === 0 ? null : d.iotlbHits / lookups,
      pageWalks: d.pageWalks,
      dmaFaults: d.dmaFaults,
      hwFaults: d.hwFaults,
      pageRequests: d.pageRequests,
      pageResponses: d.pageResponses,
      stalls: d.stalls,
      invalidations: d.invalidations,
      atsRequests: d.atsRequests,
      atcInvalidations: d.atcInvalidations,
      atcHits: d.atcHits,
      atcMisses: d.atcMisses,
      atcHitRate: atcLookups === 0 ? null : d.atcHits / atcLookups,
      peakPinnedPages: this.peakPinned,
      bytesVerified: this.verifiedBytes,
      checks: this.checkCount,
      wallMs: performance.now() - this.t0,
      virtualNs: this.machine.scheduler.now - this.ns0,
    };
    return this.finished;
  }

  /** @returns the timeline so far */
  timeline(): readonly TimelineEntry[] {
    return this.timelineEntries;
  }

  /** @returns the I/O address spaces, in the order declared */
  spaces(): IovaSpace[] {
    return [...this.spaceMap.values()].map((s) => ({
      name: s.name,
      kind: s.kind,
      devices: [...s.devices],
      ranges: s.ranges.map((r): IovaRange => ({ ...r })),
    }));
  }
}
