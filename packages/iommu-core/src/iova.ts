/**
 * The IOVA allocator (drivers/iommu/iova.c, include/linux/iova.h): a top-down first-fit
 * allocator of page-frame ranges in an IO virtual address space, with per-CPU range caches
 * ("rcaches": magazines and a depot per size class) in front of it.
 *
 * @remarks
 * Units: every size and address taken or returned here is in **granule units (PFNs)**, not bytes,
 * except where a name says `Addr`/`Bytes` (the `iova_*` byte helpers). A PFN is a `number`: the
 * IOVA space of a 64-bit DMA address with a 4 KiB granule has PFNs below 2^52, exact in doubles.
 * PFNs above {@link IovaDomain.maxPfn} (2^(64 - shift) - 1, capped at 2^53 - 2) are not usable.
 *
 * CPUs: the kernel keeps one pair of magazines per CPU. JavaScript is single-threaded, so the
 * domain has `nrCpus` CPU slots and a {@link IovaDomain.cpu} cursor naming the CPU that the next
 * call "runs on" (a test or a scheduler task sets it). Locks are not needed and not modelled.
 */

import { cancelDelayedWorkSync, DelayedWork, type Scheduler } from '@iommu-ts/base';
import { IovaNode, IovaRbTree, rbNext, rbPrev } from './iova-rbtree.js';

/**
 * Number of rcache size classes: ranges of 2^0 … 2^5 granules are cached, larger ones bypass the
 * caches (`IOVA_RANGE_CACHE_MAX_SIZE`, "log of max cached IOVA range size (in pages)").
 * @public
 */
export const IOVA_RANGE_CACHE_MAX_SIZE = 6;

/**
 * PFNs per magazine (`IOVA_MAG_SIZE`): 127, so that the kernel's magazine (a size/next word plus
 * the PFN array) is 1024 bytes.
 * @public
 */
export const IOVA_MAG_SIZE = 127;

/**
 * Delay of the depot trimming work after a magazine is pushed onto a depot
 * (`IOVA_DEPOT_DELAY` = 100 ms), in nanoseconds of the scheduler's virtual time.
 * @public
 */
export const IOVA_DEPOT_DELAY_NS = 100_000_000;

/**
 * PFN of the permanent anchor node (`IOVA_ANCHOR` = `~0UL` in the kernel). Here the largest safe
 * integer, above every usable PFN ({@link IovaDomain.maxPfn}).
 * @public
 */
export const IOVA_ANCHOR_PFN = Number.MAX_SAFE_INTEGER;

/**
 * One allocated (or reserved) IOVA range, `[pfnLo, pfnHi]` inclusive, in granule units
 * (`struct iova`).
 *
 * @remarks
 * Returned by {@link IovaDomain.allocIova}, {@link IovaDomain.findIova} and
 * {@link IovaDomain.reserveIova}; the object stays the same for the range's lifetime (a later
 * {@link IovaDomain.reserveIova} may lower `pfnLo` of a range it overlaps, as the kernel does).
 * @public
 */
export interface Iova {
  /** First PFN of the range. */
  readonly pfnLo: number;
  /** Last PFN of the range (inclusive); the size is `pfnHi - pfnLo + 1` granules. */
  readonly pfnHi: number;
}

/**
 * Options of {@link initIovaDomain} (not in Linux, where these are global).
 * @public
 */
export interface IovaDomainOptions {
  /**
   * Number of CPUs with their own pair of magazines per size class (`num_possible_cpus()`,
   * also used as `num_online_cpus()` by depot trimming). A positive integer; default 1.
   */
  readonly nrCpus?: number;
  /**
   * Scheduler whose system work queue runs the depot trimming work (`schedule_delayed_work` with
   * {@link IOVA_DEPOT_DELAY_NS}). Without one, depots are never trimmed automatically (call
   * {@link IovaDomain.trimDepots} to run the work by hand).
   */
  readonly scheduler?: Scheduler;
}

/**
 * Counters of an {@link IovaDomain} (not in Linux; for tests and benchmarks).
 * @public
 */
export interface IovaStats {
  /** {@link IovaDomain.allocIovaFast} calls served from an rcache. */
  readonly rcacheHits: number;
  /** {@link IovaDomain.allocIovaFast} calls that found nothing suitable in the rcache (cacheable sizes only). */
  readonly rcacheMisses: number;
  /** {@link IovaDomain.freeIovaFast} calls whose range went into an rcache. */
  readonly rcacheInserts: number;
  /** Successful tree allocations ({@link IovaDomain.allocIova}, including those made by `allocIovaFast`). */
  readonly treeAllocs: number;
  /** Failed tree allocations (`-ENOMEM` inside `__alloc_and_insert_iova_range`). */
  readonly treeAllocFailures: number;
  /** Ranges removed from the tree (free, cache flush, depot trim). */
  readonly treeFrees: number;
  /** Magazines pushed onto a depot. */
  readonly depotPushes: number;
  /** Magazines freed by the depot trimming work. */
  readonly depotTrims: number;
  /** Full rcache flushes done by `allocIovaFast(…, flushRcache = true)` after a failure. */
  readonly rcacheFlushes: number;
}

/** A magazine of cached PFNs (`struct iova_magazine`). */
class IovaMagazine {
  /** Number of PFNs held (`size`). */
  size = 0;
  /** Next magazine on a depot (`next`, shares storage with `size` in the kernel). */
  next: IovaMagazine | null = null;
  readonly pfns = new Float64Array(IOVA_MAG_SIZE);
}

/** Per-CPU state of one size class (`struct iova_cpu_rcache`). */
interface IovaCpuRcache {
  loaded: IovaMagazine;
  prev: IovaMagazine;
}

/** One size class (`struct iova_rcache`). */
interface IovaRcache {
  depotSize: number;
  depot: IovaMagazine | null;
  readonly cpuRcaches: IovaCpuRcache[];
  readonly work: DelayedWork;
}

/** `fls_long(x)`: 1-based index of the highest set bit, 0 for 0. */
function fls(x: number): number {
  if (x < 0x1_0000_0000) return 32 - Math.clz32(x);
  return 32 + fls(Math.floor(x / 0x1_0000_0000));
}

/** `order_base_2(n)`: ceil(log2(n)), 0 for n ≤ 1. */
function orderBase2(n: number): number {
  return n <= 1 ? 0 : fls(n - 1);
}

/**
 * An IOVA space (`struct iova_domain`): the tree of allocated ranges under a permanent anchor, the
 * two cached search starts and the rcaches.
 *
 * @remarks
 * Create it with {@link initIovaDomain}; call {@link IovaDomain.initRcaches} before the `…Fast`
 * functions if the caches are wanted (without them, `allocIovaFast`/`freeIovaFast` go straight to
 * the tree, a model extension: the kernel requires the caches there). Release it with
 * {@link IovaDomain.putIovaDomain}.
 * @public
 */
export class IovaDomain {
  /** Allocation unit in bytes (`granule`): a power of two ≤ 4096. */
  readonly granule: number;
  /** log2 of {@link IovaDomain.granule} (`iova_shift`). */
  readonly shift: number;
  /** Lowest PFN handed out (`start_pfn`). */
  readonly startPfn: number;
  /** First PFN at or above 4 GiB (`dma_32bit_pfn` = 2^(32 - shift)). */
  readonly dma32bitPfn: number;
  /** Highest usable PFN: 2^(64 - shift) - 1, capped at 2^53 - 2 (below {@link IOVA_ANCHOR_PFN}). */
  readonly maxPfn: number;
  /**
   * Smallest size (granules) known not to fit below 4 GiB (`max32_alloc_size`); requests with a
   * limit ≤ 4 GiB at least this large fail at once. Reset to {@link IovaDomain.dma32bitPfn} when
   * a range below 4 GiB is freed.
   */
  max32AllocSize: number;
  /**
   * The CPU the next call runs on (`smp_processor_id()`), `0 … nrCpus - 1`; selects the per-CPU
   * magazines. Not in Linux's structure.
   */
  cpu = 0;
  /** Number of CPU slots of the rcaches ({@link IovaDomainOptions.nrCpus}). */
  readonly nrCpus: number;

  private readonly tree = new IovaRbTree();
  private readonly anchor: IovaNode;
  private cachedNode: IovaNode;
  private cached32Node: IovaNode;
  private rcaches: IovaRcache[] | null = null;
  private readonly scheduler: Scheduler | undefined;
  private dead = false;
  private readonly counters = {
    rcacheHits: 0,
    rcacheMisses: 0,
    rcacheInserts: 0,
    treeAllocs: 0,
    treeAllocFailures: 0,
    treeFrees: 0,
    depotPushes: 0,
    depotTrims: 0,
    rcacheFlushes: 0,
  };

  /**
   * Prefer {@link initIovaDomain}.
   * @param granule - allocation unit in bytes, a power of two ≤ 4096 (the CPU page size)
   * @param startPfn - lowest PFN to hand out, a non-negative safe integer
   * @param options - see {@link IovaDomainOptions}
   * @throws RangeError for a bad granule, start PFN or CPU count (the kernel's `BUG_ON`)
   */
  constructor(granule: number, startPfn: number, options: IovaDomainOptions = {}) {
    if (!Number.isInteger(granule) || granule < 1 || granule > 4096 || (granule & (granule - 1)) !== 0)
      throw new RangeError(`IOVA granule ${granule} is not a power of two <= 4096`);
    const shift = 31 - Math.clz32(granule);
    const maxPfn = Math.min(2 ** (64 - shift) - 1, Number.MAX_SAFE_INTEGER - 1);
    if (!Number.isSafeInteger(startPfn) || startPfn < 0 || startPfn > maxPfn)
      throw new RangeError(`IOVA start PFN ${startPfn} out of range`);
    const nrCpus = options.nrCpus ?? 1;
    if (!Number.isSafeInteger(nrCpus) || nrCpus < 1) throw new RangeError(`bad CPU count ${nrCpus}`);
    this.granule = granule;
    this.shift = shift;
    this.startPfn = startPfn;
    this.dma32bitPfn = 2 ** (32 - shift);
    this.maxPfn = maxPfn;
    this.max32AllocSize = this.dma32bitPfn;
    this.nrCpus = nrCpus;
    this.scheduler = options.scheduler;
    this.anchor = new IovaNode(IOVA_ANCHOR_PFN, IOVA_ANCHOR_PFN);
    this.tree.insert(this.anchor);
    this.cachedNode = this.anchor;
    this.cached32Node = this.anchor;
  }

  // ---- byte helpers (include/linux/iova.h) ------------------------------------------------------

  /** `iova_mask`: `granule - 1`. */
  get mask(): number {
    return this.granule - 1;
  }

  /**
   * `iova_offset(iovad, addr)`: the byte offset of `addr` within its granule.
   * @param addr - a byte address (IOVA or physical), number or u64 bigint
   * @returns bytes, `0 … granule - 1`
   */
  iovaOffset(addr: number | bigint): number {
    if (typeof addr === 'bigint') return Number(addr & BigInt(this.granule - 1));
    return addr % this.granule;
  }

  /**
   * `iova_align(iovad, size)`: `size` rounded up to a whole number of granules.
   * @param size - bytes
   * @returns bytes
   */
  iovaAlign(size: number): number {
    return Math.ceil(size / this.granule) * this.granule;
  }

  /**
   * `iova_pfn(iovad, iova)`: the PFN of a byte IOVA.
   * @param iova - a DMA (IO virtual) address in bytes
   * @returns granule units
   */
  iovaPfn(iova: bigint): number {
    return Number(iova >> BigInt(this.shift));
  }

  /**
   * `iova_dma_addr(iovad, iova)`: the byte address of a PFN (or of a range's first PFN).
   * @param pfn - granule units, or a range from this domain
   * @returns the DMA address in bytes
   */
  iovaDmaAddr(pfn: number | Iova): bigint {
    const p = typeof pfn === 'number' ? pfn : pfn.pfnLo;
    const a = p * this.granule;
    return a <= Number.MAX_SAFE_INTEGER ? BigInt(a) : BigInt(p) << BigInt(this.shift);
  }

  // ---- tree allocator -----------------------------------------------------------------------------

  /** Ranges in the tree, excluding the anchor (cached free ranges included: they stay in the tree). */
  get size(): number {
    return this.tree.count - 1;
  }

  /** The counters (see {@link IovaStats}); a live view. */
  get stats(): IovaStats {
    return this.counters;
  }

  /**
   * All ranges in the tree in address order, excluding the anchor (ranges parked in the rcaches
   * are included: the kernel keeps them in the tree). For tests and diagnostics.
   */
  *iovas(): IterableIterator<Iova> {
    for (let n = this.tree.first(); n !== null && n !== this.anchor; n = rbNext(n)) yield n;
  }

  private assertAlive(): void {
    if (this.dead) throw new Error('IOVA domain used after putIovaDomain');
  }

  /** `__get_cached_rbnode`. */
  private cachedStart(limit: number): IovaNode {
    return limit <= this.dma32bitPfn ? this.cached32Node : this.cachedNode;
  }

  /** `iova_find_limit`: where a retry below `limit` (exclusive) starts. */
  private findLimit(limit: number): IovaNode {
    // Crude but cheap, as in the kernel: above 4 GiB start from the anchor.
    if (limit > this.dma32bitPfn) return this.anchor;
    let node = this.tree.root as IovaNode;
    while (node.pfnHi < limit) node = node.right as IovaNode;
    for (;;) {
      while (node.left !== null && node.left.pfnLo >= limit) node = node.left;
      if (node.left === null) return node;
      let next: IovaNode = node.left;
      let moved = false;
      while (next.right !== null) {
        next = next.right;
        if (next.pfnLo >= limit) {
          node = next;
          moved = true;
          break;
        }
      }
      if (!moved) return node;
    }
  }

  /**
   * Allocate `size` granules below `limitPfn` (`alloc_iova`): top-down first fit from the cached
   * search start (`cached32_node` for limits ≤ 4 GiB, else `cached_node`), with one retry over the
   * space above that start; see the module remarks for units.
   *
   * @param size - granules, a positive safe integer
   * @param limitPfn - highest PFN the range may use (inclusive), e.g. `dma_mask >> shift`; clamped
   *   to {@link IovaDomain.maxPfn}
   * @param sizeAligned - align the start to the next power of two ≥ `size`
   * @returns the new range, or `null` when no gap fits (the kernel's `-ENOMEM` inside; it then
   *   also records `size` as {@link IovaDomain.max32AllocSize})
   * @throws RangeError when `size` is not a positive safe integer
   */
  allocIova(size: number, limitPfn: number, sizeAligned: boolean): Iova | null {
    this.assertAlive();
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`bad IOVA size ${size}`);
    const node = this.allocAndInsert(size, Math.min(limitPfn, this.maxPfn) + 1, sizeAligned);
    if (node === null) {
      this.counters.treeAllocFailures++;
      return null;
    }
    this.counters.treeAllocs++;
    return node;
  }

  /** `__alloc_and_insert_iova_range` with the exclusive limit `limit`. */
  private allocAndInsert(size: number, limit: number, sizeAligned: boolean): IovaNode | null {
    const align = sizeAligned ? 2 ** fls(size - 1) : 1;
    if (limit <= this.dma32bitPfn && size >= this.max32AllocSize) return null;

    let curr: IovaNode | null = this.cachedStart(limit);
    let high = limit;
    let low = this.startPfn;
    const retryPfn = curr.pfnHi;
    let prev: IovaNode = curr;
    let newPfn: number;
    for (;;) {
      do {
        const c: IovaNode = curr as IovaNode;
        if (c.pfnLo < high) high = c.pfnLo;
        newPfn = high - size;
        if (align > 1) newPfn = Math.floor(newPfn / align) * align;
        prev = c;
        curr = rbPrev(c);
      } while (curr !== null && newPfn <= curr.pfnHi && newPfn >= low);

      if (high < size || newPfn < low) {
        if (low === this.startPfn && retryPfn < limit) {
          high = limit;
          low = retryPfn + 1;
          curr = this.findLimit(limit);
          continue;
        }
        this.max32AllocSize = size;
        return null;
      }
      break;
    }
    const node = new IovaNode(newPfn, newPfn + size - 1);
    this.tree.insertBefore(node, prev);
    // __cached_rbnode_insert_update
    if (node.pfnHi < this.dma32bitPfn) this.cached32Node = node;
    else this.cachedNode = node;
    return node;
  }

  /**
   * The range containing `pfn` (`find_iova`), or `null`; never the anchor.
   * @param pfn - granule units
   */
  findIova(pfn: number): Iova | null {
    this.assertAlive();
    const n = this.tree.find(pfn);
    return n === this.anchor ? null : n;
  }

  /** `remove_iova`: `__cached_rbnode_delete_update`, then unlink. */
  private removeNode(free: IovaNode): void {
    const c32 = this.cached32Node;
    if (free === c32 || (free.pfnHi < this.dma32bitPfn && free.pfnLo >= c32.pfnLo))
      this.cached32Node = rbNext(free) as IovaNode;
    if (free.pfnLo < this.dma32bitPfn) this.max32AllocSize = this.dma32bitPfn;
    if (free.pfnLo >= this.cachedNode.pfnLo) this.cachedNode = rbNext(free) as IovaNode;
    this.tree.remove(free);
    this.counters.treeFrees++;
  }

  /**
   * Free the range containing `pfn` (`free_iova`); nothing happens if there is none. The cached
   * search starts move past a freed range at or above them.
   * @param pfn - any PFN inside the range, granule units
   */
  freeIova(pfn: number): void {
    this.assertAlive();
    const n = this.tree.find(pfn);
    if (n !== null && n !== this.anchor) this.removeNode(n);
  }

  /**
   * Free a range obtained from this domain (`__free_iova`).
   * @param iova - the range; ignored if it is no longer in the tree
   */
  freeIovaRange(iova: Iova): void {
    this.assertAlive();
    if (
      iova instanceof IovaNode &&
      iova.linked &&
      iova !== this.anchor &&
      this.tree.find(iova.pfnLo) === iova
    )
      this.removeNode(iova);
  }

  /**
   * Keep `[pfnLo, pfnHi]` from ever being allocated (`reserve_iova`): ranges overlapping it are
   * extended downwards to cover it and the uncovered remainder above them becomes a new range.
   * The cached search starts are not touched.
   *
   * @param pfnLo - first PFN, granule units
   * @param pfnHi - last PFN (inclusive)
   * @returns the range now covering the top of the request, or `null` when the PFNs exceed the
   *   address width ({@link IovaDomain.maxPfn}; the kernel warns) or `pfnLo > pfnHi`
   */
  reserveIova(pfnLo: number, pfnHi: number): Iova | null {
    this.assertAlive();
    if (!Number.isSafeInteger(pfnLo) || !Number.isSafeInteger(pfnHi) || pfnLo < 0 || pfnLo > pfnHi)
      return null;
    if (pfnLo > this.maxPfn || pfnHi > this.maxPfn) return null;
    let lo = pfnLo;
    let overlap = false;
    for (let n = this.tree.first(); n !== null; n = rbNext(n)) {
      if (n.pfnLo <= pfnHi && lo <= n.pfnHi) {
        // __adjust_overlap_range
        if (lo < n.pfnLo) n.pfnLo = lo;
        if (pfnHi > n.pfnHi) lo = n.pfnHi + 1;
        if (lo >= n.pfnLo && pfnHi <= n.pfnHi) return n;
        overlap = true;
      } else if (overlap) {
        break;
      }
    }
    const node = new IovaNode(lo, pfnHi);
    this.tree.insert(node);
    return node;
  }

  // ---- rcaches -------------------------------------------------------------------------------------

  /** Whether {@link IovaDomain.initRcaches} has run (and `putIovaDomain` has not). */
  get hasRcaches(): boolean {
    return this.rcaches !== null;
  }

  /**
   * Set up the range caches (`iova_domain_init_rcaches`): {@link IOVA_RANGE_CACHE_MAX_SIZE} size
   * classes, each with an empty `loaded` and `prev` magazine per CPU and an empty depot. A second
   * call does nothing.
   */
  initRcaches(): void {
    this.assertAlive();
    if (this.rcaches !== null) return;
    const rcaches: IovaRcache[] = [];
    for (let i = 0; i < IOVA_RANGE_CACHE_MAX_SIZE; i++) {
      const cpuRcaches: IovaCpuRcache[] = [];
      for (let c = 0; c < this.nrCpus; c++)
        cpuRcaches.push({ loaded: new IovaMagazine(), prev: new IovaMagazine() });
      const rcache: IovaRcache = {
        depotSize: 0,
        depot: null,
        cpuRcaches,
        work: new DelayedWork(() => this.depotWork(rcache), `iova_depot_work_func/${i}`),
      };
      rcaches.push(rcache);
    }
    this.rcaches = rcaches;
  }

  private cpuRcache(rcache: IovaRcache): IovaCpuRcache {
    const c = rcache.cpuRcaches[this.cpu];
    if (c === undefined) throw new RangeError(`CPU ${this.cpu} out of range 0..${this.nrCpus - 1}`);
    return c;
  }

  /** `iova_magazine_free_pfns`: give every PFN of `mag` back to the tree and empty it. */
  private magazineFreePfns(mag: IovaMagazine): void {
    for (let i = 0; i < mag.size; i++) {
      const n = this.tree.find(mag.pfns[i] as number);
      if (n === null || n === this.anchor) continue; // the kernel warns
      this.removeNode(n);
    }
    mag.size = 0;
  }

  /** `iova_depot_pop`: the magazine on top of the depot, full. */
  private depotPop(rcache: IovaRcache): IovaMagazine {
    const mag = rcache.depot as IovaMagazine;
    rcache.depot = mag.next;
    mag.next = null;
    mag.size = IOVA_MAG_SIZE;
    rcache.depotSize--;
    return mag;
  }

  /** `iova_depot_work_func`: trim one magazine if the depot holds more than one per CPU. */
  private depotWork(rcache: IovaRcache): void {
    if (this.dead || rcache.depotSize <= this.nrCpus) return;
    const mag = this.depotPop(rcache);
    this.magazineFreePfns(mag);
    this.counters.depotTrims++;
    this.scheduler?.scheduleDelayedWork(rcache.work, IOVA_DEPOT_DELAY_NS);
  }

  /**
   * Run the depot trimming work of every size class until no depot holds more magazines than
   * there are CPUs (what the delayed work converges to). For domains without a scheduler, and
   * for tests.
   * @returns magazines trimmed
   */
  trimDepots(): number {
    this.assertAlive();
    let trimmed = 0;
    for (const rcache of this.rcaches ?? []) {
      while (rcache.depotSize > this.nrCpus) {
        this.magazineFreePfns(this.depotPop(rcache));
        this.counters.depotTrims++;
        trimmed++;
      }
    }
    return trimmed;
  }

  /** `__iova_rcache_insert`. */
  private rcacheInsert(rcache: IovaRcache, pfn: number): void {
    const cpuRcache = this.cpuRcache(rcache);
    let loaded = cpuRcache.loaded;
    if (loaded.size === IOVA_MAG_SIZE) {
      if (cpuRcache.prev.size !== IOVA_MAG_SIZE) {
        cpuRcache.loaded = cpuRcache.prev;
        cpuRcache.prev = loaded;
      } else {
        // A new empty magazine; the full one goes to the depot, trimmed later.
        loaded.next = rcache.depot;
        rcache.depot = loaded;
        rcache.depotSize++;
        this.counters.depotPushes++;
        this.scheduler?.scheduleDelayedWork(rcache.work, IOVA_DEPOT_DELAY_NS);
        cpuRcache.loaded = new IovaMagazine();
      }
      loaded = cpuRcache.loaded;
    }
    loaded.pfns[loaded.size++] = pfn;
  }

  /** `__iova_rcache_get`: a cached PFN ≤ `limit`, or 0. */
  private rcacheGet(rcache: IovaRcache, limit: number): number {
    const cpuRcache = this.cpuRcache(rcache);
    if (cpuRcache.loaded.size === 0) {
      if (cpuRcache.prev.size !== 0) {
        const t = cpuRcache.loaded;
        cpuRcache.loaded = cpuRcache.prev;
        cpuRcache.prev = t;
      } else if (rcache.depot !== null) {
        cpuRcache.loaded = this.depotPop(rcache);
      } else {
        return 0;
      }
    }
    // iova_magazine_pop: search from the top for a PFN under the limit, swap the last one in.
    const mag = cpuRcache.loaded;
    const pfns = mag.pfns;
    let i = mag.size - 1;
    while ((pfns[i] as number) > limit) {
      if (i === 0) return 0;
      i--;
    }
    const pfn = pfns[i] as number;
    pfns[i] = pfns[--mag.size] as number;
    return pfn;
  }

  /**
   * Allocate from the caches, else from the tree (`alloc_iova_fast`).
   *
   * @remarks
   * Sizes below 2^(IOVA_RANGE_CACHE_MAX_SIZE - 1) = 32 granules are rounded up to a power of two
   * (so a range freed into a class always has that class's size). A cached PFN is taken when it
   * is ≤ `limitPfn + 1 - size`; otherwise the tree is asked for a size-aligned range. If that
   * fails and `flushRcache` is set, every CPU's magazines and every depot are emptied back into
   * the tree and the tree is asked once more.
   *
   * @param size - granules, a positive safe integer
   * @param limitPfn - highest PFN the range may use (inclusive)
   * @param flushRcache - whether to flush the caches and retry on failure
   * @returns the first PFN of the range, or 0 when nothing fits
   * @throws RangeError when `size` is not a positive safe integer or {@link IovaDomain.cpu} is out of range
   */
  allocIovaFast(size: number, limitPfn: number, flushRcache: boolean): number {
    this.assertAlive();
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`bad IOVA size ${size}`);
    let sz = size;
    if (sz < 2 ** (IOVA_RANGE_CACHE_MAX_SIZE - 1)) sz = 2 ** orderBase2(sz);
    const rcaches = this.rcaches;
    if (rcaches !== null) {
      const logSize = orderBase2(sz);
      if (logSize < IOVA_RANGE_CACHE_MAX_SIZE) {
        const pfn = this.rcacheGet(rcaches[logSize] as IovaRcache, Math.min(limitPfn, this.maxPfn) + 1 - sz);
        if (pfn !== 0) {
          this.counters.rcacheHits++;
          return pfn;
        }
        this.counters.rcacheMisses++;
      }
    }
    let flush = flushRcache;
    for (;;) {
      const iova = this.allocIova(sz, limitPfn, true);
      if (iova !== null) return iova.pfnLo;
      if (!flush || rcaches === null) return 0;
      flush = false;
      this.flushRcaches();
    }
  }

  /**
   * Free a range obtained from {@link IovaDomain.allocIovaFast} (`free_iova_fast`): into the
   * current CPU's cache of its size class when `size` is cacheable, else back to the tree.
   *
   * @param pfn - first PFN of the range
   * @param size - the size that was asked for, granules (its class is `order_base_2(size)`)
   */
  freeIovaFast(pfn: number, size: number): void {
    this.assertAlive();
    const rcaches = this.rcaches;
    if (rcaches !== null) {
      const logSize = orderBase2(size);
      if (logSize < IOVA_RANGE_CACHE_MAX_SIZE) {
        this.rcacheInsert(rcaches[logSize] as IovaRcache, pfn);
        this.counters.rcacheInserts++;
        return;
      }
    }
    this.freeIova(pfn);
  }

  /**
   * Give one CPU's cached ranges back to the tree (`free_cpu_cached_iovas`; the kernel calls it
   * when a CPU goes offline).
   * @param cpu - `0 … nrCpus - 1`
   */
  freeCpuCachedIovas(cpu: number): void {
    this.assertAlive();
    for (const rcache of this.rcaches ?? []) {
      const c = rcache.cpuRcaches[cpu];
      if (c === undefined) throw new RangeError(`CPU ${cpu} out of range 0..${this.nrCpus - 1}`);
      this.magazineFreePfns(c.loaded);
      this.magazineFreePfns(c.prev);
    }
  }

  /** Give every depot's ranges back to the tree and drop the magazines (`free_global_cached_iovas`). */
  freeGlobalCachedIovas(): void {
    this.assertAlive();
    for (const rcache of this.rcaches ?? []) {
      while (rcache.depot !== null) this.magazineFreePfns(this.depotPop(rcache));
    }
  }

  /** Flush everything cached: all CPUs, then the depots (the retry path of `alloc_iova_fast`). */
  flushRcaches(): void {
    for (let c = 0; c < this.nrCpus; c++) this.freeCpuCachedIovas(c);
    this.freeGlobalCachedIovas();
    this.counters.rcacheFlushes++;
  }

  /**
   * PFNs currently parked in the caches, per size class (index = `order_base_2(size)`). For tests
   * and diagnostics; every one of them is still a range in the tree.
   */
  cachedPfns(): number[][] {
    const out: number[][] = [];
    for (const rcache of this.rcaches ?? []) {
      const pfns: number[] = [];
      const add = (m: IovaMagazine): void => {
        for (let i = 0; i < m.size; i++) pfns.push(m.pfns[i] as number);
      };
      for (const c of rcache.cpuRcaches) {
        add(c.loaded);
        add(c.prev);
      }
      for (let m = rcache.depot; m !== null; m = m.next) add(m);
      out.push(pfns);
    }
    return out;
  }

  /** Magazines on the depot of size class `order` (`depot_size`), 0 without rcaches. */
  depotSize(order: number): number {
    return this.rcaches?.[order]?.depotSize ?? 0;
  }

  /**
   * Tear the domain down (`put_iova_domain`): cancel the depot works, drop the caches (the cached
   * ranges are freed with the tree) and every range. The domain must not be used afterwards
   * (calls then throw); a second call does nothing.
   */
  putIovaDomain(): void {
    if (this.dead) return;
    for (const rcache of this.rcaches ?? []) {
      if (this.scheduler !== undefined) cancelDelayedWorkSync(rcache.work);
    }
    this.rcaches = null;
    this.dead = true;
    this.tree.root = null;
    this.tree.count = 0;
  }

  /**
   * Check the tree's red-black and ordering invariants and that the cached search starts are in
   * the tree (for tests).
   * @throws Error describing the first violation
   */
  checkInvariants(): void {
    this.tree.check();
    if (!this.cachedNode.linked || !this.cached32Node.linked) throw new Error('cached node not in tree');
  }
}

/**
 * Create an IOVA space (`init_iova_domain`).
 *
 * @param granule - allocation unit in bytes: a power of two ≤ 4096 (the CPU page size); the DMA
 *   layer uses the domain's smallest page size
 * @param startPfn - lowest PFN handed out (granule units); the DMA layer uses
 *   `max(1, aperture_start >> shift)` so that IOVA 0 is never returned
 * @param options - CPU count and scheduler, see {@link IovaDomainOptions}
 * @returns the domain, without rcaches (call {@link IovaDomain.initRcaches})
 * @throws RangeError for a bad granule or start PFN (the kernel's `BUG_ON`)
 * @public
 */
export function initIovaDomain(
  granule: number,
  startPfn: number,
  options: IovaDomainOptions = {},
): IovaDomain {
  return new IovaDomain(granule, startPfn, options);
}
