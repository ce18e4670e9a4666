import { ErrnoError, Scheduler, Work } from '@iommu-ts/base';
import { errnoOf } from '@iommu-ts/base/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  INVALID_IOASID,
  type Ioasid,
  IoasidNotify,
  IoasidPrio,
  IoasidSetType,
  IoasidState,
  PCI_PASID_MAX,
} from './constants.js';
import type { IoasidSet } from './ioasid-set.js';
import { type IoasidChargeHooks, IoasidSubsystem } from './ioasid-subsystem.js';
import type { IoasidNbArgs, IoasidNotifierBlock } from './notifier.js';

const { NULL, MM } = IoasidSetType;

function make(options: { cyclic?: boolean } = {}) {
  const logs: Array<[string, string]> = [];
  const sub = new IoasidSubsystem({ ...options, log: (level, message) => logs.push([level, message]) });
  return { sub, logs };
}

interface Rec {
  name: string;
  event: IoasidNotify;
  id: Ioasid;
  spid: Ioasid;
  set: IoasidSet;
  pdata: unknown;
}

function recorder(
  log: Rec[],
  name: string,
  priority?: number,
  extra?: (e: IoasidNotify, a: IoasidNbArgs) => void,
) {
  const nb: IoasidNotifierBlock = {
    notifierCall(event, a) {
      log.push({ name, event, id: a.id, spid: a.spid, set: a.set, pdata: a.pdata });
      extra?.(event, a);
    },
    ...(priority === undefined ? {} : { priority }),
  };
  return nb;
}

class CountingHooks implements IoasidChargeHooks {
  charged = 0;
  uncharged = 0;
  refuse = false;
  charge(_set: IoasidSet): void {
    if (this.refuse) throw new ErrnoError('EAGAIN', 'over limit');
    this.charged++;
  }
  uncharge(_set: IoasidSet): void {
    this.uncharged++;
  }
  get balance(): number {
    return this.charged - this.uncharged;
  }
}

describe('capacity (§3.1)', () => {
  it('starts at 2^20 and installs once', () => {
    const { sub, logs } = make();
    expect(sub.capacity).toBe(PCI_PASID_MAX);
    expect(sub.capacityAvail).toBe(PCI_PASID_MAX);
    expect(sub.installCapacity(1000)).toBe(true);
    expect([sub.capacity, sub.capacityAvail]).toEqual([1000, 1000]);
    expect(sub.installCapacity(2000)).toBe(false);
    expect(sub.capacity).toBe(1000);
    expect(logs).toEqual([['warn', 'IOASID capacity is already set.']]);
  });

  it('reserves and cancels', () => {
    const { sub } = make();
    sub.installCapacity(100);
    expect(sub.reserveCapacity(30)).toBe(30);
    expect(sub.capacityAvail).toBe(70);
    expect(errnoOf(() => sub.reserveCapacity(71))).toBe('ENOSPC');
    expect(sub.capacityAvail).toBe(70);
    expect(sub.reserveCapacity(0)).toBe(70);
    expect(sub.capacityAvail).toBe(0);
    expect(sub.cancelCapacity(60)).toBe(60);
    expect(errnoOf(() => sub.cancelCapacity(41))).toBe('EINVAL');
    expect(sub.cancelCapacity(40)).toBe(100);
    expect(() => sub.reserveCapacity(-1)).toThrow(RangeError);
  });
});

describe('sets (§3.2)', () => {
  it('checks type, quota, capacity, token and duplicates in order', () => {
    const { sub } = make();
    sub.installCapacity(100);
    const mm = {};
    // type first: even with an impossible quota and a bad token
    expect(errnoOf(() => sub.setAlloc(null, 1000, 3))).toBe('EINVAL');
    // quota before token rules
    expect(errnoOf(() => sub.setAlloc(null, 101, MM))).toBe('ENOSPC');
    expect(errnoOf(() => sub.setAlloc(null, 10, MM))).toBe('EINVAL');
    expect(errnoOf(() => sub.setAlloc(mm, 10, NULL))).toBe('EINVAL');
    expect(errnoOf(() => sub.setAlloc(null, 10, 0))).toBe('EINVAL');
    const a = sub.setAlloc(mm, 10, MM);
    expect([a.id, a.token, a.type, a.quota, a.nrIoasids, a.freePending, a.registered]).toEqual([
      0,
      mm,
      MM,
      10,
      0,
      false,
      true,
    ]);
    expect(sub.capacityAvail).toBe(90);
    expect(errnoOf(() => sub.setAlloc(mm, 10, MM))).toBe('EEXIST');
    // quota is checked before the duplicate token
    expect(errnoOf(() => sub.setAlloc(mm, 91, MM))).toBe('ENOSPC');
    // NULL tokens are never unique-checked
    const n1 = sub.setAlloc(null, 5, NULL);
    const n2 = sub.setAlloc(null, 5, NULL);
    expect([n1.id, n2.id]).toEqual([1, 2]);
    expect(sub.capacityAvail).toBe(80);
    // quota 0 takes all that remains
    const all = sub.setAlloc(null, 0, NULL);
    expect(all.quota).toBe(80);
    expect(sub.capacityAvail).toBe(0);
    expect(errnoOf(() => sub.setAlloc(null, 1, NULL))).toBe('ENOSPC');
    expect(sub.findMmSet(mm)).toBe(a);
    expect(sub.findMmSet({})).toBeUndefined();
  });

  it('setFree: EINVAL, EBUSY + free-pending, auto-destroy, token reuse, no quota refund', () => {
    const { sub } = make();
    const mm = {};
    const set = sub.setAlloc(mm, 10, MM);
    const id = sub.alloc(set, 1, 100);
    expect(errnoOf(() => sub.setFree(set))).toBe('EBUSY');
    expect(set.freePending).toBe(true);
    expect(set.registered).toBe(true);
    sub.free(set, id);
    expect(set.registered).toBe(false);
    expect(sub.findMmSet(mm)).toBeUndefined();
    expect(errnoOf(() => sub.setFree(set))).toBe('EINVAL');
    expect(sub.capacityAvail).toBe(PCI_PASID_MAX - 10);
    const again = sub.setAlloc(mm, 10, MM);
    expect(again.id).toBe(0);
    expect(again).not.toBe(set);
    sub.setFree(again);
    expect(again.registered).toBe(false);
  });

  it('an emptied set that was never freed survives', () => {
    const { sub } = make();
    const set = sub.setAlloc(null, 10, NULL);
    sub.free(set, sub.alloc(set, 1, 10));
    expect(set.registered).toBe(true);
    expect(set.nrIoasids).toBe(0);
  });

  it('iterates in ascending order and frees all', () => {
    const { sub } = make();
    const set = sub.setAlloc(null, 10, NULL);
    const other = sub.setAlloc(null, 10, NULL);
    sub.alloc(other, 1, 100);
    for (const min of [50, 20, 70, 10]) sub.alloc(set, min, 100);
    const seen: number[] = [];
    sub.setForEachIoasid(set, (id) => seen.push(id));
    expect(seen).toEqual([10, 20, 50, 70]);
    sub.get(set, 20);
    const events: Rec[] = [];
    sub.registerNotifier(null, recorder(events, 'g'));
    sub.freeAllInSet(set);
    expect(events.map((e) => [e.event, e.id])).toEqual([[IoasidNotify.FREE, 20]]);
    expect(set.nrIoasids).toBe(1);
    expect(sub.ioasidInfo(20)?.state).toBe(IoasidState.FREE_PENDING);
    expect(sub.ioasidInfo(10)).toBeUndefined();
    expect(sub.put(set, 20)).toBe(true);
    expect(set.nrIoasids).toBe(0);
    expect(other.nrIoasids).toBe(1);
    sub.freeAllInSet(set); // empty: nothing
  });

  it('findSet', () => {
    const { sub } = make();
    const set = sub.setAlloc(null, 10, NULL);
    const id = sub.alloc(set, 5, 10);
    expect(sub.findSet(id)).toBe(set);
    expect(errnoOf(() => sub.findSet(6))).toBe('ENOENT');
  });
});

describe('allocation (§3.3)', () => {
  it('hands out the lowest free ID in [min, max], respects quota and ranges', () => {
    const { sub, logs } = make();
    const set = sub.setAlloc(null, 3, NULL);
    expect(sub.alloc(set, 5, 7)).toBe(5);
    expect(sub.alloc(set, 5, 7)).toBe(6);
    sub.free(set, 5);
    expect(sub.alloc(set, 5, 7)).toBe(5);
    expect(sub.alloc(set, 5, 7)).toBe(7);
    expect(set.nrIoasids).toBe(3);
    expect(sub.alloc(set, 0, 100)).toBe(INVALID_IOASID);
    expect(logs.at(-1)?.[0]).toBe('error');
    const big = sub.setAlloc(null, 10, NULL);
    expect(sub.alloc(big, 5, 7)).toBe(INVALID_IOASID); // range full
    expect(sub.alloc(big, 9, 8)).toBe(INVALID_IOASID);
    expect(sub.alloc(big, -1, 8)).toBe(INVALID_IOASID);
    expect(sub.alloc(big, 0xffff_ffff, 0xffff_ffff)).toBe(INVALID_IOASID);
    expect(sub.alloc(big, 0xffff_fffe, 0xffff_ffff)).toBe(0xffff_fffe);
    expect(big.nrIoasids).toBe(1);
  });

  it('fails for null, unknown and destroyed sets', () => {
    const { sub } = make();
    const other = make().sub.setAlloc(null, 1, NULL);
    expect(sub.alloc(null, 0, 10)).toBe(INVALID_IOASID);
    expect(sub.alloc(other, 0, 10)).toBe(INVALID_IOASID);
    const set = sub.setAlloc(null, 1, NULL);
    sub.setFree(set);
    expect(sub.alloc(set, 0, 10)).toBe(INVALID_IOASID);
  });

  it('allocates cyclically when asked', () => {
    const { sub } = make({ cyclic: true });
    const set = sub.setAlloc(null, 10, NULL);
    const a = sub.alloc(set, 1, 3);
    sub.free(set, a);
    expect(sub.alloc(set, 1, 3)).toBe(2);
  });

  it('stores private data and sends ALLOC on the set chain only', () => {
    const { sub } = make();
    const set = sub.setAlloc(null, 10, NULL);
    const events: Rec[] = [];
    sub.registerNotifier(set, recorder(events, 'set'));
    sub.registerNotifier(null, recorder(events, 'global'));
    const priv = { tag: 1 };
    const id = sub.alloc(set, 1, 10, priv);
    expect(events).toEqual([
      { name: 'set', event: IoasidNotify.ALLOC, id, spid: INVALID_IOASID, set, pdata: priv },
    ]);
    expect(sub.ioasidInfo(id)).toEqual({
      id,
      set,
      spid: INVALID_IOASID,
      state: IoasidState.IDLE,
      refs: 1,
      private: priv,
    });
  });

  it('charges MM sets and a failed allocation changes nothing', () => {
    const { sub } = make();
    const hooks = new CountingHooks();
    sub.setChargeHooks(hooks);
    const mm = {};
    const set = sub.setAlloc(mm, 2, MM);
    const nul = sub.setAlloc(null, 2, NULL);
    const avail = sub.capacityAvail;
    const a = sub.alloc(set, 1, 2);
    expect(hooks.charged).toBe(1);
    sub.alloc(nul, 1, 100);
    expect(hooks.charged).toBe(1); // NULL sets are never charged
    // range full (1 is taken, 2 by the NULL set... no: 2 is free) -> fill range 1..1
    expect(sub.alloc(set, 1, 1)).toBe(INVALID_IOASID);
    expect(hooks.balance).toBe(1);
    expect(sub.alloc(set, 1, 100)).toBe(3);
    // quota reached
    expect(sub.alloc(set, 1, 100)).toBe(INVALID_IOASID);
    expect(hooks.balance).toBe(2);
    expect(set.nrIoasids).toBe(2);
    // refused charge
    sub.free(set, a);
    hooks.refuse = true;
    expect(sub.alloc(set, 1, 100)).toBe(INVALID_IOASID);
    expect([set.nrIoasids, hooks.balance]).toEqual([1, 1]);
    hooks.refuse = false;
    sub.free(set, 3);
    expect(hooks.balance).toBe(0);
    expect(hooks.uncharged).toBe(hooks.charged);
    expect(sub.capacityAvail).toBe(avail);
  });

  it('property: any sequence of allocs and frees keeps counts and hooks balanced', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant('alloc' as const),
              min: fc.nat(20),
              len: fc.nat(5),
              refuse: fc.boolean(),
            }),
            fc.record({ op: fc.constant('free' as const), pick: fc.nat(30) }),
            fc.record({ op: fc.constant('get' as const), pick: fc.nat(30) }),
            fc.record({ op: fc.constant('put' as const), pick: fc.nat(30) }),
          ),
          { maxLength: 60 },
        ),
        (ops) => {
          const { sub } = make();
          const hooks = new CountingHooks();
          sub.setChargeHooks(hooks);
          const set = sub.setAlloc({}, 6, MM);
          const live = new Set<number>();
          for (const o of ops) {
            if (o.op === 'alloc') {
              hooks.refuse = o.refuse;
              const before = set.nrIoasids;
              const id = sub.alloc(set, o.min, o.min + o.len);
              if (id === INVALID_IOASID) expect(set.nrIoasids).toBe(before);
              else {
                expect(id).toBeGreaterThanOrEqual(o.min);
                expect(id).toBeLessThanOrEqual(o.min + o.len);
                expect(live.has(id)).toBe(false);
                live.add(id);
              }
            } else {
              const ids = [...live];
              const id = ids[o.pick % Math.max(ids.length, 1)];
              if (id === undefined) continue;
              if (o.op === 'free') sub.free(set, id);
              else if (o.op === 'get') errnoOf(() => sub.get(set, id));
              else sub.put(set, id);
              if (sub.ioasidInfo(id) === undefined) live.delete(id);
            }
            expect(set.nrIoasids).toBe(live.size);
            expect(hooks.balance).toBe(live.size);
            expect(set.nrIoasids).toBeLessThanOrEqual(set.quota);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('free, get, put and find (§3.4)', () => {
  it('double free is a no-op with a single FREE event', () => {
    const { sub } = make();
    const set = sub.setAlloc(null, 10, NULL);
    const events: Rec[] = [];
    sub.registerNotifier(set, recorder(events, 'set'));
    sub.registerNotifier(null, recorder(events, 'global'));
    const id = sub.alloc(set, 1, 10);
    sub.get(set, id);
    events.length = 0;
    sub.free(set, id);
    expect(events.map((e) => [e.name, e.event, e.id])).toEqual([
      ['global', IoasidNotify.FREE, id],
      ['set', IoasidNotify.FREE, id],
    ]);
    sub.free(set, id);
    sub.free(null, id);
    expect(events).toHaveLength(2);
    expect(sub.ioasidInfo(id)).toMatchObject({ state: IoasidState.FREE_PENDING, refs: 1 });
    expect(errnoOf(() => sub.get(set, id))).toBe('EBUSY');
    expect(errnoOf(() => sub.get(null, id))).toBe('EBUSY');
    expect(sub.find(set, id)).toBeUndefined(); // still found while FREE_PENDING
    expect(sub.put(set, id)).toBe(true);
    expect(sub.ioasidInfo(id)).toBeUndefined();
    expect(set.nrIoasids).toBe(0);
    expect(events).toHaveLength(2);
    // put after free / release
    expect(sub.put(set, id)).toBe(false);
    expect(sub.alloc(set, 1, 10)).toBe(id);
  });

  it('free as the last reference releases without any event; second free logs', () => {
    const { sub, logs } = make();
    const set = sub.setAlloc(null, 10, NULL);
    const events: Rec[] = [];
    sub.registerNotifier(set, recorder(events, 'set'));
    sub.registerNotifier(null, recorder(events, 'global'));
    const id = sub.alloc(set, 1, 10);
    events.length = 0;
    sub.free(set, id);
    expect(events).toEqual([]);
    expect(sub.ioasidInfo(id)).toBeUndefined();
    sub.free(set, id);
    expect(logs).toEqual([['error', `Trying to free unknown IOASID ${id}`]]);
  });

  it('a NULL set does not bypass free’s set check; wrong set only warns', () => {
    const { sub, logs } = make();
    const set = sub.setAlloc(null, 10, NULL);
    const other = sub.setAlloc(null, 10, NULL);
    const id = sub.alloc(set, 1, 10);
    sub.free(null, id);
    sub.free(other, id);
    expect(sub.ioasidInfo(id)).toMatchObject({ state: IoasidState.IDLE, refs: 1 });
    expect(logs.map((l) => l[0])).toEqual(['warn', 'warn']);
  });

  it('get/put/find errnos and sentinels', () => {
    const { sub } = make();
    const set = sub.setAlloc(null, 10, NULL);
    const other = sub.setAlloc(null, 10, NULL);
    const id = sub.alloc(set, 1, 10, 'priv');
    expect(errnoOf(() => sub.get(set, 99))).toBe('EINVAL');
    expect(errnoOf(() => sub.get(other, id))).toBe('EACCES');
    sub.get(null, id);
    sub.get(set, id);
    expect(sub.ioasidInfo(id)?.refs).toBe(3);
    expect(sub.put(other, id)).toBe(false);
    expect(sub.put(set, 99)).toBe(false);
    expect(sub.ioasidInfo(id)?.refs).toBe(3);
    expect(sub.put(null, id)).toBe(false);
    expect(errnoOf(() => sub.find(set, 99))).toBe('ENOENT');
    expect(errnoOf(() => sub.find(other, id))).toBe('EACCES');
    expect(sub.find(null, id)).toBe('priv');
    expect(sub.find(set, id, (p) => p === 'priv')).toBe('priv');
    expect(sub.find(set, id, () => false)).toBeUndefined();
    // put of an IDLE IOASID down to zero releases it without FREE_PENDING
    expect(sub.put(set, id)).toBe(false);
    expect(sub.put(set, id)).toBe(true);
    expect(set.nrIoasids).toBe(0);
  });

  it('refcount lifecycle: free with references remaining, reclaimed on the last put', () => {
    const { sub } = make();
    const set = sub.setAlloc(null, 10, NULL);
    const id = sub.alloc(set, 1, 10);
    sub.get(set, id);
    sub.get(set, id);
    sub.free(set, id);
    expect(sub.ioasidInfo(id)).toMatchObject({ state: IoasidState.FREE_PENDING, refs: 2 });
    expect(sub.put(set, id)).toBe(false);
    expect(set.nrIoasids).toBe(1);
    expect(sub.put(set, id)).toBe(true);
    expect(set.nrIoasids).toBe(0);
  });

  it('private data attach/detach/set', () => {
    const { sub, logs } = make();
    const set = sub.setAlloc(null, 10, NULL);
    const id = sub.alloc(set, 1, 10);
    expect(errnoOf(() => sub.attachData(99, 1))).toBe('ENOENT');
    sub.attachData(id, 'a');
    expect(errnoOf(() => sub.attachData(id, 'b'))).toBe('EBUSY');
    expect(sub.find(set, id)).toBe('a');
    sub.setData(id, 'c');
    expect(sub.find(set, id)).toBe('c');
    expect(errnoOf(() => sub.setData(99, 1))).toBe('ENOENT');
    sub.detachData(id);
    expect(sub.find(set, id)).toBeUndefined();
    sub.attachData(id, 'd');
    sub.detachData(99);
    expect(logs).toEqual([['warn', 'Trying to detach data from unknown IOASID 99']]);
  });
});

describe('SPIDs (§3.6)', () => {
  it('attach, collide, find, detach; the same SPID in different sets', () => {
    const { sub, logs } = make();
    const s1 = sub.setAlloc(null, 10, NULL);
    const s2 = sub.setAlloc(null, 10, NULL);
    const events: Rec[] = [];
    sub.registerNotifier(s1, recorder(events, 's1'));
    sub.registerNotifier(null, recorder(events, 'g'));
    const a = sub.alloc(s1, 1, 100);
    const b = sub.alloc(s1, 1, 100);
    const c = sub.alloc(s2, 1, 100);
    events.length = 0;
    expect(errnoOf(() => sub.attachSpid(a, INVALID_IOASID))).toBe('EINVAL');
    expect(errnoOf(() => sub.attachSpid(99, 7))).toBe('ENOENT');
    sub.attachSpid(a, 7);
    expect(events.map((e) => [e.name, e.event, e.id, e.spid])).toEqual([['s1', IoasidNotify.BIND, a, 7]]);
    expect(errnoOf(() => sub.attachSpid(b, 7))).toBe('EINVAL');
    expect(errnoOf(() => sub.attachSpid(a, 7))).toBe('EINVAL'); // the RFC searches the whole set
    sub.attachSpid(c, 7); // other set: fine
    expect(sub.findBySpid(s1, 7, false)).toBe(a);
    expect(sub.findBySpid(s2, 7, false)).toBe(c);
    expect(sub.findBySpid(s1, 8, true)).toBe(INVALID_IOASID);
    expect(sub.findBySpid(s1, INVALID_IOASID, false)).toBe(INVALID_IOASID);
    expect(sub.findBySpid(s1, 7, true)).toBe(a);
    expect(sub.ioasidInfo(a)?.refs).toBe(2);
    sub.attachSpid(a, 8); // overwrite
    expect(sub.findBySpid(s1, 7, false)).toBe(INVALID_IOASID);
    events.length = 0;
    sub.detachSpid(a);
    expect(events.map((e) => [e.name, e.event, e.id, e.spid])).toEqual([['s1', IoasidNotify.UNBIND, a, 8]]);
    expect(sub.ioasidInfo(a)?.spid).toBe(INVALID_IOASID);
    sub.detachSpid(a);
    sub.detachSpid(99);
    expect(logs.map((l) => l[0])).toEqual(['error', 'error']);
    sub.attachSpid(b, 7);
    const dead = sub.setAlloc(null, 1, NULL);
    sub.setFree(dead);
    expect(sub.findBySpid(dead, 7, false)).toBe(INVALID_IOASID);
    expect(logs.at(-1)).toEqual(['warn', 'Invalid set']);
  });
});

describe('notifiers (§3.7)', () => {
  it('calls by priority, ties in registration order', () => {
    const { sub, logs } = make();
    const set = sub.setAlloc(null, 10, NULL);
    const events: Rec[] = [];
    const last = recorder(events, 'last', IoasidPrio.LAST);
    sub.registerNotifier(set, recorder(events, 'device', IoasidPrio.DEVICE));
    sub.registerNotifier(set, last);
    sub.registerNotifier(set, recorder(events, 'iommu', IoasidPrio.IOMMU));
    sub.registerNotifier(set, recorder(events, 'cpu', IoasidPrio.CPU));
    sub.registerNotifier(set, recorder(events, 'device2', IoasidPrio.DEVICE));
    sub.registerNotifier(set, recorder(events, 'default'));
    sub.registerNotifier(set, last);
    expect(logs).toEqual([['warn', 'notifier double register detected']]);
    sub.alloc(set, 1, 10);
    expect(events.map((e) => e.name)).toEqual(['cpu', 'iommu', 'device', 'device2', 'last', 'default']);
    sub.unregisterNotifier(set, last);
    events.length = 0;
    sub.alloc(set, 1, 10);
    expect(events.map((e) => e.name)).toEqual(['cpu', 'iommu', 'device', 'device2', 'default']);
  });

  it('mm notifiers: pending → active → pending', () => {
    const { sub, logs } = make();
    const mm = {};
    const events: Rec[] = [];
    const nb = recorder(events, 'mm');
    sub.registerNotifierMm(mm, nb);
    expect(sub.mmNotifierActive(mm, nb)).toBe(false);
    expect(errnoOf(() => sub.registerNotifierMm(mm, nb))).toBe('EBUSY');
    sub.setAlloc(null, 1, NULL); // unrelated
    const set = sub.setAlloc(mm, 10, MM);
    expect(sub.mmNotifierActive(mm, nb)).toBe(true);
    const id = sub.alloc(set, 1, 10);
    expect(events.map((e) => [e.event, e.id, e.set])).toEqual([[IoasidNotify.ALLOC, id, set]]);
    // another block on a non-empty set is refused
    expect(errnoOf(() => sub.registerNotifierMm(mm, recorder(events, 'late')))).toBe('EBUSY');
    expect(logs.at(-1)?.[0]).toBe('warn');
    // plain unregister of an mm block is refused
    sub.unregisterNotifier(set, nb);
    expect(logs.at(-1)).toEqual(['warn', 'Cannot unregister NB from pending list']);
    expect(errnoOf(() => sub.setFree(set))).toBe('EBUSY');
    sub.free(set, id); // last ID: set destroyed
    expect(set.registered).toBe(false);
    expect(sub.mmNotifierActive(mm, nb)).toBe(false);
    const set2 = sub.setAlloc(mm, 10, MM);
    expect(sub.mmNotifierActive(mm, nb)).toBe(true);
    events.length = 0;
    sub.alloc(set2, 1, 10);
    expect(events.map((e) => e.set)).toEqual([set2]);
    // registering on an existing empty set works at once
    const nb2 = recorder(events, 'nb2');
    const mm2 = {};
    const set3 = sub.setAlloc(mm2, 1, MM);
    sub.registerNotifierMm(mm2, nb2);
    expect(sub.mmNotifierActive(mm2, nb2)).toBe(true);
    sub.unregisterNotifierMm(mm2, nb2);
    expect(sub.mmNotifierActive(mm2, nb2)).toBeUndefined();
    events.length = 0;
    sub.alloc(set3, 1, 100);
    expect(events).toEqual([]);
    sub.unregisterNotifierMm(mm2, nb2);
    expect(logs.at(-1)?.[0]).toBe('warn');
    sub.unregisterNotifierMm(mm, nb);
    events.length = 0;
    sub.alloc(set2, 1, 10);
    expect(events).toEqual([]);
  });

  it('detects deadlocks inside callbacks; getLocked/putLocked work there', () => {
    const { sub } = make();
    const set = sub.setAlloc(null, 10, NULL);
    const id = sub.alloc(set, 1, 10);
    let caught: unknown;
    const bad: IoasidNotifierBlock = {
      notifierCall(event, a) {
        if (event !== IoasidNotify.BIND) return;
        expect(sub.locked).toBe(true);
        try {
          sub.get(set, a.id);
        } catch (e) {
          caught = e;
        }
        expect(errnoOf(() => sub.getLocked(set, a.id))).toBeUndefined();
        expect(sub.putLocked(set, a.id)).toBe(false);
        expect(sub.find(set, a.id)).toBeUndefined();
        expect(sub.queueWork(new Work(() => {}))).toBe(true);
      },
    };
    sub.registerNotifier(set, bad);
    sub.attachSpid(id, 3);
    expect(caught).toBeInstanceOf(Error);
    expect(String(caught)).toMatch(/deadlock: get\(\)/);
    expect(sub.locked).toBe(false);
    // an uncaught deadlock propagates out of the sender, the state change stays done
    sub.unregisterNotifier(set, bad);
    sub.registerNotifier(set, {
      notifierCall: (event) => {
        if (event === IoasidNotify.UNBIND) sub.alloc(set, 1, 10);
      },
    });
    expect(() => sub.detachSpid(id)).toThrow(/deadlock: alloc\(\)/);
    expect(sub.ioasidInfo(id)?.spid).toBe(INVALID_IOASID);
    expect(sub.locked).toBe(false);
    // every locking function is guarded
    const probes: Array<[string, () => unknown]> = [
      ['free', () => sub.free(set, id)],
      ['put', () => sub.put(set, id)],
      ['setAlloc', () => sub.setAlloc(null, 1, NULL)],
      ['setFree', () => sub.setFree(set)],
      ['findBySpid', () => sub.findBySpid(set, 1, false)],
      ['attachData', () => sub.attachData(id, 1)],
      ['reserveCapacity', () => sub.reserveCapacity(1)],
      ['registerAllocator', () => sub.registerAllocator({ alloc: () => 0, free: () => {} })],
    ];
    for (const [name, fn] of probes) {
      const nb: IoasidNotifierBlock = { notifierCall: () => void fn() };
      sub.registerNotifier(null, nb);
      const s2 = sub.setAlloc(null, 1, NULL);
      const x = sub.alloc(s2, 1, 100);
      sub.get(s2, x);
      expect(() => sub.free(s2, x), name).toThrow(new RegExp(`deadlock: ${name}\\(\\)`));
      sub.unregisterNotifier(null, nb);
    }
  });

  it('a throwing callback does not stop the chain', () => {
    const { sub } = make();
    const set = sub.setAlloc(null, 10, NULL);
    const events: Rec[] = [];
    sub.registerNotifier(set, {
      priority: 3,
      notifierCall: () => {
        throw new Error('boom');
      },
    });
    sub.registerNotifier(set, recorder(events, 'after'));
    expect(() => sub.alloc(set, 1, 10)).toThrow('boom');
    expect(events).toHaveLength(1);
    expect(set.nrIoasids).toBe(1);
  });
});

describe('workqueue (§3.8)', () => {
  it('runs queued work in order on the scheduler', () => {
    const scheduler = new Scheduler({ seed: 7 });
    const sub = new IoasidSubsystem({ scheduler });
    expect(sub.workqueue.name).toBe('ioasid_wq');
    const order: number[] = [];
    const works = [1, 2, 3, 4, 5].map((n) => new Work(() => order.push(n)));
    for (const w of works) expect(sub.queueWork(w)).toBe(true);
    expect(sub.queueWork(works[0]!)).toBe(false);
    expect(order).toEqual([]);
    scheduler.runUntilIdle();
    expect(order).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('current task', () => {
  it('runAs sets and restores current, also on throw', () => {
    const { sub } = make();
    const t1 = { pid: 1, mm: {} };
    const t2 = { pid: 2, mm: null };
    expect(sub.current).toBeUndefined();
    sub.runAs(t1, () => {
      expect(sub.current).toBe(t1);
      expect(() =>
        sub.runAs(t2, () => {
          expect(sub.current).toBe(t2);
          throw new Error('x');
        }),
      ).toThrow('x');
      expect(sub.current).toBe(t1);
    });
    expect(sub.current).toBeUndefined();
    expect(sub.runAs(t2, () => 42)).toBe(42);
  });
});

describe('design-document flows (§3.12)', () => {
  it('normal guest-SVA teardown: 1→2→3→4→3→2→1→0', () => {
    const { sub } = make();
    const vm = {};
    const set = sub.setAlloc(vm, 100, MM);
    const refs = (id: Ioasid) => sub.ioasidInfo(id)?.refs ?? 0;
    const trace: string[] = [];
    // KVM: CPU priority, takes a reference on BIND and drops it on UNBIND with the _locked calls
    sub.registerNotifier(set, {
      priority: IoasidPrio.CPU,
      notifierCall(event, a) {
        trace.push(`kvm:${event}`);
        if (event === IoasidNotify.BIND) sub.getLocked(a.set, a.id);
        if (event === IoasidNotify.UNBIND) sub.putLocked(a.set, a.id);
      },
    });
    const id = sub.alloc(set, 1, 1000); // VFIO
    expect(refs(id)).toBe(1);
    sub.get(set, id); // IOMMU bind
    expect(refs(id)).toBe(2);
    sub.attachSpid(id, 10); // guest PASID 10 bound: KVM takes one
    expect(refs(id)).toBe(3);
    expect(sub.findBySpid(set, 10, true)).toBe(id); // VDCM
    expect(refs(id)).toBe(4);
    expect(sub.put(set, id)).toBe(false); // VDCM stops
    expect(refs(id)).toBe(3);
    sub.detachSpid(id); // unbind: KVM puts
    expect(refs(id)).toBe(2);
    sub.free(set, id); // VFIO
    expect(refs(id)).toBe(1);
    expect(sub.ioasidInfo(id)?.state).toBe(IoasidState.FREE_PENDING);
    expect(sub.put(set, id)).toBe(true); // IOMMU
    expect(refs(id)).toBe(0);
    expect(sub.ioasidInfo(id)).toBeUndefined();
    expect(set.nrIoasids).toBe(0);
    expect(trace).toEqual([
      `kvm:${IoasidNotify.ALLOC}`,
      `kvm:${IoasidNotify.BIND}`,
      `kvm:${IoasidNotify.UNBIND}`,
      `kvm:${IoasidNotify.FREE}`,
    ]);
  });

  it('free before unbind: FREE handlers clean up, work puts, unbind later fails', () => {
    const scheduler = new Scheduler();
    const logs: Array<[string, string]> = [];
    const sub = new IoasidSubsystem({ scheduler, log: (l, m) => logs.push([l, m]) });
    const vm = {};
    const set = sub.setAlloc(vm, 100, MM);
    const order: string[] = [];
    const id = sub.alloc(set, 1, 1000);
    sub.get(set, id); // IOMMU
    // KVM (CPU priority) on the set chain, VDCM (DEVICE) on the set chain, IOMMU (IOMMU) on the global chain
    sub.registerNotifier(set, {
      priority: IoasidPrio.CPU,
      notifierCall(event, a) {
        if (event === IoasidNotify.BIND) sub.getLocked(a.set, a.id);
        if (event === IoasidNotify.FREE) {
          order.push('kvm');
          sub.putLocked(a.set, a.id);
        }
      },
    });
    sub.attachSpid(id, 5); // KVM ref: 3
    expect(sub.findBySpid(set, 5, true)).toBe(id); // VDCM ref: 4
    sub.registerNotifier(set, {
      priority: IoasidPrio.DEVICE,
      notifierCall(event, a) {
        if (event !== IoasidNotify.FREE) return;
        order.push('vdcm');
        sub.queueWork(new Work(() => order.push(`vdcm-work:${sub.put(a.set, a.id)}`)));
      },
    });
    sub.registerNotifier(null, {
      priority: IoasidPrio.IOMMU,
      notifierCall(event, a) {
        if (event !== IoasidNotify.FREE) return;
        order.push('iommu');
        sub.queueWork(new Work(() => order.push(`iommu-work:${sub.put(a.set, a.id)}`)));
      },
    });
    expect(sub.ioasidInfo(id)?.refs).toBe(4);
    sub.free(set, id); // misbehaving guest frees first
    expect(order).toEqual(['iommu', 'kvm', 'vdcm']);
    expect(sub.ioasidInfo(id)).toMatchObject({ state: IoasidState.FREE_PENDING, refs: 2 });
    scheduler.runUntilIdle();
    expect(order).toEqual(['iommu', 'kvm', 'vdcm', 'iommu-work:false', 'vdcm-work:true']);
    expect(sub.ioasidInfo(id)).toBeUndefined();
    expect(set.nrIoasids).toBe(0);
    sub.detachSpid(id);
    expect(logs.at(-1)?.[0]).toBe('error');
  });
});
