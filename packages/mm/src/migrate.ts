/**
 * Moving and dropping pages behind a process's back, as compaction/NUMA migration
 * (mm/migrate.c `migrate_pages`, mm/rmap.c `try_to_migrate_one`) and reclaim (mm/vmscan.c,
 * mm/rmap.c `try_to_unmap_one`) do: the PTE is cleared under an MMU-notifier `CLEAR` range, the TLB
 * (and every secondary TLB) is flushed, then the page is copied or dropped.
 *
 * @remarks
 * Error style: throws `ErrnoError`. Only pages mapped by exactly one PTE of a private mapping are
 * handled (no reverse-map walk across address spaces): a COW-shared page or a shared-anonymous page
 * gives `EBUSY`. A pinned page (`pinCount > 0`) or one with extra references gives `EAGAIN`, as
 * `folio_migrate_mapping` fails on an unexpected reference count. The flush is immediate, inside
 * the notifier range (`ptep_clear_flush`); reclaim's batched, deferred flush (`TTU_BATCH_FLUSH`,
 * `try_to_unmap_flush`) is not modelled.
 */

import { ErrnoError } from '@iommu-ts/base';
import { decodePte, encodePte, PMD_DEPTH } from './cpu-pgtable.js';
import { type UserAddr, userVa } from './fault.js';
import type { Mm } from './mm.js';
import {
  MmuNotifyEvent,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
} from './mmu-notifier.js';
import type { Vma } from './vma.js';

const SZ_2M = 0x20_0000;

interface Located {
  vma: Vma;
  base: number;
  size: number;
  words: Uint32Array;
  wi: number;
  pa: number;
  huge: boolean;
}

function locate(mm: Mm, va: UserAddr): Located {
  const a = userVa(va);
  const vma = a < 0 || mm.dead ? undefined : mm.findVma(a);
  if (vma === undefined) throw new ErrnoError('EFAULT', 'no VMA');
  const pt = mm.pgtable;
  pt.lookup(a);
  if (pt.depth < PMD_DEPTH) throw new ErrnoError('ENOENT', 'page not present');
  const huge = pt.depth === PMD_DEPTH;
  const words = pt.words;
  const wi = pt.wi;
  const st = decodePte(mm.arch, words[wi] as number, words[wi + 1] as number, huge);
  if (!st.present) throw new ErrnoError('ENOENT', 'page not present');
  const size = huge ? SZ_2M : 4096;
  if (vma.shared !== null || mm.machine.pageMapcount(st.pa) !== 1)
    throw new ErrnoError('EBUSY', 'page is mapped elsewhere (no rmap walk)');
  const mem = mm.machine.memory;
  if (mem.pinCount(st.pa) > 0) throw new ErrnoError('EAGAIN', 'page is pinned');
  if (mem.pageRefcount(st.pa) !== 1) throw new ErrnoError('EAGAIN', 'page has extra references');
  return { vma, base: Math.floor(a / size) * size, size, words, wi, pa: st.pa, huge };
}

/**
 * Migrate the page mapping `va` to a newly allocated page (`migrate_pages` of one folio): notifier
 * `CLEAR` over the page, PTE cleared, TLB + secondary flush, contents and dirty flag copied, the new
 * PTE written with the old one's permissions and access/dirty state, old page freed, notifier end.
 * @param mm - the address space
 * @param va - any address in the page (number or bigint)
 * @returns the new page's (or 2 MiB block's) physical address
 * @throws ErrnoError `EFAULT` (no VMA), `ENOENT` (not present), `EBUSY` (shared), `EAGAIN` (pinned or
 *   referenced), `ENOMEM`
 */
export function migratePage(mm: Mm, va: UserAddr): number {
  const l = locate(mm, va);
  const mem = mm.machine.memory;
  const order = l.huge ? 9 : 0;
  const newPa = mem.allocPages(order, { zero: false });
  const range = mmuNotifierInvalidateRangeStart(mm, MmuNotifyEvent.CLEAR, l.base, l.base + l.size);
  const lo0 = l.words[l.wi] as number;
  const hi0 = l.words[l.wi + 1] as number;
  const st = decodePte(mm.arch, lo0, hi0, l.huge);
  l.words[l.wi] = 0;
  l.words[l.wi + 1] = 0;
  mm.flushTlbPage(l.base, l.size);
  for (let k = 0; k < 1 << order; k++) mem.copyPage(newPa + k * 4096, st.pa + k * 4096);
  if (mem.isDirty(st.pa) || st.dirty) mem.setDirty(newPa, true);
  const [lo, hi] = encodePte(mm.arch, newPa, l.vma.flags, st.write, st.dirty, st.young, l.huge);
  l.words[l.wi] = lo;
  l.words[l.wi + 1] = hi;
  mm.machine.moveMapcount(st.pa, newPa);
  mem.putPage(st.pa);
  mmuNotifierInvalidateRangeEnd(range);
  return newPa;
}

/**
 * Reclaim the page mapping `va` (`shrink_folio_list` → `try_to_unmap_one` for one page): only a clean
 * private anonymous page can be dropped (there is no swap). Notifier `CLEAR` over the page, PTE
 * cleared, TLB + secondary flush; if the cleared PTE turns out dirty (a device or CPU wrote it) the PTE
 * is restored and `EBUSY` thrown; else the page is freed and the next access reads zeroes.
 * @param mm - the address space
 * @param va - any address in the page (number or bigint)
 * @throws ErrnoError `EFAULT` (no VMA), `ENOENT` (not present), `EBUSY` (shared, dirty, no swap),
 *   `EAGAIN` (pinned or referenced)
 */
export function reclaimPage(mm: Mm, va: UserAddr): void {
  const l = locate(mm, va);
  const mem = mm.machine.memory;
  const pre = decodePte(mm.arch, l.words[l.wi] as number, l.words[l.wi + 1] as number, l.huge);
  if (pre.dirty || mem.isDirty(l.pa)) throw new ErrnoError('EBUSY', 'dirty anonymous page and no swap');
  const range = mmuNotifierInvalidateRangeStart(mm, MmuNotifyEvent.CLEAR, l.base, l.base + l.size);
  const lo0 = l.words[l.wi] as number;
  const hi0 = l.words[l.wi + 1] as number;
  l.words[l.wi] = 0;
  l.words[l.wi + 1] = 0;
  mm.flushTlbPage(l.base, l.size);
  if (decodePte(mm.arch, lo0, hi0, l.huge).dirty) {
    l.words[l.wi] = lo0;
    l.words[l.wi + 1] = hi0;
    mmuNotifierInvalidateRangeEnd(range);
    throw new ErrnoError('EBUSY', 'page was dirtied');
  }
  mm.machine.unmapPage(l.pa);
  mmuNotifierInvalidateRangeEnd(range);
}
