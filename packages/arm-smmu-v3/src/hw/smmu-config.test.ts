import { describe, expect, it } from 'vitest';
import {
  resolveSmmuHwConfig,
  SMMU_HW_CONFIG_DEFAULTS,
  smmuIas,
  smmuIdrs,
  smmuOasDecode,
  smmuOasEncode,
} from './smmu-config.js';

describe('SmmuHwConfig', () => {
  it('computes the ID registers of the defaults bit by bit', () => {
    const i = smmuIdrs(SMMU_HW_CONFIG_DEFAULTS);
    // S2P|S1P|TTF=2|COHACC|HTTU=2|ATS|ASID16|MSI|SEV|PRI|VMID16|CD2L|TTENDIAN=2|STALL=0|TERM=1|ST_LEVEL=1
    const idr0 =
      1 |
      2 |
      (2 << 2) |
      (1 << 4) |
      (2 << 6) |
      (1 << 10) |
      (1 << 12) |
      (1 << 13) |
      (1 << 14) |
      (1 << 16) |
      (1 << 18) |
      (1 << 19) |
      (2 << 21) |
      (1 << 26) |
      (1 << 27);
    expect(i.idr0).toBe(idr0 >>> 0);
    expect(i.idr1).toBe((16 | (20 << 6) | (19 << 11) | (19 << 16) | (19 << 21)) >>> 0);
    expect(i.idr3).toBe((1 << 2) | (1 << 4) | (1 << 10) | (2 << 11));
    expect(i.idr5).toBe((5 | (1 << 4) | (1 << 5) | (1 << 6) | (64 << 16)) >>> 0);
    expect(i.iidr).toBe(0x4830_043b);
    expect(i.aidr).toBe(1);
  });

  it('encodes a QEMU-like configuration as QEMU reports it', () => {
    const c = resolveSmmuHwConfig({
      stage2: false,
      httu: 'none',
      ats: false,
      msi: false,
      sev: false,
      pri: false,
      priqLog2: 0,
      twoLevelCdTable: false,
      stallModel: 'terminate',
      stallMax: 0,
      ssidBits: 0,
      oas: 44,
      had: true,
    });
    const i = smmuIdrs(c);
    expect(i.idr0).toBe(
      (2 | (2 << 2) | (1 << 4) | (1 << 12) | (1 << 18) | (2 << 21) | (1 << 24) | (1 << 26) | (1 << 27)) >>> 0,
    );
    expect(i.idr1).toBe((16 | (19 << 16) | (19 << 21)) >>> 0);
    expect(i.idr3).toBe((1 << 2) | (1 << 10) | (2 << 11));
    expect(i.idr5 & 7).toBe(4);
  });

  it('encodes stall models and HTTU levels', () => {
    expect((smmuIdrs(resolveSmmuHwConfig({ stallModel: 'forced' })).idr0 >>> 24) & 3).toBe(2);
    expect((smmuIdrs(resolveSmmuHwConfig({ httu: 'ha' })).idr0 >>> 6) & 3).toBe(1);
    expect((smmuIdrs(resolveSmmuHwConfig({ hyp: true, btm: true })).idr0 >>> 5) & 0x1f).toBe(0b10101);
    expect((smmuIdrs(resolveSmmuHwConfig({ vax: true })).idr5 >>> 10) & 3).toBe(1);
    expect(smmuIas({ vax: true })).toBe(52);
    expect(smmuIas({ vax: false })).toBe(48);
  });

  it('maps OAS encodings both ways', () => {
    expect([32, 36, 40, 42, 44, 48, 52].map(smmuOasEncode)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(smmuOasDecode(5)).toBe(48);
    expect(smmuOasDecode(7)).toBe(52);
    expect(() => smmuOasEncode(46)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('rejects impossible configurations with EINVAL', () => {
    for (const bad of [
      { stage1: false, stage2: false },
      { granule4k: false, granule16k: false, granule64k: false },
      { sidBits: 33 },
      { ssidBits: 21 },
      { cmdqLog2: 20 },
      { oas: 46 as 48 },
      { stallModel: 'terminate' as const, stallMax: 4 },
      { tlbCapacity: 0 },
    ])
      expect(() => resolveSmmuHwConfig(bad)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(Object.isFrozen(resolveSmmuHwConfig())).toBe(true);
  });
});
