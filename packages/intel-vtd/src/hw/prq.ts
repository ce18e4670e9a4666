/**
 * The page request queue (digest §1.11, §5): page request descriptors written by the hardware at
 * PQT from endpoints' PCIe Page Request Messages, PRS.PPR / PRS.PRO, the page request event, and
 * the automatic responses the hardware sends for requests it cannot queue.
 *
 * @remarks
 * Descriptor (32 bytes, §5.1): qw0 type 7:0 (1 = page request), PP 8, PDP 9, RID 31:16, PASID
 * 51:32, ER 52, PM 53; qw1 RD 0, WR 1, LPIG 2, PRG index 11:3, page address 63:12; qw2/qw3 private
 * data (never produced: the endpoints of iommu-core send none).
 *
 * Queue behaviour (§5.2): the queue is 2^PQS 4 KiB pages at PQA; it is full when advancing PQT
 * would make it equal PQH. A request that finds the queue full, or PRS.PRO already set, sets PRO
 * and is not queued; if it is the last of its group (LPIG), the unit answers the group itself with
 * a page group response "Success" so the function retries (the exact automatic response code is
 * spec, unverified; "Success" matches the retry semantics SMMUv3 uses). A queued request sets PPR
 * and raises the page request event when PPR was clear.
 */

import { type PageRequestMessage, PRG_RESPONSE, type PrgResponseMessage } from '@iommu-ts/iommu-core';
import type { PhysicalMemory } from '@iommu-ts/mm';
import type { VtdEventSource } from './event-irq.js';
import type { VtdRegisterFile } from './register-file.js';
import {
  DMA_PQA_ADDR_MASK,
  DMA_PQA_QS_MASK,
  DMA_PRQ_OFFSET_MASK,
  DMA_PRS_PPR,
  DMA_PRS_PRO,
  DMAR_PQA_REG,
  DMAR_PQH_REG,
  DMAR_PQT_REG,
  DMAR_PRS_REG,
} from './regs.js';

/** Size of a page request descriptor in bytes. */
export const VTD_PRQ_DESC_SIZE = 32;
/** The descriptor type value of a page request descriptor (qw0 bits 7:0). */
export const VTD_PRQ_TYPE_PAGE_REQUEST = 1;

/** A decoded page request descriptor. */
export interface VtdPageRequestDesc {
  /** Type field (1). */
  readonly type: number;
  /** RID (requester id). */
  readonly rid: number;
  /** PP: PASID present. */
  readonly pasidPresent: boolean;
  /** PASID (0 when absent). */
  readonly pasid: number;
  /** ER: execute requested. */
  readonly exec: boolean;
  /** PM: privileged mode requested. */
  readonly privileged: boolean;
  /** RD. */
  readonly read: boolean;
  /** WR. */
  readonly write: boolean;
  /** LPIG: last page in group. */
  readonly last: boolean;
  /** PRG index (9 bits). */
  readonly prgIndex: number;
  /** Page address (4 KiB aligned). u64. */
  readonly addr: bigint;
}

/**
 * Encode a page request descriptor.
 * @param d - the fields
 * @returns qw0 … qw3 (qw2/qw3 are 0: no private data)
 */
export function encodeVtdPageRequest(d: VtdPageRequestDesc): bigint[] {
  const q0 =
    BigInt(d.type & 0xff) |
    (d.pasidPresent ? 1n << 8n : 0n) |
    (BigInt(d.rid & 0xffff) << 16n) |
    (BigInt(d.pasid & 0xfffff) << 32n) |
    (d.exec ? 1n << 52n : 0n) |
    (d.privileged ? 1n << 53n : 0n);
  const q1 =
    (d.read ? 1n : 0n) |
    (d.write ? 2n : 0n) |
    (d.last ? 4n : 0n) |
    (BigInt(d.prgIndex & 0x1ff) << 3n) |
    (d.addr & 0xffff_ffff_ffff_f000n);
  return [q0, q1, 0n, 0n];
}

/**
 * Decode a page request descriptor (what Linux's `prq_event_thread` reads).
 * @param qw - qw0 and qw1
 * @returns the fields
 */
export function decodeVtdPageRequest(qw: readonly bigint[]): VtdPageRequestDesc {
  const q0 = qw[0] ?? 0n;
  const q1 = qw[1] ?? 0n;
  const pp = (q0 & (1n << 8n)) !== 0n;
  return {
    type: Number(q0 & 0xffn),
    rid: Number((q0 >> 16n) & 0xffffn),
    pasidPresent: pp,
    pasid: Number((q0 >> 32n) & 0xfffffn),
    exec: (q0 & (1n << 52n)) !== 0n,
    privileged: (q0 & (1n << 53n)) !== 0n,
    read: (q1 & 1n) !== 0n,
    write: (q1 & 2n) !== 0n,
    last: (q1 & 4n) !== 0n,
    prgIndex: Number((q1 >> 3n) & 0x1ffn),
    addr: q1 & 0xffff_ffff_ffff_f000n,
  };
}

/** What {@link VtdPageRequestQueue.enqueue} did with a request. */
export type VtdPrqResult = 'queued' | 'overflow';

/** Counters of {@link VtdPageRequestQueue}. */
export interface VtdPrqStats {
  /** Descriptors written. */
  queued: number;
  /** Requests not queued because of overflow. */
  overflows: number;
  /** Automatic page group responses sent. */
  autoResponses: number;
}

/** The page request queue of one unit. */
export class VtdPageRequestQueue {
  /** Counters. */
  readonly stats: VtdPrqStats = { queued: 0, overflows: 0, autoResponses: 0 };
  /** Automatic responses sent, oldest first (capped at 1024). */
  readonly autoResponses: PrgResponseMessage[] = [];
  readonly #regs: VtdRegisterFile;
  readonly #memory: PhysicalMemory;
  readonly #event: VtdEventSource;
  readonly #respond: (msg: PrgResponseMessage) => void;

  /**
   * @param regs - the unit's registers (PQH/PQT/PQA/PRS and the PECTL block)
   * @param memory - RAM holding the queue
   * @param event - the page request event
   * @param respond - delivery of an automatic PRG response to the endpoint
   */
  constructor(
    regs: VtdRegisterFile,
    memory: PhysicalMemory,
    event: VtdEventSource,
    respond: (msg: PrgResponseMessage) => void,
  ) {
    this.#regs = regs;
    this.#memory = memory;
    this.#event = event;
    this.#respond = respond;
  }

  /** Queue size in bytes (from PQA.PQS). */
  get size(): number {
    return 4096 << Number(this.#regs.get64(DMAR_PQA_REG) & DMA_PQA_QS_MASK);
  }

  /** Number of descriptors between PQH and PQT. */
  get count(): number {
    const size = this.size;
    const h = Number(this.#regs.get64(DMAR_PQH_REG)) & DMA_PRQ_OFFSET_MASK & (size - 1);
    const t = Number(this.#regs.get64(DMAR_PQT_REG)) & DMA_PRQ_OFFSET_MASK & (size - 1);
    return ((t - h + size) % size) / VTD_PRQ_DESC_SIZE;
  }

  #overflow(msg: PageRequestMessage): VtdPrqResult {
    const r = this.#regs;
    const prs = r.get32(DMAR_PRS_REG);
    this.stats.overflows++;
    if ((prs & DMA_PRS_PRO) === 0) {
      r.set32(DMAR_PRS_REG, prs | DMA_PRS_PRO);
      if ((prs & DMA_PRS_PPR) === 0) this.#event.raise();
    }
    if (msg.last && (msg.read || msg.write)) {
      const resp: PrgResponseMessage =
        msg.pasid === undefined
          ? { requesterId: msg.requesterId, prgIndex: msg.prgIndex, code: PRG_RESPONSE.SUCCESS }
          : {
              requesterId: msg.requesterId,
              pasid: msg.pasid,
              prgIndex: msg.prgIndex,
              code: PRG_RESPONSE.SUCCESS,
            };
      this.stats.autoResponses++;
      if (this.autoResponses.length >= 1024) this.autoResponses.shift();
      this.autoResponses.push(resp);
      this.#respond(resp);
    }
    return 'overflow';
  }

  /**
   * Queue one page request (or handle it as an overflow).
   * @param msg - the PCIe Page Request Message
   * @returns `'queued'` or `'overflow'`
   */
  enqueue(msg: PageRequestMessage): VtdPrqResult {
    const r = this.#regs;
    const prs = r.get32(DMAR_PRS_REG);
    if ((prs & DMA_PRS_PRO) !== 0) return this.#overflow(msg);
    const size = this.size;
    const base = Number(r.get64(DMAR_PQA_REG) & DMA_PQA_ADDR_MASK);
    const head = Number(r.get64(DMAR_PQH_REG)) & DMA_PRQ_OFFSET_MASK & (size - 1);
    const tail = Number(r.get64(DMAR_PQT_REG)) & DMA_PRQ_OFFSET_MASK & (size - 1);
    const next = (tail + VTD_PRQ_DESC_SIZE) % size;
    if (next === head) return this.#overflow(msg);
    const words = encodeVtdPageRequest({
      type: VTD_PRQ_TYPE_PAGE_REQUEST,
      rid: msg.requesterId,
      pasidPresent: msg.pasid !== undefined,
      pasid: msg.pasid ?? 0,
      exec: msg.exec,
      privileged: msg.privileged,
      read: msg.read,
      write: msg.write,
      last: msg.last,
      prgIndex: msg.prgIndex,
      addr: msg.addr,
    });
    try {
      for (let k = 0; k < 4; k++) this.#memory.write64(base + tail + 8 * k, words[k] as bigint);
    } catch {
      // The queue is not in RAM: the write is lost, treat as overflow so the device is answered.
      return this.#overflow(msg);
    }
    r.set64(DMAR_PQT_REG, BigInt(next));
    this.stats.queued++;
    if ((prs & DMA_PRS_PPR) === 0) {
      r.set32(DMAR_PRS_REG, prs | DMA_PRS_PPR);
      this.#event.raise();
    }
    return 'queued';
  }

  /** After a software write of PRS: clear the event's IP when no status bit is left. */
  statusWritten(): void {
    if ((this.#regs.get32(DMAR_PRS_REG) & (DMA_PRS_PPR | DMA_PRS_PRO)) === 0) this.#event.clearPending();
  }
}
