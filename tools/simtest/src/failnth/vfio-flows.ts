/**
 * The VFIO flows of the fail_nth harness: `/dev/vfio/vfio` as iommufd provides it (container
 * SET_IOMMU, GET_INFO, MAP_DMA, UNMAP_DMA, VFIO_IOMMU_BIND) and the group file (SET_CONTAINER,
 * GET_DEVICE_FD), on an arm64 machine with the core's test IOMMU (real io-pgtable page tables in
 * the machine's RAM), as the vfio-compat tests and QEMU use them.
 */

import { Scheduler } from '@iommu-ts/base';
import { iommuReportDeviceFault, iopfQueueAddDevice, iopfQueueAlloc } from '@iommu-ts/io-pgfault';
import { dumpIoPgtable, type IoPgtableOps, type PtDumpTable } from '@iommu-ts/io-pgtable';
import {
  IommuSubsystem,
  type PciDevice,
  PciHostBridge,
  pciEnableAts,
  pciEnablePasid,
  pciEnablePri,
} from '@iommu-ts/iommu-core';
import { TestIommu, TestIommuHw } from '@iommu-ts/iommu-core/testing';
import { type Iommufd, IommufdHwPagetable } from '@iommu-ts/iommufd';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  Machine,
  type PhysicalMemory,
  PROT_READ,
  PROT_WRITE,
  type Process,
} from '@iommu-ts/mm';
import { buildMachine, defaultPlatforms, type PlatformDescription, type SimMachine } from '@iommu-ts/sim';
import {
  openVfioContainer,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_BIND,
  VFIO_IOMMU_BIND_PROCESS,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  type VfioGroupFile,
  VfioSubsystem,
  vfioIommuBoundMms,
} from '@iommu-ts/vfio-compat';
import type { FailNthFlow, FailNthRun, FailNthStep } from './flow.js';
import { iommufdStateLines } from './iommufd-env.js';

const PS = 4096n;
/** Guest RAM of the flows: 32 pages. */
const RAM_BYTES = 32n * PS;

/** One VFIO fail_nth environment. */
class VfioEnv implements FailNthRun {
  readonly memory: PhysicalMemory;
  readonly sim: SimMachine | null = null;
  readonly iommu: IommuSubsystem;
  readonly vfio: VfioSubsystem;
  readonly pdev: PciDevice;
  readonly baselinePages: number;
  readonly proc: Process;
  readonly ram: bigint;
  readonly steps: FailNthStep[] = [];
  readonly probes: bigint[] = [];
  container: Iommufd | null = null;
  group: VfioGroupFile | null = null;
  private readonly warned: string[] = [];

  constructor(sva: boolean, platform: FailNthPlatform) {
    if (platform !== 'test') {
      // A full machine (VT-d or SMMUv3 driver over its simulated hardware), as tools/sim builds it.
      const sim = buildMachine(defaultPlatforms()[platform === 'vtd' ? 0 : 1] as PlatformDescription, {
        seed: 1,
      });
      this.sim = sim;
      this.memory = sim.memory;
      this.iommu = sim.iommu;
      const ep = sim.endpoints.find((x) => x.name === (sva ? 'accel0' : 'nic0'));
      if (ep === undefined) throw new Error(`${platform}: no ${sva ? 'accel0' : 'nic0'}`);
      this.pdev = ep.device as PciDevice;
      this.vfio = new VfioSubsystem(this.iommu);
      this.vfio.registerDevice(this.pdev, { flags: VFIO_DEVICE_FLAGS_PCI, numRegions: 9, numIrqs: 5 });
      this.baselinePages = this.memory.stats().allocatedPages;
      this.proc = sim.createProcess({ uid: 1000, capabilities: [], rlimitMemlock: 2 ** 30 });
    } else {
      const machine = new Machine({ memory: { size: 64 * 2 ** 20 } });
      this.memory = machine.memory;
      this.iommu = new IommuSubsystem({ log: (_level, m) => this.warned.push(m) });
      const drv = new TestIommu({ memory: machine.memory });
      drv.register(this.iommu);
      this.vfio = new VfioSubsystem(this.iommu);
      this.pdev = this.testDevice(new PciHostBridge(), drv, sva);
      this.vfio.registerDevice(this.pdev, { flags: VFIO_DEVICE_FLAGS_PCI, numRegions: 9, numIrqs: 5 });
      this.baselinePages = this.memory.stats().allocatedPages;
      this.proc = machine.createProcess({
        arch: 'arm64',
        uid: 1000,
        capabilities: [],
        rlimitMemlock: 2 ** 30,
      });
    }
    this.ram = BigInt(this.proc.mmap(RAM_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS));
    for (let off = 0n; off < RAM_BYTES; off += PS) this.proc.write(this.ram + off, new Uint8Array([1]));
    for (let k = 0n; k < 40n; k++) this.probes.push(k * PS);
  }

  /** A PCI function behind the test IOMMU (with PASID, ATS and PRI on an IOPF queue for SVA). */
  private testDevice(host: PciHostBridge, drv: TestIommu, sva: boolean): PciDevice {
    const pdev = host.rootBus.addDevice({
      devfn: 0x20,
      acs: { cap: 0x1f, ctrl: 0x1f },
      ...(sva
        ? { ats: {}, pri: { maxRequests: 32, prgResponsePasidRequired: true }, pasid: { maxPasidWidth: 8 } }
        : {}),
    });
    this.iommu.addDevice(pdev);
    if (sva) {
      const sched = new Scheduler();
      const hw = new TestIommuHw(drv, this.memory);
      hw.onFault = (dev, fault) => sched.spawn(() => iommuReportDeviceFault(dev, fault), 'prq-thread');
      const queue = iopfQueueAlloc('test-iommu', { scheduler: sched });
      pciEnablePasid(pdev, 0);
      pciEnableAts(pdev, 12);
      pciEnablePri(pdev, 32);
      iopfQueueAddDevice(queue, pdev);
    }
    return pdev;
  }

  step(label: string, fn: () => void): this {
    this.steps.push({ label, fn });
    return this;
  }

  get c(): Iommufd {
    if (this.container === null) throw new Error('no container');
    return this.container;
  }

  get g(): VfioGroupFile {
    if (this.group === null) throw new Error('no group');
    return this.group;
  }

  openContainer(): void {
    this.container = openVfioContainer({ iommu: this.iommu, process: this.proc });
  }

  openGroup(): void {
    const id = this.pdev.iommuGroup?.id;
    if (id === undefined) throw new Error('device without a group');
    this.group = this.vfio.openGroup(this.proc, id);
  }

  setContainer(): void {
    this.g.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: this.c.fd });
  }

  setIommu(): void {
    this.c.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
  }

  getDeviceFd(): void {
    this.g.ioctl(VFIO_GROUP_GET_DEVICE_FD, this.pdev.name);
  }

  mapDma(iova: bigint, size: bigint): void {
    this.c.ioctl(VFIO_IOMMU_MAP_DMA, {
      argsz: 32,
      flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
      vaddr: this.ram + iova,
      iova,
      size,
    });
  }

  /** Container, group, SET_CONTAINER, SET_IOMMU, device open: the state QEMU has before mapping. */
  ready(): this {
    this.openContainer();
    this.openGroup();
    this.setContainer();
    this.setIommu();
    this.getDeviceFd();
    return this;
  }

  snapshot(): string {
    const out = iommufdStateLines(this.proc, this.container, this.probes);
    const group = this.pdev.iommuGroup;
    const d = group?.domain;
    out.push(
      `group domain ${d === group?.defaultDomain ? 'default' : d === group?.blockingDomain ? 'blocking' : d === null || d === undefined ? 'none' : `type ${d.type}`} owned ${group?.owner !== null && group?.owner !== undefined} pasids ${[...(group?.pasidArray.keys() ?? [])]}`,
    );
    if (this.container !== null && !this.container.isClosed)
      out.push(`bound mms ${vfioIommuBoundMms(this.container.ctx).map((m) => `${m.pasid}/${m.bonds.size}`)}`);
    // A map that fails part-way keeps the intermediate tables it installed (io-pgtable frees tables
    // only with the domain, in Linux too): count RAM without the tables of the container's domains.
    const st = this.memory.stats();
    out.push(`ram allocated ${st.allocatedPages - this.domainTablePages()} pinned ${st.pinnedPages}`);
    const mm = this.proc.mm;
    out.push(
      `mm locked ${mm.lockedVm} pinned ${mm.pinnedVm} user ${this.proc.machine.userLockedVm(this.proc.uid)}`,
    );
    out.push(`fds ${this.proc.files.fds()}`);
    out.push(`group open ${this.group !== null && this.pdev.iommuGroup !== null}`);
    return out.join('\n');
  }

  /** Table pages of the io-pgtable domains of the container's HWPTs. */
  private domainTablePages(): number {
    if (this.container === null || this.container.isClosed) return 0;
    let n = 0;
    for (const o of this.container.ctx.listObjects()) {
      if (!(o instanceof IommufdHwPagetable) || o.domain === null) continue;
      const holder = o.domain as { pgtbl?: IoPgtableOps | null; pgtblOps?: IoPgtableOps | null };
      const pgtbl = holder.pgtbl ?? holder.pgtblOps;
      if (pgtbl === undefined || pgtbl === null) continue;
      const count = (t: PtDumpTable): number =>
        1 + t.entries.reduce((k, e) => k + (e.table ? count(e.table) : 0), 0);
      n += count(dumpIoPgtable(pgtbl).root);
    }
    return n;
  }

  teardown(): void {
    this.proc.exit();
    this.sim?.settle();
  }

  allocatedPages(): number {
    return this.memory.stats().allocatedPages;
  }

  warnings(): readonly string[] {
    return this.warned;
  }
}

/** The IOMMU behind a VFIO flow's device: the core's test IOMMU, or a full VT-d / SMMUv3 machine. */
export type FailNthPlatform = 'test' | 'vtd' | 'smmuv3';

/** A VFIO flow whose state `build` makes (nothing armed) and whose steps it adds. */
function flow(
  name: string,
  build: (e: VfioEnv) => void,
  sva = false,
  platform: FailNthPlatform = 'test',
): FailNthFlow {
  return {
    name: platform === 'test' ? `vfio: ${name}` : `vfio on ${platform}: ${name}`,
    file: 'vfio',
    setup() {
      const e = new VfioEnv(sva, platform);
      build(e);
      return e;
    },
  };
}

/** The flows run on the VT-d and SMMUv3 machines too (their drivers' allocations and unwinding). */
function machineFlows(platform: FailNthPlatform): FailNthFlow[] {
  const dma = (e: VfioEnv): void => {
    e.c.ioctl(VFIO_IOMMU_UNMAP_DMA, { argsz: 24, flags: 0, iova: 0n, size: RAM_BYTES });
  };
  const flows = [
    flow(
      'VFIO_GROUP_GET_DEVICE_FD',
      (e) => {
        e.openContainer();
        e.openGroup();
        e.setContainer();
        e.setIommu();
        e.step('VFIO_GROUP_GET_DEVICE_FD', () => e.getDeviceFd());
      },
      false,
      platform,
    ),
    flow(
      'VFIO_IOMMU_MAP_DMA + VFIO_IOMMU_UNMAP_DMA',
      (e) => {
        e.ready();
        e.step('VFIO_IOMMU_MAP_DMA', () => e.mapDma(0n, RAM_BYTES));
        e.step('VFIO_IOMMU_UNMAP_DMA', () => dma(e));
      },
      false,
      platform,
    ),
    flow(
      'VFIO_IOMMU_MAP_DMA before the device opens',
      (e) => {
        e.openContainer();
        e.openGroup();
        e.setContainer();
        e.setIommu();
        e.step('VFIO_IOMMU_MAP_DMA', () => e.mapDma(0n, RAM_BYTES));
        e.step('VFIO_GROUP_GET_DEVICE_FD', () => e.getDeviceFd());
      },
      false,
      platform,
    ),
  ];
  // SVA needs PRI, which Linux's SMMUv3 driver does not enable (it takes I/O page faults by stall
  // only, from platform devices): VFIO_IOMMU_BIND runs on the VT-d machine.
  if (platform === 'vtd')
    flows.push(
      flow(
        'VFIO_IOMMU_BIND',
        (e) => {
          e.ready();
          e.step('VFIO_IOMMU_BIND', () =>
            e.c.ioctl(VFIO_IOMMU_BIND, {
              argsz: 20,
              flags: VFIO_IOMMU_BIND_PROCESS,
              data: { flags: 0, pasid: 0, pid: 0 },
            }),
          );
        },
        true,
        platform,
      ),
    );
  return flows;
}

/** Every VFIO flow. */
export function vfioFlows(): FailNthFlow[] {
  return [
    ...machineFlows('vtd'),
    ...machineFlows('smmuv3'),
    flow('open container + group SET_CONTAINER', (e) => {
      e.step('open /dev/vfio/vfio', () => e.openContainer());
      e.step('open /dev/vfio/$GROUP', () => e.openGroup());
      e.step('VFIO_GROUP_SET_CONTAINER', () => e.setContainer());
    }),
    flow('VFIO_GROUP_SET_CONTAINER + VFIO_SET_IOMMU', (e) => {
      e.openContainer();
      e.openGroup();
      e.step('VFIO_GROUP_SET_CONTAINER', () => e.setContainer());
      e.step('VFIO_SET_IOMMU', () => e.setIommu());
    }),
    flow('VFIO_GROUP_GET_DEVICE_FD', (e) => {
      e.openContainer();
      e.openGroup();
      e.setContainer();
      e.setIommu();
      e.step('VFIO_GROUP_GET_DEVICE_FD', () => e.getDeviceFd());
    }),
    flow('VFIO_GROUP_SET_CONTAINER + VFIO_IOMMU_GET_INFO', (e) => {
      e.openContainer();
      e.openGroup();
      e.step('VFIO_GROUP_SET_CONTAINER', () => e.setContainer());
      e.step('VFIO_SET_IOMMU', () => e.setIommu());
      e.step('VFIO_IOMMU_GET_INFO', () =>
        e.c.ioctl(VFIO_IOMMU_GET_INFO, { argsz: 24, flags: 0, iova_pgsizes: 0n, cap_offset: 0, pad: 0 }),
      );
    }),
    flow('VFIO_IOMMU_MAP_DMA', (e) => {
      e.ready();
      e.step('VFIO_IOMMU_MAP_DMA', () => e.mapDma(0n, RAM_BYTES));
    }),
    flow('VFIO_IOMMU_MAP_DMA before the device opens', (e) => {
      e.openContainer();
      e.openGroup();
      e.setContainer();
      e.setIommu();
      e.step('VFIO_IOMMU_MAP_DMA', () => e.mapDma(0n, RAM_BYTES));
      e.step('VFIO_GROUP_GET_DEVICE_FD', () => e.getDeviceFd());
    }),
    flow('VFIO_IOMMU_MAP_DMA + VFIO_IOMMU_UNMAP_DMA', (e) => {
      e.ready();
      e.step('VFIO_IOMMU_MAP_DMA', () => e.mapDma(0n, RAM_BYTES));
      e.step('VFIO_IOMMU_UNMAP_DMA', () =>
        e.c.ioctl(VFIO_IOMMU_UNMAP_DMA, { argsz: 24, flags: 0, iova: 0n, size: RAM_BYTES }),
      );
    }),
    flow(
      'VFIO_IOMMU_BIND',
      (e) => {
        e.ready();
        e.step('VFIO_IOMMU_BIND', () =>
          e.c.ioctl(VFIO_IOMMU_BIND, {
            argsz: 20,
            flags: VFIO_IOMMU_BIND_PROCESS,
            data: { flags: 0, pasid: 0, pid: 0 },
          }),
        );
      },
      true,
    ),
  ];
}
