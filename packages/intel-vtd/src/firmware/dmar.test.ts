import { readFileSync } from 'node:fs';
import { ErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import {
  acpiTableChecksum,
  type DmarDrhd,
  DmarScopeType,
  type DmarStructure,
  DmarType,
  parseDmar,
} from './dmar.js';

const fixture = (name: string): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`./fixtures/${name}`, import.meta.url)));

/** A DMAR table around the given structures, checksum fixed unless told otherwise. */
function buildDmar(
  structures: Uint8Array[],
  opts: { width?: number; flags?: number; fixSum?: boolean } = {},
): Uint8Array {
  const body = structures.reduce((n, s) => n + s.length, 0);
  const b = new Uint8Array(48 + body);
  b.set([0x44, 0x4d, 0x41, 0x52]);
  new DataView(b.buffer).setUint32(4, b.length, true);
  b[8] = 1;
  b.set(
    [...'TESTOE'].map((c) => c.charCodeAt(0)),
    10,
  );
  b[36] = opts.width ?? 0x26;
  b[37] = opts.flags ?? 0;
  let at = 48;
  for (const s of structures) {
    b.set(s, at);
    at += s.length;
  }
  if (opts.fixSum ?? true) b[9] = (0x100 - acpiTableChecksum(b)) & 0xff;
  return b;
}

function struct(type: number, fixed: number[], ...scopes: number[][]): Uint8Array {
  const len = 4 + fixed.length + scopes.reduce((n, s) => n + s.length, 0);
  return Uint8Array.from([type & 0xff, type >> 8, len & 0xff, len >> 8, ...fixed, ...scopes.flat()]);
}
const le64 = (v: bigint): number[] =>
  Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
const drhd = (flags: number, base: bigint, ...scopes: number[][]): Uint8Array =>
  struct(0, [flags, 0, 0, 0, ...le64(base)], ...scopes);
const scope = (type: number, bus: number, ...path: [number, number][]): number[] => [
  type,
  6 + 2 * path.length,
  0,
  0,
  0,
  bus,
  ...path.flat(),
];

function expectEinval(f: () => unknown, message: RegExp): void {
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(ErrnoError);
  expect((thrown as ErrnoError).code).toBe('EINVAL');
  expect((thrown as ErrnoError).message).toMatch(message);
}

const summary = (s: DmarStructure): [string, number, number] => [s.kind, s.offset, s.length];

describe('QEMU q35 DMAR', () => {
  const t = parseDmar(fixture('qemu-q35-dmar.bin'));
  it('decodes the header', () => {
    expect(t).toMatchObject({
      length: 120,
      revision: 1,
      checksum: 0x15,
      oemId: 'BOCHS ',
      oemTableId: 'BXPC    ',
      oemRevision: 1,
      aslCompilerId: 'BXPC',
      aslCompilerRevision: 1,
      hostAddressWidth: 39,
      flags: 1,
      intrRemap: true,
      x2apicOptOut: false,
      platformOptIn: false,
      warnings: [],
    });
    expect(t.structures.map(summary)).toEqual([
      ['drhd', 0x30, 0x40],
      ['atsr', 0x70, 8],
    ]);
  });
  it('decodes the DRHD and its scopes', () => {
    const d = t.structures[0] as DmarDrhd;
    expect(d).toMatchObject({
      type: DmarType.HARDWARE_UNIT,
      flags: 0,
      includePciAll: false,
      size: 0,
      registerSize: 4096n,
      segment: 0,
      registerBase: 0xfed90000n,
    });
    expect(d.scopes.map((s) => [s.type, s.offset, s.length, s.enumerationId, s.startBus, s.path])).toEqual([
      [DmarScopeType.IOAPIC, 0x40, 8, 0, 0xff, [{ device: 0, function: 0 }]],
      [DmarScopeType.ENDPOINT, 0x48, 8, 0, 0, [{ device: 0, function: 0 }]],
      [DmarScopeType.ENDPOINT, 0x50, 8, 0, 0, [{ device: 1, function: 0 }]],
      [DmarScopeType.ENDPOINT, 0x58, 8, 0, 0, [{ device: 0x1f, function: 0 }]],
      [DmarScopeType.ENDPOINT, 0x60, 8, 0, 0, [{ device: 0x1f, function: 2 }]],
      [DmarScopeType.ENDPOINT, 0x68, 8, 0, 0, [{ device: 0x1f, function: 3 }]],
    ]);
  });
  it('decodes the ATSR', () => {
    expect(t.structures[1]).toEqual({
      kind: 'atsr',
      type: DmarType.ROOT_ATS,
      offset: 0x70,
      length: 8,
      flags: 1,
      allPorts: true,
      segment: 0,
      scopes: [],
    });
  });
});

describe('ASRock X99 Extreme4 DMAR', () => {
  const t = parseDmar(fixture('asrock-x99-extreme4-dmar.bin'));
  it('decodes two units, an ATSR with root ports and an RHSA', () => {
    expect(t.hostAddressWidth).toBe(46);
    expect([t.intrRemap, t.x2apicOptOut, t.platformOptIn]).toEqual([true, true, false]);
    expect(t.structures.map(summary)).toEqual([
      ['drhd', 0x30, 0x18],
      ['drhd', 0x48, 0x28],
      ['atsr', 0x70, 0x18],
      ['rhsa', 0x88, 0x14],
    ]);
    const [d0, d1, atsr, rhsa] = t.structures;
    expect(d0).toMatchObject({ includePciAll: false, registerBase: 0xfbffd000n });
    expect(d1).toMatchObject({ includePciAll: true, registerBase: 0xfbffc000n });
    expect((d1 as DmarDrhd).scopes.map((s) => [s.type, s.enumerationId, s.startBus, s.path[0]])).toEqual([
      [DmarScopeType.IOAPIC, 1, 0xf0, { device: 0x1f, function: 7 }],
      [DmarScopeType.IOAPIC, 2, 0, { device: 5, function: 4 }],
      [DmarScopeType.HPET, 0, 0xf0, { device: 0x0f, function: 0 }],
    ]);
    expect(atsr).toMatchObject({ allPorts: false, segment: 0 });
    expect(atsr?.kind === 'atsr' ? atsr.scopes.map((s) => [s.type, s.path[0]?.device]) : null).toEqual([
      [DmarScopeType.BRIDGE, 1],
      [DmarScopeType.BRIDGE, 3],
    ]);
    expect(rhsa).toEqual({
      kind: 'rhsa',
      type: DmarType.HARDWARE_AFFINITY,
      offset: 0x88,
      length: 0x14,
      registerBase: 0xfbffc000n,
      proximityDomain: 0,
    });
    expect(t.warnings).toEqual([]);
  });
});

describe('Surface Book 2 DMAR', () => {
  const t = parseDmar(fixture('surface-book-2-dmar.bin'));
  it('decodes name-space scopes, RMRRs and ANDDs', () => {
    expect(t.structures.map((s) => s.kind)).toEqual([
      'drhd',
      'drhd',
      'rmrr',
      'rmrr',
      'andd',
      'andd',
      'andd',
      'andd',
      'andd',
    ]);
    const ns = (t.structures[1] as DmarDrhd).scopes.filter((s) => s.type === DmarScopeType.NAMESPACE);
    expect(ns.map((s) => [s.enumerationId, s.path[0]?.device, s.path[0]?.function])).toEqual([
      [1, 0x15, 0],
      [2, 0x15, 1],
      [3, 0x15, 2],
      [4, 0x15, 3],
      [9, 0x1e, 0],
    ]);
    expect(t.structures[2]).toMatchObject({
      kind: 'rmrr',
      segment: 0,
      base: 0x3e2e0000n,
      limit: 0x3e2fffffn,
    });
    expect(t.structures[3]).toMatchObject({ kind: 'rmrr', base: 0x8d000000n, limit: 0x8f7fffffn });
    expect(
      t.structures.flatMap((s) => (s.kind === 'andd' ? [[s.deviceNumber, s.name, s.offset]] : [])),
    ).toEqual([
      [1, '\\_SB.PCI0.I2C0', 0xd0],
      [2, '\\_SB.PCI0.I2C1', 0xec],
      [3, '\\_SB.PCI0.I2C2', 0x108],
      [4, '\\_SB.PCI0.I2C3', 0x124],
      [9, '\\_SB.PCI0.UA00', 0x140],
    ]);
  });
});

describe('Surface Laptop Studio DMAR (revision 2)', () => {
  const t = parseDmar(fixture('surface-laptop-studio-dmar.bin'));
  it('has the platform opt-in flag and sub-hierarchy scopes', () => {
    expect(t.revision).toBe(2);
    expect([t.intrRemap, t.x2apicOptOut, t.platformOptIn]).toEqual([true, false, true]);
    const drhds = t.structures.filter((s): s is DmarDrhd => s.kind === 'drhd');
    expect(drhds.map((d) => [d.registerBase, d.includePciAll, d.scopes.map((s) => s.type)])).toEqual([
      [0xfed90000n, false, [DmarScopeType.ENDPOINT]],
      [0xfed84000n, false, [DmarScopeType.BRIDGE]],
      [0xfed85000n, false, [DmarScopeType.BRIDGE]],
      [0xfed91000n, true, [DmarScopeType.IOAPIC, DmarScopeType.HPET]],
    ]);
  });
});

describe('hand-built structures', () => {
  it('decodes the DRHD size field, SATC, SIDP and scope flags', () => {
    const t = parseDmar(
      buildDmar([
        drhd(0, 0xfed91000n, scope(DmarScopeType.ENDPOINT, 0, [2, 0])).map((b, i) => (i === 5 ? 2 : b)),
        struct(5, [1, 0, 1, 0], [1, 8, 0x04, 0, 0, 0, 0x0b, 0]),
        struct(6, [0, 0, 0, 0], scope(DmarScopeType.ENDPOINT, 0, [0x0b, 0])),
      ]),
    );
    expect(t.structures[0]).toMatchObject({ size: 2, registerSize: 0x4000n });
    expect(t.structures[1]).toMatchObject({ kind: 'satc', type: 5, flags: 1, atcRequired: true, segment: 1 });
    expect(t.structures[1]?.kind === 'satc' ? t.structures[1].scopes[0] : null).toMatchObject({
      flags: 0x04,
      path: [{ device: 0x0b, function: 0 }],
    });
    expect(t.structures[2]).toMatchObject({ kind: 'sidp', type: 6, segment: 0 });
  });
  it('keeps a reserved-type structure and warns, like Linux skipping it', () => {
    const t = parseDmar(buildDmar([struct(9, [0xaa, 0xbb]), drhd(1, 0x1000n)]));
    expect(t.structures[0]).toEqual({
      kind: 'unknown',
      type: 9,
      offset: 48,
      length: 6,
      body: Uint8Array.from([0xaa, 0xbb]),
    });
    expect(t.structures[1]?.kind).toBe('drhd');
    expect(t.warnings).toEqual(['DMAR structure type 9 at 0x30: unknown DMAR structure type 9, skipped']);
  });
  it('stops at a 0-length structure with a warning (dmar_walk_remapping_entries)', () => {
    const t = parseDmar(buildDmar([drhd(1, 0x1000n), Uint8Array.from([0, 0, 0, 0]), drhd(0, 0x2000n)]));
    expect(t.structures.map((s) => s.kind)).toEqual(['drhd']);
    expect(t.warnings).toEqual(['invalid 0-length DMAR structure at 0x40; rest of the table ignored']);
  });
  it('warns about a bad RMRR, an RHSA for no unit, an odd path and an unsupported scope type', () => {
    const t = parseDmar(
      buildDmar([
        drhd(1, 0x1000n, [7, 6, 0, 0, 0, 0]),
        struct(1, [0, 0, 0, 0, ...le64(0x2000n), ...le64(0x1000n)], [1, 9, 0, 0, 0, 0, 2, 0, 0xee]),
        struct(3, [0, 0, 0, 0, ...le64(0x5000n), 3, 0, 0, 0]),
      ]),
    );
    expect(t.warnings).toEqual([
      'DMAR structure type 0 at 0x30: unsupported device scope type 7 at 0x40',
      'DMAR structure type 1 at 0x46: bad RMRR [0x2000-0x1000] (broken BIOS)',
      'DMAR structure type 1 at 0x46: device scope at 0x5e has an odd path length; last byte ignored',
      'RHSA at 0x67 refers to non-existent DMAR unit at 0x5000',
    ]);
    expect(t.structures[1]?.kind === 'rmrr' ? t.structures[1].scopes[0]?.path : null).toEqual([
      { device: 2, function: 0 },
    ]);
  });
});

describe('malformed tables are EINVAL', () => {
  const good = fixture('qemu-q35-dmar.bin');
  const patched = (edit: (b: Uint8Array, dv: DataView) => void, fixSum = true): Uint8Array => {
    const b = good.slice();
    edit(b, new DataView(b.buffer));
    if (fixSum) {
      b[9] = 0;
      b[9] = (0x100 - acpiTableChecksum(b)) & 0xff;
    }
    return b;
  };
  it('header checks', () => {
    expectEinval(() => parseDmar(good.slice(0, 40)), /needs 48 bytes, got 40/);
    expectEinval(() => parseDmar(patched((b) => b.set([0x49, 0x56, 0x52, 0x53]))), /signature is "IVRS"/);
    expectEinval(() => parseDmar(patched((_, dv) => dv.setUint32(4, 40, true))), /length 40 is below 48/);
    expectEinval(
      () => parseDmar(patched((_, dv) => dv.setUint32(4, 200, true))),
      /length 200 exceeds the 120 bytes/,
    );
    expectEinval(
      () =>
        parseDmar(
          patched((b) => {
            b[0x50] = 9;
          }, false),
        ),
      /checksum mismatch \(bytes sum to 0x8\)/,
    );
    expectEinval(
      () =>
        parseDmar(
          patched((b) => {
            b[36] = 10;
          }),
        ),
      /host address width field 10/,
    );
  });
  it('a bad checksum passes when verification is off', () => {
    const t = parseDmar(
      patched((b) => {
        b[9] = 0;
      }, false),
      { verifyChecksum: false },
    );
    expect(t.checksum).toBe(0);
    expect(t.structures).toHaveLength(2);
  });
  it('trailing bytes after the header length are ignored', () => {
    const b = new Uint8Array(good.length + 8);
    b.set(good);
    expect(parseDmar(b).structures).toHaveLength(2);
  });
  it('structure checks', () => {
    expectEinval(
      () => parseDmar(patched((_, dv) => dv.setUint16(0x72, 0x10, true))),
      /record at 0x70 passes the table end/,
    );
    expectEinval(
      () => parseDmar(buildDmar([drhd(1, 0x1000n), Uint8Array.from([0, 0])])),
      /record at 0x40 passes the table end/,
    );
    expectEinval(
      () => parseDmar(buildDmar([Uint8Array.from([0, 0, 2, 0])])),
      /record at 0x30 is 2 bytes long/,
    );
    expectEinval(
      () => parseDmar(buildDmar([struct(0, [1, 0, 0, 0])])),
      /type 0 at 0x30: length 8 is shorter than its fixed part \(16\)/,
    );
    expectEinval(() => parseDmar(buildDmar([struct(1, [0, 0, 0, 0])])), /fixed part \(24\)/);
    expectEinval(() => parseDmar(buildDmar([struct(3, [0, 0, 0, 0])])), /fixed part \(20\)/);
    expectEinval(() => parseDmar(buildDmar([drhd(1, 0n)])), /DRHD reported at address zero/);
    expectEinval(
      () => parseDmar(buildDmar([struct(4, [0, 0, 0, 1, 0x5c, 0x41, 0x42, 0x43])])),
      /ANDD object name is not NUL-terminated/,
    );
  });
  it('device scope checks', () => {
    expectEinval(
      () =>
        parseDmar(
          patched((b) => {
            b[0x49] = 4;
          }),
        ),
      /device scope at 0x48 has length 4 \(minimum 6\)/,
    );
    expectEinval(
      () =>
        parseDmar(
          patched((b) => {
            b[0x69] = 10;
          }),
        ),
      /device scope at 0x68 passes the structure end/,
    );
    expectEinval(() => parseDmar(buildDmar([drhd(1, 0x1000n, [1])])), /device scope at 0x40 is truncated/);
  });
});
