/**
 * `struct iopt_pages`: one MAP's linear run of user pages, pinned at most once per page index
 * however many areas, domains and in-kernel accesses use it (drivers/iommu/iommufd/pages.c,
 * io_pagetable.h).
 *
 * @remarks
 * Who holds an index: an in-kernel access range in {@link IoptPages.accessItree}, or an area that
 * is filled into at least one domain in {@link IoptPages.domainsItree}. An index is pinned exactly
 * while one of the two trees covers it. Linux keeps the PFNs of access ranges in an xarray and
 * reads the others back from a "storage domain"; this model keeps every pinned PFN in one compact
 * store (chunks of `Float64Array`, allocated on first use), which gives the same pins, the same
 * accounting and the same errors without walking IOMMU page tables to find a PFN.
 *
 * Accounting (RLIMIT_MEMLOCK, §2.9 of the digest): after pinning, the change of `npinned` is
 * charged according to {@link IoptPages.accountMode}; a failed charge unpins what was just pinned
 * and fails with `ENOMEM`. Every mode also moves the source mm's `pinned_vm`.
 *
 * Error style: throws `ErrnoError`; a failed call leaves pins, PFNs and counters as they were.
 */

import { ErrnoError, shouldFail } from '@iommu-ts/base';
import { IntervalTree, type IntervalTreeNode } from '@iommu-ts/interval-tree';
import {
  __accountLockedVm,
  addPinnedVm,
  CAP,
  copyFromUser,
  copyToUser,
  decUserLockedVm,
  FOLL_LONGTERM,
  FOLL_WRITE,
  incUserLockedVm,
  type Mm,
  type PhysicalMemory,
  type Process,
  pinUserPagesRemote,
} from '@iommu-ts/mm';
import type { IoptArea } from './area.js';
import { DoubleSpanIter } from './double-span.js';

/** `PAGE_SIZE` of the model (4 KiB), the unit of `iopt_pages` indexes. */
export const IOPT_PAGE_SIZE = 4096;

/** `IOPT_PAGES_ACCOUNT_NONE` (0): no RLIMIT_MEMLOCK check (the mapping task had `CAP_IPC_LOCK`). */
export const IOPT_PAGES_ACCOUNT_NONE = 0;
/** `IOPT_PAGES_ACCOUNT_USER` (1): charge the user's `locked_vm` (the io_uring method). */
export const IOPT_PAGES_ACCOUNT_USER = 1;
/** `IOPT_PAGES_ACCOUNT_MM` (2): charge the source mm's `locked_vm` (the VFIO method). */
export const IOPT_PAGES_ACCOUNT_MM = 2;
/** One of `IOPT_PAGES_ACCOUNT_NONE`, `_USER`, `_MM`. */
export type IoptPagesAccountMode = 0 | 1 | 2;

/** `IOMMUFD_ACCESS_RW_READ` (0): copy from IOAS memory (include/linux/iommufd.h). */
export const IOMMUFD_ACCESS_RW_READ = 0;
/** `IOMMUFD_ACCESS_RW_WRITE` (1 shl 0): copy into IOAS memory / pin for writing. */
export const IOMMUFD_ACCESS_RW_WRITE = 1 << 0;
/** `IOMMUFD_ACCESS_RW_KTHREAD` (1 shl 1): the caller is a kernel thread; use the source mm directly. */
export const IOMMUFD_ACCESS_RW_KTHREAD = 1 << 1;
/** `__IOMMUFD_ACCESS_RW_SLOW_PATH` (1 shl 2): selftest only, force the pinning path of `access_rw`. */
export const __IOMMUFD_ACCESS_RW_SLOW_PATH = 1 << 2;

/** Default of the temporary-buffer size limit (`TEMP_MEMORY_LIMIT`, 64 KiB). */
export const TEMP_MEMORY_LIMIT_DEFAULT = 65536;

let tempMemoryLimit = TEMP_MEMORY_LIMIT_DEFAULT;

/**
 * Set the global limit on temporary PFN buffers (`iommufd_test_memory_limit`, set by the selftest
 * op `SET_TEMP_MEMORY_LIMIT`). It bounds how many pages one `pin_user_pages` call asks for
 * (`limit / 8`, at least 1), so tests can force many small batches.
 * @param bytes - the limit in bytes, at least 12 (`sizeof(unsigned long) + sizeof(u32)`)
 * @throws ErrnoError `EINVAL` below 12 or not an integer
 */
export function setTempMemoryLimit(bytes: number): void {
  if (!Number.isInteger(bytes) || bytes < 12) throw new ErrnoError('EINVAL', 'temp memory limit below 12');
  tempMemoryLimit = bytes;
}

/** The current temporary-buffer size limit in bytes (see {@link setTempMemoryLimit}). */
export function getTempMemoryLimit(): number {
  return tempMemoryLimit;
}

const PAGE = IOPT_PAGE_SIZE;
const SIZE_MAX = 0xffff_ffff_ffff_ffffn;
/** PFNs per storage chunk (32 KiB of `Float64Array`). */
const CHUNK = 4096;

/**
 * `struct iopt_pages_access`: one range of page indexes pinned by in-kernel accesses, with the
 * number of `pin_pages` calls that asked for exactly this range.
 */
export class IoptPagesAccess {
  /** The node in {@link IoptPages.accessItree} (`[first index, last index]`). */
  node: IntervalTreeNode<number, IoptPagesAccess> | null = null;
  /** Number of users of the range (`users`). */
  users = 1;
}

/** A range of page indexes `[start, last]` (inclusive). */
export interface IoptIndexRange {
  /** First index. */
  readonly start: number;
  /** Last index (inclusive). */
  readonly last: number;
}

/**
 * One MAP's user pages (`struct iopt_pages`); see the file comment.
 */
export class IoptPages {
  /** The task that mapped the pages (`source_task`): whose `RLIMIT_MEMLOCK` applies. */
  readonly sourceTask: Process;
  /** The mm the pages come from (`source_mm`, held with `mmgrab`). */
  readonly sourceMm: Mm;
  /** The uid charged in USER mode (`source_user`). */
  readonly sourceUid: number;
  /** Page-aligned user address of index 0 (`uptr`, u64). */
  readonly uptr: bigint;
  /** Number of pages (`npages`). */
  readonly npages: number;
  /** Pinned for writing (`FOLL_WRITE`), and writable mappings allowed (`writable`). */
  readonly writable: boolean;
  /** How pins are charged (`account_mode`); iommufd may upgrade USER to MM before the first pin. */
  accountMode: IoptPagesAccountMode;
  /** Pages currently pinned (`npinned`). */
  npinned = 0;
  /** `npinned` at the last accounting update (`last_npinned`). */
  lastNpinned = 0;
  /** Ranges pinned by in-kernel accesses (`access_itree`). */
  readonly accessItree: IntervalTree<IoptPagesAccess> = new IntervalTree();
  /** Areas filled into at least one domain, by their index range (`domains_itree`). */
  readonly domainsItree: IntervalTree<IoptArea> = new IntervalTree();
  private readonly memory: PhysicalMemory;
  /** `uptr` as a number, or -1 when it cannot be a user address (every pin then fails with EFAULT). */
  private readonly uptrNum: number;
  private readonly chunks: (Float64Array | undefined)[] = [];
  private refs = 1;
  private released = false;

  /**
   * Use {@link IoptPages.allocUser}.
   * @param task - the mapping task
   * @param uptr - page-aligned start
   * @param npages - pages
   * @param writable - writable pages
   * @internal
   */
  constructor(task: Process, uptr: bigint, npages: number, writable: boolean) {
    this.sourceTask = task;
    this.sourceMm = task.mm;
    this.sourceMm.mmgrab();
    this.sourceUid = task.uid;
    this.memory = this.sourceMm.machine.memory;
    this.uptr = uptr;
    this.uptrNum = uptr < 2n ** 53n ? Number(uptr) : -1;
    this.npages = npages;
    this.writable = writable;
    this.accountMode = task.capable(CAP.IPC_LOCK) ? IOPT_PAGES_ACCOUNT_NONE : IOPT_PAGES_ACCOUNT_USER;
  }

  /**
   * `iopt_alloc_user_pages(uptr, length, writable)`: a pages object for `[uptr, uptr + length)` of
   * `task` (`current`), with one reference. Nothing is pinned. The account mode is NONE when the task
   * has `CAP_IPC_LOCK`, else USER.
   * @param task - the mapping task (its mm is the source)
   * @param uptr - user address (u64, any alignment)
   * @param length - bytes (u64)
   * @param writable - pin with `FOLL_WRITE` and allow writable areas
   * @returns the new pages object
   * @throws ErrnoError `EOVERFLOW` (`uptr + length` wraps; checked first, as in the newest kernels),
   *   `EINVAL` (length 0 or above `SIZE_MAX - PAGE_SIZE`), `ESRCH` (the task has exited), `ENOMEM`
   *   (fail_nth point `iommufd.pages_alloc`)
   */
  static allocUser(task: Process, uptr: bigint, length: bigint, writable: boolean): IoptPages {
    if (uptr < 0n || uptr + length > SIZE_MAX) throw new ErrnoError('EOVERFLOW', 'uptr + length wraps');
    if (length === 0n || length > SIZE_MAX - BigInt(PAGE)) throw new ErrnoError('EINVAL', 'bad length');
    if (shouldFail('iommufd.pages_alloc')) throw new ErrnoError('ENOMEM', 'injected: iopt_pages allocation');
    const aligned = uptr - (uptr % BigInt(PAGE));
    const npages = Number((length + (uptr - aligned) + BigInt(PAGE) - 1n) / BigInt(PAGE));
    return new IoptPages(task, aligned, npages, writable);
  }

  // ---- lifetime ----

  /** Current reference count (`kref`). */
  get refcount(): number {
    return this.refs;
  }

  /** Take a reference (`kref_get`). */
  get(): void {
    if (this.released) throw new Error('iopt_pages: get after release');
    this.refs++;
  }

  /**
   * Drop a reference (`iopt_put_pages`); the last one releases the object (`iopt_release_pages`:
   * `mmdrop` of the source mm).
   * @throws Error if the last reference goes while something is still pinned (a bug, Linux warns)
   */
  put(): void {
    if (this.refs <= 0) throw new Error('iopt_pages: put underflow');
    this.refs--;
    if (this.refs > 0) return;
    if (this.accessItree.size !== 0 || this.domainsItree.size !== 0 || this.npinned !== 0)
      throw new Error('iopt_pages released while pages are still pinned');
    this.released = true;
    this.chunks.length = 0;
    this.sourceMm.mmdrop();
  }

  // ---- PFN store ----

  /**
   * The PFN stored for `index`; meaningful only while the index is pinned ({@link IoptPages.isPinned}).
   * @param index - page index
   */
  pfnAt(index: number): number {
    const c = this.chunks[Math.floor(index / CHUNK)];
    return c === undefined ? -1 : (c[index % CHUNK] as number);
  }

  /**
   * The physical address of the pinned page at `index` (`PFN * PAGE_SIZE`).
   * @param index - page index
   */
  paAt(index: number): number {
    return this.pfnAt(index) * PAGE;
  }

  /**
   * Whether some access range or filled area holds `index` (so it is pinned).
   * @param index - page index
   */
  isPinned(index: number): boolean {
    return (
      this.accessItree.iterFirst(index, index) !== undefined ||
      this.domainsItree.iterFirst(index, index) !== undefined
    );
  }

  private chunkFor(index: number): Float64Array {
    const ci = Math.floor(index / CHUNK);
    let c = this.chunks[ci];
    if (c === undefined) {
      c = new Float64Array(Math.min(CHUNK, this.npages - ci * CHUNK));
      this.chunks[ci] = c;
    }
    return c;
  }

  // ---- pinning ----

  /**
   * Pin `[start, last]` from the source mm (`pfn_reader_user_pin` until the range is done), store
   * the PFNs and add to `npinned`. No accounting here (see {@link IoptPages.updatePinned}).
   * @param start - first index
   * @param last - last index
   * @param gupFlags - `FOLL_*` flags; default `FOLL_LONGTERM` plus `FOLL_WRITE` when writable
   * @throws ErrnoError `EFAULT` (source mm gone, unmapped or forbidden user memory), `ENOMEM`
   *   (out of memory while faulting); nothing stays pinned on failure
   */
  pinRange(start: number, last: number, gupFlags = this.gupFlags()): void {
    const mm = this.sourceMm;
    if (!mm.mmgetNotZero()) throw new ErrnoError('EFAULT', 'the mapping process has exited');
    let idx = start;
    try {
      const batch = Math.max(1, Math.floor(tempMemoryLimit / 8));
      while (idx <= last) {
        const n = Math.min(last - idx + 1, batch);
        const va = this.uptrNum < 0 ? -1 : this.uptrNum + idx * PAGE;
        if (va < 0 || va + n * PAGE > Number.MAX_SAFE_INTEGER)
          throw new ErrnoError('EFAULT', 'not a user address');
        const got = pinUserPagesRemote(mm, va, n, gupFlags);
        if (got.length === 0) throw new ErrnoError('EFAULT', 'nothing pinned');
        for (let k = 0; k < got.length; k++) {
          const i = idx + k;
          this.chunkFor(i)[i % CHUNK] = Math.floor((got[k] as number) / PAGE);
        }
        this.npinned += got.length;
        idx += got.length;
      }
    } catch (e) {
      if (idx > start) this.unpinRange(start, idx - 1, false);
      throw e;
    } finally {
      mm.mmput();
    }
  }

  /**
   * Unpin the stored PFNs of `[start, last]` and subtract from `npinned` (`batch_unpin`).
   * @param start - first index
   * @param last - last index
   * @param dirty - mark the pages dirty first; default: when the pages are writable
   */
  unpinRange(start: number, last: number, dirty = this.writable): void {
    const mem = this.memory;
    for (let i = start; i <= last; ) {
      const c = this.chunkFor(i);
      const base = Math.floor(i / CHUNK) * CHUNK;
      const end = Math.min(last, base + c.length - 1);
      for (let j = i; j <= end; j++) {
        const pa = (c[j - base] as number) * PAGE;
        if (dirty) mem.setDirty(pa, true);
        mem.unpinPage(pa);
      }
      i = end + 1;
    }
    this.npinned -= last - start + 1;
  }

  /** `FOLL_LONGTERM`, plus `FOLL_WRITE` for writable pages (`pfn_reader_user_init`). */
  gupFlags(): number {
    return this.writable ? FOLL_LONGTERM | FOLL_WRITE : FOLL_LONGTERM;
  }

  /**
   * The indexes of `[start, last]` that neither tree holds (the holes of `access ∪ domains`).
   * @param start - first index
   * @param last - last index
   */
  holes(start: number, last: number): IoptIndexRange[] {
    const out: IoptIndexRange[] = [];
    const it = new DoubleSpanIter<number>(this.accessItree, this.domainsItree);
    for (it.first(start, last); !it.done; it.next()) {
      if (it.isUsed === 0) out.push({ start: it.start, last: it.last });
    }
    return out;
  }

  /**
   * Pin every index of `[start, last]` that nobody holds yet (the pinning part of `pfn_reader`).
   * The caller then inserts its range into one of the trees, or undoes with
   * {@link IoptPages.unpinRanges}.
   * @param start - first index
   * @param last - last index
   * @returns the ranges this call pinned
   * @throws ErrnoError as {@link IoptPages.pinRange}; nothing stays pinned on failure
   */
  fillHoles(start: number, last: number): IoptIndexRange[] {
    const holes = this.holes(start, last);
    let done = 0;
    try {
      for (; done < holes.length; done++) {
        const h = holes[done] as IoptIndexRange;
        this.pinRange(h.start, h.last);
      }
    } catch (e) {
      this.unpinRanges(holes.slice(0, done), false);
      throw e;
    }
    return holes;
  }

  /**
   * Unpin ranges returned by {@link IoptPages.fillHoles} (an error unwind).
   * @param ranges - the ranges
   * @param dirty - mark dirty first; default false (nothing was written through them)
   */
  unpinRanges(ranges: readonly IoptIndexRange[], dirty = false): void {
    for (const r of ranges) this.unpinRange(r.start, r.last, dirty);
  }

  /**
   * After a range left a tree: unpin the indexes of `[start, last]` that nobody holds any more, then
   * uncharge them (`iopt_pages_unfill_xarray` / the unpin half of `__iopt_area_unfill_domain`).
   * @param start - first index
   * @param last - last index
   */
  unfillHoles(start: number, last: number): void {
    for (const h of this.holes(start, last)) this.unpinRange(h.start, h.last);
    this.updatePinned();
  }

  // ---- accounting ----

  /**
   * Charge or uncharge the change of `npinned` since the last update (`pfn_reader_user_update_pinned`
   * / `update_unpinned`): `locked_vm` per {@link IoptPages.accountMode}, and `pinned_vm` of the source
   * mm in every mode. Uncharging never fails.
   * @throws ErrnoError `ENOMEM` when a charge would exceed `RLIMIT_MEMLOCK` (nothing changes)
   */
  updatePinned(): void {
    if (this.npinned === this.lastNpinned) return;
    const inc = this.npinned > this.lastNpinned;
    const n = inc ? this.npinned - this.lastNpinned : this.lastNpinned - this.npinned;
    const task = this.sourceTask;
    const mm = this.sourceMm;
    if (inc) {
      if (this.accountMode === IOPT_PAGES_ACCOUNT_USER) incUserLockedVm(task, n);
      else if (this.accountMode === IOPT_PAGES_ACCOUNT_MM) __accountLockedVm(mm, n, true, task, false);
      addPinnedVm(mm, n);
    } else {
      // Linux warns and carries on when a counter would underflow; so does this.
      if (this.accountMode === IOPT_PAGES_ACCOUNT_USER) {
        if (task.machine.userLockedVm(this.sourceUid) >= n) decUserLockedVm(task, n);
      } else if (this.accountMode === IOPT_PAGES_ACCOUNT_MM) {
        mm.lockedVm = Math.max(0, mm.lockedVm - n);
      }
      mm.pinnedVm = Math.max(0, mm.pinnedVm - n);
    }
    this.lastNpinned = this.npinned;
  }

  // ---- in-kernel accesses ----

  private exactAccess(start: number, last: number): IoptPagesAccess | undefined {
    const t = this.accessItree;
    for (let n = t.iterFirst(start, last); n !== undefined; n = t.iterNext(n, start, last)) {
      if (n.start === start && n.last === last) return n.value;
    }
    return undefined;
  }

  /**
   * `iopt_area_add_access(area, start, last, out_pages, flags)`: record an in-kernel access to
   * `[start, last]`, pinning what nobody holds yet, and append each page's physical address to `out`.
   * The same exact range again only adds a user.
   * @param area - the area the range was reached through (its `numAccesses` grows)
   * @param start - first index
   * @param last - last index
   * @param flags - `IOMMUFD_ACCESS_RW_*`
   * @param out - receives one PA per page
   * @throws ErrnoError `EPERM` (write to read-only pages), pin errors (`EFAULT`, `ENOMEM`),
   *   `ENOMEM` (RLIMIT_MEMLOCK, or the fail_nth point `iommufd.access_alloc`); nothing changes on
   *   failure
   */
  addAccess(area: IoptArea, start: number, last: number, flags: number, out: number[]): void {
    if (flags & IOMMUFD_ACCESS_RW_WRITE && !this.writable)
      throw new ErrnoError('EPERM', 'write access to read-only pages');
    const existing = this.exactAccess(start, last);
    if (existing !== undefined) {
      area.numAccesses++;
      existing.users++;
      this.pushPas(start, last, out);
      return;
    }
    if (shouldFail('iommufd.access_alloc'))
      throw new ErrnoError('ENOMEM', 'injected: iopt_pages_access allocation');
    const pinned = this.fillHoles(start, last);
    try {
      this.updatePinned();
    } catch (e) {
      this.unpinRanges(pinned);
      throw e;
    }
    const access = new IoptPagesAccess();
    access.node = this.accessItree.insert(start, last, access);
    area.numAccesses++;
    this.pushPas(start, last, out);
  }

  /**
   * `iopt_area_remove_access(area, start, last)`: drop one user of the exact range; the last user
   * removes it and unpins what nobody else holds.
   * @param area - the area the range was reached through
   * @param start - first index
   * @param last - last index
   * @returns false when no access has exactly this range (a driver bug; Linux warns)
   */
  removeAccess(area: IoptArea, start: number, last: number): boolean {
    const access = this.exactAccess(start, last);
    if (access === undefined || access.node === null) return false;
    if (area.numAccesses > 0) area.numAccesses--;
    access.users--;
    if (access.users > 0) return true;
    this.accessItree.remove(access.node);
    access.node = null;
    this.unfillHoles(start, last);
    return true;
  }

  private pushPas(start: number, last: number, out: number[]): void {
    for (let i = start; i <= last; i++) out.push(this.pfnAt(i) * PAGE);
  }

  // ---- CPU access ----

  /**
   * `iopt_pages_rw_access(pages, start_byte, data, length, flags)`: copy between `data` and the
   * pages from byte `startByte` on, without keeping pins.
   *
   * @remarks
   * Paths as in Linux: when the caller runs in the source mm (`current` is the source mm) or is a
   * kernel thread (`IOMMUFD_ACCESS_RW_KTHREAD`), through the user page tables (`copy_to_user` /
   * `copy_from_user`); otherwise one page is pinned and copied, or, for several pages, the same
   * pages the IOMMU sees are used (held PFNs, others pinned for the copy). A gone source mm takes
   * the last path, which then works only for held pages (selftest `fork_gone`).
   * @param startByte - byte offset from `uptr` (u64)
   * @param data - the buffer; its length (positive) is the byte count
   * @param flags - `IOMMUFD_ACCESS_RW_*`
   * @param current - the calling task's mm (`current->mm`), or null for none
   * @throws ErrnoError `EPERM` (write to read-only pages), `EFAULT` (copy or pin fault)
   */
  rwAccess(startByte: bigint, data: Uint8Array, flags: number, current: Mm | null): void {
    const length = data.length;
    if (length === 0) return;
    const startIndex = Number(startByte / BigInt(PAGE));
    const lastIndex = Number((startByte + BigInt(length) - 1n) / BigInt(PAGE));
    const offset = Number(startByte % BigInt(PAGE));
    const write = (flags & IOMMUFD_ACCESS_RW_WRITE) !== 0;
    let changeMm = current !== this.sourceMm;
    if (flags & __IOMMUFD_ACCESS_RW_SLOW_PATH) changeMm = true;
    if (write && !this.writable) throw new ErrnoError('EPERM', 'write to read-only pages');
    if (!(flags & IOMMUFD_ACCESS_RW_KTHREAD) && changeMm) {
      if (startIndex === lastIndex) this.rwPage(startIndex, offset, data, write);
      else this.rwSlow(startIndex, lastIndex, offset, data, write);
      return;
    }
    const mm = this.sourceMm;
    if (changeMm && !mm.mmgetNotZero()) {
      this.rwSlow(startIndex, lastIndex, offset, data, write);
      return;
    }
    try {
      const va = this.uptr + startByte;
      const left = write ? copyToUser(mm, va, data) : copyFromUser(mm, data, va);
      if (left !== 0) throw new ErrnoError('EFAULT', 'copy fault');
    } finally {
      if (changeMm) mm.mmput();
    }
  }

  /** `iopt_pages_rw_page`: pin one page of the source mm for the copy (no FOLL_LONGTERM). */
  private rwPage(index: number, offset: number, data: Uint8Array, write: boolean): void {
    const mm = this.sourceMm;
    if (!mm.mmgetNotZero()) {
      this.rwSlow(index, index, offset, data, write);
      return;
    }
    try {
      const va = this.uptrNum < 0 ? -1 : this.uptrNum + index * PAGE;
      if (va < 0) throw new ErrnoError('EFAULT', 'not a user address');
      const got = pinUserPagesRemote(mm, va, 1, write ? FOLL_WRITE : 0);
      const pa = got[0];
      if (pa === undefined) throw new ErrnoError('EINVAL', 'pinned nothing');
      this.copyPage(pa, offset, data, write);
      this.memory.unpinPage(pa);
    } finally {
      mm.mmput();
    }
  }

  /**
   * `iopt_pages_rw_slow`: read the PFNs the way a domain would see them (held ones from the store,
   * the rest pinned for the duration of the copy and unpinned after).
   */
  private rwSlow(start: number, last: number, offset: number, data: Uint8Array, write: boolean): void {
    const it = new DoubleSpanIter<number>(this.accessItree, this.domainsItree);
    let done = 0;
    let off = offset;
    for (it.first(start, last); !it.done; it.next()) {
      const s = it.start;
      const l = it.last;
      const temporary = it.isUsed === 0;
      if (temporary) this.pinRange(s, l);
      try {
        for (let i = s; i <= l && done < data.length; i++) {
          const n = Math.min(data.length - done, PAGE - off);
          this.copyPage(this.pfnAt(i) * PAGE + off, 0, data.subarray(done, done + n), write);
          done += n;
          off = 0;
        }
      } finally {
        if (temporary) this.unpinRange(s, l);
      }
    }
  }

  /** `copy_data_page`: copy `data.length` bytes at `pa + offset`; a write dirties the page. */
  private copyPage(pa: number, offset: number, data: Uint8Array, write: boolean): void {
    const mem = this.memory;
    if (write) {
      mem.writeBytes(pa + offset, data);
      mem.setDirty(pa, true);
    } else {
      data.set(mem.readBytes(pa + offset, data.length));
    }
  }
}
