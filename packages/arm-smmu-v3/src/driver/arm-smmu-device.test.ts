import { ErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import {
  ARM_SMMU_FEAT_2_LVL_STRTAB,
  ARM_SMMU_FEAT_E2H,
  ARM_SMMU_FEAT_HYP,
  ARM_SMMU_FEAT_NESTING,
  ARM_SMMU_FEAT_SEV,
  ARM_SMMU_OPT_CMDQ_FORCE_SYNC,
  ARM_SMMU_OPT_MSIPOLL,
  ArmSmmuDevice,
  armSmmuFeatureNames,
} from './arm-smmu-device.js';
import { driverHarness } from './driver.test-helpers.js';
import {
  ARM_SMMU_CR1,
  ARM_SMMU_CR2,
  ARM_SMMU_GBPA,
  ARM_SMMU_IRQ_CTRL,
  ARM_SMMU_STRTAB_BASE,
  ARM_SMMU_STRTAB_BASE_CFG,
  GBPA_ABORT,
} from './regs.js';

function expectErrno(fn: () => void, code: string): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ErrnoError);
    expect((e as ErrnoError).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe('ArmSmmuDevice.probe', () => {
  it('derives the features of the default model (an MMU-600 r0p0: SEV and NESTING dropped)', () => {
    const { smmu } = driverHarness();
    smmu.probe();
    expect(armSmmuFeatureNames(smmu.features)).toEqual([
      '2_LVL_STRTAB',
      '2_LVL_CDTAB',
      'TT_LE',
      'PRI',
      'ATS',
      'MSI',
      'COHERENCY',
      'TRANS_S1',
      'TRANS_S2',
      'STALLS',
      'RANGE_INV',
      'HA',
      'HD',
      'BBML2',
    ]);
  });

  it('applies the MMU-600 and MMU-700 errata from IIDR', () => {
    const r0p0 = driverHarness({ config: { iidr: 0x4830_043b } }).smmu;
    r0p0.probe();
    // ProductID 0x483 variant 0 revision 0: SEV and NESTING cleared.
    expect(r0p0.features & ARM_SMMU_FEAT_SEV).toBe(0);
    expect(r0p0.features & ARM_SMMU_FEAT_NESTING).toBe(0);
    const r2p0 = driverHarness({ config: { iidr: (0x483 << 20) | (2 << 16) | (3 << 12) | 0x43b } }).smmu;
    r2p0.probe();
    expect(r2p0.features & ARM_SMMU_FEAT_SEV).not.toBe(0);
    expect(r2p0.features & ARM_SMMU_FEAT_NESTING).not.toBe(0);
    const mmu700 = driverHarness({ config: { iidr: (0x487 << 20) | 0x43b, btm: true } }).smmu;
    mmu700.probe();
    expect(mmu700.options & ARM_SMMU_OPT_CMDQ_FORCE_SYNC).not.toBe(0);
    expect(armSmmuFeatureNames(mmu700.features)).not.toContain('BTM');
    expect(mmu700.features & ARM_SMMU_FEAT_NESTING).toBe(0);
  });

  it('reads a QEMU-like SMMU: stage 1 only, no MSI/SEV/PRI/ATS, terminate model, 44-bit OAS', () => {
    const { smmu } = driverHarness({
      config: {
        stage2: false,
        msi: false,
        sev: false,
        pri: false,
        ats: false,
        httu: 'none',
        twoLevelCdTable: false,
        stallModel: 'terminate',
        stallMax: 0,
        ssidBits: 0,
        oas: 44,
        ril: true,
        iidr: 0,
      },
    });
    smmu.probe();
    expect(armSmmuFeatureNames(smmu.features)).toEqual([
      '2_LVL_STRTAB',
      'TT_LE',
      'COHERENCY',
      'TRANS_S1',
      'RANGE_INV',
      'BBML2',
    ]);
    expect(smmu.options & ARM_SMMU_OPT_MSIPOLL).toBe(0);
    expect([smmu.asidBits, smmu.vmidBits, smmu.sidBits, smmu.ssidBits]).toEqual([16, 16, 16, 0]);
    expect([smmu.ias, smmu.oas]).toEqual([44, 44]);
    expect(smmu.pgsizeBitmap).toBe(
      0x6000_0000n | 0x4000_0000n | 0x0220_0000n | 0x0001_0000n | 0x4000n | 0x1000n,
    );
    expect(smmu.iommuDevice.maxPasids).toBe(0);
  });

  it('8-bit ASID/VMID, 8 SID bits (linear), aarch32+64 tables, 52-bit OAS, HYP with E2H', () => {
    const { smmu } = driverHarness({
      config: {
        asid16: false,
        vmid16: false,
        sidBits: 8,
        ttf: 'aarch32-aarch64',
        oas: 52,
        granule16k: false,
        granule64k: false,
        hyp: true,
        iidr: 0,
      },
      options: { e2h: true, maxQueueLog2: 8 },
    });
    smmu.probe();
    expect(smmu.features & ARM_SMMU_FEAT_2_LVL_STRTAB).toBe(0);
    expect(smmu.features & ARM_SMMU_FEAT_HYP).not.toBe(0);
    expect(smmu.features & ARM_SMMU_FEAT_E2H).not.toBe(0);
    expect([smmu.asidBits, smmu.vmidBits, smmu.ias, smmu.oas]).toEqual([8, 8, 52, 52]);
    expect(smmu.pgsizeBitmap).toBe((1n << 12n) | (1n << 21n) | (1n << 30n) | (1n << 42n));
    expect(smmu.iommuDevice.maxPasids).toBe(2 ** 20);
  });

  it('MSI polling needs coherency: firmware saying non-coherent turns it off', () => {
    const a = driverHarness({ coherent: false }).smmu;
    a.probe();
    expect(a.options & ARM_SMMU_OPT_MSIPOLL).toBe(0);
    expect(a.log.some((l) => l.message.includes('COHACC overridden'))).toBe(true);
    const b = driverHarness({ options: { msipoll: false } }).smmu;
    b.probe();
    expect(b.options & ARM_SMMU_OPT_MSIPOLL).toBe(0);
    const c = driverHarness().smmu;
    c.probe();
    expect(c.options & ARM_SMMU_OPT_MSIPOLL).not.toBe(0);
  });

  it('refuses an SMMU without translation or with a tiny command queue, leaving the object untouched', () => {
    const h = driverHarness();
    const mmio = h.model.mmio;
    // IDR0 with S1P and S2P cleared: an SMMU the model itself refuses to build.
    const none = new ArmSmmuDevice({
      iommu: h.iommu,
      memory: h.memory,
      scheduler: h.scheduler,
      mmio: { ...mmio, readl: (off) => (off === 0 ? mmio.readl(0) & ~3 : mmio.readl(off)) },
    });
    expectErrno(() => none.probe(), 'ENXIO');
    expect([none.features, none.asidBits, none.probed]).toEqual([0, 0, false]);
    const tiny = driverHarness({ config: { cmdqLog2: 6 } }).smmu;
    expectErrno(() => tiny.probe(), 'ENXIO');
    expect(tiny.cmdq.log2).toBe(0);
  });
});

describe('ArmSmmuDevice.reset', () => {
  it('programs and enables the model in Linux order', () => {
    const { smmu, model, memory } = driverHarness();
    smmu.probe();
    smmu.reset();
    // SMMUEN | PRIQEN | EVTQEN | CMDQEN | ATSCHK
    expect(model.cr0).toBe(0x1f);
    expect(model.mmio.readl(ARM_SMMU_CR1)).toBe(0xd75);
    expect(model.mmio.readl(ARM_SMMU_CR2)).toBe(0x6);
    expect(model.mmio.readl(ARM_SMMU_IRQ_CTRL)).toBe(0x7);
    const strtab = smmu.strtab;
    if (strtab?.kind !== '2lvl') throw new Error('expected a 2-level table');
    expect(strtab.numL1Ents).toBe(256);
    expect(model.mmio.readq(ARM_SMMU_STRTAB_BASE)).toBe((1n << 62n) | BigInt(strtab.l1Pa));
    // FMT=1, SPLIT=8, LOG2SIZE=16
    expect(model.mmio.readl(ARM_SMMU_STRTAB_BASE_CFG)).toBe(0x10000 | (8 << 6) | 16);
    expect(model.cmdq.log.map((c) => c.op)).toEqual([
      'CFGI_STE_RANGE',
      'CMD_SYNC',
      'TLBI_NSNH_ALL',
      'CMD_SYNC',
    ]);
    const cfgi = model.cmdq.log[0];
    expect(cfgi?.op === 'CFGI_STE_RANGE' && cfgi.range).toBe(31);
    // Queues capped at 2^8 entries by the harness.
    expect([smmu.cmdq.log2, smmu.evtq.log2, smmu.priq.log2]).toEqual([8, 8, 8]);
    expect(model.cmdq.log2).toBe(8);
    expect(smmu.iopfQueue).not.toBeNull();
    // L1 descriptors all invalid until a StreamID needs its L2 table.
    expect(memory.read64(strtab.l1Pa)).toBe(0n);
  });

  it('issues TLBI_EL2_ALL with HYP and sets CR2.E2H with E2H', () => {
    const { smmu, model } = driverHarness({ config: { hyp: true }, options: { e2h: true, maxQueueLog2: 8 } });
    smmu.probe();
    smmu.reset();
    expect(model.cmdq.log.map((c) => c.op)).toEqual([
      'CFGI_STE_RANGE',
      'CMD_SYNC',
      'TLBI_EL2_ALL',
      'CMD_SYNC',
      'TLBI_NSNH_ALL',
      'CMD_SYNC',
    ]);
    expect(model.mmio.readl(ARM_SMMU_CR2)).toBe(0x7);
  });

  it('leaves CR2.PTM clear only when asked to use broadcast TLB maintenance and the SMMU has BTM', () => {
    const seed = driverHarness({ config: { btm: true, iidr: 0 }, options: { btm: true, maxQueueLog2: 8 } });
    seed.smmu.probe();
    seed.smmu.reset();
    expect(seed.smmu.btmInUse).toBe(true);
    expect(seed.model.mmio.readl(ARM_SMMU_CR2)).toBe(0x2); // RECINVSID only
    // Without IDR0.BTM the option changes nothing: private TLB maintenance as today's Linux.
    const noBtm = driverHarness({ config: { btm: false, iidr: 0 }, options: { btm: true, maxQueueLog2: 8 } });
    noBtm.smmu.probe();
    noBtm.smmu.reset();
    expect(noBtm.smmu.btmInUse).toBe(false);
    expect(noBtm.model.mmio.readl(ARM_SMMU_CR2)).toBe(0x6);
  });

  it('without PRI/ATS leaves PRIQEN, ATSCHK and PRIQ_IRQEN clear; linear table of abort STEs', () => {
    const { smmu, model, memory } = driverHarness({ config: { pri: false, ats: false, sidBits: 6 } });
    smmu.probe();
    smmu.reset();
    expect(model.cr0).toBe(0x0d);
    expect(model.mmio.readl(ARM_SMMU_IRQ_CTRL)).toBe(0x5);
    const t = smmu.strtab;
    if (t?.kind !== 'linear') throw new Error('expected linear');
    expect(t.numEnts).toBe(64);
    expect(model.mmio.readl(ARM_SMMU_STRTAB_BASE_CFG)).toBe(6);
    for (let sid = 0; sid < 64; sid++) expect(memory.read64(smmu.steAddress(sid))).toBe(1n);
    expect(smmu.iopfQueue).not.toBeNull(); // stalls supported
  });

  it('a second reset of an enabled SMMU first sets GBPA.ABORT', () => {
    const { smmu, model } = driverHarness();
    smmu.probe();
    smmu.reset();
    expect(model.mmio.readl(ARM_SMMU_GBPA) & GBPA_ABORT).toBe(0);
    smmu.reset();
    expect(model.mmio.readl(ARM_SMMU_GBPA) & GBPA_ABORT).toBe(GBPA_ABORT);
    expect(model.cr0).toBe(0x1f);
    expect(smmu.log.some((l) => l.message.includes('SMMU currently enabled'))).toBe(true);
  });

  it('allocates an L2 stream table on demand with SPAN 9 and abort STEs; RMR StreamIDs get bypass', () => {
    const { smmu, memory, model } = driverHarness();
    smmu.probe();
    smmu.reset([0x1234]);
    const t = smmu.strtab;
    if (t?.kind !== '2lvl') throw new Error('expected 2lvl');
    const l2 = t.l2.get(0x12);
    if (l2 === undefined) throw new Error('RMR L2 missing');
    expect(memory.read64(t.l1Pa + 0x12 * 8)).toBe(BigInt(l2) | 9n);
    expect(memory.read64(smmu.steAddress(0x1234))).toBe(0x9n); // V | Config=bypass
    expect(memory.read64(smmu.steAddress(0x1235))).toBe(1n);
    expectErrno(() => smmu.steAddress(0x2000), 'ENOENT');
    const before = model.cmdq.log.length;
    smmu.initL2Strtab(0x2001);
    expect(memory.read64(t.l1Pa + 0x20 * 8)).toBe(BigInt(t.l2.get(0x20) ?? -1) | 9n);
    expect(memory.read64(smmu.steAddress(0x20ff))).toBe(1n);
    expect(model.cmdq.log.length).toBe(before); // no CFGI issued
    expectErrno(() => smmu.initL2Strtab(0x1_0000), 'ERANGE');
    expect(smmu.sidInRange(0xffff)).toBe(true);
  });

  it('a failed structure allocation frees what it took', () => {
    const { smmu, memory } = driverHarness({ config: { twoLevelStreamTable: false, sidBits: 20 } });
    smmu.probe();
    const free = memory.stats().freePages;
    // 2^20 STEs × 64 B = 64 MiB: more than the harness RAM.
    expectErrno(() => smmu.reset(), 'ENOMEM');
    expect(memory.stats().freePages).toBe(free);
    expect(smmu.strtab).toBeNull();
  });
});
