import { readFileSync } from 'node:fs';
import { IOMMU_READ, IOMMU_WRITE } from '@iommu-ts/io-pgtable';
import { IommuResvType, PciHostBridge } from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { acpiTableChecksum, type DmarTable, parseDmar } from './dmar.js';
import { DmarTopology, pciTopologyFromHostBridges, resolveDmarScope } from './dmar-topology.js';

const table = (name: string): DmarTable =>
  parseDmar(new Uint8Array(readFileSync(new URL(`./fixtures/${name}.bin`, import.meta.url))));
const df = (dev: number, fn: number): number => (dev << 3) | fn;
const bases = (t: DmarTopology): bigint[] => t.searchOrder.map((u) => u.registerBase);

describe('QEMU q35: explicit scopes, no catch-all, ATSR ALL_PORTS', () => {
  const topo = new DmarTopology(table('qemu-q35-dmar'));
  it('maps listed functions and nothing else', () => {
    expect(topo.unitFor(0, 0, df(0x1f, 2))).toMatchObject({ match: 'device', unit: { index: 0 } });
    expect(topo.unitFor(0, 0, df(1, 0))?.match).toBe('device');
    expect(topo.unitFor(0, 0, df(2, 0))).toBeNull();
    expect(topo.unitFor(1, 0, df(1, 0))).toBeNull();
    expect(topo.units[0]?.ioapics).toEqual([{ enumerationId: 0, bus: 0xff, devfn: 0 }]);
    expect(topo.unitForInterruptSource('ioapic', 0)?.registerBase).toBe(0xfed90000n);
    expect(topo.unitForInterruptSource('hpet', 0)).toBeNull();
  });
  it('every root port of segment 0 supports ATS', () => {
    expect(topo.rootPortSupportsAts(0, 0, df(3, 0))).toBe(true);
    expect(topo.rootPortSupportsAts(1, 0, df(3, 0))).toBe(false);
  });
});

describe('ASRock H310CM-HDV: one catch-all unit and a USB RMRR', () => {
  const topo = new DmarTopology(table('asrock-h310cm-hdv-dmar'));
  it('the catch-all takes every function of the segment', () => {
    expect(topo.unitFor(0, 5, df(0, 0))).toMatchObject({
      match: 'include-all',
      unit: { registerBase: 0xfed90000n },
    });
    expect(topo.units[0]?.hpets).toEqual([{ enumerationId: 0, bus: 0, devfn: df(0x1f, 0) }]);
    expect(topo.units[0]?.ioapics).toEqual([{ enumerationId: 2, bus: 0xf0, devfn: df(0x1f, 0) }]);
  });
  it('the RMRR is a direct read/write region of 00:14.0 only', () => {
    expect(topo.reservedRegions(0, 0, df(0x14, 0))).toEqual([
      { start: 0x8f353000n, length: 0x24a000n, prot: IOMMU_READ | IOMMU_WRITE, type: IommuResvType.DIRECT },
    ]);
    expect(topo.reservedRegions(0, 0, df(0x14, 0), true)[0]?.type).toBe(IommuResvType.DIRECT_RELAXABLE);
    expect(topo.reservedRegions(0, 0, df(0x14, 1))).toEqual([]);
    expect(topo.reservedRegions(1, 0, df(0x14, 0))).toEqual([]);
  });
  it('without an ATSR no root port supports ATS', () => {
    expect(topo.rootPortSupportsAts(0, 0, df(0x1c, 0))).toBe(false);
  });
});

describe('ASRock X99 Extreme4: named unit first, ATSR ports, RHSA affinity, ATS walk', () => {
  const hb = new PciHostBridge();
  const rp1 = hb.rootBus.addDevice({ devfn: df(1, 0), pcieType: 'root_port' });
  const ep1 = rp1.addSecondaryBus(1).addDevice({ devfn: 0 });
  const rp2 = hb.rootBus.addDevice({ devfn: df(0x1c, 0), pcieType: 'root_port' });
  const ep2 = rp2.addSecondaryBus(2).addDevice({ devfn: 0 });
  const rp3 = hb.rootBus.addDevice({ devfn: df(3, 0), pcieType: 'root_port' });
  const pcib = rp3.addSecondaryBus(3).addDevice({ devfn: 0, pcieType: 'pci_bridge' });
  const legacy = pcib.addSecondaryBus(4).addDevice({ devfn: 0, pcieType: 'pci' });
  const integrated = hb.rootBus.addDevice({ devfn: df(0x1b, 0), pcieType: 'rc_endpoint' });
  const topo = new DmarTopology(table('asrock-x99-extreme4-dmar'), pciTopologyFromHostBridges([hb]));
  it('units and search order', () => {
    expect(bases(topo)).toEqual([0xfbffd000n, 0xfbffc000n]);
    expect(topo.unitForDevice(integrated)).toMatchObject({ match: 'device', unit: { index: 0 } });
    expect(topo.unitForDevice(ep1)).toMatchObject({ match: 'include-all', unit: { index: 1 } });
    expect(topo.units.map((u) => u.proximityDomain)).toEqual([null, 0]);
    expect(topo.unitForInterruptSource('ioapic', 2)?.index).toBe(1);
  });
  it('dmar_ats_supported: ATSR root port, other root port, PCI bridge on the way, integrated', () => {
    expect(topo.atsSupported(ep1)).toBe(true);
    expect(topo.atsSupported(ep2)).toBe(false);
    expect(topo.atsSupported(legacy)).toBe(false);
    expect(topo.atsSupported(integrated)).toBe(true);
    expect(topo.rootPortSupportsAts(0, 0, df(3, 0))).toBe(true);
  });
});

describe('Surface Book 2: name-space devices', () => {
  const topo = new DmarTopology(table('surface-book-2-dmar'));
  it('ANDD names attach to the catch-all unit', () => {
    expect(topo.units[1]?.namespaceDevices.map((d) => [d.enumerationId, d.name, d.devfn])).toEqual([
      [1, '\\_SB.PCI0.I2C0', df(0x15, 0)],
      [2, '\\_SB.PCI0.I2C1', df(0x15, 1)],
      [3, '\\_SB.PCI0.I2C2', df(0x15, 2)],
      [4, '\\_SB.PCI0.I2C3', df(0x15, 3)],
      [9, '\\_SB.PCI0.UA00', df(0x1e, 0)],
    ]);
    expect(topo.unitForNamespaceDevice('\\_SB.PCI0.UA00')?.registerBase).toBe(0xfed91000n);
    expect(topo.unitForNamespaceDevice('\\_SB.PCI0.I2C9')).toBeNull();
  });
  it('graphics goes to its own unit and keeps its stolen-memory RMRR', () => {
    expect(topo.unitFor(0, 0, df(2, 0))).toMatchObject({
      match: 'device',
      unit: { registerBase: 0xfed90000n },
    });
    expect(topo.reservedRegions(0, 0, df(2, 0)).map((r) => [r.start, r.length])).toEqual([
      [0x8d000000n, 0x2800000n],
    ]);
  });
});

describe('Surface Laptop Studio: Thunderbolt sub-hierarchies', () => {
  const hb = new PciHostBridge();
  const tbt0 = hb.rootBus.addDevice({ devfn: df(7, 0), pcieType: 'root_port' });
  const up = tbt0.addSecondaryBus(1).addDevice({ devfn: 0, pcieType: 'upstream' });
  const dn = up.addSecondaryBus(2).addDevice({ devfn: 0, pcieType: 'downstream' });
  const nvme = dn.addSecondaryBus(3).addDevice({ devfn: 0 });
  const tbt1 = hb.rootBus.addDevice({ devfn: df(7, 1), pcieType: 'root_port' });
  const dock = tbt1.addSecondaryBus(0x39).addDevice({ devfn: 0 });
  const pci = pciTopologyFromHostBridges([hb]);
  const topo = new DmarTopology(table('surface-laptop-studio-dmar'), pci);
  it('search order: named units last-parsed first, catch-all last', () => {
    expect(bases(topo)).toEqual([0xfed85000n, 0xfed84000n, 0xfed90000n, 0xfed91000n]);
  });
  it('devices behind each root port go to that port unit', () => {
    expect(pci.bridgeBuses(0, 0, df(7, 0))).toEqual({ secondary: 1, subordinate: 3 });
    expect(topo.unitForDevice(nvme)).toMatchObject({ match: 'bridge', unit: { registerBase: 0xfed84000n } });
    expect(topo.unitForDevice(up)).toMatchObject({ match: 'bridge', unit: { registerBase: 0xfed84000n } });
    expect(topo.unitForDevice(tbt0)).toMatchObject({ match: 'device', unit: { registerBase: 0xfed84000n } });
    expect(topo.unitForDevice(dock)).toMatchObject({ match: 'bridge', unit: { registerBase: 0xfed85000n } });
    expect(topo.unitFor(0, 0, df(0x14, 0))).toMatchObject({
      match: 'include-all',
      unit: { registerBase: 0xfed91000n },
    });
  });
  it('without the PCI hierarchy a sub-hierarchy scope covers only the bridge', () => {
    const bare = new DmarTopology(table('surface-laptop-studio-dmar'));
    expect(bare.unitFor(0, 3, 0)?.match).toBe('include-all');
    expect(bare.unitFor(0, 0, df(7, 0))).toMatchObject({
      match: 'device',
      unit: { registerBase: 0xfed84000n },
    });
  });
});

function dmarOf(structs: number[][]): DmarTable {
  const body = structs.flat();
  const b = new Uint8Array(48 + body.length);
  b.set([0x44, 0x4d, 0x41, 0x52]);
  new DataView(b.buffer).setUint32(4, b.length, true);
  b[36] = 0x26;
  b.set(body, 48);
  b[9] = (0x100 - acpiTableChecksum(b)) & 0xff;
  return parseDmar(b);
}
const le64 = (v: bigint): number[] =>
  Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
const drhd = (flags: number, base: bigint, seg: number, ...scopes: number[][]): number[] => {
  const s = scopes.flat();
  return [0, 0, 16 + s.length, 0, flags, 0, seg, 0, ...le64(base), ...s];
};
const ep = (bus: number, ...path: number[]): number[] => [1, 6 + path.length, 0, 0, 0, bus, ...path];

describe('hand-built topologies', () => {
  it('a later DRHD naming the same device wins (list_add order); segments are separate', () => {
    const topo = new DmarTopology(
      dmarOf([drhd(0, 0x1000n, 0, ep(0, 2, 0)), drhd(0, 0x2000n, 0, ep(0, 2, 0)), drhd(1, 0x3000n, 1)]),
    );
    expect(topo.unitFor(0, 0, df(2, 0))?.unit.registerBase).toBe(0x2000n);
    expect(topo.unitFor(1, 0, df(2, 0))).toMatchObject({
      match: 'include-all',
      unit: { registerBase: 0x3000n },
    });
    expect(topo.unitFor(0, 0, df(3, 0))).toBeNull();
  });
  it('multi-hop paths follow bridge secondary buses; unknown bridges leave the scope unresolved', () => {
    const hb = new PciHostBridge();
    const rp = hb.rootBus.addDevice({ devfn: df(0x1c, 4), pcieType: 'root_port' });
    const wifi = rp.addSecondaryBus(6).addDevice({ devfn: 0 });
    const table2 = dmarOf([drhd(0, 0x1000n, 0, ep(0, 0x1c, 4, 0, 0)), drhd(1, 0x2000n, 0)]);
    const topo = new DmarTopology(table2, pciTopologyFromHostBridges([hb]));
    expect(topo.unitForDevice(wifi)).toMatchObject({ match: 'device', unit: { registerBase: 0x1000n } });
    const scope = table2.structures[0]?.kind === 'drhd' ? table2.structures[0].scopes[0] : undefined;
    if (scope === undefined) throw new Error('no scope');
    expect(resolveDmarScope(scope, 0, { bridgeBuses: () => null })).toMatchObject({
      bus: null,
      devfn: 0,
      buses: null,
    });
    expect(new DmarTopology(table2).unitFor(0, 6, 0)?.match).toBe('include-all');
  });
  it('SATC decides ATS for SoC-integrated devices', () => {
    const hb = new PciHostBridge();
    const igpu = hb.rootBus.addDevice({ devfn: df(2, 0), pcieType: 'rc_endpoint' });
    const satc = (flags: number): number[] => [5, 0, 16, 0, flags, 0, 0, 0, ...ep(0, 2, 0)];
    const required = new DmarTopology(dmarOf([drhd(1, 0x1000n, 0), satc(1)]));
    expect(required.satcFor(0, 0, df(2, 0))?.atcRequired).toBe(true);
    expect(required.atsSupported(igpu, true)).toBe(true);
    expect(required.atsSupported(igpu, false)).toBe(false);
    expect(new DmarTopology(dmarOf([drhd(1, 0x1000n, 0), satc(0)])).atsSupported(igpu, false)).toBe(true);
  });
  it('ignores a DRHD repeating a registered (segment, base), like dmar_find_dmaru', () => {
    const topo = new DmarTopology(
      dmarOf([drhd(0, 0x1000n, 0, ep(0, 2, 0)), drhd(1, 0x1000n, 0), drhd(1, 0x1000n, 1)]),
    );
    expect(topo.units.map((u) => [u.segment, u.registerBase, u.includePciAll])).toEqual([
      [0, 0x1000n, false],
      [1, 0x1000n, true],
    ]);
    expect(topo.unitFor(0, 0, df(3, 0))).toBeNull();
  });
});
