import { describe, expect, it } from 'vitest';
import { VTD_PERM_ALL, VTD_PERM_PR, VTD_PERM_PW, VTD_PERM_PX, VTD_PERM_UR } from './iotlb.js';
import { FlTestPageTable, makeVtdTestMemory, SlTestPageTable } from './test-helpers.js';
import {
  flPerm,
  isCanonical,
  type SlWalkParams,
  slPerm,
  WALK_EXEC,
  WALK_EXEC_DENIED,
  WALK_NOFAULT,
  WALK_NOT_PRESENT,
  WALK_PRIV,
  WALK_WIDTH,
  WALK_WRITE,
  walkFirstLevel,
  walkSecondLevel,
} from './walk.js';

function slParams(root: number, over: Partial<SlWalkParams> = {}): SlWalkParams {
  return {
    root,
    levels: 4,
    widthBits: 48,
    haw: 46,
    large2M: true,
    large1G: true,
    snp: true,
    execEnable: false,
    ad: false,
    ...over,
  };
}

describe('second-level walker', () => {
  it('leaves A/D alone without SLADE and honours X only with SLEE', () => {
    const memory = makeVtdTestMemory(8);
    const sl = new SlTestPageTable(memory, { levels: 4 });
    sl.map(0x1000, 0x4010_0000, { exec: false });
    const r = walkSecondLevel(memory, slParams(sl.root), 1, WALK_WRITE | WALK_EXEC);
    expect(r).toMatchObject({
      ok: true,
      outputBase: 0x4010_0000,
      shift: 12,
      level: 1,
      dirty: true,
      perm: VTD_PERM_ALL,
    });
    expect(sl.getRaw(0x1000, 1)).toEqual([0x4010_0003, 0]);
    expect(walkSecondLevel(memory, slParams(sl.root, { execEnable: true }), 1, WALK_EXEC)).toMatchObject({
      ok: false,
      kind: WALK_EXEC_DENIED,
    });
  });

  it('reports the width failure at the top level and computes permissions without faulting for ATS', () => {
    const memory = makeVtdTestMemory(8);
    const sl = new SlTestPageTable(memory, { levels: 3 });
    sl.map(0x2000, 0x4020_0000, { write: false });
    const p = slParams(sl.root, { levels: 3, widthBits: 39 });
    expect(walkSecondLevel(memory, p, 2 ** 27, 0)).toMatchObject({
      ok: false,
      kind: WALK_WIDTH,
      level: 3,
      top: true,
    });
    const r = walkSecondLevel(memory, p, 2, WALK_NOFAULT | WALK_WRITE);
    // Read-only page; without SLEE readable implies executable.
    expect(r).toMatchObject({ ok: true, perm: slPerm(5), dirty: true });
  });
});

describe('first-level walker', () => {
  it('permission masks: supervisor may write read-only pages unless WPE', () => {
    expect(flPerm(0, false) & (VTD_PERM_PR | VTD_PERM_PW | VTD_PERM_UR)).toBe(VTD_PERM_PR | VTD_PERM_PW);
    expect(flPerm(0, true) & VTD_PERM_PW).toBe(0);
    expect(flPerm(4, true) & VTD_PERM_PX).toBe(VTD_PERM_PX);
  });

  it('canonical addresses for 4 and 5 levels', () => {
    expect(isCanonical(0x7fff_ffff_f000n, 4)).toBe(true);
    expect(isCanonical(0xffff_8000_0000_0000n, 4)).toBe(true);
    expect(isCanonical(0x8000_0000_0000n, 4)).toBe(false);
    expect(isCanonical(0x8000_0000_0000n, 5)).toBe(true);
    expect(isCanonical(0xff00_0000_0000_0000n, 5)).toBe(true);
    expect(isCanonical(0xfe00_0000_0000_0000n, 5)).toBe(false);
  });

  it('a not-present entry fails with its level and no A bits are set below it', () => {
    const memory = makeVtdTestMemory(8);
    const fl = new FlTestPageTable(memory, { levels: 4 });
    fl.map(0x20_0000, 0x4020_0000, { size: 2097152 });
    const r = walkFirstLevel(
      memory,
      { root: fl.root, levels: 4, haw: 46, large1G: true, wpe: false },
      0x400,
      WALK_PRIV,
    );
    expect(r).toMatchObject({ ok: false, kind: WALK_NOT_PRESENT, level: 2, top: false, stage: 1 });
    const ok = walkFirstLevel(
      memory,
      { root: fl.root, levels: 4, haw: 46, large1G: true, wpe: false },
      0x201,
      0,
    );
    expect(ok).toMatchObject({ ok: true, outputBase: 0x4020_0000, shift: 21, level: 2, dirty: false });
    expect(fl.getRaw(0x20_0000, 2)?.[0]).toBe(0x4020_00a7);
  });

  it('nested: the combined page is the smaller of the two stages', () => {
    const memory = makeVtdTestMemory(8);
    const sl = new SlTestPageTable(memory, { levels: 4 });
    const fl = new FlTestPageTable(memory, { levels: 4 });
    fl.map(0x20_0000, 0x20_0000, { size: 2097152 }); // FL 2 MiB → GPA 0x200000
    for (const t of fl.tables) sl.map(t, t);
    sl.map(0x20_3000, 0x4050_0000); // SL 4 KiB for GPA 0x203000
    const nested = slParams(sl.root);
    const r = walkFirstLevel(
      memory,
      { root: fl.root, levels: 4, haw: 46, large1G: true, wpe: false, nested },
      0x203,
      0,
    );
    expect(r).toMatchObject({ ok: true, outputBase: 0x4050_0000, shift: 12 });
    expect(
      walkFirstLevel(
        memory,
        { root: fl.root, levels: 4, haw: 46, large1G: true, wpe: false, nested },
        0x204,
        0,
      ),
    ).toMatchObject({
      ok: false,
      stage: 2,
      nested: 'output',
    });
  });
});
