/**
 * The machine: what all processes share (physical memory, the arm64 ASID allocator, the broadcast
 * of TLB maintenance, per-user accounting, pids, page map counts).
 */

import { ErrnoError } from '@iommu-ts/base';
import { AsidAllocator } from './asid.js';
import type { Arch } from './cpu-pgtable.js';
import { PhysicalMemory, type PhysicalMemoryOptions } from './physical-memory.js';
import type { Process } from './process.js';
import { TlbBroadcast } from './tlb-broadcast.js';

/** Options of {@link Machine}. */
export interface MachineOptions {
  /** The RAM, or options to create it (default: 64 GiB at 1 GiB, sparse). */
  readonly memory?: PhysicalMemory | PhysicalMemoryOptions;
  /** Number of CPUs (for the ASID allocator). Default 1. */
  readonly cpus?: number;
  /** ASID width in bits. Default 16. */
  readonly asidBits?: 8 | 16;
  /** The CPUs implement FEAT_TLBIRANGE (range TLBIs are published as `rvae1is`). Default false. */
  readonly tlbRangeSupported?: boolean;
}

/** Options of {@link Machine.createProcess}. */
export interface CreateProcessOptions {
  /** Page-table format and address-space size. */
  readonly arch: Arch;
  /** Real/effective uid. Default 0 (root, as kernel selftests run). */
  readonly uid?: number;
  /** Effective capabilities (`CAP_*` numbers). Default: every capability. */
  readonly capabilities?: Iterable<number>;
  /** `RLIMIT_MEMLOCK` in bytes (`Infinity` for `RLIM_INFINITY`). Default 8 MiB (`MLOCK_LIMIT`). */
  readonly rlimitMemlock?: number;
}

/**
 * How {@link Machine.createProcess} builds a process. process.ts installs it when it loads, so that
 * machine.ts needs only a type import of `Process` (process.ts imports `Machine` at run time for
 * `new Process(memory)`, and a runtime import in both directions would be a cycle).
 * @internal
 */
export type ProcessFactory = (machine: Machine, options: CreateProcessOptions) => Process;

let processFactory: ProcessFactory | null = null;

/**
 * Install the {@link ProcessFactory} (called once by process.ts).
 * @param factory - the factory
 * @internal
 */
export function setProcessFactory(factory: ProcessFactory): void {
  processFactory = factory;
}

/** The machine each `PhysicalMemory` belongs to: the first one created over it. */
const machineOfMemory = new WeakMap<PhysicalMemory, Machine>();

/** Per-user state (`struct user_struct`, kernel/user.c). */
export interface UserStruct {
  /** The uid. */
  readonly uid: number;
  /** Pages locked by this user (`user->locked_vm`): io_uring / iommufd USER-mode accounting. */
  lockedVm: number;
}

/**
 * The simulated machine owning the shared state of every process.
 *
 * @remarks
 * Page map counts (`page_mapcount` of anonymous and shared-anonymous pages, keyed by the head PA)
 * live here: one per PTE mapping the page. Each PTE also holds one page reference.
 */
export class Machine {
  /** The RAM (page tables and user pages live here). */
  readonly memory: PhysicalMemory;
  /** arm64 ASIDs of the processes' mms. */
  readonly asids: AsidAllocator;
  /** Where every CPU TLB invalidation of an arm64 mm is published. */
  readonly tlb: TlbBroadcast;
  /** Whether range TLBIs are used (FEAT_TLBIRANGE). */
  readonly tlbRangeSupported: boolean;
  /** Live processes by pid. */
  readonly processes: Map<number, Process> = new Map();
  private nextPid = 1;
  private readonly users: Map<number, UserStruct> = new Map();
  private readonly mapcounts: Map<number, number> = new Map();

  /** @param options - see {@link MachineOptions} */
  constructor(options: MachineOptions = {}) {
    const m = options.memory;
    this.memory = m instanceof PhysicalMemory ? m : new PhysicalMemory(m ?? {});
    this.tlb = new TlbBroadcast();
    this.asids = new AsidAllocator({
      bits: options.asidBits ?? 16,
      cpus: options.cpus ?? 1,
      broadcast: this.tlb,
    });
    this.tlbRangeSupported = options.tlbRangeSupported ?? false;
    if (!machineOfMemory.has(this.memory)) machineOfMemory.set(this.memory, this);
  }

  /**
   * The machine owning `memory`: the first `Machine` created over it, or a new one with default
   * options (1 CPU, 16-bit ASIDs). `new Process(memory)` uses it, so every process created over the
   * same RAM shares one machine (pids, per-user `locked_vm`, page map counts).
   * @param memory - the RAM
   */
  static forMemory(memory: PhysicalMemory): Machine {
    return machineOfMemory.get(memory) ?? new Machine({ memory });
  }

  /**
   * Create a process with an empty address space (as after `execve` of a static binary with no
   * mappings yet).
   * @param options - arch, credentials, `RLIMIT_MEMLOCK`
   * @throws ErrnoError `ENOMEM` when the top-level page table cannot be allocated
   */
  createProcess(options: CreateProcessOptions): Process {
    if (processFactory === null) throw new Error('@iommu-ts/mm: process.ts is not loaded');
    return processFactory(this, options);
  }

  /** Allocate the next pid (`alloc_pid`; pids are not reused). @internal */
  allocPid(): number {
    return this.nextPid++;
  }

  /**
   * The user struct of `uid`, created on first use (`alloc_uid`).
   * @param uid - user id
   */
  user(uid: number): UserStruct {
    let u = this.users.get(uid);
    if (u === undefined) {
      u = { uid, lockedVm: 0 };
      this.users.set(uid, u);
    }
    return u;
  }

  /**
   * `user->locked_vm` of `uid`, in pages (0 for a user never seen).
   * @param uid - user id
   */
  userLockedVm(uid: number): number {
    return this.users.get(uid)?.lockedVm ?? 0;
  }

  /**
   * How many PTEs map the page (`folio_mapcount`), by its head PA.
   * @param pa - head physical address
   */
  pageMapcount(pa: number): number {
    return this.mapcounts.get(pa) ?? 0;
  }

  /**
   * Account a new PTE mapping of a page. Internal.
   * @param pa - head PA
   * @param takeRef - take a page reference for the PTE (false when the PTE inherits the allocation's reference)
   * @internal
   */
  mapPage(pa: number, takeRef: boolean): void {
    if (takeRef) this.memory.getPage(pa);
    this.mapcounts.set(pa, (this.mapcounts.get(pa) ?? 0) + 1);
  }

  /**
   * Drop a PTE mapping of a page and its reference (which may free it). Internal.
   * @param pa - head PA
   * @throws ErrnoError `EINVAL` when the page is not mapped
   * @internal
   */
  unmapPage(pa: number): void {
    const n = this.mapcounts.get(pa);
    if (n === undefined) throw new ErrnoError('EINVAL', `page 0x${pa.toString(16)} is not mapped`);
    if (n === 1) this.mapcounts.delete(pa);
    else this.mapcounts.set(pa, n - 1);
    this.memory.putPage(pa);
  }

  /**
   * Move the map count of `oldPa` to `newPa` (migration). Internal.
   * @param oldPa - head PA of the old page
   * @param newPa - head PA of the new page
   * @internal
   */
  moveMapcount(oldPa: number, newPa: number): void {
    const n = this.mapcounts.get(oldPa) ?? 0;
    this.mapcounts.delete(oldPa);
    if (n > 0) this.mapcounts.set(newPa, n);
  }
}
