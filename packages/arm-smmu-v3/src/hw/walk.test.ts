import { describe, expect, it } from 'vitest';
import { makeTestMemory, TestPageTable } from './test-helpers.js';
import {
  TLB_PERM_ALL,
  TLB_PERM_PR,
  TLB_PERM_PW,
  TLB_PERM_PX,
  TLB_PERM_UR,
  TLB_PERM_UW,
  TLB_PERM_UX,
  tlbPermBit,
} from './tlb.js';
import {
  stage1Perm,
  stage1StartLevel,
  stage2Perm,
  type TableIpaTranslator,
  type WalkAccess,
  type WalkParams,
  type WalkResult,
  walk,
} from './walk.js';

const READ: WalkAccess = { need: tlbPermBit(false, false, false), write: false, atsWrite: false };
const WRITE: WalkAccess = { need: tlbPermBit(true, false, false), write: true, atsWrite: false };
const PREAD: WalkAccess = { need: tlbPermBit(false, false, true), write: false, atsWrite: false };
const PWRITE: WalkAccess = { need: tlbPermBit(true, false, true), write: true, atsWrite: false };
const UEXEC: WalkAccess = { need: tlbPermBit(false, true, false), write: false, atsWrite: false };
const PEXEC: WalkAccess = { need: tlbPermBit(false, true, true), write: false, atsWrite: false };

function params(pt: TestPageTable, over: Partial<WalkParams> = {}): WalkParams {
  return {
    stage: pt.stage,
    granule: pt.granule,
    inputBits: pt.inputBits,
    startLevel: pt.startLevel,
    ttb: pt.root,
    outputBits: 48,
    ha: false,
    hd: false,
    affd: false,
    had: false,
    wxn: false,
    ...over,
  };
}

function ok(r: WalkResult): Extract<WalkResult, { ok: true }> {
  if (!r.ok) throw new Error(`walk failed: ${r.type} at level ${r.level}`);
  return r;
}

function fail(r: WalkResult): Extract<WalkResult, { ok: false }> {
  if (r.ok) throw new Error(`walk succeeded: 0x${r.outputAddr.toString(16)}`);
  return r;
}

const PA = 0x4800_0000;

describe('stage1StartLevel', () => {
  it('follows 4 − ⌊(isz − 4) / stride⌋', () => {
    expect(stage1StartLevel(48, 12)).toBe(0);
    expect(stage1StartLevel(39, 12)).toBe(1);
    expect(stage1StartLevel(30, 12)).toBe(2);
    expect(stage1StartLevel(48, 16)).toBe(1);
    expect(stage1StartLevel(42, 16)).toBe(2);
    expect(stage1StartLevel(47, 14)).toBe(1);
    expect(stage1StartLevel(48, 14)).toBe(0);
  });
});

describe('walk: granules, levels and blocks', () => {
  it('4K granule, 48-bit input: level-3 page, level-2 and level-1 blocks', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    pt.map(0x1234_5000, PA + 0x3000);
    pt.map(0x8000_0000_0000 - 0x20_0000, PA + 0x20_0000, 2); // 2M block at the top of TTB0
    pt.map(0x40_0000_0000, 0x4000_0000, 1); // 1G block
    const p = params(pt);
    const r = ok(walk(mem, p, 0x1234_5abc, READ));
    expect(r).toMatchObject({ outputAddr: PA + 0x3abc, shift: 12, level: 3 });
    const b = ok(walk(mem, p, 0x8000_0000_0000 - 0x20_0000 + 0x12345, READ));
    expect(b).toMatchObject({ outputAddr: PA + 0x20_0000 + 0x12345, shift: 21, level: 2 });
    const g = ok(walk(mem, p, 0x40_0000_0000 + 0x3456_789a, READ));
    expect(g).toMatchObject({ outputAddr: 0x4000_0000 + 0x3456_789a, shift: 30, level: 1 });
  });

  it('4K granule, 39-bit input starts at level 1; bits above the input size are ignored', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 39 });
    expect(pt.startLevel).toBe(1);
    pt.map(0x7f_ffff_f000, PA);
    expect(ok(walk(mem, params(pt), 0x7f_ffff_f010, READ)).outputAddr).toBe(PA + 0x10);
    expect(fail(walk(mem, params(pt), 0x7f_ffff_e000, READ))).toMatchObject({
      type: 'F_TRANSLATION',
      level: 3,
    });
  });

  it('a 4K level-0 block is a translation fault', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    pt.writeRaw(0, 0, 0x401 | 0x40);
    expect(fail(walk(mem, params(pt), 0x1000, READ))).toMatchObject({
      type: 'F_TRANSLATION',
      level: 0,
      s2: false,
    });
  });

  it('16K granule: page, 32M level-2 block, no level-1 block', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 14, inputBits: 47 });
    expect(pt.startLevel).toBe(1);
    pt.map(0x1_2340_c000, PA + 0x8000);
    pt.map(0x2_0000_0000, 0x4200_0000, 2);
    const p = params(pt);
    expect(ok(walk(mem, p, 0x1_2340_c123, READ))).toMatchObject({
      outputAddr: PA + 0x8123,
      shift: 14,
      level: 3,
    });
    expect(ok(walk(mem, p, 0x2_01ff_fff0, READ))).toMatchObject({
      outputAddr: 0x4200_0000 + 0x1ff_fff0,
      shift: 25,
      level: 2,
    });
    pt.writeRaw(0x10_0000_0000_0, 1, 0x401 | 0x40);
    expect(fail(walk(mem, p, 0x10_0000_0000_0, READ))).toMatchObject({ type: 'F_TRANSLATION', level: 1 });
  });

  it('64K granule: page, 512M level-2 block, 52-bit output with PA[51:48] in bits 15:12', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 16, inputBits: 48 });
    expect(pt.startLevel).toBe(1);
    pt.map(0x5_0001_0000, PA + 0x10000);
    pt.map(0x6000_0000, 0x4000_0000, 2);
    const far = 0x3_0001_2345_0000; // PA above 2^48
    pt.map(0x7_0000_0000, far);
    const p = params(pt);
    expect(ok(walk(mem, p, 0x5_0001_fffe, READ))).toMatchObject({
      outputAddr: PA + 0x1fffe,
      shift: 16,
      level: 3,
    });
    expect(ok(walk(mem, p, 0x6000_0000 + 0x1234_5678, READ))).toMatchObject({
      outputAddr: 0x4000_0000 + 0x1234_5678,
      shift: 29,
      level: 2,
    });
    expect(ok(walk(mem, { ...p, outputBits: 52 }, 0x7_0000_0042, READ)).outputAddr).toBe(far + 0x42);
    // With a 48-bit output size the same descriptor's PA is above the limit: address-size fault.
    expect(fail(walk(mem, p, 0x7_0000_0042, READ)).type).toBe('F_ADDR_SIZE');
  });

  it('64K granule, 42-bit input starts at level 2', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 16, inputBits: 42 });
    expect(pt.startLevel).toBe(2);
    pt.map(0x3ff_ffff_0000, PA);
    expect(ok(walk(mem, params(pt), 0x3ff_ffff_0008, READ)).outputAddr).toBe(PA + 8);
  });
});

describe('walk: faults', () => {
  it('invalid descriptors fault at their level; reserved level-3 type 0b01 too', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    const p = params(pt);
    expect(fail(walk(mem, p, 0x1000, READ))).toMatchObject({ type: 'F_TRANSLATION', level: 0, class: 2 });
    pt.map(0x1000, PA, 3, { typeBits: 1 });
    expect(fail(walk(mem, p, 0x1000, READ))).toMatchObject({ type: 'F_TRANSLATION', level: 3 });
    expect(fail(walk(mem, p, 0x20_0000, READ))).toMatchObject({ type: 'F_TRANSLATION', level: 2 });
  });

  it('a descriptor outside RAM is an external abort with its fetch address (CLASS=TT)', () => {
    const mem = makeTestMemory();
    const p: WalkParams = {
      ...params(new TestPageTable(mem, { granule: 12, inputBits: 48 })),
      ttb: 0x1000_0000,
    };
    expect(fail(walk(mem, p, 0x8000, READ))).toEqual({
      ok: false,
      type: 'F_WALK_EABT',
      level: 0,
      s2: false,
      class: 1,
      ipa: 0,
      fetchAddr: 0x1000_0000,
      ttrnw: true,
    });
  });

  it('a next-level table at or beyond 2^outputBits is an address-size fault', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    pt.writeRaw(0, 0, 0x0000_3003, 0x1); // table at 0x1_0000_3000 (bit 32)
    expect(fail(walk(mem, params(pt, { outputBits: 32 }), 0, READ))).toMatchObject({
      type: 'F_ADDR_SIZE',
      level: 0,
    });
  });

  it('a leaf output at or beyond 2^outputBits is an address-size fault (after permissions)', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    pt.map(0x1000, 2 ** 40, 3, { ap: 3 });
    const p = params(pt, { outputBits: 40 });
    expect(fail(walk(mem, p, 0x1000, WRITE)).type).toBe('F_PERMISSION');
    expect(fail(walk(mem, p, 0x1000, READ)).type).toBe('F_ADDR_SIZE');
    expect(ok(walk(mem, params(pt, { outputBits: 44 }), 0x1000, READ)).outputAddr).toBe(2 ** 40);
  });
});

describe('walk: stage-1 permissions', () => {
  // AP[2:1]: 00 priv RW; 01 RW both; 10 priv RO; 11 RO both.
  const table: [number, number][] = [
    [0, TLB_PERM_PR | TLB_PERM_PW],
    [1, TLB_PERM_PR | TLB_PERM_PW | TLB_PERM_UR | TLB_PERM_UW],
    [2, TLB_PERM_PR],
    [3, TLB_PERM_PR | TLB_PERM_UR],
  ];
  it.each(table)('AP=%i gives the data permissions of the architecture table', (ap, data) => {
    const mask = TLB_PERM_PR | TLB_PERM_PW | TLB_PERM_UR | TLB_PERM_UW;
    expect(stage1Perm(ap << 6, 0, 0, false) & mask).toBe(data);
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    pt.map(0x1000, PA, 3, { ap });
    const p = params(pt);
    for (const [acc, bit] of [
      [READ, TLB_PERM_UR],
      [WRITE, TLB_PERM_UW],
      [PREAD, TLB_PERM_PR],
      [PWRITE, TLB_PERM_PW],
    ] as const) {
      const r = walk(mem, p, 0x1000, acc);
      expect(r.ok).toBe((data & bit) !== 0);
      if (!r.ok) expect(r.type).toBe('F_PERMISSION');
    }
  });

  it('UXN / PXN control instruction fetches by privilege', () => {
    expect(stage1Perm(3 << 6, 1 << 22, 0, false) & (TLB_PERM_UX | TLB_PERM_PX)).toBe(TLB_PERM_PX);
    expect(stage1Perm(3 << 6, 1 << 21, 0, false) & (TLB_PERM_UX | TLB_PERM_PX)).toBe(TLB_PERM_UX);
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    pt.map(0x1000, PA, 3, { ap: 3, uxn: true });
    pt.map(0x2000, PA, 3, { ap: 3, pxn: true });
    const p = params(pt);
    expect(fail(walk(mem, p, 0x1000, UEXEC)).type).toBe('F_PERMISSION');
    expect(walk(mem, p, 0x1000, PEXEC).ok).toBe(true);
    expect(walk(mem, p, 0x2000, UEXEC).ok).toBe(true);
    expect(fail(walk(mem, p, 0x2000, PEXEC)).type).toBe('F_PERMISSION');
  });

  it('memory writable at EL0 is never privileged-executable; WXN makes writable memory XN', () => {
    expect(stage1Perm(1 << 6, 0, 0, false) & TLB_PERM_PX).toBe(0);
    expect(stage1Perm(1 << 6, 0, 0, false) & TLB_PERM_UX).toBe(TLB_PERM_UX);
    expect(stage1Perm(0, 0, 0, false) & TLB_PERM_PX).toBe(TLB_PERM_PX);
    expect(stage1Perm(0, 0, 0, true) & TLB_PERM_PX).toBe(0);
    expect(stage1Perm(1 << 6, 0, 0, true) & TLB_PERM_UX).toBe(0);
    expect(stage1Perm(3 << 6, 0, 0, true) & (TLB_PERM_UX | TLB_PERM_PX)).toBe(TLB_PERM_UX | TLB_PERM_PX);
  });

  it('APTable / UXNTable / PXNTable restrict everything below; HAD disables them', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    pt.map(0x1000, PA, 3, { ap: 1 });
    pt.map(0x4000_0000, PA, 3, { ap: 1 });
    pt.map(0x80_0000_0000, PA, 3, { ap: 1 });
    pt.map(0x100_0000_0000, PA, 3, { ap: 3 });
    pt.setTableAttrs(0x1000, 2, { apTableRo: true });
    pt.setTableAttrs(0x4000_0000, 1, { apTableNoUnpriv: true });
    pt.setTableAttrs(0x80_0000_0000, 0, { uxnTable: true });
    pt.setTableAttrs(0x100_0000_0000, 0, { pxnTable: true });
    const p = params(pt);
    expect(fail(walk(mem, p, 0x1000, WRITE)).type).toBe('F_PERMISSION');
    expect(fail(walk(mem, p, 0x1000, PWRITE)).type).toBe('F_PERMISSION');
    expect(walk(mem, p, 0x1000, READ).ok).toBe(true);
    expect(fail(walk(mem, p, 0x4000_0000, READ)).type).toBe('F_PERMISSION');
    expect(walk(mem, p, 0x4000_0000, PWRITE).ok).toBe(true);
    expect(fail(walk(mem, p, 0x80_0000_0000, UEXEC)).type).toBe('F_PERMISSION');
    expect(fail(walk(mem, p, 0x100_0000_0000, PEXEC)).type).toBe('F_PERMISSION');
    expect(walk(mem, p, 0x100_0000_0000, UEXEC).ok).toBe(true);
    const had = params(pt, { had: true });
    expect(walk(mem, had, 0x1000, WRITE).ok).toBe(true);
    expect(walk(mem, had, 0x4000_0000, READ).ok).toBe(true);
    expect(walk(mem, had, 0x80_0000_0000, UEXEC).ok).toBe(true);
  });
});

describe('walk: access flag and HTTU', () => {
  it('AF=0 faults without HA / AFFD, even before a permission fault', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    const d = pt.map(0x1000, PA, 3, { af: false, ap: 3 });
    const before = mem.read64(d);
    expect(fail(walk(mem, params(pt), 0x1000, WRITE))).toMatchObject({ type: 'F_ACCESS', level: 3 });
    expect(mem.read64(d)).toBe(before);
  });

  it('AFFD: no fault and no write-back', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    const d = pt.map(0x1000, PA, 3, { af: false });
    const before = mem.read64(d);
    expect(walk(mem, params(pt, { affd: true }), 0x1000, READ).ok).toBe(true);
    expect(mem.read64(d)).toBe(before);
  });

  it('HA sets AF in memory (and only AF)', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    const d = pt.map(0x1000, PA, 3, { af: false });
    const before = mem.read64(d);
    expect(walk(mem, params(pt, { ha: true }), 0x1000, READ).ok).toBe(true);
    expect(mem.read64(d)).toBe(before | 0x400n);
  });

  it('HA does not set AF when the access faults on permissions', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    const d = pt.map(0x1000, PA, 3, { af: false, ap: 3 });
    const before = mem.read64(d);
    expect(fail(walk(mem, params(pt, { ha: true }), 0x1000, WRITE)).type).toBe('F_PERMISSION');
    expect(mem.read64(d)).toBe(before);
  });

  it('HD + DBM: a write to a writable-clean page clears AP[2] in memory', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    const d = pt.map(0x1000, PA, 3, { ap: 3, dbm: true });
    const clean = mem.read64(d);
    const p = params(pt, { ha: true, hd: true });
    const rd = ok(walk(mem, p, 0x1000, READ));
    expect(rd.dirtyUpdatable).toBe(true);
    expect(rd.perm & TLB_PERM_UW).toBe(0);
    expect(mem.read64(d)).toBe(clean);
    const wr = ok(walk(mem, p, 0x1000, WRITE));
    expect(wr.dirtyUpdatable).toBe(false);
    expect(wr.perm & TLB_PERM_UW).toBe(TLB_PERM_UW);
    expect(mem.read64(d)).toBe(clean & ~0x80n);
  });

  it('write to a read-only page without HD, or without DBM, is a permission fault and writes nothing', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    const d1 = pt.map(0x1000, PA, 3, { ap: 3, dbm: true });
    const d2 = pt.map(0x2000, PA, 3, { ap: 3 });
    const b1 = mem.read64(d1);
    const b2 = mem.read64(d2);
    expect(fail(walk(mem, params(pt, { ha: true }), 0x1000, WRITE)).type).toBe('F_PERMISSION');
    expect(fail(walk(mem, params(pt, { ha: true, hd: true }), 0x2000, WRITE)).type).toBe('F_PERMISSION');
    expect(mem.read64(d1)).toBe(b1);
    expect(mem.read64(d2)).toBe(b2);
  });

  it('DBM does not grant an unprivileged write on a privileged-only page; AF and dirty go in one store', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    const d = pt.map(0x1000, PA, 3, { ap: 2, dbm: true, af: false });
    const b = mem.read64(d);
    const p = params(pt, { ha: true, hd: true });
    expect(fail(walk(mem, p, 0x1000, WRITE)).type).toBe('F_PERMISSION');
    expect(mem.read64(d)).toBe(b);
    expect(walk(mem, p, 0x1000, PWRITE).ok).toBe(true);
    expect(mem.read64(d)).toBe((b | 0x400n) & ~0x80n);
  });

  it('stage 2: S2HA sets AF, S2HD sets S2AP[1] on a DBM page', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 40, stage: 2, startLevel: 1 });
    const d = pt.map(0x1000, PA, 3, { s2ap: 1, dbm: true, af: false });
    const b = mem.read64(d);
    const p = params(pt, { ha: true, hd: true });
    expect(walk(mem, p, 0x1000, READ).ok).toBe(true);
    expect(mem.read64(d)).toBe(b | 0x400n);
    expect(walk(mem, p, 0x1000, WRITE).ok).toBe(true);
    expect(mem.read64(d)).toBe(b | 0x400n | 0x80n);
  });

  it('ATS without NW: a writable-clean page is made dirty', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    const d = pt.map(0x1000, PA, 3, { ap: 3, dbm: true });
    const b = mem.read64(d);
    const p = params(pt, { ha: true, hd: true });
    const r = ok(walk(mem, p, 0x1000, { need: 0, write: false, atsWrite: true }));
    expect(r.perm & TLB_PERM_UW).toBe(TLB_PERM_UW);
    expect(mem.read64(d)).toBe(b & ~0x80n);
  });
});

describe('walk: stage 2', () => {
  it('S2AP and XN give the stage-2 permissions', () => {
    expect(stage2Perm(0, 0)).toBe(TLB_PERM_PX | TLB_PERM_UX);
    expect(stage2Perm(0x40, 0)).toBe(TLB_PERM_PR | TLB_PERM_UR | TLB_PERM_PX | TLB_PERM_UX);
    expect(stage2Perm(0xc0, 2 << 21)).toBe(TLB_PERM_PR | TLB_PERM_UR | TLB_PERM_PW | TLB_PERM_UW);
    expect(stage2Perm(0xc0, 1 << 21) & (TLB_PERM_PX | TLB_PERM_UX)).toBe(TLB_PERM_UX);
    expect(stage2Perm(0xc0, 3 << 21) & (TLB_PERM_PX | TLB_PERM_UX)).toBe(TLB_PERM_PX);
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 40, stage: 2, startLevel: 1 });
    pt.map(0x1000, PA, 3, { s2ap: 1 });
    pt.map(0x2000, PA, 3, { s2ap: 2 });
    const p = params(pt);
    expect(walk(mem, p, 0x1000, READ).ok).toBe(true);
    expect(fail(walk(mem, p, 0x1000, WRITE))).toMatchObject({ type: 'F_PERMISSION', s2: true, ipa: 0x1000 });
    expect(fail(walk(mem, p, 0x2000, PREAD)).type).toBe('F_PERMISSION');
    expect(walk(mem, p, 0x2000, PWRITE).ok).toBe(true);
  });

  it('concatenated start-level tables: 4K, 40-bit IPA, start level 1, two tables', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 40, stage: 2, startLevel: 1 });
    // 40 bits from level 1 resolve 39 bits per table: 2 concatenated tables (8 KiB).
    pt.map(0x80_1234_5000, PA);
    expect(pt.descriptorAddr(0x80_0000_0000, 1)).toBe(pt.root + 512 * 8);
    expect(ok(walk(mem, params(pt), 0x80_1234_5678, READ)).outputAddr).toBe(PA + 0x678);
  });

  it('16K granule stage 2 with 16 concatenated tables; 64K stage 2 block', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 14, inputBits: 40, stage: 2, startLevel: 2 });
    // level 2 resolves 25 + 11 = 36 bits: 16 tables
    pt.map(0xf_0000_4000, PA);
    expect(ok(walk(mem, params(pt), 0xf_0000_4004, READ)).outputAddr).toBe(PA + 4);
    const pt64 = new TestPageTable(mem, { granule: 16, inputBits: 42, stage: 2, startLevel: 2 });
    pt64.map(0x2000_0000, 0x6000_0000, 2);
    expect(ok(walk(mem, params(pt64), 0x2000_1234, READ))).toMatchObject({
      outputAddr: 0x6000_1234,
      shift: 29,
    });
  });

  it('an IPA beyond the stage-2 input size is a stage-2 translation fault', () => {
    const mem = makeTestMemory();
    const pt = new TestPageTable(mem, { granule: 12, inputBits: 40, stage: 2, startLevel: 1 });
    expect(fail(walk(mem, params(pt), 2 ** 40, READ))).toMatchObject({
      type: 'F_TRANSLATION',
      s2: true,
      ipa: 2 ** 40,
    });
  });
});

describe('walk: nested stage-1 over stage 2', () => {
  function nested() {
    const mem = makeTestMemory();
    const s2 = new TestPageTable(mem, { granule: 12, inputBits: 40, stage: 2, startLevel: 1 });
    const s1 = new TestPageTable(mem, { granule: 12, inputBits: 48 });
    // Stage-1 tables live at IPA = PA + 0x10_0000_0000; stage 2 maps each table page.
    const off = 0x10_0000_0000;
    s1.map(0x1000, 0x2000_0000); // output IPA 0x2000_0000
    const tableIpa = (pa: number) => pa + off;
    // Rewrite stage-1 table pointers as IPAs.
    for (const t of s1.tables) {
      for (let i = 0; i < 512; i++) {
        const lo = mem.read64Lo(t + i * 8);
        if ((lo & 3) === 3 && t !== s1.tables[s1.tables.length - 1]) {
          const hi = mem.read64Hi(t + i * 8);
          const next = ((lo & ~0xfff) >>> 0) + hi * 2 ** 32;
          const ipa = tableIpa(next);
          mem.write64Halves(t + i * 8, ((ipa % 2 ** 32) | 3) >>> 0, Math.floor(ipa / 2 ** 32));
        }
      }
      s2.map(tableIpa(t), t);
    }
    s2.map(0x2000_0000, PA);
    const s2p = params(s2);
    const xl: TableIpaTranslator = (ipa) => {
      const r = walk(mem, s2p, ipa, { need: 0, write: false, atsWrite: false });
      return r.ok ? { pa: r.outputAddr, perm: r.perm } : { ...r, class: 1, ipa };
    };
    const s1p = params(s1, { ttb: tableIpa(s1.root), ha: true, hd: true });
    return { mem, s1, s2, s1p, s2p, xl, tableIpa };
  }

  it('translates every stage-1 table IPA through stage 2, then the output IPA', () => {
    const { mem, s1p, s2p, xl } = nested();
    const r1 = ok(walk(mem, s1p, 0x1abc, READ, xl));
    expect(r1.outputAddr).toBe(0x2000_0abc);
    expect(ok(walk(mem, s2p, r1.outputAddr, READ)).outputAddr).toBe(PA + 0xabc);
  });

  it('a stage-2 fault on a stage-1 table fetch is reported with S2=1, CLASS=TT and the table IPA', () => {
    const { mem, s1, s2, s1p, xl, tableIpa } = nested();
    const l2 = s1.tables[2] as number;
    s2.unmap(tableIpa(l2));
    expect(fail(walk(mem, s1p, 0x1000, READ, xl))).toMatchObject({
      type: 'F_TRANSLATION',
      s2: true,
      class: 1,
      ipa: tableIpa(l2) + 0, // index 0 at level 2
      level: 3,
    });
  });

  it('stage 2 refusing reads of a table page: F_PERMISSION, CLASS=TT, TTRnW=1', () => {
    const { mem, s1, s2, s1p, xl, tableIpa } = nested();
    s2.map(tableIpa(s1.root), s1.root, 3, { s2ap: 0 });
    expect(fail(walk(mem, s1p, 0x1000, READ, xl))).toMatchObject({
      type: 'F_PERMISSION',
      s2: true,
      class: 1,
      ttrnw: true,
      level: 0,
    });
  });

  it('an HTTU update of a stage-1 descriptor needs stage-2 write access: else TTRnW=0', () => {
    const { mem, s1, s2, s1p, xl, tableIpa } = nested();
    const leafTable = s1.tables[s1.tables.length - 1] as number;
    const d = leafTable + 8; // index 1 (VA 0x1000)
    mem.write32(d, mem.read32(d) & ~0x400); // AF = 0
    s2.map(tableIpa(leafTable), leafTable, 3, { s2ap: 1 });
    const b = mem.read64(d);
    expect(fail(walk(mem, s1p, 0x1000, READ, xl))).toMatchObject({
      type: 'F_PERMISSION',
      s2: true,
      class: 1,
      ttrnw: false,
      ipa: tableIpa(leafTable) + 8,
    });
    expect(mem.read64(d)).toBe(b);
    s2.map(tableIpa(leafTable), leafTable, 3, { s2ap: 3 });
    expect(walk(mem, s1p, 0x1000, READ, xl).ok).toBe(true);
    expect(mem.read64(d)).toBe(b | 0x400n);
  });

  it('TLB_PERM_ALL covers every access bit', () => {
    expect(TLB_PERM_ALL).toBe(63);
  });
});
