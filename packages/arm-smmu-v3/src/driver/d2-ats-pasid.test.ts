import { IOMMU_READ, IOMMU_WRITE, pciAtsEnabled } from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { d2Machine } from './d2.test-helpers.js';
import type { ArmSmmuDomain } from './domain.js';
import { armSmmuIdentityDomain } from './master.js';
import { masterOfDev } from './master-state.js';

const RW = IOMMU_READ | IOMMU_WRITE;

function steWord(m: ReturnType<typeof d2Machine>, sid: number, i: number): bigint {
  return m.memory.read64(m.smmu.steAddress(sid) + i * 8);
}

describe('ATS (spec §8.6, §8.7)', () => {
  it('attach writes EATS=1 first, then flushes the whole ATC, then enables ATS', () => {
    const m = d2Machine();
    m.cmds();
    const { pdev } = m.pci(0x20, { ats: true });
    expect(m.cmds()).toEqual([
      'CFGI_CD',
      'CMD_SYNC',
      'CFGI_CD',
      'CMD_SYNC',
      'CFGI_STE',
      'CMD_SYNC',
      'CFGI_STE',
      'CMD_SYNC',
      'PREFETCH_CFG',
      'ATC_INV',
      'CMD_SYNC',
    ]);
    expect((steWord(m, 0x20, 1) >> 28n) & 3n).toBe(1n);
    expect(pciAtsEnabled(pdev)).toBe(true);
    expect(masterOfDev(pdev).atsEnabled).toBe(true);
    expect((m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain).nrAtsMasters).toBe(1);
  });

  it('ATS-translated DMA; unmap sends TLBI then ATC_INV for the range, and the ATC is empty', () => {
    const m = d2Machine();
    const { pdev, ep } = m.pci(0x20, { ats: true });
    const d = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    const pa = m.memory.allocPages(0);
    m.sub.iommuMap(d, 0x10_0000n, BigInt(pa), 0x1000n, RW);
    ep.writeSync(0x10_0000n, new Uint8Array([0x77]));
    expect(m.memory.readBytes(pa, 1)[0]).toBe(0x77);
    expect(ep.atc.size).toBe(1);
    m.cmds();
    m.sub.iommuUnmap(d, 0x10_0000n, 0x1000n);
    expect(m.cmds()).toEqual(['TLBI_NH_VA', 'CMD_SYNC', 'ATC_INV', 'CMD_SYNC']);
    expect(ep.atc.size).toBe(0);
    expect(ep.dmaRead(0x10_0000n, 1).fault).toBeDefined();
  });

  it('without the invalidation the device keeps using its ATC entry', () => {
    const m = d2Machine();
    const { pdev, ep } = m.pci(0x20, { ats: true });
    const d = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    const pa = m.memory.allocPages(0);
    m.memory.writeBytes(pa, new Uint8Array([0x33]));
    m.sub.iommuMap(d, 0x10_0000n, BigInt(pa), 0x1000n, RW);
    expect(ep.readSync(0x10_0000n, 1)[0]).toBe(0x33);
    d.testHooks.skipInvalidation = true;
    m.sub.iommuUnmap(d, 0x10_0000n, 0x1000n);
    expect(ep.atc.size).toBe(1);
    expect(ep.readSync(0x10_0000n, 1)[0]).toBe(0x33);
  });

  it('identity without PASIDs: ATS disabled before the bypass STE, then the whole ATC is flushed', () => {
    const m = d2Machine();
    const { pdev } = m.pci(0x20, { ats: true });
    const d = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    m.cmds();
    armSmmuIdentityDomain.ops.attachDev?.(armSmmuIdentityDomain, pdev, d);
    expect(m.cmds()).toEqual([
      'CFGI_STE',
      'CMD_SYNC',
      'CFGI_STE',
      'CMD_SYNC',
      'PREFETCH_CFG',
      'ATC_INV',
      'CMD_SYNC',
    ]);
    expect(pciAtsEnabled(pdev)).toBe(false);
    expect(d.nrAtsMasters).toBe(0);
    expect(d.devices).toEqual([]);
  });
});

describe('two-level stream table (spec §8.5)', () => {
  it('a SID in a new L1 span gets its L2 table at probe, without CFGI', () => {
    const m = d2Machine();
    const t = m.smmu.strtab;
    expect(t?.kind).toBe('2lvl');
    const before = t?.kind === '2lvl' ? new Set(t.l2.keys()) : new Set();
    expect(before.has(0x12)).toBe(false);
    m.cmds();
    const { pdev, ep } = m.pci(0x08, { sid: 0x1208 });
    expect(t?.kind === '2lvl' && t.l2.has(0x12)).toBe(true);
    const cmds = m.cmds();
    expect(cmds.filter((c) => c === 'CFGI_STE')).toHaveLength(2); // only the STE update itself
    const d = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    const pa = m.memory.allocPages(0);
    m.sub.iommuMap(d, 0x5000n, BigInt(pa), 0x1000n, RW);
    ep.writeSync(0x5004n, new Uint8Array([0xee]));
    expect(m.memory.readBytes(pa + 4, 1)[0]).toBe(0xee);
  });
});

describe('PASIDs through the CD table (spec §8.3)', () => {
  it('a second stage-1 domain on PASID 5: one CD written (2 CFGI_CD), STE untouched; DMA per PASID', () => {
    const m = d2Machine();
    const { pdev, ep } = m.pci(0x20, { pasidBits: 8 });
    expect(masterOfDev(pdev).ssidBits).toBe(8);
    const rid = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    const d5 = m.sub.iommuPagingDomainAlloc(pdev) as ArmSmmuDomain;
    const paRid = m.memory.allocPages(0);
    const pa5 = m.memory.allocPages(0);
    m.sub.iommuMap(rid, 0x10_0000n, BigInt(paRid), 0x1000n, RW);
    m.sub.iommuMap(d5, 0x10_0000n, BigInt(pa5), 0x1000n, RW);
    m.cmds();
    m.sub.iommuAttachDevicePasid(d5, pdev, 5);
    expect(m.cmds()).toEqual(['CFGI_CD', 'CMD_SYNC', 'CFGI_CD', 'CMD_SYNC']);
    ep.writeSync(0x10_0000n, new Uint8Array([1]));
    ep.writeSync(0x10_0000n, new Uint8Array([5]), { pasid: 5 });
    expect(m.memory.readBytes(paRid, 1)[0]).toBe(1);
    expect(m.memory.readBytes(pa5, 1)[0]).toBe(5);
    expect(masterOfDev(pdev).cdTable?.usedSsids).toBe(1);
    m.sub.iommuDetachDevicePasid(d5, pdev, 5);
    expect(m.cmds()).toEqual(['CFGI_CD', 'CMD_SYNC', 'CFGI_CD', 'CMD_SYNC']);
    expect(masterOfDev(pdev).cdTable?.usedSsids).toBe(0);
    expect(ep.dmaRead(0x10_0000n, 1, { pasid: 5 }).fault).toBeDefined();
  });

  it('stage 2 is refused with EBUSY while a PASID is attached, nothing changes', () => {
    const m = d2Machine({ iidr: 0 });
    const { pdev } = m.pci(0x20, { pasidBits: 8 });
    const d5 = m.sub.iommuPagingDomainAlloc(pdev);
    m.sub.iommuAttachDevicePasid(d5, pdev, 5);
    const s2 = m.sub.iommuPagingDomainAllocFlags(pdev, 1);
    const ste = [0, 1, 2, 3].map((i) => steWord(m, 0x20, i));
    m.cmds();
    expect(() => m.sub.iommuAttachDevice(s2, pdev)).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    expect([0, 1, 2, 3].map((i) => steWord(m, 0x20, i))).toEqual(ste);
    expect(m.cmds()).toEqual([]);
  });

  it('RID on identity + PASID: CD-table STE with S1DSS=bypass (hitless), back to bypass when the PASID goes', () => {
    const m = d2Machine();
    const { pdev, ep } = m.pci(0x20, { pasidBits: 8 });
    m.sub.iommuAttachDevice(armSmmuIdentityDomain, pdev);
    expect(steWord(m, 0x20, 0) & 0xfn).toBe(9n);
    const d5 = m.sub.iommuPagingDomainAlloc(pdev) as ArmSmmuDomain;
    const pa5 = m.memory.allocPages(0);
    m.sub.iommuMap(d5, 0x10_0000n, BigInt(pa5), 0x1000n, RW);
    m.cmds();
    m.sub.iommuAttachDevicePasid(d5, pdev, 5);
    // CD 5 (2 CFGI_CD), then bypass → CD-table STE: Config first is not enough (S1 fields unused
    // before), so DW1 goes first, then DW0: 2 CFGI_STE.
    expect(m.cmds()).toEqual([
      'CFGI_CD',
      'CMD_SYNC',
      'CFGI_CD',
      'CMD_SYNC',
      'CFGI_STE',
      'CMD_SYNC',
      'CFGI_STE',
      'CMD_SYNC',
      'PREFETCH_CFG',
    ]);
    expect(steWord(m, 0x20, 0) & 0xfn).toBe(0xbn);
    expect(steWord(m, 0x20, 1) & 3n).toBe(1n); // S1DSS=bypass
    const direct = m.memory.allocPages(0);
    ep.writeSync(BigInt(direct), new Uint8Array([0x11])); // RID: bypass, IOVA = PA
    expect(m.memory.readBytes(direct, 1)[0]).toBe(0x11);
    ep.writeSync(0x10_0000n, new Uint8Array([0x55]), { pasid: 5 });
    expect(m.memory.readBytes(pa5, 1)[0]).toBe(0x55);
    m.sub.iommuDetachDevicePasid(d5, pdev, 5);
    expect(steWord(m, 0x20, 0) & 0xfn).toBe(9n);
    expect(ep.dmaRead(0x10_0000n, 1, { pasid: 5 }).fault).toBeDefined();
  });

  it('two-level CD table: the leaf of a high PASID is allocated on demand with CFGI_CD(leaf=0)', () => {
    const m = d2Machine();
    const { pdev, ep } = m.pci(0x20, { pasidBits: 16 });
    const master = masterOfDev(pdev);
    expect(master.ssidBits).toBe(16);
    expect(master.cdTable?.s1fmt).toBe(2);
    const d = m.sub.iommuPagingDomainAlloc(pdev) as ArmSmmuDomain;
    const pa = m.memory.allocPages(0);
    m.sub.iommuMap(d, 0x7000n, BigInt(pa), 0x1000n, RW);
    m.cmds();
    m.sub.iommuAttachDevicePasid(d, pdev, 0x1234);
    expect(m.cmds()).toEqual(['CFGI_CD', 'CMD_SYNC', 'CFGI_CD', 'CMD_SYNC', 'CFGI_CD', 'CMD_SYNC']);
    expect(master.cdTable?.leaves[4]).not.toBeNull();
    ep.writeSync(0x7000n, new Uint8Array([0x42]), { pasid: 0x1234 });
    expect(m.memory.readBytes(pa, 1)[0]).toBe(0x42);
  });
});
