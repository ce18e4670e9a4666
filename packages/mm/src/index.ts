// The public surface of @iommu-ts/mm: re-exports only.

export {
  __accountLockedVm,
  accountLockedVm,
  addPinnedVm,
  CAP,
  CAP_LAST_CAP,
  decUserLockedVm,
  incUserLockedVm,
  MLOCK_LIMIT,
  memlockLimitPages,
  RLIM_INFINITY,
} from './accounting.js';
export { AsidAllocator, type AsidAllocatorOptions, type AsidContextInfo } from './asid.js';
export {
  ARM64_MAIR_EL1,
  ARM64_MT_NORMAL,
  type Arch,
  Arm64Pte,
  type Arm64TranslationFacts,
  type CpuLeafVisitor,
  CpuPageTable,
  decodePte,
  encodePte,
  type FreedTables,
  PMD_DEPTH,
  PTE_DEPTH,
  type PteState,
  taskSize,
  X86Pte,
} from './cpu-pgtable.js';
export {
  handleMmFault,
  hwAccess,
  ptepTestAndClearYoung,
  type UserAddr,
  userVa,
  vmaAccessPermitted,
} from './fault.js';
export { FdTable, NR_OPEN_DEFAULT, type ProcessFile } from './fd-table.js';
export { dupMm } from './fork.js';
export { pinUserPagesRemote, unpinUserPages } from './gup.js';
export { type CreateProcessOptions, Machine, type MachineOptions, type UserStruct } from './machine.js';
export { migratePage, reclaimPage } from './migrate.js';
export { Mm, type MmIommuData, mmdrop, mmget, mmgetNotZero, mmgrab, mmput, type ZapResult } from './mm.js';
export * from './mman.js';
export { doMadvise, doMmap, doMprotect, doMunmap, MMAP_MIN_ADDR } from './mmap.js';
export {
  MMU_NOTIFIER_RANGE_BLOCKABLE,
  type MmuNotifier,
  type MmuNotifierOps,
  type MmuNotifierRange,
  MmuNotifyEvent,
  mmuNotifierArchInvalidateSecondaryTlbs,
  mmuNotifierInvalidateRangeEnd,
  mmuNotifierInvalidateRangeStart,
  mmuNotifierRegister,
  mmuNotifierRelease,
  mmuNotifierUnregister,
} from './mmu-notifier.js';
export {
  HPAGE_PMD_ORDER,
  HPAGE_PUD_ORDER,
  MAX_PAGE_ORDER,
  PAGE_MASK,
  PAGE_SHIFT,
  PAGE_SIZE,
} from './page.js';
export {
  type AllocPagesOptions,
  BusError,
  type PageInfo,
  PhysicalMemory,
  type PhysicalMemoryOptions,
  type PhysicalMemoryStats,
} from './physical-memory.js';
export { Process, type ProcessInit, type ProcessOptions } from './process.js';
export {
  type FlushTlbRangeOptions,
  MAX_DVM_OPS,
  MAX_TLBI_RANGE_PAGES,
  TlbBroadcast,
  type TlbBroadcastStats,
  type TlbiListener,
  type TlbiOp,
} from './tlb-broadcast.js';
export { copyFromUser, copyToUser, UserFaultError, userRead, userWrite } from './uaccess.js';
export {
  type AnonVma,
  newAnonVma,
  protToVmFlags,
  SharedAnonObject,
  Vma,
  type VmaInfo,
  vmasMergeable,
  vmFlagsToProt,
} from './vma.js';
