/**
 * IOPF queues (drivers/iommu/io-pgfault.c `iopf_queue_*`): one per IOMMU (or per hardware fault
 * queue), each with a workqueue for handlers, and the devices whose faults it carries.
 */

import { ErrnoError, Scheduler, type Workqueue } from '@iommu-ts/base';
import { type Device, IommuPageResponseCode } from '@iommu-ts/iommu-core';
import { IommuFaultParam, iopfPutDevFaultParam } from './fault-param.js';
import { iopfWarn, traceIopfPartialDiscarded } from './iopf-trace.js';
import { answerGroup, releaseGroup } from './response.js';

/** Options of {@link iopfQueueAlloc}. */
export interface IopfQueueOptions {
  /**
   * The scheduler whose workqueue runs the handlers' work. Default: a new FIFO `Scheduler`
   * (reachable as {@link IopfQueue.scheduler}).
   */
  readonly scheduler?: Scheduler;
  /**
   * Most partial (non-last) requests kept per device; a request beyond it is dropped as when
   * Linux cannot allocate its copy (`-ENOMEM`, no response). Default: unlimited, as Linux.
   */
  readonly maxPartialPerDevice?: number;
  /**
   * Most groups pending per device; a group beyond it is aborted with FAILURE as when Linux cannot
   * allocate it. Default: unlimited, as Linux.
   */
  readonly maxPendingPerDevice?: number;
  /**
   * Fault injection: called before each allocation (`'partial'` copy or `'group'`); returning true
   * makes that allocation fail.
   */
  readonly failAlloc?: (what: 'partial' | 'group') => boolean;
}

/**
 * `struct iopf_queue`: a fault queue and its workqueue `iopf_queue/<name>` (unordered).
 *
 * @remarks
 * Created by {@link iopfQueueAlloc}; devices join with {@link iopfQueueAddDevice}.
 */
export class IopfQueue {
  /** Queue name as given to {@link iopfQueueAlloc}. */
  readonly name: string;
  /** The scheduler the workqueue runs on. */
  readonly scheduler: Scheduler;
  /** `wq`: the workqueue (unbound, unordered) named `iopf_queue/<name>`. */
  readonly wq: Workqueue;
  /** `devices`: the fault state of each device on the queue. */
  readonly devices = new Set<IommuFaultParam>();
  /** Partial request limit per device (`Infinity` = none). */
  readonly maxPartialPerDevice: number;
  /** Pending group limit per device (`Infinity` = none). */
  readonly maxPendingPerDevice: number;
  /** Allocation fault injection, if any. */
  readonly failAlloc: ((what: 'partial' | 'group') => boolean) | undefined;
  /** Whether {@link iopfQueueFree} ran. */
  freed = false;

  /** @internal use {@link iopfQueueAlloc} */
  constructor(name: string, options: IopfQueueOptions) {
    this.name = name;
    this.scheduler = options.scheduler ?? new Scheduler();
    this.wq = this.scheduler.allocWorkqueue(`iopf_queue/${name}`);
    this.maxPartialPerDevice = options.maxPartialPerDevice ?? Number.POSITIVE_INFINITY;
    this.maxPendingPerDevice = options.maxPendingPerDevice ?? Number.POSITIVE_INFINITY;
    this.failAlloc = options.failAlloc;
  }
}

/**
 * `iopf_queue_alloc(name)`: a new fault queue with its workqueue.
 * @param name - the queue name (the workqueue is `iopf_queue/<name>`)
 * @param options - scheduler, capacity limits, fault injection
 * @returns the queue
 */
export function iopfQueueAlloc(name: string, options: IopfQueueOptions = {}): IopfQueue {
  return new IopfQueue(name, options);
}

/**
 * `iopf_queue_add_device(queue, dev)`: start carrying `dev`'s faults: create its fault state
 * (`users = 1`, empty lists) and publish it in `dev.iommu.faultParam`.
 * @param queue - the queue
 * @param dev - a probed device
 * @throws ErrnoError `ENODEV` if the device's IOMMU driver has no `pageResponse` op (or the device
 *   has no IOMMU); `EBUSY` if the device already has fault state (on this or another queue)
 */
export function iopfQueueAddDevice(queue: IopfQueue, dev: Device): void {
  const iommu = dev.iommu;
  if (!iommu?.iommuDev?.ops?.pageResponse) throw new ErrnoError('ENODEV', `${dev.name}: no page_response op`);
  if (iommu.faultParam !== null) throw new ErrnoError('EBUSY', `${dev.name}: already on a fault queue`);
  const param = new IommuFaultParam(dev, queue);
  queue.devices.add(param);
  iommu.faultParam = param;
}

/**
 * `iopf_queue_remove_device(queue, dev)`: stop carrying `dev`'s faults. First the queue's work is
 * flushed (so groups being handled finish), then every partial request is dropped, every group
 * still pending is answered INVALID and freed, and the fault state is unpublished (it is freed
 * when the last group holding it goes).
 *
 * @remarks
 * Linux expects drivers to flush the workqueue before this call; doing it here makes "remove with
 * outstanding faults" safe. It must not be called from one of the queue's own works. A device
 * without fault state or on another queue only warns (`iopf_warn`).
 * @param queue - the queue
 * @param dev - the device
 */
export function iopfQueueRemoveDevice(queue: IopfQueue, dev: Device): void {
  const param = dev.iommu?.faultParam;
  if (!(param instanceof IommuFaultParam) || param.queue !== queue) {
    iopfWarn(dev.name, 'remove_device: not on this queue');
    return;
  }
  queue.wq.flush();
  dropPartial(param);
  for (const g of [...param.faults]) {
    answerGroup(g, IommuPageResponseCode.INVALID, 'teardown');
    releaseGroup(g);
  }
  queue.devices.delete(param);
  if (dev.iommu) dev.iommu.faultParam = null;
  iopfPutDevFaultParam(param);
}

/**
 * `iopf_queue_flush_dev(dev)`: wait until every work already queued on the device's queue has run
 * (so every group queued by a workqueue-based handler has been handled and answered). The driver
 * must have stopped new faults and drained its hardware queue first.
 * @param dev - the device
 * @throws ErrnoError `ENODEV` if the device is not on a queue (also warns)
 */
export function iopfQueueFlushDev(dev: Device): void {
  const param = dev.iommu?.faultParam;
  if (!(param instanceof IommuFaultParam)) {
    iopfWarn(dev.name, 'flush_dev: not on a queue');
    throw new ErrnoError('ENODEV', `${dev.name}: not on a fault queue`);
  }
  param.queue.wq.flush();
}

/**
 * `iopf_queue_discard_partial(queue)`: drop every partial request of every device on the queue,
 * as a driver does after its hardware page request queue overflowed (LAST_PAGE requests may have
 * been lost, so those groups would never complete).
 * @param queue - the queue (`null` is refused)
 * @throws ErrnoError `EINVAL` for `null`
 */
export function iopfQueueDiscardPartial(queue: IopfQueue | null): void {
  if (queue === null) throw new ErrnoError('EINVAL', 'no queue');
  for (const param of queue.devices) dropPartial(param);
}

/**
 * `iopf_queue_free(queue)`: remove every device (as {@link iopfQueueRemoveDevice}) and destroy the
 * workqueue. `null` is ignored.
 * @param queue - the queue or `null`
 */
export function iopfQueueFree(queue: IopfQueue | null): void {
  if (queue === null || queue.freed) return;
  for (const param of [...queue.devices]) iopfQueueRemoveDevice(queue, param.dev);
  queue.wq.destroy();
  queue.freed = true;
}

function dropPartial(param: IommuFaultParam): void {
  const count = param.partialCount;
  param.partial.clear();
  param.partialCount = 0;
  if (count > 0 && traceIopfPartialDiscarded.enabled)
    traceIopfPartialDiscarded.emit({ dev: param.dev.name, count });
}
