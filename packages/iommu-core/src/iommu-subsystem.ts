/**
 * The IOMMU core as an instance (drivers/iommu/iommu.c, of_iommu.c): IOMMU registration, device
 * probe and release, groups, default domains, attach/detach (RID and PASID), DMA ownership,
 * reserved regions and direct mappings, the global PASID allocator, device features.
 *
 * Changes (additive only): `pciDevResetIommuPrepare` / `pciDevResetIommuDone` (§8.3);
 * `iommuGroupShowType` / `iommuGroupStoreType` and `IommuDmaHooks.initFq` (sysfs `type`, §6.5).
 *
 * @remarks
 * Error style: where Linux returns `-errno` these methods throw `ErrnoError` (from
 * `@iommu-ts/base`) and change nothing; where Linux returns a sentinel or a size they return it
 * (`iommuUnmap` bytes, `iommuIovaToPhys` 0n, `iommuAllocGlobalPasid` `IOMMU_PASID_INVALID`,
 * `null` for NULL). Kernel warnings (`WARN_ON`) and log lines go to {@link IommuSubsystemOptions.log}.
 */

import { ErrnoError, isErrnoError, shouldFail } from '@iommu-ts/base';
import type { IommuIotlbGather } from '@iommu-ts/io-pgtable';
import { IOMMU_PASID_INVALID, IoasidSubsystem } from '@iommu-ts/ioasid';
import { type Mm, mmdrop, mmgrab } from '@iommu-ts/mm';
import { pciAtsSupported } from './ats.js';
import { DevIommu, type Device, PlatformDevice } from './device.js';
import {
  __IOMMU_DOMAIN_PAGING,
  IOMMU_DOMAIN_BLOCKED,
  IOMMU_DOMAIN_DMA,
  IOMMU_DOMAIN_DMA_FQ,
  IOMMU_DOMAIN_IDENTITY,
  IOMMU_DOMAIN_SVA,
  IOMMU_DOMAIN_UNMANAGED,
  IOMMU_NO_PASID,
  type IommuDomain,
  IommuDomainCookieType,
  iommuIsDmaDomain,
} from './domain.js';
import type { IommuAttachHandle } from './fault.js';
import type { FwNode, IommuFwspec } from './fwspec.js';
import { type GroupPasidEntry, IommuGroup } from './group.js';
import type { IommuDevice } from './iommu-device.js';
import { IOMMU_HWPT_ALLOC_PASID, type IommuCap, type IommuDevFeature, type IommuOps } from './iommu-ops.js';
import {
  iommuFlushIotlbAll,
  iommuIotlbSync,
  iommuIovaToPhys,
  iommuMap,
  iommuUnmap,
  iommuUnmapFast,
} from './map.js';
import { type DeviceTree, type DtNode, type OfPhandleArgs, ofMapId, ofParseIommus } from './of-iommu.js';
import { PciDevice, pciForEachDmaAlias } from './pci.js';
import { type IommuResvRegion, IommuResvType, iommuMergeResvRegions } from './resv-region.js';

/** A log sink: `level` is `'warn'` for `WARN_ON`-style reports, `'err'`/`'info'` for printk levels. */
export type IommuLogger = (level: 'warn' | 'err' | 'info', message: string) => void;

/**
 * Hooks the DMA layer (dma-iommu) installs so the core can give DMA domains their IOVA cookie and
 * set up a device's DMA ops, as `iommu_setup_default_domain` / `iommu_setup_dma_ops` do.
 */
export interface IommuDmaHooks {
  /** `iommu_get_dma_cookie(domain)`: give a DMA-type default domain its IOVA cookie. @throws ErrnoError */
  getDmaCookie?(domain: IommuDomain): void;
  /** `iommu_put_dma_cookie(domain)`: called by `iommuDomainFree` for DMA_IOVA/DMA_MSI cookies. */
  putDmaCookie?(domain: IommuDomain): void;
  /** `iommu_setup_dma_ops(dev)`: the device's default domain is in place (or changed). */
  setupDmaOps?(dev: Device, domain: IommuDomain): void;
  /**
   * `iommu_dma_init_fq(domain)`: bring up the flush queue of an initialised DMA domain (sysfs
   * DMA → DMA-FQ in place). @throws ErrnoError
   */
  initFq?(domain: IommuDomain): void;
}

/**
 * Capabilities of the writer of a sysfs attribute (`capable(CAP_...)`); both default to true.
 */
export interface IommuSysfsCredentials {
  /** `CAP_SYS_ADMIN`. */
  sysAdmin?: boolean;
  /** `CAP_SYS_RAWIO`. */
  sysRawio?: boolean;
}

/** Options of {@link IommuSubsystem}. */
export interface IommuSubsystemOptions {
  /** PASID allocator for `iommuAllocGlobalPasid`; default a new `IoasidSubsystem`. */
  ioasid?: IoasidSubsystem;
  /** `iommu.passthrough=1`: the global default domain type is IDENTITY. Default false. */
  passthrough?: boolean;
  /** `iommu.strict`: DMA (true, default) or DMA_FQ (false) as the global translated type. */
  strict?: boolean;
  /** `CONFIG_IOMMU_DMA`; default true. Without it DMA demands fail and "no opinion" is IDENTITY. */
  iommuDma?: boolean;
  /** The device tree for `of_iommu` configuration (phandle resolution). */
  deviceTree?: DeviceTree;
  /**
   * Seed (SVA/IOPF refactoring RFC v3): PASID attach requires an immutable singleton group
   * (`EINVAL` otherwise). Default false (merged behaviour).
   */
  pasidRequiresSingletonGroup?: boolean;
  /** Log sink; default silent. */
  log?: IommuLogger;
}

const MUST_SUCCEED = 1;

/** Texts accepted by the sysfs `type` attribute and the domain type each requests (0 = automatic). */
const SYSFS_DOMAIN_TYPES: ReadonlyMap<string, number> = new Map([
  ['identity', IOMMU_DOMAIN_IDENTITY],
  ['DMA', IOMMU_DOMAIN_DMA],
  ['DMA-FQ', IOMMU_DOMAIN_DMA_FQ],
  ['auto', 0],
]);

/**
 * The IOMMU core: one instance per simulated machine.
 *
 * @remarks
 * Devices are put on the "bus" with {@link IommuSubsystem.addDevice} (the driver-core
 * `BUS_NOTIFY_ADD_DEVICE` path) and probed against registered IOMMU instances; registering an
 * IOMMU later probes every device already on the bus (`bus_iommu_probe`).
 */
export class IommuSubsystem {
  /** The PASID allocator behind `iommuAllocGlobalPasid`. */
  readonly ioasid: IoasidSubsystem;
  /** The device tree used by `ofIommuConfigure` (`null` when none). */
  deviceTree: DeviceTree | null;
  /** `iommu_def_domain_type`: IDENTITY, DMA or DMA_FQ. */
  defDomainType: number;
  /** `CONFIG_IOMMU_DMA`. */
  readonly iommuDma: boolean;
  /** Seed: PASID attach requires immutable singleton groups. */
  pasidRequiresSingletonGroup: boolean;
  /** DMA-layer hooks (set by the dma-iommu code). */
  dmaHooks: IommuDmaHooks = {};
  /** Registered IOMMU instances (`iommu_device_list`). */
  readonly iommuDevices: IommuDevice[] = [];
  /** Devices on the bus (`bus_for_each_dev`), in the order they were added. */
  readonly devices: Device[] = [];
  private readonly log: IommuLogger;
  private nextGroupId = 0;
  private readonly freeGroupIds: number[] = [];
  private busProbing: IommuGroup[] | null = null;

  /** @param options - see {@link IommuSubsystemOptions} */
  constructor(options: IommuSubsystemOptions = {}) {
    this.ioasid = options.ioasid ?? new IoasidSubsystem();
    this.deviceTree = options.deviceTree ?? null;
    this.iommuDma = options.iommuDma ?? true;
    this.pasidRequiresSingletonGroup = options.pasidRequiresSingletonGroup ?? false;
    this.log = options.log ?? (() => {});
    if (options.passthrough) this.defDomainType = IOMMU_DOMAIN_IDENTITY;
    else this.defDomainType = (options.strict ?? true) ? IOMMU_DOMAIN_DMA : IOMMU_DOMAIN_DMA_FQ;
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private warn(msg: string): void {
    this.log('warn', msg);
  }

  /** `dev_iommu_ops(dev)`: the ops of the IOMMU a probed device sits behind, or `null`. */
  devIommuOps(dev: Device): IommuOps | null {
    return dev.iommu?.iommuDev?.ops ?? null;
  }

  /** `dev_has_iommu(dev)`. */
  devHasIommu(dev: Device): boolean {
    return this.devIommuOps(dev) !== null;
  }

  /** `iommu_ops_from_fwnode(fwnode)`: the ops of the registered IOMMU with that fwnode (`null` matches drivers without firmware nodes). */
  iommuOpsFromFwnode(fwnode: FwNode | null): IommuOps | null {
    return this.iommuFromFwnode(fwnode)?.ops ?? null;
  }

  private iommuFromFwnode(fwnode: FwNode | null): IommuDevice | null {
    return this.iommuDevices.find((i) => i.fwnode === fwnode) ?? null;
  }

  // ---- registration -----------------------------------------------------------------------------

  /**
   * `iommu_device_register(iommu, ops, hwdev)`: register an IOMMU instance and probe every device on
   * the bus against it (`bus_iommu_probe`).
   *
   * @param iommu - the instance
   * @param ops - its driver's ops
   * @param fwnode - the hardware device's firmware node (default: keep `iommu.fwnode`)
   * @throws ErrnoError `EEXIST` if already registered; any probe error other than `ENODEV` (the
   *   instance is unregistered again)
   */
  iommuDeviceRegister(iommu: IommuDevice, ops: IommuOps, fwnode?: FwNode | null): void {
    if (this.iommuDevices.includes(iommu)) throw new ErrnoError('EEXIST', `${iommu.name} already registered`);
    iommu.ops = ops;
    if (fwnode !== undefined) iommu.fwnode = fwnode;
    this.iommuDevices.push(iommu);
    try {
      this.busIommuProbe();
    } catch (e) {
      this.iommuDeviceUnregister(iommu);
      throw e;
    }
    iommu.ready = true;
  }

  /** `iommu_device_unregister(iommu)`: release every device bound to the instance, then forget it. */
  iommuDeviceUnregister(iommu: IommuDevice): void {
    for (const dev of [...this.devices]) {
      if (dev.iommu?.iommuDev === iommu && dev.iommuGroup) this.iommuReleaseDevice(dev);
    }
    const i = this.iommuDevices.indexOf(iommu);
    if (i >= 0) this.iommuDevices.splice(i, 1);
    iommu.ready = false;
  }

  /**
   * Put a device on the bus (`device_add` → `BUS_NOTIFY_ADD_DEVICE` → `iommu_probe_device`).
   *
   * @returns the probe error (e.g. `ENODEV` for a device behind no IOMMU), or `null`; the device
   *   stays on the bus either way, as in Linux
   */
  addDevice(dev: Device): ErrnoError | null {
    if (!this.devices.includes(dev)) this.devices.push(dev);
    try {
      this.iommuProbeDevice(dev);
      return null;
    } catch (e) {
      if (isErrnoError(e)) return e;
      throw e;
    }
  }

  /** Remove a device from the bus (`BUS_NOTIFY_REMOVED_DEVICE` → `iommu_release_device`). */
  removeDevice(dev: Device): void {
    if (dev.iommuGroup) this.iommuReleaseDevice(dev);
    else dev.iommu = null;
    const i = this.devices.indexOf(dev);
    if (i >= 0) this.devices.splice(i, 1);
  }

  // ---- fwspec and of_iommu ------------------------------------------------------------------------

  /**
   * `iommu_fwspec_init(dev, iommu_fwnode)`: start the device's fwspec for that IOMMU.
   *
   * @throws ErrnoError `EPROBE_DEFER` when no IOMMU with that fwnode is registered, or it is not
   *   ready and the device is not being probed; `EINVAL` when the device already has a fwspec for a
   *   different IOMMU driver
   */
  iommuFwspecInit(dev: Device, iommuFwnode: FwNode): void {
    const iommu = this.iommuFromFwnode(iommuFwnode);
    if (!iommu?.ops)
      throw new ErrnoError('EPROBE_DEFER', `${dev.name}: IOMMU ${iommuFwnode.name} not registered`);
    if (!iommu.ready && !dev.iommu) throw new ErrnoError('EPROBE_DEFER', `${dev.name}: IOMMU not ready`);
    const existing = dev.iommu?.fwspec;
    if (existing) {
      if (existing.ops !== iommu.ops) throw new ErrnoError('EINVAL', `${dev.name}: fwspec for another IOMMU`);
      return;
    }
    if (!dev.iommu) dev.iommu = new DevIommu(this);
    const fwspec: IommuFwspec = { iommuFwnode, ops: iommu.ops, flags: 0, ids: [] };
    dev.iommu.fwspec = fwspec;
  }

  /**
   * `iommu_fwspec_add_ids(dev, ids, num)`.
   * @throws ErrnoError `EINVAL` without a fwspec
   */
  iommuFwspecAddIds(dev: Device, ids: readonly number[]): void {
    const fw = dev.iommu?.fwspec;
    if (!fw) throw new ErrnoError('EINVAL', `${dev.name}: no fwspec`);
    fw.ids.push(...ids);
  }

  /** `iommu_fwspec_free(dev)`. */
  iommuFwspecFree(dev: Device): void {
    if (dev.iommu) dev.iommu.fwspec = null;
  }

  private ofIommuXlate(dev: Device, spec: OfPhandleArgs | null): void {
    if (!spec?.np.available) throw new ErrnoError('ENODEV', `${dev.name}: IOMMU node unavailable`);
    this.iommuFwspecInit(dev, spec.np);
    const ops = this.iommuOpsFromFwnode(spec.np);
    if (!ops?.ofXlate) throw new ErrnoError('ENODEV', `${dev.name}: driver has no of_xlate`);
    ops.ofXlate(dev, spec);
  }

  /**
   * `of_iommu_configure(dev, master_np)` (the `dma_configure` step): build the fwspec from the
   * device tree. PCI functions use the host bridge node's `iommu-map`/`iommu-map-mask` for every
   * DMA alias (`pci_for_each_dma_alias`); platform devices use `iommus` (each specifier through the
   * driver's `ofXlate`), or `iommu-map` with `id` when given.
   *
   * @throws ErrnoError `ENODEV` without a device tree, master node or IOMMU description (no fwspec
   *   is left behind on error); `of_map_id` errors; `EPROBE_DEFER` / `EINVAL` from fwspec init; the
   *   driver's `ofXlate` error
   */
  ofIommuConfigure(dev: Device, id?: number): void {
    const tree = this.deviceTree;
    const master: DtNode | null = dev instanceof PciDevice ? dev.bus.hostBridge.ofNode : dev.ofNode;
    if (!tree || !master) throw new ErrnoError('ENODEV', `${dev.name}: no firmware node`);
    if (dev.iommu?.fwspec) return;
    const configureId = (rid: number): void => {
      const r = ofMapId(tree, master, rid, 'iommu-map', 'iommu-map-mask', true);
      this.ofIommuXlate(dev, r.target ? { np: r.target, args: [r.id] } : null);
    };
    try {
      if (dev instanceof PciDevice) {
        pciForEachDmaAlias(dev, (_d, alias) => {
          configureId(alias);
          return false;
        });
      } else if (id !== undefined) {
        configureId(id);
      } else {
        const specs = ofParseIommus(tree, master);
        if (specs.length === 0) throw new ErrnoError('ENODEV', `${dev.name}: no iommus`);
        for (const s of specs) this.ofIommuXlate(dev, s);
      }
    } catch (e) {
      this.iommuFwspecFree(dev);
      throw e;
    }
  }

  // ---- probe --------------------------------------------------------------------------------------

  /** `iommu_group_alloc()`: a new empty group with the lowest free ID. */
  iommuGroupAlloc(): IommuGroup {
    this.freeGroupIds.sort((a, b) => a - b);
    const id = this.freeGroupIds.shift() ?? this.nextGroupId++;
    return new IommuGroup(id);
  }

  /** `iommu_group_get(dev)`: the device's group with a new reference, or `null`. */
  iommuGroupGet(dev: Device): IommuGroup | null {
    const g = dev.iommuGroup;
    if (g) g.refcount++;
    return g;
  }

  /** `iommu_group_put(group)`: drop a reference; the ID is recycled when the last goes. */
  iommuGroupPut(group: IommuGroup | null): void {
    if (!group) return;
    group.refcount--;
    if (group.refcount === 0) this.freeGroupIds.push(group.id);
  }

  private computeMaxPasids(dev: Device): number {
    let max = 0;
    if (dev instanceof PciDevice) {
      if (dev.pasidCap) max = 2 ** dev.pasidCap.maxPasidWidth;
    } else if (dev instanceof PlatformDevice) {
      const bits = dev.pasidNumBits;
      if (bits !== undefined) max = 2 ** bits;
    }
    return Math.min(max, dev.iommu?.iommuDev?.maxPasids ?? 0);
  }

  /**
   * `iommu_probe_device(dev)`: probe one device (hot-plug path), then `probe_finalize`.
   *
   * @remarks
   * Steps (`__iommu_probe_device`): already grouped → done; `dma_configure` (DT) when the device has
   * no fwspec and no driver; find the ops from the fwspec's fwnode (a driver registered without a
   * fwnode matches devices without fwspec); `probeDevice`; `deviceGroup`; `max_pasids`; join the
   * group; direct mappings into an existing default domain; attach to the group's current domain,
   * or set up the default domain.
   *
   * @throws ErrnoError `ENODEV` (no IOMMU for the device), `EINVAL` (`deviceGroup` returned null),
   *   the driver's probe/group errors, default-domain setup errors
   */
  iommuProbeDevice(dev: Device): void {
    if (dev.iommuGroup) return;
    this.probeOne(dev);
    const ops = this.devIommuOps(dev);
    if (ops?.probeFinalize && dev.iommuGroup) ops.probeFinalize(dev);
  }

  private probeOne(dev: Device): void {
    if (dev.iommuGroup) return;
    const created = !dev.iommu;
    if (!dev.iommu) dev.iommu = new DevIommu(this);
    const param = dev.iommu;
    if (!param.fwspec && !dev.driverBound && this.deviceTree) {
      try {
        this.ofIommuConfigure(dev);
      } catch (e) {
        if (!isErrnoError(e)) throw e;
        if (e.code !== 'ENODEV') this.log('info', `${dev.name}: of_iommu_configure: ${e.message}`);
      }
    }
    const ops = this.iommuOpsFromFwnode(param.fwspec?.iommuFwnode ?? null);
    const fail = (e: unknown): unknown => {
      if (created) dev.iommu = null;
      else param.iommuDev = null;
      return e;
    };
    if (!ops) throw fail(new ErrnoError('ENODEV', `${dev.name}: no IOMMU`));
    const iops = ops;
    let iommuDev: IommuDevice;
    try {
      iommuDev = iops.probeDevice(dev);
    } catch (e) {
      throw fail(e);
    }
    param.iommuDev = iommuDev;
    let group: IommuGroup | null;
    try {
      group = iops.deviceGroup(dev);
    } catch (e) {
      iops.releaseDevice?.(dev);
      throw fail(e);
    }
    if (!group) {
      iops.releaseDevice?.(dev);
      throw fail(new ErrnoError('EINVAL', `${dev.name}: device_group returned NULL`));
    }
    param.maxPasids = this.computeMaxPasids(dev);
    param.attachDeferred = iops.isAttachDeferred?.(dev) ?? false;
    dev.iommuGroup = group;
    let name = dev.name;
    for (let n = 2; group.devices.some((g) => g.name === name); n++) name = `${dev.name}.${n}`;
    group.devices.push({ dev, name });
    try {
      if (group.defaultDomain) this.iommuCreateDeviceDirectMappings(group.defaultDomain, dev);
      if (group.domain) {
        this.deviceSetDomain(group, dev, group.domain, null, 0);
      } else if (!group.defaultDomain) {
        if (this.busProbing) {
          if (!this.busProbing.includes(group)) this.busProbing.push(group);
        } else {
          this.iommuSetupDefaultDomain(group, 0);
        }
      }
    } catch (e) {
      this.groupRemoveDevice(group, dev);
      iops.releaseDevice?.(dev);
      dev.iommuGroup = null;
      this.iommuGroupPut(group);
      throw fail(e);
    }
    if (group.defaultDomain) this.setupDmaOps(dev, group.defaultDomain);
  }

  private setupDmaOps(dev: Device, domain: IommuDomain): void {
    dev.dmaOpsSetUp = true;
    this.dmaHooks.setupDmaOps?.(dev, domain);
  }

  private busIommuProbe(): void {
    const queued: IommuGroup[] = [];
    this.busProbing = queued;
    try {
      for (const dev of this.devices) {
        try {
          this.probeOne(dev);
        } catch (e) {
          if (!isErrnoError(e, 'ENODEV')) throw e;
        }
      }
    } finally {
      this.busProbing = null;
    }
    for (const group of queued) {
      if (group.devices.length === 0) continue;
      this.iommuSetupDefaultDomain(group, 0);
      for (const gd of group.devices) if (group.defaultDomain) this.setupDmaOps(gd.dev, group.defaultDomain);
      for (const gd of group.devices) this.devIommuOps(gd.dev)?.probeFinalize?.(gd.dev);
    }
  }

  private groupRemoveDevice(group: IommuGroup, dev: Device): void {
    const i = group.devices.findIndex((g) => g.dev === dev);
    if (i >= 0) group.devices.splice(i, 1);
  }

  /**
   * `iommu_release_device(dev)`: the device leaves its group and the driver releases it.
   *
   * @remarks
   * If the group becomes empty its ownership count must be 0 and its domain the default (else a
   * warning). The driver's `releaseDomain` (an identity domain instead of a blocked one for
   * `require_direct` devices) is attached before `releaseDevice` unless attach was deferred. An empty
   * group loses its default and blocking domains.
   */
  iommuReleaseDevice(dev: Device): void {
    const group = dev.iommuGroup;
    const param = dev.iommu;
    if (!group || !param) return;
    const ops = this.devIommuOps(dev);
    this.groupRemoveDevice(group, dev);
    const empty = group.devices.length === 0;
    if (empty && (group.ownerCnt !== 0 || group.domain !== group.defaultDomain))
      this.warn(`${dev.name}: last device leaves group ${group.id} while owned or not on its default domain`);
    if (ops && !param.attachDeferred && ops.releaseDomain) {
      let rd = ops.releaseDomain;
      if (rd.type === IOMMU_DOMAIN_BLOCKED && param.requireDirect && ops.identityDomain)
        rd = ops.identityDomain;
      try {
        rd.ops.attachDev?.(rd, dev, group.domain);
      } catch (e) {
        this.warn(`${dev.name}: release domain attach failed: ${String(e)}`);
      }
    }
    ops?.releaseDevice?.(dev);
    if (empty) {
      const def = group.defaultDomain;
      const blk = group.blockingDomain;
      group.defaultDomain = null;
      group.blockingDomain = null;
      group.domain = null;
      if (def) this.iommuDomainFree(def);
      if (blk && blk !== def) this.iommuDomainFree(blk);
      if (param.iommuDev?.singletonGroup === group) param.iommuDev.singletonGroup = null;
    }
    dev.iommuGroup = null;
    dev.iommu = null;
    dev.dmaOpsSetUp = false;
    this.iommuGroupPut(group);
  }

  // ---- domain allocation ----------------------------------------------------------------------------

  private domainInit(domain: IommuDomain, type: number, ops: IommuOps): IommuDomain {
    domain.type = type;
    domain.owner = ops;
    if (Object.keys(domain.ops).length === 0 && ops.defaultDomainOps) domain.ops = ops.defaultDomainOps;
    return domain;
  }

  private pagingDomainAllocFlags(dev: Device, type: number, flags: number): IommuDomain {
    const ops = this.devIommuOps(dev);
    if (!ops) throw new ErrnoError('ENODEV', `${dev.name}: no IOMMU`);
    if (shouldFail('iommu_core.domain_alloc')) throw new ErrnoError('ENOMEM', 'injected: domain allocation');
    let domain: IommuDomain | null;
    if (ops.domainAllocPaging && flags === 0) domain = ops.domainAllocPaging(dev);
    else if (ops.domainAllocPagingFlags) domain = ops.domainAllocPagingFlags(dev, flags, null);
    else throw new ErrnoError('EOPNOTSUPP', `${dev.name}: no paging domain allocator`);
    if (!domain) throw new ErrnoError('ENOMEM');
    return this.domainInit(domain, type, ops);
  }

  /**
   * `iommu_paging_domain_alloc_flags(dev, flags)`: an UNMANAGED paging domain.
   * @throws ErrnoError `ENODEV` without an IOMMU; `EOPNOTSUPP` without an allocator; `ENOMEM` for a
   *   NULL allocation or at the fail_nth point `iommu_core.domain_alloc`; the driver's error
   */
  iommuPagingDomainAllocFlags(dev: Device, flags: number): IommuDomain {
    return this.pagingDomainAllocFlags(dev, IOMMU_DOMAIN_UNMANAGED, flags);
  }

  /** `iommu_paging_domain_alloc(dev)`: {@link IommuSubsystem.iommuPagingDomainAllocFlags} with flags 0. */
  iommuPagingDomainAlloc(dev: Device): IommuDomain {
    return this.iommuPagingDomainAllocFlags(dev, 0);
  }

  /**
   * `iommu_domain_alloc_sva`-style allocation (`ops->domain_alloc_sva(dev, mm)`): the core sets type
   * SVA, the `mm` (grabbed by the caller), `users = 1` and the SVA cookie type.
   * @throws ErrnoError `EOPNOTSUPP` without the op; `ENODEV` without an IOMMU; `ENOMEM` (fail_nth
   *   point `iommu_core.sva_domain_alloc`); the driver's error
   */
  iommuSvaDomainAlloc(dev: Device, mm: Mm): IommuDomain {
    const ops = this.devIommuOps(dev);
    if (!ops) throw new ErrnoError('ENODEV', `${dev.name}: no IOMMU`);
    if (!ops.domainAllocSva) throw new ErrnoError('EOPNOTSUPP', `${dev.name}: no SVA domains`);
    if (shouldFail('iommu_core.sva_domain_alloc'))
      throw new ErrnoError('ENOMEM', 'injected: SVA domain allocation');
    const d = this.domainInit(ops.domainAllocSva(dev, mm), IOMMU_DOMAIN_SVA, ops);
    d.cookieType = IommuDomainCookieType.SVA;
    mmgrab(mm);
    d.mm = mm;
    d.users = 1;
    return d;
  }

  /**
   * `iommu_domain_free(domain)`: drop the SVA mm or DMA cookie, then the driver's `free`. Static
   * (owner-less) domains are left alone.
   */
  iommuDomainFree(domain: IommuDomain): void {
    if (domain.owner === null) return;
    if (domain.cookieType === IommuDomainCookieType.SVA && domain.mm) mmdrop(domain.mm);
    else if (
      domain.cookieType === IommuDomainCookieType.DMA_IOVA ||
      domain.cookieType === IommuDomainCookieType.DMA_MSI
    )
      this.dmaHooks.putDmaCookie?.(domain);
    domain.ops.free?.(domain);
    domain.freed = true;
  }

  // ---- default domain -----------------------------------------------------------------------------

  private defaultDomainType(group: IommuGroup, target: number): number {
    let driverType = 0;
    let untrusted: Device | null = null;
    for (const gd of group.devices) {
      const ops = this.devIommuOps(gd.dev);
      const t = ops?.defaultDomain ? ops.defaultDomain.type : (ops?.defDomainType?.(gd.dev) ?? 0);
      if (gd.dev instanceof PciDevice && gd.dev.untrusted) untrusted = gd.dev;
      if (!t || t === driverType) continue;
      if (!driverType) {
        driverType = t;
        continue;
      }
      this.log('err', `group ${group.id}: default domain type conflict (${driverType} vs ${t})`);
      if (t === IOMMU_DOMAIN_IDENTITY) driverType = t;
    }
    if (untrusted) {
      if (driverType && driverType !== IOMMU_DOMAIN_DMA) {
        this.log('err', `${untrusted.name}: not trusted, but driver overrides group ${group.id}; refusing`);
        return -1;
      }
      driverType = IOMMU_DOMAIN_DMA;
    }
    if (!this.iommuDma) {
      if (driverType === IOMMU_DOMAIN_DMA) return -1;
      if (!driverType) driverType = IOMMU_DOMAIN_IDENTITY;
    }
    if (target) {
      if (driverType && target !== driverType) return -1;
      return target;
    }
    return driverType;
  }

  private groupDomainAlloc(group: IommuGroup, type: number): IommuDomain {
    const dev = group.firstDevice;
    if (!dev) throw new ErrnoError('ENODEV');
    const ops = this.devIommuOps(dev);
    if (!ops) throw new ErrnoError('ENODEV');
    if (type & __IOMMU_DOMAIN_PAGING) {
      const flags = (dev.iommu?.maxPasids ?? 0) > 0 ? IOMMU_HWPT_ALLOC_PASID : 0;
      try {
        return this.pagingDomainAllocFlags(dev, type, flags);
      } catch (e) {
        if (flags && isErrnoError(e, 'EOPNOTSUPP')) return this.pagingDomainAllocFlags(dev, type, 0);
        throw e;
      }
    }
    if (type === IOMMU_DOMAIN_IDENTITY) {
      if (ops.identityDomain) return ops.identityDomain;
      if (ops.domainAllocIdentity) return this.domainInit(ops.domainAllocIdentity(dev), type, ops);
      throw new ErrnoError('EOPNOTSUPP');
    }
    throw new ErrnoError('EINVAL');
  }

  private allocDefaultDomain(group: IommuGroup, reqType: number): IommuDomain {
    const ops = this.devIommuOps(group.firstDevice!)!;
    if (ops.defaultDomain) {
      if (reqType !== ops.defaultDomain.type) throw new ErrnoError('EINVAL');
      return ops.defaultDomain;
    }
    const alloc = (t: number): IommuDomain =>
      group.defaultDomain && group.defaultDomain.type === t
        ? group.defaultDomain
        : this.groupDomainAlloc(group, t);
    if (reqType) return alloc(reqType);
    try {
      return alloc(this.defDomainType);
    } catch (e) {
      if (this.defDomainType === IOMMU_DOMAIN_DMA) throw e;
      const d = alloc(IOMMU_DOMAIN_DMA);
      this.warn(`group ${group.id}: falling back to IOMMU_DOMAIN_DMA`);
      return d;
    }
  }

  /**
   * `iommu_setup_default_domain(group, target_type)` (§6.4): resolve the type, allocate, create
   * direct mappings for every device, install and attach, free the old default domain.
   *
   * @param target - requested type (sysfs), 0 = automatic
   * @throws ErrnoError `EINVAL` when the type cannot be resolved; allocation and attach errors (the
   *   old default domain is restored)
   */
  iommuSetupDefaultDomain(group: IommuGroup, target: number): void {
    const reqType = this.defaultDomainType(group, target);
    if (reqType < 0) throw new ErrnoError('EINVAL', `group ${group.id}: no usable default domain type`);
    const dom = this.allocDefaultDomain(group, reqType);
    const old = group.defaultDomain;
    if (dom === old) return;
    if (
      iommuIsDmaDomain(dom) &&
      dom.cookieType === IommuDomainCookieType.NONE &&
      this.dmaHooks.getDmaCookie
    ) {
      this.dmaHooks.getDmaCookie(dom);
    }
    let directFailed = false;
    for (const gd of group.devices) {
      try {
        this.iommuCreateDeviceDirectMappings(dom, gd.dev);
      } catch {
        directFailed = true;
      }
    }
    group.defaultDomain = dom;
    if (!group.domain) {
      try {
        this.groupSetDomainInternal(group, dom, MUST_SUCCEED);
      } catch (e) {
        this.warn(`group ${group.id}: attaching the default domain failed: ${String(e)}`);
      }
    } else {
      try {
        this.groupSetDomainInternal(group, dom, 0);
      } catch (e) {
        group.defaultDomain = old;
        if (dom !== old) this.iommuDomainFree(dom);
        throw e;
      }
    }
    if (directFailed) {
      try {
        for (const gd of group.devices) this.iommuCreateDeviceDirectMappings(dom, gd.dev);
      } catch (e) {
        if (old) {
          this.groupSetDomainInternal(group, old, MUST_SUCCEED);
          group.defaultDomain = old;
          this.iommuDomainFree(dom);
        }
        throw e;
      }
    }
    if (old && old !== dom) this.iommuDomainFree(old);
  }

  // ---- sysfs `type` attribute (§6.5) -------------------------------------------------------------

  /**
   * Read the group's sysfs `type` attribute (`iommu_group_show_type`): the default domain's type as
   * `identity`, `DMA`, `DMA-FQ`, `blocked` or `unmanaged`, else `unknown` (also without a default
   * domain). As sysfs prints it, the text ends with a newline.
   *
   * @param group - the group
   * @returns the attribute text, e.g. `"DMA\n"`
   */
  iommuGroupShowType(group: IommuGroup): string {
    let name = 'unknown';
    switch (group.defaultDomain?.type) {
      case IOMMU_DOMAIN_BLOCKED:
        name = 'blocked';
        break;
      case IOMMU_DOMAIN_IDENTITY:
        name = 'identity';
        break;
      case IOMMU_DOMAIN_UNMANAGED:
        name = 'unmanaged';
        break;
      case IOMMU_DOMAIN_DMA:
        name = 'DMA';
        break;
      case IOMMU_DOMAIN_DMA_FQ:
        name = 'DMA-FQ';
        break;
    }
    return `${name}\n`;
  }

  /**
   * Write the group's sysfs `type` attribute (`iommu_group_store_type`): change the default domain.
   *
   * @remarks
   * Accepted texts (one trailing newline allowed, as `sysfs_streq`): `identity`, `DMA`, `DMA-FQ` and
   * `auto` (the automatic choice of §6.2). A DMA → DMA-FQ request is done in place: the flush queue
   * is started through {@link IommuDmaHooks.initFq} (when the DMA layer is installed) and the domain's
   * type becomes DMA_FQ, whatever drivers are bound. Any other request needs a group with at least
   * one device and no DMA-API driver or DMA owner (`ownerCnt === 0`); the default domain is then set
   * up again with that target type ({@link IommuSubsystem.iommuSetupDefaultDomain}), and each
   * device's DMA ops are set up again.
   *
   * @param group - the group
   * @param text - the text written
   * @param cred - the writer's capabilities (default: both held)
   * @returns the number of characters consumed (`text.length`), as a sysfs store does
   * @throws ErrnoError `EACCES` without CAP_SYS_ADMIN and CAP_SYS_RAWIO; `EINVAL` for a group without
   *   a default domain or an unknown text (or when the DMA layer is not built, for the in-place
   *   DMA-FQ switch); `EPERM` for an empty group or one with bound DMA-API drivers or an owner; the
   *   flush-queue and default-domain setup errors (e.g. `EINVAL` when a device's driver insists on
   *   another type), in which case the old default domain stays
   */
  iommuGroupStoreType(group: IommuGroup, text: string, cred: IommuSysfsCredentials = {}): number {
    if (cred.sysAdmin === false || cred.sysRawio === false)
      throw new ErrnoError('EACCES', 'CAP_SYS_ADMIN and CAP_SYS_RAWIO required');
    const current = group.defaultDomain;
    if (!current) throw new ErrnoError('EINVAL', `group ${group.id} has no default domain`);
    const word = text.endsWith('\n') ? text.slice(0, -1) : text;
    const requested = SYSFS_DOMAIN_TYPES.get(word);
    if (requested === undefined)
      throw new ErrnoError('EINVAL', `unknown domain type ${JSON.stringify(text)}`);
    if (requested === IOMMU_DOMAIN_DMA_FQ && current.type === IOMMU_DOMAIN_DMA) {
      if (!this.iommuDma) throw new ErrnoError('EINVAL', 'no DMA layer (CONFIG_IOMMU_DMA)');
      this.dmaHooks.initFq?.(current);
      current.type = IOMMU_DOMAIN_DMA_FQ;
      return text.length;
    }
    if (group.deviceCount === 0 || group.ownerCnt !== 0)
      throw new ErrnoError('EPERM', `group ${group.id} is empty or has bound drivers`);
    this.iommuSetupDefaultDomain(group, requested);
    const dom = group.defaultDomain;
    if (dom) for (const gd of group.devices) this.setupDmaOps(gd.dev, dom);
    return text.length;
  }

  // ---- reserved regions --------------------------------------------------------------------------

  /** `iommu_get_resv_regions(dev, list)`: the driver's regions for the device (empty without the op). */
  iommuGetResvRegions(dev: Device): IommuResvRegion[] {
    return this.devIommuOps(dev)?.getResvRegions?.(dev) ?? [];
  }

  /**
   * `iommu_get_group_resv_regions(group)`: union of all members' regions, sorted by start (ties by
   * type), overlapping or adjacent regions of one type merged.
   */
  iommuGetGroupResvRegions(group: IommuGroup): IommuResvRegion[] {
    const all: IommuResvRegion[] = [];
    for (const gd of group.devices) all.push(...this.iommuGetResvRegions(gd.dev));
    return iommuMergeResvRegions(all);
  }

  /**
   * `iommu_create_device_direct_mappings(domain, dev)` (§10): note `require_direct` for DIRECT
   * regions; in DMA domains map DIRECT and DIRECT_RELAXABLE regions 1:1 (runs of pages not yet
   * translated), with the region's prot.
   * @throws ErrnoError `EINVAL` for a DMA domain without page sizes; `iommuMap` errors
   */
  iommuCreateDeviceDirectMappings(domain: IommuDomain, dev: Device): void {
    const bm = domain.pgsizeBitmap;
    const pg = bm ? bm & -bm : 0n;
    const isDma = iommuIsDmaDomain(domain);
    if (isDma && !pg) throw new ErrnoError('EINVAL', 'DMA domain without page sizes');
    for (const r of this.iommuGetResvRegions(dev)) {
      if (r.type === IommuResvType.DIRECT && dev.iommu) dev.iommu.requireDirect = true;
      if ((r.type !== IommuResvType.DIRECT && r.type !== IommuResvType.DIRECT_RELAXABLE) || !isDma) continue;
      const align = (x: bigint): bigint => ((x + pg - 1n) / pg) * pg;
      const start = align(r.start);
      const end = align(r.start + r.length);
      let mapSize = 0n;
      for (let addr = start; addr <= end; addr += pg) {
        if (addr !== end && iommuIovaToPhys(domain, addr === 0n ? 1n : addr) === 0n) {
          mapSize += pg;
          continue;
        }
        if (mapSize) {
          iommuMap(domain, addr - mapSize, addr - mapSize, mapSize, r.prot);
          mapSize = 0n;
        }
      }
    }
  }

  // ---- attach / detach (RID) -----------------------------------------------------------------------

  private attachDevice(domain: IommuDomain, dev: Device, old: IommuDomain | null): void {
    if (!domain.ops.attachDev) throw new ErrnoError('ENODEV', 'domain has no attach_dev');
    domain.ops.attachDev(domain, dev, old);
    if (dev.iommu) dev.iommu.attachDeferred = false;
  }

  private deviceSetDomain(
    group: IommuGroup,
    dev: Device,
    domain: IommuDomain,
    old: IommuDomain | null,
    flags: number,
  ): void {
    const param = dev.iommu;
    if (param?.requireDirect && (domain.type === IOMMU_DOMAIN_BLOCKED || domain === group.blockingDomain)) {
      this.warn(`${dev.name}: firmware has requested this device have a 1:1 IOMMU mapping, rejecting`);
      throw new ErrnoError('EINVAL', `${dev.name}: requires direct mappings`);
    }
    if (param?.attachDeferred) {
      if (domain === group.defaultDomain) return;
      param.attachDeferred = false;
    }
    try {
      this.attachDevice(domain, dev, old);
    } catch (e) {
      if (flags & MUST_SUCCEED && group.blockingDomain && group.blockingDomain !== domain) {
        try {
          this.attachDevice(group.blockingDomain, dev, old);
        } catch {
          /* nothing more to try */
        }
      }
      throw e;
    }
  }

  private groupSetDomainInternal(group: IommuGroup, domain: IommuDomain | null, flags: number): void {
    if (group.domain === domain) return;
    if (!domain) {
      this.warn('set_domain: NULL domain');
      throw new ErrnoError('EINVAL');
    }
    if (group.resettingDomain) throw new ErrnoError('EBUSY', `group ${group.id}: reset in progress`);
    let result: unknown = null;
    for (let i = 0; i < group.devices.length; i++) {
      const dev = group.devices[i]!.dev;
      try {
        this.deviceSetDomain(group, dev, domain, group.domain, flags);
      } catch (e) {
        result = e;
        if (flags & MUST_SUCCEED) continue;
        const prev = group.domain;
        if (prev) {
          for (let j = 0; j < i; j++) {
            try {
              this.deviceSetDomain(group, group.devices[j]!.dev, prev, domain, MUST_SUCCEED);
            } catch (e2) {
              this.warn(`revert failed: ${String(e2)}`);
            }
          }
        }
        throw e;
      }
    }
    group.domain = domain;
    if (result !== null) throw result;
  }

  private groupSetDomainNofail(group: IommuGroup, domain: IommuDomain | null): void {
    try {
      this.groupSetDomainInternal(group, domain, MUST_SUCCEED);
    } catch (e) {
      this.warn(`group ${group.id}: set domain (must succeed) failed: ${String(e)}`);
    }
  }

  private groupSetCoreDomain(group: IommuGroup): void {
    this.groupSetDomainNofail(group, group.owner ? group.blockingDomain : group.defaultDomain);
  }

  private domainCompatible(ops: IommuOps | null, domain: IommuDomain): boolean {
    if (!ops) return false;
    return domain.owner === ops || domain === ops.blockedDomain || domain === ops.identityDomain;
  }

  /**
   * `iommu_attach_group(domain, group)` (§8.1).
   * @throws ErrnoError `EBUSY` if the group is on a domain other than its default or blocking
   *   domain (or a reset is in progress); `EINVAL` if the domain is incompatible with the group's
   *   IOMMU; the driver's `attachDev` error (devices already switched are reverted)
   */
  iommuAttachGroup(domain: IommuDomain, group: IommuGroup): void {
    if (group.domain && group.domain !== group.defaultDomain && group.domain !== group.blockingDomain)
      throw new ErrnoError('EBUSY', `group ${group.id} is attached to another domain`);
    const dev = group.firstDevice;
    if (!dev || !this.domainCompatible(this.devIommuOps(dev), domain))
      throw new ErrnoError('EINVAL', 'domain incompatible with the group');
    this.groupSetDomainInternal(group, domain, 0);
  }

  /** `iommu_detach_group(domain, group)`: back to the core domain (blocking while owned, else default). */
  iommuDetachGroup(_domain: IommuDomain, group: IommuGroup): void {
    this.groupSetCoreDomain(group);
  }

  /**
   * `iommu_attach_group_handle(domain, group, handle)` (iommufd): attach as
   * {@link IommuSubsystem.iommuAttachGroup} and store `handle` at PASID 0 of the group's PASID
   * array, where I/O page faults without a PASID find their handler.
   * @throws ErrnoError `EINVAL` without a handle; `EBUSY` if PASID 0 already holds an entry; `ENOMEM`
   *   (fail_nth point `iommu_core.pasid_array_insert`); then as
   *   {@link IommuSubsystem.iommuAttachGroup} (nothing is stored on failure)
   */
  iommuAttachGroupHandle(domain: IommuDomain, group: IommuGroup, handle: IommuAttachHandle | null): void {
    if (!handle) throw new ErrnoError('EINVAL', 'no attach handle');
    if (group.pasidArray.has(IOMMU_NO_PASID))
      throw new ErrnoError('EBUSY', `group ${group.id}: RID handle in use`);
    if (shouldFail('iommu_core.pasid_array_insert')) throw new ErrnoError('ENOMEM', 'injected: xa_insert');
    this.iommuAttachGroup(domain, group);
    group.pasidArray.set(IOMMU_NO_PASID, { domain, handle });
  }

  /**
   * `iommu_detach_group_handle(domain, group)`: back to the core domain and drop the handle at
   * PASID 0.
   */
  iommuDetachGroupHandle(_domain: IommuDomain, group: IommuGroup): void {
    this.groupSetCoreDomain(group);
    group.pasidArray.delete(IOMMU_NO_PASID);
  }

  /**
   * `iommu_replace_group_handle(newDomain, group, handle)` (iommufd): switch the group to
   * `newDomain` whatever it is attached to now, and store `handle` at PASID 0 (replacing any).
   * @throws ErrnoError `EINVAL` without a handle; the set-domain errors (the group and its handle
   *   stay as they were)
   */
  iommuReplaceGroupHandle(newDomain: IommuDomain, group: IommuGroup, handle: IommuAttachHandle | null): void {
    if (!handle) throw new ErrnoError('EINVAL', 'no attach handle');
    const dev = group.firstDevice;
    if (!dev || !this.domainCompatible(this.devIommuOps(dev), newDomain))
      throw new ErrnoError('EINVAL', 'domain incompatible with the group');
    this.groupSetDomainInternal(group, newDomain, 0);
    group.pasidArray.set(IOMMU_NO_PASID, { domain: newDomain, handle });
  }

  /**
   * `iommu_attach_device(domain, dev)`: attach a singleton group's device.
   * @throws ErrnoError `ENODEV` without a group; `EINVAL` if the group has more than one device;
   *   then as {@link IommuSubsystem.iommuAttachGroup}
   */
  iommuAttachDevice(domain: IommuDomain, dev: Device): void {
    const group = dev.iommuGroup;
    if (!group) throw new ErrnoError('ENODEV', `${dev.name}: no group`);
    if (group.deviceCount !== 1)
      throw new ErrnoError('EINVAL', `${dev.name}: group has ${group.deviceCount} devices`);
    this.iommuAttachGroup(domain, group);
  }

  /**
   * `iommu_detach_device(domain, dev)`: warns and does nothing unless `domain` is the current domain
   * of a one-device group; else back to the core domain.
   */
  iommuDetachDevice(domain: IommuDomain, dev: Device): void {
    const group = dev.iommuGroup;
    if (!group) return;
    if (group.domain !== domain || group.deviceCount !== 1) {
      this.warn(`${dev.name}: detach of a domain that is not attached, or from a multi-device group`);
      return;
    }
    this.groupSetCoreDomain(group);
  }

  /** `iommu_get_domain_for_dev(dev)`: the group's current domain, `null` without group. */
  iommuGetDomainForDev(dev: Device): IommuDomain | null {
    return dev.iommuGroup?.domain ?? null;
  }

  /** `iommu_driver_get_domain_for_dev(dev)`: the resetting domain during a reset, else the group's domain. */
  iommuDriverGetDomainForDev(dev: Device): IommuDomain | null {
    const g = dev.iommuGroup;
    return g ? (g.resettingDomain ?? g.domain) : null;
  }

  /** `iommu_get_dma_domain(dev)`: the group's default domain, `null` without group. */
  iommuGetDmaDomain(dev: Device): IommuDomain | null {
    return dev.iommuGroup?.defaultDomain ?? null;
  }

  /**
   * `iommu_deferred_attach(dev, domain)`: no-op unless the device's attach is deferred.
   * @throws ErrnoError `EBUSY` during a reset; the driver's error
   */
  iommuDeferredAttach(dev: Device, domain: IommuDomain): void {
    if (!dev.iommu?.attachDeferred) return;
    if (dev.iommuGroup?.resettingDomain) throw new ErrnoError('EBUSY');
    this.attachDevice(domain, dev, null);
  }

  // ---- PCI reset bracketing (§8.3) ---------------------------------------------------------------

  /** Whether the reset bracketing applies: an ATS-capable function behind an IOMMU, with a group. */
  private resetBracketGroup(pdev: PciDevice): IommuGroup | null {
    if (!pciAtsSupported(pdev) || !this.devHasIommu(pdev)) return null;
    return pdev.iommuGroup;
  }

  /**
   * `pci_dev_reset_iommu_prepare(pdev)`: before a PCI reset, park the function's DMA on the group's
   * blocking domain.
   *
   * @remarks
   * Does nothing for a function without ATS support or without an IOMMU. Otherwise the blocking
   * domain is allocated if needed and attached to this device's RID (unless it is already the
   * group's domain), while `group.domain` keeps naming the domain to come back to; then every PASID
   * ≥ 1 in the group's `pasidArray` is removed from the device through the blocked domain's
   * `setDevPasid` (the entries stay in the array). Finally `group.resettingDomain` is set, so that
   * until {@link IommuSubsystem.pciDevResetIommuDone} group attaches, PASID attaches/replaces and
   * deferred attaches fail with `EBUSY`, and {@link IommuSubsystem.iommuDriverGetDomainForDev}
   * reports the blocking domain.
   *
   * @param pdev - the function about to be reset
   * @throws ErrnoError `EBUSY` (with a warning) if a reset is already in progress for the group; the
   *   blocking domain's allocation error; the driver's `attachDev` error (nothing is changed)
   */
  pciDevResetIommuPrepare(pdev: PciDevice): void {
    const group = this.resetBracketGroup(pdev);
    if (!group) return;
    if (group.resettingDomain) {
      this.warn(`${pdev.name}: reset prepare while group ${group.id} is already resetting`);
      throw new ErrnoError('EBUSY', `group ${group.id}: reset already in progress`);
    }
    this.allocBlockingDomain(group);
    const blocking = group.blockingDomain!;
    if (group.domain !== blocking) this.attachDevice(blocking, pdev, group.domain);
    if ((pdev.iommu?.maxPasids ?? 0) > 0) {
      for (const [pasid, entry] of group.pasidArray) {
        if (pasid === IOMMU_NO_PASID) continue;
        this.removeDevPasid(pdev, pasid, entry.domain);
      }
    }
    group.resettingDomain = blocking;
  }

  /**
   * `pci_dev_reset_iommu_done(pdev)`: after a PCI reset, put the function back on the group's RID
   * domain and on every PASID domain recorded in `pasidArray`, then clear `group.resettingDomain`.
   *
   * @remarks
   * Does nothing for a function without ATS support or without an IOMMU, or when no reset is in
   * progress (prepare was skipped or failed). Re-attach failures are reported as warnings; the reset
   * state is cleared regardless.
   *
   * @param pdev - the function that was reset
   */
  pciDevResetIommuDone(pdev: PciDevice): void {
    const group = this.resetBracketGroup(pdev);
    if (!group?.resettingDomain) return;
    const blocking = group.blockingDomain;
    if (!blocking) {
      this.warn(`${pdev.name}: reset done without a blocking domain`);
      return;
    }
    if (group.domain && group.domain !== blocking) {
      try {
        this.attachDevice(group.domain, pdev, blocking);
      } catch (e) {
        this.warn(`${pdev.name}: restoring the RID domain after reset failed: ${String(e)}`);
      }
    }
    if ((pdev.iommu?.maxPasids ?? 0) > 0) {
      for (const [pasid, entry] of group.pasidArray) {
        if (pasid === IOMMU_NO_PASID) continue;
        try {
          entry.domain.ops.setDevPasid?.(entry.domain, pdev, pasid, blocking);
        } catch (e) {
          this.warn(`${pdev.name}: restoring PASID ${pasid} after reset failed: ${String(e)}`);
        }
      }
    }
    group.resettingDomain = null;
  }

  /** `device_iommu_capable(dev, cap)`: false without an IOMMU or `capable` op. */
  deviceIommuCapable(dev: Device, cap: IommuCap): boolean {
    return this.devIommuOps(dev)?.capable?.(dev, cap) ?? false;
  }

  // ---- map/unmap delegates ---------------------------------------------------------------------

  /** {@link iommuMap} (map.ts): map `[iova, iova + size)` to `paddr` in `domain`. @throws ErrnoError */
  iommuMap(domain: IommuDomain, iova: bigint, paddr: bigint, size: bigint, prot: number, gfp = 0): void {
    iommuMap(domain, iova, paddr, size, prot, gfp);
  }

  /** {@link iommuUnmap} (map.ts). @returns bytes unmapped */
  iommuUnmap(domain: IommuDomain, iova: bigint, size: bigint): bigint {
    return iommuUnmap(domain, iova, size);
  }

  /** {@link iommuUnmapFast} (map.ts). @returns bytes unmapped */
  iommuUnmapFast(domain: IommuDomain, iova: bigint, size: bigint, gather: IommuIotlbGather): bigint {
    return iommuUnmapFast(domain, iova, size, gather);
  }

  /** {@link iommuIovaToPhys} (map.ts). @returns the PA, 0n when none */
  iommuIovaToPhys(domain: IommuDomain, iova: bigint): bigint {
    return iommuIovaToPhys(domain, iova);
  }

  /** {@link iommuIotlbSync} (map.ts). */
  iommuIotlbSync(domain: IommuDomain, gather: IommuIotlbGather): void {
    iommuIotlbSync(domain, gather);
  }

  /** {@link iommuFlushIotlbAll} (map.ts). */
  iommuFlushIotlbAll(domain: IommuDomain): void {
    iommuFlushIotlbAll(domain);
  }

  // ---- DMA ownership (§7) -----------------------------------------------------------------------

  /**
   * `iommu_device_use_default_domain(dev)`: a DMA-API driver is about to bind.
   * @throws ErrnoError `EPROBE_DEFER` before the default domain exists; `EBUSY` when the group is
   *   owned, off its default domain, or has PASID attachments
   */
  iommuDeviceUseDefaultDomain(dev: Device): void {
    const group = dev.iommuGroup;
    if (!group) return;
    if (!group.defaultDomain) throw new ErrnoError('EPROBE_DEFER');
    if (
      group.ownerCnt > 0 &&
      (group.domain !== group.defaultDomain || group.owner || group.pasidArray.size > 0)
    )
      throw new ErrnoError('EBUSY', `group ${group.id} is in use`);
    group.ownerCnt++;
  }

  /** `iommu_device_unuse_default_domain(dev)`: warns and does nothing at 0 or with PASIDs attached. */
  iommuDeviceUnuseDefaultDomain(dev: Device): void {
    const group = dev.iommuGroup;
    if (!group) return;
    if (group.ownerCnt === 0 || group.pasidArray.size > 0) {
      this.warn(`${dev.name}: unbalanced unuse_default_domain`);
      return;
    }
    group.ownerCnt--;
  }

  private allocBlockingDomain(group: IommuGroup): void {
    if (group.blockingDomain) return;
    const dev = group.firstDevice!;
    const ops = this.devIommuOps(dev);
    if (ops?.blockedDomain) {
      group.blockingDomain = ops.blockedDomain;
      return;
    }
    group.blockingDomain = this.pagingDomainAllocFlags(dev, IOMMU_DOMAIN_UNMANAGED, 0);
  }

  private takeDmaOwnership(group: IommuGroup, owner: object): void {
    if ((group.domain && group.domain !== group.defaultDomain) || group.pasidArray.size > 0)
      throw new ErrnoError('EBUSY', `group ${group.id} is in use`);
    this.allocBlockingDomain(group);
    this.groupSetDomainInternal(group, group.blockingDomain, 0);
    group.owner = owner;
    group.ownerCnt++;
  }

  /**
   * `iommu_group_claim_dma_owner(group, owner)`.
   * @throws ErrnoError `EPERM` if DMA-API drivers or another owner hold the group; `EBUSY` if it is
   *   off its default domain or has PASIDs; blocking-domain allocation/attach errors (e.g. `EINVAL`
   *   for a `require_direct` device)
   */
  iommuGroupClaimDmaOwner(group: IommuGroup, owner: object): void {
    if (group.ownerCnt > 0) throw new ErrnoError('EPERM', `group ${group.id} already owned`);
    this.takeDmaOwnership(group, owner);
  }

  /**
   * `iommu_device_claim_dma_owner(dev, owner)`: the same owner may claim again (counted).
   * @throws ErrnoError `ENODEV` without a group; `EPERM` for a different owner or DMA-API users;
   *   otherwise as {@link IommuSubsystem.iommuGroupClaimDmaOwner}
   */
  iommuDeviceClaimDmaOwner(dev: Device, owner: object): void {
    const group = dev.iommuGroup;
    if (!group) throw new ErrnoError('ENODEV', `${dev.name}: no group`);
    if (group.ownerCnt > 0) {
      if (group.owner !== owner) throw new ErrnoError('EPERM', `group ${group.id} owned by another`);
      group.ownerCnt++;
      return;
    }
    this.takeDmaOwnership(group, owner);
  }

  private releaseDmaOwnership(group: IommuGroup): void {
    if (group.ownerCnt === 0 || !group.owner || group.pasidArray.size > 0) {
      this.warn(`group ${group.id}: bad DMA ownership release`);
      return;
    }
    group.ownerCnt = 0;
    group.owner = null;
    this.groupSetDomainNofail(group, group.defaultDomain);
  }

  /** `iommu_group_release_dma_owner(group)`: back to the default domain. */
  iommuGroupReleaseDmaOwner(group: IommuGroup): void {
    this.releaseDmaOwnership(group);
  }

  /** `iommu_device_release_dma_owner(dev)`: decrement, or release fully at the last claim. */
  iommuDeviceReleaseDmaOwner(dev: Device): void {
    const group = dev.iommuGroup;
    if (!group) return;
    if (group.ownerCnt > 1) group.ownerCnt--;
    else this.releaseDmaOwnership(group);
  }

  /** `iommu_group_dma_owner_claimed(group)`: `ownerCnt != 0`. */
  iommuGroupDmaOwnerClaimed(group: IommuGroup): boolean {
    return group.ownerCnt !== 0;
  }

  // ---- PASID (§9) --------------------------------------------------------------------------------

  private removeDevPasid(dev: Device, pasid: number, domain: IommuDomain): void {
    const ops = this.devIommuOps(dev);
    const blocked = ops?.blockedDomain;
    try {
      if (blocked?.ops.setDevPasid) blocked.ops.setDevPasid(blocked, dev, pasid, domain);
      else ops?.removeDevPasid?.(dev, pasid, domain);
    } catch (e) {
      this.warn(`${dev.name}: removing PASID ${pasid} failed: ${String(e)}`);
    }
  }

  private setGroupPasid(
    group: IommuGroup,
    domain: IommuDomain,
    pasid: number,
    old: IommuDomain | null,
  ): void {
    const devs = group.devices.map((g) => g.dev);
    for (let i = 0; i < devs.length; i++) {
      const dev = devs[i]!;
      if ((dev.iommu?.maxPasids ?? 0) === 0) continue;
      try {
        domain.ops.setDevPasid!(domain, dev, pasid, old);
      } catch (e) {
        for (let j = 0; j < i; j++) {
          const d = devs[j]!;
          if ((d.iommu?.maxPasids ?? 0) === 0) continue;
          let undone = false;
          if (old?.ops.setDevPasid) {
            try {
              old.ops.setDevPasid(old, d, pasid, domain);
              undone = true;
            } catch {
              this.warn(`${d.name}: rollback of PASID ${pasid} failed`);
            }
          }
          if (!undone) this.removeDevPasid(d, pasid, domain);
        }
        throw e;
      }
    }
  }

  /**
   * `iommu_attach_device_pasid(domain, dev, pasid, handle)`: attach `domain` at `pasid` on every
   * PASID-capable device of the group.
   *
   * @throws ErrnoError `ENODEV` without a group; `EOPNOTSUPP` when the domain has no `setDevPasid` or
   *   the driver has no static blocked domain with one; `EINVAL` for an incompatible domain, PASID 0,
   *   a PASID at or above some member's `max_pasids`, or (seed option) a group that is not an
   *   immutable singleton; `EBUSY` during a reset or when the PASID is taken; `ENOMEM` (fail_nth
   *   point `iommu_core.pasid_array_insert`); the driver's error (devices already set are undone)
   */
  iommuAttachDevicePasid(
    domain: IommuDomain,
    dev: Device,
    pasid: number,
    handle: IommuAttachHandle | null = null,
  ): void {
    const group = dev.iommuGroup;
    if (!group) throw new ErrnoError('ENODEV', `${dev.name}: no group`);
    const ops = this.devIommuOps(dev);
    if (!domain.ops.setDevPasid || !ops?.blockedDomain?.ops.setDevPasid)
      throw new ErrnoError('EOPNOTSUPP', 'PASID attach not supported');
    if (!this.domainCompatible(ops, domain) || pasid === IOMMU_NO_PASID)
      throw new ErrnoError('EINVAL', `bad domain or PASID ${pasid}`);
    if (this.pasidRequiresSingletonGroup && !(group.immutableSingleton && group.deviceCount === 1))
      throw new ErrnoError('EINVAL', `group ${group.id} is not an immutable singleton`);
    if (group.resettingDomain) throw new ErrnoError('EBUSY', 'reset in progress');
    for (const gd of group.devices) {
      const max = gd.dev.iommu?.maxPasids ?? 0;
      if (max > 0 && pasid >= max)
        throw new ErrnoError('EINVAL', `PASID ${pasid} >= max_pasids ${max} of ${gd.dev.name}`);
    }
    if (group.pasidArray.has(pasid)) throw new ErrnoError('EBUSY', `PASID ${pasid} in use`);
    if (shouldFail('iommu_core.pasid_array_insert')) throw new ErrnoError('ENOMEM', 'injected: xa_insert');
    this.setGroupPasid(group, domain, pasid, null);
    group.pasidArray.set(pasid, { domain, handle });
  }

  /**
   * `iommu_replace_device_pasid(domain, dev, pasid, handle)` (iommufd).
   * @throws ErrnoError `ENODEV`; `EOPNOTSUPP`; `EINVAL` without a handle, with nothing attached at
   *   `pasid`, or for the same handle; the driver's error (rolled back to the old domain)
   */
  iommuReplaceDevicePasid(domain: IommuDomain, dev: Device, pasid: number, handle: IommuAttachHandle): void {
    const group = dev.iommuGroup;
    if (!group) throw new ErrnoError('ENODEV');
    const ops = this.devIommuOps(dev);
    if (!domain.ops.setDevPasid || !ops?.blockedDomain?.ops.setDevPasid) throw new ErrnoError('EOPNOTSUPP');
    if (!this.domainCompatible(ops, domain) || pasid === IOMMU_NO_PASID) throw new ErrnoError('EINVAL');
    if (group.resettingDomain) throw new ErrnoError('EBUSY');
    const cur = group.pasidArray.get(pasid);
    if (!cur) throw new ErrnoError('EINVAL', `nothing attached at PASID ${pasid}`);
    if (cur.handle === handle) {
      this.warn('replace with the same handle');
      throw new ErrnoError('EINVAL');
    }
    if (cur.domain !== domain) this.setGroupPasid(group, domain, pasid, cur.domain);
    group.pasidArray.set(pasid, { domain, handle });
  }

  /**
   * `iommu_detach_device_pasid(domain, dev, pasid)`: the blocked domain's `setDevPasid` on every
   * PASID-capable member (failures warn), then the slot is erased. `domain` is not validated.
   */
  iommuDetachDevicePasid(domain: IommuDomain, dev: Device, pasid: number): void {
    const group = dev.iommuGroup;
    if (!group) return;
    for (const gd of group.devices) {
      if ((gd.dev.iommu?.maxPasids ?? 0) > 0) this.removeDevPasid(gd.dev, pasid, domain);
    }
    group.pasidArray.delete(pasid);
  }

  /**
   * `iommu_get_domain_for_dev_pasid(dev, pasid, type)` (history, ~v6.2): the domain at `pasid`, or
   * `null`.
   * @throws ErrnoError `EBUSY` when `type` is non-zero and differs from the domain's type
   */
  iommuGetDomainForDevPasid(dev: Device, pasid: number, type: number): IommuDomain | null {
    const e = dev.iommuGroup?.pasidArray.get(pasid);
    if (!e) return null;
    if (type && e.domain.type !== type) throw new ErrnoError('EBUSY');
    return e.domain;
  }

  /**
   * `iommu_attach_handle_get(group, pasid, type)`.
   * @throws ErrnoError `ENOENT` if nothing or a bare domain is stored; `EBUSY` on a type mismatch
   */
  iommuAttachHandleGet(group: IommuGroup, pasid: number, type: number): IommuAttachHandle {
    const e: GroupPasidEntry | undefined = group.pasidArray.get(pasid);
    if (!e?.handle) throw new ErrnoError('ENOENT');
    if (type && e.domain.type !== type) throw new ErrnoError('EBUSY');
    return e.handle;
  }

  /**
   * `iommu_alloc_global_pasid(dev)`: the lowest free PASID in `[1, max_pasids - 1]` from the
   * system-wide space (`IoasidSubsystem.allocGlobalPasid`).
   * @returns the PASID, or `IOMMU_PASID_INVALID` (0xFFFF_FFFF) when the device has no PASIDs or the
   *   range is full
   */
  iommuAllocGlobalPasid(dev: Device): number {
    const max = dev.iommu?.maxPasids ?? 0;
    if (max === 0) return IOMMU_PASID_INVALID;
    return this.ioasid.allocGlobalPasid(Math.min(max, 0xffff_ffff));
  }

  /** `iommu_free_global_pasid(pasid)`: warns and ignores `IOMMU_PASID_INVALID`. */
  iommuFreeGlobalPasid(pasid: number): void {
    if (pasid === IOMMU_PASID_INVALID) {
      this.warn('freeing IOMMU_PASID_INVALID');
      return;
    }
    this.ioasid.freeGlobalPasid(pasid);
  }

  // ---- device features (history) -------------------------------------------------------------------

  /**
   * `iommu_dev_enable_feature(dev, feat)` (history, ≤ v6.14).
   * @throws ErrnoError `ENODEV` without an IOMMU or op; the driver's error
   */
  iommuDevEnableFeature(dev: Device, feat: IommuDevFeature): void {
    const ops = this.devIommuOps(dev);
    if (!ops?.devEnableFeat) throw new ErrnoError('ENODEV');
    ops.devEnableFeat(dev, feat);
    dev.iommu?.enabledFeatures.add(feat);
  }

  /**
   * `iommu_dev_disable_feature(dev, feat)` (history).
   * @throws ErrnoError `EBUSY`-style driver errors; `ENODEV` without an IOMMU or op
   */
  iommuDevDisableFeature(dev: Device, feat: IommuDevFeature): void {
    const ops = this.devIommuOps(dev);
    if (!ops?.devDisableFeat) throw new ErrnoError('ENODEV');
    ops.devDisableFeat(dev, feat);
    dev.iommu?.enabledFeatures.delete(feat);
  }
}
