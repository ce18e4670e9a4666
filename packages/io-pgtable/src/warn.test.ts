// The warning sink (cfg.warn): called where Linux warns (map onto a mapping, unmap of nothing or
// stopping at a hole, partial unmap of a larger leaf), silenced by quirk NO_WARN except for the
// partial-unmap WARN_ONCE, which Linux prints whatever the quirk says.
import { describe, expect, it } from 'vitest';
import type { IoPgtableCfg } from './cfg.js';
import type { IoPgtableFormat } from './format.js';
import { armLpae64S1Format } from './formats/arm-lpae.js';
import { armV7sFormat } from './formats/arm-v7s.js';
import { vtdSlFormat } from './formats/vtd-sl.js';
import { allocIoPgtableOps, type IoPgtableOps } from './io-pgtable.js';
import { IOMMU_READ, IOMMU_WRITE } from './prot.js';
import { IO_PGTABLE_QUIRK_NO_WARN } from './quirks.js';

const SZ_4K = 0x1000;
const SZ_2M = 0x20_0000;
const RW = IOMMU_READ | IOMMU_WRITE;

function make(format: IoPgtableFormat, quirks: number, over: Partial<IoPgtableCfg> = {}) {
  const warnings: string[] = [];
  const cfg: IoPgtableCfg = {
    quirks,
    pgsizeBitmap: 0x4020_1000n,
    ias: 48,
    oas: 48,
    coherentWalk: true,
    warn: (m) => void warnings.push(m),
    ...over,
  };
  const ops = allocIoPgtableOps(format, cfg, null) as IoPgtableOps;
  expect(ops).not.toBeNull();
  const take = (): string[] => warnings.splice(0, warnings.length);
  return { ops, take };
}

const failing = (fn: () => unknown): void => {
  expect(fn).toThrow(expect.objectContaining({ code: 'EEXIST' }));
};

describe('cfg.warn', () => {
  it.each([
    ['ARM_64_LPAE_S1', armLpae64S1Format],
    ['VTD_SS', vtdSlFormat],
  ] as const)('%s without NO_WARN: map over a mapping, unmap of nothing, stop at a hole', (_n, format) => {
    const { ops, take } = make(format, 0);
    ops.mapPages(0x1000, 0, SZ_4K, 2, RW);
    ops.mapPages(SZ_2M, 0, SZ_2M, 1, RW);
    expect(take()).toEqual([]);
    failing(() => ops.mapPages(0x2000, 0, SZ_4K, 1, RW));
    expect(take()).toEqual([expect.stringMatching(/map: IOVA 0x2000 is already mapped/)]);
    failing(() => ops.mapPages(SZ_2M + SZ_4K, 0, SZ_4K, 1, RW));
    expect(take()).toEqual([expect.stringMatching(/map: IOVA 0x201000 lies inside an existing mapping/)]);
    expect(ops.unmapPages(0x10_0000, SZ_4K, 1, null)).toBe(0);
    expect(take()).toEqual([expect.stringMatching(/unmap: nothing is mapped at IOVA 0x100000/)]);
    // The run stops at the first hole (0x3000), with a warning.
    expect(ops.unmapPages(0x1000, SZ_4K, 3, null)).toBe(2 * SZ_4K);
    expect(take()).toEqual([expect.stringMatching(/unmap: nothing is mapped at IOVA 0x3000/)]);
    expect(ops.unmapPages(SZ_2M + SZ_4K, SZ_4K, 1, null)).toBe(0);
    expect(take()).toEqual([expect.stringMatching(/partial large IOPTE.*0x201000/)]);
  });

  it('NO_WARN silences everything but the partial-unmap WARN_ONCE', () => {
    const { ops, take } = make(armLpae64S1Format, IO_PGTABLE_QUIRK_NO_WARN);
    ops.mapPages(0x1000, 0, SZ_4K, 2, RW);
    ops.mapPages(SZ_2M, 0, SZ_2M, 1, RW);
    failing(() => ops.mapPages(0x2000, 0, SZ_4K, 1, RW));
    failing(() => ops.mapPages(SZ_2M + SZ_4K, 0, SZ_4K, 1, RW));
    expect(ops.unmapPages(0x10_0000, SZ_4K, 1, null)).toBe(0);
    expect(ops.unmapPages(0x1000, SZ_4K, 3, null)).toBe(2 * SZ_4K);
    expect(take()).toEqual([]);
    expect(ops.unmapPages(SZ_2M + SZ_4K, SZ_4K, 1, null)).toBe(0);
    expect(take()).toEqual([expect.stringMatching(/partial large IOPTE/)]);
  });

  it('v7s (no NO_WARN quirk in Linux) warns on EEXIST, on invalid slots of a contiguous unmap, on partial unmaps', () => {
    const { ops, take } = make(armV7sFormat, 0, { pgsizeBitmap: 0x01111000n, ias: 32, oas: 32 });
    ops.mapPages(0x10000, 0, 0x10000, 1, RW);
    ops.mapPages(0x20000, 0, SZ_4K, 1, RW);
    failing(() => ops.mapPages(0x10000, 0, SZ_4K, 1, RW));
    expect(take()).toEqual([expect.stringMatching(/already mapped/)]);
    expect(ops.unmapPages(0x20000, 0x10000, 1, null)).toBe(0);
    expect(take()).toEqual([expect.stringMatching(/nothing is mapped at IOVA 0x21000/)]);
    expect(ops.unmapPages(0x10000, SZ_4K, 1, null)).toBe(0);
    expect(take()).toEqual([expect.stringMatching(/partial large IOPTE/)]);
  });

  it('without a sink nothing is reported and behaviour is unchanged', () => {
    const cfg: IoPgtableCfg = { quirks: 0, pgsizeBitmap: 0x4020_1000n, ias: 48, oas: 48, coherentWalk: true };
    const ops = allocIoPgtableOps(armLpae64S1Format, cfg, null) as IoPgtableOps;
    ops.mapPages(0x1000, 0, SZ_4K, 1, RW);
    failing(() => ops.mapPages(0x1000, 0, SZ_4K, 1, RW));
    expect(ops.unmapPages(0x5000, SZ_4K, 1, null)).toBe(0);
  });
});
