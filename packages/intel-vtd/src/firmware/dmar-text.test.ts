import { readFileSync } from 'node:fs';
import { ErrnoError } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import { parseDmar } from './dmar.js';
import {
  acpidumpTable,
  assembleIaslFieldListing,
  iaslTableBytes,
  parseAcpidump,
  parseIaslRawTableData,
} from './dmar-text.js';

const bin = (name: string): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`./fixtures/${name}`, import.meta.url)));
const text = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

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

const WITH_RAW = [
  'asrock-h310cm-hdv-dmar',
  'asrock-x99-extreme4-dmar',
  'surface-book-2-dmar',
  'surface-laptop-studio-dmar',
];

describe('every fixture form parses to the same bytes', () => {
  for (const stem of WITH_RAW) {
    it(`${stem}: raw data section and field listing both equal the binary`, () => {
      const dsl = text(`${stem}.dsl`);
      const b = bin(`${stem}.bin`);
      expect(parseIaslRawTableData(dsl)).toEqual(b);
      expect(assembleIaslFieldListing(dsl)).toEqual(b);
      expect(iaslTableBytes(dsl)).toEqual(b);
      expect(parseDmar(b).warnings).toEqual([]);
    });
  }
  it('qemu-q35-dmar: the field listing (no raw section) equals the git blob', () => {
    const dsl = text('qemu-q35-dmar.dsl');
    expect(iaslTableBytes(dsl)).toEqual(bin('qemu-q35-dmar.bin'));
    expectEinval(() => parseIaslRawTableData(dsl), /no "Raw Table Data" section/);
  });
  it('asrock-h310cm-hdv-dmar: the acpidump block equals the binary and the disassembly', () => {
    const dump = text('asrock-h310cm-hdv-dmar.acpidump');
    expect(acpidumpTable(dump)).toEqual(bin('asrock-h310cm-hdv-dmar.bin'));
    expect(parseDmar(acpidumpTable(dump))).toEqual(
      parseDmar(iaslTableBytes(text('asrock-h310cm-hdv-dmar.dsl'))),
    );
    const tables = parseAcpidump(dump);
    expect(tables.map((t) => [t.signature, t.address, t.bytes.length])).toEqual([
      ['DMAR', 0n, 0x70],
      ['FACP', 0n, 0x114],
    ]);
    expect(acpidumpTable(dump, 'FACP')[8]).toBe(6);
  });
});

describe('acpidump errors', () => {
  it('rejects a missing table, a gap, a length mismatch and a stray line', () => {
    const dump = text('asrock-h310cm-hdv-dmar.acpidump');
    expectEinval(() => acpidumpTable(dump, 'DSDT'), /no DSDT table/);
    expectEinval(
      () => parseAcpidump(dump.replace('    0010: 45 44 4B 32', '    0020: 45 44 4B 32')),
      /DMAR: dump line at offset 0x20 follows 16 bytes/,
    );
    expectEinval(
      () => parseAcpidump(dump.replace('    0060: FF CF 59 8F 00 00 00 00 01 08 00 00 00 00 14 00', '')),
      /acpidump DMAR: 96 bytes dumped, header says 112/,
    );
    expectEinval(() => parseAcpidump('    0000: 44 4D 41 52'), /dump line outside a table block/);
  });
  it('parses several blocks with addresses', () => {
    const t = parseAcpidump(
      'FACS @ 0x00000000DEAD0000\n    0000: 46 41 43 53  FACS\nAPIC @ 0x10\n    0000: 41 50 49 43\n',
    );
    expect(t.map((x) => [x.signature, x.address, [...x.bytes]])).toEqual([
      ['FACS', 0xdead0000n, [0x46, 0x41, 0x43, 0x53]],
      ['APIC', 0x10n, [0x41, 0x50, 0x49, 0x43]],
    ]);
  });
});

describe('iasl errors', () => {
  it('raw data: gap and count mismatch', () => {
    expectEinval(
      () => parseIaslRawTableData('Raw Table Data: Length 4 (0x4)\n\n    0010: 00 00 00 00  // ....'),
      /offset 0x10 follows 0 bytes/,
    );
    expectEinval(
      () => parseIaslRawTableData('Raw Table Data: Length 8 (0x8)\n\n    0000: 00 00 00 00  // ....'),
      /holds 4 bytes, header announces 8/,
    );
  });
  it('field listing: missing length, bad values, undecoded subtables', () => {
    const head = '[000h 0000 004h]                   Signature : "DMAR"\n';
    const len = '[004h 0004 004h]                Table Length : 00000030\n';
    expectEinval(() => assembleIaslFieldListing(head), /no "Table Length" field/);
    expectEinval(
      () => assembleIaslFieldListing(`${head}${len}[024h 0036 001h]  Host Address Width : 1FF\n`),
      /value 1FF does not fit 1 bytes/,
    );
    expectEinval(
      () => assembleIaslFieldListing(`${head}${len}[02Eh 0046 004h]  Flags : 00000000\n`),
      /passes the table length 48/,
    );
    expectEinval(
      () => assembleIaslFieldListing(`${head}${len}[025h 0038 001h]  Flags : 00\n`),
      /offsets disagree/,
    );
    expectEinval(
      () => assembleIaslFieldListing(`${head}${len}[026h 0038 00Ah]  Reserved : 00 00\n`),
      /2 bytes listed, field has 10/,
    );
    expectEinval(
      () => assembleIaslFieldListing(`${head}${len}[00Ah 0010 006h]  Oem ID : "TOOLONGID"\n`),
      /string longer than 6 bytes/,
    );
    expectEinval(
      () => assembleIaslFieldListing(`${head}${len}[024h 0036 001h]  Host Address Width : zz\n`),
      /cannot read value "zz"/,
    );
    expectEinval(
      () => assembleIaslFieldListing(`${head}${len}\n**** Unknown DMAR subtable type 0x6\n`),
      /could not decode part of the table: \*\*\*\* Unknown DMAR subtable type 0x6/,
    );
  });
  it('field listing: both iasl length formats and multi-byte values land little-endian', () => {
    const b = assembleIaslFieldListing(
      '[004h 0004   4]   Table Length : 00000030\n[028h 0040 008h] Register Base Address : 00000000FED90000\n[02Eh 0046 002h] PCI Path : 1F,07\n[020h 0032 004h] Asl Compiler Revision : 20230628\n',
    );
    expect(b.length).toBe(0x30);
    expect([...b.slice(0x20, 0x24)]).toEqual([0x28, 0x06, 0x23, 0x20]);
    expect([...b.slice(4, 8)]).toEqual([0x30, 0, 0, 0]);
    expect([...b.slice(0x28, 0x2e)]).toEqual([0, 0, 0xd9, 0xfe, 0, 0]);
    expect(b[0x2e]).toBe(0x1f);
    expect(b[0x2f]).toBe(0x07);
  });
});
