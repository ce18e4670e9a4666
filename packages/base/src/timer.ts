/**
 * Kernel timers on virtual time, after kernel/time/timer.c and include/linux/timer.h.
 */

import type { SchedCore, TimerEntry } from './sched-core.js';

/**
 * A timer callback (the kernel's `void (*function)(struct timer_list *)`).
 * @param timer - the timer that expired; the callback may re-arm it
 */
export type TimerFn = (timer: Timer) => void;

/**
 * A one-shot timer on a scheduler's virtual clock (`struct timer_list`, kernel/time/timer.c).
 *
 * @remarks
 * Create one with `Scheduler.createTimer`. Times are absolute virtual nanoseconds. A timer fires
 * only when no task is ready (running code takes no virtual time): the scheduler then moves `now`
 * forward to the earliest expiry and runs that timer's callback as one task. Timers with equal
 * expiry fire in the order they were armed. A timer armed in the past fires at the next opportunity
 * without moving `now` backwards. Unlike jiffies-based timers there is no granularity rounding.
 */
export interface Timer {
  /** The timer's name, used in traces (`'timer:<name>'`). */
  readonly name: string;
  /** Whether the timer is armed and has not fired yet (`timer_pending`). */
  readonly pending: boolean;
  /** Whether the callback is currently executing (on the current stack). */
  readonly running: boolean;
  /** The absolute expiry of the latest arming, in ns; `undefined` if never armed. */
  readonly expires: number | undefined;
  /**
   * (Re)arm the timer to fire at absolute virtual time `expiresNs` (`mod_timer`).
   * @param expiresNs - absolute virtual time in nanoseconds, finite and non-negative
   * @returns whether the timer was pending before (then its old expiry is forgotten)
   * @throws RangeError if `expiresNs` is not a finite, non-negative number
   */
  mod(expiresNs: number): boolean;
  /**
   * (Re)arm the timer to fire `delayNs` after the current virtual time (`mod_timer(t, jiffies + d)`).
   * @param delayNs - relative delay in nanoseconds, finite and non-negative
   * @returns whether the timer was pending before
   * @throws RangeError if `delayNs` is not a finite, non-negative number
   */
  modAfter(delayNs: number): boolean;
  /**
   * Arm a timer that is not pending (`add_timer`).
   * @param expiresNs - absolute virtual time in nanoseconds
   * @throws Error if the timer is already pending (a kernel BUG); RangeError for a bad time
   */
  add(expiresNs: number): void;
  /**
   * Disarm the timer (`timer_delete`, formerly `del_timer`). A running callback is not waited for.
   * @returns whether the timer was pending
   */
  del(): boolean;
  /**
   * Disarm the timer and make sure its callback is not running (`timer_delete_sync`). As tasks are
   * synchronous, a running callback can only be on the caller's own stack, which is a deadlock.
   * @returns whether the timer was pending
   * @throws Error (deadlock) if called while the timer's callback is executing
   */
  delSync(): boolean;
}

function checkTime(ns: number, what: string): void {
  if (!Number.isFinite(ns) || ns < 0) throw new RangeError(`${what} ${ns} is not a finite, non-negative ns`);
}

/** The implementation behind {@link Timer}; also used inside delayed work. */
export class TimerImpl implements Timer {
  readonly name: string;
  readonly core: SchedCore;
  #fn: TimerFn;
  #entry: TimerEntry | null = null;
  #running = 0;
  #expires: number | undefined;
  readonly #fire = (): void => {
    this.#entry = null;
    this.#running++;
    try {
      this.#fn(this);
    } finally {
      this.#running--;
    }
  };

  constructor(core: SchedCore, fn: TimerFn, name: string) {
    this.core = core;
    this.#fn = fn;
    this.name = name;
  }

  get pending(): boolean {
    return this.#entry !== null;
  }

  get running(): boolean {
    return this.#running > 0;
  }

  get expires(): number | undefined {
    return this.#expires;
  }

  mod(expiresNs: number): boolean {
    checkTime(expiresNs, 'expiry');
    const was = this.del();
    this.#expires = expiresNs;
    this.#entry = this.core.arm(expiresNs, `timer:${this.name}`, this.#fire);
    return was;
  }

  modAfter(delayNs: number): boolean {
    checkTime(delayNs, 'delay');
    return this.mod(this.core.now + delayNs);
  }

  add(expiresNs: number): void {
    if (this.#entry !== null) throw new Error(`add_timer(${this.name}): timer is already pending`);
    this.mod(expiresNs);
  }

  del(): boolean {
    const entry = this.#entry;
    if (entry === null) return false;
    this.#entry = null;
    return this.core.disarm(entry);
  }

  delSync(): boolean {
    if (this.#running > 0) {
      throw new Error(`deadlock: timer_delete_sync(${this.name}) called while its callback is running`);
    }
    return this.del();
  }
}
