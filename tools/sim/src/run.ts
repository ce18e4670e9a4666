/**
 * Running workloads on platforms: a fresh machine per (platform, workload) so every figure belongs
 * to one flow, the workload's own data checks, and the results in the shape every output takes.
 */

import { cpus } from 'node:os';
import { buildMachine } from './machine/build.js';
import type { SimMachine, TopologyView } from './machine/machine.js';
import { Recorder } from './metrics/recorder.js';
import { type RunResult, type WorkloadResult, ZERO_FIGURES } from './metrics/results.js';
import type { PlatformDescription } from './platform/platform.js';
import { Rng } from './workloads/rng.js';
import type { Workload, WorkloadParams } from './workloads/workload.js';
import { withDefaults } from './workloads/workload.js';

/** A workload to run, with its parameters. */
export interface PlannedWorkload {
  /** The workload. */
  readonly workload: Workload;
  /** Parameters (defaults are applied by {@link runPlan}). */
  readonly params?: WorkloadParams;
  /**
   * `true` when the user asked for it explicitly (a workload file or `--workload`): a platform that
   * cannot run it is then an error of the run, not a skip.
   */
  readonly required: boolean;
}

/** What to run. */
export interface RunPlan {
  /** Platforms, in order. */
  readonly platforms: readonly PlatformDescription[];
  /** Workloads, in order, each on every platform. */
  readonly workloads: readonly PlannedWorkload[];
  /** Seed for the machines' schedulers and the workloads' random data. */
  readonly seed: number;
  /** RAM per machine in bytes (default: the builders' default). */
  readonly ramBytes?: number;
  /** DMA domains strict (default) or lazy with flush queues (see BuildOptions.dmaStrict). */
  readonly dmaStrict?: boolean;
}

/** Callbacks while a plan runs (the CLI's progress bar). */
export interface RunHooks {
  /** A workload starts on a platform (`index` counts pairs from 0 of `total`). */
  onStart?(platform: string, workload: string, index: number, total: number): void;
  /** The running workload reports progress. */
  onProgress?(done: number, total: number): void;
  /** A pair finished. */
  onResult?(result: WorkloadResult): void;
}

/**
 * Prefix of the message of a `failed` result whose workload the user asked for but the platform
 * cannot run (bad input rather than a failure of the flow).
 */
export const CANNOT_RUN = 'cannot run: ';

function seedFor(seed: number, name: string): number {
  let h = seed >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

function oneLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0] ?? m;
}

/**
 * Build a platform's machine only to describe it (what `inspect` prints).
 * @param desc - the platform
 * @param seed - scheduler seed
 * @returns its topology view
 */
export function inspectPlatform(desc: PlatformDescription, seed = 1): TopologyView {
  const m = buildMachine(desc, { seed });
  try {
    return m.topology;
  } finally {
    m.dispose();
  }
}

/**
 * Run one workload on a fresh machine.
 * @param desc - the platform
 * @param planned - the workload
 * @param seed - the run's seed
 * @param hooks - progress callbacks
 * @param ramBytes - RAM of the machine
 * @param dmaStrict - strict (default) or lazy DMA domains
 * @returns the result; `skipped` when the platform lacks what the workload needs
 */
export function runOne(
  desc: PlatformDescription,
  planned: PlannedWorkload,
  seed: number,
  hooks: RunHooks = {},
  ramBytes?: number,
  dmaStrict?: boolean,
): WorkloadResult {
  const w = planned.workload;
  const params = withDefaults(w, planned.params);
  let machine: SimMachine | null = null;
  try {
    machine = buildMachine(desc, {
      seed,
      ...(ramBytes === undefined ? {} : { ramBytes }),
      ...(dmaStrict === undefined ? {} : { dmaStrict }),
    });
    const reason = w.supports(machine, params);
    if (reason !== null) {
      return {
        platform: desc.name,
        workload: w.name,
        status: planned.required ? 'failed' : 'skipped',
        message: planned.required ? `${CANNOT_RUN}${reason}` : reason,
        figures: ZERO_FIGURES,
        timeline: [],
        spaces: [],
      };
    }
    const rec = new Recorder(machine, (d, t) => hooks.onProgress?.(d, t));
    let error: unknown = null;
    try {
      w.run({ machine, rng: new Rng(seedFor(seed, `${desc.name}/${w.name}`)), rec, params });
    } catch (e) {
      error = e;
    }
    return {
      platform: desc.name,
      workload: w.name,
      status: error === null ? 'passed' : 'failed',
      message: error === null ? null : oneLine(error),
      figures: rec.figures(),
      timeline: rec.timeline(),
      spaces: rec.spaces(),
    };
  } catch (e) {
    return {
      platform: desc.name,
      workload: w.name,
      status: 'failed',
      message: oneLine(e),
      figures: ZERO_FIGURES,
      timeline: [],
      spaces: [],
    };
  } finally {
    machine?.dispose();
  }
}

/**
 * Run every workload of a plan on every platform.
 * @param plan - what to run
 * @param hooks - progress callbacks
 * @returns the results, platforms outer, workloads inner
 * @throws Error when a platform cannot be built at all (one line)
 */
export function runPlan(plan: RunPlan, hooks: RunHooks = {}): RunResult {
  const platforms = plan.platforms.map((p) => inspectPlatform(p, plan.seed));
  const results: WorkloadResult[] = [];
  const total = plan.platforms.length * plan.workloads.length;
  let index = 0;
  for (const p of plan.platforms) {
    for (const w of plan.workloads) {
      hooks.onStart?.(p.name, w.workload.name, index++, total);
      const r = runOne(p, w, plan.seed, hooks, plan.ramBytes, plan.dmaStrict);
      results.push(r);
      hooks.onResult?.(r);
    }
  }
  return {
    version: 1,
    seed: plan.seed,
    platforms,
    results,
    host: { node: process.version, platform: `${process.platform}-${process.arch}`, cpus: cpus().length },
  };
}
