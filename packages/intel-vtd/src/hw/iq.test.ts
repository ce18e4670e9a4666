import { dmaRequest } from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { encodeVtdInvDesc } from './inv-desc.js';
import { PGTT } from './pasid-table.js';
import {
  DMA_FSTS_ICE,
  DMA_FSTS_IQE,
  DMA_FSTS_ITE,
  DMA_ICS_IWC,
  DMAR_FSTS_REG,
  DMAR_ICS_REG,
  DMAR_IECTL_REG,
  DMAR_IEDATA_REG,
  DMAR_IQA_REG,
  DMAR_IQER_REG,
  DMAR_IQH_REG,
  DMAR_IQT_REG,
  VTD_IQEI,
} from './regs.js';
import { NO_RAM } from './structures.test-helpers.js';
import { FlTestPageTable } from './test-helpers.js';
import { fakePort, type VtdHarness, vtdHarness } from './vtd.test-helpers.js';
import { VTD_FR } from './vtd-fault.js';

const SID = 0x0010;
const LEGACY = { smts: false, pasid: false, prs: false, nest: false, flts: false, slads: false };

function read(h: VtdHarness, addr: bigint, opts: { pasid?: number; sid?: number } = {}) {
  return h.vtd.dmaAccess(
    dmaRequest({ requesterId: opts.sid ?? SID, pasid: opts.pasid, addr, size: 4, access: 'read' }),
  );
}

/** Legacy unit with QI (128-bit descriptors), sid 00:02.0 in domain 1. */
function legacyQi() {
  const h = vtdHarness({ config: LEGACY });
  const pt = h.slTable(4);
  pt.map(0x10_0000, h.memory.allocPages(0, { zero: true }));
  h.b.setContext(SID, { mode: 'legacy', present: true, tt: 0, slptptr: pt.root, aw: 2, did: 1 });
  h.enable();
  h.enableQi();
  return Object.assign(h, { pt });
}

/** Scalable unit with QI (256-bit), sid 00:02.0: RID_PASID 0 → SL domain 5, PASID 7 → FL domain 6. */
function scalableQi() {
  const h = vtdHarness({ scalable: true });
  const pt = h.slTable(4);
  pt.map(0x10_0000, h.memory.allocPages(0, { zero: true }));
  const fl = new FlTestPageTable(h.memory, { levels: 4 });
  fl.map(0x20_0000, h.memory.allocPages(0, { zero: true }));
  fl.map(0x30_0000, h.memory.allocPages(0, { zero: true }));
  const dir = h.b.pasidDirectory();
  h.b.setContext(SID, {
    mode: 'scalable',
    present: true,
    paside: true,
    pre: true,
    dte: true,
    pdts: 0,
    pasidDirPtr: dir,
  });
  h.b.setPasidEntry(dir, 0, { present: true, pgtt: PGTT.secondLevel, slptptr: pt.root, aw: 2, did: 5 });
  h.b.setPasidEntry(dir, 7, { present: true, pgtt: PGTT.firstLevel, flptr: fl.root, flpm: 0, did: 6 });
  h.enable();
  h.enableQi();
  return Object.assign(h, { pt, fl, dir });
}

function wait(statusAddr: number, extra: { if?: boolean; sw?: boolean; fn?: boolean; pd?: boolean } = {}) {
  return {
    type: 'wait' as const,
    if: extra.if ?? false,
    sw: extra.sw ?? true,
    fn: extra.fn ?? false,
    pd: extra.pd ?? false,
    statusData: 2,
    statusAddr: BigInt(statusAddr),
  };
}

describe('invalidation queue processing', () => {
  it('runs on the scheduler after the IQT write and completes a Linux wait descriptor', () => {
    const h = legacyQi();
    const slot = h.statusSlot();
    // Linux qi_submit_sync: QI_IWD_TYPE | QI_IWD_STATUS_WRITE | QI_IWD_STATUS_DATA(2), qw1 = status address
    h.submitRaw([0x0000_0002_0000_0025n, BigInt(slot)]);
    expect(h.memory.read32(slot)).toBe(0);
    expect(h.mmio.readq(DMAR_IQH_REG)).toBe(0n);
    h.scheduler.runUntilIdle();
    expect(h.memory.read32(slot)).toBe(2);
    expect(h.mmio.readq(DMAR_IQH_REG)).toBe(16n);
    expect(h.vtd.iq.stats.byType.get('wait')).toBe(1);
  });

  it('wraps around the end of the queue', () => {
    const h = legacyQi();
    const slot = h.statusSlot();
    for (let i = 0; i < 255; i++) h.put(encodeVtdInvDesc({ type: 'iec', global: true, im: 0, iidx: 0 }));
    h.mmio.writel(DMAR_IQT_REG, h.iqTail);
    h.scheduler.runUntilIdle();
    h.submit(wait(slot), wait(slot + 4));
    expect(h.mmio.readq(DMAR_IQH_REG)).toBe(16n);
    expect(h.memory.read32(slot + 4)).toBe(2);
  });

  it('signals IF waits with ICS.IWC and one completion event until software clears IWC', () => {
    const h = legacyQi();
    h.unmaskAll();
    h.mmio.writel(DMAR_IEDATA_REG, 0x55);
    h.submit(wait(0, { if: true, sw: false }));
    expect(h.mmio.readl(DMAR_ICS_REG)).toBe(DMA_ICS_IWC);
    expect(h.counts.iq).toBe(1);
    expect(h.vtd.msiLog.at(-1)).toMatchObject({ source: 'iq', data: 0x55 });
    h.submit(wait(0, { if: true, sw: false }));
    expect(h.counts.iq).toBe(1); // IWC still set: no new event
    h.mmio.writel(DMAR_ICS_REG, DMA_ICS_IWC);
    expect(h.mmio.readl(DMAR_ICS_REG)).toBe(0);
    h.submit(wait(0, { if: true, sw: false }));
    expect(h.counts.iq).toBe(2);
    // Masked: IP held, sent on unmask.
    h.mmio.writel(DMAR_ICS_REG, DMA_ICS_IWC);
    h.mmio.writel(DMAR_IECTL_REG, 0x8000_0000);
    h.submit(wait(0, { if: true, sw: false }));
    expect(h.mmio.readl(DMAR_IECTL_REG)).toBe(0xc000_0000);
    h.mmio.writel(DMAR_IECTL_REG, 0);
    h.scheduler.runUntilIdle();
    expect(h.counts.iq).toBe(3);
  });

  it('accepts a wait with neither SW nor IF (a fence, as Linux uses when draining page requests)', () => {
    const h = scalableQi();
    h.submit(wait(0, { sw: false, fn: true, pd: true }));
    expect(h.mmio.readl(DMAR_FSTS_REG)).toBe(0);
    expect(h.mmio.readq(DMAR_IQH_REG)).toBe(32n);
  });
});

describe('invalidation descriptors', () => {
  it('context-cache (type 1) device-selective hits the source-id under FM, domain/global drop', () => {
    const h = legacyQi();
    read(h, 0x10_0000n);
    h.submit({ type: 'context-cache', granularity: 'device', did: 1, sid: 0x0013, fm: 0 });
    expect(h.vtd.contextCache.has(SID)).toBe(true);
    h.submit({ type: 'context-cache', granularity: 'device', did: 1, sid: 0x0013, fm: 3 });
    expect(h.vtd.contextCache.has(SID)).toBe(false);
    read(h, 0x10_0000n);
    h.submit({ type: 'context-cache', granularity: 'domain', did: 9, sid: 0, fm: 0 });
    expect(h.vtd.contextCache.has(SID)).toBe(true);
    h.submit({ type: 'context-cache', granularity: 'domain', did: 1, sid: 0, fm: 0 });
    expect(h.vtd.contextCache.has(SID)).toBe(false);
    read(h, 0x10_0000n);
    h.submit({ type: 'context-cache', granularity: 'global', did: 0, sid: 0, fm: 0 });
    expect(h.vtd.contextCache.has(SID)).toBe(false);
  });

  it('IOTLB (type 2): page-selective needs the right DID and range; domain and global', () => {
    const h = legacyQi();
    const iotlb = (granularity: 'global' | 'domain' | 'page', did: number, addr = 0n, am = 0) => ({
      type: 'iotlb' as const,
      granularity,
      did,
      dr: true,
      dw: true,
      addr,
      am,
      ih: false,
    });
    read(h, 0x10_0000n);
    h.pt.unmap(0x10_0000);
    h.submit(iotlb('page', 2, 0x10_0000n));
    expect(read(h, 0x10_0000n).kind).toBe('completed'); // other DID
    h.submit(iotlb('page', 1, 0x12_0000n, 4));
    expect(read(h, 0x10_0000n).kind).toBe('completed'); // range 0x12_0000 + 64 KiB misses
    h.submit(iotlb('page', 1, 0x10_8000n, 4)); // aligned down to 0x10_0000 … 0x10_ffff
    expect(read(h, 0x10_0000n)).toMatchObject({ kind: 'fault', code: VTD_FR.READ });
    h.pt.map(0x10_0000, h.memory.allocPages(0, { zero: true }));
    read(h, 0x10_0000n);
    h.pt.unmap(0x10_0000);
    h.submit(iotlb('domain', 1));
    expect(read(h, 0x10_0000n).kind).toBe('fault');
    h.pt.map(0x10_0000, h.memory.allocPages(0, { zero: true }));
    read(h, 0x10_0000n);
    h.pt.unmap(0x10_0000);
    h.submit(iotlb('global', 0));
    expect(read(h, 0x10_0000n).kind).toBe('fault');
  });

  it('PASID-cache (type 7): a torn-down PASID entry is used until its PASID-selective invalidation', () => {
    const h = scalableQi();
    expect(read(h, 0x20_0000n, { pasid: 7 }).kind).toBe('completed');
    h.b.setPasidEntry(h.dir, 7, { present: false });
    h.submit({ type: 'pasid-iotlb', granularity: 'pasid', did: 6, pasid: 7, addr: 0n, am: 0, ih: false });
    expect(read(h, 0x20_0000n, { pasid: 7 }).kind).toBe('completed'); // stale PASID cache
    h.submit({ type: 'pasid-cache', granularity: 'pasid', did: 6, pasid: 8 });
    expect(read(h, 0x20_0000n, { pasid: 7 }).kind).toBe('completed');
    h.submit({ type: 'pasid-cache', granularity: 'pasid', did: 6, pasid: 7 });
    expect(read(h, 0x20_0000n, { pasid: 7 })).toMatchObject({ kind: 'fault', code: VTD_FR.SM_PASID_ENTRY_P });
  });

  it('PASID-cache (type 7): domain-selective and global', () => {
    const h = scalableQi();
    read(h, 0x20_0000n, { pasid: 7 });
    read(h, 0x10_0000n);
    expect(h.vtd.pasidCache.has(SID, 7)).toBe(true);
    h.submit({ type: 'pasid-cache', granularity: 'domain', did: 5, pasid: 0 });
    expect(h.vtd.pasidCache.has(SID, 7)).toBe(true);
    expect(h.vtd.pasidCache.has(SID, 0)).toBe(false);
    h.submit({ type: 'pasid-cache', granularity: 'global', did: 0, pasid: 0 });
    expect(h.vtd.pasidCache.has(SID, 7)).toBe(false);
  });

  it('PASID-based IOTLB (type 6): page-selective drops first-level pages in range only; all-PASID form drops all', () => {
    const h = scalableQi();
    read(h, 0x20_0000n, { pasid: 7 });
    read(h, 0x30_0000n, { pasid: 7 });
    h.fl.unmap(0x20_0000);
    h.fl.unmap(0x30_0000);
    h.submit({
      type: 'pasid-iotlb',
      granularity: 'page',
      did: 6,
      pasid: 7,
      addr: 0x20_0000n,
      am: 0,
      ih: false,
    });
    expect(read(h, 0x20_0000n, { pasid: 7 })).toMatchObject({ kind: 'fault', code: VTD_FR.SM_FL_P });
    expect(read(h, 0x30_0000n, { pasid: 7 }).kind).toBe('completed');
    h.submit({ type: 'pasid-iotlb', granularity: 'pasid', did: 6, pasid: 7, addr: 0n, am: 0, ih: false });
    expect(read(h, 0x30_0000n, { pasid: 7 }).kind).toBe('fault');
  });

  it('interrupt entry cache (type 4) is accepted and changes nothing', () => {
    const h = legacyQi();
    read(h, 0x10_0000n);
    h.submit({ type: 'iec', global: false, im: 2, iidx: 8 });
    expect(h.vtd.iq.stats.byType.get('iec')).toBe(1);
    expect(h.vtd.contextCache.has(SID)).toBe(true);
    expect(h.mmio.readl(DMAR_FSTS_REG)).toBe(0);
  });

  it('page group response (type 9) reaches the endpoint; a reserved code is a queue error', () => {
    const h = scalableQi();
    const ep = fakePort(SID);
    h.vtd.connectEndpoint(ep.port);
    h.submit(
      {
        type: 'page-group-response',
        rid: SID,
        pasidPresent: true,
        pasid: 7,
        code: 0,
        prgIndex: 0x1a5,
        lpig: false,
      },
      {
        type: 'page-group-response',
        rid: SID,
        pasidPresent: false,
        pasid: 0,
        code: 0xf,
        prgIndex: 3,
        lpig: true,
      },
    );
    expect(ep.prg).toEqual([
      { requesterId: SID, pasid: 7, prgIndex: 0x1a5, code: 0 },
      { requesterId: SID, prgIndex: 3, code: 0xf },
    ]);
    h.submit({
      type: 'page-group-response',
      rid: SID,
      pasidPresent: false,
      pasid: 0,
      code: 2,
      prgIndex: 3,
      lpig: false,
    });
    expect(h.mmio.readl(DMAR_FSTS_REG) & DMA_FSTS_IQE).toBe(DMA_FSTS_IQE);
    expect(ep.prg).toHaveLength(2);
  });
});

describe('device-TLB invalidation', () => {
  it('type 3 sends an ATS invalidation and holds the next wait until the completion', () => {
    const h = legacyQi();
    const slot = h.statusSlot();
    const ep = fakePort(SID);
    h.vtd.connectEndpoint(ep.port);
    h.submit(
      { type: 'device-tlb', sid: SID, pfsid: 0, mip: 0, addr: 0x7fff_ffff_ffff_f000n, s: true },
      wait(slot),
    );
    expect(ep.inv).toEqual([
      { requesterId: SID, global: false, addr: 0x7fff_ffff_ffff_f000n, s: true, itag: 0 },
    ]);
    expect(h.memory.read32(slot)).toBe(0);
    expect(h.vtd.iq.waitingForDevTlb).toBe(true);
    expect(h.mmio.readq(DMAR_IQH_REG)).toBe(16n); // at the wait
    h.vtd.atsInvalidateCompletion({ requesterId: SID, itagVector: 1, completionCount: 1 });
    h.scheduler.runUntilIdle();
    expect(h.memory.read32(slot)).toBe(2);
    expect(h.mmio.readq(DMAR_IQH_REG)).toBe(32n);
    expect(h.mmio.readl(DMAR_FSTS_REG)).toBe(0);
  });

  it('type 8 carries the PASID and the global bit', () => {
    const h = scalableQi();
    const ep = fakePort(SID, (m) =>
      h.scheduler.spawn(() =>
        h.vtd.atsInvalidateCompletion({ requesterId: SID, itagVector: 1 << m.itag, completionCount: 1 }),
      ),
    );
    h.vtd.connectEndpoint(ep.port);
    const slot = h.statusSlot();
    h.submit(
      {
        type: 'pasid-device-tlb',
        sid: SID,
        pfsid: 0,
        mip: 0,
        pasid: 7,
        global: false,
        addr: 0x20_0000n,
        s: false,
      },
      {
        type: 'pasid-device-tlb',
        sid: SID,
        pfsid: 0,
        mip: 0,
        pasid: 0,
        global: true,
        addr: 0x20_1000n,
        s: true,
      },
      wait(slot),
    );
    expect(ep.inv).toEqual([
      { requesterId: SID, pasid: 7, global: false, addr: 0x20_0000n, s: false, itag: 0 },
      { requesterId: SID, pasid: 0, global: true, addr: 0x20_1000n, s: true, itag: 1 },
    ]);
    expect(h.memory.read32(slot)).toBe(2);
  });

  it('times out (ITE): the wait is aborted without its status write, IQH moves past it, and processing stops until ITE is cleared', () => {
    const h = legacyQi();
    h.unmaskAll();
    const slot = h.statusSlot();
    h.submit(
      { type: 'device-tlb', sid: 0x0300, pfsid: 0, mip: 0, addr: 0x10_0000n, s: false }, // nobody at 03:00.0
      wait(slot),
      wait(slot + 4),
    );
    expect(h.vtd.iq.waitingForDevTlb).toBe(true);
    h.scheduler.advanceBy(h.vtd.config.devTlbInvTimeoutNs);
    h.scheduler.runUntilIdle();
    expect(h.mmio.readl(DMAR_FSTS_REG) & DMA_FSTS_ITE).toBe(DMA_FSTS_ITE);
    expect((h.mmio.readq(DMAR_IQER_REG) >> 32n) & 0xffffn).toBe(0x0300n);
    expect(h.memory.read32(slot)).toBe(0);
    expect(h.memory.read32(slot + 4)).toBe(0);
    expect(h.mmio.readq(DMAR_IQH_REG)).toBe(32n); // past the aborted wait, at the next one
    expect(h.counts.fault).toBe(1);
    h.mmio.writel(DMAR_FSTS_REG, DMA_FSTS_ITE);
    h.scheduler.runUntilIdle();
    expect(h.memory.read32(slot + 4)).toBe(2);
    expect(h.mmio.readq(DMAR_IQH_REG)).toBe(48n);
  });

  it('reports an unexpected completion as ICE with the requester in IQER', () => {
    const h = legacyQi();
    h.vtd.atsInvalidateCompletion({ requesterId: 0x0123, itagVector: 4, completionCount: 1 });
    expect(h.mmio.readl(DMAR_FSTS_REG)).toBe(DMA_FSTS_ICE);
    expect(h.mmio.readq(DMAR_IQER_REG) >> 48n).toBe(0x0123n);
    h.mmio.writel(DMAR_FSTS_REG, DMA_FSTS_ICE);
    expect(h.mmio.readl(DMAR_FSTS_REG)).toBe(0);
  });
});

describe('queue errors', () => {
  it('IQE on an invalid type: IQH stays at it, nothing after it runs, Linux recovery resumes', () => {
    const h = legacyQi();
    h.unmaskAll();
    const slot = h.statusSlot();
    h.submit(wait(slot));
    const bad = h.iqTail;
    h.submitRaw([0xan, 0n], encodeVtdInvDesc(wait(slot + 4)));
    h.scheduler.runUntilIdle();
    expect(h.mmio.readl(DMAR_FSTS_REG)).toBe(DMA_FSTS_IQE);
    expect(Number(h.mmio.readq(DMAR_IQER_REG) & 0xfn)).toBe(VTD_IQEI.TYPE);
    expect(h.mmio.readq(DMAR_IQH_REG)).toBe(BigInt(bad));
    expect(h.memory.read32(slot + 4)).toBe(0);
    expect(h.counts.fault).toBe(1);
    // More IQT writes do nothing while IQE is set.
    h.mmio.writel(DMAR_IQT_REG, h.iqTail);
    h.scheduler.runUntilIdle();
    expect(h.memory.read32(slot + 4)).toBe(0);
    // qi_check_fault: overwrite the bad slot with the wait, clear IQE.
    const words = encodeVtdInvDesc(wait(slot + 8));
    const iqa = Number(h.mmio.readq(DMAR_IQA_REG) & ~0xfffn);
    h.memory.write64(iqa + bad, words[0] as bigint);
    h.memory.write64(iqa + bad + 8, words[1] as bigint);
    h.mmio.writel(DMAR_FSTS_REG, DMA_FSTS_IQE);
    h.scheduler.runUntilIdle();
    expect(h.memory.read32(slot + 8)).toBe(2);
    expect(h.memory.read32(slot + 4)).toBe(2);
    expect(h.mmio.readq(DMAR_IQH_REG)).toBe(BigInt(h.iqTail));
  });

  function iqei(h: VtdHarness): number {
    h.scheduler.runUntilIdle();
    expect(h.mmio.readl(DMAR_FSTS_REG) & DMA_FSTS_IQE).toBe(DMA_FSTS_IQE);
    return Number(h.mmio.readq(DMAR_IQER_REG) & 0xfn);
  }

  it('IQEI 4 for a reserved field, a reserved granularity or AM above MAMV', () => {
    const h = legacyQi();
    h.submitRaw([0x11n | (1n << 63n), 0n]);
    expect(iqei(h)).toBe(VTD_IQEI.RESERVED);
    const g = legacyQi();
    g.submitRaw([0x01n, 0n]); // context-cache G=00
    expect(iqei(g)).toBe(VTD_IQEI.RESERVED);
    const a = legacyQi();
    a.submitRaw([0x32n | (1n << 16n), 0x10_0000n | 19n]); // PSI AM 19 > MAMV 18
    expect(iqei(a)).toBe(VTD_IQEI.RESERVED);
  });

  it('IQEI 3 for a PASID-based descriptor in a 128-bit queue', () => {
    const h = legacyQi();
    h.submitRaw([0x07n | (3n << 4n), 0n]);
    expect(iqei(h)).toBe(VTD_IQEI.TYPE);
  });

  it('IQEI 1 for a tail beyond the queue, 6 for a misaligned 256-bit tail', () => {
    const h = legacyQi();
    h.mmio.writel(DMAR_IQT_REG, 0x1000);
    expect(iqei(h)).toBe(VTD_IQEI.TAIL);
    const s = scalableQi();
    s.mmio.writel(DMAR_IQT_REG, 0x10);
    expect(iqei(s)).toBe(VTD_IQEI.TAIL_ALIGN);
  });

  it('IQEI 5 for 128-bit descriptors while TTM is scalable', () => {
    const s = vtdHarness({ scalable: true });
    s.enable();
    const pa = s.memory.allocPages(0, { zero: true });
    s.mmio.writeq(DMAR_IQA_REG, BigInt(pa));
    s.gcmd(0x0400_0000);
    s.memory.write64(pa, 0x0000_0002_0000_0025n);
    s.mmio.writel(DMAR_IQT_REG, 16);
    expect(iqei(s)).toBe(VTD_IQEI.WIDTH);
    expect(s.mmio.readq(DMAR_IQH_REG)).toBe(0n);
  });

  it('IQEI 2 when the queue is not in RAM', () => {
    const h = vtdHarness({ config: LEGACY });
    h.mmio.writeq(DMAR_IQA_REG, BigInt(NO_RAM));
    h.gcmd(0x0400_0000);
    h.mmio.writel(DMAR_IQT_REG, 16);
    expect(iqei(h)).toBe(VTD_IQEI.FETCH);
  });
});
