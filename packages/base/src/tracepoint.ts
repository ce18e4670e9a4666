/**
 * Static tracepoints, after include/linux/tracepoint.h: a named hook that costs one boolean test
 * when nobody listens, and hands a typed event object to every subscriber when someone does.
 */

import { ErrnoError } from './errno.js';

/**
 * A subscriber of a tracepoint: called synchronously, in subscription order, for each event.
 * @typeParam T - the event object type of the tracepoint
 */
export type TracepointProbe<T> = (event: T) => void;

/**
 * A named static tracepoint carrying events of type `T` (the kernel's `DEFINE_TRACE` /
 * `trace_<name>()` pair in include/linux/tracepoint.h).
 *
 * @remarks
 * Emitters guard event construction with {@link Tracepoint.enabled}, the counterpart of the
 * kernel's static key, so that nothing is allocated when no probe is attached:
 * ```ts
 * if (tpFoo.enabled) tpFoo.emit({ pasid, addr });
 * ```
 * @typeParam T - the event object type; events are plain objects
 */
export interface Tracepoint<T> {
  /** The tracepoint's unique name, for example `'sched_task_run'`. */
  readonly name: string;
  /** Whether at least one probe is subscribed (the static key is on). */
  readonly enabled: boolean;
  /** How many probes are subscribed. */
  readonly probeCount: number;
  /**
   * Deliver `event` to every subscribed probe, in subscription order. A probe subscribed or
   * unsubscribed during delivery takes effect from the next event. Does nothing without probes.
   * @param event - the event object; probes must not keep mutating it
   * @throws whatever a probe throws; later probes then do not see the event
   */
  emit(event: T): void;
  /**
   * Attach a probe (`register_trace_<name>`).
   * @param probe - called with each subsequent event
   * @returns a function that detaches this probe (`unregister_trace_<name>`); calling it again does
   *   nothing
   */
  subscribe(probe: TracepointProbe<T>): () => void;
}

class TracepointImpl<T> implements Tracepoint<T> {
  readonly name: string;
  #probes: readonly TracepointProbe<T>[] = [];

  constructor(name: string) {
    this.name = name;
  }

  get enabled(): boolean {
    return this.#probes.length !== 0;
  }

  get probeCount(): number {
    return this.#probes.length;
  }

  emit(event: T): void {
    // The array is replaced, never mutated, so iterating the current snapshot is safe.
    for (const probe of this.#probes) probe(event);
  }

  subscribe(probe: TracepointProbe<T>): () => void {
    // Wrap so the same function may be subscribed twice and each unsubscribe removes its own copy.
    const entry: TracepointProbe<T> = (event) => probe(event);
    this.#probes = [...this.#probes, entry];
    return () => {
      this.#probes = this.#probes.filter((p) => p !== entry);
    };
  }
}

const registry = new Map<string, Tracepoint<unknown>>();
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Define a static tracepoint and add it to the process-wide registry (the kernel's
 * `DEFINE_TRACE`/`TRACE_EVENT`, include/linux/tracepoint.h). Call it once, at module level.
 *
 * @param name - a unique C-identifier-like name, conventionally `subsystem_event`
 *   (for example `'workqueue_queue_work'`)
 * @returns the tracepoint, initially without probes (`enabled === false`)
 * @throws {@link ErrnoError} `EINVAL` if `name` is not an identifier; `EEXIST` if a tracepoint of
 *   that name is already defined
 * @typeParam T - the event object type
 */
export function defineTracepoint<T>(name: string): Tracepoint<T> {
  if (!NAME_RE.test(name)) throw new ErrnoError('EINVAL', `tracepoint name '${name}' is not an identifier`);
  if (registry.has(name)) throw new ErrnoError('EEXIST', `tracepoint '${name}' is already defined`);
  const tp = new TracepointImpl<T>(name);
  registry.set(name, tp as Tracepoint<unknown>);
  return tp;
}

/**
 * The names of every defined tracepoint, in definition order (what
 * /sys/kernel/tracing/available_events lists).
 * @returns a fresh array of names
 */
export function listTracepoints(): string[] {
  return [...registry.keys()];
}

/**
 * Look up a defined tracepoint by name.
 * @param name - the tracepoint's name
 * @returns the tracepoint, or `undefined` if none has that name; its event type is unknown to the
 *   caller
 */
export function getTracepoint(name: string): Tracepoint<unknown> | undefined {
  return registry.get(name);
}

/**
 * Attach a probe to a tracepoint given by name, as a tracing tool would.
 *
 * @remarks
 * The event type is not checked: `T` is the caller's claim about the tracepoint's events.
 * @param name - the tracepoint's name
 * @param probe - called with each subsequent event
 * @returns a function that detaches the probe
 * @throws {@link ErrnoError} `ENOENT` if no tracepoint has that name
 * @typeParam T - the event object type the caller expects
 */
export function subscribeTracepoint<T = unknown>(name: string, probe: TracepointProbe<T>): () => void {
  const tp = registry.get(name);
  if (tp === undefined) throw new ErrnoError('ENOENT', `no tracepoint named '${name}'`);
  return tp.subscribe(probe as TracepointProbe<unknown>);
}
