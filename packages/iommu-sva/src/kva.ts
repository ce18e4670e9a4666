/**
 * `iommu_sva_invalidate_kva_range(start, end)` (drivers/iommu/iommu-sva.c): kernel page tables
 * shared with IOMMUs changed; every mm with SVA domains gets a secondary-TLB invalidation.
 */

import type { IommuSubsystem } from '@iommu-ts/iommu-core';
import { mmuNotifierArchInvalidateSecondaryTlbs } from '@iommu-ts/mm';
import { svaStateOf } from './sva-state.js';

/**
 * Invalidate `[start, end)` in the secondary TLBs of every mm that has an SVA domain; nothing when
 * no SVA domain exists (`iommu_sva_present`).
 * @param sub - the subsystem
 * @param start - first byte
 * @param end - end, exclusive
 */
export function iommuSvaInvalidateKvaRange(sub: IommuSubsystem, start: number, end: number): void {
  const s = svaStateOf(sub);
  if (!s.present) return;
  for (const d of s.mms) mmuNotifierArchInvalidateSecondaryTlbs(d.mm, start, end);
}
