/**
 * A VFIO device file, as VFIO_GROUP_GET_DEVICE_FD returns it (drivers/vfio/vfio_main.c
 * `vfio_device_fops`, group.c `vfio_df_group_open`/`vfio_df_group_close`, iommufd.c
 * `vfio_iommufd_physical_*`): the first open of a device binds it to the group's iommufd and
 * attaches it to the compatibility IOAS; the last close detaches and unbinds it. Its only ioctl
 * here is VFIO_DEVICE_GET_INFO, with vfio-pci's argsz rules.
 */

import { _IOC_NR, ErrnoError, shouldFail, type UapiStruct } from '@iommu-ts/base';
import {
  type IoctlArg,
  iommufdDeviceAttach,
  iommufdDeviceBind,
  iommufdDeviceDetach,
  iommufdDeviceUnbind,
  type UserMemory,
  uaccessUserMemory,
} from '@iommu-ts/iommufd';
import type { Process, ProcessFile } from '@iommu-ts/mm';
import { iommufdVfioCompatIoasGetId } from './compat-ioas.js';
import type { VfioGroupFile } from './group.js';
import { readU32, withArg } from './struct-arg.js';
import { vfioSvaDeviceClose, vfioSvaDeviceOpen } from './sva-bind.js';
import type { VfioDevice } from './vfio-device.js';
import { VFIO_DEVICE_GET_INFO, vfioDeviceInfoStruct } from './vfio-uapi.js';

/** `offsetofend(struct vfio_device_info, num_irqs)`: the smallest `argsz` GET_INFO takes. */
const DEVICE_INFO_MINSZ = 16;

/** The device file behind each installed file (what `f_op == &vfio_device_fops` identifies). */
const deviceFileOf = new WeakMap<ProcessFile, VfioDeviceFile>();

/**
 * The VFIO device file open at descriptor `fd` of `process` (`fdget` and a check of the file's
 * type), e.g. to call `ioctl` on the descriptor VFIO_GROUP_GET_DEVICE_FD returned.
 * @param process - the process
 * @param fd - a descriptor
 * @returns the device file
 * @throws ErrnoError `EBADF` if `fd` is not open, `ENOTTY` if it is not a VFIO device file
 */
export function vfioDeviceFileOf(process: Process, fd: number): VfioDeviceFile {
  const df = deviceFileOf.get(process.getFile(fd));
  if (df === undefined) throw new ErrnoError('ENOTTY', `fd ${fd} is not a VFIO device file`);
  return df;
}

/**
 * An open VFIO device file, installed in the file table of the process that opened the group.
 * It holds a reference on the group file.
 */
export class VfioDeviceFile {
  /** The VFIO device. */
  readonly device: VfioDevice;
  /** The group file it was opened through. */
  readonly groupFile: VfioGroupFile;
  /** The process whose file table holds it. */
  readonly process: Process;
  /** The descriptor. */
  readonly fd: number;
  private readonly userMemory: UserMemory;
  private readonly file: ProcessFile;
  private closed = false;

  /**
   * Use `VFIO_GROUP_GET_DEVICE_FD`.
   * @param groupFile - the group file (a reference is taken)
   * @param device - the opened device
   * @internal
   */
  constructor(groupFile: VfioGroupFile, device: VfioDevice) {
    this.device = device;
    this.groupFile = groupFile;
    this.process = groupFile.process;
    this.userMemory = uaccessUserMemory(this.process);
    this.file = {
      close: () => {
        this.closed = true;
        closeDevice(device);
        groupFile.put();
      },
    };
    this.fd = this.process.installFd(this.file);
    deviceFileOf.set(this.file, this);
    groupFile.get();
  }

  /** Whether the file has been released (its last descriptor closed). */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * `ioctl(fd, request, arg)` on the device file.
   * @param request - `VFIO_DEVICE_GET_INFO`
   * @param arg - a `vfio_device_info` object (the fields up to `min(argsz, 24)` bytes are written
   *   back) or a user address
   * @returns 0
   * @throws ErrnoError `EBADF` after close; `ENOTTY` for other requests; GET_INFO: `EFAULT`,
   *   `EINVAL` (`argsz` below 16)
   */
  ioctl(request: number, arg?: IoctlArg): number {
    if (this.closed) throw new ErrnoError('EBADF', `fd ${this.fd} is closed`);
    const req = request >>> 0;
    if (req !== VFIO_DEVICE_GET_INFO >>> 0)
      throw new ErrnoError('ENOTTY', `no device ioctl 0x${req.toString(16)} (nr ${_IOC_NR(req)})`);
    return withArg(
      arg,
      this.userMemory,
      (obj) => [{ struct: vfioDeviceInfoStruct as UapiStruct<object>, value: obj, offset: 0 }],
      (mem, va) => this.getInfo(mem, va),
    );
  }

  /**
   * `close(fd)`: the same as `process.close(file.fd)`.
   * @throws ErrnoError `EBADF` if already closed
   */
  close(): void {
    if (this.closed) throw new ErrnoError('EBADF', `fd ${this.fd} is closed`);
    this.process.close(this.fd);
  }

  /** vfio-pci's `vfio_pci_ioctl_get_info` (no capabilities: `cap_offset` 0, `argsz` unchanged). */
  private getInfo(mem: UserMemory, va: bigint): number {
    const argsz = readU32(mem.read(va, DEVICE_INFO_MINSZ));
    if (argsz < DEVICE_INFO_MINSZ)
      throw new ErrnoError('EINVAL', `argsz ${argsz} below ${DEVICE_INFO_MINSZ}`);
    const d = this.device;
    const out = vfioDeviceInfoStruct.encode({
      argsz,
      flags: d.flags,
      num_regions: d.numRegions,
      num_irqs: d.numIrqs,
      cap_offset: 0,
      pad: 0,
    });
    mem.write(va, out.subarray(0, Math.min(argsz, vfioDeviceInfoStruct.size)));
    return 0;
  }
}

/**
 * Open a device through its group file (`vfio_device_group_open` + `vfio_df_open`): the first open
 * binds it to the group's iommufd, attaches it to the compatibility IOAS and replays the
 * container's SVA bonds on its group.
 * @param groupFile - the group file
 * @param device - a device of the group
 * @returns the device file, installed in the group file's process
 * @throws ErrnoError `EINVAL` (the group has no container), the errors of `iommufd_device_bind`
 *   (`EPERM`/`EBUSY` DMA ownership, `EINVAL`), `ENODEV` (the context has no compatibility IOAS),
 *   the attach errors, the SVA replay errors, `ENOMEM` (fail_nth points `vfio.device_file_alloc`
 *   and, after the device was opened, `vfio.anon_inode_getfile`); nothing changes on failure
 * @internal
 */
export function openVfioDeviceFile(groupFile: VfioGroupFile, device: VfioDevice): VfioDeviceFile {
  const ictx = device.group.iommufd;
  if (ictx === null) throw new ErrnoError('EINVAL', `group ${device.group.id} has no container`);
  if (shouldFail('vfio.device_file_alloc'))
    throw new ErrnoError('ENOMEM', 'injected: vfio_device_file allocation');
  if (device.openCount === 0) {
    const idev = iommufdDeviceBind(ictx, device.dev);
    try {
      iommufdDeviceAttach(idev, iommufdVfioCompatIoasGetId(ictx));
    } catch (e) {
      iommufdDeviceUnbind(idev);
      throw e;
    }
    device.iommufdDevice = idev;
    device.iommufdAttached = true;
    try {
      vfioSvaDeviceOpen(ictx, device);
    } catch (e) {
      device.iommufdDevice = null;
      device.iommufdAttached = false;
      iommufdDeviceDetach(idev);
      iommufdDeviceUnbind(idev);
      throw e;
    }
  }
  device.openCount++;
  if (shouldFail('vfio.anon_inode_getfile')) {
    closeDevice(device);
    throw new ErrnoError('ENOMEM', 'injected: anon_inode_getfile');
  }
  return new VfioDeviceFile(groupFile, device);
}

/** `vfio_df_close` + `vfio_iommufd_physical_unbind` at the last close. */
function closeDevice(device: VfioDevice): void {
  if (--device.openCount > 0) return;
  const idev = device.iommufdDevice;
  if (idev === null) return;
  vfioSvaDeviceClose(idev.ictx, device);
  if (device.iommufdAttached) iommufdDeviceDetach(idev);
  device.iommufdAttached = false;
  device.iommufdDevice = null;
  iommufdDeviceUnbind(idev);
}
