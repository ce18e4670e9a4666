/**
 * Locked/pinned memory accounting: `account_locked_vm` / `__account_locked_vm` (mm/util.c), the
 * per-user `user->locked_vm` charge that io_uring and iommufd's USER mode use
 * (drivers/iommu/iommufd/pages.c `incr_user_locked_vm`), `mm->pinned_vm`, capabilities
 * (include/uapi/linux/capability.h) and `RLIMIT_MEMLOCK`.
 *
 * @remarks
 * Units: counters are in pages (4 KiB), the rlimit in bytes; the limit in pages is
 * `floor(rlimit / 4096)`, as `rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT`. Errors: `ErrnoError` thrown.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { Mm } from './mm.js';
import type { Process } from './process.js';

/** Capability numbers (include/uapi/linux/capability.h) used by the IOMMU stack. */
export const CAP = {
  /** `CAP_DAC_OVERRIDE` (1). */
  DAC_OVERRIDE: 1,
  /** `CAP_NET_ADMIN` (12). */
  NET_ADMIN: 12,
  /** `CAP_IPC_LOCK` (14): lock memory beyond `RLIMIT_MEMLOCK`. */
  IPC_LOCK: 14,
  /** `CAP_SYS_RAWIO` (17). */
  SYS_RAWIO: 17,
  /** `CAP_SYS_ADMIN` (21). */
  SYS_ADMIN: 21,
  /** `CAP_SYS_RESOURCE` (24): e.g. iommufd's RLIMIT_MODE option. */
  SYS_RESOURCE: 24,
} as const;

/** Highest capability number (`CAP_LAST_CAP`, 40 = `CAP_CHECKPOINT_RESTORE`). */
export const CAP_LAST_CAP = 40;

/** `RLIM_INFINITY` as a byte count. */
export const RLIM_INFINITY = Number.POSITIVE_INFINITY;

/** `MLOCK_LIMIT`: the default `RLIMIT_MEMLOCK`, 8 MiB. */
export const MLOCK_LIMIT = 8 * 1024 * 1024;

/**
 * `RLIMIT_MEMLOCK` of a task in pages (`task_rlimit(task, RLIMIT_MEMLOCK) >> PAGE_SHIFT`).
 * @param task - the task
 */
export function memlockLimitPages(task: Process): number {
  return task.rlimitMemlock === RLIM_INFINITY ? RLIM_INFINITY : Math.floor(task.rlimitMemlock / 4096);
}

/**
 * Charge or uncharge `mm->locked_vm` (`__account_locked_vm`).
 * @param mm - the address space
 * @param pages - pages, ≥ 0
 * @param inc - charge (true) or uncharge (false)
 * @param task - whose `RLIMIT_MEMLOCK` applies
 * @param bypassRlim - skip the limit (the caller has `CAP_IPC_LOCK`)
 * @throws ErrnoError `ENOMEM` when charging would exceed the limit (nothing changes);
 *   `EINVAL` when uncharging more than is charged (Linux: `WARN_ON_ONCE` and clamps)
 */
export function __accountLockedVm(
  mm: Mm,
  pages: number,
  inc: boolean,
  task: Process,
  bypassRlim: boolean,
): void {
  if (inc) {
    const total = mm.lockedVm + pages;
    if (!bypassRlim && total > memlockLimitPages(task)) {
      throw new ErrnoError('ENOMEM', `locked_vm ${total} pages over RLIMIT_MEMLOCK`);
    }
    mm.lockedVm = total;
  } else {
    if (pages > mm.lockedVm) {
      mm.lockedVm = 0;
      throw new ErrnoError('EINVAL', 'locked_vm underflow');
    }
    mm.lockedVm -= pages;
  }
}

/**
 * Charge or uncharge `mm->locked_vm` for the mm's owner (`account_locked_vm`: the limit of `current`
 * applies unless it has `CAP_IPC_LOCK`). Zero pages do nothing.
 * @param mm - the address space
 * @param pages - pages, ≥ 0
 * @param inc - charge or uncharge
 * @param task - the calling task (`current`); default the mm's owner
 * @throws ErrnoError `ENOMEM` over the limit; `ESRCH` when the mm has no owner and no task is given
 */
export function accountLockedVm(mm: Mm, pages: number, inc: boolean, task: Process | null = mm.owner): void {
  if (pages === 0) return;
  if (task === null) throw new ErrnoError('ESRCH', 'no task to charge');
  __accountLockedVm(mm, pages, inc, task, task.capable(CAP.IPC_LOCK));
}

/**
 * Charge `user->locked_vm` of the task's user (`incr_user_locked_vm`): fails when the new total
 * exceeds the task's `RLIMIT_MEMLOCK` in pages (no capability bypass here; callers decide).
 * @param task - the task whose user and limit apply
 * @param pages - pages, ≥ 0
 * @throws ErrnoError `ENOMEM` over the limit (nothing changes)
 */
export function incUserLockedVm(task: Process, pages: number): void {
  const user = task.machine.user(task.uid);
  const total = user.lockedVm + pages;
  if (total > memlockLimitPages(task))
    throw new ErrnoError('ENOMEM', `user locked_vm ${total} pages over the limit`);
  user.lockedVm = total;
}

/**
 * Uncharge `user->locked_vm` (`decr_user_locked_vm`).
 * @param task - the task whose user was charged
 * @param pages - pages
 * @throws ErrnoError `EINVAL` on underflow
 */
export function decUserLockedVm(task: Process, pages: number): void {
  const user = task.machine.user(task.uid);
  if (pages > user.lockedVm) throw new ErrnoError('EINVAL', 'user locked_vm underflow');
  user.lockedVm -= pages;
}

/**
 * Add to `mm->pinned_vm` (`atomic64_add`), as iommufd and VFIO do for every pinned page.
 * @param mm - the address space
 * @param pages - pages (negative to subtract)
 * @throws ErrnoError `EINVAL` when the counter would go negative
 */
export function addPinnedVm(mm: Mm, pages: number): void {
  if (mm.pinnedVm + pages < 0) throw new ErrnoError('EINVAL', 'pinned_vm underflow');
  mm.pinnedVm += pages;
}
