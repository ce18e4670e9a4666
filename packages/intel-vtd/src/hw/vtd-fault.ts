/**
 * VT-d DMA-remapping faults: the decoded {@link VtdFault}, the fault reason codes, which reasons
 * FPD may suppress, and the 128-bit fault recording register (FRCD) encoding.
 *
 * @remarks
 * Reason codes are digest §6.1–§6.3 (Linux dmar.c reason tables, QEMU `VTDFaultReason`); the
 * qualified set is §6.4; the FRCD layout is §1.9: FI 63:12, SID 79:64, T2 92, PRIV 93, EXE 94,
 * PP 95, FR 103:96, PV 123:104, AT 125:124, T 126 (1 = read), F 127.
 */

import type { DmaFaultReason } from '@iommu-ts/iommu-core';

/**
 * Fault reason codes (the FR field), by name. Legacy names follow QEMU's `VTD_FR_*`, scalable-mode
 * (0x30 … 0x91) names are this package's, prefixed `SM_`.
 */
export const VTD_FR = Object.freeze({
  /** 0x00: reserved / software. */
  RESERVED: 0x00,
  /** 0x01: root entry present bit clear (legacy). */
  ROOT_ENTRY_P: 0x01,
  /** 0x02: context entry present bit clear (legacy). */
  CONTEXT_ENTRY_P: 0x02,
  /** 0x03: invalid context entry (bad AW or TT). */
  CONTEXT_ENTRY_INV: 0x03,
  /** 0x04: input address beyond MGAW / the context's AGAW. */
  ADDR_BEYOND_MGAW: 0x04,
  /** 0x05: write not permitted by the second-level entry. */
  WRITE: 0x05,
  /** 0x06: read not permitted by the second-level entry. */
  READ: 0x06,
  /** 0x07: second-level table pointer invalid (entry not readable). */
  PAGING_ENTRY_INV: 0x07,
  /** 0x08: root table address invalid (root entry not readable). */
  ROOT_TABLE_INV: 0x08,
  /** 0x09: context table pointer invalid (context entry not readable). */
  CONTEXT_TABLE_INV: 0x09,
  /** 0x0A: reserved field set in a root entry. */
  ROOT_ENTRY_RSVD: 0x0a,
  /** 0x0B: reserved field set in a context entry. */
  CONTEXT_ENTRY_RSVD: 0x0b,
  /** 0x0C: reserved field set in a second-level paging entry. */
  PAGING_ENTRY_RSVD: 0x0c,
  /** 0x0D: translation request or translated request blocked by the context's TT. */
  CONTEXT_ENTRY_TT: 0x0d,
  /** 0x0E: (QEMU only) output address in the interrupt range 0xFEE00000 … 0xFEEFFFFF. */
  INTERRUPT_ADDR: 0x0e,

  /** 0x20: reserved fields set in an interrupt request. */
  IR_REQ_RSVD: 0x20,
  /** 0x21: interrupt index beyond the IR table size. */
  IR_INDEX_OVER: 0x21,
  /** 0x22: IRTE present bit clear. */
  IR_ENTRY_P: 0x22,
  /** 0x23: IR table not readable. */
  IR_ROOT_INV: 0x23,
  /** 0x24: reserved fields set in an IRTE. */
  IR_IRTE_RSVD: 0x24,
  /** 0x25: compatibility-format interrupt blocked. */
  IR_REQ_COMPAT: 0x25,
  /** 0x26: source-id verification failed. */
  IR_SID_ERR: 0x26,

  /** 0x30: invalid root table address (scalable mode). */
  SM_RTA_INV: 0x30,
  /** 0x31: request-with-PASID while TTM = 00 (legacy). */
  SM_PASID_IN_LEGACY: 0x31,
  /** 0x32: page group request while TTM = 00. */
  SM_PRQ_IN_LEGACY: 0x32,
  /** 0x38: error accessing a scalable-mode root entry. */
  SM_ROOT_ACCESS: 0x38,
  /** 0x39: scalable-mode root entry (LP/UP) present bit clear. */
  SM_ROOT_P: 0x39,
  /** 0x3A: reserved field set in a scalable-mode root entry. */
  SM_ROOT_RSVD: 0x3a,
  /** 0x40: error accessing a scalable-mode context entry. */
  SM_CTX_ACCESS: 0x40,
  /** 0x41: scalable-mode context entry present bit clear. */
  SM_CTX_P: 0x41,
  /** 0x42: reserved field set in a scalable-mode context entry. */
  SM_CTX_RSVD: 0x42,
  /** 0x43: invalid scalable-mode context entry. */
  SM_CTX_INV: 0x43,
  /** 0x44: DTE clear for a translation request or translated request. */
  SM_CTX_DTE: 0x44,
  /** 0x45: PASIDE clear for a request-with-PASID. */
  SM_CTX_PASIDE: 0x45,
  /** 0x46: PASID beyond the context entry's PASID directory size (PDTS). */
  SM_CTX_PDTS: 0x46,
  /** 0x47: PRE clear for a page request. */
  SM_CTX_PRE: 0x47,
  /** 0x48: RID_PASID field error. */
  SM_CTX_RID_PASID: 0x48,
  /** 0x50: error accessing a PASID directory entry. */
  SM_PASID_DIR_ACCESS: 0x50,
  /** 0x51: PASID directory entry present bit clear. */
  SM_PASID_DIR_P: 0x51,
  /** 0x52: reserved field set in a PASID directory entry. */
  SM_PASID_DIR_RSVD: 0x52,
  /** 0x58: error accessing a PASID table entry. */
  SM_PASID_TABLE_ACCESS: 0x58,
  /** 0x59: PASID table entry present bit clear. */
  SM_PASID_ENTRY_P: 0x59,
  /** 0x5A: reserved field set in a PASID table entry. */
  SM_PASID_ENTRY_RSVD: 0x5a,
  /** 0x5B: invalid PASID table entry (PGTT, AW or FLPM unsupported). */
  SM_PASID_ENTRY_INV: 0x5b,
  /** 0x5C: execute request but the PASID entry's ERE is clear. */
  SM_PASID_ERE: 0x5c,
  /** 0x5D: supervisor request but the PASID entry's SRE is clear. */
  SM_PASID_SRE: 0x5d,
  /** 0x70: error accessing a first-level paging entry. */
  SM_FL_ACCESS: 0x70,
  /** 0x71: first-level paging entry present bit clear. */
  SM_FL_P: 0x71,
  /** 0x72: reserved field set in a first-level paging entry. */
  SM_FL_RSVD: 0x72,
  /** 0x73: error accessing the first-level top (PML4/PML5) entry. */
  SM_FLPTR_ACCESS: 0x73,
  /** 0x74: nested: first-level entry address beyond MGAW. */
  SM_NESTED_FL_MGAW: 0x74,
  /** 0x75: nested: second-level read permission error on the first-level top entry. */
  SM_NESTED_FL_TOP_READ: 0x75,
  /** 0x76: nested: second-level read permission error on a first-level entry. */
  SM_NESTED_FL_READ: 0x76,
  /** 0x77: nested: second-level write permission error on a first-level entry (A/D update). */
  SM_NESTED_FL_WRITE: 0x77,
  /** 0x78: error accessing a second-level paging entry. */
  SM_SL_ACCESS: 0x78,
  /** 0x79: read/write permission error in a second-level entry. */
  SM_SL_PERM: 0x79,
  /** 0x7A: reserved field set in a second-level paging entry. */
  SM_SL_RSVD: 0x7a,
  /** 0x7B: invalid second-level table pointer. */
  SM_SLPTR_INV: 0x7b,
  /** 0x7C: second-level A/D update needed but the walk is non-snooped. */
  SM_SL_AD_NONSNOOP: 0x7c,
  /** 0x80: first-level input address not canonical. */
  SM_NON_CANONICAL: 0x80,
  /** 0x81: user-privilege first-level access to a supervisor page (U/S = 0). */
  SM_US: 0x81,
  /** 0x82: execute not permitted. */
  SM_EXEC: 0x82,
  /** 0x83: input address beyond the hardware maximum (second level). */
  SM_ADDR_BEYOND_MAX: 0x83,
  /** 0x84: second-level entry address beyond the maximum. */
  SM_SL_ENTRY_ADDR: 0x84,
  /** 0x85: no write permission (write or AtomicOp). */
  SM_WRITE: 0x85,
  /** 0x86: no read permission (read or AtomicOp). */
  SM_READ: 0x86,
  /** 0x87: translated output is in the interrupt address range. */
  SM_INTERRUPT_ADDR: 0x87,
  /** 0x90: first-level A/D update needed but the walk is non-snooped. */
  SM_FL_AD_NONSNOOP: 0x90,
  /** 0x91: (QEMU only) first-level A/D write-back failed. */
  SM_FL_AD_UPDATE_FAILED: 0x91,
} as const);

/** The name of a fault reason, for example `'READ'`. */
export type VtdFaultReasonName = keyof typeof VTD_FR;

const NAME_BY_CODE = new Map<number, VtdFaultReasonName>(
  (Object.entries(VTD_FR) as [VtdFaultReasonName, number][]).map(([n, c]) => [c, n]),
);

/**
 * The name of a fault reason code.
 * @param code - the 8-bit FR value
 * @returns the {@link VTD_FR} key, or `undefined` for a code this package does not name
 */
export function vtdFaultReasonName(code: number): VtdFaultReasonName | undefined {
  return NAME_BY_CODE.get(code);
}

/**
 * Reasons that FPD (context, PASID directory or PASID table entry) suppresses — "qualified" faults
 * (digest §6.4: QEMU's set, plus the scalable-mode reasons that are raised after the entry carrying
 * FPD was read). Root-entry errors, unreadable tables and reserved-bit errors in the entry that
 * would carry FPD are never suppressed.
 */
export const VTD_QUALIFIED_FAULTS: ReadonlySet<number> = new Set<number>([
  0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0c, 0x0d, 0x0e, 0x41, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x51, 0x59,
  0x5b, 0x5c, 0x5d, 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x80, 0x81,
  0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x90, 0x91,
]);

/**
 * FRCD.AT: the address type of the faulting request: `0` untranslated, `1` translation request
 * (ATS), `2` translated request.
 */
export type VtdAddressType = 0 | 1 | 2;

/**
 * One DMA-remapping fault as the hardware records it in a fault recording register (FRCD), plus
 * whether the entry that applied had FPD set.
 */
export interface VtdFault {
  /** FR: the fault reason code (see {@link VTD_FR}). */
  readonly reason: number;
  /** SID: requester id (bus 15:8, device 7:3, function 2:0). */
  readonly sourceId: number;
  /** FI: the faulting input address (u64; the FRCD keeps bits 63:12 only). */
  readonly addr: bigint;
  /** T: the request was a write (T = 0); `false` for reads and AtomicOps (T = 1). */
  readonly write: boolean;
  /** PP: the request carried a PASID. */
  readonly pasidPresent: boolean;
  /** PV: the PASID (20 bits); 0 when {@link VtdFault.pasidPresent} is false. */
  readonly pasid: number;
  /** EXE: execute requested. */
  readonly exec: boolean;
  /** PRIV: privileged (supervisor) mode requested. */
  readonly privileged: boolean;
  /** AT: the request's address type. */
  readonly addressType: VtdAddressType;
  /**
   * FPD of the context / PASID entry used (not part of the record): when true and the reason is in
   * {@link VTD_QUALIFIED_FAULTS} the fault is not recorded. Absent means false.
   */
  readonly fpd?: boolean;
}

/**
 * Whether the hardware records a fault (false when FPD suppresses a qualified reason).
 * @param fault - the fault
 * @returns true if it must go to the fault recording registers
 */
export function vtdFaultIsRecorded(fault: Pick<VtdFault, 'reason' | 'fpd'>): boolean {
  return !(fault.fpd === true && VTD_QUALIFIED_FAULTS.has(fault.reason));
}

/** The two 64-bit halves of a 128-bit fault recording register. */
export interface VtdFrcdValue {
  /** Bits 63:0 (FI). */
  readonly lo: bigint;
  /** Bits 127:64 (SID, T2, PRIV, EXE, PP, FR, PV, AT, T, F). */
  readonly hi: bigint;
}

const PAGE_MASK = ~0xfffn & 0xffff_ffff_ffff_ffffn;

/**
 * Encode a fault as the content of a fault recording register, with F (bit 127) set.
 * @param fault - the fault
 * @returns the 128-bit value as two u64 halves
 */
export function encodeVtdFrcd(fault: VtdFault): VtdFrcdValue {
  const lo = fault.addr & PAGE_MASK;
  const hiLow32 =
    (fault.sourceId & 0xffff) |
    (fault.privileged ? 1 << 29 : 0) |
    (fault.exec ? 1 << 30 : 0) |
    (fault.pasidPresent ? 1 << 31 : 0);
  const hiHigh32 =
    (fault.reason & 0xff) |
    ((fault.pasidPresent ? fault.pasid & 0xfffff : 0) << 8) |
    ((fault.addressType & 3) << 28) |
    (fault.write ? 0 : 1 << 30) |
    (1 << 31);
  const hi = (BigInt(hiHigh32 >>> 0) << 32n) | BigInt(hiLow32 >>> 0);
  return { lo, hi };
}

/** A decoded fault recording register: the fault fields plus the F (pending) bit. */
export interface VtdFrcdRecord extends VtdFault {
  /** F: the record holds an unserviced fault. */
  readonly pending: boolean;
}

/**
 * Decode the content of a fault recording register.
 * @param value - the two halves (for example read from the MMIO window)
 * @returns the fields; `addr` has its low 12 bits clear, `fpd` is absent
 */
export function decodeVtdFrcd(value: VtdFrcdValue): VtdFrcdRecord {
  const hi = value.hi;
  const w2 = Number(hi & 0xffff_ffffn);
  const w3 = Number(hi >> 32n);
  const pasidPresent = (w2 & (1 << 31)) !== 0;
  return {
    reason: w3 & 0xff,
    sourceId: w2 & 0xffff,
    addr: value.lo & PAGE_MASK,
    write: (w3 & (1 << 30)) === 0,
    pasidPresent,
    pasid: (w3 >>> 8) & 0xfffff,
    exec: (w2 & (1 << 30)) !== 0,
    privileged: (w2 & (1 << 29)) !== 0,
    addressType: ((w3 >>> 28) & 3) as VtdAddressType,
    pending: (w3 & (1 << 31)) !== 0,
  };
}

/**
 * The generic DMA fault reason (iommu-core's `DmaFaultReason`) a device sees for a VT-d
 * fault reason.
 * @param code - the FR value
 * @returns `'bad-requester'` for root/context errors, `'bad-pasid'` for PASID-structure errors,
 *   `'permission'` for permission reasons, `'address-size'` for width reasons, `'ats-not-allowed'`
 *   for TT/DTE, `'config'` for reserved/invalid fields, else `'translation'`
 */
export function vtdDmaFaultReason(code: number): DmaFaultReason {
  switch (code) {
    case 0x01:
    case 0x02:
    case 0x08:
    case 0x09:
    case 0x30:
    case 0x38:
    case 0x39:
    case 0x40:
    case 0x41:
      return 'bad-requester';
    case 0x0d:
    case 0x44:
      return 'ats-not-allowed';
    case 0x31:
    case 0x45:
    case 0x46:
    case 0x50:
    case 0x51:
    case 0x58:
    case 0x59:
      return 'bad-pasid';
    case 0x04:
    case 0x74:
    case 0x80:
    case 0x83:
    case 0x84:
      return 'address-size';
    case 0x05:
    case 0x06:
    case 0x5c:
    case 0x5d:
    case 0x75:
    case 0x76:
    case 0x77:
    case 0x79:
    case 0x81:
    case 0x82:
    case 0x85:
    case 0x86:
    case 0x87:
    case 0x0e:
      return 'permission';
    case 0x03:
    case 0x0a:
    case 0x0b:
    case 0x0c:
    case 0x3a:
    case 0x42:
    case 0x43:
    case 0x48:
    case 0x52:
    case 0x5a:
    case 0x5b:
    case 0x72:
    case 0x7a:
    case 0x7b:
      return 'config';
    case 0x07:
    case 0x70:
    case 0x73:
    case 0x78:
      return 'bus';
    default:
      return 'translation';
  }
}
