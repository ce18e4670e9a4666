import { errnoOf } from '@iommu-ts/base/testing';
import { IOMMU_READ, IOMMU_WRITE, IommuResvType } from '@iommu-ts/iommu-core';
import { TestPagingDomain } from '@iommu-ts/iommu-core/testing';
import { CAP, MAP_ANONYMOUS, MAP_HUGETLB, MAP_PRIVATE, PROT_READ } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { IOPT_ALLOC_IOVA, IoPagetable, type IoptAccess } from './io-pagetable.js';
import {
  addDevice,
  addTestDomain,
  BP,
  type Env,
  FakeDomain,
  hwTranslate,
  makeEnv,
  P,
  PRIV,
  pinsAt,
  RW,
  snapshot,
  userBuffer,
  userPa,
} from './io-pagetable.test-helpers.js';
import {
  __IOMMUFD_ACCESS_RW_SLOW_PATH,
  IOMMUFD_ACCESS_RW_WRITE,
  IOPT_PAGES_ACCOUNT_MM,
  IOPT_PAGES_ACCOUNT_NONE,
} from './pages.js';

const U64_MAX = 2n ** 64n - 1n;
const PROT_RW = IOMMU_READ | IOMMU_WRITE;
const MOCK_APERTURE = { apertureStart: 1n << 24n, apertureEnd: (1n << 31n) - 1n };

/** An access whose unmap callback unpins what it recorded (or ignores the request). */
class TestAccess implements IoptAccess {
  readonly pins: { iova: bigint; length: bigint }[] = [];
  unmapCalls: { iova: bigint; length: bigint }[] = [];
  cooperative = true;
  constructor(
    readonly iopt: IoPagetable,
    readonly iovaAlignment = P,
  ) {}
  pin(iova: bigint, length: bigint, flags = 0): number[] {
    const pas = this.iopt.accessPinPages(iova, length, flags);
    this.pins.push({ iova, length });
    return pas;
  }
  unmap(iova: bigint, length: bigint): void {
    this.unmapCalls.push({ iova, length });
    if (!this.cooperative) return;
    for (let i = this.pins.length - 1; i >= 0; i--) {
      const p = this.pins[i] as { iova: bigint; length: bigint };
      if (p.iova + p.length - 1n >= iova && p.iova <= iova + length - 1n) {
        this.iopt.accessUnpinPages(p.iova, p.length);
        this.pins.splice(i, 1);
      }
    }
  }
}

function mapAt(
  env: Env,
  iopt: IoPagetable,
  iova: bigint,
  va: bigint,
  length: bigint,
  prot = PROT_RW,
): bigint {
  return iopt.mapUserPages(env.proc, iova, va, length, prot, 0);
}

function mapAuto(env: Env, iopt: IoPagetable, va: bigint, length: bigint, prot = PROT_RW): bigint {
  return iopt.mapUserPages(env.proc, 0n, va, length, prot, IOPT_ALLOC_IOVA);
}

describe('a fresh io_pagetable', () => {
  it('reports one range [0, U64_MAX], alignment 1, no domains or areas', () => {
    const iopt = new IoPagetable();
    expect(iopt.iovaRanges()).toEqual([{ start: 0n, last: U64_MAX }]);
    expect(iopt.iovaAlignment).toBe(1);
    expect(iopt.domains).toEqual([]);
    expect(iopt.areas()).toEqual([]);
    expect(iopt.largePagesDisabled).toBe(false);
    iopt.destroyTable();
  });
});

describe('mapUserPages', () => {
  it('does not pin anything while no domain or access uses the pages', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const va = userBuffer(env.proc, 4);
    expect(mapAt(env, iopt, 0x10_0000n, va, 4n * BP)).toBe(0x10_0000n);
    const [area] = iopt.areas();
    expect(area?.iova).toBe(0x10_0000n);
    expect(area?.lastIova).toBe(0x10_3fffn);
    expect(area?.pages.npinned).toBe(0);
    expect(area?.storageDomain).toBe(null);
    for (let i = 0; i < 4; i++) expect(pinsAt(env.proc, va + BigInt(i * P))).toBe(0);
    expect(env.proc.mm.pinnedVm).toBe(0);
  });

  it('pins once and maps into every domain; the hardware translates each IOVA to the user page', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const d1 = addTestDomain(env);
    const d2 = addTestDomain(env);
    iopt.tableAddDomain(d1.domain);
    iopt.tableAddDomain(d2.domain);
    expect(iopt.iovaAlignment).toBe(P);
    const va = userBuffer(env.proc, 8);
    const iova = mapAuto(env, iopt, va, 8n * BP);
    for (let i = 0; i < 8; i++) {
      const pa = BigInt(userPa(env.proc, va + BigInt(i * P)) as number);
      expect(hwTranslate(env, d1.sid, iova + BigInt(i * P) + 5n)).toBe(pa + 5n);
      expect(hwTranslate(env, d2.sid, iova + BigInt(i * P), true)).toBe(pa);
      expect(pinsAt(env.proc, va + BigInt(i * P))).toBe(1);
    }
    expect(env.proc.mm.pinnedVm).toBe(8);
    expect(iopt.areas()[0]?.storageDomain).toBe(d1.domain);
  });

  it('maps read-only areas without write permission', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const d = addTestDomain(env);
    iopt.tableAddDomain(d.domain);
    const va = userBuffer(env.proc, 1);
    const iova = mapAuto(env, iopt, va, BP, IOMMU_READ);
    expect(hwTranslate(env, d.sid, iova)).toBe(BigInt(userPa(env.proc, va) as number));
    expect(hwTranslate(env, d.sid, iova, true)).toBe('permission');
  });

  it('checks fixed IOVAs: alignment, reserved ranges, overlaps and wrap-around', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const va = userBuffer(env.proc, 16);
    iopt.reserveIova(0x8000n, 0x8fffn, null);
    expect(errnoOf(() => mapAt(env, iopt, 0x8000n, va, BP))).toBe('EINVAL');
    expect(errnoOf(() => mapAt(env, iopt, 0x7000n, va, 2n * BP))).toBe('EINVAL');
    mapAt(env, iopt, 0x10_000n, va, 4n * BP);
    // Every overlap shape of [0x10000, 0x13fff] is EEXIST.
    for (const [iova, len] of [
      [0x10_000n, 4n * BP],
      [0xf_000n, 2n * BP],
      [0x13_000n, 2n * BP],
      [0x11_000n, BP],
      [0xf_000n, 6n * BP],
    ] as const)
      expect(errnoOf(() => mapAt(env, iopt, iova, va, len))).toBe('EEXIST');
    expect(errnoOf(() => mapAt(env, iopt, U64_MAX - BP + 2n, va, BP))).toBe('EOVERFLOW');
    const d = new FakeDomain();
    iopt.tableAddDomain(d);
    expect(errnoOf(() => mapAt(env, iopt, 0x20_800n, va, BP))).toBe('EINVAL'); // iova alignment
    expect(errnoOf(() => mapAt(env, iopt, 0x20_000n, va, BP + 2048n))).toBe('EINVAL'); // length
    expect(errnoOf(() => mapAt(env, iopt, 0x20_000n, va + 2048n, BP))).toBe('EINVAL'); // VA offset
    expect(errnoOf(() => mapAt(env, iopt, 0x20_000n, va, 0n))).toBe('EINVAL');
    expect(errnoOf(() => mapAt(env, iopt, 0x20_000n, U64_MAX - 10n, BP))).toBe('EOVERFLOW');
    expect(iopt.areas().length).toBe(1);
  });

  it('maps an area at IOVA 0 when asked for it explicitly', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const va = userBuffer(env.proc, 1);
    expect(mapAt(env, iopt, 0n, va, BP)).toBe(0n);
  });

  it('fails with EFAULT when part of the user range is unmapped, leaving nothing behind', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const fake = new FakeDomain();
    iopt.tableAddDomain(fake);
    const va = userBuffer(env.proc, 4);
    env.proc.munmap(va + 2n * BP, 2n * BP);
    const before = snapshot(iopt, env.proc, [{ va, pages: 2 }], [fake]);
    expect(errnoOf(() => mapAt(env, iopt, 0x10_0000n, va, 4n * BP))).toBe('EFAULT');
    expect(errnoOf(() => mapAt(env, iopt, 0x10_0000n, va + 2n * BP, 2n * BP))).toBe('EFAULT');
    expect(snapshot(iopt, env.proc, [{ va, pages: 2 }], [fake])).toEqual(before);
  });

  it('undoes every domain when a driver map fails', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const a = new FakeDomain();
    const b = new FakeDomain();
    iopt.tableAddDomain(a);
    iopt.tableAddDomain(b);
    const va = userBuffer(env.proc, 4);
    b.failMapAfter = 0;
    const before = snapshot(iopt, env.proc, [{ va, pages: 4 }], [a, b]);
    expect(errnoOf(() => mapAt(env, iopt, 0x10_0000n, va, 4n * BP))).toBe('ENOMEM');
    expect(snapshot(iopt, env.proc, [{ va, pages: 4 }], [a, b])).toEqual(before);
    b.failMapAfter = null;
    mapAt(env, iopt, 0x10_0000n, va, 4n * BP);
    expect(a.dump()).toEqual(b.dump());
  });

  it('charges USER accounting to the mapping user and fails with ENOMEM over RLIMIT_MEMLOCK', () => {
    const env = makeEnv({ uid: 1000, capabilities: [], rlimitMemlock: 6 * P });
    const iopt = new IoPagetable();
    const fake = new FakeDomain();
    iopt.tableAddDomain(fake);
    const va = userBuffer(env.proc, 8);
    mapAt(env, iopt, 0x10_0000n, va, 4n * BP);
    expect(env.proc.machine.userLockedVm(1000)).toBe(4);
    expect(env.proc.mm.pinnedVm).toBe(4);
    expect(env.proc.mm.lockedVm).toBe(0);
    const before = snapshot(iopt, env.proc, [{ va, pages: 8 }], [fake]);
    expect(errnoOf(() => mapAt(env, iopt, 0x20_0000n, va + 4n * BP, 4n * BP))).toBe('ENOMEM');
    expect(snapshot(iopt, env.proc, [{ va, pages: 8 }], [fake])).toEqual(before);
    // The same pages mapped again by a second MAP are a second iopt_pages: pinned and charged again.
    mapAt(env, iopt, 0x20_0000n, va, 2n * BP);
    expect(pinsAt(env.proc, va)).toBe(2);
    expect(env.proc.machine.userLockedVm(1000)).toBe(6);
    iopt.unmapAll();
    expect(env.proc.machine.userLockedVm(1000)).toBe(0);
    expect(env.proc.mm.pinnedVm).toBe(0);
  });

  it('charges the mm in MM mode and nothing but pinned_vm with CAP_IPC_LOCK', () => {
    const env = makeEnv({ uid: 1000, capabilities: [], rlimitMemlock: 3 * P });
    const iopt = new IoPagetable();
    iopt.tableAddDomain(new FakeDomain());
    const va = userBuffer(env.proc, 4);
    iopt.mapUserPages(env.proc, 0x10_0000n, va, 2n * BP, PROT_RW, 0, IOPT_PAGES_ACCOUNT_MM);
    expect(env.proc.mm.lockedVm).toBe(2);
    expect(env.proc.machine.userLockedVm(1000)).toBe(0);
    expect(
      errnoOf(() => iopt.mapUserPages(env.proc, 0x20_0000n, va, 2n * BP, PROT_RW, 0, IOPT_PAGES_ACCOUNT_MM)),
    ).toBe('ENOMEM');
    expect(env.proc.mm.lockedVm).toBe(2);
    iopt.unmapAll();
    expect(env.proc.mm.lockedVm).toBe(0);

    const root = makeEnv({ rlimitMemlock: 0 });
    const t2 = new IoPagetable();
    t2.tableAddDomain(new FakeDomain());
    const rva = userBuffer(root.proc, 2);
    t2.mapUserPages(root.proc, 0x10_0000n, rva, 2n * BP, PROT_RW, 0, IOPT_PAGES_ACCOUNT_MM);
    expect(t2.areas()[0]?.pages.accountMode).toBe(IOPT_PAGES_ACCOUNT_NONE);
    expect(root.proc.mm.pinnedVm).toBe(2);
    expect(root.proc.mm.lockedVm).toBe(0);
    expect(root.proc.capable(CAP.IPC_LOCK)).toBe(true);
  });

  it('maps physically contiguous memory with large pages, or page by page when disabled', () => {
    const env = makeEnv();
    const huge = env.proc.mmap(4n * 2n ** 20n, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    const iopt = new IoPagetable();
    const d = addTestDomain(env);
    iopt.tableAddDomain(d.domain);
    env.driver.calls.length = 0;
    const iova = mapAt(env, iopt, 0x4000_0000n, huge, 4n * 2n ** 20n);
    const maps = env.driver.calls.flatMap((c) => (c.op === 'map_pages' ? [c] : []));
    expect(maps.every((c) => c.pgsize === 2 ** 21)).toBe(true);
    expect(maps.reduce((s, c) => s + c.pgsize * c.count, 0)).toBe(4 * 2 ** 20);
    expect(hwTranslate(env, d.sid, iova + 0x12_3456n)).toBe(
      BigInt(userPa(env.proc, huge + 0x12_3456n) as number),
    );
    iopt.unmapAll();
    iopt.tableRemoveDomain(d.domain);

    iopt.disableLargePages();
    expect(iopt.iovaAlignment).toBe(P);
    iopt.tableAddDomain(d.domain);
    env.driver.calls.length = 0;
    mapAt(env, iopt, 0x4000_0000n, huge, 2n ** 21n);
    const small = env.driver.calls.flatMap((c) => (c.op === 'map_pages' ? [c] : []));
    expect(small.length).toBe(512);
    expect(small.every((c) => c.pgsize === P && c.count === 1)).toBe(true);
  });
});

describe('automatic IOVA allocation', () => {
  it('never returns IOVA 0 and aligns to the lowest set bit of the length', () => {
    const env = makeEnv();
    const va = userBuffer(env.proc, 4);
    for (let len = 1n; len < 2n * BP; len += 97n) {
      const iopt = new IoPagetable();
      const iova = mapAuto(env, iopt, va, len);
      expect(iova).not.toBe(0n);
      expect(iova % (len & -len)).toBe(0n);
    }
  });

  it('keeps the sub-page offset of the source address and stays outside reserved ranges', () => {
    const env = makeEnv();
    const va = userBuffer(env.proc, 4);
    const iopt = new IoPagetable();
    iopt.reserveIova(0n, 0xf_ffffn, null);
    const a = mapAuto(env, iopt, va + 0x123n, 0x100n);
    expect(a % BP).toBe(0x123n);
    expect(a).toBeGreaterThanOrEqual(0x10_0000n);
    const b = mapAuto(env, iopt, va, 4n * BP);
    expect(b).toBeGreaterThanOrEqual(0x10_0000n);
    expect(b % (4n * BP)).toBe(0n);
    expect(iopt.reservedItree.iterFirst(b, b + 4n * BP - 1n)).toBeUndefined();
  });

  it('allocates inside the allowed ranges, ENOSPC when they are full', () => {
    const env = makeEnv();
    const va = userBuffer(env.proc, 4);
    const iopt = new IoPagetable();
    iopt.setAllowIova([{ start: 0x40_0000n, last: 0x40_3fffn }]);
    const a = mapAuto(env, iopt, va, 2n * BP);
    expect(a).toBe(0x40_0000n);
    const b = mapAuto(env, iopt, va, 2n * BP);
    expect(b).toBe(0x40_2000n);
    expect(errnoOf(() => mapAuto(env, iopt, va, BP))).toBe('ENOSPC');
    // Fixed maps ignore the allowed ranges.
    expect(mapAt(env, iopt, 0x1000n, va, BP)).toBe(0x1000n);
  });

  it('fails with EOVERFLOW for huge lengths and EINVAL below the table alignment', () => {
    const env = makeEnv();
    const va = userBuffer(env.proc, 4);
    const iopt = new IoPagetable();
    expect(errnoOf(() => iopt.allocIova(va, 2n ** 63n))).toBe('EOVERFLOW');
    expect(errnoOf(() => iopt.allocIova(va, 0n))).toBe('EOVERFLOW');
    iopt.tableAddDomain(new FakeDomain({ pgsizeBitmap: 0x800n }));
    expect(iopt.iovaAlignment).toBe(2048);
    expect(errnoOf(() => mapAuto(env, iopt, va, 1024n))).toBe('EINVAL');
    expect(errnoOf(() => mapAuto(env, iopt, va + 0x400n, 2048n))).toBe('EINVAL');
    mapAuto(env, iopt, va + 0x800n, 2048n);
  });

  it('caps the alignment at 2 MiB', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const huge = env.proc.mmap(8n * 2n ** 20n, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
    iopt.reserveIova(0n, 0x20_0fffn, null);
    const iova = mapAuto(env, iopt, huge, 8n * 2n ** 20n);
    expect(iova).toBe(0x40_0000n);
  });
});

describe('domains', () => {
  it('reserves outside the aperture and needs a page size up to PAGE_SIZE', () => {
    const iopt = new IoPagetable();
    const mock = new FakeDomain({ pgsizeBitmap: 0x800n, geometry: MOCK_APERTURE });
    iopt.tableAddDomain(mock);
    expect(iopt.iovaRanges()).toEqual([{ start: 1n << 24n, last: (1n << 31n) - 1n }]);
    expect(iopt.iovaAlignment).toBe(P / 2);
    expect(errnoOf(() => iopt.tableAddDomain(mock))).toBe('EEXIST');
    expect(errnoOf(() => iopt.tableAddDomain(new FakeDomain({ pgsizeBitmap: 0x2000n })))).toBe('EINVAL');
    expect(errnoOf(() => iopt.tableAddDomain(new FakeDomain({ pgsizeBitmap: 0n })))).toBe('EINVAL');
    iopt.tableRemoveDomain(mock);
    expect(iopt.iovaRanges()).toEqual([{ start: 0n, last: U64_MAX }]);
    expect(iopt.iovaAlignment).toBe(1);
  });

  it('refuses a domain whose aperture excludes an area or an allowed range (EADDRINUSE)', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const va = userBuffer(env.proc, 1);
    mapAt(env, iopt, 0x1000n, va, BP);
    const mock = new FakeDomain({ geometry: MOCK_APERTURE });
    const before = snapshot(iopt, env.proc, [{ va, pages: 1 }], [mock]);
    expect(errnoOf(() => iopt.tableAddDomain(mock))).toBe('EADDRINUSE');
    expect(snapshot(iopt, env.proc, [{ va, pages: 1 }], [mock])).toEqual(before);
    iopt.unmapAll();
    iopt.setAllowIova([{ start: 1n << 32n, last: (1n << 32n) + 0xfffn }]);
    expect(errnoOf(() => iopt.tableAddDomain(mock))).toBe('EADDRINUSE');
    expect(iopt.reservedItree.size).toBe(0);
  });

  it('refuses a domain when an area does not fit its page size (EADDRINUSE)', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const va = userBuffer(env.proc, 2);
    mapAt(env, iopt, 0x1800n, va, BP);
    expect(errnoOf(() => iopt.tableAddDomain(new FakeDomain()))).toBe('EADDRINUSE');
    expect(iopt.iovaAlignment).toBe(1);
    iopt.tableAddDomain(new FakeDomain({ pgsizeBitmap: 0x800n }));
  });

  it('pins at attach time, reuses PFNs for a second domain and unpins with the last one', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const va = userBuffer(env.proc, 4);
    const iova = mapAuto(env, iopt, va, 4n * BP);
    expect(env.proc.mm.pinnedVm).toBe(0);
    const d1 = addTestDomain(env);
    iopt.tableAddDomain(d1.domain);
    expect(env.proc.mm.pinnedVm).toBe(4);
    const d2 = addTestDomain(env);
    iopt.tableAddDomain(d2.domain);
    expect(env.proc.mm.pinnedVm).toBe(4);
    for (let i = 0; i < 4; i++) {
      const pa = BigInt(userPa(env.proc, va + BigInt(i * P)) as number);
      expect(pinsAt(env.proc, va + BigInt(i * P))).toBe(1);
      expect(hwTranslate(env, d2.sid, iova + BigInt(i * P))).toBe(pa);
    }
    iopt.tableRemoveDomain(d1.domain);
    expect(iopt.areas()[0]?.storageDomain).toBe(d2.domain);
    expect(hwTranslate(env, d1.sid, iova)).toBe('translation');
    expect(pinsAt(env.proc, va)).toBe(1);
    iopt.tableRemoveDomain(d2.domain);
    expect(pinsAt(env.proc, va)).toBe(0);
    expect(env.proc.mm.pinnedVm).toBe(0);
    expect(iopt.areas()[0]?.storageDomain).toBe(null);
    iopt.tableRemoveDomain(d2.domain); // unknown domain: ignored
  });

  it('leaves everything unchanged when filling a new domain fails in a later area', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const va = userBuffer(env.proc, 8);
    mapAt(env, iopt, 0x10_0000n, va, 4n * BP);
    mapAt(env, iopt, 0x20_0000n, va + 4n * BP, 4n * BP);
    env.proc.munmap(va + 6n * BP, BP);
    const first = new FakeDomain();
    const before = snapshot(iopt, env.proc, [{ va, pages: 6 }], [first]);
    expect(errnoOf(() => iopt.tableAddDomain(first))).toBe('EFAULT');
    expect(snapshot(iopt, env.proc, [{ va, pages: 6 }], [first])).toEqual(before);

    // Same with a second domain whose driver fails in the second area.
    iopt.unmapIova(0x20_0000n, 4n * BP);
    mapAt(env, iopt, 0x20_0000n, va + 2n * BP, 4n * BP);
    iopt.tableAddDomain(first);
    const second = new FakeDomain();
    second.failMapAfter = 1;
    const before2 = snapshot(iopt, env.proc, [{ va, pages: 6 }], [first, second]);
    expect(errnoOf(() => iopt.tableAddDomain(second))).toBe('ENOMEM');
    expect(snapshot(iopt, env.proc, [{ va, pages: 6 }], [first, second])).toEqual(before2);
  });

  it('fails with EFAULT when the mapping process exited and nothing holds the pages (fork_gone)', () => {
    const env = makeEnv();
    const child = env.proc.fork();
    const va = userBuffer(child, 2);
    const iopt = new IoPagetable();
    iopt.mapUserPages(child, 0x10_0000n, va, 2n * BP, PROT_RW, 0);
    const withDomain = new IoPagetable();
    const d1 = new FakeDomain();
    withDomain.tableAddDomain(d1);
    withDomain.mapUserPages(child, 0x10_0000n, va, 2n * BP, PROT_RW, 0);
    child.write(va, new Uint8Array([0x77]));
    const childMm = child.mm;
    child.exit();
    expect(errnoOf(() => iopt.tableAddDomain(new FakeDomain()))).toBe('EFAULT');
    const d2 = new FakeDomain();
    withDomain.tableAddDomain(d2);
    expect(d2.dump()).toEqual(d1.dump());
    const out = new Uint8Array(1);
    withDomain.accessRw(0x10_0000n, out, 0, env.proc.mm);
    expect(out[0]).toBe(0x77);
    expect(errnoOf(() => iopt.accessRw(0x10_0000n, out, 0, env.proc.mm))).toBe('EFAULT');
    withDomain.unmapAll();
    withDomain.tableRemoveDomain(d1);
    withDomain.tableRemoveDomain(d2);
    expect(childMm.pinnedVm).toBe(0);
  });

  it('fails with ENOMEM at attach time over RLIMIT_MEMLOCK, leaving everything unchanged', () => {
    const env = makeEnv({ uid: 1000, capabilities: [], rlimitMemlock: 5 * P });
    const iopt = new IoPagetable();
    const va = userBuffer(env.proc, 6);
    mapAt(env, iopt, 0x10_0000n, va, 3n * BP);
    mapAt(env, iopt, 0x20_0000n, va + 3n * BP, 3n * BP);
    const d = new FakeDomain();
    const before = snapshot(iopt, env.proc, [{ va, pages: 6 }], [d]);
    expect(errnoOf(() => iopt.tableAddDomain(d))).toBe('ENOMEM');
    expect(snapshot(iopt, env.proc, [{ va, pages: 6 }], [d])).toEqual(before);
    env.proc.rlimitMemlock = 6 * P;
    iopt.tableAddDomain(d);
    expect(env.proc.machine.userLockedVm(1000)).toBe(6);
  });

  it('pins from the mapping process’s mm when another process attaches (fork_present)', () => {
    const env = makeEnv();
    const child = env.proc.fork();
    const va = userBuffer(child, 2);
    const iopt = new IoPagetable();
    iopt.mapUserPages(child, 0x10_0000n, va, 2n * BP, PROT_RW, 0);
    const d = addTestDomain(env);
    iopt.tableAddDomain(d.domain);
    expect(pinsAt(child, va)).toBe(1);
    expect(hwTranslate(env, d.sid, 0x10_1000n)).toBe(BigInt(userPa(child, va + BP) as number));
    expect(child.mm.pinnedVm).toBe(2);
    expect(env.proc.mm.pinnedVm).toBe(0);
    const out = new Uint8Array(2);
    iopt.accessRw(0x10_1000n, out, 0, env.proc.mm);
    expect([...out]).toEqual([1, 0x5a]);
  });

  it('maps sub-page areas of a half-page domain at their offset', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const mock = new FakeDomain({ pgsizeBitmap: 0x800n, geometry: MOCK_APERTURE });
    iopt.tableAddDomain(mock);
    const va = userBuffer(env.proc, 3);
    const iova = mapAt(env, iopt, (1n << 24n) + 0x800n, va + 0x800n, BP + 0x1000n);
    const area = iopt.areas()[0];
    expect(area?.pageOffset).toBe(0x800);
    expect(area?.pagesStart).toBe(0);
    expect(area?.pagesLast).toBe(2);
    for (let off = 0n; off < BP + 0x1000n; off += 0x800n)
      expect(mock.pa(iova + off)).toBe(BigInt(userPa(env.proc, va + 0x800n + off) as number));
    expect(mock.pa(iova - 0x800n)).toBe(null);
    expect(mock.pa(iova + BP + 0x1000n)).toBe(null);
    expect(mock.entries.size).toBe(4);
  });
});

describe('getPages / mapPages (IOAS_COPY)', () => {
  it('shares pages without new pins or charges, in the same or another table', () => {
    const env = makeEnv({ uid: 1000, capabilities: [], rlimitMemlock: 64 * P });
    const src = new IoPagetable();
    src.tableAddDomain(new FakeDomain());
    const va = userBuffer(env.proc, 8);
    mapAt(env, src, 0x10_0000n, va, 8n * BP);
    const dst = new IoPagetable();
    const d = addTestDomain(env);
    dst.tableAddDomain(d.domain);
    const list = src.getPages(0x10_2000n, 4n * BP);
    expect(list.length).toBe(1);
    expect(list[0]?.pages?.refcount).toBe(2);
    const iova = dst.mapPages(list, 4n * BP, 0n, PROT_RW, IOPT_ALLOC_IOVA);
    for (let i = 0; i < 4; i++) {
      const pa = BigInt(userPa(env.proc, va + BigInt((i + 2) * P)) as number);
      expect(hwTranslate(env, d.sid, iova + BigInt(i * P))).toBe(pa);
    }
    for (let i = 0; i < 8; i++) expect(pinsAt(env.proc, va + BigInt(i * P))).toBe(1);
    expect(env.proc.machine.userLockedVm(1000)).toBe(8);
    expect(env.proc.mm.pinnedVm).toBe(8);
    // Copy within the same table, at a fixed IOVA 0.
    src.mapPages(src.getPages(0x10_0000n, BP), BP, 0n, PROT_RW, 0);
    expect(src.areas().length).toBe(2);
    expect(env.proc.mm.pinnedVm).toBe(8);
    src.unmapAll();
    expect(pinsAt(env.proc, va)).toBe(0);
    expect(pinsAt(env.proc, va + 2n * BP)).toBe(1); // still held by dst's domain
    dst.unmapAll();
    expect(env.proc.mm.pinnedVm).toBe(0);
    expect(env.proc.machine.userLockedVm(1000)).toBe(0);
  });

  it('copies ranges spanning several areas, one destination area per piece', () => {
    const env = makeEnv();
    const src = new IoPagetable();
    const va = userBuffer(env.proc, 8);
    mapAt(env, src, 0x10_0000n, va, 4n * BP);
    mapAt(env, src, 0x10_4000n, va + 4n * BP, 4n * BP);
    const dst = new IoPagetable();
    const d = new FakeDomain();
    dst.tableAddDomain(d);
    const iova = dst.mapPages(src.getPages(0x10_3000n, 2n * BP), 2n * BP, 0x50_0000n, PROT_RW, 0);
    expect(iova).toBe(0x50_0000n);
    expect(dst.areas().map((a) => [a.iova, a.lastIova, a.pagesStart])).toEqual([
      [0x50_0000n, 0x50_0fffn, 3],
      [0x50_1000n, 0x50_1fffn, 0],
    ]);
    expect(d.pa(0x50_1000n)).toBe(BigInt(userPa(env.proc, va + 4n * BP) as number));
  });

  it('fails with ENOENT for gaps and ranges outside the areas (byte sweep), EINVAL for length 0', () => {
    const env = makeEnv();
    const src = new IoPagetable();
    const va = userBuffer(env.proc, 4);
    mapAt(env, src, 0x10_0000n, va, 2n * BP);
    mapAt(env, src, 0x10_3000n, va, BP);
    expect(errnoOf(() => src.getPages(0x10_1000n, 3n * BP))).toBe('ENOENT');
    expect(errnoOf(() => src.getPages(0x10_0000n, 0n))).toBe('EINVAL');
    expect(errnoOf(() => src.getPages(U64_MAX, 2n))).toBe('EOVERFLOW');
    for (let start = 0x10_0000n - 2048n; start < 0x10_2000n + 2048n; start += 511n) {
      const inside = start >= 0x10_0000n && start + 2048n <= 0x10_2000n;
      const r = errnoOf(() => src.freePagesList(src.getPages(start, 2048n)));
      expect(r).toBe(inside ? undefined : 'ENOENT');
    }
    expect(src.areas().every((a) => a.pages.refcount === 1)).toBe(true);
  });

  it('refuses a writable copy of read-only pages with EPERM and drops the list', () => {
    const env = makeEnv();
    const src = new IoPagetable();
    const va = userBuffer(env.proc, 1);
    mapAt(env, src, 0x10_0000n, va, BP, IOMMU_READ);
    const dst = new IoPagetable();
    const list = src.getPages(0x10_0000n, BP);
    expect(errnoOf(() => dst.mapPages(list, BP, 0x1000n, PROT_RW, 0))).toBe('EPERM');
    expect(src.areas()[0]?.pages.refcount).toBe(1);
    expect(dst.areas()).toEqual([]);
    dst.mapPages(src.getPages(0x10_0000n, BP), BP, 0x1000n, IOMMU_READ, 0);
  });
});

describe('unmap', () => {
  it('never splits: partial ranges fail with ENOENT; covering ranges remove whole areas', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    iopt.tableAddDomain(new FakeDomain());
    const va = userBuffer(env.proc, 16);
    for (let i = 0; i < 4; i++)
      mapAt(env, iopt, 0x10_0000n + BigInt(i) * 0x1_0000n, va + BigInt(i * 4 * P), 4n * BP);
    expect(errnoOf(() => iopt.unmapIova(0x10_0000n, BP))).toBe('ENOENT');
    expect(errnoOf(() => iopt.unmapIova(0x10_1000n, 8n * BP))).toBe('ENOENT');
    expect(errnoOf(() => iopt.unmapIova(0x10_0000n, 0n))).toBe('EINVAL');
    expect(errnoOf(() => iopt.unmapIova(U64_MAX, 2n))).toBe('EOVERFLOW');
    expect(iopt.unmapIova(0x5000n, BP)).toBe(0n); // nothing there
    expect(iopt.areas().length).toBe(4);
    const out = { unmapped: -1n };
    expect(iopt.unmapIova(0xf_0000n, 0x10_0000n, out)).toBe(16n * BP);
    expect(out.unmapped).toBe(16n * BP);
    expect(env.proc.mm.pinnedVm).toBe(0);
    expect(iopt.unmapAll()).toBe(0n);
  });

  it('keeps areas removed before a failure and reports their bytes', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const va = userBuffer(env.proc, 4);
    mapAt(env, iopt, 0x10_0000n, va, BP);
    mapAt(env, iopt, 0x10_2000n, va, 2n * BP);
    const out = { unmapped: 0n };
    expect(errnoOf(() => iopt.unmapIova(0x10_0000n, 3n * BP, out))).toBe('ENOENT');
    expect(out.unmapped).toBe(BP);
    expect(iopt.areas().map((a) => a.iova)).toEqual([0x10_2000n]);
  });

  it('fails with EBUSY on a locked area', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const va = userBuffer(env.proc, 1);
    mapAt(env, iopt, 0x10_0000n, va, BP);
    const area = iopt.areas()[0];
    if (area) area.numLocks = 1;
    expect(errnoOf(() => iopt.unmapAll())).toBe('EBUSY');
    if (area) area.numLocks = 0;
    expect(iopt.unmapAll()).toBe(BP);
  });
});

describe('in-kernel accesses', () => {
  function accessEnv() {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const access = new TestAccess(iopt);
    iopt.addAccess(access);
    const va = userBuffer(env.proc, 16);
    return { env, iopt, access, va };
  }

  it('raises the alignment to PAGE_SIZE (EADDRINUSE with a sub-page area) and drops it again', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const va = userBuffer(env.proc, 2);
    mapAt(env, iopt, 0x1800n, va, BP);
    const access = new TestAccess(iopt);
    expect(errnoOf(() => iopt.addAccess(access))).toBe('EADDRINUSE');
    expect(iopt.accesses.size).toBe(0);
    iopt.unmapAll();
    const id = iopt.addAccess(access);
    expect(id).toBe(0);
    expect(iopt.iovaAlignment).toBe(P);
    const second = new TestAccess(iopt, 1);
    expect(iopt.addAccess(second)).toBe(1);
    iopt.removeAccess(access, id);
    expect(iopt.iovaAlignment).toBe(1);
    expect(iopt.addAccess(access)).toBe(0);
  });

  it('takes at most 65536 accesses (EBUSY), reusing the lowest free ID', () => {
    const iopt = new IoPagetable();
    const accesses = Array.from({ length: 65536 }, (_, i) => new TestAccess(iopt, i % 2 === 0 ? P : 1));
    for (const [i, a] of accesses.entries()) expect(iopt.addAccess(a)).toBe(i);
    expect(errnoOf(() => iopt.addAccess(new TestAccess(iopt)))).toBe('EBUSY');
    iopt.removeAccess(accesses[7] as TestAccess);
    expect(iopt.addAccess(new TestAccess(iopt))).toBe(7);
    for (const a of accesses) iopt.removeAccess(a);
    expect(iopt.iovaAlignment).toBe(P); // the replacement at ID 7 pins pages
  });

  it('pins each page once, shared with domains, and reference-counts repeated pins', () => {
    const { env, iopt, access, va } = accessEnv();
    mapAt(env, iopt, 0x10_0000n, va, 8n * BP);
    const pas = access.pin(0x10_1000n, 3n * BP, IOMMUFD_ACCESS_RW_WRITE);
    expect(pas).toEqual([1, 2, 3].map((i) => userPa(env.proc, va + BigInt(i * P))));
    expect(pinsAt(env.proc, va + BP)).toBe(1);
    expect(env.proc.mm.pinnedVm).toBe(3);
    access.pin(0x10_1000n, 3n * BP);
    expect(pinsAt(env.proc, va + BP)).toBe(1);
    expect(iopt.areas()[0]?.numAccesses).toBe(2);
    const d = new FakeDomain();
    iopt.tableAddDomain(d);
    expect(pinsAt(env.proc, va + BP)).toBe(1);
    expect(env.proc.mm.pinnedVm).toBe(8);
    expect(d.pa(0x10_2000n)).toBe(BigInt(pas[1] as number));
    iopt.tableRemoveDomain(d);
    expect(env.proc.mm.pinnedVm).toBe(3);
    expect(pinsAt(env.proc, va)).toBe(0);
    iopt.accessUnpinPages(0x10_1000n, 3n * BP);
    iopt.accessUnpinPages(0x10_1000n, 3n * BP);
    expect(pinsAt(env.proc, va + BP)).toBe(0);
    expect(env.proc.mm.pinnedVm).toBe(0);
    expect(iopt.areas()[0]?.numAccesses).toBe(0);
  });

  it('pins across back-to-back areas and undoes the first area when the second fails', () => {
    const { env, iopt, access, va } = accessEnv();
    mapAt(env, iopt, 0x10_0000n, va, 2n * BP);
    mapAt(env, iopt, 0x10_2000n, va + 2n * BP, 2n * BP, IOMMU_READ);
    expect(access.pin(0x10_1000n, 2n * BP).length).toBe(2);
    const before = snapshot(iopt, env.proc, [{ va, pages: 4 }]);
    expect(errnoOf(() => iopt.accessPinPages(0x10_0000n, 4n * BP, IOMMUFD_ACCESS_RW_WRITE))).toBe('EPERM');
    expect(errnoOf(() => iopt.accessPinPages(0x10_0000n, 5n * BP, 0))).toBe('ENOENT');
    expect(snapshot(iopt, env.proc, [{ va, pages: 4 }])).toEqual(before);
  });

  it('checks length, wrap, alignment and user memory', () => {
    const { env, iopt, va } = accessEnv();
    iopt.removeAccess([...iopt.accesses.values()][0] as IoptAccess);
    mapAt(env, iopt, 0x10_0800n, va + 0x800n, 2n * BP); // sub-page area: iova_alignment is 1 now
    mapAt(env, iopt, 0x20_0000n, va, 2n * BP);
    env.proc.munmap(va + 8n * BP, BP);
    mapAt(env, iopt, 0x30_0000n, va + 7n * BP, 2n * BP);
    expect(errnoOf(() => iopt.accessPinPages(0x20_0000n, 0n, 0))).toBe('EINVAL');
    expect(errnoOf(() => iopt.accessPinPages(U64_MAX, 2n, 0))).toBe('EOVERFLOW');
    expect(errnoOf(() => iopt.accessPinPages(0x10_0800n, BP, 0))).toBe('EINVAL');
    expect(errnoOf(() => iopt.accessPinPages(0x5000n, BP, 0))).toBe('ENOENT');
    const before = snapshot(iopt, env.proc, [{ va, pages: 8 }]);
    expect(errnoOf(() => iopt.accessPinPages(0x30_0000n, 2n * BP, 0))).toBe('EFAULT');
    expect(snapshot(iopt, env.proc, [{ va, pages: 8 }])).toEqual(before);
  });

  it('unmap asks the accesses to let go, then removes the area', () => {
    const { env, iopt, access, va } = accessEnv();
    mapAt(env, iopt, 0x10_0000n, va, 4n * BP);
    access.pin(0x10_1000n, BP);
    expect(iopt.unmapIova(0x10_0000n, 4n * BP)).toBe(4n * BP);
    expect(access.unmapCalls).toEqual([{ iova: 0x10_0000n, length: 4n * BP }]);
    expect(access.pins).toEqual([]);
    expect(pinsAt(env.proc, va + BP)).toBe(0);
    expect(env.proc.mm.pinnedVm).toBe(0);
  });

  it('gives up with EDEADLOCK after 100 retries and blocks new access to the area', () => {
    const { env, iopt, access, va } = accessEnv();
    mapAt(env, iopt, 0x10_0000n, va, 4n * BP);
    access.pin(0x10_0000n, BP);
    access.cooperative = false;
    const out = { unmapped: 1n };
    expect(errnoOf(() => iopt.unmapAll(out))).toBe('EDEADLOCK');
    expect(out.unmapped).toBe(0n);
    expect(access.unmapCalls.length).toBe(101);
    expect(iopt.areas()[0]?.preventAccess).toBe(true);
    expect(errnoOf(() => iopt.accessPinPages(0x10_0000n, BP, 0))).toBe('EINVAL');
    expect(errnoOf(() => iopt.accessRw(0x10_0000n, new Uint8Array(1), 0))).toBe('EINVAL');
    expect(errnoOf(() => iopt.cutIova([0x10_0fffn]))).toBe('EBUSY');
    access.cooperative = true;
    expect(iopt.unmapAll()).toBe(4n * BP);
  });

  it('reads and writes byte-granular across areas and pages, on every path', () => {
    const { env, iopt, va } = accessEnv();
    mapAt(env, iopt, 0x10_0000n, va, 2n * BP);
    mapAt(env, iopt, 0x10_2000n, va + 2n * BP, 2n * BP);
    const data = Uint8Array.from({ length: 20 }, (_, i) => i + 1);
    for (const [flags, cur] of [
      [0, env.proc.mm],
      [__IOMMUFD_ACCESS_RW_SLOW_PATH, env.proc.mm],
      [0, null],
    ] as const) {
      iopt.accessRw(0x10_2000n - 10n, data, flags | IOMMUFD_ACCESS_RW_WRITE, cur);
      expect([...env.proc.read(va + 2n * BP - 10n, 20n)]).toEqual([...data]);
      const back = new Uint8Array(20);
      iopt.accessRw(0x10_2000n - 10n, back, flags, cur);
      expect([...back]).toEqual([...data]);
      data.reverse();
    }
    expect(env.proc.mm.pinnedVm).toBe(0);
    expect(errnoOf(() => iopt.accessRw(0x10_0000n, new Uint8Array(0), 0))).toBe('EINVAL');
    expect(errnoOf(() => iopt.accessRw(0x10_3ff0n, new Uint8Array(32), 0))).toBe('ENOENT');
    expect(errnoOf(() => iopt.accessRw(U64_MAX, new Uint8Array(2), 0))).toBe('EOVERFLOW');
    mapAt(env, iopt, 0x20_0000n, va, BP, IOMMU_READ);
    expect(errnoOf(() => iopt.accessRw(0x20_0000n, new Uint8Array(1), IOMMUFD_ACCESS_RW_WRITE))).toBe(
      'EPERM',
    );
    const ro = env.proc.mmap(BigInt(P), PROT_READ, PRIV);
    mapAt(env, iopt, 0x30_0000n, ro, BP, IOMMU_READ);
    expect(errnoOf(() => iopt.accessRw(0x30_0000n, new Uint8Array(1), 0, env.proc.mm))).toBe(undefined);
  });
});

describe('cutIova (VFIO type1 v1)', () => {
  it('splits areas so part of a mapping can be unmapped, with large pages disabled', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    iopt.disableLargePages();
    const d = new FakeDomain();
    iopt.tableAddDomain(d);
    const va = userBuffer(env.proc, 8);
    mapAt(env, iopt, 0x10_0000n, va, 8n * BP);
    iopt.cutIova([0x10_1fffn, 0x10_5fffn, 0x10_7fffn, 0x10_0000n, 0x90_0000n]);
    expect(iopt.areas().map((a) => [a.iova, a.lastIova])).toEqual([
      [0x10_0000n, 0x10_1fffn],
      [0x10_2000n, 0x10_5fffn],
      [0x10_6000n, 0x10_7fffn],
    ]);
    expect(iopt.areas()[0]?.pages.refcount).toBe(3);
    expect(iopt.unmapIova(0x10_2000n, 4n * BP)).toBe(4n * BP);
    expect(d.pa(0x10_2000n)).toBe(null);
    expect(d.pa(0x10_6000n)).toBe(BigInt(userPa(env.proc, va + 6n * BP) as number));
    expect(pinsAt(env.proc, va + 2n * BP)).toBe(0);
    expect(pinsAt(env.proc, va + 6n * BP)).toBe(1);
    expect(env.proc.mm.pinnedVm).toBe(4);
    iopt.unmapAll();
    expect(env.proc.mm.pinnedVm).toBe(0);
  });

  it('refuses splits that large pages, accesses or alignment forbid (EINVAL)', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const va = userBuffer(env.proc, 8);
    mapAt(env, iopt, 0x10_0000n, va, 8n * BP);
    iopt.tableAddDomain(new FakeDomain());
    expect(errnoOf(() => iopt.cutIova([0x10_1fffn]))).toBe('EINVAL'); // may hold large pages
    iopt.unmapAll();
    iopt.tableRemoveDomain(iopt.domains[0] as FakeDomain);
    iopt.disableLargePages();
    mapAt(env, iopt, 0x10_0000n, va, 8n * BP);
    expect(errnoOf(() => iopt.cutIova([0x10_17ffn]))).toBe('EINVAL'); // not page aligned
    const access = new TestAccess(iopt);
    iopt.addAccess(access);
    access.pin(0x10_0000n, BP);
    expect(errnoOf(() => iopt.cutIova([0x10_1fffn]))).toBe('EINVAL');
    expect(iopt.areas().length).toBe(1);
  });
});

describe('large pages option', () => {
  it('cannot be disabled with domains and areas; misaligned areas give EADDRINUSE', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const va = userBuffer(env.proc, 2);
    mapAt(env, iopt, 0x1800n, va + 0x800n, BP);
    expect(errnoOf(() => iopt.disableLargePages())).toBe('EADDRINUSE');
    expect(iopt.largePagesDisabled).toBe(false);
    expect(iopt.iovaAlignment).toBe(1);
    iopt.unmapAll();
    mapAt(env, iopt, 0x2000n, va, BP);
    iopt.disableLargePages();
    iopt.disableLargePages(); // no-op
    expect(iopt.iovaAlignment).toBe(P);
    expect(errnoOf(() => mapAt(env, iopt, 0x10_0800n, va + 0x800n, 0x800n))).toBe('EINVAL');
    iopt.enableLargePages();
    expect(iopt.iovaAlignment).toBe(1);
    iopt.tableAddDomain(new FakeDomain());
    expect(errnoOf(() => iopt.disableLargePages())).toBe('EINVAL');
  });
});

describe('reserved and allowed ranges', () => {
  it('reservations conflict with areas and allowed ranges; IOVA ranges are their complement', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const va = userBuffer(env.proc, 1);
    mapAt(env, iopt, 0x10_0000n, va, BP);
    expect(errnoOf(() => iopt.reserveIova(0xf_f000n, 0x10_0000n, null))).toBe('EADDRINUSE');
    expect(errnoOf(() => iopt.reserveIova(0x5000n, 0x4fffn, null))).toBe('EINVAL');
    iopt.setAllowIova([{ start: 0x20_0000n, last: 0x2f_ffffn }]);
    expect(errnoOf(() => iopt.reserveIova(0x2f_0000n, 0x30_0000n, null))).toBe('EADDRINUSE');
    const owner = {};
    iopt.reserveIova(0x1000n, 0x1fffn, owner);
    iopt.reserveIova(0x1800n, 0x2fffn, null); // overlapping reservations are fine
    iopt.reserveIova(U64_MAX - 0xfffn, U64_MAX, owner);
    expect(iopt.iovaRanges()).toEqual([
      { start: 0n, last: 0xfffn },
      { start: 0x3000n, last: U64_MAX - 0x1000n },
    ]);
    iopt.removeReservedIova(owner);
    expect(iopt.iovaRanges()).toEqual([
      { start: 0n, last: 0x17ffn },
      { start: 0x3000n, last: U64_MAX },
    ]);
  });

  it('replaces the allowed list as a whole and keeps the old one on EADDRINUSE', () => {
    const iopt = new IoPagetable();
    iopt.setAllowIova([{ start: 0x1000n, last: 0x1fffn }]);
    iopt.reserveIova(0x8000n, 0x8fffn, null);
    expect(errnoOf(() => iopt.setAllowIova([{ start: 0x8800n, last: 0x9fffn }]))).toBe('EADDRINUSE');
    expect([...iopt.allowedItree].map((n) => [n.start, n.last])).toEqual([[0x1000n, 0x1fffn]]);
    expect(errnoOf(() => iopt.setAllowIova([{ start: 5n, last: 5n }]))).toBe('EINVAL');
    expect(
      errnoOf(() =>
        iopt.setAllowIova([
          { start: 0x1000n, last: 0x2000n },
          { start: 0x2000n, last: 0x3000n },
        ]),
      ),
    ).toBe('EINVAL');
    iopt.setAllowIova([]);
    expect(iopt.allowedItree.size).toBe(0);
    expect(() => iopt.destroyTable()).not.toThrow();
  });

  it('enforces device reserved regions, skipping direct-relaxable ones', () => {
    const env = makeEnv(
      {},
      {
        msiWindow: null,
        resvRegions: () => [
          { start: 0x800_0000n, length: 0x10_0000n, prot: 0, type: IommuResvType.SW_MSI },
          { start: 0x100_0000n, length: 0x1000n, prot: 0, type: IommuResvType.RESERVED },
          { start: 0x200_0000n, length: 0x1000n, prot: PROT_RW, type: IommuResvType.DIRECT_RELAXABLE },
        ],
      },
    );
    const dev = addDevice(env);
    const iopt = new IoPagetable();
    expect(iopt.tableEnforceDevResvRegions(dev)).toBe(0x800_0000n);
    expect([...iopt.reservedItree].map((n) => [n.start, n.last, n.value.owner === dev])).toEqual([
      [0x100_0000n, 0x100_0fffn, true],
      [0x800_0000n, 0x80f_ffffn, true],
    ]);
    iopt.removeReservedIova(dev);
    expect(iopt.reservedItree.size).toBe(0);

    // A conflicting region removes every reservation of the owner.
    const va = userBuffer(env.proc, 1);
    mapAt(env, iopt, 0x800_0000n, va, BP);
    expect(errnoOf(() => iopt.tableEnforceDevResvRegions(dev))).toBe('EADDRINUSE');
    expect(iopt.reservedItree.size).toBe(0);
  });

  it('reserves the hardware MSI window and refuses impossible MSI combinations', () => {
    const env = makeEnv();
    const dev = addDevice(env);
    const iopt = new IoPagetable();
    expect(iopt.tableEnforceDevResvRegions(dev, 'owner')).toBe(null);
    expect(iopt.iovaRanges()).toEqual([
      { start: 0n, last: 0xfedf_ffffn },
      { start: 0xfef0_0000n, last: U64_MAX },
    ]);
    const both = makeEnv(
      {},
      { resvRegions: () => [{ start: 0x800_0000n, length: 0x1000n, prot: 0, type: IommuResvType.SW_MSI }] },
    );
    const dev2 = addDevice(both);
    const t2 = new IoPagetable();
    expect(errnoOf(() => t2.tableEnforceDevResvRegions(dev2))).toBe('EINVAL');
    expect(t2.reservedItree.size).toBe(0);
  });
});

describe('debugWalk and destroyTable', () => {
  it('reports each page’s PFN and pin counts', () => {
    const env = makeEnv();
    const iopt = new IoPagetable();
    const va = userBuffer(env.proc, 3);
    mapAt(env, iopt, 0x10_0000n, va, 3n * BP);
    expect(iopt.debugWalk(0x10_0000n, 3n * BP).map((p) => p.pa)).toEqual([null, null, null]);
    const d = new FakeDomain();
    iopt.tableAddDomain(d);
    const walk = iopt.debugWalk(0x10_0800n, 2n * BP);
    expect(walk.map((p) => p.index)).toEqual([0, 1, 2]);
    expect(walk.map((p) => p.iova)).toEqual([0x10_0800n, 0x10_1000n, 0x10_2000n]);
    expect(walk.map((p) => p.pa)).toEqual([0, 1, 2].map((i) => userPa(env.proc, va + BigInt(i * P))));
    expect(walk.every((p) => p.pincount === 1 && p.refcount >= 2)).toBe(true);
    expect(() => iopt.destroyTable()).toThrow(/in use/);
    iopt.unmapAll();
    iopt.tableRemoveDomain(d);
    iopt.destroyTable();
  });
});

describe('a TestIommu domain', () => {
  it('is a real io-pgtable domain (sanity of the test setup)', () => {
    const env = makeEnv();
    expect(addTestDomain(env).domain).toBeInstanceOf(TestPagingDomain);
  });
});
