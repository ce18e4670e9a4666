/**
 * The selftest's in-kernel access (`struct selftest_access` in drivers/iommu/iommufd/selftest.c):
 * an emulated device driving the access API, reachable from userspace through a file descriptor
 * (CREATE_ACCESS returns one; ACCESS_PAGES, ACCESS_RW, DESTROY_ACCESS_PAGES and
 * ACCESS_REPLACE_IOAS take it in `id`). It keeps the list of pins it holds ("items", each with an
 * ID counted from 0) and drops them when userspace unmaps them (the access `unmap` callback), when
 * asked to, or when the fd is closed (which also destroys the access).
 */

import { ErrnoError } from '@iommu-ts/base';
import type { ProcessFile } from '@iommu-ts/mm';
import {
  type IommufdAccess,
  type IommufdAccessOps,
  iommufdAccessDestroy,
  iommufdAccessUnpinPages,
} from '../access.js';
import type { IommufdCtx } from '../main.js';

const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** One pin held by a {@link SelftestAccess} (`struct selftest_access_item`). */
export interface SelftestAccessItem {
  /** First IOVA pinned. */
  readonly iova: bigint;
  /** Bytes pinned. */
  readonly length: bigint;
  /** The ID ACCESS_PAGES returned (`out_access_pages_id`). */
  readonly id: number;
}

/**
 * A selftest access: the open file behind a CREATE_ACCESS descriptor, its access, and its pins.
 * Closing the last descriptor (`release`) unpins everything and destroys the access.
 */
export class SelftestAccess implements ProcessFile {
  /** The access, set once CREATE_ACCESS succeeded (null before and after release). */
  access: IommufdAccess | null = null;
  /** The pins held, oldest first. */
  readonly items: SelftestAccessItem[] = [];
  /** `next_id`: the ID of the next pin. */
  nextId = 0;
  /** Whether the file has been released. */
  released = false;
  /** The access ops given at creation: `needsPinPages` as asked, `unmap` = {@link SelftestAccess.unmap}. */
  readonly ops: IommufdAccessOps;

  /**
   * @param needsPinPages - `MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES` was given
   */
  constructor(needsPinPages: boolean) {
    this.ops = {
      needsPinPages,
      unmap: (iova, length) => this.unmap(iova, length),
    };
  }

  /**
   * `iommufd_test_access_unmap`: drop (unpin and forget) every item intersecting
   * `[iova, iova + length - 1]`.
   * @param iova - first IOVA
   * @param length - bytes
   */
  unmap(iova: bigint, length: bigint): void {
    const last = iova + length - 1n > U64_MAX ? U64_MAX : iova + length - 1n;
    for (let i = 0; i < this.items.length; ) {
      const item = this.items[i] as SelftestAccessItem;
      if (iova > item.iova + item.length - 1n || last < item.iova) {
        i++;
        continue;
      }
      this.items.splice(i, 1);
      if (this.access !== null) iommufdAccessUnpinPages(this.access, item.iova, item.length);
    }
  }

  /**
   * `iommufd_test_access_item_destroy`: unpin and forget the item with ID `id`.
   * @param id - the item's ID
   * @throws ErrnoError `ENOENT` when no item has that ID
   */
  destroyItem(id: number): void {
    const i = this.items.findIndex((item) => item.id === id);
    if (i < 0) throw new ErrnoError('ENOENT', `no access pages ${id}`);
    const [item] = this.items.splice(i, 1);
    if (item !== undefined && this.access !== null)
      iommufdAccessUnpinPages(this.access, item.iova, item.length);
  }

  /** `iommufd_test_staccess_release`: unpin everything and destroy the access. */
  close(): void {
    if (this.released) return;
    this.released = true;
    const access = this.access;
    if (access !== null) {
      this.unmap(0n, U64_MAX);
      iommufdAccessDestroy(access);
      this.access = null;
    }
  }
}

/**
 * `iommufd_access_get(fd)` of the selftest: the selftest access behind descriptor `fd` of the
 * context's process.
 * @param ictx - the context (its process's fd table is searched)
 * @param fd - the descriptor
 * @returns the selftest access
 * @throws ErrnoError `EBADFD` when `fd` is not open or is not a selftest access
 */
export function selftestAccessGet(ictx: IommufdCtx, fd: number): SelftestAccess {
  let file: ProcessFile;
  try {
    file = ictx.process.getFile(fd);
  } catch {
    throw new ErrnoError('EBADFD', `fd ${fd} is not open`);
  }
  if (!(file instanceof SelftestAccess) || file.access === null)
    throw new ErrnoError('EBADFD', `fd ${fd} is not a selftest access`);
  return file;
}
