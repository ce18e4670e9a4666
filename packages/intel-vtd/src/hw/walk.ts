/**
 * The VT-d model's own page-table walkers (digest §3): second-level tables (2 … 5 levels, 2 MiB /
 * 1 GiB leaves per SLLPS, R/W/X, A/D updates with SLADE), first-level tables in the x86-64 paging
 * format (4 or 5 levels, U/S, R/W, XD, A/D updates, WPE), and nested walks (first-level table
 * addresses and the first-level output translated by the second level). Independent of io-pgtable.
 *
 * @remarks
 * Everything is `number` arithmetic: input addresses are given as page-frame numbers (address
 * bits 63:12 of at most a 57-bit input, so below 2^45), entries are read as two u32 halves, table
 * and output addresses are physical addresses below 2^52.
 *
 * A walk returns a format-neutral failure kind ({@link WALK_FETCH} …); the translator maps it to
 * the legacy or scalable-mode fault reason (digest §7.2, §7.3).
 */

import { BusError, type PhysicalMemory } from '@iommu-ts/mm';
import { VTD_PERM_PR, VTD_PERM_PW, VTD_PERM_PX, VTD_PERM_UR, VTD_PERM_UW, VTD_PERM_UX } from './iotlb.js';

const TWO32 = 2 ** 32;
/** 512^k for k = 0 … 5. */
const SPAN = [1, 512, 512 ** 2, 512 ** 3, 512 ** 4, 512 ** 5];
const POW2: number[] = [];
for (let i = 0; i <= 64; i++) POW2.push(2 ** i);

// ---- access flags --------------------------------------------------------------------------

/** Access flag: a data write. */
export const WALK_WRITE = 1;
/** Access flag: an instruction fetch. */
export const WALK_EXEC = 2;
/** Access flag: a supervisor (privileged) request. */
export const WALK_PRIV = 4;
/**
 * Access flag: an ATS translation request — compute what the leaf allows without permission
 * faults (only missing translations fail). A/D: A is set; D is set when {@link WALK_WRITE} is
 * also given and the page is writable.
 */
export const WALK_NOFAULT = 8;

// ---- failure kinds -------------------------------------------------------------------------

/** Failure kind: an entry could not be read (no RAM behind the table address). */
export const WALK_FETCH = 1;
/** Failure kind: second level, read access and R clear at some level (incl. not-present entries). */
export const WALK_READ = 2;
/** Failure kind: write access without write permission (second level W, first level R/W). */
export const WALK_WRITE_DENIED = 3;
/** Failure kind: reserved bits set in an entry. */
export const WALK_RSVD = 4;
/** Failure kind: first level, P = 0. */
export const WALK_NOT_PRESENT = 5;
/** Failure kind: first level, user request and U/S = 0 at some level. */
export const WALK_USER = 6;
/** Failure kind: execute request denied (first-level XD, second-level X with SLEE). */
export const WALK_EXEC_DENIED = 7;
/** Failure kind: second level, input address at or beyond the walk's width. */
export const WALK_WIDTH = 8;
/** Failure kind: second level (nested table fetch), read permission missing on a first-level table page. */
export const WALK_TABLE_READ = 9;
/** Failure kind: second level (nested A/D write-back), write permission missing on a first-level table page. */
export const WALK_TABLE_WRITE = 10;

/** One of the `WALK_*` failure kinds. */
export type WalkFailureKind = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;

/** A failed walk. */
export interface WalkFailure {
  /** Discriminant. */
  readonly ok: false;
  /** What failed. */
  readonly kind: WalkFailureKind;
  /** Level of the entry concerned (the top level for {@link WALK_WIDTH}). */
  readonly level: number;
  /** The failing entry was the top-level one (SLPTPTR / FLPTR target). */
  readonly top: boolean;
  /** 1: a first-level walk failed; 2: a second-level walk (including those of a nested walk). */
  readonly stage: 1 | 2;
  /**
   * Nested walks: the second-level failure happened while translating a first-level table address
   * (`'table'`, including FLPTR) rather than the final output (`'output'`); `'none'` otherwise.
   */
  readonly nested: 'none' | 'table' | 'output';
  /** For nested table failures: the failing first-level table was the top one (FLPTR). */
  readonly nestedTop: boolean;
}

/** A successful walk. */
export interface WalkSuccess {
  /** Discriminant. */
  readonly ok: true;
  /** Physical address of the first byte of the leaf page (aligned to `2^shift`). */
  readonly outputBase: number;
  /** log2 of the leaf size: 12, 21 or 30. */
  readonly shift: 12 | 21 | 30;
  /** Level of the leaf (1, 2 or 3). */
  readonly level: number;
  /** `VTD_PERM_*` mask the translation allows. */
  readonly perm: number;
  /** The leaf's D flag is set after the walk, or dirtiness is not tracked. */
  readonly dirty: boolean;
  /** First level: G flag of the leaf. */
  readonly global: boolean;
}

/** Result of a walk. */
export type WalkResult = WalkSuccess | WalkFailure;

/** Parameters of a second-level walk (from a legacy context entry or a PASID-table entry). */
export interface SlWalkParams {
  /** SLPTPTR: physical address of the top-level table. */
  readonly root: number;
  /** Levels: AW + 2 (3, 4 or 5; 2 accepted for the old 30-bit AGAW). */
  readonly levels: number;
  /** Input width in bits: min(30 + 9·AW, MGAW). Inputs at or beyond 2^width fail with {@link WALK_WIDTH}. */
  readonly widthBits: number;
  /** Host address width: address bits 51:haw of entries are reserved. */
  readonly haw: number;
  /** CAP.SLLPS bit 0: 2 MiB leaves allowed (PS at level 2). */
  readonly large2M: boolean;
  /** CAP.SLLPS bit 1: 1 GiB leaves allowed (PS at level 3). */
  readonly large1G: boolean;
  /** Bit 11 (SNP) is legal in leaves (scalable mode, or ECAP.SC). */
  readonly snp: boolean;
  /** SLEE: the X bit is honoured for execute requests (otherwise readable implies executable). */
  readonly execEnable: boolean;
  /** SLADE: hardware sets A (bit 8) on every entry used and D (bit 9) on leaves written. */
  readonly ad: boolean;
}

/** Parameters of a first-level walk (from a PASID-table entry). */
export interface FlWalkParams {
  /** FLPTR: the PML4 / PML5 table (a guest-physical address when {@link FlWalkParams.nested} is set). */
  readonly root: number;
  /** 4 (FLPM = 0) or 5 (FLPM = 1). */
  readonly levels: 4 | 5;
  /** Host address width (reserved address bits 51:haw). */
  readonly haw: number;
  /** CAP.FL1GP: PS allowed at level 3. */
  readonly large1G: boolean;
  /** WPE: supervisor writes honour R/W = 0. */
  readonly wpe: boolean;
  /** Nested: the second-level walk that translates table addresses and the output. */
  readonly nested?: SlWalkParams | undefined;
}

/**
 * Where a walk may start below the root, from a cached paging-structure entry, and where it
 * reports the non-leaf entries it used (the IOTLB's paging-structure caches).
 */
export interface WalkPdeCache {
  /**
   * The deepest cached entry on the walk of `pfn`.
   * @param pfn - input page-frame number
   * @param topLevel - the walk's top level
   * @returns `{ level, table, acc }` of the cached entry, or `undefined`
   */
  lookup(
    pfn: number,
    topLevel: number,
  ): { readonly level: number; readonly table: number; readonly acc: number } | undefined;
  /**
   * Record a non-leaf entry the walk used.
   * @param level - level of the entry (2 … 5)
   * @param pfn - the walked page-frame number
   * @param table - PA of the next table
   * @param acc - accumulated raw permissions
   */
  insert(level: number, pfn: number, table: number, acc: number): void;
}

/** Raw accumulated second-level permissions: R. */
const SL_R = 1;
/** Raw accumulated second-level permissions: W. */
const SL_W = 2;
/** Raw accumulated second-level permissions: X. */
const SL_X = 4;
/** Raw accumulated first-level permissions: R/W. */
const FL_RW = 1;
/** Raw accumulated first-level permissions: U/S. */
const FL_US = 2;
/** Raw accumulated first-level permissions: XD clear. */
const FL_NX_CLEAR = 4;

function fail(
  kind: WalkFailureKind,
  level: number,
  top: boolean,
  stage: 1 | 2,
  nested: 'none' | 'table' | 'output' = 'none',
  nestedTop = false,
): WalkFailure {
  return { ok: false, kind, level, top, stage, nested, nestedTop };
}

/** Reserved mask of address bits 51:haw within the high word (bits 19:haw−32 of hi). */
function hiAddrRsvd(haw: number): number {
  return haw >= 52 ? 0 : (0xfffff & ~((1 << Math.max(0, haw - 32)) - 1)) >>> 0;
}

/** The `VTD_PERM_*` mask of accumulated second-level bits (user = supervisor). */
export function slPerm(acc: number): number {
  return (
    (acc & SL_R ? VTD_PERM_PR | VTD_PERM_UR : 0) |
    (acc & SL_W ? VTD_PERM_PW | VTD_PERM_UW : 0) |
    (acc & SL_X ? VTD_PERM_PX | VTD_PERM_UX : 0)
  );
}

/**
 * The `VTD_PERM_*` mask of accumulated first-level bits: supervisor reads always, supervisor
 * writes unless WPE and R/W = 0, supervisor execute unless XD; user accesses only with U/S = 1.
 * @param acc - raw bits (R/W = 1, U/S = 2, XD clear = 4)
 * @param wpe - write-protect enable
 */
export function flPerm(acc: number, wpe: boolean): number {
  const rw = (acc & FL_RW) !== 0;
  const x = (acc & FL_NX_CLEAR) !== 0;
  let p = VTD_PERM_PR | (rw || !wpe ? VTD_PERM_PW : 0) | (x ? VTD_PERM_PX : 0);
  if (acc & FL_US) p |= VTD_PERM_UR | (rw ? VTD_PERM_UW : 0) | (x ? VTD_PERM_UX : 0);
  return p;
}

/**
 * Walk second-level tables (digest §3.2; §7.2 steps 11–15).
 *
 * @remarks
 * Per level, in QEMU's order: read the entry ({@link WALK_FETCH}), the permission the access
 * needs (R for reads, W for writes; not-present entries fail here: {@link WALK_READ} /
 * {@link WALK_WRITE_DENIED}), reserved bits ({@link WALK_RSVD}). A leaf is level 1 or PS = 1 at
 * level 2 (with SLLPS 2M) or 3 (with SLLPS 1G). With SLADE the A bit is written into each entry
 * used and D into the leaf of a write. With {@link WALK_NOFAULT} only R = W = 0 fails.
 *
 * @param memory - RAM holding the tables
 * @param p - walk parameters
 * @param pfn - input page-frame number
 * @param access - `WALK_*` access flags
 * @param cache - paging-structure cache to start from and fill
 * @returns the translation or the failure
 */
export function walkSecondLevel(
  memory: PhysicalMemory,
  p: SlWalkParams,
  pfn: number,
  access: number,
  cache?: WalkPdeCache,
): WalkResult {
  const top = p.levels;
  if (p.widthBits < 64 && pfn >= (POW2[p.widthBits - 12] as number)) return fail(WALK_WIDTH, top, true, 2);
  const write = (access & WALK_WRITE) !== 0;
  const noFault = (access & WALK_NOFAULT) !== 0;
  const need = noFault ? SL_R | SL_W : write ? SL_W : SL_R;
  const hiRsvd = hiAddrRsvd(p.haw) | 0x4000_0000; // address bits ≥ HAW, bit 62
  let level = top;
  let table = p.root;
  let acc = SL_R | SL_W | SL_X;
  if (cache !== undefined) {
    const c = cache.lookup(pfn, top);
    if (c !== undefined) {
      level = c.level - 1;
      table = c.table;
      acc = c.acc;
    }
  }
  for (;;) {
    const ea = table + (Math.floor(pfn / (SPAN[level - 1] as number)) % 512) * 8;
    let lo: number;
    let hi: number;
    try {
      lo = memory.read64Lo(ea);
      hi = memory.read64Hi(ea);
    } catch (err) {
      if (err instanceof BusError) return fail(WALK_FETCH, level, level === top, 2);
      throw err;
    }
    const bits = (lo & 3) | (p.execEnable ? lo & SL_X : SL_X);
    if ((bits & need) === 0) return fail(write ? WALK_WRITE_DENIED : WALK_READ, level, level === top, 2);
    if ((hi & hiRsvd) !== 0) return fail(WALK_RSVD, level, level === top, 2);
    const ps = (lo & 0x80) !== 0;
    const leaf = level === 1 || (ps && ((level === 2 && p.large2M) || (level === 3 && p.large1G)));
    if (!leaf) {
      // Non-leaf: bit 11 reserved; PS reserved (levels 4/5, or a large size SLLPS lacks).
      if ((lo & 0x800) !== 0 || ps) return fail(WALK_RSVD, level, level === top, 2);
    } else {
      if ((lo & 0x800) !== 0 && !p.snp) return fail(WALK_RSVD, level, level === top, 2);
      if (level === 2 && (lo & 0x1f_f000) !== 0) return fail(WALK_RSVD, level, level === top, 2);
      if (level === 3 && (lo & 0x3fff_f000) !== 0) return fail(WALK_RSVD, level, level === top, 2);
    }
    acc &= bits;
    const next = (hi & 0xfffff) * TWO32 + ((lo & 0xffff_f000) >>> 0);
    if (!leaf) {
      if (p.ad && (lo & 0x100) === 0 && !writeLo(memory, ea, lo | 0x100))
        return fail(WALK_FETCH, level, level === top, 2);
      if (cache !== undefined) cache.insert(level, pfn, next, acc);
      table = next;
      level--;
      continue;
    }
    if (!noFault) {
      if ((acc & need) === 0) return fail(write ? WALK_WRITE_DENIED : WALK_READ, level, level === top, 2);
      if ((access & WALK_EXEC) !== 0 && (acc & SL_X) === 0)
        return fail(WALK_EXEC_DENIED, level, level === top, 2);
    }
    let dirty = true;
    if (p.ad) {
      let nlo = lo | 0x100;
      if (write && (acc & SL_W) !== 0) nlo |= 0x200;
      dirty = (nlo & 0x200) !== 0;
      if (nlo !== lo && !writeLo(memory, ea, nlo)) return fail(WALK_FETCH, level, level === top, 2);
    }
    const shift = level === 1 ? 12 : level === 2 ? 21 : 30;
    return { ok: true, outputBase: next, shift, level, perm: slPerm(acc), dirty, global: false };
  }
}

function writeLo(memory: PhysicalMemory, pa: number, lo: number): boolean {
  try {
    memory.write32(pa, lo >>> 0);
    return true;
  } catch (err) {
    if (err instanceof BusError) return false;
    throw err;
  }
}

/**
 * Whether a first-level input address is canonical: bits 63:N−1 all equal bit N−1, N = 48 or 57.
 * @param addr - input address (u64)
 * @param levels - 4 or 5
 */
export function isCanonical(addr: bigint, levels: 4 | 5): boolean {
  const n = levels === 5 ? 57n : 48n;
  const upper = BigInt.asUintN(64, addr) >> (n - 1n);
  return upper === 0n || upper === (1n << (65n - n)) - 1n;
}

/**
 * Translate a guest-physical table address through the nested second level.
 * @returns the PA, or the failure
 */
function nestedTable(
  memory: PhysicalMemory,
  sl: SlWalkParams,
  gpa: number,
  write: boolean,
  top: boolean,
): number | WalkFailure {
  const r = walkSecondLevel(memory, sl, Math.floor(gpa / 4096), write ? WALK_WRITE : 0);
  if (r.ok) return r.outputBase + (gpa % 2 ** r.shift);
  const kind =
    r.kind === WALK_READ ? WALK_TABLE_READ : r.kind === WALK_WRITE_DENIED ? WALK_TABLE_WRITE : r.kind;
  return fail(kind, r.level, r.top, 2, 'table', top);
}

/**
 * Write A/D flags into a first-level entry at `ea`; in a nested walk the table page (guest-physical
 * `tableAddr`) must first be writable at the second level.
 * @returns `undefined` on success, else the failure
 */
function writeFlags(
  memory: PhysicalMemory,
  sl: SlWalkParams | undefined,
  tableAddr: number,
  ea: number,
  lo: number,
  level: number,
  isTop: boolean,
): WalkFailure | undefined {
  if (sl !== undefined) {
    const t = nestedTable(memory, sl, tableAddr, true, isTop);
    if (typeof t !== 'number') return t;
  }
  return writeLo(memory, ea, lo) ? undefined : fail(WALK_FETCH, level, isTop, 1);
}

/**
 * Walk first-level (x86-64 format) tables (digest §3.3; §7.3 step 21b; nested 21d).
 *
 * @remarks
 * Per level: read ({@link WALK_FETCH}), P ({@link WALK_NOT_PRESENT}), reserved bits
 * ({@link WALK_RSVD}: address bits 51:haw, PS at levels 4/5 or at level 3 without FL1GP, 20:13 /
 * 29:13 in large leaves). Non-leaf entries get A set as they are used. At the leaf: user requests
 * need U/S at every level ({@link WALK_USER}); writes need R/W at every level, except supervisor
 * writes with WPE = 0 ({@link WALK_WRITE_DENIED}); execute needs XD = 0 everywhere
 * ({@link WALK_EXEC_DENIED}); then A (and D for a permitted write) are written into the leaf. The
 * canonical check is the caller's (see {@link isCanonical}); only address bits 56:12 (5 levels) or
 * 47:12 (4 levels) of `pfn` index the tables.
 *
 * Nested: every table address (FLPTR and the pointers in entries) is a guest-physical address
 * translated by the second level (read; write for an A/D update), and so is the leaf output (with
 * the request's access). Permissions are the AND of both stages; the page size is the smaller
 * one. The paging-structure cache then holds guest-physical table addresses.
 *
 * @param memory - RAM
 * @param p - walk parameters
 * @param pfn - input page-frame number
 * @param access - `WALK_*` flags
 * @param cache - paging-structure cache
 * @returns the translation or the failure
 */
export function walkFirstLevel(
  memory: PhysicalMemory,
  p: FlWalkParams,
  pfn: number,
  access: number,
  cache?: WalkPdeCache,
): WalkResult {
  const top = p.levels;
  const sl = p.nested;
  const write = (access & WALK_WRITE) !== 0;
  const priv = (access & WALK_PRIV) !== 0;
  const noFault = (access & WALK_NOFAULT) !== 0;
  const hiRsvd = hiAddrRsvd(p.haw);
  const idxPfn = pfn % (SPAN[top] as number);
  let level: number = top;
  let tableAddr = p.root;
  let acc = FL_RW | FL_US | FL_NX_CLEAR;
  if (cache !== undefined) {
    const c = cache.lookup(idxPfn, top);
    if (c !== undefined) {
      level = c.level - 1;
      tableAddr = c.table;
      acc = c.acc;
    }
  }
  for (;;) {
    const isTop = level === top;
    let tablePa = tableAddr;
    if (sl !== undefined) {
      const t = nestedTable(memory, sl, tableAddr, false, isTop);
      if (typeof t !== 'number') return t;
      tablePa = t;
    }
    const ea = tablePa + (Math.floor(idxPfn / (SPAN[level - 1] as number)) % 512) * 8;
    let lo: number;
    let hi: number;
    try {
      lo = memory.read64Lo(ea);
      hi = memory.read64Hi(ea);
    } catch (err) {
      if (err instanceof BusError) return fail(WALK_FETCH, level, isTop, 1);
      throw err;
    }
    if ((lo & 1) === 0) return fail(WALK_NOT_PRESENT, level, isTop, 1);
    if ((hi & hiRsvd) !== 0) return fail(WALK_RSVD, level, isTop, 1);
    const ps = (lo & 0x80) !== 0;
    if (ps && (level >= 4 || (level === 3 && !p.large1G))) return fail(WALK_RSVD, level, isTop, 1);
    const leaf = level === 1 || ps;
    if (leaf) {
      if (level === 2 && (lo & 0x1f_e000) !== 0) return fail(WALK_RSVD, level, isTop, 1);
      if (level === 3 && (lo & 0x3fff_e000) !== 0) return fail(WALK_RSVD, level, isTop, 1);
    }
    acc &= (lo & 2 ? FL_RW : 0) | (lo & 4 ? FL_US : 0) | (hi & 0x8000_0000 ? 0 : FL_NX_CLEAR);
    const next = (hi & 0xfffff) * TWO32 + ((lo & 0xffff_f000) >>> 0);
    if (!leaf) {
      if ((lo & 0x20) === 0) {
        const f = writeFlags(memory, sl, tableAddr, ea, lo | 0x20, level, isTop);
        if (f !== undefined) return f;
      }
      if (cache !== undefined) cache.insert(level, idxPfn, next, acc);
      tableAddr = next;
      level--;
      continue;
    }
    let perm = flPerm(acc, p.wpe);
    if (!noFault) {
      if (!priv && (acc & FL_US) === 0) return fail(WALK_USER, level, isTop, 1);
      if (write && (perm & (priv ? VTD_PERM_PW : VTD_PERM_UW)) === 0)
        return fail(WALK_WRITE_DENIED, level, isTop, 1);
      if ((access & WALK_EXEC) !== 0 && (perm & (priv ? VTD_PERM_PX : VTD_PERM_UX)) === 0)
        return fail(WALK_EXEC_DENIED, level, isTop, 1);
    }
    let shift: 12 | 21 | 30 = level === 1 ? 12 : level === 2 ? 21 : 30;
    let outputBase = next;
    let dirtySl = true;
    if (sl !== undefined) {
      // The output is a guest-physical address: translate the page with the request's access.
      const gpfn = Math.floor(next / 4096) + (idxPfn % (SPAN[level - 1] as number));
      const r = walkSecondLevel(memory, sl, gpfn, access & (WALK_WRITE | WALK_EXEC | WALK_NOFAULT));
      if (!r.ok) return { ...r, nested: 'output' };
      perm &= r.perm;
      dirtySl = r.dirty;
      // The combined page is the smaller of the two stages' pages.
      if (r.shift <= shift) {
        shift = r.shift;
        outputBase = r.outputBase;
      } else outputBase = r.outputBase + (next % 2 ** r.shift);
    }
    const wantsD = write && (perm & (priv ? VTD_PERM_PW : VTD_PERM_UW)) !== 0;
    const nlo = lo | 0x20 | (wantsD ? 0x40 : 0);
    if (nlo !== lo) {
      const f = writeFlags(memory, sl, tableAddr, ea, nlo, level, isTop);
      if (f !== undefined) return f;
    }
    return {
      ok: true,
      outputBase,
      shift,
      level,
      perm,
      dirty: (nlo & 0x40) !== 0 && dirtySl,
      global: (lo & 0x100) !== 0,
    };
  }
}
