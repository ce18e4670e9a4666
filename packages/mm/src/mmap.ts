/**
 * `mmap`, `munmap`, `mprotect` and `madvise(MADV_DONTNEED)` of anonymous memory (mm/mmap.c,
 * mm/vma.c, mm/mprotect.c, mm/madvise.c, mm/hugetlb.c for `MAP_HUGETLB`).
 *
 * @remarks
 * Error style: these are system calls; they throw `ErrnoError` with Linux's errno. Huge pages are
 * hugetlb-style: `MAP_HUGETLB` (optionally with `MAP_HUGE_2MB`) maps 2 MiB pages; the length is
 * rounded up to 2 MiB, `MAP_FIXED` addresses and `munmap`/`mprotect` ranges must be 2 MiB-aligned
 * inside such VMAs (`EINVAL`); the pool is the machine's free memory (no reservation). No
 * transparent huge pages. Only anonymous memory exists (a mapping without `MAP_ANONYMOUS` needs a
 * file: `EBADF`).
 */

import { ErrnoError } from '@iommu-ts/base';
import { decodePte, encodePte } from './cpu-pgtable.js';
import { handleMmFault, type UserAddr, userVa } from './fault.js';
import type { Mm } from './mm.js';
import {
  FAULT_FLAG_WRITE,
  MADV_DONTNEED,
  MADV_NORMAL,
  MADV_RANDOM,
  MADV_SEQUENTIAL,
  MADV_WILLNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_HUGE_2MB,
  MAP_HUGE_MASK,
  MAP_HUGE_SHIFT,
  MAP_HUGETLB,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  MAP_TYPE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  VM_ACCOUNT,
  VM_HUGETLB,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_NORESERVE,
  VM_SHARED,
  VM_WRITE,
} from './mman.js';
import {
  MmuNotifyEvent,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
} from './mmu-notifier.js';
import { protToVmFlags, SharedAnonObject, Vma } from './vma.js';

const SZ_2M = 0x20_0000;
/** Lowest address mmap hands out or accepts (`mmap_min_addr`, 64 KiB). */
export const MMAP_MIN_ADDR = 0x10000;
/** Gap left below `TASK_SIZE` for the stack when searching top-down (`mmap_base`): 1 GiB. */
const STACK_GAP = 2 ** 30;

const KNOWN_MAP_FLAGS =
  MAP_TYPE |
  MAP_FIXED |
  MAP_ANONYMOUS |
  MAP_NORESERVE |
  MAP_POPULATE |
  MAP_HUGETLB |
  MAP_FIXED_NOREPLACE |
  (MAP_HUGE_MASK << MAP_HUGE_SHIFT);

function alignUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

/** Find a free range of `len` bytes aligned to `align`, top-down below `mmap_base` (`unmapped_area_topdown`). */
function getUnmappedArea(mm: Mm, len: number, align: number): number {
  const top = mm.taskSize - STACK_GAP;
  let hi = top;
  for (let i = mm.vmas.length - 1; i >= -1; i--) {
    const v = mm.vmas[i];
    const lo = v === undefined ? MMAP_MIN_ADDR : v.end;
    if (lo >= hi) {
      if (v !== undefined) hi = Math.min(hi, v.start);
      continue;
    }
    const cand = Math.floor((hi - len) / align) * align;
    if (cand >= lo && cand >= MMAP_MIN_ADDR) return cand;
    if (v !== undefined) hi = Math.min(hi, v.start);
  }
  throw new ErrnoError('ENOMEM', 'no free range of that size');
}

function rangeFree(mm: Mm, start: number, end: number): boolean {
  const v = mm.vmas[mm.firstVmaIndexAfter(start)];
  return v === undefined || v.start >= end;
}

/**
 * Unmap `[start, end)` (already aligned and validated) as `do_vmi_align_munmap` → `vms_clear_ptes`
 * does: split at the edges and detach the VMAs; notifier `UNMAP` start over the whole request; per
 * detached VMA, clear its PTEs and, when any was set, flush the cleared span with a leaf TLB
 * invalidation and the secondary TLBs (`tlb_end_vma`); notifier end; free the page tables no VMA
 * needs any more and flush their span non-leaf (`free_pgtables`, `tlb_finish_mmu`); then drop the
 * page references and the VMAs' objects.
 */
function unmapRange(mm: Mm, start: number, end: number): void {
  const first = mm.vmas[mm.firstVmaIndexAfter(start)];
  if (first === undefined || first.start >= end) return;
  // Hugetlb VMAs only split at 2 MiB boundaries.
  for (const a of [start, end]) {
    const v = mm.findVma(a);
    if (v !== undefined && v.start !== a && a % v.pageSize !== 0)
      throw new ErrnoError('EINVAL', 'unaligned hugetlb unmap');
  }
  mm.splitAt(start);
  mm.splitAt(end);
  const i0 = mm.firstVmaIndexAfter(start);
  let i1 = i0;
  while (i1 < mm.vmas.length && (mm.vmas[i1] as Vma).start < end) i1++;
  const removed = mm.vmas.splice(i0, i1 - i0);
  const range = mmuNotifierInvalidateRangeStart(mm, MmuNotifyEvent.UNMAP, start, end);
  const pages: number[] = [];
  for (const v of removed) {
    const z = mm.zapRange(v.start, v.end);
    if (z === null) continue;
    mm.flushTlbRange(z.start, z.end, z.stride, true);
    for (const pa of z.pages) pages.push(pa);
  }
  mmuNotifierInvalidateRangeEnd(range);
  mm.freePgtables((removed[0] as Vma).start, (removed[removed.length - 1] as Vma).end);
  mm.releasePages(pages);
  for (const v of removed) mm.releaseVmaObject(v);
}

/**
 * Map anonymous memory (`mmap`).
 * @param mm - the address space
 * @param length - bytes, \> 0 (rounded up to the page size)
 * @param prot - `PROT_*`
 * @param flags - `MAP_SHARED` or `MAP_PRIVATE`, plus `MAP_ANONYMOUS` (required), `MAP_FIXED`,
 *   `MAP_FIXED_NOREPLACE`, `MAP_POPULATE`, `MAP_HUGETLB` [| `MAP_HUGE_2MB`], `MAP_NORESERVE`
 * @param addr - hint, or the exact address with `MAP_FIXED`/`MAP_FIXED_NOREPLACE`; default 0
 * @returns the start address of the mapping
 * @throws ErrnoError `EINVAL` (length 0, unknown flags or prot bits, not exactly one of SHARED/PRIVATE,
 *   unaligned fixed address, unsupported huge size), `EBADF` (no `MAP_ANONYMOUS`), `ENOMEM` (no room,
 *   length overflow, fixed range outside the address space), `EEXIST` (`MAP_FIXED_NOREPLACE` over a mapping)
 */
export function doMmap(mm: Mm, length: number, prot: number, flags: number, addr: UserAddr = 0): number {
  let a = userVa(addr);
  if (!Number.isInteger(length) || length <= 0) throw new ErrnoError('EINVAL', 'length must be > 0');
  if ((prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0)
    throw new ErrnoError('EINVAL', 'unknown prot bits');
  if ((flags & ~KNOWN_MAP_FLAGS) !== 0) throw new ErrnoError('EINVAL', 'unknown mmap flags');
  const type = flags & MAP_TYPE;
  if (type !== MAP_SHARED && type !== MAP_PRIVATE && type !== MAP_SHARED_VALIDATE)
    throw new ErrnoError('EINVAL', 'exactly one of MAP_SHARED and MAP_PRIVATE');
  if ((flags & MAP_ANONYMOUS) === 0) throw new ErrnoError('EBADF', 'file mappings need a file descriptor');
  const huge = (flags & MAP_HUGETLB) !== 0;
  if (huge) {
    const sz = (flags >>> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
    if (sz !== 0 && sz << MAP_HUGE_SHIFT !== MAP_HUGE_2MB)
      throw new ErrnoError('EINVAL', 'only 2 MiB huge pages');
  } else if ((flags & (MAP_HUGE_MASK << MAP_HUGE_SHIFT)) !== 0) {
    throw new ErrnoError('EINVAL', 'huge page size without MAP_HUGETLB');
  }
  const pageSize = huge ? SZ_2M : 4096;
  const len = alignUp(length, pageSize);
  if (len > mm.taskSize) throw new ErrnoError('ENOMEM', 'length exceeds the address space');
  const fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) !== 0;
  if (fixed) {
    if (a < 0 || a % pageSize !== 0) throw new ErrnoError('EINVAL', 'fixed address not aligned');
    if (a + len > mm.taskSize || a < MMAP_MIN_ADDR)
      throw new ErrnoError('ENOMEM', 'fixed range outside the address space');
    if ((flags & MAP_FIXED) === 0 && !rangeFree(mm, a, a + len))
      throw new ErrnoError('EEXIST', 'range in use');
    unmapRange(mm, a, a + len);
  } else {
    if (a > 0) a = alignUp(a, pageSize);
    if (!(a >= MMAP_MIN_ADDR && a + len <= mm.taskSize - STACK_GAP && rangeFree(mm, a, a + len)))
      a = getUnmappedArea(mm, len, pageSize);
  }
  let vmFlags = protToVmFlags(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;
  if (type !== MAP_PRIVATE) vmFlags |= VM_SHARED | VM_MAYSHARE;
  if (huge) vmFlags |= VM_HUGETLB;
  if (flags & MAP_NORESERVE) vmFlags |= VM_NORESERVE;
  else if (type === MAP_PRIVATE && (vmFlags & VM_WRITE) !== 0 && !huge) vmFlags |= VM_ACCOUNT;
  const shared = type !== MAP_PRIVATE ? new SharedAnonObject(huge) : null;
  if (shared !== null) shared.vmaRefs = 1;
  const vma = new Vma(a, a + len, vmFlags, shared === null ? a / 4096 : 0, shared, null);
  mm.vmas.splice(mm.firstVmaIndexAfter(a), 0, vma);
  mm.mergeAround(a, a + len);
  if (flags & MAP_POPULATE) {
    const wr = (vmFlags & (VM_WRITE | VM_SHARED)) === VM_WRITE ? FAULT_FLAG_WRITE : 0;
    for (let va = a; va < a + len; va += pageSize) {
      if (handleMmFault(mm, va, wr) !== 0) break;
    }
  }
  return a;
}

function checkRange(mm: Mm, addr: UserAddr, length: number): [number, number] {
  const a = userVa(addr);
  if (a < 0 || a % 4096 !== 0) throw new ErrnoError('EINVAL', 'address not page-aligned');
  if (!Number.isInteger(length) || length < 0) throw new ErrnoError('EINVAL', 'bad length');
  const end = alignUp(a + length, 4096);
  if (end > mm.taskSize || a > mm.taskSize) throw new ErrnoError('EINVAL', 'range beyond TASK_SIZE');
  return [a, end];
}

/**
 * Unmap `[addr, addr + length)` (`munmap`), splitting VMAs at the edges; an unmapped range is no error.
 * @param mm - the address space
 * @param addr - page-aligned start
 * @param length - bytes, \> 0 (rounded up to pages)
 * @throws ErrnoError `EINVAL` (unaligned address, length 0, range beyond `TASK_SIZE`, an edge inside a
 *   hugetlb VMA not on a 2 MiB boundary)
 */
export function doMunmap(mm: Mm, addr: UserAddr, length: number): void {
  if (length === 0) throw new ErrnoError('EINVAL', 'length 0');
  const [a, end] = checkRange(mm, addr, length);
  unmapRange(mm, a, end);
}

/**
 * Change the protection of `[addr, addr + length)` (`mprotect`): splits and merges VMAs and rewrites
 * present PTEs (per changed VMA part: notifier `PROTECTION_VMA` start/end per populated 512 GiB
 * region, then a leaf TLB flush of the changed entries when one changed; hugetlb: start, change,
 * flush, end). A private page stays writable only if exclusive; a shared
 * one only if dirty (so the next write is seen), as `can_change_pte_writable`.
 * @param mm - the address space
 * @param addr - page-aligned start
 * @param length - bytes (rounded up; 0 does nothing)
 * @param prot - new `PROT_*`
 * @throws ErrnoError `EINVAL` (unaligned, unknown prot bits, hugetlb edge not 2 MiB-aligned),
 *   `ENOMEM` (part of the range unmapped; VMAs before the hole are changed, as in Linux)
 */
export function doMprotect(mm: Mm, addr: UserAddr, length: number, prot: number): void {
  const [a, end] = checkRange(mm, addr, length);
  if ((prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0)
    throw new ErrnoError('EINVAL', 'unknown prot bits');
  if (end === a) return;
  const first = mm.findVma(a);
  if (first === undefined) throw new ErrnoError('ENOMEM', 'start not mapped');
  for (const x of [a, end]) {
    const v = mm.findVma(x);
    if (v !== undefined && v.start !== x && x % v.pageSize !== 0)
      throw new ErrnoError('EINVAL', 'unaligned hugetlb mprotect');
  }
  const newAccess = protToVmFlags(prot);
  let pos = a;
  let hole = false;
  while (pos < end) {
    const v = mm.findVma(pos);
    if (v === undefined) {
      hole = true;
      break;
    }
    mm.splitAt(pos);
    mm.splitAt(Math.min(end, (mm.findVma(pos) as Vma).end));
    const part = mm.findVma(pos) as Vma;
    let newFlags = (part.flags & ~0x7) | newAccess;
    // mprotect_fixup: a private mapping becoming writable is charged (VM_ACCOUNT) and stays so.
    if (
      (newFlags & VM_WRITE) !== 0 &&
      (part.flags & (VM_ACCOUNT | VM_WRITE | VM_HUGETLB | VM_SHARED | VM_NORESERVE)) === 0
    )
      newFlags |= VM_ACCOUNT;
    changeProtection(mm, part, newFlags);
    pos = part.end;
  }
  mm.mergeAround(a, pos);
  if (hole) throw new ErrnoError('ENOMEM', 'range contains unmapped addresses');
}

const SZ_1G = 2 ** 30;
const SZ_512G = 2 ** 39;

/**
 * Rewrite the present PTEs of `vma` for `newFlags` (`change_protection` under the mprotect mmu_gather).
 * Non-hugetlb: per 512 GiB top-level entry that is set, notifier `PROTECTION_VMA` from the first set
 * PUD entry to the end of that part of the VMA (`change_pud_range`), PTEs rewritten, end; after the
 * whole VMA, when an entry changed, one leaf flush of the changed entries' span with the secondary
 * TLBs (`tlb_end_vma`). Hugetlb (`hugetlb_change_protection`): start over the VMA, entries rewritten,
 * a non-leaf 2 MiB-stride flush of the whole VMA, end.
 */
function changeProtection(mm: Mm, vma: Vma, newFlags: number): void {
  if (newFlags === vma.flags) return;
  vma.flags = newFlags;
  const huge = vma.huge;
  const machine = mm.machine;
  const pt = mm.pgtable;
  let lo = Number.POSITIVE_INFINITY;
  let hi = 0;
  const rewrite = (s: number, e: number): void => {
    pt.forEachLeaf(s, e, (va, isHuge, words, wi) => {
      const lo0 = words[wi] as number;
      const hi0 = words[wi + 1] as number;
      const st = decodePte(mm.arch, lo0, hi0, isHuge || huge);
      if (!st.present) return;
      const writable =
        (newFlags & VM_WRITE) !== 0 && (vma.shared !== null ? st.dirty : machine.pageMapcount(st.pa) === 1);
      const [l, h] = encodePte(mm.arch, st.pa, newFlags, writable, st.dirty, st.young, isHuge);
      if (l !== lo0 || h !== hi0) {
        words[wi] = l;
        words[wi + 1] = h;
        const size = isHuge ? SZ_2M : 4096;
        if (va < lo) lo = va;
        if (va + size > hi) hi = va + size;
      }
    });
  };
  if (huge) {
    const range = mmuNotifierInvalidateRangeStart(mm, MmuNotifyEvent.PROTECTION_VMA, vma.start, vma.end);
    rewrite(vma.start, vma.end);
    mm.flushTlbRange(vma.start, vma.end, SZ_2M, false);
    mmuNotifierInvalidateRangeEnd(range);
    return;
  }
  for (let s = vma.start; s < vma.end; ) {
    const e = Math.min(vma.end, (Math.floor(s / SZ_512G) + 1) * SZ_512G);
    if (pt.entryPresent(s, 0)) {
      let first = -1;
      for (let a = s; a < e; a = (Math.floor(a / SZ_1G) + 1) * SZ_1G) {
        if (pt.entryPresent(a, 1)) {
          first = a;
          break;
        }
      }
      if (first >= 0) {
        const range = mmuNotifierInvalidateRangeStart(mm, MmuNotifyEvent.PROTECTION_VMA, first, e);
        rewrite(first, e);
        mmuNotifierInvalidateRangeEnd(range);
      }
    }
    s = e;
  }
  if (hi !== 0) mm.flushTlbRange(lo, hi, 4096, true);
}

/**
 * Give advice about `[addr, addr + length)` (`madvise`). `MADV_DONTNEED` drops the PTEs (per VMA part:
 * notifier `CLEAR` start, PTEs cleared, leaf TLB flush of the cleared span when one was set, end): private anonymous pages read back as
 * zeroes afterwards, shared ones keep their contents. `MADV_NORMAL/RANDOM/SEQUENTIAL/WILLNEED` are
 * accepted and do nothing.
 * @param mm - the address space
 * @param addr - page-aligned start
 * @param length - bytes (rounded up; 0 does nothing)
 * @param advice - `MADV_*`
 * @throws ErrnoError `EINVAL` (unaligned, unknown advice, hugetlb range not 2 MiB-aligned),
 *   `ENOMEM` (part of the range unmapped; the mapped parts are still processed)
 */
export function doMadvise(mm: Mm, addr: UserAddr, length: number, advice: number): void {
  const [a, end] = checkRange(mm, addr, length);
  if (![MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_DONTNEED].includes(advice))
    throw new ErrnoError('EINVAL', 'unsupported advice');
  if (end === a) return;
  let unmapped = false;
  let pos = a;
  for (let i = mm.firstVmaIndexAfter(a); i < mm.vmas.length && pos < end; i++) {
    const v = mm.vmas[i] as Vma;
    if (v.start >= end) break;
    if (v.start > pos) unmapped = true;
    const s = Math.max(a, v.start);
    const e = Math.min(end, v.end);
    pos = e;
    if (advice !== MADV_DONTNEED) continue;
    if (v.huge && (s % SZ_2M !== 0 || e % SZ_2M !== 0))
      throw new ErrnoError('EINVAL', 'unaligned hugetlb madvise');
    // zap_page_range_single: start, clear, leaf flush of the cleared span at tlb_end_vma, end; the
    // pages go when the gather finishes. Page tables stay (madvise frees none).
    const range = mmuNotifierInvalidateRangeStart(mm, MmuNotifyEvent.CLEAR, s, e);
    const z = mm.zapRange(s, e);
    if (z !== null) mm.flushTlbRange(z.start, z.end, z.stride, true);
    mmuNotifierInvalidateRangeEnd(range);
    if (z !== null) mm.releasePages(z.pages);
  }
  if (pos < end) unmapped = true;
  if (unmapped) throw new ErrnoError('ENOMEM', 'range contains unmapped addresses');
}
