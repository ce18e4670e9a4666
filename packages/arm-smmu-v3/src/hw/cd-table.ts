/**
 * Context descriptor lookup: SubstreamID selection by the STE (S1CDMax, S1DSS) and the fetch of a
 * CD through a linear or two-level CD table, reporting C_BAD_SUBSTREAMID / F_STREAM_DISABLED /
 * F_CD_FETCH / C_BAD_CD.
 *
 * @remarks
 * Digest §3.2 (formats, L1CD, SSID rules) and §7.1 steps 9–11. For a nested STE (Config 0b111)
 * S1ContextPtr and L1CD.L2Ptr are IPAs: the caller passes a {@link CdIpaTranslate} that runs them
 * through stage 2 (faults are its events, reported as they come). The configuration cache
 * ({@link SmmuConfigCache}) calls the pieces exported here; {@link fetchCd} is the uncached lookup.
 */

import { BusError, type PhysicalMemory } from '@iommu-ts/mm';
import { type BadCdReason, CD_SIZE, type Cd, decodeCd } from './context-descriptor.js';
import { type SmmuEvent, smmuEvent } from './events.js';
import type { SmmuHwConfig } from './smmu-config.js';
import { STE_S1DSS, STE_S1FMT, type Ste } from './ste.js';

/** Size of an L1 context descriptor in bytes. */
export const L1CD_SIZE = 8;

/**
 * Stage-2 translation of a CD-table address for nested STEs: returns the PA, or the stage-2 fault
 * event to report (CLASS=CD, S2=1, built by the translator).
 */
export type CdIpaTranslate = (ipa: number) => number | SmmuEvent;

/** A decoded L1 context descriptor (digest §3.2). */
export interface L1cd {
  /** V (bit 0). */
  readonly v: boolean;
  /** L2Ptr (bits 51:12): address of the leaf CD table. */
  readonly l2Ptr: number;
}

/**
 * Decode an L1CD from its two 32-bit halves.
 * @param lo - bits 31:0
 * @param hi - bits 63:32
 */
export function decodeL1cd(lo: number, hi: number): L1cd {
  return { v: (lo & 1) !== 0, l2Ptr: ((lo & 0xffff_f000) >>> 0) + (hi & 0xf_ffff) * 0x1_0000_0000 };
}

/**
 * Encode an L1CD (what Linux's `arm_smmu_write_cd_l1_desc` stores).
 * @param desc - V and L2Ptr
 * @returns the 64-bit descriptor
 */
export function encodeL1cd(desc: L1cd): bigint {
  return (BigInt(desc.l2Ptr) & 0x000f_ffff_ffff_f000n) | (desc.v ? 1n : 0n);
}

/**
 * log2 of the CDs per leaf table of a two-level CD table: 6 for S1Fmt 1 (4 KiB leaves), 10 for
 * S1Fmt 2 (64 KiB leaves); 0 for a linear table.
 * @param ste - the STE (S1Fmt, S1CDMax)
 */
export function cdLeafBits(ste: Pick<Ste, 's1Fmt' | 's1CdMax'>): number {
  if (ste.s1CdMax === 0) return 0;
  if (ste.s1Fmt === STE_S1FMT.L2_4K) return 6;
  if (ste.s1Fmt === STE_S1FMT.L2_64K) return 10;
  return 0;
}

/**
 * Which CD a transaction uses (digest §3.2 SSID rules, §7.1 step 9):
 * `{ kind: 'cd', index }`, `{ kind: 's1-bypass' }` (no SubstreamID, S1DSS = bypass), or a fault
 * with its event type and reason.
 */
export type SubstreamSelection =
  | { readonly kind: 'cd'; readonly index: number }
  | { readonly kind: 's1-bypass' }
  | {
      readonly kind: 'fault';
      readonly type: 'C_BAD_SUBSTREAMID' | 'F_STREAM_DISABLED';
      readonly reason: SubstreamFailure;
    };

/**
 * Why a SubstreamID was refused:
 * - `'ssid-no-substreams'`: a SubstreamID with S1CDMax = 0 → C_BAD_SUBSTREAMID;
 * - `'ssid-range'`: SSID at or beyond 2^S1CDMax → C_BAD_SUBSTREAMID;
 * - `'ssid0-reserved'`: SSID 0 with S1DSS = 2 (CD 0 is the no-SubstreamID context) →
 *   F_STREAM_DISABLED (Arm IHI 0070 §5.2 S1DSS; the digest's C_BAD_SUBSTREAMID is not what the
 *   architecture says);
 * - `'stream-disabled'`: no SubstreamID with S1DSS = 0 (or the reserved 3) → F_STREAM_DISABLED.
 */
export type SubstreamFailure = 'ssid-no-substreams' | 'ssid-range' | 'ssid0-reserved' | 'stream-disabled';

const SEL_CD0: SubstreamSelection = Object.freeze({ kind: 'cd', index: 0 });
const SEL_BYPASS: SubstreamSelection = Object.freeze({ kind: 's1-bypass' });

/**
 * Apply an STE's SubstreamID rules to a transaction (no memory access).
 * @param ste - a stage-1 STE (Config 0b101 or 0b111)
 * @param ssv - the transaction carries a SubstreamID
 * @param ssid - the SubstreamID (ignored without `ssv`)
 * @returns the CD index to fetch, stage-1 bypass, or the fault
 */
export function selectSubstream(
  ste: Pick<Ste, 's1CdMax' | 's1Dss'>,
  ssv: boolean,
  ssid: number,
): SubstreamSelection {
  if (!ssv) {
    if (ste.s1CdMax === 0) return SEL_CD0;
    if (ste.s1Dss === STE_S1DSS.SSID0) return SEL_CD0;
    if (ste.s1Dss === STE_S1DSS.BYPASS) return SEL_BYPASS;
    return { kind: 'fault', type: 'F_STREAM_DISABLED', reason: 'stream-disabled' };
  }
  if (ste.s1CdMax === 0) return { kind: 'fault', type: 'C_BAD_SUBSTREAMID', reason: 'ssid-no-substreams' };
  if (ssid >= 2 ** ste.s1CdMax) return { kind: 'fault', type: 'C_BAD_SUBSTREAMID', reason: 'ssid-range' };
  if (ssid === 0 && ste.s1Dss === STE_S1DSS.SSID0)
    return { kind: 'fault', type: 'F_STREAM_DISABLED', reason: 'ssid0-reserved' };
  return { kind: 'cd', index: ssid };
}

/**
 * Why a CD lookup failed:
 * - a {@link SubstreamFailure} (C_BAD_SUBSTREAMID / F_STREAM_DISABLED);
 * - `'l1cd-invalid'`: L1CD.V = 0 → C_BAD_SUBSTREAMID;
 * - `'l1cd-fetch'` / `'cd-fetch'`: bus error → F_CD_FETCH with FetchAddr;
 * - `'s2-fault'`: nested stage-2 translation of a table address failed (the translator's event);
 * - a {@link BadCdReason}: the CD is invalid or illegal → C_BAD_CD.
 */
export type CdFetchFailure =
  | SubstreamFailure
  | 'l1cd-invalid'
  | 'l1cd-fetch'
  | 'cd-fetch'
  | 's2-fault'
  | BadCdReason;

/**
 * Result of a CD lookup: the CD (and its index and PA), stage-1 bypass, or the event to report.
 */
export type CdFetchResult =
  | { readonly kind: 'cd'; readonly cd: Cd; readonly index: number; readonly cdAddr: number }
  | { readonly kind: 's1-bypass' }
  | { readonly kind: 'fault'; readonly event: SmmuEvent; readonly reason: CdFetchFailure };

/**
 * A `kind: 'fault'` {@link CdFetchResult} with SID, SSV/SSID and (fetch aborts) FetchAddr. The
 * FetchAddr goes to DW3, where Linux reads it (QEMU writes F_CD_FETCH's address to DW2).
 * @param sid - StreamID
 * @param ssv - the transaction carried a SubstreamID
 * @param ssid - the SubstreamID
 * @param reason - why
 * @param fetchAddr - the address whose read failed (fetch aborts)
 */
export function cdFetchFailure(
  sid: number,
  ssv: boolean,
  ssid: number,
  reason: Exclude<CdFetchFailure, 's2-fault'>,
  fetchAddr?: number,
): CdFetchResult {
  let type: 'C_BAD_SUBSTREAMID' | 'F_STREAM_DISABLED' | 'F_CD_FETCH' | 'C_BAD_CD';
  switch (reason) {
    case 'ssid-no-substreams':
    case 'ssid-range':
    case 'l1cd-invalid':
      type = 'C_BAD_SUBSTREAMID';
      break;
    case 'stream-disabled':
    case 'ssid0-reserved':
      type = 'F_STREAM_DISABLED';
      break;
    case 'l1cd-fetch':
    case 'cd-fetch':
      type = 'F_CD_FETCH';
      break;
    default:
      type = 'C_BAD_CD';
  }
  const event = smmuEvent(type, sid, {
    ssv,
    ssid: ssv ? ssid : 0,
    ...(fetchAddr === undefined ? {} : { fetchAddr: BigInt(fetchAddr) }),
  });
  return { kind: 'fault', event, reason };
}

/**
 * PA (IPA for nested) of the L1CD covering CD `index` of a two-level CD table.
 * @param ste - the STE
 * @param index - CD index (SubstreamID)
 */
export function l1cdAddress(ste: Pick<Ste, 's1ContextPtr' | 's1Fmt' | 's1CdMax'>, index: number): number {
  return ste.s1ContextPtr + Math.floor(index / 2 ** cdLeafBits(ste)) * L1CD_SIZE;
}

/**
 * Translate a table address for a nested STE (identity otherwise).
 * @returns the PA or the stage-2 fault event
 */
function toPa(addr: number, translate: CdIpaTranslate | undefined): number | SmmuEvent {
  return translate === undefined ? addr : translate(addr);
}

/**
 * Read the L1CD at an address (IPA for nested).
 * @param memory - physical memory
 * @param addr - the L1CD's address
 * @param sid - StreamID (events)
 * @param ssv - SSV (events)
 * @param ssid - SSID (events)
 * @param translate - stage-2 translation for nested STEs
 * @returns the descriptor, or the fault result (F_CD_FETCH or the stage-2 event)
 */
export function readL1cd(
  memory: PhysicalMemory,
  addr: number,
  sid: number,
  ssv: boolean,
  ssid: number,
  translate?: CdIpaTranslate,
): L1cd | CdFetchResult {
  const pa = toPa(addr, translate);
  if (typeof pa !== 'number') return { kind: 'fault', event: pa, reason: 's2-fault' };
  try {
    return decodeL1cd(memory.read32(pa), memory.read32(pa + 4));
  } catch (e) {
    if (e instanceof BusError) return cdFetchFailure(sid, ssv, ssid, 'l1cd-fetch', pa);
    throw e;
  }
}

/**
 * Read and decode the CD at an address (IPA for nested).
 * @param memory - physical memory
 * @param addr - the CD's address
 * @param index - CD index (returned in the result)
 * @param sid - StreamID (events)
 * @param ssv - SSV (events)
 * @param ssid - SSID (events)
 * @param config - the SMMU's parameters
 * @param translate - stage-2 translation for nested STEs
 * @returns the CD, or F_CD_FETCH / C_BAD_CD / the stage-2 event
 */
export function readCd(
  memory: PhysicalMemory,
  addr: number,
  index: number,
  sid: number,
  ssv: boolean,
  ssid: number,
  config: SmmuHwConfig,
  translate?: CdIpaTranslate,
): CdFetchResult {
  const pa = toPa(addr, translate);
  if (typeof pa !== 'number') return { kind: 'fault', event: pa, reason: 's2-fault' };
  const words = new Uint32Array(10);
  try {
    for (let i = 0; i < 10; i++) words[i] = memory.read32(pa + i * 4);
  } catch (e) {
    if (e instanceof BusError) return cdFetchFailure(sid, ssv, ssid, 'cd-fetch', pa);
    throw e;
  }
  const r = decodeCd(words, config);
  return r.ok ? { kind: 'cd', cd: r.cd, index, cdAddr: pa } : cdFetchFailure(sid, ssv, ssid, r.reason);
}

/**
 * Address (IPA for nested) of CD `index`, given the L1CD when the table is two-level.
 * @param ste - the STE
 * @param index - CD index
 * @param l1 - the L1CD covering `index` (two-level tables only; must be valid)
 */
export function cdAddress(
  ste: Pick<Ste, 's1ContextPtr' | 's1Fmt' | 's1CdMax'>,
  index: number,
  l1?: L1cd,
): number {
  const leafBits = cdLeafBits(ste);
  if (leafBits === 0 || l1 === undefined) return ste.s1ContextPtr + index * CD_SIZE;
  return l1.l2Ptr + (index % 2 ** leafBits) * CD_SIZE;
}

/**
 * Look up the CD a transaction uses, without caching (digest §3.2; §7.1 steps 9–11).
 * @param memory - physical memory
 * @param ste - a decoded stage-1 or nested STE
 * @param sid - StreamID
 * @param ssv - the transaction carries a SubstreamID
 * @param ssid - the SubstreamID (ignored without `ssv`)
 * @param config - the SMMU's parameters
 * @param translate - stage-2 translation of table addresses, for a nested STE
 * @returns the CD, `'s1-bypass'`, or the event: C_BAD_SUBSTREAMID (SSID rules, L1CD.V = 0),
 *   F_STREAM_DISABLED, F_CD_FETCH (bus error on the L1CD or CD, with FetchAddr), C_BAD_CD, or the
 *   translator's stage-2 fault
 */
export function fetchCd(
  memory: PhysicalMemory,
  ste: Ste,
  sid: number,
  ssv: boolean,
  ssid: number,
  config: SmmuHwConfig,
  translate?: CdIpaTranslate,
): CdFetchResult {
  const sel = selectSubstream(ste, ssv, ssid);
  if (sel.kind === 's1-bypass') return sel;
  if (sel.kind === 'fault') return cdFetchFailure(sid, ssv, ssid, sel.reason);
  let l1: L1cd | undefined;
  if (cdLeafBits(ste) !== 0) {
    const r = readL1cd(memory, l1cdAddress(ste, sel.index), sid, ssv, ssid, translate);
    if ('kind' in r) return r;
    if (!r.v) return cdFetchFailure(sid, ssv, ssid, 'l1cd-invalid');
    l1 = r;
  }
  return readCd(memory, cdAddress(ste, sel.index, l1), sel.index, sid, ssv, ssid, config, translate);
}
