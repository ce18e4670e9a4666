/**
 * Cache tags of a domain and the IOTLB / device-TLB flushes built from them
 * (drivers/iommu/intel/cache.c `cache_tag_assign_domain`, `cache_tag_unassign_domain`,
 * `cache_tag_flush_range`, `cache_tag_flush_all`, `cache_tag_flush_range_np`,
 * `calculate_psi_aligned_address`; digest §8.8, §8.9).
 *
 * @remarks
 * Descriptors are collected per unit into a `QiBatch` (up to 16, one wait descriptor each
 * submission); a unit without queued invalidation gets register-based IOTLB flushes. Device-TLB
 * descriptors are not issued while the unit's translation is disabled (GCMD shadow without TE).
 */

import { pciDevid } from './context.js';
import type { DeviceDomainInfo } from './device-info.js';
import type { IntelIommu } from './intel-iommu.js';
import { IOMMU_NO_PASID } from './pasid.js';
import { QiBatch, qiDescDevIotlb, qiDescDevIotlbPasid, qiDescIotlb, qiDescPiotlb } from './qi.js';
import { capMaxAmaskVal, capPgselInv, DMA_GCMD_TE, MAX_AGAW_PFN_WIDTH } from './regs.js';

/** `enum cache_tag_type`. */
export type CacheTagType = 'iotlb' | 'devtlb' | 'nesting_iotlb' | 'nesting_devtlb';

/** One cache tag (`struct cache_tag`): what a flush of the domain must reach. */
export interface CacheTag {
  /** The tag type. */
  readonly type: CacheTagType;
  /** The unit. */
  readonly iommu: IntelIommu;
  /** The device (device-TLB tags), null for IOTLB tags (shared by every device of the unit). */
  readonly info: DeviceDomainInfo | null;
  /** The DID on that unit. */
  readonly domainId: number;
  /** The PASID (0 = `IOMMU_NO_PASID`). */
  readonly pasid: number;
  /** Reference count. */
  users: number;
}

/** What the flush code needs of a domain. */
export interface CacheTagOwner {
  /** `cache_tags`, tags of one unit kept together. */
  readonly cacheTags: CacheTag[];
  /** `intel_domain_use_piotlb`: first-stage, SVA and nested domains use PASID-based IOTLB. */
  readonly usePiotlb: boolean;
  /** `use_first_level`. */
  readonly useFirstLevel: boolean;
  /** Test hook: skip every flush. */
  readonly testHooks: { readonly skipInvalidation: boolean };
}

/**
 * `cache_tag_assign`: take a reference on the matching tag or insert a new one after the last tag
 * of the same unit (at the head when the unit has none).
 */
function assign(owner: CacheTagOwner, tag: Omit<CacheTag, 'users'>): void {
  let prev = -1;
  for (let i = 0; i < owner.cacheTags.length; i++) {
    const t = owner.cacheTags[i] as CacheTag;
    if (
      t.type === tag.type &&
      t.iommu === tag.iommu &&
      t.domainId === tag.domainId &&
      t.pasid === tag.pasid &&
      t.info === tag.info
    ) {
      t.users++;
      return;
    }
    if (t.iommu === tag.iommu) prev = i;
  }
  owner.cacheTags.splice(prev + 1, 0, { ...tag, users: 1 });
}

function unassign(owner: CacheTagOwner, tag: Omit<CacheTag, 'users'>): void {
  const i = owner.cacheTags.findIndex(
    (t) =>
      t.type === tag.type &&
      t.iommu === tag.iommu &&
      t.domainId === tag.domainId &&
      t.pasid === tag.pasid &&
      t.info === tag.info,
  );
  if (i < 0) return;
  const t = owner.cacheTags[i] as CacheTag;
  if (--t.users === 0) owner.cacheTags.splice(i, 1);
}

/**
 * `cache_tag_assign_domain(domain, dev, pasid)`: an IOTLB tag (unit, DID, PASID) and, with ATS
 * enabled, a device-TLB tag (device, DID, PASID).
 * @param owner - the domain
 * @param did - the domain's DID on the device's unit
 * @param info - the device
 * @param pasid - the PASID (0 for the RID)
 */
export function cacheTagAssignDomain(
  owner: CacheTagOwner,
  did: number,
  info: DeviceDomainInfo,
  pasid: number,
): void {
  assign(owner, { type: 'iotlb', iommu: info.iommu, info: null, domainId: did, pasid });
  if (info.atsEnabled) assign(owner, { type: 'devtlb', iommu: info.iommu, info, domainId: did, pasid });
}

/**
 * `cache_tag_unassign_domain`: drop the references taken by {@link cacheTagAssignDomain}.
 * @param owner - the domain
 * @param did - the DID
 * @param info - the device
 * @param pasid - the PASID
 */
export function cacheTagUnassignDomain(
  owner: CacheTagOwner,
  did: number,
  info: DeviceDomainInfo,
  pasid: number,
): void {
  unassign(owner, { type: 'iotlb', iommu: info.iommu, info: null, domainId: did, pasid });
  unassign(owner, { type: 'devtlb', iommu: info.iommu, info, domainId: did, pasid });
}

/**
 * `calculate_psi_aligned_address(start, end)`: the page-selective invalidation covering the
 * inclusive byte range `[start, end]`.
 * @param start - first byte
 * @param end - last byte (inclusive)
 * @returns `addr` (aligned down to 2^mask pages), `pages` (2^mask) and `mask` (52 = everything)
 */
export function calculatePsiAlignedAddress(
  start: bigint,
  end: bigint,
): { addr: bigint; pages: bigint; mask: number } {
  const first = start >> 12n;
  const last = end >> 12n;
  const pages = last - first + 1n;
  let aligned = 1n;
  while (aligned < pages) aligned <<= 1n;
  let mask = aligned.toString(2).length - 1;
  const bitmask = aligned - 1n;
  if ((first & bitmask) !== 0n) {
    const endPfn = first + pages - 1n;
    const shared = ~(first ^ endPfn) & ~bitmask & ((1n << 64n) - 1n);
    if (shared === 0n) mask = MAX_AGAW_PFN_WIDTH;
    else {
      let b = 0;
      while (((shared >> BigInt(b)) & 1n) === 0n) b++;
      mask = b;
    }
    aligned = 1n << BigInt(mask);
  }
  const align = 1n << BigInt(12 + mask);
  return { addr: start & ~(align - 1n), pages: aligned, mask };
}

/** Per-flush state: the current unit's batch. */
class Flusher {
  #batch: QiBatch | null = null;

  /** The batch for `iommu`, submitting the previous unit's batch first. */
  batchFor(iommu: IntelIommu): QiBatch | null {
    if (this.#batch !== null && this.#batch.iommu !== iommu) this.#batch.flush();
    if (iommu.qi === null) {
      this.#batch = null;
      return null;
    }
    if (this.#batch === null || this.#batch.iommu !== iommu) this.#batch = new QiBatch(iommu);
    return this.#batch;
  }

  /** Submit what is left. */
  finish(): void {
    this.#batch?.flush();
    this.#batch = null;
  }
}

/** `cache_tag_flush_iotlb(domain, tag, addr, pages, mask, ih)`; `pages` 'all' = everything. */
function flushIotlb(
  f: Flusher,
  owner: CacheTagOwner,
  tag: CacheTag,
  addr: bigint,
  pages: bigint | 'all',
  mask: number,
  ih: boolean,
): void {
  const iommu = tag.iommu;
  const batch = f.batchFor(iommu);
  if (owner.usePiotlb) {
    // A PASID-based page-selective flush cannot name a mask beyond CAP.MAMV (the unit refuses the
    // descriptor with IQE); Linux computes the mask without that check, which a large SVA munmap
    // (freed page tables: a 2^27-page range) exceeds. Flush the whole PASID instead, as the
    // domain-selective fallback does for second-level flushes.
    const tooBig = pages !== 'all' && Math.ceil(Math.log2(Number(pages))) > capMaxAmaskVal(iommu.cap);
    const n = pages === 'all' || tooBig ? 'all' : Number(pages);
    batch?.add(qiDescPiotlb(tag.domainId, tag.pasid, addr, n, ih));
    return;
  }
  let a = addr;
  let m = mask;
  let gran: 'page' | 'domain' = 'page';
  if (!capPgselInv(iommu.cap) || m > capMaxAmaskVal(iommu.cap) || pages === 'all') {
    a = 0n;
    m = 0;
    gran = 'domain';
  }
  if (batch !== null) batch.add(qiDescIotlb(iommu, tag.domainId, a, m, gran));
  else iommu.flushIotlb(tag.domainId, a, m, gran);
}

/** `cache_tag_flush_devtlb_psi` / `_all`: type 3 for PASID 0, type 8 otherwise (twice for quirk devices). */
function flushDevtlb(f: Flusher, tag: CacheTag, addr: bigint, mask: number, nonPasidForm: boolean): void {
  const info = tag.info;
  const iommu = tag.iommu;
  if (info === null || (iommu.gcmd & DMA_GCMD_TE) === 0) return;
  const batch = f.batchFor(iommu);
  if (batch === null) return;
  const sid = pciDevid(info.bus, info.devfn);
  const n = info.dtlbExtraInval ? 2 : 1;
  for (let i = 0; i < n; i++) {
    if (tag.pasid === IOMMU_NO_PASID || nonPasidForm)
      batch.add(qiDescDevIotlb(sid, info.pfsid, info.atsQdep, addr, mask));
    else batch.add(qiDescDevIotlbPasid(sid, info.pfsid, tag.pasid, info.atsQdep, addr, mask));
  }
}

/**
 * `cache_tag_flush_range(domain, start, end, ih)`: the invalidations after an unmap of the
 * inclusive byte range `[start, end]` (digest §8.8).
 * @param owner - the domain
 * @param start - first byte
 * @param end - last byte (inclusive)
 * @param ih - invalidation hint: no page-table page was freed
 * @throws ErrnoError from the queue
 */
export function cacheTagFlushRange(owner: CacheTagOwner, start: bigint, end: bigint, ih: boolean): void {
  if (owner.testHooks.skipInvalidation) return;
  const { addr, pages, mask } = calculatePsiAlignedAddress(start, end);
  const all = mask >= MAX_AGAW_PFN_WIDTH;
  const f = new Flusher();
  for (const tag of owner.cacheTags) {
    switch (tag.type) {
      case 'iotlb':
      case 'nesting_iotlb':
        flushIotlb(f, owner, tag, addr, all ? 'all' : pages, mask, ih);
        break;
      case 'nesting_devtlb':
        flushDevtlb(f, tag, 0n, MAX_AGAW_PFN_WIDTH, false);
        break;
      case 'devtlb':
        flushDevtlb(f, tag, addr, mask, false);
        break;
    }
  }
  f.finish();
}

/**
 * `cache_tag_flush_all(domain)`: PASID-based IOTLB "all" or domain-selective IOTLB per IOTLB tag,
 * type-3 device-TLB over everything per device-TLB tag.
 * @param owner - the domain
 * @throws ErrnoError from the queue
 */
export function cacheTagFlushAll(owner: CacheTagOwner): void {
  if (owner.testHooks.skipInvalidation) return;
  const f = new Flusher();
  for (const tag of owner.cacheTags) {
    if (tag.type === 'iotlb' || tag.type === 'nesting_iotlb') flushIotlb(f, owner, tag, 0n, 'all', 0, false);
    else flushDevtlb(f, tag, 0n, MAX_AGAW_PFN_WIDTH, true);
  }
  f.finish();
}

/**
 * `cache_tag_flush_range_np(domain, start, end)` (`iotlb_sync_map`): without caching mode, or for
 * first-stage domains, a write-buffer flush per tag; otherwise page-selective IOTLB invalidation
 * of the new range (for caching-mode hardware that caches not-present entries).
 * @param owner - the domain
 * @param start - first byte
 * @param end - last byte (inclusive)
 * @throws ErrnoError from the queue
 */
export function cacheTagFlushRangeNp(owner: CacheTagOwner, start: bigint, end: bigint): void {
  const { addr, pages, mask } = calculatePsiAlignedAddress(start, end);
  const all = mask >= MAX_AGAW_PFN_WIDTH;
  const f = new Flusher();
  for (const tag of owner.cacheTags) {
    if (!tag.iommu.cachingMode || owner.useFirstLevel) {
      tag.iommu.flushWriteBuffer();
      continue;
    }
    if (tag.type === 'iotlb' || tag.type === 'nesting_iotlb')
      flushIotlb(f, owner, tag, addr, all ? 'all' : pages, mask, false);
  }
  f.finish();
}
