// The VFIO container ioctls of iommufd (vfio_compat.c), checked errno for errno and byte for byte,
// including the kernel selftest's `iommufd` fixture VFIO tests and the `vfio_compat_mock_domain`
// fixture, against the selftest mock driver.

import { isErrnoError } from '@iommu-ts/base';
import { IommuSubsystem } from '@iommu-ts/iommu-core';
import {
  IOMMU_DESTROY,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  Iommufd,
  type IommufdIoas,
} from '@iommu-ts/iommufd';
import {
  IOMMU_TEST_CMD,
  IOMMU_TEST_OP_ADD_RESERVED,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  userPagePhys,
} from '@iommu-ts/iommufd/selftest';
import {
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  PAGE_SIZE,
  PhysicalMemory,
  PROT_READ,
  PROT_WRITE,
  Process,
  type ProcessOptions,
} from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import {
  iommufdVfioCompatIoas,
  iommufdVfioCompatIoasCreate,
  iommufdVfioCompatIoasGetId,
} from './compat-ioas.js';
import { iommufdVfioIoctl, openVfioContainer } from './container.js';
import { decodeVfioIommuType1InfoCaps } from './info-caps.js';
import {
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_EEH,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_GET_STATUS,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_DISABLE,
  VFIO_IOMMU_ENABLE,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_SPAPR_TCE_v2_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1_NESTING_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
} from './vfio-uapi.js';

const PS = BigInt(PAGE_SIZE);
const BUFFER_SIZE = 16n * PS;
const MOCK_APERTURE_START = 1n << 24n;
const MOCK_APERTURE_LAST = (1n << 31n) - 1n;
const HUGEPAGE_SIZE = 2n ** 21n;
const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
const U64_MAX = 2n ** 64n - 1n;

function errnoOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isErrnoError(e)) return e.code;
    throw e;
  }
  return 'ok';
}

/** One process with one iommufd (selftest kernel) and a faulted-in 16-page buffer. */
class Fx {
  readonly proc: Process;
  readonly sub = new IommuSubsystem();
  readonly file: Iommufd;
  readonly buffer: bigint;

  constructor(opts: { container?: boolean; proc?: ProcessOptions } = {}) {
    this.proc = new Process(new PhysicalMemory({ size: 2 ** 30 }), opts.proc ?? {});
    this.file = opts.container
      ? openVfioContainer({ iommu: this.sub, process: this.proc, selftest: true })
      : Iommufd.open({ iommu: this.sub, process: this.proc, selftest: true, vfioIoctl: iommufdVfioIoctl });
    this.buffer = this.mapBuffer(BUFFER_SIZE);
  }

  mapBuffer(bytes: bigint, flags = 0): bigint {
    const va = this.proc.mmap(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags);
    for (let off = 0n; off < bytes; off += PS) this.proc.write(va + off, new Uint8Array([1]));
    return va;
  }

  ioctl(request: number, arg?: unknown): number {
    return this.file.ioctl(request, arg as object);
  }

  ioasAlloc(): number {
    const cmd = { size: 12, flags: 0, out_ioas_id: 0 };
    this.ioctl(IOMMU_IOAS_ALLOC, cmd);
    return cmd.out_ioas_id;
  }

  mockDomain(id: number): { out_stdev_id: number; out_hwpt_id: number } {
    const cmd = {
      size: 72,
      op: IOMMU_TEST_OP_MOCK_DOMAIN,
      id,
      mock_domain: { out_stdev_id: 0, out_hwpt_id: 0 },
    };
    this.ioctl(IOMMU_TEST_CMD, cmd);
    return cmd.mock_domain;
  }

  vfioIoasSet(id: number): void {
    this.ioctl(IOMMU_VFIO_IOAS, { size: 12, ioas_id: id, op: IOMMU_VFIO_IOAS_SET });
  }

  /** FIXTURE_SETUP(vfio_compat_mock_domain): IOAS, mock domain, VFIO_IOAS SET, SET_IOMMU. */
  mockDomainFixture(version: number): number {
    const ioasId = this.ioasAlloc();
    this.mockDomain(ioasId);
    this.vfioIoasSet(ioasId);
    expect(this.ioctl(VFIO_SET_IOMMU, version)).toBe(0);
    return ioasId;
  }

  get ioas(): IommufdIoas {
    return iommufdVfioCompatIoas(this.file.ctx);
  }

  map(vaddr: bigint, iova: bigint, size: bigint, flags = RW): number {
    return this.ioctl(VFIO_IOMMU_MAP_DMA, { argsz: 32, flags, vaddr, iova, size });
  }

  unmap(iova: bigint, size: bigint, flags = 0): bigint {
    const cmd = { argsz: 24, flags, iova, size };
    this.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd);
    return cmd.size;
  }

  hugePages(ioasId: number): bigint {
    const cmd = {
      size: 24,
      option_id: IOMMU_OPTION_HUGE_PAGES,
      op: IOMMU_OPTION_OP_GET,
      object_id: ioasId,
      val64: 99n,
    };
    this.ioctl(IOMMU_OPTION, cmd);
    return cmd.val64;
  }

  /** Pin count of the page under user address `va`. */
  refs(va: bigint): number {
    return this.proc.machine.memory.pinCount(userPagePhys(this.proc, va));
  }

  /** Scratch user memory, every byte `fill`. */
  scratch(bytes: number, fill = 0): bigint {
    const va = this.proc.mmap(BigInt(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    this.proc.write(va, new Uint8Array(bytes).fill(fill));
    return va;
  }

  /** What a failed ioctl must not change: areas, pins of the buffer, accounting, objects. */
  snapshot(): unknown {
    const ioas = this.file.ctx.vfioIoas as IommufdIoas | null;
    const refs: number[] = [];
    for (let off = 0n; off < BUFFER_SIZE; off += PS) refs.push(this.refs(this.buffer + off));
    return {
      areas:
        ioas?.iopt.areas().map((a) => [a.iova, a.lastIova, a.pagesStart, a.pagesLast, a.iommuProt]) ?? null,
      largePagesDisabled: ioas?.iopt.largePagesDisabled ?? null,
      refs,
      lockedVm: this.proc.mm.lockedVm,
      pinnedVm: this.proc.mm.pinnedVm,
      userLockedVm: this.proc.machine.userLockedVm(this.proc.uid),
      objects: this.file.ctx.listObjects().map((o) => [o.id, o.type, o.users]),
    };
  }

  /** Run `fn`, expect errno `code`, and that nothing in {@link Fx.snapshot} changed. */
  expectFailsClean(code: string, fn: () => unknown): void {
    const before = this.snapshot();
    expect(errnoOf(fn)).toBe(code);
    expect(this.snapshot()).toEqual(before);
  }
}

function u32(b: Uint8Array, at: number): number {
  return new DataView(b.buffer, b.byteOffset).getUint32(at, true);
}

function u64(b: Uint8Array, at: number): bigint {
  return new DataView(b.buffer, b.byteOffset).getBigUint64(at, true);
}

describe('fixture iommufd: VFIO ioctls without a compatibility IOAS', () => {
  it('simple_ioctls: API version 0, TYPE1v2 extension 1', () => {
    const fx = new Fx();
    expect(fx.ioctl(VFIO_GET_API_VERSION)).toBe(0);
    expect(fx.ioctl(VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)).toBe(1);
  });

  it('unmap_cmd: argsz 1 EINVAL, flag bit 31 EINVAL, then ENODEV', () => {
    const fx = new Fx();
    const cmd = { argsz: 24, flags: 0, iova: 0n, size: 0n };
    expect(errnoOf(() => fx.ioctl(VFIO_IOMMU_UNMAP_DMA, { ...cmd, argsz: 1 }))).toBe('EINVAL');
    expect(errnoOf(() => fx.ioctl(VFIO_IOMMU_UNMAP_DMA, { ...cmd, flags: 2 ** 31 }))).toBe('EINVAL');
    expect(errnoOf(() => fx.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd))).toBe('ENODEV');
  });

  it('map_cmd: argsz 1 EINVAL, flag bit 31 EINVAL, then ENODEV', () => {
    const fx = new Fx();
    const cmd = { argsz: 32, flags: RW, vaddr: fx.buffer, iova: MOCK_APERTURE_START, size: PS };
    expect(errnoOf(() => fx.ioctl(VFIO_IOMMU_MAP_DMA, { ...cmd, argsz: 1 }))).toBe('EINVAL');
    expect(errnoOf(() => fx.ioctl(VFIO_IOMMU_MAP_DMA, { ...cmd, flags: 2 ** 31 }))).toBe('EINVAL');
    expect(errnoOf(() => fx.ioctl(VFIO_IOMMU_MAP_DMA, cmd))).toBe('ENODEV');
  });

  it('info_cmd: argsz 1 EINVAL, then ENODEV; nothing written', () => {
    const fx = new Fx();
    const cmd = { argsz: 1, flags: 0, iova_pgsizes: 0n, cap_offset: 0, pad: 0 };
    expect(errnoOf(() => fx.ioctl(VFIO_IOMMU_GET_INFO, cmd))).toBe('EINVAL');
    cmd.argsz = 24;
    expect(errnoOf(() => fx.ioctl(VFIO_IOMMU_GET_INFO, cmd))).toBe('ENODEV');
    expect(cmd).toEqual({ argsz: 24, flags: 0, iova_pgsizes: 0n, cap_offset: 0, pad: 0 });
  });

  it('set_iommu_cmd: TYPE1v2 and TYPE1 ENODEV; other types EINVAL first', () => {
    const fx = new Fx();
    expect(errnoOf(() => fx.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))).toBe('ENODEV');
    expect(errnoOf(() => fx.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU))).toBe('ENODEV');
    for (const t of [0, VFIO_SPAPR_TCE_IOMMU, VFIO_NOIOMMU_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU, 99]) {
      expect(errnoOf(() => fx.ioctl(VFIO_SET_IOMMU, t))).toBe('EINVAL');
    }
  });

  it('vfio_ioas: GET ENODEV, SET 0 ENOENT, SET then GET, CLEAR then GET ENODEV', () => {
    const fx = new Fx();
    const cmd = { size: 12, ioas_id: 0, op: IOMMU_VFIO_IOAS_GET };
    expect(errnoOf(() => fx.ioctl(IOMMU_VFIO_IOAS, cmd))).toBe('ENODEV');
    expect(errnoOf(() => fx.ioctl(IOMMU_VFIO_IOAS, { ...cmd, op: IOMMU_VFIO_IOAS_SET }))).toBe('ENOENT');
    const id = fx.ioasAlloc();
    fx.vfioIoasSet(id);
    fx.ioctl(IOMMU_VFIO_IOAS, cmd);
    expect(cmd.ioas_id).toBe(id);
    expect(iommufdVfioCompatIoasGetId(fx.file.ctx)).toBe(id);
    fx.ioctl(IOMMU_VFIO_IOAS, { size: 12, op: IOMMU_VFIO_IOAS_CLEAR });
    expect(errnoOf(() => fx.ioctl(IOMMU_VFIO_IOAS, cmd))).toBe('ENODEV');
    expect(errnoOf(() => iommufdVfioCompatIoasGetId(fx.file.ctx))).toBe('ENODEV');
  });

  it('numbers the compat layer does not handle are ENOTTY, on /dev/iommu and the container', () => {
    for (const container of [false, true]) {
      const fx = new Fx({ container });
      for (const req of [
        VFIO_IOMMU_DIRTY_PAGES,
        VFIO_IOMMU_ENABLE,
        VFIO_IOMMU_DISABLE,
        VFIO_GROUP_GET_STATUS,
        0x3b7f,
        0x3b00,
      ]) {
        expect(errnoOf(() => fx.ioctl(req, { argsz: 8 }))).toBe('ENOTTY');
      }
    }
  });
});

describe('VFIO_CHECK_EXTENSION', () => {
  it('answers the static extensions without an IOAS, DMA_CC needs the IOAS', () => {
    const fx = new Fx();
    const answers = [
      [VFIO_TYPE1_IOMMU, 1],
      [VFIO_SPAPR_TCE_IOMMU, 0],
      [VFIO_TYPE1v2_IOMMU, 1],
      [VFIO_EEH, 0],
      [VFIO_TYPE1_NESTING_IOMMU, 0],
      [VFIO_SPAPR_TCE_v2_IOMMU, 0],
      [VFIO_NOIOMMU_IOMMU, 0],
      [VFIO_UNMAP_ALL, 1],
      [VFIO_UPDATE_VADDR, 0],
      [0, 0],
      [1000, 0],
    ] as const;
    for (const [ext, answer] of answers) expect(fx.ioctl(VFIO_CHECK_EXTENSION, ext)).toBe(answer);
    expect(fx.ioctl(VFIO_CHECK_EXTENSION, 2n ** 64n + 1n)).toBe(1); // unsigned long: 1
    expect(errnoOf(() => fx.ioctl(VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU))).toBe('ENODEV');
  });

  it('DMA_CC: 1 with no HWPT, then 0 as soon as one paging HWPT does not enforce coherency', () => {
    const fx = new Fx();
    const id = fx.ioasAlloc();
    fx.vfioIoasSet(id);
    expect(fx.ioctl(VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU)).toBe(1);
    fx.mockDomain(id);
    fx.mockDomain(id);
    const hwpts = fx.ioas.hwptList as { enforceCacheCoherency: boolean }[];
    expect(hwpts).toHaveLength(1); // both mock devices share the automatic HWPT
    const hwpt = hwpts[0] as { enforceCacheCoherency: boolean };
    hwpt.enforceCacheCoherency = true;
    expect(fx.ioctl(VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU)).toBe(1);
    hwpt.enforceCacheCoherency = false;
    expect(fx.ioctl(VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU)).toBe(0);
  });
});

describe('VFIO_SET_IOMMU', () => {
  it('TYPE1 disables huge pages; TYPE1v2 leaves them; repeated calls succeed', () => {
    const fx = new Fx();
    const id = fx.ioasAlloc();
    fx.vfioIoasSet(id);
    expect(fx.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
    expect(fx.hugePages(id)).toBe(1n);
    expect(fx.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU)).toBe(0);
    expect(fx.hugePages(id)).toBe(0n);
    expect(fx.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU)).toBe(0);
    expect(fx.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
    expect(fx.hugePages(id)).toBe(0n); // v2 does not turn them back on
  });

  it('TYPE1 on an IOAS with domains and areas is EINVAL and changes nothing', () => {
    const fx = new Fx();
    const id = fx.ioasAlloc();
    fx.mockDomain(id);
    fx.vfioIoasSet(id);
    fx.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    fx.map(fx.buffer, MOCK_APERTURE_START, BUFFER_SIZE);
    fx.expectFailsClean('EINVAL', () => fx.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU));
    expect(fx.hugePages(id)).toBe(1n);
  });

  it('NOIOMMU is EINVAL (no CONFIG_VFIO_NOIOMMU) even with an IOAS', () => {
    const fx = new Fx();
    fx.mockDomainFixture(VFIO_TYPE1v2_IOMMU);
    fx.expectFailsClean('EINVAL', () => fx.ioctl(VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU));
  });
});

describe('VFIO_IOMMU_GET_INFO', () => {
  /** The full result with the mock domain: header, DMA_AVAIL at 24, IOVA_RANGE at 40, 72 bytes. */
  function fullImage(pgsizes: bigint, ranges: readonly [bigint, bigint][]): Uint8Array {
    const total = 40 + 16 + 16 * ranges.length;
    const b = new Uint8Array(total);
    const v = new DataView(b.buffer);
    v.setUint32(0, total, true);
    v.setUint32(4, VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS, true);
    v.setBigUint64(8, pgsizes, true);
    v.setUint32(16, 24, true);
    v.setUint16(24, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, true);
    v.setUint16(26, 1, true);
    v.setUint32(28, 40, true);
    v.setUint32(32, 0xffff_ffff, true);
    v.setUint16(40, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, true);
    v.setUint16(42, 1, true);
    v.setUint32(44, 0, true);
    v.setUint32(48, ranges.length, true);
    ranges.forEach(([s, e], i) => {
      v.setBigUint64(56 + 16 * i, s, true);
      v.setBigUint64(64 + 16 * i, e, true);
    });
    return b;
  }

  /**
   * What a call with `argsz` leaves in a buffer pre-filled with 0xee: header bytes up to
   * min(argsz, 24) (argsz = total, cap_offset only when everything fits), the DMA_AVAIL cap's 12
   * bytes once they fit (its 4 padding bytes never), its `next` only once argsz reaches the IOVA
   * cap, each IOVA range once the cap up to it fits, the IOVA cap's fixed part only when it all fits.
   */
  function expectedFor(full: Uint8Array, argsz: number, pad: number): Uint8Array {
    const total = full.length;
    const out = new Uint8Array(total + pad).fill(0xee);
    const copy = (from: number, to: number) => out.set(full.subarray(from, to), from);
    copy(0, Math.min(argsz, 24));
    if (argsz < total && argsz > 16) out.fill(0, 16, Math.min(argsz, 20)); // cap_offset 0
    if (argsz >= 36) {
      copy(24, 36);
      if (argsz < 40) out.fill(0, 28, 32); // next still 0
    }
    const nr = (total - 56) / 16;
    for (let i = 0; i < nr; i++) if (argsz - 40 >= 16 + 16 * (i + 1)) copy(56 + 16 * i, 72 + 16 * i);
    if (argsz >= total) copy(40, 56);
    return out;
  }

  function sweep(fx: Fx, full: Uint8Array): void {
    const total = full.length;
    const va = fx.scratch(PAGE_SIZE);
    for (let argsz = 16; argsz <= total + 8; argsz++) {
      const init = new Uint8Array(total + 16).fill(0xee);
      new DataView(init.buffer).setUint32(0, argsz, true);
      fx.proc.write(va, init);
      expect(fx.ioctl(VFIO_IOMMU_GET_INFO, va)).toBe(0);
      const got = fx.proc.read(va, total + 16);
      const want = expectedFor(full, Math.min(argsz, total + 16), 16);
      // Below 24 the bytes past argsz keep the caller's values (0xee); above `total` likewise.
      expect([argsz, got]).toEqual([argsz, want]);
      if (argsz >= total) {
        const caps = decodeVfioIommuType1InfoCaps(got);
        expect(caps.dmaAvail).toBe(0xffff_ffff);
        expect(caps.caps.map((c) => [c.id, c.version, c.offset])).toEqual([
          [VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, 24],
          [VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, 40],
        ]);
      }
    }
  }

  it('get_info (mock domain): every argsz from 16 past the full 72 bytes, byte for byte', () => {
    for (const version of [VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU]) {
      const fx = new Fx();
      fx.mockDomainFixture(version);
      const full = fullImage(BigInt(PAGE_SIZE), [[MOCK_APERTURE_START, MOCK_APERTURE_LAST]]);
      expect(full.length).toBe(72);
      sweep(fx, full);
      const caps = decodeVfioIommuType1InfoCaps(full);
      expect(caps.iovaRanges).toEqual([{ start: MOCK_APERTURE_START, end: MOCK_APERTURE_LAST }]);
    }
  });

  it('get_info (no domain, a reserved hole): two ranges, a range written before its cap header', () => {
    const fx = new Fx();
    const id = fx.ioasAlloc();
    fx.vfioIoasSet(id);
    fx.ioctl(IOMMU_TEST_CMD, {
      size: 72,
      op: IOMMU_TEST_OP_ADD_RESERVED,
      id,
      add_reserved: { start: 0x10_0000n, length: 0x10_0000n },
    });
    const full = fullImage(U64_MAX - (PS - 1n), [
      [0n, 0xf_ffffn],
      [0x20_0000n, U64_MAX],
    ]);
    expect(full.length).toBe(88);
    sweep(fx, full);
    // argsz 72: the first range is in place, the cap header (at 40) is not.
    const va = fx.scratch(PAGE_SIZE, 0xee);
    fx.proc.write(va, new Uint8Array([72, 0, 0, 0]));
    fx.ioctl(VFIO_IOMMU_GET_INFO, va);
    const got = fx.proc.read(va, 96);
    expect(u64(got, 56)).toBe(0n);
    expect(u64(got, 64)).toBe(0xf_ffffn);
    expect(u32(got, 40)).toBe(0xeeee_eeee);
    expect(u32(got, 0)).toBe(88);
  });

  it('kernel get_info: argsz 16 and 24 report flags and page sizes, cap_offset 0, argsz grows', () => {
    const fx = new Fx();
    fx.mockDomainFixture(VFIO_TYPE1v2_IOMMU);
    const small = { argsz: 16, flags: 0, iova_pgsizes: 0n, cap_offset: 77, pad: 77 };
    fx.ioctl(VFIO_IOMMU_GET_INFO, small);
    expect(small).toEqual({ argsz: 72, flags: 3, iova_pgsizes: PS, cap_offset: 77, pad: 77 });
    const full = { argsz: 24, flags: 0, iova_pgsizes: 0n, cap_offset: 77, pad: 77 };
    fx.ioctl(VFIO_IOMMU_GET_INFO, full);
    expect(full).toEqual({ argsz: 72, flags: 3, iova_pgsizes: PS, cap_offset: 0, pad: 0 });
    const big = { argsz: 72 };
    fx.ioctl(VFIO_IOMMU_GET_INFO, big);
    expect(big).toEqual({ argsz: 72, flags: 3, iova_pgsizes: PS, cap_offset: 24, pad: 0 });
  });

  it('page sizes: all ones folded to PAGE_SIZE without domains; EFAULT on an unmapped struct', () => {
    const fx = new Fx();
    fx.vfioIoasSet(fx.ioasAlloc());
    const cmd = { argsz: 16 };
    fx.ioctl(VFIO_IOMMU_GET_INFO, cmd);
    expect(cmd).toMatchObject({ iova_pgsizes: 0xffff_ffff_ffff_f000n });
    expect(errnoOf(() => fx.ioctl(VFIO_IOMMU_GET_INFO, 0x10n))).toBe('EFAULT');
    // The struct readable but the caps not writable: EFAULT (the header is not written).
    const va = fx.scratch(2 * PAGE_SIZE);
    fx.proc.munmap(va + PS, PS);
    const at = va + PS - 24n;
    fx.proc.write(at, new Uint8Array([200, 0, 0, 0]));
    expect(errnoOf(() => fx.ioctl(VFIO_IOMMU_GET_INFO, at))).toBe('EFAULT');
    expect(u32(fx.proc.read(at, 24), 0)).toBe(200);
  });
});

describe('VFIO_IOMMU_MAP_DMA', () => {
  it('maps at the fixed IOVA, pins once, writes nothing back', () => {
    const fx = new Fx();
    fx.mockDomainFixture(VFIO_TYPE1v2_IOMMU);
    const cmd = { argsz: 32, flags: RW, vaddr: fx.buffer, iova: MOCK_APERTURE_START, size: BUFFER_SIZE };
    expect(fx.ioctl(VFIO_IOMMU_MAP_DMA, cmd)).toBe(0);
    expect(cmd).toEqual({
      argsz: 32,
      flags: RW,
      vaddr: fx.buffer,
      iova: MOCK_APERTURE_START,
      size: BUFFER_SIZE,
    });
    expect(fx.ioas.iopt.areas().map((a) => [a.iova, a.lastIova])).toEqual([
      [MOCK_APERTURE_START, MOCK_APERTURE_START + BUFFER_SIZE - 1n],
    ]);
    expect(fx.refs(fx.buffer)).toBe(1);
    expect(fx.refs(fx.buffer + BUFFER_SIZE - PS)).toBe(1);
  });

  it('pointer form: the struct bytes in user memory stay as they were', () => {
    const fx = new Fx();
    fx.mockDomainFixture(VFIO_TYPE1v2_IOMMU);
    const va = fx.scratch(64, 0);
    const b = new Uint8Array(40).fill(0x5a);
    const v = new DataView(b.buffer);
    v.setUint32(0, 40, true);
    v.setUint32(4, RW, true);
    v.setBigUint64(8, fx.buffer, true);
    v.setBigUint64(16, MOCK_APERTURE_START, true);
    v.setBigUint64(24, PS, true);
    fx.proc.write(va, b);
    expect(fx.ioctl(VFIO_IOMMU_MAP_DMA, va)).toBe(0);
    expect(fx.proc.read(va, 40)).toEqual(b);
    expect(fx.refs(fx.buffer)).toBe(1);
  });

  it('errors, each changing nothing', () => {
    const fx = new Fx();
    fx.mockDomainFixture(VFIO_TYPE1v2_IOMMU);
    fx.map(fx.buffer, MOCK_APERTURE_START, 4n * PS);
    const ok = {
      argsz: 32,
      flags: RW,
      vaddr: fx.buffer + 4n * PS,
      iova: MOCK_APERTURE_START + 4n * PS,
      size: PS,
    };
    const call = (over: Partial<typeof ok>) => () => fx.ioctl(VFIO_IOMMU_MAP_DMA, { ...ok, ...over });
    fx.expectFailsClean('EINVAL', call({ argsz: 31 }));
    fx.expectFailsClean('EINVAL', call({ flags: RW | VFIO_DMA_MAP_FLAG_VADDR }));
    fx.expectFailsClean('EINVAL', call({ flags: 8 }));
    fx.expectFailsClean('EEXIST', call({ iova: MOCK_APERTURE_START + PS }));
    fx.expectFailsClean('EINVAL', call({ size: 0n }));
    fx.expectFailsClean('EINVAL', call({ iova: MOCK_APERTURE_START + 4n * PS + 0x400n }));
    fx.expectFailsClean('EINVAL', call({ iova: 0n })); // below the aperture: reserved
    fx.expectFailsClean('EFAULT', call({ vaddr: 0x1000n }));
    fx.expectFailsClean('EFAULT', () => fx.ioctl(VFIO_IOMMU_MAP_DMA, 0x1000n));
    fx.expectFailsClean('EOVERFLOW', call({ iova: U64_MAX - PS + 1n, size: 2n * PS }));
  });

  it('a map with neither READ nor WRITE is accepted (real type1 refuses it)', () => {
    const fx = new Fx();
    fx.mockDomainFixture(VFIO_TYPE1v2_IOMMU);
    expect(fx.map(fx.buffer, MOCK_APERTURE_START, PS, 0)).toBe(0);
    expect(fx.ioas.iopt.areas()).toHaveLength(1);
  });
});

describe('VFIO_IOMMU_UNMAP_DMA', () => {
  it('argsz, flag and ALL errors copy nothing back and change nothing', () => {
    const fx = new Fx();
    fx.mockDomainFixture(VFIO_TYPE1v2_IOMMU);
    fx.map(fx.buffer, MOCK_APERTURE_START, BUFFER_SIZE);
    for (const bad of [
      { argsz: 23, flags: 0 },
      { argsz: 24, flags: VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP },
      { argsz: 24, flags: VFIO_DMA_UNMAP_FLAG_VADDR },
      { argsz: 24, flags: VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR },
      { argsz: 24, flags: VFIO_DMA_UNMAP_FLAG_ALL }, // iova/size not 0
    ]) {
      const cmd = { ...bad, iova: MOCK_APERTURE_START, size: PS };
      fx.expectFailsClean('EINVAL', () => fx.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd));
      expect(cmd.size).toBe(PS);
    }
    fx.expectFailsClean('EFAULT', () => fx.ioctl(VFIO_IOMMU_UNMAP_DMA, 0x1000n));
  });

  it('TYPE1v2: bisecting a mapping is ENOENT, size 0 written back, nothing changed', () => {
    const fx = new Fx();
    fx.mockDomainFixture(VFIO_TYPE1v2_IOMMU);
    fx.map(fx.buffer, MOCK_APERTURE_START, BUFFER_SIZE);
    const cmd = { argsz: 24, flags: 0, iova: MOCK_APERTURE_START + PS, size: PS };
    fx.expectFailsClean('ENOENT', () => fx.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd));
    expect(cmd.size).toBe(0n);
  });

  it('size 0 is EINVAL with size copied back; an empty range succeeds with size 0', () => {
    const fx = new Fx();
    fx.mockDomainFixture(VFIO_TYPE1v2_IOMMU);
    fx.map(fx.buffer, MOCK_APERTURE_START, PS);
    const va = fx.scratch(32, 0x77);
    const b = new Uint8Array(24);
    const v = new DataView(b.buffer);
    v.setUint32(0, 24, true);
    v.setBigUint64(8, MOCK_APERTURE_START, true);
    v.setBigUint64(16, 0n, true);
    fx.proc.write(va, b);
    fx.expectFailsClean('EINVAL', () => fx.ioctl(VFIO_IOMMU_UNMAP_DMA, va));
    expect(fx.proc.read(va, 24)).toEqual(b);
    expect(fx.unmap(MOCK_APERTURE_START + 0x10_0000n, PS)).toBe(0n);
    expect(fx.ioas.iopt.areas()).toHaveLength(1);
  });

  it('pointer form: size written back to user memory, bytes past 24 untouched', () => {
    const fx = new Fx();
    fx.mockDomainFixture(VFIO_TYPE1v2_IOMMU);
    fx.map(fx.buffer, MOCK_APERTURE_START, BUFFER_SIZE);
    const va = fx.scratch(48, 0x77);
    const b = new Uint8Array(48).fill(0x77);
    const v = new DataView(b.buffer);
    v.setUint32(0, 48, true);
    v.setUint32(4, 0, true);
    v.setBigUint64(8, MOCK_APERTURE_START, true);
    v.setBigUint64(16, BUFFER_SIZE, true);
    fx.proc.write(va, b);
    expect(fx.ioctl(VFIO_IOMMU_UNMAP_DMA, va)).toBe(0);
    const got = fx.proc.read(va, 48);
    expect(u64(got, 16)).toBe(BUFFER_SIZE);
    expect(got.subarray(24)).toEqual(new Uint8Array(24).fill(0x77));
    expect(fx.refs(fx.buffer)).toBe(0);
  });

  it('a walk failing part way keeps what it removed and reports it (as Linux)', () => {
    const fx = new Fx();
    fx.mockDomainFixture(VFIO_TYPE1v2_IOMMU);
    fx.map(fx.buffer, MOCK_APERTURE_START, 2n * PS);
    fx.map(fx.buffer + 2n * PS, MOCK_APERTURE_START + 2n * PS, 2n * PS);
    const cmd = { argsz: 24, flags: 0, iova: MOCK_APERTURE_START, size: 3n * PS };
    expect(errnoOf(() => fx.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd))).toBe('ENOENT');
    expect(cmd.size).toBe(2n * PS);
    expect(fx.ioas.iopt.areas().map((a) => a.iova)).toEqual([MOCK_APERTURE_START + 2n * PS]);
    expect(fx.refs(fx.buffer)).toBe(0);
    expect(fx.refs(fx.buffer + 2n * PS)).toBe(1);
  });

  it('TYPE1: a slice out of the middle of a mapping is cut out exactly; pins follow', () => {
    const fx = new Fx();
    fx.mockDomainFixture(VFIO_TYPE1_IOMMU);
    fx.map(fx.buffer, MOCK_APERTURE_START, BUFFER_SIZE);
    expect(fx.unmap(MOCK_APERTURE_START + 4n * PS, 3n * PS)).toBe(3n * PS);
    expect(fx.ioas.iopt.areas().map((a) => [a.iova, a.lastIova])).toEqual([
      [MOCK_APERTURE_START, MOCK_APERTURE_START + 4n * PS - 1n],
      [MOCK_APERTURE_START + 7n * PS, MOCK_APERTURE_START + BUFFER_SIZE - 1n],
    ]);
    const refs = [];
    for (let i = 0n; i < 16n; i++) refs.push(fx.refs(fx.buffer + i * PS));
    expect(refs).toEqual([1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    // From IOVA 0 (no cut below) to the mapping's third page: the start goes.
    expect(errnoOf(() => fx.unmap(0n, MOCK_APERTURE_START + 2n * PS))).toBe('ok');
    expect(fx.ioas.iopt.areas()[0]?.iova).toBe(MOCK_APERTURE_START + 2n * PS);
  });

  it('TYPE1: a cut that is not page aligned is EINVAL, nothing copied back, nothing changed', () => {
    const fx = new Fx();
    fx.mockDomainFixture(VFIO_TYPE1_IOMMU);
    fx.map(fx.buffer, MOCK_APERTURE_START, BUFFER_SIZE);
    const cmd = { argsz: 24, flags: 0, iova: MOCK_APERTURE_START + PS, size: 0x800n };
    fx.expectFailsClean('EINVAL', () => fx.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd));
    expect(cmd.size).toBe(0x800n);
  });

  it('ALL unmaps everything, also with nothing mapped', () => {
    const fx = new Fx();
    fx.mockDomainFixture(VFIO_TYPE1v2_IOMMU);
    expect(fx.unmap(0n, 0n, VFIO_DMA_UNMAP_FLAG_ALL)).toBe(0n);
    fx.map(fx.buffer, MOCK_APERTURE_START, PS);
    fx.map(fx.buffer + PS, MOCK_APERTURE_START + 8n * PS, 2n * PS);
    expect(fx.unmap(0n, 0n, VFIO_DMA_UNMAP_FLAG_ALL)).toBe(3n * PS);
    expect(fx.ioas.iopt.areas()).toEqual([]);
  });
});

describe.each([
  ['Ver1v2', VFIO_TYPE1v2_IOMMU],
  ['Ver1v0', VFIO_TYPE1_IOMMU],
] as const)('fixture vfio_compat_mock_domain (%s)', (_name, version) => {
  it('simple_close', () => {
    const fx = new Fx();
    fx.mockDomainFixture(version);
    fx.file.close();
    expect(fx.file.ctx.isReleased).toBe(true);
  });

  it('option_huge_pages: 0 for TYPE1, 1 for TYPE1v2', () => {
    const fx = new Fx();
    const id = fx.mockDomainFixture(version);
    expect(fx.hugePages(id)).toBe(version === VFIO_TYPE1_IOMMU ? 0n : 1n);
  });

  it('map: simple, empty unmap, UNMAP_ALL rules, 16 single pages in shuffled order', () => {
    const fx = new Fx();
    fx.mockDomainFixture(version);
    const unmapCmd = { argsz: 24, flags: 0, iova: MOCK_APERTURE_START, size: BUFFER_SIZE };
    expect(fx.map(fx.buffer, MOCK_APERTURE_START, BUFFER_SIZE)).toBe(0);
    expect(fx.ioctl(VFIO_IOMMU_UNMAP_DMA, unmapCmd)).toBe(0);
    expect(unmapCmd.size).toBe(BUFFER_SIZE);
    unmapCmd.size = BUFFER_SIZE;
    expect(fx.ioctl(VFIO_IOMMU_UNMAP_DMA, unmapCmd)).toBe(0);
    expect(unmapCmd.size).toBe(0n);

    fx.map(fx.buffer, MOCK_APERTURE_START, BUFFER_SIZE);
    const all = { argsz: 24, flags: VFIO_DMA_UNMAP_FLAG_ALL, iova: MOCK_APERTURE_START, size: BUFFER_SIZE };
    expect(errnoOf(() => fx.ioctl(VFIO_IOMMU_UNMAP_DMA, all))).toBe('EINVAL');
    all.iova = 0n;
    all.size = 0n;
    expect(fx.ioctl(VFIO_IOMMU_UNMAP_DMA, all)).toBe(0);
    expect(all.size).toBe(BUFFER_SIZE);

    const pages: bigint[] = [];
    for (let i = 0n; i < 16n; i++) {
      pages.push(MOCK_APERTURE_START + i * PS);
      fx.map(fx.buffer + i * PS, MOCK_APERTURE_START + i * PS, PS);
    }
    const order = [5, 0, 15, 9, 2, 12, 7, 1, 14, 3, 10, 6, 13, 4, 11, 8];
    for (const i of order) expect(fx.unmap(pages[i] as bigint, PS)).toBe(PS);
    expect(fx.ioas.iopt.areas()).toEqual([]);
  });

  it('huge_map: 2 huge pages, 16 slices in shuffled order: TYPE1 cuts them, TYPE1v2 ENOENT', () => {
    const fx = new Fx();
    fx.mockDomainFixture(version);
    const size = 2n * HUGEPAGE_SIZE;
    const buf = fx.mapBuffer(size, MAP_HUGETLB);
    expect(fx.map(buf, MOCK_APERTURE_START, size)).toBe(0);
    const slice = size / 16n;
    const order = [3, 11, 0, 7, 15, 2, 9, 5, 13, 1, 8, 14, 6, 10, 4, 12];
    for (const i of order) {
      const cmd = { argsz: 24, flags: 0, iova: MOCK_APERTURE_START + BigInt(i) * slice, size: slice };
      if (version === VFIO_TYPE1_IOMMU) {
        expect(fx.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd)).toBe(0);
        expect(cmd.size).toBe(slice);
      } else {
        expect(errnoOf(() => fx.ioctl(VFIO_IOMMU_UNMAP_DMA, cmd))).toBe('ENOENT');
      }
    }
    expect(fx.ioas.iopt.areas()).toHaveLength(version === VFIO_TYPE1_IOMMU ? 0 : 1);
  });
});

describe('the container (/dev/vfio/vfio) and the compatibility IOAS', () => {
  const user: ProcessOptions = { uid: 1000, capabilities: [], rlimitMemlock: 64 * 2 ** 20 };

  it('opens in MM accounting mode; MAP charges locked_vm; close returns every pin and byte', () => {
    const fx = new Fx({ container: true, proc: user });
    const mode = {
      size: 24,
      option_id: IOMMU_OPTION_RLIMIT_MODE,
      op: IOMMU_OPTION_OP_GET,
      object_id: 0,
      val64: 9n,
    };
    fx.ioctl(IOMMU_OPTION, mode);
    expect(mode.val64).toBe(1n);
    fx.mockDomainFixture(VFIO_TYPE1v2_IOMMU);
    fx.map(fx.buffer, MOCK_APERTURE_START, BUFFER_SIZE);
    expect(fx.proc.mm.lockedVm).toBe(16);
    expect(fx.proc.mm.pinnedVm).toBe(16);
    expect(fx.proc.machine.userLockedVm(1000)).toBe(0);
    expect(fx.refs(fx.buffer + 5n * PS)).toBe(1);
    fx.file.close();
    expect(fx.proc.mm.lockedVm).toBe(0);
    expect(fx.proc.mm.pinnedVm).toBe(0);
    for (let off = 0n; off < BUFFER_SIZE; off += PS) expect(fx.refs(fx.buffer + off)).toBe(0);
  });

  it('/dev/iommu with the fallback charges the user instead', () => {
    const fx = new Fx({ proc: user });
    fx.mockDomainFixture(VFIO_TYPE1v2_IOMMU);
    fx.map(fx.buffer, MOCK_APERTURE_START, BUFFER_SIZE);
    expect(fx.proc.mm.lockedVm).toBe(0);
    expect(fx.proc.machine.userLockedVm(1000)).toBe(16);
    fx.file.close();
    expect(fx.proc.machine.userLockedVm(1000)).toBe(0);
    expect(fx.proc.mm.pinnedVm).toBe(0);
  });

  it('MAP over RLIMIT_MEMLOCK is ENOMEM and changes nothing', () => {
    const fx = new Fx({ container: true, proc: { ...user, rlimitMemlock: 8 * PAGE_SIZE } });
    fx.mockDomainFixture(VFIO_TYPE1v2_IOMMU);
    fx.expectFailsClean('ENOMEM', () => fx.map(fx.buffer, MOCK_APERTURE_START, BUFFER_SIZE));
  });

  it('compat IOAS create: an ordinary IOAS, created once, gone with DESTROY', () => {
    const fx = new Fx({ container: true });
    const ctx = fx.file.ctx;
    expect(errnoOf(() => iommufdVfioCompatIoasGetId(ctx))).toBe('ENODEV');
    iommufdVfioCompatIoasCreate(ctx);
    const id = iommufdVfioCompatIoasGetId(ctx);
    expect(id).toBe(1);
    iommufdVfioCompatIoasCreate(ctx);
    expect(iommufdVfioCompatIoasGetId(ctx)).toBe(1);
    expect(ctx.listObjects().map((o) => o.id)).toEqual([1]);
    const get = { size: 12, ioas_id: 0, op: IOMMU_VFIO_IOAS_GET };
    fx.ioctl(IOMMU_VFIO_IOAS, get);
    expect(get.ioas_id).toBe(1);
    expect(fx.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
    fx.ioctl(IOMMU_DESTROY, { size: 8, id });
    expect(errnoOf(() => fx.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))).toBe('ENODEV');
    iommufdVfioCompatIoasCreate(ctx);
    expect(iommufdVfioCompatIoasGetId(ctx)).toBe(1);
  });

  it('an IOAS chosen with IOMMU_VFIO_IOAS SET is kept by create; container maps are visible to IOAS ioctls', () => {
    const fx = new Fx({ container: true });
    const a = fx.ioasAlloc();
    const b = fx.ioasAlloc();
    fx.vfioIoasSet(b);
    iommufdVfioCompatIoasCreate(fx.file.ctx);
    expect(iommufdVfioCompatIoasGetId(fx.file.ctx)).toBe(b);
    fx.ioctl(IOMMU_IOAS_MAP, {
      size: 40,
      flags: IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE,
      ioas_id: a,
      user_va: fx.buffer,
      length: PS,
      iova: 0x10_0000n,
    });
    fx.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    expect(errnoOf(() => fx.map(fx.buffer, 0x10_0000n, PS))).toBe('ok'); // IOAS b: no overlap
    expect(errnoOf(() => fx.map(fx.buffer, 0x10_0000n, PS))).toBe('EEXIST');
    expect(iommufdVfioCompatIoas(fx.file.ctx).iopt.areas()).toHaveLength(1);
  });
});
