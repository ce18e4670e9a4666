/**
 * CPU page tables of a user address space in the arm64 (LPAE stage 1, 4K granule, 48-bit VA) or
 * x86-64 (4-level) format, with the attribute bits Linux writes for user pages
 * (arch/arm64/include/asm/pgtable.h, pgtable-prot.h, pgtable-hwdef.h; arch/x86/include/asm/pgtable.h,
 * pgtable_types.h).
 *
 * @remarks
 * The top table and the table geometry come from `@iommu-ts/io-pgtable` (`allocIoPgtableOps` with
 * `ARM_64_LPAE_S1` or `X86_64`, tables allocated in the machine's `PhysicalMemory`); table
 * descriptors are written with that format's `writeTable`, so a device walking these tables sees
 * exactly what io-pgtable would have produced. Leaf descriptors are written here, because user PTEs
 * carry bits no IOMMU prot can express (arm64 DBM/`PTE_WRITE`, the software dirty bit 55,
 * `PTE_PROT_NONE`; x86 `_PAGE_PROTNONE`). Updating one PTE in place (COW, mprotect, access/dirty) uses
 * a cursor that remembers the last-level table of the last 2 MiB region visited, so repeated accesses
 * to one region do not re-walk. Table pages below the top one are freed at munmap when no VMA
 * overlaps the range they translate ({@link CpuPageTable.unhookTables}, as `free_pgtables` with the
 * floor and ceiling of the neighbouring VMAs; unhooked, then freed after the walk-cache flush); the
 * rest go when the address space is torn down
 * (`freeIoPgtableOps`).
 */

import { ErrnoError } from '@iommu-ts/base';
import {
  allocIoPgtableOps,
  freeIoPgtableOps,
  type IoPgtableCfg,
  IoPgtableFmt,
  type IoPgtableOps,
  type PageTableMemory,
  PtEntryKind,
  type PtFormatInstance,
} from '@iommu-ts/io-pgtable';
import { VM_EXEC, VM_READ, VM_WRITE } from './mman.js';

/** The CPU architecture of a process: its page-table format and user address-space size. */
export type Arch = 'arm64' | 'x86_64';

const TWO32 = 4294967296;
const SZ_2M = 0x20_0000;

/**
 * arm64 user PTE bits as masks of the descriptor's low word (`lo`, bits 31:0) or high word (`hi`,
 * bits 63:32) (arch/arm64/include/asm/pgtable-hwdef.h, pgtable-prot.h).
 */
export const Arm64Pte = {
  /** lo: `PTE_VALID`, bit 0. */
  VALID: 1 << 0,
  /** lo: `PTE_TYPE_PAGE` (bits 1:0 = 0b11 at level 3; a block has 0b01). */
  TYPE_PAGE: 0x3,
  /** lo: block descriptor type at level 1/2 (`PMD_TYPE_SECT`, 0b01). */
  TYPE_BLOCK: 0x1,
  /** lo: bit 1 alone (a `PTE_PROT_NONE` page keeps it; `PTE_VALID` is clear). */
  TYPE_BIT1: 1 << 1,
  /** lo: AttrIndx shift (bits 4:2); user memory uses `MT_NORMAL` = 0. */
  ATTRINDX_SHIFT: 2,
  /** lo: `PTE_USER`, AP[1], bit 6: EL0 may access. */
  USER: 1 << 6,
  /** lo: `PTE_RDONLY`, AP[2], bit 7: read-only. */
  RDONLY: 1 << 7,
  /** lo: `PTE_SHARED`, SH = inner shareable (0b11 at bits 9:8). */
  SH_IS: 3 << 8,
  /** lo: `PTE_AF`, access flag, bit 10. */
  AF: 1 << 10,
  /** lo: `PTE_NG`, not global, bit 11. */
  NG: 1 << 11,
  /** hi: `PTE_DBM` = `PTE_WRITE`, bit 51: writable, dirty state managed by hardware. */
  HI_DBM: 1 << 19,
  /** hi: `PTE_PXN`, bit 53. */
  HI_PXN: 1 << 21,
  /** hi: `PTE_UXN`, bit 54. */
  HI_UXN: 1 << 22,
  /** hi: `PTE_DIRTY`, software dirty bit 55. */
  HI_SW_DIRTY: 1 << 23,
  /** hi: `PTE_PROT_NONE`, software bit 58 (present to Linux, invalid to hardware). */
  HI_PROT_NONE: 1 << 26,
} as const;

/** x86-64 user PTE bits (arch/x86/include/asm/pgtable_types.h); `hi` masks are of bits 63:32. */
export const X86Pte = {
  /** `_PAGE_PRESENT`, bit 0. */
  P: 1 << 0,
  /** `_PAGE_RW`, bit 1. */
  RW: 1 << 1,
  /** `_PAGE_USER`, bit 2. */
  US: 1 << 2,
  /** `_PAGE_ACCESSED`, bit 5. */
  A: 1 << 5,
  /** `_PAGE_DIRTY`, bit 6. */
  D: 1 << 6,
  /** `_PAGE_PSE`, bit 7 (2 MiB leaf at the PMD level). */
  PS: 1 << 7,
  /** `_PAGE_PROTNONE` (= `_PAGE_GLOBAL`, bit 8, with P clear). */
  PROTNONE: 1 << 8,
  /** hi: `_PAGE_NX`, bit 63. */
  HI_NX: 1 << 31,
} as const;

/**
 * arm64 `MAIR_EL1` as Linux programs it (arch/arm64/mm/proc.S, `MAIR_EL1_SET`): index 0 `MT_NORMAL`
 * 0xff, 1 `MT_NORMAL_TAGGED` 0xff, 2 `MT_NORMAL_NC` 0x44, 3 `MT_DEVICE_nGnRnE` 0x00,
 * 4 `MT_DEVICE_nGnRE` 0x04.
 */
export const ARM64_MAIR_EL1 = 0x0000_0004_0044_ffffn;

/** The `MAIR_EL1` index of normal write-back memory used for every user page (`MT_NORMAL`). */
export const ARM64_MT_NORMAL = 0;

/**
 * The translation facts an SMMUv3 context descriptor for SVA copies from the CPU (arm64), as
 * `arm_smmu_make_sva_cd` takes them from `TCR_EL1`, `MAIR_EL1` and `mm->pgd`.
 */
export interface Arm64TranslationFacts {
  /** Physical address of the top-level table (`TTBR0_EL1` BADDR, `mm->pgd`). */
  readonly ttbr0: bigint;
  /** `T0SZ` = 64 − 48 = 16. */
  readonly t0sz: number;
  /** `TG0`: 0 = 4 KiB granule. */
  readonly tg0: number;
  /** `SH0`: 3 = inner shareable walks. */
  readonly sh0: number;
  /** `IRGN0`: 1 = write-back write-allocate. */
  readonly irgn0: number;
  /** `ORGN0`: 1 = write-back write-allocate. */
  readonly orgn0: number;
  /** `IPS`: 5 = 48-bit physical addresses. */
  readonly ips: number;
  /** ASID width in bits (`TCR_EL1.AS`: 16 when set, else 8). */
  readonly asidBits: 8 | 16;
  /** `MAIR_EL1` ({@link ARM64_MAIR_EL1}). */
  readonly mair: bigint;
  /** Hardware access-flag management (`TCR_EL1.HA`, FEAT_HAFDBS): true. */
  readonly ha: boolean;
  /** Hardware dirty-state management (`TCR_EL1.HD`, DBM): true. */
  readonly hd: boolean;
}

/** The Linux-level state of one PTE ({@link decodePte}); huge-ness is the caller's (depth) knowledge. */
export interface PteState {
  /** `pte_present`: valid to hardware, or a PROT_NONE entry that still maps a page. */
  readonly present: boolean;
  /** A present entry that hardware may not use (`pte_protnone`). */
  readonly protnone: boolean;
  /** Physical address of the mapped page (or 2 MiB block). */
  readonly pa: number;
  /** `pte_write`: arm64 `PTE_WRITE` (DBM), x86 `_PAGE_RW`. */
  readonly write: boolean;
  /** `pte_dirty`: arm64 software dirty or hardware dirty (DBM with AP[2] clear), x86 `_PAGE_DIRTY`. */
  readonly dirty: boolean;
  /** `pte_young`: arm64 AF, x86 `_PAGE_ACCESSED`. */
  readonly young: boolean;
}

/**
 * Largest user address + 1 (`TASK_SIZE`): arm64 with 48-bit VAs 2^48; x86-64 4-level 2^47 − 4096
 * (`TASK_SIZE_MAX`, the last page below the canonical hole is left unmapped).
 * @param arch - the architecture
 */
export function taskSize(arch: Arch): number {
  return arch === 'arm64' ? 2 ** 48 : 2 ** 47 - 4096;
}

/**
 * Encode a user leaf descriptor (`mk_pte` + `pte_mkwrite`/`pte_mkdirty`/`pte_mkyoung` on the VMA's
 * `vm_page_prot`, `protection_map`).
 *
 * @param arch - the architecture
 * @param pa - page (or 2 MiB block) physical address, aligned
 * @param vmFlags - the VMA's `VM_*` flags: READ/WRITE/EXEC select the protection; none of them gives a
 *   PROT_NONE entry (present to Linux, invalid to hardware)
 * @param write - writable now (a private mapping is write-protected until its COW is broken)
 * @param dirty - dirty
 * @param young - accessed
 * @param huge - a 2 MiB block/PMD leaf rather than a 4 KiB page
 * @returns `[lo, hi]`, the descriptor's two 32-bit halves
 */
export function encodePte(
  arch: Arch,
  pa: number,
  vmFlags: number,
  write: boolean,
  dirty: boolean,
  young: boolean,
  huge: boolean,
): [number, number] {
  const paLo = (pa & 0xfffff000) >>> 0;
  const paHi = Math.floor(pa / TWO32);
  const access = vmFlags & (VM_READ | VM_WRITE | VM_EXEC);
  if (arch === 'arm64') {
    const P = Arm64Pte;
    let lo = paLo | (ARM64_MT_NORMAL << P.ATTRINDX_SHIFT) | P.SH_IS | P.NG;
    let hi = (paHi & 0xffff) | P.HI_PXN;
    if (young) lo |= P.AF;
    if (dirty) hi |= P.HI_SW_DIRTY;
    if (access === 0) {
      // PAGE_NONE: not valid, PTE_PROT_NONE, read-only, no user access, never executable.
      lo |= (huge ? 0 : P.TYPE_BIT1) | P.RDONLY;
      hi |= P.HI_UXN | P.HI_PROT_NONE;
      return [lo >>> 0, hi >>> 0];
    }
    lo |= huge ? P.TYPE_BLOCK : P.TYPE_PAGE;
    if (access & (VM_READ | VM_WRITE)) lo |= P.USER; // exec-only pages are not user-readable
    if ((access & VM_EXEC) === 0) hi |= P.HI_UXN;
    if (write) hi |= P.HI_DBM;
    if (!(write && dirty)) lo |= P.RDONLY;
    return [lo >>> 0, hi >>> 0];
  }
  const X = X86Pte;
  let lo = paLo;
  let hi = paHi & 0xfffff;
  if (huge) lo |= X.PS;
  if (young) lo |= X.A;
  if (dirty) lo |= X.D;
  if (access === 0) return [(lo | X.PROTNONE) >>> 0, hi >>> 0];
  lo |= X.P | X.US;
  if (write) lo |= X.RW;
  if ((access & VM_EXEC) === 0) hi |= X.HI_NX;
  return [lo >>> 0, hi >>> 0];
}

/**
 * Decode a user leaf descriptor into Linux's view of it.
 * @param arch - the architecture
 * @param lo - bits 31:0
 * @param hi - bits 63:32
 * @param huge - whether the entry is a 2 MiB leaf
 */
export function decodePte(arch: Arch, lo: number, hi: number, huge: boolean): PteState {
  if (arch === 'arm64') {
    const P = Arm64Pte;
    const valid = (lo & P.VALID) !== 0;
    const protnone = !valid && (hi & P.HI_PROT_NONE) !== 0;
    const write = (hi & P.HI_DBM) !== 0;
    return {
      present: valid || protnone,
      protnone,
      pa: (hi & 0xffff) * TWO32 + ((lo & (huge ? 0xffe00000 : 0xfffff000)) >>> 0),
      write,
      dirty: (hi & P.HI_SW_DIRTY) !== 0 || (write && (lo & P.RDONLY) === 0),
      young: (lo & P.AF) !== 0,
    };
  }
  const X = X86Pte;
  const valid = (lo & X.P) !== 0;
  const protnone = !valid && (lo & X.PROTNONE) !== 0;
  return {
    present: valid || protnone,
    protnone,
    pa: (hi & 0xfffff) * TWO32 + ((lo & (huge ? 0xffe00000 : 0xfffff000)) >>> 0),
    write: (lo & X.RW) !== 0,
    dirty: (lo & X.D) !== 0,
    young: (lo & X.A) !== 0,
  };
}

/**
 * A visitor of {@link CpuPageTable.forEachLeaf}: one non-zero leaf slot.
 * @param va - first VA the entry maps
 * @param huge - whether it is a 2 MiB leaf
 * @param words - word array holding the entry
 * @param wi - index of the entry's low word (`words[wi + 1]` is the high word)
 */
export type CpuLeafVisitor = (va: number, huge: boolean, words: Uint32Array, wi: number) => void;

/**
 * What {@link CpuPageTable.unhookTables} freed, as the mmu_gather records it for the flush: the span
 * `[start, end)` covering one page at the first address of every freed table's range, and the stride
 * of the lowest level whose table entries were cleared (2 MiB when a last-level table was freed,
 * 1 GiB when only PMD tables, 512 GiB when only PUD tables).
 */
export interface FreedTables {
  /** Lowest range start of a freed table. */
  readonly start: number;
  /** Highest range start of a freed table + 4096. */
  readonly end: number;
  /** Flush stride: the size translated by one entry of the lowest level whose entries were cleared. */
  readonly stride: number;
  /** Physical addresses of the unhooked table pages, to free after the flush ({@link CpuPageTable.releaseTables}). */
  readonly tables: readonly number[];
}

/** Depth (index into the format's levels) of 2 MiB leaves and of 4 KiB leaves in both formats. */
export const PMD_DEPTH = 2;
/** Depth of 4 KiB leaves. */
export const PTE_DEPTH = 3;

/**
 * The page tables of one address space (`mm->pgd` and everything below it).
 *
 * @remarks
 * After {@link CpuPageTable.lookup} or {@link CpuPageTable.ensure} the cursor fields
 * ({@link CpuPageTable.words}, {@link CpuPageTable.wi}, {@link CpuPageTable.depth}) locate the entry.
 */
export class CpuPageTable {
  /** The architecture. */
  readonly arch: Arch;
  /** io-pgtable ops that own the top table (format, geometry, teardown). */
  readonly ops: IoPgtableOps;
  /** Where the tables live (the machine's `PhysicalMemory`). */
  readonly memory: PageTableMemory;
  /** Physical address of the top-level table (arm64 `TTBR0_EL1` BADDR, x86 `CR3`). */
  readonly rootPa: number;
  /** The io-pgtable configuration after allocation (arm64: `armLpaeS1Cfg`; x86: `rootCfg`). */
  readonly cfg: IoPgtableCfg;
  /** Cursor: word array of the entry found by the last lookup/ensure. */
  words: Uint32Array;
  /** Cursor: index of the entry's low word in {@link CpuPageTable.words}. */
  wi = 0;
  /** Cursor: depth (0 = top, 2 = 2 MiB, 3 = 4 KiB) of the entry found. */
  depth = 0;
  /** Number of table pages currently allocated (the top table included). */
  tablePages = 1;
  private readonly inst: PtFormatInstance;
  private readonly shifts: readonly number[];
  private readonly rootWords: Uint32Array;
  private readonly rootWi: number;
  private cacheKey = -1;
  private cacheWords: Uint32Array;
  private cacheWi = 0;
  private freed = false;

  /**
   * Allocate the top table.
   * @param arch - the architecture
   * @param memory - table memory (the machine's `PhysicalMemory`)
   * @throws ErrnoError `ENOMEM` when the top table cannot be allocated
   */
  constructor(arch: Arch, memory: PageTableMemory) {
    this.arch = arch;
    this.memory = memory;
    const cfg: IoPgtableCfg =
      arch === 'arm64'
        ? { quirks: 0, pgsizeBitmap: 0x201000n, ias: 48, oas: 48, coherentWalk: true, memory }
        : { quirks: 0, pgsizeBitmap: 0x201000n, ias: 48, oas: 52, coherentWalk: true, memory, levels: 4 };
    const ops = allocIoPgtableOps(
      arch === 'arm64' ? IoPgtableFmt.ARM_64_LPAE_S1 : IoPgtableFmt.X86_64,
      cfg,
      this,
    );
    if (ops === null) throw new ErrnoError('ENOMEM', 'cannot allocate the top-level page table');
    this.ops = ops;
    this.cfg = cfg;
    this.inst = ops.instance;
    this.shifts = this.inst.levels.map((l) => l.shift);
    this.rootPa = ops.walker.rootPa;
    this.rootWords = memory.tableWords(this.rootPa);
    this.rootWi = memory.tableWordIndex(this.rootPa);
    this.words = this.rootWords;
    this.cacheWords = this.rootWords;
  }

  private index(va: number, d: number): number {
    return Math.floor(va / 2 ** (this.shifts[d] as number)) % 512;
  }

  /**
   * Find the entry that translates `va`: descend through table entries and stop at the first entry
   * that is not a table (a leaf, a PROT_NONE entry, or empty), or at the 4 KiB level. Allocates
   * nothing. Sets the cursor.
   * @param va - user VA
   */
  lookup(va: number): void {
    const key = Math.floor(va / SZ_2M);
    if (key === this.cacheKey) {
      this.words = this.cacheWords;
      this.wi = this.cacheWi + 2 * (Math.floor(va / 4096) % 512);
      this.depth = PTE_DEPTH;
      return;
    }
    let words = this.rootWords;
    let base = this.rootWi;
    for (let d = 0; ; d++) {
      const e = base + 2 * this.index(va, d);
      const lo = words[e] as number;
      const hi = words[e + 1] as number;
      if (d === PTE_DEPTH || (lo === 0 && hi === 0) || this.inst.classify(lo, hi, d) !== PtEntryKind.TABLE) {
        this.words = words;
        this.wi = e;
        this.depth = d;
        return;
      }
      const pa = this.inst.tablePa(lo, hi, d);
      words = this.memory.tableWords(pa);
      base = this.memory.tableWordIndex(pa);
      if (d + 1 === PTE_DEPTH) {
        this.cacheKey = key;
        this.cacheWords = words;
        this.cacheWi = base;
      }
    }
  }

  /**
   * Locate the slot for a leaf at `depth`, allocating missing tables (`pte_alloc`/`pmd_alloc`). A
   * table found where a 2 MiB leaf is wanted must map nothing; it is freed. Sets the cursor.
   * @param va - user VA
   * @param depth - {@link PMD_DEPTH} or {@link PTE_DEPTH}
   * @throws ErrnoError `ENOMEM` when a table cannot be allocated; `EEXIST` when a leaf of another size is in the way
   */
  ensure(va: number, depth: number): void {
    if (depth === PTE_DEPTH && Math.floor(va / SZ_2M) === this.cacheKey) {
      this.lookup(va);
      return;
    }
    let words = this.rootWords;
    let base = this.rootWi;
    for (let d = 0; ; d++) {
      const e = base + 2 * this.index(va, d);
      const lo = words[e] as number;
      const hi = words[e + 1] as number;
      if (d === depth) {
        if (lo !== 0 || hi !== 0) {
          if (this.inst.classify(lo, hi, d) === PtEntryKind.TABLE && d < PTE_DEPTH) {
            const pa = this.inst.tablePa(lo, hi, d);
            const tw = this.memory.tableWords(pa);
            const ti = this.memory.tableWordIndex(pa);
            for (let i = 0; i < 1024; i++) {
              if (tw[ti + i] !== 0) throw new ErrnoError('EEXIST', 'a table that maps pages is in the way');
            }
            words[e] = 0;
            words[e + 1] = 0;
            this.memory.freeTable(pa, 4096);
            this.tablePages--;
            this.cacheKey = -1;
          }
        }
        this.words = words;
        this.wi = e;
        this.depth = d;
        return;
      }
      let pa: number;
      if (lo === 0 && hi === 0) {
        pa = this.memory.allocTable(4096);
        this.tablePages++;
        this.inst.writeTable(words, e, pa, d);
      } else if (this.inst.classify(lo, hi, d) === PtEntryKind.TABLE) {
        pa = this.inst.tablePa(lo, hi, d);
      } else {
        throw new ErrnoError('EEXIST', 'a larger leaf is in the way');
      }
      words = this.memory.tableWords(pa);
      base = this.memory.tableWordIndex(pa);
      if (d + 1 === PTE_DEPTH) {
        this.cacheKey = Math.floor(va / SZ_2M);
        this.cacheWords = words;
        this.cacheWi = base;
      }
    }
  }

  /**
   * Visit every non-zero leaf entry (present, PROT_NONE, 2 MiB or 4 KiB) mapping an address in
   * `[start, end)`, in address order; skips empty tables without visiting their slots. The visitor
   * may rewrite or clear the entry it is given.
   * @param start - first VA (page-aligned)
   * @param end - one past the last VA
   * @param fn - the visitor
   */
  forEachLeaf(start: number, end: number, fn: CpuLeafVisitor): void {
    const rec = (words: Uint32Array, base: number, d: number, tableVa: number): void => {
      const size = 2 ** (this.shifts[d] as number);
      const first = Math.max(0, Math.floor((start - tableVa) / size));
      const last = Math.min(511, Math.floor((end - 1 - tableVa) / size));
      for (let i = first; i <= last; i++) {
        const e = base + 2 * i;
        const lo = words[e] as number;
        const hi = words[e + 1] as number;
        if (lo === 0 && hi === 0) continue;
        const va = tableVa + i * size;
        if (d < PTE_DEPTH && this.inst.classify(lo, hi, d) === PtEntryKind.TABLE) {
          const pa = this.inst.tablePa(lo, hi, d);
          rec(this.memory.tableWords(pa), this.memory.tableWordIndex(pa), d + 1, va);
        } else {
          fn(va, d === PMD_DEPTH, words, e);
        }
      }
    };
    if (end > start) rec(this.rootWords, this.rootWi, 0, 0);
  }

  /**
   * Whether the entry at `depth` that translates `va` is set (not `pXd_none`): a table, a leaf or a
   * PROT_NONE entry. Descends through tables only; allocates nothing.
   * @param va - user VA
   * @param depth - 0 (top) … {@link PTE_DEPTH}
   */
  entryPresent(va: number, depth: number): boolean {
    let words = this.rootWords;
    let base = this.rootWi;
    for (let d = 0; ; d++) {
      const e = base + 2 * this.index(va, d);
      const lo = words[e] as number;
      const hi = words[e + 1] as number;
      if (lo === 0 && hi === 0) return false;
      if (d === depth) return true;
      if (d >= PTE_DEPTH || this.inst.classify(lo, hi, d) !== PtEntryKind.TABLE) return false;
      const pa = this.inst.tablePa(lo, hi, d);
      words = this.memory.tableWords(pa);
      base = this.memory.tableWordIndex(pa);
    }
  }

  /**
   * Unhook the table pages below the top one that translate part of `[start, end)` and whose whole
   * range lies inside `[floor, ceiling)` (`free_pgd_range`): a last-level table when its 2 MiB are
   * free, a PMD table when its 1 GiB is, a PUD table when its 512 GiB are. The caller guarantees that
   * no VMA overlaps `[floor, ceiling)` any more and that the leaves in it are cleared; a table that
   * still holds an entry is kept regardless. The entries pointing at the tables are cleared at once
   * (no walk reaches them any more); the pages themselves stay allocated until
   * {@link CpuPageTable.releaseTables}, which the caller calls after flushing the walk caches over the
   * result's span, as `tlb_remove_table` frees them only after the invalidation.
   * @param start - first byte of the unmapped range
   * @param end - one past its last byte
   * @param floor - end of the VMA below (0 when none)
   * @param ceiling - start of the VMA above (2^48 when none)
   * @returns the span and stride to flush and the pages to free, or null when nothing was unhooked
   */
  unhookTables(start: number, end: number, floor: number, ceiling: number): FreedTables | null {
    if (end <= start) return null;
    let lo = Number.POSITIVE_INFINITY;
    let hi = 0;
    let stride = Number.POSITIVE_INFINITY;
    const tables: number[] = [];
    const isEmpty = (words: Uint32Array, base: number): boolean => {
      for (let i = 0; i < 1024; i++) if (words[base + i] !== 0) return false;
      return true;
    };
    const rec = (words: Uint32Array, base: number, d: number, tableVa: number): void => {
      const size = 2 ** (this.shifts[d] as number);
      const first = Math.max(0, Math.floor((start - tableVa) / size));
      const last = Math.min(511, Math.floor((end - 1 - tableVa) / size));
      for (let i = first; i <= last; i++) {
        const e = base + 2 * i;
        const elo = words[e] as number;
        const ehi = words[e + 1] as number;
        if ((elo === 0 && ehi === 0) || d >= PTE_DEPTH) continue;
        if (this.inst.classify(elo, ehi, d) !== PtEntryKind.TABLE) continue;
        const va = tableVa + i * size;
        const pa = this.inst.tablePa(elo, ehi, d);
        const cw = this.memory.tableWords(pa);
        const cb = this.memory.tableWordIndex(pa);
        rec(cw, cb, d + 1, va);
        if (va < floor || va + size > ceiling || !isEmpty(cw, cb)) continue;
        words[e] = 0;
        words[e + 1] = 0;
        tables.push(pa);
        if (va < lo) lo = va;
        if (va + 4096 > hi) hi = va + 4096;
        if (size < stride) stride = size;
      }
    };
    rec(this.rootWords, this.rootWi, 0, 0);
    if (tables.length === 0) return null;
    this.cacheKey = -1;
    return { start: lo, end: hi, stride, tables };
  }

  /**
   * Free table pages unhooked by {@link CpuPageTable.unhookTables} (after the TLB flush).
   * @param tables - their physical addresses
   */
  releaseTables(tables: readonly number[]): void {
    for (const pa of tables) {
      this.memory.freeTable(pa, 4096);
      this.tablePages--;
    }
  }

  /** Free every table (`free_pgd_range` + `pgd_free`); the tables must map nothing any CPU still uses. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.cacheKey = -1;
    // Count what is freed: every table reachable from the top one.
    freeIoPgtableOps(this.ops);
    this.tablePages = 0;
  }
}
