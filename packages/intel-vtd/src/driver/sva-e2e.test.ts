import { DmaFaultError, type Endpoint } from '@iommu-ts/iommu-core';
import {
  type IommuSva,
  iommuSvaBindDevice,
  iommuSvaGetPasid,
  iommuSvaUnbindDevice,
} from '@iommu-ts/iommu-sva';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@iommu-ts/mm';
import { afterEach, describe, expect, it } from 'vitest';
import type { VtdInvDesc } from '../hw/inv-desc.js';
import { infoOf } from './device-info.js';
import { domainIdIommu, toDmarDomain } from './domain.js';
import { intelIommuIopfRefcount } from './iopf.js';
import { readPasidEntry } from './pasid.js';
import { type SvaMachineOptions, svaMachine } from './sva.test-helpers.js';
import type { IntelSvaDomain } from './svm.js';

const live: IommuSva[] = [];
afterEach(() => {
  for (const s of live.splice(0)) if (s.users > 0) iommuSvaUnbindDevice(s);
});

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function faultReason(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof DmaFaultError) return e.fault.reason;
    throw e;
  }
  return 'none';
}

/** A bound function (PASID + ATS + PRI, PRI enabled at probe) and an x86-64 process with 3 untouched pages. */
function bound(opts: SvaMachineOptions = {}) {
  const m = svaMachine(opts);
  const { pdev, ep } = m.pci(0x20);
  const proc = m.process();
  const buf = proc.mmap(0x3000, RW, ANON);
  m.descs();
  const logAt = m.vtd.iq.log.length;
  const sva = iommuSvaBindDevice(pdev, proc.mm);
  live.push(sva);
  const pasid = iommuSvaGetPasid(sva);
  const info = infoOf(pdev);
  const entry = () => {
    const pa = info.pasidTable?.entry(pasid, false) ?? null;
    if (pa === null) throw new Error('no PASID table leaf');
    return readPasidEntry(m.unit, pa);
  };
  return { m, pdev, ep, proc, buf, sva, pasid, info, entry, logAt, domain: sva.domain as IntelSvaDomain };
}

function write(ep: Endpoint, va: number, s: string, pasid: number) {
  ep.writeSync(BigInt(va), enc(s), { pasid });
}

const waits = (log: readonly VtdInvDesc[]) =>
  log
    .filter((d) => d.type === 'wait')
    .map((d) => (d.type === 'wait' ? { fn: d.fn, sw: d.sw, pd: d.pd } : null));

describe('SVA bind (digest §8.10)', () => {
  it('writes a first-stage PASID entry on the mm page table: DID 1, PWSNP, AW = agaw, FLPM 0, no SRE', () => {
    const { m, pasid, proc, entry, info, domain } = bound();
    expect(pasid).toBeGreaterThan(0);
    const w = entry();
    // qw0: P | AW = 3 (bits 4:2) | PGTT = 001 (bits 8:6); no FPD, no SRE (qw2 bit 0 is SRE).
    expect(w[0]).toBe(0x1n | (3n << 2n) | (1n << 6n));
    expect(w[1]).toBe(1n | (1n << 23n)); // DID 1, PWSNP
    expect(w[2]).toBe(BigInt(proc.mm.pgd)); // FLPTR, FLPM = 0, SRE = 0, WPE = 0
    expect(w.slice(3)).toEqual([0n, 0n, 0n, 0n, 0n]);
    // Not present → present without caching mode: no invalidation descriptor at all.
    expect(m.descs()).toEqual([]);
    // Cache tags: IOTLB (unit, DID 1, PASID) and device-TLB (ATS on).
    expect(domain.cacheTags.map((t) => [t.type, t.domainId, t.pasid])).toEqual([
      ['iotlb', 1, pasid],
      ['devtlb', 1, pasid],
    ]);
    // I/O page faults enabled for the device: on the unit's IOPF queue.
    expect(intelIommuIopfRefcount(info)).toBe(1);
    expect(info.dev.iommu?.faultParam).not.toBeNull();
  });

  it('with caching mode the setup is followed by PASID-cache PSI and PASID-IOTLB "all" with DID 1', () => {
    const { m, pasid } = bound({ config: { cachingMode: true } });
    expect(m.descs()).toEqual([`pc pasid did=1 pasid=${pasid}`, `piotlb pasid did=1 pasid=${pasid}`]);
  });
});

describe('SVA DMA through the PRQ (digest §5, §8.11)', () => {
  it('DMA into freshly mmap-ed pages: page requests go through the PRQ, page group responses, data lands', () => {
    const { m, ep, proc, buf, pasid } = bound();
    expect(proc.mm.pgtable.tablePages).toBe(1);
    write(ep, buf + 0x1000, 'hello vt-d', pasid);
    write(ep, buf + 0x2ffc, 'tail', pasid);
    expect(dec(proc.read(buf + 0x1000, 10))).toBe('hello vt-d');
    expect(dec(proc.read(buf + 0x2ffc, 4))).toBe('tail');
    expect(m.vtd.stats.pageRequests).toBe(2);
    expect(m.unit.stats.prqRequests).toBe(2);
    expect(m.unit.stats.pageResponses).toBe(2);
    expect(m.vtd.stats.prgResponses).toBe(2);
    const resp = m.vtd.iq.log.filter((d) => d.type === 'page-group-response');
    expect(resp).toHaveLength(2);
    expect(resp[0]).toMatchObject({ rid: 0x20, pasidPresent: true, pasid, code: 0 });
    // The device reads what the CPU wrote.
    proc.write(buf, enc('from cpu'));
    expect(dec(ep.readSync(BigInt(buf), 8, { pasid }))).toBe('from cpu');
  });

  it('munmap: PASID-based IOTLB and device-TLB invalidations (ih = 0); the next DMA is answered Invalid', () => {
    const { m, ep, proc, buf, pasid } = bound();
    write(ep, buf, 'x', pasid);
    m.descs();
    proc.munmap(buf, 0x3000);
    const a = BigInt(buf).toString(16);
    // The zap of the one touched page, then freeing the now empty page tables (a 2^27-page range,
    // aligned down to 0x7f8000000000; the device-TLB form encodes the size in the address).
    expect(m.descs()).toEqual([
      `piotlb page did=1 pasid=${pasid} addr=0x${a} am=0 ih=0`,
      `pdevtlb sid=0x20 pasid=${pasid} addr=0x${a} s=0`,
      // 2^27 pages exceed CAP.MAMV (18): the driver flushes the whole PASID instead.
      `piotlb pasid did=1 pasid=${pasid}`,
      `pdevtlb sid=0x20 pasid=${pasid} addr=0x7fbffffff000 s=1`,
    ]);
    expect(ep.atc.size).toBe(0);
    const before = m.unit.stats.pageResponses;
    expect(faultReason(() => write(ep, buf, 'y', pasid))).toBe('pri-invalid');
    // The request reached the PRQ and was answered Invalid (1) by the SVA fault handler.
    expect(m.unit.stats.pageResponses).toBe(before + 1);
    expect(m.vtd.iq.log.filter((d) => d.type === 'page-group-response').at(-1)).toMatchObject({ code: 1 });
  });

  it('without the invalidations the device keeps using the unmapped page (stale IOTLB/ATC)', () => {
    const { ep, proc, buf, pasid, domain } = bound();
    write(ep, buf, 'x', pasid);
    domain.testHooks.skipInvalidation = true;
    proc.munmap(buf, 0x3000);
    expect(faultReason(() => write(ep, buf, 'y', pasid))).toBe('none');
  });
});

describe('SVA teardown (digest §8.7, §8.10 steps 7–8, §5.5 drain)', () => {
  it('unbind: teardown (PASID-cache, PASID-IOTLB, device-TLB), then the PRQ drain with a fenced wait and PD', () => {
    const { m, ep, buf, pasid, sva, info, entry } = bound();
    write(ep, buf, 'x', pasid);
    m.descs();
    const at = m.vtd.iq.log.length;
    const rid = toDmarDomain(info.domain);
    const drainDid = rid === null ? 1 : domainIdIommu(rid, m.unit);
    iommuSvaUnbindDevice(sva);
    expect(m.descs()).toEqual([
      `pc pasid did=1 pasid=${pasid}`,
      `piotlb pasid did=1 pasid=${pasid}`,
      `pdevtlb sid=0x20 pasid=${pasid} addr=0x7ffffffffffff000 s=1`,
      `piotlb pasid did=${drainDid} pasid=${pasid}`,
      `pdevtlb sid=0x20 pasid=${pasid} addr=0x7ffffffffffff000 s=1`,
    ]);
    // Each teardown flush is its own synchronous submission (status-write wait); the drain is
    // {fenced wait without status write, IOTLB, device-TLB, wait with PD}.
    expect(waits(m.vtd.iq.log.slice(at))).toEqual([
      { fn: false, sw: true, pd: false },
      { fn: false, sw: true, pd: false },
      { fn: false, sw: true, pd: false },
      { fn: true, sw: false, pd: false },
      { fn: false, sw: true, pd: true },
    ]);
    expect(entry()).toEqual([0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]);
    expect(intelIommuIopfRefcount(info)).toBe(0);
    expect(info.dev.iommu?.faultParam).toBeNull();
    expect(info.pasidDomains.size).toBe(0);
  });

  it('process exit while bound: FPD-only entry, no drain; DMA then faults; unbind afterwards zeroes and drains', () => {
    const { m, ep, proc, buf, pasid, sva, entry, domain } = bound();
    write(ep, buf, 'x', pasid);
    m.descs();
    const at = m.vtd.iq.log.length;
    proc.exit();
    expect(domain.released).toBe(true);
    expect(entry()).toEqual([2n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]); // FPD only
    const exitDescs = m.descs();
    expect(exitDescs.slice(0, 3)).toEqual([
      `pc pasid did=1 pasid=${pasid}`,
      `piotlb pasid did=1 pasid=${pasid}`,
      `pdevtlb sid=0x20 pasid=${pasid} addr=0x7ffffffffffff000 s=1`,
    ]);
    expect(waits(m.vtd.iq.log.slice(at)).some((w) => w?.pd === true || w?.fn === true)).toBe(false);
    const faults = m.vtd.stats.faulted;
    expect(faultReason(() => write(ep, buf, 'y', pasid))).not.toBe('none');
    expect(m.vtd.stats.faulted + m.vtd.stats.pageRequests).toBeGreaterThan(faults);
    const at2 = m.vtd.iq.log.length;
    iommuSvaUnbindDevice(sva);
    expect(entry()).toEqual([0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]);
    // Nothing present to tear down: only the drain.
    expect(waits(m.vtd.iq.log.slice(at2))).toEqual([
      { fn: true, sw: false, pd: false },
      { fn: false, sw: true, pd: true },
    ]);
  });
});
