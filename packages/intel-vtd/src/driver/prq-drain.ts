/**
 * Draining the page requests of one (device, PASID) before the PASID is reused
 * (drivers/iommu/intel/prq.c `intel_iommu_drain_pasid_prq`; digest §5.5 "Drain", §8.7 step 7).
 * Installed into the PASID teardown of pasid.ts when this file loads.
 *
 * @remarks
 * Linux sleeps on the PRQ thread's completion. Here, "wait for the handler" runs the scheduler
 * until the queue holds no matching request; where the scheduler cannot be run (inside a task) the
 * page request thread is run directly.
 */

import { iopfQueueFlushDev } from '@iommu-ts/io-pgfault';
import { pciDevid } from './context.js';
import type { DeviceDomainInfo } from './device-info.js';
import { domainIdIommu, toDmarDomain } from './domain.js';
import type { IntelIommu } from './intel-iommu.js';
import { intelIommuIopfRefcount } from './iopf.js';
import { IOMMU_NO_PASID, type PasidDeviceInfo, pasidTeardownHooks } from './pasid.js';
import { decodePageReqDsc, prqEventThread } from './prq.js';
import {
  type QiDesc,
  qiDescDevIotlb,
  qiDescDevIotlbPasid,
  qiDescIotlb,
  qiDescPiotlb,
  qiSubmitSync,
} from './qi.js';
import {
  DMA_PRS_PRO,
  DMAR_PQH_REG,
  DMAR_PQT_REG,
  DMAR_PRS_REG,
  FLPT_DEFAULT_DID,
  MAX_AGAW_PFN_WIDTH,
  PRQ_DESC_SIZE,
  PRQ_RING_MASK,
  QI_DONE,
  QI_IWD_FENCE,
  QI_IWD_TYPE,
} from './regs.js';

/** Bound on the wait/re-scan rounds (the model's queue cannot refill without new DMA). */
const MAX_ROUNDS = 64;

/**
 * Whether the PRQ still holds a request of `sid` for `pasid` (PASID 0: requests without PASID).
 * @param iommu - the unit
 * @param sid - requester ID
 * @param pasid - the PASID
 */
export function prqHasPending(iommu: IntelIommu, sid: number, pasid: number): boolean {
  const mmio = iommu.mmio;
  const tail = Number(mmio.readq(DMAR_PQT_REG) & BigInt(PRQ_RING_MASK));
  let head = Number(mmio.readq(DMAR_PQH_REG) & BigInt(PRQ_RING_MASK));
  while (head !== tail) {
    const pa = iommu.prq + head;
    const req = decodePageReqDsc(iommu.memory.read64(pa), iommu.memory.read64(pa + 8));
    const match = req.rid === sid && (req.pasidPresent ? req.pasid === pasid : pasid === IOMMU_NO_PASID);
    if (match) return true;
    head = (head + PRQ_DESC_SIZE) & PRQ_RING_MASK;
  }
  return false;
}

/** Wait for the PRQ thread to run once (or run it here when the scheduler cannot be driven). */
function waitForPrqThread(iommu: IntelIommu, done: () => boolean): void {
  if (!iommu.pollUntil(done)) prqEventThread(iommu);
}

/**
 * The drain descriptors (digest §5.5 step 3, without the trailing wait that `qiSubmitSync` adds
 * with PD set): a fenced wait with status data `QI_DONE` and no status write, then the IOTLB
 * (domain-selective for PASID 0, PASID-based "all" otherwise) and device-TLB (whole range, PASID
 * form for PASIDs other than 0) invalidations.
 * @param info - the device
 * @param pasid - the PASID
 * @param did - the DID named in the IOTLB descriptor
 * @returns the three descriptors
 */
export function prqDrainDescs(info: PasidDeviceInfo, pasid: number, did: number): QiDesc[] {
  const sid = pciDevid(info.bus, info.devfn);
  const wait: QiDesc = {
    qw0: (BigInt(QI_DONE) << 32n) | QI_IWD_FENCE | QI_IWD_TYPE,
    qw1: 0n,
    qw2: 0n,
    qw3: 0n,
  };
  if (pasid === IOMMU_NO_PASID)
    return [
      wait,
      qiDescIotlb(info.iommu, did, 0n, MAX_AGAW_PFN_WIDTH, 'domain'),
      qiDescDevIotlb(sid, info.pfsid, info.atsQdep, 0n, MAX_AGAW_PFN_WIDTH),
    ];
  return [
    wait,
    qiDescPiotlb(did, pasid, 0n, 'all', false),
    qiDescDevIotlbPasid(sid, info.pfsid, pasid, info.atsQdep, 0n, MAX_AGAW_PFN_WIDTH),
  ];
}

/**
 * `intel_iommu_drain_pasid_prq(dev, pasid)` (digest §5.5): nothing unless I/O page faults are
 * enabled for the device; otherwise wait until the PRQ holds no request of (device, PASID), flush
 * the device's io-pgfault queue, submit the drain descriptors with PD in the trailing wait, and
 * resubmit them after waiting for the handler while PRS.PRO is set. The DID is the one of the
 * device's RID domain on the unit, or `FLPT_DEFAULT_DID` when none is attached (as Linux).
 * @param info - the device (a `DeviceDomainInfo` at run time)
 * @param pasid - the PASID
 * @throws ErrnoError from `qiSubmitSync`
 */
export function intelIommuDrainPasidPrq(info: PasidDeviceInfo, pasid: number): void {
  const iommu = info.iommu;
  const sid = pciDevid(info.bus, info.devfn);
  const dev = iommu.devices.get(sid)?.dev;
  if (dev === undefined) return;
  const full = dev.iommuPriv as DeviceDomainInfo | null;
  if (full === null || full.iommu !== iommu || intelIommuIopfRefcount(full) === 0) return;
  const domain = toDmarDomain(full.domain);
  const did = domain !== null ? domainIdIommu(domain, iommu) : FLPT_DEFAULT_DID;
  for (let i = 0; i < MAX_ROUNDS && prqHasPending(iommu, sid, pasid); i++)
    waitForPrqThread(iommu, () => !prqHasPending(iommu, sid, pasid));
  iopfQueueFlushDev(dev);
  const descs = prqDrainDescs(info, pasid, did);
  for (let i = 0; i < MAX_ROUNDS; i++) {
    qiSubmitSync(iommu, descs, { prqDrain: true });
    if ((iommu.mmio.readl(DMAR_PRS_REG) & DMA_PRS_PRO) === 0) return;
    waitForPrqThread(iommu, () => (iommu.mmio.readl(DMAR_PRS_REG) & DMA_PRS_PRO) === 0);
  }
}

pasidTeardownHooks.drainPrq = intelIommuDrainPasidPrq;
