/**
 * Page faults (mm/memory.c `handle_mm_fault`, `do_anonymous_page`, `do_wp_page`, `wp_page_copy`,
 * `wp_page_reuse`; mm/hugetlb.c `hugetlb_fault` for 2 MiB pages; the VMA access checks of
 * arch/arm64/mm/fault.c and arch/x86/mm/fault.c) and the hardware's access-flag and dirty-state
 * updates (arm64 FEAT_HAFDBS, x86 A/D bits; also what an SMMU with HTTU does).
 */

import { ErrnoError } from '@iommu-ts/base';
import { Arm64Pte, decodePte, encodePte, PMD_DEPTH, PTE_DEPTH, X86Pte } from './cpu-pgtable.js';
import type { Mm } from './mm.js';
import {
  FAULT_FLAG_INSTRUCTION,
  FAULT_FLAG_REMOTE,
  FAULT_FLAG_UNSHARE,
  FAULT_FLAG_WRITE,
  VM_EXEC,
  VM_FAULT_OOM,
  VM_FAULT_SIGSEGV,
  VM_READ,
  VM_WRITE,
} from './mman.js';
import {
  MmuNotifyEvent,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
} from './mmu-notifier.js';
import { newAnonVma, type Vma } from './vma.js';

const SZ_2M = 0x20_0000;

/** A user address at the API: a number (exact, below 2^53) or a bigint. */
export type UserAddr = number | bigint;

/**
 * A user address as a number, or -1 when it cannot be a user address (negative, ≥ 2^53, not an integer).
 * @param va - number or bigint
 */
export function userVa(va: UserAddr): number {
  if (typeof va === 'bigint') return va >= 0n && va < 2n ** 53n ? Number(va) : -1;
  return Number.isInteger(va) && va >= 0 ? va : -1;
}

function allocUserPage(mm: Mm, order: number, zero: boolean): number {
  try {
    return mm.machine.memory.allocPages(order, { zero });
  } catch (err) {
    if (err instanceof ErrnoError && err.code === 'ENOMEM') return -1;
    throw err;
  }
}

/**
 * Whether `vma` permits the access described by fault `flags` (`access_error` / arm64 `vm_flags`
 * check): write needs `VM_WRITE`, an instruction fetch `VM_EXEC`, a read `VM_READ` (x86 user reads:
 * any of read/write/exec, as x86 cannot express exec-only or write-only pages).
 * @param mm - the address space
 * @param vma - the VMA
 * @param flags - `FAULT_FLAG_*`
 */
export function vmaAccessPermitted(mm: Mm, vma: Vma, flags: number): boolean {
  if (flags & FAULT_FLAG_WRITE) return (vma.flags & VM_WRITE) !== 0;
  if (flags & FAULT_FLAG_INSTRUCTION) return (vma.flags & VM_EXEC) !== 0;
  if (mm.arch === 'x86_64' && (flags & FAULT_FLAG_REMOTE) === 0)
    return (vma.flags & (VM_READ | VM_WRITE | VM_EXEC)) !== 0;
  return (vma.flags & VM_READ) !== 0;
}

/**
 * Resolve a fault at `va` (`handle_mm_fault`, with the arch fault handler's VMA checks in front).
 *
 * @remarks
 * - No VMA, or an access the VMA does not allow: `VM_FAULT_SIGSEGV`.
 * - Missing PTE: private anonymous memory gets a fresh zeroed page (there is no shared zero page: a
 *   read fault allocates too, mapped writable and dirty when the VMA is writable, as Linux does when
 *   the zero page is not used); shared anonymous memory maps the object's page (allocated zeroed on
 *   first use; writable when the VMA is, dirty only on a write fault). Hugetlb VMAs map 2 MiB blocks.
 * - Write to a write-protected private page: reused in place when this PTE is its only mapping
 *   (map count 1: the page is exclusive to this mm, pinned or not), else copied (`wp_page_copy`:
 *   notifier `CLEAR` over the page, PTE cleared, TLB + secondary flush, new PTE, end). `FAULT_FLAG_UNSHARE`
 *   copies a shared page without making it writable (GUP pins).
 * - Otherwise the PTE is made young (and dirty on a write): a spurious fault.
 * @param mm - the address space
 * @param va - faulting address
 * @param flags - `FAULT_FLAG_*` (`FAULT_FLAG_WRITE`, `FAULT_FLAG_USER`, `FAULT_FLAG_REMOTE`, `FAULT_FLAG_INSTRUCTION`, `FAULT_FLAG_UNSHARE`, …)
 * @returns 0 when handled, else `VM_FAULT_*` bits (`VM_FAULT_SIGSEGV`, `VM_FAULT_OOM`)
 */
export function handleMmFault(mm: Mm, va: UserAddr, flags: number): number {
  const addr = userVa(va);
  if (addr < 0 || mm.dead || addr >= mm.taskSize) return VM_FAULT_SIGSEGV;
  const vma = mm.findVma(addr);
  if (vma === undefined || !vmaAccessPermitted(mm, vma, flags)) return VM_FAULT_SIGSEGV;
  const huge = vma.huge;
  const size = huge ? SZ_2M : 4096;
  const base = Math.floor(addr / size) * size;
  const pt = mm.pgtable;
  try {
    pt.ensure(base, huge ? PMD_DEPTH : PTE_DEPTH);
  } catch (err) {
    if (err instanceof ErrnoError && err.code === 'ENOMEM') return VM_FAULT_OOM;
    throw err;
  }
  const words = pt.words;
  const wi = pt.wi;
  const st = decodePte(mm.arch, words[wi] as number, words[wi + 1] as number, huge);
  const write = (flags & FAULT_FLAG_WRITE) !== 0;
  if (!st.present) return faultMissing(mm, vma, base, words, wi, write);
  const exclusive = mm.machine.pageMapcount(st.pa) === 1;
  if (
    vma.shared === null &&
    !st.write &&
    ((write && !exclusive) || ((flags & FAULT_FLAG_UNSHARE) !== 0 && !exclusive))
  ) {
    return wpPageCopy(mm, vma, base, words, wi, st.pa, write);
  }
  // Reuse, a shared mapping's write, a PROT_NONE entry the VMA now allows, or a spurious fault.
  const canWrite = (vma.flags & VM_WRITE) !== 0 && (st.write || write);
  const [lo, hi] = encodePte(mm.arch, st.pa, vma.flags, canWrite, st.dirty || write, true, huge);
  words[wi] = lo;
  words[wi + 1] = hi;
  return 0;
}

function faultMissing(
  mm: Mm,
  vma: Vma,
  base: number,
  words: Uint32Array,
  wi: number,
  write: boolean,
): number {
  const huge = vma.huge;
  const order = huge ? 9 : 0;
  const machine = mm.machine;
  let pa: number;
  let pteWrite: boolean;
  let dirty: boolean;
  const obj = vma.shared;
  if (obj === null) {
    pa = allocUserPage(mm, order, true);
    if (pa < 0) return VM_FAULT_OOM;
    vma.anonVma ??= newAnonVma();
    machine.mapPage(pa, false);
    pteWrite = (vma.flags & VM_WRITE) !== 0;
    dirty = pteWrite;
  } else {
    const pg = vma.pgoffOf(base);
    const index = huge ? pg / 512 : pg;
    let p = obj.pages.get(index);
    if (p === undefined) {
      p = allocUserPage(mm, order, true);
      if (p < 0) return VM_FAULT_OOM;
      obj.pages.set(index, p);
    }
    pa = p;
    machine.mapPage(pa, true);
    pteWrite = (vma.flags & VM_WRITE) !== 0;
    dirty = write;
  }
  const [lo, hi] = encodePte(mm.arch, pa, vma.flags, pteWrite, dirty, true, huge);
  words[wi] = lo;
  words[wi + 1] = hi;
  return 0;
}

/**
 * Break COW: copy the page into a new one and swap the PTE under an MMU-notifier `CLEAR` range
 * (`wp_page_copy`).
 */
function wpPageCopy(
  mm: Mm,
  vma: Vma,
  base: number,
  words: Uint32Array,
  wi: number,
  oldPa: number,
  write: boolean,
): number {
  const huge = vma.huge;
  const order = huge ? 9 : 0;
  const mem = mm.machine.memory;
  const newPa = allocUserPage(mm, order, false);
  if (newPa < 0) return VM_FAULT_OOM;
  for (let k = 0; k < 1 << order; k++) mem.copyPage(newPa + k * 4096, oldPa + k * 4096);
  const size = huge ? SZ_2M : 4096;
  const range = mmuNotifierInvalidateRangeStart(mm, MmuNotifyEvent.CLEAR, base, base + size);
  words[wi] = 0;
  words[wi + 1] = 0;
  mm.flushTlbPage(base, size);
  const [lo, hi] = encodePte(mm.arch, newPa, vma.flags, write, write, true, huge);
  words[wi] = lo;
  words[wi + 1] = hi;
  mm.machine.mapPage(newPa, false);
  mm.machine.unmapPage(oldPa);
  mmuNotifierInvalidateRangeEnd(range);
  return 0;
}

/**
 * A hardware access through the page tables, as a CPU with FEAT_HAFDBS (arm64) or an x86 CPU, or an
 * SMMU with HTTU, performs it: checks the leaf and, when allowed, sets the access flag (AF / A) and
 * for a write the dirty state (arm64: clears AP[2] of a DBM entry; x86: sets D). Never faults in.
 * @param mm - the address space
 * @param va - the address accessed
 * @param write - a write access
 * @param user - an unprivileged (EL0 / CPL3) access; default true
 * @returns the physical address of the byte at `va`, or -1 when the access would fault
 */
export function hwAccess(mm: Mm, va: number, write: boolean, user = true): number {
  if (mm.dead || !(va >= 0 && va < mm.taskSize)) return -1;
  const pt = mm.pgtable;
  pt.lookup(va);
  const d = pt.depth;
  if (d < PMD_DEPTH) return -1;
  const words = pt.words;
  const wi = pt.wi;
  let lo = words[wi] as number;
  const hi = words[wi + 1] as number;
  if (mm.arch === 'arm64') {
    const P = Arm64Pte;
    if ((lo & P.VALID) === 0) return -1;
    if (user && (lo & P.USER) === 0) return -1;
    if (write && (lo & P.RDONLY) !== 0) {
      if ((hi & P.HI_DBM) === 0) return -1;
      lo &= ~P.RDONLY;
    }
    lo |= P.AF;
  } else {
    const X = X86Pte;
    if ((lo & X.P) === 0) return -1;
    if (user && (lo & X.US) === 0) return -1;
    if (write && (lo & X.RW) === 0) return -1;
    lo |= X.A | (write ? X.D : 0);
  }
  words[wi] = lo >>> 0;
  const huge = d === PMD_DEPTH;
  const size = huge ? SZ_2M : 4096;
  return decodePte(mm.arch, lo, hi, huge).pa + (va % size);
}

/**
 * Clear the access flag of the PTE mapping `va` and report whether it was set
 * (`ptep_test_and_clear_young`, used by reclaim's aging; no flush, no notifier).
 * @param mm - the address space
 * @param va - user VA
 */
export function ptepTestAndClearYoung(mm: Mm, va: number): boolean {
  const pt = mm.pgtable;
  pt.lookup(va);
  if (pt.depth < PMD_DEPTH) return false;
  const bit = mm.arch === 'arm64' ? Arm64Pte.AF : X86Pte.A;
  const lo = pt.words[pt.wi] as number;
  if ((lo & bit) === 0) return false;
  pt.words[pt.wi] = (lo & ~bit) >>> 0;
  return true;
}
