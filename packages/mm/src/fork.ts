/**
 * Copying an address space at fork (kernel/fork.c `dup_mmap`, mm/memory.c `copy_page_range`,
 * `copy_present_pte`, `copy_present_page`).
 */

import { decodePte, encodePte, PMD_DEPTH, PTE_DEPTH } from './cpu-pgtable.js';
import { Mm } from './mm.js';
import { VM_WRITE } from './mman.js';
import {
  MmuNotifyEvent,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
} from './mmu-notifier.js';
import type { Process } from './process.js';
import { newAnonVma, Vma } from './vma.js';

/**
 * Duplicate `old` for a child (`dup_mm`).
 *
 * @remarks
 * Shared VMAs are copied without PTEs (the child faults them in from the shared object). Private
 * VMAs that have anonymous pages are copied PTE by PTE under an `MMU_NOTIFY_PROTECTION_PAGE` range
 * over the whole VMA on the parent (hugetlb VMAs: `MMU_NOTIFY_CLEAR`, as `copy_hugetlb_page_range`):
 * each page gains a map count and a reference, and both parent and child PTEs are write-protected
 * (the child's is also made old); a page pinned for DMA (`pinCount > 0`) is instead copied for the
 * child at once (`page_needs_cow_for_dma`), leaving the parent's pinned page writable. After all
 * VMAs the parent's TLB is flushed once (`flush_tlb_mm`), unconditionally as `dup_mmap` does, also
 * when the copy fails. `pinned_vm` and `locked_vm` start at 0 in the child.
 * @param old - the parent's mm
 * @param owner - the child task (or null; the child's constructor adopts the mm)
 * @returns the child's mm
 * @throws `ErrnoError` `ENOMEM` when memory runs out (the partial child mm is torn down)
 */
export function dupMm(old: Mm, owner: Process | null): Mm {
  const mm = new Mm(old.machine, old.arch, owner);
  const machine = old.machine;
  const mem = machine.memory;
  try {
    for (const v of old.vmas) {
      const nv = new Vma(
        v.start,
        v.end,
        v.flags,
        v.pgoff,
        v.shared,
        v.anonVma === null ? null : newAnonVma(),
      );
      if (v.shared !== null) v.shared.vmaRefs++;
      mm.vmas.push(nv);
      if (v.shared !== null || v.anonVma === null) continue;
      // copy_page_range: PROTECTION_PAGE over the VMA; hugetlb (copy_hugetlb_page_range) uses CLEAR.
      const event = v.huge ? MmuNotifyEvent.CLEAR : MmuNotifyEvent.PROTECTION_PAGE;
      const range = mmuNotifierInvalidateRangeStart(old, event, v.start, v.end);
      try {
        old.pgtable.forEachLeaf(v.start, v.end, (va, huge, words, wi) => {
          const st = decodePte(old.arch, words[wi] as number, words[wi + 1] as number, huge);
          if (!st.present) return;
          let child: [number, number];
          if (mem.pinCount(st.pa) > 0) {
            const order = huge ? 9 : 0;
            const npa = mem.allocPages(order, { zero: false });
            for (let k = 0; k < 1 << order; k++) mem.copyPage(npa + k * 4096, st.pa + k * 4096);
            machine.mapPage(npa, false);
            child = encodePte(old.arch, npa, v.flags, (v.flags & VM_WRITE) !== 0, true, true, huge);
          } else {
            machine.mapPage(st.pa, true);
            if (st.write) {
              const [lo, hi] = encodePte(old.arch, st.pa, v.flags, false, st.dirty, st.young, huge);
              words[wi] = lo;
              words[wi + 1] = hi;
            }
            child = encodePte(old.arch, st.pa, v.flags, false, st.dirty, false, huge);
          }
          const pt = mm.pgtable;
          pt.ensure(va, huge ? PMD_DEPTH : PTE_DEPTH);
          pt.words[pt.wi] = child[0];
          pt.words[pt.wi + 1] = child[1];
        });
      } finally {
        mmuNotifierInvalidateRangeEnd(range);
      }
    }
  } catch (err) {
    old.flushTlbMm();
    mm.mmput();
    throw err;
  }
  // dup_mmap: one flush_tlb_mm of the parent after every VMA, whether or not anything was
  // write-protected (and on failure too, before the partial child is torn down).
  old.flushTlbMm();
  return mm;
}
