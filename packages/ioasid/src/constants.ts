/**
 * Constants and enumerations of the IOASID allocator (include/linux/ioasid.h, merged kernels and
 * the IOASID extensions v4 RFC).
 */

/** An IOASID: a PCIe PASID or Arm SubstreamID, an unsigned 32-bit number (`ioasid_t`). */
export type Ioasid = number;

/** The invalid IOASID, `(ioasid_t)-1`: what a failed allocation or lookup returns. */
export const INVALID_IOASID: Ioasid = 0xffff_ffff;

/** The PCIe PASID space, 2^20 IDs: the default system-wide capacity (`PCI_PASID_MAX`). */
export const PCI_PASID_MAX = 0x10_0000;

/**
 * Whether `id` is a valid IOASID (`pasid_valid`): anything but {@link INVALID_IOASID}.
 * @param id - an IOASID
 */
export function pasidValid(id: Ioasid): boolean {
  return id !== INVALID_IOASID;
}

/** Set types (`enum ioasid_set_type`, v4 RFC). */
export const IoasidSetType = {
  /** The set's token must be `null`: kernel-internal users. */
  NULL: 1,
  /** The set's token is a process address space (an mm); one such set per mm. */
  MM: 2,
} as const;
/** One of the {@link (IoasidSetType:variable)} values. */
export type IoasidSetType = (typeof IoasidSetType)[keyof typeof IoasidSetType];
/** First invalid set type (`IOASID_SET_TYPE_NR`). */
export const IOASID_SET_TYPE_NR = 3;

/** Life-cycle states of an IOASID (`enum ioasid_state`, v4 RFC). */
export const IoasidState = {
  /** Allocated; from allocation until `ioasid_free`. */
  IDLE: 0,
  /** Defined by the RFC but never entered by its code. */
  ACTIVE: 1,
  /** `ioasid_free` was called; reclaimed when the last reference is put. */
  FREE_PENDING: 2,
} as const;
/** One of the {@link (IoasidState:variable)} values. */
export type IoasidState = (typeof IoasidState)[keyof typeof IoasidState];

/** Notification events (`enum ioasid_notify_val`, v4 RFC). */
export const IoasidNotify = {
  /** An IOASID was allocated (set chain). */
  ALLOC: 1,
  /** An IOASID was freed while references remain (set and global chains). */
  FREE: 2,
  /** A SPID was attached to an IOASID (set chain). */
  BIND: 3,
  /** A SPID is being detached from an IOASID (set chain). */
  UNBIND: 4,
} as const;
/** One of the {@link (IoasidNotify:variable)} values. */
export type IoasidNotify = (typeof IoasidNotify)[keyof typeof IoasidNotify];

/** Notifier priorities (`enum ioasid_notifier_prios`, v4 RFC code values): higher is called first. */
export const IoasidPrio = {
  /** Called last. */
  LAST: 0,
  /** Device drivers. */
  DEVICE: 1,
  /** IOMMU drivers. */
  IOMMU: 2,
  /** CPU-side users such as KVM: called first. */
  CPU: 3,
} as const;
/** One of the {@link (IoasidPrio:variable)} values, or any other integer priority. */
export type IoasidPrio = number;
