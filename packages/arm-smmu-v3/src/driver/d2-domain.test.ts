import {
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
} from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { makeS1Cd } from './cd.js';
import { d2Machine } from './d2.test-helpers.js';
import {
  type ArmSmmuDomain,
  ArmSmmuDomainStage,
  armSmmuAtcInvToCmd,
  armSmmuDomainAllocPagingFlags,
} from './domain.js';

describe('ATC_INV range encoding (spec §8.6)', () => {
  it('whole ATC for size 0', () => {
    expect(armSmmuAtcInvToCmd(0, 0n, 0n)).toEqual({ ssv: false, ssid: 0, addr: 0n, size: 52 });
  });
  it('one page is Size 0 at its own address; a PASID sets SSV', () => {
    expect(armSmmuAtcInvToCmd(7, 0x10_0000n, 0x1000n)).toEqual({
      ssv: true,
      ssid: 7,
      addr: 0x10_0000n,
      size: 0,
    });
  });
  it('a range crossing an alignment boundary widens to the covering power of two', () => {
    // pages 0x0ff..0x100: start ^ end = 0x1ff → 9 bits → aligned down to 0
    expect(armSmmuAtcInvToCmd(0, 0xff000n, 0x2000n)).toEqual({ ssv: false, ssid: 0, addr: 0n, size: 9 });
    // pages 0x100..0x10f: 0x0f → 4 bits
    expect(armSmmuAtcInvToCmd(0, 0x10_0000n, 0x1_0000n)).toMatchObject({ addr: 0x10_0000n, size: 4 });
  });
});

describe('domain allocation', () => {
  it('flags: unknown → EOPNOTSUPP, dirty tracking → stage 1 with HA|HD in the CD, user data → EOPNOTSUPP', () => {
    const m = d2Machine({ iidr: 0 });
    const { pdev } = m.pci(0x20);
    expect(() => armSmmuDomainAllocPagingFlags(pdev, 1 << 9, null)).toThrow(
      expect.objectContaining({ code: 'EOPNOTSUPP' }),
    );
    expect(() => armSmmuDomainAllocPagingFlags(pdev, 0, {})).toThrow(
      expect.objectContaining({ code: 'EOPNOTSUPP' }),
    );
    const dirty = armSmmuDomainAllocPagingFlags(pdev, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, null) as ArmSmmuDomain;
    expect(dirty.stage).toBe(ArmSmmuDomainStage.S1);
    const cd = makeS1Cd({ asid: dirty.asid, pgtblCfg: dirty.pgtblCfg!, stallEnabled: false });
    expect(((cd[0] as bigint) >> 42n) & 3n).toBe(3n);
    const pasid = armSmmuDomainAllocPagingFlags(pdev, IOMMU_HWPT_ALLOC_PASID, null) as ArmSmmuDomain;
    expect(pasid.stage).toBe(ArmSmmuDomainStage.S1);
    const s2 = armSmmuDomainAllocPagingFlags(pdev, IOMMU_HWPT_ALLOC_NEST_PARENT, null) as ArmSmmuDomain;
    expect([s2.stage, s2.nestParent]).toEqual([ArmSmmuDomainStage.S2, true]);
  });

  it('the S1 CD matches the spec §3.3 example (coherent 4K, ias 48, IPS 5)', () => {
    const m = d2Machine();
    const { pdev } = m.pci(0x20);
    const d = m.sub.iommuGetDomainForDev(pdev) as ArmSmmuDomain;
    const cd = makeS1Cd({ asid: d.asid, pgtblCfg: d.pgtblCfg!, stallEnabled: false });
    expect(cd[0]).toBe((BigInt(d.asid) << 48n) | 0x0000_e205_c000_3510n);
    expect(cd[3]).toBe(0xf404ff44n);
    expect(cd[1]).toBe(d.pgtblCfg?.armLpaeS1Cfg?.ttbr);
  });

  it('8-bit ASIDs: allocation fails with ENOSPC once 1..255 are taken, leaving memory as it was', () => {
    const m = d2Machine({ asid16: false });
    const { pdev } = m.pci(0x20);
    const held: ArmSmmuDomain[] = [];
    let err: unknown = null;
    for (let i = 0; i < 300 && err === null; i++) {
      const pages = m.memory.stats().allocatedPages;
      try {
        held.push(armSmmuDomainAllocPagingFlags(pdev, 0, null) as ArmSmmuDomain);
      } catch (e) {
        err = e;
        expect(m.memory.stats().allocatedPages).toBe(pages);
      }
    }
    expect(err).toMatchObject({ code: 'ENOSPC' });
    expect(Math.max(...held.map((d) => d.asid))).toBe(255);
    const victim = held[10] as ArmSmmuDomain;
    const asid = victim.asid;
    victim.ops.free?.(victim); // allocated outside the core (no owner)
    expect((armSmmuDomainAllocPagingFlags(pdev, 0, null) as ArmSmmuDomain).asid).toBe(asid);
  });
});
