/**
 * The fail_nth harness (after tools/testing/selftests/iommu/iommufd_fail_nth.c): every flow is run
 * with its 1st, 2nd, … injection point failing, on a fresh state each time, until a run passes
 * every point without reaching the armed one. Each failure must surface as an `ErrnoError`, leave
 * the state exactly as it was before the failing call, raise no driver warning, and after teardown
 * return the RAM to its baseline.
 */

import { faultInjector, isErrnoError } from '@iommu-ts/base';
import type { FailNthFlowReport, FailNthReport } from '../report.js';
import type { FailNthFlow, FailNthRun } from './flow.js';
import { failNthFlows } from './flows.js';

/** Options of {@link runFailNth}. */
export interface RunFailNthOptions {
  /** Names of the flows to run (exact, or a substring); default every flow. */
  readonly flows?: readonly string[];
  /** Progress lines (one per flow). */
  readonly log?: (line: string) => void;
}

/** A run of one flow never needs more points than this; beyond it the flow is reported as looping. */
const MAX_POINTS = 5000;

/** First line where two snapshots differ, as `before → after`. */
function firstDiff(before: string, after: string): string {
  const a = before.split('\n');
  const b = after.split('\n');
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `${a[i] ?? '(none)'} → ${b[i] ?? '(none)'}`;
  }
  return '(no difference)';
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.constructor.name}: ${e.message}`;
  return String(e);
}

/** Tear a run down and check that it returned every page. */
function finish(run: FailNthRun, where: string, problems: string[]): void {
  try {
    run.teardown();
  } catch (e) {
    problems.push(`${where}: teardown threw ${describe(e)}`);
    return;
  }
  const now = run.allocatedPages();
  if (now !== run.baselinePages)
    problems.push(`${where}: ${now - run.baselinePages} page(s) still allocated after teardown`);
  const w = run.warnings();
  if (w.length > 0) problems.push(`${where}: driver warning at teardown: ${w[0]}`);
}

/**
 * Run the steps of `run` with the injector armed at `nth` (0: count only).
 * @returns the injected call (or null), and the outcome
 */
function runArmed(
  run: FailNthRun,
  nth: number,
  where: string,
  problems: string[],
): { fired: { nth: number; site: string } | null; error: unknown; failedStep: number } {
  let error: unknown;
  let failedStep = -1;
  let before = '';
  faultInjector.arm(nth);
  try {
    for (let i = 0; i < run.steps.length; i++) {
      const calls = faultInjector.calls;
      before = run.snapshot();
      if (faultInjector.calls !== calls) problems.push(`${where}: the snapshot passed an injection point`);
      try {
        (run.steps[i] as { fn: () => void }).fn();
      } catch (e) {
        error = e;
        failedStep = i;
        break;
      }
    }
  } finally {
    faultInjector.disarm();
  }
  const fired = faultInjector.fired;
  if (failedStep >= 0 && fired !== null) {
    const label = (run.steps[failedStep] as { label: string }).label;
    if (!isErrnoError(error)) {
      problems.push(`${where} (${fired.site}) in ${label}: threw ${describe(error)}, not an ErrnoError`);
    } else {
      const after = run.snapshot();
      if (after !== before)
        problems.push(`${where} (${fired.site}) in ${label}: state changed: ${firstDiff(before, after)}`);
    }
  }
  return { fired, error, failedStep };
}

/**
 * Run one flow under fail_nth.
 * @param flow - the flow
 * @param problems - collects violations
 * @returns the flow's report
 */
export function runFailNthFlow(flow: FailNthFlow, problems: string[]): FailNthFlowReport {
  const sites: Record<string, number> = {};
  const errnos: Record<string, number> = {};
  let points = -1;
  for (let n = 1; n <= MAX_POINTS; n++) {
    const where = `${flow.name}: fail_nth ${n}`;
    let run: FailNthRun;
    try {
      run = flow.setup();
    } catch (e) {
      problems.push(`${where}: setup threw ${describe(e)}`);
      points = n - 1;
      break;
    }
    const warned = run.warnings().length;
    const { fired, error, failedStep } = runArmed(run, n, where, problems);
    if (fired === null) {
      if (failedStep >= 0) problems.push(`${where}: failed without injection: ${describe(error)}`);
      points = n - 1;
    } else {
      sites[fired.site] = (sites[fired.site] ?? 0) + 1;
      if (failedStep < 0)
        problems.push(`${where} (${fired.site}): the flow succeeded although the point failed`);
      else if (isErrnoError(error)) errnos[error.code] = (errnos[error.code] ?? 0) + 1;
    }
    if (run.warnings().length > warned)
      problems.push(`${where}: driver warning: ${run.warnings()[warned] ?? ''}`);
    finish(run, where, problems);
    if (points >= 0) break;
  }
  if (points < 0) {
    problems.push(`${flow.name}: still failing after ${MAX_POINTS} points`);
    points = MAX_POINTS;
  }
  return { name: flow.name, file: flow.file, points, sites, errnos };
}

/**
 * Run the fail_nth harness over the selected flows (every iommufd, VFIO and `/dev/ioasid` flow by
 * default).
 * @param options - flow filter, progress log
 * @returns one report per flow, the problems found, and the wall time
 * @throws Error when a requested flow name matches no flow
 */
export function runFailNth(options: RunFailNthOptions = {}): FailNthReport {
  const t0 = performance.now();
  const all = failNthFlows();
  let selected: FailNthFlow[] = all;
  if (options.flows !== undefined) {
    selected = [];
    for (const want of options.flows) {
      const exact = all.filter((f) => f.name === want);
      const hits = exact.length > 0 ? exact : all.filter((f) => f.name.includes(want));
      if (hits.length === 0) throw new Error(`no fail_nth flow matches '${want}'`);
      for (const f of hits) if (!selected.includes(f)) selected.push(f);
    }
  }
  const problems: string[] = [];
  const flows: FailNthFlowReport[] = [];
  for (const flow of selected) {
    const r = runFailNthFlow(flow, problems);
    flows.push(r);
    options.log?.(
      `${flow.name}: ${r.points} points (${Object.entries(r.sites)
        .map(([s, k]) => `${s} ${k}`)
        .join(', ')})`,
    );
  }
  return { flows, problems, wallMs: performance.now() - t0 };
}
