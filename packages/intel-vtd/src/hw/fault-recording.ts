/**
 * Primary fault recording: FSTS (PFO, PPF, FRI and the queue error bits IQE/ICE/ITE), the fault
 * recording registers FRCD[0 … NFR] and the fault event.
 *
 * @remarks
 * Mechanics of digest §6.5 and §1.8: a fault is dropped while PFO is set; if the record at the
 * next index still holds a pending fault, PFO is set and the fault dropped; otherwise the record is
 * written with F set, PPF becomes 1 (FRI = that index if PPF was clear) and the index advances
 * modulo NFR+1. A fault event is raised when PPF, IQE, ICE or ITE becomes set while none of PFO,
 * PPF, IQE, ICE, ITE was set before. IP clears when software clears the last of them. Faults that
 * FPD suppresses ({@link vtdFaultIsRecorded}) never reach the registers. QEMU's "fault
 * compression" (dropping a second fault of a SID that already has a pending record) is not
 * modelled: real hardware records each fault.
 */

import type { VtdEventSource } from './event-irq.js';
import type { VtdRegisterFile } from './register-file.js';
import {
  DMA_FRCD_F,
  DMA_FSTS_FRI_SHIFT,
  DMA_FSTS_ICE,
  DMA_FSTS_IQE,
  DMA_FSTS_ITE,
  DMA_FSTS_PFO,
  DMA_FSTS_PPF,
  DMAR_FSTS_REG,
  vtdFrcdOffset,
} from './regs.js';
import type { VtdHwConfig } from './vtd-config.js';
import { encodeVtdFrcd, type VtdFault, vtdFaultIsRecorded } from './vtd-fault.js';

/** Status bits whose presence suppresses a new fault event, and whose clearing clears IP. */
const STATUS_BITS = DMA_FSTS_PFO | DMA_FSTS_PPF | DMA_FSTS_IQE | DMA_FSTS_ICE | DMA_FSTS_ITE;

/** What {@link VtdFaultRecorder.record} did with a fault. */
export type VtdRecordResult = 'recorded' | 'suppressed' | 'overflow' | 'dropped';

/** Counters of {@link VtdFaultRecorder}. */
export interface VtdFaultStats {
  /** Faults written to a record. */
  recorded: number;
  /** Faults not recorded because FPD applied. */
  suppressed: number;
  /** Faults that set PFO. */
  overflows: number;
  /** Faults dropped because PFO was already set. */
  dropped: number;
  /**
   * Faults written to a record, by fault reason code (FR, see `VTD_FR`): the per-reason split of
   * {@link VtdFaultStats.recorded}.
   */
  readonly byReason: Map<number, number>;
}

/** The fault status and recording registers of one unit. */
export class VtdFaultRecorder {
  /** Counters. */
  readonly stats: VtdFaultStats = {
    recorded: 0,
    suppressed: 0,
    overflows: 0,
    dropped: 0,
    byReason: new Map(),
  };
  /** Every fault offered to {@link VtdFaultRecorder.record} with its result, oldest first (capped at 1024). */
  readonly log: { readonly fault: VtdFault; readonly result: VtdRecordResult }[] = [];
  readonly #regs: VtdRegisterFile;
  readonly #fro: number;
  readonly #nfr: number;
  readonly #event: VtdEventSource;
  #next = 0;

  /**
   * @param regs - the unit's register file (FSTS and the FRCDs defined)
   * @param config - FRO and the number of records
   * @param event - the fault event source (FECTL block)
   */
  constructor(
    regs: VtdRegisterFile,
    config: Pick<VtdHwConfig, 'fro' | 'numFaultRecords'>,
    event: VtdEventSource,
  ) {
    this.#regs = regs;
    this.#fro = config.fro;
    this.#nfr = config.numFaultRecords;
    this.#event = event;
  }

  /** Index of the record the next fault goes to. */
  get nextIndex(): number {
    return this.#next;
  }

  /** Forget the next-record position (QEMU does this when translation is disabled). */
  resetIndex(): void {
    this.#next = 0;
  }

  #fsts(): number {
    return this.#regs.get32(DMAR_FSTS_REG);
  }

  #pendingAt(i: number): boolean {
    return (this.#regs.get32(vtdFrcdOffset(this.#fro, i) + 12) & DMA_FRCD_F) !== 0;
  }

  /**
   * Record a primary (non-recoverable) fault.
   * @param fault - the fault; with `fpd` set and a qualified reason it is suppressed
   * @returns what happened
   */
  record(fault: VtdFault): VtdRecordResult {
    const result = this.#record(fault);
    if (this.log.length >= 1024) this.log.shift();
    this.log.push({ fault, result });
    return result;
  }

  /**
   * Account for a fault the translator decided not to record (FPD on a qualified reason, or
   * abort-DMA mode): counted and logged as `'suppressed'`, no register changes.
   * @param fault - the fault
   */
  suppress(fault: VtdFault): void {
    this.stats.suppressed++;
    if (this.log.length >= 1024) this.log.shift();
    this.log.push({ fault, result: 'suppressed' });
  }

  #record(fault: VtdFault): VtdRecordResult {
    if (!vtdFaultIsRecorded(fault)) {
      this.stats.suppressed++;
      return 'suppressed';
    }
    const fsts = this.#fsts();
    if ((fsts & DMA_FSTS_PFO) !== 0) {
      this.stats.dropped++;
      return 'dropped';
    }
    const i = this.#next;
    if (this.#pendingAt(i)) {
      this.#regs.set32(DMAR_FSTS_REG, fsts | DMA_FSTS_PFO);
      this.stats.overflows++;
      return 'overflow';
    }
    const { lo, hi } = encodeVtdFrcd(fault);
    const off = vtdFrcdOffset(this.#fro, i);
    this.#regs.set64(off, lo);
    this.#regs.set64(off + 8, hi);
    this.#next = (i + 1) % this.#nfr;
    this.stats.recorded++;
    this.stats.byReason.set(fault.reason, (this.stats.byReason.get(fault.reason) ?? 0) + 1);
    if ((fsts & DMA_FSTS_PPF) === 0) {
      this.#regs.set32(
        DMAR_FSTS_REG,
        (fsts & ~(0xff << DMA_FSTS_FRI_SHIFT)) | DMA_FSTS_PPF | (i << DMA_FSTS_FRI_SHIFT),
      );
      if ((fsts & STATUS_BITS) === 0) this.#event.raise();
    }
    return 'recorded';
  }

  /**
   * Set a queue error bit (IQE, ICE or ITE) and raise the fault event under the same rule as PPF.
   * @param bit - {@link DMA_FSTS_IQE}, {@link DMA_FSTS_ICE} or {@link DMA_FSTS_ITE}
   */
  setError(bit: number): void {
    const fsts = this.#fsts();
    if ((fsts & bit) !== 0) return;
    this.#regs.set32(DMAR_FSTS_REG, fsts | bit);
    if ((fsts & STATUS_BITS) === 0) this.#event.raise();
  }

  /**
   * Whether an FSTS bit is set.
   * @param bit - an FSTS bit
   * @returns true if set
   */
  has(bit: number): boolean {
    return (this.#fsts() & bit) !== 0;
  }

  /**
   * After software wrote FSTS or a FRCD (the register file already applied RW1C): recompute PPF
   * and FRI from the records' F bits, and clear IP when no status bit is left.
   */
  update(): void {
    let fsts = this.#fsts();
    let first = -1;
    const start = (fsts >>> DMA_FSTS_FRI_SHIFT) & 0xff;
    for (let k = 0; k < this.#nfr; k++) {
      const i = (start + k) % this.#nfr;
      if (this.#pendingAt(i)) {
        first = i;
        break;
      }
    }
    if (first < 0) fsts &= ~DMA_FSTS_PPF;
    else fsts = (fsts & ~(0xff << DMA_FSTS_FRI_SHIFT)) | DMA_FSTS_PPF | (first << DMA_FSTS_FRI_SHIFT);
    this.#regs.set32(DMAR_FSTS_REG, fsts);
    if ((fsts & STATUS_BITS) === 0) this.#event.clearPending();
  }
}
