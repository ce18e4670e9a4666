import { Prng } from '@iommu-ts/base';
import type { TlbiOp } from '@iommu-ts/mm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  SmmuTlb,
  type SmmuTlbEntry,
  type SmmuTlbStats,
  TLB_PERM_ALL,
  type TlbEntryInit,
  type TlbiIpaRange,
  type TlbiVaRange,
  type TlbRegime,
  tlbTag,
} from './tlb.js';

// A deliberately naive reference TLB: one array in most-recently-used-first order, linear scans for
// everything, the same replacement policies and the same invalidation rules as SmmuTlb.

const SPAN52 = 2 ** 52;
const GLOBAL = 0x1_0000;

interface RefEntry {
  tag: number;
  inputBase: number;
  shift: number;
  level: number;
  outputBase: number;
  aset: boolean;
}

const regimeOf = (t: number): number => Math.floor(t / 2 ** 35);
const s2Of = (t: number): boolean => Math.floor(t / 2 ** 34) % 2 === 1;
const regionOf = (t: number): number => Math.floor(t / 2 ** 33) % 2;
const vmidOf = (t: number): number => Math.floor(t / 2 ** 17) % 0x1_0000;
const asidOf = (t: number): number => t % 2 ** 17;

interface RefSpan {
  start: number;
  end: number;
  region: number;
  ttl: number;
}

function refSpan(addr: bigint | number, tg: number, num: number, scale: number, ttl: number): RefSpan {
  let a: number;
  let region = 0;
  if (typeof addr === 'bigint') {
    region = Number((addr >> 55n) & 1n);
    a = Number(addr & 0xf_ffff_ffff_f000n);
  } else {
    a = (addr - (addr % 4096)) % SPAN52;
  }
  if ((tg & 3) === 0) return { start: a, end: a + 1, region, ttl: 0 };
  const gs = [0, 12, 14, 16][tg & 3] as number;
  const g = 2 ** gs;
  return { start: a - (a % g), end: a + ((num & 31) + 1) * 2 ** ((scale & 31) + gs), region, ttl: ttl & 3 };
}

function refOverlaps(e: RefEntry, s: RefSpan, checkRegion: boolean): boolean {
  if (checkRegion && regionOf(e.tag) !== s.region) return false;
  if (s.ttl !== 0 && e.level !== s.ttl) return false;
  return e.inputBase < s.end && s.start < e.inputBase + 2 ** e.shift;
}

class RefTlb {
  list: RefEntry[] = []; // MRU first
  slots: RefEntry[] = [];
  stats: SmmuTlbStats = { hits: 0, misses: 0, walks: 0, inserts: 0, evictions: 0, invalidated: 0 };
  readonly prng: Prng;
  constructor(
    readonly capacity: number,
    readonly replacement: 'lru' | 'random' | 'flush-all',
    seed: number,
    readonly asidMask: number,
    readonly vmidMask: number,
  ) {
    this.prng = new Prng(seed);
  }

  private drop(e: RefEntry): void {
    this.list.splice(this.list.indexOf(e), 1);
    const i = this.slots.indexOf(e);
    const last = this.slots.pop() as RefEntry;
    if (last !== e) this.slots[i] = last;
  }

  private dropIf(pred: (e: RefEntry) => boolean): void {
    for (const e of [...this.list]) {
      if (pred(e)) {
        this.drop(e);
        this.stats.invalidated++;
      }
    }
  }

  private find(tag: number, addr: number): RefEntry | undefined {
    let best: RefEntry | undefined;
    for (const e of this.list) {
      if (e.tag !== tag || addr < e.inputBase || addr >= e.inputBase + 2 ** e.shift) continue;
      if (best === undefined || e.shift < best.shift) best = e;
    }
    return best;
  }

  insert(init: TlbEntryInit): void {
    const size = 2 ** init.shift;
    const base = Math.floor((init.inputAddr % SPAN52) / size) * size;
    const old = this.list.find((e) => e.tag === init.tag && e.shift === init.shift && e.inputBase === base);
    if (old !== undefined) this.drop(old);
    if (this.slots.length >= this.capacity) {
      if (this.replacement === 'flush-all') {
        for (const e of [...this.list]) {
          this.drop(e);
          this.stats.evictions++;
        }
      } else {
        const v =
          this.replacement === 'random'
            ? this.slots[this.prng.nextInt(this.slots.length)]
            : this.list[this.list.length - 1];
        if (v !== undefined) {
          this.drop(v);
          this.stats.evictions++;
        }
      }
    }
    const e: RefEntry = {
      tag: init.tag,
      inputBase: base,
      shift: init.shift,
      level: init.level,
      outputBase: init.outputBase - (init.outputBase % size),
      aset: init.aset ?? false,
    };
    this.list.unshift(e);
    this.slots.push(e);
    this.stats.inserts++;
  }

  lookup(tag: number, addr: number, globalTag: number): RefEntry | undefined {
    let e = this.find(tag, addr);
    if (e === undefined && globalTag >= 0 && this.list.some((x) => asidOf(x.tag) === GLOBAL)) {
      e = this.find(globalTag, addr);
    }
    if (e === undefined) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    this.list.splice(this.list.indexOf(e), 1);
    this.list.unshift(e);
    return e;
  }

  invalidateAll(): void {
    this.dropIf(() => true);
  }
  invalidateNhAll(vmid: number): void {
    const v = vmid & this.vmidMask;
    this.dropIf((e) => regimeOf(e.tag) === 0 && !s2Of(e.tag) && vmidOf(e.tag) === v);
  }
  invalidateNhAsid(vmid: number, asid: number): void {
    const v = vmid & this.vmidMask;
    const a = asid & this.asidMask;
    this.dropIf((e) => regimeOf(e.tag) === 0 && !s2Of(e.tag) && vmidOf(e.tag) === v && asidOf(e.tag) === a);
  }
  invalidateS12Vmall(vmid: number): void {
    const v = vmid & this.vmidMask;
    this.dropIf((e) => regimeOf(e.tag) === 0 && vmidOf(e.tag) === v);
  }
  invalidateNsnhAll(): void {
    this.dropIf((e) => regimeOf(e.tag) === 0);
  }
  invalidateEl2All(): void {
    this.dropIf((e) => regimeOf(e.tag) === 1);
  }
  invalidateEl2Asid(asid: number): void {
    const a = asid & this.asidMask;
    this.dropIf((e) => regimeOf(e.tag) === 1 && asidOf(e.tag) === a);
  }
  invalidateS2Ipa(r: TlbiIpaRange): void {
    const s = refSpan(r.ipa, r.tg, r.num, r.scale, r.ttl);
    const v = r.vmid & this.vmidMask;
    this.dropIf(
      (e) => regimeOf(e.tag) === 0 && s2Of(e.tag) && vmidOf(e.tag) === v && refOverlaps(e, s, false),
    );
  }
  invalidateVa(regime: number, vmid: number, asid: number, r: TlbiVaRange): void {
    const s = refSpan(r.addr, r.tg, r.num, r.scale, r.ttl);
    this.dropIf((e) => {
      if (regimeOf(e.tag) !== regime || s2Of(e.tag)) return false;
      if (vmid >= 0 && vmidOf(e.tag) !== (vmid & this.vmidMask)) return false;
      if (asid >= 0 && asidOf(e.tag) !== (asid & this.asidMask) && asidOf(e.tag) !== GLOBAL) return false;
      return refOverlaps(e, s, true);
    });
  }
  invalidateBroadcast(op: TlbiOp, regime: number): void {
    const cand = (e: RefEntry): boolean =>
      !e.aset && regimeOf(e.tag) === regime && !s2Of(e.tag) && (regime === 1 || vmidOf(e.tag) === 0);
    if (op.kind === 'vmalle1is') {
      this.dropIf(cand);
      return;
    }
    const a = op.asid & this.asidMask;
    if (op.kind === 'aside1is') {
      this.dropIf((e) => cand(e) && asidOf(e.tag) === a);
      return;
    }
    const start = op.kind === 'vae1is' ? op.va - (op.va % 4096) : op.start;
    const end = op.kind === 'vae1is' ? start + 4096 : op.end;
    const s: RefSpan = { start: start % SPAN52, end: (start % SPAN52) + (end - start), region: 0, ttl: 0 };
    if (s.end <= s.start) return;
    this.dropIf(
      (e) => cand(e) && (asidOf(e.tag) === a || asidOf(e.tag) === GLOBAL) && refOverlaps(e, s, true),
    );
  }
}

// ---- random operation sequences ------------------------------------------------------------------

const SHIFTS = [12, 14, 16, 21, 25, 30];
const LEVEL_OF: Record<number, number> = { 12: 3, 14: 3, 16: 3, 21: 2, 25: 2, 30: 1 };

/** Addresses clustered so that entries, blocks and ranges collide often. */
const arbAddr = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 0x3ff }).map((p) => p * 0x1000 + 0x123) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 3 }).map((p) => p * 0x1000 + 0x80) },
  fc.integer({ min: 0, max: 7 }).map((p) => p * 2 ** 30 + 0x20_0000),
  fc.integer({ min: 0, max: 15 }).map((p) => SPAN52 - (p + 1) * 0x1000),
);
const arbTagParts = fc.record({
  regime: fc.constantFrom<TlbRegime>(0, 1),
  s2Only: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, fc.constant(true)),
  region: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, fc.constant(1)),
  vmid: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(0, 1) }, fc.constant(0x101)),
  asid: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(-1, 0, 1) }, fc.constant(0x101)),
});
const tagOf = (p: {
  regime: TlbRegime;
  s2Only: boolean;
  region: number;
  vmid: number;
  asid: number;
}): number =>
  p.s2Only ? tlbTag(p.regime, true, 0, p.vmid, 0) : tlbTag(p.regime, false, p.region, p.vmid, p.asid);

const arbOperand = fc.record({
  vmid: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(0, 1) }, fc.constant(0x101)),
  asid: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(0, 1) }, fc.constant(0x101)),
  addr: fc.oneof(
    arbAddr,
    arbAddr.map((a) => BigInt(a) | (1n << 55n) | (0xffn << 56n)),
    arbAddr.map((a) => BigInt(a)),
  ),
  leaf: fc.boolean(),
  tg: fc.integer({ min: 0, max: 3 }),
  num: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 3 }) }, fc.integer({ min: 0, max: 31 })),
  scale: fc.oneof(
    { weight: 4, arbitrary: fc.constant(0) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 3 }) },
    fc.integer({ min: 0, max: 31 }),
  ),
  ttl: fc.integer({ min: 0, max: 3 }),
});

type Op =
  | { k: 'insert'; tag: ReturnType<typeof tagOf>; addr: number; shift: number; aset: boolean; level: number }
  | { k: 'lookup'; tag: number; addr: number; globalTag: number }
  | { k: 'all' }
  | { k: 'nhAll' | 's12'; vmid: number }
  | { k: 'nhAsid'; vmid: number; asid: number }
  | { k: 'nsnh' | 'el2All' }
  | { k: 'el2Asid'; asid: number }
  | { k: 'nhVa' | 'nhVaa' | 'el2Va' | 'el2Vaa'; r: TlbiVaRange }
  | { k: 's2Ipa'; r: TlbiIpaRange }
  | { k: 'bcast'; op: TlbiOp; regime: TlbRegime };

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        p: arbTagParts,
        addr: arbAddr,
        shift: fc.constantFrom(...SHIFTS),
        aset: fc.boolean(),
        odd: fc.boolean(),
      })
      .map(({ p, addr, shift, aset, odd }) => ({
        k: 'insert' as const,
        tag: tagOf(p),
        addr,
        shift,
        aset,
        level: odd ? 1 + (shift % 3) : (LEVEL_OF[shift] as number),
      })),
  },
  {
    weight: 3,
    arbitrary: fc.record({ p: arbTagParts, addr: arbAddr, g: fc.boolean() }).map(({ p, addr, g }) => ({
      k: 'lookup' as const,
      tag: tagOf(p),
      addr,
      globalTag: g && !p.s2Only ? tagOf({ ...p, asid: -1 }) : -1,
    })),
  },
  { weight: 1, arbitrary: fc.constant({ k: 'all' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constantFrom('nhAll' as const, 's12' as const),
      vmid: fc.constantFrom(0, 1, 0x101),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('nhAsid' as const),
      vmid: fc.constantFrom(0, 1),
      asid: fc.constantFrom(0, 1, 0x101),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constantFrom('nsnh' as const, 'el2All' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('el2Asid' as const), asid: fc.constantFrom(0, 1, 0x101) }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      k: fc.constantFrom('nhVa' as const, 'nhVaa' as const, 'el2Va' as const, 'el2Vaa' as const),
      r: arbOperand,
    }),
  },
  {
    weight: 3,
    arbitrary: arbOperand.map((o) => ({
      k: 's2Ipa' as const,
      r: { vmid: o.vmid, ipa: o.addr, leaf: o.leaf, tg: o.tg, num: o.num, scale: o.scale, ttl: o.ttl },
    })),
  },
  {
    weight: 4,
    arbitrary: fc
      .record({
        regime: fc.constantFrom<TlbRegime>(0, 1),
        op: fc.oneof(
          fc.record({
            kind: fc.constant('vae1is' as const),
            asid: fc.constantFrom(0, 1, 0x101),
            va: arbAddr,
            leaf: fc.boolean(),
          }),
          fc
            .record({
              asid: fc.constantFrom(0, 1, 0x101),
              start: arbAddr,
              pages: fc.integer({ min: -1, max: 600 }),
            })
            .map(({ asid, start, pages }) => ({
              kind: 'rvae1is' as const,
              asid,
              start: start - (start % 4096),
              end: start - (start % 4096) + pages * 4096,
              stride: 4096,
              leaf: false,
            })),
          fc.record({ kind: fc.constant('aside1is' as const), asid: fc.constantFrom(0, 1, 0x101) }),
          fc.constant({ kind: 'vmalle1is' as const }),
        ),
      })
      .map(({ regime, op }) => ({ k: 'bcast' as const, op: op as TlbiOp, regime })),
  },
);

function view(e: SmmuTlbEntry | RefEntry | undefined): unknown {
  return e === undefined ? undefined : [e.tag, e.inputBase, e.shift, e.level, e.outputBase, e.aset];
}

function apply(t: SmmuTlb | RefTlb, op: Op): unknown {
  const isRef = t instanceof RefTlb;
  switch (op.k) {
    case 'insert':
      t.insert({
        tag: op.tag,
        stage: s2Of(op.tag) ? 's2' : 's1',
        inputAddr: op.addr,
        shift: op.shift,
        level: op.level,
        outputBase: 0x40_0000_0000 + op.addr,
        s1Perm: TLB_PERM_ALL,
        s2Perm: TLB_PERM_ALL,
        dirtyUpdatable: false,
        aset: op.aset,
      });
      return undefined;
    case 'lookup':
      return view(t.lookup(op.tag, op.addr, op.globalTag));
    case 'all':
      return t.invalidateAll();
    case 'nhAll':
      return t.invalidateNhAll(op.vmid);
    case 's12':
      return t.invalidateS12Vmall(op.vmid);
    case 'nhAsid':
      return t.invalidateNhAsid(op.vmid, op.asid);
    case 'nsnh':
      return t.invalidateNsnhAll();
    case 'el2All':
      return t.invalidateEl2All();
    case 'el2Asid':
      return t.invalidateEl2Asid(op.asid);
    case 's2Ipa':
      return t.invalidateS2Ipa(op.r);
    case 'bcast':
      return t.invalidateBroadcast(op.op, op.regime);
    default: {
      const regime = op.k === 'el2Va' || op.k === 'el2Vaa' ? 1 : 0;
      const vmid = regime === 1 ? -1 : (op.r.vmid ?? 0);
      const asid = op.k === 'nhVa' || op.k === 'el2Va' ? (op.r.asid ?? 0) : -1;
      if (isRef) return t.invalidateVa(regime, vmid, asid, op.r);
      const m = {
        nhVa: t.invalidateNhVa,
        nhVaa: t.invalidateNhVaa,
        el2Va: t.invalidateEl2Va,
        el2Vaa: t.invalidateEl2Vaa,
      }[op.k];
      return m.call(t, op.r);
    }
  }
}

interface Cfg {
  capacity: number;
  replacement: 'lru' | 'random' | 'flush-all';
  seed: number;
  narrow: boolean;
}

/** Run `ops` on both TLBs, comparing after every step, then evict everything one by one. */
function runBoth(cfg: Cfg, ops: readonly Op[]): void {
  const tlb = new SmmuTlb({
    capacity: cfg.capacity,
    replacement: cfg.replacement,
    seed: cfg.seed,
    asid16: !cfg.narrow,
    vmid16: !cfg.narrow,
  });
  const mask = cfg.narrow ? 0xff : 0xffff;
  const ref = new RefTlb(cfg.capacity, cfg.replacement, cfg.seed, mask, mask);
  for (const op of ops) {
    expect(apply(tlb, op)).toEqual(apply(ref, op));
    expect(tlb.entries().map(view)).toEqual(ref.list.map(view));
    expect(tlb.size).toBe(ref.slots.length);
    expect(tlb.stats).toEqual(ref.stats);
  }
  // Random replacement order depends on the slot array: evict everything one by one.
  for (let i = 0; i < cfg.capacity + 1; i++) {
    const op: Op = {
      k: 'insert',
      tag: tlbTag(1, true, 0, 7, 0),
      addr: i * 2 ** 32,
      shift: 12,
      aset: false,
      level: 3,
    };
    apply(tlb, op);
    apply(ref, op);
    expect(tlb.entries().map(view)).toEqual(ref.list.map(view));
  }
}

describe('SmmuTlb against a linear-scan reference', () => {
  it('agrees on entries, recency order, lookups and counters over random operation sequences', () => {
    fc.assert(
      fc.property(
        fc.record({
          capacity: fc.constantFrom(1, 4, 16, 16, 64, 256),
          replacement: fc.constantFrom('lru' as const, 'random' as const, 'flush-all' as const),
          seed: fc.integer({ min: 1, max: 1000 }),
          narrow: fc.boolean(),
        }),
        fc.array(arbOp, { maxLength: 150 }),
        (cfg, ops) => runBoth(cfg, ops),
      ),
      { numRuns: 200 },
    );
  });

  it('removes several entries of one page in the same slot order as the reference (random replacement)', () => {
    const ins = (asid: number, addr: number): Op => ({
      k: 'insert',
      tag: tlbTag(0, false, 0, 0, asid),
      addr,
      shift: 12,
      aset: false,
      level: 3,
    });
    const r: TlbiVaRange = { addr: 0x5000, leaf: false, tg: 0, num: 0, scale: 0, ttl: 0 };
    const ops: Op[] = [ins(0, 0x5000), ins(1, 0x5000), ins(3, 0x6000), ins(4, 0x7000)];
    ops.push({ k: 'nhVaa', r });
    for (let seed = 1; seed <= 40; seed++)
      runBoth({ capacity: 8, replacement: 'random', seed, narrow: false }, ops);
  });
});
