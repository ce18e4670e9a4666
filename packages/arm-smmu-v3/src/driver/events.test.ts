import { dmaRequest, IommuPageResponseCode } from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { encodeCd } from '../hw/context-descriptor.js';
import { s1Cd, s1Ste } from '../hw/smmu.test-helpers.js';
import { encodeSte } from '../hw/ste.js';
import { TestPageTable } from '../hw/test-helpers.js';
import type { ArmSmmuStreamMaster } from './arm-smmu-device.js';
import { driverHarness, fakeMaster, testOps } from './driver.test-helpers.js';
import { ARM_SMMU_FAULT_SRC_STALL } from './events.js';
import { armSmmuGerrorHandler } from './gerror.js';
import {
  ARM_SMMU_EVTQ_CONS,
  ARM_SMMU_EVTQ_PROD,
  type ArmSmmuEvent,
  EVT_ID,
  Q_OVERFLOW_FLAG,
} from './regs.js';

const put = (h: ReturnType<typeof driverHarness>, pa: number, words: ArrayLike<number>): void => {
  for (let i = 0; i < words.length; i++) h.memory.write32(pa + i * 4, words[i] ?? 0);
};

/** A reset+registered driver, a master on StreamID 1 with a stage-1 STE/CD written by hand. */
function setup(stall: boolean, opts: Parameters<typeof driverHarness>[0] = {}) {
  const h = driverHarness(opts);
  h.smmu.probe();
  h.smmu.reset();
  h.smmu.register(testOps(h.smmu));
  const { dev, master } = fakeMaster(h.smmu, 'dev0', [1], stall);
  const pt = new TestPageTable(h.memory, { granule: 12, inputBits: 48, stage: 1 });
  const cdPa = h.memory.allocPages(0, { zero: true });
  const page = h.memory.allocPages(0, { zero: true });
  pt.map(0x10_0000, page);
  put(h, cdPa, encodeCd(s1Cd(pt.root, stall ? { s: true } : {})));
  put(h, h.smmu.steAddress(1), encodeSte(s1Ste(cdPa)));
  const unhandled: { evt: ArmSmmuEvent; master: ArmSmmuStreamMaster | undefined }[] = [];
  h.smmu.onUnhandledEvent = (evt, m) => unhandled.push({ evt, master: m });
  const dma = (
    addr: bigint,
    access: 'read' | 'write',
    extra: { privileged?: boolean; exec?: boolean } = {},
  ) =>
    h.model.dmaAccess(
      dmaRequest({
        requesterId: 1,
        addr,
        size: 4,
        access,
        privileged: extra.privileged ?? false,
        exec: extra.exec ?? false,
      }),
      access === 'write' ? new Uint8Array([1, 2, 3, 4]) : undefined,
    );
  return { ...h, dev, master, pt, page, unhandled, dma };
}

describe('event queue thread', () => {
  it('decodes and logs a terminated translation fault (not reported to io-pgfault)', () => {
    const h = setup(false);
    expect(h.dma(0x20_0123n, 'read', { privileged: true, exec: true })).toMatchObject({ kind: 'fault' });
    h.scheduler.runUntilIdle();
    expect(h.lines.evtq.threadRuns).toBe(1);
    expect(h.unhandled).toHaveLength(1);
    const [{ evt, master } = { evt: undefined, master: undefined }] = h.unhandled;
    expect(master).toBe(h.master);
    expect(evt).toMatchObject({
      id: EVT_ID.TRANSLATION_FAULT,
      sid: 1,
      ssv: false,
      stall: false,
      read: true,
      privileged: true,
      instruction: true,
      s2: false,
      class: 2,
      iova: 0x20_0123n,
    });
    expect(h.smmu.log.at(-1)?.message).toBe(
      'event 0x10 (F_TRANSLATION) client: dev0 sid: 0x1 ssid: none iova: 0x200123 ipa: 0x0 terminate priv inst read S1 class: IN',
    );
    expect(h.smmu.stats.events).toBe(1);
    // CONS caught up with PROD.
    expect(h.model.mmio.readl(0x10000 + ARM_SMMU_EVTQ_CONS)).toBe(
      h.model.mmio.readl(0x10000 + ARM_SMMU_EVTQ_PROD),
    );
  });

  it('reports a stalled fault; with no handler io-pgfault answers INVALID → CMD_RESUME abort', () => {
    const h = setup(true);
    const out = h.dma(0x60_0008n, 'write');
    if (out.kind !== 'pending') throw new Error('expected a stall');
    h.scheduler.runUntilIdle();
    const resume = h.model.cmdq.log.find((c) => c.op === 'RESUME');
    expect(resume).toMatchObject({ op: 'RESUME', sid: 1, stag: out.pending.tag, resp: 2 });
    // No CMD_SYNC after RESUME (fire and forget, as Linux).
    expect(h.model.cmdq.log.at(-1)?.op).toBe('RESUME');
    expect(out.pending.outcome).toMatchObject({ kind: 'fault', reason: 'terminated' });
    expect(h.model.stalledCount).toBe(0);
    // io-pgfault's -EINVAL makes the driver log the event too.
    expect(h.unhandled.map((u) => u.evt.stall)).toEqual([true]);
  });

  it('a SUCCESS page response resumes the stalled transaction with RETRY and the DMA completes', () => {
    const h = setup(true, { lines: ['gerror'] }); // no event line: the record waits in the queue
    const out = h.dma(0x60_0008n, 'write');
    if (out.kind !== 'pending') throw new Error('expected a stall');
    h.pt.map(0x60_0000, h.page);
    h.smmu.pageResponse(
      h.dev,
      {
        type: 1,
        prm: {
          flags: 2,
          pasid: 0,
          grpid: out.pending.tag,
          perm: 2,
          addr: 0x60_0008n,
          privateData: [ARM_SMMU_FAULT_SRC_STALL, 1n],
        },
      },
      { pasid: 0, grpid: out.pending.tag, code: IommuPageResponseCode.SUCCESS },
    );
    h.scheduler.runUntilIdle();
    expect(h.model.cmdq.log.at(-1)).toMatchObject({ op: 'RESUME', sid: 1, stag: out.pending.tag, resp: 1 });
    expect(out.pending.outcome).toEqual({ kind: 'completed' });
    expect([...h.memory.readBytes(h.page + 8, 4)]).toEqual([1, 2, 3, 4]);
  });

  it('refuses a stall response for a master that is not stall-enabled', () => {
    const h = setup(false);
    const before = h.model.cmdq.log.length;
    h.smmu.pageResponse(
      h.dev,
      {
        type: 1,
        prm: { flags: 2, pasid: 0, grpid: 3, perm: 1, addr: 0n, privateData: [ARM_SMMU_FAULT_SRC_STALL, 1n] },
      },
      { pasid: 0, grpid: 3, code: IommuPageResponseCode.SUCCESS },
    );
    h.scheduler.runUntilIdle();
    expect(h.model.cmdq.log.length).toBe(before);
    expect(h.smmu.log.at(-1)?.message).toBe('page response for dev0, which is not stall-enabled');
  });

  it('notices an event queue overflow, logs it once and acknowledges with OVACKFLG', () => {
    const h = setup(false, { lines: ['gerror'], config: { evtqLog2: 2 } });
    expect(h.smmu.evtq.log2).toBe(2);
    for (let i = 0; i < 6; i++) h.dma(0x20_0000n + BigInt(i) * 0x1000n, 'read');
    h.scheduler.runUntilIdle();
    const prod = h.model.mmio.readl(0x10000 + ARM_SMMU_EVTQ_PROD);
    expect(prod & Q_OVERFLOW_FLAG).not.toBe(0);
    h.smmu.pollQueues();
    expect(h.unhandled.map((u) => u.evt.iova)).toEqual([0x20_0000n, 0x20_1000n, 0x20_2000n, 0x20_3000n]);
    expect(h.smmu.stats.overflows).toBe(1);
    expect(h.smmu.log.filter((l) => l.message === 'EVTQ overflow detected -- events lost')).toHaveLength(1);
    const cons = h.model.mmio.readl(0x10000 + ARM_SMMU_EVTQ_CONS) >>> 0;
    expect(cons & Q_OVERFLOW_FLAG).toBe(prod & Q_OVERFLOW_FLAG);
    // After the acknowledgement new events are written again.
    h.dma(0x30_0000n, 'read');
    h.scheduler.runUntilIdle();
    h.smmu.pollQueues();
    expect(h.unhandled.at(-1)?.evt.iova).toBe(0x30_0000n);
    expect(h.smmu.stats.overflows).toBe(1);
  });
});

describe('PRI queue thread', () => {
  it('denies the last request of a group from an unknown StreamID and logs it', () => {
    const h = setup(false);
    h.model.pageRequest({
      requesterId: 0x42,
      pasid: 5,
      addr: 0x1234_5000n,
      read: true,
      write: true,
      exec: false,
      privileged: false,
      last: false,
      prgIndex: 7,
    });
    h.model.pageRequest({
      requesterId: 0x42,
      pasid: 5,
      addr: 0x1234_6000n,
      read: true,
      write: false,
      exec: false,
      privileged: false,
      last: true,
      prgIndex: 7,
    });
    h.scheduler.runUntilIdle();
    expect(h.smmu.stats.priRequests).toBe(2);
    const resps = h.model.cmdq.log.filter((c) => c.op === 'PRI_RESP');
    expect(resps).toEqual([expect.objectContaining({ sid: 0x42, ssv: true, ssid: 5, prgIndex: 7, resp: 0 })]);
    expect(
      h.smmu.log.filter((l) => l.message.startsWith('unexpected PRI request received: sid 0x42.0x5')),
    ).toHaveLength(2);
  });

  it('reports a known master’s requests to io-pgfault; without a handler the group is answered DENY with its PASID', () => {
    const h = setup(false);
    h.model.pageRequest({
      requesterId: 1,
      pasid: 9,
      addr: 0x5000n,
      read: true,
      write: false,
      exec: false,
      privileged: false,
      last: true,
      prgIndex: 3,
    });
    h.scheduler.runUntilIdle();
    expect(h.model.cmdq.log.filter((c) => c.op === 'PRI_RESP')).toEqual([
      expect.objectContaining({ sid: 1, ssv: true, ssid: 9, prgIndex: 3, resp: 0 }),
    ]);
    expect(h.smmu.log.some((l) => l.message.startsWith('unexpected PRI'))).toBe(false);
  });
});

describe('GERROR', () => {
  it('returns NONE when nothing is active and acknowledges what is', () => {
    const h = setup(false);
    expect(armSmmuGerrorHandler(h.smmu)).toBe(0);
    expect(h.smmu.stats.gerrors).toBe(0);
  });
});
