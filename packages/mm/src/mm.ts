/**
 * The address space of a process (`struct mm_struct`, include/linux/mm_types.h; lifetime as
 * kernel/fork.c `mmget`/`mmput`/`mmgrab`/`mmdrop`, teardown as mm/mmap.c `exit_mmap`; TLB flushing as
 * arch/arm64/include/asm/tlbflush.h and arch/x86/mm/tlb.c).
 */

import { ErrnoError } from '@iommu-ts/base';
import {
  ARM64_MAIR_EL1,
  type Arch,
  type Arm64TranslationFacts,
  CpuPageTable,
  decodePte,
  type FreedTables,
  taskSize,
} from './cpu-pgtable.js';
import type { Machine } from './machine.js';
import { FLUSH_ALL_END } from './mman.js';
import {
  type MmuNotifier,
  mmuNotifierArchInvalidateSecondaryTlbs,
  mmuNotifierRelease,
} from './mmu-notifier.js';
import type { Process } from './process.js';
import { MAX_DVM_OPS, MAX_TLBI_RANGE_PAGES } from './tlb-broadcast.js';
import { Vma, vmasMergeable } from './vma.js';

const SZ_2M = 0x20_0000;

/** What {@link Mm.zapRange} removed: the span of cleared entries and the pages to release after the flush. */
export interface ZapResult {
  /** First byte of the first cleared entry. */
  readonly start: number;
  /** One past the last byte of the last cleared entry. */
  readonly end: number;
  /** Largest entry size cleared (4096 or 2 MiB): the TLB flush stride. */
  readonly stride: number;
  /** Head PAs of the present pages whose mapping references must be dropped. */
  readonly pages: readonly number[];
}

/**
 * One address space: VMAs, CPU page tables, MMU notifier subscriptions, reference counts and the
 * per-mm counters `pinned_vm` and `locked_vm`.
 *
 * @remarks
 * Addresses are user VAs as `number`s below `TASK_SIZE` (2^48 on arm64, 2^47 − 4096 on x86-64).
 * Members not marked as API are the package's internals (shared by its files), documented for
 * completeness.
 */
export class Mm {
  /** The machine (physical memory, ASIDs, TLB broadcast, page map counts). */
  readonly machine: Machine;
  /** The architecture of the page tables. */
  readonly arch: Arch;
  /** The CPU page tables. */
  readonly pgtable: CpuPageTable;
  /** VMAs sorted by start, non-overlapping (the maple tree of `mm->mm_mt`). Internal. */
  vmas: Vma[] = [];
  /** Registered MMU notifier subscriptions, in registration order. Internal. */
  notifiers: readonly MmuNotifier[] = [];
  /** Subscriptions already released by exit, awaiting `mmuNotifierUnregister`. Internal. */
  readonly releasedNotifiers: Set<MmuNotifier> = new Set();
  /** The task owning the mm (`mm->owner`): whose rlimits and credentials apply; null after exit. */
  owner: Process | null;
  /** Pages pinned long term and accounted by drivers (`mm->pinned_vm`), in pages. */
  pinnedVm = 0;
  /** Pages accounted as locked (`mm->locked_vm`), in pages. */
  lockedVm = 0;
  /** Whether `exit_mmap` has run (no VMAs, no page tables). */
  dead = false;
  /**
   * `iommu_mm`: the IOMMU SVA state of this address space (its PASID), set by `@iommu-ts/iommu-sva`;
   * `null` until the first bind, and for every new or forked mm. Opaque here except for
   * {@link MmIommuData.pasidDrop}, which the last {@link Mm.mmdrop} calls when the mm_struct is
   * freed (`mm_pasid_drop` in `__mmdrop`, not at exit: a bound SVA domain holds the mm_struct).
   */
  iommuMm: MmIommuData | null = null;
  private mmUsers = 1;
  private mmCount = 1;

  /**
   * @param machine - the machine
   * @param arch - page-table format
   * @param owner - the owning task
   * @throws ErrnoError `ENOMEM` when the top table cannot be allocated
   */
  constructor(machine: Machine, arch: Arch, owner: Process | null) {
    this.machine = machine;
    this.arch = arch;
    this.owner = owner;
    this.pgtable = new CpuPageTable(arch, machine.memory);
  }

  /** `mm_users`: users of the address space (the task, `mmget` holders). */
  get users(): number {
    return this.mmUsers;
  }

  /** `mm_count`: references to the `mm_struct` itself (one for all users, plus `mmgrab` holders). */
  get count(): number {
    return this.mmCount;
  }

  /** Physical address of the top-level page table (`mm->pgd`; arm64 TTBR0 BADDR, x86 CR3). */
  get pgd(): number {
    return this.pgtable.rootPa;
  }

  /** `TASK_SIZE`: one past the highest user address. */
  get taskSize(): number {
    return taskSize(this.arch);
  }

  /**
   * The arm64 translation facts an SMMUv3 SVA context descriptor copies (TTB0, T0SZ, TG0, SH0,
   * IRGN0/ORGN0, IPS, ASID size, MAIR, HA/HD).
   * @throws ErrnoError `EINVAL` for an x86-64 mm
   */
  arm64TranslationFacts(): Arm64TranslationFacts {
    if (this.arch !== 'arm64') throw new ErrnoError('EINVAL', 'not an arm64 mm');
    return {
      ttbr0: BigInt(this.pgd),
      t0sz: 16,
      tg0: 0,
      sh0: 3,
      irgn0: 1,
      orgn0: 1,
      ips: 5,
      asidBits: this.machine.asids.bits,
      mair: ARM64_MAIR_EL1,
      ha: true,
      hd: true,
    };
  }

  /** The mm's current ASID (arm64; 0 when it never ran), from the machine's `AsidAllocator`. */
  get asid(): number {
    return this.machine.asids.asidOf(this);
  }

  // ---- lifetime ----

  /** Take a user reference (`mmget`). @throws ErrnoError `EINVAL` when there are no users left */
  mmget(): void {
    if (this.mmUsers <= 0) throw new ErrnoError('EINVAL', 'mmget on a dead mm');
    this.mmUsers++;
  }

  /** Take a user reference unless the mm is exiting (`mmget_not_zero`). @returns whether a reference was taken */
  mmgetNotZero(): boolean {
    if (this.mmUsers <= 0) return false;
    this.mmUsers++;
    return true;
  }

  /**
   * Drop a user reference (`mmput`); the last one tears the address space down (`exit_mmap`) and
   * drops the users' `mm_count` reference.
   * @throws ErrnoError `EINVAL` on underflow
   */
  mmput(): void {
    if (this.mmUsers <= 0) throw new ErrnoError('EINVAL', 'mmput underflow');
    this.mmUsers--;
    if (this.mmUsers === 0) {
      this.exitMmap();
      this.mmdrop();
    }
  }

  /** Take a reference on the `mm_struct` (`mmgrab`). @throws ErrnoError `EINVAL` when already freed */
  mmgrab(): void {
    if (this.mmCount <= 0) throw new ErrnoError('EINVAL', 'mmgrab on a freed mm');
    this.mmCount++;
  }

  /**
   * Drop a reference on the `mm_struct` (`mmdrop`); the last one frees it (`__mmdrop`: the ASID
   * context is forgotten, `destroy_context`, and the mm's PASID goes back, `mm_pasid_drop`). The
   * PASID outlives the address space while anything holds the mm_struct (an SVA domain does), so a
   * device still bound after the process exited keeps a PASID no new binding can be given.
   * @throws ErrnoError `EINVAL` on underflow
   */
  mmdrop(): void {
    if (this.mmCount <= 0) throw new ErrnoError('EINVAL', 'mmdrop underflow');
    this.mmCount--;
    if (this.mmCount !== 0) return;
    const iommuMm = this.iommuMm;
    if (iommuMm !== null) {
      this.iommuMm = null;
      iommuMm.pasidDrop(this);
    }
    if (this.arch === 'arm64') {
      const asids = this.machine.asids;
      if (asids.contextOf(this).pinned === 0) asids.release(this);
    }
  }

  // ---- VMAs ----

  /**
   * The VMA containing `va`, if any (`vma_lookup`).
   * @param va - user VA
   */
  findVma(va: number): Vma | undefined {
    const v = this.vmas;
    let lo = 0;
    let hi = v.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = v[mid] as Vma;
      if (va < m.start) hi = mid - 1;
      else if (va >= m.end) lo = mid + 1;
      else return m;
    }
    return undefined;
  }

  /**
   * Index of the first VMA with `end > va` (`find_vma`), or `vmas.length`. Internal.
   * @param va - user VA
   */
  firstVmaIndexAfter(va: number): number {
    const v = this.vmas;
    let lo = 0;
    let hi = v.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((v[mid] as Vma).end > va) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /**
   * Split the VMA containing `addr` so that `addr` is a VMA boundary (`split_vma`). Internal.
   * @param addr - a page-aligned address (huge-aligned inside a hugetlb VMA)
   * @throws ErrnoError `EINVAL` when `addr` is not aligned to a hugetlb VMA's page size
   */
  splitAt(addr: number): void {
    const i = this.firstVmaIndexAfter(addr);
    const v = this.vmas[i];
    if (v === undefined || v.start >= addr) return;
    if (addr % v.pageSize !== 0)
      throw new ErrnoError('EINVAL', 'split of a hugetlb VMA at an unaligned address');
    const upper = new Vma(addr, v.end, v.flags, v.pgoffOf(addr), v.shared, v.anonVma);
    if (v.shared !== null) v.shared.vmaRefs++;
    v.end = addr;
    this.vmas.splice(i + 1, 0, upper);
  }

  /**
   * Merge VMAs around the boundaries in `[start, end]` where possible (`vma_merge`). Internal.
   * @param start - lowest address to consider
   * @param end - highest address to consider
   */
  mergeAround(start: number, end: number): void {
    let i = Math.max(0, this.firstVmaIndexAfter(start) - 1);
    while (i + 1 < this.vmas.length) {
      const a = this.vmas[i] as Vma;
      const b = this.vmas[i + 1] as Vma;
      if (a.start > end) break;
      if (vmasMergeable(a, b)) {
        a.end = b.end;
        if (a.anonVma === null) a.anonVma = b.anonVma;
        if (b.shared !== null) b.shared.vmaRefs--;
        this.vmas.splice(i + 1, 1);
      } else {
        i++;
      }
    }
  }

  /**
   * Drop a VMA's reference on its shared object; the last one frees the object's pages. Internal.
   * @param vma - a VMA being removed
   */
  releaseVmaObject(vma: Vma): void {
    const obj = vma.shared;
    if (obj === null) return;
    obj.vmaRefs--;
    if (obj.vmaRefs === 0) {
      for (const pa of obj.pages.values()) this.machine.memory.putPage(pa);
      obj.pages.clear();
    }
  }

  // ---- pages and PTEs ----

  /**
   * Clear every PTE in `[start, end)` (`zap_pte_range`), without flushing or releasing pages; the
   * caller flushes the TLB over the result's span and then calls {@link Mm.releasePages}. Internal.
   * @param start - first byte
   * @param end - one past the last byte
   * @returns what was cleared, or null when no entry was set
   */
  zapRange(start: number, end: number): ZapResult | null {
    let lo = Number.POSITIVE_INFINITY;
    let hi = 0;
    let stride = 4096;
    const pages: number[] = [];
    const mem = this.machine.memory;
    this.pgtable.forEachLeaf(start, end, (va, huge, words, wi) => {
      const st = decodePte(this.arch, words[wi] as number, words[wi + 1] as number, huge);
      words[wi] = 0;
      words[wi + 1] = 0;
      const size = huge ? SZ_2M : 4096;
      if (huge) stride = SZ_2M;
      if (va < lo) lo = va;
      if (va + size > hi) hi = va + size;
      if (st.present) {
        if (st.dirty) mem.setDirty(st.pa, true);
        pages.push(st.pa);
      }
    });
    if (hi === 0) return null;
    return { start: lo, end: hi, stride, pages };
  }

  /**
   * Drop the mapping references of pages whose PTEs were cleared (after the TLB flush). Internal.
   * @param pages - head PAs
   */
  releasePages(pages: readonly number[]): void {
    for (const pa of pages) this.machine.unmapPage(pa);
  }

  // ---- TLB maintenance ----

  /**
   * Flush the CPU TLBs for `[start, end)` (`__flush_tlb_range`, as the mmu_gather's `tlb_flush` calls
   * it): on arm64 the TLBIs are published on the machine's `TlbBroadcast` with this mm's ASID (a
   * whole-ASID flush above `MAX_DVM_OPS` strides, with a secondary invalidation of everything, as
   * `flush_tlb_mm`); then every subscription's `archInvalidateSecondaryTlbs(start, end)` (rounded to
   * the stride). Internal.
   * @param start - first byte
   * @param end - one past the last byte
   * @param stride - 4096, 2 MiB, or the size an upper-level entry translates (freed tables)
   * @param leaf - only leaf entries changed (`last_level`: `VALE1IS`); false when tables were freed
   */
  flushTlbRange(start: number, end: number, stride = 4096, leaf = false): void {
    const s = Math.floor(start / stride) * stride;
    const e = Math.ceil(end / stride) * stride;
    if (e <= s) return;
    if (this.arch === 'arm64') {
      const range = this.machine.tlbRangeSupported;
      const n = (e - s) / stride;
      if ((!range && n >= MAX_DVM_OPS) || (e - s) / 4096 > MAX_TLBI_RANGE_PAGES) {
        this.flushTlbMm();
        return;
      }
      this.machine.tlb.flushTlbRange(this.asid, s, e, { stride, leaf, rangeSupported: range });
    }
    mmuNotifierArchInvalidateSecondaryTlbs(this, s, e);
  }

  /**
   * Flush one page whose leaf entry was cleared (`flush_tlb_page`: `TLBI VALE1IS`; a 2 MiB page as a
   * leaf range of one 2 MiB stride, as arm64's hugetlb `huge_ptep_clear_flush`). Internal.
   * @param va - any address in the page
   * @param size - 4096 or 2 MiB
   */
  flushTlbPage(va: number, size = 4096): void {
    if (size !== 4096) {
      this.flushTlbRange(va, va + size, size, true);
      return;
    }
    const s = Math.floor(va / 4096) * 4096;
    if (this.arch === 'arm64') this.machine.tlb.flushTlbPage(this.asid, s, true);
    mmuNotifierArchInvalidateSecondaryTlbs(this, s, s + 4096);
  }

  /** Flush the whole address space (`flush_tlb_mm`): `aside1is` on arm64, secondary `0 … FLUSH_ALL_END`. Internal. */
  flushTlbMm(): void {
    if (this.arch === 'arm64') this.machine.tlb.flushTlbMm(this.asid);
    mmuNotifierArchInvalidateSecondaryTlbs(this, 0, FLUSH_ALL_END);
  }

  /**
   * Free the page tables of an unmapped range that no VMA needs any more (`free_pgtables`, floor and
   * ceiling from the neighbouring VMAs) as the mmu_gather does: unhook them, flush the walk caches
   * over their span with a non-leaf range flush (arm64 `last_level = false`, stride of the lowest
   * level whose entries were cleared) and its secondary invalidation (`tlb_finish_mmu`), then free the
   * pages. Internal.
   * @param start - first byte of the unmapped range
   * @param end - one past its last byte
   * @returns what was freed, or null
   */
  freePgtables(start: number, end: number): FreedTables | null {
    const i = this.firstVmaIndexAfter(start);
    const prev = this.vmas[i - 1];
    const next = this.vmas[i];
    const floor = prev === undefined ? 0 : prev.end;
    const ceiling = next === undefined ? 2 ** 48 : next.start;
    const f = this.pgtable.unhookTables(Math.max(start, floor), Math.min(end, ceiling), floor, ceiling);
    if (f === null) return null;
    this.flushTlbRange(f.start, f.end, f.stride, false);
    this.pgtable.releaseTables(f.tables);
    return f;
  }

  /**
   * Tear the address space down (`exit_mmap`): release the notifiers first, then, with no further
   * callbacks, remove every mapping, free every page-table page (a whole-ASID flush when tables below
   * the top one existed, as the full-mm gather's `tlb_flush` does) and every anonymous page no one
   * else holds. Internal (called by the last {@link Mm.mmput}).
   */
  exitMmap(): void {
    if (this.dead) return;
    mmuNotifierRelease(this);
    const z = this.zapRange(0, this.taskSize);
    if (this.pgtable.tablePages > 1) this.flushTlbMm();
    if (z !== null) this.releasePages(z.pages);
    for (const v of this.vmas) this.releaseVmaObject(v);
    this.vmas = [];
    this.pgtable.free();
    this.dead = true;
  }
}

/** What an IOMMU layer hangs on {@link Mm.iommuMm} (`struct iommu_mm_data`). */
export interface MmIommuData {
  /** The mm's PASID. */
  readonly pasid: number;
  /**
   * `mm_pasid_drop(mm)`: free the PASID and this state; called once by the last `mmdrop` (the
   * mm_struct is freed, after `exit_mmap` and after every SVA domain of the mm let go).
   * @param mm - the dying mm
   */
  pasidDrop(mm: Mm): void;
}

/**
 * `mmget(mm)`: take a user reference ({@link Mm.mmget}).
 * @param mm - the address space
 */
export function mmget(mm: Mm): void {
  mm.mmget();
}

/**
 * `mmget_not_zero(mm)`: take a user reference unless the mm is exiting ({@link Mm.mmgetNotZero}).
 * @param mm - the address space
 * @returns whether a reference was taken
 */
export function mmgetNotZero(mm: Mm): boolean {
  return mm.mmgetNotZero();
}

/**
 * `mmput(mm)`: drop a user reference; the last one tears the address space down ({@link Mm.mmput}).
 * @param mm - the address space
 */
export function mmput(mm: Mm): void {
  mm.mmput();
}

/**
 * `mmgrab(mm)`: take a reference on the `mm_struct` ({@link Mm.mmgrab}).
 * @param mm - the address space
 */
export function mmgrab(mm: Mm): void {
  mm.mmgrab();
}

/**
 * `mmdrop(mm)`: drop a reference on the `mm_struct` ({@link Mm.mmdrop}).
 * @param mm - the address space
 */
export function mmdrop(mm: Mm): void {
  mm.mmdrop();
}
