/**
 * The PCI hierarchy of a DMAR platform: the functions the table's device scopes name (DRHD, RMRR and
 * SATC endpoint scopes; a bridge with one function behind it for each sub-hierarchy scope; the
 * bridges multi-hop paths cross) and the simulator's standard devices, each on its own root port
 * with ACS. Root ports an ATSR names are given to the ATS-capable standard devices first.
 */

import { type DmarDeviceScope, DmarScopeType, type DmarTable } from '@iommu-ts/intel-vtd';
import { type PciBus, type PciDevice, type PciDeviceOptions, PciHostBridge } from '@iommu-ts/iommu-core';
import type { EndpointRole } from './machine.js';

/** A PCI function the firmware table names. */
export interface VtdFirmwareFunction {
  /** The function. */
  readonly dev: PciDevice;
  /** Which structures name it (`DRHD`, `RMRR`, `SATC`, `behind DRHD bridge 00:07.0`). */
  readonly namedBy: readonly string[];
}

/** A standard device the simulator adds. */
export interface VtdStandardFunction {
  /** `nic0`, `nic1`, `nvme0`, `accel0`. */
  readonly name: string;
  /** Its role. */
  readonly role: EndpointRole;
  /** The function (on the secondary bus of {@link VtdStandardFunction.rootPort}). */
  readonly dev: PciDevice;
  /** Its root port. */
  readonly rootPort: PciDevice;
}

/** The hierarchy built for a DMAR table. */
export interface VtdPciLayout {
  /** One host bridge per PCI segment the table uses (segment 0 always). */
  readonly hostBridges: readonly PciHostBridge[];
  /** Firmware-named functions, in the order the table first names them. */
  readonly firmware: readonly VtdFirmwareFunction[];
  /** Standard devices (empty when none could be placed). */
  readonly standard: readonly VtdStandardFunction[];
  /** Remarks for the topology view. */
  readonly notes: readonly string[];
}

const ACS_ALL = { cap: 0x1f, ctrl: 0x1f };
const ATS = { pageAlignedRequest: true, invQueueDepth: 0 };

/** The standard devices in endpoint order, with their PCI capabilities. */
const STANDARD: readonly { name: string; role: EndpointRole; opts: Partial<PciDeviceOptions> }[] = [
  { name: 'nic0', role: 'nic', opts: { ats: ATS, vendor: 0x8086, device: 0x1572 } },
  { name: 'nic1', role: 'nic', opts: { ats: ATS, vendor: 0x8086, device: 0x1572 } },
  { name: 'nvme0', role: 'nvme', opts: { vendor: 0x144d, device: 0xa808 } },
  {
    name: 'accel0',
    role: 'accel',
    opts: {
      ats: ATS,
      pasid: { maxPasidWidth: 20 },
      pri: { maxRequests: 512, prgResponsePasidRequired: true },
      vendor: 0x8086,
      device: 0x0b25,
    },
  },
];
/** Who gets ATSR-named root ports first. */
const ATS_PRIORITY = ['nic0', 'accel0', 'nic1'];
/** Root-bus slots tried for new root ports, chipset ports first. */
const FREE_SLOTS = [
  0x1c, 0x1d, 0x1b, 0x10, 0x11, 0x12, 0x13, 0x0d, 0x0e, 0x0f, 0x03, 0x04, 0x05, 0x09, 0x0a, 0x0b, 0x0c, 0x18,
  0x19, 0x1a,
];

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/**
 * The conventional short name of a PCI function: `bb:dd.f`, prefixed by the segment when not 0.
 * @param segment - PCI segment
 * @param bus - bus number
 * @param devfn - `slot << 3 | function`
 * @returns e.g. `00:14.0` or `0001:03:00.0`
 */
export function bdfName(segment: number, bus: number, devfn: number): string {
  const s = `${hex2(bus)}:${hex2(devfn >> 3)}.${devfn & 7}`;
  return segment === 0 ? s : `${segment.toString(16).padStart(4, '0')}:${s}`;
}

/**
 * A scope path as text: start bus then each hop (`00:1c.0/00.0`).
 * @param scope - the scope entry
 * @returns the text
 */
export function scopePathText(scope: DmarDeviceScope): string {
  const hops = scope.path.map((h) => `${hex2(h.device)}.${h.function}`);
  return `${hex2(scope.startBus)}:${hops.join('/')}`;
}

/**
 * Build the PCI hierarchy of a DMAR platform.
 * @param table - the parsed DMAR table
 * @returns the host bridges, the firmware functions, the standard devices and remarks
 */
export function buildVtdPci(table: DmarTable): VtdPciLayout {
  const notes: string[] = [];
  const bridges = new Map<number, PciHostBridge>();
  const hostBridge = (segment: number): PciHostBridge => {
    let hb = bridges.get(segment);
    if (hb === undefined) {
      hb = new PciHostBridge({ segment });
      bridges.set(segment, hb);
    }
    return hb;
  };
  hostBridge(0);

  // Every bus a scope starts on and every root-bus devfn a scope's first hop names is taken.
  const allScopes: { segment: number; scope: DmarDeviceScope }[] = [];
  for (const s of table.structures)
    if (s.kind === 'drhd' || s.kind === 'rmrr' || s.kind === 'atsr' || s.kind === 'satc')
      for (const scope of s.scopes) allScopes.push({ segment: s.segment, scope });
  const usedBuses = new Map<number, Set<number>>();
  const reservedDevfns = new Map<string, Set<number>>();
  const taken = <K>(m: Map<K, Set<number>>, k: K): Set<number> => {
    let v = m.get(k);
    if (v === undefined) {
      v = new Set();
      m.set(k, v);
    }
    return v;
  };
  for (const { segment, scope } of allScopes) {
    taken(usedBuses, segment).add(scope.startBus).add(0);
    const first = scope.path[0];
    if (first !== undefined)
      taken(reservedDevfns, `${segment}:${scope.startBus}`).add((first.device << 3) | first.function);
  }
  taken(usedBuses, 0).add(0);
  /** A free bus number above `parent` (PCI numbers a bridge's secondary bus above its own). */
  const newBus = (segment: number, parent = 0): number => {
    const used = taken(usedBuses, segment);
    for (let n = parent + 1; n < 256; n++)
      if (!used.has(n)) {
        used.add(n);
        return n;
      }
    throw new Error(`PCI segment ${segment} has no free bus number left`);
  };
  const freeRootDevfn = (segment: number): number | null => {
    const hb = hostBridge(segment);
    const reserved = taken(reservedDevfns, `${segment}:${hb.rootBus.number}`);
    for (const slot of FREE_SLOTS) {
      const devfn = slot << 3;
      if (!reserved.has(devfn) && !hb.rootBus.devices.some((d) => d.devfn >> 3 === slot)) return devfn;
    }
    return null;
  };
  const findBus = (bus: PciBus, n: number): PciBus | null => {
    if (bus.number === n) return bus;
    for (const d of bus.devices) {
      const hit = d.subordinate === null ? null : findBus(d.subordinate, n);
      if (hit !== null) return hit;
    }
    return null;
  };
  const bridgeOn = (bus: PciBus, devfn: number, segment: number): PciDevice => {
    const have = bus.devices.find((d) => d.devfn === devfn);
    const dev =
      have ?? bus.addDevice({ devfn, pcieType: bus.isRoot ? 'root_port' : 'downstream', acs: ACS_ALL });
    if (dev.subordinate === null) dev.addSecondaryBus(newBus(segment, bus.number));
    return dev;
  };
  /** The bus a scope starts on; a bus no bridge leads to yet gets a root port of its own. */
  const startBus = (segment: number, n: number): PciBus | null => {
    const hb = hostBridge(segment);
    const hit = findBus(hb.rootBus, n);
    if (hit !== null) return hit;
    const devfn = freeRootDevfn(segment);
    if (devfn === null) return null;
    const rp = hb.rootBus.addDevice({ devfn, pcieType: 'root_port', acs: ACS_ALL });
    return rp.addSecondaryBus(n);
  };

  const firmware = new Map<PciDevice, string[]>();
  const nameFn = (dev: PciDevice, by: string): void => {
    const list = firmware.get(dev);
    if (list === undefined) firmware.set(dev, [by]);
    else if (!list.includes(by)) list.push(by);
  };
  const endpointOn = (bus: PciBus, devfn: number): PciDevice =>
    bus.devices.find((d) => d.devfn === devfn) ??
    bus.addDevice({ devfn, pcieType: bus.isRoot ? 'rc_endpoint' : 'endpoint' });

  for (const s of table.structures) {
    if (s.kind !== 'drhd' && s.kind !== 'rmrr' && s.kind !== 'satc') continue;
    const what = s.kind.toUpperCase();
    for (const scope of s.scopes) {
      if (scope.type !== DmarScopeType.ENDPOINT && scope.type !== DmarScopeType.BRIDGE) continue;
      let bus = startBus(s.segment, scope.startBus);
      for (let i = 0; bus !== null && i < scope.path.length - 1; i++) {
        const hop = scope.path[i];
        if (hop === undefined) break;
        bus = bridgeOn(bus, (hop.device << 3) | hop.function, s.segment).subordinate;
      }
      const last = scope.path[scope.path.length - 1];
      if (bus === null || last === undefined) {
        notes.push(
          `${what} scope ${scopePathText(scope)}: no room in the PCI hierarchy for it; not modelled`,
        );
        continue;
      }
      const devfn = (last.device << 3) | last.function;
      if (scope.type === DmarScopeType.ENDPOINT) {
        nameFn(endpointOn(bus, devfn), what);
      } else {
        const br = bridgeOn(bus, devfn, s.segment);
        const sub = br.subordinate as PciBus;
        nameFn(endpointOn(sub, 0), `behind ${what} bridge ${bdfName(s.segment, bus.number, devfn)}`);
      }
    }
  }
  // Functions sharing a slot of the root bus are one multi-function device (no ACS between them).
  for (const hb of bridges.values())
    for (const d of hb.rootBus.devices)
      if (hb.rootBus.devices.some((o) => o !== d && o.devfn >> 3 === d.devfn >> 3)) d.multifunction = true;

  // Standard devices: segment 0, under its INCLUDE_PCI_ALL unit.
  const standard: VtdStandardFunction[] = [];
  const catchAll = table.structures.some((s) => s.kind === 'drhd' && s.segment === 0 && s.includePciAll);
  if (!catchAll) {
    notes.push(
      'no INCLUDE_PCI_ALL unit on PCI segment 0: a new root port would be translated by no unit, so the standard devices nic0, nic1, nvme0 and accel0 are left out',
    );
  } else {
    const root = hostBridge(0).rootBus;
    const atsPorts: number[] = [];
    for (const s of table.structures) {
      if (s.kind !== 'atsr' || s.segment !== 0) continue;
      for (const scope of s.scopes) {
        const hop = scope.path[0];
        if (scope.type !== DmarScopeType.BRIDGE || scope.path.length !== 1 || hop === undefined) continue;
        if (scope.startBus !== root.number) continue;
        const devfn = (hop.device << 3) | hop.function;
        if (!root.devices.some((d) => d.devfn === devfn) && !atsPorts.includes(devfn)) atsPorts.push(devfn);
      }
    }
    const portOf = new Map<string, number>();
    for (const name of ATS_PRIORITY) {
      const devfn = atsPorts.shift();
      if (devfn !== undefined) portOf.set(name, devfn);
    }
    for (const std of STANDARD) {
      const devfn = portOf.get(std.name) ?? freeRootDevfn(0);
      if (devfn === null) {
        notes.push(`${std.name}: no free root-bus slot for its root port; left out`);
        continue;
      }
      const rootPort = root.addDevice({ devfn, pcieType: 'root_port', acs: ACS_ALL });
      const dev = rootPort
        .addSecondaryBus(newBus(0))
        .addDevice({ devfn: 0, pcieType: 'endpoint', ...std.opts });
      standard.push({ name: std.name, role: std.role, dev, rootPort });
    }
  }
  return {
    hostBridges: [...bridges.values()],
    firmware: [...firmware].map(([dev, namedBy]) => ({ dev, namedBy })),
    standard,
    notes,
  };
}
