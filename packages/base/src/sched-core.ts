/**
 * The scheduler's engine: the ready queue, the timer heap, virtual time and task execution. Only
 * the public types ({@link TaskHandle}, {@link TaskState}) leave the package; {@link SchedCore} is
 * shared by the scheduler, work queues, timers and IRQ lines.
 */

import type { Prng } from './prng.js';
import { type SchedTaskRunEvent, type TaskKind, traceSchedTaskRun } from './sched-trace.js';

/**
 * Where a task is in its life: `'ready'` waiting to be picked; `'running'` on the stack;
 * `'done'` finished (normally or by throwing); `'cancelled'` removed before it ran.
 */
export type TaskState = 'ready' | 'running' | 'done' | 'cancelled';

/** A handle on one scheduled, one-shot task (what `Scheduler.spawn` returns). */
export interface TaskHandle {
  /** The task's name, used in traces. */
  readonly name: string;
  /** What the task runs. */
  readonly kind: TaskKind;
  /** The task's current state. */
  readonly state: TaskState;
  /**
   * Remove the task if it has not started.
   * @returns `true` if it was ready and will now never run; `false` if it already ran, is running
   *   or was cancelled before
   */
  cancel(): boolean;
}

/** A ready-queue entry. */
export class CoreTask implements TaskHandle {
  state: TaskState = 'ready';

  constructor(
    readonly core: SchedCore,
    readonly name: string,
    readonly kind: TaskKind,
    readonly fn: () => void,
  ) {}

  cancel(): boolean {
    return this.core.take(this);
  }
}

/** One arming of a timer in the heap; stale once `live` is false. */
export interface TimerEntry {
  readonly expires: number;
  readonly seq: number;
  readonly name: string;
  readonly fire: () => void;
  live: boolean;
}

function before(a: TimerEntry, b: TimerEntry): boolean {
  return a.expires < b.expires || (a.expires === b.expires && a.seq < b.seq);
}

/** The state and mechanics shared by everything that runs on one scheduler. */
export class SchedCore {
  now = 0;
  steps = 0;
  depth = 0;
  onTaskRun: ((event: SchedTaskRunEvent) => void) | undefined;

  readonly #prng: Prng | undefined;
  readonly id: number;
  #ready: CoreTask[] = [];
  #head = 0;
  #live = 0;
  #heap: TimerEntry[] = [];
  #armed = 0;
  #timerSeq = 0;

  constructor(id: number, prng: Prng | undefined) {
    this.id = id;
    this.#prng = prng;
  }

  get readyCount(): number {
    return this.#live;
  }

  get timerCount(): number {
    return this.#armed;
  }

  /** Make a new ready task. */
  enqueue(name: string, kind: TaskKind, fn: () => void): CoreTask {
    const task = new CoreTask(this, name, kind, fn);
    this.#ready.push(task);
    this.#live++;
    return task;
  }

  /** Remove a ready task without running it; false if it is not ready. */
  take(task: CoreTask): boolean {
    if (task.state !== 'ready' || task.core !== this) return false;
    task.state = 'cancelled';
    this.#live--;
    return true;
  }

  /** Pick the next ready task (FIFO or seeded) and remove it from the queue. */
  #pick(): CoreTask | undefined {
    const ready = this.#ready;
    if (this.#live === 0) {
      ready.length = 0;
      this.#head = 0;
      return undefined;
    }
    const prng = this.#prng;
    if (prng === undefined) {
      for (;;) {
        const task = ready[this.#head++] as CoreTask;
        if (task.state === 'ready') {
          if (this.#head > 1024 && this.#head * 2 > ready.length) {
            this.#ready = ready.slice(this.#head);
            this.#head = 0;
          }
          this.#live--;
          return task;
        }
      }
    }
    // Seeded: draw a slot uniformly; dead slots are dropped and redrawn, so the pick is uniform
    // over the live tasks. Removal swaps the last slot in, which is deterministic for a given seed.
    for (;;) {
      const i = prng.nextInt(ready.length);
      const task = ready[i] as CoreTask;
      const last = ready.pop() as CoreTask;
      if (i < ready.length) ready[i] = last;
      if (task.state === 'ready') {
        this.#live--;
        return task;
      }
    }
  }

  /** Run `fn` as a task at the current depth, with tracing. */
  run(name: string, kind: TaskKind, fn: () => void): void {
    const depth = this.depth;
    if (this.onTaskRun !== undefined || traceSchedTaskRun.enabled) {
      const event: SchedTaskRunEvent = {
        schedulerId: this.id,
        name,
        kind,
        now: this.now,
        step: this.steps,
        depth,
      };
      this.onTaskRun?.(event);
      traceSchedTaskRun.emit(event);
    }
    this.depth = depth + 1;
    try {
      fn();
    } finally {
      this.depth = depth;
    }
  }

  #runTask(task: CoreTask): void {
    task.state = 'running';
    try {
      this.run(task.name, task.kind, task.fn);
    } finally {
      task.state = 'done';
    }
  }

  /**
   * One scheduling step: run a ready task, or else fire the earliest timer due at or before
   * `limit`. Returns false when neither exists.
   */
  step(limit: number): boolean {
    const task = this.#pick();
    if (task !== undefined) {
      this.steps++;
      this.#runTask(task);
      return true;
    }
    const top = this.#peekTimer();
    if (top === undefined || top.expires > limit) return false;
    this.#popTimer();
    top.live = false;
    this.#armed--;
    if (top.expires > this.now) this.now = top.expires;
    this.steps++;
    this.#runTask(new CoreTask(this, top.name, 'timer', top.fire));
    return true;
  }

  /** Arm a timer entry at absolute time `expires` (ns). */
  arm(expires: number, name: string, fire: () => void): TimerEntry {
    const entry: TimerEntry = { expires, seq: this.#timerSeq++, name, fire, live: true };
    this.#armed++;
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as TimerEntry;
      if (!before(entry, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = entry;
    // Stale entries are dropped lazily; rebuild when they dominate the heap.
    if (heap.length > 64 && heap.length > this.#armed * 4) this.#rebuild();
    return entry;
  }

  /** Disarm a timer entry; false if it already fired or was disarmed. */
  disarm(entry: TimerEntry): boolean {
    if (!entry.live) return false;
    entry.live = false;
    this.#armed--;
    return true;
  }

  /** The expiry of the earliest armed timer, or undefined. */
  nextExpiry(): number | undefined {
    return this.#peekTimer()?.expires;
  }

  #peekTimer(): TimerEntry | undefined {
    const heap = this.#heap;
    for (;;) {
      const top = heap[0];
      if (top === undefined || top.live) return top;
      this.#popTimer();
    }
  }

  #popTimer(): void {
    const heap = this.#heap;
    const last = heap.pop() as TimerEntry;
    if (heap.length === 0) return;
    let i = 0;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && before(heap[r] as TimerEntry, heap[l] as TimerEntry)) c = r;
      const child = heap[c] as TimerEntry;
      if (!before(child, last)) break;
      heap[i] = child;
      i = c;
    }
    heap[i] = last;
  }

  #rebuild(): void {
    const live = this.#heap.filter((e) => e.live);
    live.sort((a, b) => (before(a, b) ? -1 : 1));
    this.#heap = live; // a sorted array is a valid binary min-heap
  }
}
