// The intel-vtd suite: translations through the VT-d hardware model, programmed by hand (root,
// context and PASID tables and page tables in RAM, registers through MMIO), as `dmaAccess` calls of
// 8-byte reads.
//
// Rows:
// - IOTLB hit (legacy mode, second-level table): the same page again and again;
// - second-level miss: a sweep over more pages than the IOTLB holds, so every access walks the
//   4-level table (the paging-structure cache at its default size shortens the upper levels);
// - first-level misses, 4- and 5-level x86-64 tables (scalable mode, PASID-tagged);
// - invalidation queue: a batch of 32 page-selective IOTLB descriptors plus a wait descriptor
//   with status write, through IQT and the scheduler, per batch and per descriptor;
// - baseline: the same 8-byte read straight from PhysicalMemory.
// ns per access = batch time / accesses; best of `--rounds` after a warm-up at 1/10.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Scheduler } from '@iommu-ts/base';
import {
  DMA_GCMD_QIE,
  DMA_GCMD_SRTP,
  DMA_GCMD_TE,
  DMA_RTADDR_SMT,
  DMAR_GCMD_REG,
  DMAR_GSTS_REG,
  DMAR_IQA_REG,
  DMAR_IQT_REG,
  DMAR_RTADDR_REG,
  encodeVtdInvDesc,
  PGTT,
  VtdModel,
} from '@iommu-ts/intel-vtd';
import {
  FlTestPageTable,
  makeVtdTestMemory,
  SlTestPageTable,
  VtdStructureBuilder,
} from '@iommu-ts/intel-vtd/testing';
import { dmaRequest } from '@iommu-ts/iommu-core';
import { machineInfo } from './machine.js';
import { parseBenchOptions } from './options.js';
import { bestNsPerOp, printTable } from './table.js';

const PAGE = 4096;
const SID = 0x10;
const IOVA = 0x10_0000_0000;

interface Row {
  name: string;
  ns: number;
  note: string;
}

type Mode = { kind: 'sl' } | { kind: 'fl'; levels: 4 | 5 };

/** A unit translating `pages` pages for SID 0x10: legacy second level, or scalable first level. */
function setup(pages: number, mode: Mode) {
  const memory = makeVtdTestMemory(256);
  const scheduler = new Scheduler();
  const scalable = mode.kind === 'fl';
  const vtd = new VtdModel({
    memory,
    scheduler,
    config: scalable ? {} : { smts: false, pasid: false, prs: false, nest: false, flts: false, slads: false },
  });
  const data = memory.allocPages(10); // 4 MiB the pages map onto (reused cyclically)
  const b = new VtdStructureBuilder(memory, scalable);
  let pasid: number | undefined;
  if (mode.kind === 'sl') {
    const sl = new SlTestPageTable(memory, { levels: 4 });
    for (let i = 0; i < pages; i++) sl.map(IOVA + i * PAGE, data + (i % 1024) * PAGE);
    b.setContext(SID, { mode: 'legacy', present: true, tt: 0, slptptr: sl.rootAddr, aw: 2, did: 1 });
  } else {
    const fl = new FlTestPageTable(memory, { levels: mode.levels });
    for (let i = 0; i < pages; i++) fl.map(IOVA + i * PAGE, data + (i % 1024) * PAGE);
    const dir = b.pasidDirectory();
    b.setContext(SID, {
      mode: 'scalable',
      present: true,
      paside: true,
      pre: true,
      pdts: 2,
      pasidDirPtr: dir,
    });
    pasid = 5;
    b.setPasidEntry(dir, pasid, {
      present: true,
      pgtt: PGTT.firstLevel,
      aw: 2,
      flptr: fl.rootAddr,
      flpm: mode.levels === 5 ? 1 : 0,
      did: 4,
    });
  }
  const gcmd = (bits: number) => {
    const sts = vtd.mmio.readl(DMAR_GSTS_REG) & (DMA_GCMD_TE | DMA_GCMD_QIE);
    vtd.mmio.writel(DMAR_GCMD_REG, (sts | bits) >>> 0);
  };
  vtd.mmio.writeq(DMAR_RTADDR_REG, BigInt(b.rootTable) | (scalable ? DMA_RTADDR_SMT : 0n));
  gcmd(DMA_GCMD_SRTP);
  gcmd(DMA_GCMD_TE);
  const reqs = Array.from({ length: pages }, (_, i) =>
    dmaRequest({ requesterId: SID, pasid, addr: BigInt(IOVA + i * PAGE + 8), size: 8, access: 'read' }),
  );
  return { memory, scheduler, vtd, reqs, data, gcmd };
}

export async function runIntelVtdSuite(args: string[]): Promise<void> {
  const opts = parseBenchOptions(args, { accesses: 1_000_000, rounds: 3 });
  const machine = machineInfo();
  console.log(
    `intel-vtd bench: ${opts.accesses} 8-byte DMA reads per batch through VtdModel, best of ${opts.rounds}`,
  );
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.platform}`);
  const rows: Row[] = [];

  {
    const s = setup(1, { kind: 'sl' });
    const ns = bestNsPerOp(opts.rounds, opts.accesses, (n) => {
      for (let i = 0; i < n; i++) s.memory.readBytes(s.data + 8, 8);
    });
    rows.push({ name: 'baseline: PhysicalMemory.readBytes, 8 bytes', ns, note: 'no IOMMU' });
  }
  {
    const s = setup(1, { kind: 'sl' });
    const req = s.reqs[0];
    if (req === undefined) throw new Error('no request');
    const ns = bestNsPerOp(opts.rounds, opts.accesses, (n) => {
      for (let i = 0; i < n; i++) s.vtd.dmaAccess(req);
    });
    const st = s.vtd.iotlb.stats;
    rows.push({ name: 'IOTLB hit (legacy, second level)', ns, note: `${st.hits} hits, ${st.misses} misses` });
  }
  const modes: [string, Mode][] = [
    ['second-level miss (4-level walk)', { kind: 'sl' }],
    ['first-level miss (4-level x86-64 walk)', { kind: 'fl', levels: 4 }],
    ['first-level miss (5-level x86-64 walk)', { kind: 'fl', levels: 5 }],
  ];
  for (const [name, mode] of modes) {
    // 4096 pages through a 512-entry IOTLB: every access misses.
    const pages = 4096;
    const s = setup(pages, mode);
    const reqs = s.reqs;
    const ns = bestNsPerOp(opts.rounds, Math.floor(opts.accesses / 10), (n) => {
      for (let i = 0; i < n; i++) s.vtd.dmaAccess(reqs[i % pages] as (typeof reqs)[number]);
    });
    const st = s.vtd.iotlb.stats;
    rows.push({ name, ns, note: `IOTLB hit rate ${((st.hits / (st.hits + st.misses)) * 100).toFixed(1)}%` });
  }
  {
    // Queued invalidation: 32 page-selective IOTLB descriptors + a wait descriptor with status write.
    const s = setup(64, { kind: 'sl' });
    const iq = s.memory.allocPages(0, { zero: true });
    const status = s.memory.allocPages(0, { zero: true });
    s.vtd.mmio.writeq(DMAR_IQT_REG, 0n);
    s.vtd.mmio.writeq(DMAR_IQA_REG, BigInt(iq)); // 256 descriptors of 16 bytes
    s.gcmd(DMA_GCMD_QIE);
    const per = 32;
    const descs = Array.from({ length: per }, (_, i) =>
      encodeVtdInvDesc(
        {
          type: 'iotlb',
          granularity: 'page',
          did: 1,
          dr: true,
          dw: true,
          addr: BigInt(IOVA + i * PAGE),
          am: 0,
          ih: false,
        },
        false,
      ),
    );
    const wait = encodeVtdInvDesc(
      { type: 'wait', if: false, sw: true, fn: false, pd: false, statusData: 1, statusAddr: BigInt(status) },
      false,
    );
    let tail = 0;
    const batch = () => {
      for (const r of s.reqs) s.vtd.dmaAccess(r); // refill the IOTLB so the descriptors find entries
      for (let i = 0; i <= per; i++) {
        const words = i < per ? (descs[i] as bigint[]) : wait;
        s.memory.write64(iq + tail, words[0] ?? 0n);
        s.memory.write64(iq + tail + 8, words[1] ?? 0n);
        tail = (tail + 16) % PAGE;
      }
      s.memory.write32(status, 0);
      s.vtd.mmio.writel(DMAR_IQT_REG, tail);
      s.scheduler.runUntilIdle();
      if (s.memory.read32(status) !== 1) throw new Error('wait descriptor did not complete');
    };
    const refill = bestNsPerOp(opts.rounds, 2000, (n) => {
      for (let b = 0; b < n; b++) for (const r of s.reqs) s.vtd.dmaAccess(r);
    });
    const ns = bestNsPerOp(opts.rounds, 2000, (n) => {
      for (let b = 0; b < n; b++) batch();
    });
    rows.push({
      name: 'QI: 32 page-selective IOTLB descriptors + wait',
      ns: ns - refill,
      note: `${((ns - refill) / (per + 1)).toFixed(0)} ns per descriptor; IOTLB refill subtracted`,
    });
  }

  const base = rows[0]?.ns ?? 1;
  const table = [
    ['path', 'ns/op', 'ops/s', 'x of a plain memory read', 'notes'],
    ...rows.map((r) => [
      r.name,
      r.ns.toFixed(0),
      (1e9 / r.ns).toExponential(2),
      (r.ns / base).toFixed(1),
      r.note,
    ]),
  ];
  printTable(table);
  const outFile = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'intel-vtd.json');
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, `${JSON.stringify({ machine, options: opts, rows }, null, 2)}\n`);
  console.log(`\nresults written to ${outFile}`);
}
