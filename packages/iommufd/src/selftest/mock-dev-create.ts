/**
 * Creating and destroying selftest mock devices (`mock_dev_create` / `mock_dev_destroy` in
 * drivers/iommu/iommufd/selftest.c): the device goes onto the mock bus, where the mock IOMMU driver
 * probes it.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { IommuSubsystem } from '@iommu-ts/iommu-core';
import { MOCK_FLAGS_DEVICE_ALL, MockDevice } from './mock-device.js';
import { mockIommuGet } from './mock-iommu.js';

/**
 * `mock_dev_create(dev_flags)`: create a mock device and add it to the bus, where the mock IOMMU
 * driver (registered with the subsystem on first use) probes it into a group of its own with the
 * blocking domain as its default domain, and puts it on the mock fault queue.
 * @param subsystem - the IOMMU subsystem
 * @param flags - `MOCK_FLAGS_DEVICE_*` bits
 * @returns the probed device
 * @throws ErrnoError `EINVAL` for unknown flags; the probe's errno
 */
export function mockDevCreate(subsystem: IommuSubsystem, flags: number): MockDevice {
  if ((flags >>> 0) & ~MOCK_FLAGS_DEVICE_ALL)
    throw new ErrnoError('EINVAL', `unknown mock device flags 0x${flags.toString(16)}`);
  const mock = mockIommuGet(subsystem);
  const dev = new MockDevice(subsystem, `iommufd_mock${++mock.devNum}`, flags);
  subsystem.iommuFwspecInit(dev, mock.fwnode);
  const err = subsystem.addDevice(dev);
  if (err) {
    subsystem.removeDevice(dev);
    throw err;
  }
  mock.devices.add(dev);
  mock.iopfAddDevice(dev);
  return dev;
}

/**
 * `mock_dev_destroy(mdev)`: take the device off the bus (its group and probe state go with it).
 * Destroying a device twice does nothing.
 * @param dev - the mock device
 */
export function mockDevDestroy(dev: MockDevice): void {
  if (dev.destroyed) return;
  dev.destroyed = true;
  const mock = mockIommuGet(dev.subsystem);
  mock.iopfRemoveDevice(dev);
  mock.devices.delete(dev);
  dev.subsystem.removeDevice(dev);
}
