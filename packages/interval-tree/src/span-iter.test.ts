import { describe, expect, it } from 'vitest';
import { BigIntIntervalTree } from './bigint-interval-tree.js';
import { IntervalTree } from './interval-tree.js';
import { IntervalTreeSpanIter } from './span-iter.js';

type Triple = [string, number, number];

function spansOf(nodes: Array<[number, number]>, first = 0, last = 99): Triple[] {
  const tree = new IntervalTree<null>();
  for (const [s, l] of nodes) tree.insert(s, l, null);
  return [...tree.spans(first, last)].map((s) => [s.isHole ? 'hole' : 'used', s.start, s.last]);
}

describe('span iteration: the digest examples over [0, 99]', () => {
  it.each<[string, Array<[number, number]>, Triple[]]>([
    ['no nodes', [], [['hole', 0, 99]]],
    [
      '[10,19]',
      [[10, 19]],
      [
        ['hole', 0, 9],
        ['used', 10, 19],
        ['hole', 20, 99],
      ],
    ],
    [
      'adjacent [10,19] [20,29] merge',
      [
        [10, 19],
        [20, 29],
      ],
      [
        ['hole', 0, 9],
        ['used', 10, 29],
        ['hole', 30, 99],
      ],
    ],
    [
      'overlapping and nested [10,19] [15,40] [12,13]',
      [
        [10, 19],
        [15, 40],
        [12, 13],
      ],
      [
        ['hole', 0, 9],
        ['used', 10, 40],
        ['hole', 41, 99],
      ],
    ],
    [
      'used at both ends [0,5] [90,200]',
      [
        [0, 5],
        [90, 200],
      ],
      [
        ['used', 0, 5],
        ['hole', 6, 89],
        ['used', 90, 99],
      ],
    ],
    [
      'one-key gap [10,19] [21,30]',
      [
        [10, 19],
        [21, 30],
      ],
      [
        ['hole', 0, 9],
        ['used', 10, 19],
        ['hole', 20, 20],
        ['used', 21, 30],
        ['hole', 31, 99],
      ],
    ],
  ])('%s', (_name, nodes, expected) => {
    expect(spansOf(nodes)).toEqual(expected);
  });

  it('a node covering the whole range gives one used span and no trailing hole', () => {
    expect(spansOf([[0, 1000]])).toEqual([['used', 0, 99]]);
    expect(spansOf([[50, 50]], 50, 50)).toEqual([['used', 50, 50]]);
  });

  it('nodes outside the range do not count', () => {
    expect(spansOf([[200, 300]])).toEqual([['hole', 0, 99]]);
  });
});

describe('IntervalTreeSpanIter: the kernel-style cursor', () => {
  const tree = new IntervalTree<null>();
  tree.insert(10, 19, null);
  tree.insert(30, 39, null);

  it('exposes the union fields and is_hole values 1, 0, -1', () => {
    const it = new IntervalTreeSpanIter(tree);
    expect(it.done).toBe(true);
    it.spanIterFirst(0, 99);
    expect([it.isHole, it.startHole, it.lastHole]).toEqual([1, 0, 9]);
    it.next();
    expect([it.isHole, it.startUsed, it.lastUsed]).toEqual([0, 10, 19]);
    expect(it.startHole).toBe(it.startUsed);
    it.next();
    expect([it.isHole, it.startHole, it.lastHole]).toEqual([1, 20, 29]);
    it.next();
    expect([it.isHole, it.startUsed, it.lastUsed]).toEqual([0, 30, 39]);
    it.next();
    expect([it.isHole, it.startHole, it.lastHole]).toEqual([1, 40, 99]);
    it.next();
    expect(it.isHole).toBe(-1);
    expect(it.done).toBe(true);
    it.next();
    expect(it.done).toBe(true);
  });

  it('advance inside the current span moves only its start', () => {
    const it = new IntervalTreeSpanIter(tree).spanIterFirst(0, 99);
    it.advance(4);
    expect([it.isHole, it.startHole, it.lastHole]).toEqual([1, 4, 9]);
    it.next();
    it.advance(15);
    expect([it.isHole, it.startUsed, it.lastUsed]).toEqual([0, 15, 19]);
  });

  it('advance exactly one past the current span steps to the next span', () => {
    const it = new IntervalTreeSpanIter(tree).spanIterFirst(0, 99);
    it.advance(10);
    expect([it.isHole, it.startUsed, it.lastUsed]).toEqual([0, 10, 19]);
    it.advance(20);
    expect([it.isHole, it.startHole, it.lastHole]).toEqual([1, 20, 29]);
  });

  it('advance further restarts from the new index, forwards or backwards', () => {
    const it = new IntervalTreeSpanIter(tree).spanIterFirst(0, 99);
    it.advance(35);
    expect([it.isHole, it.startUsed, it.lastUsed]).toEqual([0, 35, 39]);
    it.advance(12);
    expect([it.isHole, it.startUsed, it.lastUsed]).toEqual([0, 12, 19]);
    it.advance(60);
    expect([it.isHole, it.startHole, it.lastHole]).toEqual([1, 60, 99]);
  });

  it('advance past the last index finishes; advance when done does nothing', () => {
    const it = new IntervalTreeSpanIter(tree).spanIterFirst(0, 99);
    it.advance(100);
    expect(it.done).toBe(true);
    it.advance(5);
    expect(it.done).toBe(true);
  });

  it('rejects invalid ranges and indexes', () => {
    const it = new IntervalTreeSpanIter(tree);
    expect(() => it.spanIterFirst(5, 4)).toThrow(RangeError);
    expect(() => it.spanIterFirst(0.5, 4)).toThrow(RangeError);
    it.spanIterFirst(0, 99);
    expect(() => it.advance(1.5)).toThrow(RangeError);
    expect([it.isHole, it.startHole, it.lastHole]).toEqual([1, 0, 9]);
  });
});

describe('span iteration at the ends of the key space', () => {
  const MAX = 2n ** 64n - 1n;
  const spans = (tree: BigIntIntervalTree<null>, first: bigint, last: bigint) =>
    [...tree.spans(first, last)].map((s) => [s.isHole ? 'hole' : 'used', s.start, s.last]);

  it('bigint: empty tree over the whole u64 range is one hole', () => {
    expect(spans(new BigIntIntervalTree<null>(), 0n, MAX)).toEqual([['hole', 0n, MAX]]);
  });

  it('bigint: [0, 2^64-1] fully used', () => {
    const tree = new BigIntIntervalTree<null>();
    tree.insert(0n, MAX, null);
    expect(spans(tree, 0n, MAX)).toEqual([['used', 0n, MAX]]);
    expect(spans(tree, MAX - 1n, MAX)).toEqual([['used', MAX - 1n, MAX]]);
    expect(spans(tree, MAX, MAX)).toEqual([['used', MAX, MAX]]);
  });

  it('bigint: a node ending at 2^64-1 ends the iteration; a hole can end there too', () => {
    const tree = new BigIntIntervalTree<null>();
    tree.insert(MAX - 1n, MAX, null);
    tree.insert(0n, 0n, null);
    expect(spans(tree, 0n, MAX)).toEqual([
      ['used', 0n, 0n],
      ['hole', 1n, MAX - 2n],
      ['used', MAX - 1n, MAX],
    ]);
    expect(spans(tree, MAX - 2n, MAX)).toEqual([
      ['hole', MAX - 2n, MAX - 2n],
      ['used', MAX - 1n, MAX],
    ]);
    const other = new BigIntIntervalTree<null>();
    other.insert(MAX - 5n, MAX - 2n, null);
    expect(spans(other, MAX - 2n, MAX)).toEqual([
      ['used', MAX - 2n, MAX - 2n],
      ['hole', MAX - 1n, MAX],
    ]);
    expect(spans(other, MAX - 1n, MAX)).toEqual([['hole', MAX - 1n, MAX]]);
  });

  it('bigint: advance to 2^64-1 and past the end', () => {
    const tree = new BigIntIntervalTree<null>();
    tree.insert(10n, 20n, null);
    const it = new IntervalTreeSpanIter(tree).spanIterFirst(0n, MAX);
    it.advance(MAX);
    expect([it.isHole, it.startHole, it.lastHole]).toEqual([1, MAX, MAX]);
    it.next();
    expect(it.done).toBe(true);
    expect(() => new IntervalTreeSpanIter(tree).spanIterFirst(0n, MAX + 1n)).toThrow(RangeError);
  });

  it('number: ranges ending at Number.MAX_SAFE_INTEGER terminate', () => {
    const MAXN = Number.MAX_SAFE_INTEGER;
    const tree = new IntervalTree<null>();
    tree.insert(MAXN - 1, MAXN, null);
    expect([...tree.spans(0, MAXN)].map((s) => [s.isHole, s.start, s.last])).toEqual([
      [true, 0, MAXN - 2],
      [false, MAXN - 1, MAXN],
    ]);
    const empty = new IntervalTree<null>();
    expect([...empty.spans(MAXN, MAXN)]).toEqual([{ isHole: true, start: MAXN, last: MAXN }]);
  });
});
