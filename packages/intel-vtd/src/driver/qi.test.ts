import { describe, expect, it } from 'vitest';
import {
  QI_ABORT,
  QiBatch,
  qiDescCc,
  qiDescDevIotlb,
  qiDescDevIotlbPasid,
  qiDescIotlb,
  qiDescPc,
  qiDescPgrpResp,
  qiDescPiotlb,
  qiFlushDevIotlb,
  qiSubmitSync,
} from './qi.js';
import { DMA_FSTS_IQE, DMAR_FSTS_REG, DMAR_IQH_REG, DMAR_IQT_REG } from './regs.js';
import { unitHarness } from './unit.test-helpers.js';

const LEGACY = {
  smts: false,
  flts: false,
  slts: false,
  pasid: false,
  prs: false,
  nest: false,
  slads: false,
} as const;

function ready(config: Parameters<typeof unitHarness>[0] = {}) {
  const h = unitHarness(config);
  h.unit.probe();
  h.unit.initDmar();
  h.writes.length = 0;
  return h;
}

describe('descriptor builders (digest §4)', () => {
  it('context-cache device-selective', () => {
    expect(qiDescCc(0x1234, 0x0210, 3, 'device')).toEqual({
      qw0: 0x0003_0210_1234_0031n,
      qw1: 0n,
      qw2: 0n,
      qw3: 0n,
    });
  });
  it('IOTLB page-selective with DW/DR from CAP and AM', () => {
    const h = ready({ config: LEGACY });
    const d = qiDescIotlb(h.unit, 5, 0x1234_5fffn, 3, 'page');
    expect(d.qw0).toBe((5n << 16n) | 0xc0n | 0x30n | 2n);
    expect(d.qw1).toBe(0x1234_5003n);
  });
  it('device-TLB: one page, 2^m pages, everything; qdep ≥ 32 → 0; PFSID split', () => {
    expect(qiDescDevIotlb(0x0300, 0, 4, 0x5000n, 0)).toEqual({
      qw0: (0x0300n << 32n) | (4n << 16n) | 3n,
      qw1: 0x5000n,
      qw2: 0n,
      qw3: 0n,
    });
    // 4 pages at 0x8000: bits 12 set, 13 clear, S=1.
    expect(qiDescDevIotlb(0x0300, 0, 32, 0x8000n, 2).qw1).toBe(0x9001n);
    expect(qiDescDevIotlb(0x0300, 0, 32, 0x8000n, 2).qw0).toBe((0x0300n << 32n) | 3n);
    expect(qiDescDevIotlb(1, 0, 0, 0n, 52).qw1).toBe(0x7fff_ffff_ffff_f001n);
    expect(qiDescDevIotlb(1, 0xabcd, 0, 0n, 0).qw0 & ~0xffff_ffffn).toBe((0xabcn << 52n) | (1n << 32n));
    expect(qiDescDevIotlb(1, 0xabcd, 0, 0n, 0).qw0 & 0xf000n).toBe(0xd000n);
  });
  it('PASID-based IOTLB: all and page forms', () => {
    expect(qiDescPiotlb(9, 0x12345, 0n, 'all', false)).toEqual({
      qw0: (0x12345n << 32n) | (9n << 16n) | 0x20n | 6n,
      qw1: 0n,
      qw2: 0n,
      qw3: 0n,
    });
    const p = qiDescPiotlb(9, 1, 0x40_0000n, 5, true);
    expect(p.qw0).toBe((1n << 32n) | (9n << 16n) | 0x30n | 6n);
    expect(p.qw1).toBe(0x40_0000n | 0x40n | 3n);
    expect(() => qiDescPiotlb(9, 1, 0n, 0, false)).toThrowError(expect.objectContaining({ code: 'EINVAL' }));
  });
  it('PASID-cache, PASID device-TLB and page group response', () => {
    expect(qiDescPc(7, 1, 0x55).qw0).toBe((0x55n << 32n) | (7n << 16n) | 0x10n | 7n);
    const d = qiDescDevIotlbPasid(0x0300, 0, 0x42, 8, 0x10000n, 4);
    expect(d.qw0).toBe((0x42n << 32n) | (0x0300n << 16n) | (8n << 4n) | 8n);
    expect(d.qw1).toBe(0x10000n | 0x7000n | 0x800n);
    const r = qiDescPgrpResp(0x0310, true, 0x77, 1, 0x1ff);
    expect(r).toEqual({
      qw0: (0x77n << 32n) | (0x0310n << 16n) | 0x1000n | 0x10n | 9n,
      qw1: 0xff8n,
      qw2: 0n,
      qw3: 0n,
    });
  });
});

describe('qiSubmitSync', () => {
  it('writes descriptors + a status-write wait, polls the status, frees the slots', () => {
    const h = ready({ config: LEGACY });
    const qi = h.unit.qi;
    if (qi === null) throw new Error('no qi');
    const head = qi.freeHead;
    qiSubmitSync(h.unit, [qiDescCc(3, 0, 0, 'domain'), qiDescIotlb(h.unit, 3, 0n, 0, 'domain')]);
    expect(h.memory.read64(qi.descPa + head * 16)).toBe((3n << 16n) | 0x21n);
    const wait = head + 2;
    expect(h.memory.read64(qi.descPa + wait * 16)).toBe((2n << 32n) | 0x25n);
    expect(h.memory.read64(qi.descPa + wait * 16 + 8)).toBe(BigInt(qi.statusPa + 4 * wait));
    expect(h.writes).toEqual([{ op: 'writeq', off: DMAR_IQT_REG, val: BigInt((head + 3) * 16) }]);
    expect(h.memory.read32(qi.statusPa + 4 * wait)).toBe(0); // freed after completion
    expect(qi.freeCnt).toBe(256);
    expect(h.vtd.mmio.readq(DMAR_IQH_REG)).toBe(BigInt((head + 3) * 16));
  });

  it('wraps around the 256-slot queue', () => {
    const h = ready();
    const qi = h.unit.qi;
    if (qi === null) throw new Error('no qi');
    for (let i = 0; i < 300; i++) qiSubmitSync(h.unit, [qiDescPc(i & 0xffff, 1, i)]);
    // 6 slots used at init, then 600 more: head = 606 mod 256 = 94.
    expect(qi.freeHead).toBe(94);
    expect(qi.freeTail).toBe(94);
    expect(qi.freeCnt).toBe(256);
    expect(h.writes.at(-1)).toEqual({ op: 'writeq', off: DMAR_IQT_REG, val: BigInt(94 * 32) });
    expect(h.vtd.mmio.readq(DMAR_IQH_REG)).toBe(BigInt(94 * 32));
    expect(h.unit.stats.qiSubmits).toBe(303);
  });

  it('IQE on the first descriptor: replaced by the wait, IQE cleared, EINVAL, queue usable after', () => {
    const h = ready({ config: LEGACY });
    const qi = h.unit.qi;
    if (qi === null) throw new Error('no qi');
    const head = qi.freeHead;
    const bad = { qw0: 0xfn, qw1: 0n, qw2: 0n, qw3: 0n };
    expect(() => qiSubmitSync(h.unit, [bad])).toThrowError(expect.objectContaining({ code: 'EINVAL' }));
    expect(h.unit.stats.qiIqe).toBe(1);
    // The bad slot now holds a copy of the wait descriptor.
    expect(h.memory.read64(qi.descPa + head * 16)).toBe((2n << 32n) | 0x25n);
    expect(h.writes).toContainEqual({ op: 'writel', off: DMAR_FSTS_REG, val: BigInt(DMA_FSTS_IQE) });
    const msgs = h.unit.log.map((l) => l.message);
    expect(msgs).toContain('DMAR: Invalidation Queue Error (IQE) cleared');
    expect(msgs.some((m) => m.startsWith('DMAR: VT-d detected Invalidation Queue Error: Reason '))).toBe(
      true,
    );
    expect(msgs).toContain('DMAR: QI HEAD: UNKNOWN qw0 = 0xf, qw1 = 0x0');
    expect(qi.freeCnt).toBe(256);
    h.scheduler.runUntilIdle();
    // The next submission completes normally.
    qiSubmitSync(h.unit, [qiDescCc(0, 0, 0, 'global')]);
    expect(h.vtd.mmio.readl(DMAR_FSTS_REG) & DMA_FSTS_IQE).toBe(0);
    expect(h.vtd.mmio.readq(DMAR_IQH_REG)).toBe(h.vtd.mmio.readq(DMAR_IQT_REG));
  });

  it('without QI: EINVAL; empty list: no register write', () => {
    const h = ready({ config: { ...LEGACY, qi: false } });
    expect(() => qiSubmitSync(h.unit, [qiDescCc(0, 0, 0, 'global')])).toThrowError(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    const g = ready({ config: LEGACY });
    qiSubmitSync(g.unit, []);
    expect(g.writes).toEqual([]);
  });

  it('from inside a task the submission is deferred and reaped at the next one', () => {
    const h = ready({ config: LEGACY });
    const qi = h.unit.qi;
    if (qi === null) throw new Error('no qi');
    h.scheduler.spawn(() => qiSubmitSync(h.unit, [qiDescCc(0, 0, 0, 'global')]), 'test');
    h.scheduler.runUntilIdle();
    expect(qi.deferred.length).toBe(1);
    expect(qi.freeCnt).toBe(254);
    qiSubmitSync(h.unit, [qiDescCc(0, 0, 0, 'global')]);
    expect(qi.deferred.length).toBe(0);
    expect(qi.freeCnt).toBe(256);
    expect(QI_ABORT).toBe(3);
  });

  it('QiBatch submits 16 with one wait and flushes the rest', () => {
    const h = ready({ config: LEGACY });
    const b = new QiBatch(h.unit);
    for (let i = 0; i < 20; i++) b.add(qiDescIotlb(h.unit, 2, BigInt(i) << 12n, 0, 'page'));
    expect(h.unit.stats.qiSubmits).toBe(2 + 1);
    b.flush();
    expect(h.unit.stats.qiSubmits).toBe(2 + 2);
    expect(h.writes.map((w) => w.val)).toEqual([BigInt((4 + 17) * 16), BigInt((4 + 17 + 5) * 16)]);
  });

  it('device-TLB flushes are skipped while translation is off', () => {
    const h = ready({ config: LEGACY });
    qiFlushDevIotlb(h.unit, 0x10, 0, 0, 0n, 52);
    expect(h.writes).toEqual([]);
  });
});
