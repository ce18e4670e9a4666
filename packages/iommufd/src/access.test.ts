// The in-kernel access API: create/attach/replace/detach/destroy, pins, byte-granular rw, the
// unmap callback on IOMMU_IOAS_UNMAP, EDEADLOCK, and the context reference an access holds.

import { errnoOf } from '@iommu-ts/base/testing';
import type { Process } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import {
  type IommufdAccess,
  type IommufdAccessOps,
  iommufdAccessAttach,
  iommufdAccessCreate,
  iommufdAccessDestroy,
  iommufdAccessDetach,
  iommufdAccessPinPages,
  iommufdAccessReplace,
  iommufdAccessRw,
  iommufdAccessUnpinPages,
} from './access.js';
import {
  BP,
  FakeDomain,
  makeEnv,
  P,
  pinsAt,
  snapshot,
  userBuffer,
  userPa,
} from './io-pagetable.test-helpers.js';
import { iommufdGetIoas, iommufdIoasAlloc } from './ioas.js';
import { Iommufd } from './iommufd.js';
import { IommufdCtx, IommufdObjectType } from './main.js';
import { IOMMUFD_ACCESS_RW_READ, IOMMUFD_ACCESS_RW_WRITE } from './pages.js';
import {
  IOMMU_DESTROY,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
} from './uapi.js';

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const FIXED_RW = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

function setup() {
  const env = makeEnv({ capabilities: [] });
  const file = Iommufd.open({ iommu: env.sub, process: env.proc });
  return { env, proc: env.proc, file, ctx: file.ctx };
}
type Fx = ReturnType<typeof setup>;

function ioasAlloc(fx: Fx): number {
  const cmd = { size: 12, flags: 0, out_ioas_id: 0 };
  fx.file.ioctl(IOMMU_IOAS_ALLOC, cmd);
  return cmd.out_ioas_id;
}

function map(fx: Fx, id: number, va: bigint, length: bigint, iova: bigint, flags = FIXED_RW): void {
  fx.file.ioctl(IOMMU_IOAS_MAP, { size: 40, flags, ioas_id: id, user_va: va, length, iova });
}

function unmap(fx: Fx, id: number, iova: bigint, length: bigint): bigint {
  const cmd = { size: 24, ioas_id: id, iova, length };
  fx.file.ioctl(IOMMU_IOAS_UNMAP, cmd);
  return cmd.length;
}

/** A driver that records its pins and unpins all of them (inside the range) on unmap. */
class Driver implements IommufdAccessOps {
  readonly needsPinPages = true;
  access!: IommufdAccess;
  pins: { iova: bigint; length: bigint }[] = [];
  calls: [bigint, bigint][] = [];
  cooperative = true;

  unmap(iova: bigint, length: bigint): void {
    this.calls.push([iova, length]);
    if (!this.cooperative) return;
    const last = iova + length - 1n;
    this.pins = this.pins.filter((p) => {
      if (p.iova + p.length - 1n < iova || p.iova > last) return true;
      iommufdAccessUnpinPages(this.access, p.iova, p.length);
      return false;
    });
  }

  pin(iova: bigint, length: bigint, flags = 0): number[] {
    const pas = iommufdAccessPinPages(this.access, iova, length, flags);
    this.pins.push({ iova, length });
    return pas;
  }
}

function driver(fx: Fx, ioasId?: number): Driver {
  const d = new Driver();
  d.access = iommufdAccessCreate(fx.ctx, d);
  if (ioasId !== undefined) iommufdAccessAttach(d.access, ioasId);
  return d;
}

function state(fx: Fx, ioasIds: number[], buffers: { va: bigint; pages: number }[]): unknown {
  return {
    objects: fx.ctx.listObjects().map((o) => `${o.id}:${o.type}:${o.users}`),
    ioas: ioasIds.map((id) => snapshot(iommufdGetIoas(fx.ctx, id).iopt, fx.proc, buffers)),
  };
}

function expectNoChange(
  fx: Fx,
  ioasIds: number[],
  buffers: { va: bigint; pages: number }[],
  errno: string,
  fn: () => unknown,
): void {
  const before = state(fx, ioasIds, buffers);
  expect(errnoOf(fn)).toBe(errno);
  expect(state(fx, ioasIds, buffers)).toEqual(before);
}

function lockedPages(proc: Process): number {
  return proc.machine.userLockedVm(proc.uid);
}

describe('create and destroy', () => {
  it('creates an ACCESS object held by the driver: users 2, DESTROY → EBUSY', () => {
    const fx = setup();
    ioasAlloc(fx);
    const d = driver(fx);
    expect(d.access.id).toBe(2);
    expect(d.access.type).toBe(IommufdObjectType.ACCESS);
    expect(d.access.users).toBe(2);
    expect(d.access.iovaAlignment).toBe(P);
    expect(fx.ctx.getObject(2, IommufdObjectType.ACCESS)).toBe(d.access);
    expect(errnoOf(() => fx.file.ioctl(IOMMU_DESTROY, { size: 8, id: 2 }))).toBe('EBUSY');
    const noPin = iommufdAccessCreate(fx.ctx, { needsPinPages: false });
    expect(noPin.iovaAlignment).toBe(1);
    iommufdAccessDestroy(d.access);
    expect(fx.ctx.peekObject(2)).toBeUndefined();
    expect(iommufdAccessCreate(fx.ctx, { needsPinPages: false }).id).toBe(2);
  });

  it('holds the context after the fd closes; destroying the access releases everything', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 3);
    map(fx, id, buf, 3n * BP, 0x10_0000n);
    const d = driver(fx, id);
    d.pin(0x10_0000n, 2n * BP, IOMMUFD_ACCESS_RW_WRITE);
    expect(lockedPages(fx.proc)).toBe(2);
    fx.file.close();
    expect(fx.ctx.isReleased).toBe(false);
    expect(fx.ctx.listObjects().map((o) => o.id)).toEqual([id, d.access.id]);
    expect(pinsAt(fx.proc, buf)).toBe(1);
    expect(d.calls).toEqual([]);
    iommufdAccessDestroy(d.access);
    expect(d.calls).toEqual([[0n, U64_MAX]]);
    expect(fx.ctx.isReleased).toBe(true);
    expect(fx.ctx.objectCount).toBe(0);
    expect(pinsAt(fx.proc, buf)).toBe(0);
    expect(pinsAt(fx.proc, buf + BP)).toBe(0);
    expect(lockedPages(fx.proc)).toBe(0);
    expect(fx.proc.mm.pinnedVm).toBe(0);
    expect(fx.proc.mm.lockedVm).toBe(0);
  });

  it('no callback runs after destroy', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 1);
    map(fx, id, buf, BP, 0x10_0000n);
    const d = driver(fx, id);
    iommufdAccessDestroy(d.access);
    expect(d.calls).toHaveLength(1);
    expect(iommufdGetIoas(fx.ctx, id).users).toBe(1);
    expect(iommufdGetIoas(fx.ctx, id).iopt.accesses.size).toBe(0);
    unmap(fx, id, 0n, U64_MAX);
    expect(d.calls).toHaveLength(1);
  });
});

describe('attach, detach, replace', () => {
  it('attach takes an IOAS reference (DESTROY → EBUSY) and raises the alignment; detach undoes both', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const d = driver(fx, id);
    const ioas = iommufdGetIoas(fx.ctx, id);
    expect(d.access.ioas).toBe(ioas);
    expect(ioas.users).toBe(2);
    expect(ioas.iopt.iovaAlignment).toBe(P);
    expect([...ioas.iopt.accesses.values()]).toEqual([d.access]);
    expect(errnoOf(() => fx.file.ioctl(IOMMU_DESTROY, { size: 8, id }))).toBe('EBUSY');
    iommufdAccessDetach(d.access);
    expect(d.calls).toEqual([[0n, U64_MAX]]);
    expect(d.access.ioas).toBeNull();
    expect(ioas.users).toBe(1);
    expect(ioas.iopt.iovaAlignment).toBe(1);
    expect(ioas.iopt.accesses.size).toBe(0);
    iommufdAccessDetach(d.access); // detached: ignored
    expect(d.calls).toHaveLength(1);
    fx.file.ioctl(IOMMU_DESTROY, { size: 8, id });
    expect(fx.ctx.peekObject(id)).toBeUndefined();
  });

  it('attach errnos: ENOENT, EINVAL when attached, EADDRINUSE for a misaligned area', () => {
    const fx = setup();
    const a = ioasAlloc(fx);
    const b = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 1);
    map(fx, b, buf, 0x800n, 0x10_0000n);
    const d = driver(fx);
    const bufs = [{ va: buf, pages: 1 }];
    expectNoChange(fx, [a, b], bufs, 'ENOENT', () => iommufdAccessAttach(d.access, 77));
    expectNoChange(fx, [a, b], bufs, 'ENOENT', () => iommufdAccessAttach(d.access, d.access.id));
    expectNoChange(fx, [a, b], bufs, 'EADDRINUSE', () => iommufdAccessAttach(d.access, b));
    expect(d.access.ioas).toBeNull();
    iommufdAccessAttach(d.access, a);
    expectNoChange(fx, [a, b], bufs, 'EINVAL', () => iommufdAccessAttach(d.access, a));
    expect(d.calls).toEqual([]);
  });

  it('replace: old IOAS gets unmap(0, ULONG_MAX) and the unpins; references move', () => {
    const fx = setup();
    const a = ioasAlloc(fx);
    const b = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 2);
    map(fx, a, buf, 2n * BP, 0x10_0000n);
    map(fx, b, buf, 2n * BP, 0x20_0000n);
    const d = driver(fx, a);
    d.pin(0x10_0000n, 2n * BP);
    expect(pinsAt(fx.proc, buf)).toBe(1);
    const ia = iommufdGetIoas(fx.ctx, a);
    const ib = iommufdGetIoas(fx.ctx, b);
    iommufdAccessReplace(d.access, b);
    expect(d.calls).toEqual([[0n, U64_MAX]]);
    expect(d.pins).toEqual([]);
    expect(pinsAt(fx.proc, buf)).toBe(0);
    expect(ia.iopt.areas()[0]?.numAccesses).toBe(0);
    expect(ia.users).toBe(1);
    expect(ib.users).toBe(2);
    expect(ia.iopt.accesses.size).toBe(0);
    expect(ib.iopt.iovaAlignment).toBe(P);
    expect(ia.iopt.iovaAlignment).toBe(1);
    expect(d.pin(0x20_0000n, BP)).toEqual([userPa(fx.proc, buf)]);
    expect(errnoOf(() => iommufdAccessPinPages(d.access, 0x10_0000n, BP, 0))).toBe('ENOENT');
    // Same IOAS: nothing happens.
    iommufdAccessReplace(d.access, b);
    expect(d.calls).toHaveLength(1);
    expect(pinsAt(fx.proc, buf)).toBe(1);
  });

  it('replace errnos: ENOENT when detached or for a bad ID, EADDRINUSE; the access stays put', () => {
    const fx = setup();
    const a = ioasAlloc(fx);
    const b = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 1);
    map(fx, a, buf, BP, 0x10_0000n);
    map(fx, b, buf, 0x800n, 0x10_0000n);
    const d = driver(fx);
    const bufs = [{ va: buf, pages: 1 }];
    expectNoChange(fx, [a, b], bufs, 'ENOENT', () => iommufdAccessReplace(d.access, a));
    iommufdAccessAttach(d.access, a);
    d.pin(0x10_0000n, BP);
    expectNoChange(fx, [a, b], bufs, 'ENOENT', () => iommufdAccessReplace(d.access, 99));
    expectNoChange(fx, [a, b], bufs, 'EADDRINUSE', () => iommufdAccessReplace(d.access, b));
    expect(d.access.ioas?.id).toBe(a);
    expect(d.calls).toEqual([]);
    expect(pinsAt(fx.proc, buf)).toBe(1);
  });
});

describe('pin and unpin', () => {
  it('pins return the physical pages, charge once, and unpin returns everything', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 4);
    map(fx, id, buf, 4n * BP, 0x10_0000n);
    const d = driver(fx, id);
    const pas = d.pin(0x10_1000n, 2n * BP, IOMMUFD_ACCESS_RW_WRITE);
    expect(pas).toEqual([userPa(fx.proc, buf + BP), userPa(fx.proc, buf + 2n * BP)]);
    expect(pinsAt(fx.proc, buf)).toBe(0);
    expect(pinsAt(fx.proc, buf + BP)).toBe(1);
    expect(lockedPages(fx.proc)).toBe(2);
    expect(fx.proc.mm.pinnedVm).toBe(2);
    // A second, overlapping pin does not pin or charge again.
    expect(iommufdAccessPinPages(d.access, 0x10_1000n, BP, 0)).toEqual([pas[0]]);
    expect(pinsAt(fx.proc, buf + BP)).toBe(1);
    expect(lockedPages(fx.proc)).toBe(2);
    iommufdAccessUnpinPages(d.access, 0x10_1000n, BP);
    iommufdAccessUnpinPages(d.access, 0x10_1000n, 2n * BP);
    expect(pinsAt(fx.proc, buf + BP)).toBe(0);
    expect(pinsAt(fx.proc, buf + 2n * BP)).toBe(0);
    expect(lockedPages(fx.proc)).toBe(0);
    expect(fx.proc.mm.pinnedVm).toBe(0);
    // Ignored calls.
    iommufdAccessUnpinPages(d.access, 0x10_0000n, 0n);
    iommufdAccessUnpinPages(d.access, U64_MAX, 2n);
  });

  it('with a domain present the access reuses the domain pin', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const iopt = iommufdGetIoas(fx.ctx, id).iopt;
    const dom = new FakeDomain();
    iopt.tableAddDomain(dom);
    const buf = userBuffer(fx.proc, 2);
    map(fx, id, buf, 2n * BP, 0x10_0000n);
    expect(pinsAt(fx.proc, buf)).toBe(1);
    expect(lockedPages(fx.proc)).toBe(2);
    const d = driver(fx, id);
    expect(d.pin(0x10_0000n, 2n * BP)).toEqual([Number(dom.pa(0x10_0000n)), Number(dom.pa(0x10_1000n))]);
    expect(pinsAt(fx.proc, buf)).toBe(1);
    expect(lockedPages(fx.proc)).toBe(2);
    // The domain goes; the access keeps its pages pinned.
    iopt.tableRemoveDomain(dom);
    expect(pinsAt(fx.proc, buf)).toBe(1);
    expect(lockedPages(fx.proc)).toBe(2);
    expect(unmap(fx, id, 0n, U64_MAX)).toBe(2n * BP);
    expect(pinsAt(fx.proc, buf)).toBe(0);
    expect(lockedPages(fx.proc)).toBe(0);
  });

  it('errnos in order; partial work is undone', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 4);
    const bufs = [{ va: buf, pages: 4 }];
    map(fx, id, buf, 2n * BP, 0x10_0000n);
    map(fx, id, buf + 2n * BP, BP, 0x20_0000n, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE);
    map(fx, id, buf + 3n * BP, BP, 0x30_0000n, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE);
    const d = driver(fx);
    const pin =
      (iova: bigint, len: bigint, flags = 0) =>
      () =>
        iommufdAccessPinPages(d.access, iova, len, flags);
    expectNoChange(fx, [id], bufs, 'EINVAL', pin(0x10_0000n, 0n)); // before "not attached"
    expectNoChange(fx, [id], bufs, 'EOVERFLOW', pin(U64_MAX, 2n));
    expectNoChange(fx, [id], bufs, 'ENOENT', pin(0x10_0000n, BP));
    iommufdAccessAttach(d.access, id);
    expectNoChange(fx, [id], bufs, 'EINVAL', pin(0x10_0800n, BP)); // not on a page boundary
    expectNoChange(fx, [id], bufs, 'EPERM', pin(0x20_0000n, BP, IOMMUFD_ACCESS_RW_WRITE));
    expectNoChange(fx, [id], bufs, 'EPERM', pin(0x30_0000n, BP, IOMMUFD_ACCESS_RW_READ));
    expectNoChange(fx, [id], bufs, 'ENOENT', pin(0x10_0000n, 3n * BP)); // runs off into a gap
    expectNoChange(fx, [id], bufs, 'ENOENT', pin(0x40_0000n, BP));
    // The read-only area pins for reading.
    expect(d.pin(0x20_0000n, BP)).toEqual([userPa(fx.proc, buf + 2n * BP)]);
  });

  it('in a selftest context an access without needsPinPages or unmap cannot pin (EINVAL)', () => {
    const env = makeEnv({ capabilities: [] });
    const ctx = new IommufdCtx({ iommu: env.sub, process: env.proc, selftest: true });
    const ioas = iommufdIoasAlloc(ctx);
    const buf = userBuffer(env.proc, 1);
    ioas.iopt.mapUserPages(env.proc, 0x1000n, buf, BP, 3, 0);
    const noPin = iommufdAccessCreate(ctx, { needsPinPages: false, unmap: () => {} });
    iommufdAccessAttach(noPin, ioas.id);
    expect(errnoOf(() => iommufdAccessPinPages(noPin, 0x1000n, BP, 0))).toBe('EINVAL');
    const noUnmap = iommufdAccessCreate(ctx, { needsPinPages: true });
    iommufdAccessAttach(noUnmap, ioas.id);
    expect(errnoOf(() => iommufdAccessPinPages(noUnmap, 0x1000n, BP, 0))).toBe('EINVAL');
    expect(pinsAt(env.proc, buf)).toBe(0);
    // Outside a selftest context the same access may pin.
    const fx = setup();
    const id = ioasAlloc(fx);
    const b2 = userBuffer(fx.proc, 1);
    map(fx, id, b2, BP, 0x1000n);
    const plain = iommufdAccessCreate(fx.ctx, { needsPinPages: true });
    iommufdAccessAttach(plain, id);
    expect(iommufdAccessPinPages(plain, 0x1000n, BP, 0)).toEqual([userPa(fx.proc, b2)]);
    iommufdAccessUnpinPages(plain, 0x1000n, BP);
  });
});

describe('rw', () => {
  it('writes and reads byte-granular across page and area boundaries', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 4);
    map(fx, id, buf, 2n * BP, 0x10_0000n);
    map(fx, id, buf + 2n * BP, 2n * BP, 0x10_2000n);
    const d = driver(fx, id);
    const data = Uint8Array.from({ length: 20 }, (_, i) => 0xa0 + i);
    iommufdAccessRw(d.access, 0x10_1ff6n, data, IOMMUFD_ACCESS_RW_WRITE);
    expect([...fx.proc.read(buf + 2n * BP - 10n, 20)]).toEqual([...data]);
    expect([...fx.proc.read(buf + 2n * BP - 11n, 1)]).toEqual([0]);
    expect([...fx.proc.read(buf + 2n * BP + 10n, 1)]).toEqual([0]);
    fx.proc.write(buf + 0xffen, Uint8Array.of(1, 2, 3, 4));
    const out = new Uint8Array(4);
    iommufdAccessRw(d.access, 0x10_0ffen, out, IOMMUFD_ACCESS_RW_READ);
    expect([...out]).toEqual([1, 2, 3, 4]);
    // Through the slow path (another task's mm): the same bytes.
    const other = makeEnv().proc.mm;
    const out2 = new Uint8Array(20);
    iommufdAccessRw(d.access, 0x10_1ff6n, out2, IOMMUFD_ACCESS_RW_READ, other);
    expect([...out2]).toEqual([...data]);
    expect(pinsAt(fx.proc, buf + BP)).toBe(0);
    expect(lockedPages(fx.proc)).toBe(0);
  });

  it('errnos: EINVAL, EOVERFLOW, ENOENT unattached / gap, EPERM', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 2);
    const bufs = [{ va: buf, pages: 2 }];
    map(fx, id, buf, BP, 0x10_0000n, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE);
    map(fx, id, buf + BP, BP, 0x20_0000n, IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE);
    const d = driver(fx);
    const rw = (iova: bigint, n: number, flags: number) => () =>
      iommufdAccessRw(d.access, iova, new Uint8Array(n), flags);
    expectNoChange(fx, [id], bufs, 'EINVAL', rw(0x10_0000n, 0, 0));
    expectNoChange(fx, [id], bufs, 'EOVERFLOW', rw(U64_MAX, 2, 0));
    expectNoChange(fx, [id], bufs, 'ENOENT', rw(0x10_0000n, 4, 0));
    iommufdAccessAttach(d.access, id);
    expectNoChange(fx, [id], bufs, 'EPERM', rw(0x10_0000n, 4, IOMMUFD_ACCESS_RW_WRITE));
    expectNoChange(fx, [id], bufs, 'EPERM', rw(0x20_0000n, 4, IOMMUFD_ACCESS_RW_READ));
    expectNoChange(fx, [id], bufs, 'ENOENT', rw(0x10_0ffen, 4, IOMMUFD_ACCESS_RW_READ));
    expect([...fx.proc.read(buf, 2)]).toEqual([0, 0x5a]);
  });
});

describe('the unmap callback', () => {
  it('IOAS_UNMAP of an area with pins calls back with the area range; the driver unpins', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 4);
    map(fx, id, buf, 2n * BP, 0x10_0000n);
    map(fx, id, buf + 2n * BP, 2n * BP, 0x20_0000n);
    const d = driver(fx, id);
    d.pin(0x10_1000n, BP);
    // An area without pins of this access: no callback.
    expect(unmap(fx, id, 0x20_0000n, 2n * BP)).toBe(2n * BP);
    expect(d.calls).toEqual([]);
    expect(unmap(fx, id, 0x10_0000n, 2n * BP)).toBe(2n * BP);
    expect(d.calls).toEqual([[0x10_0000n, 2n * BP]]);
    expect(d.pins).toEqual([]);
    expect(pinsAt(fx.proc, buf + BP)).toBe(0);
    expect(lockedPages(fx.proc)).toBe(0);
    expect(iommufdGetIoas(fx.ctx, id).iopt.areas()).toEqual([]);
  });

  it('a driver that does not unpin makes the unmap fail with EDEADLOCK', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 2);
    map(fx, id, buf, 2n * BP, 0x10_0000n);
    const d = driver(fx, id);
    d.pin(0x10_0000n, BP);
    d.cooperative = false;
    const cmd = { size: 24, ioas_id: id, iova: 0x10_0000n, length: 2n * BP };
    expect(errnoOf(() => fx.file.ioctl(IOMMU_IOAS_UNMAP, cmd))).toBe('EDEADLOCK');
    expect(cmd.length).toBe(2n * BP);
    expect(d.calls.length).toBeGreaterThanOrEqual(100);
    expect(d.calls.every(([i, l]) => i === 0x10_0000n && l === 2n * BP)).toBe(true);
    const area = iommufdGetIoas(fx.ctx, id).iopt.areas()[0];
    expect(area?.iova).toBe(0x10_0000n);
    expect(pinsAt(fx.proc, buf)).toBe(1);
    // The area now refuses new access use.
    expect(errnoOf(() => iommufdAccessPinPages(d.access, 0x10_1000n, BP, 0))).toBe('EINVAL');
    expect(errnoOf(() => iommufdAccessRw(d.access, 0x10_0000n, new Uint8Array(1), 0))).toBe('EINVAL');
    // Once the driver lets go, the unmap goes through.
    d.cooperative = true;
    expect(unmap(fx, id, 0x10_0000n, 2n * BP)).toBe(2n * BP);
    expect(pinsAt(fx.proc, buf)).toBe(0);
  });

  it('close with attached accesses holding pins: everything returns once the accesses go', () => {
    const fx = setup();
    const a = ioasAlloc(fx);
    const b = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 4);
    map(fx, a, buf, 4n * BP, 0x10_0000n);
    fx.file.ioctl(IOMMU_IOAS_COPY, {
      size: 40,
      flags: FIXED_RW,
      dst_ioas_id: b,
      src_ioas_id: a,
      length: 2n * BP,
      dst_iova: 0x50_0000n,
      src_iova: 0x10_0000n,
    });
    const d1 = driver(fx, a);
    const d2 = driver(fx, b);
    d1.pin(0x10_0000n, 4n * BP, IOMMUFD_ACCESS_RW_WRITE);
    d2.pin(0x50_0000n, 2n * BP);
    expect(lockedPages(fx.proc)).toBe(4);
    expect(pinsAt(fx.proc, buf)).toBe(1);
    fx.file.close();
    expect(fx.ctx.objectCount).toBe(4);
    iommufdAccessDestroy(d1.access);
    expect(fx.ctx.isReleased).toBe(false);
    expect(pinsAt(fx.proc, buf)).toBe(1); // d2 still holds the shared first two pages
    expect(pinsAt(fx.proc, buf + 3n * BP)).toBe(0);
    expect(lockedPages(fx.proc)).toBe(2);
    iommufdAccessDestroy(d2.access);
    expect(fx.ctx.isReleased).toBe(true);
    expect(fx.ctx.objectCount).toBe(0);
    for (let i = 0; i < 4; i++) expect(pinsAt(fx.proc, buf + BigInt(i * P))).toBe(0);
    expect(lockedPages(fx.proc)).toBe(0);
    expect(fx.proc.mm.pinnedVm).toBe(0);
    expect(fx.proc.mm.lockedVm).toBe(0);
  });
});
