import { _IOWR, defineUapiStruct, ErrnoError, isErrnoError } from '@iommu-ts/base';
import { describe, expect, it, vi } from 'vitest';
import {
  createIoctlTable,
  defineIoctlOp,
  dispatchIoctl,
  type IommufdIoctlOp,
  type IommufdUcmd,
  type UserMemory,
  uaccessUserMemory,
} from './ioctl-dispatch.js';
import { IOMMU_DESTROY, IOMMU_IOAS_ALLOC, IOMMU_IOAS_IOVA_RANGES } from './uapi.js';
import { iommuIoasAllocCommand } from './uapi-structs.js';

const PAGE = 4096;

/** Sparse user memory of 4 KiB pages; pages may be read-only. EFAULT outside mapped pages. */
class FakeMemory implements UserMemory {
  readonly pages = new Map<bigint, { bytes: Uint8Array; writable: boolean }>();
  reads = 0;
  writes = 0;

  map(va: bigint, npages: number, writable = true): void {
    for (let i = 0; i < npages; i++) {
      this.pages.set(va / BigInt(PAGE) + BigInt(i), { bytes: new Uint8Array(PAGE), writable });
    }
  }

  #each(
    va: bigint,
    len: number,
    write: boolean,
    fn: (page: Uint8Array, off: number, i: number) => void,
  ): void {
    for (let i = 0; i < len; i++) {
      const a = va + BigInt(i);
      const p = this.pages.get(a / BigInt(PAGE));
      if (p === undefined || (write && !p.writable))
        throw new ErrnoError('EFAULT', `fault at 0x${a.toString(16)}`);
    }
    for (let i = 0; i < len; i++) {
      const a = va + BigInt(i);
      const p = this.pages.get(a / BigInt(PAGE));
      if (p !== undefined) fn(p.bytes, Number(a % BigInt(PAGE)), i);
    }
  }

  read(va: bigint, len: number): Uint8Array {
    this.reads++;
    const out = new Uint8Array(len);
    this.#each(va, len, false, (page, off, i) => {
      out[i] = page[off] ?? 0;
    });
    return out;
  }

  write(va: bigint, bytes: Uint8Array): void {
    this.writes++;
    this.#each(va, bytes.length, true, (page, off, i) => {
      page[off] = bytes[i] ?? 0;
    });
  }

  /** Poke bytes regardless of protection (test setup). */
  poke(va: bigint, bytes: ArrayLike<number>): void {
    for (let i = 0; i < bytes.length; i++) {
      const a = va + BigInt(i);
      const p = this.pages.get(a / BigInt(PAGE));
      if (p === undefined) throw new Error('poke outside mapped memory');
      p.bytes[Number(a % BigInt(PAGE))] = bytes[i] ?? 0;
    }
  }

  peek(va: bigint, len: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < len; i++) {
      const a = va + BigInt(i);
      out.push(this.pages.get(a / BigInt(PAGE))?.bytes[Number(a % BigInt(PAGE))] ?? -1);
    }
    return out;
  }
}

function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

// A tiny command: struct demo { u32 size; u32 in; u32 out; u32 pad; u64 wide; } (24 bytes, minimum 12).
const demo = defineUapiStruct({
  name: 'demo',
  size: 24,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'in', offset: 4, type: 'u32' },
    { name: 'out', offset: 8, type: 'u32' },
    { name: 'pad', offset: 12, type: 'u32' },
    { name: 'wide', offset: 16, type: 'u64' },
  ],
});
type Demo = ReturnType<typeof demo.decode>;

// A command with a named union (like iommu_test_cmd).
const memberA = defineUapiStruct({ name: 'u.a', size: 8, fields: [{ name: 'x', offset: 0, type: 'u64' }] });
const memberB = defineUapiStruct({
  name: 'u.b',
  size: 8,
  fields: [
    { name: 'lo', offset: 0, type: 'u32' },
    { name: 'hi', offset: 4, type: 'u32' },
  ],
});
const unionCmd = defineUapiStruct({
  name: 'ucmd',
  size: 16,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'op', offset: 4, type: 'u32' },
    { name: 'a', offset: 8, type: memberA },
    { name: 'b', offset: 8, type: memberB },
  ],
});

const DEMO_REQ = 0x3b81; // slot 0x81
const UNION_REQ = 0x3b84; // slot 0x84; 0x82 and 0x83 stay empty
const BASE = 0x10000n;

interface Ctx {
  readonly log: string[];
}

function demoHandler(cmd: Demo, _ucmd: IommufdUcmd<Demo>, ctx: Ctx): void {
  ctx.log.push(`demo in=${cmd.in} wide=${cmd.wide}`);
  if (cmd.in === 0xbad) throw new ErrnoError('EOPNOTSUPP', 'bad in');
  cmd.out = cmd.in + 1;
  cmd.wide = cmd.wide * 2n;
}

function makeTable(options: { fallback?: boolean; respond?: boolean } = {}) {
  const demoOp: IommufdIoctlOp<Demo, Ctx> = {
    name: 'DEMO',
    request: DEMO_REQ,
    struct: demo,
    minSize: 12,
    handler: demoHandler,
    ...(options.respond === undefined ? {} : { respond: options.respond }),
  };
  const unionOp: IommufdIoctlOp<ReturnType<typeof unionCmd.decode>, Ctx> = {
    name: 'UNION',
    request: UNION_REQ,
    struct: unionCmd,
    minSize: 16,
    handler(cmd, ucmd) {
      if (cmd.op === 1) cmd.b.hi = cmd.b.lo + 1;
      else cmd.a.x = cmd.a.x + 1n;
      if (cmd.op === 3) {
        ucmd.respond();
        throw new ErrnoError('EMSGSIZE', 'reported then failed');
      }
    },
  };
  return createIoctlTable<Ctx>({
    ops: [demoOp, unionOp],
    ...(options.fallback === true
      ? {
          fallback: (request: number, arg: unknown) => (typeof arg === 'bigint' ? request + Number(arg) : -1),
        }
      : {}),
  });
}

function expectErrno(fn: () => unknown, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(isErrnoError(caught), String(caught)).toBe(true);
  expect((caught as ErrnoError).code).toBe(code);
}

describe('createIoctlTable', () => {
  it('spans from IOMMUFD_CMD_BASE to the highest command', () => {
    const table = makeTable();
    expect(table.baseNr).toBe(0x80);
    expect(table.endNr).toBe(0x85);
    expect([...table.ops.keys()].sort()).toEqual([0x81, 0x84]);
  });

  it('rejects duplicate numbers, numbers below the base and impossible minimum sizes', () => {
    const op = defineIoctlOp<Demo, Ctx>(
      { name: 'X', request: DEMO_REQ, struct: demo, minSize: 12 },
      () => {},
    );
    expect(() => createIoctlTable({ ops: [op, op] })).toThrow(RangeError);
    expect(() => createIoctlTable({ ops: [{ ...op, request: 0x3b10 }] })).toThrow(RangeError);
    expect(() => createIoctlTable({ ops: [{ ...op, minSize: 2 }] })).toThrow(RangeError);
    expect(() => createIoctlTable({ ops: [{ ...op, minSize: 25 }] })).toThrow(RangeError);
  });

  it('defineIoctlOp takes the facts of a uAPI command', () => {
    const op = defineIoctlOp(iommuIoasAllocCommand, () => {}, { respond: false });
    expect(op).toMatchObject({
      name: 'IOMMU_IOAS_ALLOC',
      request: IOMMU_IOAS_ALLOC,
      minSize: 12,
      respond: false,
    });
    expect(op.struct.size).toBe(12);
  });
});

describe('dispatchIoctl, pointer form', () => {
  function setup(options?: { fallback?: boolean; respond?: boolean }) {
    const mem = new FakeMemory();
    mem.map(BASE, 2);
    const ctx: Ctx = { log: [] };
    const table = makeTable(options);
    const call = (request: number, arg: bigint = BASE) => dispatchIoctl(table, request, arg, mem, ctx);
    return { mem, ctx, table, call };
  }

  it('runs the handler on the decoded struct and copies the struct back', () => {
    const { mem, ctx, call } = setup();
    mem.poke(BASE, [...le32(24), ...le32(41), ...le32(0), ...le32(0), 5, 0, 0, 0, 0, 0, 0, 0]);
    expect(call(DEMO_REQ)).toBe(0);
    expect(ctx.log).toEqual(['demo in=41 wide=5']);
    expect(mem.peek(BASE + 8n, 4)).toEqual(le32(42));
    expect(mem.peek(BASE + 16n, 8)).toEqual([10, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('nr below the base or past the table: the fallback, or ENOTTY without one', () => {
    const { call, ctx } = setup();
    expectErrno(() => call(0x3b70), 'ENOTTY');
    expectErrno(() => call(0x3b85), 'ENOTTY');
    expect(ctx.log).toEqual([]);
    const withFallback = setup({ fallback: true });
    expect(withFallback.call(0x3b64, 3n)).toBe(0x3b67); // VFIO-style: arg handed over as is
    expect(withFallback.call(0x3b85, 1n)).toBe(0x3b86);
    // Only nr decides: a foreign type byte with an in-range nr is not handed to the fallback.
    withFallback.mem.poke(BASE, le32(24));
    expectErrno(() => withFallback.call(0x4181), 'ENOTTY');
  });

  it('an unreadable size is EFAULT, even for an empty slot or a mismatching request', () => {
    const { call } = setup();
    expectErrno(() => call(DEMO_REQ, 0x9000_0000n), 'EFAULT');
    expectErrno(() => call(0x3b82, 0x9000_0000n), 'EFAULT');
    expectErrno(() => call(_IOWR(';', 0x81, 24), 0x9000_0000n), 'EFAULT');
    expectErrno(() => call(DEMO_REQ, BASE + 2n * BigInt(PAGE) - 2n), 'EFAULT'); // size straddles the end
  });

  it('an empty slot or a request whose other bits differ is ENOTTY', () => {
    const { call, mem, ctx } = setup();
    mem.poke(BASE, le32(24));
    expectErrno(() => call(0x3b82), 'ENOTTY');
    expectErrno(() => call(0x3b83), 'ENOTTY');
    expectErrno(() => call(_IOWR(';', 0x81, 24)), 'ENOTTY');
    expect(ctx.log).toEqual([]);
  });

  it('size below the minimum is EINVAL (before any struct byte is read beyond size)', () => {
    const { call, mem, ctx } = setup();
    for (const size of [0, 4, 11]) {
      mem.poke(BASE, le32(size));
      expectErrno(() => call(DEMO_REQ), 'EINVAL');
    }
    mem.poke(BASE, le32(15));
    expectErrno(() => call(UNION_REQ), 'EINVAL');
    expect(ctx.log).toEqual([]);
  });

  it('a shorter struct is zero-filled: fields past size read 0 whatever memory holds', () => {
    const { call, mem, ctx } = setup();
    mem.poke(BASE, [...le32(12), ...le32(7), ...le32(0), ...le32(0xffff_ffff), 9, 9, 9, 9, 9, 9, 9, 9]);
    call(DEMO_REQ);
    expect(ctx.log).toEqual(['demo in=7 wide=0']);
    // Only the 12 bytes the caller has are written back.
    expect(mem.peek(BASE, 24)).toEqual([
      ...le32(12),
      ...le32(7),
      ...le32(8),
      ...le32(0xffff_ffff),
      9,
      9,
      9,
      9,
      9,
      9,
      9,
      9,
    ]);
  });

  it('a longer struct is accepted when the extra bytes are zero, and they are left alone', () => {
    const { call, mem } = setup();
    mem.poke(BASE, [...le32(4000), ...le32(1)]);
    call(DEMO_REQ);
    expect(mem.peek(BASE + 8n, 4)).toEqual(le32(2));
  });

  it('non-zero bytes past the kernel struct are E2BIG, and nothing runs', () => {
    const { call, mem, ctx } = setup();
    mem.poke(BASE, [...le32(32), ...le32(1)]);
    mem.poke(BASE + 31n, [1]);
    expectErrno(() => call(DEMO_REQ), 'E2BIG');
    expect(ctx.log).toEqual([]);
    expect(mem.peek(BASE + 8n, 4)).toEqual(le32(0));
  });

  it('trailing bytes reaching unmapped memory are EFAULT, unless a non-zero byte comes first', () => {
    const { call, mem, ctx } = setup();
    const va = BASE + 2n * BigInt(PAGE) - 24n; // the struct ends exactly at the end of the mapping
    mem.poke(va, [...le32(32), ...le32(1)]);
    expectErrno(() => call(DEMO_REQ, va), 'EFAULT');
    mem.poke(va, le32(PAGE * 4)); // a long tail: the first unreadable page faults
    expectErrno(() => call(DEMO_REQ, va), 'EFAULT');
    const va2 = BASE + 2n * BigInt(PAGE) - 30n; // the tail's first 6 bytes are mapped
    mem.poke(va2, le32(48));
    mem.poke(va2 + 24n, [0, 0, 0, 5]); // non-zero before the fault
    expectErrno(() => call(DEMO_REQ, va2), 'E2BIG');
    expect(ctx.log).toEqual([]);
  });

  it('an unreadable struct body is EFAULT', () => {
    const { call, mem, ctx } = setup();
    const va = BASE + 2n * BigInt(PAGE) - 8n; // size readable, the rest is not
    mem.poke(va, le32(24));
    expectErrno(() => call(DEMO_REQ, va), 'EFAULT');
    expect(ctx.log).toEqual([]);
  });

  it('a handler error is returned and nothing is copied out', () => {
    const { call, mem } = setup();
    mem.poke(BASE, [...le32(24), ...le32(0xbad), ...le32(77)]);
    const writes = mem.writes;
    expectErrno(() => call(DEMO_REQ), 'EOPNOTSUPP');
    expect(mem.writes).toBe(writes);
    expect(mem.peek(BASE + 8n, 4)).toEqual(le32(77));
  });

  it('a read-only struct: copy-out is EFAULT after the handler ran', () => {
    const { call, mem, ctx } = setup();
    mem.map(BASE + 0x10000n, 1, false);
    mem.poke(BASE + 0x10000n, [...le32(24), ...le32(1)]);
    expectErrno(() => call(DEMO_REQ, BASE + 0x10000n), 'EFAULT');
    expect(ctx.log).toHaveLength(1);
  });

  it('a command marked respond: false never writes, so a read-only struct works', () => {
    const { call, mem, ctx } = setup({ respond: false });
    mem.map(BASE + 0x10000n, 1, false);
    mem.poke(BASE + 0x10000n, [...le32(24), ...le32(1)]);
    expect(call(DEMO_REQ, BASE + 0x10000n)).toBe(0);
    expect(ctx.log).toHaveLength(1);
    expect(mem.peek(BASE + 0x10008n, 4)).toEqual(le32(0));
  });

  it('a handler can copy out and then fail (the IOAS_IOVA_RANGES EMSGSIZE pattern)', () => {
    const { call, mem } = setup();
    mem.poke(BASE, [...le32(16), ...le32(3), 1, 0, 0, 0, 0, 0, 0, 0]);
    expectErrno(() => call(UNION_REQ), 'EMSGSIZE');
    expect(mem.peek(BASE + 8n, 8)).toEqual([2, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('copy-out writes the union member the handler changed', () => {
    const { call, mem } = setup();
    mem.poke(BASE, [...le32(16), ...le32(1), ...le32(10), ...le32(0)]);
    call(UNION_REQ);
    expect(mem.peek(BASE + 8n, 8)).toEqual([...le32(10), ...le32(11)]);
  });

  it('hands the handler the user memory, the user size and the context', () => {
    const mem = new FakeMemory();
    mem.map(BASE, 1);
    mem.poke(BASE, le32(20));
    const seen: unknown[] = [];
    const table = createIoctlTable<string>({
      ops: [
        defineIoctlOp<Demo, string>(
          { name: 'D', request: IOMMU_DESTROY, struct: demo, minSize: 12 },
          (_c, u, ctx) => {
            seen.push(u.userMemory === mem, u.userSize, ctx, u.responded);
          },
        ),
      ],
    });
    expect(dispatchIoctl(table, IOMMU_DESTROY, BASE, mem, 'file')).toBe(0);
    expect(seen).toEqual([true, 20, 'file', false]);
  });

  it('accepts a number address and treats a negative request as its unsigned value', () => {
    const { mem, ctx, table } = setup();
    mem.poke(BASE, [...le32(24), ...le32(5)]);
    expect(dispatchIoctl(table, DEMO_REQ - 2 ** 32, Number(BASE), mem, ctx)).toBe(0);
    expect(mem.peek(BASE + 8n, 4)).toEqual(le32(6));
  });
});

describe('dispatchIoctl, object form', () => {
  function setup(options?: { respond?: boolean }) {
    const mem = new FakeMemory();
    const ctx: Ctx = { log: [] };
    const table = makeTable(options);
    const call = (request: number, arg: object) => dispatchIoctl(table, request, arg, mem, ctx);
    return { mem, ctx, call };
  }

  it('writes the out fields into the caller object and returns 0', () => {
    const { call, ctx, mem } = setup();
    const cmd = { size: 24, in: 1, out: 0, pad: 0, wide: 21n };
    expect(call(DEMO_REQ, cmd)).toBe(0);
    expect(cmd).toEqual({ size: 24, in: 1, out: 2, pad: 0, wide: 42n });
    expect(ctx.log).toEqual(['demo in=1 wide=21']);
    expect(mem.reads + mem.writes).toBe(0); // the process memory is not used for the struct
  });

  it('fields left out read as 0 and are added by the write-back', () => {
    const { call, ctx } = setup();
    const cmd: { size: number; in: number; out?: number } = { size: 24, in: 4 };
    call(DEMO_REQ, cmd);
    expect(ctx.log).toEqual(['demo in=4 wide=0']);
    expect(cmd).toEqual({ size: 24, in: 4, out: 5, pad: 0, wide: 0n });
  });

  it('obeys the same size rules: below the minimum EINVAL, larger accepted', () => {
    const { call, ctx } = setup();
    expectErrno(() => call(DEMO_REQ, { size: 8, in: 1 }), 'EINVAL');
    expectErrno(() => call(DEMO_REQ, { in: 1 }), 'EINVAL'); // no size: 0
    expect(ctx.log).toEqual([]);
    const big = { size: 0xffff_ffff, in: 1, out: 0 };
    expect(call(DEMO_REQ, big)).toBe(0);
    expect(big.out).toBe(2);
  });

  it('a size below sizeof: the kernel sees zeros and the fields past size keep their value', () => {
    const { call, ctx } = setup();
    const cmd = { size: 12, in: 7, out: 0, pad: 3, wide: 9n };
    call(DEMO_REQ, cmd);
    expect(ctx.log).toEqual(['demo in=7 wide=0']);
    expect(cmd).toEqual({ size: 12, in: 7, out: 8, pad: 3, wide: 9n });
  });

  it('an empty slot or a mismatching request is ENOTTY and the object is untouched', () => {
    const { call } = setup();
    const cmd = { size: 24, in: 1 };
    expectErrno(() => call(0x3b82, cmd), 'ENOTTY');
    expectErrno(() => call(_IOWR(';', 0x81, 24), cmd), 'ENOTTY');
    expect(cmd).toEqual({ size: 24, in: 1 });
  });

  it('a failing handler leaves the object untouched', () => {
    const { call } = setup();
    const cmd = { size: 24, in: 0xbad, out: 3 };
    expectErrno(() => call(DEMO_REQ, cmd), 'EOPNOTSUPP');
    expect(cmd).toEqual({ size: 24, in: 0xbad, out: 3 });
  });

  it('respond-then-fail writes the out fields into the object before the error', () => {
    const { call } = setup();
    const cmd = { size: 16, op: 3, a: { x: 1n } };
    expectErrno(() => call(UNION_REQ, cmd), 'EMSGSIZE');
    expect(cmd.a.x).toBe(2n);
  });

  it('nested union objects are written back and can be reused with one member changed', () => {
    const { call } = setup();
    const cmd: { size: number; op: number; b: { lo: number; hi?: number }; a?: { x: bigint } } = {
      size: 16,
      op: 1,
      b: { lo: 5 },
    };
    const b = cmd.b;
    call(UNION_REQ, cmd);
    expect(cmd.b).toBe(b);
    expect(b).toEqual({ lo: 5, hi: 6 });
    expect(cmd.a).toEqual({ x: (6n << 32n) | 5n }); // the aliasing member was added

    cmd.b.lo = 100; // cmd.a is stale now; the changed member wins
    call(UNION_REQ, cmd);
    expect(cmd.b).toEqual({ lo: 100, hi: 101 });

    cmd.op = 0;
    cmd.a = { x: 7n }; // replacing a member object works too
    call(UNION_REQ, cmd);
    expect(cmd.a).toEqual({ x: 8n });
    expect(cmd.b).toEqual({ lo: 8, hi: 0 });
  });

  it('a malformed object is a TypeError or RangeError, not an errno', () => {
    const { call } = setup();
    expect(() => call(DEMO_REQ, { size: 24, wide: 'x' })).toThrow(TypeError);
    expect(() => call(DEMO_REQ, { size: 24, in: -1 })).toThrow(RangeError);
    expect(() => call(DEMO_REQ, { size: 2 ** 32 })).toThrow(TypeError);
  });

  it('the fallback receives the object as given', () => {
    const mem = new FakeMemory();
    const fallback = vi.fn(() => 7);
    const table = createIoctlTable<void>({ ops: [], fallback });
    const arg = { any: 1 };
    expect(dispatchIoctl(table, 0x3b65, arg, mem, undefined)).toBe(7);
    expect(fallback).toHaveBeenCalledWith(0x3b65, arg, mem, undefined);
  });

  it('a non-integer request is a TypeError', () => {
    const { call } = setup();
    expect(() => call(1.5, { size: 24 })).toThrow(TypeError);
  });

  it('works with the real IOMMU_IOAS_IOVA_RANGES number in a table slot', () => {
    const mem = new FakeMemory();
    const op = defineIoctlOp<Demo, void>(
      { name: 'RANGES', request: IOMMU_IOAS_IOVA_RANGES, struct: demo, minSize: 12 },
      (cmd) => {
        cmd.out = 1;
      },
    );
    const table = createIoctlTable<void>({ ops: [op] });
    const cmd = { size: 24 };
    dispatchIoctl(table, IOMMU_IOAS_IOVA_RANGES, cmd, mem, undefined);
    expect(cmd).toMatchObject({ out: 1 });
  });
});

describe('uaccessUserMemory', () => {
  it('turns a short copy into EFAULT', () => {
    const store = new Uint8Array(16);
    const target = {
      copyFromUser(dst: Uint8Array, va: bigint): number {
        const at = Number(va);
        const n = Math.max(0, Math.min(dst.length, store.length - at));
        dst.set(store.subarray(at, at + n));
        return dst.length - n;
      },
      copyToUser(va: bigint, src: Uint8Array): number {
        const at = Number(va);
        const n = Math.max(0, Math.min(src.length, store.length - at));
        store.set(src.subarray(0, n), at);
        return src.length - n;
      },
    };
    const mem = uaccessUserMemory(target);
    mem.write(4n, new Uint8Array([1, 2, 3]));
    expect([...mem.read(3n, 5)]).toEqual([0, 1, 2, 3, 0]);
    expectErrno(() => mem.read(12n, 8), 'EFAULT');
    expectErrno(() => mem.write(15n, new Uint8Array(2)), 'EFAULT');
    expect(mem.read(100n, 0)).toHaveLength(0);
  });
});
