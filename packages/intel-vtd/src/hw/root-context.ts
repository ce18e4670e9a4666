/**
 * Root and context entries of a VT-d unit, legacy (TTM = 00) and scalable (TTM = 01): decoders,
 * encoders and the uncached lookup from a source-id to its context entry with the fault reason of
 * each failing step.
 *
 * @remarks
 * Layouts: digest §2.1 (legacy root), §2.2 (scalable root), §2.3 (legacy context), §2.4 (scalable
 * context); lookup steps and reasons: §7.2 steps 1–8 and §7.3 steps 1–6 (the specification's
 * scalable-mode codes 0x38–0x42, not QEMU's reuse of the legacy codes). The cached lookup the
 * translator uses is {@link VtdContextCache} in `context-cache.ts`. Mirrors the root/context parts of
 * QEMU's `vtd_dev_to_context_entry` and Linux's `iommu_context_addr`.
 */

import { ErrnoError } from '@iommu-ts/base';
import { BusError, type PhysicalMemory } from '@iommu-ts/mm';
import type { VtdHwConfig } from './vtd-config.js';
import { VTD_FR } from './vtd-fault.js';

/** Size in bytes of a root entry (both modes). */
export const ROOT_ENTRY_SIZE = 16;
/** Size in bytes of a legacy context entry. */
export const LEGACY_CONTEXT_ENTRY_SIZE = 16;
/** Size in bytes of a scalable-mode context entry. */
export const SM_CONTEXT_ENTRY_SIZE = 32;

/** RTADDR.TTM values (digest §1.5). */
export const VTD_TTM = Object.freeze({
  /** 00: legacy root/context tables. */
  legacy: 0,
  /** 01: scalable-mode root/context tables. */
  scalable: 1,
  /** 10: reserved (formerly extended mode). */
  reserved: 2,
  /** 11: abort-DMA mode (ECAP.ADMS). */
  abortDma: 3,
} as const);

/** Legacy context entry TT values (digest §2.3; Linux `CONTEXT_TT_*`). */
export const CONTEXT_TT = Object.freeze({
  /** 00: untranslated requests walk the second-level tables; ATS requests blocked. */
  multiLevel: 0,
  /** 01: as 00, plus ATS translation requests and translated requests (needs ECAP.DT). */
  devIotlb: 1,
  /** 10: pass-through for untranslated requests (needs ECAP.PT). */
  passThrough: 2,
} as const);

/** The parameters of the unit that root/context legality depends on. */
export type VtdRootContextConfig = Pick<VtdHwConfig, 'haw' | 'sagaw' | 'dt' | 'pt' | 'rprivs' | 'prs'>;

/** A decoded legacy root entry (digest §2.1). */
export interface LegacyRootEntry {
  /** Discriminant. */
  readonly mode: 'legacy';
  /** P (bit 0). */
  readonly present: boolean;
  /** CTP (bits 63:12): physical address of the bus's context table. */
  readonly ctp: number;
}

/** A decoded scalable-mode root entry (digest §2.2). */
export interface ScalableRootEntry {
  /** Discriminant. */
  readonly mode: 'scalable';
  /** LP (bit 0): the lower context table (devfn 0x00–0x7F) is present. */
  readonly lowerPresent: boolean;
  /** LCTP (bits 63:12). */
  readonly lctp: number;
  /** UP (bit 64): the upper context table (devfn 0x80–0xFF) is present. */
  readonly upperPresent: boolean;
  /** UCTP (bits 127:76). */
  readonly uctp: number;
}

/** A decoded root entry of either mode. */
export type RootEntry = LegacyRootEntry | ScalableRootEntry;

/** A decoded legacy context entry (digest §2.3). */
export interface LegacyContextEntry {
  /** Discriminant. */
  readonly mode: 'legacy';
  /** P (bit 0). */
  readonly present: boolean;
  /** FPD (bit 1): fault processing disable (honoured even when P = 0). */
  readonly fpd: boolean;
  /** TT (bits 3:2): see {@link CONTEXT_TT}. */
  readonly tt: number;
  /** SLPTPTR (bits 63:12): second-level table root (ignored for pass-through). */
  readonly slptptr: number;
  /** AW (bits 66:64): AGAW encoding; the walk has AW + 2 levels. */
  readonly aw: number;
  /** DID (bits 87:72): domain id. */
  readonly did: number;
}

/** A decoded scalable-mode context entry (digest §2.4). */
export interface ScalableContextEntry {
  /** Discriminant. */
  readonly mode: 'scalable';
  /** P (bit 0). */
  readonly present: boolean;
  /** FPD (bit 1). */
  readonly fpd: boolean;
  /** DTE (bit 2): ATS translation requests and translated requests permitted. */
  readonly dte: boolean;
  /** PASIDE (bit 3): requests-with-PASID permitted. */
  readonly paside: boolean;
  /** PRE (bit 4): page requests permitted. */
  readonly pre: boolean;
  /** PDTS (bits 11:9): the PASID directory has 2^(PDTS + 7) entries. */
  readonly pdts: number;
  /** PASIDDIRPTR (bits 63:12): PASID directory base. */
  readonly pasidDirPtr: number;
  /** RID_PASID (bits 83:64): PASID used for requests-without-PASID (as stored; see {@link effectiveRidPasid}). */
  readonly ridPasid: number;
  /** RID_PRIV (bit 84): requests-without-PASID are supervisor requests (ECAP.RPRIVS). */
  readonly ridPriv: boolean;
}

/** A decoded context entry of either mode. */
export type ContextEntry = LegacyContextEntry | ScalableContextEntry;

/**
 * Why a structure lookup failed: the §6 fault reason and whether fault processing is disabled for
 * it (an FPD bit seen on the way, which suppresses recording of qualified faults; §6.4).
 */
export interface VtdStructureFault {
  /** Discriminant. */
  readonly kind: 'fault';
  /** Fault reason code (digest §6). */
  readonly reason: number;
  /** An FPD bit that applies to this fault was set (the caller decides whether the reason is qualified). */
  readonly fpd: boolean;
}

/** Result of {@link lookupContext}: the decoded context entry, or the fault. */
export type ContextLookup =
  | { readonly kind: 'ok'; readonly entry: ContextEntry; readonly entryAddr: number }
  | VtdStructureFault;

const PAGE_MASK_LO = 0xffff_f000;
const TWO32 = 0x1_0000_0000;

/**
 * A structure fault value.
 * @param reason - the §6 fault reason
 * @param fpd - whether an FPD bit applies (default false)
 */
export function structureFault(reason: number, fpd = false): VtdStructureFault {
  return { kind: 'fault', reason, fpd };
}

/**
 * The page-aligned address held in bits 63:12 of a 64-bit word given as halves.
 * @param lo - bits 31:0
 * @param hi - bits 63:32
 */
export function pointerField(lo: number, hi: number): number {
  return ((lo & PAGE_MASK_LO) >>> 0) + (hi >>> 0) * TWO32;
}

/**
 * Whether an address lies at or beyond the host address width (its high bits are reserved).
 * @param addr - physical address
 * @param haw - host address width in bits
 */
export function beyondHaw(addr: number, haw: number): boolean {
  return addr >= 2 ** haw;
}

/**
 * Decode a source-id into bus and devfn.
 * @param sourceId - requester id (bus 15:8, devfn 7:0)
 */
export function splitSourceId(sourceId: number): { readonly bus: number; readonly devfn: number } {
  return { bus: (sourceId >>> 8) & 0xff, devfn: sourceId & 0xff };
}

/**
 * Read `count` consecutive u32 words.
 * @param memory - physical memory
 * @param pa - address of the first word
 * @param count - number of words
 * @throws BusError when any of them is outside RAM
 */
export function readWords(memory: PhysicalMemory, pa: number, count: number): Uint32Array {
  const w = new Uint32Array(count);
  for (let i = 0; i < count; i++) w[i] = memory.read32(pa + 4 * i);
  return w;
}

/**
 * Write 64-bit words (as from the encoders) at consecutive addresses.
 * @param memory - physical memory
 * @param pa - address of the first word
 * @param words - the words
 * @throws BusError outside RAM
 */
export function writeEntryWords(memory: PhysicalMemory, pa: number, words: readonly bigint[]): void {
  for (let i = 0; i < words.length; i++) memory.write64(pa + 8 * i, BigInt.asUintN(64, words[i] ?? 0n));
}

/**
 * Decode a legacy root entry from its four u32 words.
 * @param w - words 0..3 (w[0] = bits 31:0)
 */
export function decodeLegacyRootEntry(w: Uint32Array): LegacyRootEntry {
  const lo = w[0] ?? 0;
  return { mode: 'legacy', present: (lo & 1) !== 0, ctp: pointerField(lo, w[1] ?? 0) };
}

/**
 * Decode a scalable-mode root entry from its four u32 words.
 * @param w - words 0..3
 */
export function decodeScalableRootEntry(w: Uint32Array): ScalableRootEntry {
  const lo = w[0] ?? 0;
  const up = w[2] ?? 0;
  return {
    mode: 'scalable',
    lowerPresent: (lo & 1) !== 0,
    lctp: pointerField(lo, w[1] ?? 0),
    upperPresent: (up & 1) !== 0,
    uctp: pointerField(up, w[3] ?? 0),
  };
}

/**
 * Whether a root entry's reserved bits are clear (§2.1: 11:1, 127:64, CTP below HAW; §2.2: 11:1,
 * 75:65 and both pointers below HAW).
 * @param w - the entry's four words
 * @param scalable - TTM = 01 layout
 * @param haw - host address width
 */
export function rootEntryReservedOk(w: Uint32Array, scalable: boolean, haw: number): boolean {
  const w0 = w[0] ?? 0;
  const w1 = w[1] ?? 0;
  const w2 = w[2] ?? 0;
  const w3 = w[3] ?? 0;
  if ((w0 & 0xffe) !== 0) return false;
  if (beyondHaw(pointerField(w0, w1), haw)) return false;
  if (!scalable) return w2 === 0 && w3 === 0;
  if ((w2 & 0xffe) !== 0) return false;
  return !beyondHaw(pointerField(w2, w3), haw);
}

/**
 * Decode a legacy context entry from its four u32 words.
 * @param w - words 0..3
 */
export function decodeLegacyContextEntry(w: Uint32Array): LegacyContextEntry {
  const lo = w[0] ?? 0;
  const w2 = w[2] ?? 0;
  return {
    mode: 'legacy',
    present: (lo & 1) !== 0,
    fpd: (lo & 2) !== 0,
    tt: (lo >>> 2) & 3,
    slptptr: pointerField(lo, w[1] ?? 0),
    aw: w2 & 7,
    did: (w2 >>> 8) & 0xffff,
  };
}

/**
 * Decode a scalable-mode context entry from its eight u32 words.
 * @param w - words 0..7
 */
export function decodeScalableContextEntry(w: Uint32Array): ScalableContextEntry {
  const lo = w[0] ?? 0;
  const w2 = w[2] ?? 0;
  return {
    mode: 'scalable',
    present: (lo & 1) !== 0,
    fpd: (lo & 2) !== 0,
    dte: (lo & 4) !== 0,
    paside: (lo & 8) !== 0,
    pre: (lo & 16) !== 0,
    pdts: (lo >>> 9) & 7,
    pasidDirPtr: pointerField(lo, w[1] ?? 0),
    ridPasid: w2 & 0xf_ffff,
    ridPriv: (w2 & 0x10_0000) !== 0,
  };
}

/**
 * Legality of a present legacy context entry (§7.2 steps 6–8).
 * @param w - the entry's four words
 * @param entry - its decoding
 * @param config - the unit's parameters
 * @returns 0 when legal, else the fault reason (0x0B reserved bits, 0x03 AW or TT invalid)
 */
export function checkLegacyContextEntry(
  w: Uint32Array,
  entry: LegacyContextEntry,
  config: VtdRootContextConfig,
): number {
  // Reserved: bits 11:4, SLPTPTR at or above HAW (unless pass-through), bit 71, bits 127:88.
  if (((w[0] ?? 0) & 0xff0) !== 0) return VTD_FR.CONTEXT_ENTRY_RSVD;
  if (((w[2] ?? 0) & 0xff00_0080) !== 0 || (w[3] ?? 0) !== 0) return VTD_FR.CONTEXT_ENTRY_RSVD;
  if (entry.tt !== CONTEXT_TT.passThrough && beyondHaw(entry.slptptr, config.haw))
    return VTD_FR.CONTEXT_ENTRY_RSVD;
  if (!(config.sagaw as readonly number[]).includes(entry.aw + 2)) return VTD_FR.CONTEXT_ENTRY_INV;
  if (entry.tt === 3) return VTD_FR.CONTEXT_ENTRY_INV;
  if (entry.tt === CONTEXT_TT.devIotlb && !config.dt) return VTD_FR.CONTEXT_ENTRY_INV;
  if (entry.tt === CONTEXT_TT.passThrough && !config.pt) return VTD_FR.CONTEXT_ENTRY_INV;
  return 0;
}

/**
 * Legality of a present scalable-mode context entry (§7.3 step 6).
 * @param w - the entry's eight words
 * @param entry - its decoding
 * @param config - the unit's parameters
 * @returns 0 when legal, else 0x42 (reserved bits: 8:5, PASIDDIRPTR at or above HAW, 127:85, bit 84
 *   without ECAP.RPRIVS, DTE without ECAP.DT, PRE without ECAP.PRS, any bit of 255:128)
 */
export function checkScalableContextEntry(
  w: Uint32Array,
  entry: ScalableContextEntry,
  config: VtdRootContextConfig,
): number {
  const w0 = w[0] ?? 0;
  if ((w0 & 0x1e0) !== 0) return VTD_FR.SM_CTX_RSVD;
  if (beyondHaw(entry.pasidDirPtr, config.haw)) return VTD_FR.SM_CTX_RSVD;
  const w2 = w[2] ?? 0;
  if ((w2 & 0xffe0_0000) !== 0 || (w[3] ?? 0) !== 0) return VTD_FR.SM_CTX_RSVD;
  if (entry.ridPriv && !config.rprivs) return VTD_FR.SM_CTX_RSVD;
  if (entry.dte && !config.dt) return VTD_FR.SM_CTX_RSVD;
  if (entry.pre && !config.prs) return VTD_FR.SM_CTX_RSVD;
  for (let i = 4; i < 8; i++) if ((w[i] ?? 0) !== 0) return VTD_FR.SM_CTX_RSVD;
  return 0;
}

/**
 * Address of the root entry for `bus`.
 * @param rta - root table address (RTADDR bits 63:12)
 * @param bus - bus number 0..255
 */
export function rootEntryAddress(rta: number, bus: number): number {
  return rta + bus * ROOT_ENTRY_SIZE;
}

/**
 * Find the context entry of a source-id by walking the root and context tables in memory
 * (uncached; §7.2 steps 1–8, §7.3 steps 1–6).
 *
 * @param memory - physical memory holding the tables
 * @param rtaddr - root table address (page aligned; RTADDR bits 63:12 latched at SRTP)
 * @param ttm - translation table mode latched at SRTP ({@link VTD_TTM}: 0 legacy, 1 scalable)
 * @param sourceId - requester id (bus 15:8, devfn 7:0)
 * @param config - the unit's parameters (HAW, SAGAW, DT, PT, RPRIVS, PRS)
 * @returns the decoded entry with its address, or the fault. Legacy reasons: 0x08 root unreadable,
 *   0x01 root not present, 0x0A root reserved bits, 0x09 context unreadable, 0x02 context not
 *   present, 0x0B context reserved bits, 0x03 invalid AW/TT. Scalable reasons: 0x38, 0x39, 0x3A, 0x40,
 *   0x41, 0x42. `fpd` is the context entry's FPD (also for a not-present or invalid entry).
 * @throws ErrnoError `EINVAL` when `ttm` is not 0 or 1 (the caller handles abort-DMA mode)
 */
export function lookupContext(
  memory: PhysicalMemory,
  rtaddr: number,
  ttm: number,
  sourceId: number,
  config: VtdRootContextConfig,
): ContextLookup {
  const { bus, devfn } = splitSourceId(sourceId);
  const scalable = ttm === VTD_TTM.scalable;
  if (!scalable && ttm !== VTD_TTM.legacy) throw invalidTtm(ttm);
  const rootAddr = rootEntryAddress(rtaddr, bus);
  let rw: Uint32Array;
  try {
    rw = readWords(memory, rootAddr, 4);
  } catch (e) {
    if (e instanceof BusError)
      return structureFault(scalable ? VTD_FR.SM_ROOT_ACCESS : VTD_FR.ROOT_TABLE_INV);
    throw e;
  }
  let ctp: number;
  if (scalable) {
    const root = decodeScalableRootEntry(rw);
    const upper = devfn >= 0x80;
    if (!(upper ? root.upperPresent : root.lowerPresent)) return structureFault(VTD_FR.SM_ROOT_P);
    if (!rootEntryReservedOk(rw, true, config.haw)) return structureFault(VTD_FR.SM_ROOT_RSVD);
    ctp = upper ? root.uctp : root.lctp;
  } else {
    const root = decodeLegacyRootEntry(rw);
    if (!root.present) return structureFault(VTD_FR.ROOT_ENTRY_P);
    if (!rootEntryReservedOk(rw, false, config.haw)) return structureFault(VTD_FR.ROOT_ENTRY_RSVD);
    ctp = root.ctp;
  }
  const entryAddr = scalable
    ? ctp + (devfn & 0x7f) * SM_CONTEXT_ENTRY_SIZE
    : ctp + devfn * LEGACY_CONTEXT_ENTRY_SIZE;
  let cw: Uint32Array;
  try {
    cw = readWords(memory, entryAddr, scalable ? 8 : 4);
  } catch (e) {
    if (e instanceof BusError)
      return structureFault(scalable ? VTD_FR.SM_CTX_ACCESS : VTD_FR.CONTEXT_TABLE_INV);
    throw e;
  }
  if (scalable) {
    const entry = decodeScalableContextEntry(cw);
    if (!entry.present) return structureFault(VTD_FR.SM_CTX_P, entry.fpd);
    const r = checkScalableContextEntry(cw, entry, config);
    if (r !== 0) return structureFault(r, entry.fpd);
    return { kind: 'ok', entry, entryAddr };
  }
  const entry = decodeLegacyContextEntry(cw);
  if (!entry.present) return structureFault(VTD_FR.CONTEXT_ENTRY_P, entry.fpd);
  const r = checkLegacyContextEntry(cw, entry, config);
  if (r !== 0) return structureFault(r, entry.fpd);
  return { kind: 'ok', entry, entryAddr };
}

function invalidTtm(ttm: number): ErrnoError {
  return new ErrnoError('EINVAL', `lookupContext: TTM ${ttm} has no root/context tables`);
}

/** Fields of a legacy root entry for {@link encodeRootEntry} (absent = 0/false). */
export interface LegacyRootEntryInit {
  /** Discriminant. */
  readonly mode: 'legacy';
  /** P. */
  readonly present?: boolean;
  /** Context table address (page aligned). */
  readonly ctp?: number;
}

/** Fields of a scalable-mode root entry for {@link encodeRootEntry} (absent = 0/false). */
export interface ScalableRootEntryInit {
  /** Discriminant. */
  readonly mode: 'scalable';
  /** LP. */
  readonly lowerPresent?: boolean;
  /** LCTP (page aligned). */
  readonly lctp?: number;
  /** UP. */
  readonly upperPresent?: boolean;
  /** UCTP (page aligned). */
  readonly uctp?: number;
}

const ptr = (addr: number | undefined): bigint => BigInt(addr ?? 0) & 0xffff_ffff_ffff_f000n;
const bit = (on: boolean | undefined, n: number): bigint => (on ? 1n << BigInt(n) : 0n);

/**
 * Encode a root entry (what Linux writes in `iommu_alloc_root_entry` users / the SM root setup).
 * @param init - the fields
 * @returns the two 64-bit words (qw0, qw1)
 */
export function encodeRootEntry(init: LegacyRootEntryInit | ScalableRootEntryInit): bigint[] {
  if (init.mode === 'legacy') return [ptr(init.ctp) | bit(init.present, 0), 0n];
  return [ptr(init.lctp) | bit(init.lowerPresent, 0), ptr(init.uctp) | bit(init.upperPresent, 0)];
}

/** Fields of a legacy context entry for {@link encodeContextEntry} (absent = 0/false). */
export interface LegacyContextEntryInit {
  /** Discriminant. */
  readonly mode: 'legacy';
  /** P. */
  readonly present?: boolean;
  /** FPD. */
  readonly fpd?: boolean;
  /** TT (see {@link CONTEXT_TT}). */
  readonly tt?: number;
  /** SLPTPTR (page aligned). */
  readonly slptptr?: number;
  /** AW (AGAW encoding: 1, 2, 3). */
  readonly aw?: number;
  /** DID. */
  readonly did?: number;
}

/** Fields of a scalable-mode context entry for {@link encodeContextEntry} (absent = 0/false). */
export interface ScalableContextEntryInit {
  /** Discriminant. */
  readonly mode: 'scalable';
  /** P. */
  readonly present?: boolean;
  /** FPD. */
  readonly fpd?: boolean;
  /** DTE. */
  readonly dte?: boolean;
  /** PASIDE. */
  readonly paside?: boolean;
  /** PRE. */
  readonly pre?: boolean;
  /** PDTS (0..7). */
  readonly pdts?: number;
  /** PASIDDIRPTR (page aligned). */
  readonly pasidDirPtr?: number;
  /** RID_PASID (20 bits). */
  readonly ridPasid?: number;
  /** RID_PRIV. */
  readonly ridPriv?: boolean;
}

/**
 * Encode a context entry (Linux `context_set_*` helpers / `context_entry_set_pasid_table`).
 * @param init - the fields
 * @returns the 64-bit words: two (legacy) or four (scalable)
 */
export function encodeContextEntry(init: LegacyContextEntryInit | ScalableContextEntryInit): bigint[] {
  if (init.mode === 'legacy') {
    const qw0 =
      ptr(init.slptptr) | (BigInt((init.tt ?? 0) & 3) << 2n) | bit(init.fpd, 1) | bit(init.present, 0);
    const qw1 = BigInt((init.aw ?? 0) & 7) | (BigInt((init.did ?? 0) & 0xffff) << 8n);
    return [qw0, qw1];
  }
  const qw0 =
    ptr(init.pasidDirPtr) |
    (BigInt((init.pdts ?? 0) & 7) << 9n) |
    bit(init.pre, 4) |
    bit(init.paside, 3) |
    bit(init.dte, 2) |
    bit(init.fpd, 1) |
    bit(init.present, 0);
  const qw1 = BigInt((init.ridPasid ?? 0) & 0xf_ffff) | bit(init.ridPriv, 20);
  return [qw0, qw1, 0n, 0n];
}

/**
 * Address of the context entry of `sourceId` given its root entry's context table pointer.
 * @param ctp - the context table (LCTP or UCTP in scalable mode, chosen by devfn bit 7)
 * @param sourceId - requester id
 * @param scalable - TTM = 01 layout (32-byte entries, index devfn & 0x7F)
 */
export function contextEntryAddress(ctp: number, sourceId: number, scalable: boolean): number {
  const devfn = sourceId & 0xff;
  return scalable ? ctp + (devfn & 0x7f) * SM_CONTEXT_ENTRY_SIZE : ctp + devfn * LEGACY_CONTEXT_ENTRY_SIZE;
}
