import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { errnoOf } from './testing.js';
import {
  checkArgsz,
  copyStructFromUser,
  copyStructToUser,
  defineUapiStruct,
  type UapiStruct,
} from './uapi-struct.js';

const range = defineUapiStruct({
  name: 'range',
  size: 8,
  fields: [
    { name: 'min', offset: 0, type: 'u32' },
    { name: 'max', offset: 4, type: 'u32' },
  ],
});

const allocReq = defineUapiStruct({
  name: 'ioasid_alloc_request',
  size: 16,
  fields: [
    { name: 'argsz', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'range', offset: 8, type: range },
  ],
});

/** iommu_ioas_iova_ranges: u64 fields, reserved u32. */
const iovaRanges = defineUapiStruct({
  name: 'iommu_ioas_iova_ranges',
  size: 32,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'ioas_id', offset: 4, type: 'u32' },
    { name: 'num_iovas', offset: 8, type: 'u32' },
    { name: '__reserved', offset: 12, type: 'u32' },
    { name: 'allowed_iovas', offset: 16, type: 'u64' },
    { name: 'out_iova_alignment', offset: 24, type: 'u64' },
  ],
});

/** Every scalar type, an array and a nested struct, with padding in between. */
const mixed = defineUapiStruct({
  name: 'mixed',
  size: 48,
  fields: [
    { name: 'a', offset: 0, type: 'u8' },
    { name: 'b', offset: 1, type: 's8' },
    { name: 'c', offset: 2, type: 'u16' },
    { name: 'd', offset: 4, type: 's16' },
    { name: 'e', offset: 8, type: 'u32' },
    { name: 'f', offset: 12, type: 's32' },
    { name: 'g', offset: 16, type: 'u64' },
    { name: 'h', offset: 24, type: 's64' },
    { name: 'arr', offset: 32, type: 'u16', count: 3 },
    { name: 'r', offset: 40, type: range },
  ],
});

const arbMixed = fc.record({
  a: fc.integer({ min: 0, max: 0xff }),
  b: fc.integer({ min: -0x80, max: 0x7f }),
  c: fc.integer({ min: 0, max: 0xffff }),
  d: fc.integer({ min: -0x8000, max: 0x7fff }),
  e: fc.integer({ min: 0, max: 0xffff_ffff }),
  f: fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff }),
  g: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  h: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  arr: fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 3, maxLength: 3 }),
  r: fc.record({
    min: fc.integer({ min: 0, max: 0xffff_ffff }),
    max: fc.integer({ min: 0, max: 0xffff_ffff }),
  }),
});

describe('defineUapiStruct', () => {
  it('infers the exact C shape', () => {
    expectTypeOf(allocReq.zero()).toEqualTypeOf<{
      argsz: number;
      flags: number;
      range: { min: number; max: number };
    }>();
    expectTypeOf(iovaRanges.zero().allowed_iovas).toEqualTypeOf<bigint>();
    expectTypeOf(mixed.zero().arr).toEqualTypeOf<number[]>();
    const typed: UapiStruct<{ min: number; max: number }> = range;
    expect(typed.size).toBe(8);
  });

  it('encodes at the exact offsets, little-endian', () => {
    const bytes = allocReq.encode({ argsz: 16, flags: 0, range: { min: 0x01020304, max: 0xa0b0c0d0 } });
    expect([...bytes]).toEqual([16, 0, 0, 0, 0, 0, 0, 0, 4, 3, 2, 1, 0xd0, 0xc0, 0xb0, 0xa0]);
    const r = iovaRanges.encode({
      size: 32,
      ioas_id: 7,
      num_iovas: 2,
      __reserved: 0,
      allowed_iovas: 0x1122334455667788n,
      out_iova_alignment: 0xffff_ffff_ffff_ffffn,
    });
    expect(r.length).toBe(32);
    expect(r[4]).toBe(7);
    expect([...r.subarray(16, 24)]).toEqual([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    expect([...r.subarray(24, 32)]).toEqual(Array(8).fill(0xff));
  });

  it('decodes at an offset into a larger buffer', () => {
    const buf = new Uint8Array(40).fill(0xee);
    allocReq.encode({ argsz: 16, flags: 2, range: { min: 5, max: 9 } }, buf, 20);
    expect(buf[19]).toBe(0xee);
    expect(buf[36]).toBe(0xee);
    expect(allocReq.decode(buf, 20)).toEqual({ argsz: 16, flags: 2, range: { min: 5, max: 9 } });
    expect(allocReq.decode(buf.subarray(20))).toEqual({ argsz: 16, flags: 2, range: { min: 5, max: 9 } });
  });

  it('zeroes padding on encode', () => {
    const buf = new Uint8Array(48).fill(0x5a);
    mixed.encode(mixed.zero(), buf);
    expect([...buf]).toEqual(Array(48).fill(0));
  });

  it('round-trips values and bytes (fast-check)', () => {
    fc.assert(
      fc.property(arbMixed, (v) => {
        const bytes = mixed.encode(v);
        expect(mixed.decode(bytes)).toEqual(v);
        expect(mixed.isValue(v)).toBe(true);
      }),
    );
    // bytes -> value -> bytes, with padding (5..7, 38..39, 48) forced to zero
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 48, maxLength: 48 }), (raw) => {
        for (const i of [6, 7, 38, 39]) raw[i] = 0;
        expect([...mixed.encode(mixed.decode(raw))]).toEqual([...raw]);
      }),
    );
  });

  it('offsetofend gives the end of a field', () => {
    expect(allocReq.offsetofend('flags')).toBe(8);
    expect(allocReq.offsetofend('range')).toBe(16);
    expect(mixed.offsetofend('arr')).toBe(38);
    expect(() => allocReq.offsetofend('nope' as 'flags')).toThrow(RangeError);
  });

  it('rejects malformed values without touching the buffer', () => {
    const buf = new Uint8Array(16).fill(1);
    const bad: unknown[] = [
      null,
      { argsz: 16, flags: 0 },
      { argsz: 16, flags: 0, range: { min: 1 } },
      { argsz: 16, flags: 0, range: null },
      { argsz: '16', flags: 0, range: { min: 1, max: 2 } },
    ];
    for (const v of bad) {
      expect(allocReq.isValue(v)).toBe(false);
      expect(() => allocReq.encode(v as never, buf)).toThrow(TypeError);
    }
    for (const v of [
      { argsz: -1, flags: 0, range: { min: 1, max: 2 } },
      { argsz: 2 ** 32, flags: 0, range: { min: 1, max: 2 } },
      { argsz: 1.5, flags: 0, range: { min: 1, max: 2 } },
    ]) {
      expect(allocReq.isValue(v)).toBe(false);
      expect(() => allocReq.encode(v, buf)).toThrow(RangeError);
    }
    expect(() => iovaRanges.encode({ ...iovaRanges.zero(), allowed_iovas: 1 as unknown as bigint })).toThrow(
      TypeError,
    );
    expect(() => iovaRanges.encode({ ...iovaRanges.zero(), allowed_iovas: 2n ** 64n })).toThrow(RangeError);
    expect(() => mixed.encode({ ...mixed.zero(), arr: [1, 2] })).toThrow(TypeError);
    expect(() => allocReq.encode(allocReq.zero(), new Uint8Array(15))).toThrow(RangeError);
    expect([...buf]).toEqual(Array(16).fill(1));
  });

  it('rejects short buffers on decode', () => {
    expect(() => allocReq.decode(new Uint8Array(15))).toThrow(RangeError);
    expect(() => allocReq.decode(new Uint8Array(16), 1)).toThrow(RangeError);
  });

  it('rejects bad definitions', () => {
    expect(() =>
      defineUapiStruct({ name: 'x', size: 4, fields: [{ name: 'a', offset: 2, type: 'u32' }] }),
    ).toThrow(RangeError);
    expect(() =>
      defineUapiStruct({
        name: 'x',
        size: 8,
        fields: [
          { name: 'a', offset: 0, type: 'u32' },
          { name: 'a', offset: 4, type: 'u32' },
        ],
      }),
    ).toThrow(RangeError);
    expect(() =>
      defineUapiStruct({ name: 'x', size: 8, fields: [{ name: 'a', offset: 0, type: 'u32', count: 3 }] }),
    ).toThrow(RangeError);
  });
});

describe('copyStructFromUser', () => {
  const v = { argsz: 16, flags: 3, range: { min: 10, max: 20 } };

  it('copies an exact-size struct', () => {
    expect(copyStructFromUser(allocReq, allocReq.encode(v), 16)).toEqual(v);
  });

  it('zero-extends a smaller user struct', () => {
    const user = allocReq.encode(v);
    // only the first 12 bytes are the user's; the rest of the buffer is ignored
    expect(copyStructFromUser(allocReq, user, 12)).toEqual({ ...v, range: { min: 10, max: 0 } });
    expect(copyStructFromUser(allocReq, user.subarray(0, 8), 8)).toEqual({ ...v, range: { min: 0, max: 0 } });
    expect(copyStructFromUser(allocReq, new Uint8Array(0), 0)).toEqual(allocReq.zero());
  });

  it('accepts a larger user struct whose extra bytes are zero', () => {
    const user = new Uint8Array(24);
    allocReq.encode(v, user);
    expect(copyStructFromUser(allocReq, user, 24)).toEqual(v);
  });

  it('refuses a larger user struct with non-zero extra bytes: E2BIG', () => {
    fc.assert(
      fc.property(fc.integer({ min: 16, max: 31 }), fc.integer({ min: 1, max: 255 }), (at, b) => {
        const user = new Uint8Array(32);
        allocReq.encode(v, user);
        user[at] = b;
        expect(errnoOf(() => copyStructFromUser(allocReq, user, 32))).toBe('E2BIG');
        // bytes past userSize do not count
        expect(errnoOf(() => copyStructFromUser(allocReq, user, at))).toBeUndefined();
      }),
    );
  });

  it('faults on unreadable user memory: EFAULT', () => {
    expect(errnoOf(() => copyStructFromUser(allocReq, new Uint8Array(15), 16))).toBe('EFAULT');
    expect(errnoOf(() => copyStructFromUser(allocReq, new Uint8Array(10), 12))).toBe('EFAULT');
    expect(errnoOf(() => copyStructFromUser(allocReq, new Uint8Array(20), 24))).toBe('EFAULT');
    // a non-zero trailing byte before the unreadable part is found first, as in the kernel
    const user = new Uint8Array(20);
    user[17] = 1;
    expect(errnoOf(() => copyStructFromUser(allocReq, user, 24))).toBe('E2BIG');
    expect(errnoOf(() => copyStructFromUser(allocReq, user, -1))).toBe('EINVAL');
  });
});

describe('copyStructToUser', () => {
  const v = { argsz: 16, flags: 3, range: { min: 10, max: 20 } };

  it('writes min(userSize, size) bytes only', () => {
    const user = new Uint8Array(24).fill(0xaa);
    copyStructToUser(allocReq, v, user, 12);
    expect([...user.subarray(0, 12)]).toEqual([...allocReq.encode(v).subarray(0, 12)]);
    expect([...user.subarray(12)]).toEqual(Array(12).fill(0xaa));
    user.fill(0xaa);
    copyStructToUser(allocReq, v, user, 24);
    expect(allocReq.decode(user)).toEqual(v);
    expect([...user.subarray(16)]).toEqual(Array(8).fill(0xaa));
  });

  it('faults without writing when user memory is short', () => {
    const user = new Uint8Array(10).fill(0xaa);
    expect(errnoOf(() => copyStructToUser(allocReq, v, user, 16))).toBe('EFAULT');
    expect([...user]).toEqual(Array(10).fill(0xaa));
    copyStructToUser(allocReq, v, user, 8);
    expect(user[0]).toBe(16);
  });
});

describe('checkArgsz', () => {
  it('is EINVAL below the minimum', () => {
    expect(errnoOf(() => checkArgsz(15, 16))).toBe('EINVAL');
    expect(errnoOf(() => checkArgsz(-1, 0))).toBe('EINVAL');
    expect(errnoOf(() => checkArgsz(16, 16))).toBeUndefined();
    expect(errnoOf(() => checkArgsz(100, 16))).toBeUndefined();
  });
});
