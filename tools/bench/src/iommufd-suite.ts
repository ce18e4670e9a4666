// The iommufd suite: IOMMU_IOAS_MAP / IOMMU_IOAS_UNMAP through the ioctl uAPI of a selftest
// iommufd, with 0, 1 and 2 selftest mock domains attached to the IOAS (the second through a
// manual HWPT_ALLOC, as devices on one IOAS share their automatic HWPT), plus many separate 4 KiB
// maps.
//
// Rows:
// - map and unmap of one `--mib` MiB region (4 KiB pages) per domain count: ns per page, best of
//   `--rounds` after a first round that also faults the user pages in (reported separately);
// - `--maps` separate one-page maps (and their unmaps) into an IOAS with one domain: ns per map;
// - baseline: the mm's own pin_user_pages (FOLL_WRITE | FOLL_LONGTERM, 512 pages per call as
//   iommufd batches) and unpin of the same region, which every domain-backed IOAS_MAP must do;
//   the ratio column is each row against it;
// - the 1 GiB map and unmap again through the VFIO container (vfio-compat), as QEMU does;
// - memory: heap + array-buffer growth per pinned page while the region is mapped (the pinned-PFN
//   storage, areas, pages objects and the mock domain's entries; the user pages themselves are
//   the machine's RAM and not counted), measured after a forced GC when node runs with --expose-gc.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IommuSubsystem } from '@iommu-ts/iommu-core';
import {
  IOMMU_HWPT_ALLOC,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_SET,
  Iommufd,
} from '@iommu-ts/iommufd';
import { IOMMU_TEST_CMD, IOMMU_TEST_OP_MOCK_DOMAIN, MOCK_APERTURE_START } from '@iommu-ts/iommufd/selftest';
import {
  FOLL_LONGTERM,
  FOLL_WRITE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PAGE_SIZE,
  PhysicalMemory,
  PROT_READ,
  PROT_WRITE,
  Process,
  pinUserPagesRemote,
  unpinUserPages,
} from '@iommu-ts/mm';
import {
  openVfioContainer,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from '@iommu-ts/vfio-compat';
import { machineInfo } from './machine.js';
import { parseBenchOptions } from './options.js';
import { printTable } from './table.js';

const P = PAGE_SIZE;
const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

interface Row {
  name: string;
  nsPerPage: number;
  bytesPerPinnedPage: number | null;
  note: string;
}

function heapBytes(): number {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function setup(domains: number, bytes: number, vfio = false) {
  const ram = new PhysicalMemory({ size: bytes + 256 * 2 ** 20 });
  const proc = new Process(ram); // root: no RLIMIT_MEMLOCK charge, as the kernel selftests run
  const iommu = new IommuSubsystem();
  // open("/dev/vfio/vfio") is the same file as /dev/iommu with the VFIO container ioctls added.
  const file = vfio
    ? openVfioContainer({ iommu, process: proc, selftest: true })
    : Iommufd.open({ iommu, process: proc, selftest: true });
  const ioas = { size: 12, flags: 0, out_ioas_id: 0 };
  file.ioctl(IOMMU_IOAS_ALLOC, ioas);
  const ioasId = ioas.out_ioas_id;
  let devId = 0;
  if (domains >= 1) {
    const md = {
      size: 72,
      op: IOMMU_TEST_OP_MOCK_DOMAIN,
      id: ioasId,
      mock_domain: { out_stdev_id: 0, out_hwpt_id: 0, out_idev_id: 0 },
    };
    file.ioctl(IOMMU_TEST_CMD, md);
    devId = md.mock_domain.out_idev_id;
  }
  for (let d = 1; d < domains; d++)
    file.ioctl(IOMMU_HWPT_ALLOC, { size: 48, flags: 0, dev_id: devId, pt_id: ioasId, out_hwpt_id: 0 });
  const va = proc.mmap(BigInt(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  return { ram, proc, file, ioasId, va };
}

function timeMs(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

export async function runIommufdSuite(args: string[]): Promise<void> {
  const opts = parseBenchOptions(args, { mib: 1024, maps: 100_000, rounds: 3 });
  const machine = machineInfo();
  const bytes = opts.mib * 2 ** 20;
  const pages = bytes / P;
  console.log(
    `iommufd bench: IOAS_MAP/UNMAP of ${opts.mib} MiB (${pages} pages of 4 KiB) with 0/1/2 mock domains, ` +
      `${opts.maps} separate 4 KiB maps; best of ${opts.rounds}`,
  );
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.platform}`);
  const rows: Row[] = [];

  {
    const s = setup(0, bytes);
    let bestPin = Number.POSITIVE_INFINITY;
    let bestUnpin = Number.POSITIVE_INFINITY;
    const batch = 512;
    for (let r = 0; r <= opts.rounds; r++) {
      const pinned: number[][] = [];
      const pinMs = timeMs(() => {
        for (let i = 0; i < pages; i += batch)
          pinned.push(
            pinUserPagesRemote(
              s.proc.mm,
              s.va + BigInt(i * P),
              Math.min(batch, pages - i),
              FOLL_WRITE | FOLL_LONGTERM,
            ),
          );
      });
      const unpinMs = timeMs(() => {
        for (const list of pinned) unpinUserPages(s.ram, list, true);
      });
      if (r > 0) {
        bestPin = Math.min(bestPin, pinMs);
        bestUnpin = Math.min(bestUnpin, unpinMs);
      }
    }
    s.file.close();
    rows.push({
      name: `baseline: pin_user_pages ${opts.mib} MiB`,
      nsPerPage: (bestPin * 1e6) / pages,
      bytesPerPinnedPage: null,
      note: 'mm GUP alone, 512 pages per call',
    });
    rows.push({
      name: `baseline: unpin_user_pages ${opts.mib} MiB`,
      nsPerPage: (bestUnpin * 1e6) / pages,
      bytesPerPinnedPage: null,
      note: '',
    });
  }

  for (const domains of [0, 1, 2]) {
    const s = setup(domains, bytes);
    const cmd = {
      size: 40,
      flags: IOMMU_IOAS_MAP_FIXED_IOVA | RW,
      ioas_id: s.ioasId,
      user_va: s.va,
      length: BigInt(bytes),
      iova: MOCK_APERTURE_START,
    };
    const unmap = { size: 24, ioas_id: s.ioasId, iova: MOCK_APERTURE_START, length: BigInt(bytes) };
    let bestMap = Number.POSITIVE_INFINITY;
    let bestUnmap = Number.POSITIVE_INFINITY;
    let firstMap = 0;
    let perPinned: number | null = null;
    for (let r = 0; r <= opts.rounds; r++) {
      const before = heapBytes();
      const mapMs = timeMs(() => s.file.ioctl(IOMMU_IOAS_MAP, cmd));
      if (r === 0) firstMap = mapMs;
      else bestMap = Math.min(bestMap, mapMs);
      if (r === 1 && domains > 0) perPinned = (heapBytes() - before) / pages;
      unmap.length = BigInt(bytes);
      const unmapMs = timeMs(() => s.file.ioctl(IOMMU_IOAS_UNMAP, unmap));
      if (r > 0) bestUnmap = Math.min(bestUnmap, unmapMs);
    }
    const pinned = s.proc.mm.pinnedVm;
    s.file.close();
    rows.push({
      name: `IOAS_MAP ${opts.mib} MiB, ${domains} domain(s)`,
      nsPerPage: (bestMap * 1e6) / pages,
      bytesPerPinnedPage: perPinned,
      note: `first map with fault-in ${((firstMap * 1e6) / pages).toFixed(0)} ns/page`,
    });
    rows.push({
      name: `IOAS_UNMAP ${opts.mib} MiB, ${domains} domain(s)`,
      nsPerPage: (bestUnmap * 1e6) / pages,
      bytesPerPinnedPage: null,
      note: `pinned_vm after unmap ${pinned}`,
    });
  }

  {
    // The same 1 GiB through the VFIO type1 container (QEMU's path): MAP_DMA / UNMAP_DMA on the
    // compatibility IOAS with one mock domain.
    const s = setup(1, bytes, true);
    s.file.ioctl(IOMMU_VFIO_IOAS, { size: 12, ioas_id: s.ioasId, op: IOMMU_VFIO_IOAS_SET });
    s.file.ioctl(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    const map = {
      argsz: 32,
      flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
      vaddr: s.va,
      iova: MOCK_APERTURE_START,
      size: BigInt(bytes),
    };
    const unmap = { argsz: 24, flags: 0, iova: MOCK_APERTURE_START, size: BigInt(bytes) };
    let bestMap = Number.POSITIVE_INFINITY;
    let bestUnmap = Number.POSITIVE_INFINITY;
    for (let r = 0; r <= opts.rounds; r++) {
      const mapMs = timeMs(() => s.file.ioctl(VFIO_IOMMU_MAP_DMA, map));
      unmap.size = BigInt(bytes);
      const unmapMs = timeMs(() => s.file.ioctl(VFIO_IOMMU_UNMAP_DMA, unmap));
      if (r > 0) {
        bestMap = Math.min(bestMap, mapMs);
        bestUnmap = Math.min(bestUnmap, unmapMs);
      }
    }
    s.file.close();
    rows.push({
      name: `VFIO_IOMMU_MAP_DMA ${opts.mib} MiB, 1 domain`,
      nsPerPage: (bestMap * 1e6) / pages,
      bytesPerPinnedPage: null,
      note: 'vfio-compat container, TYPE1v2',
    });
    rows.push({
      name: `VFIO_IOMMU_UNMAP_DMA ${opts.mib} MiB, 1 domain`,
      nsPerPage: (bestUnmap * 1e6) / pages,
      bytesPerPinnedPage: null,
      note: '',
    });
  }

  {
    const s = setup(1, opts.maps * P);
    // Populate the user pages once, so the rows measure the ioctl and pinning, not the page faults.
    for (let i = 0; i < opts.maps; i++) s.proc.write(s.va + BigInt(i * P), new Uint8Array([i & 0xff]));
    const cmd = {
      size: 40,
      flags: IOMMU_IOAS_MAP_FIXED_IOVA | RW,
      ioas_id: s.ioasId,
      user_va: 0n,
      length: BigInt(P),
      iova: 0n,
    };
    const unmap = { size: 24, ioas_id: s.ioasId, iova: 0n, length: BigInt(P) };
    let bestMap = Number.POSITIVE_INFINITY;
    let bestUnmap = Number.POSITIVE_INFINITY;
    let perPinned = 0;
    for (let r = 0; r < opts.rounds; r++) {
      const before = heapBytes();
      const mapMs = timeMs(() => {
        for (let i = 0; i < opts.maps; i++) {
          cmd.user_va = s.va + BigInt(i * P);
          cmd.iova = MOCK_APERTURE_START + BigInt(i * P);
          s.file.ioctl(IOMMU_IOAS_MAP, cmd);
        }
      });
      bestMap = Math.min(bestMap, mapMs);
      if (r === 0) perPinned = (heapBytes() - before) / opts.maps;
      const unmapMs = timeMs(() => {
        for (let i = 0; i < opts.maps; i++) {
          unmap.iova = MOCK_APERTURE_START + BigInt(i * P);
          unmap.length = BigInt(P);
          s.file.ioctl(IOMMU_IOAS_UNMAP, unmap);
        }
      });
      bestUnmap = Math.min(bestUnmap, unmapMs);
    }
    s.file.close();
    rows.push({
      name: `${opts.maps} separate 4 KiB IOAS_MAPs, 1 domain`,
      nsPerPage: (bestMap * 1e6) / opts.maps,
      bytesPerPinnedPage: perPinned,
      note: 'one area and one pages object per map',
    });
    rows.push({
      name: `${opts.maps} separate 4 KiB IOAS_UNMAPs, 1 domain`,
      nsPerPage: (bestUnmap * 1e6) / opts.maps,
      bytesPerPinnedPage: null,
      note: '',
    });
  }

  const base = rows[0]?.nsPerPage ?? 1;
  const table = [
    ['operation', 'ns/page', 'x of bare pin', 'bytes/pinned page', 'notes'],
    ...rows.map((r) => [
      r.name,
      r.nsPerPage.toFixed(1),
      (r.nsPerPage / base).toFixed(1),
      r.bytesPerPinnedPage === null ? '' : r.bytesPerPinnedPage.toFixed(1),
      r.note,
    ]),
  ];
  printTable(table);
  if ((globalThis as { gc?: () => void }).gc === undefined)
    console.log('\n(memory figures without --expose-gc include garbage not yet collected)');
  const outFile = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'iommufd.json');
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, `${JSON.stringify({ machine, options: opts, rows }, null, 2)}\n`);
  console.log(`\nresults written to ${outFile}`);
}
