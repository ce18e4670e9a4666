/**
 * VT-d register offsets and fields (digest §1): the architectural register file at the start of a
 * remapping unit's MMIO window. The IOTLB registers (at ECAP.IRO × 16) and the fault recording
 * registers (at CAP.FRO × 16) move with the configuration; see {@link vtdIvaOffset},
 * {@link vtdIotlbRegOffset} and {@link vtdFrcdOffset}.
 *
 * @remarks
 * Names follow Linux's `DMAR_*_REG` and field macros (drivers/iommu/intel/iommu.h), camel-cased
 * where they are not plain constants. 32-bit fields are numbers, 64-bit fields bigints.
 */

/** VER (32): version, major 7:4, minor 3:0. */
export const DMAR_VER_REG = 0x000;
/** CAP (64): capabilities. */
export const DMAR_CAP_REG = 0x008;
/** ECAP (64): extended capabilities. */
export const DMAR_ECAP_REG = 0x010;
/** GCMD (32): global command (write-only: reads return 0). */
export const DMAR_GCMD_REG = 0x018;
/** GSTS (32): global status. */
export const DMAR_GSTS_REG = 0x01c;
/** RTADDR (64): root table address and TTM. */
export const DMAR_RTADDR_REG = 0x020;
/** CCMD (64): register-based context-cache invalidation. */
export const DMAR_CCMD_REG = 0x028;
/** FSTS (32): fault status. */
export const DMAR_FSTS_REG = 0x034;
/** FECTL (32): fault event control. */
export const DMAR_FECTL_REG = 0x038;
/** FEDATA (32): fault event MSI data. */
export const DMAR_FEDATA_REG = 0x03c;
/** FEADDR (32): fault event MSI address. */
export const DMAR_FEADDR_REG = 0x040;
/** FEUADDR (32): fault event MSI upper address. */
export const DMAR_FEUADDR_REG = 0x044;
/** AFLOG (64): advanced fault log (not implemented: reads 0). */
export const DMAR_AFLOG_REG = 0x058;
/** PMEN (32): protected memory enable. */
export const DMAR_PMEN_REG = 0x064;
/** PLMBASE (32). */
export const DMAR_PLMBASE_REG = 0x068;
/** PLMLIMIT (32). */
export const DMAR_PLMLIMIT_REG = 0x06c;
/** PHMBASE (64). */
export const DMAR_PHMBASE_REG = 0x070;
/** PHMLIMIT (64). */
export const DMAR_PHMLIMIT_REG = 0x078;
/** IQH (64): invalidation queue head (hardware-written). */
export const DMAR_IQH_REG = 0x080;
/** IQT (64): invalidation queue tail. */
export const DMAR_IQT_REG = 0x088;
/** IQA (64): invalidation queue address, DW and QS. */
export const DMAR_IQA_REG = 0x090;
/** ICS (32): invalidation completion status. */
export const DMAR_ICS_REG = 0x09c;
/** IECTL (32): invalidation event control. */
export const DMAR_IECTL_REG = 0x0a0;
/** IEDATA (32). */
export const DMAR_IEDATA_REG = 0x0a4;
/** IEADDR (32). */
export const DMAR_IEADDR_REG = 0x0a8;
/** IEUADDR (32). */
export const DMAR_IEUADDR_REG = 0x0ac;
/** IQER (64): invalidation queue error record. */
export const DMAR_IQER_REG = 0x0b0;
/** IRTA (64): interrupt remapping table address. */
export const DMAR_IRTA_REG = 0x0b8;
/** PQH (64): page request queue head (software-written). */
export const DMAR_PQH_REG = 0x0c0;
/** PQT (64): page request queue tail (hardware-written). */
export const DMAR_PQT_REG = 0x0c8;
/** PQA (64): page request queue address and size. */
export const DMAR_PQA_REG = 0x0d0;
/** PRS (32): page request status. */
export const DMAR_PRS_REG = 0x0dc;
/** PECTL (32): page request event control. */
export const DMAR_PECTL_REG = 0x0e0;
/** PEDATA (32). */
export const DMAR_PEDATA_REG = 0x0e4;
/** PEADDR (32). */
export const DMAR_PEADDR_REG = 0x0e8;
/** PEUADDR (32). */
export const DMAR_PEUADDR_REG = 0x0ec;

/**
 * Offset of IVA (IOTLB invalidate address) for an ECAP.IRO value.
 * @param iro - ECAP.IRO (16-byte units)
 * @returns byte offset
 */
export function vtdIvaOffset(iro: number): number {
  return iro * 16;
}

/**
 * Offset of IOTLB_REG for an ECAP.IRO value.
 * @param iro - ECAP.IRO (16-byte units)
 * @returns byte offset (IVA + 8)
 */
export function vtdIotlbRegOffset(iro: number): number {
  return iro * 16 + 8;
}

/**
 * Offset of fault recording register `index` (128 bits each).
 * @param fro - CAP.FRO (16-byte units)
 * @param index - 0 … NFR
 * @returns byte offset of the record's low qword
 */
export function vtdFrcdOffset(fro: number, index: number): number {
  return fro * 16 + index * 16;
}

// ---- GCMD / GSTS (§1.4) ------------------------------------------------------------------------

/** GCMD.TE / GSTS.TES: translation enable (bit 31). */
export const DMA_GCMD_TE = 0x8000_0000;
/** GCMD.SRTP / GSTS.RTPS: set root table pointer (bit 30, one-shot). */
export const DMA_GCMD_SRTP = 0x4000_0000;
/** GCMD.SFL / GSTS.FLS: set fault log (bit 29, deprecated). */
export const DMA_GCMD_SFL = 0x2000_0000;
/** GCMD.EAFL / GSTS.AFLS: enable advanced fault logging (bit 28, deprecated). */
export const DMA_GCMD_EAFL = 0x1000_0000;
/** GCMD.WBF / GSTS.WBFS: write-buffer flush (bit 27, one-shot). */
export const DMA_GCMD_WBF = 0x0800_0000;
/** GCMD.QIE / GSTS.QIES: queued invalidation enable (bit 26). */
export const DMA_GCMD_QIE = 0x0400_0000;
/** GCMD.IRE / GSTS.IRES: interrupt remapping enable (bit 25). */
export const DMA_GCMD_IRE = 0x0200_0000;
/** GCMD.SIRTP / GSTS.IRTPS: set interrupt remap table pointer (bit 24, one-shot). */
export const DMA_GCMD_SIRTP = 0x0100_0000;
/** GCMD.CFI / GSTS.CFIS: compatibility format interrupts (bit 23). */
export const DMA_GCMD_CFI = 0x0080_0000;
/** Status names of the same bits (GSTS). */
export const DMA_GSTS_TES = DMA_GCMD_TE;
/** GSTS.RTPS. */
export const DMA_GSTS_RTPS = DMA_GCMD_SRTP;
/** GSTS.WBFS. */
export const DMA_GSTS_WBFS = DMA_GCMD_WBF;
/** GSTS.QIES. */
export const DMA_GSTS_QIES = DMA_GCMD_QIE;
/** GSTS.IRES. */
export const DMA_GSTS_IRES = DMA_GCMD_IRE;
/** GSTS.IRTPS. */
export const DMA_GSTS_IRTPS = DMA_GCMD_SIRTP;
/** GSTS.CFIS. */
export const DMA_GSTS_CFIS = DMA_GCMD_CFI;

// ---- RTADDR (§1.5) -----------------------------------------------------------------------------

/** RTADDR.RTA mask (bits 63:12). */
export const DMA_RTADDR_RTA_MASK = 0xffff_ffff_ffff_f000n;
/** RTADDR.TTM shift (bits 11:10). */
export const DMA_RTADDR_TTM_SHIFT = 10n;
/** RTADDR.SMT: Linux's name for TTM = 01 (bit 10). */
export const DMA_RTADDR_SMT = 1n << 10n;

// ---- CCMD (§1.6) -------------------------------------------------------------------------------

/** CCMD.ICC (bit 63): start / busy. */
export const DMA_CCMD_ICC = 1n << 63n;
/** CCMD.CIRG shift (bits 62:61). */
export const DMA_CCMD_CIRG_SHIFT = 61n;
/** CCMD.CAIG shift (bits 60:59). */
export const DMA_CCMD_CAIG_SHIFT = 59n;
/** CCMD granularity: global. */
export const DMA_CCMD_GLOBAL_INVL = 1n << 61n;
/** CCMD granularity: domain-selective. */
export const DMA_CCMD_DOMAIN_INVL = 2n << 61n;
/** CCMD granularity: device-selective. */
export const DMA_CCMD_DEVICE_INVL = 3n << 61n;

// ---- IOTLB_REG / IVA (§1.7) --------------------------------------------------------------------

/** IOTLB_REG.IVT (bit 63): start / busy. */
export const DMA_TLB_IVT = 1n << 63n;
/** IOTLB_REG.IIRG shift (bits 61:60). */
export const DMA_TLB_IIRG_SHIFT = 60n;
/** IOTLB_REG.IAIG shift (bits 58:57). */
export const DMA_TLB_IAIG_SHIFT = 57n;
/** IOTLB_REG granularity: global. */
export const DMA_TLB_GLOBAL_FLUSH = 1n << 60n;
/** IOTLB_REG granularity: domain-selective. */
export const DMA_TLB_DSI_FLUSH = 2n << 60n;
/** IOTLB_REG granularity: page-selective within domain. */
export const DMA_TLB_PSI_FLUSH = 3n << 60n;
/** IOTLB_REG.DR (bit 49). */
export const DMA_TLB_READ_DRAIN = 1n << 49n;
/** IOTLB_REG.DW (bit 48). */
export const DMA_TLB_WRITE_DRAIN = 1n << 48n;
/** IVA.IH (bit 6). */
export const DMA_IVA_IH = 1n << 6n;

// ---- FSTS / FECTL (§1.8) -----------------------------------------------------------------------

/** FSTS.PFO (bit 0, RW1C): primary fault overflow. */
export const DMA_FSTS_PFO = 1 << 0;
/** FSTS.PPF (bit 1, RO): primary fault pending. */
export const DMA_FSTS_PPF = 1 << 1;
/** FSTS.IQE (bit 4, RW1C): invalidation queue error. */
export const DMA_FSTS_IQE = 1 << 4;
/** FSTS.ICE (bit 5, RW1C): invalidation completion error. */
export const DMA_FSTS_ICE = 1 << 5;
/** FSTS.ITE (bit 6, RW1C): invalidation time-out error. */
export const DMA_FSTS_ITE = 1 << 6;
/** FSTS.PRO (bit 7): Linux's "page request overflow" (deprecated; never set by the model). */
export const DMA_FSTS_PRO = 1 << 7;
/** FSTS.FRI shift (bits 15:8): index of the first pending fault record. */
export const DMA_FSTS_FRI_SHIFT = 8;
/** Event-control IM (bit 31): interrupt mask, set at reset. */
export const DMA_FECTL_IM = 0x8000_0000;
/** Event-control IP (bit 30, RO): interrupt pending. */
export const DMA_FECTL_IP = 0x4000_0000;
/** FRCD dword-3 F bit (bit 31 of the record's dword at +12, abs bit 127). */
export const DMA_FRCD_F = 0x8000_0000;

// ---- Invalidation queue (§1.10) ----------------------------------------------------------------

/** IQA.DW (bit 11): 256-bit descriptors. */
export const DMA_IQA_DW = 1n << 11n;
/** IQA.QS mask (bits 2:0). */
export const DMA_IQA_QS_MASK = 7n;
/** IQA.IQA mask (bits 63:12). */
export const DMA_IQA_ADDR_MASK = 0xffff_ffff_ffff_f000n;
/** IQH/IQT offset mask (bits 18:4). */
export const DMA_IQ_OFFSET_MASK = 0x7fff0;
/** ICS.IWC (bit 0, RW1C). */
export const DMA_ICS_IWC = 1;
/** IQER.IQEI values (§4.11). */
export const VTD_IQEI = Object.freeze({
  /** No detail. */
  NONE: 0,
  /** Invalid tail pointer. */
  TAIL: 1,
  /** Descriptor fetch error. */
  FETCH: 2,
  /** Invalid descriptor type. */
  TYPE: 3,
  /** Reserved field set in a valid descriptor. */
  RESERVED: 4,
  /** Invalid descriptor width (DW). */
  WIDTH: 5,
  /** Tail not 256-bit aligned with DW=1. */
  TAIL_ALIGN: 6,
  /** Invalid TTM in RTADDR. */
  TTM: 7,
} as const);

// ---- Page request queue (§1.11) ----------------------------------------------------------------

/** PQA.PQS mask (bits 2:0). */
export const DMA_PQA_QS_MASK = 7n;
/** PQA address mask (bits 63:12). */
export const DMA_PQA_ADDR_MASK = 0xffff_ffff_ffff_f000n;
/** PQH/PQT offset mask (bits 18:5 for the largest queue; the model masks with the queue size). */
export const DMA_PRQ_OFFSET_MASK = 0x7ffe0;
/** PRS.PPR (bit 0, RW1C): pending page request. */
export const DMA_PRS_PPR = 1;
/** PRS.PRO (bit 1, RW1C): page request overflow. */
export const DMA_PRS_PRO = 2;
