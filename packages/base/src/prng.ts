/**
 * A small, fast, seedable pseudo-random generator for reproducible simulations.
 *
 * The generator is xoshiro128** (Blackman and Vigna), whose 128-bit state is filled from the seed by
 * splitmix64. It is not cryptographic; it exists so that a seed fully determines a run. The kernel
 * counterpart is lib/random32.c's `prandom` family, which serves the same "cheap, not secure" role.
 */

const MASK64 = 0xffff_ffff_ffff_ffffn;
const TWO_POW_32 = 0x1_0000_0000;

function rotl32(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** One splitmix64 step: advances `state` and returns the next 64-bit output. */
function splitmix64(state: { x: bigint }): bigint {
  state.x = (state.x + 0x9e37_79b9_7f4a_7c15n) & MASK64;
  let z = state.x;
  z = ((z ^ (z >> 30n)) * 0xbf58_476d_1ce4_e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d0_49bb_1331_11ebn) & MASK64;
  return z ^ (z >> 31n);
}

/**
 * Normalise a seed to an unsigned 64-bit value.
 * @throws RangeError if a number seed is not a safe integer
 */
function seedToU64(seed: number | bigint): bigint {
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed ${seed} is not a safe integer`);
    return BigInt.asUintN(64, BigInt(seed));
  }
  return BigInt.asUintN(64, seed);
}

/**
 * A seeded pseudo-random number generator (xoshiro128** seeded through splitmix64).
 *
 * @remarks
 * The same seed always yields the same sequence, on every platform. Two different seeds give
 * unrelated sequences. The {@link Scheduler} uses one to pick among ready tasks in seeded mode; tests
 * and hardware models can use their own instances for reproducible randomness (fault injection,
 * random addresses). Plays the role of lib/random32.c's `prandom_*` helpers: fast, not secure.
 *
 * @example
 * ```ts
 * const rng = new Prng(42);
 * const coin = rng.nextBool();
 * const index = rng.nextInt(10); // 0..9
 * ```
 */
export class Prng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  /**
   * @param seed - any integer; numbers must be safe integers, bigints are reduced modulo 2^64.
   *   Negative values are taken in two's complement, so `-1` and `2n ** 64n - 1n` are the same seed.
   * @throws RangeError if a number seed is not a safe integer
   */
  constructor(seed: number | bigint) {
    const state = { x: seedToU64(seed) };
    const a = splitmix64(state);
    const b = splitmix64(state);
    this.#s0 = Number(a & 0xffff_ffffn);
    this.#s1 = Number(a >> 32n);
    this.#s2 = Number(b & 0xffff_ffffn);
    this.#s3 = Number(b >> 32n);
    // xoshiro must not start from the all-zero state; splitmix64 makes this practically impossible.
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /**
   * The next 32 random bits.
   * @returns an unsigned integer in 0..2^32-1
   */
  nextU32(): number {
    const s0 = this.#s0;
    const s1 = this.#s1;
    const result = Math.imul(rotl32(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    let s2 = this.#s2 ^ s0;
    let s3 = this.#s3 ^ s1;
    this.#s1 = (s1 ^ s2) >>> 0;
    this.#s0 = (s0 ^ s3) >>> 0;
    s2 = (s2 ^ t) >>> 0;
    s3 = rotl32(s3 >>> 0, 11);
    this.#s2 = s2;
    this.#s3 = s3;
    return result;
  }

  /**
   * The next 64 random bits (two 32-bit draws, high half first).
   * @returns a bigint in 0..2^64-1
   */
  nextU64(): bigint {
    const hi = this.nextU32();
    const lo = this.nextU32();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /**
   * A uniformly distributed integer in `0..bound-1`, without modulo bias (rejection sampling).
   * @param bound - exclusive upper bound, an integer in 1..2^32
   * @returns an integer `r` with `0 <= r < bound`
   * @throws RangeError if `bound` is not an integer in 1..2^32
   */
  nextInt(bound: number): number {
    if (!Number.isInteger(bound) || bound < 1 || bound > TWO_POW_32) {
      throw new RangeError(`bound ${bound} is not an integer in 1..2^32`);
    }
    // Reject the top partial block so every residue is equally likely.
    const limit = TWO_POW_32 - (TWO_POW_32 % bound);
    for (;;) {
      const r = this.nextU32();
      if (r < limit) return r % bound;
    }
  }

  /**
   * A uniformly distributed float in `[0, 1)` with 53 random bits.
   * @returns a number `x` with `0 <= x < 1`
   */
  nextFloat(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 0x400_0000 + lo) / 2 ** 53;
  }

  /**
   * A fair coin flip.
   * @returns `true` or `false` with equal probability
   */
  nextBool(): boolean {
    return (this.nextU32() & 1) === 1;
  }

  /**
   * One element of `items`, chosen uniformly.
   * @param items - a non-empty array
   * @returns the chosen element
   * @throws RangeError if `items` is empty
   */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('cannot pick from an empty array');
    return items[this.nextInt(items.length)] as T;
  }

  /**
   * Shuffle `items` in place (Fisher-Yates), uniformly over all permutations.
   * @param items - the array or typed array to permute
   * @returns the same array, for chaining
   */
  shuffle<A extends { length: number; [index: number]: unknown }>(items: A): A {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = items[i];
      items[i] = items[j];
      items[j] = tmp;
    }
    return items;
  }

  /**
   * A new, independent generator seeded from this one's next 64 bits. Use it to give each component
   * of a simulation its own stream, so adding draws in one component does not shift the others.
   * @returns a fresh {@link Prng}
   */
  fork(): Prng {
    return new Prng(this.nextU64());
  }
}
