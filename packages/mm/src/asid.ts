/**
 * arm64 ASID allocation (arch/arm64/mm/context.c), including the pinning of ASIDs that are shared
 * with devices (`arm64_mm_context_get` / `arm64_mm_context_put`).
 */

import { ErrnoError } from '@iommu-ts/base';
import type { TlbBroadcast } from './tlb-broadcast.js';

/** Options of {@link AsidAllocator}. */
export interface AsidAllocatorOptions {
  /** ASID width (ID_AA64MMFR0_EL1.ASIDBits: 16 when implemented, else 8). Default 16. */
  readonly bits?: 8 | 16;
  /** Number of CPUs (`num_possible_cpus()`), ≥ 1. Default 1. */
  readonly cpus?: number;
  /** Where the TLB flush of a rollover is published (as `vmalle1is`). Optional. */
  readonly broadcast?: TlbBroadcast;
}

/** A snapshot of one mm's ASID context ({@link AsidAllocator.contextOf}). */
export interface AsidContextInfo {
  /** `mm->context.id`: `generation | asid` (0 = never allocated). */
  readonly id: number;
  /** The generation part of `id` (a multiple of 2^bits; 0 = never allocated). */
  readonly generation: number;
  /** The ASID part of `id` (0 = none). */
  readonly asid: number;
  /** Pin reference count (`mm->context.pinned`). */
  readonly pinned: number;
}

/** Per-mm state (`mm_context_t`: `id`, `pinned`). */
class AsidContext {
  id = 0;
  pinned = 0;
}

/**
 * The arm64 ASID allocator: lazy per-mm ASIDs with generations, per-CPU active and reserved ASIDs,
 * rollover with a TLB flush, and pinning.
 *
 * @remarks
 * Mirrors arch/arm64/mm/context.c without KPTI (every ASID is usable, not only even ones). A context
 * id is `generation | asid` with `generation` a multiple of 2^bits starting at 2^bits (a `number`,
 * exact for 2^37 rollovers with 16-bit ASIDs). ASID 0 is reserved (the kernel's reserved TTBR0
 * context) and never handed out.
 *
 * - {@link AsidAllocator.checkAndSwitchContext} is `check_and_switch_context`: an mm whose id is of the
 *   current generation keeps it; a stale one gets its old ASID back when that ASID is still free in the
 *   new generation (or reserved or pinned), else the lowest free ASID after the last allocated one;
 *   when none is free the generation is bumped and the map is rebuilt (`flush_context`): every ASID
 *   becomes free except the pinned ones and the one active (or, if none is, the one reserved) on each
 *   CPU; a `vmalle1is` is published on the broadcast channel and every CPU is marked as owing a local
 *   flush ({@link AsidAllocator.flushPending}, consumed by its next switch). Linux flushes lazily with a
 *   local `TLBI VMALLE1` on each CPU; publishing one broadcast flush at rollover is the conservative
 *   equivalent for observers such as an SMMU with BTM.
 * - {@link AsidAllocator.pin} / {@link AsidAllocator.unpin} are `arm64_mm_context_get` / `_put`: a pinned
 *   ASID survives every rollover and is never given to another mm. At most
 *   {@link AsidAllocator.maxPinned} = 2^bits − cpus − 2 ASIDs may be pinned at once.
 * - ASIDs are not freed when an mm goes away ({@link AsidAllocator.release}); as in Linux they are
 *   reclaimed by the next rollover, whose flush removes any stale entries tagged with them.
 */
export class AsidAllocator {
  /** ASID width in bits. */
  readonly bits: 8 | 16;
  /** Number of CPUs. */
  readonly cpus: number;
  /** Most ASIDs that may be pinned at once (`max_pinned_asids`). */
  readonly maxPinned: number;
  private readonly numAsids: number;
  private readonly broadcast: TlbBroadcast | undefined;
  private generation: number;
  private readonly map: Uint8Array;
  private readonly pinnedMap: Uint8Array;
  private nrPinned = 0;
  private curIdx = 1;
  private readonly active: Float64Array;
  private readonly reserved: Float64Array;
  private readonly flushPendingMask: Uint8Array;
  private readonly contexts = new WeakMap<object, AsidContext>();
  private nRollovers = 0;

  /** @param options - ASID bits, CPU count, broadcast channel */
  constructor(options: AsidAllocatorOptions = {}) {
    const bits = options.bits ?? 16;
    if (bits !== 8 && bits !== 16)
      throw new ErrnoError('EINVAL', `ASID bits must be 8 or 16, not ${String(bits)}`);
    const cpus = options.cpus ?? 1;
    if (!Number.isInteger(cpus) || cpus < 1) throw new ErrnoError('EINVAL', `bad CPU count ${cpus}`);
    this.bits = bits;
    this.cpus = cpus;
    this.numAsids = 2 ** bits;
    this.maxPinned = Math.max(0, this.numAsids - cpus - 2);
    this.broadcast = options.broadcast;
    this.generation = this.numAsids;
    this.map = new Uint8Array(this.numAsids);
    this.pinnedMap = new Uint8Array(this.numAsids);
    this.map[0] = 1;
    this.active = new Float64Array(cpus);
    this.reserved = new Float64Array(cpus);
    this.flushPendingMask = new Uint8Array(cpus);
  }

  /** The current generation (`asid_generation`), a multiple of 2^bits. */
  get currentGeneration(): number {
    return this.generation;
  }

  /** How many rollovers have happened since construction. */
  get rollovers(): number {
    return this.nRollovers;
  }

  /** Number of ASIDs currently pinned (`nr_pinned_asids`). */
  get pinnedCount(): number {
    return this.nrPinned;
  }

  private ctx(mm: object): AsidContext {
    let c = this.contexts.get(mm);
    if (c === undefined) {
      c = new AsidContext();
      this.contexts.set(mm, c);
    }
    return c;
  }

  private checkCpu(cpu: number): void {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.cpus)
      throw new ErrnoError('EINVAL', `no CPU ${cpu}`);
  }

  private genMatch(id: number): boolean {
    return id !== 0 && id - (id % this.numAsids) === this.generation;
  }

  /** `flush_context`: rebuild the map for a new generation. */
  private flushContext(): void {
    this.map.set(this.pinnedMap);
    this.map[0] = 1;
    for (let cpu = 0; cpu < this.cpus; cpu++) {
      let id = this.active[cpu] ?? 0;
      this.active[cpu] = 0;
      if (id === 0) id = this.reserved[cpu] ?? 0;
      this.map[id % this.numAsids] = 1;
      this.reserved[cpu] = id;
    }
    this.flushPendingMask.fill(1);
    this.nRollovers++;
    this.broadcast?.flushTlbAll();
  }

  /** `check_update_reserved_asid`: repoint reserved copies of `id` to `newId`. */
  private updateReserved(id: number, newId: number): boolean {
    let hit = false;
    for (let cpu = 0; cpu < this.cpus; cpu++) {
      if (this.reserved[cpu] === id) {
        hit = true;
        this.reserved[cpu] = newId;
      }
    }
    return hit;
  }

  private findFree(from: number): number {
    for (let a = from; a < this.numAsids; a++) if (this.map[a] === 0) return a;
    return this.numAsids;
  }

  /** `new_context`: an id of the current generation for `c`. */
  private newContext(c: AsidContext): number {
    const id = c.id;
    if (id !== 0) {
      const asid = id % this.numAsids;
      const newId = this.generation + asid;
      if (this.updateReserved(id, newId)) return newId;
      if (this.pinnedMap[asid] === 1) return newId;
      if (this.map[asid] === 0) {
        this.map[asid] = 1;
        return newId;
      }
    }
    let asid = this.findFree(this.curIdx);
    if (asid === this.numAsids) {
      this.generation += this.numAsids;
      this.flushContext();
      asid = this.findFree(1);
    }
    this.map[asid] = 1;
    this.curIdx = asid;
    return this.generation + asid;
  }

  /**
   * Make `mm` current on `cpu` (`check_and_switch_context`), allocating or refreshing its ASID.
   *
   * @param mm - the address space (any object; its identity keys the context)
   * @param cpu - CPU number in `[0, cpus)`
   * @returns the ASID the CPU now runs `mm` with (1 … 2^bits − 1)
   * @throws ErrnoError `EINVAL` for a bad CPU number
   */
  checkAndSwitchContext(mm: object, cpu: number): number {
    this.checkCpu(cpu);
    const c = this.ctx(mm);
    if (!this.genMatch(c.id)) c.id = this.newContext(c);
    if (this.flushPendingMask[cpu] === 1) this.flushPendingMask[cpu] = 0;
    this.active[cpu] = c.id;
    return c.id % this.numAsids;
  }

  /**
   * Whether `cpu` still owes the local TLB flush of the last rollover (`tlb_flush_pending`); cleared by
   * its next {@link AsidAllocator.checkAndSwitchContext}.
   * @param cpu - CPU number
   */
  flushPending(cpu: number): boolean {
    this.checkCpu(cpu);
    return this.flushPendingMask[cpu] === 1;
  }

  /**
   * The ASID `cpu` currently runs with (`active_asids`), 0 when none (after a rollover, until its next switch).
   * @param cpu - CPU number
   */
  activeAsid(cpu: number): number {
    this.checkCpu(cpu);
    return (this.active[cpu] ?? 0) % this.numAsids;
  }

  /**
   * Pin the ASID of `mm` for sharing with a device (`arm64_mm_context_get`): it will not change or be
   * reused across rollovers until every pin is dropped. Refcounted. An mm without a current ASID gets one.
   *
   * @param mm - the address space
   * @returns the pinned ASID, or 0 when {@link AsidAllocator.maxPinned} ASIDs are already pinned
   */
  pin(mm: object): number {
    const c = this.ctx(mm);
    if (c.pinned > 0) {
      c.pinned++;
      return c.id % this.numAsids;
    }
    if (this.nrPinned >= this.maxPinned) return 0;
    if (!this.genMatch(c.id)) c.id = this.newContext(c);
    this.nrPinned++;
    this.pinnedMap[c.id % this.numAsids] = 1;
    c.pinned = 1;
    return c.id % this.numAsids;
  }

  /**
   * Drop one pin of `mm` (`arm64_mm_context_put`); the last one makes the ASID reclaimable at the
   * next rollover.
   * @param mm - the address space
   * @throws ErrnoError `EINVAL` when `mm` is not pinned
   */
  unpin(mm: object): void {
    const c = this.contexts.get(mm);
    if (c === undefined || c.pinned === 0)
      throw new ErrnoError('EINVAL', 'unpin of an mm whose ASID is not pinned');
    c.pinned--;
    if (c.pinned === 0) {
      this.pinnedMap[c.id % this.numAsids] = 0;
      this.nrPinned--;
    }
  }

  /**
   * The ASID `mm` last ran with, or 0 when it never got one. It may be of an old generation (then
   * the next switch may change it); a pinned ASID is always current.
   * @param mm - the address space
   */
  asidOf(mm: object): number {
    const c = this.contexts.get(mm);
    return c === undefined ? 0 : c.id % this.numAsids;
  }

  /**
   * A snapshot of the context of `mm`.
   * @param mm - the address space
   */
  contextOf(mm: object): AsidContextInfo {
    const c = this.contexts.get(mm);
    if (c === undefined) return { id: 0, generation: 0, asid: 0, pinned: 0 };
    const asid = c.id % this.numAsids;
    return { id: c.id, generation: c.id - asid, asid, pinned: c.pinned };
  }

  /**
   * Forget `mm` (its mm_struct is freed). Its ASID is not returned to the map at once: as in Linux it
   * is reclaimed by the next rollover, which flushes every TLB entry still tagged with it.
   * @param mm - the address space
   * @throws ErrnoError `EBUSY` when the ASID of `mm` is still pinned
   */
  release(mm: object): void {
    const c = this.contexts.get(mm);
    if (c === undefined) return;
    if (c.pinned > 0) throw new ErrnoError('EBUSY', 'release of an mm whose ASID is pinned');
    this.contexts.delete(mm);
  }
}
