/**
 * The argument of a VFIO container struct ioctl as its handler sees it (helper V1's file, used by
 * container.ts; not exported from the package): the caller's bytes behind a user pointer, or a
 * plain object with the C field names standing for those bytes. VFIO structs carry their size in
 * `argsz` and may be followed by more data (capability chains), so the handler reads and writes
 * byte ranges relative to the struct's start, exactly as `copy_from_user` / `copy_to_user` on
 * `arg + offset` would.
 */

import { ErrnoError, type UapiStruct } from '@iommu-ts/base';
import { encodeUapi, type IoctlArg, syncUapi, type UapiInput, type UserMemory } from '@iommu-ts/iommufd';

/**
 * One struct ioctl argument, addressed from the struct's first byte.
 *
 * @typeParam T - the plain-object form of the struct
 */
export interface VfioUserArg<T> {
  /**
   * `copy_from_user(dst, arg + offset, len)`.
   * @param offset - bytes from the start of the struct
   * @param len - number of bytes
   * @returns a new array of `len` bytes
   * @throws ErrnoError EFAULT if the range is not readable
   */
  read(offset: number, len: number): Uint8Array;
  /**
   * `copy_to_user(arg + offset, bytes, bytes.length)`.
   * @param offset - bytes from the start of the struct
   * @param bytes - the data
   * @throws ErrnoError EFAULT if the range is not writable
   */
  write(offset: number, bytes: Uint8Array): void;
  /**
   * Copy what the kernel wrote back into the caller's object (object form only; a no-op for a
   * pointer). Call once, after the handler, whether it failed or not.
   */
  finish(): void;
  /** The struct's layout. */
  readonly struct: UapiStruct<T>;
}

function pointerOf(arg: bigint | number | null | undefined): bigint {
  if (arg === undefined || arg === null) return 0n;
  if (typeof arg === 'bigint') return BigInt.asUintN(64, arg);
  if (!Number.isSafeInteger(arg)) throw new RangeError(`ioctl argument ${arg} is not an address`);
  return BigInt.asUintN(64, BigInt(arg));
}

function argszOf(arg: object): number {
  const argsz: unknown = (arg as { argsz?: unknown }).argsz;
  if (argsz === undefined) return 0;
  const n = typeof argsz === 'bigint' ? Number(argsz) : argsz;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffff_ffff) {
    throw new TypeError(`ioctl argument object: argsz ${String(argsz)} is not a __u32`);
  }
  return n;
}

/**
 * Wrap an ioctl's `arg` for a VFIO struct handler.
 *
 * @remarks
 * A pointer (`bigint`, safe-integer `number`, `null`/`undefined` for 0) addresses the caller's
 * memory. A plain object is encoded as the struct's bytes (missing fields read as 0) in a buffer of
 * `max(argsz, sizeof)` bytes, the rest zero; accesses beyond that buffer fault with EFAULT, and
 * bytes written past the struct (capabilities) are only visible with the pointer form.
 * {@link VfioUserArg.finish} copies the struct's bytes back into the object when anything was
 * written.
 *
 * @typeParam T - the plain-object form of the struct
 * @param struct - the struct's layout
 * @param arg - the ioctl argument
 * @param userMemory - the caller's memory
 * @returns the wrapped argument
 * @throws TypeError or RangeError if an object argument has a field of the wrong kind or range
 */
export function vfioUserArg<T>(struct: UapiStruct<T>, arg: IoctlArg, userMemory: UserMemory): VfioUserArg<T> {
  if (typeof arg === 'object' && arg !== null) {
    const target = arg as UapiInput<T>;
    const encoded = encodeUapi(struct, target);
    const bytes = new Uint8Array(Math.max(argszOf(arg), struct.size));
    bytes.set(encoded);
    let written = false;
    const range = (offset: number, len: number): void => {
      if (offset < 0 || offset + len > bytes.length) {
        throw new ErrnoError('EFAULT', `struct access at ${offset} + ${len} beyond ${bytes.length} bytes`);
      }
    };
    return {
      struct,
      read(offset, len) {
        range(offset, len);
        return bytes.slice(offset, offset + len);
      },
      write(offset, data) {
        range(offset, data.length);
        bytes.set(data, offset);
        written = true;
      },
      finish() {
        if (written) syncUapi(struct, target, bytes);
      },
    };
  }
  const va = pointerOf(arg);
  return {
    struct,
    read(offset, len) {
      return userMemory.read(BigInt.asUintN(64, va + BigInt(offset)), len);
    },
    write(offset, data) {
      userMemory.write(BigInt.asUintN(64, va + BigInt(offset)), data);
    },
    finish() {},
  };
}
