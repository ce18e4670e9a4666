import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Prng } from './prng.js';

/** An independent bigint reference of splitmix64-seeded xoshiro128**. */
function referenceXoshiro(seed: bigint, count: number): number[] {
  const M64 = (1n << 64n) - 1n;
  const M32 = 0xffffffffn;
  let x = BigInt.asUintN(64, seed);
  const sm = (): bigint => {
    x = (x + 0x9e3779b97f4a7c15n) & M64;
    let z = x;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    return z ^ (z >> 31n);
  };
  const a = sm();
  const b = sm();
  const s = [a & M32, a >> 32n, b & M32, b >> 32n];
  const rotl = (v: bigint, k: bigint): bigint => ((v << k) | (v >> (32n - k))) & M32;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const [s0, s1, s2, s3] = s as [bigint, bigint, bigint, bigint];
    out.push(Number((rotl((s1 * 5n) & M32, 7n) * 9n) & M32));
    const t = (s1 << 9n) & M32;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    s[1] = s1 ^ n2;
    s[0] = s0 ^ n3;
    s[2] = n2 ^ t;
    s[3] = rotl(n3, 11n);
  }
  return out;
}

describe('Prng', () => {
  it('matches an independent bigint implementation of xoshiro128** over splitmix64', () => {
    for (const seed of [0n, 1n, 42n, 0xdeadbeefcafebaben, (1n << 64n) - 1n]) {
      const rng = new Prng(seed);
      const got = Array.from({ length: 50 }, () => rng.nextU32());
      expect(got).toEqual(referenceXoshiro(seed, 50));
    }
  });

  it('gives the same sequence for the same seed and for equal number/bigint seeds', () => {
    const a = new Prng(12345);
    const b = new Prng(12345n);
    const seqA = Array.from({ length: 20 }, () => a.nextU32());
    const seqB = Array.from({ length: 20 }, () => b.nextU32());
    expect(seqA).toEqual(seqB);
    expect(new Prng(-1).nextU32()).toBe(new Prng((1n << 64n) - 1n).nextU32());
  });

  it('gives different sequences for different seeds', () => {
    const first = new Set<number>();
    for (let seed = 0; seed < 100; seed++) first.add(new Prng(seed).nextU32());
    expect(first.size).toBe(100);
  });

  it('nextInt stays in range and hits every value', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 1000 }), (seed, bound) => {
        const rng = new Prng(seed);
        for (let i = 0; i < 20; i++) {
          const r = rng.nextInt(bound);
          if (!Number.isInteger(r) || r < 0 || r >= bound) return false;
        }
        return true;
      }),
    );
    const rng = new Prng(7);
    const counts = [0, 0, 0, 0, 0, 0];
    for (let i = 0; i < 60_000; i++) counts[rng.nextInt(6)]!++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
  });

  it('rejects bad bounds and seeds', () => {
    const rng = new Prng(1);
    expect(() => rng.nextInt(0)).toThrow(RangeError);
    expect(() => rng.nextInt(1.5)).toThrow(RangeError);
    expect(() => rng.nextInt(2 ** 32 + 1)).toThrow(RangeError);
    expect(rng.nextInt(1)).toBe(0);
    expect(() => new Prng(0.5)).toThrow(RangeError);
    expect(() => rng.pick([])).toThrow(RangeError);
  });

  it('nextFloat is in [0, 1), shuffle permutes, fork is reproducible', () => {
    const rng = new Prng(3);
    for (let i = 0; i < 1000; i++) {
      const f = rng.nextFloat();
      expect(f >= 0 && f < 1).toBe(true);
    }
    const items = Array.from({ length: 20 }, (_, i) => i);
    const shuffled = new Prng(9).shuffle([...items]);
    expect([...shuffled].sort((a, b) => a - b)).toEqual(items);
    expect(shuffled).not.toEqual(items);
    expect(new Prng(9).shuffle([...items])).toEqual(shuffled);
    expect(new Prng(5).fork().nextU64()).toBe(new Prng(5).fork().nextU64());
    expect(typeof new Prng(5).nextBool()).toBe('boolean');
    expect([1, 2, 3]).toContain(new Prng(5).pick([1, 2, 3]));
  });
});
