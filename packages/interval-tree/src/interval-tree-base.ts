/**
 * The augmented red-black interval tree shared by both key kinds, after lib/interval_tree.c,
 * include/linux/interval_tree_generic.h, lib/rbtree.c and include/linux/rbtree_augmented.h.
 */

import { type IntervalKey, type IntervalTreeNode, RbNode } from './node.js';
import { type IntervalTreeSpan, IntervalTreeSpanIter } from './span-iter.js';

type Node<K extends IntervalKey, V> = RbNode<K, V>;

/** The subtree maximum a node should carry, given correct values in its children. */
function computeSubtreeLast<K extends IntervalKey, V>(node: Node<K, V>): K {
  let max = node.last;
  const left = node.left;
  const right = node.right;
  if (left !== null && left.subtreeLast > max) max = left.subtreeLast;
  if (right !== null && right.subtreeLast > max) max = right.subtreeLast;
  return max;
}

/** Leftmost node of the subtree rooted at `node`. */
function firstInSubtree<K extends IntervalKey, V>(node: Node<K, V>): Node<K, V> {
  let n = node;
  while (n.left !== null) n = n.left;
  return n;
}

/** In-order successor (`rb_next`). */
function successor<K extends IntervalKey, V>(node: Node<K, V>): Node<K, V> | null {
  if (node.right !== null) return firstInSubtree(node.right);
  let n = node;
  let p = n.parent;
  while (p !== null && n === p.right) {
    n = p;
    p = n.parent;
  }
  return p;
}

/**
 * Leftmost node of the subtree at `node` that intersects `[start, last]`, or null; the caller
 * guarantees `start <= node.subtreeLast` (interval_tree_subtree_search).
 */
function subtreeSearch<K extends IntervalKey, V>(node: Node<K, V>, start: K, last: K): Node<K, V> | null {
  let n = node;
  for (;;) {
    const left = n.left;
    // If anything on the left reaches `start`, the answer (if any) is there or nowhere: the
    // leftmost node reaching `start` is the only candidate that can also begin early enough.
    if (left !== null && start <= left.subtreeLast) {
      n = left;
      continue;
    }
    if (n.start > last) return null;
    if (start <= n.last) return n;
    const right = n.right;
    if (right === null || right.subtreeLast < start) return null;
    n = right;
  }
}

/**
 * The next node after `node` in key order that intersects `[start, last]`, or null
 * (interval_tree_iter_next). `node` itself must begin at or before `last`.
 */
function nextOverlap<K extends IntervalKey, V>(node: Node<K, V>, start: K, last: K): Node<K, V> | null {
  let n = node;
  let right = n.right;
  for (;;) {
    if (right !== null && start <= right.subtreeLast) return subtreeSearch(right, start, last);
    // Climb until we arrive from a left child: that ancestor is the next node in order.
    let from: Node<K, V>;
    do {
      from = n;
      const p = n.parent;
      if (p === null) return null;
      n = p;
      right = n.right;
    } while (from === right);
    if (n.start > last) return null;
    if (start <= n.last) return n;
  }
}

/**
 * Shared implementation of {@link IntervalTree} and {@link BigIntIntervalTree}: an augmented
 * red-black tree of closed intervals `[start, last]`, ordered by `start`, mirroring
 * lib/interval_tree.c (instantiated from include/linux/interval_tree_generic.h) over an
 * `rb_root_cached` (lib/rbtree.c, include/linux/rbtree_augmented.h).
 *
 * @remarks
 * Each node carries the largest `last` in its subtree, so overlap queries skip whole subtrees.
 * Duplicates and nested intervals are allowed; a node whose `start` equals an existing node's
 * goes to its right, so equal starts are visited in insertion order. The leftmost node is cached
 * for the fast reject in `iterFirst`. Insertion and removal are O(log n) with iterative fix-ups;
 * `iterFirst` and `iterNext` allocate nothing. The tree must not be modified while an iteration
 * over it (a generator, `iterNext` chain or span iterator) is in progress.
 *
 * @typeParam K - key kind, `number` or `bigint`
 * @typeParam V - payload type
 * @public
 */
export abstract class IntervalTreeBase<K extends IntervalKey, V> implements Iterable<IntervalTreeNode<K, V>> {
  private root: Node<K, V> | null = null;
  private leftmost: Node<K, V> | null = null;
  private owner: object = {};
  private count = 0;

  /**
   * Throws unless `[start, last]` is a valid interval for this tree's key kind.
   * @param start - first key of the interval
   * @param last - last key of the interval
   * @throws RangeError if a key is of the wrong kind or out of range, or `start` is above `last`
   */
  abstract checkInterval(start: K, last: K): void;

  /** Number of intervals in the tree. */
  get size(): number {
    return this.count;
  }

  /**
   * Insert the interval `[start, last]` with payload `value` (interval_tree_insert).
   * @param start - first covered key
   * @param last - last covered key, at least `start`
   * @param value - payload stored on the node
   * @returns the new node, to be passed to `remove` later
   * @throws RangeError if the interval is invalid for the key kind (see `checkInterval`); the tree
   * is unchanged
   */
  insert(start: K, last: K, value: V): IntervalTreeNode<K, V> {
    this.checkInterval(start, last);
    const node = new RbNode<K, V>(start, last, value, this.owner);
    let parent: Node<K, V> | null = null;
    let cur = this.root;
    let goLeft = false;
    let isLeftmost = true;
    while (cur !== null) {
      parent = cur;
      if (cur.subtreeLast < last) cur.subtreeLast = last;
      if (start < cur.start) {
        goLeft = true;
        cur = cur.left;
      } else {
        goLeft = false;
        isLeftmost = false;
        cur = cur.right;
      }
    }
    node.parent = parent;
    if (parent === null) this.root = node;
    else if (goLeft) parent.left = node;
    else parent.right = node;
    if (isLeftmost) this.leftmost = node;
    this.count++;
    this.insertFixup(node);
    return node;
  }

  /**
   * Whether `node` is currently in this tree.
   * @param node - any node, possibly from another tree or already removed
   * @returns true if `node` was inserted into this tree and not removed since (nor cleared)
   */
  has(node: IntervalTreeNode<K, V>): boolean {
    return (node as Node<K, V>).owner === this.owner;
  }

  /**
   * Remove `node` from the tree (interval_tree_remove).
   * @param node - a node returned by this tree's `insert` and still in it
   * @throws Error if `node` is not in this tree (never inserted here, already removed, or the
   * tree was cleared since); the tree is unchanged
   */
  remove(node: IntervalTreeNode<K, V>): void {
    const z = node as Node<K, V>;
    if (z.owner !== this.owner) throw new Error('interval tree: node is not in this tree');
    if (z === this.leftmost) this.leftmost = successor(z);

    let x: Node<K, V> | null;
    let xParent: Node<K, V> | null;
    let removedRed: boolean;
    const zLeft = z.left;
    const zRight = z.right;
    if (zLeft === null || zRight === null) {
      // At most one child: splice z out and let the child take its place.
      x = zLeft ?? zRight;
      xParent = z.parent;
      removedRed = z.red;
      this.replaceChild(z, x);
      if (x !== null) x.parent = xParent;
      this.propagate(xParent);
    } else {
      // Two children: the in-order successor y (no left child) takes z's place and colour.
      const y = firstInSubtree(zRight);
      removedRed = y.red;
      x = y.right;
      if (y.parent === z) {
        xParent = y;
      } else {
        xParent = y.parent!;
        xParent.left = x;
        if (x !== null) x.parent = xParent;
        y.right = zRight;
        zRight.parent = y;
      }
      this.replaceChild(z, y);
      y.parent = z.parent;
      y.left = zLeft;
      zLeft.parent = y;
      y.red = z.red;
      // Every node from y's old parent up to y lost y; y now heads z's old subtree.
      let n = xParent;
      while (n !== y) {
        n.subtreeLast = computeSubtreeLast(n);
        n = n.parent!;
      }
      y.subtreeLast = computeSubtreeLast(y);
      this.propagate(y.parent);
    }
    if (!removedRed) this.eraseFixup(x, xParent);

    z.owner = null;
    z.left = null;
    z.right = null;
    z.parent = null;
    this.count--;
  }

  /**
   * Remove every node. O(1): the removed nodes are disowned at once (they are no longer accepted
   * by `remove`, `iterNext` or `has`).
   */
  clear(): void {
    this.root = null;
    this.leftmost = null;
    this.owner = {};
    this.count = 0;
  }

  /**
   * The first node, in key order, intersecting `[start, last]` (interval_tree_iter_first).
   * Fast rejects, as in the kernel: empty tree, root's `subtreeLast` below `start`, leftmost
   * node's `start` above `last`.
   * @param start - first key of the query (inclusive)
   * @param last - last key of the query (inclusive)
   * @returns the intersecting node with the lowest `start` (ties in insertion order), or
   * `undefined`
   * @throws RangeError if the query range is invalid for the key kind
   */
  iterFirst(start: K, last: K): IntervalTreeNode<K, V> | undefined {
    this.checkInterval(start, last);
    return this.firstMatch(start, last) ?? undefined;
  }

  /**
   * The next node after `node`, in key order, intersecting `[start, last]`
   * (interval_tree_iter_next). Pass the same bounds that produced `node`.
   * @param node - a node of this tree returned by `iterFirst` or `iterNext` for the same bounds
   * @param start - first key of the query (inclusive)
   * @param last - last key of the query (inclusive)
   * @returns the next intersecting node, or `undefined` when there is none
   * @throws Error if `node` is not in this tree
   */
  iterNext(node: IntervalTreeNode<K, V>, start: K, last: K): IntervalTreeNode<K, V> | undefined {
    const n = node as Node<K, V>;
    if (n.owner !== this.owner) throw new Error('interval tree: node is not in this tree');
    return nextOverlap(n, start, last) ?? undefined;
  }

  /**
   * Every node intersecting `[start, last]`, in key order, lazily.
   * @param start - first key of the query (inclusive)
   * @param last - last key of the query (inclusive)
   * @returns an iterator over the intersecting nodes
   * @throws RangeError if the query range is invalid (when the iterator is created)
   */
  overlapping(start: K, last: K): IterableIterator<IntervalTreeNode<K, V>> {
    this.checkInterval(start, last);
    return this.overlappingGen(start, last);
  }

  /** The kernel's iter_first after validation: fast rejects, then the subtree search. */
  private firstMatch(start: K, last: K): Node<K, V> | null {
    const root = this.root;
    if (root === null || root.subtreeLast < start || this.leftmost!.start > last) return null;
    return subtreeSearch(root, start, last);
  }

  private *overlappingGen(start: K, last: K): Generator<IntervalTreeNode<K, V>, void, undefined> {
    for (let n = this.firstMatch(start, last); n !== null; n = nextOverlap(n, start, last)) yield n;
  }

  /**
   * Call `visit` for every node intersecting `[start, last]`, in key order, without allocating.
   * @param start - first key of the query (inclusive)
   * @param last - last key of the query (inclusive)
   * @param visit - called once per intersecting node
   * @returns the number of intersecting nodes
   * @throws RangeError if the query range is invalid
   */
  forEachOverlapping(start: K, last: K, visit: (node: IntervalTreeNode<K, V>) => void): number {
    this.checkInterval(start, last);
    let found = 0;
    for (let n = this.firstMatch(start, last); n !== null; n = nextOverlap(n, start, last)) {
      visit(n);
      found++;
    }
    return found;
  }

  /**
   * Number of nodes intersecting `[start, last]` (what lib/interval_tree_test.c's search check
   * counts).
   * @param start - first key of the query (inclusive)
   * @param last - last key of the query (inclusive)
   * @returns the count of intersecting nodes
   * @throws RangeError if the query range is invalid
   */
  countOverlapping(start: K, last: K): number {
    this.checkInterval(start, last);
    let found = 0;
    for (let n = this.firstMatch(start, last); n !== null; n = nextOverlap(n, start, last)) found++;
    return found;
  }

  /**
   * The node with the lowest `start` (the cached leftmost node, `rb_first_cached`).
   * @returns the first node in key order, or `undefined` for an empty tree
   */
  first(): IntervalTreeNode<K, V> | undefined {
    return this.leftmost ?? undefined;
  }

  /**
   * All nodes in key order (ascending `start`, equal starts in insertion order).
   * @returns an iterator over every node
   */
  *nodes(): Generator<IntervalTreeNode<K, V>, void, undefined> {
    for (let n = this.leftmost; n !== null; n = successor(n)) yield n;
  }

  /**
   * Same as `nodes()`.
   * @returns an iterator over every node in key order
   */
  [Symbol.iterator](): Iterator<IntervalTreeNode<K, V>> {
    return this.nodes();
  }

  /**
   * The spans of `[first, last]`, alternating holes and used spans, as
   * `interval_tree_for_each_span` visits them (see {@link IntervalTreeSpanIter}).
   * @param first - first key of the range (inclusive)
   * @param last - last key of the range (inclusive)
   * @returns an iterator of fresh span records that exactly tile `[first, last]`
   * @throws RangeError if the range is invalid (when the iterator is created)
   */
  spans(first: K, last: K): IterableIterator<IntervalTreeSpan<K>> {
    const it = new IntervalTreeSpanIter<K, V>(this);
    it.spanIterFirst(first, last);
    return spanGen(it);
  }

  private replaceChild(old: Node<K, V>, replacement: Node<K, V> | null): void {
    const p = old.parent;
    if (p === null) this.root = replacement;
    else if (p.left === old) p.left = replacement;
    else p.right = replacement;
  }

  /** Recompute `subtreeLast` from `node` to the root, stopping once a value is unchanged. */
  private propagate(node: Node<K, V> | null): void {
    let n = node;
    while (n !== null) {
      const v = computeSubtreeLast(n);
      if (v === n.subtreeLast) return;
      n.subtreeLast = v;
      n = n.parent;
    }
  }

  /** Rotate `x` down to the left; `x.right` takes its place and its subtree maximum. */
  private rotateLeft(x: Node<K, V>): void {
    const y = x.right!;
    const yl = y.left;
    x.right = yl;
    if (yl !== null) yl.parent = x;
    const p = x.parent;
    y.parent = p;
    if (p === null) this.root = y;
    else if (p.left === x) p.left = y;
    else p.right = y;
    y.left = x;
    x.parent = y;
    y.subtreeLast = x.subtreeLast;
    x.subtreeLast = computeSubtreeLast(x);
  }

  /** Rotate `x` down to the right; `x.left` takes its place and its subtree maximum. */
  private rotateRight(x: Node<K, V>): void {
    const y = x.left!;
    const yr = y.right;
    x.left = yr;
    if (yr !== null) yr.parent = x;
    const p = x.parent;
    y.parent = p;
    if (p === null) this.root = y;
    else if (p.right === x) p.right = y;
    else p.left = y;
    y.right = x;
    x.parent = y;
    y.subtreeLast = x.subtreeLast;
    x.subtreeLast = computeSubtreeLast(x);
  }

  /** Restore the red-black properties after linking the red leaf `node` (`__rb_insert`). */
  private insertFixup(node: Node<K, V>): void {
    let n = node;
    let p = n.parent;
    while (p?.red) {
      const g = p.parent!; // a red node is never the root
      if (p === g.left) {
        const uncle = g.right;
        if (uncle?.red) {
          p.red = false;
          uncle.red = false;
          g.red = true;
          n = g;
          p = n.parent;
          continue;
        }
        if (n === p.right) {
          this.rotateLeft(p);
          p = n;
        }
        p.red = false;
        g.red = true;
        this.rotateRight(g);
        break;
      }
      const uncle = g.left;
      if (uncle?.red) {
        p.red = false;
        uncle.red = false;
        g.red = true;
        n = g;
        p = n.parent;
        continue;
      }
      if (n === p.left) {
        this.rotateRight(p);
        p = n;
      }
      p.red = false;
      g.red = true;
      this.rotateLeft(g);
      break;
    }
    this.root!.red = false;
  }

  /**
   * Restore the red-black properties after a black node was removed above `x` (which may be
   * null, with parent `parent`) (`__rb_erase_color`).
   */
  private eraseFixup(node: Node<K, V> | null, parentOfNode: Node<K, V> | null): void {
    let x = node;
    let parent = parentOfNode;
    while (parent !== null && (x === null || !x.red)) {
      if (x === parent.left) {
        let w = parent.right!; // the sibling's side is a black level deeper, so it exists
        if (w.red) {
          w.red = false;
          parent.red = true;
          this.rotateLeft(parent);
          w = parent.right!;
        }
        const wl = w.left;
        let wr = w.right;
        if ((wl === null || !wl.red) && (wr === null || !wr.red)) {
          w.red = true;
          x = parent;
          parent = x.parent;
          continue;
        }
        if (wr === null || !wr.red) {
          wl!.red = false;
          w.red = true;
          this.rotateRight(w);
          w = parent.right!;
          wr = w.right;
        }
        w.red = parent.red;
        parent.red = false;
        wr!.red = false;
        this.rotateLeft(parent);
        x = this.root;
        break;
      }
      let w = parent.left!;
      if (w.red) {
        w.red = false;
        parent.red = true;
        this.rotateRight(parent);
        w = parent.left!;
      }
      let wl = w.left;
      const wr = w.right;
      if ((wl === null || !wl.red) && (wr === null || !wr.red)) {
        w.red = true;
        x = parent;
        parent = x.parent;
        continue;
      }
      if (wl === null || !wl.red) {
        wr!.red = false;
        w.red = true;
        this.rotateLeft(w);
        w = parent.left!;
        wl = w.left;
      }
      w.red = parent.red;
      parent.red = false;
      wl!.red = false;
      this.rotateRight(parent);
      x = this.root;
      break;
    }
    if (x !== null) x.red = false;
  }
}

function* spanGen<K extends IntervalKey, V>(
  it: IntervalTreeSpanIter<K, V>,
): Generator<IntervalTreeSpan<K>, void, undefined> {
  while (!it.done) {
    const isHole = it.isHole === 1;
    yield { isHole, start: it.startHole, last: it.lastHole };
    it.next();
  }
}
