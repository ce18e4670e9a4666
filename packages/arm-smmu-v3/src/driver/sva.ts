/**
 * Shared Virtual Addressing for SMMUv3 (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-sva.c): SVA
 * domains whose CDs share a process's arm64 page table, their ASIDs (current Linux's private ASID
 * or the seed's pinned CPU ASID shared through BTM), the MMU-notifier invalidations and the exit
 * path, and the SVA capability check (spec §8.9).
 *
 * @remarks
 * Two ASID designs, chosen per SMMU with {@link armSmmuSvaConfigure}:
 *
 * - `'private'` (current Linux): the SVA domain takes its own ASID from the global ASID space, its
 *   CD has ASET=1 (no broadcast TLB maintenance) and every change of the mm is sent as
 *   TLBI_NH_VA / TLBI_NH_ASID plus ATC_INV from the notifier.
 * - `'shared'` (the seed's design, ~v5.11–v6.9): the CD uses the process's CPU ASID, pinned with
 *   `arm64_mm_context_get`; a DMA domain that held that number is moved to a fresh ASID first
 *   (`arm_smmu_share_asid`). The CD has ASET=0 so that, with `FEAT_BTM`, the CPU's broadcast TLBIs
 *   reach the SMMU and the notifier only invalidates the ATC.
 */

import { ErrnoError } from '@iommu-ts/base';
import { type Device, IOMMU_DOMAIN_SVA, type IommuDomain, type IommuDomainOps } from '@iommu-ts/iommu-core';
import { ARM64_MAIR_EL1, type Mm } from '@iommu-ts/mm';
import {
  ARM_SMMU_FEAT_BBML2,
  ARM_SMMU_FEAT_COHERENCY,
  ARM_SMMU_FEAT_E2H,
  ARM_SMMU_FEAT_HA,
  ARM_SMMU_FEAT_HD,
  ARM_SMMU_FEAT_RANGE_INV,
  ARM_SMMU_FEAT_STALL_FORCE,
  ARM_SMMU_FEAT_SVA,
  ARM_SMMU_FEAT_VAX,
  type ArmSmmuDevice,
} from './arm-smmu-device.js';
import {
  CTXDESC_CD_0_A,
  CTXDESC_CD_0_AA64,
  CTXDESC_CD_0_ASET,
  CTXDESC_CD_0_ASID,
  CTXDESC_CD_0_ENDI,
  CTXDESC_CD_0_R,
  CTXDESC_CD_0_S,
  CTXDESC_CD_0_TCR_EPD0,
  CTXDESC_CD_0_TCR_EPD1,
  CTXDESC_CD_0_TCR_HA,
  CTXDESC_CD_0_TCR_HD,
  CTXDESC_CD_0_TCR_IPS,
  CTXDESC_CD_0_TCR_IRGN0,
  CTXDESC_CD_0_TCR_ORGN0,
  CTXDESC_CD_0_TCR_SH0,
  CTXDESC_CD_0_TCR_T0SZ,
  CTXDESC_CD_0_TCR_TG0,
  CTXDESC_CD_0_V,
  CTXDESC_CD_1_TTB0_MASK,
  makeS1Cd,
} from './cd.js';
import { cmdqIssueCmdlist } from './cmdq.js';
import {
  ArmSmmuDomain,
  ArmSmmuDomainStage,
  armSmmuAsidXaAlloc,
  armSmmuAsidXaLoad,
  armSmmuAsidXaStore,
  armSmmuAtcInvDomain,
  armSmmuTlbInvContext,
  armSmmuTlbInvRangeDomain,
} from './domain.js';
import { NUM_ENTRY_QWORDS } from './entry-writer.js';
import { armSmmuSetPasid, armSmmuWriteCdEntry } from './master.js';
import { ArmSmmuMaster, masterOfDev, smmuHas } from './master-state.js';
import { fieldPrep } from './ste.js';

// ---- the CPU side -----------------------------------------------------------------------------

/**
 * What the SVA code needs to know of the CPUs (Linux reads the sanitised ID registers and
 * `vabits_actual`). The defaults ({@link ARM_SMMU_DEFAULT_CPU}) describe the arm64 machine of
 * `@iommu-ts/mm`: 4 KiB pages, 48-bit VA, 48-bit PA, 16-bit ASIDs, little-endian.
 */
export interface ArmSmmuCpuFeatures {
  /** `PAGE_SIZE` in bytes: 4096, 16384 or 65536. */
  readonly pageSize: 4096 | 16384 | 65536;
  /** `vabits_actual`: user VA bits in use (48, or 52 with LVA/LPA2). */
  readonly vaBits: number;
  /** ID_AA64MMFR0_EL1.PARange (sanitised): 0 = 32 bits … 5 = 48 bits, 6 = 52 bits. */
  readonly paRange: number;
  /** ASID bits of the CPUs (16 if ID_AA64MMFR0_EL1.ASIDBits ≠ 0, else 8). */
  readonly asidBits: 8 | 16;
  /** The CPUs use LPA2 (52-bit VA with 4K/16K pages). */
  readonly lpa2: boolean;
  /** The kernel relies on BBML2 without aborts for its linear map. */
  readonly bbml2NoAbort: boolean;
  /** The CPUs use hardware access-flag updates on table descriptors (FEAT_HAFT). */
  readonly haft: boolean;
  /** The kernel is big-endian (CD.ENDI). */
  readonly bigEndian: boolean;
}

/** The CPUs of the `@iommu-ts/mm` arm64 machine (see {@link ArmSmmuCpuFeatures}). */
export const ARM_SMMU_DEFAULT_CPU: ArmSmmuCpuFeatures = Object.freeze({
  pageSize: 4096,
  vaBits: 48,
  paRange: 5,
  asidBits: 16,
  lpa2: false,
  bbml2NoAbort: false,
  haft: false,
  bigEndian: false,
});

/** Output-size bits of each PARange / IPS encoding. */
const PA_BITS = [32, 36, 40, 42, 44, 48, 52] as const;

/**
 * `arm_smmu_sva_supported(smmu)` (current, spec §8.9): coherent SMMU; a 52-bit CPU VA needs 64K
 * pages without LPA2 and `FEAT_VAX`; `FEAT_BBML2` if the CPU relies on BBML2-noabort; the CPU page
 * size in the SMMU's page sizes; OAS ≥ the CPU's PA size; the SMMU's ASIDs at least as wide as the
 * CPU's; HTTU = HA+HD (IDR0.HTTU = 3, i.e. `FEAT_HD`) if the CPU uses HAFT.
 * @param smmu - a probed SMMU
 * @param cpu - the CPUs (default {@link ARM_SMMU_DEFAULT_CPU})
 * @returns whether SVA is possible
 */
export function armSmmuSvaSupported(
  smmu: ArmSmmuDevice,
  cpu: ArmSmmuCpuFeatures = ARM_SMMU_DEFAULT_CPU,
): boolean {
  if (!smmuHas(smmu, ARM_SMMU_FEAT_COHERENCY)) return false;
  if (cpu.vaBits > 48) {
    if (cpu.pageSize !== 65536 || cpu.lpa2) return false;
    if (!smmuHas(smmu, ARM_SMMU_FEAT_VAX)) return false;
  }
  if (cpu.bbml2NoAbort && !smmuHas(smmu, ARM_SMMU_FEAT_BBML2)) return false;
  if ((smmu.pgsizeBitmap & BigInt(cpu.pageSize)) === 0n) return false;
  const paBits = PA_BITS[Math.min(cpu.paRange, PA_BITS.length - 1)] ?? 52;
  if (smmu.oas < paBits) return false;
  if (smmu.asidBits < cpu.asidBits) return false;
  if (cpu.haft && !smmuHas(smmu, ARM_SMMU_FEAT_HD)) return false;
  return true;
}

/**
 * The end of `arm_smmu_device_hw_probe`: set `ARM_SMMU_FEAT_SVA` when {@link armSmmuSvaSupported}.
 * Called by `armSmmuDeviceProbe` after `probe()`; callers that probe by hand call it themselves.
 * @param smmu - a probed SMMU
 * @param cpu - the CPUs
 * @returns whether `FEAT_SVA` is now set
 */
export function armSmmuSvaProbe(
  smmu: ArmSmmuDevice,
  cpu: ArmSmmuCpuFeatures = ARM_SMMU_DEFAULT_CPU,
): boolean {
  if (armSmmuSvaSupported(smmu, cpu)) smmu.features = (smmu.features | ARM_SMMU_FEAT_SVA) >>> 0;
  else smmu.features = (smmu.features & ~ARM_SMMU_FEAT_SVA) >>> 0;
  return smmuHas(smmu, ARM_SMMU_FEAT_SVA);
}

// ---- options ----------------------------------------------------------------------------------

/** Which ASID design SVA domains use (see the file comment). */
export type ArmSmmuSvaAsidMode = 'private' | 'shared';

/** Per-SMMU SVA settings ({@link armSmmuSvaConfigure}). */
export interface ArmSmmuSvaOptions {
  /** `'private'` (current Linux, default) or `'shared'` (the seed's pinned CPU ASID). */
  readonly asidMode: ArmSmmuSvaAsidMode;
  /** The CPUs, for the CD fields and the capability check. */
  readonly cpu: ArmSmmuCpuFeatures;
}

const svaOptions = new WeakMap<ArmSmmuDevice, ArmSmmuSvaOptions>();

/**
 * Choose the SVA design of an SMMU; applies to SVA domains allocated afterwards.
 * @param smmu - the SMMU
 * @param options - fields to change
 * @returns the settings now in force
 */
export function armSmmuSvaConfigure(
  smmu: ArmSmmuDevice,
  options: Partial<ArmSmmuSvaOptions>,
): ArmSmmuSvaOptions {
  const next = { ...armSmmuSvaOptionsOf(smmu), ...options };
  svaOptions.set(smmu, next);
  return next;
}

/**
 * The SVA settings of an SMMU (default: private ASIDs, {@link ARM_SMMU_DEFAULT_CPU}).
 * @param smmu - the SMMU
 */
export function armSmmuSvaOptionsOf(smmu: ArmSmmuDevice): ArmSmmuSvaOptions {
  return svaOptions.get(smmu) ?? { asidMode: 'private', cpu: ARM_SMMU_DEFAULT_CPU };
}

// ---- SVA domains ------------------------------------------------------------------------------

/** Domains sharing one pinned CPU ASID (shared mode): ASID → SVA domains of the same mm. */
const sharedAsids = new Map<number, Set<ArmSmmuSvaDomain>>();

/**
 * An SVA domain of one SMMU: an {@link ArmSmmuDomain} without io-pgtable whose CDs point at the
 * mm's page table (`struct arm_smmu_domain` with `domain.type = IOMMU_DOMAIN_SVA`; in the seed's
 * design `struct arm_smmu_bond` / the mm's shared `arm_smmu_ctx_desc`).
 */
export class ArmSmmuSvaDomain extends ArmSmmuDomain {
  /** The shared address space. */
  readonly svaMm: Mm;
  /** ASID design the domain was allocated with. */
  readonly asidMode: ArmSmmuSvaAsidMode;
  /** The CPUs whose page table is shared. */
  readonly cpu: ArmSmmuCpuFeatures;
  /** The mm exited while bound (`mmRelease` ran): CDs are dead / quiet. */
  released = false;

  /**
   * @param smmu - the SMMU
   * @param mm - the address space
   * @param options - the SMMU's SVA settings
   */
  constructor(smmu: ArmSmmuDevice, mm: Mm, options: ArmSmmuSvaOptions) {
    super();
    this.ops = armSmmuSvaDomainOps;
    this.type = IOMMU_DOMAIN_SVA;
    this.smmu = smmu;
    this.stage = ArmSmmuDomainStage.S1;
    this.svaMm = mm;
    this.asidMode = options.asidMode;
    this.cpu = options.cpu;
    // The CPU's page sizes (range invalidation takes its granule from the lowest one).
    const ps = BigInt(options.cpu.pageSize);
    this.pgsizeBitmap = ps | (ps << BigInt(Math.log2(options.cpu.pageSize) - 3));
  }
}

/** `to_smmu_domain` for SVA domains. */
function toSva(domain: IommuDomain): ArmSmmuSvaDomain {
  if (!(domain instanceof ArmSmmuSvaDomain)) throw new ErrnoError('EINVAL', 'not an SMMUv3 SVA domain');
  return domain;
}

/** Inputs of {@link makeSvaCd}. */
export interface SvaCdParams {
  /** The SMMU (HA/HD, STALL_FORCE). */
  readonly smmu: ArmSmmuDevice;
  /** CD.S: the master is stall-enabled. */
  readonly stallEnabled: boolean;
  /** The ASID. */
  readonly asid: number;
  /** The mm whose page table is shared, or null for the "dead" CD of an exited process. */
  readonly mm: Mm | null;
  /** ASET: 1 for private ASIDs, 0 for CPU-shared ones (broadcast TLB maintenance applies). */
  readonly aset: boolean;
  /** The CPUs. */
  readonly cpu: ArmSmmuCpuFeatures;
}

/**
 * `arm_smmu_make_sva_cd` (spec §8.9): EPD1, V, IPS = CPU PARange, AA64, S (stall), R, A, ASET,
 * ASID, MAIR = MAIR_EL1; with an mm, T0SZ = 64 − VA bits, TG0 from PAGE_SIZE, IRGN0/ORGN0 WBWA,
 * SH0 inner shareable, TTB0 = the mm's pgd, HA/HD with `FEAT_HA`/`FEAT_HD`; without one (exited
 * process), EPD0 and no walk fields, S and R cleared unless `FEAT_STALL_FORCE`.
 * @returns the CD as 8 qwords
 */
export function makeSvaCd(p: SvaCdParams): bigint[] {
  const cd = new Array<bigint>(NUM_ENTRY_QWORDS).fill(0n);
  let dw0 =
    CTXDESC_CD_0_TCR_EPD1 |
    (p.cpu.bigEndian ? CTXDESC_CD_0_ENDI : 0n) |
    CTXDESC_CD_0_V |
    fieldPrep(CTXDESC_CD_0_TCR_IPS, p.cpu.paRange) |
    CTXDESC_CD_0_AA64 |
    (p.stallEnabled ? CTXDESC_CD_0_S : 0n) |
    CTXDESC_CD_0_R |
    CTXDESC_CD_0_A |
    (p.aset ? CTXDESC_CD_0_ASET : 0n) |
    fieldPrep(CTXDESC_CD_0_ASID, p.asid);
  if (p.mm !== null) {
    const tg0 = p.cpu.pageSize === 4096 ? 0 : p.cpu.pageSize === 65536 ? 1 : 2;
    dw0 |=
      fieldPrep(CTXDESC_CD_0_TCR_T0SZ, 64 - p.cpu.vaBits) |
      fieldPrep(CTXDESC_CD_0_TCR_TG0, tg0) |
      fieldPrep(CTXDESC_CD_0_TCR_IRGN0, 1) |
      fieldPrep(CTXDESC_CD_0_TCR_ORGN0, 1) |
      fieldPrep(CTXDESC_CD_0_TCR_SH0, 3);
    if (smmuHas(p.smmu, ARM_SMMU_FEAT_HA)) dw0 |= CTXDESC_CD_0_TCR_HA;
    if (smmuHas(p.smmu, ARM_SMMU_FEAT_HD)) dw0 |= CTXDESC_CD_0_TCR_HD;
    cd[1] = BigInt(p.mm.pgd) & CTXDESC_CD_1_TTB0_MASK;
  } else {
    dw0 |= CTXDESC_CD_0_TCR_EPD0;
    if (!smmuHas(p.smmu, ARM_SMMU_FEAT_STALL_FORCE)) dw0 &= ~(CTXDESC_CD_0_S | CTXDESC_CD_0_R);
  }
  cd[0] = dw0;
  cd[3] = ARM64_MAIR_EL1;
  return cd;
}

/** The CD `domain` wants for `master` now (live, dead or quiet). */
function svaCdFor(domain: ArmSmmuSvaDomain, master: ArmSmmuMaster): bigint[] {
  const smmu = master.smmu;
  const shared = domain.asidMode === 'shared';
  const base = {
    smmu,
    stallEnabled: master.stallEnabled,
    asid: domain.asid,
    aset: !shared,
    cpu: domain.cpu,
  };
  if (!domain.released) return makeSvaCd({ ...base, mm: domain.svaMm });
  if (!shared) return makeSvaCd({ ...base, mm: null });
  // The seed's "quiet" CD: the live CD with EPD0 set (walks stop, V kept).
  const cd = makeSvaCd({ ...base, mm: domain.svaMm });
  cd[0] = (cd[0] ?? 0n) | CTXDESC_CD_0_TCR_EPD0;
  return cd;
}

/** The CD of any stage-1 holder of an ASID, for rewriting after an ASID change. */
function holderCd(domain: ArmSmmuDomain, master: ArmSmmuMaster): bigint[] | null {
  if (domain instanceof ArmSmmuSvaDomain) return svaCdFor(domain, master);
  if (domain.pgtblCfg === null) return null;
  return makeS1Cd({ asid: domain.asid, pgtblCfg: domain.pgtblCfg, stallEnabled: master.stallEnabled });
}

/** Rewrite every CD of `domain` (each attachment) with its current contents (entry writer). */
function rewriteCds(domain: ArmSmmuDomain): void {
  for (const md of domain.devices) {
    const master = md.master;
    if (!(master instanceof ArmSmmuMaster) || master.cdTable === null) continue;
    const pa = master.cdTable.cdPtr(md.ssid);
    const cd = holderCd(domain, master);
    if (pa === null || cd === null) continue;
    armSmmuWriteCdEntry(master, md.ssid, pa, cd);
  }
}

/** `arm_smmu_tlb_inv_asid`: TLBI_NH_ASID (TLBI_EL2_ASID with E2H) + CMD_SYNC. */
function tlbInvAsid(smmu: ArmSmmuDevice, asid: number): void {
  cmdqIssueCmdlist(
    smmu,
    [
      smmuHas(smmu, ARM_SMMU_FEAT_E2H)
        ? { op: 'TLBI_EL2_ASID', asid }
        : { op: 'TLBI_NH_ASID', asid, vmid: 0 },
    ],
    true,
  );
}

/**
 * `arm_smmu_share_asid(mm, asid)` (the seed's design): make `domain` (shared mode) a user of the
 * CPU ASID `asid`. A free number is simply taken; one held by SVA domains of the same mm is
 * shared; one held by a private domain (a DMA domain, or a private-mode SVA domain) is seized: the
 * holder gets a new ASID, its CDs are rewritten (hitless: only DW0 changes), the old ASID is
 * invalidated (TLBI + SYNC) and handed over.
 * @param domain - the new user
 * @param asid - the pinned CPU ASID
 * @throws ErrnoError `ENOSPC` (no ASID left for the holder; nothing changed), `EBUSY` (held by
 *   another mm's shared domain)
 */
export function armSmmuShareAsid(domain: ArmSmmuSvaDomain, asid: number): void {
  const holder = armSmmuAsidXaLoad(asid);
  if (holder !== undefined) {
    const sharers = sharedAsids.get(asid);
    if (holder instanceof ArmSmmuSvaDomain && holder.asidMode === 'shared') {
      if (holder.svaMm !== domain.svaMm || sharers === undefined)
        throw new ErrnoError('EBUSY', `ASID ${asid} is shared with another mm`);
      sharers.add(domain);
      domain.asid = asid;
      return;
    }
    const hsmmu = holder.smmu;
    if (hsmmu === null) throw new ErrnoError('EBUSY', `ASID ${asid} held by an unfinalised domain`);
    const newAsid = armSmmuAsidXaAlloc(holder, hsmmu.asidBits);
    holder.asid = newAsid;
    rewriteCds(holder);
    tlbInvAsid(hsmmu, asid);
  }
  armSmmuAsidXaStore(asid, domain);
  sharedAsids.set(asid, new Set([domain]));
  domain.asid = asid;
}

/**
 * `arm_smmu_sva_domain_alloc(dev, mm)` (the `domainAllocSva` op): an SVA domain for `mm` on the
 * device's SMMU, with a private ASID from the global space or (shared mode) the mm's pinned CPU
 * ASID, seized from a DMA domain if needed.
 * @param dev - a probed master
 * @param mm - an arm64 address space
 * @returns the domain (the core sets type, mm and users)
 * @throws ErrnoError `ENODEV` (not an SMMUv3 master), `EOPNOTSUPP` (no `FEAT_SVA`), `EINVAL`
 *   (not an arm64 mm), `ENOSPC` (no ASID, or no pinnable CPU ASID); nothing is left allocated
 */
export function armSmmuSvaDomainAlloc(dev: Device, mm: Mm): IommuDomain {
  const smmu = masterOfDev(dev).smmu;
  if (!smmuHas(smmu, ARM_SMMU_FEAT_SVA)) throw new ErrnoError('EOPNOTSUPP', `${smmu.name}: no SVA support`);
  if (mm.arch !== 'arm64') throw new ErrnoError('EINVAL', 'SVA needs an arm64 mm');
  const options = armSmmuSvaOptionsOf(smmu);
  const domain = new ArmSmmuSvaDomain(smmu, mm, options);
  if (options.asidMode === 'private') {
    domain.asid = armSmmuAsidXaAlloc(domain, smmu.asidBits);
    return domain;
  }
  const asid = mm.machine.asids.pin(mm);
  if (asid === 0) throw new ErrnoError('ENOSPC', 'no CPU ASID can be pinned');
  try {
    armSmmuShareAsid(domain, asid);
  } catch (e) {
    mm.machine.asids.unpin(mm);
    throw e;
  }
  return domain;
}

/**
 * `arm_smmu_sva_set_dev_pasid` (the SVA domain's `setDevPasid`): write the SVA CD at `pasid`
 * through the common PASID attach (`arm_smmu_set_pasid`).
 * @throws ErrnoError `EINVAL` (another SMMU, PASID out of range, RID domain without CD table),
 *   `ENOMEM`
 */
export function armSmmuSvaSetDevPasid(
  domain: IommuDomain,
  dev: Device,
  pasid: number,
  old: IommuDomain | null,
): void {
  const d = toSva(domain);
  const master = masterOfDev(dev);
  if (master.smmu !== d.smmu) throw new ErrnoError('EINVAL', 'SVA domain of another SMMU');
  armSmmuSetPasid(master, d, pasid, old, () => svaCdFor(d, master));
}

/** `CMDQ_MAX_TLBI_OPS`: ranges of this many pages or more become a whole-ASID TLBI without RIL. */
function maxTlbiOps(pageSize: number): number {
  return 1 << (Math.log2(pageSize) - 3);
}

/**
 * `arm_smmu_mm_arch_invalidate_secondary_tlbs` (the `mmInvalidate` op, spec §8.9). Private ASID:
 * a whole-ASID TLBI when the range covers the address space, or is 512+ pages without
 * `FEAT_RANGE_INV`, else range TLBI_NH_VA (granule PAGE_SIZE, non-leaf); then ATC_INV for the
 * range on every attachment. Shared ASID with `FEAT_BTM`: the CPU's broadcast TLBIs already reached
 * the SMMU, only the ATC is invalidated.
 * @param domain - an SVA domain
 * @param start - first byte
 * @param end - one past the last byte
 */
export function armSmmuMmInvalidate(domain: IommuDomain, start: number, end: number): void {
  const d = toSva(domain);
  const smmu = d.smmu;
  if (smmu === null) return;
  const full = start <= 0 && end >= d.svaMm.taskSize;
  let size = full ? 0 : end - start;
  if (!smmuHas(smmu, ARM_SMMU_FEAT_RANGE_INV)) {
    if (size >= maxTlbiOps(d.cpu.pageSize) * d.cpu.pageSize) size = 0;
  }
  if (d.asidMode === 'shared' && smmu.btmInUse) {
    armSmmuAtcInvDomain(d, size === 0 ? 0n : BigInt(start), BigInt(size));
    return;
  }
  if (size === 0) armSmmuTlbInvContext(d);
  else armSmmuTlbInvRangeDomain(d, BigInt(start), BigInt(size), d.cpu.pageSize, false);
}

/**
 * `arm_smmu_mm_release` (the `mmRelease` op): the process exits while bound. Every CD of the domain
 * becomes the "dead" CD (private: EPD0, stall and fault recording off unless STALL_FORCE) or the
 * seed's "quiet" CD (shared: EPD0 set, V kept), then TLBI by ASID + SYNC and ATC_INV of everything.
 * @param domain - an SVA domain
 */
export function armSmmuMmRelease(domain: IommuDomain): void {
  const d = toSva(domain);
  if (d.released) return;
  d.released = true;
  rewriteCds(d);
  armSmmuTlbInvContext(d);
}

/**
 * `arm_smmu_sva_domain_free` (the `free` op): TLBI by ASID + SYNC so that no stale entry outlives
 * the ASID, then release it (private) or drop this user of the shared CPU ASID (the last one erases
 * it from the ASID space), and unpin the CPU ASID (shared).
 * @param domain - an SVA domain with no attachment left
 */
export function armSmmuSvaDomainFree(domain: IommuDomain): void {
  const d = toSva(domain);
  const smmu = d.smmu;
  if (d.asid === 0) return;
  if (smmu !== null && !d.testHooks.skipInvalidation) tlbInvAsid(smmu, d.asid);
  if (d.asidMode === 'private') {
    armSmmuAsidXaStore(d.asid, null);
  } else {
    const sharers = sharedAsids.get(d.asid);
    sharers?.delete(d);
    if (sharers === undefined || sharers.size === 0) {
      sharedAsids.delete(d.asid);
      armSmmuAsidXaStore(d.asid, null);
    } else if (armSmmuAsidXaLoad(d.asid) === d) {
      const next = sharers.values().next().value as ArmSmmuSvaDomain;
      armSmmuAsidXaStore(d.asid, next);
    }
    d.svaMm.machine.asids.unpin(d.svaMm);
  }
  d.asid = 0;
}

/** The ops of SVA domains (`arm_smmu_sva_domain_ops`). */
export const armSmmuSvaDomainOps: IommuDomainOps = {
  setDevPasid: armSmmuSvaSetDevPasid,
  mmInvalidate: armSmmuMmInvalidate,
  mmRelease: armSmmuMmRelease,
  free: armSmmuSvaDomainFree,
};
