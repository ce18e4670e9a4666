import { ErrnoError, isErrnoError, Scheduler } from '@iommu-ts/base';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PlatformDevice } from './device.js';
import {
  dmaInfoToProt,
  IOVA_DEFAULT_FQ_SIZE,
  IOVA_DEFAULT_FQ_TIMEOUT,
  IOVA_SINGLE_FQ_SIZE,
  type IommuDmaCookie,
  IommuDmaQueueType,
  iommuDmaAllocCoherent,
  iommuDmaCookieOf,
  iommuDmaFreeCoherent,
  iommuDmaInitDomain,
  iommuDmaInstall,
  iommuDmaMapPage,
  iommuDmaMapSg,
  iommuDmaUnmapPage,
  iommuDmaUnmapSg,
  iommuGetDmaCookie,
  iommuPutDmaCookie,
  sgInitTable,
} from './dma-iommu.js';
import { FakeIommu } from './dma-iommu.test-helpers.js';
import {
  DMA_ATTR_PRIVILEGED,
  DMA_BIT_MASK,
  DMA_MAPPING_ERROR,
  DmaDataDirection,
  devSetDmaCoherent,
  dmaSetMask,
  dmaSetMaxSegSize,
  dmaSetSegBoundary,
} from './dma-mapping.js';
import {
  IOMMU_CACHE,
  IOMMU_DOMAIN_DMA,
  IOMMU_DOMAIN_DMA_FQ,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  IommuDomain,
} from './domain.js';
import { IOMMU_FAULT_PERM_READ } from './fault.js';
import { IommuSubsystem } from './iommu-subsystem.js';
import { PciHostBridge } from './pci.js';
import { IommuResvType } from './resv-region.js';
import { TestIommu } from './testing/test-iommu.js';

const BIDI = DmaDataDirection.BIDIRECTIONAL;
const PA = 0x4000_0000; // RAM base of PhysicalMemory

function platform(iommu: FakeIommu, name = 'dev0', mask?: bigint): PlatformDevice {
  return iommu.add(new PlatformDevice(name, mask === undefined ? {} : { dmaMask: mask })) as PlatformDevice;
}

function pci(iommu: FakeIommu, devfn = 0x08) {
  const bridge = new PciHostBridge();
  return iommu.add(bridge.rootBus.addDevice({ devfn }));
}

describe('DMA mapping basics', () => {
  it('maps a page, keeps the offset, translates, and unmaps with a strict sync', () => {
    const iommu = new FakeIommu();
    const dev = platform(iommu);
    const cookie = iommuDmaCookieOf(dev) as IommuDmaCookie;
    expect(cookie.iovad?.granule).toBe(4096);
    expect(cookie.iovad?.startPfn).toBe(1);
    const dma = iommuDmaMapPage(dev, PA + 0x123, 0x100, BIDI);
    expect(dma).not.toBe(DMA_MAPPING_ERROR);
    expect(dma & 0xfffn).toBe(0x123n);
    // 64-bit mask but the aperture ends at 2^48 - 1: top-down below it.
    expect(dma).toBe(0xffff_ffff_f123n);
    expect(iommu.pages.get(Number(dma >> 12n))).toEqual({
      pa: PA,
      prot: IOMMU_READ | IOMMU_WRITE | IOMMU_CACHE,
    });
    iommuDmaUnmapPage(dev, dma, 0x100, BIDI);
    expect(iommu.pages.size).toBe(0);
    expect(iommu.iotlbSyncs).toBe(1);
    expect(iommu.stale.size).toBe(0);
    expect(cookie.stats.strictSyncs).toBe(1);
    // The IOVA goes back to the cache and is reused.
    expect(iommuDmaMapPage(dev, PA, 4096, BIDI)).toBe(0xffff_ffff_f000n);
    expect(cookie.iovad?.stats.rcacheHits).toBe(1);
  });

  it('covers every granule a buffer touches', () => {
    const iommu = new FakeIommu();
    const dev = platform(iommu);
    const dma = iommuDmaMapPage(dev, PA + 0xff0, 0x20, DmaDataDirection.TO_DEVICE);
    expect(iommu.pages.size).toBe(2);
    expect(iommu.pages.get(Number(dma >> 12n))?.prot).toBe(IOMMU_READ | IOMMU_CACHE);
    iommuDmaUnmapPage(dev, dma, 0x20, DmaDataDirection.TO_DEVICE);
    expect(iommu.pages.size).toBe(0);
  });

  it('computes prot bits from direction, coherence and attributes', () => {
    expect(dmaInfoToProt(DmaDataDirection.FROM_DEVICE, false, 0)).toBe(IOMMU_WRITE);
    expect(dmaInfoToProt(DmaDataDirection.TO_DEVICE, true, DMA_ATTR_PRIVILEGED)).toBe(
      IOMMU_READ | IOMMU_CACHE | IOMMU_PRIV,
    );
    expect(dmaInfoToProt(DmaDataDirection.NONE, true, 0)).toBe(0);
    const iommu = new FakeIommu();
    const dev = platform(iommu);
    devSetDmaCoherent(dev, false);
    const dma = iommuDmaMapPage(dev, PA, 4096, DmaDataDirection.FROM_DEVICE);
    expect(iommu.pages.get(Number(dma >> 12n))?.prot).toBe(IOMMU_WRITE);
    expect(iommuDmaCookieOf(dev)?.stats.cpuSyncs).toBe(1);
  });

  it('honours the DMA mask', () => {
    const iommu = new FakeIommu();
    const dev = platform(iommu, 'dev0', DMA_BIT_MASK(32));
    expect(iommuDmaMapPage(dev, PA, 4096, BIDI)).toBe(0xffff_f000n);
    dmaSetMask(dev, DMA_BIT_MASK(24));
    expect(iommuDmaMapPage(dev, PA, 8192, BIDI)).toBe(0xff_e000n);
    expect(() => dmaSetMask(dev, -1n)).toThrow(ErrnoError);
  });

  it('tries below 4 GiB first for PCI devices, then gives up the workaround', () => {
    const iommu = new FakeIommu({ geometry: { apertureEnd: 0x1_ffff_ffffn } });
    const dev = pci(iommu);
    expect(dev.iommu?.pci32bitWorkaround).toBe(true);
    const a = iommuDmaMapPage(dev, PA, 4096, BIDI);
    expect(a).toBe(0xffff_f000n);
    // 1 GiB buffers are size-aligned: two fit below 4 GiB, the third does not (it would start at
    // IOVA 0), so it goes above 4 GiB and the device stops trying below 4 GiB.
    expect(iommuDmaMapPage(dev, PA, 0x4000_0000, BIDI)).toBe(0x8000_0000n);
    expect(iommuDmaMapPage(dev, PA, 0x4000_0000, BIDI)).toBe(0x4000_0000n);
    expect(dev.iommu?.pci32bitWorkaround).toBe(true);
    expect(iommuDmaMapPage(dev, PA, 0x4000_0000, BIDI)).toBe(0x1_c000_0000n);
    expect(dev.iommu?.pci32bitWorkaround).toBe(false);
    const c = iommuDmaMapPage(dev, PA, 4096, BIDI);
    expect(c).toBeGreaterThanOrEqual(0x1_0000_0000n);
    expect(dev.iommu?.pci32bitWorkaround).toBe(false);
  });

  it('returns DMA_MAPPING_ERROR when the IOVA space is exhausted or the map fails', () => {
    const iommu = new FakeIommu({ geometry: { apertureEnd: 0x7fffn } });
    const dev = platform(iommu);
    // Space: PFNs 1..7.
    expect(iommuDmaMapPage(dev, PA, 0x4000, BIDI)).toBe(0x4000n);
    expect(iommuDmaMapPage(dev, PA, 0x4000, BIDI)).toBe(DMA_MAPPING_ERROR);
    iommu.failNextMap = new ErrnoError('ENOMEM');
    const iovad = iommuDmaCookieOf(dev)?.iovad;
    const before = iovad?.size;
    expect(iommuDmaMapPage(dev, PA, 0x1000, BIDI)).toBe(DMA_MAPPING_ERROR);
    // The IOVA went back to the cache (so it stays a node of the tree) and is reused next.
    expect(iovad?.size).toBe((before ?? 0) + 1);
    expect(iommuDmaMapPage(dev, PA, 0x1000, BIDI)).toBe(0x3000n);
  });

  it('returns DMA_MAPPING_ERROR for a device without a DMA domain', () => {
    const dev = new PlatformDevice('lonely');
    expect(iommuDmaMapPage(dev, PA, 4096, BIDI)).toBe(DMA_MAPPING_ERROR);
    iommuDmaUnmapPage(dev, 0x1000n, 4096, BIDI);
    expect(iommuDmaAllocCoherent(dev, 4096)).toBeNull();
    expect(() => iommuDmaMapSg(dev, sgInitTable([{ pa: PA, length: 1 }]), BIDI)).toThrow(/no DMA domain/);
  });

  it('reserves the reserved regions, except software MSI windows', () => {
    const iommu = new FakeIommu({
      geometry: { apertureEnd: 0xffff_ffffn },
      resv: [
        { start: 0xfee0_0000n, length: 0x20_0000n, prot: 0, type: IommuResvType.RESERVED },
        { start: 0xffe0_0000n, length: 0x10_0000n, prot: 0, type: IommuResvType.SW_MSI },
      ],
    });
    const dev = platform(iommu);
    const a = iommuDmaMapPage(dev, PA, 4096, BIDI);
    expect(a).toBe(0xffff_f000n); // SW_MSI window not reserved
    // 256 granules, size-aligned to 1 MiB: right below the first mapping, above the reserved range.
    expect(iommuDmaMapPage(dev, PA, 0x10_0000, BIDI)).toBe(0xffe0_0000n);
    // Further ones fill [0xff000000, 0xffe00000), then skip the reserved [0xfee00000, 0xff000000).
    const more: bigint[] = [];
    for (let i = 0; i < 16; i++) more.push(iommuDmaMapPage(dev, PA, 0x10_0000, BIDI));
    expect(more[13]).toBe(0xff00_0000n);
    expect(more[14]).toBe(0xfed0_0000n);
    for (const m of more) expect(m + 0x10_0000n <= 0xfee0_0000n || m >= 0xff00_0000n).toBe(true);
    const iovad = iommuDmaCookieOf(dev)?.iovad;
    expect(iovad?.findIova(0xfee00)?.pfnLo).toBe(0xfee00);
    expect(iovad?.findIova(0xfee00)?.pfnHi).toBe(0xfefff);
  });

  it('rejects a second cookie and incompatible re-initialisation', () => {
    const iommu = new FakeIommu();
    const dev = platform(iommu);
    const domain = dev.iommuGroup?.defaultDomain as IommuDomain;
    expect(() => iommuGetDmaCookie(domain)).toThrow(/cookie/);
    iommuDmaInitDomain(domain, dev); // same granule and base: fine
    domain.geometry.apertureStart = 0x10_0000n;
    expect(() => iommuDmaInitDomain(domain, dev)).toThrow(expect.objectContaining({ code: 'EFAULT' }));
    iommuPutDmaCookie(domain);
    expect(domain.iovaCookie).toBeNull();
    const other = new IommuDomain({}, { pgsizeBitmap: 0x1000n });
    expect(() => iommuDmaInitDomain(other, dev)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});

describe('flush queue (DMA_FQ)', () => {
  it('defers IOVA freeing until the timer flushes the IOTLB', () => {
    const iommu = new FakeIommu({ strict: false });
    const dev = platform(iommu);
    const domain = dev.iommuGroup?.defaultDomain as IommuDomain;
    expect(domain.type).toBe(IOMMU_DOMAIN_DMA_FQ);
    const cookie = iommuDmaCookieOf(dev) as IommuDmaCookie;
    expect(cookie.options).toEqual({
      qt: IommuDmaQueueType.PER_CPU,
      fqSize: IOVA_DEFAULT_FQ_SIZE,
      fqTimeout: IOVA_DEFAULT_FQ_TIMEOUT,
    });
    const a = iommuDmaMapPage(dev, PA, 4096, BIDI);
    iommuDmaUnmapPage(dev, a, 4096, BIDI);
    expect(iommu.iotlbSyncs).toBe(0);
    expect(cookie.fqPending).toBe(1);
    expect(iommu.stale.size).toBe(1);
    // Not reused while queued.
    const b = iommuDmaMapPage(dev, PA, 4096, BIDI);
    expect(b).not.toBe(a);
    iommuDmaUnmapPage(dev, b, 4096, BIDI);
    iommu.sched.advanceBy(IOVA_DEFAULT_FQ_TIMEOUT * 1_000_000 - 1);
    expect(iommu.flushAlls).toBe(0);
    iommu.sched.advanceBy(1);
    expect(iommu.flushAlls).toBe(1);
    expect(cookie.fqPending).toBe(0);
    expect(cookie.stats).toMatchObject({ fqQueued: 2, fqFlushes: 1, fqTimeouts: 1, fqFullFlushes: 0 });
    // Now the IOVAs come back from the cache.
    const c = iommuDmaMapPage(dev, PA, 4096, BIDI);
    expect([a, b]).toContain(c);
    expect(iommu.violations).toEqual([]);
  });

  it('flushes at once when a queue is full', () => {
    const iommu = new FakeIommu({ strict: false });
    const dev = platform(iommu);
    const cookie = iommuDmaCookieOf(dev) as IommuDmaCookie;
    const addrs: bigint[] = [];
    for (let i = 0; i < IOVA_DEFAULT_FQ_SIZE; i++) addrs.push(iommuDmaMapPage(dev, PA, 4096, BIDI));
    for (const a of addrs) iommuDmaUnmapPage(dev, a, 4096, BIDI);
    // A ring of 256 holds 255 entries: the 256th unmap flushed and freed the first 255.
    expect(cookie.stats.fqFullFlushes).toBe(1);
    expect(iommu.flushAlls).toBe(1);
    expect(cookie.fqPending).toBe(1);
    iommu.sched.runUntilIdle();
    expect(cookie.fqPending).toBe(0);
    expect(iommu.violations).toEqual([]);
  });

  it('falls back to strict DMA without DEFERRED_FLUSH', () => {
    const iommu = new FakeIommu({ strict: false, deferredFlush: false });
    const dev = platform(iommu);
    expect(dev.iommuGroup?.defaultDomain?.type).toBe(IOMMU_DOMAIN_DMA);
    expect(iommuDmaCookieOf(dev)?.fqDomain).toBeNull();
  });

  it('uses one large queue when the driver shadows on flush', () => {
    const iommu = new FakeIommu({ strict: false, shadowOnFlush: true });
    const dev = platform(iommu);
    const cookie = iommuDmaCookieOf(dev) as IommuDmaCookie;
    expect(cookie.options.qt).toBe(IommuDmaQueueType.SINGLE);
    expect(cookie.options.fqSize).toBe(IOVA_SINGLE_FQ_SIZE);
  });

  it('never reuses an IOVA before its invalidation (random map/unmap, both modes, several CPUs)', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(
          fc.record({
            op: fc.constantFrom('map', 'unmap', 'tick', 'cpu'),
            pages: fc.integer({ min: 1, max: 40 }),
            pick: fc.nat(),
          }),
          { maxLength: 400 },
        ),
        (strict, ops) => {
          const iommu = new FakeIommu({ strict, env: { nrCpus: 2 }, geometry: { apertureEnd: 0x3f_ffffn } });
          const dev = platform(iommu);
          const cookie = iommuDmaCookieOf(dev) as IommuDmaCookie;
          const live: Array<{ dma: bigint; size: number }> = [];
          for (const o of ops) {
            if (o.op === 'map') {
              const size = o.pages * 4096 - 100;
              const dma = iommuDmaMapPage(dev, PA + 100, size, BIDI);
              if (dma === DMA_MAPPING_ERROR) continue;
              expect(dma).toBeLessThanOrEqual(0x3f_ffffn);
              for (const l of live)
                expect(dma + BigInt(size) <= l.dma - 100n || dma >= l.dma + BigInt(l.size)).toBe(true);
              live.push({ dma, size });
            } else if (o.op === 'unmap' && live.length > 0) {
              const [l] = live.splice(o.pick % live.length, 1);
              if (l !== undefined) iommuDmaUnmapPage(dev, l.dma, l.size, BIDI);
            } else if (o.op === 'tick') {
              iommu.sched.advanceBy(o.pages * 1_000_000);
            } else {
              cookie.cpu = o.pick % 2;
            }
          }
          expect(iommu.violations).toEqual([]);
          for (const l of live) iommuDmaUnmapPage(dev, l.dma, l.size, BIDI);
          iommu.sched.runUntilIdle();
          expect(iommu.pages.size).toBe(0);
          expect(cookie.fqPending).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('scatter-gather', () => {
  it('maps all entries into one IOVA range and merges them into DMA segments', () => {
    const iommu = new FakeIommu();
    const dev = platform(iommu);
    dmaSetMaxSegSize(dev, 1 << 20);
    // Three page-aligned pages (two physically contiguous) and a tail at offset 0.
    const sg = sgInitTable([
      { pa: PA + 0x10000, length: 4096 },
      { pa: PA + 0x11000, length: 4096 },
      { pa: PA + 0x20000, length: 4096 },
      { pa: PA + 0x30000, length: 100 },
    ]);
    const n = iommuDmaMapSg(dev, sg, BIDI);
    expect(n).toBe(1);
    expect(sg[0]?.dmaLength).toBe(3 * 4096 + 100);
    expect(sg[1]?.dmaLength).toBe(0);
    const base = sg[0]?.dmaAddress as bigint;
    expect(iommu.pages.size).toBe(4);
    expect(iommu.pages.get(Number(base >> 12n) + 2)?.pa).toBe(PA + 0x20000);
    // Two physically contiguous runs + two singles = 3 runs mapped, synced once.
    expect(iommu.mapCalls).toBe(3);
    // The entries are restored.
    expect(sg.map((s) => [s.offset, s.length])).toEqual([
      [0, 4096],
      [0, 4096],
      [0, 4096],
      [0, 100],
    ]);
    iommuDmaUnmapSg(dev, sg, BIDI);
    expect(iommu.pages.size).toBe(0);
  });

  it('starts a new segment for an entry with an offset, or beyond the maximum segment size', () => {
    const iommu = new FakeIommu();
    const dev = platform(iommu);
    const sg = sgInitTable([
      { pa: PA + 0x1000, length: 0x800 }, // ends inside its granule
      { pa: PA + 0x2100, length: 0x100 }, // starts at an offset
      { pa: PA + 0x3000, length: 0x1_0000 }, // 64 KiB: max segment size
      { pa: PA + 0x20000, length: 0x1000 },
    ]);
    const n = iommuDmaMapSg(dev, sg, BIDI);
    expect(n).toBe(4);
    const base = sg[0]?.dmaAddress as bigint;
    expect(sg[0]?.dmaLength).toBe(0x800);
    expect(sg[1]?.dmaAddress).toBe(base + 0x1100n);
    expect(sg[2]?.dmaAddress).toBe(base + 0x2000n);
    expect(sg[3]?.dmaAddress).toBe(base + 0x12000n);
    expect(sg.map((s) => s.dmaLength)).toEqual([0x800, 0x100, 0x1_0000, 0x1000]);
    iommuDmaUnmapSg(dev, sg, BIDI);
    expect(iommu.pages.size).toBe(0);
  });

  it('pads so that no segment crosses the segment boundary', () => {
    const iommu = new FakeIommu();
    const dev = platform(iommu);
    dmaSetSegBoundary(dev, 0x3fffn); // 16 KiB boundaries
    const sg = sgInitTable([
      { pa: PA + 0x1000, length: 0x1000 },
      { pa: PA + 0x10000, length: 0x4000 }, // would straddle the first boundary: padded to it
    ]);
    const n = iommuDmaMapSg(dev, sg, BIDI);
    expect(n).toBe(2);
    const base = sg[0]?.dmaAddress as bigint;
    expect(base % 0x8000n).toBe(0n); // the allocation is size-aligned (8 granules)
    expect(sg[1]?.dmaAddress).toBe(base + 0x4000n);
    iommuDmaUnmapSg(dev, sg, BIDI);
    expect(iommu.pages.size).toBe(0);
    expect(() => dmaSetSegBoundary(dev, 0x3000n)).toThrow(ErrnoError);
  });

  it('fails with ENOMEM when no IOVA fits, and restores the list', () => {
    const iommu = new FakeIommu({ geometry: { apertureEnd: 0x3fffn } });
    const dev = platform(iommu);
    const sg = sgInitTable([{ pa: PA + 0x10, length: 0x8000 }]);
    try {
      iommuDmaMapSg(dev, sg, BIDI);
      expect.unreachable();
    } catch (e) {
      expect(isErrnoError(e, 'ENOMEM')).toBe(true);
    }
    expect(sg[0]).toMatchObject({
      offset: 0x10,
      length: 0x8000,
      dmaAddress: DMA_MAPPING_ERROR,
      dmaLength: 0,
    });
    iommu.failNextMap = new ErrnoError('EIO');
    const sg2 = sgInitTable([{ pa: PA, length: 0x1000 }]);
    expect(() => iommuDmaMapSg(dev, sg2, BIDI)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});

describe('coherent allocations', () => {
  it('allocates zeroed contiguous pages and maps them under the coherent mask', () => {
    const iommu = new FakeIommu();
    const dev = iommu.add(new PlatformDevice('dev0', { coherentDmaMask: DMA_BIT_MASK(32) }));
    const before = iommu.memory.stats().allocatedPages;
    const buf = iommuDmaAllocCoherent(dev, 3 * 4096) as { cpuPa: number; dmaAddr: bigint };
    expect(buf).not.toBeNull();
    expect(iommu.memory.stats().allocatedPages - before).toBe(4); // order 2
    expect(buf.dmaAddr).toBeLessThanOrEqual(0xffff_ffffn);
    expect(iommu.pages.size).toBe(3);
    expect(iommu.pages.get(Number(buf.dmaAddr >> 12n))?.pa).toBe(buf.cpuPa);
    iommuDmaFreeCoherent(dev, 3 * 4096, buf);
    expect(iommu.memory.stats().allocatedPages).toBe(before);
    expect(iommu.pages.size).toBe(0);
  });

  it('returns null and frees the pages when no IOVA fits', () => {
    const iommu = new FakeIommu({ geometry: { apertureEnd: 0x1fffn } });
    const dev = platform(iommu);
    const before = iommu.memory.stats().allocatedPages;
    expect(iommuDmaAllocCoherent(dev, 0x4000)).toBeNull();
    expect(iommu.memory.stats().allocatedPages).toBe(before);
  });
});

describe('on the test driver (real page tables and IOTLB)', () => {
  it('translates mapped DMA addresses, and a stale IOTLB entry survives only until the FQ flush', () => {
    const sched = new Scheduler();
    const sub = new IommuSubsystem({ strict: false });
    iommuDmaInstall(sub, { scheduler: sched });
    const driver = new TestIommu({ grouping: 'generic', iotlb: true });
    driver.register(sub);
    const dev = new PlatformDevice('tdev', { firmwareIds: [7] });
    expect(sub.addDevice(dev)).toBeNull();
    expect(dev.iommuGroup?.defaultDomain?.type).toBe(IOMMU_DOMAIN_DMA_FQ);
    const dma = iommuDmaMapPage(dev, PA + 0x2345, 0x100, BIDI);
    const t = driver.translate(7, null, dma, IOMMU_FAULT_PERM_READ);
    expect(t).toMatchObject({ pa: BigInt(PA + 0x2345) });
    iommuDmaUnmapPage(dev, dma, 0x100, BIDI);
    // Deferred invalidation: the device may still hit the cached translation...
    expect(driver.translate(7, null, dma, IOMMU_FAULT_PERM_READ)).toMatchObject({ cached: true });
    sched.advanceBy(IOVA_DEFAULT_FQ_TIMEOUT * 1_000_000);
    // ...until the flush queue's timer flushes the IOTLB.
    expect(driver.translate(7, null, dma, IOMMU_FAULT_PERM_READ)).toMatchObject({ fault: 'translation' });
    expect(driver.calls.some((c) => c.op === 'flush_iotlb_all')).toBe(true);
  });
});

describe('sysfs type with the DMA layer installed', () => {
  it('DMA -> DMA-FQ in place starts the cookie flush queue', () => {
    const iommu = new FakeIommu();
    const dev = platform(iommu);
    const group = dev.iommuGroup!;
    const domain = group.defaultDomain!;
    const cookie = domain.iovaCookie as IommuDmaCookie;
    expect(cookie.fqDomain).toBeNull();
    iommu.subsystem.iommuGroupStoreType(group, 'DMA-FQ\n');
    expect(group.defaultDomain).toBe(domain);
    expect(cookie.fqDomain).toBe(domain);
    expect(iommu.subsystem.iommuGroupShowType(group)).toBe('DMA-FQ\n');
  });
});
