/**
 * Context descriptors (CDs): the decoded {@link Cd}, its decoder with the legality checks that
 * turn a descriptor into a C_BAD_CD event, and an encoder that builds the 64-byte CD by field name.
 *
 * @remarks
 * Layout of digest §3.1 (Arm IHI 0070 CD; Linux `CTXDESC_CD_*` in arm-smmu-v3.h; QEMU `CD_*` in
 * smmuv3-common.h). Words are the little-endian 32-bit view: word 2k = DWk[31:0], word 2k+1 =
 * DWk[63:32]. Addresses are plain numbers (at most 52 bits).
 */

import type { SmmuHwConfig } from './smmu-config.js';
import { smmuOasDecode } from './smmu-config.js';
import { tg0GranuleShift } from './ste.js';

/** Size of a CD in bytes (8 doublewords). */
export const CD_SIZE = 64;

/**
 * The raw fields of a CD, by the architecture's names in camelCase (digest §3.1). One-bit fields
 * are booleans; addresses are byte addresses. Also the input of {@link encodeCd}.
 */
export interface CdFields {
  /** DW0 5:0: T0SZ, TTB0 region size 2^(64 − T0SZ). */
  readonly t0sz: number;
  /** DW0 7:6: TG0 (0 4K, 1 64K, 2 16K). */
  readonly tg0: number;
  /** DW0 9:8: IR0, walk inner cacheability. */
  readonly ir0: number;
  /** DW0 11:10: OR0, walk outer cacheability. */
  readonly or0: number;
  /** DW0 13:12: SH0, walk shareability. */
  readonly sh0: number;
  /** DW0 14: EPD0, no walks through TTB0. */
  readonly epd0: boolean;
  /** DW0 15: ENDI, big-endian tables. */
  readonly endi: boolean;
  /** DW0 21:16: T1SZ. */
  readonly t1sz: number;
  /** DW0 23:22: TG1 (1 16K, 2 4K, 3 64K; 0 reserved). */
  readonly tg1: number;
  /** DW0 25:24: IR1. */
  readonly ir1: number;
  /** DW0 27:26: OR1. */
  readonly or1: number;
  /** DW0 29:28: SH1. */
  readonly sh1: number;
  /** DW0 30: EPD1, no walks through TTB1. */
  readonly epd1: boolean;
  /** DW0 31: V, valid. */
  readonly v: boolean;
  /** DW0 34:32: IPS, output size in the OAS encoding. */
  readonly ips: number;
  /** DW0 35: AFFD, access-flag faults disabled. */
  readonly affd: boolean;
  /** DW0 36: WXN, writable implies execute-never. */
  readonly wxn: boolean;
  /** DW0 37: UWXN, unprivileged-writable implies privileged execute-never. */
  readonly uwxn: boolean;
  /** DW0 38: TBI0, top byte ignored in the TTB0 region. */
  readonly tbi0: boolean;
  /** DW0 39: TBI1, top byte ignored in the TTB1 region. */
  readonly tbi1: boolean;
  /** DW0 40: PAN. */
  readonly pan: boolean;
  /** DW0 41: AA64, AArch64 tables. */
  readonly aa64: boolean;
  /** DW0 42: HD, hardware dirty-state update. */
  readonly hd: boolean;
  /** DW0 43: HA, hardware access-flag update. */
  readonly ha: boolean;
  /** DW0 44: S, faults stall. */
  readonly s: boolean;
  /** DW0 45: R, record terminated faults. */
  readonly r: boolean;
  /** DW0 46: A, terminated faults abort (else RAZ/WI). */
  readonly a: boolean;
  /** DW0 47: ASET, ASID not shared with PE broadcast TLB maintenance. */
  readonly aset: boolean;
  /** DW0 63:48: ASID. */
  readonly asid: number;
  /** DW1 0: NSCFG0. */
  readonly nscfg0: boolean;
  /** DW1 1: HAD0, hierarchical attributes disabled for TTB0 walks. */
  readonly had0: boolean;
  /** DW1 3: HAFT. */
  readonly haft: boolean;
  /** DW1 51:4: TTB0, stage-1 table base. */
  readonly ttb0: number;
  /** DW2 0: NSCFG1. */
  readonly nscfg1: boolean;
  /** DW2 1: HAD1. */
  readonly had1: boolean;
  /** DW2 51:4: TTB1. */
  readonly ttb1: number;
  /** DW3 31:0: MAIR0 (Attr0 in bits 7:0 … Attr3 in 31:24). */
  readonly mair0: number;
  /** DW3 63:32: MAIR1 (Attr4 … Attr7). */
  readonly mair1: number;
  /** DW4 31:0: AMAIR0. */
  readonly amair0: number;
  /** DW4 63:32: AMAIR1. */
  readonly amair1: number;
}

/** A decoded, legal CD ({@link decodeCd}): raw fields plus values derived once for the walker. */
export interface Cd extends CdFields {
  /** TTB0 granule as log2 bytes (12, 14, 16); 0 when EPD0 (region unused). */
  readonly tg0Shift: number;
  /** TTB1 granule as log2 bytes (12, 14, 16); 0 when EPD1 (region unused). */
  readonly tg1Shift: number;
  /**
   * Output size in bits of TTB0 walks: min(IPS, IDR5.OAS), at most 48 unless the 64K granule;
   * 0 when EPD0.
   */
  readonly outputBits0: number;
  /** Output size in bits of TTB1 walks, as {@link Cd.outputBits0}; 0 when EPD1. */
  readonly outputBits1: number;
  /** HA honoured (set and IDR0.HTTU advertises it). */
  readonly haEffective: boolean;
  /** HD honoured (set with HA and IDR0.HTTU = HA+HD). */
  readonly hdEffective: boolean;
  /** HAD0 honoured (set and IDR3.HAD). */
  readonly had0Effective: boolean;
  /** HAD1 honoured (set and IDR3.HAD). */
  readonly had1Effective: boolean;
  /** ASID tag of the TLB entries: the low 8 bits only without IDR0.ASID16. */
  readonly tagAsid: number;
}

/**
 * Why a CD is illegal (reported as C_BAD_CD), in the order {@link decodeCd} checks them
 * (digest §3.4 with the SMMU's features):
 * - `'invalid'`: V=0; `'aa64'`: AA64=0;
 * - `'a-term-model'`: A=0 with TERM_MODEL=1;
 * - `'s-no-stall'`: S=1 with STALL_MODEL=1; `'s-forced'`: S=0 with STALL_MODEL=2;
 * - `'ha'`: HA=1 without HTTU; `'hd'`: HD=1 without HTTU dirty support;
 * - `'endi'`: ENDI=1 with a walked region (TTENDIAN is little-endian only);
 * - `'tg0'` / `'tg1'`: reserved or unadvertised granule of a walked region;
 * - `'t0sz'` / `'t1sz'`: TxSZ outside 16 … 39 (12 … 39 with IDR5.VAX and the 64K granule);
 * - `'ttb0'` / `'ttb1'`: TTBx at or beyond 2^(output size of that region).
 */
export type BadCdReason =
  | 'invalid'
  | 'aa64'
  | 'a-term-model'
  | 's-no-stall'
  | 's-forced'
  | 'ha'
  | 'hd'
  | 'endi'
  | 'tg0'
  | 'tg1'
  | 't0sz'
  | 't1sz'
  | 'ttb0'
  | 'ttb1';

/** Result of {@link decodeCd}: the legal CD, or why it is illegal. */
export type CdDecodeResult =
  | { readonly ok: true; readonly cd: Cd }
  | { readonly ok: false; readonly reason: BadCdReason };

const TWO32 = 0x1_0000_0000;

function toWords(words: ArrayLike<number> | readonly bigint[]): ArrayLike<number> {
  if (words.length > 0 && typeof words[0] === 'bigint') {
    const dw = words as readonly bigint[];
    const out: number[] = [];
    for (let i = 0; i < Math.min(dw.length, 5); i++) {
      const v = BigInt.asUintN(64, dw[i] ?? 0n);
      out.push(Number(v & 0xffff_ffffn), Number(v >> 32n));
    }
    return out;
  }
  return words as ArrayLike<number>;
}

/**
 * Read the raw fields of a CD without checking them.
 * @param words - at least 8 little-endian u32 words (DW0..DW3; words 8 and 9 = DW4 read when
 *   present), or at least 4 64-bit bigints
 * @returns the fields
 */
export function decodeCdFields(words: ArrayLike<number> | readonly bigint[]): CdFields {
  const w = toWords(words);
  const w0 = (w[0] ?? 0) >>> 0;
  const w1 = (w[1] ?? 0) >>> 0;
  const w2 = (w[2] ?? 0) >>> 0;
  const w3 = (w[3] ?? 0) >>> 0;
  const w4 = (w[4] ?? 0) >>> 0;
  const w5 = (w[5] ?? 0) >>> 0;
  return {
    t0sz: w0 & 0x3f,
    tg0: (w0 >>> 6) & 3,
    ir0: (w0 >>> 8) & 3,
    or0: (w0 >>> 10) & 3,
    sh0: (w0 >>> 12) & 3,
    epd0: (w0 & (1 << 14)) !== 0,
    endi: (w0 & (1 << 15)) !== 0,
    t1sz: (w0 >>> 16) & 0x3f,
    tg1: (w0 >>> 22) & 3,
    ir1: (w0 >>> 24) & 3,
    or1: (w0 >>> 26) & 3,
    sh1: (w0 >>> 28) & 3,
    epd1: (w0 & (1 << 30)) !== 0,
    v: w0 >>> 31 === 1,
    ips: w1 & 7,
    affd: (w1 & (1 << 3)) !== 0,
    wxn: (w1 & (1 << 4)) !== 0,
    uwxn: (w1 & (1 << 5)) !== 0,
    tbi0: (w1 & (1 << 6)) !== 0,
    tbi1: (w1 & (1 << 7)) !== 0,
    pan: (w1 & (1 << 8)) !== 0,
    aa64: (w1 & (1 << 9)) !== 0,
    hd: (w1 & (1 << 10)) !== 0,
    ha: (w1 & (1 << 11)) !== 0,
    s: (w1 & (1 << 12)) !== 0,
    r: (w1 & (1 << 13)) !== 0,
    a: (w1 & (1 << 14)) !== 0,
    aset: (w1 & (1 << 15)) !== 0,
    asid: w1 >>> 16,
    nscfg0: (w2 & 1) !== 0,
    had0: (w2 & 2) !== 0,
    haft: (w2 & 8) !== 0,
    ttb0: ((w2 & 0xffff_fff0) >>> 0) + (w3 & 0xf_ffff) * TWO32,
    nscfg1: (w4 & 1) !== 0,
    had1: (w4 & 2) !== 0,
    ttb1: ((w4 & 0xffff_fff0) >>> 0) + (w5 & 0xf_ffff) * TWO32,
    mair0: (w[6] ?? 0) >>> 0,
    mair1: (w[7] ?? 0) >>> 0,
    amair0: (w[8] ?? 0) >>> 0,
    amair1: (w[9] ?? 0) >>> 0,
  };
}

/**
 * Granule size (log2 bytes) of a TG1 field (1 16K, 2 4K, 3 64K), or 0 when reserved (0) or not
 * advertised by IDR5.
 * @param tg1 - the 2-bit field
 * @param config - the SMMU's granule support
 */
export function tg1GranuleShift(
  tg1: number,
  config: Pick<SmmuHwConfig, 'granule4k' | 'granule16k' | 'granule64k'>,
): number {
  if (tg1 === 1) return config.granule16k ? 14 : 0;
  if (tg1 === 2) return config.granule4k ? 12 : 0;
  if (tg1 === 3) return config.granule64k ? 16 : 0;
  return 0;
}

/**
 * Check a CD's legality and derive the walker's values (digest §3.4, with the SMMU's TERM_MODEL,
 * STALL_MODEL, HTTU, granules, OAS and VAX in place of QEMU's fixed ones).
 * @param words - the descriptor (see {@link decodeCdFields})
 * @param config - the SMMU's parameters
 * @returns `{ ok: true, cd }` or `{ ok: false, reason }` (reported as C_BAD_CD)
 */
export function decodeCd(words: ArrayLike<number> | readonly bigint[], config: SmmuHwConfig): CdDecodeResult {
  return checkCd(decodeCdFields(words), config);
}

function bad(reason: BadCdReason): CdDecodeResult {
  return { ok: false, reason };
}

/**
 * The legality check of {@link decodeCd} on already-read fields.
 * @param f - the raw fields
 * @param config - the SMMU's parameters
 * @returns `{ ok: true, cd }` or `{ ok: false, reason }`
 */
export function checkCd(f: CdFields, config: SmmuHwConfig): CdDecodeResult {
  if (!f.v) return bad('invalid');
  if (!f.aa64) return bad('aa64');
  if (!f.a && config.termModel === 1) return bad('a-term-model');
  if (f.s && config.stallModel === 'terminate') return bad('s-no-stall');
  if (!f.s && config.stallModel === 'forced') return bad('s-forced');
  if (f.ha && config.httu === 'none') return bad('ha');
  if (f.hd && config.httu !== 'hahd') return bad('hd');
  if (f.endi && !(f.epd0 && f.epd1)) return bad('endi');
  const ips = Math.min(smmuOasDecode(f.ips), config.oas);
  let tg0Shift = 0;
  let outputBits0 = 0;
  if (!f.epd0) {
    tg0Shift = tg0GranuleShift(f.tg0, config);
    if (tg0Shift === 0) return bad('tg0');
    if (f.t0sz > 39 || f.t0sz < (config.vax && tg0Shift === 16 ? 12 : 16)) return bad('t0sz');
    outputBits0 = tg0Shift === 16 ? ips : Math.min(ips, 48);
    if (f.ttb0 >= 2 ** outputBits0) return bad('ttb0');
  }
  let tg1Shift = 0;
  let outputBits1 = 0;
  if (!f.epd1) {
    tg1Shift = tg1GranuleShift(f.tg1, config);
    if (tg1Shift === 0) return bad('tg1');
    if (f.t1sz > 39 || f.t1sz < (config.vax && tg1Shift === 16 ? 12 : 16)) return bad('t1sz');
    outputBits1 = tg1Shift === 16 ? ips : Math.min(ips, 48);
    if (f.ttb1 >= 2 ** outputBits1) return bad('ttb1');
  }
  // Built as one literal (not a spread): object spread of this many properties is slow in V8.
  const cd: Cd = {
    t0sz: f.t0sz,
    tg0: f.tg0,
    ir0: f.ir0,
    or0: f.or0,
    sh0: f.sh0,
    epd0: f.epd0,
    endi: f.endi,
    t1sz: f.t1sz,
    tg1: f.tg1,
    ir1: f.ir1,
    or1: f.or1,
    sh1: f.sh1,
    epd1: f.epd1,
    v: f.v,
    ips: f.ips,
    affd: f.affd,
    wxn: f.wxn,
    uwxn: f.uwxn,
    tbi0: f.tbi0,
    tbi1: f.tbi1,
    pan: f.pan,
    aa64: f.aa64,
    hd: f.hd,
    ha: f.ha,
    s: f.s,
    r: f.r,
    a: f.a,
    aset: f.aset,
    asid: f.asid,
    nscfg0: f.nscfg0,
    had0: f.had0,
    haft: f.haft,
    ttb0: f.ttb0,
    nscfg1: f.nscfg1,
    had1: f.had1,
    ttb1: f.ttb1,
    mair0: f.mair0,
    mair1: f.mair1,
    amair0: f.amair0,
    amair1: f.amair1,
    tg0Shift,
    tg1Shift,
    outputBits0,
    outputBits1,
    haEffective: f.ha,
    hdEffective: f.hd && f.ha,
    had0Effective: f.had0 && config.had,
    had1Effective: f.had1 && config.had,
    tagAsid: config.asid16 ? f.asid : f.asid & 0xff,
  };
  return { ok: true, cd };
}

/** Every field of a CD at 0 / false. */
export const CD_FIELDS_ZERO: CdFields = Object.freeze(decodeCdFields([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));

function b(x: boolean): number {
  return x ? 1 : 0;
}

/**
 * Build a CD from named fields (unnamed ones 0 / false); values are masked to their widths and
 * addresses to their aligned bits.
 * @param fields - the fields to set
 * @returns the 64-byte descriptor as 16 little-endian u32 words (DW5..DW7 zero)
 */
export function encodeCd(fields: Partial<CdFields>): Uint32Array {
  const f = { ...CD_FIELDS_ZERO, ...fields };
  const w = new Uint32Array(16);
  w[0] =
    (f.t0sz & 0x3f) |
    ((f.tg0 & 3) << 6) |
    ((f.ir0 & 3) << 8) |
    ((f.or0 & 3) << 10) |
    ((f.sh0 & 3) << 12) |
    (b(f.epd0) << 14) |
    (b(f.endi) << 15) |
    ((f.t1sz & 0x3f) << 16) |
    ((f.tg1 & 3) << 22) |
    ((f.ir1 & 3) << 24) |
    ((f.or1 & 3) << 26) |
    ((f.sh1 & 3) << 28) |
    (b(f.epd1) << 30) |
    (b(f.v) << 31);
  w[1] =
    (f.ips & 7) |
    (b(f.affd) << 3) |
    (b(f.wxn) << 4) |
    (b(f.uwxn) << 5) |
    (b(f.tbi0) << 6) |
    (b(f.tbi1) << 7) |
    (b(f.pan) << 8) |
    (b(f.aa64) << 9) |
    (b(f.hd) << 10) |
    (b(f.ha) << 11) |
    (b(f.s) << 12) |
    (b(f.r) << 13) |
    (b(f.a) << 14) |
    (b(f.aset) << 15) |
    ((f.asid & 0xffff) << 16);
  w[2] = b(f.nscfg0) | (b(f.had0) << 1) | (b(f.haft) << 3) | ((f.ttb0 % TWO32) & 0xffff_fff0);
  w[3] = Math.floor(f.ttb0 / TWO32) & 0xf_ffff;
  w[4] = b(f.nscfg1) | (b(f.had1) << 1) | ((f.ttb1 % TWO32) & 0xffff_fff0);
  w[5] = Math.floor(f.ttb1 / TWO32) & 0xf_ffff;
  w[6] = f.mair0;
  w[7] = f.mair1;
  w[8] = f.amair0;
  w[9] = f.amair1;
  return w;
}
