/**
 * `SmmuV3Model`: an Arm SMMUv3 as the devices and the driver see it. Devices reach it through
 * {@link IommuHw} (DMA, ATS, PRI); the driver through its {@link MmioRegion} (pages 0 and 1),
 * structures in `PhysicalMemory`, MSI writes and interrupt lines.
 *
 * @remarks
 * Registers follow digest §1 (reset values of QEMU's model, §1.13; handshakes complete at once:
 * CR0ACK / IRQ_CTRLACK mirror the written value and GBPA.UPDATE reads 0 after the write). Page 1
 * is an alias of page 0 (as in QEMU), so the page-1 registers also answer at their page-0 offsets.
 * Commands run on base's `Scheduler` (see {@link SmmuCommandQueue}); events and PRI records are
 * written to memory at once. Translation is {@link SmmuTranslator}'s; configuration comes through
 * the configuration cache so only CFGI commands make STE / CD changes visible.
 */

import type { IrqLine, Scheduler } from '@iommu-ts/base';
import {
  type AtsCompletion,
  type AtsInvalidateCompletion,
  type AtsTranslationRequest,
  accessPhysicalMemory,
  atsEncodeRange,
  atsRangeFromLog2Pages,
  type DmaFault,
  type DmaFaultReason,
  type DmaOutcome,
  type DmaRequest,
  type EndpointPort,
  EndpointPortTable,
  type IommuHw,
  type MmioRegion,
  type PageRequestMessage,
  PendingDma,
  PRG_RESPONSE,
  type PrgResponseCode,
} from '@iommu-ts/iommu-core';
import type { PhysicalMemory, TlbBroadcast, TlbiOp } from '@iommu-ts/mm';
import {
  type SmmuCmdAtcInv,
  type SmmuCmdPriResp,
  type SmmuCmdResume,
  type SmmuCmdStallTerm,
  type SmmuCmdSync,
  SmmuCommandQueue,
} from './cmdq.js';
import { SmmuConfigCache } from './config-cache.js';
import { type SmmuEventType, smmuEvent } from './events.js';
import { SmmuEventQueue } from './evtq.js';
import { SmmuPriQueue } from './priq.js';
import {
  CMD_PRI_RESP,
  CMD_RESUME_RESP,
  CMD_SYNC_CS,
  CR0_ATSCHK,
  CR0_CMDQEN,
  CR0_EVTQEN,
  CR0_PRIQEN,
  CR0_SMMUEN,
  CR0_WRITABLE,
  CR2_E2H,
  CR2_PTM,
  GBPA_ABORT,
  GBPA_RESET,
  GBPA_UPDATE,
  GERROR_CMDQ_ERR,
  GERROR_ERR_MASK,
  GERROR_EVTQ_ABT_ERR,
  GERROR_MSI_CMDQ_ABT_ERR,
  GERROR_MSI_EVTQ_ABT_ERR,
  GERROR_MSI_GERROR_ABT_ERR,
  GERROR_MSI_PRIQ_ABT_ERR,
  GERROR_PRIQ_ABT_ERR,
  IRQ_CFG0_ADDR_MASK,
  IRQ_CTRL_EVTQ_IRQEN,
  IRQ_CTRL_GERROR_IRQEN,
  IRQ_CTRL_PRIQ_IRQEN,
  SMMU_AGBPA,
  SMMU_AIDR,
  SMMU_CMDQ_BASE,
  SMMU_CMDQ_CONS,
  SMMU_CMDQ_PROD,
  SMMU_CR0,
  SMMU_CR0ACK,
  SMMU_CR1,
  SMMU_CR2,
  SMMU_EVTQ_BASE,
  SMMU_EVTQ_IRQ_CFG0,
  SMMU_EVTQ_IRQ_CFG1,
  SMMU_EVTQ_IRQ_CFG2,
  SMMU_GBPA,
  SMMU_GERROR,
  SMMU_GERROR_IRQ_CFG0,
  SMMU_GERROR_IRQ_CFG1,
  SMMU_GERROR_IRQ_CFG2,
  SMMU_GERRORN,
  SMMU_IDR0,
  SMMU_IDR1,
  SMMU_IDR2,
  SMMU_IDR3,
  SMMU_IDR4,
  SMMU_IDR5,
  SMMU_IIDR,
  SMMU_IRQ_CTRL,
  SMMU_IRQ_CTRLACK,
  SMMU_MMIO_SIZE,
  SMMU_PRIQ_BASE,
  SMMU_PRIQ_IRQ_CFG0,
  SMMU_PRIQ_IRQ_CFG1,
  SMMU_PRIQ_IRQ_CFG2,
  SMMU_STATUSR,
  SMMU_STRTAB_BASE,
  SMMU_STRTAB_BASE_CFG,
} from './regs.js';
import { resolveSmmuHwConfig, type SmmuHwConfig, type SmmuIdrs, smmuIdrs } from './smmu-config.js';
import { type StreamTableConfig, streamTableConfig } from './stream-table.js';
import { SmmuTlb, TLB_REGIME_EL2, TLB_REGIME_NS_EL1 } from './tlb.js';
import { type SmmuTransaction, SmmuTranslator } from './translate.js';

/** Interrupt lines of an SMMU (wired interrupts; absent lines are simply not raised). */
export interface SmmuIrqLines {
  /** Event queue interrupt. */
  readonly evtq?: IrqLine;
  /** PRI queue interrupt. */
  readonly priq?: IrqLine;
  /** Global error interrupt. */
  readonly gerror?: IrqLine;
  /** CMD_SYNC completion interrupt (CS = IRQ with MSIAddress 0). */
  readonly cmdqSync?: IrqLine;
}

/** Constructor options of {@link SmmuV3Model}. */
export interface SmmuV3ModelOptions {
  /** RAM holding the stream table, CDs, page tables and queues (and reached by DMA). */
  readonly memory: PhysicalMemory;
  /** Where commands run and interrupts are delivered. */
  readonly scheduler: Scheduler;
  /** Parameters; missing ones take {@link SMMU_HW_CONFIG_DEFAULTS}. */
  readonly config?: Partial<SmmuHwConfig>;
  /** Name for traces; default `'smmuv3'`. */
  readonly name?: string;
  /** Wired interrupt lines. */
  readonly irqs?: SmmuIrqLines;
  /**
   * Delivery of MSI writes (an interrupt controller's doorbell): return `true` when the write
   * was consumed. Unset or `false`: the 32-bit data is written to RAM at the address (how Linux's
   * MSI-polled CMD_SYNC observes completion).
   */
  readonly msiWrite?: (addr: bigint, data: number) => boolean;
  /**
   * The machine's broadcast of the PEs' inner-shareable TLB maintenance (`Machine.tlb`). When the
   * configuration has IDR0.BTM the model subscribes at construction and applies every operation to
   * its TLB at once ({@link SmmuV3Model.onTlbBroadcast}); without BTM it is ignored. Unsubscribe with
   * {@link SmmuV3Model.detachBroadcast}.
   */
  readonly tlbBroadcast?: TlbBroadcast;
}

/** One MSI the SMMU performed. */
export interface SmmuMsiRecord {
  /** Which source: `'evtq'`, `'priq'`, `'gerror'` or `'cmdq-sync'`. */
  readonly source: 'evtq' | 'priq' | 'gerror' | 'cmdq-sync';
  /** Doorbell address. */
  readonly addr: bigint;
  /** Payload. */
  readonly data: number;
}

/** Counters of {@link SmmuV3Model}. */
export interface SmmuV3Stats {
  /** DMA transactions received. */
  dma: number;
  /** Transactions that completed. */
  completed: number;
  /** Transactions terminated (faults and aborts). */
  terminated: number;
  /** Transactions stalled (each stall counts, retries included). */
  stalls: number;
  /** ATS Translation Requests. */
  atsRequests: number;
  /** Page Request Messages. */
  pageRequests: number;
  /** ATS Invalidate Requests sent. */
  atcInvalidations: number;
  /** PRG responses sent by CMD_PRI_RESP. */
  prgResponses: number;
  /** CMD_SYNC completions signalled with SEV. */
  sev: number;
  /** PE broadcast TLB invalidations applied to the TLB (IDR0.BTM with a subscribed broadcast). */
  tlbBroadcasts: number;
}

const M32 = 0xffff_ffffn;
/** PrimeCell / CoreSight ID registers (0xFD0 … 0xFFC), the MMU-600 set QEMU returns. */
const ID_REGS = [0x04, 0, 0, 0, 0x84, 0xb4, 0xf0, 0x10, 0x0d, 0xf0, 0x05, 0xb1];

/** Map an event type to the DMA fault reason an endpoint sees. */
export function smmuEventFaultReason(type: SmmuEventType): DmaFaultReason {
  switch (type) {
    case 'F_TRANSLATION':
      return 'translation';
    case 'F_PERMISSION':
      return 'permission';
    case 'F_ADDR_SIZE':
      return 'address-size';
    case 'F_ACCESS':
      return 'access-flag';
    case 'F_WALK_EABT':
    case 'F_STE_FETCH':
    case 'F_CD_FETCH':
    case 'F_VMS_FETCH':
      return 'bus';
    case 'C_BAD_STREAMID':
    case 'C_BAD_STE':
      return 'bad-requester';
    case 'C_BAD_SUBSTREAMID':
    case 'F_STREAM_DISABLED':
      return 'bad-pasid';
    case 'F_TRANSL_FORBIDDEN':
    case 'F_BAD_ATS_TREQ':
      return 'ats-not-allowed';
    default:
      return 'config';
  }
}

/** A stalled transaction. */
interface Stalled {
  readonly pending: PendingDma;
  readonly sid: number;
  stag: number;
}

/**
 * The SMMUv3 hardware model. See the module documentation.
 *
 * @example
 * ```ts
 * const smmu = new SmmuV3Model({ memory, scheduler });
 * smmu.mmio.writeq(SMMU_STRTAB_BASE, BigInt(strtab));
 * smmu.mmio.writel(SMMU_CR0, CR0_SMMUEN);
 * const out = smmu.dmaAccess(dmaRequest({ requesterId: 1, addr: 0x1000n, size: 4, access: 'read' }));
 * ```
 */
export class SmmuV3Model implements IommuHw {
  /** The model's name (`IommuHw.name`), e.g. `smmuv3.0`. */
  readonly name: string;
  /** Parameters. */
  readonly config: SmmuHwConfig;
  /** ID register values. */
  readonly idrs: SmmuIdrs;
  /** RAM. */
  readonly memory: PhysicalMemory;
  /** Scheduler. */
  readonly scheduler: Scheduler;
  /** Register pages 0 and 1 (0x20000 bytes). */
  readonly mmio: MmioRegion;
  /** Connected endpoints (ATC invalidations, PRG responses). */
  readonly ports = new EndpointPortTable();
  /** The TLB. */
  readonly tlb: SmmuTlb;
  /** The STE / CD configuration cache. */
  readonly configCache: SmmuConfigCache;
  /** The translator. */
  readonly translator: SmmuTranslator;
  /** The command queue. */
  readonly cmdq: SmmuCommandQueue;
  /** The event queue. */
  readonly evtq: SmmuEventQueue;
  /** The PRI queue. */
  readonly priq: SmmuPriQueue;
  /** MSIs performed, oldest first (capped at 1024). */
  readonly msiLog: SmmuMsiRecord[] = [];
  /** Counters. */
  readonly stats: SmmuV3Stats = {
    dma: 0,
    completed: 0,
    terminated: 0,
    stalls: 0,
    atsRequests: 0,
    pageRequests: 0,
    atcInvalidations: 0,
    prgResponses: 0,
    sev: 0,
    tlbBroadcasts: 0,
  };
  /** Called on every CMD_SYNC completion with CS = SEV (a send-event to the PEs). */
  onSev: (() => void) | undefined;

  readonly #irqs: SmmuIrqLines;
  readonly #msiWrite: ((addr: bigint, data: number) => boolean) | undefined;
  /** Unsubscribes from the machine's TLB broadcast (BTM), or `undefined` when not subscribed. */
  #broadcastUnsubscribe: (() => void) | undefined = undefined;
  #cr0 = 0;
  #cr1 = 0;
  #cr2 = 0;
  #gbpa = GBPA_RESET;
  #agbpa = 0;
  #irqCtrl = 0;
  #gerror = 0;
  #gerrorn = 0;
  #strtabBase = 0n;
  #strtabBaseCfg = 0;
  #strtab: StreamTableConfig = streamTableConfig(0n, 0);
  /** IRQ_CFG0 (64-bit), CFG1, CFG2 for gerror, evtq, priq. */
  readonly #irqCfg = {
    gerror: { addr: 0n, data: 0, attr: 0 },
    evtq: { addr: 0n, data: 0, attr: 0 },
    priq: { addr: 0n, data: 0, attr: 0 },
  };
  /** Stalled transactions by StreamID, then STAG. */
  readonly #stalled = new Map<number, Map<number, Stalled>>();
  #stalledCount = 0;
  #nextStag = 0;
  /** Outstanding ATS invalidations: requester ID → ITag bitmap. */
  readonly #atcOutstanding = new Map<number, number>();

  /** @param options - see {@link SmmuV3ModelOptions} */
  constructor(options: SmmuV3ModelOptions) {
    this.config = resolveSmmuHwConfig(options.config);
    this.idrs = smmuIdrs(this.config);
    this.name = options.name ?? 'smmuv3';
    this.memory = options.memory;
    this.scheduler = options.scheduler;
    this.#irqs = options.irqs ?? {};
    this.#msiWrite = options.msiWrite;
    const config = this.config;
    const memory = this.memory;
    this.tlb = SmmuTlb.fromConfig(config);
    this.configCache = new SmmuConfigCache({ memory, config });
    this.translator = new SmmuTranslator({ memory, config, tlb: this.tlb, configSource: this.configCache });
    this.evtq = new SmmuEventQueue(config.evtqLog2, {
      memory,
      signal: () => this.#signal('evtq'),
      abort: () => this.#raiseGerror(GERROR_EVTQ_ABT_ERR),
    });
    this.priq = new SmmuPriQueue(config.pri ? config.priqLog2 : 0, {
      memory,
      signal: () => this.#signal('priq'),
      abort: () => this.#raiseGerror(GERROR_PRIQ_ABT_ERR),
      autoRespond: (msg) => {
        this.ports.sendPrgResponse(msg);
      },
      ppar: (sid) => {
        if ((this.#cr0 & CR0_SMMUEN) === 0) return undefined;
        const r = this.configCache.lookupSte(this.#strtab, sid);
        return r.ok ? r.ste.ppar : undefined;
      },
      abortActive: () => this.#gerrorActive(GERROR_PRIQ_ABT_ERR),
    });
    this.cmdq = new SmmuCommandQueue({
      config,
      memory,
      scheduler: this.scheduler,
      tlb: this.tlb,
      configCache: this.configCache,
      atcInvalidate: (cmd) => this.#atcInvalidate(cmd),
      atcPending: () => this.#atcOutstanding.size > 0,
      atcAbandon: () => this.#atcOutstanding.clear(),
      priResponse: (cmd) => this.#priResponse(cmd),
      resume: (cmd) => this.#resume(cmd),
      stallTerm: (cmd) => this.#stallTerm(cmd),
      syncComplete: (cmd) => this.#syncComplete(cmd),
      raiseGerror: (bit) => this.#raiseGerror(bit),
      cmdqErrorActive: () => this.#gerrorActive(GERROR_CMDQ_ERR),
    });
    this.mmio = {
      size: SMMU_MMIO_SIZE,
      readl: (offset) => this.#readl(offset),
      writel: (offset, value) => this.#writel(offset, value),
      readq: (offset) => this.#readq(offset),
      writeq: (offset, value) => this.#writeq(offset, value),
    };
    this.#updateGlobalState();
    if (config.btm && options.tlbBroadcast !== undefined)
      this.#broadcastUnsubscribe = options.tlbBroadcast.subscribe((op) => this.onTlbBroadcast(op));
  }

  // ---- broadcast TLB maintenance -----------------------------------------------------------------

  /** Whether the model listens to a machine's TLB broadcast (IDR0.BTM and not detached). */
  get broadcastAttached(): boolean {
    return this.#broadcastUnsubscribe !== undefined;
  }

  /**
   * Stop listening to the machine's TLB broadcast (the model is being torn down). Idempotent;
   * later broadcasts leave the TLB alone.
   */
  detachBroadcast(): void {
    const u = this.#broadcastUnsubscribe;
    this.#broadcastUnsubscribe = undefined;
    u?.();
  }

  /**
   * Receive one PE broadcast TLB invalidation (what a DVM TLBI message does to an SMMU with
   * IDR0.BTM). The subscription made for {@link SmmuV3ModelOptions.tlbBroadcast} calls this; tests
   * may call it directly.
   *
   * @remarks
   * The PEs' EL1 TLBIs stand for the Non-secure EL1 regime with VMID 0, or, when CR2.E2H is set
   * (the host kernel runs at EL2 with VHE, and stage-1 STEs use StreamWorld EL2-E2H), for the EL2
   * regime. Only TLB entries filled from CDs with ASET = 0 are affected (see
   * `SmmuTlb.invalidateBroadcast`). The invalidation is complete on return: the PE's `DSB ISH`
   * waits for it, no CMD_SYNC is involved. Nothing happens when the configuration lacks BTM or
   * software set CR2.PTM (private TLB maintenance, what today's Linux writes).
   *
   * @param op - the operation published on the machine's `TlbBroadcast`
   */
  onTlbBroadcast(op: TlbiOp): void {
    // CR2.PTM (private TLB maintenance): the SMMU ignores broadcast invalidations.
    if (!this.config.btm || (this.#cr2 & CR2_PTM) !== 0) return;
    this.stats.tlbBroadcasts++;
    this.tlb.invalidateBroadcast(op, (this.#cr2 & CR2_E2H) !== 0 ? TLB_REGIME_EL2 : TLB_REGIME_NS_EL1);
  }

  // ---- registers ---------------------------------------------------------------------------------

  /** CR0 as last written (masked to its writable bits). */
  get cr0(): number {
    return this.#cr0;
  }

  /** GERROR. */
  get gerror(): number {
    return this.#gerror;
  }

  /** Active global errors: GERROR XOR GERRORN. */
  get activeGerrors(): number {
    return (this.#gerror ^ this.#gerrorn) & GERROR_ERR_MASK;
  }

  #gerrorActive(bit: number): boolean {
    return ((this.#gerror ^ this.#gerrorn) & bit) !== 0;
  }

  #updateGlobalState(): void {
    this.translator.setGlobalState({
      smmuEnabled: (this.#cr0 & CR0_SMMUEN) !== 0,
      gbpaAbort: (this.#gbpa & GBPA_ABORT) !== 0,
      atsCheck: (this.#cr0 & CR0_ATSCHK) !== 0,
      e2h: (this.#cr2 & CR2_E2H) !== 0,
      strtab: this.#strtab,
    });
  }

  #read64(off: number): bigint {
    switch (off) {
      case SMMU_GERROR_IRQ_CFG0:
        return this.#irqCfg.gerror.addr;
      case SMMU_STRTAB_BASE:
        return this.#strtabBase;
      case SMMU_CMDQ_BASE:
        return this.cmdq.base;
      case SMMU_EVTQ_BASE:
        return this.evtq.base;
      case SMMU_EVTQ_IRQ_CFG0:
        return this.#irqCfg.evtq.addr;
      case SMMU_PRIQ_BASE:
        return this.config.pri ? this.priq.base : 0n;
      case SMMU_PRIQ_IRQ_CFG0:
        return this.config.pri ? this.#irqCfg.priq.addr : 0n;
      default:
        return 0n;
    }
  }

  #write64(off: number, value: bigint): void {
    const v = BigInt.asUintN(64, value);
    const cr0 = this.#cr0;
    switch (off) {
      case SMMU_GERROR_IRQ_CFG0:
        if ((this.#irqCtrl & IRQ_CTRL_GERROR_IRQEN) === 0) this.#irqCfg.gerror.addr = v & IRQ_CFG0_ADDR_MASK;
        return;
      case SMMU_EVTQ_IRQ_CFG0:
        if ((this.#irqCtrl & IRQ_CTRL_EVTQ_IRQEN) === 0) this.#irqCfg.evtq.addr = v & IRQ_CFG0_ADDR_MASK;
        return;
      case SMMU_PRIQ_IRQ_CFG0:
        if (this.config.pri && (this.#irqCtrl & IRQ_CTRL_PRIQ_IRQEN) === 0)
          this.#irqCfg.priq.addr = v & IRQ_CFG0_ADDR_MASK;
        return;
      case SMMU_STRTAB_BASE:
        if ((cr0 & CR0_SMMUEN) !== 0) return;
        this.#strtabBase = v;
        this.#applyStrtab();
        return;
      case SMMU_CMDQ_BASE:
        if ((cr0 & CR0_CMDQEN) === 0) this.cmdq.writeBase(v);
        return;
      case SMMU_EVTQ_BASE:
        if ((cr0 & CR0_EVTQEN) === 0) this.evtq.writeBase(v);
        return;
      case SMMU_PRIQ_BASE:
        if (this.config.pri && (cr0 & CR0_PRIQEN) === 0) this.priq.writeBase(v);
        return;
    }
  }

  #applyStrtab(): void {
    this.#strtab = streamTableConfig(this.#strtabBase, this.#strtabBaseCfg);
    this.#updateGlobalState();
  }

  #readl(offset: number): number {
    const off = offset & 0xffff;
    if ((off & ~7) !== off && isReg64(off & ~7)) return Number((this.#read64(off & ~7) >> 32n) & M32);
    if (isReg64(off)) return Number(this.#read64(off) & M32);
    const ids = this.idrs;
    switch (off) {
      case SMMU_IDR0:
        return ids.idr0;
      case SMMU_IDR1:
        return ids.idr1;
      case SMMU_IDR2:
        return ids.idr2;
      case SMMU_IDR3:
        return ids.idr3;
      case SMMU_IDR4:
        return ids.idr4;
      case SMMU_IDR5:
        return ids.idr5;
      case SMMU_IIDR:
        return ids.iidr;
      case SMMU_AIDR:
        return ids.aidr;
      case SMMU_CR0:
      case SMMU_CR0ACK:
        return this.#cr0;
      case SMMU_CR1:
        return this.#cr1;
      case SMMU_CR2:
        return this.#cr2;
      case SMMU_STATUSR:
        return 0;
      case SMMU_GBPA:
        return this.#gbpa;
      case SMMU_AGBPA:
        return this.#agbpa;
      case SMMU_IRQ_CTRL:
      case SMMU_IRQ_CTRLACK:
        return this.#irqCtrl;
      case SMMU_GERROR:
        return this.#gerror;
      case SMMU_GERRORN:
        return this.#gerrorn;
      case SMMU_GERROR_IRQ_CFG1:
        return this.#irqCfg.gerror.data;
      case SMMU_GERROR_IRQ_CFG2:
        return this.#irqCfg.gerror.attr;
      case SMMU_STRTAB_BASE_CFG:
        return this.#strtabBaseCfg;
      case SMMU_CMDQ_PROD:
        return this.cmdq.prod;
      case SMMU_CMDQ_CONS:
        return this.cmdq.cons;
      case 0xa8:
        return this.evtq.prod;
      case 0xac:
        return this.evtq.cons;
      case SMMU_EVTQ_IRQ_CFG1:
        return this.#irqCfg.evtq.data;
      case SMMU_EVTQ_IRQ_CFG2:
        return this.#irqCfg.evtq.attr;
      case 0xc8:
        return this.config.pri ? this.priq.prod : 0;
      case 0xcc:
        return this.config.pri ? this.priq.cons : 0;
      case SMMU_PRIQ_IRQ_CFG1:
        return this.config.pri ? this.#irqCfg.priq.data : 0;
      case SMMU_PRIQ_IRQ_CFG2:
        return this.config.pri ? this.#irqCfg.priq.attr : 0;
      default:
        if (off >= 0xfd0 && off <= 0xffc) return ID_REGS[(off - 0xfd0) >> 2] ?? 0;
        return 0;
    }
  }

  #writel(offset: number, value: number): void {
    const off = offset & 0xffff;
    const v = value >>> 0;
    const base = off & ~7;
    if (isReg64(base)) {
      const old = this.#read64(base);
      const nv = off === base ? (old & ~M32) | BigInt(v) : (old & M32) | (BigInt(v) << 32n);
      this.#write64(base, nv);
      return;
    }
    switch (off) {
      case SMMU_CR0:
        this.#writeCr0(v);
        return;
      case SMMU_CR1:
        if ((this.#cr0 & (CR0_SMMUEN | CR0_CMDQEN | CR0_EVTQEN | CR0_PRIQEN)) === 0) this.#cr1 = v & 0xfff;
        return;
      case SMMU_CR2:
        if ((this.#cr0 & CR0_SMMUEN) === 0) {
          this.#cr2 = v & 0x7;
          this.#updateGlobalState();
        }
        return;
      case SMMU_GBPA:
        // Only a write with UPDATE takes effect (SMMUv3.2 rule); it completes at once.
        if ((v & GBPA_UPDATE) !== 0) {
          this.#gbpa = (v & ~GBPA_UPDATE & 0x1f_3f1f) >>> 0;
          this.#updateGlobalState();
        }
        return;
      case SMMU_AGBPA:
        this.#agbpa = v;
        return;
      case SMMU_IRQ_CTRL:
        this.#irqCtrl =
          v & (IRQ_CTRL_GERROR_IRQEN | IRQ_CTRL_EVTQ_IRQEN | (this.config.pri ? IRQ_CTRL_PRIQ_IRQEN : 0));
        return;
      case SMMU_GERRORN:
        this.#writeGerrorn(v);
        return;
      case SMMU_GERROR_IRQ_CFG1:
        if ((this.#irqCtrl & IRQ_CTRL_GERROR_IRQEN) === 0) this.#irqCfg.gerror.data = v;
        return;
      case SMMU_GERROR_IRQ_CFG2:
        if ((this.#irqCtrl & IRQ_CTRL_GERROR_IRQEN) === 0) this.#irqCfg.gerror.attr = v & 0x3f;
        return;
      case SMMU_STRTAB_BASE_CFG:
        if ((this.#cr0 & CR0_SMMUEN) !== 0) return;
        this.#strtabBaseCfg = v & 0x3_07ff;
        this.#applyStrtab();
        return;
      case SMMU_CMDQ_PROD:
        this.cmdq.writeProd(v);
        return;
      case SMMU_CMDQ_CONS:
        this.cmdq.writeCons(v);
        return;
      case 0xa8:
        this.evtq.writeProd(v);
        return;
      case 0xac:
        this.evtq.writeCons(v);
        this.evtq.drainHeld();
        return;
      case SMMU_EVTQ_IRQ_CFG1:
        if ((this.#irqCtrl & IRQ_CTRL_EVTQ_IRQEN) === 0) this.#irqCfg.evtq.data = v;
        return;
      case SMMU_EVTQ_IRQ_CFG2:
        if ((this.#irqCtrl & IRQ_CTRL_EVTQ_IRQEN) === 0) this.#irqCfg.evtq.attr = v & 0x3f;
        return;
      case 0xc8:
        if (this.config.pri) this.priq.writeProd(v);
        return;
      case 0xcc:
        if (this.config.pri) this.priq.writeCons(v);
        return;
      case SMMU_PRIQ_IRQ_CFG1:
        if (this.config.pri && (this.#irqCtrl & IRQ_CTRL_PRIQ_IRQEN) === 0) this.#irqCfg.priq.data = v;
        return;
      case SMMU_PRIQ_IRQ_CFG2:
        if (this.config.pri && (this.#irqCtrl & IRQ_CTRL_PRIQ_IRQEN) === 0) this.#irqCfg.priq.attr = v & 0x3f;
        return;
      default:
        return;
    }
  }

  #readq(offset: number): bigint {
    const off = offset & 0xffff;
    if (isReg64(off)) return this.#read64(off);
    return BigInt(this.#readl(off)) | (BigInt(this.#readl(off + 4)) << 32n);
  }

  #writeq(offset: number, value: bigint): void {
    const off = offset & 0xffff;
    if (isReg64(off)) {
      this.#write64(off, value);
      return;
    }
    const v = BigInt.asUintN(64, value);
    this.#writel(off, Number(v & M32));
    this.#writel(off + 4, Number(v >> 32n));
  }

  #writeCr0(value: number): void {
    const old = this.#cr0;
    const v = value & CR0_WRITABLE & ~(this.config.pri ? 0 : CR0_PRIQEN);
    this.#cr0 = v;
    this.cmdq.enabled = (v & CR0_CMDQEN) !== 0;
    this.evtq.enabled = (v & CR0_EVTQEN) !== 0;
    this.priq.enabled = (v & CR0_PRIQEN) !== 0;
    this.#updateGlobalState();
    if ((old & CR0_SMMUEN) !== 0 && (v & CR0_SMMUEN) === 0) this.#terminateAllStalls();
    if ((v & CR0_EVTQEN) !== 0 && (old & CR0_EVTQEN) === 0) this.evtq.drainHeld();
    if ((v & CR0_CMDQEN) !== 0) this.cmdq.kick();
  }

  #writeGerrorn(value: number): void {
    this.#gerrorn = value & GERROR_ERR_MASK;
    if (!this.#gerrorActive(GERROR_CMDQ_ERR)) this.cmdq.kick();
  }

  /**
   * Raise a global error (the SMMU side of GERROR): toggle the bit unless already active and
   * signal the GERROR interrupt.
   * @param bit - one GERROR bit
   */
  #raiseGerror(bit: number): void {
    if (this.#gerrorActive(bit)) return;
    this.#gerror = (this.#gerror ^ bit) >>> 0;
    this.#signal('gerror');
  }

  #signal(src: 'evtq' | 'priq' | 'gerror'): void {
    const en =
      src === 'evtq' ? IRQ_CTRL_EVTQ_IRQEN : src === 'priq' ? IRQ_CTRL_PRIQ_IRQEN : IRQ_CTRL_GERROR_IRQEN;
    if ((this.#irqCtrl & en) === 0) return;
    const cfg = this.#irqCfg[src];
    if (this.config.msi && cfg.addr !== 0n) {
      if (!this.#msi(src, cfg.addr, cfg.data)) {
        const abt =
          src === 'evtq'
            ? GERROR_MSI_EVTQ_ABT_ERR
            : src === 'priq'
              ? GERROR_MSI_PRIQ_ABT_ERR
              : GERROR_MSI_GERROR_ABT_ERR;
        if (src === 'gerror') {
          if (!this.#gerrorActive(abt)) this.#gerror = (this.#gerror ^ abt) >>> 0;
        } else this.#raiseGerror(abt);
      }
      return;
    }
    this.#irqs[src]?.raise();
  }

  /** Perform an MSI write; false if it hit no RAM and no doorbell took it. */
  #msi(source: SmmuMsiRecord['source'], addr: bigint, data: number): boolean {
    if (this.msiLog.length >= 1024) this.msiLog.shift();
    this.msiLog.push({ source, addr, data });
    if (this.#msiWrite?.(addr, data) === true) return true;
    try {
      this.memory.write32(Number(addr), data >>> 0);
      return true;
    } catch {
      return false;
    }
  }

  // ---- commands ----------------------------------------------------------------------------------

  #syncComplete(cmd: SmmuCmdSync): void {
    if (cmd.cs === CMD_SYNC_CS.IRQ) {
      if (this.config.msi && cmd.msiAddr !== 0n) {
        if (!this.#msi('cmdq-sync', cmd.msiAddr, cmd.msiData)) this.#raiseGerror(GERROR_MSI_CMDQ_ABT_ERR);
      } else this.#irqs.cmdqSync?.raise();
    } else if (cmd.cs === CMD_SYNC_CS.SEV) {
      this.stats.sev++;
      this.onSev?.();
    }
  }

  #atcInvalidate(cmd: SmmuCmdAtcInv): void {
    const port = this.ports.get(cmd.sid);
    if (port === undefined) return;
    const r = atsRangeFromLog2Pages(cmd.addr, cmd.size);
    const enc = atsEncodeRange(r.start, r.size);
    const used = this.#atcOutstanding.get(cmd.sid) ?? 0;
    let itag = 0;
    while (itag < 31 && (used & (1 << itag)) !== 0) itag++;
    this.#atcOutstanding.set(cmd.sid, (used | (1 << itag)) >>> 0);
    this.stats.atcInvalidations++;
    port.atsInvalidate({
      requesterId: cmd.sid,
      global: cmd.global,
      addr: enc.addr,
      s: enc.s,
      itag,
      ...(cmd.ssv ? { pasid: cmd.ssid } : {}),
    });
  }

  #priResponse(cmd: SmmuCmdPriResp): void {
    const code: PrgResponseCode =
      cmd.resp === CMD_PRI_RESP.SUCC
        ? PRG_RESPONSE.SUCCESS
        : cmd.resp === CMD_PRI_RESP.DENY
          ? PRG_RESPONSE.INVALID_REQUEST
          : PRG_RESPONSE.RESPONSE_FAILURE;
    this.stats.prgResponses++;
    this.ports.sendPrgResponse({
      requesterId: cmd.sid,
      prgIndex: cmd.prgIndex,
      code,
      ...(cmd.ssv ? { pasid: cmd.ssid } : {}),
    });
  }

  #takeStalled(sid: number, stag: number): Stalled | undefined {
    const m = this.#stalled.get(sid);
    const s = m?.get(stag);
    if (m === undefined || s === undefined) return undefined;
    m.delete(stag);
    if (m.size === 0) this.#stalled.delete(sid);
    this.#stalledCount--;
    return s;
  }

  #resume(cmd: SmmuCmdResume): void {
    const s = this.#takeStalled(cmd.sid, cmd.stag);
    if (s === undefined) return;
    this.evtq.dropHeld((ev) => ev.stall && ev.sid === cmd.sid && ev.stag === cmd.stag);
    const p = s.pending;
    if (cmd.resp === CMD_RESUME_RESP.RETRY) {
      const out = this.#perform(p.request, p.data, s);
      if (out.kind !== 'pending') p.settle(out);
      return;
    }
    if (cmd.resp === CMD_RESUME_RESP.TERM && this.config.termModel === 0) {
      p.settle(this.#razWi(p.request));
      return;
    }
    p.settle({ kind: 'fault', reason: 'terminated', addr: p.request.addr, code: 'CMD_RESUME abort' });
  }

  #stallTerm(cmd: SmmuCmdStallTerm): void {
    const m = this.#stalled.get(cmd.sid);
    if (m === undefined) return;
    this.#stalled.delete(cmd.sid);
    this.#stalledCount -= m.size;
    this.evtq.dropHeld((ev) => ev.stall && ev.sid === cmd.sid);
    for (const s of m.values())
      s.pending.settle({
        kind: 'fault',
        reason: 'terminated',
        addr: s.pending.request.addr,
        code: 'CMD_STALL_TERM',
      });
  }

  #terminateAllStalls(): void {
    const all = [...this.#stalled.values()];
    this.#stalled.clear();
    this.#stalledCount = 0;
    this.evtq.dropHeld((ev) => ev.stall);
    for (const m of all)
      for (const s of m.values())
        s.pending.settle({
          kind: 'fault',
          reason: 'terminated',
          addr: s.pending.request.addr,
          code: 'SMMUEN cleared',
        });
  }

  /** Number of transactions currently stalled. */
  get stalledCount(): number {
    return this.#stalledCount;
  }

  /**
   * The stalled transaction of (StreamID, STAG), if any (tests).
   * @param sid - StreamID
   * @param stag - stall tag
   */
  stalledTransaction(sid: number, stag: number): PendingDma | undefined {
    return this.#stalled.get(sid)?.get(stag)?.pending;
  }

  // ---- device side (IommuHw) ---------------------------------------------------------------------

  #razWi(req: DmaRequest): DmaOutcome & { kind: 'completed' } {
    return req.access === 'read'
      ? { kind: 'completed', data: new Uint8Array(req.size) }
      : { kind: 'completed' };
  }

  /**
   * Translate and perform `req`; on a stallable fault, hold it (reusing `again` on a retry).
   * @returns the outcome
   */
  #perform(req: DmaRequest, data: Uint8Array | undefined, again?: Stalled): DmaOutcome {
    const tr = this.translator;
    const write = req.access === 'write';
    const size = req.size;
    const big = req.addr >= 0x20_0000_0000_0000n;
    const base = big ? 0 : Number(req.addr);
    const ssid = req.pasid;
    let parts: number[] | undefined;
    for (let off = 0; off < size; ) {
      const txn: SmmuTransaction = {
        sid: req.requesterId,
        ssid,
        addr: big ? req.addr + BigInt(off) : base + off,
        write,
        exec: req.exec,
        privileged: req.privileged,
        atsTranslated: req.atsTranslated,
      };
      const r = tr.translate(txn);
      if (r.kind !== 'fault' && r.kind !== 'abort') {
        const len = Math.min(size - off, r.span);
        if (off === 0 && len === size) return this.#access(req, r.pa, data);
        if (parts === undefined) parts = [];
        parts.push(r.pa, off, len);
        off += len;
        continue;
      }
      const faultAddr = big ? req.addr + BigInt(off) : BigInt(base + off);
      if (r.kind === 'abort') {
        this.stats.terminated++;
        return {
          kind: 'fault',
          reason: 'blocked',
          addr: faultAddr,
          code: r.reason === 'gbpa' ? 'GBPA.ABORT' : 'STE abort',
        };
      }
      // Configuration-error records carry the transaction's SubstreamID too (SSV/SSID of §5.1).
      const ev =
        !r.event.ssv && ssid !== undefined && r.event.type !== 'F_STREAM_DISABLED'
          ? smmuEvent(r.event.type, r.event.sid, { ...r.event, ssv: true, ssid })
          : r.event;
      if (r.stallable && (again !== undefined || this.#stalledCount < Math.max(1, this.config.stallMax))) {
        const stag = again?.stag ?? this.#allocStag(req.requesterId);
        const pending = again?.pending ?? new PendingDma(req, data, stag);
        const s: Stalled = again ?? { pending, sid: req.requesterId, stag };
        let m = this.#stalled.get(s.sid);
        if (m === undefined) {
          m = new Map();
          this.#stalled.set(s.sid, m);
        }
        m.set(s.stag, s);
        this.#stalledCount++;
        this.stats.stalls++;
        this.evtq.record(smmuEvent(ev.type, ev.sid, { ...ev, stall: true, stag: s.stag }));
        return { kind: 'pending', pending };
      }
      if (r.record) this.evtq.record(ev);
      if (r.razWi) return this.#razWi(req);
      this.stats.terminated++;
      const f: DmaFault = {
        kind: 'fault',
        reason: smmuEventFaultReason(ev.type),
        addr: faultAddr,
        code: ev.type,
      };
      return f;
    }
    if (parts === undefined) return this.#razWi(req);
    const out = req.access === 'read' ? new Uint8Array(size) : undefined;
    for (let i = 0; i < parts.length; i += 3) {
      const pa = parts[i] as number;
      const off = parts[i + 1] as number;
      const len = parts[i + 2] as number;
      const sub = { access: req.access, size: len, addr: req.addr + BigInt(off) };
      const r = accessPhysicalMemory(this.memory, BigInt(pa), sub, data?.subarray(off, off + len));
      if (r.kind !== 'completed') {
        this.stats.terminated++;
        return r;
      }
      if (out !== undefined && r.data !== undefined) out.set(r.data, off);
    }
    this.stats.completed++;
    return out === undefined ? { kind: 'completed' } : { kind: 'completed', data: out };
  }

  #access(req: DmaRequest, pa: number, data: Uint8Array | undefined): DmaOutcome {
    const mem = this.memory;
    if (req.access === 'write' && (data === undefined || data.length !== req.size))
      return accessPhysicalMemory(mem, BigInt(pa), req, data);
    if (mem.contains(pa, req.size)) {
      try {
        if (req.access === 'read') {
          const d = mem.readBytes(pa, req.size);
          this.stats.completed++;
          return { kind: 'completed', data: d };
        }
        mem.writeBytes(pa, data as Uint8Array);
        this.stats.completed++;
        return { kind: 'completed' };
      } catch {
        // fall through to the generic path for the bus-error outcome
      }
    }
    const r = accessPhysicalMemory(mem, BigInt(pa), req, data);
    if (r.kind === 'completed') this.stats.completed++;
    else this.stats.terminated++;
    return r;
  }

  #allocStag(sid: number): number {
    const m = this.#stalled.get(sid);
    for (let i = 0; i < 0x10000; i++) {
      const t = this.#nextStag;
      this.#nextStag = (this.#nextStag + 1) & 0xffff;
      if (m === undefined || !m.has(t)) return t;
    }
    return this.#nextStag;
  }

  /**
   * A DMA transaction from an endpoint (`IommuHw.dmaAccess`): translated through the STE, CD, TLB and
   * page tables, then performed on `PhysicalMemory`, or faulted (event record), held (stall) or
   * aborted.
   * @param req - the transaction
   * @param data - the bytes of a write
   * @returns the outcome: completed, fault, or pending (stalled)
   */
  dmaAccess(req: DmaRequest, data?: Uint8Array): DmaOutcome {
    this.stats.dma++;
    if (req.access === 'write' && (data === undefined || data.length !== req.size))
      return accessPhysicalMemory(this.memory, 0n, req, data);
    return this.#perform(req, data);
  }

  /**
   * A PCIe ATS Translation Request (`IommuHw.atsTranslate`).
   * @param req - the request
   * @returns the Translation Completion
   */
  atsTranslate(req: AtsTranslationRequest): AtsCompletion {
    this.stats.atsRequests++;
    if (!this.config.ats) return { status: 'ur', detail: 'SMMU without ATS' };
    const r = this.translator.atsTranslate({
      sid: req.requesterId,
      ssid: req.pasid,
      addr: req.addr,
      noWrite: req.noWrite,
      exec: req.exec,
      privileged: req.privileged,
    });
    if (r.event !== undefined) this.evtq.record(r.event);
    if (r.status !== 'success')
      return { status: r.status, detail: r.event?.type ?? 'ATS translation refused' };
    return {
      status: 'success',
      untranslatedAddr: r.untranslatedAddr,
      translatedAddr: r.translatedAddr,
      size: r.size,
      read: r.read,
      write: r.write,
      exec: r.exec,
      privileged: r.privileged,
      untranslatedOnly: r.untranslatedOnly,
      global: false,
      noSnoop: false,
    };
  }

  /**
   * A PCIe PRI Page Request from an endpoint (`IommuHw.pageRequest`): written to the PRI queue.
   * @param msg - the request
   */
  pageRequest(msg: PageRequestMessage): void {
    this.stats.pageRequests++;
    if (!this.config.pri) {
      if (!(msg.last && msg.pasid !== undefined && !msg.read && !msg.write))
        this.ports.sendPrgResponse({
          requesterId: msg.requesterId,
          prgIndex: msg.prgIndex,
          code: PRG_RESPONSE.RESPONSE_FAILURE,
        });
      return;
    }
    this.priq.accept(msg);
  }

  /**
   * An ATS Invalidate Completion from an endpoint (`IommuHw.atsInvalidateCompletion`).
   * @param msg - the completion
   */
  atsInvalidateCompletion(msg: AtsInvalidateCompletion): void {
    const used = this.#atcOutstanding.get(msg.requesterId);
    if (used === undefined) return;
    const left = (used & ~msg.itagVector) >>> 0;
    if (left === 0) this.#atcOutstanding.delete(msg.requesterId);
    else this.#atcOutstanding.set(msg.requesterId, left);
    if (this.#atcOutstanding.size === 0 && this.cmdq.waitingForAtc) this.cmdq.kick();
  }

  /** Whether ATS invalidations await completions. */
  get atcInvalidationsPending(): boolean {
    return this.#atcOutstanding.size > 0;
  }

  /**
   * Connect an endpoint's port (`IommuHw.connectEndpoint`), for ATC invalidations and PRG responses.
   * @param port - the port
   */
  connectEndpoint(port: EndpointPort): void {
    this.ports.connect(port);
  }

  /**
   * Disconnect an endpoint's port (`IommuHw.disconnectEndpoint`).
   * @param port - the port
   */
  disconnectEndpoint(port: EndpointPort): void {
    this.ports.disconnect(port);
    if (this.#atcOutstanding.delete(port.requesterId) && this.cmdq.waitingForAtc) this.cmdq.kick();
  }
}

function isReg64(off: number): boolean {
  switch (off) {
    case SMMU_GERROR_IRQ_CFG0:
    case SMMU_STRTAB_BASE:
    case SMMU_CMDQ_BASE:
    case SMMU_EVTQ_BASE:
    case SMMU_EVTQ_IRQ_CFG0:
    case SMMU_PRIQ_BASE:
    case SMMU_PRIQ_IRQ_CFG0:
      return true;
    default:
      return false;
  }
}
