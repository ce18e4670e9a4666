import { ErrnoError, faultInjector, shouldFail } from '@iommu-ts/base';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FailNthReport } from '../report.js';
import type { FailNthFlow } from './flow.js';
import { failNthFlows } from './flows.js';
import { IommufdEnv } from './iommufd-env.js';
import { runFailNth, runFailNthFlow } from './run.js';

const sum = (r: Readonly<Record<string, number>>): number => Object.values(r).reduce((a, b) => a + b, 0);

/** A test-only flow whose one step is `fn` on a fresh iommufd environment. */
function planted(name: string, fn: (e: IommufdEnv) => void): FailNthFlow {
  return {
    name,
    file: 'iommufd',
    setup() {
      const e = new IommufdEnv();
      e.step(name, () => fn(e));
      return e;
    },
  };
}

describe('runFailNth over every flow', () => {
  const lines: string[] = [];
  let report: FailNthReport;
  beforeAll(() => {
    report = runFailNth({ log: (l) => lines.push(l) });
  });

  it('covers every iommufd, VFIO and /dev/ioasid ioctl flow, each with injection points', () => {
    const names = report.flows.map((f) => f.name);
    expect(names).toEqual(failNthFlows().map((f) => f.name));
    expect(lines).toHaveLength(names.length);
    for (const want of [
      'IOAS_ALLOC',
      'IOAS_IOVA_RANGES',
      'IOAS_ALLOW_IOVAS',
      'IOAS_MAP',
      'FIXED_IOVA',
      'IOAS_COPY',
      'IOAS_UNMAP',
      'OPTION',
      'VFIO_IOAS',
      'HWPT_ALLOC paging',
      'HWPT_ALLOC nested',
      'GET_HW_INFO',
      'HWPT_SET_DIRTY_TRACKING',
      'HWPT_GET_DIRTY_BITMAP',
      'HWPT_INVALIDATE',
      'DESTROY',
      'MOCK_DOMAIN on',
      'MOCK_DOMAIN_REPLACE',
      'ACCESS create',
      'ACCESS_PAGES',
      'ACCESS_RW',
      'replace, detach',
      'vfio: VFIO_GROUP_SET_CONTAINER + VFIO_SET_IOMMU',
      'VFIO_IOMMU_GET_INFO',
      'VFIO_IOMMU_MAP_DMA',
      'VFIO_IOMMU_UNMAP_DMA',
      'group SET_CONTAINER',
      'VFIO_GROUP_GET_DEVICE_FD',
      'VFIO_IOMMU_BIND',
      'IOASID_REQUEST_ALLOC',
      'IOASID_REQUEST_FREE',
      'IOASID_GET_INFO',
    ])
      expect(
        names.some((n) => n.includes(want)),
        want,
      ).toBe(true);
    expect(new Set(report.flows.map((f) => f.file))).toEqual(new Set(['iommufd', 'vfio', 'ioasid']));
  });

  it('made every point fail once, each failing with an errno and leaving no trace', () => {
    expect(report.problems).toEqual([]);
    for (const f of report.flows) {
      expect(f.points, f.name).toBeGreaterThan(0);
      expect(sum(f.sites), f.name).toBe(f.points);
      expect(sum(f.errnos), f.name).toBe(f.points);
    }
  });

  it('reports the points of a flow by site, as the kernel fails them (ENOMEM, or EINVAL from /dev/ioasid)', () => {
    const map = report.flows.find((f) => f.name === 'iommufd: IOAS_MAP with a mock domain');
    expect(map).toEqual({
      name: 'iommufd: IOAS_MAP with a mock domain',
      file: 'iommufd',
      points: 4,
      sites: {
        'iommufd.pages_alloc': 1,
        'iommufd.area_alloc': 1,
        'mm.pin_user_pages': 1,
        'iommufd.mock_map': 1,
      },
      errnos: { ENOMEM: 4 },
    });
    const alloc = report.flows.find((f) => f.name === 'ioasid: IOASID_REQUEST_ALLOC');
    expect(alloc?.errnos).toEqual({ EINVAL: 1 });
    const dma = report.flows.find((f) => f.name === 'vfio: VFIO_IOMMU_MAP_DMA');
    // Three page-table levels below the root are allocated (one io-pgtable and one page-allocator
    // point each), besides the pages object, the area and the pin.
    expect(dma?.sites).toEqual({
      'iommufd.pages_alloc': 1,
      'iommufd.area_alloc': 1,
      'mm.pin_user_pages': 1,
      'io_pgtable.alloc_table': 3,
      'mm.alloc_pages': 3,
    });
    expect(faultInjector.active).toBe(false);
  });
});

describe('runFailNth options', () => {
  it('runs the flows named (exactly or by substring) and refuses an unknown name', () => {
    const r = runFailNth({ flows: ['ioasid:', 'iommufd: IOAS_ALLOC + DESTROY'] });
    expect(r.flows.map((f) => f.name)).toEqual([
      'ioasid: open + IOASID_GET_INFO',
      'ioasid: IOASID_REQUEST_ALLOC',
      'ioasid: IOASID_REQUEST_ALLOC + IOASID_REQUEST_FREE',
      'iommufd: IOAS_ALLOC + DESTROY',
    ]);
    expect(r.problems).toEqual([]);
    expect(() => runFailNth({ flows: ['no such flow'] })).toThrow(/no fail_nth flow/);
  });
});

describe('planted unwinding bugs are caught', () => {
  it('a page leaked on the failure path: the state check and the teardown check both report it', () => {
    const problems: string[] = [];
    const r = runFailNthFlow(
      planted('test: leak a page on failure', (e) => {
        const pa = e.ram.allocPages(0);
        if (shouldFail('test.leak')) throw new ErrnoError('ENOMEM', 'planted');
        e.ram.freePages(pa, 0);
      }),
      problems,
    );
    expect(r.points).toBe(2);
    expect(r.sites).toEqual({ 'mm.alloc_pages': 1, 'test.leak': 1 });
    expect(problems).toEqual([
      'test: leak a page on failure: fail_nth 2 (test.leak) in test: leak a page on failure: state changed: ram allocated 20 pinned 0 → ram allocated 21 pinned 0',
      'test: leak a page on failure: fail_nth 2: 1 page(s) still allocated after teardown',
    ]);
  });

  it('a pin left behind, a non-errno exception and a swallowed failure are reported', () => {
    const problems: string[] = [];
    runFailNthFlow(
      planted('test: pin left', (e) => {
        const [pa] = e.proc.pinUserPages(e.buffer, 1, 0);
        if (shouldFail('test.pin')) throw new ErrnoError('ENOMEM', 'planted');
        e.proc.unpinUserPages([pa as number], false);
      }),
      problems,
    );
    // The pinned page shows in the RAM counters and, at teardown, the exiting process cannot free it.
    expect(problems).toEqual([
      'test: pin left: fail_nth 2 (test.pin) in test: pin left: state changed: ram allocated 20 pinned 0 → ram allocated 20 pinned 1',
      'test: pin left: fail_nth 2: 1 page(s) still allocated after teardown',
    ]);
    problems.length = 0;
    runFailNthFlow(
      planted('test: TypeError', () => {
        if (shouldFail('test.type')) throw new TypeError('planted');
      }),
      problems,
    );
    expect(problems).toEqual([
      'test: TypeError: fail_nth 1 (test.type) in test: TypeError: threw TypeError: planted, not an ErrnoError',
    ]);
    problems.length = 0;
    runFailNthFlow(
      planted('test: swallowed', () => {
        shouldFail('test.swallow');
      }),
      problems,
    );
    expect(problems).toEqual([
      'test: swallowed: fail_nth 1 (test.swallow): the flow succeeded although the point failed',
    ]);
  });
});
