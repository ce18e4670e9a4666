/**
 * A span iterator over the union of two interval trees (drivers/iommu/iommufd/double_span.h,
 * `struct interval_tree_double_span_iter` and its functions in pages.c).
 *
 * @remarks
 * The range `[first, last]` is cut into maximal spans that are either covered by neither tree (a
 * hole, {@link DoubleSpanIter.isUsed} 0) or covered by at least one; a covered span reports the
 * first tree (1) when the first tree covers its start, else the second (2), and it ends where that
 * tree's coverage ends or where the other tree's hole ends, whichever comes first. iommufd uses it
 * to find the PFN indexes nobody holds (access ranges ∪ domain-filled areas) and the IOVA holes
 * that are neither reserved nor mapped.
 */

import { type IntervalKey, IntervalTreeSpanIter, type SpanIterSource } from '@iommu-ts/interval-tree';

/**
 * Cursor over the holes and used spans of two trees; see the file comment.
 *
 * @example
 * ```ts
 * const it = new DoubleSpanIter(accessTree, domainsTree);
 * for (it.first(0, 99); !it.done; it.next()) if (it.isUsed === 0) unpin(it.start, it.last);
 * ```
 *
 * @typeParam K - key kind of both trees (`number` page indexes or `bigint` IOVAs)
 */
export class DoubleSpanIter<K extends IntervalKey> {
  private readonly spans: readonly [IntervalTreeSpanIter<K, unknown>, IntervalTreeSpanIter<K, unknown>];
  private lastIndex: K;
  /** -1 when done, 0 on a hole, 1 on a span covered by the first tree, 2 by the second only. */
  isUsed: -1 | 0 | 1 | 2 = -1;
  /** First key of the current span (inclusive). */
  start: K;
  /** Last key of the current span (inclusive). */
  last: K;

  /**
   * @param tree1 - the first tree (its coverage wins where both cover)
   * @param tree2 - the second tree
   */
  constructor(tree1: SpanIterSource<K, unknown>, tree2: SpanIterSource<K, unknown>) {
    this.spans = [new IntervalTreeSpanIter(tree1), new IntervalTreeSpanIter(tree2)];
    // Placeholders: the fields mean something only after first().
    const zero = 0 as K;
    this.lastIndex = zero;
    this.start = zero;
    this.last = zero;
  }

  /** Whether every span has been visited. */
  get done(): boolean {
    return this.isUsed === -1;
  }

  /**
   * Start on `[first, last]` (`interval_tree_double_span_iter_first`).
   * @param first - first key (inclusive)
   * @param last - last key (inclusive), ≥ `first`
   * @returns this iterator, positioned on the first span
   */
  first(first: K, last: K): this {
    this.lastIndex = last;
    this.spans[0].spanIterFirst(first, last);
    this.spans[1].spanIterFirst(first, last);
    this.update();
    return this;
  }

  /** Move to the next span, or to done (`interval_tree_double_span_iter_next`). */
  next(): void {
    if (this.isUsed === -1 || this.last === this.lastIndex) {
      this.isUsed = -1;
      return;
    }
    const from = (typeof this.last === 'bigint' ? this.last + 1n : (this.last as number) + 1) as K;
    this.spans[0].advance(from);
    this.spans[1].advance(from);
    this.update();
  }

  private update(): void {
    let holeLast: K | undefined;
    for (let i = 0; i < 2; i++) {
      const s = this.spans[i as 0 | 1];
      if (s.done) {
        this.isUsed = -1;
        return;
      }
      if (s.isHole === 1) {
        if (holeLast === undefined || s.lastHole < holeLast) holeLast = s.lastHole;
        continue;
      }
      this.isUsed = (i + 1) as 1 | 2;
      this.start = s.startUsed;
      this.last = holeLast !== undefined && holeLast < s.lastUsed ? holeLast : s.lastUsed;
      return;
    }
    const a = this.spans[0];
    const b = this.spans[1];
    this.isUsed = 0;
    this.start = a.startHole;
    this.last = a.lastHole;
    if (b.lastHole < this.last) this.last = b.lastHole;
  }
}
