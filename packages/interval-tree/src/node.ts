/**
 * The node shape shared by every tree in this package: the public view handed to callers
 * ({@link IntervalTreeNode}) and the internal red-black node that carries the links.
 */

/**
 * Key kinds a tree can be built over: `number` (safe integers) or `bigint` (`u64`).
 * @public
 */
export type IntervalKey = number | bigint;

/**
 * One interval stored in a tree, as returned by `insert` and by the queries; the counterpart of
 * `struct interval_tree_node` in include/linux/interval_tree.h.
 *
 * @remarks
 * The interval is closed: it covers every key `k` with `start <= k && k <= last`. The endpoints
 * are fixed for the node's lifetime; `value` is the caller's payload and may be reassigned.
 * A node belongs to at most one tree, and to none after it has been removed.
 *
 * @typeParam K - key kind, `number` or `bigint`
 * @typeParam V - payload type
 * @public
 */
export interface IntervalTreeNode<K extends IntervalKey, V> {
  /** First key covered by the interval (inclusive). */
  readonly start: K;
  /** Last key covered by the interval (inclusive); never below `start`. */
  readonly last: K;
  /**
   * Largest `last` among this node and its descendants in the tree (the kernel's
   * `__subtree_last`); maintained by the tree and only meaningful while the node is in one.
   */
  readonly subtreeLast: K;
  /** Caller payload, free to be replaced at any time. */
  value: V;
}

/**
 * Internal red-black node. Every field is written in the constructor, in one order, so that all
 * nodes share a single hidden class. `owner` is the owning tree's ownership token, cleared on
 * removal; it lets `remove` reject foreign or stale nodes in O(1).
 * @internal
 */
export class RbNode<K extends IntervalKey, V> implements IntervalTreeNode<K, V> {
  start: K;
  last: K;
  subtreeLast: K;
  value: V;
  left: RbNode<K, V> | null;
  right: RbNode<K, V> | null;
  parent: RbNode<K, V> | null;
  red: boolean;
  owner: object | null;

  constructor(start: K, last: K, value: V, owner: object) {
    this.start = start;
    this.last = last;
    this.subtreeLast = last;
    this.value = value;
    this.left = null;
    this.right = null;
    this.parent = null;
    this.red = true;
    this.owner = owner;
  }
}

/**
 * The private state of a tree as seen by the package's own helpers (the span iterator needs none
 * of it; `checkInvariants` in the testing entry reads it).
 * @internal
 */
export interface TreeInternals<K extends IntervalKey, V> {
  root: RbNode<K, V> | null;
  leftmost: RbNode<K, V> | null;
  owner: object;
  count: number;
}
