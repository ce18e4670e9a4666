// End to end: a process binds its address space to a PCI function, which DMAs on its virtual
// addresses through the PASID; page requests are resolved by the mm, the mm's changes reach the
// IOMMU, and the mm's exit stops the device.

import { iommuReportDeviceFault } from '@iommu-ts/io-pgfault';
import { IommuPageResponseCode } from '@iommu-ts/iommu-core';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { setup } from './sva.test-helpers.js';
import { iommuSvaBindDevice, iommuSvaGetPasid, iommuSvaUnbindDevice } from './sva-bind.js';
import { IOMMU_SVA_FEAT_IOPF, iommuSvaDeviceInit } from './sva-device.js';
import { iommuSvaDomainReleased } from './sva-notifier.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

describe('SVA end to end with an Endpoint', () => {
  it('the device writes an untouched buffer through the PASID and the process reads it', () => {
    const { fn, proc, endpoint } = setup();
    const dev = fn();
    const p = proc();
    const va = p.mmap(0x3000, RW, ANON); // not touched: no page yet
    const h = iommuSvaBindDevice(dev, p.mm);
    const ep = endpoint(dev);
    const pasid = iommuSvaGetPasid(h);
    const data = new Uint8Array(0x2800).map((_, i) => i & 0xff);
    const t = ep.dmaWrite(BigInt(va + 0x400), data, { pasid });
    t.wait();
    expect(t.priRounds).toBeGreaterThan(0);
    expect([...p.read(va + 0x400, 0x2800)]).toEqual([...data]);
    iommuSvaUnbindDevice(h);
  });

  it('after munmap the device access is refused INVALID; a write to read-only memory too', () => {
    const { fn, proc, endpoint, drv, sched } = setup();
    const dev = fn();
    const p = proc();
    const va = p.mmap(0x2000, RW, ANON);
    const ro = p.mmap(0x1000, PROT_READ, ANON);
    const h = iommuSvaBindDevice(dev, p.mm);
    const ep = endpoint(dev);
    const pasid = iommuSvaGetPasid(h);
    ep.writeSync(BigInt(va), new Uint8Array([1, 2, 3]), { pasid });
    expect([...p.read(va, 3)]).toEqual([1, 2, 3]);
    p.munmap(va, 0x2000);
    const t = ep.dmaRead(BigInt(va), 3, { pasid });
    sched.runUntilIdle();
    expect(t.fault?.reason).toBe('pri-invalid');
    expect([...ep.readSync(BigInt(ro), 4, { pasid })]).toEqual([0, 0, 0, 0]);
    const w = ep.dmaWrite(BigInt(ro), new Uint8Array([9]), { pasid });
    sched.runUntilIdle();
    expect(w.fault?.reason).toBe('pri-invalid');
    const codes = drv.pageResponses.map((r) => r.msg.code);
    expect(codes.filter((c) => c === IommuPageResponseCode.INVALID)).toHaveLength(2);
    expect(codes).not.toContain(IommuPageResponseCode.FAILURE);
  });

  it('mm exit with a bound device: release once, mm_exit once, later faults INVALID, nothing leaked', () => {
    const { fn, proc, endpoint, drv, sched } = setup();
    const dev = fn();
    const exits: [string, number, unknown][] = [];
    iommuSvaDeviceInit(dev, IOMMU_SVA_FEAT_IOPF, 0, (d, pasid, drvdata) => {
      exits.push([d.name, pasid, drvdata]);
      // The driver may wait: flush whatever the device has in flight.
      sched.runUntilIdle();
    });
    const p = proc();
    const mm = p.mm;
    const va = p.mmap(0x1000, RW, ANON);
    const h = iommuSvaBindDevice(dev, mm, { drvdata: 'ctx-7' });
    const pasid = iommuSvaGetPasid(h);
    const ep = endpoint(dev);
    ep.writeSync(BigInt(va), new Uint8Array([5]), { pasid });
    p.exit();
    expect(exits).toEqual([[dev.name, pasid, 'ctx-7']]);
    expect(drv.calls.filter((c) => c.op === 'mm_release')).toHaveLength(1);
    expect(iommuSvaDomainReleased(h.domain)).toBe(true);
    // DMA on the PASID is blocked now.
    const t = ep.dmaRead(BigInt(va), 1, { pasid });
    sched.runUntilIdle();
    expect(t.fault).toBeDefined();
    // A page request still in flight for that PASID is answered INVALID by the SVA handler.
    const before = drv.pageResponses.length;
    iommuReportDeviceFault(dev, {
      type: 1,
      prm: { flags: 0b111, pasid, grpid: 9, perm: 1, addr: BigInt(va), privateData: [0n, 0n] },
    });
    sched.runUntilIdle();
    expect(drv.pageResponses.slice(before).map((r) => r.msg)).toEqual([
      { pasid, grpid: 9, code: IommuPageResponseCode.INVALID },
    ]);
    // The driver unbinds: domain freed, mm struct released, PASID back in the global space.
    iommuSvaUnbindDevice(h);
    expect(drv.calls.filter((c) => c.op === 'domain_free')).toHaveLength(1);
    expect(mm.count).toBe(0);
    expect(dev.iommuGroup!.pasidArray.size).toBe(0);
    const q = proc();
    expect(iommuSvaGetPasid(iommuSvaBindDevice(dev, q.mm))).toBe(pasid);
  });
});
