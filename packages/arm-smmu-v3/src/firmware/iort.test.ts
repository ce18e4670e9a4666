import { readFileSync } from 'node:fs';
import { ErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import { IortNodeType, iortMapId, iortTopology, parseIort } from './iort.js';
import { parseIaslRawTableData } from './iort-asl.js';

const fixture = (name: string): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`./fixtures/${name}`, import.meta.url)));
const LEGACY = fixture('qemu-virt-iort-smmuv3-legacy.bin');
const DEV = fixture('qemu-virt-iort-smmuv3-dev.bin');
const ITS_OFF = fixture('qemu-virt-iort-its-off.bin');
const CIX = fixture('cix-sky1-iort.bin');

/** Copy, patch, and fix the checksum so only the patched field is wrong. */
function patched(src: Uint8Array, edit: (dv: DataView, b: Uint8Array) => void, fixSum = true): Uint8Array {
  const b = src.slice();
  const dv = new DataView(b.buffer);
  edit(dv, b);
  if (fixSum) {
    b[9] = 0;
    const len = Math.min(dv.getUint32(4, true), b.length);
    let s = 0;
    for (let i = 0; i < len; i++) s = (s + (b[i] ?? 0)) & 0xff;
    b[9] = (0x100 - s) & 0xff;
  }
  return b;
}

function expectEinval(f: () => unknown, message: RegExp): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ErrnoError);
    expect((e as ErrnoError).code).toBe('EINVAL');
    expect((e as ErrnoError).message).toMatch(message);
    return;
  }
  throw new Error('expected EINVAL');
}

describe('fixtures match their iasl disassembly', () => {
  for (const stem of [
    'qemu-virt-iort-smmuv3-legacy',
    'qemu-virt-iort-smmuv3-dev',
    'qemu-virt-iort-its-off',
    'cix-sky1-iort',
  ]) {
    it(stem, () => {
      const text = readFileSync(new URL(`./fixtures/${stem}.dsl`, import.meta.url), 'utf8');
      expect(parseIaslRawTableData(text)).toEqual(fixture(`${stem}.bin`));
    });
  }
  it('rejects a dump without a raw section or with a gap', () => {
    expect(() => parseIaslRawTableData('[000h 0000 004h] Signature : "IORT"')).toThrow(/Raw Table Data/);
    expect(() =>
      parseIaslRawTableData('Raw Table Data: Length 4 (0x4)\n\n    0010: 00 00 00 00  // ....'),
    ).toThrow(/offset 0x10/);
    expect(() =>
      parseIaslRawTableData('Raw Table Data: Length 8 (0x8)\n\n    0000: 00 00 00 00  // ....'),
    ).toThrow(/holds 4 bytes/);
  });
});

describe('QEMU virt smmuv3-legacy', () => {
  const table = parseIort(LEGACY);
  const topo = iortTopology(table);

  it('decodes the header and nodes', () => {
    expect(table.revision).toBe(3);
    expect(table.oemId).toBe('BOCHS ');
    expect(table.oemTableId).toBe('BXPC    ');
    expect(table.nodes.map((n) => [n.type, n.offset, n.length, n.revision])).toEqual([
      [IortNodeType.ITS_GROUP, 0x30, 0x18, 1],
      [IortNodeType.SMMU_V3, 0x48, 0x58, 4],
      [IortNodeType.PCI_ROOT_COMPLEX, 0xa0, 0x74, 3],
    ]);
    const its = table.nodes[0];
    expect(its !== undefined && 'itsIds' in its ? its.itsIds : null).toEqual([0]);
    const smmu = table.nodes[1];
    expect(smmu).toMatchObject({
      baseAddress: 0x9050000n,
      flags: 1,
      model: 0,
      eventGsiv: 0x6a,
      priGsiv: 0x6b,
      gerrGsiv: 0x6d,
      syncGsiv: 0x6c,
      proximityDomain: 0,
      idMappingIndex: 0,
      mappings: [{ inputBase: 0, idCount: 0xffff, outputBase: 0, outputReference: 0x30, flags: 0 }],
    });
    const rc = table.nodes[2];
    expect(rc).toMatchObject({
      atsAttribute: 0,
      pciSegment: 0,
      memoryAddressLimit: 0x40,
      pasidCapabilities: null,
      memoryAccess: { cacheCoherency: 1, hints: 0, memoryFlags: 3 },
    });
    expect(rc?.mappings.map((m) => [m.inputBase, m.idCount, m.outputBase, m.outputReference])).toEqual([
      [0, 0x1ff, 0, 0x48],
      [0x1000, 0xff, 0x1000, 0x48],
      [0x200, 0xdff, 0x200, 0x30],
      [0x1100, 0xeeff, 0x1100, 0x30],
    ]);
  });

  it('produces one SMMU instance with the GSIVs, coherent, IORT HTTU override none', () => {
    expect(topo.source).toBe('iort');
    expect(topo.smmus).toEqual([
      {
        index: 0,
        name: 'iort@0x48',
        base: 0x9050000n,
        size: 0x20000n,
        irqs: { eventq: 0x6a, priq: 0x6b, gerror: 0x6d, cmdqSync: 0x6c },
        coherent: true,
        httu: 'none',
        options: { skipPrefetch: false, page0RegsOnly: false },
        proximityDomain: null,
        model: 0,
      },
    ]);
    expect(topo.rootComplexes).toEqual([
      { name: 'iort@0xa0', segment: 0, ats: false, pri: false, pasidForwarding: false, pasidMaxWidth: 0 },
    ]);
    expect(topo.platformMasters).toEqual([]);
    expect(topo.reservedRanges).toEqual([]);
  });

  it('maps RIDs of pcie.0 and pcie.1 to the SMMU, pxb bus 2 and the rest to the ITS only', () => {
    const smmu = topo.smmus[0];
    expect(topo.resolvePci(0, 0x0008)).toEqual({
      smmu,
      streamIds: [0x8],
      pasidBits: 0,
      canStall: false,
      ats: false,
    });
    expect(topo.resolvePci(0, 0x01ff)?.streamIds).toEqual([0x1ff]);
    expect(topo.resolvePci(0, 0x1000)?.streamIds).toEqual([0x1000]);
    expect(topo.resolvePci(0, 0x10ff)?.streamIds).toEqual([0x10ff]);
    expect(topo.resolvePci(0, 0x0200)).toBeNull();
    expect(topo.resolvePci(0, 0x1100)).toBeNull();
    expect(topo.resolvePci(1, 0x0008)).toBeNull();
  });

  it('maps a RID to the ITS DeviceID through the SMMU (RC -> SMMU -> ITS)', () => {
    const rc = table.nodes[2];
    if (rc === undefined) throw new Error('no rc');
    expect(iortMapId(table, rc, 0x0108, [IortNodeType.ITS_GROUP])).toEqual({
      node: table.nodes[0],
      id: 0x108,
    });
    expect(iortMapId(table, rc, 0x0300, [IortNodeType.ITS_GROUP])).toEqual({
      node: table.nodes[0],
      id: 0x300,
    });
    expect(iortMapId(table, rc, 0x0300, [IortNodeType.SMMU_V3])).toBeNull();
  });
});

describe('QEMU virt smmuv3-dev', () => {
  const topo = iortTopology(parseIort(DEV));
  it('has two SMMUs, pcie.0 behind the first and pcie.1 behind the second', () => {
    expect(topo.smmus.map((s) => [s.name, s.base, s.irqs])).toEqual([
      ['iort@0x48', 0xc000000n, { eventq: 0x90, priq: 0x91, gerror: 0x93, cmdqSync: 0x92 }],
      ['iort@0xa0', 0xc020000n, { eventq: 0x94, priq: 0x95, gerror: 0x97, cmdqSync: 0x96 }],
    ]);
    expect(topo.resolvePci(0, 0x0010)?.smmu.index).toBe(0);
    expect(topo.resolvePci(0, 0x1010)?.smmu.index).toBe(1);
    expect(topo.resolvePci(0, 0x1010)?.streamIds).toEqual([0x1010]);
    expect(topo.resolvePci(0, 0x0250)).toBeNull();
  });
});

describe('QEMU virt its_off: the SMMU maps its own IDs to itself', () => {
  const table = parseIort(ITS_OFF);
  const topo = iortTopology(table);
  it('resolves PCI masters and reports the MSI loop as EINVAL', () => {
    expect(table.warnings).toEqual(['node count 3 but only 2 nodes fit in the table']);
    expect(topo.smmus.map((s) => s.base)).toEqual([0x9050000n]);
    expect(topo.resolvePci(0, 0x00ff)?.streamIds).toEqual([0xff]);
    expect(topo.resolvePci(0, 0x0100)?.streamIds).toEqual([0x100]);
    const smmu = table.nodes[0];
    if (smmu === undefined) throw new Error('no smmu');
    expectEinval(() => iortMapId(table, smmu, 5, [IortNodeType.ITS_GROUP]), /ID mapping loop/);
  });
});

describe('CIX Sky1 (revision 5, named components, ATS, RMR)', () => {
  const table = parseIort(CIX);
  const topo = iortTopology(table);

  it('decodes 19 nodes and two SMMUs', () => {
    expect(table.revision).toBe(5);
    expect(table.oemId).toBe('CIXTEK');
    expect(table.nodes).toHaveLength(19);
    expect(topo.smmus.map((s) => [s.name, s.base, s.irqs, s.coherent, s.httu])).toEqual([
      ['iort@0x48', 0xb010000n, { eventq: 0x6b, priq: 0x74, gerror: 0x70, cmdqSync: 0x6c }, true, 'none'],
      ['iort@0xdc', 0xb1b0000n, { eventq: 0x8d, priq: 0x96, gerror: 0x92, cmdqSync: 0x8e }, true, 'none'],
    ]);
  });

  it('declares ATS on the root complex and sets the fwspec flag', () => {
    expect(topo.rootComplexes).toEqual([
      { name: 'iort@0xa0', segment: 0, ats: true, pri: false, pasidForwarding: false, pasidMaxWidth: 0 },
    ]);
    const fw = topo.resolvePci(0, 0x0100);
    expect(fw).toEqual({ smmu: topo.smmus[0], streamIds: [0x100], pasidBits: 0, canStall: false, ats: true });
  });

  it('gives each named component the StreamIDs of its single mappings', () => {
    const table2 = topo.platformMasters.map((m) => [m.name, m.fwspec.smmu.index, m.fwspec.streamIds]);
    expect(table2).toEqual([
      ['\\_SB_.DPU0', 1, [0, 1, 3, 4, 5]],
      ['\\_SB_.AEU0', 1, [2]],
      ['\\_SB_.DPU1', 1, [6, 7, 9, 10, 11]],
      ['\\_SB_.AEU1', 1, [8]],
      ['\\_SB_.DPU2', 1, [12, 13, 15, 16, 17]],
      ['\\_SB_.AEU2', 1, [14]],
      ['\\_SB_.DPU3', 1, [18, 19, 21, 22, 23]],
      ['\\_SB_.AEU3', 1, [20]],
      ['\\_SB_.DPU4', 1, [24, 25, 27, 28, 29]],
      ['\\_SB_.AEU4', 1, [26]],
      ['\\_SB_.NPU0', 1, [30]],
      ['\\_SB_.ISPM', 1, [31]],
      ['\\_SB_.CBD0', 1, [33]],
      ['\\_SB_.CBD2', 1, [34]],
    ]);
    expect(topo.resolvePlatform('\\_SB_.NPU0')).toEqual({
      smmu: topo.smmus[1],
      streamIds: [30],
      pasidBits: 0,
      canStall: false,
      ats: false,
    });
    expect(topo.resolvePlatform('\\_SB_.NONE')).toBeNull();
  });

  it('turns the RMR node into a bypass reservation for the display StreamIDs', () => {
    expect(topo.reservedRanges).toEqual([
      {
        smmu: topo.smmus[1],
        streamIds: [0, 1, 6, 7, 12, 13, 18, 19, 24, 25],
        regions: [{ base: 0x84800000n, length: 0x800000n }],
        flags: 0x11,
      },
    ]);
  });

  it('ignores RMR nodes in tables older than revision 5 (before E.d)', () => {
    const old = patched(CIX, (_dv, b) => {
      b[8] = 3;
    });
    expect(iortTopology(parseIort(old)).reservedRanges).toEqual([]);
  });
});

describe('mapping rules', () => {
  it('skips the SMMU DeviceID mapping named by the ID mapping index when some GSIV is 0', () => {
    // In the legacy table the SMMU's only mapping (index 0) is its MSI mapping; with a zero PRI GSIV
    // Linux skips it, so the RID can no longer reach the ITS through the SMMU.
    const t = parseIort(
      patched(LEGACY, (dv) => {
        dv.setUint32(0x78, 0, true);
      }),
    );
    const rc = t.nodes[2];
    if (rc === undefined) throw new Error('no rc');
    expect(iortMapId(t, rc, 0x10, [IortNodeType.ITS_GROUP])).toBeNull();
    expect(iortTopology(t).smmus[0]?.irqs).toEqual({ eventq: 0x6a, gerror: 0x6d, cmdqSync: 0x6c });
    expect(iortTopology(t).resolvePci(0, 0x10)?.streamIds).toEqual([0x10]);
  });

  it('rejects an ID mapping index beyond the mappings when it is used', () => {
    expectEinval(
      () =>
        parseIort(
          patched(LEGACY, (dv) => {
            dv.setUint32(0x78, 0, true);
            dv.setUint32(0x88, 1, true);
          }),
        ),
      /ID mapping index 1 overflows/,
    );
  });

  it('lets a range starting at the last ID of the previous range win (id_count off-by-one workaround)', () => {
    // RC mapping 0: 0x000..0x1ff -> SMMU; make mapping 2 start at 0x1ff (-> ITS) instead of 0x200.
    const t = parseIort(
      patched(LEGACY, (dv) => {
        dv.setUint32(0xec, 0x1ff, true);
        dv.setUint32(0xf4, 0x7000, true);
      }),
    );
    const topo = iortTopology(t);
    expect(topo.resolvePci(0, 0x1ff)).toBeNull();
    const rc = t.nodes[2];
    if (rc === undefined) throw new Error('no rc');
    expect(iortMapId(t, rc, 0x1ff, [IortNodeType.ITS_GROUP])).toEqual({ node: t.nodes[0], id: 0x7000 });
    expect(topo.resolvePci(0, 0x1fe)?.streamIds).toEqual([0x1fe]);
  });

  it('keeps an end-of-range match when no other range claims the ID', () => {
    const topo = iortTopology(parseIort(LEGACY));
    expect(topo.resolvePci(0, 0x10ff)?.streamIds).toEqual([0x10ff]);
  });

  it('applies PCI single mappings regardless of the RID', () => {
    const t = parseIort(
      patched(LEGACY, (dv) => {
        dv.setUint32(0xc4 + 16, 1, true);
        dv.setUint32(0xc4 + 8, 0x77, true);
      }),
    );
    expect(iortTopology(t).resolvePci(0, 0x1234)?.streamIds).toEqual([0x77]);
  });

  it('ignores single mappings on SMMU nodes when translating', () => {
    const t = parseIort(
      patched(LEGACY, (dv) => {
        dv.setUint32(0x8c + 16, 1, true);
      }),
    );
    const rc = t.nodes[2];
    if (rc === undefined) throw new Error('no rc');
    expect(iortMapId(t, rc, 0x10, [IortNodeType.ITS_GROUP])).toBeNull();
  });

  it('decodes the HTTU override, proximity domain and implementation models', () => {
    const topo = (flags: number, model: number): ReturnType<typeof iortTopology> =>
      iortTopology(
        parseIort(
          patched(LEGACY, (dv) => {
            dv.setUint32(0x60, flags, true);
            dv.setUint32(0x70, model, true);
            dv.setUint32(0x84, 3, true);
          }),
        ),
      );
    expect(topo(0b0011, 0).smmus[0]).toMatchObject({ httu: 'ha', coherent: true, proximityDomain: null });
    expect(topo(0b1100, 0).smmus[0]).toMatchObject({ httu: 'ha-hd', coherent: false, proximityDomain: 3 });
    expect(topo(0, 1).smmus[0]).toMatchObject({
      options: { skipPrefetch: true, page0RegsOnly: false },
      size: 0x20000n,
    });
    expect(topo(0, 2).smmus[0]).toMatchObject({
      options: { skipPrefetch: false, page0RegsOnly: true },
      size: 0x10000n,
    });
  });

  it('uses one combined interrupt for Cavium CN99xx when all GSIVs are equal', () => {
    const t = parseIort(
      patched(LEGACY, (dv) => {
        dv.setUint32(0x70, 2, true);
        for (const o of [0x74, 0x78, 0x7c, 0x80]) dv.setUint32(o, 0x99, true);
      }),
    );
    expect(iortTopology(t).smmus[0]?.irqs).toEqual({ combined: 0x99 });
  });

  it('takes stall and PASID bits of named components from the node flags', () => {
    const t = parseIort(
      patched(CIX, (dv) => {
        dv.setUint32(0x130, (20 << 1) | 1, true);
      }),
    );
    expect(iortTopology(t).resolvePlatform('\\_SB_.DPU0')).toMatchObject({ pasidBits: 20, canStall: true });
  });
});

describe('malformed tables', () => {
  it('bad signature', () => {
    expectEinval(() => parseIort(patched(LEGACY, (_dv, b) => b.set([0x58], 0))), /bad signature "XORT"/);
  });
  it('bad checksum', () => {
    expectEinval(
      () => parseIort(patched(LEGACY, (_dv, b) => b.set([0x4d], 9), false)),
      /bad checksum \(bytes sum to 0x1/,
    );
  });
  it('too short / length beyond the buffer', () => {
    expectEinval(() => parseIort(LEGACY.slice(0, 40)), /shorter than the 48-byte header/);
    expectEinval(() => parseIort(LEGACY.slice(0, 200)), /header length 276 outside the 200-byte buffer/);
  });
  it('a node beyond the table', () => {
    expect(parseIort(patched(LEGACY, (dv) => dv.setUint32(36, 4, true))).warnings).toEqual([
      'node count 4 but only 3 nodes fit in the table',
    ]);
    expectEinval(
      () => parseIort(patched(LEGACY, (dv) => dv.setUint32(40, 0x110, true))),
      /node 0 at 0x110 is outside the table/,
    );
    expectEinval(
      () => parseIort(patched(LEGACY, (dv) => dv.setUint16(0xa1, 0x80, true))),
      /node 2 at 0xa0 with length 0x80 is outside the table/,
    );
  });
  it('mappings outside their node', () => {
    expectEinval(
      () => parseIort(patched(LEGACY, (dv) => dv.setUint32(0xa8, 5, true))),
      /5 ID mappings at 0x24 lie outside the node/,
    );
  });
  it('a mapping to a missing node', () => {
    expectEinval(
      () => parseIort(patched(LEGACY, (dv) => dv.setUint32(0xd0, 0x50, true))),
      /mapping 0 references 0x50, which is not a node/,
    );
  });
  it('an unterminated named-component name', () => {
    expectEinval(
      () =>
        parseIort(
          patched(CIX, (_dv, b) => {
            b.fill(0x41, 0x13d, 0x148);
          }),
        ),
      /device name is not NUL-terminated/,
    );
  });
});
