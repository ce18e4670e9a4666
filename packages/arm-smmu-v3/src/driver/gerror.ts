/**
 * Global error handling (Linux `arm_smmu_gerror_handler`, `__arm_smmu_cmdq_skip_err` in
 * drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c; spec §1.8, §4.6).
 */

import { IrqReturn } from '@iommu-ts/base';
import type { ArmSmmuDevice } from './arm-smmu-device.js';
import { armSmmuCmdqBuildSyncCmd } from './cmdq.js';
import {
  ARM_SMMU_CMDQ_CONS,
  ARM_SMMU_CR0,
  ARM_SMMU_CR0ACK,
  ARM_SMMU_GERROR,
  ARM_SMMU_GERRORN,
  CMDQ_CONS_ERR,
  CMDQ_ERR_CERROR_ABT_IDX,
  CMDQ_ERR_CERROR_ATC_INV_IDX,
  CMDQ_ERR_CERROR_ILL_IDX,
  CMDQ_ERR_CERROR_NONE_IDX,
  GERROR_CMDQ_ERR,
  GERROR_ERR_MASK,
  GERROR_EVTQ_ABT_ERR,
  GERROR_MSI_CMDQ_ABT_ERR,
  GERROR_MSI_EVTQ_ABT_ERR,
  GERROR_MSI_GERROR_ABT_ERR,
  GERROR_MSI_PRIQ_ABT_ERR,
  GERROR_PRIQ_ABT_ERR,
  GERROR_SFM_ERR,
  queuePtr,
} from './regs.js';

/** Text of each CMDQ_CONS.ERR value (Linux `cerror_str`). */
const CERROR_STR: Readonly<Record<number, string>> = {
  [CMDQ_ERR_CERROR_NONE_IDX]: 'No error',
  [CMDQ_ERR_CERROR_ILL_IDX]: 'Illegal command',
  [CMDQ_ERR_CERROR_ABT_IDX]: 'Abort on command fetch',
  [CMDQ_ERR_CERROR_ATC_INV_IDX]: 'ATC invalidate timeout',
};

/**
 * Recover from a command queue error (`__arm_smmu_cmdq_skip_err`): for CERROR_ILL (and unknown
 * codes) the command at CONS is logged and replaced in memory by a CMD_SYNC; CERROR_ABT and
 * CERROR_ATC_INV_SYNC are left for the SMMU to retry. Does not acknowledge GERROR.
 * @param smmu - the SMMU
 * @returns the error code found (0 … 127)
 */
export function armSmmuCmdqSkipErr(smmu: ArmSmmuDevice): number {
  const cons = smmu.mmio.readl(ARM_SMMU_CMDQ_CONS) >>> 0;
  const idx = (cons & CMDQ_CONS_ERR) >>> 24;
  smmu.logMessage(
    'err',
    `CMDQ error (cons 0x${cons.toString(16).padStart(8, '0')}): ${CERROR_STR[idx] ?? 'Unknown'}`,
  );
  switch (idx) {
    case CMDQ_ERR_CERROR_ABT_IDX:
      smmu.logMessage('err', 'retrying command fetch');
      return idx;
    case CMDQ_ERR_CERROR_NONE_IDX:
    case CMDQ_ERR_CERROR_ATC_INV_IDX:
      // ATC_INV_SYNC: CONS still points at the CMD_SYNC, which the SMMU retries.
      return idx;
  }
  const q = smmu.cmdq;
  const pa = q.pa + queuePtr(cons, q.log2).idx * q.entDwords * 8;
  const d0 = smmu.memory.read64(pa);
  const d1 = smmu.memory.read64(pa + 8);
  smmu.logMessage(
    'err',
    `skipping command in error state: 0x${d0.toString(16).padStart(16, '0')} 0x${d1.toString(16).padStart(16, '0')}`,
  );
  const [s0, s1] = armSmmuCmdqBuildSyncCmd(smmu, pa);
  smmu.memory.write64(pa, s0);
  smmu.memory.write64(pa + 8, s1);
  return idx;
}

/**
 * The GERROR interrupt handler (`arm_smmu_gerror_handler`): read the active errors (GERROR XOR
 * GERRORN), log each, enter SMMU disable on SFM_ERR, recover command errors, then acknowledge all
 * of them by writing GERRORN = GERROR.
 * @param smmu - the SMMU
 * @returns `IrqReturn.NONE` when no error is active, else `IrqReturn.HANDLED`
 */
export function armSmmuGerrorHandler(smmu: ArmSmmuDevice): IrqReturn {
  const gerror = smmu.mmio.readl(ARM_SMMU_GERROR) >>> 0;
  const gerrorn = smmu.mmio.readl(ARM_SMMU_GERRORN) >>> 0;
  const active = (gerror ^ gerrorn) & GERROR_ERR_MASK;
  if (active === 0) return IrqReturn.NONE;
  smmu.stats.gerrors++;
  smmu.logMessage(
    'warn',
    `unexpected global error reported (0x${active.toString(16).padStart(8, '0')}), this could be serious`,
  );
  if ((active & GERROR_SFM_ERR) !== 0) {
    smmu.logMessage('err', 'device has entered Service Failure Mode!');
    try {
      smmu.writeRegSync(0, ARM_SMMU_CR0, ARM_SMMU_CR0ACK);
    } catch {
      smmu.logMessage('err', 'failed to disable the SMMU');
    }
  }
  if ((active & GERROR_MSI_GERROR_ABT_ERR) !== 0) smmu.logMessage('warn', 'GERROR MSI write aborted');
  if ((active & GERROR_MSI_PRIQ_ABT_ERR) !== 0) smmu.logMessage('warn', 'PRIQ MSI write aborted');
  if ((active & GERROR_MSI_EVTQ_ABT_ERR) !== 0) smmu.logMessage('warn', 'EVTQ MSI write aborted');
  if ((active & GERROR_MSI_CMDQ_ABT_ERR) !== 0) smmu.logMessage('warn', 'CMDQ MSI write aborted');
  if ((active & GERROR_PRIQ_ABT_ERR) !== 0)
    smmu.logMessage('err', 'PRIQ write aborted -- events may have been lost');
  if ((active & GERROR_EVTQ_ABT_ERR) !== 0)
    smmu.logMessage('err', 'EVTQ write aborted -- events may have been lost');
  if ((active & GERROR_CMDQ_ERR) !== 0) armSmmuCmdqSkipErr(smmu);
  smmu.mmio.writel(ARM_SMMU_GERRORN, gerror);
  return IrqReturn.HANDLED;
}
