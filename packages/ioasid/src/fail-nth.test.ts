// fail_nth points of the IOASID allocator: ioasid.set_alloc (the set an open of /dev/ioasid
// creates), ioasid.alloc (xa_alloc of an IOASID: IOASID_REQUEST_ALLOC answers EINVAL, as for any
// allocation failure) and ioasid.global_pasid_alloc (iommu_alloc_global_pasid answers
// IOMMU_PASID_INVALID). Nothing is left allocated or charged.
import { faultInjector } from '@iommu-ts/base';
import { errnoOf } from '@iommu-ts/base/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { IOMMU_PASID_INVALID } from './global-pasid.js';
import { IoasidSubsystem } from './ioasid-subsystem.js';
import { IoasidUserDevice } from './ioasid-user.js';
import { IOASID_REQUEST_ALLOC } from './uapi.js';

afterEach(() => faultInjector.disarm());

const task = { pid: 7, mm: { pid: 7 } };

describe('fail_nth: ioasid', () => {
  it('ioasid.set_alloc: the open fails with ENOMEM and leaves no set behind', () => {
    const sub = new IoasidSubsystem();
    const dev = new IoasidUserDevice(sub);
    const cap = sub.capacityAvail;
    faultInjector.arm(1);
    expect(errnoOf(() => dev.open(task))).toBe('ENOMEM');
    expect(faultInjector.fired?.site).toBe('ioasid.set_alloc');
    faultInjector.disarm();
    expect(sub.findMmSet(task.mm)).toBeUndefined();
    expect(dev.fileOf(task)).toBeUndefined();
    expect(sub.capacityAvail).toBe(cap);
    dev.open(task).close();
  });

  it('ioasid.alloc: IOASID_REQUEST_ALLOC fails with EINVAL and the next request gets the same ID', () => {
    const sub = new IoasidSubsystem();
    const f = new IoasidUserDevice(sub).open(task);
    const req = { argsz: 16, flags: 0, range: { min: 10, max: 20 } };
    faultInjector.arm(1);
    expect(errnoOf(() => f.ioctl(IOASID_REQUEST_ALLOC, req))).toBe('EINVAL');
    expect(faultInjector.fired?.site).toBe('ioasid.alloc');
    faultInjector.disarm();
    const ids: number[] = [];
    f.forEachId((id) => ids.push(id));
    expect(ids).toEqual([]);
    expect(f.ioctl(IOASID_REQUEST_ALLOC, req)).toBe(10);
    f.close();
  });

  it('ioasid.global_pasid_alloc: IOMMU_PASID_INVALID, and the PASID stays free', () => {
    const sub = new IoasidSubsystem();
    faultInjector.arm(1);
    expect(sub.allocGlobalPasid(64)).toBe(IOMMU_PASID_INVALID);
    expect(faultInjector.fired?.site).toBe('ioasid.global_pasid_alloc');
    faultInjector.disarm();
    expect(sub.allocGlobalPasid(64)).toBe(1);
  });
});
