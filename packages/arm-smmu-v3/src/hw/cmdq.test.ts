import { describe, expect, it } from 'vitest';
import { decodeSmmuCommand, encodeSmmuCommand, type SmmuCommandInit, smmuCommandIllegal } from './cmdq.js';
import { CMDQ_OP } from './regs.js';
import { resolveSmmuHwConfig } from './smmu-config.js';

function dec(c: SmmuCommandInit) {
  const w = encodeSmmuCommand(c);
  return decodeSmmuCommand(w[0] as number, w[1] as number, w[2] as number, w[3] as number);
}

describe('command encoding', () => {
  it('matches Linux encodings for CMD_SYNC', () => {
    // Linux default SYNC: CS=SEV, MSH=ISH, MSIAttr=0xF → DW0 0x0FC02046
    const w = encodeSmmuCommand({ op: 'CMD_SYNC', cs: 2, msh: 3, msiAttr: 0xf });
    expect([...w]).toEqual([0x0fc0_2046, 0, 0, 0]);
    const m = encodeSmmuCommand({ op: 'CMD_SYNC', cs: 1, msh: 3, msiAttr: 0xf, msiAddr: 0x4000_1230n });
    expect(m[0]).toBe(0x0fc0_1046);
    expect(m[2]).toBe(0x4000_1230);
  });

  it('places TLBI range fields per §4.3/§4.5', () => {
    const w = encodeSmmuCommand({
      op: 'TLBI_NH_VA',
      vmid: 3,
      asid: 0x1234,
      num: 7,
      scale: 2,
      leaf: true,
      ttl: 3,
      tg: 1,
      addr: 0xffff_0000_1234_5000n,
    });
    expect(w[0]).toBe((0x12 | (7 << 12) | (2 << 20)) >>> 0);
    expect(w[1]).toBe((3 | (0x1234 << 16)) >>> 0);
    expect(w[2]).toBe((0x1234_5000 | 1 | (3 << 8) | (1 << 10)) >>> 0);
    expect(w[3]).toBe(0xffff_0000);
    expect(
      dec({
        op: 'TLBI_NH_VA',
        vmid: 3,
        asid: 0x1234,
        num: 7,
        scale: 2,
        leaf: true,
        ttl: 3,
        tg: 1,
        addr: 0xffff_0000_1234_5000n,
      }),
    ).toEqual({
      opcode: 0x12,
      op: 'TLBI_NH_VA',
      vmid: 3,
      asid: 0x1234,
      num: 7,
      scale: 2,
      leaf: true,
      ttl: 3,
      tg: 1,
      addr: 0xffff_0000_1234_5000n,
    });
  });

  it('round-trips every command', () => {
    expect(dec({ op: 'CFGI_STE', sid: 0x10001, leaf: true })).toEqual({
      opcode: 3,
      op: 'CFGI_STE',
      sid: 0x10001,
      leaf: true,
    });
    expect(dec({ op: 'CFGI_STE_RANGE', sid: 0, range: 31 })).toEqual({
      opcode: 4,
      op: 'CFGI_STE_RANGE',
      sid: 0,
      range: 31,
    });
    expect(dec({ op: 'CFGI_CD', sid: 9, ssid: 0xfffff, leaf: false })).toEqual({
      opcode: 5,
      op: 'CFGI_CD',
      sid: 9,
      ssid: 0xfffff,
      leaf: false,
    });
    expect(dec({ op: 'CFGI_CD_ALL', sid: 9 })).toEqual({ opcode: 6, op: 'CFGI_CD_ALL', sid: 9 });
    expect(dec({ op: 'ATC_INV', sid: 0x100, ssv: true, ssid: 4, size: 52, addr: 0n })).toEqual({
      opcode: 0x40,
      op: 'ATC_INV',
      sid: 0x100,
      ssv: true,
      ssid: 4,
      global: false,
      size: 52,
      addr: 0n,
    });
    expect(dec({ op: 'PRI_RESP', sid: 0x100, ssv: true, ssid: 4, prgIndex: 0x1ff, resp: 2 })).toEqual({
      opcode: 0x41,
      op: 'PRI_RESP',
      sid: 0x100,
      ssv: true,
      ssid: 4,
      prgIndex: 0x1ff,
      resp: 2,
    });
    expect(dec({ op: 'RESUME', sid: 5, resp: 1, stag: 0xfffe })).toEqual({
      opcode: 0x44,
      op: 'RESUME',
      sid: 5,
      resp: 1,
      stag: 0xfffe,
    });
    expect(dec({ op: 'STALL_TERM', sid: 5 })).toEqual({ opcode: 0x45, op: 'STALL_TERM', sid: 5 });
    expect(dec({ op: 'TLBI_S2_IPA', vmid: 2, addr: 0xf_ffff_ffff_f000n, tg: 0 })).toMatchObject({
      op: 'TLBI_S2_IPA',
      vmid: 2,
      addr: 0xf_ffff_ffff_f000n,
    });
    expect(dec({ op: 'TLBI_NH_ASID', vmid: 1, asid: 0xffff })).toEqual({
      opcode: 0x11,
      op: 'TLBI_NH_ASID',
      vmid: 1,
      asid: 0xffff,
    });
    expect(dec({ op: 'PREFETCH_ADDR', sid: 1, size: 3, addr: 0x5000n })).toMatchObject({
      size: 3,
      addr: 0x5000n,
    });
    for (const op of Object.keys(CMDQ_OP) as (keyof typeof CMDQ_OP)[]) expect(dec({ op })?.op).toBe(op);
  });

  it('rejects undefined opcodes and illegal commands', () => {
    expect(decodeSmmuCommand(0x07, 0, 0, 0)).toBeUndefined();
    expect(decodeSmmuCommand(0xff, 0, 0, 0)).toBeUndefined();
    const full = resolveSmmuHwConfig();
    const s1only = resolveSmmuHwConfig({
      stage2: false,
      ats: false,
      pri: false,
      stallModel: 'terminate',
      stallMax: 0,
    });
    const ill = (c: SmmuCommandInit, cfg = full) => {
      const w = encodeSmmuCommand(c);
      const d = decodeSmmuCommand(w[0] as number, w[1] as number, w[2] as number, w[3] as number);
      return d === undefined ? 'undefined' : smmuCommandIllegal(d, cfg, w[0]);
    };
    expect(ill({ op: 'TLBI_S12_VMALL', vmid: 1 }, s1only)).toBe('stage 2 not implemented');
    expect(ill({ op: 'TLBI_S12_VMALL', vmid: 1 })).toBeUndefined();
    expect(ill({ op: 'ATC_INV' }, s1only)).toBe('ATS not implemented');
    expect(ill({ op: 'PRI_RESP', resp: 3 })).toBe('reserved PRI response code');
    expect(ill({ op: 'RESUME' }, s1only)).toBe('stalls not implemented');
    expect(ill({ op: 'TLBI_EL2_ALL' })).toBe('EL2 not implemented (IDR0.HYP = 0)');
    expect(ill({ op: 'TLBI_EL2_ALL' }, resolveSmmuHwConfig({ hyp: true }))).toBeUndefined();
    expect(ill({ op: 'CMD_SYNC', cs: 3 })).toBe('reserved CS value');
    expect(ill({ op: 'TLBI_EL3_ALL' })).toBe('EL3 invalidation on the Non-secure command queue');
    const w = encodeSmmuCommand({ op: 'CFGI_STE', sid: 1 });
    const d = decodeSmmuCommand((w[0] as number) | (1 << 10), w[1] as number, w[2] as number, w[3] as number);
    expect(d && smmuCommandIllegal(d, full, (w[0] as number) | (1 << 10))).toBe(
      'SSec set on the Non-secure command queue',
    );
  });
});
