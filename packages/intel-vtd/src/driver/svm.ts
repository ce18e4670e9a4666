/**
 * Shared Virtual Addressing on VT-d (drivers/iommu/intel/svm.c `intel_svm_check`,
 * `intel_iommu_sva_supported`, `intel_svm_domain_alloc`, `intel_svm_set_dev_pasid`,
 * `intel_arch_invalidate_secondary_tlbs`, `intel_mm_release`; iommu.c `domain_add_dev_pasid`,
 * `domain_remove_dev_pasid`; up to v6.14 `intel_iommu_dev_enable_feat`; digest §8.10).
 *
 * @remarks
 * An SVA domain owns no page table: its PASID entries are first-stage entries pointing at the
 * process's x86-64 top-level table (FLPTR = `mm.pgd`), FLPM from the CPU's paging mode, PWSNP set,
 * DID 1 on every unit, SRE/WPE clear (user addresses only). Its cache tags carry DID 1 and the
 * PASID, and its IOTLB flushes are PASID-based (type 6, device-TLB type 8). The MMU notifier is
 * iommu-sva's; it calls the domain's `mmInvalidate` / `mmRelease` ops here.
 */

import { ErrnoError } from '@iommu-ts/base';
import {
  type Device,
  IommuDevFeature,
  IommuDomain,
  type IommuDomainOps,
  type IommuOps,
} from '@iommu-ts/iommu-core';
import type { Mm } from '@iommu-ts/mm';
import {
  type CacheTag,
  type CacheTagOwner,
  cacheTagAssignDomain,
  cacheTagFlushAll,
  cacheTagFlushRange,
  cacheTagUnassignDomain,
} from './cache-tag.js';
import { foreignDomainHooks } from './device.js';
import { type DeviceDomainInfo, infoOf } from './device-info.js';
import { domainDetachIommu, domainIdIommu, toDmarDomain } from './domain.js';
import type { IntelIommu } from './intel-iommu.js';
import { intelIommuDisableIopf, intelIommuEnableIopf } from './iopf.js';
import { pasidSetupFirstLevel, pasidTearDownEntry } from './pasid.js';
import './prq-drain.js';
import { capFl1gpSupport, capFl5lpSupport, ecapFlts, FLPT_DEFAULT_DID } from './regs.js';

// ---- the CPU side and the unit's capability ----------------------------------------------------

/** What SVA needs to know of the CPUs (Linux: `cpu_feature_enabled(X86_FEATURE_*)`). */
export interface IntelSvmCpuFeatures {
  /** `X86_FEATURE_GBPAGES`: the CPUs map 1 GiB pages. */
  readonly gbPages: boolean;
  /** `X86_FEATURE_LA57`: the CPUs run 5-level paging. */
  readonly la57: boolean;
}

/** The CPUs of the `@iommu-ts/mm` x86-64 machine: 1 GiB pages, 4-level paging. */
export const INTEL_SVM_DEFAULT_CPU: IntelSvmCpuFeatures = Object.freeze({ gbPages: true, la57: false });

interface UnitSvm {
  capable: boolean;
  cpu: IntelSvmCpuFeatures;
}

const units = new WeakMap<IntelIommu, UnitSvm>();

/**
 * `intel_svm_check(iommu)` (digest §8.10 step 1, run at `init_dmars`): the unit is SVM-capable
 * when PASIDs are usable (scalable mode with ECAP.PASID) and first-stage translation exists, CAP.FL1GP
 * is set if the CPUs use 1 GiB pages and CAP.FL5LP if they use 5-level paging. Logs
 * `DMAR: NAME SVM disabled, incompatible 1GB page capability` / `… incompatible paging mode`
 * otherwise. The result is kept for the unit; callers that skip this get it computed with
 * {@link INTEL_SVM_DEFAULT_CPU} on first use.
 * @param iommu - a probed unit
 * @param cpu - the CPUs
 * @returns whether the unit is SVM-capable (`VTD_FLAG_SVM_CAPABLE`)
 */
export function intelSvmCheck(iommu: IntelIommu, cpu: IntelSvmCpuFeatures = INTEL_SVM_DEFAULT_CPU): boolean {
  let capable = false;
  if (iommu.pasidSupported && ecapFlts(iommu.ecap)) {
    if (cpu.gbPages && !capFl1gpSupport(iommu.cap))
      iommu.logMessage('err', `DMAR: ${iommu.name} SVM disabled, incompatible 1GB page capability`);
    else if (cpu.la57 && !capFl5lpSupport(iommu.cap))
      iommu.logMessage('err', `DMAR: ${iommu.name} SVM disabled, incompatible paging mode`);
    else capable = true;
  }
  units.set(iommu, { capable, cpu });
  return capable;
}

function unitSvm(iommu: IntelIommu): UnitSvm {
  let u = units.get(iommu);
  if (u === undefined) {
    intelSvmCheck(iommu);
    u = units.get(iommu) as UnitSvm;
  }
  return u;
}

/**
 * `intel_iommu_sva_supported(dev)`: the unit is SVM-capable, the device has PASID and ATS
 * enabled, and a device that supports PRI has it enabled (devices without PRI handle their faults
 * themselves).
 * @param dev - a probed device
 * @throws ErrnoError `ENODEV` (unit not SVM-capable, or the device is not behind VT-d), `EINVAL`
 *   (PASID or ATS not enabled; PRI supported but not enabled)
 */
export function intelIommuSvaSupported(dev: Device): void {
  const info = infoOf(dev);
  if (!unitSvm(info.iommu).capable) throw new ErrnoError('ENODEV', `${info.iommu.name}: not SVM-capable`);
  if (!info.pasidEnabled || !info.atsEnabled)
    throw new ErrnoError('EINVAL', `${dev.name}: PASID and ATS must be enabled for SVA`);
  if (info.priSupported && !info.priEnabled)
    throw new ErrnoError('EINVAL', `${dev.name}: PRI supported but not enabled`);
}

// ---- SVA domains ----------------------------------------------------------------------------------

/** One attachment of an SVA domain (`struct dev_pasid_info`). */
export interface IntelSvaDevPasid {
  /** The device. */
  readonly info: DeviceDomainInfo;
  /** The PASID. */
  readonly pasid: number;
  /** The attachment holds an IOPF reference (`iopf_for_domain_set`). */
  readonly iopf: boolean;
}

/** Test hooks of an SVA domain (not in Linux). */
export interface IntelSvaDomainTestHooks {
  /** Skip the IOTLB / device-TLB flushes of the mm notifier. */
  skipInvalidation: boolean;
}

/**
 * An SVA domain (`struct dmar_domain` with `domain.type = IOMMU_DOMAIN_SVA`, `use_first_level`):
 * no page table of its own; its PASID entries share the process's.
 */
export class IntelSvaDomain extends IommuDomain implements CacheTagOwner {
  /** The shared address space. */
  readonly svaMm: Mm;
  /** `cache_tags` (DID 1 and the PASID per attachment, plus device-TLB tags with ATS). */
  readonly cacheTags: CacheTag[] = [];
  /** `dev_pasids`: where the domain is attached. */
  readonly devPasids: IntelSvaDevPasid[] = [];
  /** Test hooks. */
  readonly testHooks: IntelSvaDomainTestHooks = { skipInvalidation: false };
  /** The mm exited while bound (`mmRelease` ran). */
  released = false;

  /** @param mm - the address space */
  constructor(mm: Mm) {
    super(intelSvmDomainOps);
    this.svaMm = mm;
  }

  /** SVA domains flush with PASID-based IOTLB descriptors. */
  get usePiotlb(): boolean {
    return true;
  }

  /** SVA domains are first-stage (`use_first_level`). */
  get useFirstLevel(): boolean {
    return true;
  }
}

/**
 * `to_dmar_domain` for SVA domains.
 * @param domain - any domain
 * @returns the domain as an {@link IntelSvaDomain}, or null
 */
export function toIntelSvaDomain(domain: IommuDomain | null): IntelSvaDomain | null {
  return domain instanceof IntelSvaDomain ? domain : null;
}

/**
 * `intel_svm_domain_alloc(dev, mm)` (the `domainAllocSva` op): {@link intelIommuSvaSupported},
 * then a new {@link IntelSvaDomain}. The core sets the type, the mm and the user count;
 * iommu-sva registers the MMU notifier.
 * @param dev - a probed device
 * @param mm - an x86-64 address space
 * @returns the domain
 * @throws ErrnoError as {@link intelIommuSvaSupported}; `EINVAL` for an mm that is not x86-64
 */
export function intelSvmDomainAlloc(dev: Device, mm: Mm): IommuDomain {
  intelIommuSvaSupported(dev);
  if (mm.arch !== 'x86_64') throw new ErrnoError('EINVAL', `SVA on VT-d needs an x86-64 mm, not ${mm.arch}`);
  return new IntelSvaDomain(mm);
}

/** Drop what an attachment of an SVA domain holds (cache tags, the IOPF reference). */
function svaRemoveDevPasid(domain: IntelSvaDomain, info: DeviceDomainInfo, pasid: number): void {
  const i = domain.devPasids.findIndex((p) => p.info === info && p.pasid === pasid);
  if (i < 0) return;
  const [p] = domain.devPasids.splice(i, 1);
  cacheTagUnassignDomain(domain, FLPT_DEFAULT_DID, info, pasid);
  if (p?.iopf === true) intelIommuDisableIopf(info);
}

/**
 * `domain_remove_dev_pasid(old, dev, pasid)` for any old domain: SVA (tags, IOPF reference) or
 * paging (tags, DID reference).
 */
function removeOld(old: IommuDomain | null, info: DeviceDomainInfo, pasid: number): void {
  info.pasidDomains.delete(pasid);
  const sva = toIntelSvaDomain(old);
  if (sva !== null) {
    svaRemoveDevPasid(sva, info, pasid);
    return;
  }
  const d = toDmarDomain(old);
  if (d === null) return;
  cacheTagUnassignDomain(d, domainIdIommu(d, info.iommu), info, pasid);
  domainDetachIommu(d, info.iommu);
}

foreignDomainHooks.removeDevPasid = (domain, info, pasid) => {
  const sva = toIntelSvaDomain(domain);
  if (sva !== null) svaRemoveDevPasid(sva, info, pasid);
};

/**
 * `intel_svm_set_dev_pasid(domain, dev, pasid, old)` (digest §8.10 steps 3–5): cache tags with
 * DID 1, an IOPF reference when the device has PRI enabled (`iopf_for_domain_replace`), the old
 * entry torn down (replacement), then the first-stage entry: FLPTR = `mm.pgd`, FLPM from the CPU's
 * paging mode, PWSNP, DID 1, AW = unit agaw; finally the old domain's references are dropped.
 * @param domain - an {@link IntelSvaDomain}
 * @param dev - the device
 * @param pasid - a PASID other than 0
 * @param old - the domain being replaced, or null
 * @throws ErrnoError `EINVAL` (not an SVA domain of this driver; unit without FLTS or FL5LP),
 *   `ENODEV`, `EBUSY`, `ENOMEM`, and the IOPF errors; the device is left as it was
 */
export function intelSvmSetDevPasid(
  domain: IommuDomain,
  dev: Device,
  pasid: number,
  old: IommuDomain | null,
): void {
  const sva = toIntelSvaDomain(domain);
  if (sva === null) throw new ErrnoError('EINVAL', 'not a VT-d SVA domain');
  const info = infoOf(dev);
  const iommu = info.iommu;
  const cpu = unitSvm(iommu).cpu;
  cacheTagAssignDomain(sva, FLPT_DEFAULT_DID, info, pasid);
  let iopf = false;
  try {
    if (info.priEnabled) {
      intelIommuEnableIopf(info);
      iopf = true;
    }
    if (old !== null) pasidTearDownEntry(info, pasid, false);
    pasidSetupFirstLevel(info, pasid, {
      fsptptr: BigInt(sva.svaMm.pgd),
      did: FLPT_DEFAULT_DID,
      fl5lp: cpu.la57,
      pageSnoop: false,
      pwsnp: true,
    });
  } catch (e) {
    if (iopf) intelIommuDisableIopf(info);
    cacheTagUnassignDomain(sva, FLPT_DEFAULT_DID, info, pasid);
    throw e;
  }
  removeOld(old, info, pasid);
  sva.devPasids.push({ info, pasid, iopf });
  info.pasidDomains.set(pasid, domain);
}

/**
 * `intel_arch_invalidate_secondary_tlbs` (the `mmInvalidate` op, digest §8.10 step 6): the whole
 * address space → `cache_tag_flush_all`; otherwise `cache_tag_flush_range(start, end − 1, ih = 0)`
 * (PASID-based IOTLB and device-TLB invalidations).
 * @param domain - an {@link IntelSvaDomain}
 * @param start - first byte
 * @param end - one past the last byte
 * @throws ErrnoError from the invalidation queue
 */
export function intelSvmMmInvalidate(domain: IommuDomain, start: number, end: number): void {
  const sva = toIntelSvaDomain(domain);
  if (sva === null) return;
  if (start === 0 && end >= sva.svaMm.taskSize) {
    cacheTagFlushAll(sva);
    return;
  }
  cacheTagFlushRange(sva, BigInt(start), BigInt(end) - 1n, false);
}

/**
 * `intel_mm_release` (the `mmRelease` op, digest §8.10 step 7): tear down every PASID entry of the
 * domain with `fault_ignore` (an FPD-only entry stays, no PRQ drain), so later DMA on the PASID
 * faults silently.
 * @param domain - an {@link IntelSvaDomain}
 * @throws ErrnoError from the invalidation queue
 */
export function intelSvmMmRelease(domain: IommuDomain): void {
  const sva = toIntelSvaDomain(domain);
  if (sva === null) return;
  sva.released = true;
  for (const p of sva.devPasids) pasidTearDownEntry(p.info, p.pasid, true);
}

/** `intel_svm_domain_ops`: set_dev_pasid, the mm notifier callbacks, free. */
export const intelSvmDomainOps: IommuDomainOps = {
  setDevPasid: (domain, dev, pasid, old) => intelSvmSetDevPasid(domain, dev, pasid, old),
  mmInvalidate: (domain, start, end) => intelSvmMmInvalidate(domain, start, end),
  mmRelease: (domain) => intelSvmMmRelease(domain),
  free: () => {},
};

// ---- device features (history, up to v6.14) -------------------------------------------------------

const svaEnabled = new WeakSet<DeviceDomainInfo>();

/**
 * `intel_iommu_dev_enable_feat(dev, feat)` (the `devEnableFeat` op): `IOPF` takes an IOPF
 * reference (PRI on, device on the unit's IOPF queue); `SVA` checks {@link intelIommuSvaSupported}.
 * @param dev - a probed device
 * @param feat - the feature
 * @throws ErrnoError `ENODEV` (not behind VT-d), `EINVAL` (unknown feature), the errors of
 *   `intelIommuEnableIopf` and {@link intelIommuSvaSupported}
 */
export function intelIommuDevEnableFeat(dev: Device, feat: IommuDevFeature): void {
  const info = infoOf(dev);
  if (feat === IommuDevFeature.IOPF) intelIommuEnableIopf(info);
  else if (feat === IommuDevFeature.SVA) {
    intelIommuSvaSupported(dev);
    svaEnabled.add(info);
  } else throw new ErrnoError('EINVAL', `unknown feature ${String(feat)}`);
}

/**
 * `intel_iommu_dev_disable_feat(dev, feat)` (the `devDisableFeat` op).
 * @param dev - a probed device
 * @param feat - the feature
 * @throws ErrnoError `ENODEV`, `EINVAL` (unknown or not enabled), `EBUSY` (SVA disabled while
 *   PASIDs are still bound to SVA domains)
 */
export function intelIommuDevDisableFeat(dev: Device, feat: IommuDevFeature): void {
  const info = infoOf(dev);
  if (feat === IommuDevFeature.IOPF) intelIommuDisableIopf(info);
  else if (feat === IommuDevFeature.SVA) {
    if (!svaEnabled.has(info)) throw new ErrnoError('EINVAL', `${dev.name}: SVA not enabled`);
    for (const d of info.pasidDomains.values())
      if (toIntelSvaDomain(d) !== null) throw new ErrnoError('EBUSY', `${dev.name}: SVA bindings remain`);
    svaEnabled.delete(info);
  } else throw new ErrnoError('EINVAL', `unknown feature ${String(feat)}`);
}

/**
 * The SVA part of the VT-d `IommuOps`, to spread into the unit's ops: `domainAllocSva`,
 * `devEnableFeat`, `devDisableFeat`. (`pageResponse` comes with the PRQ code.)
 */
export const intelIommuSvaOps: Pick<IommuOps, 'domainAllocSva' | 'devEnableFeat' | 'devDisableFeat'> = {
  domainAllocSva: (dev, mm) => intelSvmDomainAlloc(dev, mm),
  devEnableFeat: (dev, feat) => intelIommuDevEnableFeat(dev, feat),
  devDisableFeat: (dev, feat) => intelIommuDevDisableFeat(dev, feat),
};
