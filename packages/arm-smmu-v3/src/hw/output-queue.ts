/**
 * The producer side of an SMMUv3 output queue in memory (event queue, PRI queue): BASE, PROD and
 * CONS with wrap bits, the full test and the OVFLG / OVACKFLG overflow handshake (digest §1.10,
 * spec §3.5 and §7.4 / §8.1).
 */

import type { PhysicalMemory } from '@iommu-ts/mm';
import { Q_BASE_ADDR_MASK, Q_BASE_LOG2SIZE, Q_OVERFLOW_FLAG } from './regs.js';

/** What an output queue needs from the SMMU that owns it. */
export interface SmmuOutputQueueHost {
  /** The RAM the queue lives in. */
  readonly memory: PhysicalMemory;
  /** Signal the queue's interrupt (wired line or MSI, as IRQ_CTRL and *_IRQ_CFG0 say). */
  signal(): void;
  /** Raise the queue's GERROR abort bit (write to the queue memory failed). */
  abort(): void;
}

/** Result of {@link SmmuOutputQueue.push}. */
export type SmmuQueuePushResult = 'written' | 'full' | 'disabled' | 'abort';

/**
 * An output queue of 2^LOG2SIZE entries of `entryWords` 32-bit words, written by the SMMU and
 * consumed by software.
 */
export class SmmuOutputQueue {
  /** Words per entry (8 for events, 4 for PRI records). */
  readonly entryWords: number;
  /** The largest LOG2SIZE the ID register advertises. */
  readonly maxLog2: number;
  /** The owner's callbacks. */
  readonly host: SmmuOutputQueueHost;
  /** The *_BASE register value. */
  base = 0n;
  /** LOG2SIZE in effect (the BASE field, capped at {@link SmmuOutputQueue.maxLog2}). */
  log2 = 0;
  /** Physical address of entry 0. */
  addr = 0;
  /** The PROD register: index, wrap bit, OVFLG (bit 31). */
  prod = 0;
  /** The CONS register: index, wrap bit, OVACKFLG (bit 31). */
  cons = 0;
  /** Whether the queue is enabled (CR0.EVENTQEN / PRIQEN, as acknowledged). */
  enabled = false;
  /** Entries written since construction. */
  written = 0;
  /** Entries discarded because the queue was full. */
  dropped = 0;

  /**
   * @param entryWords - 32-bit words per entry
   * @param maxLog2 - IDR1.EVENTQS / PRIQS
   * @param host - memory and signalling
   */
  constructor(entryWords: number, maxLog2: number, host: SmmuOutputQueueHost) {
    this.entryWords = entryWords;
    this.maxLog2 = maxLog2;
    this.host = host;
    this.writeBase(0n);
  }

  /**
   * Write *_BASE: address bits 51:5 and LOG2SIZE 4:0 (capped at the ID register's maximum). The
   * address is aligned down to the queue size.
   * @param value - u64
   */
  writeBase(value: bigint): void {
    this.base = value;
    this.log2 = Math.min(Number(value & BigInt(Q_BASE_LOG2SIZE)), this.maxLog2);
    const bytes = (this.entryWords * 4) << this.log2;
    const a = Number(value & Q_BASE_ADDR_MASK);
    this.addr = a - (a % bytes);
  }

  /** Mask of PROD/CONS bits that hold index and wrap. */
  get ptrMask(): number {
    return (2 << this.log2) - 1;
  }

  /**
   * Software write of PROD (allowed while the queue is disabled, for initialisation).
   * @param value - u32
   */
  writeProd(value: number): void {
    if (this.enabled) return;
    this.prod = (value & (this.ptrMask | Q_OVERFLOW_FLAG)) >>> 0;
  }

  /**
   * Software write of CONS: the read index it consumed up to and OVACKFLG.
   * @param value - u32
   */
  writeCons(value: number): void {
    this.cons = (value & (this.ptrMask | Q_OVERFLOW_FLAG)) >>> 0;
  }

  /** Whether PROD and CONS show a full queue (same index, different wrap). */
  get full(): boolean {
    const m = this.ptrMask;
    return ((this.prod ^ this.cons) & m) === 1 << this.log2;
  }

  /** Whether the queue is empty (same index and wrap). */
  get empty(): boolean {
    return ((this.prod ^ this.cons) & this.ptrMask) === 0;
  }

  /** Whether an overflow is unacknowledged (PROD.OVFLG differs from CONS.OVACKFLG). */
  get overflowActive(): boolean {
    return ((this.prod ^ this.cons) & Q_OVERFLOW_FLAG) !== 0;
  }

  /** Enter the overflow condition unless it is already present: toggle PROD.OVFLG. */
  overflow(): void {
    this.dropped++;
    if (!this.overflowActive) this.prod = (this.prod ^ Q_OVERFLOW_FLAG) >>> 0;
  }

  /**
   * Write one entry at PROD and advance PROD (index, then wrap), without signalling.
   * @param words - `entryWords` u32 values
   * @returns `'written'`, `'disabled'`, `'full'` (nothing written; the caller decides about
   *   overflow) or `'abort'` (the memory write failed; the owner's abort was raised)
   */
  push(words: ArrayLike<number>): SmmuQueuePushResult {
    if (!this.enabled) return 'disabled';
    if (this.full) return 'full';
    const m = this.ptrMask;
    const idx = this.prod & ((1 << this.log2) - 1);
    const at = this.addr + idx * this.entryWords * 4;
    try {
      for (let i = 0; i < this.entryWords; i++) this.host.memory.write32(at + i * 4, (words[i] ?? 0) >>> 0);
    } catch {
      this.host.abort();
      return 'abort';
    }
    this.prod = (((this.prod + 1) & m) | (this.prod & Q_OVERFLOW_FLAG)) >>> 0;
    this.written++;
    return 'written';
  }

  /**
   * Read the entry at index `idx` back from memory (tests, traces).
   * @param idx - queue index (0 … 2^LOG2SIZE − 1)
   * @returns the words
   */
  readEntry(idx: number): Uint32Array {
    const w = new Uint32Array(this.entryWords);
    const at = this.addr + (idx & ((1 << this.log2) - 1)) * this.entryWords * 4;
    for (let i = 0; i < this.entryWords; i++) w[i] = this.host.memory.read32(at + i * 4);
    return w;
  }

  /** Back to the reset state (registers 0, disabled). */
  reset(): void {
    this.writeBase(0n);
    this.prod = 0;
    this.cons = 0;
    this.enabled = false;
  }
}
