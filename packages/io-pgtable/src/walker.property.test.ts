// Property test: random map/unmap of mixed page and block sizes against a model interval map.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IoPgtableCfg } from './cfg.js';
import type { IoPgtableFormat } from './format.js';
import { armLpae64S1Format, armLpae64S2Format } from './formats/arm-lpae.js';
import { IommuIotlbGather } from './gather.js';
import { allocIoPgtableOps, freeIoPgtableOps, type IoPgtableOps } from './io-pgtable.js';
import { InMemoryPageTableMemory } from './memory-arena.js';
import { IOMMU_READ, IOMMU_WRITE } from './prot.js';
import { IO_PGTABLE_QUIRK_NO_WARN } from './quirks.js';

interface Mapping {
  iova: number;
  pa: number;
  size: number;
}

/** The model: a sorted-free list of leaf mappings (each of one supported size). */
class Model {
  readonly leaves: Mapping[] = [];
  find(iova: number): Mapping | undefined {
    return this.leaves.find((m) => iova >= m.iova && iova < m.iova + m.size);
  }
  overlaps(iova: number, len: number): boolean {
    return this.leaves.some((m) => m.iova < iova + len && iova < m.iova + m.size);
  }
}

const op = fc.record({
  kind: fc.constantFrom('map', 'map', 'unmap'),
  sizeIdx: fc.nat(2),
  slot: fc.nat(47),
  count: fc.integer({ min: 1, max: 40 }),
  pa: fc.nat(1 << 20),
});

function check(format: IoPgtableFormat, bm: bigint, sizes: number[], span: number): void {
  fc.assert(
    fc.property(
      fc.array(op, { minLength: 1, maxLength: 40 }),
      fc.array(fc.nat(), { minLength: 16, maxLength: 16 }),
      (ops, probes) => {
        const mem = new InMemoryPageTableMemory();
        const flushed: Array<[number, number]> = [];
        const cfg: IoPgtableCfg = {
          quirks: IO_PGTABLE_QUIRK_NO_WARN,
          pgsizeBitmap: bm,
          ias: 48,
          oas: 48,
          coherentWalk: true,
          memory: mem,
          tlb: {
            tlbAddPage: (_g, i, s) => void flushed.push([i, s]),
            tlbFlushWalk: (i, s) => void flushed.push([i, s]),
          },
        };
        const t = allocIoPgtableOps(format, cfg, null) as IoPgtableOps;
        const model = new Model();
        for (const o of ops) {
          const size = sizes[o.sizeIdx % sizes.length] as number;
          // Addresses cluster within `span` so that blocks and pages collide often.
          const iova = Math.floor((o.slot * span) / 48 / size) * size;
          const count = Math.min(o.count, size >= span / 8 ? 2 : o.count);
          if (o.kind === 'map') {
            const pa = (o.pa % 4096) * size;
            let mapped = 0;
            let err: string | undefined;
            try {
              mapped = t.mapPages(iova, pa, size, count, IOMMU_READ | IOMMU_WRITE);
            } catch (e) {
              mapped = (e as { mapped: number }).mapped;
              err = (e as { code: string }).code;
            }
            // Model: the page-granular outcome, mapped pages are a prefix.
            for (let k = 0; k < mapped / size; k++) {
              // Map over an emptied/partly-filled table of smaller pages frees its leaves too.
              const at = iova + k * size;
              for (let j = model.leaves.length - 1; j >= 0; j--) {
                const m = model.leaves[j] as Mapping;
                if (m.iova >= at && m.iova < at + size) model.leaves.splice(j, 1);
              }
              model.leaves.push({ iova: at, pa: pa + k * size, size });
            }
            if (err !== undefined) {
              expect(err).toBe('EEXIST');
              // Something of the rest of the request really is mapped already (Linux checks a whole
              // run within one table before writing it, so the collision may be further on).
              expect(model.overlaps(iova + mapped, size * count - mapped)).toBe(true);
              // Linux removes tables met in the failing run before the colliding slot.
              const runSpan = (size * (sizes[0] as number)) / 8;
              const end = Math.min(
                iova + size * count,
                (Math.floor((iova + mapped) / runSpan) + 1) * runSpan,
              );
              for (let at = iova + mapped; at < end; at += size) {
                if (model.leaves.some((m) => m.size >= size && m.iova < at + size && at < m.iova + m.size))
                  break;
                for (let j = model.leaves.length - 1; j >= 0; j--) {
                  const m = model.leaves[j] as Mapping;
                  if (m.iova >= at && m.iova < at + size) model.leaves.splice(j, 1);
                }
              }
            } else {
              expect(mapped).toBe(size * count);
            }
          } else {
            flushed.length = 0;
            const got = t.unmapPages(iova, size, count, new IommuIotlbGather());
            // Model of Linux: remove whole `size` slots in order, stop at a hole or a larger leaf.
            let expected = 0;
            for (let k = 0; k < count; k++) {
              const at = iova + k * size;
              const big = model.leaves.find((m) => m.size > size && at >= m.iova && at < m.iova + m.size);
              const inside = model.leaves.filter((m) => m.size <= size && m.iova >= at && m.iova < at + size);
              if (big !== undefined) break;
              // An exactly-sized leaf, or a table (possibly empty) — the page table knows about
              // emptied tables, the model does not: accept either outcome for empty tables.
              if (inside.length === 0 && got <= expected) break;
              for (const m of inside) model.leaves.splice(model.leaves.indexOf(m), 1);
              expected += size;
            }
            expect(got).toBe(expected);
            // TLB callbacks cover every unmapped byte.
            for (let a = iova; a < iova + got; a += size) {
              expect(flushed.some(([i, s]) => a >= i && a + size <= i + s)).toBe(true);
            }
          }
          for (const p of probes) {
            const probe = p % span;
            const m = model.find(probe);
            expect(t.iovaToPhys(probe)).toBe(m === undefined ? 0 : m.pa + (probe - m.iova));
          }
          for (const m of model.leaves) expect(t.iovaToPhys(m.iova + m.size - 1)).toBe(m.pa + m.size - 1);
        }
        freeIoPgtableOps(t);
        expect(mem.liveTables).toBe(0);
      },
    ),
    { numRuns: 60, seed: 4242 },
  );
}

describe('walker vs model interval map', () => {
  it('ARM_64_LPAE_S1 4K granule: 4K / 2M / 1G', () => {
    check(
      armLpae64S1Format,
      0x1000n | 0x200000n | 0x40000000n,
      [0x1000, 0x200000, 0x40000000],
      4 * 0x40000000,
    );
  });
  it('ARM_64_LPAE_S2 16K granule: 16K / 32M', () => {
    check(armLpae64S2Format, 0x4000n | 0x2000000n, [0x4000, 0x2000000], 8 * 0x2000000);
  });
  it('ARM_64_LPAE_S1 64K granule: 64K / 512M', () => {
    check(armLpae64S1Format, 0x10000n | 0x20000000n, [0x10000, 0x20000000], 8 * 0x20000000);
  });
});
