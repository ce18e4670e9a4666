/**
 * A machine for the VD2 tests (contexts, PASID tables, domains, attach, invalidation): a VT-d
 * model, an `IntelIommu` probed / initialised / registered on it with the ops of device.ts and
 * domain.ts, a PCI host bridge, and a log of the invalidation descriptors the unit executed,
 * rendered as short strings. Test-only (imports src/hw/).
 */

import { Endpoint, type IommuOps, type PciDevice, PciHostBridge } from '@iommu-ts/iommu-core';
import type { IommufdHwInfoOps } from '@iommu-ts/iommufd';
import type { VtdInvDesc } from '../hw/inv-desc.js';
import type { VtdHwConfig } from '../hw/vtd-config.js';
import {
  intelIommuAttachDevice,
  intelIommuCapable,
  intelIommuDefDomainType,
  intelIommuDeviceGroup,
  intelIommuGetResvRegions,
  intelIommuProbeDevice,
  intelIommuReleaseDevice,
} from './device.js';
import {
  intelIommuBlockedDomain,
  intelIommuDomainAllocPaging,
  intelIommuDomainAllocPagingFlags,
  intelIommuDomainOps,
  intelIommuHwInfo,
  intelIommuIdentityDomain,
} from './domain.js';
import type { IntelIommu, IntelIommuDriverOptions } from './intel-iommu.js';
import { unitHarness } from './unit.test-helpers.js';

void intelIommuAttachDevice;

/** The ops the tests register (VD1's `intelIommuOps` builds the real ones from the same functions). */
export function vd2Ops(unit: IntelIommu): IommuOps & IommufdHwInfoOps {
  return {
    name: 'intel-iommu',
    capable: (dev, cap) => intelIommuCapable(dev, cap),
    domainAllocPaging: (dev) => intelIommuDomainAllocPaging(dev),
    domainAllocPagingFlags: (dev, flags, userData) => intelIommuDomainAllocPagingFlags(dev, flags, userData),
    hwInfo: (dev, type) => intelIommuHwInfo(dev, type),
    probeDevice: (dev) => intelIommuProbeDevice(unit, dev),
    releaseDevice: (dev) => intelIommuReleaseDevice(dev),
    deviceGroup: (dev) => intelIommuDeviceGroup(dev),
    getResvRegions: (dev) => intelIommuGetResvRegions(dev),
    defDomainType: (dev) => intelIommuDefDomainType(dev),
    defaultDomainOps: intelIommuDomainOps,
    identityDomain: intelIommuIdentityDomain,
    blockedDomain: intelIommuBlockedDomain,
    releaseDomain: intelIommuBlockedDomain,
  };
}

/** Render a descriptor compactly: type, granularity and the fields that matter. */
export function descStr(d: VtdInvDesc): string {
  const h = (n: number | bigint) => `0x${n.toString(16)}`;
  switch (d.type) {
    case 'context-cache':
      return `cc ${d.granularity} did=${d.did} sid=${h(d.sid)} fm=${d.fm}`;
    case 'iotlb':
      return d.granularity === 'page'
        ? `iotlb page did=${d.did} addr=${h(d.addr)} am=${d.am}`
        : `iotlb ${d.granularity} did=${d.did}`;
    case 'device-tlb':
      return `devtlb sid=${h(d.sid)} addr=${h(d.addr)} s=${d.s ? 1 : 0}`;
    case 'pasid-iotlb':
      return d.granularity === 'page'
        ? `piotlb page did=${d.did} pasid=${d.pasid} addr=${h(d.addr)} am=${d.am} ih=${d.ih ? 1 : 0}`
        : `piotlb pasid did=${d.did} pasid=${d.pasid}`;
    case 'pasid-cache':
      return `pc ${d.granularity} did=${d.did} pasid=${d.pasid}`;
    case 'pasid-device-tlb':
      return `pdevtlb sid=${h(d.sid)} pasid=${d.pasid} addr=${h(d.addr)} s=${d.s ? 1 : 0}`;
    case 'wait':
      return 'wait';
    default:
      return d.type;
  }
}

/** Options of {@link vd2Machine}. */
export interface Vd2MachineOptions {
  /** Model configuration overrides. */
  readonly config?: Partial<VtdHwConfig>;
  /** Driver options. */
  readonly options?: IntelIommuDriverOptions;
}

/** Build the machine: unit probed, initialised, registered, translation enabled. */
export function vd2Machine(opts: Vd2MachineOptions = {}) {
  const h = unitHarness({
    ...(opts.config === undefined ? {} : { config: opts.config }),
    ...(opts.options === undefined ? {} : { options: opts.options }),
  });
  const { unit, vtd, core, memory, scheduler } = h;
  unit.probe();
  unit.initDmar();
  unit.register(vd2Ops(unit));
  unit.enableTranslation();
  const hb = new PciHostBridge();
  let mark = vtd.iq.log.length;
  const m = {
    ...h,
    hb,
    /** Add a PCI function on the root bus (fwspec on the unit) and probe it; returns it with an endpoint. */
    pci(
      devfn: number,
      caps: { ats?: boolean; pasidBits?: number; pri?: boolean; dmaAliases?: number[] } = {},
    ): { pdev: PciDevice; ep: Endpoint } {
      const pdev = hb.rootBus.addDevice({
        devfn,
        ...(caps.ats ? { ats: { pageAlignedRequest: true, invQueueDepth: 0 } } : {}),
        ...(caps.pasidBits ? { pasid: { maxPasidWidth: caps.pasidBits } } : {}),
        ...(caps.pri ? { pri: { maxRequests: 32 } } : {}),
        ...(caps.dmaAliases ? { dmaAliases: caps.dmaAliases } : {}),
      });
      core.iommuFwspecInit(pdev, unit.fwnode ?? { name: 'dmar0' });
      core.iommuFwspecAddIds(pdev, [pdev.requesterId]);
      const err = core.addDevice(pdev);
      if (err) throw err;
      const ep = new Endpoint({ device: pdev, iommu: vtd, scheduler, requesterId: pdev.requesterId });
      return { pdev, ep };
    },
    /** Descriptors executed since the last call (wait descriptors dropped unless `waits`). */
    descs(waits = false): string[] {
      const log = vtd.iq.log;
      const out = log.slice(mark).map(descStr);
      mark = log.length;
      return waits ? out : out.filter((s) => s !== 'wait');
    },
    /** Physical page of test data. */
    page(fill?: number): number {
      const pa = memory.allocPages(0, { zero: true });
      if (fill !== undefined) memory.fill(pa, 4096, fill);
      return pa;
    },
  };
  return m;
}

/** The machine type. */
export type Vd2Machine = ReturnType<typeof vd2Machine>;
