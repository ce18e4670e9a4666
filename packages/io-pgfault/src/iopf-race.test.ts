// Races on the seeded scheduler: a device keeps reporting page request groups while the domain is
// detached from its PASID or the device leaves its queue, at every possible point of the fault
// path. Whatever the interleaving: every completed group is answered exactly once, nothing stays
// pending, no freed group or domain is used.

import { IommuPageResponseCode } from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import type { IommuFaultParam } from './fault-param.js';
import { attachWithHandle, pageRequest, setup } from './iopf.test-helpers.js';
import { iopfQueueFlushDev, iopfQueueRemoveDevice } from './iopf-queue.js';
import { traceIopfPageResponse } from './iopf-trace.js';
import { iommuReportDeviceFault } from './report.js';
import { iopfRespondHandleFaults } from './response.js';
import { iopfWorkHandler } from './work-handler.js';

type Teardown = 'detach' | 'remove';

function run(seed: number, teardown: Teardown, holdSome: boolean) {
  const e = setup({ seed });
  const d = e.devs[0]!;
  let domainFreed = false;
  const misuse: string[] = [];
  const work = iopfWorkHandler((f, g) => {
    if (domainFreed) misuse.push(`resolver ran on a freed domain (group ${f.fault.prm.grpid})`);
    if (g.freed) misuse.push('resolver ran on a freed group');
    return IommuPageResponseCode.SUCCESS;
  });
  const { domain, handle } = attachWithHandle(e.sub, d, 1, (g) => {
    // Odd groups are held (delivered elsewhere) when holdSome; the rest go to the workqueue.
    if (holdSome && g.lastFault.fault.prm.grpid % 2 === 1) return;
    work(g);
  });
  const param = d.iommu!.faultParam as IommuFaultParam;
  const completed = new Set<number>();
  const lastRefused = new Set<number>();
  const groupAnswers = new Map<number, number>();
  const unsubResp = traceIopfPageResponse.subscribe((r) => {
    if (r.cause !== 'no-handler') groupAnswers.set(r.grpid, (groupAnswers.get(r.grpid) ?? 0) + 1);
  });
  const groups = 6;
  // The device: group i has i % 3 partial requests then its last one; one report per task, chained.
  const steps: (() => void)[] = [];
  for (let i = 0; i < groups; i++) {
    for (let p = 0; p < i % 3; p++)
      steps.push(() => void iommuReportDeviceFault(d, pageRequest(i, BigInt(p) << 12n)));
    steps.push(() => {
      // -EINVAL: no handler any more, the last request itself was answered INVALID.
      if (iommuReportDeviceFault(d, pageRequest(i, 0xf000n, { last: true })) === -22) lastRefused.add(i);
      completed.add(i);
    });
  }
  let next = 0;
  const hwTask = () => {
    steps[next++]!();
    if (next < steps.length) e.sched.spawn(hwTask, 'prq');
  };
  e.sched.spawn(hwTask, 'prq');
  // Teardown at a seed-chosen point: after a few scheduler steps.
  const delay = seed % (steps.length + 4);
  let waited = 0;
  const tearTask = () => {
    if (waited++ < delay) {
      e.sched.spawn(tearTask, 'teardown');
      return;
    }
    if (teardown === 'detach') {
      e.sub.iommuDetachDevicePasid(domain, d, 1);
      iopfQueueFlushDev(d);
      iopfRespondHandleFaults(d, handle);
      domainFreed = true;
    } else {
      iopfQueueRemoveDevice(e.queue, d);
    }
  };
  e.sched.spawn(tearTask, 'teardown');
  e.sched.runUntilIdle();
  e.unsub();
  unsubResp();
  return { e, param, completed, lastRefused, groupAnswers, misuse };
}

describe('io-pgfault races (seeded scheduler)', () => {
  for (const teardown of ['detach', 'remove'] as const) {
    for (const holdSome of [false, true]) {
      it(`${teardown} during faults${holdSome ? ' with held groups' : ''}: each group answered once, none pending`, () => {
        for (let seed = 1; seed <= 150; seed++) {
          const { e, param, completed, lastRefused, groupAnswers, misuse } = run(seed, teardown, holdSome);
          const ctx = `seed ${seed}`;
          expect(misuse, ctx).toEqual([]);
          const allowed = teardown === 'remove' ? 'fault with a handler but no fault queue' : '';
          expect(
            e.warnings.filter((w) => w.message !== allowed),
            ctx,
          ).toEqual([]);
          // Every completed group's last request is answered exactly once: as a group, or (handler
          // already gone) on its own; groups that never completed get no group answer.
          for (let i = 0; i < 6; i++) {
            const answers = (groupAnswers.get(i) ?? 0) + (lastRefused.has(i) ? 1 : 0);
            expect(answers, `${ctx} group ${i}`).toBe(completed.has(i) ? 1 : 0);
          }
          expect(param.faults.size, ctx).toBe(0);
          if (teardown === 'remove') {
            expect(param.freed, ctx).toBe(true);
            expect(e.devs[0]!.iommu!.faultParam, ctx).toBeNull();
          }
          expect(e.sched.idle, ctx).toBe(true);
        }
      });
    }
  }
});
