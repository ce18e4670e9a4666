/**
 * Answering page request groups (drivers/iommu/io-pgfault.c `iopf_group_response`,
 * `iopf_free_group`), and the uAPI-era `iommu_page_response` that matched a response against the
 * pending requests itself (~v5.3 to v6.7).
 */

import { ErrnoError } from '@iommu-ts/base';
import {
  type Device,
  IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID,
  type IommuFault,
  type IommuPageResponse,
  IommuPageResponseCode,
  type IopfGroupLike,
} from '@iommu-ts/iommu-core';
import { IommuFaultParam, iopfPutDevFaultParam } from './fault-param.js';
import { IopfGroup } from './iopf-group.js';
import { type IopfPageResponseEvent, iopfWarn, traceIopfPageResponse } from './iopf-trace.js';

function asGroup(group: IopfGroupLike): IopfGroup {
  if (!(group instanceof IopfGroup)) throw new TypeError('not an io-pgfault group');
  return group;
}

/**
 * Send one response through the device's IOMMU driver (`ops->page_response`).
 * @param dev - the device
 * @param evt - the request being answered (the group's last request)
 * @param code - the response code
 * @param cause - for the trace
 * @internal
 */
export function sendPageResponse(
  dev: Device,
  evt: IommuFault,
  code: IommuPageResponseCode,
  cause: IopfPageResponseEvent['cause'],
): void {
  const msg: IommuPageResponse = { pasid: evt.prm.pasid, grpid: evt.prm.grpid, code };
  if (traceIopfPageResponse.enabled)
    traceIopfPageResponse.emit({ dev: dev.name, pasid: msg.pasid, grpid: msg.grpid, code, cause });
  const ops = dev.iommu?.iommuDev?.ops;
  if (!ops?.pageResponse) {
    iopfWarn(dev.name, 'no page_response op');
    return;
  }
  ops.pageResponse(dev, evt, msg);
}

/**
 * Take a group off its device's pending list and send its one response.
 * @param g - the group
 * @param code - the response code
 * @param cause - for the trace
 * @internal
 */
export function answerGroup(
  g: IopfGroup,
  code: IommuPageResponseCode,
  cause: IopfPageResponseEvent['cause'],
): void {
  g.faultParam.faults.delete(g);
  g.responded = true;
  sendPageResponse(g.faultParam.dev, g.lastFault.fault, code, cause);
}

/**
 * Release a group: mark it freed, drop its requests and its reference on the device's fault state.
 * @param g - the group
 * @internal
 */
export function releaseGroup(g: IopfGroup): void {
  g.freed = true;
  g.faults.length = 0;
  iopfPutDevFaultParam(g.faultParam);
}

/**
 * `iopf_group_response(group, code)`: answer a group once. If the group is still pending, its
 * response (PASID and group index of the LAST_PAGE request, and `code`) goes to the driver's
 * `page_response` and the group leaves the pending list; otherwise (already answered, for example
 * by `iopfQueueRemoveDevice`) nothing is sent.
 *
 * @param group - a group received by a domain's `iopfHandler`
 * @param code - SUCCESS (retry), INVALID (do not retry) or FAILURE (stop page requests)
 * @returns whether a response was sent
 * @throws TypeError if `group` did not come from io-pgfault
 */
export function iopfGroupResponse(group: IopfGroupLike, code: IommuPageResponseCode): boolean {
  const g = asGroup(group);
  if (g.freed) {
    iopfWarn(g.dev.name, `response to freed group ${g.lastFault.fault.prm.grpid}`);
    return false;
  }
  if (!g.faultParam.faults.has(g)) return false;
  answerGroup(g, code, 'handler');
  return true;
}

/**
 * `iopf_free_group(group)`: release a group after its response: its requests, its reference on
 * the device's fault state, and the group itself. A group still pending is taken off the pending
 * list unanswered (a handler bug that Linux would leave dangling); freeing twice is reported on the
 * `iopf_warn` tracepoint and ignored.
 * @param group - the group
 * @throws TypeError if `group` did not come from io-pgfault
 */
export function iopfFreeGroup(group: IopfGroupLike): void {
  const g = asGroup(group);
  if (g.freed) {
    iopfWarn(g.dev.name, `double free of group ${g.lastFault.fault.prm.grpid}`);
    return;
  }
  if (g.faultParam.faults.delete(g))
    iopfWarn(g.dev.name, `freeing unanswered group ${g.lastFault.fault.prm.grpid}`);
  releaseGroup(g);
}

/**
 * Answer every pending group of `dev` whose attach handle is `handle` with `code` (INVALID by
 * default) and return how many were answered: what a PASID detach must do for groups a handler
 * still holds (iommufd's `iommufd_auto_response_faults` for its own handles). Groups answered here
 * stay allocated until their holder frees them; the holder's own response is then not sent.
 *
 * @remarks
 * Call it after `iopfQueueFlushDev(dev)`, so that groups being processed on the workqueue finished
 * first, and after the PASID was detached, so that no new group can reach the handle.
 * @param dev - the device
 * @param handle - the attach handle being detached
 * @param code - response code; default INVALID
 */
export function iopfRespondHandleFaults(
  dev: Device,
  handle: object,
  code: IommuPageResponseCode = IommuPageResponseCode.INVALID,
): number {
  const param = dev.iommu?.faultParam;
  if (!(param instanceof IommuFaultParam)) return 0;
  let n = 0;
  for (const g of [...param.faults]) {
    if (g.attachHandle !== handle) continue;
    answerGroup(g, code, 'teardown');
    n++;
  }
  return n;
}

/** `IOMMU_PAGE_RESP_PASID_VALID` (bit 0 of the uAPI-era response flags). */
export const IOMMU_PAGE_RESP_PASID_VALID = 1 << 0;
/** `IOMMU_PAGE_RESP_VERSION_1`: the only uAPI-era response version. */
export const IOMMU_PAGE_RESP_VERSION_1 = 1;

/** `struct iommu_page_response` of the uAPI era (~v5.3 to v6.7). */
export interface IommuPageResponseV1 {
  /** `argsz`: size of the struct as the caller knows it (u32). */
  argsz?: number;
  /** `version`: {@link IOMMU_PAGE_RESP_VERSION_1}. */
  version: number;
  /** `flags`: {@link IOMMU_PAGE_RESP_PASID_VALID} or 0. */
  flags: number;
  /** PASID (meaningful with the flag). */
  pasid: number;
  /** Page Request Group Index. */
  grpid: number;
  /** Response code. */
  code: IommuPageResponseCode;
}

/**
 * `iommu_page_response(dev, msg)` as in ~v5.3 to v6.7, when a caller (VFIO, a guest) answered by
 * group index and the core matched it: the first pending group with the same `grpid` whose last
 * request either did not need a PASID (then a PASID in `msg` is cleared) or needed one and `msg`
 * carries `PASID_VALID` with the same PASID. The matched group is answered (as
 * {@link iopfGroupResponse} does) and stays with its holder for freeing.
 *
 * @param dev - the device
 * @param msg - the response
 * @throws ErrnoError `ENODEV` if the device is not on a queue; `EINVAL` for a version other than 1,
 *   unknown flags, or no matching pending group (an empty pending list also warns)
 */
export function iommuPageResponse(dev: Device, msg: IommuPageResponseV1): void {
  const param = dev.iommu?.faultParam;
  if (!(param instanceof IommuFaultParam) || param.freed)
    throw new ErrnoError('ENODEV', `${dev.name}: no fault queue`);
  if (msg.version !== IOMMU_PAGE_RESP_VERSION_1 || msg.flags & ~IOMMU_PAGE_RESP_PASID_VALID)
    throw new ErrnoError('EINVAL', 'bad response version or flags');
  if (param.faults.size === 0) {
    iopfWarn(dev.name, 'page response with no pending request');
    throw new ErrnoError('EINVAL', 'no pending page request');
  }
  for (const g of param.faults) {
    const prm = g.lastFault.fault.prm;
    if (prm.grpid !== msg.grpid) continue;
    const needsPasid = (prm.flags & IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID) !== 0;
    const hasPasid = (msg.flags & IOMMU_PAGE_RESP_PASID_VALID) !== 0;
    if (needsPasid && (!hasPasid || msg.pasid !== prm.pasid)) continue;
    answerGroup(g, msg.code, 'handler');
    return;
  }
  throw new ErrnoError('EINVAL', `no pending group ${msg.grpid}`);
}
