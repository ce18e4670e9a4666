/**
 * The PRI queue thread and page responses (Linux `arm_smmu_priq_thread`, `arm_smmu_handle_ppr`,
 * `arm_smmu_page_response` in drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c; spec §5.5, §6).
 *
 * @remarks
 * Page requests of a master known to the SMMU go to io-pgfault (`iommuReportDeviceFault`), which
 * answers through the `pageResponse` op: that is where the PRI-for-SVA series took the driver.
 * Requests whose StreamID belongs to no master are handled as current mainline handles every PRI
 * request: logged as unexpected, and the last request of a group denied.
 */

import { IrqReturn } from '@iommu-ts/base';
import { iommuReportDeviceFault, iopfQueueDiscardPartial } from '@iommu-ts/io-pgfault';
import {
  type Device,
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IOMMU_FAULT_PERM_EXEC,
  IOMMU_FAULT_PERM_PRIV,
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
  type IommuFault,
  IommuFaultType,
  type IommuPageResponse,
  IommuPageResponseCode,
} from '@iommu-ts/iommu-core';
import type { ArmSmmuDevice, ArmSmmuStreamMaster } from './arm-smmu-device.js';
import { cmdqIssueCmd, cmdqIssueCmdWithSync } from './cmdq.js';
import { ARM_SMMU_FAULT_SRC_PRI, ARM_SMMU_FAULT_SRC_STALL } from './events.js';
import { queueRemoveRaw, queueSyncConsOvf, queueSyncProdIn } from './queue.js';
import {
  type ArmSmmuPriRecord,
  decodePriRecord,
  PRI_RESP,
  type PriResp,
  queueEmpty,
  RESUME_RESP,
} from './regs.js';

/**
 * Build the io-pgfault page request of a PRI record.
 * @param rec - the decoded record
 * @returns the fault; `privateData` = [{@link ARM_SMMU_FAULT_SRC_PRI}, StreamID]
 */
export function armSmmuPriFault(rec: ArmSmmuPriRecord): IommuFault {
  let perm = 0;
  if (rec.read) perm |= IOMMU_FAULT_PERM_READ;
  if (rec.write) perm |= IOMMU_FAULT_PERM_WRITE;
  if (rec.exec) perm |= IOMMU_FAULT_PERM_EXEC;
  if (rec.priv) perm |= IOMMU_FAULT_PERM_PRIV;
  let flags = 0;
  if (rec.last) flags |= IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE;
  if (rec.ssv) flags |= IOMMU_FAULT_PAGE_REQUEST_PASID_VALID;
  return {
    type: IommuFaultType.PAGE_REQ,
    prm: {
      flags,
      pasid: rec.ssv ? rec.ssid : 0,
      grpid: rec.grpid,
      perm,
      addr: rec.addr,
      privateData: [ARM_SMMU_FAULT_SRC_PRI, BigInt(rec.sid)],
    },
  };
}

/**
 * Handle one PRI record (`arm_smmu_handle_ppr`).
 * @param smmu - the SMMU
 * @param rec - the record
 */
export function armSmmuHandlePpr(smmu: ArmSmmuDevice, rec: ArmSmmuPriRecord): void {
  const master = smmu.streams.get(rec.sid);
  if (master !== undefined) {
    iommuReportDeviceFault(master.dev, armSmmuPriFault(rec));
    return;
  }
  smmu.logMessage(
    'info',
    `unexpected PRI request received: sid 0x${rec.sid.toString(16)}.0x${rec.ssid.toString(16)}` +
      ` [${rec.priv ? 'P' : '-'}${rec.read ? 'R' : '-'}${rec.write ? 'W' : '-'}${rec.exec ? 'X' : '-'}]` +
      ` grpid 0x${rec.grpid.toString(16)} addr 0x${rec.addr.toString(16)}${rec.last ? ' last' : ''}`,
  );
  if (rec.last)
    cmdqIssueCmd(smmu, {
      op: 'PRI_RESP',
      sid: rec.sid,
      ssv: rec.ssv,
      ssid: rec.ssid,
      grpid: rec.grpid,
      resp: PRI_RESP.DENY,
    });
}

/**
 * The PRI queue's threaded interrupt handler (`arm_smmu_priq_thread`): drain every record, report
 * an overflow ("PRIQ overflow detected -- requests lost", partial groups discarded from the IOPF
 * queue), then acknowledge it with OVACKFLG.
 * @param smmu - the SMMU
 * @returns `IrqReturn.HANDLED`
 */
export function armSmmuPriqThread(smmu: ArmSmmuDevice): IrqReturn {
  const q = smmu.priq;
  const page = smmu.page1;
  do {
    for (
      let ent = queueRemoveRaw(q, smmu.memory, page);
      ent !== undefined;
      ent = queueRemoveRaw(q, smmu.memory, page)
    ) {
      smmu.stats.priRequests++;
      armSmmuHandlePpr(smmu, decodePriRecord(ent[0] ?? 0n, ent[1] ?? 0n));
    }
    if (queueSyncProdIn(q, page)) {
      smmu.stats.overflows++;
      smmu.logMessage('err', 'PRIQ overflow detected -- requests lost');
      if (smmu.iopfQueue !== null) iopfQueueDiscardPartial(smmu.iopfQueue);
    }
  } while (!queueEmpty(q.prod, q.cons, q.log2));
  queueSyncConsOvf(q, page);
  return IrqReturn.HANDLED;
}

/** PRI response code for an io-pgfault response code. */
function priResp(code: IommuPageResponse['code']): PriResp {
  switch (code) {
    case IommuPageResponseCode.SUCCESS:
      return PRI_RESP.SUCC;
    case IommuPageResponseCode.INVALID:
      return PRI_RESP.DENY;
    default:
      return PRI_RESP.FAIL;
  }
}

/** The master of `dev` (its `dev.iommu.priv`), if it looks like one. */
function masterOf(dev: Device): ArmSmmuStreamMaster | undefined {
  const m = dev.iommuPriv as Partial<ArmSmmuStreamMaster> | null;
  if (m === null || typeof m !== 'object' || !Array.isArray(m.streamIds)) return undefined;
  return m as ArmSmmuStreamMaster;
}

/**
 * Answer a page request group (`arm_smmu_page_response`, the `pageResponse` op). A stalled
 * transaction is resumed with CMD_RESUME on the master's first StreamID (SUCCESS → RETRY, INVALID
 * or FAILURE → ABORT); a PRI group gets CMD_PRI_RESP on the request's StreamID with its PASID when
 * it had one (SUCCESS → SUCC, INVALID → DENY, FAILURE → FAIL). No CMD_SYNC follows, as in Linux.
 * @param smmu - the SMMU
 * @param dev - the device
 * @param evt - the request being answered (its `privateData` says stall or PRI)
 * @param msg - the response
 */
export function armSmmuPageResponse(
  smmu: ArmSmmuDevice,
  dev: Device,
  evt: IommuFault,
  msg: IommuPageResponse,
): void {
  const [src, sidWord] = evt.prm.privateData;
  const master = masterOf(dev);
  if (src === ARM_SMMU_FAULT_SRC_PRI) {
    const ssv = (evt.prm.flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID) !== 0;
    cmdqIssueCmd(smmu, {
      op: 'PRI_RESP',
      sid: Number(sidWord),
      ssv,
      ssid: ssv ? msg.pasid : 0,
      grpid: msg.grpid,
      resp: priResp(msg.code),
    });
    return;
  }
  if (src !== ARM_SMMU_FAULT_SRC_STALL) {
    smmu.logMessage('warn', `page response for ${dev.name} to a fault this SMMU did not report`);
    return;
  }
  if (master === undefined || !master.stallEnabled) {
    smmu.logMessage('warn', `page response for ${dev.name}, which is not stall-enabled`);
    return;
  }
  cmdqIssueCmd(smmu, {
    op: 'RESUME',
    sid: master.streamIds[0] ?? Number(sidWord),
    stag: msg.grpid,
    resp: msg.code === IommuPageResponseCode.SUCCESS ? RESUME_RESP.RETRY : RESUME_RESP.ABORT,
  });
}

/**
 * Terminate every stalled transaction of a StreamID (CMD_STALL_TERM + CMD_SYNC). Linux never
 * issues it; it is here for release paths that must not leave transactions stalled.
 * @param smmu - the SMMU
 * @param sid - StreamID
 * @returns 0 or `-ETIMEDOUT`
 */
export function armSmmuStallTerm(smmu: ArmSmmuDevice, sid: number): number {
  return cmdqIssueCmdWithSync(smmu, { op: 'STALL_TERM', sid });
}
