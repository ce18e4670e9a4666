// End to end through the DMA API: a PCI device's default DMA domain on the SMMUv3 driver, mapped by
// dma-iommu (iommu_dma_map_page / map_sg / alloc_coherent), DMA through the hardware model.

import {
  DMA_MAPPING_ERROR,
  DmaDataDirection,
  IOMMU_DOMAIN_DMA,
  iommuDmaAllocCoherent,
  iommuDmaInstall,
  iommuDmaMapPage,
  iommuDmaMapSg,
  iommuDmaUnmapPage,
  iommuDmaUnmapSg,
  sgInitTable,
} from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { countOps, d2Machine } from './d2.test-helpers.js';
import { ArmSmmuDomain, ArmSmmuDomainStage } from './domain.js';

function machine(config: Parameters<typeof d2Machine>[0] = {}) {
  const m = d2Machine(config);
  iommuDmaInstall(m.sub, { scheduler: m.scheduler, memory: m.memory });
  return m;
}

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed + i * 7) & 0xff);
}

describe('DMA API on an SMMUv3 default domain', () => {
  it('the default domain is a stage-1 DMA domain and the device uses dma-iommu', () => {
    const m = machine();
    const { pdev } = m.pci(0x18);
    const d = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    expect(d).toBeInstanceOf(ArmSmmuDomain);
    expect(d.type).toBe(IOMMU_DOMAIN_DMA);
    expect(d.stage).toBe(ArmSmmuDomainStage.S1);
    expect(pdev.dmaOpsSetUp).toBe(true);
  });

  it('map_page FROM_DEVICE: the device write lands at the page offset; TO_DEVICE is read-only', () => {
    const m = machine();
    const { pdev, ep } = m.pci(0x18);
    const pa = m.memory.allocPages(0);
    const dma = iommuDmaMapPage(pdev, pa + 0x120, 0x40, DmaDataDirection.FROM_DEVICE);
    expect(dma).not.toBe(DMA_MAPPING_ERROR);
    expect(dma & 0xfffn).toBe(0x120n);
    // PCI devices get a 32-bit IOVA first.
    expect(dma < 1n << 32n).toBe(true);
    ep.writeSync(dma, bytes(0x40, 1));
    expect([...m.memory.readBytes(pa + 0x120, 0x40)]).toEqual([...bytes(0x40, 1)]);
    // The neighbouring bytes are untouched.
    expect(m.memory.readBytes(pa + 0x11f, 1)[0]).toBe(0);

    const src = m.memory.allocPages(0);
    m.memory.writeBytes(src, bytes(16, 9));
    const rd = iommuDmaMapPage(pdev, src, 16, DmaDataDirection.TO_DEVICE);
    expect([...ep.readSync(rd, 16)]).toEqual([...bytes(16, 9)]);
    const w = ep.dmaWrite(rd, new Uint8Array([1]));
    expect(w.fault).toMatchObject({ reason: 'permission' });
    expect(m.memory.readBytes(src, 1)[0]).toBe(bytes(1, 9)[0]);
  });

  it('unmap (strict) issues TLBI + SYNC and the next DMA to the address faults', () => {
    const m = machine();
    const { pdev, ep } = m.pci(0x18);
    const pa = m.memory.allocPages(0);
    const dma = iommuDmaMapPage(pdev, pa, 0x1000, DmaDataDirection.BIDIRECTIONAL);
    ep.writeSync(dma, new Uint8Array([0xaa]));
    expect(ep.readSync(dma, 1)[0]).toBe(0xaa); // the model's TLB now holds the entry
    m.cmds();
    iommuDmaUnmapPage(pdev, dma, 0x1000, DmaDataDirection.BIDIRECTIONAL);
    expect(countOps(m.cmds())).toEqual({ TLBI_NH_VA: 1, CMD_SYNC: 1 });
    expect(ep.dmaRead(dma, 1).fault).toMatchObject({ reason: 'translation', addr: dma });
    const d = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    expect(d.pgtblOps?.iovaToPhys(dma)).toBe(0);
  });

  it('map_sg joins scattered pages into one IOVA segment; the device writes across them', () => {
    const m = machine();
    const { pdev, ep } = m.pci(0x18);
    const pages = [m.memory.allocPages(0), m.memory.allocPages(1), m.memory.allocPages(0)];
    const sg = sgInitTable([
      { pa: pages[0] as number, length: 0x1000 },
      { pa: pages[1] as number, length: 0x2000 },
      { pa: pages[2] as number, length: 0x1000 },
    ]);
    expect(iommuDmaMapSg(pdev, sg, DmaDataDirection.FROM_DEVICE)).toBe(1);
    const seg = sg[0];
    expect(seg?.dmaLength).toBe(0x4000);
    const data = bytes(0x4000, 3);
    ep.writeSync(seg?.dmaAddress as bigint, data);
    expect([...m.memory.readBytes(pages[0] as number, 0x1000)]).toEqual([...data.subarray(0, 0x1000)]);
    expect([...m.memory.readBytes(pages[1] as number, 0x2000)]).toEqual([...data.subarray(0x1000, 0x3000)]);
    expect([...m.memory.readBytes(pages[2] as number, 0x1000)]).toEqual([...data.subarray(0x3000)]);
    iommuDmaUnmapSg(pdev, sg, DmaDataDirection.FROM_DEVICE);
    expect(ep.dmaWrite(seg?.dmaAddress as bigint, new Uint8Array([1])).fault).toMatchObject({
      reason: 'translation',
    });
  });

  it('alloc_coherent: the device fills the buffer the CPU reads', () => {
    const m = machine();
    const { pdev, ep } = m.pci(0x18);
    const buf = iommuDmaAllocCoherent(pdev, 0x2000);
    expect(buf).not.toBeNull();
    const b = buf as NonNullable<typeof buf>;
    ep.writeSync(b.dmaAddr + 0x1fe0n, bytes(0x20, 5));
    expect([...m.memory.readBytes(b.cpuPa + 0x1fe0, 0x20)]).toEqual([...bytes(0x20, 5)]);
  });

  it('an ATS device: unmap also sends ATC_INV for the range and the device cannot use its ATC entry', () => {
    const m = machine();
    const { pdev, ep } = m.pci(0x20, { ats: true });
    expect(ep.atsEnabled).toBe(true);
    const pa = m.memory.allocPages(0);
    m.memory.writeBytes(pa, new Uint8Array([0x77]));
    const dma = iommuDmaMapPage(pdev, pa, 0x1000, DmaDataDirection.TO_DEVICE);
    expect(ep.readSync(dma, 1)[0]).toBe(0x77);
    m.cmds();
    iommuDmaUnmapPage(pdev, dma, 0x1000, DmaDataDirection.TO_DEVICE);
    expect(countOps(m.cmds())).toEqual({ TLBI_NH_VA: 1, ATC_INV: 1, CMD_SYNC: 2 });
    expect(ep.dmaRead(dma, 1).fault).toBeDefined();
  });

  it('two devices get separate domains: one device cannot reach the other one’s mapping', () => {
    const m = machine();
    const a = m.pci(0x18);
    const b = m.pci(0x28);
    const pa = m.memory.allocPages(0);
    const dma = iommuDmaMapPage(a.pdev, pa, 0x1000, DmaDataDirection.FROM_DEVICE);
    const da = m.sub.iommuGetDomainForDev(a.pdev) as ArmSmmuDomain;
    const db = m.sub.iommuGetDomainForDev(b.pdev) as ArmSmmuDomain;
    expect(da).not.toBe(db);
    expect(da.asid).not.toBe(db.asid);
    expect(b.ep.dmaWrite(dma, new Uint8Array([1])).fault).toMatchObject({ reason: 'translation' });
    expect(m.memory.readBytes(pa, 1)[0]).toBe(0);
  });
});
