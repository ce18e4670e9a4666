// Acceptance 2 of issue 10 (helper V2): a QEMU-like process drives /dev/vfio/vfio exactly as QEMU's
// vfio_connect_container / vfio_get_device / vfio_dma_map do, a PCI device DMAs into guest RAM
// through its Endpoint, and every pin and accounted page goes back at the end.

import { DmaFaultError, iommuIovaToPhys } from '@iommu-ts/iommu-core';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { openVfioContainer } from './container.js';
import { vfioDeviceFileOf } from './device-file.js';
import { decodeVfioIommuType1InfoCaps } from './info-caps.js';
import { setup } from './vfio.test-helpers.js';
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_GET_INFO,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from './vfio-uapi.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const LOW_END = 640 * KiB; // guest RAM below the VGA hole
const HIGH_START = 1 * MiB; // guest RAM above it
const RAM = 4 * MiB; // guest RAM size (and the size of the process's backing mapping)

describe('QEMU-like flow over the iommufd-provided VFIO container', () => {
  it('container, group, IOMMU, guest RAM around a hole, device DMA, unmap, close: nothing left pinned', () => {
    const { iommu, vfio, fn, proc, endpoint, machine } = setup();
    const pdev = fn();
    // An unprivileged QEMU (no CAP_IPC_LOCK): its pins are charged to its mm's locked_vm.
    const qemu = proc({ rlimitMemlock: 64 * MiB, capabilities: [] });
    const mm = qemu.mm;

    // container = open("/dev/vfio/vfio")
    const container = openVfioContainer({ iommu, process: qemu });
    expect(container.ioctl(VFIO_GET_API_VERSION)).toBe(VFIO_API_VERSION);
    expect(container.ioctl(VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)).toBe(1);

    // group = open("/dev/vfio/$N"); GET_STATUS; SET_CONTAINER; SET_IOMMU
    const group = vfio.openGroup(qemu, pdev.iommuGroup!.id);
    const status = { argsz: 8, flags: 0 };
    group.ioctl(VFIO_GROUP_GET_STATUS, status);
    expect(status.flags & VFIO_GROUP_FLAGS_VIABLE).toBe(VFIO_GROUP_FLAGS_VIABLE);
    expect(group.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: container.fd })).toBe(0);
    group.ioctl(VFIO_GROUP_GET_STATUS, status);
    expect(status.flags).toBe(VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
    expect(container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);

    // The device is opened before the guest RAM is mapped (QEMU gets the device while building the
    // machine), so its reserved MSI window is in the IOVA ranges.
    const devFd = group.ioctl(VFIO_GROUP_GET_DEVICE_FD, pdev.name);
    const dev = vfioDeviceFileOf(qemu, devFd);
    const devInfo = { argsz: 24, flags: 0, num_regions: 0, num_irqs: 0, cap_offset: 0, pad: 0 };
    dev.ioctl(VFIO_DEVICE_GET_INFO, devInfo);
    expect(devInfo.flags & VFIO_DEVICE_FLAGS_PCI).toBe(VFIO_DEVICE_FLAGS_PCI);
    expect(devInfo.num_regions).toBe(9);
    expect(devInfo.num_irqs).toBe(5);

    // GET_INFO twice, as QEMU does: first with the bare struct to learn argsz, then in full.
    const scratch = qemu.mmap(0x1000n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const first = { argsz: 24, flags: 0, iova_pgsizes: 0n, cap_offset: 0, pad: 0 };
    container.ioctl(VFIO_IOMMU_GET_INFO, first);
    expect(first.argsz).toBeGreaterThan(24);
    expect(first.cap_offset).toBe(0);
    qemu.write(Number(scratch), new Uint8Array(new Uint32Array([first.argsz]).buffer));
    container.ioctl(VFIO_IOMMU_GET_INFO, scratch);
    const caps = decodeVfioIommuType1InfoCaps(qemu.read(Number(scratch), first.argsz));
    const ranges = caps.iovaRanges!;
    // The MSI window of the test IOMMU (0xfee00000, 1 MiB) is carved out; guest RAM fits below it.
    expect(ranges.some((r) => r.start <= 0xfee0_0000n && r.end >= 0xfee0_0000n)).toBe(false);
    expect(ranges[0]!.start).toBe(0n);
    expect(ranges[0]!.end).toBe(0xfedf_ffffn);

    // Guest RAM: one anonymous mapping; GPA 0-640K and 1M-4M are mapped, 640K-1M is the hole.
    const ram = qemu.mmap(BigInt(RAM), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    const mapDma = (gpa: number, len: number) =>
      container.ioctl(VFIO_IOMMU_MAP_DMA, {
        argsz: 32,
        flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        vaddr: ram + BigInt(gpa),
        iova: BigInt(gpa),
        size: BigInt(len),
      });
    expect(mapDma(0, LOW_END)).toBe(0);
    expect(mapDma(HIGH_START, RAM - HIGH_START)).toBe(0);
    const mappedPages = (LOW_END + RAM - HIGH_START) / 0x1000;
    expect(mm.lockedVm).toBe(mappedPages);
    expect(mm.pinnedVm).toBe(mappedPages);

    // The device writes into both regions; the bytes appear behind the right guest addresses.
    const ep = endpoint(pdev);
    const low = new TextEncoder().encode('descriptor ring @ 0x9f000');
    const high = new Uint8Array(0x2100).map((_, i) => (i * 7) & 0xff);
    ep.writeSync(0x9_f000n, low);
    ep.writeSync(0x20_0f00n, high); // crosses two page boundaries
    expect(qemu.read(Number(ram) + 0x9_f000, low.length)).toEqual(low);
    expect(qemu.read(Number(ram) + 0x20_0f00, high.length)).toEqual(high);
    // The guest writes, the device reads.
    qemu.write(Number(ram) + 0x30_0000, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    expect([...ep.readSync(0x30_0000n, 4)]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    // The hole and the area beyond RAM fault; nothing is written anywhere.
    expect(() => ep.writeSync(0xa_0000n, new Uint8Array([1]))).toThrow(DmaFaultError);
    expect(() => ep.writeSync(0xf_f000n, new Uint8Array([1]))).toThrow(DmaFaultError);
    expect(() => ep.readSync(BigInt(RAM), 1)).toThrow(DmaFaultError);
    expect([...qemu.read(Number(ram) + 0xa_0000, 4)]).toEqual([0, 0, 0, 0]);

    // Every mapped guest page is pinned exactly once, behind the device's domain.
    const domain = pdev.iommuGroup!.domain!;
    const paOf = (gpa: bigint) => Number(iommuIovaToPhys(domain, gpa));
    const sample = [0n, 0x9_f000n, 0x10_0000n, 0x20_1000n, BigInt(RAM - 0x1000)];
    const pas = sample.map(paOf);
    expect(pas.every((pa) => pa !== 0)).toBe(true);
    expect(pas.map((pa) => machine.memory.pinCount(pa))).toEqual([1, 1, 1, 1, 1]);
    expect(paOf(0xa_0000n)).toBe(0);

    // Unmap the low region: its size comes back, DMA there faults now, the pins go.
    const unmap = { argsz: 24, flags: 0, iova: 0n, size: BigInt(LOW_END) };
    expect(container.ioctl(VFIO_IOMMU_UNMAP_DMA, unmap)).toBe(0);
    expect(unmap.size).toBe(BigInt(LOW_END));
    expect(() => ep.readSync(0x9_f000n, 1)).toThrow(DmaFaultError);
    expect(machine.memory.pinCount(pas[1]!)).toBe(0);
    expect(mm.lockedVm).toBe((RAM - HIGH_START) / 0x1000);
    expect(mm.pinnedVm).toBe((RAM - HIGH_START) / 0x1000);
    // The data the device wrote stays in the process.
    expect(qemu.read(Number(ram) + 0x9_f000, low.length)).toEqual(low);

    // Unmap the rest with UNMAP_ALL, then close the device, the group and the container.
    const all = { argsz: 24, flags: VFIO_DMA_UNMAP_FLAG_ALL, iova: 0n, size: 0n };
    container.ioctl(VFIO_IOMMU_UNMAP_DMA, all);
    expect(all.size).toBe(BigInt(RAM - HIGH_START));
    qemu.close(devFd);
    group.close();
    container.close();
    expect(container.ctx.isReleased).toBe(true);
    expect(pas.map((pa) => machine.memory.pinCount(pa))).toEqual([0, 0, 0, 0, 0]);
    expect(mm.lockedVm).toBe(0);
    expect(mm.pinnedVm).toBe(0);
    expect(pdev.iommuGroup!.owner).toBeNull();
    expect(pdev.iommuGroup!.domain).toBe(pdev.iommuGroup!.defaultDomain);
  });

  it('closing everything with the guest RAM still mapped (QEMU killed) also returns every pin', () => {
    const { iommu, vfio, fn, proc, endpoint, machine } = setup();
    const pdev = fn();
    // An unprivileged QEMU (no CAP_IPC_LOCK): its pins are charged to its mm's locked_vm.
    const qemu = proc({ rlimitMemlock: 64 * MiB, capabilities: [] });
    const mm = qemu.mm;
    const container = openVfioContainer({ iommu, process: qemu });
    const group = vfio.openGroup(qemu, pdev.iommuGroup!.id);
    group.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: container.fd });
    container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    const ram = qemu.mmap(BigInt(2 * MiB), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    container.ioctl(VFIO_IOMMU_MAP_DMA, { argsz: 32, flags: 3, vaddr: ram, iova: 0n, size: BigInt(LOW_END) });
    container.ioctl(VFIO_IOMMU_MAP_DMA, {
      argsz: 32,
      flags: 3,
      vaddr: ram + BigInt(HIGH_START),
      iova: BigInt(HIGH_START),
      size: BigInt(MiB),
    });
    group.ioctl(VFIO_GROUP_GET_DEVICE_FD, pdev.name);
    const ep = endpoint(pdev);
    ep.writeSync(0x10_0000n, new Uint8Array([42]));
    const pa = Number(iommuIovaToPhys(pdev.iommuGroup!.domain!, 0x10_0000n));
    expect(machine.memory.pinCount(pa)).toBe(1);
    expect(mm.lockedVm).toBe((LOW_END + MiB) / 0x1000);
    qemu.exit();
    expect(container.ctx.isReleased).toBe(true);
    expect(machine.memory.pinCount(pa)).toBe(0);
    expect(mm.lockedVm).toBe(0);
    expect(mm.pinnedVm).toBe(0);
    expect(pdev.iommuGroup!.owner).toBeNull();
    expect(() => ep.readSync(0x10_0000n, 1)).toThrow();
  });
});
