/**
 * Accesses to user memory through the page tables: user-mode loads and stores of a process, and the
 * kernel's `copy_to_user`/`copy_from_user` (include/linux/uaccess.h, arch/arm64/lib/copy_*_user.S:
 * unprivileged LDTR/STTR, so user permissions apply).
 */

import { ErrnoError } from '@iommu-ts/base';
import { handleMmFault, hwAccess, type UserAddr, userVa } from './fault.js';
import type { Mm } from './mm.js';
import { FAULT_FLAG_USER, FAULT_FLAG_WRITE, VM_FAULT_ERROR, VM_FAULT_SIGBUS } from './mman.js';

/**
 * A user access that the kernel would answer with a signal: `SIGSEGV` (no VMA, access not
 * permitted) or `SIGBUS` (`VM_FAULT_SIGBUS`, `VM_FAULT_OOM` as the OOM killer's stand-in). An
 * `ErrnoError` with code `EFAULT`.
 */
export class UserFaultError extends ErrnoError {
  /** The signal the task would receive. */
  readonly signal: 'SIGSEGV' | 'SIGBUS';
  /** The faulting address. */
  readonly va: number;
  /** The `VM_FAULT_*` result of the fault. */
  readonly vmFault: number;

  /**
   * @param va - faulting address
   * @param vmFault - `VM_FAULT_*` bits
   * @param write - whether the access was a write
   */
  constructor(va: number, vmFault: number, write: boolean) {
    const signal = vmFault & VM_FAULT_SIGBUS ? 'SIGBUS' : vmFault & 0x1 ? 'SIGBUS' : 'SIGSEGV';
    super(
      'EFAULT',
      `${signal}: ${write ? 'write' : 'read'} at 0x${va.toString(16)} (VM_FAULT 0x${vmFault.toString(16)})`,
    );
    this.name = 'UserFaultError';
    this.signal = signal;
    this.va = va;
    this.vmFault = vmFault;
  }
}

/**
 * Translate `va` for an access, faulting the page in if needed.
 * @returns the PA of the byte, or the `VM_FAULT_*` result negated (-1 for a bad address)
 */
function accessPa(mm: Mm, va: number, write: boolean, user: boolean): number {
  if (va < 0 || va >= mm.taskSize) return -VM_FAULT_ERROR;
  let pa = hwAccess(mm, va, write);
  if (pa >= 0) return pa;
  const r = handleMmFault(mm, va, (write ? FAULT_FLAG_WRITE : 0) | (user ? FAULT_FLAG_USER : 0));
  if (r & VM_FAULT_ERROR) return -r;
  pa = hwAccess(mm, va, write);
  return pa >= 0 ? pa : -0x40;
}

/**
 * Run a byte-range access page by page; returns the bytes done before a failing page, and that
 * page's negated fault result (0 when all were done).
 */
function forEachChunk(
  mm: Mm,
  va: number,
  len: number,
  write: boolean,
  user: boolean,
  fn: (pa: number, off: number, n: number) => void,
): [number, number] {
  let done = 0;
  while (done < len) {
    const a = va + done;
    const n = Math.min(len - done, 4096 - (a % 4096));
    const pa = accessPa(mm, a, write, user);
    if (pa < 0) return [done, -pa];
    fn(pa, done, n);
    done += n;
  }
  return [done, 0];
}

/**
 * A user-mode read of `len` bytes (`LDR` at EL0 / CPL 3): faults pages in, sets access flags.
 * @param mm - the address space
 * @param va - first byte (number or bigint)
 * @param len - bytes
 * @returns a copy of the bytes
 * @throws UserFaultError (`EFAULT`) with `SIGSEGV`/`SIGBUS` when a page cannot be read
 */
export function userRead(mm: Mm, va: UserAddr, len: number): Uint8Array {
  const a = userVa(va);
  const out = new Uint8Array(len);
  const mem = mm.machine.memory;
  const [done, fault] = forEachChunk(mm, a, len, false, true, (pa, off, n) => {
    out.set(mem.readBytes(pa, n), off);
  });
  if (fault !== 0) throw new UserFaultError(a + done, fault, false);
  return out;
}

/**
 * A user-mode write (`STR` at EL0 / CPL 3): faults pages in (breaking COW), sets access and dirty
 * state. Bytes before a failing page are written.
 * @param mm - the address space
 * @param va - first byte (number or bigint)
 * @param bytes - the data
 * @throws UserFaultError (`EFAULT`) with `SIGSEGV`/`SIGBUS` when a page cannot be written
 */
export function userWrite(mm: Mm, va: UserAddr, bytes: Uint8Array): void {
  const a = userVa(va);
  const mem = mm.machine.memory;
  const [done, fault] = forEachChunk(mm, a, bytes.length, true, true, (pa, off, n) => {
    mem.writeBytes(pa, bytes.subarray(off, off + n));
  });
  if (fault !== 0) throw new UserFaultError(a + done, fault, true);
}

/**
 * `copy_to_user`: copy `src` to user memory at `va` from kernel context (no `FAULT_FLAG_USER`).
 * @param mm - the address space
 * @param va - destination (number or bigint)
 * @param src - the data
 * @returns the number of bytes NOT copied (0 on success), as Linux returns
 */
export function copyToUser(mm: Mm, va: UserAddr, src: Uint8Array): number {
  const a = userVa(va);
  const mem = mm.machine.memory;
  const [done] = forEachChunk(mm, a, src.length, true, false, (pa, off, n) => {
    mem.writeBytes(pa, src.subarray(off, off + n));
  });
  return src.length - done;
}

/**
 * `copy_from_user`: copy user memory at `va` into `dst` from kernel context. Bytes of `dst` past the
 * fault are zeroed, as Linux does.
 * @param mm - the address space
 * @param dst - destination buffer; its length is the byte count
 * @param va - source (number or bigint)
 * @returns the number of bytes NOT copied (0 on success)
 */
export function copyFromUser(mm: Mm, dst: Uint8Array, va: UserAddr): number {
  const a = userVa(va);
  const mem = mm.machine.memory;
  const [done] = forEachChunk(mm, a, dst.length, false, false, (pa, off, n) => {
    dst.set(mem.readBytes(pa, n), off);
  });
  dst.fill(0, done);
  return dst.length - done;
}
