import { ErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import {
  resolveVtdHwConfig,
  VTD_HW_CONFIG_DEFAULTS,
  type VtdHwConfig,
  vtdCapEcap,
  vtdDomainCount,
  vtdMmioSize,
} from './vtd-config.js';

/** A QEMU-like unit (aw-bits=48, device-iotlb=on, pt=on, no scalable mode, no IR). */
const QEMU_LIKE: Partial<VtdHwConfig> = {
  sagaw: [3, 4],
  mgaw: 48,
  numFaultRecords: 1,
  fl1gp: false,
  fl5lp: false,
  coherent: false,
  sc: false,
  nest: false,
  prs: false,
  ers: false,
  srs: false,
  nwfs: false,
  pasidBits: 1,
  pasid: false,
  pds: false,
  smts: false,
  slads: false,
  slts: false,
  flts: false,
  smpwc: false,
  rps: false,
};

describe('vtdCapEcap', () => {
  it('encodes a QEMU-like unit to the CAP/ECAP values QEMU computes', () => {
    const { cap, ecap } = vtdCapEcap(resolveVtdHwConfig(QEMU_LIKE));
    // FRO 0x22, NFR 0, ND 6, MAMV 18, PSI, SLLPS 2M+1G, MGAW 47, SAGAW 39+48, DRD, DWD.
    expect(cap).toBe(0x00d2_008c_222f_0606n);
    // QI, DT, PT, IRO 0xF.
    expect(ecap).toBe(0xf46n);
  });

  it('places every default field', () => {
    const { cap, ecap } = vtdCapEcap(VTD_HW_CONFIG_DEFAULTS);
    const capF = (lo: number, w: number) => Number((cap >> BigInt(lo)) & ((1n << BigInt(w)) - 1n));
    const ecapF = (lo: number, w: number) => Number((ecap >> BigInt(lo)) & ((1n << BigInt(w)) - 1n));
    expect(capF(0, 3)).toBe(6);
    expect(capF(8, 5)).toBe(0b01110);
    expect(capF(16, 6)).toBe(56);
    expect(capF(24, 10)).toBe(0x22);
    expect(capF(34, 4)).toBe(3);
    expect(capF(40, 8)).toBe(7);
    expect(capF(48, 6)).toBe(18);
    expect(capF(56, 1)).toBe(1);
    expect(capF(60, 1)).toBe(1);
    expect(ecapF(1, 1)).toBe(1); // QI
    expect(ecapF(2, 1)).toBe(1); // DT
    expect(ecapF(8, 10)).toBe(0x0f); // IRO
    expect(ecapF(26, 1)).toBe(1); // NEST
    expect(ecapF(29, 3)).toBe(7); // PRS ERS SRS
    expect(ecapF(35, 5)).toBe(19); // PSS
    expect(ecapF(40, 1)).toBe(1); // PASID
    expect(ecapF(43, 1)).toBe(1); // SMTS
    expect(ecapF(45, 4)).toBe(0b1111); // SLADS SLTS FLTS SMPWC
    expect(ecapF(49, 1)).toBe(1); // RPS
  });
});

describe('resolveVtdHwConfig', () => {
  it('derives the domain count and the MMIO size', () => {
    expect(vtdDomainCount({ nd: 0 })).toBe(16);
    expect(vtdDomainCount({ nd: 6 })).toBe(65536);
    expect(vtdMmioSize({ iro: 0x0f, fro: 0x22, numFaultRecords: 1 })).toBe(0x1000);
    expect(vtdMmioSize({ iro: 0x0f, fro: 0x22, numFaultRecords: 256 })).toBe(0x2000);
  });

  it.each<[string, Partial<VtdHwConfig>]>([
    ['nd 7', { nd: 7 }],
    ['empty sagaw', { sagaw: [] }],
    ['1G without 2M', { sl2MPages: false }],
    ['0 fault records', { numFaultRecords: 0 }],
    ['257 fault records', { numFaultRecords: 257 }],
    ['PASID without scalable mode', { smts: false }],
    ['PRS without QI', { qi: false }],
    ['nest without first level', { flts: false }],
    ['IOTLB over the fault records', { iro: 0x22 }],
    ['fault records in the register file', { fro: 0x08 }],
    ['pasidBits 21', { pasidBits: 21 }],
  ])('rejects %s with EINVAL', (_n, o) => {
    let err: unknown;
    try {
      resolveVtdHwConfig(o);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ErrnoError);
    expect((err as ErrnoError).code).toBe('EINVAL');
  });

  it('returns a frozen config', () => {
    const c = resolveVtdHwConfig({ nd: 2 });
    expect(Object.isFrozen(c)).toBe(true);
    expect(c.nd).toBe(2);
    expect(c.sagaw).toEqual([3, 4, 5]);
  });
});
