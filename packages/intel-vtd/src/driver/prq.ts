/**
 * The page request queue as the Linux driver runs it (drivers/iommu/intel/prq.c:
 * `intel_iommu_enable_prq`, `intel_iommu_finish_prq`, `prq_event_thread`, `handle_bad_prq_event`,
 * `intel_prq_report`, `intel_iommu_page_response`; digest §5): set-up, the threaded handler that
 * validates each request and reports it to io-pgfault, and the page group responses.
 */

import { IrqReturn } from '@iommu-ts/base';
import {
  iommuReportDeviceFault,
  iopfQueueAlloc,
  iopfQueueDiscardPartial,
  iopfQueueFree,
} from '@iommu-ts/io-pgfault';
import {
  type Device,
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
} from '@iommu-ts/iommu-core';
import type { IntelIommu } from './intel-iommu.js';
import { qiDescPgrpResp, qiSubmitSync } from './qi.js';
import {
  DMA_FECTL_IM,
  DMA_PRS_PPR,
  DMA_PRS_PRO,
  DMAR_PECTL_REG,
  DMAR_PQA_REG,
  DMAR_PQH_REG,
  DMAR_PQT_REG,
  DMAR_PRS_REG,
  PRQ_DESC_SIZE,
  PRQ_ORDER,
  PRQ_RING_MASK,
  QI_RESP_INVALID,
} from './regs.js';

/** A decoded page request descriptor (`struct page_req_dsc`, digest §5.1). */
export interface PageReqDsc {
  /** Raw word 0. */
  readonly qw0: bigint;
  /** Raw word 1. */
  readonly qw1: bigint;
  /** PASID present (qw0 bit 8). */
  readonly pasidPresent: boolean;
  /** Requester ID (qw0 bits 31:16). */
  readonly rid: number;
  /** PASID (qw0 bits 51:32). */
  readonly pasid: number;
  /** Execute requested (qw0 bit 52). */
  readonly exeReq: boolean;
  /** Privileged mode requested (qw0 bit 53). */
  readonly pmReq: boolean;
  /** Read requested (qw1 bit 0). */
  readonly rdReq: boolean;
  /** Write requested (qw1 bit 1). */
  readonly wrReq: boolean;
  /** Last page in group (qw1 bit 2). */
  readonly lpig: boolean;
  /** PRG index (qw1 bits 11:3). */
  readonly prgIndex: number;
  /** Page address (qw1 bits 63:12, shifted back into place). */
  readonly addr: bigint;
}

/**
 * Decode a page request descriptor's first two words.
 * @param qw0 - word 0
 * @param qw1 - word 1
 * @returns the fields
 */
export function decodePageReqDsc(qw0: bigint, qw1: bigint): PageReqDsc {
  const b = (v: bigint, n: number): boolean => ((v >> BigInt(n)) & 1n) === 1n;
  return {
    qw0,
    qw1,
    pasidPresent: b(qw0, 8),
    rid: Number((qw0 >> 16n) & 0xffffn),
    pasid: Number((qw0 >> 32n) & 0xfffffn),
    exeReq: b(qw0, 52),
    pmReq: b(qw0, 53),
    rdReq: b(qw1, 0),
    wrReq: b(qw1, 1),
    lpig: b(qw1, 2),
    prgIndex: Number((qw1 >> 3n) & 0x1ffn),
    addr: qw1 & ~0xfffn,
  };
}

/**
 * Whether an address is canonical for a CPU virtual-address width (`is_canonical_address`).
 * @param addr - the address
 * @param vaBits - CPU virtual-address bits (48 for 4-level paging, 57 for 5-level)
 * @returns whether bits 63…vaBits−1 are all equal
 */
export function isCanonicalAddress(addr: bigint, vaBits = 48): boolean {
  const top = addr >> BigInt(vaBits - 1);
  return top === 0n || top === (1n << BigInt(64 - vaBits + 1)) - 1n;
}

/**
 * Set up the page request queue (`intel_iommu_enable_prq`): 16 pages, the IOPF queue
 * `<name>-iopfq`, the threaded PRQ interrupt, PQH = PQT = 0, PQA = base | PRQ_ORDER.
 * @param iommu - the unit
 * @throws `ErrnoError` `ENOMEM` when the queue cannot be allocated
 */
export function intelEnablePrq(iommu: IntelIommu): void {
  if (iommu.prq !== 0) return;
  iommu.prq = iommu.memory.allocPages(PRQ_ORDER, { zero: true });
  iommu.iopfQueue = iopfQueueAlloc(`${iommu.name}-iopfq`, { scheduler: iommu.scheduler });
  const line = iommu.irqs.prq;
  if (line !== undefined) {
    line.requestIrq(null, { name: `${iommu.name}-prq`, threadFn: () => prqEventThread(iommu) });
    iommu.mmio.writel(DMAR_PECTL_REG, 0);
  }
  iommu.mmio.writeq(DMAR_PQH_REG, 0n);
  iommu.mmio.writeq(DMAR_PQT_REG, 0n);
  iommu.mmio.writeq(DMAR_PQA_REG, BigInt(iommu.prq) | BigInt(PRQ_ORDER));
}

/**
 * Tear the page request queue down (`intel_iommu_finish_prq`): PQH = PQT = PQA = 0, mask the
 * event, free the IOPF queue and the pages.
 * @param iommu - the unit
 */
export function intelFinishPrq(iommu: IntelIommu): void {
  if (iommu.prq === 0) return;
  iommu.mmio.writeq(DMAR_PQH_REG, 0n);
  iommu.mmio.writeq(DMAR_PQT_REG, 0n);
  iommu.mmio.writeq(DMAR_PQA_REG, 0n);
  iommu.mmio.writel(DMAR_PECTL_REG, DMA_FECTL_IM);
  iopfQueueFree(iommu.iopfQueue);
  iommu.iopfQueue = null;
  iommu.memory.freePages(iommu.prq, PRQ_ORDER);
  iommu.prq = 0;
}

/**
 * Answer a malformed request (`handle_bad_prq_event`): log it and, when it was the last of its
 * group, send a page group response with `result`.
 * @param iommu - the unit
 * @param req - the request
 * @param result - response code (Invalid Request)
 */
function handleBadPrqEvent(iommu: IntelIommu, req: PageReqDsc, result: number): void {
  const h = (v: bigint): string => v.toString(16).padStart(8, '0');
  iommu.logMessage('warn', `DMAR: IOMMU: ${iommu.name}: Invalid page request: ${h(req.qw0)} ${h(req.qw1)}`);
  if (!req.lpig) return;
  qiSubmitSync(iommu, [qiDescPgrpResp(req.rid, req.pasidPresent, req.pasid, result, req.prgIndex)]);
  iommu.stats.pageResponses++;
}

/**
 * The io-pgfault event of a page request (`intel_prq_report`).
 * @param req - the request
 * @returns the fault: address, PASID, group, permissions, LAST_PAGE, PASID_VALID and
 *   RESPONSE_NEEDS_PASID when a PASID is present; `privateData` = [qw0, qw1]
 */
export function intelPrqFault(req: PageReqDsc): IommuFault {
  let perm = 0;
  if (req.rdReq) perm |= IOMMU_FAULT_PERM_READ;
  if (req.wrReq) perm |= IOMMU_FAULT_PERM_WRITE;
  if (req.exeReq) perm |= IOMMU_FAULT_PERM_EXEC;
  if (req.pmReq) perm |= IOMMU_FAULT_PERM_PRIV;
  let flags = 0;
  if (req.lpig) flags |= IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE;
  if (req.pasidPresent) flags |= IOMMU_FAULT_PAGE_REQUEST_PASID_VALID | IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID;
  return {
    type: IommuFaultType.PAGE_REQ,
    prm: {
      flags,
      pasid: req.pasid,
      grpid: req.prgIndex,
      perm,
      addr: req.addr,
      privateData: [req.qw0, req.qw1],
    },
  };
}

/**
 * The page request thread (`prq_event_thread`, digest §5.3): clear PRS.PPR first, then handle
 * every descriptor from PQH to PQT — non-canonical address, privileged or execute-with-read
 * requests and unknown requester IDs are bad requests; stop markers are dropped; the rest go to
 * io-pgfault — write PQH = PQT, and on PRS.PRO with an empty queue discard partial groups and clear
 * PRO.
 * @param iommu - the unit
 * @returns `HANDLED` when descriptors were consumed, else `NONE`
 */
export function prqEventThread(iommu: IntelIommu): IrqReturn {
  const mmio = iommu.mmio;
  mmio.writel(DMAR_PRS_REG, DMA_PRS_PPR);
  const tail = Number(mmio.readq(DMAR_PQT_REG) & BigInt(PRQ_RING_MASK));
  let head = Number(mmio.readq(DMAR_PQH_REG) & BigInt(PRQ_RING_MASK));
  const handled = head !== tail;
  while (head !== tail) {
    const pa = iommu.prq + head;
    const req = decodePageReqDsc(iommu.memory.read64(pa), iommu.memory.read64(pa + 8));
    iommu.stats.prqRequests++;
    let bad: string | null = null;
    if (!isCanonicalAddress(req.addr)) bad = 'Address is not canonical';
    else if (req.pmReq && (req.rdReq || req.wrReq)) bad = 'Page request in Privilege Mode';
    else if (req.exeReq && req.rdReq) bad = 'Execution request not supported';
    if (bad !== null) {
      iommu.logMessage('err', `DMAR: IOMMU: ${iommu.name}: ${bad}`);
      handleBadPrqEvent(iommu, req, QI_RESP_INVALID);
    } else if (req.lpig && !req.rdReq && !req.wrReq) {
      // Stop marker: no response.
    } else {
      const entry = iommu.devices.get(req.rid);
      if (entry === undefined) handleBadPrqEvent(iommu, req, QI_RESP_INVALID);
      else iommuReportDeviceFault(entry.dev, intelPrqFault(req));
    }
    head = (head + PRQ_DESC_SIZE) & PRQ_RING_MASK;
  }
  mmio.writeq(DMAR_PQH_REG, BigInt(tail));
  if ((mmio.readl(DMAR_PRS_REG) & DMA_PRS_PRO) !== 0) {
    iommu.logMessage('info', `DMAR: IOMMU: ${iommu.name}: PRQ overflow detected`);
    const h = mmio.readq(DMAR_PQH_REG) & BigInt(PRQ_RING_MASK);
    const t = mmio.readq(DMAR_PQT_REG) & BigInt(PRQ_RING_MASK);
    if (h === t) {
      iopfQueueDiscardPartial(iommu.iopfQueue);
      mmio.writel(DMAR_PRS_REG, DMA_PRS_PRO);
      iommu.logMessage('info', `DMAR: IOMMU: ${iommu.name}: PRQ overflow cleared`);
    }
  }
  return handled ? IrqReturn.HANDLED : IrqReturn.NONE;
}

/**
 * Answer a page request group (`intel_iommu_page_response`, the `pageResponse` op, digest §5.4):
 * a type-9 descriptor with the device's requester ID, the request's PASID and PASID-present flag,
 * the core's response code as is and the group index; submitted synchronously.
 * @param iommu - the unit
 * @param rid - the device's requester ID (bus << 8 | devfn)
 * @param evt - the request being answered
 * @param msg - the response
 * @throws `ErrnoError` from `qiSubmitSync`
 */
export function intelIommuPageResponse(
  iommu: IntelIommu,
  rid: number,
  evt: IommuFault,
  msg: IommuPageResponse,
): void {
  const prm = evt.prm;
  const pasidPresent = (prm.flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID) !== 0;
  qiSubmitSync(iommu, [qiDescPgrpResp(rid, pasidPresent, prm.pasid, msg.code, prm.grpid)]);
  iommu.stats.pageResponses++;
}

/**
 * Requester ID of a device as the driver's device table knows it (reverse lookup of
 * `iommu.devices`).
 * @param iommu - the unit
 * @param dev - the device
 * @returns the requester ID, or `undefined` when the device is not probed on this unit
 */
export function intelIommuDeviceRid(iommu: IntelIommu, dev: Device): number | undefined {
  for (const [rid, e] of iommu.devices) if (e.dev === dev) return rid;
  return undefined;
}
