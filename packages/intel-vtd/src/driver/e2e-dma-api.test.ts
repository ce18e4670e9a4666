// End to end through the DMA API: a unit brought up by intelIommuProbe, a PCI function's default DMA
// domain mapped by dma-iommu, DMA through the VT-d model; unmap → fault; an RMRR identity-mapped.

import { Scheduler } from '@iommu-ts/base';
import { errnoOf } from '@iommu-ts/base/testing';
import {
  DMA_MAPPING_ERROR,
  DmaDataDirection,
  Endpoint,
  IOMMU_DOMAIN_DMA,
  IommuResvType,
  IommuSubsystem,
  iommuDmaAllocCoherent,
  iommuDmaInstall,
  iommuDmaMapPage,
  iommuDmaMapSg,
  iommuDmaUnmapPage,
  type MmioRegion,
  PciHostBridge,
  sgInitTable,
} from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { testMemory } from '../hw/structures.test-helpers.js';
import { VtdModel } from '../hw/vtd.js';
import type { VtdHwConfig } from '../hw/vtd-config.js';
import { intelIommuSetDeviceFirmware } from './device.js';
import { DmarDomain } from './domain.js';
import { intelIommuOps, intelIommuProbe } from './intel-iommu-ops.js';
import { DMA_GSTS_TES, DMAR_GSTS_REG } from './regs.js';
import { descStr } from './vd2.test-helpers.js';

const P = 0x1000;

function machine(config: Partial<VtdHwConfig> = {}) {
  const memory = testMemory();
  const scheduler = new Scheduler();
  const vtd = new VtdModel({ memory, scheduler, config });
  const core = new IommuSubsystem();
  const fwnode = { name: 'dmar0' };
  const unit = intelIommuProbe({ iommu: core, mmio: vtd.mmio, memory, scheduler, fwnode });
  iommuDmaInstall(core, { scheduler, memory });
  const hb = new PciHostBridge();
  let mark = vtd.iq.log.length;
  const pci = (devfn: number, opts: { ats?: boolean; rmrrs?: { start: bigint; length: bigint }[] } = {}) => {
    const pdev = hb.rootBus.addDevice({
      devfn,
      ...(opts.ats ? { ats: { pageAlignedRequest: true, invQueueDepth: 0 } } : {}),
    });
    core.iommuFwspecInit(pdev, fwnode);
    core.iommuFwspecAddIds(pdev, [pdev.requesterId]);
    if (opts.rmrrs) intelIommuSetDeviceFirmware(pdev, { rmrrs: opts.rmrrs });
    const err = core.addDevice(pdev);
    if (err) throw err;
    const ep = new Endpoint({ device: pdev, iommu: vtd, scheduler, requesterId: pdev.requesterId });
    return { pdev, ep };
  };
  const descs = (): string[] => {
    const out = vtd.iq.log.slice(mark).map(descStr);
    mark = vtd.iq.log.length;
    return out;
  };
  return { memory, scheduler, vtd, core, unit, pci, descs };
}

const bytes = (n: number, seed: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (seed + i * 13) & 0xff);

describe('intelIommuProbe and intelIommuOps', () => {
  it('brings the unit up in order: probed, QI on, root table set, registered, TE set', () => {
    const m = machine();
    expect(m.unit.probed).toBe(true);
    expect(m.unit.qi).not.toBeNull();
    expect(m.unit.rootEntry).not.toBe(0);
    expect(m.unit.registered).toBe(true);
    expect(m.unit.translationEnabled).toBe(true);
    expect((m.vtd.mmio.readl(DMAR_GSTS_REG) & DMA_GSTS_TES) !== 0).toBe(true);
  });

  it('the ops carry every callback of intel_iommu_ops and merge extra ones over them', () => {
    const m = machine();
    const ops = intelIommuOps(m.unit);
    expect(ops.name).toBe('intel-iommu');
    for (const k of [
      'capable',
      'domainAllocPaging',
      'domainAllocPagingFlags',
      'hwInfo',
      'probeDevice',
      'releaseDevice',
      'deviceGroup',
      'getResvRegions',
      'defDomainType',
      'removeDevPasid',
      'pageResponse',
    ] as const)
      expect(typeof ops[k]).toBe('function');
    expect(ops.identityDomain).toBeDefined();
    expect(ops.blockedDomain).toBe(ops.releaseDomain);
    const sva = () => {
      throw new Error('unused');
    };
    expect(intelIommuOps(m.unit, { domainAllocSva: sva }).domainAllocSva).toBe(sva);
  });

  it('a unit without usable address widths fails with ENODEV and registers nothing', () => {
    const memory = testMemory();
    const scheduler = new Scheduler();
    const vtd = new VtdModel({ memory, scheduler });
    // Firmware-visible CAP with SAGAW = 0 (bits 12:8) on a unit that also does second-level.
    const inner = vtd.mmio;
    const mmio: MmioRegion = {
      size: inner.size,
      readl: (o) => inner.readl(o),
      readq: (o) => (o === 0x8 ? inner.readq(o) & ~(0x1fn << 8n) : inner.readq(o)),
      writel: (o, v) => inner.writel(o, v),
      writeq: (o, v) => inner.writeq(o, v),
    };
    const core = new IommuSubsystem();
    expect(errnoOf(() => intelIommuProbe({ iommu: core, mmio, memory, scheduler }))).toBe('ENODEV');
    expect(vtd.mmio.readl(DMAR_GSTS_REG) >>> 0).toBe(0);
  });
});

describe('DMA API on a VT-d default domain', () => {
  it('the default domain is a DMA domain and map_page FROM_DEVICE lands at the page offset', () => {
    const m = machine();
    const { pdev, ep } = m.pci(0x18);
    const d = m.core.iommuGetDomainForDev(pdev);
    expect(d).toBeInstanceOf(DmarDomain);
    expect(d?.type).toBe(IOMMU_DOMAIN_DMA);
    const pa = m.memory.allocPages(0, { zero: true });
    const dma = iommuDmaMapPage(pdev, pa + 0x230, 0x40, DmaDataDirection.FROM_DEVICE);
    expect(dma).not.toBe(DMA_MAPPING_ERROR);
    expect(dma & 0xfffn).toBe(0x230n);
    expect(dma < 1n << 32n).toBe(true);
    ep.writeSync(dma, bytes(0x40, 1));
    expect([...m.memory.readBytes(pa + 0x230, 0x40)]).toEqual([...bytes(0x40, 1)]);
    expect(m.memory.readBytes(pa + 0x22f, 1)[0]).toBe(0);
    expect(m.memory.readBytes(pa + 0x270, 1)[0]).toBe(0);
  });

  it('TO_DEVICE mappings are read-only: a device write faults and memory is unchanged', () => {
    const m = machine();
    const { pdev, ep } = m.pci(0x18);
    const src = m.memory.allocPages(0, { zero: true });
    m.memory.writeBytes(src, bytes(16, 9));
    const rd = iommuDmaMapPage(pdev, src, 16, DmaDataDirection.TO_DEVICE);
    expect([...ep.readSync(rd, 16)]).toEqual([...bytes(16, 9)]);
    expect(ep.dmaWrite(rd, new Uint8Array([0xff])).fault).toBeDefined();
    expect([...m.memory.readBytes(src, 16)]).toEqual([...bytes(16, 9)]);
  });

  it('unmap invalidates the IOTLB: the next DMA faults and the fault is recorded for the RID', () => {
    const m = machine();
    const { pdev, ep } = m.pci(0x18);
    const pa = m.memory.allocPages(0, { zero: true });
    const dma = iommuDmaMapPage(pdev, pa, P, DmaDataDirection.BIDIRECTIONAL);
    ep.writeSync(dma, new Uint8Array([0xaa]));
    expect(ep.readSync(dma, 1)[0]).toBe(0xaa); // IOTLB now caches the page
    m.descs();
    iommuDmaUnmapPage(pdev, dma, P, DmaDataDirection.BIDIRECTIONAL);
    const after = m.descs().filter((s) => s !== 'wait');
    expect(after.length).toBe(1);
    expect(after[0]).toMatch(new RegExp(`^p?iotlb page did=\\d+ (pasid=0 )?addr=0x${dma.toString(16)} am=0`));
    expect(ep.dmaRead(dma, 1).fault).toBeDefined();
    const recs = m.unit.handleFault();
    expect(recs.map((r) => [r.sourceId, r.addr])).toContainEqual([0x18, dma]);
  });

  it('map_sg joins scattered pages into one IOVA range the device writes across', () => {
    const m = machine();
    const { pdev, ep } = m.pci(0x20);
    const pages = [m.memory.allocPages(0), m.memory.allocPages(1), m.memory.allocPages(0)] as number[];
    const sg = sgInitTable([
      { pa: pages[0] as number, length: P },
      { pa: pages[1] as number, length: 2 * P },
      { pa: pages[2] as number, length: P },
    ]);
    expect(iommuDmaMapSg(pdev, sg, DmaDataDirection.FROM_DEVICE)).toBe(1);
    const seg = sg[0];
    expect(seg?.dmaLength).toBe(4 * P);
    const data = bytes(4 * P, 3);
    ep.writeSync(seg?.dmaAddress as bigint, data);
    expect([...m.memory.readBytes(pages[0] as number, P)]).toEqual([...data.subarray(0, P)]);
    expect([...m.memory.readBytes(pages[1] as number, 2 * P)]).toEqual([...data.subarray(P, 3 * P)]);
    expect([...m.memory.readBytes(pages[2] as number, P)]).toEqual([...data.subarray(3 * P)]);
  });

  it('alloc_coherent: the device fills the buffer the CPU reads', () => {
    const m = machine();
    const { pdev, ep } = m.pci(0x18);
    const buf = iommuDmaAllocCoherent(pdev, 2 * P);
    expect(buf).not.toBeNull();
    const b = buf as NonNullable<typeof buf>;
    ep.writeSync(b.dmaAddr + 0x1fe0n, bytes(0x20, 5));
    expect([...m.memory.readBytes(b.cpuPa + 0x1fe0, 0x20)]).toEqual([...bytes(0x20, 5)]);
  });

  it('two functions get separate domains: one cannot reach the other’s mapping', () => {
    const m = machine();
    const a = m.pci(0x18);
    const b = m.pci(0x28);
    const pa = m.memory.allocPages(0, { zero: true });
    const dma = iommuDmaMapPage(a.pdev, pa, P, DmaDataDirection.FROM_DEVICE);
    expect(m.core.iommuGetDomainForDev(a.pdev)).not.toBe(m.core.iommuGetDomainForDev(b.pdev));
    expect(b.ep.dmaWrite(dma, new Uint8Array([1])).fault).toBeDefined();
    expect(m.memory.readBytes(pa, 1)[0]).toBe(0);
  });

  it('an RMRR is reserved, identity-mapped in the default domain and reachable by DMA', () => {
    const m = machine();
    const region = m.memory.allocPages(1, { zero: true }); // two pages firmware "owns"
    const start = BigInt(region);
    const { pdev, ep } = m.pci(0x30, { rmrrs: [{ start, length: 2n * BigInt(P) }] });
    const resv = m.core.iommuGetResvRegions(pdev);
    expect(resv.filter((r) => r.type === IommuResvType.DIRECT)).toEqual([
      expect.objectContaining({ start, length: 0x2000n }),
    ]);
    const d = m.core.iommuGetDomainForDev(pdev);
    expect(d).not.toBeNull();
    expect(m.core.iommuIovaToPhys(d as NonNullable<typeof d>, start + 0x1010n)).toBe(start + 0x1010n);
    ep.writeSync(start + 0x1010n, new Uint8Array([1, 2, 3]));
    expect([...m.memory.readBytes(region + 0x1010, 3)]).toEqual([1, 2, 3]);
    // dma-iommu never hands out the RMRR's IOVAs.
    for (let i = 0; i < 8; i++) {
      const dma = iommuDmaMapPage(pdev, m.memory.allocPages(0), P, DmaDataDirection.FROM_DEVICE);
      expect(dma >= start + 0x2000n || dma + BigInt(P) <= start).toBe(true);
    }
    // A function without the RMRR cannot reach the region.
    const other = m.pci(0x38);
    expect(other.ep.dmaWrite(start, new Uint8Array([9])).fault).toBeDefined();
    expect(m.memory.readBytes(region, 1)[0]).toBe(0);
  });
});
