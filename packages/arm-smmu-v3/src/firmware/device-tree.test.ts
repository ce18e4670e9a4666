import { readFileSync } from 'node:fs';
import { ErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import { deviceTreeTopology, parseFdt, readCells, readStringList } from './device-tree.js';
import { ASCEND310_SDMA, DT_FIXTURES, FVP_BASE_REVC, RK3588 } from './test-dt-fixtures.js';
import { type DtNodeSpec, writeDtb } from './test-dtb-writer.js';

const dtb = (stem: string): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`./fixtures/${stem}.dtb`, import.meta.url)));

function expectErrno(f: () => unknown, code: string, message: RegExp): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ErrnoError);
    expect((e as ErrnoError).code).toBe(code);
    expect((e as ErrnoError).message).toMatch(message);
    return;
  }
  throw new Error(`expected ${code}`);
}

/** A copy of `tree` with `fn` applied to the node at `path` (a list of child names). */
function edit(tree: DtNodeSpec, path: string[], fn: (n: DtNodeSpec) => DtNodeSpec): DtNodeSpec {
  if (path.length === 0) return fn(tree);
  const [head, ...rest] = path;
  return { ...tree, children: (tree.children ?? []).map((c) => (c.name === head ? edit(c, rest, fn) : c)) };
}
const setProp = (
  n: DtNodeSpec,
  name: string,
  value: DtNodeSpec['props'] extends readonly (readonly [string, infer V])[] | undefined ? V : never,
): DtNodeSpec => ({
  ...n,
  props: [...(n.props ?? []).filter(([k]) => k !== name), [name, value]],
});
const dropProp = (n: DtNodeSpec, name: string): DtNodeSpec => ({
  ...n,
  props: (n.props ?? []).filter(([k]) => k !== name),
});

describe('fixtures', () => {
  for (const [stem, tree] of Object.entries(DT_FIXTURES)) {
    it(`${stem}.dtb is the writer's encoding of its .dts`, () => {
      expect(dtb(stem)).toEqual(writeDtb(tree));
    });
  }
});

describe('FDT parser', () => {
  it('reads the header, nodes, properties and phandles', () => {
    const fdt = parseFdt(dtb('fvp-base-revc-smmu'));
    expect([fdt.version, fdt.lastCompVersion, fdt.bootCpuId, fdt.memReserve]).toEqual([17, 16, 0, []]);
    expect(fdt.allNodes().map((n) => n.path)).toEqual([
      '/',
      '/interrupt-controller@2f000000',
      '/interrupt-controller@2f000000/msi-controller@2f020000',
      '/pci@40000000',
      '/iommu@2b400000',
    ]);
    expect(readStringList(fdt.root.props.get('compatible') ?? new Uint8Array())).toEqual([
      'arm,fvp-base-revc',
      'arm,vexpress',
    ]);
    expect(fdt.nodeByPhandle(3)?.path).toBe('/iommu@2b400000');
    const smmu = fdt.nodeByPath('/iommu@2b400000');
    expect(readCells(smmu?.props.get('reg') ?? new Uint8Array())).toEqual([0, 0x2b400000, 0, 0x100000]);
    expect(smmu?.props.get('dma-coherent')).toEqual(new Uint8Array());
  });

  it('reads memory reservations', () => {
    const fdt = parseFdt(writeDtb(FVP_BASE_REVC, [[0x80000000n, 0x10000n]], 3));
    expect(fdt.memReserve).toEqual([{ address: 0x80000000n, size: 0x10000n }]);
    expect(fdt.bootCpuId).toBe(3);
  });

  const blob = dtb('ascend310-sdma-smmu');
  const mutate = (f: (dv: DataView, b: Uint8Array) => void): Uint8Array => {
    const b = blob.slice();
    f(new DataView(b.buffer), b);
    return b;
  };
  const offStruct = new DataView(blob.buffer, blob.byteOffset).getUint32(8, false);
  it('rejects malformed blobs with EINVAL', () => {
    expectErrno(() => parseFdt(blob.slice(0, 20)), 'EINVAL', /shorter than the 40-byte header/);
    expectErrno(
      () => parseFdt(mutate((dv) => dv.setUint32(0, 0xdeadbeef))),
      'EINVAL',
      /bad magic 0xdeadbeef/,
    );
    expectErrno(() => parseFdt(blob.slice(0, blob.length - 4)), 'EINVAL', /total size .* outside/);
    expectErrno(() => parseFdt(mutate((dv) => dv.setUint32(20, 15))), 'EINVAL', /unsupported version 15/);
    expectErrno(
      () => parseFdt(mutate((dv) => dv.setUint32(36, blob.length))),
      'EINVAL',
      /structure block .* outside/,
    );
    expectErrno(() => parseFdt(mutate((dv) => dv.setUint32(offStruct, 7))), 'EINVAL', /unknown token 0x7/);
    expectErrno(
      () => parseFdt(mutate((dv) => dv.setUint32(offStruct, 2))),
      'EINVAL',
      /FDT_END_NODE .* without an open node/,
    );
    // first property of the root: bump its name offset beyond the strings block
    expectErrno(
      () => parseFdt(mutate((dv) => dv.setUint32(offStruct + 8 + 8, 0xffff))),
      'EINVAL',
      /name offset 65535 outside the strings block/,
    );
    expectErrno(
      () => parseFdt(mutate((dv) => dv.setUint32(offStruct + 8 + 4, 0x10000))),
      'EINVAL',
      /runs past the structure block/,
    );
    const sizeStruct = new DataView(blob.buffer, blob.byteOffset).getUint32(36, false);
    expectErrno(
      () => parseFdt(mutate((dv) => dv.setUint32(offStruct + sizeStruct - 4, 4))),
      'EINVAL',
      /no FDT_END/,
    );
  });
});

describe('SMMUv3 bindings', () => {
  it('FVP Base RevC: one coherent SMMU, PCI RIDs map 1:1 with ATS', () => {
    const topo = deviceTreeTopology(parseFdt(dtb('fvp-base-revc-smmu')));
    expect(topo.source).toBe('device-tree');
    expect(topo.smmus).toEqual([
      {
        index: 0,
        name: '/iommu@2b400000',
        base: 0x2b400000n,
        size: 0x100000n,
        irqs: { eventq: 106, gerror: 111, priq: 107, cmdqSync: 109 },
        coherent: true,
        httu: null,
        options: { skipPrefetch: false, page0RegsOnly: false },
        proximityDomain: null,
        model: 0,
      },
    ]);
    expect(topo.rootComplexes).toEqual([
      { name: '/pci@40000000', segment: 0, ats: true, pri: false, pasidForwarding: false, pasidMaxWidth: 0 },
    ]);
    expect(topo.resolvePci(0, 0x0108)).toEqual({
      smmu: topo.smmus[0],
      streamIds: [0x108],
      pasidBits: 0,
      canStall: false,
      ats: true,
    });
    expect(topo.resolvePci(0, 0xffff)?.streamIds).toEqual([0xffff]);
    expect(topo.resolvePci(1, 0)).toBeNull();
    expect(topo.platformMasters).toEqual([]);
  });

  it('RK3588: 4-cell GIC specifiers, disabled nodes skipped, per-domain iommu-map windows', () => {
    const topo = deviceTreeTopology(parseFdt(dtb('rk3588-smmu')));
    expect(topo.smmus.map((s) => [s.name, s.base, s.size, s.irqs, s.coherent])).toEqual([
      [
        '/iommu@fc900000',
        0xfc900000n,
        0x200000n,
        { eventq: 401, gerror: 403, priq: 406, cmdqSync: 399 },
        false,
      ],
    ]);
    expect(topo.rootComplexes.map((r) => [r.name, r.segment, r.ats])).toEqual([
      ['/pcie@fe150000', 0, false],
      ['/pcie@fe160000', 1, false],
      ['/pcie@fe180000', 3, false],
    ]);
    expect(topo.resolvePci(0, 0x0100)?.streamIds).toEqual([0x100]);
    expect(topo.resolvePci(0, 0x1000)).toBeNull();
    expect(topo.resolvePci(1, 0x1100)?.streamIds).toEqual([0x1100]);
    expect(topo.resolvePci(1, 0x0100)).toBeNull();
    expect(topo.resolvePci(3, 0x3001)).toMatchObject({ streamIds: [0x3001], ats: false });
    expect(topo.resolvePci(2, 0x2000)).toBeNull();
    expect(topo.platformMasters).toEqual([]);
  });

  it('Ascend310 SDMA: iommus StreamID, pasid-num-bits and dma-can-stall', () => {
    const topo = deviceTreeTopology(parseFdt(dtb('ascend310-sdma-smmu')));
    expect(topo.smmus[0]).toMatchObject({ base: 0x2b400000n, size: 0x20000n, coherent: true });
    expect(topo.platformMasters).toEqual([
      {
        name: '/dma-controller@880e0000',
        fwspec: { smmu: topo.smmus[0], streamIds: [0x7f46], pasidBits: 16, canStall: true, ats: false },
      },
    ]);
    expect(topo.resolvePlatform('/dma-controller@880e0000')?.streamIds).toEqual([0x7f46]);
    expect(topo.resolvePlatform('/nope')).toBeNull();
  });

  it('enabled endpoint with several iommus entries gets all StreamIDs in order', () => {
    const tree = edit(RK3588, ['pcie-ep@fe150000'], (n) =>
      setProp(setProp(n, 'status', 'okay'), 'iommus', { cells: [2, 5, 2, 9] }),
    );
    const topo = deviceTreeTopology(parseFdt(writeDtb(tree)));
    expect(
      topo.platformMasters.map((m) => [m.name, m.fwspec.streamIds, m.fwspec.pasidBits, m.fwspec.canStall]),
    ).toEqual([['/pcie-ep@fe150000', [5, 9], 0, false]]);
  });

  it('iommu-map-mask folds RIDs before lookup; a base the mask cuts is EFAULT', () => {
    const masked = edit(FVP_BASE_REVC, ['pci@40000000'], (n) =>
      setProp(setProp(n, 'iommu-map', { cells: [0x0, 3, 0x40, 0x8] }), 'iommu-map-mask', { cells: [0x7] }),
    );
    expect(deviceTreeTopology(parseFdt(writeDtb(masked))).resolvePci(0, 0x0105)?.streamIds).toEqual([0x45]);
    const bad = edit(FVP_BASE_REVC, ['pci@40000000'], (n) =>
      setProp(setProp(n, 'iommu-map', { cells: [0x100, 3, 0, 0x8] }), 'iommu-map-mask', { cells: [0xff] }),
    );
    const topo = deviceTreeTopology(parseFdt(writeDtb(bad)));
    expectErrno(() => topo.resolvePci(0, 1), 'EFAULT', /iommu-map-mask \(0xff\) ignores id-base \(0x100\)/);
  });

  it('iommu-map entry naming a missing phandle is ENODEV; a bad length is EINVAL', () => {
    const missing = edit(FVP_BASE_REVC, ['pci@40000000'], (n) =>
      setProp(n, 'iommu-map', { cells: [0, 42, 0, 0x10] }),
    );
    const topo = deviceTreeTopology(parseFdt(writeDtb(missing)));
    expectErrno(() => topo.resolvePci(0, 1), 'ENODEV', /phandle 42 names no node/);
    const short = edit(FVP_BASE_REVC, ['pci@40000000'], (n) => setProp(n, 'iommu-map', { cells: [0, 3, 0] }));
    expectErrno(() => deviceTreeTopology(parseFdt(writeDtb(short))), 'EINVAL', /not a multiple of 4 cells/);
  });

  it('#iommu-cells missing or not 1 is ENODEV (arm_smmu_device_dt_probe)', () => {
    const none = edit(FVP_BASE_REVC, ['iommu@2b400000'], (n) => dropProp(n, '#iommu-cells'));
    expectErrno(() => deviceTreeTopology(parseFdt(writeDtb(none))), 'ENODEV', /missing #iommu-cells/);
    const two = edit(FVP_BASE_REVC, ['iommu@2b400000'], (n) => setProp(n, '#iommu-cells', { cells: [2] }));
    expectErrno(
      () => deviceTreeTopology(parseFdt(writeDtb(two))),
      'ENODEV',
      /invalid #iommu-cells value \(2\)/,
    );
  });

  it('iommus errors: unknown phandle, short specifier, two SMMUs', () => {
    const unknown = edit(ASCEND310_SDMA, ['dma-controller@880e0000'], (n) =>
      setProp(n, 'iommus', { cells: [9, 1] }),
    );
    expectErrno(
      () => deviceTreeTopology(parseFdt(writeDtb(unknown))),
      'EINVAL',
      /iommus phandle 9 names no node/,
    );
    const short = edit(ASCEND310_SDMA, ['dma-controller@880e0000'], (n) =>
      setProp(n, 'iommus', { cells: [3] }),
    );
    expectErrno(
      () => deviceTreeTopology(parseFdt(writeDtb(short))),
      'EINVAL',
      /shorter than #iommu-cells = 1/,
    );
    const both = edit(
      edit(RK3588, ['iommu@fcb00000'], (n) => dropProp(n, 'status')),
      ['pcie-ep@fe150000'],
      (n) => setProp(dropProp(n, 'status'), 'iommus', { cells: [2, 1, 3, 1] }),
    );
    expectErrno(() => deviceTreeTopology(parseFdt(writeDtb(both))), 'EINVAL', /names two IOMMUs/);
  });

  it('driver options from DT quirk properties', () => {
    const quirky = edit(FVP_BASE_REVC, ['iommu@2b400000'], (n) =>
      setProp(setProp(n, 'hisilicon,broken-prefetch-cmd', true), 'cavium,cn9900-broken-page1-regspace', true),
    );
    expect(deviceTreeTopology(parseFdt(writeDtb(quirky))).smmus[0]?.options).toEqual({
      skipPrefetch: true,
      page0RegsOnly: true,
    });
  });
});
