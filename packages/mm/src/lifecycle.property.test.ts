// Acceptance 3: random mmap/munmap/mprotect/madvise/fork/write/pin/unpin/migrate/exit sequences keep
// refcounts, map counts, pin counts and accounting balanced, and free every page at the end.

import { isErrnoError } from '@iommu-ts/base';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  accountLockedVm,
  addPinnedVm,
  decUserLockedVm,
  FOLL_LONGTERM,
  FOLL_WRITE,
  incUserLockedVm,
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  Machine,
  type Mm,
  PAGE_SIZE,
  type Process,
} from './index.js';
import { checkRefcounts } from './mm.test-helpers.js';

const P = PAGE_SIZE;
const BASE = 0x4000_0000;
const SPAN = 64; // pages of the playground

const H = 0x20_0000;
// Addresses: the small playground [BASE, BASE + SPAN pages) or the two 2 MiB slots above it.
const addr = fc.oneof(
  { weight: 4, arbitrary: fc.nat(SPAN * P - 1).map((x) => BASE + x) },
  { weight: 1, arbitrary: fc.nat(2 * H - 1).map((x) => BASE + H + x) },
);
const page = addr.map((a) => Math.floor(a / P) * P);
const op = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('mmap' as const),
      at: page,
      n: fc.integer({ min: 1, max: 16 }),
      prot: fc.nat(7),
      shared: fc.boolean(),
      huge: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('munmap' as const), at: page, n: fc.integer({ min: 1, max: 16 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('mprotect' as const),
      at: page,
      n: fc.integer({ min: 1, max: 16 }),
      prot: fc.nat(7),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('dontneed' as const),
      at: page,
      n: fc.integer({ min: 1, max: 8 }),
    }),
  },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('write' as const), at: addr, v: fc.nat(255) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('read' as const), at: addr }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('fork' as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('exit' as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('pin' as const),
      at: page,
      n: fc.integer({ min: 1, max: 4 }),
      write: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('unpin' as const), i: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('migrate' as const), at: page }) },
);
const step = fc.record({ who: fc.nat(), op });

interface Pin {
  pages: number[];
  owner: Process;
  mm: Mm;
}

describe.each(['arm64', 'x86_64'] as const)('%s: balanced counts under random sequences', (arch) => {
  it('refcounts, pins and accounting balance; zero pages allocated at the end', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 10, maxLength: 60, size: 'max' }), (steps) => {
        const m = new Machine();
        const start = m.memory.stats().allocatedPages;
        const procs: Process[] = [
          m.createProcess({ arch, uid: 1000, capabilities: [], rlimitMemlock: 32 * P }),
        ];
        (procs[0] as Process).mmap(SPAN * P, 3, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, BASE);
        const pins: Pin[] = [];
        const pinCounts = new Map<number, number>();
        const live = () => procs.filter((p) => !p.exited);
        for (const { who, op: o } of steps) {
          const alive = live();
          if (alive.length === 0) break;
          const p = alive[who % alive.length] as Process;
          try {
            switch (o.k) {
              case 'mmap': {
                const huge = o.huge && o.at >= BASE + H;
                const at = huge ? Math.floor(o.at / H) * H : o.at;
                const flags =
                  (o.shared ? MAP_SHARED : MAP_PRIVATE) |
                  MAP_ANONYMOUS |
                  MAP_FIXED |
                  (huge ? MAP_HUGETLB : 0);
                p.mmap(o.n * P, o.prot, flags, at);
                break;
              }
              case 'munmap':
                p.munmap(o.at, o.n * P);
                break;
              case 'mprotect':
                p.mprotect(o.at, o.n * P, o.prot);
                break;
              case 'dontneed':
                p.madvise(o.at, o.n * P, MADV_DONTNEED);
                break;
              case 'write':
                p.write(o.at, new Uint8Array([o.v]));
                break;
              case 'read':
                p.read(o.at, 1);
                break;
              case 'fork':
                if (procs.length < 6) procs.push(p.fork());
                break;
              case 'exit':
                p.exit();
                break;
              case 'pin': {
                const pages = p.pinUserPages(o.at, o.n, (o.write ? FOLL_WRITE : 0) | FOLL_LONGTERM);
                try {
                  incUserLockedVm(p, pages.length);
                } catch (e) {
                  p.unpinUserPages(pages, false);
                  throw e;
                }
                accountLockedVm(p.mm, pages.length, true, p);
                addPinnedVm(p.mm, pages.length);
                pins.push({ pages, owner: p, mm: p.mm });
                for (const pa of pages) {
                  const h = m.memory.compoundHead(pa);
                  pinCounts.set(h, (pinCounts.get(h) ?? 0) + 1);
                }
                break;
              }
              case 'unpin': {
                const pin = pins.splice(o.i % Math.max(1, pins.length), 1)[0];
                if (pin === undefined) break;
                unpin(pin);
                break;
              }
              case 'migrate':
                p.migratePage(o.at);
                break;
            }
          } catch (e) {
            if (!isErrnoError(e)) throw e;
          }
          expect(checkRefcounts(m, procs, pinCounts)).toEqual([]);
        }
        function unpin(pin: Pin): void {
          // Heads first: the last unpin of a huge page frees it, and a freed block has no compound head.
          const heads = pin.pages.map((pa) => m.memory.compoundHead(pa));
          pin.owner.unpinUserPages(pin.pages, true);
          decUserLockedVm(pin.owner, pin.pages.length);
          if (!pin.mm.dead) {
            accountLockedVm(pin.mm, pin.pages.length, false, pin.owner);
            addPinnedVm(pin.mm, -pin.pages.length);
          }
          for (const h of heads) {
            const n = (pinCounts.get(h) ?? 0) - 1;
            if (n === 0) pinCounts.delete(h);
            else pinCounts.set(h, n);
          }
        }
        for (const p of live()) {
          const liveMm = p.mm;
          const mine = pins.filter((x) => x.mm === liveMm);
          const locked = mine.reduce((s, x) => s + x.pages.length, 0);
          expect(liveMm.pinnedVm).toBe(locked);
          expect(liveMm.lockedVm).toBe(locked);
        }
        expect(m.userLockedVm(1000)).toBe(pins.reduce((s, x) => s + x.pages.length, 0));
        for (const p of procs) p.exit();
        for (const pin of pins.splice(0)) unpin(pin);
        expect(m.userLockedVm(1000)).toBe(0);
        expect(m.memory.stats().allocatedPages).toBe(start);
      }),
      { numRuns: 120 },
    );
  });
});
