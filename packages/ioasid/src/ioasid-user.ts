/**
 * `/dev/ioasid`: the user interface of RFC patch 18/18 "ioasid: Add /dev/ioasid for userspace"
 * (drivers/iommu/ioasid_user.c as carried in Intel's DCP tree). Each process opens it once, gets an
 * MM-type IOASID set with a quota of 1000, and allocates and frees IOASIDs in it with ioctls.
 */

import { ErrnoError, isErrnoError, type UapiStruct } from '@iommu-ts/base';
import { INVALID_IOASID, type Ioasid, IoasidSetType } from './constants.js';
import type { IoasidSet } from './ioasid-set.js';
import type { IoasidSubsystem } from './ioasid-subsystem.js';
import type { IoasidTask } from './task.js';
import {
  IOASID_API_VERSION,
  IOASID_GET_API_VERSION,
  IOASID_GET_INFO,
  IOASID_REQUEST_ALLOC,
  IOASID_REQUEST_FREE,
  IOASID_USER_BITS,
  IOASID_USER_QUOTA,
  type IoasidUserAllocRequest,
  type IoasidUserInfo,
  ioasidAllocRequestStruct,
  ioasidInfoStruct,
} from './uapi.js';

/**
 * The argument of {@link IoasidUserFile.ioctl}, standing for the `unsigned long arg` of ioctl(2):
 * - `IOASID_GET_INFO`: an {@link IoasidUserInfo} object or a `Uint8Array` holding the struct
 *   (at least 12 bytes); the result is written back into it.
 * - `IOASID_REQUEST_ALLOC`: an {@link IoasidUserAllocRequest} object or a `Uint8Array` holding the
 *   struct (at least 16 bytes).
 * - `IOASID_REQUEST_FREE`: the `int` IOASID itself as a number, or the memory holding it: an
 *   `Int32Array` (element 0) or a `Uint8Array` of at least 4 bytes (little-endian).
 */
export type IoasidUserIoctlArg = IoasidUserInfo | IoasidUserAllocRequest | Uint8Array | Int32Array | number;

const USER_ID_LIMIT = 2 ** IOASID_USER_BITS;

function fault(what: string): ErrnoError {
  return new ErrnoError('EFAULT', `${what}: bad address`);
}

/**
 * Reads a struct argument as the kernel's `copy_from_user` of `struct.size` bytes would. A plain
 * object must hold the listed input fields as valid values (anything else is memory the kernel
 * could not read: EFAULT); output-only fields may be missing.
 */
function readStructArg<T>(struct: UapiStruct<T>, arg: unknown, inputs: (keyof T & string)[]): T {
  if (arg instanceof Uint8Array) {
    if (arg.length < struct.size) throw fault(struct.name);
    return struct.decode(arg);
  }
  if (typeof arg !== 'object' || arg === null || ArrayBuffer.isView(arg)) throw fault(struct.name);
  const candidate = { ...(struct.zero() as Record<string, unknown>) };
  for (const f of inputs) candidate[f] = (arg as Record<string, unknown>)[f];
  if (!struct.isValue(candidate)) throw fault(struct.name);
  return candidate;
}

/**
 * Registered opens of one `/dev/ioasid` device: the per-mm user objects (`struct ioasid_user`).
 * Internal to the module.
 */
interface DeviceState {
  readonly subsystem: IoasidSubsystem;
  readonly open: Map<object, IoasidUserFile>;
}

let newFile: (dev: DeviceState, task: IoasidTask, mm: object, set: IoasidSet) => IoasidUserFile;

/**
 * An open file of `/dev/ioasid` (the per-process `struct ioasid_user`): the MM-type set of the
 * process that opened it, and the ioctls on it.
 */
export class IoasidUserFile {
  readonly #dev: DeviceState;
  readonly #task: IoasidTask;
  readonly #mm: object;
  readonly #set: IoasidSet;
  #closed = false;

  static {
    newFile = (dev, task, mm, set) => new IoasidUserFile(dev, task, mm, set);
  }

  private constructor(dev: DeviceState, task: IoasidTask, mm: object, set: IoasidSet) {
    this.#dev = dev;
    this.#task = task;
    this.#mm = mm;
    this.#set = set;
  }

  /** The task that opened the file; ioctls run as this task (`subsystem.current`). */
  get task(): IoasidTask {
    return this.#task;
  }

  /** The process's MM-type IOASID set (token = the task's mm, quota 1000). */
  get set(): IoasidSet {
    return this.#set;
  }

  /** Whether {@link IoasidUserFile.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Performs an ioctl (`ioasid_fops_unl_ioctl`), running as the file's task so that the ioasids
   * cgroup charges the right process.
   *
   * @remarks
   * Requests and results:
   * - `IOASID_GET_API_VERSION` (0x6964): returns 0; `arg` is ignored.
   * - `IOASID_GET_INFO` (0x6965): reads `struct ioasid_info`; `argsz` below 12 or `flags` ≠ 0 → EINVAL;
   *   writes the struct back with `ioasid_bits` = 31 (in place for a `Uint8Array`, into the fields of
   *   an object); returns 0.
   * - `IOASID_REQUEST_ALLOC` (0x6966): reads `struct ioasid_alloc_request`; `argsz` below 16, `flags`
   *   ≠ 0, `range.min` above `range.max`, or either bound ≥ 2^31 → EINVAL; allocates the lowest free
   *   IOASID in the range in the file's set; any allocation failure (set quota of 1000, ioasids
   *   cgroup limit, range full) → EINVAL; returns the new IOASID. Nothing is written back.
   * - `IOASID_REQUEST_FREE` (0x6967): reads an `int`; negative → EINVAL; otherwise frees the IOASID
   *   in the file's set and returns 0, also when the ID is not the caller's (the core only logs).
   * - any other request → EINVAL (not ENOTTY, as the RFC).
   *
   * Argument memory the kernel could not read or write (a missing argument, a buffer shorter than
   * the struct, an object lacking an input field or holding a value that is not a valid `__u32`,
   * a number that is not an `int`) → EFAULT. A failed ioctl changes nothing.
   *
   * @param request - the request number
   * @param arg - the argument, see {@link IoasidUserIoctlArg}
   * @returns the ioctl's non-negative return value
   * @throws ErrnoError EBADF after close; EINVAL, EFAULT as above
   */
  ioctl(request: number, arg?: IoasidUserIoctlArg): number {
    if (this.#closed) throw new ErrnoError('EBADF', '/dev/ioasid file is closed');
    return this.#dev.subsystem.runAs(this.#task, () => {
      switch (request) {
        case IOASID_GET_API_VERSION:
          return IOASID_API_VERSION;
        case IOASID_GET_INFO:
          return this.#getInfo(arg);
        case IOASID_REQUEST_ALLOC:
          return this.#requestAlloc(arg);
        case IOASID_REQUEST_FREE:
          return this.#requestFree(arg);
        default:
          throw new ErrnoError('EINVAL', `unknown /dev/ioasid ioctl 0x${(request >>> 0).toString(16)}`);
      }
    });
  }

  /**
   * Calls `fn` for every IOASID of the file's set, ascending (`ioasid_user_for_each_id`).
   * @param fn - receives each IOASID
   * @throws ErrnoError EBADF after close
   */
  forEachId(fn: (id: Ioasid) => void): void {
    if (this.#closed) throw new ErrnoError('EBADF', '/dev/ioasid file is closed');
    this.#dev.subsystem.setForEachIoasid(this.#set, fn);
  }

  /**
   * Closes the file (the last `fput`, `ioasid_fops_release`): frees every IOASID of the set (those
   * still referenced elsewhere become FREE_PENDING and get a FREE event), then frees the set. If
   * IOASIDs remain referenced, freeing the set fails with EBUSY inside, which is ignored: the core
   * then destroys the set when its last IOASID is released. The process may open the device again
   * right away only once the set is gone (else the new set creation fails with EEXIST). A second
   * close does nothing.
   * @throws whatever a notifier callback threw while the IOASIDs were freed, after the set was freed
   *   too (the file is closed either way)
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#dev.open.get(this.#mm) === this) this.#dev.open.delete(this.#mm);
    const sub = this.#dev.subsystem;
    sub.runAs(this.#task, () => {
      // A notifier callback that throws during the frees must not keep the set alive: free the set
      // anyway, then rethrow. EBUSY (IOASIDs still referenced) is the expected outcome, not an error.
      let failure: { error: unknown } | undefined;
      try {
        sub.freeAllInSet(this.#set);
      } catch (e) {
        failure = { error: e };
      }
      try {
        sub.setFree(this.#set);
      } catch (e) {
        if (!isErrnoError(e)) failure ??= { error: e };
      }
      if (failure !== undefined) throw failure.error;
    });
  }

  #getInfo(arg: IoasidUserIoctlArg | undefined): number {
    const info = readStructArg(ioasidInfoStruct, arg, ['argsz', 'flags']);
    if (info.argsz < ioasidInfoStruct.size || info.flags !== 0) {
      throw new ErrnoError('EINVAL', 'ioasid_info: bad argsz or flags');
    }
    info.ioasid_bits = IOASID_USER_BITS;
    if (arg instanceof Uint8Array) {
      ioasidInfoStruct.encode(info, arg);
    } else {
      const out = arg as IoasidUserInfo;
      out.argsz = info.argsz;
      out.flags = info.flags;
      out.ioasid_bits = info.ioasid_bits;
    }
    return 0;
  }

  #requestAlloc(arg: IoasidUserIoctlArg | undefined): number {
    const req = readStructArg(ioasidAllocRequestStruct, arg, ['argsz', 'flags', 'range']);
    if (req.argsz < ioasidAllocRequestStruct.size || req.flags !== 0) {
      throw new ErrnoError('EINVAL', 'ioasid_alloc_request: bad argsz or flags');
    }
    const { min, max } = req.range;
    if (min > max || min >= USER_ID_LIMIT || max >= USER_ID_LIMIT) {
      throw new ErrnoError('EINVAL', `bad IOASID range [${min}, ${max}]`);
    }
    const id = this.#dev.subsystem.alloc(this.#set, min, max);
    if (id === INVALID_IOASID) throw new ErrnoError('EINVAL', 'IOASID allocation failed');
    return id;
  }

  #requestFree(arg: IoasidUserIoctlArg | undefined): number {
    let id: number;
    if (typeof arg === 'number') {
      if (!Number.isInteger(arg) || arg < -0x8000_0000 || arg > 0x7fff_ffff) throw fault('int');
      id = arg;
    } else if (arg instanceof Int32Array) {
      const v = arg[0];
      if (v === undefined) throw fault('int');
      id = v;
    } else if (arg instanceof Uint8Array) {
      if (arg.length < 4) throw fault('int');
      id = new DataView(arg.buffer, arg.byteOffset, 4).getInt32(0, true);
    } else {
      throw fault('int');
    }
    if (id < 0) throw new ErrnoError('EINVAL', `negative IOASID ${id}`);
    // ioasid_free is void: a foreign or unknown ID is only logged by the core.
    this.#dev.subsystem.free(this.#set, id);
    return 0;
  }
}

/**
 * The `/dev/ioasid` misc device ("ioasid_user", mode 0666) of one IOASID subsystem.
 *
 * @remarks
 * One open file per process (mm) at a time. Opening creates the process's MM-type set with
 * quota {@link IOASID_USER_QUOTA} (1000), deducted from the system capacity; allocations through
 * it are charged to the process's ioasids cgroup when a controller is installed.
 */
export class IoasidUserDevice {
  readonly #dev: DeviceState;

  /**
   * @param subsystem - the IOASID subsystem the device allocates from
   */
  constructor(subsystem: IoasidSubsystem) {
    this.#dev = { subsystem, open: new Map() };
  }

  /** The subsystem the device allocates from. */
  get subsystem(): IoasidSubsystem {
    return this.#dev.subsystem;
  }

  /**
   * Opens the device as `task` (`ioasid_fops_open`): creates the task's MM-type set (token = its
   * mm, quota 1000).
   * @param task - the opening task
   * @returns the open file
   * @throws ErrnoError EINVAL if the task has no mm (a kernel thread; this model's choice);
   *   EBUSY if the same mm has the device open; the set-creation errors of
   *   `IoasidSubsystem.setAlloc`: EEXIST if an MM-type set for the mm exists already (for
   *   example one left free-pending by an earlier close), ENOMEM at the fail_nth point
   *   `ioasid.set_alloc`, ENOSPC if the capacity cannot cover the
   *   quota
   */
  open(task: IoasidTask): IoasidUserFile {
    const mm = task.mm;
    if (mm === null) throw new ErrnoError('EINVAL', 'a task without mm cannot open /dev/ioasid');
    if (this.#dev.open.has(mm)) throw new ErrnoError('EBUSY', '/dev/ioasid is already open for this mm');
    const set = this.#dev.subsystem.runAs(task, () =>
      this.#dev.subsystem.setAlloc(mm, IOASID_USER_QUOTA, IoasidSetType.MM),
    );
    const file = newFile(this.#dev, task, mm, set);
    this.#dev.open.set(mm, file);
    return file;
  }

  /**
   * The open file of a task's process (`ioasid_user_get_from_task`), for kernel users such as VFIO.
   * @param task - any task of the process
   * @returns the open file, or `undefined` if the process has none open (or the task has no mm)
   */
  fileOf(task: IoasidTask): IoasidUserFile | undefined {
    return task.mm === null ? undefined : this.#dev.open.get(task.mm);
  }
}
