import { defineUapiStruct } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import { decodeUapi, encodeUapi, syncUapi } from './uapi-codec.js';

// A small struct with a named union of two nested members and an array:
//   struct demo { u32 size; u32 op; union { struct { u64 a; u64 b; } wide; struct { u32 x; u32 y; } narrow; }; u16 arr[3]; }
const wide = defineUapiStruct({
  name: 'demo.wide',
  size: 16,
  fields: [
    { name: 'a', offset: 0, type: 'u64' },
    { name: 'b', offset: 8, type: 'u64' },
  ],
});
const narrow = defineUapiStruct({
  name: 'demo.narrow',
  size: 8,
  fields: [
    { name: 'x', offset: 0, type: 'u32' },
    { name: 'y', offset: 4, type: 'u32' },
  ],
});
const demo = defineUapiStruct({
  name: 'demo',
  size: 32,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'op', offset: 4, type: 's32' },
    { name: 'wide', offset: 8, type: wide },
    { name: 'narrow', offset: 8, type: narrow },
    { name: 'arr', offset: 24, type: 'u16', count: 3 },
  ],
});

function u32At(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(at, true);
}
function u64At(bytes: Uint8Array, at: number): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(at, true);
}

describe('encodeUapi', () => {
  it('fields left out read as 0', () => {
    const bytes = encodeUapi(demo, { size: 32 });
    expect(u32At(bytes, 0)).toBe(32);
    expect(bytes.subarray(4).every((b) => b === 0)).toBe(true);
  });

  it('writes only the union member present: an absent member does not clobber it', () => {
    const bytes = encodeUapi(demo, { narrow: { x: 7, y: 9 } });
    expect(u32At(bytes, 8)).toBe(7);
    expect(u32At(bytes, 12)).toBe(9);
    const w = encodeUapi(demo, { wide: { a: 0x1122334455667788n, b: 5n } });
    expect(u64At(w, 8)).toBe(0x1122334455667788n);
    expect(u64At(w, 16)).toBe(5n);
  });

  it('without remembered bytes, the later member wins where present members overlap', () => {
    const bytes = encodeUapi(demo, { wide: { a: 0xffff_ffff_ffff_ffffn, b: 3n }, narrow: { x: 1 } });
    expect(u32At(bytes, 8)).toBe(1);
    expect(u32At(bytes, 12)).toBe(0); // narrow.y read as 0
    expect(u64At(bytes, 16)).toBe(3n); // outside narrow: wide.b stays
  });

  it('arrays may be shorter (missing elements read 0) but not longer', () => {
    const bytes = encodeUapi(demo, { arr: [0x1234] });
    expect([...bytes.subarray(24, 30)]).toEqual([0x34, 0x12, 0, 0, 0, 0]);
    expect(() => encodeUapi(demo, { arr: [1, 2, 3, 4] })).toThrow(RangeError);
    expect(() => encodeUapi(demo, { arr: 5 as unknown as number[] })).toThrow(TypeError);
  });

  it('checks kinds and ranges, and leaves the target buffer unchanged on a throw', () => {
    const into = new Uint8Array(40).fill(0xee);
    expect(() => encodeUapi(demo, { size: 2 ** 32 }, into, 4)).toThrow(RangeError);
    expect(() => encodeUapi(demo, { size: -1 }, into, 4)).toThrow(RangeError);
    expect(() => encodeUapi(demo, { size: 1.5 }, into, 4)).toThrow(RangeError);
    expect(() => encodeUapi(demo, { size: '4' as unknown as number }, into, 4)).toThrow(TypeError);
    expect(() => encodeUapi(demo, { wide: { a: -1n } }, into, 4)).toThrow(RangeError);
    expect(() => encodeUapi(demo, { wide: 3 as unknown as { a: bigint } }, into, 4)).toThrow(TypeError);
    expect(() => encodeUapi(demo, {}, into, 10)).toThrow(RangeError); // 32 bytes do not fit at 10
    expect(into.every((b) => b === 0xee)).toBe(true);
  });

  it('accepts a safe-integer number for a 64-bit field and a bigint for a small one', () => {
    const bytes = encodeUapi(demo, { size: 8n as unknown as number, wide: { a: 4096 as unknown as bigint } });
    expect(u32At(bytes, 0)).toBe(8);
    expect(u64At(bytes, 8)).toBe(4096n);
    expect(() => encodeUapi(demo, { wide: { a: (2 ** 60) as unknown as bigint } })).toThrow(RangeError);
  });

  it('writes signed fields in two’s complement', () => {
    const bytes = encodeUapi(demo, { op: -2 });
    expect(u32At(bytes, 4)).toBe(0xffff_fffe);
    expect(() => encodeUapi(demo, { op: 2 ** 31 })).toThrow(RangeError);
  });

  it('writes into a given buffer at an offset, leaving the rest alone', () => {
    const into = new Uint8Array(40).fill(0xee);
    encodeUapi(demo, { size: 1 }, into, 8);
    expect([...into.subarray(0, 8)]).toEqual(Array(8).fill(0xee));
    expect(u32At(into, 8)).toBe(1);
    expect(into.subarray(12, 40).every((b) => b === 0)).toBe(true);
  });
});

describe('decodeUapi and remembered bytes', () => {
  it('decodes every union member from the same bytes', () => {
    const bytes = encodeUapi(demo, { narrow: { x: 1, y: 2 } });
    const v = decodeUapi(demo, bytes);
    expect(v.narrow).toEqual({ x: 1, y: 2 });
    expect(v.wide.a).toBe((2n << 32n) | 1n);
  });

  it('re-encoding a decoded object writes the member that changed, not the stale ones', () => {
    const v = decodeUapi(demo, encodeUapi(demo, { narrow: { x: 1, y: 2 } }));
    v.narrow.y = 42; // wide.a still holds the old bytes of x and y
    let bytes = encodeUapi(demo, v);
    expect(u32At(bytes, 8)).toBe(1);
    expect(u32At(bytes, 12)).toBe(42);

    const w = decodeUapi(demo, bytes);
    w.wide.b = 99n; // narrow (stale) does not overlap b, but covers a
    bytes = encodeUapi(demo, w);
    expect(u64At(bytes, 8)).toBe((42n << 32n) | 1n);
    expect(u64At(bytes, 16)).toBe(99n);
  });

  it('an unchanged decoded object encodes back to the same bytes', () => {
    const src = encodeUapi(demo, {
      size: 32,
      op: -5,
      wide: { a: 0xdead_beef_0000_0001n, b: 7n },
      arr: [1, 2, 3],
    });
    expect([...encodeUapi(demo, decodeUapi(demo, src))]).toEqual([...src]);
  });

  it('deleting a plain field still reads it as 0', () => {
    const v: { size?: number; op: number } = decodeUapi(demo, encodeUapi(demo, { size: 32, op: 1 }));
    delete v.size;
    expect(u32At(encodeUapi(demo, v), 0)).toBe(0);
  });
});

describe('syncUapi', () => {
  it('updates the object in place, keeps nested references and adds missing members', () => {
    const target: { size: number; narrow: { x: number; y?: number }; arr?: number[] } = {
      size: 32,
      narrow: { x: 0 },
    };
    const narrowRef = target.narrow;
    const bytes = encodeUapi(demo, { size: 32, narrow: { x: 5, y: 6 }, arr: [9, 8, 7] });
    const out = syncUapi(demo, target, bytes);
    expect(out).toBe(target);
    expect(target.narrow).toBe(narrowRef);
    expect(narrowRef).toEqual({ x: 5, y: 6 });
    expect(out.wide).toEqual({ a: (6n << 32n) | 5n, b: 0n });
    expect(out.arr).toEqual([9, 8, 7]);
    expect(out.op).toBe(0);
  });

  it('updates arrays in place', () => {
    const arr = [0, 0, 0];
    const target = { arr };
    syncUapi(demo, target, encodeUapi(demo, { arr: [4, 5, 6] }));
    expect(target.arr).toBe(arr);
    expect(arr).toEqual([4, 5, 6]);
  });

  it('a synced object, reused with one member changed, encodes that member', () => {
    const cmd: { narrow: { x: number; y: number }; wide?: { a: bigint; b: bigint } } = {
      narrow: { x: 1, y: 2 },
    };
    syncUapi(demo, cmd, encodeUapi(demo, cmd));
    expect(cmd.wide).toBeDefined();
    cmd.narrow.x = 3;
    const bytes = encodeUapi(demo, cmd);
    expect(u32At(bytes, 8)).toBe(3);
    expect(u32At(bytes, 12)).toBe(2);
  });
});
