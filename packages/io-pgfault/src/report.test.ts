import { ErrnoError } from '@iommu-ts/base';
import { IommuPageResponseCode, type IopfGroupLike } from '@iommu-ts/iommu-core';
import { afterEach, describe, expect, it } from 'vitest';
import { attachWithHandle, pageRequest, setup } from './iopf.test-helpers.js';
import type { IopfGroup } from './iopf-group.js';
import {
  traceIopfFaultPartial,
  traceIopfFaultReceived,
  traceIopfGroupHandled,
  traceIopfGroupQueued,
  traceIopfPageResponse,
} from './iopf-trace.js';
import { iommuReportDeviceFault } from './report.js';
import { iopfFreeGroup, iopfGroupResponse } from './response.js';

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

const summary = (g: IopfGroupLike) => g.faults.map((f) => [f.fault.prm.grpid, f.fault.prm.addr]);

describe('iommuReportDeviceFault: grouping', () => {
  it('keeps partial requests per device and group index until the last request, oldest first', () => {
    const { sub, devs, drv, warnings } = env({ devices: 2 });
    const [a, b] = devs as [NonNullable<(typeof devs)[0]>, NonNullable<(typeof devs)[0]>];
    const got: [string, (number | bigint)[][]][] = [];
    const held: IopfGroupLike[] = [];
    const handler = (g: IopfGroupLike) => {
      got.push([g.dev.name, summary(g)]);
      held.push(g);
    };
    attachWithHandle(sub, a, 1, handler);
    attachWithHandle(sub, b, 1, handler);
    expect(iommuReportDeviceFault(a, pageRequest(1, 0x1000n))).toBe(0);
    expect(iommuReportDeviceFault(a, pageRequest(2, 0x2000n))).toBe(0);
    expect(iommuReportDeviceFault(b, pageRequest(1, 0x9000n))).toBe(0);
    expect(iommuReportDeviceFault(a, pageRequest(1, 0x3000n))).toBe(0);
    expect(got).toEqual([]);
    expect(iommuReportDeviceFault(a, pageRequest(2, 0x4000n, { last: true }))).toBe(0);
    expect(iommuReportDeviceFault(b, pageRequest(1, 0xa000n, { last: true }))).toBe(0);
    expect(iommuReportDeviceFault(a, pageRequest(1, 0x5000n, { last: true }))).toBe(0);
    expect(got).toEqual([
      [
        a.name,
        [
          [2, 0x2000n],
          [2, 0x4000n],
        ],
      ],
      [
        b.name,
        [
          [1, 0x9000n],
          [1, 0xa000n],
        ],
      ],
      [
        a.name,
        [
          [1, 0x1000n],
          [1, 0x3000n],
          [1, 0x5000n],
        ],
      ],
    ]);
    // Nothing answered yet: the handler owns the groups.
    expect(drv.pageResponses).toEqual([]);
    for (const g of held) {
      expect(iopfGroupResponse(g, IommuPageResponseCode.SUCCESS)).toBe(true);
      iopfFreeGroup(g);
    }
    expect(drv.pageResponses.map((r) => [r.dev.name, r.msg])).toEqual([
      [a.name, { pasid: 1, grpid: 2, code: 0 }],
      [b.name, { pasid: 1, grpid: 1, code: 0 }],
      [a.name, { pasid: 1, grpid: 1, code: 0 }],
    ]);
    expect(warnings).toEqual([]);
  });

  it('groups by index only: partial requests with another PASID join the group', () => {
    const { sub, devs } = env();
    const d = devs[0]!;
    const seen: IopfGroupLike[] = [];
    attachWithHandle(sub, d, 1, (g) => void seen.push(g));
    attachWithHandle(sub, d, 2, (g) => void seen.push(g));
    iommuReportDeviceFault(d, pageRequest(7, 0x1000n, { pasid: 2 }));
    iommuReportDeviceFault(d, pageRequest(7, 0x2000n, { pasid: 1, last: true }));
    expect(seen.map((g) => g.faults.map((f) => f.fault.prm.pasid))).toEqual([[2, 1]]);
  });

  it('treats every stall (LAST_PAGE always set) as a single-request group', () => {
    const { sub, devs } = env();
    const d = devs[0]!;
    const seen: number[] = [];
    attachWithHandle(sub, d, 1, (g) => void seen.push(g.faults.length));
    for (let i = 0; i < 3; i++) iommuReportDeviceFault(d, pageRequest(i, BigInt(i) << 12n, { last: true }));
    expect(seen).toEqual([1, 1, 1]);
  });

  it('copies the request: later changes by the driver do not reach the group', () => {
    const { sub, devs } = env();
    const d = devs[0]!;
    let g: IopfGroupLike | undefined;
    attachWithHandle(sub, d, 1, (x) => {
      g = x;
    });
    const f = pageRequest(3, 0x7000n, { last: true });
    iommuReportDeviceFault(d, f);
    f.prm.addr = 0n;
    expect(g?.lastFault.fault.prm.addr).toBe(0x7000n);
  });
});

describe('iommuReportDeviceFault: no handler', () => {
  it('answers INVALID at once with the request PASID and index, and returns -EINVAL', () => {
    const { sub, devs, drv } = env();
    const d = devs[0]!;
    // PASID 3: nothing attached. PASID 4: attached without a handle. PASID 5: handle, no iopfHandler.
    const dom = sub.iommuPagingDomainAlloc(d);
    sub.iommuAttachDevicePasid(dom, d, 4);
    attachWithHandle(sub, d, 5, null);
    expect(iommuReportDeviceFault(d, pageRequest(1, 0x1000n, { pasid: 3, last: true }))).toBe(-22);
    expect(iommuReportDeviceFault(d, pageRequest(2, 0x1000n, { pasid: 4, last: true }))).toBe(-22);
    expect(iommuReportDeviceFault(d, pageRequest(3, 0x1000n, { pasid: 5 }))).toBe(-22);
    // Without a PASID: the RID was attached without a handle by the core.
    expect(iommuReportDeviceFault(d, pageRequest(4, 0x1000n, { pasid: null, last: true }))).toBe(-22);
    expect(drv.pageResponses.map((r) => r.msg)).toEqual([
      { pasid: 3, grpid: 1, code: IommuPageResponseCode.INVALID },
      { pasid: 4, grpid: 2, code: IommuPageResponseCode.INVALID },
      { pasid: 5, grpid: 3, code: IommuPageResponseCode.INVALID },
      { pasid: 0, grpid: 4, code: IommuPageResponseCode.INVALID },
    ]);
  });

  it('uses the RID handle for requests without a PASID', () => {
    const { sub, devs, drv } = env();
    const d = devs[0]!;
    const domain = sub.iommuPagingDomainAlloc(d);
    const seen: number[] = [];
    domain.iopfHandler = (g) => {
      seen.push(g.lastFault.fault.prm.grpid);
      iopfGroupResponse(g, IommuPageResponseCode.SUCCESS);
      iopfFreeGroup(g);
    };
    sub.iommuGroupClaimDmaOwner(d.iommuGroup!, {});
    sub.iommuAttachGroupHandle(domain, d.iommuGroup!, { domain });
    expect(iommuReportDeviceFault(d, pageRequest(9, 0x1000n, { pasid: null, last: true }))).toBe(0);
    expect(seen).toEqual([9]);
    expect(drv.pageResponses.map((r) => r.msg)).toEqual([{ pasid: 0, grpid: 9, code: 0 }]);
  });
});

describe('iommuReportDeviceFault: aborts and limits', () => {
  it('answers FAILURE and frees the group when the handler fails', () => {
    const { sub, devs, drv, warnings } = env();
    const d = devs[0]!;
    let kept: IopfGroup | undefined;
    attachWithHandle(sub, d, 1, (g) => {
      kept = g as IopfGroup;
      throw new ErrnoError('EBUSY');
    });
    iommuReportDeviceFault(d, pageRequest(1, 0x1000n));
    expect(iommuReportDeviceFault(d, pageRequest(1, 0x2000n, { last: true }))).toBe(0);
    expect(drv.pageResponses.map((r) => r.msg)).toEqual([
      { pasid: 1, grpid: 1, code: IommuPageResponseCode.FAILURE },
    ]);
    expect(kept?.freed).toBe(true);
    expect(warnings.map((w) => w.message)).toEqual(['iopf with pasid 1 aborted']);
    expect((d.iommu!.faultParam as { users: number }).users).toBe(1);
  });

  it('drops partial requests over the per-device limit with -ENOMEM and no response', () => {
    const { sub, devs, drv } = env({ queue: { maxPartialPerDevice: 2 } });
    const d = devs[0]!;
    const seen: number[] = [];
    attachWithHandle(sub, d, 1, (g) => void seen.push(g.faults.length));
    expect(iommuReportDeviceFault(d, pageRequest(1, 0x1000n))).toBe(0);
    expect(iommuReportDeviceFault(d, pageRequest(1, 0x2000n))).toBe(0);
    expect(iommuReportDeviceFault(d, pageRequest(1, 0x3000n))).toBe(-12);
    expect(drv.pageResponses).toEqual([]);
    iommuReportDeviceFault(d, pageRequest(1, 0x4000n, { last: true }));
    expect(seen).toEqual([3]);
  });

  it('aborts a group over the pending limit with FAILURE, as an allocation failure does', () => {
    const { sub, devs, drv } = env({ queue: { maxPendingPerDevice: 1 } });
    const d = devs[0]!;
    const seen: number[] = [];
    attachWithHandle(sub, d, 1, (g) => void seen.push(g.lastFault.fault.prm.grpid));
    iommuReportDeviceFault(d, pageRequest(1, 0x1000n, { last: true }));
    iommuReportDeviceFault(d, pageRequest(2, 0x1000n));
    iommuReportDeviceFault(d, pageRequest(2, 0x2000n, { last: true }));
    expect(seen).toEqual([1]);
    expect(drv.pageResponses.map((r) => r.msg)).toEqual([
      { pasid: 1, grpid: 2, code: IommuPageResponseCode.FAILURE },
    ]);
    // The aborted group's partial request went with it.
    expect((d.iommu!.faultParam as { partialCount: number }).partialCount).toBe(0);
  });

  it('makes allocations fail on demand (fault injection)', () => {
    let fail: 'partial' | 'group' | null = 'partial';
    const { sub, devs, drv } = env({ queue: { failAlloc: (w) => w === fail } });
    const d = devs[0]!;
    attachWithHandle(sub, d, 1, () => {});
    expect(iommuReportDeviceFault(d, pageRequest(1, 0x1000n))).toBe(-12);
    fail = 'group';
    expect(iommuReportDeviceFault(d, pageRequest(1, 0x1000n, { last: true }))).toBe(0);
    expect(drv.pageResponses.map((r) => r.msg.code)).toEqual([IommuPageResponseCode.FAILURE]);
  });
});

describe('tracepoints', () => {
  it('traces every step of a fault, in order', () => {
    const { sub, devs } = env();
    const d = devs[0]!;
    const log: string[] = [];
    const subs = [
      traceIopfFaultReceived.subscribe((e) => log.push(`received ${e.grpid} ${e.addr}`)),
      traceIopfFaultPartial.subscribe((e) => log.push(`partial ${e.grpid}`)),
      traceIopfGroupQueued.subscribe((e) => log.push(`queued ${e.grpid} x${e.faultCount}`)),
      traceIopfGroupHandled.subscribe((e) => log.push(`handled ${e.grpid} ${e.result}`)),
      traceIopfPageResponse.subscribe((e) => log.push(`response ${e.grpid} ${e.code} ${e.cause}`)),
    ];
    cleanup.push(...subs);
    attachWithHandle(sub, d, 1, (g) => {
      iopfGroupResponse(g, IommuPageResponseCode.SUCCESS);
      iopfFreeGroup(g);
    });
    iommuReportDeviceFault(d, pageRequest(4, 0x1000n));
    iommuReportDeviceFault(d, pageRequest(4, 0x2000n, { last: true }));
    iommuReportDeviceFault(d, pageRequest(5, 0x2000n, { pasid: 9, last: true }));
    expect(log).toEqual([
      'received 4 4096',
      'partial 4',
      'received 4 8192',
      'queued 4 x2',
      'response 4 0 handler',
      'handled 4 0',
      'received 5 8192',
      'response 5 1 no-handler',
    ]);
  });
});
