// fail_nth points of the mm: mm.alloc_pages (alloc_pages) and mm.pin_user_pages
// (pin_user_pages_remote) fail with ENOMEM and change nothing.
import { faultInjector } from '@iommu-ts/base';
import { errnoOf } from '@iommu-ts/base/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { FOLL_LONGTERM, FOLL_WRITE, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from './mman.js';
import { PhysicalMemory } from './physical-memory.js';
import { Process } from './process.js';

afterEach(() => faultInjector.disarm());

describe('fail_nth: mm.alloc_pages', () => {
  it('the armed allocation fails with ENOMEM; the allocator is unchanged and the next one works', () => {
    const ram = new PhysicalMemory({ size: 16 * 2 ** 20 });
    const before = ram.stats();
    faultInjector.arm(1);
    expect(errnoOf(() => ram.allocPages(2))).toBe('ENOMEM');
    expect(faultInjector.fired).toEqual({ nth: 1, site: 'mm.alloc_pages' });
    faultInjector.disarm();
    expect(ram.stats()).toEqual(before);
    const pa = ram.allocPages(2);
    expect(ram.stats().allocatedPages).toBe(before.allocatedPages + 4);
    ram.freePages(pa, 2);
  });
});

describe('fail_nth: mm.pin_user_pages', () => {
  it('a failed pin takes no pin and no reference, and leaves the pages mapped', () => {
    const ram = new PhysicalMemory({ size: 16 * 2 ** 20 });
    const proc = new Process(ram);
    const va = BigInt(proc.mmap(0x4000n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS));
    for (let off = 0n; off < 0x4000n; off += 0x1000n) proc.write(va + off, new Uint8Array([7]));
    const before = ram.stats();
    faultInjector.arm(1);
    expect(errnoOf(() => proc.pinUserPages(va, 4, FOLL_WRITE | FOLL_LONGTERM))).toBe('ENOMEM');
    expect(faultInjector.fired).toEqual({ nth: 1, site: 'mm.pin_user_pages' });
    faultInjector.disarm();
    expect(ram.stats()).toEqual(before);
    expect(ram.stats().pinnedPages).toBe(0);
    const pages = proc.pinUserPages(va, 4, FOLL_WRITE | FOLL_LONGTERM);
    expect(pages).toHaveLength(4);
    expect(ram.stats().pinnedPages).toBe(4);
    proc.unpinUserPages(pages, false);
    proc.exit();
  });
});
