/**
 * Reporting a page request (drivers/iommu/io-pgfault.c `iommu_report_device_fault`): find the
 * handler of the domain attached at the request's PASID, collect partial requests into their
 * group, hand complete groups to the handler, answer at once what cannot be handled.
 */

import { isErrnoError } from '@iommu-ts/base';
import {
  type Device,
  IOMMU_DOMAIN_NESTED,
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IOMMU_NO_PASID,
  type IommuAttachHandle,
  type IommuFault,
  IommuFaultType,
  IommuPageResponseCode,
  type IopfFault,
} from '@iommu-ts/iommu-core';
import { type IommuFaultParam, iopfGetDevFaultParam, iopfPutDevFaultParam } from './fault-param.js';
import { IopfGroup } from './iopf-group.js';
import {
  iopfWarn,
  traceIopfFaultPartial,
  traceIopfFaultReceived,
  traceIopfGroupHandled,
  traceIopfGroupQueued,
} from './iopf-trace.js';
import { answerGroup, iopfFreeGroup, sendPageResponse } from './response.js';

const ENOMEM = -12;
const EINVAL = -22;

/**
 * `find_fault_handler(dev, evt)`: the attach handle whose domain handles this request, or `null`.
 * With a PASID: the handle stored at that PASID, else (drivers with `userPasidTable`) a NESTED
 * domain's handle at the RID; without: the handle at the RID (PASID 0). Only attachments made with
 * a handle count, and the domain must have an `iopfHandler`.
 * @param dev - the device
 * @param fault - the request
 */
export function findFaultHandler(dev: Device, fault: IommuFault): IommuAttachHandle | null {
  const group = dev.iommuGroup;
  if (!group) return null;
  let handle: IommuAttachHandle | null = null;
  if (fault.prm.flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID) {
    handle = group.pasidArray.get(fault.prm.pasid)?.handle ?? null;
    if (handle === null && dev.iommu?.iommuDev?.ops?.userPasidTable) {
      const rid = group.pasidArray.get(IOMMU_NO_PASID);
      if (rid?.handle && rid.domain.type === IOMMU_DOMAIN_NESTED) handle = rid.handle;
    }
  } else {
    handle = group.pasidArray.get(IOMMU_NO_PASID)?.handle ?? null;
  }
  if (handle === null || handle.domain.iopfHandler === null) return null;
  return handle;
}

function copyFault(fault: IommuFault): IopfFault {
  const p = fault.prm;
  return {
    fault: {
      type: fault.type,
      prm: {
        flags: p.flags,
        pasid: p.pasid,
        grpid: p.grpid,
        perm: p.perm,
        addr: p.addr,
        privateData: [p.privateData[0], p.privateData[1]],
      },
    },
  };
}

function emitFault(tp: typeof traceIopfFaultReceived, dev: Device, fault: IommuFault): void {
  const p = fault.prm;
  tp.emit({ dev: dev.name, flags: p.flags, pasid: p.pasid, grpid: p.grpid, perm: p.perm, addr: p.addr });
}

function reportPartialFault(param: IommuFaultParam, fault: IommuFault): number {
  const q = param.queue;
  if (param.partialCount >= q.maxPartialPerDevice || q.failAlloc?.('partial')) return ENOMEM;
  const copy = copyFault(fault);
  let list = param.partial.get(fault.prm.grpid);
  if (list === undefined) {
    list = [];
    param.partial.set(fault.prm.grpid, list);
  }
  list.push(copy);
  param.partialCount++;
  if (traceIopfFaultPartial.enabled) emitFault(traceIopfFaultPartial, param.dev, fault);
  return 0;
}

/**
 * `iommu_report_device_fault(dev, evt)`: what an IOMMU driver calls for each page request (PRI) or
 * recoverable stall it receives.
 *
 * - No handler for the request (see {@link findFaultHandler}), or the device is not on a queue:
 *   answered INVALID at once (page requests only); returns `-EINVAL`.
 * - Not the last request of its group: kept until the LAST_PAGE request with the same group index
 *   arrives (PASIDs are not compared); returns 0, or `-ENOMEM` if it could not be kept (never
 *   answered on its own).
 * - The last request: a group is built (kept requests of that index, oldest first, then this one),
 *   put on the pending list and handed to the domain's `iopfHandler`. If the group cannot be
 *   allocated or the handler fails, the group is answered FAILURE and freed ("iopf aborted").
 *   Returns 0.
 *
 * @param dev - the device that sent the request
 * @param fault - the request; it is copied, the caller keeps ownership
 * @returns 0 or a negative errno, as above
 */
export function iommuReportDeviceFault(dev: Device, fault: IommuFault): number {
  if (traceIopfFaultReceived.enabled) emitFault(traceIopfFaultReceived, dev, fault);
  const handle = findFaultHandler(dev, fault);
  const param = handle === null ? null : iopfGetDevFaultParam(dev);
  if (handle === null || param === null) {
    if (handle !== null) iopfWarn(dev.name, 'fault with a handler but no fault queue');
    if (fault.type === IommuFaultType.PAGE_REQ)
      sendPageResponse(dev, fault, IommuPageResponseCode.INVALID, 'no-handler');
    return EINVAL;
  }
  if (!(fault.prm.flags & IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE)) {
    const ret = reportPartialFault(param, fault);
    iopfPutDevFaultParam(param);
    return ret;
  }
  const q = param.queue;
  const abort = param.faults.size >= q.maxPendingPerDevice || (q.failAlloc?.('group') ?? false);
  const group = new IopfGroup(param, copyFault(fault), abort);
  const partial = param.partial.get(fault.prm.grpid);
  if (partial !== undefined) {
    param.partial.delete(fault.prm.grpid);
    param.partialCount -= partial.length;
    if (!abort) group.faults.unshift(...partial);
  }
  if (!abort) {
    param.faults.add(group);
    if (traceIopfGroupQueued.enabled)
      traceIopfGroupQueued.emit({
        dev: dev.name,
        pasid: fault.prm.pasid,
        grpid: fault.prm.grpid,
        faultCount: group.faultCount,
      });
    group.attachHandle = handle;
    let result: string | 0 = 0;
    try {
      handle.domain.iopfHandler?.(group);
    } catch (e) {
      if (!isErrnoError(e)) throw e;
      result = e.code;
    }
    if (traceIopfGroupHandled.enabled)
      traceIopfGroupHandled.emit({ dev: dev.name, pasid: fault.prm.pasid, grpid: fault.prm.grpid, result });
    if (result === 0) return 0;
  }
  iopfWarn(dev.name, `iopf with pasid ${fault.prm.pasid} aborted`);
  abortGroup(group);
  return 0;
}

function abortGroup(group: IopfGroup): void {
  const param = group.faultParam;
  if (param.faults.has(group) || group.abort) answerGroup(group, IommuPageResponseCode.FAILURE, 'abort');
  iopfFreeGroup(group);
}
