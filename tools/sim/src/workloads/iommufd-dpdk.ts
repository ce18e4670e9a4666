/**
 * `iommufd-dpdk`: a poll-mode packet app on `/dev/iommu` (`@iommu-ts/iommufd`). It allocates an
 * IOAS, binds two NICs to the context and attaches both to it, maps its huge-page memory (rings and
 * an mbuf pool) with one IOAS_MAP, then loops: the app writes frames into mbufs and posts them on
 * NIC A's TX ring (NIC A reads them by DMA: bytes checked against what the app wrote), NIC B
 * receives frames into mbufs from its RX ring (bytes checked in the app's memory). At the end it
 * unmaps, unbinds and closes; every pin goes back.
 */

import {
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  Iommufd,
  iommufdDeviceAttach,
  iommufdDeviceBind,
  iommufdDeviceUnbind,
} from '@iommu-ts/iommufd';
import {
  MAP_ANONYMOUS,
  MAP_HUGE_2MB,
  MAP_HUGETLB,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  type Process,
} from '@iommu-ts/mm';
import type { SimEndpoint, SimMachine } from '../machine/machine.js';
import { selectEndpoints, userDmaRefusal } from './devices.js';
import { endpointAccess, processAccess } from './flows/mem-access.js';
import {
  DESC_STATUS_DD,
  DESC_STATUS_EOP,
  DescRing,
  deviceRx,
  deviceTx,
  rxPost,
  txPost,
} from './flows/ring.js';
import { numParam, strParam, type Workload, type WorkloadContext, type WorkloadParams } from './workload.js';

const MiB = 1024 * 1024;
const HUGE = 2 * MiB;
/** Descriptors per ring (TX and RX). */
const RING_ENTRIES = 512;
/** mbuf data room in bytes (DPDK's default RTE_MBUF_DEFAULT_BUF_SIZE minus headroom, rounded). */
const MBUF_SIZE = 2048;
/** Offset of the mbuf pool in the app's memory (the two rings come first). */
const POOL_OFFSET = 64 * 1024;
const MIN_FRAME = 64;
const MAX_FRAME = 1514;

function devicesFor(machine: SimMachine, params: WorkloadParams): SimEndpoint[] | string {
  const selectors = strParam(params, 'devices')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (selectors.length !== 2)
    return `devices must name two devices (TX,RX), got "${strParam(params, 'devices')}"`;
  const eps = selectEndpoints(machine, selectors, { pci: true });
  if (typeof eps === 'string') return eps;
  for (const ep of eps) {
    const unit = machine.units.find((u) => u.name === ep.unit);
    if (unit === undefined || unit.error !== null)
      return `device ${ep.name} has no working IOMMU unit${unit?.error ? ` (${unit.error})` : ''}`;
    const refusal = userDmaRefusal(machine, ep);
    if (refusal !== null) return refusal;
  }
  return eps;
}

/** Huge-page memory as DPDK's EAL reserves it; falls back to plain anonymous memory. */
function allocHugeMemory(proc: Process, bytes: number): { va: bigint; huge: boolean } {
  try {
    const va = proc.mmap(
      bytes,
      PROT_READ | PROT_WRITE,
      MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB,
    );
    return { va: BigInt(va), huge: true };
  } catch (e) {
    if ((e as { code?: unknown }).code !== 'EINVAL') throw e;
    return { va: BigInt(proc.mmap(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)), huge: false };
  }
}

function run(ctx: WorkloadContext): void {
  const { machine, rng, rec, params } = ctx;
  const eps = devicesFor(machine, params);
  if (typeof eps === 'string') throw new Error(`iommufd-dpdk: ${eps}`);
  const [txEp, rxEp] = eps as [SimEndpoint, SimEndpoint];
  const bursts = numParam(params, 'bursts');
  const burst = numParam(params, 'burst');
  const memBytes = numParam(params, 'memMiB') * MiB;
  if (memBytes % HUGE !== 0) throw new Error(`iommufd-dpdk: memMiB must be a multiple of 2 (huge pages)`);
  if (burst > RING_ENTRIES)
    throw new Error(`iommufd-dpdk: burst ${burst} exceeds the ${RING_ENTRIES}-entry rings`);
  const poolCount = Math.floor((memBytes - POOL_OFFSET) / MBUF_SIZE);
  const basePinned = machine.memory.stats().pinnedPages;

  // The app: an unprivileged process; iommufd charges its pins to the user's locked_vm.
  const uid = 1000;
  const app = machine.createProcess({ uid, capabilities: [], rlimitMemlock: memBytes + MiB });
  const file = Iommufd.open({ iommu: machine.iommu, process: app });
  const alloc = { size: 12, flags: 0, out_ioas_id: 0 };
  file.ioctl(IOMMU_IOAS_ALLOC, alloc);
  const ioasId = alloc.out_ioas_id;
  const space = `ioas ${ioasId}`;

  // Both NICs are bound to the context (DMA ownership) and attached to the IOAS.
  const idevs = eps.map((ep) => iommufdDeviceBind(file.ctx, ep.device));
  const hwpts = idevs.map((idev) => iommufdDeviceAttach(idev, ioasId));
  rec.space(
    space,
    'ioas',
    eps.map((e) => e.name),
  );
  rec.expect(
    'both devices attached',
    hwpts.every((h) => h > 0),
  );

  // EAL memory: huge pages when the mm has them, mapped with one IOAS_MAP at a kernel-chosen IOVA.
  const mem = allocHugeMemory(app, memBytes);
  const map = {
    size: 40,
    flags: IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
    ioas_id: ioasId,
    user_va: mem.va,
    length: BigInt(memBytes),
    iova: 0n,
  };
  file.ioctl(IOMMU_IOAS_MAP, map);
  const iovaBase = map.iova;
  rec.mapped(
    space,
    iovaBase,
    BigInt(memBytes),
    mem.huge ? 'hugetlb 2M memory (rings + mbufs)' : 'anonymous memory (rings + mbufs)',
  );
  const pages = memBytes / 4096;
  rec.expect(`pinned_vm = ${pages} pages`, app.mm.pinnedVm === pages);
  rec.expect(`user locked_vm = ${pages} pages`, machine.mm.userLockedVm(uid) === pages);
  rec.step(mem.huge ? 'setup (hugetlb)' : 'setup (4K pages)');

  // The app addresses everything by IOVA; its own view goes through the mapping back to its VA.
  const cpu = processAccess(app, (iova, length) => {
    if (iova < iovaBase || iova + BigInt(length) > iovaBase + BigInt(memBytes))
      throw new Error(`iova 0x${iova.toString(16)} outside the app's memory`);
    return mem.va + (iova - iovaBase);
  });
  const txRing = new DescRing(iovaBase, RING_ENTRIES);
  const rxRing = new DescRing(iovaBase + BigInt(RING_ENTRIES * 16), RING_ENTRIES);
  let nextMbuf = 0;
  const mbuf = (): bigint => iovaBase + BigInt(POOL_OFFSET + (nextMbuf++ % poolCount) * MBUF_SIZE);
  const nicA = endpointAccess(txEp.endpoint);
  const nicB = endpointAccess(rxEp.endpoint);
  const frame = (): Uint8Array => rng.bytes(MIN_FRAME + rng.int(MAX_FRAME - MIN_FRAME + 1));

  const perStep = Math.max(1, Math.ceil(bursts / 16));
  let stepFrom = 1;
  let slot = 0;
  rec.progress(0, bursts);
  for (let b = 1; b <= bursts; b++) {
    // TX burst: the app fills mbufs and posts them; NIC A fetches and reads them.
    const sent: Uint8Array[] = [];
    for (let i = 0; i < burst; i++) {
      const f = frame();
      const buf = mbuf();
      cpu.write(buf, f);
      txPost(cpu, txRing, slot + i, buf, f.length);
      sent.push(f);
    }
    for (let i = 0; i < burst; i++)
      rec.verify(`tx burst ${b} frame ${i}`, sent[i] as Uint8Array, deviceTx(nicA, txRing, slot + i));
    for (let i = 0; i < burst; i++)
      rec.expect(
        `tx burst ${b} descriptor ${i} done`,
        (txRing.read(cpu, slot + i).status & DESC_STATUS_DD) !== 0,
      );

    // RX burst: the app posts empty mbufs; NIC B writes frames; the app checks them in its memory.
    const got: Uint8Array[] = [];
    for (let i = 0; i < burst; i++) rxPost(cpu, rxRing, slot + i, mbuf(), MBUF_SIZE);
    for (let i = 0; i < burst; i++) {
      const f = frame();
      got.push(f);
      deviceRx(nicB, rxRing, slot + i, f);
    }
    for (let i = 0; i < burst; i++) {
      const d = rxRing.read(cpu, slot + i);
      rec.expect(`rx burst ${b} descriptor ${i} done`, d.status === (DESC_STATUS_DD | DESC_STATUS_EOP));
      rec.verify(`rx burst ${b} frame ${i}`, got[i] as Uint8Array, cpu.read(d.addr, d.length));
    }
    slot = (slot + burst) % RING_ENTRIES;
    rec.progress(b, bursts);
    if (b % perStep === 0 || b === bursts) {
      rec.step(stepFrom === b ? `burst ${b}` : `bursts ${stepFrom}-${b}`);
      stepFrom = b + 1;
    }
  }

  // Teardown: unmap everything, unbind both devices, close /dev/iommu.
  const unmap = { size: 24, ioas_id: ioasId, iova: 0n, length: 0xffff_ffff_ffff_ffffn };
  file.ioctl(IOMMU_IOAS_UNMAP, unmap);
  rec.expect(`IOAS_UNMAP unmapped ${memBytes} bytes`, unmap.length === BigInt(memBytes));
  rec.unmapped(space, iovaBase, BigInt(memBytes));
  rec.expect('pins gone after unmap', app.mm.pinnedVm === 0 && machine.mm.userLockedVm(uid) === 0);
  for (const idev of idevs) iommufdDeviceUnbind(idev);
  file.close();
  app.munmap(mem.va, memBytes);
  rec.expect('pinned_vm back to 0', app.mm.pinnedVm === 0);
  rec.expect('user locked_vm back to 0', machine.mm.userLockedVm(uid) === 0);
  rec.expect('no page left pinned', machine.memory.stats().pinnedPages === basePinned);
  for (const ep of eps) {
    const g = ep.device.iommuGroup;
    rec.expect(`${ep.name}: DMA ownership released`, g !== null && g.owner === null);
    rec.expect(`${ep.name}: back on its default domain`, g !== null && g.domain === g.defaultDomain);
  }
  app.exit();
  machine.settle();
  rec.step('teardown');
}

/** The `iommufd-dpdk` workload (see the module comment). */
export const iommufdDpdk: Workload = {
  name: 'iommufd-dpdk',
  description:
    'poll-mode app on /dev/iommu: huge-page memory in one IOAS shared by two NICs, TX and RX bursts through descriptor rings',
  params: {
    devices: {
      type: 'string',
      description: 'the TX and RX devices, comma-separated: endpoint names (nic0,nic1) or roles (nic,nic)',
      default: 'nic,nic',
    },
    bursts: { type: 'integer', description: 'TX+RX burst rounds', default: 64, minimum: 1, maximum: 100_000 },
    burst: {
      type: 'integer',
      description: 'frames per burst, each direction',
      default: 32,
      minimum: 1,
      maximum: RING_ENTRIES,
    },
    memMiB: {
      type: 'integer',
      description: 'app memory (rings + mbuf pool) in MiB, a multiple of 2 (2 MiB huge pages)',
      default: 4,
      minimum: 2,
      maximum: 256,
    },
  },
  supports(machine, params) {
    const eps = devicesFor(machine, params);
    if (typeof eps === 'string') return eps;
    return numParam(params, 'memMiB') % 2 === 0 ? null : 'memMiB must be a multiple of 2';
  },
  run,
};
