/**
 * The `/dev/ioasid` user ABI (include/uapi/linux/ioasid.h of RFC patch 18/18 "ioasid: Add
 * /dev/ioasid for userspace", as carried in Intel's DCP tree): ioctl numbers and struct layouts.
 */

import { _IO, defineUapiStruct, type UapiStruct } from '@iommu-ts/base';

/** The ioctl magic of `/dev/ioasid` (`IOASID_TYPE`): the character `'i'`, 0x69. */
export const IOASID_TYPE = 0x69;
/** First command number of `/dev/ioasid` (`IOASID_BASE`). */
export const IOASID_BASE = 100;
/** The API version {@link IOASID_GET_API_VERSION} reports (`IOASID_API_VERSION`). */
export const IOASID_API_VERSION = 0;
/** Number of IOASID bits user space may use, reported by {@link IOASID_GET_INFO}: IDs are below 2^31. */
export const IOASID_USER_BITS = 31;
/** Quota of the MM-type set `/dev/ioasid` creates for each process. */
export const IOASID_USER_QUOTA = 1000;

/**
 * `IOASID_GET_API_VERSION`, `_IO('i', 100)` = 0x6964: no argument; returns
 * {@link IOASID_API_VERSION}.
 */
export const IOASID_GET_API_VERSION = _IO(IOASID_TYPE, IOASID_BASE + 0);
/**
 * `IOASID_GET_INFO`, `_IO('i', 101)` = 0x6965: argument `struct ioasid_info` (in: argsz, flags;
 * out: the whole struct, with `ioasid_bits`); returns 0.
 */
export const IOASID_GET_INFO = _IO(IOASID_TYPE, IOASID_BASE + 1);
/**
 * `IOASID_REQUEST_ALLOC`, `_IO('i', 102)` = 0x6966: argument `struct ioasid_alloc_request`;
 * returns the new IOASID.
 */
export const IOASID_REQUEST_ALLOC = _IO(IOASID_TYPE, IOASID_BASE + 2);
/** `IOASID_REQUEST_FREE`, `_IO('i', 103)` = 0x6967: argument a pointer to an `int` IOASID; returns 0. */
export const IOASID_REQUEST_FREE = _IO(IOASID_TYPE, IOASID_BASE + 3);

/** `struct ioasid_info` in plain-object form. */
export interface IoasidUserInfo {
  /** Size of the struct as user space knows it, in bytes (at least 12). */
  argsz: number;
  /** Must be 0. */
  flags: number;
  /** Output: number of usable IOASID bits ({@link IOASID_USER_BITS}). */
  ioasid_bits: number;
}

/** The `range` member of `struct ioasid_alloc_request`: inclusive bounds. */
export interface IoasidUserAllocRange {
  /** Lowest acceptable IOASID. */
  min: number;
  /** Highest acceptable IOASID (inclusive). */
  max: number;
}

/** `struct ioasid_alloc_request` in plain-object form. */
export interface IoasidUserAllocRequest {
  /** Size of the struct as user space knows it, in bytes (at least 16). */
  argsz: number;
  /** Must be 0. */
  flags: number;
  /** The acceptable IOASID range. */
  range: IoasidUserAllocRange;
}

/**
 * Layout of `struct ioasid_info`: argsz u32 at 0, flags u32 at 4, ioasid_bits u32 at 8; sizeof 12.
 */
export const ioasidInfoStruct: UapiStruct<IoasidUserInfo> = defineUapiStruct({
  name: 'ioasid_info',
  size: 12,
  fields: [
    { name: 'argsz', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'ioasid_bits', offset: 8, type: 'u32' },
  ],
});

/** Layout of the anonymous `range` struct inside `ioasid_alloc_request`: min u32 at 0, max u32 at 4. */
export const ioasidAllocRangeStruct: UapiStruct<IoasidUserAllocRange> = defineUapiStruct({
  name: 'ioasid_alloc_request.range',
  size: 8,
  fields: [
    { name: 'min', offset: 0, type: 'u32' },
    { name: 'max', offset: 4, type: 'u32' },
  ],
});

/**
 * Layout of `struct ioasid_alloc_request`: argsz u32 at 0, flags u32 at 4, range.min u32 at 8,
 * range.max u32 at 12; sizeof 16.
 */
export const ioasidAllocRequestStruct: UapiStruct<IoasidUserAllocRequest> = defineUapiStruct({
  name: 'ioasid_alloc_request',
  size: 16,
  fields: [
    { name: 'argsz', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'range', offset: 8, type: ioasidAllocRangeStruct },
  ],
});
