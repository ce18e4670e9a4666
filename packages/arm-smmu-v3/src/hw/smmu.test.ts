import {
  type AtsInvalidateRequest,
  type EndpointPort,
  PRG_RESPONSE,
  type PrgResponseMessage,
} from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { encodeSmmuCommand } from './cmdq.js';
import {
  CMDQ_ERR_CERROR_ATC_INV_SYNC,
  CMDQ_ERR_CERROR_ILL,
  CR0_CMDQEN,
  CR0_EVTQEN,
  CR0_SMMUEN,
  GBPA_ABORT,
  GBPA_UPDATE,
  GERROR_CMDQ_ERR,
  SMMU_AIDR,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SMMU_CR0,
  SMMU_CR0ACK,
  SMMU_EVTQ_BASE,
  SMMU_EVTQ_PROD,
  SMMU_GBPA,
  SMMU_GERROR,
  SMMU_GERROR_IRQ_CFG0,
  SMMU_GERROR_IRQ_CFG1,
  SMMU_GERRORN,
  SMMU_IDR0,
  SMMU_IDR1,
  SMMU_IDR3,
  SMMU_IDR5,
  SMMU_IRQ_CTRL,
  SMMU_IRQ_CTRLACK,
  SMMU_STRTAB_BASE,
  SMMU_STRTAB_BASE_CFG,
} from './regs.js';
import { s1Cd, s1Ste, smmuHarness } from './smmu.test-helpers.js';
import { resolveSmmuHwConfig, smmuIdrs } from './smmu-config.js';

const RW = new Uint8Array([1, 2, 3, 4]);

/** A harness with SID 1 translating through a stage-1 CD; VA 0x10_0000 mapped to `pa`. */
function s1Setup(cdExtra = {}, steExtra = {}, config = {}) {
  const h = smmuHarness(config);
  const pt = h.pgtable();
  const cdPa = h.memory.allocPages(0, { zero: true });
  const pa = h.memory.allocPages(0, { zero: true });
  pt.map(0x10_0000, pa);
  h.cd(cdPa, s1Cd(pt.root, cdExtra));
  h.ste(1, s1Ste(cdPa, steExtra));
  return { ...h, pt, cdPa, pa };
}

describe('SmmuV3Model registers', () => {
  it('shows the ID registers and QEMU reset values', () => {
    const h = smmuHarness({}, false);
    const ids = smmuIdrs(resolveSmmuHwConfig());
    expect(h.mmio.readl(SMMU_IDR0)).toBe(ids.idr0);
    expect(h.mmio.readl(SMMU_IDR1)).toBe(ids.idr1);
    expect(h.mmio.readl(SMMU_IDR3)).toBe(ids.idr3);
    expect(h.mmio.readl(SMMU_IDR5)).toBe(ids.idr5);
    expect(h.mmio.readl(SMMU_AIDR)).toBe(1);
    expect(h.mmio.readl(SMMU_GBPA)).toBe(0x1000);
    for (const off of [
      SMMU_CR0,
      SMMU_CR0ACK,
      SMMU_IRQ_CTRL,
      SMMU_GERROR,
      SMMU_GERRORN,
      SMMU_CMDQ_PROD,
      SMMU_CMDQ_CONS,
    ])
      expect(h.mmio.readl(off)).toBe(0);
    expect(h.mmio.readl(0xfe0)).toBe(0x84);
    expect(h.mmio.readl(0xfd0)).toBe(0x04);
    expect(h.mmio.size).toBe(0x20000);
  });

  it('acknowledges CR0 and IRQ_CTRL writes and masks reserved bits', () => {
    const h = smmuHarness({ pri: false, priqLog2: 0 }, false);
    h.mmio.writel(SMMU_CR0, 0xffff_ffff);
    expect(h.mmio.readl(SMMU_CR0ACK)).toBe(0x3dd); // no PRIQEN without PRI, bit 5 reserved
    h.mmio.writel(SMMU_IRQ_CTRL, 0xff);
    expect(h.mmio.readl(SMMU_IRQ_CTRLACK)).toBe(0x5);
  });

  it('accesses 64-bit registers by halves and page 1 through its alias', () => {
    const h = smmuHarness({}, false);
    h.mmio.writel(SMMU_STRTAB_BASE, 0x4010_0000);
    h.mmio.writel(SMMU_STRTAB_BASE + 4, 0x4000_0000);
    expect(h.mmio.readq(SMMU_STRTAB_BASE)).toBe(0x4000_0000_4010_0000n);
    h.mmio.writeq(SMMU_EVTQ_BASE, 0x4020_0003n);
    expect(h.mmio.readl(SMMU_EVTQ_BASE)).toBe(0x4020_0003);
    h.mmio.writel(SMMU_EVTQ_PROD, 5);
    expect(h.mmio.readl(0xa8)).toBe(5);
  });

  it('ignores base writes while the structure is in use', () => {
    const h = smmuHarness();
    const strtab = h.mmio.readq(SMMU_STRTAB_BASE);
    h.mmio.writeq(SMMU_STRTAB_BASE, 0x1234_0000n);
    h.mmio.writel(SMMU_STRTAB_BASE_CFG, 3);
    expect(h.mmio.readq(SMMU_STRTAB_BASE)).toBe(strtab);
    expect(h.mmio.readl(SMMU_STRTAB_BASE_CFG)).toBe(8);
    const cq = h.mmio.readq(SMMU_CMDQ_BASE);
    h.mmio.writeq(SMMU_CMDQ_BASE, 0n);
    expect(h.mmio.readq(SMMU_CMDQ_BASE)).toBe(cq);
  });

  it('updates GBPA only with UPDATE and applies it while SMMUEN=0', () => {
    const h = smmuHarness({}, false);
    const pa = h.memory.allocPages(0, { zero: true });
    h.memory.write32(pa, 0xcafe_f00d);
    const r = h.dma(5, BigInt(pa), 'read');
    expect(r).toEqual({ kind: 'completed', data: new Uint8Array([0x0d, 0xf0, 0xfe, 0xca]) });
    h.mmio.writel(SMMU_GBPA, GBPA_ABORT);
    expect(h.mmio.readl(SMMU_GBPA)).toBe(0x1000);
    h.mmio.writel(SMMU_GBPA, (GBPA_ABORT | GBPA_UPDATE) >>> 0);
    expect(h.mmio.readl(SMMU_GBPA)).toBe(GBPA_ABORT);
    expect(h.dma(5, BigInt(pa), 'read')).toMatchObject({ kind: 'fault', reason: 'blocked' });
  });
});

describe('SmmuV3Model command queue', () => {
  it('completes CMD_SYNC with CS=NONE, IRQ (wired and MSI) and SEV', () => {
    const h = smmuHarness();
    let sev = 0;
    h.smmu.onSev = () => sev++;
    h.cmd({ op: 'CMD_SYNC', cs: 0 });
    expect(h.mmio.readl(SMMU_CMDQ_CONS)).toBe(1);
    h.cmd({ op: 'CMD_SYNC', cs: 2 });
    expect(sev).toBe(1);
    expect(h.smmu.stats.sev).toBe(1);
    h.cmd({ op: 'CMD_SYNC', cs: 1 });
    expect(h.counts.cmdqSync.n).toBe(1);
    // Linux MSI polling: MSIAddress = the SYNC's own slot, MSIData = 0 → the first word is zeroed
    const slot = h.cmdqPa + 3 * 16;
    h.pushRaw(encodeSmmuCommand({ op: 'CMD_SYNC', cs: 1, msh: 3, msiAttr: 0xf, msiAddr: BigInt(slot) }));
    expect(h.memory.read32(slot)).toBe(0x0fc0_1046);
    h.scheduler.runUntilIdle();
    expect(h.memory.read32(slot)).toBe(0);
    const target = h.memory.allocPages(0, { zero: true });
    h.cmd({ op: 'CMD_SYNC', cs: 1, msiData: 0xdead_beef, msiAddr: BigInt(target + 8) });
    expect(h.memory.read32(target + 8)).toBe(0xdead_beef);
    expect(h.smmu.msiLog.at(-1)).toEqual({
      source: 'cmdq-sync',
      addr: BigInt(target + 8),
      data: 0xdead_beef,
    });
    expect(h.counts.cmdqSync.n).toBe(1);
    expect(h.smmu.cmdq.stats.syncs).toBe(5);
  });

  it('consumes only once scheduled, and not while CMDQEN=0', () => {
    const h = smmuHarness();
    h.pushRaw(encodeSmmuCommand({ op: 'CMD_SYNC' }));
    expect(h.mmio.readl(SMMU_CMDQ_CONS)).toBe(0);
    h.mmio.writel(SMMU_CR0, CR0_SMMUEN | CR0_EVTQEN);
    h.scheduler.runUntilIdle();
    expect(h.mmio.readl(SMMU_CMDQ_CONS)).toBe(0);
    h.mmio.writel(SMMU_CR0, CR0_SMMUEN | CR0_EVTQEN | CR0_CMDQEN);
    h.scheduler.runUntilIdle();
    expect(h.mmio.readl(SMMU_CMDQ_CONS)).toBe(1);
  });

  it('wraps CONS with the wrap bit', () => {
    const h = smmuHarness();
    for (let i = 0; i < 20; i++) h.cmd({ op: 'PREFETCH_CONFIG', sid: 1 });
    // 16 entries: index 4, wrap 1
    expect(h.mmio.readl(SMMU_CMDQ_CONS)).toBe(0x14);
    expect(h.smmu.cmdq.stats.byName.get('PREFETCH_CONFIG')).toBe(20);
  });

  it('stops at an illegal command with CERROR_ILL and resumes after GERRORN', () => {
    const h = smmuHarness();
    h.pushRaw(encodeSmmuCommand({ op: 'CMD_SYNC' }));
    const bad = h.pushRaw([0x07, 0, 0, 0]);
    h.pushRaw(encodeSmmuCommand({ op: 'CMD_SYNC', cs: 1 }));
    h.scheduler.runUntilIdle();
    expect(h.mmio.readl(SMMU_CMDQ_CONS)).toBe((1 | (CMDQ_ERR_CERROR_ILL << 24)) >>> 0);
    expect(h.mmio.readl(SMMU_GERROR)).toBe(GERROR_CMDQ_ERR);
    expect(h.counts.gerror.n).toBe(1);
    expect(h.counts.cmdqSync.n).toBe(0);
    // Linux's recovery: replace the bad command with a CMD_SYNC and acknowledge
    const sync = encodeSmmuCommand({ op: 'CMD_SYNC' });
    for (let i = 0; i < 4; i++) h.memory.write32(bad + i * 4, sync[i] as number);
    h.mmio.writel(SMMU_GERRORN, h.mmio.readl(SMMU_GERROR));
    h.scheduler.runUntilIdle();
    expect(h.mmio.readl(SMMU_CMDQ_CONS) & 0xff).toBe(3);
    expect(h.counts.cmdqSync.n).toBe(1);
    // a second error toggles GERROR back
    h.cmd({ op: 'TLBI_EL2_ALL' });
    expect(h.mmio.readl(SMMU_GERROR)).toBe(0);
    expect(h.smmu.activeGerrors).toBe(GERROR_CMDQ_ERR);
  });

  it('raises the GERROR MSI when configured', () => {
    const h = smmuHarness({}, false);
    const db = h.memory.allocPages(0, { zero: true });
    h.mmio.writeq(SMMU_GERROR_IRQ_CFG0, BigInt(db));
    h.mmio.writel(SMMU_GERROR_IRQ_CFG1, 0x42);
    h.enable();
    h.cmd({ op: 'CMD_SYNC', cs: 3 });
    expect(h.memory.read32(db)).toBe(0x42);
    expect(h.counts.gerror.n).toBe(0);
  });

  it('invalidates STEs only on CFGI (stale STE until then)', () => {
    const h = s1Setup();
    h.memory.write32(h.pa, 0x1111_1111);
    expect(h.dma(1, 0x10_0000n, 'read')).toMatchObject({ kind: 'completed' });
    h.ste(1, { v: true, config: 0 }); // abort STE, not yet invalidated
    expect(h.dma(1, 0x10_0000n, 'read')).toMatchObject({ kind: 'completed' });
    h.cmd({ op: 'CFGI_STE', sid: 1, leaf: true }, { op: 'CMD_SYNC' });
    expect(h.dma(1, 0x10_0000n, 'read')).toMatchObject({ kind: 'fault', reason: 'blocked' });
    h.ste(1, s1Ste(h.cdPa));
    h.cmd({ op: 'CFGI_STE_RANGE', sid: 0, range: 31 }, { op: 'CMD_SYNC' });
    expect(h.dma(1, 0x10_0000n, 'read')).toMatchObject({ kind: 'completed' });
    // CD changes need CFGI_CD
    h.cd(h.cdPa, s1Cd(h.pt.root, { v: false }));
    expect(h.dma(1, 0x10_0000n, 'read')).toMatchObject({ kind: 'completed' });
    h.cmd({ op: 'CFGI_CD', sid: 1, ssid: 0, leaf: true }, { op: 'CMD_SYNC' });
    h.cmd({ op: 'TLBI_NH_ASID', asid: 1 }, { op: 'CMD_SYNC' });
    expect(h.dma(1, 0x10_0000n, 'read')).toMatchObject({ kind: 'fault', code: 'C_BAD_CD' });
  });

  it('keeps a stale translation until TLBI_NH_VA / NH_ASID / NSNH_ALL', () => {
    const h = s1Setup();
    const other = h.memory.allocPages(0, { zero: true });
    h.memory.write32(h.pa, 0xaaaa_aaaa);
    h.memory.write32(other, 0xbbbb_bbbb);
    const read = () => {
      const r = h.dma(1, 0x10_0000n, 'read');
      return r.kind === 'completed' ? new DataView(r.data?.buffer as ArrayBuffer).getUint32(0, true) : r.kind;
    };
    expect(read()).toBe(0xaaaa_aaaa);
    h.pt.map(0x10_0000, other);
    expect(read()).toBe(0xaaaa_aaaa);
    h.cmd({ op: 'TLBI_NH_VA', vmid: 0, asid: 2, addr: 0x10_0000n, leaf: true }, { op: 'CMD_SYNC' });
    expect(read()).toBe(0xaaaa_aaaa); // wrong ASID
    h.cmd({ op: 'TLBI_NH_VA', vmid: 0, asid: 1, addr: 0x10_0000n, leaf: true }, { op: 'CMD_SYNC' });
    expect(read()).toBe(0xbbbb_bbbb);
    h.pt.map(0x10_0000, h.pa);
    h.cmd({ op: 'TLBI_NH_ASID', vmid: 0, asid: 1 }, { op: 'CMD_SYNC' });
    expect(read()).toBe(0xaaaa_aaaa);
    h.pt.map(0x10_0000, other);
    // RIL range: 2 × 2^1 pages of 4K from 0x10_0000 − 0x2000 covers it
    h.cmd(
      { op: 'TLBI_NH_VA', vmid: 0, asid: 1, addr: 0xf_e000n, tg: 1, num: 1, scale: 1, leaf: true },
      { op: 'CMD_SYNC' },
    );
    expect(read()).toBe(0xbbbb_bbbb);
    h.pt.map(0x10_0000, h.pa);
    h.cmd({ op: 'TLBI_NSNH_ALL' }, { op: 'CMD_SYNC' });
    expect(read()).toBe(0xaaaa_aaaa);
  });

  it('ignores range fields without RIL', () => {
    const h = s1Setup({}, {}, { ril: false });
    const other = h.memory.allocPages(0, { zero: true });
    h.dma(1, 0x10_0000n, 'read');
    h.pt.map(0x10_0000, other);
    // as a single-address invalidation of 0xf_e000 it misses 0x10_0000
    h.cmd({ op: 'TLBI_NH_VA', asid: 1, addr: 0xf_e000n, tg: 1, num: 1, scale: 1 }, { op: 'CMD_SYNC' });
    expect(h.smmu.tlb.size).toBe(1);
  });
});

describe('SmmuV3Model events', () => {
  it('records configuration errors with their fields', () => {
    const h = s1Setup();
    expect(h.dma(0x300, 0x1000n, 'read')).toMatchObject({
      kind: 'fault',
      reason: 'bad-requester',
      code: 'C_BAD_STREAMID',
    });
    h.ste(2, { v: false });
    expect(h.dma(2, 0x1000n, 'write', { pasid: 3 })).toMatchObject({ code: 'C_BAD_STE' });
    expect(h.dma(1, 0x10_0000n, 'read', { pasid: 1 })).toMatchObject({
      reason: 'bad-pasid',
      code: 'C_BAD_SUBSTREAMID',
    });
    const cd2 = h.memory.allocPages(0, { zero: true });
    h.cd(cd2, s1Cd(h.pt.root, { aa64: false }));
    h.ste(3, s1Ste(cd2));
    expect(h.dma(3, 0x10_0000n, 'read')).toMatchObject({ code: 'C_BAD_CD' });
    h.ste(4, s1Ste(0x3000_0000)); // CD outside RAM
    expect(h.dma(4, 0x10_0000n, 'read')).toMatchObject({ code: 'F_CD_FETCH', reason: 'bus' });
    h.ste(5, s1Ste(h.cdPa, { s1CdMax: 2, s1Dss: 0 }));
    expect(h.dma(5, 0x10_0000n, 'read')).toMatchObject({ code: 'F_STREAM_DISABLED' });
    const evs = h.events();
    expect(evs.map((e) => e.type)).toEqual([
      'C_BAD_STREAMID',
      'C_BAD_STE',
      'C_BAD_SUBSTREAMID',
      'C_BAD_CD',
      'F_CD_FETCH',
      'F_STREAM_DISABLED',
    ]);
    expect(evs[0]).toMatchObject({ sid: 0x300, ssv: false });
    expect(evs[1]).toMatchObject({ sid: 2, ssv: true, ssid: 3 });
    expect(evs[2]).toMatchObject({ sid: 1, ssv: true, ssid: 1 });
    expect(evs[4]).toMatchObject({ sid: 4, fetchAddr: 0x3000_0000n });
    h.scheduler.runUntilIdle();
    expect(h.counts.evtq.n).toBe(1); // raises coalesce into one delivery
  });

  it('records F_STE_FETCH with the fetch address', () => {
    const h = smmuHarness({}, false);
    h.mmio.writeq(SMMU_STRTAB_BASE, 0x3000_0000n);
    h.mmio.writel(SMMU_STRTAB_BASE_CFG, 8);
    h.enable();
    // enable() re-programmed the table; program an unbacked one again
    h.mmio.writel(SMMU_CR0, CR0_CMDQEN | CR0_EVTQEN);
    h.mmio.writeq(SMMU_STRTAB_BASE, 0x3000_0000n);
    h.mmio.writel(SMMU_CR0, CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
    expect(h.dma(2, 0n, 'read')).toMatchObject({ code: 'F_STE_FETCH' });
    expect(h.events()).toEqual([
      expect.objectContaining({ type: 'F_STE_FETCH', sid: 2, fetchAddr: 0x3000_0080n }),
    ]);
  });

  it('records translation faults with RnW, PnU, InD, CLASS and InputAddr, gated by CD.R', () => {
    const h = s1Setup();
    expect(h.dma(1, 0x20_0123n, 'read', { privileged: true, exec: true })).toMatchObject({
      kind: 'fault',
      reason: 'translation',
      code: 'F_TRANSLATION',
    });
    h.pt.map(0x30_0000, h.pa, 3, { ap: 3 }); // read-only
    expect(h.dma(1, 0x30_0010n, 'write', { data: RW })).toMatchObject({
      reason: 'permission',
      code: 'F_PERMISSION',
    });
    h.pt.map(0x40_0000, h.pa, 3, { af: false });
    expect(h.dma(1, 0x40_0000n, 'read')).toMatchObject({ reason: 'access-flag', code: 'F_ACCESS' });
    const evs = h.events();
    expect(evs[0]).toMatchObject({
      type: 'F_TRANSLATION',
      sid: 1,
      rnw: true,
      pnu: true,
      ind: true,
      s2: false,
      inputAddr: 0x20_0123n,
      stall: false,
    });
    expect(evs[1]).toMatchObject({
      type: 'F_PERMISSION',
      rnw: false,
      pnu: false,
      inputAddr: 0x30_0010n,
      class: 2,
    });
    expect(evs[2]).toMatchObject({ type: 'F_ACCESS', inputAddr: 0x40_0000n });
    // CD.R = 0: terminated without a record
    h.cd(h.cdPa, s1Cd(h.pt.root, { r: false }));
    h.cmd({ op: 'CFGI_CD', sid: 1, leaf: true }, { op: 'CMD_SYNC' });
    expect(h.dma(1, 0x20_0000n, 'read')).toMatchObject({ code: 'F_TRANSLATION' });
    expect(h.events()).toEqual([]);
  });

  it('records F_WALK_EABT and stage-2 faults with S2 and IPA', () => {
    const h = s1Setup();
    h.pt.writeRaw(0x50_0000, 2, 0x3000_0003, 0); // table descriptor to a non-RAM address
    expect(h.dma(1, 0x50_0000n, 'read')).toMatchObject({ code: 'F_WALK_EABT', reason: 'bus' });
    const s2 = h.pgtable(2);
    s2.map(0x8000_0000, h.pa);
    h.ste(9, {
      v: true,
      config: 6,
      s2Vmid: 7,
      s2T0sz: 16,
      s2Sl0: 2,
      s2Tg: 0,
      s2Ps: 5,
      s2Aa64: true,
      s2R: true,
      s2Ttb: s2.root,
    });
    expect(h.dma(9, 0x8000_0004n, 'read')).toMatchObject({ kind: 'completed' });
    expect(h.dma(9, 0x9000_0004n, 'write', { data: RW })).toMatchObject({ code: 'F_TRANSLATION' });
    const evs = h.events();
    expect(evs[0]).toMatchObject({ type: 'F_WALK_EABT', class: 1 });
    expect(evs[0]?.fetchAddr).not.toBe(0n);
    expect(evs[1]).toMatchObject({
      type: 'F_TRANSLATION',
      sid: 9,
      s2: true,
      rnw: false,
      ipa: 0x9000_0000n,
      inputAddr: 0x9000_0004n,
    });
    // TLBI_S12_VMALL drops the stage-2 translation
    const other = h.memory.allocPages(0, { zero: true });
    h.memory.write32(other, 7);
    s2.map(0x8000_0000, other);
    h.cmd({ op: 'TLBI_S12_VMALL', vmid: 7 }, { op: 'CMD_SYNC' });
    const r = h.dma(9, 0x8000_0000n, 'read');
    expect(r.kind === 'completed' && r.data?.[0]).toBe(7);
  });

  it('terminates ATS-translated traffic without EATS (F_TRANSL_FORBIDDEN)', () => {
    const h = s1Setup();
    expect(h.dma(1, BigInt(h.pa), 'read', { ats: true })).toMatchObject({
      reason: 'ats-not-allowed',
      code: 'F_TRANSL_FORBIDDEN',
    });
    expect(h.events()[0]).toMatchObject({ type: 'F_TRANSL_FORBIDDEN', sid: 1, rnw: true });
  });

  it('overflows the event queue (OVFLG) and keeps working after the acknowledgement', () => {
    const h = s1Setup();
    for (let i = 0; i < 10; i++) h.dma(0x300, 0n, 'read');
    const prod = h.mmio.readl(SMMU_EVTQ_PROD);
    expect(prod >>> 31).toBe(1);
    expect(prod & 0xf).toBe(0x8); // 8 entries written, wrap set
    expect(h.smmu.evtq.dropped).toBe(2);
    expect(h.events()).toHaveLength(8); // also acknowledges OVFLG
    expect(h.smmu.evtq.overflowActive).toBe(false);
    h.dma(0x300, 0n, 'read');
    expect(h.events()).toHaveLength(1);
  });
});

describe('SmmuV3Model stall', () => {
  it('stalls with STALL=1 and a STAG, and completes on CMD_RESUME retry', () => {
    const h = s1Setup({ s: true });
    const out = h.dma(1, 0x60_0008n, 'write', { data: RW });
    expect(out.kind).toBe('pending');
    if (out.kind !== 'pending') return;
    const [ev] = h.events();
    expect(ev).toMatchObject({
      type: 'F_TRANSLATION',
      stall: true,
      sid: 1,
      inputAddr: 0x60_0008n,
      rnw: false,
    });
    expect(ev?.stag).toBe(out.pending.tag);
    expect(h.smmu.stalledCount).toBe(1);
    // retry without fixing the fault stalls again with the same STAG
    h.cmd({ op: 'RESUME', sid: 1, stag: out.pending.tag, resp: 1 });
    expect(out.pending.settled).toBe(false);
    expect(h.events()).toEqual([expect.objectContaining({ stall: true, stag: out.pending.tag })]);
    h.pt.map(0x60_0000, h.pa);
    h.cmd({ op: 'RESUME', sid: 1, stag: out.pending.tag, resp: 1 });
    expect(out.pending.outcome).toEqual({ kind: 'completed' });
    expect([...h.memory.readBytes(h.pa + 8, 4)]).toEqual([1, 2, 3, 4]);
    expect(h.smmu.stalledCount).toBe(0);
  });

  it('aborts on CMD_RESUME abort, terminates all of a SID on STALL_TERM, ignores unknown STAGs', () => {
    const h = s1Setup({ s: true });
    const a = h.dma(1, 0x70_0000n, 'read');
    const b = h.dma(1, 0x71_0000n, 'read');
    const c = h.dma(1, 0x72_0000n, 'read');
    if (a.kind !== 'pending' || b.kind !== 'pending' || c.kind !== 'pending') throw new Error('not stalled');
    h.cmd({ op: 'RESUME', sid: 2, stag: a.pending.tag, resp: 2 });
    expect(a.pending.settled).toBe(false);
    h.cmd({ op: 'RESUME', sid: 1, stag: a.pending.tag, resp: 2 });
    expect(a.pending.outcome).toMatchObject({ kind: 'fault', reason: 'terminated' });
    h.cmd({ op: 'STALL_TERM', sid: 1 });
    expect(b.pending.outcome).toMatchObject({ kind: 'fault', reason: 'terminated' });
    expect(c.pending.outcome).toMatchObject({ kind: 'fault', reason: 'terminated' });
    expect(h.smmu.stalledCount).toBe(0);
  });

  it('holds a stall record while the event queue is full and writes it once there is room', () => {
    const h = s1Setup({ s: true });
    for (let i = 0; i < 8; i++) h.dma(0x300, 0n, 'read');
    const p = h.dma(1, 0x60_0000n, 'read');
    expect(p.kind).toBe('pending');
    expect(h.smmu.evtq.overflowActive).toBe(false);
    const first = h.events(); // drains 8, then the held record is written
    expect(first).toHaveLength(8);
    expect(h.events()).toEqual([expect.objectContaining({ stall: true, sid: 1 })]);
  });

  it('terminates stalled transactions when SMMUEN is cleared', () => {
    const h = s1Setup({ s: true });
    const p = h.dma(1, 0x60_0000n, 'read');
    h.mmio.writel(SMMU_CR0, CR0_CMDQEN | CR0_EVTQEN);
    expect(p.kind === 'pending' && p.pending.outcome?.kind).toBe('fault');
  });
});

class FakePort implements EndpointPort {
  readonly inv: AtsInvalidateRequest[] = [];
  readonly prg: PrgResponseMessage[] = [];
  constructor(readonly requesterId: number) {}
  atsInvalidate(msg: AtsInvalidateRequest): void {
    this.inv.push(msg);
  }
  prgResponse(msg: PrgResponseMessage): void {
    this.prg.push(msg);
  }
}

describe('SmmuV3Model PRI', () => {
  it('records page requests and answers them with CMD_PRI_RESP', () => {
    const h = smmuHarness();
    const port = new FakePort(0x20);
    h.smmu.connectEndpoint(port);
    h.smmu.pageRequest({
      requesterId: 0x20,
      pasid: 5,
      addr: 0x1234_5000n,
      read: true,
      write: true,
      exec: false,
      privileged: false,
      last: true,
      prgIndex: 17,
    });
    expect(h.priRecords()).toEqual([
      {
        sid: 0x20,
        ssv: true,
        ssid: 5,
        priv: false,
        exec: false,
        read: true,
        write: true,
        last: true,
        prgIndex: 17,
        addr: 0x1234_5000n,
      },
    ]);
    h.scheduler.runUntilIdle();
    expect(h.counts.priq.n).toBe(1);
    h.cmd({ op: 'PRI_RESP', sid: 0x20, ssv: true, ssid: 5, prgIndex: 17, resp: 2 });
    h.cmd({ op: 'PRI_RESP', sid: 0x20, prgIndex: 18, resp: 0 });
    h.cmd({ op: 'PRI_RESP', sid: 0x20, prgIndex: 19, resp: 1 });
    expect(port.prg).toEqual([
      { requesterId: 0x20, prgIndex: 17, code: PRG_RESPONSE.SUCCESS, pasid: 5 },
      { requesterId: 0x20, prgIndex: 18, code: PRG_RESPONSE.INVALID_REQUEST },
      { requesterId: 0x20, prgIndex: 19, code: PRG_RESPONSE.RESPONSE_FAILURE },
    ]);
  });

  it('overflows the PRI queue with automatic responses', () => {
    const h = smmuHarness();
    const port = new FakePort(0x20);
    h.smmu.connectEndpoint(port);
    const ppr = (i: number, last: boolean) => ({
      requesterId: 0x20,
      addr: 0n,
      read: true,
      write: false,
      exec: false,
      privileged: false,
      last,
      prgIndex: i,
    });
    for (let i = 0; i < 4; i++) h.smmu.pageRequest(ppr(i, false));
    h.smmu.pageRequest(ppr(4, true));
    expect(port.prg).toEqual([{ requesterId: 0x20, prgIndex: 4, code: PRG_RESPONSE.SUCCESS }]);
    expect(h.smmu.priq.overflowActive).toBe(true);
    expect(h.priRecords()).toHaveLength(4);
    h.smmu.pageRequest(ppr(5, true));
    expect(h.priRecords()).toHaveLength(1);
  });
});

describe('SmmuV3Model ATS', () => {
  it('waits for ATS invalidation completions at CMD_SYNC', () => {
    const h = smmuHarness();
    const port = new FakePort(0x20);
    h.smmu.connectEndpoint(port);
    h.pushRaw(encodeSmmuCommand({ op: 'ATC_INV', sid: 0x20, ssv: true, ssid: 3, addr: 0x40_0000n, size: 1 }));
    h.pushRaw(encodeSmmuCommand({ op: 'CMD_SYNC', cs: 1 }));
    h.scheduler.runUntil(() => h.smmu.cmdq.waitingForAtc);
    expect(port.inv).toEqual([
      { requesterId: 0x20, pasid: 3, global: false, addr: 0x40_0000n, s: true, itag: 0 },
    ]);
    expect(h.mmio.readl(SMMU_CMDQ_CONS)).toBe(1); // stuck on the SYNC
    expect(h.counts.cmdqSync.n).toBe(0);
    h.smmu.atsInvalidateCompletion({ requesterId: 0x20, itagVector: 1, completionCount: 1 });
    h.scheduler.runUntilIdle();
    expect(h.mmio.readl(SMMU_CMDQ_CONS)).toBe(2);
    expect(h.counts.cmdqSync.n).toBe(1);
    expect(h.scheduler.now).toBe(0);
  });

  it('fails the CMD_SYNC with CERROR_ATC_INV_SYNC when no completion arrives', () => {
    const h = smmuHarness({ atcInvTimeoutNs: 1000 });
    h.smmu.connectEndpoint(new FakePort(0x20));
    h.cmd({ op: 'ATC_INV', sid: 0x20, size: 52 }, { op: 'CMD_SYNC' });
    expect((h.mmio.readl(SMMU_CMDQ_CONS) >>> 24) & 0x7f).toBe(CMDQ_ERR_CERROR_ATC_INV_SYNC);
    expect(h.mmio.readl(SMMU_CMDQ_CONS) & 0xff).toBe(1);
    expect(h.scheduler.now).toBe(1000);
  });
});
