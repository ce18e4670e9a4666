/**
 * The user dirty bitmap of IOMMU_HWPT_GET_DIRTY_BITMAP (drivers/iommu/iommufd/iova_bitmap.c) and
 * the recorder a driver's `readAndClearDirty` reports into (`struct iommu_dirty_bitmap`,
 * `iommu_dirty_bitmap_record`).
 *
 * The bitmap lives in user memory: an array of little-endian u64 words at any byte address, bit
 * `n` standing for the IOVA range `[iova + n * page_size, iova + (n + 1) * page_size)`, bit 0 being
 * the user's `iova`. Because the words are little-endian, bit `n` is bit `n % 8` of the byte at
 * `data + n / 8` whatever the alignment of `data`. Bits are only ever set (OR-ed into what the user
 * buffer holds), never cleared.
 *
 * As in Linux the bitmap is processed in windows: each window's bytes are read from user memory
 * (EFAULT if they cannot be), the caller's function reports the dirty ranges of the matching IOVA
 * range, and the window is written back. A page index is `(iova - base) >> ctz(page_size)`.
 */

import { ErrnoError, shouldFail } from '@iommu-ts/base';
import { IommuIotlbGather } from '@iommu-ts/io-pgtable';
import type { IommuDirtyBitmap } from '@iommu-ts/iommu-core';
import type { UserMemory } from './ioctl-dispatch.js';

/** Bytes of user bitmap handled per window (Linux maps up to a few pages of it at a time). */
export const IOVA_BITMAP_WINDOW_BYTES = 16 * 4096;

/** Index of the lowest set bit of a non-zero bigint (`__ffs`). */
function ctz(x: bigint): bigint {
  let n = 0n;
  while ((x & 1n) === 0n) {
    x >>= 1n;
    n++;
  }
  return n;
}

/** The larger of two bigints. */
function bigMax(x: bigint, y: bigint): bigint {
  return x > y ? x : y;
}

/** The smaller of two bigints. */
function bigMin(x: bigint, y: bigint): bigint {
  return x < y ? x : y;
}

/** Set bits `[from, to]` (inclusive) of a byte array, bit numbering as in the file comment. */
function setBits(buf: Uint8Array, from: number, to: number): void {
  let b = from;
  while (b <= to && b % 8 !== 0) {
    buf[b >> 3] = (buf[b >> 3] as number) | (1 << (b & 7));
    b++;
  }
  while (b + 7 <= to) {
    buf[b >> 3] = 0xff;
    b += 8;
  }
  while (b <= to) {
    buf[b >> 3] = (buf[b >> 3] as number) | (1 << (b & 7));
    b++;
  }
}

/**
 * A user dirty bitmap (`struct iova_bitmap`) over `[iova, iova + length)` with `pageSize` bytes
 * per bit.
 */
export class IovaBitmap {
  /** IOVA of bit 0. */
  readonly iova: bigint;
  /** Bytes of IOVA covered (not 0). */
  readonly length: bigint;
  /** `pgshift`: `ctz(pageSize)`; a bit covers `1 << pgshift` bytes. */
  readonly pgshift: bigint;
  /** User address of the bitmap. */
  readonly data: bigint;
  /** Number of bits: `((length - 1) >> pgshift) + 1`. */
  readonly totalBits: bigint;
  private readonly userMemory: UserMemory;
  /** The window being processed: first bit and the user bytes read for it. */
  private window: { firstBit: bigint; bytes: Uint8Array } | null = null;

  /**
   * `iova_bitmap_alloc(iova, length, page_size, data)`.
   * @param userMemory - the caller's memory
   * @param iova - IOVA of bit 0
   * @param length - bytes of IOVA (not 0)
   * @param pageSize - bytes per bit (not 0; its lowest set bit gives the shift, as in Linux)
   * @param data - user address of the bitmap
   */
  constructor(userMemory: UserMemory, iova: bigint, length: bigint, pageSize: bigint, data: bigint) {
    if (length <= 0n || pageSize <= 0n) throw new RangeError('empty bitmap');
    if (shouldFail('iommufd.iova_bitmap_alloc'))
      throw new ErrnoError('ENOMEM', 'injected: iova_bitmap allocation');
    this.userMemory = userMemory;
    this.iova = iova;
    this.length = length;
    this.pgshift = ctz(pageSize);
    this.data = data;
    this.totalBits = ((length - 1n) >> this.pgshift) + 1n;
  }

  /**
   * `iova_bitmap_for_each(bitmap, opaque, fn)`: for each window, read its bytes from user memory,
   * call `fn` with the IOVA range it covers, then write the bytes back.
   * @param fn - reports dirty ranges (through {@link IovaBitmap.set}) for `[iova, iova + length)`
   * @throws ErrnoError `EFAULT` if a window of the bitmap is not accessible; `fn`'s errors. The
   *   windows completed before stay written.
   */
  forEach(fn: (iova: bigint, length: bigint) => void): void {
    const windowBits = BigInt(IOVA_BITMAP_WINDOW_BYTES * 8);
    for (let first = 0n; first < this.totalBits; first += windowBits) {
      const nbits = this.totalBits - first < windowBits ? this.totalBits - first : windowBits;
      const byteOff = first >> 3n;
      const nbytes = Number((nbits + 7n) >> 3n);
      const bytes = this.userMemory.read(this.data + byteOff, nbytes);
      this.window = { firstBit: first, bytes };
      try {
        const start = first << this.pgshift;
        let len = nbits << this.pgshift;
        if (start + len > this.length) len = this.length - start;
        fn(this.iova + start, len);
      } finally {
        this.window = null;
      }
      this.userMemory.write(this.data + byteOff, bytes);
    }
  }

  /**
   * `iova_bitmap_set(bitmap, iova, length)`: mark `[iova, iova + length)` dirty. Parts outside the
   * bitmap are ignored; parts outside the current window are OR-ed into user memory directly.
   * @param iova - first dirty IOVA
   * @param length - bytes (not 0)
   * @throws ErrnoError `EFAULT` writing outside the current window
   */
  set(iova: bigint, length: bigint): void {
    if (length <= 0n) return;
    const end = this.iova + this.length - 1n;
    const lo = iova < this.iova ? this.iova : iova;
    const hi = iova + length - 1n > end ? end : iova + length - 1n;
    if (lo > hi) return;
    const from = (lo - this.iova) >> this.pgshift;
    const to = (hi - this.iova) >> this.pgshift;
    const w = this.window;
    if (w !== null) {
      const wLast = w.firstBit + BigInt(w.bytes.length * 8) - 1n;
      const a = bigMax(from, w.firstBit);
      const b = bigMin(to, wLast);
      if (a <= b) setBits(w.bytes, Number(a - w.firstBit), Number(b - w.firstBit));
      if (from < w.firstBit) this.setDirect(from, to < w.firstBit ? to : w.firstBit - 1n);
      if (to > wLast) this.setDirect(from > wLast ? from : wLast + 1n, to);
      return;
    }
    this.setDirect(from, to);
  }

  /** Read-modify-write bits `[from, to]` straight in user memory. */
  private setDirect(from: bigint, to: bigint): void {
    const byteOff = from >> 3n;
    const nbytes = Number((to >> 3n) - byteOff + 1n);
    const bytes = this.userMemory.read(this.data + byteOff, nbytes);
    const base = byteOff << 3n;
    setBits(bytes, Number(from - base), Number(to - base));
    this.userMemory.write(this.data + byteOff, bytes);
  }
}

/**
 * `struct iommu_dirty_bitmap`: what a driver's `readAndClearDirty` reports into. Each record sets
 * the bits of a {@link IovaBitmap} (when there is one) and widens an IOTLB gather, which the caller
 * syncs afterwards when dirty bits were cleared.
 */
export class IommufdDirtyRecorder implements IommuDirtyBitmap {
  /** The user bitmap, or null when the dirty state is only being cleared. */
  readonly bitmap: IovaBitmap | null;
  /** The IOVA range whose dirty bits were reported (`gather`). */
  readonly gather: IommuIotlbGather = new IommuIotlbGather();
  /** Number of `record` calls (for inspection). */
  records = 0;

  /**
   * `iommu_dirty_bitmap_init(dirty, bitmap, gather)`.
   * @param bitmap - the user bitmap, or null
   */
  constructor(bitmap: IovaBitmap | null) {
    this.bitmap = bitmap;
  }

  /**
   * `iommu_dirty_bitmap_record(dirty, iova, length)`.
   * @param iova - first dirty IOVA
   * @param length - bytes
   */
  record(iova: bigint, length: bigint): void {
    this.records++;
    this.bitmap?.set(iova, length);
    this.gather.addRange(Number(iova), Number(length));
  }
}
