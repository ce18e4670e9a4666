/**
 * Stream table lookup: from a StreamID to its STE through a linear or two-level stream table in
 * physical memory, reporting C_BAD_STREAMID / F_STE_FETCH / C_BAD_STE as the architecture does.
 *
 * @remarks
 * Digest §2.1 (formats, L1STD layout, lookup outcomes) and §7.1 steps 2–5. The SMMU's
 * configuration cache ({@link SmmuConfigCache}) calls the pieces exported here; {@link fetchSte}
 * is the uncached lookup.
 */

import { BusError, type PhysicalMemory } from '@iommu-ts/mm';
import { type SmmuEvent, smmuEvent } from './events.js';
import type { SmmuHwConfig } from './smmu-config.js';
import { type BadSteReason, decodeSte, STE_SIZE, type Ste } from './ste.js';

/** Size of an L1 stream table descriptor in bytes. */
export const L1STD_SIZE = 8;

/** STRTAB_BASE_CFG.FMT: `'linear'` (0) or `'2-level'` (1). */
export type StreamTableFormat = 'linear' | '2-level';

/** Where the stream table is and how it is indexed (STRTAB_BASE and STRTAB_BASE_CFG, digest §1.9). */
export interface StreamTableConfig {
  /** PA of the linear table or of the L1 table (STRTAB_BASE.ADDR, bits 51:6). */
  readonly base: number;
  /** STRTAB_BASE_CFG.LOG2SIZE: log2 of the number of StreamIDs the table covers. */
  readonly log2size: number;
  /** STRTAB_BASE_CFG.FMT. */
  readonly fmt: StreamTableFormat;
  /** STRTAB_BASE_CFG.SPLIT: StreamID bits resolved by an L2 table (two-level only). */
  readonly split: number;
}

/**
 * The stream table configuration held by STRTAB_BASE / STRTAB_BASE_CFG register values.
 * @param strtabBase - STRTAB_BASE (64 bits; ADDR = bits 51:6, RA bit 62 ignored)
 * @param strtabBaseCfg - STRTAB_BASE_CFG (LOG2SIZE 5:0, SPLIT 10:6, FMT 17:16; FMT 2/3 read as linear)
 * @returns the configuration
 */
export function streamTableConfig(strtabBase: bigint | number, strtabBaseCfg: number): StreamTableConfig {
  const b = BigInt(strtabBase) & 0x000f_ffff_ffff_ffc0n;
  return {
    base: Number(b),
    log2size: strtabBaseCfg & 0x3f,
    fmt: ((strtabBaseCfg >>> 16) & 3) === 1 ? '2-level' : 'linear',
    split: (strtabBaseCfg >>> 6) & 0x1f,
  };
}

/** A decoded L1 stream table descriptor (digest §2.1). */
export interface L1std {
  /** SPAN (bits 4:0): 0 = no L2 table, else the L2 table holds 2^(SPAN − 1) STEs. */
  readonly span: number;
  /** L2Ptr (bits 51:6): PA of the L2 STE array. */
  readonly l2Ptr: number;
}

/**
 * Decode an L1STD from its two 32-bit halves.
 * @param lo - bits 31:0
 * @param hi - bits 63:32
 */
export function decodeL1std(lo: number, hi: number): L1std {
  return { span: lo & 0x1f, l2Ptr: ((lo & 0xffff_ffc0) >>> 0) + (hi & 0xf_ffff) * 0x1_0000_0000 };
}

/**
 * Encode an L1STD (what Linux's `arm_smmu_write_strtab_l1_desc` stores).
 * @param desc - SPAN and L2Ptr
 * @returns the 64-bit descriptor
 */
export function encodeL1std(desc: L1std): bigint {
  return (BigInt(desc.l2Ptr) & 0x000f_ffff_ffff_ffc0n) | BigInt(desc.span & 0x1f);
}

/**
 * Number of StreamID bits a table resolves: min(LOG2SIZE, IDR1.SIDSIZE).
 * @param strtab - the table
 * @param config - the SMMU's parameters
 */
export function streamTableSidBits(strtab: StreamTableConfig, config: Pick<SmmuHwConfig, 'sidBits'>): number {
  return Math.min(strtab.log2size, config.sidBits);
}

/**
 * Why a stream table lookup failed:
 * - `'sid-range'`: StreamID at or beyond 2^min(LOG2SIZE, SIDSIZE) → C_BAD_STREAMID;
 * - `'l1-fetch'`: bus error reading the L1STD → F_STE_FETCH;
 * - `'l1-invalid'`: L1STD.SPAN = 0 → C_BAD_STREAMID;
 * - `'l2-span'`: L2 index at or beyond 2^(SPAN − 1) → C_BAD_STREAMID (architecture; QEMU
 *   reports C_BAD_STE with a limit one bit looser);
 * - `'ste-fetch'`: bus error reading the STE → F_STE_FETCH;
 * - a {@link BadSteReason}: the STE is invalid or illegal → C_BAD_STE.
 */
export type SteFetchFailure =
  | 'sid-range'
  | 'l1-fetch'
  | 'l1-invalid'
  | 'l2-span'
  | 'ste-fetch'
  | BadSteReason;

/** Result of an STE lookup: the decoded STE and where it is, or the event to report. */
export type SteFetchResult =
  | { readonly ok: true; readonly ste: Ste; readonly steAddr: number }
  | { readonly ok: false; readonly event: SmmuEvent; readonly reason: SteFetchFailure };

/**
 * Where the STE of `sid` lies in a two-level table given its L1STD, or the failure.
 * @param desc - the L1STD covering `sid`
 * @param strtab - the table (its SPLIT)
 * @param sid - StreamID
 * @returns the STE's PA, or `'l1-invalid'` / `'l2-span'`
 */
export function l2SteAddress(
  desc: L1std,
  strtab: StreamTableConfig,
  sid: number,
): number | 'l1-invalid' | 'l2-span' {
  if (desc.span === 0) return 'l1-invalid';
  // SPAN above SPLIT + 1 is treated as SPLIT + 1 (the L2 table covers at most 2^SPLIT StreamIDs).
  const span = Math.min(desc.span, strtab.split + 1);
  const l2index = sid % 2 ** strtab.split;
  if (l2index >= 2 ** (span - 1)) return 'l2-span';
  return desc.l2Ptr + l2index * STE_SIZE;
}

/**
 * PA of the L1STD covering `sid` in a two-level table.
 * @param strtab - the table
 * @param sid - StreamID
 */
export function l1stdAddress(strtab: StreamTableConfig, sid: number): number {
  return strtab.base + Math.floor(sid / 2 ** strtab.split) * L1STD_SIZE;
}

/**
 * Read an L1STD.
 * @param memory - physical memory
 * @param pa - its address
 * @returns the descriptor
 * @throws BusError when `pa` is outside RAM
 */
export function readL1std(memory: PhysicalMemory, pa: number): L1std {
  return decodeL1std(memory.read32(pa), memory.read32(pa + 4));
}

/**
 * Read DW0..DW3 of a 64-byte structure (STE or CD) as 8 u32 words, plus DW4 when `words` is 10.
 * @param memory - physical memory
 * @param pa - its address
 * @param words - number of u32 words to read (8 or 10)
 * @returns the words
 * @throws BusError when the structure is outside RAM
 */
export function readStructWords(memory: PhysicalMemory, pa: number, words = 8): Uint32Array {
  const w = new Uint32Array(words);
  for (let i = 0; i < words; i++) w[i] = memory.read32(pa + i * 4);
  return w;
}

/** An `ok: false` {@link SteFetchResult}. */
export function steFetchFailure(sid: number, reason: SteFetchFailure, fetchAddr?: number): SteFetchResult {
  const type =
    reason === 'sid-range' || reason === 'l1-invalid' || reason === 'l2-span'
      ? 'C_BAD_STREAMID'
      : reason === 'l1-fetch' || reason === 'ste-fetch'
        ? 'F_STE_FETCH'
        : 'C_BAD_STE';
  const event = smmuEvent(type, sid, fetchAddr === undefined ? {} : { fetchAddr: BigInt(fetchAddr) });
  return { ok: false, event, reason };
}

/**
 * Read and decode the STE at `pa`.
 * @param memory - physical memory
 * @param pa - the STE's address
 * @param sid - StreamID (for the event)
 * @param config - the SMMU's parameters
 * @returns the STE, or F_STE_FETCH (bus error) / C_BAD_STE
 */
export function readSte(
  memory: PhysicalMemory,
  pa: number,
  sid: number,
  config: SmmuHwConfig,
): SteFetchResult {
  let words: Uint32Array;
  try {
    words = readStructWords(memory, pa);
  } catch (e) {
    if (isBusError(e)) return steFetchFailure(sid, 'ste-fetch', pa);
    throw e;
  }
  const r = decodeSte(words, config);
  return r.ok ? { ok: true, ste: r.ste, steAddr: pa } : steFetchFailure(sid, r.reason);
}

/**
 * Whether a thrown value is `PhysicalMemory`'s bus error (an access outside RAM).
 * @param e - the thrown value
 */
export function isBusError(e: unknown): boolean {
  return e instanceof BusError;
}

/**
 * Look up the STE of a StreamID without any caching (digest §2.1; §7.1 steps 2–5).
 * @param memory - physical memory holding the table
 * @param strtab - the stream table configuration
 * @param sid - StreamID (u32)
 * @param config - the SMMU's parameters
 * @returns the decoded STE and its PA, or the event: C_BAD_STREAMID (SID out of range, L1STD
 *   invalid or L2 index beyond its span), F_STE_FETCH (bus error on the L1STD or the STE, with
 *   FetchAddr), C_BAD_STE (invalid or illegal STE)
 */
export function fetchSte(
  memory: PhysicalMemory,
  strtab: StreamTableConfig,
  sid: number,
  config: SmmuHwConfig,
): SteFetchResult {
  if (sid >= 2 ** streamTableSidBits(strtab, config)) return steFetchFailure(sid, 'sid-range');
  if (strtab.fmt === 'linear') return readSte(memory, strtab.base + sid * STE_SIZE, sid, config);
  const l1pa = l1stdAddress(strtab, sid);
  let desc: L1std;
  try {
    desc = readL1std(memory, l1pa);
  } catch (e) {
    if (isBusError(e)) return steFetchFailure(sid, 'l1-fetch', l1pa);
    throw e;
  }
  const pa = l2SteAddress(desc, strtab, sid);
  if (typeof pa !== 'number') return steFetchFailure(sid, pa);
  return readSte(memory, pa, sid, config);
}
