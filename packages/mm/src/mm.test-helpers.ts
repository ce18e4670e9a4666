// Test helpers: an independent page-table walker (not io-pgtable's), notifier and TLB recorders,
// and a refcount/mapcount invariant check.

import type { Machine } from './machine.js';
import type { Mm } from './mm.js';
import type { MmuNotifier } from './mmu-notifier.js';
import type { PhysicalMemory } from './physical-memory.js';
import type { Process } from './process.js';
import type { TlbiOp } from './tlb-broadcast.js';

const TWO32 = 2 ** 32;

/** What the hand-written walker found for a VA. */
export interface HandWalk {
  /** PA of the byte. */
  pa: number;
  /** Leaf size in bytes. */
  size: number;
  /** EL0/CPL3 may read. */
  userRead: boolean;
  /** A user write would succeed right now without a fault (arm64: AP[2] clear, or DBM set). */
  userWrite: boolean;
  /** Dirty per hardware bits (arm64: DBM && !AP[2] or SW dirty bit 55; x86: D). */
  dirty: boolean;
  /** Access flag. */
  young: boolean;
  /** Executable at EL0 / user. */
  exec: boolean;
  /** Raw leaf descriptor halves. */
  lo: number;
  /** High half. */
  hi: number;
}

/**
 * Walk the CPU page tables by hand from `root`, reading descriptors from physical memory.
 * arm64: 4 levels of 512 entries (shifts 39/30/21/12), table = 0b11 at L0-L2, block = 0b01 at
 * L1/L2, page = 0b11 at L3, OA bits 47:12. x86-64: 4 levels, P bit 0, PS bit 7 at the PMD.
 */
export function handWalk(
  mem: PhysicalMemory,
  arch: 'arm64' | 'x86_64',
  root: number,
  va: number,
): HandWalk | null {
  let table = root;
  const shifts = [39, 30, 21, 12];
  for (let level = 0; level < 4; level++) {
    const shift = shifts[level] as number;
    const idx = Math.floor(va / 2 ** shift) % 512;
    const ea = table + idx * 8;
    const lo = mem.read64Lo(ea);
    const hi = mem.read64Hi(ea);
    const size = 2 ** shift;
    if (arch === 'arm64') {
      const type = lo & 3;
      const addr = (hi & 0xffff) * TWO32 + (lo >>> 12) * 4096;
      if (level < 3 && type === 3) {
        table = addr;
        continue;
      }
      const leaf = (level === 3 && type === 3) || ((level === 1 || level === 2) && type === 1);
      if (!leaf) return null;
      const base = Math.floor(addr / size) * size;
      const ap1 = (lo >>> 6) & 1;
      const ap2 = (lo >>> 7) & 1;
      const dbm = (hi >>> 19) & 1;
      return {
        pa: base + (va % size),
        size,
        userRead: ap1 === 1,
        userWrite: ap1 === 1 && (ap2 === 0 || dbm === 1),
        dirty: (dbm === 1 && ap2 === 0) || ((hi >>> 23) & 1) === 1,
        young: ((lo >>> 10) & 1) === 1,
        exec: ((hi >>> 22) & 1) === 0,
        lo,
        hi,
      };
    }
    if ((lo & 1) === 0) return null;
    const addr = (hi & 0xfffff) * TWO32 + (lo >>> 12) * 4096;
    if (level < 3 && (lo & 0x80) === 0) {
      table = addr;
      continue;
    }
    const base = Math.floor(addr / size) * size;
    return {
      pa: base + (va % size),
      size,
      userRead: (lo & 4) !== 0,
      userWrite: (lo & 4) !== 0 && (lo & 2) !== 0,
      dirty: (lo & 0x40) !== 0,
      young: (lo & 0x20) !== 0,
      exec: hi >>> 31 === 0,
      lo,
      hi,
    };
  }
  return null;
}

/** One recorded notifier or TLB event. */
export type Rec =
  | { k: 'start' | 'end'; event: number; start: number; end: number }
  | { k: 'secondary'; start: number; end: number }
  | { k: 'release' }
  | { k: 'tlbi'; op: TlbiOp };

/** A subscription that records every callback into `log`. */
export function recorder(log: Rec[]): MmuNotifier {
  return {
    ops: {
      release: () => void log.push({ k: 'release' }),
      invalidateRangeStart: (_s, r) =>
        void log.push({ k: 'start', event: r.event, start: r.start, end: r.end }),
      invalidateRangeEnd: (_s, r) => void log.push({ k: 'end', event: r.event, start: r.start, end: r.end }),
      archInvalidateSecondaryTlbs: (_s, _mm, start, end) => void log.push({ k: 'secondary', start, end }),
    },
  };
}

/** Record TLBIs of the machine into `log`. */
export function recordTlbi(machine: Machine, log: Rec[]): () => void {
  return machine.tlb.subscribe((op) => void log.push({ k: 'tlbi', op }));
}

/**
 * Check that every mapped page's refcount equals its PTE mappings + pins + shared-object reference,
 * and that the machine's map counts match the page tables. Returns a list of problems.
 */
export function checkRefcounts(
  machine: Machine,
  procs: readonly Process[],
  pins: ReadonlyMap<number, number>,
): string[] {
  const problems: string[] = [];
  const maps = new Map<number, number>();
  const objRefs = new Map<number, number>();
  const seenObj = new Set<object>();
  const mms = new Set<Mm>();
  for (const p of procs) if (!p.exited) mms.add(p.mm);
  for (const mm of mms) {
    mm.pgtable.forEachLeaf(0, mm.taskSize, (_va, huge, words, wi) => {
      const lo = words[wi] as number;
      const hi = words[wi + 1] as number;
      const st = decodeAny(mm, lo, hi, huge);
      maps.set(st, (maps.get(st) ?? 0) + 1);
    });
    for (const v of mm.vmas) {
      if (v.shared !== null && !seenObj.has(v.shared)) {
        seenObj.add(v.shared);
        for (const pa of v.shared.pages.values()) objRefs.set(pa, (objRefs.get(pa) ?? 0) + 1);
      }
    }
  }
  const heads = new Set<number>([...maps.keys(), ...objRefs.keys(), ...pins.keys()]);
  for (const pa of heads) {
    const expected = (maps.get(pa) ?? 0) + (objRefs.get(pa) ?? 0) + (pins.get(pa) ?? 0);
    const got = machine.memory.pageRefcount(pa);
    if (got !== expected) problems.push(`refcount of ${pa.toString(16)}: ${got} != ${expected}`);
    if (machine.pageMapcount(pa) !== (maps.get(pa) ?? 0))
      problems.push(`mapcount of ${pa.toString(16)}: ${machine.pageMapcount(pa)} != ${maps.get(pa) ?? 0}`);
    if (machine.memory.pinCount(pa) !== (pins.get(pa) ?? 0)) problems.push(`pincount of ${pa.toString(16)}`);
  }
  return problems;
}

function decodeAny(mm: Mm, lo: number, hi: number, huge: boolean): number {
  const mask = huge ? 0xffe00000 : 0xfffff000;
  const hiMask = mm.arch === 'arm64' ? 0xffff : 0xfffff;
  return (hi & hiMask) * TWO32 + ((lo & mask) >>> 0);
}
