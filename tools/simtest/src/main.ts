/**
 * The `simtest` command line: `dst` (seeded deterministic simulation), `fuzz` (uAPI fuzzing),
 * `failnth` (fault injection over every uAPI flow), and with no command all three at the budget CI
 * runs on every change. Exit status 0 when everything held, 1 on any violation, 2 on bad usage.
 */

import { Command, CommanderError } from 'commander';
import { runDst } from './dst/run.js';
import { runFailNth } from './failnth/run.js';
import { runFuzz } from './fuzz/run.js';
import type { DstReport, FailNthReport, FuzzReport } from './report.js';

/** Where the command writes. */
export interface SimtestIo {
  /** Standard output. */
  readonly stdout: (text: string) => void;
  /** Standard error. */
  readonly stderr: (text: string) => void;
}

/** The budget CI runs on every change. */
export const CI_BUDGET = { seeds: 200, fuzzCalls: 20_000 } as const;

const int =
  (name: string, min: number) =>
  (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < min)
      throw new CommanderError(
        2,
        'simtest.usage',
        `${name} wants an integer >= ${min}, got ${JSON.stringify(v)}`,
      );
    return Number(v);
  };

const perMinute = (n: number, ms: number): string => (ms <= 0 ? '-' : ((n * 60_000) / ms).toFixed(0));
const perSecond = (n: number, ms: number): string => (ms <= 0 ? '-' : ((n * 1000) / ms).toFixed(0));

function printDst(r: DstReport, io: SimtestIo): boolean {
  io.stdout(
    `dst: ${r.seeds} seeds, ${r.steps} steps, ${r.checks} invariant checks in ${(r.wallMs / 1000).toFixed(1)} s (${perMinute(r.seeds, r.wallMs)} seeds/min): ${r.failures.length === 0 ? 'all held' : `${r.failures.length} FAILED`}\n`,
  );
  for (const f of r.failures) {
    io.stdout(`  seed ${f.seed} failed; reproduce with: ${f.repro}\n`);
    for (const line of f.trace) io.stdout(`    ${line}\n`);
  }
  return r.failures.length === 0;
}

function printFuzz(r: FuzzReport, io: SimtestIo): boolean {
  io.stdout(
    `fuzz: ${r.calls} ioctl calls (seed ${r.seed}), ${Object.keys(r.byIoctl).length} ioctls, ${r.checks} invariant checks in ${(r.wallMs / 1000).toFixed(1)} s (${perSecond(r.calls, r.wallMs)} calls/s): ${r.problems.length === 0 ? 'no violation' : `${r.problems.length} PROBLEMS`}\n`,
  );
  for (const [name, s] of Object.entries(r.byIoctl).sort()) {
    const errs = Object.entries(s.errnos)
      .sort((a, b) => b[1] - a[1])
      .map(([e, n]) => `${e}:${n}`)
      .join(' ');
    io.stdout(
      `  ${name.padEnd(44)} ${String(s.calls).padStart(8)} calls ${String(s.ok).padStart(8)} ok  ${errs}\n`,
    );
  }
  for (const p of r.problems) io.stdout(`  PROBLEM ${p}\n`);
  return r.problems.length === 0;
}

function printFailNth(r: FailNthReport, io: SimtestIo): boolean {
  const points = r.flows.reduce((n, f) => n + f.points, 0);
  io.stdout(
    `failnth: ${r.flows.length} flows, ${points} injection points, each made to fail once, in ${(r.wallMs / 1000).toFixed(1)} s: ${r.problems.length === 0 ? 'every failure returned an errno and left no trace' : `${r.problems.length} PROBLEMS`}\n`,
  );
  for (const f of r.flows) {
    const errs = Object.entries(f.errnos)
      .map(([e, n]) => `${e}:${n}`)
      .join(' ');
    io.stdout(`  ${f.file.padEnd(7)} ${f.name.padEnd(56)} ${String(f.points).padStart(4)} points  ${errs}\n`);
  }
  for (const p of r.problems) io.stdout(`  PROBLEM ${p}\n`);
  return r.problems.length === 0;
}

function program(io: SimtestIo, setStatus: (n: number) => void): Command {
  const log = (line: string) => io.stderr(`${line}\n`);
  const cmd = new Command('simtest')
    .description(
      'Reliability tests of the whole @iommu-ts stack. With no command: the CI budget of all three modes (dst, fuzz, failnth).',
    )
    .option('--seeds <n>', 'deterministic-simulation seeds', int('--seeds', 0), CI_BUDGET.seeds)
    .option('--fuzz-calls <n>', 'fuzzing ioctl calls', int('--fuzz-calls', 0), CI_BUDGET.fuzzCalls)
    .option('--seed <n>', 'first seed (dst) and fuzzing seed', int('--seed', 0), 1)
    .option('-v, --verbose', 'progress lines on stderr')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError: () => {} })
    .action((o: { seeds: number; fuzzCalls: number; seed: number; verbose?: boolean }) => {
      const l = o.verbose === true ? log : undefined;
      const a = printDst(runDst({ seeds: o.seeds, firstSeed: o.seed, ...(l ? { log: l } : {}) }), io);
      const b = printFuzz(runFuzz({ calls: o.fuzzCalls, seed: o.seed, ...(l ? { log: l } : {}) }), io);
      const c = printFailNth(runFailNth(l ? { log: l } : {}), io);
      setStatus(a && b && c ? 0 : 1);
    });
  cmd
    .command('dst')
    .description(
      'seeded random scenarios over a whole machine, invariants after every step; failures shrink and print a repro line',
    )
    .option('--seeds <n>', 'how many seeds', int('--seeds', 1), CI_BUDGET.seeds)
    .option('--seed <n>', 'first seed', int('--seed', 0), 1)
    .option('--steps <n>', 'operations per scenario', int('--steps', 1))
    .option('--platform <name>', 'x86-vtd, arm-smmuv3 or both', 'both')
    .option('--replay <path>', 'fast-check replay path of a failing seed (from a repro line)')
    .option('-v, --verbose', 'progress lines on stderr')
    .action(
      (o: {
        seeds: number;
        seed: number;
        steps?: number;
        platform: string;
        replay?: string;
        verbose?: boolean;
      }) => {
        if (!['x86-vtd', 'arm-smmuv3', 'both'].includes(o.platform))
          throw new CommanderError(
            2,
            'simtest.usage',
            `--platform wants x86-vtd, arm-smmuv3 or both, got ${JSON.stringify(o.platform)}`,
          );
        const r = runDst({
          seeds: o.replay === undefined ? o.seeds : 1,
          firstSeed: o.seed,
          platform: o.platform as 'x86-vtd' | 'arm-smmuv3' | 'both',
          ...(o.steps === undefined ? {} : { steps: o.steps }),
          ...(o.replay === undefined ? {} : { replay: o.replay }),
          ...(o.verbose === true ? { log } : {}),
        });
        setStatus(printDst(r, io) ? 0 : 1);
      },
    );
  cmd
    .command('fuzz')
    .description(
      'random and mutated ioctls on iommufd, VFIO and /dev/ioasid; only errnos allowed, invariants checked',
    )
    .option('--calls <n>', 'ioctl calls', int('--calls', 1), CI_BUDGET.fuzzCalls)
    .option('--seed <n>', 'seed', int('--seed', 0), 1)
    .option('-v, --verbose', 'progress lines on stderr')
    .action((o: { calls: number; seed: number; verbose?: boolean }) => {
      setStatus(
        printFuzz(runFuzz({ calls: o.calls, seed: o.seed, ...(o.verbose === true ? { log } : {}) }), io)
          ? 0
          : 1,
      );
    });
  cmd
    .command('failnth')
    .description('fail every injection point of every iommufd, VFIO and ioasid ioctl flow in turn')
    .option('--flow <name...>', 'only these flows (substring match)')
    .option('-v, --verbose', 'progress lines on stderr')
    .action((o: { flow?: string[]; verbose?: boolean }) => {
      setStatus(
        printFailNth(
          runFailNth({ ...(o.flow ? { flows: o.flow } : {}), ...(o.verbose === true ? { log } : {}) }),
          io,
        )
          ? 0
          : 1,
      );
    });
  return cmd;
}

/**
 * Run the command line.
 * @param argv - arguments after the program name
 * @param io - where to write
 * @returns exit status: 0 all held, 1 a violation, 2 bad usage
 */
export async function main(argv: readonly string[], io: SimtestIo): Promise<number> {
  let status = 0;
  const cmd = program(io, (n) => {
    status = n;
  });
  try {
    await cmd.parseAsync([...argv], { from: 'user' });
    return status;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help') return 0;
      io.stderr(`simtest: ${e.message.replace(/^error: /, '')}\n`);
      return 2;
    }
    throw e;
  }
}
