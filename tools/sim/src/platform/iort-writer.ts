/**
 * A small ACPI IORT assembler (layouts of include/acpi/actbl2.h, ARM DEN 0049E.d): ITS groups,
 * SMMUv3 nodes, PCI root complexes, named components and RMR nodes with their ID mappings, laid
 * out in order with node offsets resolved and the checksum set. The built-in Arm platform is
 * written with it; tests use it for tables the fixtures do not cover.
 */

/** An ID mapping of a node being written; `target` is the index of the output node in the list. */
export interface IortWriterMapping {
  /** First input ID. */
  readonly inputBase: number;
  /** Number of IDs in the range (the writer stores this minus one, as the field is defined). */
  readonly count: number;
  /** First output ID. */
  readonly outputBase: number;
  /** Index (in {@link IortWriterTable.nodes}) of the node the IDs go to. */
  readonly target: number;
  /** `ACPI_IORT_ID_SINGLE_MAPPING` (the input is ignored; named components and root complexes). */
  readonly single?: boolean;
}

/** An ITS group node. */
export interface IortWriterIts {
  /** Discriminant. */
  readonly type: 'its';
  /** GIC ITS identifiers. */
  readonly itsIds: readonly number[];
}

/** An SMMUv3 node (node revision 4). */
export interface IortWriterSmmuV3 {
  /** Discriminant. */
  readonly type: 'smmuv3';
  /** Register page 0 base address. */
  readonly base: bigint;
  /** Flags (`IORT_SMMU_V3_*`: COHACC override, HTTU override, PXM valid…). */
  readonly flags: number;
  /** Implementation model (0 generic). */
  readonly model: number;
  /** GSIVs of the event queue, PRI queue, global error and CMD_SYNC interrupts (0: none). */
  readonly gsiv: {
    readonly event: number;
    readonly pri: number;
    readonly gerr: number;
    readonly sync: number;
  };
  /** The SMMU's own ID mappings (to the ITS). */
  readonly mappings: readonly IortWriterMapping[];
}

/** A PCI root complex node (node revision 4, with the PASID capabilities field). */
export interface IortWriterRootComplex {
  /** Discriminant. */
  readonly type: 'rc';
  /** PCI segment. */
  readonly segment: number;
  /** ATS attribute (`IORT_ATS_SUPPORTED | IORT_PRI_SUPPORTED | IORT_PASID_FWD_SUPPORTED`). */
  readonly atsAttribute: number;
  /** Memory address size limit in bits. */
  readonly memoryAddressLimit: number;
  /** Max PASID width (bits 4:0 of the PASID capabilities). */
  readonly pasidMaxWidth: number;
  /** RID mappings. */
  readonly mappings: readonly IortWriterMapping[];
}

/** A named component node. */
export interface IortWriterNamedComponent {
  /** Discriminant. */
  readonly type: 'nc';
  /** Full ACPI path (`\_SB_.ACC0`). */
  readonly name: string;
  /** Node flags (`IORT_NC_STALL_SUPPORTED`, PASID bits in 5:1). */
  readonly nodeFlags: number;
  /** Memory address size limit in bits. */
  readonly memoryAddressLimit: number;
  /** ID mappings (single mappings to the SMMU give the StreamIDs). */
  readonly mappings: readonly IortWriterMapping[];
}

/** A reserved memory range node (node revision 3). */
export interface IortWriterRmr {
  /** Discriminant. */
  readonly type: 'rmr';
  /** RMR flags (bit 0 remapping permitted, bit 1 privileged). */
  readonly flags: number;
  /** Memory ranges. */
  readonly ranges: readonly { readonly base: bigint; readonly length: bigint }[];
  /** StreamID mappings (to the SMMU). */
  readonly mappings: readonly IortWriterMapping[];
}

/** Any node the writer handles. */
export type IortWriterNode =
  | IortWriterIts
  | IortWriterSmmuV3
  | IortWriterRootComplex
  | IortWriterNamedComponent
  | IortWriterRmr;

/** A table to write. */
export interface IortWriterTable {
  /** Table revision (5 = E.d). */
  readonly revision: number;
  /** OEM ID (padded / cut to 6 characters). */
  readonly oemId: string;
  /** OEM table ID (8 characters). */
  readonly oemTableId: string;
  /** Nodes, in table order. */
  readonly nodes: readonly IortWriterNode[];
}

const HEADER = 48;
const NODE_HEADER = 16;
const MAPPING = 20;

/** Size of a node's fixed part (before its mappings). */
function fixedSize(node: IortWriterNode): number {
  switch (node.type) {
    case 'its':
      return NODE_HEADER + 4 + 4 * node.itsIds.length;
    case 'smmuv3':
      return NODE_HEADER + 52;
    case 'rc':
      return NODE_HEADER + 20;
    case 'nc': {
      const raw = NODE_HEADER + 13 + node.name.length + 1;
      return (raw + 3) & ~3;
    }
    case 'rmr':
      return NODE_HEADER + 12;
  }
}

function mappingsOf(node: IortWriterNode): readonly IortWriterMapping[] {
  return node.type === 'its' ? [] : node.mappings;
}

const NODE_TYPE: Record<IortWriterNode['type'], number> = { its: 0, nc: 1, rc: 2, smmuv3: 4, rmr: 6 };
const NODE_REVISION: Record<IortWriterNode['type'], number> = { its: 1, nc: 4, rc: 4, smmuv3: 4, rmr: 3 };

/**
 * Assemble a binary IORT.
 * @param table - header fields and nodes
 * @returns the table bytes, byte sum 0 (valid checksum)
 * @throws RangeError when a mapping's `target` is not a node index
 */
export function writeIort(table: IortWriterTable): Uint8Array {
  const offsets: number[] = [];
  const sizes: number[] = [];
  let off = HEADER;
  for (const node of table.nodes) {
    const rmrDesc = node.type === 'rmr' ? node.ranges.length * 20 : 0;
    const size = fixedSize(node) + mappingsOf(node).length * MAPPING + rmrDesc;
    offsets.push(off);
    sizes.push(size);
    off += size;
  }
  const bytes = new Uint8Array(off);
  const dv = new DataView(bytes.buffer);
  const ascii = (at: number, s: string, len: number): void => {
    for (let i = 0; i < len; i++) bytes[at + i] = i < s.length ? s.charCodeAt(i) & 0x7f : 0x20;
  };
  ascii(0, 'IORT', 4);
  dv.setUint32(4, off, true);
  bytes[8] = table.revision;
  ascii(10, table.oemId, 6);
  ascii(16, table.oemTableId, 8);
  dv.setUint32(24, 1, true);
  ascii(28, 'ITSM', 4);
  dv.setUint32(32, 1, true);
  dv.setUint32(36, table.nodes.length, true);
  dv.setUint32(40, HEADER, true);

  table.nodes.forEach((node, i) => {
    const o = offsets[i] as number;
    const maps = mappingsOf(node);
    const mapOff = fixedSize(node);
    bytes[o] = NODE_TYPE[node.type];
    dv.setUint16(o + 1, sizes[i] as number, true);
    bytes[o + 3] = NODE_REVISION[node.type];
    dv.setUint32(o + 4, i, true); // identifier: unique per table
    dv.setUint32(o + 8, maps.length, true);
    dv.setUint32(o + 12, maps.length > 0 ? mapOff : 0, true);
    const d = o + NODE_HEADER;
    switch (node.type) {
      case 'its':
        dv.setUint32(d, node.itsIds.length, true);
        for (const [k, id] of node.itsIds.entries()) dv.setUint32(d + 4 + 4 * k, id, true);
        break;
      case 'smmuv3':
        dv.setBigUint64(d, node.base, true);
        dv.setUint32(d + 8, node.flags, true);
        dv.setUint32(d + 24, node.model, true);
        dv.setUint32(d + 28, node.gsiv.event, true);
        dv.setUint32(d + 32, node.gsiv.pri, true);
        dv.setUint32(d + 36, node.gsiv.gerr, true);
        dv.setUint32(d + 40, node.gsiv.sync, true);
        break;
      case 'rc':
        dv.setUint32(d, 1, true); // cache coherency: fully coherent
        bytes[d + 7] = 0x03; // memory flags: coherent, device attributes cacheable
        dv.setUint32(d + 8, node.atsAttribute, true);
        dv.setUint32(d + 12, node.segment, true);
        bytes[d + 16] = node.memoryAddressLimit;
        dv.setUint16(d + 17, node.pasidMaxWidth & 0x1f, true);
        break;
      case 'nc':
        dv.setUint32(d, node.nodeFlags, true);
        dv.setUint32(d + 4, 1, true);
        bytes[d + 11] = 0x03;
        bytes[d + 12] = node.memoryAddressLimit;
        ascii(d + 13, node.name, node.name.length);
        break;
      case 'rmr': {
        const descOff = mapOff + maps.length * MAPPING;
        dv.setUint32(d, node.flags, true);
        dv.setUint32(d + 4, node.ranges.length, true);
        dv.setUint32(d + 8, descOff, true);
        node.ranges.forEach((r, k) => {
          dv.setBigUint64(o + descOff + 20 * k, r.base, true);
          dv.setBigUint64(o + descOff + 20 * k + 8, r.length, true);
        });
        break;
      }
    }
    maps.forEach((m, k) => {
      const at = o + mapOff + k * MAPPING;
      const ref = offsets[m.target];
      if (ref === undefined) throw new RangeError(`IORT writer: mapping target ${m.target} is not a node`);
      dv.setUint32(at, m.inputBase, true);
      dv.setUint32(at + 4, Math.max(0, m.count - 1), true);
      dv.setUint32(at + 8, m.outputBase, true);
      dv.setUint32(at + 12, ref, true);
      dv.setUint32(at + 16, m.single === true ? 1 : 0, true);
    });
  });

  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  bytes[9] = (0x100 - sum) & 0xff;
  return bytes;
}
