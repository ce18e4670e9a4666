// Test helpers for devices, HWPTs and the HWPT ioctls: an iommufd file over the io_pagetable test
// environment, and a small IOMMU driver of dictionary domains with dirty tracking and GET_HW_INFO.

import { ErrnoError } from '@iommu-ts/base';
import {
  type Device,
  IOMMU_DIRTY_NO_CLEAR,
  IOMMU_DOMAIN_BLOCKED,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IommuCap,
  IommuDevice,
  IommuDomain,
  type IommuOps,
  type IommuResvRegion,
  IommuSubsystem,
  PCI_ACS_RR,
  PCI_ACS_UF,
  PciHostBridge,
  pciDeviceGroup,
} from '@iommu-ts/iommu-core';
import { PhysicalMemory, Process } from '@iommu-ts/mm';
import type { IommufdHwInfoOps } from './device.js';
import { FakeDomain } from './io-pagetable.test-helpers.js';
import { Iommufd } from './iommufd.js';

/** A dictionary domain that records which smallest pages were written while tracking. */
export class DirtyDomain extends FakeDomain {
  readonly dirty = new Set<bigint>();
  tracking = false;
  freedCount = 0;
  constructor(
    readonly dirtyCapable: boolean,
    geometry?: { apertureStart: bigint; apertureEnd: bigint },
  ) {
    super({ pgsizeBitmap: 0x1000n, ...(geometry ? { geometry } : {}) });
    this.ops.attachDev = () => {};
    this.ops.free = () => {
      this.freedCount++;
    };
    this.dirtyOps = {
      setDirtyTracking: (_d, enabled) => {
        if (!this.dirtyCapable) throw new ErrnoError('EINVAL', 'domain allocated without dirty tracking');
        this.tracking = enabled;
      },
      readAndClearDirty: (_d, iova, size, flags, out) => {
        for (let p = iova - (iova % this.minPage); p < iova + size; p += this.minPage) {
          if (!this.entries.has(p) || !this.dirty.has(p)) continue;
          out.record(p, this.minPage);
          if ((flags & IOMMU_DIRTY_NO_CLEAR) === 0) this.dirty.delete(p);
        }
      },
    };
  }
}

/** The GET_HW_INFO data of {@link DirtyDriver}: type 0x1234, 12 bytes. */
export const DIRTY_DRIVER_HW_INFO_TYPE = 0x1234;
export const DIRTY_DRIVER_HW_INFO = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);

/** Options of {@link makeDirtyEnv}. */
export interface DirtyDriverOptions {
  /** Devices whose IOMMU does not report dirty tracking. */
  noDirty?: Set<Device>;
  /** Extra reserved regions per device. */
  resvRegions?: (dev: Device) => IommuResvRegion[];
  /** Domain aperture. */
  geometry?: { apertureStart: bigint; apertureEnd: bigint };
  /** Leave out the `hwInfo` hook. */
  noHwInfo?: boolean;
}

/** A subsystem whose only IOMMU is the dirty driver, with a process, a bus and an iommufd. */
export interface DirtyEnv {
  ram: PhysicalMemory;
  proc: Process;
  sub: IommuSubsystem;
  ops: IommuOps;
  domains: DirtyDomain[];
  host: PciHostBridge;
  nextSlot: number;
  file: Iommufd;
}

export function makeDirtyEnv(options: DirtyDriverOptions = {}): DirtyEnv {
  const ram = new PhysicalMemory({ size: 256 * 2 ** 20 });
  const proc = new Process(ram);
  const sub = new IommuSubsystem();
  const domains: DirtyDomain[] = [];
  const iommu = new IommuDevice('dirty-iommu', { fwnode: null, maxPasids: 1 << 16 });
  const blocked = new IommuDomain({ attachDev: () => {} }, { type: IOMMU_DOMAIN_BLOCKED });
  const ops: IommuOps & Partial<IommufdHwInfoOps> = {
    name: 'dirty-iommu',
    blockedDomain: blocked,
    capable: (dev, cap) =>
      cap === IommuCap.CACHE_COHERENCY || (cap === IommuCap.DIRTY_TRACKING && !options.noDirty?.has(dev)),
    probeDevice: () => iommu,
    deviceGroup: (dev) => pciDeviceGroup(dev),
    getResvRegions: (dev) => options.resvRegions?.(dev) ?? [],
    domainAllocPagingFlags: (_dev, flags) => {
      if ((flags & ~(IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING)) !== 0)
        throw new ErrnoError('EOPNOTSUPP', 'flags');
      const d = new DirtyDomain((flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0, options.geometry);
      domains.push(d);
      return d;
    },
    ...(options.noHwInfo
      ? {}
      : {
          hwInfo: (_dev: Device, type: number) => {
            if (type !== 0 && type !== DIRTY_DRIVER_HW_INFO_TYPE) throw new ErrnoError('EOPNOTSUPP', 'type');
            return { type: DIRTY_DRIVER_HW_INFO_TYPE, data: DIRTY_DRIVER_HW_INFO.slice() };
          },
        }),
  };
  sub.iommuDeviceRegister(iommu, ops);
  const file = Iommufd.open({ iommu: sub, process: proc });
  return { ram, proc, sub, ops, domains, host: new PciHostBridge(), nextSlot: 1, file };
}

/** A new isolated PCI function on the dirty driver's bus. */
export function addDirtyDevice(env: DirtyEnv): Device {
  const dev = env.host.rootBus.addDevice({
    devfn: env.nextSlot++ << 3,
    acs: { cap: 0x1f, ctrl: PCI_ACS_RR | PCI_ACS_UF },
  });
  const err = env.sub.addDevice(dev);
  if (err) throw err;
  return dev;
}
