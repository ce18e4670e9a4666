/**
 * The machine's RAM: sparse physical memory, the page allocator and `struct page` metadata
 * (mm/page_alloc.c, include/linux/mm.h, include/linux/page_ref.h, mm/gup.c).
 *
 * API changes after the first version (additive only) are listed here.
 */

import { ErrnoError, shouldFail } from '@iommu-ts/base';
import type { PageTableMemory, TableView } from '@iommu-ts/io-pgtable';
import { MAX_PAGE_ORDER, PAGE_SHIFT, PAGE_SIZE } from './page.js';

/** Options of {@link PhysicalMemory}. */
export interface PhysicalMemoryOptions {
  /** RAM size in bytes: a multiple of 4096, at most 16 TiB. Default 64 GiB. */
  readonly size?: number;
  /** Physical address of the first byte of RAM: a multiple of 4096; `base + size` ≤ 2^52. Default `0x4000_0000` (1 GiB). */
  readonly base?: number;
}

/** Options of {@link PhysicalMemory.allocPages}. */
export interface AllocPagesOptions {
  /** Zero the block (`__GFP_ZERO`). Default `true`. */
  readonly zero?: boolean;
}

/** Counters of a {@link PhysicalMemory} ({@link PhysicalMemory.stats}). */
export interface PhysicalMemoryStats {
  /** Pages of RAM (`size / 4096`). */
  readonly totalPages: number;
  /** Pages inside allocated blocks. */
  readonly allocatedPages: number;
  /** Pages in the allocator's free lists (`totalPages − allocatedPages`). */
  readonly freePages: number;
  /** Pages that have host memory behind them (touched by a write since allocation). */
  readonly backedPages: number;
  /** Host bytes of page contents held (`backedPages · 4096`). */
  readonly backedBytes: number;
  /** Approximate host bytes of bookkeeping: sparse directories, per-64-page metadata and backing-pointer chunks, free-list heaps. */
  readonly metadataBytes: number;
  /** Successful {@link PhysicalMemory.allocPages} calls since construction (tables included). */
  readonly allocCount: number;
  /** Blocks returned to the allocator since construction. */
  readonly freeCount: number;
  /** Pages inside blocks whose pin count is non-zero (a pinned order-k block counts 2^k pages). */
  readonly pinnedPages: number;
}

/** Everything known about one page ({@link PhysicalMemory.pageInfo}); cold path. */
export interface PageInfo {
  /** Page-aligned physical address of the page asked about. */
  readonly pa: number;
  /** Whether the page is inside an allocated block. */
  readonly allocated: boolean;
  /** PA of the block's head page (the page itself when free or order 0). */
  readonly head: number;
  /** Order of the allocated block (0 when free). */
  readonly order: number;
  /** Reference count of the block (0 when free), pins included. */
  readonly refcount: number;
  /** Pin count of the block. */
  readonly pincount: number;
  /** Dirty flag of the block. */
  readonly dirty: boolean;
  /** Whether host memory backs the page. */
  readonly backed: boolean;
}

/**
 * An access outside RAM: what a bus abort (external abort, SError, completer abort) is to the
 * hardware models that DMA into {@link PhysicalMemory}.
 *
 * @remarks
 * An `ErrnoError` with code `EFAULT`, plus the faulting address (the first byte of the access that is
 * not RAM), the access size and direction.
 */
export class BusError extends ErrnoError {
  /** The first physical address of the access that lies outside RAM. */
  readonly pa: number;
  /** Size of the access in bytes. */
  readonly size: number;
  /** Whether the access was a write. */
  readonly write: boolean;

  /**
   * @param pa - faulting physical address
   * @param size - access size in bytes
   * @param write - whether the access was a write
   */
  constructor(pa: number, size: number, write: boolean) {
    super(
      'EFAULT',
      `bus error: ${write ? 'write' : 'read'} of ${size} byte(s) at 0x${pa.toString(16)} outside RAM`,
    );
    this.name = 'BusError';
    this.pa = pa;
    this.size = size;
    this.write = write;
  }
}

const CHUNK_SHIFT = 6;
const CHUNK_PAGES = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_PAGES - 1;
const L2_SHIFT = 8;
const L2_SIZE = 1 << L2_SHIFT;
const L2_MASK = L2_SIZE - 1;
const DIR_SHIFT = CHUNK_SHIFT + L2_SHIFT;
const INV_PAGE = 2 ** -PAGE_SHIFT;
/** Head of an allocated block (order in `Chunk.order`). */
const F_ALLOC = 1;
/** Head of a free buddy block (order in `Chunk.order`). */
const F_FREE = 2;
/** Dirty (on an allocated head). */
const F_DIRTY = 4;
/** Rough host cost of one metadata chunk in bytes, for {@link PhysicalMemoryStats.metadataBytes}. */
const CHUNK_COST = CHUNK_PAGES * (1 + 1 + 4 + 4) + 4 * 96 + 64;
/** Rough host cost of one backing chunk in bytes. */
const DATA_CHUNK_COST = 2 * (CHUNK_PAGES * 8 + 32) + CHUNK_PAGES * 4 + 96 + 64;

/** Metadata of 64 consecutive pages (only block heads carry any). */
class Chunk {
  readonly flags = new Uint8Array(CHUNK_PAGES);
  readonly order = new Uint8Array(CHUNK_PAGES);
  readonly ref = new Int32Array(CHUNK_PAGES);
  readonly pin = new Int32Array(CHUNK_PAGES);
  /** Slots with non-zero flags. */
  used = 0;
}

/** Backing of 64 consecutive pages. */
class DataChunk {
  /** Byte view of the buffer backing each page (shared by all pages of a block), or undefined. */
  readonly u8: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(CHUNK_PAGES).fill(undefined);
  /** Word view of the same buffer. */
  readonly u32: (Uint32Array | undefined)[] = new Array<Uint32Array | undefined>(CHUNK_PAGES).fill(undefined);
  /** Byte offset of each page inside its buffer. */
  readonly off = new Int32Array(CHUNK_PAGES);
  /** Slots with backing. */
  backed = 0;
}

function heapPush(h: number[], v: number): void {
  let i = h.length;
  h.push(v);
  while (i > 0) {
    const p = (i - 1) >> 1;
    const pv = h[p] as number;
    if (pv <= v) break;
    h[i] = pv;
    i = p;
  }
  h[i] = v;
}

function heapPop(h: number[]): number {
  const top = h[0] as number;
  const last = h.pop() as number;
  const n = h.length;
  if (n === 0) return top;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    let c = l;
    if (r < n && (h[r] as number) < (h[l] as number)) c = r;
    const cv = h[c] as number;
    if (cv >= last) break;
    h[i] = cv;
    i = c;
  }
  h[i] = last;
  return top;
}

function hex(pa: number): string {
  return `0x${pa.toString(16)}`;
}

/**
 * The machine's RAM: a sparse byte store addressed by physical address, a buddy page allocator and
 * per-page (`struct page` / folio) metadata. Implements io-pgtable's `PageTableMemory` (from `@iommu-ts/io-pgtable`), so page
 * tables written by io-pgtable formats (CPU and IOMMU) live in it and hardware models walk them here.
 *
 * @remarks
 * **Sparseness.** Nothing is stored for untouched memory: page contents are created lazily per page
 * on the first write (or the first {@link PhysicalMemory.tableWords}); an allocated block of order ≥ 1
 * gets one contiguous `ArrayBuffer` for all its pages at its first touch, so a multi-page table is one
 * `Uint32Array`. Reading an unbacked page yields zeros. Freeing a block drops its contents (a later
 * allocation of the same pages reads zeros). Metadata lives in chunks of 64 pages found by arithmetic
 * from the page frame number through a two-level directory; memory use is proportional to the pages
 * allocated or touched, not to `size`.
 *
 * **Allocator** (mm/page_alloc.c): a buddy allocator over naturally aligned blocks of 2^order pages,
 * order 0 … {@link MAX_PAGE_ORDER}; per order a min-heap of free blocks, so the lowest free block of the
 * smallest order that fits is split (deterministic: the same calls give the same addresses). Freed
 * blocks merge with their free buddies. O(log n) per operation.
 *
 * **Metadata** is per block, as a folio's: the head page holds the reference count, pin count, dirty
 * flag and order; every page operation on a tail page acts on its head (`compound_head`, `folio_get`).
 * A fresh block has reference count 1 and pin count 0. {@link PhysicalMemory.pinPage} adds one pin
 * *and* one reference (as `try_grab_folio` does with `FOLL_PIN` on a large folio; small folios add
 * `GUP_PIN_COUNTING_BIAS` = 1024 instead, which this model does not): so {@link PhysicalMemory.pageRefcount}
 * of a pinned block counts each pin once, and the pin count is exact (`folio_maybe_dma_pinned` is
 * `pinCount > 0`).
 *
 * **Access**: little-endian 8/16/32-bit accesses as unsigned numbers, 64-bit as `bigint` (and as two
 * 32-bit halves, without `bigint`); any alignment, across page boundaries. Any byte outside
 * `[base, base + size)` throws {@link BusError} before anything is written. Free (unallocated) RAM can
 * be read and written too (a device may DMA anywhere in RAM); such contents are dropped when the page
 * is allocated with zeroing.
 *
 * Physical addresses are `number`s (exact below 2^53).
 */
export class PhysicalMemory implements PageTableMemory {
  /** Physical address of the first byte of RAM. */
  readonly base: number;
  /** RAM size in bytes. */
  readonly size: number;
  /** RAM size in pages (`size / 4096`). */
  readonly totalPages: number;
  private readonly end: number;
  private readonly basePfn: number;
  private readonly dir: ((Chunk | undefined)[] | undefined)[];
  private readonly ddir: ((DataChunk | undefined)[] | undefined)[];
  private readonly heaps: number[][] = [];
  private readonly nrFree: number[] = [];
  private allocatedPages = 0;
  private backedPages = 0;
  private chunkCount = 0;
  private dataChunkCount = 0;
  private l2Count = 0;
  private allocCount = 0;
  private pinnedPages = 0;
  private freeCount = 0;

  /** @param options - size and base address; see {@link PhysicalMemoryOptions} */
  constructor(options: PhysicalMemoryOptions = {}) {
    const base = options.base ?? 0x4000_0000;
    const size = options.size ?? 64 * 2 ** 30;
    if (!Number.isSafeInteger(base) || base < 0 || base % PAGE_SIZE !== 0)
      throw new ErrnoError('EINVAL', `RAM base ${hex(base)} is not a page-aligned address`);
    if (!Number.isSafeInteger(size) || size <= 0 || size % PAGE_SIZE !== 0 || size > 2 ** 44)
      throw new ErrnoError('EINVAL', `RAM size ${size} is not a positive multiple of 4096 up to 16 TiB`);
    if (base + size > 2 ** 52) throw new ErrnoError('EINVAL', 'RAM must end at or below 2^52');
    this.base = base;
    this.size = size;
    this.end = base + size;
    this.totalPages = size / PAGE_SIZE;
    this.basePfn = base / PAGE_SIZE;
    // Built by push so that V8 keeps fast elements whatever the length (no dictionary mode).
    this.dir = [];
    this.ddir = [];
    for (let i = Math.ceil(this.totalPages / 2 ** DIR_SHIFT); i > 0; i--) {
      this.dir.push(undefined);
      this.ddir.push(undefined);
    }
    for (let k = 0; k <= MAX_PAGE_ORDER; k++) {
      this.heaps.push([]);
      this.nrFree.push(0);
    }
    // Hand the whole range to the buddy allocator as maximal naturally aligned blocks (memblock_free_all).
    let idx = 0;
    while (idx < this.totalPages) {
      let k = MAX_PAGE_ORDER;
      while (k > 0 && ((this.basePfn + idx) % 2 ** k !== 0 || idx + 2 ** k > this.totalPages)) k--;
      this.addFree(idx, k);
      idx += 2 ** k;
    }
  }

  /**
   * Whether `[pa, pa + length)` lies entirely inside RAM.
   * @param pa - first byte
   * @param length - bytes, default 1
   */
  contains(pa: number, length = 1): boolean {
    return pa >= this.base && pa + length <= this.end;
  }

  // ---- internals -----------------------------------------------------------------------------

  private busError(pa: number, n: number, write: boolean): BusError {
    return new BusError(pa < this.base ? pa : Math.max(pa, this.end), n, write);
  }

  /** Page index (relative to base) of `pa`, after a bounds check. */
  private pageIdx(pa: number): number {
    const off = pa - this.base;
    if (!(off >= 0 && off < this.size)) throw this.busError(pa, 1, false);
    return Math.floor(off * INV_PAGE);
  }

  private chunk(idx: number): Chunk | undefined {
    const l2 = this.dir[idx >>> DIR_SHIFT];
    return l2 === undefined ? undefined : l2[(idx >>> CHUNK_SHIFT) & L2_MASK];
  }

  private chunkCreate(idx: number): Chunk {
    const d = idx >>> DIR_SHIFT;
    let l2 = this.dir[d];
    if (l2 === undefined) {
      l2 = new Array<Chunk | undefined>(L2_SIZE).fill(undefined);
      this.dir[d] = l2;
      this.l2Count++;
    }
    const i = (idx >>> CHUNK_SHIFT) & L2_MASK;
    let c = l2[i];
    if (c === undefined) {
      c = new Chunk();
      l2[i] = c;
      this.chunkCount++;
    }
    return c;
  }

  private dchunk(idx: number): DataChunk | undefined {
    const l2 = this.ddir[idx >>> DIR_SHIFT];
    return l2 === undefined ? undefined : l2[(idx >>> CHUNK_SHIFT) & L2_MASK];
  }

  private dchunkCreate(idx: number): DataChunk {
    const d = idx >>> DIR_SHIFT;
    let l2 = this.ddir[d];
    if (l2 === undefined) {
      l2 = new Array<DataChunk | undefined>(L2_SIZE).fill(undefined);
      this.ddir[d] = l2;
      this.l2Count++;
    }
    const i = (idx >>> CHUNK_SHIFT) & L2_MASK;
    let c = l2[i];
    if (c === undefined) {
      c = new DataChunk();
      l2[i] = c;
      this.dataChunkCount++;
    }
    return c;
  }

  private dataRelease(idx: number, c: DataChunk): void {
    if (c.backed !== 0) return;
    const l2 = this.ddir[idx >>> DIR_SHIFT];
    if (l2 === undefined) return;
    l2[(idx >>> CHUNK_SHIFT) & L2_MASK] = undefined;
    this.dataChunkCount--;
  }

  private maybeRelease(idx: number, c: Chunk): void {
    if (c.used !== 0) return;
    const l2 = this.dir[idx >>> DIR_SHIFT];
    if (l2 === undefined) return;
    l2[(idx >>> CHUNK_SHIFT) & L2_MASK] = undefined;
    this.chunkCount--;
  }

  private setFlags(c: Chunk, s: number, f: number): void {
    const old = c.flags[s] as number;
    if (old === 0 && f !== 0) c.used++;
    else if (old !== 0 && f === 0) c.used--;
    c.flags[s] = f;
  }

  private addFree(idx: number, k: number): void {
    const c = this.chunkCreate(idx);
    const s = idx & CHUNK_MASK;
    this.setFlags(c, s, F_FREE);
    c.order[s] = k;
    heapPush(this.heaps[k] as number[], idx);
    this.nrFree[k] = (this.nrFree[k] as number) + 1;
  }

  private isFreeHead(idx: number, k: number): boolean {
    const c = this.chunk(idx);
    if (c === undefined) return false;
    const s = idx & CHUNK_MASK;
    return ((c.flags[s] as number) & F_FREE) !== 0 && c.order[s] === k;
  }

  private clearFree(idx: number, k: number): void {
    const c = this.chunk(idx) as Chunk;
    this.setFlags(c, idx & CHUNK_MASK, 0);
    this.nrFree[k] = (this.nrFree[k] as number) - 1;
    this.maybeRelease(idx, c);
  }

  /** Drop stale heap entries when they dominate a heap. */
  private compact(k: number): void {
    const h = this.heaps[k] as number[];
    if (h.length <= 4 * (this.nrFree[k] as number) + 64) return;
    const valid = [...new Set(h.filter((i) => this.isFreeHead(i, k)))].sort((a, b) => a - b);
    h.length = 0;
    for (const v of valid) h.push(v);
  }

  /** The buddy allocation proper (`__rmqueue_smallest` + `expand`): a relative page index. */
  private takeBlock(order: number): number {
    for (let j = order; j <= MAX_PAGE_ORDER; j++) {
      if (this.nrFree[j] === 0) continue;
      const h = this.heaps[j] as number[];
      let idx = -1;
      while (h.length > 0) {
        const cand = heapPop(h);
        if (this.isFreeHead(cand, j)) {
          idx = cand;
          break;
        }
      }
      if (idx < 0) throw new Error(`buddy allocator: free count of order ${j} is wrong`);
      this.clearFree(idx, j);
      while (j > order) {
        j--;
        this.addFree(idx + 2 ** j, j);
      }
      return idx;
    }
    throw new ErrnoError('ENOMEM', `no free block of order ${order}`);
  }

  /** `__free_one_page`: merge with free buddies and put the result on its free list. */
  private releaseBlock(idx: number, order: number): void {
    let i = idx;
    let k = order;
    while (k < MAX_PAGE_ORDER) {
      const n = 2 ** k;
      const buddy = Math.floor((this.basePfn + i) / n) % 2 === 0 ? i + n : i - n;
      if (buddy < 0 || buddy + n > this.totalPages || !this.isFreeHead(buddy, k)) break;
      this.clearFree(buddy, k);
      if (buddy < i) i = buddy;
      k++;
    }
    this.addFree(i, k);
    this.compact(k);
  }

  /** Relative index of the head of the allocated block holding page `idx`, or -1 when it is free. */
  private headOf(idx: number): number {
    let c = this.chunk(idx);
    if (c !== undefined && ((c.flags[idx & CHUNK_MASK] as number) & F_ALLOC) !== 0) return idx;
    let prev = idx;
    for (let k = 1; k <= MAX_PAGE_ORDER; k++) {
      const h = idx - ((this.basePfn + idx) % 2 ** k);
      if (h < 0) break;
      if (h === prev) continue;
      prev = h;
      c = this.chunk(h);
      if (c === undefined) continue;
      const s = h & CHUNK_MASK;
      const f = c.flags[s] as number;
      if (f !== 0 && h + 2 ** (c.order[s] as number) > idx) return (f & F_ALLOC) !== 0 ? h : -1;
    }
    return -1;
  }

  /** Head index of the allocated block holding `pa`; EINVAL when free. */
  private allocatedHead(pa: number, what: string): number {
    const h = this.headOf(this.pageIdx(pa));
    if (h < 0) throw new ErrnoError('EINVAL', `${what} of free page ${hex(pa)}`);
    return h;
  }

  private setBacking(idx: number, u8: Uint8Array, u32: Uint32Array, byteOff: number): void {
    const c = this.dchunkCreate(idx);
    const s = idx & CHUNK_MASK;
    if (c.u8[s] === undefined) {
      c.backed++;
      this.backedPages++;
    }
    c.u8[s] = u8;
    c.u32[s] = u32;
    c.off[s] = byteOff;
  }

  /** Drop the backing of `n` pages from `idx`. */
  private dropBacking(idx: number, n: number): void {
    const endIdx = idx + n;
    let i = idx;
    while (i < endIdx) {
      const next = Math.min(endIdx, (Math.floor(i / CHUNK_PAGES) + 1) * CHUNK_PAGES);
      const c = this.dchunk(i);
      if (c !== undefined && c.backed > 0) {
        for (let p = i; p < next; p++) {
          const s = p & CHUNK_MASK;
          if (c.u8[s] !== undefined) {
            c.u8[s] = undefined;
            c.u32[s] = undefined;
            c.off[s] = 0;
            c.backed--;
            this.backedPages--;
          }
        }
        this.dataRelease(i, c);
      }
      i = next;
    }
  }

  private anyBacked(idx: number, n: number): boolean {
    const endIdx = idx + n;
    let i = idx;
    while (i < endIdx) {
      const next = Math.min(endIdx, (Math.floor(i / CHUNK_PAGES) + 1) * CHUNK_PAGES);
      const c = this.dchunk(i);
      if (c !== undefined && c.backed > 0) {
        for (let p = i; p < next; p++) if (c.u8[p & CHUNK_MASK] !== undefined) return true;
      }
      i = next;
    }
    return false;
  }

  /** Give `n` pages from `idx` one contiguous buffer, copying whatever contents they had. */
  private backBlock(idx: number, n: number): void {
    const buf = new ArrayBuffer(n * PAGE_SIZE);
    const u8 = new Uint8Array(buf);
    const u32 = new Uint32Array(buf);
    for (let p = 0; p < n; p++) {
      const c = this.dchunk(idx + p);
      const s = (idx + p) & CHUNK_MASK;
      const old = c?.u8[s];
      if (c !== undefined && old !== undefined) {
        const o = c.off[s] as number;
        u8.set(old.subarray(o, o + PAGE_SIZE), p * PAGE_SIZE);
      }
      this.setBacking(idx + p, u8, u32, p * PAGE_SIZE);
    }
  }

  /** Back page `idx` (with its whole block when it is in an allocated compound block) and return its chunk. */
  private ensureBacked(idx: number): DataChunk {
    const c = this.dchunk(idx);
    if (c !== undefined && c.u8[idx & CHUNK_MASK] !== undefined) return c;
    const h = this.headOf(idx);
    if (h >= 0) {
      const hc = this.chunk(h) as Chunk;
      const o = hc.order[h & CHUNK_MASK] as number;
      if (o > 0) {
        this.backBlock(h, 2 ** o);
        return this.dchunk(idx) as DataChunk;
      }
    }
    this.backBlock(idx, 1);
    return this.dchunk(idx) as DataChunk;
  }

  private freeBlock(h: number): void {
    const c = this.chunk(h) as Chunk;
    const s = h & CHUNK_MASK;
    const o = c.order[s] as number;
    const n = 2 ** o;
    this.setFlags(c, s, 0);
    c.order[s] = 0;
    c.ref[s] = 0;
    c.pin[s] = 0;
    this.maybeRelease(h, c);
    this.dropBacking(h, n);
    this.allocatedPages -= n;
    this.freeCount++;
    this.releaseBlock(h, o);
  }

  /** Bounds check of a multi-byte access; returns the offset from base. */
  private check(pa: number, n: number, write: boolean): number {
    const off = pa - this.base;
    if (!(off >= 0 && off + n <= this.size)) throw this.busError(pa, n, write);
    return off;
  }

  private byteAt(off: number): number {
    const idx = Math.floor(off * INV_PAGE);
    const c = this.dchunk(idx);
    if (c === undefined) return 0;
    const s = idx & CHUNK_MASK;
    const u8 = c.u8[s];
    return u8 === undefined ? 0 : (u8[(c.off[s] as number) + (off - idx * PAGE_SIZE)] as number);
  }

  private setByteAt(off: number, v: number): void {
    const idx = Math.floor(off * INV_PAGE);
    const c = this.ensureBacked(idx);
    const s = idx & CHUNK_MASK;
    (c.u8[s] as Uint8Array)[(c.off[s] as number) + (off - idx * PAGE_SIZE)] = v;
  }

  /** Little-endian read of `n` ≤ 4 bytes at offset `off` byte by byte (unaligned or page-crossing). */
  private readSlow(off: number, n: number): number {
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + this.byteAt(off + i);
    return v;
  }

  private writeSlow(off: number, n: number, value: number): void {
    let v = value;
    for (let i = 0; i < n; i++) {
      this.setByteAt(off + i, v & 0xff);
      v = Math.floor(v / 256);
    }
  }

  /** Word read at offset `off` from base (in range). */
  private word(off: number): number {
    const idx = Math.floor(off * INV_PAGE);
    const inPage = off - idx * PAGE_SIZE;
    if ((inPage & 3) !== 0) return this.readSlow(off, 4);
    const c = this.dchunk(idx);
    if (c === undefined) return 0;
    const s = idx & CHUNK_MASK;
    const w = c.u32[s];
    return w === undefined ? 0 : (w[((c.off[s] as number) + inPage) >>> 2] as number);
  }

  private setWord(off: number, value: number): void {
    const idx = Math.floor(off * INV_PAGE);
    const inPage = off - idx * PAGE_SIZE;
    if ((inPage & 3) !== 0) {
      this.writeSlow(off, 4, value >>> 0);
      return;
    }
    let c = this.dchunk(idx);
    const s = idx & CHUNK_MASK;
    if (c === undefined || c.u32[s] === undefined) c = this.ensureBacked(idx);
    (c.u32[s] as Uint32Array)[((c.off[s] as number) + inPage) >>> 2] = value;
  }

  // ---- allocator -----------------------------------------------------------------------------

  /**
   * Allocate a naturally aligned block of 2^order pages (`alloc_pages`); an order ≥ 1 block is a
   * compound page (head + tails; `__GFP_COMP`).
   *
   * @param order - 0 … {@link MAX_PAGE_ORDER}
   * @param options - `zero` (default `true`)
   * @returns the physical address of the block's first page; reference count 1, pin count 0, clean
   * @throws ErrnoError `ENOMEM` when no free block of that order is left; `EINVAL` for a bad order
   */
  allocPages(order: number, options: AllocPagesOptions = {}): number {
    if (!Number.isInteger(order) || order < 0 || order > MAX_PAGE_ORDER)
      throw new ErrnoError('EINVAL', `bad page order ${order}`);
    if (shouldFail('mm.alloc_pages')) throw new ErrnoError('ENOMEM', `injected: alloc_pages order ${order}`);
    const idx = this.takeBlock(order);
    const n = 2 ** order;
    const c = this.chunkCreate(idx);
    const s = idx & CHUNK_MASK;
    this.setFlags(c, s, F_ALLOC);
    c.order[s] = order;
    c.ref[s] = 1;
    c.pin[s] = 0;
    // Contents left by DMA into free memory: dropped when zeroing, else gathered into one buffer.
    if (options.zero ?? true) this.dropBacking(idx, n);
    else if (n > 1 && this.anyBacked(idx, n)) this.backBlock(idx, n);
    this.allocatedPages += n;
    this.allocCount++;
    return this.base + idx * PAGE_SIZE;
  }

  /**
   * Free a block obtained from {@link PhysicalMemory.allocPages} (`__free_pages` when the caller holds
   * the only reference).
   *
   * @remarks
   * Strict: the block must hold exactly its allocation reference and no pin; otherwise nothing is
   * freed and an error is thrown (use {@link PhysicalMemory.putPage} to drop a reference among several).
   * The block's contents are discarded.
   *
   * @param pa - the block's head address as returned by `allocPages`
   * @param order - the order it was allocated with
   * @throws ErrnoError `EINVAL` when `pa` is not the head of an allocated block (double free, tail
   *   page, never allocated) or `order` differs; `EBUSY` when the reference count is not 1 or the
   *   block is pinned; {@link BusError} outside RAM
   */
  freePages(pa: number, order: number): void {
    const idx = this.pageIdx(pa);
    const c = this.chunk(idx);
    const s = idx & CHUNK_MASK;
    if (pa % PAGE_SIZE !== 0 || c === undefined || ((c.flags[s] as number) & F_ALLOC) === 0)
      throw new ErrnoError(
        'EINVAL',
        `freePages(${hex(pa)}): not the head of an allocated block (double free?)`,
      );
    if (c.order[s] !== order)
      throw new ErrnoError(
        'EINVAL',
        `freePages(${hex(pa)}, ${order}): block has order ${c.order[s] as number}`,
      );
    if (c.pin[s] !== 0) throw new ErrnoError('EBUSY', `freePages(${hex(pa)}): block is pinned`);
    if (c.ref[s] !== 1)
      throw new ErrnoError('EBUSY', `freePages(${hex(pa)}): reference count is ${c.ref[s] as number}, not 1`);
    this.freeBlock(idx);
  }

  /**
   * Split an allocated non-pinned block of order n into 2^n independent order-0 pages, each with
   * reference count 1 (`split_page`); the dirty flag is copied to every page. Contents stay.
   * @param pa - head address of the block
   * @throws ErrnoError `EINVAL` when `pa` is not a block head; `EBUSY` when the block is pinned or
   *   its reference count is not 1
   */
  splitPage(pa: number): void {
    const idx = this.pageIdx(pa);
    const c = this.chunk(idx);
    const s = idx & CHUNK_MASK;
    if (pa % PAGE_SIZE !== 0 || c === undefined || ((c.flags[s] as number) & F_ALLOC) === 0)
      throw new ErrnoError('EINVAL', `splitPage(${hex(pa)}): not the head of an allocated block`);
    if (c.pin[s] !== 0 || c.ref[s] !== 1)
      throw new ErrnoError('EBUSY', `splitPage(${hex(pa)}): block is pinned or has extra references`);
    const f = c.flags[s] as number;
    const n = 2 ** (c.order[s] as number);
    for (let p = idx; p < idx + n; p++) {
      const pc = this.chunkCreate(p);
      const ps = p & CHUNK_MASK;
      this.setFlags(pc, ps, f);
      pc.order[ps] = 0;
      pc.ref[ps] = 1;
      pc.pin[ps] = 0;
    }
  }

  // ---- struct page metadata ------------------------------------------------------------------

  /**
   * Whether the page holding `pa` is inside an allocated block.
   * @param pa - any address in RAM
   * @throws {@link BusError} outside RAM
   */
  isAllocated(pa: number): boolean {
    return this.headOf(this.pageIdx(pa)) >= 0;
  }

  /**
   * The head page of the block holding `pa` (`compound_head`): the block's first page for an
   * allocated block, the page of `pa` itself (page-aligned) for a free page.
   * @param pa - any address in RAM
   * @throws {@link BusError} outside RAM
   */
  compoundHead(pa: number): number {
    const idx = this.pageIdx(pa);
    const h = this.headOf(idx);
    return this.base + (h < 0 ? idx : h) * PAGE_SIZE;
  }

  /**
   * The order of the allocated block holding `pa` (`compound_order` / `folio_order`); 0 for a free page.
   * @param pa - any address in RAM
   * @throws {@link BusError} outside RAM
   */
  compoundOrder(pa: number): number {
    const h = this.headOf(this.pageIdx(pa));
    return h < 0 ? 0 : ((this.chunk(h) as Chunk).order[h & CHUNK_MASK] as number);
  }

  /**
   * The reference count of the block holding `pa` (`page_ref_count` of its head / `folio_ref_count`);
   * 0 for a free page. Includes one reference per pin.
   * @param pa - any address in RAM
   * @throws {@link BusError} outside RAM
   */
  pageRefcount(pa: number): number {
    const h = this.headOf(this.pageIdx(pa));
    return h < 0 ? 0 : ((this.chunk(h) as Chunk).ref[h & CHUNK_MASK] as number);
  }

  /**
   * Take a reference on the block holding `pa` (`get_page` / `folio_get`).
   * @param pa - any address inside an allocated block
   * @returns the new reference count
   * @throws ErrnoError `EINVAL` when the page is free; {@link BusError} outside RAM
   */
  getPage(pa: number): number {
    const h = this.allocatedHead(pa, 'getPage');
    const c = this.chunk(h) as Chunk;
    const s = h & CHUNK_MASK;
    const r = (c.ref[s] as number) + 1;
    c.ref[s] = r;
    return r;
  }

  /**
   * Drop a reference on the block holding `pa` (`put_page` / `folio_put`); the last one frees the block.
   * @param pa - any address inside an allocated block
   * @returns `true` when the block was freed
   * @throws ErrnoError `EINVAL` when the page is free or when the drop would leave fewer references
   *   than pins (a reference a pin holds must be dropped by {@link PhysicalMemory.unpinPage});
   *   {@link BusError} outside RAM
   */
  putPage(pa: number): boolean {
    const h = this.allocatedHead(pa, 'putPage');
    const c = this.chunk(h) as Chunk;
    const s = h & CHUNK_MASK;
    const r = (c.ref[s] as number) - 1;
    if (r < (c.pin[s] as number))
      throw new ErrnoError('EINVAL', `putPage(${hex(pa)}): dropping a reference held by a pin`);
    c.ref[s] = r;
    if (r > 0) return false;
    this.freeBlock(h);
    return true;
  }

  /**
   * The pin count of the block holding `pa` (`folio_maybe_dma_pinned` is `pinCount > 0`); 0 for a free page.
   * @param pa - any address in RAM
   * @throws {@link BusError} outside RAM
   */
  pinCount(pa: number): number {
    const h = this.headOf(this.pageIdx(pa));
    return h < 0 ? 0 : ((this.chunk(h) as Chunk).pin[h & CHUNK_MASK] as number);
  }

  /**
   * Pin the block holding `pa` for DMA (`FOLL_PIN` in mm/gup.c): pin count + 1 and reference count + 1.
   * @param pa - any address inside an allocated block
   * @returns the new pin count
   * @throws ErrnoError `EINVAL` when the page is free; {@link BusError} outside RAM
   */
  pinPage(pa: number): number {
    const h = this.allocatedHead(pa, 'pinPage');
    const c = this.chunk(h) as Chunk;
    const s = h & CHUNK_MASK;
    c.ref[s] = (c.ref[s] as number) + 1;
    const p = (c.pin[s] as number) + 1;
    c.pin[s] = p;
    if (p === 1) this.pinnedPages += 2 ** (c.order[s] as number);
    return p;
  }

  /**
   * Unpin the block holding `pa` (`unpin_user_page`): pin count − 1 and a reference dropped as by
   * {@link PhysicalMemory.putPage}.
   * @param pa - any address inside an allocated block
   * @returns `true` when the dropped reference was the last and the block was freed
   * @throws ErrnoError `EINVAL` when the page is free or not pinned; {@link BusError} outside RAM
   */
  unpinPage(pa: number): boolean {
    const h = this.allocatedHead(pa, 'unpinPage');
    const c = this.chunk(h) as Chunk;
    const s = h & CHUNK_MASK;
    const p = c.pin[s] as number;
    if (p === 0) throw new ErrnoError('EINVAL', `unpinPage(${hex(pa)}): page is not pinned`);
    c.pin[s] = p - 1;
    if (p === 1) this.pinnedPages -= 2 ** (c.order[s] as number);
    const r = (c.ref[s] as number) - 1;
    c.ref[s] = r;
    if (r > 0) return false;
    this.freeBlock(h);
    return true;
  }

  /**
   * The dirty flag of the block holding `pa` (`PageDirty` / `folio_test_dirty`); `false` for a free page.
   * @param pa - any address in RAM
   * @throws {@link BusError} outside RAM
   */
  isDirty(pa: number): boolean {
    const h = this.headOf(this.pageIdx(pa));
    return h >= 0 && (((this.chunk(h) as Chunk).flags[h & CHUNK_MASK] as number) & F_DIRTY) !== 0;
  }

  /**
   * Set or clear the dirty flag of the block holding `pa` (`set_page_dirty` / `folio_clear_dirty`).
   * @param pa - any address inside an allocated block
   * @param dirty - the new flag
   * @throws ErrnoError `EINVAL` when the page is free; {@link BusError} outside RAM
   */
  setDirty(pa: number, dirty: boolean): void {
    const h = this.allocatedHead(pa, 'setDirty');
    const c = this.chunk(h) as Chunk;
    const s = h & CHUNK_MASK;
    const f = c.flags[s] as number;
    c.flags[s] = dirty ? f | F_DIRTY : f & ~F_DIRTY;
  }

  /**
   * Everything about the page holding `pa` in one object (cold path: debugging, tests).
   * @param pa - any address in RAM
   * @throws {@link BusError} outside RAM
   */
  pageInfo(pa: number): PageInfo {
    const idx = this.pageIdx(pa);
    const h = this.headOf(idx);
    const page = this.base + idx * PAGE_SIZE;
    const pc = this.dchunk(idx);
    const backed = pc !== undefined && pc.u8[idx & CHUNK_MASK] !== undefined;
    if (h < 0)
      return {
        pa: page,
        allocated: false,
        head: page,
        order: 0,
        refcount: 0,
        pincount: 0,
        dirty: false,
        backed,
      };
    const c = this.chunk(h) as Chunk;
    const s = h & CHUNK_MASK;
    return {
      pa: page,
      allocated: true,
      head: this.base + h * PAGE_SIZE,
      order: c.order[s] as number,
      refcount: c.ref[s] as number,
      pincount: c.pin[s] as number,
      dirty: ((c.flags[s] as number) & F_DIRTY) !== 0,
      backed,
    };
  }

  // ---- access --------------------------------------------------------------------------------

  /** Read one byte. @param pa - physical address @throws {@link BusError} outside RAM */
  read8(pa: number): number {
    return this.byteAt(this.check(pa, 1, false));
  }

  /** Write one byte (low 8 bits of `value`). @param pa - physical address @param value - the byte @throws {@link BusError} outside RAM */
  write8(pa: number, value: number): void {
    this.setByteAt(this.check(pa, 1, true), value & 0xff);
  }

  /** Read a little-endian u16. @param pa - physical address, any alignment @throws {@link BusError} outside RAM */
  read16(pa: number): number {
    return this.readSlow(this.check(pa, 2, false), 2);
  }

  /** Write a little-endian u16. @param pa - physical address, any alignment @param value - low 16 bits are written @throws {@link BusError} outside RAM */
  write16(pa: number, value: number): void {
    this.writeSlow(this.check(pa, 2, true), 2, value & 0xffff);
  }

  /** Read a little-endian u32 as an unsigned number. @param pa - physical address, any alignment @throws {@link BusError} outside RAM */
  read32(pa: number): number {
    const off = pa - this.base;
    if (!(off >= 0 && off + 4 <= this.size)) throw this.busError(pa, 4, false);
    return this.word(off);
  }

  /** Write a little-endian u32. @param pa - physical address, any alignment @param value - low 32 bits are written @throws {@link BusError} outside RAM */
  write32(pa: number, value: number): void {
    const off = pa - this.base;
    if (!(off >= 0 && off + 4 <= this.size)) throw this.busError(pa, 4, true);
    this.setWord(off, value >>> 0);
  }

  /** Read a little-endian u64. @param pa - physical address, any alignment @throws {@link BusError} outside RAM */
  read64(pa: number): bigint {
    const off = this.check(pa, 8, false);
    return (BigInt(this.word(off + 4)) << 32n) | BigInt(this.word(off));
  }

  /** Write a little-endian u64. @param pa - physical address, any alignment @param value - 0 ≤ value \< 2^64 (taken modulo 2^64) @throws {@link BusError} outside RAM */
  write64(pa: number, value: bigint): void {
    const off = this.check(pa, 8, true);
    const v = BigInt.asUintN(64, value);
    this.setWord(off, Number(v & 0xffff_ffffn));
    this.setWord(off + 4, Number(v >> 32n));
  }

  /** Bits 31:0 of the little-endian u64 at `pa` (no `bigint`). @param pa - physical address @throws {@link BusError} outside RAM (all 8 bytes are checked) */
  read64Lo(pa: number): number {
    return this.word(this.check(pa, 8, false));
  }

  /** Bits 63:32 of the little-endian u64 at `pa` (no `bigint`). @param pa - physical address @throws {@link BusError} outside RAM (all 8 bytes are checked) */
  read64Hi(pa: number): number {
    return this.word(this.check(pa, 8, false) + 4);
  }

  /**
   * Write a u64 given as two unsigned 32-bit halves (no `bigint`).
   * @param pa - physical address
   * @param lo - bits 31:0
   * @param hi - bits 63:32
   * @throws {@link BusError} outside RAM
   */
  write64Halves(pa: number, lo: number, hi: number): void {
    const off = this.check(pa, 8, true);
    this.setWord(off, lo >>> 0);
    this.setWord(off + 4, hi >>> 0);
  }

  /**
   * Copy `length` bytes out of RAM.
   * @param pa - first byte
   * @param length - bytes, ≥ 0
   * @returns a new array (a copy)
   * @throws {@link BusError} when any byte is outside RAM
   */
  readBytes(pa: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    if (length === 0) return out;
    let off = this.check(pa, length, false);
    let done = 0;
    while (done < length) {
      const idx = Math.floor(off * INV_PAGE);
      const inPage = off - idx * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - inPage, length - done);
      const c = this.dchunk(idx);
      const s = idx & CHUNK_MASK;
      const u8 = c?.u8[s];
      if (c !== undefined && u8 !== undefined) {
        const o = (c.off[s] as number) + inPage;
        out.set(u8.subarray(o, o + n), done);
      }
      done += n;
      off += n;
    }
    return out;
  }

  /**
   * Copy bytes into RAM.
   * @param pa - first byte
   * @param bytes - the data
   * @throws {@link BusError} when any byte is outside RAM (nothing is written then)
   */
  writeBytes(pa: number, bytes: Uint8Array): void {
    const length = bytes.length;
    if (length === 0) return;
    let off = this.check(pa, length, true);
    let done = 0;
    while (done < length) {
      const idx = Math.floor(off * INV_PAGE);
      const inPage = off - idx * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - inPage, length - done);
      const c = this.ensureBacked(idx);
      const s = idx & CHUNK_MASK;
      (c.u8[s] as Uint8Array).set(bytes.subarray(done, done + n), (c.off[s] as number) + inPage);
      done += n;
      off += n;
    }
  }

  /**
   * Fill `length` bytes with `value` (`memset`); zero-filling an unbacked page leaves it unbacked.
   * @param pa - first byte
   * @param length - bytes
   * @param value - byte value, default 0
   * @throws {@link BusError} when any byte is outside RAM
   */
  fill(pa: number, length: number, value = 0): void {
    if (length <= 0) return;
    let off = this.check(pa, length, true);
    const v = value & 0xff;
    let done = 0;
    while (done < length) {
      const idx = Math.floor(off * INV_PAGE);
      const inPage = off - idx * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - inPage, length - done);
      let c = this.dchunk(idx);
      const s = idx & CHUNK_MASK;
      if (v !== 0 || (c !== undefined && c.u8[s] !== undefined)) {
        c = this.ensureBacked(idx);
        const o = (c.off[s] as number) + inPage;
        (c.u8[s] as Uint8Array).fill(v, o, o + n);
      }
      done += n;
      off += n;
    }
  }

  /**
   * Copy one 4 KiB page (`copy_highpage`); an unbacked source makes the destination zero without backing it.
   * @param dstPa - destination page (page-aligned)
   * @param srcPa - source page (page-aligned)
   * @throws ErrnoError `EINVAL` for unaligned addresses; {@link BusError} outside RAM
   */
  copyPage(dstPa: number, srcPa: number): void {
    if (dstPa % PAGE_SIZE !== 0 || srcPa % PAGE_SIZE !== 0)
      throw new ErrnoError('EINVAL', `copyPage(${hex(dstPa)}, ${hex(srcPa)}): unaligned page`);
    const d = this.check(dstPa, PAGE_SIZE, true) * INV_PAGE;
    const s = this.check(srcPa, PAGE_SIZE, false) * INV_PAGE;
    if (d === s) return;
    const sc = this.dchunk(s);
    const ss = s & CHUNK_MASK;
    const src = sc?.u8[ss];
    if (sc === undefined || src === undefined) {
      this.zeroPage(dstPa);
      return;
    }
    const dc = this.ensureBacked(d);
    const ds = d & CHUNK_MASK;
    const so = sc.off[ss] as number;
    (dc.u8[ds] as Uint8Array).set(src.subarray(so, so + PAGE_SIZE), dc.off[ds] as number);
  }

  /**
   * Zero one 4 KiB page (`clear_page`); a page with its own backing (order 0) loses it.
   * @param pa - the page (page-aligned)
   * @throws ErrnoError `EINVAL` when unaligned; {@link BusError} outside RAM
   */
  zeroPage(pa: number): void {
    if (pa % PAGE_SIZE !== 0) throw new ErrnoError('EINVAL', `zeroPage(${hex(pa)}): unaligned page`);
    const idx = this.check(pa, PAGE_SIZE, true) * INV_PAGE;
    const c = this.dchunk(idx);
    const s = idx & CHUNK_MASK;
    const u8 = c?.u8[s];
    if (c === undefined || u8 === undefined) return;
    if (u8.length === PAGE_SIZE) this.dropBacking(idx, 1);
    else u8.fill(0, c.off[s] as number, (c.off[s] as number) + PAGE_SIZE);
  }

  /**
   * Whether host memory backs the page holding `pa`.
   * @param pa - any address in RAM
   * @throws {@link BusError} outside RAM
   */
  isBacked(pa: number): boolean {
    const idx = this.pageIdx(pa);
    return this.dchunk(idx)?.u8[idx & CHUNK_MASK] !== undefined;
  }

  // ---- PageTableMemory -----------------------------------------------------------------------

  private tableOrder(bytes: number): number {
    let order = 0;
    while (PAGE_SIZE * 2 ** order < bytes) order++;
    if (order > MAX_PAGE_ORDER || !(bytes > 0)) throw new ErrnoError('EINVAL', `table of ${bytes} bytes`);
    return order;
  }

  /**
   * Allocate a zeroed page table (`PageTableMemory.allocTable`): the block of the smallest order
   * covering `bytes` (a whole page for smaller tables), so the table is naturally aligned.
   * @param bytes - table size in bytes, 1 … 1 GiB (io-pgtable asks for powers of two up to 1 MiB)
   * @returns the table's physical address
   * @throws ErrnoError `ENOMEM` when RAM is exhausted; `EINVAL` for a bad size
   */
  allocTable(bytes: number): number {
    return this.allocPages(this.tableOrder(bytes));
  }

  /**
   * Free a table from {@link PhysicalMemory.allocTable} (`PageTableMemory.freeTable`), as
   * {@link PhysicalMemory.freePages} of the covering order.
   * @param pa - the table's physical address
   * @param bytes - the size it was allocated with
   * @throws ErrnoError `EINVAL` / `EBUSY` as `freePages`
   */
  freeTable(pa: number, bytes: number): void {
    this.freePages(pa, this.tableOrder(bytes));
  }

  /**
   * The word array holding the table at `pa` (`PageTableMemory.tableWords`, hot path): the whole
   * backing buffer of the block holding `pa` (all pages of a compound block, so a multi-page table is
   * contiguous), backed on first use. Pair with {@link PhysicalMemory.tableWordIndex}. Any RAM
   * address is accepted.
   * @param pa - an address inside a table
   * @throws {@link BusError} outside RAM
   */
  tableWords(pa: number): Uint32Array {
    const off = pa - this.base;
    if (!(off >= 0 && off < this.size)) throw this.busError(pa, 4, false);
    const idx = Math.floor(off * INV_PAGE);
    const s = idx & CHUNK_MASK;
    const c = this.dchunk(idx);
    const w = c?.u32[s];
    if (w !== undefined) return w;
    return this.ensureBacked(idx).u32[s] as Uint32Array;
  }

  /**
   * Index of the 32-bit word at `pa` in the array {@link PhysicalMemory.tableWords} returns for the
   * same `pa` (`PageTableMemory.tableWordIndex`).
   * @param pa - a 4-byte-aligned address inside a table
   * @throws {@link BusError} outside RAM
   */
  tableWordIndex(pa: number): number {
    const off = pa - this.base;
    if (!(off >= 0 && off < this.size)) throw this.busError(pa, 4, false);
    const idx = Math.floor(off * INV_PAGE);
    const s = idx & CHUNK_MASK;
    let c = this.dchunk(idx);
    if (c === undefined || c.u32[s] === undefined) c = this.ensureBacked(idx);
    return ((c.off[s] as number) + (off - idx * PAGE_SIZE)) >>> 2;
  }

  /**
   * {@link PhysicalMemory.tableWords} and {@link PhysicalMemory.tableWordIndex} in one object (cold path).
   * @param pa - an address inside a table
   * @throws {@link BusError} outside RAM
   */
  tableView(pa: number): TableView {
    return { words: this.tableWords(pa), index: this.tableWordIndex(pa) };
  }

  // ---- statistics ----------------------------------------------------------------------------

  /** Counters: pages total, allocated, free, backed, and host bytes used. */
  stats(): PhysicalMemoryStats {
    let heapEntries = 0;
    for (const h of this.heaps) heapEntries += h.length;
    return {
      totalPages: this.totalPages,
      allocatedPages: this.allocatedPages,
      freePages: this.totalPages - this.allocatedPages,
      backedPages: this.backedPages,
      backedBytes: this.backedPages * PAGE_SIZE,
      metadataBytes:
        this.chunkCount * CHUNK_COST +
        this.dataChunkCount * DATA_CHUNK_COST +
        this.l2Count * L2_SIZE * 8 +
        this.dir.length * 16 +
        heapEntries * 8,
      allocCount: this.allocCount,
      freeCount: this.freeCount,
      pinnedPages: this.pinnedPages,
    };
  }
}
