import { IOMMU_HWPT_ALLOC_DIRTY_TRACKING, IOMMU_READ, IOMMU_WRITE, IommuCap } from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { calculatePsiAlignedAddress } from './cache-tag.js';
import { infoOf, intelIommuCapable } from './device.js';
import { type DmarDomain, IOMMU_HW_INFO_TYPE_INTEL_VTD, intelIommuHwInfo } from './domain.js';
import { vd2Machine } from './vd2.test-helpers.js';

const RW = IOMMU_READ | IOMMU_WRITE;

describe('map/unmap invalidations (digest §8.8)', () => {
  it('second stage: unmap → type-2 PSI; DMA then faults', () => {
    const m = vd2Machine();
    const { pdev, ep } = m.pci(0x10);
    const d = m.core.iommuPagingDomainAllocFlags(pdev, IOMMU_HWPT_ALLOC_DIRTY_TRACKING) as DmarDomain;
    m.core.iommuAttachDevice(d, pdev);
    const pa = m.page(0x5a);
    m.core.iommuMap(d, 0x10_0000n, BigInt(pa), 0x1000n, RW);
    expect(ep.readSync(0x10_0000n, 1)[0]).toBe(0x5a); // fills the IOTLB
    m.descs();
    expect(m.core.iommuUnmap(d, 0x10_0000n, 0x1000n)).toBe(0x1000n);
    expect(m.descs(true)).toEqual(['iotlb page did=2 addr=0x100000 am=0', 'wait']);
    expect(ep.dmaRead(0x10_0000n, 1).fault).toBeDefined();
  });

  it('skipping the invalidation (test hook) leaves the stale IOTLB entry usable', () => {
    const m = vd2Machine();
    const { pdev, ep } = m.pci(0x10);
    const d = m.core.iommuPagingDomainAlloc(pdev) as DmarDomain;
    m.core.iommuAttachDevice(d, pdev);
    const pa = m.page(0x33);
    m.core.iommuMap(d, 0x10_0000n, BigInt(pa), 0x1000n, RW);
    expect(ep.readSync(0x10_0000n, 1)[0]).toBe(0x33);
    d.testHooks.skipInvalidation = true;
    m.descs();
    m.core.iommuUnmap(d, 0x10_0000n, 0x1000n);
    expect(m.descs()).toEqual([]);
    expect(ep.readSync(0x10_0000n, 1)[0]).toBe(0x33); // stale translation
    d.testHooks.skipInvalidation = false;
    m.core.iommuFlushIotlbAll(d);
    expect(m.descs()).toEqual(['piotlb pasid did=2 pasid=0']);
    expect(ep.dmaRead(0x10_0000n, 1).fault).toBeDefined();
  });

  it('first stage: unmap of 3 pages → type-6 PSI with AM 2 and IH; ATS adds type-3 PSI', () => {
    const m = vd2Machine();
    const { pdev } = m.pci(0x18, { ats: true });
    const d = m.core.iommuGetDomainForDev(pdev) as DmarDomain;
    const d2 = m.core.iommuPagingDomainAlloc(pdev) as DmarDomain;
    expect(d.useFirstLevel).toBe(true);
    m.core.iommuAttachDevice(d2, pdev);
    const pa = m.memory.allocPages(2, { zero: true });
    m.core.iommuMap(d2, 0x20_0000n, BigInt(pa), 0x3000n, RW);
    m.descs();
    m.core.iommuUnmap(d2, 0x20_0000n, 0x3000n);
    expect(m.descs(true)).toEqual([
      'piotlb page did=2 pasid=0 addr=0x200000 am=2 ih=1',
      'devtlb sid=0x18 addr=0x201000 s=1',
      'wait',
    ]);
  });

  it('calculate_psi_aligned_address: unaligned ranges widen the mask', () => {
    expect(calculatePsiAlignedAddress(0x1000n, 0x2fffn)).toEqual({ addr: 0n, pages: 4n, mask: 2 });
    expect(calculatePsiAlignedAddress(0x4000n, 0x7fffn)).toEqual({ addr: 0x4000n, pages: 4n, mask: 2 });
    expect(calculatePsiAlignedAddress(0x7000n, 0x8fffn)).toEqual({ addr: 0n, pages: 16n, mask: 4 });
  });
});

describe('iommufd: GET_HW_INFO, dirty tracking via SLADE', () => {
  it('iommu_hw_info_vtd bytes: flags 1, reserved 0, CAP @8, ECAP @16', () => {
    const m = vd2Machine();
    const { pdev } = m.pci(0x10);
    const { type, data } = intelIommuHwInfo(pdev, 0);
    expect(type).toBe(IOMMU_HW_INFO_TYPE_INTEL_VTD);
    const v = new DataView(data.buffer);
    expect(data.length).toBe(24);
    expect(v.getUint32(0, true)).toBe(1);
    expect(v.getUint32(4, true)).toBe(0);
    expect(v.getBigUint64(8, true)).toBe(m.vtd.mmio.readq(0x8));
    expect(v.getBigUint64(16, true)).toBe(m.vtd.mmio.readq(0x10));
    expect(() => intelIommuHwInfo(pdev, 2)).toThrow(expect.objectContaining({ code: 'EOPNOTSUPP' }));
  });

  it('set_dirty_tracking sets SSADE (PC + DSI); device writes set D; read_and_clear reports and clears', () => {
    const m = vd2Machine();
    const { pdev, ep } = m.pci(0x10);
    const d = m.core.iommuPagingDomainAllocFlags(pdev, IOMMU_HWPT_ALLOC_DIRTY_TRACKING) as DmarDomain;
    m.core.iommuAttachDevice(d, pdev);
    const pa = m.memory.allocPages(1, { zero: true });
    m.core.iommuMap(d, 0x40_0000n, BigInt(pa), 0x2000n, RW);
    m.descs();
    d.dirtyOps?.setDirtyTracking(d, true);
    expect(m.descs()).toEqual(['pc pasid did=2 pasid=0', 'iotlb domain did=2']);
    const pe = infoOf(pdev).pasidTable?.entry(0, false) ?? -1;
    expect(m.memory.read64(pe) & (1n << 9n)).toBe(1n << 9n);
    ep.writeSync(0x40_1008n, new Uint8Array([1]));
    const seen: [bigint, bigint][] = [];
    d.dirtyOps?.readAndClearDirty(d, 0x40_0000n, 0x2000n, 0, { record: (i, l) => seen.push([i, l]) });
    expect(seen).toEqual([[0x40_1000n, 0x1000n]]);
    const again: bigint[] = [];
    d.dirtyOps?.readAndClearDirty(d, 0x40_0000n, 0x2000n, 0, { record: (i) => again.push(i) });
    expect(again).toEqual([]);
    expect(intelIommuCapable(pdev, IommuCap.DIRTY_TRACKING)).toBe(true);
    expect(intelIommuCapable(pdev, IommuCap.ENFORCE_CACHE_COHERENCY)).toBe(true);
    expect(intelIommuCapable(pdev, IommuCap.NOEXEC)).toBe(false);
  });
});

describe('error paths leave state unchanged', () => {
  it('attach of a domain from a unit with another superpage capability: EINVAL, old domain still attached', () => {
    const m = vd2Machine();
    const { pdev, ep } = m.pci(0x10);
    const old = m.core.iommuGetDomainForDev(pdev) as DmarDomain;
    const d = m.core.iommuPagingDomainAlloc(pdev) as DmarDomain;
    d.iommuSuperpage = 0;
    const pa = m.page(0x11);
    m.core.iommuMap(old, 0x1000n, BigInt(pa), 0x1000n, RW);
    m.descs();
    expect(() => m.core.iommuAttachDevice(d, pdev)).toThrow();
    expect(m.descs()).toEqual([]);
    expect(m.core.iommuGetDomainForDev(pdev)).toBe(old);
    expect(d.iommuArray.size).toBe(0);
    expect(old.iommuArray.get(m.unit)).toEqual({ did: 2, refcnt: 1 });
    expect(ep.readSync(0x1000n, 1)[0]).toBe(0x11);
  });
});
