/**
 * Mock devices of the iommufd selftest (`struct mock_dev` in drivers/iommu/iommufd/selftest.c):
 * platform devices on a bus of their own that only the mock IOMMU driver probes, each carrying the
 * `MOCK_FLAGS_DEVICE_*` flags it was created with and a small "device cache" the selftest can
 * inspect (DEV_CHECK_CACHE).
 */

import { type IommuSubsystem, PlatformDevice } from '@iommu-ts/iommu-core';
import {
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  MOCK_DEV_CACHE_NUM,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_FLAGS_DEVICE_PASID,
  MOCK_PASID_WIDTH,
} from '../selftest-uapi.js';

/** Every device flag {@link mockDevCreate} accepts: NO_DIRTY, HUGE_IOVA and PASID. */
export const MOCK_FLAGS_DEVICE_ALL =
  MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_HUGE_IOVA | MOCK_FLAGS_DEVICE_PASID;

/**
 * A mock device (`struct mock_dev`): a platform device named `iommufd_mockN` that the mock IOMMU
 * driver claims. Devices with `MOCK_FLAGS_DEVICE_PASID` report a PASID width of
 * `MOCK_PASID_WIDTH` (20 bits).
 */
export class MockDevice extends PlatformDevice {
  /** `flags`: the `MOCK_FLAGS_DEVICE_*` bits given at creation. */
  readonly flags: number;
  /**
   * `cache[MOCK_DEV_CACHE_NUM]`: the device cache entries, each `IOMMU_TEST_DEV_CACHE_DEFAULT`
   * (0xbaddad) at creation; a vIOMMU invalidation would clear them.
   */
  readonly cache: number[];
  /** The subsystem the device was added to. */
  readonly subsystem: IommuSubsystem;
  /** Whether {@link mockDevDestroy} removed it from the bus. */
  destroyed = false;

  /**
   * Use {@link mockDevCreate}, which also puts the device on the bus.
   * @param subsystem - the IOMMU subsystem
   * @param name - `iommufd_mockN`
   * @param flags - `MOCK_FLAGS_DEVICE_*`
   */
  constructor(subsystem: IommuSubsystem, name: string, flags: number) {
    super(name, (flags & MOCK_FLAGS_DEVICE_PASID) !== 0 ? { pasidNumBits: MOCK_PASID_WIDTH } : {});
    this.subsystem = subsystem;
    this.flags = flags;
    this.cache = new Array<number>(MOCK_DEV_CACHE_NUM).fill(IOMMU_TEST_DEV_CACHE_DEFAULT);
  }
}

/**
 * `iommufd_selftest_is_mock_dev(dev)`: whether `dev` is a selftest mock device.
 * @param dev - any device
 */
export function iommufdSelftestIsMockDev(dev: unknown): dev is MockDevice {
  return dev instanceof MockDevice;
}
