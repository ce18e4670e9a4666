/**
 * A small seeded generator (mulberry32) for the bytes a scenario tags memory with: the scenario's
 * choices come from fast-check, the tags only have to differ from what memory held.
 */

/** Seeded byte source. */
export class Rand {
  private state: number;

  /**
   * @param seed - any integer
   */
  constructor(seed: number) {
    this.state = (seed ^ 0x9e3779b9) >>> 0;
  }

  /** Next 32-bit value. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /**
   * Random bytes, none of them zero (so a tag never matches fresh zeroed memory).
   * @param n - how many
   */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = 1 + (this.next() % 255);
    return out;
  }
}
