// sva-accelerator on both default platforms: every job verified, faults resolved by PRI (accel0)
// and stalls (stall0 on the Arm platform), frees invalidate, the exit path faults the PASID and
// releases it; a corrupted destination is caught; supports() reasons.

import type { Endpoint } from '@iommu-ts/iommu-core';
import { iommuSvaFind } from '@iommu-ts/iommu-sva';
import { describe, expect, it } from 'vitest';
import type { SimEndpoint, SimMachine } from '../machine/machine.js';
import { DataMismatchError } from '../metrics/recorder.js';
import { defaultArmPlatform } from '../platform/default-arm.js';
import { defaultX86Platform } from '../platform/default-x86.js';
import { Rng } from './rng.js';
import { svaAccelerator } from './sva-accelerator.js';
import { type WorkloadParam, withDefaults } from './workload.js';
import { machineBuilder, runWorkload, withEndpointOverride } from './workload.test-helpers.js';

const build = machineBuilder();

const runOn = (machine: SimMachine, given: Record<string, WorkloadParam> = {}, seed = 7) =>
  runWorkload(svaAccelerator, machine, given, seed);

/** Sum of the job lengths the workload draws (per job: length, two offsets, data, key). */
function jobBytes(seed: number, jobs: number, maxBytes: number): number {
  const r = new Rng(seed);
  let sum = 0;
  for (let i = 0; i < jobs; i++) {
    const len = 1 + r.int(maxBytes);
    r.int(512);
    r.int(512);
    r.bytes(len);
    r.bytes(16);
    sum += len;
  }
  return sum;
}

const ep = (m: SimMachine, name: string) => m.endpoints.find((e) => e.name === name) as SimEndpoint;

/**
 * The machine with `name`'s endpoint replaced by one whose DMA writes of other than 16 bytes (the
 * completion records) have their first byte flipped: a device producing a wrong result.
 */
function withCorruptingDevice(m: SimMachine, name: string): SimMachine {
  return withEndpointOverride(m, name, (real) => ({
    dmaWrite: (addr: bigint, data: Uint8Array, o?: Parameters<Endpoint['dmaWrite']>[2]) => {
      const d = data.slice();
      if (d.length !== 16) d[0] = (d[0] as number) ^ 0xff;
      return real.dmaWrite(addr, d, o);
    },
  }));
}

describe('sva-accelerator on x86 (VT-d, PRI)', () => {
  it('runs 64 jobs on accel0: PRI page requests, PASID-IOTLB/device-TLB invalidations, exit, PASID freed', () => {
    const m = build(defaultX86Platform);
    const accel = ep(m, 'accel0');
    const rec = runOn(m);
    const f = rec.figures();
    // 64 jobs, batches of 8, one device.
    expect(f.bytesVerified).toBe(jobBytes(7, 64, 16384));
    // Per device: 3 checks a job, 3 a batch, 1 for PRI; then bind, exit (4), after-exit, release (2 + 1).
    expect(f.checks).toBe(3 * 64 + 3 * 8 + 1 + 1 + 4 + 1 + 3);
    // DMA operations: 4 per job (descriptor, source, destination, completion), 4 per freed-buffer
    // probe, 4 per job in flight at exit, 1 after exit.
    expect(f.dmaRequests).toBe(4 * 64 + 4 * 8 + 4 * 8 + 1);
    expect(accel.endpoint.stats.pageRequests).toBeGreaterThan(0);
    expect(f.pageRequests).toBeGreaterThan(0);
    expect(f.stalls).toBe(0);
    // Refused page requests: one per freed-buffer probe, one per job in flight at exit.
    expect(f.dmaFaults['pri-invalid']).toBe(8 + 8);

    const tl = rec.timeline();
    expect(tl[0]?.label).toBe('bind accel0 to the process (PASID 1)');
    const frees = tl.filter((e) => e.label.startsWith('accel0: free the buffers'));
    expect(frees).toHaveLength(8);
    // Two munmaps per job, each one PASID-based IOTLB and one device-TLB (ATS) invalidation.
    for (const e of frees)
      expect(e.invalidations).toMatchObject({ 'pasid-iotlb': 16, 'pasid-device-tlb': 16 });
    const probes = tl.filter((e) => e.label.startsWith('accel0: DMA to a freed buffer faults (pri-invalid)'));
    expect(probes).toHaveLength(8);
    const exit = tl.find((e) => e.label.startsWith('process exits with 8 jobs in flight'));
    expect(exit?.faults['pri-invalid']).toBe(8);
    expect(tl.at(-1)?.label).toBe('unbind, disable SVA and IOPF, PASID released');

    // The PASID went back to the allocator and no mm answers to it.
    expect(iommuSvaFind(1, m.iommu)).toBeNull();
    const again = m.iommu.iommuAllocGlobalPasid(accel.device);
    expect(again).toBe(1);
    m.iommu.iommuFreeGlobalPasid(again);

    const [space] = rec.spaces();
    expect(space?.name).toBe('sva pasid 1');
    expect(space?.kind).toBe('sva');
    expect(space?.devices).toEqual(['accel0']);
    // Ring + 2 buffers per job (64 + 8 in flight); every range ends, at the latest with the exit.
    expect(space?.ranges).toHaveLength(1 + 2 * 72);
    expect(space?.ranges.every((r) => r.unmappedAt !== null)).toBe(true);
  });

  it('a device producing a wrong result makes run() throw DataMismatchError', () => {
    const m = withCorruptingDevice(build(defaultX86Platform), 'accel0');
    expect(() => runOn(m, { jobs: 2, batch: 2 })).toThrow(DataMismatchError);
  });

  it('the stall device of an Arm platform is skipped silently on x86', () => {
    const m = build(defaultX86Platform);
    const rec = runOn(m, { jobs: 4, batch: 2 });
    expect(rec.spaces()[0]?.devices).toEqual(['accel0']);
  });
});

describe('sva-accelerator on Arm (SMMUv3, PRI and stall)', () => {
  it('runs 64 jobs on accel0 (PRI) and on stall0 (stall): faults resolved, TLBI + ATC_INV, exit, PASID freed', () => {
    const m = build(defaultArmPlatform);
    const accel = ep(m, 'accel0');
    const stall = ep(m, 'stall0');
    const rec = runOn(m);
    const f = rec.figures();
    expect(f.bytesVerified).toBe(jobBytes(7, 128, 16384));
    expect(f.checks).toBe(2 * (3 * 64 + 3 * 8 + 1) + 2 + 4 + 2 + 2 + 2);
    expect(f.dmaRequests).toBe(2 * (4 * 64 + 4 * 8) + 4 * 16 + 2);
    expect(accel.endpoint.stats.pageRequests).toBeGreaterThan(0);
    expect(accel.endpoint.stats.stalls).toBe(0);
    expect(stall.endpoint.stats.stalls).toBeGreaterThan(0);
    expect(stall.endpoint.stats.pageRequests).toBe(0);
    // The unit counts stalled transactions (one per page), the endpoint its stalled operations.
    expect(f.stalls).toBeGreaterThanOrEqual(stall.endpoint.stats.stalls);
    // Every stalled operation was resumed or terminated by the OS; fault responses are not
    // counted as invalidations.
    const st = stall.endpoint.stats;
    expect(st.stallsResumed + st.stallsTerminated).toBe(st.stalls);
    expect(f.invalidations['RESUME']).toBeUndefined();
    // 8 freed-buffer probes + 8 jobs in flight at exit, refused; after the exit the dead CD
    // translates nothing, so accel0's writes of a job that was in flight and its post-exit probe
    // page-fault too (2 more refused), and the stall device's accesses fault without stalling
    // (the dead CD clears S): never a `bus` fault, which would mean stage 1 was bypassed.
    expect(f.dmaFaults).toEqual({ 'pri-invalid': 8 + 8 + 2, terminated: 8 + 8, translation: 9 });

    const tl = rec.timeline();
    expect(tl[0]?.label).toBe('bind accel0, stall0 to the process (PASID 1)');
    for (const dev of ['accel0', 'stall0']) {
      const frees = tl.filter((e) => e.label.startsWith(`${dev}: free the buffers`));
      expect(frees).toHaveLength(8);
      // One SVA domain for both devices: each munmap is a TLBI_NH_VA, plus an ATC_INV for the ATS
      // master accel0, each followed by a CMD_SYNC.
      for (const e of frees) expect(e.invalidations).toEqual({ TLBI_NH_VA: 16, ATC_INV: 16, CMD_SYNC: 32 });
    }
    expect(tl.filter((e) => e.label === 'stall0: DMA to a freed buffer faults (terminated)')).toHaveLength(8);
    expect(tl.find((e) => e.label.startsWith('process exits with 16 jobs in flight'))).toBeDefined();

    expect(iommuSvaFind(1, m.iommu)).toBeNull();
    const again = m.iommu.iommuAllocGlobalPasid(accel.device);
    expect(again).toBe(1);
    m.iommu.iommuFreeGlobalPasid(again);
    expect(rec.spaces()[0]?.devices).toEqual(['accel0', 'stall0']);
  });

  it('a wrong result from the stall device is caught too', () => {
    const m = withCorruptingDevice(build(defaultArmPlatform), 'stall0');
    expect(() => runOn(m, { jobs: 2, batch: 2 })).toThrow(DataMismatchError);
  });

  it('an absent stall device is skipped silently', () => {
    const m = build(defaultArmPlatform);
    const rec = runOn(m, { jobs: 2, batch: 2, stallDevice: 'stall9' });
    expect(rec.spaces()[0]?.devices).toEqual(['accel0']);
    expect(rec.figures().stalls).toBe(0);
  });
});

describe('sva-accelerator supports()', () => {
  it('names what the device lacks', () => {
    const m = build(defaultX86Platform);
    const p = (device: string) => withDefaults(svaAccelerator, { device });
    expect(svaAccelerator.supports(m, p('nvme0'))).toBe('device nvme0 lacks PASID');
    expect(svaAccelerator.supports(m, p('nic'))).toBe('no nic device of the platform has PASID');
    expect(svaAccelerator.supports(m, p('gpu0'))).toBe('the platform has no device named gpu0');
    expect(svaAccelerator.supports(m, p('stall-accel'))).toBe('the platform has no stall-accel device');
    expect(svaAccelerator.supports(m, p('accel0'))).toBeNull();
  });
});
