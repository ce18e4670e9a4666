/**
 * The SVA I/O page fault handler (drivers/iommu/iommu-sva.c `iommu_sva_iopf_handler`,
 * `iommu_sva_handle_mm`): each request of a group is resolved against the domain's mm by the core
 * mm fault handler, on the IOPF queue's workqueue.
 */

import { iopfWorkHandler } from '@iommu-ts/io-pgfault';
import {
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IOMMU_FAULT_PERM_EXEC,
  IOMMU_FAULT_PERM_PRIV,
  IOMMU_FAULT_PERM_READ,
  IOMMU_FAULT_PERM_WRITE,
  type IommuFault,
  type IommuIopfHandler,
  IommuPageResponseCode,
} from '@iommu-ts/iommu-core';
import {
  FAULT_FLAG_INSTRUCTION,
  FAULT_FLAG_REMOTE,
  FAULT_FLAG_USER,
  FAULT_FLAG_WRITE,
  handleMmFault,
  type Mm,
  VM_EXEC,
  VM_FAULT_ERROR,
  VM_READ,
  VM_WRITE,
} from '@iommu-ts/mm';

/**
 * `iommu_sva_handle_mm(fault, mm)`: resolve one page request against `mm`.
 *
 * INVALID when the request has no PASID, the mm is exiting (`mmget_not_zero` fails), no VMA
 * contains the address (no stack expansion), the VMA lacks a requested access (read, write, exec),
 * or `handle_mm_fault` returns an error; SUCCESS otherwise. The fault is a remote one; an
 * unprivileged request is a user fault; a write request a write fault; an exec request an
 * instruction fault. FAILURE is never returned.
 *
 * @param fault - the request
 * @param mm - the domain's mm
 * @returns SUCCESS or INVALID
 */
export function iommuSvaHandleMm(fault: IommuFault, mm: Mm): IommuPageResponseCode {
  const prm = fault.prm;
  if (!(prm.flags & IOMMU_FAULT_PAGE_REQUEST_PASID_VALID)) return IommuPageResponseCode.INVALID;
  if (!mm.mmgetNotZero()) return IommuPageResponseCode.INVALID;
  try {
    if (prm.addr >= BigInt(mm.taskSize)) return IommuPageResponseCode.INVALID;
    const addr = Number(prm.addr);
    const vma = mm.findVma(addr);
    if (vma === undefined) return IommuPageResponseCode.INVALID;
    let access = 0;
    let flags = FAULT_FLAG_REMOTE;
    if (prm.perm & IOMMU_FAULT_PERM_READ) access |= VM_READ;
    if (prm.perm & IOMMU_FAULT_PERM_WRITE) {
      access |= VM_WRITE;
      flags |= FAULT_FLAG_WRITE;
    }
    if (prm.perm & IOMMU_FAULT_PERM_EXEC) {
      access |= VM_EXEC;
      flags |= FAULT_FLAG_INSTRUCTION;
    }
    if (!(prm.perm & IOMMU_FAULT_PERM_PRIV)) flags |= FAULT_FLAG_USER;
    if ((access & ~vma.flags) !== 0) return IommuPageResponseCode.INVALID;
    const ret = handleMmFault(mm, addr, flags);
    return ret & VM_FAULT_ERROR ? IommuPageResponseCode.INVALID : IommuPageResponseCode.SUCCESS;
  } finally {
    mm.mmput();
  }
}

/**
 * `iommu_sva_iopf_handler`: the `iopfHandler` of every SVA domain. It queues the group on the
 * device's IOPF workqueue; the work resolves the requests in order with {@link iommuSvaHandleMm}
 * (stopping at the first INVALID), answers the group and frees it. Throws `EBUSY` if the group's
 * work is already queued (the core then aborts the group with FAILURE).
 */
export const iommuSvaIopfHandler: IommuIopfHandler = iopfWorkHandler((f, group) => {
  const mm = group.attachHandle?.domain.mm;
  return mm ? iommuSvaHandleMm(f.fault, mm) : IommuPageResponseCode.INVALID;
});
