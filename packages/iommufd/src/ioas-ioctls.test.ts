// The IOAS ioctls through an open iommufd: success paths, every errno in the kernel's check
// order, object and pointer forms, and "a failed call changes nothing".

import type { UapiStruct } from '@iommu-ts/base';
import { errnoOf } from '@iommu-ts/base/testing';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE } from '@iommu-ts/iommu-core';
import { CAP, PROT_READ, PROT_WRITE, type Process, type ProcessOptions } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { iommufdAccessAttach, iommufdAccessCreate, iommufdAccessPinPages } from './access.js';
import {
  BP,
  type Env,
  FakeDomain,
  makeEnv,
  P,
  PRIV,
  pinsAt,
  snapshot,
  userBuffer,
  userPa,
} from './io-pagetable.test-helpers.js';
import { iommufdGetIoas } from './ioas.js';
import { ioasIoctlOps } from './ioas-ioctls.js';
import { createIoctlTable, dispatchIoctl, uaccessUserMemory } from './ioctl-dispatch.js';
import { Iommufd } from './iommufd.js';
import { type IommufdCtx, IommufdCtx as IommufdCtxClass, IommufdObjectType } from './main.js';
import { IOPT_PAGES_ACCOUNT_MM, IOPT_PAGES_ACCOUNT_USER } from './pages.js';
import { MOCK_FLAGS_ACCESS_SYZ } from './selftest-uapi.js';
import {
  IOMMU_DESTROY,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_CHANGE_PROCESS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
} from './uapi.js';
import { decodeUapi, encodeUapi, type UapiInput } from './uapi-codec.js';
import {
  iommuIoasAllocStruct,
  iommuIoasAllowIovasStruct,
  iommuIoasCopyStruct,
  iommuIoasIovaRangesStruct,
  iommuIoasMapStruct,
  iommuIoasUnmapStruct,
  iommuIovaRangeStruct,
  iommuOptionStruct,
  iommuVfioIoasStruct,
} from './uapi-structs.js';

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
const FIXED_RW = IOMMU_IOAS_MAP_FIXED_IOVA | RW;

interface Fx {
  env: Env;
  proc: Process;
  file: Iommufd;
  ctx: IommufdCtx;
  /** Four faulted-in pages for pointer-form structs and arrays (allocated before any snapshot). */
  scratch: bigint;
}

/** A process without capabilities (USER accounting, no CAP_SYS_RESOURCE) and an open iommufd. */
function setup(procOptions: ProcessOptions = { capabilities: [] }, accountMode?: 1 | 2): Fx {
  const env = makeEnv(procOptions);
  const file = Iommufd.open({
    iommu: env.sub,
    process: env.proc,
    ...(accountMode === undefined ? {} : { accountMode }),
  });
  return { env, proc: env.proc, file, ctx: file.ctx, scratch: userBuffer(env.proc, 4) };
}

function ioasAlloc(fx: Fx): number {
  const cmd = { size: 12, flags: 0, out_ioas_id: 0 };
  fx.file.ioctl(IOMMU_IOAS_ALLOC, cmd);
  return cmd.out_ioas_id;
}

function mapCmd(ioasId: number, userVa: bigint, length: bigint, iova = 0n, flags = FIXED_RW) {
  return { size: 40, flags, ioas_id: ioasId, __reserved: 0, user_va: userVa, length, iova };
}

function map(fx: Fx, ioasId: number, userVa: bigint, length: bigint, iova = 0n, flags = FIXED_RW): bigint {
  const cmd = mapCmd(ioasId, userVa, length, iova, flags);
  fx.file.ioctl(IOMMU_IOAS_MAP, cmd);
  return cmd.iova;
}

function unmapCmd(ioasId: number, iova: bigint, length: bigint) {
  return { size: 24, ioas_id: ioasId, iova, length };
}

function copyCmd(dst: number, src: number, srcIova: bigint, length: bigint, dstIova = 0n, flags = FIXED_RW) {
  return {
    size: 40,
    flags,
    dst_ioas_id: dst,
    src_ioas_id: src,
    length,
    dst_iova: dstIova,
    src_iova: srcIova,
  };
}

function optionCmd(optionId: number, op: number, objectId: number, val64 = 0n, reserved = 0) {
  return { size: 24, option_id: optionId, op, __reserved: reserved, object_id: objectId, val64 };
}

function rangesCmd(ioasId: number, num: number, ptr: bigint) {
  return {
    size: 32,
    ioas_id: ioasId,
    num_iovas: num,
    __reserved: 0,
    allowed_iovas: ptr,
    out_iova_alignment: 0n,
  };
}

/** Everything an ioctl could change: the object table, compat IOAS, account mode, every IOAS. */
function state(fx: Fx, buffers: { va: bigint; pages: number }[] = [], domains: FakeDomain[] = []): unknown {
  return {
    objects: fx.ctx.listObjects().map((o) => `${o.id}:${o.type}:${o.users}`),
    count: fx.ctx.objectCount,
    vfio: fx.ctx.vfioIoas?.id ?? null,
    accountMode: fx.ctx.accountMode,
    ioas: fx.ctx
      .listObjects()
      .filter((o) => o.type === IommufdObjectType.IOAS)
      .map((o) => snapshot(iommufdGetIoas(fx.ctx, o.id).iopt, fx.proc, buffers, domains)),
  };
}

/** Run a call that must fail with `errno` and prove it changed nothing. */
function expectNoChange(
  fx: Fx,
  errno: string,
  fn: () => unknown,
  buffers: { va: bigint; pages: number }[] = [],
  domains: FakeDomain[] = [],
): void {
  const before = state(fx, buffers, domains);
  expect(errnoOf(fn)).toBe(errno);
  expect(state(fx, buffers, domains)).toEqual(before);
}

/** Write a struct into the scratch memory and call the ioctl with its address. */
function callPtr<T>(
  fx: Fx,
  request: number,
  struct: UapiStruct<T>,
  value: UapiInput<T>,
  at = fx.scratch,
): { errno: string | undefined; out: T } {
  fx.proc.write(at, encodeUapi(struct, value));
  const errno = errnoOf(() => fx.file.ioctl(request, at));
  return { errno, out: decodeUapi(struct, fx.proc.read(at, struct.size)) };
}

function readRanges(fx: Fx, at: bigint, n: number): { start: bigint; last: bigint }[] {
  const out: { start: bigint; last: bigint }[] = [];
  for (let i = 0; i < n; i++) {
    const r = decodeUapi(iommuIovaRangeStruct, fx.proc.read(at + BigInt(16 * i), 16));
    out.push({ start: r.start, last: r.last });
  }
  return out;
}

function writeRanges(fx: Fx, at: bigint, ranges: { start: bigint; last: bigint }[]): void {
  ranges.forEach((r, i) => {
    fx.proc.write(at + BigInt(16 * i), encodeUapi(iommuIovaRangeStruct, r));
  });
}

/** An IOAS ID whose object is an access (a wrong-type ID for IOAS lookups). */
function accessId(fx: Fx): number {
  return iommufdAccessCreate(fx.ctx, { needsPinPages: true, unmap: () => {} }).id;
}

// ---------------------------------------------------------------------------------------------

describe('IOMMU_IOAS_ALLOC', () => {
  it('gives the lowest free ID, reusing destroyed ones', () => {
    const fx = setup();
    expect(ioasAlloc(fx)).toBe(1);
    expect(ioasAlloc(fx)).toBe(2);
    expect(ioasAlloc(fx)).toBe(3);
    fx.file.ioctl(IOMMU_DESTROY, { size: 8, id: 2 });
    expect(ioasAlloc(fx)).toBe(2);
    const ioas = iommufdGetIoas(fx.ctx, 2);
    expect(ioas.users).toBe(1);
    expect(ioas.iopt.iovaAlignment).toBe(1);
    expect(ioas.iopt.largePagesDisabled).toBe(false);
    expect(ioas.iopt.areas()).toEqual([]);
  });

  it('non-zero flags → EOPNOTSUPP, no object', () => {
    const fx = setup();
    expectNoChange(fx, 'EOPNOTSUPP', () => fx.file.ioctl(IOMMU_IOAS_ALLOC, { size: 12, flags: 1 }));
    expect(fx.ctx.objectCount).toBe(0);
  });

  it('pointer form writes out_ioas_id into user memory', () => {
    const fx = setup();
    ioasAlloc(fx);
    const r = callPtr(fx, IOMMU_IOAS_ALLOC, iommuIoasAllocStruct, {
      size: 12,
      flags: 0,
      out_ioas_id: 0xdead,
    });
    expect(r.errno).toBeUndefined();
    expect(r.out.out_ioas_id).toBe(2);
    const bad = callPtr(fx, IOMMU_IOAS_ALLOC, iommuIoasAllocStruct, {
      size: 12,
      flags: 4,
      out_ioas_id: 0xbeef,
    });
    expect(bad.errno).toBe('EOPNOTSUPP');
    expect(bad.out.out_ioas_id).toBe(0xbeef);
  });

  it('a fault on the copy-out discards the new IOAS (EFAULT) and frees its ID', () => {
    const fx = setup();
    const ro = fx.proc.mmap(BigInt(P), PROT_READ | PROT_WRITE, PRIV);
    fx.proc.write(ro, encodeUapi(iommuIoasAllocStruct, { size: 12, flags: 0, out_ioas_id: 0 }));
    fx.proc.mprotect(ro, BigInt(P), PROT_READ);
    expectNoChange(fx, 'EFAULT', () => fx.file.ioctl(IOMMU_IOAS_ALLOC, ro));
    expect(fx.ctx.objectCount).toBe(0);
    expect(ioasAlloc(fx)).toBe(1);
  });
});

describe('IOMMU_IOAS_IOVA_RANGES', () => {
  it('a fresh IOAS reports [0, U64_MAX] and alignment 1 (pointer form)', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const arr = fx.scratch + 0x100n;
    const r = callPtr(fx, IOMMU_IOAS_IOVA_RANGES, iommuIoasIovaRangesStruct, rangesCmd(id, 4, arr));
    expect(r.errno).toBeUndefined();
    expect(r.out.num_iovas).toBe(1);
    expect(r.out.out_iova_alignment).toBe(1n);
    expect(readRanges(fx, arr, 1)).toEqual([{ start: 0n, last: U64_MAX }]);
  });

  it('reports the holes between reserved ranges, not narrowed by allowed ranges', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const iopt = iommufdGetIoas(fx.ctx, id).iopt;
    iopt.reserveIova(0n, 0xfffn, null);
    iopt.reserveIova(0x10000n, 0x1ffffn, null);
    iopt.setAllowIova([{ start: 0x100000n, last: 0x1fffffn }]);
    const arr = fx.scratch + 0x100n;
    const cmd = rangesCmd(id, 3, arr);
    fx.file.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd);
    expect(cmd.num_iovas).toBe(2);
    expect(readRanges(fx, arr, 2)).toEqual([
      { start: 0x1000n, last: 0xffffn },
      { start: 0x20000n, last: U64_MAX },
    ]);
  });

  it('capacity too small: writes what fits, copies the struct out, then EMSGSIZE', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const iopt = iommufdGetIoas(fx.ctx, id).iopt;
    iopt.reserveIova(0x1000n, 0x1fffn, null);
    iopt.reserveIova(0x3000n, 0x3fffn, null);
    const arr = fx.scratch + 0x100n;
    writeRanges(fx, arr, [
      { start: 7n, last: 7n },
      { start: 9n, last: 9n },
    ]);
    const r = callPtr(fx, IOMMU_IOAS_IOVA_RANGES, iommuIoasIovaRangesStruct, rangesCmd(id, 1, arr));
    expect(r.errno).toBe('EMSGSIZE');
    expect(r.out.num_iovas).toBe(3);
    expect(r.out.out_iova_alignment).toBe(1n);
    expect(readRanges(fx, arr, 2)).toEqual([
      { start: 0n, last: 0xfffn },
      { start: 9n, last: 9n },
    ]);
    // Object form: the out fields are updated although the call fails.
    const obj = rangesCmd(id, 0, 0n);
    expect(errnoOf(() => fx.file.ioctl(IOMMU_IOAS_IOVA_RANGES, obj))).toBe('EMSGSIZE');
    expect(obj.num_iovas).toBe(3);
  });

  it('reports the alignment an access raised', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    iommufdAccessAttach(iommufdAccessCreate(fx.ctx, { needsPinPages: true, unmap: () => {} }), id);
    const cmd = rangesCmd(id, 0, 0n);
    expect(errnoOf(() => fx.file.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd))).toBe('EMSGSIZE');
    expect(cmd.out_iova_alignment).toBe(BP);
  });

  it('errnos: reserved → EOPNOTSUPP before lookup, ENOENT, wrong type ENOENT, EFAULT', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const acc = accessId(fx);
    const bad = { ...rangesCmd(999, 1, fx.scratch), __reserved: 1 };
    expectNoChange(fx, 'EOPNOTSUPP', () => fx.file.ioctl(IOMMU_IOAS_IOVA_RANGES, bad));
    expect(bad.num_iovas).toBe(1);
    expectNoChange(fx, 'ENOENT', () => fx.file.ioctl(IOMMU_IOAS_IOVA_RANGES, rangesCmd(999, 1, fx.scratch)));
    expectNoChange(fx, 'ENOENT', () => fx.file.ioctl(IOMMU_IOAS_IOVA_RANGES, rangesCmd(acc, 1, fx.scratch)));
    const fault = rangesCmd(id, 1, 0x10n);
    expectNoChange(fx, 'EFAULT', () => fx.file.ioctl(IOMMU_IOAS_IOVA_RANGES, fault));
    expect(fault.num_iovas).toBe(1); // not written back
  });
});

describe('IOMMU_IOAS_ALLOW_IOVAS', () => {
  it('replaces the list; automatic maps land inside; num_iovas 0 clears it', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const arr = fx.scratch + 0x200n;
    writeRanges(fx, arr, [
      { start: 0x40_0000n, last: 0x4f_ffffn },
      { start: 0x10_0000n, last: 0x1f_ffffn },
    ]);
    fx.file.ioctl(IOMMU_IOAS_ALLOW_IOVAS, { size: 24, ioas_id: id, num_iovas: 2, allowed_iovas: arr });
    const iopt = iommufdGetIoas(fx.ctx, id).iopt;
    expect([...iopt.allowedItree].map((n) => [n.start, n.last])).toEqual([
      [0x10_0000n, 0x1f_ffffn],
      [0x40_0000n, 0x4f_ffffn],
    ]);
    const buf = userBuffer(fx.proc, 1);
    expect(map(fx, id, buf, BP, 0n, RW)).toBe(0x10_0000n);
    fx.file.ioctl(IOMMU_IOAS_ALLOW_IOVAS, { size: 24, ioas_id: id, num_iovas: 0, allowed_iovas: 0n });
    expect(iopt.allowedItree.size).toBe(0);
  });

  it('errnos in order, and the old list is kept', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const iopt = iommufdGetIoas(fx.ctx, id).iopt;
    iopt.setAllowIova([{ start: 0x100000n, last: 0x1fffffn }]);
    iopt.reserveIova(0x800000n, 0x8fffffn, null);
    const arr = fx.scratch + 0x200n;
    const call = (n: number, ranges: { start: bigint; last: bigint }[], extra: object = {}) => {
      writeRanges(fx, arr, ranges);
      return () =>
        fx.file.ioctl(IOMMU_IOAS_ALLOW_IOVAS, {
          size: 24,
          ioas_id: id,
          num_iovas: n,
          allowed_iovas: arr,
          ...extra,
        });
    };
    expectNoChange(fx, 'EOPNOTSUPP', call(0, [], { __reserved: 1, ioas_id: 77 }));
    expectNoChange(fx, 'ENOENT', call(0, [], { ioas_id: 77 }));
    expectNoChange(fx, 'ENOENT', call(0, [], { ioas_id: accessId(fx) }));
    expectNoChange(fx, 'EINVAL', call(1, [{ start: 0x5000n, last: 0x5000n }])); // one byte
    expectNoChange(fx, 'EINVAL', call(1, [{ start: 0x6000n, last: 0x5000n }]));
    expectNoChange(
      fx,
      'EINVAL',
      call(2, [
        { start: 0x10000n, last: 0x1ffffn },
        { start: 0x1f000n, last: 0x2ffffn },
      ]),
    );
    expectNoChange(fx, 'EADDRINUSE', call(1, [{ start: 0x8f0000n, last: 0x900fffn }]));
    // Fault on the second element: the first one was fine.
    const edge = fx.scratch + 4n * BP - 16n;
    writeRanges(fx, edge, [{ start: 0x1000n, last: 0x1fffn }]);
    expectNoChange(fx, 'EFAULT', () =>
      fx.file.ioctl(IOMMU_IOAS_ALLOW_IOVAS, { size: 24, ioas_id: id, num_iovas: 2, allowed_iovas: edge }),
    );
    // A bad first element wins over the fault of the second.
    writeRanges(fx, edge, [{ start: 0x2000n, last: 0x1000n }]);
    expectNoChange(fx, 'EINVAL', () =>
      fx.file.ioctl(IOMMU_IOAS_ALLOW_IOVAS, { size: 24, ioas_id: id, num_iovas: 2, allowed_iovas: edge }),
    );
    expect([...iopt.allowedItree].map((n) => n.start)).toEqual([0x100000n]);
  });

  it('pointer form of the struct itself', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const arr = fx.scratch + 0x400n;
    writeRanges(fx, arr, [{ start: 0x3000n, last: 0x3fffn }]);
    const r = callPtr(fx, IOMMU_IOAS_ALLOW_IOVAS, iommuIoasAllowIovasStruct, {
      size: 24,
      ioas_id: id,
      num_iovas: 1,
      allowed_iovas: arr,
    });
    expect(r.errno).toBeUndefined();
    expect([...iommufdGetIoas(fx.ctx, id).iopt.allowedItree].map((n) => n.last)).toEqual([0x3fffn]);
  });
});

describe('IOMMU_IOAS_MAP', () => {
  it('fixed IOVA: one area, nothing pinned without a domain', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 4);
    expect(map(fx, id, buf, 4n * BP, 0x10_0000n)).toBe(0x10_0000n);
    const [area] = iommufdGetIoas(fx.ctx, id).iopt.areas();
    expect(area?.iova).toBe(0x10_0000n);
    expect(area?.lastIova).toBe(0x10_0000n + 4n * BP - 1n);
    expect(area?.iommuProt).toBe(IOMMU_CACHE | IOMMU_READ | IOMMU_WRITE);
    expect(pinsAt(fx.proc, buf)).toBe(0);
    expect(fx.proc.mm.pinnedVm).toBe(0);
    expect(fx.proc.machine.userLockedVm(fx.proc.uid)).toBe(0);
  });

  it('automatic IOVA: never page 0, aligned to the length, keeps the sub-page offset', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 8);
    const a = map(fx, id, buf, 4n * BP, 0n, RW);
    expect(a).toBeGreaterThanOrEqual(BP);
    expect(a % (4n * BP)).toBe(0n);
    const b = map(fx, id, buf + 0x123n, 0x100n, 0n, RW);
    expect(b % BP).toBe(0x123n);
    const areas = iommufdGetIoas(fx.ctx, id).iopt.areas();
    expect(areas).toHaveLength(2);
    expect(areas.every((x) => x.iova >= BP)).toBe(true);
  });

  it('READABLE / WRITEABLE become IOMMU_READ / IOMMU_WRITE, always with IOMMU_CACHE', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 2);
    map(fx, id, buf, BP, 0x1000n, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE);
    map(fx, id, buf + BP, BP, 0x2000n, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE);
    const [r, w] = iommufdGetIoas(fx.ctx, id).iopt.areas();
    expect(r?.iommuProt).toBe(IOMMU_CACHE | IOMMU_READ);
    expect(r?.pages.writable).toBe(false);
    expect(w?.iommuProt).toBe(IOMMU_CACHE | IOMMU_WRITE);
    expect(w?.pages.writable).toBe(true);
  });

  it('pins and charges once mapped with a domain present; unmap returns both', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const iopt = iommufdGetIoas(fx.ctx, id).iopt;
    const dom = new FakeDomain();
    iopt.tableAddDomain(dom);
    const buf = userBuffer(fx.proc, 3);
    map(fx, id, buf, 3n * BP, 0x40_0000n);
    for (let i = 0; i < 3; i++) {
      expect(pinsAt(fx.proc, buf + BigInt(i * P))).toBe(1);
      expect(dom.pa(0x40_0000n + BigInt(i * P))).toBe(BigInt(userPa(fx.proc, buf + BigInt(i * P)) as number));
    }
    expect(fx.proc.machine.userLockedVm(fx.proc.uid)).toBe(3);
    expect(fx.proc.mm.pinnedVm).toBe(3);
    const u = unmapCmd(id, 0x40_0000n, 3n * BP);
    fx.file.ioctl(IOMMU_IOAS_UNMAP, u);
    expect(u.length).toBe(3n * BP);
    expect(pinsAt(fx.proc, buf)).toBe(0);
    expect(fx.proc.machine.userLockedVm(fx.proc.uid)).toBe(0);
    expect(fx.proc.mm.pinnedVm).toBe(0);
    expect(dom.entries.size).toBe(0);
    iopt.tableRemoveDomain(dom);
  });

  it('the context account mode MM upgrades the pages and charges the mm', () => {
    const fx = setup({ capabilities: [] }, IOPT_PAGES_ACCOUNT_MM);
    const id = ioasAlloc(fx);
    const iopt = iommufdGetIoas(fx.ctx, id).iopt;
    const dom = new FakeDomain();
    iopt.tableAddDomain(dom);
    const buf = userBuffer(fx.proc, 2);
    map(fx, id, buf, 2n * BP, 0x1_0000n);
    expect(iopt.areas()[0]?.pages.accountMode).toBe(IOPT_PAGES_ACCOUNT_MM);
    expect(fx.proc.mm.lockedVm).toBe(2);
    expect(fx.proc.machine.userLockedVm(fx.proc.uid)).toBe(0);
    fx.file.ioctl(IOMMU_IOAS_UNMAP, unmapCmd(id, 0n, U64_MAX));
    expect(fx.proc.mm.lockedVm).toBe(0);
    iopt.tableRemoveDomain(dom);
  });

  it('pointer form returns the IOVA in user memory', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 1);
    const r = callPtr(fx, IOMMU_IOAS_MAP, iommuIoasMapStruct, mapCmd(id, buf, BP, 0n, RW));
    expect(r.errno).toBeUndefined();
    expect(r.out.iova).toBe(iommufdGetIoas(fx.ctx, id).iopt.areas()[0]?.iova);
    const bad = callPtr(fx, IOMMU_IOAS_MAP, iommuIoasMapStruct, mapCmd(id, buf, BP, 0x77n, 0));
    expect(bad.errno).toBe('EINVAL');
    expect(bad.out.iova).toBe(0x77n);
  });

  it('generic checks in order: EOPNOTSUPP, EOVERFLOW, EINVAL (prot), ENOENT', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 2);
    const bufs = [{ va: buf, pages: 2 }];
    const m = (c: object) => () => fx.file.ioctl(IOMMU_IOAS_MAP, c);
    expectNoChange(fx, 'EOPNOTSUPP', m(mapCmd(99, buf, BP, U64_MAX, FIXED_RW | 8)), bufs);
    expectNoChange(fx, 'EOPNOTSUPP', m({ ...mapCmd(99, buf, BP, U64_MAX, 0), __reserved: 1 }), bufs);
    expectNoChange(fx, 'EOVERFLOW', m(mapCmd(99, buf, BP, U64_MAX, 0)), bufs);
    expectNoChange(fx, 'EOVERFLOW', m(mapCmd(99, buf, U64_MAX, 0n, 0)), bufs);
    expectNoChange(fx, 'EINVAL', m(mapCmd(99, buf, BP, 0n, IOMMU_IOAS_MAP_FIXED_IOVA)), bufs);
    expectNoChange(fx, 'ENOENT', m(mapCmd(99, buf, 0n, 0n, FIXED_RW)), bufs);
    expectNoChange(fx, 'ENOENT', m(mapCmd(accessId(fx), buf, BP, 0n)), bufs);
    // iova U64_MAX - 1 passes the first checks and then wraps.
    expectNoChange(fx, 'EOVERFLOW', m(mapCmd(id, buf, 2n * BP, U64_MAX - 1n)), bufs);
    void id;
  });

  it('engine checks: length, user_va overflow, reserved, overlap, alignment, ENOSPC', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const iopt = iommufdGetIoas(fx.ctx, id).iopt;
    const buf = userBuffer(fx.proc, 4);
    const bufs = [{ va: buf, pages: 4 }];
    map(fx, id, buf, 2n * BP, 0x10_0000n);
    iopt.reserveIova(0x20_0000n, 0x20_ffffn, null);
    const m = (c: object) => () => fx.file.ioctl(IOMMU_IOAS_MAP, c);
    expectNoChange(fx, 'EINVAL', m(mapCmd(id, buf, 0n, 0x30_0000n)), bufs);
    expectNoChange(fx, 'EOVERFLOW', m(mapCmd(id, U64_MAX - 0x10n, BP, 0x30_0000n)), bufs);
    expectNoChange(fx, 'EINVAL', m(mapCmd(id, buf, BP, 0x20_f000n)), bufs); // reserved
    expectNoChange(fx, 'EEXIST', m(mapCmd(id, buf, 2n * BP, 0x10_1000n)), bufs); // overlap
    // Raise the alignment with a pinning access: misaligned length, IOVA and user offset.
    iommufdAccessAttach(iommufdAccessCreate(fx.ctx, { needsPinPages: true, unmap: () => {} }), id);
    expectNoChange(fx, 'EINVAL', m(mapCmd(id, buf, 0x800n, 0x40_0000n)), bufs);
    expectNoChange(fx, 'EINVAL', m(mapCmd(id, buf, BP, 0x40_0800n)), bufs);
    expectNoChange(fx, 'EINVAL', m(mapCmd(id, buf + 0x800n, BP, 0x40_0000n)), bufs);
    // Automatic allocation: derived alignment below iova_alignment, then no hole at all.
    expectNoChange(fx, 'EINVAL', m(mapCmd(id, buf + 0x800n, BP, 0n, RW)), bufs);
    iopt.setAllowIova([{ start: 0x50_0000n, last: 0x50_1fffn }]);
    expectNoChange(fx, 'ENOSPC', m(mapCmd(id, buf, 4n * BP, 0n, RW)), bufs);
    // Length at or above ULONG_MAX / 2 in automatic mode.
    expectNoChange(fx, 'EOVERFLOW', m(mapCmd(id, 0n, 1n << 63n, 0n, RW)), bufs);
  });

  it('with a domain: unmapped user memory → EFAULT, RLIMIT_MEMLOCK → ENOMEM, nothing left', () => {
    const fx = setup({ capabilities: [], rlimitMemlock: 2 * P });
    const id = ioasAlloc(fx);
    const iopt = iommufdGetIoas(fx.ctx, id).iopt;
    const dom = new FakeDomain();
    iopt.tableAddDomain(dom);
    const buf = userBuffer(fx.proc, 3);
    const bufs = [{ va: buf, pages: 3 }];
    const hole = fx.proc.mmap(BigInt(2 * P), PROT_READ | PROT_WRITE, PRIV);
    fx.proc.munmap(hole, BigInt(2 * P));
    expectNoChange(fx, 'EFAULT', () => map(fx, id, hole, BP, 0x1000n), bufs, [dom]);
    expectNoChange(fx, 'ENOMEM', () => map(fx, id, buf, 3n * BP, 0x1000n), bufs, [dom]);
    expect(dom.entries.size).toBe(0);
    map(fx, id, buf, 2n * BP, 0x1000n);
    expect(fx.proc.machine.userLockedVm(fx.proc.uid)).toBe(2);
    fx.file.ioctl(IOMMU_IOAS_UNMAP, unmapCmd(id, 0n, U64_MAX));
    iopt.tableRemoveDomain(dom);
  });
});

describe('IOMMU_IOAS_MAP_FILE', () => {
  const cmd = (ioasId: number, fd: number, flags = FIXED_RW, length = BP, iova = 0n) => ({
    size: 40,
    flags,
    ioas_id: ioasId,
    fd,
    start: 0n,
    length,
    iova,
  });

  it('checks in order; every descriptor is EBADF after the IOAS lookup (no memfd in the model)', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const f = (c: object) => () => fx.file.ioctl(IOMMU_IOAS_MAP_FILE, c);
    expectNoChange(fx, 'EOPNOTSUPP', f(cmd(99, -1, FIXED_RW | 0x10, U64_MAX)));
    expectNoChange(fx, 'EOVERFLOW', f(cmd(99, -1, 0, U64_MAX)));
    expectNoChange(fx, 'EOVERFLOW', f(cmd(99, -1, 0, BP, U64_MAX)));
    expectNoChange(fx, 'EINVAL', f(cmd(99, -1, IOMMU_IOAS_MAP_FIXED_IOVA)));
    expectNoChange(fx, 'ENOENT', f(cmd(99, -1)));
    expectNoChange(fx, 'EBADF', f(cmd(id, -1)));
    expectNoChange(fx, 'EBADF', f(cmd(id, 500)));
    expectNoChange(fx, 'EBADF', f(cmd(id, fx.file.fd)));
  });
});

describe('IOMMU_IOAS_COPY', () => {
  it('shares the pages: no new pin or charge, the destination domain sees the same PAs', () => {
    const fx = setup();
    const src = ioasAlloc(fx);
    const dst = ioasAlloc(fx);
    const d1 = new FakeDomain();
    const d2 = new FakeDomain();
    iommufdGetIoas(fx.ctx, src).iopt.tableAddDomain(d1);
    iommufdGetIoas(fx.ctx, dst).iopt.tableAddDomain(d2);
    const buf = userBuffer(fx.proc, 4);
    map(fx, src, buf, 4n * BP, 0x10_0000n);
    expect(fx.proc.machine.userLockedVm(fx.proc.uid)).toBe(4);
    const c = copyCmd(dst, src, 0x10_1000n, 2n * BP, 0x80_0000n);
    fx.file.ioctl(IOMMU_IOAS_COPY, c);
    expect(c.dst_iova).toBe(0x80_0000n);
    expect(fx.proc.machine.userLockedVm(fx.proc.uid)).toBe(4);
    expect(pinsAt(fx.proc, buf + BP)).toBe(1);
    expect(d2.pa(0x80_0000n)).toBe(d1.pa(0x10_1000n));
    expect(d2.pa(0x80_1000n)).toBe(d1.pa(0x10_2000n));
    const srcArea = iommufdGetIoas(fx.ctx, src).iopt.areas()[0];
    expect(iommufdGetIoas(fx.ctx, dst).iopt.areas()[0]?.pages).toBe(srcArea?.pages);
    fx.file.ioctl(IOMMU_IOAS_UNMAP, unmapCmd(src, 0n, U64_MAX));
    expect(pinsAt(fx.proc, buf + BP)).toBe(1); // still held for dst
    expect(pinsAt(fx.proc, buf)).toBe(0);
    fx.file.ioctl(IOMMU_IOAS_UNMAP, unmapCmd(dst, 0n, U64_MAX));
    expect(pinsAt(fx.proc, buf + BP)).toBe(0);
    expect(fx.proc.machine.userLockedVm(fx.proc.uid)).toBe(0);
    iommufdGetIoas(fx.ctx, src).iopt.tableRemoveDomain(d1);
    iommufdGetIoas(fx.ctx, dst).iopt.tableRemoveDomain(d2);
  });

  it('a range across two adjacent areas becomes two areas; same-IOAS copy and IOVA 0 are allowed', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 4);
    map(fx, id, buf, 2n * BP, 0x10_0000n);
    map(fx, id, buf + 2n * BP, 2n * BP, 0x10_2000n);
    fx.file.ioctl(IOMMU_IOAS_COPY, copyCmd(id, id, 0x10_1000n, 2n * BP, 0n));
    const areas = iommufdGetIoas(fx.ctx, id).iopt.areas();
    expect(areas.map((a) => [a.iova, a.length])).toEqual([
      [0n, BP],
      [BP, BP],
      [0x10_0000n, 2n * BP],
      [0x10_2000n, 2n * BP],
    ]);
    // Automatic destination, pointer form.
    const r = callPtr(fx, IOMMU_IOAS_COPY, iommuIoasCopyStruct, copyCmd(id, id, 0x10_0000n, BP, 0n, RW));
    expect(r.errno).toBeUndefined();
    expect(r.out.dst_iova).toBeGreaterThanOrEqual(BP);
    expect(iommufdGetIoas(fx.ctx, id).iopt.areas()).toHaveLength(5);
  });

  it('errnos in order, each without side effects', () => {
    const fx = setup();
    const src = ioasAlloc(fx);
    const dst = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 4);
    const bufs = [{ va: buf, pages: 4 }];
    map(fx, src, buf, 2n * BP, 0x10_0000n);
    map(fx, src, buf + 2n * BP, BP, 0x20_0000n, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE);
    map(fx, dst, buf, BP, 0x30_0000n);
    const c = (x: object) => () => fx.file.ioctl(IOMMU_IOAS_COPY, x);
    expectNoChange(
      fx,
      'EOPNOTSUPP',
      c(copyCmd(99, 99, U64_MAX, 0n, 0n, FIXED_RW | MOCK_FLAGS_ACCESS_SYZ)),
      bufs,
    );
    expectNoChange(fx, 'EOVERFLOW', c(copyCmd(99, 99, 0n, U64_MAX, 0n, 0)), bufs);
    expectNoChange(fx, 'EOVERFLOW', c(copyCmd(99, 99, U64_MAX, BP, 0n, 0)), bufs);
    expectNoChange(fx, 'EOVERFLOW', c(copyCmd(99, 99, 0n, BP, U64_MAX, 0)), bufs);
    expectNoChange(fx, 'EINVAL', c(copyCmd(99, 99, 0n, BP, 0n, IOMMU_IOAS_MAP_FIXED_IOVA)), bufs);
    expectNoChange(fx, 'ENOENT', c(copyCmd(99, 99, 0n, 0n)), bufs); // src lookup before length
    expectNoChange(fx, 'EINVAL', c(copyCmd(99, src, 0x10_0000n, 0n)), bufs);
    expectNoChange(fx, 'EOVERFLOW', c(copyCmd(99, src, U64_MAX - 1n, 4n)), bufs);
    expectNoChange(fx, 'ENOENT', c(copyCmd(99, src, 0x10_1000n, 2n * BP)), bufs); // gap after the area
    expectNoChange(fx, 'ENOENT', c(copyCmd(99, src, 0x10_0000n, BP)), bufs); // dst lookup
    expectNoChange(fx, 'ENOENT', c(copyCmd(accessId(fx), src, 0x10_0000n, BP)), bufs);
    expectNoChange(fx, 'EEXIST', c(copyCmd(dst, src, 0x10_0000n, BP, 0x30_0000n)), bufs);
    expectNoChange(fx, 'EPERM', c(copyCmd(dst, src, 0x20_0000n, BP, 0x40_0000n)), bufs); // RO pages
    // Read-only copy of the read-only map works.
    fx.file.ioctl(
      IOMMU_IOAS_COPY,
      copyCmd(dst, src, 0x20_0000n, BP, 0x40_0000n, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE),
    );
    const src1 = iommufdGetIoas(fx.ctx, src).iopt.areas()[0];
    expect(src1?.pages.refcount).toBe(1);
  });

  it('selftest contexts reinterpret src_iova as {nth_area, offset} with MOCK_FLAGS_ACCESS_SYZ', () => {
    const env = makeEnv({ capabilities: [] });
    const ctx = new IommufdCtxClass({ iommu: env.sub, process: env.proc, selftest: true });
    const table = createIoctlTable({ ops: ioasIoctlOps });
    const mem = uaccessUserMemory(env.proc);
    const ioctl = (req: number, arg: object) => dispatchIoctl(table, req, arg, mem, ctx);
    const a = { size: 12, flags: 0, out_ioas_id: 0 };
    ioctl(IOMMU_IOAS_ALLOC, a);
    const buf = userBuffer(env.proc, 4);
    ioctl(IOMMU_IOAS_MAP, mapCmd(a.out_ioas_id, buf, BP, 0x10_0000n));
    ioctl(IOMMU_IOAS_MAP, mapCmd(a.out_ioas_id, buf + BP, 2n * BP, 0x20_0000n));
    const syz = 1n | (0x1000n << 32n); // second area, one page in
    const c = copyCmd(a.out_ioas_id, a.out_ioas_id, syz, BP, 0x90_0000n, FIXED_RW | MOCK_FLAGS_ACCESS_SYZ);
    ioctl(IOMMU_IOAS_COPY, c);
    const copied = iommufdGetIoas(ctx, a.out_ioas_id)
      .iopt.areas()
      .find((x) => x.iova === 0x90_0000n);
    expect(copied?.startByte(0x90_0000n)).toBe(BP); // one page into the second area's pages
    expect(copied?.pages).toBe(iommufdGetIoas(ctx, a.out_ioas_id).iopt.areas()[1]?.pages);
    expect(c.flags).toBe(FIXED_RW);
    expect(c.src_iova).toBe(0x20_1000n);
  });
});

describe('IOMMU_IOAS_UNMAP', () => {
  it('removes whole areas across gaps and reports the bytes (pointer form)', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 4);
    map(fx, id, buf, BP, 0x10_0000n);
    map(fx, id, buf + BP, 2n * BP, 0x20_0000n);
    map(fx, id, buf + 3n * BP, BP, 0x30_0000n);
    const r = callPtr(fx, IOMMU_IOAS_UNMAP, iommuIoasUnmapStruct, unmapCmd(id, 0x10_0000n, 0x10_2000n));
    expect(r.errno).toBeUndefined();
    expect(r.out.length).toBe(3n * BP);
    expect(
      iommufdGetIoas(fx.ctx, id)
        .iopt.areas()
        .map((a) => a.iova),
    ).toEqual([0x30_0000n]);
  });

  it('iova 0 with length U64_MAX unmaps everything, and succeeds on an empty IOAS', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 2);
    map(fx, id, buf, BP, 0n);
    map(fx, id, buf + BP, BP, U64_MAX - BP + 1n);
    const all = unmapCmd(id, 0n, U64_MAX);
    fx.file.ioctl(IOMMU_IOAS_UNMAP, all);
    expect(all.length).toBe(2n * BP);
    const again = unmapCmd(id, 0n, U64_MAX);
    fx.file.ioctl(IOMMU_IOAS_UNMAP, again);
    expect(again.length).toBe(0n);
  });

  it('errnos: ENOENT lookup first, EOVERFLOW, EINVAL, ENOENT for partial areas or nothing', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 4);
    const bufs = [{ va: buf, pages: 4 }];
    map(fx, id, buf, 2n * BP, 0x10_0000n);
    const u = (x: object) => () => fx.file.ioctl(IOMMU_IOAS_UNMAP, x);
    expectNoChange(fx, 'ENOENT', u(unmapCmd(99, 0n, U64_MAX)), bufs);
    expectNoChange(fx, 'ENOENT', u(unmapCmd(accessId(fx), 0x10_0000n, BP)), bufs);
    expectNoChange(fx, 'EOVERFLOW', u(unmapCmd(id, U64_MAX, 1n)), bufs);
    expectNoChange(fx, 'EOVERFLOW', u(unmapCmd(id, 1n, U64_MAX)), bufs);
    expectNoChange(fx, 'EINVAL', u(unmapCmd(id, 0x10_0000n, 0n)), bufs);
    expectNoChange(fx, 'EOVERFLOW', u(unmapCmd(id, U64_MAX - 1n, 4n)), bufs);
    expectNoChange(fx, 'ENOENT', u(unmapCmd(id, 0x10_0000n, BP)), bufs); // would split
    expectNoChange(fx, 'ENOENT', u(unmapCmd(id, 0x10_1000n, 2n * BP)), bufs);
    expectNoChange(fx, 'ENOENT', u(unmapCmd(id, 0x50_0000n, BP)), bufs); // nothing there
    const area = iommufdGetIoas(fx.ctx, id).iopt.areas()[0];
    if (area === undefined) throw new Error('no area');
    area.numLocks = 1;
    expectNoChange(fx, 'EBUSY', u(unmapCmd(id, 0x10_0000n, 2n * BP)), bufs);
    area.numLocks = 0;
  });

  it('areas removed before a later failure stay removed; nothing is written back', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 4);
    map(fx, id, buf, BP, 0x10_0000n);
    map(fx, id, buf + BP, 2n * BP, 0x20_0000n);
    const c = unmapCmd(id, 0x10_0000n, 0x10_1000n);
    expect(errnoOf(() => fx.file.ioctl(IOMMU_IOAS_UNMAP, c))).toBe('ENOENT');
    expect(c.length).toBe(0x10_1000n);
    expect(
      iommufdGetIoas(fx.ctx, id)
        .iopt.areas()
        .map((a) => a.iova),
    ).toEqual([0x20_0000n]);
  });
});

describe('IOMMU_OPTION', () => {
  it('RLIMIT_MODE GET: 0 for /dev/iommu, 1 for a context in MM mode', () => {
    const fx = setup();
    const g = optionCmd(IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, 7n);
    fx.file.ioctl(IOMMU_OPTION, g);
    expect(g.val64).toBe(0n);
    const mm = setup({ capabilities: [] }, IOPT_PAGES_ACCOUNT_MM);
    const g2 = optionCmd(IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0, 7n);
    mm.file.ioctl(IOMMU_OPTION, g2);
    expect(g2.val64).toBe(1n);
  });

  it('RLIMIT_MODE SET with CAP_SYS_RESOURCE on an empty context; pointer form GET', () => {
    const fx = setup({ capabilities: [CAP.SYS_RESOURCE] });
    fx.file.ioctl(IOMMU_OPTION, optionCmd(IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 1n));
    expect(fx.ctx.accountMode).toBe(IOPT_PAGES_ACCOUNT_MM);
    const r = callPtr(
      fx,
      IOMMU_OPTION,
      iommuOptionStruct,
      optionCmd(IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0),
    );
    expect(r.errno).toBeUndefined();
    expect(r.out.val64).toBe(1n);
    fx.file.ioctl(IOMMU_OPTION, optionCmd(IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 0n));
    expect(fx.ctx.accountMode).toBe(IOPT_PAGES_ACCOUNT_USER);
  });

  it('RLIMIT_MODE errnos in order', () => {
    const noCap = setup();
    const o = (fx: Fx, x: object) => () => fx.file.ioctl(IOMMU_OPTION, x);
    const R = IOMMU_OPTION_RLIMIT_MODE;
    expectNoChange(noCap, 'EOPNOTSUPP', o(noCap, optionCmd(R, IOMMU_OPTION_OP_SET, 0, 1n, 1)));
    expectNoChange(noCap, 'EOPNOTSUPP', o(noCap, optionCmd(7, IOMMU_OPTION_OP_GET, 0)));
    expectNoChange(noCap, 'EOPNOTSUPP', o(noCap, optionCmd(R, IOMMU_OPTION_OP_GET, 1)));
    expectNoChange(noCap, 'EOPNOTSUPP', o(noCap, optionCmd(R, 2, 0)));
    expectNoChange(noCap, 'EPERM', o(noCap, optionCmd(R, IOMMU_OPTION_OP_SET, 0, 1n)));
    ioasAlloc(noCap);
    expectNoChange(noCap, 'EPERM', o(noCap, optionCmd(R, IOMMU_OPTION_OP_SET, 0, 9n)));

    const fx = setup({ capabilities: [CAP.SYS_RESOURCE] });
    expectNoChange(fx, 'EINVAL', o(fx, optionCmd(R, IOMMU_OPTION_OP_SET, 0, 2n)));
    const acc = iommufdAccessCreate(fx.ctx, { needsPinPages: false });
    expectNoChange(fx, 'EBUSY', o(fx, optionCmd(R, IOMMU_OPTION_OP_SET, 0, 1n)));
    fx.ctx.objectDestroyUser(acc);
    ioasAlloc(fx);
    expectNoChange(fx, 'EBUSY', o(fx, optionCmd(R, IOMMU_OPTION_OP_SET, 0, 2n)));
    // A failed GET does not write val64.
    const g = optionCmd(R, 5, 0, 0x55n);
    expect(errnoOf(o(fx, g))).toBe('EOPNOTSUPP');
    expect(g.val64).toBe(0x55n);
  });

  it('HUGE_PAGES GET/SET per IOAS changes the IOVA alignment', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const other = ioasAlloc(fx);
    const H = IOMMU_OPTION_HUGE_PAGES;
    const g = optionCmd(H, IOMMU_OPTION_OP_GET, id);
    fx.file.ioctl(IOMMU_OPTION, g);
    expect(g.val64).toBe(1n);
    fx.file.ioctl(IOMMU_OPTION, optionCmd(H, IOMMU_OPTION_OP_SET, id, 0n));
    fx.file.ioctl(IOMMU_OPTION, g);
    expect(g.val64).toBe(0n);
    const rc = rangesCmd(id, 0, 0n);
    expect(errnoOf(() => fx.file.ioctl(IOMMU_IOAS_IOVA_RANGES, rc))).toBe('EMSGSIZE');
    expect(rc.out_iova_alignment).toBe(BP);
    expect(iommufdGetIoas(fx.ctx, other).iopt.iovaAlignment).toBe(1);
    fx.file.ioctl(IOMMU_OPTION, optionCmd(H, IOMMU_OPTION_OP_SET, id, 0n)); // again: no-op
    fx.file.ioctl(IOMMU_OPTION, optionCmd(H, IOMMU_OPTION_OP_SET, id, 1n));
    expect(iommufdGetIoas(fx.ctx, id).iopt.iovaAlignment).toBe(1);
    expect(iommufdGetIoas(fx.ctx, id).iopt.largePagesDisabled).toBe(false);
  });

  it('HUGE_PAGES errnos in order', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const H = IOMMU_OPTION_HUGE_PAGES;
    const buf = userBuffer(fx.proc, 1);
    const o = (x: object) => () => fx.file.ioctl(IOMMU_OPTION, x);
    expectNoChange(fx, 'EOPNOTSUPP', o(optionCmd(H, IOMMU_OPTION_OP_GET, 99, 0n, 1)));
    expectNoChange(fx, 'ENOENT', o(optionCmd(H, 9, 0)));
    expectNoChange(fx, 'ENOENT', o(optionCmd(H, 9, accessId(fx))));
    expectNoChange(fx, 'EOPNOTSUPP', o(optionCmd(H, 9, id)));
    expectNoChange(fx, 'EINVAL', o(optionCmd(H, IOMMU_OPTION_OP_SET, id, 2n)));
    map(fx, id, buf, 0x100n, 0x1000n); // not page sized
    expectNoChange(fx, 'EADDRINUSE', o(optionCmd(H, IOMMU_OPTION_OP_SET, id, 0n)), [{ va: buf, pages: 1 }]);
    fx.file.ioctl(IOMMU_IOAS_UNMAP, unmapCmd(id, 0n, U64_MAX));
    const dom = new FakeDomain();
    const iopt = iommufdGetIoas(fx.ctx, id).iopt;
    iopt.tableAddDomain(dom);
    map(fx, id, buf, BP, 0x1000n);
    const bufs = [{ va: buf, pages: 1 }];
    expectNoChange(fx, 'EINVAL', o(optionCmd(H, IOMMU_OPTION_OP_SET, id, 0n)), bufs, [dom]);
    fx.file.ioctl(IOMMU_IOAS_UNMAP, unmapCmd(id, 0n, U64_MAX));
    iopt.tableRemoveDomain(dom);
  });
});

describe('IOMMU_VFIO_IOAS', () => {
  const v = (op: number, ioasId = 0, reserved = 0) => ({
    size: 12,
    ioas_id: ioasId,
    op,
    __reserved: reserved,
  });

  it('SET, GET, CLEAR; CLEAR keeps the IOAS; DESTROY of the compat IOAS clears it', () => {
    const fx = setup();
    const a = ioasAlloc(fx);
    const b = ioasAlloc(fx);
    fx.file.ioctl(IOMMU_VFIO_IOAS, v(IOMMU_VFIO_IOAS_SET, b));
    const g = v(IOMMU_VFIO_IOAS_GET);
    fx.file.ioctl(IOMMU_VFIO_IOAS, g);
    expect(g.ioas_id).toBe(b);
    fx.file.ioctl(IOMMU_VFIO_IOAS, v(IOMMU_VFIO_IOAS_CLEAR));
    expect(errnoOf(() => fx.file.ioctl(IOMMU_VFIO_IOAS, v(IOMMU_VFIO_IOAS_GET)))).toBe('ENODEV');
    expect(fx.ctx.peekObject(b)).toBeDefined();
    fx.file.ioctl(IOMMU_VFIO_IOAS, v(IOMMU_VFIO_IOAS_CLEAR)); // clear twice is fine
    fx.file.ioctl(IOMMU_VFIO_IOAS, v(IOMMU_VFIO_IOAS_SET, a));
    fx.file.ioctl(IOMMU_DESTROY, { size: 8, id: a });
    expect(fx.ctx.vfioIoas).toBeNull();
    expect(errnoOf(() => fx.file.ioctl(IOMMU_VFIO_IOAS, v(IOMMU_VFIO_IOAS_GET)))).toBe('ENODEV');
  });

  it('errnos, and only GET writes back (pointer forms)', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const o = (x: object) => () => fx.file.ioctl(IOMMU_VFIO_IOAS, x);
    expectNoChange(fx, 'EOPNOTSUPP', o(v(IOMMU_VFIO_IOAS_SET, id, 1)));
    expectNoChange(fx, 'ENODEV', o(v(IOMMU_VFIO_IOAS_GET)));
    expectNoChange(fx, 'ENOENT', o(v(IOMMU_VFIO_IOAS_SET, 42)));
    expectNoChange(fx, 'ENOENT', o(v(IOMMU_VFIO_IOAS_SET, accessId(fx))));
    expectNoChange(fx, 'EOPNOTSUPP', o(v(3, id)));
    // SET from a read-only struct works: nothing is copied out.
    const ro = fx.proc.mmap(BigInt(P), PROT_READ | PROT_WRITE, PRIV);
    fx.proc.write(ro, encodeUapi(iommuVfioIoasStruct, v(IOMMU_VFIO_IOAS_SET, id)));
    fx.proc.mprotect(ro, BigInt(P), PROT_READ);
    fx.file.ioctl(IOMMU_VFIO_IOAS, ro);
    expect(fx.ctx.vfioIoas?.id).toBe(id);
    // GET from a read-only struct faults on the copy-out.
    const ro2 = fx.proc.mmap(BigInt(P), PROT_READ | PROT_WRITE, PRIV);
    fx.proc.write(ro2, encodeUapi(iommuVfioIoasStruct, v(IOMMU_VFIO_IOAS_GET)));
    fx.proc.mprotect(ro2, BigInt(P), PROT_READ);
    expect(errnoOf(() => fx.file.ioctl(IOMMU_VFIO_IOAS, ro2))).toBe('EFAULT');
    const r = callPtr(fx, IOMMU_VFIO_IOAS, iommuVfioIoasStruct, v(IOMMU_VFIO_IOAS_GET, 0));
    expect(r.errno).toBeUndefined();
    expect(r.out.ioas_id).toBe(id);
  });
});

describe('IOMMU_IOAS_CHANGE_PROCESS', () => {
  it('reserved → EOPNOTSUPP; success without areas; EINVAL with a (non-file) area', () => {
    const fx = setup();
    const c =
      (reserved = 0) =>
      () =>
        fx.file.ioctl(IOMMU_IOAS_CHANGE_PROCESS, { size: 8, __reserved: reserved });
    expectNoChange(fx, 'EOPNOTSUPP', c(1));
    c()();
    const id = ioasAlloc(fx);
    c()();
    const buf = userBuffer(fx.proc, 1);
    map(fx, id, buf, BP, 0x1000n);
    expectNoChange(fx, 'EINVAL', c(), [{ va: buf, pages: 1 }]);
  });
});

describe('in-kernel access alignment seen through MAP', () => {
  it('an access pinning pages of an area keeps them pinned once', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 2);
    map(fx, id, buf, 2n * BP, 0x10_0000n);
    const acc = iommufdAccessCreate(fx.ctx, { needsPinPages: true, unmap: () => {} });
    iommufdAccessAttach(acc, id);
    const pas = iommufdAccessPinPages(acc, 0x10_0000n, 2n * BP, 0);
    expect(pas).toEqual([userPa(fx.proc, buf), userPa(fx.proc, buf + BP)]);
    expect(pinsAt(fx.proc, buf)).toBe(1);
  });
});
