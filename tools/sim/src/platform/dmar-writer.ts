/**
 * Assembling an ACPI DMAR table from a description: the 48-byte header (with the checksum that
 * makes the table sum to 0), then the remapping structures with their device scopes, in the byte
 * layouts of include/acpi/actbl1.h (VT-d specification chapter 8). The built-in x86 platform is
 * written with it and parsed back with `parseDmar`, as if firmware had provided it.
 */

import type { DmarPciPath } from '@iommu-ts/intel-vtd';

/** One device scope entry to write (`struct acpi_dmar_device_scope` plus its path). */
export interface DmarScopeSpec {
  /** Entry type: a `DmarScopeType` value (1 endpoint, 2 bridge, 3 I/O APIC, 4 HPET, 5 ACPI name-space device). */
  readonly type: number;
  /** Enumeration ID (I/O APIC ID, HPET number, ANDD device number); default 0. */
  readonly enumerationId?: number;
  /** Bus of the first path hop. */
  readonly startBus: number;
  /** Path from the start bus down to the device (at least one hop). */
  readonly path: readonly DmarPciPath[];
}

/** A remapping structure to write. */
export type DmarStructureSpec =
  | {
      /** DMA-remapping hardware unit definition. */
      readonly kind: 'drhd';
      /** Flags byte (bit 0 INCLUDE_PCI_ALL). */
      readonly flags: number;
      /** Size field: the register set spans 2^size 4 KiB pages; default 0. */
      readonly size?: number;
      /** PCI segment. */
      readonly segment: number;
      /** Register base address. */
      readonly registerBase: bigint;
      /** Device scopes. */
      readonly scopes: readonly DmarScopeSpec[];
    }
  | {
      /** Reserved memory region. */
      readonly kind: 'rmrr';
      /** PCI segment. */
      readonly segment: number;
      /** First byte (4 KiB aligned). */
      readonly base: bigint;
      /** Last byte, inclusive (one below a 4 KiB boundary). */
      readonly limit: bigint;
      /** Device scopes. */
      readonly scopes: readonly DmarScopeSpec[];
    }
  | {
      /** Root port ATS capability reporting (`kind` `atsr`) or SoC integrated ATC reporting (`satc`). */
      readonly kind: 'atsr' | 'satc';
      /** Flags byte (ATSR bit 0 ALL_PORTS; SATC bit 0 ATC_REQUIRED). */
      readonly flags: number;
      /** PCI segment. */
      readonly segment: number;
      /** Device scopes (root ports for an ATSR, integrated devices for a SATC). */
      readonly scopes: readonly DmarScopeSpec[];
    }
  | {
      /** Remapping hardware static affinity. */
      readonly kind: 'rhsa';
      /** Register base of the DRHD. */
      readonly registerBase: bigint;
      /** ACPI proximity domain. */
      readonly proximityDomain: number;
    }
  | {
      /** ACPI name-space device declaration. */
      readonly kind: 'andd';
      /** Device number (the enumeration ID of name-space device scopes). */
      readonly deviceNumber: number;
      /** ACPI object path, ASCII, for example `\_SB.PCI0.I2C0`. */
      readonly name: string;
    };

/** A whole DMAR table to write. */
export interface DmarTableSpec {
  /** Table revision (header byte 8). */
  readonly revision: number;
  /** OEM ID, padded with spaces or cut to 6 characters. */
  readonly oemId: string;
  /** OEM table ID, padded or cut to 8 characters. */
  readonly oemTableId: string;
  /** OEM revision. */
  readonly oemRevision: number;
  /** Creator ID, padded or cut to 4 characters. */
  readonly creatorId: string;
  /** Creator revision. */
  readonly creatorRevision: number;
  /** Host address width in bits (the stored field is this minus one). */
  readonly hostAddressWidth: number;
  /** Flags byte (`DmarTableFlag` bits). */
  readonly flags: number;
  /** Remapping structures, in table order. */
  readonly structures: readonly DmarStructureSpec[];
}

const scopeLength = (s: DmarScopeSpec): number => 6 + 2 * s.path.length;
const scopesLength = (list: readonly DmarScopeSpec[]): number => list.reduce((n, s) => n + scopeLength(s), 0);

function structureLength(s: DmarStructureSpec): number {
  switch (s.kind) {
    case 'drhd':
      return 16 + scopesLength(s.scopes);
    case 'rmrr':
      return 24 + scopesLength(s.scopes);
    case 'atsr':
    case 'satc':
      return 8 + scopesLength(s.scopes);
    case 'rhsa':
      return 20;
    case 'andd':
      return 8 + s.name.length + 1;
  }
}

const TYPE = { drhd: 0, rmrr: 1, atsr: 2, rhsa: 3, andd: 4, satc: 5 } as const;

/**
 * Write a DMAR table.
 * @param spec - see {@link DmarTableSpec}
 * @returns the table bytes; they sum to 0 modulo 256
 * @throws RangeError when a structure would exceed 65535 bytes, a scope has no path or more than
 *   124 hops, an ANDD name is not ASCII, or a field is out of range for its width
 */
export function writeDmar(spec: DmarTableSpec): Uint8Array {
  const lengths = spec.structures.map(structureLength);
  const total = 48 + lengths.reduce((a, b) => a + b, 0);
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const ascii = (at: number, text: string, width: number): void => {
    for (let i = 0; i < width; i++) {
      const c = i < text.length ? text.charCodeAt(i) : 0x20;
      if (c > 0x7e) throw new RangeError(`non-ASCII character in ${JSON.stringify(text)}`);
      out[at + i] = c;
    }
  };
  const u8 = (at: number, v: number, what: string): void => {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`${what} ${v} does not fit a byte`);
    dv.setUint8(at, v);
  };
  const u16 = (at: number, v: number, what: string): void => {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff)
      throw new RangeError(`${what} ${v} does not fit 16 bits`);
    dv.setUint16(at, v, true);
  };
  ascii(0, 'DMAR', 4);
  dv.setUint32(4, total, true);
  u8(8, spec.revision, 'revision');
  ascii(10, spec.oemId, 6);
  ascii(16, spec.oemTableId, 8);
  dv.setUint32(24, spec.oemRevision >>> 0, true);
  ascii(28, spec.creatorId, 4);
  dv.setUint32(32, spec.creatorRevision >>> 0, true);
  u8(36, spec.hostAddressWidth - 1, 'host address width field');
  u8(37, spec.flags, 'flags');
  const writeScopes = (at: number, scopes: readonly DmarScopeSpec[]): void => {
    let p = at;
    for (const s of scopes) {
      if (s.path.length === 0 || s.path.length > 124)
        throw new RangeError('a device scope needs 1 to 124 path hops');
      u8(p, s.type, 'scope type');
      u8(p + 1, scopeLength(s), 'scope length');
      u8(p + 4, s.enumerationId ?? 0, 'enumeration ID');
      u8(p + 5, s.startBus, 'start bus');
      s.path.forEach((hop, i) => {
        u8(p + 6 + 2 * i, hop.device, 'path device');
        u8(p + 7 + 2 * i, hop.function, 'path function');
      });
      p += scopeLength(s);
    }
  };
  let at = 48;
  spec.structures.forEach((s, i) => {
    const len = lengths[i] ?? 0;
    u16(at, TYPE[s.kind], 'structure type');
    u16(at + 2, len, 'structure length');
    switch (s.kind) {
      case 'drhd':
        u8(at + 4, s.flags, 'DRHD flags');
        u8(at + 5, s.size ?? 0, 'DRHD size');
        u16(at + 6, s.segment, 'segment');
        dv.setBigUint64(at + 8, s.registerBase, true);
        writeScopes(at + 16, s.scopes);
        break;
      case 'rmrr':
        u16(at + 6, s.segment, 'segment');
        dv.setBigUint64(at + 8, s.base, true);
        dv.setBigUint64(at + 16, s.limit, true);
        writeScopes(at + 24, s.scopes);
        break;
      case 'atsr':
      case 'satc':
        u8(at + 4, s.flags, 'flags');
        u16(at + 6, s.segment, 'segment');
        writeScopes(at + 8, s.scopes);
        break;
      case 'rhsa':
        dv.setBigUint64(at + 8, s.registerBase, true);
        dv.setUint32(at + 16, s.proximityDomain >>> 0, true);
        break;
      case 'andd':
        u8(at + 7, s.deviceNumber, 'ANDD device number');
        ascii(at + 8, s.name, s.name.length);
        break;
    }
    at += len;
  });
  let sum = 0;
  for (const b of out) sum = (sum + b) & 0xff;
  out[9] = (0x100 - sum) & 0xff;
  return out;
}
