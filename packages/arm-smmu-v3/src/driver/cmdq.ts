/**
 * The SMMUv3 command queue, driver side (Linux `arm_smmu_cmdq_build_cmd`,
 * `arm_smmu_cmdq_issue_cmdlist`, `arm_smmu_cmdq_batch_*`, `__arm_smmu_cmdq_skip_err` in
 * drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c). Commands are written into the queue in
 * `PhysicalMemory`, published through CMDQ_PROD, and CMD_SYNC completion is awaited by polling the
 * MSI write into the SYNC's own slot (OPT_MSIPOLL) or CMDQ_CONS (SEV or plain polling).
 *
 * @remarks
 * This model runs on one thread, so Linux's lock-free multi-CPU insertion (owner election, valid
 * bitmap) collapses to: wait for space, write the entries, write PROD. The total order of one
 * caller's list is kept, as in Linux.
 */

import { ERRNO, ErrnoError } from '@iommu-ts/base';
import type { ArmSmmuDevice } from './arm-smmu-device.js';
import {
  ARM_SMMU_CMDQ_CONS,
  ARM_SMMU_CMDQ_PROD,
  ARM_SMMU_MEMATTR_OIWB,
  ARM_SMMU_SH_ISH,
  CMDQ_0_SSV,
  CMDQ_ATC_0_GLOBAL,
  CMDQ_ATC_1_ADDR_MASK,
  CMDQ_ATC_1_SIZE,
  CMDQ_BATCH_ENTRIES,
  CMDQ_CFGI_1_RANGE_ALL,
  CMDQ_ENT_DWORDS,
  CMDQ_OP,
  CMDQ_PRI_1_GRPID,
  CMDQ_PRI_1_RESP_SHIFT,
  CMDQ_RESUME_0_RESP_SHIFT,
  CMDQ_RESUME_1_STAG,
  CMDQ_SYNC_0_CS_SHIFT,
  CMDQ_SYNC_0_MSH_SHIFT,
  CMDQ_SYNC_0_MSIATTR_SHIFT,
  CMDQ_SYNC_1_MSIADDR_MASK,
  CMDQ_SYNC_CS,
  CMDQ_TLBI_0_ASID_SHIFT,
  CMDQ_TLBI_0_NUM_SHIFT,
  CMDQ_TLBI_0_SCALE_SHIFT,
  CMDQ_TLBI_0_VMID_SHIFT,
  CMDQ_TLBI_1_IPA_MASK,
  CMDQ_TLBI_1_TG_SHIFT,
  CMDQ_TLBI_1_TTL_SHIFT,
  CMDQ_TLBI_1_VA_MASK,
  type PriResp,
  queueInc,
  queuePtr,
  queueSpace,
  type ResumeResp,
} from './regs.js';

/** CMD_PREFETCH_CONFIG. */
export interface ArmSmmuCmdPrefetchCfg {
  /** Opcode name. */
  readonly op: 'PREFETCH_CFG';
  /** StreamID. */
  readonly sid: number;
}
/** CMD_CFGI_STE. */
export interface ArmSmmuCmdCfgiSte {
  /** Opcode name. */
  readonly op: 'CFGI_STE';
  /** StreamID. */
  readonly sid: number;
  /** Leaf: only the STE (true), or also the L1STD (false). */
  readonly leaf: boolean;
}
/** CMD_CFGI_STE_RANGE with Range = 31: every StreamID (Linux `CMDQ_OP_CFGI_ALL`). */
export interface ArmSmmuCmdCfgiAll {
  /** Opcode name. */
  readonly op: 'CFGI_ALL';
}
/** CMD_CFGI_CD. */
export interface ArmSmmuCmdCfgiCd {
  /** Opcode name. */
  readonly op: 'CFGI_CD';
  /** StreamID. */
  readonly sid: number;
  /** SubstreamID. */
  readonly ssid: number;
  /** Leaf: only the CD (true), or also the L1CD (false). */
  readonly leaf: boolean;
}
/** CMD_CFGI_CD_ALL. */
export interface ArmSmmuCmdCfgiCdAll {
  /** Opcode name. */
  readonly op: 'CFGI_CD_ALL';
  /** StreamID. */
  readonly sid: number;
}
/** TLBI commands without address: NH_ALL (VMID), NH_ASID (ASID+VMID), EL2_ASID (ASID), S12_VMALL (VMID), EL2_ALL, NSNH_ALL. */
export interface ArmSmmuCmdTlbiAll {
  /** Opcode name. */
  readonly op:
    | 'TLBI_NH_ALL'
    | 'TLBI_NH_ASID'
    | 'TLBI_EL2_ASID'
    | 'TLBI_S12_VMALL'
    | 'TLBI_EL2_ALL'
    | 'TLBI_NSNH_ALL';
  /** ASID (NH_ASID, EL2_ASID); default 0. */
  readonly asid?: number;
  /** VMID (NH_ALL, NH_ASID, S12_VMALL); default 0. */
  readonly vmid?: number;
}
/** TLBI by address: NH_VA, NH_VAA, EL2_VA (VA 63:12), S2_IPA (IPA 51:12). */
export interface ArmSmmuCmdTlbiVa {
  /** Opcode name. */
  readonly op: 'TLBI_NH_VA' | 'TLBI_NH_VAA' | 'TLBI_EL2_VA' | 'TLBI_S2_IPA';
  /** ASID (NH_VA, EL2_VA); default 0. */
  readonly asid?: number;
  /** VMID (NH_VA, NH_VAA, S2_IPA); default 0. */
  readonly vmid?: number;
  /** Address (VA or IPA), bytes. */
  readonly addr: bigint;
  /** Leaf-only invalidation. */
  readonly leaf: boolean;
  /** Range NUM field (0 … 31); default 0. */
  readonly num?: number;
  /** Range SCALE field (0 … 31); default 0. */
  readonly scale?: number;
  /** TTL level hint (0 … 3); default 0. */
  readonly ttl?: number;
  /** TG granule (0 = not a range, 1 = 4K, 2 = 16K, 3 = 64K); default 0. */
  readonly tg?: number;
}
/** CMD_ATC_INV. */
export interface ArmSmmuCmdAtcInv {
  /** Opcode name. */
  readonly op: 'ATC_INV';
  /** StreamID (the PCI requester ID). */
  readonly sid: number;
  /** SubstreamID valid. */
  readonly ssv: boolean;
  /** SubstreamID (PASID); default 0. */
  readonly ssid?: number;
  /** Address, aligned to 2^size pages. */
  readonly addr: bigint;
  /** log2 of the range in 4 KiB pages; `ATC_INV_SIZE_ALL` = everything. */
  readonly size: number;
  /** Global bit; default false (Linux never sets it). */
  readonly global?: boolean;
}
/** CMD_PRI_RESP. */
export interface ArmSmmuCmdPriResp {
  /** Opcode name. */
  readonly op: 'PRI_RESP';
  /** StreamID. */
  readonly sid: number;
  /** SubstreamID valid. */
  readonly ssv: boolean;
  /** SubstreamID. */
  readonly ssid: number;
  /** Page request group index (0 … 511). */
  readonly grpid: number;
  /** Response code, see `PRI_RESP`. */
  readonly resp: PriResp;
}
/** CMD_RESUME. */
export interface ArmSmmuCmdResume {
  /** Opcode name. */
  readonly op: 'RESUME';
  /** StreamID. */
  readonly sid: number;
  /** Stall tag (0 … 65535). */
  readonly stag: number;
  /** Response, see `RESUME_RESP`. */
  readonly resp: ResumeResp;
}
/** CMD_STALL_TERM. */
export interface ArmSmmuCmdStallTerm {
  /** Opcode name. */
  readonly op: 'STALL_TERM';
  /** StreamID. */
  readonly sid: number;
}
/** CMD_SYNC (normally added by the queue itself). */
export interface ArmSmmuCmdSync {
  /** Opcode name. */
  readonly op: 'CMD_SYNC';
  /** Completion signal (default SEV). */
  readonly cs?: number;
  /** MSI address for CS = IRQ (default 0n). */
  readonly msiAddr?: bigint;
}

/**
 * A command before encoding (Linux `struct arm_smmu_cmdq_ent`): an opcode name and its fields.
 */
export type ArmSmmuCmd =
  | ArmSmmuCmdPrefetchCfg
  | ArmSmmuCmdCfgiSte
  | ArmSmmuCmdCfgiAll
  | ArmSmmuCmdCfgiCd
  | ArmSmmuCmdCfgiCdAll
  | ArmSmmuCmdTlbiAll
  | ArmSmmuCmdTlbiVa
  | ArmSmmuCmdAtcInv
  | ArmSmmuCmdPriResp
  | ArmSmmuCmdResume
  | ArmSmmuCmdStallTerm
  | ArmSmmuCmdSync;

const b = (n: number | undefined): bigint => BigInt((n ?? 0) >>> 0);

/**
 * Encode a command into its two DWs (`arm_smmu_cmdq_build_cmd`).
 * @param ent - the command
 * @returns DW0 and DW1
 * @throws `ErrnoError` `EINVAL` for a PRI_RESP response code Linux rejects (3) or a
 *   RESUME response other than TERM/RETRY/ABORT
 */
export function armSmmuCmdqBuildCmd(ent: ArmSmmuCmd): [bigint, bigint] {
  let d0 = BigInt(CMDQ_OP[ent.op]);
  let d1 = 0n;
  switch (ent.op) {
    case 'TLBI_EL2_ALL':
    case 'TLBI_NSNH_ALL':
      break;
    case 'PREFETCH_CFG':
      d0 |= b(ent.sid) << 32n;
      break;
    case 'CFGI_STE':
      d0 |= b(ent.sid) << 32n;
      d1 |= ent.leaf ? 1n : 0n;
      break;
    case 'CFGI_ALL':
      d1 |= CMDQ_CFGI_1_RANGE_ALL;
      break;
    case 'CFGI_CD':
      d0 |= (b(ent.ssid) & 0xfffffn) << 12n;
      d0 |= b(ent.sid) << 32n;
      d1 |= ent.leaf ? 1n : 0n;
      break;
    case 'CFGI_CD_ALL':
      d0 |= b(ent.sid) << 32n;
      break;
    case 'TLBI_NH_ALL':
    case 'TLBI_S12_VMALL':
      d0 |= (b(ent.vmid) & 0xffffn) << CMDQ_TLBI_0_VMID_SHIFT;
      break;
    case 'TLBI_NH_ASID':
      d0 |= (b(ent.asid) & 0xffffn) << CMDQ_TLBI_0_ASID_SHIFT;
      d0 |= (b(ent.vmid) & 0xffffn) << CMDQ_TLBI_0_VMID_SHIFT;
      break;
    case 'TLBI_EL2_ASID':
      d0 |= (b(ent.asid) & 0xffffn) << CMDQ_TLBI_0_ASID_SHIFT;
      break;
    case 'TLBI_NH_VA':
    case 'TLBI_NH_VAA':
    case 'TLBI_EL2_VA':
    case 'TLBI_S2_IPA': {
      d0 |= (b(ent.num) & 0x1fn) << CMDQ_TLBI_0_NUM_SHIFT;
      d0 |= (b(ent.scale) & 0x1fn) << CMDQ_TLBI_0_SCALE_SHIFT;
      if (ent.op !== 'TLBI_EL2_VA') d0 |= (b(ent.vmid) & 0xffffn) << CMDQ_TLBI_0_VMID_SHIFT;
      if (ent.op === 'TLBI_NH_VA' || ent.op === 'TLBI_EL2_VA')
        d0 |= (b(ent.asid) & 0xffffn) << CMDQ_TLBI_0_ASID_SHIFT;
      d1 |= ent.leaf ? 1n : 0n;
      d1 |= (b(ent.ttl) & 3n) << CMDQ_TLBI_1_TTL_SHIFT;
      d1 |= (b(ent.tg) & 3n) << CMDQ_TLBI_1_TG_SHIFT;
      d1 |=
        BigInt.asUintN(64, ent.addr) &
        (ent.op === 'TLBI_S2_IPA' ? CMDQ_TLBI_1_IPA_MASK : CMDQ_TLBI_1_VA_MASK);
      break;
    }
    case 'ATC_INV':
      d0 |= ent.ssv ? CMDQ_0_SSV : 0n;
      d0 |= ent.global === true ? CMDQ_ATC_0_GLOBAL : 0n;
      d0 |= (b(ent.ssid) & 0xfffffn) << 12n;
      d0 |= b(ent.sid) << 32n;
      d1 |= b(ent.size) & CMDQ_ATC_1_SIZE;
      d1 |= BigInt.asUintN(64, ent.addr) & CMDQ_ATC_1_ADDR_MASK;
      break;
    case 'PRI_RESP':
      if (ent.resp !== 0 && ent.resp !== 1 && ent.resp !== 2)
        throw new ErrnoError('EINVAL', `PRI_RESP: bad response code ${String(ent.resp)}`);
      d0 |= ent.ssv ? CMDQ_0_SSV : 0n;
      d0 |= (b(ent.ssid) & 0xfffffn) << 12n;
      d0 |= b(ent.sid) << 32n;
      d1 |= b(ent.grpid) & CMDQ_PRI_1_GRPID;
      d1 |= BigInt(ent.resp) << CMDQ_PRI_1_RESP_SHIFT;
      break;
    case 'RESUME':
      if (ent.resp !== 0 && ent.resp !== 1 && ent.resp !== 2)
        throw new ErrnoError('EINVAL', `RESUME: bad response code ${String(ent.resp)}`);
      d0 |= b(ent.sid) << 32n;
      d0 |= BigInt(ent.resp) << CMDQ_RESUME_0_RESP_SHIFT;
      d1 |= b(ent.stag) & CMDQ_RESUME_1_STAG;
      break;
    case 'STALL_TERM':
      d0 |= b(ent.sid) << 32n;
      break;
    case 'CMD_SYNC':
      d0 |= BigInt(ent.cs ?? CMDQ_SYNC_CS.SEV) << CMDQ_SYNC_0_CS_SHIFT;
      d0 |= BigInt(ARM_SMMU_SH_ISH) << CMDQ_SYNC_0_MSH_SHIFT;
      d0 |= BigInt(ARM_SMMU_MEMATTR_OIWB) << CMDQ_SYNC_0_MSIATTR_SHIFT;
      d1 |= (ent.msiAddr ?? 0n) & CMDQ_SYNC_1_MSIADDR_MASK;
      break;
  }
  return [d0, d1];
}

/** Bytes per command. */
const CMD_BYTES = CMDQ_ENT_DWORDS * 8;

/**
 * Build the CMD_SYNC for a given queue slot (`arm_smmu_cmdq_build_sync_cmd`): CS = IRQ with the
 * slot's own address as MSI target under OPT_MSIPOLL, CS = SEV otherwise.
 * @param smmu - the SMMU
 * @param slotPa - physical address of the queue slot the SYNC will occupy
 * @returns DW0 and DW1
 */
export function armSmmuCmdqBuildSyncCmd(smmu: ArmSmmuDevice, slotPa: number): [bigint, bigint] {
  if (smmu.msiPoll)
    return armSmmuCmdqBuildCmd({ op: 'CMD_SYNC', cs: CMDQ_SYNC_CS.IRQ, msiAddr: BigInt(slotPa) });
  return armSmmuCmdqBuildCmd({ op: 'CMD_SYNC', cs: CMDQ_SYNC_CS.SEV });
}

function writeCmd(smmu: ArmSmmuDevice, index: number, cmd: readonly [bigint, bigint]): number {
  const q = smmu.cmdq;
  const pa = q.pa + queuePtr(index, q.log2).idx * CMD_BYTES;
  smmu.memory.write64(pa, cmd[0]);
  smmu.memory.write64(pa + 8, cmd[1]);
  return pa;
}

/**
 * Issue a list of commands, optionally followed by a CMD_SYNC whose completion is awaited
 * (`arm_smmu_cmdq_issue_cmdlist`). Waits for queue space by refreshing CMDQ_CONS.
 * @param smmu - the SMMU (after {@link ArmSmmuDevice.reset})
 * @param cmds - commands in order
 * @param sync - append a CMD_SYNC and wait for it
 * @returns 0, or `-ETIMEDOUT` (logged as "CMD_SYNC timeout") when space or completion never came;
 *   Linux callers mostly ignore it, and so may callers here
 * @throws `ErrnoError` `EINVAL` from {@link armSmmuCmdqBuildCmd}; `E2BIG` if the list cannot
 *   ever fit in the queue
 */
export function cmdqIssueCmdlist(smmu: ArmSmmuDevice, cmds: readonly ArmSmmuCmd[], sync: boolean): number {
  const encoded = cmds.map(armSmmuCmdqBuildCmd);
  return cmdqIssueRaw(smmu, encoded, sync);
}

/**
 * Like {@link cmdqIssueCmdlist} for commands already encoded (DW0, DW1 pairs).
 * @param smmu - the SMMU
 * @param cmds - encoded commands
 * @param sync - append a CMD_SYNC and wait for it
 * @returns 0 or `-ETIMEDOUT`
 * @throws `ErrnoError` `E2BIG` if the list cannot ever fit in the queue
 */
export function cmdqIssueRaw(
  smmu: ArmSmmuDevice,
  cmds: readonly (readonly [bigint, bigint])[],
  sync: boolean,
): number {
  const q = smmu.cmdq;
  const n = cmds.length + (sync ? 1 : 0);
  if (n === 0) return 0;
  if (n > 1 << q.log2)
    throw new ErrnoError('E2BIG', `cmdq: ${n} commands do not fit a queue of ${1 << q.log2}`);
  // Wait for space (Linux: arm_smmu_cmdq_poll_until_not_full).
  if (queueSpace(q.prod, q.cons, q.log2) < n) {
    const ok = smmu.pollUntil(() => {
      smmu.pollGerror();
      q.cons = smmu.mmio.readl(ARM_SMMU_CMDQ_CONS);
      return queueSpace(q.prod, q.cons, q.log2) >= n;
    });
    if (!ok) {
      smmu.logMessage('err', 'CMDQ timeout waiting for space');
      return -ERRNO.ETIMEDOUT;
    }
  }
  let prod = q.prod;
  for (const c of cmds) {
    writeCmd(smmu, prod, c);
    prod = queueInc(prod, 1, q.log2);
  }
  let syncPa = -1;
  let syncProd = prod;
  if (sync) {
    syncProd = prod;
    const pa = q.pa + queuePtr(prod, q.log2).idx * CMD_BYTES;
    syncPa = writeCmd(smmu, prod, armSmmuCmdqBuildSyncCmd(smmu, pa));
    prod = queueInc(prod, 1, q.log2);
  }
  q.prod = prod;
  smmu.stats.cmdsIssued += cmds.length;
  smmu.mmio.writel(ARM_SMMU_CMDQ_PROD, prod);
  if (!sync) return 0;
  smmu.stats.syncs++;
  const ok = smmu.msiPoll
    ? smmu.pollUntil(() => {
        smmu.pollGerror();
        return smmu.memory.read32(syncPa) === 0;
      })
    : smmu.pollUntil(() => {
        smmu.pollGerror();
        q.cons = smmu.mmio.readl(ARM_SMMU_CMDQ_CONS);
        return syncConsumed(syncProd, q.cons, q.log2);
      });
  if (!ok) {
    smmu.logMessage(
      'err',
      `CMD_SYNC timeout at 0x${syncProd.toString(16)} [hwprod 0x${prod.toString(16)}, hwcons 0x${smmu.mmio
        .readl(ARM_SMMU_CMDQ_CONS)
        .toString(16)}]`,
    );
    return -ERRNO.ETIMEDOUT;
  }
  if (smmu.msiPoll) q.cons = smmu.mmio.readl(ARM_SMMU_CMDQ_CONS);
  return 0;
}

/** Whether CONS has moved past the SYNC at `syncProd` (`__arm_smmu_cmdq_poll_until_consumed`). */
function syncConsumed(syncProd: number, cons: number, log2: number): boolean {
  const s = queuePtr(syncProd, log2);
  const c = queuePtr(cons, log2);
  // Consumed once CONS is strictly beyond the SYNC: same wrap and a larger index, or a later wrap
  // with an index not above it.
  if (s.wrp === c.wrp) return c.idx > s.idx;
  return c.idx <= s.idx;
}

/**
 * Issue one command without CMD_SYNC (`arm_smmu_cmdq_issue_cmd`).
 * @param smmu - the SMMU
 * @param cmd - the command
 * @returns 0 or `-ETIMEDOUT`
 */
export function cmdqIssueCmd(smmu: ArmSmmuDevice, cmd: ArmSmmuCmd): number {
  return cmdqIssueCmdlist(smmu, [cmd], false);
}

/**
 * Issue one command followed by a CMD_SYNC and wait (`arm_smmu_cmdq_issue_cmd_with_sync`).
 * @param smmu - the SMMU
 * @param cmd - the command
 * @returns 0 or `-ETIMEDOUT`
 */
export function cmdqIssueCmdWithSync(smmu: ArmSmmuDevice, cmd: ArmSmmuCmd): number {
  return cmdqIssueCmdlist(smmu, [cmd], true);
}

/**
 * A batch of commands (`struct arm_smmu_cmdq_batch`): up to `CMDQ_BATCH_ENTRIES` commands
 * gathered and issued together, ended by one CMD_SYNC on {@link ArmSmmuCmdqBatch.submit}.
 */
export class ArmSmmuCmdqBatch {
  /** The SMMU the batch is for. */
  readonly smmu: ArmSmmuDevice;
  readonly #cmds: (readonly [bigint, bigint])[] = [];

  /**
   * `arm_smmu_cmdq_batch_init`.
   * @param smmu - the SMMU
   */
  constructor(smmu: ArmSmmuDevice) {
    this.smmu = smmu;
  }

  /** Commands gathered and not yet issued. */
  get num(): number {
    return this.#cmds.length;
  }

  /**
   * Add a command (`arm_smmu_cmdq_batch_add`). A full batch is first issued without SYNC; with
   * OPT_CMDQ_FORCE_SYNC a batch holding `CMDQ_BATCH_ENTRIES` − 1 commands is first issued
   * with a SYNC (MMU-700 erratum).
   * @param cmd - the command
   * @throws `ErrnoError` `EINVAL` from {@link armSmmuCmdqBuildCmd} (nothing is added)
   */
  add(cmd: ArmSmmuCmd): void {
    const enc = armSmmuCmdqBuildCmd(cmd);
    const forceSync = this.smmu.cmdqForceSync && this.#cmds.length === CMDQ_BATCH_ENTRIES - 1;
    if (this.#cmds.length === CMDQ_BATCH_ENTRIES || forceSync) {
      cmdqIssueRaw(this.smmu, this.#cmds, forceSync);
      this.#cmds.length = 0;
    }
    this.#cmds.push(enc);
  }

  /**
   * Issue the gathered commands with a CMD_SYNC and wait (`arm_smmu_cmdq_batch_submit`); the
   * batch is empty afterwards.
   * @returns 0 or `-ETIMEDOUT`
   */
  submit(): number {
    const ret = cmdqIssueRaw(this.smmu, this.#cmds, true);
    this.#cmds.length = 0;
    return ret;
  }
}
