/**
 * The selftest uAPI of iommufd (drivers/iommu/iommufd/iommufd_test.h, as of the kernel the fact
 * digest covers, ops 1 to 21): `IOMMU_TEST_CMD`, its operations and flags, `struct iommu_test_cmd`
 * with its named union, the mock driver's data structs and type values, and the constants of the
 * mock IOMMU (aperture and page sizes) that tests compute with.
 *
 * Addresses and sizes of the mock IOMMU (`MOCK_APERTURE_*`, `MOCK_*PAGE_SIZE`) are `bigint`,
 * like the `__u64` IOVA and length fields they are used in; everything else is a `number`.
 */

import { _IO, defineUapiStruct, type UapiStruct } from '@iommu-ts/base';
import { PAGE_SIZE } from '@iommu-ts/mm';
import { IOMMUFD_CMD_BASE, IOMMUFD_TYPE } from './uapi.js';
import type { IommufdUapiCommand } from './uapi-structs.js';

/**
 * `IOMMU_TEST_CMD` = `_IO(';', 0x80 + 32)` = 0x3ba0: the selftest ioctl, present only when the file
 * was opened with the selftest option; argument `struct iommu_test_cmd`, operation in `op`.
 */
export const IOMMU_TEST_CMD = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32);

// ---- operations (the anonymous enum of iommufd_test.h) ----

/** Op 1: add a reserved IOVA range to the IOAS `id` (`IOMMU_TEST_OP_ADD_RESERVED`); member `add_reserved`. */
export const IOMMU_TEST_OP_ADD_RESERVED = 1;
/**
 * Op 2: create a mock device, bind it and attach it to the IOAS or HWPT `id`
 * (`IOMMU_TEST_OP_MOCK_DOMAIN`); member `mock_domain`.
 */
export const IOMMU_TEST_OP_MOCK_DOMAIN = 2;
/**
 * Op 3: check that a mock domain maps an IOVA range to given user pages (`IOMMU_TEST_OP_MD_CHECK_MAP`);
 * member `check_map`.
 */
export const IOMMU_TEST_OP_MD_CHECK_MAP = 3;
/** Op 4: check the pin count of user pages (`IOMMU_TEST_OP_MD_CHECK_REFS`); member `check_refs`. */
export const IOMMU_TEST_OP_MD_CHECK_REFS = 4;
/**
 * Op 5: create an in-kernel access on the IOAS `id`, returned as an fd (`IOMMU_TEST_OP_CREATE_ACCESS`);
 * member `create_access`.
 */
export const IOMMU_TEST_OP_CREATE_ACCESS = 5;
/**
 * Op 6: release a pin made by ACCESS_PAGES on the access fd `id` (`IOMMU_TEST_OP_DESTROY_ACCESS_PAGES`);
 * member `destroy_access_pages`.
 */
export const IOMMU_TEST_OP_DESTROY_ACCESS_PAGES = 6;
/** Op 7: pin IOVA pages through the access fd `id` (`IOMMU_TEST_OP_ACCESS_PAGES`); member `access_pages`. */
export const IOMMU_TEST_OP_ACCESS_PAGES = 7;
/** Op 8: copy to or from IOVA through the access fd `id` (`IOMMU_TEST_OP_ACCESS_RW`); member `access_rw`. */
export const IOMMU_TEST_OP_ACCESS_RW = 8;
/**
 * Op 9: set the global size limit of temporary page-frame batches (`IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT`);
 * member `memory_limit`.
 */
export const IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT = 9;
/**
 * Op 10: re-attach the selftest device `id` elsewhere (`IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE`); member
 * `mock_domain_replace`.
 */
export const IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE = 10;
/**
 * Op 11: move the access fd `id` to another IOAS (`IOMMU_TEST_OP_ACCESS_REPLACE_IOAS`); member
 * `access_replace_ioas`.
 */
export const IOMMU_TEST_OP_ACCESS_REPLACE_IOAS = 11;
/**
 * Op 12: MOCK_DOMAIN with mock device flags (`IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS`); member `mock_domain_flags`.
 */
export const IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS = 12;
/** Op 13: mark mock page-table entries of the HWPT `id` dirty (`IOMMU_TEST_OP_DIRTY`); member `dirty`. */
export const IOMMU_TEST_OP_DIRTY = 13;
/**
 * Op 14: check an IOTLB entry of the mock nested HWPT `id` (`IOMMU_TEST_OP_MD_CHECK_IOTLB`); member
 * `check_iotlb`.
 */
export const IOMMU_TEST_OP_MD_CHECK_IOTLB = 14;
/** Op 15: inject a page request from a device (`IOMMU_TEST_OP_TRIGGER_IOPF`); member `trigger_iopf`. */
export const IOMMU_TEST_OP_TRIGGER_IOPF = 15;
/**
 * Op 16: check a cache entry of the mock device `id` (`IOMMU_TEST_OP_DEV_CHECK_CACHE`); member
 * `check_dev_cache`.
 */
export const IOMMU_TEST_OP_DEV_CHECK_CACHE = 16;
/** Op 17: report a virtual event for a device (`IOMMU_TEST_OP_TRIGGER_VEVENT`); member `trigger_vevent`. */
export const IOMMU_TEST_OP_TRIGGER_VEVENT = 17;
/**
 * Op 18: attach a PASID of the selftest device `id` (`IOMMU_TEST_OP_PASID_ATTACH`); member `pasid_attach`.
 */
export const IOMMU_TEST_OP_PASID_ATTACH = 18;
/**
 * Op 19: replace a PASID attachment of the selftest device `id` (`IOMMU_TEST_OP_PASID_REPLACE`); member
 * `pasid_replace`.
 */
export const IOMMU_TEST_OP_PASID_REPLACE = 19;
/**
 * Op 20: detach a PASID of the selftest device `id` (`IOMMU_TEST_OP_PASID_DETACH`); member `pasid_detach`.
 */
export const IOMMU_TEST_OP_PASID_DETACH = 20;
/**
 * Op 21: check which HWPT a PASID of the selftest device `id` uses (`IOMMU_TEST_OP_PASID_CHECK_HWPT`); member
 * `pasid_check`.
 */
export const IOMMU_TEST_OP_PASID_CHECK_HWPT = 21;

// ---- the mock IOMMU's aperture and page sizes ----

/** First IOVA the mock IOMMU translates (`MOCK_APERTURE_START`): `1 << 24`, 0x100_0000. */
export const MOCK_APERTURE_START = 1n << 24n;
/** Last IOVA the mock IOMMU translates, inclusive (`MOCK_APERTURE_LAST`): `(1 << 31) - 1`, 0x7fff_ffff. */
export const MOCK_APERTURE_LAST = (1n << 31n) - 1n;
/** Page size of mock IO page tables, half the CPU page: 2048 bytes (kernel `MOCK_IO_PAGE_SIZE`). */
export const MOCK_IO_PAGE_SIZE = BigInt(PAGE_SIZE / 2);
/** The same size under the name the user-space selftests use (`MOCK_PAGE_SIZE`), 2048 bytes. */
export const MOCK_PAGE_SIZE = MOCK_IO_PAGE_SIZE;
/**
 * Large page of mock domains of `MOCK_FLAGS_DEVICE_HUGE_IOVA` devices: 512 mock pages, 1 MiB
 * (`MOCK_HUGE_PAGE_SIZE`).
 */
export const MOCK_HUGE_PAGE_SIZE = 512n * MOCK_IO_PAGE_SIZE;
/** PASID width of the mock device and IOMMU, in bits (`MOCK_PASID_WIDTH`). */
export const MOCK_PASID_WIDTH = 20;
/** A PASID the PASID-replace tests keep for themselves (`IOMMU_TEST_PASID_RESERVED`). */
export const IOMMU_TEST_PASID_RESERVED = 1024;

// ---- op flags ----

/** ACCESS_PAGES flag: pin for writing (`MOCK_FLAGS_ACCESS_WRITE`, bit 0). */
export const MOCK_FLAGS_ACCESS_WRITE = 1 << 0;
/**
 * ACCESS_PAGES/ACCESS_RW and IOAS_COPY flag for fuzzers: `iova` holds an area index and an offset
 * instead of an address (`MOCK_FLAGS_ACCESS_SYZ`, bit 16).
 */
export const MOCK_FLAGS_ACCESS_SYZ = 1 << 16;
/**
 * ACCESS_RW flag: copy from user memory into IOVA; without it IOVA is read (`MOCK_ACCESS_RW_WRITE`, bit 0).
 */
export const MOCK_ACCESS_RW_WRITE = 1 << 0;
/**
 * ACCESS_RW flag: take the page-pinning path instead of the direct one (`MOCK_ACCESS_RW_SLOW_PATH`, bit 2).
 */
export const MOCK_ACCESS_RW_SLOW_PATH = 1 << 2;
/**
 * CREATE_ACCESS flag: the access pins pages, so it gets an unmap callback
 * (`MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES`, bit 0).
 */
export const MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES = 1 << 0;
/** Mock device flag: the device's IOMMU cannot track dirty pages (`MOCK_FLAGS_DEVICE_NO_DIRTY`, bit 0). */
export const MOCK_FLAGS_DEVICE_NO_DIRTY = 1 << 0;
/**
 * Mock device flag: its domains also support `MOCK_HUGE_PAGE_SIZE` (`MOCK_FLAGS_DEVICE_HUGE_IOVA`, bit 1).
 */
export const MOCK_FLAGS_DEVICE_HUGE_IOVA = 1 << 1;
/** Mock device flag: the device supports PASID (`MOCK_FLAGS_DEVICE_PASID`, bit 2). */
export const MOCK_FLAGS_DEVICE_PASID = 1 << 2;

// ---- mock caches ----

/** Highest IOTLB entry index of a mock nested domain (`MOCK_NESTED_DOMAIN_IOTLB_ID_MAX`). */
export const MOCK_NESTED_DOMAIN_IOTLB_ID_MAX = 3;
/** Number of IOTLB entries of a mock nested domain (`MOCK_NESTED_DOMAIN_IOTLB_NUM`). */
export const MOCK_NESTED_DOMAIN_IOTLB_NUM = 4;
/** Highest cache entry index of a mock device (`MOCK_DEV_CACHE_ID_MAX`). */
export const MOCK_DEV_CACHE_ID_MAX = 3;
/** Number of cache entries of a mock device (`MOCK_DEV_CACHE_NUM`). */
export const MOCK_DEV_CACHE_NUM = 4;
/** Initial value of mock IOTLB entries (`IOMMU_TEST_IOTLB_DEFAULT`), 0xbadbeef. */
export const IOMMU_TEST_IOTLB_DEFAULT = 0xbadbeef;
/** Initial value of mock device cache entries (`IOMMU_TEST_DEV_CACHE_DEFAULT`), 0xbaddad. */
export const IOMMU_TEST_DEV_CACHE_DEFAULT = 0xbaddad;
/**
 * Invalidation entry flag: reset every entry, ignoring the index (`IOMMU_TEST_INVALIDATE_FLAG_ALL`, bit 0).
 */
export const IOMMU_TEST_INVALIDATE_FLAG_ALL = 1 << 0;

// ---- the mock driver's type values ----

/**
 * hw_info type of the mock IOMMU (`IOMMU_HW_INFO_TYPE_SELFTEST`), 0xfeedbeef; data
 * `struct iommu_test_hw_info`.
 */
export const IOMMU_HW_INFO_TYPE_SELFTEST = 0xfeedbeef;
/** Value of `iommu_test_hw_info.test_reg` (`IOMMU_HW_INFO_SELFTEST_REGVAL`), 0xdeadbeef. */
export const IOMMU_HW_INFO_SELFTEST_REGVAL = 0xdeadbeef;
/**
 * HWPT data type of a mock nested HWPT (`IOMMU_HWPT_DATA_SELFTEST`), 0xdead; data
 * `struct iommu_hwpt_selftest`.
 */
export const IOMMU_HWPT_DATA_SELFTEST = 0xdead;
/** Invalidation data type of mock nested HWPTs (`IOMMU_HWPT_INVALIDATE_DATA_SELFTEST`), 0xdeadbeef. */
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
/**
 * An invalidation data type the mock driver rejects (`IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID`),
 * 0xdadbeef.
 */
export const IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;
/**
 * vIOMMU type of the mock driver (`IOMMU_VIOMMU_TYPE_SELFTEST`), 0xdeadbeef; data
 * `struct iommu_viommu_selftest`.
 */
export const IOMMU_VIOMMU_TYPE_SELFTEST = 0xdeadbeef;
/** Invalidation data type of mock vIOMMUs (`IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST`), 0xdeadbeef. */
export const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST = 0xdeadbeef;
/**
 * An invalidation data type mock vIOMMUs reject (`IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID`), 0xdadbeef.
 */
export const IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID = 0xdadbeef;
/**
 * vEVENTQ type of the mock driver (`IOMMU_VEVENTQ_TYPE_SELFTEST`), 0xbeefbeef; data
 * `struct iommu_viommu_event_selftest`.
 */
export const IOMMU_VEVENTQ_TYPE_SELFTEST = 0xbeefbeef;
/** HW queue type of the mock driver (`IOMMU_HW_QUEUE_TYPE_SELFTEST`), 0xdeadbeef. */
export const IOMMU_HW_QUEUE_TYPE_SELFTEST = 0xdeadbeef;
/** Number of HW queues a mock vIOMMU offers (`IOMMU_TEST_HW_QUEUE_MAX`). */
export const IOMMU_TEST_HW_QUEUE_MAX = 2;

// ---- structs ----

/** The `add_reserved` member of the `struct iommu_test_cmd` union, used by `IOMMU_TEST_OP_ADD_RESERVED`. */
export interface IommuTestCmdAddReserved {
  /** First IOVA of the reserved range. */
  start: bigint;
  /** Bytes in the reserved range. */
  length: bigint;
}

/** Layout of `iommu_test_cmd.add_reserved`, sizeof 16; byte offsets: start 0, length 8. */
export const iommuTestCmdAddReservedStruct: UapiStruct<IommuTestCmdAddReserved> = defineUapiStruct({
  name: 'iommu_test_cmd.add_reserved',
  size: 16,
  fields: [
    { name: 'start', offset: 0, type: 'u64' },
    { name: 'length', offset: 8, type: 'u64' },
  ],
});

/** The `mock_domain` member of the `struct iommu_test_cmd` union, used by `IOMMU_TEST_OP_MOCK_DOMAIN`. */
export interface IommuTestCmdMockDomain {
  /** Output: ID of the selftest device object (destroying it removes the mock device). */
  out_stdev_id: number;
  /** Output: ID of the HWPT the device was attached to. */
  out_hwpt_id: number;
  /** Output: ID of the bound device object (the one IOMMU_HWPT_ALLOC and GET_HW_INFO take). */
  out_idev_id: number;
}

/**
 * Layout of `iommu_test_cmd.mock_domain`, sizeof 12; byte offsets: out_stdev_id 0, out_hwpt_id 4,
 * out_idev_id 8.
 */
export const iommuTestCmdMockDomainStruct: UapiStruct<IommuTestCmdMockDomain> = defineUapiStruct({
  name: 'iommu_test_cmd.mock_domain',
  size: 12,
  fields: [
    { name: 'out_stdev_id', offset: 0, type: 'u32' },
    { name: 'out_hwpt_id', offset: 4, type: 'u32' },
    { name: 'out_idev_id', offset: 8, type: 'u32' },
  ],
});

/**
 * The `mock_domain_flags` member of the `struct iommu_test_cmd` union, used by
 * `IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS`.
 */
export interface IommuTestCmdMockDomainFlags {
  /** Output: ID of the selftest device object. */
  out_stdev_id: number;
  /** Output: ID of the HWPT the device was attached to. */
  out_hwpt_id: number;
  /** Output: ID of the bound device object. */
  out_idev_id: number;
  /** A combination of `MOCK_FLAGS_DEVICE_*` flags for the mock device. */
  dev_flags: number;
}

/**
 * Layout of `iommu_test_cmd.mock_domain_flags`, sizeof 16; byte offsets: out_stdev_id 0, out_hwpt_id 4,
 * out_idev_id 8, dev_flags 12.
 */
export const iommuTestCmdMockDomainFlagsStruct: UapiStruct<IommuTestCmdMockDomainFlags> = defineUapiStruct({
  name: 'iommu_test_cmd.mock_domain_flags',
  size: 16,
  fields: [
    { name: 'out_stdev_id', offset: 0, type: 'u32' },
    { name: 'out_hwpt_id', offset: 4, type: 'u32' },
    { name: 'out_idev_id', offset: 8, type: 'u32' },
    { name: 'dev_flags', offset: 12, type: 'u32' },
  ],
});

/**
 * The `mock_domain_replace` member of the `struct iommu_test_cmd` union, used by
 * `IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE`.
 */
export interface IommuTestCmdMockDomainReplace {
  /** Input: the IOAS or HWPT to attach to instead. Output: the HWPT now attached. */
  pt_id: number;
}

/** Layout of `iommu_test_cmd.mock_domain_replace`, sizeof 4; byte offsets: pt_id 0. */
export const iommuTestCmdMockDomainReplaceStruct: UapiStruct<IommuTestCmdMockDomainReplace> =
  defineUapiStruct({
    name: 'iommu_test_cmd.mock_domain_replace',
    size: 4,
    fields: [{ name: 'pt_id', offset: 0, type: 'u32' }],
  });

/** The `check_map` member of the `struct iommu_test_cmd` union, used by `IOMMU_TEST_OP_MD_CHECK_MAP`. */
export interface IommuTestCmdCheckMap {
  /** First IOVA to check. */
  iova: bigint;
  /** Bytes to check. */
  length: bigint;
  /** User address whose pages the range must translate to. */
  uptr: bigint;
}

/** Layout of `iommu_test_cmd.check_map`, sizeof 24; byte offsets: iova 0, length 8, uptr 16. */
export const iommuTestCmdCheckMapStruct: UapiStruct<IommuTestCmdCheckMap> = defineUapiStruct({
  name: 'iommu_test_cmd.check_map',
  size: 24,
  fields: [
    { name: 'iova', offset: 0, type: 'u64' },
    { name: 'length', offset: 8, type: 'u64' },
    { name: 'uptr', offset: 16, type: 'u64' },
  ],
});

/** The `check_refs` member of the `struct iommu_test_cmd` union, used by `IOMMU_TEST_OP_MD_CHECK_REFS`. */
export interface IommuTestCmdCheckRefs {
  /** Bytes of user memory to check. */
  length: bigint;
  /** User address of the memory. */
  uptr: bigint;
  /** Expected pin count of each page. */
  refs: number;
}

/** Layout of `iommu_test_cmd.check_refs`, sizeof 24; byte offsets: length 0, uptr 8, refs 16. */
export const iommuTestCmdCheckRefsStruct: UapiStruct<IommuTestCmdCheckRefs> = defineUapiStruct({
  name: 'iommu_test_cmd.check_refs',
  size: 24,
  fields: [
    { name: 'length', offset: 0, type: 'u64' },
    { name: 'uptr', offset: 8, type: 'u64' },
    { name: 'refs', offset: 16, type: 'u32' },
  ],
});

/**
 * The `create_access` member of the `struct iommu_test_cmd` union, used by `IOMMU_TEST_OP_CREATE_ACCESS`.
 */
export interface IommuTestCmdCreateAccess {
  /** Output: file descriptor of the new access. */
  out_access_fd: number;
  /** A combination of `MOCK_FLAGS_ACCESS_CREATE_*` flags. */
  flags: number;
}

/** Layout of `iommu_test_cmd.create_access`, sizeof 8; byte offsets: out_access_fd 0, flags 4. */
export const iommuTestCmdCreateAccessStruct: UapiStruct<IommuTestCmdCreateAccess> = defineUapiStruct({
  name: 'iommu_test_cmd.create_access',
  size: 8,
  fields: [
    { name: 'out_access_fd', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
  ],
});

/**
 * The `destroy_access_pages` member of the `struct iommu_test_cmd` union, used by
 * `IOMMU_TEST_OP_DESTROY_ACCESS_PAGES`.
 */
export interface IommuTestCmdDestroyAccessPages {
  /** ID of the pin to release, as ACCESS_PAGES returned it. */
  access_pages_id: number;
}

/** Layout of `iommu_test_cmd.destroy_access_pages`, sizeof 4; byte offsets: access_pages_id 0. */
export const iommuTestCmdDestroyAccessPagesStruct: UapiStruct<IommuTestCmdDestroyAccessPages> =
  defineUapiStruct({
    name: 'iommu_test_cmd.destroy_access_pages',
    size: 4,
    fields: [{ name: 'access_pages_id', offset: 0, type: 'u32' }],
  });

/** The `access_pages` member of the `struct iommu_test_cmd` union, used by `IOMMU_TEST_OP_ACCESS_PAGES`. */
export interface IommuTestCmdAccessPages {
  /** A combination of `MOCK_FLAGS_ACCESS_*` flags. */
  flags: number;
  /** Output: ID of the recorded pin. */
  out_access_pages_id: number;
  /** First IOVA to pin. */
  iova: bigint;
  /** Bytes to pin. */
  length: bigint;
  /** If not 0, user address whose pages the pinned pages must be. */
  uptr: bigint;
}

/**
 * Layout of `iommu_test_cmd.access_pages`, sizeof 32; byte offsets: flags 0, out_access_pages_id 4, iova 8,
 * length 16, uptr 24.
 */
export const iommuTestCmdAccessPagesStruct: UapiStruct<IommuTestCmdAccessPages> = defineUapiStruct({
  name: 'iommu_test_cmd.access_pages',
  size: 32,
  fields: [
    { name: 'flags', offset: 0, type: 'u32' },
    { name: 'out_access_pages_id', offset: 4, type: 'u32' },
    { name: 'iova', offset: 8, type: 'u64' },
    { name: 'length', offset: 16, type: 'u64' },
    { name: 'uptr', offset: 24, type: 'u64' },
  ],
});

/** The `access_rw` member of the `struct iommu_test_cmd` union, used by `IOMMU_TEST_OP_ACCESS_RW`. */
export interface IommuTestCmdAccessRw {
  /** First IOVA to access. */
  iova: bigint;
  /** Bytes to copy. */
  length: bigint;
  /** User address of the buffer copied from or to. */
  uptr: bigint;
  /** A combination of `MOCK_ACCESS_RW_*` flags. */
  flags: number;
}

/** Layout of `iommu_test_cmd.access_rw`, sizeof 32; byte offsets: iova 0, length 8, uptr 16, flags 24. */
export const iommuTestCmdAccessRwStruct: UapiStruct<IommuTestCmdAccessRw> = defineUapiStruct({
  name: 'iommu_test_cmd.access_rw',
  size: 32,
  fields: [
    { name: 'iova', offset: 0, type: 'u64' },
    { name: 'length', offset: 8, type: 'u64' },
    { name: 'uptr', offset: 16, type: 'u64' },
    { name: 'flags', offset: 24, type: 'u32' },
  ],
});

/**
 * The `memory_limit` member of the `struct iommu_test_cmd` union, used by
 * `IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT`.
 */
export interface IommuTestCmdMemoryLimit {
  /** New size limit of temporary page-frame batches, in bytes. */
  limit: number;
}

/** Layout of `iommu_test_cmd.memory_limit`, sizeof 4; byte offsets: limit 0. */
export const iommuTestCmdMemoryLimitStruct: UapiStruct<IommuTestCmdMemoryLimit> = defineUapiStruct({
  name: 'iommu_test_cmd.memory_limit',
  size: 4,
  fields: [{ name: 'limit', offset: 0, type: 'u32' }],
});

/**
 * The `access_replace_ioas` member of the `struct iommu_test_cmd` union, used by
 * `IOMMU_TEST_OP_ACCESS_REPLACE_IOAS`.
 */
export interface IommuTestCmdAccessReplaceIoas {
  /** The IOAS the access moves to. */
  ioas_id: number;
}

/** Layout of `iommu_test_cmd.access_replace_ioas`, sizeof 4; byte offsets: ioas_id 0. */
export const iommuTestCmdAccessReplaceIoasStruct: UapiStruct<IommuTestCmdAccessReplaceIoas> =
  defineUapiStruct({
    name: 'iommu_test_cmd.access_replace_ioas',
    size: 4,
    fields: [{ name: 'ioas_id', offset: 0, type: 'u32' }],
  });

/** The `dirty` member of the `struct iommu_test_cmd` union, used by `IOMMU_TEST_OP_DIRTY`. */
export interface IommuTestCmdDirty {
  /** Flags; none are defined. */
  flags: number;
  /** IOVA of the first bit of the bitmap. */
  iova: bigint;
  /** Bytes of IOVA the bitmap covers. */
  length: bigint;
  /** Bytes of IOVA per bit. */
  page_size: bigint;
  /** User address of the bitmap of pages to mark dirty. */
  uptr: bigint;
  /** Output: how many mock page-table entries were marked dirty. */
  out_nr_dirty: bigint;
}

/**
 * Layout of `iommu_test_cmd.dirty`, sizeof 48; byte offsets: flags 0, iova 8, length 16, page_size 24, uptr
 * 32, out_nr_dirty 40.
 */
export const iommuTestCmdDirtyStruct: UapiStruct<IommuTestCmdDirty> = defineUapiStruct({
  name: 'iommu_test_cmd.dirty',
  size: 48,
  fields: [
    { name: 'flags', offset: 0, type: 'u32' },
    { name: 'iova', offset: 8, type: 'u64' },
    { name: 'length', offset: 16, type: 'u64' },
    { name: 'page_size', offset: 24, type: 'u64' },
    { name: 'uptr', offset: 32, type: 'u64' },
    { name: 'out_nr_dirty', offset: 40, type: 'u64' },
  ],
});

/**
 * The `check_iotlb` member of the `struct iommu_test_cmd` union, used by `IOMMU_TEST_OP_MD_CHECK_IOTLB`.
 */
export interface IommuTestCmdCheckIotlb {
  /** Index of the mock IOTLB entry, at most `MOCK_NESTED_DOMAIN_IOTLB_ID_MAX`. */
  id: number;
  /** Expected value of the entry. */
  iotlb: number;
}

/** Layout of `iommu_test_cmd.check_iotlb`, sizeof 8; byte offsets: id 0, iotlb 4. */
export const iommuTestCmdCheckIotlbStruct: UapiStruct<IommuTestCmdCheckIotlb> = defineUapiStruct({
  name: 'iommu_test_cmd.check_iotlb',
  size: 8,
  fields: [
    { name: 'id', offset: 0, type: 'u32' },
    { name: 'iotlb', offset: 4, type: 'u32' },
  ],
});

/** The `trigger_iopf` member of the `struct iommu_test_cmd` union, used by `IOMMU_TEST_OP_TRIGGER_IOPF`. */
export interface IommuTestCmdTriggerIopf {
  /** The device that reports the page request. */
  dev_id: number;
  /** PASID of the request; 0 for a request without PASID. */
  pasid: number;
  /** Page request group index. */
  grpid: number;
  /** A combination of `IOMMU_PGFAULT_PERM_*` bits. */
  perm: number;
  /** The faulting address. */
  addr: bigint;
}

/**
 * Layout of `iommu_test_cmd.trigger_iopf`, sizeof 24; byte offsets: dev_id 0, pasid 4, grpid 8, perm 12,
 * addr 16.
 */
export const iommuTestCmdTriggerIopfStruct: UapiStruct<IommuTestCmdTriggerIopf> = defineUapiStruct({
  name: 'iommu_test_cmd.trigger_iopf',
  size: 24,
  fields: [
    { name: 'dev_id', offset: 0, type: 'u32' },
    { name: 'pasid', offset: 4, type: 'u32' },
    { name: 'grpid', offset: 8, type: 'u32' },
    { name: 'perm', offset: 12, type: 'u32' },
    { name: 'addr', offset: 16, type: 'u64' },
  ],
});

/**
 * The `check_dev_cache` member of the `struct iommu_test_cmd` union, used by
 * `IOMMU_TEST_OP_DEV_CHECK_CACHE`.
 */
export interface IommuTestCmdCheckDevCache {
  /** Index of the mock device cache entry, at most `MOCK_DEV_CACHE_ID_MAX`. */
  id: number;
  /** Expected value of the entry. */
  cache: number;
}

/** Layout of `iommu_test_cmd.check_dev_cache`, sizeof 8; byte offsets: id 0, cache 4. */
export const iommuTestCmdCheckDevCacheStruct: UapiStruct<IommuTestCmdCheckDevCache> = defineUapiStruct({
  name: 'iommu_test_cmd.check_dev_cache',
  size: 8,
  fields: [
    { name: 'id', offset: 0, type: 'u32' },
    { name: 'cache', offset: 4, type: 'u32' },
  ],
});

/**
 * The `trigger_vevent` member of the `struct iommu_test_cmd` union, used by `IOMMU_TEST_OP_TRIGGER_VEVENT`.
 */
export interface IommuTestCmdTriggerVevent {
  /** The device the virtual event is reported for. */
  dev_id: number;
}

/** Layout of `iommu_test_cmd.trigger_vevent`, sizeof 4; byte offsets: dev_id 0. */
export const iommuTestCmdTriggerVeventStruct: UapiStruct<IommuTestCmdTriggerVevent> = defineUapiStruct({
  name: 'iommu_test_cmd.trigger_vevent',
  size: 4,
  fields: [{ name: 'dev_id', offset: 0, type: 'u32' }],
});

/** The `pasid_attach` member of the `struct iommu_test_cmd` union, used by `IOMMU_TEST_OP_PASID_ATTACH`. */
export interface IommuTestCmdPasidAttach {
  /** The PASID to attach (`id` is the selftest device). */
  pasid: number;
  /** The IOAS or HWPT to attach the PASID to. */
  pt_id: number;
}

/** Layout of `iommu_test_cmd.pasid_attach`, sizeof 8; byte offsets: pasid 0, pt_id 4. */
export const iommuTestCmdPasidAttachStruct: UapiStruct<IommuTestCmdPasidAttach> = defineUapiStruct({
  name: 'iommu_test_cmd.pasid_attach',
  size: 8,
  fields: [
    { name: 'pasid', offset: 0, type: 'u32' },
    { name: 'pt_id', offset: 4, type: 'u32' },
  ],
});

/**
 * The `pasid_replace` member of the `struct iommu_test_cmd` union, used by `IOMMU_TEST_OP_PASID_REPLACE`.
 */
export interface IommuTestCmdPasidReplace {
  /** The PASID whose attachment is replaced (`id` is the selftest device). */
  pasid: number;
  /** The IOAS or HWPT to attach instead. */
  pt_id: number;
}

/** Layout of `iommu_test_cmd.pasid_replace`, sizeof 8; byte offsets: pasid 0, pt_id 4. */
export const iommuTestCmdPasidReplaceStruct: UapiStruct<IommuTestCmdPasidReplace> = defineUapiStruct({
  name: 'iommu_test_cmd.pasid_replace',
  size: 8,
  fields: [
    { name: 'pasid', offset: 0, type: 'u32' },
    { name: 'pt_id', offset: 4, type: 'u32' },
  ],
});

/** The `pasid_detach` member of the `struct iommu_test_cmd` union, used by `IOMMU_TEST_OP_PASID_DETACH`. */
export interface IommuTestCmdPasidDetach {
  /** The PASID to detach (`id` is the selftest device). */
  pasid: number;
}

/** Layout of `iommu_test_cmd.pasid_detach`, sizeof 4; byte offsets: pasid 0. */
export const iommuTestCmdPasidDetachStruct: UapiStruct<IommuTestCmdPasidDetach> = defineUapiStruct({
  name: 'iommu_test_cmd.pasid_detach',
  size: 4,
  fields: [{ name: 'pasid', offset: 0, type: 'u32' }],
});

/**
 * The `pasid_check` member of the `struct iommu_test_cmd` union, used by `IOMMU_TEST_OP_PASID_CHECK_HWPT`.
 */
export interface IommuTestCmdPasidCheck {
  /** The PASID to check (`id` is the selftest device). */
  pasid: number;
  /** The HWPT expected on the PASID; 0 for none. */
  hwpt_id: number;
}

/** Layout of `iommu_test_cmd.pasid_check`, sizeof 8; byte offsets: pasid 0, hwpt_id 4. */
export const iommuTestCmdPasidCheckStruct: UapiStruct<IommuTestCmdPasidCheck> = defineUapiStruct({
  name: 'iommu_test_cmd.pasid_check',
  size: 8,
  fields: [
    { name: 'pasid', offset: 0, type: 'u32' },
    { name: 'hwpt_id', offset: 4, type: 'u32' },
  ],
});

/**
 * `struct iommu_test_cmd` in plain-object form: the argument of `IOMMU_TEST_CMD`. The op-specific arguments
 * are a named union: every member object aliases the same 48 bytes from offset 16.
 */
export interface IommuTestCmd {
  /** Size of the struct as user space knows it, in bytes (at least 68). */
  size: number;
  /** The operation: one of the `IOMMU_TEST_OP_*` values. */
  op: number;
  /** The object or fd the operation applies to; its meaning depends on `op`. */
  id: number;
  /** Unused (not checked). */
  __reserved: number;
  /** Union member for `IOMMU_TEST_OP_ADD_RESERVED`; all members share the bytes from offset 16. */
  add_reserved: IommuTestCmdAddReserved;
  /** Union member for `IOMMU_TEST_OP_MOCK_DOMAIN`; all members share the bytes from offset 16. */
  mock_domain: IommuTestCmdMockDomain;
  /** Union member for `IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS`; all members share the bytes from offset 16. */
  mock_domain_flags: IommuTestCmdMockDomainFlags;
  /** Union member for `IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE`; all members share the bytes from offset 16. */
  mock_domain_replace: IommuTestCmdMockDomainReplace;
  /** Union member for `IOMMU_TEST_OP_MD_CHECK_MAP`; all members share the bytes from offset 16. */
  check_map: IommuTestCmdCheckMap;
  /** Union member for `IOMMU_TEST_OP_MD_CHECK_REFS`; all members share the bytes from offset 16. */
  check_refs: IommuTestCmdCheckRefs;
  /** Union member for `IOMMU_TEST_OP_CREATE_ACCESS`; all members share the bytes from offset 16. */
  create_access: IommuTestCmdCreateAccess;
  /** Union member for `IOMMU_TEST_OP_DESTROY_ACCESS_PAGES`; all members share the bytes from offset 16. */
  destroy_access_pages: IommuTestCmdDestroyAccessPages;
  /** Union member for `IOMMU_TEST_OP_ACCESS_PAGES`; all members share the bytes from offset 16. */
  access_pages: IommuTestCmdAccessPages;
  /** Union member for `IOMMU_TEST_OP_ACCESS_RW`; all members share the bytes from offset 16. */
  access_rw: IommuTestCmdAccessRw;
  /** Union member for `IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT`; all members share the bytes from offset 16. */
  memory_limit: IommuTestCmdMemoryLimit;
  /** Union member for `IOMMU_TEST_OP_ACCESS_REPLACE_IOAS`; all members share the bytes from offset 16. */
  access_replace_ioas: IommuTestCmdAccessReplaceIoas;
  /** Union member for `IOMMU_TEST_OP_DIRTY`; all members share the bytes from offset 16. */
  dirty: IommuTestCmdDirty;
  /** Union member for `IOMMU_TEST_OP_MD_CHECK_IOTLB`; all members share the bytes from offset 16. */
  check_iotlb: IommuTestCmdCheckIotlb;
  /** Union member for `IOMMU_TEST_OP_TRIGGER_IOPF`; all members share the bytes from offset 16. */
  trigger_iopf: IommuTestCmdTriggerIopf;
  /** Union member for `IOMMU_TEST_OP_DEV_CHECK_CACHE`; all members share the bytes from offset 16. */
  check_dev_cache: IommuTestCmdCheckDevCache;
  /** Union member for `IOMMU_TEST_OP_TRIGGER_VEVENT`; all members share the bytes from offset 16. */
  trigger_vevent: IommuTestCmdTriggerVevent;
  /** Union member for `IOMMU_TEST_OP_PASID_ATTACH`; all members share the bytes from offset 16. */
  pasid_attach: IommuTestCmdPasidAttach;
  /** Union member for `IOMMU_TEST_OP_PASID_REPLACE`; all members share the bytes from offset 16. */
  pasid_replace: IommuTestCmdPasidReplace;
  /** Union member for `IOMMU_TEST_OP_PASID_DETACH`; all members share the bytes from offset 16. */
  pasid_detach: IommuTestCmdPasidDetach;
  /** Union member for `IOMMU_TEST_OP_PASID_CHECK_HWPT`; all members share the bytes from offset 16. */
  pasid_check: IommuTestCmdPasidCheck;
  /** Marks the end of the struct; its end is the minimum size. */
  last: number;
}

/**
 * Layout of `struct iommu_test_cmd`, sizeof 72; byte offsets: size 0, op 4, id 8, __reserved 12,
 * add_reserved 16, mock_domain 16, mock_domain_flags 16, mock_domain_replace 16, check_map 16, check_refs
 * 16, create_access 16, destroy_access_pages 16, access_pages 16, access_rw 16, memory_limit 16,
 * access_replace_ioas 16, dirty 16, check_iotlb 16, trigger_iopf 16, check_dev_cache 16, trigger_vevent 16,
 * pasid_attach 16, pasid_replace 16, pasid_detach 16, pasid_check 16, last 64.
 */
export const iommuTestCmdStruct: UapiStruct<IommuTestCmd> = defineUapiStruct({
  name: 'iommu_test_cmd',
  size: 72,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'op', offset: 4, type: 'u32' },
    { name: 'id', offset: 8, type: 'u32' },
    { name: '__reserved', offset: 12, type: 'u32' },
    { name: 'add_reserved', offset: 16, type: iommuTestCmdAddReservedStruct },
    { name: 'mock_domain', offset: 16, type: iommuTestCmdMockDomainStruct },
    { name: 'mock_domain_flags', offset: 16, type: iommuTestCmdMockDomainFlagsStruct },
    { name: 'mock_domain_replace', offset: 16, type: iommuTestCmdMockDomainReplaceStruct },
    { name: 'check_map', offset: 16, type: iommuTestCmdCheckMapStruct },
    { name: 'check_refs', offset: 16, type: iommuTestCmdCheckRefsStruct },
    { name: 'create_access', offset: 16, type: iommuTestCmdCreateAccessStruct },
    { name: 'destroy_access_pages', offset: 16, type: iommuTestCmdDestroyAccessPagesStruct },
    { name: 'access_pages', offset: 16, type: iommuTestCmdAccessPagesStruct },
    { name: 'access_rw', offset: 16, type: iommuTestCmdAccessRwStruct },
    { name: 'memory_limit', offset: 16, type: iommuTestCmdMemoryLimitStruct },
    { name: 'access_replace_ioas', offset: 16, type: iommuTestCmdAccessReplaceIoasStruct },
    { name: 'dirty', offset: 16, type: iommuTestCmdDirtyStruct },
    { name: 'check_iotlb', offset: 16, type: iommuTestCmdCheckIotlbStruct },
    { name: 'trigger_iopf', offset: 16, type: iommuTestCmdTriggerIopfStruct },
    { name: 'check_dev_cache', offset: 16, type: iommuTestCmdCheckDevCacheStruct },
    { name: 'trigger_vevent', offset: 16, type: iommuTestCmdTriggerVeventStruct },
    { name: 'pasid_attach', offset: 16, type: iommuTestCmdPasidAttachStruct },
    { name: 'pasid_replace', offset: 16, type: iommuTestCmdPasidReplaceStruct },
    { name: 'pasid_detach', offset: 16, type: iommuTestCmdPasidDetachStruct },
    { name: 'pasid_check', offset: 16, type: iommuTestCmdPasidCheckStruct },
    { name: 'last', offset: 64, type: 'u32' },
  ],
});

/**
 * `struct iommu_test_hw_info` in plain-object form: the hardware information of the mock IOMMU
 * (`IOMMU_HW_INFO_TYPE_SELFTEST`).
 */
export interface IommuTestHwInfo {
  /** Always 0. */
  flags: number;
  /** Always `IOMMU_HW_INFO_SELFTEST_REGVAL`. */
  test_reg: number;
}

/** Layout of `struct iommu_test_hw_info`, sizeof 8; byte offsets: flags 0, test_reg 4. */
export const iommuTestHwInfoStruct: UapiStruct<IommuTestHwInfo> = defineUapiStruct({
  name: 'iommu_test_hw_info',
  size: 8,
  fields: [
    { name: 'flags', offset: 0, type: 'u32' },
    { name: 'test_reg', offset: 4, type: 'u32' },
  ],
});

/**
 * `struct iommu_hwpt_selftest` in plain-object form: the driver data of a mock nested HWPT
 * (`IOMMU_HWPT_DATA_SELFTEST`).
 */
export interface IommuHwptSelftest {
  /** Initial value of every mock IOTLB entry (normally `IOMMU_TEST_IOTLB_DEFAULT`). */
  iotlb: number;
}

/** Layout of `struct iommu_hwpt_selftest`, sizeof 4; byte offsets: iotlb 0. */
export const iommuHwptSelftestStruct: UapiStruct<IommuHwptSelftest> = defineUapiStruct({
  name: 'iommu_hwpt_selftest',
  size: 4,
  fields: [{ name: 'iotlb', offset: 0, type: 'u32' }],
});

/**
 * `struct iommu_hwpt_invalidate_selftest` in plain-object form: one mock nested-HWPT invalidation entry
 * (`IOMMU_HWPT_INVALIDATE_DATA_SELFTEST`).
 */
export interface IommuHwptInvalidateSelftest {
  /** A combination of `IOMMU_TEST_INVALIDATE_FLAG_*` flags. */
  flags: number;
  /** Index of the mock IOTLB entry to reset; ignored with `IOMMU_TEST_INVALIDATE_FLAG_ALL`. */
  iotlb_id: number;
}

/** Layout of `struct iommu_hwpt_invalidate_selftest`, sizeof 8; byte offsets: flags 0, iotlb_id 4. */
export const iommuHwptInvalidateSelftestStruct: UapiStruct<IommuHwptInvalidateSelftest> = defineUapiStruct({
  name: 'iommu_hwpt_invalidate_selftest',
  size: 8,
  fields: [
    { name: 'flags', offset: 0, type: 'u32' },
    { name: 'iotlb_id', offset: 4, type: 'u32' },
  ],
});

/**
 * `struct iommu_viommu_selftest` in plain-object form: the driver data of a mock vIOMMU
 * (`IOMMU_VIOMMU_TYPE_SELFTEST`).
 */
export interface IommuViommuSelftest {
  /** Any value; echoed in `out_data`. */
  in_data: number;
  /** Output: `in_data`. */
  out_data: number;
  /** Output: mmap offset of the mock vIOMMU page. */
  out_mmap_offset: bigint;
  /** Output: mmap length of the mock vIOMMU page. */
  out_mmap_length: bigint;
}

/**
 * Layout of `struct iommu_viommu_selftest`, sizeof 24; byte offsets: in_data 0, out_data 4, out_mmap_offset
 * 8, out_mmap_length 16.
 */
export const iommuViommuSelftestStruct: UapiStruct<IommuViommuSelftest> = defineUapiStruct({
  name: 'iommu_viommu_selftest',
  size: 24,
  fields: [
    { name: 'in_data', offset: 0, type: 'u32' },
    { name: 'out_data', offset: 4, type: 'u32' },
    { name: 'out_mmap_offset', offset: 8, type: 'u64' },
    { name: 'out_mmap_length', offset: 16, type: 'u64' },
  ],
});

/**
 * `struct iommu_viommu_invalidate_selftest` in plain-object form: one mock vIOMMU invalidation entry
 * (`IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST`).
 */
export interface IommuViommuInvalidateSelftest {
  /** A combination of `IOMMU_TEST_INVALIDATE_FLAG_*` flags. */
  flags: number;
  /** The virtual device ID whose cache is invalidated. */
  vdev_id: number;
  /** Index of the mock device cache entry; ignored with `IOMMU_TEST_INVALIDATE_FLAG_ALL`. */
  cache_id: number;
}

/**
 * Layout of `struct iommu_viommu_invalidate_selftest`, sizeof 12; byte offsets: flags 0, vdev_id 4,
 * cache_id 8.
 */
export const iommuViommuInvalidateSelftestStruct: UapiStruct<IommuViommuInvalidateSelftest> =
  defineUapiStruct({
    name: 'iommu_viommu_invalidate_selftest',
    size: 12,
    fields: [
      { name: 'flags', offset: 0, type: 'u32' },
      { name: 'vdev_id', offset: 4, type: 'u32' },
      { name: 'cache_id', offset: 8, type: 'u32' },
    ],
  });

/**
 * `struct iommu_viommu_event_selftest` in plain-object form: the data of a mock virtual event
 * (`IOMMU_VEVENTQ_TYPE_SELFTEST`).
 */
export interface IommuViommuEventSelftest {
  /** The virtual device ID of the device the event is about. */
  virt_id: number;
}

/** Layout of `struct iommu_viommu_event_selftest`, sizeof 4; byte offsets: virt_id 0. */
export const iommuViommuEventSelftestStruct: UapiStruct<IommuViommuEventSelftest> = defineUapiStruct({
  name: 'iommu_viommu_event_selftest',
  size: 4,
  fields: [{ name: 'virt_id', offset: 0, type: 'u32' }],
});
/** `IOMMU_TEST_CMD` with `struct iommu_test_cmd`; minimum `size` 68 (end of `last`). */
export const iommuTestCommand: IommufdUapiCommand<IommuTestCmd> = Object.freeze({
  name: 'IOMMU_TEST_CMD',
  request: IOMMU_TEST_CMD,
  struct: iommuTestCmdStruct,
  minSize: iommuTestCmdStruct.offsetofend('last'),
});
