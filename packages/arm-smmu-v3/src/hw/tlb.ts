/**
 * The SMMU's translation lookaside buffer: leaf translations tagged by translation regime, VMID,
 * ASID and TTB region, with a fixed capacity, a replacement policy, and the invalidations the
 * TLBI_* commands perform (digest §4.3, §4.5, §7.6).
 *
 * @remarks
 * Only leaf entries are cached (no separate walk cache): a TLBI with Leaf=1 therefore removes the
 * same entries as Leaf=0. Stage-2 entries (tag kind `'s2'`) also serve the stage-2 translations of
 * stage-1 table addresses in nested walks, so TLBI_S2_IPA removes those too.
 *
 * Hot paths use `number`s only: addresses in entries are the low 52 bits of the input address
 * (plus a TTB region bit in the tag), which is lossless for every address a walk can translate.
 */

import { Prng } from '@iommu-ts/base';
import type { TlbiOp } from '@iommu-ts/mm';
import type { SmmuHwConfig, SmmuTlbReplacement } from './smmu-config.js';

/** Translation regime of an entry: the Non-secure EL1 StreamWorld (`0`) or the EL2 one (`1`). */
export type TlbRegime = 0 | 1;
/** {@link TlbRegime} value: Non-secure EL1 (STE.STRW = 0). */
export const TLB_REGIME_NS_EL1: TlbRegime = 0;
/** {@link TlbRegime} value: EL2 / EL2-E2H (STE.STRW = 2). */
export const TLB_REGIME_EL2: TlbRegime = 1;

/**
 * What an entry translates: `'s1'` stage 1 only (VA → PA), `'s2'` stage 2 only (IPA → PA),
 * `'nested'` combined stage 1 + stage 2 (VA → PA).
 */
export type TlbEntryStage = 's1' | 's2' | 'nested';

/** Marker ASID of global (nG = 0) stage-1 entries inside a tag; real ASIDs are 0 … 65535. */
const GLOBAL_ASID = 0x1_0000;
/** 2^52: input addresses are kept modulo this. */
const ADDR_SPAN = 2 ** 52;
const POW2: number[] = [];
for (let i = 0; i <= 64; i++) POW2.push(2 ** i);

/**
 * The tag of a set of TLB entries, as one number: regime, stage kind, TTB region, VMID and ASID.
 * @param regime - {@link TLB_REGIME_NS_EL1} or {@link TLB_REGIME_EL2}
 * @param s2Only - true for stage-2-only entries (ASID and region are then 0)
 * @param region - TTB region of a stage-1 input address: 0 (TTB0) or 1 (TTB1)
 * @param vmid - VMID (16 bits; 0 when stage 2 is not implemented)
 * @param asid - ASID (16 bits), or -1 for global entries
 * @returns a non-negative integer below 2^36
 */
export function tlbTag(
  regime: TlbRegime,
  s2Only: boolean,
  region: number,
  vmid: number,
  asid: number,
): number {
  const a = asid < 0 ? GLOBAL_ASID : asid & 0xffff;
  return ((regime * 2 + (s2Only ? 1 : 0)) * 2 + region) * 2 ** 33 + (vmid & 0xffff) * 2 ** 17 + a;
}

/** Regime bit of a tag. */
function tagRegime(tag: number): number {
  return Math.floor(tag / 2 ** 35);
}
/** Stage-2-only bit of a tag. */
function tagS2(tag: number): boolean {
  return Math.floor(tag / 2 ** 34) % 2 === 1;
}
/** VMID of a tag. */
function tagVmid(tag: number): number {
  return Math.floor(tag / 2 ** 17) % 0x1_0000;
}
/** ASID field of a tag (GLOBAL_ASID for global entries). */
function tagAsid(tag: number): number {
  return tag % 2 ** 17;
}
/** Region bit of a tag. */
function tagRegion(tag: number): number {
  return Math.floor(tag / 2 ** 33) % 2;
}

/** What {@link SmmuTlb.insert} needs to create an entry. */
export interface TlbEntryInit {
  /** The tag, from {@link tlbTag}. */
  readonly tag: number;
  /** Stage kind (for statistics and TLBI_S2_IPA). */
  readonly stage: TlbEntryStage;
  /** Input address (VA or IPA) of any byte the entry covers, low 52 bits (`number`). */
  readonly inputAddr: number;
  /** log2 of the size the entry covers (12 … 42), the smaller of the two stages' for nested. */
  readonly shift: number;
  /** Level of the leaf descriptor (1 … 3; for nested the stage-1 level), used by TTL hints. */
  readonly level: number;
  /** Output (physical) address of the first byte the entry covers. */
  readonly outputBase: number;
  /**
   * Stage-1 permissions as `TLB_PERM_*` bits (all six for stage-2-only entries); see
   * {@link tlbPermBit}.
   */
  readonly s1Perm: number;
  /** Stage-2 permissions as `TLB_PERM_*` bits (all six when stage 2 is bypassed). */
  readonly s2Perm: number;
  /**
   * Set when a write the entry refuses might still succeed after a fresh walk (stage-1 or stage-2
   * DBM with hardware dirty-state update enabled): the translator then walks instead of faulting.
   */
  readonly dirtyUpdatable: boolean;
  /**
   * CD.ASET of the context the entry was filled from: `true` = the ASID is in the non-shared set,
   * so broadcast TLB maintenance from the PEs leaves the entry alone ({@link SmmuTlb.invalidateBroadcast});
   * `false` (default) = shared set, broadcasts apply. Meaningless for stage-2-only entries.
   */
  readonly aset?: boolean;
}

/**
 * Permission bit index of an access: `R` = 0, `W` = 1, `X` = 2, plus 3 for an unprivileged access.
 * @param write - data write
 * @param exec - instruction fetch (a read)
 * @param privileged - PnU = privileged
 * @returns the bit to test in a `TLB_PERM_*` mask (a single-bit number)
 */
export function tlbPermBit(write: boolean, exec: boolean, privileged: boolean): number {
  return 1 << ((exec ? 2 : write ? 1 : 0) + (privileged ? 0 : 3));
}

/** `TLB_PERM_*` mask: privileged read. */
export const TLB_PERM_PR = 1;
/** `TLB_PERM_*` mask: privileged write. */
export const TLB_PERM_PW = 2;
/** `TLB_PERM_*` mask: privileged instruction fetch. */
export const TLB_PERM_PX = 4;
/** `TLB_PERM_*` mask: unprivileged read. */
export const TLB_PERM_UR = 8;
/** `TLB_PERM_*` mask: unprivileged write. */
export const TLB_PERM_UW = 16;
/** `TLB_PERM_*` mask: unprivileged instruction fetch. */
export const TLB_PERM_UX = 32;
/** `TLB_PERM_*` mask: every access. */
export const TLB_PERM_ALL = 63;

/** One cached translation. Fields are read-only for users of the TLB. */
export class SmmuTlbEntry {
  /** The tag (see {@link tlbTag}). */
  readonly tag: number;
  /** Stage kind. */
  readonly stage: TlbEntryStage;
  /** First input address covered (low 52 bits, aligned to `2^shift`). */
  readonly inputBase: number;
  /** log2 of the covered size. */
  readonly shift: number;
  /** Leaf level (TTL matching). */
  readonly level: number;
  /** Output address of `inputBase`. */
  readonly outputBase: number;
  /** Stage-1 permission mask (`TLB_PERM_*`). */
  readonly s1Perm: number;
  /** Stage-2 permission mask (`TLB_PERM_*`). */
  readonly s2Perm: number;
  /** See {@link TlbEntryInit.dirtyUpdatable}. */
  readonly dirtyUpdatable: boolean;
  /** CD.ASET of the filling context (see {@link TlbEntryInit.aset}); `true` ignores PE broadcasts. */
  readonly aset: boolean;
  /** @internal key inside the tag's map. */
  key: number;
  /** @internal LRU list links. */
  prev: SmmuTlbEntry | undefined = undefined;
  /** @internal LRU list links. */
  next: SmmuTlbEntry | undefined = undefined;
  /** @internal index in the slot array (random replacement). */
  slot = -1;

  /** @param init - see {@link TlbEntryInit} */
  constructor(init: TlbEntryInit) {
    const size = POW2[init.shift] as number;
    this.tag = init.tag;
    this.stage = init.stage;
    this.shift = init.shift;
    const vpn = Math.floor((init.inputAddr % ADDR_SPAN) / size);
    this.inputBase = vpn * size;
    this.level = init.level;
    this.outputBase = init.outputBase - (init.outputBase % size);
    this.s1Perm = init.s1Perm;
    this.s2Perm = init.s2Perm;
    this.dirtyUpdatable = init.dirtyUpdatable;
    this.aset = init.aset ?? false;
    this.key = vpn * 64 + init.shift;
  }

  /** Size covered, in bytes. */
  get size(): number {
    return POW2[this.shift] as number;
  }
}

/** Options of {@link SmmuTlb}. */
export interface SmmuTlbOptions {
  /** Most entries held; default 256. */
  readonly capacity?: number;
  /**
   * What happens when inserting into a full TLB: `'lru'` evicts the least recently used entry,
   * `'random'` a pseudo-random one (seeded), `'flush-all'` empties the TLB first (QEMU). Default
   * `'lru'`.
   */
  readonly replacement?: SmmuTlbReplacement | 'flush-all';
  /** Seed of the random replacement; default 1. */
  readonly seed?: number;
  /** IDR0.ASID16: false makes TLBI ASID operands significant in bits 7:0 only. Default true. */
  readonly asid16?: boolean;
  /** IDR0.VMID16: false makes TLBI VMID operands significant in bits 7:0 only. Default true. */
  readonly vmid16?: boolean;
}

/** One TLBI address operand (digest §4.3, §4.5). */
export interface TlbiVaRange {
  /** VMID (ignored by EL2 invalidations). */
  readonly vmid?: number;
  /** ASID (NH_VA / EL2_VA; ignored by the VAA variants). */
  readonly asid?: number;
  /** Address (bits 63:12 significant; bits 63:56 select the region through bit 55). */
  readonly addr: bigint | number;
  /** Leaf: only leaf entries need invalidating (the model has only leaf entries). */
  readonly leaf: boolean;
  /** TG: 0 = single address, 1 = 4K, 2 = 16K, 3 = 64K range granule. */
  readonly tg: number;
  /** NUM (0 … 31): range = (NUM + 1) × 2^SCALE granules; ignored when TG = 0. */
  readonly num: number;
  /** SCALE (0 … 31). */
  readonly scale: number;
  /** TTL: 0, or the level (1 … 3) of the leaf entries to remove; only used when TG ≠ 0. */
  readonly ttl: number;
}

/** Operand of {@link SmmuTlb.invalidateS2Ipa}. */
export interface TlbiIpaRange {
  /** VMID. */
  readonly vmid: number;
  /** IPA (bits 51:12 significant). */
  readonly ipa: bigint | number;
  /** See {@link TlbiVaRange.leaf}. */
  readonly leaf: boolean;
  /** See {@link TlbiVaRange.tg}. */
  readonly tg: number;
  /** See {@link TlbiVaRange.num}. */
  readonly num: number;
  /** See {@link TlbiVaRange.scale}. */
  readonly scale: number;
  /** See {@link TlbiVaRange.ttl}. */
  readonly ttl: number;
}

/** Counters of {@link SmmuTlb}. */
export interface SmmuTlbStats {
  /** Lookups that found an entry. */
  hits: number;
  /** Lookups that found none. */
  misses: number;
  /** Table walks performed by the translator (it increments this), for transactions and ATS translation requests alike. */
  walks: number;
  /** Entries inserted. */
  inserts: number;
  /** Entries evicted by replacement (not by invalidation). */
  evictions: number;
  /** Entries removed by invalidations. */
  invalidated: number;
}

/** Entries of one tag. */
class TagSet {
  readonly map = new Map<number, SmmuTlbEntry>();
  readonly shiftCount = new Int32Array(65);
  /** Distinct shifts present, ascending. */
  shifts: number[] = [];

  add(e: SmmuTlbEntry): void {
    this.map.set(e.key, e);
    const n = this.shiftCount[e.shift] as number;
    this.shiftCount[e.shift] = n + 1;
    if (n === 0) this.recompute();
  }

  remove(e: SmmuTlbEntry): void {
    this.map.delete(e.key);
    const n = (this.shiftCount[e.shift] as number) - 1;
    this.shiftCount[e.shift] = n;
    if (n === 0) this.recompute();
  }

  private recompute(): void {
    const s: number[] = [];
    for (let i = 0; i <= 64; i++) if ((this.shiftCount[i] as number) > 0) s.push(i);
    this.shifts = s;
  }

  find(addr: number): SmmuTlbEntry | undefined {
    const shifts = this.shifts;
    for (let i = 0; i < shifts.length; i++) {
      const sh = shifts[i] as number;
      const e = this.map.get(Math.floor(addr / (POW2[sh] as number)) * 64 + sh);
      if (e !== undefined) return e;
    }
    return undefined;
  }
}

/** Address span `[start, end)` (numbers, low 52 bits) and level filter of a TLBI operand. */
interface Span {
  readonly start: number;
  readonly end: number;
  readonly region: number;
  readonly ttl: number;
}

const TG_SHIFT = [0, 12, 14, 16];

function toSpan(addr: bigint | number, tg: number, num: number, scale: number, ttl: number): Span {
  let a: number;
  let region = 0;
  if (typeof addr === 'bigint') {
    region = Number((addr >> 55n) & 1n);
    a = Number(addr & 0xf_ffff_ffff_f000n);
  } else {
    a = addr - (addr % 4096);
    if (a >= ADDR_SPAN) a %= ADDR_SPAN;
  }
  const t = tg & 3;
  if (t === 0) return { start: a, end: a + 1, region, ttl: 0 };
  const gs = TG_SHIFT[t] as number;
  const len = ((num & 31) + 1) * (POW2[(scale & 31) + gs] as number);
  return { start: a - (a % (POW2[gs] as number)), end: a + len, region, ttl: ttl & 3 };
}

/**
 * The modelled TLB (digest §7.6).
 *
 * @remarks
 * Lookups cost one `Map` lookup per distinct entry size present under the tag (typically one to
 * three), plus the same for global entries when any exist. Address-based invalidations probe an
 * index from (page number, size) to entries, one probe per covered block of each entry size
 * present, when that is fewer probes than entries held; otherwise (and for the ASID/VMID/ALL
 * forms) they scan all entries (at most `capacity`). Either way entries are removed in
 * most-recently-used-first order, so the random replacement's slot order is the same.
 */
export class SmmuTlb {
  /** Most entries held. */
  readonly capacity: number;
  /** Replacement policy. */
  readonly replacement: SmmuTlbReplacement | 'flush-all';
  /** Counters (mutable; reset with {@link SmmuTlb.resetStats}). */
  readonly stats: SmmuTlbStats = { hits: 0, misses: 0, walks: 0, inserts: 0, evictions: 0, invalidated: 0 };
  readonly #tags = new Map<number, TagSet>();
  readonly #prng: Prng;
  readonly #asidMask: number;
  readonly #vmidMask: number;
  /** Most recently used end of the LRU list. */
  #head: SmmuTlbEntry | undefined = undefined;
  /** Least recently used end. */
  #tail: SmmuTlbEntry | undefined = undefined;
  readonly #slots: SmmuTlbEntry[] = [];
  #globals = 0;
  /** Every entry by its key (block number × 64 + shift), across tags. */
  readonly #byKey = new Map<number, SmmuTlbEntry[]>();
  /** Entries held per shift. */
  readonly #shiftCount = new Int32Array(65);
  /** Distinct shifts held, ascending. */
  #shifts: number[] = [];
  /** Recency stamp of the entry in each slot: larger = more recently used. */
  readonly #stamps: number[] = [];
  /** Last recency stamp handed out. */
  #clock = 0;

  /** @param options - capacity and replacement; see {@link SmmuTlbOptions} */
  constructor(options: SmmuTlbOptions = {}) {
    this.capacity = options.capacity ?? 256;
    this.replacement = options.replacement ?? 'lru';
    this.#prng = new Prng(options.seed ?? 1);
    this.#asidMask = (options.asid16 ?? true) ? 0xffff : 0xff;
    this.#vmidMask = (options.vmid16 ?? true) ? 0xffff : 0xff;
  }

  /**
   * A TLB sized and configured from an SMMU's parameters (`tlbCapacity`, `tlbReplacement`,
   * `tlbSeed`, `asid16`, `vmid16`).
   * @param config - the SMMU parameters
   */
  static fromConfig(
    config: Pick<SmmuHwConfig, 'tlbCapacity' | 'tlbReplacement' | 'tlbSeed' | 'asid16' | 'vmid16'>,
  ): SmmuTlb {
    return new SmmuTlb({
      capacity: config.tlbCapacity,
      replacement: config.tlbReplacement,
      seed: config.tlbSeed,
      asid16: config.asid16,
      vmid16: config.vmid16,
    });
  }

  /** Number of entries held. */
  get size(): number {
    return this.#slots.length;
  }

  /** Zero every counter. */
  resetStats(): void {
    const s = this.stats;
    s.hits = s.misses = s.walks = s.inserts = s.evictions = s.invalidated = 0;
  }

  /** Every entry, most recently used first (tests and dumps). */
  entries(): SmmuTlbEntry[] {
    const out: SmmuTlbEntry[] = [];
    for (let e = this.#head; e !== undefined; e = e.next) out.push(e);
    return out;
  }

  /**
   * Find the entry translating `addr` under `tag`, or under `globalTag` (global stage-1 entries)
   * when given and global entries exist. Counts a hit or a miss and, on a hit, marks the entry
   * most recently used.
   * @param tag - from {@link tlbTag}
   * @param addr - input address, low 52 bits (`number`)
   * @param globalTag - the tag global entries of the same VMID/region carry, or -1
   * @returns the entry or `undefined`
   */
  lookup(tag: number, addr: number, globalTag = -1): SmmuTlbEntry | undefined {
    let e = this.#tags.get(tag)?.find(addr);
    if (e === undefined && globalTag >= 0 && this.#globals > 0) e = this.#tags.get(globalTag)?.find(addr);
    if (e === undefined) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    if (this.#head !== e) {
      this.#unlink(e);
      this.#pushFront(e);
    }
    return e;
  }

  /**
   * Find an entry without touching statistics or recency (tests).
   * @param tag - from {@link tlbTag}
   * @param addr - input address, low 52 bits
   */
  peek(tag: number, addr: number): SmmuTlbEntry | undefined {
    return this.#tags.get(tag)?.find(addr);
  }

  /**
   * Add an entry, replacing any entry with the same tag, size and address, and evicting one per the
   * replacement policy when full.
   * @param init - the translation
   * @returns the new entry
   */
  insert(init: TlbEntryInit): SmmuTlbEntry {
    const e = new SmmuTlbEntry(init);
    const old = this.#tags.get(e.tag)?.map.get(e.key);
    if (old !== undefined) this.#remove(old);
    if (this.#slots.length >= this.capacity) this.#evict();
    let set = this.#tags.get(e.tag);
    if (set === undefined) {
      set = new TagSet();
      this.#tags.set(e.tag, set);
    }
    set.add(e);
    this.#indexAdd(e);
    if (tagAsid(e.tag) === GLOBAL_ASID) this.#globals++;
    e.slot = this.#slots.length;
    this.#slots.push(e);
    this.#stamps.push(0);
    this.#pushFront(e);
    this.stats.inserts++;
    return e;
  }

  /**
   * Remove one entry (the translator drops an entry it found stale, for example before an HTTU
   * re-walk).
   * @param entry - an entry of this TLB; ignored if already gone
   */
  remove(entry: SmmuTlbEntry): void {
    if (entry.slot >= 0 && this.#slots[entry.slot] === entry) this.#remove(entry);
  }

  // ---- invalidation (TLBI_* commands) ------------------------------------------------------------

  /** Remove every entry (reset; TLBI of everything in every regime). */
  invalidateAll(): void {
    this.#removeIf(() => true);
  }

  /**
   * TLBI_NH_ALL: every stage-1 and nested entry of `vmid` in the Non-secure EL1 regime.
   * @param vmid - VMID (use 0 when stage 2 is not implemented)
   */
  invalidateNhAll(vmid: number): void {
    const v = vmid & this.#vmidMask;
    this.#removeIf((e) => tagRegime(e.tag) === 0 && !tagS2(e.tag) && tagVmid(e.tag) === v);
  }

  /**
   * TLBI_NH_ASID: the non-global stage-1 and nested entries of (`vmid`, `asid`).
   * @param vmid - VMID
   * @param asid - ASID
   */
  invalidateNhAsid(vmid: number, asid: number): void {
    const v = vmid & this.#vmidMask;
    const a = asid & this.#asidMask;
    this.#removeIf(
      (e) => tagRegime(e.tag) === 0 && !tagS2(e.tag) && tagVmid(e.tag) === v && tagAsid(e.tag) === a,
    );
  }

  /**
   * TLBI_NH_VA: stage-1 and nested entries of (`vmid`, `asid`), and global ones of `vmid`, covering
   * the address or range (§4.5).
   * @param r - operand (`vmid` and `asid` default to 0)
   */
  invalidateNhVa(r: TlbiVaRange): void {
    this.#invalidateVa(0, r.vmid ?? 0, r.asid ?? 0, r);
  }

  /**
   * TLBI_NH_VAA: stage-1 and nested entries of `vmid`, any ASID, covering the address or range.
   * @param r - operand (`asid` is ignored)
   */
  invalidateNhVaa(r: TlbiVaRange): void {
    this.#invalidateVa(0, r.vmid ?? 0, -1, r);
  }

  /**
   * TLBI_S12_VMALL: every entry (stage 1, stage 2, nested) of `vmid` in the Non-secure EL1 regime.
   * @param vmid - VMID
   */
  invalidateS12Vmall(vmid: number): void {
    const v = vmid & this.#vmidMask;
    this.#removeIf((e) => tagRegime(e.tag) === 0 && tagVmid(e.tag) === v);
  }

  /**
   * TLBI_S2_IPA: stage-2-only entries of `vmid` covering the IPA or range. Nested entries that
   * used the translation stay (the architecture does not require their removal).
   * @param r - operand
   */
  invalidateS2Ipa(r: TlbiIpaRange): void {
    const span = toSpan(r.ipa, r.tg, r.num, r.scale, r.ttl);
    const v = r.vmid & this.#vmidMask;
    this.#removeInSpan(
      span,
      (e) => tagRegime(e.tag) === 0 && tagS2(e.tag) && tagVmid(e.tag) === v && overlaps(e, span, false),
    );
  }

  /** TLBI_NSNH_ALL: every Non-secure EL1 entry (all VMIDs, all stages). */
  invalidateNsnhAll(): void {
    this.#removeIf((e) => tagRegime(e.tag) === 0);
  }

  /** TLBI_EL2_ALL: every EL2-regime entry. */
  invalidateEl2All(): void {
    this.#removeIf((e) => tagRegime(e.tag) === 1);
  }

  /**
   * TLBI_EL2_ASID: the non-global EL2 entries of `asid`.
   * @param asid - ASID
   */
  invalidateEl2Asid(asid: number): void {
    const a = asid & this.#asidMask;
    this.#removeIf((e) => tagRegime(e.tag) === 1 && tagAsid(e.tag) === a);
  }

  /**
   * TLBI_EL2_VA: EL2 entries of `asid` (and global ones) covering the address or range.
   * @param r - operand (`vmid` ignored)
   */
  invalidateEl2Va(r: TlbiVaRange): void {
    this.#invalidateVa(1, -1, r.asid ?? 0, r);
  }

  /**
   * TLBI_EL2_VAA: EL2 entries of any ASID covering the address or range.
   * @param r - operand (`vmid`, `asid` ignored)
   */
  invalidateEl2Vaa(r: TlbiVaRange): void {
    this.#invalidateVa(1, -1, -1, r);
  }

  // ---- invalidation (broadcast TLB maintenance from the PEs) ------------------------------------

  /**
   * Apply one inner-shareable TLBI broadcast by the PEs (IDR0.BTM; the DVM message of `TLBI VAE1IS`,
   * `RVAE1IS`, `ASIDE1IS` or `VMALLE1IS`).
   *
   * @remarks
   * Only stage-1 and nested entries (never stage-2-only ones) of the given regime are candidates:
   * with `regime` = {@link TLB_REGIME_NS_EL1}, entries of VMID 0 (the host's EL1&0 regime as the
   * SMMU sees it); with {@link TLB_REGIME_EL2}, the EL2 entries (the host runs at EL2 with E2H). Of
   * those, only entries filled from a CD with ASET = 0 ({@link SmmuTlbEntry.aset} `false`) go:
   * non-shared-set ASIDs are the driver's to invalidate with commands. The TLBI_* command paths of
   * this class ignore ASET (commands affect both sets).
   *
   * - `vae1is`: entries of the ASID, and global entries, translating `va` (TTB0 region). `leaf` is
   *   honoured trivially: the model caches only leaf entries.
   * - `rvae1is`: the same for every address in `[start, end)`.
   * - `aside1is`: every non-global entry of the ASID.
   * - `vmalle1is`: every candidate entry, global or not.
   *
   * ASIDs are compared in the width the SMMU implements (IDR0.ASID16). Counts each removed entry in
   * {@link SmmuTlbStats.invalidated}.
   *
   * @param op - the broadcast operation, as published on the machine's `TlbBroadcast`
   * @param regime - the translation regime the PEs' EL1 TLBIs stand for in this SMMU
   */
  invalidateBroadcast(op: TlbiOp, regime: TlbRegime): void {
    const cand = (t: number): boolean =>
      tagRegime(t) === regime && !tagS2(t) && (regime === TLB_REGIME_EL2 || tagVmid(t) === 0);
    switch (op.kind) {
      case 'vmalle1is':
        this.#removeIf((e) => !e.aset && cand(e.tag));
        return;
      case 'aside1is': {
        const a = op.asid & this.#asidMask;
        this.#removeIf((e) => !e.aset && cand(e.tag) && tagAsid(e.tag) === a);
        return;
      }
      case 'vae1is':
      case 'rvae1is': {
        const a = op.asid & this.#asidMask;
        const start = op.kind === 'vae1is' ? op.va - (op.va % 4096) : op.start;
        const end = op.kind === 'vae1is' ? start + 4096 : op.end;
        const span: Span = {
          start: start % ADDR_SPAN,
          end: (start % ADDR_SPAN) + (end - start),
          region: 0,
          ttl: 0,
        };
        if (span.end <= span.start) return;
        this.#removeInSpan(span, (e) => {
          if (e.aset || !cand(e.tag)) return false;
          const ea = tagAsid(e.tag);
          if (ea !== a && ea !== GLOBAL_ASID) return false;
          return overlaps(e, span, true);
        });
        return;
      }
    }
  }

  // ---- internals ---------------------------------------------------------------------------------

  #invalidateVa(regime: number, vmid: number, asid: number, r: TlbiVaRange): void {
    const span = toSpan(r.addr, r.tg, r.num, r.scale, r.ttl);
    const v = vmid & this.#vmidMask;
    const a = asid & this.#asidMask;
    this.#removeInSpan(span, (e) => {
      const t = e.tag;
      if (tagRegime(t) !== regime || tagS2(t)) return false;
      if (vmid >= 0 && tagVmid(t) !== v) return false;
      if (asid >= 0) {
        const ea = tagAsid(t);
        if (ea !== a && ea !== GLOBAL_ASID) return false;
      }
      return overlaps(e, span, true);
    });
  }

  /**
   * Remove the entries matching `pred`, which must only match entries overlapping
   * `[span.start, span.end)`: through the index when that takes fewer probes than a full scan.
   */
  #removeInSpan(span: Span, pred: (e: SmmuTlbEntry) => boolean): void {
    const start = span.start;
    const end = Math.min(span.end, ADDR_SPAN);
    if (!(start >= 0) || !(end > start)) {
      this.#removeIf(pred);
      return;
    }
    const shifts = this.#shifts;
    const budget = this.#slots.length;
    let probes = 0;
    for (let i = 0; i < shifts.length && probes <= budget; i++) {
      const size = POW2[shifts[i] as number] as number;
      probes += Math.floor((end - 1) / size) - Math.floor(start / size) + 1;
    }
    if (!(probes <= budget)) {
      this.#removeIf(pred);
      return;
    }
    const hits: SmmuTlbEntry[] = [];
    for (let i = 0; i < shifts.length; i++) {
      const sh = shifts[i] as number;
      const size = POW2[sh] as number;
      const last = Math.floor((end - 1) / size);
      for (let b = Math.floor(start / size); b <= last; b++) {
        const list = this.#byKey.get(b * 64 + sh);
        if (list === undefined) continue;
        for (let j = 0; j < list.length; j++) {
          const e = list[j] as SmmuTlbEntry;
          if (pred(e)) hits.push(e);
        }
      }
    }
    if (hits.length > 1) {
      const st = this.#stamps;
      hits.sort((x, y) => (st[y.slot] as number) - (st[x.slot] as number));
    }
    for (let i = 0; i < hits.length; i++) {
      this.#remove(hits[i] as SmmuTlbEntry);
      this.stats.invalidated++;
    }
  }

  #indexAdd(e: SmmuTlbEntry): void {
    const list = this.#byKey.get(e.key);
    if (list === undefined) this.#byKey.set(e.key, [e]);
    else list.push(e);
    const n = this.#shiftCount[e.shift] as number;
    this.#shiftCount[e.shift] = n + 1;
    if (n === 0) this.#recomputeShifts();
  }

  #indexRemove(e: SmmuTlbEntry): void {
    const list = this.#byKey.get(e.key);
    if (list !== undefined) {
      const i = list.indexOf(e);
      if (i >= 0) {
        const lastE = list.pop() as SmmuTlbEntry;
        if (lastE !== e) list[i] = lastE;
        if (list.length === 0) this.#byKey.delete(e.key);
      }
    }
    const n = (this.#shiftCount[e.shift] as number) - 1;
    this.#shiftCount[e.shift] = n;
    if (n === 0) this.#recomputeShifts();
  }

  #recomputeShifts(): void {
    const s: number[] = [];
    for (let i = 0; i <= 64; i++) if ((this.#shiftCount[i] as number) > 0) s.push(i);
    this.#shifts = s;
  }

  #removeIf(pred: (e: SmmuTlbEntry) => boolean): void {
    let e = this.#head;
    while (e !== undefined) {
      const next = e.next;
      if (pred(e)) {
        this.#remove(e);
        this.stats.invalidated++;
      }
      e = next;
    }
  }

  #evict(): void {
    if (this.replacement === 'flush-all') {
      let e = this.#head;
      while (e !== undefined) {
        const next = e.next;
        this.#remove(e);
        this.stats.evictions++;
        e = next;
      }
      return;
    }
    const victim =
      this.replacement === 'random' ? this.#slots[this.#prng.nextInt(this.#slots.length)] : this.#tail;
    if (victim === undefined) return;
    this.#remove(victim);
    this.stats.evictions++;
  }

  #remove(e: SmmuTlbEntry): void {
    const set = this.#tags.get(e.tag);
    if (set !== undefined) {
      set.remove(e);
      if (set.map.size === 0) this.#tags.delete(e.tag);
    }
    this.#indexRemove(e);
    if (tagAsid(e.tag) === GLOBAL_ASID) this.#globals--;
    this.#unlink(e);
    const last = this.#slots.pop() as SmmuTlbEntry;
    const lastStamp = this.#stamps.pop() as number;
    if (last !== e) {
      this.#slots[e.slot] = last;
      this.#stamps[e.slot] = lastStamp;
      last.slot = e.slot;
    }
    e.slot = -1;
  }

  #unlink(e: SmmuTlbEntry): void {
    if (e.prev !== undefined) e.prev.next = e.next;
    else this.#head = e.next;
    if (e.next !== undefined) e.next.prev = e.prev;
    else this.#tail = e.prev;
    e.prev = e.next = undefined;
  }

  #pushFront(e: SmmuTlbEntry): void {
    this.#stamps[e.slot] = ++this.#clock;
    e.next = this.#head;
    e.prev = undefined;
    if (this.#head !== undefined) this.#head.prev = e;
    this.#head = e;
    if (this.#tail === undefined) this.#tail = e;
  }
}

function overlaps(e: SmmuTlbEntry, s: Span, checkRegion: boolean): boolean {
  if (checkRegion && tagRegion(e.tag) !== s.region) return false;
  if (s.ttl !== 0 && e.level !== s.ttl) return false;
  return e.inputBase < s.end && s.start < e.inputBase + (POW2[e.shift] as number);
}
