// VFIO groups and device files over an iommufd container (helper V2): every group and device ioctl
// with its errnos, the fd-table integration, and failed calls leaving everything as it was.

import {
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  Iommufd,
  type IommufdHwptPaging,
  iommufdDeviceBind,
  iommufdDeviceUnbind,
} from '@iommu-ts/iommufd';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { openVfioContainer } from './container.js';
import { vfioDeviceFileOf } from './device-file.js';
import { errnoOf, setup } from './vfio.test-helpers.js';
import {
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_INFO,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_GET_INFO,
} from './vfio-uapi.js';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function world() {
  const s = setup();
  const pdev = s.fn();
  const p = s.proc();
  const groupId = pdev.iommuGroup!.id;
  return { ...s, pdev, p, groupId };
}

/** A user buffer of `len` bytes filled with 0xee. */
function userBuf(p: ReturnType<typeof world>['p'], len = 0x1000): bigint {
  const va = p.mmap(BigInt(len), RW, ANON);
  p.write(Number(va), new Uint8Array(len).fill(0xee));
  return va;
}

function le32(v: number): Uint8Array {
  return new Uint8Array(new Uint32Array([v >>> 0]).buffer);
}

describe('VfioSubsystem: registration and /dev/vfio/$GROUP', () => {
  it('registers devices per IOMMU group and refuses a device without a group or twice', () => {
    const s = setup();
    const a = s.fn();
    expect(s.vfio.device(a)?.name).toBe(a.name);
    expect(s.vfio.group(a.iommuGroup!.id)?.devices.map((d) => d.dev)).toEqual([a]);
    expect(errnoOf(() => s.vfio.registerDevice(a, { flags: VFIO_DEVICE_FLAGS_PCI }))).toBe('EEXIST');
    const lone = s.hb.rootBus.addDevice({ devfn: 0x70 }); // never probed: no IOMMU group
    expect(errnoOf(() => s.vfio.registerDevice(lone, { flags: VFIO_DEVICE_FLAGS_PCI }))).toBe('EINVAL');
    expect(s.vfio.groups().map((g) => g.id)).toEqual([a.iommuGroup!.id]);
  });

  it('opens a group once, installs it in the fd table, and frees the slot on close', () => {
    const { vfio, p, groupId } = world();
    const before = p.files.size;
    const g = vfio.openGroup(p, groupId);
    expect(p.files.size).toBe(before + 1);
    expect(p.getFile(g.fd)).toBeDefined();
    expect(errnoOf(() => vfio.openGroup(p, groupId))).toBe('EBUSY');
    expect(errnoOf(() => vfio.openGroup(p, 9999))).toBe('ENOENT');
    g.close();
    expect(p.files.size).toBe(before);
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_STATUS, { argsz: 8 }))).toBe('EBADF');
    expect(errnoOf(() => g.close())).toBe('EBADF');
    const again = vfio.openGroup(p, groupId);
    expect(again.fd).toBe(g.fd);
    p.close(again.fd); // close through the process is the same as file.close()
    expect(again.isClosed).toBe(true);
  });

  it('unknown group requests are ENOTTY, container requests on a group file too', () => {
    const { vfio, p, groupId } = world();
    const g = vfio.openGroup(p, groupId);
    expect(errnoOf(() => g.ioctl(VFIO_GET_API_VERSION))).toBe('ENOTTY');
    expect(errnoOf(() => g.ioctl(VFIO_IOMMU_GET_INFO, { argsz: 24 }))).toBe('ENOTTY');
    expect(errnoOf(() => g.ioctl(VFIO_DEVICE_GET_INFO, { argsz: 24 }))).toBe('ENOTTY');
  });

  it('unregister: EBUSY while a device file is open; the group goes with its last device', () => {
    const { vfio, p, groupId, pdev, iommu } = world();
    const c = openVfioContainer({ iommu, process: p });
    const g = vfio.openGroup(p, groupId);
    g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd });
    const dfd = g.ioctl(VFIO_GROUP_GET_DEVICE_FD, pdev.name);
    const vdev = vfio.device(pdev)!;
    expect(errnoOf(() => vfio.unregisterDevice(vdev))).toBe('EBUSY');
    p.close(dfd);
    vfio.unregisterDevice(vdev);
    expect(vfio.group(groupId)).toBeUndefined();
    expect(errnoOf(() => vfio.unregisterDevice(vdev))).toBe('ENODEV');
    // The still-open group file answers ENODEV.
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_STATUS, { argsz: 8 }))).toBe('ENODEV');
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_DEVICE_FD, pdev.name))).toBe('ENODEV');
    expect(errnoOf(() => vfio.openGroup(p, groupId))).toBe('ENOENT');
  });
});

describe('VFIO_GROUP_GET_STATUS', () => {
  it('VIABLE alone before SET_CONTAINER, CONTAINER_SET|VIABLE after, VIABLE again after UNSET', () => {
    const { vfio, p, groupId, iommu } = world();
    const g = vfio.openGroup(p, groupId);
    const st = { argsz: 8, flags: 0xff };
    expect(g.ioctl(VFIO_GROUP_GET_STATUS, st)).toBe(0);
    expect(st).toEqual({ argsz: 8, flags: VFIO_GROUP_FLAGS_VIABLE });
    const c = openVfioContainer({ iommu, process: p });
    g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd });
    g.ioctl(VFIO_GROUP_GET_STATUS, st);
    expect(st.flags).toBe(VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
    g.ioctl(VFIO_GROUP_UNSET_CONTAINER);
    g.ioctl(VFIO_GROUP_GET_STATUS, st);
    expect(st.flags).toBe(VFIO_GROUP_FLAGS_VIABLE);
  });

  it('not viable while another owner (a kernel driver, another iommufd) holds DMA ownership', () => {
    const { vfio, p, groupId, iommu, pdev } = world();
    const other = Iommufd.open({ iommu, process: p });
    const idev = iommufdDeviceBind(other.ctx, pdev);
    const g = vfio.openGroup(p, groupId);
    const st = { argsz: 8 };
    g.ioctl(VFIO_GROUP_GET_STATUS, st);
    expect(st).toEqual({ argsz: 8, flags: 0 });
    iommufdDeviceUnbind(idev);
    g.ioctl(VFIO_GROUP_GET_STATUS, st);
    expect(st).toEqual({ argsz: 8, flags: VFIO_GROUP_FLAGS_VIABLE });
  });

  it('pointer form: writes exactly 8 bytes (argsz kept); argsz below 8 EINVAL with nothing written; EFAULT', () => {
    const { vfio, p, groupId } = world();
    const g = vfio.openGroup(p, groupId);
    const va = userBuf(p);
    p.write(Number(va), le32(100));
    expect(g.ioctl(VFIO_GROUP_GET_STATUS, va)).toBe(0);
    expect([...p.read(Number(va), 12)]).toEqual([100, 0, 0, 0, 1, 0, 0, 0, 0xee, 0xee, 0xee, 0xee]);
    p.write(Number(va), new Uint8Array([7, 0, 0, 0, 0xaa, 0xaa, 0xaa, 0xaa]));
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_STATUS, va))).toBe('EINVAL');
    expect([...p.read(Number(va), 8)]).toEqual([7, 0, 0, 0, 0xaa, 0xaa, 0xaa, 0xaa]);
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_STATUS, 0n))).toBe('EFAULT');
    // The struct straddling the end of a mapping: 4 readable bytes are not enough.
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_STATUS, va + 0xffcn))).toBe('EFAULT');
    // Object form with argsz left out reads as 0.
    const st: { argsz?: number; flags?: number } = {};
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_STATUS, st))).toBe('EINVAL');
    expect(st).toEqual({});
  });
});

describe('VFIO_GROUP_SET_CONTAINER / UNSET_CONTAINER', () => {
  it('sets an iommufd container: creates the compatibility IOAS and holds a context reference', () => {
    const { vfio, p, groupId, iommu } = world();
    const c = openVfioContainer({ iommu, process: p });
    const g = vfio.openGroup(p, groupId);
    expect(c.ctx.vfioIoas).toBeNull();
    expect(g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd })).toBe(0);
    expect(c.ctx.vfioIoas).not.toBeNull();
    const get = { size: 12, ioas_id: 0, op: IOMMU_VFIO_IOAS_GET };
    c.ioctl(IOMMU_VFIO_IOAS, get);
    expect(get.ioas_id).toBe(c.ctx.vfioIoas!.id);
    expect(vfio.group(groupId)!.iommufd).toBe(c.ctx);
    // The container fd closes; the group keeps the context alive until UNSET.
    c.close();
    expect(c.ctx.isReleased).toBe(false);
    g.ioctl(VFIO_GROUP_UNSET_CONTAINER);
    expect(c.ctx.isReleased).toBe(true);
  });

  it('takes a pointer to an int; a plain /dev/iommu fd works too; the group file release drops the reference', () => {
    const { vfio, p, groupId, iommu } = world();
    const c = Iommufd.open({ iommu, process: p });
    const g = vfio.openGroup(p, groupId);
    const va = userBuf(p);
    p.write(Number(va), le32(c.fd));
    expect(g.ioctl(VFIO_GROUP_SET_CONTAINER, va)).toBe(0);
    expect(c.ctx.vfioIoas).not.toBeNull();
    c.close();
    expect(c.ctx.isReleased).toBe(false);
    g.close();
    expect(c.ctx.isReleased).toBe(true);
  });

  it('errnos in order: EFAULT, EBADF, EINVAL (already set), EBADFD (not an iommufd); failures change nothing', () => {
    const { vfio, p, groupId, iommu } = world();
    const c = openVfioContainer({ iommu, process: p });
    const g = vfio.openGroup(p, groupId);
    const group = vfio.group(groupId)!;
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_SET_CONTAINER, 0n))).toBe('EFAULT');
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: 77 }))).toBe('EBADF');
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: -1 }))).toBe('EBADF');
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: g.fd }))).toBe('EBADFD');
    expect(group.iommufd).toBeNull();
    expect(c.ctx.vfioIoas).toBeNull();
    g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd });
    const ioas = c.ctx.vfioIoas;
    const c2 = openVfioContainer({ iommu, process: p });
    // EINVAL comes before the fd's type is looked at, but after EBADF.
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c2.fd }))).toBe('EINVAL');
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: g.fd }))).toBe('EINVAL');
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: 99 }))).toBe('EBADF');
    expect(group.iommufd).toBe(c.ctx);
    expect(c.ctx.vfioIoas).toBe(ioas);
    expect(c2.ctx.vfioIoas).toBeNull();
    // c2 took no reference: closing it releases its context.
    c2.close();
    expect(c2.ctx.isReleased).toBe(true);
  });

  it('keeps an IOAS chosen with IOMMU_VFIO_IOAS SET instead of creating one', () => {
    const { vfio, p, groupId, iommu } = world();
    const c = openVfioContainer({ iommu, process: p });
    const alloc = { size: 12, flags: 0, out_ioas_id: 0 };
    c.ioctl(0x3b81, alloc); // IOMMU_IOAS_ALLOC
    c.ioctl(IOMMU_VFIO_IOAS, { size: 12, ioas_id: alloc.out_ioas_id, op: 1 });
    const g = vfio.openGroup(p, groupId);
    g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd });
    expect(c.ctx.vfioIoas!.id).toBe(alloc.out_ioas_id);
    expect(c.ctx.listObjects()).toHaveLength(1);
  });

  it('UNSET_CONTAINER without a container is EINVAL and changes nothing', () => {
    const { vfio, p, groupId } = world();
    const g = vfio.openGroup(p, groupId);
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_UNSET_CONTAINER))).toBe('EINVAL');
    const st = { argsz: 8 };
    g.ioctl(VFIO_GROUP_GET_STATUS, st);
    expect(st).toEqual({ argsz: 8, flags: VFIO_GROUP_FLAGS_VIABLE });
  });
});

describe('VFIO_GROUP_GET_DEVICE_FD and the device file', () => {
  function ready() {
    const w = world();
    const c = openVfioContainer({ iommu: w.iommu, process: w.p });
    const g = w.vfio.openGroup(w.p, w.groupId);
    return { ...w, c, g };
  }

  it('binds to the container, attaches to the compatibility IOAS and returns the lowest free fd', () => {
    const { vfio, p, c, g, pdev } = ready();
    g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd });
    const expectedFd = Math.max(c.fd, g.fd) + 1;
    const fd = g.ioctl(VFIO_GROUP_GET_DEVICE_FD, pdev.name);
    expect(fd).toBe(expectedFd);
    expect(p.files.fds()).toContain(fd);
    const vdev = vfio.device(pdev)!;
    expect(vdev.openCount).toBe(1);
    const idev = vdev.iommufdDevice!;
    expect(idev.ictx).toBe(c.ctx);
    expect((idev.hwpt as IommufdHwptPaging).ioas).toBe(c.ctx.vfioIoas);
    expect(pdev.iommuGroup!.owner).toBe(c.ctx);
    // A second open shares the binding.
    const fd2 = g.ioctl(VFIO_GROUP_GET_DEVICE_FD, pdev.name);
    expect(vdev.openCount).toBe(2);
    expect(vdev.iommufdDevice).toBe(idev);
    p.close(fd);
    expect(vdev.iommufdDevice).toBe(idev);
    p.close(fd2);
    expect(vdev.iommufdDevice).toBeNull();
    expect(vdev.openCount).toBe(0);
    expect(pdev.iommuGroup!.owner).toBeNull();
    expect(pdev.iommuGroup!.domain).toBe(pdev.iommuGroup!.defaultDomain);
    expect(c.ctx.listObjects().map((o) => o.type)).toEqual([4]); // only the IOAS is left
  });

  it('the name may be a user pointer to a NUL-terminated string, read across a page boundary', () => {
    const { p, c, g, pdev, vfio } = ready();
    g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd });
    const va = userBuf(p, 0x2000);
    const name = new TextEncoder().encode(`${pdev.name}\0`);
    const at = va + 0x1000n - 5n;
    p.write(Number(at), name);
    const fd = g.ioctl(VFIO_GROUP_GET_DEVICE_FD, at);
    expect(vfio.device(pdev)!.openCount).toBe(1);
    p.close(fd);
    // No NUL within PAGE_SIZE bytes: EINVAL; a string running into an unmapped page: EFAULT.
    p.write(Number(va), new Uint8Array(0x2000).fill(0x41));
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_DEVICE_FD, va))).toBe('EINVAL');
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_DEVICE_FD, va + 0x1800n))).toBe('EFAULT');
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_DEVICE_FD, 0n))).toBe('EFAULT');
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_DEVICE_FD, 'x'.repeat(4096)))).toBe('EINVAL');
    expect(vfio.device(pdev)!.openCount).toBe(0);
  });

  it('errnos: ENODEV (unknown name) before EINVAL (no container); failures bind nothing and install no fd', () => {
    const { p, c, g, pdev, vfio } = ready();
    const fds = p.files.fds();
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_DEVICE_FD, '0000:00:1f.7'))).toBe('ENODEV');
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_DEVICE_FD, pdev.name))).toBe('EINVAL');
    expect(p.files.fds()).toEqual(fds);
    expect(vfio.device(pdev)!.openCount).toBe(0);
    expect(pdev.iommuGroup!.owner).toBeNull();
    g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd });
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_DEVICE_FD, `${pdev.name} vf_token=x`))).toBe('ENODEV');
  });

  it('ENODEV once IOMMU_VFIO_IOAS CLEAR removed the compatibility IOAS; nothing changes', () => {
    const { p, c, g, pdev, vfio } = ready();
    g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd });
    c.ioctl(IOMMU_VFIO_IOAS, { size: 12, op: IOMMU_VFIO_IOAS_CLEAR });
    const fds = p.files.fds();
    const objs = c.ctx.listObjects();
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_DEVICE_FD, pdev.name))).toBe('ENODEV');
    expect(p.files.fds()).toEqual(fds);
    expect(c.ctx.listObjects()).toEqual(objs);
    expect(vfio.device(pdev)!.iommufdDevice).toBeNull();
    expect(pdev.iommuGroup!.owner).toBeNull();
  });

  it('EPERM while another iommufd owns the group; EMFILE with a full fd table; nothing changes', () => {
    const { p, c, g, pdev, vfio, iommu } = ready();
    g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd });
    const other = Iommufd.open({ iommu, process: p });
    const idev = iommufdDeviceBind(other.ctx, pdev);
    const objs = c.ctx.listObjects();
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_DEVICE_FD, pdev.name))).toBe('EPERM');
    expect(c.ctx.listObjects()).toEqual(objs);
    expect(vfio.device(pdev)!.openCount).toBe(0);
    expect(pdev.iommuGroup!.owner).toBe(other.ctx);
    iommufdDeviceUnbind(idev);
    const filler: number[] = [];
    while (p.files.size < 1024) filler.push(p.installFd({ close() {} }));
    expect(errnoOf(() => g.ioctl(VFIO_GROUP_GET_DEVICE_FD, pdev.name))).toBe('EMFILE');
    expect(vfio.device(pdev)!.openCount).toBe(0);
    expect(pdev.iommuGroup!.owner).toBeNull();
    p.close(filler[0]!);
    const fd = g.ioctl(VFIO_GROUP_GET_DEVICE_FD, pdev.name);
    expect(fd).toBe(filler[0]);
  });

  it('device files hold the group: its release (and the context reference) waits for them', () => {
    const { p, c, g, pdev, vfio, groupId } = ready();
    g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd });
    const fd = g.ioctl(VFIO_GROUP_GET_DEVICE_FD, pdev.name);
    g.close();
    c.close();
    expect(g.isReleased).toBe(false);
    expect(errnoOf(() => vfio.openGroup(p, groupId))).toBe('EBUSY');
    expect(c.ctx.isReleased).toBe(false);
    const info = { argsz: 16 };
    p.close(fd);
    expect(errnoOf(() => p.close(fd))).toBe('EBADF');
    expect(g.isReleased).toBe(true);
    expect(c.ctx.isReleased).toBe(true);
    expect(pdev.iommuGroup!.owner).toBeNull();
    expect(info).toEqual({ argsz: 16 });
    vfio.openGroup(p, groupId).close();
  });

  it('UNSET_CONTAINER with an open device keeps it bound (iommufd has no EBUSY here)', () => {
    const { p, c, g, pdev, vfio } = ready();
    g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd });
    const fd = g.ioctl(VFIO_GROUP_GET_DEVICE_FD, pdev.name);
    g.ioctl(VFIO_GROUP_UNSET_CONTAINER);
    expect(vfio.device(pdev)!.iommufdDevice!.ictx).toBe(c.ctx);
    p.close(fd);
    expect(pdev.iommuGroup!.owner).toBeNull();
  });

  it('process exit closes every file: device unbound, group released, context released', () => {
    const { p, c, g, pdev, vfio } = ready();
    g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: c.fd });
    g.ioctl(VFIO_GROUP_GET_DEVICE_FD, pdev.name);
    p.exit();
    expect(vfio.device(pdev)!.openCount).toBe(0);
    expect(g.isReleased).toBe(true);
    expect(c.ctx.isReleased).toBe(true);
    expect(pdev.iommuGroup!.owner).toBeNull();
  });

  describe('VFIO_DEVICE_GET_INFO', () => {
    function opened() {
      const r = ready();
      r.g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: r.c.fd });
      const fd = r.g.ioctl(VFIO_GROUP_GET_DEVICE_FD, r.pdev.name);
      const file = r.vfio.device(r.pdev)!;
      return { ...r, fd, file };
    }

    it('object form: flags, regions, IRQs; argsz kept; cap_offset 0', () => {
      const r = opened();
      const dfile = vfioDeviceFileOf(r.p, r.fd);
      expect(dfile.device).toBe(r.file);
      const info = { argsz: 24, flags: 0, num_regions: 0, num_irqs: 0, cap_offset: 7, pad: 7 };
      expect(dfile.ioctl(VFIO_DEVICE_GET_INFO, info)).toBe(0);
      expect(info).toEqual({
        argsz: 24,
        flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
        num_regions: 9,
        num_irqs: 5,
        cap_offset: 0,
        pad: 0,
      });
    });

    it('pointer form: exactly min(argsz, 24) bytes written; argsz below 16 EINVAL with nothing written; EFAULT', () => {
      const r = opened();
      const dfile = r.g.openDevice(r.pdev.name);
      expect(r.file.openCount).toBe(2);
      expect(errnoOf(() => vfioDeviceFileOf(r.p, r.g.fd))).toBe('ENOTTY');
      expect(errnoOf(() => vfioDeviceFileOf(r.p, 500))).toBe('EBADF');
      const va = userBuf(r.p);
      const flags = VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET;
      const expectBytes = (argsz: number, n: number) => {
        r.p.write(Number(va), new Uint8Array(40).fill(0xee));
        r.p.write(Number(va), le32(argsz));
        expect(dfile.ioctl(VFIO_DEVICE_GET_INFO, va)).toBe(0);
        const got = r.p.read(Number(va), 40);
        const full = [...le32(argsz), ...le32(flags), ...le32(9), ...le32(5), ...le32(0), ...le32(0)];
        expect([...got.subarray(0, n)]).toEqual(full.slice(0, n));
        expect([...got.subarray(n)]).toEqual(new Array(40 - n).fill(0xee));
      };
      expectBytes(16, 16);
      expectBytes(20, 20);
      expectBytes(24, 24);
      expectBytes(32, 24);
      r.p.write(Number(va), new Uint8Array(24).fill(0xee));
      r.p.write(Number(va), le32(15));
      expect(errnoOf(() => dfile.ioctl(VFIO_DEVICE_GET_INFO, va))).toBe('EINVAL');
      expect([...r.p.read(Number(va) + 4, 20)]).toEqual(new Array(20).fill(0xee));
      expect(errnoOf(() => dfile.ioctl(VFIO_DEVICE_GET_INFO, 0n))).toBe('EFAULT');
      expect(errnoOf(() => dfile.ioctl(VFIO_DEVICE_GET_INFO, va + 0xff8n))).toBe('EFAULT');
      expect(errnoOf(() => dfile.ioctl(VFIO_GROUP_GET_STATUS, va))).toBe('ENOTTY');
      dfile.close();
      expect(errnoOf(() => dfile.ioctl(VFIO_DEVICE_GET_INFO, va))).toBe('EBADF');
      expect(errnoOf(() => dfile.close())).toBe('EBADF');
    });
  });
});
