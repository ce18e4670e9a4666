import { errnoOf } from '@iommu-ts/base/testing';
import { describe, expect, it } from 'vitest';
import { INVALID_IOASID, IoasidSetType } from './constants.js';
import type { IoasidAllocatorOps } from './custom-allocator.js';
import { IoasidSubsystem } from './ioasid-subsystem.js';

/** A host-style allocator: hands out IDs from `start` upwards, remembering frees and the pdata seen. */
function hostAllocator(start: number) {
  const calls: Array<[string, number, unknown]> = [];
  let next = start;
  const alloc = (min: number, _max: number, pdata: unknown): number => {
    const id = Math.max(next++, min);
    calls.push(['alloc', id, pdata]);
    return id;
  };
  const free = (id: number, pdata: unknown): void => {
    calls.push(['free', id, pdata]);
  };
  return { alloc, free, calls, setNext: (n: number) => (next = n) };
}

function make() {
  const logs: Array<[string, string]> = [];
  const sub = new IoasidSubsystem({ log: (l, m) => logs.push([l, m]) });
  const set = sub.setAlloc(null, 100, IoasidSetType.NULL);
  return { sub, logs, set };
}

describe('custom allocators (merged §2.2)', () => {
  it('the first allocator needs an empty default allocator (EAGAIN), global PASIDs included', () => {
    const { sub, logs, set } = make();
    const h = hostAllocator(500);
    const ops: IoasidAllocatorOps = { alloc: h.alloc, free: h.free, pdata: 'p' };
    const id = sub.alloc(set, 1, 10);
    expect(errnoOf(() => sub.registerAllocator(ops))).toBe('EAGAIN');
    expect(logs).toEqual([['warn', 'Default allocator active with outstanding IOASID']]);
    sub.free(set, id);
    const g = sub.allocGlobalPasid(8);
    expect(errnoOf(() => sub.registerAllocator(ops))).toBe('EAGAIN');
    sub.freeGlobalPasid(g);
    sub.registerAllocator(ops);
    expect(errnoOf(() => sub.registerAllocator(ops))).toBe('EEXIST');
    expect(sub.alloc(set, 1, 10)).toBe(500);
    expect(h.calls).toEqual([['alloc', 500, 'p']]);
  });

  it('records custom IDs in the shared space: duplicates fail and are handed back', () => {
    const { sub, set } = make();
    const h = hostAllocator(1);
    sub.registerAllocator({ alloc: h.alloc, free: h.free });
    expect(sub.alloc(set, 1, 10)).toBe(1);
    // a global PASID takes 2 out of the shared space, the custom allocator then offers 2
    expect(sub.allocGlobalPasid(16)).toBe(2);
    const before = set.nrIoasids;
    expect(sub.alloc(set, 1, 10)).toBe(INVALID_IOASID);
    expect(set.nrIoasids).toBe(before);
    expect(h.calls.at(-1)).toEqual(['free', 2, undefined]);
    expect(sub.alloc(set, 1, 10)).toBe(3);
    // a custom allocator failure
    const failing = { alloc: () => INVALID_IOASID, free: () => {} };
    const { sub: sub2, set: set2 } = make();
    sub2.registerAllocator(failing);
    expect(sub2.alloc(set2, 1, 10)).toBe(INVALID_IOASID);
    expect(set2.nrIoasids).toBe(0);
  });

  it('release calls the allocating group’s free with the group pdata', () => {
    const { sub, set } = make();
    const h = hostAllocator(40);
    sub.registerAllocator({ alloc: h.alloc, free: h.free, pdata: 'first' });
    const id = sub.alloc(set, 1, 100);
    sub.get(set, id);
    sub.free(set, id);
    expect(h.calls.filter((c) => c[0] === 'free')).toEqual([]);
    expect(sub.put(set, id)).toBe(true);
    expect(h.calls.at(-1)).toEqual(['free', 40, 'first']);
  });

  it('ops with the same functions share one group; queued allocators take over in order', () => {
    const { sub, logs, set } = make();
    const h = hostAllocator(100);
    const a: IoasidAllocatorOps = { alloc: h.alloc, free: h.free, pdata: 'a' };
    const b: IoasidAllocatorOps = { alloc: h.alloc, free: h.free, pdata: 'b' };
    const k = hostAllocator(900);
    const c: IoasidAllocatorOps = { alloc: k.alloc, free: k.free, pdata: 'c' };
    sub.registerAllocator(a);
    sub.registerAllocator(b); // joins a
    sub.registerAllocator(c); // queued
    expect(errnoOf(() => sub.registerAllocator(b))).toBe('EEXIST');
    expect(logs.splice(0)).toEqual([['error', 'IOASID allocator already registered']]);
    const x = sub.alloc(set, 1, 1000);
    expect(h.calls.at(-1)).toEqual(['alloc', 100, 'a']);
    sub.unregisterAllocator(a); // b keeps the group and its IDs
    const y = sub.alloc(set, 1, 1000);
    expect(h.calls.at(-1)).toEqual(['alloc', 101, 'b']);
    sub.free(set, x);
    expect(h.calls.at(-1)).toEqual(['free', 100, 'b']);
    expect(logs).toEqual([]);
    sub.unregisterAllocator(b); // group gone with an outstanding ID → warning; c takes over
    expect(logs).toEqual([['warn', 'IOASID allocator unregistered with 1 outstanding IOASIDs']]);
    expect(sub.alloc(set, 1, 1000)).toBe(900);
    expect(k.calls.at(-1)).toEqual(['alloc', 900, 'c']);
    // the orphan ID stays valid and is freed without calling the removed group
    const hFrees = h.calls.length;
    sub.free(set, y);
    expect(h.calls.length).toBe(hFrees);
    expect(sub.ioasidInfo(y)).toBeUndefined();
    sub.unregisterAllocator(c); // back to the default allocator
    expect(sub.alloc(set, 1, 1000)).toBe(1);
    sub.unregisterAllocator(c);
    expect(logs.at(-1)?.[0]).toBe('warn');
  });

  it('custom allocator functions run under the IOASID lock', () => {
    const { sub, set } = make();
    sub.registerAllocator({
      alloc: () => {
        sub.findMmSet({});
        return 1;
      },
      free: () => {},
    });
    expect(() => sub.alloc(set, 1, 10)).toThrow(/deadlock: findMmSet\(\)/);
    expect(set.nrIoasids).toBe(0);
    expect(sub.locked).toBe(false);
  });
});
