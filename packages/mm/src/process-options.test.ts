// The iommufd contract's entry points into mm: `new Process(memory, options)`, bigint lengths
// (`mmap` returning a bigint for a bigint length) and the defaults the kernel selftests rely on.

import { isErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import {
  CAP,
  CAP_LAST_CAP,
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  Machine,
  MLOCK_LIMIT,
  PAGE_SIZE,
  PhysicalMemory,
  PROT_READ,
  PROT_WRITE,
  Process,
  UserFaultError,
} from './index.js';

const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;

function errno(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isErrnoError(e)) return e.code;
    throw e;
  }
  return 'ok';
}

describe('new Process(memory, options)', () => {
  it('defaults to root with every capability, arm64 and an 8 MiB RLIMIT_MEMLOCK', () => {
    const ram = new PhysicalMemory();
    const proc = new Process(ram);
    expect(proc.machine.memory).toBe(ram);
    expect(proc.uid).toBe(0);
    expect(proc.arch).toBe('arm64');
    expect(proc.rlimitMemlock).toBe(MLOCK_LIMIT);
    for (let cap = 0; cap <= CAP_LAST_CAP; cap++) expect(proc.capable(cap)).toBe(true);
    expect(proc.machine.processes.get(proc.pid)).toBe(proc);
    expect(proc.exited).toBe(false);
  });

  it('takes uid, capabilities, rlimit and arch', () => {
    const ram = new PhysicalMemory();
    const proc = new Process(ram, {
      uid: 1000,
      capabilities: [CAP.IPC_LOCK],
      rlimitMemlock: 64 * PAGE_SIZE,
      arch: 'x86_64',
    });
    expect(proc.uid).toBe(1000);
    expect(proc.capable(CAP.IPC_LOCK)).toBe(true);
    expect(proc.capable(CAP.SYS_RESOURCE)).toBe(false);
    expect(proc.rlimitMemlock).toBe(64 * PAGE_SIZE);
    expect(proc.arch).toBe('x86_64');
  });

  it('shares one machine per memory, including a Machine created first', () => {
    const ram = new PhysicalMemory({ size: 256 * 2 ** 20 });
    const a = new Process(ram);
    const b = new Process(ram, { uid: 1000 });
    expect(b.machine).toBe(a.machine);
    expect(b.pid).not.toBe(a.pid);
    expect(Machine.forMemory(ram)).toBe(a.machine);

    const ram2 = new PhysicalMemory({ size: 256 * 2 ** 20 });
    const m = new Machine({ memory: ram2 });
    const c = new Process(ram2);
    expect(c.machine).toBe(m);
    const d = m.createProcess({ arch: 'x86_64' }); // the existing factory still works
    expect(d.machine).toBe(m);
    expect(d.pid).toBe(c.pid + 1);
  });

  it('has 64 GiB of sparse RAM by default, enough for the selftests’ tens of MiB', () => {
    const ram = new PhysicalMemory();
    expect(ram.size).toBe(64 * 2 ** 30);
    expect(PAGE_SIZE).toBe(4096);
    const proc = new Process(ram);
    const len = 64n * 2n ** 20n;
    const va = proc.mmap(len, RW, PRIV);
    // Touch the first and last page of each MiB: only those pages get allocated.
    for (let off = 0n; off < len; off += 2n ** 20n) {
      proc.write(va + off, new Uint8Array([1]));
      proc.write(va + off + 2n ** 20n - 1n, new Uint8Array([2]));
    }
    expect(proc.read(va + len - 1n, 1n)[0]).toBe(2);
    proc.munmap(va, len);
    proc.exit();
    expect(ram.stats().allocatedPages).toBe(0);
  });
});

describe('bigint lengths', () => {
  it('mmap returns a bigint for a bigint length and a number for a number', () => {
    const proc = new Process(new PhysicalMemory());
    const va = proc.mmap(BigInt(4 * PAGE_SIZE), RW, PRIV);
    expect(typeof va).toBe('bigint');
    expect(va % BigInt(PAGE_SIZE)).toBe(0n);
    const vn = proc.mmap(4 * PAGE_SIZE, RW, PRIV);
    expect(typeof vn).toBe('number');
    const covered = (a: number) => proc.vmas().some((v) => v.start <= a && a + 4 * PAGE_SIZE <= v.end);
    expect(covered(Number(va))).toBe(true);
    expect(covered(vn)).toBe(true);
  });

  it('write, read, munmap, mprotect and madvise accept bigint addresses and lengths', () => {
    const proc = new Process(new PhysicalMemory());
    const len = BigInt(2 * PAGE_SIZE);
    const va = proc.mmap(len, RW, PRIV);
    const bytes = new Uint8Array([0xde, 0xad, 0xbe, 0xef]);
    proc.write(va + BigInt(PAGE_SIZE) - 2n, bytes);
    expect([...proc.read(va + BigInt(PAGE_SIZE) - 2n, 4n)]).toEqual([0xde, 0xad, 0xbe, 0xef]);

    proc.madvise(va, BigInt(PAGE_SIZE), MADV_DONTNEED);
    expect([...proc.read(va + BigInt(PAGE_SIZE) - 2n, 4n)]).toEqual([0, 0, 0xbe, 0xef]);

    proc.mprotect(va, len, PROT_READ);
    expect(() => proc.write(va, bytes)).toThrow(UserFaultError);
    expect(proc.read(va + BigInt(PAGE_SIZE), 1n)[0]).toBe(0xbe);

    proc.munmap(va, len);
    expect(() => proc.read(va, 1n)).toThrow(UserFaultError);
  });

  it('keeps mmap’s errnos for bigint lengths: 0 → EINVAL, huge (size_t wrap) → ENOMEM', () => {
    const proc = new Process(new PhysicalMemory());
    expect(errno(() => proc.mmap(0n, RW, PRIV))).toBe('EINVAL');
    expect(errno(() => proc.mmap(2n ** 64n - 1n, RW, PRIV))).toBe('ENOMEM');
    expect(errno(() => proc.mmap(-1n, RW, PRIV))).toBe('ENOMEM'); // -1 as size_t
    expect(errno(() => proc.munmap(0x1000_0000n, 0n))).toBe('EINVAL');
  });

  it('close(fd) closes a descriptor of the process', () => {
    const proc = new Process(new PhysicalMemory());
    let closed = 0;
    const fd = proc.installFd({ close: () => closed++ });
    proc.close(fd);
    expect(closed).toBe(1);
    expect(errno(() => proc.close(fd))).toBe('EBADF');
  });
});
