import {
  Endpoint,
  type PageRequestMessage,
  PciHostBridge,
  PRG_RESPONSE,
  pciEnableAts,
  pciEnablePasid,
  pciEnablePri,
} from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { PGTT } from './pasid-table.js';
import { decodeVtdPageRequest, encodeVtdPageRequest } from './prq.js';
import {
  DMA_FSTS_PPF,
  DMA_PRS_PPR,
  DMA_PRS_PRO,
  DMAR_FSTS_REG,
  DMAR_PECTL_REG,
  DMAR_PEDATA_REG,
  DMAR_PQH_REG,
  DMAR_PQT_REG,
  DMAR_PRS_REG,
  vtdFrcdOffset,
} from './regs.js';
import { FlTestPageTable } from './test-helpers.js';
import { fakePort, type VtdHarness, vtdHarness } from './vtd.test-helpers.js';
import { decodeVtdFrcd, VTD_FR } from './vtd-fault.js';

const SID = 0x0010;

function pr(
  over: { [K in keyof PageRequestMessage]?: PageRequestMessage[K] | undefined } = {},
): PageRequestMessage {
  const m: Record<string, unknown> = {
    requesterId: SID,
    pasid: 7,
    addr: 0x50_0000n,
    read: true,
    write: true,
    exec: false,
    privileged: false,
    last: true,
    prgIndex: 5,
    ...over,
  };
  if (m['pasid'] === undefined) delete m['pasid'];
  return m as unknown as PageRequestMessage;
}

/** Scalable unit, sid 00:02.0 with PRE/DTE/PASIDE, PASID 7 → first-level table (empty), PRQ of 4 KiB. */
function setup(ctx: { pre?: boolean } = {}) {
  const h = vtdHarness({ scalable: true });
  const fl = new FlTestPageTable(h.memory, { levels: 4 });
  const dir = h.b.pasidDirectory();
  h.b.setContext(SID, {
    mode: 'scalable',
    present: true,
    paside: true,
    pre: ctx.pre ?? true,
    dte: true,
    pdts: 0,
    pasidDirPtr: dir,
  });
  h.b.setPasidEntry(dir, 7, { present: true, pgtt: PGTT.firstLevel, flptr: fl.root, flpm: 0, did: 6 });
  h.enable();
  h.enableQi();
  const prqPa = h.enablePrq(0);
  const ep = fakePort(SID);
  h.vtd.connectEndpoint(ep.port);
  return Object.assign(h, { fl, dir, prqPa, ep });
}

function lastFault(h: VtdHarness) {
  const off = vtdFrcdOffset(h.vtd.config.fro, 0);
  return decodeVtdFrcd({ lo: h.mmio.readq(off), hi: h.mmio.readq(off + 8) });
}

describe('page request descriptors', () => {
  it('encode and decode the §5.1 layout', () => {
    const d = {
      type: 1,
      rid: 0x0210,
      pasidPresent: true,
      pasid: 0x12345,
      exec: true,
      privileged: true,
      read: true,
      write: false,
      last: true,
      prgIndex: 0x1ff,
      addr: 0x7fff_1234_5000n,
    };
    const w = encodeVtdPageRequest(d);
    expect(w[0]).toBe(0x0031_2345_0210_0101n);
    expect(w[1]).toBe(0x7fff_1234_5000n | 0xff8n | 4n | 1n);
    expect(decodeVtdPageRequest(w)).toEqual(d);
  });
});

describe('page request queue', () => {
  it('writes a descriptor at PQT, sets PPR and raises the page request event once', () => {
    const h = setup();
    h.unmaskAll();
    h.mmio.writel(DMAR_PEDATA_REG, 0x66);
    h.vtd.pageRequest(pr({ last: false, prgIndex: 9 }));
    h.vtd.pageRequest(pr({ addr: 0x51_0000n, write: false, prgIndex: 9 }));
    h.scheduler.advanceBy(0);
    expect(h.mmio.readq(DMAR_PQT_REG)).toBe(64n);
    expect(h.mmio.readl(DMAR_PRS_REG)).toBe(DMA_PRS_PPR);
    expect(h.counts.prq).toBe(1);
    expect(h.vtd.msiLog).toEqual([{ source: 'prq', addr: 0n, data: 0x66 }]);
    expect(h.memory.read64(h.prqPa)).toBe(0x0000_0007_0010_0101n);
    expect(h.memory.read64(h.prqPa + 8)).toBe(0x50_0000n | (9n << 3n) | 3n);
    expect(h.drainPrq()).toEqual([
      expect.objectContaining({
        rid: SID,
        pasid: 7,
        pasidPresent: true,
        read: true,
        write: true,
        last: false,
        prgIndex: 9,
      }),
      expect.objectContaining({ addr: 0x51_0000n, read: true, write: false, last: true }),
    ]);
    expect(h.mmio.readq(DMAR_PQH_REG)).toBe(64n);
    // Linux clears PPR first; the next request raises the event again.
    h.mmio.writel(DMAR_PRS_REG, DMA_PRS_PPR);
    expect(h.mmio.readl(DMAR_PRS_REG)).toBe(0);
    h.vtd.pageRequest(pr({ pasid: undefined }));
    h.scheduler.advanceBy(0);
    expect(h.counts.prq).toBe(2);
    expect(h.drainPrq()[0]).toMatchObject({ pasidPresent: false, pasid: 0 });
    expect(h.ep.prg).toEqual([]);
  });

  it('overflows when full: PRO, nothing written, the last request of a group answered Success', () => {
    const h = setup();
    for (let i = 0; i < 127; i++) h.vtd.pageRequest(pr({ last: false, prgIndex: i & 0x1ff }));
    expect(h.vtd.prq.count).toBe(127);
    expect(h.mmio.readl(DMAR_PRS_REG)).toBe(DMA_PRS_PPR);
    const tail = h.mmio.readq(DMAR_PQT_REG);
    h.vtd.pageRequest(pr({ last: false, prgIndex: 200 }));
    h.vtd.pageRequest(pr({ last: true, prgIndex: 200 }));
    expect(h.mmio.readq(DMAR_PQT_REG)).toBe(tail);
    expect(h.mmio.readl(DMAR_PRS_REG)).toBe(DMA_PRS_PPR | DMA_PRS_PRO);
    expect(h.ep.prg).toEqual([{ requesterId: SID, pasid: 7, prgIndex: 200, code: PRG_RESPONSE.SUCCESS }]);
    // Software drains; while PRO is set requests still overflow.
    h.drainPrq();
    h.vtd.pageRequest(pr({ prgIndex: 201 }));
    expect(h.vtd.prq.count).toBe(0);
    expect(h.vtd.prq.stats).toMatchObject({ queued: 127, overflows: 3, autoResponses: 2 });
    h.mmio.writel(DMAR_PRS_REG, DMA_PRS_PRO | DMA_PRS_PPR);
    h.vtd.pageRequest(pr({ prgIndex: 202 }));
    expect(h.drainPrq()).toEqual([expect.objectContaining({ prgIndex: 202 })]);
  });

  it('does not answer a stop marker that overflows', () => {
    const h = setup();
    h.mmio.writel(DMAR_PRS_REG, 0); // no-op
    for (let i = 0; i < 127; i++) h.vtd.pageRequest(pr({ last: false }));
    h.vtd.pageRequest(pr({ read: false, write: false, last: true }));
    expect(h.ep.prg).toEqual([]);
  });

  it('refuses page requests when PRE is clear: fault 0x47 recorded, Invalid Request for the last one', () => {
    const h = setup({ pre: false });
    h.vtd.pageRequest(pr({ last: false }));
    h.vtd.pageRequest(pr({ last: true, addr: 0x51_0000n }));
    expect(h.vtd.prq.count).toBe(0);
    expect(h.ep.prg).toEqual([
      { requesterId: SID, pasid: 7, prgIndex: 5, code: PRG_RESPONSE.INVALID_REQUEST },
    ]);
    expect(h.mmio.readl(DMAR_FSTS_REG) & DMA_FSTS_PPF).toBe(DMA_FSTS_PPF);
    expect(lastFault(h)).toMatchObject({
      reason: VTD_FR.SM_CTX_PRE,
      sourceId: SID,
      pasid: 7,
      addr: 0x50_0000n,
    });
  });

  it('refuses page requests with a PASID when PASIDE is clear (0x45) or the PASID is beyond the directory (0x46)', () => {
    const h = setup();
    h.b.setContext(SID, {
      mode: 'scalable',
      present: true,
      pre: true,
      dte: true,
      pdts: 0,
      pasidDirPtr: h.dir,
    });
    h.submit({ type: 'context-cache', granularity: 'global', did: 0, sid: 0, fm: 0 });
    h.vtd.pageRequest(pr());
    expect(lastFault(h)).toMatchObject({ reason: VTD_FR.SM_CTX_PASIDE, pasid: 7 });
    h.vtd.pageRequest(pr({ pasid: undefined, prgIndex: 6 })); // without PASID: RID_PASID, accepted
    expect(h.drainPrq()).toEqual([expect.objectContaining({ pasidPresent: false, prgIndex: 6 })]);
    const g = setup();
    g.vtd.pageRequest(pr({ pasid: 0x2000 })); // PDTS 0: 2^7 directory entries x 64 = PASIDs below 0x2000
    expect(lastFault(g)).toMatchObject({ reason: VTD_FR.SM_CTX_PDTS, pasid: 0x2000 });
    expect(g.ep.prg).toEqual([
      { requesterId: SID, pasid: 0x2000, prgIndex: 5, code: PRG_RESPONSE.INVALID_REQUEST },
    ]);
  });

  it('refuses page requests in legacy mode with fault 0x32', () => {
    const h = vtdHarness(); // a scalable-capable unit run in legacy mode (TTM = 00)
    const ep = fakePort(SID);
    h.vtd.connectEndpoint(ep.port);
    h.b.setContext(SID, { mode: 'legacy', present: true, tt: 1, slptptr: h.slTable(4).root, aw: 2, did: 1 });
    h.enable();
    h.enablePrq(0);
    h.vtd.pageRequest(pr({ pasid: undefined }));
    expect(ep.prg).toEqual([{ requesterId: SID, prgIndex: 5, code: PRG_RESPONSE.INVALID_REQUEST }]);
    expect(lastFault(h)).toMatchObject({ reason: VTD_FR.SM_PRQ_IN_LEGACY, pasidPresent: false });
  });

  it('holds the page request event while masked (IP) and clears IP when PRS is serviced', () => {
    const h = setup();
    h.vtd.pageRequest(pr());
    expect(h.mmio.readl(DMAR_PECTL_REG)).toBe(0xc000_0000);
    h.drainPrq();
    h.mmio.writel(DMAR_PRS_REG, DMA_PRS_PPR);
    expect(h.mmio.readl(DMAR_PECTL_REG)).toBe(0x8000_0000);
    h.mmio.writel(DMAR_PECTL_REG, 0);
    h.scheduler.advanceBy(0);
    expect(h.counts.prq).toBe(0);
  });
});

describe('PRI end to end with an Endpoint', () => {
  it('ATS miss → page request in the PRQ → mapping + page group response → the device retries and completes', () => {
    const h = vtdHarness({ scalable: true });
    const hb = new PciHostBridge();
    const pdev = hb.rootBus.addDevice({
      devfn: 0x10,
      ats: { invQueueDepth: 4 },
      pri: { maxRequests: 32, prgResponsePasidRequired: true },
      pasid: { maxPasidWidth: 8, exec: true, priv: true },
    });
    expect(pciEnablePasid(pdev, 0)).toBe(0);
    expect(pciEnableAts(pdev, 12)).toBe(0);
    expect(pciEnablePri(pdev, 32)).toBe(0);
    const ep = new Endpoint({ device: pdev, iommu: h.vtd, scheduler: h.scheduler });
    expect(ep.requesterId).toBe(SID);
    const fl = new FlTestPageTable(h.memory, { levels: 4 });
    const dir = h.b.pasidDirectory();
    h.b.setContext(SID, {
      mode: 'scalable',
      present: true,
      paside: true,
      pre: true,
      dte: true,
      pasidDirPtr: dir,
    });
    h.b.setPasidEntry(dir, 7, { present: true, pgtt: PGTT.firstLevel, flptr: fl.root, flpm: 0, did: 6 });
    h.enable();
    h.enableQi();
    h.enablePrq(0);
    h.unmaskAll();
    const t = ep.dmaWrite(0x50_0010n, new Uint8Array([1, 2, 3]), { pasid: 7 });
    h.scheduler.advanceBy(0);
    expect(t.state).toBe('pending');
    expect(h.counts.prq).toBe(1);
    const reqs = h.drainPrq();
    expect(reqs).toEqual([
      expect.objectContaining({ rid: SID, pasid: 7, addr: 0x50_0000n, write: true, last: true }),
    ]);
    expect(h.mmio.readl(DMAR_FSTS_REG)).toBe(0); // ATS misses are not faults
    // The "driver" resolves the fault and answers the group.
    const page = h.memory.allocPages(0, { zero: true });
    fl.map(0x50_0000, page);
    const req = reqs[0] as NonNullable<(typeof reqs)[0]>;
    h.submit({
      type: 'page-group-response',
      rid: req.rid,
      pasidPresent: true,
      pasid: req.pasid,
      code: 0,
      prgIndex: req.prgIndex,
      lpig: false,
    });
    h.scheduler.advanceBy(0);
    expect(t.state).toBe('completed');
    expect([...h.memory.readBytes(page + 0x10, 3)]).toEqual([1, 2, 3]);
    expect(ep.stats).toMatchObject({ prgSuccess: 1, translatedRequests: 1 });
    // Unmap + PASID-IOTLB + device-TLB invalidation: the ATC entry goes away.
    fl.unmap(0x50_0000);
    h.submit(
      { type: 'pasid-iotlb', granularity: 'pasid', did: 6, pasid: 7, addr: 0n, am: 0, ih: false },
      {
        type: 'pasid-device-tlb',
        sid: SID,
        pfsid: 0,
        mip: 0,
        pasid: 7,
        global: false,
        addr: 0x50_0000n,
        s: false,
      },
      {
        type: 'wait',
        if: false,
        sw: true,
        fn: false,
        pd: false,
        statusData: 2,
        statusAddr: BigInt(h.statusSlot()),
      },
    );
    h.scheduler.advanceBy(0);
    expect(ep.atc.size).toBe(0);
    expect(h.vtd.atsInvalidationsPending).toBe(false);
    expect(h.mmio.readl(DMAR_FSTS_REG)).toBe(0);
  });
});
