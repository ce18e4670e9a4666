import { Endpoint, PciHostBridge, pciEnableAts } from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { SMMU_CMDQ_CONS } from './regs.js';
import { s1Cd, s1Ste, smmuHarness } from './smmu.test-helpers.js';

function atsSetup(eats: number) {
  const h = smmuHarness();
  const hb = new PciHostBridge();
  const pdev = hb.rootBus.addDevice({ devfn: 0x20, ats: {} });
  expect(pciEnableAts(pdev, 12)).toBe(0);
  const ep = new Endpoint({ device: pdev, iommu: h.smmu, scheduler: h.scheduler });
  const pt = h.pgtable();
  const cdPa = h.memory.allocPages(0, { zero: true });
  const pa = h.memory.allocPages(0, { zero: true });
  pt.map(0x10_0000, pa);
  h.cd(cdPa, s1Cd(pt.root));
  h.ste(ep.requesterId, s1Ste(cdPa, { eats }));
  return { ...h, ep, pt, pa };
}

describe('SmmuV3Model ATS through an Endpoint', () => {
  it('answers translation requests, accepts translated traffic, and invalidates the ATC with CMD_ATC_INV', () => {
    const h = atsSetup(1);
    const { ep } = h;
    expect(ep.requesterId).toBe(0x20);
    ep.writeSync(0x10_0000n, new Uint8Array([9, 8]));
    expect([...h.memory.readBytes(h.pa, 2)]).toEqual([9, 8]);
    expect(ep.atc.entries()).toEqual([
      expect.objectContaining({ start: 0x10_0000n, translated: BigInt(h.pa) }),
    ]);
    expect(ep.stats).toMatchObject({ atsRequests: 1, translatedRequests: 1 });
    // the translation request walked the stage-1 table once (counted with transaction walks)
    expect(h.smmu.tlb.stats.walks).toBe(1);
    // unmap + TLBI without ATC_INV: the device still reaches the page through its ATC
    h.pt.unmap(0x10_0000);
    h.cmd({ op: 'TLBI_NH_ASID', asid: 1 }, { op: 'CMD_SYNC' });
    expect(ep.readSync(0x10_0000n, 1)[0]).toBe(9);
    // ATC_INV + SYNC: the SYNC completes only after the endpoint's Invalidate Completion
    h.cmd({ op: 'ATC_INV', sid: 0x20, addr: 0x10_0000n, size: 0 }, { op: 'CMD_SYNC', cs: 1 });
    expect(ep.atc.size).toBe(0);
    expect(h.mmio.readl(SMMU_CMDQ_CONS) & 0xff).toBe(4);
    expect(h.smmu.atcInvalidationsPending).toBe(false);
    expect(h.counts.cmdqSync.n).toBe(1);
    expect(ep.dmaRead(0x10_0000n, 1).fault?.reason).toBeDefined();
  });

  it('refuses ATS without STE.EATS: F_BAD_ATS_TREQ and UR', () => {
    const h = atsSetup(0);
    const c = h.smmu.atsTranslate({
      requesterId: 0x20,
      addr: 0x10_0000n,
      noWrite: false,
      exec: false,
      privileged: false,
    });
    expect(c.status).toBe('ur');
    expect(h.events()).toEqual([
      expect.objectContaining({ type: 'F_BAD_ATS_TREQ', sid: 0x20, inputAddr: 0x10_0000n }),
    ]);
  });

  it('answers UR when the SMMU has no ATS', () => {
    const h = smmuHarness({ ats: false });
    expect(
      h.smmu.atsTranslate({ requesterId: 1, addr: 0n, noWrite: false, exec: false, privileged: false })
        .status,
    ).toBe('ur');
  });
});
