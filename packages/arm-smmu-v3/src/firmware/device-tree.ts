/**
 * Flattened device tree (.dtb, format version 16/17) parsing and the SMMUv3 bindings
 * (Documentation/devicetree/bindings/iommu/arm,smmu-v3.yaml, iommu.txt, pci-iommu.txt): `arm,smmu-v3`
 * nodes, `iommus` specifiers, PCI `iommu-map`/`iommu-map-mask` (drivers/of/base.c `of_map_id`,
 * drivers/iommu/of_iommu.c), `pasid-num-bits`, `dma-can-stall`, `ats-supported`.
 */

import { ErrnoError } from '@iommu-ts/base';
import type {
  FirmwareTopology,
  PciRootComplexFirmware,
  PlatformMasterFirmware,
  SmmuFirmwareInstance,
  SmmuFirmwareIrqs,
  SmmuFwspec,
} from './topology.js';

/** FDT header magic (`FDT_MAGIC`). */
export const FDT_MAGIC = 0xd00dfeed;
/** Structure block tokens. */
export const FdtToken = {
  /** Start of a node, followed by its NUL-terminated name padded to 4 bytes. */
  BEGIN_NODE: 1,
  /** End of a node. */
  END_NODE: 2,
  /** A property: length, name offset in the strings block, value padded to 4 bytes. */
  PROP: 3,
  /** Ignored. */
  NOP: 4,
  /** End of the structure block. */
  END: 9,
} as const;

/** One node of a parsed device tree. */
export interface FdtNode {
  /** Node name with unit address (`iommu@2b400000`); `''` for the root. */
  readonly name: string;
  /** Full path (`/iommu@2b400000`; `/` for the root). */
  readonly path: string;
  /** Parent node, `null` for the root. */
  readonly parent: FdtNode | null;
  /** Properties by name (raw big-endian values). */
  readonly props: ReadonlyMap<string, Uint8Array>;
  /** Child nodes in tree order. */
  readonly children: readonly FdtNode[];
}

/** A memory reservation block entry. */
export interface FdtReserveEntry {
  /** Physical address. */
  readonly address: bigint;
  /** Size in bytes. */
  readonly size: bigint;
}

/** A parsed flattened device tree. */
export interface FlattenedDeviceTree {
  /** Header version (17 for current dtc output). */
  readonly version: number;
  /** Header `last_comp_version`. */
  readonly lastCompVersion: number;
  /** Physical ID of the boot CPU. */
  readonly bootCpuId: number;
  /** Memory reservation entries. */
  readonly memReserve: readonly FdtReserveEntry[];
  /** The root node. */
  readonly root: FdtNode;
  /** The node whose `phandle` (or `linux,phandle`) property has this value, if any. */
  nodeByPhandle(phandle: number): FdtNode | undefined;
  /** The node at a full path (`/pci@40000000`), if any. */
  nodeByPath(path: string): FdtNode | undefined;
  /** Every node, depth first, root first. */
  allNodes(): FdtNode[];
}

function einval(message: string): ErrnoError {
  return new ErrnoError('EINVAL', `FDT: ${message}`);
}

const utf8 = new TextDecoder();

/**
 * Parse a flattened device tree blob.
 *
 * @param blob - the .dtb bytes
 * @returns the tree
 * @throws ErrnoError EINVAL for a bad magic, a header shorter than 40 bytes, a total size beyond the
 *   buffer, a version older than 16 or a `last_comp_version` newer than 17, a block outside the
 *   blob, an unknown token, a name or property running past the structure block, a property
 *   name offset outside the strings block, a property outside any node, unbalanced nodes, or a
 *   missing FDT_END.
 */
export function parseFdt(blob: Uint8Array): FlattenedDeviceTree {
  if (blob.length < 40) throw einval(`blob of ${blob.length} bytes is shorter than the 40-byte header`);
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const u32 = (o: number): number => dv.getUint32(o, false);
  const magic = u32(0);
  if (magic !== FDT_MAGIC) throw einval(`bad magic 0x${magic.toString(16)}`);
  const totalSize = u32(4);
  const offStruct = u32(8);
  const offStrings = u32(12);
  const offMemRsv = u32(16);
  const version = u32(20);
  const lastCompVersion = u32(24);
  const bootCpuId = u32(28);
  const sizeStrings = u32(32);
  const sizeStruct = u32(36);
  if (totalSize > blob.length || totalSize < 40) {
    throw einval(`total size ${totalSize} outside the ${blob.length}-byte buffer`);
  }
  if (version < 16 || lastCompVersion > 17) {
    throw einval(`unsupported version ${version} (last compatible ${lastCompVersion})`);
  }
  const inside = (off: number, size: number, what: string): void => {
    if (off + size > totalSize || off < 40) throw einval(`${what} [${off}, +${size}) lies outside the blob`);
  };
  inside(offStruct, sizeStruct, 'structure block');
  inside(offStrings, sizeStrings, 'strings block');
  inside(offMemRsv, 16, 'memory reservation block');

  const memReserve: FdtReserveEntry[] = [];
  for (let o = offMemRsv; ; o += 16) {
    if (o + 16 > totalSize) throw einval('memory reservation block is not terminated');
    const address = dv.getBigUint64(o, false);
    const size = dv.getBigUint64(o + 8, false);
    if (address === 0n && size === 0n) break;
    memReserve.push({ address, size });
  }

  const end = offStruct + sizeStruct;
  const cstr = (start: number, limit: number, what: string): string => {
    let e = start;
    while (e < limit && blob[e] !== 0) e++;
    if (e >= limit) throw einval(`${what} at ${start} is not NUL-terminated`);
    return utf8.decode(blob.subarray(start, e));
  };
  type Building = {
    name: string;
    path: string;
    parent: Building | null;
    props: Map<string, Uint8Array>;
    children: Building[];
  };
  let root: Building | null = null;
  let current: Building | null = null;
  let sawEnd = false;
  let p = offStruct;
  while (p < end) {
    if (p + 4 > end) throw einval(`truncated token at ${p}`);
    const token = u32(p);
    p += 4;
    if (token === FdtToken.BEGIN_NODE) {
      const name = cstr(p, end, 'node name');
      let nul = p;
      while (blob[nul] !== 0) nul++;
      p = offStruct + ((nul + 1 - offStruct + 3) & ~3);
      if (current === null && root !== null) throw einval('a second root node');
      const path: string =
        current === null ? '/' : current.path === '/' ? `/${name}` : `${current.path}/${name}`;
      const node: Building = { name, path, parent: current, props: new Map(), children: [] };
      if (current === null) root = node;
      else current.children.push(node);
      current = node;
    } else if (token === FdtToken.END_NODE) {
      if (current === null) throw einval(`FDT_END_NODE at ${p - 4} without an open node`);
      current = current.parent;
    } else if (token === FdtToken.PROP) {
      if (p + 8 > end) throw einval(`truncated property header at ${p}`);
      const len = u32(p);
      const nameOff = u32(p + 4);
      p += 8;
      if (current === null) throw einval(`property at ${p - 12} outside any node`);
      if (p + len > end) throw einval(`property value at ${p} (${len} bytes) runs past the structure block`);
      if (nameOff >= sizeStrings) throw einval(`property name offset ${nameOff} outside the strings block`);
      const name = cstr(offStrings + nameOff, offStrings + sizeStrings, 'property name');
      current.props.set(name, blob.slice(p, p + len));
      p += (len + 3) & ~3;
    } else if (token === FdtToken.NOP) {
      // nothing
    } else if (token === FdtToken.END) {
      sawEnd = true;
      break;
    } else {
      throw einval(`unknown token 0x${token.toString(16)} at ${p - 4}`);
    }
  }
  if (!sawEnd) throw einval('structure block has no FDT_END');
  if (current !== null || root === null) throw einval('unbalanced FDT_BEGIN_NODE / FDT_END_NODE');

  const all: FdtNode[] = [];
  const byPhandle = new Map<number, FdtNode>();
  const byPath = new Map<string, FdtNode>();
  const walk = (n: FdtNode): void => {
    all.push(n);
    byPath.set(n.path, n);
    const ph = n.props.get('phandle') ?? n.props.get('linux,phandle');
    if (ph !== undefined && ph.length === 4) byPhandle.set(readCells(ph)[0] ?? 0, n);
    for (const c of n.children) walk(c);
  };
  walk(root as FdtNode);
  return {
    version,
    lastCompVersion,
    bootCpuId,
    memReserve,
    root: root as FdtNode,
    nodeByPhandle: (ph) => byPhandle.get(ph),
    nodeByPath: (path) => byPath.get(path),
    allNodes: () => [...all],
  };
}

/** A property value as big-endian 32-bit cells (a trailing partial cell is dropped). */
export function readCells(value: Uint8Array): number[] {
  const dv = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const out: number[] = [];
  for (let o = 0; o + 4 <= value.length; o += 4) out.push(dv.getUint32(o, false));
  return out;
}

/** A property value as a list of NUL-terminated strings. */
export function readStringList(value: Uint8Array): string[] {
  const parts = utf8.decode(value).split('\0');
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

function u32Prop(node: FdtNode, name: string): number | undefined {
  const v = node.props.get(name);
  return v === undefined || v.length < 4 ? undefined : readCells(v)[0];
}

/** `#address-cells`/`#size-cells` that apply to `node`'s `reg` (its parent's; defaults 2 and 1). */
function regCells(node: FdtNode): { addr: number; size: number } {
  const parent = node.parent;
  return {
    addr: (parent && u32Prop(parent, '#address-cells')) ?? 2,
    size: (parent && u32Prop(parent, '#size-cells')) ?? 1,
  };
}

function cellsToBigint(cells: readonly number[]): bigint {
  let v = 0n;
  for (const c of cells) v = (v << 32n) | BigInt(c >>> 0);
  return v;
}

function isEnabled(node: FdtNode): boolean {
  const s = node.props.get('status');
  if (s === undefined) return true;
  const v = readStringList(s)[0];
  return v === 'okay' || v === 'ok';
}

/** The interrupt parent of `node` (`interrupt-parent`, inherited from ancestors). */
function interruptParent(fdt: FlattenedDeviceTree, node: FdtNode): FdtNode | undefined {
  for (let n: FdtNode | null = node; n !== null; n = n.parent) {
    const ph = u32Prop(n, 'interrupt-parent');
    if (ph !== undefined) return fdt.nodeByPhandle(ph);
  }
  return undefined;
}

/**
 * Decode one interrupt specifier to a GIC INTID when the parent uses the GIC binding (3 or 4
 * cells: type 0 = SPI, 1 = PPI; number in cell 1), else the first cell.
 */
function interruptNumber(spec: readonly number[]): number {
  if (spec.length >= 3) {
    const kind = spec[0] ?? 0;
    const n = spec[1] ?? 0;
    return kind === 1 ? n + 16 : n + 32;
  }
  return spec[0] ?? 0;
}

const IRQ_NAME_KEYS: Record<string, keyof SmmuFirmwareIrqs> = {
  eventq: 'eventq',
  priq: 'priq',
  gerror: 'gerror',
  'cmdq-sync': 'cmdqSync',
  combined: 'combined',
};

function smmuFromNode(fdt: FlattenedDeviceTree, node: FdtNode, index: number): SmmuFirmwareInstance {
  const cells = u32Prop(node, '#iommu-cells');
  if (cells === undefined) {
    throw new ErrnoError('ENODEV', `${node.path}: missing #iommu-cells property`);
  }
  if (cells !== 1) throw new ErrnoError('ENODEV', `${node.path}: invalid #iommu-cells value (${cells})`);
  const { addr, size } = regCells(node);
  const reg = readCells(node.props.get('reg') ?? new Uint8Array());
  if (reg.length < addr + size || addr === 0) {
    throw einval(`${node.path}: reg holds ${reg.length} cells, needs ${addr} address + ${size} size cells`);
  }
  const irqs: { -readonly [K in keyof SmmuFirmwareIrqs]: number } = {};
  const intProp = node.props.get('interrupts');
  if (intProp !== undefined) {
    const parent = interruptParent(fdt, node);
    const per = (parent && u32Prop(parent, '#interrupt-cells')) ?? 1;
    const specs = readCells(intProp);
    const names = readStringList(node.props.get('interrupt-names') ?? new Uint8Array());
    if (per === 0 || specs.length % per !== 0) {
      throw einval(`${node.path}: interrupts length ${specs.length} is not a multiple of ${per} cells`);
    }
    for (let i = 0; i * per < specs.length; i++) {
      const key = IRQ_NAME_KEYS[names[i] ?? ''];
      if (key !== undefined) irqs[key] = interruptNumber(specs.slice(i * per, (i + 1) * per));
    }
  }
  return {
    index,
    name: node.path,
    base: cellsToBigint(reg.slice(0, addr)),
    size: cellsToBigint(reg.slice(addr, addr + size)),
    irqs,
    coherent: node.props.has('dma-coherent'),
    httu: null,
    options: {
      skipPrefetch: node.props.has('hisilicon,broken-prefetch-cmd'),
      page0RegsOnly: node.props.has('cavium,cn9900-broken-page1-regspace'),
    },
    proximityDomain: null,
    model: 0,
  };
}

function isSmmuV3(node: FdtNode): boolean {
  const c = node.props.get('compatible');
  return c !== undefined && readStringList(c).includes('arm,smmu-v3');
}

/**
 * Build the {@link FirmwareTopology} a device tree describes for SMMUv3: every enabled
 * `arm,smmu-v3` node, every enabled node whose `iommus` names one (`of_iommu_configure_dev`), and
 * every PCI host bridge (`device_type = "pci"`) whose `iommu-map` is resolved per RID on demand.
 *
 * @param fdt - a tree from {@link parseFdt}
 * @returns the topology
 * @throws ErrnoError ENODEV for an SMMUv3 node without `#iommu-cells` = 1 (as
 *   `arm_smmu_device_dt_probe`); EINVAL for a malformed `reg`/`interrupts`, an `iommus` phandle that
 *   names no node or a specifier shorter than the target's `#iommu-cells`, a master naming two
 *   different SMMUs (`iommu_fwspec_init`), or an `iommu-map` whose length is not a multiple of 4
 *   cells.
 */
export function deviceTreeTopology(fdt: FlattenedDeviceTree): FirmwareTopology {
  const smmus: SmmuFirmwareInstance[] = [];
  const smmuByNode = new Map<FdtNode, SmmuFirmwareInstance>();
  for (const node of fdt.allNodes()) {
    if (isSmmuV3(node) && isEnabled(node)) {
      const inst = smmuFromNode(fdt, node, smmus.length);
      smmus.push(inst);
      smmuByNode.set(node, inst);
    }
  }

  const platformMasters: PlatformMasterFirmware[] = [];
  for (const node of fdt.allNodes()) {
    const prop = node.props.get('iommus');
    if (prop === undefined || !isEnabled(node)) continue;
    const cells = readCells(prop);
    let smmu: SmmuFirmwareInstance | undefined;
    const streamIds: number[] = [];
    for (let i = 0; i < cells.length; ) {
      const target = fdt.nodeByPhandle(cells[i] ?? 0);
      if (target === undefined) throw einval(`${node.path}: iommus phandle ${cells[i]} names no node`);
      const n = u32Prop(target, '#iommu-cells') ?? 0;
      if (i + 1 + n > cells.length)
        throw einval(`${node.path}: iommus specifier shorter than #iommu-cells = ${n}`);
      const inst = smmuByNode.get(target);
      if (inst !== undefined) {
        if (smmu !== undefined && smmu !== inst) {
          throw einval(`${node.path}: iommus names two IOMMUs (${smmu.name}, ${inst.name})`);
        }
        smmu = inst;
        streamIds.push(cells[i + 1] ?? 0);
      }
      i += 1 + n;
    }
    if (smmu === undefined) continue;
    platformMasters.push({
      name: node.path,
      fwspec: {
        smmu,
        streamIds,
        pasidBits: u32Prop(node, 'pasid-num-bits') ?? 0,
        canStall: node.props.has('dma-can-stall'),
        ats: false,
      },
    });
  }

  const rootComplexes: PciRootComplexFirmware[] = [];
  const bridges = new Map<number, FdtNode>();
  for (const node of fdt.allNodes()) {
    const dt = node.props.get('device_type');
    if (dt === undefined || readStringList(dt)[0] !== 'pci' || !isEnabled(node)) continue;
    if (node.parent !== null && node.parent.props.get('device_type') !== undefined) continue;
    const segment = u32Prop(node, 'linux,pci-domain') ?? rootComplexes.length;
    const map = node.props.get('iommu-map');
    if (map !== undefined && readCells(map).length % 4 !== 0) {
      throw einval(`${node.path}: iommu-map length ${map.length} is not a multiple of 4 cells`);
    }
    bridges.set(segment, node);
    rootComplexes.push({
      name: node.path,
      segment,
      ats: node.props.has('ats-supported'),
      pri: false,
      pasidForwarding: false,
      pasidMaxWidth: 0,
    });
  }

  const platformByName = new Map(platformMasters.map((m) => [m.name, m.fwspec]));
  return {
    source: 'device-tree',
    smmus,
    platformMasters,
    rootComplexes,
    reservedRanges: [],
    resolvePci(segment, rid): SmmuFwspec | null {
      const bridge = bridges.get(segment);
      if (bridge === undefined) return null;
      const hit = ofMapId(fdt, bridge, rid & 0xffff);
      if (hit === null) return null;
      const smmu = smmuByNode.get(hit.target);
      if (smmu === undefined) return null;
      return {
        smmu,
        streamIds: [hit.id],
        pasidBits: 0,
        canStall: false,
        ats: bridge.props.has('ats-supported'),
      };
    },
    resolvePlatform(name) {
      return platformByName.get(name) ?? null;
    },
  };
}

/**
 * `of_map_id(np, id, "iommu-map", "iommu-map-mask", ...)`: the IOMMU node and output ID for an
 * input ID, or `null` when the bridge has no `iommu-map` or no entry covers the ID.
 *
 * @throws ErrnoError EFAULT when an entry's `rid-base` has bits the mask clears; ENODEV when the
 *   matching entry's phandle names no node.
 */
function ofMapId(
  fdt: FlattenedDeviceTree,
  bridge: FdtNode,
  id: number,
): { target: FdtNode; id: number } | null {
  const map = bridge.props.get('iommu-map');
  if (map === undefined) return null;
  const mask = u32Prop(bridge, 'iommu-map-mask') ?? 0xffffffff;
  const masked = (id & mask) >>> 0;
  const cells = readCells(map);
  for (let i = 0; i + 4 <= cells.length; i += 4) {
    const idBase = cells[i] ?? 0;
    const phandle = cells[i + 1] ?? 0;
    const outBase = cells[i + 2] ?? 0;
    const len = cells[i + 3] ?? 0;
    if ((idBase & ~mask) >>> 0 !== 0) {
      throw new ErrnoError(
        'EFAULT',
        `${bridge.path}: invalid iommu-map translation - iommu-map-mask (0x${mask.toString(16)}) ignores id-base (0x${idBase.toString(16)})`,
      );
    }
    if (masked < idBase || masked >= idBase + len) continue;
    const target = fdt.nodeByPhandle(phandle);
    if (target === undefined)
      throw new ErrnoError('ENODEV', `${bridge.path}: iommu-map phandle ${phandle} names no node`);
    return { target, id: (masked - idBase + outBase) >>> 0 };
  }
  return null;
}
