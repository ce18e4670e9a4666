/**
 * A shared-virtual-addressing accelerator as the `sva-accelerator` workload drives it: the process
 * writes a 64-byte job descriptor into its own memory and submits its address (as a DSA/idxd work
 * queue does with ENQCMD and the process's PASID); the device fetches the descriptor, reads the
 * source buffer, writes the source XORed with the descriptor's 16-byte key to the destination, and
 * writes a 16-byte completion record, every access a DMA with the PASID on the process's own
 * pointers. Accesses to pages the process never touched page-fault in the IOMMU (PRI page
 * requests or stalled transactions) and complete once the OS answers; an access the OS refuses
 * fails the job.
 */

import type { DmaFault, DmaTicket, Endpoint } from '@iommu-ts/iommu-core';

/** Size of a job descriptor in bytes. */
export const SVA_DESC_SIZE = 64;
/** Size of a completion record in bytes. */
export const SVA_COMPLETION_SIZE = 16;
/** Length of the XOR key in bytes. */
export const SVA_KEY_SIZE = 16;
/** Descriptor opcode: destination = source XOR key (byte `i` uses key byte `i % 16`). */
export const SVA_OP_XOR = 0x01;
/** Completion status: the job completed. */
export const SVA_STATUS_SUCCESS = 0x01;
/** Completion status: a source or destination access faulted (fault address in the record). */
export const SVA_STATUS_PAGE_FAULT = 0x03;

/** The fields of a job descriptor. */
export interface SvaJobDescriptor {
  /** Opcode ({@link SVA_OP_XOR}). */
  readonly opcode: number;
  /** Bytes to transform, ≥ 1. */
  readonly length: number;
  /** Source virtual address in the process. */
  readonly src: bigint;
  /** Destination virtual address in the process. */
  readonly dst: bigint;
  /** Virtual address of the 16-byte completion record. */
  readonly completion: bigint;
  /** The XOR key ({@link SVA_KEY_SIZE} bytes). */
  readonly key: Uint8Array;
}

/**
 * Encode a descriptor: opcode u8 at 0, length u32 at 4, src u64 at 8, dst u64 at 16, completion
 * u64 at 24, key at 32..47, little endian, the rest zero.
 * @param d - the fields
 * @returns {@link SVA_DESC_SIZE} bytes
 */
export function encodeSvaDescriptor(d: SvaJobDescriptor): Uint8Array {
  const out = new Uint8Array(SVA_DESC_SIZE);
  const v = new DataView(out.buffer);
  v.setUint8(0, d.opcode);
  v.setUint32(4, d.length, true);
  v.setBigUint64(8, d.src, true);
  v.setBigUint64(16, d.dst, true);
  v.setBigUint64(24, d.completion, true);
  out.set(d.key.subarray(0, SVA_KEY_SIZE), 32);
  return out;
}

/**
 * Decode a descriptor written by {@link encodeSvaDescriptor}.
 * @param b - at least {@link SVA_DESC_SIZE} bytes
 * @returns the fields
 */
export function decodeSvaDescriptor(b: Uint8Array): SvaJobDescriptor {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    opcode: v.getUint8(0),
    length: v.getUint32(4, true),
    src: v.getBigUint64(8, true),
    dst: v.getBigUint64(16, true),
    completion: v.getBigUint64(24, true),
    key: b.slice(32, 32 + SVA_KEY_SIZE),
  };
}

/** A completion record as the process reads it. */
export interface SvaCompletionRecord {
  /** 0 while the job runs, then {@link SVA_STATUS_SUCCESS} or {@link SVA_STATUS_PAGE_FAULT}. */
  readonly status: number;
  /** Bytes the job wrote to the destination. */
  readonly bytesCompleted: number;
  /** The address that faulted (0 on success). */
  readonly faultAddr: bigint;
}

/**
 * Decode a completion record: status u8 at 0, bytes completed u32 at 4, fault address u64 at 8.
 * @param b - at least {@link SVA_COMPLETION_SIZE} bytes
 * @returns the fields
 */
export function decodeSvaCompletion(b: Uint8Array): SvaCompletionRecord {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { status: v.getUint8(0), bytesCompleted: v.getUint32(4, true), faultAddr: v.getBigUint64(8, true) };
}

function encodeCompletion(c: SvaCompletionRecord): Uint8Array {
  const out = new Uint8Array(SVA_COMPLETION_SIZE);
  const v = new DataView(out.buffer);
  v.setUint8(0, c.status);
  v.setUint32(4, c.bytesCompleted, true);
  v.setBigUint64(8, c.faultAddr, true);
  return out;
}

/**
 * Apply the {@link SVA_OP_XOR} transform.
 * @param src - source bytes
 * @param key - the key
 * @returns a new buffer: `src[i] ^ key[i % key.length]`
 */
export function svaXorTransform(src: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  const k = key.length;
  for (let i = 0; i < src.length; i++) out[i] = (src[i] as number) ^ (key[i % k] as number);
  return out;
}

/** Where a job stopped when it failed. */
export type SvaJobStage = 'descriptor' | 'source' | 'destination' | 'completion';

/** One submitted job, settling as the device works through it. */
export class SvaJob {
  /** `pending` until the device finished or gave up. */
  state: 'pending' | 'done' | 'failed' = 'pending';
  /** The first fault, when it failed. */
  fault: DmaFault | null = null;
  /** The access that faulted, when it failed. */
  failedAt: SvaJobStage | null = null;
  /** Transactions of this job that a page request or stall held (sum over its DMA operations). */
  waits = 0;

  /** @param descriptor - the descriptor's virtual address */
  constructor(readonly descriptor: bigint) {}

  /** Whether the job finished, successfully or not. */
  get settled(): boolean {
    return this.state !== 'pending';
  }
}

/** The accelerator model bound to one endpoint and PASID. */
export class SvaAccelDevice {
  /**
   * @param ep - the endpoint model issuing the DMA
   * @param pasid - the PASID the process's jobs carry
   */
  constructor(
    readonly ep: Endpoint,
    readonly pasid: number,
  ) {}

  /**
   * Submit a job (the ENQCMD of a descriptor address). The device starts at once; accesses that
   * wait for the OS continue on the machine's scheduler.
   * @param descriptor - virtual address of a {@link SVA_DESC_SIZE}-byte descriptor
   * @returns the job
   */
  submit(descriptor: bigint): SvaJob {
    const job = new SvaJob(descriptor);
    this.step(job, this.ep.dmaRead(descriptor, SVA_DESC_SIZE, { pasid: this.pasid }), 'descriptor', (t) => {
      const d = decodeSvaDescriptor(t.data as Uint8Array);
      if (d.opcode !== SVA_OP_XOR || d.length === 0) {
        job.state = 'failed';
        job.failedAt = 'descriptor';
        return;
      }
      this.step(
        job,
        this.ep.dmaRead(d.src, d.length, { pasid: this.pasid }),
        'source',
        (s) => {
          const out = svaXorTransform(s.data as Uint8Array, d.key);
          this.step(
            job,
            this.ep.dmaWrite(d.dst, out, { pasid: this.pasid }),
            'destination',
            () =>
              this.complete(job, d, { status: SVA_STATUS_SUCCESS, bytesCompleted: d.length, faultAddr: 0n }),
            d,
          );
        },
        d,
      );
    });
    return job;
  }

  private step(
    job: SvaJob,
    t: DmaTicket,
    stage: SvaJobStage,
    next: (t: DmaTicket) => void,
    d?: SvaJobDescriptor,
  ): void {
    t.onSettled((done) => {
      job.waits += done.priRounds + done.stalls;
      if (done.fault === undefined) {
        next(done);
        return;
      }
      job.fault = done.fault;
      job.failedAt = stage;
      if (d === undefined || stage === 'completion') {
        job.state = 'failed';
        return;
      }
      // The device reports the fault in the completion record when it still can.
      const rec = encodeCompletion({
        status: SVA_STATUS_PAGE_FAULT,
        bytesCompleted: 0,
        faultAddr: done.fault.addr,
      });
      this.ep.dmaWrite(d.completion, rec, { pasid: this.pasid }).onSettled(() => {
        job.state = 'failed';
      });
    });
  }

  private complete(job: SvaJob, d: SvaJobDescriptor, c: SvaCompletionRecord): void {
    this.step(
      job,
      this.ep.dmaWrite(d.completion, encodeCompletion(c), { pasid: this.pasid }),
      'completion',
      () => {
        job.state = 'done';
      },
      d,
    );
  }
}
