import { describe, expect, it } from 'vitest';
import { BigIntIntervalTree } from './bigint-interval-tree.js';
import { IntervalTree } from './interval-tree.js';
import type { IntervalTreeNode } from './node.js';
import { checkInvariants } from './testing.js';

function snapshot(tree: IntervalTree<string>): Array<[number, number, string]> {
  return [...tree].map((n) => [n.start, n.last, n.value]);
}

describe('IntervalTree basics', () => {
  it('inserts, queries with iterFirst/iterNext and removes', () => {
    const tree = new IntervalTree<string>();
    const a = tree.insert(10, 19, 'a');
    const b = tree.insert(15, 40, 'b');
    const c = tree.insert(12, 13, 'c');
    expect(tree.size).toBe(3);
    expect(tree.first()).toBe(a);
    const hits: string[] = [];
    for (let n = tree.iterFirst(13, 15); n; n = tree.iterNext(n, 13, 15)) hits.push(n.value);
    expect(hits).toEqual(['a', 'c', 'b']);
    expect(tree.iterFirst(41, 100)).toBeUndefined();
    expect(tree.iterFirst(0, 9)).toBeUndefined();
    expect(tree.iterFirst(40, 40)).toBe(b);
    expect(tree.iterFirst(9, 10)).toBe(a); // closed intervals: both ends count
    tree.remove(a);
    expect(tree.first()).toBe(c);
    expect(tree.has(a)).toBe(false);
    expect(tree.has(b)).toBe(true);
    checkInvariants(tree);
  });

  it('keeps equal starts in insertion order and allows exact duplicates', () => {
    const tree = new IntervalTree<number>();
    const nodes: Array<IntervalTreeNode<number, number>> = [];
    for (let i = 0; i < 50; i++) nodes.push(tree.insert(7, 7 + (i % 3), i));
    expect([...tree.nodes()].map((n) => n.value)).toEqual(nodes.map((n) => n.value));
    expect([...tree.overlapping(7, 7)]).toEqual(nodes);
    checkInvariants(tree);
  });

  it('lets the payload change but not the bounds', () => {
    const tree = new IntervalTree<string>();
    const n = tree.insert(1, 2, 'x');
    n.value = 'y';
    expect(tree.iterFirst(1, 1)?.value).toBe('y');
  });

  it('accepts negative and extreme safe integers', () => {
    const tree = new IntervalTree<string>();
    const lo = tree.insert(Number.MIN_SAFE_INTEGER, -1, 'neg');
    const hi = tree.insert(0, Number.MAX_SAFE_INTEGER, 'pos');
    expect([...tree.overlapping(-1, 0)]).toEqual([lo, hi]);
    expect(tree.iterFirst(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)).toBe(hi);
    checkInvariants(tree);
  });

  it('clear empties the tree and disowns its nodes', () => {
    const tree = new IntervalTree<string>();
    const n = tree.insert(1, 2, 'x');
    tree.clear();
    expect(tree.size).toBe(0);
    expect([...tree]).toEqual([]);
    expect(tree.first()).toBeUndefined();
    expect(() => tree.remove(n)).toThrow(Error);
    checkInvariants(tree);
    tree.insert(3, 4, 'y');
    expect(tree.size).toBe(1);
    checkInvariants(tree);
  });

  it('counts and visits overlaps without allocating an iterator', () => {
    const tree = new IntervalTree<number>();
    for (let i = 0; i < 100; i++) tree.insert(i, i + 9, i);
    expect(tree.countOverlapping(50, 50)).toBe(10);
    const seen: number[] = [];
    expect(tree.forEachOverlapping(0, 2, (n) => seen.push(n.value))).toBe(3);
    expect(seen).toEqual([0, 1, 2]);
    expect(tree.countOverlapping(200, 300)).toBe(0);
  });
});

describe('IntervalTree error cases change nothing', () => {
  const build = () => {
    const tree = new IntervalTree<string>();
    tree.insert(1, 5, 'a');
    tree.insert(3, 9, 'b');
    return tree;
  };

  it.each<[string, number, number]>([
    ['start above last', 5, 4],
    ['non-integer start', 1.5, 4],
    ['non-integer last', 1, 4.25],
    ['NaN', Number.NaN, 4],
    ['Infinity', 0, Number.POSITIVE_INFINITY],
    ['unsafe integer', 0, 2 ** 53],
    ['below the safe range', -(2 ** 53), 0],
  ])('insert rejects %s with RangeError', (_name, s, l) => {
    const tree = build();
    const before = snapshot(tree);
    expect(() => tree.insert(s, l, 'x')).toThrow(RangeError);
    expect(() => tree.iterFirst(s, l)).toThrow(RangeError);
    expect(snapshot(tree)).toEqual(before);
    expect(tree.size).toBe(2);
    checkInvariants(tree);
  });

  it('rejects a bigint passed to a number tree', () => {
    const tree = build();
    expect(() => tree.insert(1n as unknown as number, 2, 'x')).toThrow(RangeError);
    expect(tree.size).toBe(2);
  });

  it('remove rejects foreign, removed and fabricated nodes', () => {
    const tree = build();
    const other = new IntervalTree<string>();
    const foreign = other.insert(1, 5, 'a');
    const mine = tree.insert(2, 2, 'm');
    tree.remove(mine);
    const before = snapshot(tree);
    expect(() => tree.remove(foreign)).toThrow(Error);
    expect(() => tree.remove(mine)).toThrow(Error);
    expect(() => tree.remove({ start: 1, last: 5, subtreeLast: 9, value: 'a' })).toThrow(Error);
    expect(() => tree.iterNext(foreign, 0, 10)).toThrow(Error);
    const bigTree = new BigIntIntervalTree<string>();
    const bigNode = bigTree.insert(1n, 5n, 'a');
    expect(() => tree.remove(bigNode as unknown as IntervalTreeNode<number, string>)).toThrow(Error);
    expect(snapshot(tree)).toEqual(before);
    expect(other.size).toBe(1);
    expect(bigTree.size).toBe(1);
    checkInvariants(tree);
    checkInvariants(other);
  });
});

describe('checkInvariants', () => {
  it('detects a corrupted augmentation and a wrong colour', () => {
    const tree = new IntervalTree<null>();
    const nodes = [];
    for (let i = 0; i < 20; i++) nodes.push(tree.insert(i, i + 1, null));
    expect(checkInvariants(tree)).toBeGreaterThan(0);
    const internal = nodes[7] as unknown as { subtreeLast: number; red: boolean };
    const saved = internal.subtreeLast;
    internal.subtreeLast = 1000;
    expect(() => checkInvariants(tree)).toThrow(/subtreeLast/);
    internal.subtreeLast = saved;
    const root = (tree as unknown as { root: { red: boolean } }).root;
    root.red = true;
    expect(() => checkInvariants(tree)).toThrow(/root is red/);
    root.red = false;
    checkInvariants(tree);
  });
});
