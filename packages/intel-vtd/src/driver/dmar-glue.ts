/**
 * DMAR glue: from a `DmarTopology` (the parsed ACPI DMAR table over the platform's PCI hierarchy)
 * to one running `IntelIommu` per DRHD and per-device firmware facts — the driver side of
 * `dmar_table_init` / `dmar_parse_one_drhd` / `alloc_iommu` (drivers/iommu/intel/dmar.c),
 * `device_lookup_iommu` (iommu.c), `dmar_ats_supported` and the RMRR walk of
 * `intel_iommu_get_resv_regions` (digest §8.1, §8.12).
 *
 * @remarks
 * The caller owns the hardware: per DRHD register base it supplies the `MmioRegion` the unit is
 * driven through (and optionally its interrupt lines). A device is configured before it is added to
 * the IOMMU core: its fwspec names the unit's firmware node and carries its source-id, and the RMRRs
 * naming it plus the ATSR/SATC verdict are recorded with `intelIommuSetDeviceFirmware`.
 */

import { ErrnoError, type Scheduler } from '@iommu-ts/base';
import {
  type Device,
  type FwNode,
  type IommuOps,
  type IommuSubsystem,
  type MmioRegion,
  PciDevice,
} from '@iommu-ts/iommu-core';
import type { PhysicalMemory } from '@iommu-ts/mm';
import type { DmarTopology, DmarUnit } from '../firmware/dmar-topology.js';
import { type DmarDeviceFirmware, intelIommuSetDeviceFirmware } from './device.js';
import type { IntelIommu, IntelIommuDriverOptions, IntelIommuIrqs } from './intel-iommu.js';
import { intelIommuProbe } from './intel-iommu-ops.js';

/** What {@link intelIommuDmarProbe} needs besides the topology. */
export interface IntelIommuDmarEnv {
  /** The IOMMU core the units register with. */
  readonly iommu: IommuSubsystem;
  /** The machine's RAM (root/context/PASID tables, queues, page tables). */
  readonly memory: PhysicalMemory;
  /** The scheduler the units run on. */
  readonly scheduler: Scheduler;
  /**
   * The register window of a DRHD (`map_iommu`'s `ioremap` of the register base).
   * @param base - the DRHD's register base address, bytes
   * @param size - the register set size the DRHD declares, bytes
   * @returns the region, or `null` when nothing answers there (the unit then fails with `ENODEV`)
   */
  mmioFor(base: bigint, size: bigint): MmioRegion | null;
  /**
   * The interrupt lines wired to a unit (optional; default none: the driver runs its handlers
   * when polled).
   * @param unit - the DRHD
   */
  irqsFor?(unit: DmarUnit): IntelIommuIrqs;
  /** Driver options applied to every unit (`intel_iommu=` command line). */
  readonly options?: IntelIommuDriverOptions;
  /** Extra ops merged into every unit's ops (the SVA / IOPF callbacks), see `intelIommuOps`. */
  readonly extraOps?: Partial<IommuOps>;
}

/** One DRHD and what became of it. */
export interface IntelIommuDmarUnit {
  /** The DRHD as the topology resolved it. */
  readonly unit: DmarUnit;
  /** The firmware node the unit registered with (the fwspec node of the devices behind it). */
  readonly fwnode: FwNode;
  /** The running unit, or `null` when bring-up failed. */
  readonly iommu: IntelIommu | null;
  /** The bring-up error when `iommu` is `null`. */
  readonly error: ErrnoError | null;
}

/** The result of {@link intelIommuDmarProbe}: the topology and one entry per DRHD. */
export interface IntelIommuDmarGlue {
  /** The topology. */
  readonly topology: DmarTopology;
  /** One entry per `topology.units`, same order (entry `i` is unit index `i`, named `dmar<i>`). */
  readonly units: readonly IntelIommuDmarUnit[];
}

/**
 * Bring up one `IntelIommu` per DRHD of the topology (named `dmar0`, `dmar1` … in table order,
 * as `alloc_iommu` numbers them), each through `intelIommuProbe` on the caller's register region.
 * A unit that fails is recorded with its error and the others still come up; devices behind a
 * failed unit stay untranslated (Linux's ignored DRHD, `iommu_is_dummy`).
 * @param topology - the DMAR topology
 * @param env - see {@link IntelIommuDmarEnv}
 * @returns the glue, to pass to {@link intelIommuDmarConfigure}
 */
export function intelIommuDmarProbe(topology: DmarTopology, env: IntelIommuDmarEnv): IntelIommuDmarGlue {
  const units = topology.units.map((unit): IntelIommuDmarUnit => {
    const name = `dmar${unit.index}`;
    const fwnode: FwNode = { name };
    try {
      const mmio = env.mmioFor(unit.registerBase, unit.registerSize);
      if (mmio === null)
        throw new ErrnoError('ENODEV', `${name}: no registers at 0x${unit.registerBase.toString(16)}`);
      const iommu = intelIommuProbe({
        iommu: env.iommu,
        mmio,
        memory: env.memory,
        scheduler: env.scheduler,
        irqs: env.irqsFor?.(unit) ?? {},
        name,
        fwnode,
        regBaseAddr: unit.registerBase,
        segment: unit.segment,
        ...(env.options === undefined ? {} : { options: env.options }),
        ...(env.extraOps === undefined ? {} : { extraOps: env.extraOps }),
      });
      return { unit, fwnode, iommu, error: null };
    } catch (e) {
      if (!(e instanceof ErrnoError)) throw e;
      return { unit, fwnode, iommu: null, error: e };
    }
  });
  return { topology, units };
}

/** Where a device sits for the DMAR tables: its unit entry, source-id and firmware facts. */
export interface IntelIommuDmarDeviceLookup {
  /** The unit entry the device is translated by. */
  readonly entry: IntelIommuDmarUnit;
  /** The device's source-id (`bus << 8 | devfn`). */
  readonly sourceId: number;
  /** RMRRs naming the device and whether ATS is allowed. */
  readonly firmware: DmarDeviceFirmware;
}

/**
 * Find a device's unit and firmware facts (`device_lookup_iommu`): a PCI function by segment, bus
 * and devfn; any other device by its name as an ACPI name-space device (ANDD).
 * The RMRRs are those whose scope names the function or a bridge above it; ATS is allowed per
 * `dmar_ats_supported` with the unit's scalable mode.
 * @param glue - from {@link intelIommuDmarProbe}
 * @param dev - the device
 * @returns the lookup, or `null` when no DRHD covers the device or its unit failed to come up
 */
export function intelIommuDmarLookup(
  glue: IntelIommuDmarGlue,
  dev: Device,
): IntelIommuDmarDeviceLookup | null {
  const topo = glue.topology;
  if (dev instanceof PciDevice) {
    const hit = topo.unitForDevice(dev);
    if (hit === null) return null;
    const entry = glue.units[hit.unit.index];
    if (entry === undefined || entry.iommu === null) return null;
    const rmrrs = topo
      .reservedRegions(dev.segment, dev.busNr, dev.devfn)
      .map((r) => ({ start: r.start, length: r.length }));
    return {
      entry,
      sourceId: dev.requesterId,
      firmware: { rmrrs, atsAllowed: topo.atsSupported(dev, entry.iommu.smSupported) },
    };
  }
  const unit = topo.unitForNamespaceDevice(dev.name);
  if (unit === null) return null;
  const entry = glue.units[unit.index];
  const nd = unit.namespaceDevices.find((d) => d.name === dev.name);
  if (entry === undefined || entry.iommu === null || nd === undefined) return null;
  return { entry, sourceId: (nd.bus << 8) | nd.devfn, firmware: { rmrrs: [], atsAllowed: false } };
}

/**
 * Configure a device from the DMAR tables before it is added to the IOMMU core: fwspec on its
 * unit's firmware node with its source-id, and the RMRRs / ATS permission recorded with
 * `intelIommuSetDeviceFirmware` (read by the driver's probe and reserved-region callbacks).
 * @param glue - from {@link intelIommuDmarProbe}
 * @param dev - the device, not yet added to the core
 * @returns the lookup used, or `null` when the device sits behind no working unit (left untouched)
 * @throws ErrnoError `EINVAL` (from `iommuFwspecInit`) when the device already has a fwspec for
 *   another IOMMU driver; nothing is changed then
 */
export function intelIommuDmarConfigure(
  glue: IntelIommuDmarGlue,
  dev: Device,
): IntelIommuDmarDeviceLookup | null {
  const hit = intelIommuDmarLookup(glue, dev);
  if (hit === null) return null;
  const iommu = hit.entry.iommu as IntelIommu;
  iommu.iommu.iommuFwspecInit(dev, hit.entry.fwnode);
  if (!(dev.fwspec?.ids.includes(hit.sourceId) ?? false)) iommu.iommu.iommuFwspecAddIds(dev, [hit.sourceId]);
  intelIommuSetDeviceFirmware(dev, hit.firmware);
  return hit;
}
