/**
 * The span iterator over an interval tree, after `struct interval_tree_span_iter` and its
 * functions in lib/interval_tree.c (CONFIG_INTERVAL_TREE_SPAN_ITER).
 */

import type { IntervalKey, IntervalTreeNode } from './node.js';

/**
 * What the span iterator needs of a tree: the kernel's iter_first/iter_next and interval checks.
 * Every `IntervalTreeBase` is one.
 *
 * @typeParam K - key kind, `number` or `bigint`
 * @typeParam V - payload type of the tree
 * @public
 */
export interface SpanIterSource<K extends IntervalKey, V> {
  /** The node with the lowest start, or `undefined` for an empty tree. */
  first(): IntervalTreeNode<K, V> | undefined;
  /** First node intersecting `[start, last]` (interval_tree_iter_first); validates the range. */
  iterFirst(start: K, last: K): IntervalTreeNode<K, V> | undefined;
  /** Next node after `node` intersecting `[start, last]` (interval_tree_iter_next). */
  iterNext(node: IntervalTreeNode<K, V>, start: K, last: K): IntervalTreeNode<K, V> | undefined;
  /** Throw RangeError unless `[start, last]` is a valid interval of this key kind. */
  checkInterval(start: K, last: K): void;
}

/**
 * One span produced by `IntervalTreeBase.spans`: a maximal run of keys that are all covered
 * (used) or all uncovered (a hole). Bounds are inclusive.
 * @public
 */
export interface IntervalTreeSpan<K extends IntervalKey> {
  /** True for a hole (no node covers any key of the span), false for a used span. */
  readonly isHole: boolean;
  /** First key of the span (inclusive). */
  readonly start: K;
  /** Last key of the span (inclusive). */
  readonly last: K;
}

/** `k + 1` for either key kind; exact for both (numbers stay below 2^53 + 1). */
function inc<K extends IntervalKey>(k: K): K {
  return (typeof k === 'bigint' ? k + 1n : (k as number) + 1) as K;
}

/** `k - 1` for either key kind. */
function dec<K extends IntervalKey>(k: K): K {
  return (typeof k === 'bigint' ? k - 1n : (k as number) - 1) as K;
}

/**
 * Cursor that cuts a key range into alternating hole and used spans, mirroring
 * `struct interval_tree_span_iter` with `interval_tree_span_iter_first`, `_next`, `_done` and
 * `_advance` from lib/interval_tree.c.
 *
 * @remarks
 * The range `[firstIndex, lastIndex]` is split into maximal spans: used spans are covered by the
 * union of the tree's intervals (clipped to the range), holes by none. Overlapping intervals and
 * adjacent ones (`a.last + 1 === b.start`) merge into one used span. Successive spans alternate
 * and exactly tile the range; a used span that reaches `lastIndex` ends the iteration without a
 * trailing hole. As in the kernel, the start/last fields of a hole and of a used span share
 * storage, so `startHole === startUsed` and `lastHole === lastUsed` always. The fields are
 * meaningful only after `spanIterFirst` and while `isHole` is not -1. The tree must not change
 * during an iteration.
 *
 * Unlike C, keys do not wrap: a range ending at the largest key (2^64-1 or
 * `Number.MAX_SAFE_INTEGER`) ends normally.
 *
 * @example
 * ```ts
 * const it = new IntervalTreeSpanIter(tree);
 * for (it.spanIterFirst(0, 99); !it.done; it.next()) {
 *   console.log(it.isHole ? 'hole' : 'used', it.startHole, it.lastHole);
 * }
 * ```
 *
 * @typeParam K - key kind, `number` or `bigint`
 * @typeParam V - payload type of the tree
 * @public
 */
export class IntervalTreeSpanIter<K extends IntervalKey, V = unknown> {
  private readonly tree: SpanIterSource<K, V>;
  /** Node of the current run with the greatest `last` (kernel `nodes[0]`). */
  private runEnd: IntervalTreeNode<K, V> | undefined = undefined;
  /** First node after the current run (kernel `nodes[1]`). */
  private nextNode: IntervalTreeNode<K, V> | undefined = undefined;
  private firstIndex: K;
  private lastIndex: K;
  private spanStart: K;
  private spanLast: K;
  private state: 1 | 0 | -1 = -1;

  /**
   * Create an iterator over `tree`; it is done until `spanIterFirst` is called.
   * @param tree - the tree whose nodes define the used spans
   */
  constructor(tree: SpanIterSource<K, V>) {
    this.tree = tree;
    const zero = (tree.first()?.start ?? 0) as K;
    this.firstIndex = zero;
    this.lastIndex = zero;
    this.spanStart = zero;
    this.spanLast = zero;
  }

  /** 1 while on a hole, 0 while on a used span, -1 when done (the kernel's `is_hole`). */
  get isHole(): 1 | 0 | -1 {
    return this.state;
  }

  /** True once every span has been visited (interval_tree_span_iter_done). */
  get done(): boolean {
    return this.state === -1;
  }

  /** First key of the current hole (inclusive); the same storage as `startUsed`. */
  get startHole(): K {
    return this.spanStart;
  }

  /** Last key of the current hole (inclusive); the same storage as `lastUsed`. */
  get lastHole(): K {
    return this.spanLast;
  }

  /** First key of the current used span (inclusive); the same storage as `startHole`. */
  get startUsed(): K {
    return this.spanStart;
  }

  /** Last key of the current used span (inclusive); the same storage as `lastHole`. */
  get lastUsed(): K {
    return this.spanLast;
  }

  /**
   * Start iterating `[first, last]` and position on its first span
   * (interval_tree_span_iter_first).
   * @param first - first key of the range (inclusive)
   * @param last - last key of the range (inclusive)
   * @returns this iterator
   * @throws RangeError if the range is invalid for the tree's key kind
   */
  spanIterFirst(first: K, last: K): this {
    const node = this.tree.iterFirst(first, last); // also validates the range
    this.firstIndex = first;
    this.lastIndex = last;
    this.runEnd = undefined;
    this.nextNode = node;
    if (node === undefined) {
      // Nothing intersects: the whole range is one hole.
      this.spanStart = first;
      this.spanLast = last;
      this.state = 1;
      return this;
    }
    if (node.start > first) {
      // Leading hole up to the first node.
      this.spanStart = first;
      this.spanLast = dec(node.start);
      this.state = 1;
      this.scanRun();
      return this;
    }
    // The range begins inside a used run.
    this.spanStart = first;
    this.state = 0;
    this.scanRun();
    this.endUsedSpan();
    return this;
  }

  /** Move to the following span, or to done (interval_tree_span_iter_next). */
  next(): void {
    const runEnd = this.runEnd;
    const nextNode = this.nextNode;
    if (runEnd === undefined && nextNode === undefined) {
      this.state = -1;
      return;
    }
    if (this.state === 1) {
      // A hole is always followed by the run scanned when the hole was produced.
      this.spanStart = inc(this.spanLast);
      this.state = 0;
      this.endUsedSpan();
      return;
    }
    if (nextNode === undefined) {
      // Trailing hole after the last run.
      this.spanStart = inc(runEnd!.last);
      this.spanLast = this.lastIndex;
      this.runEnd = undefined;
      this.state = 1;
      return;
    }
    // Interior hole between two runs.
    this.spanStart = inc(runEnd!.last);
    this.spanLast = dec(nextNode.start);
    this.state = 1;
    this.scanRun();
  }

  /**
   * Skip ahead so that the current span begins at `newIndex` (interval_tree_span_iter_advance).
   * No-op when done; past `lastIndex` the iterator becomes done; inside the current span only its
   * start moves; exactly one past the current span it steps to the next span; anywhere else the
   * iteration restarts at `newIndex` with the same `lastIndex`.
   * @param newIndex - the new first key
   * @throws RangeError if `newIndex` is not a valid key for the tree's key kind
   */
  advance(newIndex: K): void {
    if (this.state === -1) return;
    this.tree.checkInterval(newIndex, newIndex);
    this.firstIndex = newIndex;
    if (newIndex > this.lastIndex) {
      this.state = -1;
      return;
    }
    if (this.spanStart <= newIndex && newIndex <= this.spanLast) {
      this.spanStart = newIndex;
      return;
    }
    if (newIndex === inc(this.spanLast)) this.next();
    else this.spanIterFirst(newIndex, this.lastIndex);
  }

  /**
   * Starting from `nextNode`, absorb following intersecting nodes while they overlap or touch the
   * run so far; leaves `runEnd` on the run's node with the greatest `last` and `nextNode` on the
   * first node after the run (kernel `interval_tree_span_iter_next_gap`).
   */
  private scanRun(): void {
    const tree = this.tree;
    let cur = this.nextNode!;
    let end = cur;
    for (;;) {
      if (cur.last > end.last) end = cur;
      const nxt = tree.iterNext(cur, this.firstIndex, this.lastIndex);
      if (nxt === undefined || nxt.start > inc(end.last)) {
        this.nextNode = nxt;
        break;
      }
      cur = nxt;
    }
    this.runEnd = end;
  }

  /** Close the used span at the run's end, clipping at `lastIndex` (which ends the iteration). */
  private endUsedSpan(): void {
    const end = this.runEnd!.last;
    if (end >= this.lastIndex) {
      this.spanLast = this.lastIndex;
      this.runEnd = undefined;
      this.nextNode = undefined;
    } else {
      this.spanLast = end;
    }
  }
}
