// The DMAR glue on real firmware tables: one unit per DRHD on its own model, devices configured by
// scope / INCLUDE_PCI_ALL, ATS per ATSR, RMRRs reserved and identity-mapped, DMA through the scopes.

import { readFileSync } from 'node:fs';
import { Scheduler } from '@iommu-ts/base';
import {
  DmaDataDirection,
  Endpoint,
  IommuResvType,
  IommuSubsystem,
  iommuDmaInstall,
  iommuDmaMapPage,
  PciHostBridge,
} from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { parseDmar } from '../firmware/dmar.js';
import { DmarTopology, pciTopologyFromHostBridges } from '../firmware/dmar-topology.js';
import { testMemory } from '../hw/structures.test-helpers.js';
import { VtdModel } from '../hw/vtd.js';
import { infoOf } from './device.js';
import { intelIommuDmarConfigure, intelIommuDmarLookup, intelIommuDmarProbe } from './dmar-glue.js';

const df = (dev: number, fn: number): number => (dev << 3) | fn;
const table = (name: string) =>
  parseDmar(new Uint8Array(readFileSync(new URL(`../firmware/fixtures/${name}.bin`, import.meta.url))));

/** A platform: models at the given register bases (others absent), one core, the glue. */
function platform(fixture: string, hb: PciHostBridge, present: (base: bigint) => boolean = () => true) {
  const memory = testMemory();
  const scheduler = new Scheduler();
  const core = new IommuSubsystem();
  const models = new Map<bigint, VtdModel>();
  const topo = new DmarTopology(table(fixture), pciTopologyFromHostBridges([hb]));
  const glue = intelIommuDmarProbe(topo, {
    iommu: core,
    memory,
    scheduler,
    mmioFor: (base) => {
      if (!present(base)) return null;
      const vtd = new VtdModel({ memory, scheduler });
      models.set(base, vtd);
      return vtd.mmio;
    },
  });
  iommuDmaInstall(core, { scheduler, memory });
  /** Configure from the DMAR tables, add to the core, and wire an endpoint to the unit's model. */
  const add = (pdev: ReturnType<typeof hb.rootBus.addDevice>) => {
    const hit = intelIommuDmarConfigure(glue, pdev);
    const err = core.addDevice(pdev);
    if (err) throw err;
    const vtd = hit === null ? undefined : models.get(hit.entry.unit.registerBase);
    const ep =
      vtd === undefined
        ? null
        : new Endpoint({ device: pdev, iommu: vtd, scheduler, requesterId: pdev.requesterId });
    return { hit, ep };
  };
  return { memory, scheduler, core, models, glue, add };
}

describe('ASRock X99 Extreme4: a named unit and a catch-all', () => {
  const build = (present?: (base: bigint) => boolean) => {
    const hb = new PciHostBridge();
    const rp1 = hb.rootBus.addDevice({ devfn: df(1, 0), pcieType: 'root_port' });
    const ep1 = rp1
      .addSecondaryBus(1)
      .addDevice({ devfn: 0, ats: { pageAlignedRequest: true, invQueueDepth: 0 } });
    const rp2 = hb.rootBus.addDevice({ devfn: df(0x1c, 0), pcieType: 'root_port' });
    const ep2 = rp2
      .addSecondaryBus(2)
      .addDevice({ devfn: 0, ats: { pageAlignedRequest: true, invQueueDepth: 0 } });
    const integrated = hb.rootBus.addDevice({ devfn: df(0x1b, 0), pcieType: 'rc_endpoint' });
    return { p: platform('asrock-x99-extreme4-dmar', hb, present), ep1, ep2, integrated };
  };

  it('one running unit per DRHD, named in table order, on its own registers', () => {
    const { p } = build();
    expect(p.glue.units.map((u) => [u.iommu?.name, u.unit.registerBase, u.error])).toEqual([
      ['dmar0', 0xfbffd000n, null],
      ['dmar1', 0xfbffc000n, null],
    ]);
    for (const u of p.glue.units) {
      expect(u.iommu?.translationEnabled).toBe(true);
      expect(u.iommu?.regBaseAddr).toBe(u.unit.registerBase);
    }
    expect(p.models.size).toBe(2);
  });

  it('devices find their unit by scope or INCLUDE_PCI_ALL; ATS follows the ATSR', () => {
    const { p, ep1, ep2, integrated } = build();
    const a = p.add(integrated);
    const b = p.add(ep1);
    const c = p.add(ep2);
    expect(a.hit?.entry.iommu?.name).toBe('dmar0');
    expect(b.hit?.entry.iommu?.name).toBe('dmar1');
    expect(c.hit?.entry.iommu?.name).toBe('dmar1');
    expect(integrated.fwspec?.iommuFwnode).toBe(p.glue.units[0]?.fwnode);
    expect(ep1.fwspec?.ids).toEqual([0x100]);
    expect(infoOf(integrated).iommu).toBe(p.glue.units[0]?.iommu);
    expect(infoOf(ep1).iommu).toBe(p.glue.units[1]?.iommu);
    // Root port 00:01.0 is in the ATSR, 00:1c.0 is not.
    expect(b.hit?.firmware.atsAllowed).toBe(true);
    expect(c.hit?.firmware.atsAllowed).toBe(false);
    expect(infoOf(ep1).atsEnabled).toBe(true);
    expect(infoOf(ep2).atsSupported).toBe(false);
  });

  it('DMA through the scope: the integrated device maps through dmar0 and its model only', () => {
    const { p, integrated, ep1 } = build();
    const a = p.add(integrated);
    const b = p.add(ep1);
    const pa = p.memory.allocPages(0, { zero: true });
    const dma = iommuDmaMapPage(integrated, pa + 0x80, 16, DmaDataDirection.FROM_DEVICE);
    a.ep?.writeSync(dma, Uint8Array.of(1, 2, 3, 4));
    expect([...p.memory.readBytes(pa + 0x80, 4)]).toEqual([1, 2, 3, 4]);
    expect(b.ep?.dmaWrite(dma, Uint8Array.of(9)).fault).toBeDefined();
    expect(p.memory.readBytes(pa + 0x80, 1)[0]).toBe(1);
  });

  it('a DRHD whose registers do not answer: ENODEV recorded, its devices untranslated, the other unit runs', () => {
    const { p, integrated, ep1 } = build((base) => base !== 0xfbffd000n);
    expect(p.glue.units[0]?.iommu).toBeNull();
    expect(p.glue.units[0]?.error?.code).toBe('ENODEV');
    expect(intelIommuDmarLookup(p.glue, integrated)).toBeNull();
    expect(intelIommuDmarConfigure(p.glue, integrated)).toBeNull();
    expect(p.core.addDevice(integrated)?.code).toBe('ENODEV');
    expect(integrated.fwspec).toBeNull();
    expect(p.add(ep1).hit?.entry.iommu?.name).toBe('dmar1');
  });
});

describe('ASRock H310CM-HDV: catch-all unit with a USB RMRR', () => {
  it('the RMRR is reserved for 00:14.0 only and identity-mapped in its default domain', () => {
    const hb = new PciHostBridge();
    const usb = hb.rootBus.addDevice({ devfn: df(0x14, 0) });
    const other = hb.rootBus.addDevice({ devfn: df(0x14, 2) });
    const p = platform('asrock-h310cm-hdv-dmar', hb);
    expect(p.glue.units.length).toBe(1);
    const u = p.add(usb);
    const o = p.add(other);
    expect(u.hit?.firmware.rmrrs).toEqual([{ start: 0x8f353000n, length: 0x24a000n }]);
    expect(o.hit?.firmware.rmrrs).toEqual([]);
    const direct = (d: typeof usb) =>
      p.core.iommuGetResvRegions(d).filter((r) => r.type === IommuResvType.DIRECT);
    expect(direct(usb)).toEqual([expect.objectContaining({ start: 0x8f353000n, length: 0x24a000n })]);
    expect(direct(other)).toEqual([]);
    const du = p.core.iommuGetDomainForDev(usb);
    const dother = p.core.iommuGetDomainForDev(other);
    if (du === null || dother === null) throw new Error('no default domain');
    for (const iova of [0x8f353000n, 0x8f353000n + 0x123456n, 0x8f353000n + 0x24a000n - 1n])
      expect(p.core.iommuIovaToPhys(du, iova)).toBe(iova);
    expect(p.core.iommuIovaToPhys(dother, 0x8f353000n)).toBe(0n);
  });
});
