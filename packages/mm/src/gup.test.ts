import { isErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import {
  __accountLockedVm,
  accountLockedVm,
  addPinnedVm,
  decUserLockedVm,
  FOLL_GET,
  FOLL_LONGTERM,
  FOLL_NOFAULT,
  FOLL_WRITE,
  incUserLockedVm,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  Machine,
  PAGE_SIZE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  ptepTestAndClearYoung,
  RLIM_INFINITY,
} from './index.js';
import { handWalk } from './mm.test-helpers.js';

const P = PAGE_SIZE;
const A = 0x1000_0000;
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

describe.each(['arm64', 'x86_64'] as const)('%s GUP', (arch) => {
  it('pin faults pages in, raises pin and ref counts; unpin restores them', () => {
    const m = new Machine();
    const start = m.memory.stats().allocatedPages;
    const p = m.createProcess({ arch });
    p.mmap(8 * P, RW, PRIV | MAP_FIXED, A);
    p.write(A, new Uint8Array([1]));
    const pages = p.pinUserPages(BigInt(A + 5), 4, FOLL_WRITE | FOLL_LONGTERM);
    expect(pages).toHaveLength(4);
    for (let i = 0; i < 4; i++) {
      expect(pages[i]).toBe(handWalk(m.memory, arch, p.mm.pgd, A + i * P)?.pa);
      expect(m.memory.pinCount(pages[i] as number)).toBe(1);
      expect(m.memory.pageRefcount(pages[i] as number)).toBe(2);
      expect(m.memory.isDirty(pages[i] as number)).toBe(true);
    }
    // A device write through the pinned PA is what the process reads.
    m.memory.write8((pages[2] as number) + 3, 0x77);
    expect(p.read(A + 2 * P + 3, 1)[0]).toBe(0x77);
    p.unpinUserPages(pages, true);
    for (const pa of pages) expect(m.memory.pinCount(pa)).toBe(0);
    // Pinned pages survive munmap and exit until unpinned.
    const again = p.pinUserPages(A, 2, 0);
    p.exit();
    expect(m.memory.stats().allocatedPages).toBe(start + 2);
    expect(m.memory.pageRefcount(again[0] as number)).toBe(1);
    p.unpinUserPages(again, false);
    expect(m.memory.stats().allocatedPages).toBe(start);
  });

  it('EFAULT / EINVAL / partial results as Linux', () => {
    const m = new Machine();
    const p = m.createProcess({ arch });
    p.mmap(2 * P, PROT_READ, PRIV | MAP_FIXED, A);
    p.mmap(P, PROT_NONE, PRIV | MAP_FIXED, A + 2 * P);
    expect(errno(() => p.pinUserPages(A + 8 * P, 1, 0))).toBe('EFAULT');
    expect(errno(() => p.pinUserPages(A, 1, FOLL_WRITE))).toBe('EFAULT');
    expect(errno(() => p.pinUserPages(A + 2 * P, 1, 0))).toBe('EFAULT');
    expect(errno(() => p.pinUserPages(A, 1, FOLL_GET))).toBe('EINVAL');
    expect(errno(() => p.pinUserPages(A, 1, FOLL_NOFAULT))).toBe('EFAULT');
    const part = p.pinUserPages(A, 5, 0);
    expect(part).toHaveLength(2);
    expect(p.pinUserPages(A, 0, 0)).toEqual([]);
    p.unpinUserPages(part, false);
  });

  it('a read pin of a COW-shared page unshares it first; fork copies pinned pages at once', () => {
    const m = new Machine();
    const p = m.createProcess({ arch });
    p.mmap(2 * P, RW, PRIV | MAP_FIXED, A);
    p.write(A, new Uint8Array([5]));
    p.write(A + P, new Uint8Array([6]));
    const c = p.fork();
    const shared = handWalk(m.memory, arch, c.mm.pgd, A)?.pa as number;
    const [pinned] = c.pinUserPages(A, 1, FOLL_LONGTERM);
    expect(pinned).not.toBe(shared);
    expect(m.pageMapcount(shared)).toBe(1);
    expect(m.memory.read8(pinned as number)).toBe(5);
    // The pin stays coherent with later writes by the child (no second COW).
    c.write(A, new Uint8Array([9]));
    expect(m.memory.read8(pinned as number)).toBe(9);
    // fork of a pinned page: the grandchild gets its own copy; the pinned page stays writable.
    const g = c.fork();
    expect(handWalk(m.memory, arch, g.mm.pgd, A)?.pa).not.toBe(pinned);
    expect(handWalk(m.memory, arch, c.mm.pgd, A)?.userWrite).toBe(true);
    expect(g.read(A, 1)[0]).toBe(9);
    c.unpinUserPages([pinned as number], false);
    for (const x of [g, c, p]) x.exit();
    expect(m.memory.stats().allocatedPages).toBe(0);
  });

  it('migration moves unpinned pages and refuses pinned or shared ones; reclaim drops clean pages', () => {
    const m = new Machine();
    const p = m.createProcess({ arch });
    p.mmap(4 * P, RW, PRIV | MAP_FIXED, A);
    p.mmap(P, PROT_READ, PRIV | MAP_FIXED, A + 8 * P);
    p.write(A, new Uint8Array([1, 2, 3]));
    const old = handWalk(m.memory, arch, p.mm.pgd, A)?.pa as number;
    const moved = p.migratePage(A);
    expect(moved).not.toBe(old);
    expect([...p.read(A, 3)]).toEqual([1, 2, 3]);
    expect(m.memory.isAllocated(old)).toBe(false);
    const pins = p.pinUserPages(A, 1, FOLL_WRITE);
    expect(errno(() => p.migratePage(A))).toBe('EAGAIN');
    p.unpinUserPages(pins, false);
    expect(errno(() => p.migratePage(A + P))).toBe('ENOENT');
    expect(errno(() => p.migratePage(A + 6 * P))).toBe('EFAULT');
    const c = p.fork();
    expect(errno(() => p.migratePage(A))).toBe('EBUSY');
    c.exit();
    // Reclaim: a written page is dirty (no swap); a read-only page read back is clean.
    expect(errno(() => p.reclaim(A))).toBe('EBUSY');
    m.memory.write8((handWalk(m.memory, arch, p.mm.pgd, A)?.pa as number) + 0, 1);
    p.read(A + 8 * P, 1);
    const before = m.memory.stats().allocatedPages;
    p.reclaim(A + 8 * P);
    expect(m.memory.stats().allocatedPages).toBe(before - 1);
    expect(handWalk(m.memory, arch, p.mm.pgd, A + 8 * P)).toBeNull();
    expect(p.read(A + 8 * P, 1)[0]).toBe(0);
  });

  it('access flag aging and hardware AF set', () => {
    const m = new Machine();
    const p = m.createProcess({ arch });
    p.mmap(P, RW, PRIV | MAP_FIXED, A);
    p.write(A, new Uint8Array([1]));
    expect(ptepTestAndClearYoung(p.mm, A)).toBe(true);
    expect(handWalk(m.memory, arch, p.mm.pgd, A)?.young).toBe(false);
    expect(ptepTestAndClearYoung(p.mm, A)).toBe(false);
    p.read(A, 1);
    expect(handWalk(m.memory, arch, p.mm.pgd, A)?.young).toBe(true);
  });
});

describe('accounting', () => {
  it('account_locked_vm: ENOMEM over RLIMIT_MEMLOCK unless CAP_IPC_LOCK; pages as Linux counts them', () => {
    const m = new Machine();
    const user = m.createProcess({ arch: 'arm64', uid: 1000, capabilities: [], rlimitMemlock: 4 * P + 100 });
    const root = m.createProcess({ arch: 'arm64', rlimitMemlock: 0 });
    accountLockedVm(user.mm, 3, true);
    expect(user.mm.lockedVm).toBe(3);
    accountLockedVm(user.mm, 1, true);
    expect(errno(() => accountLockedVm(user.mm, 1, true))).toBe('ENOMEM');
    expect(user.mm.lockedVm).toBe(4);
    accountLockedVm(user.mm, 4, false);
    expect(user.mm.lockedVm).toBe(0);
    accountLockedVm(root.mm, 1000, true); // CAP_IPC_LOCK bypasses the limit of 0
    expect(root.mm.lockedVm).toBe(1000);
    expect(errno(() => __accountLockedVm(root.mm, 1, true, root, false))).toBe('ENOMEM');
    user.rlimitMemlock = RLIM_INFINITY;
    accountLockedVm(user.mm, 2 ** 40, true);
  });

  it('user->locked_vm is per uid across processes; pinned_vm per mm', () => {
    const m = new Machine();
    const a = m.createProcess({ arch: 'x86_64', uid: 7, capabilities: [], rlimitMemlock: 8 * P });
    const b = m.createProcess({ arch: 'x86_64', uid: 7, capabilities: [], rlimitMemlock: 8 * P });
    incUserLockedVm(a, 5);
    expect(errno(() => incUserLockedVm(b, 4))).toBe('ENOMEM');
    incUserLockedVm(b, 3);
    expect(m.userLockedVm(7)).toBe(8);
    decUserLockedVm(a, 8);
    expect(m.userLockedVm(7)).toBe(0);
    expect(errno(() => decUserLockedVm(a, 1))).toBe('EINVAL');
    addPinnedVm(a.mm, 10);
    addPinnedVm(a.mm, -4);
    expect(a.mm.pinnedVm).toBe(6);
    expect(b.mm.pinnedVm).toBe(0);
    expect(errno(() => addPinnedVm(b.mm, -1))).toBe('EINVAL');
  });
});
