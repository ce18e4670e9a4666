import { describe, expect, it } from 'vitest';
import { INVALID_IOASID, IoasidSetType } from './constants.js';
import { IOMMU_FIRST_GLOBAL_PASID, IOMMU_PASID_INVALID } from './global-pasid.js';
import { IoasidSubsystem } from './ioasid-subsystem.js';

describe('global PASID allocator (iommu-core §9)', () => {
  it('allocates the lowest free PASID in [1, maxPasids - 1]', () => {
    const sub = new IoasidSubsystem();
    expect(IOMMU_FIRST_GLOBAL_PASID).toBe(1);
    expect(IOMMU_PASID_INVALID).toBe(INVALID_IOASID);
    expect(sub.allocGlobalPasid(0)).toBe(IOMMU_PASID_INVALID);
    expect(sub.allocGlobalPasid(1)).toBe(IOMMU_PASID_INVALID);
    expect(sub.allocGlobalPasid(4)).toBe(1);
    expect(sub.allocGlobalPasid(4)).toBe(2);
    expect(sub.allocGlobalPasid(4)).toBe(3);
    expect(sub.allocGlobalPasid(4)).toBe(IOMMU_PASID_INVALID);
    sub.freeGlobalPasid(2);
    expect(sub.allocGlobalPasid(4)).toBe(2);
    expect(sub.allocGlobalPasid(0x1_0000_0000 - 1)).toBe(4);
    expect(() => sub.allocGlobalPasid(-1)).toThrow(RangeError);
  });

  it('shares the ID space with IOASID sets', () => {
    const logs: Array<[string, string]> = [];
    const sub = new IoasidSubsystem({ log: (l, m) => logs.push([l, m]) });
    const set = sub.setAlloc(null, 10, IoasidSetType.NULL);
    expect(sub.alloc(set, 0, 100)).toBe(0);
    expect(sub.alloc(set, 1, 100)).toBe(1);
    expect(sub.allocGlobalPasid(100)).toBe(2);
    expect(sub.alloc(set, 1, 100)).toBe(3);
    expect(sub.alloc(set, 2, 2)).toBe(INVALID_IOASID);
    // global PASIDs are not IOASIDs of a set
    expect(sub.ioasidInfo(2)).toBeUndefined();
    sub.free(set, 2);
    expect(logs.at(-1)).toEqual(['error', 'Trying to free unknown IOASID 2']);
    // and freeGlobalPasid never frees a set's IOASID
    sub.freeGlobalPasid(3);
    expect(logs.at(-1)).toEqual(['warn', 'freeing global PASID 3, which is not allocated']);
    expect(sub.ioasidInfo(3)?.set).toBe(set);
    sub.freeGlobalPasid(IOMMU_PASID_INVALID);
    expect(logs.at(-1)).toEqual(['warn', 'freeing IOMMU_PASID_INVALID']);
    sub.freeGlobalPasid(2);
    expect(sub.alloc(set, 2, 2)).toBe(2);
    expect(sub.allocGlobalPasid(5)).toBe(4);
  });
});
