/**
 * The compatibility IOAS of a container (drivers/iommu/iommufd/vfio_compat.c): the IOAS every VFIO
 * container ioctl works on, created when a group is attached to the container or chosen with
 * IOMMU_VFIO_IOAS.
 *
 * Kept apart from container.ts so that the group code can use it without importing the container's
 * ioctl handler (which imports the SVA bind code): no runtime import cycle.
 */

import { ErrnoError } from '@iommu-ts/base';
import { type IommufdCtx, IommufdIoas, iommufdIoasAlloc } from '@iommu-ts/iommufd';

/**
 * `get_compat_ioas`: the context's compatibility IOAS.
 * @param ictx - the iommufd context
 * @returns the IOAS
 * @throws ErrnoError `ENODEV` if the context has none
 */
export function iommufdVfioCompatIoas(ictx: IommufdCtx): IommufdIoas {
  const ioas = ictx.vfioIoas;
  if (ioas === null || !(ioas instanceof IommufdIoas) || ioas.users === 0) {
    throw new ErrnoError('ENODEV', 'no VFIO compatibility IOAS');
  }
  return ioas;
}

/**
 * `iommufd_vfio_compat_ioas_get_id`: the ID of the compatibility IOAS.
 * @param ictx - the iommufd context
 * @returns the IOAS's object ID
 * @throws ErrnoError `ENODEV` if the context has no compatibility IOAS
 */
export function iommufdVfioCompatIoasGetId(ictx: IommufdCtx): number {
  return iommufdVfioCompatIoas(ictx).id;
}

/**
 * `iommufd_vfio_compat_ioas_create`: give the context a compatibility IOAS if it has none (what
 * VFIO_GROUP_SET_CONTAINER does on an iommufd-backed container). The new IOAS is an ordinary IOAS
 * object: visible under its ID, destroyed by IOMMU_DESTROY or at close. With one already set
 * (auto-created, or chosen with IOMMU_VFIO_IOAS SET) nothing changes.
 * @param ictx - the iommufd context
 * @throws ErrnoError `ENOSPC` (no free object ID), `ENODEV` (context released)
 */
export function iommufdVfioCompatIoasCreate(ictx: IommufdCtx): void {
  const cur = ictx.vfioIoas;
  if (cur !== null && cur instanceof IommufdIoas && cur.users > 0) return;
  ictx.vfioIoas = iommufdIoasAlloc(ictx);
}
