/**
 * SMMUv3 attach flows: probe/release of masters, groups, attach of paging / identity / blocked
 * domains, PASIDs through the CD table, ATS enable/disable (arm-smmu-v3.c
 * `arm_smmu_probe_device`, `arm_smmu_attach_dev`, `arm_smmu_attach_prepare/commit`,
 * `arm_smmu_set_pasid`, `arm_smmu_install_ste_for_dev`, `arm_smmu_write_cd_entry`; spec §8.3,
 * §8.4, §8.5, §8.7).
 */

import { ErrnoError } from '@iommu-ts/base';
import {
  type Device,
  genericDeviceGroup,
  IOMMU_DOMAIN_BLOCKED,
  IOMMU_DOMAIN_IDENTITY,
  IOMMU_FWSPEC_PCI_RC_ATS,
  IOMMU_FWSPEC_PCI_RC_CANWBS,
  IOMMU_MMIO,
  IOMMU_NO_PASID,
  IOMMU_NOEXEC,
  IOMMU_WRITE,
  IommuCap,
  type IommuDevice,
  IommuDomain,
  type IommuGroup,
  type IommuResvRegion,
  IommuResvType,
  iommuAllocResvRegion,
  PciDevice,
  PlatformDevice,
  pciAtsSupported,
  pciDeviceGroup,
  pciDisableAts,
  pciDisablePasid,
  pciEnableAts,
  pciEnablePasid,
  pciMaxPasids,
  pciPasidFeatures,
  pciPrepareAts,
} from '@iommu-ts/iommu-core';
import {
  ARM_SMMU_FEAT_2_LVL_CDTAB,
  ARM_SMMU_FEAT_ATS,
  ARM_SMMU_FEAT_ATTR_TYPES_OVR,
  ARM_SMMU_FEAT_COHERENCY,
  ARM_SMMU_FEAT_E2H,
  ARM_SMMU_FEAT_STALL_FORCE,
  ARM_SMMU_FEAT_STALLS,
  ARM_SMMU_OPT_SKIP_PREFETCH,
  type ArmSmmuDevice,
} from './arm-smmu-device.js';
import { ArmSmmuCdTable, CTXDESC_CD_0_V, CTXDESC_LINEAR_CDMAX, cdUsedBits, makeS1Cd } from './cd.js';
import { ArmSmmuCmdqBatch, cmdqIssueCmdlist } from './cmdq.js';
import {
  type ArmSmmuDomain,
  ArmSmmuDomainStage,
  armSmmuAtcInvToCmd,
  armSmmuDbmCapable,
  attachHooks,
  toSmmuDomain,
} from './domain.js';
import { armSmmuWriteEntry } from './entry-writer.js';
import { ArmSmmuMaster, masterOfDev, smmuHas } from './master-state.js';
import { STRTAB_STE_0_CFG } from './regs.js';
import {
  fieldGet,
  makeAbortSte,
  makeBypassSte,
  makeCdtableSte,
  makeS2DomainSte,
  STRTAB_STE_0_CFG_S1_TRANS,
  STRTAB_STE_1_EATS,
  STRTAB_STE_1_EATS_TRANS,
  STRTAB_STE_1_S1DSS_BYPASS,
  STRTAB_STE_1_S1DSS_SSID0,
  STRTAB_STE_1_S1DSS_TERMINATE,
  steUsedBits,
} from './ste.js';

/** `MSI_IOVA_BASE`: the software MSI window. */
export const MSI_IOVA_BASE = 0x0800_0000n;
/** `MSI_IOVA_LENGTH`: 1 MiB. */
export const MSI_IOVA_LENGTH = 0x10_0000n;

// ---- STE / CD writers -----------------------------------------------------------------------

/**
 * `arm_smmu_write_ste` for one SID: the entry writer with CFGI_STE(sid, leaf) + CMD_SYNC as its
 * sync, then PREFETCH_CONFIG(sid) without SYNC unless OPT_SKIP_PREFETCH.
 */
export function armSmmuWriteSte(smmu: ArmSmmuDevice, sid: number, target: readonly bigint[]): void {
  const pa = smmu.steAddress(sid);
  armSmmuWriteEntry(
    {
      getUsed: steUsedBits,
      sync: () => {
        cmdqIssueCmdlist(smmu, [{ op: 'CFGI_STE', sid, leaf: true }], true);
      },
      readQword: (i) => smmu.memory.read64(pa + i * 8),
      writeQword: (i, v) => smmu.memory.write64(pa + i * 8, v),
    },
    target,
  );
  if ((smmu.options & ARM_SMMU_OPT_SKIP_PREFETCH) === 0)
    cmdqIssueCmdlist(smmu, [{ op: 'PREFETCH_CFG', sid }], false);
}

/**
 * `arm_smmu_install_ste_for_dev`: record whether the STE is a CD-table STE and its EATS, then
 * write it for each distinct SID of the master.
 */
export function armSmmuInstallSteForDev(master: ArmSmmuMaster, target: readonly bigint[]): void {
  master.cdTableInSte = fieldGet(STRTAB_STE_0_CFG, target[0] ?? 0n) === STRTAB_STE_0_CFG_S1_TRANS;
  master.steAtsEnabled = Number(fieldGet(STRTAB_STE_1_EATS, target[1] ?? 0n)) === STRTAB_STE_1_EATS_TRANS;
  const seen = new Set<number>();
  for (const sid of master.streamIds) {
    if (seen.has(sid)) continue;
    seen.add(sid);
    armSmmuWriteSte(master.smmu, sid, target);
  }
}

/** `arm_smmu_sync_cd`: CFGI_CD(ssid, leaf) for every SID of the master, one batch + SYNC. */
export function armSmmuSyncCd(master: ArmSmmuMaster, ssid: number, leaf: boolean): void {
  const batch = new ArmSmmuCmdqBatch(master.smmu);
  for (const sid of master.streamIds) batch.add({ op: 'CFGI_CD', sid, ssid, leaf });
  batch.submit();
}

/**
 * `arm_smmu_alloc_cd_ptr`: the CD table (allocated on first use) and the CD slot of `ssid` (leaf
 * allocated on demand, followed by CFGI_CD(leaf=0) + SYNC).
 * @returns the CD's physical address
 * @throws ErrnoError `ENOMEM`
 */
export function armSmmuAllocCdPtr(master: ArmSmmuMaster, ssid: number): number {
  const smmu = master.smmu;
  if (master.cdTable === null)
    master.cdTable = ArmSmmuCdTable.alloc(
      smmu.memory,
      master.ssidBits,
      smmuHas(smmu, ARM_SMMU_FEAT_2_LVL_CDTAB),
    );
  if (master.cdTable.ensureLeaf(ssid)) armSmmuSyncCd(master, ssid, false);
  const pa = master.cdTable.cdPtr(ssid);
  if (pa === null) throw new ErrnoError('ENOMEM', 'no CD slot');
  return pa;
}

/**
 * `arm_smmu_write_cd_entry`: keep `usedSsids` (non-zero SSIDs only) and write the CD with the
 * entry writer, CFGI_CD batch + SYNC as its sync.
 */
export function armSmmuWriteCdEntry(
  master: ArmSmmuMaster,
  ssid: number,
  cdPa: number,
  target: readonly bigint[],
): void {
  const mem = master.smmu.memory;
  const targetValid = ((target[0] ?? 0n) & CTXDESC_CD_0_V) !== 0n;
  const curValid = (mem.read64(cdPa) & CTXDESC_CD_0_V) !== 0n;
  const table = master.cdTable;
  if (ssid !== IOMMU_NO_PASID && table !== null) {
    if (curValid && !targetValid) table.usedSsids--;
    else if (!curValid && targetValid) table.usedSsids++;
  }
  armSmmuWriteEntry(
    {
      getUsed: cdUsedBits,
      sync: () => armSmmuSyncCd(master, ssid, true),
      readQword: (i) => mem.read64(cdPa + i * 8),
      writeQword: (i, v) => mem.write64(cdPa + i * 8, v),
    },
    target,
  );
}

/** `arm_smmu_clear_cd`: write an all-zero CD at `ssid` if the CD table is installed. */
export function armSmmuClearCd(master: ArmSmmuMaster, ssid: number): void {
  if (!master.cdTableInSte || master.cdTable === null) return;
  const pa = master.cdTable.cdPtr(ssid);
  if (pa === null) return;
  armSmmuWriteCdEntry(master, ssid, pa, new Array<bigint>(8).fill(0n));
}

function ssidsInUse(master: ArmSmmuMaster): boolean {
  return (master.cdTable?.usedSsids ?? 0) > 0;
}

function cdtableSte(master: ArmSmmuMaster, ats: boolean, s1dss: number): bigint[] {
  const smmu = master.smmu;
  const t = master.cdTable;
  if (t === null) throw new ErrnoError('EINVAL', 'no CD table');
  return makeCdtableSte({
    cdtabDma: BigInt(t.cdtabDma),
    s1fmt: t.s1fmt,
    s1cdmax: t.s1cdmax,
    s1dss,
    ats,
    s1stalld: smmuHas(smmu, ARM_SMMU_FEAT_STALLS) && !master.stallEnabled,
    e2h: smmuHas(smmu, ARM_SMMU_FEAT_E2H),
    attrTypesOvr: smmuHas(smmu, ARM_SMMU_FEAT_ATTR_TYPES_OVR),
  });
}

// ---- ATS -----------------------------------------------------------------------------------

/** `arm_smmu_ats_supported`: FEAT_ATS, the root complex ATS flag in the fwspec, and a PCI function with ATS. */
export function armSmmuAtsSupported(master: ArmSmmuMaster): boolean {
  if (!smmuHas(master.smmu, ARM_SMMU_FEAT_ATS)) return false;
  const fw = master.dev.fwspec;
  if (fw === null || (fw.flags & IOMMU_FWSPEC_PCI_RC_ATS) === 0) return false;
  return master.dev instanceof PciDevice && pciAtsSupported(master.dev);
}

/** `arm_smmu_atc_inv_master(master, ssid)`: invalidate the whole ATC (for `ssid`) on every SID, batch + SYNC. */
export function armSmmuAtcInvMaster(master: ArmSmmuMaster, ssid: number): void {
  const c = armSmmuAtcInvToCmd(ssid, 0n, 0n);
  const batch = new ArmSmmuCmdqBatch(master.smmu);
  for (const sid of master.streamIds) batch.add({ op: 'ATC_INV', sid, ...c });
  batch.submit();
}

function stu(smmu: ArmSmmuDevice): number {
  let n = 0;
  while (((smmu.pgsizeBitmap >> BigInt(n)) & 1n) === 0n) n++;
  return n;
}

/** `arm_smmu_enable_ats`: flush the whole ATC, then enable ATS at the function with STU = smallest page. */
function enableAts(master: ArmSmmuMaster): void {
  armSmmuAtcInvMaster(master, IOMMU_NO_PASID);
  if (master.dev instanceof PciDevice && pciEnableAts(master.dev, stu(master.smmu)) !== 0)
    master.smmu.logMessage('err', `${master.dev.name}: failed to enable ATS`);
}

// ---- attach state --------------------------------------------------------------------------

interface AttachState {
  master: ArmSmmuMaster;
  oldDomain: IommuDomain | null;
  ssid: number;
  cdNeeded: boolean;
  atsEnabled: boolean;
}

function removeMasterDomain(master: ArmSmmuMaster, domain: IommuDomain | null, ssid: number): void {
  const d = toSmmuDomain(domain);
  if (d === null) return;
  const i = d.devices.findIndex((md) => md.master === master && md.ssid === ssid);
  if (i < 0) return;
  const [md] = d.devices.splice(i, 1);
  if (md?.atsCounted) d.nrAtsMasters--;
}

/** `arm_smmu_attach_prepare`: ATS decision, add to the new domain's list, disable ATS first if it goes off. */
function attachPrepare(state: AttachState, newDomain: IommuDomain): void {
  const master = state.master;
  const d = toSmmuDomain(newDomain);
  if (d !== null || state.cdNeeded) state.atsEnabled = armSmmuAtsSupported(master);
  if (d !== null) {
    if (d.enforceCacheCoherency && !masterCanwbs(master))
      throw new ErrnoError('EINVAL', 'domain enforces cache coherency, master cannot');
    d.devices.push({ master, ssid: state.ssid, atsCounted: state.atsEnabled });
    if (state.atsEnabled) d.nrAtsMasters++;
  }
  if (!state.atsEnabled && master.atsEnabled && master.dev instanceof PciDevice) pciDisableAts(master.dev);
}

/** `arm_smmu_attach_commit`: enable ATS / flush the ATC, then leave the old domain. */
function attachCommit(state: AttachState): void {
  const master = state.master;
  if (state.atsEnabled && !master.atsEnabled) enableAts(master);
  else if (state.atsEnabled && master.atsEnabled) armSmmuAtcInvMaster(master, state.ssid);
  else if (!state.atsEnabled && master.atsEnabled) armSmmuAtcInvMaster(master, IOMMU_NO_PASID);
  master.atsEnabled = state.atsEnabled;
  removeMasterDomain(master, state.oldDomain, state.ssid);
}

function masterCanwbs(master: { readonly sids: readonly number[] } | ArmSmmuMaster): boolean {
  if (!(master instanceof ArmSmmuMaster)) return false;
  return ((master.dev.fwspec?.flags ?? 0) & IOMMU_FWSPEC_PCI_RC_CANWBS) !== 0;
}

function ridDomain(dev: Device): IommuDomain | null {
  return dev.iommu?.subsystem.iommuGetDomainForDev(dev) ?? null;
}

// ---- attach --------------------------------------------------------------------------------

/**
 * `arm_smmu_attach_dev(domain, dev, old)` for paging domains (spec §8.3): stage 1 → CD 0 + CD-table
 * STE with S1DSS=SSID0; stage 2 → S2 STE, CD 0 cleared.
 * @throws ErrnoError `EINVAL` (domain of another SMMU, coherency), `EBUSY` (stage 2 while PASIDs
 *   are in use), `ENOMEM`, `ENODEV` (not an SMMUv3 master)
 */
export function armSmmuAttachDev(domain: IommuDomain, dev: Device, old: IommuDomain | null): void {
  const master = masterOfDev(dev);
  const d = toSmmuDomain(domain);
  if (d === null || d.smmu !== master.smmu || d.pgtblCfg === null)
    throw new ErrnoError('EINVAL', 'domain of another SMMU');
  let cdPa = 0;
  if (d.stage === ArmSmmuDomainStage.S1) cdPa = armSmmuAllocCdPtr(master, IOMMU_NO_PASID);
  else if (ssidsInUse(master)) throw new ErrnoError('EBUSY', 'PASIDs in use, stage 2 not possible');
  const state: AttachState = {
    master,
    oldDomain: old ?? ridDomain(dev),
    ssid: IOMMU_NO_PASID,
    cdNeeded: false,
    atsEnabled: false,
  };
  attachPrepare(state, d);
  if (d.stage === ArmSmmuDomainStage.S1) {
    armSmmuWriteCdEntry(
      master,
      IOMMU_NO_PASID,
      cdPa,
      makeS1Cd({ asid: d.asid, pgtblCfg: d.pgtblCfg, stallEnabled: master.stallEnabled }),
    );
    armSmmuInstallSteForDev(master, cdtableSte(master, state.atsEnabled, STRTAB_STE_1_S1DSS_SSID0));
  } else {
    const s2 = d.pgtblCfg.armLpaeS2Cfg;
    if (s2 === undefined) throw new ErrnoError('EINVAL', 'no stage-2 configuration');
    armSmmuInstallSteForDev(
      master,
      makeS2DomainSte({
        vmid: d.vmid,
        vtcr: s2.vtcr,
        vttbr: s2.vttbr,
        ats: state.atsEnabled,
        stallEnabled: master.stallEnabled,
        s2fwb: (d.pgtblCfg.quirks & (1 << 8)) !== 0,
        attrTypesOvr: smmuHas(master.smmu, ARM_SMMU_FEAT_ATTR_TYPES_OVR),
      }),
    );
    armSmmuClearCd(master, IOMMU_NO_PASID);
  }
  attachCommit(state);
}

/** `arm_smmu_attach_dev_ste`: identity / blocked on the RID (CD-table STE with S1DSS when PASIDs are in use). */
function attachDevSte(
  domain: IommuDomain,
  dev: Device,
  old: IommuDomain | null,
  plain: bigint[],
  s1dss: number,
): void {
  const master = masterOfDev(dev);
  const state: AttachState = {
    master,
    oldDomain: old ?? ridDomain(dev),
    ssid: IOMMU_NO_PASID,
    cdNeeded: false,
    atsEnabled: false,
  };
  if (ssidsInUse(master)) state.cdNeeded = true;
  attachPrepare(state, domain);
  const ste = state.cdNeeded ? cdtableSte(master, state.atsEnabled, s1dss) : plain;
  armSmmuInstallSteForDev(master, ste);
  attachCommit(state);
  armSmmuClearCd(master, IOMMU_NO_PASID);
}

/** `arm_smmu_attach_dev_identity`. */
export function armSmmuAttachDevIdentity(domain: IommuDomain, dev: Device, old: IommuDomain | null): void {
  const master = masterOfDev(dev);
  attachDevSte(
    domain,
    dev,
    old,
    makeBypassSte(smmuHas(master.smmu, ARM_SMMU_FEAT_ATTR_TYPES_OVR)),
    STRTAB_STE_1_S1DSS_BYPASS,
  );
}

/** `arm_smmu_attach_dev_blocked`. */
export function armSmmuAttachDevBlocked(domain: IommuDomain, dev: Device, old: IommuDomain | null): void {
  attachDevSte(domain, dev, old, makeAbortSte(), STRTAB_STE_1_S1DSS_TERMINATE);
}

/** `arm_smmu_update_ste`: make the RID's STE a CD-table STE (S1DSS from the RID domain) or just fix EATS. */
function updateSte(master: ArmSmmuMaster, sidDomain: IommuDomain | null, ats: boolean): void {
  if (master.cdTableInSte && master.steAtsEnabled === ats) return;
  // A stage-1 paging RID domain keeps CD 0 (only EATS can change then); Linux assumes identity /
  // blocked here and would pick TERMINATE.
  let s1dss = STRTAB_STE_1_S1DSS_TERMINATE;
  if (sidDomain?.type === IOMMU_DOMAIN_IDENTITY) s1dss = STRTAB_STE_1_S1DSS_BYPASS;
  else if (toSmmuDomain(sidDomain)?.stage === ArmSmmuDomainStage.S1) s1dss = STRTAB_STE_1_S1DSS_SSID0;
  armSmmuInstallSteForDev(master, cdtableSte(master, ats, s1dss));
}

/**
 * `arm_smmu_s1_set_dev_pasid`: install a stage-1 paging domain for `pasid` through its CD (see
 * {@link armSmmuSetPasid}).
 * @throws ErrnoError `EINVAL` (stage 2, another SMMU, RID on a non-CD-table paging domain,
 *   PASID outside the CD table), `ENOMEM`
 */
export function armSmmuSetDevPasid(
  domain: IommuDomain,
  dev: Device,
  pasid: number,
  old: IommuDomain | null,
): void {
  const master = masterOfDev(dev);
  const d = toSmmuDomain(domain);
  if (d === null || d.smmu !== master.smmu || d.pgtblCfg === null)
    throw new ErrnoError('EINVAL', 'domain of another SMMU');
  if (d.stage !== ArmSmmuDomainStage.S1) throw new ErrnoError('EINVAL', 'PASIDs need a stage-1 domain');
  const pgtblCfg = d.pgtblCfg;
  armSmmuSetPasid(master, d, pasid, old, () =>
    makeS1Cd({ asid: d.asid, pgtblCfg, stallEnabled: master.stallEnabled }),
  );
}

/**
 * `arm_smmu_set_pasid(master, domain, pasid, cd, old)`: the PASID attach shared by stage-1 and SVA
 * domains. Allocates the CD slot, prepares the attachment (ATS decision, domain's device list),
 * writes the CD built by `makeCd` (called after the preparation, as Linux fixes the ASID up under
 * its lock), makes the RID's STE a CD-table STE if needed (S1DSS bypass / terminate for an identity
 * / blocked RID domain, hitless) and commits (ATS enable / ATC flush, leave `old`).
 * @param master - the master
 * @param domain - a finalised stage-1 or SVA domain of the master's SMMU
 * @param pasid - 1 .. 2^ssidBits − 1
 * @param old - the domain the PASID had before, or null
 * @param makeCd - builds the target CD (8 qwords)
 * @throws ErrnoError `EINVAL` (PASID outside the CD table, RID on a non-CD-table paging domain),
 *   `ENOMEM`
 */
export function armSmmuSetPasid(
  master: ArmSmmuMaster,
  domain: ArmSmmuDomain,
  pasid: number,
  old: IommuDomain | null,
  makeCd: () => bigint[],
): void {
  const dev = master.dev;
  if (pasid <= 0 || pasid >= 2 ** master.ssidBits)
    throw new ErrnoError('EINVAL', `PASID ${pasid} out of range`);
  const sidDomain = ridDomain(dev);
  if (
    !master.cdTableInSte &&
    sidDomain?.type !== IOMMU_DOMAIN_IDENTITY &&
    sidDomain?.type !== IOMMU_DOMAIN_BLOCKED
  )
    throw new ErrnoError('EINVAL', 'the RID domain does not use a CD table');
  const cdPa = armSmmuAllocCdPtr(master, pasid);
  const state: AttachState = { master, oldDomain: old, ssid: pasid, cdNeeded: false, atsEnabled: false };
  attachPrepare(state, domain);
  armSmmuWriteCdEntry(master, pasid, cdPa, makeCd());
  updateSte(master, sidDomain, state.atsEnabled);
  attachCommit(state);
}

/**
 * `arm_smmu_blocking_set_dev_pasid` (and the older `arm_smmu_remove_dev_pasid`): clear the CD,
 * invalidate the PASID's ATC, leave the domain; when no PASID remains and the RID is on identity /
 * blocked, re-attach it (back to a bypass / abort STE).
 */
export function armSmmuRemoveDevPasid(dev: Device, pasid: number, domain: IommuDomain): void {
  const master = masterOfDev(dev);
  armSmmuClearCd(master, pasid);
  if (master.atsEnabled) armSmmuAtcInvMaster(master, pasid);
  removeMasterDomain(master, domain, pasid);
  if (!ssidsInUse(master)) {
    const sid = ridDomain(dev);
    if (sid !== null && (sid.type === IOMMU_DOMAIN_IDENTITY || sid.type === IOMMU_DOMAIN_BLOCKED))
      sid.ops.attachDev?.(sid, dev, sid);
  }
}

/** The static identity domain (`arm_smmu_identity_domain`). */
export const armSmmuIdentityDomain: IommuDomain = new IommuDomain(
  { attachDev: armSmmuAttachDevIdentity },
  { type: IOMMU_DOMAIN_IDENTITY },
);

/** The static blocked domain (`arm_smmu_blocked_domain`); its `setDevPasid` removes a PASID. */
export const armSmmuBlockedDomain: IommuDomain = new IommuDomain(
  {
    attachDev: armSmmuAttachDevBlocked,
    setDevPasid: (_domain, dev, pasid, old) => {
      if (old !== null) armSmmuRemoveDevPasid(dev, pasid, old);
    },
  },
  { type: IOMMU_DOMAIN_BLOCKED },
);

attachHooks.attachDev = armSmmuAttachDev;
attachHooks.setDevPasid = armSmmuSetDevPasid;
attachHooks.masterCanwbs = (m) => masterCanwbs(m as ArmSmmuMaster);

// ---- probe / release -----------------------------------------------------------------------

/**
 * `arm_smmu_probe_device(dev)`: create the master (`dev.iommu.priv`), insert its StreamIDs into
 * `smmu.streams` (L2 stream tables on demand), ssid bits (PCI PASID capability or the
 * `pasid-num-bits` property, capped by the SMMU and to 10 without CD2L), stall, ATS preparation.
 * @returns the SMMU's `IommuDevice`
 * @throws ErrnoError `ENODEV` (no fwspec), `ERANGE` (SID out of range), `EINVAL` (SID owned by
 *   another master), `ENOMEM`; nothing is left behind on error
 */
export function armSmmuProbeDevice(smmu: ArmSmmuDevice, dev: Device): IommuDevice {
  const fw = dev.fwspec;
  if (fw === null || dev.iommu === null) throw new ErrnoError('ENODEV', `${dev.name}: no fwspec`);
  if (dev.iommu.priv !== null) throw new ErrnoError('EBUSY', `${dev.name}: already probed`);
  const master = new ArmSmmuMaster(smmu, dev);
  const inserted: number[] = [];
  try {
    for (const sid of fw.ids) {
      if (!smmu.sidInRange(sid))
        throw new ErrnoError('ERANGE', `StreamID 0x${sid.toString(16)} out of range`);
      smmu.initL2Strtab(sid);
      const owner = smmu.streams.get(sid);
      if (owner !== undefined && owner !== master)
        throw new ErrnoError('EINVAL', `aliasing StreamID 0x${sid.toString(16)} unsupported`);
      if (owner === undefined) {
        smmu.streams.set(sid, master);
        inserted.push(sid);
      }
      master.streamIds.push(sid);
    }
  } catch (e) {
    for (const sid of inserted) smmu.streams.delete(sid);
    throw e;
  }
  dev.iommu.priv = master;
  const prop =
    dev.ofNode?.readU32('pasid-num-bits') ?? (dev instanceof PlatformDevice ? dev.pasidNumBits : 0) ?? 0;
  master.ssidBits = Math.min(smmu.ssidBits, prop);
  if (dev instanceof PciDevice) {
    const features = pciPasidFeatures(dev);
    const num = pciMaxPasids(dev);
    if (features >= 0 && num > 0 && pciEnablePasid(dev, features) === 0)
      master.ssidBits = Math.min(Math.floor(Math.log2(num)), smmu.ssidBits);
  }
  if (!smmuHas(smmu, ARM_SMMU_FEAT_2_LVL_CDTAB))
    master.ssidBits = Math.min(master.ssidBits, CTXDESC_LINEAR_CDMAX);
  const canStall =
    (dev.ofNode !== null && 'dma-can-stall' in dev.ofNode.properties) ||
    (dev instanceof PlatformDevice && dev.dmaCanStall);
  if ((smmuHas(smmu, ARM_SMMU_FEAT_STALLS) && canStall) || smmuHas(smmu, ARM_SMMU_FEAT_STALL_FORCE))
    master.stallEnabled = true;
  if (dev instanceof PciDevice) pciPrepareAts(dev, stu(smmu));
  return smmu.iommuDevice;
}

/**
 * `arm_smmu_release_device(dev)`: identity STE if the device requires direct mapping, else
 * blocked; disable PASID; drop the StreamIDs and the CD table.
 */
export function armSmmuReleaseDevice(dev: Device): void {
  const master = masterOfDev(dev);
  const smmu = master.smmu;
  const cur = ridDomain(dev);
  if (dev.iommu?.requireDirect) armSmmuAttachDevIdentity(armSmmuIdentityDomain, dev, cur);
  else armSmmuAttachDevBlocked(armSmmuBlockedDomain, dev, cur);
  if (dev instanceof PciDevice) pciDisablePasid(dev);
  for (const sid of master.streamIds) if (smmu.streams.get(sid) === master) smmu.streams.delete(sid);
  master.cdTable?.free();
  master.cdTable = null;
  if (dev.iommu !== null) dev.iommu.priv = null;
}

/** `arm_smmu_device_group(dev)`: `pci_device_group` for PCI, `generic_device_group` otherwise. */
export function armSmmuDeviceGroup(dev: Device): IommuGroup | null {
  return dev.isPci ? pciDeviceGroup(dev) : genericDeviceGroup(dev);
}

/** `arm_smmu_get_resv_regions(dev)`: the SW MSI window 0x08000000 + 1 MiB plus the firmware regions. */
export function armSmmuGetResvRegions(dev: Device): IommuResvRegion[] {
  return [
    iommuAllocResvRegion(
      MSI_IOVA_BASE,
      MSI_IOVA_LENGTH,
      IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO,
      IommuResvType.SW_MSI,
    ),
    ...dev.firmwareResvRegions,
  ];
}

/** `arm_smmu_capable(dev, cap)`. */
export function armSmmuCapable(dev: Device, cap: IommuCap): boolean {
  const master = masterOfDev(dev);
  switch (cap) {
    case IommuCap.CACHE_COHERENCY:
      return smmuHas(master.smmu, ARM_SMMU_FEAT_COHERENCY);
    case IommuCap.ENFORCE_CACHE_COHERENCY:
      return masterCanwbs(master);
    case IommuCap.NOEXEC:
    case IommuCap.DEFERRED_FLUSH:
      return true;
    case IommuCap.DIRTY_TRACKING:
      return armSmmuDbmCapable(master.smmu);
    case IommuCap.PCI_ATS_SUPPORTED:
      return armSmmuAtsSupported(master);
    default:
      return false;
  }
}

/** `arm_smmu_def_domain_type(dev)`: identity for the HiSilicon PTT (0x19e5:0xa12e), else no preference. */
export function armSmmuDefDomainType(dev: Device): number {
  if (dev instanceof PciDevice && dev.vendor === 0x19e5 && dev.device === 0xa12e)
    return IOMMU_DOMAIN_IDENTITY;
  return 0;
}
