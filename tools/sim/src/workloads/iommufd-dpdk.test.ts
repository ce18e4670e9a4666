// iommufd-dpdk on both default platforms: two NICs on one IOAS, every TX and RX frame verified, no
// fault, nothing pinned at the end; a corrupted DMA read is caught; supports() reasons.

import { describe, expect, it } from 'vitest';
import { DataMismatchError, Recorder } from '../metrics/recorder.js';
import { defaultArmPlatform } from '../platform/default-arm.js';
import { iommufdDpdk } from './iommufd-dpdk.js';
import { Rng } from './rng.js';
import { type WorkloadParam, withDefaults } from './workload.js';
import { DEFAULT_PLATFORMS, machineBuilder } from './workload.test-helpers.js';

const platforms = DEFAULT_PLATFORMS;

const build = machineBuilder();

/** Frame sizes in the order the workload draws them: per burst, `burst` TX frames then `burst` RX frames. */
function frameSizes(seed: number, bursts: number, burst: number): { tx: number; rx: number } {
  const r = new Rng(seed);
  const draw = () => {
    const len = 64 + r.int(1514 - 64 + 1);
    r.bytes(len);
    return len;
  };
  let tx = 0;
  let rx = 0;
  for (let b = 0; b < bursts; b++) {
    for (let i = 0; i < burst; i++) tx += draw();
    for (let i = 0; i < burst; i++) rx += draw();
  }
  return { tx, rx };
}

const sum = (t: Readonly<Record<string, number>>) => Object.values(t).reduce((a, b) => a + b, 0);

describe.each(platforms)('iommufd-dpdk on %s', (_name, platform) => {
  it('TX on nic0 and RX on nic1 through one IOAS: every frame verified, no fault, pins back to 0', () => {
    const machine = build(platform);
    const rec = new Recorder(machine);
    const params = withDefaults(iommufdDpdk, { bursts: 6, burst: 16 });
    expect(iommufdDpdk.supports(machine, params)).toBeNull();
    iommufdDpdk.run({ machine, rng: new Rng(5), rec, params });
    const f = rec.figures();
    const { tx, rx } = frameSizes(5, 6, 16);
    const frames = 6 * 16;
    expect(f.bytesVerified).toBe(tx + rx);
    // NIC A reads descriptors and frames and writes TX status back; NIC B reads descriptors and
    // writes frames and RX status back.
    expect(f.bytesRead).toBe(tx + 16 * frames * 2);
    expect(f.bytesWritten).toBe(rx + 16 * frames * 2);
    expect(sum(f.dmaFaults)).toBe(0);
    expect(sum(f.hwFaults)).toBe(0);
    // 4 MiB of huge pages, pinned as 1024 small pages while mapped.
    expect(f.peakPinnedPages).toBe(1024);
    const tl = rec.timeline();
    expect(tl.map((t) => t.label)).toEqual([
      'setup (hugetlb)',
      'burst 1',
      'burst 2',
      'burst 3',
      'burst 4',
      'burst 5',
      'burst 6',
      'teardown',
    ]);
    expect(tl.at(-1)?.pinnedPages).toBe(0);
    expect(machine.memory.stats().pinnedPages).toBe(0);
    const [space] = rec.spaces();
    expect(space?.name).toMatch(/^ioas \d+$/);
    expect(space?.devices).toEqual(['nic0', 'nic1']);
    expect(space?.ranges.map((r) => [r.length, r.mappedAt, r.unmappedAt])).toEqual([
      [4n * 1024n * 1024n, 0, 7],
    ]);
    expect((space?.ranges[0]?.iova ?? 1n) % (2n * 1024n * 1024n)).toBe(0n);
  });

  it('a corrupted DMA read (TX) makes run() throw DataMismatchError', () => {
    const machine = build(platform);
    const ep = machine.endpoints.find((e) => e.name === 'nic0');
    if (ep === undefined) throw new Error('no nic0');
    const real = ep.endpoint.readSync.bind(ep.endpoint);
    let n = 0;
    ep.endpoint.readSync = (addr, size, opts) => {
      const data = real(addr, size, opts);
      if (size > 16 && ++n === 20) data[size - 1] = (data[size - 1] as number) ^ 1;
      return data;
    };
    const params = withDefaults(iommufdDpdk, { bursts: 2, burst: 16 });
    let err: unknown;
    try {
      iommufdDpdk.run({ machine, rng: new Rng(5), rec: new Recorder(machine), params });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DataMismatchError);
    expect((err as DataMismatchError).what).toBe('tx burst 2 frame 3');
  });

  it('supports(): reasons', () => {
    const machine = build(platform);
    const p = (o: Record<string, WorkloadParam>) => withDefaults(iommufdDpdk, o);
    expect(iommufdDpdk.supports(machine, p({}))).toBeNull();
    expect(iommufdDpdk.supports(machine, p({ devices: 'nic0,nvme0' }))).toBeNull();
    expect(iommufdDpdk.supports(machine, p({ devices: 'nic,nic,nic' }))).toBe(
      'devices must name two devices (TX,RX), got "nic,nic,nic"',
    );
    expect(iommufdDpdk.supports(machine, p({ devices: 'nic0,nic0' }))).toBe('device nic0 is named twice');
    expect(iommufdDpdk.supports(machine, p({ devices: 'nic,nvme' }))).toBeNull();
    // A second nvme falls back to a PCI function the firmware lists: the USB controller of the
    // default x86 table's RMRR; the Arm table lists no PCI function. A second accelerator has no
    // such fallback.
    expect(iommufdDpdk.supports(machine, p({ devices: 'nvme,nvme' }))).toBe(
      machine.kind === 'vtd' ? null : 'the platform has no further nvme device with what the flow needs',
    );
    expect(iommufdDpdk.supports(machine, p({ devices: 'accel,accel' }))).toBe(
      'the platform has no further accel device with what the flow needs',
    );
    expect(iommufdDpdk.supports(machine, p({ memMiB: 3 }))).toBe('memMiB must be a multiple of 2');
  });
});

describe('iommufd-dpdk: platform-specific device checks', () => {
  it('a platform device cannot be bound (stall0 on the Arm default)', () => {
    const arm = build(defaultArmPlatform);
    const params = withDefaults(iommufdDpdk, { devices: 'nic0,stall0' });
    expect(iommufdDpdk.supports(arm, params)).toBe('device stall0 lacks a PCI function');
    expect(() => iommufdDpdk.run({ machine: arm, rng: new Rng(1), rec: new Recorder(arm), params })).toThrow(
      'iommufd-dpdk: device stall0 lacks a PCI function',
    );
  });
});
