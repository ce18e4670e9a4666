/**
 * `TestIommuHw`: the hardware-facing side ({@link IommuHw}) of the test IOMMU driver
 * (`TestIommu`, testing/test-iommu.ts), so `Endpoint`s can DMA through domains the IOMMU core
 * attached and mapped. Exported from `@iommu-ts/iommu-core/testing`.
 *
 * @remarks
 * Translation is `TestIommu.translate` (its own LPAE walk of the domain's tables, with the
 * optional IOTLB), page by page; data moves to and from the `PhysicalMemory` (from `@iommu-ts/mm`) given here.
 * On top of that, a small model of what SMMUv3/VT-d hardware does at the boundary:
 * - faults of a stall-capable platform device (`dma-can-stall`) are held (`'pending'`), reported
 *   as a page-request {@link IommuFault} whose `grpid` is the stall tag (as the SMMUv3 driver
 *   reports stall events), and resumed or terminated by {@link TestIommuHw.pageResponse};
 * - ATS Translation Requests are answered for PCI functions with ATS enabled (UR otherwise) with the
 *   leaf's size and permissions (R=W=0 when unmapped; U for the MSI window); ATS-translated requests
 *   are allowed only for such functions (SMMU STE.EATS / VT-d DTE);
 * - PRI Page Request Messages are recorded and reported to {@link TestIommuHw.onFault} as Linux's
 *   Intel PRQ handler reports them (PASID_VALID and NEEDS_PASID with a PASID, LAST_PAGE on the last);
 *   {@link TestIommuHw.pageResponse} (what a driver's `page_response` does) turns the core's
 *   `IommuPageResponse` into a PRG Response Message;
 * - {@link TestIommuHw.atcInvalidate} sends ATS Invalidate Requests with Linux's range encoding and
 *   tracks their completions, as an invalidation-wait command would.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { PhysicalMemory } from '@iommu-ts/mm';
import { atsCoveringRange, atsEncodeRange } from './ats-range.js';
import { type Device, PlatformDevice } from './device.js';
import {
  type AtsCompletion,
  type AtsInvalidateCompletion,
  type AtsTranslationRequest,
  type DmaFaultReason,
  type DmaOutcome,
  type DmaRequest,
  dmaRequestPerm,
  type PageRequestMessage,
  PendingDma,
  prgResponseCodeFromIommu,
} from './dma-request.js';
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID,
  IOMMU_FAULT_PERM_EXEC,
  IOMMU_FAULT_PERM_PRIV,
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
  type IommuFault,
  IommuFaultType,
  type IommuPageResponse,
} from './fault.js';
import { accessPhysicalMemory, type EndpointPort, EndpointPortTable, type IommuHw } from './hw-iommu.js';
import { PciDevice } from './pci.js';
import type { TestIommu, TestIommuFaultReason } from './testing/test-iommu.js';

/** Options of {@link TestIommuHw}. */
export interface TestIommuHwOptions {
  /** Instance name for traces; default `'test-iommu-hw'`. */
  readonly name?: string;
  /**
   * Whether faults of a device stall. Default: platform devices with `dma-can-stall`.
   * @param dev - the device owning the stream
   */
  readonly stall?: (dev: Device) => boolean;
}

/** A fault the hardware recorded (terminated, not stalled): what an event queue entry would hold. */
export interface TestIommuHwFaultRecord {
  /** Stream (requester) ID. */
  readonly sid: number;
  /** PASID, if any. */
  readonly pasid: number | undefined;
  /** Input address of the faulting page. */
  readonly addr: bigint;
  /** The translate() reason. */
  readonly reason: TestIommuFaultReason | 'ats-not-allowed' | 'bus';
  /** `IOMMU_FAULT_PERM_*` of the access. */
  readonly perm: number;
}

/** An ATS invalidation the hardware sent and whether its completion arrived. */
export interface TestIommuHwAtcInvalidation {
  /** Target requester ID. */
  readonly requesterId: number;
  /** ITag. */
  readonly itag: number;
  /** Whether the Invalidate Completion for the ITag arrived. */
  completed: boolean;
}

const REASONS: Record<TestIommuFaultReason, DmaFaultReason> = {
  bad_streamid: 'bad-requester',
  bypass_blocked: 'blocked',
  bad_pasid: 'bad-pasid',
  translation: 'translation',
  permission: 'permission',
  address_size: 'address-size',
};

/**
 * The test IOMMU's hardware side. See the module documentation.
 *
 * @example
 * ```ts
 * const hw = new TestIommuHw(drv, machine.memory);
 * const ep = new Endpoint({ device: pdev, iommu: hw, scheduler });
 * sub.iommuMap(domain, 0x1000n, BigInt(pa), 0x1000n, TEST_PROT_RW);
 * ep.writeSync(0x1000n, data);
 * ```
 */
export class TestIommuHw implements IommuHw {
  /** {@inheritDoc IommuHw.name} */
  readonly name: string;
  /** The driver whose `translate` is used. */
  readonly driver: TestIommu;
  /** The RAM DMA reaches. */
  readonly memory: PhysicalMemory;
  /** Connected endpoints. */
  readonly ports = new EndpointPortTable();
  /** Terminated faults, oldest first (the "event queue"). */
  readonly faults: TestIommuHwFaultRecord[] = [];
  /** Stalled transactions not yet answered. */
  readonly stalled: PendingDma[] = [];
  /** Every Page Request Message received (the "PRI queue"). */
  readonly pageRequests: PageRequestMessage[] = [];
  /** ATS invalidations sent, with their completion state. */
  readonly atcInvalidations: TestIommuHwAtcInvalidation[] = [];
  /**
   * Where recoverable faults go (stall events and page requests), as a driver's event/PRQ thread
   * hands them to `iommu_report_device_fault`. Unset: they are only recorded.
   */
  onFault: ((dev: Device, fault: IommuFault) => void) | undefined;
  readonly #stall: (dev: Device) => boolean;
  #nextStag = 0;
  #nextItag = 0;

  /**
   * @param driver - the test driver (its stream table and domains)
   * @param memory - the RAM DMA reaches
   * @param options - see {@link TestIommuHwOptions}
   */
  constructor(driver: TestIommu, memory: PhysicalMemory, options: TestIommuHwOptions = {}) {
    this.driver = driver;
    this.memory = memory;
    this.name = options.name ?? 'test-iommu-hw';
    this.#stall = options.stall ?? ((dev) => dev instanceof PlatformDevice && dev.dmaCanStall);
    driver.atcInvalidator = (domain, start, end) => {
      for (const [sid, s] of driver.streams) {
        if (!this.#atsEnabled(sid)) continue;
        const size = end === 0n && start === 0n ? 0n : end - start;
        if (s.domain === domain) this.atcInvalidate(sid, undefined, start, size);
        for (const [pasid, d] of s.pasids) if (d === domain) this.atcInvalidate(sid, pasid, start, size);
      }
    };
    driver.atcPasidInvalidator = (dev, pasid) => {
      for (const sid of driver.streamIds(dev))
        if (this.#atsEnabled(sid)) this.atcInvalidate(sid, pasid, 0n, 0n);
    };
  }

  #atsEnabled(sid: number): boolean {
    const dev = this.driver.deviceForStream(sid);
    return dev instanceof PciDevice && (dev.atsCap?.enabled ?? false);
  }

  /** {@inheritDoc IommuHw.dmaAccess} */
  dmaAccess(req: DmaRequest, data?: Uint8Array): DmaOutcome {
    const perm = dmaRequestPerm(req);
    if (req.atsTranslated) {
      if (!this.#atsEnabled(req.requesterId)) {
        this.faults.push({
          sid: req.requesterId,
          pasid: req.pasid,
          addr: req.addr,
          reason: 'ats-not-allowed',
          perm,
        });
        return { kind: 'fault', reason: 'ats-not-allowed', addr: req.addr, code: 'F_TRANSL_FORBIDDEN' };
      }
      return this.#access(req, [{ pa: req.addr, off: 0, len: req.size }], data);
    }
    const parts: { pa: bigint; off: number; len: number }[] = [];
    for (let off = 0; off < req.size; ) {
      const va = req.addr + BigInt(off);
      const len = Math.min(req.size - off, 4096 - Number(va & 0xfffn));
      const t = this.driver.translate(req.requesterId, req.pasid ?? null, va, perm);
      if ('fault' in t) return this.#fault(req, data, va & ~0xfffn, t.fault, perm);
      parts.push({ pa: t.pa, off, len });
      off += len;
    }
    return this.#access(req, parts, data);
  }

  #access(req: DmaRequest, parts: { pa: bigint; off: number; len: number }[], data?: Uint8Array): DmaOutcome {
    if (req.access === 'write' && (data === undefined || data.length !== req.size))
      throw new ErrnoError('EINVAL', `write of ${req.size} bytes needs exactly that much data`);
    const out = req.access === 'read' ? new Uint8Array(req.size) : undefined;
    for (const p of parts) {
      const sub = { access: req.access, size: p.len, addr: req.addr + BigInt(p.off) };
      const r = accessPhysicalMemory(this.memory, p.pa, sub, data?.subarray(p.off, p.off + p.len));
      if (r.kind === 'fault') {
        this.faults.push({ sid: req.requesterId, pasid: req.pasid, addr: sub.addr, reason: 'bus', perm: 0 });
        return r;
      }
      if (r.kind === 'completed' && out !== undefined && r.data !== undefined) out.set(r.data, p.off);
    }
    return out === undefined ? { kind: 'completed' } : { kind: 'completed', data: out };
  }

  #fault(
    req: DmaRequest,
    data: Uint8Array | undefined,
    page: bigint,
    reason: TestIommuFaultReason,
    perm: number,
  ): DmaOutcome {
    const dev = this.driver.deviceForStream(req.requesterId);
    const recoverable = reason === 'translation' || reason === 'permission' || reason === 'address_size';
    if (dev !== null && recoverable && this.#stall(dev)) {
      const p = new PendingDma(req, data, this.#nextStag++ & 0xffff);
      this.stalled.push(p);
      this.onFault?.(dev, {
        type: IommuFaultType.PAGE_REQ,
        prm: {
          flags:
            IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE |
            (req.pasid === undefined ? 0 : IOMMU_FAULT_PAGE_REQUEST_PASID_VALID),
          pasid: req.pasid ?? 0,
          grpid: p.tag,
          perm,
          addr: page,
          privateData: [0n, 0n],
        },
      });
      return { kind: 'pending', pending: p };
    }
    this.faults.push({ sid: req.requesterId, pasid: req.pasid, addr: page, reason, perm });
    return { kind: 'fault', reason: REASONS[reason], addr: page, code: reason };
  }

  /**
   * Answer a stalled transaction: retry it (translate again; it completes or faults for good) or
   * terminate it. What CMD_RESUME does.
   * @param pending - one of {@link TestIommuHw.stalled}
   * @param retry - retry (true) or terminate (false)
   * @throws ErrnoError `ENOENT` if it is not stalled here
   */
  resume(pending: PendingDma, retry: boolean): void {
    const i = this.stalled.indexOf(pending);
    if (i < 0) throw new ErrnoError('ENOENT', `transaction ${pending.id} is not stalled`);
    this.stalled.splice(i, 1);
    if (!retry) {
      pending.settle({
        kind: 'fault',
        reason: 'terminated',
        addr: pending.request.addr,
        code: 'RESUME abort',
      });
      return;
    }
    const req = pending.request;
    const perm = dmaRequestPerm(req);
    for (let off = 0; off < req.size; ) {
      const va = req.addr + BigInt(off);
      const t = this.driver.translate(req.requesterId, req.pasid ?? null, va, perm);
      if ('fault' in t) {
        this.faults.push({
          sid: req.requesterId,
          pasid: req.pasid,
          addr: va & ~0xfffn,
          reason: t.fault,
          perm,
        });
        pending.settle({ kind: 'fault', reason: REASONS[t.fault], addr: va & ~0xfffn, code: t.fault });
        return;
      }
      off += Math.min(req.size - off, 4096 - Number(va & 0xfffn));
    }
    const o = this.dmaAccess(req, pending.data);
    pending.settle(o.kind === 'pending' ? { kind: 'fault', reason: 'terminated', addr: req.addr } : o);
  }

  /**
   * The driver's `page_response`: answer a stall (by tag) or a page request group (by PRG index).
   * @param dev - the device
   * @param msg - the core's response: `grpid` is the stall tag or PRG index, `code` Linux's
   * @returns `true` if a stalled transaction or an endpoint received it
   * @throws ErrnoError `EINVAL` for a bad response code
   */
  pageResponse(dev: Device, msg: IommuPageResponse): boolean {
    const sids = this.driver.streamIds(dev);
    if (this.#stall(dev)) {
      const p = this.stalled.find((s) => sids.includes(s.request.requesterId) && s.tag === msg.grpid);
      if (p === undefined) return false;
      this.resume(p, msg.code === 0);
      return true;
    }
    const code = prgResponseCodeFromIommu(msg.code);
    const sid = sids[0];
    if (sid === undefined) return false;
    const req = this.pageRequests.find((r) => r.requesterId === sid && r.prgIndex === msg.grpid);
    return this.ports.sendPrgResponse({
      requesterId: sid,
      prgIndex: msg.grpid,
      code,
      ...(req?.pasid === undefined ? {} : { pasid: msg.pasid }),
    });
  }

  /** {@inheritDoc IommuHw.atsTranslate} */
  atsTranslate(req: AtsTranslationRequest): AtsCompletion {
    if (!this.#atsEnabled(req.requesterId)) return { status: 'ur', detail: 'F_BAD_ATS_TREQ' };
    const base = (req.privileged ? IOMMU_FAULT_PERM_PRIV : 0) | (req.exec ? IOMMU_FAULT_PERM_EXEC : 0);
    const pasid = req.pasid ?? null;
    const r = this.driver.translate(req.requesterId, pasid, req.addr, base | IOMMU_FAULT_PERM_READ);
    const w = req.noWrite
      ? r
      : this.driver.translate(req.requesterId, pasid, req.addr, base | IOMMU_FAULT_PERM_WRITE);
    const ok = 'pa' in r ? r : 'pa' in w ? w : undefined;
    if (ok === undefined) {
      const f = 'fault' in r ? r.fault : 'translation';
      if (f === 'bad_streamid' || f === 'bypass_blocked') return { status: 'ur', detail: f };
      const page = req.addr & ~0xfffn;
      return {
        status: 'success',
        untranslatedAddr: page,
        translatedAddr: 0n,
        size: 4096n,
        read: false,
        write: false,
        exec: false,
        privileged: req.privileged,
        untranslatedOnly: false,
        global: false,
        noSnoop: false,
      };
    }
    const size = BigInt(ok.pgsize);
    return {
      status: 'success',
      untranslatedAddr: req.addr & ~(size - 1n),
      translatedAddr: ok.pa & ~(size - 1n),
      size,
      read: 'pa' in r,
      write: !req.noWrite && 'pa' in w,
      exec: req.exec && 'pa' in r,
      privileged: req.privileged,
      untranslatedOnly: ok.msi,
      global: false,
      noSnoop: false,
    };
  }

  /** {@inheritDoc IommuHw.pageRequest} */
  pageRequest(msg: PageRequestMessage): void {
    this.pageRequests.push(msg);
    const dev = this.driver.deviceForStream(msg.requesterId);
    if (dev === null || this.onFault === undefined) return;
    let flags = msg.last ? IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE : 0;
    if (msg.pasid !== undefined)
      flags |= IOMMU_FAULT_PAGE_REQUEST_PASID_VALID | IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID;
    this.onFault(dev, {
      type: IommuFaultType.PAGE_REQ,
      prm: {
        flags,
        pasid: msg.pasid ?? 0,
        grpid: msg.prgIndex,
        perm:
          (msg.read ? IOMMU_FAULT_PERM_READ : 0) |
          (msg.write ? IOMMU_FAULT_PERM_WRITE : 0) |
          (msg.exec ? IOMMU_FAULT_PERM_EXEC : 0) |
          (msg.privileged ? IOMMU_FAULT_PERM_PRIV : 0),
        addr: msg.addr,
        privateData: [0n, 0n],
      },
    });
  }

  /**
   * Send an ATS Invalidate Request covering `[iova, iova + size)` (size 0: everything), encoded as
   * Linux encodes ATC invalidations.
   * @param requesterId - the function
   * @param pasid - PASID prefix, or `undefined`
   * @param iova - first byte. u64
   * @param size - bytes; 0 for everything
   * @returns the tracking record (its `completed` flips when the completion arrives)
   */
  atcInvalidate(
    requesterId: number,
    pasid: number | undefined,
    iova: bigint,
    size: bigint,
  ): TestIommuHwAtcInvalidation {
    const r = atsCoveringRange(iova, size);
    const enc = atsEncodeRange(r.start, r.size);
    const itag = this.#nextItag++ & 31;
    const rec: TestIommuHwAtcInvalidation = { requesterId, itag, completed: false };
    this.atcInvalidations.push(rec);
    this.ports.sendAtsInvalidate({
      requesterId,
      global: false,
      addr: enc.addr,
      s: enc.s,
      itag,
      ...(pasid === undefined ? {} : { pasid }),
    });
    return rec;
  }

  /** {@inheritDoc IommuHw.atsInvalidateCompletion} */
  atsInvalidateCompletion(msg: AtsInvalidateCompletion): void {
    for (const rec of this.atcInvalidations) {
      if (rec.requesterId === msg.requesterId && !rec.completed && (msg.itagVector >>> rec.itag) & 1)
        rec.completed = true;
    }
  }

  /** {@inheritDoc IommuHw.connectEndpoint} */
  connectEndpoint(port: EndpointPort): void {
    this.ports.connect(port);
  }

  /** {@inheritDoc IommuHw.disconnectEndpoint} */
  disconnectEndpoint(port: EndpointPort): void {
    this.ports.disconnect(port);
  }
}
