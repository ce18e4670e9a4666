import { describe, expect, it } from 'vitest';
import { BigIntIntervalTree } from './bigint-interval-tree.js';
import { checkInvariants } from './testing.js';

const MAX = 2n ** 64n - 1n;

function snapshot(tree: BigIntIntervalTree<string>): Array<[bigint, bigint, string]> {
  return [...tree].map((n) => [n.start, n.last, n.value]);
}

describe('BigIntIntervalTree at the edges of the u64 range', () => {
  it('stores [0, 2^64-1] and finds it from anywhere, including 2^64-1', () => {
    const tree = new BigIntIntervalTree<string>();
    const all = tree.insert(0n, MAX, 'all');
    expect(all.subtreeLast).toBe(MAX);
    expect(tree.iterFirst(MAX, MAX)).toBe(all);
    expect(tree.iterFirst(0n, 0n)).toBe(all);
    expect(tree.iterFirst(2n ** 63n, 2n ** 63n)).toBe(all);
    expect(tree.iterNext(all, MAX, MAX)).toBeUndefined();
    checkInvariants(tree);
  });

  it('distinguishes the last two keys', () => {
    const tree = new BigIntIntervalTree<string>();
    const top = tree.insert(MAX, MAX, 'top');
    const below = tree.insert(MAX - 1n, MAX - 1n, 'below');
    const zero = tree.insert(0n, 0n, 'zero');
    expect([...tree.overlapping(MAX, MAX)]).toEqual([top]);
    expect([...tree.overlapping(MAX - 1n, MAX)]).toEqual([below, top]);
    expect([...tree.overlapping(0n, MAX)]).toEqual([zero, below, top]);
    expect(tree.iterFirst(1n, MAX - 2n)).toBeUndefined();
    tree.remove(top);
    expect(tree.iterFirst(MAX, MAX)).toBeUndefined();
    checkInvariants(tree);
  });

  it('rejects keys outside the u64 range or of the wrong kind, changing nothing', () => {
    const tree = new BigIntIntervalTree<string>();
    tree.insert(5n, 10n, 'a');
    const before = snapshot(tree);
    expect(() => tree.insert(-1n, 3n, 'x')).toThrow(RangeError);
    expect(() => tree.insert(0n, MAX + 1n, 'x')).toThrow(RangeError);
    expect(() => tree.insert(10n, 5n, 'x')).toThrow(RangeError);
    expect(() => tree.insert(1 as unknown as bigint, 2n, 'x')).toThrow(RangeError);
    expect(() => tree.iterFirst(0n, MAX + 1n)).toThrow(RangeError);
    expect(() => tree.overlapping(3n, 2n)).toThrow(RangeError);
    expect(snapshot(tree)).toEqual(before);
    expect(tree.size).toBe(1);
    checkInvariants(tree);
  });
});
