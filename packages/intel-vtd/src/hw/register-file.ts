/**
 * A VT-d register file: 32-bit slots with reset values and write semantics (writable, write-1-to-
 * clear and write-only bits), the way QEMU's intel_iommu keeps `csr`, `wmask`, `w1cmask` and
 * `womask` (digest §1.13).
 *
 * @remarks
 * A software write of `v` to a slot holding `old` stores
 * `((old & ~wmask) | (v & wmask)) & ~(w1cmask & v)`; a software read returns `value & ~womask`.
 * Hardware-side accessors ({@link VtdRegisterFile.get32} and friends) bypass the masks. 64-bit
 * registers are two consecutive slots (low dword first), so 32-bit accesses to either half work.
 */

import { ErrnoError } from '@iommu-ts/base';

const M32 = 0xffff_ffffn;

/** Definition of one register for {@link VtdRegisterFile.define}. */
export interface VtdRegisterDef {
  /** Byte offset, a multiple of the size. */
  readonly offset: number;
  /** Width in bytes: 4 or 8. */
  readonly size: 4 | 8;
  /** Reset value (default 0). */
  readonly reset?: bigint;
  /** Bits software may write (default 0: read-only). */
  readonly wmask?: bigint;
  /** Bits that a software write of 1 clears (default 0). */
  readonly w1cmask?: bigint;
  /** Bits that read as 0 for software (write-only; default 0). */
  readonly womask?: bigint;
}

/** The register storage of one VT-d unit. Undefined offsets read 0 and ignore writes. */
export class VtdRegisterFile {
  /** Size of the window in bytes. */
  readonly size: number;
  readonly #val: Uint32Array;
  readonly #reset: Uint32Array;
  readonly #w: Uint32Array;
  readonly #w1c: Uint32Array;
  readonly #wo: Uint32Array;

  /**
   * @param size - window size in bytes (a multiple of 8)
   * @throws ErrnoError `EINVAL` for a bad size
   */
  constructor(size: number) {
    if (!Number.isInteger(size) || size <= 0 || size % 8 !== 0)
      throw new ErrnoError('EINVAL', `bad register window size ${size}`);
    this.size = size;
    const n = size / 4;
    this.#val = new Uint32Array(n);
    this.#reset = new Uint32Array(n);
    this.#w = new Uint32Array(n);
    this.#w1c = new Uint32Array(n);
    this.#wo = new Uint32Array(n);
  }

  /**
   * Define a register (and set it to its reset value).
   * @param def - offset, width, reset value and masks
   * @throws ErrnoError `EINVAL` for a misaligned or out-of-window offset
   */
  define(def: VtdRegisterDef): void {
    const { offset, size } = def;
    if (!Number.isInteger(offset) || offset < 0 || offset % size !== 0 || offset + size > this.size)
      throw new ErrnoError('EINVAL', `bad register offset 0x${offset.toString(16)}`);
    const i = offset >>> 2;
    const put = (a: Uint32Array, v: bigint | undefined): void => {
      const x = v ?? 0n;
      a[i] = Number(x & M32);
      if (size === 8) a[i + 1] = Number((x >> 32n) & M32);
    };
    put(this.#reset, def.reset);
    put(this.#val, def.reset);
    put(this.#w, def.wmask);
    put(this.#w1c, def.w1cmask);
    put(this.#wo, def.womask);
  }

  /** Every register back to its reset value. */
  reset(): void {
    this.#val.set(this.#reset);
  }

  #slot(offset: number, align: number): number {
    if (!Number.isInteger(offset) || offset < 0 || offset % align !== 0 || offset + align > this.size)
      throw new ErrnoError('EINVAL', `bad MMIO offset 0x${offset.toString(16)}`);
    return offset >>> 2;
  }

  /**
   * Hardware view: the 32-bit slot at `offset`.
   * @param offset - byte offset, a multiple of 4 (not checked: hardware-internal)
   * @returns the stored value
   */
  get32(offset: number): number {
    return this.#val[offset >>> 2] as number;
  }

  /**
   * Hardware view: set the 32-bit slot at `offset`.
   * @param offset - byte offset, a multiple of 4
   * @param value - u32
   */
  set32(offset: number, value: number): void {
    this.#val[offset >>> 2] = value >>> 0;
  }

  /**
   * Hardware view: the 64-bit register at `offset`.
   * @param offset - byte offset, a multiple of 8
   * @returns the stored value
   */
  get64(offset: number): bigint {
    const i = offset >>> 2;
    return (BigInt(this.#val[i + 1] as number) << 32n) | BigInt(this.#val[i] as number);
  }

  /**
   * Hardware view: set the 64-bit register at `offset`.
   * @param offset - byte offset, a multiple of 8
   * @param value - u64
   */
  set64(offset: number, value: bigint): void {
    const i = offset >>> 2;
    this.#val[i] = Number(value & M32);
    this.#val[i + 1] = Number((value >> 32n) & M32);
  }

  /**
   * Software 32-bit read (write-only bits read 0).
   * @param offset - byte offset, a multiple of 4
   * @returns u32
   * @throws ErrnoError `EINVAL` for a misaligned or out-of-window offset
   */
  read32(offset: number): number {
    const i = this.#slot(offset, 4);
    return ((this.#val[i] as number) & ~(this.#wo[i] as number)) >>> 0;
  }

  /**
   * Software 64-bit read.
   * @param offset - byte offset, a multiple of 8
   * @returns u64
   * @throws ErrnoError `EINVAL` for a misaligned or out-of-window offset
   */
  read64(offset: number): bigint {
    this.#slot(offset, 8);
    return (BigInt(this.read32(offset + 4)) << 32n) | BigInt(this.read32(offset));
  }

  /**
   * Software 32-bit write with the slot's masks.
   * @param offset - byte offset, a multiple of 4
   * @param value - u32
   * @returns the previous stored value
   * @throws ErrnoError `EINVAL` for a misaligned or out-of-window offset
   */
  write32(offset: number, value: number): number {
    const i = this.#slot(offset, 4);
    const old = this.#val[i] as number;
    const w = this.#w[i] as number;
    const v = value >>> 0;
    this.#val[i] = ((old & ~w) | (v & w)) & ~((this.#w1c[i] as number) & v);
    return old;
  }

  /**
   * Software 64-bit write with the masks (both halves).
   * @param offset - byte offset, a multiple of 8
   * @param value - u64
   * @returns the previous stored value
   * @throws ErrnoError `EINVAL` for a misaligned or out-of-window offset
   */
  write64(offset: number, value: bigint): bigint {
    this.#slot(offset, 8);
    const old = this.get64(offset);
    this.write32(offset, Number(value & M32));
    this.write32(offset + 4, Number((value >> 32n) & M32));
    return old;
  }
}
