import { Prng } from '@iommu-ts/base';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdAllocator } from './id-allocator.js';

const MAX = 0xffff_fffe;

/** The obvious allocator: a Set and a linear scan, with the cursor rule of `xa_alloc_cyclic`. */
class NaiveAllocator {
  readonly set = new Set<number>();
  cursor = 0;
  constructor(readonly cyclic: boolean) {}
  private scan(lo: number, hi: number): number {
    for (let x = lo; x <= hi; x++) if (!this.set.has(x)) return x;
    return -1;
  }
  alloc(min: number, max: number): number {
    let id: number;
    if (this.cyclic) {
      const start = Math.max(min, this.cursor);
      id = start <= max ? this.scan(start, max) : -1;
      if (id < 0 && start > min) id = this.scan(min, max);
      if (id >= 0) this.cursor = id + 1;
    } else {
      id = this.scan(min, max);
    }
    if (id >= 0) this.set.add(id);
    return id;
  }
  allocAt(id: number): boolean {
    if (this.set.has(id)) return false;
    this.set.add(id);
    return true;
  }
  free(id: number): boolean {
    return this.set.delete(id);
  }
  count(min: number, max: number): number {
    let n = 0;
    for (const id of this.set) if (id >= min && id <= max) n++;
    return n;
  }
  sorted(): number[] {
    return [...this.set].sort((a, b) => a - b);
  }
}

function allocN(a: IdAllocator, n: number, min: number, max: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(a.alloc(min, max));
  return out;
}

describe('IdAllocator: lowest free', () => {
  it('allocates the lowest free ID and reuses freed ones', () => {
    const a = new IdAllocator();
    expect(allocN(a, 4, 0, 100)).toEqual([0, 1, 2, 3]);
    expect(a.free(1)).toBe(true);
    expect(a.free(2)).toBe(true);
    expect(a.alloc(0, 100)).toBe(1);
    expect(a.alloc(0, 100)).toBe(2);
    expect(a.alloc(0, 100)).toBe(4);
    expect(a.size).toBe(5);
    expect([...a.ids()]).toEqual([0, 1, 2, 3, 4]);
  });

  it('respects the range, including min = max', () => {
    const a = new IdAllocator();
    expect(a.alloc(5, 10)).toBe(5);
    expect(a.alloc(3, 10)).toBe(3);
    expect(a.alloc(100, 100)).toBe(100);
    expect(a.alloc(100, 100)).toBe(-1);
    expect(a.alloc(99, 100)).toBe(99);
    expect(a.alloc(0, 0)).toBe(0);
    expect([...a.ids()]).toEqual([0, 3, 5, 99, 100]);
  });

  it('returns -1 on exhaustion and changes nothing', () => {
    const a = new IdAllocator();
    const got = allocN(a, 2048, 0, 2047);
    expect(got).toEqual(Array.from({ length: 2048 }, (_, i) => i));
    const nodes = a.nodeCount;
    expect(a.alloc(0, 2047)).toBe(-1);
    expect(a.alloc(1000, 1030)).toBe(-1);
    expect(a.size).toBe(2048);
    expect(a.nodeCount).toBe(nodes);
    expect(a.alloc(0, 2048)).toBe(2048);
    expect(a.alloc(1500, 5000)).toBe(2049);
  });

  it('free of an unallocated ID returns false and changes nothing', () => {
    const a = new IdAllocator();
    expect(a.free(7)).toBe(false);
    a.allocAt(5);
    a.allocAt(0xffff_0000);
    const before = { size: a.size, nodes: a.nodeCount, ids: [...a.ids()] };
    for (const id of [4, 6, 1024, 0xffff_0001, 0xffff_fffe, MAX + 1, -1, 0.5, Number.NaN, 2 ** 40]) {
      expect(a.free(id)).toBe(false);
      expect(a.has(id)).toBe(false);
    }
    expect({ size: a.size, nodes: a.nodeCount, ids: [...a.ids()] }).toEqual(before);
    expect(a.free(5)).toBe(true);
    expect(a.free(5)).toBe(false);
  });

  it('allocAt takes a specific ID once', () => {
    const a = new IdAllocator();
    expect(a.allocAt(42)).toBe(true);
    expect(a.allocAt(42)).toBe(false);
    expect(a.has(42)).toBe(true);
    expect(a.alloc(42, 43)).toBe(43);
    expect(a.alloc(40, 50)).toBe(40);
    expect(a.size).toBe(3);
  });

  it('rejects bad arguments with RangeError', () => {
    const a = new IdAllocator();
    expect(() => a.alloc(5, 4)).toThrow(RangeError);
    expect(() => a.alloc(1.5, 3)).toThrow(RangeError);
    expect(() => a.alloc(-1, 3)).toThrow(RangeError);
    expect(() => a.alloc(0, 0xffff_ffff)).toThrow(RangeError);
    expect(() => a.alloc(0, Number.NaN)).toThrow(RangeError);
    expect(() => a.alloc(0, 2 ** 32)).toThrow(RangeError);
    expect(() => a.allocAt(0xffff_ffff)).toThrow(RangeError);
    expect(() => a.allocAt(-1)).toThrow(RangeError);
    expect(() => a.allocAt(Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(() => a.countInRange(3, 2)).toThrow(RangeError);
    expect(a.size).toBe(0);
    expect(a.nodeCount).toBe(0);
  });

  it('handles IDs next to 0xFFFF_FFFE and never hands out 0xFFFF_FFFF', () => {
    const a = new IdAllocator();
    const got = allocN(a, 16, 0xffff_fff0, MAX);
    expect(got.slice(0, 15)).toEqual(Array.from({ length: 15 }, (_, i) => 0xffff_fff0 + i));
    expect(got[15]).toBe(-1);
    expect(a.alloc(MAX, MAX)).toBe(-1);
    expect(a.allocAt(MAX)).toBe(false);
    expect(a.has(MAX)).toBe(true);
    expect(a.has(0xffff_ffff)).toBe(false);
    expect(a.alloc(0xffff_f000, MAX)).toBe(0xffff_f000);
    expect(a.countInRange(0, MAX)).toBe(16);
    expect(a.free(MAX)).toBe(true);
    expect(a.alloc(0xffff_fff0, MAX)).toBe(MAX);
  });

  it('crosses leaf boundaries (1023/1024/1025) and level boundaries', () => {
    const a = new IdAllocator();
    for (const id of [1023, 1024, 1025]) expect(a.allocAt(id)).toBe(true);
    expect(a.alloc(1023, 2000)).toBe(1026);
    expect(a.alloc(1000, 2000)).toBe(1000);
    a.clear();
    // Fill the first leaf exactly: the next ID comes from the second leaf.
    expect(allocN(a, 1024, 0, MAX).at(-1)).toBe(1023);
    expect(a.alloc(0, MAX)).toBe(1024);
    expect(a.free(1023)).toBe(true);
    expect(a.alloc(0, MAX)).toBe(1023);
    expect(a.alloc(0, MAX)).toBe(1025);
    for (const b of [2 ** 15, 2 ** 20, 2 ** 25, 2 ** 30, 2 ** 31]) {
      expect(a.allocAt(b - 1)).toBe(true);
      expect(a.alloc(b - 1, MAX)).toBe(b);
      expect(a.alloc(b - 1, MAX)).toBe(b + 1);
      expect(a.has(b)).toBe(true);
      expect(a.countInRange(b - 1, b + 1)).toBe(3);
    }
  });

  it('skips full subtrees: the whole 2^20 space full, then one hole', () => {
    const a = new IdAllocator();
    const n = 2 ** 20;
    for (let i = 0; i < n; i++) if (a.alloc(0, n - 1) !== i) throw new Error(`alloc #${i} wrong`);
    expect(a.alloc(0, n - 1)).toBe(-1);
    expect(a.alloc(12_345, n - 1)).toBe(-1);
    expect(a.countInRange(0, MAX)).toBe(n);
    expect(a.countInRange(1000, 5000)).toBe(4001);
    expect(a.alloc(0, MAX)).toBe(n);
    expect(a.free(777_777)).toBe(true);
    expect(a.free(3)).toBe(true);
    expect(a.alloc(4, n - 1)).toBe(777_777);
    expect(a.alloc(0, n - 1)).toBe(3);
    expect(a.alloc(0, n - 1)).toBe(-1);
  });

  it('counts allocated IDs in a range', () => {
    const a = new IdAllocator();
    for (const id of [0, 31, 32, 1023, 1024, 50_000, 2 ** 31, MAX]) a.allocAt(id);
    expect(a.countInRange(0, MAX)).toBe(8);
    expect(a.countInRange(0, 0)).toBe(1);
    expect(a.countInRange(1, 30)).toBe(0);
    expect(a.countInRange(31, 32)).toBe(2);
    expect(a.countInRange(32, 1024)).toBe(3);
    expect(a.countInRange(1025, 2 ** 31)).toBe(2);
    expect(a.countInRange(2 ** 31 + 1, MAX)).toBe(1);
    expect(new IdAllocator().countInRange(0, MAX)).toBe(0);
  });

  it('clear() forgets everything', () => {
    const a = new IdAllocator({ cyclic: true });
    allocN(a, 10, 0, 100);
    a.allocAt(0xabcd_ef01);
    a.clear();
    expect(a.size).toBe(0);
    expect(a.nodeCount).toBe(0);
    expect(a.cursor).toBe(0);
    expect([...a.ids()]).toEqual([]);
    expect(a.alloc(0, 100)).toBe(0);
  });
});

describe('IdAllocator: cyclic (xa_alloc_cyclic)', () => {
  it('continues after the last ID and wraps to min', () => {
    const a = new IdAllocator({ cyclic: true });
    expect(allocN(a, 5, 1, 5)).toEqual([1, 2, 3, 4, 5]);
    expect(a.cursor).toBe(6);
    a.free(2);
    a.free(4);
    // next = 6 > max: the search restarts at min and finds 2; then continues from 3.
    expect(a.alloc(1, 5)).toBe(2);
    expect(a.cursor).toBe(3);
    expect(a.alloc(1, 5)).toBe(4);
    expect(a.alloc(1, 5)).toBe(-1);
    expect(a.cursor).toBe(5);
  });

  it('does not reuse a freed ID before wrapping', () => {
    const a = new IdAllocator({ cyclic: true });
    expect(allocN(a, 3, 0, 9)).toEqual([0, 1, 2]);
    a.free(0);
    a.free(1);
    expect(allocN(a, 8, 0, 9)).toEqual([3, 4, 5, 6, 7, 8, 9, 0]);
    expect(a.alloc(0, 9)).toBe(1);
    expect(a.alloc(0, 9)).toBe(-1);
  });

  it('starts at min when the cursor is below it, and allocAt/free leave the cursor alone', () => {
    const a = new IdAllocator({ cyclic: true });
    expect(a.alloc(10, 20)).toBe(10);
    expect(a.alloc(0, 20)).toBe(11);
    a.allocAt(12);
    a.allocAt(500);
    a.free(11);
    expect(a.cursor).toBe(12);
    expect(a.alloc(0, 20)).toBe(13);
    expect(a.alloc(100, 200)).toBe(100);
    expect(a.alloc(0, 200)).toBe(101);
  });

  it('wraps after handing out 0xFFFF_FFFE', () => {
    const a = new IdAllocator({ cyclic: true });
    expect(a.alloc(MAX, MAX)).toBe(MAX);
    expect(a.cursor).toBe(0xffff_ffff);
    expect(a.alloc(0, MAX)).toBe(0);
    expect(a.alloc(0xffff_fff0, MAX)).toBe(0xffff_fff0);
    expect(a.alloc(0, MAX)).toBe(0xffff_fff1);
  });

  it('a fully taken range returns -1 without moving the cursor', () => {
    const a = new IdAllocator({ cyclic: true });
    allocN(a, 4, 0, 3);
    a.alloc(10, 10);
    expect(a.cursor).toBe(11);
    expect(a.alloc(0, 3)).toBe(-1);
    expect(a.cursor).toBe(11);
  });
});

describe('IdAllocator: memory follows allocated IDs', () => {
  it('one ID high up costs a handful of nodes', () => {
    const a = new IdAllocator();
    a.allocAt(0xffff_0000);
    expect(a.nodeCount).toBeLessThanOrEqual(6);
    a.allocAt(0);
    expect(a.nodeCount).toBeLessThanOrEqual(11);
    a.free(0xffff_0000);
    // The tree shrinks back to a single leaf.
    expect(a.nodeCount).toBe(1);
    a.free(0);
    expect(a.nodeCount).toBe(0);
  });

  it('1000 scattered IDs over the 32-bit space: a few thousand nodes, none after freeing', () => {
    const rng = new Prng(7);
    const a = new IdAllocator();
    const ids: number[] = [];
    while (ids.length < 1000) {
      const id = rng.nextInt(MAX + 1);
      if (a.allocAt(id)) ids.push(id);
    }
    // root + 4 + at most 128 + 3 per ID below level 3.
    expect(a.nodeCount).toBeLessThanOrEqual(1 + 4 + 128 + 3 * 1000);
    expect([...a.ids()]).toEqual([...ids].sort((x, y) => x - y));
    rng.shuffle(ids);
    for (const id of ids) expect(a.free(id)).toBe(true);
    expect(a.size).toBe(0);
    expect(a.nodeCount).toBe(0);
  });

  it('a dense block costs one leaf per 1024 IDs plus its ancestors', () => {
    const a = new IdAllocator();
    for (let i = 0; i < 65_536; i++) a.alloc(0, MAX);
    // 64 leaves + 2 level-1 nodes + 1 level-2 root.
    expect(a.nodeCount).toBe(67);
    for (let i = 0; i < 65_536; i++) a.free(i);
    expect(a.nodeCount).toBe(0);
  });
});

describe('IdAllocator: against a naive model', () => {
  // Regions around interesting boundaries; each operation picks one and an offset inside it.
  const BASES = [0, 1000, 2 ** 15 - 40, 2 ** 20 - 100, 2 ** 31 - 30, MAX - 2100];
  const region = fc.nat({ max: BASES.length });
  const op = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant('alloc' as const),
        region,
        off: fc.nat({ max: 2100 }),
        width: fc.oneof(fc.nat({ max: 8 }), fc.nat({ max: 300 }), fc.nat({ max: 2100 })),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('allocAt' as const), region, off: fc.nat({ max: 2100 }) }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('free' as const), region, off: fc.nat({ max: 2100 }) }),
    },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('freeLive' as const), pick: fc.nat() }) },
  );

  for (const cyclic of [false, true]) {
    it(`agrees on every result over >= 10,000 random operations (${cyclic ? 'cyclic' : 'lowest free'})`, () => {
      let total = 0;
      fc.assert(
        fc.property(fc.array(op, { minLength: 400, maxLength: 600 }), fc.nat(), (ops, seed) => {
          const a = new IdAllocator({ cyclic });
          const m = new NaiveAllocator(cyclic);
          // The last region is a random place anywhere in the space.
          const anywhere = new Prng(seed).nextInt(MAX - 5000);
          const at = (r: number, off: number): number => Math.min((BASES[r] ?? anywhere) + off, MAX);
          for (const o of ops) {
            total++;
            if (o.kind === 'alloc') {
              const min = at(o.region, o.off);
              const max = Math.min(min + o.width, MAX);
              expect(a.alloc(min, max)).toBe(m.alloc(min, max));
              expect(a.cursor).toBe(cyclic ? m.cursor : 0);
            } else if (o.kind === 'allocAt') {
              const id = at(o.region, o.off);
              expect(a.allocAt(id)).toBe(m.allocAt(id));
            } else if (o.kind === 'free') {
              const id = at(o.region, o.off);
              expect(a.free(id)).toBe(m.free(id));
            } else {
              const live = [...m.set];
              const id = live.length === 0 ? 0 : live[o.pick % live.length]!;
              expect(a.free(id)).toBe(m.free(id));
            }
            expect(a.size).toBe(m.set.size);
          }
          expect([...a.ids()]).toEqual(m.sorted());
          for (const r of [0, 1, 2, 3, 4, 5, 6]) {
            const lo = at(r, 0);
            const hi = Math.min(lo + 2500, MAX);
            expect(a.countInRange(lo, hi)).toBe(m.count(lo, hi));
          }
          for (const id of m.set) expect(a.has(id)).toBe(true);
          for (const id of m.sorted()) a.free(id);
          expect(a.nodeCount).toBe(0);
        }),
        { numRuns: 25, seed: cyclic ? 4242 : 2424 },
      );
      expect(total).toBeGreaterThanOrEqual(10_000);
    });
  }
});
