/**
 * The ACPI DMAR table (DMA Remapping Reporting, VT-d specification chapter 8) from its binary form:
 * header and checksum, the remapping structures (DRHD, RMRR, ATSR, RHSA, ANDD, SATC, SIDP) and their
 * device scopes. Layouts follow include/acpi/actbl1.h; the checks are the ones Linux applies while
 * walking the table in drivers/iommu/intel/dmar.c (`parse_dmar_table`,
 * `dmar_walk_remapping_entries`, `dmar_validate_one_drhd`, `dmar_parse_one_andd`,
 * `dmar_parse_one_rmrr`, `dmar_parse_one_rhsa`).
 */

import { ErrnoError } from '@iommu-ts/base';

/** Table signature. */
export const DMAR_SIGNATURE = 'DMAR';
/** Bytes before the first remapping structure (`sizeof(struct acpi_table_dmar)`). */
export const DMAR_HEADER_LENGTH = 48;
/** Length of the common ACPI table header (`sizeof(struct acpi_table_header)`). */
export const ACPI_TABLE_HEADER_LENGTH = 36;
/** Bytes of a device scope entry before its path (`sizeof(struct acpi_dmar_device_scope)`). */
export const DMAR_DEVICE_SCOPE_LENGTH = 6;

/** DMAR table flags (`DMAR_INTR_REMAP`, `DMAR_X2APIC_OPT_OUT`, `DMAR_PLATFORM_OPT_IN` of include/linux/dmar.h). */
export const DmarTableFlag = {
  /** Interrupt remapping is supported. */
  INTR_REMAP: 0x1,
  /** Firmware asks the OS not to enable x2APIC mode. */
  X2APIC_OPT_OUT: 0x2,
  /** DMA_CTRL_PLATFORM_OPT_IN_FLAG: firmware set up DMA protection and asks the OS to keep it. */
  DMA_CTRL_PLATFORM_OPT_IN: 0x4,
} as const;

/** Remapping structure types (`enum acpi_dmar_type`). */
export const DmarType = {
  /** DMA-remapping hardware unit definition (DRHD). */
  HARDWARE_UNIT: 0,
  /** Reserved memory region reporting (RMRR). */
  RESERVED_MEMORY: 1,
  /** Root port ATS capability reporting (ATSR). */
  ROOT_ATS: 2,
  /** Remapping hardware static affinity (RHSA). */
  HARDWARE_AFFINITY: 3,
  /** ACPI name-space device declaration (ANDD). */
  NAMESPACE: 4,
  /** SoC integrated address translation cache reporting (SATC). */
  SATC: 5,
  /** SoC integrated device property reporting (SIDP). */
  SIDP: 6,
  /** First reserved type: structures from here on are skipped for forward compatibility. */
  RESERVED: 7,
} as const;

/** Device scope entry types (`enum acpi_dmar_scope_type`). */
export const DmarScopeType = {
  /** Unused entry. */
  NOT_USED: 0,
  /** PCI endpoint device. */
  ENDPOINT: 1,
  /** PCI sub-hierarchy (a bridge and everything behind it). */
  BRIDGE: 2,
  /** I/O APIC (enumeration ID = I/O APIC ID). */
  IOAPIC: 3,
  /** MSI-capable HPET (enumeration ID = HPET number). */
  HPET: 4,
  /** ACPI name-space device (enumeration ID = ANDD device number). */
  NAMESPACE: 5,
} as const;

/** DRHD flag bit 0 (`ACPI_DMAR_INCLUDE_ALL`): the unit owns every device of its segment not claimed by another. */
export const DMAR_DRHD_INCLUDE_PCI_ALL = 0x1;
/** ATSR flag bit 0 (`ACPI_DMAR_ALL_PORTS`): every root port of the segment supports ATS. */
export const DMAR_ATSR_ALL_PORTS = 0x1;
/** SATC flag bit 0 (`ACPI_DMAR_ATC_REQUIRED`): the devices need their ATC enabled to work. */
export const DMAR_SATC_ATC_REQUIRED = 0x1;

/** One (device, function) hop of a device scope path (`struct acpi_dmar_pci_path`). */
export interface DmarPciPath {
  /** PCI device (slot) number, 0..31. */
  readonly device: number;
  /** PCI function number, 0..7. */
  readonly function: number;
}

/** A device scope entry (`struct acpi_dmar_device_scope` plus its path). */
export interface DmarDeviceScope {
  /** Offset of the entry in the table. */
  readonly offset: number;
  /** Entry type, a {@link DmarScopeType} value (other values are kept as found). */
  readonly type: number;
  /** Entry length in bytes (6 + 2 per path hop). */
  readonly length: number;
  /** Byte 2: flags in VT-d 4.0 and later (reserved before). */
  readonly flags: number;
  /** Enumeration ID (I/O APIC ID, HPET number or ANDD device number; 0 for PCI devices). */
  readonly enumerationId: number;
  /** Start bus number: the bus of the first path hop. */
  readonly startBus: number;
  /** The path from the start bus down to the device, one hop per bridge crossed plus the device. */
  readonly path: readonly DmarPciPath[];
}

/** Fields every remapping structure has (`struct acpi_dmar_header`). */
export interface DmarStructureCommon {
  /** Offset of the structure in the table. */
  readonly offset: number;
  /** Structure length in bytes. */
  readonly length: number;
}

/** A DMA-remapping hardware unit definition (`struct acpi_dmar_hardware_unit`). */
export interface DmarDrhd extends DmarStructureCommon {
  /** Discriminant. */
  readonly kind: 'drhd';
  /** Structure type ({@link DmarType}.HARDWARE_UNIT). */
  readonly type: typeof DmarType.HARDWARE_UNIT;
  /** Flags byte (bit 0: {@link DMAR_DRHD_INCLUDE_PCI_ALL}). */
  readonly flags: number;
  /** Whether {@link DMAR_DRHD_INCLUDE_PCI_ALL} is set. */
  readonly includePciAll: boolean;
  /** Size field: the register set spans 2^size 4 KiB pages (reserved, so 0, in older tables). */
  readonly size: number;
  /** Register set size in bytes, `1 << (size + 12)` as `dmar_parse_one_drhd` computes it. */
  readonly registerSize: bigint;
  /** PCI segment the unit serves. */
  readonly segment: number;
  /** Physical base address of the register set. */
  readonly registerBase: bigint;
  /** Device scopes. */
  readonly scopes: readonly DmarDeviceScope[];
}

/** A reserved memory region (`struct acpi_dmar_reserved_memory`). */
export interface DmarRmrr extends DmarStructureCommon {
  /** Discriminant. */
  readonly kind: 'rmrr';
  /** Structure type ({@link DmarType}.RESERVED_MEMORY). */
  readonly type: typeof DmarType.RESERVED_MEMORY;
  /** PCI segment of the scope devices. */
  readonly segment: number;
  /** First byte of the region. */
  readonly base: bigint;
  /** Last byte of the region (inclusive limit). */
  readonly limit: bigint;
  /** Devices that DMA to the region. */
  readonly scopes: readonly DmarDeviceScope[];
}

/** A root port ATS capability structure (`struct acpi_dmar_atsr`). */
export interface DmarAtsr extends DmarStructureCommon {
  /** Discriminant. */
  readonly kind: 'atsr';
  /** Structure type ({@link DmarType}.ROOT_ATS). */
  readonly type: typeof DmarType.ROOT_ATS;
  /** Flags byte (bit 0: {@link DMAR_ATSR_ALL_PORTS}). */
  readonly flags: number;
  /** Whether {@link DMAR_ATSR_ALL_PORTS} is set. */
  readonly allPorts: boolean;
  /** PCI segment. */
  readonly segment: number;
  /** Root ports (PCI sub-hierarchy scopes) that support ATS, when not all ports do. */
  readonly scopes: readonly DmarDeviceScope[];
}

/** A remapping hardware static affinity structure (`struct acpi_dmar_rhsa`). */
export interface DmarRhsa extends DmarStructureCommon {
  /** Discriminant. */
  readonly kind: 'rhsa';
  /** Structure type ({@link DmarType}.HARDWARE_AFFINITY). */
  readonly type: typeof DmarType.HARDWARE_AFFINITY;
  /** Register base of the DRHD this affinity is for. */
  readonly registerBase: bigint;
  /** ACPI proximity domain of that unit. */
  readonly proximityDomain: number;
}

/** An ACPI name-space device declaration (`struct acpi_dmar_andd`). */
export interface DmarAndd extends DmarStructureCommon {
  /** Discriminant. */
  readonly kind: 'andd';
  /** Structure type ({@link DmarType}.NAMESPACE). */
  readonly type: typeof DmarType.NAMESPACE;
  /** Device number, referenced by the enumeration ID of name-space device scopes. */
  readonly deviceNumber: number;
  /** Fully qualified ACPI object name, for example `\_SB.PCI0.I2C0`. */
  readonly name: string;
}

/** A SoC integrated address translation cache structure (`struct acpi_dmar_satc`). */
export interface DmarSatc extends DmarStructureCommon {
  /** Discriminant. */
  readonly kind: 'satc';
  /** Structure type ({@link DmarType}.SATC). */
  readonly type: typeof DmarType.SATC;
  /** Flags byte (bit 0: {@link DMAR_SATC_ATC_REQUIRED}). */
  readonly flags: number;
  /** Whether {@link DMAR_SATC_ATC_REQUIRED} is set. */
  readonly atcRequired: boolean;
  /** PCI segment. */
  readonly segment: number;
  /** SoC-integrated devices that have an ATC. */
  readonly scopes: readonly DmarDeviceScope[];
}

/** A SoC integrated device property structure (`struct acpi_dmar_sidp`, VT-d 4.1). */
export interface DmarSidp extends DmarStructureCommon {
  /** Discriminant. */
  readonly kind: 'sidp';
  /** Structure type ({@link DmarType}.SIDP). */
  readonly type: typeof DmarType.SIDP;
  /** PCI segment. */
  readonly segment: number;
  /** Devices the properties apply to (their scope flags carry the properties). */
  readonly scopes: readonly DmarDeviceScope[];
}

/** A structure of a reserved type (7 and up), kept as bytes and otherwise skipped like Linux does. */
export interface DmarUnknownStructure extends DmarStructureCommon {
  /** Discriminant. */
  readonly kind: 'unknown';
  /** The type found. */
  readonly type: number;
  /** The structure's bytes after its 4-byte header. */
  readonly body: Uint8Array;
}

/** Any remapping structure. */
export type DmarStructure =
  | DmarDrhd
  | DmarRmrr
  | DmarAtsr
  | DmarRhsa
  | DmarAndd
  | DmarSatc
  | DmarSidp
  | DmarUnknownStructure;

/** A parsed DMAR table. */
export interface DmarTable {
  /** Table length from the header. */
  readonly length: number;
  /** Table revision. */
  readonly revision: number;
  /** Checksum byte as stored. */
  readonly checksum: number;
  /** OEM ID (6 characters, padding kept). */
  readonly oemId: string;
  /** OEM table ID (8 characters, padding kept). */
  readonly oemTableId: string;
  /** OEM revision. */
  readonly oemRevision: number;
  /** Creator (ASL compiler) ID. */
  readonly aslCompilerId: string;
  /** Creator (ASL compiler) revision. */
  readonly aslCompilerRevision: number;
  /** Host address width in bits: the stored field plus one (`dmar->width + 1`). */
  readonly hostAddressWidth: number;
  /** Flags byte ({@link DmarTableFlag} bits). */
  readonly flags: number;
  /** {@link DmarTableFlag}.INTR_REMAP. */
  readonly intrRemap: boolean;
  /** {@link DmarTableFlag}.X2APIC_OPT_OUT. */
  readonly x2apicOptOut: boolean;
  /** {@link DmarTableFlag}.DMA_CTRL_PLATFORM_OPT_IN (`dmar_platform_optin()`). */
  readonly platformOptIn: boolean;
  /** Remapping structures in table order. */
  readonly structures: readonly DmarStructure[];
  /**
   * Problems Linux reports but tolerates ("FW_BUG" warnings, skipped structures), one message
   * each; an empty list for a clean table.
   */
  readonly warnings: readonly string[];
}

/** Options of {@link parseDmar}. */
export interface ParseDmarOptions {
  /** Reject a table whose bytes do not sum to 0 (ACPICA's table validation). Default true. */
  readonly verifyChecksum?: boolean;
}

/**
 * The ACPI checksum test: the sum of the table's `length` bytes modulo 256.
 *
 * @param bytes - the table
 * @param length - how many bytes to sum (default: all)
 * @returns the sum modulo 256; 0 for a valid table
 */
export function acpiTableChecksum(bytes: Uint8Array, length = bytes.length): number {
  let sum = 0;
  for (let i = 0; i < length; i++) sum = (sum + (bytes[i] ?? 0)) & 0xff;
  return sum;
}

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

function ascii(bytes: Uint8Array, start: number, length: number): string {
  let s = '';
  for (let i = start; i < start + length; i++) s += String.fromCharCode(bytes[i] ?? 0);
  return s;
}

function parseScopes(
  bytes: Uint8Array,
  dv: DataView,
  start: number,
  end: number,
  where: string,
  warnings: string[],
): DmarDeviceScope[] {
  const scopes: DmarDeviceScope[] = [];
  let at = start;
  while (at < end) {
    if (end - at < 2) throw new ErrnoError('EINVAL', `${where}: device scope at ${hex(at)} is truncated`);
    const type = bytes[at] ?? 0;
    const length = bytes[at + 1] ?? 0;
    if (length < DMAR_DEVICE_SCOPE_LENGTH)
      throw new ErrnoError('EINVAL', `${where}: device scope at ${hex(at)} has length ${length} (minimum 6)`);
    if (at + length > end)
      throw new ErrnoError('EINVAL', `${where}: device scope at ${hex(at)} passes the structure end`);
    if ((length - DMAR_DEVICE_SCOPE_LENGTH) % 2 !== 0)
      warnings.push(`${where}: device scope at ${hex(at)} has an odd path length; last byte ignored`);
    if (type < DmarScopeType.ENDPOINT || type > DmarScopeType.NAMESPACE)
      warnings.push(`${where}: unsupported device scope type ${type} at ${hex(at)}`);
    const path: DmarPciPath[] = [];
    for (let p = at + DMAR_DEVICE_SCOPE_LENGTH; p + 2 <= at + length; p += 2)
      path.push({ device: dv.getUint8(p), function: dv.getUint8(p + 1) });
    scopes.push({
      offset: at,
      type,
      length,
      flags: bytes[at + 2] ?? 0,
      enumerationId: bytes[at + 4] ?? 0,
      startBus: bytes[at + 5] ?? 0,
      path,
    });
    at += length;
  }
  return scopes;
}

function need(length: number, min: number, where: string): void {
  if (length < min)
    throw new ErrnoError('EINVAL', `${where}: length ${length} is shorter than its fixed part (${min})`);
}

function parseStructure(
  bytes: Uint8Array,
  dv: DataView,
  offset: number,
  type: number,
  length: number,
  warnings: string[],
): DmarStructure {
  const end = offset + length;
  const where = `DMAR structure type ${type} at ${hex(offset)}`;
  switch (type) {
    case DmarType.HARDWARE_UNIT: {
      need(length, 16, where);
      const flags = dv.getUint8(offset + 4);
      const size = dv.getUint8(offset + 5);
      const registerBase = dv.getBigUint64(offset + 8, true);
      if (registerBase === 0n)
        throw new ErrnoError('EINVAL', `${where}: DRHD reported at address zero (broken BIOS)`);
      return {
        kind: 'drhd',
        type,
        offset,
        length,
        flags,
        includePciAll: (flags & DMAR_DRHD_INCLUDE_PCI_ALL) !== 0,
        size,
        registerSize: 1n << BigInt(size + 12),
        segment: dv.getUint16(offset + 6, true),
        registerBase,
        scopes: parseScopes(bytes, dv, offset + 16, end, where, warnings),
      };
    }
    case DmarType.RESERVED_MEMORY: {
      need(length, 24, where);
      const base = dv.getBigUint64(offset + 8, true);
      const limit = dv.getBigUint64(offset + 16, true);
      if ((base & 0xfffn) !== 0n || ((limit + 1n) & 0xfffn) !== 0n || limit <= base)
        warnings.push(`${where}: bad RMRR [${hex(base)}-${hex(limit)}] (broken BIOS)`);
      return {
        kind: 'rmrr',
        type,
        offset,
        length,
        segment: dv.getUint16(offset + 6, true),
        base,
        limit,
        scopes: parseScopes(bytes, dv, offset + 24, end, where, warnings),
      };
    }
    case DmarType.ROOT_ATS:
    case DmarType.SATC: {
      need(length, 8, where);
      const flags = dv.getUint8(offset + 4);
      const segment = dv.getUint16(offset + 6, true);
      const scopes = parseScopes(bytes, dv, offset + 8, end, where, warnings);
      if (type === DmarType.ROOT_ATS)
        return {
          kind: 'atsr',
          type,
          offset,
          length,
          flags,
          allPorts: (flags & DMAR_ATSR_ALL_PORTS) !== 0,
          segment,
          scopes,
        };
      return {
        kind: 'satc',
        type,
        offset,
        length,
        flags,
        atcRequired: (flags & DMAR_SATC_ATC_REQUIRED) !== 0,
        segment,
        scopes,
      };
    }
    case DmarType.HARDWARE_AFFINITY: {
      need(length, 20, where);
      return {
        kind: 'rhsa',
        type,
        offset,
        length,
        registerBase: dv.getBigUint64(offset + 8, true),
        proximityDomain: dv.getUint32(offset + 16, true),
      };
    }
    case DmarType.NAMESPACE: {
      need(length, 8, where);
      const nameStart = offset + 8;
      let nul = nameStart;
      while (nul < end && bytes[nul] !== 0) nul++;
      if (nul === end)
        throw new ErrnoError('EINVAL', `${where}: ANDD object name is not NUL-terminated (broken BIOS)`);
      return {
        kind: 'andd',
        type,
        offset,
        length,
        deviceNumber: dv.getUint8(offset + 7),
        name: ascii(bytes, nameStart, nul - nameStart),
      };
    }
    case DmarType.SIDP: {
      need(length, 8, where);
      return {
        kind: 'sidp',
        type,
        offset,
        length,
        segment: dv.getUint16(offset + 6, true),
        scopes: parseScopes(bytes, dv, offset + 8, end, where, warnings),
      };
    }
    default:
      warnings.push(`${where}: unknown DMAR structure type ${type}, skipped`);
      return { kind: 'unknown', type, offset, length, body: bytes.slice(offset + 4, end) };
  }
}

/**
 * Parse a DMAR table.
 *
 * @param bytes - the table, exactly as firmware provides it (extra trailing bytes are ignored)
 * @param options - see {@link ParseDmarOptions}
 * @returns the decoded table; tolerated firmware bugs are listed in `warnings`
 * @throws ErrnoError EINVAL when the input is shorter than the DMAR header, the signature is not
 *   "DMAR", the header length is below 48 or beyond the input, the checksum is wrong (unless
 *   disabled), the host address width field is below 11 (Linux: "Invalid DMAR haw"), a structure
 *   passes the table end or is shorter than its fixed part, a device scope is shorter than 6 bytes
 *   or passes its structure, a DRHD has register base 0, or an ANDD name is not NUL-terminated.
 */
export function parseDmar(bytes: Uint8Array, options: ParseDmarOptions = {}): DmarTable {
  if (bytes.length < DMAR_HEADER_LENGTH)
    throw new ErrnoError('EINVAL', `DMAR table needs ${DMAR_HEADER_LENGTH} bytes, got ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const signature = ascii(bytes, 0, 4);
  if (signature !== DMAR_SIGNATURE)
    throw new ErrnoError('EINVAL', `table signature is ${JSON.stringify(signature)}, not "DMAR"`);
  const length = dv.getUint32(4, true);
  if (length < DMAR_HEADER_LENGTH)
    throw new ErrnoError('EINVAL', `DMAR header length ${length} is below ${DMAR_HEADER_LENGTH}`);
  if (length > bytes.length)
    throw new ErrnoError('EINVAL', `DMAR header length ${length} exceeds the ${bytes.length} bytes given`);
  if ((options.verifyChecksum ?? true) && acpiTableChecksum(bytes, length) !== 0)
    throw new ErrnoError(
      'EINVAL',
      `DMAR checksum mismatch (bytes sum to ${hex(acpiTableChecksum(bytes, length))})`,
    );
  const width = dv.getUint8(36);
  // Linux: dmar->width < PAGE_SHIFT - 1.
  if (width < 11) throw new ErrnoError('EINVAL', `invalid DMAR host address width field ${width}`);
  const flags = dv.getUint8(37);
  const warnings: string[] = [];
  const structures: DmarStructure[] = [];
  let at = DMAR_HEADER_LENGTH;
  while (at < length) {
    if (length - at < 4) throw new ErrnoError('EINVAL', `DMAR record at ${hex(at)} passes the table end`);
    const type = dv.getUint16(at, true);
    const slen = dv.getUint16(at + 2, true);
    if (slen === 0) {
      // dmar_walk_remapping_entries stops here without failing.
      warnings.push(`invalid 0-length DMAR structure at ${hex(at)}; rest of the table ignored`);
      break;
    }
    if (at + slen > length) throw new ErrnoError('EINVAL', `DMAR record at ${hex(at)} passes the table end`);
    if (slen < 4) throw new ErrnoError('EINVAL', `DMAR record at ${hex(at)} is ${slen} bytes long`);
    structures.push(parseStructure(bytes, dv, at, type, slen, warnings));
    at += slen;
  }
  const drhdBases = new Set(structures.flatMap((s) => (s.kind === 'drhd' ? [s.registerBase] : [])));
  for (const s of structures) {
    if (s.kind === 'rhsa' && !drhdBases.has(s.registerBase))
      warnings.push(`RHSA at ${hex(s.offset)} refers to non-existent DMAR unit at ${hex(s.registerBase)}`);
  }
  return {
    length,
    revision: dv.getUint8(8),
    checksum: dv.getUint8(9),
    oemId: ascii(bytes, 10, 6),
    oemTableId: ascii(bytes, 16, 8),
    oemRevision: dv.getUint32(24, true),
    aslCompilerId: ascii(bytes, 28, 4),
    aslCompilerRevision: dv.getUint32(32, true),
    hostAddressWidth: width + 1,
    flags,
    intrRemap: (flags & DmarTableFlag.INTR_REMAP) !== 0,
    x2apicOptOut: (flags & DmarTableFlag.X2APIC_OPT_OUT) !== 0,
    platformOptIn: (flags & DmarTableFlag.DMA_CTRL_PLATFORM_OPT_IN) !== 0,
    structures,
    warnings,
  };
}
