// The io-pgtable suite: ns per 4 KiB page for mapPages (single pages and 512-page batches),
// unmapPages (single and batched) and random iovaToPhys on @iommu-ts/io-pgtable formats (ARM LPAE
// stage 1 with the 4K granule; VT-d second level), beside a JS Map baseline (page number → PA) doing
// the same work in the same run; plus table memory per mapped page. Linux's C figures for
// io-pgtable-arm are quoted for comparison (goal: within 3x).

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Prng } from '@iommu-ts/base';
import {
  allocIoPgtableOps,
  armLpae64S1Format,
  freeIoPgtableOps,
  InMemoryPageTableMemory,
  IOMMU_CACHE,
  IOMMU_READ,
  IOMMU_WRITE,
  IommuIotlbGather,
  type IoPgtableFormat,
  vtdSlFormat,
} from '@iommu-ts/io-pgtable';
import { machineInfo } from './machine.js';
import { parseBenchOptions } from './options.js';
import { printTable } from './table.js';

const PAGE = 4096;
const BATCH = 512;
const LINUX_NS: Record<string, number> = {
  'map single': 16.6,
  'map batch512': 1.3,
  'iova_to_phys random': 28,
  'unmap single': 15,
  'unmap batch512': 2.2,
};

interface Options {
  pages: number;
  rounds: number;
  seed: number;
}

function parseOptions(args: string[]): Options {
  const opts = parseBenchOptions(args, { pages: 1 << 18, rounds: 5, seed: 20_251_121 });
  return { ...opts, pages: Math.ceil(opts.pages / BATCH) * BATCH };
}

/** One implementation under test, behind a common shape. */
interface Impl {
  mapSingle(pages: number): void;
  mapBatch(pages: number): void;
  unmapSingle(pages: number): void;
  unmapBatch(pages: number): void;
  lookup(addrs: Float64Array): number;
  bytesPerPage(pages: number): number;
  done(): void;
}

const BASE_IOVA = 0x40_0000_0000; // 256 GiB
const BASE_PA = 0x8000_0000;

function pgtableImpl(format: IoPgtableFormat, ias: number): Impl {
  const memory = new InMemoryPageTableMemory({ limitBytes: 2 ** 31 });
  const gather = new IommuIotlbGather();
  const cfg = {
    quirks: 0,
    pgsizeBitmap: 0x1000n | 0x200000n | 0x40000000n,
    ias,
    oas: 48,
    coherentWalk: true,
    memory,
    tlb: {
      tlbAddPage: (g: IommuIotlbGather | null, iova: number, size: number) => {
        if (g !== null) g.addRange(iova, size);
      },
      tlbFlushWalk: () => {},
      tlbFlushAll: () => {},
    },
  };
  const ops = allocIoPgtableOps(format, cfg, null);
  if (ops === null) throw new Error(`${format.name}: allocation failed`);
  const prot = IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE;
  return {
    mapSingle(pages) {
      for (let i = 0; i < pages; i++) ops.mapPages(BASE_IOVA + i * PAGE, BASE_PA + i * PAGE, PAGE, 1, prot);
    },
    mapBatch(pages) {
      for (let i = 0; i < pages; i += BATCH)
        ops.mapPages(BASE_IOVA + i * PAGE, BASE_PA + i * PAGE, PAGE, BATCH, prot);
    },
    unmapSingle(pages) {
      for (let i = 0; i < pages; i++) {
        gather.init();
        ops.unmapPages(BASE_IOVA + i * PAGE, PAGE, 1, gather);
      }
    },
    unmapBatch(pages) {
      for (let i = 0; i < pages; i += BATCH) {
        gather.init();
        ops.unmapPages(BASE_IOVA + i * PAGE, PAGE, BATCH, gather);
      }
    },
    lookup(addrs) {
      let sum = 0;
      for (let i = 0; i < addrs.length; i++) sum += ops.iovaToPhys(addrs[i] as number);
      return sum;
    },
    bytesPerPage(pages) {
      return memory.liveBytes / pages;
    },
    done() {
      freeIoPgtableOps(ops);
    },
  };
}

function mapImpl(): Impl {
  const m = new Map<number, number>();
  return {
    mapSingle(pages) {
      for (let i = 0; i < pages; i++) m.set(BASE_IOVA / PAGE + i, BASE_PA + i * PAGE);
    },
    mapBatch(pages) {
      for (let i = 0; i < pages; i += BATCH) {
        const pfn = BASE_IOVA / PAGE + i;
        for (let k = 0; k < BATCH; k++) m.set(pfn + k, BASE_PA + (i + k) * PAGE);
      }
    },
    unmapSingle(pages) {
      for (let i = 0; i < pages; i++) m.delete(BASE_IOVA / PAGE + i);
    },
    unmapBatch(pages) {
      for (let i = 0; i < pages; i += BATCH) {
        const pfn = BASE_IOVA / PAGE + i;
        for (let k = 0; k < BATCH; k++) m.delete(pfn + k);
      }
    },
    lookup(addrs) {
      let sum = 0;
      for (let i = 0; i < addrs.length; i++) {
        const a = addrs[i] as number;
        const pfn = Math.floor(a / PAGE);
        const pa = m.get(pfn);
        sum += pa === undefined ? 0 : pa + (a - pfn * PAGE);
      }
      return sum;
    },
    bytesPerPage(pages) {
      global.gc?.();
      const before = process.memoryUsage().heapUsed;
      const probe = new Map<number, number>();
      for (let i = 0; i < pages; i++) probe.set(BASE_IOVA / PAGE + i, BASE_PA + i * PAGE);
      global.gc?.();
      const after = process.memoryUsage().heapUsed;
      const bytes = (after - before) / pages;
      probe.clear();
      return bytes;
    },
    done() {
      m.clear();
    },
  };
}

type Row = Record<string, number>;

function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0);
}

function measure(make: () => Impl, opts: Options, addrs: Float64Array): Row {
  const best: Row = {};
  const keep = (k: string, ns: number): void => {
    best[k] = Math.min(best[k] ?? Number.POSITIVE_INFINITY, ns);
  };
  const n = opts.pages;
  let check = 0;
  for (let r = 0; r < opts.rounds; r++) {
    const impl = make();
    keep('map single', time(() => impl.mapSingle(n)) / n);
    check += impl.lookup(addrs);
    keep(
      'iova_to_phys random',
      time(() => {
        check += impl.lookup(addrs);
      }) / addrs.length,
    );
    if (r === 0) best['bytes per page'] = impl.bytesPerPage(n);
    keep('unmap single', time(() => impl.unmapSingle(n)) / n);
    keep('map batch512', time(() => impl.mapBatch(n)) / n);
    keep('unmap batch512', time(() => impl.unmapBatch(n)) / n);
    impl.done();
  }
  best['checksum'] = check / opts.rounds;
  return best;
}

/** Runs the suite: `pnpm bench io-pgtable [--pages N] [--rounds R] [--seed S]`. */
export async function runIoPgtableSuite(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  const rng = new Prng(opts.seed);
  const addrs = new Float64Array(1 << 20);
  for (let i = 0; i < addrs.length; i++)
    addrs[i] = BASE_IOVA + Math.floor((rng.nextU32() / 2 ** 32) * opts.pages * PAGE);
  const impls: Array<[string, () => Impl]> = [
    ['ARM_64_LPAE_S1 4K', () => pgtableImpl(armLpae64S1Format, 48)],
    ['VTD_SS 4-level', () => pgtableImpl(vtdSlFormat, 48)],
    ['JS Map baseline', mapImpl],
  ];
  const results: Array<[string, Row]> = [];
  for (const [name, make] of impls) {
    console.error(`measuring ${name} …`);
    results.push([name, measure(make, opts, addrs)]);
  }
  const cols = [
    'map single',
    'map batch512',
    'iova_to_phys random',
    'unmap single',
    'unmap batch512',
    'bytes per page',
  ];
  const table = [
    ['implementation', ...cols.map((c) => (c === 'bytes per page' ? c : `${c} ns/page`))],
    ...results.map(([name, row]) => [name, ...cols.map((c) => (row[c] ?? Number.NaN).toFixed(1))]),
    [
      'Linux C (goal ÷3)',
      ...cols.map((c) =>
        LINUX_NS[c] === undefined ? '-' : `${LINUX_NS[c]} (${(3 * (LINUX_NS[c] as number)).toFixed(1)})`,
      ),
    ],
  ];
  printTable(table);
  console.log('');
  console.log(
    `${opts.pages} pages of 4 KiB, best of ${opts.rounds} rounds; iova_to_phys over ${addrs.length} random addresses; ` +
      'map/unmap through the public ops (number IOVAs), tlbAddPage recording into a gather. ' +
      'bytes per page: table memory (io-pgtable) or heap growth (Map, needs --expose-gc to be exact).',
  );
  const machine = machineInfo();
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.platform}`);
  const outFile = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'io-pgtable.json');
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(
    outFile,
    `${JSON.stringify({ suite: 'io-pgtable', date: new Date().toISOString(), machine, options: opts, linuxNs: LINUX_NS, results: Object.fromEntries(results) }, null, 2)}\n`,
  );
  console.log(`results written to ${outFile}`);
}
