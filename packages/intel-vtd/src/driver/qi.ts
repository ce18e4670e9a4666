/**
 * Queued invalidation as the Linux driver does it (drivers/iommu/intel/dmar.c: `dmar_enable_qi`,
 * `dmar_disable_qi`, `qi_submit_sync`, `qi_check_fault`, `qi_flush_*`; iommu.h `qi_desc_*`), the
 * descriptor builders (digest §4.2–§4.10) and the register-based context/IOTLB invalidation used
 * without QI (iommu.c `__iommu_flush_context`, `__iommu_flush_iotlb`, digest §1.6–§1.7).
 *
 * @remarks
 * Descriptors live in the queue pages in `PhysicalMemory`; the per-slot status words that wait
 * descriptors write (`qi->desc_status`) live there too, so the hardware can write them. Submission
 * errors are thrown as `ErrnoError` (the package's style), after the queue state is put back.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { IntelIommu } from './intel-iommu.js';
import {
  capReadDrain,
  capWriteDrain,
  DMA_CCMD_DEVICE_INVL,
  DMA_CCMD_DID,
  DMA_CCMD_DOMAIN_INVL,
  DMA_CCMD_FM,
  DMA_CCMD_GLOBAL_INVL,
  DMA_CCMD_ICC,
  DMA_CCMD_SID,
  DMA_FSTS_ICE,
  DMA_FSTS_IQE,
  DMA_FSTS_ITE,
  DMA_GCMD_QIE,
  DMA_GCMD_TE,
  DMA_GSTS_QIES,
  DMA_IQA_DW,
  DMA_TLB_DID,
  DMA_TLB_DSI_FLUSH,
  DMA_TLB_GLOBAL_FLUSH,
  DMA_TLB_IAIG_MASK,
  DMA_TLB_IVT,
  DMA_TLB_PSI_FLUSH,
  DMA_TLB_WRITE_DRAIN,
  DMAR_CCMD_REG,
  DMAR_FSTS_REG,
  DMAR_GSTS_REG,
  DMAR_IOTLB_OFFSET,
  DMAR_IQA_REG,
  DMAR_IQER_REG,
  DMAR_IQH_REG,
  DMAR_IQT_REG,
  DMAR_IVA_OFFSET,
  dmaIqerIcesid,
  dmaIqerIqei,
  dmaIqerItesid,
  ecapQis,
  ecapSmts,
  QI_CC_TYPE,
  QI_DEIOTLB_TYPE,
  QI_DIOTLB_TYPE,
  QI_DONE,
  QI_EIOTLB_TYPE,
  QI_GRAN_NONG_PASID,
  QI_GRAN_PSI_PASID,
  QI_IOTLB_TYPE,
  QI_IWD_PRQ_DRAIN,
  QI_IWD_STATUS_WRITE,
  QI_IWD_TYPE,
  QI_LENGTH,
  QI_PC_GLOBAL,
  QI_PC_TYPE,
  QI_PGRP_RESP_TYPE,
} from './regs.js';

// ---- shapes ----------------------------------------------------------------------------------------

/** One invalidation descriptor (`struct qi_desc`): four 64-bit words; 128-bit queues use qw0/qw1 only. */
export interface QiDesc {
  /** Word 0 (type in bits 3:0). */
  qw0: bigint;
  /** Word 1. */
  qw1: bigint;
  /** Word 2 (256-bit queues; 0 for the 128-bit types). */
  qw2: bigint;
  /** Word 3. */
  qw3: bigint;
}

/** Slot state: free (`QI_FREE`). */
export const QI_FREE = 0;
/** Slot state: in use (`QI_IN_USE`). */
export const QI_IN_USE = 1;
/** Slot state: aborted by an ITE (`QI_ABORT`). */
export const QI_ABORT = 3;

/** The queued-invalidation state of a unit (`struct q_inval`). */
export interface IntelQi {
  /** Physical address of descriptor slot 0 (4 KiB, or 8 KiB with 256-bit descriptors). */
  readonly descPa: number;
  /** Page order of the descriptor allocation. */
  readonly descOrder: number;
  /** Physical address of the status words (`desc_status[]`, one 32-bit word per slot). */
  readonly statusPa: number;
  /** `qi_shift`: log2 of the descriptor size (4 for 128-bit, 5 for 256-bit). */
  readonly shift: number;
  /** Next slot software fills (`free_head`). */
  freeHead: number;
  /** Oldest slot not yet reclaimed (`free_tail`). */
  freeTail: number;
  /** Free slots (`free_cnt`). */
  freeCnt: number;
  /**
   * Submissions made from inside a scheduler task, where the driver cannot spin on the wait
   * status (the model's queue runs on the same scheduler): their slots are released once their
   * wait status reads done, at the next submission.
   */
  readonly deferred: { index: number; count: number; waitIndex: number }[];
}

/** Options of {@link qiSubmitSync} (`QI_OPT_WAIT_DRAIN`). */
export interface QiSubmitOptions {
  /** Set PD in the wait descriptor (page-request drain, `QI_OPT_WAIT_DRAIN`). */
  readonly prqDrain?: boolean;
}

/** Context-cache invalidation granularity. */
export type QiContextGranularity = 'global' | 'domain' | 'device';
/** IOTLB invalidation granularity (type 2 / IOTLB_REG). */
export type QiIotlbGranularity = 'global' | 'domain' | 'page';

const CC_GRAN: Record<QiContextGranularity, bigint> = { global: 1n, domain: 2n, device: 3n };
const IOTLB_GRAN: Record<QiIotlbGranularity, bigint> = { global: 1n, domain: 2n, page: 3n };
const PAGE_MASK = ~0xfffn & 0xffff_ffff_ffff_ffffn;

/** Name of a descriptor type as `qi_dump_fault` prints it. */
const QI_TYPE_NAMES: readonly string[] = [
  'UNKNOWN',
  'Context-cache Invalidation',
  'IOTLB Invalidation',
  'Device-TLB Invalidation',
  'Interrupt Entry Cache Invalidation',
  'Invalidation Wait',
  'PASID-based IOTLB Invalidation',
  'PASID-cache Invalidation',
  'PASID-based Device-TLB Invalidation',
  'Page Group Response',
];

const desc = (qw0: bigint, qw1 = 0n): QiDesc => ({ qw0, qw1, qw2: 0n, qw3: 0n });

// ---- descriptor builders ---------------------------------------------------------------------------

/**
 * Context-cache invalidate descriptor (type 1, `qi_flush_context`, digest §4.2).
 * @param did - domain ID (bits 31:16)
 * @param sid - requester ID (bits 47:32)
 * @param fm - function mask 0…3 (bits 49:48)
 * @param granularity - global, domain or device
 * @returns the descriptor
 */
export function qiDescCc(did: number, sid: number, fm: number, granularity: QiContextGranularity): QiDesc {
  return desc(
    (BigInt(fm & 3) << 48n) |
      (BigInt(sid & 0xffff) << 32n) |
      (BigInt(did & 0xffff) << 16n) |
      (CC_GRAN[granularity] << 4n) |
      QI_CC_TYPE,
  );
}

/**
 * IOTLB invalidate descriptor (type 2, `qi_desc_iotlb`, digest §4.3): DW/DR from CAP.DWD/DRD; IH is
 * always 0 (Linux masks the address to the page).
 * @param iommu - the unit (CAP)
 * @param did - domain ID
 * @param addr - IOVA (low 12 bits dropped)
 * @param sizeOrder - AM: 2^sizeOrder pages
 * @param granularity - global, domain or page
 * @returns the descriptor
 */
export function qiDescIotlb(
  iommu: IntelIommu,
  did: number,
  addr: bigint,
  sizeOrder: number,
  granularity: QiIotlbGranularity,
): QiDesc {
  const dw = capWriteDrain(iommu.cap) ? 1n << 6n : 0n;
  const dr = capReadDrain(iommu.cap) ? 1n << 7n : 0n;
  return desc(
    (BigInt(did & 0xffff) << 16n) | dr | dw | (IOTLB_GRAN[granularity] << 4n) | QI_IOTLB_TYPE,
    (addr & PAGE_MASK) | BigInt(sizeOrder & 0x3f),
  );
}

const pfsidBits = (pfsid: number): bigint =>
  (BigInt(pfsid & 0xf) << 12n) | (BigInt((pfsid >> 4) & 0xfff) << 52n);

/**
 * Device-TLB invalidate descriptor (type 3, `qi_desc_dev_iotlb`, digest §4.4).
 * @param sid - the endpoint's requester ID
 * @param pfsid - the PF's requester ID (with ECAP.DIT) or 0
 * @param qdep - ATS invalidate queue depth (0 when ≥ 32)
 * @param addr - page address, aligned to 2^mask pages
 * @param mask - log2 of the page count (0 = one page; 52 = everything with `addr` 0)
 * @returns the descriptor
 */
export function qiDescDevIotlb(sid: number, pfsid: number, qdep: number, addr: bigint, mask: number): QiDesc {
  let a = addr;
  let qw1: bigint;
  if (mask > 0) {
    a |= (1n << BigInt(12 + mask - 1)) - 1n;
    qw1 = (a & PAGE_MASK) | 1n;
  } else {
    qw1 = a & PAGE_MASK;
  }
  const q = qdep >= 32 ? 0 : qdep;
  return desc(
    (BigInt(sid & 0xffff) << 32n) | (BigInt(q & 0x1f) << 16n) | QI_DIOTLB_TYPE | pfsidBits(pfsid),
    qw1,
  );
}

/**
 * PASID-based IOTLB invalidate descriptor (type 6, `qi_desc_piotlb`, digest §4.7).
 * @param did - domain ID
 * @param pasid - the PASID
 * @param addr - IOVA (page-selective form)
 * @param npages - page count (rounded up to a power of two → AM), or `'all'` for the
 *   all-mappings-of-the-PASID form (G = 10, qw1 = 0)
 * @param ih - invalidation hint (only leaf entries changed)
 * @returns the descriptor
 * @throws `ErrnoError` `EINVAL` for `npages` 0 (Linux warns "Invalid input npages")
 */
export function qiDescPiotlb(
  did: number,
  pasid: number,
  addr: bigint,
  npages: number | 'all',
  ih: boolean,
): QiDesc {
  const head = (BigInt(pasid & 0xfffff) << 32n) | (BigInt(did & 0xffff) << 16n) | QI_EIOTLB_TYPE;
  if (npages === 'all') return desc(head | (BigInt(QI_GRAN_NONG_PASID) << 4n));
  if (npages <= 0) throw new ErrnoError('EINVAL', `Invalid input npages = ${npages}`);
  const mask = Math.ceil(Math.log2(npages));
  return desc(
    head | (BigInt(QI_GRAN_PSI_PASID) << 4n),
    (addr & PAGE_MASK) | (ih ? 1n << 6n : 0n) | BigInt(mask & 0x3f),
  );
}

/**
 * PASID-based device-TLB invalidate descriptor (type 8, `qi_desc_dev_iotlb_pasid`, digest §4.9).
 * @param sid - the endpoint's requester ID
 * @param pfsid - PF requester ID or 0
 * @param pasid - the PASID
 * @param qdep - ATS queue depth (0 when ≥ 32)
 * @param addr - page address aligned to 2^sizeOrder pages
 * @param sizeOrder - log2 of the page count (0 = one page)
 * @returns the descriptor
 */
export function qiDescDevIotlbPasid(
  sid: number,
  pfsid: number,
  pasid: number,
  qdep: number,
  addr: bigint,
  sizeOrder: number,
): QiDesc {
  const q = qdep >= 32 ? 0 : qdep;
  const qw0 =
    (BigInt(pasid & 0xfffff) << 32n) |
    (BigInt(sid & 0xffff) << 16n) |
    (BigInt(q & 0x1f) << 4n) |
    QI_DEIOTLB_TYPE |
    pfsidBits(pfsid);
  let qw1 = addr & PAGE_MASK;
  if (sizeOrder > 0) {
    const top = BigInt(12 + sizeOrder - 1);
    qw1 |= ((1n << (top + 1n)) - 1n) & ~0xfffn;
    qw1 &= ~(1n << top);
    qw1 |= 1n << 11n;
  }
  return desc(qw0, qw1);
}

/**
 * PASID-cache invalidate descriptor (type 7, `qi_flush_pasid_cache`, digest §4.8).
 * @param did - domain ID
 * @param granularity - `QI_PC_ALL_PASIDS` (0), `QI_PC_PASID_SEL` (1) or `QI_PC_GLOBAL` (3)
 * @param pasid - the PASID
 * @returns the descriptor
 */
export function qiDescPc(did: number, granularity: number, pasid: number): QiDesc {
  return desc(
    (BigInt(pasid & 0xfffff) << 32n) |
      (BigInt(did & 0xffff) << 16n) |
      (BigInt(granularity & 3) << 4n) |
      QI_PC_TYPE,
  );
}

/**
 * Page group response descriptor (type 9, `intel_iommu_page_response`, digest §4.10, §5.4). LPIG
 * and private data are not written (current Linux).
 * @param rid - requester ID of the device answered
 * @param pasidPresent - the request carried a PASID
 * @param pasid - the PASID
 * @param code - response code (0 success, 1 invalid request, 0xF failure)
 * @param grpid - PRG index
 * @returns the descriptor
 */
export function qiDescPgrpResp(
  rid: number,
  pasidPresent: boolean,
  pasid: number,
  code: number,
  grpid: number,
): QiDesc {
  return desc(
    (BigInt(pasid & 0xfffff) << 32n) |
      (BigInt(rid & 0xffff) << 16n) |
      (BigInt(code & 0xf) << 12n) |
      (pasidPresent ? 1n << 4n : 0n) |
      QI_PGRP_RESP_TYPE,
    BigInt(grpid & 0x1ff) << 3n,
  );
}

/**
 * Invalidation wait descriptor with status write (type 5, digest §4.6).
 * @param statusPa - physical address of the 32-bit status word
 * @param data - status data (Linux `QI_DONE` = 2)
 * @param prqDrain - set PD
 * @returns the descriptor
 */
export function qiDescWait(statusPa: number, data = QI_DONE, prqDrain = false): QiDesc {
  return desc(
    (BigInt(data >>> 0) << 32n) | (prqDrain ? QI_IWD_PRQ_DRAIN : 0n) | QI_IWD_STATUS_WRITE | QI_IWD_TYPE,
    BigInt(statusPa),
  );
}

// ---- enable / disable ------------------------------------------------------------------------------

/**
 * Set up and enable queued invalidation (`dmar_enable_qi` + `__dmar_enable_qi`): allocate the
 * queue (8 KiB of 256-bit descriptors when ECAP.SMTS, else 4 KiB of 128-bit ones) and the status
 * words, IQT = 0, IQA, GCMD.QIE, poll QIES. Logs "Using Queued invalidation".
 * @param iommu - the unit
 * @throws `ErrnoError` `ENOENT` without ECAP.QI; `ETIMEDOUT` when QIES never sets (the
 *   allocation is released and `iommu.qi` stays `null`)
 */
export function dmarEnableQi(iommu: IntelIommu): void {
  if (!ecapQis(iommu.ecap)) throw new ErrnoError('ENOENT', `${iommu.name}: no queued invalidation`);
  if (iommu.qi !== null) return;
  const wide = ecapSmts(iommu.ecap);
  const descOrder = wide ? 1 : 0;
  const descPa = iommu.memory.allocPages(descOrder, { zero: true });
  const statusPa = iommu.memory.allocPages(0, { zero: true });
  const qi: IntelQi = {
    descPa,
    descOrder,
    statusPa,
    shift: wide ? 5 : 4,
    freeHead: 0,
    freeTail: 0,
    freeCnt: QI_LENGTH,
    deferred: [],
  };
  try {
    enableQiRegs(iommu, qi);
  } catch (e) {
    iommu.memory.freePages(descPa, descOrder);
    iommu.memory.freePages(statusPa, 0);
    throw e;
  }
  iommu.qi = qi;
  iommu.logMessage('info', `DMAR: ${iommu.name}: Using Queued invalidation`);
}

function enableQiRegs(iommu: IntelIommu, qi: IntelQi): void {
  qi.freeHead = 0;
  qi.freeTail = 0;
  qi.freeCnt = QI_LENGTH;
  qi.deferred.length = 0;
  let val = BigInt(qi.descPa);
  if (ecapSmts(iommu.ecap)) val |= DMA_IQA_DW | 1n;
  iommu.mmio.writeq(DMAR_IQT_REG, 0n);
  iommu.mmio.writeq(DMAR_IQA_REG, val);
  iommu.gcmd = (iommu.gcmd | DMA_GCMD_QIE) >>> 0;
  iommu.writeGcmdSync(iommu.gcmd, (s) => (s & DMA_GSTS_QIES) !== 0, 'enable queued invalidation');
}

/**
 * Disable queued invalidation (`dmar_disable_qi`): give the hardware a bounded chance to drain
 * (IQH = IQT), clear QIE, poll QIES clear. Works on a QI left enabled by firmware too.
 * @param iommu - the unit
 * @throws `ErrnoError` `ETIMEDOUT` when QIES never clears
 */
export function dmarDisableQi(iommu: IntelIommu): void {
  if (!ecapQis(iommu.ecap)) return;
  if ((iommu.mmio.readl(DMAR_GSTS_REG) & DMA_GSTS_QIES) === 0) return;
  iommu.pollUntil(() => iommu.mmio.readq(DMAR_IQT_REG) === iommu.mmio.readq(DMAR_IQH_REG));
  iommu.gcmd = (iommu.gcmd & ~DMA_GCMD_QIE) >>> 0;
  iommu.writeGcmdSync(iommu.gcmd >>> 0, (s) => (s & DMA_GSTS_QIES) === 0, 'disable queued invalidation');
}

/**
 * Re-enable QI after a disable with the same queue (`dmar_reenable_qi`).
 * @param iommu - the unit
 * @throws `ErrnoError` `ENOENT` when QI was never set up; `ETIMEDOUT` on the GCMD handshake
 */
export function dmarReenableQi(iommu: IntelIommu): void {
  const qi = iommu.qi;
  if (qi === null) throw new ErrnoError('ENOENT', `${iommu.name}: no queue`);
  dmarDisableQi(iommu);
  for (let i = 0; i < QI_LENGTH; i++) iommu.memory.write32(qi.statusPa + 4 * i, QI_FREE);
  enableQiRegs(iommu, qi);
}

// ---- submission ------------------------------------------------------------------------------------

const status = (iommu: IntelIommu, qi: IntelQi, idx: number): number =>
  iommu.memory.read32(qi.statusPa + 4 * idx);
const setStatus = (iommu: IntelIommu, qi: IntelQi, idx: number, v: number): void => {
  iommu.memory.write32(qi.statusPa + 4 * idx, v);
};

function writeSlot(iommu: IntelIommu, qi: IntelQi, idx: number, d: QiDesc): void {
  const off = qi.descPa + (idx << qi.shift);
  iommu.memory.write64(off, d.qw0);
  iommu.memory.write64(off + 8, d.qw1);
  if (qi.shift === 5) {
    iommu.memory.write64(off + 16, d.qw2);
    iommu.memory.write64(off + 24, d.qw3);
  }
}

function readSlot(iommu: IntelIommu, qi: IntelQi, idx: number): QiDesc {
  const off = qi.descPa + (idx << qi.shift);
  const wide = qi.shift === 5;
  return {
    qw0: iommu.memory.read64(off),
    qw1: iommu.memory.read64(off + 8),
    qw2: wide ? iommu.memory.read64(off + 16) : 0n,
    qw3: wide ? iommu.memory.read64(off + 24) : 0n,
  };
}

function reapDeferred(iommu: IntelIommu, qi: IntelQi): void {
  for (let i = 0; i < qi.deferred.length; ) {
    const d = qi.deferred[i] as { index: number; count: number; waitIndex: number };
    const st = status(iommu, qi, d.waitIndex);
    if (st === QI_DONE || st === QI_ABORT) {
      for (let j = 0; j <= d.count; j++) setStatus(iommu, qi, (d.index + j) % QI_LENGTH, QI_FREE);
      qi.deferred.splice(i, 1);
    } else i++;
  }
  reclaimFreeDesc(iommu, qi);
}

function reclaimFreeDesc(iommu: IntelIommu, qi: IntelQi): void {
  while (qi.freeTail !== qi.freeHead && status(iommu, qi, qi.freeTail) === QI_FREE) {
    qi.freeTail = (qi.freeTail + 1) % QI_LENGTH;
    qi.freeCnt++;
  }
}

/** `qi_dump_fault`: the diagnostic lines for IQE / ITE / ICE. */
function qiDumpFault(iommu: IntelIommu, qi: IntelQi, fault: number): void {
  const iqer = iommu.mmio.readq(DMAR_IQER_REG);
  if (fault & DMA_FSTS_IQE)
    iommu.logMessage(
      'err',
      `DMAR: VT-d detected Invalidation Queue Error: Reason ${dmaIqerIqei(iqer).toString(16)}`,
    );
  if (fault & DMA_FSTS_ITE)
    iommu.logMessage(
      'err',
      `DMAR: VT-d detected Invalidation Time-out Error: SID ${dmaIqerItesid(iqer).toString(16)}`,
    );
  if (fault & DMA_FSTS_ICE)
    iommu.logMessage(
      'err',
      `DMAR: VT-d detected Invalidation Completion Error: SID ${dmaIqerIcesid(iqer).toString(16)}`,
    );
  const head = (Number(iommu.mmio.readq(DMAR_IQH_REG)) >> qi.shift) % QI_LENGTH;
  const prior = (head + QI_LENGTH - 1) % QI_LENGTH;
  for (const [label, idx] of [
    ['HEAD', head],
    ['PRIOR', prior],
  ] as const) {
    const d = readSlot(iommu, qi, idx);
    const t = Number(d.qw0 & 0xfn);
    const name = QI_TYPE_NAMES[t] ?? 'UNKNOWN';
    const words =
      qi.shift === 5
        ? `qw0 = 0x${d.qw0.toString(16)}, qw1 = 0x${d.qw1.toString(16)}, qw2 = 0x${d.qw2.toString(16)}, qw3 = 0x${d.qw3.toString(16)}`
        : `qw0 = 0x${d.qw0.toString(16)}, qw1 = 0x${d.qw1.toString(16)}`;
    iommu.logMessage('err', `DMAR: QI ${label}: ${name} ${words}`);
  }
}

/**
 * `qi_check_fault`: called while waiting.
 * @returns 0, or a negative errno-like code: -EAGAIN (restart), -EINVAL (IQE on this submission),
 *   -ETIMEDOUT (ITE for a device that is gone)
 */
function qiCheckFault(
  iommu: IntelIommu,
  qi: IntelQi,
  index: number,
  waitIndex: number,
): 0 | 'EAGAIN' | 'EINVAL' | 'ETIMEDOUT' {
  if (status(iommu, qi, waitIndex) === QI_ABORT) return 'EAGAIN';
  const fault = iommu.mmio.readl(DMAR_FSTS_REG) >>> 0;
  if (fault & (DMA_FSTS_IQE | DMA_FSTS_ITE | DMA_FSTS_ICE)) qiDumpFault(iommu, qi, fault);
  if (fault & DMA_FSTS_IQE) {
    const head = Number(iommu.mmio.readq(DMAR_IQH_REG)) >> qi.shift;
    if (head === index) {
      // Replace the bad descriptor by our wait descriptor, then let the queue run again.
      writeSlot(iommu, qi, head, readSlot(iommu, qi, waitIndex));
      iommu.mmio.writel(DMAR_FSTS_REG, DMA_FSTS_IQE);
      iommu.logMessage('info', 'DMAR: Invalidation Queue Error (IQE) cleared');
      iommu.stats.qiIqe++;
      return 'EINVAL';
    }
  }
  if (fault & DMA_FSTS_ITE) {
    let head = ((Number(iommu.mmio.readq(DMAR_IQH_REG)) >> qi.shift) - 1 + QI_LENGTH) % QI_LENGTH;
    const tail = ((Number(iommu.mmio.readq(DMAR_IQT_REG)) >> qi.shift) - 1 + QI_LENGTH) % QI_LENGTH;
    const iteSid = dmaIqerItesid(iommu.mmio.readq(DMAR_IQER_REG));
    iommu.mmio.writel(DMAR_FSTS_REG, DMA_FSTS_ITE);
    iommu.logMessage('info', 'DMAR: Invalidation Time-out Error (ITE) cleared');
    iommu.stats.qiIte++;
    // Abort every in-use slot from IQH-1 back to (excluding) IQT-1.
    while (head !== tail) {
      if (status(iommu, qi, head) === QI_IN_USE) setStatus(iommu, qi, head, QI_ABORT);
      head = (head - 1 + QI_LENGTH) % QI_LENGTH;
    }
    if (iteSid !== 0 && !iommu.devices.has(iteSid)) return 'ETIMEDOUT';
    if (status(iommu, qi, waitIndex) === QI_ABORT) return 'EAGAIN';
  }
  if (fault & DMA_FSTS_ICE) {
    iommu.mmio.writel(DMAR_FSTS_REG, DMA_FSTS_ICE);
    iommu.logMessage('info', 'DMAR: Invalidation Completion Error (ICE) cleared');
  }
  return 0;
}

/**
 * Submit descriptors followed by a status-write wait descriptor and poll until the hardware wrote
 * the status (`qi_submit_sync`, digest §4.12): waits for `count + 2` free slots, copies the
 * descriptors, writes IQT, polls the wait slot while checking IQE/ITE/ICE (`qi_check_fault`),
 * releases the slots and restarts after an ITE that aborted this submission.
 * @param iommu - the unit (QI enabled)
 * @param descs - the descriptors (at most `QI_LENGTH - 2`)
 * @param options - PD in the wait descriptor
 * @throws `ErrnoError` `EINVAL` when the hardware reported IQE at this submission's first
 *   descriptor (the bad slot is replaced by the wait descriptor and IQE cleared), or when QI is not
 *   enabled or there are too many descriptors; `ETIMEDOUT` when an ITE names a device the unit no
 *   longer knows, or when the wait never completes within the poll budget
 */
export function qiSubmitSync(
  iommu: IntelIommu,
  descs: readonly QiDesc[],
  options: QiSubmitOptions = {},
): void {
  const qi = iommu.qi;
  if (qi === null) throw new ErrnoError('EINVAL', `${iommu.name}: queued invalidation not enabled`);
  const count = descs.length;
  if (count === 0) return;
  if (count + 2 > QI_LENGTH) throw new ErrnoError('EINVAL', `${iommu.name}: ${count} descriptors do not fit`);
  for (;;) {
    reapDeferred(iommu, qi);
    if (qi.freeCnt < count + 2) {
      // Another submission holds the slots; in this single-threaded model they are reclaimable.
      reclaimFreeDesc(iommu, qi);
      if (qi.freeCnt < count + 2) throw new ErrnoError('EBUSY', `${iommu.name}: invalidation queue full`);
    }
    const index = qi.freeHead;
    const waitIndex = (index + count) % QI_LENGTH;
    for (let i = 0; i < count; i++) {
      const slot = (index + i) % QI_LENGTH;
      writeSlot(iommu, qi, slot, descs[i] as QiDesc);
      setStatus(iommu, qi, slot, QI_IN_USE);
    }
    setStatus(iommu, qi, waitIndex, QI_IN_USE);
    writeSlot(
      iommu,
      qi,
      waitIndex,
      qiDescWait(qi.statusPa + 4 * waitIndex, QI_DONE, options.prqDrain === true),
    );
    qi.freeHead = (qi.freeHead + count + 1) % QI_LENGTH;
    qi.freeCnt -= count + 1;
    iommu.stats.qiDescs += count;
    iommu.stats.qiSubmits++;
    iommu.mmio.writeq(DMAR_IQT_REG, BigInt(qi.freeHead << qi.shift));
    if (iommu.scheduler.inTask && status(iommu, qi, waitIndex) !== QI_DONE) {
      // Cannot spin inside a task: the queue completes after this task returns.
      qi.deferred.push({ index, count, waitIndex });
      return;
    }

    const st: { rc: 0 | 'EAGAIN' | 'EINVAL' | 'ETIMEDOUT' } = { rc: 0 };
    const done = iommu.pollUntil(() => {
      if (status(iommu, qi, waitIndex) === QI_DONE) return true;
      st.rc = qiCheckFault(iommu, qi, index, waitIndex);
      return st.rc !== 0;
    });
    const rc = !done && st.rc === 0 ? 'ETIMEDOUT' : st.rc;
    for (let i = 0; i <= count; i++) setStatus(iommu, qi, (index + i) % QI_LENGTH, QI_FREE);
    reclaimFreeDesc(iommu, qi);
    if (rc === 'EAGAIN') continue;
    if (rc === 'EINVAL') throw new ErrnoError('EINVAL', `${iommu.name}: invalidation queue error`);
    if (rc === 'ETIMEDOUT') throw new ErrnoError('ETIMEDOUT', `${iommu.name}: invalidation wait timed out`);
    return;
  }
}

// ---- qi_flush_* --------------------------------------------------------------------------------------

/**
 * `qi_flush_context`: one context-cache descriptor, submitted synchronously.
 * @param iommu - the unit
 * @param did - domain ID
 * @param sid - requester ID
 * @param fm - function mask
 * @param granularity - global, domain or device
 * @throws `ErrnoError` from {@link qiSubmitSync}
 */
export function qiFlushContext(
  iommu: IntelIommu,
  did: number,
  sid: number,
  fm: number,
  granularity: QiContextGranularity,
): void {
  qiSubmitSync(iommu, [qiDescCc(did, sid, fm, granularity)]);
}

/**
 * `qi_flush_iotlb`: one type-2 descriptor, submitted synchronously.
 * @param iommu - the unit
 * @param did - domain ID
 * @param addr - IOVA
 * @param sizeOrder - AM
 * @param granularity - global, domain or page
 * @throws `ErrnoError` from {@link qiSubmitSync}
 */
export function qiFlushIotlb(
  iommu: IntelIommu,
  did: number,
  addr: bigint,
  sizeOrder: number,
  granularity: QiIotlbGranularity,
): void {
  qiSubmitSync(iommu, [qiDescIotlb(iommu, did, addr, sizeOrder, granularity)]);
}

/**
 * `qi_flush_dev_iotlb`: one type-3 descriptor; skipped while translation is disabled (GCMD
 * shadow without TE), as Linux does.
 * @param iommu - the unit
 * @param sid - requester ID
 * @param pfsid - PF requester ID or 0
 * @param qdep - ATS queue depth
 * @param addr - page address
 * @param mask - log2 page count
 * @throws `ErrnoError` from {@link qiSubmitSync}
 */
export function qiFlushDevIotlb(
  iommu: IntelIommu,
  sid: number,
  pfsid: number,
  qdep: number,
  addr: bigint,
  mask: number,
): void {
  if ((iommu.gcmd & DMA_GCMD_TE) === 0) return;
  qiSubmitSync(iommu, [qiDescDevIotlb(sid, pfsid, qdep, addr, mask)]);
}

/**
 * `qi_flush_piotlb`: one type-6 descriptor.
 * @param iommu - the unit
 * @param did - domain ID
 * @param pasid - PASID
 * @param addr - IOVA
 * @param npages - page count or `'all'`
 * @param ih - invalidation hint
 * @throws `ErrnoError` from {@link qiDescPiotlb} and {@link qiSubmitSync}
 */
export function qiFlushPiotlb(
  iommu: IntelIommu,
  did: number,
  pasid: number,
  addr: bigint,
  npages: number | 'all',
  ih: boolean,
): void {
  qiSubmitSync(iommu, [qiDescPiotlb(did, pasid, addr, npages, ih)]);
}

/**
 * `qi_flush_dev_iotlb_pasid`: one type-8 descriptor; skipped while translation is disabled.
 * @param iommu - the unit
 * @param sid - requester ID
 * @param pfsid - PF requester ID or 0
 * @param pasid - PASID
 * @param qdep - ATS queue depth
 * @param addr - page address
 * @param sizeOrder - log2 page count
 * @throws `ErrnoError` from {@link qiSubmitSync}
 */
export function qiFlushDevIotlbPasid(
  iommu: IntelIommu,
  sid: number,
  pfsid: number,
  pasid: number,
  qdep: number,
  addr: bigint,
  sizeOrder: number,
): void {
  if ((iommu.gcmd & DMA_GCMD_TE) === 0) return;
  qiSubmitSync(iommu, [qiDescDevIotlbPasid(sid, pfsid, pasid, qdep, addr, sizeOrder)]);
}

/**
 * `qi_flush_pasid_cache`: one type-7 descriptor.
 * @param iommu - the unit
 * @param did - domain ID
 * @param granularity - `QI_PC_ALL_PASIDS`, `QI_PC_PASID_SEL` or `QI_PC_GLOBAL`
 * @param pasid - PASID
 * @throws `ErrnoError` from {@link qiSubmitSync}
 */
export function qiFlushPasidCache(iommu: IntelIommu, did: number, granularity: number, pasid: number): void {
  qiSubmitSync(iommu, [qiDescPc(did, granularity, pasid)]);
}

/**
 * Global PASID-cache invalidation (`qi_flush_pasid_cache(iommu, 0, QI_PC_GLOBAL, 0)`).
 * @param iommu - the unit
 * @throws `ErrnoError` from {@link qiSubmitSync}
 */
export function qiFlushPasidCacheGlobal(iommu: IntelIommu): void {
  qiFlushPasidCache(iommu, 0, QI_PC_GLOBAL, 0);
}

/**
 * A batch of descriptors for one unit, submitted with one wait descriptor (`struct qi_batch` of
 * cache.c: up to 16, flushed automatically when full).
 */
export class QiBatch {
  /** The unit. */
  readonly iommu: IntelIommu;
  /** Descriptors collected so far. */
  readonly descs: QiDesc[] = [];

  /** @param iommu - the unit the batch targets */
  constructor(iommu: IntelIommu) {
    this.iommu = iommu;
  }

  /**
   * Append a descriptor; submits the batch when it reaches 16 (`qi_batch_increment_index`).
   * @param d - the descriptor
   * @throws `ErrnoError` from {@link qiSubmitSync}
   */
  add(d: QiDesc): void {
    this.descs.push(d);
    if (this.descs.length >= QI_BATCH_SIZE) this.flush();
  }

  /**
   * Submit what was collected (`qi_batch_flush_descs`); nothing when empty.
   * @throws `ErrnoError` from {@link qiSubmitSync}
   */
  flush(): void {
    if (this.descs.length === 0) return;
    const d = this.descs.splice(0);
    qiSubmitSync(this.iommu, d);
  }
}

/** `QI_MAX_BATCHED_DESC_COUNT`: descriptors per batch. */
export const QI_BATCH_SIZE = 16;

// ---- register-based invalidation -------------------------------------------------------------------

/**
 * Register-based context-cache invalidation (`__iommu_flush_context`): CCMD = ICC | CIRG | …, poll
 * ICC clear.
 * @param iommu - the unit
 * @param did - domain ID
 * @param sid - requester ID
 * @param fm - function mask
 * @param granularity - global, domain or device
 * @throws `ErrnoError` `ETIMEDOUT` when ICC never clears
 */
export function iommuFlushContextReg(
  iommu: IntelIommu,
  did: number,
  sid: number,
  fm: number,
  granularity: QiContextGranularity,
): void {
  let val: bigint;
  if (granularity === 'global') val = DMA_CCMD_GLOBAL_INVL;
  else if (granularity === 'domain') val = DMA_CCMD_DOMAIN_INVL | DMA_CCMD_DID(did);
  else val = DMA_CCMD_DEVICE_INVL | DMA_CCMD_DID(did) | DMA_CCMD_SID(sid) | DMA_CCMD_FM(fm);
  val |= DMA_CCMD_ICC;
  iommu.stats.regFlushes++;
  iommu.mmio.writeq(DMAR_CCMD_REG, val);
  if (!iommu.pollUntil(() => (iommu.mmio.readq(DMAR_CCMD_REG) & DMA_CCMD_ICC) === 0n))
    throw new ErrnoError('ETIMEDOUT', `${iommu.name}: context flush timed out`);
}

/**
 * Register-based IOTLB invalidation (`__iommu_flush_iotlb`): IVA (page form: addr | AM), then
 * IOTLB_REG = IVT | IIRG | DID | DW (if CAP.DWD); poll IVT clear; logs "Flush IOTLB failed" when
 * IAIG reads 0.
 * @param iommu - the unit
 * @param did - domain ID
 * @param addr - IOVA (page form)
 * @param sizeOrder - AM (page form)
 * @param granularity - global, domain or page
 * @throws `ErrnoError` `ETIMEDOUT` when IVT never clears
 */
export function iommuFlushIotlbReg(
  iommu: IntelIommu,
  did: number,
  addr: bigint,
  sizeOrder: number,
  granularity: QiIotlbGranularity,
): void {
  const base = iommu.iotlbRegOffset;
  let val: bigint;
  let valIva = 0n;
  if (granularity === 'global') val = DMA_TLB_GLOBAL_FLUSH | DMA_TLB_IVT;
  else if (granularity === 'domain') val = DMA_TLB_DSI_FLUSH | DMA_TLB_IVT | DMA_TLB_DID(did);
  else {
    val = DMA_TLB_PSI_FLUSH | DMA_TLB_IVT | DMA_TLB_DID(did);
    valIva = BigInt(sizeOrder) | addr;
  }
  if (capWriteDrain(iommu.cap)) val |= DMA_TLB_WRITE_DRAIN;
  iommu.stats.regFlushes++;
  if (valIva !== 0n) iommu.mmio.writeq(base + DMAR_IVA_OFFSET, valIva);
  iommu.mmio.writeq(base + DMAR_IOTLB_OFFSET, val);
  let out = 0n;
  if (
    !iommu.pollUntil(() => {
      out = iommu.mmio.readq(base + DMAR_IOTLB_OFFSET);
      return (out & DMA_TLB_IVT) === 0n;
    })
  )
    throw new ErrnoError('ETIMEDOUT', `${iommu.name}: IOTLB flush timed out`);
  if ((out & DMA_TLB_IAIG_MASK) === 0n) iommu.logMessage('err', 'DMAR: Flush IOTLB failed');
}
