import { IOMMU_DOMAIN_DMA, IOMMU_READ, IOMMU_WRITE, iommuFlushIotlbAll } from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { countOps, d2Machine } from './d2.test-helpers.js';
import { ArmSmmuDomain, ArmSmmuDomainStage } from './domain.js';

const RW = IOMMU_READ | IOMMU_WRITE;

describe('DMA through the driver and the hardware model', () => {
  it('probe attaches a stage-1 default domain; DMA lands in RAM', () => {
    const m = d2Machine();
    const { pdev, ep } = m.pci(0x20);
    const domain = m.sub.iommuGetDomainForDev(pdev);
    expect(domain).toBeInstanceOf(ArmSmmuDomain);
    const d = domain as ArmSmmuDomain;
    expect(d.type).toBe(IOMMU_DOMAIN_DMA);
    expect(d.stage).toBe(ArmSmmuDomainStage.S1);
    expect(d.asid).toBeGreaterThan(0);
    const pa = m.memory.allocPages(0);
    m.cmds();
    m.sub.iommuMap(d, 0x10_0000n, BigInt(pa), 0x1000n, RW);
    ep.writeSync(0x10_0010n, new Uint8Array([1, 2, 3, 4]));
    expect([...m.memory.readBytes(pa + 0x10, 4)]).toEqual([1, 2, 3, 4]);
    expect([...ep.readSync(0x10_0010n, 4)]).toEqual([1, 2, 3, 4]);
  });
});

describe('unmap and TLB invalidation', () => {
  function mapped(hook = false) {
    const m = d2Machine();
    const { pdev, ep } = m.pci(0x20);
    const d = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    d.testHooks.skipInvalidation = hook;
    const pa = m.memory.allocPages(0);
    m.memory.writeBytes(pa, new Uint8Array([0x5a]));
    m.sub.iommuMap(d, 0x10_0000n, BigInt(pa), 0x1000n, RW);
    expect(ep.readSync(0x10_0000n, 1)[0]).toBe(0x5a); // fills the model's TLB
    m.cmds();
    return { m, ep, d, pa };
  }

  it('unmap issues one leaf TLBI_NH_VA (range-encoded) + SYNC and the next DMA faults', () => {
    const { m, ep, d } = mapped();
    expect(m.sub.iommuUnmap(d, 0x10_0000n, 0x1000n)).toBe(0x1000n);
    expect(m.cmds()).toEqual(['TLBI_NH_VA', 'CMD_SYNC']);
    expect(ep.dmaRead(0x10_0000n, 1).fault).toMatchObject({ reason: 'translation' });
  });

  it('without the TLBI the model still serves the stale translation', () => {
    const { m, ep, d } = mapped(true);
    expect(m.sub.iommuUnmap(d, 0x10_0000n, 0x1000n)).toBe(0x1000n);
    expect(m.cmds()).toEqual([]);
    expect(ep.readSync(0x10_0000n, 1)[0]).toBe(0x5a);
    // flush_iotlb_all with invalidation back on: TLBI_NH_ASID + SYNC, then the DMA faults.
    d.testHooks.skipInvalidation = false;
    iommuFlushIotlbAll(d);
    expect(m.cmds()).toEqual(['TLBI_NH_ASID', 'CMD_SYNC']);
    expect(ep.dmaRead(0x10_0000n, 1).fault).toMatchObject({ reason: 'translation' });
  });

  it('a 64 KiB unmap without RIL sends one TLBI per 4 KiB page in one batch', () => {
    const m = d2Machine({ ril: false });
    const { pdev } = m.pci(0x20);
    const d = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    const pa = m.memory.allocPages(4);
    m.sub.iommuMap(d, 0x20_0000n, BigInt(pa), 0x1_0000n, RW);
    m.cmds();
    m.sub.iommuUnmap(d, 0x20_0000n, 0x1_0000n);
    expect(countOps(m.cmds())).toEqual({ TLBI_NH_VA: 16, CMD_SYNC: 1 });
  });

  it('with RIL the same unmap is one range TLBI', () => {
    const m = d2Machine({ ril: true });
    const { pdev } = m.pci(0x20);
    const d = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    const pa = m.memory.allocPages(4);
    m.sub.iommuMap(d, 0x20_0000n, BigInt(pa), 0x1_0000n, RW);
    m.cmds();
    m.sub.iommuUnmap(d, 0x20_0000n, 0x1_0000n);
    expect(countOps(m.cmds())).toEqual({ TLBI_NH_VA: 1, CMD_SYNC: 1 });
  });
});

describe('E2H (VHE host)', () => {
  it('STEs use StreamWorld EL2 and unmaps send TLBI_EL2_VA', () => {
    const m = d2Machine({ hyp: true }, { e2h: true });
    const { pdev, ep } = m.pci(0x20);
    const ste1 = m.memory.read64(m.smmu.steAddress(0x20) + 8);
    expect((ste1 >> 30n) & 3n).toBe(2n);
    const d = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    const pa = m.memory.allocPages(0);
    m.sub.iommuMap(d, 0x10_0000n, BigInt(pa), 0x1000n, RW);
    ep.writeSync(0x10_0000n, new Uint8Array([3]));
    expect(m.memory.readBytes(pa, 1)[0]).toBe(3);
    m.cmds();
    m.sub.iommuUnmap(d, 0x10_0000n, 0x1000n);
    expect(m.cmds()).toEqual(['TLBI_EL2_VA', 'CMD_SYNC']);
    expect(ep.dmaRead(0x10_0000n, 1).fault).toBeDefined();
  });
});

describe('walk-cache flush', () => {
  it('replacing an empty table by a 2 MiB block flushes the walk over the whole block', () => {
    const m = d2Machine({ ril: false });
    const { pdev } = m.pci(0x20);
    const d = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    const pa = m.memory.allocPages(0);
    m.sub.iommuMap(d, 0x20_0000n, BigInt(pa), 0x1000n, RW);
    m.cmds();
    // Mapping a 2 MiB block over the now-unused table replaces it: io-pgtable flushes the walk.
    m.sub.iommuUnmap(d, 0x20_0000n, 0x1000n);
    const pa2 = m.memory.allocPages(9);
    m.cmds();
    m.sub.iommuMap(d, 0x20_0000n, BigInt(pa2), 0x20_0000n, RW);
    const cmds = m.cmds();
    // No RIL: a 2 MiB walk flush is 512 leaf-granule commands in batches of 64, one SYNC at the end.
    expect(m.smmu.cmdq.log2).toBeGreaterThanOrEqual(10);
    expect(countOps(cmds)).toEqual({ TLBI_NH_VA: 512, CMD_SYNC: 1 });
  });
});
