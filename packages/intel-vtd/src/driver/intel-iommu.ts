/**
 * One DMA-remapping unit as the Linux driver sees it (`struct intel_iommu`): register probe
 * (drivers/iommu/intel/dmar.c `alloc_iommu`, `map_iommu`), the per-unit part of `init_dmars`
 * (queued invalidation, DIDs, root table, SRTP, page request queue, fault interrupt), translation
 * enable, the domain-ID allocator and registration with the IOMMU core (digest §8.1, §8.2).
 *
 * @remarks
 * The unit reaches the hardware only through its `MmioRegion`, the machine's `PhysicalMemory` and
 * interrupt lines (the hardware boundary of ARCHITECTURE.md).
 */

import { ErrnoError, type IrqLine, IrqReturn, type Scheduler } from '@iommu-ts/base';
import type { IopfQueue } from '@iommu-ts/io-pgfault';
import {
  type Device,
  type FwNode,
  IommuDevice,
  type IommuOps,
  type IommuSubsystem,
  type MmioRegion,
} from '@iommu-ts/iommu-core';
import type { PhysicalMemory } from '@iommu-ts/mm';
import { type DmarFaultRecord, dmarFault } from './fault.js';
import { intelEnablePrq, prqEventThread } from './prq.js';
import {
  dmarEnableQi,
  type IntelQi,
  iommuFlushContextReg,
  iommuFlushIotlbReg,
  qiFlushContext,
  qiFlushIotlb,
  qiFlushPasidCacheGlobal,
} from './qi.js';
import {
  capCachingMode,
  capEsrtps,
  capFaultRegOffset,
  capFl5lpSupport,
  capMgaw,
  capNdoms,
  capNumFaultRegs,
  capPhmr,
  capPlmr,
  capRwbf,
  capSagaw,
  DMA_FECTL_IM,
  DMA_GCMD_SRTP,
  DMA_GCMD_TE,
  DMA_GCMD_WBF,
  DMA_GSTS_IRES,
  DMA_GSTS_QIES,
  DMA_GSTS_RTPS,
  DMA_GSTS_TES,
  DMA_GSTS_WBFS,
  DMA_PMEN_EPM,
  DMA_PMEN_PRS,
  DMA_RTADDR_SMT,
  DMAR_CAP_REG,
  DMAR_ECAP_REG,
  DMAR_FECTL_REG,
  DMAR_FSTS_REG,
  DMAR_GCMD_REG,
  DMAR_GSTS_REG,
  DMAR_PMEN_REG,
  DMAR_RTADDR_REG,
  DMAR_VER_REG,
  ecapFlts,
  ecapIotlbOffset,
  ecapNest,
  ecapPasid,
  ecapPrs,
  ecapPss,
  ecapQis,
  ecapSlads,
  ecapSlts,
  ecapSmpwc,
  ecapSmts,
  FLPT_DEFAULT_DID,
  IDA_START_DID,
  PRIMARY_FAULT_REG_LEN,
} from './regs.js';

// ---- shapes ----------------------------------------------------------------------------------------

/** Interrupt lines of a unit (Linux requests separate MSI vectors for faults and page requests). */
export interface IntelIommuIrqs {
  /** The fault event line (FECTL block: primary faults, IQE/ITE/ICE). */
  readonly fault?: IrqLine;
  /** The page request event line (PECTL block). */
  readonly prq?: IrqLine;
}

/** Driver options (kernel command line `intel_iommu=` and build defaults). */
export interface IntelIommuDriverOptions {
  /**
   * Use scalable mode when the unit has ECAP.SMTS (`intel_iommu=sm_on`, the build default
   * CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON). Default true; false is `sm_off`.
   */
  readonly scalableMode?: boolean;
  /** Use queued invalidation when available (false forces the register path, like `qi` disabled). Default true. */
  readonly queuedInvalidation?: boolean;
  /** Poll budget in scheduler steps before a poll times out (Linux: `DMAR_OPERATION_TIMEOUT`). Default 100000. */
  readonly pollSteps?: number;
}

/** Constructor options of {@link IntelIommu}. */
export interface IntelIommuOptions {
  /** The IOMMU core to register with. */
  readonly iommu: IommuSubsystem;
  /** The unit's register region (`VtdModel.mmio` in tests). */
  readonly mmio: MmioRegion;
  /** The machine's RAM: root/context/PASID tables, queues and page tables live here. */
  readonly memory: PhysicalMemory;
  /** The scheduler the unit and its interrupts run on. */
  readonly scheduler: Scheduler;
  /** Interrupt lines wired to the unit (absent: the driver runs the handlers itself when polled). */
  readonly irqs?: IntelIommuIrqs;
  /** Instance name (Linux `dmar%d`; default `'dmar0'`). */
  readonly name?: string;
  /** The unit's firmware node (matched against device fwspecs); default: a node named after the unit. */
  readonly fwnode?: FwNode | null;
  /** Register base address from the DRHD (only printed). Default 0. */
  readonly regBaseAddr?: bigint;
  /** PCI segment of the unit. Default 0. */
  readonly segment?: number;
  /** Driver options. */
  readonly options?: IntelIommuDriverOptions;
  /** Log sink called for every message in addition to {@link IntelIommu.log}. */
  readonly onLog?: (entry: IntelIommuLogEntry) => void;
}

/** A message the driver logged (`pr_err`, `pr_info`, …), text exactly as Linux prints it. */
export interface IntelIommuLogEntry {
  /** Severity. */
  readonly level: 'err' | 'warn' | 'info';
  /** The text, including Linux's `DMAR: ` prefix where Linux prints one. */
  readonly message: string;
}

/** Counters of an {@link IntelIommu}. */
export interface IntelIommuStats {
  /** Descriptors submitted through the invalidation queue (not counting wait descriptors). */
  qiDescs: number;
  /** Synchronous submissions (one wait descriptor each). */
  qiSubmits: number;
  /** IQE recoveries performed. */
  qiIqe: number;
  /** ITE aborts seen. */
  qiIte: number;
  /** Register-based invalidations (CCMD / IOTLB_REG). */
  regFlushes: number;
  /** Write-buffer flushes performed. */
  writeBufferFlushes: number;
  /** Fault records consumed by the fault handler. */
  faults: number;
  /** Page request descriptors consumed. */
  prqRequests: number;
  /** Page group responses sent. */
  pageResponses: number;
}

/** Minimal record of a device probed on this unit, used by the PRQ thread to find it by requester ID. */
export interface IntelIommuDeviceEntry {
  /** The device. */
  readonly dev: Device;
  /** `info->pri_enabled`-like flag: page requests of this device are reported to io-pgfault. */
  readonly iopfEnabled?: boolean;
}

// ---- the unit --------------------------------------------------------------------------------------

/**
 * One VT-d unit (`struct intel_iommu`).
 *
 * @remarks
 * Life cycle as `intel_iommu_init`: construct, {@link IntelIommu.probe} (CAP/ECAP, `alloc_iommu`),
 * {@link IntelIommu.initDmar} (the per-unit steps of `init_dmars`), {@link IntelIommu.register}
 * (IOMMU core; probes devices while translation is still off), {@link IntelIommu.enableTranslation}.
 * `intelIommuProbe` in intel-iommu-ops.ts does all four.
 */
export class IntelIommu {
  /** Instance name (`iommu->name`, `dmar0` …). */
  readonly name: string;
  /** The IOMMU core. */
  readonly iommu: IommuSubsystem;
  /** The register region. */
  readonly mmio: MmioRegion;
  /** The machine's RAM. */
  readonly memory: PhysicalMemory;
  /** The scheduler. */
  readonly scheduler: Scheduler;
  /** Interrupt lines. */
  readonly irqs: IntelIommuIrqs;
  /** Firmware node. */
  readonly fwnode: FwNode | null;
  /** `struct iommu_device` registered with the core. */
  readonly iommuDevice: IommuDevice;
  /** Driver options as given. */
  readonly driverOptions: IntelIommuDriverOptions;
  /** Register base address (from the DRHD; printed only). */
  readonly regBaseAddr: bigint;
  /** PCI segment. */
  readonly segment: number;

  /** VER register (after probe). */
  ver = 0;
  /** CAP register (after probe). */
  cap = 0n;
  /** ECAP register (after probe). */
  ecap = 0n;
  /** `iommu->agaw`: AGAW index used for translating domains (−1 before probe). */
  agaw = -1;
  /** `iommu->msagaw`: largest supported AGAW index (identity context entries). */
  msagaw = -1;
  /** Maximum PASIDs (2 shifted left by PSS when PASID is usable, else 0). */
  maxPasids = 0;
  /** `iommu->gcmd`: shadow of the persistent GCMD bits (TE, QIE, IRE, CFI). */
  gcmd = 0;
  /** `iommu->root_entry`: physical address of the root table (0 before {@link IntelIommu.initDmar}). */
  rootEntry = 0;
  /** `iommu->qi`: queued-invalidation state (`null` on the register path). */
  qi: IntelQi | null = null;
  /** Physical address of the page request queue (0 when not enabled). */
  prq = 0;
  /** The IOPF queue of this unit (`iommu->iopf_queue`), allocated when the PRQ is enabled. */
  iopfQueue: IopfQueue | null = null;
  /** Whether translation is enabled (GSTS.TES as last written). */
  translationEnabled = false;
  /** Requester ID (`bus << 8 | devfn`) → device probed on this unit (`iommu->device_rbtree`). */
  readonly devices = new Map<number, IntelIommuDeviceEntry>();
  /** Messages logged, oldest first (capped at 1000). */
  readonly log: IntelIommuLogEntry[] = [];
  /** Counters. */
  readonly stats: IntelIommuStats = {
    qiDescs: 0,
    qiSubmits: 0,
    qiIqe: 0,
    qiIte: 0,
    regFlushes: 0,
    writeBufferFlushes: 0,
    faults: 0,
    prqRequests: 0,
    pageResponses: 0,
  };
  /** Whether {@link IntelIommu.probe} succeeded and the unit translates DMA (not ignored). */
  probed = false;
  /** Whether {@link IntelIommu.register} succeeded. */
  registered = false;

  readonly #onLog: ((entry: IntelIommuLogEntry) => void) | undefined;
  /** DIDs in use (`iommu->domain_ida`). */
  readonly #dids = new Set<number>();
  #irqsRequested = false;

  /** @param opts - see {@link IntelIommuOptions} */
  constructor(opts: IntelIommuOptions) {
    this.name = opts.name ?? 'dmar0';
    this.iommu = opts.iommu;
    this.mmio = opts.mmio;
    this.memory = opts.memory;
    this.scheduler = opts.scheduler;
    this.irqs = opts.irqs ?? {};
    this.fwnode = opts.fwnode === undefined ? { name: this.name } : opts.fwnode;
    this.driverOptions = opts.options ?? {};
    this.regBaseAddr = opts.regBaseAddr ?? 0n;
    this.segment = opts.segment ?? 0;
    this.#onLog = opts.onLog;
    this.iommuDevice = new IommuDevice(this.name, { fwnode: this.fwnode });
  }

  // ---- capability predicates (iommu.h) -------------------------------------------------------------

  /** `sm_supported`: scalable mode in use (ECAP.SMTS and the `scalableMode` option). */
  get smSupported(): boolean {
    return this.driverOptions.scalableMode !== false && ecapSmts(this.ecap);
  }
  /** `pasid_supported`: scalable mode and ECAP.PASID. */
  get pasidSupported(): boolean {
    return this.smSupported && ecapPasid(this.ecap);
  }
  /** `ssads_supported`: scalable mode, SLADS and SMPWC (dirty tracking). */
  get ssadsSupported(): boolean {
    return this.smSupported && ecapSlads(this.ecap) && ecapSmpwc(this.ecap);
  }
  /** `nested_supported`: scalable mode and NEST. */
  get nestedSupported(): boolean {
    return this.smSupported && ecapNest(this.ecap);
  }
  /** CAP.CM: caching mode (every present-bit change needs an invalidation). */
  get cachingMode(): boolean {
    return capCachingMode(this.cap);
  }
  /** Number of domain IDs (`cap_ndoms`). */
  get ndoms(): number {
    return capNdoms(this.cap);
  }
  /** Byte offset of the IOTLB register pair (`ecap_iotlb_offset`). */
  get iotlbRegOffset(): number {
    return ecapIotlbOffset(this.ecap);
  }

  // ---- logging and polling -------------------------------------------------------------------------

  /**
   * Record a message in {@link IntelIommu.log} and pass it to the `onLog` sink.
   * @param level - severity
   * @param message - the exact text
   */
  logMessage(level: IntelIommuLogEntry['level'], message: string): void {
    const entry = { level, message };
    this.log.push(entry);
    if (this.log.length > 1000) this.log.shift();
    this.#onLog?.(entry);
  }

  /**
   * Poll until `cond` holds, running the scheduler in between (`IOMMU_WAIT_OP`).
   * @param cond - the condition
   * @returns whether it held within the poll budget (false also when called from inside a task
   *   and the condition does not hold yet)
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
   * Write GCMD = shadow | `oneShot` and poll GSTS until `done` holds (`dmar_writel` + `IOMMU_WAIT_OP`).
   * @param value - the full GCMD value to write
   * @param done - condition on GSTS
   * @param what - operation name for the time-out error
   * @throws `ErrnoError` `ETIMEDOUT` when GSTS never satisfies `done`
   */
  writeGcmdSync(value: number, done: (gsts: number) => boolean, what: string): void {
    this.mmio.writel(DMAR_GCMD_REG, value >>> 0);
    if (!this.pollUntil(() => done(this.mmio.readl(DMAR_GSTS_REG) >>> 0)))
      throw new ErrnoError('ETIMEDOUT', `${this.name}: ${what} timed out`);
  }

  // ---- probe (alloc_iommu / map_iommu) -------------------------------------------------------------

  /**
   * Read VER/CAP/ECAP and derive agaw, msagaw and the PASID limit (`alloc_iommu`, `map_iommu`,
   * `iommu_calculate_agaw`; digest §8.1 steps 1–4). Seeds the GCMD shadow from GSTS and prints
   * Linux's "reg_base_addr" line. Nothing is written to the unit.
   * @throws `ErrnoError` `ENODEV` when the unit is ignored: no usable AGAW (CAP.SAGAW = 0) unless it
   *   is a scalable-mode unit without second-level support; `EINVAL` when the register window is
   *   smaller than the IOTLB or fault-recording registers need
   */
  probe(): void {
    this.ver = this.mmio.readl(DMAR_VER_REG) >>> 0;
    this.cap = this.mmio.readq(DMAR_CAP_REG);
    this.ecap = this.mmio.readq(DMAR_ECAP_REG);
    const need = Math.max(
      this.iotlbRegOffset + 16,
      capFaultRegOffset(this.cap) + capNumFaultRegs(this.cap) * PRIMARY_FAULT_REG_LEN,
    );
    if (need > this.mmio.size)
      throw new ErrnoError(
        'EINVAL',
        `${this.name}: register window 0x${this.mmio.size.toString(16)} too small`,
      );
    const sagaw = capSagaw(this.cap);
    // Ignore rule: no SL AGAW and not an SM unit that only does first-level translation.
    const smNoSl = ecapSmts(this.ecap) && !ecapSlts(this.ecap);
    if (sagaw === 0 && !smNoSl) {
      this.logMessage(
        'err',
        `DMAR: ${this.name}: No supported address widths. Not attempting DMA translation.`,
      );
      throw new ErrnoError('ENODEV', `${this.name}: no supported address widths`);
    }
    const used = calculateSagaw(this);
    this.msagaw = calculateAgaw(used, 64);
    this.agaw = calculateAgaw(used, 57);
    if (this.agaw < 0) {
      this.logMessage('err', `DMAR: Cannot get a valid agaw for iommu (seq_id = ${this.name})`);
      throw new ErrnoError('ENODEV', `${this.name}: no valid agaw`);
    }
    this.maxPasids = this.pasidSupported ? 2 << ecapPss(this.ecap) : 0;
    this.iommuDevice.maxPasids = this.maxPasids;
    const gsts = this.mmio.readl(DMAR_GSTS_REG) >>> 0;
    this.gcmd = gsts & (DMA_GSTS_IRES | DMA_GSTS_TES | DMA_GSTS_QIES);
    this.translationEnabled = (gsts & DMA_GSTS_TES) !== 0;
    const v = `${(this.ver >>> 4) & 0xf}:${this.ver & 0xf}`;
    this.logMessage(
      'info',
      `DMAR: ${this.name}: reg_base_addr ${this.regBaseAddr.toString(16)} ver ${v} cap ${this.cap.toString(16)} ecap ${this.ecap.toString(16)}`,
    );
    this.probed = true;
  }

  // ---- init_dmars ----------------------------------------------------------------------------------

  /**
   * The per-unit steps of `init_dmars` (digest §8.1): queued invalidation (disable a firmware-left
   * QI after draining faults, then enable; else the register path), reserve DIDs 0 and 1, disable
   * translation left on by firmware, allocate the root table, write-buffer flush, set the root
   * pointer (with global context-cache, PASID-cache and IOTLB invalidations unless CAP.ESRTPS),
   * enable the PRQ (ECAP.PRS, scalable mode), set up the fault interrupt and clear old faults.
   * @throws `ErrnoError` `EINVAL` before {@link IntelIommu.probe}; `ETIMEDOUT` when a GCMD
   *   handshake or an invalidation never completes; `ENOMEM` when table or queue pages cannot be
   *   allocated
   */
  initDmar(): void {
    if (!this.probed) throw new ErrnoError('EINVAL', `${this.name}: initDmar before probe`);
    // Queued invalidation.
    if (this.driverOptions.queuedInvalidation !== false && ecapQis(this.ecap)) {
      if (this.qi === null) {
        dmarFault(this); // drain faults left by firmware
        dmarEnableQi(this);
      }
    } else {
      this.logMessage('info', `DMAR: ${this.name}: Using Register based invalidation`);
    }
    // DIDs 0 and 1 are reserved.
    this.#dids.add(0);
    this.#dids.add(FLPT_DEFAULT_DID);
    // Translation left on by firmware (not a kdump kernel): turn it off.
    if (this.translationEnabled) this.disableTranslation();
    // Root table.
    if (this.rootEntry === 0) this.rootEntry = this.memory.allocPages(0, { zero: true });
    this.flushWriteBuffer();
    this.setRootEntry();
    this.flushWriteBuffer();
    // Page requests.
    if (this.pasidSupported && ecapPrs(this.ecap)) intelEnablePrq(this);
    // Fault interrupt, then clear old faults.
    this.#requestIrqs();
    dmarFault(this);
    const fsts = this.mmio.readl(DMAR_FSTS_REG) >>> 0;
    this.mmio.writel(DMAR_FSTS_REG, fsts);
  }

  /**
   * Program RTADDR and SRTP, then flush the structure caches unless CAP.ESRTPS
   * (`iommu_set_root_entry`).
   * @throws `ErrnoError` `ETIMEDOUT` when RTPS never sets or an invalidation never completes
   */
  setRootEntry(): void {
    const addr = BigInt(this.rootEntry) | (this.smSupported ? DMA_RTADDR_SMT : 0n);
    this.mmio.writeq(DMAR_RTADDR_REG, addr);
    this.writeGcmdSync(this.gcmd | DMA_GCMD_SRTP, (s) => (s & DMA_GSTS_RTPS) !== 0, 'set root pointer');
    if (capEsrtps(this.cap)) return;
    this.flushContext(0, 0, 0, 'global');
    if (this.smSupported) this.flushPasidCacheGlobal();
    this.flushIotlb(0, 0n, 0, 'global');
  }

  /**
   * Flush the write buffer when CAP.RWBF (`iommu_flush_write_buffer`): GCMD.WBF, poll WBFS clear.
   * @throws `ErrnoError` `ETIMEDOUT` when WBFS never clears
   */
  flushWriteBuffer(): void {
    if (!capRwbf(this.cap)) return;
    this.stats.writeBufferFlushes++;
    this.writeGcmdSync(this.gcmd | DMA_GCMD_WBF, (s) => (s & DMA_GSTS_WBFS) === 0, 'write buffer flush');
  }

  /**
   * Context-cache invalidation through the queue or CCMD (`iommu->flush.flush_context`).
   * @param did - domain ID
   * @param sid - requester ID (device granularity)
   * @param fm - function mask 0…3
   * @param granularity - `'global'`, `'domain'` or `'device'`
   * @throws `ErrnoError` from the queue or `ETIMEDOUT` on the register path
   */
  flushContext(did: number, sid: number, fm: number, granularity: 'global' | 'domain' | 'device'): void {
    if (this.qi !== null) qiFlushContext(this, did, sid, fm, granularity);
    else iommuFlushContextReg(this, did, sid, fm, granularity);
  }

  /**
   * IOTLB invalidation through the queue or the IOTLB registers (`iommu->flush.flush_iotlb`).
   * @param did - domain ID
   * @param addr - IOVA (page granularity)
   * @param sizeOrder - AM: 2^sizeOrder pages (page granularity)
   * @param granularity - `'global'`, `'domain'` or `'page'`
   * @throws `ErrnoError` from the queue or `ETIMEDOUT` on the register path
   */
  flushIotlb(did: number, addr: bigint, sizeOrder: number, granularity: 'global' | 'domain' | 'page'): void {
    if (this.qi !== null) qiFlushIotlb(this, did, addr, sizeOrder, granularity);
    else iommuFlushIotlbReg(this, did, addr, sizeOrder, granularity);
  }

  /**
   * Global PASID-cache invalidation (`qi_flush_pasid_cache(iommu, 0, QI_PC_GLOBAL, 0)`); only with QI.
   * @throws `ErrnoError` from the queue
   */
  flushPasidCacheGlobal(): void {
    if (this.qi !== null) qiFlushPasidCacheGlobal(this);
  }

  /**
   * Enable translation (`iommu_enable_translation`): GCMD |= TE, poll TES; then disable protected
   * memory regions (`iommu_disable_protect_mem_regions`).
   * @throws `ErrnoError` `ETIMEDOUT` when TES never sets
   */
  enableTranslation(): void {
    this.gcmd = (this.gcmd | DMA_GCMD_TE) >>> 0;
    this.writeGcmdSync(this.gcmd, (s) => (s & DMA_GSTS_TES) !== 0, 'enable translation');
    this.translationEnabled = true;
    if (capPlmr(this.cap) || capPhmr(this.cap)) {
      const pmen = this.mmio.readl(DMAR_PMEN_REG) >>> 0;
      this.mmio.writel(DMAR_PMEN_REG, (pmen & ~DMA_PMEN_EPM) >>> 0);
      if (!this.pollUntil(() => (this.mmio.readl(DMAR_PMEN_REG) & DMA_PMEN_PRS) === 0))
        throw new ErrnoError('ETIMEDOUT', `${this.name}: protected memory disable timed out`);
    }
  }

  /**
   * Disable translation (`iommu_disable_translation`): GCMD &= ~TE, poll TES clear.
   * @throws `ErrnoError` `ETIMEDOUT` when TES never clears
   */
  disableTranslation(): void {
    this.gcmd = (this.gcmd & ~DMA_GCMD_TE) >>> 0;
    this.writeGcmdSync(this.gcmd >>> 0, (s) => (s & DMA_GSTS_TES) === 0, 'disable translation');
    this.translationEnabled = false;
  }

  // ---- domain IDs ----------------------------------------------------------------------------------

  /**
   * Allocate the lowest free DID ≥ 2 (Linux `ida_alloc_range` on `iommu->domain_ida` from
   * `IDA_START_DID` to `cap_ndoms - 1`, digest §8.2).
   * @returns the DID
   * @throws `ErrnoError` `ENOSPC` when all DIDs are in use
   */
  allocDid(): number {
    const n = this.ndoms;
    for (let d = IDA_START_DID; d < n; d++) {
      if (!this.#dids.has(d)) {
        this.#dids.add(d);
        return d;
      }
    }
    this.logMessage('err', `DMAR: ${this.name}: No free domain ids`);
    throw new ErrnoError('ENOSPC', `${this.name}: no free domain ids`);
  }

  /**
   * Release a DID (`ida_free`). DIDs 0 and 1 are never released.
   * @param did - a DID from {@link IntelIommu.allocDid}
   */
  freeDid(did: number): void {
    if (did < IDA_START_DID) return;
    this.#dids.delete(did);
  }

  /**
   * Whether a DID is in use.
   * @param did - the DID
   * @returns true for DIDs 0, 1 (after {@link IntelIommu.initDmar}) and allocated DIDs
   */
  didInUse(did: number): boolean {
    return this.#dids.has(did);
  }

  // ---- registration --------------------------------------------------------------------------------

  /**
   * Register with the IOMMU core (`iommu_device_register(&iommu->iommu, &intel_iommu_ops, NULL)`).
   * Devices behind the unit are probed and get their default domains now.
   * @param ops - the `IommuOps` (`intelIommuOps(iommu)` builds the driver's)
   * @throws `ErrnoError` `EINVAL` before {@link IntelIommu.initDmar}; errors of `iommuDeviceRegister`
   */
  register(ops: IommuOps): void {
    if (this.rootEntry === 0) throw new ErrnoError('EINVAL', `${this.name}: register before initDmar`);
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
   * Run the fault handler now (what the fault interrupt does; tests and callers without a fault
   * line use it).
   * @returns the fault records handled, oldest first
   */
  handleFault(): DmarFaultRecord[] {
    return dmarFault(this);
  }

  /** Run the page request thread now (what the PRQ interrupt does). */
  handlePrq(): void {
    prqEventThread(this);
  }

  /** `dmar_set_interrupt` / `dmar_fault` and `intel_svm_enable_prq`'s IRQ request. */
  #requestIrqs(): void {
    if (this.#irqsRequested) return;
    this.#irqsRequested = true;
    const fault = this.irqs.fault;
    if (fault !== undefined) {
      fault.requestIrq(() => {
        dmarFault(this);
        return IrqReturn.HANDLED;
      });
      this.mmio.writel(DMAR_FECTL_REG, 0); // unmask
    } else {
      this.mmio.writel(DMAR_FECTL_REG, DMA_FECTL_IM);
    }
  }
}

/**
 * Best AGAW index for an address width (`__iommu_calculate_agaw`): starting from
 * `width_to_agaw(maxGaw)` = ceil((maxGaw − 30) / 9), the largest index set in SAGAW.
 * @param sagaw - SAGAW bitmap (bit i ⇔ AGAW i)
 * @param maxGaw - maximum width in bits (57 for `iommu_calculate_agaw`, 64 for
 *   `iommu_calculate_max_sagaw`)
 * @returns the AGAW index, or −1 when none fits
 */
export function calculateAgaw(sagaw: number, maxGaw: number): number {
  for (let i = Math.min(Math.ceil((maxGaw - 30) / 9), 4); i >= 0; i--) if ((sagaw & (1 << i)) !== 0) return i;
  return -1;
}

/**
 * The SAGAW the driver uses (`__iommu_calculate_sagaw`): the second-level SAGAW in legacy mode or
 * without FLTS; the first-level widths (4-level, plus 5-level with FL5LP) without SLTS; else both.
 * @param iommu - the unit (CAP/ECAP read)
 * @returns SAGAW bitmap
 */
export function calculateSagaw(iommu: IntelIommu): number {
  const sl = capSagaw(iommu.cap);
  const fl = (1 << 2) | (capFl5lpSupport(iommu.cap) ? 1 << 3 : 0);
  if (!iommu.smSupported || !ecapFlts(iommu.ecap)) return sl;
  if (!ecapSlts(iommu.ecap)) return fl;
  return fl & sl;
}

/**
 * Address width in bits of an AGAW index (`agaw_to_width`): 30 + 9·agaw.
 * @param agaw - AGAW index
 * @returns width in bits
 */
export function agawToWidth(agaw: number): number {
  return 30 + 9 * agaw;
}

/**
 * Page-table levels of an AGAW index (`agaw_to_level`): agaw + 2.
 * @param agaw - AGAW index
 * @returns number of levels
 */
export function agawToLevel(agaw: number): number {
  return agaw + 2;
}

/**
 * MGAW of a unit (`cap_mgaw`), exposed for domain sizing.
 * @param iommu - the unit
 * @returns width in bits
 */
export function iommuMgaw(iommu: IntelIommu): number {
  return capMgaw(iommu.cap);
}

/**
 * Whether a unit supports first-level, second-level or both translation types in scalable mode.
 * @param iommu - the unit
 * @returns `{ fl, sl }` from ECAP.FLTS / ECAP.SLTS (false/true in legacy mode)
 */
export function iommuTranslationTypes(iommu: IntelIommu): { fl: boolean; sl: boolean } {
  if (!iommu.smSupported) return { fl: false, sl: true };
  return { fl: ecapFlts(iommu.ecap), sl: ecapSlts(iommu.ecap) };
}
