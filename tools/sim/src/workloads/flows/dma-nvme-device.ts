/**
 * A storage controller as the `dma-api` workload drives it, in the manner of NVMe: the kernel
 * driver writes 64-byte commands into a submission queue in coherent DMA memory, each pointing at
 * a scatter-gather list (16-byte descriptors, also coherent) of streaming-mapped data segments,
 * and rings a doorbell; the device fetches the command and its list by DMA, moves the data between
 * memory and its disk (a write command reads memory, a read command writes it), and posts a
 * 16-byte completion into the completion queue. Every access goes through the device's IOMMU with
 * the addresses the DMA API handed out. A DMA fault ends the command with a data-transfer-error
 * status instead of data.
 */

import { type DmaFault, DmaFaultError, type Endpoint } from '@iommu-ts/iommu-core';

/** Bytes per submission-queue entry. */
export const DMA_SQE_SIZE = 64;
/** Bytes per completion-queue entry. */
export const DMA_CQE_SIZE = 16;
/** Bytes per scatter-gather descriptor. */
export const DMA_SGL_DESC_SIZE = 16;
/** Bytes per logical block. */
export const DMA_BLOCK_SIZE = 512;
/** Opcode: write blocks to the disk (the device reads memory: `DMA_TO_DEVICE`). */
export const DMA_OP_WRITE = 0x01;
/** Opcode: read blocks from the disk (the device writes memory: `DMA_FROM_DEVICE`). */
export const DMA_OP_READ = 0x02;
/** Completion status: success. */
export const DMA_STATUS_SUCCESS = 0x0;
/** Completion status: a DMA of the command faulted (NVMe "Data Transfer Error"). */
export const DMA_STATUS_TRANSFER_ERROR = 0x4;

/** A command as the driver builds it. */
export interface DmaCommand {
  /** {@link DMA_OP_WRITE} or {@link DMA_OP_READ}. */
  readonly opcode: number;
  /** Command identifier, echoed in the completion. */
  readonly cid: number;
  /** First logical block. */
  readonly lba: number;
  /** Bytes to move, a multiple of {@link DMA_BLOCK_SIZE}. */
  readonly bytes: number;
  /** DMA address of the scatter-gather list. */
  readonly sgl: bigint;
  /** Descriptors in the list. */
  readonly segments: number;
}

/** One data segment of a scatter-gather list. */
export interface DmaSegment {
  /** DMA address. */
  readonly addr: bigint;
  /** Bytes. */
  readonly length: number;
}

/**
 * Encode a command: opcode u8 at 0, cid u16 at 2, segments u32 at 4, SGL address u64 at 8, LBA u64
 * at 16, bytes u32 at 24, little endian.
 * @param c - the command
 * @returns {@link DMA_SQE_SIZE} bytes
 */
export function encodeDmaCommand(c: DmaCommand): Uint8Array {
  const out = new Uint8Array(DMA_SQE_SIZE);
  const v = new DataView(out.buffer);
  v.setUint8(0, c.opcode);
  v.setUint16(2, c.cid, true);
  v.setUint32(4, c.segments, true);
  v.setBigUint64(8, c.sgl, true);
  v.setBigUint64(16, BigInt(c.lba), true);
  v.setUint32(24, c.bytes, true);
  return out;
}

/**
 * Encode a scatter-gather list: per descriptor the address u64 at 0 and the length u32 at 8.
 * @param segs - the segments
 * @returns `segs.length * 16` bytes
 */
export function encodeDmaSgl(segs: readonly DmaSegment[]): Uint8Array {
  const out = new Uint8Array(segs.length * DMA_SGL_DESC_SIZE);
  const v = new DataView(out.buffer);
  segs.forEach((s, i) => {
    v.setBigUint64(i * DMA_SGL_DESC_SIZE, s.addr, true);
    v.setUint32(i * DMA_SGL_DESC_SIZE + 8, s.length, true);
  });
  return out;
}

/** A completion entry. */
export interface DmaCompletion {
  /** The command's identifier. */
  readonly cid: number;
  /** {@link DMA_STATUS_SUCCESS} or {@link DMA_STATUS_TRANSFER_ERROR}. */
  readonly status: number;
  /** Submission-queue slot the command came from. */
  readonly sqSlot: number;
}

/**
 * Decode a completion entry: cid u16 at 0, status u16 at 2, SQ slot u16 at 4.
 * @param b - at least {@link DMA_CQE_SIZE} bytes
 * @returns the entry
 */
export function decodeDmaCompletion(b: Uint8Array): DmaCompletion {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { cid: v.getUint16(0, true), status: v.getUint16(2, true), sqSlot: v.getUint16(4, true) };
}

/** The controller model. */
export class DmaNvmeDevice {
  /** The disk: block number → 512 bytes (unwritten blocks read as zeros). */
  private readonly disk = new Map<number, Uint8Array>();
  /** The data of the last successful command (what it read from or wrote to memory). */
  lastData: Uint8Array | null = null;
  /** The fault of the last failed command, else `null`. */
  lastFault: DmaFault | null = null;

  /**
   * @param ep - the endpoint model issuing the DMA
   * @param sq - DMA address of the submission queue
   * @param cq - DMA address of the completion queue
   */
  constructor(
    readonly ep: Endpoint,
    readonly sq: bigint,
    readonly cq: bigint,
  ) {}

  /**
   * Ring the doorbell for submission-queue slot `slot`: fetch and execute the command there and
   * post its completion to completion-queue slot `slot`.
   * @param slot - the slot
   * @throws DmaFaultError when the command or completion itself cannot be fetched or posted
   */
  doorbell(slot: number): void {
    const cmd = new DataView(this.ep.readSync(this.sq + BigInt(slot * DMA_SQE_SIZE), DMA_SQE_SIZE).buffer);
    const opcode = cmd.getUint8(0);
    const cid = cmd.getUint16(2, true);
    const nseg = cmd.getUint32(4, true);
    const sgl = cmd.getBigUint64(8, true);
    const lba = Number(cmd.getBigUint64(16, true));
    const bytes = cmd.getUint32(24, true);
    let status = DMA_STATUS_SUCCESS;
    this.lastFault = null;
    try {
      const list = new DataView(this.ep.readSync(sgl, nseg * DMA_SGL_DESC_SIZE).buffer);
      const segs: DmaSegment[] = [];
      for (let i = 0; i < nseg; i++)
        segs.push({
          addr: list.getBigUint64(i * DMA_SGL_DESC_SIZE, true),
          length: list.getUint32(i * DMA_SGL_DESC_SIZE + 8, true),
        });
      this.lastData = opcode === DMA_OP_WRITE ? this.write(segs, lba, bytes) : this.read(segs, lba, bytes);
    } catch (e) {
      if (!(e instanceof DmaFaultError)) throw e;
      this.lastFault = e.fault;
      this.lastData = null;
      status = DMA_STATUS_TRANSFER_ERROR;
    }
    const cqe = new Uint8Array(DMA_CQE_SIZE);
    const v = new DataView(cqe.buffer);
    v.setUint16(0, cid, true);
    v.setUint16(2, status, true);
    v.setUint16(4, slot, true);
    this.ep.writeSync(this.cq + BigInt(slot * DMA_CQE_SIZE), cqe);
  }

  /** Memory → disk. */
  private write(segs: readonly DmaSegment[], lba: number, bytes: number): Uint8Array {
    const data = new Uint8Array(bytes);
    let off = 0;
    for (const s of segs) {
      const n = Math.min(s.length, bytes - off);
      if (n <= 0) break;
      data.set(this.ep.readSync(s.addr, n), off);
      off += n;
    }
    for (let b = 0; b * DMA_BLOCK_SIZE < bytes; b++)
      this.disk.set(lba + b, data.slice(b * DMA_BLOCK_SIZE, (b + 1) * DMA_BLOCK_SIZE));
    return data;
  }

  /** Disk → memory. */
  private read(segs: readonly DmaSegment[], lba: number, bytes: number): Uint8Array {
    const data = new Uint8Array(bytes);
    for (let b = 0; b * DMA_BLOCK_SIZE < bytes; b++) {
      const blk = this.disk.get(lba + b);
      if (blk !== undefined) data.set(blk, b * DMA_BLOCK_SIZE);
    }
    let off = 0;
    for (const s of segs) {
      const n = Math.min(s.length, bytes - off);
      if (n <= 0) break;
      this.ep.writeSync(s.addr, data.subarray(off, off + n));
      off += n;
    }
    return data;
  }
}
