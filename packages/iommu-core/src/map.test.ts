import { ErrnoError, isErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import { IOMMU_DOMAIN_IDENTITY, IOMMU_READ, IOMMU_WRITE, type IommuDomain } from './domain.js';
import { IommuSubsystem } from './iommu-subsystem.js';
import { iommuIovaToPhys, iommuMap, iommuMapSg, iommuPgsize, iommuUnmap } from './map.js';
import { PciHostBridge } from './pci.js';
import { TestIommu, type TestIommuCall } from './testing/test-iommu.js';

const K4 = 0x1000;
const M2 = 0x20_0000;
const G1 = 0x4000_0000;
const BM = 0x4020_1000n;

function setup(): { drv: TestIommu; domain: IommuDomain; sub: IommuSubsystem } {
  const sub = new IommuSubsystem();
  const drv = new TestIommu();
  drv.register(sub);
  const hb = new PciHostBridge();
  const dev = hb.rootBus.addDevice({ devfn: 8 });
  expect(sub.addDevice(dev)).toBeNull();
  const domain = sub.iommuPagingDomainAlloc(dev);
  drv.calls.length = 0;
  return { drv, domain, sub };
}

const maps = (calls: TestIommuCall[]) =>
  calls
    .filter((c) => c.op === 'map_pages')
    .map((c) => c.op === 'map_pages' && [c.iova, c.paddr, c.pgsize, c.count]);

describe('iommuPgsize', () => {
  it('follows the spec example (4K then 2M x2)', () => {
    expect(iommuPgsize(BM, 0x1f_f000n, 0x1f_f000n, 0x40_1000n)).toEqual({ pgsize: K4, count: 1 });
    expect(iommuPgsize(BM, 0x20_0000n, 0x20_0000n, 0x40_0000n)).toEqual({ pgsize: M2, count: 2 });
  });
  it('keeps small pages when iova and paddr are offset differently in the larger page', () => {
    expect(iommuPgsize(BM, 0x1000n, 0x2000n, 0x40_0000n)).toEqual({ pgsize: K4, count: 0x400 });
  });
  it('stops small pages where a larger page starts only if the larger one fits', () => {
    // 0x1FF000 + 0x201000: next 2M boundary at 0x200000 (offset 0x1000), 0x1000 + 2M <= size
    expect(iommuPgsize(BM, 0x1f_f000n, 0x1f_f000n, 0x20_1000n)).toEqual({ pgsize: K4, count: 1 });
    // size too small to fit a 2M page after the boundary: all 4K
    expect(iommuPgsize(BM, 0x1f_f000n, 0x1f_f000n, 0x20_0000n)).toEqual({ pgsize: K4, count: 0x200 });
  });
});

describe('iommuMap / iommuUnmap', () => {
  it('passes the exact (iova, paddr, pgsize, count) sequence Linux would across 4K/2M/1G', () => {
    const { drv, domain } = setup();
    // from 1G - 4K - 2M to 2G + 2M + 4K
    const iova = BigInt(G1 - M2 - K4);
    const size = BigInt(G1 + 2 * M2 + 2 * K4);
    iommuMap(domain, iova, iova + 0x1_0000_0000n, size, IOMMU_READ | IOMMU_WRITE);
    expect(maps(drv.calls)).toEqual([
      [0x3fdf_f000n, 0x1_3fdf_f000n, K4, 1],
      [0x3fe0_0000n, 0x1_3fe0_0000n, M2, 1],
      [0x4000_0000n, 0x1_4000_0000n, G1, 1],
      [0x8000_0000n, 0x1_8000_0000n, M2, 1],
      [0x8020_0000n, 0x1_8020_0000n, K4, 1],
    ]);
    expect(iommuIovaToPhys(domain, 0x4123_4567n)).toBe(0x1_4123_4567n);
    drv.calls.length = 0;
    expect(iommuUnmap(domain, iova, size)).toBe(size);
    const un = drv.calls.filter((c) => c.op === 'unmap_pages');
    expect(un.map((c) => c.op === 'unmap_pages' && [c.iova, c.pgsize, c.count])).toEqual([
      [0x3fdf_f000n, K4, 1],
      [0x3fe0_0000n, M2, 1],
      [0x4000_0000n, G1, 1],
      [0x8000_0000n, M2, 1],
      [0x8020_0000n, K4, 1],
    ]);
    expect(drv.calls.filter((c) => c.op === 'iotlb_sync').length).toBeGreaterThan(0);
  });

  it('uses 4K pages when iova and paddr disagree modulo 2M', () => {
    const { drv, domain } = setup();
    iommuMap(domain, 0x20_0000n, 0x30_1000n, 0x40_0000n, IOMMU_READ);
    expect(maps(drv.calls)).toEqual([[0x20_0000n, 0x30_1000n, K4, 0x400]]);
  });

  it('rejects unaligned requests with EINVAL and maps nothing', () => {
    const { drv, domain } = setup();
    for (const [i, p, s] of [
      [0x800n, 0n, 0x1000n],
      [0n, 0x800n, 0x1000n],
      [0n, 0n, 0x1800n],
    ] as const) {
      let err: unknown;
      try {
        iommuMap(domain, i, p, s, IOMMU_READ);
      } catch (e) {
        err = e;
      }
      expect(isErrnoError(err, 'EINVAL')).toBe(true);
    }
    expect(maps(drv.calls)).toEqual([]);
  });

  it('rejects non-paging domains (EINVAL) and unmap returns 0 for them', () => {
    const { drv } = setup();
    const id = drv.identityDomain;
    expect(id.type).toBe(IOMMU_DOMAIN_IDENTITY);
    expect(() => iommuMap(id, 0n, 0n, 0x1000n, IOMMU_READ)).toThrow(/EINVAL/);
    expect(iommuUnmap(id, 0n, 0x1000n)).toBe(0n);
    expect(iommuIovaToPhys(id, 0x1234n)).toBe(0x1234n);
  });

  it('unmap return values: partial block 0, hole stops early, misaligned 0', () => {
    const { domain } = setup();
    iommuMap(domain, 0x20_0000n, 0x20_0000n, 0x20_0000n, IOMMU_READ); // one 2M block
    expect(iommuUnmap(domain, 0x20_0000n, 0x1000n)).toBe(0n); // cannot split a block
    expect(iommuIovaToPhys(domain, 0x20_0000n)).toBe(0x20_0000n);
    iommuMap(domain, 0x1000n, 0x1000n, 0x2000n, IOMMU_READ); // two 4K pages at 0x1000, 0x2000
    expect(iommuUnmap(domain, 0x1000n, 0x4000n)).toBe(0x2000n); // stops at the hole at 0x3000
    expect(iommuUnmap(domain, 0x800n, 0x1000n)).toBe(0n);
    expect(iommuUnmap(domain, 0x10_0000n, 0x1000n)).toBe(0n); // nothing mapped
  });

  it('unrolls a failed map and throws the driver error (EEXIST)', () => {
    const { domain } = setup();
    iommuMap(domain, 0x3000n, 0x3000n, 0x1000n, IOMMU_READ);
    let err: unknown;
    try {
      iommuMap(domain, 0x1000n, 0x1000n, 0x4000n, IOMMU_READ);
    } catch (e) {
      err = e;
    }
    expect(isErrnoError(err, 'EEXIST')).toBe(true);
    expect(iommuIovaToPhys(domain, 0x1000n)).toBe(0n);
    expect(iommuIovaToPhys(domain, 0x2000n)).toBe(0n);
    expect(iommuIovaToPhys(domain, 0x3000n)).toBe(0x3000n);
  });
});

describe('iommuMapSg', () => {
  const ent = (pa: number, length: number, busAddress = false) => ({
    page: pa - (pa % K4),
    offset: pa % K4,
    length,
    busAddress,
  });

  it('merges physically contiguous entries into runs, skips bus addresses, syncs once', () => {
    const { drv, domain } = setup();
    const syncs: [bigint, bigint][] = [];
    Object.assign(domain.ops, {
      iotlbSyncMap: (_d: IommuDomain, iova: bigint, size: bigint) => syncs.push([iova, size]),
    });
    const sg = [
      ent(0x10_0000, 0x1000),
      ent(0x10_1000, 0x2000), // contiguous with the first
      ent(0x50_0000, 0x1000, true), // P2P bus address: not mapped
      ent(0x80_0000, 0x1000),
    ];
    expect(iommuMapSg(domain, 0x4000_0000n, sg, IOMMU_READ)).toBe(0x4000n);
    expect(maps(drv.calls)).toEqual([
      [0x4000_0000n, 0x10_0000n, K4, 3],
      [0x4000_3000n, 0x80_0000n, K4, 1],
    ]);
    expect(syncs).toEqual([[0x4000_0000n, 0x4000n]]);
    expect(iommuIovaToPhys(domain, 0x4000_2000n)).toBe(0x10_2000n);
    expect(iommuIovaToPhys(domain, 0x4000_3000n)).toBe(0x80_0000n);
  });

  it('unmaps every run already mapped and throws when a later run fails (EINVAL)', () => {
    const { drv, domain } = setup();
    const sg = [ent(0x10_0000, 0x1000), ent(0x20_0000, 0x800)];
    let err: unknown;
    try {
      iommuMapSg(domain, 0x1000n, sg, IOMMU_READ);
    } catch (e) {
      err = e;
    }
    expect(isErrnoError(err, 'EINVAL')).toBe(true);
    expect(iommuIovaToPhys(domain, 0x1000n)).toBe(0n);
    expect(drv.calls.filter((c) => c.op === 'unmap_pages').length).toBe(1);
  });

  it('unmaps everything when the final sync fails and throws its error', () => {
    const { domain } = setup();
    Object.assign(domain.ops, {
      iotlbSyncMap: () => {
        throw new ErrnoError('ENOMEM', 'sync');
      },
    });
    let err: unknown;
    try {
      iommuMapSg(domain, 0x1000n, [ent(0x10_0000, 0x2000)], IOMMU_READ);
    } catch (e) {
      err = e;
    }
    expect(isErrnoError(err, 'ENOMEM')).toBe(true);
    expect(iommuIovaToPhys(domain, 0x1000n)).toBe(0n);
    expect(iommuIovaToPhys(domain, 0x2000n)).toBe(0n);
  });

  it('returns 0 for an empty list', () => {
    const { drv, domain } = setup();
    expect(iommuMapSg(domain, 0x1000n, [], IOMMU_READ)).toBe(0n);
    expect(maps(drv.calls)).toEqual([]);
  });
});
