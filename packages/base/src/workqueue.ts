/**
 * Work items and workqueues on the deterministic scheduler, after kernel/workqueue.c and
 * include/linux/workqueue.h.
 *
 * Each pending, active work item is one ready task of the scheduler. Because tasks are synchronous,
 * "waiting" (flush, cancel-sync, destroy) is done by running the awaited work right away, nested on
 * the caller's stack; waiting for a work that is already on that stack can never finish, which is
 * the kernel's flush deadlock, reported as an Error.
 */

import { ErrnoError } from './errno.js';
import type { CoreTask, SchedCore } from './sched-core.js';
import { traceWorkqueueQueueWork } from './sched-trace.js';
import { TimerImpl } from './timer.js';

/** Default `maxActive` of an unordered workqueue (`WQ_DFL_ACTIVE`, include/linux/workqueue.h). */
export const WQ_DFL_ACTIVE = 256;

/** One queued instance of a work item. */
export interface Entry {
  readonly work: Work;
  readonly wq: WqImpl;
  /** The ready task while active; null while inactive (beyond max_active) or once detached. */
  task: CoreTask | null;
  /** True until the entry runs or is cancelled. */
  live: boolean;
}

/** The hidden state of a work item. */
export interface WorkState {
  readonly fn: (work: Work) => void;
  entry: Entry | null;
  running: number;
  lastWq: WqImpl | null;
  /** Delayed work only: the timer, bound to one scheduler. */
  timer: TimerImpl | null;
  /** Delayed work only: the queue the armed timer will queue onto; null when not armed. */
  timerWq: WqImpl | null;
}

let stateOf!: (work: Work) => WorkState;

function deadlock(what: string): Error {
  return new Error(`deadlock: ${what}`);
}

/**
 * A work item (`struct work_struct`, include/linux/workqueue.h): a function to run later on a
 * workqueue, at most one pending instance at a time.
 *
 * @remarks
 * The same object is queued again and again; while it is pending, queueing it again does nothing.
 * Clearing of the pending state happens just before the function runs, so a running work may be
 * queued again and will then run once more (kernel/workqueue.c semantics). A work item is not
 * bound to one queue or scheduler; it belongs to whichever queue it is pending on.
 *
 * @example
 * ```ts
 * const work = new Work(() => drainEventQueue(), 'evtq');
 * sched.systemWq.queueWork(work); // true
 * sched.systemWq.queueWork(work); // false: already pending
 * ```
 */
export class Work {
  /** The work's name, used in traces and task names (`'<workqueue>:<name>'`). */
  readonly name: string;
  #state: WorkState;

  static {
    stateOf = (work) => work.#state;
  }

  /**
   * @param fn - the work function (`work_func_t`); it receives this work item. A throw propagates
   *   out of the scheduler call that ran it; the work is then no longer running.
   * @param name - name for traces; defaults to `fn.name`, or `'work'`
   */
  constructor(fn: (work: Work) => void, name?: string) {
    this.name = name ?? (fn.name || 'work');
    this.#state = { fn, entry: null, running: 0, lastWq: null, timer: null, timerWq: null };
  }

  /**
   * Whether the work is pending: queued and not yet started, or (for a {@link DelayedWork}) waiting
   * for its timer (`work_pending` / `delayed_work_pending`).
   */
  get pending(): boolean {
    const s = this.#state;
    return s.entry !== null || s.timerWq !== null;
  }

  /** Whether the work function is executing right now, that is, somewhere on the current stack. */
  get running(): boolean {
    return this.#state.running > 0;
  }
}

/**
 * A work item queued after a delay (`struct delayed_work`, include/linux/workqueue.h): a
 * {@link Work} plus a timer that queues it when it expires.
 */
export class DelayedWork extends Work {
  /**
   * @param fn - the work function; it receives this delayed work
   * @param name - name for traces; defaults to `fn.name`, or `'work'`
   */
  constructor(fn: (work: DelayedWork) => void, name?: string) {
    super(fn as (work: Work) => void, name);
  }

  /** Whether the delay timer is armed (the work is then pending but not yet queued). */
  get timerPending(): boolean {
    return stateOf(this).timerWq !== null;
  }
}

/** Options of `Scheduler.allocWorkqueue` (the flags and `max_active` of `alloc_workqueue`). */
export interface WorkqueueOptions {
  /**
   * Execute at most one work at a time, in queueing order (`alloc_ordered_workqueue`). Holds in
   * seeded mode too. Implies `maxActive` 1.
   */
  ordered?: boolean;
  /**
   * How many works of this queue may be in flight (ready or running) at once; further ones wait,
   * in queueing order, until one finishes. A positive integer; default {@link WQ_DFL_ACTIVE}.
   */
  maxActive?: number;
}

/**
 * A workqueue (`struct workqueue_struct`, kernel/workqueue.c), created by
 * `Scheduler.allocWorkqueue`.
 *
 * @remarks
 * Unordered: each pending work (up to `maxActive`) is an independent ready task, so a seeded
 * scheduler may run them in any order. Ordered: only the oldest pending work is ready.
 */
export interface Workqueue {
  /** The queue's name (for example `'events'` for the system workqueue). */
  readonly name: string;
  /** Whether the queue is ordered. */
  readonly ordered: boolean;
  /** The in-flight limit: 1 for an ordered queue. */
  readonly maxActive: number;
  /** Number of works queued on it and not yet started (delayed works still on their timer excluded). */
  readonly pendingCount: number;
  /** Whether {@link Workqueue.destroy} has completed. */
  readonly destroyed: boolean;
  /**
   * Queue a work item (`queue_work`).
   * @param work - the work; it is queued only if not already pending
   * @returns `false` if it was already pending (queued, or a delayed work on its timer); else `true`
   * @throws Error if the queue is destroyed, or is draining and the caller is not one of its works
   *   (queueing on a dying workqueue is a kernel bug)
   */
  queueWork(work: Work): boolean;
  /**
   * Queue a delayed work after `delayNs` of virtual time (`queue_delayed_work`); a zero delay queues
   * it at once.
   * @param dwork - the delayed work
   * @param delayNs - delay in nanoseconds, finite and non-negative
   * @returns `false` if it was already pending; else `true`
   * @throws RangeError for a bad delay; Error as for {@link Workqueue.queueWork}
   */
  queueDelayedWork(dwork: DelayedWork, delayNs: number): boolean;
  /**
   * Queue a delayed work after `delayNs`, replacing any pending instance and its timer
   * (`mod_delayed_work`). Works whether or not it was pending, and moves it to this queue.
   * @param dwork - the delayed work
   * @param delayNs - delay in nanoseconds, finite and non-negative; 0 queues it at once
   * @returns whether it was pending before
   * @throws RangeError for a bad delay; Error as for {@link Workqueue.queueWork}
   */
  modDelayedWork(dwork: DelayedWork, delayNs: number): boolean;
  /**
   * Wait until every work queued before the call has finished (`flush_workqueue`), by running them
   * now, nested, in queue order.
   *
   * @remarks
   * Works that those works queue while being flushed are not waited for, as in Linux (the flush
   * covers a snapshot of the queue). Delayed works still on their timer are not waited for either.
   * @throws Error (deadlock) if called while one of this queue's works is running on the current
   *   stack, since that work could never finish first
   */
  flush(): void;
  /**
   * Run works until the queue is empty, including works queued meanwhile by its own works
   * (`drain_workqueue`). While draining, only the queue's own works may queue onto it.
   * @throws Error (deadlock) as for {@link Workqueue.flush}; Error if more than a million flush rounds
   *   do not empty it (endless self-requeueing)
   */
  drain(): void;
  /**
   * Drain the queue, then refuse all further work (`destroy_workqueue`).
   * @throws Error if a delayed work is still armed to queue onto it (it would later hit a dead
   *   queue); Error as for {@link Workqueue.drain}
   */
  destroy(): void;
}

/** The implementation of {@link Workqueue}. */
export class WqImpl implements Workqueue {
  readonly name: string;
  readonly ordered: boolean;
  readonly maxActive: number;
  readonly core: SchedCore;
  /** Pending entries in queueing order. */
  readonly #pending = new Set<Entry>();
  /** Pending entries beyond max_active, in queueing order. */
  readonly #inactive = new Set<Entry>();
  #activeReady = 0;
  /** Works of this queue on the current stack. */
  running = 0;
  /** Delayed works whose timer will queue onto this queue. */
  armedDelayed = 0;
  #phase: 'live' | 'draining' | 'destroyed' = 'live';

  constructor(core: SchedCore, name: string, options: WorkqueueOptions) {
    const ordered = options.ordered ?? false;
    const maxActive = options.maxActive ?? (ordered ? 1 : WQ_DFL_ACTIVE);
    if (!Number.isSafeInteger(maxActive) || maxActive < 1) {
      throw new ErrnoError('EINVAL', `workqueue '${name}': maxActive ${maxActive} is not a positive integer`);
    }
    if (ordered && maxActive !== 1) {
      throw new ErrnoError('EINVAL', `workqueue '${name}': an ordered workqueue has maxActive 1`);
    }
    this.core = core;
    this.name = name;
    this.ordered = ordered;
    this.maxActive = maxActive;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  get destroyed(): boolean {
    return this.#phase === 'destroyed';
  }

  #checkAccepting(): void {
    if (this.#phase === 'destroyed') throw new Error(`workqueue '${this.name}' is destroyed`);
    if (this.#phase === 'draining' && this.running === 0) {
      throw new Error(`workqueue '${this.name}' is draining: only its own works may queue onto it`);
    }
  }

  queueWork(work: Work): boolean {
    this.#checkAccepting();
    const s = stateOf(work);
    if (s.entry !== null || s.timerWq !== null) return false;
    this.enqueue(work, s);
    return true;
  }

  queueDelayedWork(dwork: DelayedWork, delayNs: number): boolean {
    this.#checkAccepting();
    checkDelay(delayNs);
    const s = stateOf(dwork);
    if (s.entry !== null || s.timerWq !== null) return false;
    this.#queueAfter(dwork, s, delayNs);
    return true;
  }

  modDelayedWork(dwork: DelayedWork, delayNs: number): boolean {
    this.#checkAccepting();
    checkDelay(delayNs);
    const s = stateOf(dwork);
    const was = cancelPending(s);
    this.#queueAfter(dwork, s, delayNs);
    return was;
  }

  #queueAfter(dwork: DelayedWork, s: WorkState, delayNs: number): void {
    if (delayNs === 0) {
      this.enqueue(dwork, s);
      return;
    }
    let timer = s.timer;
    if (timer === null || timer.core !== this.core) {
      timer = new TimerImpl(
        this.core,
        () => {
          const wq = s.timerWq as WqImpl;
          s.timerWq = null;
          wq.armedDelayed--;
          wq.enqueue(dwork, s);
        },
        `${this.name}:${dwork.name}`,
      );
      s.timer = timer;
    }
    s.timerWq = this;
    this.armedDelayed++;
    timer.mod(this.core.now + delayNs);
  }

  /** Put a non-pending work on the queue. */
  enqueue(work: Work, s: WorkState): void {
    const entry: Entry = { work, wq: this, task: null, live: true };
    s.entry = entry;
    s.lastWq = this;
    this.#pending.add(entry);
    this.#inactive.add(entry);
    if (traceWorkqueueQueueWork.enabled) {
      traceWorkqueueQueueWork.emit({
        schedulerId: this.core.id,
        workqueue: this.name,
        work: work.name,
        now: this.core.now,
      });
    }
    this.#activate();
  }

  /** Turn inactive entries into ready tasks while below max_active. */
  #activate(): void {
    while (this.#activeReady + this.running < this.maxActive && this.#inactive.size > 0) {
      const entry = this.#inactive.values().next().value as Entry;
      this.#inactive.delete(entry);
      entry.task = this.core.enqueue(`${this.name}:${entry.work.name}`, 'work', () => {
        this.#detach(entry);
        this.#execute(entry);
      });
      this.#activeReady++;
    }
  }

  /** Take an entry off the queue (it is about to run, or is cancelled). */
  #detach(entry: Entry): void {
    if (entry.task !== null) {
      this.core.take(entry.task); // no-op when the task is the one running
      entry.task = null;
      this.#activeReady--;
    } else {
      this.#inactive.delete(entry);
    }
    this.#pending.delete(entry);
    entry.live = false;
    const s = stateOf(entry.work);
    if (s.entry === entry) s.entry = null;
  }

  #execute(entry: Entry): void {
    const s = stateOf(entry.work);
    s.running++;
    this.running++;
    try {
      s.fn(entry.work);
    } finally {
      s.running--;
      this.running--;
      this.#activate();
    }
  }

  /** Run a pending entry now, nested on the caller's stack. */
  #runNested(entry: Entry): void {
    this.#detach(entry);
    this.core.run(`${this.name}:${entry.work.name}`, 'work', () => this.#execute(entry));
  }

  cancelEntry(entry: Entry): void {
    this.#detach(entry);
    this.#activate();
  }

  /** flush_work on a pending entry of this queue. */
  flushEntry(entry: Entry): void {
    if (this.ordered) {
      if (this.running > 0) {
        throw deadlock(
          `flush of '${this.name}:${entry.work.name}' on an ordered workqueue whose running work is on the current stack`,
        );
      }
      for (const ahead of [...this.#pending]) {
        if (ahead === entry || !entry.live) break;
        if (ahead.live) this.#runNested(ahead);
      }
    } else if (entry.task === null && this.running >= this.maxActive) {
      throw deadlock(
        `flush of '${this.name}:${entry.work.name}': all ${this.maxActive} active slots are held by works on the current stack`,
      );
    }
    if (entry.live) this.#runNested(entry);
  }

  #checkNotInside(what: string): void {
    if (this.running > 0) {
      throw deadlock(`${what}('${this.name}') called while one of its works is running on the current stack`);
    }
  }

  flush(): void {
    this.#checkNotInside('flush_workqueue');
    for (const entry of [...this.#pending]) if (entry.live) this.#runNested(entry);
  }

  drain(): void {
    this.#checkNotInside('drain_workqueue');
    const phase = this.#phase;
    if (phase === 'destroyed') return;
    this.#phase = 'draining';
    try {
      for (let rounds = 0; this.#pending.size > 0; rounds++) {
        if (rounds >= 1_000_000) throw new Error(`drain_workqueue('${this.name}'): works keep requeueing`);
        for (const entry of [...this.#pending]) if (entry.live) this.#runNested(entry);
      }
    } finally {
      this.#phase = phase;
    }
  }

  destroy(): void {
    if (this.#phase === 'destroyed') return;
    this.#checkNotInside('destroy_workqueue');
    if (this.armedDelayed > 0) {
      throw new Error(`destroy_workqueue('${this.name}'): ${this.armedDelayed} delayed work(s) still armed`);
    }
    this.drain();
    this.#phase = 'destroyed';
  }
}

function checkDelay(delayNs: number): void {
  if (!Number.isFinite(delayNs) || delayNs < 0) {
    throw new RangeError(`delay ${delayNs} is not a finite, non-negative ns`);
  }
}

/** Remove a pending instance and/or disarm the delay timer; returns whether anything was pending. */
function cancelPending(s: WorkState): boolean {
  let was = false;
  if (s.entry !== null) {
    s.entry.wq.cancelEntry(s.entry);
    was = true;
  }
  if (s.timerWq !== null) {
    s.timer?.del();
    s.timerWq.armedDelayed--;
    s.timerWq = null;
    was = true;
  }
  return was;
}

/**
 * Wait for the last queued instance of `work` to finish (`flush_work`, kernel/workqueue.c): the
 * pending instance runs now, nested on the caller's stack; on an ordered queue the works queued
 * ahead of it run first, in order.
 *
 * @remarks
 * A delayed work still on its timer is not waited for (use {@link flushDelayedWork}).
 * @param work - the work item
 * @returns `true` if there was an instance to wait for; `false` if the work was idle
 * @throws Error (deadlock) if the work is running on the current stack (flushing itself, or a wait
 *   cycle), or if the queue cannot start it while works on the current stack hold its slots
 *   (ordered queue busy, or `maxActive` reached)
 */
export function flushWork(work: Work): boolean {
  const s = stateOf(work);
  if (s.running > 0) {
    throw deadlock(`flush_work('${work.name}') waits for a work that is running on the current stack`);
  }
  const entry = s.entry;
  if (entry === null) return false;
  entry.wq.flushEntry(entry);
  return true;
}

/**
 * Queue a delayed work at once if its timer is armed, then wait for it (`flush_delayed_work`).
 * @param dwork - the delayed work
 * @returns `true` if there was an instance to wait for
 * @throws Error (deadlock) as for {@link flushWork}
 */
export function flushDelayedWork(dwork: DelayedWork): boolean {
  const s = stateOf(dwork);
  if (s.running > 0) {
    throw deadlock(
      `flush_delayed_work('${dwork.name}') waits for a work that is running on the current stack`,
    );
  }
  const wq = s.timerWq;
  if (wq !== null) {
    s.timer?.del();
    wq.armedDelayed--;
    s.timerWq = null;
    wq.enqueue(dwork, s);
  }
  return flushWork(dwork);
}

/**
 * Remove a pending work item without waiting for a running instance (`cancel_work`); for a delayed
 * work this also disarms its timer.
 * @param work - the work item
 * @returns `true` if it was pending (it will not run for that queueing); `false` otherwise
 */
export function cancelWork(work: Work): boolean {
  return cancelPending(stateOf(work));
}

/**
 * Remove a pending work item and make sure it is not running (`cancel_work_sync`). Afterwards the
 * work is idle unless something queues it again.
 * @param work - the work item
 * @returns `true` if it was pending; `false` otherwise
 * @throws Error (deadlock) if the work is running on the current stack (called from the work
 *   itself, or from something it is waiting for)
 */
export function cancelWorkSync(work: Work): boolean {
  const s = stateOf(work);
  if (s.running > 0) {
    throw deadlock(`cancel_work_sync('${work.name}') waits for a work that is running on the current stack`);
  }
  return cancelPending(s);
}

/**
 * Disarm a delayed work's timer or remove its queued instance, without waiting for a running
 * instance (`cancel_delayed_work`).
 * @param dwork - the delayed work
 * @returns `true` if it was pending
 */
export function cancelDelayedWork(dwork: DelayedWork): boolean {
  return cancelPending(stateOf(dwork));
}

/**
 * Cancel a delayed work and make sure it is not running (`cancel_delayed_work_sync`).
 * @param dwork - the delayed work
 * @returns `true` if it was pending
 * @throws Error (deadlock) as for {@link cancelWorkSync}
 */
export function cancelDelayedWorkSync(dwork: DelayedWork): boolean {
  return cancelWorkSync(dwork);
}
