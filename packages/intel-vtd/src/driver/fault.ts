/**
 * The DMAR fault interrupt handler (drivers/iommu/intel/dmar.c `dmar_fault`,
 * `dmar_fault_do_one`, `dmar_get_fault_reason`; digest §6.6): read FSTS, walk the pending fault
 * recording registers from FRI, clear each, print Linux's line, then clear PFO/PPF/PRO.
 */

import type { IntelIommu } from './intel-iommu.js';
import {
  capFaultRegOffset,
  capNumFaultRegs,
  DMA_FRCD_F,
  DMA_FSTS_PFO,
  DMA_FSTS_PPF,
  DMA_FSTS_PRO,
  DMAR_FSTS_REG,
  dmaFrcdFaultReason,
  dmaFrcdPageAddr,
  dmaFrcdPasidPresent,
  dmaFrcdPasidValue,
  dmaFrcdSourceId,
  dmaFrcdType,
  dmaFstsFaultRecordIndex,
  PRIMARY_FAULT_REG_LEN,
} from './regs.js';

/** Linux's strings for legacy DMA-remapping fault reasons 0x00–0x0D. */
const DMA_REMAP_FAULT_REASONS: readonly string[] = [
  'Software',
  'Present bit in root entry is clear',
  'Present bit in context entry is clear',
  'Invalid context entry',
  'Access beyond MGAW',
  'PTE Write access is not set',
  'PTE Read access is not set',
  'Next page table ptr is invalid',
  'Root table address invalid',
  'Context table ptr is invalid',
  'non-zero reserved fields in RTP',
  'non-zero reserved fields in CTP',
  'non-zero reserved fields in PTE',
  'PCE for translation request specifies blocking',
];

const U = 'Unknown';
const unknowns = (n: number): string[] => Array.from({ length: n }, () => U);

/** Linux's strings for scalable-mode fault reasons 0x30–0x90. */
const DMA_REMAP_SM_FAULT_REASONS: readonly string[] = [
  'SM: Invalid Root Table Address',
  'SM: TTM 0 for request with PASID',
  'SM: TTM 0 for page group request',
  ...unknowns(5), // 0x33-0x37
  'SM: Error attempting to access Root Entry',
  'SM: Present bit in Root Entry is clear',
  'SM: Non-zero reserved field set in Root Entry',
  ...unknowns(5), // 0x3B-0x3F
  'SM: Error attempting to access Context Entry',
  'SM: Present bit in Context Entry is clear',
  'SM: Non-zero reserved field set in the Context Entry',
  'SM: Invalid Context Entry',
  'SM: DTE field in Context Entry is clear',
  'SM: PASID Enable field in Context Entry is clear',
  'SM: PASID is larger than the max in Context Entry',
  'SM: PRE field in Context-Entry is clear',
  'SM: RID_PASID field error in Context-Entry',
  ...unknowns(7), // 0x49-0x4F
  'SM: Error attempting to access the PASID Directory Entry',
  'SM: Present bit in Directory Entry is clear',
  'SM: Non-zero reserved field set in PASID Directory Entry',
  ...unknowns(5), // 0x53-0x57
  'SM: Error attempting to access PASID Table Entry',
  'SM: Present bit in PASID Table Entry is clear',
  'SM: Non-zero reserved field set in PASID Table Entry',
  'SM: Invalid Scalable-Mode PASID Table Entry',
  'SM: ERE field is clear in PASID Table Entry',
  'SM: SRE field is clear in PASID Table Entry',
  ...unknowns(18), // 0x5E-0x6F
  'SM: Error attempting to access first-level paging entry',
  'SM: Present bit in first-level paging entry is clear',
  'SM: Non-zero reserved field set in first-level paging entry',
  'SM: Error attempting to access FL-PML4 entry',
  'SM: First-level entry address beyond MGAW in Nested translation',
  'SM: Read permission error in FL-PML4 entry in Nested translation',
  'SM: Read permission error in first-level paging entry in Nested translation',
  'SM: Write permission error in first-level paging entry in Nested translation',
  'SM: Error attempting to access second-level paging entry',
  'SM: Read/Write permission error in second-level paging entry',
  'SM: Non-zero reserved field set in second-level paging entry',
  'SM: Invalid second-level page table pointer',
  'SM: A/D bit update needed in second-level entry when set up in no snoop',
  ...unknowns(3), // 0x7D-0x7F
  'SM: Address in first-level translation is not canonical',
  'SM: U/S set 0 for first-level translation with user privilege',
  'SM: No execute permission for request with PASID and ER=1',
  'SM: Address beyond the DMA hardware max',
  'SM: Second-level entry address beyond the max',
  'SM: No write permission for Write/AtomicOp request',
  'SM: No read permission for Read/AtomicOp request',
  'SM: Invalid address-interrupt address',
  ...unknowns(8), // 0x88-0x8F
  'SM: A/D bit update needed in first-level entry when set up in no snoop',
];

/** Linux's strings for interrupt-remapping fault reasons 0x20–0x26. */
const IRQ_REMAP_FAULT_REASONS: readonly string[] = [
  'Detected reserved fields in the decoded interrupt-remapped request',
  'Interrupt index exceeded the interrupt-remapping table size',
  'Present field in the IRTE entry is clear',
  'Error accessing interrupt-remapping table pointed by IRTA_REG',
  'Detected reserved fields in the IRTE entry',
  'Blocked a compatibility format interrupt request',
  'Blocked an interrupt request due to source-id verification failure',
];

/** Kind of a fault reason (`enum faulttype`). */
export type DmarFaultType = 'DMA_REMAP' | 'INTR_REMAP' | 'UNKNOWN';

/**
 * The reason text and kind of a fault reason code (`dmar_get_fault_reason`): 0x20–0x26 interrupt
 * remapping, 0x30–0x90 scalable mode, 0x00–0x0D legacy, anything else "Unknown".
 * @param reason - fault reason code 0…255
 * @returns `{ text, type }`
 */
export function dmarGetFaultReason(reason: number): { text: string; type: DmarFaultType } {
  if (reason >= 0x20 && reason - 0x20 < IRQ_REMAP_FAULT_REASONS.length)
    return { text: IRQ_REMAP_FAULT_REASONS[reason - 0x20] as string, type: 'INTR_REMAP' };
  if (reason >= 0x30 && reason - 0x30 < DMA_REMAP_SM_FAULT_REASONS.length)
    return { text: DMA_REMAP_SM_FAULT_REASONS[reason - 0x30] as string, type: 'DMA_REMAP' };
  if (reason < DMA_REMAP_FAULT_REASONS.length)
    return { text: DMA_REMAP_FAULT_REASONS[reason] as string, type: 'DMA_REMAP' };
  return { text: U, type: 'UNKNOWN' };
}

/** One fault record as the handler decoded it. */
export interface DmarFaultRecord {
  /** 1 = read, 0 = write (FRCD.T). */
  readonly type: number;
  /** Fault reason code. */
  readonly reason: number;
  /** PASID, or `undefined` when PP = 0. */
  readonly pasid: number | undefined;
  /** Requester ID. */
  readonly sourceId: number;
  /** Faulting page address (for interrupt-remap faults the index sits in bits 63:48). */
  readonly addr: bigint;
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/**
 * Linux's log line of one fault (`dmar_fault_do_one`), including the `DMAR: ` prefix.
 * @param rec - the decoded record
 * @returns the line, e.g. `DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x7f2e5000 [fault reason 0x06] PTE Read access is not set`
 */
export function dmarFaultMessage(rec: DmarFaultRecord): string {
  const { text, type } = dmarGetFaultReason(rec.reason);
  const sid = rec.sourceId;
  const dev = `[${hex2(sid >> 8)}:${hex2((sid >> 3) & 0x1f)}.${sid & 7}]`;
  const why = `[fault reason 0x${hex2(rec.reason)}] ${text}`;
  if (type === 'INTR_REMAP')
    return `DMAR: [INTR-REMAP] Request device ${dev} fault index 0x${(rec.addr >> 48n).toString(16)} ${why}`;
  const rw = rec.type ? 'DMA Read' : 'DMA Write';
  const tag = rec.pasid === undefined ? `${rw} NO_PASID` : `${rw} PASID 0x${rec.pasid.toString(16)}`;
  return `DMAR: [${tag}] Request device ${dev} fault addr 0x${rec.addr.toString(16)} ${why}`;
}

/**
 * The fault interrupt handler (`dmar_fault`): logs `DMAR: DRHD: handling fault status reg <fsts>`
 * when FSTS is non-zero; with PPF set, reads records from FRI until one has F = 0 (wrapping at
 * CAP.NFR + 1), clears each record's F with a 32-bit write to its dword 3, logs it; finally writes
 * FSTS = PFO | PPF | PRO. Not rate-limited (a model has no time base).
 * @param iommu - the unit
 * @returns the records handled, oldest first
 */
export function dmarFault(iommu: IntelIommu): DmarFaultRecord[] {
  const out: DmarFaultRecord[] = [];
  const mmio = iommu.mmio;
  const fsts = mmio.readl(DMAR_FSTS_REG) >>> 0;
  if (fsts !== 0) iommu.logMessage('err', `DMAR: DRHD: handling fault status reg ${fsts.toString(16)}`);
  if ((fsts & DMA_FSTS_PPF) === 0) return out;
  const base = capFaultRegOffset(iommu.cap);
  const nfr = capNumFaultRegs(iommu.cap);
  let idx = dmaFstsFaultRecordIndex(fsts);
  for (let n = 0; n < nfr; n++) {
    const off = base + idx * PRIMARY_FAULT_REG_LEN;
    const hi = mmio.readl(off + 12) >>> 0;
    if ((hi & DMA_FRCD_F) === 0) break;
    const d2 = mmio.readl(off + 8) >>> 0;
    const rec: DmarFaultRecord = {
      type: dmaFrcdType(hi),
      reason: dmaFrcdFaultReason(hi),
      pasid: dmaFrcdPasidPresent(d2) ? dmaFrcdPasidValue(hi) : undefined,
      sourceId: dmaFrcdSourceId(d2),
      addr: dmaFrcdPageAddr(mmio.readq(off)),
    };
    mmio.writel(off + 12, DMA_FRCD_F);
    iommu.stats.faults++;
    iommu.logMessage('err', dmarFaultMessage(rec));
    out.push(rec);
    idx = (idx + 1) % nfr;
  }
  mmio.writel(DMAR_FSTS_REG, DMA_FSTS_PFO | DMA_FSTS_PPF | DMA_FSTS_PRO);
  return out;
}
