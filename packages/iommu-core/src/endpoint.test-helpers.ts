/**
 * A small IOMMU hardware model for the endpoint tests: one ARM LPAE stage-1 table per (requester,
 * PASID) written into PhysicalMemory by io-pgtable, translated with `iovaToPhys`, permissions kept
 * beside it; optional stall, PRI queue and ATS.
 */

import { Scheduler } from '@iommu-ts/base';
import {
  allocIoPgtableOps,
  IO_PGTABLE_QUIRK_ARM_NS,
  IOMMU_READ,
  IOMMU_WRITE,
  IoPgtableFmt,
  type IoPgtableOps,
} from '@iommu-ts/io-pgtable';
import { PhysicalMemory } from '@iommu-ts/mm';
import { atsCoveringRange, atsEncodeRange } from './ats-range.js';
import {
  type AtsCompletion,
  type AtsInvalidateCompletion,
  type AtsTranslationRequest,
  type DmaOutcome,
  type DmaRequest,
  type PageRequestMessage,
  PendingDma,
  type PrgResponseCode,
} from './dma-request.js';
import { accessPhysicalMemory, type EndpointPort, EndpointPortTable, type IommuHw } from './hw-iommu.js';
import { PciHostBridge } from './pci.js';

interface Ctx {
  ops: IoPgtableOps;
  prot: Map<bigint, number>;
}

const key = (rid: number, pasid: number | undefined): string => `${rid}:${pasid ?? '-'}`;

/** Options of {@link TestIommuHw}. */
export interface TestIommuHwOptions {
  /** Hold faulting untranslated requests instead of aborting them. */
  stall?: boolean;
  /** Answer ATS translation requests (else UR). Default true. */
  ats?: boolean;
}

export class TestIommuHw implements IommuHw {
  readonly name = 'test-iommu';
  readonly ports = new EndpointPortTable();
  readonly prq: PageRequestMessage[] = [];
  readonly stalled: PendingDma[] = [];
  readonly invCompletions: AtsInvalidateCompletion[] = [];
  readonly requests: DmaRequest[] = [];
  onPageRequest: ((msg: PageRequestMessage) => void) | undefined;
  atsAllowed: boolean;
  stallMode: boolean;
  #ctx = new Map<string, Ctx>();
  #nextTag = 0;
  #nextItag = 0;

  constructor(
    readonly memory: PhysicalMemory,
    options: TestIommuHwOptions = {},
  ) {
    this.stallMode = options.stall ?? false;
    this.atsAllowed = options.ats ?? true;
  }

  #context(rid: number, pasid: number | undefined): Ctx {
    const k = key(rid, pasid);
    let c = this.#ctx.get(k);
    if (c === undefined) {
      const ops = allocIoPgtableOps(
        IoPgtableFmt.ARM_64_LPAE_S1,
        {
          quirks: IO_PGTABLE_QUIRK_ARM_NS,
          pgsizeBitmap: 0x4020_1000n,
          ias: 48,
          oas: 48,
          coherentWalk: true,
          memory: this.memory,
          tlb: { tlbFlushAll: () => {}, tlbFlushWalk: () => {}, tlbAddPage: () => {} },
        },
        k,
      );
      if (ops === null) throw new Error('io-pgtable refused the configuration');
      c = { ops, prot: new Map() };
      this.#ctx.set(k, c);
    }
    return c;
  }

  /** Map 4K pages. */
  map(rid: number, pasid: number | undefined, iova: bigint, pa: number, size: number, prot: number): void {
    const c = this.#context(rid, pasid);
    c.ops.mapPages(iova, pa, 4096, size / 4096, prot);
    for (let off = 0; off < size; off += 4096) c.prot.set(iova + BigInt(off), prot);
  }

  /** Unmap 4K pages (no ATC invalidation: the test sends it). */
  unmap(rid: number, pasid: number | undefined, iova: bigint, size: number): void {
    const c = this.#context(rid, pasid);
    c.ops.unmapPages(iova, 4096, size / 4096, null);
    for (let off = 0; off < size; off += 4096) c.prot.delete(iova + BigInt(off));
  }

  /** Translate one address: PA and prot, or undefined. */
  translate(rid: number, pasid: number | undefined, iova: bigint): { pa: bigint; prot: number } | undefined {
    const c = this.#ctx.get(key(rid, pasid));
    if (c === undefined) return undefined;
    const prot = c.prot.get(iova & ~0xfffn);
    if (prot === undefined) return undefined;
    const pa = c.ops.iovaToPhys(iova);
    return pa === 0 ? undefined : { pa: BigInt(pa), prot };
  }

  dmaAccess(req: DmaRequest, data?: Uint8Array): DmaOutcome {
    this.requests.push(req);
    if (req.atsTranslated) {
      if (!this.atsAllowed) return { kind: 'fault', reason: 'ats-not-allowed', addr: req.addr };
      return accessPhysicalMemory(this.memory, req.addr, req, data);
    }
    // Page by page: check all, then access each page.
    const need = req.access === 'write' ? IOMMU_WRITE : IOMMU_READ;
    const parts: { pa: bigint; off: number; len: number }[] = [];
    let off = 0;
    while (off < req.size) {
      const va = req.addr + BigInt(off);
      const len = Math.min(req.size - off, 4096 - Number(va & 0xfffn));
      const t = this.translate(req.requesterId, req.pasid, va);
      if (t === undefined || (t.prot & need) === 0) {
        const reason = t === undefined ? 'translation' : 'permission';
        if (this.stallMode) {
          const p = new PendingDma(req, data, this.#nextTag++ & 0xffff);
          this.stalled.push(p);
          return { kind: 'pending', pending: p };
        }
        return { kind: 'fault', reason, addr: va };
      }
      parts.push({ pa: t.pa, off, len });
      off += len;
    }
    const out = new Uint8Array(req.access === 'read' ? req.size : 0);
    for (const p of parts) {
      const sub = { access: req.access, size: p.len, addr: req.addr + BigInt(p.off) };
      const r = accessPhysicalMemory(this.memory, p.pa, sub, data?.subarray(p.off, p.off + p.len));
      if (r.kind !== 'completed') return r;
      if (r.data) out.set(r.data, p.off);
    }
    return req.access === 'read' ? { kind: 'completed', data: out } : { kind: 'completed' };
  }

  /** Answer the oldest stalled transaction: retry (re-translate) or terminate. */
  resume(p: PendingDma, retry: boolean): void {
    const i = this.stalled.indexOf(p);
    if (i >= 0) this.stalled.splice(i, 1);
    if (!retry) {
      p.settle({ kind: 'fault', reason: 'terminated', addr: p.request.addr });
      return;
    }
    const saved = this.stallMode;
    this.stallMode = false;
    const o = this.dmaAccess(p.request, p.data);
    this.stallMode = saved;
    p.settle(o.kind === 'pending' ? { kind: 'fault', reason: 'terminated', addr: p.request.addr } : o);
  }

  atsTranslate(req: AtsTranslationRequest): AtsCompletion {
    if (!this.atsAllowed) return { status: 'ur' };
    const page = req.addr & ~0xfffn;
    const t = this.translate(req.requesterId, req.pasid, page);
    return {
      status: 'success',
      untranslatedAddr: page,
      translatedAddr: t === undefined ? 0n : t.pa & ~0xfffn,
      size: 4096n,
      read: t !== undefined && (t.prot & IOMMU_READ) !== 0,
      write: t !== undefined && !req.noWrite && (t.prot & IOMMU_WRITE) !== 0,
      exec: false,
      privileged: req.privileged,
      untranslatedOnly: false,
      global: false,
      noSnoop: false,
    };
  }

  pageRequest(msg: PageRequestMessage): void {
    this.prq.push(msg);
    this.onPageRequest?.(msg);
  }

  respond(rid: number, pasid: number | undefined, prgIndex: number, code: PrgResponseCode): void {
    this.ports.sendPrgResponse({
      requesterId: rid,
      prgIndex,
      code,
      ...(pasid === undefined ? {} : { pasid }),
    });
  }

  /** Send an ATS invalidation covering [addr, addr+size) as Linux encodes it; returns the ITag. */
  invalidateAtc(rid: number, pasid: number | undefined, addr: bigint, size: bigint, global = false): number {
    const r = atsCoveringRange(addr, size);
    const enc = atsEncodeRange(r.start, r.size);
    const itag = this.#nextItag++ & 31;
    this.ports.sendAtsInvalidate({
      requesterId: rid,
      global,
      addr: enc.addr,
      s: enc.s,
      itag,
      ...(pasid === undefined ? {} : { pasid }),
    });
    return itag;
  }

  atsInvalidateCompletion(msg: AtsInvalidateCompletion): void {
    this.invCompletions.push(msg);
  }

  connectEndpoint(port: EndpointPort): void {
    this.ports.connect(port);
  }

  disconnectEndpoint(port: EndpointPort): void {
    this.ports.disconnect(port);
  }
}

/** A machine: 64 MiB of RAM at 1 GiB, a scheduler, the test IOMMU, a PCI bus. */
export function testBed(options: TestIommuHwOptions = {}) {
  const memory = new PhysicalMemory({ size: 64 * 2 ** 20 });
  const sched = new Scheduler();
  const iommu = new TestIommuHw(memory, options);
  const hb = new PciHostBridge();
  return { memory, sched, iommu, bus: hb.rootBus };
}
