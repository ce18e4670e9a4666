/**
 * Interrupt lines with primary and threaded handlers on the deterministic scheduler, after
 * kernel/irq/manage.c, kernel/irq/chip.c (edge flow) and include/linux/irqreturn.h.
 */

import { ErrnoError } from './errno.js';
import type { CoreTask, SchedCore } from './sched-core.js';

/**
 * What an interrupt handler returns (`irqreturn_t`, include/linux/irqreturn.h):
 * `NONE` the interrupt was not from this device; `HANDLED` it was handled;
 * `WAKE_THREAD` wake the threaded handler.
 */
export const IrqReturn = {
  /** `IRQ_NONE` (0): not ours. Counted in {@link IrqLine.unhandled}. */
  NONE: 0,
  /** `IRQ_HANDLED` (1): handled. */
  HANDLED: 1,
  /** `IRQ_WAKE_THREAD` (2): handled in part; run the thread function. */
  WAKE_THREAD: 2,
} as const;

/** One of the {@link (IrqReturn:variable)} values. */
export type IrqReturn = (typeof IrqReturn)[keyof typeof IrqReturn];

/**
 * An interrupt handler, primary or threaded (`irq_handler_t`).
 * @param line - the line that fired
 * @returns what happened, see {@link (IrqReturn:variable)}
 */
export type IrqHandler = (line: IrqLine) => IrqReturn;

/** Options of {@link IrqLine.requestIrq}. */
export interface RequestIrqOptions {
  /**
   * The threaded handler (`thread_fn` of `request_threaded_irq`), run as its own task when the
   * primary handler returns `WAKE_THREAD`.
   */
  threadFn?: IrqHandler;
  /** The action's name (`devname`, shown in /proc/interrupts); defaults to the line's name. */
  name?: string;
}

/**
 * One edge-triggered interrupt line, such as an MSI vector (`struct irq_desc` with a single
 * `struct irqaction`, kernel/irq/manage.c), created by `Scheduler.createIrqLine`.
 *
 * @remarks
 * {@link IrqLine.raise} schedules the primary handler as a task (`'irq:<name>'`); raising again
 * before it ran coalesces into that one run. A primary handler returning `WAKE_THREAD` schedules the
 * thread function as another task (`'irq-thread:<name>'`); a wake while the thread is pending
 * coalesces, a wake while it runs makes it run once more afterwards (IRQTF_RUNTHREAD). Waiting
 * operations (synchronize, disable, free) run pending handlers nested on the caller's stack.
 */
export interface IrqLine {
  /** The line's name, for example `'smmu-evtq'`. */
  readonly name: string;
  /** The name of the installed action, or `undefined` when no handler is requested. */
  readonly actionName: string | undefined;
  /** Whether a handler is installed. */
  readonly requested: boolean;
  /** The disable nesting depth; the line delivers only at depth 0. */
  readonly disableDepth: number;
  /** Whether an interrupt awaits its primary handler (scheduled, or latched while disabled). */
  readonly pending: boolean;
  /** How many times {@link IrqLine.raise} was called. */
  readonly raised: number;
  /** How many times the primary handler ran. */
  readonly delivered: number;
  /** How many times the thread function ran. */
  readonly threadRuns: number;
  /** Raises (or latched deliveries) that found no handler installed. */
  readonly spurious: number;
  /** Handler runs (primary or thread) that returned `NONE`. */
  readonly unhandled: number;
  /**
   * Install the handler (`request_irq` / `request_threaded_irq`). The line is not shared.
   * @param handler - the primary handler; `null` for a purely threaded interrupt, whose primary step
   *   just wakes the thread (the kernel's default primary handler)
   * @param options - thread function and action name
   * @throws {@link ErrnoError} `EBUSY` if a handler is already installed; `EINVAL` if both `handler`
   *   and `options.threadFn` are missing
   */
  requestIrq(handler: IrqHandler | null, options?: RequestIrqOptions): void;
  /**
   * Wait for pending and running handlers, then remove the handler (`free_irq`). A raise latched
   * while disabled is dropped.
   * @throws Error if no handler is installed; Error (deadlock) if called from the line's own
   *   primary or thread handler
   */
  freeIrq(): void;
  /**
   * Signal an interrupt (an edge, an MSI write). Schedules the primary handler unless already
   * scheduled (coalescing); latched if the line is disabled; counted as spurious without handler.
   */
  raise(): void;
  /**
   * Increase the disable depth without waiting (`disable_irq_nosync`). A scheduled primary handler
   * that has not started is withdrawn and stays pending until the line is enabled again.
   */
  disableIrqNosync(): void;
  /**
   * Increase the disable depth and wait for running handlers, threads included (`disable_irq`): an
   * already woken thread runs now, nested.
   * @throws Error (deadlock) if called from the line's own primary or thread handler
   */
  disableIrq(): void;
  /**
   * Decrease the disable depth (`enable_irq`); at depth 0 a pending interrupt is delivered
   * (scheduled), as by the kernel's resend logic.
   * @throws Error if the line is not disabled (unbalanced enable)
   */
  enableIrq(): void;
  /**
   * Wait until no handler of this line is pending or running (`synchronize_irq`): a scheduled
   * primary handler and then the thread run now, nested on the caller's stack. Interrupts latched
   * while disabled are not delivered.
   * @throws Error (deadlock) if called from the line's own primary or thread handler
   */
  synchronizeIrq(): void;
}

const defaultPrimary: IrqHandler = () => IrqReturn.WAKE_THREAD;

/** The implementation of {@link IrqLine}. */
export class IrqLineImpl implements IrqLine {
  readonly name: string;
  readonly #core: SchedCore;
  #handler: IrqHandler | null = null;
  #threadFn: IrqHandler | null = null;
  #actionName: string | undefined;
  #depth = 0;
  #latched = false;
  #hardTask: CoreTask | null = null;
  #hardRunning = 0;
  #threadTask: CoreTask | null = null;
  #threadRunning = 0;
  #raised = 0;
  #delivered = 0;
  #threadRuns = 0;
  #spurious = 0;
  #unhandled = 0;

  constructor(core: SchedCore, name: string) {
    this.#core = core;
    this.name = name;
  }

  get actionName(): string | undefined {
    return this.#actionName;
  }
  get requested(): boolean {
    return this.#handler !== null;
  }
  get disableDepth(): number {
    return this.#depth;
  }
  get pending(): boolean {
    return this.#hardTask !== null || this.#latched;
  }
  get raised(): number {
    return this.#raised;
  }
  get delivered(): number {
    return this.#delivered;
  }
  get threadRuns(): number {
    return this.#threadRuns;
  }
  get spurious(): number {
    return this.#spurious;
  }
  get unhandled(): number {
    return this.#unhandled;
  }

  requestIrq(handler: IrqHandler | null, options: RequestIrqOptions = {}): void {
    if (this.#handler !== null) throw new ErrnoError('EBUSY', `IRQ '${this.name}' already has a handler`);
    const threadFn = options.threadFn ?? null;
    if (handler === null && threadFn === null) {
      throw new ErrnoError('EINVAL', `IRQ '${this.name}': neither a handler nor a thread function`);
    }
    this.#handler = handler ?? defaultPrimary;
    this.#threadFn = threadFn;
    this.#actionName = options.name ?? this.name;
  }

  freeIrq(): void {
    if (this.#handler === null) throw new Error(`free_irq('${this.name}'): no handler installed`);
    this.synchronizeIrq();
    this.#latched = false;
    this.#handler = null;
    this.#threadFn = null;
    this.#actionName = undefined;
  }

  raise(): void {
    this.#raised++;
    if (this.#handler === null) {
      this.#spurious++;
      return;
    }
    if (this.#depth > 0) {
      this.#latched = true;
      return;
    }
    this.#scheduleHard();
  }

  #scheduleHard(): void {
    if (this.#hardTask !== null) return;
    this.#hardTask = this.#core.enqueue(`irq:${this.name}`, 'irq', () => this.#runHard());
  }

  #runHard(): void {
    this.#hardTask = null;
    const handler = this.#handler;
    if (handler === null) return;
    this.#delivered++;
    this.#hardRunning++;
    let ret: IrqReturn;
    try {
      ret = handler(this);
    } finally {
      this.#hardRunning--;
    }
    if (ret === IrqReturn.NONE) this.#unhandled++;
    else if (ret === IrqReturn.WAKE_THREAD) this.#wakeThread();
  }

  #wakeThread(): void {
    if (this.#threadFn === null) {
      throw new Error(`IRQ '${this.name}': handler returned WAKE_THREAD but no thread function is installed`);
    }
    // A running thread is on the stack, so its wake-up always comes from a later task: it simply
    // schedules one more run after the current one, which is what IRQTF_RUNTHREAD achieves.
    if (this.#threadTask !== null) return;
    this.#threadTask = this.#core.enqueue(`irq-thread:${this.name}`, 'irq-thread', () => this.#runThread());
  }

  #runThread(): void {
    this.#threadTask = null;
    const fn = this.#threadFn;
    if (fn === null) return;
    this.#threadRuns++;
    this.#threadRunning++;
    let ret: IrqReturn;
    try {
      ret = fn(this);
    } finally {
      this.#threadRunning--;
    }
    if (ret === IrqReturn.NONE) this.#unhandled++;
  }

  #checkNotInside(what: string): void {
    if (this.#hardRunning > 0 || this.#threadRunning > 0) {
      throw new Error(`deadlock: ${what}('${this.name}') called from the line's own handler`);
    }
  }

  disableIrqNosync(): void {
    this.#depth++;
    const task = this.#hardTask;
    if (task !== null) {
      this.#core.take(task);
      this.#hardTask = null;
      this.#latched = true;
    }
  }

  disableIrq(): void {
    this.#checkNotInside('disable_irq');
    this.disableIrqNosync();
    this.#syncThread();
  }

  enableIrq(): void {
    if (this.#depth === 0) throw new Error(`enable_irq('${this.name}'): unbalanced enable`);
    this.#depth--;
    if (this.#depth === 0 && this.#latched) {
      this.#latched = false;
      if (this.#handler === null) this.#spurious++;
      else this.#scheduleHard();
    }
  }

  synchronizeIrq(): void {
    this.#checkNotInside('synchronize_irq');
    const task = this.#hardTask;
    if (task !== null) {
      this.#core.take(task);
      this.#core.run(task.name, 'irq', () => this.#runHard());
    }
    this.#syncThread();
  }

  #syncThread(): void {
    for (let task = this.#threadTask; task !== null; task = this.#threadTask) {
      this.#core.take(task);
      this.#core.run(task.name, 'irq-thread', () => this.#runThread());
    }
  }
}
