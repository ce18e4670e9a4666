/**
 * The SVA core's global state (drivers/iommu/iommu-sva.c: `iommu_sva_lock`, the list of mms with
 * SVA domains, `iommu_sva_present`), kept per `IommuSubsystem` since the model can run several.
 */

import type { Device, IommuSubsystem } from '@iommu-ts/iommu-core';
import type { IommuMmData } from './mm-data.js';

/** How bind checks that the device is isolated enough to use PASIDs. */
export type SvaGroupCheck = 'singleton' | 'acs';

/** Options of the SVA core of one subsystem ({@link iommuSvaSetOptions}). */
export interface IommuSvaOptions {
  /**
   * `'singleton'` (default, the seed "SVA and IOPF refactoring" RFC v3): the device must be alone
   * in an immutable group (PCI: ACS on the whole upstream path) → `EINVAL` otherwise.
   * `'acs'` (merged Linux): the PCI function must have PASID enabled, which `pci_enable_pasid`
   * only allows with ACS RR|UF upstream → `EINVAL` otherwise; groups of several devices allowed.
   */
  readonly groupCheck?: SvaGroupCheck;
  /**
   * Require I/O page faults to be possible before attaching (PCI: PRI enabled; platform:
   * `dma-can-stall`) → `EINVAL` otherwise, as the Intel and SMMUv3 drivers check. Default true.
   */
  readonly requireIopf?: boolean;
  /**
   * `arch_pgtable_dma_compat(mm)`: whether the mm's page tables can be shared with IOMMUs (x86 LAM
   * makes them not) → `EBUSY` otherwise. Default: always.
   */
  readonly pgtableDmaCompat?: (mm: IommuMmData['mm']) => boolean;
}

/** The SVA state of one subsystem. @internal */
export class SvaState {
  readonly sub: IommuSubsystem;
  options: Required<IommuSvaOptions>;
  /** PASID → the mm's SVA data, for `iommuSvaFind`. */
  readonly byPasid = new Map<number, IommuMmData>();
  /** `iommu_sva_mms`: mms that have at least one SVA domain. */
  readonly mms = new Set<IommuMmData>();
  /** Per-device `mm_exit` callbacks registered with the seed's `iommuSvaDeviceInit`. */
  readonly deviceParams = new Map<
    Device,
    { mmExit: MmExitCallback | null; features: number; maxPasid: number }
  >();

  constructor(sub: IommuSubsystem) {
    this.sub = sub;
    this.options = { groupCheck: 'singleton', requireIopf: true, pgtableDmaCompat: () => true };
  }

  /** `iommu_sva_present`: whether any SVA domain exists. */
  get present(): boolean {
    return this.mms.size > 0;
  }
}

/**
 * The seed's `mm_exit` callback: the mm bound at `pasid` is exiting; the device driver must stop
 * using the PASID before returning (it may wait, i.e. flush work on the scheduler).
 * @param dev - the device
 * @param pasid - the PASID
 * @param drvdata - what the driver passed to bind
 */
export type MmExitCallback = (dev: Device, pasid: number, drvdata: unknown) => void;

/** Every SVA state, for `iommuSvaFind` without a subsystem. @internal */
export const allSvaStates = new Set<SvaState>();

const states = new WeakMap<IommuSubsystem, SvaState>();

/** The SVA state of `sub`, created on first use. @internal */
export function svaStateOf(sub: IommuSubsystem): SvaState {
  let s = states.get(sub);
  if (s === undefined) {
    s = new SvaState(sub);
    states.set(sub, s);
    allSvaStates.add(s);
  }
  return s;
}

/**
 * Configure the SVA core of `sub` (see {@link IommuSvaOptions}); options left out keep their value.
 * @param sub - the IOMMU subsystem
 * @param options - the options
 */
export function iommuSvaSetOptions(sub: IommuSubsystem, options: IommuSvaOptions): void {
  const s = svaStateOf(sub);
  s.options = { ...s.options, ...options } as Required<IommuSvaOptions>;
}
