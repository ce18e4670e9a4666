// Unit checks of driver/iommufd.ts outside the iommufd ioctl path.

import { errnoOf } from '@iommu-ts/base/testing';
import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_READ,
  IOMMU_WRITE,
  IommuDomain,
  PlatformDevice,
} from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { d2Machine } from './d2.test-helpers.js';
import type { ArmSmmuDomain } from './domain.js';
import { armSmmuDirtyOps, armSmmuDomainAllocPagingFlagsDirty, armSmmuHwInfo } from './iommufd.js';
import { ARM_SMMU_AIDR, ARM_SMMU_IDR0, ARM_SMMU_IIDR } from './regs.js';

describe('armSmmuHwInfo', () => {
  it('40 bytes: zero flags/reserved, IDR0..5, IIDR, AIDR read from the registers', () => {
    const m = d2Machine();
    const { pdev } = m.pci(0x08);
    for (const t of [0, 2]) {
      const info = armSmmuHwInfo(pdev, t);
      expect(info.type).toBe(2);
      expect(info.data.length).toBe(40);
      const v = new DataView(info.data.buffer);
      expect(v.getUint32(0, true)).toBe(0);
      expect(v.getUint32(4, true)).toBe(0);
      for (let i = 0; i < 6; i++)
        expect(v.getUint32(8 + 4 * i, true)).toBe(m.model.mmio.readl(ARM_SMMU_IDR0 + 4 * i) >>> 0);
      expect(v.getUint32(32, true)).toBe(m.model.mmio.readl(ARM_SMMU_IIDR) >>> 0);
      expect(v.getUint32(36, true)).toBe(m.model.mmio.readl(ARM_SMMU_AIDR) >>> 0);
    }
    expect(errnoOf(() => armSmmuHwInfo(pdev, 1))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => armSmmuHwInfo(pdev, 3))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => armSmmuHwInfo(new PlatformDevice('x'), 0))).toBe('ENODEV');
  });
});

describe('dirty ops', () => {
  it('only DIRTY_TRACKING domains get them; a domain of another driver is ENODEV', () => {
    const m = d2Machine();
    const { pdev } = m.pci(0x08);
    const plain = armSmmuDomainAllocPagingFlagsDirty(pdev, IOMMU_HWPT_ALLOC_PASID, null);
    expect(plain.dirtyOps).toBeNull();
    const dirty = armSmmuDomainAllocPagingFlagsDirty(
      pdev,
      IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID,
      null,
    ) as ArmSmmuDomain;
    expect(dirty.dirtyOps).toBe(armSmmuDirtyOps);
    m.sub.iommuMap(dirty, 0x1000n, BigInt(m.memory.allocPages(0)), 0x1000n, IOMMU_READ | IOMMU_WRITE);
    const seen: bigint[][] = [];
    const rec = { record: (iova: bigint, len: bigint) => seen.push([iova, len]) };
    // A new writable mapping starts dirty; reading clears it.
    armSmmuDirtyOps.readAndClearDirty(dirty, 0x1000n, 0x1000n, 0, rec);
    armSmmuDirtyOps.readAndClearDirty(dirty, 0x1000n, 0x1000n, 0, rec);
    expect(seen).toEqual([[0x1000n, 0x1000n]]);
    // A hole in the range: io-pgtable's EINVAL comes through.
    expect(errnoOf(() => armSmmuDirtyOps.readAndClearDirty(dirty, 0n, 0x2000n, 0, rec))).toBe('EINVAL');
    const foreign = new IommuDomain({});
    expect(
      errnoOf(() => armSmmuDirtyOps.readAndClearDirty(foreign, 0n, 0x1000n, 0, { record: () => {} })),
    ).toBe('ENODEV');
    expect(errnoOf(() => armSmmuDomainAllocPagingFlagsDirty(pdev, 1 << 7, null))).toBe('EOPNOTSUPP');
    // io-pgtable's range check comes through unchanged.
    expect(errnoOf(() => armSmmuDirtyOps.readAndClearDirty(dirty, 0n, 0n, 0, { record: () => {} }))).toBe(
      'EINVAL',
    );
  });
});
