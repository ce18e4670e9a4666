/**
 * `sva-accelerator`: a process shares its address space with an accelerator (SVA) and submits jobs
 * on freshly allocated buffers; the device's first touch of each destination page faults and is
 * resolved by io-pgfault and the mm (PRI page requests on a PCI function, stalled transactions on
 * an SMMUv3 `dma-can-stall` platform device); freeing the buffers invalidates the IOTLB and ATC
 * through the mm notifier, and a DMA to a freed buffer fails; the process finally exits with jobs
 * in flight (the mm-exit path), after which the PASID faults, the bindings are torn down and the
 * PASID goes back to the allocator.
 */

import { IommuMmData } from '@iommu-ts/iommu-sva';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, type Process } from '@iommu-ts/mm';
import type { SimEndpoint, SimMachine } from '../machine/machine.js';
import type { DataMismatchError, Recorder } from '../metrics/recorder.js';
import { selectEndpoint } from './devices.js';
import {
  decodeSvaCompletion,
  encodeSvaDescriptor,
  SVA_COMPLETION_SIZE,
  SVA_DESC_SIZE,
  SVA_KEY_SIZE,
  SVA_OP_XOR,
  SVA_STATUS_PAGE_FAULT,
  SVA_STATUS_SUCCESS,
  SvaAccelDevice,
  type SvaJob,
  svaXorTransform,
} from './flows/sva-accel-device.js';
import { type SvaBinding, svaBind, svaUnbind } from './flows/sva-binding.js';
import type { Rng } from './rng.js';
import { numParam, strParam, type Workload, type WorkloadContext, type WorkloadParams } from './workload.js';

const PAGE = 4096;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/** The PRI device, or a reason; the stall device when present and usable, else `null`. */
function pickDevices(
  machine: SimMachine,
  params: WorkloadParams,
): { main: SimEndpoint | string; stall: SimEndpoint | null } {
  const main = selectEndpoint(machine, strParam(params, 'device'), { pasid: true });
  const usable = (e: SimEndpoint): string | null => {
    if (!e.pri && !e.stall) return `device ${e.name} has neither PRI nor stall for I/O page faults`;
    const unit = machine.units.find((u) => u.name === e.unit);
    if (unit === undefined || unit.error !== null) return `device ${e.name} has no working IOMMU unit`;
    return null;
  };
  let m: SimEndpoint | string = main;
  if (typeof main !== 'string') m = usable(main) ?? main;
  const s =
    machine.kind === 'smmuv3'
      ? selectEndpoint(machine, strParam(params, 'stallDevice'), { pasid: true, stall: true })
      : null;
  const stall =
    s === null || typeof s === 'string' || usable(s) !== null || (typeof m !== 'string' && s.name === m.name)
      ? null
      : s;
  // A platform whose only SVA-capable master is a stall device (an SoC accelerator behind the
  // SMMU, no PCI accelerator) runs the jobs on it alone, unless a device was named explicitly.
  if (typeof m === 'string' && stall !== null && strParam(params, 'device') === 'accel')
    return { main: stall, stall: null };
  return { main: m, stall };
}

/** The process's buffers of one job. */
interface JobBuffers {
  readonly index: number;
  readonly src: number;
  readonly srcMap: number;
  readonly srcMapLen: number;
  readonly dst: number;
  readonly dstMap: number;
  readonly dstMapLen: number;
  readonly length: number;
  readonly key: Uint8Array;
  readonly expected: Uint8Array;
  readonly slot: number;
}

/** The process side: its descriptor ring, buffers and checks. */
class SvaProcess {
  /** Descriptor slots (64 B) followed by completion-record slots (16 B), CPU-initialised. */
  readonly ring: number;
  readonly slots: number;
  private readonly ringLen: number;

  constructor(
    readonly proc: Process,
    readonly rec: Recorder,
    readonly space: string,
    slots: number,
  ) {
    this.slots = slots;
    this.ringLen = roundUp(slots * (SVA_DESC_SIZE + SVA_COMPLETION_SIZE), PAGE);
    this.ring = proc.mmap(this.ringLen, RW, ANON);
    // The process initialises its ring (the pages become present in its page table).
    proc.write(this.ring, new Uint8Array(this.ringLen));
    rec.mapped(space, BigInt(this.ring), BigInt(this.ringLen), 'descriptor ring');
  }

  descVa(slot: number): number {
    return this.ring + slot * SVA_DESC_SIZE;
  }

  completionVa(slot: number): number {
    return this.ring + this.slots * SVA_DESC_SIZE + slot * SVA_COMPLETION_SIZE;
  }

  /** malloc two fresh buffers; the source is filled by the CPU, the destination stays untouched. */
  alloc(rng: Rng, index: number, slot: number, maxBytes: number): JobBuffers {
    const length = 1 + rng.int(maxBytes);
    const srcOff = rng.int(PAGE / 8) * 8;
    const dstOff = rng.int(PAGE / 8) * 8;
    const srcMapLen = roundUp(srcOff + length, PAGE);
    const dstMapLen = roundUp(dstOff + length, PAGE);
    const srcMap = this.proc.mmap(srcMapLen, RW, ANON);
    const dstMap = this.proc.mmap(dstMapLen, RW, ANON);
    const data = rng.bytes(length);
    const key = rng.bytes(SVA_KEY_SIZE);
    this.proc.write(srcMap + srcOff, data);
    this.rec.mapped(this.space, BigInt(srcMap), BigInt(srcMapLen), `job ${index} source`);
    this.rec.mapped(this.space, BigInt(dstMap), BigInt(dstMapLen), `job ${index} destination`);
    return {
      index,
      src: srcMap + srcOff,
      srcMap,
      srcMapLen,
      dst: dstMap + dstOff,
      dstMap,
      dstMapLen,
      length,
      key,
      expected: svaXorTransform(data, key),
      slot,
    };
  }

  /** Write the descriptor of `b` (with `dst` overridden if given) and clear its completion record. */
  prepare(b: JobBuffers): bigint {
    this.proc.write(this.completionVa(b.slot), new Uint8Array(SVA_COMPLETION_SIZE));
    const desc = encodeSvaDescriptor({
      opcode: SVA_OP_XOR,
      length: b.length,
      src: BigInt(b.src),
      dst: BigInt(b.dst),
      completion: BigInt(this.completionVa(b.slot)),
      key: b.key,
    });
    this.proc.write(this.descVa(b.slot), desc);
    return BigInt(this.descVa(b.slot));
  }

  /** free(): unmap both buffers (the mm notifier invalidates the IOMMU's and device's TLBs). */
  free(b: JobBuffers): void {
    this.proc.munmap(b.srcMap, b.srcMapLen);
    this.proc.munmap(b.dstMap, b.dstMapLen);
    this.rec.unmapped(this.space, BigInt(b.srcMap), BigInt(b.srcMapLen));
    this.rec.unmapped(this.space, BigInt(b.dstMap), BigInt(b.dstMapLen));
  }
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

function sumTally(t: Readonly<Record<string, number>>): number {
  let n = 0;
  for (const v of Object.values(t)) n += v;
  return n;
}

/** Run batches of jobs on one device, free their buffers, and DMA to a freed buffer. */
function runJobs(
  ctx: WorkloadContext,
  p: SvaProcess,
  dev: SvaAccelDevice,
  ep: SimEndpoint,
  jobs: number,
  batch: number,
  maxBytes: number,
  progress: () => void,
): void {
  const { machine, rec, rng } = ctx;
  const stats0 = ep.endpoint.stats;
  for (let first = 0; first < jobs; first += batch) {
    const n = Math.min(batch, jobs - first);
    const bufs: JobBuffers[] = [];
    const running: SvaJob[] = [];
    for (let i = 0; i < n; i++) {
      const b = p.alloc(rng, first + i + 1, i, maxBytes);
      bufs.push(b);
      running.push(dev.submit(p.prepare(b)));
    }
    machine.settle();
    for (const [i, b] of bufs.entries()) {
      const job = running[i] as SvaJob;
      rec.expect(
        `${ep.name} job ${b.index} completed (${job.failedAt ?? 'done'}${job.fault ? `: ${job.fault.reason}` : ''})`,
        job.state === 'done',
      );
      const c = decodeSvaCompletion(p.proc.read(p.completionVa(b.slot), SVA_COMPLETION_SIZE));
      rec.expect(
        `${ep.name} job ${b.index} completion record`,
        c.status === SVA_STATUS_SUCCESS && c.bytesCompleted === b.length,
      );
      rec.verify(`${ep.name} job ${b.index} destination`, b.expected, p.proc.read(b.dst, b.length));
      progress();
    }
    rec.step(
      `${ep.name}: jobs ${first + 1}-${first + n} on fresh buffers (faulted in, transformed, verified)`,
    );
    for (const b of bufs) p.free(b);
    rec.step(`${ep.name}: free the buffers of jobs ${first + 1}-${first + n}`);
    const entry = rec.timeline().at(-1);
    rec.expect(
      `${ep.name}: freeing buffers invalidated IOMMU/device TLBs`,
      entry !== undefined && sumTally(entry.invalidations) > 0,
    );
    // A job whose destination is a freed buffer must fail: the OS refuses the page request/stall.
    // (No mmap in between, so the freed range is still unmapped; the source is the ring itself.)
    const stale = bufs[0] as JobBuffers;
    const probe: JobBuffers = {
      ...stale,
      src: p.descVa(0),
      length: Math.min(stale.length, SVA_DESC_SIZE),
      slot: 0,
    };
    const job = dev.submit(p.prepare(probe));
    machine.settle();
    rec.expect(
      `${ep.name}: a job writing to a freed buffer fails at the destination`,
      job.state === 'failed' && job.failedAt === 'destination',
    );
    const c = decodeSvaCompletion(p.proc.read(p.completionVa(0), SVA_COMPLETION_SIZE));
    rec.expect(
      `${ep.name}: its completion record reports the page fault`,
      c.status === SVA_STATUS_PAGE_FAULT,
    );
    rec.step(`${ep.name}: DMA to a freed buffer faults (${job.fault?.reason ?? 'no fault'})`);
  }
  const stats = ep.endpoint.stats;
  if (ep.pri)
    rec.expect(
      `${ep.name}: faults were resolved by PRI page requests`,
      stats.pageRequests > stats0.pageRequests,
    );
  else rec.expect(`${ep.name}: faults were resolved by stalls`, stats.stalls > stats0.stalls);
}

/**
 * The `sva-accelerator` workload (drivers/iommu/iommu-sva.c, io-pgfault.c and the mm notifier
 * path, as idxd/uacce drivers use them). Parameters: `device` (default `accel`), `stallDevice`
 * (default `stall-accel`, SMMUv3 only, skipped when absent), `jobs` per device (64), `batch` (8:
 * jobs submitted together and jobs in flight at exit), `maxJobBytes` (16384). `run` throws
 * {@link DataMismatchError} on a wrong result and `Error` on any other failed check.
 */
export const svaAccelerator: Workload = {
  name: 'sva-accelerator',
  description:
    'a process binds an accelerator with SVA, runs jobs on fresh buffers (page faults resolved by PRI or stall), frees them (invalidations) and exits with jobs in flight',
  params: {
    device: {
      type: 'string',
      description: 'the accelerator: an endpoint name or role (needs PASID and PRI or stall)',
      default: 'accel',
    },
    stallDevice: {
      type: 'string',
      description: 'SMMUv3 platforms: a stall-model device that runs the same jobs (skipped when absent)',
      default: 'stall-accel',
    },
    jobs: { type: 'integer', description: 'jobs per device', default: 64, minimum: 1, maximum: 100000 },
    batch: {
      type: 'integer',
      description: 'jobs submitted together (also the jobs in flight at exit)',
      default: 8,
      minimum: 1,
      maximum: 256,
    },
    maxJobBytes: {
      type: 'integer',
      description: 'largest job buffer, bytes (sizes are uniform in 1..maxJobBytes)',
      default: 16384,
      minimum: 1,
      maximum: 1048576,
    },
  },

  supports(machine, params) {
    const { main } = pickDevices(machine, params);
    return typeof main === 'string' ? main : null;
  },

  run(ctx) {
    const { machine, rec, params, rng } = ctx;
    const { main, stall } = pickDevices(machine, params);
    if (typeof main === 'string') throw new Error(main);
    const eps = stall === null ? [main] : [main, stall];
    const jobs = numParam(params, 'jobs');
    const batch = numParam(params, 'batch');
    const maxBytes = numParam(params, 'maxJobBytes');

    const proc = machine.createProcess();
    const bindings: SvaBinding[] = eps.map((e) => svaBind(machine, e.device, proc.mm));
    const pasid = (bindings[0] as SvaBinding).pasid;
    for (const b of bindings) rec.expect(`one PASID for the mm on ${b.dev.name}`, b.pasid === pasid);
    const mm = proc.mm;
    const mmData = mm.iommuMm;
    if (!(mmData instanceof IommuMmData)) throw new Error('the bound mm has no SVA data');
    const space = `sva pasid ${pasid}`;
    rec.space(
      space,
      'sva',
      eps.map((e) => e.name),
    );
    const p = new SvaProcess(proc, rec, space, batch * eps.length);
    const devices = eps.map((e) => new SvaAccelDevice(e.endpoint, pasid));
    rec.step(`bind ${eps.map((e) => e.name).join(', ')} to the process (PASID ${pasid})`);

    const total = jobs * eps.length;
    let done = 0;
    const progress = () => rec.progress(++done, total);
    for (const [i, ep] of eps.entries())
      runJobs(ctx, p, devices[i] as SvaAccelDevice, ep, jobs, batch, maxBytes, progress);

    // Exit with jobs in flight: each device gets a batch on untouched destinations, and the
    // process exits before the OS has answered their page requests / stalls.
    const inflight: Array<{ ep: SimEndpoint; job: SvaJob }> = [];
    let lastSrc = 0;
    for (const [i, ep] of eps.entries()) {
      for (let j = 0; j < batch; j++) {
        const b = p.alloc(rng, jobs + j + 1, i * batch + j, maxBytes);
        lastSrc = b.src;
        inflight.push({ ep, job: (devices[i] as SvaAccelDevice).submit(p.prepare(b)) });
      }
    }
    const pending = inflight.filter((f) => !f.job.settled).length;
    rec.expect('jobs were in flight when the process exited', pending > 0);
    proc.exit();
    rec.unmapped(space, 0n, 1n << 64n); // exit_mmap: the whole address space goes
    machine.settle();
    rec.expect(
      'every in-flight job ended (a fault once the mm was gone, or done before the exit)',
      inflight.every((f) => f.job.settled),
    );
    rec.expect(
      'jobs still waiting at exit failed',
      inflight.filter((f) => f.job.state === 'failed').length >= pending,
    );
    rec.expect('the mm is gone', mm.dead);
    rec.step(`process exits with ${pending} jobs in flight (mm-exit path)`);

    // The PASID is dead: a later DMA with it faults, whatever the address.
    for (const d of devices) {
      const t = d.ep.dmaRead(BigInt(lastSrc), 8, { pasid });
      machine.settle();
      rec.expect(
        `${d.ep.name}: DMA with PASID ${pasid} after exit faults`,
        t.settled && t.fault !== undefined,
      );
    }
    rec.step(`DMA with PASID ${pasid} after exit faults`);

    for (const b of bindings) svaUnbind(machine, b);
    machine.settle();
    rec.expect(`PASID ${pasid} returned by the mm's last reference`, mmData.dropped);
    const again = machine.iommu.iommuAllocGlobalPasid(main.device);
    machine.iommu.iommuFreeGlobalPasid(again);
    rec.expect(`PASID ${pasid} is free again (the allocator hands it out)`, again === pasid);
    for (const e of eps) {
      const pri = e.endpoint.pri;
      rec.expect(`${e.name}: no page request left outstanding`, pri.outstanding === 0 && pri.waiting === 0);
    }
    rec.step('unbind, disable SVA and IOPF, PASID released');
  },
};
