import { describe, expect, it } from 'vitest';
import {
  CONTEXT_TT,
  type ContextLookup,
  decodeLegacyContextEntry,
  decodeLegacyRootEntry,
  decodeScalableContextEntry,
  decodeScalableRootEntry,
  encodeContextEntry,
  encodeRootEntry,
  lookupContext,
  rootEntryAddress,
  VTD_TTM,
  writeEntryWords,
} from './root-context.js';
import { NO_RAM, testConfig, testMemory, VtdStructureBuilder } from './structures.test-helpers.js';
import { VTD_FR } from './vtd-fault.js';

function words(qws: bigint[]): Uint32Array {
  const w = new Uint32Array(qws.length * 2);
  qws.forEach((q, i) => {
    w[2 * i] = Number(q & 0xffff_ffffn);
    w[2 * i + 1] = Number(q >> 32n);
  });
  return w;
}

function reason(r: ContextLookup): number | 'ok' {
  return r.kind === 'ok' ? 'ok' : r.reason;
}

const SID = 0x0310; // bus 3, devfn 0x10
const SID_UPPER = 0x0385; // bus 3, devfn 0x85

describe('root/context entry encoding', () => {
  it('encodes and decodes a legacy root entry', () => {
    const qw = encodeRootEntry({ mode: 'legacy', present: true, ctp: 0x1234_5678_9000 });
    expect(qw).toEqual([0x1234_5678_9001n, 0n]);
    expect(decodeLegacyRootEntry(words(qw))).toEqual({
      mode: 'legacy',
      present: true,
      ctp: 0x1234_5678_9000,
    });
  });

  it('encodes and decodes a scalable root entry (both halves)', () => {
    const qw = encodeRootEntry({
      mode: 'scalable',
      lowerPresent: true,
      lctp: 0x4000_1000,
      upperPresent: true,
      uctp: 0x3f_ffff_f000,
    });
    expect(qw).toEqual([0x4000_1001n, 0x3f_ffff_f001n]);
    expect(decodeScalableRootEntry(words(qw))).toEqual({
      mode: 'scalable',
      lowerPresent: true,
      lctp: 0x4000_1000,
      upperPresent: true,
      uctp: 0x3f_ffff_f000,
    });
  });

  it('encodes every legacy context field at its bit position', () => {
    const qw = encodeContextEntry({
      mode: 'legacy',
      present: true,
      fpd: true,
      tt: CONTEXT_TT.passThrough,
      slptptr: 0xab_cdef_0000,
      aw: 2,
      did: 0xbeef,
    });
    // P bit 0, FPD bit 1, TT bits 3:2 = 10, SLPTPTR 63:12; AW 66:64, DID 87:72.
    expect(qw).toEqual([0xab_cdef_000bn, 0xbe_ef02n]);
    expect(decodeLegacyContextEntry(words(qw))).toEqual({
      mode: 'legacy',
      present: true,
      fpd: true,
      tt: 2,
      slptptr: 0xab_cdef_0000,
      aw: 2,
      did: 0xbeef,
    });
  });

  it('encodes every scalable context field at its bit position', () => {
    const qw = encodeContextEntry({
      mode: 'scalable',
      present: true,
      fpd: true,
      dte: true,
      paside: true,
      pre: true,
      pdts: 5,
      pasidDirPtr: 0x7_0000_3000,
      ridPasid: 0xf_edcb,
      ridPriv: true,
    });
    // P0 FPD1 DTE2 PASIDE3 PRE4, PDTS 11:9 = 5 → 0xa00; RID_PASID 83:64, RID_PRIV 84.
    expect(qw).toEqual([0x7_0000_3a1fn, 0x1f_edcbn, 0n, 0n]);
    expect(decodeScalableContextEntry(words(qw))).toEqual({
      mode: 'scalable',
      present: true,
      fpd: true,
      dte: true,
      paside: true,
      pre: true,
      pdts: 5,
      pasidDirPtr: 0x7_0000_3000,
      ridPasid: 0xf_edcb,
      ridPriv: true,
    });
  });

  it('decodes all-zero entries as not present', () => {
    expect(decodeLegacyContextEntry(new Uint32Array(4)).present).toBe(false);
    expect(decodeScalableContextEntry(new Uint32Array(8)).present).toBe(false);
  });
});

describe('lookupContext, legacy mode', () => {
  const config = testConfig();
  function setup() {
    const memory = testMemory();
    const b = new VtdStructureBuilder(memory, false);
    return { memory, b };
  }
  const good = { mode: 'legacy' as const, present: true, tt: 0, slptptr: 0x4010_0000, aw: 2, did: 7 };

  it('finds the entry at CTP + 16·devfn', () => {
    const { memory, b } = setup();
    const addr = b.setContext(SID, good);
    expect(addr).toBe(b.contextTable(SID) + 0x10 * 16);
    const r = lookupContext(memory, b.rootTable, VTD_TTM.legacy, SID, config);
    expect(r).toEqual({
      kind: 'ok',
      entryAddr: addr,
      entry: { mode: 'legacy', present: true, fpd: false, tt: 0, slptptr: 0x4010_0000, aw: 2, did: 7 },
    });
  });

  it('reports 0x08 when the root table is not readable', () => {
    const { memory } = setup();
    expect(reason(lookupContext(memory, NO_RAM, 0, SID, config))).toBe(VTD_FR.ROOT_TABLE_INV);
  });

  it('reports 0x01 for a non-present root entry, not suppressed by FPD', () => {
    const { memory, b } = setup();
    const r = lookupContext(memory, b.rootTable, 0, SID, config);
    expect(r).toEqual({ kind: 'fault', reason: VTD_FR.ROOT_ENTRY_P, fpd: false });
  });

  it.each([
    ['bit 1', [0x2n, 0n]],
    ['bit 11', [0x800n, 0n]],
    ['qw1 non-zero', [0n, 1n << 40n]],
    ['CTP at HAW', [1n << 46n, 0n]],
  ])('reports 0x0A for a root entry with reserved %s set', (_n, extra) => {
    const { memory, b } = setup();
    b.setContext(SID, good);
    const addr = rootEntryAddress(b.rootTable, 3);
    const qw = encodeRootEntry({ mode: 'legacy', present: true, ctp: b.contextTable(SID) });
    writeEntryWords(memory, addr, [(qw[0] ?? 0n) | (extra[0] ?? 0n), (qw[1] ?? 0n) | (extra[1] ?? 0n)]);
    expect(reason(lookupContext(memory, b.rootTable, 0, SID, config))).toBe(VTD_FR.ROOT_ENTRY_RSVD);
  });

  it('reports 0x09 when the context table is not readable', () => {
    const { memory, b } = setup();
    writeEntryWords(
      memory,
      rootEntryAddress(b.rootTable, 3),
      encodeRootEntry({ mode: 'legacy', present: true, ctp: NO_RAM }),
    );
    expect(reason(lookupContext(memory, b.rootTable, 0, SID, config))).toBe(VTD_FR.CONTEXT_TABLE_INV);
  });

  it('reports 0x02 for a non-present context entry and carries its FPD', () => {
    const { memory, b } = setup();
    b.setContext(SID, { mode: 'legacy', present: false });
    expect(lookupContext(memory, b.rootTable, 0, SID, config)).toEqual({
      kind: 'fault',
      reason: VTD_FR.CONTEXT_ENTRY_P,
      fpd: false,
    });
    b.setContext(SID, { mode: 'legacy', present: false, fpd: true });
    expect(lookupContext(memory, b.rootTable, 0, SID, config)).toEqual({
      kind: 'fault',
      reason: VTD_FR.CONTEXT_ENTRY_P,
      fpd: true,
    });
  });

  it.each([
    ['bit 4', 0, 0x10n],
    ['bit 11', 0, 0x800n],
    ['SLPTPTR at HAW', 0, 1n << 46n],
    ['bit 71', 1, 0x80n],
    ['bit 88', 1, 1n << 24n],
    ['bit 127', 1, 1n << 63n],
  ])('reports 0x0B for a context entry with reserved %s set', (_n, qwi, extra) => {
    const { memory, b } = setup();
    const addr = b.setContext(SID, { ...good, fpd: true });
    memory.write64(addr + 8 * qwi, memory.read64(addr + 8 * qwi) | extra);
    expect(lookupContext(memory, b.rootTable, 0, SID, config)).toEqual({
      kind: 'fault',
      reason: VTD_FR.CONTEXT_ENTRY_RSVD,
      fpd: true,
    });
  });

  it('ignores AVAIL bits 70:67', () => {
    const { memory, b } = setup();
    const addr = b.setContext(SID, good);
    memory.write64(addr + 8, memory.read64(addr + 8) | 0x78n);
    expect(reason(lookupContext(memory, b.rootTable, 0, SID, config))).toBe('ok');
  });

  it('reports 0x03 for an AW outside SAGAW', () => {
    const { memory, b } = setup();
    b.setContext(SID, { ...good, aw: 0 });
    expect(reason(lookupContext(memory, b.rootTable, 0, SID, config))).toBe(VTD_FR.CONTEXT_ENTRY_INV);
    b.setContext(SID, { ...good, aw: 3 });
    expect(reason(lookupContext(memory, b.rootTable, 0, SID, config))).toBe('ok');
    expect(reason(lookupContext(memory, b.rootTable, 0, SID, testConfig({ sagaw: [3, 4] })))).toBe(
      VTD_FR.CONTEXT_ENTRY_INV,
    );
  });

  it('reports 0x03 for TT 11, TT 01 without DT and TT 10 without PT', () => {
    const { memory, b } = setup();
    b.setContext(SID, { ...good, tt: 3 });
    expect(reason(lookupContext(memory, b.rootTable, 0, SID, config))).toBe(VTD_FR.CONTEXT_ENTRY_INV);
    b.setContext(SID, { ...good, tt: CONTEXT_TT.devIotlb });
    expect(reason(lookupContext(memory, b.rootTable, 0, SID, config))).toBe('ok');
    expect(reason(lookupContext(memory, b.rootTable, 0, SID, testConfig({ dt: false })))).toBe(
      VTD_FR.CONTEXT_ENTRY_INV,
    );
    b.setContext(SID, { ...good, tt: CONTEXT_TT.passThrough });
    expect(reason(lookupContext(memory, b.rootTable, 0, SID, config))).toBe('ok');
    expect(reason(lookupContext(memory, b.rootTable, 0, SID, testConfig({ pt: false })))).toBe(
      VTD_FR.CONTEXT_ENTRY_INV,
    );
  });

  it('does not check SLPTPTR against HAW for pass-through', () => {
    const { memory, b } = setup();
    b.setContext(SID, { ...good, tt: CONTEXT_TT.passThrough, slptptr: 2 ** 50 });
    expect(reason(lookupContext(memory, b.rootTable, 0, SID, config))).toBe('ok');
  });

  it('rejects TTM values without tables', () => {
    const { memory, b } = setup();
    expect(() => lookupContext(memory, b.rootTable, VTD_TTM.reserved, SID, config)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => lookupContext(memory, b.rootTable, VTD_TTM.abortDma, SID, config)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});

describe('lookupContext, scalable mode', () => {
  const config = testConfig();
  function setup() {
    const memory = testMemory();
    const b = new VtdStructureBuilder(memory, true);
    return { memory, b };
  }
  const good = { mode: 'scalable' as const, present: true, paside: true, pdts: 2, pasidDirPtr: 0x4020_0000 };

  it('uses LCTP for devfn below 0x80 and UCTP (index devfn & 0x7F, 32-byte entries) above', () => {
    const { memory, b } = setup();
    const lo = b.setContext(SID, good);
    const hi = b.setContext(SID_UPPER, { ...good, ridPasid: 9 });
    expect(lo).toBe(b.contextTable(SID) + 0x10 * 32);
    expect(hi).toBe(b.contextTable(SID_UPPER) + 0x05 * 32);
    expect(b.contextTable(SID)).not.toBe(b.contextTable(SID_UPPER));
    const r = lookupContext(memory, b.rootTable, VTD_TTM.scalable, SID_UPPER, config);
    expect(r.kind === 'ok' && r.entryAddr).toBe(hi);
    expect(r.kind === 'ok' && r.entry.mode === 'scalable' && r.entry.ridPasid).toBe(9);
    const r2 = lookupContext(memory, b.rootTable, VTD_TTM.scalable, SID, config);
    expect(r2.kind === 'ok' && r2.entryAddr).toBe(lo);
  });

  it('reports 0x38 when the root entry is not readable', () => {
    const { memory } = setup();
    expect(reason(lookupContext(memory, NO_RAM, 1, SID, config))).toBe(VTD_FR.SM_ROOT_ACCESS);
  });

  it('reports 0x39 when the half used is not present', () => {
    const { memory, b } = setup();
    b.setContext(SID, good); // lower half only
    expect(reason(lookupContext(memory, b.rootTable, 1, SID, config))).toBe('ok');
    expect(reason(lookupContext(memory, b.rootTable, 1, SID_UPPER, config))).toBe(VTD_FR.SM_ROOT_P);
  });

  it.each([
    ['bit 1', 0, 0x2n],
    ['bit 65', 1, 0x2n],
    ['bit 75', 1, 0x800n],
    ['LCTP at HAW', 0, 1n << 46n],
    ['UCTP at HAW', 1, 1n << 46n],
  ])('reports 0x3A for a root entry with reserved %s set', (_n, qwi, extra) => {
    const { memory, b } = setup();
    b.setContext(SID, good);
    const addr = rootEntryAddress(b.rootTable, 3) + 8 * qwi;
    memory.write64(addr, memory.read64(addr) | extra);
    expect(reason(lookupContext(memory, b.rootTable, 1, SID, config))).toBe(VTD_FR.SM_ROOT_RSVD);
  });

  it('reports 0x40 when the context entry is not readable', () => {
    const { memory, b } = setup();
    writeEntryWords(
      memory,
      rootEntryAddress(b.rootTable, 3),
      encodeRootEntry({ mode: 'scalable', lowerPresent: true, lctp: NO_RAM }),
    );
    expect(reason(lookupContext(memory, b.rootTable, 1, SID, config))).toBe(VTD_FR.SM_CTX_ACCESS);
  });

  it('reports 0x41 for a non-present context entry with its FPD', () => {
    const { memory, b } = setup();
    b.setContext(SID, { mode: 'scalable', fpd: true });
    expect(lookupContext(memory, b.rootTable, 1, SID, config)).toEqual({
      kind: 'fault',
      reason: VTD_FR.SM_CTX_P,
      fpd: true,
    });
  });

  it.each([
    ['bit 5', 0, 0x20n],
    ['bit 8', 0, 0x100n],
    ['PASIDDIRPTR at HAW', 0, 1n << 46n],
    ['bit 85', 1, 1n << 21n],
    ['bit 127', 1, 1n << 63n],
    ['RID_PRIV without RPRIVS', 1, 1n << 20n],
    ['qw2', 2, 1n],
    ['qw3', 3, 1n << 63n],
  ])('reports 0x42 for a context entry with reserved %s set', (_n, qwi, extra) => {
    const { memory, b } = setup();
    const addr = b.setContext(SID, good);
    memory.write64(addr + 8 * qwi, memory.read64(addr + 8 * qwi) | extra);
    expect(reason(lookupContext(memory, b.rootTable, 1, SID, config))).toBe(VTD_FR.SM_CTX_RSVD);
  });

  it('accepts RID_PRIV with RPRIVS, and treats DTE/PRE as reserved without DT/PRS', () => {
    const { memory, b } = setup();
    b.setContext(SID, { ...good, ridPriv: true });
    expect(reason(lookupContext(memory, b.rootTable, 1, SID, testConfig({ rprivs: true })))).toBe('ok');
    b.setContext(SID, { ...good, dte: true });
    expect(reason(lookupContext(memory, b.rootTable, 1, SID, config))).toBe('ok');
    expect(reason(lookupContext(memory, b.rootTable, 1, SID, testConfig({ dt: false })))).toBe(
      VTD_FR.SM_CTX_RSVD,
    );
    b.setContext(SID, { ...good, pre: true });
    expect(reason(lookupContext(memory, b.rootTable, 1, SID, config))).toBe('ok');
    expect(reason(lookupContext(memory, b.rootTable, 1, SID, testConfig({ prs: false })))).toBe(
      VTD_FR.SM_CTX_RSVD,
    );
  });

  it('decodes the same memory differently in legacy and scalable mode', () => {
    const { memory, b } = setup();
    b.setContext(SID, good);
    // Read as legacy: the root's LCTP is the legacy CTP, and entry index 0x10 of 16 bytes is the
    // first half of scalable entry 8, which is empty.
    expect(reason(lookupContext(memory, b.rootTable, 0, SID, config))).toBe(VTD_FR.CONTEXT_ENTRY_P);
  });
});
