import { describe, expect, it } from 'vitest';
import { type MmioRegion, mmioSubRegion } from './mmio.js';

/** A 256-byte little-endian register file. */
function regs(): MmioRegion & { bytes: DataView } {
  const bytes = new DataView(new ArrayBuffer(256));
  return {
    size: 256,
    bytes,
    readl: (o) => bytes.getUint32(o, true),
    writel: (o, v) => bytes.setUint32(o, v, true),
    readq: (o) => bytes.getBigUint64(o, true),
    writeq: (o, v) => bytes.setBigUint64(o, v, true),
  };
}

describe('mmioSubRegion', () => {
  it('shifts every access by the base offset', () => {
    const r = regs();
    const page1 = mmioSubRegion(r, 0x80);
    expect(page1.size).toBe(0x80);
    page1.writel(0x8, 0xdead_beef);
    expect(r.readl(0x88)).toBe(0xdead_beef);
    page1.writeq(0x10, 0x1122_3344_5566_7788n);
    expect(r.bytes.getUint32(0x90, true)).toBe(0x5566_7788);
    expect(page1.readq(0x10)).toBe(0x1122_3344_5566_7788n);
    expect(page1.readl(0x14)).toBe(0x1122_3344);
  });

  it('refuses a view outside the region', () => {
    const r = regs();
    expect(() => mmioSubRegion(r, 0x100 - 4, 8)).toThrow(RangeError);
    expect(() => mmioSubRegion(r, -4)).toThrow(RangeError);
    expect(mmioSubRegion(r, 0x100).size).toBe(0);
  });
});
