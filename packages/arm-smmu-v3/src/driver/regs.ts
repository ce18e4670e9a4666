/**
 * The driver's own SMMUv3 register, queue and command definitions (the role of Linux's
 * drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.h). Kept independent of `hw/regs.ts` on purpose: the
 * driver and the model are two separate readings of the architecture that end-to-end tests
 * cross-check. 32-bit register fields are `number` masks; 64-bit register and descriptor fields
 * are `bigint` masks.
 */

// ---- MMIO offsets ------------------------------------------------------------------------------

/** IDR0 offset (page 0). */
export const ARM_SMMU_IDR0 = 0x0;
/** IDR1 offset. */
export const ARM_SMMU_IDR1 = 0x4;
/** IDR2 offset. */
export const ARM_SMMU_IDR2 = 0x8;
/** IDR3 offset. */
export const ARM_SMMU_IDR3 = 0xc;
/** IDR4 offset (implementation defined). */
export const ARM_SMMU_IDR4 = 0x10;
/** IDR5 offset. */
export const ARM_SMMU_IDR5 = 0x14;
/** IIDR offset (implementer, product, variant, revision). */
export const ARM_SMMU_IIDR = 0x18;
/** AIDR offset (architecture revision). */
export const ARM_SMMU_AIDR = 0x1c;
/** CR0 offset. */
export const ARM_SMMU_CR0 = 0x20;
/** CR0ACK offset. */
export const ARM_SMMU_CR0ACK = 0x24;
/** CR1 offset. */
export const ARM_SMMU_CR1 = 0x28;
/** CR2 offset. */
export const ARM_SMMU_CR2 = 0x2c;
/** GBPA offset. */
export const ARM_SMMU_GBPA = 0x44;
/** IRQ_CTRL offset. */
export const ARM_SMMU_IRQ_CTRL = 0x50;
/** IRQ_CTRLACK offset. */
export const ARM_SMMU_IRQ_CTRLACK = 0x54;
/** GERROR offset. */
export const ARM_SMMU_GERROR = 0x60;
/** GERRORN offset. */
export const ARM_SMMU_GERRORN = 0x64;
/** GERROR_IRQ_CFG0 offset (64-bit MSI address). */
export const ARM_SMMU_GERROR_IRQ_CFG0 = 0x68;
/** GERROR_IRQ_CFG1 offset (MSI data). */
export const ARM_SMMU_GERROR_IRQ_CFG1 = 0x70;
/** GERROR_IRQ_CFG2 offset (MSI attributes). */
export const ARM_SMMU_GERROR_IRQ_CFG2 = 0x74;
/** STRTAB_BASE offset (64-bit). */
export const ARM_SMMU_STRTAB_BASE = 0x80;
/** STRTAB_BASE_CFG offset. */
export const ARM_SMMU_STRTAB_BASE_CFG = 0x88;
/** CMDQ_BASE offset (64-bit). */
export const ARM_SMMU_CMDQ_BASE = 0x90;
/** CMDQ_PROD offset. */
export const ARM_SMMU_CMDQ_PROD = 0x98;
/** CMDQ_CONS offset. */
export const ARM_SMMU_CMDQ_CONS = 0x9c;
/** EVTQ_BASE offset (64-bit). */
export const ARM_SMMU_EVTQ_BASE = 0xa0;
/** EVTQ_PROD offset inside page 1 (Linux names it by its low offset). */
export const ARM_SMMU_EVTQ_PROD = 0xa8;
/** EVTQ_CONS offset inside page 1. */
export const ARM_SMMU_EVTQ_CONS = 0xac;
/** EVTQ_IRQ_CFG0 offset. */
export const ARM_SMMU_EVTQ_IRQ_CFG0 = 0xb0;
/** EVTQ_IRQ_CFG1 offset. */
export const ARM_SMMU_EVTQ_IRQ_CFG1 = 0xb8;
/** EVTQ_IRQ_CFG2 offset. */
export const ARM_SMMU_EVTQ_IRQ_CFG2 = 0xbc;
/** PRIQ_BASE offset (64-bit). */
export const ARM_SMMU_PRIQ_BASE = 0xc0;
/** PRIQ_PROD offset inside page 1. */
export const ARM_SMMU_PRIQ_PROD = 0xc8;
/** PRIQ_CONS offset inside page 1. */
export const ARM_SMMU_PRIQ_CONS = 0xcc;
/** PRIQ_IRQ_CFG0 offset. */
export const ARM_SMMU_PRIQ_IRQ_CFG0 = 0xd0;
/** PRIQ_IRQ_CFG1 offset. */
export const ARM_SMMU_PRIQ_IRQ_CFG1 = 0xd8;
/** PRIQ_IRQ_CFG2 offset. */
export const ARM_SMMU_PRIQ_IRQ_CFG2 = 0xdc;
/** Offset of register page 1 from page 0 (64 KiB). */
export const ARM_SMMU_PAGE1_OFFSET = 0x10000;
/** Minimum MMIO region size Linux accepts (two 64 KiB pages). */
export const ARM_SMMU_REG_MIN_SIZE = 0x20000;

// ---- IDR0 ---------------------------------------------------------------------------------------

/** IDR0.S2P: stage 2 implemented. */
export const IDR0_S2P = 1 << 0;
/** IDR0.S1P: stage 1 implemented. */
export const IDR0_S1P = 1 << 1;
/** IDR0.TTF (3:2): translation table formats. */
export const IDR0_TTF = 0b11 << 2;
/** IDR0.TTF value: AArch64 only. */
export const IDR0_TTF_AARCH64 = 2;
/** IDR0.TTF value: AArch32 and AArch64. */
export const IDR0_TTF_AARCH32_64 = 3;
/** IDR0.COHACC: coherent access to tables and queues. */
export const IDR0_COHACC = 1 << 4;
/** IDR0.BTM: broadcast TLB maintenance. */
export const IDR0_BTM = 1 << 5;
/** IDR0.HTTU (7:6): hardware access/dirty flag update. */
export const IDR0_HTTU = 0b11 << 6;
/** IDR0.HTTU value: access flag only. */
export const IDR0_HTTU_ACCESS = 1;
/** IDR0.HTTU value: access and dirty flags. */
export const IDR0_HTTU_ACCESS_DIRTY = 2;
/** IDR0.HYP: EL2 StreamWorld supported. */
export const IDR0_HYP = 1 << 9;
/** IDR0.ATS: PCIe ATS supported. */
export const IDR0_ATS = 1 << 10;
/** IDR0.ASID16: 16-bit ASIDs. */
export const IDR0_ASID16 = 1 << 12;
/** IDR0.MSI: MSIs supported. */
export const IDR0_MSI = 1 << 13;
/** IDR0.SEV: SEV on CMD_SYNC completion supported. */
export const IDR0_SEV = 1 << 14;
/** IDR0.PRI: PCIe PRI supported. */
export const IDR0_PRI = 1 << 16;
/** IDR0.VMID16: 16-bit VMIDs. */
export const IDR0_VMID16 = 1 << 18;
/** IDR0.CD2L: 2-level CD tables. */
export const IDR0_CD2L = 1 << 19;
/** IDR0.TTENDIAN (22:21). */
export const IDR0_TTENDIAN = 0b11 << 21;
/** IDR0.TTENDIAN value: mixed endian. */
export const IDR0_TTENDIAN_MIXED = 0;
/** IDR0.TTENDIAN value: little endian only. */
export const IDR0_TTENDIAN_LE = 2;
/** IDR0.TTENDIAN value: big endian only. */
export const IDR0_TTENDIAN_BE = 3;
/** IDR0.STALL_MODEL (25:24). */
export const IDR0_STALL_MODEL = 0b11 << 24;
/** IDR0.STALL_MODEL value: stall and terminate both supported. */
export const IDR0_STALL_MODEL_STALL = 0;
/** IDR0.STALL_MODEL value: stall forced. */
export const IDR0_STALL_MODEL_FORCE = 2;
/** IDR0.ST_LEVEL (28:27). */
export const IDR0_ST_LVL = 0b11 << 27;
/** IDR0.ST_LEVEL value: 2-level stream tables supported. */
export const IDR0_ST_LVL_2LVL = 1;

// ---- IDR1 ---------------------------------------------------------------------------------------

/** IDR1.SIDSIZE (5:0). */
export const IDR1_SIDSIZE = 0x3f;
/** IDR1.SSIDSIZE (10:6). */
export const IDR1_SSIDSIZE = 0x1f << 6;
/** IDR1.PRIQS (15:11). */
export const IDR1_PRIQS = 0x1f << 11;
/** IDR1.EVTQS (20:16). */
export const IDR1_EVTQS = 0x1f << 16;
/** IDR1.CMDQS (25:21). */
export const IDR1_CMDQS = 0x1f << 21;
/** IDR1.ATTR_TYPES_OVR. */
export const IDR1_ATTR_TYPES_OVR = 1 << 27;
/** IDR1.REL: base registers hold relative addresses. */
export const IDR1_REL = 1 << 28;
/** IDR1.QUEUES_PRESET. */
export const IDR1_QUEUES_PRESET = 1 << 29;
/** IDR1.TABLES_PRESET. */
export const IDR1_TABLES_PRESET = 1 << 30;

// ---- IDR3 / IDR5 / IIDR --------------------------------------------------------------------------

/** IDR3.FWB: STE.S2FWB supported. */
export const IDR3_FWB = 1 << 8;
/** IDR3.RIL: range invalidation. */
export const IDR3_RIL = 1 << 10;
/** IDR3.BBML (12:11). */
export const IDR3_BBML = 0b11 << 11;
/** IDR3.BBML value 2 (BBML2). */
export const IDR3_BBML2 = 2;

/** IDR5.OAS (2:0). */
export const IDR5_OAS = 0b111;
/** IDR5.GRAN4K. */
export const IDR5_GRAN4K = 1 << 4;
/** IDR5.GRAN16K. */
export const IDR5_GRAN16K = 1 << 5;
/** IDR5.GRAN64K. */
export const IDR5_GRAN64K = 1 << 6;
/** IDR5.VAX (11:10). */
export const IDR5_VAX = 0b11 << 10;
/** IDR5.VAX value: 52-bit VA. */
export const IDR5_VAX_52_BIT = 1;
/** IDR5.STALL_MAX (31:16). */
export const IDR5_STALL_MAX = 0xffff_0000;

/** Output address sizes in bits indexed by IDR5.OAS (0 … 6). */
export const IDR5_OAS_BITS: readonly number[] = Object.freeze([32, 36, 40, 42, 44, 48, 52]);

/** IIDR.Implementer (11:0). */
export const IIDR_IMPLEMENTER = 0xfff;
/** IIDR.Revision (15:12). */
export const IIDR_REVISION = 0xf << 12;
/** IIDR.Variant (19:16). */
export const IIDR_VARIANT = 0xf << 16;
/** IIDR.ProductID (31:20). */
export const IIDR_PRODUCTID = 0xfff << 20;
/** IIDR implementer code of Arm. */
export const IIDR_IMPLEMENTER_ARM = 0x43b;
/** IIDR product ID of Arm MMU-600. */
export const IIDR_PRODUCTID_ARM_MMU_600 = 0x483;
/** IIDR product ID of Arm MMU-700. */
export const IIDR_PRODUCTID_ARM_MMU_700 = 0x487;

// ---- CR0 / CR1 / CR2 / GBPA / IRQ_CTRL / GERROR --------------------------------------------------

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

/** CR1 value Linux writes: queues and tables inner-shareable, inner/outer write-back (0xD75). */
export const CR1_LINUX_VALUE = 0xd75;
/** CR2.E2H. */
export const CR2_E2H = 1 << 0;
/** CR2.RECINVSID: record C_BAD_STREAMID for out-of-range StreamIDs. */
export const CR2_RECINVSID = 1 << 1;
/** CR2.PTM: private TLB maintenance. */
export const CR2_PTM = 1 << 2;

/** GBPA.UPDATE. */
export const GBPA_UPDATE = 1 << 31;
/** GBPA.ABORT. */
export const GBPA_ABORT = 1 << 20;

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
/** GERROR.SFM_ERR: service failure mode. */
export const GERROR_SFM_ERR = 1 << 8;
/** The GERROR bits Linux handles (0x1FD). */
export const GERROR_ERR_MASK = 0x1fd;

/** *_IRQ_CFG0.ADDR (51:2). */
export const MSI_CFG0_ADDR_MASK = 0x000f_ffff_ffff_fffcn;
/** *_IRQ_CFG2 MemAttr value Linux writes (Device-nGnRE). */
export const MSI_CFG2_MEMATTR_DEVICE_NGNRE = 0x1;

// ---- Stream table base -------------------------------------------------------------------------

/** STRTAB_BASE.RA (bit 62). */
export const STRTAB_BASE_RA = 1n << 62n;
/** STRTAB_BASE.ADDR (51:6). */
export const STRTAB_BASE_ADDR_MASK = 0x000f_ffff_ffff_ffc0n;
/** STRTAB_BASE_CFG.LOG2SIZE (5:0). */
export const STRTAB_BASE_CFG_LOG2SIZE = 0x3f;
/** STRTAB_BASE_CFG.SPLIT (10:6). */
export const STRTAB_BASE_CFG_SPLIT = 0x1f << 6;
/** STRTAB_BASE_CFG.FMT (17:16). */
export const STRTAB_BASE_CFG_FMT = 0b11 << 16;
/** STRTAB_BASE_CFG.FMT value: linear. */
export const STRTAB_BASE_CFG_FMT_LINEAR = 0;
/** STRTAB_BASE_CFG.FMT value: two-level. */
export const STRTAB_BASE_CFG_FMT_2LVL = 1;
/** StreamID bits resolved by a level-2 stream table (Linux `STRTAB_SPLIT`). */
export const STRTAB_SPLIT = 8;
/** Most level-1 stream table entries Linux allocates (`STRTAB_MAX_L1_ENTRIES`, 2^17). */
export const STRTAB_MAX_L1_ENTRIES = 1 << 17;
/** Bytes per L1 stream table descriptor. */
export const STRTAB_L1_DESC_SIZE = 8;
/** L1STD.SPAN (4:0). */
export const STRTAB_L1_DESC_SPAN = 0x1fn;
/** L1STD.L2Ptr (51:6). */
export const STRTAB_L1_DESC_L2PTR_MASK = 0x000f_ffff_ffff_ffc0n;
/** Bytes per STE. */
export const STRTAB_STE_SIZE = 64;
/** STE DW0.V. */
export const STRTAB_STE_0_V = 1n;
/** STE DW0.Config (3:1). */
export const STRTAB_STE_0_CFG = 0b111n << 1n;
/** STE DW0.Config value: abort. */
export const STRTAB_STE_0_CFG_ABORT = 0n;
/** STE DW0.Config value: bypass. */
export const STRTAB_STE_0_CFG_BYPASS = 4n;

// ---- Queues -------------------------------------------------------------------------------------

/** *Q_BASE.RA / WA allocation hint (bit 62), set by Linux on all three queues. */
export const Q_BASE_RWA = 1n << 62n;
/** *Q_BASE.ADDR (51:5). */
export const Q_BASE_ADDR_MASK = 0x000f_ffff_ffff_ffe0n;
/** *Q_BASE.LOG2SIZE (4:0). */
export const Q_BASE_LOG2SIZE = 0x1fn;
/** EVTQ_PROD.OVFLG / EVTQ_CONS.OVACKFLG / PRIQ likewise (bit 31). */
export const Q_OVERFLOW_FLAG = 1 << 31;
/** CMDQ_CONS.ERR (30:24). */
export const CMDQ_CONS_ERR = 0x7f << 24;
/** CMDQ_CONS.ERR value: no error. */
export const CMDQ_ERR_CERROR_NONE_IDX = 0;
/** CMDQ_CONS.ERR value: illegal command. */
export const CMDQ_ERR_CERROR_ILL_IDX = 1;
/** CMDQ_CONS.ERR value: abort fetching a command. */
export const CMDQ_ERR_CERROR_ABT_IDX = 2;
/** CMDQ_CONS.ERR value: ATC invalidation completion timeout. */
export const CMDQ_ERR_CERROR_ATC_INV_IDX = 3;

/** Bytes per command queue entry (2 DW). */
export const CMDQ_ENT_DWORDS = 2;
/** Bytes per event queue record (4 DW). */
export const EVTQ_ENT_DWORDS = 4;
/** Bytes per PRI queue record (2 DW). */
export const PRIQ_ENT_DWORDS = 2;
/**
 * log2 of the largest queue size in bytes Linux allocates (`Q_MAX_SZ_SHIFT` = PAGE_SHIFT +
 * MAX_PAGE_ORDER, 12 + 10).
 */
export const Q_MAX_SZ_SHIFT = 22;
/** log2 of the most command queue entries Linux uses. */
export const CMDQ_MAX_SZ_SHIFT = Q_MAX_SZ_SHIFT - 4;
/** log2 of the most event queue entries Linux uses. */
export const EVTQ_MAX_SZ_SHIFT = Q_MAX_SZ_SHIFT - 5;
/** log2 of the most PRI queue entries Linux uses. */
export const PRIQ_MAX_SZ_SHIFT = Q_MAX_SZ_SHIFT - 4;
/** Commands per batch (`CMDQ_BATCH_ENTRIES` = BITS_PER_LONG). */
export const CMDQ_BATCH_ENTRIES = 64;

/**
 * Queue pointer arithmetic (Linux's Q_IDX / Q_WRP / Q_OVF).
 */
export interface QueuePtr {
  /** Index bits. */
  readonly idx: number;
  /** Wrap bit (0 or 1). */
  readonly wrp: number;
}

/**
 * Split a PROD/CONS value of a queue with 2^`log2` entries.
 * @param value - the register value (bits above the wrap bit ignored)
 * @param log2 - log2 of the number of entries
 * @returns index and wrap bit
 */
export function queuePtr(value: number, log2: number): QueuePtr {
  return { idx: value & ((1 << log2) - 1), wrp: (value >>> log2) & 1 };
}

/**
 * Advance a PROD/CONS value by `n` entries, keeping index and wrap (drops other bits).
 * @param value - the current value
 * @param n - entries to advance, 0 … 2^log2
 * @param log2 - log2 of the number of entries
 * @returns the new index and wrap value
 */
export function queueInc(value: number, n: number, log2: number): number {
  return (value + n) & ((2 << log2) - 1);
}

/**
 * Free entries between PROD and CONS (Linux `queue_has_space` arithmetic).
 * @param prod - PROD (index and wrap)
 * @param cons - CONS (index and wrap)
 * @param log2 - log2 of the number of entries
 * @returns number of free entries
 */
export function queueSpace(prod: number, cons: number, log2: number): number {
  const p = queuePtr(prod, log2);
  const c = queuePtr(cons, log2);
  if (p.wrp === c.wrp) return (1 << log2) - (p.idx - c.idx);
  return c.idx - p.idx;
}

/**
 * Whether a queue is empty (same index and wrap).
 * @param prod - PROD
 * @param cons - CONS
 * @param log2 - log2 of the number of entries
 * @returns true when empty
 */
export function queueEmpty(prod: number, cons: number, log2: number): boolean {
  const m = (2 << log2) - 1;
  return (prod & m) === (cons & m);
}

// ---- Commands -----------------------------------------------------------------------------------

/** Command opcodes (`CMDQ_OP_*`, DW0 7:0). */
export const CMDQ_OP = Object.freeze({
  PREFETCH_CFG: 0x1,
  CFGI_STE: 0x3,
  CFGI_ALL: 0x4,
  CFGI_CD: 0x5,
  CFGI_CD_ALL: 0x6,
  TLBI_NH_ALL: 0x10,
  TLBI_NH_ASID: 0x11,
  TLBI_NH_VA: 0x12,
  TLBI_NH_VAA: 0x13,
  TLBI_EL2_ALL: 0x20,
  TLBI_EL2_ASID: 0x21,
  TLBI_EL2_VA: 0x22,
  TLBI_S12_VMALL: 0x28,
  TLBI_S2_IPA: 0x2a,
  TLBI_NSNH_ALL: 0x30,
  ATC_INV: 0x40,
  PRI_RESP: 0x41,
  RESUME: 0x44,
  STALL_TERM: 0x45,
  CMD_SYNC: 0x46,
} as const);

/** A command opcode name (a key of {@link (CMDQ_OP:variable)}). */
export type CmdqOpName = keyof typeof CMDQ_OP;

/** DW0 opcode (7:0). */
export const CMDQ_0_OP = 0xffn;
/** DW0 SSV (bit 11). */
export const CMDQ_0_SSV = 1n << 11n;
/** DW0 SID (63:32), PREFETCH / CFGI / ATC_INV / PRI_RESP / RESUME / STALL_TERM. */
export const CMDQ_0_SID_SHIFT = 32n;
/** DW0 SSID (31:12). */
export const CMDQ_0_SSID_SHIFT = 12n;
/** DW1 Leaf (bit 0) of CFGI_STE / CFGI_CD / TLBI_*_VA / S2_IPA. */
export const CMDQ_1_LEAF = 1n;
/** DW1 Range (4:0) of CFGI_STE_RANGE; 31 = all StreamIDs (`CFGI_ALL`). */
export const CMDQ_CFGI_1_RANGE_ALL = 31n;
/** TLBI DW0 NUM (16:12). */
export const CMDQ_TLBI_0_NUM_SHIFT = 12n;
/** TLBI DW0 SCALE (24:20). */
export const CMDQ_TLBI_0_SCALE_SHIFT = 20n;
/** TLBI DW0 VMID (47:32). */
export const CMDQ_TLBI_0_VMID_SHIFT = 32n;
/** TLBI DW0 ASID (63:48). */
export const CMDQ_TLBI_0_ASID_SHIFT = 48n;
/** TLBI DW1 TTL (9:8). */
export const CMDQ_TLBI_1_TTL_SHIFT = 8n;
/** TLBI DW1 TG (11:10). */
export const CMDQ_TLBI_1_TG_SHIFT = 10n;
/** TLBI DW1 VA (63:12). */
export const CMDQ_TLBI_1_VA_MASK = 0xffff_ffff_ffff_f000n;
/** TLBI DW1 IPA (51:12). */
export const CMDQ_TLBI_1_IPA_MASK = 0x000f_ffff_ffff_f000n;
/** Largest NUM + 1 of a range TLBI (`CMDQ_TLBI_RANGE_NUM_MAX`). */
export const CMDQ_TLBI_RANGE_NUM_MAX = 31;
/** ATC_INV DW0 Global (bit 9). */
export const CMDQ_ATC_0_GLOBAL = 1n << 9n;
/** ATC_INV DW1 Size (5:0). */
export const CMDQ_ATC_1_SIZE = 0x3fn;
/** ATC_INV DW1 Address (63:12). */
export const CMDQ_ATC_1_ADDR_MASK = 0xffff_ffff_ffff_f000n;
/** ATC_INV Size meaning "the whole address space" (`ATC_INV_SIZE_ALL`). */
export const ATC_INV_SIZE_ALL = 52;
/** PRI_RESP DW1 PRGIndex (8:0). */
export const CMDQ_PRI_1_GRPID = 0x1ffn;
/** PRI_RESP DW1 Resp shift (13:12). */
export const CMDQ_PRI_1_RESP_SHIFT = 12n;
/** RESUME DW0 RESP shift (13:12 as Linux encodes Ac/Ab). */
export const CMDQ_RESUME_0_RESP_SHIFT = 12n;
/** RESUME DW1 STAG (15:0). */
export const CMDQ_RESUME_1_STAG = 0xffffn;
/** CMD_SYNC DW0 CS shift (13:12). */
export const CMDQ_SYNC_0_CS_SHIFT = 12n;
/** CMD_SYNC DW0 MSH shift (23:22). */
export const CMDQ_SYNC_0_MSH_SHIFT = 22n;
/** CMD_SYNC DW0 MSIATTR shift (27:24). */
export const CMDQ_SYNC_0_MSIATTR_SHIFT = 24n;
/** CMD_SYNC DW0 MSIDATA shift (63:32). */
export const CMDQ_SYNC_0_MSIDATA_SHIFT = 32n;
/** CMD_SYNC DW1 MSIADDR (51:2). */
export const CMDQ_SYNC_1_MSIADDR_MASK = 0x000f_ffff_ffff_fffcn;
/** CMD_SYNC completion signal values. */
export const CMDQ_SYNC_CS = Object.freeze({ NONE: 0, IRQ: 1, SEV: 2 } as const);
/** MSH value Linux uses (inner shareable). */
export const ARM_SMMU_SH_ISH = 3;
/** MSIAttr value Linux uses (inner/outer write-back). */
export const ARM_SMMU_MEMATTR_OIWB = 0xf;

/** PRI_RESP response codes (`enum pri_resp`). */
export const PRI_RESP = Object.freeze({ DENY: 0, FAIL: 1, SUCC: 2 } as const);
/** One of the `PRI_RESP` values. */
export type PriResp = (typeof PRI_RESP)[keyof typeof PRI_RESP];
/** RESUME response codes (Linux `CMDQ_RESUME_0_RESP_*`). */
export const RESUME_RESP = Object.freeze({ TERM: 0, RETRY: 1, ABORT: 2 } as const);
/** One of the `RESUME_RESP` values. */
export type ResumeResp = (typeof RESUME_RESP)[keyof typeof RESUME_RESP];

// ---- Event records ------------------------------------------------------------------------------

/** Event IDs (`EVT_ID_*`, DW0 7:0). */
export const EVT_ID = Object.freeze({
  UUT: 0x01,
  BAD_STREAMID_CONFIG: 0x02,
  STE_FETCH_FAULT: 0x03,
  BAD_STE_CONFIG: 0x04,
  BAD_ATS_TREQ: 0x05,
  STREAM_DISABLED_FAULT: 0x06,
  TRANSL_FORBIDDEN: 0x07,
  BAD_SUBSTREAMID_CONFIG: 0x08,
  CD_FETCH_FAULT: 0x09,
  BAD_CD_CONFIG: 0x0a,
  WALK_EABT: 0x0b,
  TRANSLATION_FAULT: 0x10,
  ADDR_SIZE_FAULT: 0x11,
  ACCESS_FAULT: 0x12,
  PERMISSION_FAULT: 0x13,
  TLB_CONFLICT: 0x20,
  CFG_CONFLICT: 0x21,
  PAGE_REQUEST: 0x24,
  VMS_FETCH_FAULT: 0x25,
} as const);

/** Event CLASS values (DW1 41:40). */
export const EVTQ_1_CLASS = Object.freeze({ CD: 0, TT: 1, IN: 2, RESERVED: 3 } as const);
/** PRI record DW0 / event field: IPA (51:12) of DW3. */
export const EVTQ_3_IPA_MASK = 0x000f_ffff_ffff_f000n;
/** Event field: fetch address (51:3) of DW3. */
export const EVTQ_3_FETCH_ADDR_MASK = 0x000f_ffff_ffff_fff8n;

/**
 * A decoded event record (Linux `struct arm_smmu_event`, filled by `arm_smmu_decode_event`).
 */
export interface ArmSmmuEvent {
  /** Event ID (DW0 7:0), see {@link (EVT_ID:variable)}. */
  readonly id: number;
  /** StreamID (DW0 63:32). */
  readonly sid: number;
  /** SubstreamID valid (DW0 11). */
  readonly ssv: boolean;
  /** SubstreamID (DW0 31:12); meaningful when `ssv`. */
  readonly ssid: number;
  /** Stall tag (DW1 15:0). */
  readonly stag: number;
  /** The transaction is stalled awaiting RESUME (DW1 31). */
  readonly stall: boolean;
  /** Privileged (PnU, DW1 33). */
  readonly privileged: boolean;
  /** Instruction fetch (InD, DW1 34). */
  readonly instruction: boolean;
  /** Read (RnW, DW1 35); false means write. */
  readonly read: boolean;
  /** Fault at stage 2 (DW1 39). */
  readonly s2: boolean;
  /** CLASS (DW1 41:40), see {@link EVTQ_1_CLASS}. */
  readonly class: number;
  /** TTRnW (DW1 44). */
  readonly ttrnw: boolean;
  /** Input address (DW2). */
  readonly iova: bigint;
  /** IPA (DW3 51:12). */
  readonly ipa: bigint;
  /** Fetch address (DW3 51:3). */
  readonly fetchAddr: bigint;
  /** The four raw DWs. */
  readonly raw: readonly [bigint, bigint, bigint, bigint];
}

/**
 * Decode an event record (`arm_smmu_decode_event`).
 * @param raw - DW0 … DW3 as read from the event queue
 * @returns the decoded fields
 */
export function decodeEvent(raw: readonly [bigint, bigint, bigint, bigint]): ArmSmmuEvent {
  const [d0, d1, d2, d3] = raw;
  const bit = (w: bigint, b: number): boolean => ((w >> BigInt(b)) & 1n) === 1n;
  return {
    id: Number(d0 & 0xffn),
    sid: Number((d0 >> 32n) & 0xffff_ffffn),
    ssv: bit(d0, 11),
    ssid: Number((d0 >> 12n) & 0xfffffn),
    stag: Number(d1 & 0xffffn),
    stall: bit(d1, 31),
    privileged: bit(d1, 33),
    instruction: bit(d1, 34),
    read: bit(d1, 35),
    s2: bit(d1, 39),
    class: Number((d1 >> 40n) & 3n),
    ttrnw: bit(d1, 44),
    iova: d2,
    ipa: d3 & EVTQ_3_IPA_MASK,
    fetchAddr: d3 & EVTQ_3_FETCH_ADDR_MASK,
    raw,
  };
}

/**
 * The name of an event ID (for logs; Linux `event_str`).
 * @param id - event ID
 * @returns `'F_TRANSLATION'` style name, or `'UNKNOWN'`
 */
export function eventIdName(id: number): string {
  switch (id) {
    case EVT_ID.UUT:
      return 'F_UUT';
    case EVT_ID.BAD_STREAMID_CONFIG:
      return 'C_BAD_STREAMID';
    case EVT_ID.STE_FETCH_FAULT:
      return 'F_STE_FETCH';
    case EVT_ID.BAD_STE_CONFIG:
      return 'C_BAD_STE';
    case EVT_ID.BAD_ATS_TREQ:
      return 'F_BAD_ATS_TREQ';
    case EVT_ID.STREAM_DISABLED_FAULT:
      return 'F_STREAM_DISABLED';
    case EVT_ID.TRANSL_FORBIDDEN:
      return 'F_TRANSL_FORBIDDEN';
    case EVT_ID.BAD_SUBSTREAMID_CONFIG:
      return 'C_BAD_SUBSTREAMID';
    case EVT_ID.CD_FETCH_FAULT:
      return 'F_CD_FETCH';
    case EVT_ID.BAD_CD_CONFIG:
      return 'C_BAD_CD';
    case EVT_ID.WALK_EABT:
      return 'F_WALK_EABT';
    case EVT_ID.TRANSLATION_FAULT:
      return 'F_TRANSLATION';
    case EVT_ID.ADDR_SIZE_FAULT:
      return 'F_ADDR_SIZE';
    case EVT_ID.ACCESS_FAULT:
      return 'F_ACCESS';
    case EVT_ID.PERMISSION_FAULT:
      return 'F_PERMISSION';
    case EVT_ID.TLB_CONFLICT:
      return 'F_TLB_CONFLICT';
    case EVT_ID.CFG_CONFLICT:
      return 'F_CFG_CONFLICT';
    case EVT_ID.PAGE_REQUEST:
      return 'E_PAGE_REQUEST';
    case EVT_ID.VMS_FETCH_FAULT:
      return 'F_VMS_FETCH';
    default:
      return 'UNKNOWN';
  }
}

// ---- PRI records --------------------------------------------------------------------------------

/** A decoded PRI queue record (Linux `arm_smmu_handle_ppr` fields). */
export interface ArmSmmuPriRecord {
  /** StreamID (DW0 31:0). */
  readonly sid: number;
  /** SubstreamID / PASID (DW0 51:32). */
  readonly ssid: number;
  /** Privileged (DW0 58). */
  readonly priv: boolean;
  /** Execute requested (DW0 59). */
  readonly exec: boolean;
  /** Read requested (DW0 60). */
  readonly read: boolean;
  /** Write requested (DW0 61). */
  readonly write: boolean;
  /** Last request of the group (DW0 62). */
  readonly last: boolean;
  /** SubstreamID valid (DW0 63). */
  readonly ssv: boolean;
  /** Page request group index (DW1 8:0). */
  readonly grpid: number;
  /** Page address (DW1 63:12). */
  readonly addr: bigint;
}

/**
 * Decode a PRI queue record.
 * @param d0 - DW0
 * @param d1 - DW1
 * @returns the decoded fields
 */
export function decodePriRecord(d0: bigint, d1: bigint): ArmSmmuPriRecord {
  const bit = (b: number): boolean => ((d0 >> BigInt(b)) & 1n) === 1n;
  return {
    sid: Number(d0 & 0xffff_ffffn),
    ssid: Number((d0 >> 32n) & 0xfffffn),
    priv: bit(58),
    exec: bit(59),
    read: bit(60),
    write: bit(61),
    last: bit(62),
    ssv: bit(63),
    grpid: Number(d1 & CMDQ_PRI_1_GRPID),
    addr: d1 & 0xffff_ffff_ffff_f000n,
  };
}
