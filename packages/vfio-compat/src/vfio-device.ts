/**
 * The VFIO core's view of devices bound to a VFIO driver such as vfio-pci (drivers/vfio/vfio_main.c
 * and group.c): each registered device belongs to the VFIO group of its IOMMU group, which
 * userspace opens as `/dev/vfio/$GROUP`.
 *
 * Only what DMA needs is modelled: registration (`vfio_register_group_dev`), the group of each
 * device, the open count and the iommufd binding of each device. Regions, interrupts, reset and
 * the driver's own ioctls are not.
 */

import { ErrnoError } from '@iommu-ts/base';
import { type Device, IommuCap, type IommuGroup, type IommuSubsystem } from '@iommu-ts/iommu-core';
import type { IommufdCtx, IommufdDevice } from '@iommu-ts/iommufd';
import type { Process } from '@iommu-ts/mm';
import { openVfioGroupFile, type VfioGroupFile } from './group.js';

/** What {@link VfioSubsystem.registerDevice} takes: what the VFIO driver reports about the device. */
export interface VfioDeviceRegisterOptions {
  /**
   * The name `VFIO_GROUP_GET_DEVICE_FD` matches (`dev_name(dev)`, e.g. `0000:00:04.0`); default
   * the device's `name`.
   */
  readonly name?: string;
  /** `vfio_device_info.flags`: `VFIO_DEVICE_FLAGS_PCI`, `VFIO_DEVICE_FLAGS_RESET`, ... */
  readonly flags: number;
  /** `vfio_device_info.num_regions`; default 0 (vfio-pci reports 9 plus device-specific ones). */
  readonly numRegions?: number;
  /** `vfio_device_info.num_irqs`; default 0 (vfio-pci reports 5). */
  readonly numIrqs?: number;
}

/**
 * A device registered with VFIO (`struct vfio_device`): the underlying device, what
 * `VFIO_DEVICE_GET_INFO` reports, and the state of its opens.
 */
export class VfioDevice {
  /** The device (`vfio_device->dev`). */
  readonly dev: Device;
  /** The name userspace asks for in `VFIO_GROUP_GET_DEVICE_FD`. */
  readonly name: string;
  /** `VFIO_DEVICE_FLAGS_*` reported by `VFIO_DEVICE_GET_INFO`. */
  readonly flags: number;
  /** Number of regions reported by `VFIO_DEVICE_GET_INFO`. */
  readonly numRegions: number;
  /** Number of interrupt indexes reported by `VFIO_DEVICE_GET_INFO`. */
  readonly numIrqs: number;
  /** The VFIO group the device belongs to. */
  readonly group: VfioGroup;
  /** `open_count`: open device files; the first open binds to iommufd, the last close unbinds. */
  openCount = 0;
  /** `iommufd_device`: the device's binding to the container's iommufd while open, else null. */
  iommufdDevice: IommufdDevice | null = null;
  /** `iommufd_attached`: whether the binding is attached to the compatibility IOAS. */
  iommufdAttached = false;
  /** Whether {@link VfioSubsystem.unregisterDevice} removed the device. */
  unregistered = false;

  /**
   * Use {@link VfioSubsystem.registerDevice}.
   * @param dev - the device
   * @param group - its VFIO group
   * @param options - name, flags, region and IRQ counts
   * @internal
   */
  constructor(dev: Device, group: VfioGroup, options: VfioDeviceRegisterOptions) {
    this.dev = dev;
    this.group = group;
    this.name = options.name ?? dev.name;
    this.flags = options.flags >>> 0;
    this.numRegions = options.numRegions ?? 0;
    this.numIrqs = options.numIrqs ?? 0;
  }

  /** The iommufd context the device is bound to while open (`iommufd_device->ictx`), else null. */
  get ictx(): IommufdCtx | null {
    return this.iommufdDevice?.ictx ?? null;
  }
}

/**
 * A VFIO group (`struct vfio_group`): the VFIO devices of one IOMMU group, the container (an
 * iommufd context) it is set to, and its open file.
 */
export class VfioGroup {
  /** The VFIO subsystem. */
  readonly vfio: VfioSubsystem;
  /** The IOMMU group (`iommu_group`). */
  readonly iommuGroup: IommuGroup;
  /** The registered devices, in registration order. */
  readonly devices: VfioDevice[] = [];
  /**
   * `iommufd`: the context `VFIO_GROUP_SET_CONTAINER` gave (one reference held on it), or null.
   */
  iommufd: IommufdCtx | null = null;
  /** `opened_file`: the open group file, or null (a group opens once at a time). */
  openedFile: VfioGroupFile | null = null;
  /** Whether the last device left (the group lingers while its file is open; ioctls are ENODEV). */
  removed = false;

  /**
   * Created by the first {@link VfioSubsystem.registerDevice} of the IOMMU group.
   * @param vfio - the subsystem
   * @param iommuGroup - the IOMMU group
   * @internal
   */
  constructor(vfio: VfioSubsystem, iommuGroup: IommuGroup) {
    this.vfio = vfio;
    this.iommuGroup = iommuGroup;
  }

  /** The group number of `/dev/vfio/$GROUP` (the IOMMU group's id). */
  get id(): number {
    return this.iommuGroup.id;
  }

  /** Whether the group is set to a container (`vfio_group_has_iommu`). */
  get hasIommu(): boolean {
    return this.iommufd !== null;
  }
}

/**
 * The VFIO core of one machine: registered devices grouped by IOMMU group, and the group files
 * (`/dev/vfio/$GROUP`).
 *
 * @example
 * ```ts
 * const vfio = new VfioSubsystem(iommu);
 * vfio.registerDevice(pdev, { flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET, numRegions: 9, numIrqs: 5 });
 * const group = vfio.openGroup(proc, pdev.iommuGroup!.id); // open("/dev/vfio/N")
 * ```
 */
export class VfioSubsystem {
  /** The IOMMU subsystem devices come from. */
  readonly iommu: IommuSubsystem;
  private readonly groupsById = new Map<number, VfioGroup>();
  private readonly byDevice = new Map<Device, VfioDevice>();

  /**
   * @param iommu - the IOMMU subsystem
   */
  constructor(iommu: IommuSubsystem) {
    this.iommu = iommu;
  }

  /**
   * `vfio_register_group_dev(device)`: a VFIO driver took the device; its group appears as
   * `/dev/vfio/$GROUP` (created with the group's first device).
   * @param dev - a probed device
   * @param options - name, flags, region and IRQ counts
   * @returns the VFIO device
   * @throws ErrnoError `EINVAL` (no IOMMU group, as `vfio_group_find_or_alloc`; or the IOMMU cannot
   *   enforce cache coherency, as `__vfio_register_dev`), `EEXIST` (already registered, or another
   *   device of the group has the same name); nothing changes on failure
   */
  registerDevice(dev: Device, options: VfioDeviceRegisterOptions): VfioDevice {
    const iommuGroup = dev.iommuGroup;
    if (iommuGroup === null) throw new ErrnoError('EINVAL', `${dev.name}: no IOMMU group`);
    if (!this.iommu.deviceIommuCapable(dev, IommuCap.CACHE_COHERENCY))
      throw new ErrnoError('EINVAL', `${dev.name}: the IOMMU does not enforce cache coherency`);
    if (this.byDevice.has(dev)) throw new ErrnoError('EEXIST', `${dev.name}: already registered with VFIO`);
    let group = this.groupsById.get(iommuGroup.id);
    const name = options.name ?? dev.name;
    if (group?.devices.some((d) => d.name === name))
      throw new ErrnoError('EEXIST', `group ${iommuGroup.id} already has a device named ${name}`);
    if (group === undefined) {
      group = new VfioGroup(this, iommuGroup);
      this.groupsById.set(iommuGroup.id, group);
    }
    const vdev = new VfioDevice(dev, group, options);
    group.devices.push(vdev);
    this.byDevice.set(dev, vdev);
    return vdev;
  }

  /**
   * `vfio_unregister_group_dev(device)`: the driver lets the device go. Linux waits for userspace
   * to close the device; here that is `EBUSY`. The group goes away with its last device (a group
   * file still open then answers its ioctls `ENODEV`).
   * @param vdev - a registered device
   * @throws ErrnoError `EBUSY` while a device file is open, `ENODEV` if not registered
   */
  unregisterDevice(vdev: VfioDevice): void {
    if (this.byDevice.get(vdev.dev) !== vdev) throw new ErrnoError('ENODEV', `${vdev.name}: not registered`);
    if (vdev.openCount > 0) throw new ErrnoError('EBUSY', `${vdev.name}: device file open`);
    const group = vdev.group;
    group.devices.splice(group.devices.indexOf(vdev), 1);
    this.byDevice.delete(vdev.dev);
    vdev.unregistered = true;
    if (group.devices.length === 0) {
      this.groupsById.delete(group.id);
      group.removed = true;
    }
  }

  /**
   * The VFIO group with this number, if any device of it is registered.
   * @param groupId - the IOMMU group id
   */
  group(groupId: number): VfioGroup | undefined {
    return this.groupsById.get(groupId);
  }

  /**
   * The VFIO device of `dev`, if registered.
   * @param dev - the device
   */
  device(dev: Device): VfioDevice | undefined {
    return this.byDevice.get(dev);
  }

  /** Every group, by ascending number (the entries of `/dev/vfio`). */
  groups(): VfioGroup[] {
    return [...this.groupsById.values()].sort((a, b) => a.id - b.id);
  }

  /**
   * `open("/dev/vfio/$GROUP", O_RDWR)` by `process` (`vfio_group_fops_open`).
   * @param process - the opening process: the fd goes into its table
   * @param groupId - the group number
   * @returns the open group file
   * @throws ErrnoError `ENOENT` (no such group: no registered device in it), `EBUSY` (the group is
   *   already open), `EMFILE`
   */
  openGroup(process: Process, groupId: number): VfioGroupFile {
    const group = this.groupsById.get(groupId);
    if (group === undefined) throw new ErrnoError('ENOENT', `/dev/vfio/${groupId} does not exist`);
    return openVfioGroupFile(group, process);
  }
}
