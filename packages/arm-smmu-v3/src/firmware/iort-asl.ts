/**
 * Rebuild a table's bytes from the text `iasl -d` prints for it: the "Raw Table Data" hex dump
 * at the end of an ACPICA data-table disassembly (lines `    OFFS: XX XX ... // ascii`).
 */

import { ErrnoError } from '@iommu-ts/base';

const DUMP_LINE = /^\s*([0-9A-Fa-f]{4,8}):((?: [0-9A-Fa-f]{2})+)\s*(?:\/\/.*)?$/;

/**
 * Parse the "Raw Table Data" section of an iasl disassembly into the table's bytes.
 *
 * @param text - the whole `.dsl` text (lines before "Raw Table Data:" are ignored)
 * @returns the bytes, checked against the length iasl announces
 * @throws ErrnoError EINVAL when there is no "Raw Table Data" section, a dump line's offset does
 *   not follow the previous line, or the byte count differs from the announced length.
 */
export function parseIaslRawTableData(text: string): Uint8Array {
  const lines = text.split(/\r?\n/);
  const start = lines.findIndex((l) => /^\s*Raw Table Data: Length \d+/.test(l));
  if (start < 0) throw new ErrnoError('EINVAL', 'iasl text has no "Raw Table Data" section');
  const announced = Number(/Length (\d+)/.exec(lines[start] ?? '')?.[1]);
  const out: number[] = [];
  for (const line of lines.slice(start + 1)) {
    const m = DUMP_LINE.exec(line);
    if (m === null) continue;
    const offset = Number.parseInt(m[1] ?? '', 16);
    if (offset !== out.length) {
      throw new ErrnoError(
        'EINVAL',
        `iasl dump line at offset 0x${offset.toString(16)} follows ${out.length} bytes`,
      );
    }
    for (const b of (m[2] ?? '').trim().split(' ')) out.push(Number.parseInt(b, 16));
  }
  if (out.length !== announced) {
    throw new ErrnoError('EINVAL', `iasl dump holds ${out.length} bytes, header announces ${announced}`);
  }
  return Uint8Array.from(out);
}
