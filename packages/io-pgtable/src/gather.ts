/**
 * `struct iommu_iotlb_gather` and the dirty bitmap of `read_and_clear_dirty`
 * (include/linux/iommu.h).
 */

/**
 * An IOTLB invalidation batch: the range a driver's `tlbAddPage` accumulates until `iotlb_sync`.
 *
 * @remarks
 * Mirrors `struct iommu_iotlb_gather`. `start`/`end` are inclusive byte addresses as numbers
 * (exact below 2^53; see {@link IommuFlushOps} for upper-half IOVAs). An empty gather has
 * `start = Infinity`, `end = 0` (Linux: `ULONG_MAX`, 0). `queued` set means flush-queue mode:
 * io-pgtable then queues no per-page invalidation at all.
 */
export class IommuIotlbGather {
  /** First byte of the gathered range (inclusive); `Infinity` when empty. */
  start = Number.POSITIVE_INFINITY;
  /** Last byte of the gathered range (inclusive); 0 when empty. */
  end = 0;
  /** The page size of the gathered invalidations, 0 when none yet. */
  pgsize = 0;
  /** Flush-queue mode: io-pgtable skips `tlbAddPage`. */
  queued = false;

  /** Reset to empty (`iommu_iotlb_gather_init`). */
  init(): void {
    this.start = Number.POSITIVE_INFINITY;
    this.end = 0;
    this.pgsize = 0;
    this.queued = false;
  }

  /**
   * Grow the range to cover `[iova, iova + size)` (`iommu_iotlb_gather_add_range`).
   *
   * @param iova - first byte
   * @param size - length in bytes
   */
  addRange(iova: number, size: number): void {
    const end = iova + size - 1;
    if (this.start > iova) this.start = iova;
    if (this.end < end) this.end = end;
  }

  /**
   * Whether `[iova, iova + size)` neither overlaps nor touches the gathered range
   * (`iommu_iotlb_gather_is_disjoint`).
   *
   * @param iova - first byte
   * @param size - length in bytes
   */
  isDisjoint(iova: number, size: number): boolean {
    const last = iova + size - 1;
    return this.end !== 0 && (last + 1 < this.start || iova > this.end + 1);
  }
}

/**
 * Receiver of dirty ranges found by `readAndClearDirty` (`struct iommu_dirty_bitmap`,
 * `iommu_dirty_bitmap_record`).
 */
export interface IommuDirtyBitmap {
  /**
   * Record that `[iova, iova + length)` is dirty.
   *
   * @param iova - first byte of the leaf (number; see {@link IommuFlushOps} on upper-half IOVAs)
   * @param length - the leaf's size in bytes
   */
  record(iova: number, length: number): void;
}

/**
 * `struct iommu_flush_ops`: the TLB maintenance callbacks io-pgtable calls. Each is optional.
 *
 * @remarks
 * IOVAs are numbers. Below 2^53 they are exact. For tables whose IOVAs have all-ones upper bits
 * (quirk ARM_TTBR1, or the upper half of a sign-extended x86 table) the value passed is the
 * full 64-bit IOVA rounded to a double, which is exact for the granule-aligned addresses these
 * callbacks receive (doubles in [2^63, 2^64) are multiples of 2^11).
 *
 * Call points mirror drivers/iommu/io-pgtable-arm.c and io-pgtable-arm-v7s.c: `tlbFlushAll` only
 * from `freeIoPgtableOps`; `tlbFlushWalk` whenever a table descriptor is removed; `tlbAddPage` per
 * slot cleared by an unmap (see the format's policy flags).
 */
export interface IommuFlushOps {
  /**
   * Invalidate the whole context, synchronously (`tlb_flush_all`).
   * @param cookie - the cookie given to `allocIoPgtableOps`
   */
  tlbFlushAll?(cookie: unknown): void;
  /**
   * Invalidate walk-cache state for a range, synchronously (`tlb_flush_walk`).
   * @param iova - first byte of the range
   * @param size - range length in bytes
   * @param granule - the table's page granule in bytes
   * @param cookie - the cookie given to `allocIoPgtableOps`
   */
  tlbFlushWalk?(iova: number, size: number, granule: number, cookie: unknown): void;
  /**
   * Queue the invalidation of one leaf (`tlb_add_page`); the driver may flush at once or record
   * the page in `gather` for a later `iotlb_sync`.
   * @param gather - the caller's gather, or `null` (v7s calls even with no gather)
   * @param iova - first byte of the leaf
   * @param granule - the leaf's size in bytes
   * @param cookie - the cookie given to `allocIoPgtableOps`
   */
  tlbAddPage?(gather: IommuIotlbGather | null, iova: number, granule: number, cookie: unknown): void;
}
