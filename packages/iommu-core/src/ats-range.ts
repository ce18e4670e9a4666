/**
 * The PCIe ATS range encoding shared by Translation Completions and Invalidate Requests, and the
 * conversions IOMMU models need (Arm SMMUv3 CMD_ATC_INV Size, VT-d device-TLB descriptors).
 *
 * @remarks
 * Encoding (PCIe ATS, "Invalidate Request" / "Translation Completion"): with S=0 the range is the
 * single 4 KiB page at the address. With S=1 the address bits from 12 upward hold t consecutive
 * ones followed by a zero; the range is 2^(t+13) bytes, and its base is the address with those
 * bits and the terminating zero cleared. Ones up to bit 62 (`0x7fff_ffff_ffff_f000`) encode the
 * whole 2^64 space.
 */

import { ErrnoError } from '@iommu-ts/base';

const PAGE = 4096n;
const U64 = 1n << 64n;

/** A decoded ATS range: `[start, start + size)`, `size` a power of two ≥ 4096 and `start` aligned to it. */
export interface AtsRange {
  /** First byte. u64. */
  readonly start: bigint;
  /** Length in bytes (up to 2^64). */
  readonly size: bigint;
}

/** A range in the wire encoding. */
export interface AtsEncodedRange {
  /** Address bits 63:12 with the size ones; bits 11:0 zero. */
  readonly addr: bigint;
  /** The S bit. */
  readonly s: boolean;
}

/** The "everything" encoding: S=1 with ones in bits 62:12. */
export const ATS_RANGE_ALL: AtsEncodedRange = Object.freeze({ addr: 0x7fff_ffff_ffff_f000n, s: true });

/**
 * Decode the wire encoding.
 * @param addr - encoded address (bits 11:0 ignored)
 * @param s - the S bit
 * @returns the naturally aligned range
 * @throws ErrnoError `EINVAL` if `addr` is outside u64 or, with S=1, bits 63:12 are all ones
 *   (no terminating zero)
 */
export function atsDecodeRange(addr: bigint, s: boolean): AtsRange {
  if (addr < 0n || addr >= U64)
    throw new ErrnoError('EINVAL', `ATS address 0x${addr.toString(16)} is outside u64`);
  const a = addr & ~(PAGE - 1n);
  if (!s) return { start: a, size: PAGE };
  let t = 0n;
  while (t < 52n && ((a >> (12n + t)) & 1n) === 1n) t++;
  if (t === 52n) throw new ErrnoError('EINVAL', 'ATS range encoding has no terminating zero bit');
  const size = 1n << (t + 13n);
  return { start: a & ~(size - 1n), size };
}

/**
 * Encode a naturally aligned range.
 * @param start - base, aligned to `size`
 * @param size - a power of two, 4096 … 2^64
 * @returns the wire encoding (S=0 for one 4 KiB page)
 * @throws ErrnoError `EINVAL` if `size` is not such a power of two or `start` is not aligned to it
 */
export function atsEncodeRange(start: bigint, size: bigint): AtsEncodedRange {
  if (size < PAGE || size > U64 || (size & (size - 1n)) !== 0n)
    throw new ErrnoError('EINVAL', `ATS range size ${size} is not a power of two from 4 KiB to 2^64`);
  if (start < 0n || start % size !== 0n || start + size > U64)
    throw new ErrnoError('EINVAL', `ATS range base 0x${start.toString(16)} is not aligned to its size`);
  if (size === PAGE) return { addr: start, s: false };
  // Size 2^(t+13): ones in bits 12 … 12+t-1, the bit above them (and the rest of the span) zero.
  const ones = (size >> 1n) - PAGE; // bits 12 … log2(size)-2
  return { addr: start | ones, s: true };
}

/**
 * The smallest naturally aligned power-of-two range (in 4 KiB units) covering `[start, start + size)`,
 * the way Linux builds ATC invalidations (`arm_smmu_atc_inv_to_cmd`: `log2span = fls(first ^ last)`
 * in pages). `size` 0 means everything.
 * @param start - first byte. u64
 * @param size - length in bytes (0: everything)
 * @returns the covering range
 * @throws ErrnoError `EINVAL` if the range runs past 2^64
 */
export function atsCoveringRange(start: bigint, size: bigint): AtsRange {
  if (size === 0n) return { start: 0n, size: U64 };
  if (start < 0n || size < 0n || start + size > U64) throw new ErrnoError('EINVAL', 'ATS range outside u64');
  const first = start >> 12n;
  const last = (start + size - 1n) >> 12n;
  let log2span = 0n;
  for (let x = first ^ last; x !== 0n; x >>= 1n) log2span++;
  const span = 1n << (log2span + 12n);
  return { start: (first << 12n) & ~(span - 1n), size: span };
}

/**
 * Decode an Arm SMMUv3 CMD_ATC_INV range (Address 63:12 and Size 5:0: 2^Size pages of 4 KiB,
 * Address aligned to it; Size ≥ 52 means everything).
 * @param address - the command's Address field as a byte address (bits 11:0 ignored)
 * @param log2Pages - the Size field, 0 … 63
 * @returns the range
 * @throws ErrnoError `EINVAL` for a Size outside 0 … 63
 */
export function atsRangeFromLog2Pages(address: bigint, log2Pages: number): AtsRange {
  if (!Number.isInteger(log2Pages) || log2Pages < 0 || log2Pages > 63)
    throw new ErrnoError('EINVAL', `bad ATC_INV size ${log2Pages}`);
  if (log2Pages >= 52) return { start: 0n, size: U64 };
  const size = 1n << BigInt(log2Pages + 12);
  return { start: address & (U64 - 1n) & ~(size - 1n), size };
}

/**
 * Whether two ranges overlap.
 * @param a - first range
 * @param b - second range
 */
export function atsRangesOverlap(a: AtsRange, b: AtsRange): boolean {
  return a.start < b.start + b.size && b.start < a.start + a.size;
}
