// Acceptance property test: random sequences of set, ID, reference-count and cgroup operations run
// against IoasidSubsystem + IoasidsCgroupController and, in lock-step, against a plain model. Every
// return value and errno is predicted by the model; after every step IDs are unique, per-set and
// per-cgroup counts balance and capacity is accounted for; after tearing everything down nothing
// is left: no IDs, no charges, no sets.
import { ErrnoError } from '@iommu-ts/base';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type IoasidsCgroup, IoasidsCgroupController } from './cgroup.js';
import { INVALID_IOASID, IoasidSetType, IoasidState } from './constants.js';
import type { IoasidSet } from './ioasid-set.js';
import { IoasidSubsystem } from './ioasid-subsystem.js';
import type { IoasidTask } from './task.js';

const CAPACITY = 48;
const ID_SPACE = 24; // IDs are drawn from [0, ID_SPACE): small, so ranges fill up and collide
const NPROCS = 3;

type Op =
  | { kind: 'setAlloc'; proc: number | null; quota: number }
  | { kind: 'setFree'; set: number }
  | { kind: 'alloc'; set: number; min: number; span: number }
  | { kind: 'free'; id: number }
  | { kind: 'get'; id: number }
  | { kind: 'put'; id: number }
  | { kind: 'migrate'; proc: number; cg: number }
  | { kind: 'writeMax'; cg: number; max: number };

const pick = fc.nat(31);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('setAlloc' as const),
      proc: fc.option(fc.nat(NPROCS - 1)),
      quota: fc.integer({ min: 1, max: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('setFree' as const), set: pick }) },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('alloc' as const),
      set: pick,
      min: fc.nat(ID_SPACE - 1),
      span: fc.nat(ID_SPACE),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('free' as const), id: pick }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('get' as const), id: pick }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('put' as const), id: pick }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('migrate' as const), proc: fc.nat(NPROCS - 1), cg: fc.nat(3) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('writeMax' as const),
      cg: fc.integer({ min: 1, max: 3 }),
      max: fc.nat(12),
    }),
  },
);

interface ModelId {
  set: IoasidSet;
  refs: number;
  freePending: boolean;
}

/** The model's view of everything; the real objects are only used as identities. */
class World {
  readonly sub = new IoasidSubsystem();
  readonly cgc: IoasidsCgroupController;
  readonly procs: IoasidTask[] = [];
  /** cgroups by index: 0 root, 1 /a, 2 /a/b, 3 /c */
  readonly cgs: IoasidsCgroup[];
  readonly parentOf = [-1, 0, 1, 0];
  readonly limits = [0, 0, 0, 0];
  readonly procCg: number[] = [];
  readonly sets: IoasidSet[] = []; // every set ever made, by creation index
  readonly liveSets = new Map<IoasidSet, { quota: number; owner: number | null; freePending: boolean }>();
  readonly ids = new Map<number, ModelId>();
  steps = 0;
  /** How often each kind of outcome happened, so the test can show it explored them. */
  readonly seen = { allocated: 0, refusedByCgroup: 0, reclaimedLater: 0, migrations: 0 };

  constructor() {
    expect(this.sub.installCapacity(CAPACITY)).toBe(true);
    this.cgc = new IoasidsCgroupController(this.sub);
    const a = this.cgc.createCgroup(this.cgc.root, 'a');
    this.cgs = [this.cgc.root, a, this.cgc.createCgroup(a, 'b'), this.cgc.createCgroup(this.cgc.root, 'c')];
    for (let p = 0; p < NPROCS; p++) {
      this.procs.push({ pid: 100 + p, mm: {} });
      this.procCg.push(0);
    }
  }

  quotaSum(): number {
    let sum = 0;
    for (const s of this.liveSets.values()) sum += s.quota;
    return sum;
  }

  /** Quota of destroyed sets is never returned to capacity (v4 code). */
  spentQuota = 0;

  avail(): number {
    return CAPACITY - this.spentQuota - this.quotaSum() - this.limits.reduce((a, b) => a + b, 0);
  }

  idsOfSet(set: IoasidSet): number {
    let n = 0;
    for (const m of this.ids.values()) if (m.set === set) n++;
    return n;
  }

  /** Expected `ioasids.current` of cgroup c: IDs of MM sets whose process sits in c's subtree. */
  expectedCounter(c: number): number {
    let n = 0;
    for (const [set, info] of this.liveSets) {
      if (info.owner === null) continue;
      for (let k = this.procCg[info.owner] ?? 0; k > 0; k = this.parentOf[k] ?? -1) {
        if (k === c) n += this.idsOfSet(set);
      }
    }
    return n;
  }

  chainOf(c: number): number[] {
    const chain: number[] = [];
    for (let k = c; k > 0; k = this.parentOf[k] ?? -1) chain.push(k);
    return chain;
  }

  release(id: number, m: ModelId): void {
    this.ids.delete(id);
    const info = this.liveSets.get(m.set)!;
    if (info.freePending && this.idsOfSet(m.set) === 0) this.destroy(m.set);
  }

  destroy(set: IoasidSet): void {
    this.spentQuota += this.liveSets.get(set)!.quota;
    this.liveSets.delete(set);
  }

  expectErrno(fn: () => unknown, code: string): void {
    let thrown: unknown;
    try {
      fn();
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ErrnoError);
    expect((thrown as ErrnoError).code).toBe(code);
  }

  apply(o: Op): void {
    this.steps++;
    const sub = this.sub;
    switch (o.kind) {
      case 'setAlloc': {
        const mm = o.proc === null ? null : (this.procs[o.proc]!.mm as object);
        const type = mm === null ? IoasidSetType.NULL : IoasidSetType.MM;
        const taken = o.proc !== null && [...this.liveSets.values()].some((s) => s.owner === o.proc);
        // Set IDs come from [0, capacityAvail], the capacity available before this set's quota.
        const setIds = new Set([...this.liveSets.keys()].map((set) => set.id));
        let freeSetId = false;
        for (let i = 0; i <= this.avail() && !freeSetId; i++) freeSetId = !setIds.has(i);
        if (o.quota > this.avail()) this.expectErrno(() => sub.setAlloc(mm, o.quota, type), 'ENOSPC');
        else if (taken) this.expectErrno(() => sub.setAlloc(mm, o.quota, type), 'EEXIST');
        else if (!freeSetId) this.expectErrno(() => sub.setAlloc(mm, o.quota, type), 'ENOSPC');
        else {
          const set = sub.setAlloc(mm, o.quota, type);
          this.sets.push(set);
          this.liveSets.set(set, { quota: o.quota, owner: o.proc, freePending: false });
        }
        return;
      }
      case 'setFree': {
        const set = this.sets[o.set % Math.max(1, this.sets.length)];
        if (set === undefined) return;
        const info = this.liveSets.get(set);
        if (info === undefined) this.expectErrno(() => sub.setFree(set), 'EINVAL');
        else if (this.idsOfSet(set) > 0) {
          this.expectErrno(() => sub.setFree(set), 'EBUSY');
          info.freePending = true;
        } else {
          sub.setFree(set);
          this.destroy(set);
        }
        return;
      }
      case 'alloc': {
        const set = this.sets[o.set % Math.max(1, this.sets.length)];
        if (set === undefined) return;
        const info = this.liveSets.get(set);
        const max = Math.min(o.min + o.span, ID_SPACE - 1);
        const task = info?.owner == null ? undefined : this.procs[info.owner];
        const got =
          task === undefined ? sub.alloc(set, o.min, max) : sub.runAs(task, () => sub.alloc(set, o.min, max));
        let expected = INVALID_IOASID;
        if (info !== undefined && this.idsOfSet(set) < info.quota) {
          const chain = info.owner === null ? [] : this.chainOf(this.procCg[info.owner] ?? 0);
          if (!chain.every((c) => this.expectedCounter(c) + 1 <= (this.limits[c] ?? 0)))
            this.seen.refusedByCgroup++;
          else {
            for (let id = o.min; id <= max; id++) {
              if (!this.ids.has(id)) {
                expected = id;
                break;
              }
            }
          }
        }
        expect(got).toBe(expected);
        if (got !== INVALID_IOASID) {
          this.ids.set(got, { set, refs: 1, freePending: false });
          this.seen.allocated++;
        }
        return;
      }
      case 'free': {
        const [id, m] = this.someId(o.id);
        if (m === undefined) return;
        sub.free(m.set, id);
        if (m.freePending) return;
        m.freePending = true;
        if (--m.refs === 0) this.release(id, m);
        return;
      }
      case 'get': {
        const [id, m] = this.someId(o.id);
        if (m === undefined) {
          this.expectErrno(() => sub.get(null, id), 'EINVAL');
          return;
        }
        if (m.freePending) this.expectErrno(() => sub.get(m.set, id), 'EBUSY');
        else {
          sub.get(m.set, id);
          m.refs++;
        }
        return;
      }
      case 'put': {
        const [id, m] = this.someId(o.id);
        if (m === undefined) {
          expect(sub.put(null, id)).toBe(false);
          return;
        }
        const released = --m.refs === 0;
        if (released && m.freePending) this.seen.reclaimedLater++;
        expect(sub.put(m.set, id)).toBe(released);
        if (released) this.release(id, m);
        return;
      }
      case 'migrate': {
        this.cgc.attachProcess(this.procs[o.proc]!.mm as object, this.cgs[o.cg]!);
        if (this.procCg[o.proc] !== o.cg) this.seen.migrations++;
        this.procCg[o.proc] = o.cg;
        return;
      }
      case 'writeMax': {
        const cur = this.limits[o.cg] ?? 0;
        const write = () => this.cgc.writeFile(this.cgs[o.cg]!, 'ioasids.max', String(o.max));
        if (o.max === cur) this.expectErrno(write, 'EINVAL');
        else if (o.max > cur && o.max - cur > this.avail()) this.expectErrno(write, 'ENOSPC');
        else {
          expect(write()).toBe(String(o.max).length);
          this.limits[o.cg] = o.max;
        }
        return;
      }
    }
  }

  /** A live ID chosen by index, or an ID nobody holds. */
  someId(n: number): [number, ModelId | undefined] {
    const live = [...this.ids.keys()].sort((a, b) => a - b);
    if (live.length === 0 || n % 5 === 4) return [ID_SPACE + n, undefined];
    const id = live[n % live.length]!;
    return [id, this.ids.get(id)];
  }

  /** Compare the whole observable state with the model's, in one assertion per step. */
  check(): void {
    const sub = this.sub;
    const actual = {
      avail: sub.capacityAvail,
      ids: [] as unknown[],
      sets: [] as unknown[],
      cgroups: [] as unknown[],
    };
    const expected = {
      avail: this.avail(),
      ids: [] as unknown[],
      sets: [] as unknown[],
      cgroups: [] as unknown[],
    };
    for (let id = 0; id < ID_SPACE; id++) {
      const info = sub.ioasidInfo(id);
      actual.ids.push(info === undefined ? null : [id, info.set.id, info.refs, info.state]);
      const m = this.ids.get(id);
      expected.ids.push(
        m === undefined
          ? null
          : [id, m.set.id, m.refs, m.freePending ? IoasidState.FREE_PENDING : IoasidState.IDLE],
      );
    }
    for (const set of this.sets) {
      const listed: number[] = [];
      if (set.registered) sub.setForEachIoasid(set, (id) => listed.push(id));
      actual.sets.push([set.registered, set.registered ? set.nrIoasids : 0, listed]);
      const live = this.liveSets.has(set);
      const mine = live ? [...this.ids].filter(([, m]) => m.set === set).map(([id]) => id) : [];
      expected.sets.push([live, mine.length, mine.sort((a, b) => a - b)]);
    }
    for (let c = 1; c < this.cgs.length; c++) {
      const cg = this.cgs[c]!;
      actual.cgroups.push([cg.counter, cg.limit, this.cgc.readFile(cg, 'ioasids.current')]);
      const n = this.expectedCounter(c);
      expected.cgroups.push([n, this.limits[c], `${n}\n`]);
    }
    expect(actual).toEqual(expected);
  }

  /** Free every ID, drop every reference, free every set: nothing may be left. */
  teardown(): void {
    for (const [id, m] of [...this.ids]) {
      const task = this.liveSets.get(m.set)?.owner;
      const run = () => {
        this.sub.free(m.set, id);
        for (let r = m.freePending ? m.refs : m.refs - 1; r > 0; r--) this.sub.put(m.set, id);
      };
      if (task == null) run();
      else this.sub.runAs(this.procs[task]!, run);
    }
    for (const set of this.sets) if (set.registered) this.sub.setFree(set);
    for (let id = 0; id < ID_SPACE; id++) expect(this.sub.ioasidInfo(id)).toBeUndefined();
    for (const set of this.sets) expect(set.registered).toBe(false);
    for (const cg of this.cgs.slice(1)) expect(cg.counter).toBe(0);
    for (const proc of this.procs) expect(this.sub.findMmSet(proc.mm as object)).toBeUndefined();
  }
}

describe('IOASID allocator against a model', () => {
  it('agrees on every result over random set/ID/refcount/cgroup sequences, and leaks nothing', () => {
    let total = 0;
    const seen = { allocated: 0, refusedByCgroup: 0, reclaimedLater: 0, migrations: 0 };
    fc.assert(
      fc.property(fc.array(op, { minLength: 50, maxLength: 150 }), (ops) => {
        const w = new World();
        w.check();
        for (const o of ops) {
          w.apply(o);
          w.check();
        }
        w.teardown();
        total += w.steps;
        for (const k of Object.keys(seen) as (keyof typeof seen)[]) seen[k] += w.seen[k];
      }),
      { numRuns: 200 },
    );
    expect(total).toBeGreaterThanOrEqual(10_000);
    // The random runs must really reach the interesting outcomes, not only refusals.
    expect(seen.allocated).toBeGreaterThan(1000);
    expect(seen.refusedByCgroup).toBeGreaterThan(100);
    expect(seen.reclaimedLater).toBeGreaterThan(50);
    expect(seen.migrations).toBeGreaterThan(100);
  });
});
