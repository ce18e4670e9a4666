import { describe, expect, it } from 'vitest';
import { VtdRegisterFile } from './register-file.js';

describe('VtdRegisterFile', () => {
  it('applies write masks, write-1-to-clear and write-only bits, in both halves of 64-bit registers', () => {
    const r = new VtdRegisterFile(0x100);
    r.define({ offset: 0x10, size: 8, reset: 0x1_0000_0001n, wmask: 0xffff_0000_0000_ff00n });
    r.define({ offset: 0x20, size: 4, w1cmask: 0x3n });
    r.define({ offset: 0x28, size: 8, wmask: 0xffn, womask: 0xf0n });
    expect(r.read64(0x10)).toBe(0x1_0000_0001n);
    r.write64(0x10, 0xffff_ffff_ffff_ffffn);
    expect(r.read64(0x10)).toBe(0xffff_0001_0000_ff01n);
    r.write32(0x14, 0);
    expect(r.read64(0x10)).toBe(0x0000_0001_0000_ff01n);
    r.set32(0x20, 0x7);
    r.write32(0x20, 0x5);
    expect(r.read32(0x20)).toBe(0x6);
    r.write64(0x28, 0xabn);
    expect(r.read64(0x28)).toBe(0x0bn);
    expect(r.get64(0x28)).toBe(0xabn);
    r.reset();
    expect(r.read64(0x10)).toBe(0x1_0000_0001n);
    expect(r.read32(0x40)).toBe(0); // undefined offsets read 0 and ignore writes
    r.write32(0x40, 5);
    expect(r.read32(0x40)).toBe(0);
  });

  it('rejects misaligned and out-of-window accesses with EINVAL', () => {
    const r = new VtdRegisterFile(0x100);
    expect(() => r.read32(2)).toThrow(/EINVAL/);
    expect(() => r.read64(4)).toThrow(/EINVAL/);
    expect(() => r.write32(0x100, 0)).toThrow(/EINVAL/);
    expect(() => r.define({ offset: 0xfc, size: 8 })).toThrow(/EINVAL/);
  });
});
