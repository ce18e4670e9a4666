/**
 * Notifier blocks and atomic notifier chains of the IOASID allocator (v4 RFC patch 09 "Introduce
 * notification APIs"; the chain semantics of kernel/notifier.c).
 */

import type { Ioasid, IoasidNotify } from './constants.js';
import type { IoasidSet } from './ioasid-set.js';

/**
 * The payload every IOASID notifier callback receives (`struct ioasid_nb_args`, v4 RFC): a snapshot
 * taken when the event is sent.
 */
export interface IoasidNbArgs {
  /** The IOASID the event is about. */
  readonly id: Ioasid;
  /** Its set-private ID, or `INVALID_IOASID` when it has none. */
  readonly spid: Ioasid;
  /** The set the IOASID belongs to. */
  readonly set: IoasidSet;
  /** The IOASID's private data (`private` of `ioasid_alloc`, or attached later); `undefined` if none. */
  readonly pdata: unknown;
}

/**
 * A subscriber to IOASID events (`struct notifier_block` registered with `ioasid_register_notifier`).
 *
 * @remarks
 * Callbacks run in "atomic context": the IOASID lock is held while they run, so they must not call
 * the subsystem's locking functions (`alloc`, `free`, `get`, `put`, ...). The subsystem detects such
 * a call and throws an `Error` naming the deadlock; use `getLocked`/`putLocked` instead, or queue
 * work with `queueWork`. The same block object identifies the registration (unregister with it).
 */
export interface IoasidNotifierBlock {
  /**
   * Called for each event (`notifier_call`); the return value of the kernel callback is ignored by
   * the IOASID senders, so this one returns nothing.
   * @param event - the event, one of {@link (IoasidNotify:variable)}
   * @param args - which IOASID, its SPID, set and private data
   */
  notifierCall(event: IoasidNotify, args: IoasidNbArgs): void;
  /**
   * Position in the chain: higher priorities are called first, equal ones in registration order.
   * Use {@link (IoasidPrio:variable)} values (CPU 3, IOMMU 2, DEVICE 1, LAST 0); default 0.
   */
  readonly priority?: number;
}

/**
 * An atomic notifier chain (`struct atomic_notifier_head`): blocks sorted by descending priority,
 * equal priorities in registration order. Internal to the package.
 */
export class IoasidNotifierChain {
  #blocks: IoasidNotifierBlock[] = [];

  /** Number of registered blocks. */
  get length(): number {
    return this.#blocks.length;
  }

  /**
   * Whether `nb` is on this chain.
   * @param nb - a notifier block
   */
  has(nb: IoasidNotifierBlock): boolean {
    return this.#blocks.includes(nb);
  }

  /**
   * Inserts `nb` after every block of greater or equal priority (`notifier_chain_register`).
   * @param nb - the block
   * @returns false, changing nothing, when `nb` is already on the chain
   */
  register(nb: IoasidNotifierBlock): boolean {
    if (this.#blocks.includes(nb)) return false;
    const prio = nb.priority ?? 0;
    let at = this.#blocks.findIndex((b) => (b.priority ?? 0) < prio);
    if (at < 0) at = this.#blocks.length;
    this.#blocks.splice(at, 0, nb);
    return true;
  }

  /**
   * Removes `nb` (`notifier_chain_unregister`).
   * @param nb - the block
   * @returns false when it was not on the chain
   */
  unregister(nb: IoasidNotifierBlock): boolean {
    const at = this.#blocks.indexOf(nb);
    if (at < 0) return false;
    this.#blocks.splice(at, 1);
    return true;
  }

  /**
   * Calls every block registered when the call starts, in chain order (`atomic_notifier_call_chain`).
   * A block that throws does not stop the others; the first error is rethrown after the last block.
   * @param event - the event
   * @param args - the payload
   */
  call(event: IoasidNotify, args: IoasidNbArgs): void {
    let failed = false;
    let error: unknown;
    for (const nb of [...this.#blocks]) {
      try {
        nb.notifierCall(event, args);
      } catch (e) {
        if (!failed) {
          failed = true;
          error = e;
        }
      }
    }
    if (failed) throw error;
  }

  /** Removes every block. */
  clear(): void {
    this.#blocks = [];
  }
}
