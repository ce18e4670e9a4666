/**
 * One SMMUv3 instance as the Linux driver sees it (`struct arm_smmu_device`): hardware probe from
 * the ID registers, allocation of queues and the stream table, the reset sequence, interrupt
 * setup and registration with the IOMMU core (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c:
 * `arm_smmu_device_hw_probe`, `arm_smmu_init_structures`, `arm_smmu_device_reset`,
 * `arm_smmu_setup_irqs`, `arm_smmu_device_probe`; spec §1.11, §1.12, §8.1).
 *
 * @remarks
 * The device reaches the SMMU only through its {@link MmioRegion}, the machine's
 * {@link PhysicalMemory} and interrupt lines (the hardware boundary of ARCHITECTURE.md).
 */

import { ERRNO, ErrnoError, type IrqLine, IrqReturn, type Scheduler } from '@iommu-ts/base';
import { type IopfQueue, iopfQueueAlloc } from '@iommu-ts/io-pgfault';
import {
  type Device,
  type FwNode,
  IommuDevice,
  type IommuFault,
  type IommuOps,
  type IommuPageResponse,
  type IommuSubsystem,
  type MmioRegion,
  mmioSubRegion,
} from '@iommu-ts/iommu-core';
import type { PhysicalMemory } from '@iommu-ts/mm';
import { cmdqIssueCmdWithSync } from './cmdq.js';
import { armSmmuEvtqThread } from './events.js';
import { armSmmuGerrorHandler } from './gerror.js';
import { armSmmuPageResponse, armSmmuPriqThread } from './priq.js';
import {
  ARM_SMMU_CMDQ_BASE,
  ARM_SMMU_CMDQ_CONS,
  ARM_SMMU_CMDQ_PROD,
  ARM_SMMU_CR0,
  ARM_SMMU_CR0ACK,
  ARM_SMMU_CR1,
  ARM_SMMU_CR2,
  ARM_SMMU_EVTQ_BASE,
  ARM_SMMU_EVTQ_CONS,
  ARM_SMMU_EVTQ_IRQ_CFG0,
  ARM_SMMU_EVTQ_PROD,
  ARM_SMMU_GBPA,
  ARM_SMMU_GERROR_IRQ_CFG0,
  ARM_SMMU_IDR0,
  ARM_SMMU_IDR1,
  ARM_SMMU_IDR3,
  ARM_SMMU_IDR5,
  ARM_SMMU_IIDR,
  ARM_SMMU_IRQ_CTRL,
  ARM_SMMU_IRQ_CTRLACK,
  ARM_SMMU_PAGE1_OFFSET,
  ARM_SMMU_PRIQ_BASE,
  ARM_SMMU_PRIQ_CONS,
  ARM_SMMU_PRIQ_IRQ_CFG0,
  ARM_SMMU_PRIQ_PROD,
  ARM_SMMU_REG_MIN_SIZE,
  ARM_SMMU_STRTAB_BASE,
  ARM_SMMU_STRTAB_BASE_CFG,
  type ArmSmmuEvent,
  CMDQ_ENT_DWORDS,
  CMDQ_MAX_SZ_SHIFT,
  CR0_ATSCHK,
  CR0_CMDQEN,
  CR0_EVTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  CR1_LINUX_VALUE,
  CR2_E2H,
  CR2_PTM,
  CR2_RECINVSID,
  EVTQ_ENT_DWORDS,
  EVTQ_MAX_SZ_SHIFT,
  GBPA_ABORT,
  GBPA_UPDATE,
  IDR0_ASID16,
  IDR0_ATS,
  IDR0_BTM,
  IDR0_CD2L,
  IDR0_COHACC,
  IDR0_HTTU,
  IDR0_HTTU_ACCESS,
  IDR0_HTTU_ACCESS_DIRTY,
  IDR0_HYP,
  IDR0_MSI,
  IDR0_PRI,
  IDR0_S1P,
  IDR0_S2P,
  IDR0_SEV,
  IDR0_ST_LVL,
  IDR0_ST_LVL_2LVL,
  IDR0_STALL_MODEL,
  IDR0_STALL_MODEL_FORCE,
  IDR0_STALL_MODEL_STALL,
  IDR0_TTENDIAN,
  IDR0_TTENDIAN_BE,
  IDR0_TTENDIAN_LE,
  IDR0_TTENDIAN_MIXED,
  IDR0_TTF,
  IDR0_TTF_AARCH32_64,
  IDR0_TTF_AARCH64,
  IDR0_VMID16,
  IDR1_ATTR_TYPES_OVR,
  IDR1_CMDQS,
  IDR1_EVTQS,
  IDR1_PRIQS,
  IDR1_QUEUES_PRESET,
  IDR1_REL,
  IDR1_SIDSIZE,
  IDR1_SSIDSIZE,
  IDR1_TABLES_PRESET,
  IDR3_BBML,
  IDR3_BBML2,
  IDR3_FWB,
  IDR3_RIL,
  IDR5_GRAN4K,
  IDR5_GRAN16K,
  IDR5_GRAN64K,
  IDR5_OAS,
  IDR5_OAS_BITS,
  IDR5_STALL_MAX,
  IDR5_VAX,
  IDR5_VAX_52_BIT,
  IIDR_IMPLEMENTER,
  IIDR_IMPLEMENTER_ARM,
  IIDR_PRODUCTID,
  IIDR_PRODUCTID_ARM_MMU_600,
  IIDR_PRODUCTID_ARM_MMU_700,
  IIDR_REVISION,
  IIDR_VARIANT,
  IRQ_CTRL_EVTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  PRIQ_ENT_DWORDS,
  PRIQ_MAX_SZ_SHIFT,
  Q_BASE_ADDR_MASK,
  Q_BASE_RWA,
  STRTAB_BASE_ADDR_MASK,
  STRTAB_BASE_CFG_FMT_2LVL,
  STRTAB_BASE_CFG_FMT_LINEAR,
  STRTAB_BASE_RA,
  STRTAB_L1_DESC_L2PTR_MASK,
  STRTAB_L1_DESC_SIZE,
  STRTAB_MAX_L1_ENTRIES,
  STRTAB_SPLIT,
  STRTAB_STE_0_CFG_ABORT,
  STRTAB_STE_0_V,
  STRTAB_STE_SIZE,
} from './regs.js';

// ---- features and options ------------------------------------------------------------------------

/** `ARM_SMMU_FEAT_2_LVL_STRTAB`: two-level stream table in use. */
export const ARM_SMMU_FEAT_2_LVL_STRTAB = 1 << 0;
/** `ARM_SMMU_FEAT_2_LVL_CDTAB`: two-level CD tables supported. */
export const ARM_SMMU_FEAT_2_LVL_CDTAB = 1 << 1;
/** `ARM_SMMU_FEAT_TT_LE`: little-endian table walks. */
export const ARM_SMMU_FEAT_TT_LE = 1 << 2;
/** `ARM_SMMU_FEAT_TT_BE`: big-endian table walks. */
export const ARM_SMMU_FEAT_TT_BE = 1 << 3;
/** `ARM_SMMU_FEAT_PRI`: PCIe PRI. */
export const ARM_SMMU_FEAT_PRI = 1 << 4;
/** `ARM_SMMU_FEAT_ATS`: PCIe ATS. */
export const ARM_SMMU_FEAT_ATS = 1 << 5;
/** `ARM_SMMU_FEAT_SEV`: SEV on CMD_SYNC. */
export const ARM_SMMU_FEAT_SEV = 1 << 6;
/** `ARM_SMMU_FEAT_MSI`: MSIs. */
export const ARM_SMMU_FEAT_MSI = 1 << 7;
/** `ARM_SMMU_FEAT_COHERENCY`: coherent table and queue accesses (firmware decides). */
export const ARM_SMMU_FEAT_COHERENCY = 1 << 8;
/** `ARM_SMMU_FEAT_TRANS_S1`: stage 1. */
export const ARM_SMMU_FEAT_TRANS_S1 = 1 << 9;
/** `ARM_SMMU_FEAT_TRANS_S2`: stage 2. */
export const ARM_SMMU_FEAT_TRANS_S2 = 1 << 10;
/** `ARM_SMMU_FEAT_STALLS`: stall model supported. */
export const ARM_SMMU_FEAT_STALLS = 1 << 11;
/** `ARM_SMMU_FEAT_HYP`: EL2 StreamWorld. */
export const ARM_SMMU_FEAT_HYP = 1 << 12;
/** `ARM_SMMU_FEAT_STALL_FORCE`: stalls forced. */
export const ARM_SMMU_FEAT_STALL_FORCE = 1 << 13;
/** `ARM_SMMU_FEAT_VAX`: 52-bit VA. */
export const ARM_SMMU_FEAT_VAX = 1 << 14;
/** `ARM_SMMU_FEAT_RANGE_INV`: range TLBI. */
export const ARM_SMMU_FEAT_RANGE_INV = 1 << 15;
/** `ARM_SMMU_FEAT_BTM`: broadcast TLB maintenance. */
export const ARM_SMMU_FEAT_BTM = 1 << 16;
/** `ARM_SMMU_FEAT_SVA`: SVA possible (set by the SVA code, later). */
export const ARM_SMMU_FEAT_SVA = 1 << 17;
/** `ARM_SMMU_FEAT_E2H`: EL2-host StreamWorld in use (VHE kernel). */
export const ARM_SMMU_FEAT_E2H = 1 << 18;
/** `ARM_SMMU_FEAT_NESTING`: stage 1 and stage 2 (nesting). */
export const ARM_SMMU_FEAT_NESTING = 1 << 19;
/** `ARM_SMMU_FEAT_ATTR_TYPES_OVR`: STE attribute overrides honoured. */
export const ARM_SMMU_FEAT_ATTR_TYPES_OVR = 1 << 20;
/** `ARM_SMMU_FEAT_HA`: hardware access flag update. */
export const ARM_SMMU_FEAT_HA = 1 << 21;
/** `ARM_SMMU_FEAT_HD`: hardware dirty state update. */
export const ARM_SMMU_FEAT_HD = 1 << 22;
/** `ARM_SMMU_FEAT_S2FWB`: stage-2 forced write-back. */
export const ARM_SMMU_FEAT_S2FWB = 1 << 23;
/** `ARM_SMMU_FEAT_BBML2`: break-before-make level 2. */
export const ARM_SMMU_FEAT_BBML2 = 1 << 24;

/** `ARM_SMMU_OPT_SKIP_PREFETCH`: never issue CMD_PREFETCH_CONFIG. */
export const ARM_SMMU_OPT_SKIP_PREFETCH = 1 << 0;
/** `ARM_SMMU_OPT_PAGE0_REGS_ONLY`: page-1 registers live at the same offsets in page 0. */
export const ARM_SMMU_OPT_PAGE0_REGS_ONLY = 1 << 1;
/** `ARM_SMMU_OPT_MSIPOLL`: CMD_SYNC completion by polling its own MSI write. */
export const ARM_SMMU_OPT_MSIPOLL = 1 << 2;
/** `ARM_SMMU_OPT_CMDQ_FORCE_SYNC`: MMU-700 erratum, a batch never exceeds 63 commands + SYNC. */
export const ARM_SMMU_OPT_CMDQ_FORCE_SYNC = 1 << 3;

/** Names of the feature bits, lowest first (for logs and tests). */
export const ARM_SMMU_FEAT_NAMES: readonly string[] = Object.freeze([
  '2_LVL_STRTAB',
  '2_LVL_CDTAB',
  'TT_LE',
  'TT_BE',
  'PRI',
  'ATS',
  'SEV',
  'MSI',
  'COHERENCY',
  'TRANS_S1',
  'TRANS_S2',
  'STALLS',
  'HYP',
  'STALL_FORCE',
  'VAX',
  'RANGE_INV',
  'BTM',
  'SVA',
  'E2H',
  'NESTING',
  'ATTR_TYPES_OVR',
  'HA',
  'HD',
  'S2FWB',
  'BBML2',
]);

/**
 * The names of the bits set in a feature mask.
 * @param features - `ARM_SMMU_FEAT_*` bits
 * @returns names such as `'TRANS_S1'`, lowest bit first
 */
export function armSmmuFeatureNames(features: number): string[] {
  return ARM_SMMU_FEAT_NAMES.filter((_, i) => (features & (1 << i)) !== 0);
}

// ---- option and state shapes ---------------------------------------------------------------------

/** Interrupt lines the driver requests (firmware names "eventq", "priq", "gerror"; QEMU's "cmdq-sync"). */
export interface ArmSmmuIrqs {
  /** Event queue interrupt. */
  readonly evtq?: IrqLine;
  /** PRI queue interrupt. */
  readonly priq?: IrqLine;
  /** Global error interrupt. */
  readonly gerror?: IrqLine;
  /** CMD_SYNC completion line (never requested: Linux polls CMD_SYNC). */
  readonly cmdqSync?: IrqLine;
  /** A single "combined" line for everything (Cavium ThunderX2). */
  readonly combined?: IrqLine;
}

/** Driver options from firmware or the command line. */
export interface ArmSmmuDriverOptions {
  /** The kernel runs at EL2 with VHE: use the EL2 StreamWorld when IDR0.HYP (`FEAT_E2H`). Default false. */
  readonly e2h?: boolean;
  /** Allow MSI polling of CMD_SYNC when the SMMU supports MSIs and is coherent (`!disable_msipolling`). Default true. */
  readonly msipoll?: boolean;
  /** `OPT_SKIP_PREFETCH` (DT `hisilicon,broken-prefetch-cmd`, IORT Hi161x). Default false. */
  readonly skipPrefetch?: boolean;
  /** `OPT_PAGE0_REGS_ONLY` (Cavium CN99xx). Default false. */
  readonly page0RegsOnly?: boolean;
  /** HTTU override from IORT (ACPI): replaces IDR0.HTTU when given. */
  readonly httuOverride?: 'none' | 'ha' | 'hahd';
  /**
   * Largest queue, log2 entries, the driver allocates (a memory knob of this model, like Linux's
   * `CONFIG_CMA_ALIGNMENT` cap). Default: Linux's caps (`CMDQ_MAX_SZ_SHIFT` …).
   */
  readonly maxQueueLog2?: number;
  /** Poll budget in scheduler steps before a poll times out (Linux: 1 s). Default 100000. */
  readonly pollSteps?: number;
  /**
   * Use broadcast TLB maintenance when the SMMU has it (IDR0.BTM), as the 2018 SVA series does:
   * reset leaves CR2.PTM clear, so the CPU's TLBIs reach SMMU TLB entries of shared-ASID (ASET=0)
   * CDs. Default false: CR2.PTM set, as today's Linux writes (every invalidation by command).
   */
  readonly btm?: boolean;
}

/** Constructor options of {@link ArmSmmuDevice}. */
export interface ArmSmmuDeviceOptions {
  /** The IOMMU core to register with. */
  readonly iommu: IommuSubsystem;
  /** The SMMU's register region (at least 128 KiB, or 64 KiB with `page0RegsOnly`). */
  readonly mmio: MmioRegion;
  /** The machine's RAM: stream table, CD tables, queues and page tables live here. */
  readonly memory: PhysicalMemory;
  /** The scheduler the SMMU and its interrupts run on. */
  readonly scheduler: Scheduler;
  /** Interrupt lines wired to the SMMU (absent: the driver polls the queues itself). */
  readonly irqs?: ArmSmmuIrqs;
  /** The SMMU's firmware node (matched against device fwspecs). */
  readonly fwnode?: FwNode | null;
  /** Firmware says table/queue accesses are coherent (DT `dma-coherent`, IORT COHACC). Default: IDR0.COHACC. */
  readonly coherent?: boolean;
  /** Instance name (default `'smmu3'`). */
  readonly name?: string;
  /** Driver options. */
  readonly options?: ArmSmmuDriverOptions;
  /** Log sink in addition to {@link ArmSmmuDevice.log}. */
  readonly onLog?: (entry: ArmSmmuLogEntry) => void;
}

/** A message the driver logged (`dev_err`, `dev_warn`, `dev_info`). */
export interface ArmSmmuLogEntry {
  /** Severity. */
  readonly level: 'err' | 'warn' | 'info';
  /** The text. */
  readonly message: string;
}

/** One hardware queue as the driver tracks it (`struct arm_smmu_queue` + `arm_smmu_ll_queue`). */
export interface ArmSmmuQueue {
  /** Physical address of entry 0. */
  pa: number;
  /** Page order of the allocation. */
  order: number;
  /** log2 of the number of entries (`max_n_shift`). */
  log2: number;
  /** 64-bit words per entry. */
  readonly entDwords: number;
  /** The value written to *Q_BASE. */
  base: bigint;
  /** Shadow PROD (index, wrap; OVFLG for output queues). */
  prod: number;
  /** Shadow CONS (index, wrap; OVACKFLG for output queues). */
  cons: number;
  /** Register offset of PROD (in its page). */
  readonly prodReg: number;
  /** Register offset of CONS (in its page). */
  readonly consReg: number;
}

/** The stream table (`struct arm_smmu_strtab_cfg`). */
export type ArmSmmuStrtab =
  | {
      /** Linear table. */
      readonly kind: 'linear';
      /** Physical address of STE 0. */
      readonly pa: number;
      /** Page order of the allocation. */
      readonly order: number;
      /** Number of STEs. */
      readonly numEnts: number;
    }
  | {
      /** Two-level table. */
      readonly kind: '2lvl';
      /** Physical address of the L1 descriptor array. */
      readonly l1Pa: number;
      /** Page order of the L1 allocation. */
      readonly order: number;
      /** Number of L1 descriptors. */
      readonly numL1Ents: number;
      /** Physical address of each allocated L2 table by L1 index. */
      readonly l2: Map<number, number>;
    };

/**
 * What the event and page-response paths need from a master (D2's `ArmSmmuMaster` provides it):
 * the device, whether it may stall, and its StreamIDs (first one used for RESUME).
 */
export interface ArmSmmuStreamMaster {
  /** The device. */
  readonly dev: Device;
  /** `stall_enabled`: faults of this master stall and are reported as page requests. */
  readonly stallEnabled: boolean;
  /** The master's StreamIDs, in fwspec order. */
  readonly streamIds: readonly number[];
}

/** Counters of an {@link ArmSmmuDevice}. */
export interface ArmSmmuStats {
  /** Commands issued (not counting the SYNCs added by the queue). */
  cmdsIssued: number;
  /** CMD_SYNCs issued. */
  syncs: number;
  /** Event records consumed. */
  events: number;
  /** PRI records consumed. */
  priRequests: number;
  /** Global errors handled. */
  gerrors: number;
  /** Event / PRI queue overflows noticed. */
  overflows: number;
}

// ---- the device ----------------------------------------------------------------------------------

/** The 64-bit word that makes an STE valid with Config = abort (`arm_smmu_make_abort_ste`). */
const ABORT_STE_DW0 = STRTAB_STE_0_V | STRTAB_STE_0_CFG_ABORT;

/**
 * One SMMUv3 (`struct arm_smmu_device`).
 *
 * @remarks
 * Life cycle as `arm_smmu_device_probe`: construct, {@link ArmSmmuDevice.probe} (ID registers),
 * {@link ArmSmmuDevice.reset} (allocate queues and stream table on first call, program and enable
 * the SMMU, request interrupts), {@link ArmSmmuDevice.register} (IOMMU core). Or all three with
 * {@link armSmmuDeviceProbe}.
 */
export class ArmSmmuDevice {
  /** Instance name. */
  readonly name: string;
  /** The IOMMU core. */
  readonly iommu: IommuSubsystem;
  /** Register page 0. */
  readonly mmio: MmioRegion;
  /** Register page 1 (page 0 again with `OPT_PAGE0_REGS_ONLY`). */
  readonly page1: MmioRegion;
  /** The machine's RAM. */
  readonly memory: PhysicalMemory;
  /** The scheduler. */
  readonly scheduler: Scheduler;
  /** Interrupt lines. */
  readonly irqs: ArmSmmuIrqs;
  /** Firmware node. */
  readonly fwnode: FwNode | null;
  /** `struct iommu_device` registered with the core. */
  readonly iommuDevice: IommuDevice;
  /** Driver options as given. */
  readonly driverOptions: ArmSmmuDriverOptions;

  /**
   * Whether the SMMU takes part in broadcast TLB maintenance: `FEAT_BTM` and the `btm` option (the
   * seed's design; reset then leaves CR2.PTM clear).
   */
  get btmInUse(): boolean {
    return (this.features & ARM_SMMU_FEAT_BTM) !== 0 && this.driverOptions.btm === true;
  }
  /** `ARM_SMMU_FEAT_*` bits (after {@link ArmSmmuDevice.probe}). */
  features = 0;
  /** `ARM_SMMU_OPT_*` bits. */
  options = 0;
  /** ASID width (8 or 16). */
  asidBits = 0;
  /** VMID width (8 or 16). */
  vmidBits = 0;
  /** StreamID width (IDR1.SIDSIZE). */
  sidBits = 0;
  /** SubstreamID width (IDR1.SSIDSIZE). */
  ssidBits = 0;
  /** Input address size in bits (`ias`). */
  ias = 0;
  /** Output address size in bits (`oas`). */
  oas = 0;
  /** Supported page and block sizes (`pgsize_bitmap`), bytes as bits. */
  pgsizeBitmap = 0n;
  /** Most outstanding stalls (`evtq.max_stalls`, IDR5.STALL_MAX). */
  maxStalls = 0;
  /** IIDR as read at probe. */
  iidr = 0;
  /** The command queue (valid after {@link ArmSmmuDevice.reset}). */
  readonly cmdq: ArmSmmuQueue;
  /** The event queue. */
  readonly evtq: ArmSmmuQueue;
  /** The PRI queue (allocated only with `FEAT_PRI`). */
  readonly priq: ArmSmmuQueue;
  /** The stream table (`null` before the first reset). */
  strtab: ArmSmmuStrtab | null = null;
  /** StreamID → master (`smmu->streams`, the rb-tree); maintained by the master code. */
  readonly streams = new Map<number, ArmSmmuStreamMaster>();
  /** VMIDs in use on this SMMU (`smmu->vmid_map`); maintained by the domain code. */
  readonly vmidMap = new Set<number>();
  /** The IOPF queue of this SMMU (`evtq.iopf`), allocated at reset with `FEAT_STALLS` or `FEAT_PRI`. */
  iopfQueue: IopfQueue | null = null;
  /** Messages logged, oldest first (capped at 1000). */
  readonly log: ArmSmmuLogEntry[] = [];
  /** Counters. */
  readonly stats: ArmSmmuStats = {
    cmdsIssued: 0,
    syncs: 0,
    events: 0,
    priRequests: 0,
    gerrors: 0,
    overflows: 0,
  };
  /** Whether {@link ArmSmmuDevice.probe} succeeded. */
  probed = false;
  /** Whether {@link ArmSmmuDevice.register} succeeded. */
  registered = false;
  /**
   * Test hook: called for each decoded event the driver did not report to io-pgfault, after
   * logging it. Receives the event and the master found for its StreamID (or `undefined`).
   */
  onUnhandledEvent: ((evt: ArmSmmuEvent, master: ArmSmmuStreamMaster | undefined) => void) | undefined;

  readonly #onLog: ((entry: ArmSmmuLogEntry) => void) | undefined;
  readonly #coherentFw: boolean | undefined;
  #irqsRequested = false;

  /** @param opts - see {@link ArmSmmuDeviceOptions} */
  constructor(opts: ArmSmmuDeviceOptions) {
    this.name = opts.name ?? 'smmu3';
    this.iommu = opts.iommu;
    this.mmio = opts.mmio;
    this.memory = opts.memory;
    this.scheduler = opts.scheduler;
    this.irqs = opts.irqs ?? {};
    this.fwnode = opts.fwnode ?? null;
    this.driverOptions = opts.options ?? {};
    this.#onLog = opts.onLog;
    this.#coherentFw = opts.coherent;
    if (this.driverOptions.skipPrefetch === true) this.options |= ARM_SMMU_OPT_SKIP_PREFETCH;
    if (this.driverOptions.page0RegsOnly === true) this.options |= ARM_SMMU_OPT_PAGE0_REGS_ONLY;
    this.page1 =
      (this.options & ARM_SMMU_OPT_PAGE0_REGS_ONLY) !== 0 || this.mmio.size < ARM_SMMU_REG_MIN_SIZE
        ? this.mmio
        : mmioSubRegion(this.mmio, ARM_SMMU_PAGE1_OFFSET);
    const q = (entDwords: number, prodReg: number, consReg: number): ArmSmmuQueue => ({
      pa: 0,
      order: 0,
      log2: 0,
      entDwords,
      base: 0n,
      prod: 0,
      cons: 0,
      prodReg,
      consReg,
    });
    this.cmdq = q(CMDQ_ENT_DWORDS, ARM_SMMU_CMDQ_PROD, ARM_SMMU_CMDQ_CONS);
    this.evtq = q(EVTQ_ENT_DWORDS, ARM_SMMU_EVTQ_PROD, ARM_SMMU_EVTQ_CONS);
    this.priq = q(PRIQ_ENT_DWORDS, ARM_SMMU_PRIQ_PROD, ARM_SMMU_PRIQ_CONS);
    this.iommuDevice = new IommuDevice(this.name, { fwnode: this.fwnode });
    this.onUnhandledEvent = undefined;
  }

  /** Whether CMD_SYNC completion is polled through its MSI write (`OPT_MSIPOLL`). */
  get msiPoll(): boolean {
    return (this.options & ARM_SMMU_OPT_MSIPOLL) !== 0;
  }

  /** Whether `OPT_CMDQ_FORCE_SYNC` is set. */
  get cmdqForceSync(): boolean {
    return (this.options & ARM_SMMU_OPT_CMDQ_FORCE_SYNC) !== 0;
  }

  /**
   * Log a message (`dev_err` / `dev_warn` / `dev_info`).
   * @param level - severity
   * @param message - text
   */
  logMessage(level: ArmSmmuLogEntry['level'], message: string): void {
    const entry = { level, message };
    if (this.log.length >= 1000) this.log.shift();
    this.log.push(entry);
    this.#onLog?.(entry);
  }

  /**
   * Poll until `cond()` holds, letting the SMMU make progress between polls (Linux
   * `readl_relaxed_poll_timeout` and the CMD_SYNC poll loops). From test or top-level code the
   * scheduler steps between polls; from inside a scheduler task nothing else can run, so the
   * condition is checked once.
   * @param cond - the condition
   * @returns whether the condition held before the poll budget ran out or the scheduler went idle
   */
  pollUntil(cond: () => boolean): boolean {
    if (cond()) return true;
    if (this.scheduler.inTask) return false;
    try {
      return this.scheduler.runUntil(cond, { maxSteps: this.driverOptions.pollSteps ?? 100_000 });
    } catch {
      return false;
    }
  }

  /**
   * Write a register and poll its ACK register until it reads back the value
   * (`arm_smmu_write_reg_sync`).
   * @param value - the value
   * @param reg - register offset (CR0 or IRQ_CTRL)
   * @param ackReg - the ACK register offset
   * @throws `ErrnoError` `ETIMEDOUT` if the ACK never matches
   */
  writeRegSync(value: number, reg: number, ackReg: number): void {
    this.mmio.writel(reg, value >>> 0);
    if (!this.pollUntil(() => this.mmio.readl(ackReg) >>> 0 === value >>> 0))
      throw new ErrnoError('ETIMEDOUT', `register 0x${reg.toString(16)}: no ACK of 0x${value.toString(16)}`);
  }

  /**
   * Update GBPA with the UPDATE handshake (`arm_smmu_update_gbpa`).
   * @param set - bits to set
   * @param clr - bits to clear
   * @throws `ErrnoError` `ETIMEDOUT` ("GBPA not responding to update")
   */
  updateGbpa(set: number, clr: number): void {
    const idle = (): boolean => (this.mmio.readl(ARM_SMMU_GBPA) & GBPA_UPDATE) === 0;
    if (!this.pollUntil(idle)) throw new ErrnoError('ETIMEDOUT', 'GBPA not responding to update');
    const reg = ((this.mmio.readl(ARM_SMMU_GBPA) & ~clr) | set) >>> 0;
    this.mmio.writel(ARM_SMMU_GBPA, (reg | GBPA_UPDATE) >>> 0);
    if (!this.pollUntil(idle)) {
      this.logMessage('err', 'GBPA not responding to update');
      throw new ErrnoError('ETIMEDOUT', 'GBPA not responding to update');
    }
  }

  // ---- probe ---------------------------------------------------------------------------------------

  /**
   * Read the ID registers and derive features, widths and sizes (`arm_smmu_device_hw_probe`,
   * spec §1.11 and §8.1). Nothing is written to the SMMU.
   * @throws `ErrnoError` `ENXIO` for an SMMU Linux refuses (no stage, unsupported TTF or
   *   endianness, preset tables/queues, command queue too small); `ENODEV` for an MMIO region under
   *   128 KiB without `page0RegsOnly`
   */
  probe(): void {
    const minSize = (this.options & ARM_SMMU_OPT_PAGE0_REGS_ONLY) !== 0 ? 0x10000 : ARM_SMMU_REG_MIN_SIZE;
    if (this.mmio.size < minSize) throw new ErrnoError('ENODEV', 'MMIO region too small');
    let features = 0;
    let options = this.options & (ARM_SMMU_OPT_SKIP_PREFETCH | ARM_SMMU_OPT_PAGE0_REGS_ONLY);
    const reg0 = this.mmio.readl(ARM_SMMU_IDR0);
    const f0 = (mask: number): number => (reg0 & mask) >>> ctz(mask);

    if (f0(IDR0_ST_LVL) === IDR0_ST_LVL_2LVL) features |= ARM_SMMU_FEAT_2_LVL_STRTAB;
    if ((reg0 & IDR0_CD2L) !== 0) features |= ARM_SMMU_FEAT_2_LVL_CDTAB;
    switch (f0(IDR0_TTENDIAN)) {
      case IDR0_TTENDIAN_MIXED:
        features |= ARM_SMMU_FEAT_TT_LE | ARM_SMMU_FEAT_TT_BE;
        break;
      case IDR0_TTENDIAN_LE:
        features |= ARM_SMMU_FEAT_TT_LE;
        break;
      case IDR0_TTENDIAN_BE:
        features |= ARM_SMMU_FEAT_TT_BE;
        break;
      default:
        throw new ErrnoError('ENXIO', 'unknown/unsupported TT endianness!');
    }
    // This model's CPU is little-endian.
    if ((features & ARM_SMMU_FEAT_TT_LE) === 0)
      throw new ErrnoError('ENXIO', 'unknown/unsupported TT endianness!');
    if ((reg0 & IDR0_PRI) !== 0) features |= ARM_SMMU_FEAT_PRI;
    if ((reg0 & IDR0_ATS) !== 0) features |= ARM_SMMU_FEAT_ATS;
    if ((reg0 & IDR0_SEV) !== 0) features |= ARM_SMMU_FEAT_SEV;
    if ((reg0 & IDR0_MSI) !== 0) features |= ARM_SMMU_FEAT_MSI;
    if ((reg0 & IDR0_HYP) !== 0) {
      features |= ARM_SMMU_FEAT_HYP;
      if (this.driverOptions.e2h === true) features |= ARM_SMMU_FEAT_E2H;
    }
    if ((reg0 & IDR0_BTM) !== 0) features |= ARM_SMMU_FEAT_BTM;

    // HTTU: the IORT override wins over IDR0 (arm_smmu_get_httu).
    const override = this.driverOptions.httuOverride;
    const httu =
      override !== undefined
        ? override === 'hahd'
          ? IDR0_HTTU_ACCESS_DIRTY
          : override === 'ha'
            ? IDR0_HTTU_ACCESS
            : 0
        : f0(IDR0_HTTU);
    if (httu === IDR0_HTTU_ACCESS_DIRTY || httu === 3) features |= ARM_SMMU_FEAT_HA | ARM_SMMU_FEAT_HD;
    else if (httu === IDR0_HTTU_ACCESS) features |= ARM_SMMU_FEAT_HA;

    // Coherency: firmware wins; a mismatch is only reported.
    const cohacc = (reg0 & IDR0_COHACC) !== 0;
    const coherent = this.#coherentFw ?? cohacc;
    if (coherent) features |= ARM_SMMU_FEAT_COHERENCY;
    if (this.#coherentFw !== undefined && this.#coherentFw !== cohacc)
      this.logMessage('warn', `IDR0.COHACC overridden by FW configuration (${coherent ? 'true' : 'false'})`);
    if ((features & ARM_SMMU_FEAT_MSI) !== 0 && coherent && this.driverOptions.msipoll !== false)
      options |= ARM_SMMU_OPT_MSIPOLL;

    switch (f0(IDR0_STALL_MODEL)) {
      case IDR0_STALL_MODEL_FORCE:
        features |= ARM_SMMU_FEAT_STALL_FORCE | ARM_SMMU_FEAT_STALLS;
        break;
      case IDR0_STALL_MODEL_STALL:
        features |= ARM_SMMU_FEAT_STALLS;
        break;
    }
    if ((reg0 & IDR0_S1P) !== 0) features |= ARM_SMMU_FEAT_TRANS_S1;
    if ((reg0 & IDR0_S2P) !== 0) features |= ARM_SMMU_FEAT_TRANS_S2;
    if ((reg0 & (IDR0_S1P | IDR0_S2P)) === 0) throw new ErrnoError('ENXIO', 'no translation support!');

    let ias: number;
    switch (f0(IDR0_TTF)) {
      case IDR0_TTF_AARCH32_64:
        ias = 40;
        break;
      case IDR0_TTF_AARCH64:
        ias = 0;
        break;
      default:
        throw new ErrnoError('ENXIO', 'AArch64 table format not supported!');
    }
    const asidBits = (reg0 & IDR0_ASID16) !== 0 ? 16 : 8;
    const vmidBits = (reg0 & IDR0_VMID16) !== 0 ? 16 : 8;

    // IDR1
    const reg1 = this.mmio.readl(ARM_SMMU_IDR1);
    if ((reg1 & (IDR1_TABLES_PRESET | IDR1_QUEUES_PRESET | IDR1_REL)) !== 0)
      throw new ErrnoError('ENXIO', 'embedded implementation not supported');
    if ((reg1 & IDR1_ATTR_TYPES_OVR) !== 0) features |= ARM_SMMU_FEAT_ATTR_TYPES_OVR;
    const cap = this.driverOptions.maxQueueLog2 ?? Number.POSITIVE_INFINITY;
    const cmdqLog2 = Math.min(CMDQ_MAX_SZ_SHIFT, (reg1 & IDR1_CMDQS) >>> 21, cap);
    // One full batch plus its SYNC must fit (CMDQ_BATCH_ENTRIES = 64 = 2^6).
    if (cmdqLog2 <= 6) throw new ErrnoError('ENXIO', 'command queue size <= 64 entries not supported');
    const evtqLog2 = Math.min(EVTQ_MAX_SZ_SHIFT, (reg1 & IDR1_EVTQS) >>> 16, cap);
    const priqLog2 = Math.min(PRIQ_MAX_SZ_SHIFT, (reg1 & IDR1_PRIQS) >>> 11, cap);
    const ssidBits = (reg1 & IDR1_SSIDSIZE) >>> 6;
    const sidBits = reg1 & IDR1_SIDSIZE;
    // A two-level stream table is pointless when one L2 table covers every StreamID.
    if (sidBits <= STRTAB_SPLIT) features &= ~ARM_SMMU_FEAT_2_LVL_STRTAB;

    // IDR3
    const reg3 = this.mmio.readl(ARM_SMMU_IDR3);
    if ((reg3 & IDR3_RIL) !== 0) features |= ARM_SMMU_FEAT_RANGE_INV;
    if ((reg3 & IDR3_FWB) !== 0) features |= ARM_SMMU_FEAT_S2FWB;
    if ((reg3 & IDR3_BBML) >>> 11 === IDR3_BBML2) features |= ARM_SMMU_FEAT_BBML2;

    // IDR5
    const reg5 = this.mmio.readl(ARM_SMMU_IDR5);
    const maxStalls = (reg5 & IDR5_STALL_MAX) >>> 16;
    let pgsize = 0n;
    if ((reg5 & IDR5_GRAN64K) !== 0) pgsize |= (1n << 16n) | (1n << 29n);
    if ((reg5 & IDR5_GRAN16K) !== 0) pgsize |= (1n << 14n) | (1n << 25n);
    if ((reg5 & IDR5_GRAN4K) !== 0) pgsize |= (1n << 12n) | (1n << 21n) | (1n << 30n);
    if ((reg5 & IDR5_VAX) >>> 10 === IDR5_VAX_52_BIT) features |= ARM_SMMU_FEAT_VAX;
    let oas = IDR5_OAS_BITS[reg5 & IDR5_OAS];
    if (oas === undefined) {
      this.logMessage('info', 'unknown output address size. Truncating to 48-bit');
      oas = 48;
    }
    if (oas === 52) pgsize |= 1n << 42n;
    ias = Math.max(ias, oas);

    // IIDR errata (arm_smmu_device_iidr_probe).
    const iidr = this.mmio.readl(ARM_SMMU_IIDR);
    if ((features & ARM_SMMU_FEAT_TRANS_S1) !== 0 && (features & ARM_SMMU_FEAT_TRANS_S2) !== 0)
      features |= ARM_SMMU_FEAT_NESTING;
    if ((iidr & IIDR_IMPLEMENTER) === IIDR_IMPLEMENTER_ARM) {
      const product = (iidr & IIDR_PRODUCTID) >>> 20;
      const variant = (iidr & IIDR_VARIANT) >>> 16;
      const revision = (iidr & IIDR_REVISION) >>> 12;
      if (product === IIDR_PRODUCTID_ARM_MMU_600) {
        if (variant === 0 && revision <= 2) features &= ~ARM_SMMU_FEAT_SEV;
        if (variant < 2) features &= ~ARM_SMMU_FEAT_NESTING;
      } else if (product === IIDR_PRODUCTID_ARM_MMU_700) {
        features &= ~(ARM_SMMU_FEAT_BTM | ARM_SMMU_FEAT_NESTING);
        options |= ARM_SMMU_OPT_CMDQ_FORCE_SYNC;
      }
    }

    // Commit (nothing above has side effects, so a refused SMMU leaves the object untouched).
    this.features = features >>> 0;
    this.options = options;
    this.asidBits = asidBits;
    this.vmidBits = vmidBits;
    this.sidBits = sidBits;
    this.ssidBits = ssidBits;
    this.ias = ias;
    this.oas = oas;
    this.pgsizeBitmap = pgsize;
    this.maxStalls = maxStalls;
    this.iidr = iidr;
    this.cmdq.log2 = cmdqLog2;
    this.evtq.log2 = evtqLog2;
    this.priq.log2 = priqLog2;
    this.iommuDevice.maxPasids = ssidBits > 0 ? 2 ** ssidBits : 0;
    this.probed = true;
    this.logMessage(
      'info',
      `ias ${ias}-bit, oas ${oas}-bit (features 0x${this.features.toString(16).padStart(8, '0')})`,
    );
  }

  // ---- structures ----------------------------------------------------------------------------------

  /** Allocate zeroed pages, or `undefined` when memory is short. */
  #alloc(order: number): number | undefined {
    try {
      return this.memory.allocPages(order, { zero: true });
    } catch (e) {
      if (e instanceof ErrnoError && e.errno === ERRNO.ENOMEM) return undefined;
      throw e;
    }
  }

  /** `arm_smmu_init_one_queue`: halve the queue until its memory can be allocated. */
  #initQueue(q: ArmSmmuQueue, name: string): void {
    let log2 = q.log2;
    for (;;) {
      const bytes = (q.entDwords * 8) << log2;
      const order = Math.max(0, Math.ceil(Math.log2(bytes / 4096)));
      const pa = this.#alloc(order);
      if (pa !== undefined) {
        if (log2 < q.log2) this.logMessage('info', `allocated ${2 ** log2} entries for ${name}`);
        q.pa = pa;
        q.order = order;
        q.log2 = log2;
        q.base = Q_BASE_RWA | (BigInt(pa) & Q_BASE_ADDR_MASK) | BigInt(log2);
        q.prod = 0;
        q.cons = 0;
        return;
      }
      if (bytes <= 4096)
        throw new ErrnoError(
          'ENOMEM',
          `failed to allocate queue (0x${bytes.toString(16)} bytes) for ${name}`,
        );
      log2--;
    }
  }

  /** Fill `n` STEs at `pa` with abort STEs (`arm_smmu_init_initial_stes`). */
  #initInitialStes(pa: number, n: number): void {
    for (let i = 0; i < n; i++) {
      const ste = pa + i * STRTAB_STE_SIZE;
      this.memory.write64(ste, ABORT_STE_DW0);
      for (let w = 1; w < 8; w++) this.memory.write64(ste + w * 8, 0n);
    }
  }

  /**
   * Allocate queues and the stream table (`arm_smmu_init_structures`); called by the first
   * {@link ArmSmmuDevice.reset}.
   * @throws `ErrnoError` `ENOMEM` (everything allocated so far is freed); `EINVAL` before probe
   */
  initStructures(): void {
    if (!this.probed) throw new ErrnoError('EINVAL', 'initStructures before probe');
    const undo: (() => void)[] = [];
    try {
      this.#initQueue(this.cmdq, 'cmdq');
      undo.push(() => this.memory.freePages(this.cmdq.pa, this.cmdq.order));
      this.#initQueue(this.evtq, 'evtq');
      undo.push(() => this.memory.freePages(this.evtq.pa, this.evtq.order));
      if ((this.features & ARM_SMMU_FEAT_PRI) !== 0) {
        this.#initQueue(this.priq, 'priq');
        undo.push(() => this.memory.freePages(this.priq.pa, this.priq.order));
      }
      this.strtab = this.#initStrtab();
    } catch (e) {
      for (const u of undo.reverse()) u();
      throw e;
    }
  }

  #initStrtab(): ArmSmmuStrtab {
    if ((this.features & ARM_SMMU_FEAT_2_LVL_STRTAB) !== 0) {
      let numL1Ents = 2 ** (this.sidBits - STRTAB_SPLIT);
      if (numL1Ents > STRTAB_MAX_L1_ENTRIES) {
        numL1Ents = STRTAB_MAX_L1_ENTRIES;
        this.logMessage(
          'warn',
          `2-level strtab only covers ${Math.log2(numL1Ents) + STRTAB_SPLIT}/${this.sidBits} bits of SID`,
        );
      }
      const order = Math.max(0, Math.ceil(Math.log2((numL1Ents * STRTAB_L1_DESC_SIZE) / 4096)));
      const l1Pa = this.#alloc(order);
      if (l1Pa === undefined) throw new ErrnoError('ENOMEM', 'failed to allocate l1 stream table');
      return { kind: '2lvl', l1Pa, order, numL1Ents, l2: new Map() };
    }
    const numEnts = 2 ** this.sidBits;
    const order = Math.max(0, Math.ceil(Math.log2((numEnts * STRTAB_STE_SIZE) / 4096)));
    const pa = this.#alloc(order);
    if (pa === undefined) throw new ErrnoError('ENOMEM', 'failed to allocate linear stream table');
    this.#initInitialStes(pa, numEnts);
    return { kind: 'linear', pa, order, numEnts };
  }

  /**
   * Whether `sid` is covered by the stream table (`arm_smmu_sid_in_range`).
   * @param sid - StreamID
   * @returns true when in range
   */
  sidInRange(sid: number): boolean {
    const t = this.strtab;
    if (t === null || !Number.isInteger(sid) || sid < 0) return false;
    if (t.kind === '2lvl') return sid >>> STRTAB_SPLIT < t.numL1Ents;
    return sid < t.numEnts;
  }

  /**
   * Allocate the level-2 stream table covering `sid` if it is missing (`arm_smmu_init_l2_strtab`):
   * 256 abort STEs, then the L1 descriptor (SPAN = 9, L2Ptr) in one 64-bit store. No CFGI is
   * issued. A no-op for a linear table or an already present L2 table.
   * @param sid - StreamID
   * @throws `ErrnoError` `ERANGE` if `sid` is out of range; `ENOMEM` if the L2 table cannot
   *   be allocated (nothing changed)
   */
  initL2Strtab(sid: number): void {
    const t = this.strtab;
    if (t === null || !this.sidInRange(sid))
      throw new ErrnoError('ERANGE', `StreamID 0x${sid.toString(16)} out of range`);
    if (t.kind === 'linear') return;
    const idx = sid >>> STRTAB_SPLIT;
    if (t.l2.has(idx)) return;
    const numSte = 1 << STRTAB_SPLIT;
    const order = Math.max(0, Math.ceil(Math.log2((numSte * STRTAB_STE_SIZE) / 4096)));
    const pa = this.#alloc(order);
    if (pa === undefined) {
      this.logMessage('err', `failed to allocate l2 stream table for SID ${sid}`);
      throw new ErrnoError('ENOMEM', `failed to allocate l2 stream table for SID ${sid}`);
    }
    this.#initInitialStes(pa, numSte);
    t.l2.set(idx, pa);
    const desc = (BigInt(pa) & STRTAB_L1_DESC_L2PTR_MASK) | BigInt(STRTAB_SPLIT + 1);
    this.memory.write64(t.l1Pa + idx * STRTAB_L1_DESC_SIZE, desc);
  }

  /**
   * Physical address of the STE of `sid` (`arm_smmu_get_step_for_sid`).
   * @param sid - StreamID
   * @returns the STE's physical address
   * @throws `ErrnoError` `ERANGE` if out of range; `ENOENT` if its L2 table is not allocated
   */
  steAddress(sid: number): number {
    const t = this.strtab;
    if (t === null || !this.sidInRange(sid))
      throw new ErrnoError('ERANGE', `StreamID 0x${sid.toString(16)} out of range`);
    if (t.kind === 'linear') return t.pa + sid * STRTAB_STE_SIZE;
    const l2 = t.l2.get(sid >>> STRTAB_SPLIT);
    if (l2 === undefined)
      throw new ErrnoError('ENOENT', `no L2 stream table for StreamID 0x${sid.toString(16)}`);
    return l2 + (sid & ((1 << STRTAB_SPLIT) - 1)) * STRTAB_STE_SIZE;
  }

  /**
   * Install bypass STEs for firmware reserved-memory StreamIDs (IORT RMR,
   * `arm_smmu_rmr_install_bypass_ste`): allocate L2 tables as needed, write V=1 Config=bypass.
   * Call between {@link ArmSmmuDevice.initStructures} and enabling (reset does it for `rmrSids`).
   * @param sids - StreamIDs
   */
  installBypassStes(sids: readonly number[]): void {
    for (const sid of sids) {
      if (!this.sidInRange(sid)) {
        this.logMessage('err', `RMR SID(0x${sid.toString(16)}) bypass failed`);
        continue;
      }
      this.initL2Strtab(sid);
      const pa = this.steAddress(sid);
      // V=1, Config=bypass (4 in DW0 3:1), SHCFG incoming (DW1 45:44 = 1) as Linux's bypass STE.
      this.memory.write64(pa, STRTAB_STE_0_V | (4n << 1n));
      this.memory.write64(pa + 8, 1n << 44n);
    }
  }

  // ---- reset ---------------------------------------------------------------------------------------

  /**
   * Program and enable the SMMU (`arm_smmu_device_reset`, spec §1.12); allocates the structures
   * first if needed, requests interrupts once, allocates the IOPF queue.
   * @param rmrSids - StreamIDs of firmware reserved-memory nodes that need bypass STEs
   * @throws `ErrnoError` `ETIMEDOUT` when an ACK handshake fails; `ENOMEM`; `EINVAL` before probe
   */
  reset(rmrSids: readonly number[] = []): void {
    if (this.strtab === null) {
      this.initStructures();
      this.installBypassStes(rmrSids);
    }
    const strtab = this.strtab as ArmSmmuStrtab;
    const mmio = this.mmio;

    // 1–2: disable, aborting incoming traffic meanwhile if it was enabled.
    if ((mmio.readl(ARM_SMMU_CR0) & CR0_SMMUEN) !== 0) {
      this.logMessage('warn', 'SMMU currently enabled! Resetting...');
      this.updateGbpa(GBPA_ABORT, 0);
    }
    this.writeRegSync(0, ARM_SMMU_CR0, ARM_SMMU_CR0ACK);

    // 3: table/queue attributes, CR2.
    mmio.writel(ARM_SMMU_CR1, CR1_LINUX_VALUE);
    let cr2 = CR2_RECINVSID;
    if (!this.btmInUse) cr2 |= CR2_PTM;
    if ((this.features & ARM_SMMU_FEAT_E2H) !== 0) cr2 |= CR2_E2H;
    mmio.writel(ARM_SMMU_CR2, cr2);

    // 4: stream table.
    if (strtab.kind === 'linear') {
      mmio.writeq(ARM_SMMU_STRTAB_BASE, STRTAB_BASE_RA | (BigInt(strtab.pa) & STRTAB_BASE_ADDR_MASK));
      mmio.writel(ARM_SMMU_STRTAB_BASE_CFG, (STRTAB_BASE_CFG_FMT_LINEAR << 16) | this.sidBits);
    } else {
      mmio.writeq(ARM_SMMU_STRTAB_BASE, STRTAB_BASE_RA | (BigInt(strtab.l1Pa) & STRTAB_BASE_ADDR_MASK));
      const log2size = Math.log2(strtab.numL1Ents) + STRTAB_SPLIT;
      mmio.writel(
        ARM_SMMU_STRTAB_BASE_CFG,
        (STRTAB_BASE_CFG_FMT_2LVL << 16) | (STRTAB_SPLIT << 6) | log2size,
      );
    }

    // 5: command queue.
    this.cmdq.prod = 0;
    this.cmdq.cons = 0;
    mmio.writeq(ARM_SMMU_CMDQ_BASE, this.cmdq.base);
    mmio.writel(ARM_SMMU_CMDQ_PROD, 0);
    mmio.writel(ARM_SMMU_CMDQ_CONS, 0);
    let enables = CR0_CMDQEN;
    this.writeRegSync(enables, ARM_SMMU_CR0, ARM_SMMU_CR0ACK);

    // 6: invalidate any cached configuration and TLB entries.
    cmdqIssueCmdWithSync(this, { op: 'CFGI_ALL' });
    if ((this.features & ARM_SMMU_FEAT_HYP) !== 0) cmdqIssueCmdWithSync(this, { op: 'TLBI_EL2_ALL' });
    cmdqIssueCmdWithSync(this, { op: 'TLBI_NSNH_ALL' });

    // 7: event queue.
    this.evtq.prod = 0;
    this.evtq.cons = 0;
    mmio.writeq(ARM_SMMU_EVTQ_BASE, this.evtq.base);
    this.page1.writel(ARM_SMMU_EVTQ_PROD, 0);
    this.page1.writel(ARM_SMMU_EVTQ_CONS, 0);
    enables |= CR0_EVTQEN;
    this.writeRegSync(enables, ARM_SMMU_CR0, ARM_SMMU_CR0ACK);

    // 8: PRI queue.
    if ((this.features & ARM_SMMU_FEAT_PRI) !== 0) {
      this.priq.prod = 0;
      this.priq.cons = 0;
      mmio.writeq(ARM_SMMU_PRIQ_BASE, this.priq.base);
      this.page1.writel(ARM_SMMU_PRIQ_PROD, 0);
      this.page1.writel(ARM_SMMU_PRIQ_CONS, 0);
      enables |= CR0_PRIQEN;
      this.writeRegSync(enables, ARM_SMMU_CR0, ARM_SMMU_CR0ACK);
    }

    // 9: ATS check.
    if ((this.features & ARM_SMMU_FEAT_ATS) !== 0) {
      enables |= CR0_ATSCHK;
      this.writeRegSync(enables, ARM_SMMU_CR0, ARM_SMMU_CR0ACK);
    }

    // 10: interrupts.
    this.#setupIrqs();

    // 11: enable translation.
    enables |= CR0_SMMUEN;
    this.writeRegSync(enables, ARM_SMMU_CR0, ARM_SMMU_CR0ACK);

    if (this.iopfQueue === null && (this.features & (ARM_SMMU_FEAT_STALLS | ARM_SMMU_FEAT_PRI)) !== 0)
      this.iopfQueue = iopfQueueAlloc(this.name, { scheduler: this.scheduler });
  }

  /** `arm_smmu_setup_irqs` + `arm_smmu_setup_unique_irqs`. */
  #setupIrqs(): void {
    // Disable interrupts while the vectors are set up.
    this.writeRegSync(0, ARM_SMMU_IRQ_CTRL, ARM_SMMU_IRQ_CTRLACK);
    // No MSI domain in this model: clear the MSI doorbells so the SMMU uses its wired lines.
    this.mmio.writeq(ARM_SMMU_GERROR_IRQ_CFG0, 0n);
    this.mmio.writeq(ARM_SMMU_EVTQ_IRQ_CFG0, 0n);
    if ((this.features & ARM_SMMU_FEAT_PRI) !== 0) this.mmio.writeq(ARM_SMMU_PRIQ_IRQ_CFG0, 0n);
    if (!this.#irqsRequested) {
      this.#irqsRequested = true;
      const { evtq, priq, gerror, combined } = this.irqs;
      if (combined !== undefined) {
        combined.requestIrq(
          () => {
            armSmmuGerrorHandler(this);
            return IrqReturn.WAKE_THREAD;
          },
          {
            name: 'arm-smmu-v3-combined-irq',
            threadFn: () => {
              armSmmuEvtqThread(this);
              if ((this.features & ARM_SMMU_FEAT_PRI) !== 0) armSmmuPriqThread(this);
              return IrqReturn.HANDLED;
            },
          },
        );
      } else {
        evtq?.requestIrq(null, { name: 'arm-smmu-v3-evtq', threadFn: () => armSmmuEvtqThread(this) });
        gerror?.requestIrq(() => armSmmuGerrorHandler(this), { name: 'arm-smmu-v3-gerror' });
        if ((this.features & ARM_SMMU_FEAT_PRI) !== 0)
          priq?.requestIrq(null, { name: 'arm-smmu-v3-priq', threadFn: () => armSmmuPriqThread(this) });
      }
    }
    let irqen = IRQ_CTRL_EVTQ_IRQEN | IRQ_CTRL_GERROR_IRQEN;
    if ((this.features & ARM_SMMU_FEAT_PRI) !== 0) irqen |= IRQ_CTRL_PRIQ_IRQEN;
    this.writeRegSync(irqen, ARM_SMMU_IRQ_CTRL, ARM_SMMU_IRQ_CTRLACK);
  }

  /**
   * Disable the SMMU (`arm_smmu_device_disable` as in shutdown/remove): CR0 = 0, and GBPA.ABORT.
   * @throws `ErrnoError` `ETIMEDOUT`
   */
  disable(): void {
    this.writeRegSync(0, ARM_SMMU_CR0, ARM_SMMU_CR0ACK);
    this.updateGbpa(GBPA_ABORT, 0);
  }

  // ---- registration --------------------------------------------------------------------------------

  /**
   * Register with the IOMMU core (`iommu_device_register(&smmu->iommu, &arm_smmu_ops, dev)`).
   * @param ops - the `IommuOps` (`armSmmuOps(smmu)` builds the driver's)
   * @throws `ErrnoError` `EINVAL` if the SMMU has not been reset; errors of
   *   `iommuDeviceRegister`
   */
  register(ops: IommuOps): void {
    if (this.strtab === null) throw new ErrnoError('EINVAL', 'register before reset');
    this.iommu.iommuDeviceRegister(this.iommuDevice, ops, this.fwnode);
    this.registered = true;
  }

  /** Unregister from the IOMMU core (`iommu_device_unregister`). */
  unregister(): void {
    if (!this.registered) return;
    this.iommu.iommuDeviceUnregister(this.iommuDevice);
    this.registered = false;
  }

  /**
   * Run the GERROR handler from a poll loop when no GERROR (or combined) line is wired, so that a
   * command error is still recovered while the driver waits for a CMD_SYNC.
   */
  pollGerror(): void {
    if (this.irqs.gerror === undefined && this.irqs.combined === undefined) armSmmuGerrorHandler(this);
  }

  /**
   * Drain the event and PRI queues and handle global errors without interrupts (what the
   * interrupt threads do), for SMMUs wired with no lines or for tests.
   */
  pollQueues(): void {
    armSmmuGerrorHandler(this);
    armSmmuEvtqThread(this);
    if ((this.features & ARM_SMMU_FEAT_PRI) !== 0) armSmmuPriqThread(this);
  }

  /**
   * `arm_smmu_page_response`: answer a page request or a stalled transaction, see
   * {@link armSmmuPageResponse}.
   * @param dev - the device
   * @param evt - the fault being answered
   * @param msg - the response
   */
  pageResponse(dev: Device, evt: IommuFault, msg: IommuPageResponse): void {
    armSmmuPageResponse(this, dev, evt, msg);
  }
}

/** Count trailing zero bits of a non-zero 32-bit mask. */
function ctz(mask: number): number {
  return 31 - Math.clz32(mask & -mask);
}
