// The sim suite: whole-stack throughput of iommu-sim's workloads on the two embedded machines
// (x86 with VT-d, Arm with SMMUv3), every layer from the uAPI or kernel API down to the hardware
// models, with each workload's own data checks on.
//
// Rows, per platform:
// - dma-api: a kernel driver streaming `--ios` map / DMA / verify / unmap I/Os (512 B – 128 KiB)
//   on its strict default DMA domain;
// - iommufd-dpdk: `--bursts` TX + RX bursts of 32 frames on two NICs sharing one IOAS (ATS);
// - sva-accelerator: `--jobs` jobs on fresh malloc'd buffers, every page faulted in through PRI
//   (and the stall model on Arm);
// and the baseline measured in the same run: the same bytes copied in and out of PhysicalMemory in
// the same chunk sizes (what a DMA costs with no IOMMU, no driver and no device model).
// Figures: DMA requests per second, bytes per second, and the ratio of the workload's time per
// byte to the baseline's. Best of `--rounds`.

import { PhysicalMemory } from '@iommu-ts/mm';
import { buildMachine, defaultPlatforms, findBuiltinWorkload, Recorder, Rng } from '@iommu-ts/sim';
import { machineInfo } from './machine.js';
import { parseBenchOptions } from './options.js';
import { printTable } from './table.js';

interface Measured {
  ms: number;
  dma: number;
  bytes: number;
}

function runWorkload(platform: number, name: string, params: Record<string, number>, seed: number): Measured {
  const w = findBuiltinWorkload(name);
  if (w === undefined) throw new Error(`no workload ${name}`);
  const desc = defaultPlatforms()[platform];
  if (desc === undefined) throw new Error('no platform');
  const m = buildMachine(desc, { seed });
  try {
    const rec = new Recorder(m);
    const full = Object.fromEntries(Object.entries(w.params).map(([k, s]) => [k, params[k] ?? s.default]));
    const t0 = performance.now();
    w.run({ machine: m, rng: new Rng(seed), rec, params: full });
    const ms = performance.now() - t0;
    const f = rec.figures();
    return { ms, dma: f.dmaRequests, bytes: f.bytes };
  } finally {
    m.dispose();
  }
}

/** The bytes moved, in chunks of `chunk`, in and out of RAM with no IOMMU: the baseline. */
function baseline(bytes: number, chunk: number): number {
  const memory = new PhysicalMemory({ size: 64 * 2 ** 20 });
  const pa = memory.allocPages(9); // 2 MiB
  const data = new Uint8Array(chunk);
  const t0 = performance.now();
  let moved = 0;
  let off = 0;
  while (moved < bytes) {
    if (off + chunk > 2 ** 21) off = 0;
    memory.writeBytes(pa + off, data);
    const back = memory.readBytes(pa + off, chunk);
    if (back.length !== chunk) throw new Error('short read');
    moved += 2 * chunk;
    off += chunk;
  }
  return performance.now() - t0;
}

export async function runSimSuite(args: string[]): Promise<void> {
  const opts = parseBenchOptions(args, { ios: 2000, bursts: 64, jobs: 64, rounds: 3 });
  const info = machineInfo();
  console.log(`sim suite on ${info.cpu} (${info.cores} cores), Node ${info.node}, ${info.platform}`);
  const cases: Array<[string, string, Record<string, number>]> = [
    ['dma-api', 'dma-api', { ios: opts.ios }],
    ['iommufd-dpdk', 'iommufd-dpdk', { bursts: opts.bursts }],
    ['sva-accelerator', 'sva-accelerator', { jobs: opts.jobs }],
  ];
  const table: string[][] = [
    [
      'platform',
      'workload',
      'DMA requests',
      'MiB moved',
      'ms',
      'DMA/s',
      'MiB/s',
      'baseline MiB/s',
      'time/byte vs baseline',
    ],
  ];
  for (const [p, pname] of [
    [0, 'x86-vtd'],
    [1, 'arm-smmuv3'],
  ] as const) {
    for (const [label, name, params] of cases) {
      let best: Measured | null = null;
      runWorkload(p, name, params, 1); // warm-up
      for (let r = 0; r < opts.rounds; r++) {
        const m = runWorkload(p, name, params, 1);
        if (best === null || m.ms < best.ms) best = m;
      }
      const b = best as Measured;
      const chunk = Math.max(64, Math.round(b.bytes / Math.max(1, b.dma)));
      let baseMs = Number.POSITIVE_INFINITY;
      for (let r = 0; r < opts.rounds; r++) baseMs = Math.min(baseMs, baseline(b.bytes, chunk));
      const mib = b.bytes / 2 ** 20;
      table.push([
        pname,
        label,
        String(b.dma),
        mib.toFixed(1),
        b.ms.toFixed(0),
        ((b.dma * 1000) / b.ms).toFixed(0),
        ((mib * 1000) / b.ms).toFixed(1),
        ((mib * 1000) / baseMs).toFixed(0),
        `${(b.ms / baseMs).toFixed(0)}x`,
      ]);
    }
  }
  printTable(table);
}
