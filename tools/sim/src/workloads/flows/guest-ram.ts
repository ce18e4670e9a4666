/**
 * Guest RAM of a VMM process: guest-physical regions backed by anonymous memory of the process, as
 * QEMU lays them out (RAM below the legacy hole, RAM above 1 MiB). Guest code reads and writes its
 * RAM by guest-physical address; the bytes live in the process's pages.
 */

import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE, type Process } from '@iommu-ts/mm';
import { type MemAccess, processAccess } from './mem-access.js';

/** One guest RAM region. */
export interface GuestRamRegion {
  /** First guest-physical address (bytes, page-aligned). */
  readonly gpa: bigint;
  /** Size in bytes (page multiple). */
  readonly size: bigint;
  /** User virtual address of its first byte in the VMM process. */
  readonly hva: bigint;
}

/** Guest RAM: regions of one process, addressed by guest-physical address. */
export class GuestRam {
  /** The regions, in ascending guest-physical order. */
  readonly regions: readonly GuestRamRegion[];

  /**
   * Allocate the backing memory: one anonymous private mapping per region (`mmap`, not populated;
   * pages appear on first touch or when VFIO pins them).
   * @param process - the VMM process
   * @param layout - guest-physical start and size of each region (page-aligned, non-overlapping)
   * @throws ErrnoError from `mmap` (`ENOMEM`…); Error for a misaligned or overlapping layout
   */
  constructor(
    readonly process: Process,
    layout: ReadonlyArray<{ readonly gpa: bigint; readonly size: bigint }>,
  ) {
    const sorted = [...layout].sort((a, b) => (a.gpa < b.gpa ? -1 : a.gpa > b.gpa ? 1 : 0));
    let end = 0n;
    for (const r of sorted) {
      if (r.gpa % 4096n !== 0n || r.size % 4096n !== 0n || r.size === 0n)
        throw new Error(`guest RAM region at 0x${r.gpa.toString(16)} is not page-aligned`);
      if (r.gpa < end) throw new Error(`guest RAM regions overlap at 0x${r.gpa.toString(16)}`);
      end = r.gpa + r.size;
    }
    this.regions = sorted.map((r) => ({
      gpa: r.gpa,
      size: r.size,
      hva: BigInt(process.mmap(r.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)),
    }));
  }

  /**
   * The region holding `[gpa, gpa + length)`.
   * @param gpa - guest-physical address
   * @param length - bytes (default 1)
   * @returns the region, or `undefined` when the range is not inside one region
   */
  regionOf(gpa: bigint, length = 1): GuestRamRegion | undefined {
    const n = BigInt(length);
    return this.regions.find((r) => gpa >= r.gpa && gpa + n <= r.gpa + r.size);
  }

  /**
   * Host virtual address of a guest-physical range.
   * @param gpa - guest-physical address
   * @param length - bytes
   * @returns the user virtual address in the VMM process
   * @throws Error when the range is not inside one region (a guest bug: no RAM there)
   */
  hvaOf(gpa: bigint, length: number): bigint {
    const r = this.regionOf(gpa, length);
    if (r === undefined) throw new Error(`no guest RAM at 0x${gpa.toString(16)} (+${length})`);
    return r.hva + (gpa - r.gpa);
  }

  /**
   * The guest CPU's view: loads and stores by guest-physical address (which is also the IOVA when
   * the VMM maps guest RAM 1:1 into the container).
   * @returns an accessor over the process's memory
   */
  cpu(): MemAccess {
    return processAccess(this.process, (gpa, length) => this.hvaOf(gpa, length));
  }

  /**
   * Read guest RAM.
   * @param gpa - guest-physical address
   * @param length - bytes
   * @returns the bytes
   * @throws as {@link GuestRam.hvaOf}; `UserFaultError` from the process
   */
  read(gpa: bigint, length: number): Uint8Array {
    return this.process.read(this.hvaOf(gpa, length), length);
  }

  /**
   * Write guest RAM.
   * @param gpa - guest-physical address
   * @param data - the bytes
   * @throws as {@link GuestRam.read}
   */
  write(gpa: bigint, data: Uint8Array): void {
    this.process.write(this.hvaOf(gpa, data.length), data);
  }
}
