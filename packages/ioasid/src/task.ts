/**
 * The task context the allocator consults, standing for the kernel's `current`: the address space
 * that owns MM-type sets and that the ioasids cgroup controller charges.
 */

/**
 * A task as the IOASID code sees it. `mm` is any object identifying the process address space (a
 * `Process` of `@iommu-ts/mm`, or a plain object standing for one); `null` for a kernel thread.
 */
export interface IoasidTask {
  /** Process ID, for messages. */
  readonly pid: number;
  /** The address space, the token of the process's MM-type IOASID set; `null` for kernel threads. */
  readonly mm: object | null;
}
