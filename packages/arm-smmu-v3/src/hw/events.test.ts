import { describe, expect, it } from 'vitest';
import {
  decodeSmmuEvent,
  encodeSmmuEvent,
  SMMU_EVENT_CODE,
  type SmmuEventType,
  smmuEvent,
  smmuEventTypeName,
} from './events.js';

describe('SMMU event records', () => {
  it('has the digest codes', () => {
    expect(SMMU_EVENT_CODE.F_TRANSLATION).toBe(0x10);
    expect(SMMU_EVENT_CODE.C_BAD_CD).toBe(0x0a);
    expect(SMMU_EVENT_CODE.F_VMS_FETCH).toBe(0x25);
    expect(smmuEventTypeName(0x24)).toBe('E_PAGE_REQUEST');
    expect(smmuEventTypeName(0x0c)).toBeUndefined();
  });

  it('encodes a stalled permission fault at the §5.3 positions', () => {
    const ev = smmuEvent('F_PERMISSION', 0x1234, {
      ssv: true,
      ssid: 0xabcde,
      stall: true,
      stag: 0xbeef,
      pnu: true,
      ind: false,
      rnw: false,
      s2: true,
      class: 1,
      ttrnw: true,
      inputAddr: 0xffff_8000_1234_5678n,
      ipa: 0x8_7654_3000n,
    });
    const w = encodeSmmuEvent(ev);
    expect([...w]).toEqual([
      (0x13 | (1 << 11) | (0xabcde << 12)) >>> 0,
      0x1234,
      (0xbeef | 0x8000_0000) >>> 0,
      (1 << 1) | (1 << 7) | (1 << 8) | (1 << 12),
      0x1234_5678,
      0xffff_8000,
      0x7654_3000,
      0x8,
    ]);
    expect(decodeSmmuEvent(w)).toEqual(ev);
  });

  it('puts fetch addresses in DW3 bits 51:3 for fetch aborts', () => {
    const ev = smmuEvent('F_STE_FETCH', 7, { fetchAddr: 0x4000_0048n });
    const w = encodeSmmuEvent(ev);
    expect(w[6]).toBe(0x4000_0048);
    expect(decodeSmmuEvent(w).fetchAddr).toBe(0x4000_0048n);
    expect(decodeSmmuEvent(w).ipa).toBe(0n);
    // low bits below 12 of an IPA are dropped
    const t = decodeSmmuEvent(
      encodeSmmuEvent(smmuEvent('F_TRANSLATION', 1, { ipa: 0x1234_5fffn, rnw: true })),
    );
    expect(t.ipa).toBe(0x1234_5000n);
    expect(t.rnw).toBe(true);
  });

  it('round-trips every event type', () => {
    for (const type of Object.keys(SMMU_EVENT_CODE) as SmmuEventType[]) {
      const ev = smmuEvent(type, 0xffff_ffff, { ssv: true, ssid: 5, inputAddr: 0x1000n, ind: true });
      const d = decodeSmmuEvent(encodeSmmuEvent(ev));
      expect(d.type).toBe(type);
      expect(d.sid).toBe(0xffff_ffff);
      expect(d.ind).toBe(true);
      expect(d.inputAddr).toBe(0x1000n);
    }
  });

  it('rejects short records and unknown types', () => {
    expect(() => decodeSmmuEvent([1, 2, 3])).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => decodeSmmuEvent([0x0c, 0, 0, 0, 0, 0, 0, 0])).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});
