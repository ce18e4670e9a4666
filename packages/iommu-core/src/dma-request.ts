/**
 * The messages that cross the hardware boundary between a DMA-capable endpoint and an IOMMU model:
 * DMA requests and their outcomes, PCIe ATS translation requests and completions, ATS invalidation
 * requests and completions, PRI page requests and PRG responses.
 *
 * @remarks
 * Mirrors the transaction layer of PCI Express (memory requests; the ATS chapter: Translation
 * Request/Completion, Invalidate Request/Completion; the PRI chapter: Page Request Message and PRG
 * Response Message) and the equivalent inputs of an Arm SMMUv3 (StreamID, SubstreamID, RnW, InD,
 * PnU, ATS-translated flag). The kernel side of these capabilities is drivers/pci/ats.c (see
 * `ats.ts`).
 */

import { ErrnoError } from '@iommu-ts/base';

// ---- DMA requests -----------------------------------------------------------------------------

/** Direction of a DMA access: the device reads memory (`'read'`) or writes it (`'write'`). */
export type DmaAccessKind = 'read' | 'write';

/**
 * One DMA transaction as it reaches the IOMMU: a PCIe memory read/write TLP (with an optional PASID
 * TLP prefix) or an Arm platform device's AXI transaction tagged with StreamID/SubstreamID.
 *
 * @remarks
 * The access may cross page boundaries; the IOMMU translates every page it touches. `size` is in
 * bytes and at least 1.
 */
export interface DmaRequest {
  /**
   * Requester ID: the PCI BDF (`bus << 8 | devfn`, 16 bits) or the platform device's StreamID (up to
   * 32 bits). What the IOMMU uses to find the device's context/stream table entry.
   */
  readonly requesterId: number;
  /**
   * PASID (SubstreamID) from the PASID TLP prefix, 0 … 2^20 − 1; absent for a request without a
   * prefix (the "RID" address space, Linux `IOMMU_NO_PASID`).
   */
  readonly pasid?: number;
  /**
   * The address the device emits: an IOVA (untranslated), or a physical address when
   * {@link DmaRequest.atsTranslated} is set. u64.
   */
  readonly addr: bigint;
  /** Length of the access in bytes, ≥ 1. */
  readonly size: number;
  /** Read or write. */
  readonly access: DmaAccessKind;
  /**
   * Instruction fetch (PCIe "Execute Requested" in the PASID prefix; SMMU InD = instruction). Only
   * meaningful for reads.
   */
  readonly exec: boolean;
  /** Privileged (supervisor) access (PCIe "Privileged Mode Requested"; SMMU PnU = privileged). */
  readonly privileged: boolean;
  /**
   * The address was already translated by the device's ATC (PCIe AT field = Translated): the IOMMU
   * checks that the device may send translated traffic (SMMU STE.EATS / VT-d TT=01 or DTE) and then
   * accesses physical memory without a table walk.
   */
  readonly atsTranslated: boolean;
}

/** Options of {@link dmaRequest}: a {@link DmaRequest} with defaults for the flags. */
export interface DmaRequestInit {
  /** See {@link DmaRequest.requesterId}. */
  readonly requesterId: number;
  /** See {@link DmaRequest.pasid}; omit for a request without PASID. */
  readonly pasid?: number | undefined;
  /** See {@link DmaRequest.addr}. */
  readonly addr: bigint;
  /** See {@link DmaRequest.size}. */
  readonly size: number;
  /** See {@link DmaRequest.access}. */
  readonly access: DmaAccessKind;
  /** Default `false`. */
  readonly exec?: boolean;
  /** Default `false`. */
  readonly privileged?: boolean;
  /** Default `false`. */
  readonly atsTranslated?: boolean;
}

/** Largest PASID value plus one (PCIe PASIDs are 20 bits). */
export const PCI_PASID_LIMIT = 1 << 20;

/**
 * Build and validate a {@link DmaRequest}.
 * @param init - the fields; flags default to `false`
 * @returns a frozen request
 * @throws ErrnoError `EINVAL` for a requester ID outside 0 … 2^32 − 1, a PASID outside
 *   0 … 2^20 − 1, an address outside u64, a size that is not a positive integer, an access that
 *   runs past 2^64, or `exec` on a write
 */
export function dmaRequest(init: DmaRequestInit): DmaRequest {
  const { requesterId, pasid, addr, size, access } = init;
  if (!Number.isInteger(requesterId) || requesterId < 0 || requesterId > 0xffff_ffff)
    throw new ErrnoError('EINVAL', `bad requester ID ${requesterId}`);
  if (pasid !== undefined && (!Number.isInteger(pasid) || pasid < 0 || pasid >= PCI_PASID_LIMIT))
    throw new ErrnoError('EINVAL', `bad PASID ${pasid}`);
  if (!Number.isSafeInteger(size) || size < 1) throw new ErrnoError('EINVAL', `bad DMA size ${size}`);
  if (addr < 0n || addr + BigInt(size) > 1n << 64n)
    throw new ErrnoError('EINVAL', `DMA address 0x${addr.toString(16)} + ${size} is outside u64`);
  const exec = init.exec ?? false;
  if (exec && access === 'write') throw new ErrnoError('EINVAL', 'an instruction fetch cannot write');
  const req: DmaRequest =
    pasid === undefined
      ? {
          requesterId,
          addr,
          size,
          access,
          exec,
          privileged: init.privileged ?? false,
          atsTranslated: init.atsTranslated ?? false,
        }
      : {
          requesterId,
          pasid,
          addr,
          size,
          access,
          exec,
          privileged: init.privileged ?? false,
          atsTranslated: init.atsTranslated ?? false,
        };
  return Object.freeze(req);
}

/** Permission bit: read (same value as Linux `IOMMU_FAULT_PERM_READ`). */
export const DMA_PERM_READ = 1 << 0;
/** Permission bit: write (`IOMMU_FAULT_PERM_WRITE`). */
export const DMA_PERM_WRITE = 1 << 1;
/** Permission bit: execute (`IOMMU_FAULT_PERM_EXEC`). */
export const DMA_PERM_EXEC = 1 << 2;
/** Permission bit: privileged (`IOMMU_FAULT_PERM_PRIV`). */
export const DMA_PERM_PRIV = 1 << 3;

/**
 * The permissions a request needs, as `IOMMU_FAULT_PERM_*` bits (include/linux/iommu.h): READ or
 * WRITE, plus EXEC for an instruction fetch and PRIV for a privileged access. This is the `perm`
 * an IOMMU model reports in a page-request fault.
 * @param req - the request
 * @returns a combination of {@link DMA_PERM_READ}, {@link DMA_PERM_WRITE}, {@link DMA_PERM_EXEC},
 *   {@link DMA_PERM_PRIV}
 */
export function dmaRequestPerm(req: Pick<DmaRequest, 'access' | 'exec' | 'privileged'>): number {
  return (
    (req.access === 'write' ? DMA_PERM_WRITE : DMA_PERM_READ) |
    (req.exec ? DMA_PERM_EXEC : 0) |
    (req.privileged ? DMA_PERM_PRIV : 0)
  );
}

// ---- Outcomes ---------------------------------------------------------------------------------

/** The access completed. For a read, `data` holds exactly `size` bytes; for a write it is absent. */
export interface DmaCompletion {
  /** Discriminant. */
  readonly kind: 'completed';
  /** The bytes read (reads only). */
  readonly data?: Uint8Array;
}

/**
 * Why a DMA access failed.
 *
 * - `'translation'`: no valid translation (SMMU F_TRANSLATION, VT-d "not present" reasons)
 * - `'permission'`: a translation exists but does not allow this access (F_PERMISSION)
 * - `'address-size'`: input or output address too large (F_ADDR_SIZE, VT-d address width)
 * - `'access-flag'`: Access flag clear and not updated by hardware (F_ACCESS)
 * - `'bus'`: the resulting physical access hit no RAM (bus/completer abort; mm `BusError`), or a
 *   table walk did (F_WALK_EABT)
 * - `'bad-requester'`: unknown or invalid requester/stream (C_BAD_STREAMID, C_BAD_STE, VT-d root or
 *   context entry not present)
 * - `'bad-pasid'`: PASID not allowed or not configured (C_BAD_SUBSTREAMID, PASID entry not present)
 * - `'blocked'`: the device's configuration aborts all DMA (STE Config=abort, blocked domain)
 * - `'config'`: malformed translation configuration (C_BAD_CD, reserved bits in VT-d entries)
 * - `'ats-not-allowed'`: ATS-translated traffic or an ATS request the IOMMU refuses
 *   (F_TRANSL_FORBIDDEN, F_BAD_ATS_TREQ, VT-d TT≠01)
 * - `'terminated'`: a stalled transaction was terminated by software (SMMU CMD_RESUME abort,
 *   CMD_STALL_TERM)
 * - `'unsupported-request'` / `'completer-abort'`: the ATS Translation Completion status UR / CA
 * - `'pri-invalid'`: the endpoint's page request was answered "Invalid Request" (endpoint-side)
 * - `'pri-failure'`: the endpoint's page request was answered "Response Failure", or PRI stopped
 *   (endpoint-side)
 * - `'pri-unavailable'`: the endpoint needed a page request but PRI is disabled or failed
 *   (endpoint-side; the underlying fault is in {@link DmaFault.cause})
 */
export type DmaFaultReason =
  | 'translation'
  | 'permission'
  | 'address-size'
  | 'access-flag'
  | 'bus'
  | 'bad-requester'
  | 'bad-pasid'
  | 'blocked'
  | 'config'
  | 'ats-not-allowed'
  | 'terminated'
  | 'unsupported-request'
  | 'completer-abort'
  | 'pri-invalid'
  | 'pri-failure'
  | 'pri-unavailable';

/**
 * The access was aborted. The device sees an error completion (PCIe UR/CA, AXI SLVERR/DECERR);
 * what the IOMMU recorded (event, fault record) is the IOMMU model's business.
 */
export interface DmaFault {
  /** Discriminant. */
  readonly kind: 'fault';
  /** Why; see {@link DmaFaultReason}. */
  readonly reason: DmaFaultReason;
  /** The input address that faulted (the first faulting byte or its page). */
  readonly addr: bigint;
  /**
   * Architecture-specific code, for example the SMMU event name `'F_TRANSLATION'` or the VT-d fault
   * reason `0x06`; absent when the model has none.
   */
  readonly code?: string | number;
  /** Free-form explanation for logs and test failures. */
  readonly detail?: string;
  /** For endpoint-side reasons, the IOMMU fault that started the page request, if any. */
  readonly cause?: DmaFault;
}

/**
 * The IOMMU holds the request: a stalled transaction (SMMU stall model, CD.S=1 / STE.S2S=1). The
 * IOMMU settles {@link DmaPendingOutcome.pending} later, when software resumes (retry) or
 * terminates it.
 */
export interface DmaPendingOutcome {
  /** Discriminant. */
  readonly kind: 'pending';
  /** The held transaction. */
  readonly pending: PendingDma;
}

/** What {@link IommuHw.dmaAccess} returns. */
export type DmaOutcome = DmaCompletion | DmaFault | DmaPendingOutcome;

/** A final outcome: completed or faulted. */
export type DmaSettledOutcome = DmaCompletion | DmaFault;

/** Listener of {@link PendingDma.onSettled}. */
export type PendingDmaListener = (outcome: DmaSettledOutcome) => void;

let nextPendingId = 1;

/**
 * A DMA transaction held by the IOMMU (stalled), settled later by the IOMMU model.
 *
 * @remarks
 * No Promises: the IOMMU calls {@link PendingDma.settle} from whatever task processes the
 * software's answer (a command-queue consumer on base's `Scheduler`), and the listeners run
 * synchronously inside that call. An IOMMU that retries a stalled transaction re-translates it and
 * settles with the new outcome; one that terminates it settles with a fault (reason
 * `'terminated'`).
 */
export class PendingDma {
  /** A process-unique id, for traces. */
  readonly id: number;
  /** The held request. */
  readonly request: DmaRequest;
  /** Bytes to write, for a held write; absent for reads. */
  readonly data: Uint8Array | undefined;
  /** The IOMMU's tag for this transaction (SMMU STAG, 16 bits); the IOMMU's choice. */
  readonly tag: number;
  #outcome: DmaSettledOutcome | undefined;
  #listeners: PendingDmaListener[] = [];

  /**
   * @param request - the held request
   * @param data - the write data (kept so a retry can still perform the write)
   * @param tag - the IOMMU's tag for it (for example the SMMU STAG)
   */
  constructor(request: DmaRequest, data: Uint8Array | undefined, tag: number) {
    this.id = nextPendingId++;
    this.request = request;
    this.data = data;
    this.tag = tag;
  }

  /** Whether {@link PendingDma.settle} was called. */
  get settled(): boolean {
    return this.#outcome !== undefined;
  }

  /** The final outcome, once settled. */
  get outcome(): DmaSettledOutcome | undefined {
    return this.#outcome;
  }

  /**
   * Register a listener for the final outcome. If already settled, the listener runs at once.
   * @param listener - called exactly once with the outcome
   */
  onSettled(listener: PendingDmaListener): void {
    if (this.#outcome !== undefined) listener(this.#outcome);
    else this.#listeners.push(listener);
  }

  /**
   * Settle the transaction (called by the IOMMU model): deliver `outcome` to every listener, in
   * registration order.
   * @param outcome - completion (for a read, with the bytes) or fault
   * @throws ErrnoError `EINVAL` if already settled
   */
  settle(outcome: DmaSettledOutcome): void {
    if (this.#outcome !== undefined) throw new ErrnoError('EINVAL', `pending DMA ${this.id} already settled`);
    this.#outcome = outcome;
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const l of listeners) l(outcome);
  }
}

/**
 * An Error carrying a {@link DmaFault}, thrown by the endpoint's synchronous helpers.
 * `code` is `EFAULT`, or `EIO` for the PRI-related reasons.
 */
export class DmaFaultError extends ErrnoError {
  /** The fault. */
  readonly fault: DmaFault;

  /** @param fault - the fault being reported */
  constructor(fault: DmaFault) {
    const pri = fault.reason.startsWith('pri-');
    super(
      pri ? 'EIO' : 'EFAULT',
      `DMA fault (${fault.reason}) at 0x${fault.addr.toString(16)}${fault.detail ? `: ${fault.detail}` : ''}`,
    );
    this.name = 'DmaFaultError';
    this.fault = fault;
  }
}

// ---- ATS translation (PCIe ATS: Translation Request / Translation Completion) -------------------

/**
 * A PCIe ATS Translation Request for one translation unit: the device asks the IOMMU (translation
 * agent) for the translation of `addr`.
 */
export interface AtsTranslationRequest {
  /** Requester ID (BDF). */
  readonly requesterId: number;
  /** PASID prefix, if any. */
  readonly pasid?: number;
  /** Untranslated address; the IOMMU answers for the naturally aligned range containing it. u64. */
  readonly addr: bigint;
  /** "No Write" (NW): the device asks for a read-only translation (VT-d ECAP.NWFS). */
  readonly noWrite: boolean;
  /** "Execute Requested" (needs a PASID prefix). */
  readonly exec: boolean;
  /** "Privileged Mode Requested" (needs a PASID prefix). */
  readonly privileged: boolean;
}

/**
 * A successful ATS Translation Completion. `read === write === false` means "no access": the page
 * is not mapped or the request is not allowed; a PRI-capable function may then send a page request.
 *
 * @remarks
 * The wire format carries the size as low-order one bits in the translated address plus the S bit;
 * here it is decoded: `untranslatedAddr` and `translatedAddr` are the bases of a naturally aligned
 * range of `size` bytes (a power of two, at least 4 KiB, at least the STU).
 */
export interface AtsCompletionSuccess {
  /** Completion status Successful Completion. */
  readonly status: 'success';
  /** Base of the translated (untranslated-address) range, aligned to `size`. u64. */
  readonly untranslatedAddr: bigint;
  /** Base of the physical range, aligned to `size`. Meaningless when R=W=0. u64. */
  readonly translatedAddr: bigint;
  /** Range size in bytes: a power of two ≥ 4096 (2^64 for "everything"). */
  readonly size: bigint;
  /** R: reads allowed. */
  readonly read: boolean;
  /** W: writes allowed. */
  readonly write: boolean;
  /** Exe: instruction fetches allowed (PASID-prefixed requests only). */
  readonly exec: boolean;
  /** Priv: the translation is for privileged-mode accesses. */
  readonly privileged: boolean;
  /** U: the device must use untranslated requests for this range (never a translated address). */
  readonly untranslatedOnly: boolean;
  /** Global: the translation is valid for every PASID of the function. */
  readonly global: boolean;
  /** N: accesses through the translation should be non-snooped. */
  readonly noSnoop: boolean;
}

/** A failed ATS Translation Completion: Unsupported Request (UR) or Completer Abort (CA). */
export interface AtsCompletionError {
  /** `'ur'`: ATS not supported/allowed for this function; `'ca'`: the translation agent failed. */
  readonly status: 'ur' | 'ca';
  /** Free-form explanation (for example the SMMU event the IOMMU recorded). */
  readonly detail?: string;
}

/** What {@link IommuHw.atsTranslate} returns. */
export type AtsCompletion = AtsCompletionSuccess | AtsCompletionError;

// ---- ATS invalidation (PCIe ATS: Invalidate Request / Invalidate Completion) -------------------

/**
 * A PCIe ATS Invalidate Request message from the IOMMU to a function's ATC.
 *
 * @remarks
 * `addr` and `s` are the wire encoding (PCIe ATS "Untranslated Address" field and S bit): S=0
 * invalidates the 4 KiB page at `addr`; S=1 encodes the size in the low-order one bits from bit 12
 * upward (see `atsDecodeRange` in ats-range.ts). `0x7fff_ffff_ffff_f000` with S=1 covers everything.
 */
export interface AtsInvalidateRequest {
  /** Requester ID of the target function. */
  readonly requesterId: number;
  /** PASID prefix: invalidate only that PASID's translations (plus Global ones). */
  readonly pasid?: number;
  /** Global Invalidate bit (with a PASID prefix): all PASIDs. */
  readonly global: boolean;
  /** Encoded untranslated address (bits 63:12; bits 11:0 ignored). u64. */
  readonly addr: bigint;
  /** The S (size) bit. */
  readonly s: boolean;
  /** Invalidation tag (ITag), 0 … 31, echoed in the completion's ITag vector. */
  readonly itag: number;
}

/**
 * A PCIe ATS Invalidate Completion message from the function back to the IOMMU: the ATC no longer
 * holds, and no in-flight request uses, any translation the listed invalidations covered.
 */
export interface AtsInvalidateCompletion {
  /** Requester ID of the answering function. */
  readonly requesterId: number;
  /** Bit i set: the invalidation with ITag i is complete (32-bit vector). */
  readonly itagVector: number;
  /** Completion Count (CC): how many completions the function sends for these requests (1 here). */
  readonly completionCount: number;
}

// ---- PRI (PCIe Page Request Interface) ---------------------------------------------------------

/**
 * One PCIe Page Request Message: the function asks the host to make one page available.
 * Several messages with the same `prgIndex` form a page request group (PRG); the last carries
 * `last` (L). A Stop Marker is `last` with `read === write === false`.
 */
export interface PageRequestMessage {
  /** Requester ID (BDF). */
  readonly requesterId: number;
  /** PASID prefix, if any. */
  readonly pasid?: number;
  /** Page address (4 KiB aligned). u64. */
  readonly addr: bigint;
  /** R: read access requested. */
  readonly read: boolean;
  /** W: write access requested. */
  readonly write: boolean;
  /** Execute Requested (PASID prefix). */
  readonly exec: boolean;
  /** Privileged Mode Requested (PASID prefix). */
  readonly privileged: boolean;
  /** L: last request of the group. */
  readonly last: boolean;
  /** Page Request Group Index, 0 … 511. */
  readonly prgIndex: number;
}

/**
 * PRG Response Message response codes (PCIe PRI): Success 0b0000, Invalid Request 0b0001,
 * Response Failure 0b1111. VT-d's page group response uses these values; Linux's
 * `enum iommu_page_response_code` numbers them 0, 1, 2 (see {@link prgResponseCodeFromIommu}).
 */
export const PRG_RESPONSE = Object.freeze({
  /** All pages of the group are available: retry the translation. */
  SUCCESS: 0x0,
  /** At least one page cannot be made available: do not retry, fail the access. */
  INVALID_REQUEST: 0x1,
  /** Catastrophic error: the function disables its page requests (PRI status RF). */
  RESPONSE_FAILURE: 0xf,
});

/** One of the {@link PRG_RESPONSE} values. */
export type PrgResponseCode = (typeof PRG_RESPONSE)[keyof typeof PRG_RESPONSE];

/**
 * Convert Linux's `enum iommu_page_response_code` (SUCCESS 0, INVALID 1, FAILURE 2) to the PCIe
 * response code.
 * @param code - 0, 1 or 2
 * @returns the {@link PRG_RESPONSE} value
 * @throws ErrnoError `EINVAL` for another value
 */
export function prgResponseCodeFromIommu(code: number): PrgResponseCode {
  switch (code) {
    case 0:
      return PRG_RESPONSE.SUCCESS;
    case 1:
      return PRG_RESPONSE.INVALID_REQUEST;
    case 2:
      return PRG_RESPONSE.RESPONSE_FAILURE;
    default:
      throw new ErrnoError('EINVAL', `bad iommu_page_response_code ${code}`);
  }
}

/** A PCIe PRG Response Message from the host (through the IOMMU) to the function. */
export interface PrgResponseMessage {
  /** Requester ID of the function being answered. */
  readonly requesterId: number;
  /** PASID prefix; required when the function's PRI status says "PRG Response PASID Required". */
  readonly pasid?: number;
  /** The group's index, 0 … 511. */
  readonly prgIndex: number;
  /** The response code. */
  readonly code: PrgResponseCode;
}
