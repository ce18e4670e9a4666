/**
 * Virtual memory areas (`struct vm_area_struct`, include/linux/mm_types.h; splitting and merging as
 * mm/vma.c), and the object behind shared anonymous mappings (mm/shmem.c, as far as
 * `MAP_SHARED | MAP_ANONYMOUS` needs it).
 */

import {
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  VM_EXEC,
  VM_HUGETLB,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from './mman.js';

/**
 * The pages of a shared anonymous mapping (a shmem object): page index → physical address. Each
 * stored page holds one reference of its own; every PTE mapping it holds another.
 */
export class SharedAnonObject {
  /** Page (or, for huge mappings, 2 MiB block) index → physical address of the page or block head. */
  readonly pages: Map<number, number> = new Map();
  /** Number of VMAs referring to the object. */
  vmaRefs = 0;
  /** Whether the object hands out 2 MiB pages (hugetlb). */
  readonly huge: boolean;
  /** @param huge - whether pages are 2 MiB */
  constructor(huge: boolean) {
    this.huge = huge;
  }
}

/** Identity of the anonymous memory of a private VMA (`struct anon_vma`); set at the first fault. */
export interface AnonVma {
  /** A number for debugging. */
  readonly id: number;
}

let anonVmaIds = 0;

/** A fresh {@link AnonVma}. */
export function newAnonVma(): AnonVma {
  return { id: ++anonVmaIds };
}

/** One VMA: `[start, end)` with flags; bytes, page-aligned (2 MiB-aligned for hugetlb). */
export class Vma {
  /** First byte (`vm_start`). */
  start: number;
  /** One past the last byte (`vm_end`). */
  end: number;
  /** `VM_*` flags (`vm_flags`). */
  flags: number;
  /** Offset of `start` in pages (`vm_pgoff`): into the shared object, or `start / 4096` for private anonymous memory. */
  pgoff: number;
  /** The shared object of a `MAP_SHARED` mapping, else null. */
  shared: SharedAnonObject | null;
  /** The anon_vma of a private mapping once it has pages (`vm_area_struct.anon_vma`), else null. */
  anonVma: AnonVma | null;

  /**
   * @param start - first byte
   * @param end - one past the last byte
   * @param flags - `VM_*` flags
   * @param pgoff - page offset of `start`
   * @param shared - shared object or null
   * @param anonVma - anon_vma or null
   */
  constructor(
    start: number,
    end: number,
    flags: number,
    pgoff: number,
    shared: SharedAnonObject | null,
    anonVma: AnonVma | null,
  ) {
    this.start = start;
    this.end = end;
    this.flags = flags;
    this.pgoff = pgoff;
    this.shared = shared;
    this.anonVma = anonVma;
  }

  /** Whether the VMA uses 2 MiB pages (`is_vm_hugetlb_page`). */
  get huge(): boolean {
    return (this.flags & VM_HUGETLB) !== 0;
  }

  /** The VMA's page size in bytes (`vma_kernel_pagesize`). */
  get pageSize(): number {
    return this.huge ? 0x20_0000 : 4096;
  }

  /** Page offset (4 KiB units) of `va` in the mapped object (`linear_page_index`). */
  pgoffOf(va: number): number {
    return this.pgoff + (va - this.start) / 4096;
  }

  /** A snapshot for listing. */
  info(): VmaInfo {
    return {
      start: this.start,
      end: this.end,
      prot: vmFlagsToProt(this.flags),
      flags: this.flags,
      shared: (this.flags & VM_SHARED) !== 0 || this.shared !== null,
      huge: this.huge,
      pgoff: this.pgoff,
    };
  }
}

/** A VMA as listed by `Process.vmas()` (like one line of /proc/pid/maps). */
export interface VmaInfo {
  /** First byte. */
  readonly start: number;
  /** One past the last byte. */
  readonly end: number;
  /** `PROT_*` bits. */
  readonly prot: number;
  /** `VM_*` flags. */
  readonly flags: number;
  /** Mapped `MAP_SHARED`. */
  readonly shared: boolean;
  /** Backed by 2 MiB pages. */
  readonly huge: boolean;
  /** Page offset (`vm_pgoff`). */
  readonly pgoff: number;
}

/**
 * `PROT_*` → `VM_READ | VM_WRITE | VM_EXEC` (`calc_vm_prot_bits`).
 * @param prot - `PROT_*` bits
 */
export function protToVmFlags(prot: number): number {
  return (
    (prot & PROT_READ ? VM_READ : 0) | (prot & PROT_WRITE ? VM_WRITE : 0) | (prot & PROT_EXEC ? VM_EXEC : 0)
  );
}

/**
 * `VM_READ | VM_WRITE | VM_EXEC` → `PROT_*`.
 * @param flags - `VM_*` flags
 */
export function vmFlagsToProt(flags: number): number {
  return (
    (flags & VM_READ ? PROT_READ : 0) |
    (flags & VM_WRITE ? PROT_WRITE : 0) |
    (flags & VM_EXEC ? PROT_EXEC : 0)
  );
}

/**
 * Whether `b` may be merged onto the end of `a` (`can_vma_merge_after` / `is_mergeable_anon_vma`):
 * adjacent, same flags, same backing, contiguous page offsets, compatible anon_vmas.
 * @param a - the lower VMA
 * @param b - the upper VMA
 */
export function vmasMergeable(a: Vma, b: Vma): boolean {
  if (a.end !== b.start || a.flags !== b.flags || a.shared !== b.shared) return false;
  if (a.pgoff + (a.end - a.start) / 4096 !== b.pgoff) return false;
  return a.anonVma === null || b.anonVma === null || a.anonVma === b.anonVma;
}
