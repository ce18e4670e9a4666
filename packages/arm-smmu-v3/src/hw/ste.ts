/**
 * Stream table entries (STEs): the decoded {@link Ste}, its decoder with the legality checks that
 * turn an entry into a C_BAD_STE event, and an encoder that builds the 64-byte entry by field name.
 *
 * @remarks
 * Layout of digest §2.2 (Arm IHI 0070 STE; Linux `STRTAB_STE_*` in arm-smmu-v3.h; QEMU
 * `STE_*` in smmuv3-common.h). Words are the little-endian 32-bit view of the entry: word 2k =
 * DWk[31:0], word 2k+1 = DWk[63:32]. Addresses are plain numbers (at most 52 bits, exact in a
 * double); decoding does no bigint arithmetic.
 */

import type { SmmuHwConfig } from './smmu-config.js';
import { smmuOasDecode } from './smmu-config.js';

/** Size of an STE in bytes (8 doublewords). */
export const STE_SIZE = 64;

/** STE.Config values (DW0 bits 3:1). */
export const STE_CONFIG = Object.freeze({
  /** 0b000: every transaction is aborted without an event. */
  ABORT: 0,
  /** 0b100: stage 1 and stage 2 bypassed. */
  BYPASS: 4,
  /** 0b101: stage 1 translates, stage 2 bypassed. */
  S1_TRANS: 5,
  /** 0b110: stage 1 bypassed, stage 2 translates. */
  S2_TRANS: 6,
  /** 0b111: both stages translate (nested). */
  NESTED: 7,
} as const);

/** STE.S1Fmt values (DW0 bits 5:4). */
export const STE_S1FMT = Object.freeze({
  /** Linear table of 2^S1CDMax CDs. */
  LINEAR: 0,
  /** Two-level table, 4 KiB leaves of 64 CDs. */
  L2_4K: 1,
  /** Two-level table, 64 KiB leaves of 1024 CDs (Linux `STRTAB_STE_0_S1FMT_64K_L2`). */
  L2_64K: 2,
} as const);

/** STE.S1DSS values (DW1 bits 1:0): what a transaction without a SubstreamID gets when S1CDMax is not 0. */
export const STE_S1DSS = Object.freeze({
  /** Terminate it (F_STREAM_DISABLED). */
  TERMINATE: 0,
  /** Bypass stage 1. */
  BYPASS: 1,
  /** Use CD 0 (a transaction carrying SSID 0 is then illegal). */
  SSID0: 2,
} as const);

/** STE.STRW values (DW1 bits 31:30). */
export const STE_STRW = Object.freeze({
  /** Non-secure EL1 StreamWorld. */
  NSEL1: 0,
  /** EL2 / EL2-E2H StreamWorld. */
  EL2: 2,
} as const);

/** What an STE does with a transaction, from Config: `'abort'`, `'bypass'`, `'s1'`, `'s2'`, `'nested'`. */
export type SteKind = 'abort' | 'bypass' | 's1' | 's2' | 'nested';

/**
 * The raw fields of an STE, by the architecture's names in camelCase (digest §2.2). Numbers are
 * the field values; one-bit fields are booleans; addresses are byte addresses (the field shifted
 * into place). This is also the input of {@link encodeSte}.
 */
export interface SteFields {
  /** DW0 0: V, valid. */
  readonly v: boolean;
  /** DW0 3:1: Config (see {@link STE_CONFIG}). */
  readonly config: number;
  /** DW0 5:4: S1Fmt (see {@link STE_S1FMT}). */
  readonly s1Fmt: number;
  /** DW0 51:6: S1ContextPtr, PA of the CD table or L1CD table (64-byte aligned). */
  readonly s1ContextPtr: number;
  /** DW0 63:59: S1CDMax, log2 of the number of CDs (0: no substreams). */
  readonly s1CdMax: number;
  /** DW1 1:0: S1DSS (see {@link STE_S1DSS}). */
  readonly s1Dss: number;
  /** DW1 3:2: S1CIR, CD-table / stage-1 walk inner cacheability. */
  readonly s1Cir: number;
  /** DW1 5:4: S1COR, outer cacheability. */
  readonly s1Cor: number;
  /** DW1 7:6: S1CSH, shareability. */
  readonly s1Csh: number;
  /** DW1 11:8: S2HWU59..62. */
  readonly s2Hwu: number;
  /** DW1 12: DRE. */
  readonly dre: boolean;
  /** DW1 16:13: CONT. */
  readonly cont: number;
  /** DW1 17: DCP. */
  readonly dcp: boolean;
  /** DW1 18: PPAR, PRI responses need a PASID. */
  readonly ppar: boolean;
  /** DW1 19: MEV, events may be merged. */
  readonly mev: boolean;
  /** DW1 25: S2FWB, stage-2 forced write-back. */
  readonly s2Fwb: boolean;
  /** DW1 26: S1MPAM. */
  readonly s1Mpam: boolean;
  /** DW1 27: S1STALLD, stage-1 stalls disabled. */
  readonly s1Stalld: boolean;
  /** DW1 29:28: EATS (0 ATS off, 1 full ATS, 2 split-stage). */
  readonly eats: number;
  /** DW1 31:30: STRW (see {@link STE_STRW}). */
  readonly strw: number;
  /** DW1 35:32: MemAttr override. */
  readonly memAttr: number;
  /** DW1 36: MTCFG. */
  readonly mtcfg: boolean;
  /** DW1 40:37: ALLOCCFG. */
  readonly allocCfg: number;
  /** DW1 45:44: SHCFG (0 NSH, 1 use incoming, 2 OSH, 3 ISH). */
  readonly shcfg: number;
  /** DW1 47:46: NSCFG. */
  readonly nscfg: number;
  /** DW1 49:48: PRIVCFG (0 use incoming, 2 unprivileged, 3 privileged). */
  readonly privCfg: number;
  /** DW1 51:50: INSTCFG (0 use incoming, 2 data, 3 instruction). */
  readonly instCfg: number;
  /** DW2 15:0: S2VMID. */
  readonly s2Vmid: number;
  /** DW2 37:32: S2T0SZ (stage-2 input size = 64 − S2T0SZ). */
  readonly s2T0sz: number;
  /** DW2 39:38: S2SL0, stage-2 start level (granule dependent). */
  readonly s2Sl0: number;
  /** DW2 41:40: S2IR0. */
  readonly s2Ir0: number;
  /** DW2 43:42: S2OR0. */
  readonly s2Or0: number;
  /** DW2 45:44: S2SH0. */
  readonly s2Sh0: number;
  /** DW2 47:46: S2TG (0 4K, 1 64K, 2 16K). */
  readonly s2Tg: number;
  /** DW2 50:48: S2PS, output size in the OAS encoding. */
  readonly s2Ps: number;
  /** DW2 51: S2AA64, AArch64 stage-2 tables. */
  readonly s2Aa64: boolean;
  /** DW2 52: S2ENDI, big-endian stage-2 tables. */
  readonly s2Endi: boolean;
  /** DW2 53: S2AFFD, stage-2 access-flag faults disabled. */
  readonly s2Affd: boolean;
  /** DW2 54: S2PTW, protected table walk. */
  readonly s2Ptw: boolean;
  /** DW2 55: S2HD, stage-2 hardware dirty-state update. */
  readonly s2Hd: boolean;
  /** DW2 56: S2HA, stage-2 hardware access-flag update. */
  readonly s2Ha: boolean;
  /** DW2 57: S2S, stage-2 faults stall. */
  readonly s2S: boolean;
  /** DW2 58: S2R, record stage-2 faults. */
  readonly s2R: boolean;
  /** DW3 51:4: S2TTB, stage-2 table base PA (16-byte aligned). */
  readonly s2Ttb: number;
}

/**
 * A decoded, legal STE ({@link decodeSte}): the {@link SteFields} plus values derived once for the
 * translator. Where the architecture makes a field IGNORED or makes a value behave as another, the
 * field holds the effective value: `s1CdMax` is 0 without IDR1.SSIDSIZE or stage 1; `s1Fmt` and
 * `s1Dss` are 0 without substreams and read 0b11 as 0b00; `eats` is 0 without IDR0.ATS, for
 * abort/bypass Configs and for the DPT encoding 0b11; `strw` is 0 unless IDR0.HYP and stage-1-only.
 */
export interface Ste extends SteFields {
  /** What Config does with a transaction. */
  readonly kind: SteKind;
  /** Config bit 0: stage 1 translates. */
  readonly s1Enabled: boolean;
  /** Config bit 1: stage 2 translates. */
  readonly s2Enabled: boolean;
  /**
   * VMID tag of this stream's TLB entries: S2VMID when stage 2 is implemented and the StreamWorld
   * is NS-EL1, else 0.
   */
  readonly vmid: number;
  /** Stage-2 granule as log2 bytes (12, 14 or 16); 0 when stage 2 is not enabled. */
  readonly s2GranuleShift: number;
  /** Stage-2 input (IPA) size in bits, 64 − S2T0SZ; 0 when stage 2 is not enabled. */
  readonly s2InputBits: number;
  /**
   * Stage-2 output size in bits: min(S2PS, IDR5.OAS), at most 48 unless the 64K granule; 0 when
   * stage 2 is not enabled.
   */
  readonly s2OutputBits: number;
  /** Stage-2 start level (0 … 3) from S2SL0 and S2TG; −1 when stage 2 is not enabled. */
  readonly s2StartLevel: number;
  /**
   * Number of concatenated start-level tables at S2TTB (1 … 16); 0 when stage 2 is not enabled.
   */
  readonly s2Concat: number;
  /**
   * S2TTB with the bits below the start-level table's alignment (its size including
   * concatenation, at least 16 bytes, 64 with a 52-bit output) cleared, as the SMMU uses it.
   */
  readonly s2TtbEffective: number;
  /** Stage-2 hardware access-flag update (S2HA, stage 2 enabled). */
  readonly s2HaEffective: boolean;
  /** Stage-2 hardware dirty-state update (S2HA and S2HD; S2HD alone behaves as neither). */
  readonly s2HdEffective: boolean;
}

/**
 * Why an STE is illegal (reported as C_BAD_STE), in the order {@link decodeSte} checks them
 * (Arm IHI 0070 §5.2 field rules, with the SMMU's features):
 * - `'invalid'`: V=0;
 * - `'s1-unsupported'` / `'s2-unsupported'`: Config enables a stage IDR0 does not implement;
 * - `'strw'`: STRW 0b01 / 0b11 on a stage-1-only STE of an SMMU with IDR0.HYP (else STRW is
 *   RES0 / IGNORED);
 * - `'s2vmid'`: S2VMID[15:8] not zero without IDR0.VMID16, when S2VMID tags translations;
 * - `'s2-aa64'`: S2AA64=0 (VMSAv8-32 tables: illegal with TTF = AArch64, not modelled otherwise);
 * - `'s2-tg'`: S2TG reserved (3) or a granule IDR5 does not advertise;
 * - `'s2-endi'`: S2ENDI=1 (TTENDIAN is little-endian only);
 * - `'s2-sl0'`: S2SL0=3;
 * - `'s2-t0sz'`: S2T0SZ above 39 or below max(16 (12 with 64K), 64 − IAS);
 * - `'s2-sl0-t0sz'`: start level inconsistent with the input size (more than 16 concatenated
 *   tables, or a start-level table without a single index bit);
 * - `'s2-ttb'`: S2TTB at or beyond 2^(effective S2PS), or beyond 48 bits with a 4K/16K granule;
 * - `'s2-ha'` / `'s2-hd'`: S2HA=1 without HTTU, S2HD=1 without HTTU dirty support;
 * - `'s2s-no-stall'`: S2S=1 with STALL_MODEL=1; `'s2s-forced'`: S2S=0 with STALL_MODEL=2
 *   (the latter by analogy with CD.S, unverified);
 * - `'s1cdmax'`: S1CDMax above IDR1.SSIDSIZE (SSIDSIZE not 0);
 * - `'s1fmt'`: two-level CD table (S1Fmt 1/2) without IDR0.CD2L, substreams enabled;
 * - `'s1-context-ptr'`: S1ContextPtr at or beyond 2^OAS (stage 1 only) or 2^IAS (nested)
 *   (treated as ILLEGAL here; the architecture's §3.4.3 choice is unverified);
 * - `'s1stalld'`: S1STALLD=1 with a STALL_MODEL other than 0;
 * - `'eats'`: on an SMMU with ATS and a translating Config, EATS=1 with stage 2 and S2S=1, or
 *   EATS=2 (split-stage) without Config 0b111 or with S2S=1.
 */
export type BadSteReason =
  | 'invalid'
  | 's1-unsupported'
  | 's2-unsupported'
  | 'strw'
  | 's2vmid'
  | 's2-aa64'
  | 's2-tg'
  | 's2-endi'
  | 's2-sl0'
  | 's2-t0sz'
  | 's2-sl0-t0sz'
  | 's2-ttb'
  | 's2-ha'
  | 's2-hd'
  | 's2s-no-stall'
  | 's2s-forced'
  | 's1cdmax'
  | 's1fmt'
  | 's1-context-ptr'
  | 's1stalld'
  | 'eats';

/** Result of {@link decodeSte}: the legal STE, or why it is illegal. */
export type SteDecodeResult =
  | { readonly ok: true; readonly ste: Ste }
  | { readonly ok: false; readonly reason: BadSteReason };

const TWO32 = 0x1_0000_0000;

/** The 8 words of DW0..DW3 from either 32-bit words or 64-bit bigints. */
function toWords(words: ArrayLike<number> | readonly bigint[]): ArrayLike<number> {
  if (words.length > 0 && typeof words[0] === 'bigint') {
    const dw = words as readonly bigint[];
    const out: number[] = [];
    for (let i = 0; i < 4; i++) {
      const v = BigInt.asUintN(64, dw[i] ?? 0n);
      out.push(Number(v & 0xffff_ffffn), Number(v >> 32n));
    }
    return out;
  }
  return words as ArrayLike<number>;
}

/**
 * Read the raw fields of an STE without checking them.
 * @param words - the entry as at least 8 little-endian u32 words (DW0..DW3), or at least 4
 *   64-bit bigints
 * @returns the fields
 */
export function decodeSteFields(words: ArrayLike<number> | readonly bigint[]): SteFields {
  const w = toWords(words);
  const w0 = (w[0] ?? 0) >>> 0;
  const w1 = (w[1] ?? 0) >>> 0;
  const w2 = (w[2] ?? 0) >>> 0;
  const w3 = (w[3] ?? 0) >>> 0;
  const w4 = (w[4] ?? 0) >>> 0;
  const w5 = (w[5] ?? 0) >>> 0;
  const w6 = (w[6] ?? 0) >>> 0;
  const w7 = (w[7] ?? 0) >>> 0;
  return {
    v: (w0 & 1) !== 0,
    config: (w0 >>> 1) & 7,
    s1Fmt: (w0 >>> 4) & 3,
    s1ContextPtr: ((w0 & 0xffff_ffc0) >>> 0) + (w1 & 0xf_ffff) * TWO32,
    s1CdMax: w1 >>> 27,
    s1Dss: w2 & 3,
    s1Cir: (w2 >>> 2) & 3,
    s1Cor: (w2 >>> 4) & 3,
    s1Csh: (w2 >>> 6) & 3,
    s2Hwu: (w2 >>> 8) & 0xf,
    dre: (w2 & (1 << 12)) !== 0,
    cont: (w2 >>> 13) & 0xf,
    dcp: (w2 & (1 << 17)) !== 0,
    ppar: (w2 & (1 << 18)) !== 0,
    mev: (w2 & (1 << 19)) !== 0,
    s2Fwb: (w2 & (1 << 25)) !== 0,
    s1Mpam: (w2 & (1 << 26)) !== 0,
    s1Stalld: (w2 & (1 << 27)) !== 0,
    eats: (w2 >>> 28) & 3,
    strw: w2 >>> 30,
    memAttr: w3 & 0xf,
    mtcfg: (w3 & (1 << 4)) !== 0,
    allocCfg: (w3 >>> 5) & 0xf,
    shcfg: (w3 >>> 12) & 3,
    nscfg: (w3 >>> 14) & 3,
    privCfg: (w3 >>> 16) & 3,
    instCfg: (w3 >>> 18) & 3,
    s2Vmid: w4 & 0xffff,
    s2T0sz: w5 & 0x3f,
    s2Sl0: (w5 >>> 6) & 3,
    s2Ir0: (w5 >>> 8) & 3,
    s2Or0: (w5 >>> 10) & 3,
    s2Sh0: (w5 >>> 12) & 3,
    s2Tg: (w5 >>> 14) & 3,
    s2Ps: (w5 >>> 16) & 7,
    s2Aa64: (w5 & (1 << 19)) !== 0,
    s2Endi: (w5 & (1 << 20)) !== 0,
    s2Affd: (w5 & (1 << 21)) !== 0,
    s2Ptw: (w5 & (1 << 22)) !== 0,
    s2Hd: (w5 & (1 << 23)) !== 0,
    s2Ha: (w5 & (1 << 24)) !== 0,
    s2S: (w5 & (1 << 25)) !== 0,
    s2R: (w5 & (1 << 26)) !== 0,
    s2Ttb: ((w6 & 0xffff_fff0) >>> 0) + (w7 & 0xf_ffff) * TWO32,
  };
}

/**
 * Granule size (log2 bytes) of a TG0-style field (0 4K, 1 64K, 2 16K), or 0 when reserved or
 * not advertised by IDR5.
 * @param tg - the 2-bit field
 * @param config - the SMMU's granule support
 */
export function tg0GranuleShift(
  tg: number,
  config: Pick<SmmuHwConfig, 'granule4k' | 'granule16k' | 'granule64k'>,
): number {
  if (tg === 0) return config.granule4k ? 12 : 0;
  if (tg === 1) return config.granule64k ? 16 : 0;
  if (tg === 2) return config.granule16k ? 14 : 0;
  return 0;
}

/**
 * Start level of a stage-2 walk from S2SL0: 4K granule 0→2, 1→1, 2→0; 16K/64K 0→3, 1→2, 2→1.
 * @param sl0 - S2SL0 (0 … 2)
 * @param granuleShift - 12, 14 or 16
 */
export function s2StartLevel(sl0: number, granuleShift: number): number {
  return (granuleShift === 12 ? 2 : 3) - sl0;
}

function kindOf(config: number): SteKind {
  switch (config) {
    case 4:
      return 'bypass';
    case 5:
      return 's1';
    case 6:
      return 's2';
    case 7:
      return 'nested';
    default:
      return 'abort';
  }
}

/**
 * Check an STE's legality and derive the translator's values (digest §2.3 with the SMMU's
 * features in place of QEMU's fixed ones, and the Arm IHI 0070 §5.2 rules listed in
 * {@link BadSteReason}). Config = abort (and the reserved 0b001 … 0b011, which behave as abort)
 * needs only V=1; QEMU's blanket C_BAD_STE for S1CDMax ≠ 0 and S1STALLD = 1 follows from its
 * SSIDSIZE = 0 and STALL_MODEL = 1 here.
 * @param words - the entry (see {@link decodeSteFields})
 * @param config - the SMMU's parameters
 * @returns `{ ok: true, ste }` or `{ ok: false, reason }` (reported as C_BAD_STE)
 */
export function decodeSte(
  words: ArrayLike<number> | readonly bigint[],
  config: SmmuHwConfig,
): SteDecodeResult {
  return checkSte(decodeSteFields(words), config);
}

function bad(reason: BadSteReason): SteDecodeResult {
  return { ok: false, reason };
}

/**
 * The legality check of {@link decodeSte} on already-read fields.
 * @param f - the raw fields
 * @param config - the SMMU's parameters
 * @returns `{ ok: true, ste }` or `{ ok: false, reason }`
 */
export function checkSte(f: SteFields, config: SmmuHwConfig): SteDecodeResult {
  if (!f.v) return bad('invalid');
  // Config 0b001 … 0b011 are reserved and behave as 0b000 (abort, no event).
  const kind = kindOf(f.config);
  const s1 = kind === 's1' || kind === 'nested';
  const s2 = kind === 's2' || kind === 'nested';
  let s2GranuleShift = 0;
  let s2InputBits = 0;
  let s2OutputBits = 0;
  let s2Level = -1;
  let s2Concat = 0;
  let s2TtbEffective = 0;
  let strw = 0;
  let eats = 0;
  let s1CdMax = 0;
  let s1Fmt = 0;
  let s1Dss = 0;
  if (kind !== 'abort') {
    if (s1 && !config.stage1) return bad('s1-unsupported');
    if (s2 && !config.stage2) return bad('s2-unsupported');
    if (config.hyp && s1 && !s2) {
      if ((f.strw & 1) !== 0) return bad('strw');
      strw = f.strw;
    }
    if (config.stage2 && (s1 || s2) && strw === 0 && !config.vmid16 && f.s2Vmid > 0xff) return bad('s2vmid');
    if (s2) {
      if (!f.s2Aa64) return bad('s2-aa64');
      s2GranuleShift = tg0GranuleShift(f.s2Tg, config);
      if (s2GranuleShift === 0) return bad('s2-tg');
      if (f.s2Endi) return bad('s2-endi');
      if (f.s2Sl0 === 3) return bad('s2-sl0');
      const ias = config.ttf === 'aarch32-aarch64' ? Math.max(40, config.oas) : config.oas;
      if (f.s2T0sz > 39 || f.s2T0sz < Math.max(s2GranuleShift === 16 ? 12 : 16, 64 - ias))
        return bad('s2-t0sz');
      s2InputBits = 64 - f.s2T0sz;
      s2Level = s2StartLevel(f.s2Sl0, s2GranuleShift);
      const stride = s2GranuleShift - 3;
      // Bits resolved from the start level down: one table's worth per level plus the page offset.
      const resolved = s2GranuleShift + (4 - s2Level) * stride;
      const extra = s2InputBits - resolved;
      // A start level whose table would not use a single index bit is inconsistent too.
      if (extra > 4 || s2InputBits <= resolved - stride) return bad('s2-sl0-t0sz');
      s2Concat = extra > 0 ? 2 ** extra : 1;
      s2OutputBits = Math.min(smmuOasDecode(f.s2Ps), config.oas, s2GranuleShift === 16 ? 52 : 48);
      if (f.s2Ttb >= 2 ** s2OutputBits) return bad('s2-ttb');
      // The start-level table(s) are aligned to their size (at least 64 bytes with a 52-bit output).
      const tableBytesLog2 = Math.max(s2InputBits - (resolved - stride) + 3, s2OutputBits === 52 ? 6 : 4);
      s2TtbEffective = f.s2Ttb - (f.s2Ttb % 2 ** tableBytesLog2);
      if (f.s2Ha && config.httu === 'none') return bad('s2-ha');
      if (f.s2Hd && config.httu !== 'hahd') return bad('s2-hd');
      if (f.s2S && config.stallModel === 'terminate') return bad('s2s-no-stall');
      if (!f.s2S && config.stallModel === 'forced') return bad('s2s-forced');
    }
    if (s1) {
      if (config.ssidBits !== 0) {
        if (f.s1CdMax > config.ssidBits) return bad('s1cdmax');
        s1CdMax = f.s1CdMax;
      }
      if (s1CdMax !== 0) {
        // S1Fmt 0b11 and S1DSS 0b11 are reserved and behave as 0b00.
        s1Fmt = f.s1Fmt === 3 ? 0 : f.s1Fmt;
        if (s1Fmt !== 0 && !config.twoLevelCdTable) return bad('s1fmt');
        s1Dss = f.s1Dss === 3 ? 0 : f.s1Dss;
      }
      const ptrBits = s2
        ? config.ttf === 'aarch32-aarch64'
          ? Math.max(40, config.oas)
          : config.oas
        : config.oas;
      if (f.s1ContextPtr >= 2 ** ptrBits) return bad('s1-context-ptr');
      if (f.s1Stalld && config.stallModel !== 'stall') return bad('s1stalld');
    }
    if (config.ats && (s1 || s2)) {
      if (f.eats === 1 && s2 && f.s2S) return bad('eats');
      if (f.eats === 2 && (kind !== 'nested' || f.s2S)) return bad('eats');
      // EATS 0b11 (full ATS with DPT checks) behaves as 0b00 without IDR3.DPT.
      eats = f.eats === 3 ? 0 : f.eats;
    }
  }
  // Built as one literal (not a spread): object spread of this many properties is slow in V8.
  const ste: Ste = {
    v: f.v,
    config: f.config,
    s1Fmt,
    s1ContextPtr: f.s1ContextPtr,
    s1CdMax,
    s1Dss,
    s1Cir: f.s1Cir,
    s1Cor: f.s1Cor,
    s1Csh: f.s1Csh,
    s2Hwu: f.s2Hwu,
    dre: f.dre,
    cont: f.cont,
    dcp: f.dcp,
    ppar: f.ppar,
    mev: f.mev,
    s2Fwb: f.s2Fwb,
    s1Mpam: f.s1Mpam,
    s1Stalld: f.s1Stalld,
    eats,
    strw,
    memAttr: f.memAttr,
    mtcfg: f.mtcfg,
    allocCfg: f.allocCfg,
    shcfg: f.shcfg,
    nscfg: f.nscfg,
    privCfg: f.privCfg,
    instCfg: f.instCfg,
    s2Vmid: f.s2Vmid,
    s2T0sz: f.s2T0sz,
    s2Sl0: f.s2Sl0,
    s2Ir0: f.s2Ir0,
    s2Or0: f.s2Or0,
    s2Sh0: f.s2Sh0,
    s2Tg: f.s2Tg,
    s2Ps: f.s2Ps,
    s2Aa64: f.s2Aa64,
    s2Endi: f.s2Endi,
    s2Affd: f.s2Affd,
    s2Ptw: f.s2Ptw,
    s2Hd: f.s2Hd,
    s2Ha: f.s2Ha,
    s2S: f.s2S,
    s2R: f.s2R,
    s2Ttb: f.s2Ttb,
    kind,
    s1Enabled: s1,
    s2Enabled: s2,
    vmid: config.stage2 && strw === 0 ? f.s2Vmid & (config.vmid16 ? 0xffff : 0xff) : 0,
    s2GranuleShift,
    s2InputBits,
    s2OutputBits,
    s2StartLevel: s2Level,
    s2Concat,
    s2TtbEffective,
    s2HaEffective: s2 && f.s2Ha,
    s2HdEffective: s2 && f.s2Ha && f.s2Hd,
  };
  return { ok: true, ste };
}

/** Every field of an STE at 0 / false. */
export const STE_FIELDS_ZERO: SteFields = Object.freeze(decodeSteFields([0, 0, 0, 0, 0, 0, 0, 0]));

function b(x: boolean | undefined): number {
  return x ? 1 : 0;
}

/**
 * Build an STE from named fields (unnamed ones 0 / false); values are masked to their widths and
 * addresses to their aligned bits.
 * @param fields - the fields to set
 * @returns the 64-byte entry as 16 little-endian u32 words (DW4..DW7 zero)
 */
export function encodeSte(fields: Partial<SteFields>): Uint32Array {
  const f = { ...STE_FIELDS_ZERO, ...fields };
  const w = new Uint32Array(16);
  const ctx = f.s1ContextPtr;
  const ttb = f.s2Ttb;
  w[0] = b(f.v) | ((f.config & 7) << 1) | ((f.s1Fmt & 3) << 4) | ((ctx % TWO32) & 0xffff_ffc0);
  w[1] = (Math.floor(ctx / TWO32) & 0xf_ffff) | ((f.s1CdMax & 0x1f) << 27);
  w[2] =
    (f.s1Dss & 3) |
    ((f.s1Cir & 3) << 2) |
    ((f.s1Cor & 3) << 4) |
    ((f.s1Csh & 3) << 6) |
    ((f.s2Hwu & 0xf) << 8) |
    (b(f.dre) << 12) |
    ((f.cont & 0xf) << 13) |
    (b(f.dcp) << 17) |
    (b(f.ppar) << 18) |
    (b(f.mev) << 19) |
    (b(f.s2Fwb) << 25) |
    (b(f.s1Mpam) << 26) |
    (b(f.s1Stalld) << 27) |
    ((f.eats & 3) << 28) |
    ((f.strw & 3) << 30);
  w[3] =
    (f.memAttr & 0xf) |
    (b(f.mtcfg) << 4) |
    ((f.allocCfg & 0xf) << 5) |
    ((f.shcfg & 3) << 12) |
    ((f.nscfg & 3) << 14) |
    ((f.privCfg & 3) << 16) |
    ((f.instCfg & 3) << 18);
  w[4] = f.s2Vmid & 0xffff;
  w[5] =
    (f.s2T0sz & 0x3f) |
    ((f.s2Sl0 & 3) << 6) |
    ((f.s2Ir0 & 3) << 8) |
    ((f.s2Or0 & 3) << 10) |
    ((f.s2Sh0 & 3) << 12) |
    ((f.s2Tg & 3) << 14) |
    ((f.s2Ps & 7) << 16) |
    (b(f.s2Aa64) << 19) |
    (b(f.s2Endi) << 20) |
    (b(f.s2Affd) << 21) |
    (b(f.s2Ptw) << 22) |
    (b(f.s2Hd) << 23) |
    (b(f.s2Ha) << 24) |
    (b(f.s2S) << 25) |
    (b(f.s2R) << 26);
  w[6] = (ttb % TWO32) & 0xffff_fff0;
  w[7] = Math.floor(ttb / TWO32) & 0xf_ffff;
  return w;
}

/**
 * The four 64-bit doublewords of the first half of an entry built by {@link encodeSte}, as
 * bigints (what the Linux driver's `__le64 data[8]` holds).
 * @param words - 16 (or at least 8) u32 words
 * @returns DW0..DW3
 */
export function steWordsToDwords(words: ArrayLike<number>): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < 4; i++)
    out.push((BigInt((words[2 * i + 1] ?? 0) >>> 0) << 32n) | BigInt((words[2 * i] ?? 0) >>> 0));
  return out;
}
