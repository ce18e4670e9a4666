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

/** An 8-byte staging area for 64-bit values, so that no `DataView` is made over the caller's bytes. */
const wideView = new DataView(new ArrayBuffer(8));
const wideBytes = new Uint8Array(wideView.buffer);

/**
 * Read a scalar at `at` in `bytes`. Bytes are combined one by one rather than through a `DataView`
 * over `bytes`, whose creation would move a small array's bytes off the heap on every call.
 */
function readScalar(bytes: Uint8Array, at: number, type: UapiScalarType): number | bigint {
  switch (type) {
    case 'u8':
      return bytes[at] as number;
    case 's8':
      return ((bytes[at] as number) << 24) >> 24;
    case 'u16':
      return (bytes[at] as number) | ((bytes[at + 1] as number) << 8);
    case 's16':
      return (((bytes[at] as number) | ((bytes[at + 1] as number) << 8)) << 16) >> 16;
    case 'u32':
      return read32(bytes, at) >>> 0;
    case 's32':
      return read32(bytes, at);
    case 'u64': {
      const lo = read32(bytes, at) >>> 0;
      const hi = read32(bytes, at + 4) >>> 0;
      if (hi < 0x20_0000) return BigInt(hi * 0x1_0000_0000 + lo); // below 2^53: exact
      for (let i = 0; i < 8; i++) wideBytes[i] = bytes[at + i] as number;
      return wideView.getBigUint64(0, true);
    }
    case 's64':
      for (let i = 0; i < 8; i++) wideBytes[i] = bytes[at + i] as number;
      return wideView.getBigInt64(0, true);
  }
}

/** The 32 bits at `at`, little-endian, as a signed integer. */
function read32(bytes: Uint8Array, at: number): number {
  return (
    (bytes[at] as number) |
    ((bytes[at + 1] as number) << 8) |
    ((bytes[at + 2] as number) << 16) |
    ((bytes[at + 3] as number) << 24)
  );
}

/** Write a validated scalar at `at` in `out` (a typed array store keeps the low 8 bits). */
function writeScalar(out: Uint8Array, at: number, type: UapiScalarType, value: number | bigint): void {
  switch (type) {
    case 'u8':
    case 's8':
      out[at] = value as number;
      return;
    case 'u16':
    case 's16':
      out[at] = value as number;
      out[at + 1] = (value as number) >>> 8;
      return;
    case 'u32':
    case 's32': {
      const v = value as number;
      out[at] = v;
      out[at + 1] = v >>> 8;
      out[at + 2] = v >>> 16;
      out[at + 3] = v >>> 24;
      return;
    }
    case 'u64':
    case 's64':
      if (type === 'u64') wideView.setBigUint64(0, value as bigint, true);
      else wideView.setBigInt64(0, value as bigint, true);
      for (let i = 0; i < 8; i++) out[at + i] = wideBytes[i] as number;
      return;
  }
}

const SCALAR_NUMBER_RANGE: Readonly<Record<UapiScalarType, readonly [number, number]>> = {
  u8: [0, 0xff],
  s8: [-0x80, 0x7f],
  u16: [0, 0xffff],
  s16: [-0x8000, 0x7fff],
  u32: [0, 0xffff_ffff],
  s32: [-0x8000_0000, 0x7fff_ffff],
  u64: [0, 0],
  s64: [0, 0],
};

/** Why a scalar is not acceptable, or undefined if it is. */
function scalarProblem(type: UapiScalarType, value: unknown): 'type' | 'range' | undefined {
  if (type === 'u64' || type === 's64') {
    if (typeof value !== 'bigint') return 'type';
    const [lo, hi] = SCALAR_RANGE[type];
    return value < lo || value > hi ? 'range' : undefined;
  }
  if (typeof value !== 'number') return 'type';
  if (!Number.isInteger(value)) return 'range';
  const [lo, hi] = SCALAR_NUMBER_RANGE[type];
  return value < lo || value > hi ? 'range' : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** The name of element `index` (-1 for a single value) of field `f` inside the value at `path`. */
function fieldPath(path: string, f: UapiFieldDef, index: number): string {
  return index < 0 ? `${path}.${f.name}` : `${path}.${f.name}[${index}]`;
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
    return this.#read(bytes, offset) as T;
  }

  /** Read the struct at `offset` in `bytes` (the range is already checked). */
  #read(bytes: Uint8Array, offset: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const fields = this.fields;
    for (let fi = 0; fi < fields.length; fi++) {
      const f = fields[fi] as UapiFieldDef;
      const type = f.type;
      const count = f.count;
      if (count === undefined) {
        out[f.name] = this.#readOne(type, bytes, offset + f.offset);
      } else {
        const step = elementSize(type);
        const items: unknown[] = [];
        for (let i = 0; i < count; i++) items.push(this.#readOne(type, bytes, offset + f.offset + i * step));
        out[f.name] = items;
      }
    }
    return out;
  }

  /** Read one element (scalar or nested struct) at `at` in `bytes`. */
  #readOne(type: UapiScalarType | UapiStruct<object>, bytes: Uint8Array, at: number): unknown {
    if (isScalar(type)) return readScalar(bytes, at, type);
    if (type instanceof UapiStructLayout) return type.#read(bytes, at);
    return type.decode(bytes, at);
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
    const fields = this.fields;
    for (let fi = 0; fi < fields.length; fi++) {
      const f = fields[fi] as UapiFieldDef;
      const v = value[f.name];
      if (f.count === undefined) {
        this.#writeOne(f.type, v, out, offset + f.offset);
      } else {
        const step = elementSize(f.type);
        const items = v as unknown[];
        for (let i = 0; i < items.length; i++)
          this.#writeOne(f.type, items[i], out, offset + f.offset + i * step);
      }
    }
  }

  /** Write one validated element (scalar or nested struct) at `at` in `out`. */
  #writeOne(type: UapiScalarType | UapiStruct<object>, v: unknown, out: Uint8Array, at: number): void {
    if (isScalar(type)) writeScalar(out, at, type, v as number | bigint);
    else type.encode(v as object, out, at);
  }

  /**
   * Check a value; throw (if `raise`) or return false on the first problem. `path` names the value
   * in messages; the names of its fields are only put together when something is wrong.
   */
  #validate(value: unknown, path: string, raise: boolean): boolean {
    if (!isRecord(value)) return this.#fail(raise, 'type', path, 'is not an object');
    const fields = this.fields;
    for (let fi = 0; fi < fields.length; fi++) {
      const f = fields[fi] as UapiFieldDef;
      const v = value[f.name];
      if (f.count === undefined) {
        if (!this.#checkOne(f, v, path, -1, raise)) return false;
      } else {
        if (!Array.isArray(v) || v.length !== f.count) {
          return this.#fail(raise, 'type', `${path}.${f.name}`, `must be an array of ${f.count}`);
        }
        for (let i = 0; i < v.length; i++) if (!this.#checkOne(f, v[i], path, i, raise)) return false;
      }
    }
    return true;
  }

  /** Check element `index` (-1 for a single value) of field `f` of the value at `path`. */
  #checkOne(f: UapiFieldDef, e: unknown, path: string, index: number, raise: boolean): boolean {
    const type = f.type;
    if (isScalar(type)) {
      const problem = scalarProblem(type, e);
      if (problem === undefined) return true;
      return this.#fail(raise, problem, fieldPath(path, f, index), `is not a valid ${type}`);
    }
    if (type instanceof UapiStructLayout) return type.#validate(e, fieldPath(path, f, index), raise);
    if (type.isValue(e)) return true;
    return this.#fail(raise, 'type', fieldPath(path, f, index), `is not a valid struct ${type.name}`);
  }

  #fail(raise: boolean, kind: 'type' | 'range', where: string, what: string): false {
    if (!raise) return false;
    const msg = `struct ${this.name}: ${where} ${what}`;
    throw kind === 'type' ? new TypeError(msg) : new RangeError(msg);
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
