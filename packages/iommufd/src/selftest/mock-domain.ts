/**
 * Domains of the iommufd selftest mock IOMMU (`struct mock_iommu_domain`,
 * `struct mock_iommu_domain_nested` in drivers/iommu/iommufd/selftest.c).
 *
 * A mock paging domain is a dictionary from mock-page index (IOVA / `MOCK_IO_PAGE_SIZE`) to what
 * that 2 KiB IO page maps: its physical address, the protection bits and a dirty bit. Entries
 * also remember whether they began or ended a `map_pages` call so that unmaps can be checked to be
 * supersets of maps, as the kernel's mock does with `WARN_ON`. Such warnings are collected in
 * {@link MockDomainContext.warnings} rather than thrown, so a test can assert there were none.
 */

import { ErrnoError, shouldFail } from '@iommu-ts/base';
import {
  type Device,
  IOMMU_DIRTY_NO_CLEAR,
  IOMMU_DOMAIN_BLOCKED,
  IOMMU_DOMAIN_NESTED,
  IOMMU_DOMAIN_UNMANAGED,
  type IommuDirtyBitmap,
  type IommuDirtyOps,
  IommuDomain,
  type IommuDomainOps,
} from '@iommu-ts/iommu-core';
import {
  type IommufdCacheInvalidateOps,
  type IommuUserDataArray,
  iommuCopyStructFromUserArray,
} from '../hw-pagetable.js';
import {
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_IO_PAGE_SIZE,
  MOCK_NESTED_DOMAIN_IOTLB_ID_MAX,
  MOCK_NESTED_DOMAIN_IOTLB_NUM,
} from '../selftest-uapi.js';

const MOCK_PAGE = MOCK_IO_PAGE_SIZE;

/** What a mock domain reports back to its driver: warnings (`WARN_ON`s of the kernel's mock). */
export interface MockDomainContext {
  /** Every warning raised so far, oldest first. A correct iommufd raises none. */
  readonly warnings: string[];
}

/** Packed entry layout of {@link MockIommuDomain}: value = (pa / 2 KiB) * ENTRY_SCALE + bits. */
const ENTRY_SCALE = 1024;
const PROT_MASK = 0x3f;
const F_DIRTY = 1 << 6;
const F_START = 1 << 7;
const F_LAST = 1 << 8;
const F_HUGE = 1 << 9;
const MOCK_PAGE_NUM = Number(MOCK_IO_PAGE_SIZE);

/** One mapped mock IO page (an `xa_mk_value` entry of the kernel's mock `pfns` xarray). */
export interface MockPfnEntry {
  /** Physical address of the 2 KiB IO page (a multiple of `MOCK_IO_PAGE_SIZE`). */
  pa: bigint;
  /** `IOMMU_READ | IOMMU_WRITE | ...` given to `map_pages`. */
  prot: number;
  /** `MOCK_PFN_DIRTY_IOVA`: written since the dirty state was last cleared. */
  dirty: boolean;
  /** `MOCK_PFN_START_IOVA`: the first IO page of a `map_pages` call. */
  start: boolean;
  /** `MOCK_PFN_LAST_IOVA`: the last IO page of a `map_pages` call. */
  last: boolean;
  /** `MOCK_PFN_HUGE_IOVA`: part of a `MOCK_HUGE_PAGE_SIZE` mapping. */
  huge: boolean;
}

/** The attach rule of every mock domain: a dirty-tracking domain refuses a NO_DIRTY device. */
function mockAttachCheck(domain: IommuDomain, dev: Device): void {
  const flags = (dev as { flags?: unknown }).flags;
  if (domain.dirtyOps !== null && typeof flags === 'number' && flags & MOCK_FLAGS_DEVICE_NO_DIRTY)
    throw new ErrnoError('EINVAL', `${dev.name}: cannot track dirty pages`);
}

/** Domain ops of the mock blocking domain (`mock_blocking_ops`): attach is a no-op. */
const mockBlockingOps: IommuDomainOps = {
  attachDev(domain, dev) {
    mockAttachCheck(domain, dev);
  },
  setDevPasid() {},
};

/**
 * A new mock blocking domain (`mock_blocking_domain`): static (no owner), type BLOCKED; used as
 * the mock driver's default, blocked and release domain.
 * @returns the domain
 */
export function mockBlockingDomainCreate(): IommuDomain {
  return new IommuDomain(mockBlockingOps, { type: IOMMU_DOMAIN_BLOCKED });
}

/**
 * A mock paging domain (`struct mock_iommu_domain`): IOVA aperture `[MOCK_APERTURE_START,
 * MOCK_APERTURE_LAST]`, page size `MOCK_IO_PAGE_SIZE` (plus `MOCK_HUGE_PAGE_SIZE` when created for
 * a `MOCK_FLAGS_DEVICE_HUGE_IOVA` device), dirty tracking when allocated with
 * `IOMMU_HWPT_ALLOC_DIRTY_TRACKING`.
 */
export class MockIommuDomain extends IommuDomain {
  /**
   * `pfns`: mock-page index (IOVA / `MOCK_IO_PAGE_SIZE`) to a packed entry: the physical page
   * number in 2 KiB units times 1024, plus `prot` (bits 0-5) and the dirty, start, last and huge
   * flags (bits 6-9). Read entries with {@link MockIommuDomain.entryAt}.
   */
  private readonly pfns: Map<number, number> = new Map();
  /** `MOCK_DIRTY_TRACK` in `mock->flags`: dirty tracking is switched on. */
  dirtyTracking = false;
  /** The allocation flags (`IOMMU_HWPT_ALLOC_*`). */
  readonly allocFlags: number;
  /** Where warnings go. */
  readonly context: MockDomainContext;

  /**
   * Use the mock driver's `domainAllocPagingFlags`.
   * @param ops - the mock paging domain ops ({@link mockPagingDomainOps})
   * @param context - where warnings go
   * @param options - `huge`: add `MOCK_HUGE_PAGE_SIZE`; `dirtyOps`: install dirty tracking; `flags`
   */
  constructor(
    ops: IommuDomainOps,
    context: MockDomainContext,
    options: { huge: boolean; dirtyOps: IommuDirtyOps | null; flags: number },
  ) {
    super(ops, {
      type: IOMMU_DOMAIN_UNMANAGED,
      pgsizeBitmap: MOCK_PAGE | (options.huge ? MOCK_HUGE_PAGE_SIZE : 0n),
      geometry: { apertureStart: MOCK_APERTURE_START, apertureEnd: MOCK_APERTURE_LAST, forceAperture: true },
    });
    this.context = context;
    this.dirtyOps = options.dirtyOps;
    this.allocFlags = options.flags;
  }

  /**
   * The entry mapping `iova` (any byte of a mock page), or undefined.
   * @param iova - IOVA
   */
  entryAt(iova: bigint): MockPfnEntry | undefined {
    const v = this.pfns.get(Number(iova / MOCK_PAGE));
    if (v === undefined) return undefined;
    const bits = v % ENTRY_SCALE;
    return {
      pa: BigInt((v - bits) / ENTRY_SCALE) * MOCK_PAGE,
      prot: bits & PROT_MASK,
      dirty: (bits & F_DIRTY) !== 0,
      start: (bits & F_START) !== 0,
      last: (bits & F_LAST) !== 0,
      huge: (bits & F_HUGE) !== 0,
    };
  }

  /** Number of mapped mock pages. */
  get mappedPages(): number {
    return this.pfns.size;
  }

  private warn(msg: string): void {
    this.context.warnings.push(msg);
  }

  /**
   * `mock_domain_map_pages`: one entry per mock page of `pgcount` pages of `pgsize` bytes.
   * @returns bytes mapped
   */
  mapPages(iova: bigint, paddr: bigint, pgsize: number, pgcount: number, prot: number): number {
    if (iova % MOCK_PAGE !== 0n) this.warn(`map_pages: IOVA 0x${iova.toString(16)} not mock-page aligned`);
    const size = BigInt(pgsize);
    if (size % MOCK_PAGE !== 0n) this.warn(`map_pages: page size ${pgsize} not a mock-page multiple`);
    const huge = size === MOCK_HUGE_PAGE_SIZE ? F_HUGE : 0;
    const per = pgsize / MOCK_PAGE_NUM;
    const total = per * pgcount;
    const key0 = Number(iova / MOCK_PAGE);
    const pfn0 = Number(paddr / MOCK_PAGE);
    const flags = (prot & PROT_MASK) | huge;
    if (shouldFail('iommufd.mock_map')) throw new ErrnoError('ENOMEM', 'injected: mock domain xa_store');
    for (let i = 0; i < total; i++) {
      const key = key0 + i;
      if (this.pfns.has(key))
        this.warn(`map_pages: IOVA 0x${(BigInt(key) * MOCK_PAGE).toString(16)} already mapped`);
      const bits = flags | (i === 0 ? F_START : 0) | (i === total - 1 ? F_LAST : 0);
      this.pfns.set(key, (pfn0 + i) * ENTRY_SCALE + bits);
    }
    return total * MOCK_PAGE_NUM;
  }

  /**
   * `mock_domain_unmap_pages`: erase the entries; the first must have started a map and the last
   * ended one (else a warning).
   * @returns bytes unmapped (always `pgsize * pgcount`, as the kernel's mock)
   */
  unmapPages(iova: bigint, pgsize: number, pgcount: number): number {
    if (iova % MOCK_PAGE !== 0n) this.warn(`unmap_pages: IOVA 0x${iova.toString(16)} not mock-page aligned`);
    const size = BigInt(pgsize);
    if (size % MOCK_PAGE !== 0n) this.warn(`unmap_pages: page size ${pgsize} not a mock-page multiple`);
    const total = (pgsize / MOCK_PAGE_NUM) * pgcount;
    const key0 = Number(iova / MOCK_PAGE);
    for (let i = 0; i < total; i++) {
      const key = key0 + i;
      const v = this.pfns.get(key);
      if (v === undefined) continue;
      this.pfns.delete(key);
      const bits = v % ENTRY_SCALE;
      if (i === 0 && (bits & F_START) === 0)
        this.warn(`unmap_pages: 0x${iova.toString(16)} did not start a map`);
      if (i === total - 1 && (bits & F_LAST) === 0)
        this.warn(`unmap_pages: 0x${(BigInt(key) * MOCK_PAGE).toString(16)} did not end a map`);
    }
    return total * MOCK_PAGE_NUM;
  }

  /**
   * `mock_domain_iova_to_phys`: the physical address `iova` maps to (0 with a warning when
   * unmapped; a warning for an IOVA that is not mock-page aligned).
   */
  iovaToPhys(iova: bigint): bigint {
    if (iova % MOCK_PAGE !== 0n) this.warn(`iova_to_phys: IOVA 0x${iova.toString(16)} not mock-page aligned`);
    const ent = this.entryAt(iova);
    if (!ent) {
      this.warn(`iova_to_phys: IOVA 0x${iova.toString(16)} not mapped`);
      return 0n;
    }
    return ent.pa + (iova % MOCK_PAGE);
  }

  /**
   * `mock_domain_set_dirty_tracking`.
   * @throws ErrnoError `EINVAL` when enabling on a domain without dirty ops
   */
  setDirtyTracking(enabled: boolean): void {
    if (enabled && this.dirtyOps === null) throw new ErrnoError('EINVAL', 'domain has no dirty tracking');
    this.dirtyTracking = enabled;
  }

  /**
   * Test and (unless `IOMMU_DIRTY_NO_CLEAR`) clear the dirty bits of the mock pages in
   * `[iova, iova + size)` (`mock_test_and_clear_dirty`).
   */
  private testAndClearDirty(iova: bigint, size: bigint, flags: number): boolean {
    let dirty = false;
    for (let cur = iova; cur < iova + size; cur += MOCK_PAGE) {
      const key = Number(cur / MOCK_PAGE);
      const v = this.pfns.get(key);
      if (v === undefined || ((v % ENTRY_SCALE) & F_DIRTY) === 0) continue;
      dirty = true;
      if (!(flags & IOMMU_DIRTY_NO_CLEAR)) this.pfns.set(key, v - F_DIRTY);
    }
    return dirty;
  }

  /**
   * `mock_domain_read_and_clear_dirty`: walk `[iova, iova + size)` by mapped page (a whole huge
   * page for huge entries) and record every page with a dirty mock page in it.
   * @throws ErrnoError `EINVAL` when tracking is off and `dirty` carries a bitmap
   */
  readAndClearDirty(iova: bigint, size: bigint, flags: number, dirty: IommuDirtyBitmap): void {
    const hasBitmap = (dirty as { bitmap?: unknown }).bitmap;
    if (!this.dirtyTracking && hasBitmap !== undefined && hasBitmap !== null)
      throw new ErrnoError('EINVAL', 'dirty tracking is off');
    const end = iova + size;
    let cur = iova;
    while (cur < end) {
      const ent = this.entryAt(cur);
      if (!ent) {
        cur += MOCK_PAGE;
        continue;
      }
      const pgsize = ent.huge ? MOCK_HUGE_PAGE_SIZE : MOCK_PAGE;
      const head = cur - (cur % pgsize);
      if (this.testAndClearDirty(head, pgsize, flags)) dirty.record(head, pgsize);
      cur = head + pgsize;
    }
  }

  /**
   * The selftest's DIRTY op: mark the mapped mock page at `iova` dirty.
   * @param iova - IOVA
   * @returns whether a mapped page was there
   */
  markDirty(iova: bigint): boolean {
    const key = Number(iova / MOCK_PAGE);
    const v = this.pfns.get(key);
    if (v === undefined) return false;
    if (((v % ENTRY_SCALE) & F_DIRTY) === 0) this.pfns.set(key, v + F_DIRTY);
    return true;
  }
}

/** The mock driver's dirty ops (`dirty_ops`), installed on DIRTY_TRACKING domains. */
export const mockDirtyOps: IommuDirtyOps = {
  setDirtyTracking(domain, enabled) {
    (domain as MockIommuDomain).setDirtyTracking(enabled);
  },
  readAndClearDirty(domain, iova, size, flags, dirty) {
    (domain as MockIommuDomain).readAndClearDirty(iova, size, flags, dirty);
  },
};

/**
 * The mock paging domain ops (`mock_ops.default_domain_ops`): attach (refusing dirty-tracking
 * domains on NO_DIRTY devices), PASID set (no-op), map, unmap, iova_to_phys, free (warning if
 * mappings remain).
 */
export const mockPagingDomainOps: IommuDomainOps = {
  attachDev(domain, dev) {
    mockAttachCheck(domain, dev);
  },
  setDevPasid(domain, dev) {
    mockAttachCheck(domain, dev);
  },
  mapPages(domain, iova, paddr, pgsize, pgcount, prot) {
    return (domain as MockIommuDomain).mapPages(iova, paddr, pgsize, pgcount, prot);
  },
  unmapPages(domain, iova, pgsize, pgcount) {
    return (domain as MockIommuDomain).unmapPages(iova, pgsize, pgcount);
  },
  iovaToPhys(domain, iova) {
    return (domain as MockIommuDomain).iovaToPhys(iova);
  },
  free(domain) {
    const mock = domain as MockIommuDomain;
    if (mock.mappedPages !== 0)
      mock.context.warnings.push(`domain freed with ${mock.mappedPages} mock pages mapped`);
  },
};

/**
 * A mock nested domain (`struct mock_iommu_domain_nested`): type NESTED on a mock paging parent,
 * with a 4-entry "IOTLB" initialised from the user data and cleared by invalidations.
 */
export class MockIommuDomainNested extends IommuDomain {
  /** The stage-2 parent. */
  readonly parent: MockIommuDomain;
  /** `iotlb[MOCK_NESTED_DOMAIN_IOTLB_NUM]`. */
  readonly iotlb: number[];

  /**
   * Use the mock driver's `domainAllocNested`.
   * @param parent - the paging parent
   * @param iotlb - initial value of every IOTLB entry (`iommu_hwpt_selftest.iotlb`)
   */
  constructor(parent: MockIommuDomain, iotlb: number) {
    super(mockNestedDomainOps, { type: IOMMU_DOMAIN_NESTED });
    this.parent = parent;
    this.iotlb = new Array<number>(MOCK_NESTED_DOMAIN_IOTLB_NUM).fill(iotlb >>> 0);
  }

  /**
   * `mock_domain_cache_invalidate_user` for one entry `iommu_hwpt_invalidate_selftest`.
   * @param flags - 0 or `IOMMU_TEST_INVALIDATE_FLAG_ALL`
   * @param iotlbId - entry to clear (ignored with FLAG_ALL)
   * @throws ErrnoError `EOPNOTSUPP` unknown flags; `EINVAL` `iotlbId` above 3
   */
  invalidateEntry(flags: number, iotlbId: number): void {
    if ((flags >>> 0) & ~IOMMU_TEST_INVALIDATE_FLAG_ALL)
      throw new ErrnoError('EOPNOTSUPP', 'unknown invalidation flags');
    if (iotlbId > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX) throw new ErrnoError('EINVAL', `IOTLB id ${iotlbId}`);
    if (flags & IOMMU_TEST_INVALIDATE_FLAG_ALL) this.iotlb.fill(0);
    else this.iotlb[iotlbId] = 0;
  }
}

/** Size of `struct iommu_hwpt_invalidate_selftest` {flags u32, iotlb_id u32}. */
const INVALIDATE_SELFTEST_SIZE = 8;

/**
 * `mock_domain_cache_invalidate_user`: handle the `iommu_hwpt_invalidate_selftest` entries of
 * `array` in order, setting `array.entryNum` to the number handled, also on failure.
 * @throws ErrnoError `EINVAL` (data type other than `IOMMU_HWPT_INVALIDATE_DATA_SELFTEST`, entry
 *   shorter than 8 bytes, `iotlb_id` above 3), `EOPNOTSUPP` (unknown entry flags), `E2BIG`, `EFAULT`
 */
function mockCacheInvalidateUser(domain: IommuDomain, array: IommuUserDataArray): void {
  const nested = domain as MockIommuDomainNested;
  let processed = 0;
  try {
    if (array.type !== IOMMU_HWPT_INVALIDATE_DATA_SELFTEST)
      throw new ErrnoError('EINVAL', 'invalidation data of another type');
    for (let i = 0; i < array.entryNum; i++) {
      if (array.entryLen < INVALIDATE_SELFTEST_SIZE) throw new ErrnoError('EINVAL', 'entry too short');
      const raw = iommuCopyStructFromUserArray(
        array,
        IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
        i,
        INVALIDATE_SELFTEST_SIZE,
      );
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      nested.invalidateEntry(view.getUint32(0, true), view.getUint32(4, true));
      processed++;
    }
  } finally {
    array.entryNum = processed;
  }
}

/**
 * The mock nested domain ops (`domain_nested_ops`): attach with the NO_DIRTY rule, PASID no-op,
 * and the user cache invalidation IOMMU_HWPT_INVALIDATE reaches (`IommufdCacheInvalidateOps`).
 */
export const mockNestedDomainOps: IommuDomainOps & IommufdCacheInvalidateOps = {
  attachDev(domain, dev) {
    mockAttachCheck(domain, dev);
  },
  setDevPasid(domain, dev) {
    mockAttachCheck(domain, dev);
  },
  cacheInvalidateUser: mockCacheInvalidateUser,
};
