/**
 * Reserved regions (`struct iommu_resv_region`, `iommu_alloc_resv_region`,
 * `iommu_insert_resv_region` / `iommu_get_group_resv_regions` of iommu.c).
 *
 * Changes (additive only): none yet.
 */

/** `enum iommu_resv_type`. */
export const IommuResvType = {
  /** Must be identity-mapped at all times; sets the device's `require_direct`. */
  DIRECT: 0,
  /** Identity-mapped in DMA domains, may be dropped when the device is assigned to a user. */
  DIRECT_RELAXABLE: 1,
  /** Never map. */
  RESERVED: 2,
  /** Hardware MSI window (untranslated). */
  MSI: 3,
  /** Software-managed MSI window (the DMA layer maps doorbells there). */
  SW_MSI: 4,
} as const;
/** A value of {@link (IommuResvType:variable)}. */
export type IommuResvType = (typeof IommuResvType)[keyof typeof IommuResvType];

/** The sysfs names of the reserved-region types (`iommu_group_resv_type_string`). */
export const IOMMU_RESV_TYPE_NAMES: Readonly<Record<IommuResvType, string>> = {
  0: 'direct',
  1: 'direct-relaxable',
  2: 'reserved',
  3: 'msi',
  4: 'msi',
};

/** `struct iommu_resv_region`. */
export interface IommuResvRegion {
  /** First byte (u64). */
  start: bigint;
  /** Length in bytes (u64). */
  length: bigint;
  /** `IOMMU_READ | IOMMU_WRITE | ...` for direct mappings. */
  prot: number;
  /** The type. */
  type: IommuResvType;
  /** Optional release callback (`free`). */
  free?: (region: IommuResvRegion) => void;
}

/**
 * `iommu_alloc_resv_region(start, length, prot, type)`.
 */
export function iommuAllocResvRegion(
  start: bigint,
  length: bigint,
  prot: number,
  type: IommuResvType,
): IommuResvRegion {
  return { start, length, prot, type };
}

/**
 * `iommu_insert_resv_region` applied to a whole list: sort by start (ties by type) and merge
 * overlapping or adjacent regions of the same type, as `iommu_get_group_resv_regions` builds the
 * group view. Inputs are not modified.
 */
export function iommuMergeResvRegions(regions: readonly IommuResvRegion[]): IommuResvRegion[] {
  const out: IommuResvRegion[] = [];
  for (const r of regions) {
    let nr: IommuResvRegion = { start: r.start, length: r.length, prot: r.prot, type: r.type };
    // absorb every existing region of the same type that overlaps or touches
    for (let i = out.length - 1; i >= 0; i--) {
      const it = out[i]!;
      if (it.type !== nr.type) continue;
      const itEnd = it.start + it.length;
      const nrEnd = nr.start + nr.length;
      if (it.start > nrEnd || nr.start > itEnd) continue;
      let start = nr.start;
      if (it.start < start) start = it.start;
      let end = nrEnd;
      if (itEnd > end) end = itEnd;
      nr = { start, length: end - start, prot: nr.prot, type: nr.type };
      out.splice(i, 1);
    }
    let pos = out.length;
    for (let i = 0; i < out.length; i++) {
      const it = out[i]!;
      if (nr.start < it.start || (nr.start === it.start && nr.type < it.type)) {
        pos = i;
        break;
      }
    }
    out.splice(pos, 0, nr);
  }
  return out;
}
