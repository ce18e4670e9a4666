/**
 * The DMA API on IOMMU DMA domains (drivers/iommu/dma-iommu.c): the IOVA cookie of a DMA domain,
 * `iommu_dma_init_domain`, IOVA allocation under the device's DMA mask with the 32-bit-first
 * policy for PCI, `map_page`/`unmap_page`, `map_sg`/`unmap_sg`, coherent allocations, and the
 * flush queue of DMA_FQ domains (deferred IOVA freeing behind batched IOTLB flushes on a timer).
 *
 * @remarks
 * Units: `size` arguments are **bytes**; DMA addresses are `bigint` (`dma_addr_t`, u64); physical
 * addresses are accepted as `number` (as `@iommu-ts/mm` gives them) or `bigint`. The IOVA
 * allocator below works in granule units (PFNs, see iova.ts).
 *
 * Errors: the streaming map functions return {@link DMA_MAPPING_ERROR}; `iommuDmaMapSg` throws
 * `ErrnoError` where `iommu_dma_map_sg` returns `-errno` (`ENOMEM`, `EINVAL`, `EIO`); coherent
 * allocation returns `null` where Linux returns NULL; `iommuDmaInitDomain` throws `ErrnoError`
 * (`EINVAL`, `EFAULT`, `EEXIST`).
 *
 * Not modelled: swiotlb bouncing of unaligned buffers for untrusted devices, CPU cache maintenance
 * for non-coherent devices (counted, not performed), the MSI cookie and doorbell mappings, the
 * remapped (page-array + vmap) coherent allocator — coherent buffers are always physically
 * contiguous, as with `DMA_ATTR_FORCE_CONTIGUOUS` — and PCI host-bridge window reservation.
 */

import { ErrnoError, type Scheduler, type Timer } from '@iommu-ts/base';
import { IommuIotlbGather } from '@iommu-ts/io-pgtable';
import type { PhysicalMemory } from '@iommu-ts/mm';
import type { Device } from './device.js';
import {
  DMA_ATTR_MMIO,
  DMA_ATTR_PRIVILEGED,
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_MAPPING_ERROR,
  DmaDataDirection,
  devIsDmaCoherent,
  dmaGetMaxSegSize,
  dmaGetSegBoundary,
} from './dma-mapping.js';
import {
  __IOMMU_DOMAIN_DMA_API,
  IOMMU_CACHE,
  IOMMU_DOMAIN_DMA,
  IOMMU_DOMAIN_DMA_FQ,
  IOMMU_MMIO,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  type IommuDomain,
  IommuDomainCookieType,
} from './domain.js';
import { IommuCap } from './iommu-ops.js';
import type { IommuSubsystem } from './iommu-subsystem.js';
import { IovaDomain } from './iova.js';
import {
  GFP_ATOMIC,
  iommuIotlbSync,
  iommuIovaToPhys,
  iommuMap,
  iommuMapSg,
  iommuUnmap,
  iommuUnmapFast,
} from './map.js';
import { IommuResvType } from './resv-region.js';

/**
 * Entries per per-CPU flush queue (`IOVA_DEFAULT_FQ_SIZE`).
 * @public
 */
export const IOVA_DEFAULT_FQ_SIZE = 256;
/**
 * Entries of the single flush queue used when the driver shadows page tables (`IOVA_SINGLE_FQ_SIZE`).
 * @public
 */
export const IOVA_SINGLE_FQ_SIZE = 32768;
/**
 * Flush-queue timeout of per-CPU queues, milliseconds (`IOVA_DEFAULT_FQ_TIMEOUT`).
 * @public
 */
export const IOVA_DEFAULT_FQ_TIMEOUT = 10;
/**
 * Flush-queue timeout of the single queue, milliseconds (`IOVA_SINGLE_FQ_TIMEOUT`).
 * @public
 */
export const IOVA_SINGLE_FQ_TIMEOUT = 1000;

/**
 * `enum iommu_dma_queue_type`: one flush queue per CPU, or one shared queue.
 * @public
 */
export const IommuDmaQueueType = {
  /** `IOMMU_DMA_OPTS_PER_CPU_QUEUE`. */
  PER_CPU: 0,
  /** `IOMMU_DMA_OPTS_SINGLE_QUEUE` (drivers with `shadow_on_flush`). */
  SINGLE: 1,
} as const;
/**
 * A value of {@link (IommuDmaQueueType:variable)}.
 * @public
 */
export type IommuDmaQueueType = (typeof IommuDmaQueueType)[keyof typeof IommuDmaQueueType];

/**
 * `struct iommu_dma_options`: flush-queue shape, chosen at `iommu_dma_init_domain`.
 * @public
 */
export interface IommuDmaOptions {
  /** Queue type. */
  readonly qt: IommuDmaQueueType;
  /** Entries per queue (a power of two; one slot stays unused, as in the kernel's ring). */
  readonly fqSize: number;
  /** Milliseconds from the first queued entry to the timer-driven flush. */
  readonly fqTimeout: number;
}

/**
 * Environment of a DMA cookie (not in Linux, where these are global).
 * @public
 */
export interface IommuDmaCookieOptions {
  /** Timer source for the flush queue. Without one a DMA_FQ domain falls back to strict DMA. */
  readonly scheduler?: Scheduler;
  /** RAM for coherent allocations. Without one `iommuDmaAllocCoherent` returns `null`. */
  readonly memory?: PhysicalMemory;
  /** CPUs: per-CPU IOVA magazines and flush queues. Default 1. */
  readonly nrCpus?: number;
  /**
   * Whether to set up the IOVA range caches (default true). `false` is a model extension for
   * measurements: every allocation then walks the IOVA tree.
   */
  readonly rcaches?: boolean;
}

/**
 * Counters of an {@link IommuDmaCookie} (not in Linux; for tests and benchmarks).
 * @public
 */
export interface IommuDmaStats {
  /** Ranges put on a flush queue instead of being freed at once. */
  readonly fqQueued: number;
  /** `flush_iotlb_all` calls made for the flush queue (timer or full queue). */
  readonly fqFlushes: number;
  /** Of those, the ones forced by a full queue. */
  readonly fqFullFlushes: number;
  /** Flush-queue timer expiries. */
  readonly fqTimeouts: number;
  /** Strict-mode `iotlb_sync` calls made by unmaps. */
  readonly strictSyncs: number;
  /** CPU cache maintenance operations a non-coherent device would need (not performed). */
  readonly cpuSyncs: number;
}

/** One flush-queue ring (`struct iova_fq`). */
class IovaFq {
  head = 0;
  tail = 0;
  readonly modMask: number;
  readonly pfn: Float64Array;
  readonly pages: Float64Array;
  readonly counter: Float64Array;
  constructor(size: number) {
    this.modMask = size - 1;
    this.pfn = new Float64Array(size);
    this.pages = new Float64Array(size);
    this.counter = new Float64Array(size);
  }
}

/**
 * The DMA layer's per-domain state (`struct iommu_dma_cookie`): the IOVA space and the flush
 * queue. Created by {@link iommuGetDmaCookie}, stored in `domain.iovaCookie`.
 * @public
 */
export class IommuDmaCookie {
  /** The IOVA space; `null` until {@link iommuDmaInitDomain}. */
  iovad: IovaDomain | null = null;
  /** Flush-queue options (set by {@link iommuDmaInitDomain}). */
  options: IommuDmaOptions = {
    qt: IommuDmaQueueType.PER_CPU,
    fqSize: IOVA_DEFAULT_FQ_SIZE,
    fqTimeout: IOVA_DEFAULT_FQ_TIMEOUT,
  };
  /** `fq_domain`: the domain whose IOTLB the flush queue flushes; `null` when not in FQ mode. */
  fqDomain: IommuDomain | null = null;
  /** `fq_flush_start_cnt`: flushes started. */
  fqFlushStartCnt = 0;
  /** `fq_flush_finish_cnt`: flushes finished; entries queued before a finished flush may be freed. */
  fqFlushFinishCnt = 0;
  /** `fq_timer_on`: the flush timer is armed. */
  fqTimerOn = false;
  /** Environment given at creation. */
  readonly env: IommuDmaCookieOptions;
  private fqs: IovaFq[] = [];
  private fqTimer: Timer | null = null;
  /** Event counters (flush-queue activity) for tests and benchmarks. @internal */
  readonly counters = {
    fqQueued: 0,
    fqFlushes: 0,
    fqFullFlushes: 0,
    fqTimeouts: 0,
    strictSyncs: 0,
    cpuSyncs: 0,
  };

  /** @param env - see {@link IommuDmaCookieOptions} */
  constructor(env: IommuDmaCookieOptions = {}) {
    this.env = env;
  }

  /** The counters (live view). */
  get stats(): IommuDmaStats {
    return this.counters;
  }

  /**
   * The CPU the next DMA call runs on (selects IOVA magazines and the per-CPU flush queue);
   * forwards to the IOVA domain's `cpu`.
   */
  get cpu(): number {
    return this.iovad?.cpu ?? 0;
  }
  set cpu(cpu: number) {
    if (this.iovad !== null) this.iovad.cpu = cpu;
  }

  /** Entries currently waiting on the flush queues. */
  get fqPending(): number {
    let n = 0;
    for (const fq of this.fqs) n += (fq.tail - fq.head) & fq.modMask;
    return n;
  }

  /**
   * `iommu_dma_init_fq`: create the queues and the timer and enter FQ mode. Idempotent.
   * @throws ErrnoError `ENOMEM` when no scheduler is available for the timer (the kernel's
   *   allocation failure: the caller then stays strict)
   * @internal
   */
  initFq(domain: IommuDomain): void {
    if (this.fqDomain !== null) return;
    const sched = this.env.scheduler;
    if (sched === undefined) throw new ErrnoError('ENOMEM', 'no timer for the flush queue');
    this.fqFlushStartCnt = 0;
    this.fqFlushFinishCnt = 0;
    const n = this.options.qt === IommuDmaQueueType.SINGLE ? 1 : (this.env.nrCpus ?? 1);
    this.fqs = [];
    for (let i = 0; i < n; i++) this.fqs.push(new IovaFq(this.options.fqSize));
    this.fqTimer = sched.createTimer(() => this.fqFlushTimeout(), 'fq_flush_timeout');
    this.fqTimerOn = false;
    this.fqDomain = domain;
  }

  /** `fq_flush_iotlb`. */
  private fqFlushIotlb(): void {
    const domain = this.fqDomain as IommuDomain;
    this.fqFlushStartCnt++;
    domain.ops.flushIotlbAll?.(domain);
    this.fqFlushFinishCnt++;
    this.counters.fqFlushes++;
  }

  /** `fq_ring_free_locked`: free the entries whose flush has finished. */
  private fqRingFree(fq: IovaFq): void {
    const iovad = this.iovad as IovaDomain;
    const counter = this.fqFlushFinishCnt;
    let idx = fq.head;
    while (idx !== fq.tail) {
      if ((fq.counter[idx] as number) >= counter) break;
      iovad.freeIovaFast(fq.pfn[idx] as number, fq.pages[idx] as number);
      idx = (idx + 1) & fq.modMask;
      fq.head = idx;
    }
  }

  /** `fq_flush_timeout`. */
  private fqFlushTimeout(): void {
    if (this.fqDomain === null) return;
    this.fqTimerOn = false;
    this.counters.fqTimeouts++;
    this.fqFlushIotlb();
    for (const fq of this.fqs) this.fqRingFree(fq);
  }

  /**
   * `queue_iova`: defer freeing `[pfn, pfn + pages)` until an IOTLB flush has finished.
   * @internal
   */
  queueIova(pfn: number, pages: number): void {
    const fq =
      this.options.qt === IommuDmaQueueType.SINGLE ? this.fqs[0] : this.fqs[this.cpu % this.fqs.length];
    if (fq === undefined) throw new Error('flush queue not initialised');
    // Entries flushed meanwhile (on any CPU) go first, so that the queue is rarely full.
    this.fqRingFree(fq);
    if (((fq.tail + 1) & fq.modMask) === fq.head) {
      this.counters.fqFullFlushes++;
      this.fqFlushIotlb();
      this.fqRingFree(fq);
    }
    const idx = fq.tail;
    fq.tail = (idx + 1) & fq.modMask;
    fq.pfn[idx] = pfn;
    fq.pages[idx] = pages;
    fq.counter[idx] = this.fqFlushStartCnt;
    this.counters.fqQueued++;
    if (!this.fqTimerOn) {
      this.fqTimerOn = true;
      this.fqTimer?.modAfter(this.options.fqTimeout * 1_000_000);
    }
  }

  /**
   * Flush now and free everything queued (what the timer does; also used at teardown).
   */
  flushQueueNow(): void {
    if (this.fqDomain === null) return;
    this.fqTimer?.del();
    this.fqFlushTimeout();
    this.counters.fqTimeouts--; // not a timeout
  }

  /**
   * `iommu_put_dma_cookie` / `iommu_dma_free_fq`: stop the timer, drop the queues (their ranges are
   * not returned: the IOVA space goes with them) and release the IOVA domain.
   * @internal
   */
  put(): void {
    this.fqTimer?.del();
    this.fqTimer = null;
    this.fqs = [];
    this.fqDomain = null;
    this.iovad?.putIovaDomain();
    this.iovad = null;
  }
}

// ---- cookie and domain setup ------------------------------------------------------------------------

/**
 * `iommu_get_dma_cookie(domain)`: give a DMA domain its IOVA cookie (cookie type DMA_IOVA).
 * @param domain - a paging domain
 * @param env - scheduler, memory, CPUs; see {@link IommuDmaCookieOptions}
 * @returns the cookie
 * @throws ErrnoError `EEXIST` when the domain already has a cookie of any kind
 * @public
 */
export function iommuGetDmaCookie(domain: IommuDomain, env: IommuDmaCookieOptions = {}): IommuDmaCookie {
  if (domain.cookieType !== IommuDomainCookieType.NONE || domain.iovaCookie !== null)
    throw new ErrnoError('EEXIST', 'domain already has a cookie');
  const cookie = new IommuDmaCookie(env);
  domain.iovaCookie = cookie;
  domain.cookieType = IommuDomainCookieType.DMA_IOVA;
  return cookie;
}

/**
 * `iommu_put_dma_cookie(domain)`: release the IOVA cookie (flush queue, IOVA space) and clear the
 * domain's cookie slot. Does nothing for a domain without a DMA cookie.
 * @public
 */
export function iommuPutDmaCookie(domain: IommuDomain): void {
  const cookie = domain.iovaCookie;
  if (!(cookie instanceof IommuDmaCookie)) return;
  cookie.put();
  domain.iovaCookie = null;
  domain.cookieType = IommuDomainCookieType.NONE;
}

/** The lowest set bit of a u64 bitmap (`__ffs`). */
function ffs64(x: bigint): number {
  const lo = Number(x & 0xffff_ffffn);
  if (lo !== 0) return 31 - Math.clz32(lo & -lo);
  const hi = Number((x >> 32n) & 0xffff_ffffn);
  return 32 + 31 - Math.clz32(hi & -hi);
}

/** `device_iommu_capable(dev, cap)`, through the core when the device was probed by one. */
function deviceIommuCapable(dev: Device, cap: IommuCap): boolean {
  const sub = dev.iommu?.subsystem;
  if (sub !== undefined) return sub.deviceIommuCapable(dev, cap);
  return false;
}

/**
 * `iommu_dma_init_domain(domain, dev)`: set up the IOVA space of a DMA domain for a device: granule
 * = the smallest page size, first PFN = `max(1, aperture_start >> shift)` (IOVA 0 is never handed
 * out), the range caches, the flush-queue options (a single large queue when the driver shadows on
 * flush), FQ mode for DMA_FQ domains (falling back to DMA when the device lacks
 * `IOMMU_CAP_DEFERRED_FLUSH` — generic_pt domains always have it — or the queue cannot be set up),
 * then the device's reserved regions are reserved (all types but SW_MSI). A second device on an
 * already initialised domain only has to agree on granule and base.
 *
 * @throws ErrnoError `EINVAL` without a DMA cookie or page sizes; `EFAULT` when a second device
 *   needs a different granule or base ("Incompatible range for DMA domain")
 * @public
 */
export function iommuDmaInitDomain(domain: IommuDomain, dev: Device): void {
  const cookie = domain.iovaCookie;
  if (!(cookie instanceof IommuDmaCookie) || domain.cookieType !== IommuDomainCookieType.DMA_IOVA)
    throw new ErrnoError('EINVAL', 'domain has no DMA IOVA cookie');
  if (domain.pgsizeBitmap === 0n) throw new ErrnoError('EINVAL', 'domain has no page sizes');
  const order = ffs64(domain.pgsizeBitmap);
  // The IOVA granule is at most the CPU page size.
  const granule = 2 ** Math.min(order, 12);
  const basePfn = Math.max(1, Number(domain.geometry.apertureStart >> BigInt(Math.min(order, 12))));
  if (cookie.iovad !== null) {
    if (cookie.iovad.granule !== granule || cookie.iovad.startPfn !== basePfn)
      throw new ErrnoError('EFAULT', 'Incompatible range for DMA domain');
    return;
  }
  const iovad = new IovaDomain(granule, basePfn, {
    nrCpus: cookie.env.nrCpus ?? 1,
    ...(cookie.env.scheduler !== undefined ? { scheduler: cookie.env.scheduler } : {}),
  });
  if (cookie.env.rcaches ?? true) iovad.initRcaches();
  cookie.iovad = iovad;
  // iommu_dma_init_options
  cookie.options =
    dev.iommu?.shadowOnFlush === true
      ? { qt: IommuDmaQueueType.SINGLE, fqSize: IOVA_SINGLE_FQ_SIZE, fqTimeout: IOVA_SINGLE_FQ_TIMEOUT }
      : { qt: IommuDmaQueueType.PER_CPU, fqSize: IOVA_DEFAULT_FQ_SIZE, fqTimeout: IOVA_DEFAULT_FQ_TIMEOUT };
  if (domain.type === IOMMU_DOMAIN_DMA_FQ) {
    let ok = domain.isIommupt || deviceIommuCapable(dev, IommuCap.DEFERRED_FLUSH);
    if (ok) {
      try {
        cookie.initFq(domain);
      } catch {
        ok = false;
      }
    }
    if (!ok) domain.type = IOMMU_DOMAIN_DMA;
  }
  // iova_reserve_iommu_regions
  const regions = dev.iommu?.subsystem.iommuGetResvRegions(dev) ?? [];
  for (const r of regions) {
    if (r.type === IommuResvType.SW_MSI || r.length === 0n) continue;
    const lo = iovad.iovaPfn(r.start);
    const hi = iovad.iovaPfn(r.start + r.length - 1n);
    iovad.reserveIova(lo, Math.min(hi, iovad.maxPfn));
  }
}

/**
 * `iommu_dma_init_fq(domain)`: switch an initialised DMA domain's cookie to flush-queue mode (used
 * by the core when sysfs turns DMA into DMA-FQ in place; the caller then sets the type bit).
 * @throws ErrnoError `EINVAL` without an initialised DMA cookie; `ENOMEM` when the queue cannot be
 *   set up (no scheduler)
 * @public
 */
export function iommuDmaInitFq(domain: IommuDomain): void {
  const cookie = domain.iovaCookie;
  if (!(cookie instanceof IommuDmaCookie) || cookie.iovad === null)
    throw new ErrnoError('EINVAL', 'domain has no initialised DMA cookie');
  cookie.initFq(domain);
}

/**
 * `iommu_get_dma_domain(dev)`: the group's default domain, or `null` (as the core's
 * `IommuSubsystem.iommuGetDmaDomain`).
 * @public
 */
export function iommuDmaGetDomain(dev: Device): IommuDomain | null {
  return dev.iommuGroup?.defaultDomain ?? null;
}

/**
 * Install the DMA layer into an IOMMU core (`IommuSubsystem.dmaHooks`): DMA-type default domains
 * get an {@link IommuDmaCookie} with `env`, freed domains release it, and every probed device whose
 * default domain is a DMA domain gets {@link iommuSetupDmaOps}. A setup failure is logged by
 * nothing and leaves the device without IOMMU DMA (Linux: "Failed to set up IOMMU for device;
 * retaining platform DMA ops").
 *
 * @param subsystem - the core
 * @param env - scheduler (flush-queue timer), memory (coherent buffers), CPUs, rcaches
 * @param forceDac - `iommu.forcedac=1`: PCI devices skip the 32-bit-first attempt
 * @public
 */
export function iommuDmaInstall(
  subsystem: IommuSubsystem,
  env: IommuDmaCookieOptions = {},
  forceDac = false,
): void {
  subsystem.dmaHooks = {
    getDmaCookie: (domain) => {
      iommuGetDmaCookie(domain, env);
    },
    putDmaCookie: (domain) => iommuPutDmaCookie(domain),
    setupDmaOps: (dev) => {
      iommuSetupDmaOps(dev, env, forceDac);
    },
    initFq: (domain) => iommuDmaInitFq(domain),
  };
}

/**
 * `iommu_setup_dma_ops(dev)` as far as the DMA layer goes: PCI devices get the 32-bit-first IOVA
 * policy (`pci_32bit_workaround`, unless `forceDac`), and when the default domain is a DMA domain it
 * gets a cookie (with `env`) if it has none and is initialised for the device.
 *
 * @param dev - a probed device in a group
 * @param env - environment for a newly created cookie
 * @param forceDac - `iommu.forcedac=1`: no 32-bit-first attempt
 * @returns whether the device now uses the IOMMU DMA API (`dev->dma_iommu`); false also when
 *   {@link iommuDmaInitDomain} failed (Linux warns and keeps the platform DMA ops)
 * @public
 */
export function iommuSetupDmaOps(dev: Device, env: IommuDmaCookieOptions = {}, forceDac = false): boolean {
  if (dev.isPci && dev.iommu !== null) dev.iommu.pci32bitWorkaround = !forceDac;
  const domain = iommuDmaGetDomain(dev);
  if (domain === null || (domain.type & __IOMMU_DOMAIN_DMA_API) === 0) return false;
  try {
    if (domain.iovaCookie === null) iommuGetDmaCookie(domain, env);
    iommuDmaInitDomain(domain, dev);
  } catch {
    return false;
  }
  dev.dmaOpsSetUp = true;
  return true;
}

// ---- IOVA allocation --------------------------------------------------------------------------------

const U32_MASK = 0xffff_ffffn;

/** The DMA domain and initialised cookie of `dev`, or null. */
function dmaContext(dev: Device): IommuDomain | null {
  const domain = dev.iommuGroup?.defaultDomain ?? null;
  if (domain === null) return null;
  const cookie = domain.iovaCookie;
  if (!(cookie instanceof IommuDmaCookie) || cookie.iovad === null) return null;
  return domain;
}

/**
 * `iommu_dma_alloc_iova(domain, size, dma_limit, dev)`: an IOVA range of `size` bytes (a multiple
 * of the granule) at or below `min(dmaLimit, bus limit, aperture end if forced)`. PCI devices
 * with `pci_32bit_workaround` first try below 4 GiB without flushing the caches; on failure the
 * workaround is switched off for the device and the full limit is used with `flush_rcache`.
 *
 * @returns the IOVA in bytes, or 0n when nothing fits
 * @public
 */
export function iommuDmaAllocIova(domain: IommuDomain, size: number, dmaLimit: bigint, dev: Device): bigint {
  const cookie = domain.iovaCookie as IommuDmaCookie;
  const iovad = cookie.iovad as IovaDomain;
  const shift = iovad.shift;
  const iovaLen = size / iovad.granule;
  let limit = dmaLimit;
  const bus = dev.busDmaLimit;
  if (bus !== 0n && (limit === 0n || bus < limit)) limit = bus;
  if (domain.geometry.forceAperture && domain.geometry.apertureEnd < limit)
    limit = domain.geometry.apertureEnd;
  let pfn = 0;
  const devIommu = dev.iommu;
  if (limit > U32_MASK && devIommu !== null && devIommu.pci32bitWorkaround) {
    pfn = iovad.allocIovaFast(iovaLen, 2 ** (32 - shift) - 1, false);
    if (pfn === 0) devIommu.pci32bitWorkaround = false; // "Using N-bit DMA addresses"
  }
  if (pfn === 0) pfn = iovad.allocIovaFast(iovaLen, Number(limit >> BigInt(shift)), true);
  return pfn === 0 ? 0n : iovad.iovaDmaAddr(pfn);
}

/**
 * `iommu_dma_free_iova(domain, iova, size, gather)`: onto the flush queue when the gather is queued
 * (FQ mode), else straight back to the IOVA caches.
 * @param iova - bytes, granule-aligned
 * @param size - bytes, granule multiple
 * @param gather - the unmap's gather, or `null`
 * @public
 */
export function iommuDmaFreeIova(
  domain: IommuDomain,
  iova: bigint,
  size: number,
  gather: IommuIotlbGather | null,
): void {
  const cookie = domain.iovaCookie as IommuDmaCookie;
  const iovad = cookie.iovad as IovaDomain;
  const pfn = iovad.iovaPfn(iova);
  const pages = size / iovad.granule;
  if (gather?.queued === true) cookie.queueIova(pfn, pages);
  else iovad.freeIovaFast(pfn, pages);
}

// ---- streaming mappings ------------------------------------------------------------------------------

/**
 * `dma_info_to_prot(dir, coherent, attrs)`: the IOMMU prot bits of a mapping.
 * @returns `IOMMU_READ`/`IOMMU_WRITE` per direction, plus `IOMMU_CACHE` (coherent), `IOMMU_PRIV`,
 *   `IOMMU_MMIO`; 0 for `DMA_NONE`
 * @public
 */
export function dmaInfoToProt(dir: DmaDataDirection, coherent: boolean, attrs: number): number {
  let prot = coherent ? IOMMU_CACHE : 0;
  if (attrs & DMA_ATTR_PRIVILEGED) prot |= IOMMU_PRIV;
  if (attrs & DMA_ATTR_MMIO) prot |= IOMMU_MMIO;
  switch (dir) {
    case DmaDataDirection.BIDIRECTIONAL:
      return prot | IOMMU_READ | IOMMU_WRITE;
    case DmaDataDirection.TO_DEVICE:
      return prot | IOMMU_READ;
    case DmaDataDirection.FROM_DEVICE:
      return prot | IOMMU_WRITE;
    default:
      return 0;
  }
}

/** One IOMMU mapping of the DMA layer, returning the IOVA or 0n (`__iommu_dma_map`). */
function dmaMap(
  dev: Device,
  domain: IommuDomain,
  phys: number,
  size: number,
  prot: number,
  mask: bigint,
): bigint {
  const iovad = (domain.iovaCookie as IommuDmaCookie).iovad as IovaDomain;
  const granule = iovad.granule;
  const off = phys % granule;
  const len = Math.ceil((size + off) / granule) * granule;
  const iova = iommuDmaAllocIova(domain, len, mask, dev);
  if (iova === 0n) return DMA_MAPPING_ERROR;
  try {
    iommuMap(domain, iova, BigInt(phys - off), BigInt(len), prot, GFP_ATOMIC);
  } catch {
    iommuDmaFreeIova(domain, iova, len, null);
    return DMA_MAPPING_ERROR;
  }
  return off === 0 ? iova : iova + BigInt(off);
}

/** `__iommu_dma_unmap(dev, dma_addr, size)`. */
function dmaUnmap(domain: IommuDomain, dmaAddr: bigint, size: number): void {
  const cookie = domain.iovaCookie as IommuDmaCookie;
  const iovad = cookie.iovad as IovaDomain;
  const off = iovad.iovaOffset(dmaAddr);
  const iova = off === 0 ? dmaAddr : dmaAddr - BigInt(off);
  const len = iovad.iovaAlign(size + off);
  const gather = new IommuIotlbGather();
  gather.queued = cookie.fqDomain !== null;
  iommuUnmapFast(domain, iova, BigInt(len), gather);
  // The kernel warns when fewer bytes than asked were unmapped, and frees the IOVA anyway.
  if (!gather.queued) {
    cookie.counters.strictSyncs++;
    iommuIotlbSync(domain, gather);
  }
  iommuDmaFreeIova(domain, iova, len, gather);
}

function toPhys(pa: number | bigint): number {
  return typeof pa === 'number' ? pa : Number(pa);
}

/**
 * `iommu_dma_map_phys` / `iommu_dma_map_page`: map `size` bytes at physical address `pa` for the
 * device, returning the DMA address of `pa` (the IOVA range covers the granules the buffer
 * touches, so the address keeps `pa`'s offset within its granule).
 *
 * @param dev - a device whose default domain is an initialised DMA domain
 * @param pa - physical address, bytes (`page_to_phys(page) + offset`)
 * @param size - bytes, ≥ 1
 * @param dir - {@link (DmaDataDirection:variable)}
 * @param attrs - `DMA_ATTR_*` bits (default 0)
 * @returns the DMA address (u64), or {@link DMA_MAPPING_ERROR} when the device has no DMA domain,
 *   no IOVA space is left below its mask, or the IOMMU mapping fails
 * @public
 */
export function iommuDmaMapPage(
  dev: Device,
  pa: number | bigint,
  size: number,
  dir: DmaDataDirection,
  attrs = 0,
): bigint {
  const domain = dmaContext(dev);
  if (domain === null) return DMA_MAPPING_ERROR;
  const coherent = devIsDmaCoherent(dev);
  if (!coherent && (attrs & DMA_ATTR_SKIP_CPU_SYNC) === 0)
    (domain.iovaCookie as IommuDmaCookie).counters.cpuSyncs++;
  return dmaMap(dev, domain, toPhys(pa), size, dmaInfoToProt(dir, coherent, attrs), dev.dmaMask);
}

/**
 * `iommu_dma_unmap_phys` / `iommu_dma_unmap_page`: undo {@link iommuDmaMapPage}. In strict mode
 * the IOTLB is synced before the IOVA is reused; in FQ mode the IOVA waits on the flush queue.
 *
 * @param dev - the device
 * @param dmaAddr - the address `iommuDmaMapPage` returned
 * @param size - the size given to `iommuDmaMapPage`, bytes
 * @param dir - the direction given to `iommuDmaMapPage`
 * @param attrs - `DMA_ATTR_*` bits (default 0)
 * @remarks Nothing happens (the kernel warns) when `dmaAddr` does not translate.
 * @public
 */
export function iommuDmaUnmapPage(
  dev: Device,
  dmaAddr: bigint,
  size: number,
  dir: DmaDataDirection,
  attrs = 0,
): void {
  void dir;
  const domain = dmaContext(dev);
  if (domain === null) return;
  if (iommuIovaToPhys(domain, dmaAddr) === 0n) return;
  if (!devIsDmaCoherent(dev) && (attrs & DMA_ATTR_SKIP_CPU_SYNC) === 0)
    (domain.iovaCookie as IommuDmaCookie).counters.cpuSyncs++;
  dmaUnmap(domain, dmaAddr, size);
}

// ---- scatter-gather ------------------------------------------------------------------------------------

/**
 * One entry of a scatterlist (`struct scatterlist`): a CPU-side buffer and, after mapping, a
 * DMA-side segment.
 * @public
 */
export interface Scatterlist {
  /** Physical address of the entry's page (`page_to_phys(sg_page(s))`), bytes. */
  page: number;
  /** Byte offset of the buffer from `page`. */
  offset: number;
  /** Buffer length in bytes. */
  length: number;
  /** `sg_dma_address`: the DMA segment's address after mapping ({@link DMA_MAPPING_ERROR} when unused). */
  dmaAddress: bigint;
  /** `sg_dma_len`: the DMA segment's length in bytes (0 when unused: the end of the mapped segments). */
  dmaLength: number;
}

/**
 * Build a scatterlist from physical buffers (`sg_init_table` + `sg_set_page` per entry).
 * @param buffers - `{ pa, length }` per entry, bytes; `pa` is split into a 4 KiB page and an offset
 * @public
 */
export function sgInitTable(
  buffers: ReadonlyArray<{ readonly pa: number; readonly length: number }>,
): Scatterlist[] {
  return buffers.map(({ pa, length }) => {
    const offset = pa % 4096;
    return { page: pa - offset, offset, length, dmaAddress: DMA_MAPPING_ERROR, dmaLength: 0 };
  });
}

/** Saved original fields of one entry during `iommuDmaMapSg`. */
interface SgSaved {
  iovaOff: number;
  length: number;
}

/** `__finalise_sg`: restore the entries and fill in the DMA segments; returns their number. */
function finaliseSg(dev: Device, sg: Scatterlist[], saved: SgSaved[], base: bigint): number {
  const segMask = dmaGetSegBoundary(dev);
  const maxLen = dmaGetMaxSegSize(dev);
  let dmaAddr = base;
  let curIdx = 0;
  let curLen = 0;
  let count = 0;
  for (let i = 0; i < sg.length; i++) {
    const s = sg[i] as Scatterlist;
    const { iovaOff, length } = saved[i] as SgSaved;
    const iovaLen = s.length;
    s.dmaAddress = DMA_MAPPING_ERROR;
    s.dmaLength = 0;
    s.offset += iovaOff;
    s.length = length;
    // Append to the current segment if this entry starts on a granule, the current segment does
    // not end on a segment boundary, and the result stays within the maximum segment size.
    if (curLen !== 0 && iovaOff === 0 && (dmaAddr & segMask) !== 0n && maxLen - curLen >= length) {
      curLen += length;
    } else {
      if (i > 0) curIdx++;
      curLen = length;
      count++;
      (sg[curIdx] as Scatterlist).dmaAddress = dmaAddr + BigInt(iovaOff);
    }
    (sg[curIdx] as Scatterlist).dmaLength = curLen;
    dmaAddr += BigInt(iovaLen);
    if (length + iovaOff < iovaLen) curLen = 0;
  }
  return count;
}

/** `__invalidate_sg`: restore the entries after a failure. */
function invalidateSg(sg: Scatterlist[], saved: SgSaved[]): void {
  for (let i = 0; i < sg.length; i++) {
    const s = sg[i] as Scatterlist;
    const sv = saved[i] as SgSaved;
    s.offset += sv.iovaOff;
    s.length = sv.length;
    s.dmaAddress = DMA_MAPPING_ERROR;
    s.dmaLength = 0;
  }
}

/**
 * `iommu_dma_map_sg(dev, sg, nents, dir, attrs)`: map all entries into **one** contiguous IOVA
 * range and merge them into as few DMA segments as the device's parameters allow.
 *
 * @remarks
 * Each entry is widened to whole granules (its offset inside the first granule is kept in the
 * DMA address). When the device's segment boundary (`dma_get_seg_boundary`) is smaller than the
 * total, an entry that would cross a boundary is preceded by padding (added to the previous
 * entry's IOVA length) so that it starts on one; the single IOVA allocation is size-aligned,
 * which makes that layout valid. Entries are then concatenated into the current DMA segment when
 * they start at offset 0 of a granule, the segment does not sit on a boundary, and the segment
 * stays within `dma_get_max_seg_size`. Physically contiguous runs are mapped with one
 * `iommu_map` each, and the mapping is synced once.
 *
 * @param dev - a device whose default domain is an initialised DMA domain
 * @param sg - the entries (modified: `dmaAddress`/`dmaLength` filled in for the first `count`
 *   entries, the rest get `DMA_MAPPING_ERROR`/0)
 * @param dir - {@link (DmaDataDirection:variable)}
 * @param attrs - `DMA_ATTR_*` bits (default 0)
 * @returns the number of DMA segments (≥ 1 for a non-empty list; 0 when every entry is empty)
 * @throws ErrnoError `ENOMEM` when no IOVA space fits (or the page tables cannot grow); `EINVAL` for
 *   other mapping failures; `ENODEV` when the device has no DMA domain
 * @public
 */
export function iommuDmaMapSg(dev: Device, sg: Scatterlist[], dir: DmaDataDirection, attrs = 0): number {
  const domain = dmaContext(dev);
  if (domain === null) throw new ErrnoError('ENODEV', 'device has no DMA domain');
  const cookie = domain.iovaCookie as IommuDmaCookie;
  const iovad = cookie.iovad as IovaDomain;
  const coherent = devIsDmaCoherent(dev);
  const prot = dmaInfoToProt(dir, coherent, attrs);
  if (!coherent && (attrs & DMA_ATTR_SKIP_CPU_SYNC) === 0) cookie.counters.cpuSyncs++;
  const mask = dmaGetSegBoundary(dev);
  const saved: SgSaved[] = [];
  let iovaLen = 0;
  let prev: Scatterlist | null = null;
  for (const s of sg) {
    const sIovaOff = iovad.iovaOffset(s.offset);
    saved.push({ iovaOff: sIovaOff, length: s.length });
    s.offset -= sIovaOff;
    const sLength = iovad.iovaAlign(s.length + sIovaOff);
    s.length = sLength;
    // Padding to the next segment boundary, when this entry would otherwise cross it.
    const padLen = BigInt.asUintN(64, mask - BigInt(iovaLen) + 1n) & mask;
    if (padLen !== 0n && padLen < BigInt.asUintN(64, BigInt(sLength) - 1n) && prev !== null) {
      prev.length += Number(padLen);
      iovaLen += Number(padLen);
    }
    iovaLen += sLength;
    prev = s;
  }
  if (iovaLen === 0) return finaliseSg(dev, sg, saved, 0n);
  const iova = iommuDmaAllocIova(domain, iovaLen, dev.dmaMask, dev);
  if (iova === 0n) {
    invalidateSg(sg, saved);
    throw new ErrnoError('ENOMEM', 'no IOVA space for the scatterlist');
  }
  let mapped: number;
  try {
    mapped = Number(iommuMapSg(domain, iova, sg, prot, GFP_ATOMIC));
  } catch (e) {
    iommuDmaFreeIova(domain, iova, iovaLen, null);
    invalidateSg(sg, saved);
    if (e instanceof ErrnoError && (e.code === 'ENOMEM' || e.code === 'EREMOTEIO')) throw e;
    throw new ErrnoError('EINVAL', `map_sg failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (mapped < iovaLen) {
    iommuUnmap(domain, iova, BigInt(mapped));
    iommuDmaFreeIova(domain, iova, iovaLen, null);
    invalidateSg(sg, saved);
    throw new ErrnoError('EINVAL', 'map_sg mapped less than asked');
  }
  return finaliseSg(dev, sg, saved, iova);
}

/**
 * `iommu_dma_unmap_sg(dev, sg, nents, dir, attrs)`: unmap the single IOVA range behind the DMA
 * segments that {@link iommuDmaMapSg} produced (from the first segment's address to the end of
 * the last segment with a non-zero length).
 * @param dev - the device
 * @param sg - the list passed to `iommuDmaMapSg`
 * @param dir - the direction given to `iommuDmaMapSg`
 * @param attrs - `DMA_ATTR_*` bits (default 0)
 * @public
 */
export function iommuDmaUnmapSg(
  dev: Device,
  sg: readonly Scatterlist[],
  dir: DmaDataDirection,
  attrs = 0,
): void {
  void dir;
  const domain = dmaContext(dev);
  if (domain === null) return;
  if (!devIsDmaCoherent(dev) && (attrs & DMA_ATTR_SKIP_CPU_SYNC) === 0)
    (domain.iovaCookie as IommuDmaCookie).counters.cpuSyncs++;
  const first = sg[0];
  if (first === undefined || first.dmaLength === 0) return;
  const start = first.dmaAddress;
  let end = 0n;
  for (const s of sg) {
    if (s.dmaLength === 0) break;
    end = s.dmaAddress + BigInt(s.dmaLength);
  }
  if (end !== 0n) dmaUnmap(domain, start, Number(end - start));
}

// ---- coherent allocations ----------------------------------------------------------------------------

/**
 * A coherent DMA buffer: where the CPU sees it and where the device does.
 * @public
 */
export interface DmaCoherentBuffer {
  /** Physical address of the (zeroed, physically contiguous) pages, bytes. */
  readonly cpuPa: number;
  /** The device's DMA address for it (u64). */
  readonly dmaAddr: bigint;
}

const PAGE_SIZE = 4096;

/** `get_order(size)`: the page order of a byte size. */
function getOrder(size: number): number {
  const pages = Math.ceil(size / PAGE_SIZE);
  return pages <= 1 ? 0 : Math.ceil(Math.log2(pages));
}

/**
 * `iommu_dma_alloc(dev, size, &handle, gfp, attrs)` (the contiguous path,
 * `iommu_dma_alloc_pages` + `__iommu_dma_map` under the coherent mask): zeroed pages from the
 * cookie's `PhysicalMemory` (from `@iommu-ts/mm`), mapped read/write.
 *
 * @param dev - a device whose default domain is an initialised DMA domain with `memory`
 * @param size - bytes, ≥ 1 (rounded up to pages, allocated as a power-of-two block)
 * @param attrs - `DMA_ATTR_*` bits (default 0)
 * @returns the buffer, or `null` (Linux NULL) when there is no DMA domain or memory, the pages
 *   cannot be allocated, or no IOVA space fits below `coherentDmaMask`
 * @public
 */
export function iommuDmaAllocCoherent(dev: Device, size: number, attrs = 0): DmaCoherentBuffer | null {
  const domain = dmaContext(dev);
  if (domain === null) return null;
  const memory = (domain.iovaCookie as IommuDmaCookie).env.memory;
  if (memory === undefined || !(size >= 1)) return null;
  const order = getOrder(size);
  let pa: number;
  try {
    pa = memory.allocPages(order);
  } catch {
    return null;
  }
  const prot = dmaInfoToProt(DmaDataDirection.BIDIRECTIONAL, devIsDmaCoherent(dev), attrs);
  const dmaAddr = dmaMap(dev, domain, pa, size, prot, dev.coherentDmaMask);
  if (dmaAddr === DMA_MAPPING_ERROR) {
    memory.freePages(pa, order);
    return null;
  }
  return { cpuPa: pa, dmaAddr };
}

/**
 * `iommu_dma_free(dev, size, cpu_addr, handle, attrs)`: unmap and free a buffer from
 * {@link iommuDmaAllocCoherent}.
 * @param dev - the device
 * @param size - the size given at allocation, bytes
 * @param buffer - the buffer
 * @throws ErrnoError from `PhysicalMemory.freePages` when the pages were not allocated this way
 * @public
 */
export function iommuDmaFreeCoherent(dev: Device, size: number, buffer: DmaCoherentBuffer): void {
  const domain = dmaContext(dev);
  if (domain === null) return;
  const memory = (domain.iovaCookie as IommuDmaCookie).env.memory;
  dmaUnmap(domain, buffer.dmaAddr, size);
  memory?.freePages(buffer.cpuPa, getOrder(size));
}

/**
 * The cookie of `dev`'s DMA domain, or `null` (diagnostics and tests).
 * @public
 */
export function iommuDmaCookieOf(dev: Device): IommuDmaCookie | null {
  const c = iommuDmaGetDomain(dev)?.iovaCookie;
  return c instanceof IommuDmaCookie ? c : null;
}
