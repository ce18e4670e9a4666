// Acceptance 3 of issue 10 (helper V2): the seed's VFIO_IOMMU_BIND / VFIO_IOMMU_UNBIND on an
// iommufd-backed container, end to end with a PASID + PRI capable PCI function behind the test
// IOMMU: the device DMAs on process pointers through the returned PASID.

import { DmaFaultError, type PciDevice } from '@iommu-ts/iommu-core';
import { IOMMU_SVA_FEAT_IOPF, iommuSvaDeviceInit, iommuSvaDeviceShutdown } from '@iommu-ts/iommu-sva';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, type Process } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { openVfioContainer } from './container.js';
import { CAP_SYS_PTRACE, vfioIommuBoundMms } from './sva-bind.js';
import { errnoOf, setup } from './vfio.test-helpers.js';
import {
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_BIND,
  VFIO_IOMMU_BIND_PID,
  VFIO_IOMMU_BIND_PROCESS,
  VFIO_IOMMU_UNBIND,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from './vfio-uapi.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

type World = ReturnType<typeof world>;

/** A container with `devices` SVA-capable functions, each in its own group, opened by `caller`. */
function world(opts: { devices?: number; caller?: { uid?: number; capabilities?: number[] } } = {}) {
  const s = setup();
  const devs: PciDevice[] = [];
  for (let i = 0; i < (opts.devices ?? 1); i++) devs.push(s.fn({ sva: true }));
  const caller = s.proc(opts.caller ?? {});
  const container = openVfioContainer({ iommu: s.iommu, process: caller });
  const groups = devs.map((d) => s.vfio.openGroup(caller, d.iommuGroup!.id));
  for (const g of groups) g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: container.fd });
  container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
  const open = (i: number) => groups[i]!.ioctl(VFIO_GROUP_GET_DEVICE_FD, devs[i]!.name);
  return { ...s, devs, caller, container, groups, open };
}

function bindArg(flags = 0, pid = 0) {
  return { argsz: 20, flags: VFIO_IOMMU_BIND_PROCESS, data: { flags, pasid: 0, pid } };
}

function bind(w: World, flags = 0, pid = 0): number {
  const arg = bindArg(flags, pid);
  expect(w.container.ioctl(VFIO_IOMMU_BIND, arg)).toBe(0);
  return arg.data.pasid;
}

/** Everything SVA-related that a failed call must leave alone. */
function snapshot(w: World) {
  return {
    mms: vfioIommuBoundMms(w.container.ctx).map((m) => [m.pasid, m.bonds.size]),
    pasids: w.devs.map((d) => [...d.iommuGroup!.pasidArray.keys()]),
    calls: w.drv.calls.filter((c) => c.op !== 'page_response').length,
  };
}

/** Whether the seed's per-device SVA init is in place (a second init is EEXIST). */
function svaInitialised(dev: PciDevice): boolean {
  const r = errnoOf(() => iommuSvaDeviceInit(dev, IOMMU_SVA_FEAT_IOPF, 0, null));
  if (r === 'ok') iommuSvaDeviceShutdown(dev);
  return r === 'EEXIST';
}

function buffer(p: Process, len = 0x3000): bigint {
  return p.mmap(BigInt(len), RW, ANON); // untouched: the device's accesses fault in through PRI
}

describe('VFIO_IOMMU_BIND of the calling process', () => {
  it('returns the mm PASID; the device DMAs on process pointers, pages faulted in through PRI', () => {
    const w = world();
    w.open(0);
    const va = buffer(w.caller);
    const pasid = bind(w);
    expect(pasid).toBeGreaterThan(0);
    expect(w.devs[0]!.iommuGroup!.pasidArray.has(pasid)).toBe(true);
    const ep = w.endpoint(w.devs[0]!);
    const data = new Uint8Array(0x2200).map((_, i) => (i * 13) & 0xff);
    const t = ep.dmaWrite(va + 0x600n, data, { pasid });
    t.wait();
    expect(t.priRounds).toBeGreaterThan(0);
    expect(w.caller.read(Number(va) + 0x600, data.length)).toEqual(data);
    // The process writes, the device reads through the same PASID.
    w.caller.write(Number(va), new Uint8Array([1, 2, 3]));
    expect([...ep.readSync(va, 3, { pasid })]).toEqual([1, 2, 3]);
    // RID DMA still goes through the (empty) compatibility IOAS: the process pointer is no IOVA.
    expect(() => ep.readSync(va, 1)).toThrow(DmaFaultError);
    expect(vfioIommuBoundMms(w.container.ctx).map((m) => m.mm)).toEqual([w.caller.mm]);
  });

  it('binding again gives the same PASID and no new binding; UNBIND stops the device', () => {
    const w = world();
    w.open(0);
    const va = buffer(w.caller);
    const pasid = bind(w);
    const calls = snapshot(w).calls;
    expect(bind(w)).toBe(pasid);
    expect(snapshot(w).calls).toBe(calls);
    const unbindArg = bindArg();
    expect(w.container.ioctl(VFIO_IOMMU_UNBIND, unbindArg)).toBe(0);
    expect(unbindArg.data.pasid).toBe(0); // UNBIND writes nothing back
    expect(w.devs[0]!.iommuGroup!.pasidArray.has(pasid)).toBe(false);
    expect(vfioIommuBoundMms(w.container.ctx)).toEqual([]);
    const t = w.endpoint(w.devs[0]!).dmaWrite(va, new Uint8Array([9]), { pasid });
    w.sched.runUntilIdle();
    expect(t.fault).toBeDefined();
    expect(errnoOf(() => w.container.ioctl(VFIO_IOMMU_UNBIND, bindArg()))).toBe('ESRCH');
    // The mm keeps its PASID: a new bind gets it back.
    expect(bind(w)).toBe(pasid);
  });

  it('pointer form: pasid written at byte 12, nothing else; read-only struct → EFAULT and the bind undone', () => {
    const w = world();
    w.open(0);
    const p = w.caller;
    const va = p.mmap(0x1000n, RW, ANON);
    const bytes = new Uint8Array(24).fill(0xee);
    bytes.set([20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    p.write(Number(va), bytes);
    expect(w.container.ioctl(VFIO_IOMMU_BIND, va)).toBe(0);
    const pasid = vfioIommuBoundMms(w.container.ctx)[0]!.pasid;
    const got = p.read(Number(va), 24);
    expect([...got]).toEqual([
      20,
      0,
      0,
      0,
      1,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      pasid & 0xff,
      (pasid >> 8) & 0xff,
      0,
      0,
      0,
      0,
      0,
      0,
      0xee,
      0xee,
      0xee,
      0xee,
    ]);
    w.container.ioctl(VFIO_IOMMU_UNBIND, va);
    const before = snapshot(w);
    p.mprotect(Number(va), 0x1000, PROT_READ);
    expect(errnoOf(() => w.container.ioctl(VFIO_IOMMU_BIND, va))).toBe('EFAULT');
    expect(snapshot(w)).toEqual({ ...before, calls: snapshot(w).calls });
    expect(vfioIommuBoundMms(w.container.ctx)).toEqual([]);
    expect(w.devs[0]!.iommuGroup!.pasidArray.has(pasid)).toBe(false);
  });

  it('argument errnos in the seed order; each failure changes nothing', () => {
    const w = world();
    w.open(0);
    const p = w.caller;
    const before = snapshot(w);
    const c = w.container;
    const e = (req: number, arg: object | bigint) => errnoOf(() => c.ioctl(req, arg));
    for (const req of [VFIO_IOMMU_BIND, VFIO_IOMMU_UNBIND]) {
      expect(e(req, { argsz: 7, flags: VFIO_IOMMU_BIND_PROCESS })).toBe('EINVAL');
      expect(e(req, { argsz: 20, flags: 0 })).toBe('EINVAL');
      expect(e(req, { argsz: 20, flags: 3 })).toBe('EINVAL');
      expect(e(req, { argsz: 19, flags: VFIO_IOMMU_BIND_PROCESS })).toBe('EINVAL');
      expect(e(req, { argsz: 20, flags: VFIO_IOMMU_BIND_PROCESS, data: { flags: 2 } })).toBe('EINVAL');
      expect(e(req, 0n)).toBe('EFAULT');
      // Header readable, payload past the end of the mapping: EFAULT after the argsz checks.
      const va = p.mmap(0x2000n, RW, ANON);
      p.munmap(Number(va) + 0x1000, 0x1000);
      p.write(Number(va) + 0xff8, new Uint8Array([20, 0, 0, 0, 1, 0, 0, 0]));
      expect(e(req, va + 0xff8n)).toBe('EFAULT');
      p.write(Number(va) + 0xff8, new Uint8Array([19, 0, 0, 0, 1, 0, 0, 0]));
      expect(e(req, va + 0xff8n)).toBe('EINVAL');
      expect(e(req, bindArg(VFIO_IOMMU_BIND_PID, 4242))).toBe('ESRCH');
    }
    expect(snapshot(w)).toEqual(before);
  });

  it('EINVAL without a device in the container (a group set but no device opened)', () => {
    const w = world();
    const before = snapshot(w);
    expect(errnoOf(() => w.container.ioctl(VFIO_IOMMU_BIND, bindArg()))).toBe('EINVAL');
    expect(snapshot(w)).toEqual(before);
    expect(svaInitialised(w.devs[0]!)).toBe(false);
  });

  it('the SVA errors of the device are returned and undone: no PRI → EINVAL, SVA init rolled back', () => {
    const s = setup();
    const dev = s.fn({ sva: false }); // no PASID, no PRI
    const p = s.proc();
    const c = openVfioContainer({ iommu: s.iommu, process: p });
    const g = s.vfio.openGroup(p, dev.iommuGroup!.id);
    g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd });
    g.ioctl(VFIO_GROUP_GET_DEVICE_FD, dev.name);
    const code = errnoOf(() => c.ioctl(VFIO_IOMMU_BIND, bindArg()));
    expect(['EINVAL', 'ENOSPC']).toContain(code);
    expect(vfioIommuBoundMms(c.ctx)).toEqual([]);
    expect(svaInitialised(dev)).toBe(false);
    expect([...dev.iommuGroup!.pasidArray.keys()].filter((k) => k !== 0)).toEqual([]);
  });
});

describe('VFIO_IOMMU_BIND_PID', () => {
  it('binds another process of the same user; two processes get two PASIDs', () => {
    const w = world({ caller: { uid: 1000, capabilities: [] } });
    w.open(0);
    const other = w.proc({ uid: 1000, capabilities: [] });
    const va = buffer(other);
    const mine = bind(w);
    const theirs = bind(w, VFIO_IOMMU_BIND_PID, other.pid);
    expect(theirs).not.toBe(mine);
    const ep = w.endpoint(w.devs[0]!);
    ep.writeSync(va, new Uint8Array([0x5a, 0xa5]), { pasid: theirs });
    expect([...other.read(Number(va), 2)]).toEqual([0x5a, 0xa5]);
    // BIND_PID with the caller's own pid is the caller's mm.
    expect(bind(w, VFIO_IOMMU_BIND_PID, w.caller.pid)).toBe(mine);
    expect(vfioIommuBoundMms(w.container.ctx).map((m) => m.pasid)).toEqual([theirs, mine]);
    // UNBIND needs the same pid.
    w.container.ioctl(VFIO_IOMMU_UNBIND, bindArg(VFIO_IOMMU_BIND_PID, other.pid));
    expect(vfioIommuBoundMms(w.container.ctx).map((m) => m.pasid)).toEqual([mine]);
  });

  it('another user: EACCES without CAP_SYS_PTRACE, allowed with it', () => {
    const w = world({ caller: { uid: 1000, capabilities: [] } });
    w.open(0);
    const stranger = w.proc({ uid: 1001 });
    const before = snapshot(w);
    expect(
      errnoOf(() => w.container.ioctl(VFIO_IOMMU_BIND, bindArg(VFIO_IOMMU_BIND_PID, stranger.pid))),
    ).toBe('EACCES');
    expect(
      errnoOf(() => w.container.ioctl(VFIO_IOMMU_UNBIND, bindArg(VFIO_IOMMU_BIND_PID, stranger.pid))),
    ).toBe('EACCES');
    expect(snapshot(w)).toEqual(before);

    const w2 = world({ caller: { uid: 1000, capabilities: [CAP_SYS_PTRACE] } });
    w2.open(0);
    const stranger2 = w2.proc({ uid: 1001 });
    const va = buffer(stranger2);
    const pasid = bind(w2, VFIO_IOMMU_BIND_PID, stranger2.pid);
    w2.endpoint(w2.devs[0]!).writeSync(va, new Uint8Array([7]), { pasid });
    expect([...stranger2.read(Number(va), 1)]).toEqual([7]);
  });

  it('a process that exited is ESRCH', () => {
    const w = world();
    w.open(0);
    const gone = w.proc();
    gone.exit();
    expect(errnoOf(() => w.container.ioctl(VFIO_IOMMU_BIND, bindArg(VFIO_IOMMU_BIND_PID, gone.pid)))).toBe(
      'ESRCH',
    );
  });
});

describe('bond lifetime', () => {
  it('process exit runs mm_exit: the bond is dropped, the PASID detached, later DMA refused', () => {
    const w = world();
    w.open(0);
    const worker = w.proc();
    const va = buffer(worker);
    const pasid = bind(w, VFIO_IOMMU_BIND_PID, worker.pid);
    const mine = bind(w);
    const ep = w.endpoint(w.devs[0]!);
    ep.writeSync(va, new Uint8Array([1]), { pasid });
    const mm = worker.mm;
    worker.exit();
    expect(vfioIommuBoundMms(w.container.ctx).map((m) => m.pasid)).toEqual([mine]);
    expect(w.devs[0]!.iommuGroup!.pasidArray.has(pasid)).toBe(false);
    expect(w.devs[0]!.iommuGroup!.pasidArray.has(mine)).toBe(true);
    expect(mm.count).toBe(0); // nothing holds the dead mm any more
    const t = ep.dmaRead(va, 1, { pasid });
    w.sched.runUntilIdle();
    expect(t.fault).toBeDefined();
    expect(
      errnoOf(() => w.container.ioctl(VFIO_IOMMU_UNBIND, bindArg(VFIO_IOMMU_BIND_PID, worker.pid))),
    ).toBe('ESRCH');
  });

  it('a group whose first device opens later gets the bonds replayed; its last close unbinds only it', () => {
    const w = world({ devices: 2 });
    w.open(0);
    const va = buffer(w.caller);
    const pasid = bind(w);
    expect(w.devs[1]!.iommuGroup!.pasidArray.has(pasid)).toBe(false);
    const fd1 = w.open(1);
    expect(w.devs[1]!.iommuGroup!.pasidArray.has(pasid)).toBe(true);
    expect(vfioIommuBoundMms(w.container.ctx)[0]!.bonds.size).toBe(2);
    w.endpoint(w.devs[1]!).writeSync(va + 0x1000n, new Uint8Array([0x11]), { pasid });
    expect([...w.caller.read(Number(va) + 0x1000, 1)]).toEqual([0x11]);
    w.caller.close(fd1);
    expect(w.devs[1]!.iommuGroup!.pasidArray.has(pasid)).toBe(false);
    expect(svaInitialised(w.devs[1]!)).toBe(false);
    expect(w.devs[0]!.iommuGroup!.pasidArray.has(pasid)).toBe(true);
    expect(svaInitialised(w.devs[0]!)).toBe(true);
    expect(w.devs[1]!.iommuGroup!.owner).toBeNull();
  });

  it('a failed replay (a multi-device group) fails the device open and leaves nothing behind', () => {
    const s = setup();
    const solo = s.fn({ sva: true });
    // Two functions of one multifunction device without ACS: one IOMMU group.
    const f0 = s.fn({ sva: true, acs: false, devfn: 0x60, multifunction: true });
    const f1 = s.fn({ sva: true, acs: false, devfn: 0x61, multifunction: true });
    expect(f0.iommuGroup).toBe(f1.iommuGroup);
    const p = s.proc();
    const c = openVfioContainer({ iommu: s.iommu, process: p });
    const g0 = s.vfio.openGroup(p, solo.iommuGroup!.id);
    const g1 = s.vfio.openGroup(p, f0.iommuGroup!.id);
    g0.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd });
    g1.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd });
    g0.ioctl(VFIO_GROUP_GET_DEVICE_FD, solo.name);
    const arg = bindArg();
    c.ioctl(VFIO_IOMMU_BIND, arg);
    const fds = p.files.fds();
    expect(errnoOf(() => g1.ioctl(VFIO_GROUP_GET_DEVICE_FD, f0.name))).toBe('EINVAL');
    expect(p.files.fds()).toEqual(fds);
    expect(s.vfio.device(f0)!.openCount).toBe(0);
    expect(f0.iommuGroup!.owner).toBeNull();
    expect([...f0.iommuGroup!.pasidArray.keys()]).toEqual([]);
    expect(svaInitialised(f0)).toBe(false);
    expect(svaInitialised(f1)).toBe(false);
    // A bind with the multi-device group in the container is EINVAL too; the solo bond stays.
    c.ioctl(VFIO_IOMMU_UNBIND, bindArg());
    const fd = g1.ioctl(VFIO_GROUP_GET_DEVICE_FD, f0.name);
    // (UNBIND keeps the solo group's SVA set-up, as the seed does until the group leaves.)
    expect(svaInitialised(solo)).toBe(true);
    expect(errnoOf(() => c.ioctl(VFIO_IOMMU_BIND, bindArg()))).toBe('EINVAL');
    expect(vfioIommuBoundMms(c.ctx)).toEqual([]);
    expect([...solo.iommuGroup!.pasidArray.keys()].filter((k) => k !== 0)).toEqual([]);
    expect(svaInitialised(solo)).toBe(true);
    expect(svaInitialised(f0)).toBe(false);
    expect(svaInitialised(f1)).toBe(false);
    p.close(fd);
  });

  it('container close unbinds: the bonds live while a device is open, and go with it', () => {
    const w = world();
    const dfd = w.open(0);
    const va = buffer(w.caller);
    const pasid = bind(w);
    const ep = w.endpoint(w.devs[0]!);
    const ctx = w.container.ctx;
    w.container.close();
    w.groups[0]!.close();
    // The device file still holds the context (and the group): the bond is still there.
    ep.writeSync(va, new Uint8Array([3]), { pasid });
    expect(vfioIommuBoundMms(ctx)).toHaveLength(1);
    w.caller.close(dfd);
    expect(ctx.isReleased).toBe(true);
    expect(vfioIommuBoundMms(ctx)).toEqual([]);
    expect(w.devs[0]!.iommuGroup!.pasidArray.size).toBe(0);
    expect(w.devs[0]!.iommuGroup!.owner).toBeNull();
    expect(svaInitialised(w.devs[0]!)).toBe(false);
    expect(w.drv.calls.filter((c) => c.op === 'domain_free').length).toBeGreaterThan(0);
    // (A page the device never touched: the test driver's PASID detach leaves the device's ATC
    // entries alone.)
    const t = ep.dmaRead(va + 0x2000n, 1, { pasid });
    w.sched.runUntilIdle();
    expect(t.fault).toBeDefined();
  });

  it('the calling process exiting closes everything and drops its own bond', () => {
    const w = world();
    w.open(0);
    const pasid = bind(w);
    const mm = w.caller.mm;
    w.caller.exit();
    expect(w.container.ctx.isReleased).toBe(true);
    expect(w.devs[0]!.iommuGroup!.pasidArray.has(pasid)).toBe(false);
    expect(w.devs[0]!.iommuGroup!.owner).toBeNull();
    expect(mm.count).toBe(0);
  });
});
