/**
 * Reading a platform description from a file: an ACPI DMAR or IORT table as raw bytes (as in
 * /sys/firmware/acpi/tables/), as `acpidump` output or as an `iasl -d` disassembly, or a flattened
 * device tree blob. The form is recognised from the content, not the file name.
 */

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { FDT_MAGIC, parseFdt, parseIort } from '@iommu-ts/arm-smmu-v3';
import { iaslTableBytes, parseAcpidump, parseDmar } from '@iommu-ts/intel-vtd';
import type { PlatformSource } from '../machine/machine.js';
import type { PlatformDescription } from './platform.js';

/** A platform file that cannot be used; `message` is one line naming the file. */
export class PlatformError extends Error {
  /**
   * @param file - the file
   * @param reason - what is wrong, one line
   */
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'PlatformError';
  }
}

const TABLES = ['DMAR', 'IORT'] as const;

function ascii(bytes: Uint8Array, n: number): string {
  return String.fromCharCode(...bytes.subarray(0, n));
}

function oemOf(bytes: Uint8Array): string | null {
  if (bytes.length < 24) return null;
  const oem = String.fromCharCode(...bytes.subarray(10, 16)).replace(/[\0 ]+$/, '');
  const table = String.fromCharCode(...bytes.subarray(16, 24)).replace(/[\0 ]+$/, '');
  const s = `${oem} ${table}`.trim();
  return s === '' ? null : s;
}

function looksBinary(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, 512);
  for (let i = 0; i < n; i++) {
    const b = bytes[i] as number;
    if (b === 0 || (b < 9 && b !== 0)) return true;
  }
  return false;
}

function describeTable(
  bytes: Uint8Array,
  name: string,
  source: Omit<PlatformSource, 'format' | 'oem' | 'revision'>,
) {
  const sig = ascii(bytes, 4);
  const revision = bytes.length > 8 ? (bytes[8] as number) : null;
  const oem = oemOf(bytes);
  if (sig === 'DMAR') {
    const dmar = parseDmar(bytes);
    const desc: PlatformDescription = {
      kind: 'vtd',
      name,
      source: { ...source, format: 'dmar', oem, revision },
      dmar,
      bytes,
    };
    return desc;
  }
  if (sig === 'IORT') {
    const iort = parseIort(bytes);
    const desc: PlatformDescription = {
      kind: 'smmuv3',
      name,
      source: { ...source, format: 'iort', oem, revision },
      iort,
      bytes,
    };
    return desc;
  }
  throw new Error(`an ACPI ${JSON.stringify(sig)} table describes no IOMMU (want DMAR or IORT)`);
}

/**
 * Parse a platform description from its bytes.
 * @param data - the file's contents
 * @param file - the file name (for messages and `source.file`)
 * @returns the description
 * @throws PlatformError with a one-line reason: unknown format, truncated or corrupt table,
 *   wrong checksum, no DMAR/IORT table in a dump
 */
export function parsePlatform(data: Uint8Array, file: string): PlatformDescription {
  const name = basename(file).replace(/\.(bin|dat|aml|dtb|dsl|txt|acpidump|out)$/i, '');
  try {
    if (
      data.length >= 4 &&
      new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, false) === FDT_MAGIC
    ) {
      const fdt = parseFdt(data);
      const model = fdt.root.props.get('model');
      return {
        kind: 'smmuv3',
        name,
        source: {
          format: 'dtb',
          form: 'binary',
          file,
          oem: model === undefined ? null : new TextDecoder().decode(model).split('\0')[0] || null,
          revision: fdt.version,
        },
        fdt,
        bytes: data,
      };
    }
    const sig = data.length >= 4 ? ascii(data, 4) : '';
    if ((TABLES as readonly string[]).includes(sig))
      return describeTable(data, name, { form: 'binary', file });
    if (data.length === 0) throw new Error('the file is empty');
    if (looksBinary(data)) {
      throw new Error(
        `not a DMAR or IORT table nor a device tree blob (starts with ${[...data.subarray(0, 4)]
          .map((b) => b.toString(16).padStart(2, '0'))
          .join(' ')})`,
      );
    }
    const text = new TextDecoder().decode(data);
    if (/^\s*[A-Za-z0-9_ !]{4} @ 0x[0-9A-Fa-f]+\s*$/m.test(text)) {
      const tables = parseAcpidump(text).filter((t) => (TABLES as readonly string[]).includes(t.signature));
      const first = tables[0];
      if (first === undefined) throw new Error('the acpidump output has no DMAR or IORT table');
      return describeTable(first.bytes, name, { form: 'acpidump', file });
    }
    if (/Raw Table Data:|^\s*\[0{3}h 0{4}\s+\d+\]\s+Signature\s*:/m.test(text)) {
      return describeTable(iaslTableBytes(text), name, { form: 'iasl', file });
    }
    throw new Error('not a DMAR or IORT table (binary, acpidump or iasl text) nor a device tree blob');
  } catch (e) {
    if (e instanceof PlatformError) throw e;
    // The parsers throw ErrnoError (`EINVAL: …`): the errno says nothing to a user here.
    const msg = (e instanceof Error ? e.message : String(e)).replace(/^E[A-Z0-9]+: /, '');
    throw new PlatformError(file, msg.split('\n')[0] ?? msg);
  }
}

/**
 * Read and parse a platform file.
 * @param file - path
 * @param displayName - how messages and `source.file` name it (default: `file`; the CLI passes the
 *   path as the user typed it)
 * @returns the description
 * @throws PlatformError when the file cannot be read or parsed
 */
export function loadPlatform(file: string, displayName = file): PlatformDescription {
  let data: Uint8Array;
  try {
    data = new Uint8Array(readFileSync(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PlatformError(
      displayName,
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : `cannot read (${code ?? 'error'})`,
    );
  }
  return parsePlatform(data, displayName);
}
