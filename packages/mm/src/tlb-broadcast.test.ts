import { describe, expect, it } from 'vitest';
import { MAX_DVM_OPS, TlbBroadcast, type TlbiOp } from './tlb-broadcast.js';

function recorder(b: TlbBroadcast): { ops: TlbiOp[]; off: () => void } {
  const ops: TlbiOp[] = [];
  const off = b.subscribe((op) => ops.push(op));
  return { ops, off };
}

describe('TlbBroadcast', () => {
  it('delivers to every subscriber in order, and stops after unsubscribe', () => {
    const b = new TlbBroadcast();
    expect(b.hasSubscribers).toBe(false);
    const seen: string[] = [];
    const off1 = b.subscribe((op) => seen.push(`1:${op.kind}`));
    b.subscribe((op) => seen.push(`2:${op.kind}`));
    expect(b.hasSubscribers).toBe(true);
    b.publish({ kind: 'aside1is', asid: 5 });
    off1();
    off1();
    b.publish({ kind: 'vmalle1is' });
    expect(seen).toEqual(['1:aside1is', '2:aside1is', '2:vmalle1is']);
  });

  it('a listener removed during delivery still sees the current op, not the next', () => {
    const b = new TlbBroadcast();
    const seen: number[] = [];
    let off2: () => void = () => {};
    b.subscribe(() => {
      seen.push(1);
      off2();
    });
    off2 = b.subscribe(() => seen.push(2));
    b.flushTlbAll();
    b.flushTlbAll();
    expect(seen).toEqual([1, 2, 1]);
  });

  it('flushTlbPage / flushTlbMm / flushTlbAll', () => {
    const b = new TlbBroadcast();
    const { ops } = recorder(b);
    b.flushTlbPage(3, 0x1234_5678);
    b.flushTlbMm(3);
    b.flushTlbAll();
    expect(ops).toEqual([
      { kind: 'vae1is', asid: 3, va: 0x1234_5000, leaf: false },
      { kind: 'aside1is', asid: 3 },
      { kind: 'vmalle1is' },
    ]);
  });

  it('flushTlbRange without FEAT_TLBIRANGE: one vae1is per page, whole ASID from MAX_DVM_OPS pages', () => {
    const b = new TlbBroadcast();
    const { ops } = recorder(b);
    b.flushTlbRange(7, 0x40_0123, 0x40_3001, { leaf: true });
    expect(ops).toEqual(
      [0x40_0000, 0x40_1000, 0x40_2000, 0x40_3000].map((va) => ({ kind: 'vae1is', asid: 7, va, leaf: true })),
    );
    ops.length = 0;
    b.flushTlbRange(7, 0, (MAX_DVM_OPS - 1) * 4096);
    expect(ops.length).toBe(MAX_DVM_OPS - 1);
    ops.length = 0;
    b.flushTlbRange(7, 0, MAX_DVM_OPS * 4096);
    expect(ops).toEqual([{ kind: 'aside1is', asid: 7 }]);
    ops.length = 0;
    b.flushTlbRange(7, 0x20_0000, 0x60_0000, { stride: 0x20_0000 });
    expect(ops).toEqual([
      { kind: 'vae1is', asid: 7, va: 0x20_0000, leaf: false },
      { kind: 'vae1is', asid: 7, va: 0x40_0000, leaf: false },
    ]);
    ops.length = 0;
    b.flushTlbRange(7, 0x5000, 0x5000);
    expect(ops).toEqual([]);
  });

  it('flushTlbRange with FEAT_TLBIRANGE: one rvae1is, a single page stays vae1is, huge ranges flush the ASID', () => {
    const b = new TlbBroadcast();
    const { ops } = recorder(b);
    b.flushTlbRange(9, 0x1000, 0x9_0000, { rangeSupported: true });
    expect(ops).toEqual([
      { kind: 'rvae1is', asid: 9, start: 0x1000, end: 0x9_0000, stride: 4096, leaf: false },
    ]);
    ops.length = 0;
    b.flushTlbRange(9, 0x1000, 0x2000, { rangeSupported: true });
    expect(ops).toEqual([{ kind: 'vae1is', asid: 9, va: 0x1000, leaf: false }]);
    ops.length = 0;
    b.flushTlbRange(9, 0, 2 ** 47, { rangeSupported: true });
    expect(ops).toEqual([{ kind: 'aside1is', asid: 9 }]);
  });

  it('counts without subscribers and builds nothing', () => {
    const b = new TlbBroadcast();
    b.flushTlbRange(1, 0, 3 * 4096);
    b.flushTlbRange(1, 0, 3 * 4096, { rangeSupported: true });
    b.flushTlbMm(1);
    b.flushTlbAll();
    b.publish({ kind: 'vae1is', asid: 1, va: 0, leaf: false });
    expect(b.stats()).toEqual({ vae1is: 4, rvae1is: 1, aside1is: 1, vmalle1is: 1 });
  });
});
