/**
 * IOASID sets (`struct ioasid_set` of the v4 RFC, patch 05 "Redefine IOASID set and allocation
 * APIs", with the `free_pending` flag of Intel's DCP tree).
 */

import type { Ioasid, IoasidSetType, IoasidState } from './constants.js';
import type { AllocatorGroup } from './custom-allocator.js';
import { IoasidNotifierChain } from './notifier.js';

/** Per-IOASID bookkeeping (`struct ioasid_data`). Internal to the package. */
export interface IoasidData {
  /** The IOASID. */
  readonly id: Ioasid;
  /** Its set. */
  readonly set: IoasidSet;
  /** Set-private ID, `INVALID_IOASID` when none. */
  spid: Ioasid;
  /** Life-cycle state. */
  state: IoasidState;
  /** Reference count; the allocation holds the first reference. */
  refs: number;
  /** Private data; `undefined` when none. */
  private: unknown;
  /** The custom allocator group that handed the ID out; `null` for the default allocator. */
  readonly group: AllocatorGroup | null;
}

/** Mutable state of a set, reachable only from inside the package. */
export interface IoasidSetState {
  readonly id: number;
  readonly token: object | null;
  readonly type: IoasidSetType;
  readonly quota: number;
  /** The subsystem instance that created the set (identity only). */
  readonly owner: object;
  nrIoasids: number;
  freePending: boolean;
  registered: boolean;
  /** The set's IOASIDs (`xa`), keyed by IOASID. */
  readonly ioasids: Map<Ioasid, IoasidData>;
  /** The set's own notifier chain (`nh`). */
  readonly chain: IoasidNotifierChain;
}

let createSet: (init: Omit<IoasidSetState, 'ioasids' | 'chain'>) => IoasidSet;
let stateOfSet: (set: IoasidSet) => IoasidSetState;

/**
 * An IOASID set (`struct ioasid_set`, v4 RFC): a group of IOASIDs sharing a quota, a token, a
 * notifier chain and a set-private ID (SPID) namespace.
 *
 * @remarks
 * Sets are created by `IoasidSubsystem.setAlloc` and destroyed by `IoasidSubsystem.setFree` (or
 * automatically when the last IOASID of a set marked free-pending is released). The object is a
 * read-only view; it stays usable as an identity after destruction, with {@link IoasidSet.registered}
 * false.
 */
export class IoasidSet {
  readonly #s: IoasidSetState;

  static {
    createSet = (init) => new IoasidSet({ ...init, ioasids: new Map(), chain: new IoasidNotifierChain() });
    stateOfSet = (set) => set.#s;
  }

  private constructor(state: IoasidSetState) {
    this.#s = state;
  }

  /** The set ID (`id`): a small integer unique among the live sets of one subsystem, lowest free first. */
  get id(): number {
    return this.#s.id;
  }

  /** The token: the process address space (mm) for MM-type sets, `null` for NULL-type sets. */
  get token(): object | null {
    return this.#s.token;
  }

  /** The set type, one of {@link (IoasidSetType:variable)}. */
  get type(): IoasidSetType {
    return this.#s.type;
  }

  /** The most IOASIDs the set may hold at once; deducted from the system capacity at creation. */
  get quota(): number {
    return this.#s.quota;
  }

  /**
   * How many IOASIDs the set holds (`nr_ioasids`), including FREE_PENDING ones that still have
   * references.
   */
  get nrIoasids(): number {
    return this.#s.nrIoasids;
  }

  /**
   * Whether `setFree` was refused with EBUSY because IOASIDs remained (DCP `free_pending`); the set
   * is then destroyed when its last IOASID is released.
   */
  get freePending(): boolean {
    return this.#s.freePending;
  }

  /** Whether the set is live (registered in the subsystem's set table); false after destruction. */
  get registered(): boolean {
    return this.#s.registered;
  }
}

/**
 * Creates a set object (internal).
 * @param init - the initial state
 * @returns the new set
 */
export function newIoasidSet(init: Omit<IoasidSetState, 'ioasids' | 'chain'>): IoasidSet {
  return createSet(init);
}

/**
 * The mutable state behind a set (internal).
 * @param set - a set
 * @returns its state
 */
export function ioasidSetState(set: IoasidSet): IoasidSetState {
  return stateOfSet(set);
}
