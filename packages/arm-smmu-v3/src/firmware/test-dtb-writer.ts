/**
 * Test helper: a minimal flattened-device-tree (version 17) writer, used to encode the .dts
 * fixtures into .dtb files and to build malformed blobs. Not exported from the package.
 */

/** A property value: a string, a list of strings, 32-bit cells, or `true` for an empty property. */
export type DtValue = string | readonly string[] | { readonly cells: readonly number[] } | true;

/** A node to encode. */
export interface DtNodeSpec {
  /** Node name with unit address; `''` for the root. */
  readonly name: string;
  /** Properties in order. */
  readonly props?: readonly (readonly [string, DtValue])[];
  /** Children in order. */
  readonly children?: readonly DtNodeSpec[];
}

const enc = new TextEncoder();

function valueBytes(v: DtValue): Uint8Array {
  if (v === true) return new Uint8Array();
  if (typeof v === 'string') return enc.encode(`${v}\0`);
  if ('cells' in v) {
    const out = new Uint8Array(v.cells.length * 4);
    const dv = new DataView(out.buffer);
    v.cells.forEach((c, i) => {
      dv.setUint32(i * 4, c >>> 0, false);
    });
    return out;
  }
  return enc.encode((v as readonly string[]).map((s) => `${s}\0`).join(''));
}

/**
 * Encode a tree as a version-17 .dtb (header, memory reservation block, structure block, strings
 * block, in dtc's order).
 */
export function writeDtb(
  root: DtNodeSpec,
  memReserve: readonly [bigint, bigint][] = [],
  bootCpuId = 0,
): Uint8Array {
  const strings: number[] = [];
  const stringOff = new Map<string, number>();
  const struct: number[] = [];
  const u32 = (v: number): void => {
    struct.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  };
  const pad = (): void => {
    while (struct.length % 4 !== 0) struct.push(0);
  };
  const emit = (n: DtNodeSpec): void => {
    u32(1);
    struct.push(...enc.encode(n.name), 0);
    pad();
    for (const [name, value] of n.props ?? []) {
      let off = stringOff.get(name);
      if (off === undefined) {
        off = strings.length;
        stringOff.set(name, off);
        strings.push(...enc.encode(name), 0);
      }
      const bytes = valueBytes(value);
      u32(3);
      u32(bytes.length);
      u32(off);
      struct.push(...bytes);
      pad();
    }
    for (const c of n.children ?? []) emit(c);
    u32(2);
  };
  emit(root);
  u32(9);
  const rsv = new Uint8Array((memReserve.length + 1) * 16);
  const rdv = new DataView(rsv.buffer);
  memReserve.forEach(([a, s], i) => {
    rdv.setBigUint64(i * 16, a, false);
    rdv.setBigUint64(i * 16 + 8, s, false);
  });
  const offMemRsv = 40;
  const offStruct = offMemRsv + rsv.length;
  const offStrings = offStruct + struct.length;
  const total = offStrings + strings.length;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const header = [
    0xd00dfeed,
    total,
    offStruct,
    offStrings,
    offMemRsv,
    17,
    16,
    bootCpuId,
    strings.length,
    struct.length,
  ];
  header.forEach((v, i) => {
    dv.setUint32(i * 4, v, false);
  });
  out.set(rsv, offMemRsv);
  out.set(struct, offStruct);
  out.set(strings, offStrings);
  return out;
}
