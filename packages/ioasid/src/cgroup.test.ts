import { errnoOf } from '@iommu-ts/base/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IoasidsCgroupController } from './cgroup.js';
import { INVALID_IOASID, IoasidSetType, PCI_PASID_MAX } from './constants.js';
import { IoasidSubsystem } from './ioasid-subsystem.js';
import { IoasidUserDevice } from './ioasid-user.js';
import type { IoasidTask } from './task.js';
import { IOASID_REQUEST_ALLOC } from './uapi.js';

let nextPid = 100;
function task(): IoasidTask {
  const pid = nextPid++;
  return { pid, mm: { pid } };
}

function setup() {
  const sub = new IoasidSubsystem();
  const ctl = new IoasidsCgroupController(sub);
  return { sub, ctl };
}

/** A process with its MM-type set. */
function proc(sub: IoasidSubsystem, quota = 100) {
  const t = task();
  const set = sub.setAlloc(t.mm, quota, IoasidSetType.MM);
  const alloc = (min = 1, max = 0xfffff) => sub.runAs(t, () => sub.alloc(set, min, max));
  return { t, mm: t.mm!, set, alloc };
}

describe('ioasids cgroup hierarchy', () => {
  it('installs its hooks and starts new cgroups at limit 0, counter 0', () => {
    const { sub, ctl } = setup();
    expect(sub.chargeHooks).toBe(ctl);
    const a = ctl.createCgroup(ctl.root, 'a');
    expect([a.limit, a.counter, a.events, a.path, a.parent]).toEqual([0, 0, 0, '/a', ctl.root]);
    expect(ctl.readFile(a, 'ioasids.max')).toBe('0\n');
    expect(ctl.readFile(a, 'ioasids.current')).toBe('0\n');
    expect(ctl.readFile(a, 'ioasids.events')).toBe('max 0\n');
    expect(ctl.lookup('/a')).toBe(a);
    expect(ctl.lookup('/')).toBe(ctl.root);
    expect(ctl.lookup('/b')).toBeUndefined();
    ctl.uninstall();
    expect(sub.chargeHooks).toBeUndefined();
  });

  it('processes start in the root, which is never charged or limited', () => {
    const { sub, ctl } = setup();
    const p = proc(sub);
    expect(ctl.cgroupOf(p.mm)).toBe(ctl.root);
    for (let i = 0; i < 5; i++) expect(p.alloc()).not.toBe(INVALID_IOASID);
    expect(ctl.root.counter).toBe(0);
  });

  it('a new cgroup refuses all allocations until ioasids.max is raised', () => {
    const { sub, ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    const p = proc(sub);
    ctl.attachProcess(p.mm, a);
    expect(p.alloc()).toBe(INVALID_IOASID);
    expect(a.events).toBe(1);
    expect(p.set.nrIoasids).toBe(0);
    ctl.writeFile(a, 'ioasids.max', '1');
    expect(p.alloc()).toBe(1);
    expect(a.counter).toBe(1);
  });

  it("a child under a parent with a lower limit is refused by the parent's limit", () => {
    const { sub, ctl } = setup();
    const parent = ctl.createCgroup(ctl.root, 'parent');
    const child = ctl.createCgroup(parent, 'child');
    ctl.writeFile(parent, 'ioasids.max', '2');
    ctl.writeFile(child, 'ioasids.max', '10');
    const p = proc(sub);
    ctl.attachProcess(p.mm, child);
    expect(p.alloc()).toBe(1);
    expect(p.alloc()).toBe(2);
    expect([parent.counter, child.counter]).toEqual([2, 2]);
    expect(p.alloc()).toBe(INVALID_IOASID);
    expect([parent.counter, child.counter]).toEqual([2, 2]);
    expect([parent.events, child.events]).toEqual([1, 0]);
    // the hook itself throws EAGAIN and leaves the counters as they were
    expect(errnoOf(() => sub.runAs(p.t, () => ctl.charge(p.set)))).toBe('EAGAIN');
    expect([parent.counter, child.counter]).toEqual([2, 2]);
    expect(ctl.readFile(parent, 'ioasids.events')).toBe('max 2\n');
    expect(ctl.readFile(child, 'ioasids.events')).toBe('max 0\n');
    // a sibling shares the parent's budget
    const sibling = ctl.createCgroup(parent, 'sibling');
    ctl.writeFile(sibling, 'ioasids.max', '5');
    const q = proc(sub);
    ctl.attachProcess(q.mm, sibling);
    expect(q.alloc()).toBe(INVALID_IOASID);
    sub.free(p.set, 1);
    expect([parent.counter, child.counter]).toEqual([1, 1]);
    expect(q.alloc()).toBe(1);
    expect([parent.counter, child.counter, sibling.counter]).toEqual([2, 1, 1]);
  });

  it('the set quota and the cgroup limit both apply, and a refused allocation charges nothing', () => {
    const { sub, ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    ctl.writeFile(a, 'ioasids.max', '5');
    const small = proc(sub, 3);
    ctl.attachProcess(small.mm, a);
    for (let i = 0; i < 3; i++) expect(small.alloc()).not.toBe(INVALID_IOASID);
    expect(small.alloc()).toBe(INVALID_IOASID); // quota
    expect(a.counter).toBe(3);
    expect(a.events).toBe(0);
    const big = proc(sub, 100);
    ctl.attachProcess(big.mm, a);
    expect(big.alloc()).not.toBe(INVALID_IOASID);
    expect(big.alloc()).not.toBe(INVALID_IOASID);
    expect(big.alloc()).toBe(INVALID_IOASID); // cgroup limit
    expect(a.counter).toBe(5);
    expect(a.events).toBe(1);
    // range exhausted: uncharged by the core
    ctl.writeFile(a, 'ioasids.max', '10');
    expect(big.alloc(1, 1)).toBe(INVALID_IOASID);
    expect(a.counter).toBe(5);
  });

  it('charges only MM-type sets, and only for the current task owning the set', () => {
    const { sub, ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    const p = proc(sub);
    ctl.attachProcess(p.mm, a);
    // a NULL-type set allocated while p runs is not charged
    const kset = sub.setAlloc(null, 10, IoasidSetType.NULL);
    expect(sub.runAs(p.t, () => sub.alloc(kset, 1, 100))).not.toBe(INVALID_IOASID);
    expect(errnoOf(() => sub.runAs(p.t, () => ctl.charge(kset)))).toBeUndefined();
    expect(a.counter).toBe(0);
    ctl.writeFile(a, 'ioasids.max', '10');
    // no current task, a kernel thread, another process
    expect(sub.alloc(p.set, 1, 100)).toBe(INVALID_IOASID);
    expect(errnoOf(() => ctl.charge(p.set))).toBe('EINVAL');
    expect(errnoOf(() => sub.runAs({ pid: 2, mm: null }, () => ctl.charge(p.set)))).toBe('EINVAL');
    const other = task();
    expect(errnoOf(() => sub.runAs(other, () => ctl.charge(p.set)))).toBe('EPERM');
    expect(sub.runAs(other, () => sub.alloc(p.set, 1, 100))).toBe(INVALID_IOASID);
    expect([a.counter, a.events, p.set.nrIoasids]).toEqual([0, 0, 0]);
  });
});

describe('migration', () => {
  it('moves the whole count without limit checks; current may exceed max', () => {
    const { sub, ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    ctl.writeFile(a, 'ioasids.max', '1');
    const p = proc(sub);
    const ids = [p.alloc(), p.alloc(), p.alloc()];
    ctl.attachProcess(p.mm, a);
    expect(ctl.cgroupOf(p.mm)).toBe(a);
    expect(a.members).toEqual([p.mm]);
    expect(ctl.readFile(a, 'ioasids.current')).toBe('3\n');
    expect(ctl.readFile(a, 'ioasids.max')).toBe('1\n');
    expect(p.alloc()).toBe(INVALID_IOASID);
    expect(a.counter).toBe(3);
    sub.free(p.set, ids[0]!);
    sub.free(p.set, ids[1]!);
    expect(a.counter).toBe(1);
    expect(p.alloc()).toBe(INVALID_IOASID);
    sub.free(p.set, ids[2]!);
    expect(a.counter).toBe(0);
    expect(p.alloc()).not.toBe(INVALID_IOASID);
    expect(a.events).toBe(2);
  });

  it('uncharges the source and charges the destination; shared ancestors are unchanged', () => {
    const { sub, ctl } = setup();
    const top = ctl.createCgroup(ctl.root, 'top');
    const x = ctl.createCgroup(top, 'x');
    const y = ctl.createCgroup(top, 'y');
    for (const cg of [top, x, y]) ctl.writeFile(cg, 'ioasids.max', '10');
    const p = proc(sub);
    ctl.attachProcess(p.mm, x);
    p.alloc();
    p.alloc();
    expect([top.counter, x.counter, y.counter]).toEqual([2, 2, 0]);
    ctl.attachProcess(p.mm, y);
    expect([top.counter, x.counter, y.counter]).toEqual([2, 0, 2]);
    ctl.attachProcess(p.mm, y); // no-op
    expect([top.counter, x.counter, y.counter]).toEqual([2, 0, 2]);
    ctl.attachProcess(p.mm, ctl.root);
    expect([top.counter, x.counter, y.counter]).toEqual([0, 0, 0]);
    expect(ctl.cgroupOf(p.mm)).toBe(ctl.root);
    expect(y.members).toEqual([]);
    // a process without a set moves for free
    const q = task();
    ctl.attachProcess(q.mm!, x);
    expect(x.counter).toBe(0);
  });

  it('uncharges where the mm is now, whoever frees (deviation from the RFC)', () => {
    const { sub, ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    const b = ctl.createCgroup(ctl.root, 'b');
    ctl.writeFile(a, 'ioasids.max', '5');
    ctl.writeFile(b, 'ioasids.max', '5');
    const p = proc(sub);
    const other = task();
    ctl.attachProcess(other.mm!, b);
    ctl.attachProcess(p.mm, a);
    const id = p.alloc();
    sub.get(p.set, id);
    sub.free(p.set, id); // FREE_PENDING, still charged
    expect(a.counter).toBe(1);
    sub.runAs(other, () => sub.put(p.set, id)); // released by another task
    expect([a.counter, b.counter]).toEqual([0, 0]);
  });

  it('exitProcess uncharges what remains, later releases are not uncharged again', () => {
    const { sub, ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    ctl.writeFile(a, 'ioasids.max', '5');
    const p = proc(sub);
    ctl.attachProcess(p.mm, a);
    const id = p.alloc();
    p.alloc();
    ctl.exitProcess(p.mm);
    expect(a.counter).toBe(0);
    expect(a.members).toEqual([]);
    sub.free(p.set, id);
    expect(a.counter).toBe(0);
    expect(errnoOf(() => ctl.attachProcess(p.mm, a))).toBe('ESRCH');
    expect(p.alloc()).toBe(INVALID_IOASID);
    ctl.removeCgroup(a);
  });
});

describe('interface files', () => {
  it('the root has no files; unknown names are ENOENT', () => {
    const { ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    expect(ctl.listFiles(ctl.root)).toEqual([]);
    expect(ctl.listFiles(a)).toEqual(['ioasids.max', 'ioasids.current', 'ioasids.events']);
    for (const f of ['ioasids.max', 'ioasids.current', 'ioasids.events']) {
      expect(errnoOf(() => ctl.readFile(ctl.root, f))).toBe('ENOENT');
      expect(errnoOf(() => ctl.writeFile(ctl.root, f, '5'))).toBe('ENOENT');
    }
    expect(errnoOf(() => ctl.readFile(a, 'pids.max'))).toBe('ENOENT');
    expect(errnoOf(() => ctl.writeFile(a, 'ioasids.limit', '1'))).toBe('ENOENT');
  });

  it('read-only files refuse writes with EACCES', () => {
    const { ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    expect(errnoOf(() => ctl.writeFile(a, 'ioasids.current', '5'))).toBe('EACCES');
    expect(errnoOf(() => ctl.writeFile(a, 'ioasids.events', '5'))).toBe('EACCES');
    expect(a.counter).toBe(0);
  });

  it('parses ioasids.max like kstrtoll and returns the byte count', () => {
    const { sub, ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    expect(ctl.writeFile(a, 'ioasids.max', '100\n')).toBe(4);
    expect(ctl.readFile(a, 'ioasids.max')).toBe('100\n');
    expect(ctl.writeFile(a, 'ioasids.max', ' 0x20 ')).toBe(6);
    expect(a.limit).toBe(32);
    expect(ctl.writeFile(a, 'ioasids.max', '010')).toBe(3);
    expect(a.limit).toBe(8);
    expect(ctl.writeFile(a, 'ioasids.max', '+9')).toBe(2);
    expect(a.limit).toBe(9);
    expect(sub.capacityAvail).toBe(PCI_PASID_MAX - 9);
  });

  it('rejects bad values with the exact errno and changes nothing', () => {
    const { sub, ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    ctl.writeFile(a, 'ioasids.max', '50');
    const avail = sub.capacityAvail;
    const cases: [string, string][] = [
      ['', 'EINVAL'],
      ['abc', 'EINVAL'],
      ['12abc', 'EINVAL'],
      ['1.5', 'EINVAL'],
      ['0x', 'EINVAL'],
      ['09', 'EINVAL'],
      ['-', 'EINVAL'],
      ['MAX', 'EINVAL'],
      ['-1', 'EINVAL'],
      ['-9223372036854775808', 'EINVAL'],
      ['50', 'EINVAL'],
      ['0x32', 'EINVAL'],
      ['9223372036854775808', 'ERANGE'],
      ['-9223372036854775809', 'ERANGE'],
      ['99999999999999999999', 'ERANGE'],
      ['9223372036854775807', 'ENOSPC'],
      [String(avail + 51), 'ENOSPC'],
    ];
    for (const [text, code] of cases) {
      expect([text, errnoOf(() => ctl.writeFile(a, 'ioasids.max', text))]).toEqual([text, code]);
      expect(a.limit).toBe(50);
      expect(sub.capacityAvail).toBe(avail);
    }
    // exactly everything that remains is fine
    ctl.writeFile(a, 'ioasids.max', String(avail + 50));
    expect(sub.capacityAvail).toBe(0);
  });

  it('reserves and cancels system capacity as the limit moves', () => {
    const { sub, ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    const b = ctl.createCgroup(ctl.root, 'b');
    ctl.writeFile(a, 'ioasids.max', '100');
    expect(sub.capacityAvail).toBe(PCI_PASID_MAX - 100);
    ctl.writeFile(a, 'ioasids.max', '40');
    expect(sub.capacityAvail).toBe(PCI_PASID_MAX - 40);
    ctl.writeFile(a, 'ioasids.max', '0');
    expect(sub.capacityAvail).toBe(PCI_PASID_MAX);
    ctl.writeFile(b, 'ioasids.max', '10');
    // a set's quota comes out of the same capacity
    sub.setAlloc(null, 1000, IoasidSetType.NULL);
    expect(sub.capacityAvail).toBe(PCI_PASID_MAX - 1010);
    expect(errnoOf(() => ctl.writeFile(a, 'ioasids.max', String(PCI_PASID_MAX - 1009)))).toBe('ENOSPC');
  });

  it("'max' reserves all remaining capacity and makes it the limit (the previous limit is not added)", () => {
    const { sub, ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    ctl.writeFile(a, 'ioasids.max', '100');
    expect(ctl.writeFile(a, 'ioasids.max', 'max\n')).toBe(4);
    expect(a.limit).toBe(PCI_PASID_MAX - 100);
    expect(sub.capacityAvail).toBe(0);
    expect(ctl.readFile(a, 'ioasids.max')).toBe(`${PCI_PASID_MAX - 100}\n`);
    const b = ctl.createCgroup(ctl.root, 'b');
    expect(errnoOf(() => ctl.writeFile(b, 'ioasids.max', '1'))).toBe('ENOSPC');
    expect(b.limit).toBe(0);
  });

  it('a refused decrease (cancelCapacity EINVAL) changes nothing', () => {
    const { sub, ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    ctl.writeFile(a, 'ioasids.max', '100');
    sub.cancelCapacity(100); // someone else gave the capacity back already
    expect(errnoOf(() => ctl.writeFile(a, 'ioasids.max', '0'))).toBe('EINVAL');
    expect(a.limit).toBe(100);
    expect(sub.capacityAvail).toBe(PCI_PASID_MAX);
  });
});

describe('cgroup creation and removal', () => {
  it('checks names, children, members, and returns the limit on removal', () => {
    const { sub, ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    expect(errnoOf(() => ctl.createCgroup(ctl.root, 'a'))).toBe('EEXIST');
    for (const bad of ['', '.', '..', 'x/y'])
      expect(errnoOf(() => ctl.createCgroup(ctl.root, bad))).toBe('EINVAL');
    const b = ctl.createCgroup(a, 'b');
    ctl.writeFile(b, 'ioasids.max', '30');
    expect(errnoOf(() => ctl.removeCgroup(a))).toBe('EBUSY');
    expect(errnoOf(() => ctl.removeCgroup(ctl.root))).toBe('EBUSY');
    const p = proc(sub);
    ctl.attachProcess(p.mm, b);
    expect(errnoOf(() => ctl.removeCgroup(b))).toBe('EBUSY');
    ctl.attachProcess(p.mm, a);
    const avail = sub.capacityAvail;
    ctl.removeCgroup(b);
    expect(sub.capacityAvail).toBe(avail + 30);
    expect(b.removed).toBe(true);
    expect(a.children).toEqual([]);
    expect(errnoOf(() => ctl.removeCgroup(b))).toBe('ENOENT');
    expect(errnoOf(() => ctl.readFile(b, 'ioasids.max'))).toBe('ENODEV');
    expect(errnoOf(() => ctl.writeFile(b, 'ioasids.max', '1'))).toBe('ENODEV');
    expect(errnoOf(() => ctl.createCgroup(b, 'c'))).toBe('ENOENT');
    expect(errnoOf(() => ctl.attachProcess(p.mm, b))).toBe('ENOENT');
    // the name can be reused
    expect(ctl.createCgroup(a, 'b').limit).toBe(0);
    const other = new IoasidsCgroupController(new IoasidSubsystem());
    expect(errnoOf(() => ctl.createCgroup(other.root, 'z'))).toBe('ENOENT');
  });
});

describe('uncharge on release', () => {
  function charged() {
    const { sub, ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    const b = ctl.createCgroup(a, 'b');
    ctl.writeFile(a, 'ioasids.max', '100');
    ctl.writeFile(b, 'ioasids.max', '100');
    const p = proc(sub);
    ctl.attachProcess(p.mm, b);
    const ids = [p.alloc(), p.alloc(), p.alloc()];
    expect([a.counter, b.counter]).toEqual([3, 3]);
    return { sub, ctl, a, b, p, ids };
  }

  it('on free', () => {
    const { sub, a, b, p, ids } = charged();
    sub.free(p.set, ids[0]!);
    expect([a.counter, b.counter]).toEqual([2, 2]);
    sub.free(p.set, ids[0]!); // repeated free: nothing
    expect([a.counter, b.counter]).toEqual([2, 2]);
  });

  it('on the last put', () => {
    const { sub, a, b, p, ids } = charged();
    sub.get(p.set, ids[1]!);
    sub.free(p.set, ids[1]!);
    expect([a.counter, b.counter]).toEqual([3, 3]);
    expect(sub.put(p.set, ids[1]!)).toBe(true);
    expect([a.counter, b.counter]).toEqual([2, 2]);
  });

  it('on set destruction', () => {
    const { sub, a, b, p, ids } = charged();
    sub.get(p.set, ids[2]!);
    sub.freeAllInSet(p.set);
    expect([a.counter, b.counter]).toEqual([1, 1]);
    expect(errnoOf(() => sub.setFree(p.set))).toBe('EBUSY');
    expect(p.set.freePending).toBe(true);
    sub.put(p.set, ids[2]!);
    expect([a.counter, b.counter]).toEqual([0, 0]);
    expect(p.set.registered).toBe(false);
  });

  it('on /dev/ioasid close', () => {
    const { sub, ctl } = setup();
    const a = ctl.createCgroup(ctl.root, 'a');
    ctl.writeFile(a, 'ioasids.max', '2');
    const t = task();
    ctl.attachProcess(t.mm!, a);
    const dev = new IoasidUserDevice(sub);
    const f = dev.open(t);
    const req = { argsz: 16, flags: 0, range: { min: 1, max: 100 } };
    expect(f.ioctl(IOASID_REQUEST_ALLOC, req)).toBe(1);
    expect(f.ioctl(IOASID_REQUEST_ALLOC, req)).toBe(2);
    expect(errnoOf(() => f.ioctl(IOASID_REQUEST_ALLOC, req))).toBe('EINVAL'); // cgroup limit
    expect([a.counter, a.events]).toEqual([2, 1]);
    f.close();
    expect(a.counter).toBe(0);
    expect(f.set.registered).toBe(false);
  });
});

describe('model check (fast-check)', () => {
  it('every counter equals the IOASIDs held below it, and stays within its limit unless migrated', () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant('alloc' as const), p: fc.nat(3) }),
      fc.record({ k: fc.constant('free' as const), p: fc.nat(3), i: fc.nat(20) }),
      fc.record({ k: fc.constant('move' as const), p: fc.nat(3), c: fc.nat(3) }),
      fc.record({ k: fc.constant('max' as const), c: fc.integer({ min: 1, max: 3 }), v: fc.nat(6) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const { sub, ctl } = setup();
        const a = ctl.createCgroup(ctl.root, 'a');
        const cgs = [ctl.root, a, ctl.createCgroup(a, 'b'), ctl.createCgroup(ctl.root, 'c')];
        for (const cg of cgs.slice(1)) ctl.writeFile(cg, 'ioasids.max', '3');
        const procs = [0, 1, 2, 3].map(() => proc(sub, 5));
        const migrated = new Set<number>();
        for (const o of ops) {
          if (o.k === 'alloc') {
            const p = procs[o.p]!;
            const before = cgs.map((c) => c.counter);
            const id = p.alloc();
            if (id === INVALID_IOASID) expect(cgs.map((c) => c.counter)).toEqual(before);
          } else if (o.k === 'free') {
            const p = procs[o.p]!;
            const held: number[] = [];
            sub.setForEachIoasid(p.set, (id) => held.push(id));
            const id = held[o.i % Math.max(1, held.length)];
            if (id !== undefined) sub.free(p.set, id);
          } else if (o.k === 'move') {
            ctl.attachProcess(procs[o.p]!.mm, cgs[o.c]!);
            for (let c: typeof a | null = cgs[o.c]!; c !== null; c = c.parent) migrated.add(cgs.indexOf(c));
          } else {
            const cg = cgs[o.c]!;
            const before = [cg.limit, sub.capacityAvail];
            const code = errnoOf(() => ctl.writeFile(cg, 'ioasids.max', String(o.v)));
            if (code !== undefined) expect([cg.limit, sub.capacityAvail]).toEqual(before);
            else if (o.v < cg.counter) migrated.add(o.c); // lowered below the count: over the limit legally
          }
          // the invariant
          const held = (cg: typeof a): number => {
            let n = 0;
            for (const p of procs) {
              for (let c: typeof a | null = ctl.cgroupOf(p.mm); c !== null; c = c.parent) {
                if (c === cg) n += p.set.nrIoasids;
              }
            }
            return n;
          };
          for (const [i, cg] of cgs.entries()) {
            if (i === 0) {
              expect(cg.counter).toBe(0);
              continue;
            }
            expect(cg.counter).toBe(held(cg));
            if (!migrated.has(i)) expect(cg.counter).toBeLessThanOrEqual(cg.limit);
          }
        }
        // the system capacity plus every limit plus the set quotas is conserved
        const limits = cgs.reduce((s, c) => s + c.limit, 0);
        expect(sub.capacityAvail + limits + 4 * 5).toBe(PCI_PASID_MAX);
      }),
      { numRuns: 150 },
    );
  });
});
