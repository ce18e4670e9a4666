/**
 * Test helpers for the SMMU model: a small RAM and a hand-rolled VMSAv8-64 page-table builder
 * (stage 1 or stage 2, 4K/16K/64K granules, any start level, blocks, concatenated stage-2 tables),
 * independent of io-pgtable so the model's walker is checked against tables written by other code.
 *
 * @remarks
 * Not exported from the package index; imported by the `hw/*.test.ts` files.
 */

import { PhysicalMemory } from '@iommu-ts/mm';

/** Base of the RAM of {@link makeTestMemory}. */
export const TEST_RAM_BASE = 0x4000_0000;

/**
 * A RAM for tests: `sizeMiB` MiB at {@link TEST_RAM_BASE}.
 * @param sizeMiB - size in MiB (default 256)
 */
export function makeTestMemory(sizeMiB = 256): PhysicalMemory {
  return new PhysicalMemory({ base: TEST_RAM_BASE, size: sizeMiB * 2 ** 20 });
}

/** Attributes of a leaf descriptor written by {@link TestPageTable.map}. */
export interface TestPteAttrs {
  /** Stage 1: AP[2:1] (PTE bits 7:6); default 0b01 (read/write at both privilege levels). */
  readonly ap?: number;
  /** Stage 2: S2AP (bits 7:6: bit 6 read, bit 7 write); default 0b11. */
  readonly s2ap?: number;
  /** Access flag (bit 10); default true. */
  readonly af?: boolean;
  /** Stage 1: nG (bit 11); default true (ASID-tagged). */
  readonly ng?: boolean;
  /** DBM (bit 51); default false. */
  readonly dbm?: boolean;
  /** Stage 1: PXN (bit 53). */
  readonly pxn?: boolean;
  /** Stage 1: UXN (bit 54). */
  readonly uxn?: boolean;
  /** Stage 2: XN[1:0] (bits 54:53); default 0. */
  readonly xn?: number;
  /** Stage 1: AttrIndx (bits 4:2); stage 2: MemAttr (bits 5:2). Default 0. */
  readonly attr?: number;
  /** Force descriptor type bits 1:0 (for example 0b01 at level 3, reserved). */
  readonly typeBits?: number;
}

/** Table-descriptor attributes (stage 1 hierarchical controls) for {@link TestPageTable.setTableAttrs}. */
export interface TestTableAttrs {
  /** APTable[1] (bit 62): read-only below. */
  readonly apTableRo?: boolean;
  /** APTable[0] (bit 61): no unprivileged access below. */
  readonly apTableNoUnpriv?: boolean;
  /** UXNTable (bit 60). */
  readonly uxnTable?: boolean;
  /** PXNTable (bit 59). */
  readonly pxnTable?: boolean;
}

/** Options of {@link TestPageTable}. */
export interface TestPageTableOptions {
  /** Granule as log2 bytes: 12, 14 or 16. */
  readonly granule: 12 | 14 | 16;
  /** Input address bits (64 − TxSZ). */
  readonly inputBits: number;
  /** 1 (default) or 2: only changes the default leaf attributes. */
  readonly stage?: 1 | 2;
  /**
   * Start level; default the stage-1 rule `4 − ⌊(inputBits − 4) / stride⌋`. For stage 2 with
   * concatenation give the level and the table count.
   */
  readonly startLevel?: number;
  /** Number of concatenated start-level tables (stage 2); default 1 (or what the size implies). */
  readonly concat?: number;
}

const TWO32 = 2 ** 32;

/**
 * A VMSAv8-64 translation table built by hand in a {@link PhysicalMemory}.
 *
 * @remarks
 * Addresses are numbers (below 2^53; for TTB1-region tests pass the address with its top bits
 * dropped, the index only uses bits below `inputBits`). Tables are allocated with `allocPages`
 * (zeroed), each one granule in size; the start-level table is the whole concatenated block.
 */
export class TestPageTable {
  /** The RAM. */
  readonly memory: PhysicalMemory;
  /** Granule shift. */
  readonly granule: number;
  /** Index bits per level (`granule − 3`). */
  readonly stride: number;
  /** Input bits. */
  readonly inputBits: number;
  /** Start level. */
  readonly startLevel: number;
  /** Stage (default leaf attributes). */
  readonly stage: 1 | 2;
  /** PA of the start-level table (TTB / S2TTB). */
  readonly root: number;
  /** Every table allocated (PA), root first. */
  readonly tables: number[] = [];

  /** @param memory - the RAM @param options - see {@link TestPageTableOptions} */
  constructor(memory: PhysicalMemory, options: TestPageTableOptions) {
    this.memory = memory;
    this.granule = options.granule;
    this.stride = options.granule - 3;
    this.inputBits = options.inputBits;
    this.stage = options.stage ?? 1;
    this.startLevel = options.startLevel ?? 4 - Math.floor((options.inputBits - 4) / this.stride);
    const resolved = this.granule + (4 - this.startLevel) * this.stride;
    const concat = options.concat ?? Math.max(1, 2 ** (this.inputBits - resolved));
    this.root = this.#alloc(concat);
  }

  #alloc(count = 1): number {
    const bytes = 2 ** this.granule * count;
    const order = Math.max(0, Math.ceil(Math.log2(bytes / 4096)));
    const pa = this.memory.allocPages(order);
    this.tables.push(pa);
    return pa;
  }

  /** Bit position of the lowest index bit at `level`. */
  levelShift(level: number): number {
    return this.granule + (3 - level) * this.stride;
  }

  /** Index of `va` at `level` (the start level's index may exceed one table: concatenation). */
  index(va: number, level: number): number {
    const masked = va % 2 ** this.inputBits;
    const idx = Math.floor(masked / 2 ** this.levelShift(level));
    return level === this.startLevel ? idx : idx % 2 ** this.stride;
  }

  /**
   * PA of the table at `level` on the path of `va`, creating missing tables when `create`.
   * @returns the table PA, or `undefined` when missing and not created (or a block is in the way)
   */
  tableAt(va: number, level: number, create = true): number | undefined {
    let table = this.root;
    for (let l = this.startLevel; l < level; l++) {
      const d = table + this.index(va, l) * 8;
      const lo = this.memory.read64Lo(d);
      const hi = this.memory.read64Hi(d);
      if ((lo & 3) !== 3) {
        if (!create || (lo & 1) !== 0) return undefined;
        const next = this.#alloc();
        this.memory.write64Halves(d, (next % TWO32) | 3, Math.floor(next / TWO32));
        table = next;
      } else {
        table = ((lo & ~(2 ** this.granule - 1)) >>> 0) + (hi & 0xffff) * TWO32;
      }
    }
    return table;
  }

  /**
   * Address of the descriptor for `va` at `level` (creating the tables above it).
   * @throws Error if a block descriptor is in the way
   */
  descriptorAddr(va: number, level: number): number {
    const t = this.tableAt(va, level);
    if (t === undefined) throw new Error(`block in the way of level ${level} for 0x${va.toString(16)}`);
    return t + this.index(va, level) * 8;
  }

  /**
   * Write a leaf: a page at level 3, a block at a lower level.
   * @param va - input address (aligned to the leaf size is not required; the index is taken)
   * @param pa - output address of the leaf (aligned to its size)
   * @param level - leaf level (default 3)
   * @param attrs - see {@link TestPteAttrs}
   * @returns the descriptor's PA
   */
  map(va: number, pa: number, level = 3, attrs: TestPteAttrs = {}): number {
    const d = this.descriptorAddr(va, level);
    const { lo, hi } = this.leafBits(pa, level, attrs);
    this.memory.write64Halves(d, lo, hi);
    return d;
  }

  /**
   * The two halves of a leaf descriptor.
   * @returns `{ lo, hi }` u32 halves
   */
  leafBits(pa: number, level: number, attrs: TestPteAttrs = {}): { lo: number; hi: number } {
    let lo = attrs.typeBits ?? (level === 3 ? 3 : 1);
    let hi = 0;
    if (this.stage === 1) {
      lo |= ((attrs.ap ?? 1) & 3) << 6;
      if (attrs.ng ?? true) lo |= 1 << 11;
      if (attrs.pxn) hi |= 1 << 21;
      if (attrs.uxn) hi |= 1 << 22;
      lo |= ((attrs.attr ?? 0) & 7) << 2;
    } else {
      lo |= ((attrs.s2ap ?? 3) & 3) << 6;
      hi |= ((attrs.xn ?? 0) & 3) << 21;
      lo |= ((attrs.attr ?? 0) & 15) << 2;
    }
    if (attrs.af ?? true) lo |= 1 << 10;
    if (attrs.dbm) hi |= 1 << 19;
    lo = (lo | ((pa % TWO32) & ~0xfff)) >>> 0;
    hi = (hi | (Math.floor(pa / TWO32) & 0xffff)) >>> 0;
    // 64K granule, 52-bit PA: PA bits 51:48 go in descriptor bits 15:12.
    if (this.granule === 16 && pa >= 2 ** 48) {
      lo = ((lo & ~0xf000) | ((Math.floor(pa / 2 ** 48) & 0xf) << 12)) >>> 0;
      hi = (hi & ~0xffff) | (Math.floor(pa / TWO32) & 0xffff);
    }
    return { lo, hi };
  }

  /**
   * Set hierarchical attributes on the table descriptor at `level` (pointing to `level + 1`).
   * @param va - any address under that table
   * @param level - the table descriptor's level
   * @param attrs - see {@link TestTableAttrs}
   */
  setTableAttrs(va: number, level: number, attrs: TestTableAttrs): void {
    this.tableAt(va, level + 1);
    const d = this.descriptorAddr(va, level);
    let hi = this.memory.read64Hi(d) & ~(0xf << 27);
    if (attrs.pxnTable) hi |= 1 << 27;
    if (attrs.uxnTable) hi |= 1 << 28;
    if (attrs.apTableNoUnpriv) hi |= 1 << 29;
    if (attrs.apTableRo) hi |= 1 << 30;
    this.memory.write64Halves(d, this.memory.read64Lo(d), hi >>> 0);
  }

  /**
   * Overwrite the descriptor for `va` at `level` with raw halves (for invalid or odd encodings).
   * @returns the descriptor's PA
   */
  writeRaw(va: number, level: number, lo: number, hi = 0): number {
    const d = this.descriptorAddr(va, level);
    this.memory.write64Halves(d, lo >>> 0, hi >>> 0);
    return d;
  }

  /** Clear the descriptor for `va` at `level` (unmap). */
  unmap(va: number, level = 3): void {
    this.writeRaw(va, level, 0, 0);
  }

  /** Read a descriptor as a bigint (assertions). */
  read(pa: number): bigint {
    return this.memory.read64(pa);
  }
}
