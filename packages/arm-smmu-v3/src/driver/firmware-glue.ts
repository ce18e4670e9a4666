/**
 * Firmware glue: from a `FirmwareTopology` (IORT or device tree) to probed SMMUv3 drivers and
 * per-device fwspecs — the driver side of `arm_smmu_device_acpi_probe` / `arm_smmu_device_dt_probe`
 * (arm-smmu-v3.c), `iort_iommu_configure_id` / `iort_named_component_init` (drivers/acpi/arm64/
 * iort.c) and `of_iommu_configure` (drivers/iommu/of_iommu.c).
 *
 * @remarks
 * The caller owns the hardware: it supplies, per SMMU base address, the `MmioRegion` the driver
 * talks to (and optionally its interrupt lines). Firmware decides coherency, the HTTU override
 * (IORT only), the SKIP_PREFETCH / PAGE0_REGS_ONLY options and the RMR StreamIDs that keep a
 * bypass STE at reset. Per device, the glue fills the fwspec (SMMU fwnode, StreamIDs,
 * `IOMMU_FWSPEC_PCI_RC_ATS`) and, for platform masters, the `pasid-num-bits` / `dma-can-stall`
 * properties the driver's probe reads (IORT adds them as a software node, DT has them already).
 */

import { ErrnoError, type Scheduler } from '@iommu-ts/base';
import {
  type Device,
  DtNode,
  type FwNode,
  IOMMU_FWSPEC_PCI_RC_ATS,
  type IommuSubsystem,
  type MmioRegion,
  PciDevice,
  pciForEachDmaAlias,
} from '@iommu-ts/iommu-core';
import type { PhysicalMemory } from '@iommu-ts/mm';
import type { FirmwareTopology, SmmuFirmwareInstance, SmmuFwspec } from '../firmware/topology.js';
import type { ArmSmmuDevice, ArmSmmuDriverOptions, ArmSmmuIrqs } from './arm-smmu-device.js';
import { armSmmuDeviceProbe } from './arm-smmu-ops.js';

/** What {@link armSmmuFirmwareProbe} needs besides the topology. */
export interface ArmSmmuFirmwareEnv {
  /** The IOMMU core the SMMUs register with. */
  readonly iommu: IommuSubsystem;
  /** The machine's RAM (queues, stream tables, page tables). */
  readonly memory: PhysicalMemory;
  /** The scheduler. */
  readonly scheduler: Scheduler;
  /**
   * The register window at `base` (`devm_ioremap_resource` of the firmware's MMIO resource).
   * @param base - physical base of register page 0, bytes
   * @param size - size of the region firmware declares, bytes
   * @returns the region, or `null` when nothing answers there (the SMMU then fails with ENODEV)
   */
  mmioFor(base: bigint, size: bigint): MmioRegion | null;
  /**
   * The wired interrupt lines of an instance (optional; default none: the driver then polls).
   * @param instance - the firmware instance
   */
  irqsFor?(instance: SmmuFirmwareInstance): ArmSmmuIrqs;
  /**
   * Extra driver options applied to every instance (model knobs such as `maxQueueLog2`); the
   * firmware-derived options (`httuOverride`, `skipPrefetch`, `page0RegsOnly`) win.
   */
  readonly options?: ArmSmmuDriverOptions;
}

/** One firmware SMMU instance and what became of it. */
export interface ArmSmmuFirmwareSmmu {
  /** The firmware description. */
  readonly instance: SmmuFirmwareInstance;
  /** The fwnode the SMMU registered with (`iommu_fwnode` of the devices behind it). */
  readonly fwnode: FwNode;
  /** The probed, reset and registered driver, or `null` when probing failed. */
  readonly smmu: ArmSmmuDevice | null;
  /** The probe error when `smmu` is `null`. */
  readonly error: ErrnoError | null;
}

/** The result of {@link armSmmuFirmwareProbe}: the topology and one entry per SMMU instance. */
export interface ArmSmmuFirmwareGlue {
  /** The firmware topology. */
  readonly topology: FirmwareTopology;
  /** One entry per `topology.smmus`, same order. */
  readonly smmus: readonly ArmSmmuFirmwareSmmu[];
}

/**
 * The driver options firmware selects for an instance (`arm_smmu_device_acpi_probe`,
 * `arm_smmu_device_dt_probe`, `parse_driver_options`): `httuOverride` from IORT
 * (`'ha-hd'` → `'hahd'`; DT: none, IDR0 decides), `skipPrefetch`, `page0RegsOnly`.
 * @param instance - the firmware instance
 * @param extra - options to start from
 * @returns the merged options
 */
export function armSmmuFirmwareDriverOptions(
  instance: SmmuFirmwareInstance,
  extra: ArmSmmuDriverOptions = {},
): ArmSmmuDriverOptions {
  const httu = instance.httu;
  return {
    ...extra,
    ...(httu === null ? {} : { httuOverride: httu === 'ha-hd' ? 'hahd' : httu }),
    ...(instance.options.skipPrefetch ? { skipPrefetch: true } : {}),
    ...(instance.options.page0RegsOnly ? { page0RegsOnly: true } : {}),
  };
}

/**
 * Probe every SMMUv3 instance of a topology (`arm_smmu_device_probe` per platform device): the
 * driver on the caller's MMIO region, coherency and options from firmware, bypass STEs for the
 * instance's RMR StreamIDs, registered under a fwnode named after the instance. A failing instance
 * is recorded with its error and the others still probe (as separate platform devices do).
 * @param topology - from `iortTopology` or `deviceTreeTopology`
 * @param env - see {@link ArmSmmuFirmwareEnv}
 * @returns the glue, to pass to {@link armSmmuFirmwareConfigure}
 */
export function armSmmuFirmwareProbe(
  topology: FirmwareTopology,
  env: ArmSmmuFirmwareEnv,
): ArmSmmuFirmwareGlue {
  const smmus = topology.smmus.map((instance): ArmSmmuFirmwareSmmu => {
    const fwnode: FwNode = { name: instance.name };
    const rmrSids = topology.reservedRanges
      .filter((r) => r.smmu.index === instance.index)
      .flatMap((r) => r.streamIds);
    try {
      const mmio = env.mmioFor(instance.base, instance.size);
      if (mmio === null)
        throw new ErrnoError('ENODEV', `${instance.name}: no MMIO at 0x${instance.base.toString(16)}`);
      const smmu = armSmmuDeviceProbe(
        {
          iommu: env.iommu,
          mmio,
          memory: env.memory,
          scheduler: env.scheduler,
          irqs: env.irqsFor?.(instance) ?? {},
          fwnode,
          coherent: instance.coherent,
          name: instance.name,
          options: armSmmuFirmwareDriverOptions(instance, env.options),
        },
        [...new Set(rmrSids)],
      );
      return { instance, fwnode, smmu, error: null };
    } catch (e) {
      if (!(e instanceof ErrnoError)) throw e;
      return { instance, fwnode, smmu: null, error: e };
    }
  });
  return { topology, smmus };
}

/**
 * The firmware fwspec of a device: PCI functions by (segment, Requester ID) of each DMA alias
 * (`pci_for_each_dma_alias`), platform devices by name (DT node path or IORT device name).
 * @param glue - from {@link armSmmuFirmwareProbe}
 * @param dev - the device
 * @returns the fwspecs found (one per alias that reaches an SMMU), empty when none
 * @throws ErrnoError the topology's mapping errors (EINVAL, EFAULT, ENODEV)
 */
export function armSmmuFirmwareLookup(glue: ArmSmmuFirmwareGlue, dev: Device): SmmuFwspec[] {
  const out: SmmuFwspec[] = [];
  if (dev instanceof PciDevice) {
    pciForEachDmaAlias(dev, (_d, rid) => {
      const fw = glue.topology.resolvePci(dev.segment, rid);
      if (fw !== null) out.push(fw);
      return false;
    });
  } else {
    const fw = glue.topology.resolvePlatform(dev.name);
    if (fw !== null) out.push(fw);
  }
  return out;
}

/**
 * Configure a device from firmware before it is added to the IOMMU core (the `dma_configure`
 * step): `iommuFwspecInit` with its SMMU's fwnode, `iommuFwspecAddIds` with its StreamIDs,
 * `IOMMU_FWSPEC_PCI_RC_ATS` when the root complex supports ATS; for a platform master with PASID
 * bits or stall support, the `pasid-num-bits` / `dma-can-stall` properties on its firmware node
 * (a new node named after the device when it has none, like IORT's software node). A device no
 * firmware entry reaches is left untouched (not translated).
 * @param glue - from {@link armSmmuFirmwareProbe}
 * @param dev - the device, not yet added to the core
 * @returns the first fwspec used, or `null` when the device sits behind no SMMU
 * @throws ErrnoError `EPROBE_DEFER` when its SMMU failed to probe; `EINVAL` when aliases reach two
 *   different SMMUs; the topology's errors. On error the device has no fwspec and no new properties.
 */
export function armSmmuFirmwareConfigure(glue: ArmSmmuFirmwareGlue, dev: Device): SmmuFwspec | null {
  const specs = armSmmuFirmwareLookup(glue, dev);
  const first = specs[0];
  if (first === undefined) return null;
  const hadFwspec = dev.iommu?.fwspec ?? null;
  const hadIommu = dev.iommu;
  try {
    for (const fw of specs) {
      const entry = glue.smmus[fw.smmu.index];
      if (entry === undefined || entry.smmu === null)
        throw new ErrnoError('EPROBE_DEFER', `${dev.name}: SMMU ${fw.smmu.name} not probed`);
      entry.smmu.iommu.iommuFwspecInit(dev, entry.fwnode);
      entry.smmu.iommu.iommuFwspecAddIds(dev, fw.streamIds);
      if (fw.ats && dev.fwspec !== null) dev.fwspec.flags |= IOMMU_FWSPEC_PCI_RC_ATS;
    }
  } catch (e) {
    if (hadFwspec === null && dev.iommu !== null) {
      if (hadIommu === null) dev.iommu = null;
      else dev.iommu.fwspec = null;
    }
    throw e;
  }
  if (!(dev instanceof PciDevice) && (first.pasidBits > 0 || first.canStall)) {
    const node = dev.ofNode ?? new DtNode(dev.name);
    if (first.pasidBits > 0 && node.properties['pasid-num-bits'] === undefined)
      node.properties['pasid-num-bits'] = first.pasidBits;
    if (first.canStall) node.properties['dma-can-stall'] = true;
    dev.ofNode = node;
  }
  return first;
}
