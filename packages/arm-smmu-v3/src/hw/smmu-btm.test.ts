import { TlbBroadcast } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { SMMU_CR2 } from './regs.js';
import { s1Cd, s1Ste, smmuHarness } from './smmu.test-helpers.js';
import type { SmmuHwConfig } from './smmu-config.js';

const VA = 0x10_0000;

/**
 * SID 1 translating through one stage-1 CD (ASID 1, ASET as given); VA 0x10_0000 maps to `pa`
 * holding 0xaaaa_aaaa, and `other` holds 0xbbbb_bbbb. `read()` is a DMA read of the VA.
 */
function btmSetup(
  o: {
    aset?: boolean;
    config?: Partial<SmmuHwConfig>;
    strw?: number;
    s2Vmid?: number;
    e2h?: boolean;
    ptm?: boolean;
  } = {},
) {
  const tb = new TlbBroadcast();
  const h = smmuHarness({ btm: true, ...o.config }, false, { tlbBroadcast: tb });
  // CR2 (E2H bit 0, PTM bit 2) is writable only while SMMUEN = 0.
  h.mmio.writel(SMMU_CR2, (o.e2h ? 0x1 : 0) | (o.ptm ? 0x4 : 0));
  h.enable();
  const pt = h.pgtable();
  const cdPa = h.memory.allocPages(0, { zero: true });
  const pa = h.memory.allocPages(0, { zero: true });
  const other = h.memory.allocPages(0, { zero: true });
  h.memory.write32(pa, 0xaaaa_aaaa);
  h.memory.write32(other, 0xbbbb_bbbb);
  pt.map(VA, pa);
  h.cd(cdPa, s1Cd(pt.root, { aset: o.aset ?? false }));
  h.ste(1, s1Ste(cdPa, { ...(o.strw === undefined ? {} : { strw: o.strw }), s2Vmid: o.s2Vmid ?? 0 }));
  const read = (): number | string => {
    const r = h.dma(1, BigInt(VA), 'read');
    return r.kind === 'completed' ? new DataView(r.data?.buffer as ArrayBuffer).getUint32(0, true) : r.kind;
  };
  /** Empty the TLB, fill it through the old mapping, then repoint the PTE without invalidating. */
  const staleFill = (): void => {
    h.smmu.tlb.invalidateAll();
    pt.map(VA, pa);
    expect(read()).toBe(0xaaaa_aaaa);
    pt.map(VA, other);
    expect(read()).toBe(0xaaaa_aaaa); // cached
  };
  return { ...h, tb, pt, pa, other, read, staleFill };
}

describe('SmmuV3Model broadcast TLB maintenance (IDR0.BTM)', () => {
  it('ignores broadcasts while CR2.PTM (private TLB maintenance) is set', () => {
    const h = btmSetup({ ptm: true });
    h.staleFill();
    h.tb.flushTlbMm(1);
    h.tb.flushTlbAll();
    expect(h.smmu.stats.tlbBroadcasts).toBe(0);
    expect(h.read()).toBe(0xaaaa_aaaa); // still the stale translation
  });

  it('subscribes with BTM; every broadcast kind drops the ASET = 0 translation at once, without CMD_SYNC', () => {
    const h = btmSetup();
    expect(h.smmu.broadcastAttached).toBe(true);
    expect(h.tb.hasSubscribers).toBe(true);
    const ops: (() => void)[] = [
      () => h.tb.flushTlbPage(1, VA + 0x123, true),
      () => h.tb.flushTlbRange(1, VA - 0x2000, VA + 0x2000, { rangeSupported: true }),
      () => h.tb.flushTlbMm(1),
      () => h.tb.flushTlbAll(),
    ];
    for (const op of ops) {
      h.staleFill();
      const walks = h.smmu.tlb.stats.walks;
      op();
      expect(h.smmu.tlb.size).toBe(0);
      expect(h.read()).toBe(0xbbbb_bbbb);
      expect(h.smmu.tlb.stats.walks).toBe(walks + 1);
    }
    expect(h.smmu.stats.tlbBroadcasts).toBe(4);
    expect(h.smmu.tlb.entries()[0]?.aset).toBe(false);
  });

  it('leaves other ASIDs and addresses alone', () => {
    const h = btmSetup();
    h.staleFill();
    h.tb.flushTlbPage(2, VA);
    h.tb.flushTlbPage(1, VA + 0x1000);
    h.tb.flushTlbRange(1, VA + 0x1000, VA + 0x5000, { rangeSupported: true });
    h.tb.flushTlbMm(0x101); // 16-bit ASIDs: a different ASID
    expect(h.read()).toBe(0xaaaa_aaaa);
    expect(h.smmu.stats.tlbBroadcasts).toBe(4);
  });

  it('ASET = 1 (private ASID) entries survive every broadcast; a TLBI_NH_VA command removes them', () => {
    const h = btmSetup({ aset: true });
    h.staleFill();
    h.tb.flushTlbPage(1, VA);
    h.tb.flushTlbRange(1, 0, 0x4000_0000, { rangeSupported: true });
    h.tb.flushTlbMm(1);
    h.tb.flushTlbAll();
    expect(h.read()).toBe(0xaaaa_aaaa);
    expect(h.smmu.tlb.entries()[0]?.aset).toBe(true);
    h.cmd({ op: 'TLBI_NH_VA', vmid: 0, asid: 1, addr: BigInt(VA), leaf: true }, { op: 'CMD_SYNC' });
    expect(h.read()).toBe(0xbbbb_bbbb);
  });

  it('without BTM the model does not subscribe and broadcasts change nothing', () => {
    const h = btmSetup({ config: { btm: false } });
    expect(h.smmu.broadcastAttached).toBe(false);
    expect(h.tb.hasSubscribers).toBe(false);
    h.staleFill();
    h.tb.flushTlbAll();
    h.smmu.onTlbBroadcast({ kind: 'aside1is', asid: 1 }); // a direct call is ignored too
    expect(h.read()).toBe(0xaaaa_aaaa);
    expect(h.smmu.stats.tlbBroadcasts).toBe(0);
  });

  it('detachBroadcast unsubscribes (idempotently)', () => {
    const h = btmSetup();
    h.smmu.detachBroadcast();
    h.smmu.detachBroadcast();
    expect(h.smmu.broadcastAttached).toBe(false);
    expect(h.tb.hasSubscribers).toBe(false);
    h.staleFill();
    h.tb.flushTlbAll();
    expect(h.read()).toBe(0xaaaa_aaaa);
    expect(h.smmu.stats.tlbBroadcasts).toBe(0);
  });

  it('a stream whose entries carry a non-zero VMID is not the host EL1 regime: broadcasts skip it', () => {
    const h = btmSetup({ s2Vmid: 5, config: { stage2: true } });
    h.staleFill();
    h.tb.flushTlbAll();
    h.tb.flushTlbMm(1);
    expect(h.read()).toBe(0xaaaa_aaaa);
    h.cmd({ op: 'TLBI_NH_ASID', vmid: 5, asid: 1 }, { op: 'CMD_SYNC' });
    expect(h.read()).toBe(0xbbbb_bbbb);
  });

  it('with CR2.E2H the broadcasts target the EL2 StreamWorld, not NS-EL1', () => {
    const el2 = btmSetup({ config: { hyp: true }, strw: 2, e2h: true });
    el2.staleFill();
    el2.tb.flushTlbPage(1, VA);
    expect(el2.read()).toBe(0xbbbb_bbbb);

    const ns = btmSetup({ config: { hyp: true }, e2h: true }); // STRW = 0 stream under E2H
    ns.staleFill();
    ns.tb.flushTlbMm(1);
    ns.tb.flushTlbAll();
    expect(ns.read()).toBe(0xaaaa_aaaa);
  });

  it('without E2H an EL2 StreamWorld stream (no ASIDs) is untouched by EL1 broadcasts', () => {
    const h = btmSetup({ config: { hyp: true }, strw: 2 });
    h.staleFill();
    h.tb.flushTlbAll();
    h.tb.flushTlbMm(0);
    expect(h.read()).toBe(0xaaaa_aaaa);
  });
});
