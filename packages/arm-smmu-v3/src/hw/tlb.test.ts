import { describe, expect, it } from 'vitest';
import { SMMU_HW_CONFIG_DEFAULTS } from './smmu-config.js';
import {
  SmmuTlb,
  TLB_PERM_ALL,
  TLB_REGIME_EL2,
  TLB_REGIME_NS_EL1,
  type TlbEntryInit,
  type TlbEntryStage,
  tlbPermBit,
  tlbTag,
} from './tlb.js';

const NS = TLB_REGIME_NS_EL1;

function s1Tag(vmid: number, asid: number, region = 0): number {
  return tlbTag(NS, false, region, vmid, asid);
}

function entry(tag: number, inputAddr: number, shift = 12, extra: Partial<TlbEntryInit> = {}): TlbEntryInit {
  return {
    tag,
    stage: 's1' as TlbEntryStage,
    inputAddr,
    shift,
    level: shift === 12 ? 3 : shift === 21 ? 2 : 1,
    outputBase: 0x8000_0000 + (inputAddr % 2 ** 30),
    s1Perm: TLB_PERM_ALL,
    s2Perm: TLB_PERM_ALL,
    dirtyUpdatable: false,
    ...extra,
  };
}

function has(tlb: SmmuTlb, tag: number, addr: number): boolean {
  return tlb.peek(tag, addr) !== undefined;
}

describe('SmmuTlb lookup and insertion', () => {
  it('finds pages and blocks by tag and address; counts hits and misses', () => {
    const tlb = new SmmuTlb();
    const t = s1Tag(1, 5);
    tlb.insert(entry(t, 0x1234_5678));
    tlb.insert(entry(t, 0x4000_0000, 21));
    tlb.insert(entry(t, 0x8000_0000, 30));
    expect(tlb.lookup(t, 0x1234_5000)?.outputBase).toBe(0x8000_0000 + 0x1234_5000);
    expect(tlb.lookup(t, 0x401f_ffff)?.shift).toBe(21);
    expect(tlb.lookup(t, 0xbfff_ffff)?.shift).toBe(30);
    expect(tlb.lookup(t, 0x1234_6000)).toBeUndefined();
    expect(tlb.lookup(s1Tag(1, 6), 0x1234_5000)).toBeUndefined();
    expect(tlb.lookup(s1Tag(2, 5), 0x1234_5000)).toBeUndefined();
    expect(tlb.stats).toMatchObject({ hits: 3, misses: 3, inserts: 3 });
    expect(tlb.size).toBe(3);
  });

  it('aligns input and output bases to the entry size', () => {
    const tlb = new SmmuTlb();
    const e = tlb.insert(entry(s1Tag(0, 1), 0x1234_5678, 21, { outputBase: 0x9876_5678 }));
    expect(e.inputBase).toBe(0x1220_0000);
    expect(e.outputBase).toBe(0x9860_0000);
    expect(e.size).toBe(2 ** 21);
  });

  it('global entries match any ASID of the same VMID only when a global tag is given', () => {
    const tlb = new SmmuTlb();
    tlb.insert(entry(s1Tag(3, -1), 0x1000));
    expect(tlb.lookup(s1Tag(3, 9), 0x1000, s1Tag(3, -1))).toBeDefined();
    expect(tlb.lookup(s1Tag(3, 9), 0x1000)).toBeUndefined();
    expect(tlb.lookup(s1Tag(4, 9), 0x1000, s1Tag(4, -1))).toBeUndefined();
  });

  it('replaces an entry of the same tag, size and address', () => {
    const tlb = new SmmuTlb();
    const t = s1Tag(0, 1);
    tlb.insert(entry(t, 0x1000, 12, { outputBase: 0x5000_0000 }));
    tlb.insert(entry(t, 0x1000, 12, { outputBase: 0x6000_0000 }));
    expect(tlb.size).toBe(1);
    expect(tlb.lookup(t, 0x1000)?.outputBase).toBe(0x6000_0000);
  });

  it('LRU replacement evicts the least recently used entry', () => {
    const tlb = new SmmuTlb({ capacity: 3 });
    const t = s1Tag(0, 1);
    for (const a of [0x1000, 0x2000, 0x3000]) tlb.insert(entry(t, a));
    tlb.lookup(t, 0x1000);
    tlb.insert(entry(t, 0x4000));
    expect(has(tlb, t, 0x2000)).toBe(false);
    expect([0x1000, 0x3000, 0x4000].every((a) => has(tlb, t, a))).toBe(true);
    expect(tlb.stats.evictions).toBe(1);
    expect(tlb.entries().map((e) => e.inputBase)).toEqual([0x4000, 0x1000, 0x3000]);
  });

  it('random replacement is deterministic for a seed and keeps the capacity', () => {
    const run = (seed: number) => {
      const tlb = new SmmuTlb({ capacity: 8, replacement: 'random', seed });
      const t = s1Tag(0, 1);
      for (let i = 0; i < 40; i++) tlb.insert(entry(t, i * 0x1000));
      expect(tlb.size).toBe(8);
      return tlb
        .entries()
        .map((e) => e.inputBase)
        .sort((a, b) => a - b);
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
  });

  it('flush-all replacement empties the TLB when full (QEMU)', () => {
    const tlb = new SmmuTlb({ capacity: 4, replacement: 'flush-all' });
    const t = s1Tag(0, 1);
    for (let i = 0; i < 5; i++) tlb.insert(entry(t, i * 0x1000));
    expect(tlb.size).toBe(1);
    expect(has(tlb, t, 0x4000)).toBe(true);
    expect(tlb.stats.evictions).toBe(4);
  });

  it('fromConfig takes capacity / policy from the SMMU parameters', () => {
    const tlb = SmmuTlb.fromConfig({ ...SMMU_HW_CONFIG_DEFAULTS, tlbCapacity: 17, tlbReplacement: 'random' });
    expect(tlb.capacity).toBe(17);
    expect(tlb.replacement).toBe('random');
  });

  it('remove and resetStats', () => {
    const tlb = new SmmuTlb();
    const e = tlb.insert(entry(s1Tag(0, 1), 0x1000));
    tlb.remove(e);
    tlb.remove(e);
    expect(tlb.size).toBe(0);
    tlb.resetStats();
    expect(tlb.stats).toEqual({ hits: 0, misses: 0, walks: 0, inserts: 0, evictions: 0, invalidated: 0 });
  });

  it('tlbPermBit picks R/W/X and the privilege half', () => {
    expect(tlbPermBit(false, false, true)).toBe(1);
    expect(tlbPermBit(true, false, true)).toBe(2);
    expect(tlbPermBit(false, true, true)).toBe(4);
    expect(tlbPermBit(false, false, false)).toBe(8);
    expect(tlbPermBit(true, false, false)).toBe(16);
    expect(tlbPermBit(false, true, false)).toBe(32);
  });
});

describe('SmmuTlb invalidation', () => {
  /** A TLB holding: S1 (vmid 1, asid 1|2, global), nested (vmid 1), S2 (vmid 1, 2), EL2 (asid 1, global). */
  function populated() {
    const tlb = new SmmuTlb();
    const tags = {
      a1: s1Tag(1, 1),
      a2: s1Tag(1, 2),
      g: s1Tag(1, -1),
      other: s1Tag(2, 1),
      s2v1: tlbTag(NS, true, 0, 1, 0),
      s2v2: tlbTag(NS, true, 0, 2, 0),
      el2a1: tlbTag(TLB_REGIME_EL2, false, 0, 0, 1),
      el2g: tlbTag(TLB_REGIME_EL2, false, 0, 0, -1),
      hi: s1Tag(1, 1, 1),
    };
    tlb.insert(entry(tags.a1, 0x1000));
    tlb.insert(entry(tags.a1, 0x20_0000, 21));
    tlb.insert(entry(tags.a2, 0x1000, 12, { stage: 'nested' }));
    tlb.insert(entry(tags.g, 0x1000));
    tlb.insert(entry(tags.other, 0x1000));
    tlb.insert(entry(tags.s2v1, 0x1000, 12, { stage: 's2' }));
    tlb.insert(entry(tags.s2v2, 0x1000, 12, { stage: 's2' }));
    tlb.insert(entry(tags.el2a1, 0x1000));
    tlb.insert(entry(tags.el2g, 0x1000));
    tlb.insert(entry(tags.hi, 0xf_ffff_ffff_f000));
    return { tlb, tags };
  }
  const left = (tlb: SmmuTlb) => tlb.size;

  it('invalidateAll empties it', () => {
    const { tlb } = populated();
    tlb.invalidateAll();
    expect(left(tlb)).toBe(0);
    expect(tlb.stats.invalidated).toBe(10);
  });

  it('NH_ALL removes stage-1 and nested entries of the VMID, not stage 2, EL2 or other VMIDs', () => {
    const { tlb, tags } = populated();
    tlb.invalidateNhAll(1);
    expect(has(tlb, tags.a1, 0x1000) || has(tlb, tags.a2, 0x1000) || has(tlb, tags.g, 0x1000)).toBe(false);
    expect(has(tlb, tags.hi, 0xf_ffff_ffff_f000)).toBe(false);
    expect(has(tlb, tags.s2v1, 0x1000) && has(tlb, tags.other, 0x1000) && has(tlb, tags.el2a1, 0x1000)).toBe(
      true,
    );
    expect(left(tlb)).toBe(5);
  });

  it('NH_ASID removes that ASID only, not global entries', () => {
    const { tlb, tags } = populated();
    tlb.invalidateNhAsid(1, 1);
    expect(
      has(tlb, tags.a1, 0x1000) || has(tlb, tags.a1, 0x20_0000) || has(tlb, tags.hi, 0xf_ffff_ffff_f000),
    ).toBe(false);
    expect(has(tlb, tags.a2, 0x1000) && has(tlb, tags.g, 0x1000) && has(tlb, tags.other, 0x1000)).toBe(true);
    expect(left(tlb)).toBe(7);
  });

  it('NH_VA removes the ASID and global entries covering the address (any entry size)', () => {
    const { tlb, tags } = populated();
    tlb.invalidateNhVa({ vmid: 1, asid: 1, addr: 0x2f_f000n, leaf: true, tg: 0, num: 0, scale: 0, ttl: 0 });
    expect(has(tlb, tags.a1, 0x20_0000)).toBe(false);
    expect(left(tlb)).toBe(9);
    tlb.invalidateNhVa({ vmid: 1, asid: 1, addr: 0x1000n, leaf: false, tg: 0, num: 0, scale: 0, ttl: 0 });
    expect(has(tlb, tags.a1, 0x1000) || has(tlb, tags.g, 0x1000)).toBe(false);
    expect(has(tlb, tags.a2, 0x1000) && has(tlb, tags.other, 0x1000)).toBe(true);
    expect(left(tlb)).toBe(7);
  });

  it('NH_VA selects the TTB1 region through bit 55 of the address', () => {
    const { tlb, tags } = populated();
    tlb.invalidateNhVa({
      vmid: 1,
      asid: 1,
      addr: 0xffff_ffff_ffff_f000n,
      leaf: true,
      tg: 0,
      num: 0,
      scale: 0,
      ttl: 0,
    });
    expect(has(tlb, tags.hi, 0xf_ffff_ffff_f000)).toBe(false);
    expect(left(tlb)).toBe(9);
  });

  it('NH_VAA removes any ASID of the VMID covering the address', () => {
    const { tlb, tags } = populated();
    tlb.invalidateNhVaa({ vmid: 1, addr: 0x1000n, leaf: true, tg: 0, num: 0, scale: 0, ttl: 0 });
    expect(has(tlb, tags.a1, 0x1000) || has(tlb, tags.a2, 0x1000) || has(tlb, tags.g, 0x1000)).toBe(false);
    expect(has(tlb, tags.other, 0x1000) && has(tlb, tags.s2v1, 0x1000) && has(tlb, tags.a1, 0x20_0000)).toBe(
      true,
    );
    expect(left(tlb)).toBe(7);
  });

  it('S12_VMALL removes all entries of the VMID, every stage', () => {
    const { tlb, tags } = populated();
    tlb.invalidateS12Vmall(1);
    expect(has(tlb, tags.s2v1, 0x1000) || has(tlb, tags.a1, 0x1000)).toBe(false);
    expect(has(tlb, tags.s2v2, 0x1000) && has(tlb, tags.other, 0x1000) && has(tlb, tags.el2a1, 0x1000)).toBe(
      true,
    );
    expect(left(tlb)).toBe(4);
  });

  it('S2_IPA removes stage-2 entries of the VMID only (nested entries stay)', () => {
    const { tlb, tags } = populated();
    tlb.invalidateS2Ipa({ vmid: 1, ipa: 0x1000n, leaf: true, tg: 0, num: 0, scale: 0, ttl: 0 });
    expect(has(tlb, tags.s2v1, 0x1000)).toBe(false);
    expect(has(tlb, tags.s2v2, 0x1000) && has(tlb, tags.a2, 0x1000)).toBe(true);
    expect(left(tlb)).toBe(9);
  });

  it('NSNH_ALL removes every NS-EL1 entry; EL2 entries stay', () => {
    const { tlb, tags } = populated();
    tlb.invalidateNsnhAll();
    expect(left(tlb)).toBe(2);
    expect(has(tlb, tags.el2a1, 0x1000) && has(tlb, tags.el2g, 0x1000)).toBe(true);
  });

  it('EL2_ALL, EL2_ASID, EL2_VA, EL2_VAA act on the EL2 regime only', () => {
    let { tlb, tags } = populated();
    tlb.invalidateEl2All();
    expect(left(tlb)).toBe(8);
    ({ tlb, tags } = populated());
    tlb.invalidateEl2Asid(1);
    expect(has(tlb, tags.el2a1, 0x1000)).toBe(false);
    expect(has(tlb, tags.el2g, 0x1000) && has(tlb, tags.a1, 0x1000)).toBe(true);
    ({ tlb, tags } = populated());
    tlb.invalidateEl2Va({ asid: 7, addr: 0x1000n, leaf: true, tg: 0, num: 0, scale: 0, ttl: 0 });
    expect(has(tlb, tags.el2g, 0x1000)).toBe(false);
    expect(has(tlb, tags.el2a1, 0x1000)).toBe(true);
    ({ tlb, tags } = populated());
    tlb.invalidateEl2Vaa({ addr: 0x1000n, leaf: true, tg: 0, num: 0, scale: 0, ttl: 0 });
    expect(has(tlb, tags.el2g, 0x1000) || has(tlb, tags.el2a1, 0x1000)).toBe(false);
    expect(left(tlb)).toBe(8);
  });

  it('range invalidation (RIL): (NUM+1) × 2^SCALE granules from the address', () => {
    const tlb = new SmmuTlb();
    const t = s1Tag(0, 1);
    for (let i = 0; i < 64; i++) tlb.insert(entry(t, 0x10_0000 + i * 0x1000));
    // TG=1 (4K), SCALE=1, NUM=4: 10 pages from 0x10_3000.
    tlb.invalidateNhVa({ vmid: 0, asid: 1, addr: 0x10_3000n, leaf: true, tg: 1, num: 4, scale: 1, ttl: 0 });
    const gone = [];
    for (let i = 0; i < 64; i++) if (!has(tlb, t, 0x10_0000 + i * 0x1000)) gone.push(i);
    expect(gone).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('range invalidation with 16K and 64K granules', () => {
    const tlb = new SmmuTlb();
    const t = s1Tag(0, 1);
    for (let i = 0; i < 16; i++) tlb.insert(entry(t, i * 0x4000, 14, { level: 3 }));
    tlb.invalidateNhVa({ vmid: 0, asid: 1, addr: 0x8000n, leaf: true, tg: 2, num: 2, scale: 0, ttl: 3 });
    expect(tlb.size).toBe(13);
    expect(has(tlb, t, 0x8000) || has(tlb, t, 0xc000) || has(tlb, t, 0x10000)).toBe(false);
    tlb.invalidateNhVa({ vmid: 0, asid: 1, addr: 0x20000n, leaf: true, tg: 3, num: 0, scale: 0, ttl: 0 });
    expect(tlb.size).toBe(9);
  });

  it('a range overlapping part of a block removes the block', () => {
    const tlb = new SmmuTlb();
    const t = s1Tag(0, 1);
    tlb.insert(entry(t, 0x20_0000, 21));
    tlb.invalidateNhVa({ vmid: 0, asid: 1, addr: 0x3f_f000n, leaf: true, tg: 1, num: 0, scale: 0, ttl: 0 });
    expect(tlb.size).toBe(0);
  });

  it('TTL restricts a range invalidation to leaves of that level', () => {
    const tlb = new SmmuTlb();
    const t = s1Tag(0, 1);
    tlb.insert(entry(t, 0x20_0000, 21));
    tlb.insert(entry(t, 0x40_0000, 12));
    tlb.invalidateNhVa({ vmid: 0, asid: 1, addr: 0n, leaf: true, tg: 1, num: 31, scale: 10, ttl: 3 });
    expect(has(tlb, t, 0x20_0000)).toBe(true);
    expect(has(tlb, t, 0x40_0000)).toBe(false);
    tlb.invalidateNhVa({ vmid: 0, asid: 1, addr: 0n, leaf: true, tg: 1, num: 31, scale: 10, ttl: 2 });
    expect(tlb.size).toBe(0);
  });

  it('S2_IPA ranges', () => {
    const tlb = new SmmuTlb();
    const t = tlbTag(NS, true, 0, 4, 0);
    for (let i = 0; i < 8; i++) tlb.insert(entry(t, 0x4000_0000 + i * 0x1000, 12, { stage: 's2' }));
    tlb.invalidateS2Ipa({ vmid: 4, ipa: 0x4000_2000n, leaf: true, tg: 1, num: 1, scale: 1, ttl: 3 });
    expect(tlb.size).toBe(4);
    expect(has(tlb, t, 0x4000_1000) && has(tlb, t, 0x4000_6000)).toBe(true);
  });

  it('8-bit ASIDs and VMIDs: only the low 8 bits of TLBI operands count', () => {
    const tlb = new SmmuTlb({ asid16: false, vmid16: false });
    tlb.insert(entry(s1Tag(0x12, 0x34), 0x1000));
    tlb.invalidateNhAsid(0x512, 0x734);
    expect(tlb.size).toBe(0);
  });
});

describe('SmmuTlb broadcast TLB maintenance (invalidateBroadcast)', () => {
  const EL2 = TLB_REGIME_EL2;
  /** Shared-set (ASET = 0) and private (ASET = 1) pages of ASID 7, VMID 0, at 0x1000 … 0x4000. */
  function filled() {
    const tlb = new SmmuTlb();
    const t = s1Tag(0, 7);
    for (let va = 0x1000; va <= 0x4000; va += 0x1000) tlb.insert(entry(t, va, 12, { aset: false }));
    const p = s1Tag(0, 8);
    for (let va = 0x1000; va <= 0x4000; va += 0x1000) tlb.insert(entry(p, va, 12, { aset: true }));
    return { tlb, t, p };
  }

  it('records ASET in the entry (default 0: shared)', () => {
    const tlb = new SmmuTlb();
    expect(tlb.insert(entry(s1Tag(0, 1), 0x1000)).aset).toBe(false);
    expect(tlb.insert(entry(s1Tag(0, 1), 0x2000, 12, { aset: true })).aset).toBe(true);
  });

  it('vae1is drops the page of the ASID (and global pages), only from shared-set entries', () => {
    const { tlb, t, p } = filled();
    const g = tlbTag(NS, false, 0, 0, -1);
    tlb.insert(entry(g, 0x2000, 12, { aset: false }));
    tlb.insert(entry(s1Tag(0, 9), 0x2000, 12, { aset: false }));
    tlb.invalidateBroadcast({ kind: 'vae1is', asid: 7, va: 0x2abc, leaf: true }, NS);
    expect(has(tlb, t, 0x2000)).toBe(false);
    expect(has(tlb, g, 0x2000)).toBe(false);
    expect(has(tlb, s1Tag(0, 9), 0x2000)).toBe(true); // other ASID
    expect(has(tlb, t, 0x1000) && has(tlb, t, 0x3000)).toBe(true);
    tlb.invalidateBroadcast({ kind: 'vae1is', asid: 8, va: 0x2000, leaf: false }, NS);
    expect(has(tlb, p, 0x2000)).toBe(true); // ASET = 1
    expect(tlb.stats.invalidated).toBe(2);
  });

  it('vae1is removes a block that covers the address', () => {
    const tlb = new SmmuTlb();
    const t = s1Tag(0, 3);
    tlb.insert(entry(t, 0x20_0000, 21));
    tlb.invalidateBroadcast({ kind: 'vae1is', asid: 3, va: 0x2f_f000, leaf: true }, NS);
    expect(tlb.size).toBe(0);
  });

  it('rvae1is drops the shared pages in [start, end), keeping the rest and the private ones', () => {
    const { tlb, t, p } = filled();
    tlb.invalidateBroadcast(
      { kind: 'rvae1is', asid: 7, start: 0x2000, end: 0x4000, stride: 4096, leaf: true },
      NS,
    );
    expect([0x1000, 0x2000, 0x3000, 0x4000].map((va) => has(tlb, t, va))).toEqual([true, false, false, true]);
    tlb.invalidateBroadcast(
      { kind: 'rvae1is', asid: 8, start: 0, end: 0x10_0000, stride: 4096, leaf: false },
      NS,
    );
    expect([0x1000, 0x2000, 0x3000, 0x4000].every((va) => has(tlb, p, va))).toBe(true);
    expect(tlb.size).toBe(6);
  });

  it('aside1is drops the non-global shared entries of the ASID', () => {
    const { tlb, t, p } = filled();
    const g = tlbTag(NS, false, 0, 0, -1);
    tlb.insert(entry(g, 0x8000, 12));
    tlb.invalidateBroadcast({ kind: 'aside1is', asid: 7 }, NS);
    expect(has(tlb, t, 0x1000) || has(tlb, t, 0x4000)).toBe(false);
    expect(has(tlb, g, 0x8000)).toBe(true);
    tlb.invalidateBroadcast({ kind: 'aside1is', asid: 8 }, NS);
    expect(has(tlb, p, 0x1000)).toBe(true);
    expect(tlb.size).toBe(5);
  });

  it('vmalle1is drops every shared stage-1 entry of VMID 0, global ones included, and nothing else', () => {
    const { tlb, p } = filled();
    const g = tlbTag(NS, false, 0, 0, -1);
    const v5 = s1Tag(5, 7);
    const s2 = tlbTag(NS, true, 0, 0, 0);
    const el2 = tlbTag(EL2, false, 0, 0, 7);
    tlb.insert(entry(g, 0x8000, 12));
    tlb.insert(entry(v5, 0x1000, 12)); // a guest's VMID
    tlb.insert(entry(s2, 0x1000, 12, { stage: 's2' }));
    tlb.insert(entry(el2, 0x1000, 12));
    tlb.invalidateBroadcast({ kind: 'vmalle1is' }, NS);
    expect(has(tlb, g, 0x8000)).toBe(false);
    expect(has(tlb, v5, 0x1000) && has(tlb, s2, 0x1000) && has(tlb, el2, 0x1000)).toBe(true);
    expect(has(tlb, p, 0x1000)).toBe(true);
    expect(tlb.size).toBe(7);
  });

  it('regime EL2 (E2H): only EL2 entries are affected', () => {
    const tlb = new SmmuTlb();
    const ns = s1Tag(0, 7);
    const el2 = tlbTag(EL2, false, 0, 0, 7);
    tlb.insert(entry(ns, 0x1000, 12));
    tlb.insert(entry(el2, 0x1000, 12));
    tlb.invalidateBroadcast({ kind: 'vae1is', asid: 7, va: 0x1000, leaf: true }, EL2);
    expect(has(tlb, el2, 0x1000)).toBe(false);
    expect(has(tlb, ns, 0x1000)).toBe(true);
    tlb.insert(entry(el2, 0x1000, 12));
    tlb.invalidateBroadcast({ kind: 'aside1is', asid: 7 }, NS);
    expect(has(tlb, el2, 0x1000)).toBe(true);
    expect(has(tlb, ns, 0x1000)).toBe(false);
  });

  it('nested entries of VMID 0 are stage-1 entries too; stage-2-only ones never go', () => {
    const tlb = new SmmuTlb();
    const t = s1Tag(0, 7);
    const s2 = tlbTag(NS, true, 0, 0, 0);
    tlb.insert(entry(t, 0x1000, 12, { stage: 'nested' }));
    tlb.insert(entry(s2, 0x1000, 12, { stage: 's2' }));
    tlb.invalidateBroadcast(
      { kind: 'rvae1is', asid: 7, start: 0, end: 0x10_0000, stride: 4096, leaf: false },
      NS,
    );
    expect(has(tlb, t, 0x1000)).toBe(false);
    expect(has(tlb, s2, 0x1000)).toBe(true);
  });

  it('8-bit ASIDs compare the low 8 bits of the broadcast ASID', () => {
    const tlb = new SmmuTlb({ asid16: false });
    const t = s1Tag(0, 0x34);
    tlb.insert(entry(t, 0x1000, 12));
    tlb.invalidateBroadcast({ kind: 'aside1is', asid: 0x134 }, NS);
    expect(tlb.size).toBe(0);
  });

  it('TLBI commands ignore ASET: private entries go too', () => {
    const { tlb, t, p } = filled();
    tlb.invalidateNhAsid(0, 8);
    expect(has(tlb, p, 0x1000)).toBe(false);
    tlb.invalidateNhVa({ vmid: 0, asid: 7, addr: 0x1000, leaf: true, tg: 0, num: 0, scale: 0, ttl: 0 });
    expect(has(tlb, t, 0x1000)).toBe(false);
    tlb.invalidateNhAll(0);
    expect(tlb.size).toBe(0);
  });
});
