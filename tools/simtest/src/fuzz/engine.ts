/**
 * The fuzzing loop: draw a generator by weight, make a fresh call or mutate a recently successful
 * one, run it, and sort the outcome: success, an `ErrnoError` (counted by errno), or anything else
 * (a problem, with the seed, call index, ioctl, argument bytes and the first lines of the stack).
 * Invariants are checked every so many calls, the files are closed and reopened periodically (the
 * closed-state invariants are checked then), and once more at the end.
 */

import { isErrnoError, Prng } from '@iommu-ts/base';
import type { FuzzIoctlReport, FuzzReport } from '../report.js';
import { type FuzzCall, type FuzzGenerator, mutateBytes } from './call.js';
import { FuzzValues, hex } from './values.js';

/** What the loop fuzzes. */
export interface FuzzSubject {
  /** Where calls come from. */
  readonly generators: readonly FuzzGenerator[];
  /**
   * The invariants between calls.
   * @returns violations, one line each
   */
  check(): string[];
  /**
   * Close every file, check the closed-state invariants, and open them again.
   * @returns violations
   */
  recycle(): string[];
  /**
   * Close every file and check the closed-state invariants (the end of the run).
   * @returns violations
   */
  finish(): string[];
  /**
   * Called before each fresh call (to refresh memory the structs point at, say).
   * @param v - the run's values
   */
  beforeCall?(v: FuzzValues): void;
}

/** Options of {@link fuzzLoop}. */
export interface FuzzLoopOptions {
  /** ioctl calls to make. */
  readonly calls: number;
  /** The seed of every random choice. */
  readonly seed: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
  /** Calls between invariant checks (default 1000). */
  readonly checkEvery?: number;
  /** Calls between close-and-reopen cycles (default 4000). */
  readonly recycleEvery?: number;
}

const MAX_PROBLEMS = 100;
const RECENT = 16;

function stackHead(e: unknown): string {
  if (e instanceof Error) {
    const lines = (e.stack ?? `${e.name}: ${e.message}`).split('\n');
    const frame = lines.find((l) => l.trimStart().startsWith('at '))?.trim();
    return frame === undefined ? (lines[0] ?? e.name) : `${lines[0]} (${frame})`;
  }
  return `non-Error thrown: ${String(e)}`;
}

/**
 * Run the fuzzing loop.
 * @param subject - files, generators and invariants
 * @param options - budget, seed, log and cadences
 * @returns the report (problems empty when nothing but errnos came out and every invariant held)
 */
export function fuzzLoop(subject: FuzzSubject, options: FuzzLoopOptions): FuzzReport {
  const start = performance.now();
  const v = new FuzzValues(new Prng(options.seed));
  const checkEvery = options.checkEvery ?? 1000;
  const recycleEvery = options.recycleEvery ?? 4000;
  const byIoctl: Record<string, { calls: number; ok: number; errnos: Record<string, number> }> = {};
  const problems: string[] = [];
  const recent: FuzzCall[] = [];
  let checks = 0;
  let lastCall = '(none)';
  const total = subject.generators.reduce((s, g) => s + g.weight, 0);
  const report = (lines: string[], when: string) => {
    for (const l of lines)
      if (problems.length < MAX_PROBLEMS)
        problems.push(`seed ${options.seed} ${when}: ${l} (after ${lastCall})`);
  };
  const draw = (): FuzzCall => {
    if (recent.length > 0 && v.chance(0.15)) {
      const base = v.pick(recent);
      if (base.remake !== undefined) return base.remake(mutateBytes(v, base.bytes));
    }
    for (;;) {
      let x = v.rng.nextFloat() * total;
      let gen = subject.generators[0];
      for (const g of subject.generators) {
        gen = g;
        x -= g.weight;
        if (x < 0) break;
      }
      subject.beforeCall?.(v);
      const call = gen?.next(v);
      if (call != null) return call;
    }
  };

  for (let i = 0; i < options.calls; i++) {
    const call = draw();
    // Unknown request numbers share one entry per file; problem lines keep the number.
    const key = `${call.file} ${call.ioctl.startsWith('unknown') ? 'unknown' : call.ioctl}`;
    let stat = byIoctl[key];
    if (stat === undefined) {
      stat = { calls: 0, ok: 0, errnos: {} };
      byIoctl[key] = stat;
    }
    stat.calls++;
    lastCall = `call #${i} ${key}`;
    let ret: number | undefined;
    try {
      ret = call.invoke();
      stat.ok++;
    } catch (e) {
      if (isErrnoError(e)) {
        stat.errnos[e.code] = (stat.errnos[e.code] ?? 0) + 1;
      } else if (problems.length < MAX_PROBLEMS) {
        problems.push(
          `seed ${options.seed} call #${i}: ${call.file} ${call.ioctl} arg ${hex(call.bytes)}: ${stackHead(e)}`,
        );
      }
    }
    if (ret !== undefined) {
      try {
        call.onSuccess?.(ret);
      } catch (e) {
        report([`reading back the result: ${stackHead(e)}`], `call #${i}`);
      }
      if (call.remake !== undefined) {
        recent.push(call);
        if (recent.length > RECENT) recent.shift();
      }
    }
    if ((i + 1) % checkEvery === 0) {
      checks++;
      report(subject.check(), `check after call #${i}`);
    }
    if ((i + 1) % recycleEvery === 0) {
      checks++;
      recent.length = 0;
      report(subject.recycle(), `close-all after call #${i}`);
      options.log?.(`fuzz: ${i + 1} calls, ${problems.length} problems`);
    }
  }
  checks += 2;
  report(subject.check(), 'final check');
  report(subject.finish(), 'final close-all');
  const out: Record<string, FuzzIoctlReport> = {};
  for (const k of Object.keys(byIoctl).sort()) out[k] = byIoctl[k] as FuzzIoctlReport;
  return {
    seed: options.seed,
    calls: options.calls,
    byIoctl: out,
    checks,
    problems,
    wallMs: performance.now() - start,
  };
}
