import { ErrnoError, isErrnoError } from '@iommu-ts/base';
import {
  IOMMU_DIRTY_NO_CLEAR,
  IOMMU_DOMAIN_BLOCKED,
  IOMMU_DOMAIN_NESTED,
  IOMMU_DOMAIN_UNMANAGED,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_READ,
  IOMMU_WRITE,
  IommuCap,
  IommuSubsystem,
} from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { makeEnv } from '../io-pagetable.test-helpers.js';
import {
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_FLAGS_DEVICE_PASID,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_IO_PAGE_SIZE,
} from '../selftest-uapi.js';
import { mockDevCreate, mockDevDestroy } from './mock-dev-create.js';
import { MockDevice } from './mock-device.js';
import { MockIommuDomain, type MockIommuDomainNested } from './mock-domain.js';
import { mockIommuGet, mockIommuPeek } from './mock-iommu.js';

const MP = MOCK_IO_PAGE_SIZE;
const RW = IOMMU_READ | IOMMU_WRITE;

function errno(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isErrnoError(e)) return e.code;
    throw e;
  }
  return 'ok';
}

/** `IommuUserData` of `len` bytes holding `iotlb` (an `iommu_hwpt_selftest`), in a small user memory. */
function selftestData(iotlb: number, len = 4, type = IOMMU_HWPT_DATA_SELFTEST) {
  const data = new Uint8Array(len);
  if (len >= 4) new DataView(data.buffer).setUint32(0, iotlb, true);
  return {
    type,
    uptr: 0n,
    len,
    data,
    userMemory: {
      read(va: bigint, n: number): Uint8Array {
        if (Number(va) + n > data.length) throw new ErrnoError('EFAULT', 'fault');
        return data.slice(Number(va), Number(va) + n);
      },
      write(): void {},
    },
  };
}

/** Record every dirty range reported. */
function recorder(): { ranges: [bigint, bigint][]; record(iova: bigint, length: bigint): void } {
  const ranges: [bigint, bigint][] = [];
  return {
    ranges,
    record(iova, length) {
      ranges.push([iova, length]);
    },
  };
}

describe('mock IOMMU registration and devices', () => {
  it('registers lazily, once per subsystem', () => {
    const sub = new IommuSubsystem();
    expect(mockIommuPeek(sub)).toBeUndefined();
    const a = mockIommuGet(sub);
    expect(mockIommuGet(sub)).toBe(a);
    expect(sub.iommuDevices).toEqual([a.iommu]);
    expect(mockIommuGet(new IommuSubsystem())).not.toBe(a);
  });

  it('creates probed devices, each in its own group on the blocking domain', () => {
    const sub = new IommuSubsystem();
    const d1 = mockDevCreate(sub, 0);
    const d2 = mockDevCreate(sub, MOCK_FLAGS_DEVICE_NO_DIRTY);
    const mock = mockIommuGet(sub);
    expect([d1.name, d2.name]).toEqual(['iommufd_mock1', 'iommufd_mock2']);
    expect(d1.iommuGroup).not.toBeNull();
    expect(d1.iommuGroup).not.toBe(d2.iommuGroup);
    expect(d1.iommuGroup?.defaultDomain).toBe(mock.blockedDomain);
    expect(d1.iommuGroup?.domain?.type).toBe(IOMMU_DOMAIN_BLOCKED);
    expect(d1.cache).toEqual([1, 2, 3, 4].map(() => IOMMU_TEST_DEV_CACHE_DEFAULT));
    expect(d1.iommu?.faultParam).not.toBeNull();
    expect([...mock.devices]).toEqual([d1, d2]);
    mockDevDestroy(d1);
    expect(d1.iommuGroup).toBeNull();
    expect(sub.devices).toEqual([d2]);
    expect([...mock.devices]).toEqual([d2]);
    mockDevDestroy(d1); // twice is harmless
  });

  it('refuses unknown device flags without adding anything (EINVAL)', () => {
    const sub = new IommuSubsystem();
    expect(errno(() => mockDevCreate(sub, 1 << 3))).toBe('EINVAL');
    expect(sub.devices).toEqual([]);
  });

  it('gives PASID devices a 20-bit PASID width', () => {
    const sub = new IommuSubsystem();
    expect(mockDevCreate(sub, MOCK_FLAGS_DEVICE_PASID).iommu?.maxPasids).toBe(1 << 20);
    expect(mockDevCreate(sub, 0).iommu?.maxPasids).toBe(0);
  });

  it('does not claim devices of another driver', () => {
    const env = makeEnv();
    mockIommuGet(env.sub);
    const dev = env.host.rootBus.addDevice({ devfn: 8 });
    expect(env.sub.addDevice(dev)).toBeNull();
    expect(env.sub.devIommuOps(dev)).toBe(env.driver.ops);
    expect(errno(() => mockIommuGet(env.sub).ops.probeDevice(dev))).toBe('ENODEV');
  });

  it('reports cache coherency always and dirty tracking unless NO_DIRTY', () => {
    const sub = new IommuSubsystem();
    const dev = mockDevCreate(sub, 0);
    const nodirty = mockDevCreate(sub, MOCK_FLAGS_DEVICE_NO_DIRTY);
    expect(sub.deviceIommuCapable(dev, IommuCap.CACHE_COHERENCY)).toBe(true);
    expect(sub.deviceIommuCapable(dev, IommuCap.DIRTY_TRACKING)).toBe(true);
    expect(sub.deviceIommuCapable(nodirty, IommuCap.CACHE_COHERENCY)).toBe(true);
    expect(sub.deviceIommuCapable(nodirty, IommuCap.DIRTY_TRACKING)).toBe(false);
    expect(sub.deviceIommuCapable(dev, IommuCap.NOEXEC)).toBe(false);
  });

  it('answers GET_HW_INFO with iommu_test_hw_info', () => {
    const sub = new IommuSubsystem();
    const dev = mockDevCreate(sub, 0);
    const info = mockIommuGet(sub).ops.hwInfo(dev, 0);
    expect(info.type).toBe(IOMMU_HW_INFO_TYPE_SELFTEST);
    expect([...info.data]).toEqual([0, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde]);
    expect(mockIommuGet(sub).ops.hwInfo(dev, IOMMU_HW_INFO_TYPE_SELFTEST).type).toBe(
      IOMMU_HW_INFO_TYPE_SELFTEST,
    );
    expect(errno(() => mockIommuGet(sub).ops.hwInfo(dev, 1))).toBe('EOPNOTSUPP');
  });

  it('has no reserved regions', () => {
    const sub = new IommuSubsystem();
    expect(sub.iommuGetResvRegions(mockDevCreate(sub, 0))).toEqual([]);
  });

  it('lets a DMA owner claim and release the device', () => {
    const sub = new IommuSubsystem();
    const dev = mockDevCreate(sub, 0);
    const owner = {};
    sub.iommuDeviceClaimDmaOwner(dev, owner);
    expect(dev.iommuGroup?.domain).toBe(mockIommuGet(sub).blockedDomain);
    sub.iommuDeviceReleaseDmaOwner(dev);
    expect(dev.iommuGroup?.ownerCnt).toBe(0);
  });
});

describe('mock paging domain allocation', () => {
  it('allocates with the aperture and page sizes of the mock', () => {
    const sub = new IommuSubsystem();
    const dev = mockDevCreate(sub, 0);
    const d = sub.iommuPagingDomainAllocFlags(dev, 0);
    expect(d).toBeInstanceOf(MockIommuDomain);
    expect(d.type).toBe(IOMMU_DOMAIN_UNMANAGED);
    expect(d.owner).toBe(mockIommuGet(sub).ops);
    expect(d.pgsizeBitmap).toBe(MP);
    expect(d.geometry).toEqual({
      apertureStart: MOCK_APERTURE_START,
      apertureEnd: MOCK_APERTURE_LAST,
      forceAperture: true,
    });
    expect(d.dirtyOps).toBeNull();
    const huge = sub.iommuPagingDomainAllocFlags(mockDevCreate(sub, MOCK_FLAGS_DEVICE_HUGE_IOVA), 0);
    expect(huge.pgsizeBitmap).toBe(MP | MOCK_HUGE_PAGE_SIZE);
    const dirty = sub.iommuPagingDomainAllocFlags(dev, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    expect(dirty.dirtyOps).not.toBeNull();
    expect(
      sub.iommuPagingDomainAllocFlags(dev, IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_PASID),
    ).toBeInstanceOf(MockIommuDomain);
  });

  it('refuses unknown flags, user data, and dirty tracking on NO_DIRTY devices (EOPNOTSUPP)', () => {
    const sub = new IommuSubsystem();
    const dev = mockDevCreate(sub, 0);
    const nodirty = mockDevCreate(sub, MOCK_FLAGS_DEVICE_NO_DIRTY);
    const mock = mockIommuGet(sub);
    expect(errno(() => sub.iommuPagingDomainAllocFlags(dev, 1 << 2))).toBe('EOPNOTSUPP');
    expect(errno(() => sub.iommuPagingDomainAllocFlags(dev, 1 << 4))).toBe('EOPNOTSUPP');
    expect(errno(() => mock.ops.domainAllocPagingFlags?.(dev, 0, selftestData(1)))).toBe('EOPNOTSUPP');
    expect(errno(() => sub.iommuPagingDomainAllocFlags(nodirty, IOMMU_HWPT_ALLOC_DIRTY_TRACKING))).toBe(
      'EOPNOTSUPP',
    );
    expect(sub.iommuPagingDomainAllocFlags(nodirty, 0)).toBeInstanceOf(MockIommuDomain);
  });

  it('refuses to attach a dirty-tracking domain to a NO_DIRTY device (EINVAL)', () => {
    const sub = new IommuSubsystem();
    const dev = mockDevCreate(sub, 0);
    const nodirty = mockDevCreate(sub, MOCK_FLAGS_DEVICE_NO_DIRTY);
    const dirty = sub.iommuPagingDomainAllocFlags(dev, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    expect(errno(() => sub.iommuAttachDevice(dirty, nodirty))).toBe('EINVAL');
    expect(nodirty.iommuGroup?.domain).toBe(mockIommuGet(sub).blockedDomain);
    sub.iommuAttachDevice(dirty, dev);
    expect(dev.iommuGroup?.domain).toBe(dirty);
    const plain = sub.iommuPagingDomainAllocFlags(dev, 0);
    sub.iommuAttachDevice(plain, nodirty);
    expect(nodirty.iommuGroup?.domain).toBe(plain);
  });
});

describe('mock paging domain map/unmap', () => {
  function setup(flags = 0) {
    const sub = new IommuSubsystem();
    const dev = mockDevCreate(sub, flags);
    const domain = sub.iommuPagingDomainAllocFlags(dev, 0) as MockIommuDomain;
    return { sub, dev, domain, mock: mockIommuGet(sub) };
  }

  it('stores one entry per mock page and translates them back', () => {
    const { sub, domain, mock } = setup();
    const iova = MOCK_APERTURE_START;
    sub.iommuMap(domain, iova, 0x10_0000n, 3n * MP, RW);
    expect(domain.mappedPages).toBe(3);
    expect(domain.entryAt(iova)).toEqual({
      pa: 0x10_0000n,
      prot: RW,
      dirty: false,
      start: true,
      last: false,
      huge: false,
    });
    expect(domain.entryAt(iova + 2n * MP)?.last).toBe(true);
    expect(sub.iommuIovaToPhys(domain, iova + MP)).toBe(0x10_0000n + MP);
    expect(sub.iommuIovaToPhys(domain, iova + 2n * MP)).toBe(0x10_0000n + 2n * MP);
    expect(sub.iommuUnmap(domain, iova, 3n * MP)).toBe(3n * MP);
    expect(domain.mappedPages).toBe(0);
    expect(mock.warnings).toEqual([]);
  });

  it('warns when an unmap is not a superset of maps, or on an unmapped iova_to_phys', () => {
    const { domain, mock } = setup();
    const iova = MOCK_APERTURE_START;
    domain.mapPages(iova, 0x20_0000n, Number(MP), 4, RW);
    domain.unmapPages(iova + MP, Number(MP), 2);
    expect(mock.warnings.length).toBe(2);
    expect(domain.iovaToPhys(iova + MP)).toBe(0n);
    expect(mock.warnings.length).toBe(3);
    domain.mapPages(iova, 0x30_0000n, Number(MP), 1, RW); // overwrite
    expect(mock.warnings.length).toBe(4);
  });

  it('maps huge pages as huge entries on HUGE_IOVA devices', () => {
    const { sub, domain, mock } = setup(MOCK_FLAGS_DEVICE_HUGE_IOVA);
    const iova = MOCK_APERTURE_START;
    sub.iommuMap(domain, iova, 0x4000_0000n, MOCK_HUGE_PAGE_SIZE + MP, RW);
    expect(domain.mappedPages).toBe(513);
    expect(domain.entryAt(iova)?.huge).toBe(true);
    expect(domain.entryAt(iova + MOCK_HUGE_PAGE_SIZE - MP)?.huge).toBe(true);
    expect(domain.entryAt(iova + MOCK_HUGE_PAGE_SIZE)?.huge).toBe(false);
    sub.iommuUnmap(domain, iova, MOCK_HUGE_PAGE_SIZE + MP);
    expect(domain.mappedPages).toBe(0);
    expect(mock.warnings).toEqual([]);
  });

  it('warns when a domain is freed with mappings left', () => {
    const { sub, domain, mock } = setup();
    domain.mapPages(MOCK_APERTURE_START, 0n, Number(MP), 1, RW);
    sub.iommuDomainFree(domain);
    expect(mock.warnings).toEqual(['domain freed with 1 mock pages mapped']);
  });
});

describe('mock dirty tracking', () => {
  function setup(devFlags = 0) {
    const sub = new IommuSubsystem();
    const dev = mockDevCreate(sub, devFlags);
    const domain = sub.iommuPagingDomainAllocFlags(dev, IOMMU_HWPT_ALLOC_DIRTY_TRACKING) as MockIommuDomain;
    return { sub, domain };
  }

  it('refuses to enable tracking on a domain without dirty ops (EINVAL)', () => {
    const sub = new IommuSubsystem();
    const domain = sub.iommuPagingDomainAllocFlags(mockDevCreate(sub, 0), 0) as MockIommuDomain;
    expect(errno(() => domain.setDirtyTracking(true))).toBe('EINVAL');
    domain.setDirtyTracking(false);
    expect(domain.dirtyTracking).toBe(false);
  });

  it('reports dirty mock pages, clearing them unless NO_CLEAR', () => {
    const { domain } = setup();
    const ops = domain.dirtyOps!;
    const iova = MOCK_APERTURE_START;
    domain.mapPages(iova, 0x1000_0000n, Number(MP), 8, RW);
    ops.setDirtyTracking(domain, true);
    expect(domain.markDirty(iova + MP)).toBe(true);
    expect(domain.markDirty(iova + 5n * MP)).toBe(true);
    expect(domain.markDirty(iova + 100n * MP)).toBe(false);
    const r1 = recorder();
    ops.readAndClearDirty(domain, iova, 8n * MP, IOMMU_DIRTY_NO_CLEAR, r1);
    expect(r1.ranges).toEqual([
      [iova + MP, MP],
      [iova + 5n * MP, MP],
    ]);
    const r2 = recorder();
    ops.readAndClearDirty(domain, iova, 8n * MP, 0, r2);
    expect(r2.ranges).toEqual(r1.ranges);
    const r3 = recorder();
    ops.readAndClearDirty(domain, iova, 8n * MP, 0, r3);
    expect(r3.ranges).toEqual([]);
    ops.setDirtyTracking(domain, false);
    expect(domain.dirtyTracking).toBe(false);
    domain.unmapPages(iova, Number(MP), 8);
  });

  it('refuses to read into a bitmap while tracking is off (EINVAL), but clears without one', () => {
    const { domain } = setup();
    const iova = MOCK_APERTURE_START;
    domain.mapPages(iova, 0n, Number(MP), 1, RW);
    domain.markDirty(iova);
    expect(errno(() => domain.readAndClearDirty(iova, MP, 0, { ...recorder(), bitmap: {} } as never))).toBe(
      'EINVAL',
    );
    const r = recorder();
    domain.readAndClearDirty(iova, MP, 0, r);
    expect(r.ranges).toEqual([[iova, MP]]);
    expect(domain.entryAt(iova)?.dirty).toBe(false);
  });

  it('reports a whole huge page when one of its mock pages is dirty', () => {
    const { sub, domain } = setup(MOCK_FLAGS_DEVICE_HUGE_IOVA);
    const iova = MOCK_APERTURE_START;
    sub.iommuMap(domain, iova, 0x4000_0000n, 2n * MOCK_HUGE_PAGE_SIZE, RW);
    domain.setDirtyTracking(true);
    domain.markDirty(iova + MOCK_HUGE_PAGE_SIZE + 7n * MP);
    const r = recorder();
    domain.readAndClearDirty(iova, 2n * MOCK_HUGE_PAGE_SIZE, 0, r);
    expect(r.ranges).toEqual([[iova + MOCK_HUGE_PAGE_SIZE, MOCK_HUGE_PAGE_SIZE]]);
    sub.iommuUnmap(domain, iova, 2n * MOCK_HUGE_PAGE_SIZE);
  });
});

describe('mock nested domains', () => {
  it('allocates on a mock parent with selftest data', () => {
    const sub = new IommuSubsystem();
    const dev = mockDevCreate(sub, 0);
    const mock = mockIommuGet(sub);
    const parent = sub.iommuPagingDomainAllocFlags(dev, IOMMU_HWPT_ALLOC_NEST_PARENT);
    const nested = mock.ops.domainAllocNested!(dev, parent, 0, selftestData(0x1234)) as MockIommuDomainNested;
    expect(nested.type).toBe(IOMMU_DOMAIN_NESTED);
    expect(nested.parent).toBe(parent);
    expect(nested.iotlb).toEqual([0x1234, 0x1234, 0x1234, 0x1234]);
    nested.invalidateEntry(0, 2);
    expect(nested.iotlb).toEqual([0x1234, 0x1234, 0, 0x1234]);
    expect(errno(() => nested.invalidateEntry(0, 4))).toBe('EINVAL');
    expect(errno(() => nested.invalidateEntry(2, 0))).toBe('EOPNOTSUPP');
    expect(errno(() => nested.invalidateEntry(IOMMU_TEST_INVALIDATE_FLAG_ALL, 4))).toBe('EINVAL');
    nested.invalidateEntry(IOMMU_TEST_INVALIDATE_FLAG_ALL, 3);
    expect(nested.iotlb).toEqual([0, 0, 0, 0]);
  });

  it('checks flags, parent, type, length and content', () => {
    const sub = new IommuSubsystem();
    const dev = mockDevCreate(sub, 0);
    const mock = mockIommuGet(sub);
    const parent = sub.iommuPagingDomainAllocFlags(dev, IOMMU_HWPT_ALLOC_NEST_PARENT);
    const alloc = (p: typeof parent, flags: number, data: unknown) =>
      errno(() => mock.ops.domainAllocNested!(dev, p, flags, data));
    expect(alloc(parent, IOMMU_HWPT_ALLOC_NEST_PARENT, selftestData(1))).toBe('EOPNOTSUPP');
    expect(alloc(mock.blockedDomain, 0, selftestData(1))).toBe('EINVAL');
    expect(alloc(parent, 0, selftestData(1, 4, 0x1234))).toBe('EOPNOTSUPP');
    expect(alloc(parent, 0, null)).toBe('EOPNOTSUPP');
    expect(alloc(parent, 0, selftestData(1, 3))).toBe('EINVAL');
    const long = selftestData(1, 8);
    expect(alloc(parent, 0, long)).toBe('ok');
    long.data[6] = 1;
    expect(alloc(parent, 0, long)).toBe('E2BIG');
    expect(alloc(parent, 0, { ...selftestData(1), uptr: 8n })).toBe('EFAULT');
    expect(alloc(parent, IOMMU_HWPT_ALLOC_PASID, selftestData(1))).toBe('ok');
  });

  it('a MockDevice is a platform device of its own class', () => {
    const sub = new IommuSubsystem();
    expect(mockDevCreate(sub, 0)).toBeInstanceOf(MockDevice);
  });
});
