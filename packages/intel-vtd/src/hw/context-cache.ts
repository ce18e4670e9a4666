/**
 * The context cache and the PASID cache of a VT-d unit: decoded context entries by source-id and
 * decoded PASID-table entries by (source-id, PASID), each with a capacity and LRU replacement.
 * Lookups go through them, so software that changes a structure in memory without the matching
 * invalidation keeps seeing the old entry.
 *
 * @remarks
 * Digest §7.4 (what each cache holds and what removes it) and §7.5 (caching mode):
 * - context cache: removed by global, domain-selective (legacy entries with that DID; scalable-mode
 *   entries carry no DID, so a domain-selective request drops every scalable-mode entry) and
 *   device-selective (source-id under the function mask; legacy entries also need the DID to
 *   match, scalable-mode ones ignore it) invalidations (CCMD register, descriptor type 1);
 * - PASID cache: removed by global, DID-selective and PASID-selective (DID + PASID) invalidations
 *   (descriptor type 7).
 * With CAP.CM = 0 only present, legal entries are cached. With CM = 1 not-present and erroneous
 * entries are cached too (negative entries): a not-present context entry is tagged with DID 0, as
 * the specification reserves DID 0 for it, and a negative PASID entry is removed by any DID-selective
 * invalidation and by every PASID-selective one naming its PASID. Bus errors and root-entry faults
 * are never cached. Unlike QEMU (§7.7 items 8–9) the PASID cache is real: a forgotten PASID-cache
 * invalidation is observable.
 */

import type { PhysicalMemory } from '@iommu-ts/mm';
import { lookupPasidEntry, type PasidLookup, type VtdPasidConfig } from './pasid-table.js';
import {
  type ContextLookup,
  lookupContext,
  type ScalableContextEntry,
  type VtdRootContextConfig,
} from './root-context.js';
import type { VtdHwConfig } from './vtd-config.js';
import { VTD_FR } from './vtd-fault.js';

/** Hit/miss counters of a structure cache. */
export interface VtdStructureCacheStats {
  /** Lookups answered from the cache. */
  hits: number;
  /** Lookups that read memory. */
  misses: number;
  /** Entries dropped by invalidations. */
  invalidated: number;
  /** Entries dropped to make room (LRU). */
  evicted: number;
}

/** Context-cache invalidation granularity (CCMD.CIRG / descriptor G; digest §1.6, §4.2). */
export type ContextCacheGranularity = 'global' | 'domain' | 'device';

/** Options of {@link VtdContextCache}. */
export interface VtdContextCacheOptions {
  /** Physical memory holding the root and context tables. */
  readonly memory: PhysicalMemory;
  /** The unit's parameters: legality checks, `cachingMode`, `contextCacheCapacity` (default capacity). */
  readonly config: VtdRootContextConfig & Pick<VtdHwConfig, 'cachingMode' | 'contextCacheCapacity'>;
  /** Capacity override (entries, ≥ 1). */
  readonly capacity?: number;
}

interface CachedContext {
  readonly result: ContextLookup;
  /** DID tag (legacy entries); 0 for negative entries. */
  readonly did: number;
  /** Entry came from a scalable-mode table (no DID tag). */
  readonly scalable: boolean;
}

const NEGATIVE_CONTEXT_REASONS: ReadonlySet<number> = new Set<number>([
  VTD_FR.CONTEXT_ENTRY_P,
  VTD_FR.CONTEXT_ENTRY_INV,
  VTD_FR.CONTEXT_ENTRY_RSVD,
  VTD_FR.SM_CTX_P,
  VTD_FR.SM_CTX_RSVD,
]);

/**
 * Source-id bits a CCMD / descriptor function mask (FM) ignores: 0 none, 1 bit 2, 2 bits 2:1,
 * 3 bits 2:0.
 * @param fm - the 2-bit FM field
 * @returns the ignored bits as a mask
 */
export function functionMaskBits(fm: number): number {
  return [0, 0b100, 0b110, 0b111][fm & 3] ?? 0;
}

/**
 * The context cache: context-entry lookups by source-id with the caching and invalidation rules of
 * the file comment. Mirrors the role of QEMU's per-address-space `VTDContextCacheEntry`.
 */
export class VtdContextCache {
  /** Hit/miss/invalidation counters (mutable, for tests and statistics). */
  readonly stats: VtdStructureCacheStats = { hits: 0, misses: 0, invalidated: 0, evicted: 0 };
  /** Maximum number of cached entries. */
  readonly capacity: number;
  private readonly memory: PhysicalMemory;
  private readonly config: VtdContextCacheOptions['config'];
  private readonly entries = new Map<number, CachedContext>();

  /** @param options - memory, unit parameters and capacity */
  constructor(options: VtdContextCacheOptions) {
    this.memory = options.memory;
    this.config = options.config;
    this.capacity = Math.max(1, options.capacity ?? options.config.contextCacheCapacity);
  }

  /** Number of cached entries (negative ones included). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Whether an entry (positive or negative) for `sourceId` is cached.
   * @param sourceId - requester id
   */
  has(sourceId: number): boolean {
    return this.entries.has(sourceId & 0xffff);
  }

  /**
   * The context entry of a source-id: the cached one, or a fresh {@link lookupContext} whose result
   * is cached when the rules allow.
   * @param rtaddr - latched root table address
   * @param ttm - latched TTM (0 legacy, 1 scalable)
   * @param sourceId - requester id
   * @returns the entry or the structure fault (see {@link lookupContext})
   * @throws ErrnoError `EINVAL` for a TTM other than 0 or 1 on a miss
   */
  lookup(rtaddr: number, ttm: number, sourceId: number): ContextLookup {
    const sid = sourceId & 0xffff;
    const hit = this.entries.get(sid);
    if (hit !== undefined) {
      this.stats.hits++;
      // LRU: move to the back.
      this.entries.delete(sid);
      this.entries.set(sid, hit);
      return hit.result;
    }
    this.stats.misses++;
    const result = lookupContext(this.memory, rtaddr, ttm, sid, this.config);
    if (result.kind === 'ok') {
      const e = result.entry;
      this.insert(sid, { result, did: e.mode === 'legacy' ? e.did : 0, scalable: e.mode === 'scalable' });
    } else if (this.config.cachingMode && NEGATIVE_CONTEXT_REASONS.has(result.reason)) {
      this.insert(sid, { result, did: 0, scalable: result.reason >= 0x30 });
    }
    return result;
  }

  private insert(sid: number, value: CachedContext): void {
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) {
        this.entries.delete(oldest.value);
        this.stats.evicted++;
      }
    }
    this.entries.set(sid, value);
  }

  /**
   * Drop every cached entry (global invalidation; also SRTP with CAP.ESRTPS and TE 1→0 with
   * ECAP.SMTS).
   * @returns the number of entries dropped
   */
  invalidateAll(): number {
    const n = this.entries.size;
    this.entries.clear();
    this.stats.invalidated += n;
    return n;
  }

  /**
   * Domain-selective invalidation: legacy entries tagged `did`, and every scalable-mode entry.
   * @param did - domain id
   * @returns the number of entries dropped
   */
  invalidateDomain(did: number): number {
    let n = 0;
    for (const [sid, e] of this.entries) {
      if (e.scalable || e.did === (did & 0xffff)) {
        this.entries.delete(sid);
        n++;
      }
    }
    this.stats.invalidated += n;
    return n;
  }

  /**
   * Device-selective invalidation: entries whose source-id equals `sourceId` outside the bits the
   * function mask ignores; legacy entries must also be tagged `did`.
   * @param did - domain id (ignored for scalable-mode entries)
   * @param sourceId - requester id
   * @param fm - function mask (0..3; see {@link functionMaskBits})
   * @returns the number of entries dropped
   */
  invalidateDevice(did: number, sourceId: number, fm: number): number {
    const keep = ~functionMaskBits(fm) & 0xffff;
    const want = sourceId & keep;
    let n = 0;
    for (const [sid, e] of this.entries) {
      if ((sid & keep) === want && (e.scalable || e.did === (did & 0xffff))) {
        this.entries.delete(sid);
        n++;
      }
    }
    this.stats.invalidated += n;
    return n;
  }

  /**
   * Perform a context-cache invalidation request.
   * @param granularity - global, domain or device
   * @param did - domain id (domain, device)
   * @param sourceId - requester id (device)
   * @param fm - function mask (device)
   * @returns the number of entries dropped
   */
  invalidate(granularity: ContextCacheGranularity, did = 0, sourceId = 0, fm = 0): number {
    if (granularity === 'global') return this.invalidateAll();
    if (granularity === 'domain') return this.invalidateDomain(did);
    return this.invalidateDevice(did, sourceId, fm);
  }
}

/** PASID-cache invalidation granularity (descriptor type 7 G; digest §4.8). */
export type PasidCacheGranularity = 'global' | 'domain' | 'pasid';

/** Options of {@link VtdPasidCache}. */
export interface VtdPasidCacheOptions {
  /** Physical memory holding the PASID directories and tables. */
  readonly memory: PhysicalMemory;
  /** The unit's parameters: legality checks, `cachingMode`, `pasidCacheCapacity` (default capacity). */
  readonly config: VtdPasidConfig & Pick<VtdHwConfig, 'cachingMode' | 'pasidCacheCapacity'>;
  /** Capacity override (entries, ≥ 1). */
  readonly capacity?: number;
}

interface CachedPasid {
  /** The lookup result with the FPD of the directory and PASID entries only (not the context's). */
  readonly result: PasidLookup;
  readonly pasid: number;
  /** DID of a positive entry; -1 for a negative entry (matches every DID). */
  readonly did: number;
}

const NEGATIVE_PASID_REASONS: ReadonlySet<number> = new Set<number>([
  VTD_FR.SM_PASID_ENTRY_P,
  VTD_FR.SM_PASID_ENTRY_RSVD,
  VTD_FR.SM_PASID_ENTRY_INV,
]);

const PASID_SPAN = 0x10_0000;

/**
 * The PASID cache: PASID-table entry lookups by (source-id, PASID) with the caching and invalidation
 * rules of the file comment. The directory walk is part of a miss; the context entry is supplied by
 * the caller (normally from {@link VtdContextCache}).
 */
export class VtdPasidCache {
  /** Hit/miss/invalidation counters. */
  readonly stats: VtdStructureCacheStats = { hits: 0, misses: 0, invalidated: 0, evicted: 0 };
  /** Maximum number of cached entries. */
  readonly capacity: number;
  private readonly memory: PhysicalMemory;
  private readonly config: VtdPasidCacheOptions['config'];
  private readonly entries = new Map<number, CachedPasid>();

  /** @param options - memory, unit parameters and capacity */
  constructor(options: VtdPasidCacheOptions) {
    this.memory = options.memory;
    this.config = options.config;
    this.capacity = Math.max(1, options.capacity ?? options.config.pasidCacheCapacity);
  }

  /** Number of cached entries (negative ones included). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Whether an entry for (`sourceId`, `pasid`) is cached.
   * @param sourceId - requester id
   * @param pasid - PASID
   */
  has(sourceId: number, pasid: number): boolean {
    return this.entries.has((sourceId & 0xffff) * PASID_SPAN + (pasid & 0xfffff));
  }

  /**
   * The PASID-table entry of (`sourceId`, `pasid`): the cached one, or a fresh
   * {@link lookupPasidEntry} through `ctx` whose result is cached when the rules allow. The returned
   * `fpd` always includes the current context entry's FPD.
   * @param sourceId - requester id (the cache tag)
   * @param ctx - the device's scalable-mode context entry (used on a miss)
   * @param pasid - the PASID (request PASID or RID_PASID)
   * @returns the entry or the structure fault (see {@link lookupPasidEntry})
   */
  lookup(sourceId: number, ctx: ScalableContextEntry, pasid: number): PasidLookup {
    const key = (sourceId & 0xffff) * PASID_SPAN + (pasid & 0xfffff);
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.stats.hits++;
      this.entries.delete(key);
      this.entries.set(key, hit);
      return withContextFpd(hit.result, ctx.fpd);
    }
    this.stats.misses++;
    // Look up without the context's FPD so the cached value does not depend on it.
    const raw = lookupPasidEntry(this.memory, ctx.fpd ? { ...ctx, fpd: false } : ctx, pasid, this.config);
    if (raw.kind === 'ok') this.insert(key, { result: raw, pasid, did: raw.entry.did });
    else if (this.config.cachingMode && NEGATIVE_PASID_REASONS.has(raw.reason))
      this.insert(key, { result: raw, pasid, did: -1 });
    return withContextFpd(raw, ctx.fpd);
  }

  private insert(key: number, value: CachedPasid): void {
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) {
        this.entries.delete(oldest.value);
        this.stats.evicted++;
      }
    }
    this.entries.set(key, value);
  }

  /**
   * Drop every cached entry (global PASID-cache invalidation).
   * @returns the number of entries dropped
   */
  invalidateAll(): number {
    const n = this.entries.size;
    this.entries.clear();
    this.stats.invalidated += n;
    return n;
  }

  /**
   * DID-selective invalidation: entries tagged `did`, and every negative entry.
   * @param did - domain id
   * @returns the number of entries dropped
   */
  invalidateDomain(did: number): number {
    return this.drop((e) => e.did === -1 || e.did === (did & 0xffff));
  }

  /**
   * PASID-selective invalidation: entries of `pasid` tagged `did` (any device), and every negative
   * entry of `pasid`.
   * @param did - domain id
   * @param pasid - PASID
   * @returns the number of entries dropped
   */
  invalidatePasid(did: number, pasid: number): number {
    const p = pasid & 0xfffff;
    return this.drop((e) => e.pasid === p && (e.did === -1 || e.did === (did & 0xffff)));
  }

  /**
   * Perform a PASID-cache invalidation request.
   * @param granularity - global, domain (DID) or pasid (DID + PASID)
   * @param did - domain id
   * @param pasid - PASID (pasid granularity)
   * @returns the number of entries dropped
   */
  invalidate(granularity: PasidCacheGranularity, did = 0, pasid = 0): number {
    if (granularity === 'global') return this.invalidateAll();
    if (granularity === 'domain') return this.invalidateDomain(did);
    return this.invalidatePasid(did, pasid);
  }

  private drop(pred: (e: CachedPasid) => boolean): number {
    let n = 0;
    for (const [k, e] of this.entries) {
      if (pred(e)) {
        this.entries.delete(k);
        n++;
      }
    }
    this.stats.invalidated += n;
    return n;
  }
}

function withContextFpd(r: PasidLookup, ctxFpd: boolean): PasidLookup {
  if (!ctxFpd || r.fpd) return r;
  return { ...r, fpd: true };
}
