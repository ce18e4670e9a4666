// A minimal IOMMU driver for the DMA-layer tests: 4 KiB pages in a Map, an "IOTLB" that remembers
// unmapped pages until they are invalidated (so that reusing an IOVA before its invalidation is
// caught), DEFERRED_FLUSH capable, one group per device.

import { ErrnoError, Scheduler } from '@iommu-ts/base';
import type { IommuIotlbGather } from '@iommu-ts/io-pgtable';
import { PhysicalMemory } from '@iommu-ts/mm';
import type { Device } from './device.js';
import { type IommuDmaCookieOptions, iommuDmaInstall } from './dma-iommu.js';
import { IommuDomain, type IommuDomainGeometry } from './domain.js';
import { genericDeviceGroup } from './group.js';
import { IommuDevice } from './iommu-device.js';
import { IommuCap, type IommuDomainOps, type IommuOps } from './iommu-ops.js';
import { IommuSubsystem } from './iommu-subsystem.js';
import type { IommuResvRegion } from './resv-region.js';

export interface FakeIommuOptions {
  strict?: boolean;
  deferredFlush?: boolean;
  geometry?: Partial<IommuDomainGeometry>;
  resv?: IommuResvRegion[];
  env?: IommuDmaCookieOptions;
  shadowOnFlush?: boolean;
}

export class FakeIommu {
  readonly pages = new Map<number, { pa: number; prot: number }>();
  /** Pages unmapped whose invalidation is still outstanding. */
  readonly stale = new Set<number>();
  readonly violations: string[] = [];
  iotlbSyncs = 0;
  flushAlls = 0;
  mapCalls = 0;
  failNextMap: ErrnoError | null = null;
  readonly subsystem: IommuSubsystem;
  readonly sched: Scheduler;
  readonly memory: PhysicalMemory;

  constructor(options: FakeIommuOptions = {}) {
    this.sched = options.env?.scheduler ?? new Scheduler();
    this.memory = options.env?.memory ?? new PhysicalMemory({ size: 256 * 1024 * 1024 });
    const self = this;
    const domainOps: IommuDomainOps = {
      mapPages(_d, iova, paddr, pgsize, pgcount, prot) {
        self.mapCalls++;
        if (self.failNextMap !== null) {
          const e = self.failNextMap;
          self.failNextMap = null;
          throw e;
        }
        const base = Number(iova) / 4096;
        for (let i = 0; i < (pgsize / 4096) * pgcount; i++) {
          if (self.pages.has(base + i)) throw new ErrnoError('EEXIST', 'already mapped');
          if (self.stale.has(base + i))
            self.violations.push(`IOVA page ${base + i} reused before invalidation`);
        }
        for (let i = 0; i < (pgsize / 4096) * pgcount; i++)
          self.pages.set(base + i, { pa: Number(paddr) + i * 4096, prot });
        return pgsize * pgcount;
      },
      unmapPages(_d, iova, pgsize, pgcount, gather: IommuIotlbGather) {
        const base = Number(iova) / 4096;
        const n = (pgsize / 4096) * pgcount;
        for (let i = 0; i < n; i++) {
          if (!self.pages.delete(base + i)) return i * 4096;
          self.stale.add(base + i);
        }
        if (!gather.queued) gather.addRange(Number(iova), n * 4096);
        return n * 4096;
      },
      iotlbSync(_d, gather) {
        self.iotlbSyncs++;
        for (let p = gather.start / 4096; p <= gather.end / 4096; p++) self.stale.delete(Math.floor(p));
      },
      flushIotlbAll() {
        self.flushAlls++;
        self.stale.clear();
      },
      iovaToPhys(_d, iova) {
        const e = self.pages.get(Math.floor(Number(iova) / 4096));
        return e === undefined ? 0n : BigInt(e.pa + (Number(iova) % 4096));
      },
    };
    const iommu = new IommuDevice('fake-iommu');
    const ops: IommuOps = {
      name: 'fake',
      capable: (_dev, cap) => cap === IommuCap.DEFERRED_FLUSH && (options.deferredFlush ?? true),
      probeDevice: (dev: Device) => {
        if (options.shadowOnFlush && dev.iommu !== null) dev.iommu.shadowOnFlush = true;
        return iommu;
      },
      deviceGroup: (dev) => genericDeviceGroup(dev),
      domainAllocPaging: () =>
        new IommuDomain(domainOps, {
          pgsizeBitmap: 0x1000n,
          geometry: {
            apertureStart: 0n,
            apertureEnd: 2n ** 48n - 1n,
            forceAperture: true,
            ...options.geometry,
          },
        }),
      getResvRegions: () => options.resv ?? [],
    };
    this.subsystem = new IommuSubsystem({ strict: options.strict ?? true });
    iommuDmaInstall(this.subsystem, { scheduler: this.sched, memory: this.memory, ...options.env });
    this.subsystem.iommuDeviceRegister(iommu, ops);
  }

  /** Put a device on the bus (probe: group, default domain, DMA ops). */
  add(dev: Device): Device {
    const err = this.subsystem.addDevice(dev);
    if (err !== null) throw err;
    return dev;
  }
}
