// The arm-smmu-v3 suite: translations through the SMMUv3 hardware model, programmed by hand
// (stream table, CDs and page tables in RAM, registers through MMIO), as `dmaAccess` calls of
// 8-byte reads.
//
// Rows:
// - stage 1, TLB hit: the same page again and again;
// - stage 1, TLB miss: a sweep over more pages than the TLB holds (LRU), so every access is a full
//   4-level walk of 4 KiB-granule tables plus an insertion and an eviction;
// - nested (stage 1 over stage 2), TLB hit and miss: the stage-1 tables and the CD live in IPA space,
//   so a miss walks stage 2 for every stage-1 table and for the output;
// - TLBI + CMD_SYNC: a batch of 64 TLBI_NH_VA and one CMD_SYNC through the command queue (Linux's
//   batch size), per batch and per command, with a warm TLB to invalidate;
// - baseline: the same 8-byte read straight from PhysicalMemory, to put the model's cost in
//   proportion.
// ns per access = batch time / accesses; best of `--rounds` after a warm-up at 1/10.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CR0_CMDQEN,
  CR0_EVTQEN,
  CR0_SMMUEN,
  encodeCd,
  encodeSmmuCommand,
  encodeSte,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_PROD,
  SMMU_CR0,
  SMMU_EVTQ_BASE,
  SMMU_STRTAB_BASE,
  SMMU_STRTAB_BASE_CFG,
  SmmuV3Model,
} from '@iommu-ts/arm-smmu-v3';
import { makeTestMemory, TestPageTable } from '@iommu-ts/arm-smmu-v3/testing';
import { Scheduler } from '@iommu-ts/base';
import { dmaRequest } from '@iommu-ts/iommu-core';
import type { PhysicalMemory } from '@iommu-ts/mm';
import { machineInfo } from './machine.js';
import { parseBenchOptions } from './options.js';
import { bestNsPerOp, printTable } from './table.js';

const PAGE = 4096;
const IOVA = 0x10_0000_0000; // stage-1 input addresses start here
const CMDQ_LOG2 = 8;

interface Row {
  name: string;
  ns: number;
  note: string;
}

function put(memory: PhysicalMemory, pa: number, words: ArrayLike<number>): void {
  for (let i = 0; i < words.length; i++) memory.write32(pa + i * 4, words[i] ?? 0);
}

/** An enabled SMMU whose SID 1 translates `pages` pages at IOVA through stage 1 (or nested). */
function setup(pages: number, nested: boolean, tlbCapacity: number) {
  const memory = makeTestMemory(256);
  const scheduler = new Scheduler();
  const smmu = new SmmuV3Model({ memory, scheduler, config: { tlbCapacity } });
  const data = memory.allocPages(10); // 4 MiB the pages map onto (reused cyclically)
  const s1 = new TestPageTable(memory, { granule: 12, inputBits: 48 });
  for (let i = 0; i < pages; i++) s1.map(IOVA + i * PAGE, data + (i % 1024) * PAGE, 3, { ng: true });
  const strtab = memory.allocPages(2, { zero: true });
  const cd = memory.allocPages(0, { zero: true });
  put(
    memory,
    cd,
    encodeCd({
      v: true,
      t0sz: 16,
      tg0: 0,
      ir0: 1,
      or0: 1,
      sh0: 3,
      epd1: true,
      ips: 5,
      aa64: true,
      r: true,
      a: true,
      aset: true,
      asid: 1,
      ttb0: s1.root,
      mair0: 0xf404_ff44,
    }),
  );
  if (nested) {
    // Stage 2: IPA = PA over all of RAM, with 2 MiB blocks (so every stage-1 table address, the CD
    // and the output go through a stage-2 translation).
    const s2 = new TestPageTable(memory, { granule: 12, inputBits: 40, stage: 2, startLevel: 1 });
    for (let pa = 0x4000_0000; pa < 0x4000_0000 + 256 * 2 ** 20; pa += 2 * 2 ** 20) s2.map(pa, pa, 2);
    put(
      memory,
      strtab + 64,
      encodeSte({
        v: true,
        config: 7,
        s1ContextPtr: cd,
        s1Cir: 1,
        s1Cor: 1,
        s1Csh: 3,
        s2Vmid: 3,
        s2T0sz: 24,
        s2Sl0: 1,
        s2Tg: 0,
        s2Ps: 5,
        s2Aa64: true,
        s2R: true,
        s2Ttb: s2.root,
      }),
    );
  } else {
    put(
      memory,
      strtab + 64,
      encodeSte({ v: true, config: 5, s1ContextPtr: cd, s1Cir: 1, s1Cor: 1, s1Csh: 3 }),
    );
  }
  const cmdq = memory.allocPages(Math.max(0, CMDQ_LOG2 + 4 - 12), { zero: true }); // 16-byte commands
  const evtq = memory.allocPages(0, { zero: true });
  smmu.mmio.writeq(SMMU_STRTAB_BASE, BigInt(strtab));
  smmu.mmio.writel(SMMU_STRTAB_BASE_CFG, 8);
  smmu.mmio.writeq(SMMU_CMDQ_BASE, BigInt(cmdq) | BigInt(CMDQ_LOG2));
  smmu.mmio.writeq(SMMU_EVTQ_BASE, BigInt(evtq) | 3n);
  smmu.mmio.writel(SMMU_CR0, CR0_CMDQEN | CR0_EVTQEN | CR0_SMMUEN);
  const reqs = Array.from({ length: pages }, (_, i) =>
    dmaRequest({ requesterId: 1, addr: BigInt(IOVA + i * PAGE + 8), size: 8, access: 'read' }),
  );
  return { memory, scheduler, smmu, reqs, cmdq, data };
}

export async function runArmSmmuV3Suite(args: string[]): Promise<void> {
  const opts = parseBenchOptions(args, { accesses: 1_000_000, rounds: 3 });
  const machine = machineInfo();
  console.log(
    `arm-smmu-v3 bench: ${opts.accesses} 8-byte DMA reads per batch through SmmuV3Model, best of ${opts.rounds}`,
  );
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.platform}`);
  const rows: Row[] = [];

  {
    const s = setup(1, false, 256);
    const ns = bestNsPerOp(opts.rounds, opts.accesses, (n) => {
      for (let i = 0; i < n; i++) s.memory.readBytes(s.data + 8, 8);
    });
    rows.push({ name: 'baseline: PhysicalMemory.readBytes, 8 bytes', ns, note: 'no SMMU' });
  }
  for (const nested of [false, true]) {
    const label = nested ? 'nested S1+S2' : 'stage 1';
    {
      const s = setup(1, nested, 256);
      const req = s.reqs[0];
      if (req === undefined) throw new Error('no request');
      const ns = bestNsPerOp(opts.rounds, opts.accesses, (n) => {
        for (let i = 0; i < n; i++) s.smmu.dmaAccess(req);
      });
      const st = s.smmu.tlb.stats;
      rows.push({ name: `${label}, TLB hit`, ns, note: `${st.hits} hits, ${st.misses} misses` });
    }
    {
      // 4096 pages through a 256-entry LRU TLB: every access misses.
      const pages = 4096;
      const s = setup(pages, nested, 256);
      const reqs = s.reqs;
      const ns = bestNsPerOp(opts.rounds, Math.floor(opts.accesses / 10), (n) => {
        for (let i = 0; i < n; i++) s.smmu.dmaAccess(reqs[i % pages] as (typeof reqs)[number]);
      });
      const st = s.smmu.tlb.stats;
      const hitRate = st.hits / (st.hits + st.misses);
      rows.push({
        name: `${label}, TLB miss (4-level walk${nested ? 's, stage 2 under each' : ''})`,
        ns,
        note: `hit rate ${(hitRate * 100).toFixed(1)}%`,
      });
    }
  }
  {
    // A batch of 64 TLBI_NH_VA + CMD_SYNC through the command queue, on a warm TLB.
    const s = setup(64, false, 256);
    const per = 64;
    const entries = 1 << CMDQ_LOG2;
    let prod = 0;
    const words = Array.from({ length: per }, (_, i) =>
      encodeSmmuCommand({ op: 'TLBI_NH_VA', asid: 1, leaf: true, addr: BigInt(IOVA + i * PAGE) }),
    );
    const sync = encodeSmmuCommand({ op: 'CMD_SYNC' });
    const batch = () => {
      for (const r of s.reqs) s.smmu.dmaAccess(r); // refill the TLB so the TLBIs find entries
      for (let i = 0; i <= per; i++) {
        const idx = prod & (entries - 1);
        put(s.memory, s.cmdq + idx * 16, i < per ? (words[i] as Uint32Array) : sync);
        prod = (prod + 1) & (2 * entries - 1);
      }
      s.smmu.mmio.writel(SMMU_CMDQ_PROD, prod);
      s.scheduler.runUntilIdle();
    };
    const refill = bestNsPerOp(opts.rounds, 2000, (n) => {
      for (let b = 0; b < n; b++) for (const r of s.reqs) s.smmu.dmaAccess(r);
    });
    const ns = bestNsPerOp(opts.rounds, 2000, (n) => {
      for (let b = 0; b < n; b++) batch();
    });
    const cmdNs = (ns - refill) / (per + 1);
    rows.push({
      name: 'TLBI_NH_VA x64 + CMD_SYNC batch',
      ns: ns - refill,
      note: `${cmdNs.toFixed(0)} ns per command; TLB refill of 64 pages subtracted`,
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
  const outFile = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'arm-smmu-v3.json');
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, `${JSON.stringify({ machine, options: opts, rows }, null, 2)}\n`);
  console.log(`\nresults written to ${outFile}`);
}
