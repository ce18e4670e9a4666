/**
 * Scalable-mode PASID structures: the PASID directory and PASID tables reached from a scalable-mode
 * context entry, their decoders and encoders, the request-without-PASID substitution (RID_PASID) and
 * the uncached lookup from (context entry, PASID) to a PASID-table entry with the fault reason of
 * each failing step.
 *
 * @remarks
 * Layouts: digest §2.5 (directory entry), §2.6 (PASID-table entry); indexing §2.7; RID_PASID §2.8;
 * lookup steps and reasons: §7.3 steps 7–8 and 11–18 (reasons 0x45, 0x46, 0x48, 0x50–0x52,
 * 0x58–0x5B). Mirrors QEMU's `vtd_ce_get_pasid_entry` / `vtd_get_pe_from_pasid_table` and Linux's
 * `intel_pasid_get_entry` (indexing) and `pasid_set_*` helpers (encoding). The cached lookup the
 * translator uses is {@link VtdPasidCache} in `context-cache.ts`.
 */

import { BusError, type PhysicalMemory } from '@iommu-ts/mm';
import {
  beyondHaw,
  pointerField,
  readWords,
  type ScalableContextEntry,
  structureFault,
  type VtdStructureFault,
} from './root-context.js';
import type { VtdHwConfig } from './vtd-config.js';
import { VTD_FR } from './vtd-fault.js';

/** Size in bytes of a PASID directory entry. */
export const PASID_DIR_ENTRY_SIZE = 8;
/** Size in bytes of a scalable-mode PASID-table entry. */
export const PASID_ENTRY_SIZE = 64;
/** PASID-table entries per 4 KiB table (the low 6 PASID bits index a table). */
export const PASID_ENTRIES_PER_TABLE = 64;

/** PASID-table entry PGTT values (digest §2.6; Linux `PASID_ENTRY_PGTT_*`). */
export const PGTT = Object.freeze({
  /** 001: first-level translation only. */
  firstLevel: 1,
  /** 010: second-level translation only. */
  secondLevel: 2,
  /** 011: nested (first level translated through second level). */
  nested: 3,
  /** 100: pass-through. */
  passThrough: 4,
} as const);

/** The parameters of the unit that PASID-structure legality depends on. */
export type VtdPasidConfig = Pick<
  VtdHwConfig,
  | 'haw'
  | 'sagaw'
  | 'pasidBits'
  | 'rps'
  | 'flts'
  | 'slts'
  | 'nest'
  | 'pt'
  | 'fl5lp'
  | 'slads'
  | 'sc'
  | 'srs'
  | 'ers'
  | 'eafs'
>;

/** A decoded PASID directory entry (digest §2.5). */
export interface PasidDirEntry {
  /** P (bit 0). */
  readonly present: boolean;
  /** FPD (bit 1; honoured even when P = 0). */
  readonly fpd: boolean;
  /** PASID table pointer (bits 63:12). */
  readonly ptr: number;
}

/** A decoded scalable-mode PASID-table entry (digest §2.6). */
export interface PasidEntry {
  /** P (bit 0). */
  readonly present: boolean;
  /** FPD (bit 1). */
  readonly fpd: boolean;
  /** AW (bits 4:2): AGAW encoding of the second-level walk (levels = AW + 2). */
  readonly aw: number;
  /** SLEE (bit 5): second-level execute enable. */
  readonly slee: boolean;
  /** PGTT (bits 8:6): see {@link PGTT}. */
  readonly pgtt: number;
  /** SLADE (bit 9): second-level accessed/dirty enable. */
  readonly slade: boolean;
  /** SLPTPTR (bits 63:12): second-level table root. */
  readonly slptptr: number;
  /** DID (bits 79:64). */
  readonly did: number;
  /** PWSNP (bit 87): page-walk snoop. */
  readonly pwsnp: boolean;
  /** PGSNP (bit 88): page snoop. */
  readonly pgsnp: boolean;
  /** CD (bit 89): cache disable. */
  readonly cd: boolean;
  /** EMTE (bit 90): extended memory type enable. */
  readonly emte: boolean;
  /** EMT (bits 93:91): extended memory type. */
  readonly emt: number;
  /** PWT (bit 94). */
  readonly pwt: boolean;
  /** PCD (bit 95). */
  readonly pcd: boolean;
  /** PAT (bits 127:96): the 32-bit PAT value. */
  readonly pat: number;
  /** SRE (bit 128): supervisor requests enable. */
  readonly sre: boolean;
  /** ERE (bit 129): execute requests enable. */
  readonly ere: boolean;
  /** FLPM (bits 131:130): 0 = 4-level, 1 = 5-level first-level paging. */
  readonly flpm: number;
  /** WPE (bit 132): write-protect enable for supervisor requests. */
  readonly wpe: boolean;
  /** NXE (bit 133): no-execute enable. */
  readonly nxe: boolean;
  /** SMEP (bit 134). */
  readonly smep: boolean;
  /** EAFE (bit 135): extended-accessed flag enable. */
  readonly eafe: boolean;
  /** FLPTR (bits 191:140): first-level table root. */
  readonly flptr: number;
}

/** Result of {@link lookupPasidEntry}. */
export type PasidLookup =
  | {
      readonly kind: 'ok';
      /** The decoded, legal, present entry. */
      readonly entry: PasidEntry;
      /** Its physical address. */
      readonly entryAddr: number;
      /** FPD of the context, directory or PASID entry was set (suppresses later qualified faults). */
      readonly fpd: boolean;
    }
  | VtdStructureFault;

/** Result of {@link resolveRequestPasid}: the PASID whose entry translates the request, or the fault. */
export type RequestPasid = { readonly kind: 'ok'; readonly pasid: number } | VtdStructureFault;

/**
 * Decode a PASID directory entry.
 * @param lo - bits 31:0
 * @param hi - bits 63:32
 */
export function decodePasidDirEntry(lo: number, hi: number): PasidDirEntry {
  return { present: (lo & 1) !== 0, fpd: (lo & 2) !== 0, ptr: pointerField(lo, hi) };
}

/**
 * Decode a PASID-table entry from its first six u32 words (qw0–qw2; later qwords carry nothing the
 * model uses).
 * @param w - words 0..5
 */
export function decodePasidEntry(w: Uint32Array): PasidEntry {
  const w0 = w[0] ?? 0;
  const w2 = w[2] ?? 0;
  const w4 = w[4] ?? 0;
  return {
    present: (w0 & 1) !== 0,
    fpd: (w0 & 2) !== 0,
    aw: (w0 >>> 2) & 7,
    slee: (w0 & 0x20) !== 0,
    pgtt: (w0 >>> 6) & 7,
    slade: (w0 & 0x200) !== 0,
    slptptr: pointerField(w0, w[1] ?? 0),
    did: w2 & 0xffff,
    pwsnp: (w2 & (1 << 23)) !== 0,
    pgsnp: (w2 & (1 << 24)) !== 0,
    cd: (w2 & (1 << 25)) !== 0,
    emte: (w2 & (1 << 26)) !== 0,
    emt: (w2 >>> 27) & 7,
    pwt: (w2 & (1 << 30)) !== 0,
    pcd: (w2 & (1 << 31)) !== 0,
    pat: (w[3] ?? 0) >>> 0,
    sre: (w4 & 1) !== 0,
    ere: (w4 & 2) !== 0,
    flpm: (w4 >>> 2) & 3,
    wpe: (w4 & 0x10) !== 0,
    nxe: (w4 & 0x20) !== 0,
    smep: (w4 & 0x40) !== 0,
    eafe: (w4 & 0x80) !== 0,
    flptr: pointerField(w4, w[5] ?? 0),
  };
}

/** Whether a PGTT walks second-level tables (second-level only or nested). */
export function pgttUsesSecondLevel(pgtt: number): boolean {
  return pgtt === PGTT.secondLevel || pgtt === PGTT.nested;
}

/** Whether a PGTT walks first-level tables (first-level only or nested). */
export function pgttUsesFirstLevel(pgtt: number): boolean {
  return pgtt === PGTT.firstLevel || pgtt === PGTT.nested;
}

/**
 * Legality of a present PASID-table entry (§7.3 steps 17–18).
 * @param w - the entry's words 0..5
 * @param entry - its decoding
 * @param config - the unit's parameters
 * @returns 0 when legal; 0x5A for reserved bits (qw0 11:10, qw1 22:16, qw2 11:8, a used table
 *   pointer at or above HAW, SLADE/PGSNP/SRE/ERE/EAFE without SLADS/SC/SRS/ERS/EAFS); 0x5B for a
 *   reserved or unsupported PGTT (FLTS/SLTS/NEST/PT), an AW outside SAGAW (second-level, nested) or
 *   an FLPM the unit cannot walk (first-level, nested: 0 always, 1 only with FL5LP)
 */
export function checkPasidEntry(w: Uint32Array, entry: PasidEntry, config: VtdPasidConfig): number {
  const rsvd = VTD_FR.SM_PASID_ENTRY_RSVD;
  if (((w[0] ?? 0) & 0xc00) !== 0) return rsvd;
  if (((w[2] ?? 0) & 0x7f_0000) !== 0) return rsvd;
  if (((w[4] ?? 0) & 0xf00) !== 0) return rsvd;
  const sl = pgttUsesSecondLevel(entry.pgtt);
  const fl = pgttUsesFirstLevel(entry.pgtt);
  if (sl && beyondHaw(entry.slptptr, config.haw)) return rsvd;
  if (fl && beyondHaw(entry.flptr, config.haw)) return rsvd;
  if (entry.slade && !config.slads) return rsvd;
  if (entry.pgsnp && !config.sc) return rsvd;
  if (entry.sre && !config.srs) return rsvd;
  if (entry.ere && !config.ers) return rsvd;
  if (entry.eafe && !config.eafs) return rsvd;
  const inv = VTD_FR.SM_PASID_ENTRY_INV;
  switch (entry.pgtt) {
    case PGTT.firstLevel:
      if (!config.flts) return inv;
      break;
    case PGTT.secondLevel:
      if (!config.slts) return inv;
      break;
    case PGTT.nested:
      if (!config.nest) return inv;
      break;
    case PGTT.passThrough:
      if (!config.pt) return inv;
      break;
    default:
      return inv;
  }
  if (sl && !(config.sagaw as readonly number[]).includes(entry.aw + 2)) return inv;
  if (fl && entry.flpm !== 0 && !(entry.flpm === 1 && config.fl5lp)) return inv;
  return 0;
}

/**
 * Number of PASIDs a scalable-mode context entry's directory covers: 2^(PDTS + 7) directory
 * entries × 64.
 * @param ctx - the context entry
 */
export function contextPasidLimit(ctx: Pick<ScalableContextEntry, 'pdts'>): number {
  return 2 ** (ctx.pdts + 7) * PASID_ENTRIES_PER_TABLE;
}

/**
 * Address of the directory entry for `pasid` (PASIDDIRPTR + PASID[19:6] × 8).
 * @param pasidDirPtr - the directory base
 * @param pasid - the PASID (20 bits)
 */
export function pasidDirEntryAddress(pasidDirPtr: number, pasid: number): number {
  return pasidDirPtr + (pasid >>> 6) * PASID_DIR_ENTRY_SIZE;
}

/**
 * Address of the PASID-table entry for `pasid` in a PASID table (table + PASID[5:0] × 64).
 * @param tablePtr - the PASID table (from the directory entry)
 * @param pasid - the PASID
 */
export function pasidEntryAddress(tablePtr: number, pasid: number): number {
  return tablePtr + (pasid & 0x3f) * PASID_ENTRY_SIZE;
}

/**
 * The RID_PASID a unit applies for a context entry: the field when ECAP.RPS is set, else 0 (§2.8).
 * @param ctx - the context entry
 * @param config - the unit's RPS
 */
export function effectiveRidPasid(
  ctx: Pick<ScalableContextEntry, 'ridPasid'>,
  config: Pick<VtdHwConfig, 'rps'>,
): number {
  return config.rps ? ctx.ridPasid : 0;
}

/**
 * Which PASID entry translates a request (§7.3 steps 7, 8, 11): the request's PASID, or RID_PASID
 * for a request-without-PASID.
 * @param ctx - the device's scalable-mode context entry
 * @param pasid - the request's PASID, or `undefined` for a request-without-PASID
 * @param config - the unit's parameters (RPS, PASID width)
 * @returns the PASID, or a fault: 0x45 (request-with-PASID and PASIDE clear), 0x46 (the PASID lies
 *   beyond the directory size or the unit's PASID width), 0x48 (RID_PASID lies beyond them); `fpd`
 *   is the context entry's FPD
 */
export function resolveRequestPasid(
  ctx: ScalableContextEntry,
  pasid: number | undefined,
  config: Pick<VtdPasidConfig, 'rps' | 'pasidBits'>,
): RequestPasid {
  const limit = Math.min(contextPasidLimit(ctx), 2 ** config.pasidBits);
  if (pasid === undefined) {
    const rid = effectiveRidPasid(ctx, config);
    if (rid >= limit) return structureFault(VTD_FR.SM_CTX_RID_PASID, ctx.fpd);
    return { kind: 'ok', pasid: rid };
  }
  if (!ctx.paside) return structureFault(VTD_FR.SM_CTX_PASIDE, ctx.fpd);
  if (pasid >= limit) return structureFault(VTD_FR.SM_CTX_PDTS, ctx.fpd);
  return { kind: 'ok', pasid };
}

/**
 * Find the PASID-table entry of `pasid` through a scalable-mode context entry's PASID directory
 * (uncached; §7.3 steps 8 and 12–18).
 *
 * @param memory - physical memory holding the structures
 * @param ctx - the device's (present, legal) scalable-mode context entry
 * @param pasid - the PASID to look up (a request's PASID or RID_PASID; see {@link resolveRequestPasid})
 * @param config - the unit's parameters
 * @returns the entry, its address and the accumulated FPD; or a fault: 0x46 PASID beyond the
 *   directory size or PASID width, 0x50 directory entry unreadable, 0x51 directory entry not present,
 *   0x52 directory entry reserved bits (11:2, pointer at or above HAW), 0x58 PASID entry unreadable,
 *   0x59 PASID entry not present, 0x5A / 0x5B (see {@link checkPasidEntry}). `fpd` is the OR of the
 *   FPD bits of the context, directory and PASID entries read so far (FPD counts even when P = 0).
 */
export function lookupPasidEntry(
  memory: PhysicalMemory,
  ctx: ScalableContextEntry,
  pasid: number,
  config: VtdPasidConfig,
): PasidLookup {
  let fpd = ctx.fpd;
  if (pasid >= contextPasidLimit(ctx) || pasid >= 2 ** config.pasidBits)
    return structureFault(VTD_FR.SM_CTX_PDTS, fpd);
  const dirAddr = pasidDirEntryAddress(ctx.pasidDirPtr, pasid);
  let dlo: number;
  let dhi: number;
  try {
    dlo = memory.read32(dirAddr);
    dhi = memory.read32(dirAddr + 4);
  } catch (e) {
    if (e instanceof BusError) return structureFault(VTD_FR.SM_PASID_DIR_ACCESS, fpd);
    throw e;
  }
  const dir = decodePasidDirEntry(dlo, dhi);
  fpd ||= dir.fpd;
  if (!dir.present) return structureFault(VTD_FR.SM_PASID_DIR_P, fpd);
  if ((dlo & 0xffc) !== 0 || beyondHaw(dir.ptr, config.haw))
    return structureFault(VTD_FR.SM_PASID_DIR_RSVD, fpd);
  const entryAddr = pasidEntryAddress(dir.ptr, pasid);
  let w: Uint32Array;
  try {
    w = readWords(memory, entryAddr, 6);
  } catch (e) {
    if (e instanceof BusError) return structureFault(VTD_FR.SM_PASID_TABLE_ACCESS, fpd);
    throw e;
  }
  const entry = decodePasidEntry(w);
  fpd ||= entry.fpd;
  if (!entry.present) return structureFault(VTD_FR.SM_PASID_ENTRY_P, fpd);
  const r = checkPasidEntry(w, entry, config);
  if (r !== 0) return structureFault(r, fpd);
  return { kind: 'ok', entry, entryAddr, fpd };
}

/** Fields of a PASID directory entry for {@link encodePasidDirEntry} (absent = 0/false). */
export interface PasidDirEntryInit {
  /** P. */
  readonly present?: boolean;
  /** FPD. */
  readonly fpd?: boolean;
  /** PASID table address (page aligned). */
  readonly ptr?: number;
}

/**
 * Encode a PASID directory entry (Linux installs `table_pa | P`).
 * @param init - the fields
 * @returns the 64-bit entry
 */
export function encodePasidDirEntry(init: PasidDirEntryInit): bigint {
  return (BigInt(init.ptr ?? 0) & 0xffff_ffff_ffff_f000n) | (init.fpd ? 2n : 0n) | (init.present ? 1n : 0n);
}

/** Fields of a PASID-table entry for {@link encodePasidEntry}: any subset of {@link PasidEntry} (absent = 0/false). */
export type PasidEntryInit = Partial<PasidEntry>;

const flag = (on: boolean | undefined, n: number): bigint => (on ? 1n << BigInt(n) : 0n);
const field = (v: number | undefined, width: number, shift: number): bigint =>
  (BigInt(v ?? 0) & ((1n << BigInt(width)) - 1n)) << BigInt(shift);
const ptr = (addr: number | undefined): bigint => BigInt(addr ?? 0) & 0xffff_ffff_ffff_f000n;

/**
 * Encode a PASID-table entry (Linux `pasid_set_*` helpers).
 * @param init - the fields
 * @returns the eight 64-bit words (qw3–qw7 zero)
 */
export function encodePasidEntry(init: PasidEntryInit): bigint[] {
  const qw0 =
    ptr(init.slptptr) |
    flag(init.slade, 9) |
    field(init.pgtt, 3, 6) |
    flag(init.slee, 5) |
    field(init.aw, 3, 2) |
    flag(init.fpd, 1) |
    flag(init.present, 0);
  const qw1 =
    field(init.did, 16, 0) |
    flag(init.pwsnp, 23) |
    flag(init.pgsnp, 24) |
    flag(init.cd, 25) |
    flag(init.emte, 26) |
    field(init.emt, 3, 27) |
    flag(init.pwt, 30) |
    flag(init.pcd, 31) |
    field(init.pat, 32, 32);
  const qw2 =
    ptr(init.flptr) |
    flag(init.eafe, 7) |
    flag(init.smep, 6) |
    flag(init.nxe, 5) |
    flag(init.wpe, 4) |
    field(init.flpm, 2, 2) |
    flag(init.ere, 1) |
    flag(init.sre, 0);
  return [qw0, qw1, qw2, 0n, 0n, 0n, 0n, 0n];
}
