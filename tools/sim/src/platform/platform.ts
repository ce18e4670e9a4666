/**
 * A platform description: the parsed firmware table a machine is built from, with where it came
 * from. {@link loadPlatform} (platform/load.ts) makes one from a file; the built-in defaults make one
 * from tables they assemble themselves.
 */

import type { FlattenedDeviceTree, IortTable } from '@iommu-ts/arm-smmu-v3';
import type { DmarTable } from '@iommu-ts/intel-vtd';
import type { PlatformSource } from '../machine/machine.js';

/** An x86 platform described by an ACPI DMAR table. */
export interface DmarPlatform {
  /** Architecture. */
  readonly kind: 'vtd';
  /** Platform name (file base name or built-in name). */
  readonly name: string;
  /** Where it came from. */
  readonly source: PlatformSource;
  /** The parsed table. */
  readonly dmar: DmarTable;
  /** The table's bytes. */
  readonly bytes: Uint8Array;
}

/** An Arm platform described by an ACPI IORT table. */
export interface IortPlatform {
  /** Architecture. */
  readonly kind: 'smmuv3';
  /** Platform name. */
  readonly name: string;
  /** Where it came from. */
  readonly source: PlatformSource;
  /** The parsed table. */
  readonly iort: IortTable;
  /** The table's bytes. */
  readonly bytes: Uint8Array;
}

/** An Arm platform described by a flattened device tree. */
export interface DtPlatform {
  /** Architecture. */
  readonly kind: 'smmuv3';
  /** Platform name. */
  readonly name: string;
  /** Where it came from. */
  readonly source: PlatformSource;
  /** The parsed blob. */
  readonly fdt: FlattenedDeviceTree;
  /** The blob's bytes. */
  readonly bytes: Uint8Array;
}

/** Any platform description. */
export type PlatformDescription = DmarPlatform | IortPlatform | DtPlatform;

/** Options for building a machine. */
export interface BuildOptions {
  /** Seed of the machine's scheduler (interleaving of interrupt threads and work items). */
  readonly seed: number;
  /** RAM size in bytes (default 4 GiB; sparse, only touched pages cost host memory). */
  readonly ramBytes?: number;
  /**
   * DMA-API invalidation policy of default domains (`iommu.strict`): `true` (default here) unmaps
   * invalidate at once (DMA domains); `false` batches them in flush queues (DMA-FQ domains, Linux's
   * usual default).
   */
  readonly dmaStrict?: boolean;
}
