/**
 * Conversion between uAPI plain objects and their C bytes for iommufd's ioctls, on top of the
 * layouts of `@iommu-ts/base` (`defineUapiStruct`), adding what the object form of an ioctl needs:
 *
 * - a field left out of the object reads as 0 (base's `encode` wants every field);
 * - unions: members that share bytes never clobber each other by being absent. Only the members
 *   present in the object are written. An object that came from {@link decodeUapi} or was updated
 *   by {@link syncUapi} also remembers its bytes, like a C struct that stays in memory between two
 *   calls: encoding it again starts from those bytes and writes only the union members whose value
 *   changed since, so reusing one object for several calls (changing `cmd.access_rw.iova` between
 *   them, say) behaves as in C. Without remembered bytes, present members are written in
 *   definition order, a later one winning where they overlap.
 */

import type { UapiFieldDef, UapiScalarType, UapiStruct } from '@iommu-ts/base';

/**
 * The input form of one field value of type `V`: scalars as they are, nested structs as
 * {@link UapiInput}, fixed arrays as arrays of inputs (missing trailing elements read as 0).
 */
export type UapiInputValue<V> = V extends bigint
  ? bigint
  : V extends number
    ? number
    : V extends readonly (infer E)[]
      ? UapiInputValue<E>[]
      : V extends object
        ? UapiInput<V>
        : V;

/**
 * A struct's plain object with every field optional, at every depth: what the object form of an
 * ioctl accepts. A field left out reads as 0.
 *
 * @typeParam T - the complete plain-object form, as `UapiStruct.decode` returns it
 */
export type UapiInput<T> = { [K in keyof T]?: UapiInputValue<T[K]> };

/** A run of fields whose bytes overlap (a union), or a single field. */
interface FieldGroup {
  readonly start: number;
  readonly end: number;
  readonly fields: readonly UapiFieldDef[];
}

type AnyStruct = UapiStruct<unknown>;

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

/** Bytes each struct object was last synchronised with: its "memory" between calls. */
const remembered = new WeakMap<object, { readonly struct: AnyStruct; readonly bytes: Uint8Array }>();
const groupCache = new WeakMap<AnyStruct, readonly FieldGroup[]>();

function isScalar(type: UapiFieldDef['type']): type is UapiScalarType {
  return typeof type === 'string';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function elementSize(type: UapiFieldDef['type']): number {
  return isScalar(type) ? SCALAR_SIZE[type] : type.size;
}

function fieldBytes(field: UapiFieldDef): number {
  return elementSize(field.type) * (field.count ?? 1);
}

/** The fields of a layout grouped by overlapping byte ranges, in offset order. */
function fieldGroups(struct: AnyStruct): readonly FieldGroup[] {
  const cached = groupCache.get(struct);
  if (cached !== undefined) return cached;
  const sorted = [...struct.fields].sort((a, b) => a.offset - b.offset);
  const groups: { start: number; end: number; fields: UapiFieldDef[] }[] = [];
  for (const f of sorted) {
    const end = f.offset + fieldBytes(f);
    const last = groups.at(-1);
    if (last !== undefined && f.offset < last.end) {
      last.fields.push(f);
      last.end = Math.max(last.end, end);
    } else {
      groups.push({ start: f.offset, end, fields: [f] });
    }
  }
  // Within a group keep definition order: it decides which member wins an overlap.
  const order = new Map(struct.fields.map((f, i) => [f, i] as const));
  for (const g of groups) g.fields.sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0));
  groupCache.set(struct, groups);
  return groups;
}

function writeScalar(view: DataView, at: number, type: UapiScalarType, value: unknown, where: string): void {
  let big: bigint;
  if (typeof value === 'bigint') {
    big = value;
  } else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new RangeError(`${where} = ${value} is not a safe integer`);
    big = BigInt(value);
  } else {
    throw new TypeError(`${where} must be a ${type === 'u64' || type === 's64' ? 'bigint' : 'number'}`);
  }
  const [lo, hi] = SCALAR_RANGE[type];
  if (big < lo || big > hi) throw new RangeError(`${where} = ${big} does not fit ${type}`);
  switch (type) {
    case 'u8':
      view.setUint8(at, Number(big));
      return;
    case 's8':
      view.setInt8(at, Number(big));
      return;
    case 'u16':
      view.setUint16(at, Number(big), true);
      return;
    case 's16':
      view.setInt16(at, Number(big), true);
      return;
    case 'u32':
      view.setUint32(at, Number(big), true);
      return;
    case 's32':
      view.setInt32(at, Number(big), true);
      return;
    case 'u64':
      view.setBigUint64(at, big, true);
      return;
    case 's64':
      view.setBigInt64(at, big, true);
      return;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Write one element (scalar or nested struct) at `at` in `out`. `base` is the element's remembered
 * bytes, if any, used to resolve unions inside a nested struct.
 */
function writeElement(
  type: UapiFieldDef['type'],
  value: unknown,
  out: Uint8Array,
  at: number,
  base: Uint8Array | undefined,
  where: string,
): void {
  if (isScalar(type)) {
    writeScalar(new DataView(out.buffer, out.byteOffset), at, type, value, where);
  } else {
    encodeStruct(type, value, out, at, base, where);
  }
}

/** Write a field (single element or fixed array) starting at `at`. */
function writeField(
  f: UapiFieldDef,
  value: unknown,
  out: Uint8Array,
  at: number,
  base: Uint8Array | undefined,
  where: string,
): void {
  if (f.count === undefined) {
    writeElement(f.type, value, out, at, base, where);
    return;
  }
  if (!Array.isArray(value)) throw new TypeError(`${where} must be an array of ${f.count}`);
  if (value.length > f.count)
    throw new RangeError(`${where} has ${value.length} elements, at most ${f.count}`);
  const step = elementSize(f.type);
  for (let i = 0; i < f.count; i++) {
    const e: unknown = value[i];
    const pos = at + i * step;
    if (e === undefined) {
      out.fill(0, pos, pos + step);
    } else {
      writeElement(f.type, e, out, pos, base?.subarray(i * step, (i + 1) * step), `${where}[${i}]`);
    }
  }
}

function encodeStruct(
  struct: AnyStruct,
  value: unknown,
  out: Uint8Array,
  off: number,
  base: Uint8Array | undefined,
  where: string,
): void {
  if (!isRecord(value)) throw new TypeError(`${where} is not an object`);
  if (base !== undefined) out.set(base, off);
  else out.fill(0, off, off + struct.size);
  for (const g of fieldGroups(struct)) {
    const present = g.fields.filter((f) => value[f.name] !== undefined);
    if (present.length === 0) {
      out.fill(0, off + g.start, off + g.end);
      continue;
    }
    const only = g.fields.length === 1 ? g.fields[0] : undefined;
    if (only !== undefined || base === undefined) {
      // A plain field, or a union without remembered bytes: write what is present, in order.
      if (base === undefined) out.fill(0, off + g.start, off + g.end);
      for (const f of present) {
        const fb = base?.subarray(f.offset, f.offset + fieldBytes(f));
        writeField(f, value[f.name], out, off + f.offset, fb, `${where}.${f.name}`);
      }
      continue;
    }
    // A union with remembered bytes: only members that changed since are written.
    for (const f of present) {
      const fb = base.subarray(f.offset, f.offset + fieldBytes(f));
      const scratch = new Uint8Array(fb.length);
      writeField(f, value[f.name], scratch, 0, fb, `${where}.${f.name}`);
      if (!sameBytes(scratch, fb)) out.set(scratch, off + f.offset);
    }
  }
}

/**
 * Encode a struct's plain object, complete or partial, as its little-endian C bytes.
 *
 * @remarks
 * Fields left out read as 0; union members are resolved as the module documentation describes.
 * 64-bit fields take a `bigint` (a safe-integer `number` is accepted too); smaller fields take a
 * `number` (or a `bigint` in range).
 *
 * @param struct - the layout
 * @param value - the object; properties that are not fields are ignored
 * @param into - buffer to write into; default a new `Uint8Array(struct.size)`
 * @param offset - where the struct starts in `into`; default 0
 * @returns `into`, or the new buffer
 * @throws TypeError if a field has the wrong kind of value; RangeError if a value does not fit its
 *   C type, an array is too long, or `into` is too short. On a throw `into` is unchanged.
 */
export function encodeUapi<T>(
  struct: UapiStruct<T>,
  value: UapiInput<T>,
  into?: Uint8Array,
  offset = 0,
): Uint8Array {
  const s = struct as AnyStruct;
  const out = into ?? new Uint8Array(s.size);
  if (!Number.isInteger(offset) || offset < 0 || offset + s.size > out.length) {
    throw new RangeError(`struct ${s.name}: ${out.length} bytes cannot hold it at offset ${offset}`);
  }
  const memory = isRecord(value) ? remembered.get(value) : undefined;
  const base = memory !== undefined && memory.struct === s ? memory.bytes : undefined;
  const scratch = new Uint8Array(s.size);
  encodeStruct(s, value, scratch, 0, base, s.name);
  out.set(scratch, offset);
  return out;
}

/**
 * Decode a struct from its bytes (every field, every union member) and let the new object
 * remember those bytes, so that encoding it again after changing one union member writes just
 * that member.
 *
 * @param struct - the layout
 * @param bytes - the buffer
 * @param offset - where the struct starts; default 0
 * @returns a new plain object
 * @throws RangeError if `bytes` is too short
 */
export function decodeUapi<T>(struct: UapiStruct<T>, bytes: Uint8Array, offset = 0): T {
  const value = struct.decode(bytes, offset);
  if (isRecord(value)) {
    remembered.set(value, {
      struct: struct as AnyStruct,
      bytes: bytes.slice(offset, offset + struct.size),
    });
  }
  return value;
}

function assignInto(
  target: Record<string, unknown>,
  source: Record<string, unknown>,
  struct: AnyStruct,
): void {
  for (const f of struct.fields) {
    const src = source[f.name];
    const dst = target[f.name];
    const nested = isScalar(f.type) ? undefined : f.type;
    if (f.count === undefined) {
      if (nested !== undefined && isRecord(dst) && isRecord(src)) assignInto(dst, src, nested);
      else target[f.name] = src;
      continue;
    }
    if (!Array.isArray(dst) || !Array.isArray(src)) {
      target[f.name] = src;
      continue;
    }
    dst.length = src.length;
    for (let i = 0; i < src.length; i++) {
      const s: unknown = src[i];
      const d: unknown = dst[i];
      if (nested !== undefined && isRecord(d) && isRecord(s)) assignInto(d, s, nested);
      else dst[i] = s;
    }
  }
}

/**
 * Update an existing object in place from bytes, as user space's struct reads after the kernel
 * wrote it: every field is set (fields and union members that were missing are added), nested
 * objects and arrays already in `target` are updated in place so references to them stay valid,
 * and `target` remembers the bytes (see {@link decodeUapi}).
 *
 * @param struct - the layout
 * @param target - the object to update
 * @param bytes - the buffer
 * @param offset - where the struct starts; default 0
 * @returns `target`, now complete
 * @throws RangeError if `bytes` is too short
 */
export function syncUapi<T>(struct: UapiStruct<T>, target: UapiInput<T>, bytes: Uint8Array, offset = 0): T {
  const decoded = struct.decode(bytes, offset);
  if (!isRecord(target) || !isRecord(decoded)) return decoded;
  assignInto(target, decoded, struct as AnyStruct);
  remembered.set(target, { struct: struct as AnyStruct, bytes: bytes.slice(offset, offset + struct.size) });
  return target as T;
}
