/**
 * User-visible memory-management constants with Linux's values: `PROT_*`, `MAP_*`, `MADV_*`
 * (include/uapi/asm-generic/mman-common.h, mman.h, as used by x86-64 and arm64), the `VM_*` flags
 * of a VMA (include/linux/mm.h), the fault flags and results (include/linux/mm_types.h) and the
 * public `FOLL_*` flags of GUP (include/linux/mm_types.h).
 */

/** Page may not be accessed (`PROT_NONE`, 0). */
export const PROT_NONE = 0x0;
/** Page may be read (`PROT_READ`, 0x1). */
export const PROT_READ = 0x1;
/** Page may be written (`PROT_WRITE`, 0x2). */
export const PROT_WRITE = 0x2;
/** Page may be executed (`PROT_EXEC`, 0x4). */
export const PROT_EXEC = 0x4;

/** Share changes (`MAP_SHARED`, 0x01). */
export const MAP_SHARED = 0x01;
/** Changes are private, copy-on-write (`MAP_PRIVATE`, 0x02). */
export const MAP_PRIVATE = 0x02;
/** `MAP_SHARED` with flag validation (`MAP_SHARED_VALIDATE`, 0x03). */
export const MAP_SHARED_VALIDATE = 0x03;
/** Mask of the mapping type (`MAP_TYPE`, 0x0f). */
export const MAP_TYPE = 0x0f;
/** Interpret `addr` exactly, replacing what is there (`MAP_FIXED`, 0x10). */
export const MAP_FIXED = 0x10;
/** No file backing; zero-filled (`MAP_ANONYMOUS`, 0x20). */
export const MAP_ANONYMOUS = 0x20;
/** Don't reserve swap (`MAP_NORESERVE`, 0x4000); accepted and ignored. */
export const MAP_NORESERVE = 0x4000;
/** Fault the whole mapping in at mmap time (`MAP_POPULATE`, 0x8000). */
export const MAP_POPULATE = 0x8000;
/** Back the mapping with huge pages (`MAP_HUGETLB`, 0x40000). */
export const MAP_HUGETLB = 0x40000;
/** Like `MAP_FIXED` but fail with `EEXIST` instead of replacing (`MAP_FIXED_NOREPLACE`, 0x100000). */
export const MAP_FIXED_NOREPLACE = 0x100000;
/** Shift of the log2 huge-page size encoded in mmap flags (`MAP_HUGE_SHIFT`, 26). */
export const MAP_HUGE_SHIFT = 26;
/** Mask of that field after shifting (`MAP_HUGE_MASK`, 0x3f). */
export const MAP_HUGE_MASK = 0x3f;
/** 2 MiB huge pages (`MAP_HUGE_2MB`, 21 \<\< 26). */
export const MAP_HUGE_2MB = 21 << MAP_HUGE_SHIFT;
/** 1 GiB huge pages (`MAP_HUGE_1GB`, 30 \<\< 26); refused here with `EINVAL` (no 1 GiB pool). */
export const MAP_HUGE_1GB = 30 << MAP_HUGE_SHIFT;

/** No special treatment (`MADV_NORMAL`, 0). */
export const MADV_NORMAL = 0;
/** Expect random page references (`MADV_RANDOM`, 1); accepted, no effect. */
export const MADV_RANDOM = 1;
/** Expect sequential references (`MADV_SEQUENTIAL`, 2); accepted, no effect. */
export const MADV_SEQUENTIAL = 2;
/** Will need these pages (`MADV_WILLNEED`, 3); accepted, no effect. */
export const MADV_WILLNEED = 3;
/** Drop the pages: the next access sees zeroes (private anonymous) (`MADV_DONTNEED`, 4). */
export const MADV_DONTNEED = 4;

/** VMA may be read (`VM_READ`). */
export const VM_READ = 0x1;
/** VMA may be written (`VM_WRITE`). */
export const VM_WRITE = 0x2;
/** VMA may be executed (`VM_EXEC`). */
export const VM_EXEC = 0x4;
/** VMA is shared (`VM_SHARED`). */
export const VM_SHARED = 0x8;
/** mprotect may add read (`VM_MAYREAD`). */
export const VM_MAYREAD = 0x10;
/** mprotect may add write (`VM_MAYWRITE`). */
export const VM_MAYWRITE = 0x20;
/** mprotect may add exec (`VM_MAYEXEC`). */
export const VM_MAYEXEC = 0x40;
/** Mapping was created MAP_SHARED (`VM_MAYSHARE`). */
export const VM_MAYSHARE = 0x80;
/** Pages are locked (`VM_LOCKED`); not produced by this model. */
export const VM_LOCKED = 0x2000;
/** Don't copy on fork (`VM_DONTCOPY`); not produced by this model. */
export const VM_DONTCOPY = 0x20000;
/** Committed memory is accounted (`VM_ACCOUNT`): private writable mappings. */
export const VM_ACCOUNT = 0x100000;
/** `MAP_NORESERVE` was given (`VM_NORESERVE`). */
export const VM_NORESERVE = 0x200000;
/** Huge TLB page VMA (`VM_HUGETLB`). */
export const VM_HUGETLB = 0x400000;

/**
 * Fault flags (`enum fault_flag`, include/linux/mm_types.h), passed to `handleMmFault`.
 */
export const FAULT_FLAG_WRITE = 1 << 0;
/** The fault is a write fault on a present read-only PTE of a shared mapping (`FAULT_FLAG_MKWRITE`). */
export const FAULT_FLAG_MKWRITE = 1 << 1;
/** The fault may be retried (`FAULT_FLAG_ALLOW_RETRY`); accepted, never retried here. */
export const FAULT_FLAG_ALLOW_RETRY = 1 << 2;
/** Don't drop the mmap lock while retrying (`FAULT_FLAG_RETRY_NOWAIT`); accepted. */
export const FAULT_FLAG_RETRY_NOWAIT = 1 << 3;
/** The fault may be killed (`FAULT_FLAG_KILLABLE`); accepted. */
export const FAULT_FLAG_KILLABLE = 1 << 4;
/** Second try (`FAULT_FLAG_TRIED`); accepted. */
export const FAULT_FLAG_TRIED = 1 << 5;
/** The access came from user space (`FAULT_FLAG_USER`). */
export const FAULT_FLAG_USER = 1 << 6;
/** The fault is for another mm than the current one, e.g. GUP or SVA (`FAULT_FLAG_REMOTE`). */
export const FAULT_FLAG_REMOTE = 1 << 7;
/** Instruction fetch (`FAULT_FLAG_INSTRUCTION`): the VMA must be executable. */
export const FAULT_FLAG_INSTRUCTION = 1 << 8;
/** The fault may be interrupted (`FAULT_FLAG_INTERRUPTIBLE`); accepted. */
export const FAULT_FLAG_INTERRUPTIBLE = 1 << 9;
/** Break COW without making the PTE writable (`FAULT_FLAG_UNSHARE`, GUP pins of shared anon pages). */
export const FAULT_FLAG_UNSHARE = 1 << 10;

/**
 * Fault results (`enum vm_fault_reason`, include/linux/mm_types.h). `handleMmFault` returns a
 * bitwise OR of these; 0 means the fault was handled and the access can be retried.
 */
export const VM_FAULT_OOM = 0x000001;
/** Bus error: no backing page can be provided (`VM_FAULT_SIGBUS`). */
export const VM_FAULT_SIGBUS = 0x000002;
/** The fault needed I/O (`VM_FAULT_MAJOR`); never set here (no swap). */
export const VM_FAULT_MAJOR = 0x000004;
/** Poisoned page (`VM_FAULT_HWPOISON`); never set here. */
export const VM_FAULT_HWPOISON = 0x000010;
/** Poisoned huge page (`VM_FAULT_HWPOISON_LARGE`); never set here. */
export const VM_FAULT_HWPOISON_LARGE = 0x000020;
/** Segmentation fault: no VMA, or access not allowed by it (`VM_FAULT_SIGSEGV`). */
export const VM_FAULT_SIGSEGV = 0x000040;
/** No page was installed (`VM_FAULT_NOPAGE`). */
export const VM_FAULT_NOPAGE = 0x000100;
/** The page is locked on return (`VM_FAULT_LOCKED`). */
export const VM_FAULT_LOCKED = 0x000200;
/** The fault should be retried (`VM_FAULT_RETRY`). */
export const VM_FAULT_RETRY = 0x000400;
/** Huge page fault fell back to small pages (`VM_FAULT_FALLBACK`). */
export const VM_FAULT_FALLBACK = 0x000800;
/** A COW copy was made (`VM_FAULT_DONE_COW`). */
export const VM_FAULT_DONE_COW = 0x001000;
/** Fault needs a sync (`VM_FAULT_NEEDDSYNC`). */
export const VM_FAULT_NEEDDSYNC = 0x002000;
/** Fault was completed without the mmap lock (`VM_FAULT_COMPLETED`). */
export const VM_FAULT_COMPLETED = 0x004000;
/** The results that mean failure (`VM_FAULT_ERROR`). */
export const VM_FAULT_ERROR =
  VM_FAULT_OOM |
  VM_FAULT_SIGBUS |
  VM_FAULT_SIGSEGV |
  VM_FAULT_HWPOISON |
  VM_FAULT_HWPOISON_LARGE |
  VM_FAULT_FALLBACK;

/** GUP: the pages will be written (`FOLL_WRITE`, 1 \<\< 0). */
export const FOLL_WRITE = 1 << 0;
/** GUP: take a page reference (`FOLL_GET`, 1 \<\< 1); pinUserPages refuses it (`EINVAL`) as Linux does. */
export const FOLL_GET = 1 << 1;
/** GUP: allow access to PROT_NONE/read-only private mappings (`FOLL_FORCE`, 1 \<\< 3). */
export const FOLL_FORCE = 1 << 3;
/** GUP: never fault; fail on a missing page (`FOLL_NOFAULT`, 1 \<\< 5). */
export const FOLL_NOFAULT = 1 << 5;
/** GUP: the pin is long term, e.g. RDMA or IOMMU mappings (`FOLL_LONGTERM`, 1 \<\< 8). */
export const FOLL_LONGTERM = 1 << 8;

/** Linux's `ULONG_MAX` end of a whole-address-space invalidation, as a number (2^64, the double nearest to it). */
export const FLUSH_ALL_END = 2 ** 64;
