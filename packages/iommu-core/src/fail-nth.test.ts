// fail_nth points of the IOMMU core: iommu_core.domain_alloc (the driver's paging-domain
// allocation) and iommu_core.pasid_array_insert (the xa_insert of an
// attach handle into the group's PASID array): each fails with ENOMEM before anything changes.
import { faultInjector } from '@iommu-ts/base';
import { errnoOf } from '@iommu-ts/base/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { IommuSubsystem } from './iommu-subsystem.js';
import { PCI_ACS_RR, PCI_ACS_UF, PciHostBridge } from './pci.js';
import { TestIommu } from './testing/test-iommu.js';

afterEach(() => faultInjector.disarm());

function make() {
  const warnings: string[] = [];
  const sub = new IommuSubsystem({ log: (_l, m) => warnings.push(m) });
  const drv = new TestIommu({ maxPasids: 64 });
  drv.register(sub);
  const hb = new PciHostBridge();
  const dev = hb.rootBus.addDevice({
    devfn: 8,
    acs: { cap: 0x1f, ctrl: PCI_ACS_RR | PCI_ACS_UF },
    pasid: { maxPasidWidth: 4 },
  });
  expect(sub.addDevice(dev)).toBeNull();
  return { sub, drv, dev, warnings };
}

describe('fail_nth: iommu_core.domain_alloc', () => {
  it('fails the paging-domain allocation with ENOMEM without calling the driver', () => {
    const { sub, drv, dev } = make();
    const calls = drv.calls.length;
    faultInjector.arm(1);
    expect(errnoOf(() => sub.iommuPagingDomainAlloc(dev))).toBe('ENOMEM');
    expect(faultInjector.fired?.site).toBe('iommu_core.domain_alloc');
    faultInjector.disarm();
    expect(drv.calls.length).toBe(calls);
    const d = sub.iommuPagingDomainAlloc(dev);
    sub.iommuDomainFree(d);
  });
});

describe('fail_nth: iommu_core.pasid_array_insert', () => {
  it('a failed RID attach with a handle keeps the group on its default domain with no handle', () => {
    const { sub, dev, warnings } = make();
    const group = dev.iommuGroup!;
    const dom = sub.iommuPagingDomainAlloc(dev);
    faultInjector.arm(1);
    expect(errnoOf(() => sub.iommuAttachGroupHandle(dom, group, { domain: dom }))).toBe('ENOMEM');
    expect(faultInjector.fired?.site).toBe('iommu_core.pasid_array_insert');
    faultInjector.disarm();
    expect(group.domain).toBe(group.defaultDomain);
    expect(group.pasidArray.size).toBe(0);
    sub.iommuAttachGroupHandle(dom, group, { domain: dom });
    expect(group.domain).toBe(dom);
    sub.iommuDetachGroupHandle(dom, group);
    expect(warnings).toEqual([]);
  });

  it('a failed PASID attach leaves the PASID free', () => {
    const { sub, dev } = make();
    const dom = sub.iommuPagingDomainAlloc(dev);
    faultInjector.arm(1);
    expect(errnoOf(() => sub.iommuAttachDevicePasid(dom, dev, 5))).toBe('ENOMEM');
    faultInjector.disarm();
    expect(dev.iommuGroup!.pasidArray.has(5)).toBe(false);
    sub.iommuAttachDevicePasid(dom, dev, 5);
    expect(dev.iommuGroup!.pasidArray.get(5)?.domain).toBe(dom);
  });
});
