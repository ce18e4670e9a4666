/**
 * A minimal PCI topology: host bridges, buses, bridges/root ports with ACS, and functions with
 * their PASID, PRI and ATS capabilities and DMA aliases (include/linux/pci.h, drivers/pci/).
 *
 * Changes (additive only): none yet.
 *
 * @remarks
 * Enough of the PCI core for `pci_device_group`, `pci_for_each_dma_alias`, `pci_acs_enabled`,
 * `pci_acs_path_enabled` and drivers/pci/ats.c. Build it top-down:
 * `const hb = new PciHostBridge(); const rp = hb.rootBus.addDevice({devfn: 0x08, pcieType: 'root_port',
 * acs: ...}); const bus1 = rp.addSecondaryBus(1); bus1.addDevice({...})`.
 */

import { ErrnoError } from '@iommu-ts/base';
import { Device, type DeviceOptions } from './device.js';
import type { DtNode } from './of-iommu.js';

/** ACS Source Validation (`PCI_ACS_SV`). */
export const PCI_ACS_SV = 0x01;
/** ACS Translation Blocking (`PCI_ACS_TB`). */
export const PCI_ACS_TB = 0x02;
/** ACS P2P Request Redirect (`PCI_ACS_RR`). */
export const PCI_ACS_RR = 0x04;
/** ACS P2P Completion Redirect (`PCI_ACS_CR`). */
export const PCI_ACS_CR = 0x08;
/** ACS Upstream Forwarding (`PCI_ACS_UF`). */
export const PCI_ACS_UF = 0x10;
/** ACS P2P Egress Control (`PCI_ACS_EC`). */
export const PCI_ACS_EC = 0x20;
/** ACS Direct Translated P2P (`PCI_ACS_DT`). */
export const PCI_ACS_DT = 0x40;
/** The ACS flags the IOMMU core requires for isolation (`REQ_ACS_FLAGS` = SV | RR | CR | UF). */
export const REQ_ACS_FLAGS = PCI_ACS_SV | PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_UF;

/** `pci_pcie_type()` values, plus `'pci'` for a conventional (non-PCIe) function. */
export type PciExpType =
  | 'endpoint'
  | 'legacy_endpoint'
  | 'root_port'
  | 'upstream'
  | 'downstream'
  | 'pci_bridge'
  | 'pcie_bridge'
  | 'rc_endpoint'
  | 'rc_event_collector'
  | 'pci';

/** The ACS extended capability: what is implemented (`cap`) and enabled (`ctrl`), PCI_ACS_* bits. */
export interface PciAcsCap {
  /** ACS Capability register bits. */
  cap: number;
  /** ACS Control register bits (enabled controls). */
  ctrl: number;
}

/** PASID capability (`PCI_EXT_CAP_ID_PASID`). */
export interface PciPasidCap {
  /** Max PASID Width (0..20): the function supports PASIDs `0 .. 2^width - 1`. */
  maxPasidWidth: number;
  /** Execute Permission Supported. */
  exec: boolean;
  /** Privileged Mode Supported. */
  priv: boolean;
  /** PASID Enable (control). */
  enabled: boolean;
  /** Enabled features (`PCI_PASID_CAP_EXEC` 0x02, `PCI_PASID_CAP_PRIV` 0x04), as written by `pci_enable_pasid`. */
  enabledFeatures: number;
}

/** Page Request Interface capability (`PCI_EXT_CAP_ID_PRI`). */
export interface PciPriCap {
  /** Outstanding Page Request Capacity (max requests the function may have in flight). */
  maxRequests: number;
  /** Outstanding Page Request Allocation written by `pci_enable_pri`. */
  allocatedRequests: number;
  /** PRG Response PASID Required (`PCI_PRI_STATUS_PASID`). */
  prgResponsePasidRequired: boolean;
  /** PRI Enable (control). */
  enabled: boolean;
}

/** Address Translation Services capability (`PCI_EXT_CAP_ID_ATS`). */
export interface PciAtsCap {
  /** Invalidate Queue Depth (0 means 32). */
  invQueueDepth: number;
  /** Page Aligned Request. */
  pageAlignedRequest: boolean;
  /** Smallest Translation Unit, log2 of the page size minus 12 (`ats_stu`), written by `pci_enable_ats`. */
  stu: number;
  /** ATS Enable (control). */
  enabled: boolean;
}

/** Options of {@link PciBus.addDevice}. */
export interface PciDeviceOptions extends DeviceOptions {
  /** Device/function number: `slot << 3 | function`. */
  devfn: number;
  /** PCIe port/device type, default `'endpoint'`. */
  pcieType?: PciExpType;
  /** The multifunction bit of the header type (`pdev->multifunction`). Default false. */
  multifunction?: boolean;
  /** ACS capability, `null` (default) when absent. */
  acs?: PciAcsCap | null;
  /** PASID capability: partial fields; `null`/absent means no capability. */
  pasid?: Partial<PciPasidCap> & { maxPasidWidth: number };
  /** PRI capability: partial fields; absent means none. */
  pri?: Partial<PciPriCap> & { maxRequests: number };
  /** ATS capability: partial fields; absent means none. */
  ats?: Partial<PciAtsCap>;
  /** DMA alias devfns on the same bus (`dma_alias_mask`, `pci_add_dma_alias`). */
  dmaAliases?: readonly number[];
  /** `pdev->untrusted` (external-facing port below): forces a DMA default domain. */
  untrusted?: boolean;
  /** `PCI_DEV_FLAG_PCIE_BRIDGE_ALIAS` for a conventional bridge that aliases as subordinate.00.0. */
  pcieBridgeAlias?: boolean;
  /** PCI vendor ID (informational). */
  vendor?: number;
  /** PCI device ID (informational). */
  device?: number;
}

/**
 * A PCI host bridge (`struct pci_host_bridge`): one segment's root bus and the firmware node that
 * carries `iommu-map` / `iommu-map-mask` for the whole hierarchy.
 */
export class PciHostBridge {
  /** PCI segment (domain) number. */
  readonly segment: number;
  /** The root bus. */
  readonly rootBus: PciBus;
  /** The DT node of the host controller (`iommu-map`, `iommu-map-mask`), or `null`. */
  ofNode: DtNode | null;

  /**
   * @param options - `segment` (default 0), `busNr` of the root bus (default 0), `ofNode`
   */
  constructor(options: { segment?: number; busNr?: number; ofNode?: DtNode | null } = {}) {
    this.segment = options.segment ?? 0;
    this.ofNode = options.ofNode ?? null;
    this.rootBus = new PciBus(this, options.busNr ?? 0, null, null);
  }
}

/** A PCI bus (`struct pci_bus`). */
export class PciBus {
  /** The host bridge above. */
  readonly hostBridge: PciHostBridge;
  /** Bus number. */
  readonly number: number;
  /** Parent bus, `null` for the root bus. */
  readonly parent: PciBus | null;
  /** The bridge leading to this bus (`bus->self`), `null` for the root bus. */
  readonly self: PciDevice | null;
  /** Functions on this bus. */
  readonly devices: PciDevice[] = [];

  /** @internal */
  constructor(hostBridge: PciHostBridge, number: number, parent: PciBus | null, self: PciDevice | null) {
    this.hostBridge = hostBridge;
    this.number = number;
    this.parent = parent;
    this.self = self;
  }

  /** `pci_is_root_bus(bus)`. */
  get isRoot(): boolean {
    return this.parent === null;
  }

  /**
   * Add a function to this bus.
   *
   * @param options - see {@link PciDeviceOptions}
   * @returns the new function
   * @throws ErrnoError `EEXIST` when `devfn` is taken; `EINVAL` when `devfn` is out of 0..255
   */
  addDevice(options: PciDeviceOptions): PciDevice {
    if (!Number.isInteger(options.devfn) || options.devfn < 0 || options.devfn > 0xff)
      throw new ErrnoError('EINVAL', `bad devfn ${options.devfn}`);
    if (this.devices.some((d) => d.devfn === options.devfn))
      throw new ErrnoError('EEXIST', `devfn ${options.devfn.toString(16)} exists on bus ${this.number}`);
    const dev = new PciDevice(this, options);
    this.devices.push(dev);
    return dev;
  }
}

const hex = (n: number, w: number): string => n.toString(16).padStart(w, '0');

/**
 * A PCI function (`struct pci_dev`).
 *
 * @remarks
 * `requesterId` is the 16-bit Requester ID (`PCI_DEVID(bus, devfn)`), what a PCIe IOMMU uses as
 * StreamID/source-id unless an `iommu-map` or IORT mapping says otherwise.
 */
export class PciDevice extends Device {
  /** Always `'pci'`. */
  readonly busType = 'pci' as const;
  /** The bus this function sits on (`pdev->bus`). */
  readonly bus: PciBus;
  /** `devfn`: `slot << 3 | function`. */
  readonly devfn: number;
  /** PCIe type (`pci_pcie_type`), or `'pci'` for conventional PCI. */
  readonly pcieType: PciExpType;
  /** `pdev->multifunction`. */
  multifunction: boolean;
  /** ACS capability, or `null`. */
  acs: PciAcsCap | null;
  /** PASID capability, or `null`. */
  pasidCap: PciPasidCap | null;
  /** PRI capability, or `null`. */
  priCap: PciPriCap | null;
  /** ATS capability, or `null`. */
  atsCap: PciAtsCap | null;
  /** DMA alias devfns on the same bus (`dma_alias_mask`). */
  readonly dmaAliases: Set<number>;
  /** `pdev->untrusted`. */
  untrusted: boolean;
  /** `PCI_DEV_FLAG_PCIE_BRIDGE_ALIAS`. */
  pcieBridgeAlias: boolean;
  /** The secondary bus behind this bridge (`pdev->subordinate`), or `null`. */
  subordinate: PciBus | null = null;
  /** Vendor ID. */
  readonly vendor: number;
  /** Device ID. */
  readonly device: number;
  /** `pdev->pasid_required` (PRG Response PASID Required, set from the PRI capability). */
  get pasidRequired(): boolean {
    return this.priCap?.prgResponsePasidRequired ?? false;
  }

  /** @internal use {@link PciBus.addDevice} */
  constructor(bus: PciBus, options: PciDeviceOptions) {
    const seg = bus.hostBridge.segment;
    super(`${hex(seg, 4)}:${hex(bus.number, 2)}:${hex(options.devfn >> 3, 2)}.${options.devfn & 7}`, options);
    this.bus = bus;
    this.devfn = options.devfn;
    this.pcieType = options.pcieType ?? 'endpoint';
    this.multifunction = options.multifunction ?? false;
    this.acs = options.acs ?? null;
    this.pasidCap = options.pasid
      ? { exec: false, priv: false, enabled: false, enabledFeatures: 0, ...options.pasid }
      : null;
    this.priCap = options.pri
      ? { allocatedRequests: 0, prgResponsePasidRequired: false, enabled: false, ...options.pri }
      : null;
    this.atsCap = options.ats
      ? { invQueueDepth: 0, pageAlignedRequest: false, stu: 0, enabled: false, ...options.ats }
      : null;
    this.dmaAliases = new Set(options.dmaAliases ?? []);
    this.untrusted = options.untrusted ?? false;
    this.pcieBridgeAlias = options.pcieBridgeAlias ?? false;
    this.vendor = options.vendor ?? 0x1b36;
    this.device = options.device ?? 0;
  }

  /** PCI segment (`pci_domain_nr`). */
  get segment(): number {
    return this.bus.hostBridge.segment;
  }

  /** Bus number. */
  get busNr(): number {
    return this.bus.number;
  }

  /** `PCI_SLOT(devfn)`. */
  get slot(): number {
    return this.devfn >> 3;
  }

  /** `PCI_FUNC(devfn)`. */
  get func(): number {
    return this.devfn & 7;
  }

  /** The 16-bit Requester ID, `PCI_DEVID(bus, devfn)` = `bus << 8 | devfn`. */
  get requesterId(): number {
    return (this.bus.number << 8) | this.devfn;
  }

  /** `pci_is_pcie(pdev)`. */
  get isPcie(): boolean {
    return this.pcieType !== 'pci';
  }

  /** `pci_is_bridge(pdev)` (has a subordinate bus or is a bridge type). */
  get isBridge(): boolean {
    return (
      this.subordinate !== null ||
      this.pcieType === 'root_port' ||
      this.pcieType === 'upstream' ||
      this.pcieType === 'downstream' ||
      this.pcieType === 'pci_bridge' ||
      this.pcieType === 'pcie_bridge'
    );
  }

  /** `pci_dev_is_untrusted`-like: whether this device or the path above is marked untrusted. */
  get isUntrusted(): boolean {
    return this.untrusted;
  }

  /**
   * Create the secondary bus behind this bridge.
   *
   * @param number - the secondary bus number
   * @returns the new bus
   * @throws ErrnoError `EEXIST` if the bridge already has one
   */
  addSecondaryBus(number: number): PciBus {
    if (this.subordinate) throw new ErrnoError('EEXIST', `${this.name} already has a secondary bus`);
    this.subordinate = new PciBus(this.bus.hostBridge, number, this.bus, this);
    return this.subordinate;
  }

  /** `pci_upstream_bridge(pdev)`: the bridge above this function, `null` on the root bus. */
  get upstreamBridge(): PciDevice | null {
    return this.bus.self;
  }

  /** `pci_add_dma_alias(pdev, devfn, 1)`. */
  addDmaAlias(devfn: number): void {
    this.dmaAliases.add(devfn);
  }
}

/** `pci_devs_are_dma_aliases(a, b)`: same bus and either lists the other's devfn as an alias. */
export function pciDevsAreDmaAliases(a: PciDevice, b: PciDevice): boolean {
  return a.bus === b.bus && (a.dmaAliases.has(b.devfn) || b.dmaAliases.has(a.devfn));
}

/**
 * `pci_acs_flags_enabled`: whether the ACS controls in `flags` that the function implements are
 * enabled. A function without an ACS capability fails.
 */
function acsFlagsEnabled(pdev: PciDevice, flags: number): boolean {
  if (!pdev.acs) return false;
  // Controls not implemented by the capability are not required (except EC, kept as Linux does).
  const need = flags & (pdev.acs.cap | PCI_ACS_EC);
  return (pdev.acs.ctrl & need) === need;
}

/**
 * `pci_acs_enabled(pdev, flags)`: whether the function provides the ACS isolation in `flags`.
 *
 * @remarks
 * Conventional PCI functions and PCI/X-to-PCIe bridges: never. Root and downstream ports: their ACS
 * controls. Any other multifunction device: its ACS controls. Other single-function devices: always
 * (nothing beside them to talk to). Device quirks are not modelled.
 */
export function pciAcsEnabled(pdev: PciDevice, flags: number): boolean {
  if (!pdev.isPcie) return false;
  switch (pdev.pcieType) {
    case 'pcie_bridge':
      return false;
    case 'root_port':
    case 'downstream':
      return acsFlagsEnabled(pdev, flags);
    default:
      return pdev.multifunction ? acsFlagsEnabled(pdev, flags) : true;
  }
}

/**
 * `pci_acs_path_enabled(start, end, flags)`: ACS `flags` enabled on `start` and every bridge above
 * it up to (and including) `end`, or up to the root bus when `end` is `null`.
 */
export function pciAcsPathEnabled(start: PciDevice, end: PciDevice | null, flags: number): boolean {
  let pdev: PciDevice | null = start;
  while (pdev) {
    if (!pciAcsEnabled(pdev, flags)) return false;
    if (pdev === end) return true;
    pdev = pdev.upstreamBridge;
  }
  return end === null;
}

/**
 * `pci_for_each_dma_alias(pdev, fn)`: call `fn(pdev', requesterId)` for the function's own RID, its
 * DMA aliases, then every alias a bridge on the upstream path introduces (PCIe-to-PCI bridges alias
 * as `subordinate:00.0`; conventional bridges as themselves). Stops at the first truthy return and
 * returns it.
 */
export function pciForEachDmaAlias<T>(
  pdev: PciDevice,
  fn: (dev: PciDevice, alias: number) => T | undefined | null | false,
): T | undefined {
  let r = fn(pdev, pdev.requesterId);
  if (r) return r;
  for (const devfn of [...pdev.dmaAliases].sort((a, b) => a - b)) {
    r = fn(pdev, (pdev.bus.number << 8) | devfn);
    if (r) return r;
  }
  for (let bus: PciBus | null = pdev.bus; bus && !bus.isRoot; bus = bus.parent) {
    const tmp = bus.self;
    if (!tmp) continue;
    if (tmp.isPcie) {
      if (tmp.pcieType === 'pci_bridge') {
        r = fn(tmp, (tmp.subordinate?.number ?? 0) << 8);
      } else if (tmp.pcieType === 'pcie_bridge') {
        r = fn(tmp, tmp.requesterId);
      } else continue;
    } else {
      r = fn(tmp, tmp.pcieBridgeAlias ? (tmp.subordinate?.number ?? 0) << 8 : tmp.requesterId);
    }
    if (r) return r;
  }
  return undefined;
}
