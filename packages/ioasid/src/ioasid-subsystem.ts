/**
 * The IOASID allocator core: drivers/iommu/ioasid.c of the "IOASID extensions for guest SVA" v4
 * RFC (patches 04-09, 13 and 16), the mm-token notifiers of Intel's DCP tree, the custom
 * allocators of merged kernels, and today's global PASID allocator of the IOMMU core, all over one
 * ID space.
 *
 * Error style: where Linux returns `-errno`, the method throws an `ErrnoError` with that code and
 * changes nothing; where Linux returns a sentinel (`INVALID_IOASID`, `false`, `NULL`), the method
 * returns the sentinel (`INVALID_IOASID`, `false`, `undefined`). Kernel log messages go to the
 * injectable `log` option.
 */

import { ErrnoError, Scheduler, shouldFail, type Work, type Workqueue } from '@iommu-ts/base';
import {
  INVALID_IOASID,
  IOASID_SET_TYPE_NR,
  type Ioasid,
  IoasidNotify,
  IoasidSetType,
  IoasidState,
  PCI_PASID_MAX,
} from './constants.js';
import { type AllocatorGroup, AllocatorRegistry, type IoasidAllocatorOps } from './custom-allocator.js';
import { IOMMU_FIRST_GLOBAL_PASID, IOMMU_PASID_INVALID } from './global-pasid.js';
import { IdAllocator } from './id-allocator.js';
import { type IoasidData, type IoasidSet, ioasidSetState, newIoasidSet } from './ioasid-set.js';
import { type IoasidNbArgs, type IoasidNotifierBlock, IoasidNotifierChain } from './notifier.js';
import type { IoasidTask } from './task.js';

/**
 * Sink for the kernel log messages of the allocator (`pr_warn`/`WARN` → `'warn'`, `pr_err` →
 * `'error'`).
 */
export type IoasidLogger = (level: 'warn' | 'error', message: string) => void;

/** Options of the {@link IoasidSubsystem} constructor. */
export interface IoasidSubsystemOptions {
  /** The scheduler that runs the "ioasid_wq" workqueue; default a new `Scheduler()` (FIFO). */
  scheduler?: Scheduler;
  /**
   * Allocate IOASIDs cyclically (`xa_alloc_cyclic`) instead of lowest-free first (the RFC's
   * `xa_alloc`). Applies to the whole ID space, global PASIDs included. Default false.
   */
  cyclic?: boolean;
  /** Receives the kernel's log messages; default: discard them. */
  log?: IoasidLogger;
}

/**
 * The cgroup hook of the allocator (`ioasid_cg_charge` / `ioasid_cg_uncharge`, v4 RFC patch 16),
 * installed by the ioasids cgroup controller with {@link IoasidSubsystem.setChargeHooks}. Both are
 * called only for MM-type sets, with the IOASID lock held.
 */
export interface IoasidChargeHooks {
  /**
   * Charges one IOASID of `set` to the current task's cgroup hierarchy.
   * @param set - the MM-type set an IOASID is being allocated in
   * @throws ErrnoError to refuse the allocation (EINVAL, EPERM, EAGAIN in the RFC)
   */
  charge(set: IoasidSet): void;
  /**
   * Returns one IOASID of `set` to the current task's cgroup hierarchy: an IOASID was released, or
   * an allocation failed after it was charged.
   * @param set - the MM-type set
   */
  uncharge(set: IoasidSet): void;
}

/** A snapshot of one IOASID's bookkeeping, for tests and tools (`struct ioasid_data`). */
export interface IoasidInfo {
  /** The IOASID. */
  readonly id: Ioasid;
  /** Its set. */
  readonly set: IoasidSet;
  /** Its set-private ID, `INVALID_IOASID` if none. */
  readonly spid: Ioasid;
  /** Its state: IDLE, or FREE_PENDING after `free`. */
  readonly state: IoasidState;
  /** Its reference count (the allocation holds one until `free`). */
  readonly refs: number;
  /** Its private data, `undefined` if none. */
  readonly private: unknown;
}

/** An mm-token notifier registration (`struct ioasid_set_nb`, DCP). */
interface MmNotifierEntry {
  readonly mm: object;
  readonly nb: IoasidNotifierBlock;
  /** The set the block is registered on while active; `null` while pending. */
  set: IoasidSet | null;
}

const noLog: IoasidLogger = () => {};

function isU32(v: number): boolean {
  return Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
}

function checkU32(name: string, v: number): void {
  if (!isU32(v)) throw new RangeError(`${name} must be an integer in [0, 0xffffffff], got ${v}`);
}

/**
 * One IOASID subsystem: what drivers/iommu/ioasid.c keeps in global variables (capacity, the set
 * table, the IOASID table, the global notifier chain, the allocator list, the IOASID spinlock and
 * "ioasid_wq"), held by an instance so that tests and simulations can run several side by side.
 *
 * @remarks
 * Error style: where Linux returns `-errno`, methods throw `ErrnoError(code)` and change nothing;
 * where Linux returns a sentinel (`INVALID_IOASID`, `false`, `NULL`), they return it (`NULL` as
 * `undefined`). Log messages go to the `log` option.
 *
 * Locking: methods documented as "takes the IOASID lock" model `ioasid_allocator_lock`. Notifier
 * callbacks, custom allocator functions and charge hooks run with it held; calling such a method
 * from there is a self-deadlock in Linux and throws an `Error` here. The `...Locked` variants,
 * `find`, `findSet`, `setForEachIoasid`, `ioasidInfo`, `queueWork`, the notifier (un)registration
 * of plain blocks, and the global PASID functions do not take it.
 *
 * Deviations from the RFC as written (each documented on its method): a failed `alloc` undoes the
 * cgroup charge on every failure path; `freeAllInSet` keeps referenced FREE_PENDING IOASIDs in the
 * set until they are released; sets are destroyed automatically only when marked free-pending
 * (DCP); a notifier callback that throws does not stop the chain, and its error is rethrown after
 * the state change is complete.
 */
export class IoasidSubsystem {
  /**
   * The current task (`current`): whose mm owns MM-type sets and whose cgroup is charged.
   * `undefined` outside any task; see {@link IoasidSubsystem.runAs}.
   */
  current: IoasidTask | undefined = undefined;

  readonly #scheduler: Scheduler;
  readonly #wq: Workqueue;
  readonly #log: IoasidLogger;
  /** Every allocated ID: IOASIDs of sets and global PASIDs (the default allocator's xarray/IDA). */
  readonly #ids: IdAllocator;
  /** Bookkeeping of IOASIDs allocated through sets. */
  readonly #data = new Map<Ioasid, IoasidData>();
  /** IDs handed out by {@link IoasidSubsystem.allocGlobalPasid}. */
  readonly #globalPasids = new Set<Ioasid>();
  /** Live sets by set ID (`ioasid_sets`). */
  readonly #sets = new Map<number, IoasidSet>();
  readonly #setIds = new IdAllocator();
  readonly #globalChain = new IoasidNotifierChain();
  readonly #mmNotifiers: MmNotifierEntry[] = [];
  readonly #allocators = new AllocatorRegistry();
  #capacity = PCI_PASID_MAX;
  #capacityAvail = PCI_PASID_MAX;
  #hooks: IoasidChargeHooks | undefined = undefined;
  #locked = false;

  /**
   * Creates the subsystem: capacity 2^20 (`PCI_PASID_MAX`), no sets, the default allocator
   * active, and the ordered workqueue "ioasid_wq" on the scheduler (`ioasid_init`).
   * @param options - scheduler, cyclic allocation and log sink
   */
  constructor(options: IoasidSubsystemOptions = {}) {
    this.#scheduler = options.scheduler ?? new Scheduler();
    this.#log = options.log ?? noLog;
    this.#ids = new IdAllocator({ cyclic: options.cyclic ?? false });
    this.#wq = this.#scheduler.allocWorkqueue('ioasid_wq', { ordered: true });
  }

  // ---------------------------------------------------------------- locking and current task

  /** The scheduler the workqueue runs on. */
  get scheduler(): Scheduler {
    return this.#scheduler;
  }

  /**
   * Whether the IOASID lock is held right now, that is, whether code is running inside a notifier
   * callback, a custom allocator function or a charge hook.
   */
  get locked(): boolean {
    return this.#locked;
  }

  /**
   * Runs `fn` with {@link IoasidSubsystem.current} set to `task`, restoring the previous value
   * afterwards, also when `fn` throws.
   * @param task - the task to run as
   * @param fn - the code to run
   * @returns what `fn` returns
   */
  runAs<T>(task: IoasidTask, fn: () => T): T {
    const saved = this.current;
    this.current = task;
    try {
      return fn();
    } finally {
      this.current = saved;
    }
  }

  #lock<T>(what: string, fn: () => T): T {
    if (this.#locked) {
      throw new Error(
        `ioasid: deadlock: ${what}() takes the IOASID lock, which is already held (called from a notifier ` +
          'callback, custom allocator or charge hook); use the ...Locked variant or queueWork()',
      );
    }
    this.#locked = true;
    try {
      return fn();
    } finally {
      this.#locked = false;
    }
  }

  /** Runs `fn` with the lock held whether or not it already is (callbacks made by locked code). */
  #held<T>(fn: () => T): T {
    const was = this.#locked;
    this.#locked = true;
    try {
      return fn();
    } finally {
      this.#locked = was;
    }
  }

  // ---------------------------------------------------------------- capacity (§3.1)

  /** The system-wide number of IOASIDs (`ioasid_capacity`); initially 2^20. */
  get capacity(): number {
    return this.#capacity;
  }

  /** The capacity not yet given to sets or cgroups (`ioasid_capacity_avail`); initially 2^20. */
  get capacityAvail(): number {
    return this.#capacityAvail;
  }

  /**
   * Sets the system capacity and the available capacity to `total` (`ioasid_install_capacity`, v4
   * patch 04). Installable once: refused when the capacity already differs from the default 2^20.
   * As in the RFC, reservations made earlier are not carried over (it is meant for boot time).
   * Takes the IOASID lock.
   * @param total - the number of IOASIDs, an unsigned 32-bit integer
   * @returns true if installed; false, with a warning, if a capacity was already installed
   * @throws RangeError if `total` is not an unsigned 32-bit integer
   */
  installCapacity(total: number): boolean {
    checkU32('total', total);
    return this.#lock('installCapacity', () => {
      if (this.#capacity !== PCI_PASID_MAX) {
        this.#log('warn', 'IOASID capacity is already set.');
        return false;
      }
      this.#capacity = total;
      this.#capacityAvail = total;
      return true;
    });
  }

  /**
   * Takes `nr` IOASIDs from the available capacity (`ioasid_reserve_capacity`, v4 patch 04; used
   * by the cgroup controller). Takes the IOASID lock.
   * @param nr - how many; 0 means everything that remains
   * @returns the number reserved
   * @throws ErrnoError ENOSPC if `nr` exceeds {@link IoasidSubsystem.capacityAvail}
   * @throws RangeError if `nr` is not an unsigned 32-bit integer
   */
  reserveCapacity(nr: number): number {
    checkU32('nr', nr);
    return this.#lock('reserveCapacity', () => {
      if (nr > this.#capacityAvail) {
        throw new ErrnoError('ENOSPC', `cannot reserve ${nr} IOASIDs, ${this.#capacityAvail} available`);
      }
      const n = nr === 0 ? this.#capacityAvail : nr;
      this.#capacityAvail -= n;
      return n;
    });
  }

  /**
   * Gives `nr` reserved IOASIDs back to the available capacity (`ioasid_cancel_capacity`, v4 patch
   * 04). Takes the IOASID lock.
   * @param nr - how many
   * @returns the new available capacity
   * @throws ErrnoError EINVAL if the available capacity would exceed the total capacity
   * @throws RangeError if `nr` is not an unsigned 32-bit integer
   */
  cancelCapacity(nr: number): number {
    checkU32('nr', nr);
    return this.#lock('cancelCapacity', () => {
      if (nr + this.#capacityAvail > this.#capacity) {
        throw new ErrnoError('EINVAL', `cannot return ${nr} IOASIDs beyond the capacity`);
      }
      this.#capacityAvail += nr;
      return this.#capacityAvail;
    });
  }

  // ---------------------------------------------------------------- sets (§3.2)

  /**
   * Creates an IOASID set (`ioasid_set_alloc`, v4 patch 05). Checks, in this order: `type` is
   * valid (EINVAL); `quota` 0 becomes all available capacity; `quota` fits the available capacity
   * (ENOSPC); the token suits the type — MM: non-null (EINVAL) and no other MM set with this token
   * (EEXIST); NULL: `token` must be null (EINVAL); a set ID is free in `[0, capacityAvail]`
   * (ENOSPC). On success the quota is deducted from the available capacity and, for an MM set,
   * pending mm notifiers for the token are registered on the new set (DCP). Takes the IOASID lock.
   * @param token - the mm for an MM-type set, `null` for a NULL-type set
   * @param quota - the most IOASIDs the set may hold; 0 means all available capacity
   * @param type - one of {@link (IoasidSetType:variable)}
   * @returns the new set
   * @throws ErrnoError EINVAL, ENOSPC or EEXIST as above
   * @throws RangeError if `quota` is not an unsigned 32-bit integer
   */
  setAlloc(token: object | null, quota: number, type: number): IoasidSet {
    checkU32('quota', quota);
    return this.#lock('setAlloc', () => {
      if (type >= IOASID_SET_TYPE_NR) throw new ErrnoError('EINVAL', `invalid IOASID set type ${type}`);
      const q = quota === 0 ? this.#capacityAvail : quota;
      if (q > this.#capacityAvail) {
        throw new ErrnoError('ENOSPC', `quota ${q} exceeds the available capacity ${this.#capacityAvail}`);
      }
      if (type === IoasidSetType.MM) {
        if (token === null) throw new ErrnoError('EINVAL', 'MM-type IOASID set needs an mm token');
        if (this.#findMmSet(token) !== undefined) {
          throw new ErrnoError('EEXIST', 'an IOASID set already exists for this mm');
        }
      } else if (type === IoasidSetType.NULL) {
        if (token !== null) throw new ErrnoError('EINVAL', 'NULL-type IOASID set takes no token');
      } else {
        throw new ErrnoError('EINVAL', `invalid IOASID set type ${type}`);
      }
      if (shouldFail('ioasid.set_alloc')) throw new ErrnoError('ENOMEM', 'injected: ioasid_set allocation');
      const id = this.#setIds.alloc(0, Math.min(this.#capacityAvail, 0xffff_fffe));
      if (id < 0) throw new ErrnoError('ENOSPC', 'no free IOASID set ID');
      const set = newIoasidSet({
        id,
        token,
        type: type as IoasidSetType,
        quota: q,
        owner: this,
        nrIoasids: 0,
        freePending: false,
        registered: true,
      });
      this.#sets.set(id, set);
      this.#capacityAvail -= q;
      if (type === IoasidSetType.MM) {
        const chain = ioasidSetState(set).chain;
        for (const e of this.#mmNotifiers) {
          if (e.mm === token && e.set === null) {
            e.set = set;
            chain.register(e.nb);
          }
        }
      }
      return set;
    });
  }

  /**
   * Frees a set (`ioasid_set_free`, v4 patch 05, with DCP's `free_pending`). The token becomes
   * reusable at once; the set's quota is **not** returned to the available capacity (as the v4
   * code). Active mm notifiers of the set go back to the pending list. Takes the IOASID lock.
   *
   * Auto-destroy choice: when the set still holds IOASIDs the call fails with EBUSY and marks the
   * set free-pending; the set is then destroyed automatically when its last IOASID is released.
   * This is DCP's rule; v4 destroys any set whose last IOASID is released, which would make an
   * emptied set vanish under its owner.
   * @param set - a live set of this subsystem
   * @throws ErrnoError EINVAL if the set is not registered here; EBUSY if it holds IOASIDs
   */
  setFree(set: IoasidSet): void {
    this.#lock('setFree', () => {
      if (!this.#isLive(set)) throw new ErrnoError('EINVAL', 'IOASID set is not registered');
      const s = ioasidSetState(set);
      if (s.nrIoasids > 0) {
        s.freePending = true;
        throw new ErrnoError('EBUSY', `IOASID set ${s.id} still holds ${s.nrIoasids} IOASIDs`);
      }
      this.#destroySet(set);
    });
  }

  /**
   * The MM-type set whose token is `mm` (`ioasid_find_mm_set`). Takes the IOASID lock.
   * @param mm - a process address space
   * @returns the set, or `undefined` if there is none
   */
  findMmSet(mm: object): IoasidSet | undefined {
    return this.#lock('findMmSet', () => this.#findMmSet(mm));
  }

  /**
   * The set an IOASID belongs to (`ioasid_find_set`). Lock-free.
   * @param id - an IOASID
   * @returns its set
   * @throws ErrnoError ENOENT if `id` is not an allocated IOASID of a set
   */
  findSet(id: Ioasid): IoasidSet {
    const d = this.#data.get(id);
    if (d === undefined) throw new ErrnoError('ENOENT', `unknown IOASID ${id}`);
    return d.set;
  }

  /**
   * Calls `fn` for each IOASID of `set` in ascending order (`ioasid_set_for_each_ioasid`), over a
   * snapshot taken at the start. Does not take the lock; the caller keeps the set alive.
   * @param set - a set
   * @param fn - receives each IOASID
   */
  setForEachIoasid(set: IoasidSet, fn: (id: Ioasid) => void): void {
    for (const id of this.#sortedIds(set)) fn(id);
  }

  /**
   * Frees every IOASID of `set` as {@link IoasidSubsystem.free} would (`ioasid_free_all_in_set`):
   * unreferenced ones are released, referenced ones become FREE_PENDING and send FREE. Nothing
   * happens for an unregistered or empty set. Takes the IOASID lock.
   *
   * Deviation: the RFC also erases each IOASID from the set's table right away, leaving
   * FREE_PENDING IOASIDs counted in `nrIoasids` but invisible in the set; here they stay in the set
   * until their last reference is dropped, so the set's listing and count agree.
   * @param set - a set
   */
  freeAllInSet(set: IoasidSet): void {
    this.#lock('freeAllInSet', () => {
      if (!this.#isLive(set) || ioasidSetState(set).nrIoasids === 0) return;
      const errors: unknown[] = [];
      for (const id of this.#sortedIds(set)) {
        try {
          this.#freeLocked(set, id);
        } catch (e) {
          errors.push(e);
        }
      }
      if (errors.length > 0) throw errors[0];
    });
  }

  // ---------------------------------------------------------------- IOASIDs (§3.3-§3.6)

  /**
   * Allocates an IOASID in `set` (`ioasid_alloc`, v4 patches 05 and 16). Steps: the set must be
   * live; MM-type sets are charged to the cgroup (`chargeHooks.charge`); the set's quota must not
   * be reached (error log); the active allocator returns the lowest free ID in `[min, max]` (or the
   * custom allocator's ID, which is then recorded in the shared ID space and refused if already
   * taken); the IOASID starts IDLE with one reference and no SPID; ALLOC is sent on the set's chain.
   * Takes the IOASID lock.
   *
   * A charge hook refusing with an `ErrnoError` fails the allocation; any other exception from a
   * hook or a custom allocator propagates after the charge is undone.
   *
   * Deviation: the RFC undoes the cgroup charge only when the allocator or the recording fails;
   * here every failure after the charge (quota, range full, recording) uncharges, so a failed
   * allocation changes nothing.
   * @param set - a live set
   * @param min - lowest acceptable ID
   * @param max - highest acceptable ID (inclusive; 0xFFFF_FFFF is never returned)
   * @param priv - private data, returned by {@link IoasidSubsystem.find}
   * @returns the IOASID, or `INVALID_IOASID` on any failure (including an invalid range)
   */
  alloc(set: IoasidSet | null, min: Ioasid, max: Ioasid, priv?: unknown): Ioasid {
    return this.#lock('alloc', () => {
      if (set === null || !this.#isLive(set)) {
        this.#log('error', 'Invalid IOASID set');
        return INVALID_IOASID;
      }
      const s = ioasidSetState(set);
      const charged = s.type === IoasidSetType.MM && this.#hooks !== undefined;
      if (charged) {
        const hooks = this.#hooks!;
        try {
          hooks.charge(set);
        } catch (e) {
          if (e instanceof ErrnoError) return INVALID_IOASID;
          throw e;
        }
      }
      let ok = false;
      try {
        if (s.nrIoasids >= s.quota) {
          this.#log('error', `IOASID set ${s.id} out of quota ${s.quota}`);
          return INVALID_IOASID;
        }
        const top = Math.min(max, 0xffff_fffe);
        if (!isU32(min) || !isU32(max) || min > top) return INVALID_IOASID;
        if (shouldFail('ioasid.alloc')) return INVALID_IOASID;
        const group = this.#allocators.active;
        let id: number;
        if (group === null) {
          id = this.#ids.alloc(min, top);
          if (id < 0) return INVALID_IOASID;
        } else {
          const ops = group.ops;
          id = ops.alloc(min, top, ops.pdata);
          if (!isU32(id) || id === INVALID_IOASID) return INVALID_IOASID;
          if (!this.#ids.allocAt(id)) {
            this.#log('error', `Failed to record IOASID ${id} from the custom allocator`);
            ops.free(id, ops.pdata);
            return INVALID_IOASID;
          }
          group.ids.add(id);
        }
        const data: IoasidData = {
          id,
          set,
          spid: INVALID_IOASID,
          state: IoasidState.IDLE,
          refs: 1,
          private: priv,
          group,
        };
        this.#data.set(id, data);
        s.ioasids.set(id, data);
        s.nrIoasids += 1;
        ok = true;
        this.#notify(data, IoasidNotify.ALLOC, false, true);
        return id;
      } finally {
        if (charged && !ok) this.#hooks?.uncharge(set);
      }
    });
  }

  /**
   * Frees an IOASID (`ioasid_free`, v4 patch 06): drops the allocation reference and marks it
   * FREE_PENDING. If references remain, FREE is sent on the global chain and then on the set's
   * chain; if it was the last reference the IOASID is released at once without any event.
   * Repeated frees are no-ops (no second event). An unknown `id` only logs an error; a `set`
   * mismatch (a `null` set included) or a destroyed set only logs a warning; nothing changes then.
   * Takes the IOASID lock.
   * @param set - the IOASID's set; `null` does **not** bypass the check
   * @param id - the IOASID
   */
  free(set: IoasidSet | null, id: Ioasid): void {
    this.#lock('free', () => this.#freeLocked(set, id));
  }

  /**
   * Takes a reference on an IOASID (`ioasid_get`, v4 patch 06). Takes the IOASID lock; use
   * {@link IoasidSubsystem.getLocked} from notifier callbacks.
   * @param set - the IOASID's set, or `null` to skip the set check
   * @param id - the IOASID
   * @throws ErrnoError EINVAL for an unknown IOASID; EBUSY if it is FREE_PENDING; EACCES if it
   *   belongs to another set
   */
  get(set: IoasidSet | null, id: Ioasid): void {
    this.#lock('get', () => this.getLocked(set, id));
  }

  /**
   * {@link IoasidSubsystem.get} for callers that hold the IOASID lock (`ioasid_get_locked`), such
   * as notifier callbacks; usable anywhere.
   * @param set - the IOASID's set, or `null` to skip the set check
   * @param id - the IOASID
   * @throws ErrnoError EINVAL, EBUSY or EACCES as for `get`
   */
  getLocked(set: IoasidSet | null, id: Ioasid): void {
    const d = this.#data.get(id);
    if (d === undefined) throw new ErrnoError('EINVAL', `unknown IOASID ${id}`);
    if (d.state === IoasidState.FREE_PENDING) throw new ErrnoError('EBUSY', `IOASID ${id} is being freed`);
    if (set !== null && d.set !== set) throw new ErrnoError('EACCES', `IOASID ${id} is not in the set`);
    d.refs += 1;
  }

  /**
   * Drops a reference (`ioasid_put`, v4 patch 06); at zero the IOASID is released: allocator
   * free, removal from its set, `nrIoasids` − 1, cgroup uncharge for MM sets, and destruction of a
   * free-pending set that became empty. Works in FREE_PENDING state. Takes the IOASID lock; use
   * {@link IoasidSubsystem.putLocked} from notifier callbacks.
   * @param set - the IOASID's set, or `null` to skip the set check
   * @param id - the IOASID
   * @returns true if this put released the IOASID; false otherwise, and (with an error log, no
   *   change) for an unknown IOASID or a set mismatch
   */
  put(set: IoasidSet | null, id: Ioasid): boolean {
    return this.#lock('put', () => this.putLocked(set, id));
  }

  /**
   * {@link IoasidSubsystem.put} for callers that hold the IOASID lock (`ioasid_put_locked`), such
   * as notifier callbacks; usable anywhere.
   * @param set - the IOASID's set, or `null` to skip the set check
   * @param id - the IOASID
   * @returns as for `put`
   */
  putLocked(set: IoasidSet | null, id: Ioasid): boolean {
    const d = this.#data.get(id);
    if (d === undefined) {
      this.#log('error', `Trying to put unknown IOASID ${id}`);
      return false;
    }
    if (set !== null && d.set !== set) {
      this.#log('error', `Trying to put IOASID ${id} not in the set`);
      return false;
    }
    d.refs -= 1;
    if (d.refs > 0) return false;
    this.#held(() => this.#release(d));
    return true;
  }

  /**
   * The private data of an IOASID (`ioasid_find`, merged and v4). Lock-free; FREE_PENDING IOASIDs
   * are still found (as the v4 code).
   * @param set - the expected set, or `null` for any
   * @param id - the IOASID
   * @param getter - optional check of the private data (e.g. taking a reference on it); when it
   *   returns false the result is `undefined`
   * @returns the private data (`undefined` if none or refused by `getter`)
   * @throws ErrnoError ENOENT for an unknown IOASID; EACCES if it belongs to another set
   */
  find(set: IoasidSet | null, id: Ioasid, getter?: (priv: unknown) => boolean): unknown {
    const d = this.#data.get(id);
    if (d === undefined) throw new ErrnoError('ENOENT', `unknown IOASID ${id}`);
    if (set !== null && d.set !== set) throw new ErrnoError('EACCES', `IOASID ${id} is not in the set`);
    const priv = d.private;
    if (getter !== undefined && !getter(priv)) return undefined;
    return priv;
  }

  /**
   * Attaches private data to an IOASID that has none (`ioasid_attach_data`, v4 patches 02-03).
   * Takes the IOASID lock.
   * @param id - the IOASID
   * @param data - the data
   * @throws ErrnoError ENOENT for an unknown IOASID; EBUSY if it already has private data
   */
  attachData(id: Ioasid, data: unknown): void {
    this.#lock('attachData', () => {
      const d = this.#data.get(id);
      if (d === undefined) throw new ErrnoError('ENOENT', `unknown IOASID ${id}`);
      if (d.private !== undefined) throw new ErrnoError('EBUSY', `IOASID ${id} already has private data`);
      d.private = data;
    });
  }

  /**
   * Clears an IOASID's private data (`ioasid_detach_data`). Unknown IOASID → warning only. Takes
   * the IOASID lock.
   * @param id - the IOASID
   */
  detachData(id: Ioasid): void {
    this.#lock('detachData', () => {
      const d = this.#data.get(id);
      if (d === undefined) {
        this.#log('warn', `Trying to detach data from unknown IOASID ${id}`);
        return;
      }
      d.private = undefined;
    });
  }

  /**
   * Replaces an IOASID's private data (`ioasid_set_data`, merged v5.7+). Takes the IOASID lock.
   * @param id - the IOASID
   * @param data - the new data
   * @throws ErrnoError ENOENT for an unknown IOASID
   */
  setData(id: Ioasid, data: unknown): void {
    this.#lock('setData', () => {
      const d = this.#data.get(id);
      if (d === undefined) throw new ErrnoError('ENOENT', `unknown IOASID ${id}`);
      d.private = data;
    });
  }

  /**
   * Gives an IOASID a set-private ID (`ioasid_attach_spid`, v4 patch 08) and sends BIND on the
   * set's chain. An existing SPID of `id` is overwritten; a SPID already used by any IOASID of the
   * set — `id` itself included, as the RFC code searches the whole set — is refused. Takes the
   * IOASID lock.
   * @param id - the IOASID
   * @param spid - the SPID
   * @throws ErrnoError EINVAL if `spid` is `INVALID_IOASID` or already used in the set; ENOENT for
   *   an unknown IOASID
   * @throws RangeError if `spid` is not an unsigned 32-bit integer
   */
  attachSpid(id: Ioasid, spid: Ioasid): void {
    checkU32('spid', spid);
    this.#lock('attachSpid', () => {
      if (spid === INVALID_IOASID) throw new ErrnoError('EINVAL', 'invalid SPID');
      const d = this.#data.get(id);
      if (d === undefined) throw new ErrnoError('ENOENT', `unknown IOASID ${id}`);
      if (this.#findBySpid(d.set, spid) !== undefined) {
        throw new ErrnoError('EINVAL', `SPID ${spid} is already used in the set`);
      }
      d.spid = spid;
      this.#notify(d, IoasidNotify.BIND, false, true);
    });
  }

  /**
   * Removes an IOASID's SPID (`ioasid_detach_spid`, v4 patch 08): sends UNBIND on the set's chain
   * (the payload still carries the SPID), then clears it. Unknown IOASID or no SPID → error log
   * only. Takes the IOASID lock.
   * @param id - the IOASID
   */
  detachSpid(id: Ioasid): void {
    this.#lock('detachSpid', () => {
      const d = this.#data.get(id);
      if (d === undefined || d.spid === INVALID_IOASID) {
        this.#log('error', `Invalid IOASID ${id} or no SPID to detach`);
        return;
      }
      try {
        this.#notify(d, IoasidNotify.UNBIND, false, true);
      } finally {
        d.spid = INVALID_IOASID;
      }
    });
  }

  /**
   * Looks an IOASID up by SPID in a set (`ioasid_find_by_spid`, v4 patch 08), optionally taking a
   * reference (without a FREE_PENDING check, as the RFC). Takes the IOASID lock.
   * @param set - the set
   * @param spid - the SPID; `INVALID_IOASID` never matches
   * @param get - take a reference on the IOASID found
   * @returns the IOASID, or `INVALID_IOASID` if the set is not live (warning) or has no such SPID
   */
  findBySpid(set: IoasidSet, spid: Ioasid, get: boolean): Ioasid {
    return this.#lock('findBySpid', () => {
      if (!this.#isLive(set)) {
        this.#log('warn', 'Invalid set');
        return INVALID_IOASID;
      }
      if (spid === INVALID_IOASID) return INVALID_IOASID;
      const d = this.#findBySpid(set, spid);
      if (d === undefined) return INVALID_IOASID;
      if (get) d.refs += 1;
      return d.id;
    });
  }

  /**
   * A snapshot of an IOASID's bookkeeping, for tests and tools. Lock-free.
   * @param id - an IOASID
   * @returns the snapshot, or `undefined` if `id` is not an allocated IOASID of a set (global
   *   PASIDs included)
   */
  ioasidInfo(id: Ioasid): IoasidInfo | undefined {
    const d = this.#data.get(id);
    if (d === undefined) return undefined;
    return { id: d.id, set: d.set, spid: d.spid, state: d.state, refs: d.refs, private: d.private };
  }

  // ---------------------------------------------------------------- notifiers (§3.7)

  /**
   * Registers a notifier block (`ioasid_register_notifier`, v4 patch 09) on the global chain
   * (`set` null: FREE events of every set) or on a set's chain (ALLOC, FREE, BIND, UNBIND of that
   * set). Higher priorities are called first, equal ones in registration order. Registering a
   * block twice on one chain only logs a warning ("double register", as kernels of the RFC's time).
   * Does not take the IOASID lock.
   * @param set - a set, or `null` for the global chain
   * @param nb - the block
   */
  registerNotifier(set: IoasidSet | null, nb: IoasidNotifierBlock): void {
    const chain = set === null ? this.#globalChain : ioasidSetState(set).chain;
    if (!chain.register(nb)) this.#log('warn', 'notifier double register detected');
  }

  /**
   * Unregisters a notifier block (`ioasid_unregister_notifier`). A block registered through
   * {@link IoasidSubsystem.registerNotifierMm} is refused with a warning (DCP); an unknown block is
   * ignored. Does not take the IOASID lock.
   * @param set - the set it was registered on, or `null` for the global chain
   * @param nb - the block
   */
  unregisterNotifier(set: IoasidSet | null, nb: IoasidNotifierBlock): void {
    if (this.#mmNotifiers.some((e) => e.nb === nb)) {
      this.#log('warn', 'Cannot unregister NB from pending list');
      return;
    }
    const chain = set === null ? this.#globalChain : ioasidSetState(set).chain;
    chain.unregister(nb);
  }

  /**
   * Registers a notifier block for the MM-type set of `mm`, which may not exist yet
   * (`ioasid_register_notifier_mm`, V4 patch 10, DCP body). Without such a set the block waits on
   * a pending list and is attached when `setAlloc(mm, ..., MM)` creates it; when that set is
   * destroyed the block returns to pending. Takes the IOASID lock.
   * @param mm - the address space
   * @param nb - the block
   * @throws ErrnoError EINVAL if `mm` is null; EBUSY if this `mm` and `nb` are already registered,
   *   or if the mm's set exists and already holds IOASIDs (events are not replayed; warning)
   */
  registerNotifierMm(mm: object, nb: IoasidNotifierBlock): void {
    this.#lock('registerNotifierMm', () => {
      if ((mm as object | null) === null) throw new ErrnoError('EINVAL', 'no mm');
      if (this.#mmNotifiers.some((e) => e.mm === mm && e.nb === nb)) {
        throw new ErrnoError('EBUSY', 'notifier already registered for this mm');
      }
      const set = this.#findMmSet(mm);
      if (set !== undefined) {
        const s = ioasidSetState(set);
        if (s.nrIoasids > 0) {
          this.#log('warn', `IOASID set ${s.id} not empty`);
          throw new ErrnoError('EBUSY', `IOASID set ${s.id} already holds IOASIDs`);
        }
        s.chain.register(nb);
      }
      this.#mmNotifiers.push({ mm, nb, set: set ?? null });
    });
  }

  /**
   * Removes an mm notifier registration (`ioasid_unregister_notifier_mm`, DCP): drops the pending
   * entry and, if active, unregisters the block from the set. Unknown pair → warning. Takes the
   * IOASID lock.
   * @param mm - the address space
   * @param nb - the block
   */
  unregisterNotifierMm(mm: object, nb: IoasidNotifierBlock): void {
    this.#lock('unregisterNotifierMm', () => {
      const i = this.#mmNotifiers.findIndex((e) => e.mm === mm && e.nb === nb);
      const e = this.#mmNotifiers[i];
      if (e === undefined) {
        this.#log('warn', 'No IOASID notifier registered for this mm');
        return;
      }
      this.#mmNotifiers.splice(i, 1);
      if (e.set !== null) ioasidSetState(e.set).chain.unregister(nb);
    });
  }

  /**
   * Whether an mm notifier registration is active (attached to a live set) rather than pending.
   * @param mm - the address space
   * @param nb - the block
   * @returns true if active, false if pending, `undefined` if not registered
   */
  mmNotifierActive(mm: object, nb: IoasidNotifierBlock): boolean | undefined {
    const e = this.#mmNotifiers.find((x) => x.mm === mm && x.nb === nb);
    return e === undefined ? undefined : e.set !== null;
  }

  // ---------------------------------------------------------------- workqueue (§3.8)

  /** The ordered workqueue "ioasid_wq" (`ioasid_wq`, v4 patch 13). */
  get workqueue(): Workqueue {
    return this.#wq;
  }

  /**
   * Queues cleanup work on "ioasid_wq" (`ioasid_queue_work`, v4 patch 13): items run one at a time
   * in queueing order when the scheduler runs. Lock-free, so callable from notifier callbacks.
   * @param work - the work item
   * @returns false if it was already pending, else true
   */
  queueWork(work: Work): boolean {
    return this.#wq.queueWork(work);
  }

  // ---------------------------------------------------------------- custom allocators (§2.2)

  /**
   * Registers a custom allocator (`ioasid_register_allocator`, merged v5.7+). The first one becomes
   * active only while the default allocator holds no IDs (global PASIDs included); ops whose
   * `alloc` and `free` are the same functions as a registered one's join it and share its ID space;
   * other ones are queued behind the active one. IDs a custom allocator returns are still recorded
   * in the shared ID space, and an ID already taken fails the allocation. Takes the IOASID lock.
   * @param ops - the allocator
   * @throws ErrnoError EAGAIN if it would be the first custom allocator while IDs are outstanding;
   *   EEXIST if `ops` is already registered
   */
  registerAllocator(ops: IoasidAllocatorOps): void {
    this.#lock('registerAllocator', () => this.#allocators.register(ops, this.#ids.size > 0, this.#log));
  }

  /**
   * Unregisters a custom allocator (`ioasid_unregister_allocator`). When the last ops of a sharing
   * group goes, the group is removed (warning if it still has outstanding IDs; those stay valid and
   * are later freed without calling the removed group's `free`), and the next registered group, or
   * the default allocator, becomes active. Unknown ops → warning. Takes the IOASID lock.
   * @param ops - the allocator
   */
  unregisterAllocator(ops: IoasidAllocatorOps): void {
    this.#lock('unregisterAllocator', () => this.#allocators.unregister(ops, this.#log));
  }

  // ---------------------------------------------------------------- global PASIDs (iommu-core)

  /**
   * Allocates a PASID as today's IOMMU core does for a device (`iommu_alloc_global_pasid`): the
   * lowest free ID in `[IOMMU_FIRST_GLOBAL_PASID, maxPasids - 1]` of the ID space shared with the
   * IOASID sets, so the two models never hand out the same ID. Such PASIDs belong to no set and
   * are invisible to set lookups. Lock-free (the IDA has its own lock).
   * @param maxPasids - the device's PASID count (`dev->iommu->max_pasids`)
   * @returns the PASID, or `IOMMU_PASID_INVALID` if `maxPasids` is 0 or the range is full
   * @throws RangeError if `maxPasids` is not an unsigned 32-bit integer
   */
  allocGlobalPasid(maxPasids: number): Ioasid {
    checkU32('maxPasids', maxPasids);
    if (maxPasids === 0) return IOMMU_PASID_INVALID;
    const top = Math.min(maxPasids - 1, 0xffff_fffe);
    if (top < IOMMU_FIRST_GLOBAL_PASID) return IOMMU_PASID_INVALID;
    if (shouldFail('ioasid.global_pasid_alloc')) return IOMMU_PASID_INVALID;
    const id = this.#ids.alloc(IOMMU_FIRST_GLOBAL_PASID, top);
    if (id < 0) return IOMMU_PASID_INVALID;
    this.#globalPasids.add(id);
    return id;
  }

  /**
   * Frees a global PASID (`iommu_free_global_pasid`). `IOMMU_PASID_INVALID`, or an ID that is not
   * a global PASID (`ida_free` of an unallocated ID), → warning, ignored.
   * @param pasid - the PASID
   */
  freeGlobalPasid(pasid: Ioasid): void {
    if (pasid === IOMMU_PASID_INVALID) {
      this.#log('warn', 'freeing IOMMU_PASID_INVALID');
      return;
    }
    if (!this.#globalPasids.delete(pasid)) {
      this.#log('warn', `freeing global PASID ${pasid}, which is not allocated`);
      return;
    }
    this.#ids.free(pasid);
  }

  // ---------------------------------------------------------------- cgroup hooks (§3.9)

  /** The installed cgroup charge hooks, or `undefined` (the kernel's stubs: no charging). */
  get chargeHooks(): IoasidChargeHooks | undefined {
    return this.#hooks;
  }

  /**
   * Installs or removes the cgroup charge hooks (what `CONFIG_CGROUP_IOASIDS` links in).
   * @param hooks - the hooks, or `undefined` for none
   */
  setChargeHooks(hooks: IoasidChargeHooks | undefined): void {
    this.#hooks = hooks;
  }

  // ---------------------------------------------------------------- internals

  #isLive(set: IoasidSet): boolean {
    return this.#sets.get(set.id) === set;
  }

  #findMmSet(mm: object): IoasidSet | undefined {
    for (const set of this.#sets.values()) {
      if (set.type === IoasidSetType.MM && set.token === mm) return set;
    }
    return undefined;
  }

  #findBySpid(set: IoasidSet, spid: Ioasid): IoasidData | undefined {
    for (const d of ioasidSetState(set).ioasids.values()) if (d.spid === spid) return d;
    return undefined;
  }

  #sortedIds(set: IoasidSet): Ioasid[] {
    return [...ioasidSetState(set).ioasids.keys()].sort((a, b) => a - b);
  }

  #freeLocked(set: IoasidSet | null, id: Ioasid): void {
    const d = this.#data.get(id);
    if (d === undefined) {
      this.#log('error', `Trying to free unknown IOASID ${id}`);
      return;
    }
    if (d.set !== set) {
      this.#log('warn', `Cannot free IOASID ${id} from another set`);
      return;
    }
    if (!this.#isLive(d.set)) {
      this.#log('warn', `IOASID ${id} has no live set`);
      return;
    }
    if (d.state === IoasidState.FREE_PENDING) return;
    d.state = IoasidState.FREE_PENDING;
    d.refs -= 1;
    if (d.refs === 0) {
      this.#release(d);
      return;
    }
    this.#notify(d, IoasidNotify.FREE, true, true);
  }

  /** Releases an IOASID whose last reference is gone (`ioasid_do_free_locked`). */
  #release(d: IoasidData): void {
    const group: AllocatorGroup | null = d.group;
    if (group !== null) {
      group.ids.delete(d.id);
      if (group.registered) group.ops.free(d.id, group.ops.pdata);
    }
    this.#ids.free(d.id);
    this.#data.delete(d.id);
    const s = ioasidSetState(d.set);
    s.ioasids.delete(d.id);
    s.nrIoasids -= 1;
    try {
      if (s.type === IoasidSetType.MM) this.#hooks?.uncharge(d.set);
    } finally {
      if (s.nrIoasids === 0 && s.freePending && s.registered) this.#destroySet(d.set);
    }
  }

  #destroySet(set: IoasidSet): void {
    const s = ioasidSetState(set);
    this.#sets.delete(s.id);
    this.#setIds.free(s.id);
    s.registered = false;
    s.chain.clear();
    for (const e of this.#mmNotifiers) if (e.set === set) e.set = null;
  }

  /** Sends `event` about `d` (`ioasid_notify`): global chain first, then the set's chain. */
  #notify(d: IoasidData, event: IoasidNotify, global: boolean, setChain: boolean): void {
    const args: IoasidNbArgs = { id: d.id, spid: d.spid, set: d.set, pdata: d.private };
    this.#held(() => {
      let failed = false;
      let error: unknown;
      if (global) {
        try {
          this.#globalChain.call(event, args);
        } catch (e) {
          failed = true;
          error = e;
        }
      }
      if (setChain) {
        try {
          ioasidSetState(d.set).chain.call(event, args);
        } catch (e) {
          if (!failed) {
            failed = true;
            error = e;
          }
        }
      }
      if (failed) throw error;
    });
  }
}
