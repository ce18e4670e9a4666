/**
 * Value generators of the uAPI fuzzer: integers biased toward the values that break argument
 * checks (0, 1, maxima, sign bits, page boundaries, overflowing ranges), and the byte-level
 * writer of argument structs.
 */

import type { Prng, UapiFieldDef, UapiScalarType } from '@iommu-ts/base';

/** `U32_MAX`. */
export const U32_MAX = 0xffff_ffff;
/** `U64_MAX` as a bigint. */
export const U64_MAX = (1n << 64n) - 1n;
/** The CPU page size of the machines the fuzzer runs on, in bytes. */
export const PAGE = 4096n;

const U32_EDGES = [0, 1, 2, 3, 4, 7, 8, 16, 0xff, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, U32_MAX];
const U64_EDGES = [
  0n,
  1n,
  0x7fff_ffffn,
  0xffff_ffffn,
  1n << 32n,
  1n << 48n,
  1n << 63n,
  U64_MAX - 1n,
  U64_MAX,
];

/**
 * A seeded source of fuzz values over a {@link Prng}.
 */
export class FuzzValues {
  /** The generator everything is drawn from. */
  readonly rng: Prng;

  /**
   * @param rng - the seeded generator (owned by the run)
   */
  constructor(rng: Prng) {
    this.rng = rng;
  }

  /**
   * A uniform integer.
   * @param n - exclusive bound, at least 1
   * @returns an integer in `[0, n)`
   */
  int(n: number): number {
    return this.rng.nextInt(n);
  }

  /**
   * A biased coin.
   * @param p - probability of `true`, in `[0, 1]`
   * @returns the outcome
   */
  chance(p: number): boolean {
    return this.rng.nextFloat() < p;
  }

  /**
   * One element of a non-empty list.
   * @param list - the choices
   * @returns a uniformly chosen element
   */
  pick<T>(list: readonly T[]): T {
    return list[this.rng.nextInt(list.length)] as T;
  }

  /** @returns an arbitrary `__u32`: an edge value half of the time, else uniform */
  u32(): number {
    return this.chance(0.5) ? this.pick(U32_EDGES) : this.rng.nextInt(0x1_0000_0000);
  }

  /** @returns an arbitrary `__u64`: an edge value half of the time, else 64 random bits */
  u64(): bigint {
    if (this.chance(0.5)) return this.pick(U64_EDGES);
    return (BigInt(this.rng.nextInt(0x1_0000_0000)) << 32n) | BigInt(this.rng.nextInt(0x1_0000_0000));
  }

  /**
   * A flags word: 0, one known bit, all known bits, or unknown bits.
   * @param known - how many low bits are defined
   * @returns the flags
   */
  flags(known: number): number {
    const all = known >= 32 ? U32_MAX : (1 << known) - 1;
    switch (this.int(6)) {
      case 0:
        return 0;
      case 1:
      case 2:
        return known > 0 ? (1 << this.int(known)) >>> 0 : 0;
      case 3:
        return all >>> 0;
      case 4:
        return (this.int(all + 1) | 0) >>> 0;
      default:
        return (1 << this.int(32)) >>> 0;
    }
  }

  /** @returns a small count (0, 1, 2, a few, or huge) */
  count(): number {
    return this.pick([0, 0, 1, 1, 2, 3, 4, 8, 16, 256, 0x8000_0000, U32_MAX]);
  }

  /**
   * A byte length: whole pages of a small buffer, unaligned, zero, or huge and overflowing.
   * @param max - bytes of the largest valid buffer
   * @returns the length
   */
  length(max: bigint): bigint {
    switch (this.int(10)) {
      case 0:
        return 0n;
      case 1:
        return this.pick([1n, 2048n, PAGE - 1n, PAGE + 1n, PAGE + 2048n]);
      case 2:
        return this.pick([max, max + PAGE, 1n << 40n, U64_MAX, U64_MAX - PAGE + 1n, 1n << 63n]);
      default:
        return PAGE * BigInt(1 + this.int(Math.max(1, Number(max / PAGE / 2n))));
    }
  }

  /**
   * An I/O virtual address: 0, page-aligned low or in the mock aperture, unaligned, at the top of
   * the 64-bit space, or one seen before.
   * @param seen - IOVAs that succeeded recently
   * @returns the address
   */
  iova(seen: readonly bigint[]): bigint {
    switch (this.int(10)) {
      case 0:
        return 0n;
      case 1:
        return this.pick([1n, 2048n, (1n << 24n) + 1n, (1n << 24n) + 2048n]);
      case 2:
        return this.pick([U64_MAX, U64_MAX - PAGE + 1n, 1n << 63n, 1n << 48n, 1n << 32n, 0xffff_f000n]);
      case 3:
      case 4:
        if (seen.length > 0) return this.pick(seen) + (this.chance(0.3) ? PAGE * BigInt(this.int(8)) : 0n);
        return PAGE * BigInt(this.int(64));
      case 5:
      case 6:
        return (1n << 24n) + PAGE * BigInt(this.int(256));
      default:
        return PAGE * BigInt(this.int(4096));
    }
  }
}

/**
 * Write one scalar at `offset` of `bytes`, little-endian, truncating the value to the type's width.
 * @param view - a view over the struct bytes
 * @param offset - byte offset
 * @param type - the scalar type
 * @param value - the value (a number or bigint, any range)
 */
export function writeScalar(
  view: DataView,
  offset: number,
  type: UapiScalarType,
  value: number | bigint,
): void {
  const big = typeof value === 'bigint' ? value : BigInt(Math.trunc(value));
  switch (type) {
    case 'u8':
    case 's8':
      view.setUint8(offset, Number(BigInt.asUintN(8, big)));
      return;
    case 'u16':
    case 's16':
      view.setUint16(offset, Number(BigInt.asUintN(16, big)), true);
      return;
    case 'u32':
    case 's32':
      view.setUint32(offset, Number(BigInt.asUintN(32, big)), true);
      return;
    default:
      view.setBigUint64(offset, BigInt.asUintN(64, big), true);
  }
}

/** The width in bytes of a scalar type. */
export function scalarWidth(type: UapiScalarType): number {
  return type === 'u8' || type === 's8'
    ? 1
    : type === 'u16' || type === 's16'
      ? 2
      : type === 'u32' || type === 's32'
        ? 4
        : 8;
}

/**
 * Fill every scalar field of a struct (recursing into nested structs, every array element) from a
 * per-field generator.
 * @param view - view over the struct bytes
 * @param base - offset of the struct in the view
 * @param fields - the struct's fields
 * @param value - the generator: field name and scalar type to a value
 */
export function fillFields(
  view: DataView,
  base: number,
  fields: readonly UapiFieldDef[],
  value: (name: string, type: UapiScalarType) => number | bigint,
): void {
  for (const f of fields) {
    const count = f.count ?? 1;
    if (typeof f.type === 'string') {
      const w = scalarWidth(f.type);
      for (let i = 0; i < count; i++)
        writeScalar(view, base + f.offset + i * w, f.type, value(f.name, f.type));
    } else {
      for (let i = 0; i < count; i++)
        fillFields(view, base + f.offset + i * f.type.size, f.type.fields, value);
    }
  }
}

/**
 * Hex of argument bytes for a problem report.
 * @param bytes - the argument
 * @returns lower-case hex, at most 160 bytes
 */
export function hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes.subarray(0, 160)) s += b.toString(16).padStart(2, '0');
  return bytes.length > 160 ? `${s}…` : s;
}
