// Property test for the x86-64 and VT-d second-stage formats through the ops API: random 4K/2M
// maps and unmaps in an 8 MiB window against a model; lookups agree, errors and returned sizes
// agree, table counts agree, and freeing returns every table to the arena.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IoPgtableFormat } from '../format.js';
import { freeIoPgtableOps } from '../io-pgtable.js';
import { IOMMU_READ, IOMMU_WRITE } from '../prot.js';
import { vtdSlFormat } from './vtd-sl.js';
import { x86_64Format } from './x86-64.js';
import { x86ErrnoOf, x86Harness } from './x86-common.test-helpers.js';

const SZ_4K = 0x1000;
const SZ_2M = 0x20_0000;
const SLOTS = 4;
const PAGES = SLOTS * 512;

type Op =
  | { readonly t: 'map4k'; readonly page: number; readonly pfn: number }
  | { readonly t: 'map2m'; readonly slot: number; readonly pfn: number }
  | { readonly t: 'unmap4k'; readonly page: number }
  | { readonly t: 'unmap2m'; readonly slot: number };

// Pages cluster in a few spots so that maps and unmaps meet each other.
const pageArb = fc.oneof(
  fc.integer({ min: 0, max: PAGES - 1 }),
  fc.constantFrom(0, 1, 511, 512, 513, 1023, 1536, PAGES - 1),
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('map4k' as const),
      page: pageArb,
      pfn: fc.integer({ min: 0, max: 2 ** 40 - 1 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('map2m' as const),
      slot: fc.integer({ min: 0, max: SLOTS - 1 }),
      pfn: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('unmap4k' as const), page: pageArb }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('unmap2m' as const),
      slot: fc.integer({ min: 0, max: SLOTS - 1 }),
    }),
  },
);

interface Config {
  readonly name: string;
  readonly format: IoPgtableFormat;
  readonly ias: number;
  /** First IOVA of the window (2 MiB aligned). */
  readonly base: bigint;
}

const configs: Config[] = [
  {
    name: 'x86-64 4-level, top of the lower half',
    format: x86_64Format,
    ias: 48,
    base: 2n ** 47n - 8n * 2n ** 20n,
  },
  { name: 'x86-64 4-level, upper half', format: x86_64Format, ias: 48, base: 0xffff_8000_0000_0000n },
  {
    name: 'x86-64 5-level, top of the upper half',
    format: x86_64Format,
    ias: 57,
    base: 2n ** 64n - 8n * 2n ** 20n,
  },
  { name: 'VT-d SL 3-level, top', format: vtdSlFormat, ias: 39, base: 2n ** 39n - 8n * 2n ** 20n },
  { name: 'VT-d SL 4-level, bottom', format: vtdSlFormat, ias: 48, base: 0n },
  { name: 'VT-d SL 5-level, top', format: vtdSlFormat, ias: 57, base: 2n ** 57n - 8n * 2n ** 20n },
];

for (const c of configs) {
  describe(`${c.name}: random map/unmap against a model`, () => {
    it('agrees with the model and frees everything', () => {
      fc.assert(
        fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
          const h = x86Harness(c.format, { ias: c.ias });
          const levels = h.fmt.levels.length;
          const small = new Map<number, number>();
          const big = new Map<number, number>();
          const tables = new Set<number>();
          let touched = false;
          const iovaOfPage = (page: number): bigint => c.base + BigInt(page * SZ_4K);

          const expectedPa = (page: number): number => {
            const b = big.get(Math.floor(page / 512));
            if (b !== undefined) return b + (page % 512) * SZ_4K;
            return small.get(page) ?? -1;
          };
          const checkPage = (page: number): void => {
            const pa = expectedPa(page);
            const got = h.ops.iovaToPhys(iovaOfPage(page) + 0x7bn);
            // Plain comparison first: expect() is slow in a loop of thousands.
            if (got !== (pa < 0 ? 0 : pa + 0x7b))
              expect({ page, got }).toEqual({ page, got: pa < 0 ? 0 : pa + 0x7b });
          };

          for (const op of ops) {
            let slot: number;
            if (op.t === 'map4k') {
              slot = Math.floor(op.page / 512);
              const pa = op.pfn * SZ_4K;
              const expected = big.has(slot) || small.has(op.page) ? 'EEXIST' : 'none';
              touched = true;
              expect(
                x86ErrnoOf(() => h.ops.mapPages(iovaOfPage(op.page), pa, SZ_4K, 1, IOMMU_READ | IOMMU_WRITE)),
              ).toBe(expected);
              if (expected === 'none') {
                small.set(op.page, pa);
                tables.add(slot);
              }
            } else if (op.t === 'map2m') {
              slot = op.slot;
              const pa = op.pfn * SZ_2M;
              let inUse = false;
              for (let p = slot * 512; p < slot * 512 + 512; p++) if (small.has(p)) inUse = true;
              const expected = big.has(slot) || inUse ? 'EEXIST' : 'none';
              touched = true;
              expect(
                x86ErrnoOf(() => h.ops.mapPages(iovaOfPage(slot * 512), pa, SZ_2M, 1, IOMMU_WRITE)),
              ).toBe(expected);
              if (expected === 'none') {
                big.set(slot, pa);
                tables.delete(slot);
              }
            } else if (op.t === 'unmap4k') {
              slot = Math.floor(op.page / 512);
              const expected = !big.has(slot) && small.has(op.page) ? SZ_4K : 0;
              expect(h.ops.unmapPages(iovaOfPage(op.page), SZ_4K, 1, null)).toBe(expected);
              if (expected !== 0) small.delete(op.page);
            } else {
              slot = op.slot;
              let expected = 0;
              if (big.has(slot)) {
                expected = SZ_2M;
                big.delete(slot);
              } else if (tables.has(slot)) {
                expected = SZ_2M;
                tables.delete(slot);
                for (let p = slot * 512; p < slot * 512 + 512; p++) small.delete(p);
              }
              expect(h.ops.unmapPages(iovaOfPage(slot * 512), SZ_2M, 1, null)).toBe(expected);
            }
            for (let p = slot * 512; p < slot * 512 + 512; p += 37) checkPage(p);
            if (op.t === 'map4k' || op.t === 'unmap4k') checkPage(op.page);
            // Top table, the tables down to the 2M level once anything was mapped, one table per
            // slot that holds 4K pages (or held them: emptied tables stay until replaced).
            expect(h.mem.liveTables).toBe(1 + (touched ? levels - 2 : 0) + tables.size);
          }
          for (let p = 0; p < PAGES; p++) checkPage(p);
          freeIoPgtableOps(h.ops);
          expect(h.mem.liveTables).toBe(0);
        }),
        { numRuns: 60 },
      );
    });
  });
}
