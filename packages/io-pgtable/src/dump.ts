/**
 * `dump`: the tables of an io-pgtable as a tree, as JSON and as text (in the spirit of the kernel's
 * `ptdump` and the LPAE `pgtable_walk` op).
 */

import { PtEntryKind } from './format.js';
import type { IoPgtableOps } from './io-pgtable.js';

/** One non-empty entry of a table in a {@link IoPgtableDump}. */
export interface PtDumpEntry {
  /** Slot index within its table. */
  readonly index: number;
  /** Physical address of the descriptor itself. */
  readonly entryPa: string;
  /** The raw descriptor, hex (`0x…`, 16 digits for 64-bit formats, 8 for 32-bit). */
  readonly descriptor: string;
  /** `'table'`, `'leaf'` or `'invalid'`. */
  readonly kind: 'table' | 'leaf' | 'invalid';
  /** First IOVA the entry translates (offset within the table's input range), hex. */
  readonly iova: string;
  /** Output address (leaf) or next-table address (table), hex. */
  readonly pa?: string;
  /** Bytes a leaf maps. */
  readonly size?: number;
  /** Decoded attribute fields of the format. */
  readonly attrs: Readonly<Record<string, number | boolean | string>>;
  /** The next-level table, for table entries. */
  readonly table?: PtDumpTable;
}

/** One table in a {@link IoPgtableDump}. */
export interface PtDumpTable {
  /** Physical address of the table. */
  readonly pa: string;
  /** The format's level number (ARM 0–3, VT-d 5–1, v7s 1–2). */
  readonly level: number;
  /** Its non-empty entries in index order. */
  readonly entries: PtDumpEntry[];
}

/** The whole tree, JSON-serialisable. */
export interface IoPgtableDump {
  /** The format's Linux name. */
  readonly format: string;
  /** Input address bits. */
  readonly ias: number;
  /** Output address bits. */
  readonly oas: number;
  /** The top table. */
  readonly root: PtDumpTable;
}

const hex = (n: number): string => `0x${n.toString(16)}`;

/**
 * Build the tree of every table reachable from the top (empty entries omitted).
 * @param ops - a live page table
 */
export function dumpIoPgtable(ops: IoPgtableOps): IoPgtableDump {
  const inst = ops.instance;
  const w = ops.walker;
  const digits = inst.entryWords * 8;
  const levelTables: Array<PtDumpTable | undefined> = [];
  const root: PtDumpTable = { pa: hex(w.rootPa), level: inst.levels[0]?.label ?? 0, entries: [] };
  levelTables[0] = root;
  w.forEachEntry((depth, index, entryPa, lo, hi, kind, iova) => {
    const parent = levelTables[depth] as PtDumpTable;
    const d = inst.decode(lo, hi, depth);
    const raw = (BigInt(hi) << 32n) | BigInt(lo);
    const entry: {
      -readonly [K in keyof PtDumpEntry]: PtDumpEntry[K];
    } = {
      index,
      entryPa: hex(entryPa),
      descriptor: `0x${raw.toString(16).padStart(digits, '0')}`,
      kind: kind === PtEntryKind.TABLE ? 'table' : kind === PtEntryKind.LEAF ? 'leaf' : 'invalid',
      iova: hex(iova),
      attrs: d.attrs,
    };
    if (d.pa !== undefined) entry.pa = hex(d.pa);
    if (d.sizeLg2 !== undefined) entry.size = 2 ** d.sizeLg2;
    if (kind === PtEntryKind.TABLE && d.pa !== undefined) {
      const t: PtDumpTable = {
        pa: hex(d.pa),
        level: inst.levels[depth + 1]?.label ?? depth + 1,
        entries: [],
      };
      entry.table = t;
      levelTables[depth + 1] = t;
    }
    parent.entries.push(entry);
  });
  return { format: ops.format.name, ias: ops.cfg.ias, oas: ops.cfg.oas, root };
}

/**
 * The tree as indented text, one line per table and per non-empty entry, e.g.
 * `  L3[  0] 0x0000000080000f47 leaf iova 0x0 → 0x80000000 4K AF=1 SH=3 …`.
 * @param ops - a live page table
 */
export function dumpIoPgtableText(ops: IoPgtableOps): string {
  const d = dumpIoPgtable(ops);
  const lines = [`${d.format} ias ${d.ias} oas ${d.oas}`];
  const size = (n: number): string => {
    const units = ['', 'K', 'M', 'G', 'T', 'P'];
    let u = 0;
    while (n >= 1024 && n % 1024 === 0 && u < units.length - 1) {
      n /= 1024;
      u++;
    }
    return `${n}${units[u]}`;
  };
  const rec = (t: PtDumpTable, indent: string): void => {
    lines.push(`${indent}table L${t.level} @ ${t.pa}`);
    for (const e of t.entries) {
      const attrs = Object.entries(e.attrs)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(' ');
      const target =
        e.pa === undefined ? '' : e.kind === 'table' ? ` → table ${e.pa}` : ` → ${e.pa} ${size(e.size ?? 0)}`;
      lines.push(
        `${indent}  L${t.level}[${String(e.index).padStart(4)}] ${e.descriptor} ${e.kind} iova ${e.iova}${target}${attrs ? ` ${attrs}` : ''}`,
      );
      if (e.table !== undefined) rec(e.table, `${indent}    `);
    }
  };
  rec(d.root, '');
  return lines.join('\n');
}
