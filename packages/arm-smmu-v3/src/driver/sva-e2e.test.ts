import { DmaFaultError, type Endpoint } from '@iommu-ts/iommu-core';
import {
  type IommuSva,
  iommuSvaBindDevice,
  iommuSvaGetPasid,
  iommuSvaUnbindDevice,
} from '@iommu-ts/iommu-sva';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@iommu-ts/mm';
import { afterEach, describe, expect, it } from 'vitest';
import { TLB_REGIME_NS_EL1, tlbTag } from '../hw/tlb.js';
import { CTXDESC_CD_0_R, CTXDESC_CD_0_S, CTXDESC_CD_0_TCR_EPD0, CTXDESC_CD_0_V } from './cd.js';
import { masterOfDev } from './master-state.js';
import type { ArmSmmuSvaDomain } from './sva.js';
import { svaMachine } from './sva.test-helpers.js';

// The ASID space is global (all SMMUs): release every binding a test left behind.
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

function cdWord(
  m: ReturnType<typeof svaMachine>,
  dev: Parameters<typeof masterOfDev>[0],
  ssid: number,
  i: number,
) {
  const pa = masterOfDev(dev).cdTable?.cdPtr(ssid);
  if (pa === null || pa === undefined) throw new Error('no CD');
  return m.memory.read64(pa + i * 8);
}

/** The model's stage-1 TLB entry (NS-EL1, VMID 0, TTB0) of `asid` translating `va`, if cached. */
function smmuEntry(m: ReturnType<typeof svaMachine>, asid: number, va: number) {
  return m.model.tlb.peek(tlbTag(TLB_REGIME_NS_EL1, false, 0, 0, asid), va);
}

/** A bound PCI function and process with an untouched 3-page buffer. */
function boundPci(opts: Parameters<typeof svaMachine>[0] = {}, caps: { ats?: boolean } = {}) {
  const m = svaMachine(opts);
  const { pdev, ep } = m.pci(0x20, caps);
  m.enableSva(pdev);
  const proc = m.machine.createProcess({ arch: 'arm64' });
  const buf = proc.mmap(0x3000, RW, ANON);
  const sva = iommuSvaBindDevice(pdev, proc.mm);
  live.push(sva);
  const pasid = iommuSvaGetPasid(sva);
  return { m, pdev, ep, proc, buf, sva, pasid, domain: sva.domain as ArmSmmuSvaDomain };
}

function write(ep: Endpoint, va: number, s: string, pasid: number) {
  ep.writeSync(BigInt(va), enc(s), { pasid });
}

describe('SVA with PCI PASID + PRI (private ASID, current Linux)', () => {
  it('DMA into mmap-ed, never-touched memory: page requests are resolved, data lands in the process', () => {
    const { m, ep, proc, buf, pasid } = boundPci();
    expect(proc.mm.pgtable.tablePages).toBe(1); // nothing faulted in yet
    write(ep, buf + 0x1000, 'hello smmu', pasid);
    write(ep, buf + 0x2ffc, 'tail', pasid);
    expect(dec(proc.read(buf + 0x1000, 10))).toBe('hello smmu');
    expect(dec(proc.read(buf + 0x2ffc, 4))).toBe('tail');
    expect(m.model.stats.pageRequests).toBeGreaterThanOrEqual(2);
    expect(m.model.stats.prgResponses).toBe(m.model.stats.pageRequests);
    // The device reads what the CPU wrote.
    proc.write(buf, enc('from cpu'));
    expect(dec(ep.readSync(BigInt(buf), 8, { pasid }))).toBe('from cpu');
  });

  it('munmap sends range TLBI_NH_VA for the zap and the freed tables; the next DMA faults (pri-invalid)', () => {
    const { m, ep, proc, buf, pasid, domain } = boundPci();
    write(ep, buf, 'x', pasid);
    m.cmds();
    proc.munmap(buf, 0x3000);
    // The zap: one range TLBI_NH_VA (RIL) + SYNC for the 3 pages; then freeing the now-empty
    // page tables is, on CPUs without TLBI range, a flush_tlb_mm whose notifier range is the
    // whole address space: TLBI by ASID. No ATS master: no ATC_INV.
    expect(m.cmds()).toEqual(['TLBI_NH_VA', 'CMD_SYNC', 'TLBI_NH_ASID', 'CMD_SYNC']);
    const va = m.model.cmdq.log.filter((c) => c.op === 'TLBI_NH_VA').at(-1);
    expect(va).toMatchObject({ asid: domain.asid, addr: BigInt(buf), leaf: false });
    expect(faultReason(() => write(ep, buf, 'y', pasid))).toBe('pri-invalid');
  });

  it('without the invalidation the model would keep translating the unmapped page (stale IOTLB)', () => {
    const { m, ep, proc, buf, pasid, domain } = boundPci();
    write(ep, buf, 'x', pasid);
    domain.testHooks.skipInvalidation = true;
    proc.munmap(buf, 0x3000);
    expect(faultReason(() => write(ep, buf, 'y', pasid))).toBe('none');
    expect(m.model.tlb.stats.hits).toBeGreaterThan(0);
  });

  it('process exit while bound: dead CD (EPD0, V kept, R cleared), TLBI by ASID, DMA fails; unbind is clean', () => {
    const { m, pdev, ep, proc, buf, pasid, sva, domain } = boundPci();
    write(ep, buf, 'x', pasid);
    m.cmds();
    proc.exit();
    expect(domain.released).toBe(true);
    const dw0 = cdWord(m, pdev, pasid, 0);
    expect(dw0 & CTXDESC_CD_0_V).toBe(CTXDESC_CD_0_V);
    expect(dw0 & CTXDESC_CD_0_TCR_EPD0).toBe(CTXDESC_CD_0_TCR_EPD0);
    expect(dw0 & CTXDESC_CD_0_R).toBe(0n);
    expect(cdWord(m, pdev, pasid, 1)).toBe(0n);
    const cmds = m.cmds();
    expect(cmds.slice(-2)).toEqual(['TLBI_NH_ASID', 'CMD_SYNC']);
    expect(cmds.filter((c) => c === 'CFGI_CD').length).toBeGreaterThanOrEqual(1);
    // The dead CD translates nothing (EPD0 and EPD1): a translation fault, never a bypass. The PRI
    // capable function asks for the page and the OS answers the group with a failure.
    expect(faultReason(() => write(ep, buf, 'y', pasid))).toBe('pri-invalid');
    expect(m.cmds()).toEqual(['PRI_RESP']);
    const asid = domain.asid;
    iommuSvaUnbindDevice(sva);
    expect(cdWord(m, pdev, pasid, 0)).toBe(0n);
    // Clearing a valid CD is a breaking update (V=0, then the other qwords), then the TLBI by ASID.
    expect(m.cmds()).toEqual(['CFGI_CD', 'CMD_SYNC', 'CFGI_CD', 'CMD_SYNC', 'TLBI_NH_ASID', 'CMD_SYNC']);
    expect(domain.asid).toBe(0);
    expect(asid).toBeGreaterThan(0);
  });

  it('ATS-capable function: translated DMA, and munmap sends ATC_INV with the PASID; the ATC is empty after', () => {
    const { m, ep, proc, buf, pasid, domain } = boundPci({}, { ats: true });
    write(ep, buf, 'ats!', pasid);
    expect(dec(proc.read(buf, 4))).toBe('ats!');
    expect(domain.nrAtsMasters).toBe(1);
    expect(ep.atc.size).toBeGreaterThan(0);
    m.cmds();
    proc.munmap(buf, 0x3000);
    const cmds = m.cmds();
    expect(cmds).toContain('ATC_INV');
    const atcInv = m.model.cmdq.log.filter((c) => c.op === 'ATC_INV').at(-1);
    expect(atcInv).toMatchObject({ op: 'ATC_INV', sid: 0x20, ssv: true, ssid: pasid });
    expect(ep.atc.size).toBe(0);
    expect(faultReason(() => write(ep, buf, 'y', pasid))).toBe('pri-invalid');
  });
});

describe('SVA with a dma-can-stall platform device (stall model)', () => {
  it('stalled faults resolved by the SVA handler; CD.S = 1; munmap then DMA → terminated', () => {
    const m = svaMachine();
    const { dev, ep } = m.platform('accel', 0x40);
    const master = masterOfDev(dev);
    expect(master.stallEnabled).toBe(true);
    expect(master.ssidBits).toBe(8);
    m.enableSva(dev);
    const proc = m.machine.createProcess({ arch: 'arm64' });
    const buf = proc.mmap(0x2000, RW, ANON);
    const sva = iommuSvaBindDevice(dev, proc.mm);
    const pasid = iommuSvaGetPasid(sva);
    expect(cdWord(m, dev, pasid, 0) & CTXDESC_CD_0_S).toBe(CTXDESC_CD_0_S);
    // STE.S1STALLD (DW1 bit 27) clear for a stall-enabled master.
    expect((m.memory.read64(m.smmu.steAddress(0x40) + 8) >> 27n) & 1n).toBe(0n);
    write(ep, buf + 0x1800, 'stalled then resumed', pasid);
    expect(dec(proc.read(buf + 0x1800, 20))).toBe('stalled then resumed');
    expect(m.model.stats.stalls).toBeGreaterThanOrEqual(1);
    expect(m.model.cmdq.log.some((c) => c.op === 'RESUME')).toBe(true);
    proc.munmap(buf, 0x2000);
    expect(faultReason(() => write(ep, buf, 'y', pasid))).toBe('terminated');
    expect(m.model.stalledCount).toBe(0);
    iommuSvaUnbindDevice(sva);
  });

  it('process exit: the stall-enabled master gets a dead CD with S and R cleared; DMA aborts at once', () => {
    const m = svaMachine();
    const { dev, ep } = m.platform('accel', 0x40);
    m.enableSva(dev);
    const proc = m.machine.createProcess({ arch: 'arm64' });
    const buf = proc.mmap(0x1000, RW, ANON);
    const sva = iommuSvaBindDevice(dev, proc.mm);
    const pasid = iommuSvaGetPasid(sva);
    write(ep, buf, 'a', pasid);
    proc.exit();
    const dw0 = cdWord(m, dev, pasid, 0);
    expect(dw0 & (CTXDESC_CD_0_S | CTXDESC_CD_0_R)).toBe(0n);
    const stalls = m.model.stats.stalls;
    expect(faultReason(() => write(ep, buf, 'b', pasid))).not.toBe('none');
    expect(m.model.stats.stalls).toBe(stalls);
    iommuSvaUnbindDevice(sva);
  });
});

describe("SVA with the seed's shared CPU ASID", () => {
  it('with BTM the CPU broadcast TLBIs reach the SMMU: munmap issues no SMMU TLBI, and the next DMA faults', () => {
    const { m, ep, proc, buf, pasid, domain, sva } = boundPci({ asidMode: 'shared', config: { btm: true } });
    expect(m.model.broadcastAttached).toBe(true);
    expect(domain.asid).toBe(proc.mm.asid);
    expect(m.machine.asids.contextOf(proc.mm).pinned).toBe(1);
    write(ep, buf, 'btm', pasid);
    expect(dec(proc.read(buf, 3))).toBe('btm');
    // The SMMU cached the translation from the ASET = 0 CD.
    expect(smmuEntry(m, domain.asid, buf)?.aset).toBe(false);
    m.cmds();
    const seen = m.model.stats.tlbBroadcasts;
    proc.munmap(buf, 0x3000);
    expect(m.cmds()).toEqual([]); // no ATS master: nothing for the SMMU to do
    expect(m.tlbiSeen.some((op) => op.kind !== 'vmalle1is' && 'asid' in op && op.asid === domain.asid)).toBe(
      true,
    );
    // The model itself applied the CPU's broadcasts (no test bridge): the entry is gone.
    expect(m.model.stats.tlbBroadcasts).toBeGreaterThan(seen);
    expect(smmuEntry(m, domain.asid, buf)).toBeUndefined();
    expect(faultReason(() => write(ep, buf, 'y', pasid))).toBe('pri-invalid');
    iommuSvaUnbindDevice(sva);
  });

  it('with BTM a private-ASID (ASET = 1) binding is not cleaned by broadcasts: only the driver commands do it', () => {
    const { m, ep, proc, buf, pasid, domain } = boundPci({ asidMode: 'private', config: { btm: true } });
    expect(m.model.broadcastAttached).toBe(true);
    write(ep, buf, 'x', pasid);
    expect(smmuEntry(m, domain.asid, buf)?.aset).toBe(true);
    // CPU broadcasts naming the SMMU's private ASID (as if a CPU reused that number) change nothing.
    const asid = domain.asid;
    m.machine.tlb.flushTlbPage(asid, buf);
    m.machine.tlb.flushTlbRange(asid, buf, buf + 0x3000, { rangeSupported: true });
    m.machine.tlb.flushTlbMm(asid);
    m.machine.tlb.flushTlbAll();
    expect(smmuEntry(m, asid, buf)).toBeDefined();
    m.cmds();
    proc.munmap(buf, 0x3000);
    // The driver invalidates explicitly, and that is what removes the entry.
    expect(m.cmds()).toContain('TLBI_NH_VA');
    expect(smmuEntry(m, asid, buf)).toBeUndefined();
    expect(faultReason(() => write(ep, buf, 'y', pasid))).toBe('pri-invalid');
  });

  it('with BTM but without the driver commands a private-ASID binding keeps a stale translation', () => {
    const { m, ep, proc, buf, pasid, domain } = boundPci({ asidMode: 'private', config: { btm: true } });
    write(ep, buf, 'x', pasid);
    domain.testHooks.skipInvalidation = true;
    const seen = m.model.stats.tlbBroadcasts;
    proc.munmap(buf, 0x3000);
    // Private ASIDs go with CR2.PTM set (today's Linux): the SMMU ignores the CPU's broadcasts
    // altogether, and even one naming the private ASID could not reach an ASET = 1 entry.
    m.machine.tlb.flushTlbRange(domain.asid, buf, buf + 0x3000, { rangeSupported: true });
    m.machine.tlb.flushTlbMm(domain.asid);
    m.machine.tlb.flushTlbAll();
    expect(m.model.stats.tlbBroadcasts).toBe(seen);
    expect(smmuEntry(m, domain.asid, buf)?.aset).toBe(true);
    expect(faultReason(() => write(ep, buf, 'y', pasid))).toBe('none');
  });

  it('without BTM the shared ASID is invalidated explicitly (TLBI_NH_VA)', () => {
    const { m, ep, proc, buf, pasid, domain, sva } = boundPci({ asidMode: 'shared', config: { btm: false } });
    expect(domain.asid).toBe(proc.mm.asid);
    write(ep, buf, 'nobtm', pasid);
    m.cmds();
    proc.munmap(buf, 0x3000);
    expect(m.cmds()).toContain('TLBI_NH_VA');
    expect(faultReason(() => write(ep, buf, 'y', pasid))).toBe('pri-invalid');
    iommuSvaUnbindDevice(sva);
  });

  it('exit in shared mode writes the quiet CD (EPD0 set, TTB0 kept); unbind unpins the CPU ASID', () => {
    const { m, pdev, proc, pasid, sva } = boundPci({ asidMode: 'shared' });
    const ttb0 = cdWord(m, pdev, pasid, 1);
    expect(ttb0).toBe(BigInt(proc.mm.pgd));
    const mm = proc.mm;
    proc.exit();
    expect(cdWord(m, pdev, pasid, 0) & CTXDESC_CD_0_TCR_EPD0).toBe(CTXDESC_CD_0_TCR_EPD0);
    expect(cdWord(m, pdev, pasid, 1)).toBe(ttb0);
    iommuSvaUnbindDevice(sva);
    expect(m.machine.asids.contextOf(mm).pinned).toBe(0);
  });
});
