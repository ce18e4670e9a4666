import { describe, expect, it } from 'vitest';
import { encodeL1cd } from './cd-table.js';
import { SmmuConfigCache } from './config-cache.js';
import { decodeSte, encodeSte, type Ste } from './ste.js';
import { encodeL1std, type StreamTableConfig } from './stream-table.js';
import {
  cdFields,
  NO_RAM,
  putCd,
  putSte,
  RAM_BASE,
  s1SteFields,
  s2SteFields,
  testConfig,
  testMemory,
} from './structs.test-helpers.js';

const CFG = testConfig();
const LINEAR: StreamTableConfig = { base: RAM_BASE, log2size: 8, fmt: 'linear', split: 0 };
const L1 = RAM_BASE + 0x10_0000;
const L2A = RAM_BASE + 0x20_0000;
const L2B = RAM_BASE + 0x28_0000;
const TWO: StreamTableConfig = { base: L1, log2size: 12, fmt: '2-level', split: 8 };
const CDT = RAM_BASE + 0x30_0000;
const CDL1 = RAM_BASE + 0x40_0000;
const LEAF_A = RAM_BASE + 0x50_0000;
const LEAF_B = RAM_BASE + 0x60_0000;

function setup(options: { capacity?: number; negativeCaching?: boolean } = {}) {
  const memory = testMemory();
  const cache = new SmmuConfigCache({ memory, config: CFG, ...options });
  return { memory, cache };
}

function vmidOf(r: ReturnType<SmmuConfigCache['lookupSte']>): number | string {
  return r.ok ? r.ste.vmid : r.event.type;
}

function steOf(fields: Parameters<typeof encodeSte>[0]): Ste {
  const r = decodeSte(encodeSte(fields), CFG);
  if (!r.ok) throw new Error(r.reason);
  return r.ste;
}

describe('SmmuConfigCache: STEs', () => {
  it('a changed STE stays stale until CFGI_STE, then the new one is used', () => {
    const { memory, cache } = setup();
    putSte(memory, RAM_BASE + 3 * 64, s2SteFields(0x4000_0000, { s2Vmid: 1 }));
    expect(vmidOf(cache.lookupSte(LINEAR, 3))).toBe(1);
    putSte(memory, RAM_BASE + 3 * 64, s2SteFields(0x4000_0000, { s2Vmid: 2 }));
    expect(vmidOf(cache.lookupSte(LINEAR, 3))).toBe(1); // CFGI omitted: stale
    cache.invalidateSte(4, true); // another SID: no effect
    expect(vmidOf(cache.lookupSte(LINEAR, 3))).toBe(1);
    cache.invalidateSte(3, true);
    expect(vmidOf(cache.lookupSte(LINEAR, 3))).toBe(2);
    expect(cache.stats).toMatchObject({ steHits: 2, steMisses: 2 });
  });

  it('caches an invalid STE (negative caching) until CFGI_STE', () => {
    const { memory, cache } = setup();
    expect(vmidOf(cache.lookupSte(LINEAR, 7))).toBe('C_BAD_STE');
    putSte(memory, RAM_BASE + 7 * 64, s2SteFields(0x4000_0000, { s2Vmid: 3 }));
    expect(vmidOf(cache.lookupSte(LINEAR, 7))).toBe('C_BAD_STE');
    cache.invalidateSte(7, true);
    expect(vmidOf(cache.lookupSte(LINEAR, 7))).toBe(3);
  });

  it('without negative caching an invalid STE is re-read every time', () => {
    const { memory, cache } = setup({ negativeCaching: false });
    expect(vmidOf(cache.lookupSte(LINEAR, 7))).toBe('C_BAD_STE');
    putSte(memory, RAM_BASE + 7 * 64, s2SteFields(0x4000_0000, { s2Vmid: 3 }));
    expect(vmidOf(cache.lookupSte(LINEAR, 7))).toBe(3);
  });

  it('fetch aborts and out-of-range SIDs are never cached', () => {
    const { memory, cache } = setup();
    const far: StreamTableConfig = { ...LINEAR, base: NO_RAM - 64 * 4 };
    expect(vmidOf(cache.lookupSte(far, 5))).toBe('F_STE_FETCH');
    expect(cache.hasSte(5)).toBe(false);
    expect(vmidOf(cache.lookupSte(LINEAR, 256))).toBe('C_BAD_STREAMID');
    expect(cache.steCount).toBe(0);
    putSte(memory, RAM_BASE + 5 * 64, s2SteFields(0x4000_0000, { s2Vmid: 9 }));
    expect(vmidOf(cache.lookupSte(LINEAR, 5))).toBe(9);
  });

  it('L1STDs: CFGI_STE Leaf=1 keeps the cached L1STD, Leaf=0 drops it', () => {
    const { memory, cache } = setup();
    memory.write64(L1 + 8, encodeL1std({ span: 9, l2Ptr: L2A }));
    putSte(memory, L2A + 0x10 * 64, s2SteFields(0x4000_0000, { s2Vmid: 10 }));
    putSte(memory, L2A + 0x11 * 64, s2SteFields(0x4000_0000, { s2Vmid: 11 }));
    putSte(memory, L2B + 0x10 * 64, s2SteFields(0x4000_0000, { s2Vmid: 20 }));
    putSte(memory, L2B + 0x11 * 64, s2SteFields(0x4000_0000, { s2Vmid: 21 }));
    expect(vmidOf(cache.lookupSte(TWO, 0x110))).toBe(10);
    // Software moves the span to a new L2 table.
    memory.write64(L1 + 8, encodeL1std({ span: 9, l2Ptr: L2B }));
    expect(vmidOf(cache.lookupSte(TWO, 0x111))).toBe(11); // another SID still walks the cached L1STD
    cache.invalidateSte(0x110, true);
    expect(vmidOf(cache.lookupSte(TWO, 0x110))).toBe(10);
    cache.invalidateSte(0x110, false);
    expect(vmidOf(cache.lookupSte(TWO, 0x110))).toBe(20);
    expect(vmidOf(cache.lookupSte(TWO, 0x111))).toBe(11); // its STE itself is still cached
    cache.invalidateSte(0x111, true);
    expect(vmidOf(cache.lookupSte(TWO, 0x111))).toBe(21);
    expect(cache.stats).toMatchObject({ l1stdHits: 3, l1stdMisses: 2 });
  });

  it('an invalid L1STD is cached: C_BAD_STREAMID persists until CFGI_STE Leaf=0', () => {
    const { memory, cache } = setup();
    expect(vmidOf(cache.lookupSte(TWO, 0x305))).toBe('C_BAD_STREAMID');
    memory.write64(L1 + 3 * 8, encodeL1std({ span: 9, l2Ptr: L2A }));
    putSte(memory, L2A + 5 * 64, s2SteFields(0x4000_0000, { s2Vmid: 30 }));
    expect(vmidOf(cache.lookupSte(TWO, 0x305))).toBe('C_BAD_STREAMID');
    cache.invalidateSte(0x305, true);
    expect(vmidOf(cache.lookupSte(TWO, 0x305))).toBe('C_BAD_STREAMID');
    cache.invalidateSte(0x305, false);
    expect(vmidOf(cache.lookupSte(TWO, 0x305))).toBe(30);
  });

  it('CFGI_STE_RANGE drops the aligned block of 2^(Range+1) SIDs and their L1STDs', () => {
    const { memory, cache } = setup();
    for (let sid = 0; sid < 8; sid++)
      putSte(memory, RAM_BASE + sid * 64, s2SteFields(0x4000_0000, { s2Vmid: sid + 1 }));
    for (let sid = 0; sid < 8; sid++) cache.lookupSte(LINEAR, sid);
    for (let sid = 0; sid < 8; sid++)
      putSte(memory, RAM_BASE + sid * 64, s2SteFields(0x4000_0000, { s2Vmid: sid + 100 }));
    cache.invalidateSteRange(5, 1); // SIDs 4 … 7
    const v = [...Array(8).keys()].map((s) => vmidOf(cache.lookupSte(LINEAR, s)));
    expect(v).toEqual([1, 2, 3, 4, 104, 105, 106, 107]);

    memory.write64(L1 + 8, encodeL1std({ span: 9, l2Ptr: L2A }));
    putSte(memory, L2A, s2SteFields(0x4000_0000, { s2Vmid: 40 }));
    expect(vmidOf(cache.lookupSte(TWO, 0x100))).toBe(40);
    memory.write64(L1 + 8, encodeL1std({ span: 9, l2Ptr: L2B }));
    putSte(memory, L2B, s2SteFields(0x4000_0000, { s2Vmid: 41 }));
    cache.invalidateSteRange(0x100, 7); // 256 SIDs 0x100 … 0x1ff: STEs and the L1STD
    expect(vmidOf(cache.lookupSte(TWO, 0x100))).toBe(41);
  });

  it('CFGI_ALL (Range 31, or invalidateAll) empties every cache', () => {
    const { memory, cache } = setup();
    putSte(memory, RAM_BASE, s1SteFields(CDT));
    putCd(memory, CDT, cdFields(0x4100_0000));
    const r = cache.lookupSte(LINEAR, 0);
    if (!r.ok) throw new Error('no STE');
    cache.lookupCd(r.ste, 0, false, 0);
    expect([cache.steCount, cache.cdCount]).toEqual([1, 1]);
    cache.invalidateSteRange(0x1234, 31);
    expect([cache.steCount, cache.cdCount, cache.l1stdCount, cache.l1cdCount]).toEqual([0, 0, 0, 0]);
  });

  it('capacity: the least recently used entry is evicted', () => {
    const { memory, cache } = setup({ capacity: 2 });
    for (let sid = 0; sid < 3; sid++)
      putSte(memory, RAM_BASE + sid * 64, s2SteFields(0x4000_0000, { s2Vmid: sid + 1 }));
    cache.lookupSte(LINEAR, 0);
    cache.lookupSte(LINEAR, 1);
    cache.lookupSte(LINEAR, 0); // 1 is now the LRU
    cache.lookupSte(LINEAR, 2);
    expect([cache.hasSte(0), cache.hasSte(1), cache.hasSte(2)]).toEqual([true, false, true]);
    expect(cache.stats.evictions).toBe(1);
  });

  it('rejects a capacity that is not a positive integer', () => {
    expect(() => new SmmuConfigCache({ memory: testMemory(), config: CFG, capacity: 0 })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});

describe('SmmuConfigCache: CDs', () => {
  const S1 = steOf(s1SteFields(CDT, { s1CdMax: 4 }));
  const S1_2L = steOf(s1SteFields(CDL1, { s1CdMax: 20, s1Fmt: 2 }));
  const asidOf = (r: ReturnType<SmmuConfigCache['lookupCd']>) =>
    r.kind === 'cd' ? r.cd.asid : r.kind === 'fault' ? r.event.type : r.kind;

  it('a changed CD stays stale until CFGI_CD of that (SID, SSID)', () => {
    const { memory, cache } = setup();
    putCd(memory, CDT + 2 * 64, cdFields(0x4100_0000, { asid: 1 }));
    expect(asidOf(cache.lookupCd(S1, 9, true, 2))).toBe(1);
    putCd(memory, CDT + 2 * 64, cdFields(0x4100_0000, { asid: 2 }));
    expect(asidOf(cache.lookupCd(S1, 9, true, 2))).toBe(1);
    cache.invalidateCd(9, 3, true);
    cache.invalidateCd(8, 2, true);
    expect(asidOf(cache.lookupCd(S1, 9, true, 2))).toBe(1);
    cache.invalidateCd(9, 2, true);
    expect(asidOf(cache.lookupCd(S1, 9, true, 2))).toBe(2);
  });

  it('CDs are cached per SID: a shared CD table needs a CFGI_CD for every SID', () => {
    const { memory, cache } = setup();
    putCd(memory, CDT + 64, cdFields(0x4100_0000, { asid: 1 }));
    cache.lookupCd(S1, 1, true, 1);
    cache.lookupCd(S1, 2, true, 1);
    putCd(memory, CDT + 64, cdFields(0x4100_0000, { asid: 5 }));
    cache.invalidateCd(1, 1, true);
    expect([asidOf(cache.lookupCd(S1, 1, true, 1)), asidOf(cache.lookupCd(S1, 2, true, 1))]).toEqual([5, 1]);
  });

  it('an invalid CD is cached: C_BAD_CD persists until CFGI_CD (with the SSID of each transaction)', () => {
    const { memory, cache } = setup();
    const first = cache.lookupCd(S1, 3, true, 4);
    expect(first.kind === 'fault' && [first.event.type, first.event.ssid]).toEqual(['C_BAD_CD', 4]);
    putCd(memory, CDT + 4 * 64, cdFields(0x4100_0000, { asid: 6 }));
    expect(asidOf(cache.lookupCd(S1, 3, true, 4))).toBe('C_BAD_CD');
    expect(cache.stats.cdHits).toBe(1);
    cache.invalidateCd(3, 4, true);
    expect(asidOf(cache.lookupCd(S1, 3, true, 4))).toBe(6);
  });

  it('no-SubstreamID traffic with S1DSS = 2 uses CD 0, invalidated by CFGI_CD(SSID 0)', () => {
    const { memory, cache } = setup();
    putCd(memory, CDT, cdFields(0x4100_0000, { asid: 1 }));
    const s = steOf(s1SteFields(CDT, { s1CdMax: 4, s1Dss: 2 }));
    expect(asidOf(cache.lookupCd(s, 3, false, 0))).toBe(1);
    putCd(memory, CDT, cdFields(0x4100_0000, { asid: 2 }));
    cache.invalidateCd(3, 0, true);
    expect(asidOf(cache.lookupCd(s, 3, false, 0))).toBe(2);
    expect(asidOf(cache.lookupCd(s, 3, true, 0))).toBe('F_STREAM_DISABLED');
  });

  it('L1CDs: CFGI_CD Leaf=1 keeps the cached L1CD, Leaf=0 drops it', () => {
    const { memory, cache } = setup();
    memory.write64(CDL1, encodeL1cd({ v: true, l2Ptr: LEAF_A }));
    putCd(memory, LEAF_A + 5 * 64, cdFields(0x4100_0000, { asid: 1 }));
    putCd(memory, LEAF_B + 5 * 64, cdFields(0x4100_0000, { asid: 2 }));
    expect(asidOf(cache.lookupCd(S1_2L, 1, true, 5))).toBe(1);
    memory.write64(CDL1, encodeL1cd({ v: true, l2Ptr: LEAF_B }));
    cache.invalidateCd(1, 5, true);
    expect(asidOf(cache.lookupCd(S1_2L, 1, true, 5))).toBe(1);
    cache.invalidateCd(1, 5, false);
    expect(asidOf(cache.lookupCd(S1_2L, 1, true, 5))).toBe(2);
    expect(cache.stats).toMatchObject({ l1cdHits: 1, l1cdMisses: 2 });
  });

  it('an invalid L1CD is cached: C_BAD_SUBSTREAMID persists until CFGI_CD Leaf=0', () => {
    const { memory, cache } = setup();
    expect(asidOf(cache.lookupCd(S1_2L, 1, true, 0x405))).toBe('C_BAD_SUBSTREAMID');
    memory.write64(CDL1 + 8, encodeL1cd({ v: true, l2Ptr: LEAF_A }));
    putCd(memory, LEAF_A + 5 * 64, cdFields(0x4100_0000, { asid: 7 }));
    expect(asidOf(cache.lookupCd(S1_2L, 1, true, 0x405))).toBe('C_BAD_SUBSTREAMID');
    cache.invalidateCd(1, 0x405, true);
    expect(asidOf(cache.lookupCd(S1_2L, 1, true, 0x405))).toBe('C_BAD_SUBSTREAMID');
    cache.invalidateCd(1, 0x405, false);
    expect(asidOf(cache.lookupCd(S1_2L, 1, true, 0x405))).toBe(7);
  });

  it('CFGI_CD_ALL drops every CD and L1CD of the SID only', () => {
    const { memory, cache } = setup();
    memory.write64(CDL1, encodeL1cd({ v: true, l2Ptr: LEAF_A }));
    putCd(memory, LEAF_A + 64, cdFields(0x4100_0000, { asid: 1 }));
    putCd(memory, LEAF_A + 128, cdFields(0x4100_0000, { asid: 2 }));
    cache.lookupCd(S1_2L, 1, true, 1);
    cache.lookupCd(S1_2L, 1, true, 2);
    cache.lookupCd(S1_2L, 2, true, 1);
    expect([cache.cdCount, cache.l1cdCount]).toEqual([3, 2]);
    memory.write64(CDL1, encodeL1cd({ v: true, l2Ptr: LEAF_B }));
    putCd(memory, LEAF_B + 64, cdFields(0x4100_0000, { asid: 11 }));
    putCd(memory, LEAF_B + 128, cdFields(0x4100_0000, { asid: 12 }));
    cache.invalidateCdAll(1);
    expect([cache.cdCount, cache.l1cdCount]).toEqual([1, 1]);
    expect([1, 2].map((s) => asidOf(cache.lookupCd(S1_2L, 1, true, s)))).toEqual([11, 12]);
    expect(asidOf(cache.lookupCd(S1_2L, 2, true, 1))).toBe(1);
  });

  it('CFGI_STE also drops the CDs and L1CDs cached through the SID (IHI 0070 §4.3.1)', () => {
    const { memory, cache } = setup();
    putCd(memory, CDT + 64, cdFields(0x4100_0000, { asid: 1 }));
    memory.write64(CDL1, encodeL1cd({ v: true, l2Ptr: LEAF_A }));
    putCd(memory, LEAF_A + 64, cdFields(0x4100_0000, { asid: 3 }));
    cache.lookupCd(S1, 4, true, 1);
    cache.lookupCd(S1_2L, 5, true, 1);
    cache.lookupCd(S1, 6, true, 1);
    cache.invalidateSte(4, true);
    cache.invalidateSteRange(5, 0); // SIDs 4, 5
    expect([cache.hasCd(4, 1), cache.hasCd(5, 1), cache.hasCd(6, 1), cache.l1cdCount]).toEqual([
      false,
      false,
      true,
      0,
    ]);
  });

  it('fetch aborts, SSID-rule faults and nested stage-2 faults are not cached', () => {
    const { cache } = setup();
    const far = steOf(s1SteFields(NO_RAM - 64, { s1CdMax: 4 }));
    expect(asidOf(cache.lookupCd(far, 1, true, 2))).toBe('F_CD_FETCH');
    expect(asidOf(cache.lookupCd(S1, 1, true, 99))).toBe('C_BAD_SUBSTREAMID');
    expect(cache.cdCount).toBe(0);
  });
});
