import { type ErrnoCode, ErrnoError, isErrnoError } from '@iommu-ts/base';
import { IOMMU_PASID_INVALID } from '@iommu-ts/ioasid';
import { describe, expect, it } from 'vitest';
import { PlatformDevice } from './device.js';
import {
  IOMMU_DOMAIN_BLOCKED,
  IOMMU_DOMAIN_DMA,
  IOMMU_DOMAIN_DMA_FQ,
  IOMMU_DOMAIN_IDENTITY,
  IOMMU_DOMAIN_UNMANAGED,
  IOMMU_READ,
  IOMMU_WRITE,
} from './domain.js';
import { IOMMU_FAULT_PERM_READ, IOMMU_FAULT_PERM_WRITE } from './fault.js';
import { IommuSubsystem, type IommuSubsystemOptions } from './iommu-subsystem.js';
import { iommuIovaToPhys, iommuMap } from './map.js';
import { DeviceTree, DtNode, ofMapId } from './of-iommu.js';
import { PCI_ACS_CR, PCI_ACS_RR, PCI_ACS_SV, PCI_ACS_UF, PciHostBridge } from './pci.js';
import { IommuResvType } from './resv-region.js';
import { TestIommu, type TestIommuOptions } from './testing/test-iommu.js';

const ACS = {
  cap: PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF,
  ctrl: PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF,
};

function errno(fn: () => unknown): ErrnoCode | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (isErrnoError(e)) return e.code;
    throw e;
  }
}

function make(opts: TestIommuOptions = {}, subOpts: IommuSubsystemOptions = {}) {
  const warnings: string[] = [];
  const sub = new IommuSubsystem({ log: (l, m) => l === 'warn' && warnings.push(m), ...subOpts });
  const drv = new TestIommu(opts);
  drv.register(sub);
  const hb = new PciHostBridge();
  return { sub, drv, hb, warnings };
}

describe('probe and grouping', () => {
  it('separates functions behind ACS root ports and merges those behind non-ACS ones', () => {
    const { sub, hb } = make();
    const rpA = hb.rootBus.addDevice({ devfn: 0x08, pcieType: 'root_port', acs: ACS });
    const rpB = hb.rootBus.addDevice({ devfn: 0x10, pcieType: 'root_port' });
    const busA = rpA.addSecondaryBus(1);
    const busB = rpB.addSecondaryBus(2);
    const a = busA.addDevice({ devfn: 0 });
    const b0 = busB.addDevice({ devfn: 0 });
    const b1 = busB.addDevice({ devfn: 0x08 });
    for (const d of [rpA, rpB, a, b0, b1]) expect(sub.addDevice(d)).toBeNull();
    expect(a.iommuGroup).not.toBe(rpA.iommuGroup);
    expect(a.iommuGroup?.immutableSingleton).toBe(true);
    // behind a root port without ACS: grouped with the port
    expect(b0.iommuGroup).toBe(rpB.iommuGroup);
    expect(b1.iommuGroup).toBe(rpB.iommuGroup);
    expect(b0.iommuGroup?.deviceCount).toBe(3);
    expect(b0.iommuGroup?.defaultDomain?.type).toBe(IOMMU_DOMAIN_DMA);
    expect(b0.iommuGroup?.domain).toBe(b0.iommuGroup?.defaultDomain);
  });

  it('groups non-isolated functions of a multifunction slot, but not ACS-isolated ones', () => {
    const { sub, hb } = make();
    const f0 = hb.rootBus.addDevice({ devfn: 0x20, multifunction: true });
    const f1 = hb.rootBus.addDevice({ devfn: 0x21, multifunction: true });
    const g0 = hb.rootBus.addDevice({ devfn: 0x28, multifunction: true, acs: ACS });
    const g1 = hb.rootBus.addDevice({ devfn: 0x29, multifunction: true, acs: ACS });
    for (const d of [f0, f1, g0, g1]) sub.addDevice(d);
    expect(f0.iommuGroup).toBe(f1.iommuGroup);
    expect(f0.iommuGroup?.immutableSingleton).toBe(false);
    expect(g0.iommuGroup).not.toBe(g1.iommuGroup);
  });

  it('follows DMA aliases and PCIe-to-PCI bridge aliases', () => {
    const { sub, hb, drv } = make();
    const a = hb.rootBus.addDevice({ devfn: 0x30, dmaAliases: [0x31] });
    const b = hb.rootBus.addDevice({ devfn: 0x31 });
    sub.addDevice(a);
    sub.addDevice(b);
    expect(a.iommuGroup).toBe(b.iommuGroup);
    const rp = hb.rootBus.addDevice({ devfn: 0x40, pcieType: 'root_port', acs: ACS });
    const br = rp.addSecondaryBus(3).addDevice({ devfn: 0, pcieType: 'pci_bridge' });
    const legacyBus = br.addSecondaryBus(4);
    const c = legacyBus.addDevice({ devfn: 0x08, pcieType: 'pci' });
    const d = legacyBus.addDevice({ devfn: 0x10, pcieType: 'pci' });
    for (const x of [rp, br, c, d]) sub.addDevice(x);
    expect(c.iommuGroup).toBe(br.iommuGroup);
    expect(d.iommuGroup).toBe(br.iommuGroup);
    expect(drv.streams.has(c.requesterId)).toBe(true);
  });

  it('probes devices added before the IOMMU registers (bus probe) and releases them', () => {
    const sub = new IommuSubsystem();
    const hb = new PciHostBridge();
    const d = hb.rootBus.addDevice({ devfn: 8 });
    expect(sub.addDevice(d)?.code).toBe('ENODEV');
    const drv = new TestIommu();
    drv.register(sub);
    expect(d.iommuGroup?.defaultDomain?.type).toBe(IOMMU_DOMAIN_DMA);
    expect(drv.calls.map((c) => c.op)).toEqual(['probe_device', 'attach_dev', 'probe_finalize']);
    sub.removeDevice(d);
    expect(d.iommuGroup).toBeNull();
    expect(drv.calls.map((c) => c.op).slice(-2)).toEqual(['release_device', 'domain_free']);
  });

  it('uses def_domain_type, passthrough and the singleton-group helper', () => {
    const { sub, hb } = make({ defDomainType: () => IOMMU_DOMAIN_IDENTITY });
    const d = hb.rootBus.addDevice({ devfn: 8 });
    sub.addDevice(d);
    expect(sub.iommuGetDmaDomain(d)?.type).toBe(IOMMU_DOMAIN_IDENTITY);
    const s = make({ grouping: 'single' }, { passthrough: true });
    const p1 = new PlatformDevice('p1', { firmwareIds: [1] });
    const p2 = new PlatformDevice('p2', { firmwareIds: [2] });
    s.sub.addDevice(p1);
    s.sub.addDevice(p2);
    expect(p1.iommuGroup).toBe(p2.iommuGroup);
    expect(p1.iommuGroup?.defaultDomain?.type).toBe(IOMMU_DOMAIN_IDENTITY);
  });

  it('computes max_pasids from the PASID capability or pasid-num-bits, capped by the IOMMU', () => {
    const { sub, hb } = make({ maxPasids: 1 << 16 });
    const d = hb.rootBus.addDevice({ devfn: 8, pasid: { maxPasidWidth: 20 } });
    const e = hb.rootBus.addDevice({ devfn: 0x10, pasid: { maxPasidWidth: 5 } });
    const p = new PlatformDevice('p', { firmwareIds: [7], pasidNumBits: 3 });
    const q = new PlatformDevice('q', { firmwareIds: [0x900] });
    for (const x of [d, e, p, q]) sub.addDevice(x);
    expect([d, e, p, q].map((x) => x.iommu?.maxPasids)).toEqual([1 << 16, 32, 8, 0]);
    expect(sub.iommuAllocGlobalPasid(q)).toBe(IOMMU_PASID_INVALID);
    expect(sub.iommuAllocGlobalPasid(p)).toBe(1);
    expect(sub.iommuAllocGlobalPasid(d)).toBe(2);
    sub.iommuFreeGlobalPasid(1);
    expect(sub.iommuAllocGlobalPasid(e)).toBe(1);
  });
});

describe('device tree', () => {
  it('of_map_id: translation, bypass and errors', () => {
    const tree = new DeviceTree();
    const smmu = tree.add(new DtNode('smmu', 1, { '#iommu-cells': 1 }));
    const host = new DtNode('pcie', 0, { 'iommu-map': [0, 1, 0x1_0000, 0x100], 'iommu-map-mask': 0xff });
    expect(ofMapId(tree, host, 0x0308, 'iommu-map', 'iommu-map-mask')).toEqual({
      target: smmu,
      id: 0x1_0008,
    });
    const gap = new DtNode('x', 0, { 'iommu-map': [0x10, 1, 0, 4] });
    expect(ofMapId(tree, gap, 3, 'iommu-map', null)).toEqual({ target: null, id: 3 });
    expect(
      errno(() => ofMapId(tree, new DtNode('y', 0, { 'iommu-map': [0, 1, 0] }), 0, 'iommu-map', null)),
    ).toBe('EINVAL');
    expect(
      errno(() =>
        ofMapId(tree, new DtNode('z', 0, { 'iommu-map': [0x100, 1, 0, 1], m: 0xff }), 0, 'iommu-map', 'm'),
      ),
    ).toBe('EFAULT');
    expect(errno(() => ofMapId(tree, new DtNode('w'), 0, 'iommu-map', null))).toBe('ENODEV');
    expect(
      errno(() => ofMapId(tree, new DtNode('v', 0, { 'iommu-map': [0, 9, 0, 1] }), 0, 'iommu-map', null)),
    ).toBe('ENODEV');
  });

  it('configures PCI functions through iommu-map and platform devices through iommus', () => {
    const tree = new DeviceTree();
    const smmuNode = tree.add(new DtNode('smmu', 1, { '#iommu-cells': 1 }));
    const sub = new IommuSubsystem({ deviceTree: tree });
    const drv = new TestIommu({ fwnode: smmuNode });
    const hb = new PciHostBridge({
      ofNode: new DtNode('pcie', 0, { 'iommu-map': [0, 1, 0x1000, 0x1_0000] }),
    });
    const d = hb.rootBus.addDevice({ devfn: 0x10 });
    const p = new PlatformDevice('dma', {
      ofNode: new DtNode('dma', 0, { iommus: [1, 0x42], 'dma-can-stall': true, 'pasid-num-bits': 4 }),
    });
    sub.addDevice(d);
    sub.addDevice(p);
    drv.register(sub);
    expect(d.fwspec?.ids).toEqual([0x1010]);
    expect(p.fwspec?.ids).toEqual([0x42]);
    expect(p.dmaCanStall).toBe(true);
    expect(p.iommu?.maxPasids).toBe(16);
    expect(drv.deviceForStream(0x42)).toBe(p);
  });
});

describe('attach and DMA ownership', () => {
  function twoGroups() {
    const m = make();
    const rp = m.hb.rootBus.addDevice({ devfn: 0x08, pcieType: 'root_port' });
    const bus = rp.addSecondaryBus(1);
    const a = bus.addDevice({ devfn: 0 });
    const single = m.hb.rootBus.addDevice({ devfn: 0x20 });
    for (const d of [rp, a, single]) m.sub.addDevice(d);
    return { ...m, rp, a, single };
  }

  it('iommu_attach_device needs a one-device group; group attach EBUSY/EINVAL rules', () => {
    const { sub, a, single, drv } = twoGroups();
    const dom = sub.iommuPagingDomainAlloc(single);
    expect(dom.type).toBe(IOMMU_DOMAIN_UNMANAGED);
    expect(errno(() => sub.iommuAttachDevice(dom, a))).toBe('EINVAL');
    sub.iommuAttachDevice(dom, single);
    expect(sub.iommuGetDomainForDev(single)).toBe(dom);
    const dom2 = sub.iommuPagingDomainAlloc(single);
    expect(errno(() => sub.iommuAttachDevice(dom2, single))).toBe('EBUSY');
    const other = new TestIommu({ name: 'other' });
    const foreign = other.ops.domainAllocPaging!(single)!;
    foreign.owner = other.ops;
    sub.iommuDetachDevice(dom, single);
    expect(sub.iommuGetDomainForDev(single)).toBe(sub.iommuGetDmaDomain(single));
    expect(errno(() => sub.iommuAttachDevice(foreign, single))).toBe('EINVAL');
    // a driver attach failure leaves the group unchanged
    drv.failNext.attach.push('ENOSPC');
    expect(errno(() => sub.iommuAttachDevice(dom2, single))).toBe('ENOSPC');
    expect(sub.iommuGetDomainForDev(single)).toBe(sub.iommuGetDmaDomain(single));
  });

  it('claims and releases DMA ownership with Linux errnos', () => {
    const { sub, a, single } = twoGroups();
    const group = single.iommuGroup!;
    const owner1 = {};
    const owner2 = {};
    sub.iommuDeviceUseDefaultDomain(single);
    expect(errno(() => sub.iommuGroupClaimDmaOwner(group, owner1))).toBe('EPERM');
    expect(errno(() => sub.iommuDeviceClaimDmaOwner(single, owner1))).toBe('EPERM');
    sub.iommuDeviceUnuseDefaultDomain(single);
    sub.iommuDeviceClaimDmaOwner(single, owner1);
    expect(group.domain?.type).toBe(IOMMU_DOMAIN_BLOCKED);
    sub.iommuDeviceClaimDmaOwner(single, owner1);
    expect(group.ownerCnt).toBe(2);
    expect(errno(() => sub.iommuDeviceClaimDmaOwner(single, owner2))).toBe('EPERM');
    expect(errno(() => sub.iommuDeviceUseDefaultDomain(single))).toBe('EBUSY');
    sub.iommuDeviceReleaseDmaOwner(single);
    expect(sub.iommuGroupDmaOwnerClaimed(group)).toBe(true);
    sub.iommuDeviceReleaseDmaOwner(single);
    expect(group.domain).toBe(group.defaultDomain);
    // claimed + attached to a user domain, then detach goes back to the blocking domain
    sub.iommuGroupClaimDmaOwner(group, owner2);
    const dom = sub.iommuPagingDomainAlloc(single);
    sub.iommuAttachGroup(dom, group);
    sub.iommuDetachGroup(dom, group);
    expect(group.domain).toBe(group.blockingDomain);
    sub.iommuGroupReleaseDmaOwner(group);
    // a group on a non-default domain cannot be claimed
    sub.iommuAttachDevice(dom, single);
    expect(errno(() => sub.iommuDeviceClaimDmaOwner(single, owner1))).toBe('EBUSY');
    expect(errno(() => sub.iommuDeviceClaimDmaOwner(new PlatformDevice('x'), owner1))).toBe('ENODEV');
    void a;
  });

  it('use_default_domain returns EPROBE_DEFER before a default domain exists', () => {
    const { sub } = make();
    const p = new PlatformDevice('p', { firmwareIds: [1] });
    sub.addDevice(p);
    p.iommuGroup!.defaultDomain = null;
    expect(errno(() => sub.iommuDeviceUseDefaultDomain(p))).toBe('EPROBE_DEFER');
  });
});

describe('reserved regions', () => {
  it('identity-maps direct regions in DMA domains and refuses blocking for require_direct', () => {
    const { sub, hb } = make({
      resvRegions: () => [
        { start: 0x8000_0000n, length: 0x3000n, prot: IOMMU_READ | IOMMU_WRITE, type: IommuResvType.DIRECT },
        { start: 0x9000_0000n, length: 0x1000n, prot: IOMMU_READ, type: IommuResvType.DIRECT_RELAXABLE },
        { start: 0x9000_1000n, length: 0x1000n, prot: IOMMU_READ, type: IommuResvType.DIRECT_RELAXABLE },
      ],
    });
    const d = hb.rootBus.addDevice({ devfn: 8 });
    sub.addDevice(d);
    const dom = sub.iommuGetDmaDomain(d)!;
    expect(iommuIovaToPhys(dom, 0x8000_2000n)).toBe(0x8000_2000n);
    expect(iommuIovaToPhys(dom, 0x9000_1000n)).toBe(0x9000_1000n);
    expect(iommuIovaToPhys(dom, 0x8000_3000n)).toBe(0n);
    expect(d.iommu?.requireDirect).toBe(true);
    expect(errno(() => sub.iommuDeviceClaimDmaOwner(d, {}))).toBe('EINVAL');
    const regions = sub.iommuGetGroupResvRegions(d.iommuGroup!);
    expect(regions.map((r) => [r.start, r.length, r.type])).toEqual([
      [0x8000_0000n, 0x3000n, IommuResvType.DIRECT],
      [0x9000_0000n, 0x2000n, IommuResvType.DIRECT_RELAXABLE],
      [0xfee0_0000n, 0x10_0000n, IommuResvType.MSI],
    ]);
  });
});

describe('PASID attach', () => {
  it('follows the §9 rules and undoes failures', () => {
    const { sub, hb, drv } = make({ maxPasids: 64 });
    const d = hb.rootBus.addDevice({ devfn: 8, pasid: { maxPasidWidth: 4 } });
    sub.addDevice(d);
    const dom = sub.iommuPagingDomainAlloc(d);
    expect(errno(() => sub.iommuAttachDevicePasid(dom, d, 0))).toBe('EINVAL');
    expect(errno(() => sub.iommuAttachDevicePasid(dom, d, 16))).toBe('EINVAL');
    sub.iommuAttachDevicePasid(dom, d, 15);
    expect(errno(() => sub.iommuAttachDevicePasid(dom, d, 15))).toBe('EBUSY');
    expect(sub.iommuGetDomainForDevPasid(d, 15, 0)).toBe(dom);
    expect(errno(() => sub.iommuGetDomainForDevPasid(d, 15, IOMMU_DOMAIN_IDENTITY))).toBe('EBUSY');
    expect(errno(() => sub.iommuDeviceClaimDmaOwner(d, {}))).toBe('EBUSY');
    drv.failNext.setDevPasid.push('ENOMEM');
    expect(errno(() => sub.iommuAttachDevicePasid(dom, d, 3))).toBe('ENOMEM');
    expect(d.iommuGroup?.pasidArray.has(3)).toBe(false);
    // hardware view: PASID 15 translates through dom
    iommuMap(dom, 0x10_0000n, 0x4000_0000n, 0x1000n, IOMMU_READ);
    expect(drv.translate(d.requesterId, 15, 0x10_0123n, IOMMU_FAULT_PERM_READ)).toMatchObject({
      pa: 0x4000_0123n,
    });
    expect(drv.translate(d.requesterId, 15, 0x10_0123n, IOMMU_FAULT_PERM_WRITE)).toMatchObject({
      fault: 'permission',
    });
    expect(drv.translate(d.requesterId, 3, 0x10_0123n, IOMMU_FAULT_PERM_READ)).toMatchObject({
      fault: 'bad_pasid',
    });
    sub.iommuDetachDevicePasid(dom, d, 15);
    expect(drv.translate(d.requesterId, 15, 0x10_0123n, IOMMU_FAULT_PERM_READ)).toMatchObject({
      fault: 'bad_pasid',
    });
    // undo path: a two-device group where the second device fails
    const f0 = hb.rootBus.addDevice({ devfn: 0x20, multifunction: true, pasid: { maxPasidWidth: 8 } });
    const f1 = hb.rootBus.addDevice({ devfn: 0x21, multifunction: true, pasid: { maxPasidWidth: 8 } });
    const f2 = hb.rootBus.addDevice({ devfn: 0x22, multifunction: true });
    sub.addDevice(f0);
    sub.addDevice(f1);
    sub.addDevice(f2);
    expect(f0.iommuGroup?.deviceCount).toBe(3);
    const dom2 = sub.iommuPagingDomainAlloc(f0);
    drv.calls.length = 0;
    // first device succeeds, second fails → first is undone through the blocked domain
    let n = 0;
    const orig = dom2.ops.setDevPasid!;
    dom2.ops = {
      ...dom2.ops,
      setDevPasid: (dm, dev, pasid, old) => {
        if (n++ === 1) throw new ErrnoError('ENOSPC');
        orig(dm, dev, pasid, old);
      },
    };
    expect(errno(() => sub.iommuAttachDevicePasid(dom2, f0, 5))).toBe('ENOSPC');
    expect(f0.iommuGroup?.pasidArray.has(5)).toBe(false);
    const sets = drv.calls.filter((c) => c.op === 'set_dev_pasid');
    expect(sets.map((c) => c.op === 'set_dev_pasid' && [c.dev, c.domain.type])).toEqual([
      [f0.name, IOMMU_DOMAIN_UNMANAGED],
      [f0.name, IOMMU_DOMAIN_BLOCKED],
    ]);
  });

  it('seed option: PASID attach requires an immutable singleton group', () => {
    const { sub, hb } = make({}, { pasidRequiresSingletonGroup: true });
    const f0 = hb.rootBus.addDevice({ devfn: 0x20, multifunction: true, pasid: { maxPasidWidth: 8 } });
    const f1 = hb.rootBus.addDevice({ devfn: 0x21, multifunction: true, pasid: { maxPasidWidth: 8 } });
    const s = hb.rootBus.addDevice({ devfn: 0x30, pasid: { maxPasidWidth: 8 } });
    for (const x of [f0, f1, s]) sub.addDevice(x);
    const dom = sub.iommuPagingDomainAlloc(s);
    expect(errno(() => sub.iommuAttachDevicePasid(dom, f0, 1))).toBe('EINVAL');
    sub.iommuAttachDevicePasid(dom, s, 1);
  });
});

describe('test IOMMU translate', () => {
  it('translates RID DMA through the default domain, blocks when owned, passes the MSI window', () => {
    const { sub, hb, drv } = make({ iotlb: true });
    const d = hb.rootBus.addDevice({ devfn: 8 });
    sub.addDevice(d);
    const dom = sub.iommuGetDmaDomain(d)!;
    iommuMap(dom, 0x20_0000n, 0x8000_0000n, 0x20_0000n, IOMMU_READ | IOMMU_WRITE);
    expect(drv.translate(d.requesterId, null, 0x21_2345n, IOMMU_FAULT_PERM_WRITE)).toEqual({
      pa: 0x8001_2345n,
      pgsize: 0x20_0000,
      cached: false,
      msi: false,
    });
    expect(drv.translate(d.requesterId, null, 0x21_2000n, IOMMU_FAULT_PERM_READ)).toMatchObject({
      cached: true,
    });
    expect(drv.translate(d.requesterId, null, 0xfee0_0000n, IOMMU_FAULT_PERM_WRITE)).toMatchObject({
      msi: true,
    });
    expect(drv.translate(0x999, null, 0n, IOMMU_FAULT_PERM_READ)).toMatchObject({ fault: 'bad_streamid' });
    expect(drv.translate(d.requesterId, null, 0x100_0000n, IOMMU_FAULT_PERM_READ)).toMatchObject({
      fault: 'translation',
    });
    sub.iommuDeviceClaimDmaOwner(d, {});
    expect(drv.translate(d.requesterId, null, 0x21_2345n, IOMMU_FAULT_PERM_READ)).toMatchObject({
      fault: 'bypass_blocked',
    });
  });
});

describe('PCI reset bracketing (pciDevResetIommuPrepare / pciDevResetIommuDone)', () => {
  const ops = (drv: TestIommu) =>
    drv.calls
      .filter((c) => c.op === 'attach_dev' || c.op === 'set_dev_pasid')
      .map((c) =>
        c.op === 'attach_dev'
          ? ['attach_dev', c.dev, c.domain, c.old]
          : c.op === 'set_dev_pasid' && ['set_dev_pasid', c.dev, c.pasid, c.domain, c.old],
      );

  it('blocks RID and PASIDs for the reset, refuses attaches with EBUSY, then restores', () => {
    const { sub, drv, hb, warnings } = make();
    const d = hb.rootBus.addDevice({ devfn: 8, ats: {}, pasid: { maxPasidWidth: 8 } });
    expect(sub.addDevice(d)).toBeNull();
    const group = d.iommuGroup!;
    const dom = sub.iommuPagingDomainAlloc(d);
    const pdom = sub.iommuPagingDomainAlloc(d);
    sub.iommuAttachDevice(dom, d);
    sub.iommuAttachDevicePasid(pdom, d, 3);
    drv.calls.length = 0;

    sub.pciDevResetIommuPrepare(d);
    const blocked = drv.blockedDomain;
    expect(group.blockingDomain).toBe(blocked);
    expect(group.resettingDomain).toBe(blocked);
    expect(group.domain).toBe(dom); // retained
    expect(group.pasidArray.get(3)?.domain).toBe(pdom); // retained
    expect(sub.iommuDriverGetDomainForDev(d)).toBe(blocked);
    expect(sub.iommuGetDomainForDev(d)).toBe(dom);
    expect(ops(drv)).toEqual([
      ['attach_dev', d.name, blocked, dom],
      ['set_dev_pasid', d.name, 3, blocked, pdom],
    ]);

    drv.calls.length = 0;
    const other = sub.iommuPagingDomainAlloc(d);
    sub.iommuDetachDevice(dom, d); // back to the default domain: refused, warns
    expect(group.domain).toBe(dom);
    expect(errno(() => sub.iommuAttachDevicePasid(other, d, 4))).toBe('EBUSY');
    expect(errno(() => sub.iommuReplaceDevicePasid(other, d, 3, { domain: other } as never))).toBe('EBUSY');
    expect(errno(() => sub.pciDevResetIommuPrepare(d))).toBe('EBUSY');
    expect(warnings.length).toBeGreaterThan(0);
    expect(ops(drv)).toEqual([]);

    sub.pciDevResetIommuDone(d);
    expect(group.resettingDomain).toBeNull();
    expect(sub.iommuDriverGetDomainForDev(d)).toBe(dom);
    expect(ops(drv)).toEqual([
      ['attach_dev', d.name, dom, blocked],
      ['set_dev_pasid', d.name, 3, pdom, blocked],
    ]);
    // attaches work again
    sub.iommuAttachDevicePasid(other, d, 4);
    expect(group.pasidArray.get(4)?.domain).toBe(other);
    // a second done is a no-op
    drv.calls.length = 0;
    sub.pciDevResetIommuDone(d);
    expect(drv.calls).toEqual([]);
  });

  it('makes group attach fail with EBUSY while resetting, from the default domain too', () => {
    const { sub, drv, hb } = make();
    const d = hb.rootBus.addDevice({ devfn: 8, ats: {} });
    sub.addDevice(d);
    const group = d.iommuGroup!;
    const def = group.defaultDomain!;
    sub.pciDevResetIommuPrepare(d);
    const dom = sub.iommuPagingDomainAlloc(d);
    drv.calls.length = 0;
    expect(errno(() => sub.iommuAttachDevice(dom, d))).toBe('EBUSY');
    expect(errno(() => sub.iommuGroupClaimDmaOwner(group, {}))).toBe('EBUSY');
    expect(group.ownerCnt).toBe(0);
    expect(drv.calls).toEqual([]);
    sub.pciDevResetIommuDone(d);
    expect(ops(drv)).toEqual([['attach_dev', d.name, def, drv.blockedDomain]]);
    sub.iommuAttachDevice(dom, d);
    expect(group.domain).toBe(dom);
  });

  it('does nothing for functions without ATS (or untrusted ones)', () => {
    const { sub, drv, hb } = make();
    const d = hb.rootBus.addDevice({ devfn: 8 });
    const u = hb.rootBus.addDevice({ devfn: 0x10, ats: {}, untrusted: true });
    sub.addDevice(d);
    sub.addDevice(u);
    drv.calls.length = 0;
    for (const x of [d, u]) {
      sub.pciDevResetIommuPrepare(x);
      expect(x.iommuGroup?.resettingDomain).toBeNull();
      sub.pciDevResetIommuDone(x);
    }
    expect(drv.calls).toEqual([]);
  });

  it('leaves nothing changed when attaching the blocking domain fails', () => {
    const { sub, drv, hb } = make();
    const d = hb.rootBus.addDevice({ devfn: 8, ats: {} });
    sub.addDevice(d);
    const group = d.iommuGroup!;
    drv.failNext.attach.push('EIO');
    expect(errno(() => sub.pciDevResetIommuPrepare(d))).toBe('EIO');
    expect(group.resettingDomain).toBeNull();
    drv.calls.length = 0;
    sub.pciDevResetIommuDone(d); // prepare failed: no-op
    expect(drv.calls).toEqual([]);
  });

  it('skips the RID attach when the group already sits on the blocking domain (owned)', () => {
    const { sub, drv, hb } = make();
    const d = hb.rootBus.addDevice({ devfn: 8, ats: {} });
    sub.addDevice(d);
    const group = d.iommuGroup!;
    sub.iommuGroupClaimDmaOwner(group, {});
    expect(group.domain).toBe(drv.blockedDomain);
    drv.calls.length = 0;
    sub.pciDevResetIommuPrepare(d);
    expect(group.resettingDomain).toBe(drv.blockedDomain);
    sub.pciDevResetIommuDone(d);
    expect(drv.calls).toEqual([]);
    expect(group.resettingDomain).toBeNull();
  });
});

describe('sysfs type attribute (iommuGroupShowType / iommuGroupStoreType)', () => {
  it('shows the default domain type and switches it when no driver is bound', () => {
    const { sub, drv, hb } = make();
    const d = hb.rootBus.addDevice({ devfn: 8 });
    sub.addDevice(d);
    const group = d.iommuGroup!;
    const dma = group.defaultDomain!;
    expect(sub.iommuGroupShowType(group)).toBe('DMA\n');
    drv.calls.length = 0;
    expect(sub.iommuGroupStoreType(group, 'identity\n')).toBe(9);
    expect(group.defaultDomain).toBe(drv.identityDomain);
    expect(group.domain).toBe(drv.identityDomain);
    expect(sub.iommuGroupShowType(group)).toBe('identity\n');
    expect(drv.calls.filter((c) => c.op === 'attach_dev' || c.op === 'domain_free')).toEqual([
      { op: 'attach_dev', dev: d.name, domain: drv.identityDomain, old: dma },
      { op: 'domain_free', domain: dma },
    ]);
    expect(d.dmaOpsSetUp).toBe(true);
    sub.iommuGroupStoreType(group, 'auto');
    expect(group.defaultDomain?.type).toBe(IOMMU_DOMAIN_DMA);
    expect(group.domain).toBe(group.defaultDomain);
    // same type again: nothing changes
    const cur = group.defaultDomain;
    sub.iommuGroupStoreType(group, 'DMA');
    expect(group.defaultDomain).toBe(cur);
  });

  it('turns DMA into DMA-FQ in place, even with a bound driver', () => {
    const { sub, hb } = make();
    const d = hb.rootBus.addDevice({ devfn: 8 });
    sub.addDevice(d);
    const group = d.iommuGroup!;
    const dma = group.defaultDomain!;
    sub.iommuDeviceUseDefaultDomain(d);
    const fq: unknown[] = [];
    sub.dmaHooks = { ...sub.dmaHooks, initFq: (dom) => fq.push(dom) };
    sub.iommuGroupStoreType(group, 'DMA-FQ');
    expect(group.defaultDomain).toBe(dma);
    expect(dma.type).toBe(IOMMU_DOMAIN_DMA_FQ);
    expect(fq).toEqual([dma]);
    expect(sub.iommuGroupShowType(group)).toBe('DMA-FQ\n');
    // back to DMA needs a new domain: refused while the driver is bound
    expect(errno(() => sub.iommuGroupStoreType(group, 'DMA'))).toBe('EPERM');
    sub.iommuDeviceUnuseDefaultDomain(d);
    sub.iommuGroupStoreType(group, 'DMA');
    expect(group.defaultDomain).not.toBe(dma);
    expect(group.defaultDomain?.type).toBe(IOMMU_DOMAIN_DMA);
  });

  it('keeps the domain when the flush queue cannot start', () => {
    const { sub, hb } = make();
    const d = hb.rootBus.addDevice({ devfn: 8 });
    sub.addDevice(d);
    const group = d.iommuGroup!;
    sub.dmaHooks = {
      initFq: () => {
        throw new ErrnoError('ENOMEM', 'no fq');
      },
    };
    expect(errno(() => sub.iommuGroupStoreType(group, 'DMA-FQ'))).toBe('ENOMEM');
    expect(group.defaultDomain?.type).toBe(IOMMU_DOMAIN_DMA);
  });

  it('errnos: EACCES, EINVAL (text, no default domain, driver type), EPERM (owned, empty)', () => {
    const { sub, drv, hb } = make({
      defDomainType: (dev) => (dev.name.endsWith('10.0') ? IOMMU_DOMAIN_DMA : 0),
    });
    const d = hb.rootBus.addDevice({ devfn: 8 });
    sub.addDevice(d);
    const group = d.iommuGroup!;
    const dma = group.defaultDomain!;
    expect(errno(() => sub.iommuGroupStoreType(group, 'identity', { sysRawio: false }))).toBe('EACCES');
    expect(errno(() => sub.iommuGroupStoreType(group, 'identity', { sysAdmin: false }))).toBe('EACCES');
    for (const bad of ['Identity', 'dma', 'DMA-FQ ', 'blocked', 'unmanaged', '', 'auto\n\n'])
      expect(errno(() => sub.iommuGroupStoreType(group, bad))).toBe('EINVAL');
    sub.iommuGroupClaimDmaOwner(group, {});
    expect(errno(() => sub.iommuGroupStoreType(group, 'identity'))).toBe('EPERM');
    sub.iommuGroupReleaseDmaOwner(group);
    expect(group.defaultDomain).toBe(dma);

    const empty = sub.iommuGroupAlloc();
    expect(errno(() => sub.iommuGroupStoreType(empty, 'DMA'))).toBe('EINVAL');
    expect(sub.iommuGroupShowType(empty)).toBe('unknown\n');
    empty.defaultDomain = drv.identityDomain;
    expect(errno(() => sub.iommuGroupStoreType(empty, 'DMA'))).toBe('EPERM');

    // the driver insists on DMA for this device: identity is refused, domain kept
    const e = hb.rootBus.addDevice({ devfn: 0x80 });
    sub.addDevice(e);
    expect(e.name.endsWith('10.0')).toBe(true);
    const eg = e.iommuGroup!;
    const edma = eg.defaultDomain;
    expect(errno(() => sub.iommuGroupStoreType(eg, 'identity'))).toBe('EINVAL');
    expect(eg.defaultDomain).toBe(edma);
    expect(eg.domain).toBe(edma);
  });
});

describe('attach handles at the RID (iommufd)', () => {
  it('stores the handle at PASID 0 with the attach, refuses a second one, and drops it on detach', () => {
    const { sub, hb, drv } = make();
    const d = hb.rootBus.addDevice({ devfn: 0x60 });
    sub.addDevice(d);
    const g = d.iommuGroup!;
    sub.iommuGroupClaimDmaOwner(g, {});
    const a = sub.iommuPagingDomainAlloc(d);
    const b = sub.iommuPagingDomainAlloc(d);
    expect(errno(() => sub.iommuAttachGroupHandle(a, g, null))).toBe('EINVAL');
    const h = { domain: a };
    sub.iommuAttachGroupHandle(a, g, h);
    expect(g.domain).toBe(a);
    expect(sub.iommuAttachHandleGet(g, 0, 0)).toBe(h);
    // Another attach with a handle: PASID 0 is taken, nothing changes.
    expect(errno(() => sub.iommuAttachGroupHandle(b, g, { domain: b }))).toBe('EBUSY');
    expect(g.domain).toBe(a);
    // Replace switches domain and handle whatever is attached now.
    const h2 = { domain: b };
    sub.iommuReplaceGroupHandle(b, g, h2);
    expect(g.domain).toBe(b);
    expect(sub.iommuAttachHandleGet(g, 0, 0)).toBe(h2);
    // A failing replace leaves domain and handle as they were.
    drv.failNext.attach.push('ENOSPC');
    expect(errno(() => sub.iommuReplaceGroupHandle(a, g, h))).toBe('ENOSPC');
    expect(g.domain).toBe(b);
    expect(sub.iommuAttachHandleGet(g, 0, 0)).toBe(h2);
    sub.iommuDetachGroupHandle(b, g);
    expect(g.domain).toBe(g.blockingDomain);
    expect(errno(() => sub.iommuAttachHandleGet(g, 0, 0))).toBe('ENOENT');
  });
});
