/**
 * The SMMU's configuration cache: decoded STEs by StreamID, CDs by (StreamID, CD index), and the
 * intermediate L1STDs and L1CDs, each with a capacity and LRU replacement. Lookups go through it,
 * so software that changes a structure without the matching CMD_CFGI_* keeps seeing the old one.
 *
 * @remarks
 * Invalidation scopes follow Arm IHI 0070 §4.3 (CMD_CFGI_*; digest §7.7):
 * - CFGI_STE(SID, Leaf): the STE of SID and every CD / L1CD cached through SID; with Leaf=0 also
 *   the L1STD that located it;
 * - CFGI_STE_RANGE(SID, Range): the same for the 2^(Range+1) aligned StreamIDs, L1STDs included;
 *   Range=31 is CFGI_ALL;
 * - CFGI_CD(SID, SSID, Leaf): the CD fetched from index SSID of SID's CD table; with Leaf=0 also the
 *   L1CD that located it;
 * - CFGI_CD_ALL(SID): every CD and L1CD cached through SID.
 *
 * Invalid structures are cached too (negative caching, which the architecture permits and Linux
 * allows for): an illegal STE or CD keeps producing C_BAD_STE / C_BAD_CD, and an invalid L1STD /
 * L1CD keeps failing, until invalidated. Bus errors (F_STE_FETCH, F_CD_FETCH), out-of-range
 * StreamIDs and SubstreamID rule failures are never cached; neither is anything fetched through a
 * failed nested stage-2 translation. QEMU instead caches only valid configurations and drops the
 * whole per-SID entry on any CFGI (digest §7.7).
 */

import { ErrnoError } from '@iommu-ts/base';
import type { PhysicalMemory } from '@iommu-ts/mm';
import {
  type CdFetchResult,
  type CdIpaTranslate,
  cdAddress,
  cdFetchFailure,
  cdLeafBits,
  type L1cd,
  l1cdAddress,
  readCd,
  readL1cd,
  selectSubstream,
} from './cd-table.js';
import type { BadCdReason } from './context-descriptor.js';
import type { SmmuHwConfig } from './smmu-config.js';
import type { Ste } from './ste.js';
import {
  isBusError,
  type L1std,
  l1stdAddress,
  l2SteAddress,
  readL1std,
  readSte,
  type SteFetchResult,
  type StreamTableConfig,
  steFetchFailure,
  streamTableSidBits,
} from './stream-table.js';

/** Options of {@link SmmuConfigCache}. */
export interface SmmuConfigCacheOptions {
  /** Physical memory holding the stream table and CD tables. */
  readonly memory: PhysicalMemory;
  /** The SMMU's parameters (legality checks; `configCacheCapacity` is the default capacity). */
  readonly config: SmmuHwConfig;
  /**
   * Entries of each of the four caches (STE, CD, L1STD, L1CD); default
   * `config.configCacheCapacity`. Must be a positive integer.
   */
  readonly capacity?: number;
  /** Cache invalid / illegal structures (default `true`; see the file comment). */
  readonly negativeCaching?: boolean;
}

/** Counters of a {@link SmmuConfigCache}. */
export interface SmmuConfigCacheStats {
  /** STE lookups answered from the cache. */
  readonly steHits: number;
  /** STE lookups that read memory (including failed ones). */
  readonly steMisses: number;
  /** CD lookups answered from the cache. */
  readonly cdHits: number;
  /** CD lookups that read memory (including failed ones). */
  readonly cdMisses: number;
  /** L1STD reads avoided by the cache. */
  readonly l1stdHits: number;
  /** L1STD reads from memory. */
  readonly l1stdMisses: number;
  /** L1CD reads avoided by the cache. */
  readonly l1cdHits: number;
  /** L1CD reads from memory. */
  readonly l1cdMisses: number;
  /** Entries evicted because a cache was full. */
  readonly evictions: number;
  /** Entries removed by invalidation methods. */
  readonly invalidated: number;
}

interface L1stdEntry {
  readonly desc: L1std;
  readonly firstSid: number;
  readonly lastSid: number;
}

interface L1cdEntry {
  readonly desc: L1cd;
  readonly sid: number;
}

interface CdEntry {
  readonly result: CdFetchResult;
  readonly sid: number;
}

const SSID_SPAN = 0x10_0000; // 2^20 CD indexes per StreamID
const L1CD_SPAN = 0x20_0000; // 2^21 keys per StreamID: leaf-size bit 20, L1 index below

function cdKey(sid: number, index: number): number {
  return sid * SSID_SPAN + index;
}

function l1cdKey(sid: number, leafBits: number, index: number): number {
  return sid * L1CD_SPAN + (leafBits === 10 ? SSID_SPAN : 0) + Math.floor(index / 2 ** leafBits);
}

/**
 * Decoded-configuration cache of an SMMU (STE, CD, L1STD, L1CD caches) with the CMD_CFGI_*
 * invalidations S1's command queue calls. The translator looks up every configuration through
 * {@link SmmuConfigCache.lookupSte} and {@link SmmuConfigCache.lookupCd}.
 */
export class SmmuConfigCache {
  /** Entries per cache. */
  readonly capacity: number;
  /** Whether invalid / illegal structures are cached. */
  readonly negativeCaching: boolean;
  private readonly memory: PhysicalMemory;
  private readonly config: SmmuHwConfig;
  private readonly stes = new Map<number, SteFetchResult>();
  private readonly cds = new Map<number, CdEntry>();
  private readonly l1stds = new Map<number, L1stdEntry>();
  private readonly l1cds = new Map<number, L1cdEntry>();
  private s = {
    steHits: 0,
    steMisses: 0,
    cdHits: 0,
    cdMisses: 0,
    l1stdHits: 0,
    l1stdMisses: 0,
    l1cdHits: 0,
    l1cdMisses: 0,
    evictions: 0,
    invalidated: 0,
  };

  /**
   * @param options - memory, SMMU parameters, capacity, negative caching
   * @throws ErrnoError `EINVAL` when `capacity` is not a positive integer
   */
  constructor(options: SmmuConfigCacheOptions) {
    const capacity = options.capacity ?? options.config.configCacheCapacity;
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new ErrnoError('EINVAL', `config cache capacity ${capacity} is not a positive integer`);
    this.capacity = capacity;
    this.negativeCaching = options.negativeCaching ?? true;
    this.memory = options.memory;
    this.config = options.config;
  }

  /** A snapshot of the counters. */
  get stats(): SmmuConfigCacheStats {
    return { ...this.s };
  }

  /** Number of cached STEs (valid or not). */
  get steCount(): number {
    return this.stes.size;
  }

  /** Number of cached CDs (valid or not). */
  get cdCount(): number {
    return this.cds.size;
  }

  /** Number of cached L1STDs. */
  get l1stdCount(): number {
    return this.l1stds.size;
  }

  /** Number of cached L1CDs. */
  get l1cdCount(): number {
    return this.l1cds.size;
  }

  /**
   * Whether the STE of `sid` is cached.
   * @param sid - StreamID
   */
  hasSte(sid: number): boolean {
    return this.stes.has(sid);
  }

  /**
   * Whether the CD at `index` of `sid`'s CD table is cached.
   * @param sid - StreamID
   * @param index - CD index (SubstreamID, or 0)
   */
  hasCd(sid: number, index: number): boolean {
    return this.cds.has(cdKey(sid, index));
  }

  /** Mark an entry most recently used; the order only matters once a cache is half full. */
  private touch<K, V>(map: Map<K, V>, key: K, value: V): void {
    if (map.size * 2 > this.capacity) {
      map.delete(key);
      map.set(key, value);
    }
  }

  private insert<K, V>(map: Map<K, V>, key: K, value: V): void {
    if (map.size >= this.capacity) {
      const oldest = map.keys().next();
      if (!oldest.done) {
        map.delete(oldest.value);
        this.s.evictions++;
      }
    }
    map.set(key, value);
  }

  /**
   * The STE of a StreamID, from the cache or the stream table (digest §7.1 steps 2–5).
   * @param strtab - the current stream table configuration (STRTAB_BASE / _CFG)
   * @param sid - StreamID (u32)
   * @returns as {@link fetchSte}: the STE, or C_BAD_STREAMID / F_STE_FETCH / C_BAD_STE
   */
  lookupSte(strtab: StreamTableConfig, sid: number): SteFetchResult {
    if (sid >= 2 ** streamTableSidBits(strtab, this.config)) return steFetchFailure(sid, 'sid-range');
    const hit = this.stes.get(sid);
    if (hit !== undefined) {
      this.s.steHits++;
      this.touch(this.stes, sid, hit);
      return hit;
    }
    this.s.steMisses++;
    let pa: number;
    if (strtab.fmt === 'linear') {
      pa = strtab.base + sid * 64;
    } else {
      const l1pa = l1stdAddress(strtab, sid);
      let entry = this.l1stds.get(l1pa);
      if (entry !== undefined) {
        this.s.l1stdHits++;
        this.touch(this.l1stds, l1pa, entry);
      } else {
        this.s.l1stdMisses++;
        let desc: L1std;
        try {
          desc = readL1std(this.memory, l1pa);
        } catch (e) {
          if (isBusError(e)) return steFetchFailure(sid, 'l1-fetch', l1pa);
          throw e;
        }
        const span = 2 ** strtab.split;
        const firstSid = Math.floor(sid / span) * span;
        entry = { desc, firstSid, lastSid: firstSid + span - 1 };
        if (desc.span !== 0 || this.negativeCaching) this.insert(this.l1stds, l1pa, entry);
      }
      const r = l2SteAddress(entry.desc, strtab, sid);
      if (typeof r !== 'number') return steFetchFailure(sid, r);
      pa = r;
    }
    const result = readSte(this.memory, pa, sid, this.config);
    if (result.ok || (this.negativeCaching && result.event.type === 'C_BAD_STE'))
      this.insert(this.stes, sid, result);
    return result;
  }

  /**
   * The CD a transaction uses, from the cache or the CD table (digest §7.1 steps 9–11). The
   * SubstreamID rules are applied on every call; the CD is cached by (StreamID, CD index).
   * @param ste - the StreamID's decoded stage-1 or nested STE
   * @param sid - StreamID
   * @param ssv - the transaction carries a SubstreamID
   * @param ssid - the SubstreamID (ignored without `ssv`)
   * @param translate - stage-2 translation of CD-table addresses, for a nested STE
   * @returns as {@link fetchCd}: the CD, `'s1-bypass'`, or the event
   */
  lookupCd(ste: Ste, sid: number, ssv: boolean, ssid: number, translate?: CdIpaTranslate): CdFetchResult {
    const sel = selectSubstream(ste, ssv, ssid);
    if (sel.kind === 's1-bypass') return sel;
    if (sel.kind === 'fault') return cdFetchFailure(sid, ssv, ssid, sel.reason);
    const index = sel.index;
    const key = cdKey(sid, index);
    const hit = this.cds.get(key);
    if (hit !== undefined) {
      this.s.cdHits++;
      this.touch(this.cds, key, hit);
      // A cached failure carries the SSV/SSID of the transaction that first saw it.
      if (
        hit.result.kind === 'fault' &&
        (hit.result.event.ssv !== ssv || hit.result.event.ssid !== (ssv ? ssid : 0))
      )
        return cdFetchFailure(sid, ssv, ssid, hit.result.reason as BadCdReason);
      return hit.result;
    }
    this.s.cdMisses++;
    const leafBits = cdLeafBits(ste);
    let l1: L1cd | undefined;
    if (leafBits !== 0) {
      const lkey = l1cdKey(sid, leafBits, index);
      const lhit = this.l1cds.get(lkey);
      if (lhit !== undefined) {
        this.s.l1cdHits++;
        this.touch(this.l1cds, lkey, lhit);
        l1 = lhit.desc;
      } else {
        this.s.l1cdMisses++;
        const r = readL1cd(this.memory, l1cdAddress(ste, index), sid, ssv, ssid, translate);
        if ('kind' in r) return r;
        l1 = r;
        if (r.v || this.negativeCaching) this.insert(this.l1cds, lkey, { desc: r, sid });
      }
      if (!l1.v) return cdFetchFailure(sid, ssv, ssid, 'l1cd-invalid');
    }
    const result = readCd(
      this.memory,
      cdAddress(ste, index, l1),
      index,
      sid,
      ssv,
      ssid,
      this.config,
      translate,
    );
    if (
      result.kind === 'cd' ||
      (this.negativeCaching && result.kind === 'fault' && result.event.type === 'C_BAD_CD')
    )
      this.insert(this.cds, key, { result, sid });
    return result;
  }

  private dropCdsOf(first: number, last: number): void {
    for (const [k, e] of this.cds)
      if (e.sid >= first && e.sid <= last) {
        this.cds.delete(k);
        this.s.invalidated++;
      }
    for (const [k, e] of this.l1cds)
      if (e.sid >= first && e.sid <= last) {
        this.l1cds.delete(k);
        this.s.invalidated++;
      }
  }

  private dropL1stds(first: number, last: number): void {
    for (const [k, e] of this.l1stds)
      if (e.lastSid >= first && e.firstSid <= last) {
        this.l1stds.delete(k);
        this.s.invalidated++;
      }
  }

  /**
   * CMD_CFGI_STE: forget the STE of `sid` and every CD / L1CD cached through it; with
   * `leaf = false` also the L1STD that located it.
   * @param sid - StreamID
   * @param leaf - the command's Leaf bit
   */
  invalidateSte(sid: number, leaf: boolean): void {
    if (this.stes.delete(sid)) this.s.invalidated++;
    this.dropCdsOf(sid, sid);
    if (!leaf) this.dropL1stds(sid, sid);
  }

  /**
   * CMD_CFGI_STE_RANGE: {@link SmmuConfigCache.invalidateSte} with Leaf=0 for the 2^(range+1)
   * StreamIDs of the aligned block containing `sid`; `range` 31 (CFGI_ALL) is
   * {@link SmmuConfigCache.invalidateAll}.
   * @param sid - StreamID (its low range+1 bits are ignored)
   * @param range - the command's Range field, 0 … 31
   */
  invalidateSteRange(sid: number, range: number): void {
    const bits = (range & 31) + 1;
    if (bits >= 32) {
      this.invalidateAll();
      return;
    }
    const size = 2 ** bits;
    const first = Math.floor((sid >>> 0) / size) * size;
    const last = first + size - 1;
    if (size < this.stes.size) {
      for (let s = first; s <= last; s++) if (this.stes.delete(s)) this.s.invalidated++;
    } else {
      for (const s of this.stes.keys())
        if (s >= first && s <= last) {
          this.stes.delete(s);
          this.s.invalidated++;
        }
    }
    this.dropCdsOf(first, last);
    this.dropL1stds(first, last);
  }

  /**
   * CMD_CFGI_CD: forget the CD fetched from index `ssid` of `sid`'s CD table; with `leaf = false`
   * also the L1CD that located it.
   * @param sid - StreamID
   * @param ssid - the command's SubstreamID (a CD index; 0 for a single-CD configuration)
   * @param leaf - the command's Leaf bit
   */
  invalidateCd(sid: number, ssid: number, leaf: boolean): void {
    if (this.cds.delete(cdKey(sid, ssid))) this.s.invalidated++;
    if (!leaf) {
      if (this.l1cds.delete(l1cdKey(sid, 6, ssid))) this.s.invalidated++;
      if (this.l1cds.delete(l1cdKey(sid, 10, ssid))) this.s.invalidated++;
    }
  }

  /**
   * CMD_CFGI_CD_ALL: forget every CD and L1CD cached through `sid`.
   * @param sid - StreamID
   */
  invalidateCdAll(sid: number): void {
    this.dropCdsOf(sid, sid);
  }

  /** CMD_CFGI_ALL (and reset): empty every cache. */
  invalidateAll(): void {
    this.s.invalidated += this.stes.size + this.cds.size + this.l1stds.size + this.l1cds.size;
    this.stes.clear();
    this.cds.clear();
    this.l1stds.clear();
    this.l1cds.clear();
  }
}
