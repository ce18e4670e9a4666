import { describe, expect, it } from 'vitest';
import {
  decodeVtdFrcd,
  encodeVtdFrcd,
  VTD_FR,
  VTD_QUALIFIED_FAULTS,
  type VtdFault,
  vtdDmaFaultReason,
  vtdFaultIsRecorded,
  vtdFaultReasonName,
} from './vtd-fault.js';

const F: VtdFault = {
  reason: VTD_FR.READ,
  sourceId: 0x0210,
  addr: 0x7f2e_5123n,
  write: false,
  pasidPresent: true,
  pasid: 0xabcde,
  exec: true,
  privileged: false,
  addressType: 2,
};

describe('FRCD encoding', () => {
  it('lays the fields out as Linux reads them (dword2 PP|SID, dword3 F|T|PV|FR)', () => {
    const { lo, hi } = encodeVtdFrcd(F);
    expect(lo).toBe(0x7f2e_5000n);
    const dword2 = Number(hi & 0xffff_ffffn);
    const dword3 = Number(hi >> 32n);
    expect(dword2).toBe((0x8000_0000 | 0x4000_0000 | 0x0210) >>> 0);
    // F (31), T=1 read (30), AT=2 (29:28), PV (27:8), FR (7:0)
    expect(dword3).toBe((0x8000_0000 | 0x4000_0000 | (2 << 28) | (0xabcde << 8) | 0x06) >>> 0);
  });

  it('encodes a write without PASID with T=0 and PV=0', () => {
    const { hi } = encodeVtdFrcd({
      ...F,
      write: true,
      pasidPresent: false,
      pasid: 7,
      exec: false,
      addressType: 0,
    });
    expect(hi).toBe((0x8000_0006n << 32n) | 0x0210n);
  });

  it('round-trips through decode', () => {
    const d = decodeVtdFrcd(encodeVtdFrcd(F));
    expect(d).toEqual({ ...F, addr: 0x7f2e_5000n, pending: true });
  });
});

describe('fault reasons', () => {
  it('names codes and leaves unnamed codes undefined', () => {
    expect(vtdFaultReasonName(0x06)).toBe('READ');
    expect(vtdFaultReasonName(0x59)).toBe('SM_PASID_ENTRY_P');
    expect(vtdFaultReasonName(0x33)).toBeUndefined();
  });

  it('suppresses only qualified reasons under FPD', () => {
    expect(VTD_QUALIFIED_FAULTS.has(0x01)).toBe(false);
    expect(VTD_QUALIFIED_FAULTS.has(0x0b)).toBe(false);
    expect(VTD_QUALIFIED_FAULTS.has(0x50)).toBe(false);
    expect(vtdFaultIsRecorded({ reason: 0x06, fpd: true })).toBe(false);
    expect(vtdFaultIsRecorded({ reason: 0x06 })).toBe(true);
    expect(vtdFaultIsRecorded({ reason: 0x01, fpd: true })).toBe(true);
    expect(vtdFaultIsRecorded({ reason: 0x58, fpd: true })).toBe(true);
  });

  it('maps reasons to the DMA fault a device sees', () => {
    expect(vtdDmaFaultReason(0x01)).toBe('bad-requester');
    expect(vtdDmaFaultReason(0x05)).toBe('permission');
    expect(vtdDmaFaultReason(0x04)).toBe('address-size');
    expect(vtdDmaFaultReason(0x0d)).toBe('ats-not-allowed');
    expect(vtdDmaFaultReason(0x59)).toBe('bad-pasid');
    expect(vtdDmaFaultReason(0x0c)).toBe('config');
    expect(vtdDmaFaultReason(0x71)).toBe('translation');
  });
});
