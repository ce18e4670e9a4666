/**
 * `get_user_pages_fast(uptr, 1, 0, &page)` + `put_page` as the selftest checks use them: the
 * physical page currently behind a user address of the calling process, faulting it in (with a
 * short pin that is dropped at once) only when nothing is mapped there yet.
 */

import { ErrnoError } from '@iommu-ts/base';
import { decodePte, PAGE_SIZE, PMD_DEPTH, type Process } from '@iommu-ts/mm';

const PAGE = BigInt(PAGE_SIZE);
const PMD_SIZE = 2 * 1024 * 1024;

/**
 * The physical address of the page backing user address `va` (page aligned), as
 * `get_user_pages_fast` would return it.
 * @param proc - the calling process
 * @param va - any user address in the page
 * @returns the page's physical address
 * @throws ErrnoError `EFAULT` (no mapping, or the fault fails), `ENOMEM`
 */
export function userPagePhys(proc: Process, va: bigint): number {
  if (va < 0n || va >= 1n << 64n) throw new ErrnoError('EFAULT', 'bad user address');
  const page = va - (va % PAGE);
  if (page <= BigInt(Number.MAX_SAFE_INTEGER)) {
    const mm = proc.mm;
    const pt = mm.pgtable;
    const a = Number(page);
    pt.lookup(a);
    if (pt.depth >= PMD_DEPTH) {
      const huge = pt.depth === PMD_DEPTH;
      const st = decodePte(mm.arch, pt.words[pt.wi] as number, pt.words[pt.wi + 1] as number, huge);
      if (st.present) return st.pa + (huge ? a % PMD_SIZE : 0);
    }
  }
  // Not present: the slow path faults it in (a pin taken and dropped again, as get + put_page).
  const [pa] = proc.pinUserPages(page, 1, 0);
  if (pa === undefined) throw new ErrnoError('EFAULT', 'no page');
  proc.unpinUserPages([pa], false);
  return pa - (pa % PAGE_SIZE);
}
