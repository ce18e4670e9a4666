// A small harness in the spirit of tools/testing/selftests/iommu/iommufd_utils.h: one process, one
// selftest iommufd, a faulted-in test buffer, and one method per helper macro, each going through
// `file.ioctl` exactly as user space would.

import { isErrnoError } from '@iommu-ts/base';
import type { IommuSubsystem } from '@iommu-ts/iommu-core';
import { MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE, PROT_READ, PROT_WRITE, type Process } from '@iommu-ts/mm';
import { expect } from 'vitest';
import { makeEnv } from '../io-pagetable.test-helpers.js';
import { Iommufd } from '../iommufd.js';
import { IOMMU_TEST_CMD, IOMMU_TEST_OP_MD_CHECK_REFS, type IommuTestCmd } from '../selftest-uapi.js';
import {
  IOMMU_DESTROY,
  IOMMU_HWPT_ALLOC,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
} from '../uapi.js';
import { mockIommuPeek } from './mock-iommu.js';

export const PS = PAGE_SIZE;
export const BPS = BigInt(PAGE_SIZE);
export const BUFFER_SIZE = 16n * BPS;
export const MAP_RW = IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

/** The errno code of `fn`, or 'ok'. */
export function errnoOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isErrnoError(e)) return e.code;
    throw e;
  }
  return 'ok';
}

/** An anonymous mapping of `bytes`, every page written so it is present. */
export function mapBuffer(proc: Process, bytes: bigint): bigint {
  const va = proc.mmap(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  for (let off = 0n; off < bytes; off += BPS)
    proc.write(va + off, new Uint8Array([Number((off / BPS) & 0xffn), 1]));
  return va;
}

/** One selftest iommufd and its helpers. */
export class Selftest {
  readonly proc: Process;
  readonly sub: IommuSubsystem;
  file: Iommufd;
  /** The shared test buffer (`buffer`, BUFFER_SIZE bytes). */
  readonly buffer: bigint;

  constructor() {
    const env = makeEnv();
    this.proc = env.proc;
    this.sub = env.sub;
    this.file = Iommufd.open({ iommu: this.sub, process: this.proc, selftest: true });
    this.buffer = mapBuffer(this.proc, BUFFER_SIZE);
  }

  ioctl(request: number, arg: object | bigint | number | null): number {
    return this.file.ioctl(request, arg);
  }

  /** IOMMU_TEST_CMD with `op`, `id` and one union member; returns the struct as copied back. */
  test(op: number, id: number, member: Record<string, unknown> = {}): IommuTestCmd {
    const cmd: Record<string, unknown> = { size: 72, op, id, ...member };
    this.ioctl(IOMMU_TEST_CMD, cmd);
    return cmd as unknown as IommuTestCmd;
  }

  ioasAlloc(): number {
    const cmd = { size: 12, flags: 0, out_ioas_id: 0 };
    this.ioctl(IOMMU_IOAS_ALLOC, cmd);
    return cmd.out_ioas_id;
  }

  destroy(id: number): void {
    this.ioctl(IOMMU_DESTROY, { size: 8, id });
  }

  /** IOMMU_IOAS_MAP; `iova` given → FIXED_IOVA. Returns the IOVA. */
  map(ioasId: number, va: bigint, length: bigint, iova?: bigint, flags = MAP_RW): bigint {
    const cmd = {
      size: 40,
      flags: flags | (iova === undefined ? 0 : IOMMU_IOAS_MAP_FIXED_IOVA),
      ioas_id: ioasId,
      __reserved: 0,
      user_va: va,
      length,
      iova: iova ?? 0n,
    };
    this.ioctl(IOMMU_IOAS_MAP, cmd);
    return cmd.iova;
  }

  /** IOMMU_IOAS_UNMAP; returns the bytes unmapped. */
  unmap(ioasId: number, iova: bigint, length: bigint): bigint {
    const cmd = { size: 24, ioas_id: ioasId, iova, length };
    this.ioctl(IOMMU_IOAS_UNMAP, cmd);
    return cmd.length;
  }

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

  checkRefs(va: bigint, length: bigint, refs: number): void {
    this.test(IOMMU_TEST_OP_MD_CHECK_REFS, 0, { check_refs: { length, uptr: va, refs } });
  }

  /** Scratch user memory of `bytes` (zeroed, present). */
  scratch(bytes: bigint): bigint {
    const va = this.proc.mmap(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    this.proc.write(va, new Uint8Array(Number(bytes)));
    return va;
  }

  /**
   * The fixture teardown (`teardown_iommufd`): close the fd, open a new one and check that the test
   * buffer holds no pin; the mock driver raised no warning.
   */
  teardown(): void {
    if (!this.file.isClosed) this.file.close();
    const again = Iommufd.open({ iommu: this.sub, process: this.proc, selftest: true });
    const cmd = {
      size: 72,
      op: IOMMU_TEST_OP_MD_CHECK_REFS,
      id: 0,
      check_refs: { length: BUFFER_SIZE, uptr: this.buffer, refs: 0 },
    };
    again.ioctl(IOMMU_TEST_CMD, cmd);
    again.close();
    expect(mockIommuPeek(this.sub)?.warnings ?? []).toEqual([]);
    expect(mockIommuPeek(this.sub)?.devices.size ?? 0).toBe(0);
  }
}
