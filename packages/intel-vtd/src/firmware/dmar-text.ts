/**
 * DMAR (or any ACPI table) bytes from the text forms tables are published in: `acpidump` output
 * (`SIG @ 0xADDR` blocks of `OFFS: XX XX ...  ascii` lines) and `iasl -d` disassembly, either its
 * "Raw Table Data" hex dump or, when that section is absent, its field listing
 * (`[OFFh DEC LEN]  Name : Value` lines, reassembled field by field).
 */

import { ErrnoError } from '@iommu-ts/base';

/** One table found in `acpidump` output. */
export interface AcpidumpTable {
  /** The 4-character signature of the block header. */
  readonly signature: string;
  /** The physical address printed after `@` (0 when acpidump read the tables from files). */
  readonly address: bigint;
  /** The table bytes. */
  readonly bytes: Uint8Array;
}

const ACPIDUMP_HEADER = /^\s*([A-Za-z0-9_ !]{4}) @ 0x([0-9A-Fa-f]+)\s*$/;
const HEX_LINE = /^\s*([0-9A-Fa-f]{4,8}):((?: [0-9A-Fa-f]{2}){1,16})(?:\s|$)/;

function tableLength(bytes: readonly number[]): number | null {
  if (bytes.length < 8) return null;
  return ((bytes[4] ?? 0) | ((bytes[5] ?? 0) << 8) | ((bytes[6] ?? 0) << 16) | ((bytes[7] ?? 0) << 24)) >>> 0;
}

function pushHexLine(out: number[], offsetText: string, bytesText: string, where: string): void {
  const offset = Number.parseInt(offsetText, 16);
  if (offset !== out.length)
    throw new ErrnoError(
      'EINVAL',
      `${where}: dump line at offset 0x${offset.toString(16)} follows ${out.length} bytes`,
    );
  for (const b of bytesText.trim().split(' ')) out.push(Number.parseInt(b, 16));
}

/**
 * Split `acpidump` output into its tables.
 *
 * @param text - the whole output (lines that are neither block headers nor dump lines are ignored)
 * @returns every table block in order of appearance
 * @throws ErrnoError EINVAL when a dump line appears outside a block, a block's offsets are not
 *   contiguous, or a block's byte count differs from the length in its table header (blocks of 8
 *   bytes or more; FACS-like headerless tables are accepted as found)
 */
export function parseAcpidump(text: string): AcpidumpTable[] {
  const tables: AcpidumpTable[] = [];
  let current: { signature: string; address: bigint; bytes: number[] } | null = null;
  const finish = (): void => {
    if (current === null) return;
    const len = tableLength(current.bytes);
    if (len !== null && current.signature !== 'FACS' && len !== current.bytes.length)
      throw new ErrnoError(
        'EINVAL',
        `acpidump ${current.signature}: ${current.bytes.length} bytes dumped, header says ${len}`,
      );
    tables.push({
      signature: current.signature,
      address: current.address,
      bytes: Uint8Array.from(current.bytes),
    });
    current = null;
  };
  for (const line of text.split(/\r?\n/)) {
    const header = ACPIDUMP_HEADER.exec(line);
    if (header !== null) {
      finish();
      current = { signature: header[1] ?? '', address: BigInt(`0x${header[2] ?? '0'}`), bytes: [] };
      continue;
    }
    const m = HEX_LINE.exec(line);
    if (m === null) continue;
    if (current === null)
      throw new ErrnoError('EINVAL', `acpidump dump line outside a table block: ${line.trim()}`);
    pushHexLine(current.bytes, m[1] ?? '', m[2] ?? '', `acpidump ${current.signature}`);
  }
  finish();
  return tables;
}

/**
 * The bytes of one table from `acpidump` output.
 *
 * @param text - the whole output
 * @param signature - which table (default `"DMAR"`); the first block with it is returned
 * @returns the table bytes
 * @throws ErrnoError EINVAL when no block has that signature, or as {@link parseAcpidump}
 */
export function acpidumpTable(text: string, signature = 'DMAR'): Uint8Array {
  const t = parseAcpidump(text).find((x) => x.signature === signature);
  if (t === undefined) throw new ErrnoError('EINVAL', `acpidump output has no ${signature} table`);
  return t.bytes;
}

/**
 * Parse the "Raw Table Data" section of an `iasl -d` data-table disassembly.
 *
 * @param text - the whole `.dsl` text (lines before "Raw Table Data:" are ignored)
 * @returns the bytes, checked against the length iasl announces
 * @throws ErrnoError EINVAL when there is no "Raw Table Data" section, a dump line's offset does not
 *   follow the previous line, or the byte count differs from the announced length
 */
export function parseIaslRawTableData(text: string): Uint8Array {
  const lines = text.split(/\r?\n/);
  const start = lines.findIndex((l) => /^\s*Raw Table Data: Length \d+/.test(l));
  if (start < 0) throw new ErrnoError('EINVAL', 'iasl text has no "Raw Table Data" section');
  const announced = Number(/Length (\d+)/.exec(lines[start] ?? '')?.[1]);
  const out: number[] = [];
  for (const line of lines.slice(start + 1)) {
    const m = HEX_LINE.exec(line);
    if (m === null) continue;
    pushHexLine(out, m[1] ?? '', m[2] ?? '', 'iasl raw data');
  }
  if (out.length !== announced)
    throw new ErrnoError('EINVAL', `iasl dump holds ${out.length} bytes, header announces ${announced}`);
  return Uint8Array.from(out);
}

// [HexOffset DecimalOffset ByteLength]: the length is decimal ("  4", " 10") in iasl before 2021 and
// hex with an "h" suffix ("004h") after.
const FIELD_LINE = /^\s*\[([0-9A-Fa-f]+)h\s+(\d+)\s+([0-9A-Fa-f]+h|\d+)\]\s*([^:]*?)\s*:\s?(.*)$/;

function writeField(out: Uint8Array, offset: number, size: number, name: string, value: string): void {
  const where = `iasl field "${name}" at 0x${offset.toString(16)}`;
  if (offset + size > out.length)
    throw new ErrnoError('EINVAL', `${where} passes the table length ${out.length}`);
  const quoted = /^"([^"]*)"/.exec(value);
  if (quoted !== null) {
    const s = quoted[1] ?? '';
    if (s.length > size) throw new ErrnoError('EINVAL', `${where}: string longer than ${size} bytes`);
    for (let i = 0; i < s.length; i++) out[offset + i] = s.charCodeAt(i) & 0xff;
    return;
  }
  const path = /^([0-9A-Fa-f]{2}),([0-9A-Fa-f]{2})\b/.exec(value);
  if (path !== null && size === 2) {
    out[offset] = Number.parseInt(path[1] ?? '', 16);
    out[offset + 1] = Number.parseInt(path[2] ?? '', 16);
    return;
  }
  const list = /^((?:[0-9A-Fa-f]{2} )+[0-9A-Fa-f]{2})\b/.exec(value);
  if (list !== null) {
    const items = (list[1] ?? '').split(' ');
    if (items.length !== size)
      throw new ErrnoError('EINVAL', `${where}: ${items.length} bytes listed, field has ${size}`);
    items.forEach((b, i) => {
      out[offset + i] = Number.parseInt(b, 16);
    });
    return;
  }
  const num = /^([0-9A-Fa-f]+)\b/.exec(value);
  if (num === null) throw new ErrnoError('EINVAL', `${where}: cannot read value ${JSON.stringify(value)}`);
  let v = BigInt(`0x${num[1] ?? '0'}`);
  if (v >> BigInt(8 * size) !== 0n)
    throw new ErrnoError('EINVAL', `${where}: value ${num[1]} does not fit ${size} bytes`);
  for (let i = 0; i < size; i++) {
    out[offset + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

/**
 * Rebuild a table from the field listing of an `iasl -d` disassembly (for disassemblies published
 * without their raw-data section). Every `[offset decimal length] Name : Value` line is written at
 * its offset; bytes no line covers (padding after an ANDD name) stay 0.
 *
 * @param text - the disassembly; parsing stops at "Raw Table Data" if present
 * @returns the table bytes, as long as its "Table Length" field says
 * @throws ErrnoError EINVAL when there is no "Table Length" field at offset 4, the hex and decimal
 *   offsets of a line disagree, a field passes the table length, a value does not fit its field or
 *   cannot be read, or iasl reported a subtable it could not decode ("**** Unknown")
 */
export function assembleIaslFieldListing(text: string): Uint8Array {
  const fields: { offset: number; size: number; name: string; value: string }[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (/^\s*Raw Table Data:/.test(line)) break;
    if (/^\s*\*\*\*\* Unknown/.test(line))
      throw new ErrnoError('EINVAL', `iasl could not decode part of the table: ${line.trim()}`);
    const m = FIELD_LINE.exec(line);
    if (m === null) continue;
    const offset = Number.parseInt(m[1] ?? '', 16);
    if (offset !== Number.parseInt(m[2] ?? '', 10))
      throw new ErrnoError('EINVAL', `iasl field line offsets disagree: ${line.trim()}`);
    const lenText = m[3] ?? '';
    const size = lenText.endsWith('h') ? Number.parseInt(lenText, 16) : Number.parseInt(lenText, 10);
    fields.push({ offset, size, name: m[4] ?? '', value: (m[5] ?? '').trim() });
  }
  const lengthField = fields.find((f) => f.offset === 4 && f.size === 4);
  if (lengthField === undefined) throw new ErrnoError('EINVAL', 'iasl listing has no "Table Length" field');
  const length = Number.parseInt(lengthField.value, 16);
  if (!Number.isFinite(length) || length < 36)
    throw new ErrnoError('EINVAL', `iasl listing announces table length ${lengthField.value}`);
  const out = new Uint8Array(length);
  for (const f of fields) writeField(out, f.offset, f.size, f.name, f.value);
  return out;
}

/**
 * The table bytes of an `iasl -d` disassembly: its raw-data section when present, else its field
 * listing reassembled by {@link assembleIaslFieldListing}.
 *
 * @param text - the disassembly
 * @returns the table bytes
 * @throws ErrnoError EINVAL as {@link parseIaslRawTableData} or {@link assembleIaslFieldListing}
 */
export function iaslTableBytes(text: string): Uint8Array {
  return /^\s*Raw Table Data:/m.test(text) ? parseIaslRawTableData(text) : assembleIaslFieldListing(text);
}
