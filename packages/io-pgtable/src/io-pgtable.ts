/**
 * `alloc_io_pgtable_ops` / `free_io_pgtable_ops` and `struct io_pgtable_ops`
 * (drivers/iommu/io-pgtable.c, include/linux/io-pgtable.h).
 *
 * @remarks
 * Error style of this package: `allocIoPgtableOps` returns `null` where Linux returns NULL;
 * `mapPages` and `readAndClearDirty` throw an `ErrnoError` (for `mapPages` an
 * {@link IoPgtableMapError} carrying the bytes already mapped); `unmapPages` returns 0 where Linux
 * does; `iovaToPhys` returns 0 for an unmapped IOVA.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { IoPgtableCfg } from './cfg.js';
import type { IoPgtableFormat, PtFormatInstance } from './format.js';
import {
  armLpae32S1Format,
  armLpae32S2Format,
  armLpae64S1Format,
  armLpae64S2Format,
} from './formats/arm-lpae.js';
import { armV7sFormat } from './formats/arm-v7s.js';
import { vtdSlFormat } from './formats/vtd-sl.js';
import { x86_64Format } from './formats/x86-64.js';
import type { IommuDirtyBitmap, IommuIotlbGather } from './gather.js';
import type { PageTableMemory } from './memory.js';
import { InMemoryPageTableMemory } from './memory-arena.js';
import { IoPgtableMapError, PtWalker } from './walker.js';

const TWO32 = 4294967296;
const TWO64 = 2 ** 64;

/** An IOVA or physical address at the ops API: a bigint, or a number (exact below 2^53). */
export type IoAddr = bigint | number;

/**
 * `struct io_pgtable_ops` plus the `struct io_pgtable` it belongs to.
 *
 * @remarks
 * Unlike Linux's `map_pages`, which stops at the end of one leaf table and lets the IOMMU core
 * loop, `mapPages` and `unmapPages` here cover all `pgcount` pages (continuing table by table, as
 * the core's loop would); the TLB callbacks are made in the same order as that loop would make them.
 */
export interface IoPgtableOps {
  /** The format. */
  readonly format: IoPgtableFormat;
  /** The narrowed configuration, with the register values written. */
  readonly cfg: IoPgtableCfg;
  /** The cookie passed to the TLB callbacks. */
  readonly cookie: unknown;
  /** The table memory. */
  readonly memory: PageTableMemory;
  /** The configured format instance. */
  readonly instance: PtFormatInstance;
  /** The generic walker (for `dump` and tests). */
  readonly walker: PtWalker;

  /**
   * Map `pgcount` pages of exactly `pgsize` bytes at `iova` to `paddr` (`map_pages`).
   *
   * @param iova - first IOVA, aligned to `pgsize`
   * @param paddr - first output address, aligned to `pgsize`
   * @param pgsize - one of the sizes of `cfg.pgsizeBitmap`
   * @param pgcount - number of pages, ≥ 1
   * @param prot - `IOMMU_*` flags; READ or WRITE required
   * @returns bytes mapped (`pgsize * pgcount`)
   * @throws IoPgtableMapError `EINVAL` (bad size, misaligned iova/paddr, no READ/WRITE, pgcount 0),
   *   `ERANGE` (IOVA or paddr out of range), `EEXIST` (already mapped), `ENOMEM`; its `mapped`
   *   field gives the bytes mapped before the failure, which stay mapped
   */
  mapPages(iova: IoAddr, paddr: IoAddr, pgsize: number, pgcount: number, prot: number): number;

  /**
   * Unmap `pgcount` pages of `pgsize` bytes from `iova` (`unmap_pages`).
   *
   * @param iova - first IOVA, aligned to `pgsize`
   * @param pgsize - one of the sizes of `cfg.pgsizeBitmap`
   * @param pgcount - number of pages
   * @param gather - the caller's gather, or null
   * @returns bytes unmapped; 0 for bad arguments, nothing mapped, or a partial unmap of a larger
   *   block (which stays mapped); stops early at the first hole
   */
  unmapPages(iova: IoAddr, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): number;

  /**
   * Translate an IOVA (`iova_to_phys`).
   * @param iova - any IOVA
   * @returns the output address of that byte, or 0 when unmapped or out of range
   */
  iovaToPhys(iova: IoAddr): number;

  /**
   * Record and (unless `IOMMU_DIRTY_NO_CLEAR`) clean dirty leaves in `[iova, iova + size)`
   * (`read_and_clear_dirty`).
   * @param iova - first IOVA
   * @param size - bytes, \> 0
   * @param flags - `IOMMU_DIRTY_NO_CLEAR` or 0
   * @param dirty - receives the dirty leaf ranges
   * @throws ErrnoError `EINVAL` for size 0, a range beyond `ias`, a format without dirty
   *   tracking (`EOPNOTSUPP` for the generic_pt formats without it, such as x86-64), or a hole
   *   (LPAE)
   */
  readAndClearDirty(iova: IoAddr, size: number, flags: number, dirty: IommuDirtyBitmap): void;

  /**
   * The raw descriptors visited while translating `iova` (`pgtable_walk`), top level first.
   * @param iova - any IOVA
   * @returns one bigint per level visited; empty when out of range
   */
  pgtableWalk(iova: IoAddr): bigint[];
}

class IoPgtable implements IoPgtableOps {
  readonly format: IoPgtableFormat;
  readonly cfg: IoPgtableCfg;
  readonly cookie: unknown;
  readonly memory: PageTableMemory;
  readonly instance: PtFormatInstance;
  readonly walker: PtWalker;
  private readonly vaLimit: number;
  private readonly oaLimit: number;
  private readonly oaLimitBig: bigint;
  private readonly upper: 'zero' | 'ones' | 'sign';
  private readonly zeroUpper: boolean;
  private readonly vaBits: number;
  freed = false;

  constructor(
    format: IoPgtableFormat,
    cfg: IoPgtableCfg,
    cookie: unknown,
    memory: PageTableMemory,
    inst: PtFormatInstance,
  ) {
    this.format = format;
    this.cfg = cfg;
    this.cookie = cookie;
    this.memory = memory;
    this.instance = inst;
    this.walker = new PtWalker(inst, memory, cfg, cookie);
    this.vaBits = inst.vaBits;
    this.vaLimit = 2 ** inst.vaBits;
    this.oaLimit = 2 ** inst.oaBits;
    this.oaLimitBig = 1n << BigInt(inst.oaBits);
    this.upper = inst.upperIova;
    this.zeroUpper = inst.upperIova === 'zero';
    if (this.upper === 'ones') this.walker.iovaBase = TWO64 - this.vaLimit;
  }

  /** IOVA → offset, or -1 when the upper bits are wrong. Sets the walker's iovaBase for 'sign'. */
  private offsetOf(iova: IoAddr): number {
    if (typeof iova === 'number') {
      if (this.upper === 'zero') {
        return iova >= 0 && iova < this.vaLimit && Number.isInteger(iova) ? iova : -1;
      }
      if (this.upper === 'sign' && iova < this.vaLimit / 2) {
        if (iova >= 0 && Number.isInteger(iova)) {
          this.walker.iovaBase = 0;
          return iova;
        }
        return -1;
      }
      if (!Number.isInteger(iova) || iova < 0) return -1;
      iova = BigInt(iova);
    }
    if (iova < 0n || iova >= 1n << 64n) return -1;
    const vb = BigInt(this.vaBits);
    const off = iova & ((1n << vb) - 1n);
    const top = iova >> vb;
    const ones = (1n << (64n - vb)) - 1n;
    let ok: boolean;
    if (this.upper === 'zero') ok = top === 0n;
    else if (this.upper === 'ones') ok = top === ones;
    else {
      const neg = (off >> (vb - 1n)) & 1n;
      ok = top === (neg ? ones : 0n);
      this.walker.iovaBase = neg ? TWO64 - this.vaLimit : 0;
    }
    if (!ok) return -1;
    return Number(off);
  }

  mapPages(iova: IoAddr, paddr: IoAddr, pgsize: number, pgcount: number, prot: number): number {
    // Fast path: number addresses, zero upper bits, everything in range and aligned. Integers
    // below 2^53 are exact doubles, so the low 32 bits decide alignment to at most 1 GiB.
    if (typeof iova === 'number' && typeof paddr === 'number' && this.zeroUpper) {
      const w = this.walker;
      const lg = w.sizeLg2Of(pgsize);
      const m = pgsize - 1;
      const len = pgsize * pgcount;
      if (
        lg >= 0 &&
        lg <= 30 &&
        pgcount >= 1 &&
        (pgcount | 0) === pgcount &&
        iova >= 0 &&
        paddr >= 0 &&
        iova + len <= this.vaLimit &&
        paddr + len <= this.oaLimit &&
        ((iova >>> 0) & m) === 0 &&
        ((paddr >>> 0) & m) === 0 &&
        Math.floor(iova) === iova &&
        Math.floor(paddr) === paddr
      ) {
        w.staged[0] = iova;
        w.staged[1] = paddr;
        if (pgcount === 1) {
          const done = w.mapOneStaged(lg, prot);
          if (done > 0) return done;
        }
        return w.mapStaged(lg, pgcount, prot);
      }
    }
    return this.mapPagesChecked(iova, paddr, pgsize, pgcount, prot);
  }

  /** mapPages with every check in Linux's order (the errors' path, bigints, other upper-bit rules). */
  private mapPagesChecked(
    iova: IoAddr,
    paddr: IoAddr,
    pgsize: number,
    pgcount: number,
    prot: number,
  ): number {
    const w = this.walker;
    const lg = w.sizeLg2Of(pgsize);
    if (lg < 0) throw new IoPgtableMapError('EINVAL', 0, `page size ${pgsize} not supported`);
    const off = this.offsetOf(iova);
    const pa =
      typeof paddr === 'number' ? paddr : paddr < this.oaLimitBig && paddr >= 0n ? Number(paddr) : -1;
    if (off < 0 || !(pa >= 0 && pa < this.oaLimit))
      throw new IoPgtableMapError('ERANGE', 0, 'IOVA or paddr out of range');
    if (!(pgcount >= 1) || !Number.isInteger(pgcount))
      throw new IoPgtableMapError('EINVAL', 0, 'bad page count');
    if (!isAligned(off, pgsize, lg) || !isAligned(pa, pgsize, lg))
      throw new IoPgtableMapError('EINVAL', 0, 'iova or paddr not aligned to pgsize');
    const len = pgsize * pgcount;
    if (pa + len > this.oaLimit || off + len > this.vaLimit) {
      throw new IoPgtableMapError('ERANGE', 0, 'range runs past the address size');
    }
    w.staged[0] = off;
    w.staged[1] = pa;
    return w.mapStaged(lg, pgcount, prot);
  }

  unmapPages(iova: IoAddr, pgsize: number, pgcount: number, gather: IommuIotlbGather | null): number {
    // Fast path as in mapPages.
    if (typeof iova === 'number' && this.zeroUpper) {
      const w = this.walker;
      const lg = w.sizeLg2Of(pgsize);
      if (
        lg >= 0 &&
        lg <= 30 &&
        pgcount >= 1 &&
        iova >= 0 &&
        iova + pgsize * pgcount <= this.vaLimit &&
        ((iova >>> 0) & (pgsize - 1)) === 0 &&
        Math.floor(iova) === iova
      ) {
        w.staged[0] = iova;
        if (pgcount === 1) {
          const done = w.unmapOneStaged(lg, gather);
          if (done > 0) return done;
        }
        return w.unmapStaged(lg, pgcount, gather);
      }
    }
    return this.unmapPagesChecked(iova, pgsize, pgcount, gather);
  }

  /** unmapPages with every check (bigints, other upper-bit rules, clamping at the end of the space). */
  private unmapPagesChecked(
    iova: IoAddr,
    pgsize: number,
    pgcount: number,
    gather: IommuIotlbGather | null,
  ): number {
    const w = this.walker;
    const lg = w.sizeLg2Of(pgsize);
    if (lg < 0 || !(pgcount >= 1)) return 0;
    const off = this.offsetOf(iova);
    if (off < 0 || !isAligned(off, pgsize, lg)) return 0;
    // No further than the end of the input address space.
    const count = off + pgcount * pgsize > this.vaLimit ? (this.vaLimit - off) / pgsize : pgcount;
    w.staged[0] = off;
    return w.unmapStaged(lg, count, gather);
  }

  iovaToPhys(iova: IoAddr): number {
    if (typeof iova === 'number' && this.zeroUpper) {
      if (iova >= 0 && iova < this.vaLimit && Number.isInteger(iova)) {
        const r = this.walker.lookup(iova);
        return Math.max(r, 0);
      }
      return 0;
    }
    // Split the low 12 bits off so offsets above 2^53 stay exact.
    const big = typeof iova === 'number' ? (Number.isInteger(iova) && iova >= 0 ? BigInt(iova) : -1n) : iova;
    if (big < 0n) return 0;
    const low = Number(big & 0xfffn);
    const off = this.offsetOf(big - BigInt(low));
    if (off < 0) return 0;
    const r = this.walker.lookup(off);
    return r < 0 ? 0 : r + low;
  }

  readAndClearDirty(iova: IoAddr, size: number, flags: number, dirty: IommuDirtyBitmap): void {
    if (!(size > 0)) throw new ErrnoError('EINVAL', 'size is 0');
    const off = this.offsetOf(iova);
    if (off < 0 || off + size > this.vaLimit)
      throw new ErrnoError('EINVAL', 'range beyond the input address size');
    this.walker.readAndClearDirty(off, size, flags, dirty);
  }

  pgtableWalk(iova: IoAddr): bigint[] {
    const off = this.offsetOf(iova);
    if (off < 0) return [];
    return this.walker.walkEntries(off).map(([lo, hi]) => BigInt(hi) * BigInt(TWO32) + BigInt(lo));
  }
}

/**
 * Whether `x` (a non-negative number) is a multiple of `size = 2^lg`. Integers below 2^53 are
 * exact doubles, so for sizes up to 1 GiB the low 32 bits decide, without a float remainder.
 */
function isAligned(x: number, size: number, lg: number): boolean {
  if (lg <= 30) return ((x >>> 0) & (size - 1)) === 0 && Number.isInteger(x);
  return x % size === 0;
}

const FORMATS: ReadonlyMap<number, IoPgtableFormat> = new Map<number, IoPgtableFormat>([
  [armLpae32S1Format.fmt, armLpae32S1Format],
  [armLpae32S2Format.fmt, armLpae32S2Format],
  [armLpae64S1Format.fmt, armLpae64S1Format],
  [armLpae64S2Format.fmt, armLpae64S2Format],
  [armV7sFormat.fmt, armV7sFormat],
  [x86_64Format.fmt, x86_64Format],
  [vtdSlFormat.fmt, vtdSlFormat],
]);

/**
 * The format object registered for an `IoPgtableFmt` number, if this package implements it.
 * @param fmt - an {@link (IoPgtableFmt:variable)} value
 */
export function ioPgtableFormatOf(fmt: number): IoPgtableFormat | undefined {
  return FORMATS.get(fmt);
}

/**
 * Allocate a page table and its ops (`alloc_io_pgtable_ops`).
 *
 * @param format - an {@link (IoPgtableFmt:variable)} number or a format object
 * @param cfg - the configuration; on success narrowed in place and given its register values
 * @param cookie - passed back to every TLB callback
 * @returns the ops, or `null` where Linux returns NULL (unknown format, rejected quirk,
 *   unsupported sizes, table allocation failure)
 */
export function allocIoPgtableOps(
  format: IoPgtableFormat | number,
  cfg: IoPgtableCfg,
  cookie: unknown,
): IoPgtableOps | null {
  const f = typeof format === 'number' ? FORMATS.get(format) : format;
  if (f === undefined) return null;
  if ((cfg.quirks & ~f.quirksAllowed) !== 0) return null;
  try {
    const inst = f.setup(cfg);
    const memory = cfg.memory ?? new InMemoryPageTableMemory();
    const ops = new IoPgtable(f, cfg, cookie, memory, inst);
    inst.writeRegisters(cfg, ops.walker.rootPa);
    return ops;
  } catch (err) {
    if (err instanceof ErrnoError) return null;
    throw err;
  }
}

/**
 * Free a page table (`free_io_pgtable_ops`): call `tlbFlushAll`, then free every table. `null` is
 * ignored. The caller must already have made the tables unreachable by hardware.
 * @param ops - ops from {@link allocIoPgtableOps}, or null
 */
export function freeIoPgtableOps(ops: IoPgtableOps | null): void {
  if (ops === null) return;
  if (!(ops instanceof IoPgtable) || ops.freed)
    throw new Error('freeIoPgtableOps: not live ops of this package');
  ops.cfg.tlb?.tlbFlushAll?.(ops.cookie);
  ops.walker.freeAll();
  ops.freed = true;
}
