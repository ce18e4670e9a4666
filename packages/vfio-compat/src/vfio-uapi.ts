/**
 * The VFIO user API as far as this package models it (include/uapi/linux/vfio.h): ioctl numbers of
 * the container, group and device files, extension and capability numbers, flags, and the binary
 * layouts of the argument structs, plus the seed series' VFIO_IOMMU_BIND / VFIO_IOMMU_UNBIND
 * ("vfio: Add support for Shared Virtual Addressing").
 *
 * Every VFIO request is `_IO(VFIO_TYPE, VFIO_BASE + n)`: no direction and no size in the number,
 * the argument size travels in the struct's `argsz`. Offsets are those of the 64-bit ABI.
 */

import { _IO, defineUapiStruct, type UapiStruct } from '@iommu-ts/base';

// ---- numbers ----

/** The ioctl magic of VFIO (`VFIO_TYPE`): the character `';'`, 0x3b, shared with iommufd. */
export const VFIO_TYPE = ';';
/** First VFIO command number (`VFIO_BASE`), 100. */
export const VFIO_BASE = 100;
/** The API version `VFIO_GET_API_VERSION` returns (`VFIO_API_VERSION`), 0. */
export const VFIO_API_VERSION = 0;

/** `VFIO_GET_API_VERSION` = 0x3b64 (nr 100): returns {@link VFIO_API_VERSION}; no argument. */
export const VFIO_GET_API_VERSION = _IO(VFIO_TYPE, VFIO_BASE + 0);
/** `VFIO_CHECK_EXTENSION` = 0x3b65 (nr 101): the argument is the extension number itself; returns 0 or 1. */
export const VFIO_CHECK_EXTENSION = _IO(VFIO_TYPE, VFIO_BASE + 1);
/** `VFIO_SET_IOMMU` = 0x3b66 (nr 102): the argument is the IOMMU model (an extension number) itself. */
export const VFIO_SET_IOMMU = _IO(VFIO_TYPE, VFIO_BASE + 2);
/** `VFIO_GROUP_GET_STATUS` = 0x3b67 (nr 103), on a group file; argument `struct vfio_group_status`. */
export const VFIO_GROUP_GET_STATUS = _IO(VFIO_TYPE, VFIO_BASE + 3);
/** `VFIO_GROUP_SET_CONTAINER` = 0x3b68 (nr 104), on a group file; argument a pointer to an `int` fd. */
export const VFIO_GROUP_SET_CONTAINER = _IO(VFIO_TYPE, VFIO_BASE + 4);
/** `VFIO_GROUP_UNSET_CONTAINER` = 0x3b69 (nr 105), on a group file; no argument. */
export const VFIO_GROUP_UNSET_CONTAINER = _IO(VFIO_TYPE, VFIO_BASE + 5);
/**
 * `VFIO_GROUP_GET_DEVICE_FD` = 0x3b6a (nr 106), on a group file; argument a NUL-terminated device
 * name; returns the new device fd.
 */
export const VFIO_GROUP_GET_DEVICE_FD = _IO(VFIO_TYPE, VFIO_BASE + 6);
/** `VFIO_DEVICE_GET_INFO` = 0x3b6b (nr 107), on a device file; argument `struct vfio_device_info`. */
export const VFIO_DEVICE_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 7);
/** `VFIO_IOMMU_GET_INFO` = 0x3b70 (nr 112), on the container; argument `struct vfio_iommu_type1_info`. */
export const VFIO_IOMMU_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 12);
/** `VFIO_IOMMU_MAP_DMA` = 0x3b71 (nr 113), on the container; argument `struct vfio_iommu_type1_dma_map`. */
export const VFIO_IOMMU_MAP_DMA = _IO(VFIO_TYPE, VFIO_BASE + 13);
/** `VFIO_IOMMU_UNMAP_DMA` = 0x3b72 (nr 114), on the container; argument `struct vfio_iommu_type1_dma_unmap`. */
export const VFIO_IOMMU_UNMAP_DMA = _IO(VFIO_TYPE, VFIO_BASE + 14);
/** `VFIO_IOMMU_ENABLE` = 0x3b73 (nr 115): SPAPR TCE only; ENOTTY on iommufd. */
export const VFIO_IOMMU_ENABLE = _IO(VFIO_TYPE, VFIO_BASE + 15);
/** `VFIO_IOMMU_DISABLE` = 0x3b74 (nr 116): SPAPR TCE only; ENOTTY on iommufd. */
export const VFIO_IOMMU_DISABLE = _IO(VFIO_TYPE, VFIO_BASE + 16);
/** `VFIO_IOMMU_DIRTY_PAGES` = 0x3b75 (nr 117): type1 dirty tracking; ENOTTY on iommufd. */
export const VFIO_IOMMU_DIRTY_PAGES = _IO(VFIO_TYPE, VFIO_BASE + 17);
/**
 * `VFIO_IOMMU_BIND` = 0x3b7a (nr 122), on the container (seed SVA series): bind a process address
 * space to every device of the container; argument `struct vfio_iommu_type1_bind`.
 */
export const VFIO_IOMMU_BIND = _IO(VFIO_TYPE, VFIO_BASE + 22);
/** `VFIO_IOMMU_UNBIND` = 0x3b7b (nr 123), on the container (seed SVA series): undo {@link VFIO_IOMMU_BIND}. */
export const VFIO_IOMMU_UNBIND = _IO(VFIO_TYPE, VFIO_BASE + 23);

// ---- extensions (VFIO_CHECK_EXTENSION / VFIO_SET_IOMMU) ----

/** Extension / IOMMU model `VFIO_TYPE1_IOMMU`, 1: type1, partial unmaps of a mapping allowed. */
export const VFIO_TYPE1_IOMMU = 1;
/** Extension / IOMMU model `VFIO_SPAPR_TCE_IOMMU`, 2 (PowerPC; never offered by iommufd). */
export const VFIO_SPAPR_TCE_IOMMU = 2;
/** Extension / IOMMU model `VFIO_TYPE1v2_IOMMU`, 3: type1 v2, unmaps must not bisect a mapping. */
export const VFIO_TYPE1v2_IOMMU = 3;
/** Extension `VFIO_DMA_CC_IOMMU`, 4: whether DMA is cache coherent. */
export const VFIO_DMA_CC_IOMMU = 4;
/** Extension `VFIO_EEH`, 5 (PowerPC error recovery). */
export const VFIO_EEH = 5;
/** Extension `VFIO_TYPE1_NESTING_IOMMU`, 6 (now `__VFIO_RESERVED_TYPE1_NESTING_IOMMU`). */
export const VFIO_TYPE1_NESTING_IOMMU = 6;
/** Extension / IOMMU model `VFIO_SPAPR_TCE_v2_IOMMU`, 7 (PowerPC). */
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
/** Extension / IOMMU model `VFIO_NOIOMMU_IOMMU`, 8: no IOMMU, no DMA isolation. */
export const VFIO_NOIOMMU_IOMMU = 8;
/** Extension `VFIO_UNMAP_ALL`, 9: UNMAP_DMA accepts {@link VFIO_DMA_UNMAP_FLAG_ALL}. */
export const VFIO_UNMAP_ALL = 9;
/** Extension `VFIO_UPDATE_VADDR`, 10: MAP/UNMAP accept the VADDR flags. */
export const VFIO_UPDATE_VADDR = 10;

// ---- flags ----

/** `vfio_group_status.flags`: every device of the group is bound to a VFIO driver (`VFIO_GROUP_FLAGS_VIABLE`, 1 shifted by 0). */
export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
/** `vfio_group_status.flags`: the group is set to a container (`VFIO_GROUP_FLAGS_CONTAINER_SET`, 1 shifted by 1). */
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;

/** `vfio_device_info.flags`: the device supports reset (`VFIO_DEVICE_FLAGS_RESET`, 1 shifted by 0). */
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
/** `vfio_device_info.flags`: a PCI device (`VFIO_DEVICE_FLAGS_PCI`, 1 shifted by 1). */
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
/** `vfio_device_info.flags`: a platform device (`VFIO_DEVICE_FLAGS_PLATFORM`, 1 shifted by 2). */
export const VFIO_DEVICE_FLAGS_PLATFORM = 1 << 2;
/** `vfio_device_info.flags`: an AMBA device (`VFIO_DEVICE_FLAGS_AMBA`, 1 shifted by 3). */
export const VFIO_DEVICE_FLAGS_AMBA = 1 << 3;
/** `vfio_device_info.flags`: a CCW device (`VFIO_DEVICE_FLAGS_CCW`, 1 shifted by 4). */
export const VFIO_DEVICE_FLAGS_CCW = 1 << 4;
/** `vfio_device_info.flags`: an s390 AP device (`VFIO_DEVICE_FLAGS_AP`, 1 shifted by 5). */
export const VFIO_DEVICE_FLAGS_AP = 1 << 5;
/** `vfio_device_info.flags`: an fsl-mc device (`VFIO_DEVICE_FLAGS_FSL_MC`, 1 shifted by 6). */
export const VFIO_DEVICE_FLAGS_FSL_MC = 1 << 6;
/** `vfio_device_info.flags`: `cap_offset` is valid (`VFIO_DEVICE_FLAGS_CAPS`, 1 shifted by 7). */
export const VFIO_DEVICE_FLAGS_CAPS = 1 << 7;
/** `vfio_device_info.flags`: a CDX device (`VFIO_DEVICE_FLAGS_CDX`, 1 shifted by 8). */
export const VFIO_DEVICE_FLAGS_CDX = 1 << 8;

/** `vfio_iommu_type1_info.flags`: `iova_pgsizes` is valid (`VFIO_IOMMU_INFO_PGSIZES`, 1 shifted by 0). */
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
/** `vfio_iommu_type1_info.flags`: capabilities are supported (`VFIO_IOMMU_INFO_CAPS`, 1 shifted by 1). */
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;

/** Capability id of the IOVA range list (`VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`), 1. */
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
/** Capability id of the migration (dirty tracking) capability (`VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION`), 2. */
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
/** Capability id of the available-mappings count (`VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL`), 3. */
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

/** `vfio_iommu_type1_dma_map.flags`: the device may read (`VFIO_DMA_MAP_FLAG_READ`, 1 shifted by 0). */
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
/** `vfio_iommu_type1_dma_map.flags`: the device may write (`VFIO_DMA_MAP_FLAG_WRITE`, 1 shifted by 1). */
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
/** `vfio_iommu_type1_dma_map.flags`: update the vaddr of an existing mapping (`VFIO_DMA_MAP_FLAG_VADDR`, 1 shifted by 2). */
export const VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;

/** `vfio_iommu_type1_dma_unmap.flags`: return a dirty bitmap (`VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP`, 1 shifted by 0). */
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
/** `vfio_iommu_type1_dma_unmap.flags`: unmap everything; iova and size must be 0 (`VFIO_DMA_UNMAP_FLAG_ALL`, 1 shifted by 1). */
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
/** `vfio_iommu_type1_dma_unmap.flags`: invalidate vaddr only (`VFIO_DMA_UNMAP_FLAG_VADDR`, 1 shifted by 2). */
export const VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;

/** `vfio_iommu_type1_bind.flags`: the payload is a `vfio_iommu_type1_bind_process` (`VFIO_IOMMU_BIND_PROCESS`, 1 shifted by 0). */
export const VFIO_IOMMU_BIND_PROCESS = 1 << 0;
/** `vfio_iommu_type1_bind_process.flags`: bind the process given by `pid`, not the caller (`VFIO_IOMMU_BIND_PID`, 1 shifted by 0). */
export const VFIO_IOMMU_BIND_PID = 1 << 0;

// ---- structs ----

/** `struct vfio_info_cap_header` in plain-object form: the header every info capability starts with. */
export interface VfioInfoCapHeader {
  /** Capability id, such as {@link VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE}. */
  id: number;
  /** Version of the capability's layout. */
  version: number;
  /** Offset of the next capability from the start of the info buffer, in bytes; 0 for the last. */
  next: number;
}

/** Layout of `struct vfio_info_cap_header`, sizeof 8; byte offsets: id 0 (u16), version 2 (u16), next 4 (u32). */
export const vfioInfoCapHeaderStruct: UapiStruct<VfioInfoCapHeader> = defineUapiStruct({
  name: 'vfio_info_cap_header',
  size: 8,
  fields: [
    { name: 'id', offset: 0, type: 'u16' },
    { name: 'version', offset: 2, type: 'u16' },
    { name: 'next', offset: 4, type: 'u32' },
  ],
});

/** `struct vfio_iommu_type1_info` in plain-object form: the argument of `VFIO_IOMMU_GET_INFO`. */
export interface VfioIommuType1Info {
  /** In: bytes the caller provides (at least 16); out: bytes needed for the header and every capability. */
  argsz: number;
  /** Out: {@link VFIO_IOMMU_INFO_PGSIZES}, {@link VFIO_IOMMU_INFO_CAPS}. */
  flags: number;
  /** Out: bitmap of supported IOVA page sizes (bit n set means 2 to the n bytes). */
  iova_pgsizes: bigint;
  /** Out: offset of the first capability from the start of the struct, or 0 if they did not fit. */
  cap_offset: number;
  /** Padding. */
  pad: number;
}

/**
 * Layout of `struct vfio_iommu_type1_info`, sizeof 24; byte offsets: argsz 0, flags 4,
 * iova_pgsizes 8 (u64), cap_offset 16, pad 20. The minimum `argsz` is 16 (end of `iova_pgsizes`).
 */
export const vfioIommuType1InfoStruct: UapiStruct<VfioIommuType1Info> = defineUapiStruct({
  name: 'vfio_iommu_type1_info',
  size: 24,
  fields: [
    { name: 'argsz', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'iova_pgsizes', offset: 8, type: 'u64' },
    { name: 'cap_offset', offset: 16, type: 'u32' },
    { name: 'pad', offset: 20, type: 'u32' },
  ],
});

/** `struct vfio_iova_range` in plain-object form: one closed IOVA interval of the IOVA range capability. */
export interface VfioIovaRange {
  /** First IOVA of the range. */
  start: bigint;
  /** Last IOVA of the range (inclusive). */
  end: bigint;
}

/** Layout of `struct vfio_iova_range`, sizeof 16; byte offsets: start 0, end 8. */
export const vfioIovaRangeStruct: UapiStruct<VfioIovaRange> = defineUapiStruct({
  name: 'vfio_iova_range',
  size: 16,
  fields: [
    { name: 'start', offset: 0, type: 'u64' },
    { name: 'end', offset: 8, type: 'u64' },
  ],
});

/**
 * `struct vfio_iommu_type1_info_cap_iova_range` in plain-object form, without its trailing array:
 * `nr_iovas` {@link VfioIovaRange} elements follow at byte 16.
 */
export interface VfioIommuType1InfoCapIovaRange {
  /** The capability header (id {@link VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE}, version 1). */
  header: VfioInfoCapHeader;
  /** Number of ranges that follow. */
  nr_iovas: number;
  /** Padding. */
  reserved: number;
}

/**
 * Layout of the fixed part of `struct vfio_iommu_type1_info_cap_iova_range`, 16 bytes; byte offsets:
 * header 0, nr_iovas 8, reserved 12, `iova_ranges[]` from 16 (16 bytes each).
 */
export const vfioIommuType1InfoCapIovaRangeStruct: UapiStruct<VfioIommuType1InfoCapIovaRange> =
  defineUapiStruct({
    name: 'vfio_iommu_type1_info_cap_iova_range',
    size: 16,
    fields: [
      { name: 'header', offset: 0, type: vfioInfoCapHeaderStruct },
      { name: 'nr_iovas', offset: 8, type: 'u32' },
      { name: 'reserved', offset: 12, type: 'u32' },
    ],
  });

/** `struct vfio_iommu_type1_info_dma_avail` in plain-object form: how many more mappings may be made. */
export interface VfioIommuType1InfoDmaAvail {
  /** The capability header (id {@link VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL}, version 1). */
  header: VfioInfoCapHeader;
  /** Number of mappings still available. */
  avail: number;
}

/**
 * Layout of `struct vfio_iommu_type1_info_dma_avail`, sizeof 12; byte offsets: header 0, avail 8.
 * Current kernels reserve 16 bytes for it in the capability chain (sizes rounded up to 8).
 */
export const vfioIommuType1InfoDmaAvailStruct: UapiStruct<VfioIommuType1InfoDmaAvail> = defineUapiStruct({
  name: 'vfio_iommu_type1_info_dma_avail',
  size: 12,
  fields: [
    { name: 'header', offset: 0, type: vfioInfoCapHeaderStruct },
    { name: 'avail', offset: 8, type: 'u32' },
  ],
});

/** `struct vfio_iommu_type1_dma_map` in plain-object form: the argument of `VFIO_IOMMU_MAP_DMA`. */
export interface VfioIommuType1DmaMap {
  /** Bytes the caller provides (at least 32). */
  argsz: number;
  /** {@link VFIO_DMA_MAP_FLAG_READ}, {@link VFIO_DMA_MAP_FLAG_WRITE}, {@link VFIO_DMA_MAP_FLAG_VADDR}. */
  flags: number;
  /** Process virtual address of the memory to map. */
  vaddr: bigint;
  /** IOVA the memory is mapped at. */
  iova: bigint;
  /** Length in bytes. */
  size: bigint;
}

/** Layout of `struct vfio_iommu_type1_dma_map`, sizeof 32; byte offsets: argsz 0, flags 4, vaddr 8, iova 16, size 24. */
export const vfioIommuType1DmaMapStruct: UapiStruct<VfioIommuType1DmaMap> = defineUapiStruct({
  name: 'vfio_iommu_type1_dma_map',
  size: 32,
  fields: [
    { name: 'argsz', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'vaddr', offset: 8, type: 'u64' },
    { name: 'iova', offset: 16, type: 'u64' },
    { name: 'size', offset: 24, type: 'u64' },
  ],
});

/** `struct vfio_iommu_type1_dma_unmap` in plain-object form (without `data[]`): the argument of `VFIO_IOMMU_UNMAP_DMA`. */
export interface VfioIommuType1DmaUnmap {
  /** Bytes the caller provides (at least 24). */
  argsz: number;
  /** {@link VFIO_DMA_UNMAP_FLAG_ALL} (the other flags are refused by iommufd). */
  flags: number;
  /** First IOVA to unmap. */
  iova: bigint;
  /** In: length in bytes; out: bytes actually unmapped. */
  size: bigint;
}

/**
 * Layout of the fixed part of `struct vfio_iommu_type1_dma_unmap`, 24 bytes; byte offsets: argsz 0,
 * flags 4, iova 8, size 16; `data[]` (a `struct vfio_bitmap` with GET_DIRTY_BITMAP) from 24.
 */
export const vfioIommuType1DmaUnmapStruct: UapiStruct<VfioIommuType1DmaUnmap> = defineUapiStruct({
  name: 'vfio_iommu_type1_dma_unmap',
  size: 24,
  fields: [
    { name: 'argsz', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'iova', offset: 8, type: 'u64' },
    { name: 'size', offset: 16, type: 'u64' },
  ],
});

/** `struct vfio_group_status` in plain-object form: the argument of `VFIO_GROUP_GET_STATUS`. */
export interface VfioGroupStatus {
  /** Bytes the caller provides (at least 8). */
  argsz: number;
  /** Out: {@link VFIO_GROUP_FLAGS_VIABLE}, {@link VFIO_GROUP_FLAGS_CONTAINER_SET}. */
  flags: number;
}

/** Layout of `struct vfio_group_status`, sizeof 8; byte offsets: argsz 0, flags 4. */
export const vfioGroupStatusStruct: UapiStruct<VfioGroupStatus> = defineUapiStruct({
  name: 'vfio_group_status',
  size: 8,
  fields: [
    { name: 'argsz', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
  ],
});

/** `struct vfio_device_info` in plain-object form: the argument of `VFIO_DEVICE_GET_INFO`. */
export interface VfioDeviceInfo {
  /** In: bytes the caller provides (at least 16); out: bytes needed. */
  argsz: number;
  /** Out: `VFIO_DEVICE_FLAGS_*`, such as {@link VFIO_DEVICE_FLAGS_PCI}. */
  flags: number;
  /** Out: number of regions (`VFIO_DEVICE_GET_REGION_INFO` indexes). */
  num_regions: number;
  /** Out: number of interrupt indexes. */
  num_irqs: number;
  /** Out: offset of the first capability, with {@link VFIO_DEVICE_FLAGS_CAPS}. */
  cap_offset: number;
  /** Padding. */
  pad: number;
}

/**
 * Layout of `struct vfio_device_info`, sizeof 24; byte offsets: argsz 0, flags 4, num_regions 8,
 * num_irqs 12, cap_offset 16, pad 20. The minimum `argsz` is 16 (end of `num_irqs`).
 */
export const vfioDeviceInfoStruct: UapiStruct<VfioDeviceInfo> = defineUapiStruct({
  name: 'vfio_device_info',
  size: 24,
  fields: [
    { name: 'argsz', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'num_regions', offset: 8, type: 'u32' },
    { name: 'num_irqs', offset: 12, type: 'u32' },
    { name: 'cap_offset', offset: 16, type: 'u32' },
    { name: 'pad', offset: 20, type: 'u32' },
  ],
});

/**
 * `struct vfio_iommu_type1_bind` in plain-object form (seed SVA series), without its `data[]`
 * payload: the argument of `VFIO_IOMMU_BIND` / `VFIO_IOMMU_UNBIND`.
 */
export interface VfioIommuType1Bind {
  /** Bytes the caller provides: 8 plus the payload (20 for a bind_process). */
  argsz: number;
  /** The payload kind: {@link VFIO_IOMMU_BIND_PROCESS}. */
  flags: number;
}

/** Layout of the fixed part of `struct vfio_iommu_type1_bind`, 8 bytes; byte offsets: argsz 0, flags 4, `data[]` from 8. */
export const vfioIommuType1BindStruct: UapiStruct<VfioIommuType1Bind> = defineUapiStruct({
  name: 'vfio_iommu_type1_bind',
  size: 8,
  fields: [
    { name: 'argsz', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
  ],
});

/** `struct vfio_iommu_type1_bind_process` in plain-object form (seed SVA series): the payload of a process bind. */
export interface VfioIommuType1BindProcess {
  /** {@link VFIO_IOMMU_BIND_PID} or 0 (bind the caller). */
  flags: number;
  /** Out: the PASID the address space is bound with. */
  pasid: number;
  /** In: the process to bind, with {@link VFIO_IOMMU_BIND_PID}. */
  pid: number;
}

/** Layout of `struct vfio_iommu_type1_bind_process`, sizeof 12; byte offsets: flags 0, pasid 4, pid 8 (s32). */
export const vfioIommuType1BindProcessStruct: UapiStruct<VfioIommuType1BindProcess> = defineUapiStruct({
  name: 'vfio_iommu_type1_bind_process',
  size: 12,
  fields: [
    { name: 'flags', offset: 0, type: 'u32' },
    { name: 'pasid', offset: 4, type: 'u32' },
    { name: 'pid', offset: 8, type: 's32' },
  ],
});
