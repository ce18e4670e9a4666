import { errnoOf } from '@iommu-ts/base/testing';
import {
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IommuPageResponseCode,
  type IopfGroupLike,
} from '@iommu-ts/iommu-core';
import { afterEach, describe, expect, it } from 'vitest';
import { attachWithHandle, pageRequest, setup } from './iopf.test-helpers.js';
import type { IopfGroup } from './iopf-group.js';
import { iommuReportDeviceFault } from './report.js';
import {
  IOMMU_PAGE_RESP_PASID_VALID,
  iommuPageResponse,
  iopfFreeGroup,
  iopfGroupResponse,
  iopfRespondHandleFaults,
} from './response.js';

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

describe('iopfGroupResponse', () => {
  it('sends exactly one response per group, with the last request PASID and index', () => {
    const { sub, devs, drv } = env();
    const d = devs[0]!;
    const held: IopfGroupLike[] = [];
    attachWithHandle(sub, d, 6, (g) => void held.push(g));
    iommuReportDeviceFault(d, pageRequest(3, 0x1000n, { pasid: 6 }));
    iommuReportDeviceFault(d, pageRequest(3, 0x2000n, { pasid: 6, last: true }));
    const g = held[0]!;
    expect(iopfGroupResponse(g, IommuPageResponseCode.INVALID)).toBe(true);
    expect(iopfGroupResponse(g, IommuPageResponseCode.SUCCESS)).toBe(false);
    iopfFreeGroup(g);
    expect(drv.pageResponses).toHaveLength(1);
    expect(drv.pageResponses[0]?.msg).toEqual({ pasid: 6, grpid: 3, code: IommuPageResponseCode.INVALID });
    // The driver receives the LAST_PAGE request as the event (it decides whether to echo the PASID).
    expect(drv.pageResponses[0]?.evt.prm.flags).toBe(
      (pageRequest(3, 0n, { pasid: 6, last: true }).prm.flags & ~0) | IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
    );
    expect((g as IopfGroup).freed).toBe(true);
  });

  it('answers the held groups of a detached handle INVALID, and only those', () => {
    const { sub, devs, drv } = env();
    const d = devs[0]!;
    const held: IopfGroupLike[] = [];
    const a = attachWithHandle(sub, d, 1, (g) => void held.push(g));
    attachWithHandle(sub, d, 2, (g) => void held.push(g));
    iommuReportDeviceFault(d, pageRequest(1, 0x1000n, { pasid: 1, last: true }));
    iommuReportDeviceFault(d, pageRequest(2, 0x1000n, { pasid: 2, last: true }));
    iommuReportDeviceFault(d, pageRequest(3, 0x1000n, { pasid: 1, last: true }));
    sub.iommuDetachDevicePasid(a.domain, d, 1);
    expect(iopfRespondHandleFaults(d, a.handle)).toBe(2);
    expect(drv.pageResponses.map((r) => [r.msg.grpid, r.msg.code])).toEqual([
      [1, 1],
      [3, 1],
    ]);
    // The holder's own answers are no longer sent; freeing is still theirs.
    for (const g of held) iopfGroupResponse(g, IommuPageResponseCode.SUCCESS);
    expect(drv.pageResponses.map((r) => [r.msg.grpid, r.msg.code])).toEqual([
      [1, 1],
      [3, 1],
      [2, 0],
    ]);
    for (const g of held) iopfFreeGroup(g);
    expect((d.iommu!.faultParam as { users: number }).users).toBe(1);
  });
});

describe('iommuPageResponse (uAPI era matching)', () => {
  it('matches by group index and, for NEEDS_PASID requests, by PASID', () => {
    const { sub, devs, drv } = env();
    const d = devs[0]!;
    const held: IopfGroupLike[] = [];
    attachWithHandle(sub, d, 1, (g) => void held.push(g));
    attachWithHandle(sub, d, 2, (g) => void held.push(g));
    iommuReportDeviceFault(d, pageRequest(8, 0x1000n, { pasid: 1, last: true }));
    iommuReportDeviceFault(d, pageRequest(8, 0x1000n, { pasid: 2, last: true }));
    // Without PASID_VALID no NEEDS_PASID request matches.
    expect(errnoOf(() => iommuPageResponse(d, { version: 1, flags: 0, pasid: 2, grpid: 8, code: 0 }))).toBe(
      'EINVAL',
    );
    iommuPageResponse(d, { version: 1, flags: IOMMU_PAGE_RESP_PASID_VALID, pasid: 2, grpid: 8, code: 0 });
    expect(drv.pageResponses.map((r) => r.msg)).toEqual([{ pasid: 2, grpid: 8, code: 0 }]);
    expect(iopfGroupResponse(held[1]!, 0)).toBe(false);
    expect(errnoOf(() => iommuPageResponse(d, { version: 2, flags: 0, pasid: 0, grpid: 8, code: 0 }))).toBe(
      'EINVAL',
    );
    expect(errnoOf(() => iommuPageResponse(d, { version: 1, flags: 2, pasid: 0, grpid: 8, code: 0 }))).toBe(
      'EINVAL',
    );
    expect(errnoOf(() => iommuPageResponse(d, { version: 1, flags: 1, pasid: 1, grpid: 9, code: 0 }))).toBe(
      'EINVAL',
    );
    iommuPageResponse(d, { version: 1, flags: 1, pasid: 1, grpid: 8, code: 2 });
    expect(errnoOf(() => iommuPageResponse(d, { version: 1, flags: 1, pasid: 1, grpid: 8, code: 0 }))).toBe(
      'EINVAL',
    );
    expect(drv.pageResponses.map((r) => r.msg.code)).toEqual([0, 2]);
  });

  it('accepts a response with a PASID for a request that needs none (the PASID is not used)', () => {
    const { sub, devs, drv } = env();
    const d = devs[0]!;
    attachWithHandle(sub, d, 1, () => {});
    const f = pageRequest(4, 0x1000n, { pasid: 1, last: true });
    f.prm.flags = IOMMU_FAULT_PAGE_REQUEST_PASID_VALID | IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE; // no NEEDS_PASID
    iommuReportDeviceFault(d, f);
    iommuPageResponse(d, { version: 1, flags: 1, pasid: 77, grpid: 4, code: 0 });
    expect(drv.pageResponses.map((r) => r.msg.grpid)).toEqual([4]);
  });

  it('refuses devices off a queue (ENODEV)', () => {
    const { devs, queue } = env();
    queue.devices.clear();
    devs[0]!.iommu!.faultParam = null;
    expect(
      errnoOf(() => iommuPageResponse(devs[0]!, { version: 1, flags: 0, pasid: 0, grpid: 0, code: 0 })),
    ).toBe('ENODEV');
  });
});
