import { IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_READ, IOMMU_WRITE } from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { d2Machine } from './d2.test-helpers.js';
import { type ArmSmmuDomain, ArmSmmuDomainStage } from './domain.js';
import { armSmmuBlockedDomain, armSmmuIdentityDomain } from './master.js';
import { masterOfDev } from './master-state.js';

const RW = IOMMU_READ | IOMMU_WRITE;

function steOf(m: ReturnType<typeof d2Machine>, sid: number): bigint[] {
  const pa = m.smmu.steAddress(sid);
  return Array.from({ length: 8 }, (_, i) => m.memory.read64(pa + i * 8));
}

describe('STE/CD transitions: exact CFGI / SYNC counts (spec §8.4)', () => {
  function setup(config = {}) {
    const m = d2Machine(config);
    const { pdev, ep } = m.pci(0x20);
    m.cmds();
    return { m, pdev, ep };
  }

  it('probe of a PCI function: abort STE → CD-table STE (hitless, 2 CFGI_STE) after CD 0 (2 CFGI_CD)', () => {
    const m = d2Machine();
    m.cmds();
    m.pci(0x20);
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
    const ste = steOf(m, 0x20);
    expect((ste[0] as bigint) & 0xfn).toBe(0xbn); // V, Config=S1 translate
    // DW1: S1DSS=SSID0, S1CIR/COR=WBRA, S1CSH=ISH, S1STALLD (FEAT_STALLS, master does not stall)
    expect(ste[1]).toBe(0xd6n | (1n << 27n));
  });

  it('S1 → another S1 domain: CD 0 breaking (3 CFGI_CD), STE unchanged (prefetch only)', () => {
    const { m, pdev } = setup();
    const d2 = m.sub.iommuPagingDomainAlloc(pdev);
    m.sub.iommuAttachDevice(d2, pdev);
    expect(m.cmds()).toEqual([
      'CFGI_CD',
      'CMD_SYNC',
      'CFGI_CD',
      'CMD_SYNC',
      'CFGI_CD',
      'CMD_SYNC',
      'PREFETCH_CFG',
    ]);
  });

  it('S1 → identity (bypass STE): hitless, Config first then DW1 cleanup; → blocked: one store', () => {
    const { m, pdev, ep } = setup();
    armSmmuIdentityDomain.ops.attachDev?.(armSmmuIdentityDomain, pdev, m.sub.iommuGetDomainForDev(pdev));
    expect(m.cmds()).toEqual(['CFGI_STE', 'CMD_SYNC', 'CFGI_STE', 'CMD_SYNC', 'PREFETCH_CFG']);
    expect(steOf(m, 0x20).slice(0, 2)).toEqual([9n, 0n]);
    const pa = m.memory.allocPages(0);
    ep.writeSync(BigInt(pa), new Uint8Array([7]));
    expect(m.memory.readBytes(pa, 1)[0]).toBe(7);
    armSmmuBlockedDomain.ops.attachDev?.(armSmmuBlockedDomain, pdev, armSmmuIdentityDomain);
    expect(m.cmds()).toEqual(['CFGI_STE', 'CMD_SYNC', 'PREFETCH_CFG']);
    expect(steOf(m, 0x20).slice(0, 2)).toEqual([1n, 0n]);
    expect(ep.dmaRead(BigInt(pa), 1).fault).toBeDefined();
  });

  it('S1 → S2 (unmanaged nest parent): breaking STE update, 3 CFGI_STE; DMA through stage 2', () => {
    const { m, pdev, ep } = setup({ iidr: 0 }); // not an MMU-600 r0 (erratum: no nesting)
    const d = m.sub.iommuPagingDomainAllocFlags(pdev, IOMMU_HWPT_ALLOC_NEST_PARENT) as ArmSmmuDomain;
    expect(d.stage).toBe(ArmSmmuDomainStage.S2);
    expect(d.vmid).toBe(1);
    m.sub.iommuAttachDevice(d, pdev);
    expect(m.cmds()).toEqual([
      'CFGI_STE',
      'CMD_SYNC',
      'CFGI_STE',
      'CMD_SYNC',
      'CFGI_STE',
      'CMD_SYNC',
      'PREFETCH_CFG',
    ]);
    const ste = steOf(m, 0x20);
    expect((ste[0] as bigint) & 0xfn).toBe(0xdn);
    expect((ste[2] as bigint) & 0xffffn).toBe(1n);
    const pa = m.memory.allocPages(0);
    m.sub.iommuMap(d, 0x40_0000n, BigInt(pa), 0x1000n, RW);
    ep.writeSync(0x40_0008n, new Uint8Array([0xab, 0xcd]));
    expect([...m.memory.readBytes(pa + 8, 2)]).toEqual([0xab, 0xcd]);
    m.cmds();
    m.sub.iommuUnmap(d, 0x40_0000n, 0x1000n);
    // S2 IPA invalidation, then the nest parent's TLBI_NH_ALL(vmid) with its own SYNC
    expect(m.cmds()).toEqual(['TLBI_S2_IPA', 'CMD_SYNC', 'TLBI_NH_ALL', 'CMD_SYNC']);
    expect(ep.dmaRead(0x40_0008n, 1).fault).toMatchObject({ reason: 'translation' });
  });

  it('VMIDs are per SMMU and freed with the domain; ASIDs are global and freed after the TLBI', () => {
    const { m, pdev } = setup({ iidr: 0 });
    const a = m.sub.iommuPagingDomainAllocFlags(pdev, IOMMU_HWPT_ALLOC_NEST_PARENT) as ArmSmmuDomain;
    const b = m.sub.iommuPagingDomainAllocFlags(pdev, IOMMU_HWPT_ALLOC_NEST_PARENT) as ArmSmmuDomain;
    expect([a.vmid, b.vmid]).toEqual([1, 2]);
    const s1 = m.sub.iommuPagingDomainAlloc(pdev) as ArmSmmuDomain;
    const asid = s1.asid;
    m.cmds();
    m.sub.iommuDomainFree(s1);
    expect(m.cmds()).toEqual(['TLBI_NH_ASID', 'CMD_SYNC']);
    const again = m.sub.iommuPagingDomainAlloc(pdev) as ArmSmmuDomain;
    expect(again.asid).toBe(asid);
    m.sub.iommuDomainFree(a);
    const c = m.sub.iommuPagingDomainAllocFlags(pdev, IOMMU_HWPT_ALLOC_NEST_PARENT) as ArmSmmuDomain;
    expect(c.vmid).toBe(1);
  });

  it('attaching a domain of another SMMU fails with EINVAL and changes nothing', () => {
    const { m, pdev } = setup();
    const other = d2Machine();
    const { pdev: p2 } = other.pci(0x30);
    const foreign = other.sub.iommuPagingDomainAlloc(p2);
    const before = steOf(m, 0x20);
    expect(() => m.sub.iommuAttachDevice(foreign, pdev)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(steOf(m, 0x20)).toEqual(before);
    expect(m.cmds()).toEqual([]);
  });

  it('probe rejects a StreamID already owned by another master (EINVAL) and leaves the stream map as it was', () => {
    const { m } = setup();
    const pdev = m.hb.rootBus.addDevice({ devfn: 0x28 });
    m.sub.iommuFwspecInit(pdev, m.fwnode);
    m.sub.iommuFwspecAddIds(pdev, [0x28, 0x20]);
    const err = m.sub.addDevice(pdev);
    expect(err?.code).toBe('EINVAL');
    expect(m.smmu.streams.has(0x28)).toBe(false);
    expect(m.smmu.streams.get(0x20)?.dev.name).toBe('0000:00:04.0');
  });

  it('the master records its StreamIDs and ssid bits', () => {
    const { pdev } = setup();
    const master = masterOfDev(pdev);
    expect(master.streamIds).toEqual([0x20]);
    expect(master.ssidBits).toBe(0);
  });
});

describe('release and stall', () => {
  it('removing the device leaves an abort STE, no stream entry, and frees its CD table', () => {
    const m = d2Machine();
    const { pdev, ep } = m.pci(0x20, { pasidBits: 4 });
    const d5 = m.sub.iommuPagingDomainAlloc(pdev);
    m.sub.iommuAttachDevicePasid(d5, pdev, 3);
    m.sub.iommuDetachDevicePasid(d5, pdev, 3);
    expect(masterOfDev(pdev).cdTable).not.toBeNull();
    const pages = m.memory.stats().allocatedPages;
    m.sub.removeDevice(pdev);
    expect(steOf(m, 0x20).slice(0, 2)).toEqual([1n, 0n]);
    expect(m.smmu.streams.has(0x20)).toBe(false);
    expect(pdev.iommu).toBeNull();
    expect(m.memory.stats().allocatedPages).toBeLessThan(pages);
    expect(ep.dmaRead(0x1000n, 1).fault).toBeDefined();
  });

  it('STALL_FORCE: every master stalls (CD.S=1, no S1STALLD) and DMA still translates', () => {
    const m = d2Machine({ stallModel: 'forced' });
    const { pdev, ep } = m.pci(0x20);
    expect(masterOfDev(pdev).stallEnabled).toBe(true);
    const ste = steOf(m, 0x20);
    expect(((ste[1] as bigint) >> 27n) & 1n).toBe(0n);
    const cdPa = masterOfDev(pdev).cdTable?.cdPtr(0) ?? 0;
    expect((m.memory.read64(cdPa) >> 44n) & 1n).toBe(1n);
    const d = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    const pa = m.memory.allocPages(0);
    m.sub.iommuMap(d, 0x3000n, BigInt(pa), 0x1000n, RW);
    ep.writeSync(0x3000n, new Uint8Array([9]));
    expect(m.memory.readBytes(pa, 1)[0]).toBe(9);
  });
});
