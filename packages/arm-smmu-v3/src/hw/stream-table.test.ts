import { describe, expect, it } from 'vitest';
import {
  decodeL1std,
  encodeL1std,
  fetchSte,
  type StreamTableConfig,
  streamTableConfig,
} from './stream-table.js';
import {
  NO_RAM,
  putSte,
  RAM_BASE,
  s1SteFields,
  s2SteFields,
  testConfig,
  testMemory,
} from './structs.test-helpers.js';

const CFG = testConfig();
const LINEAR: StreamTableConfig = { base: RAM_BASE, log2size: 4, fmt: 'linear', split: 0 };
const L1 = RAM_BASE + 0x10_0000;
const L2 = RAM_BASE + 0x20_0000;
const TWO: StreamTableConfig = { base: L1, log2size: 12, fmt: '2-level', split: 8 };

describe('stream table registers and L1STD', () => {
  it('decodes STRTAB_BASE / STRTAB_BASE_CFG as Linux writes them', () => {
    expect(streamTableConfig(0x4000_0000_0000_1040n | (1n << 62n), 0x10000 | (8 << 6) | 12)).toEqual({
      base: 0x1040,
      log2size: 12,
      fmt: '2-level',
      split: 8,
    });
    expect(streamTableConfig(RAM_BASE + 0x3f, 16)).toEqual({
      base: RAM_BASE,
      log2size: 16,
      fmt: 'linear',
      split: 0,
    });
  });

  it('encodes and decodes an L1STD (SPAN 4:0, L2Ptr 51:6)', () => {
    const d = encodeL1std({ span: 9, l2Ptr: 0xf_ffff_ffff_c000 });
    expect(d).toBe(0xf_ffff_ffff_c009n);
    expect(decodeL1std(Number(d & 0xffff_ffffn), Number(d >> 32n))).toEqual({
      span: 9,
      l2Ptr: 0xf_ffff_ffff_c000,
    });
  });
});

describe('fetchSte: linear table', () => {
  it('finds the STE at base + sid × 64', () => {
    const m = testMemory();
    putSte(m, RAM_BASE + 5 * 64, s2SteFields(0x4000_8000));
    const r = fetchSte(m, LINEAR, 5, CFG);
    expect(r.ok).toBe(true);
    expect(r.ok && [r.ste.kind, r.ste.s2Ttb, r.steAddr]).toEqual(['s2', 0x4000_8000, RAM_BASE + 320]);
  });

  it('SID ≥ 2^LOG2SIZE → C_BAD_STREAMID', () => {
    const r = fetchSte(testMemory(), LINEAR, 16, CFG);
    expect(r.ok).toBe(false);
    expect(!r.ok && [r.event.type, r.event.sid, r.reason]).toEqual(['C_BAD_STREAMID', 16, 'sid-range']);
  });

  it('SID ≥ 2^SIDSIZE → C_BAD_STREAMID even if LOG2SIZE is larger', () => {
    const r = fetchSte(testMemory(), { ...LINEAR, log2size: 10 }, 9, testConfig({ sidBits: 3 }));
    expect(!r.ok && r.event.type).toBe('C_BAD_STREAMID');
  });

  it('an all-zero STE → C_BAD_STE with the SID', () => {
    const r = fetchSte(testMemory(), LINEAR, 3, CFG);
    expect(!r.ok && [r.event.type, r.event.sid, r.reason, r.event.fetchAddr]).toEqual([
      'C_BAD_STE',
      3,
      'invalid',
      0n,
    ]);
  });

  it('an illegal STE → C_BAD_STE with its reason', () => {
    const m = testMemory();
    putSte(m, RAM_BASE + 64, s2SteFields(0x4000_8000, { s2Tg: 3 }));
    const r = fetchSte(m, LINEAR, 1, CFG);
    expect(!r.ok && [r.event.type, r.reason]).toEqual(['C_BAD_STE', 's2-tg']);
  });

  it('a table outside RAM → F_STE_FETCH with the STE address', () => {
    const r = fetchSte(testMemory(), { ...LINEAR, base: NO_RAM }, 2, CFG);
    expect(!r.ok && [r.event.type, r.event.fetchAddr, r.reason]).toEqual([
      'F_STE_FETCH',
      BigInt(NO_RAM + 128),
      'ste-fetch',
    ]);
  });
});

describe('fetchSte: two-level table', () => {
  function setup(span = 9, l2Ptr = L2) {
    const m = testMemory();
    // L1 index 2 covers SIDs 0x200 … 0x2ff.
    m.write64(L1 + 2 * 8, encodeL1std({ span, l2Ptr }));
    putSte(m, l2Ptr + 0x34 * 64, s1SteFields(0x4000_4000));
    return m;
  }

  it('L1 index = sid >> SPLIT, L2 index = sid & (2^SPLIT − 1)', () => {
    const r = fetchSte(setup(), TWO, 0x234, CFG);
    expect(r.ok && [r.ste.kind, r.ste.s1ContextPtr, r.steAddr]).toEqual(['s1', 0x4000_4000, L2 + 0x34 * 64]);
  });

  it('SPAN = 0 → C_BAD_STREAMID', () => {
    const r = fetchSte(testMemory(), TWO, 0x134, CFG);
    expect(!r.ok && [r.event.type, r.reason]).toEqual(['C_BAD_STREAMID', 'l1-invalid']);
  });

  it('L2 index beyond 2^(SPAN − 1) → C_BAD_STREAMID; within it the STE is used', () => {
    const m = setup(6); // 32 STEs: indexes 0 … 31
    const r = fetchSte(m, TWO, 0x234, CFG);
    expect(!r.ok && [r.event.type, r.reason]).toEqual(['C_BAD_STREAMID', 'l2-span']);
    putSte(m, L2 + 31 * 64, s1SteFields(0x4000_5000));
    const ok = fetchSte(m, TWO, 0x21f, CFG);
    expect(ok.ok && ok.ste.s1ContextPtr).toBe(0x4000_5000);
  });

  it('SID beyond LOG2SIZE → C_BAD_STREAMID without reading the L1 table', () => {
    const r = fetchSte(testMemory(), { ...TWO, base: NO_RAM }, 0x1000, CFG);
    expect(!r.ok && r.reason).toBe('sid-range');
  });

  it('L1 table outside RAM → F_STE_FETCH with the L1STD address', () => {
    const r = fetchSte(testMemory(), { ...TWO, base: NO_RAM }, 0x234, CFG);
    expect(!r.ok && [r.event.type, r.event.fetchAddr, r.reason]).toEqual([
      'F_STE_FETCH',
      BigInt(NO_RAM + 16),
      'l1-fetch',
    ]);
  });

  it('L2 table outside RAM → F_STE_FETCH with the STE address', () => {
    const m = testMemory();
    m.write64(L1 + 2 * 8, encodeL1std({ span: 9, l2Ptr: NO_RAM }));
    const r = fetchSte(m, TWO, 0x201, CFG);
    expect(!r.ok && [r.event.type, r.event.fetchAddr, r.reason]).toEqual([
      'F_STE_FETCH',
      BigInt(NO_RAM + 64),
      'ste-fetch',
    ]);
  });
});
