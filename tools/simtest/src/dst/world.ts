/**
 * The system under test of one deterministic-simulation seed: a full `@iommu-ts/sim` machine, the
 * user processes and files a scenario created, and the oracle, a plain model of what each device
 * may reach at this moment. Every step runs through the public APIs of the packages; the oracle is
 * updated only once the call returned (its invalidation completed), and the invariants are checked
 * after each step ({@link DstWorld.checkInvariants}).
 */

import { ErrnoError } from '@iommu-ts/base';
import { traceIopfFaultReceived, traceIopfPageResponse } from '@iommu-ts/io-pgfault';
import { IommuDevFeature } from '@iommu-ts/iommu-core';
import {
  type IommuSva,
  iommuSvaBindDevice,
  iommuSvaFind,
  iommuSvaGetPasid,
  iommuSvaUnbindDevice,
} from '@iommu-ts/iommu-sva';
import {
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  Iommufd,
  type IommufdDevice,
  iommufdDeviceAttach,
  iommufdDeviceBind,
  iommufdDeviceUnbind,
} from '@iommu-ts/iommufd';
import {
  decodePte,
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  migratePage,
  PROT_READ,
  PROT_WRITE,
  type Process,
  PTE_DEPTH,
  reclaimPage,
} from '@iommu-ts/mm';
import { buildMachine, defaultPlatforms, type SimEndpoint, type SimMachine } from '@iommu-ts/sim';
import {
  openVfioContainer,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  type VfioDevice,
  type VfioGroupFile,
  VfioSubsystem,
} from '@iommu-ts/vfio-compat';
import { type DstHooks, noHooks } from './hooks.js';
import { InvariantError } from './invariant-error.js';
import { type DstOp, describeOp } from './ops.js';
import { Rand } from './rand.js';

const PAGE = 4096;
/** User processes a scenario juggles. */
export const DST_PROCESSES = 2;
/** Base of the IOVA window user maps go to (fixed IOVAs: clear of MSI windows and reserved regions). */
const IOVA_BASE = 0x1000_0000n;
/** Distance between IOVA slots (bytes). */
const SLOT_SIZE = 0x10_0000n;
/** IOVA slots. */
export const DST_SLOTS = 16;
/** uid of process slot `p`: distinct users so per-user locked_vm can be checked per process. */
const uidOf = (p: number): number => 1000 + p;

/** A region the scenario mmapped in a process. */
interface Region {
  readonly va: number;
  readonly pages: number;
}

/** One process slot. */
interface ProcSlot {
  proc: Process;
  regions: Region[];
  /** Pages the oracle says the process's iommufd maps pin (charged to the user's locked_vm). */
  iommufdPages: number;
  /** Pages its VFIO maps pin (charged to its mm's locked_vm). */
  vfioPages: number;
}

/** A user map (IOAS_MAP or VFIO MAP_DMA): the physical pages it pinned, in IOVA order. */
interface UserMap {
  readonly iova: bigint;
  readonly pas: readonly number[];
  readonly p: number;
}

/** iommufd state: a context of one process with one IOAS, nic0 bound and attached. */
interface IommufdState {
  readonly p: number;
  readonly file: Iommufd;
  readonly ioasId: number;
  readonly idev: IommufdDevice;
  maps: UserMap[];
}

/** The VFIO container of one process, nic1 in it. */
interface VfioState {
  readonly p: number;
  readonly container: Iommufd;
  readonly group: VfioGroupFile;
  readonly devFd: number;
  maps: UserMap[];
}

/** An SVA binding. */
interface SvaState {
  readonly p: number;
  readonly proc: Process;
  readonly ep: SimEndpoint;
  readonly handle: IommuSva;
  readonly pasid: number;
}

/** What a finished scenario measured. */
export interface DstWorldFigures {
  /** Invariant checks made. */
  readonly checks: number;
  /** Steps executed. */
  readonly steps: number;
}

/** The world of one seed (see the module comment). */
export class DstWorld {
  /** The machine. */
  readonly machine: SimMachine;
  /** Trace lines of the executed steps (resolved arguments and outcomes). */
  readonly trace: string[] = [];
  /** Invariant checks made so far. */
  checks = 0;
  /** Steps executed so far. */
  steps = 0;
  private readonly rand: Rand;
  private readonly hooks: DstHooks;
  private readonly procs: (ProcSlot | null)[] = [];
  private iommufd: IommufdState | null = null;
  private vfioState: VfioState | null = null;
  private readonly vfio: VfioSubsystem;
  private readonly vdev: VfioDevice;
  private readonly svas: SvaState[] = [];
  private readonly featureUsers = new Map<SimEndpoint, number>();
  private readonly pasidsSeen = new Set<number>();
  /** Page request groups received and not yet answered, by `dev:grpid`. */
  private readonly openGroups = new Map<string, number>();
  private readonly problems: string[] = [];
  private readonly unsubscribe: (() => void)[] = [];
  private readonly basePinned: number;
  private readonly baseAllocated: number;
  private readonly devs: SimEndpoint[];

  /**
   * Build the machine of a seed.
   * @param seed - the seed (scheduler interleaving and tag bytes)
   * @param platform - which default platform
   * @param hooks - test-only hooks that plant bugs
   */
  constructor(seed: number, platform: 'x86-vtd' | 'arm-smmuv3', hooks: DstHooks = noHooks) {
    const desc = defaultPlatforms()[platform === 'x86-vtd' ? 0 : 1];
    if (desc === undefined) throw new Error(`no default platform ${platform}`);
    this.machine = buildMachine(desc, { seed });
    this.rand = new Rand(seed);
    this.hooks = hooks;
    const m = this.machine;
    const byName = (n: string): SimEndpoint | undefined => m.endpoints.find((e) => e.name === n);
    this.devs = ['nic0', 'nic1', 'accel0', 'stall0'].map((n) => byName(n)).filter((e) => e !== undefined);
    this.vfio = new VfioSubsystem(m.iommu);
    const nic1 = this.dev('nic1');
    this.vdev = this.vfio.registerDevice(nic1.device, {
      flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
      numRegions: 9,
      numIrqs: 5,
    });
    this.unsubscribe.push(
      traceIopfFaultReceived.subscribe((e) => {
        // Only the last request of a group is answered; it carries LAST_PAGE (bit 1).
        if ((e.flags & 2) === 0) return;
        const key = `${e.dev}:${e.grpid}`;
        this.openGroups.set(key, (this.openGroups.get(key) ?? 0) + 1);
      }),
      traceIopfPageResponse.subscribe((e) => {
        const key = `${e.dev}:${e.grpid}`;
        const n = this.openGroups.get(key) ?? 0;
        if (n <= 0) this.problems.push(`page response to ${key} that was not asked (answered twice?)`);
        else if (n === 1) this.openGroups.delete(key);
        else this.openGroups.set(key, n - 1);
      }),
    );
    hooks.onBuild?.(this.machine);
    this.basePinned = m.memory.stats().pinnedPages;
    this.baseAllocated = m.memory.stats().allocatedPages;
    for (let p = 0; p < DST_PROCESSES; p++) this.procs.push(this.newProc(p));
  }

  private dev(name: string): SimEndpoint {
    const e = this.devs.find((d) => d.name === name);
    if (e === undefined) throw new Error(`machine has no ${name}`);
    return e;
  }

  private newProc(p: number): ProcSlot {
    return {
      proc: this.machine.createProcess({ uid: uidOf(p), capabilities: [] }),
      regions: [],
      iommufdPages: 0,
      vfioPages: 0,
    };
  }

  private log(line: string): void {
    this.trace.push(line);
  }

  private fail(what: string): never {
    throw new InvariantError(what);
  }

  /** The process of slot `p`, spawned first when the slot's process exited. */
  private slot(p: number): ProcSlot {
    const i = p % DST_PROCESSES;
    let s = this.procs[i] ?? null;
    if (s === null) {
      s = this.newProc(i);
      this.procs[i] = s;
      this.log(`spawn p${i}: pid ${s.proc.pid}`);
    }
    return s;
  }

  /** Region `r` of the process, mmapping a fresh one when it has none. */
  private regionOrNew(s: ProcSlot, p: number, r: number, pages: number): Region {
    const reg = this.region(s, r);
    if (reg !== null) return reg;
    this.run({ k: 'mmap', p, pages });
    return s.regions.at(-1) as Region;
  }

  private region(s: ProcSlot, r: number): Region | null {
    return s.regions.length === 0 ? null : (s.regions[r % s.regions.length] as Region);
  }

  /** The physical page mapping `va` in the process, or `null` when none is present. */
  private paOf(proc: Process, va: number): number | null {
    const pt = proc.mm.pgtable;
    pt.lookup(va);
    if (pt.depth < PTE_DEPTH - 1) return null;
    const huge = pt.depth === PTE_DEPTH - 1;
    const st = decodePte(proc.mm.arch, pt.words[pt.wi] as number, pt.words[pt.wi + 1] as number, huge);
    if (!st.present) return null;
    return huge ? st.pa + (va % 0x20_0000) - (va % PAGE) : st.pa;
  }

  /**
   * Run one step, then check the invariants.
   * @param op - the step
   * @throws InvariantError when a call misbehaved or an invariant broke after the step
   */
  exec(op: DstOp): void {
    this.steps++;
    let line: string;
    try {
      line = this.run(op);
    } catch (e) {
      this.log(`${describeOp(op)}: threw`);
      throw e;
    }
    this.log(line);
    this.checkInvariants(op.k === 'settle');
  }

  private run(op: DstOp): string {
    switch (op.k) {
      case 'mmap': {
        const s = this.slot(op.p);
        const va = Number(s.proc.mmap(op.pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS));
        s.regions.push({ va, pages: op.pages });
        return `mmap p${op.p % DST_PROCESSES} ${op.pages} pages -> 0x${va.toString(16)}`;
      }
      case 'munmap': {
        const s = this.slot(op.p);
        const reg = this.region(s, op.r);
        if (reg === null) return `munmap p${op.p % DST_PROCESSES}: nothing mapped, skipped`;
        s.proc.munmap(reg.va, reg.pages * PAGE);
        s.regions.splice(s.regions.indexOf(reg), 1);
        return `munmap p${op.p % DST_PROCESSES} 0x${reg.va.toString(16)}+${reg.pages}p`;
      }
      case 'touch': {
        const s = this.slot(op.p);
        const reg = this.regionOrNew(s, op.p, op.r, 1 + (op.page % 4));
        const va = reg.va + (op.page % reg.pages) * PAGE;
        s.proc.write(va, this.rand.bytes(16));
        return `cpu write p${op.p % DST_PROCESSES} 0x${va.toString(16)}`;
      }
      case 'dontneed': {
        const s = this.slot(op.p);
        const reg = this.region(s, op.r);
        if (reg === null) return `madvise p${op.p % DST_PROCESSES}: nothing mapped, skipped`;
        s.proc.madvise(reg.va, reg.pages * PAGE, MADV_DONTNEED);
        return `madvise(DONTNEED) p${op.p % DST_PROCESSES} 0x${reg.va.toString(16)}+${reg.pages}p`;
      }
      case 'migrate':
      case 'reclaim': {
        const s = this.slot(op.p);
        const reg = this.region(s, op.r);
        if (reg === null) return `${op.k} p${op.p % DST_PROCESSES}: nothing mapped, skipped`;
        const va = reg.va + (op.page % reg.pages) * PAGE;
        const pa = this.paOf(s.proc, va);
        const pinned = pa !== null && this.pinsOracle().has(pa);
        let outcome = 'ok';
        try {
          if (op.k === 'migrate') outcome = `-> pa 0x${migratePage(s.proc.mm, va).toString(16)}`;
          else reclaimPage(s.proc.mm, va);
        } catch (e) {
          if (!(e instanceof ErrnoError)) throw e;
          outcome = e.code;
        }
        if (pinned && (outcome === 'ok' || outcome.startsWith('->')))
          this.fail(`${op.k} of pinned page 0x${pa.toString(16)} at va 0x${va.toString(16)} succeeded`);
        return `${op.k} p${op.p % DST_PROCESSES} 0x${va.toString(16)}${pa === null ? '' : ` (pa 0x${pa.toString(16)})`}: ${outcome}`;
      }
      case 'iommufdOpen':
        return this.iommufdOpen(op.p % DST_PROCESSES);
      case 'ioasMap':
        if (this.iommufd === null) this.log(this.iommufdOpen(op.p % DST_PROCESSES));
        return this.userMap('iommufd', op.r, op.slot);
      case 'ioasUnmap':
        return this.userUnmap('iommufd', op.m);
      case 'iommufdClose':
        return this.iommufdClose();
      case 'vfioOpen':
        return this.vfioOpen(op.p % DST_PROCESSES);
      case 'vfioMap':
        if (this.vfioState === null) this.log(this.vfioOpen(op.p % DST_PROCESSES));
        return this.userMap('vfio', op.r, op.slot);
      case 'vfioUnmap':
        return this.userUnmap('vfio', op.m);
      case 'vfioClose':
        return this.vfioClose();
      case 'svaBind':
        return this.svaBind(op.p % DST_PROCESSES, op.dev);
      case 'svaUnbind': {
        if (this.svas.length === 0) return 'sva unbind: none, skipped';
        const b = this.svas[op.b % this.svas.length] as SvaState;
        this.svaUnbind(b);
        return `sva unbind ${b.ep.name} pasid ${b.pasid}`;
      }
      case 'dma':
        return this.dma(op);
      case 'exit':
        return this.exit(op.p % DST_PROCESSES);
      case 'settle':
        this.machine.settle();
        return 'settle';
    }
  }

  // ---- iommufd and VFIO ------------------------------------------------------------------------

  private iommufdOpen(p: number): string {
    if (this.iommufd !== null) return `iommufd open p${p}: open in p${this.iommufd.p}, skipped`;
    const s = this.slot(p);
    const file = Iommufd.open({ iommu: this.machine.iommu, process: s.proc });
    const alloc = { size: 12, flags: 0, out_ioas_id: 0 };
    file.ioctl(IOMMU_IOAS_ALLOC, alloc);
    const idev = iommufdDeviceBind(file.ctx, this.dev('nic0').device);
    iommufdDeviceAttach(idev, alloc.out_ioas_id);
    this.iommufd = { p, file, ioasId: alloc.out_ioas_id, idev, maps: [] };
    return `iommufd open p${p}: ioas ${alloc.out_ioas_id}, nic0 attached`;
  }

  private iommufdClose(): string {
    const st = this.iommufd;
    if (st === null) return 'iommufd close: skipped';
    iommufdDeviceUnbind(st.idev);
    st.file.close();
    this.dropMaps('iommufd');
    this.iommufd = null;
    return `iommufd close p${st.p}`;
  }

  private vfioOpen(p: number): string {
    const groupId = this.dev('nic1').device.iommuGroup?.id;
    if (this.vfioState !== null || groupId === undefined) return `vfio open p${p}: open, skipped`;
    const s = this.slot(p);
    const container = openVfioContainer({ iommu: this.machine.iommu, process: s.proc });
    const group = this.vfio.openGroup(s.proc, groupId);
    group.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: container.fd });
    container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    const devFd = group.ioctl(VFIO_GROUP_GET_DEVICE_FD, this.vdev.name);
    this.vfioState = { p, container, group, devFd, maps: [] };
    return `vfio open p${p}: container fd ${container.fd}, nic1 device fd ${devFd}`;
  }

  private vfioClose(): string {
    const st = this.vfioState;
    if (st === null) return 'vfio close: skipped';
    this.procs[st.p]?.proc.close(st.devFd);
    st.group.close();
    st.container.close();
    this.dropMaps('vfio');
    this.vfioState = null;
    return `vfio close p${st.p}`;
  }

  /** Forget the maps of a file that went away (its pins and accounting with it). */
  private dropMaps(kind: 'iommufd' | 'vfio'): void {
    const st = kind === 'iommufd' ? this.iommufd : this.vfioState;
    if (st === null) return;
    const s = this.procs[st.p];
    if (s != null) {
      if (kind === 'iommufd') s.iommufdPages = 0;
      else s.vfioPages = 0;
    }
    st.maps = [];
  }

  private userMap(kind: 'iommufd' | 'vfio', r: number, slotNo: number): string {
    const st = kind === 'iommufd' ? this.iommufd : this.vfioState;
    if (st === null) return `${kind} map: no file, skipped`;
    const s = this.slot(st.p);
    const reg = this.regionOrNew(s, st.p, r, 1 + (r % 4));
    const iova = IOVA_BASE + BigInt(slotNo % DST_SLOTS) * SLOT_SIZE;
    const length = BigInt(reg.pages * PAGE);
    const overlaps = this.allMaps(kind).some(
      (m) => m.iova < iova + length && iova < m.iova + BigInt(m.pas.length * PAGE),
    );
    const pinnedBefore = this.machine.memory.stats().pinnedPages;
    let errno: string | null = null;
    try {
      if (kind === 'iommufd') {
        const io = this.iommufd as IommufdState;
        const flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
        io.file.ioctl(IOMMU_IOAS_MAP, {
          size: 40,
          flags,
          ioas_id: io.ioasId,
          user_va: BigInt(reg.va),
          length,
          iova,
        });
      } else {
        const flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
        (this.vfioState as VfioState).container.ioctl(VFIO_IOMMU_MAP_DMA, {
          argsz: 32,
          flags,
          vaddr: BigInt(reg.va),
          iova,
          size: length,
        });
      }
    } catch (e) {
      if (!(e instanceof ErrnoError)) throw e;
      errno = e.code;
    }
    const what = `${kind} map p${st.p} va 0x${reg.va.toString(16)}+${reg.pages}p at iova 0x${iova.toString(16)}`;
    if (overlaps) {
      if (errno !== 'EEXIST')
        this.fail(`${what} over an existing map returned ${errno ?? 'success'}, want EEXIST`);
      if (this.machine.memory.stats().pinnedPages !== pinnedBefore)
        this.fail(`${what}: failed map left pins behind`);
      return `${what}: EEXIST`;
    }
    if (errno !== null) this.fail(`${what} failed with ${errno}`);
    const pas: number[] = [];
    for (let i = 0; i < reg.pages; i++) {
      const pa = this.paOf(s.proc, reg.va + i * PAGE);
      if (pa === null) this.fail(`${what}: page ${i} not present after pinning`);
      pas.push(pa);
    }
    st.maps.push({ iova, pas, p: st.p });
    if (kind === 'iommufd') s.iommufdPages += reg.pages;
    else s.vfioPages += reg.pages;
    return what;
  }

  private allMaps(kind: 'iommufd' | 'vfio'): UserMap[] {
    return (kind === 'iommufd' ? this.iommufd?.maps : this.vfioState?.maps) ?? [];
  }

  private userUnmap(kind: 'iommufd' | 'vfio', m: number): string {
    const st = kind === 'iommufd' ? this.iommufd : this.vfioState;
    if (st === null || st.maps.length === 0) return `${kind} unmap: skipped`;
    const map = st.maps[m % st.maps.length] as UserMap;
    const length = BigInt(map.pas.length * PAGE);
    let done: bigint;
    if (kind === 'iommufd') {
      const io = this.iommufd as IommufdState;
      const arg = { size: 24, ioas_id: io.ioasId, iova: map.iova, length };
      io.file.ioctl(IOMMU_IOAS_UNMAP, arg);
      done = arg.length;
    } else {
      const arg = { argsz: 24, flags: 0, iova: map.iova, size: length };
      (this.vfioState as VfioState).container.ioctl(VFIO_IOMMU_UNMAP_DMA, arg);
      done = arg.size;
    }
    const what = `${kind} unmap iova 0x${map.iova.toString(16)}+${map.pas.length}p`;
    if (done !== length) this.fail(`${what} unmapped ${done} bytes`);
    st.maps.splice(st.maps.indexOf(map), 1);
    const s = this.procs[st.p];
    if (s != null) {
      if (kind === 'iommufd') s.iommufdPages -= map.pas.length;
      else s.vfioPages -= map.pas.length;
    }
    return what;
  }

  // ---- SVA ---------------------------------------------------------------------------------------

  private svaDevices(): SimEndpoint[] {
    return this.devs.filter((d) => d.pasid && (d.pri || d.stall));
  }

  private svaBind(p: number, devNo: number): string {
    const devs = this.svaDevices();
    const ep = devs[devNo % devs.length];
    if (ep === undefined) return `sva bind p${p}: no SVA device, skipped`;
    const s = this.slot(p);
    if (this.svas.some((b) => b.ep === ep && b.proc === s.proc))
      return `sva bind p${p} ${ep.name}: bound, skipped`;
    const core = this.machine.iommu;
    const users = this.featureUsers.get(ep) ?? 0;
    if (users === 0) {
      core.iommuDevEnableFeature(ep.device, IommuDevFeature.IOPF);
      core.iommuDevEnableFeature(ep.device, IommuDevFeature.SVA);
    }
    let handle: IommuSva;
    try {
      handle = iommuSvaBindDevice(ep.device, s.proc.mm);
    } catch (e) {
      if (users === 0) this.disableFeatures(ep);
      throw e;
    }
    this.featureUsers.set(ep, users + 1);
    const pasid = iommuSvaGetPasid(handle);
    this.pasidsSeen.add(pasid);
    this.svas.push({ p, proc: s.proc, ep, handle, pasid });
    return `sva bind p${p} ${ep.name}: pasid ${pasid}`;
  }

  private disableFeatures(ep: SimEndpoint): void {
    this.machine.iommu.iommuDevDisableFeature(ep.device, IommuDevFeature.SVA);
    this.machine.iommu.iommuDevDisableFeature(ep.device, IommuDevFeature.IOPF);
  }

  private svaUnbind(b: SvaState): void {
    iommuSvaUnbindDevice(b.handle);
    this.svas.splice(this.svas.indexOf(b), 1);
    const users = (this.featureUsers.get(b.ep) ?? 1) - 1;
    this.featureUsers.set(b.ep, users);
    if (users === 0) this.disableFeatures(b.ep);
  }

  // ---- processes ---------------------------------------------------------------------------------

  private exit(p: number): string {
    const s = this.procs[p];
    if (s == null) return `exit p${p}: skipped`;
    // The process's device files close with it: the VFIO device fd and the iommufd-bound device.
    if (this.iommufd?.p === p) {
      iommufdDeviceUnbind(this.iommufd.idev);
      this.dropMaps('iommufd');
      this.iommufd = null;
    }
    if (this.vfioState?.p === p) {
      this.dropMaps('vfio');
      this.vfioState = null;
    }
    s.proc.exit();
    this.procs[p] = null;
    return `exit p${p}`;
  }

  // ---- DMA ---------------------------------------------------------------------------------------

  /** What a DMA at `addr` should reach: a physical address, or `null` when it must fault. */
  private expectNoPasid(dev: SimEndpoint, addr: bigint): number | null {
    const maps = dev.name === 'nic0' ? this.allMaps('iommufd') : this.allMaps('vfio');
    for (const m of maps) {
      if (addr >= m.iova && addr < m.iova + BigInt(m.pas.length * PAGE)) {
        const off = Number(addr - m.iova);
        return (m.pas[Math.floor(off / PAGE)] as number) + (off % PAGE);
      }
    }
    return null;
  }

  private dma(op: Extract<DstOp, { k: 'dma' }>): string {
    const dev = this.devs[op.dev % this.devs.length] as SimEndpoint;
    const off = op.off % PAGE;
    const len = Math.max(1, Math.min(op.len, PAGE - off));
    if (dev.name === 'nic0' || dev.name === 'nic1') {
      // An unassigned NIC is first given to a process (its DMA then goes through an empty IOAS).
      if (dev.name === 'nic0' && this.iommufd === null) this.log(this.iommufdOpen(op.i % DST_PROCESSES));
      if (dev.name === 'nic1' && this.vfioState === null) this.log(this.vfioOpen(op.i % DST_PROCESSES));
      const maps = this.allMaps(dev.name === 'nic0' ? 'iommufd' : 'vfio');
      let page: bigint;
      if (op.target === 'mapped' && maps.length > 0) {
        const m = maps[op.i % maps.length] as UserMap;
        page = m.iova + BigInt(((op.i >> 4) % m.pas.length) * PAGE);
      } else page = IOVA_BASE + BigInt(op.i % (DST_SLOTS * 8)) * (SLOT_SIZE / 8n);
      const addr = page + BigInt(off);
      const pa = this.expectNoPasid(dev, addr);
      return this.dmaCheck(dev, addr, len, op.write, undefined, pa === null ? null : { pa });
    }
    // PASID devices: DMA with the PASID of a binding, to an address in or out of the process's VMAs.
    if (!this.svas.some((b) => b.ep === dev))
      this.log(this.svaBind(op.i % DST_PROCESSES, this.svaDevices().indexOf(dev)));
    const bs = this.svas.filter((b) => b.ep === dev);
    if (bs.length === 0) return `dma ${dev.name}: no binding, skipped`;
    const b = bs[op.i % bs.length] as SvaState;
    const s = this.procs[b.p];
    const alive = s != null && s.proc === b.proc;
    let va: number;
    const regs = alive ? s.regions : [];
    if (op.target === 'mapped' && regs.length > 0) {
      const reg = regs[(op.i >> 2) % regs.length] as Region;
      va = reg.va + ((op.i >> 6) % reg.pages) * PAGE;
    } else va = 0x7000_0000 + (op.i % 64) * PAGE;
    const addr = BigInt(va + off);
    const inVma = regs.some((r) => va >= r.va && va < r.va + r.pages * PAGE);
    return this.dmaCheck(dev, addr, len, op.write, b.pasid, inVma ? { proc: b.proc, va: va + off } : null);
  }

  /**
   * Issue the DMA, wait for it, and compare with the oracle's answer: `null` must fault; a physical
   * address or a process address must be where the bytes landed (writes) or came from (reads).
   */
  private dmaCheck(
    dev: SimEndpoint,
    addr: bigint,
    len: number,
    write: boolean,
    pasid: number | undefined,
    want: { pa: number } | { proc: Process; va: number } | null,
  ): string {
    const mem = this.machine.memory;
    const tag = this.rand.bytes(len);
    const what = `dma ${dev.name} ${write ? 'write' : 'read'} ${pasid === undefined ? '' : `pasid ${pasid} `}0x${addr.toString(16)}+${len}`;
    // Reads: plant the tag where the oracle says the device reads from.
    if (!write && want !== null) {
      if ('pa' in want) mem.writeBytes(want.pa, tag);
      else want.proc.write(want.va, tag);
    }
    const opts = pasid === undefined ? {} : { pasid };
    let failed: string | null = null;
    let data: Uint8Array | undefined;
    try {
      const t = write ? dev.endpoint.dmaWrite(addr, tag, opts) : dev.endpoint.dmaRead(addr, len, opts);
      data = t.wait();
    } catch (e) {
      if (!(e instanceof ErrnoError) && !(e instanceof Error && e.name === 'DmaFaultError')) throw e;
      failed = e instanceof ErrnoError ? e.code : 'fault';
    }
    if (failed === 'ETIMEDOUT') this.fail(`${what}: never completed (page request or stall not answered)`);
    if (want === null) {
      if (failed === null) this.fail(`${what}: reached memory, but nothing is mapped there for the device`);
      return `${what}: faults (ok)`;
    }
    if (failed !== null) this.fail(`${what}: ${failed}, but the oracle says it is mapped`);
    const got = write
      ? 'pa' in want
        ? mem.readBytes(want.pa, len)
        : want.proc.read(want.va, len)
      : (data as Uint8Array);
    for (let i = 0; i < len; i++)
      if (got[i] !== tag[i]) {
        const where = 'pa' in want ? `pa 0x${want.pa.toString(16)}` : `va 0x${want.va.toString(16)}`;
        this.fail(
          `${what}: ${write ? 'bytes not found at' : 'did not read the bytes of'} ${where} (stale translation?)`,
        );
      }
    return `${what}: ok`;
  }

  // ---- invariants --------------------------------------------------------------------------------

  /** Expected pin count per physical page. */
  private pinsOracle(): Map<number, number> {
    const pins = new Map<number, number>();
    for (const m of [...this.allMaps('iommufd'), ...this.allMaps('vfio')])
      for (const pa of m.pas) pins.set(pa, (pins.get(pa) ?? 0) + 1);
    return pins;
  }

  /**
   * Check the invariants that hold after every step: pins, accounting, page requests.
   * @param settled - the machine was just settled (no page request may be outstanding)
   * @throws InvariantError naming the first violation
   */
  checkInvariants(settled: boolean): void {
    this.checks++;
    if (this.problems.length > 0) this.fail(this.problems[0] as string);
    const mem = this.machine.memory;
    const pins = this.pinsOracle();
    for (const [pa, n] of pins) {
      const got = mem.pinCount(pa);
      if (got !== n) this.fail(`pin count of pa 0x${pa.toString(16)} is ${got}, oracle says ${n}`);
    }
    const pinned = mem.stats().pinnedPages - this.basePinned;
    if (pinned !== pins.size) this.fail(`${pinned} pages pinned, oracle says ${pins.size}`);
    for (const [p, s] of this.procs.entries()) {
      if (s === null) continue;
      const mm = s.proc.mm;
      const want = s.iommufdPages + s.vfioPages;
      if (mm.pinnedVm !== want) this.fail(`p${p} pinned_vm ${mm.pinnedVm}, oracle says ${want}`);
      if (mm.lockedVm !== s.vfioPages)
        this.fail(`p${p} locked_vm ${mm.lockedVm}, oracle says ${s.vfioPages}`);
      const user = this.machine.mm.userLockedVm(uidOf(p));
      if (user !== s.iommufdPages)
        this.fail(`uid ${uidOf(p)} locked_vm ${user}, oracle says ${s.iommufdPages}`);
    }
    for (const d of this.devs) {
      const st = d.endpoint.stats;
      if (st.prgUnexpected !== 0)
        this.fail(`${d.name}: ${st.prgUnexpected} page responses the device did not expect`);
      if (settled && d.endpoint.pri.outstanding !== 0)
        this.fail(`${d.name}: ${d.endpoint.pri.outstanding} page requests outstanding after settle`);
    }
    if (settled && this.openGroups.size > 0)
      this.fail(`page request groups never answered: ${[...this.openGroups.keys()].join(', ')}`);
  }

  /**
   * Tear everything down (close files, unbind, exit every process, settle) and check that nothing
   * leaked: pins, IOAS/HWPT objects, PASIDs, RAM.
   * @throws InvariantError naming the first leak
   */
  teardown(): void {
    const ctx = this.iommufd?.file.ctx ?? null;
    this.iommufdClose();
    this.vfioClose();
    for (const b of [...this.svas]) this.svaUnbind(b);
    for (let p = 0; p < DST_PROCESSES; p++) this.exit(p);
    this.machine.settle();
    this.log('teardown: close all, unbind all, exit all, settle');
    this.checkInvariants(true);
    this.checks++;
    const mem = this.machine.memory.stats();
    if (mem.pinnedPages !== this.basePinned)
      this.fail(`${mem.pinnedPages - this.basePinned} pages still pinned after teardown`);
    if (ctx !== null && ctx.listObjects().length !== 0)
      this.fail(`iommufd objects left after close: ${ctx.listObjects().length}`);
    for (const pasid of this.pasidsSeen)
      if (iommuSvaFind(pasid, this.machine.iommu) !== null)
        this.fail(`PASID ${pasid} still finds an mm after teardown`);
    const extra = mem.allocatedPages - this.baseAllocated;
    if (extra > this.hooks.ramSlack)
      this.fail(`${extra} RAM pages allocated more than right after the build`);
  }

  /** Release the machine and the tracepoint probes. */
  dispose(): void {
    for (const u of this.unsubscribe) u();
    this.machine.dispose();
  }
}
