/**
 * The generic device-tree IOMMU bindings (drivers/iommu/of_iommu.c, `of_map_id` of
 * drivers/of/base.c): `iommus`, `#iommu-cells`, `iommu-map`, `iommu-map-mask`, and the master
 * properties `dma-can-stall`, `pasid-num-bits`.
 *
 * Changes (additive only): none yet.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { FwNode } from './fwspec.js';

/** A device-tree property value: a flag (`true`), a cell array, a single u32, or a string. */
export type DtPropertyValue = boolean | number | string | readonly number[];

/**
 * A device-tree node (`struct device_node`), also usable as a firmware node (`fwnode_handle`).
 *
 * @remarks
 * `properties` holds raw properties by name: `iommus` and `iommu-map` as cell arrays whose phandle
 * cells are resolved through the {@link DeviceTree} the node belongs to; `#iommu-cells`,
 * `iommu-map-mask`, `pasid-num-bits` as numbers; `dma-can-stall` as `true`.
 */
export class DtNode implements FwNode {
  /** Full node name, e.g. `smmu@2b400000`. */
  readonly name: string;
  /** `phandle`, 0 when the node has none. */
  readonly phandle: number;
  /** Properties by name. */
  readonly properties: Record<string, DtPropertyValue>;
  /** `status = "okay"` (`of_device_is_available`); default true. */
  available: boolean;

  /**
   * @param name - node name
   * @param phandle - the node's phandle (0 = none)
   * @param properties - raw properties
   */
  constructor(name: string, phandle = 0, properties: Record<string, DtPropertyValue> = {}) {
    this.name = name;
    this.phandle = phandle;
    this.properties = properties;
    this.available = true;
  }

  /** `of_property_read_u32`: the number, the first cell of an array, or `undefined`. */
  readU32(name: string): number | undefined {
    const v = this.properties[name];
    if (typeof v === 'number') return v >>> 0;
    if (Array.isArray(v) && typeof v[0] === 'number') return v[0] >>> 0;
    return undefined;
  }

  /** Cells of a property (`of_get_property` as u32s), `undefined` when absent. */
  readCells(name: string): readonly number[] | undefined {
    const v = this.properties[name];
    if (typeof v === 'number') return [v];
    if (Array.isArray(v)) return v as readonly number[];
    return undefined;
  }
}

/** A device tree: resolves phandles (`of_find_node_by_phandle`). */
export class DeviceTree {
  private readonly byPhandle = new Map<number, DtNode>();

  /**
   * Add a node.
   * @throws ErrnoError `EEXIST` for a duplicate phandle
   */
  add(node: DtNode): DtNode {
    if (node.phandle !== 0) {
      if (this.byPhandle.has(node.phandle)) throw new ErrnoError('EEXIST', `phandle ${node.phandle} in use`);
      this.byPhandle.set(node.phandle, node);
    }
    return node;
  }

  /** `of_find_node_by_phandle(phandle)`: the node, or `null`. */
  findNodeByPhandle(phandle: number): DtNode | null {
    return this.byPhandle.get(phandle) ?? null;
  }
}

/** `struct of_phandle_args`: an IOMMU node and the specifier cells that follow its phandle. */
export interface OfPhandleArgs {
  /** The IOMMU's node. */
  np: DtNode;
  /** The specifier cells (`#iommu-cells` of them). */
  args: number[];
}

/** Result of {@link ofMapId}: the target node (`null` when none matched) and the output ID. */
export interface OfMapIdResult {
  /** The node the ID maps to; `null` when the map has no entry for the ID (bypass). */
  target: DtNode | null;
  /** The translated ID (the input ID itself on bypass). */
  id: number;
}

/**
 * `of_map_id(np, id, map_name, map_mask_name, &target, &id_out)`: translate an ID through a
 * `<id-base phandle out-base length>` map.
 *
 * @remarks
 * No map: `ENODEV` when a target was asked for (`wantTarget`), else the ID unchanged. The ID is
 * masked with the mask property (default 0xffffffff); the first entry whose
 * `[id-base, id-base + length)` contains it (and, when `restrictTarget` is given, whose phandle is
 * that node) yields `masked - id-base + out-base`. No entry: the ID unchanged and target `null`
 * (Linux logs "no iommu-map translation" and bypasses).
 *
 * @param tree - resolves phandles
 * @param np - the node carrying the map
 * @param id - the input ID (u32), e.g. a PCI RID
 * @param mapName - `'iommu-map'` (or `'msi-map'`)
 * @param maskName - `'iommu-map-mask'`, or `null`
 * @param wantTarget - whether the caller needs a target node
 * @param restrictTarget - only accept entries pointing at this node (`*target` preset)
 * @throws ErrnoError `EINVAL` if the map length is not a multiple of 4 cells (or empty);
 *   `EFAULT` if an entry's id-base has bits outside the mask; `ENODEV` for a missing map when a
 *   target is wanted, or an unresolvable phandle in the matching entry
 */
export function ofMapId(
  tree: DeviceTree,
  np: DtNode,
  id: number,
  mapName: string,
  maskName: string | null,
  wantTarget = true,
  restrictTarget: DtNode | null = null,
): OfMapIdResult {
  const map = np.readCells(mapName);
  if (!map) {
    if (wantTarget) throw new ErrnoError('ENODEV', `${np.name}: no ${mapName}`);
    return { target: null, id };
  }
  if (map.length === 0 || map.length % 4 !== 0)
    throw new ErrnoError('EINVAL', `${np.name}: bad ${mapName} length ${map.length * 4}`);
  const mask = (maskName !== null ? np.readU32(maskName) : undefined) ?? 0xffff_ffff;
  const masked = (mask & id) >>> 0;
  for (let i = 0; i < map.length; i += 4) {
    const idBase = map[i]! >>> 0;
    const phandle = map[i + 1]!;
    const outBase = map[i + 2]! >>> 0;
    const len = map[i + 3]! >>> 0;
    if ((idBase & ~mask) >>> 0 !== 0)
      throw new ErrnoError(
        'EFAULT',
        `${np.name}: bad ${mapName}, id-base ${idBase} not compatible with mask`,
      );
    if (masked < idBase || masked >= idBase + len) continue;
    const target = tree.findNodeByPhandle(phandle);
    if (!target) throw new ErrnoError('ENODEV', `${np.name}: ${mapName} phandle ${phandle} not found`);
    if (restrictTarget && restrictTarget !== target) continue;
    return { target: wantTarget ? target : null, id: (masked - idBase + outBase) >>> 0 };
  }
  return { target: restrictTarget, id };
}

/**
 * Parse a master's `iommus` property into specifiers, as `of_parse_phandle_with_args` does with
 * the list name `"iommus"` and the cells name `"#iommu-cells"` for each index i.
 *
 * @throws ErrnoError `ENOENT` if a phandle does not resolve; `EINVAL` if the cells run out
 */
export function ofParseIommus(tree: DeviceTree, np: DtNode): OfPhandleArgs[] {
  const cells = np.readCells('iommus');
  if (!cells) return [];
  const out: OfPhandleArgs[] = [];
  let i = 0;
  while (i < cells.length) {
    const target = tree.findNodeByPhandle(cells[i]!);
    if (!target) throw new ErrnoError('ENOENT', `${np.name}: iommus phandle ${cells[i]} not found`);
    const n = target.readU32('#iommu-cells') ?? 0;
    if (i + 1 + n > cells.length) throw new ErrnoError('EINVAL', `${np.name}: iommus truncated`);
    out.push({ np: target, args: cells.slice(i + 1, i + 1 + n) });
    i += 1 + n;
  }
  return out;
}
