/**
 * A simulated machine: RAM, the IOMMU hardware models and their Linux drivers brought up from a
 * platform description, the IOMMU core, and DMA endpoints wired to the units that translate them.
 * Workloads see only this interface, so the same flow runs on a VT-d and an SMMUv3 platform.
 */

import type { Scheduler } from '@iommu-ts/base';
import type { Endpoint, IommuSubsystem, PciDevice, PlatformDevice } from '@iommu-ts/iommu-core';
import type { Arch, Machine as MmMachine, PhysicalMemory, Process } from '@iommu-ts/mm';

/** Which IOMMU architecture a machine is built around. */
export type PlatformKind = 'vtd' | 'smmuv3';

/**
 * What a workload may ask an endpoint to be.
 * - `nic`: a PCI network function (ATS when the platform allows it)
 * - `nvme`: a PCI storage function
 * - `accel`: a PCI accelerator with PASID, PRI and ATS
 * - `stall-accel`: a platform (non-PCI) accelerator whose faults stall (SMMUv3 only)
 * - `device`: any other device the firmware table lists
 */
export type EndpointRole = 'nic' | 'nvme' | 'accel' | 'stall-accel' | 'device';

/** One DMA-capable device of the machine and the endpoint model that issues its DMA. */
export interface SimEndpoint {
  /** Unique name inside the machine: `nic0`, `nvme0`, `accel0`, `stall0`, or a firmware name. */
  readonly name: string;
  /** What it is for (see {@link EndpointRole}). */
  readonly role: EndpointRole;
  /** The device as the IOMMU core knows it (already added to {@link SimMachine.iommu}). */
  readonly device: PciDevice | PlatformDevice;
  /** The endpoint model, connected to its unit's hardware model, recording its trace. */
  readonly endpoint: Endpoint;
  /** Name of the {@link SimUnit} translating its DMA. */
  readonly unit: string;
  /** The IDs its DMA carries to the IOMMU (PCI requester ID / source-id, or StreamIDs). */
  readonly ids: readonly number[];
  /** PCI ATS usable (device capability and the firmware's permission). */
  readonly ats: boolean;
  /** PASID capable (PCI PASID capability, or SubstreamID bits of a platform device). */
  readonly pasid: boolean;
  /** PCI PRI capable (page requests resolved by the OS). */
  readonly pri: boolean;
  /** Faults of this device stall the transaction (SMMUv3 stall model). */
  readonly stall: boolean;
  /** `true` when the firmware table itself names the device; `false` when the simulator added it. */
  readonly fromFirmware: boolean;
  /** Human description for tables: `00:03.0 NIC (ATS)`, `\_SB_.DPU0 (platform)`. */
  readonly label: string;
}

/** Cumulative counters of one IOMMU unit (hardware model plus its driver). */
export interface UnitCounters {
  /** IOTLB / TLB lookups that hit. */
  readonly iotlbHits: number;
  /** IOTLB / TLB lookups that missed. */
  readonly iotlbMisses: number;
  /** Page-table walks the hardware performed (each miss that walked memory). */
  readonly pageWalks: number;
  /**
   * Invalidation commands the hardware consumed, by type: SMMUv3 command-queue names
   * (`TLBI_NH_VA`, `TLBI_NH_ASID`, `CFGI_STE`, `CFGI_CD`, `ATC_INV`, and the `CMD_SYNC` that
   * completes them; fault responses and prefetches are not counted), VT-d queued-invalidation
   * descriptor types (`iotlb`, `pasid-iotlb`, `context-cache`, `pasid-cache`, `device-tlb`,
   * `pasid-device-tlb`, `wait`…) and register-based flushes (`reg-iotlb`, `reg-context`).
   */
  readonly invalidations: Readonly<Record<string, number>>;
  /**
   * Faults the hardware reported, by type: SMMUv3 event names (`F_TRANSLATION`, `F_PERMISSION`…)
   * and VT-d fault reasons as their mnemonic or `reason-0xNN`.
   */
  readonly hwFaults: Readonly<Record<string, number>>;
  /** Page requests the hardware queued for the OS (PRI queue / page request queue entries). */
  readonly pageRequests: number;
  /** Page responses the OS sent back through the unit. */
  readonly pageResponses: number;
  /** Transactions held by the stall model. */
  readonly stalls: number;
}

/** One IOMMU unit of the machine: its hardware model and the driver instance driving it. */
export interface SimUnit {
  /** Driver name of the unit: `dmar0`, `smmu0`… */
  readonly name: string;
  /** Architecture. */
  readonly kind: PlatformKind;
  /** Register base address (bytes). */
  readonly base: bigint;
  /** Parameters worth showing (from firmware and the model's ID/capability registers). */
  readonly params: Readonly<Record<string, string | number | boolean>>;
  /** `null` when the unit came up, else why not (its devices then stay untranslated). */
  readonly error: string | null;
  /** Cumulative counters since the machine was built. */
  counters(): UnitCounters;
}

/** Where a platform description came from. */
export interface PlatformSource {
  /** The table kind. */
  readonly format: 'dmar' | 'iort' | 'dtb';
  /** How it was written: raw bytes, `acpidump` hex text, `iasl` disassembly, or built in. */
  readonly form: 'binary' | 'acpidump' | 'iasl' | 'builtin';
  /** The file read, or `null` for a built-in platform. */
  readonly file: string | null;
  /** OEM ID / table ID or DT model string, when the table has one. */
  readonly oem: string | null;
  /** Table revision (ACPI) or DT version. */
  readonly revision: number | null;
}

/** A reserved region of the platform (RMRR, IORT RMR, DT reserved memory used by an IOMMU). */
export interface TopologyReservedRegion {
  /** First byte (physical and I/O virtual: these are identity regions). */
  readonly start: bigint;
  /** Last byte (inclusive). */
  readonly end: bigint;
  /** `RMRR`, `RMR`, `reserved-memory`… */
  readonly kind: string;
  /** The device names the table attaches it to (scope paths, StreamIDs). */
  readonly devices: readonly string[];
}

/** A unit as `iommu-sim inspect` prints it. */
export interface TopologyUnit {
  /** Driver name of the unit. */
  readonly name: string;
  /** Register base address (bytes). */
  readonly base: bigint;
  /** Parameters (firmware flags, host address width, IDs, model…). */
  readonly params: Readonly<Record<string, string | number | boolean>>;
  /** Human lines, one per device scope / ID mapping the table gives the unit. */
  readonly scopes: readonly string[];
  /** `null` when the unit came up, else the reason. */
  readonly error: string | null;
}

/** A device of the built machine as `inspect` prints it. */
export interface TopologyDevice {
  /** {@link SimEndpoint.name}. */
  readonly name: string;
  /** {@link SimEndpoint.role}. */
  readonly role: EndpointRole;
  /** {@link SimEndpoint.label}. */
  readonly label: string;
  /** Unit name, or `null` when no working unit translates it. */
  readonly unit: string | null;
  /** {@link SimEndpoint.ids}. */
  readonly ids: readonly number[];
  /** Capabilities. */
  readonly ats: boolean;
  /** Capabilities. */
  readonly pasid: boolean;
  /** Capabilities. */
  readonly pri: boolean;
  /** Capabilities. */
  readonly stall: boolean;
  /** {@link SimEndpoint.fromFirmware}. */
  readonly fromFirmware: boolean;
}

/**
 * The topology built from a platform description: what `iommu-sim inspect` prints and the report
 * draws. `counts` are the numbers a reader can check against the table's disassembly.
 */
export interface TopologyView {
  /** Platform name (file base name, or the built-in's name). */
  readonly name: string;
  /** Architecture. */
  readonly kind: PlatformKind;
  /** Where it came from. */
  readonly source: PlatformSource;
  /**
   * Counts as the table states them:
   * - `units`: DRHD structures / SMMUv3 nodes / `arm,smmu-v3` DT nodes
   * - `scopes`: device-scope entries (DMAR: in DRHD, RMRR, ATSR and SATC structures) / ID mappings
   *   of root-complex and named-component nodes onto an SMMUv3 (IORT) / `iommus` specifiers and
   *   `iommu-map` entries naming an SMMUv3 (DT)
   * - `reservedRegions`: RMRR structures / RMR memory-range descriptors / reserved-memory regions
   *   an IOMMU master uses (DT)
   * plus format-specific extras (`atsr`, `satc`, `rhsa`, `andd`, `rootComplexes`, `namedComponents`…).
   */
  readonly counts: Readonly<
    { units: number; scopes: number; reservedRegions: number } & Record<string, number>
  >;
  /** The units. */
  readonly units: readonly TopologyUnit[];
  /** The reserved regions. */
  readonly reserved: readonly TopologyReservedRegion[];
  /** The devices the machine has endpoints for. */
  readonly devices: readonly TopologyDevice[];
  /** Remarks (a unit that failed, devices the table names but the simulator cannot model…). */
  readonly notes: readonly string[];
}

/** Counters summed over a machine's units and endpoints (all cumulative since build). */
export interface MachineCounters extends UnitCounters {
  /** DMA transactions the endpoints issued (translated or not). */
  readonly dmaRequests: number;
  /** Bytes the endpoints read from memory by DMA. */
  readonly bytesRead: number;
  /** Bytes the endpoints wrote to memory by DMA. */
  readonly bytesWritten: number;
  /** DMA transactions that ended in a fault, by `DmaFaultReason` as the endpoint saw it. */
  readonly dmaFaults: Readonly<Record<string, number>>;
  /** ATS translation requests the endpoints sent. */
  readonly atsRequests: number;
  /** ATC invalidation requests the endpoints received. */
  readonly atcInvalidations: number;
  /** Endpoint DMA that found its translation in the device's ATC. */
  readonly atcHits: number;
  /** Endpoint DMA that had to ask the IOMMU for a translation (ATS) first. */
  readonly atcMisses: number;
}

/** Options for creating a user process on a machine. */
export interface SimProcessOptions {
  /** User ID (default 1000: an unprivileged user). */
  readonly uid?: number;
  /** Capabilities (`CAP.*` numbers from `@iommu-ts/mm`; default none). */
  readonly capabilities?: Iterable<number>;
  /** RLIMIT_MEMLOCK in bytes (default unlimited). */
  readonly rlimitMemlock?: number;
}

/** A built machine, ready for workloads. */
export interface SimMachine {
  /** Platform name. */
  readonly name: string;
  /** Architecture. */
  readonly kind: PlatformKind;
  /** CPU architecture of its processes' page tables (`x86_64` with VT-d, `arm64` with SMMUv3). */
  readonly arch: Arch;
  /** RAM. */
  readonly memory: PhysicalMemory;
  /** The mm machine processes are created on (pid allocation, users, CPU TLB broadcast). */
  readonly mm: MmMachine;
  /** The one scheduler every model, driver thread and work item runs on (seeded by the run). */
  readonly scheduler: Scheduler;
  /** The IOMMU core, with the platform's driver registered and DMA ops installed. */
  readonly iommu: IommuSubsystem;
  /** The IOMMU units. */
  readonly units: readonly SimUnit[];
  /** The endpoints, in a stable order (simulator-added ones first by role, then firmware ones). */
  readonly endpoints: readonly SimEndpoint[];
  /** The topology view. */
  readonly topology: TopologyView;
  /**
   * Create a user process with this machine's CPU architecture.
   * @param options - see {@link SimProcessOptions}
   * @returns the process, with an empty address space and fd table
   */
  createProcess(options?: SimProcessOptions): Process;
  /** Run the scheduler until nothing is ready or pending (interrupt threads, work items, timers). */
  settle(): void;
  /** Cumulative counters over every unit and endpoint. */
  counters(): MachineCounters;
  /** Release what outlives the machine otherwise (tracepoint subscriptions); idempotent. */
  dispose(): void;
}
