/**
 * The seed series' VFIO SVA extension ("vfio: Add support for Shared Virtual Addressing", SVA v2
 * 13/40, 2018, in drivers/vfio/vfio_iommu_type1.c), on an iommufd-backed container:
 * VFIO_IOMMU_BIND / VFIO_IOMMU_UNBIND with `VFIO_IOMMU_BIND_PROCESS` bind a process address space
 * (the caller's, or another process's with `VFIO_IOMMU_BIND_PID` and ptrace-attach permission) to
 * every device of the container through the mm's PASID, using `@iommu-ts/iommu-sva`.
 *
 * The container keeps a list of bound mms (`vfio_mm`: mm and PASID) and, per group of the
 * container, whether the seed's per-device SVA set-up ran (`sva_enabled`). A group joins the
 * container when its first device file opens (that is when, with iommufd, it is bound to the
 * context and attached to the compatibility IOAS, as the seed's `attach_group` attached it to the
 * container's domain): the container's bonds are then replayed on it. A group leaves when its last
 * device file closes: its bonds are unbound and its SVA set-up shut down; when no group is left the
 * mm list is emptied. When a bound process exits, the seed's `mm_exit` callback drops the mm from
 * the list (and, since this model's SVA core leaves the binding to the driver, unbinds it).
 *
 * The "calling process" of VFIO_IOMMU_BIND is the process that opened the container (the model's
 * ioctl knows no other).
 */

import { ErrnoError, isErrnoError, shouldFail, type UapiStruct } from '@iommu-ts/base';
import { iopfQueueFlushDev } from '@iommu-ts/io-pgfault';
import type { Device } from '@iommu-ts/iommu-core';
import {
  IOMMU_SVA_FEAT_IOPF,
  type IommuSva,
  iommuSvaBindDevice,
  iommuSvaDeviceInit,
  iommuSvaDeviceShutdown,
  iommuSvaGetPasid,
  iommuSvaUnbindDevice,
} from '@iommu-ts/iommu-sva';
import type { IoctlArg, IommufdCtx, UserMemory } from '@iommu-ts/iommufd';
import type { Mm, Process } from '@iommu-ts/mm';
import { withArg } from './struct-arg.js';
import type { VfioDevice, VfioGroup } from './vfio-device.js';
import {
  VFIO_IOMMU_BIND,
  VFIO_IOMMU_BIND_PID,
  VFIO_IOMMU_BIND_PROCESS,
  VFIO_IOMMU_UNBIND,
  type VfioIommuType1BindProcess,
  vfioIommuType1BindProcessStruct,
  vfioIommuType1BindStruct,
} from './vfio-uapi.js';

/** `CAP_SYS_PTRACE` (19): lets `VFIO_IOMMU_BIND_PID` bind a process of another user. */
export const CAP_SYS_PTRACE = 19;

/** `offsetofend(struct vfio_iommu_type1_bind, flags)`. */
const BIND_MINSZ = 8;
/** `sizeof(struct vfio_iommu_type1_bind) + sizeof(struct vfio_iommu_type1_bind_process)`. */
const BIND_PROCESS_MINSZ = BIND_MINSZ + 12;

/**
 * A process address space bound to a container (the seed's `struct vfio_mm`).
 */
export interface VfioMm {
  /** The address space. */
  readonly mm: Mm;
  /** Its PASID on every device of the container. */
  pasid: number;
  /** The SVA binding of each device of the container. */
  readonly bonds: Map<Device, IommuSva>;
}

/** Per group of the container. */
interface SvaGroup {
  /** Open devices of the group bound to the context. */
  readonly devices: Set<VfioDevice>;
  /** `sva_enabled`: `iommuSvaDeviceInit` ran on every device of the group. */
  svaEnabled: boolean;
}

/** The SVA state of one container (`iommu->mm_list` and the SVA part of `vfio_group`). */
class VfioSvaContainer {
  readonly groups = new Map<VfioGroup, SvaGroup>();
  /** `mm_list`, newest first as `list_add` puts them. */
  mms: VfioMm[] = [];
  /** Bonds whose mm exited, still being unbound device by device from `mm_exit`. */
  readonly exiting = new Set<VfioMm>();
}

/** The key of this module's slot in `IommufdCtx.extensions`. */
const SVA_KEY: object = Object.freeze({ name: 'vfio-compat/sva-bind' });

function stateOf(ictx: IommufdCtx): VfioSvaContainer {
  let st = ictx.extensions.get(SVA_KEY) as VfioSvaContainer | undefined;
  if (st === undefined) {
    st = new VfioSvaContainer();
    ictx.extensions.set(SVA_KEY, st);
    ictx.onRelease(() => ictx.extensions.delete(SVA_KEY));
  }
  return st;
}

/**
 * The process address spaces bound to a container with VFIO_IOMMU_BIND, newest first.
 * @param ictx - the container's iommufd context
 * @returns the bonds (mm, PASID, per-device SVA bindings); empty if none
 */
export function vfioIommuBoundMms(ictx: IommufdCtx): readonly VfioMm[] {
  const st = ictx.extensions.get(SVA_KEY) as VfioSvaContainer | undefined;
  return st === undefined ? [] : [...st.mms];
}

/** The seed's `vfio_iommu_mm_exit`: the mm bound at `pasid` is exiting. */
function mmExit(dev: Device, pasid: number, drvdata: unknown): void {
  const st = drvdata as VfioSvaContainer;
  let vmm = st.mms.find((m) => m.pasid === pasid && m.bonds.has(dev));
  if (vmm !== undefined) {
    st.mms = st.mms.filter((m) => m !== vmm);
    st.exiting.add(vmm);
  } else {
    vmm = [...st.exiting].find((m) => m.pasid === pasid && m.bonds.has(dev));
    if (vmm === undefined) return;
  }
  // The device stops using the PASID: its pending page requests are answered, then the binding
  // goes (the seed's core dropped it itself after this callback).
  const sva = vmm.bonds.get(dev) as IommuSva;
  vmm.bonds.delete(dev);
  flushFaults(dev);
  iommuSvaUnbindDevice(sva);
  if (vmm.bonds.size === 0) st.exiting.delete(vmm);
}

function flushFaults(dev: Device): void {
  try {
    iopfQueueFlushDev(dev);
  } catch (e) {
    if (!isErrnoError(e, 'ENODEV')) throw e;
  }
}

function groupDevices(group: VfioGroup): Device[] {
  return group.iommuGroup.devices.map((d) => d.dev);
}

/** `vfio_iommu_sva_shutdown` on every device of the group. */
function svaShutdown(group: VfioGroup): void {
  for (const dev of groupDevices(group)) {
    try {
      iommuSvaDeviceShutdown(dev);
    } catch (e) {
      if (!isErrnoError(e, 'ENODEV')) throw e;
    }
  }
}

/** `vfio_iommu_unbind_group`: drop the bonds of `vmm` on the group's devices. */
function unbindGroup(group: VfioGroup, vmm: VfioMm): void {
  for (const dev of groupDevices(group)) {
    const sva = vmm.bonds.get(dev);
    if (sva === undefined) continue;
    vmm.bonds.delete(dev);
    flushFaults(dev);
    iommuSvaUnbindDevice(sva);
  }
}

/**
 * `vfio_iommu_bind_group`: enable SVA on the group once, then bind its (single) device.
 * @returns whether this call enabled SVA on the group
 */
function bindGroup(st: VfioSvaContainer, group: VfioGroup, g: SvaGroup, vmm: VfioMm): boolean {
  const devs = groupDevices(group);
  let enabledSva = false;
  if (!g.svaEnabled) {
    const done: Device[] = [];
    try {
      for (const dev of devs) {
        iommuSvaDeviceInit(dev, IOMMU_SVA_FEAT_IOPF, 0, mmExit);
        done.push(dev);
      }
    } catch (e) {
      for (const dev of done) iommuSvaDeviceShutdown(dev);
      throw e;
    }
    g.svaEnabled = enabledSva = true;
  }
  try {
    let count = 0;
    for (const dev of devs) {
      if (count++ > 0)
        throw new ErrnoError('EINVAL', `group ${group.id}: SVA is not supported on multi-device groups`);
      const sva = iommuSvaBindDevice(dev, vmm.mm, { drvdata: st });
      vmm.bonds.set(dev, sva);
      vmm.pasid = iommuSvaGetPasid(sva);
    }
    return enabledSva;
  } catch (e) {
    unbindGroup(group, vmm);
    if (enabledSva) {
      svaShutdown(group);
      g.svaEnabled = false;
    }
    throw e;
  }
}

/**
 * Called by the device file at the first open of a device in the context (after bind and attach):
 * the first device of a group makes the group join the container, and the container's bonds are
 * replayed on it (`vfio_iommu_replay_bind`).
 * @param ictx - the context the device is now bound to
 * @param vdev - the device
 * @throws ErrnoError the bind errors of the replay (e.g. `EINVAL` for a multi-device group); the
 *   group's bonds made so far are undone
 * @internal
 */
export function vfioSvaDeviceOpen(ictx: IommufdCtx, vdev: VfioDevice): void {
  const st = stateOf(ictx);
  const cur = st.groups.get(vdev.group);
  if (cur !== undefined) {
    cur.devices.add(vdev);
    return;
  }
  const g: SvaGroup = { devices: new Set([vdev]), svaEnabled: false };
  const done: VfioMm[] = [];
  try {
    for (const vmm of st.mms) {
      // An mm that is exiting is skipped (its mm_exit callback is on the way).
      if (!vmm.mm.mmgetNotZero()) continue;
      try {
        bindGroup(st, vdev.group, g, vmm);
      } finally {
        vmm.mm.mmput();
      }
      done.push(vmm);
    }
  } catch (e) {
    for (const vmm of done.reverse()) unbindGroup(vdev.group, vmm);
    if (g.svaEnabled) svaShutdown(vdev.group);
    throw e;
  }
  st.groups.set(vdev.group, g);
}

/**
 * Called by the device file before the last close of a device unbinds it from the context: the
 * last open device of a group makes the group leave the container (`vfio_iommu_type1_detach_group`
 * with the seed's changes): its bonds are unbound and its SVA set-up shut down; with the last group
 * the mm list is emptied (`vfio_iommu_free_all_mm`).
 * @param ictx - the context the device is bound to
 * @param vdev - the device
 * @internal
 */
export function vfioSvaDeviceClose(ictx: IommufdCtx, vdev: VfioDevice): void {
  const st = ictx.extensions.get(SVA_KEY) as VfioSvaContainer | undefined;
  const g = st?.groups.get(vdev.group);
  if (st === undefined || g === undefined) return;
  g.devices.delete(vdev);
  if (g.devices.size > 0) return;
  for (const vmm of [...st.mms, ...st.exiting]) unbindGroup(vdev.group, vmm);
  for (const vmm of [...st.exiting]) if (vmm.bonds.size === 0) st.exiting.delete(vmm);
  if (g.svaEnabled) svaShutdown(vdev.group);
  st.groups.delete(vdev.group);
  if (st.groups.size === 0) st.mms = [];
}

/**
 * `vfio_iommu_get_mm_by_vpid` (`find_get_task_by_vpid` + `mm_access(task,
 * PTRACE_MODE_ATTACH_REALCREDS)`), or the caller's mm (`get_task_mm(current)`), with a user
 * reference the caller drops.
 */
function getMm(current: Process, params: VfioIommuType1BindProcess): Mm {
  if (params.flags & VFIO_IOMMU_BIND_PID) {
    const task = current.machine.processes.get(params.pid);
    if (task === undefined || task.exited) throw new ErrnoError('ESRCH', `no process ${params.pid}`);
    // __ptrace_may_access: the same task, the same (real) uid, or CAP_SYS_PTRACE.
    if (task !== current && task.uid !== current.uid && !current.capable(CAP_SYS_PTRACE))
      throw new ErrnoError('EACCES', `no ptrace access to process ${params.pid}`);
    const mm = task.mm;
    if (!mm.mmgetNotZero()) throw new ErrnoError('ESRCH', `process ${params.pid} has no mm`);
    return mm;
  }
  if (current.exited) throw new ErrnoError('EINVAL', 'the caller has no mm');
  const mm = current.mm;
  if (!mm.mmgetNotZero()) throw new ErrnoError('EINVAL', 'the caller has no mm');
  return mm;
}

/** Undo every bond of `vmm` (`vfio_iommu_unbind`). */
function unbindAll(st: VfioSvaContainer, vmm: VfioMm): void {
  for (const group of st.groups.keys()) unbindGroup(group, vmm);
}

function bindProcess(
  st: VfioSvaContainer,
  current: Process,
  mem: UserMemory,
  va: bigint,
  params: VfioIommuType1BindProcess,
): number {
  const mm = getMm(current, params);
  try {
    if (st.groups.size === 0) throw new ErrnoError('EINVAL', 'no device in the container');
    const writeBack = (pasid: number): void =>
      mem.write(va + BigInt(BIND_MINSZ), vfioIommuType1BindProcessStruct.encode({ ...params, pasid }));
    const cur = st.mms.find((m) => m.mm === mm);
    if (cur !== undefined) {
      writeBack(cur.pasid);
      return 0;
    }
    if (shouldFail('vfio.mm_alloc')) throw new ErrnoError('ENOMEM', 'injected: vfio_mm allocation');
    const vmm: VfioMm = { mm, pasid: -1, bonds: new Map() };
    // Unlike the seed, a failed bind also shuts down the SVA set-up it enabled on other groups, so
    // that the failure changes nothing.
    const enabled: VfioGroup[] = [];
    const undo = (): void => {
      unbindAll(st, vmm);
      for (const group of enabled) {
        svaShutdown(group);
        (st.groups.get(group) as SvaGroup).svaEnabled = false;
      }
    };
    try {
      for (const [group, g] of st.groups) if (bindGroup(st, group, g, vmm)) enabled.push(group);
    } catch (e) {
      undo();
      throw e;
    }
    st.mms.unshift(vmm);
    try {
      writeBack(vmm.pasid);
    } catch (e) {
      st.mms.shift();
      undo();
      throw e;
    }
    return 0;
  } finally {
    mm.mmput();
  }
}

function unbindProcess(st: VfioSvaContainer, current: Process, params: VfioIommuType1BindProcess): number {
  const mm = getMm(current, params);
  try {
    const vmm = st.mms.find((m) => m.mm === mm);
    if (vmm === undefined) throw new ErrnoError('ESRCH', 'the address space is not bound to the container');
    unbindAll(st, vmm);
    st.mms = st.mms.filter((m) => m !== vmm);
    return 0;
  } finally {
    mm.mmput();
  }
}

/**
 * VFIO_IOMMU_BIND / VFIO_IOMMU_UNBIND on a container (the seed's `vfio_iommu_type1_ioctl` cases,
 * `vfio_iommu_type1_bind_process` and `vfio_iommu_type1_unbind_process`), called from the
 * container's ioctl fallback.
 *
 * Order of checks: copy the 8-byte `vfio_iommu_type1_bind` (`EFAULT`); `argsz` below 8 or `flags`
 * other than `VFIO_IOMMU_BIND_PROCESS` → `EINVAL`; `argsz` below 20 → `EINVAL`; copy the
 * `vfio_iommu_type1_bind_process` at byte 8 (`EFAULT`); its flags other than `VFIO_IOMMU_BIND_PID`
 * → `EINVAL`; with BIND_PID, no such process → `ESRCH`, no ptrace-attach permission (another uid
 * without `CAP_SYS_PTRACE`) → `EACCES`. BIND: no device in the container → `EINVAL`; an mm
 * already bound → its PASID again; else every group of the container is bound (a multi-device
 * group → `EINVAL`, and the SVA errors of `iommuSvaBindDevice`), all undone on failure; `pasid` is
 * written back (`EFAULT` undoes the bind). UNBIND: an mm not bound → `ESRCH`.
 *
 * @param ictx - the container's iommufd context
 * @param request - `VFIO_IOMMU_BIND` or `VFIO_IOMMU_UNBIND`
 * @param arg - the user address of a `vfio_iommu_type1_bind` followed by a
 *   `vfio_iommu_type1_bind_process`, or an object `{ argsz, flags, data: { flags, pasid, pid } }`
 *   (`data.pasid` is written back; a missing `data` is added)
 * @param userMemory - the caller's memory
 * @returns 0
 * @throws ErrnoError `ENOTTY` for other requests, and the errnos above; nothing changes on failure
 */
export function vfioIommuBind(
  ictx: IommufdCtx,
  request: number,
  arg: IoctlArg,
  userMemory: UserMemory,
): number {
  const req = request >>> 0;
  const bind = req === VFIO_IOMMU_BIND >>> 0;
  if (!bind && req !== VFIO_IOMMU_UNBIND >>> 0)
    throw new ErrnoError('ENOTTY', `no ioctl 0x${req.toString(16)}`);
  const parts = (obj: object) => {
    const o = obj as { data?: object };
    if (typeof o.data !== 'object' || o.data === null) o.data = {};
    return [
      { struct: vfioIommuType1BindStruct as UapiStruct<object>, value: obj, offset: 0 },
      { struct: vfioIommuType1BindProcessStruct as UapiStruct<object>, value: o.data, offset: BIND_MINSZ },
    ];
  };
  return withArg(arg, userMemory, parts, (mem, va) => {
    const hdr = vfioIommuType1BindStruct.decode(mem.read(va, BIND_MINSZ));
    if (hdr.argsz < BIND_MINSZ) throw new ErrnoError('EINVAL', `argsz ${hdr.argsz} below ${BIND_MINSZ}`);
    if (hdr.flags !== VFIO_IOMMU_BIND_PROCESS)
      throw new ErrnoError('EINVAL', `bind flags 0x${hdr.flags.toString(16)}`);
    if (hdr.argsz < BIND_PROCESS_MINSZ)
      throw new ErrnoError('EINVAL', `argsz ${hdr.argsz} below ${BIND_PROCESS_MINSZ}`);
    const params = vfioIommuType1BindProcessStruct.decode(mem.read(va + BigInt(BIND_MINSZ), 12));
    if (params.flags & ~VFIO_IOMMU_BIND_PID)
      throw new ErrnoError('EINVAL', `bind_process flags 0x${params.flags.toString(16)}`);
    const st = stateOf(ictx);
    return bind ? bindProcess(st, ictx.process, mem, va, params) : unbindProcess(st, ictx.process, params);
  });
}
