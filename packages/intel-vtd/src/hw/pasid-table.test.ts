import { describe, expect, it } from 'vitest';
import {
  contextPasidLimit,
  decodePasidDirEntry,
  decodePasidEntry,
  encodePasidDirEntry,
  encodePasidEntry,
  lookupPasidEntry,
  type PasidEntry,
  type PasidLookup,
  PGTT,
  pasidDirEntryAddress,
  pasidEntryAddress,
  resolveRequestPasid,
} from './pasid-table.js';
import { decodeScalableContextEntry, encodeContextEntry, type ScalableContextEntry } from './root-context.js';
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

function ctxEntry(fields: Partial<Omit<ScalableContextEntry, 'mode'>>): ScalableContextEntry {
  return decodeScalableContextEntry(
    words(encodeContextEntry({ mode: 'scalable', present: true, paside: true, ...fields })),
  );
}

function reason(r: PasidLookup): number | 'ok' {
  return r.kind === 'ok' ? 'ok' : r.reason;
}

const FULL: PasidEntry = {
  present: true,
  fpd: true,
  aw: 3,
  slee: true,
  pgtt: PGTT.nested,
  slade: true,
  slptptr: 0x12_3456_7000,
  did: 0xabcd,
  pwsnp: true,
  pgsnp: true,
  cd: true,
  emte: true,
  emt: 6,
  pwt: true,
  pcd: true,
  pat: 0x0706_0504,
  sre: true,
  ere: true,
  flpm: 1,
  wpe: true,
  nxe: true,
  smep: true,
  eafe: true,
  flptr: 0xf_edcb_a000,
};

describe('PASID structure encoding', () => {
  it('places every PASID-entry field at its bit position', () => {
    const qw = encodePasidEntry(FULL);
    // qw0: SLPTPTR | SLADE 9 | PGTT 8:6 = 011 | SLEE 5 | AW 4:2 = 3 | FPD 1 | P 0
    expect(qw[0]).toBe(0x12_3456_7000n | 0x200n | 0xc0n | 0x20n | 0xcn | 0x2n | 0x1n);
    // qw1: DID 15:0, PWSNP 23, PGSNP 24, CD 25, EMTE 26, EMT 29:27, PWT 30, PCD 31, PAT 63:32
    expect(qw[1]).toBe(
      0x0706_0504_0000_0000n | (1n << 31n) | (1n << 30n) | (6n << 27n) | (0xfn << 23n) | 0xabcdn,
    );
    // qw2: FLPTR | EAFE 7 | SMEP 6 | NXE 5 | WPE 4 | FLPM 3:2 = 01 | ERE 1 | SRE 0
    expect(qw[2]).toBe(0xf_edcb_a000n | 0xf0n | 0x4n | 0x3n);
    expect(qw.slice(3)).toEqual([0n, 0n, 0n, 0n, 0n]);
    expect(decodePasidEntry(words(qw))).toEqual(FULL);
  });

  it('encodes an empty init as all zero', () => {
    expect(encodePasidEntry({})).toEqual([0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n]);
  });

  it('encodes and decodes a directory entry', () => {
    const v = encodePasidDirEntry({ present: true, fpd: true, ptr: 0x4567_8000 });
    expect(v).toBe(0x4567_8003n);
    expect(decodePasidDirEntry(0x4567_8003, 0)).toEqual({ present: true, fpd: true, ptr: 0x4567_8000 });
  });

  it('indexes the directory by PASID[19:6] and the table by PASID[5:0]', () => {
    expect(pasidDirEntryAddress(0x10_0000, 0xf_ffff)).toBe(0x10_0000 + 0x3fff * 8);
    expect(pasidEntryAddress(0x20_0000, 0xf_ffff)).toBe(0x20_0000 + 63 * 64);
    expect(pasidEntryAddress(0x20_0000, 0x40)).toBe(0x20_0000);
    expect(contextPasidLimit({ pdts: 0 })).toBe(128 * 64);
    expect(contextPasidLimit({ pdts: 7 })).toBe(2 ** 20);
  });
});

describe('resolveRequestPasid', () => {
  const config = testConfig();

  it('uses RID_PASID for requests without PASID when RPS is set, else 0', () => {
    const ctx = ctxEntry({ ridPasid: 0x55, pdts: 2 });
    expect(resolveRequestPasid(ctx, undefined, config)).toEqual({ kind: 'ok', pasid: 0x55 });
    expect(resolveRequestPasid(ctx, undefined, testConfig({ rps: false }))).toEqual({ kind: 'ok', pasid: 0 });
  });

  it('reports 0x48 for a RID_PASID beyond the directory', () => {
    const ctx = ctxEntry({ ridPasid: 512 * 64, pdts: 2, fpd: true });
    expect(resolveRequestPasid(ctx, undefined, config)).toEqual({
      kind: 'fault',
      reason: VTD_FR.SM_CTX_RID_PASID,
      fpd: true,
    });
  });

  it('reports 0x45 for a request with PASID when PASIDE is clear', () => {
    const ctx = ctxEntry({ paside: false, pdts: 2 });
    expect(resolveRequestPasid(ctx, 3, config)).toEqual({
      kind: 'fault',
      reason: VTD_FR.SM_CTX_PASIDE,
      fpd: false,
    });
    expect(resolveRequestPasid(ctx, undefined, config)).toEqual({ kind: 'ok', pasid: 0 });
  });

  it('reports 0x46 for a PASID beyond PDTS or the PASID width', () => {
    const ctx = ctxEntry({ pdts: 2 }); // 512 directory entries → 32768 PASIDs
    expect(resolveRequestPasid(ctx, 32767, config)).toEqual({ kind: 'ok', pasid: 32767 });
    expect(resolveRequestPasid(ctx, 32768, config)).toEqual({
      kind: 'fault',
      reason: VTD_FR.SM_CTX_PDTS,
      fpd: false,
    });
    expect(resolveRequestPasid(ctx, 255, testConfig({ pasidBits: 8 }))).toEqual({ kind: 'ok', pasid: 255 });
    expect(resolveRequestPasid(ctx, 256, testConfig({ pasidBits: 8 }))).toEqual({
      kind: 'fault',
      reason: VTD_FR.SM_CTX_PDTS,
      fpd: false,
    });
  });
});

describe('lookupPasidEntry', () => {
  const config = testConfig();
  function setup() {
    const memory = testMemory();
    const b = new VtdStructureBuilder(memory, true);
    const dir = b.pasidDirectory();
    const ctx = ctxEntry({ pdts: 2, pasidDirPtr: dir });
    return { memory, b, dir, ctx };
  }
  const sl = { present: true, pgtt: PGTT.secondLevel, aw: 2, slptptr: 0x4030_0000, did: 5 };

  it('finds an entry through directory and table and decodes it', () => {
    const { memory, b, dir, ctx } = setup();
    const addr = b.setPasidEntry(dir, 0x1234, sl);
    const r = lookupPasidEntry(memory, ctx, 0x1234, config);
    expect(r.kind).toBe('ok');
    if (r.kind !== 'ok') return;
    expect(r.entryAddr).toBe(addr);
    expect(r.fpd).toBe(false);
    expect(r.entry).toMatchObject({ present: true, pgtt: 2, aw: 2, slptptr: 0x4030_0000, did: 5 });
    // Another PASID of the same table shares the table page.
    const addr2 = b.setPasidEntry(dir, 0x1235, sl);
    expect(addr2 - addr).toBe(64);
  });

  it('reports 0x46 beyond the directory size', () => {
    const { memory, ctx } = setup();
    expect(reason(lookupPasidEntry(memory, ctx, 32768, config))).toBe(VTD_FR.SM_CTX_PDTS);
  });

  it('reports 0x50 when the directory entry is not readable', () => {
    const { memory } = setup();
    const ctx = ctxEntry({ pdts: 2, pasidDirPtr: NO_RAM });
    expect(reason(lookupPasidEntry(memory, ctx, 1, config))).toBe(VTD_FR.SM_PASID_DIR_ACCESS);
  });

  it('reports 0x51 for a non-present directory entry, with its FPD or the context FPD', () => {
    const { memory, dir, ctx } = setup();
    expect(lookupPasidEntry(memory, ctx, 1, config)).toEqual({
      kind: 'fault',
      reason: VTD_FR.SM_PASID_DIR_P,
      fpd: false,
    });
    memory.write64(dir, encodePasidDirEntry({ fpd: true }));
    expect(lookupPasidEntry(memory, ctx, 1, config)).toEqual({
      kind: 'fault',
      reason: VTD_FR.SM_PASID_DIR_P,
      fpd: true,
    });
    memory.write64(dir, 0n);
    expect(lookupPasidEntry(memory, { ...ctx, fpd: true }, 1, config)).toEqual({
      kind: 'fault',
      reason: VTD_FR.SM_PASID_DIR_P,
      fpd: true,
    });
  });

  it.each([
    ['bit 2', 0x4n],
    ['bit 11', 0x800n],
    ['pointer at HAW', 1n << 46n],
  ])('reports 0x52 for a directory entry with reserved %s set', (_n, extra) => {
    const { memory, b, dir, ctx } = setup();
    b.setPasidEntry(dir, 1, sl);
    memory.write64(dir, memory.read64(dir) | extra);
    expect(reason(lookupPasidEntry(memory, ctx, 1, config))).toBe(VTD_FR.SM_PASID_DIR_RSVD);
  });

  it('reports 0x58 when the PASID table is not readable', () => {
    const { memory, dir, ctx } = setup();
    memory.write64(dir, encodePasidDirEntry({ present: true, ptr: NO_RAM }));
    expect(reason(lookupPasidEntry(memory, ctx, 1, config))).toBe(VTD_FR.SM_PASID_TABLE_ACCESS);
  });

  it('reports 0x59 for a non-present PASID entry and honours its FPD', () => {
    const { memory, b, dir, ctx } = setup();
    b.setPasidEntry(dir, 7, { ...sl, present: false });
    expect(lookupPasidEntry(memory, ctx, 7, config)).toEqual({
      kind: 'fault',
      reason: VTD_FR.SM_PASID_ENTRY_P,
      fpd: false,
    });
    b.setPasidEntry(dir, 7, { fpd: true });
    expect(lookupPasidEntry(memory, ctx, 7, config)).toEqual({
      kind: 'fault',
      reason: VTD_FR.SM_PASID_ENTRY_P,
      fpd: true,
    });
  });

  it('returns the FPD of a present entry for later qualified faults', () => {
    const { memory, b, dir, ctx } = setup();
    b.setPasidEntry(dir, 7, { ...sl, fpd: true });
    const r = lookupPasidEntry(memory, ctx, 7, config);
    expect(r.kind === 'ok' && r.fpd).toBe(true);
  });

  it.each([
    ['qw0 bit 10', 0, 0x400n],
    ['qw0 bit 11', 0, 0x800n],
    ['qw1 bit 16', 1, 1n << 16n],
    ['qw1 bit 22', 1, 1n << 22n],
    ['qw2 bit 8', 2, 0x100n],
    ['qw2 bit 11', 2, 0x800n],
    ['SLPTPTR at HAW', 0, 1n << 46n],
  ])('reports 0x5A for a PASID entry with reserved %s set', (_n, qwi, extra) => {
    const { memory, b, dir, ctx } = setup();
    const addr = b.setPasidEntry(dir, 9, sl);
    memory.write64(addr + 8 * qwi, memory.read64(addr + 8 * qwi) | extra);
    expect(reason(lookupPasidEntry(memory, ctx, 9, config))).toBe(VTD_FR.SM_PASID_ENTRY_RSVD);
  });

  it('checks table pointers against HAW only for the levels the PGTT uses', () => {
    const { memory, b, dir, ctx } = setup();
    b.setPasidEntry(dir, 9, { ...sl, flptr: 2 ** 50 });
    expect(reason(lookupPasidEntry(memory, ctx, 9, config))).toBe('ok');
    b.setPasidEntry(dir, 9, { present: true, pgtt: PGTT.firstLevel, flptr: 2 ** 50, slptptr: 2 ** 50 });
    expect(reason(lookupPasidEntry(memory, ctx, 9, config))).toBe(VTD_FR.SM_PASID_ENTRY_RSVD);
    b.setPasidEntry(dir, 9, {
      present: true,
      pgtt: PGTT.passThrough,
      aw: 2,
      flptr: 2 ** 50,
      slptptr: 2 ** 50,
    });
    expect(reason(lookupPasidEntry(memory, ctx, 9, config))).toBe('ok');
  });

  it.each([
    ['slade', { slade: true }, { slads: false, nest: false }],
    ['pgsnp', { pgsnp: true }, { sc: false }],
    ['sre', { sre: true }, { srs: false }],
    ['ere', { ere: true }, { ers: false }],
    ['eafe', { eafe: true }, {}],
  ])('reports 0x5A for %s without its capability', (_n, extra, caps) => {
    const { memory, b, dir, ctx } = setup();
    b.setPasidEntry(dir, 9, { ...sl, ...extra });
    expect(reason(lookupPasidEntry(memory, ctx, 9, testConfig(caps)))).toBe(VTD_FR.SM_PASID_ENTRY_RSVD);
    if (_n !== 'eafe') expect(reason(lookupPasidEntry(memory, ctx, 9, config))).toBe('ok');
    else expect(reason(lookupPasidEntry(memory, ctx, 9, testConfig({ eafs: true })))).toBe('ok');
  });

  it.each([
    ['PGTT 000', { pgtt: 0 }, {}],
    ['PGTT 101', { pgtt: 5 }, {}],
    ['PGTT 111', { pgtt: 7 }, {}],
    ['first level without FLTS', { pgtt: PGTT.firstLevel }, { flts: false, nest: false }],
    ['second level without SLTS', { pgtt: PGTT.secondLevel }, { slts: false, nest: false }],
    ['nested without NEST', { pgtt: PGTT.nested }, { nest: false }],
    ['pass-through without PT', { pgtt: PGTT.passThrough }, { pt: false }],
    ['SL AW outside SAGAW', { pgtt: PGTT.secondLevel, aw: 3 }, { sagaw: [3, 4] as (3 | 4 | 5)[] }],
    ['nested AW outside SAGAW', { pgtt: PGTT.nested, aw: 0 }, {}],
    ['FLPM 5-level without FL5LP', { pgtt: PGTT.firstLevel, flpm: 1 }, { fl5lp: false }],
    ['FLPM 10', { pgtt: PGTT.firstLevel, flpm: 2 }, {}],
  ])('reports 0x5B for %s', (_n, extra, caps) => {
    const { memory, b, dir, ctx } = setup();
    b.setPasidEntry(dir, 9, { ...sl, ...extra, fpd: true });
    expect(lookupPasidEntry(memory, ctx, 9, testConfig(caps))).toEqual({
      kind: 'fault',
      reason: VTD_FR.SM_PASID_ENTRY_INV,
      fpd: true,
    });
  });

  it('accepts every supported PGTT, and AW is not checked for first-level only', () => {
    const { memory, b, dir, ctx } = setup();
    for (const e of [
      { pgtt: PGTT.firstLevel, aw: 0, flpm: 1, flptr: 0x4040_0000 },
      { pgtt: PGTT.secondLevel, aw: 1 },
      { pgtt: PGTT.nested, aw: 3, flpm: 0, flptr: 0x4040_0000 },
      { pgtt: PGTT.passThrough, aw: 2 },
    ]) {
      b.setPasidEntry(dir, 9, { ...sl, ...e });
      expect(reason(lookupPasidEntry(memory, ctx, 9, config))).toBe('ok');
    }
  });

  it('reaches the highest PASID through a large directory', () => {
    const { memory, b } = setup();
    const dir = b.pasidDirectory(32); // 2^14 directory entries
    const ctx = ctxEntry({ pdts: 7, pasidDirPtr: dir });
    const addr = b.setPasidEntry(dir, 0xf_ffff, sl);
    const r = lookupPasidEntry(memory, ctx, 0xf_ffff, config);
    expect(r.kind === 'ok' && r.entryAddr).toBe(addr);
    expect(Number(memory.read64(dir + 0x3fff * 8) & 1n)).toBe(1);
  });
});
