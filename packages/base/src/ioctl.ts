/**
 * ioctl request-number encoding of the generic Linux ABI (include/uapi/asm-generic/ioctl.h), used by
 * x86-64 and arm64.
 *
 * A request number packs four fields into 32 bits: `nr` (bits 7:0), `type` (bits 15:8, the
 * driver's "magic" character), `size` (bits 29:16, the argument size in bytes) and `dir` (bits
 * 31:30, the data-transfer direction seen from user space). All encoders return unsigned 32-bit
 * numbers, so a request with the READ bit set is a positive number above 2^31 rather than a negative
 * `int`.
 */

/** Width of the `nr` field in bits (`_IOC_NRBITS`). */
export const _IOC_NRBITS = 8;
/** Width of the `type` field in bits (`_IOC_TYPEBITS`). */
export const _IOC_TYPEBITS = 8;
/** Width of the `size` field in bits (`_IOC_SIZEBITS`, generic ABI). */
export const _IOC_SIZEBITS = 14;
/** Width of the `dir` field in bits (`_IOC_DIRBITS`, generic ABI). */
export const _IOC_DIRBITS = 2;

/** Bit position of the `nr` field (`_IOC_NRSHIFT`). */
export const _IOC_NRSHIFT = 0;
/** Bit position of the `type` field (`_IOC_TYPESHIFT`). */
export const _IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS;
/** Bit position of the `size` field (`_IOC_SIZESHIFT`). */
export const _IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS;
/** Bit position of the `dir` field (`_IOC_DIRSHIFT`). */
export const _IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS;

/** Mask of the `nr` field after shifting down (`_IOC_NRMASK`, 0xff). */
export const _IOC_NRMASK = (1 << _IOC_NRBITS) - 1;
/** Mask of the `type` field after shifting down (`_IOC_TYPEMASK`, 0xff). */
export const _IOC_TYPEMASK = (1 << _IOC_TYPEBITS) - 1;
/** Mask of the `size` field after shifting down (`_IOC_SIZEMASK`, 0x3fff). */
export const _IOC_SIZEMASK = (1 << _IOC_SIZEBITS) - 1;
/** Mask of the `dir` field after shifting down (`_IOC_DIRMASK`, 0x3). */
export const _IOC_DIRMASK = (1 << _IOC_DIRBITS) - 1;

/** Direction: no data transfer (`_IOC_NONE`, 0). */
export const _IOC_NONE = 0;
/** Direction: user space writes, the kernel reads the argument (`_IOC_WRITE`, 1). */
export const _IOC_WRITE = 1;
/** Direction: the kernel writes, user space reads the argument (`_IOC_READ`, 2). */
export const _IOC_READ = 2;

/**
 * The `type` (magic) of a request: a number 0..255, or a one-character string whose character code
 * is 0..255 (`'i'` is 0x69, `';'` is 0x3b).
 */
export type IoctlType = number | string;

/**
 * An argument size: a byte count, or anything with a `size` in bytes (such as a struct layout from
 * `defineUapiStruct`), standing for C's `sizeof(type)`.
 */
export type IoctlSize = number | { readonly size: number };

function checkField(what: string, value: number, mask: number): number {
  if (!Number.isInteger(value) || value < 0 || value > mask) {
    throw new RangeError(`ioctl ${what} ${value} does not fit 0..${mask}`);
  }
  return value;
}

function typeCode(type: IoctlType): number {
  if (typeof type === 'string') {
    if (type.length !== 1) throw new RangeError(`ioctl type must be one character, got '${type}'`);
    return checkField('type', type.charCodeAt(0), _IOC_TYPEMASK);
  }
  return checkField('type', type, _IOC_TYPEMASK);
}

function sizeBytes(size: IoctlSize): number {
  return checkField('size', typeof size === 'number' ? size : size.size, _IOC_SIZEMASK);
}

/**
 * Build a request number from its four fields (`_IOC`).
 *
 * @param dir - direction bits: {@link _IOC_NONE}, {@link _IOC_WRITE}, {@link _IOC_READ} or
 *   `_IOC_READ | _IOC_WRITE`
 * @param type - the magic: a number 0..255 or a one-character string
 * @param nr - the command number 0..255
 * @param size - the argument size in bytes, 0..0x3fff (or an object with a `size`)
 * @returns the request as an unsigned 32-bit number
 * @throws RangeError if a field does not fit its width (the kernel header rejects such uses at
 *   compile time)
 */
export function _IOC(dir: number, type: IoctlType, nr: number, size: IoctlSize): number {
  const d = checkField('dir', dir, _IOC_DIRMASK);
  const t = typeCode(type);
  const n = checkField('nr', nr, _IOC_NRMASK);
  const s = sizeBytes(size);
  return ((d << _IOC_DIRSHIFT) | (s << _IOC_SIZESHIFT) | (t << _IOC_TYPESHIFT) | (n << _IOC_NRSHIFT)) >>> 0;
}

/**
 * A request without an argument struct in its number (`_IO`): direction and size are 0, so the
 * value is `(type << 8) | nr`. Example: `_IO(';', 0x80)` is iommufd's `IOMMU_DESTROY`, 0x3b80.
 *
 * @param type - the magic: a number 0..255 or a one-character string
 * @param nr - the command number 0..255
 * @returns the request as an unsigned 32-bit number
 * @throws RangeError if a field does not fit
 */
export function _IO(type: IoctlType, nr: number): number {
  return _IOC(_IOC_NONE, type, nr, 0);
}

/**
 * A request whose argument the kernel writes for user space to read (`_IOR`).
 *
 * @param type - the magic: a number 0..255 or a one-character string
 * @param nr - the command number 0..255
 * @param size - the argument size in bytes (C passes the type and uses its `sizeof`)
 * @returns the request as an unsigned 32-bit number
 * @throws RangeError if a field does not fit
 */
export function _IOR(type: IoctlType, nr: number, size: IoctlSize): number {
  return _IOC(_IOC_READ, type, nr, size);
}

/**
 * A request whose argument user space writes for the kernel to read (`_IOW`).
 *
 * @param type - the magic: a number 0..255 or a one-character string
 * @param nr - the command number 0..255
 * @param size - the argument size in bytes
 * @returns the request as an unsigned 32-bit number
 * @throws RangeError if a field does not fit
 */
export function _IOW(type: IoctlType, nr: number, size: IoctlSize): number {
  return _IOC(_IOC_WRITE, type, nr, size);
}

/**
 * A request whose argument travels both ways (`_IOWR`).
 *
 * @param type - the magic: a number 0..255 or a one-character string
 * @param nr - the command number 0..255
 * @param size - the argument size in bytes
 * @returns the request as an unsigned 32-bit number
 * @throws RangeError if a field does not fit
 */
export function _IOWR(type: IoctlType, nr: number, size: IoctlSize): number {
  return _IOC(_IOC_READ | _IOC_WRITE, type, nr, size);
}

/**
 * The direction bits of a request (`_IOC_DIR`).
 * @param request - a request number (taken modulo 2^32, so a negative `int` form works too)
 * @returns 0..3
 */
export function _IOC_DIR(request: number): number {
  return ((request >>> 0) >>> _IOC_DIRSHIFT) & _IOC_DIRMASK;
}

/**
 * The type (magic) byte of a request (`_IOC_TYPE`).
 * @param request - a request number
 * @returns 0..255
 */
export function _IOC_TYPE(request: number): number {
  return ((request >>> 0) >>> _IOC_TYPESHIFT) & _IOC_TYPEMASK;
}

/**
 * The command number of a request (`_IOC_NR`).
 * @param request - a request number
 * @returns 0..255
 */
export function _IOC_NR(request: number): number {
  return ((request >>> 0) >>> _IOC_NRSHIFT) & _IOC_NRMASK;
}

/**
 * The argument size in bytes encoded in a request (`_IOC_SIZE`).
 * @param request - a request number
 * @returns 0..0x3fff
 */
export function _IOC_SIZE(request: number): number {
  return ((request >>> 0) >>> _IOC_SIZESHIFT) & _IOC_SIZEMASK;
}
