// The fast codec (PtFormatInstance.fastCodec) must agree with the format's functions: checked
// entry by entry on random descriptors, and end to end by running the same random operations on a
// walker with the codec and one without it (same bytes in memory, same TLB callbacks, same results).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IoPgtableCfg } from './cfg.js';
import { type IoPgtableFormat, PtEntryKind, type PtFormatInstance } from './format.js';
import { armLpae32S1Format, armLpae64S1Format, armLpae64S2Format } from './formats/arm-lpae.js';
import { createVtdSlFormat } from './formats/vtd-sl.js';
import { createX86_64Format } from './formats/x86-64.js';
import { IommuIotlbGather } from './gather.js';
import { allocIoPgtableOps, freeIoPgtableOps, type IoPgtableOps } from './io-pgtable.js';
import { InMemoryPageTableMemory } from './memory-arena.js';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE } from './prot.js';

const TWO32 = 2 ** 32;

interface Case {
  readonly name: string;
  readonly format: IoPgtableFormat;
  readonly cfg: Omit<IoPgtableCfg, 'memory' | 'tlb'>;
  /** Page sizes to exercise, smallest first. */
  readonly sizes: readonly number[];
}

const base = { quirks: 0, coherentWalk: true } as const;
const CASES: readonly Case[] = [
  {
    name: 'ARM_64_LPAE_S1 4K',
    format: armLpae64S1Format,
    cfg: { ...base, pgsizeBitmap: 0x4020_1000n, ias: 48, oas: 48 },
    sizes: [0x1000, 0x20_0000, 0x4000_0000],
  },
  {
    name: 'ARM_64_LPAE_S2 16K (concatenated)',
    format: armLpae64S2Format,
    cfg: { ...base, pgsizeBitmap: 0x200_4000n, ias: 40, oas: 40 },
    sizes: [0x4000, 0x200_0000],
  },
  {
    name: 'ARM_32_LPAE_S1',
    format: armLpae32S1Format,
    cfg: { ...base, pgsizeBitmap: 0x4020_1000n, ias: 32, oas: 40 },
    sizes: [0x1000, 0x20_0000],
  },
  {
    name: 'X86_64 5-level',
    format: createX86_64Format(),
    cfg: { ...base, pgsizeBitmap: 0x4020_1000n, ias: 57, oas: 52 },
    sizes: [0x1000, 0x20_0000, 0x4000_0000],
  },
  {
    name: 'VTD_SS 3-level',
    format: createVtdSlFormat(),
    cfg: { ...base, pgsizeBitmap: 0x4020_1000n, ias: 39, oas: 52 },
    sizes: [0x1000, 0x20_0000, 0x4000_0000],
  },
];

/** The same format without its fast codec: the walker then calls the format's functions. */
function withoutCodec(format: IoPgtableFormat): IoPgtableFormat {
  return {
    ...format,
    setup(cfg: IoPgtableCfg): PtFormatInstance {
      const { fastCodec: _, ...rest } = format.setup(cfg);
      return rest;
    },
  };
}

describe('fast codec agrees with the format functions, entry by entry', () => {
  const word = fc.oneof(
    fc.nat({ max: 0xffff_ffff }),
    fc.constantFrom(0, 1, 3, 0x80, 0x81, 0x83, 0xffff_ffff),
  );
  it.each(CASES)('$name', ({ format, cfg }) => {
    const inst = format.setup({ ...cfg });
    const fast = inst.fastCodec;
    if (fast === undefined) throw new Error('expected a fast codec');
    expect(fast.kindBitsLo & ~0xff).toBe(0);
    fc.assert(
      fc.property(word, word, fc.nat({ max: inst.levels.length - 1 }), (lo, hi, d) => {
        if (lo === 0 && hi === 0) return;
        const kind = inst.classify(lo, hi, d);
        expect(inst.classify(((lo & fast.kindBitsLo) | 0x8000_0000) >>> 0, 0, d)).toBe(kind);
        if (kind === PtEntryKind.TABLE) {
          expect((hi & fast.tableAddrHi) * TWO32 + ((lo & fast.tableAddrLo) >>> 0)).toBe(
            inst.tablePa(lo, hi, d),
          );
        }
        if (kind === PtEntryKind.LEAF) {
          const la = (hi & (fast.leafAddrHi[d] ?? 0)) * TWO32 + ((lo & (fast.leafAddrLo[d] ?? 0)) >>> 0);
          expect(la).toBe(inst.leafPa(lo, hi, d));
          expect(inst.leafSizeLg2(lo, hi, d)).toBe(inst.levels[d]?.shift);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('formats whose encoding does not fit leave it out (v7s, LPAE 64K granule)', () => {
    const inst = armLpae64S1Format.setup({ ...base, pgsizeBitmap: 0x2001_0000n, ias: 48, oas: 52 });
    expect(inst.fastCodec).toBeUndefined();
  });
});

describe('walker with and without the fast codec: identical bytes, callbacks and results', () => {
  const opArb = fc.record({
    kind: fc.constantFrom('map', 'map', 'unmap', 'lookup'),
    sizeIdx: fc.nat(2),
    slot: fc.nat(63),
    count: fc.integer({ min: 1, max: 600 }),
    pa: fc.nat(1 << 20),
    prot: fc.constantFrom(IOMMU_READ, IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE),
  });

  it.each(CASES)('$name', ({ format, cfg, sizes }) => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 50 }), (ops) => {
        const run = (f: IoPgtableFormat) => {
          const memory = new InMemoryPageTableMemory();
          const log: string[] = [];
          const c: IoPgtableCfg = {
            ...cfg,
            memory,
            tlb: {
              tlbAddPage: (g, iova, size) => void log.push(`add ${g !== null} ${iova} ${size}`),
              tlbFlushWalk: (iova, size, granule) => void log.push(`walk ${iova} ${size} ${granule}`),
              tlbFlushAll: () => void log.push('all'),
            },
            warn: (m) => void log.push(`warn ${m}`),
          };
          const t = allocIoPgtableOps(f, c, null) as IoPgtableOps;
          return { t, memory, log };
        };
        const a = run(format);
        const b = run(withoutCodec(format));
        const span = 8 * (sizes[sizes.length - 1] as number);
        for (const o of ops) {
          const size = sizes[o.sizeIdx % sizes.length] as number;
          const iova = Math.floor((o.slot * span) / 64 / size) * size;
          const count = Math.max(
            1,
            Math.min(o.count, Math.floor((span - iova) / size), size > 0x1000 ? 3 : 600),
          );
          const outcome = (t: IoPgtableOps): string => {
            try {
              if (o.kind === 'map')
                return `mapped ${t.mapPages(iova, (o.pa % 4096) * size, size, count, o.prot)}`;
              if (o.kind === 'unmap')
                return `unmapped ${t.unmapPages(iova, size, count, new IommuIotlbGather())}`;
              return `pa ${t.iovaToPhys(iova + 0x123)} ${t.iovaToPhys(iova + size - 1)}`;
            } catch (e) {
              return `error ${(e as { code: string }).code} ${(e as { mapped: number }).mapped}`;
            }
          };
          expect(outcome(a.t)).toBe(outcome(b.t));
        }
        expect(a.log).toEqual(b.log);
        const ta = a.memory.tables();
        expect(b.memory.tables()).toEqual(ta);
        for (const { pa, bytes } of ta) {
          const va = a.memory.tableView(pa);
          const vb = b.memory.tableView(pa);
          const wa = va.words.subarray(va.index, va.index + bytes / 4);
          const wb = vb.words.subarray(vb.index, vb.index + bytes / 4);
          expect(
            Buffer.from(wa.buffer, wa.byteOffset, wa.byteLength).equals(
              Buffer.from(wb.buffer, wb.byteOffset, wb.byteLength),
            ),
          ).toBe(true);
        }
        freeIoPgtableOps(a.t);
        freeIoPgtableOps(b.t);
        expect(a.memory.liveTables).toBe(0);
      }),
      { numRuns: 25, seed: 777 },
    );
  });
});
