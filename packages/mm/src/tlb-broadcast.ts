/**
 * The machine-wide broadcast of CPU TLB maintenance (arch/arm64/include/asm/tlbflush.h).
 *
 * @remarks
 * Every inner-shareable TLBI that the CPUs issue for an arm64 mm is published on a
 * {@link TlbBroadcast}. An SMMUv3 model that implements broadcast TLB maintenance (IDR0.BTM, with a
 * context descriptor whose ASET = 0) subscribes and drops the matching entries of its own TLB, as the
 * distributed virtual memory (DVM) messages of an inner-shareable TLBI reach an SMMU on real hardware.
 */

import { PAGE_SIZE } from './page.js';

/**
 * One broadcast TLB invalidation, named after the arm64 instruction that issues it.
 *
 * @remarks
 * Virtual addresses are byte addresses as `number`s (user VAs are below 2^48); ASIDs are the 8- or
 * 16-bit numbers of the TLBI operand. The stage is always stage 1 at EL1&0 (VMID of the host, which an
 * SMMU sees as VMID 0 for stage-1 contexts).
 *
 * - `vae1is`: `TLBI VAE1IS` (or `VALE1IS` when `leaf`), one address: every entry of `asid` (and every
 *   global entry) that translates `va`. `leaf` = only last-level entries need to go (walk caches may stay).
 * - `rvae1is`: `TLBI RVAE1IS` / `RVALE1IS` (FEAT_TLBIRANGE), entries of `asid` translating any address in
 *   `[start, end)`; `stride` is the granule the range was computed with (bytes; 4096 for base pages).
 * - `aside1is`: `TLBI ASIDE1IS`, every non-global entry tagged with `asid`.
 * - `vmalle1is`: `TLBI VMALLE1IS`, every stage-1 EL1&0 entry of every ASID.
 */
export type TlbiOp =
  | { readonly kind: 'vae1is'; readonly asid: number; readonly va: number; readonly leaf: boolean }
  | {
      readonly kind: 'rvae1is';
      readonly asid: number;
      readonly start: number;
      readonly end: number;
      readonly stride: number;
      readonly leaf: boolean;
    }
  | { readonly kind: 'aside1is'; readonly asid: number }
  | { readonly kind: 'vmalle1is' };

/** A subscriber of a {@link TlbBroadcast}: called synchronously for every published {@link TlbiOp}. */
export type TlbiListener = (op: TlbiOp) => void;

/**
 * Above this many pages a range flush without FEAT_TLBIRANGE becomes a whole-ASID flush
 * (`MAX_DVM_OPS` = `PTRS_PER_PTE`, 512 with 4 KiB pages, in arch/arm64/include/asm/tlbflush.h).
 */
export const MAX_DVM_OPS = 512;

/**
 * Largest range, in pages, that one series of range TLBIs may cover before Linux falls back to a
 * whole-ASID flush (`MAX_TLBI_RANGE_PAGES` = `__TLBI_RANGE_PAGES(31, 3)` = 32 · 2^16 = 2,097,152 pages
 * is the kernel's bound; the figure here is that value).
 */
export const MAX_TLBI_RANGE_PAGES = 32 * 2 ** 16;

/** Options of {@link TlbBroadcast.flushTlbRange}. */
export interface FlushTlbRangeOptions {
  /** Granule of the range in bytes (`stride`): 4096 for base pages, 2 MiB for PMD mappings. Default {@link PAGE_SIZE}. */
  readonly stride?: number;
  /** Only last-level entries changed (`last_level`: `VALE1IS` rather than `VAE1IS`). Default `false`. */
  readonly leaf?: boolean;
  /** The CPUs implement FEAT_TLBIRANGE (`system_supports_tlb_range()`). Default `false`. */
  readonly rangeSupported?: boolean;
}

/** Counters of a {@link TlbBroadcast}: how many operations of each kind were published. */
export interface TlbBroadcastStats {
  /** `vae1is` operations published (one per page). */
  readonly vae1is: number;
  /** `rvae1is` operations published. */
  readonly rvae1is: number;
  /** `aside1is` operations published. */
  readonly aside1is: number;
  /** `vmalle1is` operations published. */
  readonly vmalle1is: number;
}

/**
 * The channel on which inner-shareable TLB maintenance is broadcast to every observer of the
 * machine (CPUs are implicit; SMMUs with BTM subscribe).
 *
 * @remarks
 * Delivery is synchronous, in subscription order; a listener added or removed while an operation is
 * being delivered takes effect from the next operation. Publishing with no subscriber costs one
 * length check, and the `flush*` helpers build no objects then; the counters in
 * {@link TlbBroadcast.stats} are still kept.
 */
export class TlbBroadcast {
  private listeners: readonly TlbiListener[] = [];
  private nVae = 0;
  private nRvae = 0;
  private nAside = 0;
  private nVmall = 0;

  /** Whether anyone listens; publishers may skip building operations when `false`. */
  get hasSubscribers(): boolean {
    return this.listeners.length !== 0;
  }

  /**
   * Listen to every operation published from now on.
   * @param listener - called synchronously with each {@link TlbiOp}
   * @returns a function that unsubscribes (idempotent)
   */
  subscribe(listener: TlbiListener): () => void {
    this.listeners = [...this.listeners, listener];
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners = [...this.listeners.slice(0, i), ...this.listeners.slice(i + 1)];
    };
  }

  /**
   * Broadcast one operation to every subscriber (a `TLBI ...IS` followed by `DSB ISH`: when this
   * returns, every subscriber has processed it).
   * @param op - the operation
   */
  publish(op: TlbiOp): void {
    switch (op.kind) {
      case 'vae1is':
        this.nVae++;
        break;
      case 'rvae1is':
        this.nRvae++;
        break;
      case 'aside1is':
        this.nAside++;
        break;
      case 'vmalle1is':
        this.nVmall++;
        break;
    }
    const ls = this.listeners;
    for (let i = 0; i < ls.length; i++) (ls[i] as TlbiListener)(op);
  }

  /**
   * Invalidate one user page of an address space (`TLBI VAE1IS`, or `VALE1IS` with `leaf`, which is
   * what Linux's `flush_tlb_page` issues).
   * @param asid - the mm's ASID
   * @param va - any address in the page (bytes)
   * @param leaf - only the last-level entry changed (`VALE1IS`); default `false`
   */
  flushTlbPage(asid: number, va: number, leaf = false): void {
    this.nVae++;
    const ls = this.listeners;
    if (ls.length === 0) return;
    const op: TlbiOp = { kind: 'vae1is', asid, va: Math.floor(va / PAGE_SIZE) * PAGE_SIZE, leaf };
    for (let i = 0; i < ls.length; i++) (ls[i] as TlbiListener)(op);
  }

  /**
   * Invalidate a whole address space (`flush_tlb_mm`: `TLBI ASIDE1IS`).
   * @param asid - the mm's ASID
   */
  flushTlbMm(asid: number): void {
    this.nAside++;
    const ls = this.listeners;
    if (ls.length === 0) return;
    const op: TlbiOp = { kind: 'aside1is', asid };
    for (let i = 0; i < ls.length; i++) (ls[i] as TlbiListener)(op);
  }

  /** Invalidate every EL1&0 stage-1 entry of every ASID (`flush_tlb_all`: `TLBI VMALLE1IS`). */
  flushTlbAll(): void {
    this.nVmall++;
    const ls = this.listeners;
    if (ls.length === 0) return;
    const op: TlbiOp = { kind: 'vmalle1is' };
    for (let i = 0; i < ls.length; i++) (ls[i] as TlbiListener)(op);
  }

  /**
   * Invalidate `[start, end)` of an address space as `__flush_tlb_range` does.
   *
   * @remarks
   * `start` is rounded down and `end` up to `stride`. Then, as in arch/arm64/include/asm/tlbflush.h:
   * without FEAT_TLBIRANGE, a range of {@link MAX_DVM_OPS} strides or more (or, with it, more than
   * {@link MAX_TLBI_RANGE_PAGES} pages) becomes one `aside1is`; otherwise without FEAT_TLBIRANGE one
   * `vae1is` per stride is published, lowest address first; with FEAT_TLBIRANGE a single-stride range is
   * one `vae1is` and a longer one is published as one `rvae1is` covering the whole range (the kernel
   * splits it into several `RVAE1IS` of (scale, num) encodings plus a trailing `VAE1IS` for an odd
   * page; the set of invalidated addresses is the same). An empty range publishes nothing.
   *
   * @param asid - the mm's ASID
   * @param start - first byte (VA)
   * @param end - one past the last byte (VA), ≥ `start`
   * @param options - stride, leaf, FEAT_TLBIRANGE
   */
  flushTlbRange(asid: number, start: number, end: number, options: FlushTlbRangeOptions = {}): void {
    const stride = options.stride ?? PAGE_SIZE;
    const leaf = options.leaf ?? false;
    const range = options.rangeSupported ?? false;
    const s = Math.floor(start / stride) * stride;
    const e = Math.ceil(end / stride) * stride;
    if (e <= s) return;
    const n = (e - s) / stride;
    const pages = (e - s) / PAGE_SIZE;
    if ((!range && n >= MAX_DVM_OPS) || pages > MAX_TLBI_RANGE_PAGES) {
      this.flushTlbMm(asid);
      return;
    }
    if (range && n > 1) {
      this.nRvae++;
      const ls = this.listeners;
      if (ls.length === 0) return;
      const op: TlbiOp = { kind: 'rvae1is', asid, start: s, end: e, stride, leaf };
      for (let i = 0; i < ls.length; i++) (ls[i] as TlbiListener)(op);
      return;
    }
    this.nVae += n;
    const ls = this.listeners;
    if (ls.length === 0) return;
    for (let va = s; va < e; va += stride) {
      const op: TlbiOp = { kind: 'vae1is', asid, va, leaf };
      for (let i = 0; i < ls.length; i++) (ls[i] as TlbiListener)(op);
    }
  }

  /** How many operations of each kind were published since construction (with or without subscribers). */
  stats(): TlbBroadcastStats {
    return { vae1is: this.nVae, rvae1is: this.nRvae, aside1is: this.nAside, vmalle1is: this.nVmall };
  }
}
