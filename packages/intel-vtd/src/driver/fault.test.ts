import { describe, expect, it } from 'vitest';
import { dmarFaultMessage, dmarGetFaultReason } from './fault.js';
import { DMA_FSTS_PFO, DMA_FSTS_PPF, DMAR_FSTS_REG } from './regs.js';
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

function fault(sid: number, reason: number, addr: bigint, write: boolean, pasid?: number) {
  return {
    reason,
    sourceId: sid,
    addr,
    write,
    pasidPresent: pasid !== undefined,
    pasid: pasid ?? 0,
    exec: false,
    privileged: false,
    addressType: 0 as const,
  };
}

describe('fault reasons', () => {
  it('maps codes to Linux strings and kinds', () => {
    expect(dmarGetFaultReason(0x06)).toEqual({ text: 'PTE Read access is not set', type: 'DMA_REMAP' });
    expect(dmarGetFaultReason(0x0e)).toEqual({ text: 'Unknown', type: 'UNKNOWN' });
    expect(dmarGetFaultReason(0x59).text).toBe('SM: Present bit in PASID Table Entry is clear');
    expect(dmarGetFaultReason(0x71).text).toBe('SM: Present bit in first-level paging entry is clear');
    expect(dmarGetFaultReason(0x90).text).toBe(
      'SM: A/D bit update needed in first-level entry when set up in no snoop',
    );
    expect(dmarGetFaultReason(0x91)).toEqual({ text: 'Unknown', type: 'UNKNOWN' });
    expect(dmarGetFaultReason(0x22)).toEqual({
      text: 'Present field in the IRTE entry is clear',
      type: 'INTR_REMAP',
    });
    expect(dmarGetFaultReason(0x27).type).toBe('UNKNOWN');
  });
});

describe('dmarFault through the model', () => {
  it('prints Linux lines byte-exact, clears records and FSTS', () => {
    const h = unitHarness({ config: { ...LEGACY, numFaultRecords: 4 } });
    h.unit.probe();
    h.unit.initDmar();
    h.unit.log.length = 0;
    const r = h.vtd.faults;
    r.record(fault(0x0010, 0x06, 0x7f2e_5123n, false));
    r.record(fault(0x0311, 0x05, 0xdead_b000n, true, 0x1f));
    r.record(fault(0xff2f, 0x59, 0x1000n, false, 0));
    r.record(fault(0x0a0b, 0x22, 0x0007_0000_0000_0000n, true));
    h.scheduler.runUntilIdle(); // fault event → IRQ → dmarFault
    expect(h.unit.log.map((l) => l.message)).toEqual([
      'DMAR: DRHD: handling fault status reg 2',
      'DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x7f2e5000 [fault reason 0x06] PTE Read access is not set',
      'DMAR: [DMA Write PASID 0x1f] Request device [03:02.1] fault addr 0xdeadb000 [fault reason 0x05] PTE Write access is not set',
      'DMAR: [DMA Read PASID 0x0] Request device [ff:05.7] fault addr 0x1000 [fault reason 0x59] SM: Present bit in PASID Table Entry is clear',
      'DMAR: [INTR-REMAP] Request device [0a:01.3] fault index 0x7 [fault reason 0x22] Present field in the IRTE entry is clear',
    ]);
    expect(h.unit.stats.faults).toBe(4);
    expect(h.vtd.mmio.readl(DMAR_FSTS_REG) & (DMA_FSTS_PPF | DMA_FSTS_PFO)).toBe(0);
    expect(h.writes.at(-1)).toEqual({ op: 'writel', off: DMAR_FSTS_REG, val: 0x83n });
  });

  it('PFO: overflowing records are reported once the handler runs, then PFO cleared; wraps at NFR', () => {
    const h = unitHarness({ config: { ...LEGACY, numFaultRecords: 2 }, irqs: false });
    h.unit.probe();
    h.unit.initDmar();
    h.unit.log.length = 0;
    const r = h.vtd.faults;
    r.record(fault(0x0100, 0x02, 0x1000n, false));
    r.record(fault(0x0200, 0x02, 0x2000n, false));
    expect(r.record(fault(0x0300, 0x02, 0x3000n, false))).toBe('overflow');
    const recs = h.unit.handleFault();
    expect(recs.map((x) => x.sourceId)).toEqual([0x100, 0x200]);
    expect(h.unit.log[0]?.message).toBe('DMAR: DRHD: handling fault status reg 3');
    expect(h.vtd.mmio.readl(DMAR_FSTS_REG) & DMA_FSTS_PFO).toBe(0);
    // After clearing, a new fault lands in the next slot (index 0 again after the wrap).
    r.record(fault(0x0400, 0x01, 0x4000n, true));
    const again = h.unit.handleFault();
    expect(again.map((x) => x.reason)).toEqual([0x01]);
    expect(h.unit.log.at(-1)?.message).toBe(
      'DMAR: [DMA Write NO_PASID] Request device [04:00.0] fault addr 0x4000 [fault reason 0x01] Present bit in root entry is clear',
    );
  });

  it('a real DMA fault (root entry not present) after TE is logged', () => {
    const h = unitHarness({ config: LEGACY });
    h.unit.probe();
    h.unit.initDmar();
    h.unit.enableTranslation();
    h.unit.log.length = 0;
    h.vtd.dmaAccess({
      requesterId: 0x0018,
      addr: 0x1234_5678n,
      size: 4,
      access: 'read',
      exec: false,
      privileged: false,
      atsTranslated: false,
    } as never);
    h.scheduler.runUntilIdle();
    expect(h.unit.log.map((l) => l.message)).toContain(
      'DMAR: [DMA Read NO_PASID] Request device [00:03.0] fault addr 0x12345000 [fault reason 0x01] Present bit in root entry is clear',
    );
  });

  it('dmarFaultMessage formats without the model', () => {
    expect(
      dmarFaultMessage({ type: 0, reason: 0x0e, pasid: undefined, sourceId: 0x0102, addr: 0xfee0_0000n }),
    ).toBe(
      'DMAR: [DMA Write NO_PASID] Request device [01:00.2] fault addr 0xfee00000 [fault reason 0x0e] Unknown',
    );
  });
});
