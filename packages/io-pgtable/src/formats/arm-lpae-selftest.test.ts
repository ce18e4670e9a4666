// The kernel's LPAE self-tests (io-pgtable-arm-selftests.c, KUnit; and the boot-time selftest's
// partial-unmap scenario in its current-kernel form) re-expressed for every granule and size.
import { describe, expect, it } from 'vitest';
import type { IoPgtableCfg } from '../cfg.js';
import type { IoPgtableFormat } from '../format.js';
import { IommuIotlbGather } from '../gather.js';
import { allocIoPgtableOps, freeIoPgtableOps, type IoPgtableOps } from '../io-pgtable.js';
import { InMemoryPageTableMemory } from '../memory-arena.js';
import { IOMMU_CACHE, IOMMU_NOEXEC, IOMMU_READ, IOMMU_WRITE } from '../prot.js';
import { IO_PGTABLE_QUIRK_NO_WARN } from '../quirks.js';
import { armLpae32S1Format, armLpae32S2Format, armLpae64S1Format, armLpae64S2Format } from './arm-lpae.js';

const SZ_1G = 2 ** 30;
const PGSIZES = [0x1000n | 0x200000n | 0x40000000n, 0x4000n | 0x2000000n, 0x10000n | 0x20000000n];
const ADDRS = [32, 36, 40, 42, 44, 48];

function sizesOf(bm: bigint): number[] {
  const out: number[] = [];
  for (let b = 0; b < 64; b++) if ((bm >> BigInt(b)) & 1n) out.push(2 ** b);
  return out;
}

/** Runs the KUnit scenario; returns a failure description or null. */
function runSelftest(format: IoPgtableFormat, pgsizeBitmap: bigint, ias: number, oas: number): string | null {
  const mem = new InMemoryPageTableMemory();
  const bad: string[] = [];
  const cfg: IoPgtableCfg = {
    quirks: IO_PGTABLE_QUIRK_NO_WARN,
    pgsizeBitmap,
    ias,
    oas,
    coherentWalk: true,
    memory: mem,
    tlb: {
      tlbFlushAll: (c) => void (c !== cfg && bad.push('flushAll cookie')),
      tlbFlushWalk: (_i, size, _g, c) => {
        if (c !== cfg) bad.push('flushWalk cookie');
        if ((cfg.pgsizeBitmap & BigInt(size)) === 0n) bad.push(`flushWalk size ${size}`);
      },
      tlbAddPage: (_g, _i, size, c) => {
        if (c !== cfg) bad.push('addPage cookie');
        if ((cfg.pgsizeBitmap & BigInt(size)) === 0n) bad.push(`addPage size ${size}`);
      },
    },
  };
  const ops = allocIoPgtableOps(format, cfg, cfg);
  if (ops === null) return 'alloc failed';
  const fail = (m: string): string => {
    freeIoPgtableOps(ops);
    return m;
  };
  if (ops.iovaToPhys(42) !== 0 || ops.iovaToPhys(SZ_1G + 42) !== 0 || ops.iovaToPhys(2 * SZ_1G + 42) !== 0) {
    return fail('empty lookup');
  }
  const sizes = sizesOf(cfg.pgsizeBitmap);
  // iova = 0, 1G, 2G, … (the kernel's walk); a size above 1G (4T) goes to its next aligned address.
  const iovas: number[] = [];
  let next = 0;
  for (const size of sizes) {
    const at = Math.ceil(next / size) * size;
    iovas.push(at);
    next = at + SZ_1G;
  }
  for (const [k, size] of sizes.entries()) {
    const iova = iovas[k] as number;
    if (ops.mapPages(iova, iova, size, 1, IOMMU_READ | IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_CACHE) !== size) {
      return fail('map');
    }
    let threw = false;
    try {
      ops.mapPages(iova, iova + size, size, 1, IOMMU_READ | IOMMU_NOEXEC);
    } catch {
      threw = true;
    }
    if (!threw) return fail('overlapping map succeeded');
    for (const probe of [42, size / 2, size - 1]) {
      if (ops.iovaToPhys(iova + probe) !== iova + probe) return fail(`lookup ${size} +${probe}`);
    }
  }
  const gather = new IommuIotlbGather();
  for (const [k, size] of sizes.entries()) {
    const iova = iovas[k] as number;
    if (ops.unmapPages(iova, size, 1, gather) !== size) return fail(`unmap ${size}`);
    if (ops.iovaToPhys(iova + 42) !== 0) return fail('lookup after unmap');
    if (ops.mapPages(iova, iova, size, 1, IOMMU_WRITE) !== size) return fail('remap');
    if (ops.iovaToPhys(iova + 42) !== iova + 42) return fail('lookup after remap');
  }
  const largest = sizes[sizes.length - 1] as number;
  const last = 2 ** cfg.ias - largest;
  if (ops.mapPages(last, 0, largest, 1, IOMMU_READ | IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_CACHE) !== largest) {
    return fail('map last');
  }
  if (ops.iovaToPhys(last + largest - 1) !== largest - 1) return fail('lookup last byte');
  if (ops.unmapPages(last, largest, 1, null) !== largest) return fail('unmap last');
  freeIoPgtableOps(ops);
  if (mem.liveTables !== 0) return `leaked ${mem.liveTables} tables`;
  return bad.length > 0 ? bad.join(', ') : null;
}

describe('LPAE KUnit self-test matrix (io-pgtable-arm-selftests.c)', () => {
  for (const format of [armLpae64S1Format, armLpae64S2Format]) {
    for (const bm of PGSIZES) {
      it(`${format.name} pgsizes 0x${bm.toString(16)}: every oas × ias ≤ oas passes`, () => {
        const failures: string[] = [];
        for (const oas of ADDRS) {
          for (const ias of ADDRS) {
            if (ias > oas) continue;
            const r = runSelftest(format, bm, ias, oas);
            if (r !== null) failures.push(`ias ${ias} oas ${oas}: ${r}`);
          }
        }
        expect(failures).toEqual([]);
      });
    }
  }

  it('64K granule with 52-bit ias/oas, 4T blocks included', () => {
    for (const format of [armLpae64S1Format, armLpae64S2Format]) {
      expect(runSelftest(format, 0x10000n | 0x20000000n | (1n << 42n), 52, 52)).toBeNull();
    }
  });

  it('32-bit LPAE formats within their address limits', () => {
    for (const [format, maxIas] of [
      [armLpae32S1Format, 32],
      [armLpae32S2Format, 40],
    ] as const) {
      for (const ias of ADDRS.filter((a) => a <= maxIas)) {
        for (const oas of ADDRS.filter((a) => a >= ias && a <= 40)) {
          expect(
            runSelftest(format, PGSIZES[0] as bigint, ias, oas),
            `${format.name} ${ias}/${oas}`,
          ).toBeNull();
        }
      }
    }
  });
});

describe('partial unmap of a block (current kernel, §2.10)', () => {
  for (const format of [armLpae64S1Format, armLpae64S2Format]) {
    for (const bm of PGSIZES) {
      it(`${format.name} 0x${bm.toString(16)}: unmapping a page inside a block returns 0 and the block stays`, () => {
        const cfg: IoPgtableCfg = {
          quirks: IO_PGTABLE_QUIRK_NO_WARN,
          pgsizeBitmap: bm,
          ias: 48,
          oas: 48,
          coherentWalk: true,
        };
        const ops = allocIoPgtableOps(format, cfg, null) as IoPgtableOps;
        const [small, block] = sizesOf(cfg.pgsizeBitmap) as [number, number];
        ops.mapPages(SZ_1G, SZ_1G, block, 1, IOMMU_READ | IOMMU_WRITE);
        expect(ops.unmapPages(SZ_1G + small, small, 1, null)).toBe(0);
        expect(ops.iovaToPhys(SZ_1G + small + 42)).toBe(SZ_1G + small + 42);
        // Remapping the small page over the block fails: the block is still there.
        expect(() => ops.mapPages(SZ_1G + small, small, small, 1, IOMMU_READ)).toThrow(/EEXIST/);
        expect(ops.unmapPages(SZ_1G, block, 1, null)).toBe(block);
        freeIoPgtableOps(ops);
      });
    }
  }
});
