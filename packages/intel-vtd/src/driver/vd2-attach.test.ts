import {
  Endpoint,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_READ,
  IOMMU_WRITE,
  IommuResvType,
} from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { iommuContextAddr } from './context.js';
import { infoOf } from './device.js';
import { type DmarDomain, intelIommuBlockedDomain, intelIommuIdentityDomain } from './domain.js';
import { readPasidEntry } from './pasid.js';
import { vd2Machine } from './vd2.test-helpers.js';

const RW = IOMMU_READ | IOMMU_WRITE;
const LEGACY = { options: { scalableMode: false } } as const;

function ctx(m: ReturnType<typeof vd2Machine>, rid: number): [bigint, bigint] {
  const pa = iommuContextAddr(m.unit, rid >> 8, rid & 0xff, false);
  if (pa === null) return [0n, 0n];
  return [m.memory.read64(pa), m.memory.read64(pa + 8)];
}

describe('legacy context entries (digest §8.4)', () => {
  it('attach of a second-stage domain: old entry cleared with cc(device, old DID) + DSI, new entry DID/AW/TT/SLPTPTR, P', () => {
    const m = vd2Machine(LEGACY);
    const { pdev, ep } = m.pci(0x10);
    const def = m.core.iommuGetDomainForDev(pdev) as DmarDomain;
    expect(ctx(m, 0x10)[1]).toBe((2n << 8n) | 3n); // default domain: DID 2, AW 3 (5-level)
    m.descs();
    const d = m.core.iommuPagingDomainAlloc(pdev) as DmarDomain;
    expect(d.useFirstLevel).toBe(false);
    m.core.iommuAttachDevice(d, pdev);
    expect(m.descs(true)).toEqual(['cc device did=2 sid=0x10 fm=0', 'wait', 'iotlb domain did=2', 'wait']);
    expect(def.iommuArray.size).toBe(0);
    const [lo, hi] = ctx(m, 0x10);
    expect(lo).toBe(d.pgdPhys | 1n); // TT 00, FPD 0, P
    expect(hi).toBe((2n << 8n) | 3n); // DID 2 again (lowest free), AW 3
    const pa = m.page(0x5a);
    m.core.iommuMap(d, 0x10_0000n, BigInt(pa), 0x1000n, RW);
    expect(m.descs()).toEqual([]); // CM = 0: write-buffer flush only
    ep.writeSync(0x10_0010n, new Uint8Array([1, 2, 3]));
    expect([...m.memory.readBytes(pa + 0x10, 3)]).toEqual([1, 2, 3]);
  });

  it('caching mode: not-present → present gets cc(device, DID 0) + DSI of the new DID', () => {
    const m = vd2Machine({ ...LEGACY, config: { cachingMode: true } });
    m.descs();
    m.pci(0x18);
    expect(m.descs()).toEqual(['cc device did=0 sid=0x18 fm=0', 'iotlb domain did=2']);
  });

  it('ATS device: TT = 01, ATS enabled after the entry; teardown adds a global device-TLB invalidation', () => {
    const m = vd2Machine(LEGACY);
    const { pdev } = m.pci(0x20, { ats: true });
    expect(ctx(m, 0x20)[0] & 0xfn).toBe(0x5n); // TT 01 | P
    expect(infoOf(pdev).atsEnabled).toBe(true);
    m.descs();
    intelIommuBlockedDomain.ops.attachDev?.(intelIommuBlockedDomain, pdev, m.core.iommuGetDomainForDev(pdev));
    expect(m.descs()).toEqual([
      'cc device did=2 sid=0x20 fm=0',
      'iotlb domain did=2',
      'devtlb sid=0x20 addr=0x7ffffffffffff000 s=1',
    ]);
    expect(ctx(m, 0x20)).toEqual([0n, 0n]);
    expect(infoOf(pdev).atsEnabled).toBe(false);
    expect(m.unit.didInUse(2)).toBe(false);
  });

  it('DMA aliases get their own context entries; identity uses TT 10, DID 1, AW = msagaw', () => {
    const m = vd2Machine(LEGACY);
    const { pdev, ep } = m.pci(0x28, { dmaAliases: [0x29] });
    expect(ctx(m, 0x29)[1]).toBe(ctx(m, 0x28)[1]);
    intelIommuIdentityDomain.ops.attachDev?.(
      intelIommuIdentityDomain,
      pdev,
      m.core.iommuGetDomainForDev(pdev),
    );
    for (const rid of [0x28, 0x29]) {
      const [lo, hi] = ctx(m, rid);
      expect(lo).toBe(0x9n); // TT 10 | P
      expect(hi).toBe((1n << 8n) | BigInt(m.unit.msagaw));
    }
    const pa = m.page();
    ep.writeSync(BigInt(pa), new Uint8Array([9]));
    expect(m.memory.read8(pa)).toBe(9);
  });
});

describe('scalable mode: context at probe, PASID entries (digest §8.5–§8.7)', () => {
  it('probe writes PASIDDIRPTR | PDTS | DTE | PASIDE; default domain is first-stage in PASID 0', () => {
    const m = vd2Machine();
    const { pdev } = m.pci(0x10, { ats: true, pasidBits: 8 });
    const info = infoOf(pdev);
    const [lo, hi] = ctx(m, 0x10);
    expect(lo).toBe(BigInt(info.pasidTable?.dir ?? -1) | (2n << 9n) | 0xdn); // PDTS 2, PASIDE, DTE, P
    expect(hi).toBe(0n);
    const d = m.core.iommuGetDomainForDev(pdev) as DmarDomain;
    expect(d.useFirstLevel).toBe(true);
    const pe = readPasidEntry(m.unit, info.pasidTable?.entry(0, false) ?? -1);
    expect(pe[0]).toBe((BigInt(m.unit.agaw) << 2n) | (1n << 6n) | 1n); // AW, PGTT 001, P
    expect(pe[1]).toBe(2n | (1n << 23n)); // DID 2, PWSNP
    expect(pe[2]).toBe(d.pgdPhys | (1n << 2n)); // FLPTR, FLPM 5-level
  });

  it('replace FL default domain by an SL (dirty-tracking) domain: teardown PC, PASID-IOTLB, devTLB; setup under CM adds PC + PASID-IOTLB', () => {
    const m = vd2Machine({ config: { cachingMode: true } });
    const { pdev, ep } = m.pci(0x10, { ats: true, pasidBits: 8 });
    m.descs();
    const d = m.core.iommuPagingDomainAllocFlags(pdev, IOMMU_HWPT_ALLOC_DIRTY_TRACKING) as DmarDomain;
    expect(d.useFirstLevel).toBe(false);
    m.core.iommuAttachDevice(d, pdev);
    expect(m.descs(true)).toEqual([
      'pc pasid did=2 pasid=0',
      'wait',
      'piotlb pasid did=2 pasid=0',
      'wait',
      'devtlb sid=0x10 addr=0x7ffffffffffff000 s=1',
      'wait',
      'pc pasid did=2 pasid=0',
      'wait',
      'piotlb pasid did=2 pasid=0',
      'wait',
    ]);
    const pe = readPasidEntry(m.unit, infoOf(pdev).pasidTable?.entry(0, false) ?? -1);
    expect(pe[0]).toBe(d.pgdPhys | (3n << 2n) | (2n << 6n) | 1n); // SLPTPTR, AW 3, PGTT 010, P
    const pa = m.page(0x77);
    m.core.iommuMap(d, 0x4000n, BigInt(pa), 0x1000n, RW);
    expect(m.descs()).toEqual(['iotlb page did=2 addr=0x4000 am=0']); // CM: PSI after map
    expect(ep.readSync(0x4000n, 1)[0]).toBe(0x77);
    // SL → blocked: teardown uses DSI (type 2) for second-stage entries
    m.core.iommuDetachDevice(d, pdev);
    expect(m.descs().slice(0, 3)).toEqual([
      'pc pasid did=2 pasid=0',
      'iotlb domain did=2',
      'devtlb sid=0x10 addr=0x7ffffffffffff000 s=1',
    ]);
  });

  it('PASID attach of a first-stage domain, replace, remove', () => {
    const m = vd2Machine();
    const { pdev, ep } = m.pci(0x10, { pasidBits: 8 });
    const d1 = m.core.iommuPagingDomainAlloc(pdev) as DmarDomain;
    const d2 = m.core.iommuPagingDomainAlloc(pdev) as DmarDomain;
    m.descs();
    m.core.iommuAttachDevicePasid(d1, pdev, 5);
    expect(m.descs()).toEqual([]); // CM = 0: write-buffer flush only
    const info = infoOf(pdev);
    const pa5 = info.pasidTable?.entry(5, false) ?? -1;
    const did1 = d1.iommuArray.get(m.unit)?.did ?? -1;
    expect(did1).toBe(3);
    expect(readPasidEntry(m.unit, pa5).slice(0, 3)).toEqual([
      (BigInt(m.unit.agaw) << 2n) | (1n << 6n) | 1n,
      3n | (1n << 23n),
      d1.pgdPhys | (1n << 2n),
    ]);
    const pa = m.page(0x42);
    m.core.iommuMap(d1, 0x8000n, BigInt(pa), 0x1000n, RW);
    expect(ep.dmaRead(0x8000n, 1, { pasid: 5 }).data?.[0]).toBe(0x42);
    m.core.iommuReplaceDevicePasid(d2, pdev, 5, { domain: d2 });
    expect(m.descs()).toEqual(['pc pasid did=3 pasid=5', 'piotlb pasid did=3 pasid=5']);
    expect(d1.iommuArray.size).toBe(0);
    expect(m.memory.read64(pa5 + 8) & 0xffffn).toBe(4n); // d2 took DID 4 before d1 released 3
    expect(ep.dmaRead(0x8000n, 1, { pasid: 5 }).fault).toBeDefined();
    m.core.iommuDetachDevicePasid(d2, pdev, 5);
    expect(m.descs()).toEqual(['pc pasid did=4 pasid=5', 'piotlb pasid did=4 pasid=5']);
    expect(readPasidEntry(m.unit, pa5).every((w) => w === 0n)).toBe(true);
    expect(d2.iommuArray.size).toBe(0);
  });

  it('PASID attach refuses dirty-tracking domains (EINVAL) and changes nothing', () => {
    const m = vd2Machine();
    const { pdev } = m.pci(0x10, { pasidBits: 8 });
    const d = m.core.iommuPagingDomainAllocFlags(pdev, IOMMU_HWPT_ALLOC_DIRTY_TRACKING) as DmarDomain;
    m.descs();
    expect(() => m.core.iommuAttachDevicePasid(d, pdev, 7)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(d.iommuArray.size).toBe(0);
    expect(d.cacheTags).toEqual([]);
    expect(infoOf(pdev).pasidTable?.entry(7, false)).not.toBeNull();
    expect(m.memory.read64(infoOf(pdev).pasidTable?.entry(7, false) ?? -1)).toBe(0n);
    expect(m.descs()).toEqual([]);
  });

  it('release tears the context down: clear P, cc device, devTLB, zero; PASID table freed', () => {
    const m = vd2Machine();
    const { pdev } = m.pci(0x30, { ats: true, pasidBits: 8 });
    const dir = infoOf(pdev).pasidTable?.dir ?? -1;
    m.descs();
    m.core.removeDevice(pdev);
    const out = m.descs();
    expect(out.slice(-2)).toEqual([
      'cc device did=0 sid=0x30 fm=0',
      'devtlb sid=0x30 addr=0x7ffffffffffff000 s=1',
    ]);
    expect(ctx(m, 0x30)).toEqual([0n, 0n]);
    expect(m.memory.isAllocated(dir)).toBe(false);
  });
});

describe('reserved regions, capabilities', () => {
  it('RMRRs as DIRECT and the IOAPIC range as MSI', async () => {
    const { intelIommuSetDeviceRmrrs } = await import('./device.js');
    const m = vd2Machine();
    const pdev = m.hb.rootBus.addDevice({ devfn: 0x40 });
    const rmrr = m.memory.allocPages(8, { zero: true }); // 1 MiB of RAM reserved by firmware
    intelIommuSetDeviceRmrrs(pdev, [{ start: BigInt(rmrr), length: 0x10_0000n }]);
    m.core.iommuFwspecInit(pdev, m.unit.fwnode ?? { name: 'dmar0' });
    m.core.iommuFwspecAddIds(pdev, [pdev.requesterId]);
    m.core.addDevice(pdev);
    const regions = m.core.iommuGetResvRegions(pdev);
    // the core identity-maps the RMRR in the default DMA domain: DMA to it reaches the same PA
    const ep = new Endpoint({
      device: pdev,
      iommu: m.vtd,
      scheduler: m.scheduler,
      requesterId: pdev.requesterId,
    });
    ep.writeSync(BigInt(rmrr + 0x40), new Uint8Array([0xab]));
    expect(m.memory.read8(rmrr + 0x40)).toBe(0xab);
    expect(regions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          start: BigInt(rmrr),
          length: 0x10_0000n,
          prot: RW,
          type: IommuResvType.DIRECT,
        }),
        expect.objectContaining({
          start: 0xfee0_0000n,
          length: 0x10_0000n,
          prot: 0,
          type: IommuResvType.MSI,
        }),
      ]),
    );
  });
});
