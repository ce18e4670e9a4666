/**
 * The remapping unit's IOTLB (final translations) and paging-structure caches (non-leaf entries,
 * "PDE caches"), with the invalidations the type-2 IOTLB and type-6 PASID-based IOTLB descriptors
 * and the IOTLB registers perform (digest §4.3, §4.7, §1.7, §7.4).
 *
 * @remarks
 * Entries are tagged by domain ID and, in scalable mode, PASID (`pasid` −1 for legacy entries and
 * for second-stage paging-structure entries, which are shared by every PASID of a domain). The
 * caches keep whatever a walk found until an invalidation (or capacity eviction) removes it, so a
 * driver that forgets an invalidation observes the stale translation, as on silicon.
 *
 * Addresses are page-frame numbers (`number`, input address bits 63:12 — at most 45 bits for
 * 57-bit inputs) so the hit path never touches `bigint`.
 */

/** {@link VtdIotlbEntry.kind}: a second-stage-only translation (legacy mode, or PGTT = 010). */
export const IOTLB_KIND_SL = 0;
/** {@link VtdIotlbEntry.kind}: a first-stage-only translation (PGTT = 001). */
export const IOTLB_KIND_FL = 1;
/** {@link VtdIotlbEntry.kind}: a nested translation (PGTT = 011). */
export const IOTLB_KIND_NESTED = 2;
/** One of {@link IOTLB_KIND_SL}, {@link IOTLB_KIND_FL}, {@link IOTLB_KIND_NESTED}. */
export type VtdIotlbKind = 0 | 1 | 2;

/** PASID value of entries that carry none (legacy mode; second-stage paging-structure entries). */
export const IOTLB_NO_PASID = -1;

/** Permission bit of {@link VtdIotlbEntry.perm}: supervisor (privileged) read. */
export const VTD_PERM_PR = 1;
/** Permission bit: supervisor write. */
export const VTD_PERM_PW = 2;
/** Permission bit: supervisor execute. */
export const VTD_PERM_PX = 4;
/** Permission bit: user read. */
export const VTD_PERM_UR = 8;
/** Permission bit: user write. */
export const VTD_PERM_UW = 16;
/** Permission bit: user execute. */
export const VTD_PERM_UX = 32;
/** Every permission bit. */
export const VTD_PERM_ALL = 63;

/**
 * The permission bit an access needs.
 * @param write - data write
 * @param exec - instruction fetch
 * @param privileged - supervisor request
 * @returns one `VTD_PERM_*` bit
 */
export function vtdPermBit(write: boolean, exec: boolean, privileged: boolean): number {
  return 1 << ((exec ? 2 : write ? 1 : 0) + (privileged ? 0 : 3));
}

const TWO21 = 2 ** 21;
/** Pages per leaf by size index: 4 KiB, 2 MiB, 1 GiB. */
const PAGES = [1, 512, 262144] as const;

function sizeIndex(shift: number): 0 | 1 | 2 {
  return shift === 12 ? 0 : shift === 21 ? 1 : 2;
}

/**
 * The tag of a set of entries as one integer: `did · 2^21 + (pasid + 1)`.
 * @param did - domain ID, 0 … 65535
 * @param pasid - PASID 0 … 2^20 − 1, or {@link IOTLB_NO_PASID}
 * @returns a non-negative integer below 2^37
 */
export function iotlbTag(did: number, pasid: number): number {
  return did * TWO21 + pasid + 1;
}

/** What {@link VtdIotlb.insert} needs. */
export interface VtdIotlbEntryInit {
  /** Domain ID. */
  readonly did: number;
  /** PASID, or {@link IOTLB_NO_PASID} for legacy entries. */
  readonly pasid: number;
  /** Translation kind. */
  readonly kind: VtdIotlbKind;
  /** Input page-frame number (address bits 63:12) of any page the entry covers. */
  readonly pfn: number;
  /** log2 of the page size: 12, 21 or 30. */
  readonly shift: 12 | 21 | 30;
  /** Physical address of the first byte the entry covers (aligned to `2^shift`). */
  readonly outputBase: number;
  /** `VTD_PERM_*` mask the translation allows. */
  readonly perm: number;
  /**
   * The leaf's dirty flag is set, or the walk does not track dirtiness: a write may use the entry
   * without a new walk.
   */
  readonly dirty: boolean;
  /** First-stage G (global) leaf. */
  readonly global: boolean;
}

/** One cached translation. */
export class VtdIotlbEntry {
  /** Domain ID. */
  readonly did: number;
  /** PASID or {@link IOTLB_NO_PASID}. */
  readonly pasid: number;
  /** Translation kind. */
  readonly kind: VtdIotlbKind;
  /** First input page-frame number covered (aligned to the page size). */
  readonly pfn: number;
  /** log2 of the page size. */
  readonly shift: 12 | 21 | 30;
  /** Output address of the first byte. */
  readonly outputBase: number;
  /** `VTD_PERM_*` mask. */
  readonly perm: number;
  /** See {@link VtdIotlbEntryInit.dirty}. */
  readonly dirty: boolean;
  /** First-stage G bit. */
  readonly global: boolean;
  /** @internal owning tag set (the IOTLB's bookkeeping). */
  owner: object | undefined = undefined;

  /** @param init - see {@link VtdIotlbEntryInit} */
  constructor(init: VtdIotlbEntryInit) {
    const pages = PAGES[sizeIndex(init.shift)];
    this.did = init.did;
    this.pasid = init.pasid;
    this.kind = init.kind;
    this.shift = init.shift;
    this.pfn = init.pfn - (init.pfn % pages);
    this.outputBase = init.outputBase - (init.outputBase % (pages * 4096));
    this.perm = init.perm;
    this.dirty = init.dirty;
    this.global = init.global;
  }

  /** Number of 4 KiB pages covered (1, 512 or 262144). */
  get pages(): number {
    return PAGES[sizeIndex(this.shift)];
  }
}

/**
 * One cached non-leaf paging entry: the table it points to, for every input address under it.
 */
export class VtdPdeEntry {
  /** Level of the cached entry (2 … 5; level 1 tables hold only leaves). */
  readonly level: number;
  /** Translation kind of the walk that cached it. */
  readonly kind: VtdIotlbKind;
  /** Input page-frame number shifted right by `9 · (level − 1)`: the region the entry maps. */
  readonly key: number;
  /** Physical address of the next-level table. */
  readonly table: number;
  /**
   * Permissions accumulated down to and including this entry, in the walker's raw form
   * (`walk.ts`: second stage R=1 W=2 X=4; first stage R/W=1, U/S=2, not-XD=4).
   */
  readonly acc: number;
  /** @internal owning tag set (the IOTLB's bookkeeping). */
  owner: object | undefined = undefined;

  /**
   * @param level - 2 … 5
   * @param kind - translation kind
   * @param key - region key
   * @param table - next table PA
   * @param acc - accumulated raw permissions
   */
  constructor(level: number, kind: VtdIotlbKind, key: number, table: number, acc: number) {
    this.level = level;
    this.kind = kind;
    this.key = key;
    this.table = table;
    this.acc = acc;
  }
}

/** Entries of one tag. */
class TagSet {
  readonly tag: number;
  readonly did: number;
  readonly pasid: number;
  /** Leaves by size: index 0 = 4 KiB (key pfn), 1 = 2 MiB (pfn / 512), 2 = 1 GiB (pfn / 2^18). */
  readonly leaves: [Map<number, VtdIotlbEntry>, Map<number, VtdIotlbEntry>, Map<number, VtdIotlbEntry>] = [
    new Map(),
    new Map(),
    new Map(),
  ];
  /** Paging-structure entries by level (index = level, 2 … 5). */
  readonly pdes: Map<number, VtdPdeEntry>[] = [
    new Map(),
    new Map(),
    new Map(),
    new Map(),
    new Map(),
    new Map(),
  ];
  /** The leaves of `leaves` whose kind is first-stage or nested. */
  readonly flLeaves = new Set<VtdIotlbEntry>();
  /** The entries of `pdes` whose kind is first-stage or nested. */
  readonly flPdes = new Set<VtdPdeEntry>();

  constructor(tag: number, did: number, pasid: number) {
    this.tag = tag;
    this.did = did;
    this.pasid = pasid;
  }

  get empty(): boolean {
    const l = this.leaves;
    const p = this.pdes;
    return (
      l[0].size + l[1].size + l[2].size === 0 &&
      (p[2] as Map<number, VtdPdeEntry>).size +
        (p[3] as Map<number, VtdPdeEntry>).size +
        (p[4] as Map<number, VtdPdeEntry>).size +
        (p[5] as Map<number, VtdPdeEntry>).size ===
        0
    );
  }
}

/** Options of {@link VtdIotlb}. */
export interface VtdIotlbOptions {
  /** Most leaf entries held (oldest evicted first); default 1024. */
  readonly capacity?: number;
  /** Most paging-structure entries held; default 256. */
  readonly pdeCapacity?: number;
}

/** Counters of {@link VtdIotlb}. */
export interface VtdIotlbStats {
  /** Lookups that found a leaf entry. */
  hits: number;
  /** Lookups that found none. */
  misses: number;
  /** Walks that started from a cached paging-structure entry. */
  pdeHits: number;
  /** Leaf entries inserted. */
  inserts: number;
  /** Entries (leaf or paging-structure) evicted for capacity. */
  evictions: number;
  /** Entries (leaf or paging-structure) removed by invalidations. */
  invalidated: number;
}

/** Page-frame divisor of a paging-structure entry's region by level (512^(level − 1)). */
const LEVEL_SPAN = [1, 1, 512, 512 ** 2, 512 ** 3, 512 ** 4];

/**
 * The IOTLB plus paging-structure caches of one remapping unit.
 *
 * @remarks
 * Invalidation semantics (digest §4.3, §4.7, QEMU's reading of the spec):
 * - {@link VtdIotlb.invalidateGlobal}: everything.
 * - {@link VtdIotlb.invalidateDomain}: every entry of the DID (any PASID, any kind).
 * - {@link VtdIotlb.invalidatePage} (type 2 PSI / IOTLB register PSI): second-stage entries of the
 *   DID mapping any part of the range, and every first-stage / nested entry of the DID regardless
 *   of address; with IH = 1 paging-structure entries are kept.
 * - {@link VtdIotlb.invalidatePasid} (type 6, G = 10): every entry tagged DID + PASID.
 * - {@link VtdIotlb.invalidatePasidPage} (type 6, G = 11): first-stage / nested entries tagged
 *   DID + PASID mapping any part of the range (second-stage entries untouched); IH = 1 keeps
 *   paging-structure entries.
 */
export class VtdIotlb {
  /** Leaf capacity. */
  readonly capacity: number;
  /** Paging-structure capacity. */
  readonly pdeCapacity: number;
  /** Counters. */
  readonly stats: VtdIotlbStats = {
    hits: 0,
    misses: 0,
    pdeHits: 0,
    inserts: 0,
    evictions: 0,
    invalidated: 0,
  };

  readonly #sets = new Map<number, TagSet>();
  /** The tag sets of each DID (so DID-wide invalidations skip other domains' sets). */
  readonly #byDid = new Map<number, Set<TagSet>>();
  /** Leaves in insertion order (eviction order). */
  readonly #leafOrder = new Set<VtdIotlbEntry>();
  /** Paging-structure entries in insertion order. */
  readonly #pdeOrder = new Set<VtdPdeEntry>();
  #lastTag = -1;
  #lastSet: TagSet | undefined = undefined;

  /** @param options - see {@link VtdIotlbOptions} */
  constructor(options: VtdIotlbOptions = {}) {
    this.capacity = Math.max(1, options.capacity ?? 1024);
    this.pdeCapacity = Math.max(0, options.pdeCapacity ?? 256);
  }

  /** Number of leaf entries held. */
  get size(): number {
    return this.#leafOrder.size;
  }

  /** Number of paging-structure entries held. */
  get pdeSize(): number {
    return this.#pdeOrder.size;
  }

  #set(tag: number): TagSet | undefined {
    if (tag === this.#lastTag) return this.#lastSet;
    const s = this.#sets.get(tag);
    if (s !== undefined) {
      this.#lastTag = tag;
      this.#lastSet = s;
    }
    return s;
  }

  #getOrCreate(did: number, pasid: number): TagSet {
    const tag = iotlbTag(did, pasid);
    let s = this.#set(tag);
    if (s === undefined) {
      s = new TagSet(tag, did, pasid);
      this.#sets.set(tag, s);
      const ds = this.#byDid.get(did);
      if (ds === undefined) this.#byDid.set(did, new Set([s]));
      else ds.add(s);
      this.#lastTag = tag;
      this.#lastSet = s;
    }
    return s;
  }

  #dropSet(s: TagSet): void {
    if (!s.empty) return;
    if (this.#sets.get(s.tag) !== s) return;
    this.#sets.delete(s.tag);
    const ds = this.#byDid.get(s.did);
    if (ds !== undefined) {
      ds.delete(s);
      if (ds.size === 0) this.#byDid.delete(s.did);
    }
    if (this.#lastSet === s) {
      this.#lastTag = -1;
      this.#lastSet = undefined;
    }
  }

  /**
   * Find the leaf entry translating a page.
   * @param did - domain ID
   * @param pasid - PASID or {@link IOTLB_NO_PASID}
   * @param pfn - input page-frame number
   * @returns the entry, or `undefined` (counted as a miss)
   */
  lookup(did: number, pasid: number, pfn: number): VtdIotlbEntry | undefined {
    const s = this.#set(did * TWO21 + pasid + 1);
    if (s !== undefined) {
      const l = s.leaves;
      let e = l[0].get(pfn);
      if (e === undefined && l[1].size !== 0) e = l[1].get(Math.floor(pfn / 512));
      if (e === undefined && l[2].size !== 0) e = l[2].get(Math.floor(pfn / 262144));
      if (e !== undefined) {
        this.stats.hits++;
        return e;
      }
    }
    this.stats.misses++;
    return undefined;
  }

  /**
   * Insert a leaf translation (replacing an entry with the same tag, size and address).
   * @param init - see {@link VtdIotlbEntryInit}
   * @returns the new entry
   */
  insert(init: VtdIotlbEntryInit): VtdIotlbEntry {
    const e = new VtdIotlbEntry(init);
    const lvl = sizeIndex(e.shift);
    const key = lvl === 0 ? e.pfn : Math.floor(e.pfn / PAGES[lvl]);
    const old = this.#set(iotlbTag(e.did, e.pasid))?.leaves[lvl].get(key);
    if (old !== undefined) {
      this.#leafOrder.delete(old);
      (old.owner as TagSet).flLeaves.delete(old);
      old.owner = undefined;
    } else if (this.#leafOrder.size >= this.capacity) this.#evictLeaf();
    // Looked up after any eviction: evicting the last entry of the tag set drops the set.
    const s = this.#getOrCreate(e.did, e.pasid);
    const map = s.leaves[lvl];
    e.owner = s;
    map.set(key, e);
    if (e.kind !== IOTLB_KIND_SL) s.flLeaves.add(e);
    this.#leafOrder.add(e);
    this.stats.inserts++;
    return e;
  }

  #evictLeaf(): void {
    const first = this.#leafOrder.values().next();
    if (first.done === true) return;
    this.#removeLeaf(first.value);
    this.stats.evictions++;
  }

  #removeLeaf(e: VtdIotlbEntry): void {
    const s = e.owner as TagSet | undefined;
    this.#leafOrder.delete(e);
    if (s === undefined) return;
    const lvl = sizeIndex(e.shift);
    s.leaves[lvl].delete(lvl === 0 ? e.pfn : Math.floor(e.pfn / PAGES[lvl]));
    if (e.kind !== IOTLB_KIND_SL) s.flLeaves.delete(e);
    e.owner = undefined;
    this.#dropSet(s);
  }

  /**
   * Remove one leaf entry (for example one a write found not yet dirty, before re-walking).
   * @param e - the entry; ignored if no longer cached
   */
  remove(e: VtdIotlbEntry): void {
    if (e.owner !== undefined) this.#removeLeaf(e);
  }

  /**
   * The deepest cached paging-structure entry on the walk of a page.
   * @param did - domain ID
   * @param pasid - PASID or {@link IOTLB_NO_PASID}
   * @param kind - translation kind (entries of another kind are ignored)
   * @param pfn - input page-frame number
   * @param topLevel - the walk's top level (entries at or above it are not looked up: the walk
   *   starts at the root anyway)
   * @returns the entry at the lowest level found (2 first), or `undefined`
   */
  pdeLookup(
    did: number,
    pasid: number,
    kind: VtdIotlbKind,
    pfn: number,
    topLevel: number,
  ): VtdPdeEntry | undefined {
    if (this.#pdeOrder.size === 0) return undefined;
    const s = this.#set(did * TWO21 + pasid + 1);
    if (s === undefined) return undefined;
    for (let level = 2; level <= topLevel; level++) {
      const m = s.pdes[level] as Map<number, VtdPdeEntry>;
      if (m.size === 0) continue;
      const p = m.get(Math.floor(pfn / (LEVEL_SPAN[level] as number)));
      if (p !== undefined && p.kind === kind) {
        this.stats.pdeHits++;
        return p;
      }
    }
    return undefined;
  }

  /**
   * Cache a non-leaf entry found by a walk.
   * @param did - domain ID
   * @param pasid - PASID or {@link IOTLB_NO_PASID}
   * @param kind - translation kind
   * @param level - level of the entry, 2 … 5
   * @param pfn - any input page-frame number under the entry
   * @param table - PA of the next-level table
   * @param acc - accumulated raw permissions (see {@link VtdPdeEntry.acc})
   */
  pdeInsert(
    did: number,
    pasid: number,
    kind: VtdIotlbKind,
    level: number,
    pfn: number,
    table: number,
    acc: number,
  ): void {
    if (this.pdeCapacity === 0 || level < 2 || level > 5) return;
    const key = Math.floor(pfn / (LEVEL_SPAN[level] as number));
    const old = this.#set(iotlbTag(did, pasid))?.pdes[level]?.get(key);
    if (old !== undefined) {
      this.#pdeOrder.delete(old);
      (old.owner as TagSet).flPdes.delete(old);
      old.owner = undefined;
    } else if (this.#pdeOrder.size >= this.pdeCapacity) {
      const first = this.#pdeOrder.values().next();
      if (first.done !== true) {
        this.#removePde(first.value);
        this.stats.evictions++;
      }
    }
    // Looked up after any eviction: evicting the last entry of the tag set drops the set.
    const s = this.#getOrCreate(did, pasid);
    const m = s.pdes[level] as Map<number, VtdPdeEntry>;
    const p = new VtdPdeEntry(level, kind, key, table, acc);
    p.owner = s;
    m.set(key, p);
    if (kind !== IOTLB_KIND_SL) s.flPdes.add(p);
    this.#pdeOrder.add(p);
  }

  #removePde(p: VtdPdeEntry): void {
    const s = p.owner as TagSet | undefined;
    this.#pdeOrder.delete(p);
    if (s === undefined) return;
    (s.pdes[p.level] as Map<number, VtdPdeEntry>).delete(p.key);
    if (p.kind !== IOTLB_KIND_SL) s.flPdes.delete(p);
    p.owner = undefined;
    this.#dropSet(s);
  }

  /** Every leaf entry, oldest first (for tests and debugging). */
  entries(): VtdIotlbEntry[] {
    return [...this.#leafOrder];
  }

  /** Every paging-structure entry, oldest first (for tests and debugging). */
  pdeEntries(): VtdPdeEntry[] {
    return [...this.#pdeOrder];
  }

  // ---- invalidations -------------------------------------------------------------------------

  /** Global invalidation (type 2 G = 01, IOTLB register IIRG = 01, SRTP / TE changes): empty both caches. */
  invalidateGlobal(): void {
    this.stats.invalidated += this.#leafOrder.size + this.#pdeOrder.size;
    for (const e of this.#leafOrder) e.owner = undefined;
    for (const p of this.#pdeOrder) p.owner = undefined;
    this.#sets.clear();
    this.#byDid.clear();
    this.#leafOrder.clear();
    this.#pdeOrder.clear();
    this.#lastTag = -1;
    this.#lastSet = undefined;
  }

  /**
   * Domain-selective invalidation (type 2 G = 10, IIRG = 10): every entry of the DID, any PASID.
   * @param did - domain ID
   */
  invalidateDomain(did: number): void {
    const ds = this.#byDid.get(did);
    if (ds === undefined) return;
    for (const s of [...ds]) this.#removeAll(s);
  }

  /**
   * Page-selective-within-domain invalidation (type 2 G = 11, IIRG = 11).
   * @param did - domain ID
   * @param addr - ADDR (bits 63:12 used; aligned down to `2^am` pages)
   * @param am - address mask: `2^am` pages, 0 … 52 (clamped)
   * @param ih - invalidation hint: paging-structure entries are kept
   */
  invalidatePage(did: number, addr: bigint, am: number, ih: boolean): void {
    const ds = this.#byDid.get(did);
    if (ds === undefined) return;
    const [start, end] = pageRange(addr, am);
    for (const s of [...ds]) {
      // First-stage and nested entries of the DID entirely; then second-stage entries in the range
      // (after the first step every remaining entry of the set is second-stage).
      let n = 0;
      for (const e of s.flLeaves) {
        this.#removeLeaf(e);
        n++;
      }
      if (!ih) {
        for (const p of s.flPdes) {
          this.#removePde(p);
          n++;
        }
      }
      this.stats.invalidated += n;
      this.#removeRange(s, start, end, !ih, false);
    }
  }

  /**
   * PASID-based invalidation of all mappings of a PASID in a domain (type 6, G = 10).
   * @param did - domain ID
   * @param pasid - PASID
   */
  invalidatePasid(did: number, pasid: number): void {
    const s = this.#sets.get(iotlbTag(did, pasid));
    if (s !== undefined) this.#removeAll(s);
  }

  /**
   * PASID-based page-selective invalidation (type 6, G = 11): first-stage and nested entries of
   * DID + PASID mapping any part of the range.
   * @param did - domain ID
   * @param pasid - PASID
   * @param addr - ADDR (bits 63:12; aligned down to `2^am` pages)
   * @param am - address mask, 0 … 52 (clamped)
   * @param ih - invalidation hint: paging-structure entries are kept
   */
  invalidatePasidPage(did: number, pasid: number, addr: bigint, am: number, ih: boolean): void {
    const s = this.#sets.get(iotlbTag(did, pasid));
    if (s === undefined) return;
    const [start, end] = pageRange(addr, am);
    this.#removeRange(s, start, end, !ih, true);
  }

  /** Remove every entry of a tag set. */
  #removeAll(s: TagSet): void {
    let n = 0;
    for (const m of s.leaves) {
      for (const e of m.values()) {
        this.#removeLeaf(e);
        n++;
      }
    }
    for (let level = 2; level <= 5; level++) {
      for (const p of (s.pdes[level] as Map<number, VtdPdeEntry>).values()) {
        this.#removePde(p);
        n++;
      }
    }
    this.stats.invalidated += n;
    this.#dropSet(s);
  }

  /**
   * Remove the entries of a tag set whose range overlaps `[start, end)` (page-frame numbers), in
   * time proportional to the smaller of the range's keys and the candidate entries.
   * @param pdes - paging-structure entries too (not only leaves)
   * @param flOnly - only first-stage and nested entries (otherwise any kind)
   */
  #removeRange(s: TagSet, start: number, end: number, pdes: boolean, flOnly: boolean): void {
    let n = 0;
    if (flOnly && s.flLeaves.size + (pdes ? s.flPdes.size : 0) <= end - start) {
      // Fewer candidates than pages named: test each first-stage / nested entry for overlap.
      for (const e of s.flLeaves) {
        if (e.pfn < end && e.pfn + e.pages > start) {
          this.#removeLeaf(e);
          n++;
        }
      }
      if (pdes) {
        for (const p of s.flPdes) {
          const span = LEVEL_SPAN[p.level] as number;
          if (p.key * span < end && (p.key + 1) * span > start) {
            this.#removePde(p);
            n++;
          }
        }
      }
      this.stats.invalidated += n;
      this.#dropSet(s);
      return;
    }
    for (let lvl = 0; lvl < 3; lvl++) {
      const m = s.leaves[lvl as 0 | 1 | 2];
      if (m.size === 0) continue;
      const sh = 2 ** (9 * lvl);
      const k0 = Math.floor(start / sh);
      const k1 = Math.ceil(end / sh);
      if (k1 - k0 <= m.size) {
        for (let k = k0; k < k1; k++) {
          const e = m.get(k);
          if (e !== undefined && (!flOnly || e.kind !== IOTLB_KIND_SL)) {
            this.#removeLeaf(e);
            n++;
          }
        }
      } else {
        for (const [k, e] of m) {
          if (k >= k0 && k < k1 && (!flOnly || e.kind !== IOTLB_KIND_SL)) {
            this.#removeLeaf(e);
            n++;
          }
        }
      }
    }
    if (pdes) {
      for (let level = 2; level <= 5; level++) {
        const m = s.pdes[level] as Map<number, VtdPdeEntry>;
        if (m.size === 0) continue;
        const sh = LEVEL_SPAN[level] as number;
        const k0 = Math.floor(start / sh);
        const k1 = Math.ceil(end / sh);
        if (k1 - k0 <= m.size) {
          for (let k = k0; k < k1; k++) {
            const p = m.get(k);
            if (p !== undefined && (!flOnly || p.kind !== IOTLB_KIND_SL)) {
              this.#removePde(p);
              n++;
            }
          }
        } else {
          for (const [k, p] of m) {
            if (k >= k0 && k < k1 && (!flOnly || p.kind !== IOTLB_KIND_SL)) {
              this.#removePde(p);
              n++;
            }
          }
        }
      }
    }
    this.stats.invalidated += n;
    this.#dropSet(s);
  }
}

/** `[first, end)` page-frame numbers of an ADDR/AM pair. */
function pageRange(addr: bigint, am: number): [number, number] {
  const m = Math.min(Math.max(0, Math.trunc(am)), 52);
  const pfn = Number(BigInt.asUintN(64, addr) >> 12n);
  const pages = 2 ** m;
  const start = pfn - (pfn % pages);
  return [start, start + pages];
}
