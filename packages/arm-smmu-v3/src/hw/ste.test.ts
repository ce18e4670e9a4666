import { describe, expect, it } from 'vitest';
import type { SmmuHwConfig } from './smmu-config.js';
import {
  type BadSteReason,
  decodeSte,
  decodeSteFields,
  encodeSte,
  type SteFields,
  steWordsToDwords,
} from './ste.js';
import { s1SteFields, s2SteFields, testConfig } from './structs.test-helpers.js';

const CFG = testConfig();

function reason(fields: Partial<SteFields>, config: SmmuHwConfig = CFG): BadSteReason | 'ok' {
  const r = decodeSte(encodeSte(fields), config);
  return r.ok ? 'ok' : r.reason;
}

describe('STE encoding', () => {
  it("matches Linux's CD-table STE: DW0 with S1ContextPtr/S1CDMax/S1Fmt, DW1 = 0xD6", () => {
    const w = encodeSte(s1SteFields(0x4012_3440, { s1Fmt: 2, s1CdMax: 20 }));
    const dw = steWordsToDwords(w);
    expect(dw[0]).toBe((20n << 59n) | 0x4012_3440n | (2n << 4n) | (5n << 1n) | 1n);
    expect(dw[1]).toBe(0xd6n);
    expect(dw[2]).toBe(0n);
    expect(dw[3]).toBe(0n);
    expect(w.length).toBe(16);
  });

  it("places Linux's S2 VTCR example (0x53590) at DW2 bits 50:32 and S2TTB at DW3", () => {
    const w = encodeSte(s2SteFields(0x1_2345_6000, { s2Vmid: 0x1234 }));
    const dw = steWordsToDwords(w);
    expect((dw[2]! >> 32n) & 0x7ffffn).toBe(0x53590n);
    expect(dw[2]! & 0xffffn).toBe(0x1234n);
    expect(dw[2]! >> 51n).toBe(0b1000_1001n); // S2AA64 (51), S2PTW (54), S2R (58)
    expect(dw[3]).toBe(0x1_2345_6000n);
  });

  it('round-trips every field through 32-bit words and through bigints', () => {
    const f: SteFields = {
      v: true,
      config: 7,
      s1Fmt: 1,
      s1ContextPtr: 0xf_ffff_ffff_ffc0,
      s1CdMax: 31,
      s1Dss: 3,
      s1Cir: 2,
      s1Cor: 3,
      s1Csh: 2,
      s2Hwu: 0xa,
      dre: true,
      cont: 9,
      dcp: true,
      ppar: true,
      mev: true,
      s2Fwb: true,
      s1Mpam: true,
      s1Stalld: true,
      eats: 2,
      strw: 2,
      memAttr: 0xf,
      mtcfg: true,
      allocCfg: 0xb,
      shcfg: 1,
      nscfg: 3,
      privCfg: 2,
      instCfg: 3,
      s2Vmid: 0xffff,
      s2T0sz: 0x3f,
      s2Sl0: 1,
      s2Ir0: 3,
      s2Or0: 2,
      s2Sh0: 1,
      s2Tg: 2,
      s2Ps: 6,
      s2Aa64: true,
      s2Endi: true,
      s2Affd: true,
      s2Ptw: true,
      s2Hd: true,
      s2Ha: true,
      s2S: true,
      s2R: true,
      s2Ttb: 0xf_ffff_ffff_fff0,
    };
    const w = encodeSte(f);
    expect(decodeSteFields(w)).toEqual(f);
    expect(decodeSteFields(steWordsToDwords(w))).toEqual(f);
  });

  it('masks values to their fields and addresses to their aligned bits', () => {
    const f = decodeSteFields(
      encodeSte({ config: 9, s1ContextPtr: 0x4000_007f, s2Ttb: 0x4000_000f, s2Vmid: 0x1_0005 }),
    );
    expect(f.config).toBe(1);
    expect(f.s1ContextPtr).toBe(0x4000_0040);
    expect(f.s2Ttb).toBe(0x4000_0000);
    expect(f.s2Vmid).toBe(5);
  });
});

describe('STE decode: kinds and effective values', () => {
  it('V=0 is C_BAD_STE even with Config = abort', () => {
    expect(reason({ v: false, config: 0 })).toBe('invalid');
    expect(reason({ v: false, config: 5 })).toBe('invalid');
  });

  it('Config 0b000 and the reserved 0b001 … 0b011 are abort, whatever else is set', () => {
    for (const config of [0, 1, 2, 3]) {
      const r = decodeSte(encodeSte({ v: true, config, s2Tg: 3, s1CdMax: 31, strw: 1 }), CFG);
      expect(r.ok && r.ste.kind).toBe('abort');
    }
  });

  it('Config 0b100 is bypass with EATS forced to 0', () => {
    const r = decodeSte(encodeSte({ v: true, config: 4, eats: 1 }), CFG);
    expect(r.ok && r.ste.kind).toBe('bypass');
    expect(r.ok && r.ste.eats).toBe(0);
  });

  it('decodes a stage-1 STE with derived values', () => {
    const r = decodeSte(
      encodeSte(s1SteFields(0x4000_1000, { s1CdMax: 4, s1Fmt: 3, s1Dss: 3, eats: 1 })),
      CFG,
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.ste.kind).toBe('s1');
    expect(r.ste.s1Enabled).toBe(true);
    expect(r.ste.s2Enabled).toBe(false);
    expect(r.ste.s1Fmt).toBe(0); // reserved 0b11 behaves as linear
    expect(r.ste.s1Dss).toBe(0); // reserved 0b11 behaves as terminate
    expect(r.ste.s1CdMax).toBe(4);
    expect(r.ste.eats).toBe(1);
    expect(r.ste.vmid).toBe(0);
    expect(r.ste.s2StartLevel).toBe(-1);
  });

  it('decodes a stage-2 STE: granule, sizes, start level, concatenation, VMID', () => {
    const r = decodeSte(encodeSte(s2SteFields(0x4000_2000)), CFG);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.ste).toMatchObject({
      kind: 's2',
      vmid: 7,
      s2GranuleShift: 12,
      s2InputBits: 48,
      s2OutputBits: 48,
      s2StartLevel: 0,
      s2Concat: 1,
      s2TtbEffective: 0x4000_2000,
    });
    // 40-bit IPA starting at level 1: two concatenated tables (8 KiB), TTB aligned down to 8 KiB.
    const c = decodeSte(encodeSte(s2SteFields(0x4000_3000, { s2T0sz: 24, s2Sl0: 1 })), CFG);
    expect(c.ok && c.ste.s2Concat).toBe(2);
    expect(c.ok && c.ste.s2StartLevel).toBe(1);
    expect(c.ok && c.ste.s2TtbEffective).toBe(0x4000_2000);
    // 64K granule: SL0=1 → level 2, 16K: SL0=2 → level 1.
    const g64 = decodeSte(encodeSte(s2SteFields(0x4001_0000, { s2Tg: 1, s2T0sz: 22, s2Sl0: 1 })), CFG);
    expect(g64.ok && [g64.ste.s2GranuleShift, g64.ste.s2StartLevel, g64.ste.s2Concat]).toEqual([16, 2, 1]);
    const g16 = decodeSte(encodeSte(s2SteFields(0x4001_0000, { s2Tg: 2, s2T0sz: 17, s2Sl0: 2 })), CFG);
    expect(g16.ok && [g16.ste.s2GranuleShift, g16.ste.s2StartLevel, g16.ste.s2Concat]).toEqual([14, 1, 1]);
  });

  it('caps S2PS at IDR5.OAS and at 48 bits for 4K/16K', () => {
    const small = decodeSte(
      encodeSte(s2SteFields(0x4000_0000, { s2Ps: 5, s2T0sz: 24, s2Sl0: 1 })),
      testConfig({ oas: 40 }),
    );
    expect(small.ok && small.ste.s2OutputBits).toBe(40);
    const capped = decodeSte(encodeSte(s2SteFields(0x4000_0000, { s2Ps: 7 })), testConfig({ oas: 52 }));
    expect(capped.ok && capped.ste.s2OutputBits).toBe(48);
    const big = decodeSte(
      encodeSte(s2SteFields(0x4001_0000, { s2Ps: 6, s2Tg: 1, s2T0sz: 12, s2Sl0: 2 })),
      testConfig({ oas: 52 }),
    );
    expect(big.ok && big.ste.s2OutputBits).toBe(52);
  });

  it('masks the VMID to 8 bits of tag and ignores STRW without HYP', () => {
    const r = decodeSte(
      encodeSte(s1SteFields(0x4000_0000, { strw: 3, s2Vmid: 0x12 })),
      testConfig({ vmid16: false }),
    );
    expect(r.ok && [r.ste.strw, r.ste.vmid]).toEqual([0, 0x12]);
    const el2 = decodeSte(
      encodeSte(s1SteFields(0x4000_0000, { strw: 2, s2Vmid: 9 })),
      testConfig({ hyp: true }),
    );
    expect(el2.ok && [el2.ste.strw, el2.ste.vmid]).toEqual([2, 0]);
    const noS2 = decodeSte(encodeSte(s1SteFields(0x4000_0000, { s2Vmid: 9 })), testConfig({ stage2: false }));
    expect(noS2.ok && noS2.ste.vmid).toBe(0);
  });

  it('S1CDMax is IGNORED without SSIDSIZE (QEMU would report C_BAD_STE)', () => {
    const r = decodeSte(
      encodeSte(s1SteFields(0x4000_0000, { s1CdMax: 5, s1Fmt: 2 })),
      testConfig({ ssidBits: 0 }),
    );
    expect(r.ok && [r.ste.s1CdMax, r.ste.s1Fmt]).toEqual([0, 0]);
  });

  it('S2HD without S2HA behaves as no HTTU', () => {
    const r = decodeSte(encodeSte(s2SteFields(0x4000_0000, { s2Hd: true })), CFG);
    expect(r.ok && [r.ste.s2HaEffective, r.ste.s2HdEffective]).toEqual([false, false]);
    const both = decodeSte(encodeSte(s2SteFields(0x4000_0000, { s2Hd: true, s2Ha: true })), CFG);
    expect(both.ok && [both.ste.s2HaEffective, both.ste.s2HdEffective]).toEqual([true, true]);
  });

  it('accepts 4 bigints', () => {
    const r = decodeSte(steWordsToDwords(encodeSte(s2SteFields(0x4000_2000))), CFG);
    expect(r.ok && r.ste.s2Ttb).toBe(0x4000_2000);
  });
});

describe('STE legality (C_BAD_STE reasons)', () => {
  const cases: [string, Partial<SteFields>, Partial<SmmuHwConfig>, BadSteReason][] = [
    ['stage 1 not implemented', s1SteFields(0x4000_0000), { stage1: false }, 's1-unsupported'],
    ['stage 2 not implemented', s2SteFields(0x4000_0000), { stage2: false }, 's2-unsupported'],
    ['nested without stage 2', s2SteFields(0x4000_0000, { config: 7 }), { stage2: false }, 's2-unsupported'],
    ['STRW 0b01 with HYP', s1SteFields(0x4000_0000, { strw: 1 }), { hyp: true }, 'strw'],
    ['STRW 0b11 with HYP', s1SteFields(0x4000_0000, { strw: 3 }), { hyp: true }, 'strw'],
    ['S2VMID[15:8] without VMID16', s2SteFields(0x4000_0000, { s2Vmid: 0x100 }), { vmid16: false }, 's2vmid'],
    ['S2VMID[15:8] on stage-1 STE', s1SteFields(0x4000_0000, { s2Vmid: 0x100 }), { vmid16: false }, 's2vmid'],
    ['S2AA64=0', s2SteFields(0x4000_0000, { s2Aa64: false }), {}, 's2-aa64'],
    ['S2TG reserved', s2SteFields(0x4000_0000, { s2Tg: 3 }), {}, 's2-tg'],
    ['S2TG unsupported', s2SteFields(0x4000_0000), { granule4k: false }, 's2-tg'],
    ['S2ENDI', s2SteFields(0x4000_0000, { s2Endi: true }), {}, 's2-endi'],
    ['S2SL0=3', s2SteFields(0x4000_0000, { s2Sl0: 3 }), {}, 's2-sl0'],
    ['S2T0SZ > 39', s2SteFields(0x4000_0000, { s2T0sz: 40, s2Sl0: 0 }), {}, 's2-t0sz'],
    ['S2T0SZ < 16 (4K)', s2SteFields(0x4000_0000, { s2T0sz: 15 }), { oas: 52 }, 's2-t0sz'],
    ['S2T0SZ < 64 − OAS', s2SteFields(0x4000_0000, { s2T0sz: 20, s2Sl0: 1 }), { oas: 40 }, 's2-t0sz'],
    ['too many concatenated tables', s2SteFields(0x4000_0000, { s2T0sz: 16, s2Sl0: 0 }), {}, 's2-sl0-t0sz'],
    ['start level below input size', s2SteFields(0x4000_0000, { s2T0sz: 34, s2Sl0: 1 }), {}, 's2-sl0-t0sz'],
    ['S2TTB beyond S2PS', s2SteFields(2 ** 40, { s2Ps: 2 }), {}, 's2-ttb'],
    ['S2TTB beyond OAS', s2SteFields(2 ** 44, { s2T0sz: 24, s2Sl0: 1 }), { oas: 44 }, 's2-ttb'],
    ['S2HA without HTTU', s2SteFields(0x4000_0000, { s2Ha: true }), { httu: 'none' }, 's2-ha'],
    [
      'S2HD without dirty HTTU',
      s2SteFields(0x4000_0000, { s2Ha: true, s2Hd: true }),
      { httu: 'ha' },
      's2-hd',
    ],
    [
      'S2S with terminate model',
      s2SteFields(0x4000_0000, { s2S: true }),
      { stallModel: 'terminate', stallMax: 0 },
      's2s-no-stall',
    ],
    ['S2S=0 with stall forced', s2SteFields(0x4000_0000), { stallModel: 'forced' }, 's2s-forced'],
    ['S1CDMax > SSIDSIZE', s1SteFields(0x4000_0000, { s1CdMax: 9 }), { ssidBits: 8 }, 's1cdmax'],
    [
      '2-level CD table without CD2L',
      s1SteFields(0x4000_0000, { s1CdMax: 8, s1Fmt: 2 }),
      { twoLevelCdTable: false },
      's1fmt',
    ],
    ['S1ContextPtr beyond OAS', s1SteFields(2 ** 44), { oas: 44 }, 's1-context-ptr'],
    [
      'S1STALLD with terminate model',
      s1SteFields(0x4000_0000, { s1Stalld: true }),
      { stallModel: 'terminate', stallMax: 0 },
      's1stalld',
    ],
    [
      'S1STALLD with stall forced',
      s1SteFields(0x4000_0000, { s1Stalld: true }),
      { stallModel: 'forced' },
      's1stalld',
    ],
    ['EATS=1 with S2S', s2SteFields(0x4000_0000, { eats: 1, s2S: true }), {}, 'eats'],
    ['EATS=2 without nesting', s1SteFields(0x4000_0000, { eats: 2 }), {}, 'eats'],
    [
      'EATS=2 nested with S2S',
      { ...s2SteFields(0x4000_0000, { s2S: true }), ...s1SteFields(0x4000_0000), config: 7, eats: 2 },
      {},
      'eats',
    ],
  ];
  it.each(cases)('%s', (_name, fields, config, expected) => {
    expect(reason(fields, testConfig(config))).toBe(expected);
  });

  it('each illegal STE above is legal once the offending field is fixed or the feature exists', () => {
    expect(reason(s1SteFields(0x4000_0000, { strw: 2 }), testConfig({ hyp: true }))).toBe('ok');
    expect(reason(s2SteFields(0x4000_0000, { s2Vmid: 0x100 }))).toBe('ok');
    expect(reason(s2SteFields(0x4000_0000, { s2S: true }))).toBe('ok');
    expect(reason(s1SteFields(0x4000_0000, { s1Stalld: true }))).toBe('ok');
    expect(reason(s1SteFields(0x4000_0000, { s1CdMax: 8, s1Fmt: 2 }))).toBe('ok');
    expect(reason(s2SteFields(0x4000_0000, { s2Ha: true, s2Hd: true }))).toBe('ok');
    expect(reason({ ...s2SteFields(0x4000_0000), ...s1SteFields(0x4000_0000), config: 7, eats: 2 })).toBe(
      'ok',
    );
    // EATS and STRW are IGNORED without ATS / HYP, and STRW on a stage-2 STE.
    expect(reason(s1SteFields(0x4000_0000, { eats: 2 }), testConfig({ ats: false }))).toBe('ok');
    expect(reason(s2SteFields(0x4000_0000, { strw: 1 }), testConfig({ hyp: true }))).toBe('ok');
    // Nested S1ContextPtr is an IPA checked against IAS, not OAS.
    const a32 = testConfig({ oas: 36, ttf: 'aarch32-aarch64' });
    const nested = {
      ...s2SteFields(0x4000_0000, { s2T0sz: 24, s2Sl0: 1, s2Ps: 1 }),
      ...s1SteFields(2 ** 38),
      config: 7,
    };
    expect(reason(nested, a32)).toBe('ok');
    expect(reason(s1SteFields(2 ** 38), a32)).toBe('s1-context-ptr');
  });
});
