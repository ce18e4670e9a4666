import { errnoOf } from '@iommu-ts/base/testing';
import {
  CAP,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PhysicalMemory,
  PROT_READ,
  Process,
  type ProcessOptions,
} from '@iommu-ts/mm';
import { afterEach, describe, expect, it } from 'vitest';
import type { IoptArea } from './area.js';
import { BP, P, PRIV, pinsAt, RW, userBuffer, userPa } from './io-pagetable.test-helpers.js';
import {
  __IOMMUFD_ACCESS_RW_SLOW_PATH,
  getTempMemoryLimit,
  IOMMUFD_ACCESS_RW_KTHREAD,
  IOMMUFD_ACCESS_RW_WRITE,
  IOPT_PAGES_ACCOUNT_MM,
  IOPT_PAGES_ACCOUNT_NONE,
  IOPT_PAGES_ACCOUNT_USER,
  IoptPages,
  setTempMemoryLimit,
  TEMP_MEMORY_LIMIT_DEFAULT,
} from './pages.js';

/** A stand-in for the area argument of add/removeAccess (only `numAccesses` is used). */
function fakeArea(): IoptArea {
  return { numAccesses: 0 } as unknown as IoptArea;
}

function setup(options: ProcessOptions = {}) {
  const ram = new PhysicalMemory({ size: 256 * 2 ** 20 });
  const proc = new Process(ram, options);
  return { ram, proc };
}

afterEach(() => setTempMemoryLimit(TEMP_MEMORY_LIMIT_DEFAULT));

describe('IoptPages.allocUser', () => {
  it('covers the pages of [uptr, uptr + length) from the page-aligned start', () => {
    const { proc } = setup();
    const p = IoptPages.allocUser(proc, 0x10_0800n, 0x1000n, true);
    expect(p.uptr).toBe(0x10_0000n);
    expect(p.npages).toBe(2); // 0x800 bytes into page 0, ends 0x800 into page 1
    expect(p.writable).toBe(true);
    expect(p.npinned).toBe(0);
    expect(IoptPages.allocUser(proc, 0x10_0000n, 1n, false).npages).toBe(1);
    expect(IoptPages.allocUser(proc, 0x10_0fffn, 2n, false).npages).toBe(2);
  });

  it('fails with EOVERFLOW when uptr + length wraps, then EINVAL for length 0 or too large', () => {
    const { proc } = setup();
    expect(errnoOf(() => IoptPages.allocUser(proc, 0x1000n, 0n, true))).toBe('EINVAL');
    expect(errnoOf(() => IoptPages.allocUser(proc, 0n, 2n ** 64n - 4096n, true))).toBe('EINVAL');
    expect(errnoOf(() => IoptPages.allocUser(proc, 0x1000n, 2n ** 64n - 0x1000n, true))).toBe('EOVERFLOW');
    expect(errnoOf(() => IoptPages.allocUser(proc, 2n ** 64n - 1n, 1n, true))).toBe('EOVERFLOW');
  });

  it('takes NONE accounting with CAP_IPC_LOCK and USER without', () => {
    const root = setup().proc;
    const user = setup({ uid: 1000, capabilities: [] }).proc;
    expect(IoptPages.allocUser(root, 0x1000n, 1n, true).accountMode).toBe(IOPT_PAGES_ACCOUNT_NONE);
    expect(IoptPages.allocUser(user, 0x1000n, 1n, true).accountMode).toBe(IOPT_PAGES_ACCOUNT_USER);
    const ipc = setup({ uid: 1000, capabilities: [CAP.IPC_LOCK] }).proc;
    expect(IoptPages.allocUser(ipc, 0x1000n, 1n, true).accountMode).toBe(IOPT_PAGES_ACCOUNT_NONE);
  });

  it('holds the source mm with mmgrab until the last put', () => {
    const { proc } = setup();
    const before = proc.mm.count;
    const p = IoptPages.allocUser(proc, 0x1000n, 1n, true);
    expect(proc.mm.count).toBe(before + 1);
    p.get();
    p.put();
    expect(proc.mm.count).toBe(before + 1);
    p.put();
    expect(proc.mm.count).toBe(before);
    expect(() => p.get()).toThrow();
  });
});

describe('pinning and accounting', () => {
  it('pins each page once, stores its PFN and unpins it dirty when writable', () => {
    const { proc, ram } = setup();
    const va = userBuffer(proc, 4);
    const p = IoptPages.allocUser(proc, va, 4n * BP, true);
    p.pinRange(0, 3);
    expect(p.npinned).toBe(4);
    for (let i = 0; i < 4; i++) {
      expect(p.paAt(i)).toBe(userPa(proc, va + BigInt(i * P)));
      expect(pinsAt(proc, va + BigInt(i * P))).toBe(1);
    }
    const pa0 = p.paAt(0);
    ram.setDirty(pa0, false);
    p.unpinRange(0, 3);
    expect(p.npinned).toBe(0);
    expect(pinsAt(proc, va)).toBe(0);
    expect(ram.isDirty(pa0)).toBe(true);
  });

  it('pins read-only pages without FOLL_WRITE, so a private read-only page stays shared', () => {
    const { proc } = setup();
    const va = proc.mmap(BigInt(P), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
    const p = IoptPages.allocUser(proc, va, BP, false);
    p.pinRange(0, 0);
    expect(pinsAt(proc, va)).toBe(1);
    p.unpinRange(0, 0);
  });

  it('fails with EFAULT on unmapped memory and leaves nothing pinned', () => {
    const { proc } = setup();
    const va = userBuffer(proc, 4);
    proc.munmap(va + 2n * BP, 2n * BP);
    const p = IoptPages.allocUser(proc, va, 4n * BP, true);
    expect(errnoOf(() => p.pinRange(0, 3))).toBe('EFAULT');
    expect(p.npinned).toBe(0);
    expect(pinsAt(proc, va)).toBe(0);
    expect(pinsAt(proc, va + BP)).toBe(0);
  });

  it('fails with EFAULT once the source process has exited', () => {
    const { proc } = setup();
    const child = proc.fork();
    const va = userBuffer(child, 1);
    const p = IoptPages.allocUser(child, va, BP, true);
    child.exit();
    expect(errnoOf(() => p.pinRange(0, 0))).toBe('EFAULT');
  });

  it('pins in batches of the temporary memory limit', () => {
    const { proc } = setup();
    setTempMemoryLimit(16); // two pages per pin_user_pages call
    expect(getTempMemoryLimit()).toBe(16);
    const va = userBuffer(proc, 7);
    const p = IoptPages.allocUser(proc, va, 7n * BP, true);
    p.pinRange(0, 6);
    for (let i = 0; i < 7; i++) expect(p.paAt(i)).toBe(userPa(proc, va + BigInt(i * P)));
    p.unpinRange(0, 6);
    expect(errnoOf(() => setTempMemoryLimit(11))).toBe('EINVAL');
  });

  it('USER mode charges user->locked_vm and pinned_vm, and fails over RLIMIT_MEMLOCK', () => {
    const { proc } = setup({ uid: 1000, capabilities: [], rlimitMemlock: 3 * P });
    const va = userBuffer(proc, 4);
    const p = IoptPages.allocUser(proc, va, 4n * BP, true);
    p.pinRange(0, 2);
    p.updatePinned();
    expect(proc.machine.userLockedVm(1000)).toBe(3);
    expect(proc.mm.pinnedVm).toBe(3);
    expect(proc.mm.lockedVm).toBe(0);
    p.pinRange(3, 3);
    expect(errnoOf(() => p.updatePinned())).toBe('ENOMEM');
    expect(proc.machine.userLockedVm(1000)).toBe(3); // unchanged by the failed charge
    expect(p.lastNpinned).toBe(3);
    p.unpinRange(0, 3);
    p.updatePinned();
    expect(proc.machine.userLockedVm(1000)).toBe(0);
    expect(proc.mm.pinnedVm).toBe(0);
  });

  it('MM mode charges mm->locked_vm against the source task’s limit', () => {
    const { proc } = setup({ uid: 1000, capabilities: [], rlimitMemlock: 2 * P });
    const va = userBuffer(proc, 3);
    const p = IoptPages.allocUser(proc, va, 3n * BP, true);
    p.accountMode = IOPT_PAGES_ACCOUNT_MM;
    p.pinRange(0, 1);
    p.updatePinned();
    expect(proc.mm.lockedVm).toBe(2);
    expect(proc.mm.pinnedVm).toBe(2);
    expect(proc.machine.userLockedVm(1000)).toBe(0);
    p.pinRange(2, 2);
    expect(errnoOf(() => p.updatePinned())).toBe('ENOMEM');
    expect(proc.mm.lockedVm).toBe(2);
    p.unpinRange(0, 2);
    p.updatePinned();
    expect(proc.mm.lockedVm).toBe(0);
    expect(proc.mm.pinnedVm).toBe(0);
  });

  it('NONE mode only moves pinned_vm', () => {
    const { proc } = setup({ rlimitMemlock: 0 });
    const va = userBuffer(proc, 2);
    const p = IoptPages.allocUser(proc, va, 2n * BP, true);
    p.pinRange(0, 1);
    p.updatePinned();
    expect(proc.mm.pinnedVm).toBe(2);
    expect(proc.mm.lockedVm).toBe(0);
    expect(proc.machine.userLockedVm(0)).toBe(0);
    p.unpinRange(0, 1);
    p.updatePinned();
    expect(proc.mm.pinnedVm).toBe(0);
  });

  it('refuses to release pages that are still pinned', () => {
    const { proc } = setup();
    const va = userBuffer(proc, 1);
    const p = IoptPages.allocUser(proc, va, BP, true);
    const area = fakeArea();
    p.addAccess(area, 0, 0, 0, []);
    expect(() => p.put()).toThrow(/still pinned/);
  });
});

describe('access ranges', () => {
  it('pins a range once however many exact users it has, and unpins after the last', () => {
    const { proc } = setup();
    const va = userBuffer(proc, 4);
    const p = IoptPages.allocUser(proc, va, 4n * BP, true);
    const area = fakeArea();
    const out: number[] = [];
    p.addAccess(area, 1, 2, IOMMUFD_ACCESS_RW_WRITE, out);
    p.addAccess(area, 1, 2, 0, out);
    expect(out).toEqual([
      userPa(proc, va + BP),
      userPa(proc, va + 2n * BP),
      userPa(proc, va + BP),
      userPa(proc, va + 2n * BP),
    ]);
    expect(area.numAccesses).toBe(2);
    expect(p.npinned).toBe(2);
    expect(pinsAt(proc, va + BP)).toBe(1);
    expect(proc.mm.pinnedVm).toBe(2);
    expect(p.removeAccess(area, 1, 2)).toBe(true);
    expect(pinsAt(proc, va + BP)).toBe(1);
    expect(p.removeAccess(area, 1, 2)).toBe(true);
    expect(pinsAt(proc, va + BP)).toBe(0);
    expect(p.npinned).toBe(0);
    expect(proc.mm.pinnedVm).toBe(0);
    expect(area.numAccesses).toBe(0);
    expect(p.removeAccess(area, 1, 2)).toBe(false);
  });

  it('overlapping ranges share the pins of their common pages', () => {
    const { proc } = setup();
    const va = userBuffer(proc, 4);
    const p = IoptPages.allocUser(proc, va, 4n * BP, true);
    const area = fakeArea();
    p.addAccess(area, 0, 2, 0, []);
    p.addAccess(area, 1, 3, 0, []);
    expect(p.npinned).toBe(4);
    for (let i = 0; i < 4; i++) expect(pinsAt(proc, va + BigInt(i * P))).toBe(1);
    p.removeAccess(area, 0, 2);
    expect(pinsAt(proc, va)).toBe(0);
    expect(pinsAt(proc, va + BP)).toBe(1);
    p.removeAccess(area, 1, 3);
    expect(p.npinned).toBe(0);
  });

  it('refuses a writable access to read-only pages with EPERM', () => {
    const { proc } = setup();
    const va = userBuffer(proc, 1);
    const p = IoptPages.allocUser(proc, va, BP, false);
    expect(errnoOf(() => p.addAccess(fakeArea(), 0, 0, IOMMUFD_ACCESS_RW_WRITE, []))).toBe('EPERM');
    expect(p.npinned).toBe(0);
  });

  it('undoes the pins when the charge fails', () => {
    const { proc } = setup({ uid: 1000, capabilities: [], rlimitMemlock: P });
    const va = userBuffer(proc, 2);
    const p = IoptPages.allocUser(proc, va, 2n * BP, true);
    const area = fakeArea();
    expect(errnoOf(() => p.addAccess(area, 0, 1, 0, []))).toBe('ENOMEM');
    expect(p.npinned).toBe(0);
    expect(pinsAt(proc, va)).toBe(0);
    expect(area.numAccesses).toBe(0);
    expect(p.accessItree.size).toBe(0);
  });
});

describe('rwAccess', () => {
  function rwSetup() {
    const { proc } = setup();
    const va = proc.mmap(BigInt(3 * P), RW, PRIV);
    const p = IoptPages.allocUser(proc, va, 3n * BP, true);
    return { proc, va, p };
  }

  const paths: [string, number, boolean][] = [
    ['fast (same mm)', 0, true],
    ['kthread', IOMMUFD_ACCESS_RW_KTHREAD, false],
    ['other mm (page / slow)', 0, false],
    ['forced slow path', __IOMMUFD_ACCESS_RW_SLOW_PATH, true],
  ];
  for (const [name, flags, sameMm] of paths) {
    it(`copies byte-granular across a page boundary: ${name}`, () => {
      const { proc, va, p } = rwSetup();
      const cur = sameMm ? proc.mm : null;
      const bytes = Uint8Array.from({ length: 10 }, (_, i) => 0xa0 + i);
      p.rwAccess(BigInt(P - 4), bytes, flags | IOMMUFD_ACCESS_RW_WRITE, cur);
      expect([...proc.read(va + BigInt(P - 4), 10n)]).toEqual([...bytes]);
      proc.write(va + BigInt(2 * P + 5), new Uint8Array([7, 8, 9]));
      const out = new Uint8Array(3);
      p.rwAccess(BigInt(2 * P + 5), out, flags, cur);
      expect([...out]).toEqual([7, 8, 9]);
      const one = new Uint8Array(1);
      p.rwAccess(BigInt(P - 1), one, flags, cur); // single page
      expect(one[0]).toBe(0xa3);
      expect(p.npinned).toBe(0);
      expect(pinsAt(proc, va)).toBe(0);
      expect(pinsAt(proc, va + BP)).toBe(0);
    });
  }

  it('refuses writes to read-only pages with EPERM and faults with EFAULT', () => {
    const { proc } = setup();
    const va = userBuffer(proc, 2);
    const ro = IoptPages.allocUser(proc, va, 2n * BP, false);
    expect(errnoOf(() => ro.rwAccess(0n, new Uint8Array(4), IOMMUFD_ACCESS_RW_WRITE, proc.mm))).toBe('EPERM');
    proc.munmap(va + BP, BP);
    const rw = IoptPages.allocUser(proc, va, 2n * BP, true);
    expect(errnoOf(() => rw.rwAccess(BigInt(P - 2), new Uint8Array(4), 0, proc.mm))).toBe('EFAULT');
    expect(errnoOf(() => rw.rwAccess(BigInt(P - 2), new Uint8Array(4), 0, null))).toBe('EFAULT');
    expect(errnoOf(() => rw.rwAccess(BigInt(P + 2), new Uint8Array(1), 0, null))).toBe('EFAULT');
    expect(rw.npinned).toBe(0);
    expect(pinsAt(proc, va)).toBe(0);
  });

  it('reads held pages after the source process is gone, and fails with EFAULT for the rest', () => {
    const { proc } = setup();
    const child = proc.fork();
    const va = userBuffer(child, 2);
    child.write(va + BP + 8n, new Uint8Array([0x42]));
    const p = IoptPages.allocUser(child, va, 2n * BP, true);
    p.addAccess(fakeArea(), 1, 1, 0, []);
    child.exit();
    const out = new Uint8Array(1);
    p.rwAccess(BP + 8n, out, 0, null);
    expect(out[0]).toBe(0x42);
    p.rwAccess(BP + 8n, out, IOMMUFD_ACCESS_RW_KTHREAD, null);
    expect(out[0]).toBe(0x42);
    expect(errnoOf(() => p.rwAccess(8n, out, 0, null))).toBe('EFAULT');
    p.removeAccess(fakeArea(), 1, 1);
  });
});
