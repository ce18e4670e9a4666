/**
 * The Address Translation Cache (ATC, "device TLB") of an ATS-capable endpoint.
 *
 * @remarks
 * Entries come from ATS Translation Completions: a naturally aligned untranslated range, its
 * translated base and permissions, tagged by PASID (or none) and privilege. Invalidate Requests
 * drop every overlapping entry of the named PASID (entries marked Global, too); without a PASID,
 * or with Global Invalidate, every overlapping entry (PCIe ATS "Invalidate Request"; the Arm SMMUv3
 * spec digest notes Linux relies on no-PASID invalidations reaching PASID-tagged entries).
 * Replacement is least-recently-used.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { AtsRange } from './ats-range.js';
import type { AtsCompletionSuccess } from './dma-request.js';

/** One cached translation. */
export interface AtcEntry {
  /** PASID the translation belongs to, or `undefined` for requests without PASID. */
  readonly pasid: number | undefined;
  /** Privileged-mode translation. */
  readonly privileged: boolean;
  /** Valid for every PASID (Global bit). */
  readonly global: boolean;
  /** Untranslated base, aligned to `size`. u64. */
  readonly start: bigint;
  /** Range size in bytes (power of two ≥ 4096). */
  readonly size: bigint;
  /** Translated (physical) base. u64. */
  readonly translated: bigint;
  /** R. */
  readonly read: boolean;
  /** W. */
  readonly write: boolean;
  /** Exe. */
  readonly exec: boolean;
  /** U: use untranslated requests for this range. */
  readonly untranslatedOnly: boolean;
}

/** What an access needs from an ATC entry. */
export interface AtcNeed {
  /** Write access. */
  readonly write: boolean;
  /** Instruction fetch. */
  readonly exec: boolean;
}

/**
 * Whether an entry (or completion) grants an access.
 * @param e - permissions
 * @param need - the access
 */
export function atcPermits(e: Pick<AtcEntry, 'read' | 'write' | 'exec'>, need: AtcNeed): boolean {
  if (need.write) return e.write;
  return e.read && (!need.exec || e.exec);
}

/** A bounded LRU cache of {@link AtcEntry}. */
export class AtsTranslationCache {
  /** Maximum number of entries. */
  readonly capacity: number;
  // Most recently used last.
  #entries: AtcEntry[] = [];

  /**
   * @param capacity - maximum entries, ≥ 1
   * @throws ErrnoError `EINVAL` for a capacity below 1
   */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new ErrnoError('EINVAL', `bad ATC capacity ${capacity}`);
    this.capacity = capacity;
  }

  /** Number of entries. */
  get size(): number {
    return this.#entries.length;
  }

  /** A snapshot of the entries, least recently used first. */
  entries(): AtcEntry[] {
    return [...this.#entries];
  }

  /**
   * Find the entry translating `addr` for (`pasid`, `privileged`), and mark it used.
   * @param pasid - the request's PASID, or `undefined`
   * @param privileged - privileged request
   * @param addr - untranslated address. u64
   * @returns the entry, or `undefined` on a miss
   */
  lookup(pasid: number | undefined, privileged: boolean, addr: bigint): AtcEntry | undefined {
    const list = this.#entries;
    for (let i = list.length - 1; i >= 0; i--) {
      const e = list[i] as AtcEntry;
      if (addr < e.start || addr >= e.start + e.size || e.privileged !== privileged) continue;
      if (e.pasid !== pasid && !(e.global && pasid !== undefined && e.pasid !== undefined)) continue;
      if (i !== list.length - 1) {
        list.splice(i, 1);
        list.push(e);
      }
      return e;
    }
    return undefined;
  }

  /**
   * Cache a successful completion, replacing entries of the same tag it overlaps and evicting the
   * least recently used entry when full.
   * @param pasid - the request's PASID, or `undefined`
   * @param c - the completion
   * @returns the new entry
   */
  insert(pasid: number | undefined, c: AtsCompletionSuccess): AtcEntry {
    const e: AtcEntry = {
      pasid,
      privileged: c.privileged,
      global: c.global,
      start: c.untranslatedAddr,
      size: c.size,
      translated: c.translatedAddr,
      read: c.read,
      write: c.write,
      exec: c.exec,
      untranslatedOnly: c.untranslatedOnly,
    };
    this.#entries = this.#entries.filter(
      (o) =>
        !(
          o.pasid === pasid &&
          o.privileged === e.privileged &&
          o.start < e.start + e.size &&
          e.start < o.start + o.size
        ),
    );
    if (this.#entries.length >= this.capacity) this.#entries.shift();
    this.#entries.push(e);
    return e;
  }

  /**
   * Drop the entries an ATS Invalidate Request covers.
   * @param range - the decoded range
   * @param pasid - the request's PASID prefix, or `undefined` (then every PASID)
   * @param global - Global Invalidate bit (every PASID)
   * @returns how many entries were dropped
   */
  invalidate(range: AtsRange, pasid: number | undefined, global: boolean): number {
    const before = this.#entries.length;
    const end = range.start + range.size;
    this.#entries = this.#entries.filter((e) => {
      if (!(e.start < end && range.start < e.start + e.size)) return true;
      if (pasid === undefined || global) return false;
      return !(e.pasid === pasid || e.global);
    });
    return before - this.#entries.length;
  }

  /** Drop everything (ATS disabled, function reset). */
  clear(): void {
    this.#entries = [];
  }
}
