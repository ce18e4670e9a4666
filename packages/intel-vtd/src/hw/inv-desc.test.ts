import { describe, expect, it } from 'vitest';
import { decodeVtdInvDesc, encodeVtdInvDesc, type VtdInvDesc } from './inv-desc.js';
import { VTD_IQEI } from './regs.js';

const CAPS = { mamv: 18, pds: true };

const SAMPLES: VtdInvDesc[] = [
  { type: 'context-cache', granularity: 'device', did: 0x1234, sid: 0x0210, fm: 3 },
  { type: 'iotlb', granularity: 'page', did: 7, dr: true, dw: true, addr: 0x1234_5000n, am: 4, ih: true },
  { type: 'device-tlb', sid: 0x0300, pfsid: 0x0abc, mip: 31, addr: 0x7fff_ffff_ffff_f000n, s: true },
  { type: 'iec', global: false, im: 3, iidx: 0x40 },
  { type: 'wait', if: true, sw: true, fn: true, pd: true, statusData: 0xdead_beef, statusAddr: 0x1000_0004n },
  { type: 'pasid-iotlb', granularity: 'page', did: 9, pasid: 0xfffff, addr: 0x40_0000n, am: 9, ih: false },
  { type: 'pasid-cache', granularity: 'pasid', did: 9, pasid: 0x12345 },
  {
    type: 'pasid-device-tlb',
    sid: 0x0010,
    pfsid: 0x0008,
    mip: 4,
    pasid: 0x10,
    global: true,
    addr: 0x20_1000n,
    s: true,
  },
  {
    type: 'page-group-response',
    rid: 0x0010,
    pasidPresent: true,
    pasid: 7,
    code: 1,
    prgIndex: 0x1ff,
    lpig: true,
  },
];

describe('invalidation descriptors', () => {
  it.each(SAMPLES.map((d) => [d.type, d] as const))('round-trips %s through a 256-bit queue', (_t, d) => {
    expect(decodeVtdInvDesc(encodeVtdInvDesc(d, true), CAPS)).toEqual(d);
  });

  it('matches the words Linux builds', () => {
    // qi_flush_context(iommu, did 1, sid 0x10, fm 0, DMA_CCMD_DEVICE_INVL)
    expect(
      encodeVtdInvDesc({ type: 'context-cache', granularity: 'device', did: 1, sid: 0x10, fm: 0 }),
    ).toEqual([0x0000_0010_0001_0031n, 0n]);
    // qi_flush_iotlb PSI with DW/DR: type 2 | G=3 | DW | DR | DID 5, qw1 = addr | IH | AM
    expect(
      encodeVtdInvDesc({
        type: 'iotlb',
        granularity: 'page',
        did: 5,
        dr: true,
        dw: true,
        addr: 0x8000n,
        am: 1,
        ih: false,
      }),
    ).toEqual([0x0005_00f2n, 0x8001n]);
    // QI_PC_TYPE | PASID-selective | DID 2 | PASID 3
    expect(encodeVtdInvDesc({ type: 'pasid-cache', granularity: 'pasid', did: 2, pasid: 3 }, true)).toEqual([
      0x0000_0003_0002_0017n,
      0n,
      0n,
      0n,
    ]);
  });

  it('decodes what a 128-bit queue may hold and rejects the wide types there', () => {
    expect(decodeVtdInvDesc([0x0000_0002_0000_0025n, 0x1000n], CAPS)).toEqual({
      type: 'wait',
      if: false,
      sw: true,
      fn: false,
      pd: false,
      statusData: 2,
      statusAddr: 0x1000n,
    });
    expect(decodeVtdInvDesc([0x17n, 0n], CAPS)).toMatchObject({ type: 'error', iqei: VTD_IQEI.TYPE });
  });

  it.each<[string, bigint[], number]>([
    ['type 0', [0n, 0n], VTD_IQEI.TYPE],
    ['type 0xa (page stream response)', [0xan, 0n, 0n, 0n], VTD_IQEI.TYPE],
    ['type bits 11:9', [0x201n | 0x10n, 0n], VTD_IQEI.TYPE],
    ['context-cache qw1', [0x11n, 1n], VTD_IQEI.RESERVED],
    ['128-bit type with qw2 set', [0x11n, 0n, 1n, 0n], VTD_IQEI.RESERVED],
    ['IOTLB G=0', [0x02n, 0n], VTD_IQEI.RESERVED],
    ['IOTLB AM > MAMV', [0x32n, 19n], VTD_IQEI.RESERVED],
    ['IOTLB reserved qw1 bit 7', [0x12n, 0x80n], VTD_IQEI.RESERVED],
    ['wait qw1 bit 0', [0x25n, 1n], VTD_IQEI.RESERVED],
    ['PASID-IOTLB G=1', [0x16n, 0n, 0n, 0n], VTD_IQEI.RESERVED],
    ['PASID-cache G=2', [0x27n, 0n, 0n, 0n], VTD_IQEI.RESERVED],
    ['PASID-cache qw1', [0x37n, 1n, 0n, 0n], VTD_IQEI.RESERVED],
    ['page group response code 2', [0x2009n, 0n, 0n, 0n], VTD_IQEI.RESERVED],
  ])('rejects %s', (_n, words, iqei) => {
    expect(decodeVtdInvDesc(words, CAPS)).toMatchObject({ type: 'error', iqei });
  });

  it('treats the wait PD bit as reserved without ECAP.PDS', () => {
    expect(decodeVtdInvDesc([0xa5n, 0n], { mamv: 18, pds: false })).toMatchObject({ type: 'error' });
    expect(decodeVtdInvDesc([0xa5n, 0n], CAPS)).toMatchObject({ type: 'wait', pd: true });
  });
});
