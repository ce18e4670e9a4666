import { PRG_RESPONSE, type PrgResponseMessage } from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { decodeSmmuEvent, smmuEvent } from './events.js';
import { SmmuEventQueue } from './evtq.js';
import { decodeSmmuPriRecord, encodeSmmuPriRecord, SmmuPriQueue, smmuPriRecordFromMessage } from './priq.js';
import { makeTestMemory, TEST_RAM_BASE } from './test-helpers.js';

function evtq(log2: number) {
  const memory = makeTestMemory(4);
  const sig = { n: 0, abort: 0 };
  const q = new SmmuEventQueue(19, { memory, signal: () => sig.n++, abort: () => sig.abort++ });
  q.writeBase(BigInt(TEST_RAM_BASE + 0x1000) | BigInt(log2));
  q.enabled = true;
  return { q, sig, memory };
}

describe('SmmuEventQueue', () => {
  it('writes records at PROD with wrap bits and signals each', () => {
    const { q, sig } = evtq(2);
    for (let i = 0; i < 4; i++) expect(q.record(smmuEvent('F_TRANSLATION', i))).toBe('written');
    expect(q.prod).toBe(0b100); // index 0, wrap 1: full
    expect(q.full).toBe(true);
    expect(sig.n).toBe(4);
    expect(decodeSmmuEvent(q.readEntry(3)).sid).toBe(3);
    q.writeCons(0b010);
    expect(q.record(smmuEvent('C_BAD_STE', 9))).toBe('written');
    expect(q.prod).toBe(0b101);
    expect(decodeSmmuEvent(q.readEntry(0)).sid).toBe(9);
  });

  it('discards on overflow and toggles OVFLG once until acknowledged', () => {
    const { q } = evtq(1);
    q.record(smmuEvent('F_TRANSLATION', 1));
    q.record(smmuEvent('F_TRANSLATION', 2));
    expect(q.record(smmuEvent('F_TRANSLATION', 3))).toBe('overflow');
    expect(q.prod >>> 0).toBe((0x8000_0000 | 0b10) >>> 0);
    expect(q.record(smmuEvent('F_TRANSLATION', 4))).toBe('overflow');
    expect(q.prod >>> 0).toBe((0x8000_0000 | 0b10) >>> 0);
    expect(q.overflowActive).toBe(true);
    expect(q.dropped).toBe(2);
    // software drains and acknowledges with OVACKFLG
    q.writeCons((0x8000_0000 | 0b10) >>> 0);
    expect(q.overflowActive).toBe(false);
    expect(q.record(smmuEvent('F_TRANSLATION', 5))).toBe('written');
    expect(decodeSmmuEvent(q.readEntry(0)).sid).toBe(5);
    // a new overflow toggles OVFLG back to 0
    q.record(smmuEvent('F_TRANSLATION', 6));
    q.record(smmuEvent('F_TRANSLATION', 7));
    expect(q.prod >>> 31).toBe(0);
    expect(q.overflowActive).toBe(true);
  });

  it('holds stall records while full or disabled and writes them later, without overflow', () => {
    const { q } = evtq(0);
    q.record(smmuEvent('F_TRANSLATION', 1));
    expect(q.record(smmuEvent('F_PERMISSION', 2, { stall: true, stag: 7 }))).toBe('held');
    expect(q.overflowActive).toBe(false);
    q.writeCons(q.prod);
    expect(q.drainHeld()).toBe(1);
    const ev = decodeSmmuEvent(q.readEntry(0));
    expect(ev.stall).toBe(true);
    expect(ev.stag).toBe(7);
    q.enabled = false;
    expect(q.record(smmuEvent('F_TRANSLATION', 3))).toBe('discarded');
    expect(q.record(smmuEvent('F_TRANSLATION', 3, { stall: true }))).toBe('held');
  });

  it('counts every offered event by type, beyond the capped log and whatever became of it', () => {
    const { q } = evtq(0);
    q.logLimit = 2;
    q.record(smmuEvent('F_TRANSLATION', 1)); // written
    q.record(smmuEvent('F_TRANSLATION', 2)); // overflow
    q.record(smmuEvent('F_PERMISSION', 3, { stall: true })); // held
    q.enabled = false;
    q.record(smmuEvent('C_BAD_STE', 4)); // discarded
    expect(q.log.length).toBe(2);
    expect(Object.fromEntries(q.byType)).toEqual({ F_TRANSLATION: 2, F_PERMISSION: 1, C_BAD_STE: 1 });
    q.reset();
    expect(q.byType.get('F_TRANSLATION')).toBe(2);
  });

  it('raises the abort error when the queue memory is not RAM', () => {
    const memory = makeTestMemory(4);
    const sig = { n: 0, abort: 0 };
    const q = new SmmuEventQueue(19, { memory, signal: () => sig.n++, abort: () => sig.abort++ });
    q.writeBase(0x1000n | 3n);
    q.enabled = true;
    expect(q.record(smmuEvent('F_TRANSLATION', 1))).toBe('abort');
    expect(sig.abort).toBe(1);
    expect(q.prod).toBe(0);
  });

  it('caps LOG2SIZE at the ID register and aligns BASE', () => {
    const memory = makeTestMemory(4);
    const q = new SmmuEventQueue(3, { memory, signal: () => {}, abort: () => {} });
    q.writeBase(BigInt(TEST_RAM_BASE + 0x120) | 10n);
    expect(q.log2).toBe(3);
    expect(q.addr).toBe(TEST_RAM_BASE + 0x100);
  });
});

describe('PRI records', () => {
  it('encodes §6.1 layout', () => {
    const r = {
      sid: 0x300,
      ssv: true,
      ssid: 0x12345,
      priv: true,
      exec: false,
      read: true,
      write: true,
      last: true,
      prgIndex: 0x1a5,
      addr: 0xffff_0000_dead_b000n,
    };
    const w = encodeSmmuPriRecord(r);
    expect([...w]).toEqual([
      0x300,
      (0x12345 | (1 << 26) | (1 << 28) | (1 << 29) | (1 << 30) | 0x8000_0000) >>> 0,
      0xdead_b1a5,
      0xffff_0000,
    ]);
    expect(decodeSmmuPriRecord(w)).toEqual(r);
    expect(
      smmuPriRecordFromMessage({
        requesterId: 1,
        addr: 0x1234n,
        read: true,
        write: false,
        exec: true,
        privileged: true,
        last: false,
        prgIndex: 3,
      }),
    ).toMatchObject({ ssv: false, exec: false, priv: false, addr: 0x1000n });
  });
});

function priq(log2: number, ppar?: boolean) {
  const memory = makeTestMemory(4);
  const responses: PrgResponseMessage[] = [];
  const sig = { n: 0 };
  const q = new SmmuPriQueue(19, {
    memory,
    signal: () => sig.n++,
    abort: () => {},
    autoRespond: (m) => responses.push(m),
    ppar: () => ppar,
    abortActive: () => false,
  });
  q.writeBase(BigInt(TEST_RAM_BASE + 0x2000) | BigInt(log2));
  q.enabled = true;
  return { q, responses, sig };
}

const ppr = (prgIndex: number, last: boolean, pasid?: number) => ({
  requesterId: 0x100,
  addr: 0x8000n,
  read: true,
  write: false,
  exec: false,
  privileged: false,
  last,
  prgIndex,
  ...(pasid === undefined ? {} : { pasid }),
});

describe('SmmuPriQueue', () => {
  it('records requests and answers Response Failure when disabled', () => {
    const { q, responses } = priq(2, false);
    expect(q.accept(ppr(1, true, 5))).toBe('written');
    expect(decodeSmmuPriRecord(q.readEntry(0))).toMatchObject({
      sid: 0x100,
      ssv: true,
      ssid: 5,
      last: true,
      prgIndex: 1,
    });
    q.enabled = false;
    expect(q.accept(ppr(2, false, 5))).toBe('auto-failure');
    expect(responses).toEqual([{ requesterId: 0x100, prgIndex: 2, code: PRG_RESPONSE.RESPONSE_FAILURE }]);
  });

  it('overflows: inhibits entries, auto-answers Last=1 with Success, ignores Last=0 and stop markers', () => {
    const { q, responses } = priq(0, true);
    q.accept(ppr(1, false));
    expect(q.accept(ppr(2, false))).toBe('overflow');
    expect(q.overflowActive).toBe(true);
    expect(q.accept(ppr(3, true))).toBe('overflow');
    expect(q.accept(ppr(4, true, 9))).toBe('overflow');
    expect(q.accept({ ...ppr(5, true, 9), read: false })).toBe('overflow'); // stop marker
    expect(responses).toEqual([
      { requesterId: 0x100, prgIndex: 3, code: PRG_RESPONSE.SUCCESS },
      { requesterId: 0x100, prgIndex: 4, code: PRG_RESPONSE.SUCCESS, pasid: 9 },
    ]);
    // room alone does not end the condition: entries stay inhibited until OVACKFLG
    q.writeCons(q.prod & 0x7fff_ffff);
    expect(q.accept(ppr(6, false))).toBe('overflow');
    q.writeCons(q.prod);
    expect(q.accept(ppr(7, false))).toBe('written');
  });

  it('answers PASID overflow requests with failure when the STE cannot be read', () => {
    const { q, responses } = priq(0);
    q.accept(ppr(1, false));
    q.accept(ppr(2, true, 3));
    expect(responses).toEqual([{ requesterId: 0x100, prgIndex: 2, code: PRG_RESPONSE.RESPONSE_FAILURE }]);
  });
});
