/**
 * Test harness shared by the x86-64 and VT-d second-stage format tests (not exported from the
 * package): builds a format instance over an in-memory arena, records TLB callbacks, and wraps
 * the generic walker with byte-address helpers.
 *
 * @internal
 */

import type { IoPgtableCfg } from '../cfg.js';
import type { IoPgtableFormat, PtFormatInstance } from '../format.js';
import type { IommuFlushOps, IommuIotlbGather } from '../gather.js';
import { allocIoPgtableOps, type IoAddr, type IoPgtableOps } from '../io-pgtable.js';
import { InMemoryPageTableMemory } from '../memory-arena.js';
import type { PtWalker } from '../walker.js';

/** One recorded TLB callback. */
export type X86TlbEvent =
  | { readonly op: 'flushAll' }
  | { readonly op: 'flushWalk'; readonly iova: number; readonly size: number; readonly granule: number }
  | { readonly op: 'addPage'; readonly iova: number; readonly granule: number; readonly gather: boolean };

/** A configured table plus everything a test looks at. */
export interface X86Harness {
  /** The configuration after setup (narrowed, root written). */
  readonly cfg: IoPgtableCfg;
  /** The configured format. */
  readonly fmt: PtFormatInstance;
  /** The arena. */
  readonly mem: InMemoryPageTableMemory;
  /** The ops from `allocIoPgtableOps`. */
  readonly ops: IoPgtableOps;
  /** The walker over the table (`ops.walker`). */
  readonly walker: PtWalker;
  /** TLB callbacks seen, in order. */
  readonly tlb: X86TlbEvent[];
  /** The cookie given to the walker. */
  readonly cookie: object;
}

/**
 * Build a table of `format` for `over` (defaults: ias 48, oas 52, 4K|2M|1G, coherent).
 * @param format - the format
 * @param over - cfg fields to override
 */
export function x86Harness(format: IoPgtableFormat, over: Partial<IoPgtableCfg> = {}): X86Harness {
  const tlb: X86TlbEvent[] = [];
  const cookie = { name: 'cookie' };
  const flushOps: IommuFlushOps = {
    tlbFlushAll(c) {
      if (c !== cookie) throw new Error('wrong cookie');
      tlb.push({ op: 'flushAll' });
    },
    tlbFlushWalk(iova, size, granule, c) {
      if (c !== cookie) throw new Error('wrong cookie');
      tlb.push({ op: 'flushWalk', iova, size, granule });
    },
    tlbAddPage(gather: IommuIotlbGather | null, iova, granule, c) {
      if (c !== cookie) throw new Error('wrong cookie');
      tlb.push({ op: 'addPage', iova, granule, gather: gather !== null });
    },
  };
  const mem = new InMemoryPageTableMemory();
  const cfg: IoPgtableCfg = {
    quirks: 0,
    pgsizeBitmap: 0x4020_1000n,
    ias: 48,
    oas: 52,
    coherentWalk: true,
    tlb: flushOps,
    memory: mem,
    ...over,
  };
  const ops = allocIoPgtableOps(format, cfg, cookie);
  if (ops === null) throw new Error('allocIoPgtableOps failed');
  return { cfg, fmt: ops.instance, mem, ops, walker: ops.walker, tlb, cookie };
}

/**
 * The 64-bit value of the entry that translates `iova` at `depth` (`pgtableWalk`).
 * @param h - the harness
 * @param iova - the IOVA
 * @param depth - level index
 * @returns the descriptor, or undefined if the walk stops above `depth`
 */
export function x86EntryAt(h: X86Harness, iova: IoAddr, depth: number): bigint | undefined {
  return h.ops.pgtableWalk(iova)[depth];
}

/**
 * The errno name a call throws, or `'none'`.
 * @param fn - the call
 */
export function x86ErrnoOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof Error && 'code' in e && typeof e.code === 'string') return e.code;
    throw e;
  }
  return 'none';
}
