/**
 * Devices as the IOMMU core sees them (`struct device`, `struct dev_iommu`).
 *
 * Changes (additive only): none yet.
 *
 * @remarks
 * A {@link Device} is either a PCI function ({@link PciDevice}, in pci.ts) or a
 * {@link PlatformDevice}. The IOMMU core hangs its per-device state on {@link Device.iommu}
 * (`dev->iommu`) and the group on {@link Device.iommuGroup} (`dev->iommu_group`).
 */

import type { IommuFwspec } from './fwspec.js';
import type { IommuGroup } from './group.js';
import type { IommuDevice } from './iommu-device.js';
import type { IommuSubsystem } from './iommu-subsystem.js';
import type { DtNode } from './of-iommu.js';
import type { IommuResvRegion } from './resv-region.js';

/** The bus a device sits on (`dev->bus`). */
export type DeviceBusType = 'pci' | 'platform';

/**
 * `struct dev_iommu`: what the IOMMU core keeps per probed device.
 *
 * @remarks
 * Created by the core at the start of probe (`dev_iommu_get`) and dropped on release.
 */
export class DevIommu {
  /** The subsystem the device is being probed by (not in Linux, whose core is global). */
  readonly subsystem: IommuSubsystem;
  /** `fwspec`: the IOMMU handle and IDs parsed from firmware, or `null`. */
  fwspec: IommuFwspec | null = null;
  /** `iommu_dev`: the IOMMU instance returned by the driver's `probe_device`; `null` before. */
  iommuDev: IommuDevice | null = null;
  /** `priv`: driver data (`dev_iommu_priv_set/get`). */
  priv: unknown = null;
  /**
   * `max_pasids`: number of PASIDs the device may use (IDs `0 .. maxPasids - 1`); 0 = the device
   * cannot issue PASID-tagged DMA. Computed at probe (see `iommuProbeDevice`).
   */
  maxPasids = 0;
  /** `attach_deferred`: keep firmware translation until the first DMA-API use. */
  attachDeferred = false;
  /** `pci_32bit_workaround`: the DMA layer first tries IOVAs below 4 GiB. */
  pci32bitWorkaround = false;
  /** `require_direct`: the device has a DIRECT reserved region; BLOCKED domains are refused. */
  requireDirect = false;
  /** `shadow_on_flush`: the driver shadows page tables on `iotlb_sync_map`. */
  shadowOnFlush = false;
  /**
   * `fault_param`: the slot io-pgfault fills with its per-device fault parameter
   * (`iommu_fault_param`); `null` when fault reporting is not enabled. Opaque to the core.
   */
  faultParam: object | null = null;
  /** Device features enabled through `iommuDevEnableFeature` (history: `IOMMU_DEV_FEAT_*` values). */
  readonly enabledFeatures = new Set<number>();

  /** @param subsystem - the probing subsystem */
  constructor(subsystem: IommuSubsystem) {
    this.subsystem = subsystem;
  }
}

/** Options common to every device. */
export interface DeviceOptions {
  /** Device name as `dev_name()` prints it; defaults per bus. */
  name?: string;
  /** Device-tree node of the device (`dev->of_node`), for `iommus`, `iommu-map`, properties. */
  ofNode?: DtNode | null;
  /** Streaming DMA mask (`*dev->dma_mask`), default all 64 bits. */
  dmaMask?: bigint;
  /** Coherent DMA mask, default = `dmaMask`. */
  coherentDmaMask?: bigint;
  /** Bus DMA limit (`dev->bus_dma_limit`), 0 = none (default). */
  busDmaLimit?: bigint;
}

/**
 * A device (`struct device`): the common part of PCI functions and platform devices.
 */
export abstract class Device {
  /** `dev_name(dev)`. */
  readonly name: string;
  /** Which bus the device is on. */
  abstract readonly busType: DeviceBusType;
  /** `dev->of_node`, or `null`. */
  ofNode: DtNode | null;
  /** Streaming DMA mask (u64). */
  dmaMask: bigint;
  /** Coherent DMA mask (u64). */
  coherentDmaMask: bigint;
  /** `dev->bus_dma_limit` (u64), 0 = no limit. */
  busDmaLimit: bigint;
  /** `dev->iommu`: per-device IOMMU data, `null` when not probed. */
  iommu: DevIommu | null = null;
  /** `dev->iommu_group`, `null` when the device is in no group. */
  iommuGroup: IommuGroup | null = null;
  /** Whether a device driver is bound (driver core state; a probe with a bound driver skips `dma_configure`). */
  driverBound = false;
  /** Whether the DMA-API path has been set up for the device's default domain (`iommu_setup_dma_ops`). */
  dmaOpsSetUp = false;
  /**
   * Firmware-provided reserved regions (e.g. from IORT RMR or DT `memory-region` with
   * `iommu-addresses`) that drivers may pass on through `iommuDmaGetResvRegions`-like helpers.
   */
  firmwareResvRegions: IommuResvRegion[] = [];

  /**
   * @param name - the device name
   * @param options - see {@link DeviceOptions}
   */
  protected constructor(name: string, options: DeviceOptions = {}) {
    this.name = options.name ?? name;
    this.ofNode = options.ofNode ?? null;
    this.dmaMask = options.dmaMask ?? 0xffff_ffff_ffff_ffffn;
    this.coherentDmaMask = options.coherentDmaMask ?? this.dmaMask;
    this.busDmaLimit = options.busDmaLimit ?? 0n;
  }

  /** `dev_iommu_fwspec_get(dev)`: the fwspec, or `null`. */
  get fwspec(): IommuFwspec | null {
    return this.iommu?.fwspec ?? null;
  }

  /** `dev_iommu_priv_get(dev)`: the driver's private data. */
  get iommuPriv(): unknown {
    return this.iommu?.priv ?? null;
  }

  /** `dev_is_pci(dev)`. */
  get isPci(): boolean {
    return this.busType === 'pci';
  }

  /** `dev_name(dev)`. */
  toString(): string {
    return this.name;
  }
}

/** Options of a {@link PlatformDevice}. */
export interface PlatformDeviceOptions extends DeviceOptions {
  /**
   * Firmware IDs of the device (e.g. StreamIDs listed in IORT or given by DT `iommus` args); used by
   * tests and firmware parsers that do not go through {@link DtNode}. Default none.
   */
  firmwareIds?: readonly number[];
  /** `dma-can-stall` property: the device tolerates stalled transactions (Arm SMMU stall model). */
  dmaCanStall?: boolean;
  /** `pasid-num-bits` property: PASID width; the core derives `max_pasids = 1 << bits`. */
  pasidNumBits?: number;
}

/**
 * A platform device (`struct platform_device`): a non-enumerable device described by firmware.
 *
 * @remarks
 * `dma-can-stall` and `pasid-num-bits` are read from {@link PlatformDeviceOptions} or, when the
 * device has an `ofNode`, from that node's properties (`device_property_read_*`).
 */
export class PlatformDevice extends Device {
  /** Always `'platform'`. */
  readonly busType = 'platform' as const;
  /** Firmware IDs given directly (see {@link PlatformDeviceOptions.firmwareIds}). */
  readonly firmwareIds: readonly number[];
  private readonly canStallOpt: boolean | undefined;
  private readonly pasidBitsOpt: number | undefined;

  /**
   * @param name - device name (`dev_name`)
   * @param options - see {@link PlatformDeviceOptions}
   */
  constructor(name: string, options: PlatformDeviceOptions = {}) {
    super(name, options);
    this.firmwareIds = options.firmwareIds ?? [];
    this.canStallOpt = options.dmaCanStall;
    this.pasidBitsOpt = options.pasidNumBits;
  }

  /** `device_property_read_bool(dev, "dma-can-stall")`. */
  get dmaCanStall(): boolean {
    return this.canStallOpt ?? this.ofNode?.properties['dma-can-stall'] === true;
  }

  /** `device_property_read_u32(dev, "pasid-num-bits")`, or `undefined` when absent. */
  get pasidNumBits(): number | undefined {
    if (this.pasidBitsOpt !== undefined) return this.pasidBitsOpt;
    const v = this.ofNode?.properties['pasid-num-bits'];
    return typeof v === 'number' ? v : undefined;
  }
}
