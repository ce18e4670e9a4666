/**
 * The fuzzer's world: one simulated x86 machine, one unprivileged process with its fuzzing memory
 * (a data buffer, a read-only buffer, an argument area followed by an unmapped guard page, a
 * scratch page, and a hole), and the files under test: an iommufd file with the selftest mock
 * driver (and the VFIO compatibility ioctls, as /dev/iommu has), a VFIO container with a group
 * and a device file, and /dev/ioasid. It keeps what the fuzzer learned (IDs, fds, IOVAs, mappings)
 * and checks the invariants.
 */

import { isErrnoError } from '@iommu-ts/base';
import { IoasidSubsystem, IoasidUserDevice, type IoasidUserFile } from '@iommu-ts/ioasid';
import { Iommufd, setTempMemoryLimit, TEMP_MEMORY_LIMIT_DEFAULT } from '@iommu-ts/iommufd';
import { IOMMU_TEST_CMD, IOMMU_TEST_OP_MD_CHECK_MAP, userPagePhys } from '@iommu-ts/iommufd/selftest';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_NONE, PROT_READ, PROT_WRITE, type Process } from '@iommu-ts/mm';
import { buildMachine, defaultPlatforms, type SimMachine } from '@iommu-ts/sim';
import {
  iommufdVfioIoctl,
  openVfioContainer,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  type VfioDeviceFile,
  type VfioGroupFile,
  VfioSubsystem,
  vfioDeviceFileOf,
} from '@iommu-ts/vfio-compat';
import { PAGE } from './values.js';

/** Pages of the fuzzer's data buffer (what MAP calls usually point at). */
export const BUF_PAGES = 64;
const RO_PAGES = 4;
const ARG_PAGES = 2;
const RLIMIT_MEMLOCK = 2 * 1024 * 1024;

/** What the fuzzer learned about one file: IDs, fds and IOVAs that came back from successes. */
export class FilePool {
  /** Object IDs seen (live or destroyed since). */
  readonly ids: number[] = [];
  /** File descriptors seen. */
  readonly fds: number[] = [];
  /** IOVAs that calls succeeded with. */
  readonly iovas: bigint[] = [];

  /**
   * Remember a value, keeping each list short (the oldest are dropped).
   * @param list - one of this pool's lists
   * @param value - the value
   */
  static remember<T>(list: T[], value: T): void {
    if (list.includes(value)) return;
    list.push(value);
    if (list.length > 32) list.shift();
  }

  /** Forget everything (after a reopen). */
  clear(): void {
    this.ids.length = 0;
    this.fds.length = 0;
    this.iovas.length = 0;
  }
}

/** A successful IOAS_MAP on the iommufd file that nothing has unmapped since. */
export interface MapRecord {
  /** The IOAS. */
  readonly ioas: number;
  /** First IOVA. */
  readonly iova: bigint;
  /** Bytes. */
  readonly length: bigint;
  /** The user address the IOVA maps. */
  readonly uptr: bigint;
}

/** A mock device attached by IOMMU_TEST_OP_MOCK_DOMAIN, with its automatic HWPT. */
export interface MockRecord {
  /** The IOAS it attached to. */
  readonly ioas: number;
  /** The HWPT it got. */
  readonly hwpt: number;
  /** The selftest device object. */
  readonly stdev: number;
}

/** The fuzzer's machine, process, memory and files. */
export class FuzzWorld {
  /** The simulated machine. */
  readonly machine: SimMachine;
  /** The process every file belongs to (uid 1000, no capabilities). */
  readonly proc: Process;
  /** VFIO, with the chosen endpoint registered. */
  readonly vfio: VfioSubsystem;
  /** The VFIO device's name. */
  readonly vfioDeviceName: string;
  /** The IOMMU group of the VFIO device. */
  readonly vfioGroupId: number;
  /** The IOASID allocator behind /dev/ioasid. */
  readonly ioasids: IoasidSubsystem;
  /** /dev/ioasid. */
  readonly ioasidDev: IoasidUserDevice;
  /** The data buffer: {@link BUF_PAGES} pages, faulted in. */
  readonly buf: bigint;
  /** A read-only buffer of 4 pages, faulted in. */
  readonly ro: bigint;
  /** The argument area: 2 writable pages followed by an unmapped guard page. */
  readonly arg: bigint;
  /** A writable scratch page for arrays the structs point at. */
  readonly scratch: bigint;
  /** An unmapped address. */
  readonly hole: bigint;
  /** The iommufd file (null while closed). */
  iommufd: Iommufd | null = null;
  /** The VFIO container. */
  container: Iommufd | null = null;
  /** The VFIO group file. */
  group: VfioGroupFile | null = null;
  /** The VFIO device file. */
  device: VfioDeviceFile | null = null;
  /** The /dev/ioasid file. */
  ioasid: IoasidUserFile | null = null;
  /** What came back from the iommufd file. */
  readonly iommufdPool = new FilePool();
  /** What came back from the container. */
  readonly vfioPool = new FilePool();
  /** IOASIDs /dev/ioasid handed out (all time, for the leak check). */
  readonly ioasidsAllocated = new Set<number>();
  /** Recently allocated IOASIDs. */
  readonly ioasidRecent: number[] = [];
  /** Live mappings on the iommufd file, as far as the fuzzer can tell. */
  maps: MapRecord[] = [];
  /** Mock devices on the iommufd file and their automatic HWPTs. */
  mocks: MockRecord[] = [];
  readonly #pageVas: bigint[] = [];
  #baseAllocated = 0;

  /**
   * Build the machine, the process and its memory, take the baselines, and open every file.
   * @param seed - seed of the machine's scheduler
   */
  constructor(seed: number) {
    const platform = defaultPlatforms()[0];
    if (platform === undefined) throw new Error('no built-in platform');
    this.machine = buildMachine(platform, { seed });
    const ep = this.machine.endpoints.find((e) => e.pasid) ?? this.machine.endpoints[0];
    if (ep === undefined) throw new Error('the machine has no endpoint');
    const iommuGroup = ep.device.iommuGroup;
    if (iommuGroup === null) throw new Error(`${ep.name} has no IOMMU group`);
    this.vfio = new VfioSubsystem(this.machine.iommu);
    const vdev = this.vfio.registerDevice(ep.device, {
      flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
      numRegions: 9,
      numIrqs: 5,
    });
    this.vfioDeviceName = vdev.name;
    this.vfioGroupId = iommuGroup.id;
    this.ioasids = new IoasidSubsystem();
    this.ioasidDev = new IoasidUserDevice(this.ioasids);
    const proc = this.machine.createProcess({ uid: 1000, capabilities: [], rlimitMemlock: RLIMIT_MEMLOCK });
    this.proc = proc;
    const rw = PROT_READ | PROT_WRITE;
    const flags = MAP_PRIVATE | MAP_ANONYMOUS;
    this.buf = proc.mmap(PAGE * BigInt(BUF_PAGES), rw, flags);
    this.ro = proc.mmap(PAGE * BigInt(RO_PAGES), rw, flags);
    // The guard page and the hole stay mapped PROT_NONE: every access faults, and no later mmap
    // (the scratch page, a struct's memory) can land in them, as it would in an unmapped gap.
    this.arg = proc.mmap(PAGE * BigInt(ARG_PAGES + 1), rw, flags);
    proc.mprotect(this.arg + PAGE * BigInt(ARG_PAGES), PAGE, PROT_NONE);
    this.scratch = proc.mmap(PAGE, rw, flags);
    this.hole = proc.mmap(PAGE, rw, flags);
    proc.mprotect(this.hole, PAGE, PROT_NONE);
    const fill = (va: bigint, pages: number) => {
      for (let i = 0; i < pages; i++) {
        const at = va + PAGE * BigInt(i);
        proc.write(at, new Uint8Array([i + 1]));
        this.#pageVas.push(at);
      }
    };
    fill(this.buf, BUF_PAGES);
    fill(this.ro, RO_PAGES);
    fill(this.arg, ARG_PAGES);
    fill(this.scratch, 1);
    proc.mprotect(this.ro, PAGE * BigInt(RO_PAGES), PROT_READ);
    // A first open/close cycle allocates what stays allocated (context tables, group state).
    this.open();
    this.closeAll();
    this.#baseAllocated = this.machine.memory.stats().allocatedPages;
    this.open();
  }

  /** Open every file: iommufd, container (+ group set, TYPE1v2, device), /dev/ioasid. */
  open(): void {
    const { machine, proc } = this;
    this.iommufd = Iommufd.open({
      iommu: machine.iommu,
      process: proc,
      selftest: true,
      vfioIoctl: iommufdVfioIoctl,
    });
    this.container = openVfioContainer({ iommu: machine.iommu, process: proc, selftest: true });
    this.group = this.vfio.openGroup(proc, this.vfioGroupId);
    this.group.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: this.container.fd });
    this.container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    this.device = vfioDeviceFileOf(proc, this.group.ioctl(VFIO_GROUP_GET_DEVICE_FD, this.vfioDeviceName));
    this.ioasid = this.ioasidDev.open({ pid: proc.pid, mm: proc.mm });
  }

  /** Close every file of the process (highest fd first) and /dev/ioasid; forget what was learned. */
  closeAll(): void {
    const fds = this.proc.files.fds().sort((a, b) => b - a);
    for (const fd of fds) this.proc.close(fd);
    this.ioasid?.close();
    this.iommufd = null;
    this.container = null;
    this.group = null;
    this.device = null;
    this.ioasid = null;
    this.iommufdPool.clear();
    this.vfioPool.clear();
    this.ioasidRecent.length = 0;
    this.maps = [];
    this.mocks = [];
    setTempMemoryLimit(TEMP_MEMORY_LIMIT_DEFAULT);
    this.machine.settle();
  }

  /**
   * The invariants that hold between any two calls: the pins on the fuzzer's pages are the mm's
   * `pinned_vm`, the machine's pinned-page count matches, locked/pinned counters are sane, and the
   * mock domains translate what the fuzzer believes is mapped (MD_CHECK_MAP).
   * @returns one line per violation
   */
  check(): string[] {
    const problems: string[] = [];
    const mm = this.proc.mm;
    const memory = this.machine.memory;
    const seen = new Set<number>();
    let pins = 0;
    let pinnedPages = 0;
    for (const va of this.#pageVas) {
      const pa = userPagePhys(this.proc, va);
      if (seen.has(pa)) continue;
      seen.add(pa);
      const n = memory.pinCount(pa);
      pins += n;
      if (n > 0) pinnedPages++;
    }
    if (pins !== mm.pinnedVm) problems.push(`pins on the fuzzer's pages ${pins} != pinned_vm ${mm.pinnedVm}`);
    const statPinned = memory.stats().pinnedPages;
    if (statPinned !== pinnedPages)
      problems.push(`RAM reports ${statPinned} pinned pages, the fuzzer's pages hold ${pinnedPages}`);
    if (mm.pinnedVm < 0 || mm.lockedVm < 0)
      problems.push(`negative counters: locked_vm ${mm.lockedVm} pinned_vm ${mm.pinnedVm}`);
    if (mm.lockedVm > mm.pinnedVm) problems.push(`locked_vm ${mm.lockedVm} > pinned_vm ${mm.pinnedVm}`);
    problems.push(...this.#checkMaps());
    return problems;
  }

  #checkMaps(): string[] {
    const file = this.iommufd;
    if (file === null) return [];
    const out: string[] = [];
    let budget = 8;
    for (const m of this.mocks) {
      for (const r of this.maps) {
        if (r.ioas !== m.ioas || budget <= 0) continue;
        // MD_CHECK_MAP itself wants the mock page size (2 KiB) alignment.
        if ((r.iova | r.length | r.uptr) % 2048n !== 0n) continue;
        budget--;
        const cmd = {
          size: 72,
          op: IOMMU_TEST_OP_MD_CHECK_MAP,
          id: m.hwpt,
          check_map: { iova: r.iova, length: r.length, uptr: r.uptr },
        };
        try {
          file.ioctl(IOMMU_TEST_CMD, cmd);
        } catch (e) {
          const what = isErrnoError(e) ? e.code : String(e);
          out.push(
            `MD_CHECK_MAP hwpt ${m.hwpt} (ioas ${r.ioas}) iova 0x${r.iova.toString(16)} +0x${r.length.toString(16)} uptr 0x${r.uptr.toString(16)}: ${what}`,
          );
        }
      }
    }
    return out;
  }

  /**
   * After {@link FuzzWorld.closeAll}: nothing pinned, locked_vm = pinned_vm = 0, RAM back to the
   * baseline, no fd open, no IOASID left.
   * @returns one line per violation
   */
  checkClosed(): string[] {
    const problems: string[] = [];
    const mm = this.proc.mm;
    const stats = this.machine.memory.stats();
    if (stats.pinnedPages !== 0) problems.push(`after close: ${stats.pinnedPages} pages still pinned`);
    if (mm.pinnedVm !== 0 || mm.lockedVm !== 0)
      problems.push(`after close: locked_vm ${mm.lockedVm} pinned_vm ${mm.pinnedVm}`);
    if (stats.allocatedPages !== this.#baseAllocated)
      problems.push(
        `after close: ${stats.allocatedPages} RAM pages allocated, baseline ${this.#baseAllocated}`,
      );
    if (this.proc.files.size !== 0) problems.push(`after close: ${this.proc.files.size} fds open`);
    for (const id of this.ioasidsAllocated) {
      if (this.ioasids.ioasidInfo(id) !== undefined)
        problems.push(`after close: IOASID ${id} still allocated`);
    }
    this.ioasidsAllocated.clear();
    // The set's quota is not given back (V4's ioasid_set_free does not), so capacity is not compared.
    if (this.ioasids.findMmSet(this.proc.mm) !== undefined)
      problems.push('after close: the /dev/ioasid set is still registered');
    return problems;
  }

  /** Tear the machine down. */
  dispose(): void {
    this.machine.dispose();
  }
}
