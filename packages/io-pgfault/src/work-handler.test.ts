import { ErrnoError } from '@iommu-ts/base';
import { IommuPageResponseCode, type IopfGroupLike } from '@iommu-ts/iommu-core';
import { afterEach, describe, expect, it } from 'vitest';
import { attachWithHandle, pageRequest, setup } from './iopf.test-helpers.js';
import type { IopfGroup } from './iopf-group.js';
import { iommuReportDeviceFault } from './report.js';
import { iopfWorkHandler } from './work-handler.js';

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup) f();
  cleanup = [];
});

describe('iopfWorkHandler', () => {
  for (const [name, code] of Object.entries(IommuPageResponseCode)) {
    it(`answers the group with the resolver's ${name} and frees it`, () => {
      const e = setup();
      cleanup.push(e.unsub);
      const d = e.devs[0]!;
      const groups: IopfGroup[] = [];
      const calls: bigint[] = [];
      attachWithHandle(
        e.sub,
        d,
        1,
        iopfWorkHandler((f, g) => {
          calls.push(f.fault.prm.addr);
          if (!groups.includes(g)) groups.push(g);
          return f.fault.prm.addr === 0x2000n ? code : IommuPageResponseCode.SUCCESS;
        }),
      );
      iommuReportDeviceFault(d, pageRequest(1, 0x1000n));
      iommuReportDeviceFault(d, pageRequest(1, 0x2000n));
      iommuReportDeviceFault(d, pageRequest(1, 0x3000n, { last: true }));
      e.sched.runUntilIdle();
      // Errors are sticky: after a non-SUCCESS code the rest of the group is not resolved.
      expect(calls).toEqual(code === 0 ? [0x1000n, 0x2000n, 0x3000n] : [0x1000n, 0x2000n]);
      expect(e.drv.pageResponses.map((r) => r.msg)).toEqual([{ pasid: 1, grpid: 1, code }]);
      expect(groups[0]?.freed).toBe(true);
      expect(e.warnings).toEqual([]);
    });
  }

  it('counts a resolver ErrnoError as INVALID', () => {
    const e = setup();
    cleanup.push(e.unsub);
    const d = e.devs[0]!;
    attachWithHandle(
      e.sub,
      d,
      1,
      iopfWorkHandler(() => {
        throw new ErrnoError('EFAULT');
      }),
    );
    iommuReportDeviceFault(d, pageRequest(2, 0x1000n, { last: true }));
    e.sched.runUntilIdle();
    expect(e.drv.pageResponses.map((r) => r.msg.code)).toEqual([IommuPageResponseCode.INVALID]);
  });

  it('refuses a group whose work is already queued (EBUSY), which the core aborts with FAILURE', () => {
    const e = setup();
    cleanup.push(e.unsub);
    const d = e.devs[0]!;
    const inner = iopfWorkHandler(() => IommuPageResponseCode.SUCCESS);
    attachWithHandle(e.sub, d, 1, (g: IopfGroupLike) => {
      inner(g);
      inner(g);
    });
    iommuReportDeviceFault(d, pageRequest(2, 0x1000n, { last: true }));
    e.sched.runUntilIdle();
    // FAILURE from the abort; the queued work then finds the group answered and freed.
    expect(e.drv.pageResponses.map((r) => r.msg.code)).toEqual([IommuPageResponseCode.FAILURE]);
    expect(e.warnings.map((w) => w.message)).toContain('iopf with pasid 1 aborted');
  });

  it('runs groups on the queue workqueue, interleaved by a seeded scheduler', () => {
    const orders = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) {
      const e = setup({ seed });
      const d = e.devs[0]!;
      attachWithHandle(
        e.sub,
        d,
        1,
        iopfWorkHandler(() => IommuPageResponseCode.SUCCESS),
      );
      for (let i = 0; i < 4; i++) iommuReportDeviceFault(d, pageRequest(i, 0x1000n, { last: true }));
      e.sched.runUntilIdle();
      orders.add(e.drv.pageResponses.map((r) => r.msg.grpid).join(','));
      expect(e.drv.pageResponses).toHaveLength(4);
      e.unsub();
    }
    expect(orders.size).toBeGreaterThan(1);
  });
});
