/**
 * Binary layouts of C uAPI structs, described once, and the kernel's rules for copying extensible
 * structs across the user boundary (include/linux/uaccess.h `copy_struct_from_user`).
 *
 * A layout converts between the plain-object form of a struct (exact C field names, `__u64`/`__s64`
 * as `bigint`, nested structs as nested objects, fixed arrays as arrays) and its little-endian byte
 * form, so every ioctl can accept either.
 */

import { ErrnoError } from './errno.js';

/** Scalar field types: C's `__u8` … `__s64`. 64-bit types are `bigint`, the others `number`. */
export type UapiScalarType = 'u8' | 's8' | 'u16' | 's16' | 'u32' | 's32' | 'u64' | 's64';

/**
 * One field of a struct layout.
 *
 * @remarks
 * `type` is a scalar type or another layout (a nested struct, decoded as a nested object). With
 * `count` the field is a fixed-size array (`__u32 __reserved[3]`) of `count` elements, decoded as a
 * JavaScript array. Fields may overlap (unions); {@link UapiStruct.encode} writes them in order.
 */
export interface UapiFieldDef {
  /** The C field name, used as the property name of the plain object. */
  readonly name: string;
  /** Byte offset from the start of the struct (`offsetof`). */
  readonly offset: number;
  /** Element type: a scalar type name or a nested struct layout. */
  readonly type: UapiScalarType | UapiStruct<object>;
  /** Number of elements of an array field; absent for a single value. */
  readonly count?: number;
}

/** The JavaScript type of a scalar field type `S`: `bigint` for 64-bit types, else `number`. */
export type UapiScalarValue<S> = S extends 'u64' | 's64' ? bigint : number;
/** The JavaScript type of one element of type `T`: a nested struct's value or a scalar's value. */
export type UapiElementValue<T> = T extends UapiStruct<infer V> ? V : UapiScalarValue<T>;
/** The JavaScript type of field `F`: its element type, or an array of it when `F` has a `count`. */
export type UapiFieldValue<F extends UapiFieldDef> = F extends { readonly count: number }
  ? UapiElementValue<F['type']>[]
  : UapiElementValue<F['type']>;

/**
 * The plain-object type described by a list of field definitions: one mutable property per field,
 * named as in C.
 */
export type UapiStructValue<F extends readonly UapiFieldDef[]> = {
  -readonly [K in F[number] as K['name']]: UapiFieldValue<K>;
};

/** What {@link defineUapiStruct} takes. */
export interface UapiStructDef<F extends readonly UapiFieldDef[]> {
  /** The C struct name without `struct`, for messages (`'ioasid_info'`). */
  readonly name: string;
  /** `sizeof` the struct in bytes, including any trailing padding. */
  readonly size: number;
  /** The fields, in any order. */
  readonly fields: F;
}

/**
 * The binary layout of one C struct, mapping between its plain-object form `T` and bytes.
 *
 * @typeParam T - the plain-object form
 */
export interface UapiStruct<T> {
  /** The C struct name (`'ioasid_alloc_request'`). */
  readonly name: string;
  /** `sizeof` the struct in bytes. */
  readonly size: number;
  /** The field definitions as given. */
  readonly fields: readonly UapiFieldDef[];
  /**
   * Read the struct from bytes (little-endian).
   * @param bytes - the buffer
   * @param offset - where the struct starts in `bytes`; default 0
   * @returns a new plain object
   * @throws RangeError if `bytes` holds fewer than `offset + size` bytes
   */
  decode(bytes: Uint8Array, offset?: number): T;
  /**
   * Write the struct as bytes (little-endian). The `size` bytes are zeroed first, so padding ends up
   * zero, then every field is written in definition order.
   * @param value - the plain object; every field must be present with the right type and range
   * @param into - buffer to write into; default a new `Uint8Array(size)`
   * @param offset - where the struct starts in `into`; default 0
   * @returns `into`, or the new buffer
   * @throws TypeError if a field is missing or of the wrong kind; RangeError if a value does not fit
   *   its C type or `into` is too short. On a throw `into` is unchanged.
   */
  encode(value: T, into?: Uint8Array, offset?: number): Uint8Array;
  /**
   * Whether `value` is a well-formed plain object of this struct: every field present, of the right
   * kind and within range (extra properties are ignored).
   * @param value - anything
   */
  isValue(value: unknown): value is T;
  /**
   * A value with every field zero.
   * @returns a new plain object
   */
  zero(): T;
  /**
   * Byte offset just past a field (`offsetofend`), the usual minimum size an extensible-struct ioctl
   * accepts.
   * @param field - a field name
   * @returns offset + size of the field in bytes
   * @throws RangeError for an unknown field
   */
  offsetofend(field: keyof T & string): number;
}

const SCALAR_SIZE: Readonly<Record<UapiScalarType, number>> = {
  u8: 1,
  s8: 1,
  u16: 2,
  s16: 2,
  u32: 4,
  s32: 4,
  u64: 8,
  s64: 8,
};

const SCALAR_RANGE: Readonly<Record<UapiScalarType, readonly [bigint, bigint]>> = {
  u8: [0n, 0xffn],
  s8: [-0x80n, 0x7fn],
  u16: [0n, 0xffffn],
  s16: [-0x8000n, 0x7fffn],
  u32: [0n, 0xffff_ffffn],
  s32: [-0x8000_0000n, 0x7fff_ffffn],
  u64: [0n, 0xffff_ffff_ffff_ffffn],
  s64: [-0x8000_0000_0000_0000n, 0x7fff_ffff_ffff_ffffn],
};

function isScalar(type: UapiScalarType | UapiStruct<object>): type is UapiScalarType {
  return typeof type === 'string';
}

function elementSize(type: UapiScalarType | UapiStruct<object>): number {
  return isScalar(type) ? SCALAR_SIZE[type] : type.size;
}

function fieldBytes(field: UapiFieldDef): number {
  return elementSize(field.type) * (field.count ?? 1);
}

function readScalar(view: DataView, at: number, type: UapiScalarType): number | bigint {
  switch (type) {
    case 'u8':
      return view.getUint8(at);
    case 's8':
      return view.getInt8(at);
    case 'u16':
      return view.getUint16(at, true);
    case 's16':
      return view.getInt16(at, true);
    case 'u32':
      return view.getUint32(at, true);
    case 's32':
      return view.getInt32(at, true);
    case 'u64':
      return view.getBigUint64(at, true);
    case 's64':
      return view.getBigInt64(at, true);
  }
}

function writeScalar(view: DataView, at: number, type: UapiScalarType, value: number | bigint): void {
  switch (type) {
    case 'u8':
      view.setUint8(at, value as number);
      return;
    case 's8':
      view.setInt8(at, value as number);
      return;
    case 'u16':
      view.setUint16(at, value as number, true);
      return;
    case 's16':
      view.setInt16(at, value as number, true);
      return;
    case 'u32':
      view.setUint32(at, value as number, true);
      return;
    case 's32':
      view.setInt32(at, value as number, true);
      return;
    case 'u64':
      view.setBigUint64(at, value as bigint, true);
      return;
    case 's64':
      view.setBigInt64(at, value as bigint, true);
      return;
  }
}

/** Why a scalar is not acceptable, or undefined if it is. */
function scalarProblem(type: UapiScalarType, value: unknown): 'type' | 'range' | undefined {
  const wide = type === 'u64' || type === 's64';
  if (wide ? typeof value !== 'bigint' : typeof value !== 'number') return 'type';
  if (!wide && !Number.isInteger(value)) return 'range';
  const [lo, hi] = SCALAR_RANGE[type];
  const big = typeof value === 'bigint' ? value : BigInt(value as number);
  return big < lo || big > hi ? 'range' : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

class UapiStructLayout<T> implements UapiStruct<T> {
  readonly name: string;
  readonly size: number;
  readonly fields: readonly UapiFieldDef[];
  readonly #byName: ReadonlyMap<string, UapiFieldDef>;

  constructor(name: string, size: number, fields: readonly UapiFieldDef[]) {
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`struct ${name}: bad size ${size}`);
    const byName = new Map<string, UapiFieldDef>();
    for (const f of fields) {
      if (byName.has(f.name)) throw new RangeError(`struct ${name}: duplicate field ${f.name}`);
      if (f.count !== undefined && (!Number.isInteger(f.count) || f.count < 0)) {
        throw new RangeError(`struct ${name}: field ${f.name} has a bad count ${f.count}`);
      }
      if (!Number.isInteger(f.offset) || f.offset < 0 || f.offset + fieldBytes(f) > size) {
        throw new RangeError(`struct ${name}: field ${f.name} at ${f.offset} does not fit ${size} bytes`);
      }
      byName.set(f.name, f);
    }
    this.name = name;
    this.size = size;
    this.fields = Object.freeze([...fields]);
    this.#byName = byName;
  }

  decode(bytes: Uint8Array, offset = 0): T {
    if (!Number.isInteger(offset) || offset < 0 || offset + this.size > bytes.length) {
      throw new RangeError(`struct ${this.name}: ${bytes.length} bytes cannot hold it at offset ${offset}`);
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset + offset, this.size);
    return this.#read(view, bytes, offset) as T;
  }

  #read(view: DataView, bytes: Uint8Array, offset: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const f of this.fields) {
      const one = (at: number): unknown =>
        isScalar(f.type) ? readScalar(view, at, f.type) : f.type.decode(bytes, offset + at);
      if (f.count === undefined) {
        out[f.name] = one(f.offset);
      } else {
        const step = elementSize(f.type);
        out[f.name] = Array.from({ length: f.count }, (_, i) => one(f.offset + i * step));
      }
    }
    return out;
  }

  encode(value: T, into?: Uint8Array, offset = 0): Uint8Array {
    this.#validate(value, this.name, true);
    const out = into ?? new Uint8Array(this.size);
    if (!Number.isInteger(offset) || offset < 0 || offset + this.size > out.length) {
      throw new RangeError(`struct ${this.name}: ${out.length} bytes cannot hold it at offset ${offset}`);
    }
    out.fill(0, offset, offset + this.size);
    this.#write(value as Record<string, unknown>, out, offset);
    return out;
  }

  #write(value: Record<string, unknown>, out: Uint8Array, offset: number): void {
    const view = new DataView(out.buffer, out.byteOffset + offset, this.size);
    for (const f of this.fields) {
      const one = (at: number, v: unknown): void => {
        if (isScalar(f.type)) writeScalar(view, at, f.type, v as number | bigint);
        else f.type.encode(v as object, out, offset + at);
      };
      const v = value[f.name];
      if (f.count === undefined) {
        one(f.offset, v);
      } else {
        const step = elementSize(f.type);
        const items = v as unknown[];
        for (let i = 0; i < items.length; i++) one(f.offset + i * step, items[i]);
      }
    }
  }

  /** Check a value; throw (if `raise`) or return false on the first problem. */
  #validate(value: unknown, path: string, raise: boolean): boolean {
    const fail = (kind: 'type' | 'range', where: string, what: string): false => {
      if (!raise) return false;
      const msg = `struct ${this.name}: ${where} ${what}`;
      throw kind === 'type' ? new TypeError(msg) : new RangeError(msg);
    };
    if (!isRecord(value)) return fail('type', path, 'is not an object');
    for (const f of this.fields) {
      const where = `${path}.${f.name}`;
      const v = value[f.name];
      const checkOne = (e: unknown, at: string): boolean => {
        if (isScalar(f.type)) {
          const problem = scalarProblem(f.type, e);
          return problem === undefined ? true : fail(problem, at, `is not a valid ${f.type}`);
        }
        if (f.type instanceof UapiStructLayout) return f.type.#validate(e, at, raise);
        if (f.type.isValue(e)) return true;
        return fail('type', at, `is not a valid struct ${f.type.name}`);
      };
      if (f.count === undefined) {
        if (!checkOne(v, where)) return false;
      } else {
        if (!Array.isArray(v) || v.length !== f.count) {
          return fail('type', where, `must be an array of ${f.count}`);
        }
        for (let i = 0; i < v.length; i++) if (!checkOne(v[i], `${where}[${i}]`)) return false;
      }
    }
    return true;
  }

  isValue(value: unknown): value is T {
    return this.#validate(value, this.name, false);
  }

  zero(): T {
    return this.decode(new Uint8Array(this.size));
  }

  offsetofend(field: keyof T & string): number {
    const f = this.#byName.get(field);
    if (f === undefined) throw new RangeError(`struct ${this.name} has no field ${field}`);
    return f.offset + fieldBytes(f);
  }
}

/**
 * Describe the binary layout of a C uAPI struct once.
 *
 * @example
 * ```ts
 * const iommu_destroy = defineUapiStruct({
 *   name: 'iommu_destroy',
 *   size: 8,
 *   fields: [
 *     { name: 'size', offset: 0, type: 'u32' },
 *     { name: 'id', offset: 4, type: 'u32' },
 *   ],
 * });
 * iommu_destroy.encode({ size: 8, id: 3 }); // Uint8Array [8,0,0,0,3,0,0,0]
 * ```
 *
 * @param def - the struct name, its `sizeof` and its fields (offsets in bytes)
 * @returns the layout; its plain-object type is inferred from the field names and types
 * @throws RangeError if a field lies outside `size`, a name repeats, or a count is bad
 */
export function defineUapiStruct<const F extends readonly UapiFieldDef[]>(
  def: UapiStructDef<F>,
): UapiStruct<UapiStructValue<F>> {
  return new UapiStructLayout<UapiStructValue<F>>(def.name, def.size, def.fields);
}

function checkUserSize(userSize: number): void {
  if (!Number.isInteger(userSize) || userSize < 0) {
    throw new ErrnoError('EINVAL', `user struct size ${userSize} is not a size`);
  }
}

/**
 * Copy an extensible struct from user memory the way the kernel's `copy_struct_from_user` does,
 * and decode it.
 *
 * @remarks
 * Rules, in the kernel's order:
 * - `userSize` larger than the kernel's `struct.size`: the bytes the kernel does not know,
 *   `[struct.size, userSize)`, must all be zero. They are scanned in order; a non-zero byte gives
 *   E2BIG, running off the end of `userBytes` first gives EFAULT.
 * - `userSize` smaller: the missing tail is zero-filled (an older user binary's struct).
 * - Then `min(userSize, struct.size)` bytes are copied; if `userBytes` is shorter, EFAULT.
 *
 * Faults are detected per byte where the kernel works per word; only the length of `userBytes`
 * stands for the accessible user memory.
 *
 * @param struct - the kernel's layout of the struct
 * @param userBytes - the user memory, starting at the struct
 * @param userSize - the size user space says its struct has (usually its `size`/`argsz` field)
 * @returns the struct in plain-object form, as the kernel sees it
 * @throws ErrnoError E2BIG (non-zero unknown trailing bytes), EFAULT (user memory too short),
 *   EINVAL (`userSize` negative or not an integer)
 */
export function copyStructFromUser<T>(struct: UapiStruct<T>, userBytes: Uint8Array, userSize: number): T {
  checkUserSize(userSize);
  const ksize = struct.size;
  for (let i = ksize; i < userSize; i++) {
    if (i >= userBytes.length) throw new ErrnoError('EFAULT', `${struct.name}: trailing bytes unreadable`);
    if (userBytes[i] !== 0) throw new ErrnoError('E2BIG', `${struct.name}: unknown trailing bytes are set`);
  }
  const common = Math.min(ksize, userSize);
  if (common > userBytes.length) throw new ErrnoError('EFAULT', `${struct.name}: struct unreadable`);
  const kernel = new Uint8Array(ksize);
  kernel.set(userBytes.subarray(0, common));
  return struct.decode(kernel);
}

/**
 * Copy a struct back to user memory the way extensible-struct ioctls respond: only the first
 * `min(userSize, struct.size)` bytes are written, so fields the caller's (older, shorter) struct
 * does not have are never written, and bytes beyond the kernel's struct are left alone.
 *
 * @param struct - the kernel's layout
 * @param value - the plain object to write
 * @param userBytes - the user memory, starting at the struct; modified in place
 * @param userSize - the size user space says its struct has
 * @throws ErrnoError EFAULT if `userBytes` is shorter than the bytes to write (nothing is written),
 *   EINVAL if `userSize` is negative or not an integer
 * @throws TypeError or RangeError if `value` is malformed (see {@link UapiStruct.encode})
 */
export function copyStructToUser<T>(
  struct: UapiStruct<T>,
  value: T,
  userBytes: Uint8Array,
  userSize: number,
): void {
  checkUserSize(userSize);
  const n = Math.min(userSize, struct.size);
  if (n > userBytes.length) throw new ErrnoError('EFAULT', `${struct.name}: struct unwritable`);
  const kernel = struct.encode(value);
  userBytes.set(kernel.subarray(0, n));
}

/**
 * The usual first check of an ioctl taking an `argsz`/`size`-prefixed struct: a size below the
 * smallest struct the kernel ever accepted for this command is EINVAL.
 *
 * @param argsz - the size user space claims
 * @param minSize - the minimum in bytes (the struct's `sizeof` for fixed structs, or
 *   `offsetofend` of the last field of the first version for extensible ones)
 * @throws ErrnoError EINVAL if `argsz < minSize` (or `argsz` is not a non-negative integer)
 */
export function checkArgsz(argsz: number, minSize: number): void {
  if (!Number.isInteger(argsz) || argsz < 0 || argsz < minSize) {
    throw new ErrnoError('EINVAL', `argsz ${argsz} is below the minimum ${minSize}`);
  }
}
