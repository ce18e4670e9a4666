/**
 * An open iommufd file (`/dev/iommu`, drivers/iommu/iommufd/main.c `iommufd_fops`): the context,
 * its descriptor in the opening process, and `ioctl`.
 */

import { ErrnoError, shouldFail } from '@iommu-ts/base';
import type { IommuSubsystem } from '@iommu-ts/iommu-core';
import type { Process, ProcessFile } from '@iommu-ts/mm';
import {
  dispatchIoctl,
  type IoctlArg,
  type IommufdIoctlFallback,
  type IommufdIoctlTable,
  type UserMemory,
  uaccessUserMemory,
} from './ioctl-dispatch.js';
import { iommufdIoctlTable } from './ioctl-table.js';
import { IommufdCtx } from './main.js';
import type { IoptPagesAccountMode } from './pages.js';

/** What {@link Iommufd.open} takes. */
export interface IommufdOpenOptions {
  /** The IOMMU subsystem devices and domains come from. */
  readonly iommu: IommuSubsystem;
  /** The opening process: the fd goes into its table, user pointers point into its memory. */
  readonly process: Process;
  /**
   * Open a selftest kernel's iommufd: IOMMU_TEST_CMD and the mock driver are available. Default
   * false (IOMMU_TEST_CMD is then ENOTTY, as on a production kernel).
   */
  readonly selftest?: boolean;
  /**
   * Accounting mode the context starts in: `IOPT_PAGES_ACCOUNT_USER` (default, `/dev/iommu`) or
   * `IOPT_PAGES_ACCOUNT_MM` (as opened through the iommufd-provided `/dev/vfio/vfio`).
   */
  readonly accountMode?: IoptPagesAccountMode;
  /**
   * Handler of requests outside iommufd's table (numbers below 0x80): the VFIO container ioctls
   * (`iommufd_vfio_ioctl`), provided by `@iommu-ts/vfio-compat`. Without it they are ENOTTY.
   */
  readonly vfioIoctl?: IommufdIoctlFallback<IommufdCtx>;
}

const tables = new Map<boolean, IommufdIoctlTable<IommufdCtx>>();

/** The context behind each open iommufd file (what `file->f_op == &iommufd_fops` identifies). */
const ctxOfFile = new WeakMap<ProcessFile, IommufdCtx>();

/**
 * `iommufd_ctx_from_file(file)`: the context of an open iommufd file, with a reference taken on it
 * (drop it with `ctx.put()`). How VFIO accepts an iommufd as a group's container.
 * @param file - an open file, e.g. `process.getFile(fd)`
 * @returns the context, one more reference held
 * @throws ErrnoError `EBADFD` if the file is not an iommufd
 */
export function iommufdCtxFromFile(file: ProcessFile): IommufdCtx {
  const ctx = ctxOfFile.get(file);
  if (ctx === undefined) throw new ErrnoError('EBADFD', 'not an iommufd file');
  ctx.get();
  return ctx;
}

function tableFor(selftest: boolean, fallback: IommufdIoctlFallback<IommufdCtx> | undefined) {
  if (fallback !== undefined) return iommufdIoctlTable(selftest, fallback);
  let t = tables.get(selftest);
  if (t === undefined) {
    t = iommufdIoctlTable(selftest);
    tables.set(selftest, t);
  }
  return t;
}

/**
 * An open iommufd: `Iommufd.open(...)` is `open("/dev/iommu", O_RDWR)`.
 *
 * @example
 * ```ts
 * const file = Iommufd.open({ iommu, process: proc });
 * const cmd = { size: 12, flags: 0, out_ioas_id: 0 };
 * file.ioctl(IOMMU_IOAS_ALLOC, cmd); // cmd.out_ioas_id is now 1
 * file.close();
 * ```
 */
export class Iommufd {
  /** The context (object table, accounting mode, VFIO IOAS). */
  readonly ctx: IommufdCtx;
  /** The descriptor in the opening process's fd table. */
  readonly fd: number;
  /** The opening process. */
  readonly process: Process;
  private readonly table: IommufdIoctlTable<IommufdCtx>;
  private readonly userMemory: UserMemory;
  private readonly file: ProcessFile;
  private closed = false;

  private constructor(options: IommufdOpenOptions) {
    this.process = options.process;
    this.ctx = new IommufdCtx({
      iommu: options.iommu,
      process: options.process,
      selftest: options.selftest ?? false,
      ...(options.accountMode === undefined ? {} : { accountMode: options.accountMode }),
    });
    this.table = tableFor(options.selftest ?? false, options.vfioIoctl);
    this.userMemory = uaccessUserMemory(options.process);
    // The process's fd table calls this on the last close of the descriptor (fput → release).
    this.file = {
      close: () => {
        this.closed = true;
        this.ctx.put();
      },
    };
    this.fd = options.process.installFd(this.file);
    ctxOfFile.set(this.file, this.ctx);
  }

  /**
   * `open("/dev/iommu")`: a new context with an empty object table, installed at the lowest free
   * descriptor of `options.process`.
   * @param options - subsystem, process, selftest, accounting mode, VFIO ioctl handler
   * @returns the open file
   * @throws ErrnoError `EMFILE` (the process's fd table is full), `ENOMEM` (fail_nth point
   *   `iommufd.ctx_alloc`)
   */
  static open(options: IommufdOpenOptions): Iommufd {
    if (shouldFail('iommufd.ctx_alloc')) throw new ErrnoError('ENOMEM', 'injected: iommufd_ctx allocation');
    return new Iommufd(options);
  }

  /** Whether the descriptor has been closed (the context may live on while an access holds it). */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * `ioctl(fd, request, arg)`.
   * @param request - the request (`IOMMU_*` constant; VFIO requests go to `vfioIoctl`)
   * @param arg - the struct as a plain object with the C field names (out fields are written back
   *   into it; u64 as bigint), or a bigint user address of the struct's bytes in the process
   * @returns 0, or the VFIO handler's return value
   * @throws ErrnoError `EBADF` after close; otherwise the errno Linux returns (ENOTTY, EFAULT,
   *   EINVAL, E2BIG, and the per-command ones)
   */
  ioctl(request: number, arg?: IoctlArg): number {
    if (this.closed) throw new ErrnoError('EBADF', `fd ${this.fd} is closed`);
    return dispatchIoctl(this.table, request, arg, this.userMemory, this.ctx);
  }

  /**
   * `close(fd)`: the same as `process.close(file.fd)`. The context is released (every object
   * destroyed, every pin and accounted byte returned) once no access holds it.
   * @throws ErrnoError `EBADF` if already closed
   */
  close(): void {
    if (this.closed) throw new ErrnoError('EBADF', `fd ${this.fd} is closed`);
    this.process.close(this.fd);
  }
}
