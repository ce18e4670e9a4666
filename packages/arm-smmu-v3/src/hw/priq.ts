/**
 * The SMMUv3 PRI queue (digest §6, spec §8): PCIe Page Request Messages recorded as 16-byte
 * records, overflow with automatic PRG responses, and the automatic "Response Failure" when the
 * queue is disabled or in an abort error.
 */

import { ErrnoError } from '@iommu-ts/base';
import { type PageRequestMessage, PRG_RESPONSE, type PrgResponseMessage } from '@iommu-ts/iommu-core';
import { SmmuOutputQueue, type SmmuOutputQueueHost } from './output-queue.js';

/** A decoded PRI queue record (digest §6.1). */
export interface SmmuPriRecord {
  /** StreamID of the requester. */
  readonly sid: number;
  /** SSV: the request carried a PASID. */
  readonly ssv: boolean;
  /** SubstreamID (PASID), 20 bits; 0 when `!ssv`. */
  readonly ssid: number;
  /** Privileged access requested. */
  readonly priv: boolean;
  /** Execute permission requested. */
  readonly exec: boolean;
  /** Read permission requested. */
  readonly read: boolean;
  /** Write permission requested. */
  readonly write: boolean;
  /** Last request of the page request group. */
  readonly last: boolean;
  /** PRG index, 9 bits. */
  readonly prgIndex: number;
  /** Page address (bits 63:12). u64. */
  readonly addr: bigint;
}

/** Size of a PRI record in bytes. */
export const SMMU_PRI_RECORD_SIZE = 16;

/**
 * Encode a PRI record as 4 little-endian u32 words (DW0 low, DW0 high, DW1 low, DW1 high).
 * @param r - the record
 * @returns 4 words
 */
export function encodeSmmuPriRecord(r: SmmuPriRecord): Uint32Array {
  const w = new Uint32Array(4);
  w[0] = r.sid >>> 0;
  w[1] =
    (r.ssid & 0xfffff) |
    (r.priv ? 1 << 26 : 0) |
    (r.exec ? 1 << 27 : 0) |
    (r.read ? 1 << 28 : 0) |
    (r.write ? 1 << 29 : 0) |
    (r.last ? 1 << 30 : 0) |
    (r.ssv ? 0x8000_0000 : 0);
  const a = r.addr & ~0xfffn;
  w[2] = (Number(a & 0xffff_ffffn) | (r.prgIndex & 0x1ff)) >>> 0;
  w[3] = Number((a >> 32n) & 0xffff_ffffn);
  return w;
}

/**
 * Decode a PRI record.
 * @param words - 4 u32 words
 * @returns the record
 * @throws ErrnoError `EINVAL` for fewer than 4 words
 */
export function decodeSmmuPriRecord(words: ArrayLike<number>): SmmuPriRecord {
  if (words.length < 4) throw new ErrnoError('EINVAL', `PRI record needs 4 words, got ${words.length}`);
  const w0 = (words[0] as number) >>> 0;
  const w1 = (words[1] as number) >>> 0;
  const w2 = (words[2] as number) >>> 0;
  const w3 = (words[3] as number) >>> 0;
  return {
    sid: w0,
    ssv: (w1 & 0x8000_0000) !== 0,
    ssid: w1 & 0xfffff,
    priv: (w1 & (1 << 26)) !== 0,
    exec: (w1 & (1 << 27)) !== 0,
    read: (w1 & (1 << 28)) !== 0,
    write: (w1 & (1 << 29)) !== 0,
    last: (w1 & (1 << 30)) !== 0,
    prgIndex: w2 & 0x1ff,
    addr: (BigInt(w3) << 32n) | BigInt((w2 & 0xffff_f000) >>> 0),
  };
}

/**
 * The record a Page Request Message becomes.
 * @param msg - the message
 * @returns the record
 */
export function smmuPriRecordFromMessage(msg: PageRequestMessage): SmmuPriRecord {
  const ssv = msg.pasid !== undefined;
  return {
    sid: msg.requesterId >>> 0,
    ssv,
    ssid: msg.pasid ?? 0,
    priv: ssv && msg.privileged,
    exec: ssv && msg.exec,
    read: msg.read,
    write: msg.write,
    last: msg.last,
    prgIndex: msg.prgIndex & 0x1ff,
    addr: msg.addr & ~0xfffn,
  };
}

/** What the PRI queue needs beyond {@link SmmuOutputQueueHost}. */
export interface SmmuPriQueueHost extends SmmuOutputQueueHost {
  /**
   * Send an automatic PRG response to the requester.
   * @param msg - the response
   */
  autoRespond(msg: PrgResponseMessage): void;
  /**
   * STE.PPAR of a StreamID, for overflow responses to PASID-tagged requests (IDR3.PPS=0).
   * @param sid - StreamID
   * @returns PPAR, or `undefined` when the STE cannot be read or is invalid (then the response
   *   is Response Failure without PASID)
   */
  ppar(sid: number): boolean | undefined;
  /** Whether GERROR.PRIQ_ABT_ERR is active (no entries are written while it is). */
  abortActive(): boolean;
}

/** What happened to a page request. */
export type SmmuPageRequestResult = 'written' | 'overflow' | 'auto-failure' | 'abort' | 'ignored';

/** The PRI queue. */
export class SmmuPriQueue extends SmmuOutputQueue {
  /** The owner's callbacks. */
  readonly priHost: SmmuPriQueueHost;
  /** Automatic PRG responses sent, oldest first. */
  readonly autoResponses: PrgResponseMessage[] = [];

  /**
   * @param maxLog2 - IDR1.PRIQS
   * @param host - memory, signalling, auto-responses
   */
  constructor(maxLog2: number, host: SmmuPriQueueHost) {
    super(4, maxLog2, host);
    this.priHost = host;
  }

  #respond(msg: PrgResponseMessage): void {
    this.autoResponses.push(msg);
    this.priHost.autoRespond(msg);
  }

  /**
   * Accept a Page Request Message (spec §8.1/§8.2): record it and signal; with the queue disabled
   * or PRIQ_ABT_ERR active, answer Response Failure (no PASID); with the queue full or in an
   * overflow condition, discard it (entering overflow) and auto-answer a Last=1 request with
   * Success (PASID per STE.PPAR, Response Failure if the STE is unusable). Stop Markers never get
   * automatic responses.
   * @param msg - the message
   * @returns what happened
   */
  accept(msg: PageRequestMessage): SmmuPageRequestResult {
    const rec = smmuPriRecordFromMessage(msg);
    const stopMarker = rec.ssv && rec.last && !rec.read && !rec.write;
    if (!this.enabled || this.priHost.abortActive()) {
      if (!stopMarker)
        this.#respond({
          requesterId: msg.requesterId,
          prgIndex: rec.prgIndex,
          code: PRG_RESPONSE.RESPONSE_FAILURE,
        });
      return 'auto-failure';
    }
    if (this.overflowActive || this.full) {
      this.overflow();
      this.host.signal();
      if (rec.last && !stopMarker) {
        if (!rec.ssv)
          this.#respond({ requesterId: msg.requesterId, prgIndex: rec.prgIndex, code: PRG_RESPONSE.SUCCESS });
        else {
          const ppar = this.priHost.ppar(rec.sid);
          if (ppar === undefined)
            this.#respond({
              requesterId: msg.requesterId,
              prgIndex: rec.prgIndex,
              code: PRG_RESPONSE.RESPONSE_FAILURE,
            });
          else
            this.#respond({
              requesterId: msg.requesterId,
              prgIndex: rec.prgIndex,
              code: PRG_RESPONSE.SUCCESS,
              ...(ppar ? { pasid: rec.ssid } : {}),
            });
        }
      }
      return 'overflow';
    }
    const r = this.push(encodeSmmuPriRecord(rec));
    if (r === 'abort') {
      if (!stopMarker)
        this.#respond({
          requesterId: msg.requesterId,
          prgIndex: rec.prgIndex,
          code: PRG_RESPONSE.RESPONSE_FAILURE,
        });
      return 'abort';
    }
    this.host.signal();
    return 'written';
  }
}
