/**
 * The VFIO group file `/dev/vfio/$GROUP` (drivers/vfio/group.c, with the container provided by
 * iommufd): VFIO_GROUP_GET_STATUS, VFIO_GROUP_SET_CONTAINER, VFIO_GROUP_UNSET_CONTAINER and
 * VFIO_GROUP_GET_DEVICE_FD.
 *
 * With an iommufd container the group only remembers the context (holding a reference on it) and
 * makes sure it has a compatibility IOAS; DMA ownership is claimed per device when its first device
 * file opens (`iommufd_device_bind`), which then attaches to the compatibility IOAS.
 */

import { _IOC_NR, defineUapiStruct, ErrnoError, shouldFail, type UapiStruct } from '@iommu-ts/base';
import { type IoctlArg, iommufdCtxFromFile, type UserMemory, uaccessUserMemory } from '@iommu-ts/iommufd';
import { NR_OPEN_DEFAULT, PAGE_SIZE, type Process, type ProcessFile } from '@iommu-ts/mm';
import { iommufdVfioCompatIoasCreate } from './compat-ioas.js';
import { openVfioDeviceFile, type VfioDeviceFile, vfioDeviceFileOf } from './device-file.js';
import { argPointer, readU32, withArg } from './struct-arg.js';
import type { VfioGroup } from './vfio-device.js';
import {
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  type VfioGroupStatus,
  vfioGroupStatusStruct,
} from './vfio-uapi.js';

/** `offsetofend(struct vfio_group_status, flags)`: the bytes GET_STATUS reads and writes. */
const GROUP_STATUS_MINSZ = 8;

/** The `int` VFIO_GROUP_SET_CONTAINER points at, as a one-field struct (`fd` s32 at 0) for the object form. */
const intStruct: UapiStruct<object> = defineUapiStruct({
  name: 'int',
  size: 4,
  fields: [{ name: 'fd', offset: 0, type: 's32' }],
}) as UapiStruct<object>;

/**
 * An open `/dev/vfio/$GROUP` (`struct vfio_group` with its `opened_file`), installed in the opening
 * process's file table. Device files opened through it hold a reference on it, so the group is only
 * released (its container unset) once its descriptor and every device file are closed.
 */
export class VfioGroupFile {
  /** The VFIO group. */
  readonly group: VfioGroup;
  /** The opening process: the container fd of SET_CONTAINER is looked up in its file table. */
  readonly process: Process;
  /** The descriptor in the opening process's fd table. */
  readonly fd: number;
  private readonly userMemory: UserMemory;
  private readonly file: ProcessFile;
  /** The file's references: its descriptors (one, counted by the fd table) plus one per device file. */
  private refs = 1;
  private fdClosed = false;

  /**
   * Use `VfioSubsystem.openGroup`.
   * @param group - the group
   * @param process - the opening process
   * @internal
   */
  constructor(group: VfioGroup, process: Process) {
    this.group = group;
    this.process = process;
    this.userMemory = uaccessUserMemory(process);
    this.file = {
      close: () => {
        this.fdClosed = true;
        this.put();
      },
    };
    this.fd = process.installFd(this.file);
  }

  /** Whether the descriptor has been closed (the group stays open while device files remain). */
  get isClosed(): boolean {
    return this.fdClosed;
  }

  /** Whether the group was released (descriptor and every device file closed). */
  get isReleased(): boolean {
    return this.refs === 0;
  }

  /**
   * `ioctl(fd, request, arg)` on the group file (`vfio_group_fops_unl_ioctl`).
   * @param request - `VFIO_GROUP_GET_STATUS`, `VFIO_GROUP_SET_CONTAINER`,
   *   `VFIO_GROUP_UNSET_CONTAINER` or `VFIO_GROUP_GET_DEVICE_FD`
   * @param arg - GET_STATUS: a `vfio_group_status` object (`argsz`, `flags` written back) or a user
   *   address; SET_CONTAINER: `{ fd }` or the user address of an `int`; UNSET_CONTAINER: nothing;
   *   GET_DEVICE_FD: the device name as a string, or the user address of a NUL-terminated string
   * @returns 0, or for GET_DEVICE_FD the new device file's descriptor
   * @throws ErrnoError `EBADF` after close, `ENOTTY` for other requests, and in Linux's order:
   *   GET_STATUS `EFAULT`, `EINVAL` (`argsz` below 8), `ENODEV` (the group lost its devices);
   *   SET_CONTAINER `EFAULT`, `EBADF` (fd not open), `EINVAL` (a container is set), `ENODEV`,
   *   `EBADFD` (not an iommufd), `ENOSPC` (compatibility IOAS); UNSET_CONTAINER `EINVAL` (none set);
   *   GET_DEVICE_FD `EFAULT`, `EINVAL` (name without NUL within 4096 bytes), `ENODEV` (no device
   *   of that name, matched exactly), `EMFILE`, `EINVAL` (no container), then the device open
   *   errors (DMA ownership `EPERM`/`EBUSY`, `ENODEV` without a compatibility IOAS, attach and SVA
   *   replay errors). A failed call changes nothing.
   */
  ioctl(request: number, arg?: IoctlArg | string): number {
    if (this.fdClosed) throw new ErrnoError('EBADF', `fd ${this.fd} is closed`);
    const req = request >>> 0;
    switch (req) {
      case VFIO_GROUP_GET_STATUS >>> 0:
        return this.getStatus(typeof arg === 'string' ? undefined : arg);
      case VFIO_GROUP_SET_CONTAINER >>> 0:
        return this.setContainer(typeof arg === 'string' ? undefined : arg);
      case VFIO_GROUP_UNSET_CONTAINER >>> 0:
        return this.unsetContainer();
      case VFIO_GROUP_GET_DEVICE_FD >>> 0:
        return this.getDeviceFd(arg);
      default:
        throw new ErrnoError('ENOTTY', `no group ioctl 0x${req.toString(16)} (nr ${_IOC_NR(req)})`);
    }
  }

  /**
   * `ioctl(fd, VFIO_GROUP_GET_DEVICE_FD, name)`, returning the device file object (its `fd` is what
   * the ioctl returns).
   * @param name - the device name, or the user address of a NUL-terminated name
   * @returns the open device file
   * @throws ErrnoError as {@link VfioGroupFile.ioctl} for VFIO_GROUP_GET_DEVICE_FD
   */
  openDevice(name: string | bigint): VfioDeviceFile {
    return vfioDeviceFileOf(this.process, this.ioctl(VFIO_GROUP_GET_DEVICE_FD, name));
  }

  /**
   * `close(fd)`: the same as `process.close(file.fd)`.
   * @throws ErrnoError `EBADF` if already closed
   */
  close(): void {
    if (this.fdClosed) throw new ErrnoError('EBADF', `fd ${this.fd} is closed`);
    this.process.close(this.fd);
  }

  /** Take a reference for a device file (`get_file`). @internal */
  get(): void {
    this.refs++;
  }

  /** Drop a reference; the last one releases the group (`vfio_group_fops_release`). @internal */
  put(): void {
    if (--this.refs > 0) return;
    const group = this.group;
    const ictx = group.iommufd;
    group.iommufd = null;
    group.openedFile = null;
    ictx?.put();
  }

  /** `vfio_group_ioctl_get_status`. */
  private getStatus(arg: IoctlArg): number {
    return withArg(
      arg,
      this.userMemory,
      (obj) => [{ struct: vfioGroupStatusStruct as UapiStruct<object>, value: obj, offset: 0 }],
      (mem, va) => {
        const bytes = mem.read(va, GROUP_STATUS_MINSZ);
        const status: VfioGroupStatus = vfioGroupStatusStruct.decode(bytes);
        if (status.argsz < GROUP_STATUS_MINSZ)
          throw new ErrnoError('EINVAL', `argsz ${status.argsz} below ${GROUP_STATUS_MINSZ}`);
        const group = this.group;
        if (group.removed) throw new ErrnoError('ENODEV', `group ${group.id} has no devices`);
        // With iommufd, ownership is claimed at device open, so a group set to a container is
        // reported viable even if a device open may still fail on ownership.
        let flags = 0;
        if (group.hasIommu) flags = VFIO_GROUP_FLAGS_CONTAINER_SET | VFIO_GROUP_FLAGS_VIABLE;
        else if (!group.vfio.iommu.iommuGroupDmaOwnerClaimed(group.iommuGroup))
          flags = VFIO_GROUP_FLAGS_VIABLE;
        mem.write(va, vfioGroupStatusStruct.encode({ argsz: status.argsz, flags }));
        return 0;
      },
    );
  }

  /** `vfio_group_ioctl_set_container`, iommufd branch. */
  private setContainer(arg: IoctlArg): number {
    const fd = withArg(
      arg,
      this.userMemory,
      (obj) => [{ struct: intStruct, value: obj, offset: 0 }],
      (mem, va) => readU32(mem.read(va, 4)) | 0,
    );
    const file = this.process.getFile(fd);
    const group = this.group;
    if (group.hasIommu) throw new ErrnoError('EINVAL', `group ${group.id} already has a container`);
    if (group.removed) throw new ErrnoError('ENODEV', `group ${group.id} has no devices`);
    const ictx = iommufdCtxFromFile(file);
    try {
      iommufdVfioCompatIoasCreate(ictx);
    } catch (e) {
      ictx.put();
      throw e;
    }
    group.iommufd = ictx;
    return 0;
  }

  /** `vfio_group_ioctl_unset_container`, iommufd branch. */
  private unsetContainer(): number {
    const group = this.group;
    const ictx = group.iommufd;
    if (ictx === null) throw new ErrnoError('EINVAL', `group ${group.id} has no container`);
    group.iommufd = null;
    ictx.put();
    return 0;
  }

  /** `vfio_group_ioctl_get_device_fd`. */
  private getDeviceFd(arg: IoctlArg | string): number {
    const name = typeof arg === 'string' ? stringArg(arg) : strndupUser(this.userMemory, arg, PAGE_SIZE);
    const vdev = this.group.devices.find((d) => d.name === name);
    if (vdev === undefined) throw new ErrnoError('ENODEV', `no device ${name} in group ${this.group.id}`);
    if (this.process.files.size >= NR_OPEN_DEFAULT) throw new ErrnoError('EMFILE', 'too many open files');
    const df: VfioDeviceFile = openVfioDeviceFile(this, vdev);
    return df.fd;
  }
}

/** A device name given as a JS string: what `strndup_user` would return for it. */
function stringArg(s: string): string {
  const nul = s.indexOf('\0');
  const name = nul < 0 ? s : s.slice(0, nul);
  if (new TextEncoder().encode(name).length + 1 > PAGE_SIZE)
    throw new ErrnoError('EINVAL', `device name longer than ${PAGE_SIZE - 1} bytes`);
  return name;
}

/**
 * `strndup_user(arg, n)`: the NUL-terminated string at a user address, at most `n` bytes with the
 * NUL. Reads page by page, so a string ending just before an unmapped page works.
 * @throws ErrnoError `EFAULT` (unreadable before the NUL), `EINVAL` (no NUL within `n` bytes)
 */
function strndupUser(mem: UserMemory, arg: IoctlArg, n: number): string {
  if (typeof arg === 'object' && arg !== null)
    throw new TypeError('GET_DEVICE_FD takes a string or an address');
  let va = argPointer(arg);
  const out: number[] = [];
  while (out.length < n) {
    const toPage = PAGE_SIZE - Number(va % BigInt(PAGE_SIZE));
    const chunk = mem.read(va, Math.min(toPage, n - out.length));
    const nul = chunk.indexOf(0);
    if (nul >= 0) {
      for (let i = 0; i < nul; i++) out.push(chunk[i] ?? 0);
      return new TextDecoder().decode(new Uint8Array(out));
    }
    for (const b of chunk) out.push(b);
    va += BigInt(chunk.length);
  }
  throw new ErrnoError('EINVAL', `device name longer than ${n - 1} bytes`);
}

/**
 * Open `/dev/vfio/$GROUP` for `VfioSubsystem.openGroup` (`vfio_group_fops_open`).
 * @param group - the group
 * @param process - the opening process
 * @returns the group file
 * @throws ErrnoError `EBUSY` if the group is open already, `EMFILE`, `ENOMEM` (fail_nth point
 *   `vfio.group_file_alloc`)
 * @internal
 */
export function openVfioGroupFile(group: VfioGroup, process: Process): VfioGroupFile {
  if (group.openedFile !== null) throw new ErrnoError('EBUSY', `group ${group.id} is already open`);
  if (shouldFail('vfio.group_file_alloc')) throw new ErrnoError('ENOMEM', 'injected: group file allocation');
  const file = new VfioGroupFile(group, process);
  group.openedFile = file;
  return file;
}
