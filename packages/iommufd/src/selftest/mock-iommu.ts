/**
 * The iommufd selftest mock IOMMU driver (`mock_ops`, `mock_iommu_device` in
 * drivers/iommu/iommufd/selftest.c): an IOMMU driver with no hardware behind it, whose domains
 * are dictionaries a test can inspect (see mock-domain.ts), registered once per
 * {@link IommuSubsystem} the first time a mock device is created.
 *
 * What it does, as the kernel's mock:
 * - probes only mock devices (`ENODEV` for others), one group per device;
 * - the static blocking domain is the default, blocked and DMA-ownership domain;
 * - `capable`: cache coherency always, dirty tracking unless the device is NO_DIRTY;
 * - paging domains through `domainAllocPagingFlags` (flags NEST_PARENT, DIRTY_TRACKING, PASID;
 *   anything else or any user data is `EOPNOTSUPP`, as is DIRTY_TRACKING for a NO_DIRTY device);
 * - nested domains on a mock paging parent with `IOMMU_HWPT_DATA_SELFTEST` data;
 * - GET_HW_INFO data `iommu_test_hw_info` {flags 0, test_reg 0xdeadbeef}, type
 *   `IOMMU_HW_INFO_TYPE_SELFTEST`;
 * - no reserved regions;
 * - a fault queue every mock device joins, and a `page_response` that records the responses.
 */

import { ErrnoError, shouldFail } from '@iommu-ts/base';
import {
  type IopfQueue,
  iopfQueueAddDevice,
  iopfQueueAlloc,
  iopfQueueRemoveDevice,
} from '@iommu-ts/io-pgfault';
import {
  type Device,
  type FwNode,
  genericDeviceGroup,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IommuCap,
  IommuDevFeature,
  IommuDevice,
  type IommuDomain,
  type IommuFault,
  type IommuOps,
  type IommuPageResponse,
  type IommuResvRegion,
  type IommuSubsystem,
} from '@iommu-ts/iommu-core';
import type { IommufdHwInfoOps } from '../device.js';
import { type IommuUserData, iommuCopyStructFromUser } from '../hw-pagetable.js';
import {
  IOMMU_HW_INFO_SELFTEST_REGVAL,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HWPT_DATA_SELFTEST,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_PASID_WIDTH,
} from '../selftest-uapi.js';
import { MockDevice } from './mock-device.js';
import {
  MockIommuDomain,
  MockIommuDomainNested,
  mockBlockingDomainCreate,
  mockDirtyOps,
  mockPagingDomainOps,
} from './mock-domain.js';

/** `IOMMU_HW_INFO_TYPE_DEFAULT`: "the driver's own type" in a GET_HW_INFO request. */
const IOMMU_HW_INFO_TYPE_DEFAULT = 0;

/** Size of `struct iommu_hwpt_selftest` (one `__u32 iotlb`). */
const IOMMU_HWPT_SELFTEST_SIZE = 4;

/**
 * `iommu_copy_struct_from_user(&cfg, user_data, IOMMU_HWPT_DATA_SELFTEST, iotlb)`: the
 * `iommu_hwpt_selftest.iotlb` value of `userData`.
 * @throws ErrnoError `EINVAL` (shorter than 4 bytes), `E2BIG` (non-zero bytes past the struct),
 *   `EFAULT` (unreadable)
 */
function copyHwptSelftest(userData: IommuUserData): number {
  const bytes = iommuCopyStructFromUser(
    userData,
    IOMMU_HWPT_DATA_SELFTEST,
    IOMMU_HWPT_SELFTEST_SIZE,
    IOMMU_HWPT_SELFTEST_SIZE,
  );
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
}

function deviceFlags(dev: Device | null): number {
  return dev instanceof MockDevice ? dev.flags : 0;
}

/** One page response the mock driver was asked to send. */
export interface MockPageResponse {
  /** The device. */
  readonly dev: Device;
  /** The request answered (the group's last). */
  readonly evt: IommuFault;
  /** The response. */
  readonly msg: IommuPageResponse;
}

/**
 * The mock IOMMU of one {@link IommuSubsystem}: the registered instance, its ops and static
 * domains, its mock devices, its fault queue and the warnings its domains raised.
 */
export class MockIommu {
  /** The subsystem it is registered with. */
  readonly subsystem: IommuSubsystem;
  /** The firmware node mock devices' fwspecs point at (so only mock devices reach the driver). */
  readonly fwnode: FwNode = { name: 'iommufd_selftest_iommu' };
  /** `mock_iommu_device`: the registered instance (PASID width 20 bits). */
  readonly iommu: IommuDevice;
  /** `mock_blocking_domain`: default, blocked and ownership domain of every mock device. */
  readonly blockedDomain: IommuDomain;
  /** `mock_ops`, which also answer GET_HW_INFO ({@link IommufdHwInfoOps}). */
  readonly ops: IommuOps & IommufdHwInfoOps;
  /** `mock_iommu_iopf_queue`: the fault queue of mock devices. */
  readonly iopfQueue: IopfQueue;
  /** Warnings of the mock domains (`WARN_ON`s of the kernel's mock): empty when iommufd is right. */
  readonly warnings: string[] = [];
  /** Page responses sent through `page_response`, oldest first. */
  readonly pageResponses: MockPageResponse[] = [];
  /** Mock devices currently on the bus. */
  readonly devices: Set<MockDevice> = new Set();
  /** `mock_dev_num`: how many mock devices were created (names are `iommufd_mock1`, `2`, ...). */
  devNum = 0;

  /**
   * Use {@link mockIommuGet}, which registers it.
   * @param subsystem - the subsystem
   */
  constructor(subsystem: IommuSubsystem) {
    this.subsystem = subsystem;
    this.iommu = new IommuDevice('iommufd_selftest_iommu', {
      fwnode: this.fwnode,
      maxPasids: 1 << MOCK_PASID_WIDTH,
    });
    this.blockedDomain = mockBlockingDomainCreate();
    this.iopfQueue = iopfQueueAlloc('iommufd_selftest');
    const self = this;
    this.ops = {
      name: 'iommufd-mock',
      defaultDomain: this.blockedDomain,
      blockedDomain: this.blockedDomain,
      userPasidTable: true,
      defaultDomainOps: mockPagingDomainOps,
      capable(dev: Device, cap: IommuCap): boolean {
        if (cap === IommuCap.CACHE_COHERENCY) return true;
        if (cap === IommuCap.DIRTY_TRACKING) return !(deviceFlags(dev) & MOCK_FLAGS_DEVICE_NO_DIRTY);
        return false;
      },
      probeDevice(dev: Device): IommuDevice {
        if (!(dev instanceof MockDevice)) throw new ErrnoError('ENODEV', `${dev.name}: not a mock device`);
        return self.iommu;
      },
      deviceGroup(dev: Device) {
        return genericDeviceGroup(dev);
      },
      getResvRegions(): IommuResvRegion[] {
        return [];
      },
      domainAllocPagingFlags(dev: Device | null, flags: number, userData: unknown): IommuDomain {
        return self.domainAllocPagingFlags(dev, flags, userData);
      },
      domainAllocNested(dev: Device, parent: IommuDomain, flags: number, userData: unknown): IommuDomain {
        return self.domainAllocNested(dev, parent, flags, userData);
      },
      hwInfo(dev: Device, type: number) {
        return self.hwInfo(dev, type);
      },
      pageResponse(dev: Device, evt: IommuFault, msg: IommuPageResponse): void {
        self.pageResponses.push({ dev, evt, msg });
      },
      devEnableFeat(_dev: Device, feat: IommuDevFeature): void {
        if (feat !== IommuDevFeature.IOPF) throw new ErrnoError('ENODEV', 'only IOPF');
      },
      devDisableFeat(_dev: Device, feat: IommuDevFeature): void {
        if (feat !== IommuDevFeature.IOPF) throw new ErrnoError('ENODEV', 'only IOPF');
      },
    };
  }

  /**
   * `mock_domain_alloc_paging_flags(dev, flags, user_data)`.
   * @param dev - the device the domain is for (its HUGE_IOVA flag adds the huge page size)
   * @param flags - `IOMMU_HWPT_ALLOC_*`
   * @param userData - must be null or undefined
   * @returns a new {@link MockIommuDomain}
   * @throws ErrnoError `EOPNOTSUPP` for flags other than NEST_PARENT, DIRTY_TRACKING and PASID, for
   *   user data, and for DIRTY_TRACKING on a NO_DIRTY device
   */
  domainAllocPagingFlags(dev: Device | null, flags: number, userData: unknown): MockIommuDomain {
    const known = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID;
    if ((flags >>> 0) & ~known)
      throw new ErrnoError('EOPNOTSUPP', `unsupported flags 0x${flags.toString(16)}`);
    const dirty = (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0;
    const devFlags = deviceFlags(dev);
    if ((userData !== null && userData !== undefined) || (dirty && devFlags & MOCK_FLAGS_DEVICE_NO_DIRTY))
      throw new ErrnoError('EOPNOTSUPP', 'user data or dirty tracking not supported');
    if (shouldFail('iommufd.mock_domain_alloc'))
      throw new ErrnoError('ENOMEM', 'injected: mock domain allocation');
    return new MockIommuDomain(mockPagingDomainOps, this, {
      huge: (devFlags & MOCK_FLAGS_DEVICE_HUGE_IOVA) !== 0,
      dirtyOps: dirty ? mockDirtyOps : null,
      flags,
    });
  }

  /**
   * `mock_domain_alloc_nested(dev, parent, flags, user_data)`.
   * @param _dev - the device
   * @param parent - must be a mock paging domain
   * @param flags - only `IOMMU_HWPT_ALLOC_PASID`
   * @param userData - `IommuUserData` of type `IOMMU_HWPT_DATA_SELFTEST`
   * @returns a new {@link MockIommuDomainNested} whose IOTLB entries hold the data's `iotlb`
   * @throws ErrnoError `EOPNOTSUPP` (other flags, other data type, no data), `EINVAL` (parent not a
   *   mock paging domain, data shorter than 4 bytes), `E2BIG`, `EFAULT`
   */
  domainAllocNested(
    _dev: Device,
    parent: IommuDomain,
    flags: number,
    userData: unknown,
  ): MockIommuDomainNested {
    if ((flags >>> 0) & ~IOMMU_HWPT_ALLOC_PASID)
      throw new ErrnoError('EOPNOTSUPP', 'unsupported nested flags');
    if (!(parent instanceof MockIommuDomain)) throw new ErrnoError('EINVAL', 'parent is not a mock domain');
    const data = userData as IommuUserData | null | undefined;
    if (data === null || data === undefined || data.type !== IOMMU_HWPT_DATA_SELFTEST)
      throw new ErrnoError('EOPNOTSUPP', 'nested data must be IOMMU_HWPT_DATA_SELFTEST');
    if (shouldFail('iommufd.mock_domain_alloc'))
      throw new ErrnoError('ENOMEM', 'injected: mock nested domain allocation');
    return new MockIommuDomainNested(parent, copyHwptSelftest(data));
  }

  /**
   * `mock_domain_hw_info`: `iommu_test_hw_info` {flags 0, test_reg 0xdeadbeef}, little-endian.
   * @param _dev - the device
   * @param type - requested type: DEFAULT (0) or `IOMMU_HW_INFO_TYPE_SELFTEST`
   * @returns the type `IOMMU_HW_INFO_TYPE_SELFTEST` and the 8 data bytes
   * @throws ErrnoError `EOPNOTSUPP` for any other requested type
   */
  hwInfo(_dev: Device, type: number): { type: number; data: Uint8Array } {
    if (type >>> 0 !== IOMMU_HW_INFO_TYPE_DEFAULT && type >>> 0 !== IOMMU_HW_INFO_TYPE_SELFTEST)
      throw new ErrnoError('EOPNOTSUPP', `hw info type 0x${(type >>> 0).toString(16)}`);
    if (shouldFail('iommufd.mock_hw_info')) throw new ErrnoError('ENOMEM', 'injected: hw_info allocation');
    const data = new Uint8Array(8);
    const view = new DataView(data.buffer);
    view.setUint32(0, 0, true);
    view.setUint32(4, IOMMU_HW_INFO_SELFTEST_REGVAL, true);
    return { type: IOMMU_HW_INFO_TYPE_SELFTEST, data };
  }

  /**
   * Put a mock device on the mock fault queue (`iopf_queue_add_device`).
   * @param dev - a probed mock device
   */
  iopfAddDevice(dev: MockDevice): void {
    iopfQueueAddDevice(this.iopfQueue, dev);
  }

  /**
   * Take a mock device off the mock fault queue (pending groups are answered INVALID).
   * @param dev - the mock device
   */
  iopfRemoveDevice(dev: MockDevice): void {
    if (dev.iommu?.faultParam) iopfQueueRemoveDevice(this.iopfQueue, dev);
  }
}

const mockIommus: WeakMap<IommuSubsystem, MockIommu> = new WeakMap();

/**
 * The mock IOMMU of `subsystem`, registering it on first use (`iommufd_test_init`'s
 * `iommu_device_register_bus`).
 * @param subsystem - the IOMMU subsystem
 * @returns the subsystem's mock IOMMU
 * @throws ErrnoError as `iommuDeviceRegister`
 */
export function mockIommuGet(subsystem: IommuSubsystem): MockIommu {
  let mock = mockIommus.get(subsystem);
  if (mock === undefined) {
    mock = new MockIommu(subsystem);
    subsystem.iommuDeviceRegister(mock.iommu, mock.ops);
    mockIommus.set(subsystem, mock);
  }
  return mock;
}

/**
 * The mock IOMMU of `subsystem` if one was registered, without registering one.
 * @param subsystem - the IOMMU subsystem
 */
export function mockIommuPeek(subsystem: IommuSubsystem): MockIommu | undefined {
  return mockIommus.get(subsystem);
}
