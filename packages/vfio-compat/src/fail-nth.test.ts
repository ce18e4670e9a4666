// fail_nth points of the VFIO compatibility layer: vfio.group_file_alloc (open of the group),
// vfio.device_file_alloc and vfio.anon_inode_getfile (VFIO_GROUP_GET_DEVICE_FD, the latter after
// the device was bound and attached: it must be unbound again), vfio.mm_alloc (VFIO_IOMMU_BIND),
// and the iommufd, IOMMU-core and page-table points below them. Each failure is an errno and
// leaves the container, the group's domain, the device and the process's fds as they were.
import { faultInjector, isErrnoError } from '@iommu-ts/base';
import { iommufdCtxFromFile } from '@iommu-ts/iommufd';
import { afterEach, describe, expect, it } from 'vitest';
import { openVfioContainer } from './container.js';
import { setup } from './vfio.test-helpers.js';
import {
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from './vfio-uapi.js';

afterEach(() => faultInjector.disarm());

function world() {
  const s = setup();
  const pdev = s.fn({ register: false });
  const vdev = s.vfio.registerDevice(pdev, { flags: VFIO_DEVICE_FLAGS_PCI, numRegions: 9, numIrqs: 5 });
  const proc = s.proc({ uid: 1000, capabilities: [], rlimitMemlock: 2 ** 30 });
  const container = openVfioContainer({ iommu: s.iommu, process: proc });
  const group = s.vfio.openGroup(proc, pdev.iommuGroup!.id);
  group.ioctl(VFIO_GROUP_SET_CONTAINER, { fd: container.fd });
  container.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
  const state = (): string => {
    const ctx = iommufdCtxFromFile(proc.getFile(container.fd));
    const objs = ctx.listObjects().map((o) => `${o.id}:${o.type}`);
    ctx.put();
    const g = pdev.iommuGroup!;
    return JSON.stringify([
      objs,
      g.domain === g.defaultDomain ? 'default' : g.domain === g.blockingDomain ? 'blocking' : 'other',
      [...g.pasidArray.keys()],
      vdev.openCount,
      vdev.iommufdDevice === null,
      proc.files.fds(),
      s.machine.memory.stats().allocatedPages,
    ]);
  };
  return { ...s, pdev, proc, container, group, state };
}

describe('fail_nth: VFIO_GROUP_GET_DEVICE_FD', () => {
  it('fails at each point with ENOMEM and leaves the device closed and unbound', () => {
    const sites: string[] = [];
    for (let n = 1; ; n++) {
      const w = world();
      const before = w.state();
      faultInjector.arm(n);
      let code = 'ok';
      try {
        w.group.ioctl(VFIO_GROUP_GET_DEVICE_FD, w.pdev.name);
      } catch (e) {
        if (!isErrnoError(e)) throw e;
        code = e.code;
      }
      faultInjector.disarm();
      const fired = faultInjector.fired;
      if (fired === null) {
        expect(code).toBe('ok');
        break;
      }
      sites.push(fired.site);
      expect(code, fired.site).toBe('ENOMEM');
      expect(w.state(), fired.site).toBe(before);
      w.proc.exit();
    }
    expect(sites).toEqual([
      'vfio.device_file_alloc',
      'iommufd.object_alloc',
      'iommufd.object_alloc',
      'iommu_core.domain_alloc',
      'io_pgtable.alloc_table',
      'mm.alloc_pages',
      'iommufd.reserved_alloc',
      'iommu_core.pasid_array_insert',
      'iommufd.reserved_alloc',
      'vfio.anon_inode_getfile',
    ]);
  });
});
