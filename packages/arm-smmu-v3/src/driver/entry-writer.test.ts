import { describe, expect, it } from 'vitest';
import { CTXDESC_CD_0_ASID, CTXDESC_CD_0_TCR_EPD0, CTXDESC_CD_0_V, cdUsedBits } from './cd.js';
import { type ArmSmmuEntryWriterOps, armSmmuEntryQwordDiff, armSmmuWriteEntry } from './entry-writer.js';
import {
  fieldPrep,
  makeAbortSte,
  makeBypassSte,
  makeCdtableSte,
  makeS2DomainSte,
  STRTAB_STE_1_S1DSS_BYPASS,
  STRTAB_STE_1_S1DSS_SSID0,
  steUsedBits,
} from './ste.js';

/** An in-memory entry recording every qword store and sync. */
function recorder(initial: bigint[], getUsed: (e: readonly bigint[]) => bigint[]) {
  const mem = [...initial];
  const trace: string[] = [];
  const snapshots: bigint[][] = [];
  const ops: ArmSmmuEntryWriterOps = {
    getUsed,
    sync: () => {
      trace.push('sync');
      snapshots.push([...mem]);
    },
    readQword: (i) => mem[i] ?? 0n,
    writeQword: (i, v) => {
      trace.push(`w${i}`);
      mem[i] = v;
    },
  };
  return { mem, trace, snapshots, ops };
}

const zero = () => new Array<bigint>(8).fill(0n);
const cdtab = (over: Partial<Parameters<typeof makeCdtableSte>[0]> = {}) =>
  makeCdtableSte({
    cdtabDma: 0x4010_0000n,
    s1fmt: 0,
    s1cdmax: 0,
    s1dss: STRTAB_STE_1_S1DSS_SSID0,
    ats: false,
    s1stalld: false,
    e2h: false,
    attrTypesOvr: false,
    ...over,
  });
const s2 = (vmid = 1) =>
  makeS2DomainSte({
    vmid,
    vtcr: { tsz: 16, sl: 2, irgn: 1, orgn: 1, sh: 3, tg: 0, ps: 5 },
    vttbr: 0x4020_0000n,
    ats: false,
    stallEnabled: false,
    s2fwb: false,
    attrTypesOvr: false,
  });

describe('STE values', () => {
  it('CD-table STE DW1 is 0xD6 for a plain master (spec §2.4 example)', () => {
    const ste = cdtab();
    expect(ste[1]).toBe(0xd6n);
    expect(ste[0]).toBe(0x4010_0000n | 0xbn);
  });
  it('S2 STE VTCR is 0x53590 at DW2 bits 50:32', () => {
    const ste = s2(5);
    expect(((ste[2] as bigint) >> 32n) & 0x7ffffn).toBe(0x53590n);
    expect((ste[2] as bigint) & 0xffffn).toBe(5n);
    expect(ste[3]).toBe(0x4020_0000n);
    expect(ste[0]).toBe(0xdn);
  });
  it('bypass STE sets SHCFG=incoming only with ATTR_TYPES_OVR', () => {
    expect(makeBypassSte(false)[1]).toBe(0n);
    expect(makeBypassSte(true)[1]).toBe(1n << 44n);
  });
});

describe('armSmmuWriteEntry on STEs (spec §8.4)', () => {
  it('invalid → CD-table: hitless, qwords 1..7 then qword 0, two syncs', () => {
    const r = recorder(zero(), steUsedBits);
    const t = cdtab();
    armSmmuWriteEntry(r.ops, t);
    expect(r.trace).toEqual(['w1', 'sync', 'w0', 'sync']);
    expect(r.mem).toEqual(t);
  });
  it('abort → CD-table: hitless, two syncs', () => {
    const r = recorder(makeAbortSte(), steUsedBits);
    armSmmuWriteEntry(r.ops, cdtab());
    expect(r.trace).toEqual(['w1', 'sync', 'w0', 'sync']);
  });
  it('abort → bypass: one store of qword 0, one sync', () => {
    const r = recorder(makeAbortSte(), steUsedBits);
    armSmmuWriteEntry(r.ops, makeBypassSte(false));
    expect(r.trace).toEqual(['w0', 'sync']);
  });
  it('CD-table → bypass: qword 0 then cleanup of qword 1, two syncs', () => {
    const r = recorder(cdtab(), steUsedBits);
    armSmmuWriteEntry(r.ops, makeBypassSte(false));
    expect(r.trace).toEqual(['w0', 'sync', 'w1', 'sync']);
    // After the critical store the SMMU sees a bypass STE (the S1 fields of DW1 are unused).
    expect(r.snapshots[0]?.[0]).toBe(9n);
  });
  it('CD-table EATS 0 → 1: hitless single store of qword 1', () => {
    const r = recorder(cdtab(), steUsedBits);
    armSmmuWriteEntry(r.ops, cdtab({ ats: true }));
    expect(r.trace).toEqual(['w1', 'sync']);
  });
  it('CD-table S1DSS SSID0 → bypass: hitless', () => {
    const r = recorder(cdtab(), steUsedBits);
    armSmmuWriteEntry(r.ops, cdtab({ s1dss: STRTAB_STE_1_S1DSS_BYPASS, attrTypesOvr: true }));
    expect(r.trace).toEqual(['w1', 'sync']);
  });
  it('CD-table → S2: breaking (V=0 window), three syncs', () => {
    const r = recorder(cdtab(), steUsedBits);
    const t = s2(3);
    armSmmuWriteEntry(r.ops, t);
    expect(r.trace).toEqual(['w0', 'sync', 'w1', 'w2', 'w3', 'sync', 'w0', 'sync']);
    expect(r.snapshots[0]?.[0]).toBe(0n);
    expect(r.mem).toEqual(t);
  });
  it('S2 → S2 with another VMID and table: breaking', () => {
    const r = recorder(s2(1), steUsedBits);
    const t = s2(2);
    t[3] = 0x4030_0000n;
    armSmmuWriteEntry(r.ops, t);
    expect(r.trace.filter((x) => x === 'sync')).toHaveLength(3);
  });
  it('same STE again: nothing written, no sync', () => {
    const r = recorder(cdtab(), steUsedBits);
    armSmmuWriteEntry(r.ops, cdtab());
    expect(r.trace).toEqual([]);
  });
  it('qword diff reports the critical qwords', () => {
    expect(armSmmuEntryQwordDiff({ getUsed: steUsedBits }, cdtab(), s2()).diff).toBe(0b101);
    expect(armSmmuEntryQwordDiff({ getUsed: steUsedBits }, makeAbortSte(), cdtab()).diff).toBe(0b1);
  });
});

describe('armSmmuWriteEntry on CDs', () => {
  const cd = (asid: number) => {
    const c = zero();
    c[0] = CTXDESC_CD_0_V | fieldPrep(CTXDESC_CD_0_ASID, asid) | 0x3510n;
    c[1] = 0x4040_0000n;
    c[3] = 0xf404ff44n;
    return c;
  };
  it('invalid → valid: body first, then DW0, two syncs', () => {
    const r = recorder(zero(), cdUsedBits);
    armSmmuWriteEntry(r.ops, cd(1));
    expect(r.trace).toEqual(['w1', 'w3', 'sync', 'w0', 'sync']);
  });
  it('ASID change only: one store of DW0', () => {
    const r = recorder(cd(1), cdUsedBits);
    armSmmuWriteEntry(r.ops, cd(2));
    expect(r.trace).toEqual(['w0', 'sync']);
  });
  it('valid → cleared: V=0 first, then the rest, two syncs', () => {
    const r = recorder(cd(1), cdUsedBits);
    armSmmuWriteEntry(r.ops, zero());
    expect(r.trace).toEqual(['w0', 'sync', 'w1', 'w3', 'sync']);
  });
  it('new table and ASID on a live CD: breaking', () => {
    const r = recorder(cd(1), cdUsedBits);
    const t = cd(2);
    t[1] = 0x4050_0000n;
    armSmmuWriteEntry(r.ops, t);
    expect(r.trace).toEqual(['w0', 'sync', 'w1', 'sync', 'w0', 'sync']);
  });
  it('EPD0 makes TTB0 unused: quieting a CD is hitless (DW0, then TTB0 cleanup)', () => {
    const a = cd(1);
    const b = [...a];
    b[0] = (a[0] as bigint) | CTXDESC_CD_0_TCR_EPD0;
    b[1] = 0n;
    const r = recorder(a, cdUsedBits);
    armSmmuWriteEntry(r.ops, b);
    expect(r.trace).toEqual(['w0', 'sync', 'w1', 'sync']);
  });
});
