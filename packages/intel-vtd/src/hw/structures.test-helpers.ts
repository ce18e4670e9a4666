/**
 * Test helpers for root/context/PASID structures: a small RAM, a config, and a builder that lays out
 * root tables, context tables, PASID directories and PASID tables in memory with the encoders.
 */

import { PhysicalMemory } from '@iommu-ts/mm';
import {
  encodePasidDirEntry,
  encodePasidEntry,
  type PasidEntryInit,
  pasidDirEntryAddress,
  pasidEntryAddress,
} from './pasid-table.js';
import {
  contextEntryAddress,
  encodeContextEntry,
  encodeRootEntry,
  type LegacyContextEntryInit,
  rootEntryAddress,
  type ScalableContextEntryInit,
  writeEntryWords,
} from './root-context.js';
import { resolveVtdHwConfig, type VtdHwConfig } from './vtd-config.js';

/** First byte of the test RAM. */
export const RAM_BASE = 0x4000_0000;
/** Size of the test RAM (16 MiB). */
export const RAM_SIZE = 16 * 2 ** 20;
/** A page-aligned address below the test RAM (reads there are bus errors). */
export const NO_RAM = 0x1000;

/** A fresh 16 MiB RAM at {@link RAM_BASE}. */
export function testMemory(): PhysicalMemory {
  return new PhysicalMemory({ base: RAM_BASE, size: RAM_SIZE });
}

/**
 * A full config from overrides of the defaults.
 * @param partial - overrides
 */
export function testConfig(partial: Partial<VtdHwConfig> = {}): VtdHwConfig {
  return resolveVtdHwConfig(partial);
}

/**
 * Lays out VT-d structures in memory: one root table, context tables allocated on demand per bus
 * (and per half in scalable mode), and PASID directories / tables.
 */
export class VtdStructureBuilder {
  /** The root table's physical address. */
  readonly rootTable: number;
  private readonly contextTables = new Map<number, number>();

  /**
   * @param memory - RAM to allocate from
   * @param scalable - scalable-mode (TTM = 01) layout
   */
  constructor(
    readonly memory: PhysicalMemory,
    readonly scalable: boolean,
  ) {
    this.rootTable = this.page();
  }

  /** Allocate one zeroed page. */
  page(): number {
    const pa = this.memory.allocPages(0);
    this.memory.zeroPage(pa);
    return pa;
  }

  /**
   * The context table for `sourceId`, allocating it and (re)writing the root entry (present) if new.
   * @param sourceId - requester id
   */
  contextTable(sourceId: number): number {
    const bus = (sourceId >>> 8) & 0xff;
    const upper = this.scalable && (sourceId & 0x80) !== 0;
    const key = bus * 2 + (upper ? 1 : 0);
    let ctp = this.contextTables.get(key);
    if (ctp === undefined) {
      ctp = this.page();
      this.contextTables.set(key, ctp);
      this.writeRoot(bus);
    }
    return ctp;
  }

  /**
   * Rewrite the root entry of `bus` from the context tables allocated so far (all present).
   * @param bus - bus number
   */
  writeRoot(bus: number): void {
    const addr = rootEntryAddress(this.rootTable, bus);
    if (!this.scalable) {
      const ctp = this.contextTables.get(bus * 2);
      writeEntryWords(
        this.memory,
        addr,
        encodeRootEntry({ mode: 'legacy', present: ctp !== undefined, ctp: ctp ?? 0 }),
      );
      return;
    }
    const l = this.contextTables.get(bus * 2);
    const u = this.contextTables.get(bus * 2 + 1);
    writeEntryWords(
      this.memory,
      addr,
      encodeRootEntry({
        mode: 'scalable',
        lowerPresent: l !== undefined,
        lctp: l ?? 0,
        upperPresent: u !== undefined,
        uctp: u ?? 0,
      }),
    );
  }

  /**
   * Write the context entry of `sourceId`.
   * @param sourceId - requester id
   * @param init - the entry (its mode must match the builder's)
   * @returns the entry's address
   */
  setContext(sourceId: number, init: LegacyContextEntryInit | ScalableContextEntryInit): number {
    const addr = contextEntryAddress(this.contextTable(sourceId), sourceId, this.scalable);
    writeEntryWords(this.memory, addr, encodeContextEntry(init));
    return addr;
  }

  /**
   * Allocate a PASID directory of `pages` pages.
   * @param pages - directory size in pages (power of two)
   */
  pasidDirectory(pages = 1): number {
    const order = Math.log2(pages);
    const pa = this.memory.allocPages(order);
    for (let i = 0; i < pages; i++) this.memory.zeroPage(pa + i * 4096);
    return pa;
  }

  /**
   * Write the PASID-table entry of `pasid` under a directory, allocating its PASID table and a
   * present directory entry if the directory entry is empty.
   * @param dir - directory address
   * @param pasid - PASID
   * @param init - the entry
   * @returns the entry's address
   */
  setPasidEntry(dir: number, pasid: number, init: PasidEntryInit): number {
    const dAddr = pasidDirEntryAddress(dir, pasid);
    let table = Number(this.memory.read64(dAddr) & 0xffff_ffff_ffff_f000n);
    if (table === 0) {
      table = this.page();
      this.memory.write64(dAddr, encodePasidDirEntry({ present: true, ptr: table }));
    }
    const addr = pasidEntryAddress(table, pasid);
    writeEntryWords(this.memory, addr, encodePasidEntry(init));
    return addr;
  }
}
