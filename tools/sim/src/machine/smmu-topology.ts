/**
 * What an IORT or a device tree states about SMMUv3 topology, read straight from the parsed table
 * (not from the machine built on it): the counts `iommu-sim inspect` prints, one human line per ID
 * mapping of each SMMU, and the reserved regions. These are the numbers a reader can check against
 * the table's disassembly or the .dts source.
 */

import {
  type FdtNode,
  type FlattenedDeviceTree,
  type IortNamedComponentNode,
  IortNodeType,
  type IortRmrNode,
  type IortRootComplexNode,
  type IortTable,
  readCells,
  readStringList,
} from '@iommu-ts/arm-smmu-v3';
import type { TopologyReservedRegion } from './machine.js';

/** Counts, per-unit mapping lines and reserved regions of a platform's SMMUv3 topology. */
export interface SmmuTableFacts {
  /** `units`, `scopes`, `reservedRegions` and format-specific extras (see `TopologyView.counts`). */
  readonly counts: { units: number; scopes: number; reservedRegions: number } & Record<string, number>;
  /** Mapping lines by firmware SMMU name (`iort@0x48`, or the DT node path). */
  readonly scopesByUnit: ReadonlyMap<string, string[]>;
  /** Reserved regions (IORT RMR descriptors, DT reserved-memory regions SMMU masters use). */
  readonly reserved: readonly TopologyReservedRegion[];
}

const hex = (n: number | bigint, w = 0): string => `0x${n.toString(16).padStart(w, '0')}`;

function push(map: Map<string, string[]>, key: string, line: string): void {
  const list = map.get(key) ?? [];
  list.push(line);
  map.set(key, list);
}

/**
 * Facts of an IORT: `units` = SMMUv3 nodes; `scopes` = ID mappings of root-complex and
 * named-component nodes whose output reference is an SMMUv3 node; `reservedRegions` = RMR memory
 * range descriptors; extras `rootComplexes`, `namedComponents`, `its`, `rmrNodes`.
 * @param table - the parsed IORT
 * @returns the facts
 */
export function iortFacts(table: IortTable): SmmuTableFacts {
  const smmuName = (offset: number): string | null => {
    const n = table.nodeAt(offset);
    return n !== undefined && n.type === IortNodeType.SMMU_V3 && !('other' in n)
      ? `iort@${hex(offset)}`
      : null;
  };
  const scopesByUnit = new Map<string, string[]>();
  const reserved: TopologyReservedRegion[] = [];
  let units = 0;
  let scopes = 0;
  let reservedRegions = 0;
  let rootComplexes = 0;
  let namedComponents = 0;
  let its = 0;
  let rmrNodes = 0;
  for (const node of table.nodes) {
    if ('other' in node) continue;
    switch (node.type) {
      case IortNodeType.ITS_GROUP:
        its++;
        break;
      case IortNodeType.SMMU_V3:
        units++;
        scopesByUnit.set(`iort@${hex(node.offset)}`, scopesByUnit.get(`iort@${hex(node.offset)}`) ?? []);
        break;
      case IortNodeType.PCI_ROOT_COMPLEX:
      case IortNodeType.NAMED_COMPONENT: {
        const rc = node.type === IortNodeType.PCI_ROOT_COMPLEX;
        if (rc) rootComplexes++;
        else namedComponents++;
        const who = rc
          ? `RC segment ${(node as IortRootComplexNode).pciSegment}`
          : (node as IortNamedComponentNode).deviceName;
        for (const m of node.mappings) {
          const target = smmuName(m.outputReference);
          if (target === null) continue;
          scopes++;
          const single = (m.flags & 1) !== 0;
          const line = single
            ? `${who} → StreamID ${hex(m.outputBase)} (single mapping)`
            : `${who} ${rc ? 'RIDs' : 'IDs'} ${hex(m.inputBase, 4)}–${hex(m.inputBase + m.idCount, 4)} → StreamIDs ${hex(m.outputBase, 4)}–${hex(m.outputBase + m.idCount, 4)}`;
          push(scopesByUnit, target, line);
        }
        break;
      }
      case IortNodeType.RMR: {
        rmrNodes++;
        const rmr = node as IortRmrNode;
        const devices: string[] = [];
        for (const m of rmr.mappings) {
          const target = smmuName(m.outputReference) ?? `iort@${hex(m.outputReference)}`;
          devices.push(
            m.idCount === 0
              ? `${target} StreamID ${hex(m.outputBase)}`
              : `${target} StreamIDs ${hex(m.outputBase)}–${hex(m.outputBase + m.idCount)}`,
          );
        }
        for (const d of rmr.descriptors) {
          reservedRegions++;
          reserved.push({ start: d.base, end: d.base + d.length - 1n, kind: 'RMR', devices });
        }
        break;
      }
    }
  }
  return {
    counts: { units, scopes, reservedRegions, rootComplexes, namedComponents, its, rmrNodes },
    scopesByUnit,
    reserved,
  };
}

function u32(node: FdtNode, name: string): number | undefined {
  const v = node.props.get(name);
  return v === undefined || v.length < 4 ? undefined : readCells(v)[0];
}

function enabled(node: FdtNode): boolean {
  const s = node.props.get('status');
  if (s === undefined) return true;
  const v = readStringList(s)[0];
  return v === 'okay' || v === 'ok';
}

function isSmmuV3(node: FdtNode): boolean {
  const c = node.props.get('compatible');
  return c !== undefined && readStringList(c).includes('arm,smmu-v3');
}

function isHostBridge(node: FdtNode): boolean {
  const dt = node.props.get('device_type');
  if (dt === undefined || readStringList(dt)[0] !== 'pci') return false;
  return node.parent === null || node.parent.props.get('device_type') === undefined;
}

/**
 * Facts of a device tree: `units` = enabled `arm,smmu-v3` nodes (extra `disabledUnits`);
 * `scopes` = `iommus` specifiers of enabled nodes naming an enabled SMMUv3 plus `iommu-map`
 * entries of enabled PCI host bridges naming one; `reservedRegions` = `/reserved-memory` regions
 * that such a master names in `memory-region`; extras `hostBridges`, `masters`.
 * @param fdt - the parsed tree
 * @returns the facts
 */
export function dtFacts(fdt: FlattenedDeviceTree): SmmuTableFacts {
  const scopesByUnit = new Map<string, string[]>();
  const smmuNodes = new Set<FdtNode>();
  let disabledUnits = 0;
  for (const node of fdt.allNodes()) {
    if (!isSmmuV3(node)) continue;
    if (enabled(node)) {
      smmuNodes.add(node);
      scopesByUnit.set(node.path, []);
    } else disabledUnits++;
  }
  let scopes = 0;
  let masters = 0;
  let hostBridges = 0;
  const usedRegions = new Map<FdtNode, string[]>();
  for (const node of fdt.allNodes()) {
    if (!enabled(node)) continue;
    const prop = node.props.get('iommus');
    let isMaster = false;
    if (prop !== undefined) {
      const cells = readCells(prop);
      for (let i = 0; i < cells.length; ) {
        const target = fdt.nodeByPhandle(cells[i] ?? 0);
        const n = target === undefined ? 0 : (u32(target, '#iommu-cells') ?? 0);
        if (target !== undefined && smmuNodes.has(target)) {
          scopes++;
          isMaster = true;
          const ids = cells.slice(i + 1, i + 1 + n).map((c) => hex(c));
          push(scopesByUnit, target.path, `iommus ${node.path} → StreamID ${ids.join(' ')}`);
        }
        i += 1 + n;
      }
    }
    if (isHostBridge(node)) {
      hostBridges++;
      const map = node.props.get('iommu-map');
      const cells = map === undefined ? [] : readCells(map);
      for (let i = 0; i + 4 <= cells.length; i += 4) {
        const target = fdt.nodeByPhandle(cells[i + 1] ?? 0);
        if (target === undefined || !smmuNodes.has(target)) continue;
        scopes++;
        isMaster = true;
        const base = cells[i] ?? 0;
        const out = cells[i + 2] ?? 0;
        const len = cells[i + 3] ?? 0;
        push(
          scopesByUnit,
          target.path,
          `iommu-map ${node.path} RIDs ${hex(base, 4)}–${hex(base + len - 1, 4)} → StreamIDs ${hex(out, 4)}–${hex(out + len - 1, 4)}`,
        );
      }
    }
    if (isMaster) {
      masters++;
      const mr = node.props.get('memory-region');
      for (const ph of mr === undefined ? [] : readCells(mr)) {
        const region = fdt.nodeByPhandle(ph);
        if (region === undefined) continue;
        const users = usedRegions.get(region) ?? [];
        users.push(node.path);
        usedRegions.set(region, users);
      }
    }
  }
  const reserved: TopologyReservedRegion[] = [];
  for (const [region, users] of usedRegions) {
    const reg = readCells(region.props.get('reg') ?? new Uint8Array());
    const parent = region.parent;
    const ac = (parent && u32(parent, '#address-cells')) ?? 2;
    const sc = (parent && u32(parent, '#size-cells')) ?? 1;
    const big = (cells: readonly number[]): bigint =>
      cells.reduce((v, c) => (v << 32n) | BigInt(c >>> 0), 0n);
    const start = big(reg.slice(0, ac));
    const size = big(reg.slice(ac, ac + sc));
    reserved.push({
      start,
      end: start + (size > 0n ? size - 1n : 0n),
      kind: 'reserved-memory',
      devices: users,
    });
  }
  return {
    counts: {
      units: smmuNodes.size,
      scopes,
      reservedRegions: reserved.length,
      disabledUnits,
      hostBridges,
      masters,
    },
    scopesByUnit,
    reserved,
  };
}
