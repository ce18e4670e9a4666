import { describe, expect, it } from 'vitest';
import { SmmuConfigCache } from './config-cache.js';
import { type CdFields, encodeCd } from './context-descriptor.js';
import { resolveSmmuHwConfig, type SmmuHwConfig } from './smmu-config.js';
import { encodeSte, type SteFields } from './ste.js';
import { makeTestMemory, TestPageTable } from './test-helpers.js';
import { tlbTag } from './tlb.js';
import { SMMU_TRANSLATOR_DEFAULT_STATE, type SmmuTransaction, SmmuTranslator } from './translate.js';

const PA = 0x4800_0000;
const IPA_OFF = 0x10_0000_0000;

function fixture(over: Partial<SmmuHwConfig> = {}) {
  const memory = makeTestMemory();
  const config = resolveSmmuHwConfig(over);
  const configCache = new SmmuConfigCache({ memory, config });
  const strtab = memory.allocPages(2);
  const translator = new SmmuTranslator({ memory, config, configSource: configCache });
  translator.setGlobalState({
    ...SMMU_TRANSLATOR_DEFAULT_STATE,
    strtab: { base: strtab, log2size: 8, fmt: 'linear', split: 0 },
  });
  const writeWords = (pa: number, w: Uint32Array) => {
    for (let i = 0; i < w.length; i++) memory.write32(pa + i * 4, w[i] as number);
  };
  const writeSte = (sid: number, f: Partial<SteFields>) => {
    writeWords(strtab + sid * 64, encodeSte(f));
    configCache.invalidateSte(sid, true);
  };
  const cdTable = (n = 1) => memory.allocPages(Math.max(0, Math.ceil(Math.log2((n * 64) / 4096))));
  const writeCd = (table: number, index: number, f: Partial<CdFields>) =>
    writeWords(table + index * 64, encodeCd(f));
  const tx = (addr: bigint | number, o: Partial<SmmuTransaction> = {}): SmmuTransaction => ({
    sid: 1,
    addr,
    write: false,
    exec: false,
    privileged: false,
    atsTranslated: false,
    ...o,
  });
  return { memory, config, configCache, translator, tlb: translator.tlb, writeSte, cdTable, writeCd, tx };
}

const CD_BASE: Partial<CdFields> = {
  v: true,
  aa64: true,
  a: true,
  r: true,
  t0sz: 16,
  tg0: 0,
  epd1: true,
  ips: 5,
  asid: 7,
};

/** SID 1: stage-1 STE + CD with a 4K 48-bit table; VA 0x1000 → PA. */
function s1Fixture(
  cd: Partial<CdFields> = {},
  ste: Partial<SteFields> = {},
  over: Partial<SmmuHwConfig> = {},
) {
  const f = fixture(over);
  const pt = new TestPageTable(f.memory, { granule: 12, inputBits: 48 });
  const cdt = f.cdTable();
  f.writeCd(cdt, 0, { ...CD_BASE, ttb0: pt.root, ...cd });
  f.writeSte(1, { v: true, config: 5, s1ContextPtr: cdt, eats: 1, ...ste });
  pt.map(0x1000, PA);
  return { ...f, pt, cdt };
}

function okPa(r: ReturnType<SmmuTranslator['translate']>): number {
  if (r.kind !== 'ok' && r.kind !== 'bypass')
    throw new Error(`not ok: ${JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? v.toString(16) : v))}`);
  return r.pa;
}

function fault(r: ReturnType<SmmuTranslator['translate']>) {
  if (r.kind !== 'fault') throw new Error(`expected a fault, got ${r.kind}`);
  return r;
}

describe('SmmuTranslator: stage 1', () => {
  it('walks on a miss, hits the TLB afterwards', () => {
    const { translator, tx, tlb } = s1Fixture();
    const r1 = translator.translate(tx(0x1234));
    expect(r1).toEqual({ kind: 'ok', pa: PA + 0x234, span: 0x1000 - 0x234, tlbHit: false });
    const r2 = translator.translate(tx(0x1ff0n));
    expect(r2).toEqual({ kind: 'ok', pa: PA + 0xff0, span: 0x10, tlbHit: true });
    expect(tlb.stats).toMatchObject({ hits: 1, misses: 1, walks: 1, inserts: 1 });
    expect(tlb.entries()[0]?.tag).toBe(tlbTag(0, false, 0, 0, 7));
  });

  it('16K and 64K granules through the CD', () => {
    for (const [tg0, g, va] of [
      [2, 14, 0x1_2340_c000],
      [1, 16, 0x5_0001_0000],
    ] as const) {
      const f = fixture();
      const pt = new TestPageTable(f.memory, { granule: g, inputBits: 48 });
      const cdt = f.cdTable();
      f.writeCd(cdt, 0, { ...CD_BASE, tg0, ttb0: pt.root });
      f.writeSte(1, { v: true, config: 5, s1ContextPtr: cdt });
      pt.map(va, PA);
      expect(okPa(f.translator.translate(f.tx(va + 0x123)))).toBe(PA + 0x123);
    }
  });

  it('keeps a stale translation until the matching TLBI (remap and unmap)', () => {
    const { translator, tx, pt, tlb } = s1Fixture();
    expect(okPa(translator.translate(tx(0x1000)))).toBe(PA);
    pt.map(0x1000, PA + 0x10_0000);
    expect(okPa(translator.translate(tx(0x1000)))).toBe(PA); // stale
    tlb.invalidateNhVa({ vmid: 0, asid: 8, addr: 0x1000n, leaf: true, tg: 0, num: 0, scale: 0, ttl: 0 });
    expect(okPa(translator.translate(tx(0x1000)))).toBe(PA); // wrong ASID: still stale
    tlb.invalidateNhVa({ vmid: 0, asid: 7, addr: 0x1000n, leaf: true, tg: 0, num: 0, scale: 0, ttl: 0 });
    expect(okPa(translator.translate(tx(0x1000)))).toBe(PA + 0x10_0000);
    pt.unmap(0x1000);
    expect(okPa(translator.translate(tx(0x1000)))).toBe(PA + 0x10_0000); // stale after unmap
    tlb.invalidateNhAsid(0, 7);
    expect(fault(translator.translate(tx(0x1000))).event.type).toBe('F_TRANSLATION');
  });

  it('reports a translation fault with the decoded fields and the CD disposition', () => {
    const { translator, tx } = s1Fixture();
    const r = fault(translator.translate(tx(0x5000n, { write: true, privileged: true, ssid: undefined })));
    expect(r.event).toMatchObject({
      type: 'F_TRANSLATION',
      sid: 1,
      ssv: false,
      rnw: false,
      pnu: true,
      ind: false,
      s2: false,
      class: 2,
      inputAddr: 0x5000n,
      ipa: 0n,
    });
    expect(r).toMatchObject({ stallable: false, record: true, razWi: false });
  });

  it('CD.R=0 suppresses recording; CD.S=1 makes faults stallable unless S1STALLD; A=0 is RAZ/WI', () => {
    expect(fault(s1Fixture({ r: false }).translator.translate(s1Fixture().tx(0x5000))).record).toBe(false);
    const st = s1Fixture({ s: true });
    expect(fault(st.translator.translate(st.tx(0x5000))).stallable).toBe(true);
    const sd = s1Fixture({ s: true }, { s1Stalld: true });
    expect(fault(sd.translator.translate(sd.tx(0x5000))).stallable).toBe(false);
    const raz = s1Fixture({ a: false }, {}, { termModel: 0 });
    expect(fault(raz.translator.translate(raz.tx(0x5000))).razWi).toBe(true);
  });

  it('permission faults come from cached permissions on a TLB hit', () => {
    const { translator, tx, pt } = s1Fixture();
    pt.map(0x2000, PA, 3, { ap: 3 });
    expect(okPa(translator.translate(tx(0x2000)))).toBe(PA);
    pt.map(0x2000, PA, 3, { ap: 1 }); // made writable without TLBI
    const r = fault(translator.translate(tx(0x2000, { write: true })));
    expect(r.event).toMatchObject({ type: 'F_PERMISSION', s2: false, rnw: false });
    expect(translator.tlb.stats.hits).toBe(1);
  });

  it('a write hitting a writable-clean entry re-walks and marks the page dirty (HD)', () => {
    const { translator, tx, pt, memory } = s1Fixture({ ha: true, hd: true });
    const d = pt.map(0x3000, PA, 3, { ap: 3, dbm: true, af: false });
    expect(okPa(translator.translate(tx(0x3000)))).toBe(PA);
    expect(memory.read64(d) & 0x480n).toBe(0x480n); // AF set, still clean
    expect(okPa(translator.translate(tx(0x3000, { write: true })))).toBe(PA);
    expect(memory.read64(d) & 0x480n).toBe(0x400n); // dirty
    expect(translator.tlb.stats.walks).toBe(2);
  });

  it('instruction fetch and privilege, with STE PRIVCFG / INSTCFG overrides', () => {
    const { translator, tx, pt } = s1Fixture();
    pt.map(0x4000, PA, 3, { ap: 0 }); // privileged only
    expect(fault(translator.translate(tx(0x4000))).event.type).toBe('F_PERMISSION');
    const p = s1Fixture({}, { privCfg: 3 });
    p.pt.map(0x4000, PA, 3, { ap: 0 });
    expect(okPa(p.translator.translate(p.tx(0x4000)))).toBe(PA);
    const x = s1Fixture({}, { instCfg: 3 });
    x.pt.map(0x4000, PA, 3, { ap: 3, uxn: true });
    expect(fault(x.translator.translate(x.tx(0x4000))).event).toMatchObject({
      type: 'F_PERMISSION',
      ind: true,
    });
  });

  it('TTB1 region, TBI, and addresses in neither region', () => {
    const f = fixture();
    const pt0 = new TestPageTable(f.memory, { granule: 12, inputBits: 48 });
    const pt1 = new TestPageTable(f.memory, { granule: 12, inputBits: 48 });
    const cdt = f.cdTable();
    f.writeCd(cdt, 0, {
      ...CD_BASE,
      ttb0: pt0.root,
      epd1: false,
      t1sz: 16,
      tg1: 2,
      ttb1: pt1.root,
      tbi0: true,
    });
    f.writeSte(1, { v: true, config: 5, s1ContextPtr: cdt });
    pt0.map(0x1000, PA);
    pt1.map(0xffff_ffff_f000, PA + 0x5000); // index uses the low 48 bits
    expect(okPa(f.translator.translate(f.tx(0xffff_ffff_ffff_f008n)))).toBe(PA + 0x5008);
    expect(okPa(f.translator.translate(f.tx(0x5a00_0000_0000_1008n)))).toBe(PA + 8); // TBI0
    expect(f.translator.translate(f.tx(0xa5ff_ffff_ffff_f000n)).kind).toBe('fault'); // TBI1 off
    expect(fault(f.translator.translate(f.tx(0x0001_0000_0000_0000n))).event.type).toBe('F_TRANSLATION');
    // TTB1 entries carry region 1 and are invalidated through bit 55.
    f.tlb.invalidateNhVa({
      vmid: 0,
      asid: 7,
      addr: 0xffff_ffff_ffff_f000n,
      leaf: true,
      tg: 0,
      num: 0,
      scale: 0,
      ttl: 0,
    });
    expect(f.tlb.size).toBe(1);
  });

  it('EPD0 makes the TTB0 region fault', () => {
    const { translator, tx } = s1Fixture({ epd0: true, epd1: false, t1sz: 16, tg1: 2, ttb1: 0x4000_0000 });
    expect(fault(translator.translate(tx(0x1000))).event.type).toBe('F_TRANSLATION');
  });

  it('a CD with EPD0 and EPD1 (an exited SVA mm) faults every access and never bypasses stage 1', () => {
    const { translator, tx } = s1Fixture({ epd0: true, epd1: true });
    const r = translator.translate(tx(0xffff_bfff_f000));
    expect(r.kind).toBe('fault');
    expect(fault(r).event.type).toBe('F_TRANSLATION');
    expect(fault(translator.translate(tx(0x1000))).event.type).toBe('F_TRANSLATION');
  });

  it('a full TLB evicts: capacity 2, three pages', () => {
    const { translator, tx, pt, tlb } = s1Fixture({}, {}, { tlbCapacity: 2 });
    pt.map(0x2000, PA + 0x2000);
    pt.map(0x3000, PA + 0x3000);
    for (const a of [0x1000, 0x2000, 0x3000, 0x1000]) translator.translate(tx(a));
    expect(tlb.stats).toMatchObject({ misses: 4, hits: 0, evictions: 2 });
    expect(tlb.size).toBe(2);
  });
});

describe('SmmuTranslator: configuration outcomes', () => {
  it('SMMUEN=0: GBPA bypass or abort', () => {
    const f = s1Fixture();
    f.translator.setGlobalState({ ...f.translator.state, smmuEnabled: false });
    expect(f.translator.translate(f.tx(0x4000_1234))).toMatchObject({ kind: 'bypass', pa: 0x4000_1234 });
    f.translator.setGlobalState({ ...f.translator.state, smmuEnabled: false, gbpaAbort: true });
    expect(f.translator.translate(f.tx(0x1000))).toEqual({ kind: 'abort', reason: 'gbpa' });
  });

  it('STE abort, bypass, invalid STE, StreamID out of range', () => {
    const f = fixture();
    f.writeSte(1, { v: true, config: 0 });
    f.writeSte(2, { v: true, config: 4 });
    expect(f.translator.translate(f.tx(0x1000))).toEqual({ kind: 'abort', reason: 'ste' });
    expect(f.translator.translate(f.tx(0x4000_0000, { sid: 2 }))).toMatchObject({
      kind: 'bypass',
      pa: 0x4000_0000,
    });
    expect(fault(f.translator.translate(f.tx(0, { sid: 3 }))).event.type).toBe('C_BAD_STE');
    const r = fault(f.translator.translate(f.tx(0, { sid: 300 })));
    expect(r).toMatchObject({ stallable: false, record: true });
    expect(r.event.type).toBe('C_BAD_STREAMID');
  });

  it('S1DSS=bypass with substreams: transactions without SSID skip stage 1', () => {
    const { translator, tx, writeSte, cdt } = s1Fixture();
    writeSte(1, { v: true, config: 5, s1ContextPtr: cdt, s1CdMax: 2, s1Dss: 1 });
    expect(translator.translate(tx(0x4000_0000))).toMatchObject({ kind: 'bypass', pa: 0x4000_0000 });
    expect(okPa(translator.translate(tx(0x1000, { ssid: 0 })))).toBe(PA);
    expect(fault(translator.translate(tx(0x1000, { ssid: 5 }))).event.type).toBe('C_BAD_SUBSTREAMID');
  });

  it('records CD.ASET in the stage-1 TLB entries', () => {
    for (const aset of [false, true]) {
      const f = s1Fixture({ aset });
      okPa(f.translator.translate(f.tx(0x1000)));
      expect(f.tlb.entries().map((e) => e.aset)).toEqual([aset]);
    }
  });

  it('EL2 StreamWorld entries are tagged EL2 and removed by TLBI_EL2_ALL only', () => {
    const f = s1Fixture({}, { strw: 2 }, { hyp: true });
    okPa(f.translator.translate(f.tx(0x1000)));
    f.tlb.invalidateNsnhAll();
    expect(f.tlb.size).toBe(1);
    f.tlb.invalidateEl2All();
    expect(f.tlb.size).toBe(0);
  });
});

/** SID 1: stage-2-only STE, 4K 40-bit IPA (start level 1, 2 concatenated tables), VMID 3. */
function s2Fixture(ste: Partial<SteFields> = {}) {
  const f = fixture();
  const s2 = new TestPageTable(f.memory, { granule: 12, inputBits: 40, stage: 2, startLevel: 1 });
  const s2ste: Partial<SteFields> = {
    v: true,
    config: 6,
    s2Vmid: 3,
    s2T0sz: 24,
    s2Sl0: 1,
    s2Tg: 0,
    s2Ps: 5,
    s2Aa64: true,
    s2R: true,
    s2Ttb: s2.root,
    eats: 1,
    ...ste,
  };
  f.writeSte(1, s2ste);
  return { ...f, s2, s2ste };
}

describe('SmmuTranslator: stage 2 only', () => {
  it('translates IPAs and tags entries with the VMID', () => {
    const { translator, tx, s2, tlb } = s2Fixture();
    s2.map(0x80_0000_1000, PA);
    expect(okPa(translator.translate(tx(0x80_0000_1abc)))).toBe(PA + 0xabc);
    expect(tlb.entries()[0]).toMatchObject({ stage: 's2', tag: tlbTag(0, true, 0, 3, 0) });
    s2.map(0x80_0000_1000, PA + 0x1000);
    expect(okPa(translator.translate(tx(0x80_0000_1000)))).toBe(PA); // stale
    tlb.invalidateS2Ipa({ vmid: 3, ipa: 0x80_0000_1000n, leaf: true, tg: 0, num: 0, scale: 0, ttl: 0 });
    expect(okPa(translator.translate(tx(0x80_0000_1000)))).toBe(PA + 0x1000);
  });

  it('stage-2 faults carry S2=1, the IPA, and the S2R / S2S disposition', () => {
    // (ATS and stalls do not mix: EATS=0 with S2S=1.)
    const { translator, tx } = s2Fixture({ s2R: false, s2S: true, eats: 0 });
    const r = fault(translator.translate(tx(0x1000, { write: true })));
    expect(r.event).toMatchObject({ type: 'F_TRANSLATION', s2: true, class: 2, ipa: 0x1000n, rnw: false });
    expect(r).toMatchObject({ record: false, stallable: true });
  });

  it('input beyond the stage-2 input size: stage-2 F_TRANSLATION; beyond OAS: stage-1 F_ADDR_SIZE', () => {
    const { translator, tx } = s2Fixture();
    expect(fault(translator.translate(tx(2 ** 41))).event).toMatchObject({ type: 'F_TRANSLATION', s2: true });
    expect(fault(translator.translate(tx(2n ** 48n))).event).toMatchObject({
      type: 'F_ADDR_SIZE',
      s2: false,
    });
  });

  it('a SubstreamID on a stage-1-bypass STE is C_BAD_SUBSTREAMID', () => {
    const { translator, tx } = s2Fixture();
    expect(fault(translator.translate(tx(0x1000, { ssid: 1 }))).event.type).toBe('C_BAD_SUBSTREAMID');
  });
});

/**
 * SID 1: nested STE (VMID 3). Stage-1 tables, the CD table and the output live at IPA = PA +
 * IPA_OFF (identity-offset stage 2 over every page used), except the output page VA 0x1000 →
 * IPA 0x2000_0000 → PA.
 */
function nestedFixture(cd: Partial<CdFields> = {}) {
  const f = s2Fixture({ config: 7 });
  const { memory, s2 } = f;
  const s1 = new TestPageTable(memory, { granule: 12, inputBits: 48 });
  s1.map(0x1000, 0x2000_0000);
  // Rewrite stage-1 table pointers as IPAs and map every table page in stage 2.
  for (const t of s1.tables) {
    for (let i = 0; i < 512; i++) {
      const lo = memory.read64Lo(t + i * 8);
      if ((lo & 3) === 3 && t !== s1.tables[s1.tables.length - 1]) {
        const next = ((lo & ~0xfff) >>> 0) + memory.read64Hi(t + i * 8) * 2 ** 32;
        const ipa = next + IPA_OFF;
        memory.write64Halves(t + i * 8, ((ipa % 2 ** 32) | 3) >>> 0, Math.floor(ipa / 2 ** 32));
      }
    }
    s2.map(t + IPA_OFF, t);
  }
  const cdt = f.cdTable();
  s2.map(cdt + IPA_OFF, cdt);
  f.writeCd(cdt, 0, { ...CD_BASE, ttb0: s1.root + IPA_OFF, ...cd });
  f.writeSte(1, { ...f.s2ste, config: 7, s1ContextPtr: cdt + IPA_OFF });
  s2.map(0x2000_0000, PA);
  return { ...f, s1, cdt };
}

describe('SmmuTranslator: nested', () => {
  it('walks stage 1 in IPA space, then stage 2; caches one combined entry', () => {
    const { translator, tx, tlb } = nestedFixture();
    expect(okPa(translator.translate(tx(0x1abc)))).toBe(PA + 0xabc);
    const r = translator.translate(tx(0x1000));
    expect(r).toMatchObject({ tlbHit: true, pa: PA });
    const nested = tlb.entries().filter((e) => e.stage === 'nested');
    expect(nested).toHaveLength(1);
    expect(nested[0]?.tag).toBe(tlbTag(0, false, 0, 3, 7));
    // Stage-2 translations of the table pages are cached as stage-2 entries.
    expect(tlb.entries().filter((e) => e.stage === 's2').length).toBe(5); // 4 table pages + the CD page
  });

  it('stage-2 fault on the CD fetch: CLASS=CD, S2=1', () => {
    const { translator, tx, s2, cdt } = nestedFixture();
    s2.unmap(cdt + IPA_OFF);
    const r = fault(translator.translate(tx(0x1000)));
    expect(r.event).toMatchObject({ type: 'F_TRANSLATION', s2: true, class: 0, ipa: BigInt(cdt + IPA_OFF) });
    expect(r.record).toBe(true);
  });

  it('stage-2 fault on a stage-1 table: CLASS=TT, S2=1, the table IPA', () => {
    const { translator, tx, s2, s1 } = nestedFixture();
    const leaf = s1.tables[s1.tables.length - 1] as number;
    s2.unmap(leaf + IPA_OFF);
    const r = fault(translator.translate(tx(0x1000)));
    expect(r.event).toMatchObject({
      type: 'F_TRANSLATION',
      s2: true,
      class: 1,
      ipa: BigInt(leaf + IPA_OFF + 8),
    });
  });

  it('stage-2 fault on the output IPA: CLASS=IN, S2=1, the IPA; stage-1 faults stay S2=0', () => {
    const { translator, tx, s2, s1, memory } = nestedFixture();
    s2.unmap(0x2000_0000);
    const r = fault(translator.translate(tx(0x1234, { write: true })));
    expect(r.event).toMatchObject({ type: 'F_TRANSLATION', s2: true, class: 2, ipa: 0x2000_0234n });
    const leaf = s1.tables[s1.tables.length - 1] as number;
    memory.write64Halves(leaf + 8, 0, 0); // unmap VA 0x1000 (stage-1 tables hold IPAs)
    expect(fault(translator.translate(tx(0x1000))).event).toMatchObject({ type: 'F_TRANSLATION', s2: false });
  });

  it('a write refused by stage 2 on a cached nested entry is a stage-2 permission fault', () => {
    const { translator, tx, s2, tlb } = nestedFixture();
    s2.map(0x2000_0000, PA, 3, { s2ap: 1 });
    tlb.invalidateAll();
    expect(okPa(translator.translate(tx(0x1000)))).toBe(PA);
    const r = fault(translator.translate(tx(0x1000, { write: true })));
    expect(r.event).toMatchObject({ type: 'F_PERMISSION', s2: true, ipa: 0x2000_0000n });
  });

  it('TLBI_S2_IPA leaves the combined entry (software must follow with NH_ALL / S12_VMALL)', () => {
    const { translator, tx, s2, tlb } = nestedFixture();
    okPa(translator.translate(tx(0x1000)));
    s2.map(0x2000_0000, PA + 0x7000);
    tlb.invalidateS2Ipa({ vmid: 3, ipa: 0x2000_0000n, leaf: true, tg: 0, num: 0, scale: 0, ttl: 0 });
    expect(okPa(translator.translate(tx(0x1000)))).toBe(PA);
    tlb.invalidateNhAll(3);
    expect(okPa(translator.translate(tx(0x1000)))).toBe(PA + 0x7000);
  });
});

describe('SmmuTranslator: ATS', () => {
  const req = (addr: bigint, o: Partial<Parameters<SmmuTranslator['atsTranslate']>[0]> = {}) => ({
    sid: 1,
    addr,
    noWrite: false,
    exec: false,
    privileged: false,
    ...o,
  });

  it('answers with the page / block, its permissions, and no event', () => {
    const { translator, pt } = s1Fixture();
    pt.map(0x20_0000, 0x4020_0000, 2, { ap: 3 });
    expect(translator.atsTranslate(req(0x1234n))).toEqual({
      status: 'success',
      untranslatedAddr: 0x1000n,
      translatedAddr: BigInt(PA),
      size: 0x1000n,
      read: true,
      write: true,
      exec: false,
      privileged: false,
      untranslatedOnly: false,
    });
    expect(translator.atsTranslate(req(0x21_2345n))).toMatchObject({
      untranslatedAddr: 0x20_0000n,
      translatedAddr: 0x4020_0000n,
      size: 0x20_0000n,
      read: true,
      write: false,
    });
    expect(translator.atsTranslate(req(0x1000n, { noWrite: true })).write).toBe(false);
  });

  it('translation faults give R=W=0 without an event', () => {
    const { translator } = s1Fixture();
    const r = translator.atsTranslate(req(0x9000n));
    expect(r).toMatchObject({ status: 'success', read: false, write: false, untranslatedAddr: 0x9000n });
    expect(r.event).toBeUndefined();
  });

  it('EATS=0 or a bypass STE: UR with F_BAD_ATS_TREQ', () => {
    const f = s1Fixture({}, { eats: 0 });
    f.writeSte(2, { v: true, config: 4, eats: 1 });
    const a = f.translator.atsTranslate(req(0x1000n));
    expect(a.status).toBe('ur');
    expect(a.event?.type).toBe('F_BAD_ATS_TREQ');
    expect(f.translator.atsTranslate(req(0x1000n, { sid: 2 })).event?.type).toBe('F_BAD_ATS_TREQ');
    expect(f.translator.atsTranslate(req(0x1000n, { sid: 3 }))).toMatchObject({
      status: 'ur',
      event: { type: 'C_BAD_STE' },
    });
  });

  it('without NW a writable-clean page is made dirty; with NW it is left clean and W=0', () => {
    const { translator, pt, memory } = s1Fixture({ ha: true, hd: true });
    const d = pt.map(0x5000, PA, 3, { ap: 3, dbm: true });
    expect(translator.atsTranslate(req(0x5000n, { noWrite: true })).write).toBe(false);
    expect(memory.read64(d) & 0x80n).toBe(0x80n);
    expect(translator.atsTranslate(req(0x5000n)).write).toBe(true);
    expect(memory.read64(d) & 0x80n).toBe(0n);
  });

  it('nested: full ATS returns the PA; split-stage (EATS=2) returns the IPA', () => {
    const f = nestedFixture();
    expect(f.translator.atsTranslate(req(0x1000n)).translatedAddr).toBe(BigInt(PA));
    f.writeSte(1, { ...f.s2ste, config: 7, s1ContextPtr: f.cdt + IPA_OFF, eats: 2 });
    expect(f.translator.atsTranslate(req(0x1000n)).translatedAddr).toBe(0x2000_0000n);
    // Translated traffic then goes through stage 2.
    expect(okPa(f.translator.translate(f.tx(0x2000_0010, { atsTranslated: true })))).toBe(PA + 0x10);
  });

  it('ATS-translated traffic: ATSCHK=0 passes, EATS=0 / bypass are forbidden, EATS=1 passes', () => {
    const f = s1Fixture();
    f.writeSte(2, { v: true, config: 4 });
    f.writeSte(3, { v: true, config: 5, s1ContextPtr: f.cdt, eats: 0 });
    const t = (sid: number) => f.translator.translate(f.tx(0x4000_0000, { sid, atsTranslated: true }));
    expect(t(1)).toMatchObject({ kind: 'ok', pa: 0x4000_0000 });
    expect(fault(t(2)).event).toMatchObject({
      type: 'F_TRANSL_FORBIDDEN',
      inputAddr: 0x4000_0000n,
      rnw: true,
    });
    expect(fault(t(3)).event.type).toBe('F_TRANSL_FORBIDDEN');
    f.translator.setGlobalState({ ...f.translator.state, atsCheck: false });
    expect(t(3)).toMatchObject({ kind: 'bypass', pa: 0x4000_0000 });
  });
});
