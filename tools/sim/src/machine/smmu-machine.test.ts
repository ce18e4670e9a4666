// The SMMUv3 machine builder on every IORT / device-tree fixture of @iommu-ts/arm-smmu-v3 and on the
// built-in Arm platform. Expected counts are derived here from the fixtures' text (.dsl field
// listings or raw dumps, .dts sources), independently of the parsers the builder uses.

import { readFileSync } from 'node:fs';
import { parseFdt, parseIort } from '@iommu-ts/arm-smmu-v3';
import { DmaDataDirection, iommuDmaMapPage, iommuDmaUnmapPage } from '@iommu-ts/iommu-core';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultArmPlatform } from '../platform/default-arm.js';
import type { DtPlatform, IortPlatform } from '../platform/platform.js';
import type { SimMachine } from './machine.js';
import { buildSmmuMachine } from './smmu-machine.js';

const dir = new URL('../../../../packages/arm-smmu-v3/src/firmware/fixtures/', import.meta.url);
const text = (f: string): string => readFileSync(new URL(f, dir), 'utf8');
const bin = (f: string): Uint8Array => new Uint8Array(readFileSync(new URL(f, dir)));

const live: SimMachine[] = [];
afterEach(() => {
  for (const m of live.splice(0)) m.dispose();
});

function iortPlatform(stem: string): IortPlatform {
  const bytes = bin(`${stem}.bin`);
  const iort = parseIort(bytes);
  return {
    kind: 'smmuv3',
    name: stem,
    source: { format: 'iort', form: 'binary', file: `${stem}.bin`, oem: iort.oemId, revision: iort.revision },
    iort,
    bytes,
  };
}

function dtPlatform(stem: string): DtPlatform {
  const bytes = bin(`${stem}.dtb`);
  return {
    kind: 'smmuv3',
    name: stem,
    source: { format: 'dtb', form: 'binary', file: `${stem}.dtb`, oem: null, revision: 17 },
    fdt: parseFdt(bytes),
    bytes,
  };
}

function build(p: IortPlatform | DtPlatform): SimMachine {
  const m = buildSmmuMachine(p, { seed: 7 });
  live.push(m);
  return m;
}

interface Expected {
  units: number;
  scopes: number;
  reservedRegions: number;
}

/** Counts from an iasl field listing: node headers (`Type : 04`), mappings, RMR `Base Address`. */
function countsFromDsl(dsl: string): Expected {
  const nodes: { offset: number; type: number; refs: number[]; rmrRanges: number }[] = [];
  for (const line of dsl.split('\n')) {
    const t = /^\[(\w+)h [^\]]*\]\s+Type : (\w+)/.exec(line);
    if (t) {
      nodes.push({
        offset: Number.parseInt(t[1] as string, 16),
        type: Number.parseInt(t[2] as string, 16),
        refs: [],
        rmrRanges: 0,
      });
      continue;
    }
    const cur = nodes.at(-1);
    const r = /Output Reference : (\w+)/.exec(line);
    if (r && cur) cur.refs.push(Number.parseInt(r[1] as string, 16));
    if (/Base Address :/.test(line) && cur?.type === 6) cur.rmrRanges++;
  }
  const smmus = new Set(nodes.filter((n) => n.type === 4).map((n) => n.offset));
  return {
    units: smmus.size,
    scopes: nodes
      .filter((n) => n.type === 1 || n.type === 2)
      .reduce((s, n) => s + n.refs.filter((r) => smmus.has(r)).length, 0),
    reservedRegions: nodes.reduce((s, n) => s + n.rmrRanges, 0),
  };
}

/** Counts from the "Raw Table Data" hex dump of a .dsl, walking node headers by hand. */
function countsFromRawDump(dsl: string): Expected & { namedComponents: number } {
  const bytes: number[] = [];
  for (const line of dsl.split('\n')) {
    const m = /^\s+[0-9A-F]{4}: ((?:[0-9A-F]{2} ?)+)/.exec(line);
    if (m)
      bytes.push(
        ...(m[1] as string)
          .trim()
          .split(/\s+/)
          .map((h) => Number.parseInt(h, 16)),
      );
  }
  const u16 = (o: number) => (bytes[o] ?? 0) | ((bytes[o + 1] ?? 0) << 8);
  const u32 = (o: number) => (u16(o) | (u16(o + 2) << 16)) >>> 0;
  const nodes: { off: number; type: number }[] = [];
  for (let off = u32(40), i = 0; i < u32(36); i++) {
    nodes.push({ off, type: bytes[off] ?? 0 });
    off += u16(off + 1);
  }
  const smmus = new Set(nodes.filter((n) => n.type === 4).map((n) => n.off));
  let scopes = 0;
  let reservedRegions = 0;
  for (const n of nodes) {
    const count = u32(n.off + 8);
    const at = u32(n.off + 12);
    if (n.type === 1 || n.type === 2)
      for (let k = 0; k < count; k++) if (smmus.has(u32(n.off + at + 20 * k + 12))) scopes++;
    if (n.type === 6) reservedRegions += u32(n.off + 20);
  }
  return {
    units: smmus.size,
    scopes,
    reservedRegions,
    namedComponents: nodes.filter((n) => n.type === 1).length,
  };
}

/** Counts from a .dts: enabled arm,smmu-v3 nodes, iommus specifiers and iommu-map entries naming them. */
function countsFromDts(dts: string): Expected & { disabledUnits: number } {
  interface Node {
    label: string | null;
    lines: string[];
  }
  const all: Node[] = [];
  const stack: Node[] = [];
  for (const raw of dts.split('\n')) {
    const line = raw.trim();
    const open = /^(?:(\w+):\s*)?[\w@,/.-]+\s*\{$/.exec(line);
    if (open) {
      const n = { label: open[1] ?? null, lines: [] };
      all.push(n);
      stack.push(n);
    } else if (line === '};') stack.pop();
    else stack.at(-1)?.lines.push(line);
  }
  const has = (n: Node, re: RegExp) => n.lines.some((l) => re.test(l));
  const disabled = (n: Node) => has(n, /status = "disabled"/);
  const smmu = all.filter((n) => has(n, /"arm,smmu-v3"/));
  const live = new Set(smmu.filter((n) => !disabled(n)).map((n) => n.label));
  let scopes = 0;
  for (const n of all) {
    if (disabled(n)) continue;
    for (const l of n.lines) {
      const io = /^iommus = (.*);$/.exec(l);
      if (io)
        scopes += [...(io[1] as string).matchAll(/&(\w+)/g)].filter((m) => live.has(m[1] as string)).length;
      const map = /^iommu-map = (.*);$/.exec(l);
      if (map)
        scopes += [...(map[1] as string).matchAll(/&(\w+)/g)].filter((m) => live.has(m[1] as string)).length;
    }
  }
  return { units: live.size, scopes, reservedRegions: 0, disabledUnits: smmu.length - live.size };
}

describe('IORT fixtures', () => {
  for (const stem of [
    'qemu-virt-iort-smmuv3-dev',
    'qemu-virt-iort-smmuv3-legacy',
    'qemu-virt-iort-its-off',
  ]) {
    it(`${stem}: builds; counts match the iasl listing; standard devices DMA through their SMMU`, () => {
      const m = build(iortPlatform(stem));
      const want = countsFromDsl(text(`${stem}.dsl`));
      expect(want.units).toBeGreaterThan(0);
      expect(m.topology.counts).toMatchObject(want);
      expect(m.units.length).toBe(want.units);
      expect(m.units.every((u) => u.error === null)).toBe(true);
      expect(m.endpoints.map((e) => e.name)).toEqual(['nic0', 'nic1', 'nvme0', 'accel0']);
      // No root complex of these tables declares ATS: no endpoint gets it, so no PRI either.
      expect(m.endpoints.some((e) => e.ats || e.pri)).toBe(false);
      const nic = m.endpoints[0] as SimMachine['endpoints'][number];
      const pa = m.memory.allocPages(0);
      const iova = iommuDmaMapPage(nic.device, pa, 0x1000, DmaDataDirection.FROM_DEVICE);
      nic.endpoint.writeSync(iova + 0x10n, new Uint8Array([0xca, 0xfe]));
      expect([...m.memory.readBytes(pa + 0x10, 2)]).toEqual([0xca, 0xfe]);
    });
  }

  it('cix-sky1: counts match the raw dump; named components become firmware endpoints; the RMR is listed', () => {
    const m = build(iortPlatform('cix-sky1-iort'));
    const want = countsFromRawDump(text('cix-sky1-iort.dsl'));
    // The file's header comment: two SMMUv3 nodes, 14 named components, one RMR range.
    expect(want).toMatchObject({ units: 2, namedComponents: 14, reservedRegions: 1 });
    expect(m.topology.counts).toMatchObject(want);
    expect(m.topology.counts['namedComponents']).toBe(14);
    expect(m.topology.reserved).toEqual([
      expect.objectContaining({ start: 0x8480_0000n, end: 0x8480_0000n + 0x80_0000n - 1n, kind: 'RMR' }),
    ]);
    const fw = m.endpoints.filter((e) => e.fromFirmware);
    expect(fw.map((e) => e.name)).toContain('DPU0');
    expect(fw.every((e) => e.role === 'device' && e.unit === 'smmu1')).toBe(true);
    // PCIe root complex declares ATS: the NICs and accel0 get it, and PRI works on that SMMU.
    const accel = m.endpoints.find((e) => e.name === 'accel0');
    expect(accel).toMatchObject({ ats: true, pasid: true, pri: true, unit: 'smmu0' });
    expect(m.topology.units.reduce((s, u) => s + u.scopes.length, 0)).toBe(want.scopes);
  });
});

describe('device-tree fixtures', () => {
  for (const stem of ['ascend310-sdma-smmu', 'fvp-base-revc-smmu', 'rk3588-smmu']) {
    it(`${stem}: builds; counts match the .dts`, () => {
      const m = build(dtPlatform(stem));
      const want = countsFromDts(text(`${stem}.dts`));
      expect(want.units).toBe(1);
      expect(m.topology.counts).toMatchObject(want);
      expect(m.topology.units.reduce((s, u) => s + u.scopes.length, 0)).toBe(want.scopes);
    });
  }

  it('Ascend310: the stall- and PASID-capable SDMA master is stall0; no PCI host bridge, no standard devices', () => {
    const m = build(dtPlatform('ascend310-sdma-smmu'));
    expect(m.endpoints.map((e) => [e.name, e.role, e.ids, e.stall, e.pasid, e.fromFirmware])).toEqual([
      ['stall0', 'stall-accel', [0x7f46], true, true, true],
    ]);
    expect(m.topology.notes.some((n) => /no PCI root complex/.test(n))).toBe(true);
  });

  it('FVP: ats-supported host bridge gives the NICs and accel0 ATS; nvme0 none', () => {
    const m = build(dtPlatform('fvp-base-revc-smmu'));
    const caps = Object.fromEntries(m.endpoints.map((e) => [e.name, [e.ats, e.pri]]));
    expect(caps).toEqual({
      nic0: [true, false],
      nic1: [true, false],
      nvme0: [false, false],
      accel0: [true, true],
    });
  });
});

describe('default Arm platform', () => {
  it('its IORT has a valid checksum and parses back', () => {
    const p = defaultArmPlatform();
    expect(p.bytes.reduce((s, b) => (s + b) & 0xff, 0)).toBe(0);
    expect(p.name).toBe('arm-smmuv3');
    expect(p.source).toMatchObject({ format: 'iort', form: 'builtin', file: null, revision: 5 });
    expect(parseIort(p.bytes).nodes.map((n) => n.type)).toEqual([0, 4, 2, 1]);
  });

  it('one SMMU; nic0/nic1/nvme0/accel0/stall0 with the right capabilities', () => {
    const m = build(defaultArmPlatform());
    expect(m.units.map((u) => [u.name, u.base, u.error])).toEqual([['smmu0', 0x0900_0000n, null]]);
    expect(m.topology.counts).toMatchObject({
      units: 1,
      scopes: 2,
      reservedRegions: 0,
      its: 1,
      namedComponents: 1,
    });
    const caps = Object.fromEntries(
      m.endpoints.map((e) => [
        e.name,
        { role: e.role, ats: e.ats, pasid: e.pasid, pri: e.pri, stall: e.stall },
      ]),
    );
    expect(caps).toEqual({
      nic0: { role: 'nic', ats: true, pasid: false, pri: false, stall: false },
      nic1: { role: 'nic', ats: true, pasid: false, pri: false, stall: false },
      nvme0: { role: 'nvme', ats: false, pasid: false, pri: false, stall: false },
      accel0: { role: 'accel', ats: true, pasid: true, pri: true, stall: false },
      stall0: { role: 'stall-accel', ats: false, pasid: true, pri: false, stall: true },
    });
    expect(m.endpoints.find((e) => e.name === 'stall0')?.ids).toEqual([0x1_0000]);
    // Each PCI endpoint is its own IOMMU group (ACS root ports), as VFIO needs.
    const groups = new Set(m.endpoints.map((e) => e.device.iommuGroup));
    expect(groups.size).toBe(m.endpoints.length);
  });

  it('DMA API map + endpoint write lands in RAM; unmap sends TLBI, ATC_INV and SYNC; counters follow', () => {
    const m = build(defaultArmPlatform());
    const nic = m.endpoints.find((e) => e.name === 'nic0') as SimMachine['endpoints'][number];
    const pa = m.memory.allocPages(0);
    const iova = iommuDmaMapPage(nic.device, pa, 0x1000, DmaDataDirection.BIDIRECTIONAL);
    const before = m.counters();
    nic.endpoint.writeSync(iova + 0x40n, new Uint8Array([1, 2, 3, 4]));
    expect([...m.memory.readBytes(pa + 0x40, 4)]).toEqual([1, 2, 3, 4]);
    iommuDmaUnmapPage(nic.device, iova, 0x1000, DmaDataDirection.BIDIRECTIONAL);
    m.settle();
    const after = m.counters();
    expect(after.bytesWritten - before.bytesWritten).toBe(4);
    expect(after.atsRequests).toBeGreaterThan(before.atsRequests);
    expect((after.invalidations['TLBI_NH_VA'] ?? 0) - (before.invalidations['TLBI_NH_VA'] ?? 0)).toBe(1);
    expect((after.invalidations['ATC_INV'] ?? 0) - (before.invalidations['ATC_INV'] ?? 0)).toBe(1);
    // The IOVA is gone: the next DMA faults and the fault is tallied by reason and by event type.
    expect(nic.endpoint.dmaWrite(iova, new Uint8Array([9])).fault).toBeDefined();
    m.settle();
    const end = m.counters();
    expect(Object.values(end.dmaFaults).reduce((s, n) => s + n, 0)).toBe(1);
    expect(end.atcInvalidations).toBeGreaterThan(0);
  });

  it('stall0: an unmapped DMA stalls, is terminated by the driver and counted as a translation fault', () => {
    const m = build(defaultArmPlatform());
    const s = m.endpoints.find((e) => e.name === 'stall0') as SimMachine['endpoints'][number];
    expect(() => s.endpoint.writeSync(0x1234_0000n, new Uint8Array([1]))).toThrow();
    m.settle();
    const c = m.counters();
    expect(c.hwFaults['F_TRANSLATION']).toBe(1);
    expect(c.stalls).toBe(1);
    // the fault response (RESUME / STALL_TERM) is a command but not an invalidation
    expect(c.invalidations['STALL_TERM'] ?? c.invalidations['RESUME']).toBeUndefined();
    expect(m.units[0]?.counters().stalls).toBe(1);
    expect(Object.values(c.dmaFaults).reduce((a, n) => a + n, 0)).toBe(1);
  });
});
