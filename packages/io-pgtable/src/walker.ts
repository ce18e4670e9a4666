/**
 * The one generic page-table walker: map, unmap, lookup, dirty harvesting and free for every
 * format, driven by a {@link PtFormatInstance}.
 *
 * @remarks
 * Plays the role of drivers/iommu/generic_pt/iommu_pt.h (and of the per-format walkers
 * `__arm_lpae_map`, `__arm_lpae_unmap`, `__arm_v7s_map`, … of io-pgtable-arm.c and
 * io-pgtable-arm-v7s.c). Works on IOVA *offsets*: the IOVA with the bits at and above `vaBits`
 * removed (the public ops in `io-pgtable.ts` check and strip them). Hot paths use numbers and the
 * table views of {@link PageTableMemory} only.
 *
 * Place keeping: the walker remembers, per depth, the last table it visited and the IOVA region it
 * covers, so consecutive runs (and consecutive calls) continue from the deepest table still
 * covering the address instead of re-walking from the root. The memory is dropped whenever a table
 * is freed.
 *
 * Speed: per-level constants (entry sizes and their inverses, index masks, run lengths) live in
 * typed arrays built once; indexes come from multiplying by exact powers of two (no division, no
 * `**`, no `%`); when the format supplies {@link PtFastCodec} the hot paths decode entries from
 * masks and a per-level kind table instead of calling the format; rare cases (tables in the way,
 * holes, partial unmaps, errors) leave the hot loops for separate methods.
 */

import { type ErrnoCode, ErrnoError, shouldFail } from '@iommu-ts/base';
import type { IoPgtableCfg } from './cfg.js';
import { PtEntryKind, type PtFormatInstance, type PtLeafTemplate } from './format.js';
import type { IommuDirtyBitmap, IommuFlushOps, IommuIotlbGather } from './gather.js';
import type { PageTableMemory } from './memory.js';
import { IOMMU_DIRTY_NO_CLEAR, IOMMU_READ, IOMMU_WRITE } from './prot.js';
import { IO_PGTABLE_QUIRK_NO_WARN } from './quirks.js';

const EMPTY = PtEntryKind.EMPTY;
const TABLE = PtEntryKind.TABLE;
const LEAF = PtEntryKind.LEAF;
const INVALID = PtEntryKind.INVALID;
const TWO32 = 4294967296;

/** 2^lg for an integer lg ≥ 0, without `**` (a call to pow) for the common sizes. */
function pow2(lg: number): number {
  return lg < 31 ? 1 << lg : 2 ** lg;
}

/**
 * The error `mapPages` throws: an `ErrnoError` that also says how many bytes were mapped
 * before the failure (Linux adds them to `*mapped` even on error).
 */
export class IoPgtableMapError extends ErrnoError {
  /** Bytes mapped by this call before the error; they stay mapped. */
  readonly mapped: number;

  /**
   * @param code - the errno name
   * @param mapped - bytes already mapped by the failing call
   * @param message - what went wrong
   */
  constructor(code: ErrnoCode, mapped: number, message?: string) {
    super(code, message);
    this.name = 'IoPgtableMapError';
    this.mapped = mapped;
  }
}

/** A visitor of {@link PtWalker.forEachEntry}: one call per non-empty entry, tables before their contents. */
export type PtEntryVisitor = (
  depth: number,
  index: number,
  entryPa: number,
  lo: number,
  hi: number,
  kind: PtEntryKind,
  iovaOffset: number,
) => void;

/**
 * The generic walker bound to one table (one format instance, one memory, one root).
 *
 * @remarks
 * Used by `io-pgtable.ts`; exported for formats' tests and for `dump`. All IOVAs are offsets in
 * `[0, 2^vaBits)`; `iovaBase` is added to them for the TLB callbacks and the dirty bitmap.
 */
export class PtWalker {
  /** The configured format. */
  readonly fmt: PtFormatInstance;
  /** Where the tables live. */
  readonly mem: PageTableMemory;
  /** Physical address of the top table. */
  readonly rootPa: number;
  /** The number added to IOVA offsets to form the IOVAs reported to callbacks (see `IommuFlushOps`). */
  iovaBase = 0;
  /** Arguments of {@link PtWalker.mapStaged} and {@link PtWalker.unmapStaged}. @internal */
  readonly staged: Float64Array = new Float64Array(2);

  private readonly tlb: IommuFlushOps | null;
  private readonly cookie: unknown;
  private readonly nLevels: number;
  private readonly ew: number;
  private readonly granule: number;
  /**
   * Per depth `d`, at `4d`: bytes one entry translates, its inverse, and the inverse of the bytes
   * one table translates (place-keeping keys). One array, so that V8 loads its base once.
   */
  private readonly lvF: Float64Array;
  /** Per depth `d`, at `4d`: log2 of the entry size, index mask (entries - 1), run length. */
  private readonly lvI: Int32Array;
  private readonly tableBytes: Int32Array;
  /** Per depth: whether the level holds leaves of several sizes (then leafSizeLg2 is asked). */
  private readonly multiSize: Uint8Array;
  private readonly leafDepth: Int8Array;
  private readonly sizeOk: Uint8Array;
  /** Fast codec: entry kind at `(depth << 8) | (lo & 0xff)`, or null to call `classify`. */
  private readonly kinds: Uint8Array | null;
  private readonly tLo: number;
  private readonly tHi: number;
  private readonly leafLo: Int32Array;
  private readonly leafHi: Int32Array;
  private readonly mapByPage: boolean;
  private readonly unmapByPage: boolean;
  private readonly addWithoutGather: boolean;
  private readonly addForTables: boolean;
  private readonly wholeLeaf: boolean;
  private readonly stackKey: Float64Array;
  private readonly stackWords: Uint32Array[];
  private readonly stackWi: Int32Array;
  private readonly slotIsTable: Uint8Array;
  private readonly slotSaved: Uint32Array;
  private readonly warnSink: ((message: string) => void) | null;
  private readonly noWarn: boolean;
  private tmplProt = -1;
  private tmplSize = -1;
  private tmpl: PtLeafTemplate | null = null;
  private curWords: Uint32Array;
  private curWi = 0;
  private failWords: Uint32Array;
  private failE = 0;
  private failDepth = 0;
  private scanTables = 0;
  private scanGot = 0;

  /**
   * Allocate the top table and build a walker over it.
   * @param fmt - the configured format
   * @param mem - table memory
   * @param cfg - the configuration (TLB callbacks, warning sink, quirk NO_WARN)
   * @param cookie - passed to every TLB callback
   * @throws ErrnoError `ENOMEM` if the top table cannot be allocated
   */
  constructor(fmt: PtFormatInstance, mem: PageTableMemory, cfg: IoPgtableCfg, cookie: unknown) {
    this.fmt = fmt;
    this.mem = mem;
    this.tlb = cfg.tlb ?? null;
    this.cookie = cookie;
    const n = fmt.levels.length;
    this.nLevels = n;
    this.ew = fmt.entryWords;
    this.granule = fmt.granule;
    this.lvF = new Float64Array(4 * n);
    this.lvI = new Int32Array(4 * n);
    this.tableBytes = new Int32Array(n);
    this.multiSize = new Uint8Array(n);
    this.leafDepth = new Int8Array(64).fill(-1);
    this.sizeOk = new Uint8Array(64);
    let maxRun = 1;
    fmt.levels.forEach((l, d) => {
      this.lvI[d * 4] = l.shift;
      this.lvF[d * 4] = 2 ** l.shift;
      this.lvF[d * 4 + 1] = 2 ** -l.shift;
      this.lvF[d * 4 + 2] = 2 ** -(l.shift + l.indexBits);
      this.lvI[d * 4 + 1] = 2 ** l.indexBits - 1;
      this.lvI[d * 4 + 2] = 2 ** l.runBits;
      maxRun = Math.max(maxRun, 2 ** l.runBits);
      this.tableBytes[d] = l.tableBytes;
      this.multiSize[d] = l.leafSizesLg2.length > 1 ? 1 : 0;
      for (const s of l.leafSizesLg2) this.leafDepth[s] = d;
    });
    for (let s = 0; s < 64; s++) {
      if ((fmt.pgsizeBitmap >> BigInt(s)) & 1n && this.leafDepth[s] !== -1) this.sizeOk[s] = 1;
    }
    const fast = fmt.fastCodec;
    this.leafLo = new Int32Array(n);
    this.leafHi = new Int32Array(n);
    if (fast !== undefined) {
      // Probe `classify` once per level and low byte: a non-zero entry whose kind bits are `b`.
      const kinds = new Uint8Array(n << 8);
      for (let d = 0; d < n; d++) {
        for (let b = 0; b < 256; b++) {
          kinds[(d << 8) | b] = fmt.classify(((b & fast.kindBitsLo) | 0x8000_0000) >>> 0, 0, d);
        }
        this.leafLo[d] = fast.leafAddrLo[d] ?? 0;
        this.leafHi[d] = fast.leafAddrHi[d] ?? 0;
      }
      this.kinds = kinds;
      this.tLo = fast.tableAddrLo | 0;
      this.tHi = fast.tableAddrHi | 0;
    } else {
      this.kinds = null;
      this.tLo = 0;
      this.tHi = 0;
    }
    const policy = fmt.policy;
    this.mapByPage = policy.mapPageByPage;
    this.unmapByPage = policy.unmapPageByPage;
    this.addWithoutGather = policy.tlbAddPageWithoutGather;
    this.addForTables = policy.tlbAddPageForTables;
    this.wholeLeaf = policy.partialUnmap === 'whole-leaf-at-start';
    this.slotIsTable = new Uint8Array(maxRun);
    this.slotSaved = new Uint32Array(2 * maxRun);
    this.warnSink = cfg.warn ?? null;
    this.noWarn = (cfg.quirks & IO_PGTABLE_QUIRK_NO_WARN) !== 0;
    this.stackKey = new Float64Array(n).fill(Number.NaN);
    this.stackWi = new Int32Array(n);
    this.rootPa = this.allocTable(0);
    this.curWords = mem.tableWords(this.rootPa);
    this.failWords = this.curWords;
    this.stackWords = new Array<Uint32Array>(n).fill(this.curWords);
    this.stackKey[0] = 0;
    this.stackWi[0] = mem.tableWordIndex(this.rootPa);
  }

  /**
   * log2 of `pgsize` if it is one supported page size, else -1.
   * @param pgsize - bytes
   */
  sizeLg2Of(pgsize: number): number {
    let lg: number;
    if (pgsize > 0 && pgsize <= 0x4000_0000 && (pgsize | 0) === pgsize) {
      if ((pgsize & (pgsize - 1)) !== 0) return -1;
      lg = 31 - Math.clz32(pgsize);
    } else {
      if (!(pgsize > 0) || !Number.isInteger(pgsize)) return -1;
      lg = Math.log2(pgsize);
      if (!Number.isInteger(lg) || lg >= 64) return -1;
    }
    return this.sizeOk[lg] === 1 ? lg : -1;
  }

  // ---- entry decoding: the fast codec when the format has one, else the format's functions ----

  private kindAt(lo: number, hi: number, d: number): PtEntryKind {
    if (lo === 0 && hi === 0) return EMPTY;
    const kinds = this.kinds;
    if (kinds !== null) return kinds[(d << 8) | (lo & 0xff)] as PtEntryKind;
    return this.fmt.classify(lo, hi, d);
  }

  private tablePaAt(lo: number, hi: number, d: number): number {
    if (this.kinds !== null) return (hi & this.tHi) * TWO32 + ((lo & this.tLo) >>> 0);
    return this.fmt.tablePa(lo, hi, d);
  }

  private leafLg2At(lo: number, hi: number, d: number): number {
    if (this.kinds !== null) return this.lvI[d * 4] as number;
    return this.fmt.leafSizeLg2(lo, hi, d);
  }

  private allocTable(depth: number): number {
    const bytes = this.tableBytes[depth] as number;
    if (shouldFail('io_pgtable.alloc_table')) throw new ErrnoError('ENOMEM', 'injected: table allocation');
    const pa = this.mem.allocTable(bytes);
    const max = this.fmt.maxTablePa;
    if (max !== undefined && pa >= max) {
      this.mem.freeTable(pa, bytes);
      throw new ErrnoError('ENOMEM', 'table memory above the format limit');
    }
    return pa;
  }

  private forget(): void {
    this.stackKey.fill(Number.NaN);
    this.stackKey[0] = 0;
  }

  /**
   * Reach the table at `tdepth` covering `off`; on success it is in `curWords`/`curWi` and the
   * result is 0. Else: -1 empty slot (when `!alloc`), -2 leaf, -3 invalid.
   */
  private reach(off: number, tdepth: number, alloc: boolean): number {
    const ew = this.ew;
    const stackKey = this.stackKey;
    const lvF = this.lvF;
    let d = tdepth;
    while (d > 0 && stackKey[d] !== Math.floor(off * (lvF[d * 4 + 2] as number))) d--;
    let words = this.stackWords[d] as Uint32Array;
    let wi = this.stackWi[d] as number;
    for (; d < tdepth; d++) {
      const e = wi + ((off * (this.lvF[d * 4 + 1] as number)) & (this.lvI[d * 4 + 1] as number)) * ew;
      const lo = words[e] as number;
      const hi = ew === 2 ? (words[e + 1] as number) : 0;
      const kind = this.kindAt(lo, hi, d);
      let pa: number;
      if (kind === TABLE) {
        pa = this.tablePaAt(lo, hi, d);
      } else if (kind === EMPTY) {
        if (!alloc) {
          return -1;
        }
        pa = this.allocTable(d + 1);
        this.fmt.writeTable(words, e, pa, d);
      } else {
        this.failWords = words;
        this.failE = e;
        this.failDepth = d;
        return kind === LEAF ? -2 : -3;
      }
      words = this.mem.tableWords(pa);
      wi = this.mem.tableWordIndex(pa);
      this.stackWords[d + 1] = words;
      this.stackWi[d + 1] = wi;
      stackKey[d + 1] = Math.floor(off * (lvF[d * 4 + 6] as number));
    }
    this.curWords = words;
    this.curWi = wi;
    return 0;
  }

  /**
   * Map `pgcount` pages of `2^sizeLg2` bytes at IOVA offset `off` to `pa`.
   *
   * @returns bytes mapped (`pgcount << sizeLg2`)
   * @throws IoPgtableMapError `EINVAL` without READ/WRITE; `EEXIST`/`EADDRINUSE` over an existing
   *   mapping; `ENOMEM` when a table cannot be allocated; `mapped` tells what was mapped before
   */
  map(off: number, pa: number, sizeLg2: number, pgcount: number, prot: number): number {
    this.staged[0] = off;
    this.staged[1] = pa;
    return this.mapStaged(sizeLg2, pgcount, prot);
  }

  /**
   * The common case of {@link PtWalker.mapStaged} in a small method V8 can inline: one page of the
   * size and prot of the previous map, into an empty slot of the remembered leaf table.
   * @param sizeLg2 - log2 page size
   * @param prot - `IOMMU_*` flags
   * @returns bytes mapped, or -1 (nothing done) when the case does not apply
   * @internal
   */
  mapOneStaged(sizeLg2: number, prot: number): number {
    const t = this.tmpl;
    if (t === null || prot !== this.tmplProt || sizeLg2 !== this.tmplSize) return -1;
    const d = this.leafDepth[sizeLg2] as number;
    const b = d * 4;
    if (sizeLg2 !== this.lvI[b]) return -1;
    const lvF = this.lvF;
    const off = this.staged[0] as number;
    if (this.stackKey[d] !== Math.floor(off * (lvF[b + 2] as number))) return -1;
    const words = this.stackWords[d] as Uint32Array;
    const e =
      (this.stackWi[d] as number) + ((off * (lvF[b + 1] as number)) & (this.lvI[b + 1] as number)) * this.ew;
    if (words[e] !== 0 || (this.ew === 2 && words[e + 1] !== 0)) return -1;
    this.fmt.writeLeaves(words, e, this.staged[1] as number, d, sizeLg2, 1, t);
    return lvF[b] as number;
  }

  /**
   * {@link PtWalker.map} with the IOVA offset in `staged[0]` and the output address in
   * `staged[1]`: doubles passed through a typed array are not boxed, which saves an allocation per
   * call on the ops' hot path.
   * @param sizeLg2 - log2 page size
   * @param pgcount - number of pages
   * @param prot - `IOMMU_*` flags
   * @internal
   */
  mapStaged(sizeLg2: number, pgcount: number, prot: number): number {
    let off = this.staged[0] as number;
    let pa = this.staged[1] as number;
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0)
      throw new IoPgtableMapError('EINVAL', 0, 'prot has neither READ nor WRITE');
    const d = this.leafDepth[sizeLg2] ?? -1;
    if (d < 0) throw new IoPgtableMapError('EINVAL', 0, 'unsupported page size');
    let t = this.tmpl;
    if (t === null || this.tmplProt !== prot || this.tmplSize !== sizeLg2)
      t = this.template(prot, d, sizeLg2);
    const fmt = this.fmt;
    const ew = this.ew;
    const lgContig = sizeLg2 - (this.lvI[d * 4] as number);
    const contig = 1 << lgContig;
    const pgsize = (this.lvF[d * 4] as number) * contig;
    const inv = this.lvF[d * 4 + 1] as number;
    const invCov = this.lvF[d * 4 + 2] as number;
    const mask = this.lvI[d * 4 + 1] as number;
    const run = this.lvI[d * 4 + 2] as number;
    const byPage = this.mapByPage;
    let mapped = 0;
    let remaining = pgcount;
    while (remaining > 0) {
      let words: Uint32Array;
      let wi: number;
      if (this.stackKey[d] === Math.floor(off * invCov)) {
        words = this.stackWords[d] as Uint32Array;
        wi = this.stackWi[d] as number;
      } else {
        this.reachForMap(off, d, mapped);
        words = this.curWords;
        wi = this.curWi;
      }
      const idx = (off * inv) & mask;
      let n = (run - (idx & (run - 1))) >> lgContig;
      if (n > remaining) n = remaining;
      if (byPage) n = 1;
      const wi0 = wi + idx * ew;
      const end = wi0 + n * contig * ew;
      // Every slot is checked before anything is written; non-empty ones go the slow way.
      let w = wi0;
      if (ew === 2) {
        while (w < end && ((words[w] as number) | (words[w + 1] as number)) === 0) w += 2;
      } else {
        while (w < end && words[w] === 0) w++;
      }
      if (w < end) this.prepareSlots(words, wi0, (w - wi0) / ew, n * contig, d, off, mapped);
      fmt.writeLeaves(words, wi0, pa, d, sizeLg2, n, t);
      const bytes = n * pgsize;
      mapped += bytes;
      off += bytes;
      pa += bytes;
      remaining -= n;
    }
    return mapped;
  }

  private template(prot: number, d: number, sizeLg2: number): PtLeafTemplate {
    let t: PtLeafTemplate;
    try {
      t = this.fmt.leafTemplate(prot, d, sizeLg2);
    } catch (err) {
      if (err instanceof ErrnoError && !(err instanceof IoPgtableMapError)) {
        throw new IoPgtableMapError(err.code, 0, err.message);
      }
      throw err;
    }
    this.tmpl = t;
    this.tmplProt = prot;
    this.tmplSize = sizeLg2;
    return t;
  }

  /** `reach` for map, turning failures into IoPgtableMapError. */
  private reachForMap(off: number, d: number, mapped: number): void {
    let r: number;
    try {
      r = this.reach(off, d, true);
    } catch (err) {
      if (err instanceof ErrnoError) throw new IoPgtableMapError(err.code, mapped, err.message);
      throw err;
    }
    if (r !== 0) {
      this.warnGated(`map: IOVA ${this.hex(off)} lies inside an existing mapping`);
      const code = r === -2 ? this.fmt.policy.existingLeafErrno : 'EEXIST';
      throw new IoPgtableMapError(code, mapped, 'a larger mapping already covers the range');
    }
  }

  /**
   * The slow part of a map's slot check, from the first non-empty entry `k0` on: tables are
   * removed as they are met (each as an unmap of its own slot), a leaf fails the map.
   */
  private prepareSlots(
    words: Uint32Array,
    wi0: number,
    k0: number,
    entries: number,
    d: number,
    off: number,
    mapped: number,
  ): void {
    const fmt = this.fmt;
    const ew = this.ew;
    const slot = this.lvF[d * 4] as number;
    for (let k = k0; k < entries; k++) {
      const e = wi0 + k * ew;
      const lo = words[e] as number;
      const hi = ew === 2 ? (words[e + 1] as number) : 0;
      const kind = this.kindAt(lo, hi, d);
      if (kind === EMPTY) continue;
      if (kind === TABLE) {
        if (fmt.policy.mapOverTable === 'free-if-empty' && this.hasLeaves(this.tablePaAt(lo, hi, d), d + 1)) {
          this.warnGated(`map: a table with mappings occupies IOVA ${this.hex(off + k * slot)}`);
          throw new IoPgtableMapError(
            fmt.policy.existingLeafErrno,
            mapped,
            'a table with mappings occupies the slot',
          );
        }
        // Each slot is removed as an unmap of one entry at this level (its own IOVA and size).
        this.removeTable(words, e, lo, hi, d, off + k * slot, slot);
        continue;
      }
      this.warnGated(`map: IOVA ${this.hex(off + k * slot)} is already mapped`);
      throw new IoPgtableMapError(fmt.policy.existingLeafErrno, mapped, 'the IOVA is already mapped');
    }
  }

  /** Clear a table entry, flush the walk cache for its range and free the sub-tree. */
  private removeTable(
    words: Uint32Array,
    e: number,
    lo: number,
    hi: number,
    depth: number,
    off: number,
    size: number,
  ): void {
    words[e] = 0;
    if (this.ew === 2) words[e + 1] = 0;
    this.tlb?.tlbFlushWalk?.(this.iovaBase + off, size, this.granule, this.cookie);
    this.freeSubtree(this.tablePaAt(lo, hi, depth), depth + 1);
  }

  private hasLeaves(tablePa: number, depth: number): boolean {
    const words = this.mem.tableWords(tablePa);
    const wi = this.mem.tableWordIndex(tablePa);
    const ew = this.ew;
    const n = (this.lvI[depth * 4 + 1] as number) + 1;
    for (let i = 0; i < n; i++) {
      const lo = words[wi + i * ew] as number;
      const hi = ew === 2 ? (words[wi + i * ew + 1] as number) : 0;
      const kind = this.kindAt(lo, hi, depth);
      if (kind === LEAF || kind === INVALID) return true;
      if (kind === TABLE && this.hasLeaves(this.tablePaAt(lo, hi, depth), depth + 1)) return true;
    }
    return false;
  }

  /**
   * Free the table at `tablePa` (at `depth`) and every table below it; leaves are skipped. The
   * walker's remembered tables are dropped.
   * @param tablePa - table address
   * @param depth - its level index
   */
  freeSubtree(tablePa: number, depth: number): void {
    this.freeTree(tablePa, depth);
    this.forget();
  }

  private freeTree(tablePa: number, depth: number): void {
    if (depth < this.nLevels - 1) {
      const words = this.mem.tableWords(tablePa);
      const wi = this.mem.tableWordIndex(tablePa);
      const ew = this.ew;
      const n = (this.lvI[depth * 4 + 1] as number) + 1;
      for (let i = 0; i < n; i++) {
        const lo = words[wi + i * ew] as number;
        const hi = ew === 2 ? (words[wi + i * ew + 1] as number) : 0;
        if (this.kindAt(lo, hi, depth) === TABLE) {
          this.freeTree(this.tablePaAt(lo, hi, depth), depth + 1);
        }
      }
    }
    this.mem.freeTable(tablePa, this.tableBytes[depth] as number);
  }

  /**
   * Unmap `pgcount` pages of `2^sizeLg2` bytes from IOVA offset `off`.
   *
   * @returns bytes unmapped; stops (returning what was done) at the first hole, and at a leaf
   *   larger than the page size (partial unmap of a block: the block stays, nothing is done)
   */
  unmap(off: number, sizeLg2: number, pgcount: number, gather: IommuIotlbGather | null): number {
    this.staged[0] = off;
    return this.unmapStaged(sizeLg2, pgcount, gather);
  }

  /**
   * The common case of {@link PtWalker.unmapStaged} in a small method V8 can inline: one page that
   * is a leaf of exactly that size in the remembered leaf table (formats with a fast codec).
   * @param sizeLg2 - log2 page size
   * @param gather - the caller's gather, or null
   * @returns bytes unmapped, or -1 (nothing done) when the case does not apply
   * @internal
   */
  unmapOneStaged(sizeLg2: number, gather: IommuIotlbGather | null): number {
    const kinds = this.kinds;
    if (kinds === null) return -1;
    const d = this.leafDepth[sizeLg2] as number;
    const b = d * 4;
    if (d < 0 || sizeLg2 !== this.lvI[b]) return -1;
    const lvF = this.lvF;
    const off = this.staged[0] as number;
    if (this.stackKey[d] !== Math.floor(off * (lvF[b + 2] as number))) return -1;
    const words = this.stackWords[d] as Uint32Array;
    const e =
      (this.stackWi[d] as number) + ((off * (lvF[b + 1] as number)) & (this.lvI[b + 1] as number)) * this.ew;
    const lo = words[e] as number;
    if (this.ew === 2) {
      if ((lo | (words[e + 1] as number)) === 0 || kinds[(d << 8) | (lo & 0xff)] !== LEAF) return -1;
      words[e] = 0;
      words[e + 1] = 0;
    } else {
      if (lo === 0 || kinds[(d << 8) | (lo & 0xff)] !== LEAF) return -1;
      words[e] = 0;
    }
    const size = lvF[b] as number;
    if (gather !== null ? !gather.queued : this.addWithoutGather)
      this.addPages(gather, this.iovaBase + off, size, 1);
    return size;
  }

  /**
   * {@link PtWalker.unmap} with the IOVA offset in `staged[0]` (see {@link PtWalker.mapStaged}).
   * @param sizeLg2 - log2 page size
   * @param pgcount - number of pages
   * @param gather - the caller's gather, or null
   * @internal
   */
  unmapStaged(sizeLg2: number, pgcount: number, gather: IommuIotlbGather | null): number {
    let off = this.staged[0] as number;
    const d = this.leafDepth[sizeLg2] ?? -1;
    if (d < 0 || !(pgcount > 0)) return 0;
    const ew = this.ew;
    const lgContig = sizeLg2 - (this.lvI[d * 4] as number);
    const contig = 1 << lgContig;
    const pgsize = (this.lvF[d * 4] as number) * contig;
    const inv = this.lvF[d * 4 + 1] as number;
    const invCov = this.lvF[d * 4 + 2] as number;
    const mask = this.lvI[d * 4 + 1] as number;
    const run = this.lvI[d * 4 + 2] as number;
    const byPage = this.unmapByPage;
    const tlb = this.tlb;
    const addPage = tlb !== null ? tlb.tlbAddPage : undefined;
    const callAdd = addPage !== undefined && (gather !== null ? !gather.queued : this.addWithoutGather);
    const kinds = this.kinds;
    const kb = d << 8;
    let unmapped = 0;
    let remaining = pgcount;
    while (remaining > 0) {
      let words: Uint32Array;
      let wi: number;
      if (this.stackKey[d] === Math.floor(off * invCov)) {
        words = this.stackWords[d] as Uint32Array;
        wi = this.stackWi[d] as number;
      } else {
        const r = this.reach(off, d, false);
        if (r !== 0) {
          const got = this.unmapMiss(r, off, gather, callAdd);
          if (got === 0) return unmapped;
          unmapped += got;
          off += got;
          remaining -= Math.ceil(got / pgsize);
          continue;
        }
        words = this.curWords;
        wi = this.curWi;
      }
      const idx = (off * inv) & mask;
      let n = (run - (idx & (run - 1))) >> lgContig;
      if (n > remaining) n = remaining;
      if (byPage) n = 1;
      const wi0 = wi + idx * ew;
      if (contig > 1) {
        // A page size spanning several entries is unmapped slot by slot.
        let i = 0;
        for (; i < n; i++) {
          if (
            this.unmapSlots(words, wi0 + i * contig * ew, d, off + i * pgsize, contig, gather, callAdd) === 0
          )
            break;
        }
        const bytes = i * pgsize;
        unmapped += bytes;
        if (i < n) return unmapped;
        off += bytes;
        remaining -= i;
        continue;
      }
      // Leaf prefix, fast; anything else (tables, holes, other sizes) continues in scanSlow.
      let i = 0;
      if (kinds !== null) {
        if (ew === 2) {
          for (; i < n; i++) {
            const lo = words[wi0 + 2 * i] as number;
            if (kinds[kb | (lo & 0xff)] !== LEAF || (lo | (words[wi0 + 2 * i + 1] as number)) === 0) break;
          }
        } else {
          for (; i < n; i++) {
            const lo = words[wi0 + i] as number;
            if (lo === 0 || kinds[kb | (lo & 0xff)] !== LEAF) break;
          }
        }
      }
      let tables = 0;
      if (i < n) {
        i = this.scanSlow(words, wi0, i, n, d, off, pgsize, sizeLg2, gather, callAdd);
        if (i < 0) {
          const got = this.scanGot;
          unmapped += got;
          off += got;
          remaining -= Math.ceil(got / pgsize);
          continue;
        }
        tables = this.scanTables;
      }
      if (i > 0) {
        const end = wi0 + i * ew;
        if (i <= 8) {
          for (let w = wi0; w < end; w++) words[w] = 0;
        } else {
          words.fill(0, wi0, end);
        }
        if (callAdd) {
          const base = this.iovaBase + off;
          const cookie = this.cookie;
          if (tables === 0 || this.addForTables) {
            this.addPages(gather, base, pgsize, i);
          } else {
            const isTable = this.slotIsTable;
            for (let j = 0; j < i; j++) {
              if (isTable[j] === 0) addPage.call(tlb, gather, base + j * pgsize, pgsize, cookie);
            }
          }
        }
      }
      const bytes = i * pgsize;
      unmapped += bytes;
      if (i < n) return unmapped;
      off += bytes;
      remaining -= i;
    }
    return unmapped;
  }

  /** `tlbAddPage` for `count` consecutive pages from `base` (a small method, so V8 inlines the callback). */
  private addPages(gather: IommuIotlbGather | null, base: number, pgsize: number, count: number): void {
    const tlb = this.tlb;
    if (tlb === null) return;
    const cookie = this.cookie;
    for (let j = 0; j < count; j++) tlb.tlbAddPage?.(gather, base + j * pgsize, pgsize, cookie);
  }

  /** The walk to the leaf table stopped at an empty, leaf or invalid entry above it. */
  private unmapMiss(r: number, off: number, gather: IommuIotlbGather | null, callAdd: boolean): number {
    if (r === -2 && this.wholeLeaf) {
      const got = this.unmapWholeLeaf(off, gather, callAdd);
      if (got !== 0) return got;
    }
    if (r === -2) this.warnPartial(off);
    else this.warnGated(`unmap: nothing is mapped at IOVA ${this.hex(off)}`);
    return 0;
  }

  /**
   * The general slot scan of an unmap run from slot `i0` (slots before it are leaves): tables are
   * removed as met, the scan stops at a hole, an invalid entry or a leaf of another size.
   * @returns the number of slots to clear (`scanTables` says how many were tables), or -1 when a
   *   whole larger leaf was removed instead (generic_pt; `scanGot` bytes)
   */
  private scanSlow(
    words: Uint32Array,
    wi0: number,
    i0: number,
    n: number,
    d: number,
    off: number,
    pgsize: number,
    sizeLg2: number,
    gather: IommuIotlbGather | null,
    callAdd: boolean,
  ): number {
    const ew = this.ew;
    const slotIsTable = this.slotIsTable;
    slotIsTable.fill(0, 0, i0);
    let tables = 0;
    let i = i0;
    for (; i < n; i++) {
      const e = wi0 + i * ew;
      const lo = words[e] as number;
      const hi = ew === 2 ? (words[e + 1] as number) : 0;
      const kind = this.kindAt(lo, hi, d);
      if (kind === EMPTY && lo === 0 && hi === 0) {
        this.warnGated(`unmap: nothing is mapped at IOVA ${this.hex(off + i * pgsize)}`);
        break;
      }
      if (kind === TABLE) {
        slotIsTable[i] = 1;
        tables++;
        this.removeTable(words, e, lo, hi, d, off + i * pgsize, pgsize);
      } else if (kind === LEAF) {
        if (this.multiSize[d] === 1) {
          const lg = this.leafLg2At(lo, hi, d);
          if (lg !== sizeLg2) {
            if (this.wholeLeaf && i === 0) {
              const sz = pow2(lg);
              if (off % sz === 0) {
                this.scanGot = this.unmapWholeLeafAt(words, e, d, off, sz, gather, callAdd);
                return -1;
              }
            }
            this.warnPartial(off + i * pgsize);
            break;
          }
        }
        slotIsTable[i] = 0;
      } else {
        this.warnGated(`unmap: invalid entry at IOVA ${this.hex(off + i * pgsize)}`);
        break;
      }
    }
    this.scanTables = tables;
    return i;
  }

  /**
   * Unmap one page that spans `count` entries, slot by slot (io-pgtable-arm-v7s's
   * `__arm_v7s_unmap` with several entries): every slot must be valid (else 0, nothing touched);
   * all are cleared; then in slot order a table slot is flushed (`tlbFlushWalk` of the slot) and
   * freed, a leaf slot gets `tlbAddPage` of the slot. No partial-leaf check: small leaves and
   * tables under the range go too.
   */
  private unmapSlots(
    words: Uint32Array,
    e: number,
    depth: number,
    off: number,
    count: number,
    gather: IommuIotlbGather | null,
    callAdd: boolean,
  ): number {
    const ew = this.ew;
    const kinds = this.slotIsTable;
    const saved = this.slotSaved;
    const slot = this.lvF[depth * 4] as number;
    for (let k = 0; k < count; k++) {
      const lo = words[e + k * ew] as number;
      const hi = ew === 2 ? (words[e + k * ew + 1] as number) : 0;
      const kind = this.kindAt(lo, hi, depth);
      if (kind !== TABLE && kind !== LEAF) {
        this.warnGated(`unmap: nothing is mapped at IOVA ${this.hex(off + k * slot)}`);
        return 0;
      }
      kinds[k] = kind === TABLE ? 1 : 0;
      saved[2 * k] = lo;
      saved[2 * k + 1] = hi;
    }
    words.fill(0, e, e + count * ew);
    const tlb = this.tlb;
    for (let k = 0; k < count; k++) {
      const iova = this.iovaBase + off + k * slot;
      if (kinds[k] === 1) {
        tlb?.tlbFlushWalk?.(iova, slot, this.granule, this.cookie);
        this.freeSubtree(
          this.tablePaAt(saved[2 * k] as number, saved[2 * k + 1] as number, depth),
          depth + 1,
        );
      } else if (callAdd) {
        tlb?.tlbAddPage?.(gather, iova, slot, this.cookie);
      }
    }
    return count * slot;
  }

  private warnGated(message: string): void {
    if (this.warnSink !== null && !this.noWarn) this.warnSink(message);
  }

  private warnPartial(off: number): void {
    // Linux: WARN_ONCE, whatever NO_WARN says.
    this.warnSink?.(`unmap of a partial large IOPTE is not allowed (IOVA ${this.hex(off)})`);
  }

  private hex(off: number): string {
    return `0x${(this.iovaBase + off).toString(16)}`;
  }

  /** generic_pt unmap of a larger leaf met above the target level, at its first byte. */
  private unmapWholeLeaf(off: number, gather: IommuIotlbGather | null, callAdd: boolean): number {
    const d = this.failDepth;
    const words = this.failWords;
    const e = this.failE;
    const lo = words[e] as number;
    const hi = this.ew === 2 ? (words[e + 1] as number) : 0;
    const sz = pow2(this.leafLg2At(lo, hi, d));
    if (off % sz !== 0) return 0;
    return this.unmapWholeLeafAt(words, e, d, off, sz, gather, callAdd);
  }

  private unmapWholeLeafAt(
    words: Uint32Array,
    e: number,
    depth: number,
    off: number,
    sz: number,
    gather: IommuIotlbGather | null,
    callAdd: boolean,
  ): number {
    const entries = sz / (this.lvF[depth * 4] as number);
    const first =
      e -
      (((off * (this.lvF[depth * 4 + 1] as number)) & (this.lvI[depth * 4 + 1] as number)) % entries) *
        this.ew;
    words.fill(0, first, first + entries * this.ew);
    if (callAdd) this.tlb?.tlbAddPage?.(gather, this.iovaBase + off, sz, this.cookie);
    return sz;
  }

  /**
   * Translate an IOVA offset: the output address of the byte at `off`, or -1 when not mapped.
   * @param off - IOVA offset
   */
  lookup(off: number): number {
    const kinds = this.kinds;
    if (kinds === null) return this.lookupSlow(off);
    const ew = this.ew;
    const last = this.nLevels - 1;
    const mem = this.mem;
    const stackKey = this.stackKey;
    const lvF = this.lvF;
    // Start from the deepest remembered table covering `off` (place keeping, as map/unmap do).
    let d = last;
    while (d > 0 && stackKey[d] !== Math.floor(off * (lvF[d * 4 + 2] as number))) d--;
    let words = this.stackWords[d] as Uint32Array;
    let wi = this.stackWi[d] as number;
    for (; ; d++) {
      const inv = this.lvF[d * 4 + 1] as number;
      const e = wi + ((off * inv) & (this.lvI[d * 4 + 1] as number)) * ew;
      const lo = words[e] as number;
      const hi = ew === 2 ? (words[e + 1] as number) : 0;
      if (lo === 0 && hi === 0) return -1;
      const kind = kinds[(d << 8) | (lo & 0xff)];
      if (kind === LEAF) {
        const pa = (hi & (this.leafHi[d] as number)) * TWO32 + ((lo & (this.leafLo[d] as number)) >>> 0);
        return pa + (off - Math.floor(off * inv) * (this.lvF[d * 4] as number));
      }
      if (kind !== TABLE || d === last) return -1;
      const pa = (hi & this.tHi) * TWO32 + ((lo & this.tLo) >>> 0);
      words = mem.tableWords(pa);
      wi = mem.tableWordIndex(pa);
      this.stackWords[d + 1] = words;
      this.stackWi[d + 1] = wi;
      stackKey[d + 1] = Math.floor(off * (lvF[d * 4 + 6] as number));
    }
  }

  private lookupSlow(off: number): number {
    const fmt = this.fmt;
    const ew = this.ew;
    const last = this.nLevels - 1;
    let words = this.stackWords[0] as Uint32Array;
    let wi = this.stackWi[0] as number;
    for (let d = 0; ; d++) {
      const e = wi + ((off * (this.lvF[d * 4 + 1] as number)) & (this.lvI[d * 4 + 1] as number)) * ew;
      const lo = words[e] as number;
      const hi = ew === 2 ? (words[e + 1] as number) : 0;
      if (lo === 0 && hi === 0) return -1;
      const kind = fmt.classify(lo, hi, d);
      if (kind === LEAF) {
        const sz = pow2(fmt.leafSizeLg2(lo, hi, d));
        return fmt.leafPa(lo, hi, d) + (off - Math.floor(off / sz) * sz);
      }
      if (kind !== TABLE || d === last) return -1;
      const pa = fmt.tablePa(lo, hi, d);
      words = this.mem.tableWords(pa);
      wi = this.mem.tableWordIndex(pa);
    }
  }

  /**
   * The raw entry values seen at each depth while translating `off` (`pgtable_walk`); one
   * `[lo, hi]` pair per level visited.
   * @param off - IOVA offset
   */
  walkEntries(off: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    let pa = this.rootPa;
    for (let d = 0; d < this.nLevels; d++) {
      const words = this.mem.tableWords(pa);
      const e =
        this.mem.tableWordIndex(pa) +
        ((off * (this.lvF[d * 4 + 1] as number)) & (this.lvI[d * 4 + 1] as number)) * this.ew;
      const lo = words[e] as number;
      const hi = this.ew === 2 ? (words[e + 1] as number) : 0;
      out.push([lo, hi]);
      if (this.fmt.classify(lo, hi, d) !== TABLE) break;
      pa = this.fmt.tablePa(lo, hi, d);
    }
    return out;
  }

  /**
   * Harvest dirty leaves in `[off, off + size)` (`read_and_clear_dirty`).
   *
   * @throws ErrnoError `EINVAL` (or the format's `dirtyUnsupportedErrno`) if the format has no
   *   dirty tracking; `EINVAL` (LPAE) at a hole
   */
  readAndClearDirty(off: number, size: number, flags: number, dirty: IommuDirtyBitmap): void {
    const ops = this.fmt.dirty;
    if (ops === undefined)
      throw new ErrnoError(this.fmt.dirtyUnsupportedErrno ?? 'EINVAL', 'format has no dirty tracking');
    const clear = (flags & IOMMU_DIRTY_NO_CLEAR) === 0;
    const end = off + size;
    const visit = (tablePa: number, d: number, addr: number): number => {
      const words = this.mem.tableWords(tablePa);
      const wi = this.mem.tableWordIndex(tablePa);
      const div = this.lvF[d * 4] as number;
      let idx = (addr / div) & (this.lvI[d * 4 + 1] as number);
      const n = (this.lvI[d * 4 + 1] as number) + 1;
      while (addr < end && idx < n) {
        const e = wi + idx * this.ew;
        const lo = words[e] as number;
        const hi = this.ew === 2 ? (words[e + 1] as number) : 0;
        const kind = this.kindAt(lo, hi, d);
        const slotStart = Math.floor(addr / div) * div;
        if (kind === LEAF) {
          const sz = pow2(this.leafLg2At(lo, hi, d));
          if (ops.isDirty(lo, hi, d)) {
            dirty.record(this.iovaBase + Math.floor(addr / sz) * sz, sz);
            if (clear) ops.clearDirty(words, e, d);
          }
          addr = slotStart + div;
        } else if (kind === TABLE && d < this.nLevels - 1) {
          addr = visit(this.tablePaAt(lo, hi, d), d + 1, addr);
        } else if (ops.holes === 'skip') {
          addr = slotStart + div;
        } else {
          throw new ErrnoError('EINVAL', 'hole in the dirty-tracking range');
        }
        idx++;
      }
      return addr;
    };
    visit(this.rootPa, 0, off);
  }

  /**
   * Visit every non-empty entry, depth first in address order.
   * @param fn - the visitor
   */
  forEachEntry(fn: PtEntryVisitor): void {
    const rec = (tablePa: number, d: number, base: number): void => {
      const words = this.mem.tableWords(tablePa);
      const wi = this.mem.tableWordIndex(tablePa);
      const n = (this.lvI[d * 4 + 1] as number) + 1;
      for (let i = 0; i < n; i++) {
        const e = wi + i * this.ew;
        const lo = words[e] as number;
        const hi = this.ew === 2 ? (words[e + 1] as number) : 0;
        if (lo === 0 && hi === 0) continue;
        const kind = this.fmt.classify(lo, hi, d);
        const iova = base + i * (this.lvF[d * 4] as number);
        fn(d, i, tablePa + i * this.ew * 4, lo, hi, kind, iova);
        if (kind === TABLE && d < this.nLevels - 1) rec(this.fmt.tablePa(lo, hi, d), d + 1, iova);
      }
    };
    rec(this.rootPa, 0, 0);
  }

  /** Free every table, the top one included. The walker must not be used afterwards. */
  freeAll(): void {
    this.freeSubtree(this.rootPa, 0);
  }
}
