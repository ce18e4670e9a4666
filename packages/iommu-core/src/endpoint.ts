/**
 * `Endpoint`: a DMA-capable device model (a PCI function or a platform device) that issues DMA
 * through an {@link IommuHw}, with the PCIe ATS translation cache, the PRI page-request logic and
 * stall handling.
 *
 * @remarks
 * The endpoint reads its PCI capabilities (PASID, ATS, PRI) live from its {@link PciDevice}, so
 * the kernel side enables them with `pciEnablePasid`/`pciEnableAts`/`pciEnablePri` (ats.ts, pri.ts,
 * after drivers/pci/ats.c) exactly as a driver would, and the device changes behaviour at once:
 *
 * - **Untranslated DMA** (ATS off): one memory request per operation; the IOMMU translates it.
 * - **ATS** (PCIe ATS chapter): for each STU-sized unit the ATC is looked up first; a miss (or an
 *   entry lacking the needed permission) sends a Translation Request; successful completions are
 *   cached; the data moves as translated requests (`atsTranslated: true`), one per cached range, or
 *   as untranslated requests where the completion had U set. Invalidate Requests drop matching
 *   entries and are answered with an Invalidate Completion from a scheduler task (after
 *   `atsInvalidateLatencyNs`, or never, to model a broken device).
 * - **PRI** (PCIe PRI chapter): when a Translation Completion grants no (or too little) access, or
 *   an untranslated request faults on translation/permission while PRI is enabled, the endpoint
 *   sends one page request group for the missing pages (at most the Outstanding Page Request
 *   Allocation; the rest follows in later rounds), with L on the last request, and waits. A group
 *   that does not fit in the remaining credit waits until responses return credit. Success →
 *   retry the access from where it stopped (a scheduler task); Invalid Request → the access fails
 *   (`'pri-invalid'`); Response Failure → the access and every other waiting one fail
 *   (`'pri-failure'`), Status.RF is set and no page request is sent until `pciResetPri`.
 *   Responses naming no outstanding group set Status.UPRGI and are ignored. (PCIe pairs PRI with
 *   ATS; this model also accepts the untranslated-fault trigger so a PRI test does not need ATS.)
 * - **Stall** (Arm SMMU stall model, `dma-can-stall` platform devices): the IOMMU may answer
 *   `'pending'`; the operation then waits for the IOMMU to resume (complete) or terminate (fault)
 *   the transaction.
 *
 * An operation therefore completes synchronously inside {@link Endpoint.issue} when nothing waits,
 * and otherwise later, on base's `Scheduler`; {@link DmaTicket.wait} runs the scheduler until it is
 * done.
 */

import { ErrnoError, type Scheduler, type Timer } from '@iommu-ts/base';
import { ATS_RANGE_ALL, type AtsRange, atsDecodeRange } from './ats-range.js';
import type { PlatformDevice } from './device.js';
import {
  type AtsCompletion,
  type AtsCompletionSuccess,
  type AtsInvalidateRequest,
  type DmaAccessKind,
  type DmaFault,
  DmaFaultError,
  type DmaFaultReason,
  type DmaSettledOutcome,
  dmaRequest,
  type PageRequestMessage,
  PRG_RESPONSE,
  type PrgResponseCode,
  type PrgResponseMessage,
} from './dma-request.js';
import { type AtcEntry, type AtcNeed, AtsTranslationCache, atcPermits } from './endpoint-atc.js';
import {
  type EndpointTraceRecord,
  traceEndpointAtcInv,
  traceEndpointAtsTranslate,
  traceEndpointDmaDone,
  traceEndpointDmaIssue,
  traceEndpointDmaStall,
  traceEndpointPageRequest,
  traceEndpointPrgResponse,
} from './endpoint-trace.js';
import type { EndpointPort, IommuHw } from './hw-iommu.js';
import type { PciDevice } from './pci.js';
import { PCI_PRI_STATUS_RF, PCI_PRI_STATUS_UPRGI, type PriFunctionState, pciPriBindFunction } from './pri.js';

const PAGE = 4096n;
/** Number of PRG indices (9-bit field). */
const PRG_INDEX_COUNT = 512;

// ---- Tickets ----------------------------------------------------------------------------------

/** Where a {@link DmaTicket} is: waiting, completed, or failed with a {@link DmaFault}. */
export type DmaTicketState = 'pending' | 'completed' | 'failed';

/** Listener of {@link DmaTicket.onSettled}. */
export type DmaTicketListener = (ticket: DmaTicket) => void;

let nextTicketId = 1;
let settleTicket: (t: DmaTicket, outcome: DmaSettledOutcome) => void;
let ticketCounters: (t: DmaTicket) => { priRounds: number; stalls: number };

/**
 * One DMA operation issued by an {@link Endpoint}: its state and, once settled, its result.
 */
export class DmaTicket {
  /** A process-unique id (used in traces). */
  readonly id: number;
  /** Read or write. */
  readonly access: DmaAccessKind;
  /** Device address (IOVA) of the first byte. u64. */
  readonly addr: bigint;
  /** Length in bytes. */
  readonly size: number;
  /** PASID of the operation, if any. */
  readonly pasid: number | undefined;
  readonly #scheduler: Scheduler;
  #state: DmaTicketState = 'pending';
  #data: Uint8Array | undefined;
  #fault: DmaFault | undefined;
  #listeners: DmaTicketListener[] = [];
  readonly #counters = { priRounds: 0, stalls: 0 };

  static {
    settleTicket = (t, outcome) => t.#settle(outcome);
    ticketCounters = (t) => t.#counters;
  }

  /** @internal created by {@link Endpoint.issue} */
  constructor(
    scheduler: Scheduler,
    access: DmaAccessKind,
    addr: bigint,
    size: number,
    pasid: number | undefined,
  ) {
    this.id = nextTicketId++;
    this.#scheduler = scheduler;
    this.access = access;
    this.addr = addr;
    this.size = size;
    this.pasid = pasid;
  }

  /** Current state. */
  get state(): DmaTicketState {
    return this.#state;
  }

  /** Whether the operation finished (completed or failed). */
  get settled(): boolean {
    return this.#state !== 'pending';
  }

  /** For a completed read, the bytes read (`size` of them); otherwise `undefined`. */
  get data(): Uint8Array | undefined {
    return this.#data;
  }

  /** For a failed operation, the fault; otherwise `undefined`. */
  get fault(): DmaFault | undefined {
    return this.#fault;
  }

  /** Page request groups this operation sent (PRI rounds). */
  get priRounds(): number {
    return this.#counters.priRounds;
  }

  /** Times the IOMMU stalled one of this operation's transactions. */
  get stalls(): number {
    return this.#counters.stalls;
  }

  /**
   * Call `listener` once the operation settles (at once if it already has).
   * @param listener - receives this ticket
   */
  onSettled(listener: DmaTicketListener): void {
    if (this.#state !== 'pending') listener(this);
    else this.#listeners.push(listener);
  }

  /**
   * The result of a settled operation.
   * @returns the bytes for a read, `undefined` for a write
   * @throws {@link DmaFaultError} if the operation failed; ErrnoError `EAGAIN` if still pending
   */
  result(): Uint8Array | undefined {
    if (this.#state === 'pending') throw new ErrnoError('EAGAIN', `DMA ticket ${this.id} is still pending`);
    if (this.#fault !== undefined) throw new DmaFaultError(this.#fault);
    return this.#data;
  }

  /**
   * Run the endpoint's scheduler until this operation settles, then return {@link DmaTicket.result}.
   * @returns the bytes for a read, `undefined` for a write
   * @throws {@link DmaFaultError} if the operation failed; ErrnoError `ETIMEDOUT` if the scheduler
   *   went idle with the operation still pending (nobody answered the page request or stall);
   *   Error if called from inside a scheduler task while pending
   */
  wait(): Uint8Array | undefined {
    if (this.#state === 'pending') this.#scheduler.runUntil(() => this.#state !== 'pending');
    if (this.#state === 'pending')
      throw new ErrnoError('ETIMEDOUT', `DMA ticket ${this.id} still pending with the scheduler idle`);
    return this.result();
  }

  #settle(outcome: DmaSettledOutcome): void {
    if (this.#state !== 'pending') return;
    if (outcome.kind === 'fault') {
      this.#state = 'failed';
      this.#fault = outcome;
    } else {
      this.#state = 'completed';
      this.#data = outcome.data;
    }
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const l of listeners) l(this);
  }
}

// ---- Endpoint ---------------------------------------------------------------------------------

/** Per-operation options of {@link Endpoint.dmaRead} / {@link Endpoint.dmaWrite}. */
export interface EndpointDmaOptions {
  /**
   * PASID to tag the requests with. PCI: needs PASID enabled (`pciEnablePasid`) and a value below
   * 2^(Max PASID Width); platform: below 2^`pasid-num-bits`.
   */
  readonly pasid?: number | undefined;
  /** Privileged access. PCI: needs a PASID and the PRIV feature enabled. Default `false`. */
  readonly privileged?: boolean;
  /** Instruction fetch (reads only). PCI: needs a PASID and the EXEC feature. Default `false`. */
  readonly exec?: boolean;
}

/** An operation for {@link Endpoint.issue}. */
export type EndpointDmaOp =
  | (EndpointDmaOptions & {
      /** Read `size` bytes at `addr`. */
      readonly access: 'read';
      /** Device address (IOVA). u64. */
      readonly addr: bigint;
      /** Bytes, ≥ 1. */
      readonly size: number;
    })
  | (EndpointDmaOptions & {
      /** Write `data` at `addr`. */
      readonly access: 'write';
      /** Device address (IOVA). u64. */
      readonly addr: bigint;
      /** The bytes (copied at issue), length ≥ 1. */
      readonly data: Uint8Array;
    });

/** Options of the {@link Endpoint} constructor. */
export interface EndpointOptions {
  /** The device this endpoint models: a PCI function (capabilities from it) or a platform device. */
  readonly device: PciDevice | PlatformDevice;
  /** The IOMMU the device's DMA goes through (or a `PassthroughIommuHw`). */
  readonly iommu: IommuHw;
  /** The scheduler retries, completions and invalidation answers run on. */
  readonly scheduler: Scheduler;
  /**
   * Requester ID / StreamID of the requests. Default: the PCI Requester ID, or the platform
   * device's first firmware ID.
   */
  readonly requesterId?: number;
  /** Name for traces; default the device name. */
  readonly name?: string;
  /** ATC entries, default 64. */
  readonly atcCapacity?: number;
  /**
   * Delay before an ATS Invalidate Completion is sent, in ns of virtual time: 0 (default) answers
   * from the next scheduler task; `null` never answers (a device that times out the IOMMU's
   * invalidation wait).
   */
  readonly atsInvalidateLatencyNs?: number | null;
  /** Page request groups one operation may send before it fails with its fault. Default 8. */
  readonly maxPriRounds?: number;
  /** Keep every trace event in {@link Endpoint.events}. Default `false`. */
  readonly record?: boolean;
}

/** Counters of an {@link Endpoint} ({@link Endpoint.stats}). */
export interface EndpointStats {
  /** Operations issued. */
  readonly issued: number;
  /** Operations completed. */
  readonly completed: number;
  /** Operations failed. */
  readonly failed: number;
  /** Bytes read by completed operations. */
  readonly bytesRead: number;
  /** Bytes written by completed operations. */
  readonly bytesWritten: number;
  /** Memory requests sent to the IOMMU (untranslated and translated). */
  readonly memRequests: number;
  /** Of those, ATS-translated requests. */
  readonly translatedRequests: number;
  /** ATC lookups that hit with sufficient permission. */
  readonly atcHits: number;
  /** ATC lookups that missed (or hit without the permission needed). */
  readonly atcMisses: number;
  /** ATS Translation Requests sent. */
  readonly atsRequests: number;
  /** Translation Completions with UR or CA (or malformed). */
  readonly atsErrors: number;
  /** ATS Invalidate Requests received. */
  readonly atsInvalidations: number;
  /** ATC entries dropped by them. */
  readonly atcEntriesInvalidated: number;
  /** Invalidate Completion messages sent. */
  readonly atsInvalidateCompletions: number;
  /** Invalidate Requests received beyond the Invalidate Queue Depth. */
  readonly atsInvalidateOverflows: number;
  /** Page Request Messages sent. */
  readonly pageRequests: number;
  /** Page request groups sent. */
  readonly prgSent: number;
  /** PRG responses: Success. */
  readonly prgSuccess: number;
  /** PRG responses: Invalid Request. */
  readonly prgInvalid: number;
  /** PRG responses: Response Failure (or a reserved code). */
  readonly prgFailure: number;
  /** PRG responses that matched no outstanding group (UPRGI). */
  readonly prgUnexpected: number;
  /** Page request groups that had to wait for outstanding-request credit. */
  readonly priCreditWaits: number;
  /** Transactions the IOMMU stalled. */
  readonly stalls: number;
  /** Stalled transactions resumed to completion. */
  readonly stallsResumed: number;
  /** Stalled transactions terminated. */
  readonly stallsTerminated: number;
}

/** The PRI state of an {@link Endpoint} ({@link Endpoint.pri}). */
export interface EndpointPriState {
  /** PRI capability present and enabled. */
  readonly enabled: boolean;
  /** Outstanding Page Request Allocation (0 without PRI). */
  readonly allocation: number;
  /** Page requests outstanding (credit in use). */
  readonly outstanding: number;
  /** Groups outstanding. */
  readonly groups: number;
  /** Groups waiting for credit. */
  readonly waiting: number;
  /** Status.RF. */
  readonly responseFailure: boolean;
  /** Status.UPRGI. */
  readonly unexpectedPrgIndex: boolean;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface OpState {
  readonly ticket: DmaTicket;
  readonly access: DmaAccessKind;
  readonly addr: bigint;
  readonly size: number;
  readonly data: Uint8Array | undefined;
  readonly out: Uint8Array | undefined;
  readonly pasid: number | undefined;
  readonly privileged: boolean;
  readonly exec: boolean;
  /** Bytes done. */
  offset: number;
}

interface PrGroup {
  readonly index: number;
  readonly pasid: number | undefined;
  readonly count: number;
  readonly op: OpState;
  readonly cause: DmaFault;
}

interface PriWaiter {
  readonly op: OpState;
  readonly pages: bigint[];
  readonly cause: DmaFault;
}

interface Chunk {
  readonly entry: AtcEntry;
  readonly start: bigint;
  readonly len: number;
}

function zeroStats(): Mutable<EndpointStats> {
  return {
    issued: 0,
    completed: 0,
    failed: 0,
    bytesRead: 0,
    bytesWritten: 0,
    memRequests: 0,
    translatedRequests: 0,
    atcHits: 0,
    atcMisses: 0,
    atsRequests: 0,
    atsErrors: 0,
    atsInvalidations: 0,
    atcEntriesInvalidated: 0,
    atsInvalidateCompletions: 0,
    atsInvalidateOverflows: 0,
    pageRequests: 0,
    prgSent: 0,
    prgSuccess: 0,
    prgInvalid: 0,
    prgFailure: 0,
    prgUnexpected: 0,
    priCreditWaits: 0,
    stalls: 0,
    stallsResumed: 0,
    stallsTerminated: 0,
  };
}

const PRI_TRIGGERS: ReadonlySet<DmaFaultReason> = new Set(['translation', 'permission', 'access-flag']);

/**
 * A DMA-capable endpoint: issues DMA through an {@link IommuHw}, caches ATS translations, sends PRI
 * page requests and waits on stalls. See the module documentation for the behaviour.
 *
 * @example
 * ```ts
 * const ep = new Endpoint({ device: pdev, iommu, scheduler });
 * ep.dmaWrite(0x1000n, new Uint8Array([1, 2, 3])).wait();
 * const t = ep.dmaRead(0x1000n, 3);
 * if (t.state === 'pending') sched.runUntilIdle();
 * console.log(t.result());
 * ```
 */
export class Endpoint implements EndpointPort {
  /** Name used in traces. */
  readonly name: string;
  /** The device modelled. */
  readonly device: PciDevice | PlatformDevice;
  /** The IOMMU in front of the device. */
  readonly iommu: IommuHw;
  /** The scheduler for deferred work. */
  readonly scheduler: Scheduler;
  /** {@inheritDoc EndpointPort.requesterId} */
  readonly requesterId: number;
  /** The Address Translation Cache. */
  readonly atc: AtsTranslationCache;
  /** Recorded trace events (only with `record: true`), oldest first. */
  readonly events: EndpointTraceRecord[] = [];
  /** Page request groups one operation may send before failing. */
  readonly maxPriRounds: number;
  readonly #record: boolean;
  readonly #invLatency: number | null;
  readonly #stats = zeroStats();
  readonly #groups = new Map<number, PrGroup>();
  #waiters: PriWaiter[] = [];
  #outstanding = 0;
  #rf = false;
  #uprgi = false;
  #nextPrgIndex = 0;
  #pumpScheduled = false;
  #pendingItags = 0;
  #queuedInvalidations = 0;
  #invFlushArmed = false;
  #invTimer: Timer | undefined;
  #unbindPri: (() => void) | undefined;
  #connected = false;

  /**
   * Create the endpoint and connect it to its IOMMU.
   * @param options - see {@link EndpointOptions}
   * @throws ErrnoError `EINVAL` when no requester ID can be derived or an option is out of range;
   *   `EEXIST` from the IOMMU when the requester ID is already connected
   */
  constructor(options: EndpointOptions) {
    this.device = options.device;
    this.iommu = options.iommu;
    this.scheduler = options.scheduler;
    this.name = options.name ?? options.device.name;
    const rid =
      options.requesterId ??
      (options.device.busType === 'pci' ? options.device.requesterId : options.device.firmwareIds[0]);
    if (rid === undefined || !Number.isInteger(rid) || rid < 0 || rid > 0xffff_ffff)
      throw new ErrnoError('EINVAL', `${this.name}: no valid requester ID`);
    this.requesterId = rid;
    this.atc = new AtsTranslationCache(options.atcCapacity ?? 64);
    const lat = options.atsInvalidateLatencyNs === undefined ? 0 : options.atsInvalidateLatencyNs;
    if (lat !== null && (!Number.isFinite(lat) || lat < 0))
      throw new ErrnoError('EINVAL', `bad ATS invalidate latency ${lat}`);
    this.#invLatency = lat;
    this.maxPriRounds = options.maxPriRounds ?? 8;
    this.#record = options.record ?? false;
    this.iommu.connectEndpoint(this);
    this.#connected = true;
    if (this.device.busType === 'pci' && this.device.priCap !== null) {
      const self = this;
      const state: PriFunctionState = {
        get responseFailure() {
          return self.#rf;
        },
        get unexpectedPrgIndex() {
          return self.#uprgi;
        },
        get outstanding() {
          return self.#outstanding;
        },
        clearStatus(bits: number) {
          if (bits & PCI_PRI_STATUS_RF) self.#rf = false;
          if (bits & PCI_PRI_STATUS_UPRGI) self.#uprgi = false;
        },
        reset() {
          self.#abandonAll('PRI reset');
          self.#rf = false;
          self.#uprgi = false;
        },
      };
      this.#unbindPri = pciPriBindFunction(this.device, state);
    }
  }

  /** Counters since construction (a snapshot). */
  get stats(): EndpointStats {
    return { ...this.#stats };
  }

  /** The PRI state (a snapshot). */
  get pri(): EndpointPriState {
    const cap = this.#pciPriCap();
    return {
      enabled: cap?.enabled ?? false,
      allocation: cap?.enabled ? cap.allocatedRequests : 0,
      outstanding: this.#outstanding,
      groups: this.#groups.size,
      waiting: this.#waiters.length,
      responseFailure: this.#rf,
      unexpectedPrgIndex: this.#uprgi,
    };
  }

  /** Whether the device currently uses ATS (PCI function with ATS Enable set). */
  get atsEnabled(): boolean {
    return this.device.busType === 'pci' && (this.device.atsCap?.enabled ?? false);
  }

  /** log2 of the Smallest Translation Unit in bytes (12 without ATS). */
  get stuShift(): number {
    return this.device.busType === 'pci' && this.device.atsCap !== null ? 12 + this.device.atsCap.stu : 12;
  }

  /** The Invalidate Queue Depth (1 … 32; 32 without ATS). */
  get invalidateQueueDepth(): number {
    const q = this.device.busType === 'pci' ? (this.device.atsCap?.invQueueDepth ?? 0) & 0x1f : 0;
    return q === 0 ? 32 : q;
  }

  /** Whether the device tolerates stalled transactions (`dma-can-stall`; false for PCI). */
  get canStall(): boolean {
    return this.device.busType === 'platform' && this.device.dmaCanStall;
  }

  /** Disconnect from the IOMMU (hot-unplug) and unbind the PRI state. Idempotent. */
  disconnect(): void {
    if (!this.#connected) return;
    this.#connected = false;
    this.iommu.disconnectEndpoint(this);
    this.#unbindPri?.();
    this.#unbindPri = undefined;
  }

  // ---- issuing ----------------------------------------------------------------------------------

  /**
   * Read `size` bytes at `addr`.
   * @param addr - device address (IOVA). u64
   * @param size - bytes, ≥ 1
   * @param options - PASID, privileged, exec
   * @returns the ticket; see {@link Endpoint.issue}
   * @throws ErrnoError `EINVAL` as {@link Endpoint.issue}
   */
  dmaRead(addr: bigint, size: number, options: EndpointDmaOptions = {}): DmaTicket {
    return this.issue({ ...options, access: 'read', addr, size });
  }

  /**
   * Write `data` at `addr`.
   * @param addr - device address (IOVA). u64
   * @param data - the bytes (copied), length ≥ 1
   * @param options - PASID, privileged
   * @returns the ticket; see {@link Endpoint.issue}
   * @throws ErrnoError `EINVAL` as {@link Endpoint.issue}
   */
  dmaWrite(addr: bigint, data: Uint8Array, options: EndpointDmaOptions = {}): DmaTicket {
    return this.issue({ ...options, access: 'write', addr, data });
  }

  /**
   * Read and wait: {@link Endpoint.dmaRead} then {@link DmaTicket.wait}.
   * @param addr - device address. u64
   * @param size - bytes
   * @param options - PASID, privileged, exec
   * @returns the bytes
   * @throws {@link DmaFaultError} on a fault; ErrnoError `ETIMEDOUT` if nobody answers; `EINVAL` for
   *   bad arguments
   */
  readSync(addr: bigint, size: number, options: EndpointDmaOptions = {}): Uint8Array {
    return this.dmaRead(addr, size, options).wait() as Uint8Array;
  }

  /**
   * Write and wait: {@link Endpoint.dmaWrite} then {@link DmaTicket.wait}.
   * @param addr - device address. u64
   * @param data - the bytes
   * @param options - PASID, privileged
   * @throws {@link DmaFaultError} on a fault; ErrnoError `ETIMEDOUT` if nobody answers; `EINVAL` for
   *   bad arguments
   */
  writeSync(addr: bigint, data: Uint8Array, options: EndpointDmaOptions = {}): void {
    this.dmaWrite(addr, data, options).wait();
  }

  /**
   * Issue a DMA operation. It runs at once; if nothing has to wait (no page request, no stall) the
   * returned ticket is already settled, else it settles later on the scheduler.
   * @param op - the operation
   * @returns the ticket
   * @throws ErrnoError `EINVAL` for an empty or out-of-range access, `exec` on a write, a PASID the
   *   device cannot emit (PCI: PASID not enabled or too wide; platform: beyond `pasid-num-bits`),
   *   or privileged/exec without the PCI PASID features; `ENODEV` after {@link Endpoint.disconnect}
   */
  issue(op: EndpointDmaOp): DmaTicket {
    if (!this.#connected) throw new ErrnoError('ENODEV', `${this.name} is disconnected`);
    const size = op.access === 'read' ? op.size : op.data.length;
    const pasid = op.pasid;
    const privileged = op.privileged ?? false;
    const exec = op.exec ?? false;
    // Validates address, size, PASID range and exec-on-write.
    dmaRequest({
      requesterId: this.requesterId,
      pasid,
      addr: op.addr,
      size,
      access: op.access,
      exec,
      privileged,
    });
    this.#checkPasid(pasid, privileged, exec);
    const ticket = new DmaTicket(this.scheduler, op.access, op.addr, size, pasid);
    const st: OpState = {
      ticket,
      access: op.access,
      addr: op.addr,
      size,
      data: op.access === 'write' ? op.data.slice() : undefined,
      out: op.access === 'read' ? new Uint8Array(size) : undefined,
      pasid,
      privileged,
      exec,
      offset: 0,
    };
    this.#stats.issued++;
    if (this.#record || traceEndpointDmaIssue.enabled)
      this.#emit('endpoint_dma_issue', traceEndpointDmaIssue, {
        endpoint: this.name,
        ticket: ticket.id,
        access: op.access,
        addr: op.addr,
        size,
        pasid,
      });
    this.#run(st);
    return ticket;
  }

  #checkPasid(pasid: number | undefined, privileged: boolean, exec: boolean): void {
    const dev = this.device;
    if (dev.busType === 'platform') {
      if (pasid !== undefined && pasid >= 2 ** (dev.pasidNumBits ?? 0))
        throw new ErrnoError('EINVAL', `${this.name}: PASID ${pasid} beyond pasid-num-bits`);
      return;
    }
    const cap = dev.pasidCap;
    if (pasid === undefined) {
      if (privileged || exec)
        throw new ErrnoError('EINVAL', `${this.name}: privileged/exec requests need a PASID prefix`);
      return;
    }
    if (cap === null || !cap.enabled) throw new ErrnoError('EINVAL', `${this.name}: PASID is not enabled`);
    if (pasid >= 2 ** cap.maxPasidWidth)
      throw new ErrnoError(
        'EINVAL',
        `${this.name}: PASID ${pasid} beyond Max PASID Width ${cap.maxPasidWidth}`,
      );
    if (exec && (cap.enabledFeatures & 0x02) === 0)
      throw new ErrnoError('EINVAL', `${this.name}: PASID Execute Permission is not enabled`);
    if (privileged && (cap.enabledFeatures & 0x04) === 0)
      throw new ErrnoError('EINVAL', `${this.name}: PASID Privileged Mode is not enabled`);
  }

  // ---- the operation state machine --------------------------------------------------------------

  #run(op: OpState): void {
    if (op.ticket.settled) return;
    if (this.atsEnabled) {
      this.#runAts(op);
      return;
    }
    if (this.atc.size !== 0) this.atc.clear(); // ATS off: cached translations are unusable
    while (op.offset < op.size) {
      const addr = op.addr + BigInt(op.offset);
      if (!this.#memRequest(op, addr, op.size - op.offset, false, addr)) return;
    }
    this.#complete(op);
  }

  #runAts(op: OpState): void {
    const stu = 1n << BigInt(this.stuShift);
    const need: AtcNeed = { write: op.access === 'write', exec: op.exec };
    const end = op.addr + BigInt(op.size);
    const chunks: Chunk[] = [];
    const missing: bigint[] = [];
    let cause: DmaFault | undefined;
    let cur = op.addr + BigInt(op.offset);
    while (cur < end) {
      let e = this.atc.lookup(op.pasid, op.privileged, cur);
      if (e !== undefined && atcPermits(e, need)) {
        this.#stats.atcHits++;
      } else {
        this.#stats.atcMisses++;
        const unit = cur & ~(stu - 1n);
        const c = this.#atsTranslate(op, unit);
        if (c.status !== 'success') {
          this.#fail(op, {
            kind: 'fault',
            reason: c.status === 'ur' ? 'unsupported-request' : 'completer-abort',
            addr: cur,
            detail: c.detail ?? `ATS Translation Completion ${c.status.toUpperCase()}`,
          });
          return;
        }
        e = c.read || c.write ? this.atc.insert(op.pasid, c) : undefined;
        if (e === undefined || !atcPermits(e, need)) {
          missing.push(unit);
          cause ??= {
            kind: 'fault',
            reason: c.read || c.write ? 'permission' : 'translation',
            addr: cur,
            detail: 'ATS Translation Completion grants no such access',
          };
          cur = unit + stu;
          continue;
        }
      }
      const chunkEnd = end < e.start + e.size ? end : e.start + e.size;
      chunks.push({ entry: e, start: cur, len: Number(chunkEnd - cur) });
      cur = chunkEnd;
    }
    if (cause !== undefined) {
      this.#pageRequest(op, missing, cause);
      return;
    }
    for (const ch of chunks) {
      const translated = !ch.entry.untranslatedOnly;
      const emitted = translated ? ch.entry.translated + (ch.start - ch.entry.start) : ch.start;
      if (!this.#memRequest(op, emitted, ch.len, translated, ch.start)) return;
    }
    this.#complete(op);
  }

  /** Validate a completion against the request; a malformed one counts as CA. */
  #atsTranslate(op: OpState, unit: bigint): AtsCompletion {
    this.#stats.atsRequests++;
    const req = {
      requesterId: this.requesterId,
      addr: unit,
      noWrite: false,
      exec: op.exec,
      privileged: op.privileged,
      ...(op.pasid === undefined ? {} : { pasid: op.pasid }),
    };
    let c = this.iommu.atsTranslate(req);
    if (c.status === 'success' && !wellFormed(c, unit))
      c = { status: 'ca', detail: 'malformed Translation Completion' };
    if (c.status !== 'success') this.#stats.atsErrors++;
    if (this.#record || traceEndpointAtsTranslate.enabled)
      this.#emit('endpoint_ats_translate', traceEndpointAtsTranslate, {
        endpoint: this.name,
        pasid: op.pasid,
        addr: unit,
        status: c.status,
        translated: c.status === 'success' ? c.translatedAddr : undefined,
        size: c.status === 'success' ? c.size : undefined,
        perm:
          c.status === 'success'
            ? `${c.read ? 'r' : '-'}${c.write ? 'w' : '-'}${c.exec ? 'x' : '-'}${c.untranslatedOnly ? 'u' : '-'}`
            : '',
      });
    return c;
  }

  /**
   * Send one memory request for `[offset, offset + len)` of the operation.
   * @returns `true` to go on with the next chunk; `false` when the operation now waits or failed
   */
  #memRequest(op: OpState, emitted: bigint, len: number, translated: boolean, input: bigint): boolean {
    const req = dmaRequest({
      requesterId: this.requesterId,
      pasid: op.pasid,
      addr: emitted,
      size: len,
      access: op.access,
      exec: op.exec,
      privileged: op.privileged,
      atsTranslated: translated,
    });
    const data = op.data === undefined ? undefined : op.data.subarray(op.offset, op.offset + len);
    this.#stats.memRequests++;
    if (translated) this.#stats.translatedRequests++;
    const outcome = this.iommu.dmaAccess(req, data);
    if (outcome.kind === 'completed') {
      this.#chunkDone(op, outcome.data, len);
      return true;
    }
    if (outcome.kind === 'fault') {
      this.#chunkFault(op, outcome, translated, input, len);
      return false;
    }
    // Stalled: wait for the IOMMU to resume or terminate the transaction.
    const pending = outcome.pending;
    const counters = ticketCounters(op.ticket);
    counters.stalls++;
    this.#stats.stalls++;
    if (this.#record || traceEndpointDmaStall.enabled)
      this.#emit('endpoint_dma_stall', traceEndpointDmaStall, {
        endpoint: this.name,
        ticket: op.ticket.id,
        tag: pending.tag,
        addr: emitted,
        phase: 'held',
      });
    pending.onSettled((o) => {
      if (this.#record || traceEndpointDmaStall.enabled)
        this.#emit('endpoint_dma_stall', traceEndpointDmaStall, {
          endpoint: this.name,
          ticket: op.ticket.id,
          tag: pending.tag,
          addr: emitted,
          phase: o.kind === 'completed' ? 'resumed' : 'terminated',
        });
      if (o.kind === 'fault') {
        this.#stats.stallsTerminated++;
        this.#fail(op, o);
        return;
      }
      this.#stats.stallsResumed++;
      this.#chunkDone(op, o.data, len);
      this.scheduler.spawn(() => this.#run(op), `${this.name}:dma-continue`);
    });
    return false;
  }

  #chunkDone(op: OpState, data: Uint8Array | undefined, len: number): void {
    if (op.out !== undefined && data !== undefined) op.out.set(data.subarray(0, len), op.offset);
    op.offset += len;
  }

  #chunkFault(op: OpState, fault: DmaFault, translated: boolean, input: bigint, len: number): void {
    if (!translated && PRI_TRIGGERS.has(fault.reason) && this.#pciPriCap()?.enabled) {
      const end = input + BigInt(len);
      const at = fault.addr >= input && fault.addr < end ? fault.addr : input;
      const stu = 1n << BigInt(this.stuShift);
      this.#pageRequest(op, [at & ~(stu - 1n)], fault);
      return;
    }
    this.#fail(op, fault);
  }

  #complete(op: OpState): void {
    if (op.ticket.settled) return;
    this.#stats.completed++;
    if (op.access === 'read') this.#stats.bytesRead += op.size;
    else this.#stats.bytesWritten += op.size;
    settleTicket(
      op.ticket,
      op.out === undefined ? { kind: 'completed' } : { kind: 'completed', data: op.out },
    );
    if (this.#record || traceEndpointDmaDone.enabled)
      this.#emit('endpoint_dma_done', traceEndpointDmaDone, {
        endpoint: this.name,
        ticket: op.ticket.id,
        ok: true,
        reason: undefined,
        now: this.scheduler.now,
      });
  }

  #fail(op: OpState, fault: DmaFault): void {
    if (op.ticket.settled) return;
    this.#stats.failed++;
    settleTicket(op.ticket, fault);
    if (this.#record || traceEndpointDmaDone.enabled)
      this.#emit('endpoint_dma_done', traceEndpointDmaDone, {
        endpoint: this.name,
        ticket: op.ticket.id,
        ok: false,
        reason: fault.reason,
        now: this.scheduler.now,
      });
  }

  // ---- PRI --------------------------------------------------------------------------------------

  #pciPriCap(): PciDevice['priCap'] {
    return this.device.busType === 'pci' ? this.device.priCap : null;
  }

  #pageRequest(op: OpState, pages: bigint[], cause: DmaFault): void {
    const cap = this.#pciPriCap();
    if (cap === null || !cap.enabled) {
      this.#fail(op, cause);
      return;
    }
    if (this.#rf) {
      this.#fail(op, {
        kind: 'fault',
        reason: 'pri-unavailable',
        addr: cause.addr,
        cause,
        detail: 'page requests stopped after a Response Failure',
      });
      return;
    }
    if (ticketCounters(op.ticket).priRounds >= this.maxPriRounds || cap.allocatedRequests < 1) {
      this.#fail(op, cause);
      return;
    }
    const w: PriWaiter = { op, pages, cause };
    if (this.#waiters.length === 0 && this.#trySendGroup(w)) return;
    this.#waiters.push(w);
    this.#stats.priCreditWaits++;
  }

  /** Send the waiter's group if credit and a PRG index are free. */
  #trySendGroup(w: PriWaiter): boolean {
    const cap = this.#pciPriCap();
    const alloc = cap?.allocatedRequests ?? 0;
    const n = Math.min(w.pages.length, alloc);
    if (n < 1 || this.#outstanding + n > alloc || this.#groups.size >= PRG_INDEX_COUNT) return false;
    let index = this.#nextPrgIndex;
    while (this.#groups.has(index)) index = (index + 1) % PRG_INDEX_COUNT;
    this.#nextPrgIndex = (index + 1) % PRG_INDEX_COUNT;
    const { op } = w;
    const group: PrGroup = { index, pasid: op.pasid, count: n, op, cause: w.cause };
    this.#groups.set(index, group);
    this.#outstanding += n;
    ticketCounters(op.ticket).priRounds++;
    this.#stats.prgSent++;
    const write = op.access === 'write';
    for (let i = 0; i < n; i++) {
      // A response may arrive synchronously; stop if the group is no longer outstanding.
      if (this.#groups.get(index) !== group) break;
      const last = i === n - 1;
      const msg: PageRequestMessage = {
        requesterId: this.requesterId,
        addr: w.pages[i] as bigint,
        read: !write,
        write,
        exec: op.pasid !== undefined && op.exec,
        privileged: op.pasid !== undefined && op.privileged,
        last,
        prgIndex: index,
        ...(op.pasid === undefined ? {} : { pasid: op.pasid }),
      };
      this.#stats.pageRequests++;
      if (this.#record || traceEndpointPageRequest.enabled)
        this.#emit('endpoint_page_request', traceEndpointPageRequest, {
          endpoint: this.name,
          pasid: op.pasid,
          prgIndex: index,
          addr: msg.addr,
          flags: `${msg.read ? 'r' : '-'}${msg.write ? 'w' : '-'}${msg.exec ? 'x' : '-'}${msg.privileged ? 'p' : '-'}${last ? 'l' : '-'}`,
        });
      this.iommu.pageRequest(msg);
    }
    return true;
  }

  #schedulePump(): void {
    if (this.#pumpScheduled || this.#waiters.length === 0) return;
    this.#pumpScheduled = true;
    this.scheduler.spawn(() => {
      this.#pumpScheduled = false;
      while (this.#waiters.length !== 0) {
        const w = this.#waiters[0] as PriWaiter;
        if (w.op.ticket.settled) {
          this.#waiters.shift();
          continue;
        }
        const cap = this.#pciPriCap();
        if (cap === null || !cap.enabled || this.#rf) {
          this.#waiters.shift();
          this.#fail(w.op, {
            kind: 'fault',
            reason: 'pri-unavailable',
            addr: w.cause.addr,
            cause: w.cause,
            detail: 'PRI disabled or stopped while waiting for credit',
          });
          continue;
        }
        if (!this.#trySendGroup(w)) break;
        this.#waiters.shift();
      }
    }, `${this.name}:pri-pump`);
  }

  /** Fail every outstanding group's and waiting operation (Response Failure, PRI reset). */
  #abandonAll(why: string): void {
    const ops = [...[...this.#groups.values()].map((g) => ({ op: g.op, cause: g.cause })), ...this.#waiters];
    this.#groups.clear();
    this.#waiters = [];
    this.#outstanding = 0;
    for (const { op, cause } of ops)
      this.#fail(op, { kind: 'fault', reason: 'pri-failure', addr: cause.addr, cause, detail: why });
  }

  /**
   * Receive a PRG Response Message (called by the IOMMU model). See the module documentation for
   * what each response code does.
   * @param msg - the response
   */
  prgResponse(msg: PrgResponseMessage): void {
    const g = this.#groups.get(msg.prgIndex);
    const pasidRequired = this.#pciPriCap()?.prgResponsePasidRequired ?? false;
    const expected = g !== undefined && (!pasidRequired || g.pasid === undefined || msg.pasid === g.pasid);
    if (this.#record || traceEndpointPrgResponse.enabled)
      this.#emit('endpoint_prg_response', traceEndpointPrgResponse, {
        endpoint: this.name,
        pasid: msg.pasid,
        prgIndex: msg.prgIndex,
        code: msg.code,
        expected,
      });
    if (!expected || g === undefined) {
      this.#uprgi = true;
      this.#stats.prgUnexpected++;
      return;
    }
    this.#groups.delete(g.index);
    this.#outstanding -= g.count;
    const code: PrgResponseCode = msg.code;
    if (code === PRG_RESPONSE.SUCCESS) {
      this.#stats.prgSuccess++;
      this.scheduler.spawn(() => this.#run(g.op), `${this.name}:pri-retry`);
    } else if (code === PRG_RESPONSE.INVALID_REQUEST) {
      this.#stats.prgInvalid++;
      this.#fail(g.op, {
        kind: 'fault',
        reason: 'pri-invalid',
        addr: g.cause.addr,
        cause: g.cause,
        detail: `PRG ${g.index}: Invalid Request`,
      });
    } else {
      this.#stats.prgFailure++;
      this.#rf = true;
      this.#fail(g.op, {
        kind: 'fault',
        reason: 'pri-failure',
        addr: g.cause.addr,
        cause: g.cause,
        detail: `PRG ${g.index}: Response Failure`,
      });
      this.#abandonAll('PRI stopped by a Response Failure');
    }
    this.#schedulePump();
  }

  // ---- ATS invalidation -------------------------------------------------------------------------

  /**
   * Receive an ATS Invalidate Request (called by the IOMMU model): drop the covered ATC entries,
   * then answer with an Invalidate Completion from a scheduler task (ITags received before it runs
   * are answered together). A malformed range (no terminating zero) is treated as "everything".
   * @param msg - the request
   */
  atsInvalidate(msg: AtsInvalidateRequest): void {
    this.#stats.atsInvalidations++;
    let range: AtsRange;
    try {
      range = atsDecodeRange(msg.addr, msg.s);
    } catch {
      range = atsDecodeRange(ATS_RANGE_ALL.addr, ATS_RANGE_ALL.s);
    }
    const dropped = this.atc.invalidate(range, msg.pasid, msg.global);
    this.#stats.atcEntriesInvalidated += dropped;
    if (this.#record || traceEndpointAtcInv.enabled)
      this.#emit('endpoint_atc_inv', traceEndpointAtcInv, {
        endpoint: this.name,
        pasid: msg.pasid,
        global: msg.global,
        start: range.start,
        size: range.size,
        itag: msg.itag,
        dropped,
      });
    if (++this.#queuedInvalidations > this.invalidateQueueDepth) this.#stats.atsInvalidateOverflows++;
    this.#pendingItags = (this.#pendingItags | (1 << (msg.itag & 31))) >>> 0;
    this.#armInvalidateCompletion();
  }

  #armInvalidateCompletion(): void {
    if (this.#invLatency === null || this.#invFlushArmed) return;
    this.#invFlushArmed = true;
    const flush = (): void => {
      this.#invFlushArmed = false;
      const vector = this.#pendingItags;
      this.#pendingItags = 0;
      this.#queuedInvalidations = 0;
      if (vector === 0) return;
      this.#stats.atsInvalidateCompletions++;
      this.iommu.atsInvalidateCompletion({
        requesterId: this.requesterId,
        itagVector: vector,
        completionCount: 1,
      });
    };
    if (this.#invLatency === 0) {
      this.scheduler.spawn(flush, `${this.name}:ats-inv-cpl`);
    } else {
      this.#invTimer ??= this.scheduler.createTimer(flush, `${this.name}:ats-inv-cpl`);
      this.#invTimer.mod(this.scheduler.now + this.#invLatency);
    }
  }

  // ---- tracing ----------------------------------------------------------------------------------

  #emit<R extends EndpointTraceRecord>(
    tp: R['tp'],
    point: { readonly enabled: boolean; emit(e: R['event']): void },
    event: R['event'],
  ): void {
    if (this.#record) this.events.push({ tp, event } as R);
    if (point.enabled) point.emit(event);
  }
}

function wellFormed(c: AtsCompletionSuccess, unit: bigint): boolean {
  const { size } = c;
  if (size < PAGE || size > 1n << 64n || (size & (size - 1n)) !== 0n) return false;
  if (c.untranslatedAddr % size !== 0n || c.translatedAddr % size !== 0n) return false;
  return unit >= c.untranslatedAddr && unit < c.untranslatedAddr + size;
}
