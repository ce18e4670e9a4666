/**
 * The argument of a VFIO group, device or SVA ioctl, which is either a user address or a plain
 * object standing for the struct. The object form is laid out as the struct's bytes at address 0
 * of a small private memory, the handler runs on it exactly as on user memory (`copy_from_user` /
 * `copy_to_user` of a range outside those bytes is EFAULT), and whatever the handler wrote back is
 * copied into the object afterwards, also when the handler then failed.
 *
 * @internal Not exported from the package (helper V2's file).
 */

import { ErrnoError, type UapiStruct } from '@iommu-ts/base';
import { encodeUapi, type IoctlArg, syncUapi, type UapiInput, type UserMemory } from '@iommu-ts/iommufd';

/** One struct of an object-form argument and where its bytes go. */
export interface ArgPart {
  /** The layout. */
  readonly struct: UapiStruct<object>;
  /** The object the struct's fields are read from and written back to. */
  readonly value: object;
  /** Byte offset of the struct in the argument. */
  readonly offset: number;
}

/** A {@link UserMemory} over a private buffer at address 0. */
class BufferMemory implements UserMemory {
  written = false;
  constructor(readonly bytes: Uint8Array) {}

  private check(va: bigint, len: number): number {
    if (va < 0n || va + BigInt(len) > BigInt(this.bytes.length))
      throw new ErrnoError('EFAULT', `argument object has no bytes at ${va}+${len}`);
    return Number(va);
  }

  read(va: bigint, len: number): Uint8Array {
    const at = this.check(va, len);
    return this.bytes.slice(at, at + len);
  }

  write(va: bigint, bytes: Uint8Array): void {
    const at = this.check(va, bytes.length);
    this.bytes.set(bytes, at);
    this.written = true;
  }
}

/**
 * A user address from a pointer-form argument (a `bigint`, a safe-integer `number`, or null and
 * undefined for address 0).
 * @param arg - the argument
 * @returns the address, as an unsigned 64-bit value
 * @throws RangeError for a number that is not a safe integer
 */
export function argPointer(arg: bigint | number | null | undefined): bigint {
  if (arg === undefined || arg === null) return 0n;
  if (typeof arg === 'bigint') return BigInt.asUintN(64, arg);
  if (!Number.isSafeInteger(arg)) throw new RangeError(`ioctl argument ${arg} is not an address`);
  return BigInt.asUintN(64, BigInt(arg));
}

/**
 * Run `fn` on the argument's bytes: on user memory at the pointer, or on the object's encoding.
 * @param arg - a user address, or an object
 * @param userMemory - the caller's memory
 * @param parts - for an object argument, the structs it is made of
 * @param fn - the handler, given the memory and the address of the argument in it
 * @returns what `fn` returns
 * @throws what `fn` throws; TypeError or RangeError for an object with fields of the wrong kind
 */
export function withArg<R>(
  arg: IoctlArg,
  userMemory: UserMemory,
  parts: (obj: object) => readonly ArgPart[],
  fn: (mem: UserMemory, va: bigint) => R,
): R {
  if (typeof arg !== 'object' || arg === null) return fn(userMemory, argPointer(arg));
  const list = parts(arg);
  let size = 0;
  for (const p of list) size = Math.max(size, p.offset + p.struct.size);
  const mem = new BufferMemory(new Uint8Array(size));
  for (const p of list) encodeUapi(p.struct, p.value as UapiInput<object>, mem.bytes, p.offset);
  try {
    return fn(mem, 0n);
  } finally {
    if (mem.written)
      for (const p of list) syncUapi(p.struct, p.value as UapiInput<object>, mem.bytes, p.offset);
  }
}

/**
 * The little-endian u32 at the start of `b` (0 for missing bytes).
 * @param b - bytes copied from the user
 */
export function readU32(b: Uint8Array): number {
  return ((b[0] ?? 0) | ((b[1] ?? 0) << 8) | ((b[2] ?? 0) << 16) | ((b[3] ?? 0) << 24)) >>> 0;
}
