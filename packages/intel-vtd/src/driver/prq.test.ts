import {
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  type IommuFault,
  IommuFaultType,
  IommuPageResponseCode,
  type PageRequestMessage,
} from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { PGTT } from '../hw/pasid-table.js';
import { VtdStructureBuilder } from '../hw/structures.test-helpers.js';
import { FlTestPageTable } from '../hw/test-helpers.js';
import { fakePort } from '../hw/vtd.test-helpers.js';
import { decodePageReqDsc, intelIommuPageResponse, isCanonicalAddress } from './prq.js';
import { DMAR_PQH_REG, DMAR_PQT_REG } from './regs.js';
import { unitHarness } from './unit.test-helpers.js';

const SID = 0x0010;

function req(over: Partial<PageRequestMessage> = {}): PageRequestMessage {
  return {
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
  } as PageRequestMessage;
}

/** Scalable unit with sid 00:02.0 (PRE, PASID 7 → first level), initialised by the driver. */
function setup() {
  const h = unitHarness();
  const b = new VtdStructureBuilder(h.memory, true);
  const fl = new FlTestPageTable(h.memory, { levels: 4 });
  const dir = b.pasidDirectory();
  b.setContext(SID, {
    mode: 'scalable',
    present: true,
    paside: true,
    pre: true,
    dte: true,
    pdts: 0,
    pasidDirPtr: dir,
  });
  b.setPasidEntry(dir, 7, { present: true, pgtt: PGTT.firstLevel, flptr: fl.root, flpm: 0, did: 6 });
  h.unit.rootEntry = b.rootTable;
  h.unit.probe();
  h.unit.initDmar();
  h.unit.enableTranslation();
  const ep = fakePort(SID);
  h.vtd.connectEndpoint(ep.port);
  h.unit.log.length = 0;
  return { ...h, ep };
}

describe('page request descriptors', () => {
  it('decode the §5.1 layout; canonical check at 48 bits', () => {
    const d = decodePageReqDsc(0x0031_2345_0210_0101n, 0x7fff_1234_5000n | 0xff8n | 4n | 1n);
    expect(d).toMatchObject({
      pasidPresent: true,
      rid: 0x0210,
      pasid: 0x12345,
      exeReq: true,
      pmReq: true,
      rdReq: true,
      wrReq: false,
      lpig: true,
      prgIndex: 0x1ff,
      addr: 0x7fff_1234_5000n,
    });
    expect(isCanonicalAddress(0x7fff_ffff_f000n)).toBe(true);
    expect(isCanonicalAddress(0xffff_8000_0000_0000n)).toBe(true);
    expect(isCanonicalAddress(0x8000_0000_0000n)).toBe(false);
  });
});

describe('prq_event_thread', () => {
  it('unknown requester: Invalid page request logged, Invalid Request response reaches the endpoint', () => {
    const h = setup();
    h.vtd.pageRequest(req());
    h.scheduler.runUntilIdle();
    expect(h.unit.stats.prqRequests).toBe(1);
    expect(h.unit.log.map((l) => l.message)).toEqual([
      'DMAR: IOMMU: dmar0: Invalid page request: 700100101 0050002f',
    ]);
    expect(h.ep.prg).toEqual([{ requesterId: SID, pasid: 7, prgIndex: 5, code: 1 }]);
    expect(h.vtd.mmio.readq(DMAR_PQH_REG)).toBe(h.vtd.mmio.readq(DMAR_PQT_REG));
  });

  it('stop marker dropped silently; privileged request is bad; no response without LPIG', () => {
    const h = setup();
    h.vtd.pageRequest(req({ read: false, write: false, last: true, prgIndex: 9 }));
    h.vtd.pageRequest(req({ privileged: true, last: false, prgIndex: 3 }));
    h.scheduler.runUntilIdle();
    expect(h.unit.log.map((l) => l.message)).toEqual([
      'DMAR: IOMMU: dmar0: Page request in Privilege Mode',
      'DMAR: IOMMU: dmar0: Invalid page request: 20000700100101 0050001b',
    ]);
    expect(h.ep.prg).toEqual([]);
  });

  it('known device: reported to io-pgfault; the page response op sends a type-9 descriptor', () => {
    const h = setup();
    const reported: IommuFault[] = [];
    const dev = { name: 'ep0' } as never;
    h.unit.devices.set(SID, { dev });
    // io-pgfault rejects a device without fault parameters; the driver ignores that like Linux.
    h.vtd.pageRequest(req({ prgIndex: 0x1a3 }));
    h.scheduler.runUntilIdle();
    expect(h.unit.log).toEqual([]);
    expect(h.ep.prg).toEqual([]);
    const evt: IommuFault = {
      type: IommuFaultType.PAGE_REQ,
      prm: {
        flags: IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
        pasid: 7,
        grpid: 0x1a3,
        perm: 0,
        addr: 0x50_0000n,
        privateData: [0n, 0n],
      },
    };
    reported.push(evt);
    intelIommuPageResponse(h.unit, SID, evt, { pasid: 7, grpid: 0x1a3, code: IommuPageResponseCode.SUCCESS });
    expect(h.ep.prg).toEqual([{ requesterId: SID, pasid: 7, prgIndex: 0x1a3, code: 0 }]);
    expect(h.unit.stats.pageResponses).toBe(1);
  });
});
