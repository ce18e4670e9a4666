/**
 * One VT-d interrupt source with its event-control register block: CTL (IM bit 31, IP bit 30),
 * DATA (+4), ADDR (+8), UADDR (+12). Used for the fault event (FECTL at 0x38), the invalidation
 * completion event (IECTL at 0xA0) and the page request event (PECTL at 0xE0).
 *
 * @remarks
 * Protocol of digest §1.8: a condition sets IP; if IM is clear the message is sent at once and IP
 * clears. Software clearing IM while IP is set sends the held message. The owner clears IP when
 * software services every status bit the source reports ({@link VtdEventSource.clearPending}).
 */

import type { VtdRegisterFile } from './register-file.js';
import { DMA_FECTL_IM, DMA_FECTL_IP } from './regs.js';

/** Which of the unit's three interrupt sources. */
export type VtdEventName = 'fault' | 'iq' | 'prq';

/**
 * Delivery of one interrupt message (the unit's MSI write).
 * @param source - which source
 * @param addr - message address (UADDR:ADDR)
 * @param data - message data
 */
export type VtdEventSender = (source: VtdEventName, addr: bigint, data: number) => void;

/** One event-control block and its pending/mask state machine. */
export class VtdEventSource {
  /** Which source this is. */
  readonly name: VtdEventName;
  /** Offset of the CTL register (DATA, ADDR, UADDR follow at +4, +8, +12). */
  readonly ctl: number;
  /** Messages sent since construction. */
  sent = 0;
  readonly #regs: VtdRegisterFile;
  readonly #send: VtdEventSender;

  /**
   * @param regs - the unit's register file (the block must be defined there)
   * @param name - which source
   * @param ctl - offset of the CTL register
   * @param send - the unit's message delivery
   */
  constructor(regs: VtdRegisterFile, name: VtdEventName, ctl: number, send: VtdEventSender) {
    this.#regs = regs;
    this.name = name;
    this.ctl = ctl;
    this.#send = send;
  }

  /** Whether IP (interrupt pending) is set. */
  get pending(): boolean {
    return (this.#regs.get32(this.ctl) & DMA_FECTL_IP) !== 0;
  }

  /** Whether IM (interrupt mask) is set. */
  get masked(): boolean {
    return (this.#regs.get32(this.ctl) & DMA_FECTL_IM) !== 0;
  }

  /** An interrupt condition: set IP, and send at once unless masked. */
  raise(): void {
    const r = this.#regs;
    r.set32(this.ctl, r.get32(this.ctl) | DMA_FECTL_IP);
    if (!this.masked) this.#fire();
  }

  /** After a software write of CTL: send a held message if IM is now clear. */
  ctlWritten(): void {
    if (this.pending && !this.masked) this.#fire();
  }

  /** Clear IP without sending (software serviced the condition while masked). */
  clearPending(): void {
    const r = this.#regs;
    r.set32(this.ctl, r.get32(this.ctl) & ~DMA_FECTL_IP);
  }

  #fire(): void {
    const r = this.#regs;
    r.set32(this.ctl, r.get32(this.ctl) & ~DMA_FECTL_IP);
    const addr = (BigInt(r.get32(this.ctl + 12)) << 32n) | BigInt(r.get32(this.ctl + 8));
    this.sent++;
    this.#send(this.name, addr, r.get32(this.ctl + 4));
  }
}
