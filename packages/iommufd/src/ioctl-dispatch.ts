/**
 * The generic part of iommufd's ioctl entry (`iommufd_fops_ioctl` in drivers/iommu/iommufd/main.c):
 * a command table indexed by command number, and the dispatch that every iommufd ioctl goes
 * through before its handler runs, with the kernel's order of checks and errnos:
 *
 * 1. `nr` (the low 8 bits of the request) outside the table: the fallback (the VFIO compatibility
 *    ioctls) or ENOTTY. Only `nr` is looked at.
 * 2. Read the `__u32` size at the argument: EFAULT if unreadable.
 * 3. The table slot is empty or holds a different full request value: ENOTTY.
 * 4. `size` below the command's minimum: EINVAL.
 * 5. Copy the struct in (`copy_struct_from_user`): bytes the kernel does not know must be zero
 *    (E2BIG), a shorter struct is zero-filled, a fault is EFAULT.
 * 6. Run the handler on the decoded object.
 * 7. Copy the struct out (`iommufd_ucmd_respond`), only `min(size, sizeof)` bytes: EFAULT on a fault.
 *
 * The argument is a user address (a `bigint`), or a plain object standing for the struct, which is
 * turned into the struct's exact bytes (`size` taken from its `size` field) and then goes through
 * the same steps; what the kernel writes back is copied into the object afterwards.
 */

import { _IOC_NR, ErrnoError, type UapiStruct } from '@iommu-ts/base';
import { PAGE_SIZE } from '@iommu-ts/mm';
import { IOMMUFD_CMD_BASE } from './uapi.js';
import { encodeUapi, encodeUapiFrom, syncUapi, type UapiInput } from './uapi-codec.js';
import type { IommufdUapiCommand } from './uapi-structs.js';

/**
 * User memory as the ioctl path sees it: the address space of the process calling the ioctl,
 * reached with `copy_from_user`/`copy_to_user`.
 *
 * @remarks
 * Both methods throw `ErrnoError` EFAULT if any byte of the range cannot be accessed. Faults are
 * expected to be page-granular: a range inside one page is either accessible or not.
 */
export interface UserMemory {
  /**
   * Copy bytes from user memory.
   * @param va - user address of the first byte
   * @param len - number of bytes
   * @returns a new array of `len` bytes
   * @throws ErrnoError EFAULT if the range is not readable
   */
  read(va: bigint, len: number): Uint8Array;
  /**
   * Copy bytes to user memory.
   * @param va - user address of the first byte
   * @param bytes - the data
   * @throws ErrnoError EFAULT if the range is not writable
   */
  write(va: bigint, bytes: Uint8Array): void;
}

/**
 * Something with the kernel's `copy_from_user`/`copy_to_user` convention (return the number of
 * bytes not copied), such as an `@iommu-ts/mm` `Process`.
 */
export interface UaccessTarget {
  /**
   * Copy `dst.length` bytes from user address `va` into `dst`.
   * @param dst - destination buffer
   * @param va - user address
   * @returns bytes not copied (0 on success)
   */
  copyFromUser(dst: Uint8Array, va: bigint): number;
  /**
   * Copy `src` to user address `va`.
   * @param va - user address
   * @param src - the data
   * @returns bytes not copied (0 on success)
   */
  copyToUser(va: bigint, src: Uint8Array): number;
}

/**
 * A {@link UserMemory} over a `copy_from_user`/`copy_to_user` pair, turning any short copy into
 * EFAULT, as the kernel's callers do.
 *
 * @param target - for example an `@iommu-ts/mm` `Process`
 * @returns the user memory
 */
export function uaccessUserMemory(target: UaccessTarget): UserMemory {
  return {
    read(va, len) {
      const out = new Uint8Array(len);
      if (len > 0 && target.copyFromUser(out, va) !== 0) {
        throw new ErrnoError('EFAULT', `cannot read ${len} bytes at 0x${va.toString(16)}`);
      }
      return out;
    },
    write(va, bytes) {
      if (bytes.length > 0 && target.copyToUser(va, bytes) !== 0) {
        throw new ErrnoError('EFAULT', `cannot write ${bytes.length} bytes at 0x${va.toString(16)}`);
      }
    },
  };
}

/**
 * The `arg` of an ioctl: a user address (`bigint`, or a safe-integer `number`), or a plain object
 * standing for the argument struct (fields left out read as 0). `undefined` and `null` are the
 * address 0.
 */
export type IoctlArg = bigint | number | object | null | undefined;

/**
 * The state of one ioctl call as a handler sees it (`struct iommufd_ucmd`).
 *
 * @typeParam T - the plain-object form of the argument struct
 */
export interface IommufdUcmd<T> {
  /**
   * The kernel's copy of the struct (`ucmd->cmd`): every field of the kernel's struct, fields
   * beyond the caller's `size` read as 0. Out fields are set on this object; union members may be
   * changed one at a time, the changed one is what gets copied out.
   */
  readonly cmd: T;
  /** The `size` the caller gave (`ucmd->user_size`), in bytes. */
  readonly userSize: number;
  /** The calling process's memory, for the user pointers inside the struct. */
  readonly userMemory: UserMemory;
  /** Whether {@link IommufdUcmd.respond} has copied the struct out already. */
  readonly responded: boolean;
  /**
   * Copy {@link IommufdUcmd.cmd} to the caller now (`iommufd_ucmd_respond`): the first
   * `min(userSize, sizeof)` bytes. A handler calls this itself when the copy-out must come before
   * something else: before throwing an error that still reports out fields (IOAS_IOVA_RANGES sets
   * `num_iovas` then fails with EMSGSIZE), or before committing an object it must discard if the
   * copy-out faults. After it, the dispatcher does not copy out again.
   * @throws ErrnoError EFAULT if the caller's struct is not writable
   * @throws TypeError or RangeError if the handler left a field with an invalid value
   */
  respond(): void;
}

/**
 * One entry of the command table (`struct iommufd_ioctl_op`): the command's uAPI facts and its
 * handler.
 *
 * @typeParam T - the plain-object form of the argument struct
 * @typeParam C - the context every handler receives (the iommufd file, say)
 */
export interface IommufdIoctlOp<T, C> {
  /** The C name of the request, for messages. */
  readonly name?: string;
  /** The full request value the slot answers to (`ioctl_num`); its `nr` selects the slot. */
  readonly request: number;
  /** Layout of the argument struct; its `size` is the kernel's `sizeof`. */
  readonly struct: UapiStruct<T>;
  /** Smallest `size` accepted, in bytes (`min_size`); below it the call is EINVAL. */
  readonly minSize: number;
  /**
   * Whether the struct is copied out after the handler returns normally; default true. Commands
   * that never write back (DESTROY, for example) set false so that a read-only struct works as in
   * Linux.
   */
  readonly respond?: boolean;
  /**
   * Run the command (`execute`).
   * @param cmd - the kernel's copy of the struct, also `ucmd.cmd`
   * @param ucmd - size, user memory, and the explicit copy-out
   * @param context - the context given to {@link dispatchIoctl}
   * @throws ErrnoError with the command's errno; nothing is copied out then, unless the handler
   *   called `ucmd.respond()` first
   */
  handler(cmd: T, ucmd: IommufdUcmd<T>, context: C): void;
}

/**
 * What handles the requests whose `nr` lies outside the table (`iommufd_vfio_ioctl`).
 *
 * @typeParam C - the dispatch context
 * @param request - the request value, unsigned
 * @param arg - the argument exactly as given to {@link dispatchIoctl}
 * @param userMemory - the caller's memory
 * @param context - the dispatch context
 * @returns the ioctl's return value
 * @throws ErrnoError ENOTTY for requests it does not know, or the request's own errno
 */
export type IommufdIoctlFallback<C> = (
  request: number,
  arg: IoctlArg,
  userMemory: UserMemory,
  context: C,
) => number;

/**
 * A command table built by {@link createIoctlTable}.
 *
 * @typeParam C - the context every handler receives
 */
export interface IommufdIoctlTable<C> {
  /** First command number of the table (`IOMMUFD_CMD_BASE`). */
  readonly baseNr: number;
  /** One past the last command number of the table; numbers from here on go to the fallback. */
  readonly endNr: number;
  /** The entries by command number; numbers in range without an entry are empty slots (ENOTTY). */
  readonly ops: ReadonlyMap<number, IommufdIoctlOp<object, C>>;
  /** The handler of numbers outside the table, if any; without one they are ENOTTY. */
  readonly fallback: IommufdIoctlFallback<C> | undefined;
}

/** What {@link createIoctlTable} takes. */
export interface IommufdIoctlTableDef<C> {
  /** The commands; the table extends from `baseNr` to the highest command number among them. */
  readonly ops: readonly IommufdIoctlOp<object, C>[];
  /** First command number; default `IOMMUFD_CMD_BASE` (0x80). */
  readonly baseNr?: number;
  /** Handler of numbers outside the table (the VFIO compatibility ioctls). */
  readonly fallback?: IommufdIoctlFallback<C>;
}

/**
 * Build a command table (`iommufd_ioctl_ops[]`).
 *
 * @remarks
 * As in the kernel's array, the table covers every number from `baseNr` to the highest command
 * given; numbers in between without a command are empty slots, answered ENOTTY rather than handed to
 * the fallback. With the selftest command (0xa0) the table therefore reaches 0xa0.
 *
 * @param def - the commands, optional first number and fallback
 * @returns the table
 * @throws RangeError if two commands share a number, a number is below `baseNr`, or a minimum size
 *   is below 4 or above the struct's size
 */
export function createIoctlTable<C>(def: IommufdIoctlTableDef<C>): IommufdIoctlTable<C> {
  const baseNr = def.baseNr ?? IOMMUFD_CMD_BASE;
  const ops = new Map<number, IommufdIoctlOp<object, C>>();
  let endNr = baseNr;
  for (const op of def.ops) {
    const nr = _IOC_NR(op.request);
    const label = op.name ?? `request 0x${(op.request >>> 0).toString(16)}`;
    if (nr < baseNr) throw new RangeError(`${label}: command number 0x${nr.toString(16)} is below the table`);
    if (ops.has(nr)) throw new RangeError(`${label}: command number 0x${nr.toString(16)} is taken`);
    if (!Number.isInteger(op.minSize) || op.minSize < 4 || op.minSize > op.struct.size) {
      throw new RangeError(`${label}: minimum size ${op.minSize} does not fit struct ${op.struct.name}`);
    }
    ops.set(nr, op);
    endNr = Math.max(endNr, nr + 1);
  }
  return Object.freeze({ baseNr, endNr, ops, fallback: def.fallback });
}

/**
 * A table entry from a command's uAPI facts (see `IommufdUapiCommand`) and its handler.
 *
 * @param command - request, struct and minimum size, such as `iommuIoasAllocCommand`
 * @param handler - the command's handler (see {@link IommufdIoctlOp.handler})
 * @param options - `respond: false` for commands that never copy out on success
 * @returns the entry
 */
export function defineIoctlOp<T, C>(
  command: IommufdUapiCommand<T>,
  handler: (cmd: T, ucmd: IommufdUcmd<T>, context: C) => void,
  options: { readonly respond?: boolean } = {},
): IommufdIoctlOp<T, C> {
  const op: IommufdIoctlOp<T, C> = {
    name: command.name,
    request: command.request,
    struct: command.struct,
    minSize: command.minSize,
    handler,
  };
  return Object.freeze(options.respond === undefined ? op : { ...op, respond: options.respond });
}

const PAGE = BigInt(PAGE_SIZE);

/**
 * The struct bytes of an object-form call: the object's encoding, followed (up to its `size`) by
 * zeros, at the virtual address 0.
 */
class ObjectStructMemory implements UserMemory {
  readonly bytes: Uint8Array;
  readonly length: number;
  written = false;

  constructor(struct: UapiStruct<object>, value: object, userSize: number) {
    this.bytes = encodeUapi(struct, value as UapiInput<object>);
    this.length = Math.max(userSize, this.bytes.length);
  }

  #range(va: bigint, len: number): number {
    if (va < 0n || va + BigInt(len) > BigInt(this.length)) {
      throw new ErrnoError('EFAULT', `struct access at ${va} + ${len} beyond ${this.length} bytes`);
    }
    return Number(va);
  }

  read(va: bigint, len: number): Uint8Array {
    const at = this.#range(va, len);
    const out = new Uint8Array(len);
    if (at < this.bytes.length) out.set(this.bytes.subarray(at, Math.min(at + len, this.bytes.length)));
    return out;
  }

  write(va: bigint, bytes: Uint8Array): void {
    const at = this.#range(va, bytes.length);
    this.bytes.set(bytes.subarray(0, Math.max(0, this.bytes.length - at)), at);
    this.written = true;
  }
}

function mismatch(req: number): ErrnoError {
  return new ErrnoError('ENOTTY', `no ioctl 0x${req.toString(16)}`);
}

function isObjectArg(arg: IoctlArg): arg is object {
  return typeof arg === 'object' && arg !== null;
}

function pointerOf(arg: bigint | number | null | undefined): bigint {
  if (arg === undefined || arg === null) return 0n;
  if (typeof arg === 'bigint') return BigInt.asUintN(64, arg);
  if (!Number.isSafeInteger(arg)) throw new RangeError(`ioctl argument ${arg} is not an address`);
  return BigInt.asUintN(64, BigInt(arg));
}

/** The `size` an object-form argument claims: its `size` field, 0 if absent. */
function objectSize(arg: object): number {
  const size: unknown = (arg as { size?: unknown }).size;
  if (size === undefined) return 0;
  const n = typeof size === 'bigint' ? Number(size) : size;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffff_ffff) {
    throw new TypeError(`ioctl argument object: size ${String(size)} is not a __u32`);
  }
  return n;
}

function readU32(mem: UserMemory, va: bigint): number {
  const b = mem.read(va, 4);
  return ((b[0] ?? 0) | ((b[1] ?? 0) << 8) | ((b[2] ?? 0) << 16) | ((b[3] ?? 0) << 24)) >>> 0;
}

/** `check_zeroed_user`: E2BIG at the first non-zero byte, EFAULT at the first unreadable page. */
function checkZeroedUser(mem: UserMemory, va: bigint, len: number): void {
  if (mem instanceof ObjectStructMemory) return; // zero past the struct by construction
  let pos = va;
  let left = len;
  while (left > 0) {
    const n = Math.min(left, Number(PAGE - (pos % PAGE)));
    const chunk = mem.read(pos, n);
    if (chunk.some((b) => b !== 0)) {
      throw new ErrnoError('E2BIG', 'the struct has non-zero bytes past what the kernel knows');
    }
    pos = BigInt.asUintN(64, pos + BigInt(n));
    left -= n;
  }
}

function opLabel(op: IommufdIoctlOp<object, unknown>): string {
  return op.name ?? `request 0x${(op.request >>> 0).toString(16)}`;
}

/** The `ucmd` of one call: the kernel's copy of the struct and the copy-out. */
class Ucmd<C> implements IommufdUcmd<object> {
  readonly cmd: object;
  readonly userSize: number;
  readonly userMemory: UserMemory;
  #responded = false;
  readonly #op: IommufdIoctlOp<object, C>;
  /** The bytes `cmd` was decoded from: its memory, for union members (see uapi-codec). */
  readonly #kernel: Uint8Array;
  readonly #structMemory: UserMemory;
  readonly #va: bigint;
  readonly #common: number;

  constructor(
    op: IommufdIoctlOp<object, C>,
    kernel: Uint8Array,
    userSize: number,
    userMemory: UserMemory,
    structMemory: UserMemory,
    va: bigint,
    common: number,
  ) {
    this.#op = op;
    this.#kernel = kernel;
    this.cmd = op.struct.decode(kernel);
    this.userSize = userSize;
    this.userMemory = userMemory;
    this.#structMemory = structMemory;
    this.#va = va;
    this.#common = common;
  }

  get responded(): boolean {
    return this.#responded;
  }

  respond(): void {
    const bytes = encodeUapiFrom(this.#op.struct, this.cmd as UapiInput<object>, this.#kernel);
    const common = this.#common;
    const out = common === bytes.length ? bytes : bytes.subarray(0, common);
    const mem = this.#structMemory;
    if (mem instanceof ObjectStructMemory) {
      // The struct of an object-form call starts at 0 and holds at least `common` bytes.
      mem.bytes.set(out);
      mem.written = true;
    } else {
      mem.write(this.#va, out);
    }
    this.#responded = true;
  }
}

/** Steps 4 to 7 of the dispatch, common to both argument forms. */
function runOp<C>(
  op: IommufdIoctlOp<object, C>,
  structMemory: UserMemory,
  va: bigint,
  userSize: number,
  userMemory: UserMemory,
  context: C,
): number {
  if (userSize < op.minSize) {
    throw new ErrnoError('EINVAL', `${opLabel(op)}: size ${userSize} is below the minimum ${op.minSize}`);
  }
  const ksize = op.struct.size;
  if (userSize > ksize)
    checkZeroedUser(structMemory, BigInt.asUintN(64, va + BigInt(ksize)), userSize - ksize);
  const common = Math.min(userSize, ksize);
  const kernel = new Uint8Array(ksize);
  if (structMemory instanceof ObjectStructMemory) {
    // At 0, and `common` is within both the encoded struct and the claimed size: no fault.
    const src = structMemory.bytes;
    kernel.set(common === src.length ? src : src.subarray(0, common));
  } else {
    kernel.set(structMemory.read(va, common));
  }
  const ucmd = new Ucmd(op, kernel, userSize, userMemory, structMemory, va, common);
  op.handler(ucmd.cmd, ucmd, context);
  if (!ucmd.responded && op.respond !== false) ucmd.respond();
  return 0;
}

/**
 * Dispatch one ioctl on an iommufd file through a command table (`iommufd_fops_ioctl`).
 *
 * @remarks
 * The order of checks is the kernel's, listed in the module documentation. With an object
 * argument, the object is encoded as the struct's little-endian bytes and the call proceeds as
 * for a pointer to those bytes followed by `size - sizeof` zero bytes (so a `size` below the minimum
 * is still EINVAL, and one above `sizeof` is accepted); when the kernel copied the struct out, even
 * before an error, every field of the object is updated (fields beyond `size` keep their value,
 * union members and missing fields are added). A failing call without copy-out leaves the object
 * untouched.
 *
 * @typeParam C - the context handed to handlers and the fallback
 * @param table - the command table
 * @param request - the request value (taken modulo 2^32)
 * @param arg - a user address, or a plain object standing for the struct
 * @param userMemory - the calling process's memory: the struct of a pointer-form call is read
 *   from it, and handlers follow the struct's user pointers in it
 * @param context - passed to the handler and the fallback
 * @returns 0, or what the fallback returns
 * @throws ErrnoError ENOTTY (unknown request), EFAULT (unreadable or unwritable struct), EINVAL
 *   (`size` below the minimum), E2BIG (non-zero bytes past the kernel's struct), or the handler's
 *   errno
 * @throws TypeError or RangeError if an object argument has a field of the wrong kind or range
 */
export function dispatchIoctl<C>(
  table: IommufdIoctlTable<C>,
  request: number,
  arg: IoctlArg,
  userMemory: UserMemory,
  context: C,
): number {
  if (!Number.isInteger(request)) throw new TypeError(`ioctl request ${request} is not an integer`);
  const req = request >>> 0;
  const nr = _IOC_NR(req);
  if (nr < table.baseNr || nr >= table.endNr) {
    if (table.fallback !== undefined) return table.fallback(req, arg, userMemory, context);
    throw new ErrnoError('ENOTTY', `no ioctl 0x${req.toString(16)}`);
  }
  const op = table.ops.get(nr);

  if (isObjectArg(arg)) {
    const userSize = objectSize(arg);
    if (op === undefined || op.request >>> 0 !== req) throw mismatch(req);
    const memory = new ObjectStructMemory(op.struct, arg, userSize);
    try {
      return runOp(op, memory, 0n, userSize, userMemory, context);
    } finally {
      if (memory.written) syncUapi(op.struct, arg as UapiInput<object>, memory.bytes);
    }
  }

  const va = pointerOf(arg);
  const userSize = readU32(userMemory, va);
  if (op === undefined || op.request >>> 0 !== req) throw mismatch(req);
  return runOp(op, userMemory, va, userSize, userMemory, context);
}
