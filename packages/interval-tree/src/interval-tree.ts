/** The `number`-keyed interval tree. */

import { IntervalTreeBase } from './interval-tree-base.js';

/**
 * Interval tree with `number` keys: the fast default (lib/interval_tree.c with `unsigned long`
 * endpoints, here any safe integers).
 *
 * @remarks
 * Keys must be safe integers (`Number.isSafeInteger`), negative values included, with
 * `start <= last`; the largest usable key is `Number.MAX_SAFE_INTEGER`. See
 * {@link IntervalTreeBase} for the operations.
 *
 * @example
 * ```ts
 * const tree = new IntervalTree<string>();
 * const a = tree.insert(10, 19, 'a');
 * tree.insert(15, 30, 'b');
 * for (const node of tree.overlapping(18, 18)) console.log(node.value); // a, b
 * tree.remove(a);
 * ```
 *
 * @typeParam V - payload type
 * @public
 */
export class IntervalTree<V> extends IntervalTreeBase<number, V> {
  /**
   * Throws unless `start` and `last` are safe integers with `start <= last`.
   * @param start - first key
   * @param last - last key
   * @throws RangeError if a key is not a safe integer or `start` is above `last`
   */
  checkInterval(start: number, last: number): void {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(last) || start > last) {
      throw new RangeError(`interval tree: [${start}, ${last}] is not a range of safe integers`);
    }
  }
}
