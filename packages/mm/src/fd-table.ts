/**
 * A process's file descriptors (fs/file.c: `get_unused_fd_flags` + `fd_install`, `fdget`,
 * `close_fd`, `close_files` at exit, `dup_fd` at fork).
 */

import { ErrnoError } from '@iommu-ts/base';

/** What a uAPI package installs in a file table: an open file whose last close releases it. */
export interface ProcessFile {
  /** Called once, when the last descriptor referring to the file (in any process) is closed (`->release`). */
  close(): void;
}

/** Descriptors per process (`RLIMIT_NOFILE` soft default, 1024). */
export const NR_OPEN_DEFAULT = 1024;

const fileRefs: WeakMap<ProcessFile, number> = new WeakMap();

function fget(file: ProcessFile): void {
  fileRefs.set(file, (fileRefs.get(file) ?? 0) + 1);
}

function fput(file: ProcessFile): void {
  const n = (fileRefs.get(file) ?? 1) - 1;
  if (n <= 0) {
    fileRefs.delete(file);
    file.close();
  } else {
    fileRefs.set(file, n);
  }
}

/**
 * A file table: small non-negative integers → open files; the lowest free number is used. A file
 * installed in several tables (fork) is released when its last descriptor closes.
 */
export class FdTable {
  private readonly files: (ProcessFile | undefined)[] = [];
  private count = 0;

  /** Number of open descriptors. */
  get size(): number {
    return this.count;
  }

  /**
   * Install `file` at the lowest free descriptor (`get_unused_fd_flags` + `fd_install`).
   * @param file - the open file
   * @returns the descriptor
   * @throws ErrnoError `EMFILE` when {@link NR_OPEN_DEFAULT} descriptors are open
   */
  install(file: ProcessFile): number {
    let fd = this.files.indexOf(undefined);
    if (fd < 0) fd = this.files.length;
    if (fd >= NR_OPEN_DEFAULT) throw new ErrnoError('EMFILE', 'too many open files');
    this.files[fd] = file;
    this.count++;
    fget(file);
    return fd;
  }

  /**
   * The file at `fd` (`fdget`).
   * @param fd - descriptor
   * @throws ErrnoError `EBADF` when `fd` is not open
   */
  get(fd: number): ProcessFile {
    const f = Number.isInteger(fd) && fd >= 0 ? this.files[fd] : undefined;
    if (f === undefined) throw new ErrnoError('EBADF', `fd ${fd} is not open`);
    return f;
  }

  /**
   * Close `fd` (`close_fd`); the file is released if this was its last descriptor.
   * @param fd - descriptor
   * @throws ErrnoError `EBADF` when `fd` is not open
   */
  close(fd: number): void {
    const f = this.get(fd);
    this.files[fd] = undefined;
    this.count--;
    fput(f);
  }

  /** Close every descriptor, lowest first (`close_files`). */
  closeAll(): void {
    for (let fd = 0; fd < this.files.length; fd++) if (this.files[fd] !== undefined) this.close(fd);
  }

  /** A copy sharing the open files (`dup_fd`). */
  dup(): FdTable {
    const t = new FdTable();
    for (const f of this.files) {
      t.files.push(f);
      if (f !== undefined) {
        t.count++;
        fget(f);
      }
    }
    return t;
  }

  /** The open descriptors, ascending. */
  fds(): number[] {
    const out: number[] = [];
    this.files.forEach((f, fd) => {
      if (f !== undefined) out.push(fd);
    });
    return out;
  }
}
