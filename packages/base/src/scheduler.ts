/**
 * The deterministic scheduler: virtual time, one-shot tasks, and the factories for workqueues,
 * timers and interrupt lines that run on it.
 */

import { type IrqLine, IrqLineImpl } from './irq.js';
import { Prng } from './prng.js';
import { SchedCore, type TaskHandle } from './sched-core.js';
import type { SchedTaskRunEvent } from './sched-trace.js';
import { type Timer, type TimerFn, TimerImpl } from './timer.js';
import { type DelayedWork, type Work, type Workqueue, type WorkqueueOptions, WqImpl } from './workqueue.js';

/** Default livelock guard of {@link Scheduler.runUntilIdle} and friends, in steps. */
export const DEFAULT_MAX_STEPS = 10_000_000;

/** Options of the {@link Scheduler} constructor. */
export interface SchedulerOptions {
  /**
   * Seed for random interleaving. Without it the scheduler is FIFO: ready tasks run in the order
   * they became ready. With it, each step picks uniformly among the ready tasks using a
   * {@link Prng} seeded with this value, so a seed reproduces one interleaving exactly.
   */
  seed?: number | bigint;
  /** Called before every task runs, top-level or nested; see {@link Scheduler.onTaskRun}. */
  onTaskRun?: (event: SchedTaskRunEvent) => void;
}

/** Options of the run loops of {@link Scheduler}. */
export interface RunOptions {
  /** Livelock guard: the most steps this call may take; default {@link DEFAULT_MAX_STEPS}. */
  maxSteps?: number;
}

let nextSchedulerId = 1;

function checkMaxSteps(options: RunOptions | undefined): number {
  const maxSteps = options?.maxSteps ?? DEFAULT_MAX_STEPS;
  if (!(maxSteps >= 0) || !Number.isInteger(maxSteps)) {
    throw new RangeError(`maxSteps ${maxSteps} is not a non-negative integer`);
  }
  return maxSteps;
}

/**
 * A deterministic, single-threaded model of the kernel's concurrency (kernel/workqueue.c,
 * kernel/time/timer.c, kernel/irq/manage.c): tasks are synchronous functions and interleaving
 * happens between them.
 *
 * @remarks
 * Virtual time (`now`, nanoseconds) advances only when nothing is ready: running code takes no
 * time. Each {@link Scheduler.step} runs one ready task, or, if none is ready, jumps to the
 * earliest armed timer and runs its callback. Without a seed, ready tasks run first-in first-out;
 * with a seed, each step picks uniformly among ready tasks, reproducibly. A function that "waits"
 * (flush, cancel-sync, synchronize) runs the awaited task at once, nested on its own stack.
 * Exceptions thrown by a task propagate out of the `step`/`run*` call that ran it; the task is then
 * finished and the scheduler stays usable.
 *
 * @example
 * ```ts
 * const sched = new Scheduler({ seed: 7 });
 * const wq = sched.allocWorkqueue('iopf', { ordered: true });
 * wq.queueWork(new Work(() => handleFault()));
 * sched.runUntilIdle();
 * ```
 */
export class Scheduler {
  /** A process-unique number identifying this scheduler in trace events. */
  readonly id: number;
  /** The seed, reduced to an unsigned 64-bit value, or `undefined` in FIFO mode. */
  readonly seed: bigint | undefined;
  readonly #core: SchedCore;
  #systemWq: WqImpl | undefined;

  /**
   * @param options - seed and hook; `{}` for FIFO mode
   * @throws RangeError if a number seed is not a safe integer
   */
  constructor(options: SchedulerOptions = {}) {
    this.id = nextSchedulerId++;
    const seed = options.seed;
    const prng = seed === undefined ? undefined : new Prng(seed);
    this.seed = seed === undefined ? undefined : BigInt.asUintN(64, BigInt(seed));
    this.#core = new SchedCore(this.id, prng);
    this.#core.onTaskRun = options.onTaskRun;
  }

  /** The current virtual time in nanoseconds (starts at 0, never decreases). */
  get now(): number {
    return this.#core.now;
  }

  /** How many top-level steps have run so far (nested runs are not steps). */
  get steps(): number {
    return this.#core.steps;
  }

  /** Number of ready tasks. */
  get readyCount(): number {
    return this.#core.readyCount;
  }

  /** Number of armed timers (delayed-work timers included). */
  get timerCount(): number {
    return this.#core.timerCount;
  }

  /** Ready tasks plus armed timers: everything that would make {@link Scheduler.step} return true. */
  get pendingCount(): number {
    return this.#core.readyCount + this.#core.timerCount;
  }

  /** Whether nothing is ready and no timer is armed. */
  get idle(): boolean {
    return this.pendingCount === 0;
  }

  /** The absolute expiry (ns) of the earliest armed timer, or `undefined` if none is armed. */
  get nextTimerExpiry(): number | undefined {
    return this.#core.nextExpiry();
  }

  /** Whether a task is executing right now (the caller is inside a task). */
  get inTask(): boolean {
    return this.#core.depth > 0;
  }

  /**
   * A hook called before every task runs, including tasks run nested by a flush or synchronize
   * (their `depth` is above 0); per scheduler, unlike the process-wide `sched_task_run` tracepoint
   * ({@link traceSchedTaskRun}). Set `undefined` to remove it.
   */
  get onTaskRun(): ((event: SchedTaskRunEvent) => void) | undefined {
    return this.#core.onTaskRun;
  }
  set onTaskRun(hook: ((event: SchedTaskRunEvent) => void) | undefined) {
    this.#core.onTaskRun = hook;
  }

  /**
   * Make `fn` a ready one-shot task.
   * @param fn - the task body, run once by a later step
   * @param name - name for traces; defaults to `fn.name`, or `'task'`
   * @returns a handle whose `cancel()` removes the task if it has not started
   */
  spawn(fn: () => void, name?: string): TaskHandle {
    return this.#core.enqueue(name ?? (fn.name || 'task'), 'task', fn);
  }

  #checkTopLevel(what: string): void {
    if (this.#core.depth > 0) throw new Error(`Scheduler.${what}() called from inside a task`);
  }

  /**
   * Run exactly one ready task; if none is ready, advance `now` to the earliest armed timer and
   * run its callback.
   * @returns `true` if something ran; `false` if nothing is ready and no timer is armed
   * @throws Error if called from inside a task; whatever the task throws
   */
  step(): boolean {
    this.#checkTopLevel('step');
    return this.#core.step(Number.POSITIVE_INFINITY);
  }

  /**
   * Step until nothing is ready and no timer is armed (virtual time jumps through all timers).
   * @param options - livelock guard
   * @returns the number of steps taken
   * @throws Error if more than `maxSteps` steps would be needed (livelock: for example a work that
   *   always re-queues itself, or a periodic timer); Error if called from inside a task
   */
  runUntilIdle(options?: RunOptions): number {
    this.#checkTopLevel('runUntilIdle');
    const maxSteps = checkMaxSteps(options);
    let n = 0;
    while (!this.idle) {
      if (n >= maxSteps) {
        throw new Error(`runUntilIdle: still busy after ${maxSteps} steps (livelock?) at t=${this.now}ns`);
      }
      this.#core.step(Number.POSITIVE_INFINITY);
      n++;
    }
    return n;
  }

  /**
   * Step until `predicate()` holds (checked before each step) or the scheduler is idle.
   * @param predicate - the condition to reach
   * @param options - livelock guard
   * @returns `true` if the predicate held; `false` if the scheduler went idle first
   * @throws Error if the predicate still fails after `maxSteps` steps; Error if called from
   *   inside a task
   */
  runUntil(predicate: () => boolean, options?: RunOptions): boolean {
    this.#checkTopLevel('runUntil');
    const maxSteps = checkMaxSteps(options);
    for (let n = 0; ; n++) {
      if (predicate()) return true;
      if (n >= maxSteps) throw new Error(`runUntil: predicate still false after ${maxSteps} steps`);
      if (!this.#core.step(Number.POSITIVE_INFINITY)) return false;
    }
  }

  /**
   * Let `ns` of virtual time pass: run every ready task and every timer due at or before
   * `now + ns` (and what they make ready), then set `now` to `now + ns`.
   * @param ns - nanoseconds, finite and non-negative
   * @param options - livelock guard
   * @throws RangeError for a bad `ns`; Error on exceeding `maxSteps` or if called from inside a task
   */
  advanceBy(ns: number, options?: RunOptions): void {
    if (!Number.isFinite(ns) || ns < 0)
      throw new RangeError(`advanceBy(${ns}): not a finite, non-negative ns`);
    this.advanceTo(this.now + ns, options);
  }

  /**
   * Like {@link Scheduler.advanceBy}, to an absolute time: run everything due at or before `timeNs`,
   * then set `now` to `timeNs` (unless it is already later).
   * @param timeNs - absolute virtual time in nanoseconds
   * @param options - livelock guard
   * @throws RangeError for a non-finite time; Error on exceeding `maxSteps` or if called from
   *   inside a task
   */
  advanceTo(timeNs: number, options?: RunOptions): void {
    if (!Number.isFinite(timeNs)) throw new RangeError(`advanceTo(${timeNs}): not a finite time`);
    this.#checkTopLevel('advanceTo');
    const maxSteps = checkMaxSteps(options);
    let n = 0;
    while (this.#core.step(timeNs)) {
      if (++n >= maxSteps && (this.readyCount > 0 || (this.nextTimerExpiry ?? Infinity) <= timeNs)) {
        throw new Error(`advanceTo: still busy after ${maxSteps} steps (livelock?) at t=${this.now}ns`);
      }
    }
    if (timeNs > this.#core.now) this.#core.now = timeNs;
  }

  /**
   * Create a workqueue on this scheduler (`alloc_workqueue` / `alloc_ordered_workqueue`,
   * kernel/workqueue.c).
   * @param name - the queue's name, used in task names (`'<queue>:<work>'`)
   * @param options - ordering and in-flight limit
   * @returns the new queue
   * @throws {@link ErrnoError} `EINVAL` for a `maxActive` that is not a positive integer, or an
   *   ordered queue with `maxActive` other than 1
   */
  allocWorkqueue(name: string, options: WorkqueueOptions = {}): Workqueue {
    return new WqImpl(this.#core, name, options);
  }

  /** The system workqueue `'events'` (`system_wq`), created on first use. */
  get systemWq(): Workqueue {
    this.#systemWq ??= new WqImpl(this.#core, 'events', {});
    return this.#systemWq;
  }

  /**
   * Queue `work` on {@link Scheduler.systemWq} (`schedule_work`).
   * @param work - the work item
   * @returns `false` if it was already pending
   */
  scheduleWork(work: Work): boolean {
    return this.systemWq.queueWork(work);
  }

  /**
   * Queue `dwork` on {@link Scheduler.systemWq} after `delayNs` (`schedule_delayed_work`).
   * @param dwork - the delayed work
   * @param delayNs - delay in nanoseconds
   * @returns `false` if it was already pending
   * @throws RangeError for a bad delay
   */
  scheduleDelayedWork(dwork: DelayedWork, delayNs: number): boolean {
    return this.systemWq.queueDelayedWork(dwork, delayNs);
  }

  /**
   * Create an unarmed timer (`timer_setup`, kernel/time/timer.c).
   * @param fn - the callback, run as a task (`'timer:<name>'`) when the timer expires
   * @param name - name for traces; defaults to `fn.name`, or `'timer'`
   * @returns the timer
   */
  createTimer(fn: TimerFn, name?: string): Timer {
    return new TimerImpl(this.#core, fn, name ?? (fn.name || 'timer'));
  }

  /**
   * Create an interrupt line without handler (an allocated IRQ/MSI vector, kernel/irq/irqdesc.c);
   * install one with {@link IrqLine.requestIrq}.
   * @param name - the line's name, used in task names (`'irq:<name>'`)
   * @returns the line, enabled (disable depth 0)
   */
  createIrqLine(name: string): IrqLine {
    return new IrqLineImpl(this.#core, name);
  }
}
