/**
 * Build an Arm machine from an IORT or a device tree: one `SmmuV3Model` per SMMUv3 instance the
 * firmware declares, its Linux-style driver brought up by `armSmmuFirmwareProbe` (coherency, HTTU
 * override, errata options and RMR bypass STEs from firmware), the IOMMU core with dma-iommu, SVA
 * set up with private ASIDs, and endpoints for the firmware's platform masters plus the standard
 * PCI devices (nic0, nic1, nvme0, accel0) on the first root complex that reaches a working SMMU.
 * Mirrors the probe order of a booting kernel: SMMUs first, then `dma_configure` per device.
 */

import {
  ARM_SMMU_FEAT_PRI,
  ARM_SMMU_FEAT_STALLS,
  type ArmSmmuFirmwareGlue,
  type ArmSmmuIrqs,
  armSmmuFirmwareConfigure,
  armSmmuFirmwareProbe,
  armSmmuSvaConfigure,
  deviceTreeTopology,
  type FirmwareTopology,
  iortTopology,
  masterOfDev,
  type SmmuFirmwareInstance,
  type SmmuHwConfig,
  SmmuV3Model,
} from '@iommu-ts/arm-smmu-v3';
import { Scheduler } from '@iommu-ts/base';
import {
  Endpoint,
  IommuSubsystem,
  iommuDmaInstall,
  type PciBus,
  type PciDevice,
  PciHostBridge,
  PlatformDevice,
} from '@iommu-ts/iommu-core';
import { Machine as MmMachine, PhysicalMemory } from '@iommu-ts/mm';
import { FaultTally, machineCounters } from '../metrics/counters.js';
import type { BuildOptions, DtPlatform, IortPlatform } from '../platform/platform.js';
import type {
  EndpointRole,
  SimEndpoint,
  SimMachine,
  SimProcessOptions,
  SimUnit,
  TopologyDevice,
  TopologyView,
  UnitCounters,
} from './machine.js';
import { dtFacts, iortFacts } from './smmu-topology.js';

/** Machines built so far in this process: endpoint model names are `m<serial>.<name>`. */
let machineSerial = 0;

/** Default RAM size: 4 GiB (sparse). */
const DEFAULT_RAM = 4 * 2 ** 30;

/** Largest queue the drivers allocate (log2 entries): keeps RAM use small. */
const MAX_QUEUE_LOG2 = 8;

/**
 * The model parameters of one instance: a modern SMMU (two-level stream table, 20-bit StreamIDs
 * and SubstreamIDs, PRI, ATS, RIL, 4K granule, 48-bit OAS) adjusted by firmware: IDR0.COHACC as
 * the firmware's coherency says, and the stall model `stall` only when a master behind it may
 * stall (else `terminate`, as PCIe-only SMMUs are built).
 * @param inst - the firmware instance
 * @param topology - the firmware topology (its platform masters)
 * @returns the model configuration
 */
export function smmuModelConfig(
  inst: SmmuFirmwareInstance,
  topology: FirmwareTopology,
): Partial<SmmuHwConfig> {
  const stall = topology.platformMasters.some((m) => m.fwspec.smmu.index === inst.index && m.fwspec.canStall);
  return {
    twoLevelStreamTable: true,
    sidBits: 20,
    ssidBits: 20,
    pri: true,
    ats: true,
    ril: true,
    granule4k: true,
    oas: 48,
    coherent: inst.coherent,
    httu: 'hahd',
    btm: false,
    stallModel: stall ? 'stall' : 'terminate',
    stallMax: stall ? 64 : 0,
  };
}

/** A hardware model and what firmware and the driver made of it. */
interface BuiltUnit {
  readonly inst: SmmuFirmwareInstance;
  readonly model: SmmuV3Model;
  readonly unit: SimUnit;
}

function unitCounters(model: SmmuV3Model): UnitCounters {
  return {
    iotlbHits: model.tlb.stats.hits,
    iotlbMisses: model.tlb.stats.misses,
    pageWalks: model.tlb.stats.walks,
    invalidations: Object.fromEntries(
      [...model.cmdq.stats.byName].filter(([name]) => !NOT_INVALIDATIONS.has(name)),
    ),
    hwFaults: Object.fromEntries(model.evtq.byType),
    pageRequests: model.priq.written,
    pageResponses: model.stats.prgResponses,
    stalls: model.stats.stalls,
  };
}

/**
 * Commands of the queue that invalidate nothing: fault responses and prefetches. Everything else
 * (TLBI_*, CFGI_*, ATC_INV, CMD_SYNC that completes them) counts as invalidation traffic.
 */
const NOT_INVALIDATIONS: ReadonlySet<string> = new Set([
  'RESUME',
  'STALL_TERM',
  'PRI_RESP',
  'PREFETCH_CONFIG',
  'PREFETCH_ADDR',
]);

function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0] ?? msg;
}

/** The standard PCI devices and their capabilities. */
const STANDARD: readonly { name: string; role: EndpointRole; label: string }[] = [
  { name: 'nic0', role: 'nic', label: 'NIC' },
  { name: 'nic1', role: 'nic', label: 'NIC' },
  { name: 'nvme0', role: 'nvme', label: 'NVMe' },
  { name: 'accel0', role: 'accel', label: 'accelerator' },
];

/**
 * Where to put the standard devices on a segment: four root ports with ACS on the root bus, each
 * with its endpoint at devfn 0 of its own secondary bus, when four secondary buses map onto a
 * working SMMU; otherwise four single-function endpoints with ACS on a root bus whose RIDs map
 * (their own IOMMU groups all the same). `null` when no RID of the segment reaches a working SMMU.
 */
function placeStandard(
  topology: FirmwareTopology,
  segment: number,
  works: (index: number) => boolean,
): PciBus[] | null {
  const ok = (rid: number): boolean => {
    try {
      const fw = topology.resolvePci(segment, rid);
      return fw !== null && works(fw.smmu.index);
    } catch {
      return false;
    }
  };
  const buses: number[] = [];
  for (let b = 1; b < 256 && buses.length < STANDARD.length; b++) if (ok(b << 8)) buses.push(b);
  if (buses.length === STANDARD.length) {
    const hb = new PciHostBridge({ segment });
    return buses.map((b, i) => {
      const rp = hb.rootBus.addDevice({
        devfn: (i + 1) << 3,
        pcieType: 'root_port',
        acs: { cap: 0x1f, ctrl: 0x1f },
      });
      return rp.addSecondaryBus(b);
    });
  }
  for (let b = 0; b < 256; b++) {
    if (STANDARD.every((_, i) => ok((b << 8) | ((i + 1) << 3)))) {
      const hb = new PciHostBridge({ segment, busNr: b });
      return STANDARD.map(() => hb.rootBus);
    }
  }
  return null;
}

/**
 * Build a machine from an Arm platform description.
 * @param desc - an IORT or device-tree platform
 * @param options - scheduler seed and RAM size
 * @returns the machine, its SMMUs probed and its endpoints added to the IOMMU core
 * @throws Error with a one-line message when the table's topology cannot be built (a mapping
 *   loop, a malformed `iommus`, an SMMU node without `#iommu-cells`…)
 */
export function buildSmmuMachine(desc: IortPlatform | DtPlatform, options: BuildOptions): SimMachine {
  const serial = ++machineSerial;
  const isIort = 'iort' in desc;
  let topology: FirmwareTopology;
  try {
    topology = isIort ? iortTopology(desc.iort) : deviceTreeTopology(desc.fdt);
  } catch (e) {
    throw new Error(`${desc.name}: ${oneLine(e)}`);
  }
  const facts = isIort ? iortFacts(desc.iort) : dtFacts(desc.fdt);
  const notes: string[] = isIort ? [...desc.iort.warnings] : [];

  const scheduler = new Scheduler({ seed: options.seed });
  const memory = new PhysicalMemory({ size: options.ramBytes ?? DEFAULT_RAM });
  const mm = new MmMachine({ memory });
  const iommu = new IommuSubsystem({ strict: options.dmaStrict ?? true });
  iommuDmaInstall(iommu, { scheduler, memory });

  // Hardware: one model per instance, wired interrupt lines shared with the driver.
  const models = new Map<bigint, SmmuV3Model>();
  const lines = new Map<number, ArmSmmuIrqs>();
  const modelOf: SmmuV3Model[] = [];
  for (const inst of topology.smmus) {
    const name = `smmu${inst.index}`;
    const irqs = {
      evtq: scheduler.createIrqLine(`${name}.evtq`),
      priq: scheduler.createIrqLine(`${name}.priq`),
      gerror: scheduler.createIrqLine(`${name}.gerror`),
    };
    lines.set(inst.index, irqs);
    const model = new SmmuV3Model({
      memory,
      scheduler,
      config: smmuModelConfig(inst, topology),
      name: `m${serial}.${name}`,
      irqs,
      tlbBroadcast: mm.tlb,
    });
    modelOf.push(model);
    if (models.has(inst.base))
      notes.push(`${inst.name}: a second SMMU at 0x${inst.base.toString(16)} (ignored)`);
    else models.set(inst.base, model);
  }
  const glue: ArmSmmuFirmwareGlue = armSmmuFirmwareProbe(topology, {
    iommu,
    memory,
    scheduler,
    mmioFor: (base) => models.get(base)?.mmio ?? null,
    irqsFor: (inst) => lines.get(inst.index) ?? {},
    options: { maxQueueLog2: MAX_QUEUE_LOG2 },
  });
  for (const s of glue.smmus) if (s.smmu !== null) armSmmuSvaConfigure(s.smmu, { asidMode: 'private' });
  scheduler.runUntilIdle();

  const built: BuiltUnit[] = topology.smmus.map((inst, i) => {
    const model = modelOf[i] as SmmuV3Model;
    const entry = glue.smmus[i];
    const smmu = entry?.smmu ?? null;
    const error = entry?.error
      ? `${entry.error.code}: ${entry.error.message}`
      : smmu === null
        ? 'not probed'
        : null;
    if (error !== null) notes.push(`smmu${inst.index} (${inst.name}) failed: ${error}`);
    const cfg = model.config;
    const params: Record<string, string | number | boolean> = {
      firmware: inst.name,
      model: inst.model,
      coherent: inst.coherent,
      httuOverride: inst.httu ?? 'none (IDR0 decides)',
      irqs: Object.keys(inst.irqs).join(',') || 'none',
      sidBits: cfg.sidBits,
      ssidBits: cfg.ssidBits,
      twoLevelStreamTable: cfg.twoLevelStreamTable,
      stallModel: cfg.stallModel,
      pri: cfg.pri,
      ats: cfg.ats,
      ril: cfg.ril,
      oas: cfg.oas,
      granules: [cfg.granule4k && '4K', cfg.granule16k && '16K', cfg.granule64k && '64K']
        .filter(Boolean)
        .join(','),
      asids: 'private',
    };
    if (inst.options.skipPrefetch) params['skipPrefetch'] = true;
    if (inst.options.page0RegsOnly) params['page0RegsOnly'] = true;
    if (inst.proximityDomain !== null) params['proximityDomain'] = inst.proximityDomain;
    if (smmu !== null) params['features'] = `0x${smmu.features.toString(16)}`;
    const unit: SimUnit = {
      name: `smmu${inst.index}`,
      kind: 'smmuv3',
      base: inst.base,
      params,
      error,
      counters: () => unitCounters(model),
    };
    return { inst, model, unit };
  });
  const works = (index: number): boolean => glue.smmus[index]?.smmu != null;

  const tally = new FaultTally();
  const endpoints: SimEndpoint[] = [];
  const add = (
    name: string,
    role: EndpointRole,
    dev: PciDevice | PlatformDevice,
    label: string,
    fromFirmware: boolean,
  ): SimEndpoint | null => {
    let fw: ReturnType<typeof armSmmuFirmwareConfigure>;
    try {
      fw = armSmmuFirmwareConfigure(glue, dev);
    } catch (e) {
      notes.push(`${label}: ${oneLine(e)}`);
      return null;
    }
    if (fw === null) {
      notes.push(`${label}: not behind any SMMU (not translated)`);
      return null;
    }
    const err = iommu.addDevice(dev);
    if (err !== null) {
      notes.push(`${label}: ${oneLine(err)}`);
      return null;
    }
    const b = built[fw.smmu.index] as BuiltUnit;
    const smmu = glue.smmus[fw.smmu.index]?.smmu;
    const master = masterOfDev(dev);
    const modelName = `m${serial}.${name}`;
    const endpoint = new Endpoint({
      device: dev,
      iommu: b.model,
      scheduler,
      requesterId: fw.streamIds[0] as number,
      name: modelName,
    });
    tally.watch(modelName);
    const features = smmu?.features ?? 0;
    const isPci = dev.busType === 'pci';
    const ats = master.atsEnabled;
    const pasid = isPci
      ? (dev as PciDevice).pasidCap !== null && b.model.config.ssidBits > 0
      : master.ssidBits > 0;
    const pri = isPci && (dev as PciDevice).priCap !== null && ats && (features & ARM_SMMU_FEAT_PRI) !== 0;
    const stall = !isPci && master.stallEnabled && (features & ARM_SMMU_FEAT_STALLS) !== 0;
    const ep: SimEndpoint = {
      name,
      role,
      device: dev,
      endpoint,
      unit: b.unit.name,
      ids: [...fw.streamIds],
      ats,
      pasid,
      pri,
      stall,
      fromFirmware,
      label,
    };
    endpoints.push(ep);
    return ep;
  };

  // Standard PCI devices on the first root complex that reaches a working SMMU.
  const rc = topology.rootComplexes.find((r) => placeStandard(topology, r.segment, works) !== null);
  if (rc === undefined) notes.push('no PCI root complex reaches a working SMMU: no standard PCI devices');
  else {
    const buses = placeStandard(topology, rc.segment, works) as PciBus[];
    STANDARD.forEach((s, i) => {
      const bus = buses[i] as PciBus;
      const devfn = bus.isRoot ? (i + 1) << 3 : 0;
      const pdev = bus.addDevice({
        devfn,
        ...(bus.isRoot ? { acs: { cap: 0x1f, ctrl: 0x1f } } : {}),
        ...(s.role === 'nvme' ? {} : { ats: {} }),
        ...(s.role === 'accel'
          ? { pasid: { maxPasidWidth: 20 }, pri: { maxRequests: 32, prgResponsePasidRequired: true } }
          : {}),
      });
      const pciName = pdev.name.slice(5); // drop the segment: `00:03.0`
      add(s.name, s.role, pdev, `${pciName} ${s.label}`, false);
    });
    const got = (n: string) => endpoints.find((e) => e.name === n);
    for (const n of ['nic0', 'nic1', 'accel0'] as const) {
      const e = got(n);
      if (e === undefined) continue;
      const caps = [e.ats ? 'ATS' : '', e.pasid ? 'PASID' : '', e.pri ? 'PRI' : ''].filter((c) => c !== '');
      endpoints[endpoints.indexOf(e)] = {
        ...e,
        label: caps.length ? `${e.label} (${caps.join(', ')})` : e.label,
      };
    }
  }

  // Firmware platform masters: stall0 for the first that stalls with PASIDs, others by name.
  const taken = new Set(endpoints.map((e) => e.name));
  let stallTaken = false;
  const firmwareEps: SimEndpoint[] = [];
  for (const m of topology.platformMasters) {
    if (!works(m.fwspec.smmu.index)) {
      notes.push(`${m.name}: its SMMU ${m.fwspec.smmu.name} did not come up`);
      continue;
    }
    const isStall = !stallTaken && m.fwspec.canStall && m.fwspec.pasidBits > 0;
    let simName = isStall ? 'stall0' : simNameOf(m.name);
    for (let k = 1; taken.has(simName); k++) simName = `${simNameOf(m.name)}-${k}`;
    const dev = new PlatformDevice(m.name);
    const ep = add(simName, isStall ? 'stall-accel' : 'device', dev, `${m.name} (platform)`, true);
    if (ep === null) continue;
    taken.add(simName);
    if (isStall) stallTaken = true;
    endpoints.pop();
    firmwareEps.push(ep);
  }
  // Stable order: simulator-added first (by role), then stall0, then the other firmware devices.
  firmwareEps.sort((a, b) => (a.role === 'stall-accel' ? -1 : b.role === 'stall-accel' ? 1 : 0));
  endpoints.push(...firmwareEps);
  scheduler.runUntilIdle();

  const units = built.map((b) => b.unit);
  const devices: TopologyDevice[] = endpoints.map((e) => ({
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
  }));
  const topologyView: TopologyView = {
    name: desc.name,
    kind: 'smmuv3',
    source: desc.source,
    counts: facts.counts,
    units: built.map((b) => ({
      name: b.unit.name,
      base: b.inst.base,
      params: b.unit.params,
      scopes: facts.scopesByUnit.get(b.inst.name) ?? [],
      error: b.unit.error,
    })),
    reserved: facts.reserved,
    devices,
    notes,
  };

  let disposed = false;
  return {
    name: desc.name,
    kind: 'smmuv3',
    arch: 'arm64',
    memory,
    mm,
    scheduler,
    iommu,
    units,
    endpoints,
    topology: topologyView,
    createProcess(o: SimProcessOptions = {}) {
      return mm.createProcess({
        arch: 'arm64',
        uid: o.uid ?? 1000,
        capabilities: o.capabilities ?? [],
        rlimitMemlock: o.rlimitMemlock ?? Number.POSITIVE_INFINITY,
      });
    },
    settle() {
      scheduler.runUntilIdle();
    },
    counters() {
      return machineCounters(units, endpoints, tally);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      tally.close();
      for (const b of built) b.model.detachBroadcast();
    },
  };
}

/** A short endpoint name from a firmware name: `\_SB_.DPU0` → `DPU0`, `/soc/dma@1000` → `dma@1000`. */
function simNameOf(firmwareName: string): string {
  const parts = firmwareName.split(/[./\\]/).filter((p) => p !== '');
  return parts.at(-1) ?? firmwareName;
}
