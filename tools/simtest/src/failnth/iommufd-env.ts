/**
 * The state of an iommufd fail_nth flow, as iommufd_fail_nth.c builds it: one process with a
 * faulted-in buffer, a selftest `/dev/iommu` with the mock driver, and helpers for each ioctl. The
 * snapshot reads every object, area, IOVA range, probed translation, pin count and accounting
 * counter a failed call must leave as it was.
 */

import { IommuSubsystem, iommuIovaToPhys } from '@iommu-ts/iommu-core';
import {
  IOMMU_DESTROY,
  IOMMU_HWPT_ALLOC,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  Iommufd,
  type IommufdCtx,
  IommufdDevice,
  IommufdHwPagetable,
  IommufdIoas,
  iommufdCtxFromFile,
  setTempMemoryLimit,
  TEMP_MEMORY_LIMIT_DEFAULT,
} from '@iommu-ts/iommufd';
import {
  IOMMU_TEST_CMD,
  IOMMU_TEST_OP_CREATE_ACCESS,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
  MOCK_APERTURE_START,
  mockIommuPeek,
  userPagePhys,
} from '@iommu-ts/iommufd/selftest';
import { MAP_ANONYMOUS, MAP_PRIVATE, PhysicalMemory, PROT_READ, PROT_WRITE, Process } from '@iommu-ts/mm';
import type { FailNthRun, FailNthStep } from './flow.js';

/** Bytes per CPU page. */
export const PS = 4096n;
/** Size of the test buffer (`BUFFER_SIZE`: 16 pages). */
export const BUFFER_SIZE = 16n * PS;
/** `IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE`. */
export const MAP_RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

/** The IDs `IOMMU_TEST_OP_MOCK_DOMAIN` returns. */
export interface MockDomainIds {
  /** The selftest device object. */
  readonly stdev: number;
  /** The (automatic) HWPT it is attached to. */
  readonly hwpt: number;
  /** The bound device. */
  readonly idev: number;
}

/**
 * The state of an open iommufd (or VFIO container) as lines: every object with its type and users;
 * for an IOAS its areas, usable IOVA ranges, domain and access counts and alignment; for a HWPT the
 * translation of each probed IOVA; for a device the HWPT it is attached to.
 * @param proc - the process holding the file
 * @param file - the file, or null (no lines)
 * @param probes - IOVAs to translate in every HWPT's domain
 * @returns the lines, in object ID order
 */
export function iommufdStateLines(proc: Process, file: Iommufd | null, probes: readonly bigint[]): string[] {
  const out: string[] = [];
  if (file === null || file.isClosed) return out;
  const ctx: IommufdCtx = iommufdCtxFromFile(proc.getFile(file.fd));
  try {
    if (ctx.isReleased) return out;
    for (const o of ctx.listObjects().sort((a, b) => a.id - b.id)) {
      const users = (o as unknown as { users?: number }).users;
      let line = `obj ${o.id} type ${o.type} users ${users ?? '?'}`;
      if (o instanceof IommufdIoas) {
        const iopt = o.iopt;
        line += ` areas ${iopt.areas().map((a) => `${a.iova.toString(16)}-${a.lastIova.toString(16)}`)}`;
        line += ` ranges ${iopt.iovaRanges().map((r) => `${r.start.toString(16)}-${r.last.toString(16)}`)}`;
        line += ` domains ${iopt.domains.length} accesses ${iopt.accesses.size} align ${iopt.iovaAlignment}`;
      } else if (o instanceof IommufdHwPagetable) {
        const d = o.domain;
        line += d === null ? ' no domain' : ` xlate ${probes.map((p) => iommuIovaToPhys(d, p).toString(16))}`;
      } else if (o instanceof IommufdDevice) {
        line += ` attached ${o.igroup.hwpt?.id ?? '-'}`;
      }
      out.push(line);
    }
  } finally {
    ctx.put();
  }
  return out;
}

/** One iommufd fail_nth environment; a {@link FailNthRun} once the flow has added its steps. */
export class IommufdEnv implements FailNthRun {
  /** RAM of the run (64 MiB). */
  readonly ram: PhysicalMemory;
  /** The IOMMU subsystem (the mock driver registers itself on the first selftest open). */
  readonly sub: IommuSubsystem;
  /** Allocated pages before the process existed. */
  readonly baselinePages: number;
  /** The process (unprivileged uid 1000 with a large RLIMIT_MEMLOCK, so locked_vm is charged). */
  readonly proc: Process;
  /** The open `/dev/iommu`, or null before {@link IommufdEnv.open}. */
  file: Iommufd | null = null;
  /** The faulted-in test buffer (`BUFFER_SIZE` bytes). */
  readonly buffer: bigint;
  /** IOVAs whose translation in every HWPT is part of the snapshot. */
  readonly probes: bigint[] = [];
  private batched = false;
  /** The calls under test (set by the flow). */
  readonly steps: FailNthStep[] = [];

  /**
   * @param open - open the selftest iommufd now (default true)
   */
  constructor(open = true) {
    this.ram = new PhysicalMemory({ size: 64 * 2 ** 20 });
    this.sub = new IommuSubsystem();
    this.baselinePages = this.ram.stats().allocatedPages;
    this.proc = new Process(this.ram, { uid: 1000, capabilities: [], rlimitMemlock: 2 ** 30 });
    this.buffer = this.mapBuffer(BUFFER_SIZE);
    for (let k = 0n; k < 40n; k++) {
      this.probes.push(MOCK_APERTURE_START + k * PS);
      this.probes.push(k * PS);
    }
    if (open) this.open();
  }

  /** Open the selftest `/dev/iommu` of the process. */
  open(): Iommufd {
    this.file = Iommufd.open({ iommu: this.sub, process: this.proc, selftest: true });
    return this.file;
  }

  /** The open file (throws when none is open). */
  get fd(): Iommufd {
    if (this.file === null) throw new Error('no iommufd open');
    return this.file;
  }

  /** An anonymous mapping of `bytes`, every page written so it is present. */
  mapBuffer(bytes: bigint): bigint {
    const va = BigInt(this.proc.mmap(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS));
    for (let off = 0n; off < bytes; off += PS)
      this.proc.write(va + off, new Uint8Array([Number(off / PS) & 0xff, 1]));
    return va;
  }

  /** `ioctl` on the open file. */
  ioctl(request: number, arg: object): number {
    return this.fd.ioctl(request, arg);
  }

  /** IOMMU_TEST_CMD with `op`, `id` and one union member; returns the struct as copied back. */
  test(op: number, id: number, member: Record<string, unknown> = {}): Record<string, unknown> {
    const cmd: Record<string, unknown> = { size: 72, op, id, ...member };
    this.ioctl(IOMMU_TEST_CMD, cmd);
    return cmd;
  }

  /** IOMMU_IOAS_ALLOC; returns the ID. */
  ioasAlloc(): number {
    const cmd = { size: 12, flags: 0, out_ioas_id: 0 };
    this.ioctl(IOMMU_IOAS_ALLOC, cmd);
    return cmd.out_ioas_id;
  }

  /** IOMMU_IOAS_MAP of `[va, va + length)`; a given `iova` means FIXED_IOVA. Returns the IOVA. */
  map(ioas: number, va: bigint, length: bigint, iova?: bigint): bigint {
    const cmd = {
      size: 40,
      flags: MAP_RW | (iova === undefined ? 0 : IOMMU_IOAS_MAP_FIXED_IOVA),
      ioas_id: ioas,
      __reserved: 0,
      user_va: va,
      length,
      iova: iova ?? 0n,
    };
    this.ioctl(IOMMU_IOAS_MAP, cmd);
    return cmd.iova;
  }

  /** IOMMU_TEST_OP_MOCK_DOMAIN on `ptId` (an IOAS or a HWPT). */
  mockDomain(ptId: number): MockDomainIds {
    const r = this.test(IOMMU_TEST_OP_MOCK_DOMAIN, ptId, { mock_domain: {} });
    const out = r['mock_domain'] as { out_stdev_id: number; out_hwpt_id: number; out_idev_id: number };
    return { stdev: out.out_stdev_id, hwpt: out.out_hwpt_id, idev: out.out_idev_id };
  }

  /** IOMMU_HWPT_ALLOC; returns the HWPT ID. */
  hwptAlloc(
    devId: number,
    ptId: number,
    flags = 0,
    data?: { type: number; len: number; uptr: bigint },
  ): number {
    const cmd = {
      size: 48,
      flags,
      dev_id: devId,
      pt_id: ptId,
      out_hwpt_id: 0,
      data_type: data?.type ?? 0,
      data_len: data?.len ?? 0,
      data_uptr: data?.uptr ?? 0n,
    };
    this.ioctl(IOMMU_HWPT_ALLOC, cmd);
    return cmd.out_hwpt_id;
  }

  /** IOMMU_TEST_OP_CREATE_ACCESS; returns the access file descriptor. */
  createAccess(ioas: number, flags: number): number {
    const r = this.test(IOMMU_TEST_OP_CREATE_ACCESS, ioas, { create_access: { flags } });
    return (r['create_access'] as { out_access_fd: number }).out_access_fd;
  }

  /** IOMMU_DESTROY. */
  destroy(id: number): void {
    this.ioctl(IOMMU_DESTROY, { size: 8, id });
  }

  /**
   * Add a call under test.
   * @param label - what it does
   * @param fn - the call
   * @returns this environment
   */
  step(label: string, fn: () => void): this {
    this.steps.push({ label, fn });
    return this;
  }

  /** {@inheritDoc FailNthRun.snapshot} */
  snapshot(): string {
    // The mock driver warns about every unmapped IOVA it is asked to translate: drop those.
    const mockWarnings = mockIommuPeek(this.sub)?.warnings;
    const warned = mockWarnings?.length ?? 0;
    const out = iommufdStateLines(this.proc, this.file, this.probes);
    if (mockWarnings !== undefined) mockWarnings.length = warned;
    const st = this.ram.stats();
    out.push(`ram allocated ${st.allocatedPages} pinned ${st.pinnedPages}`);
    const mm = this.proc.mm;
    out.push(
      `mm locked ${mm.lockedVm} pinned ${mm.pinnedVm} user ${this.proc.machine.userLockedVm(this.proc.uid)}`,
    );
    const pins: number[] = [];
    for (let off = 0n; off < BUFFER_SIZE; off += PS) {
      pins.push(this.ram.pinCount(userPagePhys(this.proc, this.buffer + off)));
    }
    out.push(`buffer pins ${pins}`);
    const mock = mockIommuPeek(this.sub);
    out.push(`mock devices ${mock?.devices.size ?? 0}`);
    out.push(`fds ${this.proc.files.size}`);
    return out.join('\n');
  }

  /**
   * Pin in batches of 2 pages (`IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT` 16 bytes) until teardown, so
   * a failing `pin_user_pages` call comes after earlier batches were pinned.
   */
  smallBatches(): void {
    this.test(IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, 0, { memory_limit: { limit: 16 } });
    this.batched = true;
  }

  /** {@inheritDoc FailNthRun.teardown} */
  teardown(): void {
    if (this.batched) setTempMemoryLimit(TEMP_MEMORY_LIMIT_DEFAULT);
    this.proc.exit();
  }

  /** {@inheritDoc FailNthRun.allocatedPages} */
  allocatedPages(): number {
    return this.ram.stats().allocatedPages;
  }

  /** {@inheritDoc FailNthRun.warnings} */
  warnings(): readonly string[] {
    return mockIommuPeek(this.sub)?.warnings ?? [];
  }
}
