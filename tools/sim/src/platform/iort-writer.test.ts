import { IortNodeType, iortTopology, parseIort } from '@iommu-ts/arm-smmu-v3';
import { describe, expect, it } from 'vitest';
import { writeIort } from './iort-writer.js';

describe('writeIort', () => {
  const bytes = writeIort({
    revision: 5,
    oemId: 'TEST',
    oemTableId: 'RMRTEST',
    nodes: [
      { type: 'its', itsIds: [0, 1] },
      {
        type: 'smmuv3',
        base: 0x1000_0000n,
        flags: 1,
        model: 0,
        gsiv: { event: 100, pri: 101, gerr: 102, sync: 103 },
        mappings: [{ inputBase: 0, count: 0x100, outputBase: 0, target: 0 }],
      },
      {
        type: 'rc',
        segment: 2,
        atsAttribute: 1,
        memoryAddressLimit: 48,
        pasidMaxWidth: 16,
        mappings: [{ inputBase: 0x100, count: 0x100, outputBase: 0x20, target: 1 }],
      },
      {
        type: 'nc',
        name: '\\_SB_.DEV0',
        nodeFlags: 1 | (8 << 1),
        memoryAddressLimit: 40,
        mappings: [{ inputBase: 0, count: 1, outputBase: 0x77, target: 1, single: true }],
      },
      {
        type: 'rmr',
        flags: 1,
        ranges: [{ base: 0x8000_0000n, length: 0x10_0000n }],
        mappings: [{ inputBase: 0x77, count: 1, outputBase: 0x77, target: 1 }],
      },
    ],
  });

  it('sums to 0 and parses back field by field', () => {
    expect(bytes.reduce((s, b) => (s + b) & 0xff, 0)).toBe(0);
    const t = parseIort(bytes);
    expect([t.revision, t.oemId, t.oemTableId, t.warnings]).toEqual([5, 'TEST  ', 'RMRTEST ', []]);
    expect(t.nodes.map((n) => n.type)).toEqual([0, 4, 2, 1, 6]);
    const [its, smmu, rc, nc, rmr] = t.nodes;
    expect(its).toMatchObject({ itsIds: [0, 1] });
    expect(smmu).toMatchObject({ baseAddress: 0x1000_0000n, flags: 1, eventGsiv: 100, syncGsiv: 103 });
    expect(rc).toMatchObject({
      atsAttribute: 1,
      pciSegment: 2,
      memoryAddressLimit: 48,
      pasidCapabilities: 16,
    });
    expect(rc?.mappings).toEqual([
      { inputBase: 0x100, idCount: 0xff, outputBase: 0x20, outputReference: smmu?.offset, flags: 0 },
    ]);
    expect(nc).toMatchObject({
      type: IortNodeType.NAMED_COMPONENT,
      deviceName: '\\_SB_.DEV0',
      nodeFlags: 17,
    });
    expect(rmr).toMatchObject({ flags: 1, descriptors: [{ base: 0x8000_0000n, length: 0x10_0000n }] });
  });

  it('describes the topology Linux would build from it', () => {
    const topo = iortTopology(parseIort(bytes));
    expect(topo.resolvePci(2, 0x105)).toMatchObject({ streamIds: [0x25], ats: true });
    expect(topo.resolvePci(2, 0x300)).toBeNull();
    expect(topo.resolvePlatform('\\_SB_.DEV0')).toMatchObject({
      streamIds: [0x77],
      canStall: true,
      pasidBits: 8,
    });
    expect(topo.reservedRanges.map((r) => r.streamIds)).toEqual([[0x77]]);
  });

  it('rejects a mapping to a node that does not exist', () => {
    expect(() =>
      writeIort({
        revision: 5,
        oemId: 'X',
        oemTableId: 'X',
        nodes: [
          {
            type: 'rc',
            segment: 0,
            atsAttribute: 0,
            memoryAddressLimit: 0,
            pasidMaxWidth: 0,
            mappings: [{ inputBase: 0, count: 1, outputBase: 0, target: 3 }],
          },
        ],
      }),
    ).toThrow(RangeError);
  });
});
