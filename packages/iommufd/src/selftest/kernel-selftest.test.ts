// The scenarios of tools/testing/selftests/iommu/iommufd.c (spec §3.4: fixtures iommufd,
// iommufd_ioas and its variants, iommufd_mock_domain, iommufd_dirty_tracking), retold against
// `Iommufd.open({..., selftest: true})` and `file.ioctl`. Every fixture ends with the kernel's
// teardown: close, reopen, and MD_CHECK_REFS 0 over the test buffer.

import { _IO } from '@iommu-ts/base';
import { MAP_ANONYMOUS, MAP_HUGETLB, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@iommu-ts/mm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { setTempMemoryLimit, TEMP_MEMORY_LIMIT_DEFAULT } from '../pages.js';
import {
  IOMMU_HW_INFO_SELFTEST_REGVAL,
  IOMMU_HW_INFO_TYPE_SELFTEST,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_TEST_CMD,
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
  IOMMU_TEST_OP_ACCESS_RW,
  IOMMU_TEST_OP_ADD_RESERVED,
  IOMMU_TEST_OP_CREATE_ACCESS,
  IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
  IOMMU_TEST_OP_DEV_CHECK_CACHE,
  IOMMU_TEST_OP_DIRTY,
  IOMMU_TEST_OP_MD_CHECK_IOTLB,
  IOMMU_TEST_OP_MD_CHECK_MAP,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
  IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
  IOMMU_TEST_OP_TRIGGER_IOPF,
  MOCK_ACCESS_RW_SLOW_PATH,
  MOCK_ACCESS_RW_WRITE,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  MOCK_FLAGS_ACCESS_WRITE,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_HUGE_PAGE_SIZE,
  MOCK_PAGE_SIZE,
} from '../selftest-uapi.js';
import {
  IOMMU_DESTROY,
  IOMMU_GET_HW_INFO,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_OPTION_OP_SET,
  IOMMU_OPTION_RLIMIT_MODE,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
} from '../uapi.js';
import { BPS, BUFFER_SIZE, errnoOf, Selftest } from './kernel-selftest.test-helpers.js';
import { mockIommuPeek } from './mock-iommu.js';

const MP = MOCK_PAGE_SIZE;

interface MockDomain {
  stdev: number;
  hwpt: number;
  idev: number;
}

/** Harness methods for the selftest ops (`test_cmd_*` of iommufd_utils.h). */
class T extends Selftest {
  mockDomain(ptId: number, devFlags?: number): MockDomain {
    const r =
      devFlags === undefined
        ? this.test(IOMMU_TEST_OP_MOCK_DOMAIN, ptId)
        : this.test(IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, ptId, { mock_domain_flags: { dev_flags: devFlags } });
    const out = (devFlags === undefined ? r.mock_domain : r.mock_domain_flags) as {
      out_stdev_id: number;
      out_hwpt_id: number;
      out_idev_id: number;
    };
    return { stdev: out.out_stdev_id, hwpt: out.out_hwpt_id, idev: out.out_idev_id };
  }

  mockDomainReplace(stdev: number, ptId: number): number {
    const r = this.test(IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, stdev, { mock_domain_replace: { pt_id: ptId } });
    return (r.mock_domain_replace as { pt_id: number }).pt_id;
  }

  checkMap(hwpt: number, iova: bigint, length: bigint, va: bigint): void {
    this.test(IOMMU_TEST_OP_MD_CHECK_MAP, hwpt, { check_map: { iova, length, uptr: va } });
  }

  addReserved(ioas: number, start: bigint, length: bigint): void {
    this.test(IOMMU_TEST_OP_ADD_RESERVED, ioas, { add_reserved: { start, length } });
  }

  createAccess(ioas: number, flags = MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES): number {
    const r = this.test(IOMMU_TEST_OP_CREATE_ACCESS, ioas, { create_access: { flags } });
    return (r.create_access as { out_access_fd: number }).out_access_fd;
  }

  accessPages(fd: number, iova: bigint, length: bigint, uptr: bigint, flags = 0): number {
    const r = this.test(IOMMU_TEST_OP_ACCESS_PAGES, fd, { access_pages: { flags, iova, length, uptr } });
    return (r.access_pages as { out_access_pages_id: number }).out_access_pages_id;
  }

  destroyAccessPages(fd: number, id: number): void {
    this.test(IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, fd, { destroy_access_pages: { access_pages_id: id } });
  }

  accessRw(fd: number, iova: bigint, length: bigint, uptr: bigint, flags = 0): void {
    this.test(IOMMU_TEST_OP_ACCESS_RW, fd, { access_rw: { iova, length, uptr, flags } });
  }

  iovaRanges(ioas: number, capacity: number, uptr: bigint): { num: number; alignment: bigint } {
    const cmd = { size: 32, ioas_id: ioas, num_iovas: capacity, allowed_iovas: uptr, out_iova_alignment: 0n };
    this.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd);
    return { num: cmd.num_iovas, alignment: cmd.out_iova_alignment };
  }

  /** Read `n` iommu_iova_range entries at `va`. */
  readRanges(va: bigint, n: number): [bigint, bigint][] {
    const b = this.proc.read(va, n * 16);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return Array.from({ length: n }, (_, i) => [
      v.getBigUint64(i * 16, true),
      v.getBigUint64(i * 16 + 8, true),
    ]);
  }

  writeRanges(va: bigint, ranges: [bigint, bigint][]): void {
    const b = new Uint8Array(ranges.length * 16);
    const v = new DataView(b.buffer);
    ranges.forEach(([s, l], i) => {
      v.setBigUint64(i * 16, s, true);
      v.setBigUint64(i * 16 + 8, l, true);
    });
    this.proc.write(va, b);
  }

  allowIovas(ioas: number, va: bigint, n: number): void {
    this.ioctl(IOMMU_IOAS_ALLOW_IOVAS, { size: 24, ioas_id: ioas, num_iovas: n, allowed_iovas: va });
  }

  copy(dst: number, dstIova: bigint, src: number, srcIova: bigint, length: bigint, flags = 0): bigint {
    const cmd = {
      size: 40,
      flags: flags | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE,
      dst_ioas_id: dst,
      src_ioas_id: src,
      length,
      dst_iova: dstIova,
      src_iova: srcIova,
    };
    this.ioctl(IOMMU_IOAS_COPY, cmd);
    return cmd.dst_iova;
  }

  option(optionId: number, op: number, objectId: number, val64 = 0n): bigint {
    const cmd = { size: 24, option_id: optionId, op, object_id: objectId, val64 };
    this.ioctl(IOMMU_OPTION, cmd);
    return cmd.val64;
  }

  setDirtyTracking(hwpt: number, enabled: boolean): void {
    this.ioctl(IOMMU_HWPT_SET_DIRTY_TRACKING, {
      size: 16,
      flags: enabled ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
      hwpt_id: hwpt,
    });
  }

  hwInfo(devId: number, dataLen: number, uptr: bigint): { dataLen: number; type: number; caps: bigint } {
    const cmd = {
      size: 40,
      flags: 0,
      dev_id: devId,
      data_len: dataLen,
      data_uptr: uptr,
      out_data_type: 0,
      out_capabilities: 0n,
    };
    this.ioctl(IOMMU_GET_HW_INFO, cmd);
    return { dataLen: cmd.data_len, type: cmd.out_data_type, caps: cmd.out_capabilities };
  }
}

// ==== fixture iommufd ============================================================================

describe('fixture iommufd', () => {
  let t: T;
  beforeEach(() => {
    t = new T();
  });
  afterEach(() => t.teardown());

  it('simple_close', () => {});

  it('cmd_fail', () => {
    expect(errnoOf(() => t.destroy(0))).toBe('ENOENT');
    expect(errnoOf(() => t.ioctl(IOMMU_DESTROY, 0n))).toBe('EFAULT');
    expect(errnoOf(() => t.ioctl(_IO(0x3b, 0x7f), 0n))).toBe('ENOTTY');
  });

  it('cmd_ex_fail: DESTROY with a longer struct', () => {
    const va = t.scratch(BPS);
    const put = (bytes: number[]) => t.proc.write(va, new Uint8Array(bytes));
    // size 16, id 0, zero tail → ENOENT
    put([16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(errnoOf(() => t.ioctl(IOMMU_DESTROY, va))).toBe('ENOENT');
    // a non-zero byte in the tail → E2BIG
    put([16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(errnoOf(() => t.ioctl(IOMMU_DESTROY, va))).toBe('E2BIG');
    expect(errnoOf(() => t.ioctl(IOMMU_DESTROY, { size: 8, id: 0 }))).toBe('ENOENT');
    expect(errnoOf(() => t.ioctl(IOMMU_DESTROY, { size: 7, id: 0 }))).toBe('EINVAL');
  });

  it('global_options', () => {
    expect(t.option(IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0)).toBe(0n);
    t.option(IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 1n);
    expect(errnoOf(() => t.option(IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 2n))).toBe('EINVAL');
    expect(t.option(IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_GET, 0)).toBe(1n);
    t.option(IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_OP_SET, 0, 0n);
    expect(errnoOf(() => t.option(IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, 0))).toBe('ENOENT');
    expect(errnoOf(() => t.option(IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, 0, 0n))).toBe('ENOENT');
  });

  it('vfio_ioas', () => {
    const cmd = { size: 12, ioas_id: 0, op: IOMMU_VFIO_IOAS_GET };
    expect(errnoOf(() => t.ioctl(IOMMU_VFIO_IOAS, cmd))).toBe('ENODEV');
    expect(errnoOf(() => t.ioctl(IOMMU_VFIO_IOAS, { size: 12, ioas_id: 0, op: IOMMU_VFIO_IOAS_SET }))).toBe(
      'ENOENT',
    );
    const ioas = t.ioasAlloc();
    t.ioctl(IOMMU_VFIO_IOAS, { size: 12, ioas_id: ioas, op: IOMMU_VFIO_IOAS_SET });
    t.ioctl(IOMMU_VFIO_IOAS, cmd);
    expect(cmd.ioas_id).toBe(ioas);
    t.ioctl(IOMMU_VFIO_IOAS, { size: 12, ioas_id: 0, op: IOMMU_VFIO_IOAS_CLEAR });
    expect(errnoOf(() => t.ioctl(IOMMU_VFIO_IOAS, { size: 12, ioas_id: 0, op: IOMMU_VFIO_IOAS_GET }))).toBe(
      'ENODEV',
    );
  });

  it('selftest ops: unknown op, bad access fd, temp memory limit, dev flags', () => {
    expect(errnoOf(() => t.test(99, 0))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => t.ioctl(IOMMU_TEST_CMD, { size: 67, op: 1 }))).toBe('EINVAL');
    expect(errnoOf(() => t.accessRw(t.file.fd, 0n, 1n, t.buffer))).toBe('EBADFD');
    expect(errnoOf(() => t.accessRw(100, 0n, 1n, t.buffer))).toBe('EBADFD');
    expect(
      errnoOf(() => t.test(IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, 0, { memory_limit: { limit: 11 } })),
    ).toBe('EINVAL');
    const ioas = t.ioasAlloc();
    expect(errnoOf(() => t.mockDomain(ioas, 1 << 8))).toBe('EINVAL');
    expect(errnoOf(() => t.mockDomain(ioas + 10))).toBe('ENOENT');
    expect(t.file.ctx.listObjects().map((o) => o.id)).toEqual([ioas]);
    expect(mockIommuPeek(t.sub)?.devices.size).toBe(0);
  });

  it('failed access ops leave no fd, object or pin behind', () => {
    const ioas = t.ioasAlloc();
    expect(errnoOf(() => t.createAccess(ioas + 5))).toBe('ENOENT');
    expect(errnoOf(() => t.createAccess(ioas, 2))).toBe('EOPNOTSUPP');
    expect(t.file.ctx.listObjects().map((o) => o.id)).toEqual([ioas]);
    const fd = t.createAccess(ioas);
    expect(fd).toBe(t.file.fd + 1);
    const iova = t.map(ioas, t.buffer, BUFFER_SIZE);
    // pages of another buffer: EBADE, and the pins are given back
    const other = t.scratch(BUFFER_SIZE);
    expect(errnoOf(() => t.accessPages(fd, iova, BUFFER_SIZE, other))).toBe('EBADE');
    t.checkRefs(t.buffer, BUFFER_SIZE, 0);
    expect(errnoOf(() => t.accessPages(fd, iova, BUFFER_SIZE, t.buffer, 4))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => t.accessPages(fd, iova, 17n << 20n, t.buffer))).toBe('ENOMEM');
    expect(errnoOf(() => t.destroyAccessPages(fd, 0))).toBe('ENOENT');
    const id = t.accessPages(fd, iova, BUFFER_SIZE, t.buffer);
    expect(id).toBe(0);
    t.checkRefs(t.buffer, BUFFER_SIZE, 1);
    // the access object is the driver's: DESTROY is EBUSY; closing the fd unpins and destroys it
    const accessObj = t.file.ctx.listObjects().find((o) => o.id !== ioas);
    expect(accessObj).toBeDefined();
    expect(errnoOf(() => t.destroy(accessObj!.id))).toBe('EBUSY');
    t.proc.close(fd);
    t.checkRefs(t.buffer, BUFFER_SIZE, 0);
    expect(t.file.ctx.listObjects().map((o) => o.id)).toEqual([ioas]);
    expect(errnoOf(() => t.accessRw(fd, iova, 1n, t.buffer))).toBe('EBADFD');
    // an access without NEEDS_PIN_PAGES cannot pin
    const fd2 = t.createAccess(ioas, 0);
    expect(errnoOf(() => t.accessPages(fd2, iova, BPS, t.buffer))).toBe('EOPNOTSUPP');
    t.proc.close(fd2);
  });
});

// ==== fixture iommufd_ioas ========================================================================

interface IoasVariant {
  name: string;
  mockDomains: number;
  tempMemoryLimit: number;
}

const ioasVariants: IoasVariant[] = [
  { name: 'no_domain', mockDomains: 0, tempMemoryLimit: 0 },
  { name: 'mock_domain', mockDomains: 1, tempMemoryLimit: 0 },
  { name: 'two_mock_domain', mockDomains: 2, tempMemoryLimit: 0 },
  { name: 'mock_domain_limit', mockDomains: 1, tempMemoryLimit: 16 },
];

describe.each(ioasVariants)('fixture iommufd_ioas ($name)', (variant) => {
  let t: T;
  let ioas: number;
  let domains: MockDomain[];
  let baseIova: bigint;
  beforeEach(() => {
    t = new T();
    ioas = t.ioasAlloc();
    domains = [];
    for (let i = 0; i < variant.mockDomains; i++) domains.push(t.mockDomain(ioas));
    baseIova = variant.mockDomains > 0 ? MOCK_APERTURE_START : 0n;
    if (variant.tempMemoryLimit)
      t.test(IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, 0, { memory_limit: { limit: variant.tempMemoryLimit } });
  });
  afterEach(() => {
    setTempMemoryLimit(TEMP_MEMORY_LIMIT_DEFAULT);
    t.teardown();
  });

  it('ioas_auto_destroy', () => {});

  it('ioas_destroy', () => {
    if (domains.length > 0) {
      expect(errnoOf(() => t.destroy(ioas))).toBe('EBUSY');
    } else {
      t.destroy(ioas);
      expect(errnoOf(() => t.destroy(ioas))).toBe('ENOENT');
    }
  });

  it('hwpt_attach', () => {
    if (domains.length === 0) {
      expect(errnoOf(() => t.mockDomain(0))).toBe('ENOENT');
      return;
    }
    const hwpt = t.hwptAlloc(domains[0]!.idev, ioas, 0);
    const d = t.mockDomain(hwpt);
    expect(d.hwpt).toBe(hwpt);
    expect(errnoOf(() => t.destroy(hwpt))).toBe('EBUSY');
    t.destroy(d.stdev);
    t.destroy(hwpt);
  });

  it('ioas_area_destroy', () => {
    t.map(ioas, t.buffer, BPS, baseIova);
    if (domains.length > 0) expect(errnoOf(() => t.destroy(ioas))).toBe('EBUSY');
    else t.destroy(ioas);
  });

  it('ioas_area_auto_destroy', () => {
    for (let i = 0n; i < 10n; i++) t.map(ioas, t.buffer, BPS, baseIova + i * BPS);
    // Each area pins the page again while a domain needs it; without a domain nothing is pinned.
    t.checkRefs(t.buffer, BPS, domains.length > 0 ? 10 : 0);
  });

  it('get_hw_info', () => {
    if (domains.length === 0) {
      expect(errnoOf(() => t.hwInfo(0, 8, 0n))).toBe('ENOENT');
      return;
    }
    const dev = domains[0]!.idev;
    const va = t.scratch(BPS);
    // data_len 0: nothing written, the kernel's length reported
    expect(t.hwInfo(dev, 0, 0n)).toEqual({
      dataLen: 8,
      type: IOMMU_HW_INFO_TYPE_SELFTEST,
      caps: BigInt(IOMMU_HW_CAP_DIRTY_TRACKING),
    });
    // exact
    t.hwInfo(dev, 8, va);
    const exact = new DataView(t.proc.read(va, 8).buffer);
    expect([exact.getUint32(0, true), exact.getUint32(4, true)]).toEqual([0, IOMMU_HW_INFO_SELFTEST_REGVAL]);
    // larger: the rest is zeroed
    t.proc.write(va, new Uint8Array(16).fill(0xff));
    expect(t.hwInfo(dev, 16, va).dataLen).toBe(8);
    expect([...t.proc.read(va, 16)]).toEqual([0, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0, 0, 0, 0, 0]);
    // smaller: only what fits
    t.proc.write(va, new Uint8Array(8).fill(0xff));
    expect(t.hwInfo(dev, 4, va).dataLen).toBe(8);
    expect([...t.proc.read(va, 8)]).toEqual([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  });

  it('area', () => {
    // Unmapping nothing
    expect(errnoOf(() => t.unmap(ioas, baseIova, BPS))).toBe('ENOENT');
    expect(errnoOf(() => t.unmap(ioas, baseIova + 10n * BPS, BPS))).toBe('ENOENT');
    // Page-by-page map and unmap
    for (let i = 0n; i < 16n; i++) t.map(ioas, t.buffer, BPS, baseIova + i * BPS);
    for (let i = 0n; i < 16n; i++) expect(t.unmap(ioas, baseIova + i * BPS, BPS)).toBe(BPS);
    // Unmapping half of a 2-page area
    t.map(ioas, t.buffer, 2n * BPS, baseIova);
    expect(errnoOf(() => t.unmap(ioas, baseIova, BPS))).toBe('ENOENT');
    expect(errnoOf(() => t.unmap(ioas, baseIova + BPS, BPS))).toBe('ENOENT');
    // Overlapping fixed maps
    const fixed = (iova: bigint, len: bigint) => errnoOf(() => t.map(ioas, t.buffer, len, baseIova + iova));
    expect(fixed(0n, BPS)).toBe('EEXIST');
    expect(fixed(BPS, BPS)).toBe('EEXIST');
    expect(fixed(0n, 4n * BPS)).toBe('EEXIST');
    t.map(ioas, t.buffer, 2n * BPS, baseIova + 4n * BPS);
    expect(fixed(3n * BPS, 2n * BPS)).toBe('EEXIST');
    expect(fixed(5n * BPS, 2n * BPS)).toBe('EEXIST');
    // Unmap all, then on an empty IOAS
    expect(t.unmap(ioas, 0n, 0xffff_ffff_ffff_ffffn)).toBe(4n * BPS);
    expect(t.unmap(ioas, 0n, 0xffff_ffff_ffff_ffffn)).toBe(0n);
  });

  it('unmap_fully_contained_areas', () => {
    const base = baseIova + 4n * BPS; // room below for the no-domain variant
    for (let i = 0n; i < 4n; i++) t.map(ioas, t.buffer, 8n * BPS, base + i * 16n * BPS);
    // ranges cutting the first or the last area
    expect(errnoOf(() => t.unmap(ioas, base - 4n * BPS, 8n * BPS))).toBe('ENOENT');
    expect(errnoOf(() => t.unmap(ioas, base + 3n * 16n * BPS + 4n * BPS, 8n * BPS))).toBe('ENOENT');
    // a range covering the four areas and the gaps between them
    expect(t.unmap(ioas, base - 4n * BPS, 3n * 16n * BPS + 8n * BPS + 8n * BPS)).toBe(32n * BPS);
  });

  it('area_auto_iova', () => {
    const iovas: bigint[] = [];
    for (let i = 1n; i < 10n; i++) {
      const len = i * BPS;
      const iova = t.map(ioas, t.buffer, len);
      const lowBit = len & -len;
      expect(iova % lowBit).toBe(0n);
      iovas.push(iova);
    }
    iovas.forEach((iova, i) => {
      t.unmap(ioas, iova, BigInt(i + 1) * BPS);
    });
    // Avoid a reserved region
    t.addReserved(ioas, baseIova + BPS, BPS * 99n);
    for (let i = 1n; i < 10n; i++) {
      const iova = t.map(ioas, t.buffer, i * BPS);
      expect(iova + i * BPS <= baseIova + BPS || iova >= baseIova + 100n * BPS, `${iova} len ${i}`).toBe(
        true,
      );
      t.unmap(ioas, iova, i * BPS);
    }
    // Allowed ranges: one overlapping the reservation fails; automatic IOVAs land inside them
    const ranges = t.scratch(BPS);
    t.writeRanges(ranges, [
      [baseIova + BPS * 1000n, baseIova + BPS * 1100n - 1n],
      [baseIova + BPS * 50n, baseIova + BPS * 60n - 1n],
    ]);
    expect(errnoOf(() => t.allowIovas(ioas, ranges, 2))).toBe('EADDRINUSE');
    t.writeRanges(ranges, [
      [baseIova + BPS * 1000n, baseIova + BPS * 1100n - 1n],
      [baseIova + BPS * 200n, baseIova + BPS * 300n - 1n],
    ]);
    t.allowIovas(ioas, ranges, 2);
    for (let i = 1n; i < 10n; i++) {
      const iova = t.map(ioas, t.buffer, i * BPS);
      const inFirst = iova >= baseIova + BPS * 1000n && iova + i * BPS - 1n <= baseIova + BPS * 1100n - 1n;
      const inSecond = iova >= baseIova + BPS * 200n && iova + i * BPS - 1n <= baseIova + BPS * 300n - 1n;
      expect(inFirst || inSecond, `${iova.toString(16)} len ${i}`).toBe(true);
      t.unmap(ioas, iova, i * BPS);
    }
  });

  it('area_allowed', () => {
    const ranges = t.scratch(BPS);
    t.writeRanges(ranges, [[baseIova + 16n * BPS, baseIova + 32n * BPS - 1n]]);
    t.allowIovas(ioas, ranges, 1);
    expect(errnoOf(() => t.addReserved(ioas, baseIova + 16n * BPS, BPS))).toBe('EADDRINUSE');
    t.allowIovas(ioas, ranges, 0);
    t.addReserved(ioas, baseIova + 16n * BPS, BPS);
    expect(errnoOf(() => t.allowIovas(ioas, ranges, 1))).toBe('EADDRINUSE');
  });

  it('copy_area', () => {
    const iova = t.map(ioas, t.buffer, BUFFER_SIZE, baseIova);
    const iova2 = t.copy(ioas, 0n, ioas, iova, BUFFER_SIZE);
    expect(iova2).not.toBe(iova);
    const ioas2 = t.ioasAlloc();
    expect(t.copy(ioas2, 0n, ioas, iova, BUFFER_SIZE, IOMMU_IOAS_MAP_FIXED_IOVA)).toBe(0n);
    // copies share the pages: one pin per page while a domain holds them
    t.checkRefs(t.buffer, BUFFER_SIZE, domains.length > 0 ? 1 : 0);
  });

  it('iova_ranges', () => {
    const va = t.scratch(BPS);
    let r = t.iovaRanges(ioas, 1, va);
    expect(r.num).toBe(1);
    if (domains.length === 0) {
      expect(t.readRanges(va, 1)).toEqual([[0n, 0xffff_ffff_ffff_ffffn]]);
      expect(r.alignment).toBe(1n);
    } else {
      expect(t.readRanges(va, 1)).toEqual([[MOCK_APERTURE_START, MOCK_APERTURE_LAST]]);
      expect(r.alignment).toBe(MP);
    }
    // capacity 0: EMSGSIZE with the count, nothing written
    t.proc.write(va, new Uint8Array(32).fill(0xee));
    const cmd = { size: 32, ioas_id: ioas, num_iovas: 0, allowed_iovas: va, out_iova_alignment: 0n };
    expect(errnoOf(() => t.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd))).toBe('EMSGSIZE');
    expect(cmd.num_iovas).toBe(1);
    expect([...t.proc.read(va, 1)]).toEqual([0xee]);
    // one page reserved at IOVA PAGE_SIZE (below the aperture of a mock domain)
    t.addReserved(ioas, BPS, BPS);
    const cmd2 = { size: 32, ioas_id: ioas, num_iovas: 1, allowed_iovas: va, out_iova_alignment: 0n };
    if (domains.length === 0) {
      expect(errnoOf(() => t.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd2))).toBe('EMSGSIZE');
      expect(cmd2.num_iovas).toBe(2);
      expect(t.readRanges(va, 2)).toEqual([
        [0n, BPS - 1n],
        [0xeeee_eeee_eeee_eeeen, 0xeeee_eeee_eeee_eeeen],
      ]);
      r = t.iovaRanges(ioas, 2, va);
      expect(t.readRanges(va, 2)).toEqual([
        [0n, BPS - 1n],
        [2n * BPS, 0xffff_ffff_ffff_ffffn],
      ]);
    } else {
      t.ioctl(IOMMU_IOAS_IOVA_RANGES, cmd2);
      expect(cmd2.num_iovas).toBe(1);
      expect(t.readRanges(va, 1)).toEqual([[MOCK_APERTURE_START, MOCK_APERTURE_LAST]]);
    }
  });

  it('access_pin', () => {
    const ranges = t.scratch(BPS);
    for (let npages = 1n; npages < 16n; npages++) {
      const check = () => t.checkRefs(t.buffer, npages * BPS, 1);
      const fd = t.createAccess(ioas);
      const iova = t.map(ioas, t.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
      const id = t.accessPages(fd, iova, npages * BPS, t.buffer);
      check();
      t.destroyAccessPages(fd, id);
      // pinned twice: refcounted
      const id1 = t.accessPages(fd, iova, npages * BPS, t.buffer);
      const id2 = t.accessPages(fd, iova, npages * BPS, t.buffer, MOCK_FLAGS_ACCESS_WRITE);
      expect(id2).toBe(id1 + 1);
      check();
      t.destroyAccessPages(fd, id1);
      t.destroyAccessPages(fd, id2);
      // pinned, then a mock domain comes and goes
      const id3 = t.accessPages(fd, iova, npages * BPS, t.buffer);
      const d = t.mockDomain(ioas);
      t.checkMap(d.hwpt, iova, BUFFER_SIZE, t.buffer);
      t.destroy(d.stdev);
      check();
      t.destroyAccessPages(fd, id3);
      t.unmap(ioas, iova, BUFFER_SIZE);
      t.proc.close(fd);
      t.checkRefs(t.buffer, BUFFER_SIZE, 0);
    }
    void ranges;
  });

  it('access_pin_unmap', () => {
    const fd = t.createAccess(ioas);
    const iova = t.map(ioas, t.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
    const id = t.accessPages(fd, iova, BUFFER_SIZE, t.buffer);
    t.checkRefs(t.buffer, BUFFER_SIZE, 1);
    // the unmap reaches the access, which drops its pin
    expect(t.unmap(ioas, iova, BUFFER_SIZE)).toBe(BUFFER_SIZE);
    expect(errnoOf(() => t.destroyAccessPages(fd, id))).toBe('ENOENT');
    t.checkRefs(t.buffer, BUFFER_SIZE, 0);
    t.proc.close(fd);
  });

  function checkAccessRw(iova0: bigint, extraFlags: number): void {
    const fd = t.createAccess(ioas, 0);
    const len = 2n * BPS;
    const iova = t.map(ioas, t.buffer, len, iova0);
    const tmp = t.scratch(BPS);
    const pattern = new Uint8Array(32).map((_, i) => (i * 7 + 3) & 0xff);
    for (let off = BPS - 8n; off < BPS + 8n; off++) {
      for (const n of [1n, 2n, 3n, 5n, 16n]) {
        // write through the access, read it back from the CPU side
        t.proc.write(tmp, pattern.subarray(0, Number(n)));
        t.accessRw(fd, iova + off, n, tmp, MOCK_ACCESS_RW_WRITE | extraFlags);
        expect([...t.proc.read(t.buffer + off, Number(n))]).toEqual([...pattern.subarray(0, Number(n))]);
        // and read it through the access
        t.proc.write(tmp, new Uint8Array(Number(n)));
        t.accessRw(fd, iova + off, n, tmp, extraFlags);
        expect([...t.proc.read(tmp, Number(n))]).toEqual([...pattern.subarray(0, Number(n))]);
      }
    }
    // one read of every page
    const big = t.scratch(len);
    t.accessRw(fd, iova, len, big, extraFlags);
    expect([...t.proc.read(big, Number(len))]).toEqual([...t.proc.read(t.buffer, Number(len))]);
    t.unmap(ioas, iova, len);
    t.proc.close(fd);
  }

  it('access_rw', () => {
    checkAccessRw(MOCK_APERTURE_START, 0);
    checkAccessRw(MOCK_APERTURE_START, MOCK_ACCESS_RW_SLOW_PATH);
  });

  it('access_rw_unaligned', () => {
    const fd = t.createAccess(ioas, 0);
    const iova = t.map(ioas, t.buffer + BPS / 2n, BPS, MOCK_APERTURE_START + BPS / 2n);
    const tmp = t.scratch(BPS);
    t.accessRw(fd, iova, BPS, tmp);
    expect([...t.proc.read(tmp, Number(BPS))]).toEqual([...t.proc.read(t.buffer + BPS / 2n, Number(BPS))]);
    t.proc.close(fd);
  });

  it('ioas_option_huge_pages', () => {
    expect(t.option(IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas)).toBe(1n);
    t.option(IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, 0n);
    expect(t.option(IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas)).toBe(0n);
    expect(errnoOf(() => t.option(IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, 2n))).toBe('EINVAL');
    t.option(IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, 1n);
    expect(t.option(IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas)).toBe(1n);
  });

  it('ioas_iova_alloc', () => {
    for (let length = 1n; length < 2n * BPS; length += 97n) {
      const r = errnoOf(() => {
        const iova = t.map(ioas, t.buffer, length);
        t.unmap(ioas, iova, length);
      });
      if (domains.length > 0 && length % MP !== 0n) expect(r).toBe('EINVAL');
      else expect(r).toBe('ok');
    }
  });

  it('ioas_align_change', () => {
    if (domains.length > 0) return;
    t.map(ioas, t.buffer, BPS, MOCK_APERTURE_START);
    t.option(IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, 0n);
    expect(
      errnoOf(() => t.map(ioas, t.buffer + BPS / 2n, BPS, MOCK_APERTURE_START + 4n * BPS + BPS / 2n)),
    ).toBe('EINVAL');
    t.option(IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, 1n);
    t.map(ioas, t.buffer + BPS / 2n, BPS, MOCK_APERTURE_START + 4n * BPS + BPS / 2n);
    expect(errnoOf(() => t.option(IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_SET, ioas, 0n))).toBe(
      'EADDRINUSE',
    );
    expect(t.option(IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas)).toBe(1n);
  });

  it('copy_sweep', () => {
    const start = MOCK_APERTURE_START + 4n * MP;
    const end = start + 10n * MP;
    t.map(ioas, t.buffer, end - start, start);
    const dst = t.ioasAlloc();
    for (let src = start - 4n * MP; src <= end + 4n * MP; src += 511n) {
      const r = errnoOf(() => {
        t.copy(dst, MOCK_APERTURE_START, ioas, src, MP, IOMMU_IOAS_MAP_FIXED_IOVA);
        t.unmap(dst, MOCK_APERTURE_START, MP);
      });
      if (src < start || src + MP > end) expect(r).toBe('ENOENT');
      else expect(r).toBe('ok');
    }
  });

  it('alloc_hwpt_nested', () => {
    if (domains.length === 0) {
      expect(errnoOf(() => t.hwptAlloc(1, ioas))).toBe('ENOENT');
      expect(errnoOf(() => t.mockDomainReplace(0, 0))).toBe('ENOENT');
      return;
    }
    const dev = domains[0]!.idev;
    const data = t.scratch(BPS);
    const putIotlb = (v: number) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, v, true);
      t.proc.write(data, b);
    };
    putIotlb(IOMMU_TEST_IOTLB_DEFAULT);
    const sel = (len = 4, uptr = data, type = IOMMU_HWPT_DATA_SELFTEST) => ({ type, len, uptr });
    expect(errnoOf(() => t.hwptAlloc(ioas, ioas))).toBe('ENOENT');
    expect(errnoOf(() => t.hwptAlloc(dev, dev))).toBe('EINVAL');
    const parent = t.hwptAlloc(dev, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
    const plain = t.hwptAlloc(dev, ioas, 0);
    expect(errnoOf(() => t.hwptAlloc(dev, parent, 0, { type: 0, len: 4, uptr: data }))).toBe('EINVAL');
    expect(errnoOf(() => t.hwptAlloc(dev, parent, 0, sel(4, data, 0xbeef)))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => t.hwptAlloc(dev, parent, 0, sel(3)))).toBe('EINVAL');
    expect(errnoOf(() => t.hwptAlloc(dev, parent, 0, sel(4, 0n)))).toBe('EFAULT');
    expect(errnoOf(() => t.hwptAlloc(dev, parent, IOMMU_HWPT_ALLOC_NEST_PARENT, sel()))).toBe('EOPNOTSUPP');
    expect(errnoOf(() => t.hwptAlloc(dev, plain, 0, sel()))).toBe('EINVAL');
    const n1 = t.hwptAlloc(dev, parent, 0, sel());
    const n2 = t.hwptAlloc(dev, parent, 0, sel());
    const checkIotlb = (hwpt: number, id: number, v: number) =>
      errnoOf(() => t.test(IOMMU_TEST_OP_MD_CHECK_IOTLB, hwpt, { check_iotlb: { id, iotlb: v } }));
    for (let i = 0; i < 4; i++) {
      expect(checkIotlb(n1, i, IOMMU_TEST_IOTLB_DEFAULT)).toBe('ok');
      expect(checkIotlb(n2, i, IOMMU_TEST_IOTLB_DEFAULT)).toBe('ok');
    }
    expect(checkIotlb(n1, 4, IOMMU_TEST_IOTLB_DEFAULT)).toBe('EINVAL');
    expect(checkIotlb(n1, 0, 0)).toBe('EINVAL');
    expect(checkIotlb(parent, 0, 0)).toBe('ENOENT');
    expect(errnoOf(() => t.hwptAlloc(dev, n1, 0, sel()))).toBe('EINVAL');
    expect(errnoOf(() => t.destroy(parent))).toBe('EBUSY');
    // invalidation
    const inv = t.scratch(BPS);
    const putInv = (entries: [number, number][]) => {
      const b = new Uint8Array(entries.length * 8);
      const v = new DataView(b.buffer);
      entries.forEach(([flags, id], i) => {
        v.setUint32(i * 8, flags, true);
        v.setUint32(i * 8 + 4, id, true);
      });
      t.proc.write(inv, b);
    };
    const invalidate = (
      hwpt: number,
      num: number,
      entryLen = 8,
      type = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
      uptr = inv,
    ) => {
      const cmd = {
        size: 32,
        hwpt_id: hwpt,
        data_uptr: uptr,
        data_type: type,
        entry_len: entryLen,
        entry_num: num,
      };
      const r = errnoOf(() => t.ioctl(IOMMU_HWPT_INVALIDATE, cmd));
      return [r, cmd.entry_num] as const;
    };
    putInv([[0, 1]]);
    expect(invalidate(n1, 0)).toEqual(['ok', 0]);
    expect(invalidate(n1, 1, 8, 0x1234)[0]).toBe('EINVAL');
    expect(invalidate(n1, 1, 1)[0]).toBe('EINVAL');
    expect(invalidate(n1, 1, 8, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, 0n)[0]).toBe('EINVAL');
    expect(invalidate(n1, 1, 0)[0]).toBe('EINVAL');
    putInv([[2, 1]]);
    expect(invalidate(n1, 1)).toEqual(['EOPNOTSUPP', 0]);
    putInv([[0, 4]]);
    expect(invalidate(n1, 1)).toEqual(['EINVAL', 0]);
    putInv([
      [0, 0],
      [0, 4],
    ]);
    expect(invalidate(n1, 2)).toEqual(['EINVAL', 1]);
    expect(checkIotlb(n1, 0, 0)).toBe('ok');
    expect(checkIotlb(n1, 1, IOMMU_TEST_IOTLB_DEFAULT)).toBe('ok');
    putInv([
      [0, 1],
      [0, 2],
    ]);
    expect(invalidate(n1, 2)).toEqual(['ok', 2]);
    expect(checkIotlb(n1, 3, IOMMU_TEST_IOTLB_DEFAULT)).toBe('ok');
    putInv([[IOMMU_TEST_INVALIDATE_FLAG_ALL, 0]]);
    expect(invalidate(n1, 1)).toEqual(['ok', 1]);
    for (let i = 0; i < 4; i++) expect(checkIotlb(n1, i, 0)).toBe('ok');
    // attach nested, replace among nested, parent and IOAS
    const stdev = domains[0]!.stdev;
    expect(t.mockDomainReplace(stdev, n1)).toBe(n1);
    expect(errnoOf(() => t.destroy(n1))).toBe('EBUSY');
    expect(t.mockDomainReplace(stdev, n2)).toBe(n2);
    t.destroy(n1);
    expect(t.mockDomainReplace(stdev, parent)).toBe(parent);
    t.destroy(n2);
    const back = t.mockDomainReplace(stdev, ioas);
    expect([parent, plain, n1, n2]).not.toContain(back);
    t.destroy(parent);
    t.destroy(plain);
  });
});

// ==== fixture iommufd_mock_domain =================================================================

const HUGEPAGE_SIZE = 2n * 1024n * 1024n;

const mockDomainVariants = [
  { name: 'one_domain', mockDomains: 1, hugepages: false },
  { name: 'two_domains', mockDomains: 2, hugepages: false },
  { name: 'one_domain_hugepage', mockDomains: 1, hugepages: true },
  { name: 'two_domains_hugepage', mockDomains: 2, hugepages: true },
];

describe.each(mockDomainVariants)('fixture iommufd_mock_domain ($name)', (variant) => {
  let t: T;
  let ioas: number;
  let domains: MockDomain[];
  let bufSize: bigint;
  const mmapBuf = (): bigint => {
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | (variant.hugepages ? MAP_HUGETLB : 0);
    const va = t.proc.mmap(bufSize, PROT_READ | PROT_WRITE, flags);
    for (let off = 0n; off < bufSize; off += BPS) t.proc.write(va + off, new Uint8Array([1]));
    return va;
  };
  /** check_mock_iova: every domain maps `length` bytes at `iova` to `va`. */
  const checkMockIova = (va: bigint, iova: bigint, length: bigint) => {
    for (const d of domains) t.checkMap(d.hwpt, iova, length, va);
  };
  beforeEach(() => {
    t = new T();
    ioas = t.ioasAlloc();
    domains = [];
    for (let i = 0; i < variant.mockDomains; i++) domains.push(t.mockDomain(ioas));
    bufSize = variant.hugepages ? 2n * HUGEPAGE_SIZE : 8n * BPS;
  });
  afterEach(() => t.teardown());

  it('basic', () => {
    const buf = mmapBuf();
    const iova = t.map(ioas, buf, BPS);
    checkMockIova(buf, iova, BPS);
    const buf2 = mmapBuf();
    t.proc.munmap(buf2 + bufSize / 2n, bufSize / 2n);
    expect(errnoOf(() => t.map(ioas, buf2, bufSize))).toBe('EFAULT');
    t.proc.munmap(buf2, bufSize / 2n);
    expect(errnoOf(() => t.map(ioas, buf2, bufSize))).toBe('EFAULT');
    t.unmap(ioas, iova, BPS);
  });

  function allAligns(withCopy: boolean): void {
    const buf = mmapBuf();
    const step = variant.hugepages ? 1024n * MP : MP;
    for (let start = 0n; start < bufSize; start += step) {
      for (let end = start + step; end <= bufSize; end += step) {
        const length = end - start;
        const iova = t.map(ioas, buf + start, length);
        checkMockIova(buf + start, iova, length);
        const first = (start / BPS) * BPS;
        const last = ((end + BPS - 1n) / BPS) * BPS;
        t.checkRefs(buf + first, last - first, 1);
        if (withCopy) {
          const d = t.mockDomain(ioas);
          t.checkMap(d.hwpt, iova, length, buf + start);
          t.checkRefs(buf + first, last - first, 1);
          t.destroy(d.stdev);
        }
        t.unmap(ioas, iova, length);
        t.checkRefs(buf + first, last - first, 0);
      }
    }
  }

  it('all_aligns', () => allAligns(false));

  it('all_aligns_copy', () => allAligns(true));

  it('user_copy', () => {
    const src = t.ioasAlloc();
    const srcIova = t.map(src, t.buffer, BUFFER_SIZE);
    const fd = t.createAccess(src);
    const id1 = t.accessPages(fd, srcIova, BUFFER_SIZE, t.buffer);
    t.copy(ioas, MOCK_APERTURE_START, src, srcIova, BUFFER_SIZE, IOMMU_IOAS_MAP_FIXED_IOVA);
    checkMockIova(t.buffer, MOCK_APERTURE_START, BUFFER_SIZE);
    // move the access to a new IOAS: its pins on the old one are dropped by the unmap callback
    const src2 = t.ioasAlloc();
    const src2Iova = t.map(src2, t.buffer, BUFFER_SIZE);
    t.test(IOMMU_TEST_OP_ACCESS_REPLACE_IOAS, fd, { access_replace_ioas: { ioas_id: src2 } });
    expect(errnoOf(() => t.destroyAccessPages(fd, id1))).toBe('ENOENT');
    t.unmap(src, srcIova, BUFFER_SIZE);
    t.destroy(src);
    t.unmap(ioas, MOCK_APERTURE_START, BUFFER_SIZE);
    // again with the new IOAS
    const id2 = t.accessPages(fd, src2Iova, BUFFER_SIZE, t.buffer);
    expect(id2).toBe(id1 + 1);
    t.copy(ioas, MOCK_APERTURE_START, src2, src2Iova, BUFFER_SIZE, IOMMU_IOAS_MAP_FIXED_IOVA);
    checkMockIova(t.buffer, MOCK_APERTURE_START, BUFFER_SIZE);
    t.checkRefs(t.buffer, BUFFER_SIZE, 1);
    t.unmap(ioas, MOCK_APERTURE_START, BUFFER_SIZE);
    t.destroyAccessPages(fd, id2);
    t.proc.close(fd);
    t.destroy(src2);
  });

  it('replace', () => {
    const other = t.ioasAlloc();
    const stdev = domains[0]!.stdev;
    const newHwpt = t.mockDomainReplace(stdev, other);
    expect(newHwpt).not.toBe(domains[0]!.hwpt);
    // With one device the old automatic HWPT went with it; with two it is still there.
    if (variant.mockDomains === 1) {
      expect(errnoOf(() => t.mockDomainReplace(stdev, domains[0]!.hwpt))).toBe('ENOENT');
    } else {
      expect(t.mockDomainReplace(stdev, domains[1]!.hwpt)).toBe(domains[1]!.hwpt);
      expect(t.mockDomainReplace(stdev, other)).toBe(
        newHwpt === domains[1]!.hwpt ? newHwpt : t.mockDomainReplace(stdev, other),
      );
    }
    t.mockDomainReplace(stdev, ioas);
    t.destroy(other);
  });

  it('alloc_hwpt', () => {
    for (const d of domains) {
      expect(errnoOf(() => t.hwptAlloc(d.idev, ioas, ~IOMMU_HWPT_ALLOC_NEST_PARENT >>> 0))).toBe(
        'EOPNOTSUPP',
      );
      const h0 = t.hwptAlloc(d.idev, ioas, 0);
      const h1 = t.hwptAlloc(d.idev, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
      expect(t.mockDomainReplace(d.stdev, h0)).toBe(h0);
      expect(errnoOf(() => t.destroy(h0))).toBe('EBUSY');
      expect(t.mockDomainReplace(d.stdev, h1)).toBe(h1);
      expect(errnoOf(() => t.destroy(h1))).toBe('EBUSY');
      t.mockDomainReplace(d.stdev, ioas);
      t.destroy(h1);
      const d2 = t.mockDomain(h0);
      expect(d2.hwpt).toBe(h0);
      t.destroy(d2.stdev);
      t.destroy(h0);
    }
  });

  it('device cache, IOPF trigger and stdev destroy', () => {
    const d = domains[0]!;
    const check = (id: number, cache: number) =>
      errnoOf(() => t.test(IOMMU_TEST_OP_DEV_CHECK_CACHE, d.idev, { check_dev_cache: { id, cache } }));
    for (let i = 0; i < 4; i++) expect(check(i, IOMMU_TEST_DEV_CACHE_DEFAULT)).toBe('ok');
    expect(check(4, IOMMU_TEST_DEV_CACHE_DEFAULT)).toBe('EINVAL');
    expect(check(0, 0)).toBe('EINVAL');
    expect(
      errnoOf(() => t.test(IOMMU_TEST_OP_DEV_CHECK_CACHE, ioas, { check_dev_cache: { id: 0, cache: 0 } })),
    ).toBe('ENOENT');
    // a page request with no fault handler is answered INVALID through the mock's page_response
    const mock = mockIommuPeek(t.sub)!;
    t.test(IOMMU_TEST_OP_TRIGGER_IOPF, 0, {
      trigger_iopf: { dev_id: d.idev, pasid: 0, grpid: 7, perm: 1, addr: 0x1000n },
    });
    expect(mock.pageResponses.map((r) => [r.msg.grpid, r.msg.code])).toEqual([[7, 1]]);
    expect(errnoOf(() => t.test(IOMMU_TEST_OP_TRIGGER_IOPF, 0, { trigger_iopf: { dev_id: ioas } }))).toBe(
      'ENOENT',
    );
    // the device object belongs to its driver; the selftest object takes it away
    expect(errnoOf(() => t.destroy(d.idev))).toBe('EBUSY');
    const before = mock.devices.size;
    t.destroy(d.stdev);
    expect(mock.devices.size).toBe(before - 1);
    expect(
      errnoOf(() => t.test(IOMMU_TEST_OP_DEV_CHECK_CACHE, d.idev, { check_dev_cache: { id: 0, cache: 0 } })),
    ).toBe('ENOENT');
  });
});

// ==== fixture iommufd_dirty_tracking ===============================================================

const dirtyVariants = [
  { name: 'domain_dirty8k', size: 8n * 1024n, hugepages: false },
  { name: 'domain_dirty128k', size: 128n * 1024n, hugepages: false },
  { name: 'domain_dirty2M', size: 2n * 1024n * 1024n, hugepages: false },
  { name: 'domain_dirty2M_huge', size: 2n * 1024n * 1024n, hugepages: true },
  { name: 'domain_dirty4M_huge', size: 4n * 1024n * 1024n, hugepages: true },
];

describe.each(dirtyVariants)('fixture iommufd_dirty_tracking ($name)', (variant) => {
  let t: T;
  let ioas: number;
  let dom: MockDomain;
  let buffer: bigint;
  let bitmapVa: bigint;
  const nbits = Number(variant.size / MP);
  beforeEach(() => {
    t = new T();
    const flags = MAP_PRIVATE | MAP_ANONYMOUS | (variant.hugepages ? MAP_HUGETLB : 0);
    buffer = t.proc.mmap(variant.size, PROT_READ | PROT_WRITE, flags);
    for (let off = 0n; off < variant.size; off += variant.hugepages ? HUGEPAGE_SIZE : BPS)
      t.proc.write(buffer + off, new Uint8Array([1]));
    bitmapVa = t.scratch(BigInt(Math.max(nbits / 8, 8)) + 2n * BPS);
    ioas = t.ioasAlloc();
    dom = t.mockDomain(ioas, variant.hugepages ? MOCK_FLAGS_DEVICE_HUGE_IOVA : 0);
    t.map(ioas, buffer, variant.size, MOCK_APERTURE_START);
  });
  afterEach(() => t.teardown());

  it('enforce_dirty', () => {
    const other = t.ioasAlloc();
    const hwpt = t.hwptAlloc(dom.idev, other, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    const d = t.mockDomain(hwpt);
    expect(errnoOf(() => t.mockDomain(hwpt, MOCK_FLAGS_DEVICE_NO_DIRTY))).toBe('EINVAL');
    t.destroy(d.stdev);
    t.destroy(hwpt);
    const nd = t.mockDomain(other, MOCK_FLAGS_DEVICE_NO_DIRTY);
    expect(errnoOf(() => t.hwptAlloc(nd.idev, other, IOMMU_HWPT_ALLOC_DIRTY_TRACKING))).toBe('EOPNOTSUPP');
    t.destroy(nd.stdev);
  });

  it('set_dirty_tracking', () => {
    const hwpt = t.hwptAlloc(dom.idev, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    const d = t.mockDomain(hwpt);
    t.setDirtyTracking(hwpt, true);
    t.setDirtyTracking(hwpt, false);
    // a domain without dirty ops cannot track at all
    expect(errnoOf(() => t.setDirtyTracking(dom.hwpt, true))).toBe('EOPNOTSUPP');
    t.destroy(d.stdev);
    t.destroy(hwpt);
  });

  it('device_dirty_capability', () => {
    const hwpt = t.hwptAlloc(dom.idev, ioas, 0);
    const d = t.mockDomain(hwpt);
    expect(t.hwInfo(d.idev, 0, 0n).caps & BigInt(IOMMU_HW_CAP_DIRTY_TRACKING)).toBe(
      BigInt(IOMMU_HW_CAP_DIRTY_TRACKING),
    );
    t.destroy(d.stdev);
    t.destroy(hwpt);
  });

  /** test_mock_dirty_bitmaps: mark one PTE of every pair dirty, read twice. */
  function mockDirtyBitmaps(hwpt: number, bitmap: bigint, flags: number): void {
    const pteSize = variant.hugepages ? MOCK_HUGE_PAGE_SIZE : MP;
    const npte = Number(pteSize / MP);
    const pteset = 2 * npte;
    const bytes = Math.ceil(nbits / 8);
    const bits = new Uint8Array(bytes);
    for (let i = 0; i < nbits; i += pteset) bits[i >> 3]! |= 1 << (i & 7);
    t.proc.write(bitmap, bits);
    const r = t.test(IOMMU_TEST_OP_DIRTY, hwpt, {
      dirty: { flags: 0, iova: MOCK_APERTURE_START, length: variant.size, page_size: MP, uptr: bitmap },
    });
    expect((r.dirty as { out_nr_dirty: bigint }).out_nr_dirty).toBe(
      BigInt(Math.max(1, Math.floor(nbits / pteset))),
    );
    const read = (): Uint8Array => {
      t.proc.write(bitmap, new Uint8Array(bytes));
      t.ioctl(IOMMU_HWPT_GET_DIRTY_BITMAP, {
        size: 48,
        hwpt_id: hwpt,
        flags,
        iova: MOCK_APERTURE_START,
        length: variant.size,
        page_size: MP,
        data: bitmap,
      });
      return t.proc.read(bitmap, bytes);
    };
    const bit = (b: Uint8Array, i: number) => ((b[i >> 3]! >> (i & 7)) & 1) === 1;
    const first = read();
    for (let i = 0; i < nbits; i++) expect(bit(first, i), `bit ${i}`).toBe(i % pteset < npte);
    const second = read();
    const noClear = (flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0;
    for (let i = 0; i < nbits; i++) expect(bit(second, i), `bit ${i}`).toBe(noClear && i % pteset < npte);
  }

  function dirtyBitmapTest(flags: number): void {
    const hwpt = t.hwptAlloc(dom.idev, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    const d = t.mockDomain(hwpt, variant.hugepages ? MOCK_FLAGS_DEVICE_HUGE_IOVA : 0);
    t.setDirtyTracking(hwpt, true);
    mockDirtyBitmaps(hwpt, bitmapVa, flags);
    // a bitmap that is not page aligned, and one that is not u64 aligned
    mockDirtyBitmaps(hwpt, bitmapVa + MP, flags);
    mockDirtyBitmaps(hwpt, bitmapVa + 0xff1n, flags);
    t.setDirtyTracking(hwpt, false);
    expect(
      errnoOf(() =>
        t.test(IOMMU_TEST_OP_DIRTY, hwpt, {
          dirty: { iova: MOCK_APERTURE_START, length: variant.size, page_size: MP, uptr: bitmapVa },
        }),
      ),
    ).toBe('EINVAL');
    t.destroy(d.stdev);
    t.destroy(hwpt);
  }

  it('get_dirty_bitmap', () => dirtyBitmapTest(0));

  it('get_dirty_bitmap_no_clear', () => dirtyBitmapTest(IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR));

  it('DIRTY argument checks', () => {
    const hwpt = t.hwptAlloc(dom.idev, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    const d = t.mockDomain(hwpt);
    t.setDirtyTracking(hwpt, true);
    const dirty = (m: Record<string, unknown>, id = hwpt) =>
      errnoOf(() =>
        t.test(IOMMU_TEST_OP_DIRTY, id, {
          dirty: { iova: MOCK_APERTURE_START, length: variant.size, page_size: MP, uptr: bitmapVa, ...m },
        }),
      );
    expect(dirty({ page_size: 0n })).toBe('EINVAL');
    expect(dirty({ length: 0n })).toBe('EINVAL');
    expect(dirty({ iova: MOCK_APERTURE_START + 1n })).toBe('EINVAL');
    expect(dirty({ length: MP + 1n })).toBe('EINVAL');
    expect(dirty({ uptr: 0n })).toBe('EINVAL');
    expect(dirty({}, ioas)).toBe('ENOENT');
    expect(dirty({ uptr: 8n })).toBe('EFAULT');
    t.destroy(d.stdev);
    t.destroy(hwpt);
  });
});
