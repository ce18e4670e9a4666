/**
 * `struct iommu_fault_param` (include/linux/iommu.h): what io-pgfault keeps per device while the
 * device is on an IOPF queue — its partial requests, its pending groups and a reference count.
 */

import type { Device, IopfFault } from '@iommu-ts/iommu-core';
import type { IopfGroup } from './iopf-group.js';
import type { IopfQueue } from './iopf-queue.js';

/**
 * Per-device fault state, published in `dev.iommu.faultParam` by `iopfQueueAddDevice`.
 *
 * @remarks
 * Linux frees it after an RCU grace period once `users` reaches zero; here {@link IommuFaultParam.freed}
 * turns true at that moment, so a late use is visible to tests. Each {@link IopfGroup} holds one
 * reference until it is freed.
 */
export class IommuFaultParam {
  /** `dev`: the device. */
  readonly dev: Device;
  /** `queue`: the queue the device was added to. */
  readonly queue: IopfQueue;
  /** `users`: 1 for the queue's own link, plus one per live group. */
  users = 1;
  /**
   * `partial`: requests without LAST_PAGE waiting for their group's last request, indexed by group
   * index; each list is in arrival order.
   */
  readonly partial = new Map<number, IopfFault[]>();
  /** Number of requests in {@link IommuFaultParam.partial}. */
  partialCount = 0;
  /** `faults`: groups handed to a handler and not yet answered, in arrival order. */
  readonly faults = new Set<IopfGroup>();
  /** Whether the last reference was dropped (Linux would free it after a grace period). */
  freed = false;

  /**
   * @param dev - the device
   * @param queue - its queue
   */
  constructor(dev: Device, queue: IopfQueue) {
    this.dev = dev;
    this.queue = queue;
  }
}

/**
 * `iopf_get_dev_fault_param(dev)`: the device's fault parameter with a new reference, or `null` if
 * the device is not on a queue.
 * @param dev - the device
 */
export function iopfGetDevFaultParam(dev: Device): IommuFaultParam | null {
  const p = dev.iommu?.faultParam;
  if (!(p instanceof IommuFaultParam) || p.freed) return null;
  p.users++;
  return p;
}

/**
 * `iopf_put_dev_fault_param(param)`: drop a reference; the last one frees the parameter.
 * @param param - a parameter returned by {@link iopfGetDevFaultParam} (or a group's)
 */
export function iopfPutDevFaultParam(param: IommuFaultParam): void {
  if (param.users <= 0) throw new Error(`fault param of ${param.dev.name}: reference count underflow`);
  param.users--;
  if (param.users === 0) param.freed = true;
}
