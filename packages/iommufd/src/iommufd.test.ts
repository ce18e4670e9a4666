// The iommufd file as a whole: open/close and the fd table, the generic ioctl rules for every
// command of the uAPI (cmd_length, cmd_fail), DESTROY rules, and context release returning every
// pin and accounted byte.

import { _IO, _IOC_NR } from '@iommu-ts/base';
import { errnoOf } from '@iommu-ts/base/testing';
import { PROT_READ, PROT_WRITE } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import {
  iommufdAccessAttach,
  iommufdAccessCreate,
  iommufdAccessDestroy,
  iommufdAccessPinPages,
  iommufdAccessUnpinPages,
} from './access.js';
import { BP, makeEnv, P, PRIV, pinsAt, snapshot, userBuffer } from './io-pagetable.test-helpers.js';
import { iommufdGetIoas } from './ioas.js';
import { Iommufd } from './iommufd.js';
import { IommufdObjectType } from './main.js';
import { IOPT_PAGES_ACCOUNT_MM } from './pages.js';
import {
  IOMMU_DESTROY,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMUFD_TYPE,
} from './uapi.js';
import { encodeUapi } from './uapi-codec.js';
import { iommufdUapiCommands, iommuIoasAllocStruct } from './uapi-structs.js';

const FIXED_RW = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

function setup(accountMode?: 1 | 2) {
  const env = makeEnv({ capabilities: [] });
  const file = Iommufd.open({ iommu: env.sub, process: env.proc, ...(accountMode ? { accountMode } : {}) });
  // Two mapped pages followed by an unmapped one, for structs that straddle the end of memory.
  const mem = env.proc.mmap(BigInt(3 * P), PROT_READ | PROT_WRITE, PRIV);
  env.proc.munmap(mem + 2n * BigInt(P), BigInt(P));
  env.proc.write(mem, new Uint8Array(2 * P));
  return { env, proc: env.proc, file, ctx: file.ctx, mem, memEnd: mem + 2n * BigInt(P) };
}
type Fx = ReturnType<typeof setup>;

function ioasAlloc(fx: Fx): number {
  const cmd = { size: 12, flags: 0, out_ioas_id: 0 };
  fx.file.ioctl(IOMMU_IOAS_ALLOC, cmd);
  return cmd.out_ioas_id;
}

function map(fx: Fx, id: number, va: bigint, length: bigint, iova: bigint): void {
  fx.file.ioctl(IOMMU_IOAS_MAP, { size: 40, flags: FIXED_RW, ioas_id: id, user_va: va, length, iova });
}

/** A zeroed struct of `size` bytes (size field set) plus `tail` at `at`; the ioctl's errno. */
function rawCall(
  fx: Fx,
  request: number,
  size: number,
  at: bigint,
  tail?: { offset: number; byte: number },
  writeLen = size,
) {
  const bytes = new Uint8Array(size);
  new DataView(bytes.buffer).setUint32(0, size, true);
  if (tail) bytes[tail.offset] = tail.byte;
  fx.proc.write(at, bytes.subarray(0, writeLen));
  const errno = errnoOf(() => fx.file.ioctl(request, at));
  return { errno, out: fx.proc.read(at, writeLen) };
}

describe('open and close', () => {
  it('installs a descriptor; close releases the context; later calls are EBADF', () => {
    const fx = setup();
    expect(fx.proc.getFile(fx.file.fd)).toBeDefined();
    expect(fx.ctx.objectCount).toBe(0);
    ioasAlloc(fx);
    fx.file.close();
    expect(fx.file.isClosed).toBe(true);
    expect(fx.ctx.isReleased).toBe(true);
    expect(fx.ctx.objectCount).toBe(0);
    expect(errnoOf(() => fx.proc.getFile(fx.file.fd))).toBe('EBADF');
    expect(errnoOf(() => fx.file.ioctl(IOMMU_IOAS_ALLOC, { size: 12 }))).toBe('EBADF');
    expect(errnoOf(() => fx.file.close())).toBe('EBADF');
  });

  it('each open is its own context with its own IDs', () => {
    const fx = setup();
    const other = Iommufd.open({ iommu: fx.env.sub, process: fx.proc });
    expect(other.fd).not.toBe(fx.file.fd);
    expect(ioasAlloc(fx)).toBe(1);
    const c = { size: 12, flags: 0, out_ioas_id: 0 };
    other.ioctl(IOMMU_IOAS_ALLOC, c);
    expect(c.out_ioas_id).toBe(1);
    expect(errnoOf(() => other.ioctl(IOMMU_DESTROY, { size: 8, id: 2 }))).toBe('ENOENT');
    other.close();
    expect(fx.ctx.isReleased).toBe(false);
    expect(fx.ctx.objectCount).toBe(1);
  });

  it('a forked child shares the file: the context lives until the last descriptor closes', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const child = fx.proc.fork();
    fx.file.close();
    expect(fx.ctx.isReleased).toBe(false);
    expect(fx.ctx.peekObject(id)).toBeDefined();
    child.close(fx.file.fd);
    expect(fx.ctx.isReleased).toBe(true);
  });

  it('process.close(fd) is the same as file.close()', () => {
    const fx = setup();
    ioasAlloc(fx);
    fx.proc.close(fx.file.fd);
    expect(fx.file.isClosed).toBe(true);
    expect(fx.ctx.isReleased).toBe(true);
  });
});

describe('cmd_length: every command of the uAPI', () => {
  for (const command of iommufdUapiCommands) {
    const sz = command.struct.size;
    it(`${command.name}: size min-1 EINVAL, non-zero tail E2BIG, faulting tail EFAULT, zero tail as exact`, () => {
      const fx = setup();
      expect(rawCall(fx, command.request, command.minSize - 1, fx.mem).errno).toBe('EINVAL');
      expect(errnoOf(() => fx.file.ioctl(command.request, { size: command.minSize - 1 }))).toBe('EINVAL');
      expect(rawCall(fx, command.request, sz + 1, fx.mem, { offset: sz, byte: 1 }).errno).toBe('E2BIG');
      expect(rawCall(fx, command.request, sz + 8, fx.mem, { offset: sz + 7, byte: 0x80 }).errno).toBe(
        'E2BIG',
      );
      // The struct fits in mapped memory, its claimed tail runs into the unmapped page.
      expect(rawCall(fx, command.request, sz + 16, fx.memEnd - BigInt(sz), undefined, sz).errno).toBe(
        'EFAULT',
      );
      expect(fx.ctx.objectCount).toBe(0);

      const exact = rawCall(setup(), command.request, sz, fx.mem);
      const longer = rawCall(setup(), command.request, sz + 64, fx.mem);
      expect(longer.errno).toBe(exact.errno);
      expect([...longer.out.subarray(4, sz)]).toEqual([...exact.out.subarray(4, sz)]);
      expect([...longer.out.subarray(sz)]).toEqual(new Array(64).fill(0));
      const fy = setup();
      expect(errnoOf(() => fy.file.ioctl(command.request, { size: sz + 64 }))).toBe(exact.errno);
    });
  }

  it('the table covers the IOAS commands with real handlers', () => {
    const fx = setup();
    // A zeroed IOAS_ALLOC is valid and answers with ID 1, whatever the size beyond the minimum.
    const r = rawCall(fx, IOMMU_IOAS_ALLOC, 12 + 64, fx.mem);
    expect(r.errno).toBeUndefined();
    expect(new DataView(r.out.buffer).getUint32(8, true)).toBe(1);
    expect(fx.ctx.getObject(1, IommufdObjectType.IOAS)).toBeDefined();
  });
});

describe('cmd_fail', () => {
  it('DESTROY of ID 0 → ENOENT; null argument → EFAULT; nr 0x7f → ENOTTY', () => {
    const fx = setup();
    expect(errnoOf(() => fx.file.ioctl(IOMMU_DESTROY, { size: 8, id: 0 }))).toBe('ENOENT');
    expect(errnoOf(() => fx.file.ioctl(IOMMU_DESTROY, null))).toBe('EFAULT');
    expect(errnoOf(() => fx.file.ioctl(IOMMU_DESTROY, 0n))).toBe('EFAULT');
    expect(errnoOf(() => fx.file.ioctl(_IO(IOMMUFD_TYPE, 0x7f), { size: 8 }))).toBe('ENOTTY');
    expect(errnoOf(() => fx.file.ioctl(_IO(IOMMUFD_TYPE, 0x7f), null))).toBe('ENOTTY');
  });

  it('a wrong type byte in an in-table number → ENOTTY after the size read; past the table → ENOTTY', () => {
    const fx = setup();
    const nr = _IOC_NR(IOMMU_DESTROY);
    expect(errnoOf(() => fx.file.ioctl(_IO(0x3c, nr), { size: 8, id: 1 }))).toBe('ENOTTY');
    expect(errnoOf(() => fx.file.ioctl(_IO(0x3c, nr), null))).toBe('EFAULT');
    expect(errnoOf(() => fx.file.ioctl(_IO(IOMMUFD_TYPE, 0x9f), { size: 8 }))).toBe('ENOTTY');
    expect(errnoOf(() => fx.file.ioctl(_IO(IOMMUFD_TYPE, 0xa0), { size: 8 }))).toBe('ENOTTY');
  });
});

describe('IOMMU_DESTROY', () => {
  it('destroys an IOAS with an area and no domain, dropping its pages', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 2);
    map(fx, id, buf, 2n * BP, 0x10_0000n);
    const pages = iommufdGetIoas(fx.ctx, id).iopt.areas()[0]?.pages;
    expect(pages?.refcount).toBe(1);
    fx.file.ioctl(IOMMU_DESTROY, { size: 8, id });
    expect(fx.ctx.peekObject(id)).toBeUndefined();
    expect(pages?.refcount).toBe(0);
    expect(errnoOf(() => fx.file.ioctl(IOMMU_DESTROY, { size: 8, id }))).toBe('ENOENT');
    expect(ioasAlloc(fx)).toBe(id);
  });

  it('EBUSY for an IOAS with an attached access and for the access itself; nothing changes', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 1);
    map(fx, id, buf, BP, 0x10_0000n);
    const acc = iommufdAccessCreate(fx.ctx, { needsPinPages: true, unmap: () => {} });
    iommufdAccessAttach(acc, id);
    iommufdAccessPinPages(acc, 0x10_0000n, BP, 0);
    const st = () => ({
      objects: fx.ctx.listObjects().map((o) => `${o.id}:${o.type}:${o.users}`),
      iopt: snapshot(iommufdGetIoas(fx.ctx, id).iopt, fx.proc, [{ va: buf, pages: 1 }]),
    });
    const before = st();
    expect(errnoOf(() => fx.file.ioctl(IOMMU_DESTROY, { size: 8, id }))).toBe('EBUSY');
    expect(errnoOf(() => fx.file.ioctl(IOMMU_DESTROY, { size: 8, id: acc.id }))).toBe('EBUSY');
    expect(st()).toEqual(before);
    iommufdAccessUnpinPages(acc, 0x10_0000n, BP);
    iommufdAccessDestroy(acc);
    fx.file.ioctl(IOMMU_DESTROY, { size: 8, id });
    expect(fx.ctx.objectCount).toBe(0);
  });

  it('pointer form; a read-only struct is fine (DESTROY copies nothing out)', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const ro = fx.proc.mmap(BigInt(P), PROT_READ | PROT_WRITE, PRIV);
    fx.proc.write(ro, Uint8Array.of(8, 0, 0, 0, id, 0, 0, 0));
    fx.proc.mprotect(ro, BigInt(P), PROT_READ);
    fx.file.ioctl(IOMMU_DESTROY, ro);
    expect(fx.ctx.objectCount).toBe(0);
  });
});

describe('context release', () => {
  it('close returns every pin and accounted byte once the pinning accesses are destroyed', () => {
    for (const mode of [undefined, IOPT_PAGES_ACCOUNT_MM] as const) {
      const fx = setup(mode);
      const a = ioasAlloc(fx);
      const b = ioasAlloc(fx);
      const buf = userBuffer(fx.proc, 6);
      const mem = fx.proc.machine.memory;
      const allocatedBefore = mem.stats().allocatedPages;
      map(fx, a, buf, 4n * BP, 0x10_0000n);
      map(fx, b, buf + 2n * BP, 4n * BP, 0x20_0000n); // a second pages object over two shared pages
      fx.file.ioctl(IOMMU_IOAS_COPY, {
        size: 40,
        flags: FIXED_RW,
        dst_ioas_id: b,
        src_ioas_id: a,
        length: 2n * BP,
        dst_iova: 0x80_0000n,
        src_iova: 0x10_0000n,
      });
      const accs = [a, b, b].map((id) => {
        const pins: [bigint, bigint][] = [];
        const acc = iommufdAccessCreate(fx.ctx, {
          needsPinPages: true,
          unmap: (iova, len) => {
            for (const [i, l] of pins.splice(0)) if (i >= iova && i + l - 1n <= iova + len - 1n) unpin(i, l);
          },
        });
        const unpin = (i: bigint, l: bigint) => iommufdAccessUnpinPages(acc, i, l);
        iommufdAccessAttach(acc, id);
        return { acc, pins };
      });
      const pin = (k: number, iova: bigint, len: bigint) => {
        const x = accs[k];
        if (!x) throw new Error('no access');
        iommufdAccessPinPages(x.acc, iova, len, 1);
        x.pins.push([iova, len]);
      };
      pin(0, 0x10_0000n, 4n * BP);
      pin(1, 0x20_0000n, 4n * BP);
      pin(2, 0x80_0000n, 2n * BP);
      // Pages 2 and 3 are pinned by two pages objects.
      expect(pinsAt(fx.proc, buf + 2n * BP)).toBe(2);
      const charged = mode === undefined ? fx.proc.machine.userLockedVm(fx.proc.uid) : fx.proc.mm.lockedVm;
      expect(charged).toBe(8);
      expect(fx.proc.mm.pinnedVm).toBe(8);

      fx.file.close();
      expect(fx.ctx.isReleased).toBe(false);
      expect(fx.ctx.objectCount).toBe(5);
      for (const x of accs) iommufdAccessDestroy(x.acc);
      expect(fx.ctx.isReleased).toBe(true);
      expect(fx.ctx.objectCount).toBe(0);
      for (let i = 0; i < 6; i++) expect(pinsAt(fx.proc, buf + BigInt(i * P))).toBe(0);
      expect(fx.proc.mm.lockedVm).toBe(0);
      expect(fx.proc.mm.pinnedVm).toBe(0);
      expect(fx.proc.machine.userLockedVm(fx.proc.uid)).toBe(0);
      expect(mem.stats().allocatedPages).toBe(allocatedBefore);
    }
  });

  it('close with an access still holding pins keeps every object; destroying it unpins first', () => {
    const fx = setup();
    const id = ioasAlloc(fx);
    const buf = userBuffer(fx.proc, 2);
    map(fx, id, buf, 2n * BP, 0x10_0000n);
    let held = true;
    const acc = iommufdAccessCreate(fx.ctx, {
      needsPinPages: true,
      unmap: (iova, len) => {
        expect([iova, len]).toEqual([0n, 0xffff_ffff_ffff_ffffn]);
        if (held) iommufdAccessUnpinPages(acc, 0x10_0000n, 2n * BP);
        held = false;
      },
    });
    iommufdAccessAttach(acc, id);
    iommufdAccessPinPages(acc, 0x10_0000n, 2n * BP, 0);
    fx.file.close();
    expect(fx.ctx.listObjects().map((o) => o.type)).toEqual([
      IommufdObjectType.IOAS,
      IommufdObjectType.ACCESS,
    ]);
    expect(iommufdGetIoas(fx.ctx, id).iopt.areas()).toHaveLength(1);
    expect(pinsAt(fx.proc, buf)).toBe(1);
    iommufdAccessDestroy(acc);
    expect(held).toBe(false);
    expect(fx.ctx.isReleased).toBe(true);
    expect(pinsAt(fx.proc, buf)).toBe(0);
    expect(fx.proc.machine.userLockedVm(fx.proc.uid)).toBe(0);
    expect(fx.proc.mm.pinnedVm).toBe(0);
  });
});

describe('objects created through the struct bytes of a pointer', () => {
  it('IOAS_ALLOC writes the ID at offset 8 of the caller struct', () => {
    const fx = setup();
    fx.proc.write(fx.mem, encodeUapi(iommuIoasAllocStruct, { size: 12 }));
    fx.file.ioctl(IOMMU_IOAS_ALLOC, fx.mem);
    expect([...fx.proc.read(fx.mem + 8n, 4)]).toEqual([1, 0, 0, 0]);
  });
});
