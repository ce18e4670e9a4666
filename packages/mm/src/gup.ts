/**
 * Pinning user pages for DMA (mm/gup.c: `pin_user_pages`, `pin_user_pages_remote`,
 * `unpin_user_pages_dirty_lock`, `check_vma_flags`, `gup_must_unshare`).
 *
 * @remarks
 * Error style: throws `ErrnoError`. Like Linux, a pin stops at the first page that cannot be pinned
 * and returns what it pinned so far; it throws only when not even the first page could be pinned.
 * Pages are returned as the physical addresses of the 4 KiB pages (inside a 2 MiB page for hugetlb
 * VMAs); each holds one pin and one reference on its block (`FOLL_PIN`).
 */

import { ErrnoError, shouldFail } from '@iommu-ts/base';
import { decodePte, PMD_DEPTH } from './cpu-pgtable.js';
import { handleMmFault, type UserAddr, userVa } from './fault.js';
import type { Mm } from './mm.js';
import {
  FAULT_FLAG_REMOTE,
  FAULT_FLAG_UNSHARE,
  FAULT_FLAG_WRITE,
  FOLL_FORCE,
  FOLL_GET,
  FOLL_LONGTERM,
  FOLL_NOFAULT,
  FOLL_WRITE,
  VM_FAULT_OOM,
  VM_MAYREAD,
  VM_READ,
  VM_WRITE,
} from './mman.js';
import type { PhysicalMemory } from './physical-memory.js';
import type { Vma } from './vma.js';

const SZ_2M = 0x20_0000;
const KNOWN = FOLL_WRITE | FOLL_FORCE | FOLL_LONGTERM | FOLL_NOFAULT;

/** `check_vma_flags`: may GUP touch this VMA with these flags? */
function vmaAllows(vma: Vma, gupFlags: number): boolean {
  const force = (gupFlags & FOLL_FORCE) !== 0;
  // FOLL_FORCE writes (ptrace's COW into read-only private mappings) are not modelled.
  if (gupFlags & FOLL_WRITE) return (vma.flags & VM_WRITE) !== 0;
  if (vma.flags & VM_READ) return true;
  return force && (vma.flags & VM_MAYREAD) !== 0;
}

/**
 * Look the page up (`follow_page_pte`): the head PA and the 4 KiB PA of `va`, or null when a fault is
 * needed (absent, not writable for a write, or a shared anonymous page that a pin must unshare).
 */
function followPage(mm: Mm, vma: Vma, va: number, write: boolean): { head: number; page: number } | null {
  const pt = mm.pgtable;
  pt.lookup(va);
  if (pt.depth < PMD_DEPTH) return null;
  const huge = pt.depth === PMD_DEPTH;
  const st = decodePte(mm.arch, pt.words[pt.wi] as number, pt.words[pt.wi + 1] as number, huge);
  if (!st.present || st.protnone) return null;
  if (write && !st.write) return null;
  if (vma.shared === null && mm.machine.pageMapcount(st.pa) > 1) return null; // gup_must_unshare
  const size = huge ? SZ_2M : 4096;
  return { head: st.pa, page: st.pa + ((Math.floor(va / 4096) * 4096) % size) };
}

/**
 * Pin `nrPages` pages of `mm` from the page containing `va` (`pin_user_pages_remote`; from the
 * task's own mm it is `pin_user_pages`), faulting them in as needed (`FAULT_FLAG_REMOTE`, plus
 * `FAULT_FLAG_WRITE` with `FOLL_WRITE`, or `FAULT_FLAG_UNSHARE` to break a COW-shared anonymous page
 * for a read pin). With `FOLL_WRITE` the pages are marked dirty.
 * @param mm - the address space
 * @param va - user address (number or bigint); the page containing it is the first
 * @param nrPages - number of pages, ≥ 0
 * @param gupFlags - `FOLL_WRITE`, `FOLL_LONGTERM`, `FOLL_FORCE` (reads of `PROT_NONE`/write-only
 *   mappings only), `FOLL_NOFAULT`
 * @returns the pinned pages' physical addresses (length ≤ `nrPages`: a short result means the page
 *   after the last one could not be pinned)
 * @throws ErrnoError `EINVAL` (`FOLL_GET` or unknown flags, negative count), `EFAULT` (first page: no
 *   VMA, VMA forbids the access, fault failed, `FOLL_NOFAULT` with the page absent), `ENOMEM` (first
 *   page: out of memory)
 */
export function pinUserPagesRemote(mm: Mm, va: UserAddr, nrPages: number, gupFlags: number): number[] {
  if ((gupFlags & FOLL_GET) !== 0 || (gupFlags & ~KNOWN) !== 0)
    throw new ErrnoError('EINVAL', 'bad gup flags');
  if (!Number.isInteger(nrPages) || nrPages < 0) throw new ErrnoError('EINVAL', 'bad page count');
  const start = userVa(va);
  const out: number[] = [];
  const fail = (code: 'EFAULT' | 'ENOMEM', why: string): number[] => {
    if (out.length === 0) throw new ErrnoError(code, why);
    return out;
  };
  if (start < 0) return nrPages === 0 ? out : fail('EFAULT', 'bad address');
  if (nrPages > 0 && shouldFail('mm.pin_user_pages'))
    throw new ErrnoError('ENOMEM', 'injected: pin_user_pages');
  const write = (gupFlags & FOLL_WRITE) !== 0;
  const mem = mm.machine.memory;
  let addr = Math.floor(start / 4096) * 4096;
  for (let i = 0; i < nrPages; i++, addr += 4096) {
    const vma = mm.dead ? undefined : mm.findVma(addr);
    if (vma === undefined) return fail('EFAULT', 'no VMA');
    if (!vmaAllows(vma, gupFlags)) return fail('EFAULT', 'VMA does not allow the access');
    let p = followPage(mm, vma, addr, write);
    if (p === null) {
      if (gupFlags & FOLL_NOFAULT) return fail('EFAULT', 'page absent and FOLL_NOFAULT');
      const fflags = FAULT_FLAG_REMOTE | (write ? FAULT_FLAG_WRITE : FAULT_FLAG_UNSHARE);
      const r = handleMmFault(mm, addr, fflags);
      if (r & VM_FAULT_OOM) return fail('ENOMEM', 'out of memory');
      if (r !== 0) return fail('EFAULT', 'fault failed');
      p = followPage(mm, vma, addr, write);
      if (p === null) return fail('EFAULT', 'page still not usable after the fault');
    }
    mem.pinPage(p.head);
    if (write) mem.setDirty(p.head, true);
    out.push(p.page);
  }
  return out;
}

/**
 * Unpin pages (`unpin_user_pages_dirty_lock`): optionally mark each dirty, then drop its pin and the
 * reference that came with it (the last reference frees the page).
 * @param memory - the machine's physical memory
 * @param pages - physical addresses returned by {@link pinUserPagesRemote}
 * @param makeDirty - mark the pages dirty first (`set_page_dirty_lock`)
 * @throws ErrnoError `EINVAL` for a page that is not pinned
 */
export function unpinUserPages(memory: PhysicalMemory, pages: readonly number[], makeDirty: boolean): void {
  const mem = memory;
  for (const pa of pages) {
    if (makeDirty) mem.setDirty(pa, true);
    mem.unpinPage(pa);
  }
}
