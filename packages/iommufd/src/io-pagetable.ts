/**
 * `struct io_pagetable`: the IOVA space of one IOAS (drivers/iommu/iommufd/io_pagetable.c, with
 * the access helpers of device.c that work on it).
 *
 * @remarks
 * Three `@iommu-ts/interval-tree` trees over `[0, 2^64 - 1]`: mapped areas, reserved ranges (each
 * with an owner: a domain, a device, or `null` for test reservations) and allowed ranges; plus the
 * attached domains (`IommuDomain`s from `@iommu-ts/iommu-core`, mapped with its `iommuMap` /
 * `iommuUnmap`) and the attached in-kernel accesses. IOVAs, lengths and other u64 values are
 * `bigint`; page indexes and physical addresses are numbers.
 *
 * Error style: kernel-internal, so methods throw `ErrnoError` with Linux's errno. Unless stated
 * otherwise a failing call leaves every tree, pin, accounting counter and domain mapping as it was.
 * The exceptions are Linux's: an unmap that fails after removing some areas keeps them removed
 * ({@link IoPagetable.unmapIova}), and `cutIova` keeps the splits made before a failing one.
 *
 * Dirty tracking (`iopt_read_and_clear_dirty_data`, `iopt_set_dirty_tracking`) is not here; it
 * walks the areas of a range with {@link IoptAreaContigIter} and calls the domain's dirty ops.
 */

import { ErrnoError, shouldFail } from '@iommu-ts/base';
import { BigIntIntervalTree, IntervalTreeSpanIter } from '@iommu-ts/interval-tree';
import { type Device, IOMMU_READ, IOMMU_WRITE, type IommuDomain, IommuResvType } from '@iommu-ts/iommu-core';
import type { Mm, Process } from '@iommu-ts/mm';
import { IoptArea } from './area.js';
import { DoubleSpanIter } from './double-span.js';
import {
  IOMMUFD_ACCESS_RW_WRITE,
  IOPT_PAGE_SIZE,
  IOPT_PAGES_ACCOUNT_MM,
  IOPT_PAGES_ACCOUNT_USER,
  IoptPages,
  type IoptPagesAccountMode,
} from './pages.js';

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const PAGE = IOPT_PAGE_SIZE;
const BPAGE = BigInt(IOPT_PAGE_SIZE);
/** `HPAGE_SIZE` (2 MiB): the cap on automatic IOVA alignment (Linux with transparent huge pages). */
const HPAGE_SIZE = 2n * 1024n * 1024n;
/** How often an unmap asks accesses to let go of an area before giving up with `EDEADLOCK`. */
const UNMAP_ACCESS_TRIES = 100;
/** `xa_limit_16b`: access list IDs 0 … 65535. */
const ACCESS_ID_MAX = 0xffff;

/** `IOPT_ALLOC_IOVA`: choose the IOVA automatically (IOAS_MAP without `FIXED_IOVA`). */
export const IOPT_ALLOC_IOVA = 1;

/**
 * What an io_pagetable needs of an in-kernel access (`struct iommufd_access` as seen by
 * io_pagetable.c and `iommufd_access_notify_unmap`).
 */
export interface IoptAccess {
  /** `iova_alignment`: `PAGE_SIZE` for accesses that pin pages, else 1. */
  readonly iovaAlignment: number;
  /**
   * `ops->unmap(data, iova, length)`: userspace is unmapping `[iova, iova + length)`; the driver must
   * unpin everything it pinned there (with {@link IoPagetable.accessUnpinPages}) before returning.
   */
  unmap(iova: bigint, length: bigint): void;
}

/** Payload of a reserved range (`struct iopt_reserved`). */
export interface IoptReserved {
  /** Who reserved it: a domain (aperture), a device (reserved regions), or null (tests). */
  readonly owner: unknown;
}

/** An IOVA range `[start, last]` (inclusive, u64), as `struct iommu_iova_range`. */
export interface IoptIovaRange {
  /** First IOVA. */
  readonly start: bigint;
  /** Last IOVA (inclusive). */
  readonly last: bigint;
}

/**
 * One element of a pages list (`struct iopt_pages_list`): `length` bytes of `pages` from byte
 * `startByte`; the element holds one reference on `pages`.
 */
export interface IoptPagesListEntry {
  /** The pages (null once handed over). */
  pages: IoptPages | null;
  /** Byte offset into `pages` (u64). */
  readonly startByte: bigint;
  /** Bytes (u64). */
  readonly length: bigint;
}

/** Out-parameter of {@link IoPagetable.unmapIova}: bytes unmapped, written even when it throws. */
export interface IoptUnmapResult {
  /** Bytes unmapped (sum of the removed areas' lengths). */
  unmapped: bigint;
}

/** One page of {@link IoPagetable.debugWalk}. */
export interface IoptDebugPage {
  /** First IOVA of the page within the walked range. */
  readonly iova: bigint;
  /** The area holding it. */
  readonly area: IoptArea;
  /** Page index in `area.pages`. */
  readonly index: number;
  /** Physical address of the pinned page, or null when nothing holds the index (not pinned). */
  readonly pa: number | null;
  /** Pin count of the page (0 when not pinned by anyone). */
  readonly pincount: number;
  /** Reference count of the page (0 when not pinned here). */
  readonly refcount: number;
}

/**
 * `struct iopt_area_contig_iter`: walk the areas that cover `[iova, lastIova]` back to back, and
 * tell afterwards whether they covered all of it.
 *
 * @example
 * ```ts
 * const it = new IoptAreaContigIter(iopt, iova, last);
 * for (let area = it.first(); area; area = it.next()) use(area, it.curIova);
 * if (!it.done) throw new ErrnoError('ENOENT');
 * ```
 */
export class IoptAreaContigIter {
  private readonly iopt: IoPagetable;
  /** First IOVA of the current piece (`cur_iova`). */
  curIova: bigint;
  /** Last IOVA of the walk (`last_iova`). */
  readonly lastIova: bigint;
  /** The current area, or null when the walk stopped (`area`). */
  area: IoptArea | null = null;

  /**
   * @param iopt - the io_pagetable
   * @param iova - first IOVA
   * @param lastIova - last IOVA (inclusive)
   */
  constructor(iopt: IoPagetable, iova: bigint, lastIova: bigint) {
    this.iopt = iopt;
    this.curIova = iova;
    this.lastIova = lastIova;
  }

  /** The area containing the first IOVA (`iopt_area_contig_init`), or null. */
  first(): IoptArea | null {
    this.area = this.iopt.areaItree.iterFirst(this.curIova, this.curIova)?.value ?? null;
    return this.area;
  }

  /** The area starting right after the current one (`iopt_area_contig_next`), or null. */
  next(): IoptArea | null {
    const area = this.area;
    if (area === null || area.node === null) return null;
    if (this.lastIova <= area.lastIova) return null;
    this.curIova = area.lastIova + 1n;
    const n = this.iopt.areaItree.iterNext(area.node, this.curIova, this.lastIova);
    this.area = n !== undefined && n.start === this.curIova ? n.value : null;
    return this.area;
  }

  /** Whether the areas covered the whole range (`iopt_area_contig_done`). */
  get done(): boolean {
    return this.area !== null && this.lastIova <= this.area.lastIova;
  }

  /** The last IOVA of the current piece: `min(lastIova, area.lastIova)`. */
  pieceLast(area: IoptArea): bigint {
    if (this.lastIova < area.lastIova) return this.lastIova;
    return area.lastIova;
  }

  /**
   * `iopt_area_contig_is_aligned`: the current piece starts on a page boundary and, unless it is
   * the last piece, its area ends on one.
   */
  isAligned(): boolean {
    const area = this.area;
    if (area === null) return false;
    if (area.startByte(this.curIova) % BPAGE !== 0n) return false;
    if (!this.done && area.startByte(area.lastIova) % BPAGE !== BPAGE - 1n) return false;
    return true;
  }
}

function roundupPowOfTwo(x: bigint): bigint {
  let p = 1n;
  while (p < x) p <<= 1n;
  return p;
}

function lowestSetBit(x: bigint): bigint {
  return x & -x;
}

/** `1 << __ffs(pgsize_bitmap)`: a domain's smallest page size (0n for an empty bitmap). */
function minPageSize(domain: IommuDomain): bigint {
  return lowestSetBit(domain.pgsizeBitmap);
}

/**
 * The IOVA space of an IOAS (`struct io_pagetable`); see the file comment.
 */
export class IoPagetable {
  /** Mapped areas (`area_itree`). */
  readonly areaItree: BigIntIntervalTree<IoptArea> = new BigIntIntervalTree();
  /** Reserved ranges with their owners (`reserved_itree`); they may overlap each other. */
  readonly reservedItree: BigIntIntervalTree<IoptReserved> = new BigIntIntervalTree();
  private allowed: BigIntIntervalTree<null> = new BigIntIntervalTree();
  /** Attached domains in `domains` xarray order (index 0 is the fallback storage domain). */
  private readonly domainList: IommuDomain[] = [];
  private readonly accessList: Map<number, IoptAccess> = new Map();
  /** How many attached accesses have each alignment (so recomputing is O(distinct alignments)). */
  private readonly accessAlignments: Map<number, number> = new Map();
  /** No access-list ID below this is free. */
  private accessIdHint = 0;
  /** The ID of each attached access (the latest one if an access was added twice). */
  private readonly accessIds: Map<IoptAccess, number> = new Map();
  private alignment = 1;
  private noLargePages = false;
  /**
   * `[PAGE_SIZE, fullBelow)` is entirely covered by areas and reserved ranges, so no automatic
   * allocation can start below it. Not in Linux (which always scans from the window start); it only
   * skips spans that cannot hold a hole, so the IOVA chosen is the same, and back-to-back automatic
   * maps stay O(log n) each instead of O(n).
   */
  private fullBelow = BPAGE;

  // ---- state ----

  /** Allowed ranges (`allowed_itree`); replaced as a whole by {@link IoPagetable.setAllowIova}. */
  get allowedItree(): BigIntIntervalTree<null> {
    return this.allowed;
  }

  /** The attached domains, in order. */
  get domains(): readonly IommuDomain[] {
    return this.domainList;
  }

  /** The attached accesses by access-list ID. */
  get accesses(): ReadonlyMap<number, IoptAccess> {
    return this.accessList;
  }

  /**
   * `iova_alignment` in bytes: the maximum of 1 (`PAGE_SIZE` with large pages disabled), every
   * domain's smallest page size and every access's alignment.
   */
  get iovaAlignment(): number {
    return this.alignment;
  }

  /** Whether large pages are disabled (`disable_large_pages`, IOMMU_OPTION_HUGE_PAGES = 0). */
  get largePagesDisabled(): boolean {
    return this.noLargePages;
  }

  /** The areas in IOVA order. */
  areas(): IoptArea[] {
    const out: IoptArea[] = [];
    this.areaItree.forEachOverlapping(0n, U64_MAX, (n) => out.push(n.value));
    return out;
  }

  /** Move {@link IoPagetable.fullBelow} past whatever covers it now. */
  private advanceFullBelow(): void {
    for (;;) {
      const x = this.fullBelow;
      const node = this.areaItree.iterFirst(x, x) ?? this.reservedItree.iterFirst(x, x);
      if (node === undefined) return;
      if (node.last >= U64_MAX) {
        this.fullBelow = U64_MAX;
        return;
      }
      this.fullBelow = node.last + 1n;
    }
  }

  /** Something covering `[start, ...]` went away: holes may now exist from `start` on. */
  private uncovered(start: bigint): void {
    const s = start < BPAGE ? BPAGE : start;
    if (s < this.fullBelow) this.fullBelow = s;
  }

  // ---- IOVA checks and allocation ----

  /**
   * `iopt_alloc_iova`: the lowest IOVA (never the first page) where `length` bytes fit in an
   * allowed window, outside reserved ranges and areas, aligned to what the source address allows and
   * keeping its offset within the page.
   * @param addr - source address (user VA + offset) that guides the alignment
   * @param length - bytes
   * @throws ErrnoError `EOVERFLOW` (length 0 or at least 2^63 - 1), `EINVAL` (derived alignment below
   *   `iovaAlignment`), `ENOSPC` (no hole)
   */
  allocIova(addr: bigint, length: bigint): bigint {
    const pageOffset = addr % BPAGE;
    if (length === 0n || length >= U64_MAX / 2n) throw new ErrnoError('EOVERFLOW', 'length too large');
    let align = roundupPowOfTwo(length);
    if (addr !== 0n) {
      const low = lowestSetBit(addr);
      if (low < align) align = low;
    }
    if (align >= HPAGE_SIZE) align = HPAGE_SIZE;
    if (align < BigInt(this.alignment))
      throw new ErrnoError('EINVAL', 'IOVA alignment derived from the address is too small');

    // Returns the aligned start inside [start, last] where length fits, or -1n.
    const fit = (start: bigint, last: bigint): bigint => {
      const up = start + align - 1n;
      if (up > U64_MAX) return -1n;
      const aligned = (up & ~(align - 1n)) | pageOffset;
      if (aligned >= last || last - aligned < length - 1n) return -1n;
      return aligned;
    };

    const lo = BPAGE;
    const hi = U64_MAX - BPAGE;
    const windows: IoptIovaRange[] = [];
    if (this.allowed.size === 0) {
      windows.push({ start: lo, last: hi });
    } else {
      const it = new IntervalTreeSpanIter(this.allowed);
      for (it.spanIterFirst(lo, hi); !it.done; it.next()) {
        if (it.isHole === 0) windows.push({ start: it.startUsed, last: it.lastUsed });
      }
    }
    const used = new DoubleSpanIter<bigint>(this.reservedItree, this.areaItree);
    for (const w of windows) {
      const start = fit(w.start, w.last);
      if (start < 0n) continue;
      // Nothing below fullBelow is free: starting there finds the same first fitting hole.
      let from = start;
      if (from < this.fullBelow) from = this.fullBelow;
      if (from > w.last) continue;
      for (used.first(from, w.last); !used.done; used.next()) {
        if (used.isUsed !== 0) continue;
        const s = fit(used.start, used.last);
        if (s >= 0n) return s;
      }
    }
    throw new ErrnoError('ENOSPC', 'no IOVA hole fits');
  }

  /**
   * `iopt_check_iova`: may `[iova, iova + length - 1]` be mapped at a fixed address?
   * @param iova - first IOVA
   * @param length - bytes, positive
   * @throws ErrnoError `EINVAL` (not aligned to `iovaAlignment`, or intersects a reserved range),
   *   `EOVERFLOW` (wraps), `EEXIST` (intersects an area)
   */
  checkIova(iova: bigint, length: bigint): void {
    if (iova % BigInt(this.alignment) !== 0n) throw new ErrnoError('EINVAL', 'IOVA not aligned');
    const last = iova + length - 1n;
    if (last > U64_MAX) throw new ErrnoError('EOVERFLOW', 'IOVA range wraps');
    if (this.reservedItree.iterFirst(iova, last) !== undefined)
      throw new ErrnoError('EINVAL', 'IOVA range is reserved');
    if (this.areaItree.iterFirst(iova, last) !== undefined)
      throw new ErrnoError('EEXIST', 'IOVA range already mapped');
  }

  // ---- map ----

  /**
   * `iopt_map_user_pages(ictx, iopt, &iova, uptr, length, iommu_prot, flags)`: map `length` bytes
   * of `task`'s memory at `uptr` to `iova` (or an automatically chosen IOVA with
   * {@link IOPT_ALLOC_IOVA}). With domains attached the pages are pinned once and mapped into every
   * domain; without, nothing is pinned until a domain or an access needs the pages.
   * @param task - the calling process (`current`): its mm is the source, its credentials decide
   *   the account mode (NONE with `CAP_IPC_LOCK`, else USER)
   * @param iova - the fixed IOVA (ignored with `IOPT_ALLOC_IOVA`)
   * @param uptr - user address (u64)
   * @param length - bytes (u64)
   * @param iommuProt - `IOMMU_READ | IOMMU_WRITE`; pages are pinned writable iff `IOMMU_WRITE`
   * @param flags - 0 or `IOPT_ALLOC_IOVA`
   * @param ctxAccountMode - the iommufd context's `account_mode`: `IOPT_PAGES_ACCOUNT_MM` upgrades
   *   USER pages to MM; default USER (no upgrade)
   * @returns the IOVA used
   * @throws ErrnoError `EINVAL` (length 0 or too large, `length`/IOVA/`uptr` offset not aligned to
   *   `iovaAlignment`, reserved IOVA), `EOVERFLOW`, `EEXIST`, `ENOSPC`, pin errors (`EFAULT`),
   *   `ENOMEM` (RLIMIT_MEMLOCK), domain map errors; nothing is left mapped or pinned on failure
   */
  mapUserPages(
    task: Process,
    iova: bigint,
    uptr: bigint,
    length: bigint,
    iommuProt: number,
    flags: number,
    ctxAccountMode: IoptPagesAccountMode = IOPT_PAGES_ACCOUNT_USER,
  ): bigint {
    const pages = IoptPages.allocUser(task, uptr, length, (iommuProt & IOMMU_WRITE) !== 0);
    if (ctxAccountMode === IOPT_PAGES_ACCOUNT_MM && pages.accountMode === IOPT_PAGES_ACCOUNT_USER)
      pages.accountMode = IOPT_PAGES_ACCOUNT_MM;
    return this.mapPages([{ pages, startByte: uptr - pages.uptr, length }], length, iova, iommuProt, flags);
  }

  /**
   * `iopt_get_pages(iopt, iova, length, pages_list)`: the pages behind `[iova, iova + length)` as
   * one list element per area piece, each with a reference (what IOAS_COPY takes from the source).
   * @param iova - first IOVA
   * @param length - bytes
   * @returns the list; give it to {@link IoPagetable.mapPages} or {@link IoPagetable.freePagesList}
   * @throws ErrnoError `EINVAL` (length 0), `EOVERFLOW` (wraps), `ENOENT` (not fully covered by
   *   back-to-back areas)
   */
  getPages(iova: bigint, length: bigint): IoptPagesListEntry[] {
    if (length === 0n) throw new ErrnoError('EINVAL', 'length 0');
    const last = iova + length - 1n;
    if (last > U64_MAX) throw new ErrnoError('EOVERFLOW', 'range wraps');
    const list: IoptPagesListEntry[] = [];
    const it = new IoptAreaContigIter(this, iova, last);
    for (let area = it.first(); area !== null; area = it.next()) {
      const l = it.pieceLast(area);
      area.pages.get();
      list.push({ pages: area.pages, startByte: area.startByte(it.curIova), length: l - it.curIova + 1n });
    }
    if (!it.done) {
      this.freePagesList(list);
      throw new ErrnoError('ENOENT', 'range not fully mapped');
    }
    return list;
  }

  /**
   * `iopt_free_pages_list`: drop the references a pages list still holds.
   * @param list - from {@link IoPagetable.getPages}
   */
  freePagesList(list: IoptPagesListEntry[]): void {
    for (const e of list) {
      e.pages?.put();
      e.pages = null;
    }
  }

  /**
   * `iopt_map_pages(iopt, pages_list, length, &dst_iova, iommu_prot, flags)`: map a pages list
   * back to back at `iova` (or an automatic IOVA guided by the first element), one area per element,
   * sharing the pages: nothing already pinned is pinned or charged again. The list's references are
   * consumed in every case (moved into the areas, or dropped on failure).
   * @param list - elements (their lengths sum to `length`)
   * @param length - bytes
   * @param iova - fixed IOVA (ignored with `IOPT_ALLOC_IOVA`)
   * @param iommuProt - `IOMMU_READ | IOMMU_WRITE`
   * @param flags - 0 or `IOPT_ALLOC_IOVA`
   * @returns the IOVA used
   * @throws ErrnoError `EINVAL` (length 0 or not aligned, reserved IOVA, sub-page offset not
   *   aligned), `ENOSPC`, `EEXIST`, `EOVERFLOW`, `EPERM` (writable mapping of read-only pages), pin,
   *   accounting and domain errors; nothing changes on failure
   */
  mapPages(
    list: IoptPagesListEntry[],
    length: bigint,
    iova: bigint,
    iommuProt: number,
    flags: number,
  ): bigint {
    let areas: IoptArea[];
    let start: bigint;
    try {
      [areas, start] = this.allocAreaPages(list, length, iova, iommuProt, flags);
    } catch (e) {
      this.freePagesList(list);
      throw e;
    }
    let filled = 0;
    try {
      for (; filled < areas.length; filled++) (areas[filled] as IoptArea).fillDomains(this.domainList);
    } catch (e) {
      for (let k = 0; k < filled; k++) (areas[k] as IoptArea).unfillDomains(this.domainList);
      for (const a of areas) this.removeArea(a);
      this.freePagesList(list);
      throw e;
    }
    for (const e of list) e.pages = null; // the references now belong to the areas
    return start;
  }

  /** `iopt_alloc_area_pages`: reserve the IOVA and insert one area per element. */
  private allocAreaPages(
    list: IoptPagesListEntry[],
    length: bigint,
    iova: bigint,
    iommuProt: number,
    flags: number,
  ): [IoptArea[], bigint] {
    const first = list[0];
    if (first === undefined || first.pages === null) throw new ErrnoError('EINVAL', 'empty pages list');
    if (length === 0n || length % BigInt(this.alignment) !== 0n)
      throw new ErrnoError('EINVAL', 'length 0 or not aligned');
    let start = iova;
    if (flags & IOPT_ALLOC_IOVA) start = this.allocIova(first.pages.uptr + first.startByte, length);
    else this.checkIova(iova, length);
    const areas: IoptArea[] = [];
    let cur = start;
    try {
      for (const e of list) {
        if (e.pages === null) throw new ErrnoError('EINVAL', 'pages list element already used');
        areas.push(this.insertArea(e.pages, cur, e.startByte, e.length, iommuProt));
        cur += e.length;
      }
    } catch (err) {
      for (const a of areas) this.removeArea(a);
      throw err;
    }
    return [areas, start];
  }

  /** `iopt_insert_area`: validate and insert an area taking a slice of `pages`. */
  private insertArea(
    pages: IoptPages,
    iova: bigint,
    startByte: bigint,
    length: bigint,
    iommuProt: number,
  ): IoptArea {
    if (iommuProt & IOMMU_WRITE && !pages.writable)
      throw new ErrnoError('EPERM', 'writable mapping of read-only pages');
    const pageOffset = startByte % BPAGE;
    if (pageOffset % BigInt(this.alignment) !== 0n)
      throw new ErrnoError('EINVAL', 'offset within the page not aligned');
    const last = iova + length - 1n;
    if (last > U64_MAX) throw new ErrnoError('EOVERFLOW', 'IOVA range wraps');
    if ((startByte + length - 1n) / BPAGE >= BigInt(pages.npages))
      throw new ErrnoError('EOVERFLOW', 'slice beyond the pages');
    if (shouldFail('iommufd.area_alloc')) throw new ErrnoError('ENOMEM', 'injected: iopt_area allocation');
    const area = new IoptArea(this, pages, iova, last, startByte, iommuProt);
    area.node = this.areaItree.insert(iova, last, area);
    if (iova <= this.fullBelow) this.advanceFullBelow();
    return area;
  }

  /** Take an area out of the area tree (`iopt_abort_area`); the caller handles its pages reference. */
  private removeArea(area: IoptArea): void {
    if (area.node !== null) {
      this.areaItree.remove(area.node);
      area.node = null;
      this.uncovered(area.iova);
    }
  }

  // ---- unmap ----

  /**
   * `iopt_unmap_iova(iopt, iova, length, &unmapped)`: remove every area inside
   * `[iova, iova + length - 1]`; areas are never split or truncated. Areas with access pins first
   * get their accesses' `unmap` callbacks (with the area marked `preventAccess`), then the walk
   * retries; 100 retries without progress fail with `EDEADLOCK`.
   * @param iova - first IOVA
   * @param length - bytes
   * @param out - receives the bytes unmapped, also when the call throws
   * @returns bytes unmapped; 0n when nothing was in the range (IOMMU_IOAS_UNMAP turns that into
   *   `ENOENT`, as Linux since commit afb47765f923)
   * @throws ErrnoError `EINVAL` (length 0), `EOVERFLOW` (wraps), `EBUSY` (locked area), `ENOENT`
   *   (an area sticks out of the range), `EDEADLOCK`; areas removed before the error stay removed
   */
  unmapIova(iova: bigint, length: bigint, out?: IoptUnmapResult): bigint {
    if (length === 0n) throw new ErrnoError('EINVAL', 'length 0');
    const last = iova + length - 1n;
    if (last > U64_MAX) throw new ErrnoError('EOVERFLOW', 'range wraps');
    return this.unmapIovaRange(iova, last, out);
  }

  /**
   * `iopt_unmap_all(iopt, &unmapped)`: unmap every area (success on an empty table).
   * @param out - receives the bytes unmapped, also when the call throws
   * @returns bytes unmapped
   * @throws ErrnoError `EBUSY`, `EDEADLOCK` as {@link IoPagetable.unmapIova}
   */
  unmapAll(out?: IoptUnmapResult): bigint {
    return this.unmapIovaRange(0n, U64_MAX, out);
  }

  /** `iopt_unmap_iova_range`. */
  private unmapIovaRange(first: bigint, last: bigint, out: IoptUnmapResult | undefined): bigint {
    let start = first;
    let unmapped = 0n;
    let tries = 0;
    try {
      for (;;) {
        const node = this.areaItree.iterFirst(start, last);
        if (node === undefined) break;
        const area = node.value;
        if (area.numLocks > 0) throw new ErrnoError('EBUSY', 'area locked');
        if (area.iova < start || area.lastIova > last)
          throw new ErrnoError('ENOENT', 'an area is only partly inside the range');
        if (area.iova !== start) tries = 0;
        if (area.numAccesses > 0) {
          start = area.iova;
          area.preventAccess = true;
          this.notifyUnmap(area.iova, area.length);
          tries++;
          if (tries > UNMAP_ACCESS_TRIES)
            throw new ErrnoError('EDEADLOCK', 'accesses keep pages pinned in the area');
          continue;
        }
        area.unfillDomains(this.domainList);
        this.removeArea(area);
        area.pages.put();
        unmapped += area.length;
      }
    } finally {
      if (out !== undefined) out.unmapped = unmapped;
    }
    return unmapped;
  }

  /** `iommufd_access_notify_unmap`: call every attached access's `unmap`. */
  private notifyUnmap(iova: bigint, length: bigint): void {
    for (const access of [...this.accessList.values()]) access.unmap(iova, length);
  }

  /**
   * `iopt_cut_iova(iopt, iovas, num_iovas)`: split the area containing each IOVA so that the IOVA
   * becomes the last byte of an area (VFIO type1 v1 partial unmap). IOVAs inside no area, or at
   * an area's first or last byte, need no split.
   * @param iovas - split points
   * @throws ErrnoError `EBUSY` (area being unmapped), `EINVAL` (split point not aligned to
   *   `iovaAlignment`, area with access pins, area mapped into domains while large pages are
   *   enabled); splits before the failing one are kept
   */
  cutIova(iovas: readonly bigint[]): void {
    for (const iova of iovas) {
      const node = this.areaItree.iterFirst(iova, iova);
      if (node === undefined) continue;
      this.splitArea(node.value, iova);
    }
  }

  /** `iopt_area_split(area, iova)`: `iova` becomes the last byte of the left part. */
  private splitArea(area: IoptArea, iova: bigint): void {
    if (iova === area.iova || iova === area.lastIova) return;
    if (area.preventAccess) throw new ErrnoError('EBUSY', 'area is being unmapped');
    const align = BigInt(this.alignment);
    const newStart = iova + 1n;
    if (newStart % align !== 0n || area.startByte(newStart) % align !== 0n)
      throw new ErrnoError('EINVAL', 'split point not aligned');
    if (area.numAccesses > 0) throw new ErrnoError('EINVAL', 'area has access pins');
    if (area.storageDomain !== null && !this.noLargePages)
      throw new ErrnoError('EINVAL', 'area may be mapped with large pages');
    const pages = area.pages;
    this.removeArea(area);
    const lhs = new IoptArea(this, pages, area.iova, iova, area.startByte(area.iova), area.iommuProt);
    const rhs = new IoptArea(this, pages, newStart, area.lastIova, area.startByte(newStart), area.iommuProt);
    lhs.node = this.areaItree.insert(lhs.iova, lhs.lastIova, lhs);
    rhs.node = this.areaItree.insert(rhs.iova, rhs.lastIova, rhs);
    this.advanceFullBelow();
    if (area.storageDomain !== null && area.pagesNode !== null) {
      pages.domainsItree.remove(area.pagesNode);
      area.pagesNode = null;
      lhs.pagesNode = pages.domainsItree.insert(lhs.pagesStart, lhs.pagesLast, lhs);
      rhs.pagesNode = pages.domainsItree.insert(rhs.pagesStart, rhs.pagesLast, rhs);
    }
    lhs.storageDomain = area.storageDomain;
    rhs.storageDomain = area.storageDomain;
    area.storageDomain = null;
    pages.get(); // the area's reference goes to lhs, a new one to rhs
  }

  // ---- allowed and reserved ranges ----

  /**
   * `iopt_set_allow_iova`: replace the allowed ranges (an empty list clears them). The per-element
   * checks of IOMMU_IOAS_ALLOW_IOVAS are applied first.
   * @param ranges - the new allowed ranges
   * @throws ErrnoError `EINVAL` (`start >= last`, or overlapping an earlier element),
   *   `EADDRINUSE` (a range intersects a reserved range; the old list is kept), `ENOMEM` (fail_nth
   *   point `iommufd.allowed_alloc`, per range; the old list is kept)
   */
  setAllowIova(ranges: readonly IoptIovaRange[]): void {
    const tree = new BigIntIntervalTree<null>();
    for (const r of ranges) {
      if (r.start >= r.last || r.start < 0n || r.last > U64_MAX)
        throw new ErrnoError('EINVAL', 'bad allowed range');
      if (tree.iterFirst(r.start, r.last) !== undefined)
        throw new ErrnoError('EINVAL', 'overlapping allowed ranges');
      if (shouldFail('iommufd.allowed_alloc'))
        throw new ErrnoError('ENOMEM', 'injected: allowed range allocation');
      tree.insert(r.start, r.last, null);
    }
    for (const r of ranges) {
      if (this.reservedItree.iterFirst(r.start, r.last) !== undefined)
        throw new ErrnoError('EADDRINUSE', 'allowed range intersects a reserved range');
    }
    this.allowed = tree;
  }

  /**
   * `iopt_reserve_iova(iopt, start, last, owner)`: reserve `[start, last]`.
   * @param start - first IOVA
   * @param last - last IOVA (inclusive)
   * @param owner - the owner tag (domain, device, or null)
   * @throws ErrnoError `ENOMEM` (fail_nth point `iommufd.reserved_alloc`); `EADDRINUSE` (intersects
   *   an area or an allowed range); `EINVAL` for a range
   *   that is not an interval of u64 (`last` below `start`), which Linux's callers never pass
   */
  reserveIova(start: bigint, last: bigint, owner: unknown): void {
    if (start < 0n || last < start || last > U64_MAX) throw new ErrnoError('EINVAL', 'bad reserved range');
    if (
      this.areaItree.iterFirst(start, last) !== undefined ||
      this.allowed.iterFirst(start, last) !== undefined
    )
      throw new ErrnoError('EADDRINUSE', 'IOVA range in use');
    if (shouldFail('iommufd.reserved_alloc'))
      throw new ErrnoError('ENOMEM', 'injected: reserved range allocation');
    this.reservedItree.insert(start, last, { owner });
    if (start <= this.fullBelow) this.advanceFullBelow();
  }

  /**
   * `iopt_remove_reserved_iova(iopt, owner)`: drop every reserved range of `owner`.
   * @param owner - the owner tag
   */
  removeReservedIova(owner: unknown): void {
    const t = this.reservedItree;
    const doomed: NonNullable<ReturnType<typeof t.iterFirst>>[] = [];
    t.forEachOverlapping(0n, U64_MAX, (n) => {
      if (n.value.owner === owner) doomed.push(n);
    });
    for (const n of doomed) {
      t.remove(n);
      this.uncovered(n.start);
    }
  }

  /**
   * The usable IOVA ranges: the complement of the reserved ranges over `[0, 2^64 - 1]` in ascending
   * order (IOMMU_IOAS_IOVA_RANGES, VFIO's IOVA range capability). Allowed ranges do not narrow it.
   */
  iovaRanges(): IoptIovaRange[] {
    const out: IoptIovaRange[] = [];
    for (const s of this.reservedItree.spans(0n, U64_MAX)) {
      if (s.isHole) out.push({ start: s.start, last: s.last });
    }
    return out;
  }

  /**
   * `iopt_table_enforce_dev_resv_regions(iopt, dev, &sw_msi_start)`: reserve the device's IOMMU
   * reserved regions (all types except direct-relaxable) under `owner`.
   * @param dev - the device (its regions come from `iommu_get_resv_regions` of its subsystem)
   * @param owner - the owner tag; default the device
   * @returns the start of the software MSI window, or null when the device has none
   * @throws ErrnoError `EADDRINUSE` (a region intersects an area or an allowed range), `EINVAL`
   *   (both hardware and software MSI windows, or several software ones); on failure every
   *   reservation of `owner` is removed
   */
  tableEnforceDevResvRegions(dev: Device, owner: unknown = dev): bigint | null {
    const regions = dev.iommu?.subsystem.iommuGetResvRegions(dev) ?? [];
    let swMsiStart: bigint | null = null;
    let numHwMsi = 0;
    let numSwMsi = 0;
    try {
      for (const r of regions) {
        if (r.type === IommuResvType.DIRECT_RELAXABLE) continue;
        if (r.type === IommuResvType.MSI) numHwMsi++;
        if (r.type === IommuResvType.SW_MSI) {
          swMsiStart = r.start;
          numSwMsi++;
        }
        if (r.length === 0n) continue;
        this.reserveIova(r.start, r.start + r.length - 1n, owner);
      }
      if ((numSwMsi > 0 && numHwMsi > 0) || numSwMsi > 1)
        throw new ErrnoError('EINVAL', 'the driver reports an impossible set of MSI regions');
    } catch (e) {
      this.removeReservedIova(owner);
      throw e;
    } finally {
      for (const r of regions) r.free?.(r);
    }
    return swMsiStart;
  }

  // ---- domains ----

  /** `iopt_check_iova_alignment`: every area conforms to a larger alignment. */
  private checkIovaAlignment(newAlignment: number): void {
    const mask = BigInt(newAlignment) - 1n;
    for (const area of this.areas()) {
      if ((area.iova & mask) !== 0n || (area.length & mask) !== 0n || (BigInt(area.pageOffset) & mask) !== 0n)
        throw new ErrnoError('EADDRINUSE', 'an existing area does not fit the new alignment');
    }
  }

  /** `iopt_calculate_iova_alignment`: recompute the alignment; raising it checks the areas. */
  private calculateIovaAlignment(): void {
    let a = this.noLargePages ? PAGE : 1;
    for (const d of this.domainList) {
      const m = Number(minPageSize(d));
      if (m > a) a = m;
    }
    for (const al of this.accessAlignments.keys()) if (al > a) a = al;
    if (a > this.alignment) this.checkIovaAlignment(a);
    this.alignment = a;
  }

  /**
   * `iopt_table_add_domain(iopt, domain)`: attach a paging domain: reserve what lies outside its
   * aperture, raise the alignment to its smallest page size, and map every area into it (pinning
   * only pages nobody holds yet: PFNs already pinned for another domain or an access are reused).
   * @param domain - a paging domain whose smallest page size is at most `PAGE_SIZE`
   * @throws ErrnoError `EEXIST` (already attached), `EINVAL` (smallest page size above
   *   `PAGE_SIZE`, or no page sizes), `EADDRINUSE` (an area breaks the new alignment, or an area or
   *   allowed range lies outside the aperture), pin/accounting/map errors; on failure the table,
   *   the domain, pins and counters are unchanged
   */
  tableAddDomain(domain: IommuDomain): void {
    if (this.domainList.includes(domain)) throw new ErrnoError('EEXIST', 'domain already attached');
    const min = Number(minPageSize(domain));
    const newAlignment = Math.max(min, this.alignment);
    if (min === 0 || newAlignment > PAGE) throw new ErrnoError('EINVAL', 'domain page size above PAGE_SIZE');
    if (newAlignment !== this.alignment) this.checkIovaAlignment(newAlignment);
    const g = domain.geometry;
    try {
      if (g.apertureStart !== 0n) this.reserveIova(0n, g.apertureStart - 1n, domain);
      if (g.apertureEnd < U64_MAX) this.reserveIova(g.apertureEnd + 1n, U64_MAX, domain);
      this.fillDomain(domain);
    } catch (e) {
      this.removeReservedIova(domain);
      throw e;
    }
    this.alignment = newAlignment;
    this.domainList.push(domain);
  }

  /** `iopt_fill_domain`: map every area into a new domain; on failure undo the areas done. */
  private fillDomain(domain: IommuDomain): void {
    const areas = this.areas();
    const firstDomain = this.domainList.length === 0;
    let done = 0;
    try {
      for (; done < areas.length; done++) (areas[done] as IoptArea).fillDomain(domain);
    } catch (e) {
      for (let k = 0; k < done; k++) {
        const area = areas[k] as IoptArea;
        if (firstDomain) area.unfillDomain(domain);
        else area.unmapDomain(domain);
      }
      throw e;
    }
  }

  /**
   * `iopt_table_remove_domain(iopt, domain)`: unmap every area from the domain, move storage to a
   * remaining domain (or unpin what only domains held when it was the last one), drop its aperture
   * reservations and recompute the alignment. Unknown domains are ignored (Linux warns).
   * @param domain - an attached domain
   */
  tableRemoveDomain(domain: IommuDomain): void {
    const index = this.domainList.indexOf(domain);
    if (index < 0) return;
    // Keep the list dense: the tail entry takes the removed one's place.
    const tail = this.domainList.pop() as IommuDomain;
    if (index < this.domainList.length) this.domainList[index] = tail;
    const storage = this.domainList[0];
    for (const area of this.areas()) {
      if (storage !== undefined) {
        if (area.storageDomain === domain) area.storageDomain = storage;
        area.unmapDomain(domain);
      } else {
        area.unfillDomain(domain);
      }
    }
    this.removeReservedIova(domain);
    this.calculateIovaAlignment();
  }

  // ---- accesses and options ----

  /**
   * `iopt_add_access(iopt, access)`: attach an access (lowest free ID 0 … 65535) and raise the
   * alignment to its `iovaAlignment`.
   * @param access - the access
   * @returns its access-list ID
   * @throws ErrnoError `EBUSY` (65536 accesses attached), `EADDRINUSE` (an area breaks the new
   *   alignment; the access is not added)
   */
  addAccess(access: IoptAccess): number {
    let id = this.accessIdHint;
    while (this.accessList.has(id)) id++;
    if (id > ACCESS_ID_MAX) throw new ErrnoError('EBUSY', 'too many accesses');
    this.accessIdHint = id;
    this.accessList.set(id, access);
    this.accessIds.set(access, id);
    this.countAlignment(access.iovaAlignment, 1);
    try {
      this.calculateIovaAlignment();
    } catch (e) {
      this.accessList.delete(id);
      this.accessIds.delete(access);
      this.countAlignment(access.iovaAlignment, -1);
      throw e;
    }
    return id;
  }

  private countAlignment(alignment: number, delta: number): void {
    const n = (this.accessAlignments.get(alignment) ?? 0) + delta;
    if (n > 0) this.accessAlignments.set(alignment, n);
    else this.accessAlignments.delete(alignment);
  }

  /**
   * `iopt_remove_access(iopt, access, id)`: detach an access and recompute the alignment.
   * @param access - the access
   * @param id - its ID from {@link IoPagetable.addAccess}; default: looked up
   */
  removeAccess(access: IoptAccess, id?: number): void {
    const key = id !== undefined && this.accessList.get(id) === access ? id : this.accessIds.get(access);
    if (key === undefined || this.accessList.get(key) !== access) return;
    this.accessList.delete(key);
    if (this.accessIds.get(access) === key) this.accessIds.delete(access);
    if (key < this.accessIdHint) this.accessIdHint = key;
    this.countAlignment(access.iovaAlignment, -1);
    this.calculateIovaAlignment();
  }

  /**
   * `iopt_disable_large_pages`: map every page with a separate `PAGE_SIZE` mapping from now on, and
   * require `PAGE_SIZE` alignment. No-op when already disabled.
   * @throws ErrnoError `EINVAL` (the table has both domains and areas), `EADDRINUSE` (an area is
   *   not page aligned; the option stays enabled)
   */
  disableLargePages(): void {
    if (this.noLargePages) return;
    if (this.domainList.length > 0 && this.areaItree.size > 0)
      throw new ErrnoError('EINVAL', 'domains already have pages mapped');
    this.noLargePages = true;
    try {
      this.calculateIovaAlignment();
    } catch (e) {
      this.noLargePages = false;
      throw e;
    }
  }

  /** `iopt_enable_large_pages`: allow large mappings again and recompute the alignment. */
  enableLargePages(): void {
    this.noLargePages = false;
    this.calculateIovaAlignment();
  }

  // ---- access helpers (device.c) ----

  /**
   * The core of `iommufd_access_pin_pages`: pin the pages under `[iova, iova + length)` for an
   * in-kernel access and return their physical addresses, one per page. Pages already pinned (by a
   * domain or another access) are not pinned again.
   * @param iova - first IOVA; must be at a page boundary of its area
   * @param length - bytes, positive
   * @param flags - `IOMMUFD_ACCESS_RW_WRITE` for a writable pin
   * @returns physical addresses of the pages
   * @throws ErrnoError `EINVAL` (length 0, area being unmapped, not page aligned), `EOVERFLOW`,
   *   `EPERM` (area or pages not writable / not readable), `ENOENT` (gap), pin errors (`EFAULT`,
   *   `ENOMEM`); partial work is undone
   */
  accessPinPages(iova: bigint, length: bigint, flags: number): number[] {
    if (length === 0n) throw new ErrnoError('EINVAL', 'length 0');
    const last = iova + length - 1n;
    if (last > U64_MAX) throw new ErrnoError('EOVERFLOW', 'range wraps');
    const out: number[] = [];
    const it = new IoptAreaContigIter(this, iova, last);
    try {
      for (let area = it.first(); area !== null; area = it.next()) {
        const l = it.pieceLast(area);
        const lastIndex = area.iovaToIndex(l);
        const index = area.iovaToIndex(it.curIova);
        if (area.preventAccess || !it.isAligned()) throw new ErrnoError('EINVAL', 'not page aligned');
        if (!checkAreaProt(area, flags)) throw new ErrnoError('EPERM', 'area permissions');
        area.pages.addAccess(area, index, lastIndex, flags, out);
      }
      if (!it.done) throw new ErrnoError('ENOENT', 'range not fully mapped');
    } catch (e) {
      if (iova < it.curIova) this.removeAccessRange(iova, it.curIova - 1n);
      throw e;
    }
    return out;
  }

  /**
   * The core of `iommufd_access_unpin_pages`: undo one {@link IoPagetable.accessPinPages} of exactly
   * the same range. A zero or wrapping length is ignored (Linux warns).
   * @param iova - first IOVA
   * @param length - bytes
   */
  accessUnpinPages(iova: bigint, length: bigint): void {
    if (length === 0n || iova + length - 1n > U64_MAX) return;
    this.removeAccessRange(iova, iova + length - 1n);
  }

  private removeAccessRange(iova: bigint, last: bigint): void {
    const it = new IoptAreaContigIter(this, iova, last);
    for (let area = it.first(); area !== null; area = it.next()) {
      area.pages.removeAccess(area, area.iovaToIndex(it.curIova), area.iovaToIndex(it.pieceLast(area)));
    }
  }

  /**
   * The core of `iommufd_access_rw`: copy `data.length` bytes between `data` and the memory mapped
   * at `iova`, byte-granular, without keeping pins.
   * @param iova - first IOVA
   * @param data - the buffer (read into, or written from with `IOMMUFD_ACCESS_RW_WRITE`)
   * @param flags - `IOMMUFD_ACCESS_RW_*`
   * @param current - the calling task's mm (selects the copy path, see `IoptPages.rwAccess`)
   * @throws ErrnoError `EINVAL` (empty buffer, area being unmapped), `EOVERFLOW`, `EPERM` (area or
   *   pages not writable / readable), `ENOENT` (gap), `EFAULT` (copy fault)
   */
  accessRw(iova: bigint, data: Uint8Array, flags: number, current: Mm | null = null): void {
    if (data.length === 0) throw new ErrnoError('EINVAL', 'length 0');
    const last = iova + BigInt(data.length) - 1n;
    if (last > U64_MAX) throw new ErrnoError('EOVERFLOW', 'range wraps');
    const it = new IoptAreaContigIter(this, iova, last);
    let off = 0;
    for (let area = it.first(); area !== null; area = it.next()) {
      const bytes = Number(it.pieceLast(area) - it.curIova + 1n);
      if (area.preventAccess) throw new ErrnoError('EINVAL', 'area is being unmapped');
      if (!checkAreaProt(area, flags)) throw new ErrnoError('EPERM', 'area permissions');
      area.pages.rwAccess(area.startByte(it.curIova), data.subarray(off, off + bytes), flags, current);
      off += bytes;
    }
    if (!it.done) throw new ErrnoError('ENOENT', 'range not fully mapped');
  }

  // ---- debugging ----

  /**
   * For every page-sized step of `[iova, iova + length)` that an area covers: the page index, the
   * pinned physical address (null when nothing holds the index) and that page's pin and reference
   * counts (what MD_CHECK_MAP / MD_CHECK_REFS style checks need).
   * @param iova - first IOVA
   * @param length - bytes
   */
  debugWalk(iova: bigint, length: bigint): IoptDebugPage[] {
    const out: IoptDebugPage[] = [];
    if (length === 0n) return out;
    const last = iova + length - 1n;
    this.areaItree.forEachOverlapping(iova, last > U64_MAX ? U64_MAX : last, (n) => {
      const area = n.value;
      const from = iova > area.iova ? iova : area.iova;
      const to = last < area.lastIova ? last : area.lastIova;
      const mem = area.pages.sourceMm.machine.memory;
      for (let i = area.iovaToIndex(from); i <= area.iovaToIndex(to); i++) {
        const pinned = area.pages.isPinned(i);
        const pa = pinned ? area.pages.paAt(i) : null;
        let pageIova = area.indexToIova(i);
        if (pageIova < from) pageIova = from;
        out.push({
          iova: pageIova,
          area,
          index: i,
          pa,
          pincount: pa === null ? 0 : mem.pinCount(pa),
          refcount: pa === null ? 0 : mem.pageRefcount(pa),
        });
      }
    });
    return out;
  }

  /**
   * `iopt_destroy_table`: drop the allowed ranges and the test (`null`-owner) reservations of a
   * table whose areas, domains and accesses are already gone.
   * @throws Error if areas, domains, accesses or other reservations remain (Linux warns)
   */
  destroyTable(): void {
    this.removeReservedIova(null);
    this.allowed = new BigIntIntervalTree();
    if (
      this.reservedItree.size !== 0 ||
      this.domainList.length !== 0 ||
      this.accessList.size !== 0 ||
      this.areaItree.size !== 0
    )
      throw new Error('io_pagetable destroyed while still in use');
  }
}

/** `check_area_prot`: a write needs `IOMMU_WRITE`, a read `IOMMU_READ`. */
function checkAreaProt(area: IoptArea, flags: number): boolean {
  if (flags & IOMMUFD_ACCESS_RW_WRITE) return (area.iommuProt & IOMMU_WRITE) !== 0;
  return (area.iommuProt & IOMMU_READ) !== 0;
}
