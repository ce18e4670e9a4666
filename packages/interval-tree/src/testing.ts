/**
 * Test helpers for `@iommu-ts/interval-tree`, published as the `@iommu-ts/interval-tree/testing`
 * entry point. Not needed by ordinary callers.
 */

import type { IntervalTreeBase } from './interval-tree-base.js';
import type { IntervalKey, IntervalTreeNode, RbNode, TreeInternals } from './node.js';

/**
 * Verify every structural invariant of `tree` in O(n), throwing on the first violation.
 *
 * @remarks
 * Checks: the root is black and has no parent; parent links match child links; no red node has
 * a red child; every root-to-leaf path has the same number of black nodes; in-order keys ascend
 * by `start`; each node's `subtreeLast` is the maximum `last` of its subtree (the augmentation of
 * include/linux/interval_tree_generic.h); every node belongs to `tree`; the cached leftmost
 * node is the first in order; the node count equals `size`. Insertion order among equal starts
 * cannot be seen from the tree alone and is left to the caller (compare `tree.nodes()` with a
 * model).
 *
 * @param tree - any tree from this package
 * @returns the tree's height in nodes (0 for an empty tree)
 * @throws Error describing the first broken invariant
 * @public
 */
export function checkInvariants<K extends IntervalKey, V>(tree: IntervalTreeBase<K, V>): number {
  const t = tree as unknown as TreeInternals<K, V>;
  const root = t.root;
  const fail = (what: string): never => {
    throw new Error(`interval tree invariant broken: ${what}`);
  };
  if (root === null) {
    if (t.leftmost !== null) fail('empty tree has a leftmost node');
    if (t.count !== 0) fail(`empty tree has size ${t.count}`);
    return 0;
  }
  if (root.parent !== null) fail('root has a parent');
  if (root.red) fail('root is red');

  // Post-order walk with an explicit stack; results per node kept in maps.
  const blackHeight = new Map<RbNode<K, V>, number>();
  const depth = new Map<RbNode<K, V>, number>();
  const stack: Array<[RbNode<K, V>, boolean]> = [[root, false]];
  while (stack.length > 0) {
    const [n, childrenDone] = stack.pop()!;
    if (!childrenDone) {
      if (n.owner !== t.owner) fail(`node [${n.start}, ${n.last}] does not belong to the tree`);
      stack.push([n, true]);
      for (const c of [n.left, n.right]) {
        if (c === null) continue;
        if (c.parent !== n) fail(`child [${c.start}, ${c.last}] has a wrong parent link`);
        if (n.red && c.red) fail(`red node [${n.start}, ${n.last}] has a red child`);
        stack.push([c, false]);
      }
      continue;
    }
    const lb = n.left === null ? 1 : blackHeight.get(n.left)!;
    const rb = n.right === null ? 1 : blackHeight.get(n.right)!;
    if (lb !== rb) fail(`black heights differ below [${n.start}, ${n.last}] (${lb} vs ${rb})`);
    blackHeight.set(n, lb + (n.red ? 0 : 1));
    const ld = n.left === null ? 0 : depth.get(n.left)!;
    const rd = n.right === null ? 0 : depth.get(n.right)!;
    depth.set(n, Math.max(ld, rd) + 1);
    let max = n.last;
    if (n.left !== null && n.left.subtreeLast > max) max = n.left.subtreeLast;
    if (n.right !== null && n.right.subtreeLast > max) max = n.right.subtreeLast;
    if (n.subtreeLast !== max) {
      fail(`node [${n.start}, ${n.last}] has subtreeLast ${n.subtreeLast}, expected ${max}`);
    }
    if (n.start > n.last) fail(`node [${n.start}, ${n.last}] is inverted`);
  }

  // In-order walk: ascending starts, count, leftmost.
  let count = 0;
  let prev: IntervalTreeNode<K, V> | undefined;
  for (const n of tree.nodes()) {
    if (prev === undefined) {
      if (n !== t.leftmost) fail('cached leftmost is not the first node in order');
    } else if (n.start < prev.start) {
      fail(`in-order keys descend: ${prev.start} then ${n.start}`);
    }
    prev = n;
    count++;
  }
  if (count !== t.count) fail(`size is ${t.count} but ${count} nodes are reachable`);
  return depth.get(root)!;
}
