/**
 * Seeded random numbers for workloads: splitmix32, so a run with the same `--seed` moves the same
 * bytes to the same addresses.
 */

/** A seeded generator. */
export class Rng {
  private state: number;

  /**
   * @param seed - any integer; the same seed gives the same sequence
   */
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** @returns the next 32-bit unsigned integer */
  nextU32(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  }

  /**
   * @param n - exclusive upper bound, 1 ≤ n ≤ 2^32
   * @returns an integer in [0, n)
   */
  int(n: number): number {
    return Math.floor((this.nextU32() / 2 ** 32) * n);
  }

  /**
   * Fill a buffer with random bytes.
   * @param out - the buffer
   * @returns `out`
   */
  fill(out: Uint8Array): Uint8Array {
    let i = 0;
    for (; i + 4 <= out.length; i += 4) {
      const v = this.nextU32();
      out[i] = v & 0xff;
      out[i + 1] = (v >>> 8) & 0xff;
      out[i + 2] = (v >>> 16) & 0xff;
      out[i + 3] = v >>> 24;
    }
    if (i < out.length) {
      let v = this.nextU32();
      for (; i < out.length; i++, v >>>= 8) out[i] = v & 0xff;
    }
    return out;
  }

  /**
   * @param n - length in bytes
   * @returns a new buffer of random bytes
   */
  bytes(n: number): Uint8Array {
    return this.fill(new Uint8Array(n));
  }

  /**
   * A generator derived from this one (for a sub-flow whose draws must not shift the parent's).
   * @param salt - distinguishes siblings
   * @returns the new generator
   */
  fork(salt: number): Rng {
    return new Rng((this.nextU32() ^ Math.imul(salt + 1, 0x27d4eb2d)) >>> 0);
  }
}
