/**
 * Test harness for {@link VtdModel}: RAM, scheduler, interrupt lines with counters, a structure
 * builder, and helpers that program the unit through its registers the way a driver would
 * (root table, translation enable, invalidation queue, page request queue).
 */

import { IrqReturn, Scheduler } from '@iommu-ts/base';
import type { EndpointPort } from '@iommu-ts/iommu-core';
import { encodeVtdInvDesc, type VtdInvDesc } from './inv-desc.js';
import { decodeVtdPageRequest, type VtdPageRequestDesc } from './prq.js';
import {
  DMA_GCMD_QIE,
  DMA_GCMD_SRTP,
  DMA_GCMD_TE,
  DMA_IQA_DW,
  DMA_RTADDR_SMT,
  DMAR_FECTL_REG,
  DMAR_GCMD_REG,
  DMAR_GSTS_REG,
  DMAR_IECTL_REG,
  DMAR_IQA_REG,
  DMAR_IQT_REG,
  DMAR_PECTL_REG,
  DMAR_PQA_REG,
  DMAR_PQH_REG,
  DMAR_PQT_REG,
  DMAR_RTADDR_REG,
} from './regs.js';
import { testMemory, VtdStructureBuilder } from './structures.test-helpers.js';
import { SlTestPageTable } from './test-helpers.js';
import { VtdModel } from './vtd.js';
import type { VtdHwConfig } from './vtd-config.js';

/** A fake endpoint port recording what the unit sends. */
export function fakePort(
  requesterId: number,
  answer?: (msg: import('@iommu-ts/iommu-core').AtsInvalidateRequest) => void,
) {
  const inv: import('@iommu-ts/iommu-core').AtsInvalidateRequest[] = [];
  const prg: import('@iommu-ts/iommu-core').PrgResponseMessage[] = [];
  const port: EndpointPort = {
    requesterId,
    atsInvalidate: (m) => {
      inv.push(m);
      answer?.(m);
    },
    prgResponse: (m) => {
      prg.push(m);
    },
  };
  return { port, inv, prg };
}

/** Options of {@link vtdHarness}. */
export interface VtdHarnessOptions {
  /** Config overrides. */
  readonly config?: Partial<VtdHwConfig>;
  /** Lay out scalable-mode structures (default false: legacy). */
  readonly scalable?: boolean;
}

/** Build a unit with counted interrupt lines and a structure builder. */
export function vtdHarness(opts: VtdHarnessOptions = {}) {
  const memory = testMemory();
  const scheduler = new Scheduler();
  const counts = { fault: 0, iq: 0, prq: 0 };
  const mk = (n: 'fault' | 'iq' | 'prq') => {
    const l = scheduler.createIrqLine(`vtd-${n}`);
    l.requestIrq(() => {
      counts[n]++;
      return IrqReturn.HANDLED;
    });
    return l;
  };
  const irqs = { fault: mk('fault'), iq: mk('iq'), prq: mk('prq') };
  const msis: { addr: bigint; data: number }[] = [];
  const vtd = new VtdModel({
    memory,
    scheduler,
    irqs,
    ...(opts.config === undefined ? {} : { config: opts.config }),
    msiWrite: (addr, data) => {
      msis.push({ addr, data });
    },
  });
  const scalable = opts.scalable ?? false;
  const b = new VtdStructureBuilder(memory, scalable);
  const mmio = vtd.mmio;
  const wide = vtd.config.smts;
  let iqPa = 0;
  let iqTail = 0;
  let prqPa = 0;
  const h = {
    memory,
    scheduler,
    vtd,
    mmio,
    b,
    counts,
    msis,
    irqs,
    /** Unmask the three events. */
    unmaskAll(): void {
      mmio.writel(DMAR_FECTL_REG, 0);
      mmio.writel(DMAR_IECTL_REG, 0);
      mmio.writel(DMAR_PECTL_REG, 0);
    },
    /** GCMD with the persistent bits of GSTS kept (Linux's shadow). */
    gcmd(bits: number): void {
      const sts = mmio.readl(DMAR_GSTS_REG) & (DMA_GCMD_TE | DMA_GCMD_QIE | 0x0280_0000);
      mmio.writel(DMAR_GCMD_REG, (sts | bits) >>> 0);
    },
    /** Program RTADDR with the builder's root table and SRTP. */
    setRoot(): void {
      mmio.writeq(DMAR_RTADDR_REG, BigInt(b.rootTable) | (scalable ? DMA_RTADDR_SMT : 0n));
      h.gcmd(DMA_GCMD_SRTP);
    },
    /** setRoot then TE. */
    enable(): void {
      h.setRoot();
      h.gcmd(DMA_GCMD_TE);
    },
    /** A second-level page table (levels = aw + 2). */
    slTable(levels = 4): SlTestPageTable {
      return new SlTestPageTable(memory, { levels });
    },
    /** Set up the invalidation queue (4 KiB or 8 KiB at width 256) and enable QI. */
    enableQi(): number {
      iqPa = memory.allocPages(wide ? 1 : 0, { zero: true });
      iqTail = 0;
      mmio.writeq(DMAR_IQT_REG, 0n);
      mmio.writeq(DMAR_IQA_REG, BigInt(iqPa) | (wide ? DMA_IQA_DW | 1n : 0n));
      h.gcmd(DMA_GCMD_QIE);
      return iqPa;
    },
    /** Descriptor size of the queue in bytes. */
    get descSize(): number {
      return wide ? 32 : 16;
    },
    /** Write descriptors at the tail (raw words) without moving IQT. */
    put(...words: bigint[][]): void {
      const size = wide ? 8192 : 4096;
      for (const w of words) {
        const ws = wide ? [...w, 0n, 0n, 0n, 0n].slice(0, 4) : w.slice(0, 2);
        ws.forEach((q, i) => {
          memory.write64(iqPa + iqTail + i * 8, q);
        });
        iqTail = (iqTail + (wide ? 32 : 16)) % size;
      }
    },
    /** Write descriptors and move IQT (processing then runs on the scheduler). */
    submitRaw(...words: bigint[][]): void {
      h.put(...words);
      mmio.writel(DMAR_IQT_REG, iqTail);
    },
    /** Encode, submit and run what is ready now (virtual time does not move: time-outs stay armed). */
    submit(...descs: VtdInvDesc[]): void {
      h.submitRaw(...descs.map((d) => encodeVtdInvDesc(d, wide)));
      scheduler.advanceBy(0);
    },
    /** Current software tail offset. */
    get iqTail(): number {
      return iqTail;
    },
    /** A status slot for wait descriptors. */
    statusSlot(): number {
      return memory.allocPages(0, { zero: true });
    },
    /** Set up the page request queue: 2^order pages. */
    enablePrq(order = 0): number {
      prqPa = memory.allocPages(order, { zero: true });
      mmio.writeq(DMAR_PQH_REG, 0n);
      mmio.writeq(DMAR_PQT_REG, 0n);
      mmio.writeq(DMAR_PQA_REG, BigInt(prqPa) | BigInt(order));
      return prqPa;
    },
    /** Read the descriptors between PQH and PQT (and move PQH like Linux's handler). */
    drainPrq(): VtdPageRequestDesc[] {
      const out: VtdPageRequestDesc[] = [];
      const size = 4096 << Number(mmio.readq(DMAR_PQA_REG) & 7n);
      let head = Number(mmio.readq(DMAR_PQH_REG));
      const tail = Number(mmio.readq(DMAR_PQT_REG));
      while (head !== tail) {
        out.push(decodeVtdPageRequest([memory.read64(prqPa + head), memory.read64(prqPa + head + 8)]));
        head = (head + 32) % size;
      }
      mmio.writeq(DMAR_PQH_REG, BigInt(head));
      return out;
    },
  };
  return h;
}

/** The harness type. */
export type VtdHarness = ReturnType<typeof vtdHarness>;
