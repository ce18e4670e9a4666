import { describe, expect, it } from 'vitest';
import { decodeL1cd, encodeL1cd, fetchCd, selectSubstream } from './cd-table.js';
import { smmuEvent } from './events.js';
import { decodeSte, encodeSte, type Ste, type SteFields } from './ste.js';
import {
  cdFields,
  NO_RAM,
  putCd,
  RAM_BASE,
  s1SteFields,
  s2SteFields,
  testConfig,
  testMemory,
} from './structs.test-helpers.js';

const CFG = testConfig();
const CDT = RAM_BASE + 0x30_0000;
const L1 = RAM_BASE + 0x40_0000;
const LEAF = RAM_BASE + 0x50_0000;

function ste(fields: Partial<SteFields>): Ste {
  const r = decodeSte(encodeSte(fields), CFG);
  if (!r.ok) throw new Error(r.reason);
  return r.ste;
}

describe('L1CD', () => {
  it('encodes and decodes V (bit 0) and L2Ptr (51:12)', () => {
    const d = encodeL1cd({ v: true, l2Ptr: 0xf_ffff_ffff_f000 });
    expect(d).toBe(0xf_ffff_ffff_f001n);
    expect(decodeL1cd(Number(d & 0xffff_ffffn), Number(d >> 32n))).toEqual({
      v: true,
      l2Ptr: 0xf_ffff_ffff_f000,
    });
  });
});

describe('selectSubstream (SSID rules)', () => {
  const none = { s1CdMax: 0, s1Dss: 0 };
  it('without substreams: no SSID → CD 0; any SSID → C_BAD_SUBSTREAMID', () => {
    expect(selectSubstream(none, false, 0)).toEqual({ kind: 'cd', index: 0 });
    expect(selectSubstream(none, true, 0)).toMatchObject({
      type: 'C_BAD_SUBSTREAMID',
      reason: 'ssid-no-substreams',
    });
  });
  it('with substreams: S1DSS decides for no-SSID traffic', () => {
    expect(selectSubstream({ s1CdMax: 4, s1Dss: 0 }, false, 0)).toMatchObject({
      type: 'F_STREAM_DISABLED',
      reason: 'stream-disabled',
    });
    expect(selectSubstream({ s1CdMax: 4, s1Dss: 1 }, false, 0)).toEqual({ kind: 's1-bypass' });
    expect(selectSubstream({ s1CdMax: 4, s1Dss: 2 }, false, 0)).toEqual({ kind: 'cd', index: 0 });
  });
  it('SSID range and SSID 0 with S1DSS = 2', () => {
    expect(selectSubstream({ s1CdMax: 4, s1Dss: 2 }, true, 15)).toEqual({ kind: 'cd', index: 15 });
    expect(selectSubstream({ s1CdMax: 4, s1Dss: 2 }, true, 16)).toMatchObject({
      type: 'C_BAD_SUBSTREAMID',
      reason: 'ssid-range',
    });
    expect(selectSubstream({ s1CdMax: 4, s1Dss: 2 }, true, 0)).toMatchObject({
      type: 'F_STREAM_DISABLED',
      reason: 'ssid0-reserved',
    });
    expect(selectSubstream({ s1CdMax: 4, s1Dss: 0 }, true, 0)).toEqual({ kind: 'cd', index: 0 });
  });
});

describe('fetchCd', () => {
  it('single CD at S1ContextPtr (S1CDMax = 0)', () => {
    const m = testMemory();
    putCd(m, CDT, cdFields(0x4100_0000, { asid: 9 }));
    const r = fetchCd(m, ste(s1SteFields(CDT)), 4, false, 0, CFG);
    expect(r.kind === 'cd' && [r.cd.asid, r.cd.ttb0, r.index, r.cdAddr]).toEqual([9, 0x4100_0000, 0, CDT]);
  });

  it('linear table: CD at ptr + ssid × 64; SSID events carry SSV/SSID', () => {
    const m = testMemory();
    putCd(m, CDT + 5 * 64, cdFields(0x4100_0000, { asid: 5 }));
    const s = ste(s1SteFields(CDT, { s1CdMax: 3 }));
    const r = fetchCd(m, s, 4, true, 5, CFG);
    expect(r.kind === 'cd' && [r.cd.asid, r.index]).toEqual([5, 5]);
    const bad = fetchCd(m, s, 4, true, 8, CFG);
    expect(bad.kind === 'fault' && bad.event).toEqual(
      smmuEvent('C_BAD_SUBSTREAMID', 4, { ssv: true, ssid: 8 }),
    );
    const off = fetchCd(m, ste(s1SteFields(CDT, { s1CdMax: 3, s1Dss: 0 })), 4, false, 0, CFG);
    expect(off.kind === 'fault' && off.event).toEqual(smmuEvent('F_STREAM_DISABLED', 4));
    const byp = fetchCd(m, ste(s1SteFields(CDT, { s1CdMax: 3, s1Dss: 1 })), 4, false, 0, CFG);
    expect(byp).toEqual({ kind: 's1-bypass' });
  });

  it('two-level, 64 KiB leaves (S1Fmt 2): L1 index ssid >> 10, leaf index ssid & 1023', () => {
    const m = testMemory();
    m.write64(L1 + 8, encodeL1cd({ v: true, l2Ptr: LEAF }));
    putCd(m, LEAF + 0x3ff * 64, cdFields(0x4100_0000, { asid: 77 }));
    const s = ste(s1SteFields(L1, { s1CdMax: 20, s1Fmt: 2 }));
    const r = fetchCd(m, s, 1, true, 0x7ff, CFG);
    expect(r.kind === 'cd' && [r.cd.asid, r.cdAddr]).toEqual([77, LEAF + 0x3ff * 64]);
  });

  it('two-level, 4 KiB leaves (S1Fmt 1): L1 index ssid >> 6, leaf index ssid & 63', () => {
    const m = testMemory();
    m.write64(L1 + 3 * 8, encodeL1cd({ v: true, l2Ptr: LEAF + 0x3000 }));
    putCd(m, LEAF + 0x3000 + 7 * 64, cdFields(0x4100_0000, { asid: 33 }));
    const r = fetchCd(m, ste(s1SteFields(L1, { s1CdMax: 10, s1Fmt: 1 })), 1, true, 3 * 64 + 7, CFG);
    expect(r.kind === 'cd' && [r.cd.asid, r.cdAddr]).toEqual([33, LEAF + 0x3000 + 7 * 64]);
  });

  it('L1CD.V = 0 → C_BAD_SUBSTREAMID', () => {
    const r = fetchCd(testMemory(), ste(s1SteFields(L1, { s1CdMax: 20, s1Fmt: 2 })), 1, true, 5, CFG);
    expect(r.kind === 'fault' && [r.event.type, r.event.ssid, r.reason]).toEqual([
      'C_BAD_SUBSTREAMID',
      5,
      'l1cd-invalid',
    ]);
  });

  it('bus errors → F_CD_FETCH with the L1CD or CD address in FetchAddr', () => {
    const m = testMemory();
    const l1 = fetchCd(m, ste(s1SteFields(NO_RAM, { s1CdMax: 20, s1Fmt: 2 })), 1, true, 0x801, CFG);
    expect(l1.kind === 'fault' && [l1.event.type, l1.event.fetchAddr, l1.reason]).toEqual([
      'F_CD_FETCH',
      BigInt(NO_RAM + 16),
      'l1cd-fetch',
    ]);
    m.write64(L1, encodeL1cd({ v: true, l2Ptr: NO_RAM }));
    const cd = fetchCd(m, ste(s1SteFields(L1, { s1CdMax: 20, s1Fmt: 2 })), 1, true, 2, CFG);
    expect(cd.kind === 'fault' && [cd.event.type, cd.event.fetchAddr, cd.event.ssv, cd.reason]).toEqual([
      'F_CD_FETCH',
      BigInt(NO_RAM + 128),
      true,
      'cd-fetch',
    ]);
    const lin = fetchCd(m, ste(s1SteFields(NO_RAM)), 1, false, 0, CFG);
    expect(lin.kind === 'fault' && [lin.event.type, lin.event.fetchAddr]).toEqual([
      'F_CD_FETCH',
      BigInt(NO_RAM),
    ]);
  });

  it('an invalid or illegal CD → C_BAD_CD with its reason', () => {
    const m = testMemory();
    const r = fetchCd(m, ste(s1SteFields(CDT)), 2, false, 0, CFG);
    expect(r.kind === 'fault' && [r.event.type, r.event.sid, r.reason]).toEqual(['C_BAD_CD', 2, 'invalid']);
    putCd(m, CDT, cdFields(0x4100_0000, { tg0: 3 }));
    const t = fetchCd(m, ste(s1SteFields(CDT)), 2, false, 0, CFG);
    expect(t.kind === 'fault' && t.reason).toBe('tg0');
  });

  it('nested: table addresses go through the stage-2 callback; its fault is returned as is', () => {
    const m = testMemory();
    const nested = ste({
      ...s2SteFields(0x4000_0000),
      ...s1SteFields(0x1000, { s1CdMax: 20, s1Fmt: 2 }),
      config: 7,
    });
    const ipaToPa = (ipa: number) => ipa + RAM_BASE;
    m.write64(RAM_BASE + 0x1000, encodeL1cd({ v: true, l2Ptr: 0x10_0000 }));
    putCd(m, RAM_BASE + 0x10_0000 + 3 * 64, cdFields(0x4100_0000, { asid: 4 }));
    const seen: number[] = [];
    const r = fetchCd(m, nested, 1, true, 3, CFG, (ipa) => {
      seen.push(ipa);
      return ipaToPa(ipa);
    });
    expect(r.kind === 'cd' && [r.cd.asid, r.cdAddr]).toEqual([4, RAM_BASE + 0x10_0000 + 192]);
    expect(seen).toEqual([0x1000, 0x10_0000 + 192]);
    const fault = smmuEvent('F_TRANSLATION', 1, { s2: true, class: 0, ipa: 0x1000n });
    const f = fetchCd(m, nested, 1, true, 3, CFG, () => fault);
    expect(f).toEqual({ kind: 'fault', event: fault, reason: 's2-fault' });
  });
});
