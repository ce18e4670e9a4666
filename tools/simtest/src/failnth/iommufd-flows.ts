/**
 * The iommufd flows of the fail_nth harness: every ioctl of `/dev/iommu` and the selftest mock
 * domain / access operations, each on a state built as iommufd_fail_nth.c builds it.
 */

import {
  IOMMU_GET_HW_INFO,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_SET,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
} from '@iommu-ts/iommufd';
import {
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_ACCESS_RW,
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
  MOCK_ACCESS_RW_SLOW_PATH,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
} from '@iommu-ts/iommufd/selftest';
import type { FailNthFlow } from './flow.js';
import { BUFFER_SIZE, IommufdEnv, MAP_RW, PS } from './iommufd-env.js';

/** An iommufd flow whose state `build` makes (nothing armed) and whose steps it adds. */
function flow(name: string, build: (e: IommufdEnv) => void, open = true): FailNthFlow {
  return {
    name: `iommufd: ${name}`,
    file: 'iommufd',
    setup() {
      const e = new IommufdEnv(open);
      build(e);
      return e;
    },
  };
}

/** Little-endian u32 words into user memory at `va`. */
function putU32(e: IommufdEnv, va: bigint, words: readonly number[]): void {
  const b = new Uint8Array(words.length * 4);
  const v = new DataView(b.buffer);
  for (const [i, w] of words.entries()) v.setUint32(i * 4, w >>> 0, true);
  e.proc.write(va, b);
}

/** Little-endian u64 words into user memory at `va`. */
function putU64(e: IommufdEnv, va: bigint, words: readonly bigint[]): void {
  const b = new Uint8Array(words.length * 8);
  const v = new DataView(b.buffer);
  for (const [i, w] of words.entries()) v.setBigUint64(i * 8, w, true);
  e.proc.write(va, b);
}

/** A nested HWPT's user data (`struct iommu_hwpt_selftest`: the IOTLB value), at a scratch page. */
function selftestData(e: IommufdEnv): { type: number; len: number; uptr: bigint } {
  const va = e.mapBuffer(PS);
  putU32(e, va, [IOMMU_TEST_IOTLB_DEFAULT]);
  return { type: IOMMU_HWPT_DATA_SELFTEST, len: 4, uptr: va };
}

/** MOCK_DOMAIN_REPLACE of `stdev` onto `ptId`. */
function replace(e: IommufdEnv, stdev: number, ptId: number): void {
  e.test(IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, stdev, { mock_domain_replace: { pt_id: ptId } });
}

/** Every iommufd flow. */
export function iommufdFlows(): FailNthFlow[] {
  return [
    flow(
      'open + IOAS_ALLOC',
      (e) => {
        e.step('open /dev/iommu', () => e.open());
        e.step('IOMMU_IOAS_ALLOC', () => e.ioasAlloc());
      },
      false,
    ),
    flow('IOAS_ALLOC + IOAS_IOVA_RANGES', (e) => {
      const out = e.mapBuffer(PS);
      let ioas = 0;
      e.step('IOMMU_IOAS_ALLOC', () => {
        ioas = e.ioasAlloc();
      });
      e.step('IOMMU_IOAS_IOVA_RANGES', () =>
        e.ioctl(IOMMU_IOAS_IOVA_RANGES, {
          size: 32,
          ioas_id: ioas,
          num_iovas: 4,
          allowed_iovas: out,
          out_iova_alignment: 0n,
        }),
      );
    }),
    flow('IOAS_ALLOW_IOVAS', (e) => {
      const ioas = e.ioasAlloc();
      const ranges = e.mapBuffer(PS);
      putU64(e, ranges, [0x10_0000n, 0x1f_ffffn, 0x100_0000n, 0x1ff_ffffn]);
      e.step('IOMMU_IOAS_ALLOW_IOVAS', () =>
        e.ioctl(IOMMU_IOAS_ALLOW_IOVAS, { size: 24, ioas_id: ioas, num_iovas: 2, allowed_iovas: ranges }),
      );
    }),
    flow('IOAS_MAP without a domain', (e) => {
      const ioas = e.ioasAlloc();
      e.step('IOMMU_IOAS_MAP', () => e.map(ioas, e.buffer, BUFFER_SIZE, 0x4000n));
    }),
    flow('IOAS_MAP with a mock domain', (e) => {
      const ioas = e.ioasAlloc();
      e.mockDomain(ioas);
      e.step('IOMMU_IOAS_MAP', () => e.map(ioas, e.buffer, BUFFER_SIZE));
    }),
    flow('IOAS_MAP with a mock domain, pinning 2 pages per batch', (e) => {
      const ioas = e.ioasAlloc();
      e.mockDomain(ioas);
      e.smallBatches();
      e.step('IOMMU_IOAS_MAP', () => e.map(ioas, e.buffer, BUFFER_SIZE));
    }),
    flow('IOAS_MAP FIXED_IOVA with two mock domains', (e) => {
      const ioas = e.ioasAlloc();
      const { idev } = e.mockDomain(ioas);
      e.hwptAlloc(idev, ioas);
      e.step('IOMMU_IOAS_MAP FIXED_IOVA', () => e.map(ioas, e.buffer, BUFFER_SIZE, MOCK_APERTURE_START));
    }),
    flow('IOAS_COPY between domains', (e) => {
      const src = e.ioasAlloc();
      e.mockDomain(src);
      const iova = e.map(src, e.buffer, BUFFER_SIZE);
      const dst = e.ioasAlloc();
      e.mockDomain(dst);
      e.step('IOMMU_IOAS_COPY', () =>
        e.ioctl(IOMMU_IOAS_COPY, {
          size: 40,
          flags: MAP_RW,
          dst_ioas_id: dst,
          src_ioas_id: src,
          length: BUFFER_SIZE,
          dst_iova: MOCK_APERTURE_START + 0x8000n,
          src_iova: iova,
        }),
      );
    }),
    flow('IOAS_COPY of two areas into two domains', (e) => {
      const src = e.ioasAlloc();
      const half = BUFFER_SIZE / 2n;
      e.map(src, e.buffer, half, 0x10_0000n);
      e.map(src, e.buffer + half, half, 0x10_0000n + half);
      const dst = e.ioasAlloc();
      const { idev } = e.mockDomain(dst);
      e.hwptAlloc(idev, dst);
      e.step('IOMMU_IOAS_COPY', () =>
        e.ioctl(IOMMU_IOAS_COPY, {
          size: 40,
          flags: MAP_RW,
          dst_ioas_id: dst,
          src_ioas_id: src,
          length: BUFFER_SIZE,
          dst_iova: MOCK_APERTURE_START,
          src_iova: 0x10_0000n,
        }),
      );
    }),
    flow('IOAS_MAP + IOAS_UNMAP with a mock domain and an access', (e) => {
      const ioas = e.ioasAlloc();
      e.mockDomain(ioas);
      e.createAccess(ioas, 0);
      let iova = 0n;
      e.step('IOMMU_IOAS_MAP', () => {
        iova = e.map(ioas, e.buffer, BUFFER_SIZE);
      });
      e.step('IOMMU_IOAS_UNMAP', () =>
        e.ioctl(IOMMU_IOAS_UNMAP, { size: 24, ioas_id: ioas, iova, length: BUFFER_SIZE }),
      );
    }),
    flow('OPTION huge pages + IOAS_MAP', (e) => {
      const ioas = e.ioasAlloc();
      e.mockDomain(ioas);
      e.step('IOMMU_OPTION HUGE_PAGES=0', () =>
        e.ioctl(IOMMU_OPTION, {
          size: 24,
          option_id: IOMMU_OPTION_HUGE_PAGES,
          op: IOMMU_OPTION_OP_SET,
          object_id: ioas,
          val64: 0n,
        }),
      );
      e.step('IOMMU_IOAS_MAP', () => e.map(ioas, e.buffer, BUFFER_SIZE));
    }),
    flow('IOAS_ALLOC + VFIO_IOAS SET/GET', (e) => {
      let ioas = 0;
      e.step('IOMMU_IOAS_ALLOC', () => {
        ioas = e.ioasAlloc();
      });
      e.step('IOMMU_VFIO_IOAS SET', () =>
        e.ioctl(IOMMU_VFIO_IOAS, { size: 12, ioas_id: ioas, op: IOMMU_VFIO_IOAS_SET }),
      );
      e.step('IOMMU_VFIO_IOAS GET', () =>
        e.ioctl(IOMMU_VFIO_IOAS, { size: 12, ioas_id: 0, op: IOMMU_VFIO_IOAS_GET }),
      );
    }),
    flow('HWPT_ALLOC paging over a mapped IOAS', (e) => {
      const ioas = e.ioasAlloc();
      const { idev } = e.mockDomain(ioas);
      e.map(ioas, e.buffer, BUFFER_SIZE);
      e.step('IOMMU_HWPT_ALLOC', () => e.hwptAlloc(idev, ioas));
    }),
    flow('HWPT_ALLOC nested', (e) => {
      const ioas = e.ioasAlloc();
      const { idev } = e.mockDomain(ioas);
      e.map(ioas, e.buffer, BUFFER_SIZE);
      const parent = e.hwptAlloc(idev, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
      const data = selftestData(e);
      e.step('IOMMU_HWPT_ALLOC nested', () => e.hwptAlloc(idev, parent, 0, data));
    }),
    flow('GET_HW_INFO', (e) => {
      const ioas = e.ioasAlloc();
      const { idev } = e.mockDomain(ioas);
      const out = e.mapBuffer(PS);
      e.step('IOMMU_GET_HW_INFO', () =>
        e.ioctl(IOMMU_GET_HW_INFO, {
          size: 40,
          flags: 0,
          dev_id: idev,
          data_len: 8,
          data_uptr: out,
          out_data_type: 0,
          out_capabilities: 0n,
        }),
      );
    }),
    flow('HWPT_ALLOC dirty + HWPT_SET_DIRTY_TRACKING', (e) => {
      const ioas = e.ioasAlloc();
      const { idev } = e.mockDomain(ioas);
      e.map(ioas, e.buffer, BUFFER_SIZE);
      let hwpt = 0;
      e.step('IOMMU_HWPT_ALLOC DIRTY_TRACKING', () => {
        hwpt = e.hwptAlloc(idev, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
      });
      e.step('IOMMU_HWPT_SET_DIRTY_TRACKING', () =>
        e.ioctl(IOMMU_HWPT_SET_DIRTY_TRACKING, {
          size: 16,
          flags: IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
          hwpt_id: hwpt,
        }),
      );
    }),
    flow('HWPT_GET_DIRTY_BITMAP', (e) => {
      const ioas = e.ioasAlloc();
      const { idev } = e.mockDomain(ioas);
      const hwpt = e.hwptAlloc(idev, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
      e.mockDomain(hwpt);
      const iova = e.map(ioas, e.buffer, BUFFER_SIZE);
      e.ioctl(IOMMU_HWPT_SET_DIRTY_TRACKING, {
        size: 16,
        flags: IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
        hwpt_id: hwpt,
      });
      const bitmap = e.mapBuffer(PS);
      e.step('IOMMU_HWPT_GET_DIRTY_BITMAP', () =>
        e.ioctl(IOMMU_HWPT_GET_DIRTY_BITMAP, {
          size: 48,
          hwpt_id: hwpt,
          flags: 0,
          iova,
          length: BUFFER_SIZE,
          page_size: 2048n,
          data: bitmap,
        }),
      );
    }),
    flow('HWPT_ALLOC nested + HWPT_INVALIDATE', (e) => {
      const ioas = e.ioasAlloc();
      const { idev } = e.mockDomain(ioas);
      const parent = e.hwptAlloc(idev, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
      const data = selftestData(e);
      const inv = e.mapBuffer(PS);
      putU32(e, inv, [0, 1]);
      let nested = 0;
      e.step('IOMMU_HWPT_ALLOC nested', () => {
        nested = e.hwptAlloc(idev, parent, 0, data);
      });
      e.step('IOMMU_HWPT_INVALIDATE', () =>
        e.ioctl(IOMMU_HWPT_INVALIDATE, {
          size: 32,
          hwpt_id: nested,
          data_uptr: inv,
          data_type: IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
          entry_len: 8,
          entry_num: 1,
        }),
      );
    }),
    flow('IOAS_ALLOC + DESTROY', (e) => {
      let ioas = 0;
      e.step('IOMMU_IOAS_ALLOC', () => {
        ioas = e.ioasAlloc();
      });
      e.step('IOMMU_DESTROY', () => e.destroy(ioas));
    }),
    flow('MOCK_DOMAIN on a mapped IOAS (bind + attach)', (e) => {
      const ioas = e.ioasAlloc();
      e.map(ioas, e.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
      e.step('IOMMU_TEST_OP_MOCK_DOMAIN', () => e.mockDomain(ioas));
    }),
    flow('MOCK_DOMAIN on an IOAS with two areas', (e) => {
      const ioas = e.ioasAlloc();
      const half = BUFFER_SIZE / 2n;
      e.map(ioas, e.buffer, half, MOCK_APERTURE_START);
      e.map(ioas, e.buffer + half, half, MOCK_APERTURE_START + half);
      e.step('IOMMU_TEST_OP_MOCK_DOMAIN', () => e.mockDomain(ioas));
    }),
    flow('MOCK_DOMAIN_REPLACE onto another IOAS', (e) => {
      const a = e.ioasAlloc();
      const { stdev } = e.mockDomain(a);
      e.map(a, e.buffer, BUFFER_SIZE);
      const b = e.ioasAlloc();
      e.map(b, e.buffer, BUFFER_SIZE, MOCK_APERTURE_START + 0x10_0000n);
      e.step('IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE', () => replace(e, stdev, b));
    }),
    flow('device attach to a manual HWPT, replace, detach', (e) => {
      const ioas = e.ioasAlloc();
      const { idev, hwpt: auto } = e.mockDomain(ioas);
      e.map(ioas, e.buffer, BUFFER_SIZE);
      let hwpt = 0;
      let stdev = 0;
      e.step('IOMMU_HWPT_ALLOC', () => {
        hwpt = e.hwptAlloc(idev, ioas);
      });
      e.step('IOMMU_TEST_OP_MOCK_DOMAIN on the HWPT', () => {
        stdev = e.mockDomain(hwpt).stdev;
      });
      e.step('IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE to the automatic HWPT', () => replace(e, stdev, auto));
      e.step('IOMMU_DESTROY of the device', () => e.destroy(stdev));
    }),
    flow('ACCESS create', (e) => {
      const ioas = e.ioasAlloc();
      e.map(ioas, e.buffer, BUFFER_SIZE, 0x4000n);
      e.step('IOMMU_TEST_OP_CREATE_ACCESS', () =>
        e.createAccess(ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES),
      );
    }),
    flow('ACCESS_PAGES', (e) => {
      const ioas = e.ioasAlloc();
      e.mockDomain(ioas);
      const iova = e.map(ioas, e.buffer, BUFFER_SIZE);
      const fd = e.createAccess(ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
      e.step('IOMMU_TEST_OP_ACCESS_PAGES', () =>
        e.test(IOMMU_TEST_OP_ACCESS_PAGES, fd, {
          access_pages: { flags: 0, iova: iova + PS, length: 4n * PS, uptr: e.buffer + PS },
        }),
      );
    }),
    flow('ACCESS_PAGES without a domain', (e) => {
      const ioas = e.ioasAlloc();
      const iova = e.map(ioas, e.buffer, BUFFER_SIZE, 0x4000n);
      const fd = e.createAccess(ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
      e.step('IOMMU_TEST_OP_ACCESS_PAGES', () =>
        e.test(IOMMU_TEST_OP_ACCESS_PAGES, fd, {
          access_pages: { flags: 0, iova, length: BUFFER_SIZE, uptr: e.buffer },
        }),
      );
    }),
    flow('ACCESS_PAGES across two areas', (e) => {
      const ioas = e.ioasAlloc();
      const half = BUFFER_SIZE / 2n;
      e.map(ioas, e.buffer, half, 0x10_0000n);
      e.map(ioas, e.buffer + half, half, 0x10_0000n + half);
      const fd = e.createAccess(ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
      e.step('IOMMU_TEST_OP_ACCESS_PAGES', () =>
        e.test(IOMMU_TEST_OP_ACCESS_PAGES, fd, {
          access_pages: { flags: 0, iova: 0x10_0000n, length: BUFFER_SIZE, uptr: e.buffer },
        }),
      );
    }),
    flow('ACCESS_PAGES without a domain, pinning 2 pages per batch', (e) => {
      const ioas = e.ioasAlloc();
      const iova = e.map(ioas, e.buffer, BUFFER_SIZE, 0x4000n);
      const fd = e.createAccess(ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
      e.smallBatches();
      e.step('IOMMU_TEST_OP_ACCESS_PAGES', () =>
        e.test(IOMMU_TEST_OP_ACCESS_PAGES, fd, {
          access_pages: { flags: 0, iova, length: BUFFER_SIZE, uptr: e.buffer },
        }),
      );
    }),
    flow('ACCESS_RW across two areas', (e) => {
      const ioas = e.ioasAlloc();
      const half = BUFFER_SIZE / 2n;
      e.map(ioas, e.buffer, half, 0x10_0000n);
      e.map(ioas, e.buffer + half, half, 0x10_0000n + half);
      const fd = e.createAccess(ioas, 0);
      const tmp = e.mapBuffer(BUFFER_SIZE);
      e.step('IOMMU_TEST_OP_ACCESS_RW', () =>
        e.test(IOMMU_TEST_OP_ACCESS_RW, fd, {
          access_rw: {
            iova: 0x10_0000n + 16n,
            length: BUFFER_SIZE - 32n,
            uptr: tmp,
            flags: MOCK_ACCESS_RW_SLOW_PATH,
          },
        }),
      );
    }),
    flow('ACCESS_RW slow path', (e) => {
      const ioas = e.ioasAlloc();
      const iova = e.map(ioas, e.buffer, BUFFER_SIZE, 0x4000n);
      const fd = e.createAccess(ioas, 0);
      const tmp = e.mapBuffer(2n * PS);
      e.step('IOMMU_TEST_OP_ACCESS_RW', () =>
        e.test(IOMMU_TEST_OP_ACCESS_RW, fd, {
          access_rw: { iova: iova + 100n, length: PS + 200n, uptr: tmp, flags: MOCK_ACCESS_RW_SLOW_PATH },
        }),
      );
    }),
  ];
}
