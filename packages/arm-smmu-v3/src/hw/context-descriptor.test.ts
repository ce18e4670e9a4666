import { describe, expect, it } from 'vitest';
import { type BadCdReason, type CdFields, decodeCd, decodeCdFields, encodeCd } from './context-descriptor.js';
import type { SmmuHwConfig } from './smmu-config.js';
import { steWordsToDwords } from './ste.js';
import { cdFields, testConfig } from './structs.test-helpers.js';

const CFG = testConfig();

function reason(fields: Partial<CdFields>, config: SmmuHwConfig = CFG): BadCdReason | 'ok' {
  const r = decodeCd(encodeCd(fields), config);
  return r.ok ? 'ok' : r.reason;
}

describe('CD encoding', () => {
  it("matches Linux's example DW0 (ASID << 48 | 0x0000_E205_C000_3510), TTB0 in DW1, MAIR in DW3", () => {
    const w = encodeCd(cdFields(0x4123_4000, { asid: 0x2a }));
    const dw = steWordsToDwords(w);
    expect(dw[0]).toBe((0x2an << 48n) | 0x0000_e205_c000_3510n);
    expect(dw[1]).toBe(0x4123_4000n);
    expect(dw[2]).toBe(0n);
    expect(dw[3]).toBe(0xf404_ff44n);
    expect(w.length).toBe(16);
  });

  it('round-trips every field (DW0..DW4)', () => {
    const f: CdFields = {
      t0sz: 25,
      tg0: 2,
      ir0: 3,
      or0: 2,
      sh0: 1,
      epd0: true,
      endi: true,
      t1sz: 33,
      tg1: 3,
      ir1: 1,
      or1: 2,
      sh1: 3,
      epd1: true,
      v: true,
      ips: 6,
      affd: true,
      wxn: true,
      uwxn: true,
      tbi0: true,
      tbi1: true,
      pan: true,
      aa64: true,
      hd: true,
      ha: true,
      s: true,
      r: true,
      a: true,
      aset: true,
      asid: 0xffff,
      nscfg0: true,
      had0: true,
      haft: true,
      ttb0: 0xf_ffff_ffff_fff0,
      nscfg1: true,
      had1: true,
      ttb1: 0xf_ffff_ffff_fff0,
      mair0: 0xffff_fffe,
      mair1: 0x8000_0001,
      amair0: 0x1234_5678,
      amair1: 0x9abc_def0,
    };
    expect(decodeCdFields(encodeCd(f))).toEqual(f);
    const dw = steWordsToDwords(encodeCd(f));
    const back = decodeCdFields(dw);
    expect({ ...back, amair0: f.amair0, amair1: f.amair1 }).toEqual(f); // 4 bigints carry no DW4
  });
});

describe('CD decode', () => {
  it('derives granules, output sizes and the ASID tag', () => {
    const r = decodeCd(encodeCd(cdFields(0x4000_0000, { asid: 0x1234 })), CFG);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.cd).toMatchObject({
      tg0Shift: 12,
      tg1Shift: 0,
      outputBits0: 48,
      outputBits1: 0,
      tagAsid: 0x1234,
      haEffective: false,
      hdEffective: false,
    });
    const a8 = decodeCd(encodeCd(cdFields(0x4000_0000, { asid: 0x1234 })), testConfig({ asid16: false }));
    expect(a8.ok && a8.cd.tagAsid).toBe(0x34);
  });

  it('effective IPS = min(IPS, OAS), capped at 48 unless 64K', () => {
    const r = decodeCd(encodeCd(cdFields(0x4000_0000, { ips: 6 })), testConfig({ oas: 52 }));
    expect(r.ok && r.cd.outputBits0).toBe(48);
    const g64 = decodeCd(encodeCd(cdFields(0x4000_0000, { ips: 6, tg0: 1 })), testConfig({ oas: 52 }));
    expect(g64.ok && g64.cd.outputBits0).toBe(52);
    const small = decodeCd(encodeCd(cdFields(0x4000_0000, { ips: 5 })), testConfig({ oas: 40 }));
    expect(small.ok && small.cd.outputBits0).toBe(40);
  });

  it('TG1 uses its own encoding (1 16K, 2 4K, 3 64K)', () => {
    for (const [tg1, shift] of [
      [1, 14],
      [2, 12],
      [3, 16],
    ] as const) {
      const r = decodeCd(encodeCd(cdFields(0x4000_0000, { epd1: false, tg1, t1sz: 16 })), CFG);
      expect(r.ok && r.cd.tg1Shift).toBe(shift);
    }
  });

  it('an SVA-style dead CD (EPD0 = EPD1 = 1) is legal whatever TxSZ/TGx/TTBx hold', () => {
    expect(reason(cdFields(2 ** 50, { epd0: true, t0sz: 0, tg0: 3 }))).toBe('ok');
  });

  it('HAD honoured only with IDR3.HAD; HA/HD honoured when supported', () => {
    const r = decodeCd(encodeCd(cdFields(0x4000_0000, { had0: true, ha: true, hd: true })), CFG);
    expect(r.ok && [r.cd.had0Effective, r.cd.haEffective, r.cd.hdEffective]).toEqual([true, true, true]);
    const n = decodeCd(encodeCd(cdFields(0x4000_0000, { had0: true })), testConfig({ had: false }));
    expect(n.ok && n.cd.had0Effective).toBe(false);
  });
});

describe('CD legality (C_BAD_CD reasons)', () => {
  const t1 = { epd1: false, tg1: 2, t1sz: 16 };
  const cases: [string, Partial<CdFields>, Partial<SmmuHwConfig>, BadCdReason][] = [
    ['V=0', cdFields(0x4000_0000, { v: false }), {}, 'invalid'],
    ['AA64=0', cdFields(0x4000_0000, { aa64: false }), {}, 'aa64'],
    ['A=0 with TERM_MODEL=1', cdFields(0x4000_0000, { a: false }), {}, 'a-term-model'],
    [
      'S=1 with terminate model',
      cdFields(0x4000_0000, { s: true }),
      { stallModel: 'terminate', stallMax: 0 },
      's-no-stall',
    ],
    ['S=0 with stall forced', cdFields(0x4000_0000), { stallModel: 'forced' }, 's-forced'],
    ['HA without HTTU', cdFields(0x4000_0000, { ha: true }), { httu: 'none' }, 'ha'],
    ['HD without dirty HTTU', cdFields(0x4000_0000, { ha: true, hd: true }), { httu: 'ha' }, 'hd'],
    ['ENDI', cdFields(0x4000_0000, { endi: true }), {}, 'endi'],
    ['TG0 reserved', cdFields(0x4000_0000, { tg0: 3 }), {}, 'tg0'],
    ['TG0 unsupported', cdFields(0x4000_0000, { tg0: 2 }), { granule16k: false }, 'tg0'],
    ['T0SZ < 16', cdFields(0x4000_0000, { t0sz: 15 }), {}, 't0sz'],
    ['T0SZ 12 needs VAX', cdFields(0x4000_0000, { t0sz: 12, tg0: 1 }), {}, 't0sz'],
    ['T0SZ > 39', cdFields(0x4000_0000, { t0sz: 40 }), {}, 't0sz'],
    ['TTB0 beyond IPS', cdFields(2 ** 40, { ips: 2 }), {}, 'ttb0'],
    ['TTB0 beyond OAS', cdFields(2 ** 44), { oas: 44 }, 'ttb0'],
    ['TG1 reserved (0)', cdFields(0x4000_0000, { ...t1, tg1: 0 }), {}, 'tg1'],
    ['T1SZ > 39', cdFields(0x4000_0000, { ...t1, t1sz: 40 }), {}, 't1sz'],
    ['TTB1 beyond IPS', cdFields(0x4000_0000, { ...t1, ttb1: 2 ** 48 }), {}, 'ttb1'],
  ];
  it.each(cases)('%s', (_name, fields, config, expected) => {
    expect(reason(fields, testConfig(config))).toBe(expected);
  });

  it('the same CDs are legal where the SMMU allows them', () => {
    expect(reason(cdFields(0x4000_0000, { a: false }), testConfig({ termModel: 0 }))).toBe('ok');
    expect(reason(cdFields(0x4000_0000, { s: true }))).toBe('ok');
    expect(reason(cdFields(0x4000_0000, { s: true }), testConfig({ stallModel: 'forced' }))).toBe('ok');
    expect(reason(cdFields(0x4000_0000, { t0sz: 12, tg0: 1 }), testConfig({ vax: true }))).toBe('ok');
    expect(reason(cdFields(0x4000_0000, { t0sz: 39 }))).toBe('ok');
    expect(reason(cdFields(0x4000_0000, { ...t1, ttb1: 2 ** 47 }))).toBe('ok');
  });
});
