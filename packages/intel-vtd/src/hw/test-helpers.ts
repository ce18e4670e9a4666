/**
 * Test helpers for the VT-d model: a small RAM and hand-rolled page-table builders for the
 * second-level format (digest §3.2) and the first-level x86-64 format (§3.3), independent of
 * io-pgtable so the model's walkers are checked against tables written by other code.
 *
 * @remarks
 * Re-exported from the package's `testing` entry.
 */

import { PhysicalMemory } from '@iommu-ts/mm';

/** Base of the RAM of {@link makeVtdTestMemory}. */
export const VTD_TEST_RAM_BASE = 0x4000_0000;

/**
 * A RAM for tests: `sizeMiB` MiB at {@link VTD_TEST_RAM_BASE}.
 * @param sizeMiB - size in MiB (default 64)
 */
export function makeVtdTestMemory(sizeMiB = 64): PhysicalMemory {
  return new PhysicalMemory({ base: VTD_TEST_RAM_BASE, size: sizeMiB * 2 ** 20 });
}

/** Leaf sizes the builders write: 4 KiB, 2 MiB, 1 GiB. */
export type VtdTestPageSize = 4096 | 2097152 | 1073741824;

/** Attributes of a second-level leaf written by {@link SlTestPageTable.map}. */
export interface SlTestPteAttrs {
  /** R (bit 0); default true. */
  readonly read?: boolean;
  /** W (bit 1); default true. */
  readonly write?: boolean;
  /** X (bit 2); default false. */
  readonly exec?: boolean;
  /** SNP (bit 11); default false. */
  readonly snp?: boolean;
  /** A (bit 8) pre-set; default false. */
  readonly accessed?: boolean;
  /** D (bit 9) pre-set; default false. */
  readonly dirty?: boolean;
  /** Leaf size; default 4096. */
  readonly size?: VtdTestPageSize;
  /** Extra bits ORed into the low word (for reserved-bit tests). */
  readonly extraLo?: number;
  /** Extra bits ORed into the high word. */
  readonly extraHi?: number;
}

/** Attributes of a first-level leaf written by {@link FlTestPageTable.map}. */
export interface FlTestPteAttrs {
  /** R/W (bit 1); default true. */
  readonly write?: boolean;
  /** U/S (bit 2); default true. */
  readonly user?: boolean;
  /** XD (bit 63); default false. */
  readonly xd?: boolean;
  /** G (bit 8); default false. */
  readonly global?: boolean;
  /** A (bit 5) pre-set; default false. */
  readonly accessed?: boolean;
  /** D (bit 6) pre-set; default false. */
  readonly dirty?: boolean;
  /** Leaf size; default 4096. */
  readonly size?: VtdTestPageSize;
  /** Extra bits ORed into the low word. */
  readonly extraLo?: number;
  /** Extra bits ORed into the high word. */
  readonly extraHi?: number;
}

/** Options of the page-table builders. */
export interface VtdTestPageTableOptions {
  /** Number of levels: 3, 4 or 5 (second level); 4 or 5 (first level). */
  readonly levels: number;
  /**
   * The address written into entries (and {@link TestPageTableBase.rootAddr}) for a table at
   * physical address `pa`; default identity. Nested tests pass a PA → GPA mapping.
   */
  readonly tableAddr?: (pa: number) => number;
}

const TWO32 = 2 ** 32;

function levelShift(level: number): number {
  return 12 + 9 * (level - 1);
}

function toNumber(addr: number | bigint): number {
  // Only bits 56:0 index the tables (canonical upper-half addresses lose their sign bits).
  return typeof addr === 'number' ? addr : Number(BigInt.asUintN(57, addr));
}

/** Common part of the two builders. */
export abstract class TestPageTableBase {
  /** The RAM. */
  readonly memory: PhysicalMemory;
  /** Levels. */
  readonly levels: number;
  /** PA of the top-level table. */
  readonly root: number;
  /** Every table allocated (PA), root first. */
  readonly tables: number[] = [];
  readonly #tableAddr: (pa: number) => number;
  /** PA → the address used in entries. */
  readonly #byAddr = new Map<number, number>();

  /** @param memory - the RAM @param options - levels and table-address mapping */
  constructor(memory: PhysicalMemory, options: VtdTestPageTableOptions) {
    this.memory = memory;
    this.levels = options.levels;
    this.#tableAddr = options.tableAddr ?? ((pa) => pa);
    this.root = this.#alloc();
  }

  /** The top-level table as the structures reference it (SLPTPTR / FLPTR). */
  get rootAddr(): number {
    return this.#tableAddr(this.root);
  }

  #alloc(): number {
    const pa = this.memory.allocPages(0);
    this.memory.zeroPage(pa);
    this.tables.push(pa);
    this.#byAddr.set(this.#tableAddr(pa), pa);
    return pa;
  }

  /** Low-word bits of a non-leaf entry. */
  protected abstract nonLeafLo(): number;

  /**
   * Physical address of the entry for `addr` at `level`, allocating missing tables when `create`.
   * @param addr - input address
   * @param level - 1 … levels
   * @param create - allocate intermediate tables
   * @returns the entry's PA, or `undefined` if a table is missing
   */
  entryAddr(addr: number | bigint, level: number, create = false): number | undefined {
    const a = toNumber(addr);
    let table = this.root;
    for (let l = this.levels; l > level; l--) {
      const ea = table + (Math.floor(a / 2 ** levelShift(l)) % 512) * 8;
      const lo = this.memory.read64Lo(ea);
      const hi = this.memory.read64Hi(ea);
      const ptr = (hi & 0xfffff) * TWO32 + ((lo & 0xffff_f000) >>> 0);
      if ((lo & this.nonLeafLo()) === 0 || (lo & 0x80) !== 0) {
        if (!create) return undefined;
        const t = this.#alloc();
        const ta = this.#tableAddr(t);
        this.memory.write64Halves(ea, this.nonLeafLo() | (ta % TWO32), Math.floor(ta / TWO32));
        table = t;
      } else table = this.#byAddr.get(ptr) ?? ptr;
    }
    return table + (Math.floor(a / 2 ** levelShift(level)) % 512) * 8;
  }

  /**
   * Write a raw entry.
   * @param addr - input address
   * @param level - level of the entry
   * @param lo - bits 31:0
   * @param hi - bits 63:32
   */
  setRaw(addr: number | bigint, level: number, lo: number, hi: number): void {
    const ea = this.entryAddr(addr, level, true) as number;
    this.memory.write64Halves(ea, lo, hi);
  }

  /**
   * Read an entry as two halves.
   * @param addr - input address
   * @param level - level
   * @returns `[lo, hi]`, or `undefined` when a table on the way is missing
   */
  getRaw(addr: number | bigint, level: number): [number, number] | undefined {
    const ea = this.entryAddr(addr, level);
    if (ea === undefined) return undefined;
    return [this.memory.read64Lo(ea), this.memory.read64Hi(ea)];
  }

  /**
   * Clear the leaf mapping `addr` (the entry at the level of `size`).
   * @param addr - input address
   * @param size - leaf size; default 4096
   */
  unmap(addr: number | bigint, size: VtdTestPageSize = 4096): void {
    const ea = this.entryAddr(addr, sizeLevel(size));
    if (ea !== undefined) this.memory.write64Halves(ea, 0, 0);
  }

  protected writeLeaf(
    addr: number | bigint,
    pa: number,
    size: VtdTestPageSize,
    lo: number,
    hi: number,
  ): void {
    const level = sizeLevel(size);
    if (pa % size !== 0) throw new Error(`output 0x${pa.toString(16)} not aligned to ${size}`);
    const ea = this.entryAddr(addr, level, true) as number;
    this.memory.write64Halves(ea, (lo | (pa % TWO32)) >>> 0, (hi | Math.floor(pa / TWO32)) >>> 0);
  }
}

function sizeLevel(size: VtdTestPageSize): number {
  return size === 4096 ? 1 : size === 2097152 ? 2 : 3;
}

/** A second-level page table (digest §3.2) built by hand; non-leaf entries have R = W = 1. */
export class SlTestPageTable extends TestPageTableBase {
  /** @returns R | W */
  protected nonLeafLo(): number {
    return 3;
  }

  /**
   * Map one leaf.
   * @param iova - input address (aligned to the size)
   * @param pa - output address (aligned to the size)
   * @param attrs - see {@link SlTestPteAttrs}
   */
  map(iova: number | bigint, pa: number, attrs: SlTestPteAttrs = {}): void {
    const size = attrs.size ?? 4096;
    const lo =
      ((attrs.read ?? true) ? 1 : 0) |
      ((attrs.write ?? true) ? 2 : 0) |
      (attrs.exec === true ? 4 : 0) |
      (size !== 4096 ? 0x80 : 0) |
      (attrs.accessed === true ? 0x100 : 0) |
      (attrs.dirty === true ? 0x200 : 0) |
      (attrs.snp === true ? 0x800 : 0) |
      (attrs.extraLo ?? 0);
    this.writeLeaf(iova, pa, size, lo, attrs.extraHi ?? 0);
  }
}

/**
 * A first-level (x86-64 format) page table (digest §3.3) built by hand; non-leaf entries have
 * P = R/W = U/S = 1 and A clear (so hardware A updates are observable).
 */
export class FlTestPageTable extends TestPageTableBase {
  /** @returns P | R/W | U/S */
  protected nonLeafLo(): number {
    return 7;
  }

  /**
   * Map one leaf.
   * @param va - input address (canonical; aligned to the size)
   * @param pa - output address (aligned to the size)
   * @param attrs - see {@link FlTestPteAttrs}
   */
  map(va: number | bigint, pa: number, attrs: FlTestPteAttrs = {}): void {
    const size = attrs.size ?? 4096;
    const lo =
      1 |
      ((attrs.write ?? true) ? 2 : 0) |
      ((attrs.user ?? true) ? 4 : 0) |
      (attrs.accessed === true ? 0x20 : 0) |
      (attrs.dirty === true ? 0x40 : 0) |
      (size !== 4096 ? 0x80 : 0) |
      (attrs.global === true ? 0x100 : 0) |
      (attrs.extraLo ?? 0);
    const hi = (attrs.xd === true ? 0x8000_0000 : 0) | (attrs.extraHi ?? 0);
    this.writeLeaf(va, pa, size, lo, hi);
  }

  /**
   * Change the R/W, U/S and XD bits of the non-leaf entry at `level` on the walk of `va`.
   * @param va - input address
   * @param level - 2 … levels
   * @param bits - the bits to set (absent = leave)
   */
  setTableBits(
    va: number | bigint,
    level: number,
    bits: { write?: boolean; user?: boolean; xd?: boolean },
  ): void {
    const ea = this.entryAddr(va, level);
    if (ea === undefined) throw new Error('no such entry');
    let lo = this.memory.read64Lo(ea);
    let hi = this.memory.read64Hi(ea);
    if (bits.write !== undefined) lo = bits.write ? lo | 2 : lo & ~2;
    if (bits.user !== undefined) lo = bits.user ? lo | 4 : lo & ~4;
    if (bits.xd !== undefined) hi = bits.xd ? hi | 0x8000_0000 : hi & 0x7fff_ffff;
    this.memory.write64Halves(ea, lo >>> 0, hi >>> 0);
  }
}
