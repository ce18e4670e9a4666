/**
 * A user process: a task (`struct task_struct`: pid, credentials, rlimits, file table) and its
 * address space (`struct mm_struct`), with the system calls and accesses the IOMMU stack needs.
 *
 * @remarks
 * Addresses: user VAs are returned as `number`s (below 2^48); every address parameter also accepts
 * a `bigint` (as iommufd passes `user_va`). Lengths are numbers or bigints; `mmap` with a bigint
 * length returns a bigint address (the form the iommufd contract and C-style callers use). Error style: system calls and GUP throw `ErrnoError` with
 * Linux's errno; user-mode accesses throw {@link UserFaultError} (`EFAULT`, with the signal);
 * `handleMmFault` returns `VM_FAULT_*` bits; `copyToUser`/`copyFromUser` return the bytes not copied.
 */

import { ErrnoError } from '@iommu-ts/base';
import { CAP_LAST_CAP, MLOCK_LIMIT } from './accounting.js';
import type { Arch } from './cpu-pgtable.js';
import { handleMmFault, hwAccess, type UserAddr, userVa } from './fault.js';
import { FdTable, type ProcessFile } from './fd-table.js';
import { dupMm } from './fork.js';
import { pinUserPagesRemote, unpinUserPages } from './gup.js';
import { type CreateProcessOptions, Machine, setProcessFactory } from './machine.js';
import { migratePage, reclaimPage } from './migrate.js';
import { Mm } from './mm.js';
import { doMadvise, doMmap, doMprotect, doMunmap } from './mmap.js';
import { PhysicalMemory } from './physical-memory.js';
import { copyFromUser, copyToUser, userRead, userWrite } from './uaccess.js';
import type { VmaInfo } from './vma.js';

/** Internal construction parameters of a {@link Process}. */
export interface ProcessInit {
  /** Architecture. */
  readonly arch: Arch;
  /** uid. */
  readonly uid: number;
  /** Capabilities, or null for all. */
  readonly capabilities: ReadonlySet<number> | null;
  /** `RLIMIT_MEMLOCK` in bytes. */
  readonly rlimitMemlock: number;
  /** An mm to adopt (fork), or null for a fresh one. */
  readonly mm: Mm | null;
  /** A file table to adopt (fork). */
  readonly files?: FdTable;
}

/**
 * Options of `new Process(memory, options)`: credentials, limits and the address-space format of
 * a process created directly over a {@link PhysicalMemory}.
 */
export interface ProcessOptions {
  /** Real/effective uid. Default 0 (root, as the kernel selftests run). */
  readonly uid?: number;
  /** Effective capabilities (`CAP_*` numbers). Default: every capability. */
  readonly capabilities?: Iterable<number>;
  /** `RLIMIT_MEMLOCK` in bytes (`Infinity` for `RLIM_INFINITY`). Default 8 MiB (`MLOCK_LIMIT`). */
  readonly rlimitMemlock?: number;
  /** Page-table format and address-space size. Default `'arm64'`. */
  readonly arch?: Arch;
}

/** A length given as a number or a `size_t`-style bigint, as a number (huge values stay huge). */
function lengthArg(length: number | bigint): number {
  return typeof length === 'bigint' ? Number(BigInt.asUintN(64, length)) : length;
}

/**
 * A process on a {@link Machine}. Created by `new Process(memory, options)`, by
 * `machine.createProcess` or by {@link Process.fork}.
 */
export class Process {
  /** The machine. */
  readonly machine: Machine;
  /** Process id. */
  readonly pid: number;
  /** Real and effective uid. */
  readonly uid: number;
  /** Architecture of the address space. */
  readonly arch: Arch;
  /** `RLIMIT_MEMLOCK` in bytes (`Infinity` = `RLIM_INFINITY`); may be changed (`setrlimit`). */
  rlimitMemlock: number;
  /** Effective capability set (`CAP_*` numbers). */
  readonly capabilities: ReadonlySet<number>;
  /** The file table. */
  readonly files: FdTable;
  private mmRef: Mm | null;

  /**
   * A new process with an empty address space on the machine that owns `memory`
   * ({@link Machine.forMemory}: created with default options on first use, then shared by every
   * process created over the same memory).
   * @param memory - the machine's RAM
   * @param options - uid (default 0), capabilities (default all), `RLIMIT_MEMLOCK` (default 8 MiB),
   *   arch (default `'arm64'`)
   * @throws ErrnoError `ENOMEM` when the top-level page table cannot be allocated
   */
  constructor(memory: PhysicalMemory, options?: ProcessOptions);
  /**
   * The form `machine.createProcess` and `fork` use.
   * @param machine - the machine
   * @param pid - process id
   * @param init - credentials, limits, mm
   * @internal
   */
  constructor(machine: Machine, pid: number, init: ProcessInit);
  constructor(first: PhysicalMemory | Machine, second?: number | ProcessOptions, third?: ProcessInit) {
    let machine: Machine;
    let pid: number;
    let init: ProcessInit;
    if (first instanceof PhysicalMemory) {
      const o = (typeof second === 'object' ? second : undefined) ?? {};
      machine = Machine.forMemory(first);
      pid = machine.allocPid();
      init = {
        arch: o.arch ?? 'arm64',
        uid: o.uid ?? 0,
        capabilities: o.capabilities === undefined ? null : new Set(o.capabilities),
        rlimitMemlock: o.rlimitMemlock ?? MLOCK_LIMIT,
        mm: null,
      };
    } else {
      if (typeof second !== 'number' || third === undefined)
        throw new ErrnoError('EINVAL', 'new Process(machine, pid, init) needs a pid and init');
      machine = first;
      pid = second;
      init = third;
    }
    this.machine = machine;
    this.pid = pid;
    this.uid = init.uid;
    this.arch = init.arch;
    this.rlimitMemlock = init.rlimitMemlock;
    this.capabilities = init.capabilities ?? new Set(Array.from({ length: CAP_LAST_CAP + 1 }, (_, i) => i));
    this.files = init.files ?? new FdTable();
    this.mmRef = init.mm ?? new Mm(machine, init.arch, this);
    this.mmRef.owner = this;
    machine.processes.set(pid, this);
  }

  /** The address space. @throws ErrnoError `ESRCH` after exit */
  get mm(): Mm {
    if (this.mmRef === null) throw new ErrnoError('ESRCH', `process ${this.pid} has exited`);
    return this.mmRef;
  }

  /** Whether {@link Process.exit} has run. */
  get exited(): boolean {
    return this.mmRef === null;
  }

  /**
   * Whether the task has capability `cap` (`capable`).
   * @param cap - a `CAP_*` number
   */
  capable(cap: number): boolean {
    return this.capabilities.has(cap);
  }

  // ---- files ----

  /**
   * Install an open file at the lowest free descriptor.
   * @param file - the file
   * @returns the descriptor
   * @throws ErrnoError `EMFILE`
   */
  installFd(file: ProcessFile): number {
    return this.files.install(file);
  }

  /**
   * The file at `fd`.
   * @param fd - descriptor
   * @throws ErrnoError `EBADF`
   */
  getFile(fd: number): ProcessFile {
    return this.files.get(fd);
  }

  /**
   * Close `fd` (`close(2)`).
   * @param fd - descriptor
   * @throws ErrnoError `EBADF`
   */
  close(fd: number): void {
    this.files.close(fd);
  }

  // ---- memory system calls ----

  /**
   * `mmap(addr, length, prot, flags, -1, 0)` of anonymous memory with a bigint length (a `size_t`;
   * values of 2^64 and above wrap as in C); see `doMmap` in mmap.ts.
   * @param length - bytes
   * @param prot - `PROT_*`
   * @param flags - `MAP_*`
   * @param addr - hint or fixed address
   * @returns the mapping's start, as a bigint
   * @throws ErrnoError `EINVAL`, `EBADF`, `ENOMEM`, `EEXIST`
   */
  mmap(length: bigint, prot: number, flags: number, addr?: UserAddr): bigint;
  /**
   * `mmap(addr, length, prot, flags, -1, 0)` of anonymous memory; see `doMmap` in mmap.ts.
   * @param length - bytes
   * @param prot - `PROT_*`
   * @param flags - `MAP_*`
   * @param addr - hint or fixed address
   * @returns the mapping's start
   * @throws ErrnoError `EINVAL`, `EBADF`, `ENOMEM`, `EEXIST`
   */
  mmap(length: number, prot: number, flags: number, addr?: UserAddr): number;
  mmap(length: number | bigint, prot: number, flags: number, addr: UserAddr = 0): number | bigint {
    const va = doMmap(this.mm, lengthArg(length), prot, flags, addr);
    return typeof length === 'bigint' ? BigInt(va) : va;
  }

  /**
   * `munmap(addr, length)`.
   * @param addr - page-aligned start
   * @param length - bytes (number or bigint)
   * @throws ErrnoError `EINVAL`
   */
  munmap(addr: UserAddr, length: number | bigint): void {
    doMunmap(this.mm, addr, lengthArg(length));
  }

  /**
   * `mprotect(addr, length, prot)`.
   * @param addr - page-aligned start
   * @param length - bytes (number or bigint)
   * @param prot - `PROT_*`
   * @throws ErrnoError `EINVAL`, `ENOMEM`
   */
  mprotect(addr: UserAddr, length: number | bigint, prot: number): void {
    doMprotect(this.mm, addr, lengthArg(length), prot);
  }

  /**
   * `madvise(addr, length, advice)`.
   * @param addr - page-aligned start
   * @param length - bytes (number or bigint)
   * @param advice - `MADV_*`
   * @throws ErrnoError `EINVAL`, `ENOMEM`
   */
  madvise(addr: UserAddr, length: number | bigint, advice: number): void {
    doMadvise(this.mm, addr, lengthArg(length), advice);
  }

  /** The VMAs in address order (like /proc/pid/maps). */
  vmas(): VmaInfo[] {
    return this.mm.vmas.map((v) => v.info());
  }

  // ---- process lifetime ----

  /**
   * `fork()`: a child with a copy-on-write copy of the address space and a copy of the file table,
   * same credentials and limits.
   * @returns the child
   * @throws ErrnoError `ENOMEM`
   */
  fork(): Process {
    const pid = this.machine.allocPid();
    const mm = dupMm(this.mm, null);
    return new Process(this.machine, pid, {
      arch: this.arch,
      uid: this.uid,
      capabilities: this.capabilities,
      rlimitMemlock: this.rlimitMemlock,
      mm,
      files: this.files.dup(),
    });
  }

  /**
   * `exit()`: close every file, then drop the task's reference on the mm (`mmput`; the last one
   * releases notifiers, unmaps everything and frees the page tables). Idempotent.
   */
  exit(): void {
    if (this.mmRef === null) return;
    this.files.closeAll();
    const mm = this.mmRef;
    this.mmRef = null;
    this.machine.processes.delete(this.pid);
    if (mm.owner === this) mm.owner = null;
    mm.mmput();
  }

  // ---- accesses ----

  /**
   * A user-mode read of `len` bytes at `va`, through the page tables (faults pages in).
   * @param va - address
   * @param len - bytes (number or bigint)
   * @param cpu - the CPU it runs on (arm64: its ASID is switched in); default 0
   * @throws UserFaultError on SIGSEGV/SIGBUS
   */
  read(va: UserAddr, len: number | bigint, cpu = 0): Uint8Array {
    this.switchTo(cpu);
    return userRead(this.mm, va, lengthArg(len));
  }

  /**
   * A user-mode write of `bytes` at `va`, through the page tables (faults pages in, breaks COW).
   * @param va - address
   * @param bytes - data
   * @param cpu - the CPU it runs on; default 0
   * @throws UserFaultError on SIGSEGV/SIGBUS
   */
  write(va: UserAddr, bytes: Uint8Array, cpu = 0): void {
    this.switchTo(cpu);
    userWrite(this.mm, va, bytes);
  }

  private switchTo(cpu: number): void {
    if (this.arch === 'arm64') this.machine.asids.checkAndSwitchContext(this.mm, cpu);
  }

  /**
   * `copy_to_user` into this process.
   * @param va - destination
   * @param src - data
   * @returns bytes not copied
   */
  copyToUser(va: UserAddr, src: Uint8Array): number {
    return copyToUser(this.mm, va, src);
  }

  /**
   * `copy_from_user` from this process.
   * @param dst - destination buffer
   * @param va - source
   * @returns bytes not copied
   */
  copyFromUser(dst: Uint8Array, va: UserAddr): number {
    return copyFromUser(this.mm, dst, va);
  }

  /**
   * Resolve a fault (`handle_mm_fault`).
   * @param va - address
   * @param flags - `FAULT_FLAG_*`
   * @returns 0 or `VM_FAULT_*` bits
   */
  handleMmFault(va: UserAddr, flags: number): number {
    return handleMmFault(this.mm, va, flags);
  }

  /**
   * A hardware access (CPU or SMMU HTTU) setting access/dirty state; see `hwAccess` in fault.ts.
   * @param va - address
   * @param write - write access
   * @returns the PA of the byte, or -1 when it would fault
   */
  hwAccess(va: UserAddr, write: boolean): number {
    return hwAccess(this.mm, userVa(va), write);
  }

  /**
   * Migrate the page at `va`; see `migratePage` in migrate.ts.
   * @param va - address
   * @returns the new PA
   * @throws ErrnoError `EFAULT`, `ENOENT`, `EBUSY`, `EAGAIN`, `ENOMEM`
   */
  migratePage(va: UserAddr): number {
    return migratePage(this.mm, va);
  }

  /**
   * Reclaim the (clean) page at `va`; see `reclaimPage` in migrate.ts.
   * @param va - address
   * @throws ErrnoError `EFAULT`, `ENOENT`, `EBUSY`, `EAGAIN`
   */
  reclaim(va: UserAddr): void {
    reclaimPage(this.mm, va);
  }

  /**
   * `pin_user_pages` on this process's mm.
   * @param va - address of the first page
   * @param nrPages - pages
   * @param gupFlags - `FOLL_*`
   * @returns the pinned pages' PAs (possibly fewer than asked)
   * @throws ErrnoError `EINVAL`, `EFAULT`, `ENOMEM`
   */
  pinUserPages(va: UserAddr, nrPages: number, gupFlags: number): number[] {
    return pinUserPagesRemote(this.mm, va, nrPages, gupFlags);
  }

  /**
   * `unpin_user_pages_dirty_lock` (works after exit too: pins outlive the mm).
   * @param pages - PAs from {@link Process.pinUserPages}
   * @param makeDirty - mark dirty first
   */
  unpinUserPages(pages: readonly number[], makeDirty: boolean): void {
    unpinUserPages(this.machine.memory, pages, makeDirty);
  }
}

setProcessFactory(
  (machine: Machine, options: CreateProcessOptions): Process =>
    new Process(machine, machine.allocPid(), {
      arch: options.arch,
      uid: options.uid ?? 0,
      capabilities: options.capabilities === undefined ? null : new Set(options.capabilities),
      rlimitMemlock: options.rlimitMemlock ?? MLOCK_LIMIT,
      mm: null,
    }),
);
