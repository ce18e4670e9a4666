/**
 * The invalidation queue (digest §1.10, §4): IQA/IQH/IQT, fetching and executing descriptors on
 * base's scheduler, invalidation wait completion (status write, ICS.IWC and the completion event),
 * and the queue errors IQE and ITE with their head behaviour (§4.11).
 *
 * @remarks
 * Processing runs as one scheduler task (spawned, or timed after `iqLatencyNs`) when software
 * writes IQT while QIES is set, when QI is enabled with a non-empty queue, or when a blocking
 * condition goes away (IQE/ITE cleared, ATS invalidation completions). The task executes every
 * descriptor from IQH to IQT:
 * - a bad tail (beyond the queue, or bit 4 set with 256-bit descriptors), a width that does not
 *   suit the unit or the translation mode, an unreadable descriptor, an invalid type or a reserved
 *   field set → IQER.IQEI and FSTS.IQE; IQH stays **at** the offending descriptor; nothing more
 *   runs until software clears IQE (which restarts processing);
 * - a wait descriptor while ATS invalidations sent by earlier device-TLB descriptors are still
 *   unanswered holds the queue (IQH at the wait); after `devTlbInvTimeoutNs` the wait is aborted
 *   (IQH moves past it, no status write, no IWC), IQER.ITESID and FSTS.ITE are set and processing
 *   stops until ITE is cleared;
 * - other descriptors go to the owner ({@link VtdIqHost.execute}).
 */

import type { Scheduler, Timer } from '@iommu-ts/base';
import type { PhysicalMemory } from '@iommu-ts/mm';
import type { VtdEventSource } from './event-irq.js';
import type { VtdFaultRecorder } from './fault-recording.js';
import { decodeVtdInvDesc, type VtdInvDesc, type VtdWaitInvDesc } from './inv-desc.js';
import type { VtdRegisterFile } from './register-file.js';
import {
  DMA_FSTS_IQE,
  DMA_FSTS_ITE,
  DMA_ICS_IWC,
  DMA_IQ_OFFSET_MASK,
  DMA_IQA_ADDR_MASK,
  DMA_IQA_DW,
  DMA_IQA_QS_MASK,
  DMAR_ICS_REG,
  DMAR_IQA_REG,
  DMAR_IQER_REG,
  DMAR_IQH_REG,
  DMAR_IQT_REG,
  VTD_IQEI,
} from './regs.js';
import type { VtdHwConfig } from './vtd-config.js';

/** What the queue needs from the unit that owns it. */
export interface VtdIqHost {
  /** Unit parameters. */
  readonly config: VtdHwConfig;
  /** RAM holding the queue and the wait status slots. */
  readonly memory: PhysicalMemory;
  /** Where processing runs. */
  readonly scheduler: Scheduler;
  /** The unit's registers. */
  readonly regs: VtdRegisterFile;
  /** FSTS owner (IQE / ITE). */
  readonly faults: VtdFaultRecorder;
  /** The invalidation completion event (IECTL block). */
  readonly iqEvent: VtdEventSource;
  /** TTM latched by the last SRTP (0 legacy, 1 scalable). */
  readonly ttm: number;
  /**
   * Perform a descriptor other than a wait descriptor.
   * @param desc - the decoded descriptor
   */
  execute(desc: Exclude<VtdInvDesc, VtdWaitInvDesc>): void;
  /** Whether ATS invalidations sent by earlier device-TLB descriptors still await completions. */
  devTlbPending(): boolean;
  /**
   * Give up on the pending ATS invalidations (time-out).
   * @returns the source-id of one endpoint that did not answer (for IQER.ITESID)
   */
  devTlbAbandon(): number;
}

/** Counters of {@link VtdInvalidationQueue}. */
export interface VtdIqStats {
  /** Descriptors executed, by type. */
  readonly byType: Map<VtdInvDesc['type'], number>;
  /** Queue errors (IQE) raised. */
  iqe: number;
  /** Invalidation time-outs (ITE) raised. */
  ite: number;
}

/** The invalidation queue of one unit. */
export class VtdInvalidationQueue {
  /** The owner. */
  readonly host: VtdIqHost;
  /** Counters. */
  readonly stats: VtdIqStats = { byType: new Map(), iqe: 0, ite: 0 };
  /** Every descriptor executed, oldest first (a trace for tests; capped at {@link VtdInvalidationQueue.logLimit}). */
  readonly log: VtdInvDesc[] = [];
  /** Most descriptors kept in {@link VtdInvalidationQueue.log}. */
  logLimit = 4096;
  /** Whether QIES is set (the owner keeps GSTS). */
  enabled = false;
  #scheduled = false;
  #waiting = false;
  readonly #timer: Timer;
  readonly #task = (): void => {
    this.#scheduled = false;
    this.process();
  };

  /** @param host - the owner */
  constructor(host: VtdIqHost) {
    this.host = host;
    this.#timer = host.scheduler.createTimer(() => this.#timeout(), 'vtd-iq-ite');
  }

  /** Whether processing is held at a wait descriptor for ATS invalidation completions. */
  get waitingForDevTlb(): boolean {
    return this.#waiting;
  }

  /** IQH byte offset. */
  get head(): number {
    return Number(this.host.regs.get64(DMAR_IQH_REG) & BigInt(DMA_IQ_OFFSET_MASK));
  }

  /** IQT byte offset. */
  get tail(): number {
    return Number(this.host.regs.get64(DMAR_IQT_REG) & BigInt(DMA_IQ_OFFSET_MASK));
  }

  /** Whether IQH differs from IQT. */
  get pending(): boolean {
    return this.head !== this.tail;
  }

  #blocked(): boolean {
    const f = this.host.faults;
    return f.has(DMA_FSTS_IQE) || f.has(DMA_FSTS_ITE);
  }

  /** Schedule processing if the queue is enabled, not blocked by an error, and has work. */
  kick(): void {
    if (!this.enabled || this.#scheduled || !this.pending || this.#blocked()) return;
    this.#scheduled = true;
    const lat = this.host.config.iqLatencyNs;
    if (lat > 0) this.host.scheduler.createTimer(this.#task, 'vtd-iq').modAfter(lat);
    else this.host.scheduler.spawn(this.#task, 'vtd-iq');
  }

  /** QI enabled (GCMD.QIE set): start processing what is already queued. */
  enable(): void {
    this.enabled = true;
    this.kick();
  }

  /** QI disabled: IQH goes back to 0 and a held wait is forgotten. */
  disable(): void {
    this.enabled = false;
    this.host.regs.set64(DMAR_IQH_REG, 0n);
    this.#waiting = false;
    this.#timer.del();
  }

  #iqe(iqei: number): void {
    const r = this.host.regs;
    r.set64(DMAR_IQER_REG, (r.get64(DMAR_IQER_REG) & ~0xfn) | BigInt(iqei));
    this.stats.iqe++;
    this.host.faults.setError(DMA_FSTS_IQE);
  }

  #timeout(): void {
    if (!this.#waiting) return;
    this.#waiting = false;
    const h = this.host;
    const sid = h.devTlbAbandon();
    const r = h.regs;
    r.set64(DMAR_IQER_REG, (r.get64(DMAR_IQER_REG) & ~(0xffffn << 32n)) | (BigInt(sid & 0xffff) << 32n));
    // The held wait descriptor is aborted: skip it without its status write or IWC.
    const iqa = r.get64(DMAR_IQA_REG);
    const size = 4096 << Number(iqa & DMA_IQA_QS_MASK);
    const step = (iqa & DMA_IQA_DW) !== 0n ? 32 : 16;
    r.set64(DMAR_IQH_REG, BigInt((this.head + step) % size));
    this.stats.ite++;
    h.faults.setError(DMA_FSTS_ITE);
  }

  /**
   * Process descriptors now (the body of the scheduled task; tests may call it directly).
   */
  process(): void {
    const h = this.host;
    const r = h.regs;
    const cfg = h.config;
    const mem = h.memory;
    while (this.enabled && !this.#blocked()) {
      const iqa = r.get64(DMAR_IQA_REG);
      const wide = (iqa & DMA_IQA_DW) !== 0n;
      const size = 4096 << Number(iqa & DMA_IQA_QS_MASK);
      const base = Number(iqa & DMA_IQA_ADDR_MASK);
      const tail = this.tail;
      let head = this.head;
      if (head === tail) return;
      if (tail >= size) {
        this.#iqe(VTD_IQEI.TAIL);
        return;
      }
      if (wide && (tail & 0x10) !== 0) {
        this.#iqe(VTD_IQEI.TAIL_ALIGN);
        return;
      }
      if (wide && !(cfg.smts || cfg.adms)) {
        this.#iqe(VTD_IQEI.WIDTH);
        return;
      }
      if (!wide && h.ttm === 1) {
        this.#iqe(VTD_IQEI.WIDTH);
        return;
      }
      if (head >= size) head = 0;
      const step = wide ? 32 : 16;
      const words: bigint[] = [];
      try {
        for (let k = 0; k < step; k += 8) words.push(mem.read64(base + head + k));
      } catch {
        this.#iqe(VTD_IQEI.FETCH);
        return;
      }
      const desc = decodeVtdInvDesc(words, cfg);
      if (desc.type === 'error') {
        this.#iqe(desc.iqei);
        return;
      }
      if (desc.type === 'wait') {
        if (h.devTlbPending()) {
          if (!this.#waiting) {
            this.#waiting = true;
            this.#timer.modAfter(cfg.devTlbInvTimeoutNs);
          }
          return;
        }
        if (this.#waiting) {
          this.#waiting = false;
          this.#timer.del();
        }
        this.#completeWait(desc);
      } else h.execute(desc);
      if (this.log.length >= this.logLimit) this.log.shift();
      this.log.push(desc);
      this.stats.byType.set(desc.type, (this.stats.byType.get(desc.type) ?? 0) + 1);
      r.set64(DMAR_IQH_REG, BigInt((head + step) % size));
    }
  }

  #completeWait(d: VtdWaitInvDesc): void {
    const h = this.host;
    if (d.sw) {
      try {
        h.memory.write32(Number(d.statusAddr), d.statusData >>> 0);
      } catch {
        // A status write to no RAM is lost (a master abort on real hardware).
      }
    }
    if (d.if) {
      const r = h.regs;
      const ics = r.get32(DMAR_ICS_REG);
      if ((ics & DMA_ICS_IWC) === 0) {
        r.set32(DMAR_ICS_REG, ics | DMA_ICS_IWC);
        h.iqEvent.raise();
      }
    }
  }

  /** Back to reset: not enabled, nothing held. */
  reset(): void {
    this.enabled = false;
    this.#waiting = false;
    this.#timer.del();
  }
}
