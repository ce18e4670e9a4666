// Random map / copy / unmap / attach / detach / access pin / unpin / rw sequences on two
// io_pagetables against a page-granular model. After every step: the areas match the model, every
// attached test-IOMMU domain translates every mapped IOVA to the right user page (hardware walk) and
// nothing else in the window, each user page is pinned exactly once per pages object that needs it,
// and the accounting equals the pinned pages. At the end, tearing everything down returns every pin,
// every charge and every mm reference.

import { errnoOf } from '@iommu-ts/base/testing';
import { IOMMU_READ, IOMMU_WRITE, type IommuDomain } from '@iommu-ts/iommu-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IOPT_ALLOC_IOVA, IoPagetable, type IoptAccess } from './io-pagetable.js';
import {
  addTestDomain,
  BP,
  type Env,
  hwTranslate,
  makeEnv,
  P,
  PRIV,
  pinsAt,
  RW,
  userPa,
} from './io-pagetable.test-helpers.js';
import { IOMMUFD_ACCESS_RW_WRITE } from './pages.js';

const USER_PAGES = 24;
const WINDOW = 40; // IOVA pages [0, 40) are checked after every step
const TABLES = 2;
const DOMAINS = 3;

interface MArea {
  slot: number; // first IOVA page
  n: number; // pages
  pagesId: number;
  user0: number; // user page of the first page
  protWrite: boolean;
  pagesWritable: boolean;
}

interface MTable {
  iopt: IoPagetable;
  areas: MArea[];
  domains: number[];
  access: RecordingAccess;
}

class RecordingAccess implements IoptAccess {
  readonly iovaAlignment = P;
  pins: { slot: number; n: number }[] = [];
  constructor(readonly iopt: IoPagetable) {}
  unmap(iova: bigint, length: bigint): void {
    const first = Number(iova / BP);
    const last = Number((iova + length - 1n) / BP);
    this.pins = this.pins.filter((p) => {
      const hit = p.slot <= last && p.slot + p.n - 1 >= first;
      if (hit) this.iopt.accessUnpinPages(BigInt(p.slot) * BP, BigInt(p.n) * BP);
      return !hit;
    });
  }
}

/**
 * An IOVA page: absolute, or relative to the start of the n-th current area of the table; `fit`
 * also shrinks the page count to stay inside that area (or, for unmap, to cover it exactly).
 */
type SlotRef = { abs: number } | { area: number; delta: number; fit: boolean };

type Op =
  | { kind: 'map'; t: number; slot: number | null; user: number; n: number; write: boolean }
  | {
      kind: 'copy';
      src: number;
      sslot: SlotRef;
      n: number;
      dst: number;
      dslot: number | null;
      write: boolean;
    }
  | { kind: 'unmap'; t: number; slot: SlotRef; n: number }
  | { kind: 'unmapAll'; t: number }
  | { kind: 'attach'; t: number; d: number }
  | { kind: 'detach'; t: number; d: number }
  | { kind: 'pin'; t: number; slot: SlotRef; n: number; write: boolean }
  | { kind: 'unpin'; t: number; idx: number }
  | { kind: 'rw'; t: number; slot: SlotRef };

const table = fc.integer({ min: 0, max: TABLES - 1 });
const slot = fc.integer({ min: 0, max: WINDOW - 4 });
const count = fc.integer({ min: 1, max: 4 });
const slotRef: fc.Arbitrary<SlotRef> = fc.oneof(
  fc.record({ abs: slot }),
  fc.record({ area: fc.nat(), delta: fc.integer({ min: -1, max: 2 }), fit: fc.boolean() }),
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('map' as const),
      t: table,
      slot: fc.option(slot, { freq: 3 }),
      user: fc.integer({ min: 0, max: USER_PAGES - 4 }),
      n: count,
      write: fc.boolean(),
    }),
    weight: 5,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('copy' as const),
      src: table,
      sslot: slotRef,
      n: count,
      dst: table,
      dslot: fc.option(slot, { freq: 3 }),
      write: fc.boolean(),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('unmap' as const),
      t: table,
      slot: slotRef,
      n: fc.integer({ min: 1, max: 12 }),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant('unmapAll' as const), t: table }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('attach' as const),
      t: table,
      d: fc.integer({ min: 0, max: DOMAINS - 1 }),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant('detach' as const), t: table, d: fc.nat() }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('pin' as const),
      t: table,
      slot: slotRef,
      n: count,
      write: fc.boolean(),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('unpin' as const), t: table, idx: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('rw' as const), t: table, slot: slotRef }), weight: 1 },
);

class Harness {
  readonly env: Env;
  readonly va: bigint;
  readonly domains: { domain: IommuDomain; sid: number }[] = [];
  readonly tables: MTable[] = [];
  readonly mmCountBase: number;
  private nextPagesId = 1;

  constructor() {
    this.env = makeEnv({ uid: 1000, capabilities: [], rlimitMemlock: 1 << 30 });
    // Fault the pages in a scrambled order so that physical contiguity varies along the buffer
    // (runs of contiguous PFNs and breaks both occur).
    this.va = this.env.proc.mmap(BigInt(USER_PAGES * P), RW, PRIV);
    for (let i = 0; i < USER_PAGES; i++) {
      const u = (i * 5) % USER_PAGES;
      this.env.proc.write(this.va + BigInt(u * P), new Uint8Array([u, 0xa5]));
    }
    for (let d = 0; d < DOMAINS; d++) this.domains.push(addTestDomain(this.env));
    for (let t = 0; t < TABLES; t++) {
      const iopt = new IoPagetable();
      const access = new RecordingAccess(iopt);
      iopt.addAccess(access);
      this.tables.push({ iopt, areas: [], domains: [], access });
    }
    this.mmCountBase = this.env.proc.mm.count;
  }

  /** A starting layout so that early operations find areas: two areas per table. */
  seed(): void {
    this.apply({ kind: 'map', t: 0, slot: 2, user: 0, n: 4, write: true });
    this.apply({ kind: 'map', t: 0, slot: 6, user: 4, n: 2, write: false });
    this.apply({ kind: 'map', t: 1, slot: 10, user: 8, n: 4, write: true });
    this.apply({ kind: 'map', t: 1, slot: 20, user: 2, n: 3, write: true });
  }

  private resolve(t: MTable, ref: SlotRef, n: number, whole = false): [number, number] {
    if ('abs' in ref) return [ref.abs, n];
    const a = t.areas[ref.area % Math.max(1, t.areas.length)];
    if (a === undefined) return [0, n];
    if (ref.fit && whole) return [a.slot, a.n];
    if (ref.fit) {
      const s = a.slot + Math.min(Math.max(ref.delta, 0), a.n - 1);
      return [s, Math.min(n, a.slot + a.n - s)];
    }
    return [Math.min(WINDOW - 4, Math.max(0, a.slot + ref.delta)), n];
  }

  private tableOfDomain(d: number): number {
    return this.tables.findIndex((t) => t.domains.includes(d));
  }

  private overlaps(t: MTable, s: number, n: number): boolean {
    return t.areas.some((a) => a.slot < s + n && s < a.slot + a.n);
  }

  /** The contiguous pieces covering [s, s + n) and whether they cover it all (iopt_area_contig_iter). */
  private pieces(
    t: MTable,
    s: number,
    n: number,
  ): { pieces: { a: MArea; from: number; to: number }[]; done: boolean } {
    const out: { a: MArea; from: number; to: number }[] = [];
    let cur = s;
    const last = s + n - 1;
    for (;;) {
      const a = t.areas.find((x) => x.slot <= cur && cur < x.slot + x.n);
      if (a === undefined) return { pieces: out, done: false };
      const to = Math.min(last, a.slot + a.n - 1);
      out.push({ a, from: cur, to });
      if (to === last) return { pieces: out, done: true };
      cur = a.slot + a.n;
    }
  }

  /** The automatic IOVA page Linux picks: the lowest aligned page ≥ 1 where n pages are free. */
  private expectedAuto(t: MTable, userPage: number, n: number): number {
    const addr = this.va + BigInt(userPage * P);
    let align = 1n;
    while (align < BigInt(n) * BP) align <<= 1n;
    const low = addr & -addr;
    if (low < align) align = low;
    if (align > 2n ** 21n) align = 2n ** 21n;
    const step = Number(align / BP);
    for (let s = step; ; s += step) if (!this.overlaps(t, s, n)) return s;
  }

  private insert(t: MTable, a: MArea): void {
    t.areas.push(a);
    t.areas.sort((x, y) => x.slot - y.slot);
  }

  private prot(write: boolean): number {
    return write ? IOMMU_READ | IOMMU_WRITE : IOMMU_READ;
  }

  apply(op: Op): void {
    const tb = (i: number) => this.tables[i] as MTable;
    switch (op.kind) {
      case 'map': {
        const t = tb(op.t);
        const uva = this.va + BigInt(op.user) * BP;
        const len = BigInt(op.n) * BP;
        if (op.slot === null) {
          const iova = t.iopt.mapUserPages(this.env.proc, 0n, uva, len, this.prot(op.write), IOPT_ALLOC_IOVA);
          expect(iova % BP).toBe(0n);
          const s = Number(iova / BP);
          expect(s).toBe(this.expectedAuto(t, op.user, op.n));
          this.insert(t, {
            slot: s,
            n: op.n,
            pagesId: this.nextPagesId++,
            user0: op.user,
            protWrite: op.write,
            pagesWritable: op.write,
          });
          return;
        }
        const expected = this.overlaps(t, op.slot, op.n) ? 'EEXIST' : undefined;
        const r = errnoOf(() =>
          t.iopt.mapUserPages(
            this.env.proc,
            BigInt(op.slot as number) * BP,
            uva,
            len,
            this.prot(op.write),
            0,
          ),
        );
        expect(r).toBe(expected);
        if (r === undefined)
          this.insert(t, {
            slot: op.slot,
            n: op.n,
            pagesId: this.nextPagesId++,
            user0: op.user,
            protWrite: op.write,
            pagesWritable: op.write,
          });
        return;
      }
      case 'copy': {
        const src = tb(op.src);
        const dst = tb(op.dst);
        const [sslot, n] = this.resolve(src, op.sslot, op.n);
        const { pieces, done } = this.pieces(src, sslot, n);
        let expected: string | undefined;
        if (!done) expected = 'ENOENT';
        else if (op.dslot !== null && this.overlaps(dst, op.dslot, n)) expected = 'EEXIST';
        else if (op.write && pieces.some((p) => !p.a.pagesWritable)) expected = 'EPERM';
        let iova = -1n;
        const r = errnoOf(() => {
          const list = src.iopt.getPages(BigInt(sslot) * BP, BigInt(n) * BP);
          iova = dst.iopt.mapPages(
            list,
            BigInt(n) * BP,
            BigInt(op.dslot ?? 0) * BP,
            this.prot(op.write),
            op.dslot === null ? IOPT_ALLOC_IOVA : 0,
          );
        });
        expect(r).toBe(expected);
        if (r !== undefined) return;
        const first = pieces[0] as { a: MArea; from: number };
        const auto =
          op.dslot === null ? this.expectedAuto(dst, first.a.user0 + first.from - first.a.slot, n) : 0;
        let s = Number(iova / BP);
        expect(s).toBe(op.dslot ?? auto);
        for (const p of pieces) {
          const len = p.to - p.from + 1;
          this.insert(dst, {
            slot: s,
            n: len,
            pagesId: p.a.pagesId,
            user0: p.a.user0 + (p.from - p.a.slot),
            protWrite: op.write,
            pagesWritable: p.a.pagesWritable,
          });
          s += len;
        }
        return;
      }
      case 'unmap':
      case 'unmapAll': {
        const t = tb(op.t);
        const [first, n] = op.kind === 'unmap' ? this.resolve(t, op.slot, op.n, true) : [0, 0];
        const last = op.kind === 'unmap' ? first + n - 1 : Number.MAX_SAFE_INTEGER;
        let bytes = 0;
        let expected: string | undefined;
        for (const a of [...t.areas]) {
          if (a.slot + a.n - 1 < first || a.slot > last) continue;
          if (a.slot < first || a.slot + a.n - 1 > last) {
            expected = 'ENOENT';
            break;
          }
          t.areas.splice(t.areas.indexOf(a), 1);
          bytes += a.n * P;
        }
        const out = { unmapped: -1n };
        const r = errnoOf(() =>
          op.kind === 'unmap'
            ? t.iopt.unmapIova(BigInt(first) * BP, BigInt(n) * BP, out)
            : t.iopt.unmapAll(out),
        );
        expect(r).toBe(expected);
        expect(out.unmapped).toBe(BigInt(bytes));
        return;
      }
      case 'attach': {
        if (this.tableOfDomain(op.d) >= 0) return;
        const t = tb(op.t);
        t.iopt.tableAddDomain((this.domains[op.d] as { domain: IommuDomain }).domain);
        t.domains.push(op.d);
        return;
      }
      case 'detach': {
        const t = tb(op.t);
        if (t.domains.length === 0) return;
        const [d] = t.domains.splice(op.d % t.domains.length, 1);
        t.iopt.tableRemoveDomain((this.domains[d as number] as { domain: IommuDomain }).domain);
        return;
      }
      case 'pin': {
        const t = tb(op.t);
        const [at, n] = this.resolve(t, op.slot, op.n);
        const { pieces, done } = this.pieces(t, at, n);
        let expected: string | undefined = done ? undefined : 'ENOENT';
        if (op.write && pieces.some((p) => !p.a.protWrite || !p.a.pagesWritable)) expected = 'EPERM';
        let pas: number[] = [];
        const r = errnoOf(() => {
          pas = t.iopt.accessPinPages(
            BigInt(at) * BP,
            BigInt(n) * BP,
            op.write ? IOMMUFD_ACCESS_RW_WRITE : 0,
          );
        });
        expect(r).toBe(expected);
        if (r !== undefined) return;
        t.access.pins.push({ slot: at, n });
        const want = pieces.flatMap((p) =>
          Array.from({ length: p.to - p.from + 1 }, (_, k) =>
            userPa(this.env.proc, this.va + BigInt((p.a.user0 + p.from - p.a.slot + k) * P)),
          ),
        );
        expect(pas).toEqual(want);
        return;
      }
      case 'unpin': {
        const t = tb(op.t);
        const pins = t.access.pins;
        if (pins.length === 0) return;
        const [p] = pins.splice(op.idx % pins.length, 1);
        if (p) t.iopt.accessUnpinPages(BigInt(p.slot) * BP, BigInt(p.n) * BP);
        return;
      }
      case 'rw': {
        const t = tb(op.t);
        const [at] = this.resolve(t, op.slot, 2);
        const { pieces, done } = this.pieces(t, at, 2);
        const buf = new Uint8Array(64);
        const r = errnoOf(() => t.iopt.accessRw(BigInt(at) * BP + BP - 32n, buf, 0, null));
        expect(r).toBe(done ? undefined : 'ENOENT');
        if (!done) return;
        const [p0, p1] = [pieces[0], pieces[pieces.length - 1]];
        if (!p0 || !p1) return;
        const u0 = p0.a.user0 + (p0.from - p0.a.slot);
        const u1 = p1.a.user0 + (p1.to - p1.a.slot);
        const want = new Uint8Array([
          ...this.env.proc.read(this.va + BigInt(u0 * P + P - 32), 32n),
          ...this.env.proc.read(this.va + BigInt(u1 * P), 32n),
        ]);
        expect([...buf]).toEqual([...want]);
        return;
      }
    }
  }

  check(): void {
    // Areas.
    for (const t of this.tables) {
      expect(t.iopt.areas().map((a) => [a.iova, a.lastIova])).toEqual(
        t.areas.map((a) => [BigInt(a.slot) * BP, BigInt(a.slot + a.n) * BP - 1n]),
      );
    }
    // Translations of every attached domain over the window.
    for (const t of this.tables) {
      const map = new Map<number, number>();
      for (const a of t.areas) for (let k = 0; k < a.n; k++) map.set(a.slot + k, a.user0 + k);
      for (const d of t.domains) {
        const { sid } = this.domains[d] as { sid: number };
        for (let s = 0; s < WINDOW; s++) {
          const u = map.get(s);
          const got = hwTranslate(this.env, sid, BigInt(s) * BP + 0x10n);
          if (u === undefined) expect(got).toBe('translation');
          else expect(got).toBe(BigInt((userPa(this.env.proc, this.va + BigInt(u * P)) as number) + 0x10));
        }
      }
    }
    for (let d = 0; d < DOMAINS; d++) {
      if (this.tableOfDomain(d) < 0) {
        const { sid } = this.domains[d] as { sid: number };
        expect(hwTranslate(this.env, sid, BP)).toBe('translation');
      }
    }
    // Pins: per pages object, the user pages some filled area or some access pin needs.
    const needed = new Map<number, Set<number>>();
    const need = (id: number, u: number) => {
      let s = needed.get(id);
      if (!s) {
        s = new Set();
        needed.set(id, s);
      }
      s.add(u);
    };
    for (const t of this.tables) {
      if (t.domains.length > 0)
        for (const a of t.areas) for (let k = 0; k < a.n; k++) need(a.pagesId, a.user0 + k);
      for (const p of t.access.pins) {
        for (const pc of this.pieces(t, p.slot, p.n).pieces)
          for (let s = pc.from; s <= pc.to; s++) need(pc.a.pagesId, pc.a.user0 + (s - pc.a.slot));
      }
    }
    let total = 0;
    const perPage = new Array<number>(USER_PAGES).fill(0);
    for (const s of needed.values()) {
      total += s.size;
      for (const u of s) perPage[u] = (perPage[u] as number) + 1;
    }
    for (let u = 0; u < USER_PAGES; u++)
      expect(pinsAt(this.env.proc, this.va + BigInt(u * P))).toBe(perPage[u]);
    expect(this.env.proc.mm.pinnedVm).toBe(total);
    expect(this.env.proc.machine.userLockedVm(1000)).toBe(total);
  }

  teardown(): void {
    for (const t of this.tables) {
      t.iopt.unmapAll();
      for (const d of [...t.domains])
        t.iopt.tableRemoveDomain((this.domains[d] as { domain: IommuDomain }).domain);
      t.iopt.removeAccess(t.access);
      expect(t.access.pins).toEqual([]);
      t.iopt.destroyTable();
    }
    for (let u = 0; u < USER_PAGES; u++) expect(pinsAt(this.env.proc, this.va + BigInt(u * P))).toBe(0);
    expect(this.env.proc.mm.pinnedVm).toBe(0);
    expect(this.env.proc.mm.lockedVm).toBe(0);
    expect(this.env.proc.machine.userLockedVm(1000)).toBe(0);
    expect(this.env.proc.mm.count).toBe(this.mmCountBase); // every iopt_pages dropped its mmgrab
  }
}

describe('io_pagetable against a model', () => {
  it('keeps domains, pins and accounting consistent through random operation sequences', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 8, maxLength: 40 }), (ops) => {
        const h = new Harness();
        h.seed();
        for (const op of ops) {
          h.apply(op);
          h.check();
        }
        h.teardown();
      }),
      { numRuns: 150 },
    );
  });
});
