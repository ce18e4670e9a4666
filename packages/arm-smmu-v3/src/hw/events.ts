/**
 * SMMUv3 event records: the decoded {@link SmmuEvent} and its 32-byte encoding in the event queue.
 *
 * @remarks
 * Layout of digest §5.1/§5.3 (the fault-record layout, which Linux's `arm_smmu_decode_event` reads
 * for every type): DW0 type 7:0, SSV 11, SSID 31:12, SID 63:32; DW1 STAG 15:0, STALL 31, PnU 33,
 * InD 34, RnW 35, NSIPA 38, S2 39, CLASS 41:40, TTRnW 44; DW2 InputAddr; DW3 IPA 51:12 or, for the
 * fetch-abort types, FetchAddr 51:3.
 */

import { ErrnoError } from '@iommu-ts/base';

/** Event type codes (digest §5.2), by architecture name. */
export const SMMU_EVENT_CODE = Object.freeze({
  F_UUT: 0x01,
  C_BAD_STREAMID: 0x02,
  F_STE_FETCH: 0x03,
  C_BAD_STE: 0x04,
  F_BAD_ATS_TREQ: 0x05,
  F_STREAM_DISABLED: 0x06,
  F_TRANSL_FORBIDDEN: 0x07,
  C_BAD_SUBSTREAMID: 0x08,
  F_CD_FETCH: 0x09,
  C_BAD_CD: 0x0a,
  F_WALK_EABT: 0x0b,
  F_TRANSLATION: 0x10,
  F_ADDR_SIZE: 0x11,
  F_ACCESS: 0x12,
  F_PERMISSION: 0x13,
  F_TLB_CONFLICT: 0x20,
  F_CFG_CONFLICT: 0x21,
  E_PAGE_REQUEST: 0x24,
  F_VMS_FETCH: 0x25,
} as const);

/** The name of an event type, for example `'F_TRANSLATION'`. */
export type SmmuEventType = keyof typeof SMMU_EVENT_CODE;

const NAME_BY_CODE = new Map<number, SmmuEventType>(
  (Object.entries(SMMU_EVENT_CODE) as [SmmuEventType, number][]).map(([n, c]) => [c, n]),
);

/**
 * The event type named by a code.
 * @param code - the 8-bit type field
 * @returns the name, or `undefined` for a code the architecture does not define
 */
export function smmuEventTypeName(code: number): SmmuEventType | undefined {
  return NAME_BY_CODE.get(code);
}

/** CLASS field of a fault record: `0` CD fetch, `1` stage-1 table (TT) fetch, `2` input address. */
export const SMMU_EVENT_CLASS = Object.freeze({ CD: 0, TT: 1, IN: 2 } as const);

/** The value of a CLASS field (see {@link SMMU_EVENT_CLASS}). */
export type SmmuEventClass = 0 | 1 | 2 | 3;

/**
 * Event types whose DW3 holds a fetch address (bits 51:3) rather than an IPA (bits 51:12).
 */
export const SMMU_FETCH_EVENTS: ReadonlySet<SmmuEventType> = new Set<SmmuEventType>([
  'F_STE_FETCH',
  'F_CD_FETCH',
  'F_WALK_EABT',
  'F_VMS_FETCH',
]);

/** The four translation fault types that CD.R / STE.S2R gate and CD.S / STE.S2S may stall. */
export const SMMU_TRANSLATION_FAULTS: ReadonlySet<SmmuEventType> = new Set<SmmuEventType>([
  'F_TRANSLATION',
  'F_ADDR_SIZE',
  'F_ACCESS',
  'F_PERMISSION',
]);

/** The decoded content of one event record. Fields a type does not use are 0 / false. */
export interface SmmuEvent {
  /** Event type. */
  readonly type: SmmuEventType;
  /** StreamID (u32). */
  readonly sid: number;
  /** SSV: the transaction carried a SubstreamID. */
  readonly ssv: boolean;
  /** SubstreamID (20 bits; meaningful when `ssv`). */
  readonly ssid: number;
  /** STALL: the transaction is held awaiting CMD_RESUME / CMD_STALL_TERM. */
  readonly stall: boolean;
  /** STAG: stall tag (16 bits; meaningful when `stall`). */
  readonly stag: number;
  /** S2: the fault was raised by stage 2. */
  readonly s2: boolean;
  /** RnW: 1 = read, 0 = write. */
  readonly rnw: boolean;
  /** PnU: privileged transaction. */
  readonly pnu: boolean;
  /** InD: instruction fetch. */
  readonly ind: boolean;
  /** NSIPA: the IPA is non-secure. */
  readonly nsipa: boolean;
  /** CLASS (see {@link SMMU_EVENT_CLASS}). */
  readonly class: SmmuEventClass;
  /** TTRnW: for CLASS=TT faults, the table access was a read (true) or an HTTU write (false). */
  readonly ttrnw: boolean;
  /** InputAddr: the transaction's input address (u64). */
  readonly inputAddr: bigint;
  /** IPA for stage-2 faults (bits 51:12 are recorded); 0n otherwise. */
  readonly ipa: bigint;
  /** FetchAddr for F_STE_FETCH / F_CD_FETCH / F_WALK_EABT / F_VMS_FETCH (bits 51:3); 0n otherwise. */
  readonly fetchAddr: bigint;
}

/** Fields of {@link smmuEvent} apart from type and SID; all optional. */
export type SmmuEventFields = Partial<Omit<SmmuEvent, 'type' | 'sid'>>;

/**
 * Build an {@link SmmuEvent} with every unnamed field 0 / false.
 * @param type - event type
 * @param sid - StreamID
 * @param fields - other fields
 * @returns a frozen event
 */
export function smmuEvent(type: SmmuEventType, sid: number, fields: SmmuEventFields = {}): SmmuEvent {
  return Object.freeze({
    type,
    sid: sid >>> 0,
    ssv: fields.ssv ?? false,
    ssid: fields.ssid ?? 0,
    stall: fields.stall ?? false,
    stag: fields.stag ?? 0,
    s2: fields.s2 ?? false,
    rnw: fields.rnw ?? false,
    pnu: fields.pnu ?? false,
    ind: fields.ind ?? false,
    nsipa: fields.nsipa ?? false,
    class: fields.class ?? 0,
    ttrnw: fields.ttrnw ?? false,
    inputAddr: fields.inputAddr ?? 0n,
    ipa: fields.ipa ?? 0n,
    fetchAddr: fields.fetchAddr ?? 0n,
  });
}

/** Size of an event record in bytes. */
export const SMMU_EVENT_RECORD_SIZE = 32;

const M32 = 0xffff_ffffn;
const IPA_MASK = ((1n << 52n) - 1n) & ~0xfffn;
const FETCH_MASK = ((1n << 52n) - 1n) & ~0x7n;

/**
 * Encode an event as the 8 little-endian 32-bit words of its queue record (word 2k = DWk[31:0],
 * word 2k+1 = DWk[63:32]).
 * @param ev - the event
 * @returns 8 words
 */
export function encodeSmmuEvent(ev: SmmuEvent): Uint32Array {
  const w = new Uint32Array(8);
  w[0] = SMMU_EVENT_CODE[ev.type] | (ev.ssv ? 1 << 11 : 0) | ((ev.ssid & 0xfffff) << 12);
  w[1] = ev.sid >>> 0;
  w[2] = (ev.stag & 0xffff) | (ev.stall ? 0x8000_0000 : 0);
  w[3] =
    (ev.pnu ? 1 << 1 : 0) |
    (ev.ind ? 1 << 2 : 0) |
    (ev.rnw ? 1 << 3 : 0) |
    (ev.nsipa ? 1 << 6 : 0) |
    (ev.s2 ? 1 << 7 : 0) |
    ((ev.class & 3) << 8) |
    (ev.ttrnw ? 1 << 12 : 0);
  w[4] = Number(ev.inputAddr & M32);
  w[5] = Number((ev.inputAddr >> 32n) & M32);
  const dw3 = SMMU_FETCH_EVENTS.has(ev.type) ? ev.fetchAddr & FETCH_MASK : ev.ipa & IPA_MASK;
  w[6] = Number(dw3 & M32);
  w[7] = Number(dw3 >> 32n);
  return w;
}

/**
 * Decode an event record.
 * @param words - 8 little-endian 32-bit words (see {@link encodeSmmuEvent})
 * @returns the event
 * @throws ErrnoError `EINVAL` for fewer than 8 words or a type code the architecture does not
 *   define
 */
export function decodeSmmuEvent(words: ArrayLike<number>): SmmuEvent {
  if (words.length < 8) throw new ErrnoError('EINVAL', `event record needs 8 words, got ${words.length}`);
  const w = (i: number): number => (words[i] as number) >>> 0;
  const code = w(0) & 0xff;
  const type = smmuEventTypeName(code);
  if (type === undefined) throw new ErrnoError('EINVAL', `unknown SMMU event type 0x${code.toString(16)}`);
  const dw3 = (BigInt(w(7)) << 32n) | BigInt(w(6));
  const fetch = SMMU_FETCH_EVENTS.has(type);
  return smmuEvent(type, w(1), {
    ssv: (w(0) & (1 << 11)) !== 0,
    ssid: w(0) >>> 12,
    stall: (w(2) & 0x8000_0000) !== 0,
    stag: w(2) & 0xffff,
    pnu: (w(3) & (1 << 1)) !== 0,
    ind: (w(3) & (1 << 2)) !== 0,
    rnw: (w(3) & (1 << 3)) !== 0,
    nsipa: (w(3) & (1 << 6)) !== 0,
    s2: (w(3) & (1 << 7)) !== 0,
    class: ((w(3) >>> 8) & 3) as SmmuEventClass,
    ttrnw: (w(3) & (1 << 12)) !== 0,
    inputAddr: (BigInt(w(5)) << 32n) | BigInt(w(4)),
    ipa: fetch ? 0n : dw3 & IPA_MASK,
    fetchAddr: fetch ? dw3 & FETCH_MASK : 0n,
  });
}
