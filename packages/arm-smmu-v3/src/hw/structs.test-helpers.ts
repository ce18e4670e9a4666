/**
 * Test helpers for the stream table / CD tests: a small RAM, field presets for legal STEs and
 * CDs, and writers that place encoded structures in memory.
 */

import { PhysicalMemory } from '@iommu-ts/mm';
import { type CdFields, encodeCd } from './context-descriptor.js';
import { resolveSmmuHwConfig, type SmmuHwConfig } from './smmu-config.js';
import { encodeSte, type SteFields } from './ste.js';

/** First byte of the test RAM. */
export const RAM_BASE = 0x4000_0000;
/** Size of the test RAM (16 MiB). */
export const RAM_SIZE = 16 * 2 ** 20;
/** An address just past the end of the test RAM (bus error). */
export const NO_RAM = RAM_BASE + RAM_SIZE;

/** A fresh 16 MiB RAM at {@link RAM_BASE}. */
export function testMemory(): PhysicalMemory {
  return new PhysicalMemory({ base: RAM_BASE, size: RAM_SIZE });
}

/**
 * A full SMMU configuration from overrides of the defaults.
 * @param partial - overrides
 */
export function testConfig(partial: Partial<SmmuHwConfig> = {}): SmmuHwConfig {
  return resolveSmmuHwConfig(partial);
}

/**
 * Write u32 words at `pa`.
 * @param memory - RAM
 * @param pa - address
 * @param words - the words
 */
export function writeWords(memory: PhysicalMemory, pa: number, words: ArrayLike<number>): void {
  for (let i = 0; i < words.length; i++) memory.write32(pa + i * 4, words[i] ?? 0);
}

/** Fields of a legal stage-1 (Config 0b101) STE, as Linux's `make_cdtable_ste` writes it. */
export function s1SteFields(cdPtr: number, extra: Partial<SteFields> = {}): Partial<SteFields> {
  return { v: true, config: 5, s1ContextPtr: cdPtr, s1Dss: 2, s1Cir: 1, s1Cor: 1, s1Csh: 3, ...extra };
}

/** Fields of a legal stage-2 (Config 0b110) STE: 4K granule, 48-bit IPA, start level 0. */
export function s2SteFields(ttb: number, extra: Partial<SteFields> = {}): Partial<SteFields> {
  return {
    v: true,
    config: 6,
    s2Vmid: 7,
    s2T0sz: 16,
    s2Sl0: 2,
    s2Ir0: 1,
    s2Or0: 1,
    s2Sh0: 3,
    s2Tg: 0,
    s2Ps: 5,
    s2Aa64: true,
    s2Ptw: true,
    s2R: true,
    s2Ttb: ttb,
    ...extra,
  };
}

/** Fields of a legal CD as Linux's `make_s1_cd` writes it (4K, 48-bit, IPS 48, coherent). */
export function cdFields(ttb0: number, extra: Partial<CdFields> = {}): Partial<CdFields> {
  return {
    v: true,
    t0sz: 16,
    tg0: 0,
    ir0: 1,
    or0: 1,
    sh0: 3,
    epd1: true,
    ips: 5,
    aa64: true,
    r: true,
    a: true,
    aset: true,
    asid: 1,
    ttb0,
    mair0: 0xf404_ff44,
    ...extra,
  };
}

/**
 * Encode and write an STE.
 * @param memory - RAM
 * @param pa - address
 * @param fields - its fields
 */
export function putSte(memory: PhysicalMemory, pa: number, fields: Partial<SteFields>): void {
  writeWords(memory, pa, encodeSte(fields));
}

/**
 * Encode and write a CD.
 * @param memory - RAM
 * @param pa - address
 * @param fields - its fields
 */
export function putCd(memory: PhysicalMemory, pa: number, fields: Partial<CdFields>): void {
  writeWords(memory, pa, encodeCd(fields));
}
