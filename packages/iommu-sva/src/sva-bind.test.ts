import { errnoOf } from '@iommu-ts/base/testing';
import { IOMMU_PASID_INVALID } from '@iommu-ts/ioasid';
import { IOMMU_DOMAIN_SVA, PlatformDevice } from '@iommu-ts/iommu-core';
import type { TestIommuCall } from '@iommu-ts/iommu-core/testing';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import type { IommuMmData } from './mm-data.js';
import { setup } from './sva.test-helpers.js';
import { iommuSvaBindDevice, iommuSvaFind, iommuSvaGetPasid, iommuSvaUnbindDevice } from './sva-bind.js';
import { iommuSvaSetOptions } from './sva-state.js';

const ops = (calls: TestIommuCall[], op: TestIommuCall['op']) => calls.filter((c) => c.op === op);

describe('bind and unbind', () => {
  it('returns the same handle for the same device and mm, reference counted', () => {
    const { fn, proc, drv, sub } = setup();
    const dev = fn();
    const p = proc();
    const a = iommuSvaBindDevice(dev, p.mm);
    const b = iommuSvaBindDevice(dev, p.mm);
    expect(b).toBe(a);
    expect(a.users).toBe(2);
    const pasid = iommuSvaGetPasid(a);
    expect(pasid).toBe(1); // lowest free in [1, max_pasids - 1]
    expect(a.domain.type).toBe(IOMMU_DOMAIN_SVA);
    expect(a.domain.mm).toBe(p.mm);
    expect(ops(drv.calls, 'set_dev_pasid')).toHaveLength(1);
    iommuSvaUnbindDevice(b);
    expect(a.users).toBe(1);
    expect(dev.iommuGroup!.pasidArray.get(pasid)?.handle).toBe(a.handle);
    iommuSvaUnbindDevice(a);
    expect(dev.iommuGroup!.pasidArray.has(pasid)).toBe(false);
    expect(ops(drv.calls, 'domain_free').map((c) => (c as { domain: unknown }).domain)).toEqual([a.domain]);
    // The PASID stays with the mm after unbind.
    expect(p.mm.iommuMm?.pasid).toBe(pasid);
    expect(iommuSvaBindDevice(dev, p.mm).domain).not.toBe(a.domain);
    expect(() => iommuSvaUnbindDevice(a)).toThrow();
    void sub;
  });

  it('shares one SVA domain between two devices bound to the same mm', () => {
    const { fn, proc, drv } = setup();
    const d1 = fn();
    const d2 = fn();
    const p = proc();
    const a = iommuSvaBindDevice(d1, p.mm);
    const b = iommuSvaBindDevice(d2, p.mm);
    expect(b).not.toBe(a);
    expect(b.domain).toBe(a.domain);
    expect(a.domain.users).toBe(2);
    expect(iommuSvaGetPasid(b)).toBe(iommuSvaGetPasid(a));
    iommuSvaUnbindDevice(a);
    expect(ops(drv.calls, 'domain_free')).toHaveLength(0);
    iommuSvaUnbindDevice(b);
    expect(ops(drv.calls, 'domain_free')).toHaveLength(1);
  });

  it('gives each mm its own PASID, reused only after the mm is gone', () => {
    const { fn, proc, sub } = setup();
    const dev = fn();
    const p1 = proc();
    const p2 = proc();
    const h1 = iommuSvaBindDevice(dev, p1.mm);
    const h2 = iommuSvaBindDevice(dev, p2.mm);
    expect([iommuSvaGetPasid(h1), iommuSvaGetPasid(h2)]).toEqual([1, 2]);
    const found = iommuSvaFind(1, sub);
    expect(found).toBe(p1.mm);
    found?.mmput();
    iommuSvaUnbindDevice(h1);
    // Unbound but alive: PASID 1 is still p1's; a new mm gets 3.
    const p3 = proc();
    expect(iommuSvaGetPasid(iommuSvaBindDevice(dev, p3.mm))).toBe(3);
    const mm1 = p1.mm;
    const data = mm1.iommuMm as IommuMmData;
    p1.exit();
    expect(data.dropped).toBe(true);
    expect(mm1.iommuMm).toBeNull();
    expect(iommuSvaFind(1, sub)).toBeNull();
    const p4 = proc();
    expect(iommuSvaGetPasid(iommuSvaBindDevice(dev, p4.mm))).toBe(1);
  });

  it('does not share the PASID with a forked child', () => {
    const { fn, proc } = setup();
    const dev = fn();
    const p = proc();
    iommuSvaBindDevice(dev, p.mm);
    const child = p.fork();
    expect(child.mm.iommuMm).toBeNull();
    expect(iommuSvaGetPasid(iommuSvaBindDevice(dev, child.mm))).toBe(2);
  });
});

describe('preconditions and their errnos', () => {
  it('ENODEV without an IOMMU group', () => {
    const { proc } = setup();
    const lone = new PlatformDevice('lone');
    expect(errnoOf(() => iommuSvaBindDevice(lone, proc().mm))).toBe('ENODEV');
  });

  it('ENOSPC for a device without PASIDs, EOVERFLOW when the mm PASID does not fit', () => {
    const { fn, proc } = setup();
    const noPasid = fn({ pasidBits: 0 });
    const p = proc();
    expect(errnoOf(() => iommuSvaBindDevice(noPasid, p.mm))).toBe('ENOSPC');
    expect(p.mm.iommuMm).toBeNull();
    // Take PASIDs 1..3 with other mms, then bind a 4th mm (PASID 4) to a 2-bit device.
    const wide = fn();
    for (let i = 0; i < 3; i++) iommuSvaBindDevice(wide, proc().mm);
    const q = proc();
    iommuSvaBindDevice(wide, q.mm);
    const narrow = fn({ pasidBits: 2 });
    expect(errnoOf(() => iommuSvaBindDevice(narrow, q.mm))).toBe('EOVERFLOW');
    expect(narrow.iommuGroup!.pasidArray.size).toBe(0);
  });

  it('EINVAL when the group is not a singleton (seed default); allowed with the ACS rule', () => {
    const { fn, proc, sub } = setup();
    // Without ACS on the root bus, functions share a group; PASID cannot be enabled either.
    const a = fn({ acs: false, multifunction: 0 });
    const b = fn({ acs: false, multifunction: 1 });
    expect(a.iommuGroup?.id).toBe(b.iommuGroup?.id);
    const p = proc();
    expect(errnoOf(() => iommuSvaBindDevice(a, p.mm))).toBe('EINVAL');
    expect(p.mm.iommuMm).toBeNull();
    iommuSvaSetOptions(sub, { groupCheck: 'acs' });
    // Merged Linux: the function needs PASID enabled, which pci_enable_pasid refused without ACS.
    expect(errnoOf(() => iommuSvaBindDevice(a, p.mm))).toBe('EINVAL');
    const c = fn();
    expect(iommuSvaGetPasid(iommuSvaBindDevice(c, p.mm))).toBeGreaterThan(0);
  });

  it('EINVAL when I/O page faults are not enabled; the PASID stays with the mm', () => {
    const { fn, proc } = setup();
    const dev = fn({ pri: false });
    const p = proc();
    expect(errnoOf(() => iommuSvaBindDevice(dev, p.mm))).toBe('EINVAL');
    expect(dev.iommuGroup!.pasidArray.size).toBe(0);
    expect(p.mm.iommuMm?.pasid).toBe(1);
  });

  it('EBUSY when the PASID holds another domain; EOPNOTSUPP without SVA support; driver errors', () => {
    const { fn, proc, sub, drv } = setup();
    const dev = fn();
    const p = proc();
    const paging = sub.iommuPagingDomainAlloc(dev);
    sub.iommuAttachDevicePasid(paging, dev, 1);
    expect(errnoOf(() => iommuSvaBindDevice(dev, p.mm))).toBe('EBUSY');
    sub.iommuDetachDevicePasid(paging, dev, 1);
    drv.failNext.setDevPasid.push('ENOMEM');
    const before = ops(drv.calls, 'domain_free').length;
    expect(errnoOf(() => iommuSvaBindDevice(dev, p.mm))).toBe('ENOMEM');
    expect(ops(drv.calls, 'domain_free').length).toBe(before + 1);
    expect(p.mm.count).toBe(1); // the freed domain dropped its mm grab
    const allocSva = drv.ops.domainAllocSva;
    delete drv.ops.domainAllocSva;
    expect(errnoOf(() => iommuSvaBindDevice(dev, p.mm))).toBe('EOPNOTSUPP');
    if (allocSva) drv.ops.domainAllocSva = allocSva;
    expect(iommuSvaGetPasid(iommuSvaBindDevice(dev, p.mm))).toBe(1);
  });
});

describe('MMU notifier glue', () => {
  it('turns every mm invalidation into the domain invalidation with the same range', () => {
    const { fn, proc, drv } = setup();
    const dev = fn();
    const p = proc();
    const va = p.mmap(0x4000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.write(va, new Uint8Array(0x4000).fill(1));
    const h = iommuSvaBindDevice(dev, p.mm);
    p.munmap(va + 0x1000, 0x2000);
    const inv = ops(drv.calls, 'mm_invalidate') as { start: number; end: number; domain: unknown }[];
    expect(inv.length).toBeGreaterThan(0);
    expect(inv.every((c) => c.domain === h.domain)).toBe(true);
    expect(inv.some((c) => c.start <= va + 0x1000 && c.end >= va + 0x3000)).toBe(true);
    // After unbind nothing reaches the freed domain.
    iommuSvaUnbindDevice(h);
    const n = ops(drv.calls, 'mm_invalidate').length;
    p.munmap(va, 0x1000);
    expect(ops(drv.calls, 'mm_invalidate').length).toBe(n);
    expect(ops(drv.calls, 'mm_release')).toHaveLength(0);
  });

  it('keeps the PASID of an exited process until its last SVA domain is freed (mm_pasid_drop in __mmdrop)', () => {
    const { fn, proc } = setup();
    const dev = fn();
    const p = proc();
    const h = iommuSvaBindDevice(dev, p.mm);
    const pasid = iommuSvaGetPasid(h);
    p.exit();
    // The bound SVA domain holds the mm_struct: the PASID stays the mm's, no one else gets it.
    expect(iommuSvaGetPasid(h)).toBe(pasid);
    const q = proc();
    const h2 = iommuSvaBindDevice(dev, q.mm);
    expect(iommuSvaGetPasid(h2)).not.toBe(pasid);
    iommuSvaUnbindDevice(h);
    // The domain's mmdrop freed the mm_struct: the PASID went back to the global space.
    expect(iommuSvaGetPasid(h)).toBe(IOMMU_PASID_INVALID);
    iommuSvaUnbindDevice(h2);
  });
});
