import { ERRNO, isErrnoError, subscribeTracepoint } from '@iommu-ts/base';
import { IOMMU_READ, IOMMU_WRITE } from '@iommu-ts/io-pgtable';
import { PhysicalMemory } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { pciDisableAts, pciEnableAts, pciEnablePasid } from './ats.js';
import { PlatformDevice } from './device.js';
import { DmaFaultError, PRG_RESPONSE } from './dma-request.js';
import { Endpoint } from './endpoint.js';
import { testBed } from './endpoint.test-helpers.js';
import type { EndpointPageRequestEvent } from './endpoint-trace.js';
import { PassthroughIommuHw } from './hw-iommu.js';
import {
  PCI_PRI_STATUS_RF,
  PCI_PRI_STATUS_STOPPED,
  PCI_PRI_STATUS_UPRGI,
  pciDisablePri,
  pciEnablePri,
  pciPriClearStatus,
  pciPriStatus,
  pciResetPri,
} from './pri.js';

const RW = IOMMU_READ | IOMMU_WRITE;
const bytes = (...v: number[]) => new Uint8Array(v);

function pciBed(
  caps: { ats?: boolean; pri?: number; pasid?: boolean; pasidRequired?: boolean } = {},
  hw: { stall?: boolean } = {},
) {
  const bed = testBed(hw);
  const pdev = bed.bus.addDevice({
    devfn: 0x08,
    ...(caps.ats ? { ats: { invQueueDepth: 4 } } : {}),
    ...(caps.pri !== undefined
      ? { pri: { maxRequests: caps.pri, prgResponsePasidRequired: caps.pasidRequired ?? false } }
      : {}),
    ...(caps.pasid ? { pasid: { maxPasidWidth: 8, exec: true, priv: true } } : {}),
  });
  if (caps.pasid) expect(pciEnablePasid(pdev, 0)).toBe(0);
  if (caps.ats) expect(pciEnableAts(pdev, 12)).toBe(0);
  if (caps.pri !== undefined) expect(pciEnablePri(pdev, caps.pri)).toBe(0);
  const ep = new Endpoint({ device: pdev, iommu: bed.iommu, scheduler: bed.sched, record: true });
  return { ...bed, pdev, ep, rid: pdev.requesterId };
}

describe('Endpoint: untranslated DMA', () => {
  it('reads and writes the PhysicalMemory bytes the IOMMU translates to', () => {
    const { memory, iommu, ep, rid } = pciBed();
    const pa0 = memory.allocPages(0);
    const pa1 = memory.allocPages(0);
    iommu.map(rid, undefined, 0x10000n, pa0, 4096, RW);
    iommu.map(rid, undefined, 0x11000n, pa1, 4096, RW);
    const t = ep.dmaWrite(0x10ffen, bytes(1, 2, 3, 4));
    expect(t.state).toBe('completed'); // synchronous: nothing waited
    expect([...memory.readBytes(pa0 + 0xffe, 2)]).toEqual([1, 2]);
    expect([...memory.readBytes(pa1, 2)]).toEqual([3, 4]);
    memory.writeBytes(pa1 + 0x10, bytes(9, 8, 7));
    expect([...ep.readSync(0x11010n, 3)]).toEqual([9, 8, 7]);
    expect(ep.stats).toMatchObject({
      issued: 2,
      completed: 2,
      bytesRead: 3,
      bytesWritten: 4,
      memRequests: 2,
    });
  });

  it('gets a fault outcome for an unmapped address and for a write to a read-only page', () => {
    const { memory, iommu, ep, rid } = pciBed();
    const t = ep.dmaRead(0x5000n, 8);
    expect(t.state).toBe('failed');
    expect(t.fault).toMatchObject({ kind: 'fault', reason: 'translation', addr: 0x5000n });
    expect(() => t.result()).toThrow(DmaFaultError);
    iommu.map(rid, undefined, 0x6000n, memory.allocPages(0), 4096, IOMMU_READ);
    let err: unknown;
    try {
      ep.writeSync(0x6000n, bytes(1));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DmaFaultError);
    expect(isErrnoError(err, 'EFAULT')).toBe(true);
    expect((err as DmaFaultError).fault.reason).toBe('permission');
    expect(ep.stats.failed).toBe(2);
  });

  it('validates operations', () => {
    const { ep } = pciBed();
    expect(() => ep.dmaRead(0n, 0)).toThrow(/size/);
    expect(() => ep.dmaRead(0n, 4, { pasid: 1 })).toThrow(/PASID is not enabled/);
    expect(() => ep.dmaRead(0n, 4, { privileged: true })).toThrow(/PASID prefix/);
    expect(() => ep.issue({ access: 'write', addr: 0n, data: bytes(1), exec: true })).toThrow(/instruction/);
    expect(() => ep.dmaRead(0xffff_ffff_ffff_fff0n, 32)).toThrow(/u64/);
    ep.disconnect();
    expect(() => ep.dmaRead(0n, 4)).toThrow(expect.objectContaining({ errno: ERRNO.ENODEV }));
  });

  it('goes straight to RAM through PassthroughIommuHw, with a bus fault outside RAM', () => {
    const memory = new PhysicalMemory({ size: 16 * 2 ** 20 });
    const { sched, bus } = testBed();
    const hw = new PassthroughIommuHw(memory);
    const ep = new Endpoint({ device: bus.addDevice({ devfn: 0x10 }), iommu: hw, scheduler: sched });
    const pa = memory.allocPages(0);
    ep.writeSync(BigInt(pa + 8), bytes(0xaa, 0xbb));
    expect([...memory.readBytes(pa + 8, 2)]).toEqual([0xaa, 0xbb]);
    expect([...ep.readSync(BigInt(pa + 8), 2)]).toEqual([0xaa, 0xbb]);
    const t = ep.dmaRead(0x1000n, 4);
    expect(t.fault?.reason).toBe('bus');
    expect(hw.stats).toMatchObject({ dmaRequests: 3, faults: 1 });
  });
});

describe('Endpoint: ATS', () => {
  it('fills its ATC, hits it on the next access and sends translated requests', () => {
    const { memory, iommu, ep, rid } = pciBed({ ats: true });
    const pa = memory.allocPages(0);
    iommu.map(rid, undefined, 0x20000n, pa, 4096, RW);
    memory.writeBytes(pa + 4, bytes(5, 6));
    expect([...ep.readSync(0x20004n, 2)]).toEqual([5, 6]);
    expect(ep.stats).toMatchObject({ atcMisses: 1, atcHits: 0, atsRequests: 1, translatedRequests: 1 });
    expect(iommu.requests.at(-1)).toMatchObject({ atsTranslated: true, addr: BigInt(pa + 4) });
    ep.writeSync(0x20008n, bytes(7));
    expect(ep.stats).toMatchObject({ atcMisses: 1, atcHits: 1, atsRequests: 1, translatedRequests: 2 });
    expect(memory.readBytes(pa + 8, 1)[0]).toBe(7);
    expect(ep.atc.entries()).toEqual([
      expect.objectContaining({
        start: 0x20000n,
        size: 4096n,
        translated: BigInt(pa),
        read: true,
        write: true,
      }),
    ]);
  });

  it('splits an access at ATC range boundaries', () => {
    const { memory, iommu, ep, rid } = pciBed({ ats: true });
    const a = memory.allocPages(0);
    const b = memory.allocPages(0);
    iommu.map(rid, undefined, 0x30000n, a, 4096, RW);
    iommu.map(rid, undefined, 0x31000n, b, 4096, RW);
    ep.writeSync(0x30ffcn, bytes(1, 2, 3, 4, 5, 6, 7, 8));
    expect([...memory.readBytes(a + 0xffc, 4)]).toEqual([1, 2, 3, 4]);
    expect([...memory.readBytes(b, 4)]).toEqual([5, 6, 7, 8]);
    expect(ep.stats.translatedRequests).toBe(2);
  });

  it('drops entries on an invalidation with the PCIe range encoding and answers with the ITag', () => {
    const { memory, iommu, ep, rid, sched } = pciBed({ ats: true });
    const pages = [0, 1, 2, 3].map(() => memory.allocPages(0));
    for (const [i, pa] of pages.entries())
      iommu.map(rid, undefined, 0x40000n + BigInt(i * 4096), pa, 4096, RW);
    for (let i = 0; i < 4; i++) ep.readSync(0x40000n + BigInt(i * 4096), 1);
    expect(ep.atc.size).toBe(4);
    // 8 KiB at 0x42000: S=1, no one bits above bit 12 → pages 2 and 3 only.
    const itag = iommu.invalidateAtc(rid, undefined, 0x42000n, 0x2000n);
    expect(ep.atc.entries().map((e) => e.start)).toEqual([0x40000n, 0x41000n]);
    expect(ep.stats.atcEntriesInvalidated).toBe(2);
    expect(iommu.invCompletions).toEqual([]); // answered from a scheduler task
    sched.runUntilIdle();
    expect(iommu.invCompletions).toEqual([{ requesterId: rid, itagVector: 1 << itag, completionCount: 1 }]);
    const rec = ep.events.find((r) => r.tp === 'endpoint_atc_inv');
    expect(rec?.event).toMatchObject({ start: 0x42000n, size: 0x2000n, dropped: 2 });
    // Everything (size 0 → the ATS "all" encoding).
    iommu.invalidateAtc(rid, undefined, 0n, 0n);
    expect(ep.atc.size).toBe(0);
  });

  it('keeps using a stale translation until the ATC is invalidated', () => {
    const { memory, iommu, ep, rid } = pciBed({ ats: true });
    const oldPa = memory.allocPages(0);
    const newPa = memory.allocPages(0);
    memory.writeBytes(oldPa, bytes(0x11));
    memory.writeBytes(newPa, bytes(0x22));
    iommu.map(rid, undefined, 0x50000n, oldPa, 4096, RW);
    expect(ep.readSync(0x50000n, 1)[0]).toBe(0x11);
    iommu.unmap(rid, undefined, 0x50000n, 4096);
    iommu.map(rid, undefined, 0x50000n, newPa, 4096, RW);
    expect(ep.readSync(0x50000n, 1)[0]).toBe(0x11); // the forgotten invalidation
    iommu.invalidateAtc(rid, undefined, 0x50000n, 0x1000n);
    expect(ep.readSync(0x50000n, 1)[0]).toBe(0x22);
  });

  it('scopes invalidations by PASID; without a PASID they hit every PASID', () => {
    const { memory, iommu, ep, rid } = pciBed({ ats: true, pasid: true });
    for (const pasid of [1, 2]) {
      iommu.map(rid, pasid, 0x60000n, memory.allocPages(0), 4096, RW);
      ep.readSync(0x60000n, 1, { pasid });
    }
    expect(ep.atc.size).toBe(2);
    iommu.invalidateAtc(rid, 1, 0x60000n, 0x1000n);
    expect(ep.atc.entries().map((e) => e.pasid)).toEqual([2]);
    iommu.invalidateAtc(rid, undefined, 0x60000n, 0x1000n);
    expect(ep.atc.size).toBe(0);
  });

  it('answers invalidations after a latency, or never', () => {
    const a = pciBed({ ats: true });
    const slow = new Endpoint({
      device: a.bus.addDevice({ devfn: 0x20, ats: {} }),
      iommu: a.iommu,
      scheduler: a.sched,
      atsInvalidateLatencyNs: 1000,
    });
    a.iommu.invalidateAtc(slow.requesterId, undefined, 0n, 0n);
    a.sched.advanceBy(999);
    expect(a.iommu.invCompletions).toHaveLength(0);
    a.sched.advanceBy(1);
    expect(a.iommu.invCompletions).toHaveLength(1);
    const broken = new Endpoint({
      device: a.bus.addDevice({ devfn: 0x28, ats: {} }),
      iommu: a.iommu,
      scheduler: a.sched,
      atsInvalidateLatencyNs: null,
    });
    a.iommu.invalidateAtc(broken.requesterId, undefined, 0n, 0n);
    a.sched.runUntilIdle();
    expect(a.iommu.invCompletions).toHaveLength(1);
  });

  it('counts invalidations beyond the queue depth and batches their ITags', () => {
    const { iommu, ep, rid, sched } = pciBed({ ats: true }); // queue depth 4
    for (let i = 0; i < 6; i++) iommu.invalidateAtc(rid, undefined, 0n, 0x1000n);
    expect(ep.stats.atsInvalidateOverflows).toBe(2);
    sched.runUntilIdle();
    expect(iommu.invCompletions).toEqual([{ requesterId: rid, itagVector: 0b111111, completionCount: 1 }]);
  });

  it('fails with UR when the IOMMU refuses ATS, and drops the ATC when ATS is disabled', () => {
    const { memory, iommu, ep, rid, pdev } = pciBed({ ats: true });
    iommu.map(rid, undefined, 0x70000n, memory.allocPages(0), 4096, RW);
    ep.readSync(0x70000n, 1);
    expect(ep.atc.size).toBe(1);
    pciDisableAts(pdev);
    ep.readSync(0x70000n, 1);
    expect(ep.atc.size).toBe(0);
    expect(iommu.requests.at(-1)?.atsTranslated).toBe(false);
    expect(pciEnableAts(pdev, 12)).toBe(0);
    iommu.atsAllowed = false;
    expect(ep.dmaRead(0x70000n, 1).fault?.reason).toBe('unsupported-request');
  });
});

describe('Endpoint: PRI', () => {
  /** A responder that maps each requested page (RW), then answers `code` on the last request. */
  function autoRespond(bed: ReturnType<typeof pciBed>, code: 0 | 1 | 15 = PRG_RESPONSE.SUCCESS, map = true) {
    bed.iommu.onPageRequest = (msg) => {
      if (map && bed.iommu.translate(msg.requesterId, msg.pasid, msg.addr) === undefined)
        bed.iommu.map(msg.requesterId, msg.pasid, msg.addr, bed.memory.allocPages(0), 4096, RW);
      if (msg.last) bed.sched.spawn(() => bed.iommu.respond(msg.requesterId, msg.pasid, msg.prgIndex, code));
    };
  }

  it('sends a page request group, waits for Success and retries the access', () => {
    const bed = pciBed({ ats: true, pri: 32, pasid: true });
    autoRespond(bed);
    const t = bed.ep.dmaWrite(0x80ff0n, new Uint8Array(0x2020).fill(0x5a), { pasid: 3 });
    expect(t.state).toBe('pending');
    // Four STU pages missing → one group of four, L on the last, PASID and W set.
    expect(bed.iommu.prq.map((m) => [m.addr, m.last, m.pasid, m.write, m.prgIndex])).toEqual([
      [0x80000n, false, 3, true, 0],
      [0x81000n, false, 3, true, 0],
      [0x82000n, false, 3, true, 0],
      [0x83000n, true, 3, true, 0],
    ]);
    expect(bed.ep.pri).toMatchObject({ outstanding: 4, groups: 1 });
    expect(t.wait()).toBeUndefined();
    expect(t.state).toBe('completed');
    expect(t.priRounds).toBe(1);
    const back = bed.ep.readSync(0x80ff0n, 0x2020, { pasid: 3 });
    expect(back.every((b) => b === 0x5a)).toBe(true);
    expect(bed.ep.stats).toMatchObject({ prgSent: 1, prgSuccess: 1, pageRequests: 4 });
    expect(bed.ep.pri).toMatchObject({ outstanding: 0, groups: 0 });
  });

  it('uses PRI after an untranslated fault when ATS is off', () => {
    const bed = pciBed({ pri: 8 });
    autoRespond(bed);
    const pa = () => bed.iommu.translate(bed.rid, undefined, 0x90000n)?.pa;
    bed.ep.writeSync(0x90000n, bytes(1, 2, 3));
    expect(pa()).toBeDefined();
    expect([...bed.memory.readBytes(Number(pa()), 3)]).toEqual([1, 2, 3]);
    expect(bed.iommu.prq).toEqual([
      expect.objectContaining({ addr: 0x90000n, last: true, write: true, read: false }),
    ]);
  });

  it('fails the access on Invalid Request', () => {
    const bed = pciBed({ ats: true, pri: 8 });
    autoRespond(bed, PRG_RESPONSE.INVALID_REQUEST, false);
    const t = bed.ep.dmaRead(0xa0000n, 4);
    expect(() => t.wait()).toThrow(DmaFaultError);
    expect(t.fault).toMatchObject({ reason: 'pri-invalid', cause: { reason: 'translation' } });
    expect(bed.ep.stats.prgInvalid).toBe(1);
    expect(bed.ep.pri.responseFailure).toBe(false);
  });

  it('stops PRI on Response Failure until the PRI capability is reset', () => {
    const bed = pciBed({ ats: true, pri: 8 });
    bed.iommu.onPageRequest = undefined;
    const t1 = bed.ep.dmaRead(0xb0000n, 4);
    const t2 = bed.ep.dmaRead(0xc0000n, 4);
    expect(bed.iommu.prq.map((m) => m.prgIndex)).toEqual([0, 1]);
    bed.iommu.respond(bed.rid, undefined, 0, PRG_RESPONSE.RESPONSE_FAILURE);
    expect(t1.fault?.reason).toBe('pri-failure');
    expect(t2.fault?.reason).toBe('pri-failure'); // no further responses are expected
    expect(pciPriStatus(bed.pdev) & PCI_PRI_STATUS_RF).toBe(PCI_PRI_STATUS_RF);
    const t3 = bed.ep.dmaRead(0xd0000n, 4);
    expect(t3.fault).toMatchObject({ reason: 'pri-unavailable', cause: { reason: 'translation' } });
    expect(bed.iommu.prq).toHaveLength(2);
    // The late answer for group 1 is unexpected now.
    bed.iommu.respond(bed.rid, undefined, 1, PRG_RESPONSE.SUCCESS);
    expect(pciPriStatus(bed.pdev) & PCI_PRI_STATUS_UPRGI).toBe(PCI_PRI_STATUS_UPRGI);
    // Recovery as a driver does it: disable, reset, enable.
    expect(pciEnablePri(bed.pdev, 8)).toBe(-ERRNO.EBUSY);
    expect(pciResetPri(bed.pdev)).toBe(-ERRNO.EBUSY);
    pciDisablePri(bed.pdev);
    expect(pciPriStatus(bed.pdev) & PCI_PRI_STATUS_STOPPED).toBe(PCI_PRI_STATUS_STOPPED);
    expect(pciResetPri(bed.pdev)).toBe(0);
    expect(pciPriStatus(bed.pdev) & (PCI_PRI_STATUS_RF | PCI_PRI_STATUS_UPRGI)).toBe(0);
    expect(pciEnablePri(bed.pdev, 8)).toBe(0);
    autoRespond(bed);
    expect([...bed.ep.readSync(0xd0000n, 2)]).toEqual([0, 0]);
  });

  it('waits for outstanding-request credit', () => {
    const bed = pciBed({ ats: true, pri: 2 }); // allocation 2
    const t1 = bed.ep.dmaRead(0xe0000n, 3 * 4096); // 3 pages missing: the group carries 2
    const t2 = bed.ep.dmaRead(0xf0000n, 4);
    expect(bed.iommu.prq.map((m) => [m.addr, m.last])).toEqual([
      [0xe0000n, false],
      [0xe1000n, true],
    ]);
    expect(bed.ep.pri).toMatchObject({ outstanding: 2, waiting: 1 });
    expect(bed.ep.stats.priCreditWaits).toBe(1);
    // Answer the first group: credit returns and t2's request goes out; t1 then needs page 3.
    for (const m of bed.iommu.prq)
      bed.iommu.map(bed.rid, undefined, m.addr, bed.memory.allocPages(0), 4096, RW);
    bed.iommu.respond(bed.rid, undefined, 0, PRG_RESPONSE.SUCCESS);
    bed.sched.runUntilIdle();
    expect(
      bed.iommu.prq
        .slice(2)
        .map((m) => m.addr)
        .sort(),
    ).toEqual([0xe2000n, 0xf0000n]);
    autoRespond(bed);
    for (const m of bed.iommu.prq.slice(2)) {
      bed.iommu.map(bed.rid, undefined, m.addr, bed.memory.allocPages(0), 4096, RW);
      bed.iommu.respond(bed.rid, undefined, m.prgIndex, PRG_RESPONSE.SUCCESS);
    }
    bed.sched.runUntilIdle();
    expect(t1.state).toBe('completed');
    expect(t2.state).toBe('completed');
    expect(t1.priRounds).toBe(2);
  });

  it('ignores responses with a wrong PASID when the PRG response PASID is required', () => {
    const bed = pciBed({ ats: true, pri: 4, pasid: true, pasidRequired: true });
    const t = bed.ep.dmaRead(0x100000n, 4, { pasid: 7 });
    bed.iommu.map(bed.rid, 7, 0x100000n, bed.memory.allocPages(0), 4096, RW);
    bed.iommu.respond(bed.rid, undefined, 0, PRG_RESPONSE.SUCCESS);
    expect(bed.ep.pri.unexpectedPrgIndex).toBe(true);
    pciPriClearStatus(bed.pdev, PCI_PRI_STATUS_UPRGI);
    expect(bed.ep.pri.unexpectedPrgIndex).toBe(false);
    bed.iommu.respond(bed.rid, 7, 0, PRG_RESPONSE.SUCCESS);
    expect(t.wait()).toEqual(new Uint8Array(4));
  });

  it('gives up after maxPriRounds when Success never makes the page available', () => {
    const bed = pciBed({ ats: true, pri: 4 });
    autoRespond(bed, PRG_RESPONSE.SUCCESS, false);
    const t = bed.ep.dmaRead(0x110000n, 4);
    expect(() => t.wait()).toThrow(DmaFaultError);
    expect(t.fault?.reason).toBe('translation');
    expect(t.priRounds).toBe(bed.ep.maxPriRounds);
  });

  it('emits page-request tracepoints', () => {
    const bed = pciBed({ ats: true, pri: 4 });
    const seen: EndpointPageRequestEvent[] = [];
    const off = subscribeTracepoint<EndpointPageRequestEvent>('endpoint_page_request', (e) => seen.push(e));
    autoRespond(bed);
    bed.ep.readSync(0x120000n, 1);
    off();
    expect(seen).toEqual([expect.objectContaining({ prgIndex: 0, addr: 0x120000n, flags: 'r---l' })]);
  });
});

describe('Endpoint: stall', () => {
  function stallBed() {
    const bed = testBed({ stall: true });
    const dev = new PlatformDevice('dma0', { firmwareIds: [0x42], dmaCanStall: true, pasidNumBits: 4 });
    const ep = new Endpoint({ device: dev, iommu: bed.iommu, scheduler: bed.sched });
    return { ...bed, ep };
  }

  it('waits while the IOMMU holds the request and completes on resume', () => {
    const { memory, iommu, ep, sched } = stallBed();
    expect(ep.canStall).toBe(true);
    expect(ep.requesterId).toBe(0x42);
    const t = ep.dmaWrite(0x7000n, bytes(4, 5), { pasid: 2 });
    expect(t.state).toBe('pending');
    expect(iommu.stalled).toHaveLength(1);
    const pa = memory.allocPages(0);
    iommu.map(0x42, 2, 0x7000n, pa, 4096, RW);
    sched.spawn(() => iommu.resume(iommu.stalled[0]!, true));
    expect(t.wait()).toBeUndefined();
    expect([...memory.readBytes(pa, 2)]).toEqual([4, 5]);
    expect(t.stalls).toBe(1);
    expect(ep.stats).toMatchObject({ stalls: 1, stallsResumed: 1 });
  });

  it('fails when the IOMMU terminates the stalled request', () => {
    const { iommu, ep } = stallBed();
    const t = ep.dmaRead(0x9000n, 4);
    iommu.resume(iommu.stalled[0]!, false);
    expect(t.fault?.reason).toBe('terminated');
    expect(ep.stats.stallsTerminated).toBe(1);
  });

  it('reports ETIMEDOUT when nobody answers', () => {
    const { ep } = stallBed();
    expect(() => ep.readSync(0x9000n, 4)).toThrow(expect.objectContaining({ code: 'ETIMEDOUT' }));
  });
});
