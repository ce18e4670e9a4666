import { isErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import {
  CAP,
  FAULT_FLAG_INSTRUCTION,
  FAULT_FLAG_USER,
  FAULT_FLAG_WRITE,
  handleMmFault,
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_HUGE_1GB,
  MAP_HUGE_2MB,
  MAP_HUGETLB,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  Machine,
  PAGE_SIZE,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  UserFaultError,
  VM_ACCOUNT,
  VM_FAULT_SIGSEGV,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYWRITE,
  VM_READ,
  VM_WRITE,
} from './index.js';
import { handWalk } from './mm.test-helpers.js';

const P = PAGE_SIZE;
const A = 0x1000_0000;
const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;
const MAY = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;

function errno(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isErrnoError(e)) return e.code;
    throw e;
  }
  return 'ok';
}

function setup(arch: 'arm64' | 'x86_64' = 'arm64') {
  const m = new Machine();
  const start = m.memory.stats().allocatedPages;
  const p = m.createProcess({ arch });
  return { m, p, start };
}

describe.each(['arm64', 'x86_64'] as const)('%s process', (arch) => {
  it('mmap argument errors have Linux errnos', () => {
    const { p } = setup(arch);
    expect(errno(() => p.mmap(0, RW, PRIV))).toBe('EINVAL');
    expect(errno(() => p.mmap(P, RW, MAP_ANONYMOUS))).toBe('EINVAL');
    expect(errno(() => p.mmap(P, RW, MAP_PRIVATE))).toBe('EBADF');
    expect(errno(() => p.mmap(P, RW, PRIV | MAP_FIXED, A + 1))).toBe('EINVAL');
    expect(errno(() => p.mmap(2 ** 49, RW, PRIV))).toBe('ENOMEM');
    expect(errno(() => p.mmap(P, RW, PRIV | MAP_HUGETLB | MAP_HUGE_1GB))).toBe('EINVAL');
    expect(errno(() => p.mmap(P, 0x10, PRIV))).toBe('EINVAL');
    p.mmap(4 * P, RW, PRIV | MAP_FIXED, A);
    expect(errno(() => p.mmap(P, RW, PRIV | MAP_FIXED_NOREPLACE, A + P))).toBe('EEXIST');
    expect(errno(() => p.munmap(A + 1, P))).toBe('EINVAL');
    expect(errno(() => p.munmap(A, 0))).toBe('EINVAL');
    expect(errno(() => p.mprotect(A + 1, P, PROT_READ))).toBe('EINVAL');
    expect(errno(() => p.madvise(A, P, 12345))).toBe('EINVAL');
  });

  it('mmap without MAP_FIXED picks free, page-aligned ranges top-down and honours free hints', () => {
    const { p } = setup(arch);
    const a = p.mmap(3 * P + 1, RW, PRIV);
    const b = p.mmap(P, PROT_READ, PRIV);
    expect(a % P).toBe(0);
    expect(b + P).toBeLessThanOrEqual(a);
    expect(p.vmas().find((v) => v.start === a)?.end).toBe(a + 4 * P);
    expect(p.mmap(P, RW, PRIV, 0x7000_0000)).toBe(0x7000_0000);
  });

  it('munmap splits VMAs; exact lists', () => {
    const { p } = setup(arch);
    p.mmap(16 * P, RW, PRIV | MAP_FIXED, A);
    p.munmap(A + 4 * P, 4 * P);
    expect(p.vmas().map((v) => [v.start, v.end, v.prot])).toEqual([
      [A, A + 4 * P, RW],
      [A + 8 * P, A + 16 * P, RW],
    ]);
    p.munmap(A + 15 * P, 10 * P); // past the end: no error
    p.munmap(A - 4 * P, 5 * P);
    expect(p.vmas().map((v) => [v.start, v.end])).toEqual([
      [A + P, A + 4 * P],
      [A + 8 * P, A + 15 * P],
    ]);
    p.munmap(0x7000_0000, P); // nothing there
    expect(p.vmas()).toHaveLength(2);
  });

  it('mprotect splits and merges back; a hole gives ENOMEM after changing what precedes it', () => {
    const { p } = setup(arch);
    p.mmap(16 * P, RW, PRIV | MAP_FIXED, A);
    p.mprotect(A + 4 * P, 4 * P, PROT_READ);
    expect(p.vmas().map((v) => [v.start, v.end, v.prot, v.flags])).toEqual([
      [A, A + 4 * P, RW, VM_READ | VM_WRITE | MAY | VM_ACCOUNT],
      [A + 4 * P, A + 8 * P, PROT_READ, VM_READ | MAY | VM_ACCOUNT],
      [A + 8 * P, A + 16 * P, RW, VM_READ | VM_WRITE | MAY | VM_ACCOUNT],
    ]);
    p.mprotect(A + 4 * P, 4 * P, RW);
    expect(p.vmas().map((v) => [v.start, v.end, v.prot])).toEqual([[A, A + 16 * P, RW]]);
    p.mmap(4 * P, RW, PRIV | MAP_FIXED, A + 20 * P);
    expect(errno(() => p.mprotect(A + 12 * P, 12 * P, PROT_NONE))).toBe('ENOMEM');
    expect(p.vmas().map((v) => [v.start, v.end, v.prot])).toEqual([
      [A, A + 12 * P, RW],
      [A + 12 * P, A + 16 * P, PROT_NONE],
      [A + 20 * P, A + 24 * P, RW],
    ]);
    expect(errno(() => p.mprotect(A + 16 * P, P, PROT_READ))).toBe('ENOMEM');
  });

  it('adjacent anonymous mmaps merge; different prot does not', () => {
    const { p } = setup(arch);
    p.mmap(4 * P, RW, PRIV | MAP_FIXED, A);
    p.mmap(4 * P, RW, PRIV | MAP_FIXED, A + 4 * P);
    p.mmap(4 * P, PROT_READ, PRIV | MAP_FIXED, A + 8 * P);
    expect(p.vmas().map((v) => [v.start, v.end])).toEqual([
      [A, A + 8 * P],
      [A + 8 * P, A + 12 * P],
    ]);
  });

  it('SIGSEGV for a missing VMA and permission mismatches', () => {
    const { p } = setup(arch);
    p.mmap(P, PROT_READ, PRIV | MAP_FIXED, A);
    p.mmap(P, PROT_NONE, PRIV | MAP_FIXED, A + 2 * P);
    const sig = (fn: () => unknown): string => {
      try {
        fn();
      } catch (e) {
        if (e instanceof UserFaultError) return `${e.signal}@${e.va.toString(16)}`;
        throw e;
      }
      return 'ok';
    };
    expect(sig(() => p.read(A + P, 1))).toBe(`SIGSEGV@${(A + P).toString(16)}`);
    expect(sig(() => p.write(A, new Uint8Array([1])))).toBe(`SIGSEGV@${A.toString(16)}`);
    expect(sig(() => p.read(A + 2 * P, 1))).toBe(`SIGSEGV@${(A + 2 * P).toString(16)}`);
    expect(sig(() => p.read(A + P - 2, 4))).toBe(`SIGSEGV@${(A + P).toString(16)}`);
    expect(p.read(A, 4)).toEqual(new Uint8Array(4));
    expect(handleMmFault(p.mm, A, FAULT_FLAG_WRITE | FAULT_FLAG_USER)).toBe(VM_FAULT_SIGSEGV);
    expect(handleMmFault(p.mm, A, FAULT_FLAG_INSTRUCTION | FAULT_FLAG_USER)).toBe(VM_FAULT_SIGSEGV);
    expect(handleMmFault(p.mm, A + 5 * P, FAULT_FLAG_USER)).toBe(VM_FAULT_SIGSEGV);
    expect(handleMmFault(p.mm, A, FAULT_FLAG_USER)).toBe(0);
    // A write after mprotect(RW) works.
    p.mprotect(A, P, RW);
    p.write(A, new Uint8Array([7]));
    expect(p.read(A, 1)[0]).toBe(7);
    expect(p.copyToUser(A + P - 2, new Uint8Array([1, 2, 3, 4]))).toBe(2);
    const dst = new Uint8Array(4).fill(9);
    expect(p.copyFromUser(dst, A + P - 2)).toBe(2);
    expect([...dst]).toEqual([1, 2, 0, 0]);
  });

  it('COW after fork: parent and child diverge, refcounts and reuse', () => {
    const { m, p, start } = setup(arch);
    p.mmap(2 * P, RW, PRIV | MAP_FIXED, A);
    p.write(A, new TextEncoder().encode('parent'));
    const pa0 = handWalk(m.memory, arch, p.mm.pgd, A)?.pa as number;
    const c = p.fork();
    expect(m.memory.pageRefcount(pa0)).toBe(2);
    expect(m.pageMapcount(pa0)).toBe(2);
    expect(handWalk(m.memory, arch, p.mm.pgd, A)?.userWrite).toBe(false);
    expect(handWalk(m.memory, arch, c.mm.pgd, A)?.pa).toBe(pa0);
    expect(handWalk(m.memory, arch, c.mm.pgd, A)?.young).toBe(false);
    c.write(A, new TextEncoder().encode('child!'));
    expect(new TextDecoder().decode(p.read(A, 6))).toBe('parent');
    expect(new TextDecoder().decode(c.read(A, 6))).toBe('child!');
    const cpa = handWalk(m.memory, arch, c.mm.pgd, A)?.pa as number;
    expect(cpa).not.toBe(pa0);
    expect(m.memory.pageRefcount(pa0)).toBe(1);
    expect(m.memory.pageRefcount(cpa)).toBe(1);
    // The parent's page is exclusive again: its write fault reuses it.
    p.write(A, new Uint8Array([0x50]));
    expect(handWalk(m.memory, arch, p.mm.pgd, A)?.pa).toBe(pa0);
    // Untouched second page: never faulted, so nothing was shared.
    expect(handWalk(m.memory, arch, c.mm.pgd, A + P)).toBeNull();
    c.exit();
    p.exit();
    expect(m.memory.stats().allocatedPages).toBe(start);
  });

  it('MAP_SHARED anonymous memory is shared with the child', () => {
    const { m, p, start } = setup(arch);
    const a = p.mmap(P, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.write(a, new Uint8Array([1]));
    const c = p.fork();
    c.write(a, new Uint8Array([2]));
    expect(p.read(a, 1)[0]).toBe(2);
    p.madvise(a, P, MADV_DONTNEED);
    expect(handWalk(m.memory, arch, p.mm.pgd, a)).toBeNull();
    expect(p.read(a, 1)[0]).toBe(2);
    p.exit();
    expect(c.read(a, 1)[0]).toBe(2);
    c.exit();
    expect(m.memory.stats().allocatedPages).toBe(start);
  });

  it('MADV_DONTNEED on private memory reads back zeroes and frees the page', () => {
    const { m, p } = setup(arch);
    p.mmap(4 * P, RW, PRIV | MAP_FIXED, A);
    p.write(A + P, new Uint8Array([5, 6]));
    const before = m.memory.stats().allocatedPages;
    p.madvise(A, 4 * P, MADV_DONTNEED);
    expect(m.memory.stats().allocatedPages).toBe(before - 1);
    expect([...p.read(A + P, 2)]).toEqual([0, 0]);
    expect(errno(() => p.madvise(A, 8 * P, MADV_DONTNEED))).toBe('ENOMEM');
  });

  it('MAP_POPULATE faults every page in at mmap time', () => {
    const { m, p } = setup(arch);
    const before = m.memory.stats().allocatedPages;
    const a = p.mmap(8 * P, RW, PRIV | MAP_POPULATE);
    expect(m.memory.stats().allocatedPages - before).toBeGreaterThanOrEqual(8);
    for (let i = 0; i < 8; i++) expect(handWalk(m.memory, arch, p.mm.pgd, a + i * P)?.dirty).toBe(true);
  });

  it('MAP_HUGETLB maps 2 MiB blocks; unaligned munmap is EINVAL; COW copies the block', () => {
    const { m, p, start } = setup(arch);
    const H = 0x20_0000;
    const a = p.mmap(3 * 2 ** 20, RW, PRIV | MAP_HUGETLB | MAP_HUGE_2MB);
    expect(a % H).toBe(0);
    expect(p.vmas()).toMatchObject([{ start: a, end: a + 2 * H, huge: true }]);
    p.write(a + H + 5, new Uint8Array([42]));
    const w = handWalk(m.memory, arch, p.mm.pgd, a + H + 5);
    expect(w?.size).toBe(H);
    expect(m.memory.compoundOrder(w?.pa as number)).toBe(9);
    expect(errno(() => p.munmap(a + P, P))).toBe('EINVAL');
    expect(errno(() => p.mmap(H, RW, PRIV | MAP_HUGETLB | MAP_FIXED, a + P))).toBe('EINVAL');
    const c = p.fork();
    c.write(a + H, new Uint8Array([1]));
    expect(p.read(a + H + 5, 1)[0]).toBe(42);
    expect(c.read(a + H + 5, 1)[0]).toBe(42);
    expect(handWalk(m.memory, arch, c.mm.pgd, a + H)?.pa).not.toBe(
      handWalk(m.memory, arch, p.mm.pgd, a + H)?.pa,
    );
    p.munmap(a, H);
    expect(p.vmas()).toMatchObject([{ start: a + H, end: a + 2 * H }]);
    c.exit();
    p.exit();
    expect(m.memory.stats().allocatedPages).toBe(start);
  });

  it('PTE attributes are the ones Linux writes for user pages', () => {
    const { m, p } = setup(arch);
    p.mmap(P, RW, PRIV | MAP_FIXED, A);
    p.mmap(P, PROT_READ | PROT_EXEC, PRIV | MAP_FIXED, A + P);
    p.write(A, new Uint8Array([1]));
    p.read(A + P, 1);
    const w = handWalk(m.memory, arch, p.mm.pgd, A);
    const x = handWalk(m.memory, arch, p.mm.pgd, A + P);
    if (arch === 'arm64') {
      // valid page, AttrIndx 0 (MT_NORMAL), AP[1] user, SH inner, AF, nG; DBM + SW dirty; PXN + UXN.
      expect((w?.lo as number) & 0xfff).toBe(0x3 | (1 << 6) | (3 << 8) | (1 << 10) | (1 << 11));
      expect(((w?.hi as number) >>> 16) & 0xffff).toBe((1 << 3) | (1 << 5) | (1 << 6) | (1 << 7));
      // read-only exec: AP[2] set, PXN only.
      expect((x?.lo as number) & 0xfff).toBe(0x3 | (1 << 6) | (1 << 7) | (3 << 8) | (1 << 10) | (1 << 11));
      expect(((x?.hi as number) >>> 16) & 0xffff).toBe(1 << 5);
    } else {
      expect((w?.lo as number) & 0xfff).toBe(0x1 | 0x2 | 0x4 | 0x20 | 0x40);
      expect((w?.hi as number) >>> 31).toBe(1);
      expect((x?.lo as number) & 0xfff).toBe(0x1 | 0x4 | 0x20);
      expect((x?.hi as number) >>> 31).toBe(0);
    }
  });

  it('a shared writable read fault maps writable-clean; a hardware write sets the dirty state', () => {
    const { m, p } = setup(arch);
    const a = p.mmap(P, RW, MAP_SHARED | MAP_ANONYMOUS);
    p.read(a, 1);
    let w = handWalk(m.memory, arch, p.mm.pgd, a);
    expect(w?.dirty).toBe(false);
    expect(w?.userWrite).toBe(true);
    if (arch === 'arm64') expect(((w?.lo as number) >>> 7) & 1).toBe(1); // AP[2] set, DBM set
    const pa = p.hwAccess(a + 3, true);
    w = handWalk(m.memory, arch, p.mm.pgd, a);
    expect(pa).toBe((w?.pa as number) + 3);
    expect(w?.dirty).toBe(true);
  });

  it('files: lowest free fd, EBADF, closed once at exit (shared with a forked child)', () => {
    const { p } = setup(arch);
    const closed: string[] = [];
    const f = (n: string) => ({ close: () => void closed.push(n) });
    expect(p.installFd(f('a'))).toBe(0);
    expect(p.installFd(f('b'))).toBe(1);
    p.close(0);
    expect(errno(() => p.close(0))).toBe('EBADF');
    expect(errno(() => p.getFile(7))).toBe('EBADF');
    expect(p.installFd(f('c'))).toBe(0);
    const c = p.fork();
    p.exit();
    expect(closed).toEqual(['a']);
    c.exit();
    expect(closed).toEqual(['a', 'c', 'b']);
  });

  it('credentials: root with every capability by default; options otherwise', () => {
    const m = new Machine();
    const root = m.createProcess({ arch });
    const user = m.createProcess({ arch, uid: 1000, capabilities: [] });
    expect(root.uid).toBe(0);
    expect(root.capable(CAP.IPC_LOCK)).toBe(true);
    expect(user.capable(CAP.IPC_LOCK)).toBe(false);
    expect(user.pid).toBe(root.pid + 1);
  });

  it('mm lifetime: an mmget holder keeps the address space past exit', () => {
    const { m, p, start } = setup(arch);
    const a = p.mmap(P, RW, PRIV);
    p.write(a, new Uint8Array([3]));
    const mm = p.mm;
    mm.mmget();
    p.exit();
    expect(mm.dead).toBe(false);
    expect(handWalk(m.memory, arch, mm.pgd, a)).not.toBeNull();
    mm.mmput();
    expect(mm.dead).toBe(true);
    expect(mm.mmgetNotZero()).toBe(false);
    expect(m.memory.stats().allocatedPages).toBe(start);
  });

  it('PROT_EXEC only: arm64 maps it execute-only (no EL0 read)', () => {
    const { m, p } = setup(arch);
    p.mmap(P, PROT_EXEC, PRIV | MAP_FIXED, A);
    expect(handleMmFault(p.mm, A, FAULT_FLAG_INSTRUCTION | FAULT_FLAG_USER)).toBe(0);
    const w = handWalk(m.memory, arch, p.mm.pgd, A);
    expect(w?.exec).toBe(true);
    expect(w?.userRead).toBe(arch === 'x86_64');
  });

  it('translation facts for an SMMU CD, and io-pgtable reads the same tables', () => {
    const { m, p } = setup(arch);
    p.mmap(P, RW, PRIV | MAP_FIXED, A);
    p.write(A, new Uint8Array([1]));
    if (arch === 'arm64') {
      expect(p.mm.arm64TranslationFacts()).toEqual({
        ttbr0: BigInt(p.mm.pgd),
        t0sz: 16,
        tg0: 0,
        sh0: 3,
        irgn0: 1,
        orgn0: 1,
        ips: 5,
        asidBits: 16,
        mair: 0x0000_0004_0044_ffffn,
        ha: true,
        hd: true,
      });
      expect(p.mm.asid).toBeGreaterThan(0);
    } else {
      expect(errno(() => p.mm.arm64TranslationFacts())).toBe('EINVAL');
    }
    expect(p.mm.pgtable.ops.iovaToPhys(A + 5)).toBe(
      (handWalk(m.memory, arch, p.mm.pgd, A)?.pa as number) + 5,
    );
  });
});
