// The iommu-core suite: the IOVA allocator and the DMA API (dma-iommu) of @iommu-ts/iommu-core.
//
// Rows:
// - dma_map_page + dma_unmap_page pairs (4 KiB, bidirectional) through the real DMA API on the
//   test driver's DMA domain (io-pgtable ARM LPAE stage 1 tables): strict mode with and without the
//   IOVA range caches, and flush-queue mode (DMA_FQ, with rcaches). `--live N` mappings stay
//   mapped the whole time so that the IOVA tree is not trivial.
// - allocIova + freeIova pairs (1 granule, size-aligned, limit 2^32 - 1) on a bare IovaDomain
//   holding `--live N` ranges, and allocIovaFast + freeIovaFast pairs on the same with rcaches.
// One timed batch = `--pairs` pairs; ns/op = batch time / pairs; best of `--rounds` after a
// warm-up batch at 1/10.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Scheduler } from '@iommu-ts/base';
import {
  DMA_MAPPING_ERROR,
  DmaDataDirection,
  type IommuDmaCookie,
  IommuSubsystem,
  type IovaDomain,
  initIovaDomain,
  iommuDmaCookieOf,
  iommuDmaInstall,
  iommuDmaMapPage,
  iommuDmaUnmapPage,
  PlatformDevice,
} from '@iommu-ts/iommu-core';
import { TestIommu } from '@iommu-ts/iommu-core/testing';
import { machineInfo } from './machine.js';
import { parseBenchOptions } from './options.js';
import { bestNsPerOp, printTable } from './table.js';

const PAGE = 4096;
const PA = 0x4000_0000;
const LIMIT32 = 0xf_ffff; // PFN limit for a 32-bit mask with 4 KiB granules

interface Options {
  pairs: number;
  live: number;
  rounds: number;
}

interface Row {
  name: string;
  nsPerOp: number;
  pairs: number;
  note: string;
}

/** A device behind the test driver with a DMA (strict) or DMA_FQ default domain. */
function dmaSetup(strict: boolean, rcaches: boolean) {
  const scheduler = new Scheduler();
  const sub = new IommuSubsystem({ strict });
  iommuDmaInstall(sub, { scheduler, rcaches });
  const driver = new TestIommu({ grouping: 'generic', msiWindow: null });
  driver.register(sub);
  const dev = new PlatformDevice('bench0', { firmwareIds: [1] });
  const err = sub.addDevice(dev);
  if (err !== null) throw err;
  const cookie = iommuDmaCookieOf(dev) as IommuDmaCookie;
  if (cookie === null) throw new Error('no DMA cookie: DMA layer not set up');
  return { scheduler, driver, dev, cookie };
}

function dmaPairs(strict: boolean, rcaches: boolean, opts: Options): { ns: number; note: string } {
  const { scheduler, driver, dev, cookie } = dmaSetup(strict, rcaches);
  const live: bigint[] = [];
  for (let i = 0; i < opts.live; i++)
    live.push(iommuDmaMapPage(dev, PA + i * PAGE, PAGE, DmaDataDirection.BIDIRECTIONAL));
  if (live.includes(DMA_MAPPING_ERROR)) throw new Error('prefill failed');
  const ns = bestNsPerOp(opts.rounds, opts.pairs, (n) => {
    for (let i = 0; i < n; i++) {
      const dma = iommuDmaMapPage(dev, PA, PAGE, DmaDataDirection.BIDIRECTIONAL);
      if (dma === DMA_MAPPING_ERROR) throw new Error('dma_map_page failed');
      iommuDmaUnmapPage(dev, dma, PAGE, DmaDataDirection.BIDIRECTIONAL);
      // The test driver records every call; keep that log from growing without bound.
      if ((i & 1023) === 1023) driver.calls.length = 0;
    }
    driver.calls.length = 0;
    // Let the flush-queue timer run (untimed in spirit: once per batch).
    scheduler.runUntilIdle();
  });
  const s = cookie.stats;
  const iov = cookie.iovad?.stats;
  const note = strict
    ? `rcache hits ${iov?.rcacheHits ?? 0}, tree allocs ${iov?.treeAllocs ?? 0}, iotlb syncs ${s.strictSyncs}`
    : `fq queued ${s.fqQueued}, flush-all ${s.fqFlushes} (${s.fqFullFlushes} on full queue)`;
  return { ns, note };
}

function iovaPrefill(d: IovaDomain, live: number): void {
  for (let i = 0; i < live; i++)
    if (d.allocIova(1, LIMIT32, true) === null) throw new Error('prefill failed');
}

function iovaPairs(opts: Options): number {
  const d = initIovaDomain(PAGE, 1);
  iovaPrefill(d, opts.live);
  return bestNsPerOp(opts.rounds, opts.pairs, (n) => {
    for (let i = 0; i < n; i++) {
      const iova = d.allocIova(1, LIMIT32, true);
      if (iova === null) throw new Error('allocIova failed');
      d.freeIova(iova.pfnLo);
    }
  });
}

/** Scattered frees: free random live ranges and allocate again, so the tree has holes. */
function iovaPairsScattered(opts: Options): number {
  const d = initIovaDomain(PAGE, 1);
  const pfns: number[] = [];
  for (let i = 0; i < opts.live; i++) pfns.push((d.allocIova(1, LIMIT32, true) as { pfnLo: number }).pfnLo);
  let x = 12345;
  return bestNsPerOp(opts.rounds, opts.pairs, (n) => {
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      const j = x % pfns.length;
      d.freeIova(pfns[j] as number);
      const iova = d.allocIova(1, LIMIT32, true);
      if (iova === null) throw new Error('allocIova failed');
      pfns[j] = iova.pfnLo;
    }
  });
}

function iovaFastPairs(opts: Options): number {
  const d = initIovaDomain(PAGE, 1);
  d.initRcaches();
  iovaPrefill(d, opts.live);
  return bestNsPerOp(opts.rounds, opts.pairs, (n) => {
    for (let i = 0; i < n; i++) {
      const pfn = d.allocIovaFast(1, LIMIT32, true);
      if (pfn === 0) throw new Error('allocIovaFast failed');
      d.freeIovaFast(pfn, 1);
    }
  });
}

export async function runIommuCoreSuite(args: string[]): Promise<void> {
  const opts: Options = parseBenchOptions(args, { pairs: 200_000, live: 1_000, rounds: 3 });
  const machine = machineInfo();
  console.log(
    `iommu-core bench: ${opts.pairs} pairs per batch, ${opts.live} live mappings/ranges, best of ${opts.rounds} ` +
      'after a warm-up at 1/10',
  );
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.platform}`);

  const rows: Row[] = [];
  const strictRc = dmaPairs(true, true, opts);
  rows.push({
    name: 'dma_map_page+unmap_page, strict, rcaches',
    nsPerOp: strictRc.ns,
    pairs: opts.pairs,
    note: strictRc.note,
  });
  const strictNo = dmaPairs(true, false, opts);
  rows.push({
    name: 'dma_map_page+unmap_page, strict, no rcaches',
    nsPerOp: strictNo.ns,
    pairs: opts.pairs,
    note: strictNo.note,
  });
  const fq = dmaPairs(false, true, opts);
  rows.push({
    name: 'dma_map_page+unmap_page, DMA_FQ, rcaches',
    nsPerOp: fq.ns,
    pairs: opts.pairs,
    note: fq.note,
  });
  rows.push({
    name: 'allocIova+freeIova (same slot)',
    nsPerOp: iovaPairs(opts),
    pairs: opts.pairs,
    note: 'tree only',
  });
  rows.push({
    name: 'freeIova(random live)+allocIova',
    nsPerOp: iovaPairsScattered(opts),
    pairs: opts.pairs,
    note: 'tree only, holes',
  });
  rows.push({
    name: 'allocIovaFast+freeIovaFast',
    nsPerOp: iovaFastPairs(opts),
    pairs: opts.pairs,
    note: 'rcache hits',
  });

  const header = ['operation (one op = one pair)', 'ns/op', 'notes'];
  const table = [header, ...rows.map((r) => [r.name, r.nsPerOp.toFixed(0), r.note])];
  printTable(table);
  console.log('');
  console.log(
    `rcache speed-up on the DMA path: ${(strictNo.ns / strictRc.ns).toFixed(2)}x; ` +
      `DMA_FQ vs strict: ${(strictRc.ns / fq.ns).toFixed(2)}x`,
  );

  const outFile = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'iommu-core.json');
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(
    outFile,
    `${JSON.stringify(
      {
        suite: 'iommu-core',
        date: new Date().toISOString(),
        machine,
        options: opts,
        workload: {
          dma: 'TestIommu (io-pgtable ARM LPAE S1, 4K|2M|1G), platform device, 4 KiB buffer, bidirectional',
          iova: '4 KiB granule, start PFN 1, size 1, size-aligned, limit PFN 0xfffff',
        },
        results: rows.map((r) => ({ operation: r.name, nsPerOp: r.nsPerOp, pairs: r.pairs, notes: r.note })),
      },
      null,
      2,
    )}\n`,
  );
  console.log(`results written to ${outFile}`);
}
