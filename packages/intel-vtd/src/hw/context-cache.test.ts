import { describe, expect, it } from 'vitest';
import { functionMaskBits, VtdContextCache, VtdPasidCache } from './context-cache.js';
import { PGTT } from './pasid-table.js';
import { type ContextLookup, type ScalableContextEntry, VTD_TTM } from './root-context.js';
import { testConfig, testMemory, VtdStructureBuilder } from './structures.test-helpers.js';
import type { VtdHwConfig } from './vtd-config.js';
import { VTD_FR } from './vtd-fault.js';

function did(r: ContextLookup): number | string {
  if (r.kind === 'fault') return `fault ${r.reason}`;
  return r.entry.mode === 'legacy' ? r.entry.did : `sm ${r.entry.pasidDirPtr.toString(16)}`;
}

function legacySetup(config: VtdHwConfig = testConfig(), capacity?: number) {
  const memory = testMemory();
  const b = new VtdStructureBuilder(memory, false);
  const cache = new VtdContextCache(
    capacity === undefined ? { memory, config } : { memory, config, capacity },
  );
  const look = (sid: number) => cache.lookup(b.rootTable, VTD_TTM.legacy, sid);
  const set = (sid: number, d: number, present = true) =>
    b.setContext(sid, { mode: 'legacy', present, aw: 2, slptptr: 0x4010_0000, did: d });
  return { memory, b, cache, look, set };
}

describe('functionMaskBits', () => {
  it('maps FM to the ignored source-id bits', () => {
    expect([0, 1, 2, 3].map(functionMaskBits)).toEqual([0, 4, 6, 7]);
  });
});

describe('VtdContextCache, legacy entries', () => {
  it('keeps answering with a stale entry until invalidated', () => {
    const { cache, look, set } = legacySetup();
    set(0x0100, 1);
    expect(did(look(0x0100))).toBe(1);
    expect(cache.stats).toMatchObject({ hits: 0, misses: 1 });
    set(0x0100, 2);
    expect(did(look(0x0100))).toBe(1);
    expect(cache.stats).toMatchObject({ hits: 1, misses: 1 });
    // Clearing P without invalidation is not seen either.
    set(0x0100, 2, false);
    expect(did(look(0x0100))).toBe(1);
    expect(cache.invalidateAll()).toBe(1);
    expect(did(look(0x0100))).toBe(`fault ${VTD_FR.CONTEXT_ENTRY_P}`);
  });

  it('does not cache not-present entries without caching mode', () => {
    const { cache, look, set } = legacySetup();
    expect(did(look(0x0100))).toBe(`fault ${VTD_FR.ROOT_ENTRY_P}`);
    set(0x0100, 3, false);
    expect(did(look(0x0100))).toBe(`fault ${VTD_FR.CONTEXT_ENTRY_P}`);
    expect(cache.size).toBe(0);
    set(0x0100, 3);
    expect(did(look(0x0100))).toBe(3);
  });

  it('with caching mode caches a not-present entry under DID 0 until a DID-0 device invalidation', () => {
    const { cache, look, set } = legacySetup(testConfig({ cachingMode: true }));
    set(0x0100, 3, false);
    expect(did(look(0x0100))).toBe(`fault ${VTD_FR.CONTEXT_ENTRY_P}`);
    set(0x0100, 3);
    expect(did(look(0x0100))).toBe(`fault ${VTD_FR.CONTEXT_ENTRY_P}`);
    expect(cache.invalidateDevice(3, 0x0100, 0)).toBe(0);
    expect(did(look(0x0100))).toBe(`fault ${VTD_FR.CONTEXT_ENTRY_P}`);
    expect(cache.invalidateDevice(0, 0x0100, 0)).toBe(1);
    expect(did(look(0x0100))).toBe(3);
  });

  it('with caching mode keeps returning a cached invalid entry, with its FPD', () => {
    const { b, cache, look } = legacySetup(testConfig({ cachingMode: true }));
    b.setContext(0x0100, { mode: 'legacy', present: true, fpd: true, aw: 0, did: 4 });
    expect(look(0x0100)).toEqual({ kind: 'fault', reason: VTD_FR.CONTEXT_ENTRY_INV, fpd: true });
    b.setContext(0x0100, { mode: 'legacy', present: true, aw: 2, did: 4 });
    expect(look(0x0100)).toEqual({ kind: 'fault', reason: VTD_FR.CONTEXT_ENTRY_INV, fpd: true });
    cache.invalidateAll();
    expect(did(look(0x0100))).toBe(4);
  });

  it('never caches root-entry faults, even in caching mode', () => {
    const { b, cache, look } = legacySetup(testConfig({ cachingMode: true }));
    expect(did(look(0x0100))).toBe(`fault ${VTD_FR.ROOT_ENTRY_P}`);
    expect(cache.size).toBe(0);
    b.setContext(0x0100, { mode: 'legacy', present: true, aw: 2, did: 8 });
    expect(did(look(0x0100))).toBe(8);
  });

  it('domain-selective invalidation drops exactly the entries tagged with the DID', () => {
    const { cache, look, set } = legacySetup();
    set(0x0100, 1);
    set(0x0108, 1);
    set(0x0200, 2);
    for (const s of [0x0100, 0x0108, 0x0200]) look(s);
    set(0x0100, 11);
    set(0x0108, 11);
    set(0x0200, 12);
    expect(cache.invalidate('domain', 1)).toBe(2);
    expect([0x0100, 0x0108, 0x0200].map((s) => did(look(s)))).toEqual([11, 11, 2]);
  });

  it('device-selective invalidation needs the DID and honours the function mask', () => {
    const { cache, look, set } = legacySetup();
    // Device 0x01:02.x has functions 0..7 → devfn 0x10..0x17.
    const sids = [0x0110, 0x0111, 0x0112, 0x0113, 0x0114, 0x0115, 0x0116, 0x0117, 0x0118];
    for (const s of sids) set(s, 5);
    for (const s of sids) look(s);
    for (const s of sids) set(s, 6);
    // Wrong DID: nothing.
    expect(cache.invalidate('device', 9, 0x0110, 3)).toBe(0);
    // FM 0: only function 0.
    expect(cache.invalidate('device', 5, 0x0110, 0)).toBe(1);
    expect(sids.map((s) => did(look(s)))).toEqual([6, 5, 5, 5, 5, 5, 5, 5, 5]);
    // FM 1 (ignore bit 2) from function 1: functions 1 and 5.
    expect(cache.invalidate('device', 5, 0x0111, 1)).toBe(2);
    expect(sids.map((s) => did(look(s)))).toEqual([6, 6, 5, 5, 5, 6, 5, 5, 5]);
    // FM 2 (ignore bits 2:1) from function 2: functions 0, 2, 4, 6 — those still tagged DID 5 are 2, 4, 6.
    expect(cache.invalidate('device', 5, 0x0112, 2)).toBe(3);
    expect(sids.map((s) => did(look(s)))).toEqual([6, 6, 6, 5, 6, 6, 6, 5, 5]);
    // FM 3 (ignore bits 2:0): the rest of the device, not the next device (devfn 0x18).
    expect(cache.invalidate('device', 5, 0x0110, 3)).toBe(2);
    expect(sids.map((s) => did(look(s)))).toEqual([6, 6, 6, 6, 6, 6, 6, 6, 5]);
  });

  it('device-selective invalidation does not cross buses', () => {
    const { cache, look, set } = legacySetup();
    set(0x0110, 5);
    set(0x0210, 5);
    look(0x0110);
    look(0x0210);
    expect(cache.invalidateDevice(5, 0x0110, 3)).toBe(1);
    expect(cache.has(0x0210)).toBe(true);
    expect(cache.has(0x0110)).toBe(false);
  });

  it('evicts the least recently used entry at capacity', () => {
    const { cache, look, set } = legacySetup(testConfig(), 2);
    set(0x0100, 1);
    set(0x0101, 2);
    set(0x0102, 3);
    look(0x0100);
    look(0x0101);
    look(0x0100); // 0x0101 is now the oldest
    look(0x0102);
    expect(cache.size).toBe(2);
    expect(cache.has(0x0101)).toBe(false);
    expect(cache.has(0x0100)).toBe(true);
    expect(cache.stats.evicted).toBe(1);
  });

  it('takes its default capacity from the config', () => {
    const { cache } = legacySetup(testConfig({ contextCacheCapacity: 3 }));
    expect(cache.capacity).toBe(3);
  });
});

describe('VtdContextCache, scalable entries', () => {
  function smSetup(config: VtdHwConfig = testConfig()) {
    const memory = testMemory();
    const b = new VtdStructureBuilder(memory, true);
    const cache = new VtdContextCache({ memory, config });
    const look = (sid: number) => cache.lookup(b.rootTable, VTD_TTM.scalable, sid);
    const set = (sid: number, dir: number, present = true) =>
      b.setContext(sid, { mode: 'scalable', present, pdts: 2, pasidDirPtr: dir });
    return { b, cache, look, set };
  }

  it('ignores the DID of a device-selective invalidation and drops on any domain-selective one', () => {
    const { cache, look, set } = smSetup();
    set(0x0110, 0x4010_0000);
    set(0x0190, 0x4010_0000);
    look(0x0110);
    look(0x0190);
    set(0x0110, 0x4020_0000);
    set(0x0190, 0x4020_0000);
    expect(did(look(0x0110))).toBe('sm 40100000');
    expect(cache.invalidateDevice(1234, 0x0110, 0)).toBe(1);
    expect(did(look(0x0110))).toBe('sm 40200000');
    expect(did(look(0x0190))).toBe('sm 40100000');
    expect(cache.invalidateDomain(77)).toBe(2);
    expect(did(look(0x0190))).toBe('sm 40200000');
  });

  it('with caching mode caches a not-present scalable entry until invalidated', () => {
    const { cache, look, set } = smSetup(testConfig({ cachingMode: true }));
    set(0x0110, 0x4010_0000, false);
    expect(did(look(0x0110))).toBe(`fault ${VTD_FR.SM_CTX_P}`);
    set(0x0110, 0x4010_0000);
    expect(did(look(0x0110))).toBe(`fault ${VTD_FR.SM_CTX_P}`);
    cache.invalidate('device', 0, 0x0110, 0);
    expect(did(look(0x0110))).toBe('sm 40100000');
  });
});

describe('VtdPasidCache', () => {
  function setup(config: VtdHwConfig = testConfig()) {
    const memory = testMemory();
    const b = new VtdStructureBuilder(memory, true);
    const dirA = b.pasidDirectory();
    const dirB = b.pasidDirectory();
    const ctxA: ScalableContextEntry = {
      mode: 'scalable',
      present: true,
      fpd: false,
      dte: false,
      paside: true,
      pre: false,
      pdts: 2,
      pasidDirPtr: dirA,
      ridPasid: 0,
      ridPriv: false,
    };
    const ctxB: ScalableContextEntry = { ...ctxA, pasidDirPtr: dirB };
    const cache = new VtdPasidCache({ memory, config });
    const set = (dir: number, pasid: number, d: number, slptptr = 0x4030_0000, present = true) =>
      b.setPasidEntry(dir, pasid, { present, pgtt: PGTT.secondLevel, aw: 2, did: d, slptptr });
    const ptrOf = (sid: number, ctx: ScalableContextEntry, pasid: number): number | string => {
      const r = cache.lookup(sid, ctx, pasid);
      return r.kind === 'ok' ? r.entry.slptptr : `fault ${r.reason}`;
    };
    return { memory, b, dirA, dirB, ctxA, ctxB, cache, set, ptrOf };
  }
  const SID_A = 0x0100;
  const SID_B = 0x0200;
  const OLD = 0x4030_0000;
  const NEW = 0x4050_0000;

  it('keeps using a torn-down PASID entry until a PASID-cache invalidation', () => {
    const { cache, dirA, ctxA, set, ptrOf } = setup();
    set(dirA, 5, 1);
    expect(ptrOf(SID_A, ctxA, 5)).toBe(OLD);
    set(dirA, 5, 1, OLD, false);
    expect(ptrOf(SID_A, ctxA, 5)).toBe(OLD);
    expect(cache.stats).toMatchObject({ hits: 1, misses: 1 });
    expect(cache.invalidate('pasid', 1, 5)).toBe(1);
    expect(ptrOf(SID_A, ctxA, 5)).toBe(`fault ${VTD_FR.SM_PASID_ENTRY_P}`);
  });

  it('tags entries by device: the same PASID of two devices are separate entries', () => {
    const { cache, dirA, dirB, ctxA, ctxB, set, ptrOf } = setup();
    set(dirA, 5, 1, OLD);
    set(dirB, 5, 2, NEW);
    expect(ptrOf(SID_A, ctxA, 5)).toBe(OLD);
    expect(ptrOf(SID_B, ctxB, 5)).toBe(NEW);
    expect(cache.size).toBe(2);
  });

  it('PASID-selective invalidation needs both DID and PASID', () => {
    const { cache, dirA, dirB, ctxA, ctxB, set, ptrOf } = setup();
    set(dirA, 5, 1);
    set(dirA, 6, 1);
    set(dirB, 5, 2);
    ptrOf(SID_A, ctxA, 5);
    ptrOf(SID_A, ctxA, 6);
    ptrOf(SID_B, ctxB, 5);
    set(dirA, 5, 1, NEW);
    set(dirA, 6, 1, NEW);
    set(dirB, 5, 2, NEW);
    expect(cache.invalidatePasid(2, 6)).toBe(0);
    expect(cache.invalidatePasid(1, 5)).toBe(1);
    expect([ptrOf(SID_A, ctxA, 5), ptrOf(SID_A, ctxA, 6), ptrOf(SID_B, ctxB, 5)]).toEqual([NEW, OLD, OLD]);
  });

  it('DID-selective invalidation drops every PASID of the domain on every device', () => {
    const { cache, dirA, dirB, ctxA, ctxB, set, ptrOf } = setup();
    set(dirA, 5, 1);
    set(dirA, 6, 2);
    set(dirB, 7, 1);
    ptrOf(SID_A, ctxA, 5);
    ptrOf(SID_A, ctxA, 6);
    ptrOf(SID_B, ctxB, 7);
    set(dirA, 5, 1, NEW);
    set(dirA, 6, 2, NEW);
    set(dirB, 7, 1, NEW);
    expect(cache.invalidate('domain', 1)).toBe(2);
    expect([ptrOf(SID_A, ctxA, 5), ptrOf(SID_A, ctxA, 6), ptrOf(SID_B, ctxB, 7)]).toEqual([NEW, OLD, NEW]);
    expect(cache.invalidate('global')).toBe(3);
    expect(ptrOf(SID_A, ctxA, 6)).toBe(NEW);
  });

  it('does not cache a not-present entry without caching mode', () => {
    const { cache, dirA, ctxA, set, ptrOf } = setup();
    expect(ptrOf(SID_A, ctxA, 5)).toBe(`fault ${VTD_FR.SM_PASID_DIR_P}`);
    set(dirA, 5, 1, OLD, false);
    expect(ptrOf(SID_A, ctxA, 5)).toBe(`fault ${VTD_FR.SM_PASID_ENTRY_P}`);
    expect(cache.size).toBe(0);
    set(dirA, 5, 1);
    expect(ptrOf(SID_A, ctxA, 5)).toBe(OLD);
  });

  it('with caching mode a new PASID entry faults 0x59 until a PASID-selective invalidation', () => {
    const { cache, dirA, ctxA, set, ptrOf } = setup(testConfig({ cachingMode: true }));
    set(dirA, 5, 0, OLD, false);
    expect(ptrOf(SID_A, ctxA, 5)).toBe(`fault ${VTD_FR.SM_PASID_ENTRY_P}`);
    set(dirA, 5, 9);
    expect(ptrOf(SID_A, ctxA, 5)).toBe(`fault ${VTD_FR.SM_PASID_ENTRY_P}`);
    expect(cache.invalidatePasid(9, 4)).toBe(0);
    // The driver invalidates with the new DID: the negative entry has no meaningful DID and goes.
    expect(cache.invalidatePasid(9, 5)).toBe(1);
    expect(ptrOf(SID_A, ctxA, 5)).toBe(OLD);
  });

  it('with caching mode a negative entry also goes with any DID-selective invalidation', () => {
    const { cache, dirA, ctxA, set, ptrOf } = setup(testConfig({ cachingMode: true }));
    set(dirA, 5, 0, OLD, false);
    ptrOf(SID_A, ctxA, 5);
    expect(cache.invalidateDomain(42)).toBe(1);
  });

  it('adds the current context FPD to cached results without caching it', () => {
    const { cache, dirA, ctxA, set } = setup();
    set(dirA, 5, 1);
    const r1 = cache.lookup(SID_A, { ...ctxA, fpd: true }, 5);
    expect(r1.kind === 'ok' && r1.fpd).toBe(true);
    const r2 = cache.lookup(SID_A, ctxA, 5);
    expect(r2.kind === 'ok' && r2.fpd).toBe(false);
    const r3 = cache.lookup(SID_A, { ...ctxA, fpd: true }, 5);
    expect(r3.kind === 'ok' && r3.fpd).toBe(true);
    expect(cache.stats).toMatchObject({ hits: 2, misses: 1 });
  });

  it('evicts the least recently used entry at capacity', () => {
    const { dirA, ctxA, set, memory } = setup();
    const cache = new VtdPasidCache({ memory, config: testConfig({ pasidCacheCapacity: 2 }) });
    for (const p of [1, 2, 3]) set(dirA, p, 1);
    cache.lookup(SID_A, ctxA, 1);
    cache.lookup(SID_A, ctxA, 2);
    cache.lookup(SID_A, ctxA, 1);
    cache.lookup(SID_A, ctxA, 3);
    expect([cache.has(SID_A, 1), cache.has(SID_A, 2), cache.has(SID_A, 3)]).toEqual([true, false, true]);
    expect(cache.stats.evicted).toBe(1);
  });
});
