/**
 * Building a VT-d machine from a DMAR platform: RAM, one `VtdModel` per DRHD brought up by the
 * Intel driver through the DMAR glue (scalable mode, SVA and IOPF ops), the IOMMU core with DMA
 * ops, the PCI hierarchy the table's scopes describe plus the standard devices, and one endpoint
 * model per DMA-capable device that a working unit translates.
 */

import { type IrqLine, Scheduler } from '@iommu-ts/base';
import {
  DmarTopology,
  infoOf,
  intelIommuDmarConfigure,
  intelIommuDmarProbe,
  intelIommuSvaOps,
  pciTopologyFromHostBridges,
  type VtdHwConfig,
  VtdModel,
  vtdCapEcap,
} from '@iommu-ts/intel-vtd';
import {
  type Device,
  Endpoint,
  IommuSubsystem,
  iommuDmaInstall,
  type PciDevice,
  PlatformDevice,
} from '@iommu-ts/iommu-core';
import { Machine as MmMachine, PhysicalMemory } from '@iommu-ts/mm';
import { FaultTally, machineCounters } from '../metrics/counters.js';
import type { BuildOptions, DmarPlatform } from '../platform/platform.js';
import type {
  EndpointRole,
  SimEndpoint,
  SimMachine,
  SimProcessOptions,
  SimUnit,
  TopologyUnit,
  TopologyView,
} from './machine.js';
import { buildVtdPci } from './vtd-pci.js';
import { dmarCounts, dmarReservedRegions, scopeLine, vtdUnitCounters } from './vtd-view.js';

/** Default RAM size (bytes). */
const DEFAULT_RAM = 4 * 2 ** 30;
/**
 * Where RAM starts: 4 GiB, above the x86 MMIO hole, so the VT-d register bases and the other
 * firmware windows below 4 GiB never fall inside it (RMRRs there are reserved, not RAM).
 */
export const VTD_RAM_BASE = 2 ** 32;

let machineSerial = 0;

/**
 * The capabilities given to every unit's model: a modern scalable-mode part (QI, device TLB, PRS,
 * 20-bit PASIDs, nesting, first- and second-level translation, 4-level paging) whose host address
 * width is the table's (raised to cover the RAM when the table's is smaller) and whose MGAW is the
 * table's host address width (at least 39 bits), with 3- and 4-level second-level tables.
 * @param hostAddressWidth - the DMAR table's host address width, bits
 * @param ramEnd - first byte above RAM
 * @returns the model configuration
 */
export function vtdSimConfig(hostAddressWidth: number, ramEnd: number): Partial<VtdHwConfig> {
  const ramBits = Math.ceil(Math.log2(ramEnd));
  const haw = Math.min(52, Math.max(hostAddressWidth, ramBits, 32));
  return {
    version: 0x60,
    haw,
    mgaw: Math.min(57, Math.max(39, hostAddressWidth)),
    sagaw: [3, 4],
    fl5lp: false,
    smts: true,
    qi: true,
    dt: true,
    prs: true,
    pds: true,
    pasid: true,
    pasidBits: 20,
    nest: true,
    flts: true,
    slts: true,
    cachingMode: false,
  };
}

function unitParams(
  vtd: VtdModel,
  base: bigint,
  size: bigint,
  segment: number,
  includeAll: boolean,
  proximity: number | null,
  sm: boolean | null,
): Record<string, string | number | boolean> {
  const c = vtd.config;
  const { cap, ecap } = vtdCapEcap(c);
  const params: Record<string, string | number | boolean> = {
    registerBase: `0x${base.toString(16)}`,
    registerSize: Number(size),
    segment,
    includePciAll: includeAll,
    version: `${c.version >> 4}.${c.version & 0xf}`,
    cap: `0x${cap.toString(16)}`,
    ecap: `0x${ecap.toString(16)}`,
    haw: c.haw,
    mgaw: c.mgaw,
    sagaw: c.sagaw.join(','),
    scalableMode: c.smts,
    qi: c.qi,
    deviceTlb: c.dt,
    prs: c.prs,
    pasidBits: c.pasid ? c.pasidBits : 0,
    nesting: c.nest,
    superpages: [c.sl2MPages ? '2M' : '', c.sl1GPages ? '1G' : ''].filter(Boolean).join(','),
    faultRecords: c.numFaultRecords,
  };
  if (proximity !== null) params['proximityDomain'] = proximity;
  if (sm !== null) params['driverScalableMode'] = sm;
  return params;
}

/**
 * Build a machine from a DMAR platform (see the file comment).
 *
 * Units whose registers cannot answer (a register base inside RAM) fail with `ENODEV` and are
 * listed with their error; the devices behind them get no endpoint. Standard devices go on new
 * root ports of segment 0 under its INCLUDE_PCI_ALL unit, ATSR-named ports first.
 * @param desc - the platform
 * @param options - scheduler seed and RAM size
 * @returns the machine
 * @throws Error with a one-line message when the RAM size is invalid
 */
export function buildVtdMachine(desc: DmarPlatform, options: BuildOptions): SimMachine {
  const serial = ++machineSerial;
  const scheduler = new Scheduler({ seed: options.seed });
  let memory: PhysicalMemory;
  try {
    memory = new PhysicalMemory({ base: VTD_RAM_BASE, size: options.ramBytes ?? DEFAULT_RAM });
  } catch (e) {
    throw new Error(`bad RAM size ${options.ramBytes}: ${(e as Error).message}`);
  }
  const mm = new MmMachine({ memory });
  const iommu = new IommuSubsystem({ strict: options.dmaStrict ?? true });
  const notes: string[] = desc.dmar.warnings.map((w) => `firmware: ${w}`);
  const layout = buildVtdPci(desc.dmar);
  notes.push(...layout.notes);
  const topology = new DmarTopology(desc.dmar, pciTopologyFromHostBridges(layout.hostBridges));
  const config = vtdSimConfig(desc.dmar.hostAddressWidth, memory.base + memory.size);

  const models: VtdModel[] = [];
  const irqs = new Map<number, { fault: IrqLine; prq: IrqLine }>();
  const glue = intelIommuDmarProbe(topology, {
    iommu,
    memory,
    scheduler,
    mmioFor: (base, size) => {
      const index = models.length;
      const name = `dmar${index}`;
      // Nothing answers inside RAM: a firmware bug that leaves the unit unusable.
      if (base < BigInt(memory.base + memory.size) && base + size > BigInt(memory.base)) {
        models.push(new VtdModel({ memory, scheduler, config, name }));
        return null;
      }
      const lines = {
        fault: scheduler.createIrqLine(`${name}-fault`),
        prq: scheduler.createIrqLine(`${name}-prq`),
      };
      irqs.set(index, lines);
      const vtd = new VtdModel({ memory, scheduler, config, name, irqs: lines });
      models.push(vtd);
      return vtd.mmio;
    },
    irqsFor: (unit) => irqs.get(unit.index) ?? {},
    extraOps: intelIommuSvaOps,
  });
  iommuDmaInstall(iommu, { scheduler, memory });

  const units: SimUnit[] = glue.units.map((g, i) => {
    const vtd = models[i] as VtdModel;
    const error = g.error === null ? null : g.error.message;
    if (error !== null)
      notes.push(`unit dmar${i} did not come up (${error}); the devices it covers are untranslated`);
    return {
      name: `dmar${i}`,
      kind: 'vtd',
      base: g.unit.registerBase,
      params: unitParams(
        vtd,
        g.unit.registerBase,
        g.unit.registerSize,
        g.unit.segment,
        g.unit.includePciAll,
        g.unit.proximityDomain,
        g.iommu === null ? null : g.iommu.smSupported,
      ),
      error,
      counters: () => vtdUnitCounters(vtd),
    };
  });

  const tally = new FaultTally();
  const endpoints: SimEndpoint[] = [];
  const attach = (
    name: string,
    role: EndpointRole,
    dev: PciDevice | PlatformDevice,
    fromFirmware: boolean,
    describe: (caps: { ats: boolean; pasid: boolean; pri: boolean }) => string,
  ): void => {
    const hit = intelIommuDmarConfigure(glue, dev);
    if (hit === null) {
      notes.push(`${name}: no working unit translates it; no endpoint`);
      return;
    }
    const err = iommu.addDevice(dev as Device);
    if (err) {
      notes.push(`${name}: the IOMMU core refused it (${err.code}: ${err.message}); no endpoint`);
      return;
    }
    const vtd = models[hit.entry.unit.index] as VtdModel;
    const modelName = `m${serial}.${name}`;
    const endpoint = new Endpoint({
      device: dev,
      iommu: vtd,
      scheduler,
      requesterId: hit.sourceId,
      name: modelName,
    });
    tally.watch(modelName);
    const info = infoOf(dev);
    const caps = { ats: info.atsSupported, pasid: info.pasidSupported !== 0, pri: info.priSupported };
    endpoints.push({
      name,
      role,
      device: dev,
      endpoint,
      unit: `dmar${hit.entry.unit.index}`,
      ids: [hit.sourceId],
      ...caps,
      stall: false,
      fromFirmware,
      label: describe(caps),
    });
  };

  const ROLE_LABEL: Record<string, string> = { nic: 'NIC', nvme: 'NVMe', accel: 'accelerator' };
  const short = (d: PciDevice): string => d.name.replace(/^0000:/, '');
  for (const std of layout.standard) {
    attach(std.name, std.role, std.dev, false, (c) => {
      const tags = [c.ats ? 'ATS' : '', c.pasid ? 'PASID' : '', c.pri ? 'PRI' : ''].filter(Boolean);
      return `${short(std.dev)} ${ROLE_LABEL[std.role] ?? std.role}${tags.length ? ` (${tags.join(', ')})` : ''}`;
    });
  }
  for (const fw of layout.firmware) {
    attach(short(fw.dev), 'device', fw.dev, true, () => `${short(fw.dev)} (${fw.namedBy.join(', ')})`);
  }
  for (const unit of topology.units) {
    for (const nd of unit.namespaceDevices) {
      if (nd.name === null) {
        notes.push(`dmar${unit.index}: ACPI name-space device ${nd.enumerationId} has no ANDD; not modelled`);
        continue;
      }
      const path = nd.name;
      attach(path, 'device', new PlatformDevice(path), true, () => `${path} (ACPI name-space device)`);
    }
  }

  const topoUnits: TopologyUnit[] = topology.units.map((u, i) => ({
    name: `dmar${i}`,
    base: u.registerBase,
    params: units[i]?.params ?? {},
    scopes: u.drhd.scopes.map((s) => scopeLine(s, u.segment, topology)),
    error: units[i]?.error ?? null,
  }));
  const view: TopologyView = {
    name: desc.name,
    kind: 'vtd',
    source: desc.source,
    counts: dmarCounts(desc.dmar),
    units: topoUnits,
    reserved: dmarReservedRegions(desc.dmar),
    devices: endpoints.map((e) => ({
      name: e.name,
      role: e.role,
      label: e.label,
      unit: e.unit,
      ids: e.ids,
      ats: e.ats,
      pasid: e.pasid,
      pri: e.pri,
      stall: e.stall,
      fromFirmware: e.fromFirmware,
    })),
    notes,
  };

  let disposed = false;
  return {
    name: desc.name,
    kind: 'vtd',
    arch: 'x86_64',
    memory,
    mm,
    scheduler,
    iommu,
    units,
    endpoints,
    topology: view,
    createProcess: (o: SimProcessOptions = {}) =>
      mm.createProcess({
        arch: 'x86_64',
        uid: o.uid ?? 1000,
        capabilities: o.capabilities ?? [],
        rlimitMemlock: o.rlimitMemlock ?? Number.POSITIVE_INFINITY,
      }),
    settle: () => {
      scheduler.runUntilIdle();
    },
    counters: () => machineCounters(units, endpoints, tally),
    dispose: () => {
      if (disposed) return;
      disposed = true;
      tally.close();
    },
  };
}
