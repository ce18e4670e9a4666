/**
 * SMMUv3 register offsets and field masks (digest §1; Linux arm-smmu-v3.h `ARM_SMMU_*`), and the
 * in-memory queue entry sizes and command opcodes (§4.2).
 *
 * @remarks
 * Offsets are bytes from the start of page 0. The page-1 registers (EVTQ/PRIQ PROD/CONS) are
 * given at their page-1 address (`SMMU_PAGE1 + 0xA8` …); the model also accepts them at the page-0
 * alias, as QEMU does. Field masks are 32-bit numbers for 32-bit registers; the 64-bit address
 * fields are bigints.
 */

/** Size of one register page (64 KiB). */
export const SMMU_PAGE_SIZE = 0x10000;
/** Offset of page 1. */
export const SMMU_PAGE1 = 0x10000;
/** Size of the model's MMIO region: pages 0 and 1. */
export const SMMU_MMIO_SIZE = 0x20000;

/** IDR0 (RO). */
export const SMMU_IDR0 = 0x000;
/** IDR1 (RO). */
export const SMMU_IDR1 = 0x004;
/** IDR2 (RO). */
export const SMMU_IDR2 = 0x008;
/** IDR3 (RO). */
export const SMMU_IDR3 = 0x00c;
/** IDR4 (RO). */
export const SMMU_IDR4 = 0x010;
/** IDR5 (RO). */
export const SMMU_IDR5 = 0x014;
/** IIDR (RO). */
export const SMMU_IIDR = 0x018;
/** AIDR (RO). */
export const SMMU_AIDR = 0x01c;
/** CR0 (RW). */
export const SMMU_CR0 = 0x020;
/** CR0ACK (RO). */
export const SMMU_CR0ACK = 0x024;
/** CR1 (RW). */
export const SMMU_CR1 = 0x028;
/** CR2 (RW). */
export const SMMU_CR2 = 0x02c;
/** STATUSR (RO). */
export const SMMU_STATUSR = 0x040;
/** GBPA (RW). */
export const SMMU_GBPA = 0x044;
/** AGBPA (RW, IMPDEF; stored only). */
export const SMMU_AGBPA = 0x048;
/** IRQ_CTRL (RW). */
export const SMMU_IRQ_CTRL = 0x050;
/** IRQ_CTRLACK (RO). */
export const SMMU_IRQ_CTRLACK = 0x054;
/** GERROR (RO). */
export const SMMU_GERROR = 0x060;
/** GERRORN (RW). */
export const SMMU_GERRORN = 0x064;
/** GERROR_IRQ_CFG0 (64-bit MSI address). */
export const SMMU_GERROR_IRQ_CFG0 = 0x068;
/** GERROR_IRQ_CFG1 (MSI data). */
export const SMMU_GERROR_IRQ_CFG1 = 0x070;
/** GERROR_IRQ_CFG2 (MSI attributes). */
export const SMMU_GERROR_IRQ_CFG2 = 0x074;
/** STRTAB_BASE (64-bit). */
export const SMMU_STRTAB_BASE = 0x080;
/** STRTAB_BASE_CFG. */
export const SMMU_STRTAB_BASE_CFG = 0x088;
/** CMDQ_BASE (64-bit). */
export const SMMU_CMDQ_BASE = 0x090;
/** CMDQ_PROD. */
export const SMMU_CMDQ_PROD = 0x098;
/** CMDQ_CONS. */
export const SMMU_CMDQ_CONS = 0x09c;
/** EVENTQ_BASE (64-bit). */
export const SMMU_EVTQ_BASE = 0x0a0;
/** EVENTQ_PROD, page 1. */
export const SMMU_EVTQ_PROD = SMMU_PAGE1 + 0x0a8;
/** EVENTQ_CONS, page 1. */
export const SMMU_EVTQ_CONS = SMMU_PAGE1 + 0x0ac;
/** EVENTQ_IRQ_CFG0 (64-bit MSI address). */
export const SMMU_EVTQ_IRQ_CFG0 = 0x0b0;
/** EVENTQ_IRQ_CFG1 (MSI data). */
export const SMMU_EVTQ_IRQ_CFG1 = 0x0b8;
/** EVENTQ_IRQ_CFG2 (MSI attributes). */
export const SMMU_EVTQ_IRQ_CFG2 = 0x0bc;
/** PRIQ_BASE (64-bit). */
export const SMMU_PRIQ_BASE = 0x0c0;
/** PRIQ_PROD, page 1. */
export const SMMU_PRIQ_PROD = SMMU_PAGE1 + 0x0c8;
/** PRIQ_CONS, page 1. */
export const SMMU_PRIQ_CONS = SMMU_PAGE1 + 0x0cc;
/** PRIQ_IRQ_CFG0 (64-bit MSI address). */
export const SMMU_PRIQ_IRQ_CFG0 = 0x0d0;
/** PRIQ_IRQ_CFG1 (MSI data). */
export const SMMU_PRIQ_IRQ_CFG1 = 0x0d8;
/** PRIQ_IRQ_CFG2 (MSI attributes). */
export const SMMU_PRIQ_IRQ_CFG2 = 0x0dc;

/** CR0.SMMUEN. */
export const CR0_SMMUEN = 1 << 0;
/** CR0.PRIQEN. */
export const CR0_PRIQEN = 1 << 1;
/** CR0.EVTQEN. */
export const CR0_EVTQEN = 1 << 2;
/** CR0.CMDQEN. */
export const CR0_CMDQEN = 1 << 3;
/** CR0.ATSCHK. */
export const CR0_ATSCHK = 1 << 4;
/** CR0.VMW (bits 8:6). */
export const CR0_VMW = 0x7 << 6;
/** Writable CR0 bits (QEMU keeps bits 0–4 and 6–9). */
export const CR0_WRITABLE = 0x3df;

/** CR2.E2H. */
export const CR2_E2H = 1 << 0;
/** CR2.RECINVSID. */
export const CR2_RECINVSID = 1 << 1;
/** CR2.PTM. */
export const CR2_PTM = 1 << 2;

/** GBPA.ABORT. */
export const GBPA_ABORT = 1 << 20;
/** GBPA.UPDATE. */
export const GBPA_UPDATE = 0x8000_0000;
/** GBPA reset value (SHCFG = use incoming). */
export const GBPA_RESET = 0x1000;

/** IRQ_CTRL.GERROR_IRQEN. */
export const IRQ_CTRL_GERROR_IRQEN = 1 << 0;
/** IRQ_CTRL.PRIQ_IRQEN. */
export const IRQ_CTRL_PRIQ_IRQEN = 1 << 1;
/** IRQ_CTRL.EVTQ_IRQEN. */
export const IRQ_CTRL_EVTQ_IRQEN = 1 << 2;

/** GERROR.CMDQ_ERR. */
export const GERROR_CMDQ_ERR = 1 << 0;
/** GERROR.EVTQ_ABT_ERR. */
export const GERROR_EVTQ_ABT_ERR = 1 << 2;
/** GERROR.PRIQ_ABT_ERR. */
export const GERROR_PRIQ_ABT_ERR = 1 << 3;
/** GERROR.MSI_CMDQ_ABT_ERR. */
export const GERROR_MSI_CMDQ_ABT_ERR = 1 << 4;
/** GERROR.MSI_EVTQ_ABT_ERR. */
export const GERROR_MSI_EVTQ_ABT_ERR = 1 << 5;
/** GERROR.MSI_PRIQ_ABT_ERR. */
export const GERROR_MSI_PRIQ_ABT_ERR = 1 << 6;
/** GERROR.MSI_GERROR_ABT_ERR. */
export const GERROR_MSI_GERROR_ABT_ERR = 1 << 7;
/** GERROR.SFM_ERR. */
export const GERROR_SFM_ERR = 1 << 8;
/** Bits of GERROR the model can raise (Linux `GERROR_ERR_MASK`). */
export const GERROR_ERR_MASK = 0x1fd;

/** *_IRQ_CFG0 ADDR field (bits 51:2). */
export const IRQ_CFG0_ADDR_MASK = ((1n << 52n) - 1n) & ~3n;

/** STRTAB_BASE ADDR field (bits 51:6). */
export const STRTAB_BASE_ADDR_MASK = ((1n << 52n) - 1n) & ~0x3fn;
/** STRTAB_BASE.RA (bit 62). */
export const STRTAB_BASE_RA = 1n << 62n;
/** STRTAB_BASE_CFG.LOG2SIZE (bits 5:0). */
export const STRTAB_BASE_CFG_LOG2SIZE = 0x3f;
/** STRTAB_BASE_CFG.SPLIT (bits 10:6). */
export const STRTAB_BASE_CFG_SPLIT = 0x1f << 6;
/** STRTAB_BASE_CFG.FMT (bits 17:16). */
export const STRTAB_BASE_CFG_FMT = 0x3 << 16;
/** STRTAB_BASE_CFG.FMT value: linear. */
export const STRTAB_BASE_CFG_FMT_LINEAR = 0;
/** STRTAB_BASE_CFG.FMT value: two-level. */
export const STRTAB_BASE_CFG_FMT_2LVL = 1;

/** *_BASE LOG2SIZE field (bits 4:0). */
export const Q_BASE_LOG2SIZE = 0x1f;
/** *_BASE ADDR field (bits 51:5). */
export const Q_BASE_ADDR_MASK = ((1n << 52n) - 1n) & ~0x1fn;
/** *_BASE RA/WA hint (bit 62). */
export const Q_BASE_RWA = 1n << 62n;

/** EVTQ/PRIQ PROD.OVFLG and CONS.OVACKFLG (bit 31). */
export const Q_OVERFLOW_FLAG = 0x8000_0000;
/** CMDQ_CONS.ERR field (bits 30:24). */
export const CMDQ_CONS_ERR = 0x7f << 24;
/** Shift of CMDQ_CONS.ERR. */
export const CMDQ_CONS_ERR_SHIFT = 24;

/** CMDQ_CONS.ERR value: no error. */
export const CMDQ_ERR_CERROR_NONE = 0;
/** CMDQ_CONS.ERR value: illegal command. */
export const CMDQ_ERR_CERROR_ILL = 1;
/** CMDQ_CONS.ERR value: abort fetching the command. */
export const CMDQ_ERR_CERROR_ABT = 2;
/** CMDQ_CONS.ERR value: ATS invalidation completion timeout at a CMD_SYNC. */
export const CMDQ_ERR_CERROR_ATC_INV_SYNC = 3;

/** Command size in bytes. */
export const CMDQ_ENT_SIZE = 16;
/** Event record size in bytes. */
export const EVTQ_ENT_SIZE = 32;
/** PRI record size in bytes. */
export const PRIQ_ENT_SIZE = 16;

/** Command opcodes (digest §4.2). */
export const CMDQ_OP = Object.freeze({
  PREFETCH_CONFIG: 0x01,
  PREFETCH_ADDR: 0x02,
  CFGI_STE: 0x03,
  CFGI_STE_RANGE: 0x04,
  CFGI_CD: 0x05,
  CFGI_CD_ALL: 0x06,
  TLBI_NH_ALL: 0x10,
  TLBI_NH_ASID: 0x11,
  TLBI_NH_VA: 0x12,
  TLBI_NH_VAA: 0x13,
  TLBI_EL3_ALL: 0x18,
  TLBI_EL3_VA: 0x1a,
  TLBI_EL2_ALL: 0x20,
  TLBI_EL2_ASID: 0x21,
  TLBI_EL2_VA: 0x22,
  TLBI_EL2_VAA: 0x23,
  TLBI_S12_VMALL: 0x28,
  TLBI_S2_IPA: 0x2a,
  TLBI_NSNH_ALL: 0x30,
  ATC_INV: 0x40,
  PRI_RESP: 0x41,
  RESUME: 0x44,
  STALL_TERM: 0x45,
  CMD_SYNC: 0x46,
} as const);

/** CMD_SYNC.CS values (DW0 13:12). */
export const CMD_SYNC_CS = Object.freeze({ NONE: 0, IRQ: 1, SEV: 2 } as const);

/** CMD_RESUME response (DW0 13:12 as Linux encodes it): terminate, retry, abort. */
export const CMD_RESUME_RESP = Object.freeze({ TERM: 0, RETRY: 1, ABORT: 2 } as const);

/** CMD_PRI_RESP Resp values (DW1 13:12). */
export const CMD_PRI_RESP = Object.freeze({ DENY: 0, FAIL: 1, SUCC: 2 } as const);

/**
 * Decode a queue PROD/CONS value for a queue of 2^`log2` entries.
 * @param value - the register value
 * @param log2 - log2 of the number of entries
 * @returns `idx` (index), `wrap` (0 or 1)
 */
export function qIndex(value: number, log2: number): { idx: number; wrap: number } {
  return { idx: value & ((1 << log2) - 1), wrap: (value >>> log2) & 1 };
}
