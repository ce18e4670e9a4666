/**
 * What a VT-d machine shows: the unit counters read from a `VtdModel`, and the topology view of a
 * DMAR table (counts as the table states them, one line per device scope, RMRRs).
 */

import {
  type DmarDeviceScope,
  DmarScopeType,
  type DmarTable,
  type DmarTopology,
  type VtdModel,
  vtdFaultReasonName,
} from '@iommu-ts/intel-vtd';
import type { TopologyReservedRegion, UnitCounters } from './machine.js';
import { bdfName, scopePathText } from './vtd-pci.js';

/**
 * Counters of one VT-d model in the simulator's vocabulary: IOTLB hits and misses, page walks of
 * the translator, invalidation descriptors executed by type (the model's descriptor names:
 * `iotlb`, `context-cache`, `pasid-iotlb`, `pasid-cache`, `device-tlb`, `pasid-device-tlb`, `iec`,
 * `wait`; page group responses are counted as page responses instead) plus `reg-context` /
 * `reg-iotlb` register flushes, recorded faults by reason mnemonic (`reason-0xNN` when unnamed),
 * page requests queued and page group responses sent.
 * @param vtd - the model
 * @returns the counters (cumulative since the model was built)
 */
export function vtdUnitCounters(vtd: VtdModel): UnitCounters {
  const invalidations: Record<string, number> = {};
  for (const [type, n] of vtd.iq.stats.byType)
    if (type !== 'page-group-response' && n > 0) invalidations[type] = n;
  if (vtd.stats.registerContextInvalidations > 0)
    invalidations['reg-context'] = vtd.stats.registerContextInvalidations;
  if (vtd.stats.registerIotlbInvalidations > 0)
    invalidations['reg-iotlb'] = vtd.stats.registerIotlbInvalidations;
  const hwFaults: Record<string, number> = {};
  for (const [code, n] of vtd.faults.stats.byReason) {
    const key = vtdFaultReasonName(code) ?? `reason-0x${code.toString(16).padStart(2, '0')}`;
    hwFaults[key] = (hwFaults[key] ?? 0) + n;
  }
  return {
    iotlbHits: vtd.iotlb.stats.hits,
    iotlbMisses: vtd.iotlb.stats.misses,
    pageWalks: vtd.translator.stats.walks,
    invalidations,
    hwFaults,
    pageRequests: vtd.prq.stats.queued,
    pageResponses: vtd.stats.prgResponses,
    stalls: 0,
  };
}

/**
 * The counts `inspect` shows for a DMAR table, as its disassembly states them.
 * @param table - the parsed table
 * @returns `units` (DRHD structures), `scopes` (device-scope entries of DRHD, RMRR, ATSR and SATC
 *   structures), `reservedRegions` (RMRR structures), and `atsr`, `satc`, `rhsa`, `andd` counts
 */
export function dmarCounts(
  table: DmarTable,
): { units: number; scopes: number; reservedRegions: number } & Record<string, number> {
  const n = (kind: string): number => table.structures.filter((s) => s.kind === kind).length;
  let scopes = 0;
  for (const s of table.structures)
    if (s.kind === 'drhd' || s.kind === 'rmrr' || s.kind === 'atsr' || s.kind === 'satc')
      scopes += s.scopes.length;
  return {
    units: n('drhd'),
    scopes,
    reservedRegions: n('rmrr'),
    atsr: n('atsr'),
    satc: n('satc'),
    rhsa: n('rhsa'),
    andd: n('andd'),
  };
}

/**
 * One human line for a device scope entry.
 * @param scope - the entry
 * @param segment - its structure's segment
 * @param topology - for ANDD names and bridge bus ranges
 * @returns e.g. `PCI endpoint 00:02.0`, `PCI sub-hierarchy 00:07.0 (buses 01-01)`,
 *   `I/O APIC 2 (source-id 00:1e.7)`, `ACPI name-space device 1 \_SB.PCI0.I2C0 (source-id 00:15.0)`
 */
export function scopeLine(scope: DmarDeviceScope, segment: number, topology: DmarTopology): string {
  const last = scope.path[scope.path.length - 1];
  const sid = last === undefined ? '?' : bdfName(segment, scope.startBus, (last.device << 3) | last.function);
  switch (scope.type) {
    case DmarScopeType.ENDPOINT:
    case DmarScopeType.BRIDGE: {
      const unit = topology.units.find((u) => u.pciScopes.some((r) => r.scope === scope));
      const r = unit?.pciScopes.find((x) => x.scope === scope);
      const where =
        r?.bus !== undefined && r.bus !== null && r.devfn !== null
          ? bdfName(segment, r.bus, r.devfn)
          : scopePathText(scope);
      if (scope.type === DmarScopeType.ENDPOINT) return `PCI endpoint ${where}`;
      const buses = r?.buses;
      return buses === null || buses === undefined
        ? `PCI sub-hierarchy ${where}`
        : `PCI sub-hierarchy ${where} (buses ${buses.secondary.toString(16).padStart(2, '0')}-${buses.subordinate.toString(16).padStart(2, '0')})`;
    }
    case DmarScopeType.IOAPIC:
      return `I/O APIC ${scope.enumerationId} (source-id ${sid})`;
    case DmarScopeType.HPET:
      return `HPET ${scope.enumerationId} (source-id ${sid})`;
    case DmarScopeType.NAMESPACE: {
      const andd = topology.table.structures.find(
        (s) => s.kind === 'andd' && s.deviceNumber === scope.enumerationId,
      );
      const name = andd?.kind === 'andd' ? andd.name : '(no ANDD)';
      return `ACPI name-space device ${scope.enumerationId} ${name} (source-id ${sid})`;
    }
    default:
      return `scope type ${scope.type} ${scopePathText(scope)}`;
  }
}

/**
 * The RMRRs of a table as reserved regions, with the devices each names.
 * @param table - the parsed table
 * @returns one region per RMRR structure, in table order
 */
export function dmarReservedRegions(table: DmarTable): TopologyReservedRegion[] {
  const out: TopologyReservedRegion[] = [];
  for (const s of table.structures) {
    if (s.kind !== 'rmrr') continue;
    out.push({
      start: s.base,
      end: s.limit,
      kind: 'RMRR',
      devices: s.scopes.map((sc) => {
        const last = sc.path[sc.path.length - 1];
        return sc.path.length === 1 && last !== undefined
          ? bdfName(s.segment, sc.startBus, (last.device << 3) | last.function)
          : scopePathText(sc);
      }),
    });
  }
  return out;
}
