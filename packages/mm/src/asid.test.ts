import { isErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import { AsidAllocator } from './asid.js';
import { TlbBroadcast, type TlbiOp } from './tlb-broadcast.js';

const mms = (n: number): object[] => Array.from({ length: n }, (_, i) => ({ name: `mm${i}` }));

describe('AsidAllocator', () => {
  it('allocates lazily from 1 and keeps an ASID within a generation', () => {
    const a = new AsidAllocator();
    expect(a.bits).toBe(16);
    const [m1, m2] = mms(2) as [object, object];
    expect(a.asidOf(m1)).toBe(0);
    expect(a.checkAndSwitchContext(m1, 0)).toBe(1);
    expect(a.checkAndSwitchContext(m2, 0)).toBe(2);
    expect(a.checkAndSwitchContext(m1, 0)).toBe(1);
    expect(a.contextOf(m1)).toEqual({ id: 65536 + 1, generation: 65536, asid: 1, pinned: 0 });
    expect(a.activeAsid(0)).toBe(1);
    expect(a.currentGeneration).toBe(65536);
    expect(() => a.checkAndSwitchContext(m1, 1)).toThrow();
  });

  it('rolls over with exact ASIDs before and after, keeping the ASIDs active or reserved on CPUs', () => {
    const b = new TlbBroadcast();
    const flushes: TlbiOp[] = [];
    b.subscribe((op) => flushes.push(op));
    const a = new AsidAllocator({ bits: 8, cpus: 2, broadcast: b });
    const all = mms(260);
    // CPU 1 runs mm0 (ASID 1) and then stays on it.
    expect(a.checkAndSwitchContext(all[0] as object, 1)).toBe(1);
    for (let i = 1; i < 255; i++) expect(a.checkAndSwitchContext(all[i] as object, 0)).toBe(i + 1);
    // 255 ASIDs used: 1 (cpu1, mm0), 2 … 255 (mm1 … mm254; mm254 active on cpu0).
    expect(a.rollovers).toBe(0);
    expect(flushes).toEqual([]);
    const m255 = all[255] as object;
    expect(a.checkAndSwitchContext(m255, 0)).toBe(2); // new generation: 1 and 255 are reserved
    expect(a.rollovers).toBe(1);
    expect(a.currentGeneration).toBe(512);
    expect(flushes).toEqual([{ kind: 'vmalle1is' }]);
    expect(a.flushPending(1)).toBe(true);
    expect(a.flushPending(0)).toBe(false);
    // mm254 was active on cpu0: it keeps 255 in the new generation.
    expect(a.checkAndSwitchContext(all[254] as object, 0)).toBe(255);
    // mm0, reserved for cpu1, keeps 1.
    expect(a.checkAndSwitchContext(all[0] as object, 1)).toBe(1);
    expect(a.flushPending(1)).toBe(false);
    // mm1 had 2, now taken by mm255: it gets the next free one.
    expect(a.checkAndSwitchContext(all[1] as object, 0)).toBe(3);
    // mm2 had 3, taken: next free.
    expect(a.checkAndSwitchContext(all[2] as object, 0)).toBe(4);
    // mm100 had 101, still free in the new generation: it keeps it.
    expect(a.checkAndSwitchContext(all[100] as object, 0)).toBe(101);
    expect(a.contextOf(all[100] as object).generation).toBe(512);
  });

  it('an ASID reserved on an idle CPU survives several rollovers', () => {
    const a = new AsidAllocator({ bits: 8, cpus: 2 });
    const idle = { name: 'idle-cpu-mm' };
    for (let i = 0; i < 40; i++) a.checkAndSwitchContext({}, 0);
    const kept = a.checkAndSwitchContext(idle, 1);
    expect(kept).toBe(41);
    for (let i = 0; i < 3 * 256; i++) {
      const got = a.checkAndSwitchContext({}, 0);
      // nobody else is given the reserved ASID
      expect(got).not.toBe(kept);
      expect(got).not.toBe(0);
    }
    expect(a.rollovers).toBeGreaterThanOrEqual(3);
    expect(a.checkAndSwitchContext(idle, 1)).toBe(kept);
  });

  it('pinned ASIDs survive rollovers and are never reassigned', () => {
    const b = new TlbBroadcast();
    let vmalls = 0;
    b.subscribe((op) => {
      if (op.kind === 'vmalle1is') vmalls++;
    });
    const a = new AsidAllocator({ bits: 8, cpus: 1, broadcast: b });
    const shared = { name: 'sva-mm' };
    for (let i = 0; i < 10; i++) a.checkAndSwitchContext({}, 0);
    expect(a.pin(shared)).toBe(11); // pinning an mm without an ASID allocates one
    expect(a.pin(shared)).toBe(11);
    expect(a.contextOf(shared).pinned).toBe(2);
    expect(a.pinnedCount).toBe(1);
    for (let i = 0; i < 4 * 256; i++) expect(a.checkAndSwitchContext({}, 0)).not.toBe(11);
    expect(a.rollovers).toBeGreaterThanOrEqual(4);
    expect(vmalls).toBe(a.rollovers);
    expect(a.asidOf(shared)).toBe(11);
    expect(a.checkAndSwitchContext(shared, 0)).toBe(11);
    expect(a.contextOf(shared).generation).toBe(a.currentGeneration);
    a.unpin(shared);
    expect(a.pinnedCount).toBe(1);
    a.unpin(shared);
    expect(a.pinnedCount).toBe(0);
    expect(() => a.unpin(shared)).toThrow();
    // Unpinned: after a rollover in which it is not active, ASID 11 can go to someone else.
    a.checkAndSwitchContext({}, 0);
    const seen = new Set<number>();
    for (let i = 0; i < 2 * 256; i++) seen.add(a.checkAndSwitchContext({}, 0));
    expect(seen.has(11)).toBe(true);
  });

  it('limits pinned ASIDs to 2^bits − cpus − 2', () => {
    const a = new AsidAllocator({ bits: 8, cpus: 1 });
    expect(a.maxPinned).toBe(253);
    const pinned = mms(253);
    const asids = new Set<number>();
    for (const m of pinned) asids.add(a.pin(m));
    expect(asids.size).toBe(253);
    expect(asids.has(0)).toBe(false);
    const extra = { name: 'one too many' };
    expect(a.pin(extra)).toBe(0);
    // The remaining ASIDs still serve switches, across rollovers, without touching pinned ones.
    for (let i = 0; i < 10; i++) expect(asids.has(a.checkAndSwitchContext({}, 0))).toBe(false);
    a.unpin(pinned[0] as object);
    expect(a.pin(extra)).not.toBe(0);
  });

  it('release forgets an mm but refuses a pinned one', () => {
    const a = new AsidAllocator({ bits: 8 });
    const m = {};
    a.checkAndSwitchContext(m, 0);
    a.pin(m);
    let code: string | undefined;
    try {
      a.release(m);
    } catch (e) {
      if (isErrnoError(e)) code = e.code;
    }
    expect(code).toBe('EBUSY');
    a.unpin(m);
    a.release(m);
    expect(a.asidOf(m)).toBe(0);
    // Its ASID is not reused before the next rollover.
    expect(a.checkAndSwitchContext({}, 0)).toBe(2);
    expect(() => new AsidAllocator({ cpus: 0 })).toThrow();
  });
});
