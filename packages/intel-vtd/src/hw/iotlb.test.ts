import { describe, expect, it } from 'vitest';
import {
  IOTLB_KIND_FL,
  IOTLB_KIND_NESTED,
  IOTLB_KIND_SL,
  IOTLB_NO_PASID,
  iotlbTag,
  VTD_PERM_PR,
  VTD_PERM_PW,
  VTD_PERM_UX,
  VtdIotlb,
  type VtdIotlbEntryInit,
  vtdPermBit,
} from './iotlb.js';

function leaf(over: Partial<VtdIotlbEntryInit>): VtdIotlbEntryInit {
  return {
    did: 1,
    pasid: IOTLB_NO_PASID,
    kind: IOTLB_KIND_SL,
    pfn: 0,
    shift: 12,
    outputBase: 0x4000_0000,
    perm: VTD_PERM_PR | VTD_PERM_PW,
    dirty: true,
    global: false,
    ...over,
  };
}

describe('VtdIotlb', () => {
  it('tags by DID and PASID and finds 4K, 2M and 1G entries', () => {
    const t = new VtdIotlb();
    t.insert(leaf({ pfn: 5 }));
    t.insert(leaf({ pfn: 0x200 + 7, shift: 21, outputBase: 0x4020_0000 }));
    t.insert(leaf({ pfn: 0x40000 + 9, shift: 30, outputBase: 0x4000_0000, pasid: 3 }));
    expect(t.lookup(1, IOTLB_NO_PASID, 5)?.outputBase).toBe(0x4000_0000);
    expect(t.lookup(1, IOTLB_NO_PASID, 0x3ff)).toMatchObject({ pfn: 0x200, shift: 21 });
    expect(t.lookup(1, 3, 0x7ffff)).toMatchObject({ pfn: 0x40000, shift: 30 });
    expect(t.lookup(2, IOTLB_NO_PASID, 5)).toBeUndefined();
    expect(t.lookup(1, 0, 5)).toBeUndefined();
    expect(t.stats).toMatchObject({ hits: 3, misses: 2, inserts: 3 });
    expect(iotlbTag(1, IOTLB_NO_PASID)).toBe(2 ** 21);
  });

  it('evicts the oldest entry when full and replaces same-key entries', () => {
    const t = new VtdIotlb({ capacity: 2 });
    t.insert(leaf({ pfn: 1 }));
    t.insert(leaf({ pfn: 2 }));
    t.insert(leaf({ pfn: 2, outputBase: 0x5000_0000 }));
    expect(t.size).toBe(2);
    t.insert(leaf({ pfn: 3 }));
    expect(t.entries().map((e) => e.pfn)).toEqual([2, 3]);
    expect(t.lookup(1, IOTLB_NO_PASID, 2)?.outputBase).toBe(0x5000_0000);
    expect(t.stats.evictions).toBe(1);
  });

  it('page-selective invalidation honours AM alignment and keeps other domains', () => {
    const t = new VtdIotlb();
    for (const pfn of [0x10, 0x17, 0x18, 0x1f]) t.insert(leaf({ pfn }));
    t.insert(leaf({ pfn: 0x10, did: 2 }));
    t.insert(leaf({ pfn: 0, shift: 21 })); // 2 MiB entry covering 0 … 0x1ff
    t.invalidatePage(1, 0x13000n, 3, false); // 8 pages from 0x10
    expect(t.entries().map((e) => [e.did, e.pfn, e.shift])).toEqual([
      [1, 0x18, 12],
      [1, 0x1f, 12],
      [2, 0x10, 12],
    ]);
    t.invalidatePage(1, 0x1f000n, 0, false);
    expect(t.entries().map((e) => e.pfn)).toEqual([0x18, 0x10]);
  });

  it('type-2 PSI drops every first-stage / nested entry of the DID; type-6 PSI only first-stage ones in range', () => {
    const t = new VtdIotlb();
    t.insert(leaf({ pasid: 1, kind: IOTLB_KIND_FL, pfn: 0x100 }));
    t.insert(leaf({ pasid: 1, kind: IOTLB_KIND_NESTED, pfn: 0x200 }));
    t.insert(leaf({ pasid: 1, kind: IOTLB_KIND_SL, pfn: 0x300 }));
    t.invalidatePasidPage(1, 1, 0x300000n, 0, false);
    expect(t.size).toBe(3);
    t.invalidatePasidPage(1, 1, 0x200000n, 0, false);
    expect(t.entries().map((e) => e.kind)).toEqual([IOTLB_KIND_FL, IOTLB_KIND_SL]);
    t.invalidatePage(1, 0x999000n, 0, false);
    expect(t.entries().map((e) => e.kind)).toEqual([IOTLB_KIND_SL]);
    t.invalidatePasid(1, 2);
    expect(t.size).toBe(1);
    t.invalidatePasid(1, 1);
    expect(t.size).toBe(0);
  });

  it('paging-structure entries: deepest first, kept by IH = 1, dropped by IH = 0 in range', () => {
    const t = new VtdIotlb();
    t.pdeInsert(1, IOTLB_NO_PASID, IOTLB_KIND_SL, 4, 0x12345, 0x4000_1000, 3);
    t.pdeInsert(1, IOTLB_NO_PASID, IOTLB_KIND_SL, 2, 0x12345, 0x4000_3000, 1);
    expect(t.pdeLookup(1, IOTLB_NO_PASID, IOTLB_KIND_SL, 0x12300, 4)).toMatchObject({
      level: 2,
      table: 0x4000_3000,
      acc: 1,
    });
    expect(t.pdeLookup(1, IOTLB_NO_PASID, IOTLB_KIND_SL, 0x12345 + 512, 4)).toMatchObject({ level: 4 });
    expect(t.pdeLookup(1, IOTLB_NO_PASID, IOTLB_KIND_FL, 0x12345, 4)).toBeUndefined();
    // Level 4 is the top: not looked up.
    expect(t.pdeLookup(1, IOTLB_NO_PASID, IOTLB_KIND_SL, 0x12345 + 512, 3)).toBeUndefined();
    t.invalidatePage(1, 0x12345000n, 0, true);
    expect(t.pdeSize).toBe(2);
    t.invalidatePage(1, 0x100_0000_0000n, 0, false); // outside both regions (beyond 512 GiB)
    expect(t.pdeSize).toBe(2);
    t.invalidatePage(1, 0x12345000n, 0, false);
    expect(t.pdeSize).toBe(0);
  });

  it('global and domain invalidations clear both caches', () => {
    const t = new VtdIotlb({ pdeCapacity: 1 });
    t.insert(leaf({ did: 1 }));
    t.insert(leaf({ did: 2 }));
    t.pdeInsert(2, IOTLB_NO_PASID, IOTLB_KIND_SL, 2, 0, 0x4000_0000, 3);
    t.pdeInsert(1, IOTLB_NO_PASID, IOTLB_KIND_SL, 2, 0, 0x4000_0000, 3); // evicts the DID 2 entry
    expect(t.pdeEntries().map((p) => p.table)).toEqual([0x4000_0000]);
    t.invalidateDomain(1);
    expect(t.entries().map((e) => e.did)).toEqual([2]);
    expect(t.pdeSize).toBe(0);
    t.invalidateGlobal();
    expect(t.size).toBe(0);
  });

  it('vtdPermBit selects the user/supervisor read/write/execute bit', () => {
    expect(vtdPermBit(false, false, true)).toBe(VTD_PERM_PR);
    expect(vtdPermBit(true, false, true)).toBe(VTD_PERM_PW);
    expect(vtdPermBit(false, true, false)).toBe(VTD_PERM_UX);
  });
});
