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

type AnyStruct = UapiStruct<unknown>;

// Element kinds of a field, as small integers so that the hot paths switch on a number.
const K_U8 = 0;
const K_S8 = 1;
const K_U16 = 2;
const K_S16 = 3;
const K_U32 = 4;
const K_S32 = 5;
const K_U64 = 6;
const K_S64 = 7;
const K_STRUCT = 8;

const SCALAR_KIND: Readonly<Record<UapiScalarType, number>> = {
  u8: K_U8,
  s8: K_S8,
  u16: K_U16,
  s16: K_S16,
  u32: K_U32,
  s32: K_S32,
  u64: K_U64,
  s64: K_S64,
};

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

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const S64_MIN = -0x8000_0000_0000_0000n;
const S64_MAX = 0x7fff_ffff_ffff_ffffn;
const TWO_32 = 2 ** 32;

/** One field of a layout, with what encoding and decoding need precomputed. */
interface FieldPlan {
  readonly name: string;
  readonly offset: number;
  /** One of the `K_*` kinds. */
  readonly kind: number;
  /** The C type name of a scalar field, for messages; undefined for a nested struct. */
  readonly scalar: UapiScalarType | undefined;
  /** The nested struct's plan; undefined for a scalar field. */
  readonly nested: StructPlan | undefined;
  /** Number of array elements; -1 for a single value. */
  readonly count: number;
  /** Size of one element in bytes. */
  readonly step: number;
  /** Size of the whole field in bytes. */
  readonly bytes: number;
}

/** A run of fields whose bytes overlap (a union), or a single field. */
interface FieldGroup {
  readonly start: number;
  readonly end: number;
  /** The members, in definition order: it decides which member wins an overlap. */
  readonly fields: readonly FieldPlan[];
  /** The field of a group that is not a union; undefined for a union. */
  readonly single: FieldPlan | undefined;
}

/** Everything the codec needs to know about one layout, computed once. */
interface StructPlan {
  readonly struct: AnyStruct;
  readonly name: string;
  readonly size: number;
  /** The fields in definition order. */
  readonly fields: readonly FieldPlan[];
  /** The fields grouped by overlapping byte ranges, in offset order. */
  readonly groups: readonly FieldGroup[];
  /** Whether this struct or one nested in it (at any depth) has a union. */
  readonly hasUnion: boolean;
  /**
   * The bytes no field covers at any depth, as `[start, end)` pairs: the only bytes, in a struct
   * without unions, where remembered bytes can make a difference.
   */
  readonly padding: readonly number[];
}

/** Bytes each struct object was last synchronised with: its "memory" between calls. */
const remembered = new WeakMap<object, { readonly struct: AnyStruct; readonly bytes: Uint8Array }>();
const planCache = new WeakMap<AnyStruct, StructPlan>();

function isScalar(type: UapiFieldDef['type']): type is UapiScalarType {
  return typeof type === 'string';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Mark in `covered` the bytes the fields of `plan` cover when it starts at `at`. */
function markCovered(plan: StructPlan, covered: Uint8Array, at: number): void {
  for (const g of plan.groups) {
    for (const f of g.fields) {
      const n = f.count < 0 ? 1 : f.count;
      for (let i = 0; i < n; i++) {
        const pos = at + f.offset + i * f.step;
        if (f.nested === undefined) covered.fill(1, pos, pos + f.step);
        else markCovered(f.nested, covered, pos);
      }
    }
  }
}

/** The plan of a layout, built on first use. */
function planOf(struct: AnyStruct): StructPlan {
  const cached = planCache.get(struct);
  if (cached !== undefined) return cached;
  const order = new Map(struct.fields.map((f, i) => [f, i] as const));
  const sorted = [...struct.fields].sort((a, b) => a.offset - b.offset);
  const raw: { start: number; end: number; fields: UapiFieldDef[] }[] = [];
  for (const f of sorted) {
    const step = isScalar(f.type) ? SCALAR_SIZE[f.type] : f.type.size;
    const end = f.offset + step * (f.count ?? 1);
    const last = raw.at(-1);
    if (last !== undefined && f.offset < last.end) {
      last.fields.push(f);
      last.end = Math.max(last.end, end);
    } else {
      raw.push({ start: f.offset, end, fields: [f] });
    }
  }
  let hasUnion = false;
  const plans = new Map<UapiFieldDef, FieldPlan>();
  for (const f of struct.fields) {
    const nested = isScalar(f.type) ? undefined : planOf(f.type as AnyStruct);
    if (nested?.hasUnion === true) hasUnion = true;
    const step = isScalar(f.type) ? SCALAR_SIZE[f.type] : f.type.size;
    plans.set(f, {
      name: f.name,
      offset: f.offset,
      kind: isScalar(f.type) ? SCALAR_KIND[f.type] : K_STRUCT,
      scalar: isScalar(f.type) ? f.type : undefined,
      nested,
      count: f.count ?? -1,
      step,
      bytes: step * (f.count ?? 1),
    });
  }
  const planFor = (f: UapiFieldDef): FieldPlan => plans.get(f) as FieldPlan;
  const groups: FieldGroup[] = raw.map((g) => {
    g.fields.sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0));
    const fields = g.fields.map(planFor);
    if (fields.length > 1) hasUnion = true;
    return { start: g.start, end: g.end, fields, single: fields.length === 1 ? fields[0] : undefined };
  });
  const plan: { -readonly [K in keyof StructPlan]: StructPlan[K] } = {
    struct,
    name: struct.name,
    size: struct.size,
    fields: struct.fields.map(planFor),
    groups,
    hasUnion,
    padding: [],
  };
  const covered = new Uint8Array(struct.size);
  markCovered(plan, covered, 0);
  const padding: number[] = [];
  for (let i = 0; i < covered.length; i++) {
    if (covered[i] !== 0) continue;
    let j = i;
    while (j < covered.length && covered[j] === 0) j++;
    padding.push(i, j);
    i = j;
  }
  plan.padding = padding;
  planCache.set(struct, plan);
  return plan;
}

/**
 * Where a value sits, for messages: the struct name, then field names (strings) and array indexes
 * (numbers) of the nested structs on the way down. Turned into text only when something throws.
 */
type Path = (string | number)[];

function pathText(path: Path, name?: string, index = -1): string {
  let text = '';
  for (const seg of path) {
    if (typeof seg === 'number') text += `[${seg}]`;
    else text = text === '' ? seg : `${text}.${seg}`;
  }
  if (name !== undefined) text += `.${name}`;
  if (index >= 0) text += `[${index}]`;
  return text;
}

function doesNotFit(f: FieldPlan, value: number | bigint, path: Path, index: number): RangeError {
  return new RangeError(`${pathText(path, f.name, index)} = ${value} does not fit ${f.scalar}`);
}

/** An 8-byte staging area for turning 64-bit `bigint`s into bytes. */
const wideView = new DataView(new ArrayBuffer(8));
const wideBytes = new Uint8Array(wideView.buffer);

/**
 * Store the low 32 bits of the integer `v` little-endian at `at`. Bytes are written one by one
 * (a typed array store keeps the low 8 bits): no `DataView` over `out`, whose creation would move a
 * small array's bytes off the heap.
 */
function put32(out: Uint8Array, at: number, v: number): void {
  out[at] = v;
  out[at + 1] = v >>> 8;
  out[at + 2] = v >>> 16;
  out[at + 3] = v >>> 24;
}

function put64(out: Uint8Array, at: number, value: bigint, signed: boolean): void {
  if (signed) wideView.setBigInt64(0, value, true);
  else wideView.setBigUint64(0, value, true);
  for (let i = 0; i < 8; i++) out[at + i] = wideBytes[i] as number;
}

/** Write one scalar element of field `f` at `at`, after checking its kind and range. */
function writeScalar(
  out: Uint8Array,
  at: number,
  f: FieldPlan,
  value: unknown,
  path: Path,
  index: number,
): void {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new RangeError(`${pathText(path, f.name, index)} = ${value} is not a safe integer`);
    }
    switch (f.kind) {
      case K_U8:
        if (value < 0 || value > 0xff) break;
        out[at] = value;
        return;
      case K_S8:
        if (value < -0x80 || value > 0x7f) break;
        out[at] = value;
        return;
      case K_U16:
        if (value < 0 || value > 0xffff) break;
        out[at] = value;
        out[at + 1] = value >>> 8;
        return;
      case K_S16:
        if (value < -0x8000 || value > 0x7fff) break;
        out[at] = value;
        out[at + 1] = value >>> 8;
        return;
      case K_U32:
        if (value < 0 || value > 0xffff_ffff) break;
        put32(out, at, value);
        return;
      case K_S32:
        if (value < -0x8000_0000 || value > 0x7fff_ffff) break;
        put32(out, at, value);
        return;
      case K_U64:
        if (value < 0) break;
        put32(out, at, value);
        put32(out, at + 4, Math.floor(value / TWO_32));
        return;
      default:
        // s64: every safe integer fits. The low word is the value modulo 2^32, the high word
        // its floor division (negative for negative values), as two's complement wants.
        put32(out, at, value);
        put32(out, at + 4, Math.floor(value / TWO_32));
        return;
    }
    throw doesNotFit(f, value, path, index);
  }
  if (typeof value === 'bigint') {
    switch (f.kind) {
      case K_U64:
        if (value < 0n || value > U64_MAX) break;
        put64(out, at, value, false);
        return;
      case K_S64:
        if (value < S64_MIN || value > S64_MAX) break;
        put64(out, at, value, true);
        return;
      default:
        // A small field given a bigint: check it in range, then write it as a number.
        if (value < -0x8000_0000n || value > 0xffff_ffffn) break;
        writeScalar(out, at, f, Number(value), path, index);
        return;
    }
    throw doesNotFit(f, value, path, index);
  }
  const wide = f.kind === K_U64 || f.kind === K_S64;
  throw new TypeError(`${pathText(path, f.name, index)} must be a ${wide ? 'bigint' : 'number'}`);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Write one element (scalar or nested struct) of field `f` at `at` in `out`. `base` is the
 * element's remembered bytes, if any, used to resolve unions inside a nested struct; `index` is the
 * element's array index, -1 for a single value.
 */
function writeElement(
  f: FieldPlan,
  value: unknown,
  out: Uint8Array,
  at: number,
  base: Uint8Array | undefined,
  path: Path,
  index: number,
): void {
  if (f.nested === undefined) {
    writeScalar(out, at, f, value, path, index);
    return;
  }
  path.push(f.name);
  if (index >= 0) path.push(index);
  encodeStruct(f.nested, value, out, at, base, path);
  path.length -= index >= 0 ? 2 : 1;
}

/** Write a field (single element or fixed array) starting at `at`. */
function writeField(
  f: FieldPlan,
  value: unknown,
  out: Uint8Array,
  at: number,
  base: Uint8Array | undefined,
  path: Path,
): void {
  if (f.count < 0) {
    writeElement(f, value, out, at, base, path, -1);
    return;
  }
  if (!Array.isArray(value)) throw new TypeError(`${pathText(path, f.name)} must be an array of ${f.count}`);
  if (value.length > f.count) {
    throw new RangeError(`${pathText(path, f.name)} has ${value.length} elements, at most ${f.count}`);
  }
  const step = f.step;
  for (let i = 0; i < f.count; i++) {
    const e: unknown = value[i];
    const pos = at + i * step;
    if (e === undefined) {
      out.fill(0, pos, pos + step);
    } else {
      const eb =
        base === undefined || f.nested === undefined ? undefined : base.subarray(i * step, (i + 1) * step);
      writeElement(f, e, out, pos, eb, path, i);
    }
  }
}

/** The remembered bytes of field `f` inside its struct's `base`, where they can matter. */
function fieldBase(f: FieldPlan, base: Uint8Array | undefined): Uint8Array | undefined {
  return base === undefined || f.nested === undefined
    ? undefined
    : base.subarray(f.offset, f.offset + f.bytes);
}

function encodeStruct(
  plan: StructPlan,
  value: unknown,
  out: Uint8Array,
  off: number,
  base: Uint8Array | undefined,
  path: Path,
): void {
  if (!isRecord(value)) throw new TypeError(`${pathText(path)} is not an object`);
  if (base !== undefined) out.set(base, off);
  else out.fill(0, off, off + plan.size);
  const groups = plan.groups;
  for (let gi = 0; gi < groups.length; gi++) {
    const g = groups[gi] as FieldGroup;
    const only = g.single;
    if (only !== undefined) {
      // A plain field: written if present, else 0 (already 0 unless there are remembered bytes).
      const v = value[only.name];
      if (v !== undefined) writeField(only, v, out, off + only.offset, fieldBase(only, base), path);
      else if (base !== undefined) out.fill(0, off + g.start, off + g.end);
      continue;
    }
    const fields = g.fields;
    let present = 0;
    for (const f of fields) if (value[f.name] !== undefined) present++;
    if (present === 0 || base === undefined) {
      // Nothing present, or a union without remembered bytes: write what is present, in order.
      out.fill(0, off + g.start, off + g.end);
      for (const f of fields) {
        const v = value[f.name];
        if (v !== undefined) writeField(f, v, out, off + f.offset, undefined, path);
      }
      continue;
    }
    // A union with remembered bytes: only members that changed since are written.
    for (const f of fields) {
      const v = value[f.name];
      if (v === undefined) continue;
      const fb = base.subarray(f.offset, f.offset + f.bytes);
      const scratch = new Uint8Array(fb.length);
      writeField(f, v, scratch, 0, fb, path);
      if (!sameBytes(scratch, fb)) out.set(scratch, off + f.offset);
    }
  }
}

/** Whether bytes at `offset` differ from what encoding their decoded object without memory gives. */
function needsMemory(plan: StructPlan, bytes: Uint8Array, offset: number): boolean {
  if (plan.hasUnion) return true;
  const pad = plan.padding;
  for (let i = 0; i < pad.length; i += 2) {
    const end = offset + (pad[i + 1] as number);
    for (let j = offset + (pad[i] as number); j < end; j++) if (bytes[j] !== 0) return true;
  }
  return false;
}

/**
 * Let `value` remember the bytes at `offset`. Only structs with a union (or bytes set in padding)
 * need them: for the others encoding without memory gives the same bytes, so nothing is kept.
 */
function remember(plan: StructPlan, value: object, bytes: Uint8Array, offset: number): void {
  if (needsMemory(plan, bytes, offset)) {
    remembered.set(value, { struct: plan.struct, bytes: bytes.slice(offset, offset + plan.size) });
  } else {
    remembered.delete(value);
  }
}

/** The remembered bytes of `value` for `plan`'s struct, if any can matter. */
function memoryOf(plan: StructPlan, value: unknown): Uint8Array | undefined {
  if (!plan.hasUnion && plan.padding.length === 0) return undefined;
  const memory = isRecord(value) ? remembered.get(value) : undefined;
  return memory !== undefined && memory.struct === plan.struct ? memory.bytes : undefined;
}

function encodeWith(
  plan: StructPlan,
  value: unknown,
  base: Uint8Array | undefined,
  into: Uint8Array | undefined,
  offset: number,
): Uint8Array {
  const size = plan.size;
  if (into === undefined) {
    // A new buffer: nobody sees it if encoding throws, so encode in place.
    const out = new Uint8Array(size);
    encodeStruct(plan, value, out, 0, base, [plan.name]);
    return out;
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + size > into.length) {
    throw new RangeError(`struct ${plan.name}: ${into.length} bytes cannot hold it at offset ${offset}`);
  }
  const scratch = new Uint8Array(size);
  encodeStruct(plan, value, scratch, 0, base, [plan.name]);
  into.set(scratch, offset);
  return into;
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
  const plan = planOf(struct as AnyStruct);
  if (into === undefined && offset !== 0) {
    throw new RangeError(`struct ${plan.name}: ${plan.size} bytes cannot hold it at offset ${offset}`);
  }
  return encodeWith(plan, value, memoryOf(plan, value), into, offset);
}

/**
 * Encode a struct's plain object as {@link encodeUapi} does, resolving unions against `base`
 * rather than the object's remembered bytes: the ioctl path's copy of a struct it decoded from
 * `base` itself (so the object needs no memory of its own).
 *
 * @param struct - the layout
 * @param value - the object
 * @param base - the bytes `value` was decoded from (`struct.size` bytes)
 * @returns a new buffer of `struct.size` bytes
 * @throws TypeError or RangeError as {@link encodeUapi}
 */
export function encodeUapiFrom<T>(struct: UapiStruct<T>, value: UapiInput<T>, base: Uint8Array): Uint8Array {
  const plan = planOf(struct as AnyStruct);
  return encodeWith(plan, value, plan.hasUnion || plan.padding.length > 0 ? base : undefined, undefined, 0);
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
  if (isRecord(value)) remember(planOf(struct as AnyStruct), value, bytes, offset);
  return value;
}

function assignInto(
  target: Record<string, unknown>,
  source: Record<string, unknown>,
  plan: StructPlan,
): void {
  const fields = plan.fields;
  for (let fi = 0; fi < fields.length; fi++) {
    const f = fields[fi] as FieldPlan;
    const src = source[f.name];
    const nested = f.nested;
    if (f.count < 0) {
      if (nested !== undefined) {
        const dst = target[f.name];
        if (isRecord(dst) && isRecord(src)) {
          assignInto(dst, src, nested);
          continue;
        }
      }
      target[f.name] = src;
      continue;
    }
    const dst = target[f.name];
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
  const plan = planOf(struct as AnyStruct);
  assignInto(target, decoded, plan);
  remember(plan, target, bytes, offset);
  return target as T;
}
