// vfio-passthrough on both default platforms: every frame verified in guest memory, faults only in
// the balloon step, nothing pinned at the end; a corrupted DMA is caught; supports() reasons.

import { describe, expect, it } from 'vitest';
import type { SimMachine } from '../machine/machine.js';
import { DataMismatchError, Recorder } from '../metrics/recorder.js';
import { defaultArmPlatform } from '../platform/default-arm.js';
import { defaultX86Platform } from '../platform/default-x86.js';
import { Rng } from './rng.js';
import { vfioPassthrough } from './vfio-passthrough.js';
import { type WorkloadParam, withDefaults } from './workload.js';
import { DEFAULT_PLATFORMS, machineBuilder } from './workload.test-helpers.js';

const platforms = DEFAULT_PLATFORMS;

const build = machineBuilder();

/** Frame sizes the workload draws from a generator seeded like the run's (int, then bytes). */
function frameSizes(seed: number, n: number): number[] {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => {
    const len = 64 + r.int(1514 - 64 + 1);
    r.bytes(len);
    return len;
  });
}

function runOn(machine: SimMachine, given: Record<string, WorkloadParam> = {}, seed = 7) {
  const rec = new Recorder(machine);
  const params = withDefaults(vfioPassthrough, given);
  expect(vfioPassthrough.supports(machine, params)).toBeNull();
  vfioPassthrough.run({ machine, rng: new Rng(seed), rec, params });
  return rec;
}

const sum = (t: Readonly<Record<string, number>>) => Object.values(t).reduce((a, b) => a + b, 0);

describe.each(platforms)('vfio-passthrough on %s', (_name, platform) => {
  it('receives every frame into guest RAM, balloon faults, shutdown returns every pin', () => {
    const machine = build(platform);
    const rec = runOn(machine, { packets: 96, burst: 32 });
    const f = rec.figures();
    const sizes = frameSizes(7, 96);
    const frameBytes = sizes.reduce((a, b) => a + b, 0);
    // Every frame and the untouched 256 KiB balloon block were compared byte for byte.
    expect(f.bytesVerified).toBe(frameBytes + 256 * 1024);
    // Device writes: the frames and one 16-byte descriptor write-back each.
    expect(f.bytesWritten).toBe(frameBytes + 16 * 96);
    // Device reads: 96 descriptor fetches + the stale descriptor of the balloon step.
    expect(f.bytesRead).toBe(16 * 97);
    expect(sum(f.dmaFaults)).toBe(2);
    const tl = rec.timeline();
    expect(tl.map((t) => t.label)).toEqual([
      'map guest RAM',
      'rx burst 1',
      'rx burst 2',
      'rx burst 3',
      'balloon',
      'shutdown',
    ]);
    for (const t of tl) expect([t.label, sum(t.faults) > 0]).toEqual([t.label, t.label === 'balloon']);
    // Pins: 160 low pages + 768 high pages while mapped, none at the end.
    expect(f.peakPinnedPages).toBe(160 + 768);
    expect(tl[0]?.pinnedPages).toBe(928);
    expect(tl[4]?.pinnedPages).toBe(928 - 64);
    expect(tl[5]?.pinnedPages).toBe(0);
    expect(machine.memory.stats().pinnedPages).toBe(0);
    const [space] = rec.spaces();
    expect(space?.name).toBe('container');
    expect(space?.kind).toBe('container');
    expect(space?.devices).toEqual(['nic0']);
    expect(space?.ranges.map((r) => [r.iova, r.length, r.mappedAt, r.unmappedAt])).toEqual([
      [0n, 640n * 1024n, 0, 5],
      [0x10_0000n, 3n * 1024n * 1024n - 256n * 1024n, 0, 5],
      [0x40_0000n - 256n * 1024n, 256n * 1024n, 0, 4],
    ]);
  });

  it('a corrupted DMA write makes run() throw DataMismatchError', () => {
    const machine = build(platform);
    const ep = machine.endpoints.find((e) => e.name === 'nic0');
    if (ep === undefined) throw new Error('no nic0');
    const real = ep.endpoint.writeSync.bind(ep.endpoint);
    let n = 0;
    ep.endpoint.writeSync = (addr, data, opts) => {
      // The 40th frame gets one bit flipped on its way to memory (descriptors are 16 bytes).
      if (data.length > 16 && ++n === 40) {
        const bad = data.slice();
        bad[10] = (bad[10] as number) ^ 0x20;
        return real(addr, bad, opts);
      }
      return real(addr, data, opts);
    };
    const rec = new Recorder(machine);
    const params = withDefaults(vfioPassthrough, { packets: 64 });
    let err: unknown;
    try {
      vfioPassthrough.run({ machine, rng: new Rng(3), rec, params });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DataMismatchError);
    expect((err as DataMismatchError).what).toBe('rx packet 39');
    expect((err as DataMismatchError).offset).toBe(10);
  });

  it('supports(): reasons for a missing or unfit device and an impossible layout', () => {
    const machine = build(platform);
    const p = (o: Record<string, WorkloadParam>) => withDefaults(vfioPassthrough, o);
    expect(vfioPassthrough.supports(machine, p({}))).toBeNull();
    expect(vfioPassthrough.supports(machine, p({ device: 'nic1' }))).toBeNull();
    expect(vfioPassthrough.supports(machine, p({ device: 'nosuch9' }))).toBe(
      'the platform has no device named nosuch9',
    );
    expect(vfioPassthrough.supports(machine, p({ guestRamMiB: 1, balloonKiB: 768 }))).toBe(
      'guestRamMiB 1 leaves no room for 512 KiB of RX buffers and a 768 KiB balloon',
    );
    expect(vfioPassthrough.supports(machine, p({ balloonKiB: 6 }))).toBe(
      'balloonKiB must be a multiple of 4 (a page), got 6',
    );
  });
});

describe('vfio-passthrough: platform-specific device checks', () => {
  it('a platform device cannot be assigned (stall0 on the Arm default); x86 has no stall-accel', () => {
    const arm = build(defaultArmPlatform);
    expect(vfioPassthrough.supports(arm, withDefaults(vfioPassthrough, { device: 'stall0' }))).toBe(
      'device stall0 lacks a PCI function',
    );
    const x86 = build(defaultX86Platform);
    expect(vfioPassthrough.supports(x86, withDefaults(vfioPassthrough, { device: 'stall-accel' }))).toBe(
      'the platform has no stall-accel device',
    );
  });

  it('run() refuses an unsupported device with the same one-line reason', () => {
    const x86 = build(defaultX86Platform);
    const params = withDefaults(vfioPassthrough, { device: 'stall-accel' });
    expect(() =>
      vfioPassthrough.run({ machine: x86, rng: new Rng(1), rec: new Recorder(x86), params }),
    ).toThrow('vfio-passthrough: the platform has no stall-accel device');
  });
});
