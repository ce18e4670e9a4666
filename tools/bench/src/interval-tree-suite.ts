// The interval-tree suite: @iommu-ts/interval-tree (number keys) against @flatten-js/interval-tree
// and node-interval-tree on identical pre-generated data. Each timed step is one batch of N
// operations; ops/s = N / batch time.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import FlattenIntervalTree from '@flatten-js/interval-tree';
import { Prng } from '@iommu-ts/base';
import { BigIntIntervalTree, IntervalTree, type IntervalTreeNode } from '@iommu-ts/interval-tree';
import nit from 'node-interval-tree';
import { Bench } from 'tinybench';
import { machineInfo } from './machine.js';
import { parseBenchOptions } from './options.js';
import { printTable } from './table.js';

const NodeIntervalTree = nit.default;

const OURS = '@iommu-ts/interval-tree';
const FLATTEN = '@flatten-js/interval-tree';
const NIT = 'node-interval-tree';
const LIBS = [OURS, FLATTEN, NIT] as const;
type LibName = (typeof LIBS)[number];

const OPS = ['insert', 'point query', 'range query', 'remove all'] as const;
type OpName = (typeof OPS)[number];

/** Workload: N intervals in [0, KEY_SPACE), lengths below MAX_LEN; range queries below MAX_QUERY_LEN. */
interface Workload {
  n: number;
  starts: Int32Array;
  lasts: Int32Array;
  pointQueries: Int32Array;
  rangeStarts: Int32Array;
  rangeLasts: Int32Array;
  /** A permutation of 0..n-1: the removal order. */
  removeOrder: Uint32Array;
}

const KEY_SPACE = 100_000_000;
const MAX_LEN = 1_000;
const MAX_QUERY_LEN = 10_000;

function makeWorkload(n: number, seed: number): Workload {
  const rng = new Prng(seed);
  const starts = new Int32Array(n);
  const lasts = new Int32Array(n);
  const pointQueries = new Int32Array(n);
  const rangeStarts = new Int32Array(n);
  const rangeLasts = new Int32Array(n);
  const removeOrder = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const s = rng.nextInt(KEY_SPACE);
    starts[i] = s;
    lasts[i] = s + rng.nextInt(MAX_LEN);
    pointQueries[i] = rng.nextInt(KEY_SPACE + MAX_LEN);
    const q = rng.nextInt(KEY_SPACE);
    rangeStarts[i] = q;
    rangeLasts[i] = q + rng.nextInt(MAX_QUERY_LEN);
    removeOrder[i] = i;
  }
  rng.shuffle(removeOrder);
  return { n, starts, lasts, pointQueries, rangeStarts, rangeLasts, removeOrder };
}

/** One library behind batch operations, so each loop stays monomorphic. */
interface Adapter {
  reset(): void;
  insertAll(w: Workload): void;
  /** Run every query, materialising each result as an array of values; returns total hits. */
  queryAll(w: Workload, qs: Int32Array, ql: Int32Array): number;
  removeAll(w: Workload): void;
  size(): number;
}

function oursAdapter(): Adapter {
  let tree = new IntervalTree<number>();
  let handles: Array<IntervalTreeNode<number, number>> = [];
  return {
    reset() {
      tree = new IntervalTree<number>();
      handles = [];
    },
    insertAll(w) {
      // push, not `new Array(n)`: a large pre-sized array starts in slow dictionary mode.
      const h: Array<IntervalTreeNode<number, number>> = [];
      for (let i = 0; i < w.n; i++) h.push(tree.insert(w.starts[i]!, w.lasts[i]!, i));
      handles = h;
    },
    queryAll(w, qs, ql) {
      let total = 0;
      for (let i = 0; i < w.n; i++) {
        const s = qs[i]!;
        const l = ql[i]!;
        const out: number[] = [];
        for (let n = tree.iterFirst(s, l); n !== undefined; n = tree.iterNext(n, s, l)) out.push(n.value);
        total += out.length;
      }
      return total;
    },
    removeAll(w) {
      for (let i = 0; i < w.n; i++) tree.remove(handles[w.removeOrder[i]!]!);
    },
    size: () => tree.size,
  };
}

function flattenAdapter(): Adapter {
  let tree = new FlattenIntervalTree<number>();
  return {
    reset() {
      tree = new FlattenIntervalTree<number>();
    },
    insertAll(w) {
      for (let i = 0; i < w.n; i++) tree.insert([w.starts[i]!, w.lasts[i]!], i);
    },
    queryAll(w, qs, ql) {
      let total = 0;
      for (let i = 0; i < w.n; i++) total += tree.search([qs[i]!, ql[i]!]).length;
      return total;
    },
    removeAll(w) {
      for (let i = 0; i < w.n; i++) {
        const k = w.removeOrder[i]!;
        tree.remove([w.starts[k]!, w.lasts[k]!], k);
      }
    },
    size: () => tree.size,
  };
}

function nitAdapter(): Adapter {
  let tree = new NodeIntervalTree<number>();
  return {
    reset() {
      tree = new NodeIntervalTree<number>();
    },
    insertAll(w) {
      for (let i = 0; i < w.n; i++) tree.insert(w.starts[i]!, w.lasts[i]!, i);
    },
    queryAll(w, qs, ql) {
      let total = 0;
      for (let i = 0; i < w.n; i++) total += tree.search(qs[i]!, ql[i]!).length;
      return total;
    },
    removeAll(w) {
      for (let i = 0; i < w.n; i++) {
        const k = w.removeOrder[i]!;
        tree.remove(w.starts[k]!, w.lasts[k]!, k);
      }
    },
    size: () => tree.count,
  };
}

const ADAPTERS: Record<LibName, () => Adapter> = {
  [OURS]: oursAdapter,
  [FLATTEN]: flattenAdapter,
  [NIT]: nitAdapter,
};

interface Options {
  n: number;
  rounds: number;
  seed: number;
  /** Exercise the bigint tree first so V8 has seen both key kinds in the shared code. */
  pollute: boolean;
}

function parseOptions(args: string[]): Options {
  return parseBenchOptions(args, { n: 1_000_000, rounds: 1, seed: 20_240_601 }, ['pollute']);
}

/** Run a bigint-keyed workload through the shared tree code (see --pollute). */
function polluteWithBigInt(w: Workload): void {
  const tree = new BigIntIntervalTree<number>();
  const handles: Array<IntervalTreeNode<bigint, number>> = [];
  const m = Math.min(w.n, 200_000);
  for (let i = 0; i < m; i++) handles.push(tree.insert(BigInt(w.starts[i]!), BigInt(w.lasts[i]!), i));
  let hits = 0;
  for (let i = 0; i < m; i++) {
    const s = BigInt(w.rangeStarts[i]!);
    const l = BigInt(w.rangeLasts[i]!);
    for (let n = tree.iterFirst(s, l); n !== undefined; n = tree.iterNext(n, s, l)) hits++;
  }
  for (const h of handles) tree.remove(h);
  if (hits < 0) console.log(hits);
}

export async function runIntervalTreeSuite(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  const machine = machineInfo();
  console.log(
    `interval-tree bench: n=${opts.n}, best of ${opts.rounds} round(s) after a warm-up round at n/10`,
  );
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.platform}`);
  const w = makeWorkload(opts.n, opts.seed);
  if (opts.pollute) {
    console.log('pollute: running a bigint workload first');
    polluteWithBigInt(w);
  }

  const opsPerSec: Record<OpName, Partial<Record<LibName, number>>> = {
    insert: {},
    'point query': {},
    'range query': {},
    'remove all': {},
  };
  const hits: Record<'point query' | 'range query', Partial<Record<LibName, number>>> = {
    'point query': {},
    'range query': {},
  };

  // One round per library = insert all, point queries, range queries, remove all, chained on the
  // same tree (as lib/interval_tree_test.c does), each step one tinybench task of a single timed
  // batch. A round at n/10 first warms up the JIT. With --rounds R the best of R rounds is kept.
  const warm = makeWorkload(Math.max(1, Math.floor(opts.n / 10)), opts.seed + 1);
  for (const lib of LIBS) {
    const started = Date.now();
    for (let round = -1; round < opts.rounds; round++) {
      const data = round < 0 ? warm : w;
      const ad = ADAPTERS[lib]();
      const bench = new Bench({ iterations: 1, time: 0, warmup: false });
      bench.add(`${lib} insert`, () => ad.insertAll(data));
      for (const q of ['point query', 'range query'] as const) {
        const qs = q === 'point query' ? data.pointQueries : data.rangeStarts;
        const ql = q === 'point query' ? data.pointQueries : data.rangeLasts;
        bench.add(`${lib} ${q}`, () => {
          const found = ad.queryAll(data, qs, ql);
          if (round >= 0) hits[q][lib] = found;
        });
      }
      bench.add(`${lib} remove all`, () => ad.removeAll(data), {
        afterEach: () => {
          if (ad.size() !== 0) throw new Error(`${lib}: ${ad.size()} intervals left after removing all`);
        },
      });
      await bench.run();
      for (const task of bench.tasks) {
        if (task.result?.error) throw task.result.error;
        if (round < 0) continue;
        const op = task.name.slice(lib.length + 1) as OpName;
        const meanMs = task.result?.latency.mean ?? Number.NaN;
        const rate = opts.n / (meanMs / 1000);
        opsPerSec[op][lib] = Math.max(opsPerSec[op][lib] ?? 0, rate);
      }
    }
    console.log(`  ${lib}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }

  for (const q of ['point query', 'range query'] as const) {
    const counts = LIBS.map((l) => hits[q][l]);
    if (new Set(counts).size !== 1)
      throw new Error(`${q}: libraries disagree on hit counts: ${counts.join(', ')}`);
  }

  const fmt = (v: number | undefined): string =>
    v === undefined ? '-' : v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : `${(v / 1e3).toFixed(0)}k`;
  const rows = OPS.map((op) => {
    const ours = opsPerSec[op][OURS] ?? 0;
    const bestPeer = Math.max(opsPerSec[op][FLATTEN] ?? 0, opsPerSec[op][NIT] ?? 0);
    return { op, ours, flatten: opsPerSec[op][FLATTEN], nit: opsPerSec[op][NIT], ratio: ours / bestPeer };
  });
  const header = ['operation (ops/s)', OURS, FLATTEN, NIT, 'ours / best peer'];
  const table = [
    header,
    ...rows.map((r) => [r.op, fmt(r.ours), fmt(r.flatten), fmt(r.nit), `${r.ratio.toFixed(2)}x`]),
  ];
  printTable(table);
  console.log('');
  console.log(
    `average hits: point ${((hits['point query'][OURS] ?? 0) / opts.n).toFixed(2)}, range ${((hits['range query'][OURS] ?? 0) / opts.n).toFixed(2)}`,
  );
  console.log(
    'removal: ours removes by node handle (the kernel API); the peers remove by interval and value.',
  );

  const outFile = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'interval-tree.json');
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(
    outFile,
    `${JSON.stringify(
      {
        suite: 'interval-tree',
        date: new Date().toISOString(),
        machine,
        options: opts,
        workload: { keySpace: KEY_SPACE, maxLen: MAX_LEN, maxQueryLen: MAX_QUERY_LEN },
        averageHits: {
          point: (hits['point query'][OURS] ?? 0) / opts.n,
          range: (hits['range query'][OURS] ?? 0) / opts.n,
        },
        results: rows.map((r) => ({
          operation: r.op,
          opsPerSec: { [OURS]: r.ours, [FLATTEN]: r.flatten, [NIT]: r.nit },
          oursOverBestPeer: r.ratio,
        })),
      },
      null,
      2,
    )}\n`,
  );
  console.log(`results written to ${outFile}`);
}
