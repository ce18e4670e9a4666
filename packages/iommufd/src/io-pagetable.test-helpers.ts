// Test helpers for the io_pagetable engine: a machine with a test IOMMU, a simple dictionary domain
// with configurable page sizes and fault injection, user-address lookups without side effects, and
// snapshots for "a failed call changes nothing".

import { ErrnoError } from '@iommu-ts/base';
import {
  type Device,
  IOMMU_DOMAIN_UNMANAGED,
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
  IommuDomain,
  type IommuDomainGeometry,
  IommuSubsystem,
  PCI_ACS_RR,
  PCI_ACS_UF,
  PciHostBridge,
} from '@iommu-ts/iommu-core';
import { TestIommu, type TestIommuOptions } from '@iommu-ts/iommu-core/testing';
import {
  decodePte,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PhysicalMemory,
  PMD_DEPTH,
  PROT_READ,
  PROT_WRITE,
  Process,
  type ProcessOptions,
} from '@iommu-ts/mm';
import type { IoPagetable } from './io-pagetable.js';

export const P = PAGE_SIZE;
export const BP = BigInt(PAGE_SIZE);
export const RW = PROT_READ | PROT_WRITE;
export const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;

/** A machine, a process, an IOMMU subsystem with the test driver, and a PCI host bridge. */
export interface Env {
  ram: PhysicalMemory;
  proc: Process;
  sub: IommuSubsystem;
  driver: TestIommu;
  host: PciHostBridge;
  nextSlot: number;
}

export function makeEnv(
  procOptions: ProcessOptions = {},
  iommuOptions: TestIommuOptions = {},
  ramSize = 1 * 2 ** 30,
): Env {
  const ram = new PhysicalMemory({ size: ramSize });
  const proc = new Process(ram, procOptions);
  const sub = new IommuSubsystem();
  const driver = new TestIommu(iommuOptions);
  driver.register(sub);
  return { ram, proc, sub, driver, host: new PciHostBridge(), nextSlot: 1 };
}

/** A new PCI function probed by the test IOMMU. */
export function addDevice(env: Env): Device {
  const dev = env.host.rootBus.addDevice({
    devfn: env.nextSlot++ << 3,
    acs: { cap: 0x1f, ctrl: PCI_ACS_RR | PCI_ACS_UF },
  });
  const err = env.sub.addDevice(dev);
  if (err) throw err;
  return dev;
}

/** A test-IOMMU paging domain with its own device attached, so `translate(sid, ...)` sees it. */
export function addTestDomain(env: Env): { domain: IommuDomain; sid: number; dev: Device } {
  const dev = addDevice(env);
  const domain = env.sub.iommuPagingDomainAlloc(dev);
  env.sub.iommuAttachDevice(domain, dev);
  return { domain, sid: env.driver.streamIds(dev)[0] as number, dev };
}

/** What the test IOMMU hardware translates `iova` to for stream `sid` (PA, or the fault reason). */
export function hwTranslate(env: Env, sid: number, iova: bigint, write = false): bigint | string {
  const t = env.driver.translate(sid, null, iova, write ? IOMMU_FAULT_PERM_WRITE : IOMMU_FAULT_PERM_READ);
  return 'pa' in t ? t.pa : t.fault;
}

/** Options of {@link FakeDomain}. */
export interface FakeDomainOptions {
  pgsizeBitmap?: bigint;
  geometry?: Partial<IommuDomainGeometry>;
}

/**
 * A dictionary-backed paging domain: one entry per smallest page, any page-size bitmap (also
 * sub-4K, like the selftest mock domain), and `failMapAfter` to make the n-th later map call fail.
 */
export class FakeDomain extends IommuDomain {
  readonly entries = new Map<bigint, { pa: bigint; prot: number }>();
  readonly minPage: bigint;
  mapCalls = 0;
  /** When set, the map call that finds this many earlier successful calls fails with ENOMEM. */
  failMapAfter: number | null = null;

  constructor(options: FakeDomainOptions = {}) {
    const bitmap = options.pgsizeBitmap ?? 0x1000n;
    super(
      {
        mapPages: (_d, iova, paddr, pgsize, count, prot) => {
          if (this.failMapAfter !== null && this.mapCalls >= this.failMapAfter) {
            throw Object.assign(new ErrnoError('ENOMEM', 'injected map failure'), { mapped: 0 });
          }
          this.mapCalls++;
          const size = BigInt(pgsize) * BigInt(count);
          for (let off = 0n; off < size; off += this.minPage) {
            if (this.entries.has(iova + off)) throw new ErrnoError('EEXIST', 'already mapped');
          }
          for (let off = 0n; off < size; off += this.minPage)
            this.entries.set(iova + off, { pa: paddr + off, prot });
          return Number(size);
        },
        unmapPages: (_d, iova, pgsize, count) => {
          const size = BigInt(pgsize) * BigInt(count);
          let done = 0n;
          for (let off = 0n; off < size; off += this.minPage) {
            if (!this.entries.delete(iova + off)) break;
            done += this.minPage;
          }
          return Number(done);
        },
        iovaToPhys: (_d, iova) => {
          const base = iova - (iova % this.minPage);
          const e = this.entries.get(base);
          return e === undefined ? 0n : e.pa + (iova - base);
        },
      },
      {
        type: IOMMU_DOMAIN_UNMANAGED,
        pgsizeBitmap: bitmap,
        ...(options.geometry ? { geometry: options.geometry } : {}),
      },
    );
    this.minPage = bitmap & -bitmap;
  }

  /** The domain's translation of `iova`, or null. */
  pa(iova: bigint): bigint | null {
    const base = iova - (iova % this.minPage);
    const e = this.entries.get(base);
    return e === undefined ? null : e.pa + (iova - base);
  }

  /** Sorted `iova:pa:prot` entries, for snapshots. */
  dump(): string[] {
    return [...this.entries]
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .map(([k, v]) => `${k.toString(16)}:${v.pa.toString(16)}:${v.prot}`);
  }
}

/** The physical address of the page backing user address `va` right now, or null (no side effects). */
export function userPa(proc: Process, va: bigint | number): number | null {
  const mm = proc.mm;
  const pt = mm.pgtable;
  const a = Number(va);
  pt.lookup(a);
  if (pt.depth < PMD_DEPTH) return null;
  const huge = pt.depth === PMD_DEPTH;
  const st = decodePte(mm.arch, pt.words[pt.wi] as number, pt.words[pt.wi + 1] as number, huge);
  if (!st.present) return null;
  const size = huge ? 2 * 1024 * 1024 : P;
  return st.pa + ((Math.floor(a / P) * P) % size) + (a % P);
}

/** Pin count of the page backing `va` (0 when not present). */
export function pinsAt(proc: Process, va: bigint | number): number {
  const pa = userPa(proc, va);
  return pa === null ? 0 : proc.machine.memory.pinCount(pa);
}

/** An anonymous RW mapping of `pages` pages with every page faulted in (a distinct byte in each). */
export function userBuffer(proc: Process, pages: number): bigint {
  const va = proc.mmap(BigInt(pages * P), RW, PRIV);
  for (let i = 0; i < pages; i++) proc.write(va + BigInt(i * P), new Uint8Array([i & 0xff, 0x5a]));
  return va;
}

/** Everything a failed call must leave alone, as comparable data. */
export function snapshot(
  iopt: IoPagetable,
  proc: Process,
  buffers: readonly { va: bigint; pages: number }[],
  domains: readonly FakeDomain[] = [],
): unknown {
  const mem = proc.machine.memory;
  const pages: string[] = [];
  for (const b of buffers) {
    for (let i = 0; i < b.pages; i++) {
      const pa = userPa(proc, b.va + BigInt(i * P));
      pages.push(pa === null ? 'absent' : `${pa}:${mem.pinCount(pa)}:${mem.pageRefcount(pa)}`);
    }
  }
  return {
    areas: iopt
      .areas()
      .map(
        (a) =>
          `${a.iova}-${a.lastIova} ${a.pagesStart}-${a.pagesLast} +${a.pageOffset} p${a.iommuProt} ` +
          `s${a.storageDomain === null ? '-' : iopt.domains.indexOf(a.storageDomain)} acc${a.numAccesses} ` +
          `pin${a.pages.npinned}/${a.pages.lastNpinned} ref${a.pages.refcount}`,
      ),
    reserved: [...iopt.reservedItree].map((n) => `${n.start}-${n.last}`),
    allowed: [...iopt.allowedItree].map((n) => `${n.start}-${n.last}`),
    alignment: iopt.iovaAlignment,
    largePagesDisabled: iopt.largePagesDisabled,
    domains: iopt.domains.length,
    accesses: iopt.accesses.size,
    pages,
    lockedVm: proc.mm.lockedVm,
    pinnedVm: proc.mm.pinnedVm,
    userLockedVm: proc.machine.userLockedVm(proc.uid),
    allocated: mem.stats().allocatedPages,
    fake: domains.map((d) => d.dump()),
  };
}
