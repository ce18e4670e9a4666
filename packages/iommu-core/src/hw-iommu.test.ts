import { PhysicalMemory } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { PRG_RESPONSE } from './dma-request.js';
import {
  accessPhysicalMemory,
  type EndpointPort,
  EndpointPortTable,
  PassthroughIommuHw,
} from './hw-iommu.js';

describe('hardware helpers', () => {
  it('routes messages by requester ID', () => {
    const table = new EndpointPortTable();
    const got: string[] = [];
    const port: EndpointPort = {
      requesterId: 3,
      atsInvalidate: (m) => got.push(`inv ${m.itag}`),
      prgResponse: (m) => got.push(`prg ${m.prgIndex}`),
    };
    table.connect(port);
    expect(() => table.connect({ ...port })).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(table.sendAtsInvalidate({ requesterId: 3, global: false, addr: 0n, s: false, itag: 4 })).toBe(
      true,
    );
    expect(table.sendPrgResponse({ requesterId: 3, prgIndex: 9, code: PRG_RESPONSE.SUCCESS })).toBe(true);
    expect(table.sendPrgResponse({ requesterId: 4, prgIndex: 9, code: PRG_RESPONSE.SUCCESS })).toBe(false);
    expect(got).toEqual(['inv 4', 'prg 9']);
    table.disconnect(port);
    expect(table.get(3)).toBeUndefined();
  });

  it('accesses physical memory and turns bus errors into faults', () => {
    const memory = new PhysicalMemory({ size: 1 << 20 });
    const pa = BigInt(memory.base);
    expect(
      accessPhysicalMemory(memory, pa, { access: 'write', size: 2, addr: 0x10n }, new Uint8Array([1, 2])),
    ).toEqual({
      kind: 'completed',
    });
    expect(accessPhysicalMemory(memory, pa, { access: 'read', size: 2, addr: 0x10n })).toEqual({
      kind: 'completed',
      data: new Uint8Array([1, 2]),
    });
    expect(accessPhysicalMemory(memory, 1n << 60n, { access: 'read', size: 1, addr: 0x10n })).toMatchObject({
      kind: 'fault',
      reason: 'bus',
      addr: 0x10n,
    });
    expect(() => accessPhysicalMemory(memory, pa, { access: 'write', size: 2, addr: 0n })).toThrow(/data/);
    const hw = new PassthroughIommuHw(memory);
    expect(
      hw.atsTranslate({ requesterId: 1, addr: 0n, noWrite: false, exec: false, privileged: false }).status,
    ).toBe('ur');
    hw.pageRequest({
      requesterId: 1,
      addr: 0n,
      read: true,
      write: false,
      exec: false,
      privileged: false,
      last: true,
      prgIndex: 0,
    });
    expect(hw.stats).toMatchObject({ atsRequests: 1, pageRequests: 1 });
  });
});
