/**
 * A harness for SmmuV3Model tests: RAM, scheduler, interrupt lines, an enabled SMMU with a linear
 * stream table and queues, and helpers to issue commands and drain events.
 *
 * @remarks
 * Not exported from the package index.
 */

import { IrqReturn, Scheduler } from '@iommu-ts/base';
import { type DmaOutcome, dmaRequest } from '@iommu-ts/iommu-core';
import type { PhysicalMemory, TlbBroadcast } from '@iommu-ts/mm';
import { encodeSmmuCommand, type SmmuCommandInit } from './cmdq.js';
import { type CdFields, encodeCd } from './context-descriptor.js';
import { decodeSmmuEvent, type SmmuEvent } from './events.js';
import { decodeSmmuPriRecord, type SmmuPriRecord } from './priq.js';
import {
  CR0_ATSCHK,
  CR0_CMDQEN,
  CR0_EVTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SMMU_CR0,
  SMMU_EVTQ_BASE,
  SMMU_EVTQ_CONS,
  SMMU_EVTQ_PROD,
  SMMU_IRQ_CTRL,
  SMMU_PRIQ_BASE,
  SMMU_PRIQ_CONS,
  SMMU_PRIQ_PROD,
  SMMU_STRTAB_BASE,
  SMMU_STRTAB_BASE_CFG,
} from './regs.js';
import { SmmuV3Model } from './smmu.js';
import type { SmmuHwConfig } from './smmu-config.js';
import { encodeSte, type SteFields } from './ste.js';
import { makeTestMemory, TestPageTable } from './test-helpers.js';

/** Queue sizes the harness programs (log2 entries). */
export const H_CMDQ_LOG2 = 4;
/** Event queue log2 size. */
export const H_EVTQ_LOG2 = 3;
/** PRI queue log2 size. */
export const H_PRIQ_LOG2 = 2;

function put(memory: PhysicalMemory, pa: number, words: ArrayLike<number>): void {
  for (let i = 0; i < words.length; i++) memory.write32(pa + i * 4, words[i] ?? 0);
}

/** Counts of an interrupt line's deliveries. */
export interface IrqCount {
  n: number;
}

/** Build the harness (`tlbBroadcast`: the machine broadcast the model listens to with BTM). */
export function smmuHarness(
  config: Partial<SmmuHwConfig> = {},
  enable = true,
  extra: { tlbBroadcast?: TlbBroadcast } = {},
) {
  const memory = makeTestMemory(64);
  const scheduler = new Scheduler();
  const counts = { evtq: { n: 0 }, priq: { n: 0 }, gerror: { n: 0 }, cmdqSync: { n: 0 } };
  const lines = {
    evtq: scheduler.createIrqLine('evtq'),
    priq: scheduler.createIrqLine('priq'),
    gerror: scheduler.createIrqLine('gerror'),
    cmdqSync: scheduler.createIrqLine('cmdq-sync'),
  };
  for (const k of Object.keys(lines) as (keyof typeof lines)[])
    lines[k].requestIrq(() => {
      counts[k].n++;
      return IrqReturn.HANDLED;
    });
  const smmu = new SmmuV3Model({ memory, scheduler, config, irqs: lines, ...extra });
  const strtab = memory.allocPages(2, { zero: true }); // 256 STEs
  const cmdq = memory.allocPages(0, { zero: true });
  const evtq = memory.allocPages(0, { zero: true });
  const priq = memory.allocPages(0, { zero: true });
  const mmio = smmu.mmio;
  let cmdProd = 0;
  let evtCons = 0;
  let priCons = 0;

  const h = {
    memory,
    scheduler,
    smmu,
    mmio,
    counts,
    strtab,
    cmdqPa: cmdq,
    evtqPa: evtq,
    priqPa: priq,
    /** Write an STE for `sid`. */
    ste(sid: number, fields: Partial<SteFields>): void {
      put(memory, strtab + sid * 64, encodeSte(fields));
    },
    /** Write a CD at `pa`. */
    cd(pa: number, fields: Partial<CdFields>): void {
      put(memory, pa, encodeCd(fields));
    },
    /** A fresh 4K-granule 48-bit stage-1 table. */
    pgtable(stage: 1 | 2 = 1): TestPageTable {
      return new TestPageTable(memory, { granule: 12, inputBits: 48, stage });
    },
    /** Place raw command words at PROD and advance PROD (no scheduling run). */
    pushRaw(words: ArrayLike<number>): number {
      const idx = cmdProd & ((1 << H_CMDQ_LOG2) - 1);
      put(memory, cmdq + idx * 16, words);
      cmdProd = (cmdProd + 1) & ((2 << H_CMDQ_LOG2) - 1);
      mmio.writel(SMMU_CMDQ_PROD, cmdProd);
      return cmdq + idx * 16;
    },
    /** Issue commands and run the scheduler until idle. */
    cmd(...cmds: SmmuCommandInit[]): void {
      for (const c of cmds) h.pushRaw(encodeSmmuCommand(c));
      scheduler.runUntilIdle();
    },
    /** Events written since the last call (CONS advanced past them). */
    events(): SmmuEvent[] {
      const out: SmmuEvent[] = [];
      const prod = mmio.readl(SMMU_EVTQ_PROD);
      const m = (2 << H_EVTQ_LOG2) - 1;
      while ((evtCons & m) !== (prod & m)) {
        const idx = evtCons & ((1 << H_EVTQ_LOG2) - 1);
        const w: number[] = [];
        for (let i = 0; i < 8; i++) w.push(memory.read32(evtq + idx * 32 + i * 4));
        out.push(decodeSmmuEvent(w));
        evtCons = (evtCons + 1) & m;
      }
      mmio.writel(SMMU_EVTQ_CONS, (evtCons | (prod & 0x8000_0000)) >>> 0);
      return out;
    },
    /** PRI records written since the last call. */
    priRecords(): SmmuPriRecord[] {
      const out: SmmuPriRecord[] = [];
      const prod = mmio.readl(SMMU_PRIQ_PROD);
      const m = (2 << H_PRIQ_LOG2) - 1;
      while ((priCons & m) !== (prod & m)) {
        const idx = priCons & ((1 << H_PRIQ_LOG2) - 1);
        const w: number[] = [];
        for (let i = 0; i < 4; i++) w.push(memory.read32(priq + idx * 16 + i * 4));
        out.push(decodeSmmuPriRecord(w));
        priCons = (priCons + 1) & m;
      }
      mmio.writel(SMMU_PRIQ_CONS, (priCons | (prod & 0x8000_0000)) >>> 0);
      return out;
    },
    /** A DMA request through the model. */
    dma(
      sid: number,
      addr: bigint,
      access: 'read' | 'write',
      opts: {
        size?: number;
        pasid?: number;
        data?: Uint8Array;
        privileged?: boolean;
        exec?: boolean;
        ats?: boolean;
      } = {},
    ): DmaOutcome {
      const size = opts.size ?? opts.data?.length ?? 4;
      const req = dmaRequest({
        requesterId: sid,
        addr,
        size,
        access,
        pasid: opts.pasid,
        privileged: opts.privileged ?? false,
        exec: opts.exec ?? false,
        atsTranslated: opts.ats ?? false,
      });
      return smmu.dmaAccess(req, access === 'write' ? (opts.data ?? new Uint8Array(size)) : undefined);
    },
    /** Program tables and queues and enable everything (the Linux reset order). */
    enable(): void {
      mmio.writeq(SMMU_STRTAB_BASE, BigInt(strtab));
      mmio.writel(SMMU_STRTAB_BASE_CFG, 8);
      mmio.writeq(SMMU_CMDQ_BASE, BigInt(cmdq) | BigInt(H_CMDQ_LOG2));
      mmio.writel(SMMU_CMDQ_PROD, 0);
      mmio.writel(SMMU_CMDQ_CONS, 0);
      mmio.writel(SMMU_CR0, CR0_CMDQEN);
      mmio.writeq(SMMU_EVTQ_BASE, BigInt(evtq) | BigInt(H_EVTQ_LOG2));
      mmio.writel(SMMU_EVTQ_PROD, 0);
      mmio.writel(SMMU_EVTQ_CONS, 0);
      mmio.writeq(SMMU_PRIQ_BASE, BigInt(priq) | BigInt(H_PRIQ_LOG2));
      mmio.writel(SMMU_PRIQ_PROD, 0);
      mmio.writel(SMMU_PRIQ_CONS, 0);
      mmio.writel(SMMU_IRQ_CTRL, 7);
      mmio.writel(SMMU_CR0, CR0_CMDQEN | CR0_EVTQEN | CR0_PRIQEN | CR0_ATSCHK | CR0_SMMUEN);
    },
  };
  if (enable) h.enable();
  return h;
}

/** A stage-1 STE pointing at a single CD. */
export function s1Ste(cdPa: number, extra: Partial<SteFields> = {}): Partial<SteFields> {
  return { v: true, config: 5, s1ContextPtr: cdPa, s1Dss: 0, s1Cir: 1, s1Cor: 1, s1Csh: 3, ...extra };
}

/** A 4K, 48-bit, recording, aborting CD for `ttb0`. */
export function s1Cd(ttb0: number, extra: Partial<CdFields> = {}): Partial<CdFields> {
  return {
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
    ttb0,
    mair0: 0xf404_ff44,
    ...extra,
  };
}
