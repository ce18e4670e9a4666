import { describe, expect, it } from 'vitest';
import { dumpIoPgtable, dumpIoPgtableText } from './dump.js';
import { armLpae64S1Format } from './formats/arm-lpae.js';
import { allocIoPgtableOps, type IoPgtableOps } from './io-pgtable.js';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE } from './prot.js';

describe('dump', () => {
  it('shows each level, index, descriptor and decoded attributes', () => {
    const cfg = { quirks: 0, pgsizeBitmap: 0x40201000n, ias: 48, oas: 48, coherentWalk: true };
    const ops = allocIoPgtableOps(armLpae64S1Format, cfg, null) as IoPgtableOps;
    ops.mapPages(0x1000, 0x8000_0000, 0x1000, 1, IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE);
    ops.mapPages(0x4000_0000, 0xc000_0000, 0x4000_0000, 1, IOMMU_READ);
    const d = dumpIoPgtable(ops);
    expect(d.root.level).toBe(0);
    const l1 = d.root.entries[0]?.table;
    expect(l1?.entries.map((e) => [e.index, e.kind])).toEqual([
      [0, 'table'],
      [1, 'leaf'],
    ]);
    const page = l1?.entries[0]?.table?.entries[0]?.table?.entries[0];
    expect(page).toMatchObject({
      index: 1,
      descriptor: '0x0000000080000f47',
      kind: 'leaf',
      iova: '0x1000',
      pa: '0x80000000',
      size: 4096,
    });
    expect(page?.attrs).toMatchObject({ AttrIndx: 1, AP: 1, SH: 3, AF: 1, nG: 1, type: 'page' });
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
    const text = dumpIoPgtableText(ops);
    expect(text).toContain('L3[   1] 0x0000000080000f47 leaf iova 0x1000 → 0x80000000 4K');
    expect(text).toContain('L1[   1] 0x00000000c0000ec1 leaf iova 0x40000000 → 0xc0000000 1G');
  });
});
