/**
 * The IOAS object (`struct iommufd_ioas`, drivers/iommu/iommufd/ioas.c): an I/O address space,
 * that is an {@link IoPagetable} plus the list of paging HWPTs built on it.
 *
 * The ioctls that work on an IOAS are in ioas-ioctls.ts.
 */

import { IoPagetable } from './io-pagetable.js';
import { type IommufdCtx, IommufdObject, IommufdObjectType } from './main.js';

/**
 * An IOAS: its io_pagetable and the paging HWPTs attached to it. Every HWPT on the IOAS and every
 * attached access holds a `users` reference, so DESTROY fails with EBUSY while any exists.
 */
export class IommufdIoas extends IommufdObject {
  /** Always `IOMMUFD_OBJ_IOAS`. */
  readonly type = IommufdObjectType.IOAS;
  /** The IOVA space (`ioas->iopt`). */
  readonly iopt: IoPagetable = new IoPagetable();
  /**
   * `hwpt_list`: the paging HWPTs fed from this IOAS (automatic and manual), in creation order.
   * Typed loosely here to keep this file free of HWPT code; hw-pagetable.ts owns the entries.
   */
  readonly hwptList: object[] = [];

  /**
   * Create an IOAS and give it an ID (`iommufd_ioas_alloc`); the caller finalizes it.
   * @param ictx - the context
   */
  constructor(ictx: IommufdCtx) {
    super(ictx);
  }

  /**
   * `iommufd_ioas_destroy`: unmap every area (unpinning and uncharging), then drop the reserved
   * and allowed ranges. By then no HWPT or access is attached (they hold references).
   */
  destroy(): void {
    this.iopt.unmapAll();
    this.iopt.destroyTable();
    if (this.ictx.vfioIoas === this) this.ictx.vfioIoas = null;
  }
}

/**
 * `iommufd_get_ioas(ictx, id)`: the IOAS with ID `id`.
 * @param ictx - the context
 * @param id - object ID
 * @returns the IOAS
 * @throws ErrnoError `ENOENT` if `id` is not an IOAS
 */
export function iommufdGetIoas(ictx: IommufdCtx, id: number): IommufdIoas {
  return ictx.getObject(id, IommufdObjectType.IOAS) as IommufdIoas;
}

/**
 * `iommufd_ioas_alloc`: allocate and finalize a new, empty IOAS (no areas, no reserved or allowed
 * ranges, alignment 1, huge pages on).
 * @param ictx - the context
 * @returns the IOAS, already visible under its ID
 * @throws ErrnoError `ENOSPC` (no free ID)
 */
export function iommufdIoasAlloc(ictx: IommufdCtx): IommufdIoas {
  const ioas = new IommufdIoas(ictx);
  ictx.objectAlloc(ioas);
  ictx.objectFinalize(ioas);
  return ioas;
}
