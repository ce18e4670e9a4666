/**
 * The PRI half of drivers/pci/ats.c (`pci_enable_pri`, `pci_disable_pri`, `pci_reset_pri`,
 * `pci_prg_resp_pasid_required`, `pci_pri_supported`) and the PRI Status register of the function.
 *
 * @remarks
 * The configuration half of the capability lives on the {@link PciDevice} (`priCap`: capacity,
 * allocation, PASID-required, enable). The dynamic half, the Status register's Response Failure,
 * Unexpected PRG Index and Stopped bits, belongs to the function's page-request logic, which an
 * `Endpoint` model binds with {@link pciPriBindFunction}. A function without a bound model reads as
 * "stopped whenever disabled, no errors".
 */

import { ERRNO } from '@iommu-ts/base';
import type { PciDevice } from './pci.js';

/** PRI Control: Enable (`PCI_PRI_CTRL_ENABLE`). */
export const PCI_PRI_CTRL_ENABLE = 0x0001;
/** PRI Control: Reset (`PCI_PRI_CTRL_RESET`). */
export const PCI_PRI_CTRL_RESET = 0x0002;
/** PRI Status: Response Failure, RW1C (`PCI_PRI_STATUS_RF`). */
export const PCI_PRI_STATUS_RF = 0x0001;
/** PRI Status: Unexpected PRG Index, RW1C (`PCI_PRI_STATUS_UPRGI`). */
export const PCI_PRI_STATUS_UPRGI = 0x0002;
/** PRI Status: Stopped: disabled and no page request outstanding (`PCI_PRI_STATUS_STOPPED`). */
export const PCI_PRI_STATUS_STOPPED = 0x0100;
/** PRI Status: PRG Response PASID Required (`PCI_PRI_STATUS_PASID`). */
export const PCI_PRI_STATUS_PASID = 0x8000;

/** The function-side PRI state a device model exposes to the PCI core. */
export interface PriFunctionState {
  /** Response Failure: a PRG response said Response Failure; page requests are stopped. */
  readonly responseFailure: boolean;
  /** Unexpected PRG Index: a PRG response named no outstanding group. */
  readonly unexpectedPrgIndex: boolean;
  /** Page requests sent and not yet answered (each request of a group counts). */
  readonly outstanding: number;
  /**
   * Write 1s to the RW1C status bits.
   * @param bits - {@link PCI_PRI_STATUS_RF} | {@link PCI_PRI_STATUS_UPRGI} subset
   */
  clearStatus(bits: number): void;
  /**
   * PRI Control.Reset: clear the status bits and forget every outstanding page request (the
   * accesses waiting on them fail).
   */
  reset(): void;
}

const functionState = new WeakMap<PciDevice, PriFunctionState>();

/**
 * Bind a device model's PRI state to a PCI function (done by `Endpoint`).
 * @param pdev - the function
 * @param state - the model's state
 * @returns a function that unbinds it (if still bound)
 */
export function pciPriBindFunction(pdev: PciDevice, state: PriFunctionState): () => void {
  functionState.set(pdev, state);
  return () => {
    if (functionState.get(pdev) === state) functionState.delete(pdev);
  };
}

/**
 * The PRI Status register.
 * @param pdev - the function
 * @returns PCI_PRI_STATUS_* bits, or 0 without a PRI capability
 */
export function pciPriStatus(pdev: PciDevice): number {
  const cap = pdev.priCap;
  if (cap === null) return 0;
  const st = functionState.get(pdev);
  let v = cap.prgResponsePasidRequired ? PCI_PRI_STATUS_PASID : 0;
  if (st?.responseFailure) v |= PCI_PRI_STATUS_RF;
  if (st?.unexpectedPrgIndex) v |= PCI_PRI_STATUS_UPRGI;
  if (!cap.enabled && (st?.outstanding ?? 0) === 0) v |= PCI_PRI_STATUS_STOPPED;
  return v;
}

/**
 * Write 1s to the RW1C bits of the PRI Status register.
 * @param pdev - the function
 * @param bits - {@link PCI_PRI_STATUS_RF} | {@link PCI_PRI_STATUS_UPRGI} subset
 */
export function pciPriClearStatus(pdev: PciDevice, bits: number): void {
  functionState.get(pdev)?.clearStatus(bits & (PCI_PRI_STATUS_RF | PCI_PRI_STATUS_UPRGI));
}

/**
 * `pci_pri_supported(pdev)`: the function has a PRI capability.
 * @param pdev - the function
 */
export function pciPriSupported(pdev: PciDevice): boolean {
  return pdev.priCap !== null;
}

/**
 * `pdev->pri_enabled`.
 * @param pdev - the function
 */
export function pciPriEnabled(pdev: PciDevice): boolean {
  return pdev.priCap?.enabled ?? false;
}

/**
 * `pci_enable_pri(pdev, reqs)`: allocate `min(reqs, capacity)` outstanding page requests and set
 * PRI Enable.
 * @param pdev - the function
 * @param reqs - requested Outstanding Page Request Allocation (Intel's driver asks for 2048)
 * @returns 0; `-EBUSY` when already enabled (Linux warns) or the function is not stopped (page
 *   requests still outstanding); `-EINVAL` without a PRI capability
 */
export function pciEnablePri(pdev: PciDevice, reqs: number): number {
  const cap = pdev.priCap;
  if (cap?.enabled) return -ERRNO.EBUSY;
  if (cap === null) return -ERRNO.EINVAL;
  if ((pciPriStatus(pdev) & PCI_PRI_STATUS_STOPPED) === 0) return -ERRNO.EBUSY;
  cap.allocatedRequests = Math.max(0, Math.min(cap.maxRequests, Math.trunc(reqs)));
  cap.enabled = true;
  return 0;
}

/**
 * `pci_disable_pri(pdev)`: clear PRI Enable. The function sends no new page requests; answers to
 * outstanding ones are still accepted. Does nothing (Linux warns) when not enabled.
 * @param pdev - the function
 */
export function pciDisablePri(pdev: PciDevice): void {
  const cap = pdev.priCap;
  if (cap === null || !cap.enabled) return;
  cap.enabled = false;
}

/**
 * `pci_reset_pri(pdev)`: write PRI Control.Reset (clears Response Failure / UPRGI and the function's
 * outstanding requests).
 * @param pdev - the function
 * @returns 0; `-EBUSY` while PRI is enabled (Linux warns); `-EINVAL` without a PRI capability
 */
export function pciResetPri(pdev: PciDevice): number {
  const cap = pdev.priCap;
  if (cap?.enabled) return -ERRNO.EBUSY;
  if (cap === null) return -ERRNO.EINVAL;
  functionState.get(pdev)?.reset();
  return 0;
}

/**
 * `pci_prg_resp_pasid_required(pdev)`: PRG responses to PASID-tagged page requests must carry the
 * PASID (Status.PRG Response PASID Required).
 * @param pdev - the function
 */
export function pciPrgRespPasidRequired(pdev: PciDevice): boolean {
  return pdev.priCap?.prgResponsePasidRequired ?? false;
}
