/**
 * SMMUv3 paging domains: `struct arm_smmu_domain`, ASID/VMID allocation, finalise with
 * io-pgtable, TLB and ATC invalidation (arm-smmu-v3.c `arm_smmu_domain_alloc_paging*`,
 * `arm_smmu_domain_finalise`, `arm_smmu_tlb_inv_*`, `arm_smmu_atc_inv_domain`; spec §8.2, §8.6).
 */

import { ErrnoError } from '@iommu-ts/base';
import {
  allocIoPgtableOps,
  freeIoPgtableOps,
  IO_PGTABLE_QUIRK_ARM_HD,
  IO_PGTABLE_QUIRK_ARM_S2FWB,
  type IommuIotlbGather,
  type IoPgtableCfg,
  IoPgtableFmt,
  type IoPgtableOps,
} from '@iommu-ts/io-pgtable';
import {
  type Device,
  IOMMU_DOMAIN_UNMANAGED,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IommuDomain,
  type IommuDomainOps,
  iommuIotlbGatherAddPage,
  iommuIotlbGatherQueued,
} from '@iommu-ts/iommu-core';
import {
  ARM_SMMU_FEAT_ATS,
  ARM_SMMU_FEAT_COHERENCY,
  ARM_SMMU_FEAT_E2H,
  ARM_SMMU_FEAT_HD,
  ARM_SMMU_FEAT_NESTING,
  ARM_SMMU_FEAT_RANGE_INV,
  ARM_SMMU_FEAT_S2FWB,
  ARM_SMMU_FEAT_TRANS_S1,
  ARM_SMMU_FEAT_VAX,
  type ArmSmmuDevice,
} from './arm-smmu-device.js';
import { type ArmSmmuCmd, ArmSmmuCmdqBatch, cmdqIssueCmdlist } from './cmdq.js';
import { masterOfDev, smmuHas } from './master-state.js';
import { ATC_INV_SIZE_ALL, CMDQ_TLBI_RANGE_NUM_MAX } from './regs.js';

/** `enum arm_smmu_domain_stage`. */
export const ArmSmmuDomainStage = {
  /** Stage 1 (CD with ASID). */
  S1: 0,
  /** Stage 2 (STE with VMID). */
  S2: 1,
} as const;
/** A value of {@link (ArmSmmuDomainStage:variable)}. */
export type ArmSmmuDomainStage = (typeof ArmSmmuDomainStage)[keyof typeof ArmSmmuDomainStage];

/** `IOMMU_NO_PASID`. */
const NO_PASID = 0;
/** Kernel `VA_BITS` of the modelled arm64 kernel (48-bit VA). */
const VA_BITS = 48;

/**
 * One attachment of a master to a domain (`struct arm_smmu_master_domain`): the RID
 * (`ssid` 0) or a PASID.
 */
export interface ArmSmmuMasterDomain {
  /** The master (opaque here; master.ts owns the shape). */
  readonly master: ArmSmmuAttachedMaster;
  /** The SSID/PASID of the attachment, 0 = the RID. */
  readonly ssid: number;
  /** Whether this attachment counted towards `nrAtsMasters`. */
  atsCounted: boolean;
}

/** What domain.ts needs of a master to send ATC invalidations (implemented by master.ts). */
export interface ArmSmmuAttachedMaster {
  /** StreamIDs of the master, in fwspec order (duplicates possible). */
  readonly sids: readonly number[];
  /** `ats_enabled`. */
  readonly atsEnabled: boolean;
}

/** Test hooks of a domain (not in Linux): let a test show what a missing invalidation would do. */
export interface ArmSmmuDomainTestHooks {
  /** Skip every TLBI and ATC_INV the domain would issue. */
  skipInvalidation: boolean;
}

// The global ASID space (`arm_smmu_asid_xa`), shared by every SMMU instance.
const asidXa = new Map<number, ArmSmmuDomain>();

function allocLowest(used: { has(n: number): boolean }, min: number, max: number): number {
  for (let n = min; n <= max; n++) if (!used.has(n)) return n;
  throw new ErrnoError('ENOSPC', 'no free ASID/VMID');
}

/**
 * `xa_load(&arm_smmu_asid_xa, asid)`: the domain holding a stage-1 ASID, if any (used by the SVA
 * code to share or seize ASIDs).
 * @param asid - the ASID
 */
export function armSmmuAsidXaLoad(asid: number): ArmSmmuDomain | undefined {
  return asidXa.get(asid);
}

/**
 * `xa_alloc(&arm_smmu_asid_xa, …, XA_LIMIT(1, 2^asidBits − 1))`: store `domain` at the lowest free
 * ASID.
 * @param domain - the holder
 * @param asidBits - the SMMU's ASID width
 * @returns the ASID
 * @throws ErrnoError `ENOSPC` when every ASID is taken (nothing stored)
 */
export function armSmmuAsidXaAlloc(domain: ArmSmmuDomain, asidBits: number): number {
  const asid = allocLowest(asidXa, 1, 2 ** asidBits - 1);
  asidXa.set(asid, domain);
  return asid;
}

/**
 * `xa_store` / `xa_erase` on the global ASID space: make `domain` the holder of `asid`, or free it
 * (`domain` null).
 * @param asid - the ASID
 * @param domain - the new holder, or null to erase
 */
export function armSmmuAsidXaStore(asid: number, domain: ArmSmmuDomain | null): void {
  if (domain === null) asidXa.delete(asid);
  else asidXa.set(asid, domain);
}

/**
 * `struct arm_smmu_domain`: a paging domain of one SMMU (stage 1 with an ASID or stage 2 with a
 * VMID), its io-pgtable and the list of attachments that need ATC invalidation.
 */
export class ArmSmmuDomain extends IommuDomain {
  /** The SMMU the domain was finalised for. */
  smmu: ArmSmmuDevice | null = null;
  /** Translation stage. */
  stage: ArmSmmuDomainStage = ArmSmmuDomainStage.S1;
  /** `cd.asid` (stage 1), 0 = none. */
  asid = 0;
  /** `s2_cfg.vmid` (stage 2), 0 = none. */
  vmid = 0;
  /** `nest_parent`: a stage-2 domain usable as the parent of nested domains. */
  nestParent = false;
  /** `enforce_cache_coherency`. */
  enforceCacheCoherency = false;
  /** The io-pgtable instance (null before finalise). */
  pgtblOps: IoPgtableOps | null = null;
  /** The io-pgtable configuration (register outputs for the CD / STE). */
  pgtblCfg: IoPgtableCfg | null = null;
  /** `devices`: attachments (RID and PASIDs) of masters to this domain. */
  readonly devices: ArmSmmuMasterDomain[] = [];
  /** `nr_ats_masters`: attachments with ATS enabled. */
  nrAtsMasters = 0;
  /** Test hooks. */
  readonly testHooks: ArmSmmuDomainTestHooks = { skipInvalidation: false };

  /**
   * `arm_smmu_domain_alloc`: an unfinalised domain with {@link armSmmuDefaultDomainOps}.
   */
  constructor() {
    super(armSmmuDefaultDomainOps);
  }
}

/** `to_smmu_domain`: the domain as an {@link ArmSmmuDomain}, or `null`. */
export function toSmmuDomain(domain: IommuDomain | null): ArmSmmuDomain | null {
  return domain instanceof ArmSmmuDomain ? domain : null;
}

/**
 * `arm_smmu_domain_finalise(smmu_domain, smmu, flags)`: allocate the io-pgtable
 * (`ARM_64_LPAE_S1`: ias = min(48 or 52 with VAX, VA_BITS), oas = smmu ias; `ARM_64_LPAE_S2`:
 * ias = smmu ias, oas = smmu oas; tables in the machine's memory) and the ASID / VMID.
 * @throws ErrnoError `ENOMEM` (io-pgtable refused), `ENOSPC` (no ASID/VMID), `EOPNOTSUPP`
 *   (dirty tracking on stage 2); the domain is left unfinalised on error
 */
export function armSmmuDomainFinalise(domain: ArmSmmuDomain, smmu: ArmSmmuDevice, flags: number): void {
  const enableDirty = (flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING) !== 0;
  const cfg: IoPgtableCfg = {
    quirks: 0,
    pgsizeBitmap: smmu.pgsizeBitmap,
    ias: 0,
    oas: 0,
    coherentWalk: smmuHas(smmu, ARM_SMMU_FEAT_COHERENCY),
    memory: smmu.memory,
    tlb: {
      tlbFlushAll: () => armSmmuTlbInvContext(domain),
      tlbFlushWalk: (iova, size, granule) =>
        armSmmuTlbInvRangeDomain(domain, BigInt(iova), BigInt(size), granule, false),
      tlbAddPage: (gather, iova, granule) => {
        if (gather !== null && !iommuIotlbGatherQueued(gather))
          iommuIotlbGatherAddPage(domain, gather, iova, granule);
      },
    },
  };
  let fmt: number;
  if (domain.stage === ArmSmmuDomainStage.S1) {
    cfg.ias = Math.min(smmuHas(smmu, ARM_SMMU_FEAT_VAX) ? 52 : 48, VA_BITS);
    cfg.oas = smmu.ias;
    if (enableDirty) cfg.quirks |= IO_PGTABLE_QUIRK_ARM_HD;
    fmt = IoPgtableFmt.ARM_64_LPAE_S1;
  } else {
    if (enableDirty) throw new ErrnoError('EOPNOTSUPP', 'dirty tracking needs a stage-1 domain');
    cfg.ias = smmu.ias;
    cfg.oas = smmu.oas;
    if (smmuHas(smmu, ARM_SMMU_FEAT_S2FWB) && (flags & IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0)
      cfg.quirks |= IO_PGTABLE_QUIRK_ARM_S2FWB;
    fmt = IoPgtableFmt.ARM_64_LPAE_S2;
  }
  const ops = allocIoPgtableOps(fmt, cfg, domain);
  if (ops === null) throw new ErrnoError('ENOMEM', 'io-pgtable refused the configuration');
  try {
    if (domain.stage === ArmSmmuDomainStage.S1) {
      const asid = allocLowest(asidXa, 1, 2 ** smmu.asidBits - 1);
      asidXa.set(asid, domain);
      domain.asid = asid;
    } else {
      const ida = smmu.vmidMap;
      const vmid = allocLowest(ida, 1, 2 ** smmu.vmidBits - 1);
      ida.add(vmid);
      domain.vmid = vmid;
    }
  } catch (e) {
    freeIoPgtableOps(ops);
    throw e;
  }
  domain.pgsizeBitmap = cfg.pgsizeBitmap;
  domain.geometry.apertureEnd = (1n << BigInt(cfg.ias)) - 1n;
  domain.geometry.forceAperture = true;
  domain.pgtblOps = ops;
  domain.pgtblCfg = cfg;
  domain.smmu = smmu;
}

/**
 * `arm_smmu_domain_alloc_paging(dev)`: a stage-1 paging domain (stage 2 without FEAT_TRANS_S1),
 * finalised for the device's SMMU.
 * @throws ErrnoError `ENOSPC` (no ASID/VMID), `ENOMEM`, `ENODEV` (device not probed by an SMMU)
 */
export function armSmmuDomainAllocPaging(dev: Device): IommuDomain {
  const smmu = masterOfDev(dev).smmu;
  const domain = new ArmSmmuDomain();
  domain.stage = smmuHas(smmu, ARM_SMMU_FEAT_TRANS_S1) ? ArmSmmuDomainStage.S1 : ArmSmmuDomainStage.S2;
  armSmmuDomainFinalise(domain, smmu, 0);
  return domain;
}

/**
 * `arm_smmu_domain_alloc_paging_flags(dev, flags, user_data)`: 0 → as
 * {@link armSmmuDomainAllocPaging}; PASID → stage 1; NEST_PARENT → stage 2 (needs FEAT_NESTING);
 * DIRTY_TRACKING (optionally with PASID) → stage 1 with HA/HD (needs HD and coherency).
 * @throws ErrnoError `EOPNOTSUPP` (unknown flags, user data, unsupported feature), `ENODEV`
 *   (no device), `ENOSPC`, `ENOMEM`
 */
export function armSmmuDomainAllocPagingFlags(
  dev: Device | null,
  flags: number,
  userData: unknown,
): IommuDomain {
  const PAGING_FLAGS =
    IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID | IOMMU_HWPT_ALLOC_NEST_PARENT;
  if ((flags & ~PAGING_FLAGS) !== 0) throw new ErrnoError('EOPNOTSUPP', `unsupported flags ${flags}`);
  if (userData !== null && userData !== undefined)
    throw new ErrnoError('EOPNOTSUPP', 'no user data for paging domains');
  if (dev === null) throw new ErrnoError('ENODEV', 'a device is needed');
  const smmu = masterOfDev(dev).smmu;
  if (flags === IOMMU_HWPT_ALLOC_PASID) return armSmmuDomainAllocPaging(dev);
  const domain = new ArmSmmuDomain();
  switch (flags) {
    case 0:
      domain.stage = smmuHas(smmu, ARM_SMMU_FEAT_TRANS_S1) ? ArmSmmuDomainStage.S1 : ArmSmmuDomainStage.S2;
      break;
    case IOMMU_HWPT_ALLOC_NEST_PARENT:
      if (!smmuHas(smmu, ARM_SMMU_FEAT_NESTING)) throw new ErrnoError('EOPNOTSUPP', 'no nesting support');
      domain.stage = ArmSmmuDomainStage.S2;
      domain.nestParent = true;
      break;
    case IOMMU_HWPT_ALLOC_DIRTY_TRACKING:
    case IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID:
      if (!armSmmuDbmCapable(smmu)) throw new ErrnoError('EOPNOTSUPP', 'no dirty tracking');
      domain.stage = ArmSmmuDomainStage.S1;
      break;
    default:
      throw new ErrnoError('EOPNOTSUPP', `unsupported flag combination ${flags}`);
  }
  domain.type = IOMMU_DOMAIN_UNMANAGED;
  armSmmuDomainFinalise(domain, smmu, flags);
  return domain;
}

/** `arm_smmu_dbm_capable`: FEAT_HD and FEAT_COHERENCY. */
export function armSmmuDbmCapable(smmu: ArmSmmuDevice): boolean {
  return smmuHas(smmu, ARM_SMMU_FEAT_HD) && smmuHas(smmu, ARM_SMMU_FEAT_COHERENCY);
}

function issueSync(smmu: ArmSmmuDevice, cmd: ArmSmmuCmd): void {
  cmdqIssueCmdlist(smmu, [cmd], true);
}

/**
 * `arm_smmu_tlb_inv_context` (`tlb_flush_all`): TLBI_NH_ASID (EL2_ASID with E2H) or
 * TLBI_S12_VMALL, each with a CMD_SYNC, then an ATC invalidation of the whole domain.
 */
export function armSmmuTlbInvContext(domain: ArmSmmuDomain): void {
  const smmu = domain.smmu;
  if (smmu === null || domain.testHooks.skipInvalidation) return;
  if (domain.stage === ArmSmmuDomainStage.S1) {
    issueSync(
      smmu,
      smmuHas(smmu, ARM_SMMU_FEAT_E2H)
        ? { op: 'TLBI_EL2_ASID', asid: domain.asid }
        : { op: 'TLBI_NH_ASID', asid: domain.asid, vmid: 0 },
    );
  } else {
    issueSync(smmu, { op: 'TLBI_S12_VMALL', vmid: domain.vmid });
  }
  armSmmuAtcInvDomain(domain, 0n, 0n);
}

/**
 * `arm_smmu_tlb_inv_range_domain(iova, size, granule, leaf, domain)`: TLBI_NH_VA (EL2_VA) /
 * TLBI_S2_IPA over the range, with range encoding when FEAT_RANGE_INV, batched and synced; a
 * nest parent also gets TLBI_NH_ALL(vmid) + SYNC; then ATC invalidation of the range.
 * @param size - bytes; 0 does nothing
 * @param granule - bytes per command without range invalidation (the leaf page size)
 * @param leaf - leaf-only invalidation (unmap of pages) vs walk-cache flush
 */
export function armSmmuTlbInvRangeDomain(
  domain: ArmSmmuDomain,
  iova: bigint,
  size: bigint,
  granule: number,
  leaf: boolean,
): void {
  const smmu = domain.smmu;
  if (smmu === null || domain.testHooks.skipInvalidation) return;
  if (domain.stage === ArmSmmuDomainStage.S1) {
    const op = smmuHas(smmu, ARM_SMMU_FEAT_E2H) ? 'TLBI_EL2_VA' : 'TLBI_NH_VA';
    tlbInvRange(smmu, domain, { op, asid: domain.asid, vmid: 0 }, iova, size, granule, leaf);
  } else {
    tlbInvRange(smmu, domain, { op: 'TLBI_S2_IPA', vmid: domain.vmid }, iova, size, granule, leaf);
  }
  if (domain.nestParent) issueSync(smmu, { op: 'TLBI_NH_ALL', vmid: domain.vmid });
  armSmmuAtcInvDomain(domain, iova, size);
}

function ffs64(x: bigint): number {
  let n = 0;
  while (((x >> BigInt(n)) & 1n) === 0n) n++;
  return n;
}

/** `__arm_smmu_tlb_inv_range`: the per-range TLBI loop (spec §4.5). */
function tlbInvRange(
  smmu: ArmSmmuDevice,
  domain: ArmSmmuDomain,
  base: { op: 'TLBI_NH_VA' | 'TLBI_EL2_VA' | 'TLBI_S2_IPA'; asid?: number; vmid: number },
  iova: bigint,
  size: bigint,
  granule: number,
  leaf: boolean,
): void {
  if (size === 0n) return;
  const batch = new ArmSmmuCmdqBatch(smmu);
  const end = iova + size;
  let invRange = BigInt(granule);
  const range = smmuHas(smmu, ARM_SMMU_FEAT_RANGE_INV);
  let numPages = 0n;
  let tg = 0;
  let ttl = 0;
  let tgEnc = 0;
  if (range) {
    tg = ffs64(domain.pgsizeBitmap);
    numPages = size >> BigInt(tg);
    tgEnc = (tg - 10) / 2;
    if (leaf) ttl = 4 - Math.floor((Math.log2(granule) - 3) / (tg - 3));
    else if ((numPages & BigInt(CMDQ_TLBI_RANGE_NUM_MAX)) === 1n) numPages++;
  }
  let addr = iova;
  while (addr < end) {
    let num = 0;
    let scale = 0;
    if (range) {
      scale = ffs64(numPages);
      const n = (numPages >> BigInt(scale)) & BigInt(CMDQ_TLBI_RANGE_NUM_MAX);
      num = Number(n) - 1;
      invRange = n << BigInt(scale + tg);
      numPages -= n << BigInt(scale);
    }
    const cmd: ArmSmmuCmd = range
      ? { ...base, addr, leaf, num, scale, ttl, tg: tgEnc }
      : { ...base, addr, leaf };
    batch.add(cmd);
    addr += invRange;
  }
  batch.submit();
}

/**
 * `arm_smmu_atc_inv_to_cmd(ssid, iova, size)`: the ATC_INV address / size pair for a range, in
 * 4 KiB grains (spec §8.6); size 0 → everything (Size 52).
 * @returns the command without `sid`
 */
export function armSmmuAtcInvToCmd(
  ssid: number,
  iova: bigint,
  size: bigint,
): { ssv: boolean; ssid: number; addr: bigint; size: number } {
  const ssv = ssid !== NO_PASID;
  if (size === 0n) return { ssv, ssid, addr: 0n, size: ATC_INV_SIZE_ALL };
  let pageStart = iova >> 12n;
  const pageEnd = (iova + size - 1n) >> 12n;
  const x = pageStart ^ pageEnd;
  const log2Span = x === 0n ? 0 : x.toString(2).length;
  pageStart &= ~((1n << BigInt(log2Span)) - 1n);
  return { ssv, ssid, addr: pageStart << 12n, size: log2Span };
}

/**
 * `arm_smmu_atc_inv_domain(domain, iova, size)`: ATC_INV for every ATS-enabled attachment of the
 * domain (each SID, the attachment's PASID), one batch + SYNC; nothing without FEAT_ATS or when
 * `nrAtsMasters` is 0.
 * @param size - bytes, 0 = everything
 */
export function armSmmuAtcInvDomain(domain: ArmSmmuDomain, iova: bigint, size: bigint): void {
  const smmu = domain.smmu;
  if (smmu === null || domain.testHooks.skipInvalidation) return;
  if (!smmuHas(smmu, ARM_SMMU_FEAT_ATS) || domain.nrAtsMasters === 0) return;
  const batch = new ArmSmmuCmdqBatch(smmu);
  for (const md of domain.devices) {
    if (!md.master.atsEnabled) continue;
    const c = armSmmuAtcInvToCmd(md.ssid, iova, size);
    for (const sid of md.master.sids) batch.add({ op: 'ATC_INV', sid, ...c });
  }
  batch.submit();
}

/** `arm_smmu_domain_free_paging`: free the io-pgtable (which flushes by ASID/VMID), then the ASID / VMID. */
export function armSmmuDomainFreePaging(domain: ArmSmmuDomain): void {
  if (domain.pgtblOps !== null) freeIoPgtableOps(domain.pgtblOps);
  domain.pgtblOps = null;
  if (domain.asid !== 0) asidXa.delete(domain.asid);
  if (domain.vmid !== 0 && domain.smmu !== null) domain.smmu.vmidMap.delete(domain.vmid);
  domain.asid = 0;
  domain.vmid = 0;
}

function pgtbl(domain: IommuDomain): IoPgtableOps {
  const d = toSmmuDomain(domain);
  if (d === null || d.pgtblOps === null) throw new ErrnoError('ENODEV', 'not a finalised SMMUv3 domain');
  return d.pgtblOps;
}

/**
 * The domain ops of SMMUv3 paging domains (`arm_smmu_ops.default_domain_ops`): attach and PASID
 * attach (master.ts), map/unmap/iova_to_phys through io-pgtable, `flush_iotlb_all`, `iotlb_sync`,
 * `enforce_cache_coherency`, `free`.
 */
export const armSmmuDefaultDomainOps: IommuDomainOps = {
  attachDev(domain, dev, old) {
    attachHooks.attachDev(domain, dev, old);
  },
  setDevPasid(domain, dev, pasid, old) {
    attachHooks.setDevPasid(domain, dev, pasid, old);
  },
  mapPages(domain, iova, paddr, pgsize, pgcount, prot) {
    return pgtbl(domain).mapPages(iova, paddr, pgsize, pgcount, prot);
  },
  unmapPages(domain, iova, pgsize, pgcount, gather) {
    return pgtbl(domain).unmapPages(iova, pgsize, pgcount, gather);
  },
  flushIotlbAll(domain) {
    const d = toSmmuDomain(domain);
    if (d?.smmu) armSmmuTlbInvContext(d);
  },
  iotlbSync(domain, gather: IommuIotlbGather) {
    const d = toSmmuDomain(domain);
    if (d === null || gather.pgsize === 0) return;
    armSmmuTlbInvRangeDomain(
      d,
      BigInt(gather.start),
      BigInt(gather.end - gather.start + 1),
      gather.pgsize,
      true,
    );
  },
  iovaToPhys(domain, iova) {
    return BigInt(pgtbl(domain).iovaToPhys(iova));
  },
  enforceCacheCoherency(domain) {
    const d = toSmmuDomain(domain);
    if (d === null) return false;
    if (!d.devices.every((md) => attachHooks.masterCanwbs(md.master))) return false;
    d.enforceCacheCoherency = true;
    return true;
  },
  free(domain) {
    const d = toSmmuDomain(domain);
    if (d !== null) armSmmuDomainFreePaging(d);
  },
};

/**
 * The attach entry points master.ts installs (breaks the import cycle domain.ts → master.ts).
 * @internal
 */
export const attachHooks: {
  attachDev(domain: IommuDomain, dev: Device, old: IommuDomain | null): void;
  setDevPasid(domain: IommuDomain, dev: Device, pasid: number, old: IommuDomain | null): void;
  masterCanwbs(master: ArmSmmuAttachedMaster): boolean;
} = {
  attachDev: () => {
    throw new ErrnoError('ENODEV', 'master.ts not loaded');
  },
  setDevPasid: () => {
    throw new ErrnoError('ENODEV', 'master.ts not loaded');
  },
  masterCanwbs: () => false,
};
