/**
 * The driver's own VT-d register, capability and descriptor definitions (the role of Linux's
 * include/linux/intel-iommu.h / drivers/iommu/intel/iommu.h). Kept independent of `hw/regs.ts` on
 * purpose: the driver and the model are two separate readings of the architecture that end-to-end
 * tests cross-check. 32-bit register fields are `number` masks; 64-bit register and descriptor
 * fields are `bigint` (digest §1, §4, §5).
 */

// ---- MMIO offsets --------------------------------------------------------------------------------

/** `DMAR_VER_REG`: architecture version (32-bit; bits 7:4 major, 3:0 minor). */
export const DMAR_VER_REG = 0x0;
/** `DMAR_CAP_REG`: capabilities (64-bit). */
export const DMAR_CAP_REG = 0x8;
/** `DMAR_ECAP_REG`: extended capabilities (64-bit). */
export const DMAR_ECAP_REG = 0x10;
/** `DMAR_GCMD_REG`: global command (32-bit). */
export const DMAR_GCMD_REG = 0x18;
/** `DMAR_GSTS_REG`: global status (32-bit). */
export const DMAR_GSTS_REG = 0x1c;
/** `DMAR_RTADDR_REG`: root table address (64-bit). */
export const DMAR_RTADDR_REG = 0x20;
/** `DMAR_CCMD_REG`: register-based context-cache invalidation (64-bit). */
export const DMAR_CCMD_REG = 0x28;
/** `DMAR_FSTS_REG`: fault status (32-bit). */
export const DMAR_FSTS_REG = 0x34;
/** `DMAR_FECTL_REG`: fault event control (32-bit). */
export const DMAR_FECTL_REG = 0x38;
/** `DMAR_FEDATA_REG`: fault event MSI data. */
export const DMAR_FEDATA_REG = 0x3c;
/** `DMAR_FEADDR_REG`: fault event MSI address. */
export const DMAR_FEADDR_REG = 0x40;
/** `DMAR_FEUADDR_REG`: fault event MSI upper address. */
export const DMAR_FEUADDR_REG = 0x44;
/** `DMAR_PMEN_REG`: protected memory enable (32-bit). */
export const DMAR_PMEN_REG = 0x64;
/** `DMAR_IQH_REG`: invalidation queue head (64-bit). */
export const DMAR_IQH_REG = 0x80;
/** `DMAR_IQT_REG`: invalidation queue tail (64-bit). */
export const DMAR_IQT_REG = 0x88;
/** `DMAR_IQA_REG`: invalidation queue address (64-bit). */
export const DMAR_IQA_REG = 0x90;
/** `DMAR_ICS_REG`: invalidation completion status (32-bit). */
export const DMAR_ICS_REG = 0x9c;
/** `DMAR_IECTL_REG`: invalidation event control (32-bit). */
export const DMAR_IECTL_REG = 0xa0;
/** `DMAR_IQER_REG`: invalidation queue error record (64-bit). */
export const DMAR_IQER_REG = 0xb0;
/** `DMAR_PQH_REG`: page request queue head (64-bit). */
export const DMAR_PQH_REG = 0xc0;
/** `DMAR_PQT_REG`: page request queue tail (64-bit). */
export const DMAR_PQT_REG = 0xc8;
/** `DMAR_PQA_REG`: page request queue address (64-bit). */
export const DMAR_PQA_REG = 0xd0;
/** `DMAR_PRS_REG`: page request status (32-bit). */
export const DMAR_PRS_REG = 0xdc;
/** `DMAR_PECTL_REG`: page request event control (32-bit). */
export const DMAR_PECTL_REG = 0xe0;
/** `DMAR_PEDATA_REG`: page request event MSI data. */
export const DMAR_PEDATA_REG = 0xe4;
/** `DMAR_PEADDR_REG`: page request event MSI address. */
export const DMAR_PEADDR_REG = 0xe8;
/** `DMAR_PEUADDR_REG`: page request event MSI upper address. */
export const DMAR_PEUADDR_REG = 0xec;

/** Offset of IVA inside the IOTLB register pair (at ECAP.IRO × 16). */
export const DMAR_IVA_OFFSET = 0;
/** Offset of IOTLB_REG inside the IOTLB register pair (at ECAP.IRO × 16). */
export const DMAR_IOTLB_OFFSET = 8;
/** Size of one fault recording register in bytes. */
export const PRIMARY_FAULT_REG_LEN = 16;

// ---- CAP -------------------------------------------------------------------------------------------

const bits = (v: bigint, lo: number, width: number): number =>
  Number((v >> BigInt(lo)) & ((1n << BigInt(width)) - 1n));
const bit = (v: bigint, b: number): boolean => ((v >> BigInt(b)) & 1n) === 1n;

/**
 * `cap_ndoms`: number of domain IDs, 2^(4 + 2·ND).
 * @param cap - CAP register value
 * @returns count of domain IDs
 */
export function capNdoms(cap: bigint): number {
  return 2 ** (4 + 2 * bits(cap, 0, 3));
}
/** `cap_rwbf`: write-buffer flushing required. @param cap - CAP @returns the bit */
export const capRwbf = (cap: bigint): boolean => bit(cap, 4);
/** `cap_plmr`: protected low-memory region. @param cap - CAP @returns the bit */
export const capPlmr = (cap: bigint): boolean => bit(cap, 5);
/** `cap_phmr`: protected high-memory region. @param cap - CAP @returns the bit */
export const capPhmr = (cap: bigint): boolean => bit(cap, 6);
/** `cap_caching_mode`: CM. @param cap - CAP @returns the bit */
export const capCachingMode = (cap: bigint): boolean => bit(cap, 7);
/** `cap_sagaw`: supported AGAW bitmap (bit i ⇔ AGAW i). @param cap - CAP @returns 5-bit mask */
export const capSagaw = (cap: bigint): number => bits(cap, 8, 5);
/** `cap_mgaw`: maximum guest address width in bits (field + 1). @param cap - CAP @returns bits */
export const capMgaw = (cap: bigint): number => bits(cap, 16, 6) + 1;
/** `cap_fault_reg_offset`: byte offset of FRCD 0. @param cap - CAP @returns byte offset */
export const capFaultRegOffset = (cap: bigint): number => bits(cap, 24, 10) * 16;
/** `cap_super_page_val`: SLLPS (bit 0 = 2 MiB, bit 1 = 1 GiB). @param cap - CAP @returns 4-bit mask */
export const capSuperPageVal = (cap: bigint): number => bits(cap, 34, 4);
/** `cap_pgsel_inv`: page-selective invalidation (PSI). @param cap - CAP @returns the bit */
export const capPgselInv = (cap: bigint): boolean => bit(cap, 39);
/** `cap_num_fault_regs`: number of fault recording registers (field + 1). @param cap - CAP @returns count */
export const capNumFaultRegs = (cap: bigint): number => bits(cap, 40, 8) + 1;
/** `cap_max_amask_val`: MAMV. @param cap - CAP @returns the mask value */
export const capMaxAmaskVal = (cap: bigint): number => bits(cap, 48, 6);
/** `cap_write_drain`: DWD. @param cap - CAP @returns the bit */
export const capWriteDrain = (cap: bigint): boolean => bit(cap, 54);
/** `cap_read_drain`: DRD. @param cap - CAP @returns the bit */
export const capReadDrain = (cap: bigint): boolean => bit(cap, 55);
/** `cap_fl1gp_support`: first-level 1 GiB pages. @param cap - CAP @returns the bit */
export const capFl1gpSupport = (cap: bigint): boolean => bit(cap, 56);
/** `cap_fl5lp_support`: first-level 5-level paging. @param cap - CAP @returns the bit */
export const capFl5lpSupport = (cap: bigint): boolean => bit(cap, 60);
/** `cap_esrtps`: SRTP invalidates all DMA-remapping caches. @param cap - CAP @returns the bit */
export const capEsrtps = (cap: bigint): boolean => bit(cap, 63);

// ---- ECAP ------------------------------------------------------------------------------------------

/** `ecap_coherent`: C, page-walk coherency. @param ecap - ECAP @returns the bit */
export const ecapCoherent = (ecap: bigint): boolean => bit(ecap, 0);
/** `ecap_qis`: queued invalidation. @param ecap - ECAP @returns the bit */
export const ecapQis = (ecap: bigint): boolean => bit(ecap, 1);
/** `ecap_dev_iotlb_support`: DT (ATS). @param ecap - ECAP @returns the bit */
export const ecapDevIotlbSupport = (ecap: bigint): boolean => bit(ecap, 2);
/** `ecap_ir_support`: interrupt remapping. @param ecap - ECAP @returns the bit */
export const ecapIrSupport = (ecap: bigint): boolean => bit(ecap, 3);
/** `ecap_pass_through`: PT. @param ecap - ECAP @returns the bit */
export const ecapPassThrough = (ecap: bigint): boolean => bit(ecap, 6);
/** `ecap_sc_support`: snoop control. @param ecap - ECAP @returns the bit */
export const ecapScSupport = (ecap: bigint): boolean => bit(ecap, 7);
/** `ecap_iotlb_offset`: byte offset of the IOTLB register pair (IRO × 16). @param ecap - ECAP @returns byte offset */
export const ecapIotlbOffset = (ecap: bigint): number => bits(ecap, 8, 10) * 16;
/** `ecap_nest`: nested translation. @param ecap - ECAP @returns the bit */
export const ecapNest = (ecap: bigint): boolean => bit(ecap, 26);
/** `ecap_prs`: page requests. @param ecap - ECAP @returns the bit */
export const ecapPrs = (ecap: bigint): boolean => bit(ecap, 29);
/** `ecap_ers`: execute requests. @param ecap - ECAP @returns the bit */
export const ecapErs = (ecap: bigint): boolean => bit(ecap, 30);
/** `ecap_srs`: supervisor requests. @param ecap - ECAP @returns the bit */
export const ecapSrs = (ecap: bigint): boolean => bit(ecap, 31);
/** `ecap_eafs`: extended-accessed flag. @param ecap - ECAP @returns the bit */
export const ecapEafs = (ecap: bigint): boolean => bit(ecap, 34);
/** `ecap_pss`: PSS (PASID width − 1). @param ecap - ECAP @returns the field */
export const ecapPss = (ecap: bigint): number => bits(ecap, 35, 5);
/** `ecap_pasid`: PASID support. @param ecap - ECAP @returns the bit */
export const ecapPasid = (ecap: bigint): boolean => bit(ecap, 40);
/** `ecap_dit`: device-TLB invalidation throttling (PFSID valid). @param ecap - ECAP @returns the bit */
export const ecapDit = (ecap: bigint): boolean => bit(ecap, 41);
/** `ecap_pds`: page-request drain. @param ecap - ECAP @returns the bit */
export const ecapPds = (ecap: bigint): boolean => bit(ecap, 42);
/** `ecap_smts`: scalable-mode translation. @param ecap - ECAP @returns the bit */
export const ecapSmts = (ecap: bigint): boolean => bit(ecap, 43);
/** `ecap_slads`: second-level A/D. @param ecap - ECAP @returns the bit */
export const ecapSlads = (ecap: bigint): boolean => bit(ecap, 45);
/** `ecap_slts`: second-level translation. @param ecap - ECAP @returns the bit */
export const ecapSlts = (ecap: bigint): boolean => bit(ecap, 46);
/** `ecap_flts`: first-level translation. @param ecap - ECAP @returns the bit */
export const ecapFlts = (ecap: bigint): boolean => bit(ecap, 47);
/** `ecap_smpwc`: scalable-mode page-walk coherency. @param ecap - ECAP @returns the bit */
export const ecapSmpwc = (ecap: bigint): boolean => bit(ecap, 48);
/** `ecap_rps`: RID_PASID honoured. @param ecap - ECAP @returns the bit */
export const ecapRps = (ecap: bigint): boolean => bit(ecap, 49);

// ---- GCMD / GSTS -----------------------------------------------------------------------------------

/** `DMA_GCMD_TE` / `DMA_GSTS_TES`: translation enable (bit 31). */
export const DMA_GCMD_TE = 0x8000_0000;
/** `DMA_GCMD_SRTP` / `DMA_GSTS_RTPS`: set root table pointer (bit 30). */
export const DMA_GCMD_SRTP = 0x4000_0000;
/** `DMA_GCMD_WBF` / `DMA_GSTS_WBFS`: write-buffer flush (bit 27). */
export const DMA_GCMD_WBF = 0x0800_0000;
/** `DMA_GCMD_QIE` / `DMA_GSTS_QIES`: queued invalidation enable (bit 26). */
export const DMA_GCMD_QIE = 0x0400_0000;
/** `DMA_GCMD_IRE` / `DMA_GSTS_IRES`: interrupt remapping enable (bit 25). */
export const DMA_GCMD_IRE = 0x0200_0000;
/** `DMA_GCMD_SIRTP` / `DMA_GSTS_IRTPS`: set interrupt remap table pointer (bit 24). */
export const DMA_GCMD_SIRTP = 0x0100_0000;
/** `DMA_GCMD_CFI` / `DMA_GSTS_CFIS`: compatibility-format interrupts (bit 23). */
export const DMA_GCMD_CFI = 0x0080_0000;
/** GSTS bit mirroring TE. */
export const DMA_GSTS_TES = DMA_GCMD_TE;
/** GSTS bit mirroring SRTP. */
export const DMA_GSTS_RTPS = DMA_GCMD_SRTP;
/** GSTS bit mirroring WBF (set while the flush runs). */
export const DMA_GSTS_WBFS = DMA_GCMD_WBF;
/** GSTS bit mirroring QIE. */
export const DMA_GSTS_QIES = DMA_GCMD_QIE;
/** GSTS bit mirroring IRE. */
export const DMA_GSTS_IRES = DMA_GCMD_IRE;

/** `DMA_RTADDR_SMT`: scalable-mode translation (RTADDR bit 10). */
export const DMA_RTADDR_SMT = 1n << 10n;

/** `DMA_PMEN_EPM`: enable protected memory. */
export const DMA_PMEN_EPM = 0x8000_0000;
/** `DMA_PMEN_PRS`: protected region status. */
export const DMA_PMEN_PRS = 0x1;

// ---- CCMD / IOTLB registers -----------------------------------------------------------------------

/** `DMA_CCMD_ICC`: invalidate context cache (start / busy). */
export const DMA_CCMD_ICC = 1n << 63n;
/** `DMA_CCMD_GLOBAL_INVL`: CIRG = global. */
export const DMA_CCMD_GLOBAL_INVL = 1n << 61n;
/** `DMA_CCMD_DOMAIN_INVL`: CIRG = domain. */
export const DMA_CCMD_DOMAIN_INVL = 2n << 61n;
/** `DMA_CCMD_DEVICE_INVL`: CIRG = device. */
export const DMA_CCMD_DEVICE_INVL = 3n << 61n;
/** `DMA_CCMD_CAIG_MASK`: actual granularity (bits 60:59). */
export const DMA_CCMD_CAIG_MASK = 3n << 59n;
/** `DMA_CCMD_MASK_NOBIT`: function mask none. */
export const DMA_CCMD_MASK_NOBIT = 0;
/**
 * `DMA_CCMD_FM`: function mask field.
 * @param m - 0…3
 * @returns CCMD bits 33:32
 */
export const DMA_CCMD_FM = (m: number): bigint => BigInt(m & 3) << 32n;
/** `DMA_CCMD_SID`: source-id field. @param s - requester id @returns CCMD bits 31:16 */
export const DMA_CCMD_SID = (s: number): bigint => BigInt(s & 0xffff) << 16n;
/** `DMA_CCMD_DID`: domain-id field. @param d - DID @returns CCMD bits 15:0 */
export const DMA_CCMD_DID = (d: number): bigint => BigInt(d & 0xffff);

/** `DMA_TLB_IVT`: invalidate IOTLB (start / busy). */
export const DMA_TLB_IVT = 1n << 63n;
/** `DMA_TLB_GLOBAL_FLUSH`: IIRG = global. */
export const DMA_TLB_GLOBAL_FLUSH = 1n << 60n;
/** `DMA_TLB_DSI_FLUSH`: IIRG = domain-selective. */
export const DMA_TLB_DSI_FLUSH = 2n << 60n;
/** `DMA_TLB_PSI_FLUSH`: IIRG = page-selective. */
export const DMA_TLB_PSI_FLUSH = 3n << 60n;
/** `DMA_TLB_IAIG_MASK`: actual granularity (bits 58:57). */
export const DMA_TLB_IAIG_MASK = 3n << 57n;
/** `DMA_TLB_READ_DRAIN`: DR. */
export const DMA_TLB_READ_DRAIN = 1n << 49n;
/** `DMA_TLB_WRITE_DRAIN`: DW. */
export const DMA_TLB_WRITE_DRAIN = 1n << 48n;
/** `DMA_TLB_DID`: domain-id field. @param d - DID @returns IOTLB_REG bits 47:32 */
export const DMA_TLB_DID = (d: number): bigint => BigInt(d & 0xffff) << 32n;
/** `DMA_TLB_IH_NONLEAF`-style hint bit in IVA (bit 6). */
export const DMA_IVA_IH = 1n << 6n;

// ---- FSTS / FECTL / FRCD ---------------------------------------------------------------------------

/** `DMA_FSTS_PFO`: primary fault overflow. */
export const DMA_FSTS_PFO = 1 << 0;
/** `DMA_FSTS_PPF`: primary pending fault. */
export const DMA_FSTS_PPF = 1 << 1;
/** `DMA_FSTS_IQE`: invalidation queue error. */
export const DMA_FSTS_IQE = 1 << 4;
/** `DMA_FSTS_ICE`: invalidation completion error. */
export const DMA_FSTS_ICE = 1 << 5;
/** `DMA_FSTS_ITE`: invalidation time-out error. */
export const DMA_FSTS_ITE = 1 << 6;
/** `DMA_FSTS_PRO`: page request overflow (Linux's FSTS definition). */
export const DMA_FSTS_PRO = 1 << 7;
/**
 * `dma_fsts_fault_record_index`: FRI.
 * @param fsts - FSTS value
 * @returns the index of the first pending record
 */
export const dmaFstsFaultRecordIndex = (fsts: number): number => (fsts >>> 8) & 0xff;

/** `DMA_FECTL_IM`: interrupt mask (also IECTL / PECTL). */
export const DMA_FECTL_IM = 0x8000_0000;
/** `DMA_FECTL_IP`: interrupt pending. */
export const DMA_FECTL_IP = 0x4000_0000;

/** `DMA_FRCD_F`: fault bit in dword 3 of a fault record. */
export const DMA_FRCD_F = 0x8000_0000;
/** `dma_frcd_type`: T in dword 3 (1 = read). @param d - dword 3 @returns 1 read, 0 write */
export const dmaFrcdType = (d: number): number => (d >>> 30) & 1;
/** `dma_frcd_fault_reason`: FR in dword 3. @param d - dword 3 @returns reason code */
export const dmaFrcdFaultReason = (d: number): number => d & 0xff;
/** `dma_frcd_pasid_value`: PV in dword 3. @param d - dword 3 @returns PASID */
export const dmaFrcdPasidValue = (d: number): number => (d >>> 8) & 0xfffff;
/** `dma_frcd_pasid_present`: PP in dword 2. @param d - dword 2 @returns PASID present */
export const dmaFrcdPasidPresent = (d: number): boolean => ((d >>> 31) & 1) === 1;
/** `dma_frcd_source_id`: SID in dword 2. @param d - dword 2 @returns requester id */
export const dmaFrcdSourceId = (d: number): number => d & 0xffff;
/** `dma_frcd_page_addr`: page address in qword 0. @param q - qword 0 @returns address with bits 11:0 clear */
export const dmaFrcdPageAddr = (q: bigint): bigint => q & ~0xfffn;

// ---- invalidation queue ----------------------------------------------------------------------------

/** `QI_LENGTH`: descriptors in Linux's invalidation queue. */
export const QI_LENGTH = 256;
/** `DMA_IQA_DW` (`DMA_IQ_SHIFT`-related): 256-bit descriptors (IQA bit 11). */
export const DMA_IQA_DW = 1n << 11n;
/** `QI_IWC`: ICS completion bit. */
export const DMA_ICS_IWC = 1;
/** `DMA_IQER_IQEI`: IQER error cause (bits 3:0). @param v - IQER @returns IQEI */
export const dmaIqerIqei = (v: bigint): number => Number(v & 0xfn);
/** `DMA_IQER_ITESID`: IQER time-out source id (bits 47:32). @param v - IQER @returns SID */
export const dmaIqerItesid = (v: bigint): number => Number((v >> 32n) & 0xffffn);
/** `DMA_IQER_ICESID`: IQER completion-error source id (bits 63:48). @param v - IQER @returns SID */
export const dmaIqerIcesid = (v: bigint): number => Number((v >> 48n) & 0xffffn);

/** `QI_CC_TYPE`: context-cache invalidate. */
export const QI_CC_TYPE = 0x1n;
/** `QI_IOTLB_TYPE`: IOTLB invalidate. */
export const QI_IOTLB_TYPE = 0x2n;
/** `QI_DIOTLB_TYPE`: device-TLB invalidate. */
export const QI_DIOTLB_TYPE = 0x3n;
/** `QI_IEC_TYPE`: interrupt entry cache invalidate. */
export const QI_IEC_TYPE = 0x4n;
/** `QI_IWD_TYPE`: invalidation wait. */
export const QI_IWD_TYPE = 0x5n;
/** `QI_EIOTLB_TYPE`: PASID-based IOTLB invalidate. */
export const QI_EIOTLB_TYPE = 0x6n;
/** `QI_PC_TYPE`: PASID-cache invalidate. */
export const QI_PC_TYPE = 0x7n;
/** `QI_DEIOTLB_TYPE`: PASID-based device-TLB invalidate. */
export const QI_DEIOTLB_TYPE = 0x8n;
/** `QI_PGRP_RESP_TYPE`: page group response. */
export const QI_PGRP_RESP_TYPE = 0x9n;

/** `QI_IWD_STATUS_DATA(QI_DONE)`: the status value Linux's wait descriptors write. */
export const QI_DONE = 2;
/** Wait descriptor IF (interrupt flag). */
export const QI_IWD_IF = 1n << 4n;
/** `QI_IWD_STATUS_WRITE`: SW (status write). */
export const QI_IWD_STATUS_WRITE = 1n << 5n;
/** `QI_IWD_FENCE`: FN. */
export const QI_IWD_FENCE = 1n << 6n;
/** `QI_IWD_PRQ_DRAIN`: PD. */
export const QI_IWD_PRQ_DRAIN = 1n << 7n;

/** Context-cache granularity: global (descriptor G = 01). */
export const QI_CC_GRAN_GLOBAL = 1;
/** Context-cache granularity: domain (G = 10). */
export const QI_CC_GRAN_DOMAIN = 2;
/** Context-cache granularity: device (G = 11). */
export const QI_CC_GRAN_DEVICE = 3;

/** IOTLB granularity: global (G = 01). */
export const QI_IOTLB_GRAN_GLOBAL = 1;
/** IOTLB granularity: domain-selective (G = 10). */
export const QI_IOTLB_GRAN_DOMAIN = 2;
/** IOTLB granularity: page-selective within domain (G = 11). */
export const QI_IOTLB_GRAN_PAGE = 3;

/** `QI_GRAN_NONG_PASID`: PASID-based IOTLB, all mappings of the PASID (G = 10). */
export const QI_GRAN_NONG_PASID = 2;
/** `QI_GRAN_PSI_PASID`: PASID-based IOTLB, page-selective within the PASID (G = 11). */
export const QI_GRAN_PSI_PASID = 3;

/** `QI_PC_ALL_PASIDS`: PASID-cache, domain-selective (G = 00). */
export const QI_PC_ALL_PASIDS = 0;
/** `QI_PC_PASID_SEL`: PASID-cache, PASID-selective within DID (G = 01). */
export const QI_PC_PASID_SEL = 1;
/** `QI_PC_GLOBAL`: PASID-cache, global (G = 11). */
export const QI_PC_GLOBAL = 3;

/** `MAX_AGAW_PFN_WIDTH`-style "whole address space" order used by device-TLB flushes (mask 52). */
export const MAX_AGAW_PFN_WIDTH = 52;

/** Page group response code: success. */
export const QI_RESP_SUCCESS = 0x0;
/** Page group response code: invalid request. */
export const QI_RESP_INVALID = 0x1;
/** Page group response code: response failure. */
export const QI_RESP_FAILURE = 0xf;

// ---- page request queue ----------------------------------------------------------------------------

/** `PRQ_ORDER`: page order of the page request queue (64 KiB). */
export const PRQ_ORDER = 4;
/** `PRQ_RING_MASK`: mask of PQH/PQT byte offsets. */
export const PRQ_RING_MASK = 0xffe0;
/** Size of one page request descriptor in bytes. */
export const PRQ_DESC_SIZE = 32;
/** `DMA_PRS_PPR`: pending page request (PRS bit 0, RW1C). */
export const DMA_PRS_PPR = 1;
/** `DMA_PRS_PRO`: page request overflow (PRS bit 1, RW1C). */
export const DMA_PRS_PRO = 2;

// ---- domain IDs ------------------------------------------------------------------------------------

/** DID 0: never allocated ("no DID"; tag of not-present entries cached under CM). */
export const IDA_START_DID_NONE = 0;
/** `FLPT_DEFAULT_DID`: DID 1, shared by identity and SVA domains. */
export const FLPT_DEFAULT_DID = 1;
/** `IDA_START_DID`: first DID handed to paging domains. */
export const IDA_START_DID = 2;

/** `IOAPIC_RANGE_START`: start of the interrupt address range. */
export const IOAPIC_RANGE_START = 0xfee0_0000n;
/** `IOAPIC_RANGE_END`: last byte of the interrupt address range. */
export const IOAPIC_RANGE_END = 0xfeef_ffffn;
