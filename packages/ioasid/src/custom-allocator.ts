/**
 * Custom IOASID allocators (`struct ioasid_allocator_ops`, `ioasid_register_allocator` and
 * `ioasid_unregister_allocator` of merged kernels v5.7 to about v6.3, unchanged in the v4 RFC).
 * A paravirtualised guest uses one to obtain PASIDs from its host.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { Ioasid } from './constants.js';

/**
 * A custom IOASID allocator (`struct ioasid_allocator_ops`).
 *
 * @remarks
 * Allocators whose `alloc` **and** `free` are the very same function objects share one ID space:
 * registering a second such ops object joins the first one's group instead of queueing a new
 * allocator. Both functions are called with the IOASID lock held, so they must not call the
 * subsystem's locking functions (doing so throws the deadlock error).
 */
export interface IoasidAllocatorOps {
  /**
   * Allocates an ID in `[min, max]` (inclusive).
   * @param min - lowest acceptable ID
   * @param max - highest acceptable ID
   * @param pdata - the `pdata` of the group's first registered ops
   * @returns the ID, or `INVALID_IOASID` on failure
   */
  alloc(min: Ioasid, max: Ioasid, pdata: unknown): Ioasid;
  /**
   * Releases an ID obtained from {@link IoasidAllocatorOps.alloc}.
   * @param id - the ID
   * @param pdata - the `pdata` of the group's first registered ops
   */
  free(id: Ioasid, pdata: unknown): void;
  /** Private data handed to `alloc` and `free`. */
  readonly pdata?: unknown;
}

/**
 * Allocators sharing one pair of helper functions, hence one ID space (`struct
 * ioasid_allocator_data`). Internal to the package.
 */
export class AllocatorGroup {
  /** The ops objects of the group, in registration order; the first one's `pdata` is used. */
  readonly members: IoasidAllocatorOps[];
  /** IDs handed out through this group and not yet released. */
  readonly ids = new Set<Ioasid>();
  /** Whether the group is still registered. */
  registered = true;

  /** @param first - the ops that created the group */
  constructor(first: IoasidAllocatorOps) {
    this.members = [first];
  }

  /** The ops whose functions and `pdata` the group uses. */
  get ops(): IoasidAllocatorOps {
    const ops = this.members[0];
    if (ops === undefined) throw new Error('ioasid: empty allocator group');
    return ops;
  }

  /**
   * Whether `ops` has the group's helper functions (`use_same_ops`).
   * @param ops - another ops object
   */
  sameFunctions(ops: IoasidAllocatorOps): boolean {
    return ops.alloc === this.ops.alloc && ops.free === this.ops.free;
  }
}

/**
 * The list of registered custom allocators and which one is active. Internal to the package.
 */
export class AllocatorRegistry {
  readonly #groups: AllocatorGroup[] = [];
  #active: AllocatorGroup | null = null;

  /** The active custom allocator group; `null` when the default allocator is active. */
  get active(): AllocatorGroup | null {
    return this.#active;
  }

  /**
   * Registers `ops` per the merged rules.
   * @param ops - the allocator
   * @param defaultHasIds - whether the default allocator holds IDs now
   * @param log - warning/error sink
   * @throws ErrnoError EEXIST when `ops` is already registered; EAGAIN when it would be the first
   *   custom allocator while the default one holds IDs
   */
  register(
    ops: IoasidAllocatorOps,
    defaultHasIds: boolean,
    log: (level: 'warn' | 'error', message: string) => void,
  ): void {
    if (this.#groups.length === 0) {
      if (defaultHasIds) {
        log('warn', 'Default allocator active with outstanding IOASID');
        throw new ErrnoError('EAGAIN', 'default IOASID allocator holds IDs');
      }
      const group = new AllocatorGroup(ops);
      this.#groups.push(group);
      this.#active = group;
      return;
    }
    if (this.#groups.some((g) => g.members.includes(ops))) {
      log('error', 'IOASID allocator already registered');
      throw new ErrnoError('EEXIST', 'IOASID allocator already registered');
    }
    const sharing = this.#groups.find((g) => g.sameFunctions(ops));
    if (sharing !== undefined) {
      sharing.members.push(ops);
      return;
    }
    this.#groups.push(new AllocatorGroup(ops));
  }

  /**
   * Unregisters `ops`; removes its group when it was the last member, then activates the next
   * registered group or the default allocator.
   * @param ops - the allocator
   * @param log - warning/error sink
   */
  unregister(ops: IoasidAllocatorOps, log: (level: 'warn' | 'error', message: string) => void): void {
    const gi = this.#groups.findIndex((g) => g.members.includes(ops));
    const group = this.#groups[gi];
    if (group === undefined) {
      log('warn', 'Unregistering an IOASID allocator that is not registered');
      return;
    }
    if (group.members.length > 1) {
      group.members.splice(group.members.indexOf(ops), 1);
      return;
    }
    this.#groups.splice(gi, 1);
    group.registered = false;
    if (group.ids.size > 0) {
      log('warn', `IOASID allocator unregistered with ${group.ids.size} outstanding IOASIDs`);
    }
    if (this.#groups.length === 0) this.#active = null;
    else if (this.#active === group) this.#active = this.#groups[0] ?? null;
  }
}
