/**
 * ACPI IORT (IO Remapping Table, Arm DEN 0049) from its binary form: validation, node decoding,
 * the ID-mapping walk of Linux's drivers/acpi/arm64/iort.c (`iort_node_map_id`,
 * `iort_node_map_platform_id`, `iort_id_map` with its off-by-one overlap workaround) and the
 * {@link FirmwareTopology} it describes. Layouts follow include/acpi/actbl2.h.
 */

import { ErrnoError } from '@iommu-ts/base';
import type {
  FirmwareTopology,
  PciRootComplexFirmware,
  PlatformMasterFirmware,
  ReservedMemoryRangeFirmware,
  SmmuFirmwareHttu,
  SmmuFirmwareInstance,
  SmmuFirmwareIrqs,
  SmmuFwspec,
} from './topology.js';

/** IORT node types (`ACPI_IORT_NODE_*`). */
export const IortNodeType = {
  /** ITS group. */
  ITS_GROUP: 0,
  /** Named component (a platform device named in the DSDT). */
  NAMED_COMPONENT: 1,
  /** PCI root complex. */
  PCI_ROOT_COMPLEX: 2,
  /** SMMUv1/v2. */
  SMMU: 3,
  /** SMMUv3. */
  SMMU_V3: 4,
  /** SMMUv3 performance monitor counter group. */
  PMCG: 5,
  /** Reserved memory range. */
  RMR: 6,
} as const;

/** `ACPI_IORT_ID_SINGLE_MAPPING`: the mapping ignores its input and yields `outputBase`. */
export const IORT_ID_SINGLE_MAPPING = 1 << 0;
/** SMMUv3 node flag: coherent access override (`ACPI_IORT_SMMU_V3_COHACC_OVERRIDE`). */
export const IORT_SMMU_V3_COHACC_OVERRIDE = 1 << 0;
/** SMMUv3 node flags bits 2:1: HTTU override (`ACPI_IORT_SMMU_V3_HTTU_OVERRIDE`). */
export const IORT_SMMU_V3_HTTU_OVERRIDE_MASK = 3 << 1;
/** SMMUv3 node flag: proximity domain valid (`ACPI_IORT_SMMU_V3_PXM_VALID`). */
export const IORT_SMMU_V3_PXM_VALID = 1 << 3;
/** SMMUv3 node flag: DeviceID mapping index valid (`ACPI_IORT_SMMU_V3_DEVICEID_VALID`). */
export const IORT_SMMU_V3_DEVICEID_VALID = 1 << 4;
/** SMMUv3 model: generic (`ACPI_IORT_SMMU_V3_GENERIC`). */
export const IORT_SMMU_V3_GENERIC = 0;
/** SMMUv3 model: HiSilicon Hi161x (`ACPI_IORT_SMMU_V3_HISILICON_HI161X`). */
export const IORT_SMMU_V3_HISILICON_HI161X = 1;
/** SMMUv3 model: Cavium CN99xx (`ACPI_IORT_SMMU_V3_CAVIUM_CN99XX`). */
export const IORT_SMMU_V3_CAVIUM_CN99XX = 2;
/** Root complex ATS attribute bit 0 (`ACPI_IORT_ATS_SUPPORTED`). */
export const IORT_ATS_SUPPORTED = 1 << 0;
/** Root complex ATS attribute bit 1 (`ACPI_IORT_PRI_SUPPORTED`). */
export const IORT_PRI_SUPPORTED = 1 << 1;
/** Root complex ATS attribute bit 2 (`ACPI_IORT_PASID_FWD_SUPPORTED`). */
export const IORT_PASID_FWD_SUPPORTED = 1 << 2;
/** Named component node flag bit 0: stall supported (`ACPI_IORT_NC_STALL_SUPPORTED`). */
export const IORT_NC_STALL_SUPPORTED = 1 << 0;
/** Named component node flags bits 5:1: PASID bits (`ACPI_IORT_NC_PASID_BITS`). */
export const IORT_NC_PASID_BITS_MASK = 0x1f << 1;

/** One ID mapping (`struct acpi_iort_id_mapping`, 20 bytes). */
export interface IortIdMapping {
  /** First input ID. */
  readonly inputBase: number;
  /** Number of IDs in the range minus one (the field's architected meaning). */
  readonly idCount: number;
  /** First output ID. */
  readonly outputBase: number;
  /** Table offset of the node the IDs are mapped to. */
  readonly outputReference: number;
  /** Flags (bit 0: {@link IORT_ID_SINGLE_MAPPING}). */
  readonly flags: number;
}

/** Fields every node has (`struct acpi_iort_node`). */
export interface IortNodeCommon {
  /** Offset of the node in the table: how other nodes reference it. */
  readonly offset: number;
  /** Node length in bytes. */
  readonly length: number;
  /** Node revision. */
  readonly revision: number;
  /** Node identifier (reserved before IORT E.b; unique per table after). */
  readonly identifier: number;
  /** ID mappings. */
  readonly mappings: readonly IortIdMapping[];
}

/** An ITS group node. */
export interface IortItsGroupNode extends IortNodeCommon {
  /** Discriminant. */
  readonly type: typeof IortNodeType.ITS_GROUP;
  /** GIC ITS identifiers. */
  readonly itsIds: readonly number[];
}

/** Memory access properties (`struct acpi_iort_memory_access`). */
export interface IortMemoryAccess {
  /** Cache coherency attribute (1: fully coherent). */
  readonly cacheCoherency: number;
  /** Allocation hints. */
  readonly hints: number;
  /** Memory flags (bit 0 coherency, bit 1 device attribute, bit 2 CANWBS). */
  readonly memoryFlags: number;
}

/** A named component node. */
export interface IortNamedComponentNode extends IortNodeCommon {
  /** Discriminant. */
  readonly type: typeof IortNodeType.NAMED_COMPONENT;
  /** Node flags (stall supported, PASID bits). */
  readonly nodeFlags: number;
  /** Memory access properties. */
  readonly memoryAccess: IortMemoryAccess;
  /** Device memory address size limit in bits. */
  readonly memoryAddressLimit: number;
  /** Full ACPI path of the device, for example `\_SB_.DPU0`. */
  readonly deviceName: string;
}

/** A PCI root complex node. */
export interface IortRootComplexNode extends IortNodeCommon {
  /** Discriminant. */
  readonly type: typeof IortNodeType.PCI_ROOT_COMPLEX;
  /** Memory access properties. */
  readonly memoryAccess: IortMemoryAccess;
  /** ATS attribute (ATS / PRI / PASID forwarding bits). */
  readonly atsAttribute: number;
  /** PCI segment number. */
  readonly pciSegment: number;
  /** Memory address size limit in bits (node revision 1 or later), else `null`. */
  readonly memoryAddressLimit: number | null;
  /** PASID capabilities (node revision 4 or later), else `null`; bits 4:0 = max PASID width. */
  readonly pasidCapabilities: number | null;
}

/** An SMMUv3 node (`struct acpi_iort_smmu_v3`). */
export interface IortSmmuV3Node extends IortNodeCommon {
  /** Discriminant. */
  readonly type: typeof IortNodeType.SMMU_V3;
  /** Register page 0 base address. */
  readonly baseAddress: bigint;
  /** Flags (COHACC override, HTTU override, PXM valid, DeviceID valid). */
  readonly flags: number;
  /** VATOS address (0 when absent). */
  readonly vatosAddress: bigint;
  /** Implementation model. */
  readonly model: number;
  /** Event queue GSIV (0: none). */
  readonly eventGsiv: number;
  /** PRI queue GSIV (0: none). */
  readonly priGsiv: number;
  /** Global error GSIV (0: none). */
  readonly gerrGsiv: number;
  /** CMD_SYNC GSIV (0: none). */
  readonly syncGsiv: number;
  /** Proximity domain, `null` when the node is too short to hold it. */
  readonly proximityDomain: number | null;
  /** Index of the mapping that gives the SMMU's own MSI DeviceID, `null` when absent. */
  readonly idMappingIndex: number | null;
}

/** One RMR memory range descriptor. */
export interface IortRmrDescriptor {
  /** Physical base. */
  readonly base: bigint;
  /** Length in bytes. */
  readonly length: bigint;
}

/** A reserved memory range node. */
export interface IortRmrNode extends IortNodeCommon {
  /** Discriminant. */
  readonly type: typeof IortNodeType.RMR;
  /** RMR flags. */
  readonly flags: number;
  /** Memory ranges. */
  readonly descriptors: readonly IortRmrDescriptor[];
}

/** A node of a type this model does not decode (SMMUv1/v2, PMCG, future types). */
export interface IortOtherNode extends IortNodeCommon {
  /** The raw node type. */
  readonly type: number;
  /** Discriminant for the union. */
  readonly other: true;
}

/** Any IORT node. */
export type IortNode =
  | IortItsGroupNode
  | IortNamedComponentNode
  | IortRootComplexNode
  | IortSmmuV3Node
  | IortRmrNode
  | IortOtherNode;

/** A parsed IORT. */
export interface IortTable {
  /** Table revision (3 = E.a/E.b era, 5 = E.d, ...). */
  readonly revision: number;
  /** OEM ID (6 characters). */
  readonly oemId: string;
  /** OEM table ID (8 characters). */
  readonly oemTableId: string;
  /** OEM revision. */
  readonly oemRevision: number;
  /** Nodes in table order. */
  readonly nodes: readonly IortNode[];
  /** Firmware bugs tolerated as Linux tolerates them (a node count larger than the table holds). */
  readonly warnings: readonly string[];
  /** The node starting at a table offset, if any. */
  nodeAt(offset: number): IortNode | undefined;
}

const HEADER_SIZE = 48;
const NODE_HEADER_SIZE = 16;
const MAPPING_SIZE = 20;
/** Bound on ID-mapping hops (the tables nest a few levels; a loop is a firmware bug). */
const MAX_MAPPING_HOPS = 16;

function einval(message: string): ErrnoError {
  return new ErrnoError('EINVAL', `IORT: ${message}`);
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function ascii(bytes: Uint8Array, start: number, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(bytes[start + i] ?? 0);
  return s;
}

/**
 * Parse and validate a binary IORT.
 *
 * @param bytes - the table as read from firmware (extra bytes after the header's length are ignored)
 * @returns the decoded table
 * @throws ErrnoError EINVAL for a buffer shorter than the IORT header, a signature other than
 *   "IORT", a header length beyond the buffer, a non-zero byte sum (checksum), a node that starts
 *   inside the table but ends outside it (a node count that merely overshoots the table is only
 *   recorded in `warnings`), a node field outside its node, mappings outside their node, a mapping whose output
 *   reference is not the offset of a node, an unterminated named-component name, or an SMMUv3 ID
 *   mapping index beyond its mappings.
 */
export function parseIort(bytes: Uint8Array): IortTable {
  if (bytes.length < HEADER_SIZE) {
    throw einval(`table of ${bytes.length} bytes is shorter than the ${HEADER_SIZE}-byte header`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const signature = ascii(bytes, 0, 4);
  if (signature !== 'IORT') throw einval(`bad signature "${signature}"`);
  const length = dv.getUint32(4, true);
  if (length < HEADER_SIZE || length > bytes.length) {
    throw einval(`header length ${length} outside the ${bytes.length}-byte buffer`);
  }
  let sum = 0;
  for (let i = 0; i < length; i++) sum = (sum + (bytes[i] ?? 0)) & 0xff;
  if (sum !== 0) throw einval(`bad checksum (bytes sum to ${hex(sum)}, not 0)`);
  const revision = bytes[8] ?? 0;
  const nodeCount = dv.getUint32(36, true);
  const nodeOffset = dv.getUint32(40, true);

  const nodes: IortNode[] = [];
  const warnings: string[] = [];
  const byOffset = new Map<number, IortNode>();
  let off = nodeOffset;
  for (let i = 0; i < nodeCount; i++) {
    if (off >= length && off >= HEADER_SIZE) {
      // Linux's node scans stop here with "IORT node pointer overflows, bad table!" (QEMU's
      // its_off tables announce one node more than they hold).
      warnings.push(`node count ${nodeCount} but only ${i} nodes fit in the table`);
      break;
    }
    if (off < HEADER_SIZE || off + NODE_HEADER_SIZE > length) {
      throw einval(`node ${i} at ${hex(off)} is outside the table (length ${hex(length)})`);
    }
    const nodeLen = dv.getUint16(off + 1, true);
    if (nodeLen < NODE_HEADER_SIZE || off + nodeLen > length) {
      throw einval(`node ${i} at ${hex(off)} with length ${hex(nodeLen)} is outside the table`);
    }
    const node = parseNode(bytes, dv, off, nodeLen);
    nodes.push(node);
    byOffset.set(off, node);
    off += nodeLen;
  }
  for (const node of nodes) {
    for (const [i, m] of node.mappings.entries()) {
      if (!byOffset.has(m.outputReference)) {
        throw einval(
          `node at ${hex(node.offset)}: mapping ${i} references ${hex(m.outputReference)}, which is not a node`,
        );
      }
    }
  }
  return {
    revision,
    oemId: ascii(bytes, 10, 6),
    oemTableId: ascii(bytes, 16, 8),
    oemRevision: dv.getUint32(24, true),
    nodes,
    warnings,
    nodeAt: (o) => byOffset.get(o),
  };
}

function parseNode(bytes: Uint8Array, dv: DataView, off: number, len: number): IortNode {
  const type = bytes[off] ?? 0;
  const revision = bytes[off + 3] ?? 0;
  const identifier = dv.getUint32(off + 4, true);
  const mappingCount = dv.getUint32(off + 8, true);
  const mappingOffset = dv.getUint32(off + 12, true);
  const where = `node at ${hex(off)} (type ${type})`;
  const need = (end: number, what: string): void => {
    if (end > len) throw einval(`${where}: ${what} lies beyond the node's ${len} bytes`);
  };
  const mappings: IortIdMapping[] = [];
  if (mappingCount > 0) {
    if (mappingOffset < NODE_HEADER_SIZE || mappingOffset + mappingCount * MAPPING_SIZE > len) {
      throw einval(`${where}: ${mappingCount} ID mappings at ${hex(mappingOffset)} lie outside the node`);
    }
    for (let i = 0; i < mappingCount; i++) {
      const m = off + mappingOffset + i * MAPPING_SIZE;
      mappings.push({
        inputBase: dv.getUint32(m, true),
        idCount: dv.getUint32(m + 4, true),
        outputBase: dv.getUint32(m + 8, true),
        outputReference: dv.getUint32(m + 12, true),
        flags: dv.getUint32(m + 16, true),
      });
    }
  }
  const common = { offset: off, length: len, revision, identifier, mappings };
  const d = off + NODE_HEADER_SIZE;
  const memoryAccess = (at: number): IortMemoryAccess => ({
    cacheCoherency: dv.getUint32(at, true),
    hints: bytes[at + 4] ?? 0,
    memoryFlags: bytes[at + 7] ?? 0,
  });
  switch (type) {
    case IortNodeType.ITS_GROUP: {
      need(NODE_HEADER_SIZE + 4, 'ITS count');
      const count = dv.getUint32(d, true);
      need(NODE_HEADER_SIZE + 4 + 4 * count, 'ITS identifiers');
      const itsIds: number[] = [];
      for (let i = 0; i < count; i++) itsIds.push(dv.getUint32(d + 4 + 4 * i, true));
      return { ...common, type, itsIds };
    }
    case IortNodeType.NAMED_COMPONENT: {
      need(NODE_HEADER_SIZE + 13, 'named component fields');
      const nameStart = d + 13;
      const nameEnd = off + (mappingCount > 0 ? Math.min(mappingOffset, len) : len);
      let end = nameStart;
      while (end < nameEnd && bytes[end] !== 0) end++;
      if (end >= nameEnd) throw einval(`${where}: device name is not NUL-terminated inside the node`);
      return {
        ...common,
        type,
        nodeFlags: dv.getUint32(d, true),
        memoryAccess: memoryAccess(d + 4),
        memoryAddressLimit: bytes[d + 12] ?? 0,
        deviceName: ascii(bytes, nameStart, end - nameStart),
      };
    }
    case IortNodeType.PCI_ROOT_COMPLEX: {
      need(NODE_HEADER_SIZE + 16, 'root complex fields');
      const hasLimit = revision >= 1 && len >= NODE_HEADER_SIZE + 17;
      const hasPasid = revision >= 4 && len >= NODE_HEADER_SIZE + 19;
      return {
        ...common,
        type,
        memoryAccess: memoryAccess(d),
        atsAttribute: dv.getUint32(d + 8, true),
        pciSegment: dv.getUint32(d + 12, true),
        memoryAddressLimit: hasLimit ? (bytes[d + 16] ?? 0) : null,
        pasidCapabilities: hasPasid ? dv.getUint16(d + 17, true) : null,
      };
    }
    case IortNodeType.SMMU_V3: {
      need(NODE_HEADER_SIZE + 44, 'SMMUv3 fields');
      const long = len >= NODE_HEADER_SIZE + 52;
      const idMappingIndex = long && revision >= 1 ? dv.getUint32(d + 48, true) : null;
      const node: IortSmmuV3Node = {
        ...common,
        type,
        baseAddress: dv.getBigUint64(d, true),
        flags: dv.getUint32(d + 8, true),
        vatosAddress: dv.getBigUint64(d + 16, true),
        model: dv.getUint32(d + 24, true),
        eventGsiv: dv.getUint32(d + 28, true),
        priGsiv: dv.getUint32(d + 32, true),
        gerrGsiv: dv.getUint32(d + 36, true),
        syncGsiv: dv.getUint32(d + 40, true),
        proximityDomain: long ? dv.getUint32(d + 44, true) : null,
        idMappingIndex,
      };
      if (smmuMsiMappingIndex(node) === 'overflow') {
        throw einval(`${where}: ID mapping index ${idMappingIndex} overflows its ${mappingCount} mappings`);
      }
      return node;
    }
    case IortNodeType.RMR: {
      need(NODE_HEADER_SIZE + 12, 'RMR fields');
      const flags = dv.getUint32(d, true);
      const count = dv.getUint32(d + 4, true);
      const descOff = dv.getUint32(d + 8, true);
      if (count > 0 && (descOff < NODE_HEADER_SIZE || descOff + count * 20 > len)) {
        throw einval(`${where}: ${count} RMR descriptors at ${hex(descOff)} lie outside the node`);
      }
      const descriptors: IortRmrDescriptor[] = [];
      for (let i = 0; i < count; i++) {
        const r = off + descOff + i * 20;
        descriptors.push({ base: dv.getBigUint64(r, true), length: dv.getBigUint64(r + 8, true) });
      }
      return { ...common, type, flags, descriptors };
    }
    default:
      return { ...common, type, other: true };
  }
}

/**
 * `iort_get_id_mapping_index` for SMMUv3 nodes: the mapping that carries the SMMU's own MSI
 * DeviceID (skipped when translating masters' IDs), `null` when there is none.
 */
function smmuMsiMappingIndex(node: IortSmmuV3Node): number | null | 'overflow' {
  if (node.revision < 1 || node.idMappingIndex === null) return null;
  if (node.eventGsiv && node.priGsiv && node.gerrGsiv && node.syncGsiv) return null;
  if (node.idMappingIndex >= node.mappings.length) return 'overflow';
  return node.idMappingIndex;
}

function specialIndex(node: IortNode): number | null {
  if (node.type !== IortNodeType.SMMU_V3 || 'other' in node) return null;
  const i = smmuMsiMappingIndex(node as IortSmmuV3Node);
  return typeof i === 'number' ? i : null;
}

/** Result of one `iort_id_map` step. */
type IdMapStep = { kind: 'hit'; id: number } | { kind: 'edge'; id: number } | { kind: 'miss' };

/** `iort_id_map`: translate `idIn` through one mapping of a node of type `type`. */
function idMap(map: IortIdMapping, type: number, idIn: number, checkOverlap: boolean): IdMapStep {
  if (map.flags & IORT_ID_SINGLE_MAPPING) {
    if (type === IortNodeType.NAMED_COMPONENT || type === IortNodeType.PCI_ROOT_COMPLEX) {
      return { kind: 'hit', id: map.outputBase };
    }
    return { kind: 'miss' };
  }
  if (idIn < map.inputBase || idIn > map.inputBase + map.idCount) return { kind: 'miss' };
  // A second match after an end-of-range match is only accepted at the start of its range.
  if (checkOverlap && idIn !== map.inputBase) return { kind: 'miss' };
  const id = (map.outputBase + (idIn - map.inputBase)) >>> 0;
  // id_count is "number of IDs minus one"; firmware that got it wrong makes the last ID of one
  // range collide with the first of the next, so an end-of-range match may be superseded.
  if (map.idCount > 0 && idIn === map.inputBase + map.idCount) return { kind: 'edge', id };
  return { kind: 'hit', id };
}

/**
 * `iort_node_map_id`: follow the ID mappings from `start` until a node whose type is in
 * `targetTypes`.
 *
 * @param table - the parsed table
 * @param start - the node to start from
 * @param idIn - the input ID (a PCI RID, a named component's input ID, a StreamID...)
 * @param targetTypes - node types that end the walk (for example `[IortNodeType.SMMU_V3]`)
 * @returns the target node and the translated ID, or `null` when the walk fails (no mapping covers
 *   the ID, or it ends at a node of another type without mappings)
 * @throws ErrnoError EINVAL when the walk exceeds 16 hops (a mapping loop).
 */
export function iortMapId(
  table: IortTable,
  start: IortNode,
  idIn: number,
  targetTypes: readonly number[],
): { node: IortNode; id: number } | null {
  let node: IortNode | undefined = start;
  let id = idIn >>> 0;
  for (let hop = 0; node !== undefined; hop++) {
    if (targetTypes.includes(node.type)) return { node, id };
    if (hop >= MAX_MAPPING_HOPS) {
      throw einval(`ID mapping loop from node at ${hex(start.offset)} (ID ${hex(idIn)})`);
    }
    if (node.mappings.length === 0) return null;
    const skip = specialIndex(node);
    const mapId = id;
    let step: IdMapStep = { kind: 'miss' };
    let next: number | null = null;
    let edgeRef: number | null = null;
    for (const [i, map] of node.mappings.entries()) {
      if (i === skip) continue;
      const s = idMap(map, node.type, mapId, edgeRef !== null);
      if (s.kind === 'miss') continue;
      id = s.id;
      step = s;
      if (s.kind === 'hit') {
        next = map.outputReference;
        break;
      }
      edgeRef = map.outputReference;
    }
    if (step.kind !== 'hit') {
      if (edgeRef === null) return null;
      next = edgeRef;
    }
    node = next === null ? undefined : table.nodeAt(next);
  }
  return null;
}

/**
 * `iort_node_map_platform_id`: the `index`-th single mapping of a node, followed to a node of
 * `targetTypes` when its output node is not one.
 *
 * @returns the target node and ID, or `null` when mapping `index` does not exist, is not a single
 *   mapping, or leads nowhere.
 * @throws ErrnoError EINVAL on a mapping loop (see {@link iortMapId}).
 */
export function iortMapPlatformId(
  table: IortTable,
  node: IortNode,
  index: number,
  targetTypes: readonly number[],
): { node: IortNode; id: number } | null {
  const map = node.mappings[index];
  if (map === undefined || !(map.flags & IORT_ID_SINGLE_MAPPING)) return null;
  const single: readonly number[] = [
    IortNodeType.NAMED_COMPONENT,
    IortNodeType.PCI_ROOT_COMPLEX,
    IortNodeType.SMMU_V3,
    IortNodeType.PMCG,
  ];
  if (!single.includes(node.type)) return null;
  const parent = table.nodeAt(map.outputReference);
  if (parent === undefined) return null;
  if (targetTypes.includes(parent.type)) return { node: parent, id: map.outputBase };
  return iortMapId(table, parent, map.outputBase, targetTypes);
}

const IOMMU_TYPES: readonly number[] = [IortNodeType.SMMU_V3];
const SZ_64K = 0x1_0000n;
const SZ_128K = 0x2_0000n;

function httuOverride(flags: number): SmmuFirmwareHttu {
  switch ((flags & IORT_SMMU_V3_HTTU_OVERRIDE_MASK) >> 1) {
    case 1:
      return 'ha';
    case 2:
      return 'ha-hd';
    default:
      return 'none';
  }
}

function smmuInstance(node: IortSmmuV3Node, index: number): SmmuFirmwareInstance {
  const cavium = node.model === IORT_SMMU_V3_CAVIUM_CN99XX;
  const combined =
    cavium &&
    node.eventGsiv === node.priGsiv &&
    node.eventGsiv === node.gerrGsiv &&
    node.eventGsiv === node.syncGsiv;
  const irqs: { -readonly [K in keyof SmmuFirmwareIrqs]: number } = {};
  if (combined) {
    if (node.eventGsiv) irqs.combined = node.eventGsiv;
  } else {
    if (node.eventGsiv) irqs.eventq = node.eventGsiv;
    if (node.priGsiv) irqs.priq = node.priGsiv;
    if (node.gerrGsiv) irqs.gerror = node.gerrGsiv;
    if (node.syncGsiv) irqs.cmdqSync = node.syncGsiv;
  }
  return {
    index,
    name: `iort@${hex(node.offset)}`,
    base: node.baseAddress,
    size: cavium ? SZ_64K : SZ_128K,
    irqs,
    coherent: (node.flags & IORT_SMMU_V3_COHACC_OVERRIDE) !== 0,
    httu: httuOverride(node.flags),
    options: { skipPrefetch: node.model === IORT_SMMU_V3_HISILICON_HI161X, page0RegsOnly: cavium },
    proximityDomain:
      node.flags & IORT_SMMU_V3_PXM_VALID && node.proximityDomain !== null ? node.proximityDomain : null,
    model: node.model,
  };
}

/**
 * Build the {@link FirmwareTopology} an IORT describes, the way Linux configures masters
 * (`iort_iommu_configure_id`): PCI functions through their root complex's ID mappings
 * (`iort_pci_iommu_init`), named components through their leading single mappings
 * (`iort_nc_iommu_map`), RMR nodes into bypass reservations (`iort_find_rmrs`, table revision 5+).
 *
 * @param table - a table from {@link parseIort}
 * @returns the topology; SMMUv1/v2 and PMCG nodes are not part of it
 * @throws ErrnoError EINVAL on a mapping loop while resolving named components or RMRs.
 */
export function iortTopology(table: IortTable): FirmwareTopology {
  const smmus: SmmuFirmwareInstance[] = [];
  const smmuByOffset = new Map<number, SmmuFirmwareInstance>();
  for (const node of table.nodes) {
    if (node.type === IortNodeType.SMMU_V3 && !('other' in node)) {
      const inst = smmuInstance(node as IortSmmuV3Node, smmus.length);
      smmus.push(inst);
      smmuByOffset.set(node.offset, inst);
    }
  }

  const platformMasters: PlatformMasterFirmware[] = [];
  const ncByName = new Map<string, IortNamedComponentNode>();
  for (const node of table.nodes) {
    if (node.type !== IortNodeType.NAMED_COMPONENT || 'other' in node) continue;
    const nc = node as IortNamedComponentNode;
    ncByName.set(nc.deviceName, nc);
    const fwspec = namedComponentFwspec(table, nc, smmuByOffset);
    if (fwspec !== null) platformMasters.push({ name: nc.deviceName, fwspec });
  }

  const rootComplexes: PciRootComplexFirmware[] = [];
  const rcBySegment = new Map<number, IortRootComplexNode>();
  for (const node of table.nodes) {
    if (node.type !== IortNodeType.PCI_ROOT_COMPLEX || 'other' in node) continue;
    const rc = node as IortRootComplexNode;
    // Linux matches the first root complex of a segment (iort_scan_node).
    if (!rcBySegment.has(rc.pciSegment)) rcBySegment.set(rc.pciSegment, rc);
    rootComplexes.push({
      name: `iort@${hex(rc.offset)}`,
      segment: rc.pciSegment,
      ats: (rc.atsAttribute & IORT_ATS_SUPPORTED) !== 0,
      pri: (rc.atsAttribute & IORT_PRI_SUPPORTED) !== 0,
      pasidForwarding: (rc.atsAttribute & IORT_PASID_FWD_SUPPORTED) !== 0,
      pasidMaxWidth: rc.pasidCapabilities === null ? 0 : rc.pasidCapabilities & 0x1f,
    });
  }

  const reservedRanges: ReservedMemoryRangeFirmware[] = [];
  if (table.revision >= 5) {
    for (const node of table.nodes) {
      if (node.type !== IortNodeType.RMR || 'other' in node) continue;
      const rmr = node as IortRmrNode;
      if (rmr.descriptors.length === 0) continue;
      const bySmmu = new Map<SmmuFirmwareInstance, number[]>();
      for (const map of rmr.mappings) {
        const smmu = smmuByOffset.get(map.outputReference);
        if (smmu === undefined) continue;
        const ids = bySmmu.get(smmu) ?? [];
        for (let k = 0; k <= map.idCount; k++) ids.push((map.outputBase + k) >>> 0);
        bySmmu.set(smmu, ids);
      }
      for (const [smmu, streamIds] of bySmmu) {
        reservedRanges.push({ smmu, streamIds, regions: rmr.descriptors, flags: rmr.flags });
      }
    }
  }

  const platformByName = new Map(platformMasters.map((m) => [m.name, m.fwspec]));
  return {
    source: 'iort',
    smmus,
    platformMasters,
    rootComplexes,
    reservedRanges,
    resolvePci(segment, rid) {
      const rc = rcBySegment.get(segment);
      if (rc === undefined) return null;
      const hit = iortMapId(table, rc, rid & 0xffff, IOMMU_TYPES);
      if (hit === null) return null;
      const smmu = smmuByOffset.get(hit.node.offset);
      if (smmu === undefined) return null;
      return {
        smmu,
        streamIds: [hit.id],
        pasidBits: 0,
        canStall: false,
        ats: (rc.atsAttribute & IORT_ATS_SUPPORTED) !== 0,
      };
    },
    resolvePlatform(name) {
      return platformByName.get(name) ?? null;
    },
  };
}

/** `iort_nc_iommu_map` + `iort_named_component_init`; `null` when no SMMUv3 is reached. */
function namedComponentFwspec(
  table: IortTable,
  nc: IortNamedComponentNode,
  smmuByOffset: ReadonlyMap<number, SmmuFirmwareInstance>,
): SmmuFwspec | null {
  let smmu: SmmuFirmwareInstance | undefined;
  const streamIds: number[] = [];
  for (let i = 0; ; i++) {
    const hit = iortMapPlatformId(table, nc, i, IOMMU_TYPES);
    if (hit === null) break;
    const target = smmuByOffset.get(hit.node.offset);
    if (target === undefined) break;
    // iommu_fwspec_init refuses a second IOMMU: Linux gives up on the device.
    if (smmu !== undefined && smmu !== target) return null;
    smmu = target;
    streamIds.push(hit.id);
  }
  if (smmu === undefined) return null;
  return {
    smmu,
    streamIds,
    pasidBits: (nc.nodeFlags & IORT_NC_PASID_BITS_MASK) >> 1,
    canStall: (nc.nodeFlags & IORT_NC_STALL_SUPPORTED) !== 0,
    ats: false,
  };
}
