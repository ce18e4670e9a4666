import { u64Hi, u64Lo } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import { decodeSmmuCommand } from '../hw/cmdq.js';
import { ARM_SMMU_OPT_CMDQ_FORCE_SYNC } from './arm-smmu-device.js';
import {
  type ArmSmmuCmd,
  ArmSmmuCmdqBatch,
  armSmmuCmdqBuildCmd,
  cmdqIssueCmdlist,
  cmdqIssueCmdWithSync,
} from './cmdq.js';
import { driverHarness } from './driver.test-helpers.js';
import { ARM_SMMU_GERROR, ARM_SMMU_GERRORN, PRI_RESP, RESUME_RESP } from './regs.js';

function decode(cmd: ArmSmmuCmd) {
  const [d0, d1] = armSmmuCmdqBuildCmd(cmd);
  return decodeSmmuCommand(u64Lo(d0), u64Hi(d0), u64Lo(d1), u64Hi(d1));
}

function ready(opts: Parameters<typeof driverHarness>[0] = {}) {
  const h = driverHarness(opts);
  h.smmu.probe();
  h.smmu.reset();
  h.model.cmdq.log.length = 0;
  return h;
}

describe('armSmmuCmdqBuildCmd', () => {
  it('encodes CMD_SYNC and CFGI_ALL with the exact words Linux writes', () => {
    expect(armSmmuCmdqBuildCmd({ op: 'CMD_SYNC' })).toEqual([0x0fc0_2046n, 0n]);
    expect(armSmmuCmdqBuildCmd({ op: 'CMD_SYNC', cs: 1, msiAddr: 0x8000_1230n })).toEqual([
      0x0fc0_1046n,
      0x8000_1230n,
    ]);
    expect(armSmmuCmdqBuildCmd({ op: 'CFGI_ALL' })).toEqual([0x04n, 0x1fn]);
  });

  it('agrees with the model decoder field by field', () => {
    expect(decode({ op: 'CFGI_CD', sid: 0x1234, ssid: 0xabcde, leaf: true })).toMatchObject({
      op: 'CFGI_CD',
      sid: 0x1234,
      ssid: 0xabcde,
      leaf: true,
    });
    expect(
      decode({
        op: 'TLBI_NH_VA',
        asid: 0x55,
        vmid: 3,
        addr: 0x7fff_1234_5000n,
        leaf: true,
        num: 7,
        scale: 2,
        ttl: 3,
        tg: 1,
      }),
    ).toMatchObject({
      op: 'TLBI_NH_VA',
      asid: 0x55,
      vmid: 3,
      num: 7,
      scale: 2,
      leaf: true,
      ttl: 3,
      addr: 0x7fff_1234_5000n,
    });
    expect(decode({ op: 'TLBI_S2_IPA', vmid: 9, addr: 0xfff_ffff_f000n, leaf: false })).toMatchObject({
      op: 'TLBI_S2_IPA',
      vmid: 9,
      leaf: false,
    });
    expect(
      decode({ op: 'ATC_INV', sid: 0x100, ssv: true, ssid: 7, addr: 0x40_0000n, size: 10 }),
    ).toMatchObject({
      op: 'ATC_INV',
      sid: 0x100,
      ssv: true,
      ssid: 7,
      size: 10,
      addr: 0x40_0000n,
      global: false,
    });
    expect(
      decode({ op: 'PRI_RESP', sid: 0x18, ssv: true, ssid: 5, grpid: 0x1ff, resp: PRI_RESP.SUCC }),
    ).toMatchObject({ op: 'PRI_RESP', sid: 0x18, ssv: true, ssid: 5, prgIndex: 0x1ff, resp: 2 });
    expect(decode({ op: 'RESUME', sid: 0x42, stag: 0xbeef, resp: RESUME_RESP.ABORT })).toMatchObject({
      op: 'RESUME',
      sid: 0x42,
      stag: 0xbeef,
      resp: 2,
    });
  });

  it('rejects response codes Linux rejects', () => {
    expect(() =>
      armSmmuCmdqBuildCmd({ op: 'PRI_RESP', sid: 0, ssv: false, ssid: 0, grpid: 0, resp: 3 as 2 }),
    ).toThrow(/EINVAL/);
  });
});

describe('command queue', () => {
  it('MSI polling: CMD_SYNC with CS=IRQ aimed at its own slot, completion seen in memory', () => {
    const { smmu, model, memory } = ready();
    expect(smmu.msiPoll).toBe(true);
    expect(cmdqIssueCmdWithSync(smmu, { op: 'CFGI_STE', sid: 3, leaf: true })).toBe(0);
    const sync = model.cmdq.log[1];
    if (sync?.op !== 'CMD_SYNC') throw new Error('no sync');
    expect(sync.cs).toBe(1);
    // Slot 5: the reset used slots 0..3, the CFGI slot 4.
    expect(sync.msiAddr).toBe(BigInt(smmu.cmdq.pa + 5 * 16));
    expect(memory.read32(smmu.cmdq.pa + 5 * 16)).toBe(0);
    expect(model.msiLog.at(-1)).toEqual({ source: 'cmdq-sync', addr: BigInt(smmu.cmdq.pa + 80), data: 0 });
    expect(model.stats.sev).toBe(0);
  });

  it('SEV: CMD_SYNC with CS=SEV, completion by CONS polling', () => {
    const { smmu, model } = ready({ options: { msipoll: false, maxQueueLog2: 8 } });
    expect(smmu.msiPoll).toBe(false);
    const sev = model.stats.sev;
    expect(cmdqIssueCmdWithSync(smmu, { op: 'TLBI_NH_ASID', asid: 1 })).toBe(0);
    const sync = model.cmdq.log[1];
    expect(sync?.op === 'CMD_SYNC' && sync.cs).toBe(2);
    expect(model.stats.sev).toBe(sev + 1);
    expect(smmu.cmdq.cons & 0x1ff).toBe(smmu.cmdq.prod);
  });

  it('a 70-command batch is issued as 64 without SYNC, then 6 + SYNC', () => {
    const { smmu, model } = ready();
    const batch = new ArmSmmuCmdqBatch(smmu);
    for (let i = 0; i < 70; i++) batch.add({ op: 'CFGI_STE', sid: i, leaf: true });
    expect(batch.num).toBe(6);
    expect(batch.submit()).toBe(0);
    expect(batch.num).toBe(0);
    const ops = model.cmdq.log.map((c) => c.op);
    expect(ops.length).toBe(71);
    expect(ops.indexOf('CMD_SYNC')).toBe(70);
    expect(model.cmdq.log.slice(0, 70).map((c) => (c.op === 'CFGI_STE' ? c.sid : -1))).toEqual(
      Array.from({ length: 70 }, (_, i) => i),
    );
  });

  it('OPT_CMDQ_FORCE_SYNC (MMU-700): 63 commands + SYNC, then the rest + SYNC', () => {
    const { smmu, model } = ready({ config: { iidr: (0x487 << 20) | 0x43b } });
    expect(smmu.options & ARM_SMMU_OPT_CMDQ_FORCE_SYNC).not.toBe(0);
    const batch = new ArmSmmuCmdqBatch(smmu);
    for (let i = 0; i < 70; i++) batch.add({ op: 'CFGI_STE', sid: i, leaf: true });
    batch.submit();
    const ops = model.cmdq.log.map((c) => c.op);
    expect(ops.length).toBe(72);
    expect([ops[63], ops[71]]).toEqual(['CMD_SYNC', 'CMD_SYNC']);
    expect(ops.filter((o) => o === 'CMD_SYNC').length).toBe(2);
  });

  it('wraps around a small queue many times, waiting for space', () => {
    const { smmu, model } = ready({ options: { maxQueueLog2: 7 } });
    expect(smmu.cmdq.log2).toBe(7);
    for (let round = 0; round < 5; round++) {
      const cmds: ArmSmmuCmd[] = Array.from({ length: 100 }, (_, i) => ({
        op: 'PREFETCH_CFG',
        sid: round * 100 + i,
      }));
      expect(cmdqIssueCmdlist(smmu, cmds, round % 2 === 0)).toBe(0);
    }
    cmdqIssueCmdlist(smmu, [], true);
    expect(model.cmdq.log.filter((c) => c.op === 'PREFETCH_CONFIG').length).toBe(500);
    expect(
      model.cmdq.log
        .filter((c) => c.op === 'PREFETCH_CONFIG')
        .map((c) => (c.op === 'PREFETCH_CONFIG' ? c.sid : -1)),
    ).toEqual(Array.from({ length: 500 }, (_, i) => i));
  });

  it.each([
    ['with a GERROR interrupt', undefined],
    ['polling GERROR without one', ['evtq', 'priq'] as ('evtq' | 'priq' | 'gerror')[]],
  ])('CERROR_ILL %s: the bad command becomes a CMD_SYNC and the queue moves on', (_name, lines) => {
    // Stage 1 only: a stage-2 TLBI is illegal.
    const { smmu, model } = ready({ config: { stage2: false }, ...(lines ? { lines } : {}) });
    const ret = cmdqIssueCmdlist(
      smmu,
      [
        { op: 'CFGI_STE', sid: 1, leaf: true },
        { op: 'TLBI_S2_IPA', vmid: 1, addr: 0x1000n, leaf: true },
        { op: 'CFGI_STE', sid: 2, leaf: true },
      ],
      true,
    );
    expect(ret).toBe(0);
    expect(model.cmdq.log.map((c) => c.op)).toEqual(['CFGI_STE', 'CMD_SYNC', 'CFGI_STE', 'CMD_SYNC']);
    expect(model.mmio.readl(ARM_SMMU_GERROR)).toBe(model.mmio.readl(ARM_SMMU_GERRORN));
    expect(model.activeGerrors).toBe(0);
    expect(smmu.log.map((l) => l.message)).toContain(`CMDQ error (cons 0x01000005): Illegal command`);
    expect(smmu.log.map((l) => l.message)).toContain(
      'skipping command in error state: 0x000000010000002a 0x0000000000001001',
    );
    expect(smmu.stats.gerrors).toBe(1);
  });
});
