/**
 * `VtdModel`: one VT-d DMA-remapping unit as the devices and the driver see it. Devices reach it
 * through {@link IommuHw} (DMA, ATS translation requests, PRI page requests, ATS invalidation
 * completions); the driver through its {@link MmioRegion}, structures in `PhysicalMemory`, and
 * interrupt messages (MSI writes / wired lines).
 *
 * @remarks
 * Registers follow digest §1 with the reset values and write masks of §1.13 (QEMU's), extended to
 * every register the configuration advertises (several fault records, ICE/ITE, IQER, the page
 * request queue). GCMD handshakes complete at once (GSTS reflects the command when the write
 * returns): TE, SRTP (latches RTADDR: root table address and TTM), WBF (WBFS reads 0), QIE, IRE,
 * SIRTP, CFI. SRTP flushes the DMA-remapping caches only with CAP.ESRTPS, and clearing TE does so
 * only on a scalable-mode-capable unit (ECAP.SMTS) — unlike QEMU, which flushes on both (§7.7
 * item 5), so a driver's missing invalidation stays observable.
 *
 * Register-based invalidation (CCMD, IOTLB_REG; §1.6–§1.7) completes at once. It is refused
 * (CAIG/IAIG = 0, nothing invalidated) while queued invalidation is enabled, when the latched TTM
 * is not legacy, on a VER major of 6 or more, or for a reserved granularity or AM above MAMV; a
 * page-selective request on a unit without CAP.PSI is performed domain-selective (IAIG = 10).
 *
 * DMA: each page the access touches is translated by {@link VtdTranslator} first; if any faults,
 * the fault is recorded (unless FPD suppresses it) and the whole access fails with nothing
 * transferred; otherwise the bytes move with `accessPhysicalMemory`. Untranslated DMA never
 * produces page requests: on VT-d a PRI-capable device asks through ATS and PRI itself.
 */

import type { IrqLine, Scheduler } from '@iommu-ts/base';
import { ErrnoError } from '@iommu-ts/base';
import {
  type AtsCompletion,
  type AtsInvalidateCompletion,
  type AtsInvalidateRequest,
  type AtsTranslationRequest,
  accessPhysicalMemory,
  type DmaFault,
  type DmaOutcome,
  type DmaRequest,
  type EndpointPort,
  EndpointPortTable,
  type IommuHw,
  type MmioRegion,
  type PageRequestMessage,
  PRG_RESPONSE,
  type PrgResponseCode,
  type PrgResponseMessage,
} from '@iommu-ts/iommu-core';
import type { PhysicalMemory } from '@iommu-ts/mm';
import { VtdContextCache, VtdPasidCache } from './context-cache.js';
import { type VtdEventName, VtdEventSource } from './event-irq.js';
import { VtdFaultRecorder } from './fault-recording.js';
import type { VtdInvDesc, VtdWaitInvDesc } from './inv-desc.js';
import type { VtdIotlb } from './iotlb.js';
import { VtdInvalidationQueue, type VtdIqHost } from './iq.js';
import { resolveRequestPasid } from './pasid-table.js';
import { VtdPageRequestQueue } from './prq.js';
import { VtdRegisterFile } from './register-file.js';
import {
  DMA_CCMD_ICC,
  DMA_FSTS_ICE,
  DMA_FSTS_IQE,
  DMA_FSTS_ITE,
  DMA_GCMD_CFI,
  DMA_GCMD_IRE,
  DMA_GCMD_QIE,
  DMA_GCMD_SIRTP,
  DMA_GCMD_SRTP,
  DMA_GCMD_TE,
  DMA_ICS_IWC,
  DMA_RTADDR_RTA_MASK,
  DMA_TLB_IVT,
  DMAR_AFLOG_REG,
  DMAR_CAP_REG,
  DMAR_CCMD_REG,
  DMAR_ECAP_REG,
  DMAR_FEADDR_REG,
  DMAR_FECTL_REG,
  DMAR_FEDATA_REG,
  DMAR_FEUADDR_REG,
  DMAR_FSTS_REG,
  DMAR_GCMD_REG,
  DMAR_GSTS_REG,
  DMAR_ICS_REG,
  DMAR_IEADDR_REG,
  DMAR_IECTL_REG,
  DMAR_IEDATA_REG,
  DMAR_IEUADDR_REG,
  DMAR_IQA_REG,
  DMAR_IQER_REG,
  DMAR_IQH_REG,
  DMAR_IQT_REG,
  DMAR_IRTA_REG,
  DMAR_PEADDR_REG,
  DMAR_PECTL_REG,
  DMAR_PEDATA_REG,
  DMAR_PEUADDR_REG,
  DMAR_PHMBASE_REG,
  DMAR_PHMLIMIT_REG,
  DMAR_PLMBASE_REG,
  DMAR_PLMLIMIT_REG,
  DMAR_PMEN_REG,
  DMAR_PQA_REG,
  DMAR_PQH_REG,
  DMAR_PQT_REG,
  DMAR_PRS_REG,
  DMAR_RTADDR_REG,
  DMAR_VER_REG,
  vtdFrcdOffset,
  vtdIotlbRegOffset,
  vtdIvaOffset,
} from './regs.js';
import { VTD_TTM } from './root-context.js';
import { type VtdTransaction, VtdTranslator } from './translate.js';
import { resolveVtdHwConfig, type VtdHwConfig, vtdCapEcap, vtdMmioSize } from './vtd-config.js';
import { VTD_FR, type VtdFault, vtdDmaFaultReason } from './vtd-fault.js';

/** Interrupt lines of a unit (absent lines are not raised; MSI writes are still logged). */
export interface VtdIrqLines {
  /** Fault event (FECTL): primary faults and queue errors. */
  readonly fault?: IrqLine;
  /** Page request event (PECTL). */
  readonly prq?: IrqLine;
  /** Invalidation completion event (IECTL). */
  readonly iq?: IrqLine;
}

/** Constructor options of {@link VtdModel}. */
export interface VtdModelOptions {
  /** RAM holding the root/context/PASID tables, page tables and queues (and reached by DMA). */
  readonly memory: PhysicalMemory;
  /** Where queue processing, time-outs and interrupts run. */
  readonly scheduler: Scheduler;
  /** Parameters; missing ones take the defaults of `resolveVtdHwConfig`. */
  readonly config?: Partial<VtdHwConfig>;
  /** Name for traces; default `'dmar0'`. */
  readonly name?: string;
  /** Interrupt lines raised when the matching event message is sent. */
  readonly irqs?: VtdIrqLines;
  /**
   * Delivery of interrupt messages to an interrupt controller (address from xEADDR/xEUADDR, data
   * from xEDATA). Called in addition to raising the matching line.
   */
  readonly msiWrite?: (addr: bigint, data: number) => void;
}

/** One interrupt message the unit sent. */
export interface VtdMsiRecord {
  /** Which event. */
  readonly source: VtdEventName;
  /** Message address. */
  readonly addr: bigint;
  /** Message data. */
  readonly data: number;
}

/** Counters of {@link VtdModel}. */
export interface VtdModelStats {
  /** DMA requests received. */
  dma: number;
  /** DMA requests completed. */
  completed: number;
  /** DMA requests that faulted. */
  faulted: number;
  /** ATS translation requests. */
  atsRequests: number;
  /** Page request messages received. */
  pageRequests: number;
  /** ATS invalidate requests sent. */
  atsInvalidations: number;
  /** ATS invalidate completions that did not match an outstanding invalidation (ICE). */
  badCompletions: number;
  /** Page group responses sent (descriptors and automatic ones). */
  prgResponses: number;
  /** Register-based invalidations performed (CCMD and IOTLB_REG). */
  registerInvalidations: number;
  /** Of {@link VtdModelStats.registerInvalidations}, the context-cache ones (CCMD). */
  registerContextInvalidations: number;
  /** Of {@link VtdModelStats.registerInvalidations}, the IOTLB ones (IOTLB_REG). */
  registerIotlbInvalidations: number;
}

const M32 = 0xffff_ffffn;
const PASSTHROUGH_PRG = (msg: PageRequestMessage, code: PrgResponseCode): PrgResponseMessage =>
  msg.pasid === undefined
    ? { requesterId: msg.requesterId, prgIndex: msg.prgIndex, code }
    : { requesterId: msg.requesterId, pasid: msg.pasid, prgIndex: msg.prgIndex, code };

/**
 * One VT-d DMA-remapping unit (see the file comment).
 *
 * @example
 * ```ts
 * const vtd = new VtdModel({ memory, scheduler });
 * vtd.mmio.writeq(DMAR_RTADDR_REG, BigInt(root));
 * vtd.mmio.writel(DMAR_GCMD_REG, DMA_GCMD_SRTP);
 * vtd.mmio.writel(DMAR_GCMD_REG, DMA_GCMD_TE);
 * ```
 */
export class VtdModel implements IommuHw {
  /** The unit's name (`IommuHw.name`), e.g. `dmar0`. */
  readonly name: string;
  /** The unit's parameters (resolved). */
  readonly config: VtdHwConfig;
  /** RAM. */
  readonly memory: PhysicalMemory;
  /** The scheduler. */
  readonly scheduler: Scheduler;
  /** The register window the driver maps. */
  readonly mmio: MmioRegion;
  /** The register storage (hardware view, for tests). */
  readonly regs: VtdRegisterFile;
  /** Fault status and recording. */
  readonly faults: VtdFaultRecorder;
  /** The context cache. */
  readonly contextCache: VtdContextCache;
  /** The PASID cache. */
  readonly pasidCache: VtdPasidCache;
  /** The translation engine (its IOTLB is {@link VtdModel.iotlb}). */
  readonly translator: VtdTranslator;
  /** The invalidation queue. */
  readonly iq: VtdInvalidationQueue;
  /** The page request queue. */
  readonly prq: VtdPageRequestQueue;
  /** Connected endpoints. */
  readonly ports = new EndpointPortTable();
  /** Interrupt messages sent, oldest first (capped at 1024). */
  readonly msiLog: VtdMsiRecord[] = [];
  /** Counters. */
  readonly stats: VtdModelStats = {
    dma: 0,
    completed: 0,
    faulted: 0,
    atsRequests: 0,
    pageRequests: 0,
    atsInvalidations: 0,
    badCompletions: 0,
    prgResponses: 0,
    registerInvalidations: 0,
    registerContextInvalidations: 0,
    registerIotlbInvalidations: 0,
  };
  /** ATS invalidate requests sent, oldest first (capped at 1024). */
  readonly atsInvalidateLog: AtsInvalidateRequest[] = [];

  readonly #faultEvent: VtdEventSource;
  readonly #iqEvent: VtdEventSource;
  readonly #prqEvent: VtdEventSource;
  readonly #irqs: VtdIrqLines;
  readonly #msiWrite: ((addr: bigint, data: number) => void) | undefined;
  readonly #iva: number;
  readonly #iotlbReg: number;
  readonly #frcdHiDwords: Set<number>;
  /** Outstanding ATS invalidations: requester ID → ITags. */
  readonly #atsPending = new Map<number, Set<number>>();
  #nextItag = 0;
  #rtaddr = 0;
  #ttm = 0;

  /** @param options - see {@link VtdModelOptions} */
  constructor(options: VtdModelOptions) {
    const config = resolveVtdHwConfig(options.config);
    this.config = config;
    this.memory = options.memory;
    this.scheduler = options.scheduler;
    this.name = options.name ?? 'dmar0';
    this.#irqs = options.irqs ?? {};
    this.#msiWrite = options.msiWrite;
    this.#iva = vtdIvaOffset(config.iro);
    this.#iotlbReg = vtdIotlbRegOffset(config.iro);
    const regs = new VtdRegisterFile(vtdMmioSize(config));
    this.regs = regs;
    this.#defineRegisters();
    this.#frcdHiDwords = new Set();
    for (let i = 0; i < config.numFaultRecords; i++)
      this.#frcdHiDwords.add(vtdFrcdOffset(config.fro, i) + 12);
    const send = (src: VtdEventName, addr: bigint, data: number): void => this.#sendMsi(src, addr, data);
    this.#faultEvent = new VtdEventSource(regs, 'fault', DMAR_FECTL_REG, send);
    this.#iqEvent = new VtdEventSource(regs, 'iq', DMAR_IECTL_REG, send);
    this.#prqEvent = new VtdEventSource(regs, 'prq', DMAR_PECTL_REG, send);
    this.faults = new VtdFaultRecorder(regs, config, this.#faultEvent);
    this.contextCache = new VtdContextCache({ memory: this.memory, config });
    this.pasidCache = new VtdPasidCache({ memory: this.memory, config });
    this.translator = new VtdTranslator({
      memory: this.memory,
      config,
      contextCache: this.contextCache,
      pasidCache: this.pasidCache,
    });
    const self = this;
    const host: VtdIqHost = {
      config,
      memory: this.memory,
      scheduler: this.scheduler,
      regs,
      faults: this.faults,
      iqEvent: this.#iqEvent,
      get ttm(): number {
        return self.#ttm;
      },
      execute: (d) => this.#execute(d),
      devTlbPending: () => this.#atsPending.size > 0,
      devTlbAbandon: () => this.#atsAbandon(),
    };
    this.iq = new VtdInvalidationQueue(host);
    this.prq = new VtdPageRequestQueue(regs, this.memory, this.#prqEvent, (m) => this.#sendPrg(m));
    this.mmio = {
      size: regs.size,
      readl: (off) => regs.read32(off),
      readq: (off) => regs.read64(off),
      writel: (off, v) => {
        regs.write32(off, v);
        this.#written(off);
      },
      writeq: (off, v) => {
        regs.write64(off, v);
        this.#written(off);
        this.#written(off + 4);
      },
    };
  }

  /** The IOTLB and paging-structure caches. */
  get iotlb(): VtdIotlb {
    return this.translator.iotlb;
  }

  /** Root table address latched by the last SRTP. */
  get rootTableAddress(): number {
    return this.#rtaddr;
  }

  /** TTM latched by the last SRTP (0 legacy, 1 scalable, 2 reserved, 3 abort-DMA). */
  get ttm(): number {
    return this.#ttm;
  }

  /** Whether DMA remapping is enabled (GSTS.TES). */
  get translationEnabled(): boolean {
    return (this.regs.get32(DMAR_GSTS_REG) & DMA_GCMD_TE) !== 0;
  }

  // ---- registers ---------------------------------------------------------------------------------

  #defineRegisters(): void {
    const r = this.regs;
    const c = this.config;
    const { cap, ecap } = vtdCapEcap(c);
    const uaddr = c.eim ? 0xffff_ffffn : 0n;
    r.define({ offset: DMAR_VER_REG, size: 4, reset: BigInt(c.version) });
    r.define({ offset: DMAR_CAP_REG, size: 8, reset: cap });
    r.define({ offset: DMAR_ECAP_REG, size: 8, reset: ecap });
    r.define({ offset: DMAR_GCMD_REG, size: 4, wmask: 0xff80_0000n, womask: M32 });
    r.define({ offset: DMAR_GSTS_REG, size: 4 });
    r.define({ offset: DMAR_RTADDR_REG, size: 8, wmask: 0xffff_ffff_ffff_fc00n });
    r.define({ offset: DMAR_CCMD_REG, size: 8, wmask: 0xe000_0003_ffff_ffffn, womask: 0x3_ffff_0000n });
    r.define({
      offset: DMAR_FSTS_REG,
      size: 4,
      w1cmask: BigInt(DMA_FSTS_IQE | DMA_FSTS_ICE | DMA_FSTS_ITE | 0x81),
    });
    r.define({ offset: DMAR_FECTL_REG, size: 4, reset: 0x8000_0000n, wmask: 0x8000_0000n });
    r.define({ offset: DMAR_FEDATA_REG, size: 4, wmask: 0xffffn });
    r.define({ offset: DMAR_FEADDR_REG, size: 4, wmask: 0xffff_fffcn });
    r.define({ offset: DMAR_FEUADDR_REG, size: 4, wmask: uaddr });
    r.define({ offset: DMAR_AFLOG_REG, size: 8 });
    const pmr = c.plmr || c.phmr;
    r.define({ offset: DMAR_PMEN_REG, size: 4, wmask: pmr ? 0x8000_0000n : 0n });
    r.define({ offset: DMAR_PLMBASE_REG, size: 4, wmask: c.plmr ? 0xffff_f000n : 0n });
    r.define({ offset: DMAR_PLMLIMIT_REG, size: 4, wmask: c.plmr ? 0xffff_f000n : 0n });
    r.define({ offset: DMAR_PHMBASE_REG, size: 8, wmask: c.phmr ? 0xffff_ffff_ffff_f000n : 0n });
    r.define({ offset: DMAR_PHMLIMIT_REG, size: 8, wmask: c.phmr ? 0xffff_ffff_ffff_f000n : 0n });
    const qi = c.qi;
    r.define({ offset: DMAR_IQH_REG, size: 8 });
    r.define({ offset: DMAR_IQT_REG, size: 8, wmask: qi ? 0x7fff0n : 0n });
    r.define({ offset: DMAR_IQA_REG, size: 8, wmask: qi ? 0xffff_ffff_ffff_f807n : 0n });
    r.define({ offset: DMAR_ICS_REG, size: 4, w1cmask: 1n });
    r.define({ offset: DMAR_IECTL_REG, size: 4, reset: 0x8000_0000n, wmask: 0x8000_0000n });
    r.define({ offset: DMAR_IEDATA_REG, size: 4, wmask: M32 });
    r.define({ offset: DMAR_IEADDR_REG, size: 4, wmask: 0xffff_fffcn });
    r.define({ offset: DMAR_IEUADDR_REG, size: 4, wmask: uaddr });
    r.define({ offset: DMAR_IQER_REG, size: 8 });
    r.define({ offset: DMAR_IRTA_REG, size: 8, wmask: c.ir ? 0xffff_ffff_ffff_f80fn : 0n });
    const prs = c.prs;
    r.define({ offset: DMAR_PQH_REG, size: 8, wmask: prs ? 0x7ffe0n : 0n });
    r.define({ offset: DMAR_PQT_REG, size: 8, wmask: prs ? 0x7ffe0n : 0n });
    r.define({ offset: DMAR_PQA_REG, size: 8, wmask: prs ? 0xffff_ffff_ffff_f007n : 0n });
    r.define({ offset: DMAR_PRS_REG, size: 4, w1cmask: 3n });
    r.define({ offset: DMAR_PECTL_REG, size: 4, reset: 0x8000_0000n, wmask: 0x8000_0000n });
    r.define({ offset: DMAR_PEDATA_REG, size: 4, wmask: M32 });
    r.define({ offset: DMAR_PEADDR_REG, size: 4, wmask: 0xffff_fffcn });
    r.define({ offset: DMAR_PEUADDR_REG, size: 4, wmask: uaddr });
    r.define({ offset: this.#iva, size: 8, wmask: 0xffff_ffff_ffff_f07fn, womask: 0xffff_ffff_ffff_ffffn });
    r.define({ offset: this.#iotlbReg, size: 8, wmask: 0xb003_ffff_0000_0000n });
    for (let i = 0; i < c.numFaultRecords; i++) {
      const off = vtdFrcdOffset(c.fro, i);
      r.define({ offset: off, size: 8 });
      r.define({ offset: off + 8, size: 8, w1cmask: 1n << 63n });
    }
  }

  /** Side effects of a software write to the dword at `off` (the file already applied the masks). */
  #written(off: number): void {
    switch (off) {
      case DMAR_GCMD_REG:
        this.#gcmd();
        return;
      case DMAR_CCMD_REG + 4:
        this.#ccmd();
        return;
      case DMAR_FSTS_REG:
        this.faults.update();
        this.iq.kick();
        return;
      case DMAR_FECTL_REG:
        this.#faultEvent.ctlWritten();
        return;
      case DMAR_IECTL_REG:
        this.#iqEvent.ctlWritten();
        return;
      case DMAR_PECTL_REG:
        this.#prqEvent.ctlWritten();
        return;
      case DMAR_ICS_REG:
        if ((this.regs.get32(DMAR_ICS_REG) & DMA_ICS_IWC) === 0) this.#iqEvent.clearPending();
        return;
      case DMAR_PRS_REG:
        this.prq.statusWritten();
        return;
      case DMAR_IQT_REG:
        this.iq.kick();
        return;
      default:
        if (off === this.#iotlbReg + 4) {
          this.#iotlbRegWrite();
          return;
        }
        if (this.#frcdHiDwords.has(off)) this.faults.update();
    }
  }

  #setGsts(bit: number, on: boolean): void {
    const g = this.regs.get32(DMAR_GSTS_REG);
    this.regs.set32(DMAR_GSTS_REG, on ? (g | bit) >>> 0 : (g & ~bit) >>> 0);
  }

  /** GCMD handshakes (§1.4). The written value is what counts (GCMD itself reads 0). */
  #gcmd(): void {
    const v = this.regs.get32(DMAR_GCMD_REG);
    const gsts = this.regs.get32(DMAR_GSTS_REG);
    const c = this.config;
    if ((v & DMA_GCMD_SRTP) !== 0) {
      const rt = this.regs.get64(DMAR_RTADDR_REG);
      let ttm = Number((rt >> 10n) & 3n);
      if (ttm === VTD_TTM.scalable && !c.smts) ttm = VTD_TTM.reserved;
      if (ttm === VTD_TTM.abortDma && !c.adms) ttm = VTD_TTM.reserved;
      this.#rtaddr = Number(rt & DMA_RTADDR_RTA_MASK);
      this.#ttm = ttm;
      this.#setGsts(DMA_GCMD_SRTP, true);
      if (c.esrtps) this.#flushDmaCaches();
      this.#syncTranslator();
    }
    const te = (v & DMA_GCMD_TE) !== 0;
    if (te !== ((gsts & DMA_GCMD_TE) !== 0)) {
      this.#setGsts(DMA_GCMD_TE, te);
      if (!te && c.smts) this.#flushDmaCaches();
      this.#syncTranslator();
    }
    const qie = (v & DMA_GCMD_QIE) !== 0;
    if (c.qi && qie !== ((gsts & DMA_GCMD_QIE) !== 0)) {
      this.#setGsts(DMA_GCMD_QIE, qie);
      if (qie) this.iq.enable();
      else this.iq.disable();
    }
    if (c.ir) {
      this.#setGsts(DMA_GCMD_IRE, (v & DMA_GCMD_IRE) !== 0);
      this.#setGsts(DMA_GCMD_CFI, (v & DMA_GCMD_CFI) !== 0);
      if ((v & DMA_GCMD_SIRTP) !== 0) this.#setGsts(DMA_GCMD_SIRTP, true);
    }
    // WBF completes at once: WBFS is never seen set.
  }

  #syncTranslator(): void {
    this.translator.setState({ enabled: this.translationEnabled, rtaddr: this.#rtaddr, ttm: this.#ttm });
  }

  #flushDmaCaches(): void {
    this.contextCache.invalidateAll();
    this.pasidCache.invalidateAll();
    this.iotlb.invalidateGlobal();
  }

  #registerInvalidationAllowed(): boolean {
    return (
      (this.regs.get32(DMAR_GSTS_REG) & DMA_GCMD_QIE) === 0 &&
      this.#ttm === VTD_TTM.legacy &&
      this.config.version >> 4 < 6
    );
  }

  /** CCMD with ICC set (§1.6). */
  #ccmd(): void {
    const v = this.regs.get64(DMAR_CCMD_REG);
    if ((v & DMA_CCMD_ICC) === 0n) return;
    const cirg = Number((v >> 61n) & 3n);
    let caig = 0;
    if (cirg !== 0 && this.#registerInvalidationAllowed()) {
      const did = Number(v & 0xffffn);
      const sid = Number((v >> 16n) & 0xffffn);
      const fm = Number((v >> 32n) & 3n);
      this.contextCache.invalidate(cirg === 1 ? 'global' : cirg === 2 ? 'domain' : 'device', did, sid, fm);
      this.stats.registerInvalidations++;
      this.stats.registerContextInvalidations++;
      caig = cirg;
    }
    this.regs.set64(DMAR_CCMD_REG, (v & ~(DMA_CCMD_ICC | (3n << 59n))) | (BigInt(caig) << 59n));
  }

  /** IOTLB_REG with IVT set (§1.7). */
  #iotlbRegWrite(): void {
    const off = this.#iotlbReg;
    const v = this.regs.get64(off);
    if ((v & DMA_TLB_IVT) === 0n) return;
    const iirg = Number((v >> 60n) & 3n);
    const did = Number((v >> 32n) & 0xffffn);
    let iaig = 0;
    if (iirg !== 0 && this.#registerInvalidationAllowed()) {
      const iotlb = this.iotlb;
      if (iirg === 1) {
        iotlb.invalidateGlobal();
        iaig = 1;
      } else if (iirg === 2 || !this.config.psi) {
        iotlb.invalidateDomain(did);
        iaig = 2;
      } else {
        const iva = this.regs.get64(this.#iva);
        const am = Number(iva & 0x3fn);
        if (am <= this.config.mamv) {
          iotlb.invalidatePage(did, iva & ~0xfffn, am, (iva & 0x40n) !== 0n);
          iaig = 3;
        }
      }
      if (iaig !== 0) {
        this.stats.registerInvalidations++;
        this.stats.registerIotlbInvalidations++;
      }
    }
    this.regs.set64(off, (v & ~(DMA_TLB_IVT | (3n << 57n))) | (BigInt(iaig) << 57n));
  }

  #sendMsi(source: VtdEventName, addr: bigint, data: number): void {
    if (this.msiLog.length >= 1024) this.msiLog.shift();
    this.msiLog.push({ source, addr, data });
    this.#msiWrite?.(addr, data);
    this.#irqs[source]?.raise();
  }

  // ---- invalidation descriptors ------------------------------------------------------------------

  #execute(d: Exclude<VtdInvDesc, VtdWaitInvDesc>): void {
    switch (d.type) {
      case 'context-cache':
        this.contextCache.invalidate(d.granularity, d.did, d.sid, d.fm);
        return;
      case 'iotlb':
        if (d.granularity === 'global') this.iotlb.invalidateGlobal();
        else if (d.granularity === 'domain' || !this.config.psi) this.iotlb.invalidateDomain(d.did);
        else this.iotlb.invalidatePage(d.did, d.addr, d.am, d.ih);
        return;
      case 'pasid-iotlb':
        if (d.granularity === 'pasid') this.iotlb.invalidatePasid(d.did, d.pasid);
        else this.iotlb.invalidatePasidPage(d.did, d.pasid, d.addr, d.am, d.ih);
        return;
      case 'pasid-cache':
        this.pasidCache.invalidate(d.granularity, d.did, d.pasid);
        return;
      case 'device-tlb':
        this.#atsInvalidate({ requesterId: d.sid, global: false, addr: d.addr, s: d.s });
        return;
      case 'pasid-device-tlb':
        this.#atsInvalidate({ requesterId: d.sid, pasid: d.pasid, global: d.global, addr: d.addr, s: d.s });
        return;
      case 'iec':
        // Interrupt remapping is not modelled: accepted, nothing cached.
        return;
      case 'page-group-response': {
        const code = d.code as PrgResponseCode;
        this.#sendPrg(
          d.pasidPresent
            ? { requesterId: d.rid, pasid: d.pasid, prgIndex: d.prgIndex, code }
            : { requesterId: d.rid, prgIndex: d.prgIndex, code },
        );
        return;
      }
    }
  }

  #sendPrg(msg: PrgResponseMessage): void {
    this.stats.prgResponses++;
    this.ports.sendPrgResponse(msg);
  }

  #atsInvalidate(base: Omit<AtsInvalidateRequest, 'itag'>): void {
    let set = this.#atsPending.get(base.requesterId);
    if (set === undefined) {
      set = new Set();
      this.#atsPending.set(base.requesterId, set);
    }
    let itag = this.#nextItag;
    for (let k = 0; k < 32 && set.has(itag); k++) itag = (itag + 1) & 31;
    this.#nextItag = (itag + 1) & 31;
    set.add(itag);
    const msg: AtsInvalidateRequest = { ...base, itag };
    this.stats.atsInvalidations++;
    if (this.atsInvalidateLog.length >= 1024) this.atsInvalidateLog.shift();
    this.atsInvalidateLog.push(msg);
    // An absent function never answers: the wait descriptor that follows times out (ITE).
    this.ports.sendAtsInvalidate(msg);
  }

  #atsAbandon(): number {
    const first = this.#atsPending.keys().next();
    this.#atsPending.clear();
    return first.done === true ? 0 : first.value;
  }

  /** Whether ATS invalidations sent by device-TLB descriptors await their completions. */
  get atsInvalidationsPending(): boolean {
    return this.#atsPending.size > 0;
  }

  // ---- IommuHw -----------------------------------------------------------------------------------

  /**
   * Connect an endpoint's port (`IommuHw.connectEndpoint`), for device-TLB invalidations and page
   * group responses.
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
  }

  /**
   * A DMA transaction from an endpoint (`IommuHw.dmaAccess`): every page translated through the
   * context/PASID entries, the IOTLB and the page tables, then performed on `PhysicalMemory`, or a
   * recorded fault (nothing is transferred when any page faults).
   * @param req - the transaction
   * @param data - the bytes of a write
   * @returns the outcome
   */
  dmaAccess(req: DmaRequest, data?: Uint8Array): DmaOutcome {
    if (req.access === 'write' && (data === undefined || data.length !== req.size))
      throw new ErrnoError('EINVAL', `write of ${req.size} bytes needs exactly that much data`);
    this.stats.dma++;
    const t = this.translator;
    const write = req.access === 'write';
    const sourceId = req.requesterId & 0xffff;
    const chunks: number[] = [];
    let addr = req.addr;
    let left = req.size;
    while (left > 0) {
      const txn: VtdTransaction = {
        sourceId,
        pasid: req.pasid,
        addr,
        write,
        exec: req.exec,
        privileged: req.privileged,
        atsTranslated: req.atsTranslated,
      };
      const r = t.translate(txn);
      if (r.kind === 'fault') {
        if (r.record) this.faults.record(r.fault);
        else this.faults.suppress(r.fault);
        this.stats.faulted++;
        return vtdDmaFault(r.fault);
      }
      if (left <= r.span && chunks.length === 0) {
        // The common case: the whole access lies in one translated page.
        const out = accessPhysicalMemory(this.memory, BigInt(r.pa), req, data);
        if (out.kind === 'completed') this.stats.completed++;
        else this.stats.faulted++;
        return out;
      }
      const n = Math.min(left, r.span);
      chunks.push(r.pa, n);
      addr += BigInt(n);
      left -= n;
    }
    const out = this.#transfer(req, chunks, data);
    if (out.kind === 'completed') this.stats.completed++;
    else this.stats.faulted++;
    return out;
  }

  #transfer(req: DmaRequest, chunks: number[], data: Uint8Array | undefined): DmaOutcome {
    const buf = req.access === 'read' ? new Uint8Array(req.size) : undefined;
    let pos = 0;
    for (let i = 0; i < chunks.length; i += 2) {
      const pa = chunks[i] as number;
      const n = chunks[i + 1] as number;
      const part = { access: req.access, size: n, addr: req.addr + BigInt(pos) };
      const out = accessPhysicalMemory(this.memory, BigInt(pa), part, data?.subarray(pos, pos + n));
      if (out.kind !== 'completed') return out;
      if (buf !== undefined && out.data !== undefined) buf.set(out.data, pos);
      pos += n;
    }
    return buf === undefined ? { kind: 'completed' } : { kind: 'completed', data: buf };
  }

  /**
   * A PCIe ATS Translation Request (`IommuHw.atsTranslate`).
   * @param req - the request
   * @returns the Translation Completion
   */
  atsTranslate(req: AtsTranslationRequest): AtsCompletion {
    this.stats.atsRequests++;
    const r = this.translator.atsTranslate(req);
    if (r.fault !== undefined) {
      if (r.fault.record) this.faults.record(r.fault.fault);
      else this.faults.suppress(r.fault.fault);
    }
    return r.completion;
  }

  /**
   * A PCIe PRI Page Request from an endpoint (`IommuHw.pageRequest`).
   *
   * @remarks
   * Without ECAP.PRS, with DMA remapping disabled, in legacy mode (fault 0x32), or when the
   * device's scalable-mode context entry cannot be used (its structure fault), has PRE clear
   * (fault 0x47), or does not admit the request's PASID (0x45 PASIDE clear, 0x46 beyond the
   * directory), the request is not queued; the last request of a group is answered "Invalid
   * Request" at once. Otherwise it goes to the page request queue.
   */
  pageRequest(msg: PageRequestMessage): void {
    this.stats.pageRequests++;
    const refuse = (reason?: number): void => {
      if (reason !== undefined) this.faults.record(pageRequestFault(msg, reason));
      if (msg.last && (msg.read || msg.write))
        this.#sendPrg(PASSTHROUGH_PRG(msg, PRG_RESPONSE.INVALID_REQUEST));
    };
    if (!this.config.prs || !this.translationEnabled) {
      refuse();
      return;
    }
    if (this.#ttm !== VTD_TTM.scalable) {
      refuse(this.#ttm === VTD_TTM.legacy ? VTD_FR.SM_PRQ_IN_LEGACY : undefined);
      return;
    }
    const c = this.contextCache.lookup(this.#rtaddr, this.#ttm, msg.requesterId & 0xffff);
    if (c.kind === 'fault') {
      refuse(c.reason);
      return;
    }
    if (c.entry.mode !== 'scalable' || !c.entry.present) {
      refuse(VTD_FR.SM_CTX_P);
      return;
    }
    if (!c.entry.pre) {
      refuse(VTD_FR.SM_CTX_PRE);
      return;
    }
    const rp = resolveRequestPasid(c.entry, msg.pasid, this.config);
    if (rp.kind === 'fault') {
      refuse(rp.reason);
      return;
    }
    this.prq.enqueue(msg);
  }

  /**
   * An ATS Invalidate Completion from an endpoint (`IommuHw.atsInvalidateCompletion`).
   * @param msg - the completion
   */
  atsInvalidateCompletion(msg: AtsInvalidateCompletion): void {
    const set = this.#atsPending.get(msg.requesterId);
    let bad = false;
    for (let i = 0; i < 32; i++) {
      if ((msg.itagVector & (1 << i)) === 0) continue;
      if (set?.delete(i) === true) continue;
      bad = true;
    }
    if (msg.itagVector === 0) bad = true;
    if (set !== undefined && set.size === 0) this.#atsPending.delete(msg.requesterId);
    if (bad) {
      this.stats.badCompletions++;
      const r = this.regs;
      r.set64(
        DMAR_IQER_REG,
        (r.get64(DMAR_IQER_REG) & ~(0xffffn << 48n)) | (BigInt(msg.requesterId & 0xffff) << 48n),
      );
      this.faults.setError(DMA_FSTS_ICE);
    }
    if (this.#atsPending.size === 0) this.iq.kick();
  }
}

/** The fault a refused page request records. */
function pageRequestFault(msg: PageRequestMessage, reason: number): VtdFault {
  return {
    reason,
    sourceId: msg.requesterId & 0xffff,
    addr: msg.addr,
    write: msg.write,
    pasidPresent: msg.pasid !== undefined,
    pasid: msg.pasid ?? 0,
    exec: msg.exec,
    privileged: msg.privileged,
    addressType: 0,
  };
}

/**
 * The iommu-core DMA fault a device sees for a VT-d fault.
 * @param f - the fault
 * @returns a `'fault'` outcome with the FR code in `code`
 */
export function vtdDmaFault(f: VtdFault): DmaFault {
  return {
    kind: 'fault',
    reason: vtdDmaFaultReason(f.reason),
    addr: f.addr,
    code: f.reason,
    detail: `VT-d fault reason 0x${f.reason.toString(16).padStart(2, '0')}`,
  };
}
