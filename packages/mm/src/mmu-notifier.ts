/**
 * MMU notifiers (include/linux/mmu_notifier.h, mm/mmu_notifier.c): secondary MMUs such as an
 * IOMMU doing SVA hear about every change of a process's page tables.
 *
 * @remarks
 * Order per operation, as Linux issues them on arm64 and x86-64 (whose mmu_gather flushes at every
 * `tlb_end_vma`; `flush` = CPU TLB invalidation, published on the `TlbBroadcast` for arm64, followed by
 * `archInvalidateSecondaryTlbs`):
 * - munmap (and `MAP_FIXED` over a mapping): `UNMAP` start over the whole request → per VMA, PTEs
 *   cleared then a leaf flush of the cleared span (when one was set) → end → page tables no VMA
 *   needs are unhooked, a non-leaf flush of their span, then freed (`free_pgtables`,
 *   `tlb_finish_mmu`) → pages freed.
 * - MADV_DONTNEED: per VMA part, `CLEAR` start → PTEs cleared → leaf flush → end.
 * - mprotect: per VMA part, per populated 512 GiB top-level entry `PROTECTION_VMA` start (from the
 *   first set PUD entry) → PTEs changed → end; then, when a PTE changed, a leaf flush of the changed
 *   span (`tlb_end_vma`), i.e. after the end. Hugetlb: start → change → non-leaf flush → end.
 * - COW break, migration, reclaim: `CLEAR` start → PTE cleared with an immediate flush
 *   (`ptep_clear_flush`) → new PTE (COW, migration) → end. Reclaim's deferred `TTU_BATCH_FLUSH`
 *   batching is not modelled (arm64 issues those TLBIs and the secondary call at once anyway).
 * - fork: per copied private VMA `PROTECTION_PAGE` (hugetlb: `CLEAR`) start/end around the
 *   write-protection of the parent, then one `flush_tlb_mm` of the parent (secondary
 *   `0 … FLUSH_ALL_END`), always, as `dup_mmap` does.
 * - exit: `release` first; the teardown then makes no callbacks.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { Mm } from './mm.js';

/** Why a range is invalidated (`enum mmu_notifier_event`). */
export const MmuNotifyEvent = {
  /** The range is unmapped (munmap, exit) (`MMU_NOTIFY_UNMAP`). */
  UNMAP: 0,
  /** PTEs are cleared, the VMA stays (COW break, MADV_DONTNEED, reclaim, migration) (`MMU_NOTIFY_CLEAR`). */
  CLEAR: 1,
  /** The VMA's protection changes (mprotect) (`MMU_NOTIFY_PROTECTION_VMA`). */
  PROTECTION_VMA: 2,
  /** Individual pages are write-protected (fork's COW setup) (`MMU_NOTIFY_PROTECTION_PAGE`). */
  PROTECTION_PAGE: 3,
  /** Soft-dirty tracking (`MMU_NOTIFY_SOFT_DIRTY`); not produced here. */
  SOFT_DIRTY: 4,
  /** The mm is going away (`MMU_NOTIFY_RELEASE`). */
  RELEASE: 5,
  /** Device-private migration (`MMU_NOTIFY_MIGRATE`); page migration uses `CLEAR` as `try_to_migrate_one` does. */
  MIGRATE: 6,
  /** Exclusive device access (`MMU_NOTIFY_EXCLUSIVE`); not produced here. */
  EXCLUSIVE: 7,
} as const;

/** One of the {@link (MmuNotifyEvent:variable)} values. */
export type MmuNotifyEvent = (typeof MmuNotifyEvent)[keyof typeof MmuNotifyEvent];

/** `MMU_NOTIFIER_RANGE_BLOCKABLE`: the callback may sleep (always set here). */
export const MMU_NOTIFIER_RANGE_BLOCKABLE = 1 << 0;

/** The range of an invalidation (`struct mmu_notifier_range`); addresses are numbers, `end` exclusive. */
export interface MmuNotifierRange {
  /** The address space. */
  readonly mm: Mm;
  /** First byte. */
  readonly start: number;
  /** One past the last byte. */
  readonly end: number;
  /** Why. */
  readonly event: MmuNotifyEvent;
  /** `MMU_NOTIFIER_RANGE_*` flags. */
  readonly flags: number;
}

/**
 * The callbacks of a subscription (`struct mmu_notifier_ops`); each is optional.
 */
export interface MmuNotifierOps {
  /**
   * The mm is being torn down (`release`): stop using its page tables. Called once, before the
   * mappings are removed, at exit or at unregister if exit has not happened.
   * @param subscription - the subscription
   * @param mm - the address space
   */
  release?(subscription: MmuNotifier, mm: Mm): void;
  /**
   * PTEs in the range are about to change (`invalidate_range_start`).
   * @param subscription - the subscription
   * @param range - the range
   */
  invalidateRangeStart?(subscription: MmuNotifier, range: MmuNotifierRange): void;
  /**
   * The change of the matching start is complete (`invalidate_range_end`).
   * @param subscription - the subscription
   * @param range - the same range object as the start
   */
  invalidateRangeEnd?(subscription: MmuNotifier, range: MmuNotifierRange): void;
  /**
   * Invalidate secondary TLBs for `[start, end)` (`arch_invalidate_secondary_tlbs`), called from the
   * CPU TLB flush. `end` is `FLUSH_ALL_END` with `start` 0 for a whole-mm flush.
   * @param subscription - the subscription
   * @param mm - the address space
   * @param start - first byte
   * @param end - one past the last byte
   */
  archInvalidateSecondaryTlbs?(subscription: MmuNotifier, mm: Mm, start: number, end: number): void;
}

/** A subscription (`struct mmu_notifier`); the same object is passed back to every callback. */
export interface MmuNotifier {
  /** The callbacks. */
  readonly ops: MmuNotifierOps;
}

/**
 * Subscribe to an mm (`mmu_notifier_register`); takes an `mm_count` reference (`mmgrab`).
 * @param mm - a live address space (`mm_users` \> 0)
 * @param subscription - the subscription, not yet registered anywhere
 * @throws ErrnoError `EINVAL` when the mm has no users left or the subscription is already registered
 */
export function mmuNotifierRegister(mm: Mm, subscription: MmuNotifier): void {
  if (mm.users <= 0) throw new ErrnoError('EINVAL', 'mmu_notifier_register on an mm without users');
  if (mm.notifiers.includes(subscription)) throw new ErrnoError('EINVAL', 'subscription already registered');
  mm.mmgrab();
  mm.notifiers = [...mm.notifiers, subscription];
}

/**
 * Unsubscribe (`mmu_notifier_unregister`): if exit has not released the subscription yet, its
 * `release` is called first; drops the `mm_count` reference.
 * @param mm - the address space
 * @param subscription - a registered subscription (or one released by exit)
 * @throws ErrnoError `EINVAL` when it was never registered on this mm
 */
export function mmuNotifierUnregister(mm: Mm, subscription: MmuNotifier): void {
  const i = mm.notifiers.indexOf(subscription);
  if (i >= 0) {
    subscription.ops.release?.(subscription, mm);
    mm.notifiers = [...mm.notifiers.slice(0, i), ...mm.notifiers.slice(i + 1)];
  } else if (!mm.releasedNotifiers.has(subscription)) {
    throw new ErrnoError('EINVAL', 'subscription not registered on this mm');
  }
  mm.releasedNotifiers.delete(subscription);
  mm.mmdrop();
}

/**
 * Call `release` of every subscription and detach them (`__mmu_notifier_release`, at exit).
 * @param mm - the address space
 */
export function mmuNotifierRelease(mm: Mm): void {
  const subs = mm.notifiers;
  mm.notifiers = [];
  for (const s of subs) {
    mm.releasedNotifiers.add(s);
    s.ops.release?.(s, mm);
  }
}

/**
 * Build a range and call every `invalidateRangeStart` (`mmu_notifier_invalidate_range_start`).
 * @param mm - the address space
 * @param event - why
 * @param start - first byte
 * @param end - one past the last byte
 * @returns the range, to pass to {@link mmuNotifierInvalidateRangeEnd}
 */
export function mmuNotifierInvalidateRangeStart(
  mm: Mm,
  event: MmuNotifyEvent,
  start: number,
  end: number,
): MmuNotifierRange {
  const range: MmuNotifierRange = { mm, start, end, event, flags: MMU_NOTIFIER_RANGE_BLOCKABLE };
  for (const s of mm.notifiers) s.ops.invalidateRangeStart?.(s, range);
  return range;
}

/**
 * Call every `invalidateRangeEnd` (`mmu_notifier_invalidate_range_end`).
 * @param range - from {@link mmuNotifierInvalidateRangeStart}
 */
export function mmuNotifierInvalidateRangeEnd(range: MmuNotifierRange): void {
  for (const s of range.mm.notifiers) s.ops.invalidateRangeEnd?.(s, range);
}

/**
 * Call every `archInvalidateSecondaryTlbs` (`mmu_notifier_arch_invalidate_secondary_tlbs`).
 * @param mm - the address space
 * @param start - first byte
 * @param end - one past the last byte (`FLUSH_ALL_END` for everything)
 */
export function mmuNotifierArchInvalidateSecondaryTlbs(mm: Mm, start: number, end: number): void {
  for (const s of mm.notifiers) s.ops.archInvalidateSecondaryTlbs?.(s, mm, start, end);
}
