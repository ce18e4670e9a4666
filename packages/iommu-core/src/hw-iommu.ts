/**
 * The hardware-facing interface of an IOMMU model (what the SMMUv3 and VT-d models implement), the
 * endpoint side of it, and a pass-through "no IOMMU" model.
 *
 * @remarks
 * Direction of calls across the boundary:
 * - endpoint → IOMMU: {@link IommuHw.dmaAccess} (memory requests), {@link IommuHw.atsTranslate}
 *   (ATS Translation Requests), {@link IommuHw.pageRequest} (PRI Page Request Messages),
 *   {@link IommuHw.atsInvalidateCompletion} (ATS Invalidate Completions);
 * - IOMMU → endpoint: {@link EndpointPort.atsInvalidate} (ATS Invalidate Requests, from the
 *   IOMMU's ATC-invalidation commands) and {@link EndpointPort.prgResponse} (PRG Response Messages,
 *   from the driver's page responses).
 */

import { ErrnoError } from '@iommu-ts/base';
import { BusError, type PhysicalMemory } from '@iommu-ts/mm';
import type {
  AtsCompletion,
  AtsInvalidateCompletion,
  AtsInvalidateRequest,
  AtsTranslationRequest,
  DmaFault,
  DmaOutcome,
  DmaRequest,
  PageRequestMessage,
  PrgResponseMessage,
} from './dma-request.js';

/**
 * The endpoint side of the link: what an IOMMU model calls to reach a device's ATC and PRI logic.
 * Implemented by `Endpoint`.
 */
export interface EndpointPort {
  /** The requester ID (BDF) or StreamID the endpoint's requests carry. */
  readonly requesterId: number;
  /**
   * Deliver an ATS Invalidate Request. The endpoint drops the matching ATC entries and later
   * answers with {@link IommuHw.atsInvalidateCompletion} (possibly from a scheduler task, possibly
   * never for a broken device); it must not call back into the IOMMU synchronously.
   * @param msg - the request (wire range encoding, ITag)
   */
  atsInvalidate(msg: AtsInvalidateRequest): void;
  /**
   * Deliver a PRG Response Message.
   * @param msg - the response
   */
  prgResponse(msg: PrgResponseMessage): void;
}

/**
 * An IOMMU as seen from the devices behind it (PCIe root complex translation agent, SMMUv3 TBU,
 * VT-d remapping unit).
 *
 * @remarks
 * Every call is synchronous; anything that takes "time" (queues, interrupts, the driver's answer)
 * runs on base's `Scheduler` and comes back through {@link EndpointPort} or a
 * {@link PendingDma} settlement.
 */
export interface IommuHw {
  /** Name for traces, for example `'smmu0'`. */
  readonly name: string;
  /**
   * Translate and perform a memory request: walk caches and tables (untranslated requests) or
   * check that translated requests are allowed (`atsTranslated`), then read or write physical
   * memory.
   * @param req - the request
   * @param data - for writes, exactly `req.size` bytes; ignored for reads
   * @returns completion (reads: the bytes), fault, or pending (the transaction is stalled)
   * @throws ErrnoError `EINVAL` for a write without `req.size` bytes of data (a caller bug, not a
   *   DMA fault)
   */
  dmaAccess(req: DmaRequest, data?: Uint8Array): DmaOutcome;
  /**
   * Answer an ATS Translation Request.
   * @param req - the request
   * @returns a Translation Completion: success (possibly with R=W=0, "no access") or UR/CA
   */
  atsTranslate(req: AtsTranslationRequest): AtsCompletion;
  /**
   * Receive one PRI Page Request Message; the IOMMU records it in its PRI/page request queue (or
   * answers it itself, for example on overflow). The answer arrives later through
   * {@link EndpointPort.prgResponse}, possibly synchronously from inside this call.
   * @param msg - the message
   */
  pageRequest(msg: PageRequestMessage): void;
  /**
   * Receive an ATS Invalidate Completion for invalidations the IOMMU sent.
   * @param msg - the completion
   */
  atsInvalidateCompletion(msg: AtsInvalidateCompletion): void;
  /**
   * Connect an endpoint so the IOMMU can send it invalidations and PRG responses.
   * @param port - the endpoint
   * @throws ErrnoError `EEXIST` if another port already uses that requester ID
   */
  connectEndpoint(port: EndpointPort): void;
  /**
   * Disconnect an endpoint (hot-unplug). Unknown ports are ignored.
   * @param port - the endpoint
   */
  disconnectEndpoint(port: EndpointPort): void;
}

/**
 * Requester ID → {@link EndpointPort} table for IOMMU models: the "link" half of
 * {@link IommuHw.connectEndpoint}.
 */
export class EndpointPortTable {
  readonly #ports = new Map<number, EndpointPort>();

  /**
   * Add a port.
   * @param port - the endpoint
   * @throws ErrnoError `EEXIST` if a different port has the same requester ID
   */
  connect(port: EndpointPort): void {
    const old = this.#ports.get(port.requesterId);
    if (old !== undefined && old !== port)
      throw new ErrnoError('EEXIST', `requester ID 0x${port.requesterId.toString(16)} already connected`);
    this.#ports.set(port.requesterId, port);
  }

  /**
   * Remove a port if it is the one connected at its requester ID.
   * @param port - the endpoint
   */
  disconnect(port: EndpointPort): void {
    if (this.#ports.get(port.requesterId) === port) this.#ports.delete(port.requesterId);
  }

  /**
   * The port of a requester ID.
   * @param requesterId - BDF or StreamID
   */
  get(requesterId: number): EndpointPort | undefined {
    return this.#ports.get(requesterId);
  }

  /** Connected ports, in connection order. */
  ports(): EndpointPort[] {
    return [...this.#ports.values()];
  }

  /**
   * Send an ATS Invalidate Request to the function it names.
   * @param msg - the request
   * @returns `false` if no endpoint has that requester ID (the message is lost, as a posted request
   *   to an absent function would be)
   */
  sendAtsInvalidate(msg: AtsInvalidateRequest): boolean {
    const port = this.#ports.get(msg.requesterId);
    if (port === undefined) return false;
    port.atsInvalidate(msg);
    return true;
  }

  /**
   * Send a PRG Response Message to the function it names.
   * @param msg - the response
   * @returns `false` if no endpoint has that requester ID
   */
  sendPrgResponse(msg: PrgResponseMessage): boolean {
    const port = this.#ports.get(msg.requesterId);
    if (port === undefined) return false;
    port.prgResponse(msg);
    return true;
  }
}

/**
 * Perform a request's access on physical memory at `pa`: what every IOMMU model does after
 * translation. A `BusError` (from `@iommu-ts/mm`) becomes a `'bus'` fault.
 * @param memory - the RAM
 * @param pa - physical address of the first byte (u64; above 2^53 is a bus error)
 * @param req - the request (only `access`, `size` and `addr` are used)
 * @param data - write data, `req.size` bytes
 * @returns the completion or a `'bus'` fault reported at `req.addr`
 * @throws ErrnoError `EINVAL` for a write without `req.size` bytes
 */
export function accessPhysicalMemory(
  memory: PhysicalMemory,
  pa: bigint,
  req: Pick<DmaRequest, 'access' | 'size' | 'addr'>,
  data?: Uint8Array,
): DmaOutcome {
  if (req.access === 'write' && (data === undefined || data.length !== req.size))
    throw new ErrnoError('EINVAL', `write of ${req.size} bytes needs exactly that much data`);
  if (pa < 0n || pa + BigInt(req.size) > BigInt(Number.MAX_SAFE_INTEGER)) return busFault(req.addr, pa);
  try {
    if (req.access === 'read') return { kind: 'completed', data: memory.readBytes(Number(pa), req.size) };
    memory.writeBytes(Number(pa), data as Uint8Array);
    return { kind: 'completed' };
  } catch (err) {
    if (err instanceof BusError) return busFault(req.addr, pa);
    throw err;
  }
}

function busFault(addr: bigint, pa: bigint): DmaFault {
  return { kind: 'fault', reason: 'bus', addr, detail: `no RAM at physical address 0x${pa.toString(16)}` };
}

/** Counters of a {@link PassthroughIommuHw}. */
export interface PassthroughIommuHwStats {
  /** Memory requests performed or faulted. */
  readonly dmaRequests: number;
  /** Requests that faulted (bus errors). */
  readonly faults: number;
  /** ATS Translation Requests (all answered UR). */
  readonly atsRequests: number;
  /** Page Request Messages received (dropped). */
  readonly pageRequests: number;
}

/**
 * No IOMMU: DMA addresses are physical addresses and go straight to `PhysicalMemory` (from `@iommu-ts/mm`). For
 * tests and for devices behind no IOMMU.
 *
 * @remarks
 * ATS Translation Requests complete with UR (no translation agent); Page Request Messages are
 * dropped (there is nobody to answer them, so a PRI-using endpoint would wait forever); ATS
 * Invalidate Completions are ignored. Endpoints may connect but never receive anything.
 */
export class PassthroughIommuHw implements IommuHw {
  /** {@inheritDoc IommuHw.name} */
  readonly name: string;
  /** The RAM accessed. */
  readonly memory: PhysicalMemory;
  readonly #ports = new EndpointPortTable();
  #dma = 0;
  #faults = 0;
  #ats = 0;
  #prq = 0;

  /**
   * @param memory - the RAM DMA reaches
   * @param name - name for traces; default `'no-iommu'`
   */
  constructor(memory: PhysicalMemory, name = 'no-iommu') {
    this.memory = memory;
    this.name = name;
  }

  /** Counters since construction. */
  get stats(): PassthroughIommuHwStats {
    return { dmaRequests: this.#dma, faults: this.#faults, atsRequests: this.#ats, pageRequests: this.#prq };
  }

  /** {@inheritDoc IommuHw.dmaAccess} */
  dmaAccess(req: DmaRequest, data?: Uint8Array): DmaOutcome {
    this.#dma++;
    const out = accessPhysicalMemory(this.memory, req.addr, req, data);
    if (out.kind === 'fault') this.#faults++;
    return out;
  }

  /** Always UR: there is no translation agent. */
  atsTranslate(_req: AtsTranslationRequest): AtsCompletion {
    this.#ats++;
    return { status: 'ur', detail: 'no IOMMU: ATS is not supported' };
  }

  /** Dropped (counted). */
  pageRequest(_msg: PageRequestMessage): void {
    this.#prq++;
  }

  /** Ignored: this model never sends invalidations. */
  atsInvalidateCompletion(_msg: AtsInvalidateCompletion): void {}

  /** {@inheritDoc IommuHw.connectEndpoint} */
  connectEndpoint(port: EndpointPort): void {
    this.#ports.connect(port);
  }

  /** {@inheritDoc IommuHw.disconnectEndpoint} */
  disconnectEndpoint(port: EndpointPort): void {
    this.#ports.disconnect(port);
  }
}
