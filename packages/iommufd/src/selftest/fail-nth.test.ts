// iommufd's fail_nth points (iommufd.object_alloc, pages_alloc, area_alloc, reserved_alloc,
// allowed_alloc, access_alloc, iova_bitmap_alloc, mock_domain_alloc, mock_map, mock_hw_info,
// ctx_alloc, and mm.pin_user_pages under them), in the manner of iommufd_fail_nth.c: each ioctl
// is run failing its 1st, 2nd, ... point on a fresh fixture; every failure is ENOMEM and leaves the
// objects, pins and accounting as they were.
import { faultInjector } from '@iommu-ts/base';
import { afterEach, describe, expect, it } from 'vitest';
import { iommufdCtxFromFile } from '../iommufd.js';
import {
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
} from '../selftest-uapi.js';
import { IOMMU_IOAS_ALLOW_IOVAS } from '../uapi.js';
import { BPS, BUFFER_SIZE, errnoOf, Selftest } from './kernel-selftest.test-helpers.js';

afterEach(() => faultInjector.disarm());

/** IOMMU_TEST_OP_MOCK_DOMAIN on `ptId`. */
function mockDomain(t: Selftest, ptId: number): void {
  t.test(IOMMU_TEST_OP_MOCK_DOMAIN, ptId, { mock_domain: {} });
}

/** What a failure must not change. */
function state(t: Selftest): string {
  const ctx = iommufdCtxFromFile(t.proc.getFile(t.file.fd));
  const objs = ctx.listObjects().map((o) => `${o.id}:${o.type}`);
  ctx.put();
  const ram = t.proc.machine.memory.stats();
  return JSON.stringify([objs, ram.pinnedPages, ram.allocatedPages, t.proc.mm.pinnedVm, t.proc.mm.lockedVm]);
}

/**
 * Run `call` on fresh fixtures built by `build`, failing point 1, 2, ... until it completes.
 * @returns the sites failed, in order
 */
function failNth(
  build: (t: Selftest) => void,
  call: (t: Selftest) => void,
  done: (t: Selftest) => void = () => {},
): string[] {
  const sites: string[] = [];
  for (let n = 1; n < 100; n++) {
    const t = new Selftest();
    build(t);
    const before = state(t);
    faultInjector.arm(n);
    const r = errnoOf(() => call(t));
    faultInjector.disarm();
    const fired = faultInjector.fired;
    if (fired === null) {
      expect(r).toBe('ok');
      done(t);
      t.teardown();
      return sites;
    }
    sites.push(fired.site);
    expect(r, `point ${n} (${fired.site})`).toBe('ENOMEM');
    expect(state(t), `point ${n} (${fired.site})`).toBe(before);
    done(t);
    t.teardown();
  }
  throw new Error('too many points');
}

describe('fail_nth over iommufd ioctls', () => {
  it('IOAS_MAP with a mock domain: pages, area, pin and domain map each unwind', () => {
    let ioas = 0;
    const sites = failNth(
      (t) => {
        ioas = t.ioasAlloc();
        mockDomain(t, ioas);
      },
      (t) => t.map(ioas, t.buffer, BUFFER_SIZE),
    );
    expect(sites).toEqual([
      'iommufd.pages_alloc',
      'iommufd.area_alloc',
      'mm.pin_user_pages',
      'iommufd.mock_map',
    ]);
  });

  it('MOCK_DOMAIN on a mapped IOAS: objects, domain, handle, reserved ranges, pin and fill each unwind', () => {
    let ioas = 0;
    const sites = failNth(
      (t) => {
        ioas = t.ioasAlloc();
        t.map(ioas, t.buffer, BUFFER_SIZE, MOCK_APERTURE_START);
      },
      (t) => mockDomain(t, ioas),
    );
    expect(sites).toEqual([
      'iommufd.object_alloc',
      'iommufd.object_alloc',
      'iommufd.object_alloc',
      'iommufd.mock_domain_alloc',
      'iommu_core.pasid_array_insert',
      'iommufd.reserved_alloc',
      'iommufd.reserved_alloc',
      'mm.pin_user_pages',
      'iommufd.mock_map',
    ]);
  });

  it('ACCESS_PAGES without a domain and ALLOW_IOVAS', () => {
    let ioas = 0;
    let fd = 0;
    const pin = failNth(
      (t) => {
        ioas = t.ioasAlloc();
        t.map(ioas, t.buffer, BUFFER_SIZE, 0x4000n);
        fd = (
          t.test(5, ioas, { create_access: { flags: MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES } })
            .create_access as {
            out_access_fd: number;
          }
        ).out_access_fd;
      },
      (t) =>
        t.test(IOMMU_TEST_OP_ACCESS_PAGES, fd, {
          access_pages: { flags: 0, iova: 0x4000n, length: BUFFER_SIZE, uptr: t.buffer },
        }),
      (t) => t.proc.close(fd),
    );
    expect(pin).toEqual(['iommufd.access_alloc', 'mm.pin_user_pages']);
    let ranges = 0n;
    const allow = failNth(
      (t) => {
        ioas = t.ioasAlloc();
        ranges = t.scratch(BPS);
        const b = new Uint8Array(32);
        const v = new DataView(b.buffer);
        v.setBigUint64(0, 0x10_0000n, true);
        v.setBigUint64(8, 0x1f_ffffn, true);
        v.setBigUint64(16, 0x100_0000n, true);
        v.setBigUint64(24, 0x1ff_ffffn, true);
        t.proc.write(ranges, b);
      },
      (t) =>
        t.ioctl(IOMMU_IOAS_ALLOW_IOVAS, { size: 24, ioas_id: ioas, num_iovas: 2, allowed_iovas: ranges }),
    );
    expect(allow).toEqual(['iommufd.allowed_alloc', 'iommufd.allowed_alloc']);
  });
});
