import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ALIGN,
  ALIGN_DOWN,
  BIT,
  BIT_ULL,
  FIELD_FIT,
  FIELD_GET,
  FIELD_GET32,
  FIELD_PREP,
  FIELD_PREP32,
  GENMASK,
  GENMASK_ULL,
  IS_ALIGNED,
  isPowerOf2,
  U64_MAX,
  u64CheckedAdd,
  u64FieldGet,
  u64FieldSet,
  u64FromHalves,
  u64Hi,
  u64Lo,
} from './bits.js';

const u64 = fc.bigInt({ min: 0n, max: U64_MAX });
/** A field [h:l] of a 64-bit word at most 53 bits wide. */
const field53 = fc
  .integer({ min: 0, max: 63 })
  .chain((l) => fc.tuple(fc.integer({ min: l, max: Math.min(63, l + 52) }), fc.constant(l)));

/** Reference: the field through bigint arithmetic. */
const refGet = (word: bigint, h: number, l: number): bigint =>
  (word >> BigInt(l)) & ((1n << BigInt(h - l + 1)) - 1n);

describe('masks', () => {
  it('GENMASK and GENMASK_ULL set exactly bits h..l', () => {
    expect(GENMASK(31, 0)).toBe(0xffff_ffff);
    expect(GENMASK(7, 4)).toBe(0xf0);
    expect(GENMASK_ULL(63, 0)).toBe(U64_MAX);
    expect(GENMASK_ULL(51, 12)).toBe(0x000f_ffff_ffff_f000n);
    expect(BIT(31)).toBe(0x8000_0000);
    expect(BIT_ULL(63)).toBe(0x8000_0000_0000_0000n);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: 63 }), (a, b) => {
        const [h, l] = a >= b ? [a, b] : [b, a];
        let ref = 0n;
        for (let i = l; i <= h; i++) ref |= 1n << BigInt(i);
        expect(GENMASK_ULL(h, l)).toBe(ref);
        if (h < 32) expect(GENMASK(h, l)).toBe(Number(ref));
      }),
    );
  });

  it('rejects empty and out-of-word ranges', () => {
    expect(() => GENMASK(3, 4)).toThrow(RangeError);
    expect(() => GENMASK(32, 0)).toThrow(RangeError);
    expect(() => GENMASK_ULL(64, 0)).toThrow(RangeError);
    expect(() => BIT_ULL(-1)).toThrow(RangeError);
  });
});

describe('FIELD_GET / FIELD_PREP', () => {
  it('extract and place fields of u64 words like the bigint reference', () => {
    fc.assert(
      fc.property(field53, u64, ([h, l], word) => {
        const mask = GENMASK_ULL(h, l);
        const value = refGet(word, h, l);
        expect(FIELD_GET(mask, word)).toBe(value);
        expect(FIELD_PREP(mask, value)).toBe(word & mask);
        expect(FIELD_FIT(mask, value)).toBe(true);
        expect(FIELD_FIT(mask, value + (1n << BigInt(h - l + 1)))).toBe(false);
      }),
    );
  });

  it('drop excess bits in FIELD_PREP, as Linux does', () => {
    expect(FIELD_PREP(GENMASK_ULL(7, 4), 0x1fn)).toBe(0xf0n);
    expect(() => FIELD_GET(0n, 1n)).toThrow(RangeError);
  });

  it('work on 32-bit registers as unsigned numbers', () => {
    expect(FIELD_GET32(GENMASK(31, 28), 0xa000_0000)).toBe(0xa);
    expect(FIELD_PREP32(GENMASK(31, 28), 0xf)).toBe(0xf000_0000);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 31 }),
        fc.integer({ min: 0, max: 31 }),
        fc.nat(0xffff_ffff),
        (a, b, word) => {
          const [h, l] = a >= b ? [a, b] : [b, a];
          const mask = GENMASK(h, l);
          const value = Number(refGet(BigInt(word), h, l));
          expect(FIELD_GET32(mask, word)).toBe(value);
          expect(FIELD_PREP32(mask, value)).toBe(Number(BigInt(word) & BigInt(mask)));
        },
      ),
    );
  });
});

describe('u64 fields held as 32-bit halves', () => {
  it('u64FieldGet reads fields straddling the halves like the bigint reference', () => {
    expect(u64FieldGet(0xffff_f000, 0x000f_ffff, 51, 12)).toBe(2 ** 40 - 1);
    fc.assert(
      fc.property(field53, u64, ([h, l], word) => {
        expect(u64FieldGet(u64Lo(word), u64Hi(word), h, l)).toBe(Number(refGet(word, h, l)));
      }),
    );
  });

  it('u64FieldSet writes only the field and round-trips', () => {
    fc.assert(
      fc.property(field53, u64, u64, ([h, l], word, raw) => {
        const value = Number(raw % (1n << BigInt(h - l + 1)));
        const words = new Uint32Array([7, u64Lo(word), u64Hi(word), 9]);
        u64FieldSet(words, 1, h, l, value);
        const mask = GENMASK_ULL(h, l);
        const expected = (word & ~mask) | (BigInt(value) << BigInt(l));
        expect(u64FromHalves(words[1] ?? 0, words[2] ?? 0)).toBe(expected);
        expect([words[0], words[3]]).toEqual([7, 9]);
      }),
    );
  });

  it('u64FieldSet refuses a value that does not fit, leaving memory unchanged', () => {
    const words = new Uint32Array([0x1234, 0x5678]);
    expect(() => u64FieldSet(words, 0, 35, 28, 0x100)).toThrow(RangeError);
    expect(() => u64FieldSet(words, 0, 63, 0, 1)).toThrow(RangeError);
    expect([...words]).toEqual([0x1234, 0x5678]);
  });

  it('joins and splits halves', () => {
    fc.assert(fc.property(u64, (word) => u64FromHalves(u64Lo(word), u64Hi(word)) === word));
  });
});

describe('alignment and overflow', () => {
  it('ALIGN, ALIGN_DOWN and IS_ALIGNED agree with division, for bigint and number', () => {
    expect(ALIGN(0x1001n, 0x1000n)).toBe(0x2000n);
    expect(ALIGN_DOWN(0x1fffn, 0x1000n)).toBe(0x1000n);
    expect(ALIGN(4096, 4096)).toBe(4096);
    expect(IS_ALIGNED(0x20_0000, 0x20_0000)).toBe(true);
    expect(IS_ALIGNED(0x20_1000n, 0x20_0000n)).toBe(false);
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 1n << 62n }), fc.integer({ min: 0, max: 40 }), (x, shift) => {
        const a = 1n << BigInt(shift);
        expect(ALIGN_DOWN(x, a)).toBe((x / a) * a);
        expect(ALIGN(x, a)).toBe(((x + a - 1n) / a) * a);
        expect(IS_ALIGNED(x, a)).toBe(x % a === 0n);
        const xn = Number(x % (1n << 52n));
        const an = 2 ** shift;
        expect(ALIGN_DOWN(xn, an)).toBe(Math.floor(xn / an) * an);
      }),
    );
  });

  it('refuses alignments that are not powers of two', () => {
    expect(() => ALIGN(10n, 12n)).toThrow(RangeError);
    expect(() => ALIGN(10, 0)).toThrow(RangeError);
    expect(isPowerOf2(4096)).toBe(true);
    expect(isPowerOf2(0n)).toBe(false);
    expect(isPowerOf2(1n << 63n)).toBe(true);
  });

  it('u64CheckedAdd reports wrap-around at 2^64', () => {
    expect(u64CheckedAdd(U64_MAX - 1n, 1n)).toBe(U64_MAX);
    expect(u64CheckedAdd(U64_MAX, 1n)).toBeUndefined();
    expect(u64CheckedAdd(1n << 63n, 1n << 63n)).toBeUndefined();
  });
});
