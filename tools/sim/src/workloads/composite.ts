/**
 * A workload made of other workloads: the steps of a workload file, run one after the other on the
 * same machine, recorder and random generator.
 */

import type { Recorder } from '../metrics/recorder.js';
import type { Workload, WorkloadContext, WorkloadParam, WorkloadParams } from './workload.js';
import { withDefaults } from './workload.js';

/** One step of a composite: a workload and the parameters the file gave it (defaults not applied). */
export interface CompositeStep {
  /** The workload the step runs. */
  readonly workload: Workload;
  /** Parameters as written in the file; missing ones take the workload's defaults when the step runs. */
  readonly params: Readonly<Record<string, WorkloadParam>>;
}

/** A {@link Workload} that runs a list of steps in order (what a workload file describes). */
export interface CompositeWorkload extends Workload {
  /** The steps, in the order they run. */
  readonly steps: readonly CompositeStep[];
}

/**
 * The label prefix of step `index` (0-based) in timeline labels and space names: the 1-based step
 * number and a colon, as in `2: rx burst 3`.
 * @param index - 0-based step position
 * @returns the prefix, with its trailing space
 */
export function stepPrefix(index: number): string {
  return `${index + 1}: `;
}

/**
 * A view of a recorder for one step: `step()` labels and I/O address space names get the step's
 * prefix (so two steps that both name a space `ioas 1` stay apart); everything else goes to the
 * shared recorder unchanged.
 */
function prefixedRecorder(rec: Recorder, prefix: string): Recorder {
  const renamed: Partial<Record<keyof Recorder, unknown>> = {
    step: (label: string) => rec.step(`${prefix}${label}`),
    space: (name: string, kind: Parameters<Recorder['space']>[1], devices?: readonly string[]) =>
      rec.space(`${prefix}${name}`, kind, devices),
    mapped: (space: string, iova: bigint, length: bigint, label: string) =>
      rec.mapped(`${prefix}${space}`, iova, length, label),
    unmapped: (space: string, iova: bigint, length: bigint) =>
      rec.unmapped(`${prefix}${space}`, iova, length),
  };
  return new Proxy(rec, {
    get(target, prop) {
      if (typeof prop === 'string' && Object.hasOwn(renamed, prop)) return renamed[prop as keyof Recorder];
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/**
 * Build a composite workload.
 *
 * - `supports(machine)` asks every step in order (with its parameters, defaults applied) and returns
 *   the first reason, prefixed `step N (workload): `, or `null` when every step can run.
 * - `run(ctx)` runs each step's workload on the same machine, random generator and recorder, with
 *   the step's parameters after {@link withDefaults}; the step's timeline labels and I/O address
 *   space names are prefixed with {@link stepPrefix} (`1: map guest RAM`). An error thrown by a step
 *   keeps its class and gets the same `step N (workload): ` prefix on its message.
 *
 * The composite itself takes no parameters (`params` is empty; `ctx.params` is ignored).
 * @param name - the composite's name (a workload file's `name`)
 * @param description - one line: what it does
 * @param steps - the steps, at least one
 * @returns the composite
 * @throws Error when `steps` is empty
 */
export function compositeWorkload(
  name: string,
  description: string,
  steps: readonly CompositeStep[],
): CompositeWorkload {
  if (steps.length === 0) throw new Error(`composite workload ${name} has no steps`);
  const frozen = Object.freeze(
    steps.map((s) => Object.freeze({ workload: s.workload, params: { ...s.params } })),
  );
  const label = (i: number, w: Workload): string => `step ${i + 1} (${w.name}): `;
  return {
    name,
    description,
    params: {},
    steps: frozen,
    supports(machine) {
      for (const [i, s] of frozen.entries()) {
        const reason = s.workload.supports(machine, withDefaults(s.workload, s.params));
        if (reason !== null) return `${label(i, s.workload)}${reason}`;
      }
      return null;
    },
    run(ctx: WorkloadContext) {
      for (const [i, s] of frozen.entries()) {
        const params: WorkloadParams = withDefaults(s.workload, s.params);
        try {
          s.workload.run({
            machine: ctx.machine,
            rng: ctx.rng,
            rec: prefixedRecorder(ctx.rec, stepPrefix(i)),
            params,
          });
        } catch (e) {
          if (e instanceof Error) e.message = `${label(i, s.workload)}${e.message}`;
          throw e;
        }
      }
    },
  };
}
