/**
 * In-kernel accesses (`struct iommufd_access`, include/linux/iommufd.h and the access half of
 * drivers/iommu/iommufd/device.c): how a driver that has no IOMMU of its own (an emulated or
 * mediated device) reads, writes and pins the memory mapped in an IOAS with the CPU.
 *
 * An access is an object of its context (type ACCESS). The creating driver holds a `users`
 * reference from create to destroy (so userspace DESTROY answers EBUSY) and a reference on the
 * context (so the context outlives the fd's close); while attached, the access holds a `users`
 * reference on its IOAS (so the IOAS cannot be destroyed under it).
 */

import { ErrnoError } from '@iommu-ts/base';
import type { Mm } from '@iommu-ts/mm';
import type { IoptAccess } from './io-pagetable.js';
import { type IommufdIoas, iommufdGetIoas } from './ioas.js';
import { type IommufdCtx, IommufdObject, IommufdObjectType } from './main.js';
import { IOPT_PAGE_SIZE } from './pages.js';

const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** What the driver supplies at creation (`struct iommufd_access_ops`). */
export interface IommufdAccessOps {
  /**
   * `needs_pin_pages`: the driver will call {@link iommufdAccessPinPages}; the access then raises
   * its IOAS's IOVA alignment to `PAGE_SIZE`.
   */
  readonly needsPinPages: boolean;
  /**
   * `unmap(data, iova, length)`: userspace is unmapping `[iova, iova + length)` (the whole range of
   * an area in which the access holds pins), or the access is leaving its IOAS (`iova` 0, `length`
   * `ULONG_MAX`). The driver must unpin every pin it holds inside the range before returning, or
   * the unmap is retried and finally fails with EDEADLOCK.
   * @param iova - first IOVA (u64)
   * @param length - bytes (u64)
   */
  unmap?(iova: bigint, length: bigint): void;
}

/**
 * An in-kernel access (`struct iommufd_access`, object type ACCESS). It is also the
 * {@link IoptAccess} its IOAS's io_pagetable sees: `iovaAlignment` and the `unmap` notification.
 */
export class IommufdAccess extends IommufdObject implements IoptAccess {
  /** Always `IOMMUFD_OBJ_ACCESS`. */
  readonly type = IommufdObjectType.ACCESS;
  /** The driver's callbacks. */
  readonly ops: IommufdAccessOps;
  /** `iova_alignment`: `PAGE_SIZE` when the driver pins pages, else 1 (bytes). */
  readonly iovaAlignment: number;
  /** `ioas`: the attached IOAS, or null (new pins and rw need one: ENOENT without). */
  ioas: IommufdIoas | null = null;
  /**
   * `ioas_unpin`: the IOAS unpins go to. It differs from {@link IommufdAccess.ioas} only while the
   * access is moving (during the old IOAS's unmap callback in replace or detach).
   */
  ioasUnpin: IommufdIoas | null = null;
  /** `iopt_access_list_id`: the access's ID in its IOAS's access list. */
  ioptAccessListId = 0;

  /**
   * Use {@link iommufdAccessCreate}.
   * @param ictx - the context
   * @param ops - the driver's callbacks
   */
  constructor(ictx: IommufdCtx, ops: IommufdAccessOps) {
    super(ictx);
    this.ops = ops;
    this.iovaAlignment = ops.needsPinPages ? IOPT_PAGE_SIZE : 1;
  }

  /**
   * Called by the io_pagetable when userspace unmaps an area this access may hold pins in
   * (`iommufd_access_notify_unmap`): forwards to the driver's `ops.unmap`, if any.
   * @param iova - first IOVA of the area
   * @param length - the area's length in bytes
   */
  unmap(iova: bigint, length: bigint): void {
    this.ops.unmap?.(iova, length);
  }

  /**
   * `iommufd_access_destroy_object`: leave the IOAS (with the driver's unmap callback for the
   * whole space) and drop the context reference taken at creation (which may release the
   * context when its fd is already closed).
   */
  destroy(): void {
    if (this.ioas !== null) changeIoas(this, null);
    this.ictx.put();
  }
}

/**
 * `iommufd_access_create(ictx, ops, data, &id)`: create an access object, visible under its ID
 * (in `.id`) at once. The driver's reference makes `users` 2; a context reference is taken.
 * @param ictx - the context
 * @param ops - the driver's callbacks
 * @returns the access, not attached to any IOAS
 * @throws ErrnoError `ENOSPC` (no free object ID), `ENODEV` (the context was released)
 */
export function iommufdAccessCreate(ictx: IommufdCtx, ops: IommufdAccessOps): IommufdAccess {
  const access = new IommufdAccess(ictx, ops);
  ictx.objectAlloc(access);
  access.users++;
  ictx.get();
  ictx.objectFinalize(access);
  return access;
}

/**
 * `iommufd_access_destroy(access)`: detach if attached (the driver's `unmap` runs for the whole
 * space), drop the driver's reference and destroy the object; afterwards no callback runs.
 * Dropping the context reference may release the context.
 * @param access - from {@link iommufdAccessCreate}
 */
export function iommufdAccessDestroy(access: IommufdAccess): void {
  access.ictx.objectDestroyUser(access);
}

/**
 * `iommufd_access_change_ioas`: move to `newIoas` (or to none): join the new IOAS first (which may
 * fail without changing anything), then tell the driver to drop everything, leave the old one.
 */
function changeIoas(access: IommufdAccess, newIoas: IommufdIoas | null): void {
  const cur = access.ioas;
  const curId = access.ioptAccessListId;
  if (cur !== access.ioasUnpin) throw new ErrnoError('EBUSY', 'access is being detached');
  if (cur === newIoas) return;
  // Block new pins and rw while moving; unpins keep using ioasUnpin.
  access.ioas = null;
  let newId = 0;
  if (newIoas !== null) {
    try {
      newId = newIoas.iopt.addAccess(access);
    } catch (e) {
      access.ioas = cur;
      throw e;
    }
    newIoas.users++;
  }
  if (cur !== null) {
    access.ops.unmap?.(0n, U64_MAX);
    cur.iopt.removeAccess(access, curId);
    cur.users--;
  }
  access.ioas = newIoas;
  access.ioasUnpin = newIoas;
  access.ioptAccessListId = newId;
}

function changeIoasId(access: IommufdAccess, ioasId: number): void {
  changeIoas(access, iommufdGetIoas(access.ictx, ioasId));
}

/**
 * `iommufd_access_attach(access, ioas_id)`: attach to an IOAS; it raises the IOAS's alignment to
 * the access's and takes a `users` reference on it.
 * @param access - an access not yet attached
 * @param ioasId - the IOAS's object ID
 * @throws ErrnoError `EINVAL` (already attached), `ENOENT` (no such IOAS), `EBUSY` (65536
 *   accesses on the IOAS), `EADDRINUSE` (an area breaks the raised alignment); nothing changes
 */
export function iommufdAccessAttach(access: IommufdAccess, ioasId: number): void {
  if (access.ioas !== null) throw new ErrnoError('EINVAL', 'access already attached');
  changeIoasId(access, ioasId);
}

/**
 * `iommufd_access_replace(access, ioas_id)`: move an attached access to another IOAS. The driver's
 * `unmap(0, ULONG_MAX)` runs for the old IOAS (its unpins still reach the old IOAS) before the
 * access leaves it. Replacing with the current IOAS does nothing.
 * @param access - an attached access
 * @param ioasId - the new IOAS's object ID
 * @throws ErrnoError `ENOENT` (not attached, or no such IOAS), `EBUSY`, `EADDRINUSE` as
 *   {@link iommufdAccessAttach}; on failure the access stays on its IOAS
 */
export function iommufdAccessReplace(access: IommufdAccess, ioasId: number): void {
  if (access.ioas === null) throw new ErrnoError('ENOENT', 'access not attached');
  changeIoasId(access, ioasId);
}

/**
 * `iommufd_access_detach(access)`: leave the IOAS after the driver's `unmap(0, ULONG_MAX)`. A
 * detached access is left alone (Linux warns).
 * @param access - an attached access
 */
export function iommufdAccessDetach(access: IommufdAccess): void {
  if (access.ioas === null) return;
  changeIoas(access, null);
}

/** The default `current->mm`: the context's process's mm, or null once the process exited. */
function currentMm(access: IommufdAccess): Mm | null {
  const proc = access.ictx.process;
  return proc.exited ? null : proc.mm;
}

function checkRange(iova: bigint, length: bigint): void {
  if (length === 0n) throw new ErrnoError('EINVAL', 'length 0');
  if (iova + length - 1n > U64_MAX) throw new ErrnoError('EOVERFLOW', 'range wraps');
}

/**
 * `iommufd_access_pin_pages(access, iova, length, out_pages, flags)`: pin the pages under
 * `[iova, iova + length)` until {@link iommufdAccessUnpinPages} of the same range.
 * @param access - an attached access created with `needsPinPages`
 * @param iova - first IOVA (u64); must be page aligned within its area
 * @param length - bytes (u64), positive
 * @param flags - `IOMMUFD_ACCESS_RW_WRITE` for a writable pin, else 0
 * @returns the physical address of each page, in IOVA order
 * @throws ErrnoError `EINVAL` (length 0; in selftest contexts also an access without
 *   `needsPinPages` or without `unmap`; area being unmapped; not page aligned), `EOVERFLOW`,
 *   `ENOENT` (not attached, or a gap), `EPERM` (permissions), `EFAULT` / `ENOMEM` (pinning or
 *   RLIMIT_MEMLOCK); partial work is undone
 */
export function iommufdAccessPinPages(
  access: IommufdAccess,
  iova: bigint,
  length: bigint,
  flags: number,
): number[] {
  if (access.ictx.selftest && (access.iovaAlignment !== IOPT_PAGE_SIZE || access.ops.unmap === undefined))
    throw new ErrnoError('EINVAL', 'access cannot pin pages');
  checkRange(iova, length);
  const ioas = access.ioas;
  if (ioas === null) throw new ErrnoError('ENOENT', 'access not attached');
  return ioas.iopt.accessPinPages(iova, length, flags);
}

/**
 * `iommufd_access_unpin_pages(access, iova, length)`: undo one {@link iommufdAccessPinPages} of
 * exactly this range, on the IOAS the pin was made on (also while the access is moving). Calls
 * with length 0, a wrapping range or no IOAS are ignored (Linux warns).
 * @param access - the access
 * @param iova - first IOVA, as pinned
 * @param length - bytes, as pinned
 */
export function iommufdAccessUnpinPages(access: IommufdAccess, iova: bigint, length: bigint): void {
  if (length === 0n || iova + length - 1n > U64_MAX) return;
  access.ioasUnpin?.iopt.accessUnpinPages(iova, length);
}

/**
 * `iommufd_access_rw(access, iova, data, len, flags)`: copy `data.length` bytes between `data` and
 * the IOAS memory at `iova`, byte-granular, keeping no pins.
 * @param access - an attached access
 * @param iova - first IOVA (u64)
 * @param data - read into (flags without `IOMMUFD_ACCESS_RW_WRITE`) or written from
 * @param flags - `IOMMUFD_ACCESS_RW_*`
 * @param current - the calling task's mm (`current->mm`; it picks the copy path); default the
 *   context's process (as for a driver called from that process's ioctl), null once it exited
 * @throws ErrnoError `EINVAL` (empty buffer, area being unmapped), `EOVERFLOW`, `ENOENT` (not
 *   attached, or a gap), `EPERM` (permissions, write to read-only pages), `EFAULT` (copy fault)
 */
export function iommufdAccessRw(
  access: IommufdAccess,
  iova: bigint,
  data: Uint8Array,
  flags: number,
  current: Mm | null = currentMm(access),
): void {
  checkRange(iova, BigInt(data.length));
  const ioas = access.ioas;
  if (ioas === null) throw new ErrnoError('ENOENT', 'access not attached');
  ioas.iopt.accessRw(iova, data, flags, current);
}
