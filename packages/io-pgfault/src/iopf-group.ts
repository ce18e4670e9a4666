/**
 * `struct iopf_group` (include/linux/iommu.h): the requests of one page request group, handed as a
 * unit to the handler of the domain attached at the fault's PASID, and answered once.
 */

import { Work } from '@iommu-ts/base';
import type { Device, IommuAttachHandle, IopfFault, IopfGroupLike } from '@iommu-ts/iommu-core';
import type { IommuFaultParam } from './fault-param.js';

/**
 * One page request group.
 *
 * @remarks
 * Created by `iommuReportDeviceFault` when a LAST_PAGE request arrives; owned by the domain's
 * handler once the handler accepted it, which must call `iopfGroupResponse` once and then
 * `iopfFreeGroup`. {@link IopfGroup.freed} and {@link IopfGroup.responded} make the life cycle
 * observable: answering or freeing a freed group is a use after free that io-pgfault reports on
 * the `iopf_warn` tracepoint instead of corrupting state.
 */
export class IopfGroup implements IopfGroupLike {
  /** `last_fault`: the LAST_PAGE request. */
  readonly lastFault: IopfFault;
  /** `faults`: every request of the group, oldest first, the last one at the end. */
  readonly faults: IopfFault[];
  /** `fault_param`: the device's fault state (the group holds a reference on it). */
  readonly faultParam: IommuFaultParam;
  /** `attach_handle`: the handle found at the fault's PASID; `null` in an abort group. */
  attachHandle: IommuAttachHandle | null = null;
  /** `cookie`: free for the handler (u32). */
  cookie = 0;
  /** Whether this is the stand-in group used when a group could not be allocated (abort path). */
  readonly abort: boolean;
  /** Whether a response was sent for this group. */
  responded = false;
  /** Whether the group was freed. */
  freed = false;
  #work: Work | null = null;

  /**
   * @param faultParam - the device's fault state; the caller transfers one reference to the group
   * @param lastFault - the LAST_PAGE request
   * @param abort - true for the abort stand-in
   */
  constructor(faultParam: IommuFaultParam, lastFault: IopfFault, abort = false) {
    this.faultParam = faultParam;
    this.lastFault = lastFault;
    this.faults = [lastFault];
    this.abort = abort;
  }

  /** `fault_count`: number of requests in the group. */
  get faultCount(): number {
    return this.faults.length;
  }

  /** The faulting device. */
  get dev(): Device {
    return this.faultParam.dev;
  }

  /**
   * `work`: a work item for handlers that process the group on the queue's workqueue; created on
   * first use with `fn`, later calls return the same item.
   * @param fn - the function the work runs
   */
  work(fn: (group: IopfGroup) => void): Work {
    if (this.#work === null)
      this.#work = new Work(() => fn(this), `iopf-${this.dev.name}-${this.lastFault.fault.prm.grpid}`);
    return this.#work;
  }
}
