/**
 * Bit and bit-field helpers on 64-bit (`bigint`) and 32-bit (`number`) words, after
 * include/linux/bits.h, include/linux/bitfield.h, include/linux/align.h and include/linux/overflow.h.
 *
 * Hardware models keep descriptors as pairs of 32-bit halves in typed arrays; the `u64*` helpers
 * read and write fields that may straddle the two halves without going through `bigint`.
 */

/** 2^64 - 1, the largest `u64`. */
export const U64_MAX = 0xffff_ffff_ffff_ffffn;
/** 2^32 - 1, the largest `u32`. */
export const U32_MAX = 0xffff_ffff;

function checkBitRange(h: number, l: number, width: number): void {
  if (!Number.isInteger(h) || !Number.isInteger(l) || l < 0 || h < l || h >= width) {
    throw new RangeError(`bit range [${h}:${l}] is not within a ${width}-bit word`);
  }
}

/**
 * A `u64` with only bit `n` set (`BIT_ULL`).
 * @param n - bit number, 0..63
 * @throws RangeError if `n` is outside 0..63
 */
export function BIT_ULL(n: number): bigint {
  checkBitRange(n, n, 64);
  return 1n << BigInt(n);
}

/**
 * A `u32` with only bit `n` set (`BIT`), as an unsigned number.
 * @param n - bit number, 0..31
 * @throws RangeError if `n` is outside 0..31
 */
export function BIT(n: number): number {
  checkBitRange(n, n, 32);
  return 2 ** n;
}

/**
 * A `u64` mask with bits `h` down to `l` set, inclusive (`GENMASK_ULL(h, l)`).
 * @param h - high bit, `l`..63
 * @param l - low bit, 0..`h`
 * @throws RangeError if the range is empty or leaves the word
 */
export function GENMASK_ULL(h: number, l: number): bigint {
  checkBitRange(h, l, 64);
  return ((1n << BigInt(h - l + 1)) - 1n) << BigInt(l);
}

/**
 * A `u32` mask with bits `h` down to `l` set, inclusive (`GENMASK(h, l)`), as an unsigned number.
 * @param h - high bit, `l`..31
 * @param l - low bit, 0..`h`
 * @throws RangeError if the range is empty or leaves the word
 */
export function GENMASK(h: number, l: number): number {
  checkBitRange(h, l, 32);
  return (2 ** (h - l + 1) - 1) * 2 ** l;
}

function lowestSetBit(mask: bigint): bigint {
  let shift = 0n;
  while (((mask >> shift) & 1n) === 0n) shift++;
  return shift;
}

function checkMask64(mask: bigint): void {
  if (mask <= 0n || mask > U64_MAX) throw new RangeError(`mask ${mask} is not a non-zero u64`);
}

/**
 * Extract a field from a `u64` (`FIELD_GET`): `(value & mask) >> ffs(mask)`.
 * @param mask - the field's contiguous, non-zero mask, for example `GENMASK_ULL(51, 12)`
 * @param value - the word
 * @returns the field value, shifted down to bit 0
 * @throws RangeError for a zero or over-wide mask
 */
export function FIELD_GET(mask: bigint, value: bigint): bigint {
  checkMask64(mask);
  return (value & mask) >> lowestSetBit(mask);
}

/**
 * Place a value into a `u64` field (`FIELD_PREP`): `(value << ffs(mask)) & mask`.
 * @remarks As in Linux, bits of `value` that do not fit the field are dropped; use
 * {@link FIELD_FIT} first where that would be a bug.
 * @param mask - the field's contiguous, non-zero mask
 * @param value - the field value (unshifted)
 * @returns the word holding only this field
 * @throws RangeError for a zero or over-wide mask
 */
export function FIELD_PREP(mask: bigint, value: bigint): bigint {
  checkMask64(mask);
  return (value << lowestSetBit(mask)) & mask;
}

/**
 * Whether `value` fits the field `mask` without losing bits (`FIELD_FIT`).
 * @param mask - the field's contiguous, non-zero mask
 * @param value - the field value (unshifted, non-negative)
 */
export function FIELD_FIT(mask: bigint, value: bigint): boolean {
  checkMask64(mask);
  return value >= 0n && ((value << lowestSetBit(mask)) & ~mask) === 0n;
}

/**
 * Extract a field from a `u32` (`FIELD_GET` on a 32-bit register).
 * @param mask - the field's non-zero mask, for example `GENMASK(7, 4)`
 * @param value - the register value
 * @returns the field value shifted down to bit 0, unsigned
 */
export function FIELD_GET32(mask: number, value: number): number {
  const shift = 31 - Math.clz32(mask & -mask);
  return ((value & mask) >>> shift) >>> 0;
}

/**
 * Place a value into a `u32` field (`FIELD_PREP` on a 32-bit register); excess bits are dropped.
 * @param mask - the field's non-zero mask
 * @param value - the field value (unshifted)
 * @returns the register value holding only this field, unsigned
 */
export function FIELD_PREP32(mask: number, value: number): number {
  const shift = 31 - Math.clz32(mask & -mask);
  return ((value << shift) & mask) >>> 0;
}

/**
 * Read bits `h..l` (inclusive, of the 64-bit word `hi:lo`) as a number.
 * @param lo - bits 31..0 of the word, unsigned
 * @param hi - bits 63..32 of the word, unsigned
 * @param h - high bit of the field, 0..63
 * @param l - low bit of the field; the field is at most 53 bits wide
 * @returns the field value shifted down to bit 0
 * @throws RangeError for a range that leaves the word or is wider than 53 bits
 */
export function u64FieldGet(lo: number, hi: number, h: number, l: number): number {
  checkBitRange(h, l, 64);
  const width = h - l + 1;
  if (width > 53) throw new RangeError(`field [${h}:${l}] is wider than 53 bits`);
  // Take the field out of each half separately and recombine arithmetically.
  let value = 0;
  if (h >= 32) {
    const hl = l > 32 ? l - 32 : 0;
    const hiPart = Math.floor((hi >>> 0) / 2 ** hl) % 2 ** (h - 32 - hl + 1);
    value = hiPart * 2 ** (l >= 32 ? 0 : 32 - l);
  }
  if (l < 32) {
    const lh = h < 32 ? h : 31;
    value += Math.floor((lo >>> 0) / 2 ** l) % 2 ** (lh - l + 1);
  }
  return value;
}

/**
 * Write bits `h..l` of the 64-bit word held as two halves at `words[index]` (bits 31..0) and
 * `words[index + 1]` (bits 63..32), leaving the other bits as they were.
 * @param words - the descriptor memory, as 32-bit little-endian halves
 * @param index - index of the low half
 * @param h - high bit of the field, 0..63
 * @param l - low bit of the field; the field is at most 53 bits wide
 * @param value - the field value, an unsigned integer below 2^(h-l+1)
 * @throws RangeError for a bad range or a value that does not fit
 */
export function u64FieldSet(words: Uint32Array, index: number, h: number, l: number, value: number): void {
  checkBitRange(h, l, 64);
  const width = h - l + 1;
  if (width > 53) throw new RangeError(`field [${h}:${l}] is wider than 53 bits`);
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** width) {
    throw new RangeError(`value ${value} does not fit the ${width}-bit field [${h}:${l}]`);
  }
  if (l < 32) {
    const lh = h < 32 ? h : 31;
    const bits = lh - l + 1;
    const mask = GENMASK(lh, l);
    const part = value % 2 ** bits;
    words[index] = ((words[index] ?? 0) & ~mask) | (part * 2 ** l);
  }
  if (h >= 32) {
    const hl = l > 32 ? l - 32 : 0;
    const mask = GENMASK(h - 32, hl);
    const part = Math.floor(value / 2 ** (l >= 32 ? 0 : 32 - l));
    words[index + 1] = ((words[index + 1] ?? 0) & ~mask) | (part * 2 ** hl);
  }
}

/**
 * Join two 32-bit halves into a `u64`.
 * @param lo - bits 31..0
 * @param hi - bits 63..32
 */
export function u64FromHalves(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/**
 * Bits 31..0 of a `u64`, as an unsigned number.
 * @param value - a u64
 */
export function u64Lo(value: bigint): number {
  return Number(value & 0xffff_ffffn);
}

/**
 * Bits 63..32 of a `u64`, as an unsigned number.
 * @param value - a u64
 */
export function u64Hi(value: bigint): number {
  return Number((value >> 32n) & 0xffff_ffffn);
}

/**
 * `a + b` on `u64`, or `undefined` if the sum wraps (`check_add_overflow` on u64 operands).
 * @param a - a u64
 * @param b - a u64
 * @returns the sum, or `undefined` when it exceeds {@link U64_MAX}
 */
export function u64CheckedAdd(a: bigint, b: bigint): bigint | undefined {
  const sum = a + b;
  return sum > U64_MAX ? undefined : sum;
}

/**
 * Round `x` up to a multiple of the power of two `a` (`ALIGN`).
 * @param x - the value (bigint or number; numbers must be safe integers)
 * @param a - a power of two of the same type
 * @throws RangeError if `a` is not a power of two
 */
export function ALIGN<T extends number | bigint>(x: T, a: T): T {
  return alignImpl(x, a, true);
}

/**
 * Round `x` down to a multiple of the power of two `a` (`ALIGN_DOWN`).
 * @param x - the value (bigint or number)
 * @param a - a power of two of the same type
 * @throws RangeError if `a` is not a power of two
 */
export function ALIGN_DOWN<T extends number | bigint>(x: T, a: T): T {
  return alignImpl(x, a, false);
}

/**
 * Whether `x` is a multiple of the power of two `a` (`IS_ALIGNED`).
 * @param x - the value (bigint or number)
 * @param a - a power of two of the same type
 * @throws RangeError if `a` is not a power of two
 */
export function IS_ALIGNED<T extends number | bigint>(x: T, a: T): boolean {
  return alignImpl(x, a, false) === x;
}

function alignImpl<T extends number | bigint>(x: T, a: T, up: boolean): T {
  if (typeof x === 'bigint' && typeof a === 'bigint') {
    if (a <= 0n || (a & (a - 1n)) !== 0n) throw new RangeError(`${a} is not a power of two`);
    const down = x - (x & (a - 1n));
    return (up && down !== x ? down + a : down) as T;
  }
  const xn = x as number;
  const an = a as number;
  if (!Number.isInteger(an) || an <= 0 || 2 ** Math.round(Math.log2(an)) !== an) {
    throw new RangeError(`${an} is not a power of two`);
  }
  const down = Math.floor(xn / an) * an;
  return (up && down !== xn ? down + an : down) as T;
}

/**
 * Whether `n` is a power of two (`is_power_of_2`).
 * @param n - a non-negative integer (bigint or number)
 */
export function isPowerOf2(n: number | bigint): boolean {
  if (typeof n === 'bigint') return n > 0n && (n & (n - 1n)) === 0n;
  return Number.isInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}
