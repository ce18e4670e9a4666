// Property tests: random operation sequences against a naive array model, for both key kinds,
// with every structural invariant checked after every operation.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BigIntIntervalTree } from './bigint-interval-tree.js';
import { IntervalTree } from './interval-tree.js';
import type { IntervalTreeBase } from './interval-tree-base.js';
import { big, type ModelEntry, modelOverlaps, modelSpans, sortedByStart } from './model.test-helpers.js';
import type { IntervalKey, IntervalTreeNode } from './node.js';
import { IntervalTreeSpanIter } from './span-iter.js';
import { checkInvariants } from './testing.js';

const U64_MAX = 2n ** 64n - 1n;
const MAX_LIVE = 200;
const RUNS = 40;
const MIN_OPS = 250;
const MAX_OPS = 400;

interface KeyKind<K extends IntervalKey> {
  name: string;
  make: () => IntervalTreeBase<K, number>;
  /** The largest key of the kind. */
  max: bigint;
  of: (k: bigint) => K;
}

const numberKind: KeyKind<number> = {
  name: 'number',
  make: () => new IntervalTree<number>(),
  max: BigInt(Number.MAX_SAFE_INTEGER),
  of: (k) => Number(k),
};
const bigintKind: KeyKind<bigint> = {
  name: 'bigint',
  make: () => new BigIntIntervalTree<number>(),
  max: U64_MAX,
  of: (k) => k,
};

// A key is a small offset from 0 or from the kind's maximum, so runs exercise collisions,
// adjacency, nesting and both ends of the key space.
const keyArb = fc.record({ high: fc.nat(9).map((n) => n === 0), k: fc.nat(300) });
type KeySpec = { high: boolean; k: number };
const rangeArb = fc.tuple(keyArb, keyArb, fc.nat(6));

type Op =
  | { op: 'insert'; a: KeySpec; b: KeySpec; span: number }
  | { op: 'remove'; pick: number }
  | { op: 'removeStale' }
  | { op: 'query'; a: KeySpec; b: KeySpec; span: number }
  | { op: 'spans'; a: KeySpec; b: KeySpec; span: number; advances: Array<[number, KeySpec]> };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: rangeArb.map(([a, b, span]): Op => ({ op: 'insert', a, b, span })) },
  { weight: 4, arbitrary: fc.nat().map((pick): Op => ({ op: 'remove', pick })) },
  { weight: 1, arbitrary: fc.constant<Op>({ op: 'removeStale' }) },
  { weight: 3, arbitrary: rangeArb.map(([a, b, span]): Op => ({ op: 'query', a, b, span })) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(rangeArb, fc.array(fc.tuple(fc.nat(3), keyArb), { maxLength: 4 }))
      .map(([[a, b, span], advances]): Op => ({ op: 'spans', a, b, span, advances })),
  },
);

function runModel<K extends IntervalKey>(kind: KeyKind<K>, ops: Op[]): void {
  const tree = kind.make();
  const model: Array<ModelEntry<IntervalTreeNode<K, number>>> = [];
  const removed: Array<IntervalTreeNode<K, number>> = [];
  let serial = 0;
  const keyOf = (s: KeySpec): bigint => (s.high ? kind.max - BigInt(s.k) : BigInt(s.k));
  // Turn two key specs into an ordered range; a small `span` widens point-ish ranges.
  const rangeOf = (a: KeySpec, b: KeySpec, span: number): [bigint, bigint] => {
    let lo = keyOf(a);
    let hi = keyOf(b);
    if (lo > hi) [lo, hi] = [hi, lo];
    if (lo === hi && hi + BigInt(span) <= kind.max) hi += BigInt(span);
    return [lo, hi];
  };

  const verify = (): void => {
    checkInvariants(tree);
    expect(tree.size).toBe(model.length);
    const inOrder = [...tree];
    const expected = sortedByStart(model).map((e) => e.node);
    expect(inOrder.length).toBe(expected.length);
    for (let i = 0; i < inOrder.length; i++) {
      if (inOrder[i] !== expected[i]) throw new Error(`in-order mismatch at ${i}`);
    }
  };

  for (const o of ops) {
    switch (o.op) {
      case 'insert': {
        if (model.length >= MAX_LIVE) {
          const e = model.shift()!;
          tree.remove(e.node);
          removed.push(e.node);
          break;
        }
        const [s, l] = rangeOf(o.a, o.b, o.span);
        const node = tree.insert(kind.of(s), kind.of(l), serial++);
        expect(big(node.start)).toBe(s);
        expect(big(node.last)).toBe(l);
        model.push({ start: s, last: l, node });
        break;
      }
      case 'remove': {
        if (model.length === 0) break;
        const [e] = model.splice(o.pick % model.length, 1);
        tree.remove(e!.node);
        expect(tree.has(e!.node)).toBe(false);
        removed.push(e!.node);
        break;
      }
      case 'removeStale': {
        const stale = removed[removed.length - 1];
        if (stale === undefined) break;
        expect(() => tree.remove(stale)).toThrow(Error);
        expect(() => tree.iterNext(stale, stale.start, stale.last)).toThrow(Error);
        break;
      }
      case 'query': {
        const [s, l] = rangeOf(o.a, o.b, o.span);
        const expected = modelOverlaps(model, s, l);
        const viaIter: Array<IntervalTreeNode<K, number>> = [];
        for (
          let n = tree.iterFirst(kind.of(s), kind.of(l));
          n;
          n = tree.iterNext(n, kind.of(s), kind.of(l))
        ) {
          viaIter.push(n);
        }
        expect(viaIter).toEqual(expected);
        for (let i = 0; i < expected.length; i++) expect(viaIter[i]).toBe(expected[i]);
        expect([...tree.overlapping(kind.of(s), kind.of(l))]).toEqual(expected);
        const visited: Array<IntervalTreeNode<K, number>> = [];
        expect(tree.forEachOverlapping(kind.of(s), kind.of(l), (n) => visited.push(n))).toBe(expected.length);
        expect(visited).toEqual(expected);
        expect(tree.countOverlapping(kind.of(s), kind.of(l))).toBe(expected.length);
        break;
      }
      case 'spans': {
        const [s, l] = rangeOf(o.a, o.b, o.span);
        const got = [...tree.spans(kind.of(s), kind.of(l))].map(
          (sp) => [sp.isHole, big(sp.start), big(sp.last)] as [boolean, bigint, bigint],
        );
        expect(got).toEqual(modelSpans(model, s, l));
        // Advance semantics: after advancing to any index, the rest of the iteration equals the
        // model's spans of [index, last].
        const it = new IntervalTreeSpanIter(tree);
        it.spanIterFirst(kind.of(s), kind.of(l));
        for (const [steps, spec] of o.advances) {
          for (let i = 0; i < steps && !it.done; i++) it.next();
          if (it.done) break;
          const cur = big(it.startHole);
          // Mostly jump a little ahead of the current position; sometimes anywhere.
          const target = spec.high ? keyOf({ high: false, k: spec.k }) : cur + BigInt(spec.k % 40);
          if (target > kind.max) continue;
          it.advance(kind.of(target));
          if (it.done) {
            expect(target > l).toBe(true);
            break;
          }
          const rest: Array<[boolean, bigint, bigint]> = [];
          const probe = new IntervalTreeSpanIter(tree);
          probe.spanIterFirst(kind.of(target), kind.of(l));
          expect([it.isHole === 1, big(it.startHole), big(it.lastHole)]).toEqual(
            modelSpans(model, target, l)[0],
          );
          for (; !probe.done; probe.next())
            rest.push([probe.isHole === 1, big(probe.startHole), big(probe.lastHole)]);
          expect(rest).toEqual(modelSpans(model, target, l));
        }
        break;
      }
    }
    verify();
  }
  // Drain: remove everything in random-ish order, still checking after each removal.
  while (model.length > 0) {
    const [e] = model.splice((model.length * 7) % model.length, 1);
    tree.remove(e!.node);
    verify();
  }
}

function largerTree<K extends IntervalKey>(kind: KeyKind<K>): void {
  const tree = kind.make();
  const live: Array<IntervalTreeNode<K, number>> = [];
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  for (let i = 0; i < 6000; i++) {
    if (live.length < 2000 && rnd(3) !== 0) {
      const a = BigInt(rnd(100_000));
      const b = a + BigInt(rnd(500));
      live.push(tree.insert(kind.of(a), kind.of(b), i));
    } else if (live.length > 0) {
      const [n] = live.splice(rnd(live.length), 1);
      tree.remove(n!);
    }
    if (i % 500 === 0) checkInvariants(tree);
  }
  const height = checkInvariants(tree);
  expect(height).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(live.length + 1)));
}

for (const kind of [numberKind, bigintKind] as const) {
  describe(`${kind.name} keys: random operations against an array model`, () => {
    it(`agrees with the model over at least ${RUNS * MIN_OPS} operations`, () => {
      let total = 0;
      fc.assert(
        fc.property(fc.array(opArb, { minLength: MIN_OPS, maxLength: MAX_OPS }), (ops) => {
          total += ops.length;
          runModel(kind as KeyKind<IntervalKey>, ops);
        }),
        { numRuns: RUNS },
      );
      expect(total).toBeGreaterThanOrEqual(10_000);
    });

    it('keeps up with a larger tree (2,000 live nodes, invariants checked periodically)', () => {
      largerTree(kind as KeyKind<IntervalKey>);
    });
  });
}
