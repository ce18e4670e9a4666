/**
 * The SMMUv3 event queue (digest §5, spec §7): event records written at EVENTQ_PROD, overflow
 * (OVFLG toggled once per condition, records of terminated transactions discarded while full), and
 * stall records that are never discarded but held until the queue has room.
 */

import { encodeSmmuEvent, type SmmuEvent, type SmmuEventType } from './events.js';
import { SmmuOutputQueue, type SmmuOutputQueueHost } from './output-queue.js';

/** What happened to a recorded event. */
export type SmmuEventRecordResult = 'written' | 'held' | 'overflow' | 'discarded' | 'abort';

/**
 * The event queue. The owner sets {@link SmmuOutputQueue.enabled} from CR0.EVENTQEN and calls
 * {@link SmmuEventQueue.drainHeld} whenever room may have appeared (CONS write, enable).
 */
export class SmmuEventQueue extends SmmuOutputQueue {
  /** Stall event records waiting for room, oldest first. */
  readonly held: SmmuEvent[] = [];
  /** Every event offered to the queue, decoded, oldest first (a trace for tests; capped). */
  readonly log: SmmuEvent[] = [];
  /** Most events kept in {@link SmmuEventQueue.log}. */
  logLimit = 1024;
  /**
   * Events offered to the queue since construction, by event type (`F_TRANSLATION`, `F_PERMISSION`…),
   * whatever became of each record (written, held, discarded or lost to overflow). Unlike
   * {@link SmmuEventQueue.log} it is never capped; a reset of the queue does not clear it.
   */
  readonly byType = new Map<SmmuEventType, number>();

  /**
   * @param maxLog2 - IDR1.EVENTQS
   * @param host - memory and signalling
   */
  constructor(maxLog2: number, host: SmmuOutputQueueHost) {
    super(8, maxLog2, host);
  }

  /**
   * Record an event: write it and signal the interrupt; when the queue is disabled the event is
   * discarded (stall records are held); when it is full, a terminated transaction's record is
   * discarded and the overflow condition entered, while a stall record is held (no overflow).
   * @param ev - the event
   * @returns what happened
   */
  record(ev: SmmuEvent): SmmuEventRecordResult {
    this.byType.set(ev.type, (this.byType.get(ev.type) ?? 0) + 1);
    if (this.log.length >= this.logLimit) this.log.shift();
    this.log.push(ev);
    if (ev.stall && this.held.length > 0) {
      this.held.push(ev);
      return 'held';
    }
    const r = this.push(encodeSmmuEvent(ev));
    switch (r) {
      case 'written':
        this.host.signal();
        return 'written';
      case 'abort':
        return 'abort';
      case 'disabled':
        if (ev.stall) {
          this.held.push(ev);
          return 'held';
        }
        return 'discarded';
      case 'full':
        if (ev.stall) {
          this.held.push(ev);
          return 'held';
        }
        this.overflow();
        this.host.signal();
        return 'overflow';
    }
  }

  /**
   * Write held stall records while there is room.
   * @returns how many were written
   */
  drainHeld(): number {
    let n = 0;
    while (this.held.length > 0) {
      const ev = this.held[0] as SmmuEvent;
      const r = this.push(encodeSmmuEvent(ev));
      if (r === 'full' || r === 'disabled') break;
      this.held.shift();
      if (r === 'written') n++;
    }
    if (n > 0) this.host.signal();
    return n;
  }

  /**
   * Drop held records matching `pred` (their transactions were terminated before the record could
   * be written).
   * @param pred - which records to drop
   */
  dropHeld(pred: (ev: SmmuEvent) => boolean): void {
    for (let i = this.held.length - 1; i >= 0; i--)
      if (pred(this.held[i] as SmmuEvent)) this.held.splice(i, 1);
  }

  /** {@inheritDoc SmmuOutputQueue.reset} */
  override reset(): void {
    super.reset();
    this.held.length = 0;
  }
}
