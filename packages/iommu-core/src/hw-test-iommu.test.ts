import { Scheduler } from '@iommu-ts/base';
import { PhysicalMemory } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { pciEnableAts, pciEnablePasid } from './ats.js';
import { type Device, PlatformDevice } from './device.js';
import { DmaFaultError } from './dma-request.js';
import { IOMMU_READ } from './domain.js';
import { Endpoint } from './endpoint.js';
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  type IommuFault,
  IommuPageResponseCode,
} from './fault.js';
import { TestIommuHw } from './hw-test-iommu.js';
import { IommuSubsystem } from './iommu-subsystem.js';
import { PCI_ACS_RR, PCI_ACS_UF, PciHostBridge } from './pci.js';
import { pciEnablePri } from './pri.js';
import { TEST_PROT_RW, TestIommu } from './testing/test-iommu.js';

function machine() {
  const memory = new PhysicalMemory({ size: 64 * 2 ** 20 });
  const sched = new Scheduler();
  const sub = new IommuSubsystem();
  const drv = new TestIommu({ memory });
  drv.register(sub);
  const hw = new TestIommuHw(drv, memory);
  const hb = new PciHostBridge();
  return { memory, sched, sub, drv, hw, hb };
}

/** A PCI function behind the test driver, attached to a fresh paging domain. */
function pciSetup(caps: { ats?: boolean; pri?: number; pasid?: boolean } = {}) {
  const m = machine();
  const pdev = m.hb.rootBus.addDevice({
    devfn: 0x20,
    acs: { cap: 0x1f, ctrl: PCI_ACS_RR | PCI_ACS_UF },
    ...(caps.ats ? { ats: {} } : {}),
    ...(caps.pri ? { pri: { maxRequests: caps.pri } } : {}),
    ...(caps.pasid ? { pasid: { maxPasidWidth: 8 } } : {}),
  });
  expect(m.sub.addDevice(pdev)).toBeNull();
  const domain = m.sub.iommuPagingDomainAlloc(pdev);
  m.sub.iommuAttachDevice(domain, pdev);
  if (caps.pasid) expect(pciEnablePasid(pdev, 0)).toBe(0);
  if (caps.ats) expect(pciEnableAts(pdev, 12)).toBe(0);
  if (caps.pri) expect(pciEnablePri(pdev, caps.pri)).toBe(0);
  const ep = new Endpoint({ device: pdev, iommu: m.hw, scheduler: m.sched });
  return { ...m, pdev, domain, ep };
}

describe('Endpoint through the test IOMMU driver', () => {
  it('reads and writes the PhysicalMemory bytes of an iommuMap-ed range', () => {
    const { memory, sub, domain, ep } = pciSetup();
    const pa = memory.allocPages(1); // 8 KiB
    sub.iommuMap(domain, 0x10_0000n, BigInt(pa), 0x2000n, TEST_PROT_RW);
    ep.writeSync(0x10_0ffcn, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    expect([...memory.readBytes(pa + 0xffc, 8)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    memory.writeBytes(pa + 0x1800, new Uint8Array([0xde, 0xad]));
    expect([...ep.readSync(0x10_1800n, 2)]).toEqual([0xde, 0xad]);
  });

  it('gets fault outcomes for unmapped, read-only and unattached accesses', () => {
    const { memory, sub, domain, ep, hw } = pciSetup();
    expect(ep.dmaRead(0x20_0000n, 4).fault).toMatchObject({ reason: 'translation', addr: 0x20_0000n });
    sub.iommuMap(domain, 0x30_0000n, BigInt(memory.allocPages(0)), 0x1000n, IOMMU_READ);
    const t = ep.dmaWrite(0x30_0010n, new Uint8Array([1]));
    expect(t.fault).toMatchObject({ reason: 'permission', addr: 0x30_0000n });
    expect(() => t.result()).toThrow(DmaFaultError);
    sub.iommuDetachDevice(domain, ep.device);
    expect(ep.dmaRead(0x30_0000n, 1).fault?.reason).not.toBe(undefined);
    expect(hw.faults.map((f) => f.reason).slice(0, 2)).toEqual(['translation', 'permission']);
  });

  it('caches ATS translations and drops them on the hardware ATC invalidation', () => {
    const { memory, sub, domain, ep, hw, sched } = pciSetup({ ats: true });
    const pa = memory.allocPages(0);
    sub.iommuMap(domain, 0x40_0000n, BigInt(pa), 0x1000n, TEST_PROT_RW);
    ep.writeSync(0x40_0000n, new Uint8Array([9]));
    ep.readSync(0x40_0000n, 1);
    expect(ep.stats).toMatchObject({ atsRequests: 1, atcHits: 1, translatedRequests: 2 });
    expect(ep.atc.entries()).toEqual([
      expect.objectContaining({ start: 0x40_0000n, translated: BigInt(pa) }),
    ]);
    // The core unmaps; without the ATC invalidation the device still reaches the old page.
    sub.iommuUnmap(domain, 0x40_0000n, 0x1000n);
    expect(ep.readSync(0x40_0000n, 1)[0]).toBe(9);
    const inv = hw.atcInvalidate(ep.requesterId, undefined, 0x40_0000n, 0x1000n);
    expect(ep.atc.size).toBe(0);
    expect(inv.completed).toBe(false);
    sched.runUntilIdle();
    expect(inv.completed).toBe(true);
    expect(ep.dmaRead(0x40_0000n, 1).fault?.reason).toBe('translation');
  });

  it('invalidates the ATC of a PASID when its domain is removed or replaced', () => {
    const { memory, sub, ep, hw, pdev, sched } = pciSetup({ ats: true, pasid: true });
    const a = sub.iommuPagingDomainAlloc(pdev);
    const b = sub.iommuPagingDomainAlloc(pdev);
    const pa = memory.allocPages(0);
    sub.iommuMap(a, 0x50_0000n, BigInt(pa), 0x1000n, TEST_PROT_RW);
    sub.iommuMap(b, 0x50_0000n, BigInt(pa), 0x1000n, TEST_PROT_RW);
    sub.iommuAttachDevicePasid(a, pdev, 3, { domain: a });
    ep.readSync(0x50_0000n, 1, { pasid: 3 });
    expect(ep.atc.size).toBe(1);
    // Replacing the domain at PASID 3 drops what the device cached for it.
    sub.iommuReplaceDevicePasid(b, pdev, 3, { domain: b });
    expect(ep.atc.size).toBe(0);
    expect(hw.atcInvalidations.at(-1)).toMatchObject({ requesterId: ep.requesterId });
    ep.readSync(0x50_0000n, 1, { pasid: 3 });
    expect(ep.atc.size).toBe(1);
    // Detaching it does too: the device then cannot reach the page through a stale entry.
    const before = hw.atcInvalidations.length;
    sub.iommuDetachDevicePasid(b, pdev, 3);
    expect(hw.atcInvalidations.length).toBe(before + 1);
    expect(ep.atc.size).toBe(0);
    sched.runUntilIdle();
    expect(ep.dmaRead(0x50_0000n, 1, { pasid: 3 }).fault).toBeDefined();
  });

  it('completes a PRI page request group after the responder maps the page and answers Success', () => {
    const { memory, sub, domain, ep, hw, sched, pdev } = pciSetup({ ats: true, pri: 16, pasid: true });
    sub.iommuAttachDevicePasid(domain, pdev, 5);
    const seen: IommuFault[] = [];
    hw.onFault = (dev: Device, fault: IommuFault) => {
      seen.push(fault);
      if (!(fault.prm.flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE)) return;
      sched.spawn(() => {
        for (const f of seen)
          sub.iommuMap(domain, f.prm.addr, BigInt(memory.allocPages(0)), 0x1000n, TEST_PROT_RW);
        hw.pageResponse(dev, {
          pasid: fault.prm.pasid,
          grpid: fault.prm.grpid,
          code: IommuPageResponseCode.SUCCESS,
        });
      });
    };
    const t = ep.dmaWrite(0x50_0800n, new Uint8Array(0x1000).fill(7), { pasid: 5 });
    expect(t.state).toBe('pending');
    expect(seen.map((f) => [f.prm.addr, f.prm.flags & 3, f.prm.pasid])).toEqual([
      [0x50_0000n, IOMMU_FAULT_PAGE_REQUEST_PASID_VALID, 5],
      [0x50_1000n, IOMMU_FAULT_PAGE_REQUEST_PASID_VALID | IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE, 5],
    ]);
    t.wait();
    expect(ep.readSync(0x50_0800n, 0x1000, { pasid: 5 }).every((b) => b === 7)).toBe(true);
    expect(t.priRounds).toBe(1);
  });

  it('answers Invalid and Response Failure through the driver page response', () => {
    const { ep, hw, sched } = pciSetup({ ats: true, pri: 16 });
    let code: 0 | 1 | 2 = IommuPageResponseCode.INVALID;
    hw.onFault = (dev, f) => sched.spawn(() => hw.pageResponse(dev, { pasid: 0, grpid: f.prm.grpid, code }));
    expect(() => ep.readSync(0x60_0000n, 4)).toThrow(DmaFaultError);
    code = IommuPageResponseCode.FAILURE;
    const t = ep.dmaRead(0x60_0000n, 4);
    sched.runUntilIdle();
    expect(t.fault?.reason).toBe('pri-failure');
    expect(ep.pri.responseFailure).toBe(true);
  });

  it('stalls a dma-can-stall platform device and resumes it after the page response', () => {
    const m = machine();
    const dev = new PlatformDevice('stall0', { firmwareIds: [0x77], dmaCanStall: true });
    expect(m.sub.addDevice(dev)).toBeNull();
    const domain = m.sub.iommuPagingDomainAlloc(dev);
    m.sub.iommuAttachDevice(domain, dev);
    const ep = new Endpoint({ device: dev, iommu: m.hw, scheduler: m.sched });
    m.hw.onFault = (d, f) =>
      m.sched.spawn(() => {
        if (f.prm.addr === 0x70_0000n) {
          m.sub.iommuMap(domain, f.prm.addr, BigInt(m.memory.allocPages(0)), 0x1000n, TEST_PROT_RW);
          m.hw.pageResponse(d, { pasid: 0, grpid: f.prm.grpid, code: IommuPageResponseCode.SUCCESS });
        } else {
          m.hw.pageResponse(d, { pasid: 0, grpid: f.prm.grpid, code: IommuPageResponseCode.INVALID });
        }
      });
    const ok = ep.dmaWrite(0x70_0000n, new Uint8Array([1, 2]));
    const bad = ep.dmaWrite(0x71_0000n, new Uint8Array([1, 2]));
    expect([ok.state, bad.state]).toEqual(['pending', 'pending']);
    expect(m.hw.stalled).toHaveLength(2);
    m.sched.runUntilIdle();
    expect(ok.state).toBe('completed');
    expect(bad.fault?.reason).toBe('terminated');
    expect([...ep.readSync(0x70_0000n, 2)]).toEqual([1, 2]);
    expect(ep.stats).toMatchObject({ stalls: 2, stallsResumed: 1, stallsTerminated: 1 });
  });

  it('refuses ATS for functions without ATS enabled', () => {
    const { hw, ep } = pciSetup();
    expect(
      hw.atsTranslate({
        requesterId: ep.requesterId,
        addr: 0n,
        noWrite: false,
        exec: false,
        privileged: false,
      }),
    ).toMatchObject({ status: 'ur' });
    const t = hw.dmaAccess({
      requesterId: ep.requesterId,
      addr: 0x4000_0000n,
      size: 1,
      access: 'read',
      exec: false,
      privileged: false,
      atsTranslated: true,
    });
    expect(t).toMatchObject({ kind: 'fault', reason: 'ats-not-allowed' });
  });
});
