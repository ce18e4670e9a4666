import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  IOTLB_NO_PASID,
  VtdIotlb,
  type VtdIotlbEntry,
  type VtdIotlbEntryInit,
  type VtdIotlbKind,
  type VtdPdeEntry,
} from './iotlb.js';

// A reference IOTLB: plain arrays in insertion order, every operation a linear scan implementing
// the documented rules of VtdIotlb. The indexed implementation must agree with it on every
// lookup, on the entries held (in order) and on the counters.

interface RefLeaf {
  readonly did: number;
  readonly pasid: number;
  readonly kind: VtdIotlbKind;
  readonly pfn: number;
  readonly shift: 12 | 21 | 30;
  readonly outputBase: number;
  readonly perm: number;
  readonly dirty: boolean;
  readonly global: boolean;
}

interface RefPde {
  readonly did: number;
  readonly pasid: number;
  readonly level: number;
  readonly kind: VtdIotlbKind;
  readonly key: number;
  readonly table: number;
  readonly acc: number;
}

const SPAN = [1, 1, 512, 512 ** 2, 512 ** 3, 512 ** 4];
const pagesOf = (shift: number): number => 2 ** (shift - 12);
const FL_OR_NESTED = (kind: VtdIotlbKind): boolean => kind !== 0;

class RefIotlb {
  leaves: RefLeaf[] = [];
  pdes: RefPde[] = [];
  readonly stats = { hits: 0, misses: 0, pdeHits: 0, inserts: 0, evictions: 0, invalidated: 0 };
  constructor(
    readonly capacity: number,
    readonly pdeCapacity: number,
  ) {}

  insert(init: VtdIotlbEntryInit): RefLeaf {
    const pages = pagesOf(init.shift);
    const e: RefLeaf = {
      ...init,
      pfn: init.pfn - (init.pfn % pages),
      outputBase: init.outputBase - (init.outputBase % (pages * 4096)),
    };
    const i = this.leaves.findIndex(
      (o) => o.did === e.did && o.pasid === e.pasid && o.shift === e.shift && o.pfn === e.pfn,
    );
    if (i >= 0) this.leaves.splice(i, 1);
    else if (this.leaves.length >= this.capacity) {
      this.leaves.shift();
      this.stats.evictions++;
    }
    this.leaves.push(e);
    this.stats.inserts++;
    return e;
  }

  lookup(did: number, pasid: number, pfn: number): RefLeaf | undefined {
    for (const shift of [12, 21, 30]) {
      const e = this.leaves.find(
        (o) =>
          o.did === did &&
          o.pasid === pasid &&
          o.shift === shift &&
          pfn >= o.pfn &&
          pfn < o.pfn + pagesOf(shift),
      );
      if (e !== undefined) {
        this.stats.hits++;
        return e;
      }
    }
    this.stats.misses++;
    return undefined;
  }

  remove(e: RefLeaf): void {
    const i = this.leaves.indexOf(e);
    if (i >= 0) this.leaves.splice(i, 1);
  }

  pdeLookup(
    did: number,
    pasid: number,
    kind: VtdIotlbKind,
    pfn: number,
    topLevel: number,
  ): RefPde | undefined {
    for (let level = 2; level <= topLevel; level++) {
      const key = Math.floor(pfn / (SPAN[level] as number));
      const p = this.pdes.find(
        (o) => o.did === did && o.pasid === pasid && o.level === level && o.key === key,
      );
      if (p !== undefined && p.kind === kind) {
        this.stats.pdeHits++;
        return p;
      }
    }
    return undefined;
  }

  pdeInsert(
    did: number,
    pasid: number,
    kind: VtdIotlbKind,
    level: number,
    pfn: number,
    table: number,
    acc: number,
  ): void {
    if (this.pdeCapacity === 0 || level < 2 || level > 5) return;
    const key = Math.floor(pfn / (SPAN[level] as number));
    const i = this.pdes.findIndex(
      (o) => o.did === did && o.pasid === pasid && o.level === level && o.key === key,
    );
    if (i >= 0) this.pdes.splice(i, 1);
    else if (this.pdes.length >= this.pdeCapacity) {
      this.pdes.shift();
      this.stats.evictions++;
    }
    this.pdes.push({ did, pasid, level, kind, key, table, acc });
  }

  /** Drop the entries the predicates select, counting them. */
  #drop(leaf: (e: RefLeaf) => boolean, pde: (p: RefPde) => boolean): void {
    const l = this.leaves.filter((e) => !leaf(e));
    const p = this.pdes.filter((x) => !pde(x));
    this.stats.invalidated += this.leaves.length - l.length + this.pdes.length - p.length;
    this.leaves = l;
    this.pdes = p;
  }

  invalidateGlobal(): void {
    this.#drop(
      () => true,
      () => true,
    );
  }

  invalidateDomain(did: number): void {
    this.#drop(
      (e) => e.did === did,
      (p) => p.did === did,
    );
  }

  invalidatePage(did: number, addr: bigint, am: number, ih: boolean): void {
    const [start, end] = range(addr, am);
    this.#drop(
      (e) => e.did === did && (FL_OR_NESTED(e.kind) || leafOverlaps(e, start, end)),
      (p) => !ih && p.did === did && (FL_OR_NESTED(p.kind) || pdeOverlaps(p, start, end)),
    );
  }

  invalidatePasid(did: number, pasid: number): void {
    this.#drop(
      (e) => e.did === did && e.pasid === pasid,
      (p) => p.did === did && p.pasid === pasid,
    );
  }

  invalidatePasidPage(did: number, pasid: number, addr: bigint, am: number, ih: boolean): void {
    const [start, end] = range(addr, am);
    this.#drop(
      (e) => e.did === did && e.pasid === pasid && FL_OR_NESTED(e.kind) && leafOverlaps(e, start, end),
      (p) => !ih && p.did === did && p.pasid === pasid && FL_OR_NESTED(p.kind) && pdeOverlaps(p, start, end),
    );
  }
}

function range(addr: bigint, am: number): [number, number] {
  const m = Math.min(Math.max(0, am), 52);
  const pfn = Number(BigInt.asUintN(64, addr) >> 12n);
  const start = pfn - (pfn % 2 ** m);
  return [start, start + 2 ** m];
}

function leafOverlaps(e: RefLeaf, start: number, end: number): boolean {
  return e.pfn < end && e.pfn + pagesOf(e.shift) > start;
}

function pdeOverlaps(p: RefPde, start: number, end: number): boolean {
  const span = SPAN[p.level] as number;
  return p.key * span < end && (p.key + 1) * span > start;
}

const leafView = (e: VtdIotlbEntry | RefLeaf | undefined) =>
  e === undefined
    ? undefined
    : [e.did, e.pasid, e.kind, e.pfn, e.shift, e.outputBase, e.perm, e.dirty, e.global];
const pdeView = (p: VtdPdeEntry | RefPde | undefined) =>
  p === undefined ? undefined : [p.level, p.kind, p.key, p.table, p.acc];

// Small tag and address spaces so that operations collide; bases near 4K/2M/1G/512G boundaries.
const did = fc.integer({ min: 1, max: 2 });
const pasid = fc.constantFrom(IOTLB_NO_PASID, 1);
const kind = fc.constantFrom<VtdIotlbKind>(0, 1, 2);
const pfn = fc
  .tuple(
    fc.constantFrom(0, 0x3fe00, 0x40000, 0x7ffffe00, 2 ** 40 - 0x200),
    fc.integer({ min: 0, max: 0x600 }),
  )
  .map(([b, o]) => b + o);
const am = fc.oneof(fc.integer({ min: 0, max: 10 }), fc.constantFrom(18, 19, 27, 30, 52));
const addr = fc
  .tuple(pfn, fc.integer({ min: 0, max: 0xfff }))
  .map(([p, low]) => BigInt(p) * 4096n + BigInt(low));

const op = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('insert' as const),
      did,
      pasid,
      kind,
      pfn,
      shift: fc.constantFrom<12 | 21 | 30>(12, 12, 21, 30),
      outputBase: fc.integer({ min: 0, max: 2 ** 40 }),
      perm: fc.integer({ min: 0, max: 63 }),
      dirty: fc.boolean(),
      global: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('pdeInsert' as const),
      did,
      pasid,
      kind,
      level: fc.integer({ min: 1, max: 6 }),
      pfn,
      table: fc.integer({ min: 0, max: 2 ** 30 }),
      acc: fc.integer({ min: 0, max: 7 }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('lookup' as const), did, pasid, pfn }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('pdeLookup' as const),
      did,
      pasid,
      kind,
      pfn,
      top: fc.integer({ min: 2, max: 5 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('remove' as const), index: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('page' as const), did, addr, am, ih: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('pasidPage' as const), did, pasid, addr, am, ih: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('domain' as const), did }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('pasid' as const), did, pasid }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('global' as const) }) },
);

describe('VtdIotlb against a linear-scan reference model', () => {
  it('agrees on lookups, held entries and counters over random operation sequences', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 8 }),
        fc.array(op, { maxLength: 80 }),
        (capacity, pdeCapacity, ops) => {
          const t = new VtdIotlb({ capacity, pdeCapacity });
          const ref = new RefIotlb(capacity, pdeCapacity);
          const inserted: [VtdIotlbEntry, RefLeaf][] = [];
          for (const o of ops) {
            switch (o.op) {
              case 'insert': {
                const { op: _, ...init } = o;
                inserted.push([t.insert(init), ref.insert(init)]);
                break;
              }
              case 'pdeInsert':
                t.pdeInsert(o.did, o.pasid, o.kind, o.level, o.pfn, o.table, o.acc);
                ref.pdeInsert(o.did, o.pasid, o.kind, o.level, o.pfn, o.table, o.acc);
                break;
              case 'lookup':
                expect(leafView(t.lookup(o.did, o.pasid, o.pfn))).toEqual(
                  leafView(ref.lookup(o.did, o.pasid, o.pfn)),
                );
                break;
              case 'pdeLookup':
                expect(pdeView(t.pdeLookup(o.did, o.pasid, o.kind, o.pfn, o.top))).toEqual(
                  pdeView(ref.pdeLookup(o.did, o.pasid, o.kind, o.pfn, o.top)),
                );
                break;
              case 'remove': {
                const pair = inserted[o.index % Math.max(1, inserted.length)];
                if (pair !== undefined) {
                  t.remove(pair[0]);
                  ref.remove(pair[1]);
                }
                break;
              }
              case 'page':
                t.invalidatePage(o.did, o.addr, o.am, o.ih);
                ref.invalidatePage(o.did, o.addr, o.am, o.ih);
                break;
              case 'pasidPage':
                t.invalidatePasidPage(o.did, o.pasid, o.addr, o.am, o.ih);
                ref.invalidatePasidPage(o.did, o.pasid, o.addr, o.am, o.ih);
                break;
              case 'domain':
                t.invalidateDomain(o.did);
                ref.invalidateDomain(o.did);
                break;
              case 'pasid':
                t.invalidatePasid(o.did, o.pasid);
                ref.invalidatePasid(o.did, o.pasid);
                break;
              case 'global':
                t.invalidateGlobal();
                ref.invalidateGlobal();
                break;
            }
            expect(t.entries().map(leafView)).toEqual(ref.leaves.map(leafView));
            expect(t.pdeEntries().map(pdeView)).toEqual(ref.pdes.map(pdeView));
            expect({ ...t.stats }).toEqual(ref.stats);
            expect([t.size, t.pdeSize]).toEqual([ref.leaves.length, ref.pdes.length]);
          }
          // Every held entry is still reachable by a lookup of its own tag and address.
          for (const e of ref.leaves) expect(t.lookup(e.did, e.pasid, e.pfn)).toBeDefined();
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('VtdIotlb bookkeeping of replaced and evicted entries', () => {
  const init = (over: Partial<VtdIotlbEntryInit>): VtdIotlbEntryInit => ({
    did: 1,
    pasid: IOTLB_NO_PASID,
    kind: 0,
    pfn: 0x10,
    shift: 12,
    outputBase: 0x1000,
    perm: 63,
    dirty: true,
    global: false,
    ...over,
  });

  it('remove() of an entry replaced by a same-key insert leaves the replacement cached', () => {
    const t = new VtdIotlb();
    const old = t.insert(init({}));
    t.insert(init({ outputBase: 0x2000 }));
    t.remove(old);
    expect(t.size).toBe(1);
    expect(t.lookup(1, IOTLB_NO_PASID, 0x10)?.outputBase).toBe(0x2000);
  });

  it('evicting the only entry of a tag set keeps the entry that caused the eviction findable', () => {
    const t = new VtdIotlb({ capacity: 1, pdeCapacity: 1 });
    t.insert(init({}));
    t.insert(init({ pfn: 0x11, outputBase: 0x3000 }));
    expect(t.lookup(1, IOTLB_NO_PASID, 0x11)?.outputBase).toBe(0x3000);
    t.pdeInsert(2, 5, 1, 2, 0, 0x7000, 7);
    t.pdeInsert(2, 5, 1, 2, 0x200, 0x8000, 7);
    expect(t.pdeLookup(2, 5, 1, 0x200, 4)?.table).toBe(0x8000);
    expect(t.stats.evictions).toBe(2);
  });

  it('remove() of an entry dropped by a global invalidation does not disturb newer entries', () => {
    const t = new VtdIotlb();
    const stale = t.insert(init({}));
    t.invalidateGlobal();
    t.insert(init({ pfn: 0x20, outputBase: 0x4000 }));
    t.insert(init({ did: 9 }));
    t.remove(stale);
    expect(t.size).toBe(2);
    expect(t.lookup(9, IOTLB_NO_PASID, 0x10)).toBeDefined(); // another tag: no last-set shortcut
    expect(t.lookup(1, IOTLB_NO_PASID, 0x20)?.outputBase).toBe(0x4000);
  });
});
