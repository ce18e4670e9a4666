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
 */

import { type ErrnoCode, ErrnoError } from '@iommu-ts/base';
import type { IoPgtableCfg } from './cfg.js';
import { PtEntryKind, type PtFormatInstance, type PtLeafTemplate } from './format.js';
import type { IommuDirtyBitmap, IommuFlushOps, IommuIotlbGather } from './gather.js';
import type { PageTableMemory } from './memory.js';
import { IOMMU_DIRTY_NO_CLEAR, IOMMU_READ, IOMMU_WRITE } from './prot.js';

const EMPTY = PtEntryKind.EMPTY;
const TABLE = PtEntryKind.TABLE;
const LEAF = PtEntryKind.LEAF;

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

  private readonly tlb: IommuFlushOps | null;
  private readonly cookie: unknown;
  private readonly nLevels: number;
  private readonly ew: number;
  private readonly div: Float64Array;
  private readonly cov: Float64Array;
  private readonly mask: Int32Array;
  private readonly run: Float64Array;
  private readonly tableBytes: Int32Array;
  private readonly leafDepth: Int8Array;
  private readonly sizeOk: Uint8Array;
  private readonly stackKey: Float64Array;
  private readonly stackWords: Uint32Array[];
  private readonly stackWi: Int32Array;
  private readonly slotIsTable: Uint8Array;
  private tmplProt = -1;
  private tmplSize = -1;
  private tmpl: PtLeafTemplate | null = null;
  private curWords: Uint32Array;
  private curWi = 0;
  private failWords: Uint32Array;
  private failE = 0;
  private failDepth = 0;

  /**
   * Allocate the top table and build a walker over it.
   * @param fmt - the configured format
   * @param mem - table memory
   * @param cfg - the configuration (for the TLB callbacks)
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
    this.div = new Float64Array(n);
    this.cov = new Float64Array(n);
    this.mask = new Int32Array(n);
    this.run = new Float64Array(n);
    this.tableBytes = new Int32Array(n);
    this.leafDepth = new Int8Array(64).fill(-1);
    this.sizeOk = new Uint8Array(64);
    let maxRun = 1;
    fmt.levels.forEach((l, d) => {
      this.div[d] = 2 ** l.shift;
      this.cov[d] = 2 ** (l.shift + l.indexBits);
      this.mask[d] = 2 ** l.indexBits - 1;
      this.run[d] = 2 ** l.runBits;
      maxRun = Math.max(maxRun, 2 ** l.runBits);
      this.tableBytes[d] = l.tableBytes;
      for (const s of l.leafSizesLg2) this.leafDepth[s] = d;
    });
    for (let s = 0; s < 64; s++) {
      if ((fmt.pgsizeBitmap >> BigInt(s)) & 1n && this.leafDepth[s] !== -1) this.sizeOk[s] = 1;
    }
    this.slotIsTable = new Uint8Array(maxRun);
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
    if (!(pgsize > 0) || !Number.isInteger(pgsize)) return -1;
    const lg = Math.log2(pgsize);
    if (!Number.isInteger(lg) || lg >= 64 || this.sizeOk[lg] !== 1) return -1;
    return lg;
  }

  private allocTable(depth: number): number {
    const bytes = this.tableBytes[depth] as number;
    const pa = this.mem.allocTable(bytes);
    const max = this.fmt.maxTablePa;
    if (max !== undefined && pa + bytes > max) {
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
    const fmt = this.fmt;
    const ew = this.ew;
    let d = tdepth;
    while (d > 0 && this.stackKey[d] !== Math.floor(off / (this.cov[d] as number))) d--;
    let words = this.stackWords[d] as Uint32Array;
    let wi = this.stackWi[d] as number;
    for (; d < tdepth; d++) {
      const e = wi + ((off / (this.div[d] as number)) & (this.mask[d] as number)) * ew;
      const lo = words[e] as number;
      const hi = ew === 2 ? (words[e + 1] as number) : 0;
      const kind = fmt.classify(lo, hi, d);
      let pa: number;
      if (kind === TABLE) {
        pa = fmt.tablePa(lo, hi, d);
      } else if (kind === EMPTY) {
        if (!alloc) {
          return -1;
        }
        pa = this.allocTable(d + 1);
        fmt.writeTable(words, e, pa, d);
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
      this.stackKey[d + 1] = Math.floor(off / (this.cov[d + 1] as number));
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
    if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0)
      throw new IoPgtableMapError('EINVAL', 0, 'prot has neither READ nor WRITE');
    const fmt = this.fmt;
    const tdepth = this.leafDepth[sizeLg2] as number;
    const level = fmt.levels[tdepth];
    if (level === undefined) throw new IoPgtableMapError('EINVAL', 0, 'unsupported page size');
    let t = this.tmpl;
    if (t === null || this.tmplProt !== prot || this.tmplSize !== sizeLg2) {
      try {
        t = fmt.leafTemplate(prot, tdepth, sizeLg2);
      } catch (err) {
        if (err instanceof ErrnoError && !(err instanceof IoPgtableMapError)) {
          throw new IoPgtableMapError(err.code, 0, err.message);
        }
        throw err;
      }
      this.tmpl = t;
      this.tmplProt = prot;
      this.tmplSize = sizeLg2;
    }
    const pgsize = 2 ** sizeLg2;
    const contig = 2 ** (sizeLg2 - level.shift);
    const ew = this.ew;
    const runEntries = this.run[tdepth] as number;
    const div = this.div[tdepth] as number;
    const mask = this.mask[tdepth] as number;
    const byPage = fmt.policy.mapPageByPage;
    let mapped = 0;
    let remaining = pgcount;
    while (remaining > 0) {
      let r: number;
      try {
        r = this.reach(off, tdepth, true);
      } catch (err) {
        if (err instanceof ErrnoError) throw new IoPgtableMapError(err.code, mapped, err.message);
        throw err;
      }
      if (r !== 0) {
        const code = r === -2 ? fmt.policy.existingLeafErrno : 'EEXIST';
        throw new IoPgtableMapError(code, mapped, 'a larger mapping already covers the range');
      }
      const words = this.curWords;
      const idx = (off / div) & mask;
      let n = Math.floor((runEntries - (idx % runEntries)) / contig);
      if (n > remaining) n = remaining;
      if (byPage) n = 1;
      const wi0 = this.curWi + idx * ew;
      // Check every entry first (tables are removed as they are met, like Linux).
      const entries = n * contig;
      for (let k = 0; k < entries; k++) {
        const e = wi0 + k * ew;
        const lo = words[e] as number;
        const hi = ew === 2 ? (words[e + 1] as number) : 0;
        if (lo === 0 && hi === 0) continue;
        const kind = fmt.classify(lo, hi, tdepth);
        if (kind === EMPTY) continue;
        if (kind === TABLE) {
          const leafOff = off + Math.floor(k / contig) * pgsize;
          if (
            fmt.policy.mapOverTable === 'free-if-empty' &&
            this.hasLeaves(fmt.tablePa(lo, hi, tdepth), tdepth + 1)
          ) {
            throw new IoPgtableMapError(
              fmt.policy.existingLeafErrno,
              mapped,
              'a table with mappings occupies the slot',
            );
          }
          this.removeTable(words, e, lo, hi, tdepth, leafOff, pgsize);
          continue;
        }
        throw new IoPgtableMapError(fmt.policy.existingLeafErrno, mapped, 'the IOVA is already mapped');
      }
      fmt.writeLeaves(words, wi0, pa, tdepth, sizeLg2, n, t);
      const bytes = n * pgsize;
      mapped += bytes;
      off += bytes;
      pa += bytes;
      remaining -= n;
    }
    return mapped;
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
    this.tlb?.tlbFlushWalk?.(this.iovaBase + off, size, this.fmt.granule, this.cookie);
    this.freeSubtree(this.fmt.tablePa(lo, hi, depth), depth + 1);
    this.forget();
  }

  private hasLeaves(tablePa: number, depth: number): boolean {
    const words = this.mem.tableWords(tablePa);
    const wi = this.mem.tableWordIndex(tablePa);
    const ew = this.ew;
    const n = (this.mask[depth] as number) + 1;
    for (let i = 0; i < n; i++) {
      const lo = words[wi + i * ew] as number;
      const hi = ew === 2 ? (words[wi + i * ew + 1] as number) : 0;
      if (lo === 0 && hi === 0) continue;
      const kind = this.fmt.classify(lo, hi, depth);
      if (kind === LEAF || kind === PtEntryKind.INVALID) return true;
      if (kind === TABLE && this.hasLeaves(this.fmt.tablePa(lo, hi, depth), depth + 1)) return true;
    }
    return false;
  }

  /**
   * Free the table at `tablePa` (at `depth`) and every table below it; leaves are skipped.
   * @param tablePa - table address
   * @param depth - its level index
   */
  freeSubtree(tablePa: number, depth: number): void {
    if (depth < this.nLevels - 1) {
      const words = this.mem.tableWords(tablePa);
      const wi = this.mem.tableWordIndex(tablePa);
      const ew = this.ew;
      const n = (this.mask[depth] as number) + 1;
      for (let i = 0; i < n; i++) {
        const lo = words[wi + i * ew] as number;
        const hi = ew === 2 ? (words[wi + i * ew + 1] as number) : 0;
        if ((lo !== 0 || hi !== 0) && this.fmt.classify(lo, hi, depth) === TABLE) {
          this.freeSubtree(this.fmt.tablePa(lo, hi, depth), depth + 1);
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
    const fmt = this.fmt;
    const tdepth = this.leafDepth[sizeLg2] as number;
    const level = fmt.levels[tdepth];
    if (level === undefined || pgcount <= 0) return 0;
    const pgsize = 2 ** sizeLg2;
    const contig = 2 ** (sizeLg2 - level.shift);
    const ew = this.ew;
    const runEntries = this.run[tdepth] as number;
    const div = this.div[tdepth] as number;
    const mask = this.mask[tdepth] as number;
    const policy = fmt.policy;
    const byPage = policy.unmapPageByPage;
    const tlb = this.tlb;
    const addPage = tlb?.tlbAddPage;
    const callAdd =
      addPage !== undefined && (gather !== null ? !gather.queued : policy.tlbAddPageWithoutGather);
    const slotIsTable = this.slotIsTable;
    let unmapped = 0;
    let remaining = pgcount;
    const perEntry = policy.tlbAddPagePerEntry === true;
    const wholeLeaf = policy.partialUnmap === 'whole-leaf-at-start';
    while (remaining > 0) {
      const r = this.reach(off, tdepth, false);
      if (r !== 0) {
        if (r !== -2 || !wholeLeaf) return unmapped;
        const got = this.unmapWholeLeaf(off, gather, callAdd);
        if (got === 0) return unmapped;
        unmapped += got;
        off += got;
        remaining -= Math.ceil(got / pgsize);
        continue;
      }
      const words = this.curWords;
      const idx = (off / div) & mask;
      let n = Math.floor((runEntries - (idx % runEntries)) / contig);
      if (n > remaining) n = remaining;
      if (byPage) n = 1;
      const wi0 = this.curWi + idx * ew;
      let i = 0;
      let tables = 0;
      for (; i < n; i++) {
        const e = wi0 + i * contig * ew;
        const lo = words[e] as number;
        const hi = ew === 2 ? (words[e + 1] as number) : 0;
        if (lo === 0 && hi === 0) break;
        const kind = fmt.classify(lo, hi, tdepth);
        if (kind === TABLE) {
          slotIsTable[i] = 1;
          tables++;
          this.removeTable(words, e, lo, hi, tdepth, off + i * pgsize, pgsize);
        } else if (kind === LEAF) {
          if (contig > 1 || level.leafSizesLg2.length > 1) {
            if (fmt.leafSizeLg2(lo, hi, tdepth) !== sizeLg2) {
              if (wholeLeaf && i === 0 && contig === 1) {
                const sz = 2 ** fmt.leafSizeLg2(lo, hi, tdepth);
                if (off % sz === 0) {
                  const got = this.unmapWholeLeafAt(words, e, tdepth, off, sz, gather, callAdd);
                  unmapped += got;
                  off += got;
                  remaining -= Math.ceil(got / pgsize);
                  i = -1;
                }
              }
              break;
            }
            let whole = true;
            for (let k = 1; k < contig; k++) {
              const ek = e + k * ew;
              if ((words[ek] as number) === 0 && (ew === 1 || (words[ek + 1] as number) === 0)) whole = false;
            }
            if (!whole) break;
          }
          slotIsTable[i] = 0;
        } else {
          break;
        }
      }
      if (i < 0) continue;
      if (i > 0) {
        words.fill(0, wi0, wi0 + i * contig * ew);
        if (callAdd) {
          const base = this.iovaBase + off;
          const forTables = policy.tlbAddPageForTables;
          for (let j = 0; j < i; j++) {
            if (tables === 0 || forTables || slotIsTable[j] === 0) {
              if (perEntry && slotIsTable[j] === 0) {
                const esz = pgsize / contig;
                for (let k = 0; k < contig; k++)
                  addPage.call(tlb, gather, base + j * pgsize + k * esz, esz, this.cookie);
              } else {
                addPage.call(tlb, gather, base + j * pgsize, pgsize, this.cookie);
              }
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

  /** generic_pt unmap of a larger leaf met above the target level, at its first byte. */
  private unmapWholeLeaf(off: number, gather: IommuIotlbGather | null, callAdd: boolean): number {
    const d = this.failDepth;
    const words = this.failWords;
    const e = this.failE;
    const lo = words[e] as number;
    const hi = this.ew === 2 ? (words[e + 1] as number) : 0;
    const sz = 2 ** this.fmt.leafSizeLg2(lo, hi, d);
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
    const level = this.fmt.levels[depth];
    if (level === undefined) return 0;
    const entries = sz / 2 ** level.shift;
    const first =
      e - (((off / (this.div[depth] as number)) & (this.mask[depth] as number)) % entries) * this.ew;
    words.fill(0, first, first + entries * this.ew);
    if (callAdd) this.tlb?.tlbAddPage?.(gather, this.iovaBase + off, sz, this.cookie);
    return sz;
  }

  /**
   * Translate an IOVA offset: the output address of the byte at `off`, or -1 when not mapped.
   * @param off - IOVA offset
   */
  lookup(off: number): number {
    const fmt = this.fmt;
    const ew = this.ew;
    const last = this.nLevels - 1;
    let words = this.stackWords[0] as Uint32Array;
    let wi = this.stackWi[0] as number;
    for (let d = 0; ; d++) {
      const e = wi + ((off / (this.div[d] as number)) & (this.mask[d] as number)) * ew;
      const lo = words[e] as number;
      const hi = ew === 2 ? (words[e + 1] as number) : 0;
      if (lo === 0 && hi === 0) return -1;
      const kind = fmt.classify(lo, hi, d);
      if (kind === LEAF) {
        const lg = fmt.leafSizeLg2(lo, hi, d);
        const sz = 2 ** lg;
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
        this.mem.tableWordIndex(pa) + ((off / (this.div[d] as number)) & (this.mask[d] as number)) * this.ew;
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
   * @throws ErrnoError `EINVAL` if the format has no dirty tracking, or (LPAE) at a hole
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
      const div = this.div[d] as number;
      let idx = (addr / div) & (this.mask[d] as number);
      const n = (this.mask[d] as number) + 1;
      while (addr < end && idx < n) {
        const e = wi + idx * this.ew;
        const lo = words[e] as number;
        const hi = this.ew === 2 ? (words[e + 1] as number) : 0;
        const kind = lo === 0 && hi === 0 ? EMPTY : this.fmt.classify(lo, hi, d);
        const slotStart = Math.floor(addr / div) * div;
        if (kind === LEAF) {
          const sz = 2 ** this.fmt.leafSizeLg2(lo, hi, d);
          if (ops.isDirty(lo, hi, d)) {
            dirty.record(this.iovaBase + Math.floor(addr / sz) * sz, sz);
            if (clear) ops.clearDirty(words, e, d);
          }
          addr = slotStart + div;
        } else if (kind === TABLE && d < this.nLevels - 1) {
          addr = visit(this.fmt.tablePa(lo, hi, d), d + 1, addr);
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
      const n = (this.mask[d] as number) + 1;
      for (let i = 0; i < n; i++) {
        const e = wi + i * this.ew;
        const lo = words[e] as number;
        const hi = this.ew === 2 ? (words[e + 1] as number) : 0;
        if (lo === 0 && hi === 0) continue;
        const kind = this.fmt.classify(lo, hi, d);
        const iova = base + i * (this.div[d] as number);
        fn(d, i, tablePa + i * this.ew * 4, lo, hi, kind, iova);
        if (kind === TABLE && d < this.nLevels - 1) rec(this.fmt.tablePa(lo, hi, d), d + 1, iova);
      }
    };
    rec(this.rootPa, 0, 0);
  }

  /** Free every table, the top one included. The walker must not be used afterwards. */
  freeAll(): void {
    this.freeSubtree(this.rootPa, 0);
    this.forget();
  }
}
