/**
 * The MMU notifier of each SVA domain, as the seed series registered it in the core (2018
 * `iommu-sva.c`): every invalidation of the mm becomes the domain's `mmInvalidate` (the driver's
 * IOTLB and ATC invalidation; today's `arch_invalidate_secondary_tlbs`), and the mm's exit while
 * bound becomes the domain's `mmRelease` (DMA blocked on its PASID) followed by the device drivers'
 * `mm_exit` callbacks and a flush of their fault queues.
 */

import { isErrnoError } from '@iommu-ts/base';
import { iopfQueueFlushDev } from '@iommu-ts/io-pgfault';
import type { IommuDomain } from '@iommu-ts/iommu-core';
import { type Mm, type MmuNotifier, mmuNotifierRegister, mmuNotifierUnregister } from '@iommu-ts/mm';
import type { IommuMmData } from './mm-data.js';
import type { IommuSva } from './sva-bind.js';

/** What the SVA core keeps per SVA domain. @internal */
export interface SvaDomainInfo {
  /** The mm data the domain was created for (kept after the mm's PASID is dropped). */
  readonly data: IommuMmData;
  /** Live bindings through the domain. */
  readonly bindings: Set<IommuSva>;
  /** The notifier registered on the mm. */
  readonly notifier: MmuNotifier;
  /** Whether the mm exited while the domain was bound. */
  released: boolean;
  /** Set while the notifier is being unregistered (its `release` call is then not an exit). */
  unregistering: boolean;
}

const infos = new WeakMap<IommuDomain, SvaDomainInfo>();

/** The SVA core's data of an SVA domain. @internal */
export function svaDomainInfo(domain: IommuDomain): SvaDomainInfo {
  const i = infos.get(domain);
  if (i === undefined) throw new Error('not an SVA domain of iommu-sva');
  return i;
}

/**
 * Whether the mm of an SVA domain exited while the domain was bound (its notifier's `release`
 * ran).
 * @param domain - an SVA domain created by `iommuSvaBindDevice`
 */
export function iommuSvaDomainReleased(domain: IommuDomain): boolean {
  return infos.get(domain)?.released ?? false;
}

function release(domain: IommuDomain, info: SvaDomainInfo): void {
  if (info.released) return;
  info.released = true;
  domain.ops.mmRelease?.(domain);
  const params = info.data.state.deviceParams;
  for (const sva of [...info.bindings]) {
    if (sva.mmExited) continue;
    sva.mmExited = true;
    params.get(sva.dev)?.mmExit?.(sva.dev, info.data.pasid, sva.drvdata);
    try {
      iopfQueueFlushDev(sva.dev);
    } catch (e) {
      if (!isErrnoError(e, 'ENODEV')) throw e;
    }
  }
}

/**
 * Register the notifier of a new SVA domain on its mm.
 * @internal
 */
export function svaNotifierRegister(data: IommuMmData, domain: IommuDomain): SvaDomainInfo {
  const notifier: MmuNotifier = {
    ops: {
      archInvalidateSecondaryTlbs(_sub: MmuNotifier, _mm: Mm, start: number, end: number) {
        domain.ops.mmInvalidate?.(domain, start, end);
      },
      release() {
        if (!info.unregistering) release(domain, info);
      },
    },
  };
  const info: SvaDomainInfo = { data, bindings: new Set(), notifier, released: false, unregistering: false };
  infos.set(domain, info);
  mmuNotifierRegister(data.mm, notifier);
  return info;
}

/**
 * Unregister the notifier of an SVA domain being freed (nothing to do once the mm is gone).
 * @internal
 */
export function svaNotifierUnregister(domain: IommuDomain): void {
  const info = infos.get(domain);
  if (info === undefined) return;
  info.unregistering = true;
  mmuNotifierUnregister(info.data.mm, info.notifier);
}
