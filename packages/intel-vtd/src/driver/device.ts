/**
 * VT-d device side: probe/release (`struct device_domain_info`, PASID table and scalable-mode
 * context entries, PASID/ATS/PRI enablement), groups, attach of paging, identity and blocking
 * domains to the RID and to PASIDs, capabilities, reserved regions and the default domain type
 * (drivers/iommu/intel/iommu.c `intel_iommu_probe_device`, `intel_iommu_release_device`,
 * `device_block_translation`, `dmar_domain_attach_device`, `intel_iommu_attach_device`,
 * `identity_domain_attach_dev`, `intel_iommu_set_dev_pasid`, `blocking_domain_set_dev_pasid`,
 * `intel_iommu_get_resv_regions`, `device_def_domain_type`; digest §8.4, §8.5, §8.9, §8.12).
 */

import { ErrnoError } from '@iommu-ts/base';
import {
  type Device,
  genericDeviceGroup,
  IOMMU_DOMAIN_DMA,
  IOMMU_DOMAIN_IDENTITY,
  IOMMU_READ,
  IOMMU_WRITE,
  IommuCap,
  type IommuDevice,
  type IommuDomain,
  type IommuGroup,
  type IommuResvRegion,
  IommuResvType,
  iommuAllocResvRegion,
  PciDevice,
  pciAtsPageAligned,
  pciAtsQueueDepth,
  pciAtsSupported,
  pciDeviceGroup,
  pciDisableAts,
  pciDisablePasid,
  pciDisablePri,
  pciEnableAts,
  pciEnablePasid,
  pciEnablePri,
  pciForEachDmaAlias,
  pciMaxPasids,
  pciPasidFeatures,
  pciPrepareAts,
  pciPrgRespPasidRequired,
  pciPriSupported,
  pciResetPri,
} from '@iommu-ts/iommu-core';
import { cacheTagAssignDomain, cacheTagUnassignDomain } from './cache-tag.js';
import {
  CONTEXT_TT_DEV_IOTLB,
  CONTEXT_TT_MULTI_LEVEL,
  CONTEXT_TT_PASS_THROUGH,
  contextClearOne,
  contextMapOne,
  contextSetPasidTable,
} from './context.js';
import { DeviceDomainInfo, infoOf } from './device-info.js';
import {
  attachHooks,
  type DmarDomain,
  domainAttachIommu,
  domainDetachIommu,
  domainIdIommu,
  pagingDomainCompatible,
  toDmarDomain,
} from './domain.js';
import type { IntelIommu } from './intel-iommu.js';
import {
  IOMMU_NO_PASID,
  PasidTable,
  pasidSetupFirstLevel,
  pasidSetupPassThrough,
  pasidSetupSecondLevel,
  pasidTearDownEntry,
} from './pasid.js';
import {
  ecapDevIotlbSupport,
  ecapDit,
  ecapPassThrough,
  ecapPds,
  ecapPrs,
  ecapScSupport,
  IOAPIC_RANGE_END,
  IOAPIC_RANGE_START,
  PRQ_ORDER,
} from './regs.js';

export { DeviceDomainInfo, infoOf } from './device-info.js';

/** What the DMAR tables say about a device (filled by the DMAR glue before probe). */
export interface DmarDeviceFirmware {
  /** RMRR ranges naming the device in their scope (`{ start, length }` in bytes). */
  readonly rmrrs?: readonly { start: bigint; length: bigint }[];
  /** `dmar_ats_supported`: the ATSR/SATC tables allow ATS for the device. Default true. */
  readonly atsAllowed?: boolean;
}

const firmware = new WeakMap<Device, DmarDeviceFirmware>();

/**
 * Record what the DMAR tables say about `dev` (RMRRs in its scope, ATS permission); called by
 * the DMAR glue before the device is probed.
 * @param dev - the device
 * @param fw - the firmware facts
 */
export function intelIommuSetDeviceFirmware(dev: Device, fw: DmarDeviceFirmware): void {
  firmware.set(dev, fw);
}

/**
 * Record the RMRR ranges that name `dev` in their device scope (shorthand for
 * {@link intelIommuSetDeviceFirmware} keeping the ATS permission); {@link intelIommuGetResvRegions}
 * returns them as `IOMMU_RESV_DIRECT`.
 * @param dev - the device
 * @param rmrrs - byte ranges `{ start, length }`
 */
export function intelIommuSetDeviceRmrrs(
  dev: Device,
  rmrrs: readonly { start: bigint; length: bigint }[],
): void {
  firmware.set(dev, { ...firmware.get(dev), rmrrs });
}

/** Requester IDs the device's DMA can carry (`pci_for_each_dma_alias`; the own RID for others). */
function dmaAliases(info: DeviceDomainInfo): number[] {
  const dev = info.dev;
  if (!(dev instanceof PciDevice)) return [(info.bus << 8) | info.devfn];
  const out: number[] = [];
  pciForEachDmaAlias(dev, (_d, alias) => {
    if (!out.includes(alias)) out.push(alias);
    return undefined;
  });
  return out;
}

/** `iommu_enable_pci_ats`. */
function enablePciAts(info: DeviceDomainInfo): void {
  const dev = info.dev;
  if (!info.atsSupported || !(dev instanceof PciDevice)) return;
  if (!pciAtsPageAligned(dev)) return;
  if (pciEnableAts(dev, 12) === 0) info.atsEnabled = true;
}

/** `iommu_disable_pci_ats`. */
function disablePciAts(info: DeviceDomainInfo): void {
  if (!info.atsEnabled || !(info.dev instanceof PciDevice)) return;
  pciDisableAts(info.dev);
  info.atsEnabled = false;
}

/** `iommu_enable_pci_pri`. */
function enablePciPri(info: DeviceDomainInfo): void {
  const dev = info.dev;
  if (!info.atsEnabled || !info.priSupported || !(dev instanceof PciDevice)) return;
  if (info.pasidEnabled && !pciPrgRespPasidRequired(dev)) return;
  if (pciResetPri(dev) !== 0) return;
  if (pciEnablePri(dev, 4096 << PRQ_ORDER) === 0) info.priEnabled = true;
}

/**
 * `intel_iommu_probe_device(dev)` on `iommu`: the device's info (ATS support with PFSID and queue
 * depth, PASID and PRI support in scalable mode), in scalable mode the PASID directory and the
 * context entries of the device and its DMA aliases, then PASID → ATS (scalable mode) → PRI
 * enablement.
 * @param iommu - the unit the device sits behind
 * @param dev - the device
 * @returns the unit's `IommuDevice`
 * @throws ErrnoError `ENODEV` (no fwspec/iommu slot), `EBUSY` (already probed), `ENOMEM`
 *   (nothing changed)
 */
export function intelIommuProbeDevice(iommu: IntelIommu, dev: Device): IommuDevice {
  if (dev.iommu === null) throw new ErrnoError('ENODEV', `${dev.name}: no IOMMU slot`);
  if (dev.iommu.priv !== null) throw new ErrnoError('EBUSY', `${dev.name}: already probed`);
  let bus: number;
  let devfn: number;
  if (dev instanceof PciDevice) {
    bus = dev.bus.number;
    devfn = dev.devfn;
  } else {
    const sid = dev.fwspec?.ids[0];
    if (sid === undefined) throw new ErrnoError('ENODEV', `${dev.name}: no source-id`);
    bus = (sid >> 8) & 0xff;
    devfn = sid & 0xff;
  }
  const info = new DeviceDomainInfo(iommu, dev, bus, devfn);
  const fw = firmware.get(dev);
  if (dev instanceof PciDevice) {
    if (ecapDevIotlbSupport(iommu.ecap) && pciAtsSupported(dev) && fw?.atsAllowed !== false) {
      info.atsSupported = true;
      if (ecapDit(iommu.ecap)) info.pfsid = dev.requesterId;
      info.atsQdep = pciAtsQueueDepth(dev);
    }
    if (iommu.smSupported) {
      if (iommu.pasidSupported) {
        const features = pciPasidFeatures(dev);
        if (features >= 0 && pciMaxPasids(dev) > 0) info.pasidSupported = features | 1;
      }
      if (info.atsSupported && ecapPrs(iommu.ecap) && ecapPds(iommu.ecap) && pciPriSupported(dev))
        info.priSupported = true;
    }
  }
  if (iommu.smSupported) {
    const maxPasid =
      info.pasidSupported !== 0 && dev instanceof PciDevice
        ? Math.min(pciMaxPasids(dev), iommu.maxPasids)
        : 0;
    const table = PasidTable.alloc(iommu, maxPasid);
    info.pasidTable = table;
    try {
      for (const rid of dmaAliases(info))
        contextSetPasidTable(iommu, rid >> 8, rid & 0xff, {
          pasidDir: table.dir,
          pdts: table.pdts,
          dte: info.atsSupported,
          paside: info.pasidSupported !== 0,
          pre: info.priSupported,
        });
    } catch (e) {
      table.free();
      throw e;
    }
  }
  dev.iommu.priv = info;
  if (dev instanceof PciDevice && info.atsSupported) pciPrepareAts(dev, 12);
  if (
    info.pasidSupported !== 0 &&
    dev instanceof PciDevice &&
    pciEnablePasid(dev, info.pasidSupported & ~1) === 0
  )
    info.pasidEnabled = true;
  if (iommu.smSupported) enablePciAts(info);
  enablePciPri(info);
  iommu.devices.set((bus << 8) | devfn, { dev, iopfEnabled: info.priEnabled });
  return iommu.iommuDevice;
}

/**
 * `intel_iommu_release_device(dev)`: tear down the scalable-mode context entries (clear P,
 * device-selective context-cache and device-TLB invalidation, zero), free the PASID table,
 * disable PRI, ATS and PASID. The core has attached the blocking domain before.
 * @param dev - the device
 * @throws ErrnoError `ENODEV` when the device was not probed by this driver
 */
export function intelIommuReleaseDevice(dev: Device): void {
  const info = infoOf(dev);
  const iommu = info.iommu;
  if (iommu.smSupported) for (const rid of dmaAliases(info)) contextClearOne(info, rid >> 8, rid & 0xff);
  if (info.priEnabled && dev instanceof PciDevice) {
    pciDisablePri(dev);
    info.priEnabled = false;
  }
  disablePciAts(info);
  if (info.pasidEnabled && dev instanceof PciDevice) {
    pciDisablePasid(dev);
    info.pasidEnabled = false;
  }
  iommu.devices.delete((info.bus << 8) | info.devfn);
  info.pasidTable?.free();
  info.pasidTable = null;
  if (dev.iommu !== null) dev.iommu.priv = null;
}

/**
 * `intel_iommu_device_group(dev)`: `pci_device_group` for PCI functions, else a group per device.
 * @param dev - the device
 * @returns the group
 */
export function intelIommuDeviceGroup(dev: Device): IommuGroup | null {
  return dev.isPci ? pciDeviceGroup(dev) : genericDeviceGroup(dev);
}

/**
 * `device_block_translation(dev)`: drop the RID's cache tags, tear down the PASID-0 entry
 * (scalable mode) or clear the context entries of the device and its aliases (legacy mode, then
 * ATS off), release the domain's DID reference.
 * @param dev - the device
 */
export function deviceBlockTranslation(dev: Device): void {
  const info = infoOf(dev);
  const iommu = info.iommu;
  if (!info.domainAttached) return;
  const domain = toDmarDomain(info.domain);
  if (domain !== null) cacheTagUnassignDomain(domain, domainIdIommu(domain, iommu), info, IOMMU_NO_PASID);
  if (iommu.smSupported) pasidTearDownEntry(info, IOMMU_NO_PASID, false);
  else {
    for (const rid of dmaAliases(info)) contextClearOne(info, rid >> 8, rid & 0xff);
    disablePciAts(info);
  }
  info.domainAttached = false;
  if (domain === null) return;
  const i = domain.devices.indexOf(dev);
  if (i >= 0) domain.devices.splice(i, 1);
  domainDetachIommu(domain, iommu);
  info.domain = null;
}

/** Program the entry of `(dev, pasid)` for a paging domain (first or second stage). */
function setupPagingEntry(info: DeviceDomainInfo, domain: DmarDomain, did: number, pasid: number): void {
  if (domain.useFirstLevel)
    pasidSetupFirstLevel(info, pasid, {
      fsptptr: domain.pgdPhys,
      did,
      fl5lp: domain.agaw >= 3,
      pageSnoop: domain.forceSnooping,
    });
  else
    pasidSetupSecondLevel(info, pasid, {
      slptptr: domain.pgdPhys,
      aw: domain.agaw,
      did,
      dirtyTracking: domain.dirtyTracking,
      pageSnoop: domain.forceSnooping,
    });
}

/**
 * `dmar_domain_attach_device(domain, dev)`: DID reference, then the legacy context entries of the
 * device and its aliases (TT = 01 with ATS support) followed by ATS enablement, or the PASID-0
 * entry (first or second stage); then the cache tags.
 */
function dmarDomainAttachDevice(domain: DmarDomain, dev: Device): void {
  const info = infoOf(dev);
  const iommu = info.iommu;
  const did = domainAttachIommu(domain, iommu);
  info.domain = domain;
  info.domainAttached = true;
  domain.devices.push(dev);
  try {
    if (!iommu.smSupported) {
      const tt = info.atsSupported ? CONTEXT_TT_DEV_IOTLB : CONTEXT_TT_MULTI_LEVEL;
      for (const rid of dmaAliases(info))
        contextMapOne(iommu, rid >> 8, rid & 0xff, { did, slptptr: domain.pgdPhys, aw: domain.agaw, tt });
      enablePciAts(info);
    } else {
      setupPagingEntry(info, domain, did, IOMMU_NO_PASID);
    }
  } catch (e) {
    deviceBlockTranslation(dev);
    throw e;
  }
  cacheTagAssignDomain(domain, did, info, IOMMU_NO_PASID);
}

/**
 * `intel_iommu_attach_device(domain, dev, old)` for paging domains: compatibility check (done
 * first here, so a refused attach leaves the old configuration), block translation, attach.
 * @param domain - a {@link DmarDomain}
 * @param dev - the device
 * @param old - the domain being replaced
 * @throws ErrnoError `EINVAL` (incompatible; nothing changed), `ENOSPC` (no DID), `ENOMEM`,
 *   `EBUSY` (device left blocked, as in Linux)
 */
export function intelIommuAttachDevice(domain: IommuDomain, dev: Device, old: IommuDomain | null): void {
  void old;
  const info = infoOf(dev);
  if (domain.type === IOMMU_DOMAIN_IDENTITY) {
    identityDomainAttachDev(dev);
    return;
  }
  const d = toDmarDomain(domain);
  if (d === null) {
    deviceBlockTranslation(dev);
    return;
  }
  pagingDomainCompatible(d, info.iommu);
  deviceBlockTranslation(dev);
  dmarDomainAttachDevice(d, dev);
}

/** `identity_domain_attach_dev`: block, then pass-through PASID-0 entry or TT = 10 contexts. */
function identityDomainAttachDev(dev: Device): void {
  const info = infoOf(dev);
  const iommu = info.iommu;
  if (!ecapPassThrough(iommu.ecap)) throw new ErrnoError('EINVAL', `${iommu.name}: no pass-through support`);
  deviceBlockTranslation(dev);
  if (iommu.smSupported) pasidSetupPassThrough(info, IOMMU_NO_PASID);
  else
    for (const rid of dmaAliases(info))
      contextMapOne(iommu, rid >> 8, rid & 0xff, {
        did: 1,
        slptptr: 0n,
        aw: iommu.msagaw,
        tt: CONTEXT_TT_PASS_THROUGH,
      });
  info.domainAttached = true;
}

/**
 * `domain_remove_dev_pasid` for domains that are not a `DmarDomain` (SVA domains; svm.ts installs
 * it, which imports this file).
 * @internal
 */
export const foreignDomainHooks: {
  removeDevPasid: ((domain: IommuDomain, info: DeviceDomainInfo, pasid: number) => void) | null;
} = { removeDevPasid: null };

/** `domain_remove_dev_pasid(domain, dev, pasid)`: tags and DID reference of a PASID attachment. */
function domainRemoveDevPasid(domain: IommuDomain | null, info: DeviceDomainInfo, pasid: number): void {
  const d = toDmarDomain(domain);
  info.pasidDomains.delete(pasid);
  if (d === null) {
    if (domain !== null) foreignDomainHooks.removeDevPasid?.(domain, info, pasid);
    return;
  }
  cacheTagUnassignDomain(d, domainIdIommu(d, info.iommu), info, pasid);
  domainDetachIommu(d, info.iommu);
}

/**
 * `intel_iommu_set_dev_pasid` (paging), `identity_domain_set_dev_pasid` and
 * `blocking_domain_set_dev_pasid`: a paging domain takes a DID reference and cache tags, the old
 * entry is torn down and the new one set up, then the old domain's references are dropped; the
 * blocking domain only tears down.
 * @param domain - the new domain
 * @param dev - the device
 * @param pasid - a PASID other than 0
 * @param old - the domain being replaced, or null
 * @throws ErrnoError `EOPNOTSUPP` (no PASID support), `EINVAL` (dirty-tracking or incompatible
 *   domain), `ENOSPC`, `ENODEV`, `EBUSY`, `ENOMEM`
 */
export function intelIommuSetDevPasid(
  domain: IommuDomain,
  dev: Device,
  pasid: number,
  old: IommuDomain | null,
): void {
  const info = infoOf(dev);
  const iommu = info.iommu;
  const d = toDmarDomain(domain);
  if (d === null && domain.type !== IOMMU_DOMAIN_IDENTITY) {
    // blocking_domain_set_dev_pasid
    pasidTearDownEntry(info, pasid, false);
    domainRemoveDevPasid(old, info, pasid);
    return;
  }
  if (!iommu.pasidSupported) throw new ErrnoError('EOPNOTSUPP', `${iommu.name}: no PASID support`);
  if (d === null) {
    if (old !== null) pasidTearDownEntry(info, pasid, false);
    pasidSetupPassThrough(info, pasid);
    domainRemoveDevPasid(old, info, pasid);
    info.pasidDomains.set(pasid, domain);
    return;
  }
  if (d.dirtyOps !== null)
    throw new ErrnoError('EINVAL', 'dirty-tracking domains cannot be attached to a PASID');
  pagingDomainCompatible(d, iommu);
  const did = domainAttachIommu(d, iommu);
  cacheTagAssignDomain(d, did, info, pasid);
  try {
    if (old !== null) pasidTearDownEntry(info, pasid, false);
    setupPagingEntry(info, d, did, pasid);
  } catch (e) {
    cacheTagUnassignDomain(d, did, info, pasid);
    domainDetachIommu(d, iommu);
    throw e;
  }
  domainRemoveDevPasid(old, info, pasid);
  info.pasidDomains.set(pasid, domain);
}

/**
 * `intel_iommu_remove_dev_pasid(dev, pasid, domain)` (history): as the blocking domain's
 * `set_dev_pasid`.
 * @param dev - the device
 * @param pasid - the PASID
 * @param domain - the domain attached there
 */
export function intelIommuRemoveDevPasid(dev: Device, pasid: number, domain: IommuDomain): void {
  const info = infoOf(dev);
  pasidTearDownEntry(info, pasid, false);
  domainRemoveDevPasid(domain, info, pasid);
}

attachHooks.attachDev = intelIommuAttachDevice;
attachHooks.setDevPasid = intelIommuSetDevPasid;

/**
 * `intel_iommu_capable(dev, cap)`: cache coherency and deferred flush always; enforce cache
 * coherency with ECAP.SC; dirty tracking with scalable SLADS + SMPWC.
 * @param dev - the device
 * @param cap - the capability
 */
export function intelIommuCapable(dev: Device, cap: IommuCap): boolean {
  const iommu = infoOf(dev).iommu;
  switch (cap) {
    case IommuCap.CACHE_COHERENCY:
    case IommuCap.DEFERRED_FLUSH:
      return true;
    case IommuCap.ENFORCE_CACHE_COHERENCY:
      return ecapScSupport(iommu.ecap);
    case IommuCap.DIRTY_TRACKING:
      return iommu.ssadsSupported;
    default:
      return false;
  }
}

/**
 * `intel_iommu_get_resv_regions(dev)`: every RMRR naming the device (`IOMMU_RESV_DIRECT`,
 * read/write), then the IOAPIC/MSI range 0xfee00000–0xfeefffff (`IOMMU_RESV_MSI`, prot 0).
 * @param dev - the device
 * @returns the regions
 */
export function intelIommuGetResvRegions(dev: Device): IommuResvRegion[] {
  const out: IommuResvRegion[] = [];
  for (const r of firmware.get(dev)?.rmrrs ?? [])
    out.push(iommuAllocResvRegion(r.start, r.length, IOMMU_READ | IOMMU_WRITE, IommuResvType.DIRECT));
  out.push(
    iommuAllocResvRegion(
      IOAPIC_RANGE_START,
      IOAPIC_RANGE_END - IOAPIC_RANGE_START + 1n,
      0,
      IommuResvType.MSI,
    ),
  );
  return out;
}

/**
 * `device_def_domain_type(dev)`: `IOMMU_DOMAIN_DMA` when the unit has no pass-through support,
 * else 0 (the core's policy decides).
 * @param dev - the device
 */
export function intelIommuDefDomainType(dev: Device): number {
  return ecapPassThrough(infoOf(dev).iommu.ecap) ? 0 : IOMMU_DOMAIN_DMA;
}
