/**
 * `vfio-passthrough`: a QEMU-like VMM assigns a NIC to a guest through the VFIO type1 container
 * (`@iommu-ts/vfio-compat`, iommufd's `/dev/vfio/vfio`). Guest RAM is mapped at its guest-physical
 * addresses, the guest driver fills an RX descriptor ring, the NIC DMAs received packets into guest
 * buffers, the guest checks them in its memory; a balloon unmaps a block of guest RAM (DMA there
 * faults, nothing changes), and VM shutdown returns every pin and accounted page.
 */

import { DmaFaultError } from '@iommu-ts/iommu-core';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@iommu-ts/mm';
import {
  decodeVfioIommuType1InfoCaps,
  openVfioContainer,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
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
  VfioSubsystem,
  vfioDeviceFileOf,
} from '@iommu-ts/vfio-compat';
import type { SimEndpoint, SimMachine } from '../machine/machine.js';
import { selectEndpoint, userDmaRefusal } from './devices.js';
import { GuestRam } from './flows/guest-ram.js';
import { endpointAccess } from './flows/mem-access.js';
import { DESC_STATUS_DD, DESC_STATUS_EOP, DescRing, deviceRx, rxPost } from './flows/ring.js';
import { numParam, strParam, type Workload, type WorkloadContext, type WorkloadParams } from './workload.js';

const KiB = 1024n;
const MiB = 1024n * KiB;
/** Guest RAM below the legacy VGA/BIOS hole: GPA 0 – 640 KiB. */
const LOW_SIZE = 640n * KiB;
/** Guest RAM above the hole starts at 1 MiB. */
const HIGH_START = MiB;
/** Where the guest driver puts its RX descriptor ring (in low RAM). */
const RING_GPA = 0x8_0000n;
/** RX descriptors in the ring. */
const RING_ENTRIES = 256;
/** Receive buffer size (bytes): one Ethernet frame of up to 1514 bytes fits. */
const RX_BUF_SIZE = 2048;
/** Smallest and largest frame the NIC receives (bytes, without FCS). */
const MIN_FRAME = 64;
const MAX_FRAME = 1514;
/** Space name of the container's IOAS in the recorder. */
const SPACE = 'container';

function endpointFor(machine: SimMachine, params: WorkloadParams): SimEndpoint | string {
  const ep = selectEndpoint(machine, strParam(params, 'device'), { pci: true });
  if (typeof ep === 'string') return ep;
  const unit = machine.units.find((u) => u.name === ep.unit);
  if (unit === undefined || unit.error !== null)
    return `device ${ep.name} has no working IOMMU unit${unit?.error ? ` (${unit.error})` : ''}`;
  return userDmaRefusal(machine, ep) ?? ep;
}

/** Guest-physical layout derived from the parameters. */
interface Layout {
  readonly highSize: bigint;
  readonly highEnd: bigint;
  readonly balloon: bigint;
  readonly balloonGpa: bigint;
  readonly buffersGpa: bigint;
}

function layoutOf(params: WorkloadParams): Layout | string {
  const highSize = BigInt(numParam(params, 'guestRamMiB')) * MiB;
  const balloonKiB = numParam(params, 'balloonKiB');
  if (balloonKiB % 4 !== 0) return `balloonKiB must be a multiple of 4 (a page), got ${balloonKiB}`;
  const balloon = BigInt(balloonKiB) * KiB;
  const buffers = BigInt(RING_ENTRIES * RX_BUF_SIZE);
  if (buffers + balloon > highSize)
    return `guestRamMiB ${numParam(params, 'guestRamMiB')} leaves no room for ${buffers / KiB} KiB of RX buffers and a ${balloonKiB} KiB balloon`;
  const highEnd = HIGH_START + highSize;
  return { highSize, highEnd, balloon, balloonGpa: highEnd - balloon, buffersGpa: HIGH_START };
}

/** The RX buffer of descriptor `i`. */
function bufGpa(layout: Layout, i: number): bigint {
  return layout.buffersGpa + BigInt((i % RING_ENTRIES) * RX_BUF_SIZE);
}

function run(ctx: WorkloadContext): void {
  const { machine, rng, rec, params } = ctx;
  const sel = endpointFor(machine, params);
  if (typeof sel === 'string') throw new Error(`vfio-passthrough: ${sel}`);
  const layout = layoutOf(params);
  if (typeof layout === 'string') throw new Error(`vfio-passthrough: ${layout}`);
  const packets = numParam(params, 'packets');
  const burst = numParam(params, 'burst');
  if (burst > RING_ENTRIES)
    throw new Error(`vfio-passthrough: burst ${burst} exceeds the ${RING_ENTRIES}-entry ring`);
  const pdev = sel.device;
  const iommuGroup = pdev.iommuGroup;
  if (iommuGroup === null) throw new Error(`vfio-passthrough: ${sel.name} has no IOMMU group`);
  const basePinned = machine.memory.stats().pinnedPages;

  // vfio-pci takes the device: /dev/vfio/$GROUP appears.
  const vfio = new VfioSubsystem(machine.iommu);
  const vdev = vfio.registerDevice(pdev, {
    flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
    numRegions: 9,
    numIrqs: 5,
  });

  // An unprivileged VMM: pins are charged to its mm's locked_vm against RLIMIT_MEMLOCK.
  const guestBytes = LOW_SIZE + layout.highSize;
  const qemu = machine.createProcess({
    uid: 1000,
    capabilities: [],
    rlimitMemlock: Number(guestBytes + MiB),
  });
  const mm = qemu.mm;

  // container = open("/dev/vfio/vfio"); group = open("/dev/vfio/N"); SET_CONTAINER; SET_IOMMU.
  const container = openVfioContainer({ iommu: machine.iommu, process: qemu });
  rec.expect('VFIO_GET_API_VERSION', container.ioctl(VFIO_GET_API_VERSION) === VFIO_API_VERSION);
  rec.expect('TYPE1v2 extension', container.ioctl(VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) === 1);
  const group = vfio.openGroup(qemu, iommuGroup.id);
  const status = { argsz: 8, flags: 0 };
  group.ioctl(VFIO_GROUP_GET_STATUS, status);
  rec.expect(`group ${iommuGroup.id} viable`, (status.flags & VFIO_GROUP_FLAGS_VIABLE) !== 0);
  group.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: container.fd });
  group.ioctl(VFIO_GROUP_GET_STATUS, status);
  rec.expect('group set to the container', (status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET) !== 0);
  container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);

  // The device fd: its first open binds it to iommufd and attaches it to the container's IOAS.
  const devFd = group.ioctl(VFIO_GROUP_GET_DEVICE_FD, vdev.name);
  const devInfo = { argsz: 24, flags: 0, num_regions: 0, num_irqs: 0, cap_offset: 0, pad: 0 };
  vfioDeviceFileOf(qemu, devFd).ioctl(VFIO_DEVICE_GET_INFO, devInfo);
  rec.expect('device is a PCI function', (devInfo.flags & VFIO_DEVICE_FLAGS_PCI) !== 0);
  rec.space(SPACE, 'container', [sel.name]);

  // GET_INFO as QEMU does it (twice: size, then the capability chain); guest RAM must fit the
  // usable IOVA ranges (the MSI window and reserved regions are carved out).
  const head = { argsz: 24, flags: 0, iova_pgsizes: 0n, cap_offset: 0, pad: 0 };
  container.ioctl(VFIO_IOMMU_GET_INFO, head);
  const infoVa = BigInt(qemu.mmap(BigInt(head.argsz), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS));
  const argsz = new Uint8Array(4);
  new DataView(argsz.buffer).setUint32(0, head.argsz, true);
  qemu.write(infoVa, argsz);
  container.ioctl(VFIO_IOMMU_GET_INFO, infoVa);
  const ranges = decodeVfioIommuType1InfoCaps(qemu.read(infoVa, head.argsz)).iovaRanges ?? [];
  qemu.munmap(infoVa, head.argsz);

  // Guest RAM: low, high, and the last block of high RAM mapped on its own (a virtio-mem style
  // block the balloon can take back: a TYPE1v2 unmap cannot split a mapping).
  const ram = new GuestRam(qemu, [
    { gpa: 0n, size: LOW_SIZE },
    { gpa: HIGH_START, size: layout.highSize },
  ]);
  const maps: Array<[bigint, bigint, string]> = [
    [0n, LOW_SIZE, 'guest RAM 0-640K'],
    [HIGH_START, layout.highSize - layout.balloon, 'guest RAM high'],
    [layout.balloonGpa, layout.balloon, 'guest RAM balloon block'],
  ];
  for (const [gpa, size, label] of maps) {
    const fits = ranges.some((r) => r.start <= gpa && gpa + size - 1n <= r.end);
    if (!fits)
      throw new Error(
        `vfio-passthrough: guest RAM 0x${gpa.toString(16)}+${size} is outside the usable IOVA ranges`,
      );
    const vaddr = ram.hvaOf(gpa, Number(size));
    const flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
    container.ioctl(VFIO_IOMMU_MAP_DMA, { argsz: 32, flags, vaddr, iova: gpa, size });
    rec.mapped(SPACE, gpa, size, label);
  }
  const guestPages = Number(guestBytes / 4096n);
  rec.expect(`locked_vm = ${guestPages} pages`, mm.lockedVm === guestPages);
  rec.expect(`pinned_vm = ${guestPages} pages`, mm.pinnedVm === guestPages);
  rec.step('map guest RAM');

  // The guest's NIC driver and the NIC. Guest addresses are IOVAs (RAM mapped 1:1).
  const cpu = ram.cpu();
  const dev = endpointAccess(sel.endpoint);
  const ring = new DescRing(RING_GPA, RING_ENTRIES);
  let done = 0;
  let burstNo = 0;
  rec.progress(0, packets);
  while (done < packets) {
    const n = Math.min(burst, packets - done);
    // Driver refills n descriptors, then the NIC receives n frames.
    for (let i = 0; i < n; i++) rxPost(cpu, ring, done + i, bufGpa(layout, done + i), RX_BUF_SIZE);
    const sent: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const frame = rng.bytes(MIN_FRAME + rng.int(MAX_FRAME - MIN_FRAME + 1));
      sent.push(frame);
      deviceRx(dev, ring, done + i, frame);
    }
    // Driver polls the ring and checks every frame in guest memory.
    for (let i = 0; i < n; i++) {
      const frame = sent[i] as Uint8Array;
      const d = ring.read(cpu, done + i);
      const idx = done + i;
      rec.expect(`rx descriptor ${idx} done`, d.status === (DESC_STATUS_DD | DESC_STATUS_EOP));
      rec.expect(`rx descriptor ${idx} buffer`, d.addr === bufGpa(layout, idx));
      rec.verify(`rx packet ${idx}`, frame, ram.read(d.addr, d.length));
    }
    done += n;
    burstNo++;
    rec.progress(done, packets);
    rec.step(`rx burst ${burstNo}`);
  }

  // Balloon: the guest gives the last block back, the VMM unmaps it. A descriptor still naming a
  // buffer there (a stale post) makes the NIC's write fault; the block keeps its bytes.
  const before = ram.read(layout.balloonGpa, Number(layout.balloon));
  const unmap = { argsz: 24, flags: 0, iova: layout.balloonGpa, size: layout.balloon };
  container.ioctl(VFIO_IOMMU_UNMAP_DMA, unmap);
  rec.expect(`UNMAP_DMA unmapped ${layout.balloon} bytes`, unmap.size === layout.balloon);
  rec.unmapped(SPACE, layout.balloonGpa, layout.balloon);
  const remainingPages = guestPages - Number(layout.balloon / 4096n);
  rec.expect(`locked_vm = ${remainingPages} pages after the balloon`, mm.lockedVm === remainingPages);
  const staleIdx = done;
  const staleBuf = layout.balloonGpa + layout.balloon / 2n;
  rxPost(cpu, ring, staleIdx, staleBuf, RX_BUF_SIZE);
  const faultsBefore = machine.counters().dmaFaults;
  let fault: unknown = null;
  try {
    deviceRx(dev, ring, staleIdx, rng.bytes(MIN_FRAME + rng.int(MAX_FRAME - MIN_FRAME + 1)));
  } catch (e) {
    fault = e;
  }
  if (fault !== null && !(fault instanceof DmaFaultError)) throw fault;
  rec.expect('NIC write into ballooned RAM faults', fault instanceof DmaFaultError);
  let readFault: unknown = null;
  try {
    sel.endpoint.readSync(layout.balloonGpa, 64);
  } catch (e) {
    readFault = e;
  }
  if (readFault !== null && !(readFault instanceof DmaFaultError)) throw readFault;
  rec.expect('NIC read of ballooned RAM faults', readFault instanceof DmaFaultError);
  machine.settle();
  const faultsAfter = machine.counters().dmaFaults;
  const total = (t: Readonly<Record<string, number>>) => Object.values(t).reduce((a, b) => a + b, 0);
  rec.expect('exactly two DMA faults in the balloon', total(faultsAfter) - total(faultsBefore) === 2);
  rec.expect('stale descriptor not completed', (ring.read(cpu, staleIdx).status & DESC_STATUS_DD) === 0);
  rec.verify('ballooned block unchanged', before, ram.read(layout.balloonGpa, Number(layout.balloon)));
  rec.step('balloon');

  // VM shutdown: device fd, group, container; every pin and locked page goes back.
  rec.unmapped(SPACE, 0n, layout.highEnd);
  qemu.close(devFd);
  group.close();
  container.close();
  vfio.unregisterDevice(vdev);
  rec.expect('locked_vm back to 0', mm.lockedVm === 0);
  rec.expect('pinned_vm back to 0', mm.pinnedVm === 0);
  rec.expect('no page left pinned', machine.memory.stats().pinnedPages === basePinned);
  rec.expect('DMA ownership released', iommuGroup.owner === null);
  rec.expect('device back on its default domain', iommuGroup.domain === iommuGroup.defaultDomain);
  qemu.exit();
  machine.settle();
  rec.step('shutdown');
}

/** The `vfio-passthrough` workload (see the module comment). */
export const vfioPassthrough: Workload = {
  name: 'vfio-passthrough',
  description:
    'QEMU-like VMM: guest RAM mapped through the VFIO type1 container, NIC RX ring DMA into guest buffers, balloon unmap, VM shutdown',
  params: {
    device: {
      type: 'string',
      description: 'the assigned PCI device: an endpoint name (nic1) or a role (nic)',
      default: 'nic',
    },
    packets: {
      type: 'integer',
      description: 'frames the NIC receives',
      default: 256,
      minimum: 1,
      maximum: 1_000_000,
    },
    burst: {
      type: 'integer',
      description: 'frames per RX burst (descriptors refilled per poll)',
      default: 32,
      minimum: 1,
      maximum: RING_ENTRIES,
    },
    guestRamMiB: {
      type: 'integer',
      description: 'guest RAM above 1 MiB, in MiB (plus 640 KiB below the hole)',
      default: 3,
      minimum: 1,
      maximum: 64,
    },
    balloonKiB: {
      type: 'integer',
      description: 'guest RAM the balloon takes back at the end of high RAM, in KiB (page multiple)',
      default: 256,
      minimum: 4,
      maximum: 65536,
    },
  },
  supports(machine, params) {
    const ep = endpointFor(machine, params);
    if (typeof ep === 'string') return ep;
    const l = layoutOf(params);
    return typeof l === 'string' ? l : null;
  },
  run,
};
