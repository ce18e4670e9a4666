/** The `bigint`-keyed (u64) interval tree. */

import { IntervalTreeBase } from './interval-tree-base.js';

/** 2^64 - 1, the largest key of a {@link BigIntIntervalTree}. */
const U64_MAX = 0xffff_ffff_ffff_ffffn;

/**
 * Interval tree with `bigint` keys in the `u64` range `[0, 2^64-1]`, for callers such as
 * iommufd (drivers/iommu/iommufd/io_pagetable.c) whose IOVA intervals may end at 2^64-1.
 *
 * @remarks
 * The same algorithm as {@link IntervalTree} (lib/interval_tree.c); only the key kind differs.
 * See {@link IntervalTreeBase} for the operations.
 *
 * @example
 * ```ts
 * const tree = new BigIntIntervalTree<string>();
 * tree.insert(0n, 0xffff_ffff_ffff_ffffn, 'all');
 * tree.iterFirst(0xffff_ffff_ffff_ffffn, 0xffff_ffff_ffff_ffffn)?.value; // 'all'
 * ```
 *
 * @typeParam V - payload type
 * @public
 */
export class BigIntIntervalTree<V> extends IntervalTreeBase<bigint, V> {
  /**
   * Throws unless `start` and `last` are bigints in `[0, 2^64-1]` with `start <= last`.
   * @param start - first key
   * @param last - last key
   * @throws RangeError if a key is not a bigint, is outside the u64 range, or `start` is above
   * `last`
   */
  checkInterval(start: bigint, last: bigint): void {
    if (
      typeof start !== 'bigint' ||
      typeof last !== 'bigint' ||
      start < 0n ||
      last > U64_MAX ||
      start > last
    ) {
      throw new RangeError(`interval tree: [${String(start)}, ${String(last)}] is not a u64 range`);
    }
  }
}
