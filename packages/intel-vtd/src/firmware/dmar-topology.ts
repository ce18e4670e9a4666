/**
 * What a parsed DMAR table says about the platform: the remapping units with the devices their
 * scopes name (or the INCLUDE_PCI_ALL catch-all), the RMRRs as direct-mapped reserved regions per
 * device, root-port ATS support from the ATSR / SATC structures, and the lookup from a PCI
 * (segment, bus, devfn) to the unit that translates its DMA. Mirrors Linux's
 * drivers/iommu/intel/dmar.c (`dmar_register_drhd_unit` ordering, `dmar_match_pci_path`,
 * `dmar_ats_supported`, `dmar_find_matched_satc_unit`, `dmar_parse_one_rhsa`) and
 * drivers/iommu/intel/iommu.c (`device_lookup_iommu`, `intel_iommu_get_resv_regions`).
 */

import { IOMMU_READ, IOMMU_WRITE } from '@iommu-ts/io-pgtable';
import type { IommuResvRegion, PciBus, PciDevice, PciHostBridge } from '@iommu-ts/iommu-core';
import { IommuResvType } from '@iommu-ts/iommu-core';
import type { DmarAtsr, DmarDeviceScope, DmarDrhd, DmarRmrr, DmarSatc, DmarTable } from './dmar.js';
import { DmarScopeType } from './dmar.js';

/** The bus numbers behind a PCI bridge. */
export interface DmarBridgeBuses {
  /** Secondary bus number (the bus directly behind the bridge). */
  readonly secondary: number;
  /** Subordinate bus number (the highest bus number behind the bridge). */
  readonly subordinate: number;
}

/**
 * What the topology needs to know about the PCI hierarchy to follow multi-hop scope paths: for a
 * function, the bus range behind it when it is a bridge.
 */
export interface DmarPciTopology {
  /**
   * The secondary and subordinate bus numbers of a PCI-to-PCI bridge.
   * @param segment - PCI segment
   * @param bus - bus number
   * @param devfn - `slot << 3 | function`
   * @returns the bridge's bus range, or `null` when the function is absent or not a bridge
   */
  bridgeBuses(segment: number, bus: number, devfn: number): DmarBridgeBuses | null;
}

/** A device scope resolved against the PCI hierarchy. */
export interface DmarResolvedScope {
  /** The scope entry. */
  readonly scope: DmarDeviceScope;
  /** PCI segment (the structure's). */
  readonly segment: number;
  /** Bus of the named function, or `null` when a bridge on the path is unknown. */
  readonly bus: number | null;
  /** devfn of the named function (its last path hop), or `null` for an empty path. */
  readonly devfn: number | null;
  /** Bus range behind the named function when it is a bridge, else `null`. */
  readonly buses: DmarBridgeBuses | null;
}

/** A non-PCI device named by a scope: I/O APIC, HPET or ACPI name-space device. */
export interface DmarNonPciDevice {
  /** Enumeration ID: I/O APIC ID, HPET number or ANDD device number. */
  readonly enumerationId: number;
  /** Requester bus of the device. */
  readonly bus: number;
  /** Requester devfn of the device. */
  readonly devfn: number;
}

/** An ACPI name-space device attached to a unit. */
export interface DmarNamespaceDevice extends DmarNonPciDevice {
  /** Its ACPI path from the matching ANDD, or `null` when no ANDD has its number. */
  readonly name: string | null;
}

/** One remapping unit (Linux `struct dmar_drhd_unit`). */
export interface DmarUnit {
  /** Position of the DRHD among the table's DRHDs (table order). */
  readonly index: number;
  /** The DRHD structure. */
  readonly drhd: DmarDrhd;
  /** Register set base address. */
  readonly registerBase: bigint;
  /** Register set size in bytes. */
  readonly registerSize: bigint;
  /** PCI segment. */
  readonly segment: number;
  /** INCLUDE_PCI_ALL: catches every PCI device of the segment no other unit names. */
  readonly includePciAll: boolean;
  /** PCI endpoint and sub-hierarchy scopes. */
  readonly pciScopes: readonly DmarResolvedScope[];
  /** I/O APICs (interrupt remapping). */
  readonly ioapics: readonly DmarNonPciDevice[];
  /** MSI-capable HPETs (interrupt remapping). */
  readonly hpets: readonly DmarNonPciDevice[];
  /** ACPI name-space devices. */
  readonly namespaceDevices: readonly DmarNamespaceDevice[];
  /** Proximity domain from a matching RHSA, or `null`. */
  readonly proximityDomain: number | null;
}

/** How {@link DmarTopology.unitFor} matched. */
export type DmarUnitMatch = 'device' | 'bridge' | 'include-all';

/** Result of {@link DmarTopology.unitFor}. */
export interface DmarUnitLookup {
  /** The unit. */
  readonly unit: DmarUnit;
  /** A scope names the function, a sub-hierarchy scope covers its bus, or the catch-all took it. */
  readonly match: DmarUnitMatch;
}

/**
 * A {@link DmarPciTopology} read from `@iommu-ts/iommu-core` PCI host bridges: a bridge's
 * secondary bus is its `subordinate` bus and its subordinate number the highest bus below it.
 *
 * @param hostBridges - the platform's host bridges (one per segment or root bus)
 * @returns the lookup
 */
export function pciTopologyFromHostBridges(hostBridges: readonly PciHostBridge[]): DmarPciTopology {
  const highest = (bus: PciBus): number => {
    let max = bus.number;
    for (const d of bus.devices) if (d.subordinate !== null) max = Math.max(max, highest(d.subordinate));
    return max;
  };
  const find = (bus: PciBus, number: number): PciBus | null => {
    if (bus.number === number) return bus;
    for (const d of bus.devices) {
      if (d.subordinate === null) continue;
      const hit = find(d.subordinate, number);
      if (hit !== null) return hit;
    }
    return null;
  };
  return {
    bridgeBuses(segment, bus, devfn) {
      for (const hb of hostBridges) {
        if (hb.segment !== segment) continue;
        const b = find(hb.rootBus, bus);
        const dev = b?.devices.find((d) => d.devfn === devfn);
        if (dev?.subordinate)
          return { secondary: dev.subordinate.number, subordinate: highest(dev.subordinate) };
      }
      return null;
    },
  };
}

const NO_PCI: DmarPciTopology = { bridgeBuses: () => null };

/**
 * Follow a scope path: the first hop is on the start bus, each further hop on the secondary bus of
 * the bridge named by the previous one.
 *
 * @param scope - the device scope
 * @param segment - its structure's segment
 * @param pci - the hierarchy (bridge bus ranges)
 * @returns the named function, with `bus` `null` when a bridge on the way is unknown
 */
export function resolveDmarScope(
  scope: DmarDeviceScope,
  segment: number,
  pci: DmarPciTopology,
): DmarResolvedScope {
  const last = scope.path[scope.path.length - 1];
  if (last === undefined) return { scope, segment, bus: null, devfn: null, buses: null };
  let bus: number | null = scope.startBus;
  for (let i = 0; i < scope.path.length - 1 && bus !== null; i++) {
    const hop = scope.path[i];
    if (hop === undefined) break;
    bus = pci.bridgeBuses(segment, bus, (hop.device << 3) | hop.function)?.secondary ?? null;
  }
  const devfn = (last.device << 3) | last.function;
  return { scope, segment, bus, devfn, buses: bus === null ? null : pci.bridgeBuses(segment, bus, devfn) };
}

function nonPci(scope: DmarDeviceScope): DmarNonPciDevice {
  const last = scope.path[scope.path.length - 1];
  return {
    enumerationId: scope.enumerationId,
    bus: scope.startBus,
    devfn: last === undefined ? 0 : (last.device << 3) | last.function,
  };
}

function covers(r: DmarResolvedScope, bus: number, devfn: number): DmarUnitMatch | null {
  if (r.bus === bus && r.devfn === devfn) return 'device';
  if (r.buses !== null && bus >= r.buses.secondary && bus <= r.buses.subordinate) return 'bridge';
  return null;
}

const isPciScope = (s: DmarDeviceScope): boolean =>
  s.type === DmarScopeType.ENDPOINT || s.type === DmarScopeType.BRIDGE;

/** The platform view of a DMAR table. */
export class DmarTopology {
  /** The parsed table. */
  readonly table: DmarTable;
  /** Units in table order. */
  readonly units: readonly DmarUnit[];
  /** Units in Linux's `dmar_drhd_units` list order: named units last-parsed first, catch-alls at the tail. */
  readonly searchOrder: readonly DmarUnit[];
  readonly #rmrrs: readonly { rmrr: DmarRmrr; scopes: readonly DmarResolvedScope[] }[];
  readonly #atsrs: readonly { atsr: DmarAtsr; scopes: readonly DmarResolvedScope[] }[];
  readonly #satcs: readonly { satc: DmarSatc; scopes: readonly DmarResolvedScope[] }[];

  /**
   * @param table - from `parseDmar`
   * @param pci - the PCI hierarchy used to follow multi-hop paths and bridge ranges; without it only
   *   single-hop paths resolve and sub-hierarchy scopes cover nothing but the bridge itself
   * @remarks A DRHD repeating an earlier one's segment and register base is ignored, as
   * `dmar_parse_one_drhd` does (`dmar_find_dmaru`).
   */
  constructor(table: DmarTable, pci: DmarPciTopology = NO_PCI) {
    this.table = table;
    const names = new Map<number, string>();
    const affinity = new Map<bigint, number>();
    for (const s of table.structures) {
      if (s.kind === 'andd') names.set(s.deviceNumber, s.name);
      else if (s.kind === 'rhsa' && !affinity.has(s.registerBase))
        affinity.set(s.registerBase, s.proximityDomain);
    }
    const units: DmarUnit[] = [];
    const seen = new Set<string>();
    for (const s of table.structures) {
      if (s.kind !== 'drhd') continue;
      // dmar_parse_one_drhd: a DRHD whose (segment, base) is already registered is skipped.
      const key = `${s.segment}:${s.registerBase}`;
      if (seen.has(key)) continue;
      seen.add(key);
      units.push({
        index: units.length,
        drhd: s,
        registerBase: s.registerBase,
        registerSize: s.registerSize,
        segment: s.segment,
        includePciAll: s.includePciAll,
        pciScopes: s.scopes.filter(isPciScope).map((sc) => resolveDmarScope(sc, s.segment, pci)),
        ioapics: s.scopes.filter((sc) => sc.type === DmarScopeType.IOAPIC).map(nonPci),
        hpets: s.scopes.filter((sc) => sc.type === DmarScopeType.HPET).map(nonPci),
        namespaceDevices: s.scopes
          .filter((sc) => sc.type === DmarScopeType.NAMESPACE)
          .map((sc) => ({ ...nonPci(sc), name: names.get(sc.enumerationId) ?? null })),
        proximityDomain: affinity.get(s.registerBase) ?? null,
      });
    }
    this.units = units;
    // dmar_register_drhd_unit: list_add for named units (so reverse order), list_add_tail for catch-alls.
    this.searchOrder = [
      ...units.filter((u) => !u.includePciAll).reverse(),
      ...units.filter((u) => u.includePciAll),
    ];
    const resolveAll = (scopes: readonly DmarDeviceScope[], segment: number): DmarResolvedScope[] =>
      scopes.filter(isPciScope).map((sc) => resolveDmarScope(sc, segment, pci));
    // RMRR and ATSR units are also list_add'ed: Linux walks them last-parsed first.
    this.#rmrrs = table.structures
      .flatMap((s) => (s.kind === 'rmrr' ? [{ rmrr: s, scopes: resolveAll(s.scopes, s.segment) }] : []))
      .reverse();
    this.#atsrs = table.structures
      .flatMap((s) => (s.kind === 'atsr' ? [{ atsr: s, scopes: resolveAll(s.scopes, s.segment) }] : []))
      .reverse();
    this.#satcs = table.structures
      .flatMap((s) => (s.kind === 'satc' ? [{ satc: s, scopes: resolveAll(s.scopes, s.segment) }] : []))
      .reverse();
  }

  /**
   * The unit that translates DMA from a PCI function (Linux `device_lookup_iommu`): the first unit
   * in {@link DmarTopology.searchOrder} of the same segment whose scope names the function or whose
   * sub-hierarchy scope covers its bus; else the segment's INCLUDE_PCI_ALL unit.
   *
   * @param segment - PCI segment
   * @param bus - bus number
   * @param devfn - `slot << 3 | function`
   * @returns the unit and how it matched, or `null` when no unit covers the function
   */
  unitFor(segment: number, bus: number, devfn: number): DmarUnitLookup | null {
    for (const unit of this.searchOrder) {
      if (unit.segment !== segment) continue;
      for (const r of unit.pciScopes) {
        const match = covers(r, bus, devfn);
        if (match !== null) return { unit, match };
      }
      if (unit.includePciAll) return { unit, match: 'include-all' };
    }
    return null;
  }

  /**
   * {@link DmarTopology.unitFor} for an `@iommu-ts/iommu-core` PCI function.
   *
   * @param pdev - the function
   * @returns as {@link DmarTopology.unitFor}
   */
  unitForDevice(pdev: PciDevice): DmarUnitLookup | null {
    return this.unitFor(pdev.segment, pdev.busNr, pdev.devfn);
  }

  /**
   * The unit an I/O APIC's or HPET's interrupts are remapped by (`map_ioapic_to_iommu`,
   * `map_hpet_to_iommu` of intel/irq_remapping.c read the same scopes).
   *
   * @param kind - `'ioapic'` or `'hpet'`
   * @param enumerationId - I/O APIC ID or HPET number
   * @returns the unit, or `null`
   */
  unitForInterruptSource(kind: 'ioapic' | 'hpet', enumerationId: number): DmarUnit | null {
    for (const unit of this.units) {
      const list = kind === 'ioapic' ? unit.ioapics : unit.hpets;
      if (list.some((d) => d.enumerationId === enumerationId)) return unit;
    }
    return null;
  }

  /**
   * The unit an ACPI name-space device belongs to, by its ACPI path.
   *
   * @param name - the path as the ANDD spells it, for example `\_SB.PCI0.I2C0`
   * @returns the unit, or `null` when no ANDD names it or no unit scopes its number
   */
  unitForNamespaceDevice(name: string): DmarUnit | null {
    for (const unit of this.searchOrder) if (unit.namespaceDevices.some((d) => d.name === name)) return unit;
    return null;
  }

  /**
   * The RMRRs a PCI function must keep identity-mapped, as reserved regions
   * (`intel_iommu_get_resv_regions`): every RMRR of the function's segment whose scope names the
   * function or a bridge above it; read/write, of type DIRECT or, for devices Linux treats as
   * relaxable (USB and graphics, `device_rmrr_is_relaxable`), DIRECT_RELAXABLE.
   *
   * @param segment - PCI segment
   * @param bus - bus number
   * @param devfn - `slot << 3 | function`
   * @param relaxable - whether the function is a USB or graphics device (the caller knows its class)
   * @returns the regions, in Linux's RMRR list order (last-parsed first)
   */
  reservedRegions(segment: number, bus: number, devfn: number, relaxable = false): IommuResvRegion[] {
    const out: IommuResvRegion[] = [];
    for (const { rmrr, scopes } of this.#rmrrs) {
      if (rmrr.segment !== segment) continue;
      for (const r of scopes) {
        if (covers(r, bus, devfn) === null) continue;
        out.push({
          start: rmrr.base,
          length: rmrr.limit - rmrr.base + 1n,
          prot: IOMMU_READ | IOMMU_WRITE,
          type: relaxable ? IommuResvType.DIRECT_RELAXABLE : IommuResvType.DIRECT,
        });
      }
    }
    return out;
  }

  /**
   * Whether an ATSR allows ATS below a root port: a sub-hierarchy scope names the port, or the
   * segment's ATSR has ALL_PORTS.
   *
   * @param segment - PCI segment of the port
   * @param bus - the port's bus
   * @param devfn - the port's devfn
   * @returns true when ATS is allowed
   */
  rootPortSupportsAts(segment: number, bus: number, devfn: number): boolean {
    for (const { atsr, scopes } of this.#atsrs) {
      if (atsr.segment !== segment) continue;
      if (scopes.some((r) => r.bus === bus && r.devfn === devfn)) return true;
      if (atsr.allPorts) return true;
    }
    return false;
  }

  /**
   * The SATC structure naming a SoC-integrated function (`dmar_find_matched_satc_unit`).
   *
   * @param segment - PCI segment
   * @param bus - bus number
   * @param devfn - `slot << 3 | function`
   * @returns the structure, or `null`
   */
  satcFor(segment: number, bus: number, devfn: number): DmarSatc | null {
    for (const { satc, scopes } of this.#satcs) {
      if (satc.segment !== segment) continue;
      if (scopes.some((r) => r.bus === bus && r.devfn === devfn)) return satc;
    }
    return null;
  }

  /**
   * Whether firmware allows ATS for a PCI function (`dmar_ats_supported`): a SATC entry decides
   * for SoC-integrated devices (allowed unless ATC_REQUIRED while the unit lacks scalable mode, where
   * hardware handles the ATC itself); otherwise walk up to the root port: integrated devices on the
   * root bus are allowed, a conventional PCI or PCIe-to-PCI bridge on the way forbids it, and the
   * root port must be in an ATSR.
   *
   * @param pdev - the function (a VF should be passed as its PF, as Linux does with `pci_physfn`)
   * @param smSupported - whether the unit runs in scalable mode (`sm_supported(iommu)`)
   * @returns true when ATS may be enabled
   */
  atsSupported(pdev: PciDevice, smSupported = true): boolean {
    const satc = this.satcFor(pdev.segment, pdev.busNr, pdev.devfn);
    if (satc !== null) return !(satc.atcRequired && !smSupported);
    let bridge: PciDevice | null = null;
    for (let bus: PciBus | null = pdev.bus; bus !== null; bus = bus.parent) {
      bridge = bus.self;
      if (bridge === null) return true;
      if (!bridge.isPcie || bridge.pcieType === 'pci_bridge') return false;
      if (bridge.pcieType === 'root_port') break;
    }
    if (bridge === null) return true;
    return this.rootPortSupportsAts(bridge.segment, bridge.busNr, bridge.devfn);
  }
}
