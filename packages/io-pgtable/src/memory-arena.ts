/**
 * The in-memory {@link PageTableMemory} shipped with the package for standalone use.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { PageTableMemory, TableView } from './memory.js';

const CHUNK_SHIFT = 20;
const CHUNK_BYTES = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_BYTES - 1;
/** 1 / CHUNK_BYTES, exact: a chunk index is a multiplication and a truncation, no division. */
const CHUNK_INV = 2 ** -CHUNK_SHIFT;
const MIN_ALLOC = 8;
const MAX_ALLOC = CHUNK_BYTES;

/** Options of {@link InMemoryPageTableMemory}. */
export interface InMemoryPageTableMemoryOptions {
  /**
   * Physical address of the arena's first byte; a multiple of 1 MiB. Default `0x4000_0000`
   * (1 GiB), below 4 GiB so that formats needing 32-bit table addresses (v7s) work.
   */
  readonly base?: number;
  /** Upper bound on the arena size in bytes (default 1 GiB); beyond it `allocTable` fails with `ENOMEM`. */
  readonly limitBytes?: number;
}

/** One allocated table as reported by {@link InMemoryPageTableMemory.tables}. */
export interface ArenaTable {
  /** Physical address of the table. */
  readonly pa: number;
  /** Allocated size in bytes. */
  readonly bytes: number;
}

/**
 * An arena of 1 MiB chunks holding naturally aligned, zeroed power-of-two tables.
 *
 * @remarks
 * Deterministic: the same sequence of `allocTable`/`freeTable` calls always yields the same
 * addresses (bump allocation in a chunk, then most-recently-freed first per size class). A table
 * is addressed by index arithmetic: chunk `(pa - base) / 1 MiB`, word `((pa - base) mod 1 MiB) / 4`.
 * Tracks live tables so tests can check that nothing leaks ({@link InMemoryPageTableMemory.liveTables}).
 * Allocation failures can be injected with {@link InMemoryPageTableMemory.failNextAllocs}.
 */
export class InMemoryPageTableMemory implements PageTableMemory {
  /** Physical address of the arena's first byte. */
  readonly base: number;
  private readonly limit: number;
  private readonly chunks: Uint32Array[] = [];
  private bump = 0;
  private readonly freeLists = new Map<number, number[]>();
  private readonly live = new Map<number, number>();
  private failCount = 0;
  /** Total number of successful `allocTable` calls so far. */
  allocCount = 0;
  /** Total number of `freeTable` calls so far. */
  freeCount = 0;

  /** @param options - base address and size limit */
  constructor(options: InMemoryPageTableMemoryOptions = {}) {
    const base = options.base ?? 0x4000_0000;
    if (base % CHUNK_BYTES !== 0 || base < 0) throw new RangeError('arena base must be a multiple of 1 MiB');
    this.base = base;
    this.limit = options.limitBytes ?? 1 << 30;
  }

  /** Number of tables currently allocated. */
  get liveTables(): number {
    return this.live.size;
  }

  /** Bytes currently allocated to tables. */
  get liveBytes(): number {
    let n = 0;
    for (const b of this.live.values()) n += b;
    return n;
  }

  /**
   * Make the next `n` calls of `allocTable` fail with `ENOMEM` (fault injection).
   * @param n - number of failures, ≥ 0
   */
  failNextAllocs(n: number): void {
    this.failCount = n;
  }

  /** {@inheritDoc PageTableMemory.allocTable} */
  allocTable(bytes: number): number {
    if (this.failCount > 0) {
      this.failCount--;
      throw new ErrnoError('ENOMEM', 'injected table allocation failure');
    }
    let size = MIN_ALLOC;
    while (size < bytes) size *= 2;
    if (size > MAX_ALLOC) throw new ErrnoError('EINVAL', `table of ${bytes} bytes is too large`);
    const list = this.freeLists.get(size);
    let pa: number;
    const recycled = list?.pop();
    if (recycled !== undefined) {
      pa = recycled;
      const words = this.tableWords(pa);
      const wi = this.tableWordIndex(pa);
      words.fill(0, wi, wi + size / 4);
    } else {
      let off = Math.ceil(this.bump / size) * size;
      const chunk = Math.floor(off / CHUNK_BYTES);
      if (chunk >= this.chunks.length) {
        off = this.chunks.length * CHUNK_BYTES;
        if (off + CHUNK_BYTES > this.limit) throw new ErrnoError('ENOMEM', 'page-table arena is full');
        this.chunks.push(new Uint32Array(CHUNK_BYTES / 4));
      }
      this.bump = off + size;
      pa = this.base + off;
    }
    this.live.set(pa, size);
    this.allocCount++;
    return pa;
  }

  /** {@inheritDoc PageTableMemory.freeTable} */
  freeTable(pa: number, bytes: number): void {
    const size = this.live.get(pa);
    if (size === undefined) throw new Error(`freeTable(0x${pa.toString(16)}): not an allocated table`);
    if (bytes > size) throw new Error(`freeTable(0x${pa.toString(16)}): size ${bytes} > allocated ${size}`);
    this.live.delete(pa);
    this.freeCount++;
    let list = this.freeLists.get(size);
    if (list === undefined) {
      list = [];
      this.freeLists.set(size, list);
    }
    list.push(pa);
  }

  /** {@inheritDoc PageTableMemory.tableWords} */
  tableWords(pa: number): Uint32Array {
    const c = this.chunks[((pa - this.base) * CHUNK_INV) | 0];
    if (c === undefined) throw new RangeError(`address 0x${pa.toString(16)} is outside the arena`);
    return c;
  }

  /** {@inheritDoc PageTableMemory.tableWordIndex} */
  tableWordIndex(pa: number): number {
    return ((pa - this.base) & CHUNK_MASK) >>> 2;
  }

  /** {@inheritDoc PageTableMemory.tableView} */
  tableView(pa: number): TableView {
    return { words: this.tableWords(pa), index: this.tableWordIndex(pa) };
  }

  /** {@inheritDoc PageTableMemory.read64} */
  read64(pa: number): bigint {
    const w = this.tableWords(pa);
    const i = this.tableWordIndex(pa);
    return (BigInt(w[i + 1] ?? 0) << 32n) | BigInt(w[i] ?? 0);
  }

  /** {@inheritDoc PageTableMemory.write64} */
  write64(pa: number, value: bigint): void {
    const w = this.tableWords(pa);
    const i = this.tableWordIndex(pa);
    w[i] = Number(value & 0xffff_ffffn);
    w[i + 1] = Number((value >> 32n) & 0xffff_ffffn);
  }

  /** {@inheritDoc PageTableMemory.read32} */
  read32(pa: number): number {
    return this.tableWords(pa)[this.tableWordIndex(pa)] ?? 0;
  }

  /** {@inheritDoc PageTableMemory.write32} */
  write32(pa: number, value: number): void {
    this.tableWords(pa)[this.tableWordIndex(pa)] = value >>> 0;
  }

  /** The live tables, by ascending address. */
  tables(): ArenaTable[] {
    return [...this.live.entries()].sort((a, b) => a[0] - b[0]).map(([pa, bytes]) => ({ pa, bytes }));
  }

  /**
   * A copy of the raw little-endian bytes of one live table (or of `bytes` bytes at `pa`).
   * @param pa - table address
   * @param bytes - length; default the table's allocated size
   */
  exportBytes(pa: number, bytes?: number): Uint8Array {
    const n = bytes ?? this.live.get(pa) ?? 0;
    const out = new Uint8Array(n);
    const dv = new DataView(out.buffer);
    const w = this.tableWords(pa);
    const i = this.tableWordIndex(pa);
    for (let k = 0; k * 4 < n; k++) dv.setUint32(k * 4, w[i + k] ?? 0, true);
    return out;
  }
}
