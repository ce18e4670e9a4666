import { dmaRequest } from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import {
  DMA_CCMD_DEVICE_INVL,
  DMA_CCMD_DOMAIN_INVL,
  DMA_CCMD_GLOBAL_INVL,
  DMA_CCMD_ICC,
  DMA_FSTS_PFO,
  DMA_FSTS_PPF,
  DMA_GCMD_QIE,
  DMA_GCMD_SRTP,
  DMA_GCMD_TE,
  DMA_GCMD_WBF,
  DMA_TLB_DSI_FLUSH,
  DMA_TLB_GLOBAL_FLUSH,
  DMA_TLB_IVT,
  DMA_TLB_PSI_FLUSH,
  DMAR_CAP_REG,
  DMAR_CCMD_REG,
  DMAR_ECAP_REG,
  DMAR_FEADDR_REG,
  DMAR_FECTL_REG,
  DMAR_FEDATA_REG,
  DMAR_FSTS_REG,
  DMAR_GCMD_REG,
  DMAR_GSTS_REG,
  DMAR_IECTL_REG,
  DMAR_IQA_REG,
  DMAR_PECTL_REG,
  DMAR_RTADDR_REG,
  DMAR_VER_REG,
  vtdFrcdOffset,
} from './regs.js';
import { RAM_BASE } from './structures.test-helpers.js';
import { type VtdHarness, vtdHarness } from './vtd.test-helpers.js';
import { vtdCapEcap } from './vtd-config.js';
import { decodeVtdFrcd, VTD_FR } from './vtd-fault.js';

const SID = 0x0010; // 00:02.0
const IOTLB = 0xf8;
const IVA = 0xf0;

/** Legacy unit (QEMU-like register-based invalidation available), sid 00:02.0 → domain 1. */
function legacy(config = {}) {
  const h = vtdHarness({
    config: { smts: false, pasid: false, prs: false, nest: false, flts: false, slads: false, ...config },
  });
  const pt = h.slTable(4);
  const page = h.memory.allocPages(0, { zero: true });
  pt.map(0x10_0000, page);
  pt.map(0x20_0000, h.memory.allocPages(0, { zero: true }), { write: false });
  h.b.setContext(SID, { mode: 'legacy', present: true, tt: 0, slptptr: pt.root, aw: 2, did: 1 });
  return Object.assign(h, { pt, page });
}

function read(h: VtdHarness, addr: bigint, size = 4, sid = SID) {
  return h.vtd.dmaAccess(dmaRequest({ requesterId: sid, addr, size, access: 'read' }));
}

function write(h: VtdHarness, addr: bigint, bytes: number[], sid = SID) {
  return h.vtd.dmaAccess(
    dmaRequest({ requesterId: sid, addr, size: bytes.length, access: 'write' }),
    new Uint8Array(bytes),
  );
}

function frcd(h: VtdHarness, i: number) {
  const off = vtdFrcdOffset(h.vtd.config.fro, i);
  return decodeVtdFrcd({ lo: h.mmio.readq(off), hi: h.mmio.readq(off + 8) });
}

describe('VtdModel registers', () => {
  it('has the reset values of §1.13 and the computed CAP/ECAP', () => {
    const h = vtdHarness();
    const { cap, ecap } = vtdCapEcap(h.vtd.config);
    expect(h.mmio.readl(DMAR_VER_REG)).toBe(0x10);
    expect(h.mmio.readq(DMAR_CAP_REG)).toBe(cap);
    expect(h.mmio.readq(DMAR_ECAP_REG)).toBe(ecap);
    expect(h.mmio.readl(DMAR_GSTS_REG)).toBe(0);
    expect(h.mmio.readl(DMAR_FECTL_REG)).toBe(0x8000_0000);
    expect(h.mmio.readl(DMAR_IECTL_REG)).toBe(0x8000_0000);
    expect(h.mmio.readl(DMAR_PECTL_REG)).toBe(0x8000_0000);
    expect(h.mmio.readl(DMAR_FSTS_REG)).toBe(0);
    expect(h.mmio.size).toBe(0x1000);
  });

  it('keeps read-only registers and write masks', () => {
    const h = vtdHarness();
    const cap = h.mmio.readq(DMAR_CAP_REG);
    h.mmio.writeq(DMAR_CAP_REG, 0n);
    expect(h.mmio.readq(DMAR_CAP_REG)).toBe(cap);
    h.mmio.writeq(DMAR_RTADDR_REG, 0xffff_ffff_ffff_ffffn);
    expect(h.mmio.readq(DMAR_RTADDR_REG)).toBe(0xffff_ffff_ffff_fc00n);
    h.mmio.writel(DMAR_FEDATA_REG, 0x1234_5678);
    expect(h.mmio.readl(DMAR_FEDATA_REG)).toBe(0x5678);
    h.mmio.writel(DMAR_FEADDR_REG, 0xfee0_0003);
    expect(h.mmio.readl(DMAR_FEADDR_REG)).toBe(0xfee0_0000);
    h.mmio.writel(DMAR_GCMD_REG, DMA_GCMD_WBF);
    expect(h.mmio.readl(DMAR_GCMD_REG)).toBe(0); // write-only
    expect(h.mmio.readl(DMAR_GSTS_REG)).toBe(0); // WBFS never seen set
    expect(() => h.mmio.readl(0x1002)).toThrow();
  });

  it('latches RTADDR on SRTP only, and enables/disables translation with TE', () => {
    const h = legacy();
    h.mmio.writeq(DMAR_RTADDR_REG, BigInt(h.b.rootTable));
    expect(h.vtd.rootTableAddress).toBe(0);
    h.mmio.writel(DMAR_GCMD_REG, DMA_GCMD_SRTP);
    expect(h.mmio.readl(DMAR_GSTS_REG)).toBe(DMA_GCMD_SRTP);
    expect(h.vtd.rootTableAddress).toBe(h.b.rootTable);
    expect(h.vtd.ttm).toBe(0);
    // Before TE, DMA is not remapped: IOVA = PA.
    h.memory.write32(RAM_BASE + 0x100, 0xdead_beef);
    const r0 = read(h, BigInt(RAM_BASE + 0x100));
    expect(r0.kind === 'completed' && [...(r0.data ?? [])]).toEqual([0xef, 0xbe, 0xad, 0xde]);
    h.gcmd(DMA_GCMD_TE);
    expect(h.mmio.readl(DMAR_GSTS_REG)).toBe((DMA_GCMD_TE | DMA_GCMD_SRTP) >>> 0);
    expect(h.vtd.translationEnabled).toBe(true);
    h.memory.write32(h.page + 4, 0x0403_0201);
    const r1 = read(h, 0x10_0004n);
    expect(r1.kind === 'completed' && [...(r1.data ?? [])]).toEqual([1, 2, 3, 4]);
    // Changing RTADDR without SRTP changes nothing.
    h.mmio.writeq(DMAR_RTADDR_REG, 0n);
    expect(read(h, 0x10_0004n).kind).toBe('completed');
    h.mmio.writel(DMAR_GCMD_REG, 0);
    expect(h.mmio.readl(DMAR_GSTS_REG) & DMA_GCMD_TE).toBe(0);
  });

  it('latches TTM=01 as scalable only on an SMTS unit', () => {
    const h = vtdHarness({ scalable: true });
    h.setRoot();
    expect(h.vtd.ttm).toBe(1);
    const l = vtdHarness({
      config: { smts: false, pasid: false, prs: false, nest: false, flts: false, slads: false },
    });
    l.mmio.writeq(DMAR_RTADDR_REG, 0x40_0000n | (1n << 10n));
    l.mmio.writel(DMAR_GCMD_REG, DMA_GCMD_SRTP);
    expect(l.vtd.ttm).toBe(2);
  });

  it('sets and clears QIES with QIE and resets IQH when disabled', () => {
    const h = vtdHarness();
    h.enableQi();
    expect(h.mmio.readl(DMAR_GSTS_REG) & DMA_GCMD_QIE).toBe(DMA_GCMD_QIE);
    expect(h.mmio.readq(DMAR_IQA_REG) & 0x807n).toBe(0x801n);
    h.mmio.writel(DMAR_GCMD_REG, 0);
    expect(h.mmio.readl(DMAR_GSTS_REG) & DMA_GCMD_QIE).toBe(0);
    expect(h.mmio.readq(0x80)).toBe(0n);
  });
});

describe('VtdModel register-based invalidation', () => {
  it('CCMD: a changed context entry is used only after a context-cache invalidation', () => {
    const h = legacy();
    h.enable();
    expect(read(h, 0x10_0000n).kind).toBe('completed');
    h.b.setContext(SID, { mode: 'legacy', present: false });
    expect(read(h, 0x10_0000n).kind).toBe('completed'); // stale context cache (and IOTLB)
    h.mmio.writeq(DMAR_CCMD_REG, DMA_CCMD_ICC | DMA_CCMD_DEVICE_INVL | (BigInt(SID) << 16n) | 1n);
    const v = h.mmio.readq(DMAR_CCMD_REG);
    expect(v & DMA_CCMD_ICC).toBe(0n);
    expect((v >> 59n) & 3n).toBe(3n); // CAIG = device
    h.mmio.writeq(IOTLB, DMA_TLB_IVT | DMA_TLB_DSI_FLUSH | (1n << 32n));
    expect((h.mmio.readq(IOTLB) >> 57n) & 3n).toBe(2n);
    const f = read(h, 0x10_0000n);
    expect(f).toMatchObject({ kind: 'fault', reason: 'bad-requester', code: VTD_FR.CONTEXT_ENTRY_P });
  });

  it('CCMD domain-selective drops only that domain; global drops everything', () => {
    const h = legacy();
    h.enable();
    read(h, 0x10_0000n);
    expect(h.vtd.contextCache.has(SID)).toBe(true);
    h.mmio.writeq(DMAR_CCMD_REG, DMA_CCMD_ICC | DMA_CCMD_DOMAIN_INVL | 2n);
    expect(h.vtd.contextCache.has(SID)).toBe(true);
    expect((h.mmio.readq(DMAR_CCMD_REG) >> 59n) & 3n).toBe(2n);
    h.mmio.writeq(DMAR_CCMD_REG, DMA_CCMD_ICC | DMA_CCMD_DOMAIN_INVL | 1n);
    expect(h.vtd.contextCache.has(SID)).toBe(false);
    read(h, 0x10_0000n);
    h.mmio.writeq(DMAR_CCMD_REG, DMA_CCMD_ICC | DMA_CCMD_GLOBAL_INVL);
    expect(h.vtd.contextCache.has(SID)).toBe(false);
  });

  it('IOTLB_REG: unmap is visible only after PSI covering the page', () => {
    const h = legacy();
    h.enable();
    expect(read(h, 0x10_0000n).kind).toBe('completed');
    h.pt.unmap(0x10_0000);
    expect(read(h, 0x10_0000n).kind).toBe('completed'); // stale IOTLB
    // PSI of another page: still stale.
    h.mmio.writeq(IVA, 0x30_0000n);
    h.mmio.writeq(IOTLB, DMA_TLB_IVT | DMA_TLB_PSI_FLUSH | (1n << 32n));
    expect((h.mmio.readq(IOTLB) >> 57n) & 3n).toBe(3n);
    expect(read(h, 0x10_0000n).kind).toBe('completed');
    h.mmio.writeq(IVA, 0x10_0000n);
    h.mmio.writeq(IOTLB, DMA_TLB_IVT | DMA_TLB_PSI_FLUSH | (1n << 32n));
    expect(read(h, 0x10_0000n)).toMatchObject({ kind: 'fault', code: VTD_FR.READ });
    expect(h.mmio.readq(IVA)).toBe(0n); // write-only
  });

  it('IOTLB_REG: AM above MAMV is refused with IAIG = 0; global works', () => {
    const h = legacy();
    h.enable();
    read(h, 0x10_0000n);
    h.pt.unmap(0x10_0000);
    h.mmio.writeq(IVA, 0x10_0000n | 19n);
    h.mmio.writeq(IOTLB, DMA_TLB_IVT | DMA_TLB_PSI_FLUSH | (1n << 32n));
    expect(h.mmio.readq(IOTLB) & (DMA_TLB_IVT | (3n << 57n))).toBe(0n);
    expect(read(h, 0x10_0000n).kind).toBe('completed');
    h.mmio.writeq(IOTLB, DMA_TLB_IVT | DMA_TLB_GLOBAL_FLUSH);
    expect((h.mmio.readq(IOTLB) >> 57n) & 3n).toBe(1n);
    expect(read(h, 0x10_0000n).kind).toBe('fault');
    // Only the performed (global) flush counts, and it counts as an IOTLB one.
    expect(h.vtd.stats).toMatchObject({
      registerInvalidations: 1,
      registerIotlbInvalidations: 1,
      registerContextInvalidations: 0,
    });
  });

  it('refuses register-based invalidation while QI is enabled or in scalable mode', () => {
    const h = legacy();
    h.enable();
    read(h, 0x10_0000n);
    h.enableQi();
    h.mmio.writeq(DMAR_CCMD_REG, DMA_CCMD_ICC | DMA_CCMD_GLOBAL_INVL);
    expect(h.mmio.readq(DMAR_CCMD_REG) & (DMA_CCMD_ICC | (3n << 59n))).toBe(0n);
    expect(h.vtd.contextCache.has(SID)).toBe(true);
    const s = vtdHarness({ scalable: true });
    s.enable();
    s.mmio.writeq(IOTLB, DMA_TLB_IVT | DMA_TLB_GLOBAL_FLUSH);
    expect((s.mmio.readq(IOTLB) >> 57n) & 3n).toBe(0n);
    expect(s.vtd.stats.registerInvalidations).toBe(0);
  });
});

describe('VtdModel DMA and fault recording', () => {
  it('reads and writes across pages and leaves memory untouched when any page faults', () => {
    const h = legacy();
    const p2 = h.memory.allocPages(0, { zero: true });
    h.pt.map(0x10_1000, p2);
    h.enable();
    expect(write(h, 0x10_0ffen, [1, 2, 3, 4]).kind).toBe('completed');
    expect([...h.memory.readBytes(h.page + 0xffe, 2)]).toEqual([1, 2]);
    expect([...h.memory.readBytes(p2, 2)]).toEqual([3, 4]);
    const r = read(h, 0x10_0ffen, 4);
    expect(r.kind === 'completed' && [...(r.data ?? [])]).toEqual([1, 2, 3, 4]);
    // 0x10_2000 is unmapped: a write spanning into it transfers nothing.
    const f = write(h, 0x10_1ffen, [9, 9, 9, 9]);
    expect(f).toMatchObject({ kind: 'fault', code: VTD_FR.WRITE, addr: 0x10_2000n });
    expect([...h.memory.readBytes(p2 + 0xffe, 2)]).toEqual([0, 0]);
  });

  it('records a fault with every field, raises the fault event once, and clears it like Linux', () => {
    const h = legacy();
    h.enable();
    h.unmaskAll();
    h.mmio.writel(DMAR_FEDATA_REG, 0x41);
    h.mmio.writel(DMAR_FEADDR_REG, 0xfee0_1000);
    expect(write(h, 0x20_0010n, [1])).toMatchObject({ kind: 'fault', reason: 'permission', code: 0x05 });
    h.scheduler.runUntilIdle();
    expect(h.counts.fault).toBe(1);
    expect(h.msis).toEqual([{ addr: 0xfee0_1000n, data: 0x41 }]);
    expect(h.mmio.readl(DMAR_FSTS_REG)).toBe(DMA_FSTS_PPF); // FRI = 0
    expect(frcd(h, 0)).toEqual({
      reason: 0x05,
      sourceId: SID,
      addr: 0x20_0000n,
      write: true,
      pasidPresent: false,
      pasid: 0,
      exec: false,
      privileged: false,
      addressType: 0,
      pending: true,
    });
    // A second fault: recorded in slot 1, no new event (PPF already set).
    expect(read(h, 0x40_0000n)).toMatchObject({ kind: 'fault', code: VTD_FR.READ });
    h.scheduler.runUntilIdle();
    expect(h.counts.fault).toBe(1);
    expect(frcd(h, 1)).toMatchObject({ reason: 0x06, write: false, addr: 0x40_0000n });
    // Linux: clear F of each record (dword3), then FSTS.
    const fro = h.vtd.config.fro;
    h.mmio.writel(vtdFrcdOffset(fro, 0) + 12, 0x8000_0000);
    expect(h.mmio.readl(DMAR_FSTS_REG)).toBe(DMA_FSTS_PPF | (1 << 8)); // FRI moved to 1
    h.mmio.writel(vtdFrcdOffset(fro, 1) + 12, 0x8000_0000);
    expect(h.mmio.readl(DMAR_FSTS_REG) & 0xff).toBe(0); // PPF clear (FRI is only valid with PPF)
    expect(frcd(h, 0).pending).toBe(false);
    // Next fault raises the event again, in slot 2.
    read(h, 0x40_0000n);
    h.scheduler.runUntilIdle();
    expect(h.counts.fault).toBe(2);
    expect(h.mmio.readl(DMAR_FSTS_REG)).toBe(DMA_FSTS_PPF | (2 << 8));
  });

  it('holds the fault event while masked and sends it when unmasked', () => {
    const h = legacy();
    h.enable();
    read(h, 0x40_0000n);
    h.scheduler.runUntilIdle();
    expect(h.counts.fault).toBe(0);
    expect(h.mmio.readl(DMAR_FECTL_REG)).toBe(0xc000_0000); // IM | IP
    h.mmio.writel(DMAR_FECTL_REG, 0);
    h.scheduler.runUntilIdle();
    expect(h.counts.fault).toBe(1);
    expect(h.mmio.readl(DMAR_FECTL_REG)).toBe(0);
  });

  it('clears IP without a message when software services the faults while masked', () => {
    const h = legacy();
    h.enable();
    read(h, 0x40_0000n);
    h.mmio.writel(vtdFrcdOffset(h.vtd.config.fro, 0) + 12, 0x8000_0000);
    expect(h.mmio.readl(DMAR_FECTL_REG)).toBe(0x8000_0000);
    h.mmio.writel(DMAR_FECTL_REG, 0);
    h.scheduler.runUntilIdle();
    expect(h.counts.fault).toBe(0);
  });

  it('overflows: PFO when the next record is still pending, then drops until PFO is cleared', () => {
    const h = legacy({ numFaultRecords: 2 });
    h.enable();
    read(h, 0x40_0000n);
    read(h, 0x41_0000n);
    expect(h.vtd.faults.nextIndex).toBe(0);
    read(h, 0x42_0000n); // slot 0 still pending
    expect(h.mmio.readl(DMAR_FSTS_REG) & (DMA_FSTS_PFO | DMA_FSTS_PPF)).toBe(DMA_FSTS_PFO | DMA_FSTS_PPF);
    h.mmio.writel(vtdFrcdOffset(h.vtd.config.fro, 0) + 12, 0x8000_0000);
    read(h, 0x43_0000n); // dropped: PFO set
    expect(frcd(h, 0).pending).toBe(false);
    expect(h.vtd.faults.stats).toMatchObject({ recorded: 2, overflows: 1, dropped: 1 });
    // Only the two recorded faults are split by reason (not-present second-level entry: a read).
    expect([...h.vtd.faults.stats.byReason]).toEqual([[VTD_FR.READ, 2]]);
    h.mmio.writel(DMAR_FSTS_REG, DMA_FSTS_PFO);
    read(h, 0x44_0000n);
    expect(frcd(h, 0)).toMatchObject({ pending: true, addr: 0x44_0000n });
  });

  it('does not record qualified faults when the context entry has FPD, but still fails the DMA', () => {
    const h = legacy();
    h.b.setContext(SID, {
      mode: 'legacy',
      present: true,
      fpd: true,
      tt: 0,
      slptptr: h.pt.root,
      aw: 2,
      did: 1,
    });
    h.enable();
    expect(read(h, 0x40_0000n)).toMatchObject({ kind: 'fault', code: 0x06 });
    expect(h.mmio.readl(DMAR_FSTS_REG)).toBe(0);
    expect(h.vtd.faults.stats.suppressed).toBe(1);
    // Not-present context with FPD: qualified, suppressed as well; root not present is not.
    h.b.setContext(SID, { mode: 'legacy', present: false, fpd: true });
    h.mmio.writeq(DMAR_CCMD_REG, DMA_CCMD_ICC | DMA_CCMD_GLOBAL_INVL);
    expect(read(h, 0x10_0000n)).toMatchObject({ kind: 'fault', code: 0x02 });
    expect(h.mmio.readl(DMAR_FSTS_REG)).toBe(0);
    expect(read(h, 0x10_0000n, 4, 0x0300)).toMatchObject({ kind: 'fault', code: 0x01 });
    expect(h.mmio.readl(DMAR_FSTS_REG)).toBe(DMA_FSTS_PPF);
  });

  it('rejects a write without its data with EINVAL and counts nothing', () => {
    const h = legacy();
    h.enable();
    expect(() =>
      h.vtd.dmaAccess(dmaRequest({ requesterId: SID, addr: 0x10_0000n, size: 4, access: 'write' })),
    ).toThrow(/exactly/);
    expect(h.vtd.stats.dma).toBe(0);
  });
});

describe('VtdModel cache flushing by SRTP and TE', () => {
  it('keeps caches across SRTP without ESRTPS, flushes them with ESRTPS', () => {
    const h = legacy();
    h.enable();
    read(h, 0x10_0000n);
    h.pt.unmap(0x10_0000);
    h.gcmd(DMA_GCMD_SRTP);
    expect(read(h, 0x10_0000n).kind).toBe('completed'); // stale: SRTP alone does not invalidate
    const e = legacy({ esrtps: true });
    e.enable();
    read(e, 0x10_0000n);
    e.pt.unmap(0x10_0000);
    e.gcmd(DMA_GCMD_SRTP);
    expect(read(e, 0x10_0000n)).toMatchObject({ kind: 'fault', code: VTD_FR.READ });
  });

  it('flushes every DMA-remapping cache when TE is cleared on a scalable-mode-capable unit only', () => {
    const s = vtdHarness(); // SMTS unit, run in legacy mode
    const pt = s.slTable(4);
    pt.map(0x10_0000, s.memory.allocPages(0, { zero: true }));
    s.b.setContext(SID, { mode: 'legacy', present: true, tt: 0, slptptr: pt.root, aw: 2, did: 1 });
    s.enable();
    read(s, 0x10_0000n);
    expect(s.vtd.contextCache.has(SID)).toBe(true);
    s.mmio.writel(DMAR_GCMD_REG, 0);
    expect(s.vtd.contextCache.has(SID)).toBe(false);
    expect(s.vtd.iotlb.entries()).toEqual([]);
    const l = legacy();
    l.enable();
    read(l, 0x10_0000n);
    l.mmio.writel(DMAR_GCMD_REG, 0);
    expect(l.vtd.contextCache.has(SID)).toBe(true);
  });

  it('starts processing descriptors queued before QI was enabled', () => {
    const h = legacy();
    const q = h.memory.allocPages(0, { zero: true });
    const slot = h.memory.allocPages(0, { zero: true });
    h.memory.write64(q, 0x0000_0002_0000_0025n);
    h.memory.write64(q + 8, BigInt(slot));
    h.mmio.writeq(DMAR_IQA_REG, BigInt(q));
    h.mmio.writel(0x88, 16);
    h.scheduler.runUntilIdle();
    expect(h.memory.read32(slot)).toBe(0);
    h.gcmd(DMA_GCMD_QIE);
    h.scheduler.runUntilIdle();
    expect(h.memory.read32(slot)).toBe(2);
  });

  it('raises no second fault event for a queue error while a fault is pending', () => {
    const h = legacy();
    h.enable();
    h.unmaskAll();
    read(h, 0x40_0000n);
    h.vtd.atsInvalidateCompletion({ requesterId: 1, itagVector: 1, completionCount: 1 }); // ICE
    h.scheduler.runUntilIdle();
    expect(h.counts.fault).toBe(1);
    expect(h.mmio.readl(DMAR_FSTS_REG) & 0x22).toBe(0x22); // PPF | ICE
  });
});
