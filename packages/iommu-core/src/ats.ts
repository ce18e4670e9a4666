/**
 * The ATS and PASID halves of drivers/pci/ats.c: enabling a function's Address Translation Services
 * and PASID capabilities, as IOMMU drivers do at probe/attach. The PRI half is in pri.ts.
 *
 * @remarks
 * Operates on the capability state of a {@link PciDevice} (`atsCap`, `pasidCap`), which the
 * `Endpoint` model reads on every DMA: enabling ATS here is what makes the endpoint start using its
 * ATC. SR-IOV virtual functions (which share the PF's STU and PASID/PRI state) are not modelled.
 * Errors are returned as Linux does (`0` or a negative errno number), since these are
 * kernel-internal calls whose callers test the return value.
 */

import { ERRNO } from '@iommu-ts/base';
import { PCI_ACS_RR, PCI_ACS_UF, type PciDevice, pciAcsPathEnabled } from './pci.js';

/** Smallest STU Linux accepts: 12, i.e. 4 KiB (`PCI_ATS_MIN_STU`). */
export const PCI_ATS_MIN_STU = 12;
/** Invalidate Queue Depth meaning "32" when the field reads 0 (`PCI_ATS_MAX_QDEP`). */
export const PCI_ATS_MAX_QDEP = 32;
/** PASID capability/control bit: Execute Permission (`PCI_PASID_CAP_EXEC`, `PCI_PASID_CTRL_EXEC`). */
export const PCI_PASID_CAP_EXEC = 0x02;
/** PASID capability/control bit: Privileged Mode (`PCI_PASID_CAP_PRIV`, `PCI_PASID_CTRL_PRIV`). */
export const PCI_PASID_CAP_PRIV = 0x04;

/**
 * `pci_ats_supported(dev)`: the function has an ATS capability and is not untrusted (Linux refuses
 * ATS on devices behind external-facing ports).
 * @param pdev - the function
 */
export function pciAtsSupported(pdev: PciDevice): boolean {
  return pdev.atsCap !== null && !pdev.isUntrusted;
}

/**
 * `pci_prepare_ats(dev, ps)`: program the STU without enabling ATS, so a later
 * {@link pciEnableAts} with the same page shift can be done at a point where it must not fail.
 * @param pdev - the function
 * @param ps - log2 of the smallest translation unit in bytes (≥ 12)
 * @returns 0, or `-EINVAL` when ATS is unsupported or `ps < 12`
 */
export function pciPrepareAts(pdev: PciDevice, ps: number): number {
  const cap = pdev.atsCap;
  if (cap === null || !pciAtsSupported(pdev)) return -ERRNO.EINVAL;
  if (!Number.isInteger(ps) || ps < PCI_ATS_MIN_STU) return -ERRNO.EINVAL;
  cap.stu = ps - PCI_ATS_MIN_STU;
  return 0;
}

/**
 * `pci_enable_ats(dev, ps)`: set the STU and the ATS Enable bit. From then on the endpoint caches
 * translations of at least 2^ps bytes.
 * @param pdev - the function
 * @param ps - log2 of the smallest translation unit in bytes (≥ 12)
 * @returns 0; `-EINVAL` when ATS is unsupported or `ps < 12`; `-EBUSY` when already enabled
 *   (Linux warns)
 */
export function pciEnableAts(pdev: PciDevice, ps: number): number {
  const cap = pdev.atsCap;
  if (cap === null || !pciAtsSupported(pdev)) return -ERRNO.EINVAL;
  if (cap.enabled) return -ERRNO.EBUSY;
  if (!Number.isInteger(ps) || ps < PCI_ATS_MIN_STU) return -ERRNO.EINVAL;
  cap.stu = ps - PCI_ATS_MIN_STU;
  cap.enabled = true;
  return 0;
}

/**
 * `pci_disable_ats(dev)`: clear ATS Enable; the endpoint stops using (and drops) its ATC.
 * Does nothing (Linux warns) when ATS is not enabled.
 * @param pdev - the function
 */
export function pciDisableAts(pdev: PciDevice): void {
  const cap = pdev.atsCap;
  if (cap === null || !cap.enabled) return;
  cap.enabled = false;
}

/**
 * `pdev->ats_enabled`.
 * @param pdev - the function
 */
export function pciAtsEnabled(pdev: PciDevice): boolean {
  return pdev.atsCap?.enabled ?? false;
}

/**
 * `pdev->ats_stu`: log2 of the smallest translation unit in bytes (12 + the STU field).
 * @param pdev - the function
 * @returns the page shift, or 0 without an ATS capability
 */
export function pciAtsStu(pdev: PciDevice): number {
  return pdev.atsCap === null ? 0 : pdev.atsCap.stu + PCI_ATS_MIN_STU;
}

/**
 * `pci_ats_queue_depth(dev)`: how many Invalidate Requests the function can queue.
 * @param pdev - the function
 * @returns 1 … 32 (a field of 0 means 32), or `-EINVAL` without an ATS capability
 */
export function pciAtsQueueDepth(pdev: PciDevice): number {
  const cap = pdev.atsCap;
  if (cap === null) return -ERRNO.EINVAL;
  const q = cap.invQueueDepth & 0x1f;
  return q === 0 ? PCI_ATS_MAX_QDEP : q;
}

/**
 * `pci_ats_page_aligned(dev)`: the function's untranslated requests are page aligned (the Page
 * Aligned Request bit), which VT-d requires before enabling ATS.
 * @param pdev - the function
 */
export function pciAtsPageAligned(pdev: PciDevice): boolean {
  return pdev.atsCap?.pageAlignedRequest ?? false;
}

/**
 * `pci_enable_pasid(dev, features)`: set PASID Enable with the Execute/Privileged features.
 *
 * @remarks
 * PCIe requires PASID to be enabled before ATS (drivers enable PASID, then ATS, then PRI; this
 * function does not check it, as Linux does not). Linux requires ACS P2P Request Redirect and
 * Upstream Forwarding on the whole upstream path so PASID-tagged requests cannot bypass the IOMMU.
 * (The End-End TLP Prefix check is not modelled.)
 * @param pdev - the function
 * @param features - {@link PCI_PASID_CAP_EXEC} | {@link PCI_PASID_CAP_PRIV} subset
 * @returns 0; `-EBUSY` when PASID is already enabled (Linux warns); `-EINVAL`
 *   without a PASID capability, without the ACS path, or for a feature the function lacks
 */
export function pciEnablePasid(pdev: PciDevice, features: number): number {
  const cap = pdev.pasidCap;
  if (cap?.enabled) return -ERRNO.EBUSY;
  if (cap === null) return -ERRNO.EINVAL;
  if (!pciAcsPathEnabled(pdev, null, PCI_ACS_RR | PCI_ACS_UF)) return -ERRNO.EINVAL;
  const supported = pasidSupportedFeatures(pdev);
  if ((features & ~supported) !== 0 || (features & ~(PCI_PASID_CAP_EXEC | PCI_PASID_CAP_PRIV)) !== 0)
    return -ERRNO.EINVAL;
  cap.enabledFeatures = features;
  cap.enabled = true;
  return 0;
}

/**
 * `pci_disable_pasid(dev)`: clear PASID Enable. Does nothing (Linux warns) when not enabled.
 * @param pdev - the function
 */
export function pciDisablePasid(pdev: PciDevice): void {
  const cap = pdev.pasidCap;
  if (cap === null || !cap.enabled) return;
  cap.enabled = false;
  cap.enabledFeatures = 0;
}

function pasidSupportedFeatures(pdev: PciDevice): number {
  const cap = pdev.pasidCap;
  if (cap === null) return 0;
  return (cap.exec ? PCI_PASID_CAP_EXEC : 0) | (cap.priv ? PCI_PASID_CAP_PRIV : 0);
}

/**
 * `pci_pasid_features(dev)`: the features the PASID capability supports.
 * @param pdev - the function
 * @returns {@link PCI_PASID_CAP_EXEC} | {@link PCI_PASID_CAP_PRIV} subset, or `-EINVAL` without a
 *   PASID capability
 */
export function pciPasidFeatures(pdev: PciDevice): number {
  if (pdev.pasidCap === null) return -ERRNO.EINVAL;
  return pasidSupportedFeatures(pdev);
}

/**
 * `pci_max_pasids(dev)`: 2^(Max PASID Width).
 * @param pdev - the function
 * @returns the number of PASIDs, or `-EINVAL` without a PASID capability
 */
export function pciMaxPasids(pdev: PciDevice): number {
  if (pdev.pasidCap === null) return -ERRNO.EINVAL;
  return 2 ** (pdev.pasidCap.maxPasidWidth & 0x1f);
}
