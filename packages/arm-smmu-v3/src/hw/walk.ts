/**
 * The SMMU model's own VMSAv8-64 translation-table walker (digest §7.2–§7.5): stage 1 and stage 2,
 * 4K/16K/64K granules, any start level, blocks, concatenated stage-2 start tables, hierarchical
 * attributes, permission checks, access-flag and dirty-state hardware updates written back to
 * memory, and address-size checks. Independent of io-pgtable.
 *
 * @remarks
 * Everything here is `number` arithmetic: input addresses are at most 52 bits (the translator
 * strips the TTB-region bits), descriptors are read as two u32 halves.
 *
 * Nested walks: a stage-1 walk with a {@link TableIpaTranslator} translates the IPA of every
 * stage-1 descriptor it reads through stage 2; a stage-2 fault there is reported with S2 = 1 and
 * CLASS = TT.
 */

import { BusError, type PhysicalMemory } from '@iommu-ts/mm';
import {
  TLB_PERM_ALL,
  TLB_PERM_PR,
  TLB_PERM_PW,
  TLB_PERM_PX,
  TLB_PERM_UR,
  TLB_PERM_UW,
  TLB_PERM_UX,
} from './tlb.js';

const TWO32 = 2 ** 32;
const TWO48 = 2 ** 48;
const POW2: number[] = [];
for (let i = 0; i <= 64; i++) POW2.push(2 ** i);

/** Parameters of one walk: a stage-1 TTB region (from a CD) or a stage-2 configuration (from an STE). */
export interface WalkParams {
  /** 1 or 2. */
  readonly stage: 1 | 2;
  /** Granule, log2 bytes: 12, 14 or 16. */
  readonly granule: number;
  /** Input address size in bits (64 − TxSZ). */
  readonly inputBits: number;
  /** Start level, 0 … 3. */
  readonly startLevel: number;
  /** Table base: PA, or IPA for a nested stage 1. */
  readonly ttb: number;
  /** Output address size in bits (effective IPS / S2PS). */
  readonly outputBits: number;
  /** Hardware access-flag update (CD.HA / STE.S2HA, honoured). */
  readonly ha: boolean;
  /** Hardware dirty-state update (CD.HD / STE.S2HD, honoured). */
  readonly hd: boolean;
  /** Access-flag faults disabled (CD.AFFD / STE.S2AFFD). */
  readonly affd: boolean;
  /** Stage 1: hierarchical attributes (APTable, XNTable) disabled (CD.HADx). */
  readonly had: boolean;
  /** Stage 1: writable implies execute-never (CD.WXN). */
  readonly wxn: boolean;
}

/**
 * Stage-1 start level for an input size and granule: `4 − ⌊(inputBits − 4) / (granule − 3)⌋`.
 * @param inputBits - 64 − TxSZ
 * @param granule - 12, 14 or 16
 */
export function stage1StartLevel(inputBits: number, granule: number): number {
  return 4 - Math.floor((inputBits - 4) / (granule - 3));
}

/** The access a walk checks: a `TLB_PERM_*` bit, and whether a write / ATS dirty update is wanted. */
export interface WalkAccess {
  /** The permission bit needed, from `tlbPermBit`; 0 for ATS requests (no check). */
  readonly need: number;
  /** A data write (dirty-state updates). */
  readonly write: boolean;
  /**
   * ATS translation without NW: perform a DBM dirty update if the page may become writable, but
   * never fault on permissions.
   */
  readonly atsWrite: boolean;
}

/** A successful walk. */
export interface WalkSuccess {
  /** Discriminant. */
  readonly ok: true;
  /** Output address of the input address. */
  readonly outputAddr: number;
  /** log2 of the leaf size (page or block). */
  readonly shift: number;
  /** Leaf level. */
  readonly level: number;
  /** `TLB_PERM_*` mask the leaf (with table attributes) allows, after any dirty update. */
  readonly perm: number;
  /** The leaf is DBM, writable-clean, and hardware dirty update is on (a write may still succeed). */
  readonly dirtyUpdatable: boolean;
  /** Stage 1: nG = 0 (global entry). */
  readonly global: boolean;
  /** PA of the leaf descriptor. */
  readonly descAddr: number;
}

/** Fault types a walk reports (digest §5.2). */
export type WalkFaultType = 'F_TRANSLATION' | 'F_ADDR_SIZE' | 'F_ACCESS' | 'F_PERMISSION' | 'F_WALK_EABT';

/** A failed walk. */
export interface WalkFailure {
  /** Discriminant. */
  readonly ok: false;
  /** Event type. */
  readonly type: WalkFaultType;
  /** Level at which it happened (−1 before the first read). */
  readonly level: number;
  /** Raised by stage 2 (including stage-2 faults on stage-1 table fetches). */
  readonly s2: boolean;
  /** CLASS: 1 (TT) for faults on a stage-1 table fetch (walk abort, or stage 2 on table IPAs), else 2 (IN). */
  readonly class: 1 | 2;
  /** The IPA stage 2 faulted on (stage-2 faults), else 0. */
  readonly ipa: number;
  /** PA of the descriptor fetch that aborted (F_WALK_EABT), else 0. */
  readonly fetchAddr: number;
  /** CLASS=TT permission faults: the table access was a read (true) or an HTTU write (false). */
  readonly ttrnw: boolean;
}

/** Result of a walk. */
export type WalkResult = WalkSuccess | WalkFailure;

/**
 * Stage-2 translation of a stage-1 table address (nested walks).
 * @param ipa - IPA of the descriptor
 * @returns `{ pa, perm }` (perm: the stage-2 `TLB_PERM_*` mask of the page) or the stage-2 failure
 */
export type TableIpaTranslator = (
  ipa: number,
) => { readonly pa: number; readonly perm: number } | WalkFailure;

/**
 * Build a {@link WalkFailure}.
 * @param type - event type
 * @param level - level
 * @param s2 - stage 2
 * @param cls - 1 TT, 2 IN
 * @param ipa - IPA (stage 2)
 * @param fetchAddr - aborted fetch PA
 * @param ttrnw - TTRnW
 */
export function walkFailure(
  type: WalkFaultType,
  level: number,
  s2: boolean,
  cls: 1 | 2,
  ipa = 0,
  fetchAddr = 0,
  ttrnw = true,
): WalkFailure {
  return { ok: false, type, level, s2, class: cls, ipa, fetchAddr, ttrnw };
}

/**
 * Stage-1 permission mask of a leaf (digest §7.3).
 * @param lo - descriptor bits 31:0
 * @param hi - descriptor bits 63:32
 * @param tbl - accumulated table restrictions: bit 0 APTable[1] (read-only), bit 1 APTable[0]
 *   (no unprivileged), bit 2 UXNTable, bit 3 PXNTable
 * @param wxn - CD.WXN
 * @returns `TLB_PERM_*` mask
 */
export function stage1Perm(lo: number, hi: number, tbl: number, wxn: boolean): number {
  const ro = (lo & 0x80) !== 0 || (tbl & 1) !== 0;
  const user = (lo & 0x40) !== 0 && (tbl & 2) === 0;
  const pw = !ro;
  const uw = user && !ro;
  // Architecture: a location writable at EL0 is never executable at EL1 (implicit PXN).
  const px =
    (hi & (1 << 21)) === 0 && (tbl & 8) === 0 && !(wxn && pw) && !((lo & 0x40) !== 0 && (lo & 0x80) === 0);
  const ux = (hi & (1 << 22)) === 0 && (tbl & 4) === 0 && !(wxn && uw);
  return (
    TLB_PERM_PR |
    (pw ? TLB_PERM_PW : 0) |
    (px ? TLB_PERM_PX : 0) |
    (user ? TLB_PERM_UR : 0) |
    (uw ? TLB_PERM_UW : 0) |
    (ux ? TLB_PERM_UX : 0)
  );
}

/**
 * Stage-2 permission mask of a leaf: S2AP bit 6 read, bit 7 write (both privilege levels); XN[1:0]
 * (bits 54:53): 0 executable, 1 not at EL1, 2 never, 3 not at EL0.
 * @param lo - descriptor bits 31:0
 * @param hi - descriptor bits 63:32
 * @returns `TLB_PERM_*` mask
 */
export function stage2Perm(lo: number, hi: number): number {
  const r = (lo & 0x40) !== 0;
  const w = (lo & 0x80) !== 0;
  const xn = (hi >>> 21) & 3;
  return (
    (r ? TLB_PERM_PR | TLB_PERM_UR : 0) |
    (w ? TLB_PERM_PW | TLB_PERM_UW : 0) |
    (xn === 0 || xn === 3 ? TLB_PERM_PX : 0) |
    (xn === 0 || xn === 1 ? TLB_PERM_UX : 0)
  );
}

/**
 * Output address in a descriptor: bits 47:granule, plus, with the 64K granule, OA[51:48] from
 * descriptor bits 15:12 (FEAT_LPA); with an output size below 52 bits non-zero OA[51:48] then
 * gives an address-size fault.
 */
function descOutput(lo: number, hi: number, granule: number): number {
  let oa = ((lo & ~((POW2[granule] as number) - 1)) >>> 0) + (hi & 0xffff) * TWO32;
  if (granule === 16) oa += ((lo >>> 12) & 0xf) * TWO48;
  return oa;
}

/** Whether a block descriptor is allowed at `level` for `granule` (no FEAT_LPA2 level-0/1 blocks). */
function blockAllowed(level: number, granule: number): boolean {
  if (granule === 12) return level === 1 || level === 2;
  return level === 2;
}

/**
 * Walk the tables for `addr` and check the access (digest §7.1 steps 13–19 for stage 1, 20–21 for
 * stage 2).
 *
 * @remarks
 * Order at the leaf: access flag (F_ACCESS if AF = 0 without HA or AFFD; access faults have
 * priority over permission faults), permissions (F_PERMISSION unless a DBM dirty update makes the
 * write legal), output address size (F_ADDR_SIZE). AF and dirty updates are written to the
 * descriptor's low word in one store, only when the walk succeeds. Table descriptors whose next
 * table lies at or beyond 2^outputBits give F_ADDR_SIZE; external aborts on descriptor reads give
 * F_WALK_EABT (CLASS = TT).
 *
 * @param memory - RAM holding the tables
 * @param p - walk parameters
 * @param addr - input address (only bits below `p.inputBits` are used by stage 1; stage 2 faults
 *   with F_TRANSLATION when `addr` is at or beyond 2^inputBits)
 * @param access - what to check
 * @param s2 - for a nested stage 1: the stage-2 translator of table addresses
 * @returns the translation or the failure
 */
export function walk(
  memory: PhysicalMemory,
  p: WalkParams,
  addr: number,
  access: WalkAccess,
  s2?: TableIpaTranslator,
): WalkResult {
  const isS2 = p.stage === 2;
  const g = p.granule;
  const stride = g - 3;
  let level = p.startLevel;
  if (isS2 && addr >= (POW2[p.inputBits] as number))
    return walkFailure('F_TRANSLATION', level, true, 2, addr);
  const masked = p.inputBits >= 52 ? addr : addr % (POW2[p.inputBits] as number);
  // Start table: index bits above the start level's shift (more than `stride` for concatenation).
  let shift = g + (3 - level) * stride;
  const startBits = p.inputBits - shift;
  const startBytes = Math.max(POW2[startBits + 3] as number, 8);
  let table = p.ttb - (p.ttb % startBytes);
  let idx = Math.floor(masked / (POW2[shift] as number));
  let tbl = 0;
  let s2perm = TLB_PERM_ALL;
  for (;;) {
    const descIpa = table + idx * 8;
    let descPa = descIpa;
    if (s2 !== undefined) {
      const t = s2(descIpa);
      if (!('pa' in t)) return t;
      if ((t.perm & TLB_PERM_PR) === 0) return walkFailure('F_PERMISSION', level, true, 1, descIpa, 0, true);
      descPa = t.pa;
      s2perm = t.perm;
    }
    let lo: number;
    let hi: number;
    try {
      lo = memory.read64Lo(descPa);
      hi = memory.read64Hi(descPa);
    } catch (err) {
      if (err instanceof BusError) return walkFailure('F_WALK_EABT', level, isS2, 1, 0, descPa);
      throw err;
    }
    if ((lo & 1) === 0) return walkFailure('F_TRANSLATION', level, isS2, 2, isS2 ? addr : 0);
    if (level < 3 && (lo & 2) !== 0) {
      const next = descOutput(lo, hi, g);
      if (next >= (POW2[p.outputBits] as number))
        return walkFailure('F_ADDR_SIZE', level, isS2, 2, isS2 ? addr : 0);
      // APTable[1] → bit 0, APTable[0] → bit 1, UXNTable → bit 2, PXNTable → bit 3.
      if (!isS2 && !p.had)
        tbl |=
          ((hi >>> 30) & 1) | (((hi >>> 29) & 1) << 1) | (((hi >>> 28) & 1) << 2) | (((hi >>> 27) & 1) << 3);
      table = next;
      level++;
      shift -= stride;
      idx = Math.floor(masked / (POW2[shift] as number)) % (POW2[stride] as number);
      continue;
    }
    if (level === 3 ? (lo & 2) === 0 : !blockAllowed(level, g))
      return walkFailure('F_TRANSLATION', level, isS2, 2, isS2 ? addr : 0);
    // Leaf.
    const oaBase = descOutput(lo, hi, g);
    const af = (lo & 0x400) !== 0;
    if (!af && !p.ha && !p.affd) return walkFailure('F_ACCESS', level, isS2, 2, isS2 ? addr : 0);
    let perm = isS2 ? stage2Perm(lo, hi) : stage1Perm(lo, hi, tbl, p.wxn);
    let newLo = af || !p.ha ? lo : lo | 0x400;
    const dbm = (hi & (1 << 19)) !== 0;
    // Writable-clean: stage 1 AP[2] = 1, stage 2 S2AP[1] = 0, with DBM and HD.
    const clean = dbm && p.hd && (isS2 ? (lo & 0x80) === 0 : (lo & 0x80) !== 0);
    let dirtyUpdatable = clean;
    if (clean && (access.write || access.atsWrite)) {
      const dirtyLo = isS2 ? lo | 0x80 : lo & ~0x80;
      const dirtyPerm = isS2 ? stage2Perm(dirtyLo, hi) : stage1Perm(dirtyLo, hi, tbl, p.wxn);
      const wbit = access.write ? access.need : TLB_PERM_PW | TLB_PERM_UW;
      if ((perm & wbit) === 0 && (dirtyPerm & wbit) !== 0) {
        newLo = isS2 ? newLo | 0x80 : newLo & ~0x80;
        perm = dirtyPerm;
        dirtyUpdatable = false;
      }
    }
    if (access.need !== 0 && (perm & access.need) === 0)
      return walkFailure('F_PERMISSION', level, isS2, 2, isS2 ? addr : 0);
    if (oaBase >= (POW2[p.outputBits] as number))
      return walkFailure('F_ADDR_SIZE', level, isS2, 2, isS2 ? addr : 0);
    if (newLo !== lo) {
      // HTTU write-back; in a nested walk stage 2 must allow writing the stage-1 table.
      if (s2 !== undefined && (s2perm & TLB_PERM_PW) === 0)
        return walkFailure('F_PERMISSION', level, true, 1, descIpa, 0, false);
      try {
        memory.write32(descPa, newLo >>> 0);
      } catch (err) {
        if (err instanceof BusError) return walkFailure('F_WALK_EABT', level, isS2, 1, 0, descPa);
        throw err;
      }
    }
    const size = POW2[shift] as number;
    return {
      ok: true,
      outputAddr: oaBase - (oaBase % size) + (masked % size),
      shift,
      level,
      perm,
      dirtyUpdatable,
      global: !isS2 && (lo & 0x800) === 0,
      descAddr: descPa,
    };
  }
}
