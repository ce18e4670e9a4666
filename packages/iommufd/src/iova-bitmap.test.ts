import { ErrnoError } from '@iommu-ts/base';
import { errnoOf } from '@iommu-ts/base/testing';
import { describe, expect, it } from 'vitest';
import type { UserMemory } from './ioctl-dispatch.js';
import { IOVA_BITMAP_WINDOW_BYTES, IommufdDirtyRecorder, IovaBitmap } from './iova-bitmap.js';

/** User memory over a byte array at address 0x1000; everything else faults. */
function fakeMemory(size: number): { mem: UserMemory; bytes: Uint8Array; reads: number } {
  const bytes = new Uint8Array(size);
  const state = { reads: 0 };
  const check = (va: bigint, len: number) => {
    if (va < 0x1000n || va + BigInt(len) > 0x1000n + BigInt(size)) throw new ErrnoError('EFAULT');
    return Number(va - 0x1000n);
  };
  const mem: UserMemory = {
    read(va, len) {
      state.reads++;
      const o = check(va, len);
      return bytes.slice(o, o + len);
    },
    write(va, b) {
      bytes.set(b, check(va, b.length));
    },
  };
  return {
    mem,
    bytes,
    get reads() {
      return state.reads;
    },
  };
}

describe('IovaBitmap', () => {
  it('sets bits relative to iova, clamps to the range, ORs into existing bytes', () => {
    const m = fakeMemory(16);
    m.bytes[0] = 0x80;
    const bm = new IovaBitmap(m.mem, 0x10000n, 64n * 0x1000n, 0x1000n, 0x1001n);
    expect(bm.totalBits).toBe(64n);
    bm.forEach((iova, length) => {
      expect([iova, length]).toEqual([0x10000n, 0x40000n]);
      bm.set(0x10000n, 0x1000n); // bit 0
      bm.set(0x12800n, 0x1000n); // bits 2..3
      bm.set(0x10000n - 0x2000n, 0x3000n); // clamped: bit 0
      bm.set(0x10000n + 62n * 0x1000n, 0x10000n); // bits 62, 63, then past the end
    });
    expect([...m.bytes.slice(0, 10)]).toEqual([0x80, 0x0d, 0, 0, 0, 0, 0, 0, 0xc0, 0]);
  });

  it('page_size that is not a power of two uses its lowest set bit as shift', () => {
    const m = fakeMemory(8);
    const bm = new IovaBitmap(m.mem, 0n, 0x30000n, 0x3000n, 0x1000n);
    expect(bm.pgshift).toBe(12n);
    bm.forEach(() => {
      bm.set(0x5000n, 1n);
    });
    expect(m.bytes[0]).toBe(0x20);
  });

  it('crosses windows and sets bits outside the current window directly', () => {
    const bits = IOVA_BITMAP_WINDOW_BYTES * 8;
    const m = fakeMemory(IOVA_BITMAP_WINDOW_BYTES * 2 + 8);
    const bm = new IovaBitmap(m.mem, 0n, BigInt(bits * 2) * 4096n, 4096n, 0x1000n);
    const windows: bigint[] = [];
    bm.forEach((iova) => {
      windows.push(iova);
      if (windows.length === 1) bm.set(BigInt(bits - 2) * 4096n, 4n * 4096n); // spans both windows
    });
    expect(windows).toEqual([0n, BigInt(bits) * 4096n]);
    expect(m.bytes[IOVA_BITMAP_WINDOW_BYTES - 1]).toBe(0xc0);
    expect(m.bytes[IOVA_BITMAP_WINDOW_BYTES]).toBe(0x03);
  });

  it('EFAULT for an inaccessible window; the recorder gathers the reported range', () => {
    const m = fakeMemory(4);
    const bm = new IovaBitmap(m.mem, 0n, 0x100000n, 0x1000n, 0x10n);
    expect(errnoOf(() => bm.forEach(() => {}))).toBe('EFAULT');
    const ok = new IovaBitmap(m.mem, 0n, 32n * 0x1000n, 0x1000n, 0x1000n);
    const rec = new IommufdDirtyRecorder(ok);
    ok.forEach(() => {
      rec.record(0x3000n, 0x1000n);
      rec.record(0x8000n, 0x2000n);
    });
    expect([...m.bytes]).toEqual([0x08, 0x03, 0, 0]);
    expect([rec.gather.start, rec.gather.end, rec.records]).toEqual([0x3000, 0x9fff, 2]);
  });
});
