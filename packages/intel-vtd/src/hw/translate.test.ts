import { describe, expect, it } from 'vitest';
import { VtdContextCache, VtdPasidCache } from './context-cache.js';
import { type PasidEntryInit, PGTT } from './pasid-table.js';
import { CONTEXT_TT } from './root-context.js';
import { VtdStructureBuilder } from './structures.test-helpers.js';
import { FlTestPageTable, makeVtdTestMemory, SlTestPageTable } from './test-helpers.js';
import { type VtdTransaction, type VtdTranslationResult, VtdTranslator } from './translate.js';
import { resolveVtdHwConfig, type VtdHwConfig } from './vtd-config.js';

const SID = 0x0310; // 03:02.0
const NO_RAM = 0x1000;

function env(scalable: boolean, overrides: Partial<VtdHwConfig> = {}) {
  const memory = makeVtdTestMemory(64);
  const config = resolveVtdHwConfig(overrides);
  const b = new VtdStructureBuilder(memory, scalable);
  const contextCache = new VtdContextCache({ memory, config });
  const pasidCache = new VtdPasidCache({ memory, config });
  const t = new VtdTranslator({ memory, config, contextCache, pasidCache });
  t.setState({ enabled: true, rtaddr: b.rootTable, ttm: scalable ? 1 : 0 });
  const page = (order = 0): number => memory.allocPages(order);
  return { memory, config, b, t, contextCache, pasidCache, page };
}

function txn(addr: bigint | number, more: Partial<VtdTransaction> = {}): VtdTransaction {
  return { sourceId: SID, addr, write: false, exec: false, privileged: false, atsTranslated: false, ...more };
}

function okPa(r: VtdTranslationResult): number {
  if (r.kind !== 'ok') throw new Error(`fault 0x${r.fault.reason.toString(16)}`);
  return r.pa;
}

function reason(r: VtdTranslationResult): number {
  if (r.kind !== 'fault') throw new Error('no fault');
  return r.fault.reason;
}

/** Legacy unit with one device on a 4-level (AW=2) second-level table, DID 5. */
function legacy(aw = 2, overrides: Partial<VtdHwConfig> = {}, ctx: { tt?: number; fpd?: boolean } = {}) {
  const e = env(false, overrides);
  const sl = new SlTestPageTable(e.memory, { levels: aw + 2 });
  e.b.setContext(SID, {
    mode: 'legacy',
    present: true,
    aw,
    slptptr: sl.rootAddr,
    did: 5,
    tt: ctx.tt ?? 0,
    fpd: ctx.fpd ?? false,
  });
  return { ...e, sl };
}

/** Scalable unit with one device, PASID directory, context with PASIDE/DTE/PRE. */
function scalable(overrides: Partial<VtdHwConfig> = {}, ctx: { dte?: boolean; ridPasid?: number } = {}) {
  const e = env(true, overrides);
  const dir = e.b.pasidDirectory();
  e.b.setContext(SID, {
    mode: 'scalable',
    present: true,
    paside: true,
    dte: ctx.dte ?? true,
    pre: true,
    pdts: 2,
    pasidDirPtr: dir,
    ridPasid: ctx.ridPasid ?? 0,
  });
  const setPasid = (pasid: number, init: PasidEntryInit): number =>
    e.b.setPasidEntry(dir, pasid, { present: true, ...init });
  return { ...e, dir, setPasid };
}

describe('legacy mode second-level translation', () => {
  for (const aw of [1, 2, 3]) {
    it(`walks ${aw + 2} levels and caches the result in the IOTLB`, () => {
      const { t, sl, page } = legacy(aw);
      const pa = page();
      const iova = aw === 1 ? 0x40_1234_5000 : aw === 2 ? 0x7f_1234_5000 : 0x1_0000_1234_5000;
      sl.map(iova, pa);
      const r = t.translate(txn(BigInt(iova + 0x123)));
      expect(r).toEqual({ kind: 'ok', pa: pa + 0x123, span: 4096 - 0x123, iotlbHit: false });
      const r2 = t.translate(txn(iova + 0x10, { write: true }));
      expect(r2).toEqual({ kind: 'ok', pa: pa + 0x10, span: 4096 - 0x10, iotlbHit: true });
      expect(t.iotlb.entries()[0]).toMatchObject({ did: 5, pasid: -1, shift: 12, outputBase: pa });
    });
  }

  it('translates 2 MiB and 1 GiB leaves with their spans', () => {
    const { t, sl } = legacy();
    sl.map(0x20_0000, 0x4020_0000, { size: 2097152 });
    sl.map(0x4000_0000, 0x4000_0000, { size: 1073741824 });
    expect(t.translate(txn(0x21_2345n))).toMatchObject({
      kind: 'ok',
      pa: 0x4021_2345,
      span: 0x20_0000 - 0x1_2345,
    });
    expect(t.translate(txn(0x7fff_f000n))).toMatchObject({ kind: 'ok', pa: 0x7fff_f000, span: 0x1000 });
    expect(t.iotlb.entries().map((e) => e.shift)).toEqual([21, 30]);
  });

  it('treats PS as reserved where SLLPS lacks the size (0x0C)', () => {
    const { t, sl } = legacy(2, { sl2MPages: false, sl1GPages: false });
    sl.map(0x20_0000, 0x4020_0000, { size: 2097152 });
    expect(reason(t.translate(txn(0x20_0000n)))).toBe(0x0c);
  });

  it('checks R and W at every level: 0x05 write, 0x06 read, not-present as missing permission', () => {
    const { t, sl, page } = legacy();
    const pa = page();
    sl.map(0x1000, pa, { write: false });
    sl.map(0x2000, pa, { read: false });
    expect(okPa(t.translate(txn(0x1000n)))).toBe(pa);
    expect(reason(t.translate(txn(0x1000n, { write: true })))).toBe(0x05);
    expect(reason(t.translate(txn(0x2000n)))).toBe(0x06);
    expect(okPa(t.translate(txn(0x2000n, { write: true })))).toBe(pa);
    expect(reason(t.translate(txn(0x5000n)))).toBe(0x06);
    expect(reason(t.translate(txn(0x5000n, { write: true })))).toBe(0x05);
    // A read-only non-leaf entry denies writes below it.
    const [lo, hi] = sl.getRaw(0x2000, 2) as [number, number];
    sl.memory.write64Halves(sl.entryAddr(0x2000, 2) as number, lo & ~2, hi);
    t.iotlb.invalidateGlobal();
    expect(reason(t.translate(txn(0x2000n, { write: true })))).toBe(0x05);
  });

  it('faults 0x04 beyond the AGAW width, 0x0C on reserved bits, 0x07 / 0x03 on unreadable tables', () => {
    const { t, sl, page } = legacy();
    expect(reason(t.translate(txn(2n ** 48n)))).toBe(0x04);
    sl.map(0x3000, page(), { extraHi: 0x4000_0000 }); // bit 62
    expect(reason(t.translate(txn(0x3000n)))).toBe(0x0c);
    sl.map(0x4000, page(), { snp: true, size: 4096 });
    // SNP is legal with ECAP.SC (default config).
    expect(t.translate(txn(0x4000n)).kind).toBe('ok');
    sl.setRaw(0x40_0000, 2, 3 | NO_RAM, 0); // L2 entry → L1 table without RAM
    expect(reason(t.translate(txn(0x40_0000n)))).toBe(0x07);
  });

  it('faults 0x03 when SLPTPTR has no RAM', () => {
    const e = env(false);
    e.b.setContext(SID, { mode: 'legacy', present: true, aw: 2, slptptr: NO_RAM, did: 1 });
    expect(reason(e.t.translate(txn(0n)))).toBe(0x03);
  });

  it('passes through with TT=10, gates translated requests on TT=01 (0x0D), blocks PASIDs (0x31)', () => {
    const pt = legacy(2, {}, { tt: CONTEXT_TT.passThrough });
    expect(pt.t.translate(txn(0x1234_5678n))).toMatchObject({ kind: 'ok', pa: 0x1234_5678 });
    expect(reason(pt.t.translate(txn(0x1000n, { atsTranslated: true })))).toBe(0x0d);
    const ats = legacy(2, {}, { tt: CONTEXT_TT.devIotlb });
    expect(okPa(ats.t.translate(txn(0x5555_5000n, { atsTranslated: true })))).toBe(0x5555_5000);
    const r = ats.t.translate(txn(0x1000n, { pasid: 3 }));
    expect(r).toMatchObject({ kind: 'fault', fault: { reason: 0x31, pasidPresent: true, pasid: 3 } });
  });

  it('reports the fault fields and suppresses qualified faults under FPD', () => {
    const { t } = legacy(2, {}, { fpd: true });
    const r = t.translate(txn(0xabc_d123n, { write: true }));
    expect(r).toEqual({
      kind: 'fault',
      record: false,
      recoverable: false,
      fault: {
        reason: 0x05,
        sourceId: SID,
        addr: 0xabc_d123n,
        write: true,
        pasidPresent: false,
        pasid: 0,
        exec: false,
        privileged: false,
        addressType: 0,
        fpd: true,
      },
    });
    const open = legacy();
    const r2 = open.t.translate(txn(0x1000n));
    expect(r2).toMatchObject({ kind: 'fault', record: true });
  });

  it('passes DMA untranslated while translation is disabled', () => {
    const { t } = legacy();
    t.setState({ ...t.state, enabled: false });
    expect(t.translate(txn(0x9999_9000n))).toMatchObject({ kind: 'ok', pa: 0x9999_9000, span: Infinity });
  });

  it('blocks output pages in the interrupt range (0x0E)', () => {
    const { t, sl } = legacy();
    sl.map(0x1000, 0xfee0_0000);
    expect(reason(t.translate(txn(0x1000n)))).toBe(0x0e);
  });
});

describe('IOTLB staleness', () => {
  it('an unmap without invalidation keeps translating; each invalidation granularity removes it', () => {
    const { t, sl, page } = legacy();
    const pa = page();
    for (const inv of [
      () => t.iotlb.invalidatePage(5, 0x1000n, 0, false),
      () => t.iotlb.invalidatePage(5, 0x0n, 4, true),
      () => t.iotlb.invalidateDomain(5),
      () => t.iotlb.invalidateGlobal(),
    ]) {
      sl.map(0x1000, pa);
      expect(okPa(t.translate(txn(0x1000n)))).toBe(pa);
      sl.unmap(0x1000);
      expect(t.translate(txn(0x1000n))).toMatchObject({ kind: 'ok', pa, iotlbHit: true });
      // Wrong DID / other page: no effect.
      t.iotlb.invalidateDomain(6);
      t.iotlb.invalidatePage(5, 0x2000n, 0, false);
      expect(t.translate(txn(0x1000n))).toMatchObject({ kind: 'ok', iotlbHit: true });
      inv();
      expect(reason(t.translate(txn(0x1000n)))).toBe(0x06);
    }
  });

  it('a changed context entry is not seen until the context cache is invalidated', () => {
    const { t, sl, b, page, contextCache } = legacy();
    const pa = page();
    sl.map(0x1000, pa);
    okPa(t.translate(txn(0x1000n)));
    const sl2 = new SlTestPageTable(sl.memory, { levels: 4 });
    const pa2 = page();
    sl2.map(0x1000, pa2);
    b.setContext(SID, { mode: 'legacy', present: true, aw: 2, slptptr: sl2.rootAddr, did: 7 });
    t.iotlb.invalidateGlobal();
    expect(okPa(t.translate(txn(0x1000n)))).toBe(pa);
    contextCache.invalidateAll();
    expect(okPa(t.translate(txn(0x1000n)))).toBe(pa2);
  });

  it('keeps a stale paging-structure entry until an invalidation without IH', () => {
    const { t, sl, page } = legacy();
    const a = page();
    const b2 = page();
    sl.map(0x1000, a);
    okPa(t.translate(txn(0x1000n)));
    expect(t.iotlb.pdeSize).toBe(3);
    // Point the level-2 entry at a new level-1 table mapping 0x2000 → b2.
    const l1 = page();
    sl.memory.zeroPage(l1);
    sl.memory.write64Halves(l1 + 2 * 8, (b2 | 3) >>> 0, 0);
    sl.setRaw(0x1000, 2, (l1 | 3) >>> 0, 0);
    // The cached level-2 entry still leads to the old level-1 table (0x2000 not mapped there).
    expect(reason(t.translate(txn(0x2000n)))).toBe(0x06);
    t.iotlb.invalidatePage(5, 0x2000n, 0, true);
    expect(reason(t.translate(txn(0x2000n)))).toBe(0x06);
    t.iotlb.invalidatePage(5, 0x2000n, 0, false);
    expect(okPa(t.translate(txn(0x2000n)))).toBe(b2);
    expect(t.iotlb.stats.pdeHits).toBeGreaterThan(0);
  });
});

describe('scalable mode', () => {
  it('second-level PGTT with SLADE writes A and D into the entries', () => {
    const { t, page, setPasid, memory } = scalable();
    const sl = new SlTestPageTable(memory, { levels: 4 });
    setPasid(0, { pgtt: PGTT.secondLevel, aw: 2, slptptr: sl.rootAddr, did: 9, slade: true });
    const pa = page();
    sl.map(0x8000, pa);
    expect(okPa(t.translate(txn(0x8000n)))).toBe(pa);
    expect(sl.getRaw(0x8000, 1)?.[0]).toBe((pa | 0x103) >>> 0);
    expect((sl.getRaw(0x8000, 4)?.[0] ?? 0) & 0x100).toBe(0x100);
    // A write hit on a clean entry walks again to set D.
    expect(t.translate(txn(0x8000n, { write: true }))).toMatchObject({ kind: 'ok', pa, iotlbHit: false });
    expect(sl.getRaw(0x8000, 1)?.[0]).toBe((pa | 0x303) >>> 0);
    expect(t.translate(txn(0x8004n, { write: true }))).toMatchObject({ kind: 'ok', iotlbHit: true });
    // Scalable-mode second-level reasons.
    expect(reason(t.translate(txn(0x9000n)))).toBe(0x79);
    expect(reason(t.translate(txn(2n ** 48n)))).toBe(0x83);
  });

  it('uses RID_PASID for requests without PASID and tags the IOTLB with it', () => {
    const { t, page, setPasid, memory } = scalable({}, { ridPasid: 7 });
    const sl = new SlTestPageTable(memory, { levels: 4 });
    setPasid(7, { pgtt: PGTT.secondLevel, aw: 2, slptptr: sl.rootAddr, did: 3 });
    const pa = page();
    sl.map(0x1000, pa);
    expect(okPa(t.translate(txn(0x1000n)))).toBe(pa);
    expect(t.iotlb.entries()[0]).toMatchObject({ did: 3, pasid: 7 });
    // PASID 0 is not configured (its PASID-table entry is not present).
    expect(t.translate(txn(0x1000n, { pasid: 0 }))).toMatchObject({ kind: 'fault', fault: { reason: 0x59 } });
  });

  it('pass-through PGTT returns the input and blocks the interrupt range for PASID requests (0x87)', () => {
    const { t, setPasid } = scalable();
    setPasid(2, { pgtt: PGTT.passThrough, aw: 2, did: 1 });
    expect(okPa(t.translate(txn(0x7777_7000n, { pasid: 2 })))).toBe(0x7777_7000);
    expect(reason(t.translate(txn(0xfee0_0000n, { pasid: 2 })))).toBe(0x87);
  });

  for (const levels of [4, 5] as const) {
    it(`first-level ${levels}-level walk sets A/D and tags DID + PASID`, () => {
      const { t, page, setPasid, memory } = scalable();
      const fl = new FlTestPageTable(memory, { levels });
      setPasid(5, { pgtt: PGTT.firstLevel, aw: 2, flptr: fl.rootAddr, flpm: levels === 5 ? 1 : 0, did: 4 });
      const pa = page();
      const va = levels === 5 ? 0x00ff_1234_5678_9000n : 0x7fff_1234_5000n;
      fl.map(va, pa);
      expect(okPa(t.translate(txn(va + 8n, { pasid: 5 })))).toBe(pa + 8);
      expect(fl.getRaw(va, 1)?.[0]).toBe((pa | 0x27) >>> 0);
      for (let l = 2; l <= levels; l++) expect((fl.getRaw(va, l)?.[0] ?? 0) & 0x20).toBe(0x20);
      expect(t.translate(txn(va, { pasid: 5, write: true }))).toMatchObject({ kind: 'ok', iotlbHit: false });
      expect(fl.getRaw(va, 1)?.[0]).toBe((pa | 0x67) >>> 0);
      expect(t.iotlb.entries().at(-1)).toMatchObject({ did: 4, pasid: 5, kind: 1, dirty: true });
      // Upper-half canonical address.
      const hiVa = levels === 5 ? 0xff00_0000_0000_0000n : 0xffff_8000_0000_0000n;
      fl.map(hiVa, pa);
      expect(okPa(t.translate(txn(hiVa, { pasid: 5 })))).toBe(pa);
      const bad = levels === 5 ? 0x0100_0000_0000_0000n : 0x0000_8000_0000_0000n;
      expect(reason(t.translate(txn(bad, { pasid: 5 })))).toBe(0x80);
    });
  }

  it('first-level permission rules: U/S (0x81), R/W (0x85), WPE, XD (0x82), SRE (0x5D), ERE (0x5C), P (0x71)', () => {
    const { t, page, setPasid, memory } = scalable();
    const fl = new FlTestPageTable(memory, { levels: 4 });
    const pa = page();
    fl.map(0x1000, pa, { user: false });
    fl.map(0x2000, pa, { write: false });
    fl.map(0x3000, pa, { xd: true });
    setPasid(1, { pgtt: PGTT.firstLevel, aw: 2, flptr: fl.rootAddr, did: 2, sre: true, ere: true });
    setPasid(2, {
      pgtt: PGTT.firstLevel,
      aw: 2,
      flptr: fl.rootAddr,
      did: 2,
      sre: true,
      ere: true,
      wpe: true,
    });
    setPasid(3, { pgtt: PGTT.firstLevel, aw: 2, flptr: fl.rootAddr, did: 2 });
    const p = (pasid: number, addr: number, more: Partial<VtdTransaction> = {}) =>
      t.translate(txn(BigInt(addr), { pasid, ...more }));
    expect(reason(p(1, 0x1000))).toBe(0x81);
    expect(okPa(p(1, 0x1000, { privileged: true }))).toBe(pa);
    expect(reason(p(1, 0x2000, { write: true }))).toBe(0x85);
    expect(okPa(p(1, 0x2000, { write: true, privileged: true }))).toBe(pa);
    expect(reason(p(2, 0x2000, { write: true, privileged: true }))).toBe(0x85);
    expect(reason(p(1, 0x3000, { exec: true }))).toBe(0x82);
    expect(okPa(p(1, 0x2000, { exec: true }))).toBe(pa);
    expect(reason(p(3, 0x2000, { privileged: true }))).toBe(0x5d);
    expect(reason(p(3, 0x2000, { exec: true }))).toBe(0x5c);
    expect(p(1, 0x9000)).toMatchObject({ kind: 'fault', recoverable: true, fault: { reason: 0x71 } });
    // A U/S = 0 non-leaf entry blocks user requests below it.
    fl.setTableBits(0x2000, 2, { user: false });
    t.iotlb.invalidateGlobal();
    expect(reason(p(1, 0x2000))).toBe(0x81);
  });

  it('first-level 1 GiB pages need FL1GP; reserved bits give 0x72', () => {
    const { t, setPasid, memory } = scalable({ fl1gp: false });
    const fl = new FlTestPageTable(memory, { levels: 4 });
    fl.map(0x4000_0000, 0x4000_0000, { size: 1073741824 });
    fl.map(0x20_0000, 0x4020_0000, { size: 2097152 });
    setPasid(1, { pgtt: PGTT.firstLevel, aw: 2, flptr: fl.rootAddr, did: 2 });
    expect(reason(t.translate(txn(0x4000_1000n, { pasid: 1 })))).toBe(0x72);
    expect(okPa(t.translate(txn(0x20_1000n, { pasid: 1 })))).toBe(0x4020_1000);
  });

  it('PASID-selective invalidation removes only first-stage entries of that PASID; PSI type 2 removes all FL entries of the DID', () => {
    const { t, page, setPasid, memory } = scalable();
    const fl = new FlTestPageTable(memory, { levels: 4 });
    const sl = new SlTestPageTable(memory, { levels: 4 });
    const pa = page();
    fl.map(0x1000, pa);
    fl.map(0x100_0000, pa);
    sl.map(0x1000, pa);
    setPasid(1, { pgtt: PGTT.firstLevel, aw: 2, flptr: fl.rootAddr, did: 2 });
    setPasid(2, { pgtt: PGTT.secondLevel, aw: 2, slptptr: sl.rootAddr, did: 2 });
    const fill = () => {
      okPa(t.translate(txn(0x1000n, { pasid: 1 })));
      okPa(t.translate(txn(0x100_0000n, { pasid: 1 })));
      okPa(t.translate(txn(0x1000n, { pasid: 2 })));
    };
    fill();
    expect(t.iotlb.size).toBe(3);
    t.iotlb.invalidatePasidPage(2, 2, 0x1000n, 0, false); // SL entry: untouched
    expect(t.iotlb.size).toBe(3);
    t.iotlb.invalidatePasidPage(2, 1, 0x1000n, 0, false);
    expect(t.iotlb.entries().map((e) => [e.pasid, e.pfn])).toEqual([
      [1, 0x1000],
      [2, 1],
    ]);
    t.iotlb.invalidatePasid(2, 1);
    expect(t.iotlb.entries().map((e) => e.pasid)).toEqual([2]);
    fill();
    t.iotlb.invalidatePage(2, 0x5000n, 0, false); // FL entries go regardless of address; SL stays
    expect(t.iotlb.entries().map((e) => e.pasid)).toEqual([2]);
  });

  it('nested: first-level tables and output go through the second level', () => {
    const { t, page, setPasid, memory } = scalable();
    // Guest-physical = host-physical − 0x4000_0000 + 0x1000_0000 for the FL tables.
    const OFF = 0x3000_0000;
    const sl = new SlTestPageTable(memory, { levels: 4 });
    const fl = new FlTestPageTable(memory, { levels: 4, tableAddr: (pa) => pa - OFF });
    const data = page();
    const gpaData = 0x8000_0000;
    fl.map(0x5000, gpaData);
    for (const tpa of fl.tables) sl.map(tpa - OFF, tpa);
    sl.map(gpaData, data, { write: false });
    setPasid(1, { pgtt: PGTT.nested, aw: 2, slptptr: sl.rootAddr, flptr: fl.rootAddr, did: 8 });
    expect(okPa(t.translate(txn(0x5008n, { pasid: 1 })))).toBe(data + 8);
    expect(fl.getRaw(0x5000, 1)?.[0]).toBe((gpaData | 0x27) >>> 0);
    expect(t.iotlb.entries()[0]).toMatchObject({ kind: 2, did: 8, pasid: 1 });
    // The SL mapping of the output is read-only.
    expect(reason(t.translate(txn(0x5000n, { pasid: 1, write: true })))).toBe(0x79);
    // An FL table page missing from the SL: 0x76 (0x75 for the top table).
    t.iotlb.invalidateGlobal();
    sl.unmap((fl.tables[3] as number) - OFF);
    expect(reason(t.translate(txn(0x5000n, { pasid: 1 })))).toBe(0x76);
    sl.unmap(fl.root - OFF);
    t.iotlb.invalidateGlobal(); // the paging-structure cache still held the upper levels
    expect(reason(t.translate(txn(0x5000n, { pasid: 1 })))).toBe(0x75);
  });

  it('nested: A/D write-back needs a writable FL table page (0x77)', () => {
    const { t, page, setPasid, memory } = scalable();
    const sl = new SlTestPageTable(memory, { levels: 4 });
    const fl = new FlTestPageTable(memory, { levels: 4 });
    const data = page();
    fl.map(0x5000, data);
    for (const tpa of fl.tables) sl.map(tpa, tpa, { write: false });
    sl.map(data, data);
    setPasid(1, { pgtt: PGTT.nested, aw: 2, slptptr: sl.rootAddr, flptr: fl.rootAddr, did: 8 });
    expect(reason(t.translate(txn(0x5000n, { pasid: 1 })))).toBe(0x77);
  });

  it('translated requests need DTE (0x44)', () => {
    const off = scalable({}, { dte: false });
    off.setPasid(0, { pgtt: PGTT.passThrough, aw: 2, did: 1 });
    expect(reason(off.t.translate(txn(0x1000n, { atsTranslated: true })))).toBe(0x44);
    const on = scalable();
    on.setPasid(0, { pgtt: PGTT.passThrough, aw: 2, did: 1 });
    expect(okPa(on.t.translate(txn(0x4444_4000n, { atsTranslated: true })))).toBe(0x4444_4000);
  });
});

describe('ATS translation requests', () => {
  const req = (
    addr: bigint,
    more: Partial<{ pasid: number; noWrite: boolean; exec: boolean; privileged: boolean }> = {},
  ) => ({
    requesterId: SID,
    addr,
    noWrite: false,
    exec: false,
    privileged: false,
    ...more,
  });

  it('answers with the page, its size and permissions; R=W=0 for unmapped pages', () => {
    const { t, page, setPasid, memory } = scalable();
    const sl = new SlTestPageTable(memory, { levels: 4 });
    setPasid(0, { pgtt: PGTT.secondLevel, aw: 2, slptptr: sl.rootAddr, did: 3, slade: true });
    const pa = page();
    sl.map(0x3000, pa, { write: false });
    sl.map(0x20_0000, 0x4020_0000, { size: 2097152 });
    expect(t.atsTranslate(req(0x3123n)).completion).toEqual({
      status: 'success',
      untranslatedAddr: 0x3000n,
      translatedAddr: BigInt(pa),
      size: 4096n,
      read: true,
      write: false,
      exec: false,
      privileged: false,
      untranslatedOnly: false,
      global: false,
      noSnoop: false,
    });
    expect(t.atsTranslate(req(0x21_0000n)).completion).toMatchObject({
      untranslatedAddr: 0x20_0000n,
      translatedAddr: 0x4020_0000n,
      size: 0x20_0000n,
      read: true,
      write: true,
    });
    // The writable translation set D; NW does not.
    expect((sl.getRaw(0x20_0000, 2)?.[0] ?? 0) & 0x300).toBe(0x300);
    const r = t.atsTranslate(req(0x9000n));
    expect(r.completion).toMatchObject({ status: 'success', read: false, write: false });
    expect(r.fault).toBeUndefined();
  });

  it('is UR with a recorded fault when DTE / TT forbid it', () => {
    const off = scalable({}, { dte: false });
    off.setPasid(0, { pgtt: PGTT.passThrough, aw: 2, did: 1 });
    const r = off.t.atsTranslate(req(0x1000n));
    expect(r.completion.status).toBe('ur');
    expect(r.fault?.fault).toMatchObject({ reason: 0x44, addressType: 1 });
    const leg = legacy();
    const r2 = leg.t.atsTranslate(req(0x1000n));
    expect(r2.completion.status).toBe('ur');
    expect(r2.fault?.fault.reason).toBe(0x0d);
    const ok = legacy(2, {}, { tt: CONTEXT_TT.devIotlb });
    ok.sl.map(0x1000, 0x4100_0000);
    expect(ok.t.atsTranslate(req(0x1000n)).completion).toMatchObject({
      status: 'success',
      read: true,
      write: true,
    });
    expect(legacy(2, { dt: false }, { tt: 0 }).t.atsTranslate(req(0x1000n)).completion.status).toBe('ur');
  });
});
