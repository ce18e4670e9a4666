// dma-api on both default platforms: every I/O verified in both directions, one invalidation per
// unmap on the strict default domain (batched on a DMA-FQ domain), DMA after unmap faults; a
// corrupting device is caught; supports() reasons.

import type { Endpoint } from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import type { SimEndpoint, SimMachine } from '../machine/machine.js';
import { DataMismatchError } from '../metrics/recorder.js';
import { defaultArmPlatform } from '../platform/default-arm.js';
import { defaultX86Platform } from '../platform/default-x86.js';
import { dmaApi } from './dma-api.js';
import { Rng } from './rng.js';
import { type WorkloadParam, withDefaults } from './workload.js';
import { machineBuilder, runWorkload, withEndpointOverride } from './workload.test-helpers.js';

const build = machineBuilder();

const runOn = (machine: SimMachine, given: Record<string, WorkloadParam> = {}, seed = 7) =>
  runWorkload(dmaApi, machine, given, seed);

/** Sizes of the write I/Os the workload draws (per write: size, data, then the map_sg coin). */
function writeSizes(seed: number, ios: number): number[] {
  const r = new Rng(seed);
  const out: number[] = [];
  for (let i = 0; i < ios; i += 2) {
    const bytes = 512 * (1 + r.int(256));
    r.bytes(bytes);
    if (bytes > 16384) r.int(2);
    if (i + 1 < ios && bytes > 16384) r.int(2); // the read back of the same size
    out.push(bytes);
  }
  return out;
}

/** Resubmissions after unmap the workload makes: I/O 2, every 128th after it, and the last. */
function staleChecks(ios: number): number {
  let n = 0;
  for (let i = 0; i < ios; i++) if (i === 1 || i === ios - 1 || i % 128 === 1) n++;
  return n;
}

const ep = (m: SimMachine, name: string) => m.endpoints.find((e) => e.name === name) as SimEndpoint;

/** The machine with `name`'s device flipping the first byte of every data write (not the 16-byte completions). */
function withCorruptingDevice(m: SimMachine, name: string): SimMachine {
  return withEndpointOverride(m, name, (real) => ({
    writeSync: (addr: bigint, data: Uint8Array, o?: Parameters<Endpoint['writeSync']>[2]) => {
      const d = data.slice();
      if (d.length !== 16) d[0] = (d[0] as number) ^ 0x5a;
      real.writeSync(addr, d, o);
    },
  }));
}

const platforms = [
  // Name, platform, per-unmap invalidation, its sync, the flush queue's whole-domain flush.
  ['x86 (VT-d)', defaultX86Platform, 'pasid-iotlb', 'wait', 'pasid-iotlb'],
  ['arm (SMMUv3)', defaultArmPlatform, 'TLBI_NH_VA', 'CMD_SYNC', 'TLBI_NH_ASID'],
] as const;

describe.each(platforms)('dma-api on %s', (_name, platform, tlbi, sync, flushAll) => {
  it('streams 512 I/Os on nvme0: every byte verified both ways, one invalidation per unmap, DMA after unmap faults', () => {
    const m = build(platform);
    const nvme = ep(m, 'nvme0');
    const rec = runOn(m);
    const f = rec.figures();
    const sizes = writeSizes(7, 512);
    const written = sizes.reduce((a, b) => a + b, 0);
    // Each write verified at the device and again when read back into a fresh kernel buffer.
    expect(f.bytesVerified).toBe(2 * written);
    expect(f.bytesRead).toBeGreaterThanOrEqual(written);
    expect(f.bytesWritten).toBeGreaterThanOrEqual(written);
    const stale = staleChecks(512);
    expect(stale).toBe(5);
    // One completion check and one data check per I/O, the resubmissions, and two totals.
    expect(f.checks).toBe(512 * 2 + stale + 2);
    // The resubmitted commands fault on their first data DMA; nothing else faults.
    expect(f.dmaFaults).toEqual({ translation: stale });
    expect(sum(f.hwFaults)).toBe(stale);
    expect(f.pageRequests).toBe(0);
    // Strict default domain: one IOTLB invalidation per streaming unmap and per coherent free.
    expect(f.invalidations[tlbi]).toBe(512 + 3);
    expect(f.invalidations[sync]).toBe(512 + 3);
    expect(nvme.endpoint.stats.failed).toBe(stale);

    const tl = rec.timeline();
    expect(tl[0]?.label).toBe('allocate coherent queues for nvme0 (strict domain)');
    const batches = tl.filter((e) => e.label.startsWith('I/Os '));
    expect(batches).toHaveLength(16);
    for (const e of batches) expect(e.invalidations[tlbi]).toBe(32);
    expect(tl.at(-1)?.label).toBe('free coherent queues');

    const [space] = rec.spaces();
    expect(space?.name).toBe('dma domain nvme0');
    expect(space?.kind).toBe('dma-domain');
    expect(space?.devices).toEqual(['nvme0']);
    expect(space?.ranges.every((r) => r.unmappedAt !== null)).toBe(true);
    // Nothing stays mapped: the domain's page table translates none of the I/O addresses.
    const domain = m.iommu.iommuGetDomainForDev(nvme.device);
    if (domain === null) throw new Error('no domain');
    for (const r of space?.ranges ?? []) expect(m.iommu.iommuIovaToPhys(domain, r.iova)).toBe(0n);
  });

  it('on a DMA-FQ domain the unmaps are flushed in batches by the flush queue', () => {
    const m = build(platform);
    const nvme = ep(m, 'nvme0');
    const group = nvme.device.iommuGroup;
    if (group === null) throw new Error('no group');
    m.iommu.iommuGroupStoreType(group, 'DMA-FQ', { sysAdmin: true, sysRawio: true });
    const rec = runOn(m, { ios: 64 });
    const f = rec.figures();
    expect(f.bytesVerified).toBe(2 * writeSizes(7, 64).reduce((a, b) => a + b, 0));
    expect(f.dmaFaults).toEqual({ translation: staleChecks(64) });
    // No per-unmap invalidation: one flush of the whole domain per flush-queue timeout (the two
    // resubmission checks wait for it), and one for the coherent frees; each with its sync.
    expect(f.invalidations).toEqual({ [flushAll]: 3, [sync]: 3 });
    expect(rec.timeline()[0]?.label).toBe('allocate coherent queues for nvme0 (flush queue domain)');
    expect(f.virtualNs).toBe(30_000_000);
  });

  it('a device corrupting the data it writes makes run() throw DataMismatchError', () => {
    const m = withCorruptingDevice(build(platform), 'nvme0');
    expect(() => runOn(m, { ios: 2 })).toThrow(DataMismatchError);
  });

  it('supports() names a missing device and an untranslated domain', () => {
    const m = build(platform);
    expect(dmaApi.supports(m, withDefaults(dmaApi, { device: 'sata0' }))).toBe(
      'the platform has no device named sata0',
    );
    expect(dmaApi.supports(m, withDefaults(dmaApi, { device: 'nic1' }))).toBeNull();
    const group = ep(m, 'nvme0').device.iommuGroup;
    if (group === null) throw new Error('no group');
    m.iommu.iommuGroupStoreType(group, 'identity', { sysAdmin: true, sysRawio: true });
    expect(dmaApi.supports(m, withDefaults(dmaApi))).toBe('device nvme0 is not on a translated DMA domain');
  });
});

const sum = (t: Readonly<Record<string, number>>) => Object.values(t).reduce((a, b) => a + b, 0);
