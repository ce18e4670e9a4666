/**
 * The `iommu-sim` command line: `run`, `inspect`, `workloads`, `--help`. Everything a user can get
 * wrong (a missing or corrupt table, an unknown workload, a workload file with a bad field, a
 * workload asking for a device the platform lacks) ends in one line on stderr and a non-zero exit,
 * never a stack trace.
 */

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { createProgress } from './cli/progress.js';
import { toJson } from './output/json.js';
import { runResultSchema, validateRunJson } from './output/json-schema.js';
import { renderReport } from './output/report.js';
import { formatSummary, formatTopology } from './output/summary-table.js';
import { defaultPlatforms } from './platform/builtin.js';
import { loadPlatform } from './platform/load.js';
import type { PlatformDescription } from './platform/platform.js';
import { CANNOT_RUN, inspectPlatform, type PlannedWorkload, runPlan } from './run.js';
import { builtinWorkloads, findBuiltinWorkload } from './workloads/registry.js';
import { parseWorkloadFile } from './workloads/workload-file.js';

/** Where the command writes and where relative paths start. */
export interface CliIo {
  /** Standard output. */
  readonly stdout: (text: string) => void;
  /** Standard error. */
  readonly stderr: (text: string) => void;
  /** Directory relative paths are resolved against. */
  readonly cwd: string;
  /** Whether stderr is a terminal (progress bar). */
  readonly isTty: boolean;
}

/** A user error: printed as one line, exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function parseSeed(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 0xffffffff)
    throw new UsageError(`--seed wants an integer 0..4294967295, got ${JSON.stringify(v)}`);
  return Number(v);
}

function resolveWorkloads(specs: readonly string[], io: CliIo): PlannedWorkload[] {
  if (specs.length === 0) return builtinWorkloads().map((workload) => ({ workload, required: false }));
  return specs.map((spec): PlannedWorkload => {
    const builtin = findBuiltinWorkload(spec);
    if (builtin !== undefined) return { workload: builtin, required: true };
    const path = isAbsolute(spec) ? spec : resolve(io.cwd, spec);
    const looksLikeFile = /\.(ya?ml|json)$/i.test(spec) || spec.includes('/');
    if (!existsSync(path)) {
      if (looksLikeFile) throw new UsageError(`${spec}: no such workload file`);
      throw new UsageError(
        `unknown workload ${JSON.stringify(spec)} (built-in: ${builtinWorkloads()
          .map((w) => w.name)
          .join(', ')}; or a .yaml/.json workload file)`,
      );
    }
    const text = readFileSync(path, 'utf8');
    return { workload: parseWorkloadFile(text, spec, builtinWorkloads()), required: true };
  });
}

function resolvePlatforms(files: readonly string[], io: CliIo): PlatformDescription[] {
  if (files.length === 0) return defaultPlatforms();
  return files.map((f) => loadPlatform(isAbsolute(f) ? f : resolve(io.cwd, f), f));
}

function writeOut(file: string, text: string, io: CliIo): void {
  const path = isAbsolute(file) ? file : resolve(io.cwd, file);
  try {
    writeFileSync(path, text);
  } catch (e) {
    throw new UsageError(`${file}: cannot write (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

function program(io: CliIo, setStatus: (n: number) => void): Command {
  const cmd = new Command('iommu-sim')
    .description(
      'Build a machine from a real platform description (ACPI DMAR / IORT, device tree), run IOMMU workloads through the whole @iommu-ts stack down to the hardware models, and report what happened.',
    )
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError: () => {} })
    .showSuggestionAfterError(true);

  cmd
    .command('run')
    .description(
      'run workloads (default: every built-in workload on the embedded x86 VT-d and Arm SMMUv3 machines)',
    )
    .addOption(
      new Option(
        '-p, --platform <file>',
        'DMAR or IORT table (binary, acpidump or iasl text) or .dtb; repeatable',
      ).argParser(collect),
    )
    .addOption(
      new Option(
        '-w, --workload <name|file>',
        'built-in workload name or a .yaml/.json workload file; repeatable',
      ).argParser(collect),
    )
    .option('-s, --seed <n>', 'seed for scheduling and data (same seed, same run)', '1')
    .option('--json <file>', 'write the figures as JSON (its JSON Schema: iommu-sim schema)')
    .option('--report <file.html>', 'write an HTML report with the IOVA maps, timelines and topology')
    .option(
      '--dma <mode>',
      'DMA-API domains: strict (unmaps invalidate at once) or lazy (flush queues, DMA-FQ)',
      'strict',
    )
    .option('--no-progress', 'no progress bar')
    .action(
      (opts: {
        platform?: string[];
        workload?: string[];
        seed: string;
        json?: string;
        report?: string;
        dma: string;
        progress: boolean;
      }) => {
        const seed = parseSeed(opts.seed);
        if (opts.dma !== 'strict' && opts.dma !== 'lazy')
          throw new UsageError(`--dma wants strict or lazy, got ${JSON.stringify(opts.dma)}`);
        const platforms = resolvePlatforms(opts.platform ?? [], io);
        const workloads = resolveWorkloads(opts.workload ?? [], io);
        const bar = opts.progress && io.isTty ? createProgress(platforms.length * workloads.length) : null;
        const run = runPlan(
          { platforms, workloads, seed, dmaStrict: opts.dma === 'strict' },
          {
            onStart: (p, w, i) => bar?.start(i, `${p} / ${w}`),
            onProgress: (d, t) => bar?.progress(d, t),
          },
        );
        bar?.stop();
        io.stdout(formatSummary(run, { color: io.isTty }));
        if (opts.json !== undefined) {
          const text = toJson(run);
          const problems = validateRunJson(JSON.parse(text));
          if (problems.length > 0)
            throw new Error(`internal: the JSON does not match its schema: ${problems[0]}`);
          writeOut(opts.json, text, io);
        }
        if (opts.report !== undefined) writeOut(opts.report, renderReport(run), io);
        const failed = run.results.filter((r) => r.status === 'failed');
        const cannot = failed.find((r) => r.message?.startsWith(CANNOT_RUN) === true);
        if (cannot !== undefined) {
          // A workload the user named whose devices the platform lacks: bad input, not a failure.
          io.stderr(`iommu-sim: ${cannot.platform}: workload ${cannot.workload} ${cannot.message ?? ''}\n`);
          setStatus(2);
          return;
        }
        for (const f of failed)
          io.stderr(`iommu-sim: ${f.platform} / ${f.workload} FAILED: ${f.message ?? ''}\n`);
        setStatus(failed.length > 0 ? 1 : 0);
      },
    );

  cmd
    .command('inspect')
    .description('print the topology built from a platform description')
    .requiredOption('-p, --platform <file>', 'DMAR or IORT table (binary, acpidump or iasl text) or .dtb')
    .option('--json', 'print the topology as JSON')
    .action((opts: { platform: string; json?: boolean }) => {
      const [desc] = resolvePlatforms([opts.platform], io);
      const view = inspectPlatform(desc as PlatformDescription);
      io.stdout(
        opts.json === true
          ? `${JSON.stringify(view, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), 2)}\n`
          : formatTopology(view),
      );
      setStatus(0);
    });

  cmd
    .command('schema')
    .description('print the JSON Schema (draft 2020-12) of the --json output')
    .action(() => {
      io.stdout(`${JSON.stringify(runResultSchema, null, 2)}\n`);
      setStatus(0);
    });

  cmd
    .command('workloads')
    .description('list the built-in workloads and their parameters')
    .action(() => {
      for (const w of builtinWorkloads()) {
        io.stdout(`${w.name}: ${w.description}\n`);
        for (const [k, s] of Object.entries(w.params)) {
          io.stdout(`    ${k} (${s.type}, default ${JSON.stringify(s.default)}): ${s.description}\n`);
        }
      }
      setStatus(0);
    });
  return cmd;
}

/**
 * Run the command line.
 * @param argv - the arguments after the program name (`['run', '--seed', '3']`)
 * @param io - where to write
 * @returns the exit status: 0 success, 1 a workload failed, 2 bad input or usage
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let status = 0;
  const cmd = program(io, (n) => {
    status = n;
  });
  const args = argv.length === 0 ? ['run'] : [...argv];
  try {
    await cmd.parseAsync(args, { from: 'user' });
    return status;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.help' ||
        e.code === 'commander.version'
      )
        return 0;
      io.stderr(`iommu-sim: ${e.message.replace(/^error: /, '')}\n`);
      return 2;
    }
    const msg = e instanceof Error ? e.message : String(e);
    io.stderr(`iommu-sim: ${msg.split('\n')[0] ?? msg}\n`);
    return e instanceof Error && e.message.startsWith('internal:') ? 1 : 2;
  }
}
