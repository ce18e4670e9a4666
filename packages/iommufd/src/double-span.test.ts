import { BigIntIntervalTree, IntervalTree } from '@iommu-ts/interval-tree';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DoubleSpanIter } from './double-span.js';

/** Brute force: per key, 1 if the first tree covers it, 2 if only the second, 0 if neither. */
function classify(a: [number, number][], b: [number, number][], k: number): 0 | 1 | 2 {
  if (a.some(([s, l]) => s <= k && k <= l)) return 1;
  if (b.some(([s, l]) => s <= k && k <= l)) return 2;
  return 0;
}

describe('DoubleSpanIter', () => {
  it('tiles the range like a per-key classification', () => {
    const iv = fc
      .tuple(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 8 }))
      .map(([s, n]) => [s, s + n] as [number, number]);
    fc.assert(
      fc.property(
        fc.array(iv, { maxLength: 6 }),
        fc.array(iv, { maxLength: 6 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: 40 }),
        (a, b, first, span) => {
          const t1 = new IntervalTree<null>();
          const t2 = new IntervalTree<null>();
          for (const [s, l] of a) t1.insert(s, l, null);
          for (const [s, l] of b) t2.insert(s, l, null);
          const last = first + span;
          const it = new DoubleSpanIter<number>(t1, t2);
          let next = first;
          let prevKind = -1;
          for (it.first(first, last); !it.done; it.next()) {
            expect(it.start).toBe(next);
            expect(it.last).toBeGreaterThanOrEqual(it.start);
            expect(it.last).toBeLessThanOrEqual(last);
            for (let k = it.start; k <= it.last; k++) {
              const c = classify(a, b, k);
              // A used span is reported as the first tree when it covers the span's start; the span
              // then ends where that coverage ends or where the other tree's hole ends.
              if (it.isUsed === 0) expect(c).toBe(0);
              else expect(c).not.toBe(0);
            }
            if (it.isUsed === 0) expect(prevKind).not.toBe(0); // holes are maximal
            prevKind = it.isUsed;
            next = it.last + 1;
          }
          expect(next).toBe(last + 1);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('works with u64 keys up to 2^64 - 1', () => {
    const max = 2n ** 64n - 1n;
    const t1 = new BigIntIntervalTree<null>();
    const t2 = new BigIntIntervalTree<null>();
    t1.insert(max - 10n, max, null);
    t2.insert(0x1000n, 0x1fffn, null);
    const it = new DoubleSpanIter<bigint>(t1, t2);
    const spans: [number, bigint, bigint][] = [];
    for (it.first(0n, max); !it.done; it.next()) spans.push([it.isUsed, it.start, it.last]);
    expect(spans).toEqual([
      [0, 0n, 0xfffn],
      [2, 0x1000n, 0x1fffn],
      [0, 0x2000n, max - 11n],
      [1, max - 10n, max],
    ]);
  });
});
