/**
 * `dma-api`: a kernel block driver streaming I/O on its device's default DMA domain through the
 * DMA API of dma-iommu: coherent submission/completion queues and scatter-gather-list memory
 * (`dma_alloc_coherent`), then I/Os of random sizes (512 B to 128 KiB) alternating writes
 * (`DMA_TO_DEVICE`: the device reads the kernel buffer) and reads of the same blocks back
 * (`DMA_FROM_DEVICE`: the device writes a fresh kernel buffer), each buffer mapped with
 * `dma_map_page` (physically contiguous) or `dma_map_sg` (scattered pages) and unmapped after its
 * completion. Unmaps invalidate the IOTLB at once on a strict domain, or in batches from the flush
 * queue on a DMA-FQ domain; a command resubmitted after its unmap must fault.
 */

import {
  type Device,
  DMA_MAPPING_ERROR,
  type DmaCoherentBuffer,
  DmaDataDirection,
  IOMMU_DOMAIN_DMA,
  IOMMU_DOMAIN_DMA_FQ,
  iommuDmaAllocCoherent,
  iommuDmaFreeCoherent,
  iommuDmaMapPage,
  iommuDmaMapSg,
  iommuDmaUnmapPage,
  iommuDmaUnmapSg,
  type Scatterlist,
  sgInitTable,
} from '@iommu-ts/iommu-core';
import type { PhysicalMemory } from '@iommu-ts/mm';
import type { SimEndpoint, SimMachine } from '../machine/machine.js';
import type { DataMismatchError, Recorder } from '../metrics/recorder.js';
import { selectEndpoint } from './devices.js';
import {
  DMA_BLOCK_SIZE,
  DMA_CQE_SIZE,
  DMA_OP_READ,
  DMA_OP_WRITE,
  DMA_SGL_DESC_SIZE,
  DMA_SQE_SIZE,
  DMA_STATUS_SUCCESS,
  DMA_STATUS_TRANSFER_ERROR,
  DmaNvmeDevice,
  type DmaSegment,
  decodeDmaCompletion,
  encodeDmaCommand,
  encodeDmaSgl,
} from './flows/dma-nvme-device.js';
import { numParam, strParam, type Workload, type WorkloadParams } from './workload.js';

const PAGE = 4096;
/** Submission/completion queue depth. */
const QUEUE_DEPTH = 64;
/** Largest I/O in bytes. */
const MAX_IO = 128 * 1024;
/** Scatter-gather descriptors per command slot (one per 4 KiB page of the largest I/O). */
const SGL_SLOT_DESCS = MAX_IO / PAGE;
/** I/Os per timeline step. */
const STEP_IOS = 32;

/** The endpoint and its DMA domain type, or a reason. */
function pick(machine: SimMachine, params: WorkloadParams): { ep: SimEndpoint; fq: boolean } | string {
  const ep = selectEndpoint(machine, strParam(params, 'device'));
  if (typeof ep === 'string') return ep;
  const unit = machine.units.find((u) => u.name === ep.unit);
  if (unit === undefined || unit.error !== null) return `device ${ep.name} has no working IOMMU unit`;
  const d = machine.iommu.iommuGetDomainForDev(ep.device);
  if (d === null || (d.type !== IOMMU_DOMAIN_DMA && d.type !== IOMMU_DOMAIN_DMA_FQ) || !ep.device.dmaOpsSetUp)
    return `device ${ep.name} is not on a translated DMA domain`;
  return { ep, fq: d.type === IOMMU_DOMAIN_DMA_FQ };
}

/** A kernel data buffer and its streaming mapping. */
interface MappedBuffer {
  /** Physical pieces: `[pa, order, bytes]`. */
  readonly pieces: ReadonlyArray<readonly [number, number, number]>;
  /** The scatterlist when mapped with map_sg, else `null`. */
  readonly sg: Scatterlist[] | null;
  /** The DMA segments handed to the device. */
  readonly segs: readonly DmaSegment[];
  readonly bytes: number;
  readonly dir: DmaDataDirection;
}

function orderOf(bytes: number): number {
  let order = 0;
  while (PAGE << order < bytes) order++;
  return order;
}

/**
 * Allocate and map a buffer the way a block driver gets one: physically contiguous pages with
 * `dma_map_page`, or one page per 4 KiB with `dma_map_sg`.
 */
function mapBuffer(
  dev: Device,
  memory: PhysicalMemory,
  bytes: number,
  dir: DmaDataDirection,
  scattered: boolean,
  fill: Uint8Array | null,
): MappedBuffer {
  if (!scattered) {
    const order = orderOf(bytes);
    const pa = memory.allocPages(order, { zero: true });
    if (fill !== null) memory.writeBytes(pa, fill);
    const dma = iommuDmaMapPage(dev, pa, bytes, dir);
    if (dma === DMA_MAPPING_ERROR) {
      memory.freePages(pa, order);
      throw new Error(`dma_map_page of ${bytes} bytes failed`);
    }
    return { pieces: [[pa, order, bytes]], sg: null, segs: [{ addr: dma, length: bytes }], bytes, dir };
  }
  const pieces: Array<[number, number, number]> = [];
  for (let off = 0; off < bytes; off += PAGE) {
    const n = Math.min(PAGE, bytes - off);
    const pa = memory.allocPages(0, { zero: true });
    if (fill !== null) memory.writeBytes(pa, fill.subarray(off, off + n));
    pieces.push([pa, 0, n]);
  }
  const sg = sgInitTable(pieces.map(([pa, , n]) => ({ pa, length: n })));
  let count: number;
  try {
    count = iommuDmaMapSg(dev, sg, dir);
  } catch (e) {
    for (const [pa, order] of pieces) memory.freePages(pa, order);
    throw e;
  }
  const segs = sg.slice(0, count).map((s) => ({ addr: s.dmaAddress, length: s.dmaLength }));
  return { pieces, sg, segs, bytes, dir };
}

function unmapBuffer(dev: Device, memory: PhysicalMemory, b: MappedBuffer): Uint8Array {
  if (b.sg === null) iommuDmaUnmapPage(dev, (b.segs[0] as DmaSegment).addr, b.bytes, b.dir);
  else iommuDmaUnmapSg(dev, b.sg, b.dir);
  // After the unmap the CPU owns the buffer again (dma_unmap_* is the sync point).
  const out = new Uint8Array(b.bytes);
  let off = 0;
  for (const [pa, order, n] of b.pieces) {
    out.set(memory.readBytes(pa, n), off);
    off += n;
    memory.freePages(pa, order);
  }
  return out;
}

function sumTally(t: Readonly<Record<string, number>>): number {
  let n = 0;
  for (const v of Object.values(t)) n += v;
  return n;
}

/** The driver's queues in coherent memory. */
class Queues {
  readonly sq: DmaCoherentBuffer;
  readonly cq: DmaCoherentBuffer;
  readonly sgl: DmaCoherentBuffer;
  private readonly sizes = {
    sq: QUEUE_DEPTH * DMA_SQE_SIZE,
    cq: QUEUE_DEPTH * DMA_CQE_SIZE,
    sgl: QUEUE_DEPTH * SGL_SLOT_DESCS * DMA_SGL_DESC_SIZE,
  };

  constructor(
    readonly dev: Device,
    readonly rec: Recorder,
    readonly space: string,
  ) {
    const alloc = (what: keyof typeof this.sizes): DmaCoherentBuffer => {
      const b = iommuDmaAllocCoherent(dev, this.sizes[what]);
      if (b === null) throw new Error(`dma_alloc_coherent of the ${what} failed`);
      rec.mapped(space, b.dmaAddr, BigInt(this.sizes[what]), `${what} (coherent)`);
      return b;
    };
    this.sq = alloc('sq');
    this.cq = alloc('cq');
    this.sgl = alloc('sgl');
  }

  sglAddr(slot: number): bigint {
    return this.sgl.dmaAddr + BigInt(slot * SGL_SLOT_DESCS * DMA_SGL_DESC_SIZE);
  }

  free(): void {
    for (const k of ['sq', 'cq', 'sgl'] as const) {
      iommuDmaFreeCoherent(this.dev, this.sizes[k], this[k]);
      this.rec.unmapped(this.space, this[k].dmaAddr, BigInt(this.sizes[k]));
    }
  }
}

/**
 * The `dma-api` workload (drivers/iommu/dma-iommu.c: `iommu_dma_map_page`, `iommu_dma_map_sg`,
 * `iommu_dma_alloc`, their unmaps and the flush queue). Parameters: `device` (default `nvme`),
 * `ios` (512, alternating writes and reads back). `run` throws {@link DataMismatchError} when the
 * bytes moved differ and `Error` on any other failed check (a failed map, an unexpected completion
 * status, a DMA after unmap that did not fault).
 */
export const dmaApi: Workload = {
  name: 'dma-api',
  description:
    'a kernel driver streams I/O through the DMA API on its default DMA domain: coherent queues, map_page/map_sg, unmap with strict or flush-queue invalidation',
  params: {
    device: { type: 'string', description: 'the device: an endpoint name or role', default: 'nvme' },
    ios: {
      type: 'integer',
      description: 'I/Os, alternating writes and reads back (512 B to 128 KiB each)',
      default: 512,
      minimum: 2,
      maximum: 1000000,
    },
  },

  supports(machine, params) {
    const r = pick(machine, params);
    return typeof r === 'string' ? r : null;
  },

  run(ctx) {
    const { machine, rec, rng, params } = ctx;
    const r = pick(machine, params);
    if (typeof r === 'string') throw new Error(r);
    const { ep, fq } = r;
    const dev = ep.device;
    const memory = machine.memory;
    const ios = numParam(params, 'ios');
    const mode = fq ? 'flush queue' : 'strict';
    const space = `dma domain ${ep.name}`;
    rec.space(space, 'dma-domain', [ep.name]);

    const q = new Queues(dev, rec, space);
    const device = new DmaNvmeDevice(ep.endpoint, q.sq.dmaAddr, q.cq.dmaAddr);
    rec.step(`allocate coherent queues for ${ep.name} (${mode} domain)`);

    let lastWrite: { lba: number; bytes: number; data: Uint8Array } | null = null;
    let staleChecks = 0;
    let stepFrom = 0;
    for (let i = 0; i < ios; i++) {
      const slot = i % QUEUE_DEPTH;
      const isWrite: boolean = i % 2 === 0 || lastWrite === null;
      const bytes: number = isWrite
        ? DMA_BLOCK_SIZE * (1 + rng.int(MAX_IO / DMA_BLOCK_SIZE))
        : (lastWrite?.bytes ?? 0);
      const lba: number = isWrite ? i * (MAX_IO / DMA_BLOCK_SIZE) : (lastWrite?.lba ?? 0);
      const data: Uint8Array | null = isWrite ? rng.bytes(bytes) : null;
      const dir = isWrite ? DmaDataDirection.TO_DEVICE : DmaDataDirection.FROM_DEVICE;
      const scattered = bytes > 4 * PAGE && rng.int(2) === 1;
      const buf = mapBuffer(dev, memory, bytes, dir, scattered, data);
      const label = `I/O ${i + 1} ${isWrite ? 'to device' : 'from device'}`;
      for (const s of buf.segs) rec.mapped(space, s.addr, BigInt(s.length), label);

      memory.writeBytes(q.sgl.cpuPa + slot * SGL_SLOT_DESCS * DMA_SGL_DESC_SIZE, encodeDmaSgl(buf.segs));
      const cid = i & 0xffff;
      memory.writeBytes(
        q.sq.cpuPa + slot * DMA_SQE_SIZE,
        encodeDmaCommand({
          opcode: isWrite ? DMA_OP_WRITE : DMA_OP_READ,
          cid,
          lba,
          bytes,
          sgl: q.sglAddr(slot),
          segments: buf.segs.length,
        }),
      );
      device.doorbell(slot);
      const cqe = decodeDmaCompletion(memory.readBytes(q.cq.cpuPa + slot * DMA_CQE_SIZE, DMA_CQE_SIZE));
      rec.expect(
        `${label}: completion (cid ${cqe.cid}, status ${cqe.status}${device.lastFault ? `, ${device.lastFault.reason} fault` : ''})`,
        cqe.cid === cid && cqe.status === DMA_STATUS_SUCCESS && cqe.sqSlot === slot,
      );
      if (isWrite)
        rec.verify(
          `${label}: bytes the device read`,
          data as Uint8Array,
          device.lastData ?? new Uint8Array(),
        );

      const cpuView = unmapBuffer(dev, memory, buf);
      for (const s of buf.segs) rec.unmapped(space, s.addr, BigInt(s.length));
      if (isWrite) lastWrite = { lba, bytes, data: data as Uint8Array };
      else {
        rec.verify(
          `${label}: kernel buffer after the read`,
          (lastWrite as { data: Uint8Array }).data,
          cpuView,
        );
        lastWrite = null;
      }

      // A buggy resubmission of the same command after its unmap must fault.
      if (i === 1 || i === ios - 1 || i % 128 === 1) {
        if (fq) machine.settle(); // the flush queue's timer flushes the IOTLB
        device.doorbell(slot);
        const again = decodeDmaCompletion(memory.readBytes(q.cq.cpuPa + slot * DMA_CQE_SIZE, DMA_CQE_SIZE));
        rec.expect(
          `${label}: resubmitted after unmap, the DMA faults`,
          again.status === DMA_STATUS_TRANSFER_ERROR && device.lastFault !== null,
        );
        staleChecks++;
      }
      rec.progress(i + 1, ios);
      if ((i + 1) % STEP_IOS === 0 || i === ios - 1) {
        rec.step(`I/Os ${stepFrom + 1}-${i + 1}: map, DMA, verify, unmap (${mode})`);
        stepFrom = i + 1;
      }
    }
    rec.expect('at least one DMA after unmap was checked', staleChecks > 0);

    machine.settle();
    rec.step(fq ? 'flush queue drained' : 'settle');
    const inv = rec.timeline().reduce((n, e) => n + sumTally(e.invalidations), 0);
    rec.expect('unmaps invalidated the IOTLB', inv > 0);
    q.free();
    machine.settle();
    rec.step('free coherent queues');
  },
};
