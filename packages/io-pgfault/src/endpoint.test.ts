// End to end: an Endpoint's DMA faults in the test IOMMU hardware, the "driver" reports the page
// requests (PRI) or stalls to io-pgfault, a domain handler resolves them, and the response goes
// back through the driver's page_response to the device.

import { Scheduler } from '@iommu-ts/base';
import {
  Endpoint,
  type IommuDomain,
  IommuPageResponseCode,
  IommuSubsystem,
  type PciDevice,
  PciHostBridge,
  PlatformDevice,
  pciEnableAts,
  pciEnablePasid,
  pciEnablePri,
} from '@iommu-ts/iommu-core';
import { TEST_PROT_RW, TestIommu, TestIommuHw } from '@iommu-ts/iommu-core/testing';
import { PhysicalMemory } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { iopfQueueAddDevice, iopfQueueAlloc, iopfQueueRemoveDevice } from './iopf-queue.js';
import { iommuReportDeviceFault } from './report.js';
import { iopfWorkHandler } from './work-handler.js';

function machine() {
  const memory = new PhysicalMemory({ size: 64 * 2 ** 20 });
  const sched = new Scheduler();
  const sub = new IommuSubsystem();
  const drv = new TestIommu({ memory });
  drv.register(sub);
  const hw = new TestIommuHw(drv, memory);
  // The driver's page_response goes to the hardware (a PRG response or a RESUME).
  const record = drv.ops.pageResponse!;
  drv.ops.pageResponse = (dev, evt, msg) => {
    record(dev, evt, msg);
    hw.pageResponse(dev, msg);
  };
  // The driver's PRQ/event thread reports what the hardware queued.
  hw.onFault = (dev, fault) => sched.spawn(() => iommuReportDeviceFault(dev, fault), 'prq-thread');
  const queue = iopfQueueAlloc('test-iommu', { scheduler: sched });
  return { memory, sched, sub, drv, hw, queue };
}

/** A resolver that maps a fresh page at the faulting address unless `refuse` says otherwise. */
function mapOnFault(
  sub: IommuSubsystem,
  memory: PhysicalMemory,
  domain: () => IommuDomain,
  code: (addr: bigint) => IommuPageResponseCode = () => IommuPageResponseCode.SUCCESS,
) {
  return iopfWorkHandler((f) => {
    const c = code(f.fault.prm.addr);
    if (c === IommuPageResponseCode.SUCCESS)
      sub.iommuMap(domain(), f.fault.prm.addr, BigInt(memory.allocPages(0)), 0x1000n, TEST_PROT_RW);
    return c;
  });
}

function pciPasidDevice(m: ReturnType<typeof machine>, pasidRequired: boolean): PciDevice {
  const pdev = new PciHostBridge().rootBus.addDevice({
    devfn: 0x20,
    acs: { cap: 0x1f, ctrl: 0x1f },
    ats: {},
    pri: { maxRequests: 16, prgResponsePasidRequired: pasidRequired },
    pasid: { maxPasidWidth: 8 },
  });
  m.sub.addDevice(pdev);
  expect(pciEnablePasid(pdev, 0)).toBe(0);
  expect(pciEnableAts(pdev, 12)).toBe(0);
  expect(pciEnablePri(pdev, 16)).toBe(0);
  iopfQueueAddDevice(m.queue, pdev);
  return pdev;
}

describe('PRI end to end', () => {
  for (const pasidRequired of [true, false]) {
    it(`resolves a two-page group and the device retries (PRG response PASID required: ${pasidRequired})`, () => {
      const m = machine();
      const pdev = pciPasidDevice(m, pasidRequired);
      const domain = m.sub.iommuPagingDomainAlloc(pdev);
      domain.iopfHandler = mapOnFault(m.sub, m.memory, () => domain);
      m.sub.iommuAttachDevicePasid(domain, pdev, 5, { domain });
      const ep = new Endpoint({ device: pdev, iommu: m.hw, scheduler: m.sched });
      const t = ep.dmaWrite(0x50_0800n, new Uint8Array(0x1000).fill(7), { pasid: 5 });
      t.wait();
      expect(t.priRounds).toBe(1);
      expect(ep.readSync(0x50_0800n, 0x1000, { pasid: 5 }).every((b) => b === 7)).toBe(true);
      // One response for the two-request group, carrying PASID 5 and the group index.
      expect(m.drv.pageResponses.map((r) => r.msg)).toEqual([
        { pasid: 5, grpid: m.hw.pageRequests[1]!.prgIndex, code: IommuPageResponseCode.SUCCESS },
      ]);
      expect(ep.stats).toMatchObject({ prgSuccess: 1, prgUnexpected: 0 });
    });
  }

  it('INVALID aborts the request; FAILURE stops page requests on the function', () => {
    const m = machine();
    const pdev = pciPasidDevice(m, true);
    const domain = m.sub.iommuPagingDomainAlloc(pdev);
    domain.iopfHandler = mapOnFault(
      m.sub,
      m.memory,
      () => domain,
      (a) => (a === 0x10_0000n ? IommuPageResponseCode.INVALID : IommuPageResponseCode.FAILURE),
    );
    m.sub.iommuAttachDevicePasid(domain, pdev, 5, { domain });
    const ep = new Endpoint({ device: pdev, iommu: m.hw, scheduler: m.sched });
    const a = ep.dmaRead(0x10_0000n, 4, { pasid: 5 });
    m.sched.runUntilIdle();
    expect(a.fault?.reason).toBe('pri-invalid');
    const b = ep.dmaRead(0x20_0000n, 4, { pasid: 5 });
    m.sched.runUntilIdle();
    expect(b.fault?.reason).toBe('pri-failure');
    expect(ep.stats).toMatchObject({ prgInvalid: 1, prgFailure: 1 });
    // After Response Failure the function sends no more page requests.
    const sent = m.hw.pageRequests.length;
    const c = ep.dmaRead(0x30_0000n, 4, { pasid: 5 });
    m.sched.runUntilIdle();
    expect(c.fault?.reason).toBe('pri-unavailable');
    expect(m.hw.pageRequests.length).toBe(sent);
  });

  it('answers INVALID to requests for a PASID with nothing attached', () => {
    const m = machine();
    const pdev = pciPasidDevice(m, true);
    const ep = new Endpoint({ device: pdev, iommu: m.hw, scheduler: m.sched });
    const t = ep.dmaRead(0x10_0000n, 4, { pasid: 9 });
    m.sched.runUntilIdle();
    // No domain at PASID 9: the translation request is refused before PRI, or PRI is answered INVALID.
    expect(t.state).toBe('failed');
    expect(m.drv.pageResponses.every((r) => r.msg.code === IommuPageResponseCode.INVALID)).toBe(true);
  });

  it('removing the device with a group in flight answers it once, and the device sees it', () => {
    const m = machine();
    const pdev = pciPasidDevice(m, true);
    const domain = m.sub.iommuPagingDomainAlloc(pdev);
    domain.iopfHandler = () => {}; // holds groups forever (user-space style)
    m.sub.iommuAttachDevicePasid(domain, pdev, 5, { domain });
    const ep = new Endpoint({ device: pdev, iommu: m.hw, scheduler: m.sched });
    const t = ep.dmaRead(0x10_0000n, 4, { pasid: 5 });
    m.sched.runUntilIdle();
    expect(t.state).toBe('pending');
    iopfQueueRemoveDevice(m.queue, pdev);
    m.sched.runUntilIdle();
    expect(t.fault?.reason).toBe('pri-invalid');
    expect(m.drv.pageResponses).toHaveLength(1);
  });
});

describe('stall end to end', () => {
  it('resumes a stalled transaction on SUCCESS and terminates it on INVALID', () => {
    const m = machine();
    const dev = new PlatformDevice('stall0', { firmwareIds: [0x77], dmaCanStall: true });
    m.sub.addDevice(dev);
    iopfQueueAddDevice(m.queue, dev);
    const domain = m.sub.iommuPagingDomainAlloc(dev);
    domain.iopfHandler = mapOnFault(
      m.sub,
      m.memory,
      () => domain,
      (a) => (a === 0x70_0000n ? IommuPageResponseCode.SUCCESS : IommuPageResponseCode.INVALID),
    );
    m.sub.iommuGroupClaimDmaOwner(dev.iommuGroup!, {});
    m.sub.iommuAttachGroupHandle(domain, dev.iommuGroup!, { domain });
    const ep = new Endpoint({ device: dev, iommu: m.hw, scheduler: m.sched });
    const ok = ep.dmaWrite(0x70_0000n, new Uint8Array([1, 2, 3]));
    const bad = ep.dmaWrite(0x80_0000n, new Uint8Array([1]));
    m.sched.runUntilIdle();
    expect(ok.state).toBe('completed');
    expect([...ep.readSync(0x70_0000n, 3)]).toEqual([1, 2, 3]);
    expect(bad.fault?.reason).toBe('terminated');
    // Each stall is its own group; the stall tag is the group index; no PASID.
    expect(m.drv.pageResponses.map((r) => [r.msg.pasid, r.msg.code])).toEqual([
      [0, IommuPageResponseCode.SUCCESS],
      [0, IommuPageResponseCode.INVALID],
    ]);
    expect(m.hw.stalled).toEqual([]);
  });
});
