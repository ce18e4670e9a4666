/**
 * The selftest object (`struct selftest_obj`, type `IOMMUFD_OBJ_SELFTEST`, the "stdev" of the
 * selftest): a mock device bound to the context and attached to a page table, created by
 * MOCK_DOMAIN / MOCK_DOMAIN_FLAGS. Destroying it detaches and unbinds the device and takes the
 * mock device off the bus.
 */

import {
  type IommufdDevice,
  iommufdDeviceAttach,
  iommufdDeviceBind,
  iommufdDeviceDetach,
  iommufdDeviceUnbind,
} from '../device.js';
import { type IommufdCtx, IommufdObject, IommufdObjectType } from '../main.js';
import { mockDevCreate, mockDevDestroy } from './mock-dev-create.js';
import type { MockDevice } from './mock-device.js';

/** A selftest object of type `TYPE_IDEV`: a bound mock device. */
export class SelftestObj extends IommufdObject {
  /** Always `IOMMUFD_OBJ_SELFTEST`. */
  readonly type = IommufdObjectType.SELFTEST;
  /** The mock device (null until created). */
  mockDev: MockDevice | null = null;
  /** The iommufd device the mock device is bound as (null until bound). */
  idev: IommufdDevice | null = null;

  /**
   * Use {@link selftestMockDomainCreate}.
   * @param ictx - the context
   */
  constructor(ictx: IommufdCtx) {
    super(ictx);
  }

  /** `iommufd_selftest_destroy`: detach, unbind, delete the mock device. */
  destroy(): void {
    if (this.idev !== null) {
      iommufdDeviceDetach(this.idev);
      iommufdDeviceUnbind(this.idev);
      this.idev = null;
    }
    if (this.mockDev !== null) {
      mockDevDestroy(this.mockDev);
      this.mockDev = null;
    }
  }
}

/** What {@link selftestMockDomainCreate} returns (the MOCK_DOMAIN out fields). */
export interface SelftestMockDomain {
  /** The selftest object, not yet finalized: the caller finalizes it after the copy-out. */
  readonly sobj: SelftestObj;
  /** `out_stdev_id`. */
  readonly stdevId: number;
  /** `out_hwpt_id`: the HWPT the device was attached to. */
  readonly hwptId: number;
  /** `out_idev_id`: the iommufd device ID. */
  readonly idevId: number;
}

/**
 * The first half of `iommufd_test_mock_domain`: reserve the selftest object's ID, create a mock
 * device with `devFlags`, bind it and attach it to `ptId` (an IOAS, which picks or creates an
 * automatic HWPT, or a HWPT). Any failure undoes the earlier steps.
 * @param ictx - the context
 * @param ptId - IOAS or HWPT ID
 * @param devFlags - `MOCK_FLAGS_DEVICE_*`
 * @returns the object (reserved, not finalized) and the IDs to report
 * @throws ErrnoError `EINVAL` (unknown device flags), the bind and attach errnos (`ENOENT` for a bad
 *   `ptId`, ...)
 */
export function selftestMockDomainCreate(
  ictx: IommufdCtx,
  ptId: number,
  devFlags: number,
): SelftestMockDomain {
  const sobj = new SelftestObj(ictx);
  ictx.objectAlloc(sobj);
  try {
    sobj.mockDev = mockDevCreate(ictx.iommu, devFlags);
    sobj.idev = iommufdDeviceBind(ictx, sobj.mockDev, { mock: true });
    const hwptId = iommufdDeviceAttach(sobj.idev, ptId);
    return { sobj, stdevId: sobj.id, hwptId, idevId: sobj.idev.id };
  } catch (e) {
    if (sobj.idev !== null) {
      iommufdDeviceUnbind(sobj.idev);
      sobj.idev = null;
    }
    if (sobj.mockDev !== null) {
      mockDevDestroy(sobj.mockDev);
      sobj.mockDev = null;
    }
    ictx.objectAbort(sobj);
    throw e;
  }
}

/**
 * Undo {@link selftestMockDomainCreate} after a failed copy-out: detach, unbind, delete the mock
 * device, give the ID back.
 * @param sobj - the reserved object
 */
export function selftestMockDomainAbort(sobj: SelftestObj): void {
  sobj.ictx.objectAbortAndDestroy(sobj);
}
