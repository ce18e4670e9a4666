import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ATS_RANGE_ALL,
  atsCoveringRange,
  atsDecodeRange,
  atsEncodeRange,
  atsRangeFromLog2Pages,
  atsRangesOverlap,
} from './ats-range.js';

describe('PCIe ATS range encoding', () => {
  it('decodes S=0 as one 4 KiB page and S=1 from the low one bits', () => {
    expect(atsDecodeRange(0x1234_5fffn, false)).toEqual({ start: 0x1234_5000n, size: 0x1000n });
    expect(atsDecodeRange(0x4000n, true)).toEqual({ start: 0x4000n, size: 0x2000n });
    // Ones at bits 12 and 13, zero at 14 → 2^(2+13) = 32 KiB.
    expect(atsDecodeRange(0x10_3000n, true)).toEqual({ start: 0x10_0000n, size: 0x8000n });
    expect(atsDecodeRange(ATS_RANGE_ALL.addr, ATS_RANGE_ALL.s)).toEqual({ start: 0n, size: 1n << 64n });
    expect(() => atsDecodeRange(0xffff_ffff_ffff_f000n, true)).toThrow(/terminating/);
  });

  it('encodes as Linux/VT-d do: 2^m pages set bits 12 … 12+m-2', () => {
    expect(atsEncodeRange(0x5000n, 0x1000n)).toEqual({ addr: 0x5000n, s: false });
    expect(atsEncodeRange(0x8000n, 0x2000n)).toEqual({ addr: 0x8000n, s: true });
    expect(atsEncodeRange(0x10_0000n, 0x10_0000n)).toEqual({ addr: 0x17_f000n, s: true });
    expect(atsEncodeRange(0n, 1n << 64n)).toEqual(ATS_RANGE_ALL);
    expect(() => atsEncodeRange(0x1000n, 0x2000n)).toThrow(/aligned/);
    expect(() => atsEncodeRange(0n, 0x3000n)).toThrow(/power of two/);
  });

  it('round-trips every aligned power-of-two range', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 12, max: 64 }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        (log2, a) => {
          const size = 1n << BigInt(log2);
          const start = log2 === 64 ? 0n : a & ~(size - 1n);
          const enc = atsEncodeRange(start, size);
          expect(atsDecodeRange(enc.addr, enc.s)).toEqual({ start, size });
        },
      ),
    );
  });

  it('covers a byte range with the smallest aligned power of two (arm_smmu_atc_inv_to_cmd)', () => {
    expect(atsCoveringRange(0x42000n, 0x2000n)).toEqual({ start: 0x42000n, size: 0x2000n });
    expect(atsCoveringRange(0x41000n, 0x2000n)).toEqual({ start: 0x40000n, size: 0x4000n });
    expect(atsCoveringRange(0x1234n, 1n)).toEqual({ start: 0x1000n, size: 0x1000n });
    expect(atsCoveringRange(0n, 0n)).toEqual({ start: 0n, size: 1n << 64n });
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 48n) - 1n }),
        fc.bigInt({ min: 1n, max: 1n << 32n }),
        (s, n) => {
          const r = atsCoveringRange(s, n);
          expect(r.start <= s && s + n <= r.start + r.size).toBe(true);
          expect(r.start % r.size).toBe(0n);
        },
      ),
    );
  });

  it('decodes SMMU CMD_ATC_INV Size fields', () => {
    expect(atsRangeFromLog2Pages(0x12_3000n, 2)).toEqual({ start: 0x12_0000n, size: 0x4000n });
    expect(atsRangeFromLog2Pages(0x12_3000n, 52)).toEqual({ start: 0n, size: 1n << 64n });
    expect(() => atsRangeFromLog2Pages(0n, 64)).toThrow();
    expect(atsRangesOverlap({ start: 0n, size: 0x1000n }, { start: 0x1000n, size: 0x1000n })).toBe(false);
    expect(atsRangesOverlap({ start: 0n, size: 0x2000n }, { start: 0x1000n, size: 0x1000n })).toBe(true);
  });
});
