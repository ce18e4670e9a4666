// The ioasid suite: the IdAllocator of @iommu-ts/ioasid (lowest-free and cyclic) against a naive
// baseline (a Set scanned linearly from `min`) in the 2^20 PCIe PASID space. The space is
// prefilled to a given occupancy with seeded random IDs (allocAt); then each cycle allocates one
// ID in [0, 2^20 - 1] and frees one randomly chosen live ID, keeping occupancy steady. One timed
// batch = all cycles of one implementation at one occupancy; ns/op = batch time / cycles, where
// one op is one alloc + free cycle.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Prng } from '@iommu-ts/base';
import { IdAllocator } from '@iommu-ts/ioasid';
import { Bench } from 'tinybench';
import { machineInfo } from './machine.js';
import { parseBenchOptions } from './options.js';
import { printTable } from './table.js';

const LOWEST = 'IdAllocator lowest-free';
const CYCLIC = 'IdAllocator cyclic';
const NAIVE = 'naive Set + linear scan';
const IMPLS = [LOWEST, CYCLIC, NAIVE] as const;
type ImplName = (typeof IMPLS)[number];

/** The PCIe PASID space (PCI_PASID_MAX). */
const SPACE = 2 ** 20;
const MAX_ID = SPACE - 1;
const OCCUPANCIES = [0, 0.5, 0.99] as const;

/** The baseline: lowest free ID by scanning a Set from `min`. */
class NaiveAllocator {
  private readonly set = new Set<number>();
  alloc(min: number, max: number): number {
    for (let id = min; id <= max; id++) {
      if (!this.set.has(id)) {
        this.set.add(id);
        return id;
      }
    }
    return -1;
  }
  allocAt(id: number): boolean {
    if (this.set.has(id)) return false;
    this.set.add(id);
    return true;
  }
  free(id: number): boolean {
    return this.set.delete(id);
  }
  get size(): number {
    return this.set.size;
  }
}

/** Pre-generated data for one occupancy: the prefill IDs and one random draw per cycle. */
interface Workload {
  occupancy: number;
  /** IDs to take before timing starts, distinct, in random order. */
  prefill: Uint32Array;
  /** One random 32-bit draw per cycle, choosing which live ID to free. */
  picks: Uint32Array;
}

function makeWorkload(occupancy: number, cycles: number, seed: number): Workload {
  const rng = new Prng(seed);
  const all = new Uint32Array(SPACE);
  for (let i = 0; i < SPACE; i++) all[i] = i;
  rng.shuffle(all);
  const prefill = all.slice(0, Math.round(occupancy * SPACE));
  const picks = new Uint32Array(cycles);
  for (let i = 0; i < cycles; i++) picks[i] = rng.nextU32();
  return { occupancy, prefill, picks };
}

/** The state one timed batch runs on: an allocator and the array of its live IDs. */
interface Run<A> {
  alloc: A;
  live: Int32Array;
  n: number;
  /** Cycles run so far. */
  done: number;
  /** Sum of the IDs allocated so far: a checksum to compare implementations with. */
  sum: number;
}

function prepare<A extends { allocAt(id: number): boolean }>(alloc: A, w: Workload): Run<A> {
  const live = new Int32Array(SPACE);
  for (let i = 0; i < w.prefill.length; i++) {
    alloc.allocAt(w.prefill[i]!);
    live[i] = w.prefill[i]!;
  }
  return { alloc, live, n: w.prefill.length, done: 0, sum: 0 };
}

// Two copies of the cycle loop, one per class, so each call site stays monomorphic.

/** Run `cycles` alloc+free cycles on an IdAllocator. */
function cyclesOurs(run: Run<IdAllocator>, picks: Uint32Array, cycles: number): void {
  const { alloc, live } = run;
  let n = run.n;
  let sum = 0;
  for (let c = 0; c < cycles; c++) {
    const id = alloc.alloc(0, MAX_ID);
    if (id < 0) throw new Error('IdAllocator: space exhausted');
    sum += id;
    live[n++] = id;
    const j = Math.floor((picks[c]! * n) / 2 ** 32);
    alloc.free(live[j]!);
    live[j] = live[--n]!;
  }
  run.n = n;
  run.done += cycles;
  run.sum += sum;
}

/**
 * The same loop on the naive allocator, stopping early once `performance.now()` passes
 * `deadline` (checked every 16 cycles).
 */
function cyclesNaive(run: Run<NaiveAllocator>, picks: Uint32Array, cycles: number, deadline: number): void {
  const { alloc, live } = run;
  let n = run.n;
  let sum = 0;
  let c = 0;
  for (; c < cycles; c++) {
    if ((c & 15) === 15 && performance.now() > deadline) break;
    const id = alloc.alloc(0, MAX_ID);
    if (id < 0) throw new Error('naive: space exhausted');
    sum += id;
    live[n++] = id;
    const j = Math.floor((picks[c]! * n) / 2 ** 32);
    alloc.free(live[j]!);
    live[j] = live[--n]!;
  }
  run.n = n;
  run.done += c;
  run.sum += sum;
}

interface Options {
  cycles: number;
  naiveCycles: number;
  naiveSeconds: number;
  rounds: number;
  seed: number;
}

function parseOptions(args: string[]): Options {
  return parseBenchOptions(args, {
    cycles: 1_000_000,
    naiveCycles: 20_000,
    naiveSeconds: 3,
    rounds: 1,
    seed: 20_240_601,
  });
}

/** Time one batch with tinybench (setup untimed); returns the batch time in ms. */
async function timeBatch(name: string, setup: () => void, batch: () => void): Promise<number> {
  const bench = new Bench({ iterations: 1, time: 0, warmup: false });
  bench.add(name, batch, { beforeEach: setup });
  await bench.run();
  const task = bench.tasks[0];
  if (task?.result?.error) throw task.result.error;
  return task?.result?.latency.mean ?? Number.NaN;
}

interface Measurement {
  nsPerOp: number;
  /** Cycles actually run (the naive rows may stop at their time limit). */
  cycles: number;
  /** Tree nodes in use at the end (IdAllocator only). */
  nodes?: number;
}

/** Time `cycles` cycles (the naive allocator: at most `seconds`) of one implementation. */
async function measure(impl: ImplName, w: Workload, cycles: number, seconds: number): Promise<Measurement> {
  if (impl === NAIVE) {
    let run: Run<NaiveAllocator> | undefined;
    const ms = await timeBatch(
      impl,
      () => {
        run = prepare(new NaiveAllocator(), w);
      },
      () => {
        cyclesNaive(run!, w.picks, cycles, performance.now() + seconds * 1000);
      },
    );
    const r = run!;
    if (r.alloc.size !== w.prefill.length) throw new Error(`${impl}: occupancy drifted`);
    // Untimed cross-check: lowest-free IdAllocator must hand out the very same IDs.
    const ours = prepare(new IdAllocator(), w);
    cyclesOurs(ours, w.picks, r.done);
    if (ours.sum !== r.sum) throw new Error(`${impl} and ${LOWEST} disagree after ${r.done} cycles`);
    return { nsPerOp: (ms * 1e6) / r.done, cycles: r.done };
  }
  let run: Run<IdAllocator> | undefined;
  const ms = await timeBatch(
    impl,
    () => {
      run = prepare(new IdAllocator({ cyclic: impl === CYCLIC }), w);
    },
    () => {
      cyclesOurs(run!, w.picks, cycles);
    },
  );
  if (run!.alloc.size !== w.prefill.length) throw new Error(`${impl}: occupancy drifted`);
  return { nsPerOp: (ms * 1e6) / cycles, cycles, nodes: run!.alloc.nodeCount };
}

export async function runIoasidSuite(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  const naiveCycles = Math.min(opts.naiveCycles, opts.cycles);
  const machine = machineInfo();
  console.log(
    `ioasid bench: one op = alloc(0, 2^20-1) + free of a random live ID; IdAllocator ${opts.cycles} cycles ` +
      `per row, naive up to ${naiveCycles} cycles or ${opts.naiveSeconds} s per row; ` +
      `best of ${opts.rounds} round(s) after a warm-up round at 1/10`,
  );
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.platform}`);

  const results: Array<{ occupancy: number } & Partial<Record<ImplName, Measurement>>> = [];
  const started = Date.now();
  for (const [k, occupancy] of OCCUPANCIES.entries()) {
    const w = makeWorkload(occupancy, opts.cycles, opts.seed + k);
    const row: { occupancy: number } & Partial<Record<ImplName, Measurement>> = { occupancy };
    for (const impl of IMPLS) {
      const cycles = impl === NAIVE ? naiveCycles : opts.cycles;
      await measure(impl, w, Math.max(1, Math.floor(cycles / 10)), opts.naiveSeconds / 10);
      for (let r = 0; r < opts.rounds; r++) {
        const m = await measure(impl, w, cycles, opts.naiveSeconds);
        const best = row[impl];
        if (best === undefined || m.nsPerOp < best.nsPerOp) row[impl] = m;
      }
    }
    results.push(row);
    console.log(
      `  occupancy ${(occupancy * 100).toFixed(0)}%: done at ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  }

  const ns = (m: Measurement | undefined): string => (m === undefined ? '-' : m.nsPerOp.toFixed(0));
  const ratio = (a: Measurement | undefined, b: Measurement | undefined): string =>
    a === undefined || b === undefined ? '-' : `${(a.nsPerOp / b.nsPerOp).toFixed(1)}x`;
  const header = [
    'occupancy',
    `${LOWEST} ns/op`,
    `${CYCLIC} ns/op`,
    `${NAIVE} ns/op`,
    'naive cycles run',
    'naive / lowest-free',
    'naive / cyclic',
  ];
  const table = [
    header,
    ...results.map((r) => [
      `${(r.occupancy * 100).toFixed(0)}%`,
      ns(r[LOWEST]),
      ns(r[CYCLIC]),
      ns(r[NAIVE]),
      String(r[NAIVE]?.cycles ?? '-'),
      ratio(r[NAIVE], r[LOWEST]),
      ratio(r[NAIVE], r[CYCLIC]),
    ]),
  ];
  printTable(table);
  console.log('');
  console.log(
    `one op = alloc + free; IdAllocator rows ran ${opts.cycles} cycles each; naive rows ran the cycles shown ` +
      `(capped at ${naiveCycles} cycles and ${opts.naiveSeconds} s: a linear scan is far too slow for more).`,
  );

  const outFile = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'ioasid.json');
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(
    outFile,
    `${JSON.stringify(
      {
        suite: 'ioasid',
        date: new Date().toISOString(),
        machine,
        options: { ...opts, naiveCycles },
        workload: { space: SPACE, allocRange: [0, MAX_ID], occupancies: OCCUPANCIES },
        results: results.map((r) => ({
          occupancy: r.occupancy,
          nsPerOp: Object.fromEntries(IMPLS.map((i) => [i, r[i]?.nsPerOp])),
          cycles: Object.fromEntries(IMPLS.map((i) => [i, r[i]?.cycles])),
          nodesAtEnd: { [LOWEST]: r[LOWEST]?.nodes, [CYCLIC]: r[CYCLIC]?.nodes },
          naiveOverLowestFree: (r[NAIVE]?.nsPerOp ?? Number.NaN) / (r[LOWEST]?.nsPerOp ?? Number.NaN),
          naiveOverCyclic: (r[NAIVE]?.nsPerOp ?? Number.NaN) / (r[CYCLIC]?.nsPerOp ?? Number.NaN),
        })),
      },
      null,
      2,
    )}\n`,
  );
  console.log(`results written to ${outFile}`);
}
