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
 * Unmap `[start, end)` (already aligned and validated): split, notify `UNMAP`, clear PTEs, flush,
 * release pages, remove VMAs (`do_vmi_munmap`).
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
  const removed = mm.vmas.slice(i0, i1);
  const rStart = (removed[0] as Vma).start;
  const rEnd = (removed[removed.length - 1] as Vma).end;
  const range = mmuNotifierInvalidateRangeStart(mm, MmuNotifyEvent.UNMAP, rStart, rEnd);
  const z = mm.zapRange(rStart, rEnd);
  if (z !== null) mm.flushTlbRange(z.start, z.end, z.stride);
  mm.vmas.splice(i0, i1 - i0);
  if (z !== null) mm.releasePages(z.pages);
  for (const v of removed) mm.releaseVmaObject(v);
  mmuNotifierInvalidateRangeEnd(range);
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
 * present PTEs (notifier `PROTECTION_VMA` over each changed VMA part that has present PTEs, TLB
 * flush of that part when a PTE changed). A private page stays writable only if exclusive; a shared
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

function changeProtection(mm: Mm, vma: Vma, newFlags: number): void {
  if (newFlags === vma.flags) return;
  vma.flags = newFlags;
  const huge = vma.huge;
  const machine = mm.machine;
  let range: ReturnType<typeof mmuNotifierInvalidateRangeStart> | null = null;
  let changed = false;
  mm.pgtable.forEachLeaf(vma.start, vma.end, (_va, isHuge, words, wi) => {
    range ??= mmuNotifierInvalidateRangeStart(mm, MmuNotifyEvent.PROTECTION_VMA, vma.start, vma.end);
    const lo0 = words[wi] as number;
    const hi0 = words[wi + 1] as number;
    const st = decodePte(mm.arch, lo0, hi0, isHuge || huge);
    if (!st.present) return;
    const writable =
      (newFlags & VM_WRITE) !== 0 && (vma.shared !== null ? st.dirty : machine.pageMapcount(st.pa) === 1);
    const [lo, hi] = encodePte(mm.arch, st.pa, newFlags, writable, st.dirty, st.young, isHuge);
    if (lo !== lo0 || hi !== hi0) {
      words[wi] = lo;
      words[wi + 1] = hi;
      changed = true;
    }
  });
  if (changed) mm.flushTlbRange(vma.start, vma.end, vma.pageSize);
  if (range !== null) mmuNotifierInvalidateRangeEnd(range);
}

/**
 * Give advice about `[addr, addr + length)` (`madvise`). `MADV_DONTNEED` drops the PTEs (notifier
 * `CLEAR` per VMA part, TLB flush when a PTE was cleared): private anonymous pages read back as
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
    const range = mmuNotifierInvalidateRangeStart(mm, MmuNotifyEvent.CLEAR, s, e);
    const z = mm.zapRange(s, e);
    if (z !== null) {
      mm.flushTlbRange(z.start, z.end, z.stride);
      mm.releasePages(z.pages);
    }
    mmuNotifierInvalidateRangeEnd(range);
  }
  if (pos < end) unmapped = true;
  if (unmapped) throw new ErrnoError('ENOMEM', 'range contains unmapped addresses');
}
