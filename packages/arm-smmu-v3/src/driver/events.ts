/**
 * The event queue thread (Linux `arm_smmu_evtq_thread`, `arm_smmu_decode_event`,
 * `arm_smmu_handle_event`, `arm_smmu_dump_event` in drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c;
 * spec §5.5): drain the event queue, report stalled translation faults to io-pgfault as page
 * requests, log everything else with its decoded fields, notice overflows.
 */

import { IrqReturn } from '@iommu-ts/base';
import { iommuReportDeviceFault } from '@iommu-ts/io-pgfault';
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IOMMU_FAULT_PERM_EXEC,
  IOMMU_FAULT_PERM_PRIV,
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
  type IommuFault,
  IommuFaultType,
} from '@iommu-ts/iommu-core';
import type { ArmSmmuDevice, ArmSmmuStreamMaster } from './arm-smmu-device.js';
import { queueRemoveRaw, queueSyncConsOvf, queueSyncProdIn } from './queue.js';
import { type ArmSmmuEvent, decodeEvent, EVT_ID, EVTQ_1_CLASS, eventIdName, queueEmpty } from './regs.js';

/** `private_data[0]` tag of faults that come from a stalled transaction (see {@link armSmmuPageResponse}). */
export const ARM_SMMU_FAULT_SRC_STALL = 1n;
/** `private_data[0]` tag of faults that come from a PRI page request. */
export const ARM_SMMU_FAULT_SRC_PRI = 2n;

/** Event IDs `arm_smmu_handle_event` considers at all. */
const HANDLED_IDS: ReadonlySet<number> = new Set([
  EVT_ID.BAD_STE_CONFIG,
  EVT_ID.STREAM_DISABLED_FAULT,
  EVT_ID.BAD_SUBSTREAMID_CONFIG,
  EVT_ID.BAD_CD_CONFIG,
  EVT_ID.TRANSLATION_FAULT,
  EVT_ID.ADDR_SIZE_FAULT,
  EVT_ID.ACCESS_FAULT,
  EVT_ID.PERMISSION_FAULT,
]);

/**
 * Build the io-pgfault page request for a stalled fault (`arm_smmu_handle_event`): READ or
 * WRITE from RnW, EXEC from InD, PRIV from PnU; LAST_PAGE always; PASID_VALID with the SSID when
 * SSV; the group index is the stall tag; the address is the input address.
 * @param evt - the decoded event (STALL = 1)
 * @returns the fault; `privateData` = [{@link ARM_SMMU_FAULT_SRC_STALL}, StreamID]
 */
export function armSmmuStallFault(evt: ArmSmmuEvent): IommuFault {
  let perm = evt.read ? IOMMU_FAULT_PERM_READ : IOMMU_FAULT_PERM_WRITE;
  if (evt.instruction) perm |= IOMMU_FAULT_PERM_EXEC;
  if (evt.privileged) perm |= IOMMU_FAULT_PERM_PRIV;
  let flags = IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE;
  if (evt.ssv) flags |= IOMMU_FAULT_PAGE_REQUEST_PASID_VALID;
  return {
    type: IommuFaultType.PAGE_REQ,
    prm: {
      flags,
      pasid: evt.ssv ? evt.ssid : 0,
      grpid: evt.stag,
      perm,
      addr: evt.iova,
      privateData: [ARM_SMMU_FAULT_SRC_STALL, BigInt(evt.sid)],
    },
  };
}

/**
 * Handle one decoded event (`arm_smmu_handle_event`).
 * @param smmu - the SMMU
 * @param evt - the event
 * @returns 0 when reported to io-pgfault; a negative errno otherwise (`-EOPNOTSUPP` for events not
 *   handled, non-stalled faults; `-EINVAL` without a master or when io-pgfault had no handler)
 */
export function armSmmuHandleEvent(smmu: ArmSmmuDevice, evt: ArmSmmuEvent): number {
  if (!HANDLED_IDS.has(evt.id)) return -95; // EOPNOTSUPP
  if (!evt.stall) return -95;
  const master = smmu.streams.get(evt.sid);
  if (master === undefined) return -22; // EINVAL
  return iommuReportDeviceFault(master.dev, armSmmuStallFault(evt));
}

const CLASS_NAMES = ['CD', 'TT', 'IN', 'reserved'] as const;

/**
 * Describe an event for the log (`arm_smmu_dump_event`): its name, the client, and the fields
 * that matter for its type.
 * @param evt - the event
 * @param master - the master owning its StreamID, if any
 * @returns one line of text
 */
export function armSmmuDescribeEvent(evt: ArmSmmuEvent, master: ArmSmmuStreamMaster | undefined): string {
  const client = master?.dev.name ?? '(unassigned sid)';
  const ssid = evt.ssv ? `0x${evt.ssid.toString(16)}` : 'none';
  let s = `event 0x${evt.id.toString(16).padStart(2, '0')} (${eventIdName(evt.id)}) client: ${client} sid: 0x${evt.sid.toString(16)} ssid: ${ssid}`;
  switch (evt.id) {
    case EVT_ID.TRANSLATION_FAULT:
    case EVT_ID.ADDR_SIZE_FAULT:
    case EVT_ID.ACCESS_FAULT:
    case EVT_ID.PERMISSION_FAULT:
      s +=
        ` iova: 0x${evt.iova.toString(16)} ipa: 0x${evt.ipa.toString(16)}` +
        ` ${evt.stall ? 'stall' : 'terminate'} ${evt.privileged ? 'priv' : 'unpriv'}` +
        ` ${evt.instruction ? 'inst' : 'data'} ${evt.read ? 'read' : 'write'}` +
        ` ${evt.s2 ? 'S2' : 'S1'} class: ${CLASS_NAMES[evt.class] ?? '?'}` +
        (evt.id === EVT_ID.PERMISSION_FAULT && evt.class === EVTQ_1_CLASS.TT
          ? ` ttrnw: ${evt.ttrnw ? 'read' : 'write'}`
          : '') +
        (evt.stall ? ` stag: 0x${evt.stag.toString(16)}` : '');
      break;
    case EVT_ID.STE_FETCH_FAULT:
    case EVT_ID.CD_FETCH_FAULT:
    case EVT_ID.VMS_FETCH_FAULT:
    case EVT_ID.WALK_EABT:
      s += ` fetch_addr: 0x${evt.fetchAddr.toString(16)}`;
      if (evt.id === EVT_ID.WALK_EABT) s += ` iova: 0x${evt.iova.toString(16)}`;
      break;
  }
  return s;
}

/**
 * The event queue's threaded interrupt handler (`arm_smmu_evtq_thread`): drain every record,
 * handle or log each, report an overflow ("events lost"), then acknowledge it with OVACKFLG.
 * @param smmu - the SMMU
 * @returns `IrqReturn.HANDLED`
 */
export function armSmmuEvtqThread(smmu: ArmSmmuDevice): IrqReturn {
  const q = smmu.evtq;
  const page = smmu.page1;
  do {
    for (
      let ent = queueRemoveRaw(q, smmu.memory, page);
      ent !== undefined;
      ent = queueRemoveRaw(q, smmu.memory, page)
    ) {
      smmu.stats.events++;
      const evt = decodeEvent([ent[0] ?? 0n, ent[1] ?? 0n, ent[2] ?? 0n, ent[3] ?? 0n]);
      if (armSmmuHandleEvent(smmu, evt) === 0) continue;
      const master = smmu.streams.get(evt.sid);
      smmu.logMessage('err', armSmmuDescribeEvent(evt, master));
      smmu.onUnhandledEvent?.(evt, master);
    }
    if (queueSyncProdIn(q, page)) {
      smmu.stats.overflows++;
      smmu.logMessage('err', 'EVTQ overflow detected -- events lost');
    }
  } while (!queueEmpty(q.prod, q.cons, q.log2));
  queueSyncConsOvf(q, page);
  return IrqReturn.HANDLED;
}
