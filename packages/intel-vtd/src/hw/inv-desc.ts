/**
 * Invalidation descriptors (digest §4.1–§4.10): decoded forms, the decoder with the reserved-field
 * and type checks hardware applies, and an encoder for tests and tools.
 *
 * @remarks
 * Type = qw0 bits 3:0 plus bits 11:9 as type bits 6:4. In a 256-bit queue every descriptor is 32
 * bytes and the 128-bit types must have qw2 = qw3 = 0; the PASID-based types (6 … 9) exist only in
 * a 256-bit queue. Reserved masks are the spec's field layout (close to QEMU's
 * `VTD_INV_DESC_*_RSVD` masks, but PFSID of device-TLB descriptors and the wait descriptor's PD
 * bit are fields, not reserved, here; PD is reserved without ECAP.PDS). The page group response's
 * LPIG (qw1 bit 2) is accepted and ignored (programmed by Linux before 2025, reserved since spec
 * 4.0) and its private data words are not checked.
 */

import { VTD_IQEI } from './regs.js';

/** Context-cache invalidate (type 1). */
export interface VtdCcInvDesc {
  /** Discriminant. */
  readonly type: 'context-cache';
  /** G: 1 global, 2 domain-selective (DID), 3 device-selective (DID + SID + FM). */
  readonly granularity: 'global' | 'domain' | 'device';
  /** DID (16 bits). */
  readonly did: number;
  /** Source-id (16 bits). */
  readonly sid: number;
  /** Function mask: 0 none, 1 … 3 mask SID bit 2, bits 2:1, bits 2:0. */
  readonly fm: number;
}

/** IOTLB invalidate (type 2). */
export interface VtdIotlbInvDesc {
  /** Discriminant. */
  readonly type: 'iotlb';
  /** G: 1 global, 2 domain-selective, 3 page-selective within the domain. */
  readonly granularity: 'global' | 'domain' | 'page';
  /** DID. */
  readonly did: number;
  /** DR: drain reads. */
  readonly dr: boolean;
  /** DW: drain writes. */
  readonly dw: boolean;
  /** ADDR (bits 63:12; page-selective only). u64. */
  readonly addr: bigint;
  /** AM: 2^AM pages. */
  readonly am: number;
  /** IH: invalidation hint (only leaves changed). */
  readonly ih: boolean;
}

/** Device-TLB invalidate (type 3). */
export interface VtdDevTlbInvDesc {
  /** Discriminant. */
  readonly type: 'device-tlb';
  /** SID of the endpoint. */
  readonly sid: number;
  /** PFSID (physical function SID, meaningful with ECAP.DIT). */
  readonly pfsid: number;
  /** MIP: the endpoint's invalidate queue depth. */
  readonly mip: number;
  /** Encoded address (ATS wire form). u64. */
  readonly addr: bigint;
  /** S: size bit (ATS encoding in the low-order one bits of ADDR). */
  readonly s: boolean;
}

/** Interrupt entry cache invalidate (type 4). */
export interface VtdIecInvDesc {
  /** Discriminant. */
  readonly type: 'iec';
  /** G = 0: global; G = 1: index-selective. */
  readonly global: boolean;
  /** IM: 2^IM entries. */
  readonly im: number;
  /** IIDX: first interrupt index. */
  readonly iidx: number;
}

/** Invalidation wait (type 5). */
export interface VtdWaitInvDesc {
  /** Discriminant. */
  readonly type: 'wait';
  /** IF: set ICS.IWC and raise the invalidation completion event. */
  readonly if: boolean;
  /** SW: write {@link VtdWaitInvDesc.statusData} to {@link VtdWaitInvDesc.statusAddr}. */
  readonly sw: boolean;
  /** FN: fence. */
  readonly fn: boolean;
  /** PD: page-request drain. */
  readonly pd: boolean;
  /** Status data (32 bits). */
  readonly statusData: number;
  /** Status address (dword aligned). u64. */
  readonly statusAddr: bigint;
}

/** PASID-based IOTLB invalidate (type 6). */
export interface VtdPasidIotlbInvDesc {
  /** Discriminant. */
  readonly type: 'pasid-iotlb';
  /** G: 2 all mappings of the PASID in DID, 3 page-selective within the PASID. */
  readonly granularity: 'pasid' | 'page';
  /** DID. */
  readonly did: number;
  /** PASID (20 bits). */
  readonly pasid: number;
  /** ADDR. u64. */
  readonly addr: bigint;
  /** AM. */
  readonly am: number;
  /** IH. */
  readonly ih: boolean;
}

/** PASID-cache invalidate (type 7). */
export interface VtdPasidCacheInvDesc {
  /** Discriminant. */
  readonly type: 'pasid-cache';
  /** G: 0 domain-selective, 1 PASID-selective within DID, 3 global. */
  readonly granularity: 'domain' | 'pasid' | 'global';
  /** DID. */
  readonly did: number;
  /** PASID. */
  readonly pasid: number;
}

/** PASID-based device-TLB invalidate (type 8). */
export interface VtdPasidDevTlbInvDesc {
  /** Discriminant. */
  readonly type: 'pasid-device-tlb';
  /** SID of the endpoint. */
  readonly sid: number;
  /** PFSID. */
  readonly pfsid: number;
  /** MIP. */
  readonly mip: number;
  /** PASID. */
  readonly pasid: number;
  /** G: all PASIDs of the device. */
  readonly global: boolean;
  /** Encoded address. u64. */
  readonly addr: bigint;
  /** S. */
  readonly s: boolean;
}

/** Page group response (type 9). */
export interface VtdPageGroupRespDesc {
  /** Discriminant. */
  readonly type: 'page-group-response';
  /** RID of the device answered. */
  readonly rid: number;
  /** PASID present. */
  readonly pasidPresent: boolean;
  /** PASID. */
  readonly pasid: number;
  /** Response code (0 success, 1 invalid request, 0xF response failure; others are rejected). */
  readonly code: number;
  /** PRG index (9 bits). */
  readonly prgIndex: number;
  /** LPIG as written (ignored). */
  readonly lpig: boolean;
}

/** Any decoded invalidation descriptor. */
export type VtdInvDesc =
  | VtdCcInvDesc
  | VtdIotlbInvDesc
  | VtdDevTlbInvDesc
  | VtdIecInvDesc
  | VtdWaitInvDesc
  | VtdPasidIotlbInvDesc
  | VtdPasidCacheInvDesc
  | VtdPasidDevTlbInvDesc
  | VtdPageGroupRespDesc;

/** Descriptor type codes, by decoded `type`. */
export const VTD_INV_DESC_TYPE = Object.freeze({
  'context-cache': 1,
  iotlb: 2,
  'device-tlb': 3,
  iec: 4,
  wait: 5,
  'pasid-iotlb': 6,
  'pasid-cache': 7,
  'pasid-device-tlb': 8,
  'page-group-response': 9,
} as const);

/** A descriptor the hardware rejects: the IQER.IQEI value to report. */
export interface VtdInvDescError {
  /** Discriminant. */
  readonly type: 'error';
  /** IQEI (see {@link VTD_IQEI}). */
  readonly iqei: number;
  /** Explanation for logs and tests. */
  readonly detail: string;
}

/** What the decoder needs from the unit's capabilities. */
export interface VtdInvDescCaps {
  /** CAP.MAMV. */
  readonly mamv: number;
  /** ECAP.PDS. */
  readonly pds: boolean;
}

const M32 = 0xffff_ffffn;
const lo32 = (q: bigint): number => Number(q & M32);
const hi32 = (q: bigint): number => Number((q >> 32n) & M32);

function bad(iqei: number, detail: string): VtdInvDescError {
  return { type: 'error', iqei, detail };
}

/** Reserved bits of qw0/qw1 per type (index = type). */
const RSVD0: readonly bigint[] = [
  0n,
  0xfffc_0000_0000_f1c0n,
  0xffff_ffff_0000_f100n,
  0x000f_0000_ffe0_01f0n,
  0xffff_0000_07ff_f1e0n,
  0x0000_0000_ffff_f100n,
  0xfff0_0000_0000_f1c0n,
  0xfff0_0000_0000_f1c0n,
  0n,
  0xfff0_0000_0000_01c0n,
];
const RSVD1: readonly bigint[] = [
  0n,
  0xffff_ffff_ffff_ffffn,
  0xf80n,
  0xffen,
  0xffff_ffff_ffff_ffffn,
  3n,
  0xf80n,
  0xffff_ffff_ffff_ffffn,
  0x7fen,
  0xffff_ffff_ffff_f003n,
];

/**
 * Decode one descriptor as the hardware fetches it.
 * @param qw - its 64-bit words: 2 (128-bit queue) or 4 (256-bit queue)
 * @param caps - MAMV and PDS of the unit
 * @returns the descriptor, or an error carrying the IQEI to report (3: invalid type, 4: reserved
 *   field set or reserved granularity or AM above MAMV)
 */
export function decodeVtdInvDesc(qw: readonly bigint[], caps: VtdInvDescCaps): VtdInvDesc | VtdInvDescError {
  const q0 = qw[0] ?? 0n;
  const q1 = qw[1] ?? 0n;
  const wide = qw.length >= 4;
  const w0 = lo32(q0);
  const type = (w0 & 0xf) | (((w0 >>> 9) & 7) << 4);
  if (type < 1 || type > 9) return bad(VTD_IQEI.TYPE, `invalid descriptor type 0x${type.toString(16)}`);
  if (type >= 6 && !wide) return bad(VTD_IQEI.TYPE, `descriptor type ${type} needs a 256-bit queue`);
  let r0 = RSVD0[type] as bigint;
  if (type === 5 && !caps.pds) r0 |= 0x80n;
  if ((q0 & r0) !== 0n || (q1 & (RSVD1[type] as bigint)) !== 0n)
    return bad(VTD_IQEI.RESERVED, `reserved field set in descriptor type ${type}`);
  if (wide && type < 6 && ((qw[2] ?? 0n) !== 0n || (qw[3] ?? 0n) !== 0n))
    return bad(VTD_IQEI.RESERVED, `upper half of 128-bit descriptor type ${type} not zero`);
  if (wide && (type === 6 || type === 8) && ((qw[2] ?? 0n) !== 0n || (qw[3] ?? 0n) !== 0n))
    return bad(VTD_IQEI.RESERVED, `reserved qw2/qw3 set in descriptor type ${type}`);
  if (wide && type === 7 && ((qw[2] ?? 0n) !== 0n || (qw[3] ?? 0n) !== 0n || q1 !== 0n))
    return bad(VTD_IQEI.RESERVED, 'reserved qw1-qw3 set in PASID-cache descriptor');
  const g = (w0 >>> 4) & 3;
  const did = (w0 >>> 16) & 0xffff;
  const h0 = hi32(q0);
  switch (type) {
    case 1: {
      if (g === 0) return bad(VTD_IQEI.RESERVED, 'context-cache descriptor with granularity 0');
      return {
        type: 'context-cache',
        granularity: g === 1 ? 'global' : g === 2 ? 'domain' : 'device',
        did,
        sid: h0 & 0xffff,
        fm: (h0 >>> 16) & 3,
      };
    }
    case 2: {
      if (g === 0) return bad(VTD_IQEI.RESERVED, 'IOTLB descriptor with granularity 0');
      const am = lo32(q1) & 0x3f;
      if (g === 3 && am > caps.mamv) return bad(VTD_IQEI.RESERVED, `IOTLB descriptor AM ${am} above MAMV`);
      return {
        type: 'iotlb',
        granularity: g === 1 ? 'global' : g === 2 ? 'domain' : 'page',
        did,
        dw: (w0 & 0x40) !== 0,
        dr: (w0 & 0x80) !== 0,
        addr: q1 & ~0xfffn,
        am,
        ih: (q1 & 0x40n) !== 0n,
      };
    }
    case 3:
      return {
        type: 'device-tlb',
        sid: h0 & 0xffff,
        pfsid: ((w0 >>> 12) & 0xf) | ((h0 >>> 20) << 4),
        mip: (w0 >>> 16) & 0x1f,
        addr: q1 & ~0xfffn,
        s: (q1 & 1n) !== 0n,
      };
    case 4:
      return { type: 'iec', global: (w0 & 0x10) === 0, im: (w0 >>> 27) & 0x1f, iidx: h0 & 0xffff };
    case 5:
      return {
        type: 'wait',
        if: (w0 & 0x10) !== 0,
        sw: (w0 & 0x20) !== 0,
        fn: (w0 & 0x40) !== 0,
        pd: (w0 & 0x80) !== 0,
        statusData: h0,
        statusAddr: q1 & ~3n,
      };
    case 6: {
      if (g < 2) return bad(VTD_IQEI.RESERVED, `PASID-based IOTLB descriptor with granularity ${g}`);
      const am = lo32(q1) & 0x3f;
      if (g === 3 && am > caps.mamv)
        return bad(VTD_IQEI.RESERVED, `PASID-based IOTLB descriptor AM ${am} above MAMV`);
      return {
        type: 'pasid-iotlb',
        granularity: g === 2 ? 'pasid' : 'page',
        did,
        pasid: h0 & 0xfffff,
        addr: q1 & ~0xfffn,
        am,
        ih: (q1 & 0x40n) !== 0n,
      };
    }
    case 7: {
      if (g === 2) return bad(VTD_IQEI.RESERVED, 'PASID-cache descriptor with granularity 2');
      return {
        type: 'pasid-cache',
        granularity: g === 0 ? 'domain' : g === 1 ? 'pasid' : 'global',
        did,
        pasid: h0 & 0xfffff,
      };
    }
    case 8:
      return {
        type: 'pasid-device-tlb',
        sid: (w0 >>> 16) & 0xffff,
        pfsid: ((w0 >>> 12) & 0xf) | ((h0 >>> 20) << 4),
        mip: (w0 >>> 4) & 0x1f,
        pasid: h0 & 0xfffff,
        global: (q1 & 1n) !== 0n,
        addr: q1 & ~0xfffn,
        s: (q1 & 0x800n) !== 0n,
      };
    default: {
      const code = (w0 >>> 12) & 0xf;
      if (code !== 0 && code !== 1 && code !== 0xf)
        return bad(VTD_IQEI.RESERVED, `page group response code 0x${code.toString(16)} is reserved`);
      return {
        type: 'page-group-response',
        rid: (w0 >>> 16) & 0xffff,
        pasidPresent: (w0 & 0x10) !== 0,
        pasid: h0 & 0xfffff,
        code,
        prgIndex: (lo32(q1) >>> 3) & 0x1ff,
        lpig: (q1 & 4n) !== 0n,
      };
    }
  }
}

const GRAN_CC = { global: 1n, domain: 2n, device: 3n } as const;
const GRAN_IOTLB = { global: 1n, domain: 2n, page: 3n } as const;
const GRAN_PC = { domain: 0n, pasid: 1n, global: 3n } as const;

/**
 * Encode a descriptor (for tests and tools; the driver has its own encoders).
 * @param d - the descriptor
 * @param wide - produce 4 words (256-bit queue) instead of 2
 * @returns the words, qw0 first
 */
export function encodeVtdInvDesc(d: VtdInvDesc, wide = false): bigint[] {
  const t = BigInt(VTD_INV_DESC_TYPE[d.type]);
  let q0 = t;
  let q1 = 0n;
  switch (d.type) {
    case 'context-cache':
      q0 |=
        (GRAN_CC[d.granularity] << 4n) |
        (BigInt(d.did) << 16n) |
        (BigInt(d.sid) << 32n) |
        (BigInt(d.fm) << 48n);
      break;
    case 'iotlb':
      q0 |=
        (GRAN_IOTLB[d.granularity] << 4n) |
        (d.dw ? 0x40n : 0n) |
        (d.dr ? 0x80n : 0n) |
        (BigInt(d.did) << 16n);
      q1 = (d.addr & ~0xfffn) | (d.ih ? 0x40n : 0n) | BigInt(d.am);
      break;
    case 'device-tlb':
      q0 |=
        (BigInt(d.pfsid & 0xf) << 12n) |
        (BigInt(d.mip) << 16n) |
        (BigInt(d.sid) << 32n) |
        (BigInt(d.pfsid >>> 4) << 52n);
      q1 = (d.addr & ~0xfffn) | (d.s ? 1n : 0n);
      break;
    case 'iec':
      q0 |= (d.global ? 0n : 0x10n) | (BigInt(d.im) << 27n) | (BigInt(d.iidx) << 32n);
      break;
    case 'wait':
      q0 |=
        (d.if ? 0x10n : 0n) |
        (d.sw ? 0x20n : 0n) |
        (d.fn ? 0x40n : 0n) |
        (d.pd ? 0x80n : 0n) |
        (BigInt(d.statusData >>> 0) << 32n);
      q1 = d.statusAddr & ~3n;
      break;
    case 'pasid-iotlb':
      q0 |= ((d.granularity === 'pasid' ? 2n : 3n) << 4n) | (BigInt(d.did) << 16n) | (BigInt(d.pasid) << 32n);
      q1 = d.granularity === 'page' ? (d.addr & ~0xfffn) | (d.ih ? 0x40n : 0n) | BigInt(d.am) : 0n;
      break;
    case 'pasid-cache':
      q0 |= (GRAN_PC[d.granularity] << 4n) | (BigInt(d.did) << 16n) | (BigInt(d.pasid) << 32n);
      break;
    case 'pasid-device-tlb':
      q0 |=
        (BigInt(d.mip) << 4n) |
        (BigInt(d.pfsid & 0xf) << 12n) |
        (BigInt(d.sid) << 16n) |
        (BigInt(d.pasid) << 32n) |
        (BigInt(d.pfsid >>> 4) << 52n);
      q1 = (d.addr & ~0xfffn) | (d.s ? 0x800n : 0n) | (d.global ? 1n : 0n);
      break;
    case 'page-group-response':
      q0 |=
        (d.pasidPresent ? 0x10n : 0n) |
        (BigInt(d.code) << 12n) |
        (BigInt(d.rid) << 16n) |
        (BigInt(d.pasid) << 32n);
      q1 = (BigInt(d.prgIndex) << 3n) | (d.lpig ? 4n : 0n);
      break;
  }
  return wide ? [q0, q1, 0n, 0n] : [q0, q1];
}
