/**
 * `struct iommu_mm_data` and the mm's PASID (drivers/iommu/iommu-sva.c `iommu_alloc_mm_data`,
 * `mm_pasid_drop`): one PASID per mm, from the global PASID space, for the mm's whole life.
 */

import { ErrnoError } from '@iommu-ts/base';
import { IOMMU_PASID_INVALID } from '@iommu-ts/ioasid';
import type { Device, IommuDomain } from '@iommu-ts/iommu-core';
import type { Mm, MmIommuData } from '@iommu-ts/mm';
import type { SvaState } from './sva-state.js';

/**
 * The SVA state of one mm, hung on `mm.iommuMm`.
 *
 * @remarks
 * Created by the first bind of the mm; its PASID is freed (and {@link IommuMmData.dropped} set)
 * only when the mm_struct is freed (the last `mmdrop`: after the process exited and every SVA
 * domain of the mm was freed), never by unbind alone.
 */
export class IommuMmData implements MmIommuData {
  /** The mm's PASID. */
  readonly pasid: number;
  /** The mm. */
  readonly mm: Mm;
  /** `sva_domains`: the SVA domains of this mm, most recently created first. */
  readonly svaDomains: IommuDomain[] = [];
  /** Whether `mm_pasid_drop` ran (the PASID went back to the global space). */
  dropped = false;
  /** The SVA state of the subsystem that allocated the PASID. @internal */
  readonly state: SvaState;

  /** @internal */
  constructor(state: SvaState, mm: Mm, pasid: number) {
    this.state = state;
    this.mm = mm;
    this.pasid = pasid;
  }

  /** {@inheritDoc @iommu-ts/mm#MmIommuData.pasidDrop} */
  pasidDrop(_mm: Mm): void {
    if (this.dropped) return;
    this.dropped = true;
    this.state.byPasid.delete(this.pasid);
    this.state.mms.delete(this);
    this.state.sub.iommuFreeGlobalPasid(this.pasid);
  }
}

/**
 * `iommu_alloc_mm_data(mm, dev)`: the mm's SVA data, allocating its PASID on first use.
 * @param state - the subsystem's SVA state
 * @param mm - the mm
 * @param dev - the device being bound (its `max_pasids` bounds the PASID)
 * @throws ErrnoError `EBUSY` if the mm's page tables cannot be shared with IOMMUs; `EOVERFLOW` if
 *   the mm already has a PASID the device cannot use; `ENOSPC` if the device has no PASIDs or the
 *   range is exhausted
 * @internal
 */
export function iommuAllocMmData(state: SvaState, mm: Mm, dev: Device): IommuMmData {
  if (!state.options.pgtableDmaCompat(mm)) throw new ErrnoError('EBUSY', 'page tables not DMA compatible');
  const cur = mm.iommuMm;
  if (cur instanceof IommuMmData) {
    const max = dev.iommu?.maxPasids ?? 0;
    if (cur.pasid >= max) throw new ErrnoError('EOVERFLOW', `PASID ${cur.pasid} does not fit ${dev.name}`);
    return cur;
  }
  if (cur !== null) throw new ErrnoError('EBUSY', 'mm has IOMMU data of another kind');
  const pasid = state.sub.iommuAllocGlobalPasid(dev);
  if (pasid === IOMMU_PASID_INVALID) throw new ErrnoError('ENOSPC', `${dev.name}: no PASID available`);
  const data = new IommuMmData(state, mm, pasid);
  state.byPasid.set(pasid, data);
  mm.iommuMm = data;
  return data;
}
