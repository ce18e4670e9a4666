import { errnoOf } from '@iommu-ts/base/testing';
import { IommuPageResponseCode, type IopfGroupLike } from '@iommu-ts/iommu-core';
import { afterEach, describe, expect, it } from 'vitest';
import { IommuFaultParam } from './fault-param.js';
import { attachWithHandle, pageRequest, setup } from './iopf.test-helpers.js';
import type { IopfGroup } from './iopf-group.js';
import {
  iopfQueueAddDevice,
  iopfQueueAlloc,
  iopfQueueDiscardPartial,
  iopfQueueFlushDev,
  iopfQueueFree,
  iopfQueueRemoveDevice,
} from './iopf-queue.js';
import { traceIopfPartialDiscarded } from './iopf-trace.js';
import { iommuReportDeviceFault } from './report.js';
import { iopfFreeGroup, iopfGroupResponse } from './response.js';
import { iopfWorkHandler } from './work-handler.js';

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup) f();
  cleanup = [];
});
function env(o: Parameters<typeof setup>[0] = {}) {
  const e = setup(o);
  cleanup.push(e.unsub);
  return e;
}

describe('queues and devices', () => {
  it('names the workqueue after the queue and publishes the fault state on the device', () => {
    const { queue, devs } = env();
    expect(queue.wq.name).toBe('iopf_queue/test');
    expect(queue.wq.ordered).toBe(false);
    const p = devs[0]!.iommu!.faultParam;
    expect(p).toBeInstanceOf(IommuFaultParam);
    expect(queue.devices.has(p as IommuFaultParam)).toBe(true);
  });

  it('refuses a device twice (EBUSY), on another queue (EBUSY), and without page_response (ENODEV)', () => {
    const { queue, devs, sched, hb } = env();
    const d = devs[0]!;
    const before = d.iommu!.faultParam;
    expect(errnoOf(() => iopfQueueAddDevice(queue, d))).toBe('EBUSY');
    const q2 = iopfQueueAlloc('other', { scheduler: sched });
    expect(errnoOf(() => iopfQueueAddDevice(q2, d))).toBe('EBUSY');
    expect(d.iommu!.faultParam).toBe(before);
    expect(q2.devices.size).toBe(0);
    // A device never probed by an IOMMU has no driver to answer.
    const orphan = hb.rootBus.addDevice({ devfn: 0x70 });
    expect(errnoOf(() => iopfQueueAddDevice(queue, orphan))).toBe('ENODEV');
  });

  it('removing a device flushes queued work, answers INVALID to held groups, then unpublishes', () => {
    const { queue, devs, sub, drv, sched, warnings } = env();
    const d = devs[0]!;
    const held: IopfGroupLike[] = [];
    // PASID 1: a handler that keeps its groups (as a user-space delivery would).
    attachWithHandle(sub, d, 1, (g) => void held.push(g));
    // PASID 2: a workqueue handler answering SUCCESS.
    attachWithHandle(
      sub,
      d,
      2,
      iopfWorkHandler(() => IommuPageResponseCode.SUCCESS),
    );
    iommuReportDeviceFault(d, pageRequest(1, 0x1000n, { last: true }));
    iommuReportDeviceFault(d, pageRequest(2, 0x1000n, { pasid: 2, last: true }));
    iommuReportDeviceFault(d, pageRequest(3, 0x1000n)); // partial
    const param = d.iommu!.faultParam as IommuFaultParam;
    expect(param.users).toBe(3);
    iopfQueueRemoveDevice(queue, d);
    expect(drv.pageResponses.map((r) => r.msg)).toEqual([
      { pasid: 2, grpid: 2, code: IommuPageResponseCode.SUCCESS },
      { pasid: 1, grpid: 1, code: IommuPageResponseCode.INVALID },
    ]);
    expect(d.iommu!.faultParam).toBeNull();
    expect(param.freed).toBe(true);
    expect(param.partialCount).toBe(0);
    expect((held[0] as IopfGroup).freed).toBe(true);
    // A late answer by the holder is not sent again; the late free is reported, not corrupting.
    expect(iopfGroupResponse(held[0]!, IommuPageResponseCode.SUCCESS)).toBe(false);
    iopfFreeGroup(held[0]!);
    expect(drv.pageResponses).toHaveLength(2);
    expect(warnings.map((w) => w.message)).toEqual(['response to freed group 1', 'double free of group 1']);
    expect(sched.idle).toBe(true);
    // After removal, faults find no queue: answered INVALID at once.
    expect(iommuReportDeviceFault(d, pageRequest(4, 0x1000n, { last: true }))).toBe(-22);
  });

  it('keeps the fault state alive while a group holds it, after the device left the queue', () => {
    const { queue, devs, sub } = env();
    const d = devs[0]!;
    let g: IopfGroupLike | undefined;
    attachWithHandle(sub, d, 1, (x) => {
      g = x;
      iopfGroupResponse(x, IommuPageResponseCode.SUCCESS); // answered but not yet freed
    });
    iommuReportDeviceFault(d, pageRequest(1, 0x1000n, { last: true }));
    const param = d.iommu!.faultParam as IommuFaultParam;
    iopfQueueRemoveDevice(queue, d);
    expect(param.freed).toBe(false);
    iopfFreeGroup(g!);
    expect(param.freed).toBe(true);
  });

  it('warns and does nothing when removing a device that is not on that queue', () => {
    const { queue, devs, sched, warnings } = env();
    const q2 = iopfQueueAlloc('other', { scheduler: sched });
    iopfQueueRemoveDevice(q2, devs[0]!);
    expect(devs[0]!.iommu!.faultParam).not.toBeNull();
    expect(queue.devices.size).toBe(1);
    expect(warnings.map((w) => w.message)).toEqual(['remove_device: not on this queue']);
  });

  it('flushDev runs every group already queued for handling; ENODEV off a queue', () => {
    const { queue, devs, sub, drv, sched } = env();
    const d = devs[0]!;
    attachWithHandle(
      sub,
      d,
      1,
      iopfWorkHandler((f) =>
        f.fault.prm.addr === 0xbad000n ? IommuPageResponseCode.INVALID : IommuPageResponseCode.SUCCESS,
      ),
    );
    iommuReportDeviceFault(d, pageRequest(1, 0x1000n, { last: true }));
    iommuReportDeviceFault(d, pageRequest(2, 0xbad000n, { last: true }));
    expect(drv.pageResponses).toEqual([]);
    expect(sched.readyCount).toBe(2);
    iopfQueueFlushDev(d);
    expect(drv.pageResponses.map((r) => r.msg.code)).toEqual([0, 1]);
    expect((d.iommu!.faultParam as IommuFaultParam).faults.size).toBe(0);
    iopfQueueRemoveDevice(queue, d);
    expect(errnoOf(() => iopfQueueFlushDev(d))).toBe('ENODEV');
  });

  it('discardPartial drops partial requests of every device (after a hardware queue overflow)', () => {
    const { queue, devs, sub } = env({ devices: 2 });
    const sizes: number[] = [];
    for (const d of devs) attachWithHandle(sub, d, 1, (g) => void sizes.push(g.faults.length));
    const dropped: number[] = [];
    cleanup.push(traceIopfPartialDiscarded.subscribe((e) => dropped.push(e.count)));
    iommuReportDeviceFault(devs[0]!, pageRequest(1, 0x1000n));
    iommuReportDeviceFault(devs[0]!, pageRequest(1, 0x2000n));
    iommuReportDeviceFault(devs[1]!, pageRequest(1, 0x1000n));
    iopfQueueDiscardPartial(queue);
    expect(dropped).toEqual([2, 1]);
    iommuReportDeviceFault(devs[0]!, pageRequest(1, 0x3000n, { last: true }));
    expect(sizes).toEqual([1]);
    expect(errnoOf(() => iopfQueueDiscardPartial(null))).toBe('EINVAL');
  });

  it('free removes every device and destroys the workqueue; null is ignored', () => {
    const { queue, devs, sub, drv } = env({ devices: 2 });
    for (const d of devs)
      attachWithHandle(
        sub,
        d,
        1,
        iopfWorkHandler(() => IommuPageResponseCode.SUCCESS),
      );
    iommuReportDeviceFault(devs[1]!, pageRequest(5, 0x1000n, { last: true }));
    iopfQueueFree(queue);
    expect(drv.pageResponses.map((r) => r.msg.grpid)).toEqual([5]);
    expect(devs.map((d) => d.iommu!.faultParam)).toEqual([null, null]);
    expect(queue.wq.destroyed).toBe(true);
    iopfQueueFree(queue);
    iopfQueueFree(null);
  });
});
