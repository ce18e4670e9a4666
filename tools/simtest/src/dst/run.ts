/**
 * `runDst`: the deterministic simulation. Each seed builds a fresh machine (the two default
 * platforms alternate by seed, the scheduler seeded), draws a scenario with fast-check from the
 * seed, runs it step by step against the oracle, tears everything down and checks for leaks. A
 * failing scenario is shrunk by fast-check; the report carries the shrunk trace (one step per
 * line, the violated invariant last) and a command line that replays it exactly.
 */

import fc from 'fast-check';
import type { DstFailure, DstReport } from '../report.js';
import { type DstHooks, noHooks } from './hooks.js';
import { InvariantError } from './invariant-error.js';
import { commandsReplayPath, scenarioArbitrary } from './scenario.js';
import { DstWorld } from './world.js';

/** Options of {@link runDst}. */
export interface DstOptions {
  /** Seeds to run (consecutive from `firstSeed`). */
  readonly seeds: number;
  /** First seed (default 1). */
  readonly firstSeed?: number;
  /** Maximum steps per scenario (default 60). */
  readonly steps?: number;
  /** Platform: one of the two defaults, or `both` (default: alternate by seed, even seeds x86). */
  readonly platform?: 'x86-vtd' | 'arm-smmuv3' | 'both';
  /**
   * Replay one scenario of `firstSeed` instead of drawing a new one: fast-check's counterexample
   * path, then `~` and the commands' replay path (as the repro line prints it).
   */
  readonly replay?: string;
  /** Progress and failure lines. */
  readonly log?: (line: string) => void;
  /** Test-only hooks planting a bug (see hooks.ts). */
  readonly hooks?: DstHooks;
}

/** Default steps per scenario. */
export const DST_DEFAULT_STEPS = 60;

/** What one property run left behind. */
interface LastRun {
  trace: string[];
  error: string | null;
  checks: number;
  steps: number;
}

function platformOf(seed: number, platform: DstOptions['platform']): 'x86-vtd' | 'arm-smmuv3' {
  if (platform === 'x86-vtd' || platform === 'arm-smmuv3') return platform;
  return seed % 2 === 0 ? 'x86-vtd' : 'arm-smmuv3';
}

function describeError(e: unknown): string {
  if (e instanceof InvariantError) return `INVARIANT: ${e.message}`;
  if (e instanceof Error)
    return `UNEXPECTED ${e.name}${'code' in e ? ` ${String(e.code)}` : ''}: ${e.message}`;
  return `UNEXPECTED throw: ${String(e)}`;
}

/**
 * The reproduction line of a failure.
 * @param seed - the seed
 * @param path - fast-check's counterexample path
 * @param platform - the platform option given, if not the default
 */
export function dstRepro(seed: number, path: string, platform?: DstOptions['platform']): string {
  const p = platform === undefined || platform === 'both' ? '' : ` --platform ${platform}`;
  return `pnpm simtest dst --seed ${seed}${p} --replay '${path}'`;
}

/**
 * Run the deterministic simulation over `seeds` seeds.
 * @param options - see {@link DstOptions}
 * @returns the report: seeds, steps and checks made, failures with their repro and shrunk trace
 */
export function runDst(options: DstOptions): DstReport {
  const t0 = performance.now();
  const first = options.firstSeed ?? 1;
  const steps = options.steps ?? DST_DEFAULT_STEPS;
  const hooks = options.hooks ?? noHooks;
  const log = options.log ?? (() => {});
  const failures: DstFailure[] = [];
  let totalSteps = 0;
  let totalChecks = 0;
  const count = options.replay === undefined ? options.seeds : 1;
  for (let seed = first; seed < first + count; seed++) {
    const platform = platformOf(seed, options.platform);
    const last: LastRun = { trace: [], error: null, checks: 0, steps: 0 };
    const makeProp = (replayPath?: string) =>
      fc.property(scenarioArbitrary(steps, replayPath), (cmds) => {
        const world = new DstWorld(seed, platform, hooks);
        last.trace = world.trace;
        last.error = null;
        try {
          fc.modelRun(() => ({ model: {}, real: world }), cmds);
          world.teardown();
        } catch (e) {
          last.error = describeError(e);
          throw e;
        } finally {
          last.checks = world.checks;
          last.steps = world.steps;
          totalChecks += world.checks;
          totalSteps += world.steps;
          world.dispose();
        }
      });
    let replay = options.replay;
    if (replay === undefined) {
      const out = fc.check(makeProp(), { seed, numRuns: 1 });
      if (!out.failed) continue;
      const replayPath = commandsReplayPath(out.counterexample?.[0]);
      replay = `${out.counterexamplePath ?? ''}${replayPath === undefined ? '' : `~${replayPath}`}`;
    }
    // Replay the (shrunk) counterexample so `last` holds its trace: the shrinker's last run may
    // have been a passing candidate.
    const [path, replayPath] = replay.split('~');
    const again = fc.check(makeProp(replayPath), { seed, numRuns: 1, path: path ?? '', endOnFailure: true });
    if (!again.failed) {
      if (options.replay !== undefined) log(`seed ${seed}: replay '${replay}' passes`);
      else
        failures.push({
          seed,
          repro: dstRepro(seed, replay, options.platform),
          trace: ['replay did not fail again: nondeterminism'],
        });
      continue;
    }
    const trace = [
      `platform ${platform}, seed ${seed}`,
      ...last.trace,
      last.error ?? 'INVARIANT: (no error recorded)',
    ];
    const failure: DstFailure = { seed, repro: dstRepro(seed, replay, options.platform), trace };
    failures.push(failure);
    log(`seed ${seed}: FAILED (${trace.length - 2} steps after shrinking)`);
    for (const l of trace) log(`  ${l}`);
    log(`  repro: ${failure.repro}`);
  }
  return { seeds: count, steps: totalSteps, checks: totalChecks, failures, wallMs: performance.now() - t0 };
}
