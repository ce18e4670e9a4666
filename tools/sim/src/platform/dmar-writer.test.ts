import { acpiTableChecksum, DmarScopeType, parseDmar } from '@iommu-ts/intel-vtd';
import { describe, expect, it } from 'vitest';
import { defaultX86Platform, defaultX86TableSpec } from './default-x86.js';
import { type DmarTableSpec, writeDmar } from './dmar-writer.js';

const spec: DmarTableSpec = {
  revision: 2,
  oemId: 'OEM',
  oemTableId: 'TABLE',
  oemRevision: 7,
  creatorId: 'CRT',
  creatorRevision: 9,
  hostAddressWidth: 46,
  flags: 1,
  structures: [
    {
      kind: 'drhd',
      flags: 1,
      size: 1,
      segment: 0,
      registerBase: 0xfed9_1000n,
      scopes: [
        {
          type: DmarScopeType.NAMESPACE,
          enumerationId: 1,
          startBus: 0,
          path: [{ device: 0x15, function: 0 }],
        },
      ],
    },
    {
      kind: 'rmrr',
      segment: 0,
      base: 0x1000n,
      limit: 0x1fffn,
      scopes: [
        {
          type: DmarScopeType.ENDPOINT,
          startBus: 0,
          path: [
            { device: 0x1c, function: 0 },
            { device: 0, function: 0 },
          ],
        },
      ],
    },
    { kind: 'atsr', flags: 1, segment: 0, scopes: [] },
    { kind: 'rhsa', registerBase: 0xfed9_1000n, proximityDomain: 3 },
    { kind: 'andd', deviceNumber: 1, name: '\\_SB.PCI0.I2C0' },
    {
      kind: 'satc',
      flags: 1,
      segment: 0,
      scopes: [{ type: DmarScopeType.ENDPOINT, startBus: 0, path: [{ device: 2, function: 0 }] }],
    },
  ],
};

describe('writeDmar', () => {
  it('writes a table that sums to 0 and parses back field for field', () => {
    const bytes = writeDmar(spec);
    expect(acpiTableChecksum(bytes)).toBe(0);
    // 48 header + DRHD 16+8 + RMRR 24+10 + ATSR 8 + RHSA 20 + ANDD 8+15 + SATC 8+8.
    expect(bytes.length).toBe(48 + 24 + 34 + 8 + 20 + 23 + 16);
    const t = parseDmar(bytes);
    expect(t).toMatchObject({
      revision: 2,
      oemId: 'OEM   ',
      oemTableId: 'TABLE   ',
      hostAddressWidth: 46,
      intrRemap: true,
      warnings: [],
    });
    expect(t.structures.map((s) => s.kind)).toEqual(['drhd', 'rmrr', 'atsr', 'rhsa', 'andd', 'satc']);
    expect(t.structures[0]).toMatchObject({
      includePciAll: true,
      registerSize: 0x2000n,
      registerBase: 0xfed9_1000n,
    });
    expect(t.structures[1]).toMatchObject({
      base: 0x1000n,
      limit: 0x1fffn,
      scopes: [
        {
          type: 1,
          length: 10,
          startBus: 0,
          path: [
            { device: 0x1c, function: 0 },
            { device: 0, function: 0 },
          ],
        },
      ],
    });
    expect(t.structures[2]).toMatchObject({ allPorts: true, scopes: [] });
    expect(t.structures[3]).toMatchObject({ proximityDomain: 3 });
    expect(t.structures[4]).toMatchObject({ deviceNumber: 1, name: '\\_SB.PCI0.I2C0' });
    expect(t.structures[5]).toMatchObject({ atcRequired: true });
  });

  it('rejects values that do not fit their fields', () => {
    expect(() => writeDmar({ ...spec, flags: 0x100 })).toThrow(RangeError);
    expect(() =>
      writeDmar({
        ...spec,
        structures: [{ kind: 'atsr', flags: 0, segment: 0, scopes: [{ type: 2, startBus: 0, path: [] }] }],
      }),
    ).toThrow(RangeError);
  });
});

describe('defaultX86Platform', () => {
  it('is the written table parsed back: one INCLUDE_PCI_ALL DRHD, a USB RMRR, an ATSR of three root ports', () => {
    const p = defaultX86Platform();
    expect(p.bytes).toEqual(writeDmar(defaultX86TableSpec()));
    expect(acpiTableChecksum(p.bytes)).toBe(0);
    expect(p.source).toEqual({
      format: 'dmar',
      form: 'builtin',
      file: null,
      oem: 'IOMMTS X86VTD01',
      revision: 1,
    });
    expect(p.dmar.structures.map((s) => s.kind)).toEqual(['drhd', 'rmrr', 'atsr']);
    expect(p.dmar.warnings).toEqual([]);
  });
});
