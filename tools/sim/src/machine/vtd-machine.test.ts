// The VT-d machine builder on the five committed DMAR fixtures (counts checked against counts this
// test reads from the iasl disassembly text), on the built-in x86 platform (units, standard
// devices, DMA through the DMA API, SVA with PRI, faults counted) and with a unit that cannot come up.

import { readdirSync, readFileSync } from 'node:fs';
import { DmarScopeType, parseDmar } from '@iommu-ts/intel-vtd';
import { DmaDataDirection, DmaFaultError, iommuDmaMapPage, type PciDevice } from '@iommu-ts/iommu-core';
import { iommuSvaBindDevice, iommuSvaGetPasid, iommuSvaUnbindDevice } from '@iommu-ts/iommu-sva';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@iommu-ts/mm';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultX86Platform } from '../platform/default-x86.js';
import { writeDmar } from '../platform/dmar-writer.js';
import type { DmarPlatform } from '../platform/platform.js';
import type { SimMachine } from './machine.js';
import { buildVtdMachine, VTD_RAM_BASE } from './vtd-machine.js';

const dir = new URL('../../../../packages/intel-vtd/src/firmware/fixtures/', import.meta.url);
const live: SimMachine[] = [];
afterEach(() => {
  for (const m of live.splice(0)) m.dispose();
});
const build = (p: DmarPlatform): SimMachine => {
  const m = buildVtdMachine(p, { seed: 7 });
  live.push(m);
  return m;
};
const platformOf = (name: string, bytes: Uint8Array): DmarPlatform => ({
  kind: 'vtd',
  name,
  source: { format: 'dmar', form: 'binary', file: name, oem: null, revision: null },
  dmar: parseDmar(bytes),
  bytes,
});

/** Counts read from the disassembly text, independently of the parser. */
function dslCounts(text: string) {
  const lines = text.split('\n');
  const count = (re: RegExp) => lines.filter((l) => re.test(l)).length;
  return {
    units: count(/Subtable Type : 0000 \[Hardware Unit Definition\]/),
    scopes: count(/Device Scope Type :/),
    reservedRegions: count(/Subtable Type : 0001 \[Reserved Memory Region\]/),
    atsr: count(/\[Root Port ATS Capability\]/),
    rhsa: count(/\[Remapping Hardware Static Affinity\]/),
    andd: count(/\[ACPI Namespace Device Declaration\]/),
  };
}

const fixtures = readdirSync(dir)
  .filter((f) => f.endsWith('.bin'))
  .sort();

describe('DMAR fixtures', () => {
  it('there are five', () => {
    expect(fixtures).toEqual([
      'asrock-h310cm-hdv-dmar.bin',
      'asrock-x99-extreme4-dmar.bin',
      'qemu-q35-dmar.bin',
      'surface-book-2-dmar.bin',
      'surface-laptop-studio-dmar.bin',
    ]);
  });

  for (const f of fixtures) {
    it(`${f}: counts match the disassembly; every unit runs; one scope line per DRHD scope`, () => {
      const dsl = readFileSync(new URL(f.replace(/\.bin$/, '.dsl'), dir), 'utf8');
      const want = dslCounts(dsl);
      const m = build(platformOf(f, new Uint8Array(readFileSync(new URL(f, dir)))));
      expect(m.topology.counts).toMatchObject(want);
      expect(m.units).toHaveLength(want.units);
      expect(m.units.map((u) => u.error)).toEqual(m.units.map(() => null));
      // DRHD scope lines: every scope of the DRHD sections (ATSR/RMRR scopes counted apart).
      const drhdScopes = dsl
        .split(/Subtable Type : /)
        .filter((s) => s.startsWith('0000'))
        .reduce((n, s) => n + (s.match(/Device Scope Type :/g)?.length ?? 0), 0);
      expect(m.topology.units.reduce((n, u) => n + u.scopes.length, 0)).toBe(drhdScopes);
      expect(m.topology.reserved).toHaveLength(want.reservedRegions);
      expect(m.topology.devices.map((d) => d.name)).toEqual(m.endpoints.map((e) => e.name));
    });
  }

  it('ASRock X99: the ATSR root ports carry nic0 and accel0 (ATS), nic1 sits on a port without ATS', () => {
    const f = 'asrock-x99-extreme4-dmar.bin';
    const m = build(platformOf(f, new Uint8Array(readFileSync(new URL(f, dir)))));
    const caps = Object.fromEntries(m.endpoints.map((e) => [e.name, [e.unit, e.ats, e.pasid, e.pri]]));
    expect(caps).toEqual({
      nic0: ['dmar1', true, false, false],
      nic1: ['dmar1', false, false, false],
      nvme0: ['dmar1', false, false, false],
      accel0: ['dmar1', true, true, true],
      '00:1b.0': ['dmar0', false, false, false],
    });
    const nic0 = m.endpoints.find((e) => e.name === 'nic0')?.device as PciDevice;
    expect(nic0.bus.self?.name).toBe('0000:00:01.0');
  });

  it('QEMU q35 (no INCLUDE_PCI_ALL): only the scoped functions, standard devices left out with a note', () => {
    const f = 'qemu-q35-dmar.bin';
    const m = build(platformOf(f, new Uint8Array(readFileSync(new URL(f, dir)))));
    expect(m.endpoints.map((e) => [e.name, e.ids[0], e.fromFirmware])).toEqual([
      ['00:00.0', 0x00, true],
      ['00:01.0', 0x08, true],
      ['00:1f.0', 0xf8, true],
      ['00:1f.2', 0xfa, true],
      ['00:1f.3', 0xfb, true],
    ]);
    expect(m.topology.notes.some((n) => n.includes('no INCLUDE_PCI_ALL unit'))).toBe(true);
  });

  it('Surface Book 2: ANDD name-space devices are platform endpoints with the scope source-id', () => {
    const f = 'surface-book-2-dmar.bin';
    const m = build(platformOf(f, new Uint8Array(readFileSync(new URL(f, dir)))));
    const nd = m.endpoints.filter((e) => e.device.busType === 'platform');
    expect(nd.map((e) => [e.name, e.unit, e.ids[0]])).toEqual([
      ['\\_SB.PCI0.I2C0', 'dmar1', 0xa8],
      ['\\_SB.PCI0.I2C1', 'dmar1', 0xa9],
      ['\\_SB.PCI0.I2C2', 'dmar1', 0xaa],
      ['\\_SB.PCI0.I2C3', 'dmar1', 0xab],
      ['\\_SB.PCI0.UA00', 'dmar1', 0xf0],
    ]);
    // Graphics is named by dmar0's scope and by the second RMRR; its RMRR is identity-mapped.
    const gfx = m.endpoints.find((e) => e.name === '00:02.0');
    expect(gfx?.unit).toBe('dmar0');
    const dom = gfx === undefined ? null : m.iommu.iommuGetDomainForDev(gfx.device);
    expect(dom === null ? -1n : m.iommu.iommuIovaToPhys(dom, 0x8d00_1000n)).toBe(0x8d00_1000n);
  });

  it('Surface Laptop Studio: a function behind each Thunderbolt root port, translated by that port’s unit', () => {
    const f = 'surface-laptop-studio-dmar.bin';
    const m = build(platformOf(f, new Uint8Array(readFileSync(new URL(f, dir)))));
    const behind = m.endpoints.filter((e) => e.fromFirmware && e.label.includes('bridge'));
    expect(behind.map((e) => [e.name, e.unit])).toEqual([
      ['01:00.0', 'dmar1'],
      ['02:00.0', 'dmar2'],
    ]);
    // No ATSR: the accelerator keeps PASID, but without ATS the driver offers no PRI.
    const accel = m.endpoints.find((e) => e.name === 'accel0');
    expect([accel?.unit, accel?.ats, accel?.pasid, accel?.pri]).toEqual(['dmar3', false, true, false]);
  });
});

describe('built-in x86 platform', () => {
  it('one unit in scalable mode, the four standard devices with their capabilities, the USB RMRR', () => {
    const m = build(defaultX86Platform());
    expect(m.name).toBe('x86-vtd');
    expect(m.arch).toBe('x86_64');
    expect(m.topology.counts).toMatchObject({ units: 1, scopes: 6, reservedRegions: 1, atsr: 1 });
    expect(m.units.map((u) => [u.name, u.base, u.error])).toEqual([['dmar0', 0xfed9_1000n, null]]);
    expect(m.units[0]?.params).toMatchObject({
      scalableMode: true,
      driverScalableMode: true,
      pasidBits: 20,
      haw: 39,
    });
    expect(m.endpoints.map((e) => [e.name, e.role, e.ats, e.pasid, e.pri, e.stall, e.fromFirmware])).toEqual([
      ['nic0', 'nic', true, false, false, false, false],
      ['nic1', 'nic', true, false, false, false, false],
      ['nvme0', 'nvme', false, false, false, false, false],
      ['accel0', 'accel', true, true, true, false, false],
      ['00:14.0', 'device', false, false, false, false, true],
    ]);
    // Each standard device is alone in its IOMMU group (VFIO needs that).
    const groups = new Set(m.endpoints.slice(0, 4).map((e) => e.device.iommuGroup));
    expect(groups.size).toBe(4);
    expect(m.topology.reserved).toEqual([
      { start: 0x3e2e_0000n, end: 0x3e2f_ffffn, kind: 'RMRR', devices: ['00:14.0'] },
    ]);
  });

  it('DMA API: a mapped page receives the endpoint write through the unit; counters see it', () => {
    const m = build(defaultX86Platform());
    const nic = m.endpoints.find((e) => e.name === 'nvme0');
    if (nic === undefined) throw new Error('no nvme0');
    const pa = m.memory.allocPages(0, { zero: true });
    expect(pa).toBeGreaterThanOrEqual(VTD_RAM_BASE);
    const iova = iommuDmaMapPage(nic.device, pa + 0x40, 8, DmaDataDirection.FROM_DEVICE);
    nic.endpoint.writeSync(iova, Uint8Array.of(0xde, 0xad, 0xbe, 0xef));
    expect([...m.memory.readBytes(pa + 0x40, 4)]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    const c = m.counters();
    expect(c.dmaRequests).toBe(1);
    expect(c.bytesWritten).toBe(4);
    expect(c.iotlbMisses).toBe(1);
    expect(c.pageWalks).toBe(1);
    expect(c.hwFaults).toEqual({});
    // An IOVA never mapped: a recorded fault, counted by reason on the unit and the endpoint.
    expect(() => nic.endpoint.writeSync(0x7000_0000n, Uint8Array.of(1))).toThrow(DmaFaultError);
    m.settle();
    const after = m.counters();
    expect(Object.values(after.hwFaults)).toEqual([1]);
    expect(Object.values(after.dmaFaults)).toEqual([1]);
  });

  it('SVA on accel0: page requests through the PRQ are answered and the data lands in the process', () => {
    const m = build(defaultX86Platform());
    const accel = m.endpoints.find((e) => e.name === 'accel0');
    if (accel === undefined) throw new Error('no accel0');
    const proc = m.createProcess();
    const buf = proc.mmap(0x2000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const sva = iommuSvaBindDevice(accel.device, proc.mm);
    const pasid = iommuSvaGetPasid(sva);
    accel.endpoint.writeSync(BigInt(buf) + 0x1000n, Uint8Array.of(5, 6, 7), { pasid });
    expect([...proc.read(buf + 0x1000, 3)]).toEqual([5, 6, 7]);
    const c = m.counters();
    expect(c.pageRequests).toBe(1);
    expect(c.pageResponses).toBe(1);
    iommuSvaUnbindDevice(sva);
    expect((m.counters().invalidations['pasid-cache'] ?? 0) > 0).toBe(true);
  });
});

describe('a unit that does not come up', () => {
  it('a DRHD whose registers lie in RAM: ENODEV recorded, its device gets no endpoint, the rest runs', () => {
    const bytes = writeDmar({
      revision: 1,
      oemId: 'TEST',
      oemTableId: 'BADUNIT',
      oemRevision: 1,
      creatorId: 'TEST',
      creatorRevision: 1,
      hostAddressWidth: 39,
      flags: 0,
      structures: [
        {
          kind: 'drhd',
          flags: 0,
          segment: 0,
          registerBase: BigInt(VTD_RAM_BASE) + 0x2000_0000n,
          scopes: [{ type: DmarScopeType.ENDPOINT, startBus: 0, path: [{ device: 2, function: 0 }] }],
        },
        { kind: 'drhd', flags: 1, segment: 0, registerBase: 0xfed9_1000n, scopes: [] },
      ],
    });
    const m = build(platformOf('bad-unit', bytes));
    expect(m.units.map((u) => u.name)).toEqual(['dmar0', 'dmar1']);
    expect(m.units[0]?.error).toMatch(/ENODEV|no registers/);
    expect(m.units[1]?.error).toBeNull();
    expect(m.topology.units[0]?.error).toBe(m.units[0]?.error);
    expect(m.endpoints.map((e) => [e.name, e.unit])).toEqual([
      ['nic0', 'dmar1'],
      ['nic1', 'dmar1'],
      ['nvme0', 'dmar1'],
      ['accel0', 'dmar1'],
    ]);
    expect(m.topology.notes).toEqual([
      expect.stringContaining('unit dmar0 did not come up'),
      '00:02.0: no working unit translates it; no endpoint',
    ]);
    expect(m.units[0]?.counters()).toMatchObject({ iotlbHits: 0, iotlbMisses: 0, pageWalks: 0 });
  });
});
