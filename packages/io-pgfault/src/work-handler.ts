/**
 * Workqueue-based group handling: the pattern of Linux's SVA handler (drivers/iommu/iommu-sva.c
 * `iommu_sva_iopf_handler` / `iommu_sva_handle_iopf`) made generic, so that any domain can resolve
 * its faults one request at a time on the IOPF queue's workqueue.
 */

import { ErrnoError, isErrnoError } from '@iommu-ts/base';
import {
  type IommuIopfHandler,
  IommuPageResponseCode,
  type IopfFault,
  type IopfGroupLike,
} from '@iommu-ts/iommu-core';
import { IopfGroup } from './iopf-group.js';
import { iopfFreeGroup, iopfGroupResponse } from './response.js';

/**
 * Resolve one request of a group.
 * @param fault - the request
 * @param group - its group (`group.attachHandle.domain` is the domain)
 * @returns the response code for the group so far: SUCCESS continues with the next request, any
 *   other code ends the group with that code. Throwing `ErrnoError` counts as INVALID.
 */
export type IopfFaultResolver = (fault: IopfFault, group: IopfGroup) => IommuPageResponseCode;

/**
 * Build a domain `iopfHandler` that queues each group on its device's IOPF workqueue and, in the
 * work, resolves the requests in order with `resolve` (errors are sticky: the first code that is not
 * SUCCESS ends the group), then answers the group with that code and frees it.
 *
 * @param resolve - the per-request resolver
 * @returns the handler; it throws `ErrnoError` `EBUSY` if the group's work is already queued (the
 *   core then aborts the group with FAILURE)
 */
export function iopfWorkHandler(resolve: IopfFaultResolver): IommuIopfHandler {
  const run = (group: IopfGroup): void => {
    let status: IommuPageResponseCode = IommuPageResponseCode.SUCCESS;
    for (const f of [...group.faults]) {
      if (status !== IommuPageResponseCode.SUCCESS) break;
      try {
        status = resolve(f, group);
      } catch (e) {
        if (!isErrnoError(e)) throw e;
        status = IommuPageResponseCode.INVALID;
      }
    }
    iopfGroupResponse(group, status);
    iopfFreeGroup(group);
  };
  return (g: IopfGroupLike) => {
    if (!(g instanceof IopfGroup)) throw new TypeError('not an io-pgfault group');
    if (!g.faultParam.queue.wq.queueWork(g.work(run)))
      throw new ErrnoError('EBUSY', 'group work already queued');
  };
}
