/**
 * Binary layouts of every struct of include/uapi/linux/iommufd.h (up to the release that added
 * `IOMMU_HW_QUEUE_ALLOC`), their plain-object types (exact C field names; `__u64` as `bigint`,
 * smaller integers as `number`, fixed arrays as arrays), and the command table facts of
 * drivers/iommu/iommufd/main.c: each ioctl's request, argument struct and minimum size.
 *
 * All offsets are those of the 64-bit ABI, where `__aligned_u64` and `__u64` are 8-byte aligned.
 */

import { defineUapiStruct, type UapiStruct } from '@iommu-ts/base';
import {
  IOMMU_DESTROY,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  IOMMU_HW_QUEUE_ALLOC,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_CHANGE_PROCESS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VEVENTQ_ALLOC,
  IOMMU_VFIO_IOAS,
  IOMMU_VIOMMU_ALLOC,
} from './uapi.js';

/** `struct iommu_destroy` in plain-object form: the argument of `IOMMU_DESTROY`. */
export interface IommuDestroy {
  /** Size of the struct as user space knows it, in bytes (at least 8). */
  size: number;
  /** ID of the object to destroy; any destroyable type. */
  id: number;
}

/** Layout of `struct iommu_destroy`, sizeof 8; byte offsets: size 0, id 4. */
export const iommuDestroyStruct: UapiStruct<IommuDestroy> = defineUapiStruct({
  name: 'iommu_destroy',
  size: 8,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'id', offset: 4, type: 'u32' },
  ],
});

/** `struct iommu_ioas_alloc` in plain-object form: the argument of `IOMMU_IOAS_ALLOC`. */
export interface IommuIoasAlloc {
  /** Size of the struct as user space knows it, in bytes (at least 12). */
  size: number;
  /** Must be 0. */
  flags: number;
  /** Output: ID of the new IOAS. */
  out_ioas_id: number;
}

/** Layout of `struct iommu_ioas_alloc`, sizeof 12; byte offsets: size 0, flags 4, out_ioas_id 8. */
export const iommuIoasAllocStruct: UapiStruct<IommuIoasAlloc> = defineUapiStruct({
  name: 'iommu_ioas_alloc',
  size: 12,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'out_ioas_id', offset: 8, type: 'u32' },
  ],
});

/**
 * `struct iommu_iova_range` in plain-object form: one closed IOVA interval, an element of the arrays of
 * `IOMMU_IOAS_IOVA_RANGES` and `IOMMU_IOAS_ALLOW_IOVAS`.
 */
export interface IommuIovaRange {
  /** First IOVA of the range. */
  start: bigint;
  /** Last IOVA of the range, inclusive. */
  last: bigint;
}

/** Layout of `struct iommu_iova_range`, sizeof 16; byte offsets: start 0, last 8. */
export const iommuIovaRangeStruct: UapiStruct<IommuIovaRange> = defineUapiStruct({
  name: 'iommu_iova_range',
  size: 16,
  fields: [
    { name: 'start', offset: 0, type: 'u64' },
    { name: 'last', offset: 8, type: 'u64' },
  ],
});

/** `struct iommu_ioas_iova_ranges` in plain-object form: the argument of `IOMMU_IOAS_IOVA_RANGES`. */
export interface IommuIoasIovaRanges {
  /** Size of the struct as user space knows it, in bytes (at least 32). */
  size: number;
  /** The IOAS to report on. */
  ioas_id: number;
  /**
   * Input: capacity of the `allowed_iovas` array, in elements. Output: how many ranges there are (EMSGSIZE
   * when more than the capacity).
   */
  num_iovas: number;
  /** Must be 0. */
  __reserved: number;
  /** User address of an array of `struct iommu_iova_range` receiving the usable ranges. */
  allowed_iovas: bigint;
  /** Output: the alignment, in bytes, that MAP and COPY need for IOVA and length. */
  out_iova_alignment: bigint;
}

/**
 * Layout of `struct iommu_ioas_iova_ranges`, sizeof 32; byte offsets: size 0, ioas_id 4, num_iovas 8,
 * __reserved 12, allowed_iovas 16, out_iova_alignment 24.
 */
export const iommuIoasIovaRangesStruct: UapiStruct<IommuIoasIovaRanges> = defineUapiStruct({
  name: 'iommu_ioas_iova_ranges',
  size: 32,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'ioas_id', offset: 4, type: 'u32' },
    { name: 'num_iovas', offset: 8, type: 'u32' },
    { name: '__reserved', offset: 12, type: 'u32' },
    { name: 'allowed_iovas', offset: 16, type: 'u64' },
    { name: 'out_iova_alignment', offset: 24, type: 'u64' },
  ],
});

/** `struct iommu_ioas_allow_iovas` in plain-object form: the argument of `IOMMU_IOAS_ALLOW_IOVAS`. */
export interface IommuIoasAllowIovas {
  /** Size of the struct as user space knows it, in bytes (at least 24). */
  size: number;
  /** The IOAS whose allowed list is replaced. */
  ioas_id: number;
  /** Number of elements in `allowed_iovas`; 0 clears the list. */
  num_iovas: number;
  /** Must be 0. */
  __reserved: number;
  /** User address of an array of `struct iommu_iova_range`. */
  allowed_iovas: bigint;
}

/**
 * Layout of `struct iommu_ioas_allow_iovas`, sizeof 24; byte offsets: size 0, ioas_id 4, num_iovas 8,
 * __reserved 12, allowed_iovas 16.
 */
export const iommuIoasAllowIovasStruct: UapiStruct<IommuIoasAllowIovas> = defineUapiStruct({
  name: 'iommu_ioas_allow_iovas',
  size: 24,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'ioas_id', offset: 4, type: 'u32' },
    { name: 'num_iovas', offset: 8, type: 'u32' },
    { name: '__reserved', offset: 12, type: 'u32' },
    { name: 'allowed_iovas', offset: 16, type: 'u64' },
  ],
});

/** `struct iommu_ioas_map` in plain-object form: the argument of `IOMMU_IOAS_MAP`. */
export interface IommuIoasMap {
  /** Size of the struct as user space knows it, in bytes (at least 40). */
  size: number;
  /** A combination of `IOMMU_IOAS_MAP_*` flags; READABLE or WRITEABLE is required. */
  flags: number;
  /** The IOAS to map into. */
  ioas_id: number;
  /** Must be 0. */
  __reserved: number;
  /** User address of the memory to map. */
  user_va: bigint;
  /** Bytes to map. */
  length: bigint;
  /** Input with `IOMMU_IOAS_MAP_FIXED_IOVA`: where to map. Output: the IOVA used. */
  iova: bigint;
}

/**
 * Layout of `struct iommu_ioas_map`, sizeof 40; byte offsets: size 0, flags 4, ioas_id 8, __reserved 12,
 * user_va 16, length 24, iova 32.
 */
export const iommuIoasMapStruct: UapiStruct<IommuIoasMap> = defineUapiStruct({
  name: 'iommu_ioas_map',
  size: 40,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'ioas_id', offset: 8, type: 'u32' },
    { name: '__reserved', offset: 12, type: 'u32' },
    { name: 'user_va', offset: 16, type: 'u64' },
    { name: 'length', offset: 24, type: 'u64' },
    { name: 'iova', offset: 32, type: 'u64' },
  ],
});

/** `struct iommu_ioas_map_file` in plain-object form: the argument of `IOMMU_IOAS_MAP_FILE`. */
export interface IommuIoasMapFile {
  /** Size of the struct as user space knows it, in bytes (at least 40). */
  size: number;
  /** As `iommu_ioas_map.flags`. */
  flags: number;
  /** The IOAS to map into. */
  ioas_id: number;
  /** File descriptor of the memfd to map. */
  fd: number;
  /** Byte offset in the file where the mapping starts. */
  start: bigint;
  /** Bytes to map. */
  length: bigint;
  /** As `iommu_ioas_map.iova`. */
  iova: bigint;
}

/**
 * Layout of `struct iommu_ioas_map_file`, sizeof 40; byte offsets: size 0, flags 4, ioas_id 8, fd 12, start
 * 16, length 24, iova 32.
 */
export const iommuIoasMapFileStruct: UapiStruct<IommuIoasMapFile> = defineUapiStruct({
  name: 'iommu_ioas_map_file',
  size: 40,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'ioas_id', offset: 8, type: 'u32' },
    { name: 'fd', offset: 12, type: 's32' },
    { name: 'start', offset: 16, type: 'u64' },
    { name: 'length', offset: 24, type: 'u64' },
    { name: 'iova', offset: 32, type: 'u64' },
  ],
});

/** `struct iommu_ioas_copy` in plain-object form: the argument of `IOMMU_IOAS_COPY`. */
export interface IommuIoasCopy {
  /** Size of the struct as user space knows it, in bytes (at least 40). */
  size: number;
  /** A combination of `IOMMU_IOAS_MAP_*` flags for the new mapping. */
  flags: number;
  /** The IOAS to map into. */
  dst_ioas_id: number;
  /** The IOAS the range is already mapped in. */
  src_ioas_id: number;
  /** Bytes to copy. */
  length: bigint;
  /** Input with `IOMMU_IOAS_MAP_FIXED_IOVA`: where to map. Output: the IOVA used. */
  dst_iova: bigint;
  /** Start of the range in the source IOAS. */
  src_iova: bigint;
}

/**
 * Layout of `struct iommu_ioas_copy`, sizeof 40; byte offsets: size 0, flags 4, dst_ioas_id 8, src_ioas_id
 * 12, length 16, dst_iova 24, src_iova 32.
 */
export const iommuIoasCopyStruct: UapiStruct<IommuIoasCopy> = defineUapiStruct({
  name: 'iommu_ioas_copy',
  size: 40,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'dst_ioas_id', offset: 8, type: 'u32' },
    { name: 'src_ioas_id', offset: 12, type: 'u32' },
    { name: 'length', offset: 16, type: 'u64' },
    { name: 'dst_iova', offset: 24, type: 'u64' },
    { name: 'src_iova', offset: 32, type: 'u64' },
  ],
});

/** `struct iommu_ioas_unmap` in plain-object form: the argument of `IOMMU_IOAS_UNMAP`. */
export interface IommuIoasUnmap {
  /** Size of the struct as user space knows it, in bytes (at least 24). */
  size: number;
  /** The IOAS to unmap from. */
  ioas_id: number;
  /** Start of the range; with `length` U64_MAX and `iova` 0, everything. */
  iova: bigint;
  /** Input: bytes in the range. Output: bytes unmapped. */
  length: bigint;
}

/** Layout of `struct iommu_ioas_unmap`, sizeof 24; byte offsets: size 0, ioas_id 4, iova 8, length 16. */
export const iommuIoasUnmapStruct: UapiStruct<IommuIoasUnmap> = defineUapiStruct({
  name: 'iommu_ioas_unmap',
  size: 24,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'ioas_id', offset: 4, type: 'u32' },
    { name: 'iova', offset: 8, type: 'u64' },
    { name: 'length', offset: 16, type: 'u64' },
  ],
});

/** `struct iommu_option` in plain-object form: the argument of `IOMMU_OPTION`. */
export interface IommuOption {
  /** Size of the struct as user space knows it, in bytes (at least 24). */
  size: number;
  /** One of the `IOMMU_OPTION_*` option IDs. */
  option_id: number;
  /** `IOMMU_OPTION_OP_SET` or `IOMMU_OPTION_OP_GET`. */
  op: number;
  /** Must be 0. */
  __reserved: number;
  /** The object the option belongs to, or 0 for a global option. */
  object_id: number;
  /** Input for SET, output for GET: the option value. */
  val64: bigint;
}

/**
 * Layout of `struct iommu_option`, sizeof 24; byte offsets: size 0, option_id 4, op 8, __reserved 10,
 * object_id 12, val64 16.
 */
export const iommuOptionStruct: UapiStruct<IommuOption> = defineUapiStruct({
  name: 'iommu_option',
  size: 24,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'option_id', offset: 4, type: 'u32' },
    { name: 'op', offset: 8, type: 'u16' },
    { name: '__reserved', offset: 10, type: 'u16' },
    { name: 'object_id', offset: 12, type: 'u32' },
    { name: 'val64', offset: 16, type: 'u64' },
  ],
});

/** `struct iommu_vfio_ioas` in plain-object form: the argument of `IOMMU_VFIO_IOAS`. */
export interface IommuVfioIoas {
  /** Size of the struct as user space knows it, in bytes (at least 12). */
  size: number;
  /** Input for SET, output for GET: the compatibility IOAS. */
  ioas_id: number;
  /** One of `IOMMU_VFIO_IOAS_GET`, `_SET`, `_CLEAR`. */
  op: number;
  /** Must be 0. */
  __reserved: number;
}

/** Layout of `struct iommu_vfio_ioas`, sizeof 12; byte offsets: size 0, ioas_id 4, op 8, __reserved 10. */
export const iommuVfioIoasStruct: UapiStruct<IommuVfioIoas> = defineUapiStruct({
  name: 'iommu_vfio_ioas',
  size: 12,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'ioas_id', offset: 4, type: 'u32' },
    { name: 'op', offset: 8, type: 'u16' },
    { name: '__reserved', offset: 10, type: 'u16' },
  ],
});

/**
 * `struct iommu_hwpt_vtd_s1` in plain-object form: the driver data of a VT-d stage-1 nested HWPT
 * (`IOMMU_HWPT_DATA_VTD_S1`).
 */
export interface IommuHwptVtdS1 {
  /** A combination of `IOMMU_VTD_S1_*` flags. */
  flags: bigint;
  /** Base address of the stage-1 page table (a guest physical address). */
  pgtbl_addr: bigint;
  /** Address width of the stage-1 page table, in bits. */
  addr_width: number;
  /** Must be 0. */
  __reserved: number;
}

/**
 * Layout of `struct iommu_hwpt_vtd_s1`, sizeof 24; byte offsets: flags 0, pgtbl_addr 8, addr_width 16,
 * __reserved 20.
 */
export const iommuHwptVtdS1Struct: UapiStruct<IommuHwptVtdS1> = defineUapiStruct({
  name: 'iommu_hwpt_vtd_s1',
  size: 24,
  fields: [
    { name: 'flags', offset: 0, type: 'u64' },
    { name: 'pgtbl_addr', offset: 8, type: 'u64' },
    { name: 'addr_width', offset: 16, type: 'u32' },
    { name: '__reserved', offset: 20, type: 'u32' },
  ],
});

/**
 * `struct iommu_hwpt_arm_smmuv3` in plain-object form: the driver data of an SMMUv3 nested HWPT
 * (`IOMMU_HWPT_DATA_ARM_SMMUV3`).
 */
export interface IommuHwptArmSmmuv3 {
  /** The first two 64-bit words of the guest Stream Table Entry, little-endian. */
  ste: bigint[];
}

/** Layout of `struct iommu_hwpt_arm_smmuv3`, sizeof 16; byte offsets: ste 0. */
export const iommuHwptArmSmmuv3Struct: UapiStruct<IommuHwptArmSmmuv3> = defineUapiStruct({
  name: 'iommu_hwpt_arm_smmuv3',
  size: 16,
  fields: [{ name: 'ste', offset: 0, type: 'u64', count: 2 }],
});

/** `struct iommu_hwpt_alloc` in plain-object form: the argument of `IOMMU_HWPT_ALLOC`. */
export interface IommuHwptAlloc {
  /** Size of the struct as user space knows it, in bytes (at least 24). */
  size: number;
  /** A combination of `IOMMU_HWPT_ALLOC_*` flags and `IOMMU_HWPT_FAULT_ID_VALID`. */
  flags: number;
  /** The device the HWPT is allocated for. */
  dev_id: number;
  /** The IOAS, parent paging HWPT or vIOMMU to build on. */
  pt_id: number;
  /** Output: ID of the new HWPT. */
  out_hwpt_id: number;
  /** Must be 0. */
  __reserved: number;
  /** One of the `IOMMU_HWPT_DATA_*` types. */
  data_type: number;
  /** Length of the driver data at `data_uptr`, in bytes. */
  data_len: number;
  /** User address of the driver data. */
  data_uptr: bigint;
  /** Fault queue object receiving the faults; valid with `IOMMU_HWPT_FAULT_ID_VALID`. */
  fault_id: number;
  /** Padding; should be 0 (not checked). */
  __reserved2: number;
}

/**
 * Layout of `struct iommu_hwpt_alloc`, sizeof 48; byte offsets: size 0, flags 4, dev_id 8, pt_id 12,
 * out_hwpt_id 16, __reserved 20, data_type 24, data_len 28, data_uptr 32, fault_id 40, __reserved2 44.
 */
export const iommuHwptAllocStruct: UapiStruct<IommuHwptAlloc> = defineUapiStruct({
  name: 'iommu_hwpt_alloc',
  size: 48,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'dev_id', offset: 8, type: 'u32' },
    { name: 'pt_id', offset: 12, type: 'u32' },
    { name: 'out_hwpt_id', offset: 16, type: 'u32' },
    { name: '__reserved', offset: 20, type: 'u32' },
    { name: 'data_type', offset: 24, type: 'u32' },
    { name: 'data_len', offset: 28, type: 'u32' },
    { name: 'data_uptr', offset: 32, type: 'u64' },
    { name: 'fault_id', offset: 40, type: 'u32' },
    { name: '__reserved2', offset: 44, type: 'u32' },
  ],
});

/**
 * `struct iommu_hw_info_vtd` in plain-object form: the hardware information of a VT-d IOMMU
 * (`IOMMU_HW_INFO_TYPE_INTEL_VTD`).
 */
export interface IommuHwInfoVtd {
  /** A combination of `IOMMU_HW_INFO_VTD_*` flags. */
  flags: number;
  /** Must be 0. */
  __reserved: number;
  /** The Capability Register. */
  cap_reg: bigint;
  /** The Extended Capability Register. */
  ecap_reg: bigint;
}

/**
 * Layout of `struct iommu_hw_info_vtd`, sizeof 24; byte offsets: flags 0, __reserved 4, cap_reg 8, ecap_reg
 * 16.
 */
export const iommuHwInfoVtdStruct: UapiStruct<IommuHwInfoVtd> = defineUapiStruct({
  name: 'iommu_hw_info_vtd',
  size: 24,
  fields: [
    { name: 'flags', offset: 0, type: 'u32' },
    { name: '__reserved', offset: 4, type: 'u32' },
    { name: 'cap_reg', offset: 8, type: 'u64' },
    { name: 'ecap_reg', offset: 16, type: 'u64' },
  ],
});

/**
 * `struct iommu_hw_info_arm_smmuv3` in plain-object form: the hardware information of an SMMUv3
 * (`IOMMU_HW_INFO_TYPE_ARM_SMMUV3`).
 */
export interface IommuHwInfoArmSmmuv3 {
  /** Must be 0. */
  flags: number;
  /** Must be 0. */
  __reserved: number;
  /** The ID registers SMMU_IDR0 to SMMU_IDR5. */
  idr: number[];
  /** The SMMU_IIDR register (implementation and implementer). */
  iidr: number;
  /** The SMMU_AIDR register (architecture version). */
  aidr: number;
}

/**
 * Layout of `struct iommu_hw_info_arm_smmuv3`, sizeof 40; byte offsets: flags 0, __reserved 4, idr 8, iidr
 * 32, aidr 36.
 */
export const iommuHwInfoArmSmmuv3Struct: UapiStruct<IommuHwInfoArmSmmuv3> = defineUapiStruct({
  name: 'iommu_hw_info_arm_smmuv3',
  size: 40,
  fields: [
    { name: 'flags', offset: 0, type: 'u32' },
    { name: '__reserved', offset: 4, type: 'u32' },
    { name: 'idr', offset: 8, type: 'u32', count: 6 },
    { name: 'iidr', offset: 32, type: 'u32' },
    { name: 'aidr', offset: 36, type: 'u32' },
  ],
});

/**
 * `struct iommu_hw_info_tegra241_cmdqv` in plain-object form: the hardware information of a Tegra241 CMDQV
 * (`IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV`).
 */
export interface IommuHwInfoTegra241Cmdqv {
  /** Must be 0. */
  flags: number;
  /** CMDQV hardware version (PARAM bits 3:0). */
  version: number;
  /** Log2 of the number of virtual command queues (PARAM bits 7:4). */
  log2vcmdqs: number;
  /** Log2 of the number of StreamID replacements (PARAM bits 15:12). */
  log2vsids: number;
  /** Must be 0. */
  __reserved: number;
}

/**
 * Layout of `struct iommu_hw_info_tegra241_cmdqv`, sizeof 8; byte offsets: flags 0, version 4, log2vcmdqs
 * 5, log2vsids 6, __reserved 7.
 */
export const iommuHwInfoTegra241CmdqvStruct: UapiStruct<IommuHwInfoTegra241Cmdqv> = defineUapiStruct({
  name: 'iommu_hw_info_tegra241_cmdqv',
  size: 8,
  fields: [
    { name: 'flags', offset: 0, type: 'u32' },
    { name: 'version', offset: 4, type: 'u8' },
    { name: 'log2vcmdqs', offset: 5, type: 'u8' },
    { name: 'log2vsids', offset: 6, type: 'u8' },
    { name: '__reserved', offset: 7, type: 'u8' },
  ],
});

/**
 * `struct iommu_hw_info` in plain-object form: the argument of `IOMMU_GET_HW_INFO`. `in_data_type` and
 * `out_data_type` are an anonymous union: two names for the same bytes.
 */
export interface IommuHwInfo {
  /** Size of the struct as user space knows it, in bytes (at least 32). */
  size: number;
  /** A combination of `IOMMU_HW_INFO_FLAG_*` flags. */
  flags: number;
  /** The device to query. */
  dev_id: number;
  /** Input: length of the buffer at `data_uptr`. Output: length of the kernel's data. */
  data_len: number;
  /** User address of the buffer receiving the type-specific information. */
  data_uptr: bigint;
  /**
   * Input with `IOMMU_HW_INFO_FLAG_INPUT_TYPE`: the information type wanted (same bytes as
   * `out_data_type`).
   */
  in_data_type: number;
  /** Output: one of the `IOMMU_HW_INFO_TYPE_*` types (same bytes as `in_data_type`). */
  out_data_type: number;
  /** Output: PASID width in bits; 0 without PASID support. */
  out_max_pasid_log2: number;
  /** Must be 0. */
  __reserved: number[];
  /** Output: a combination of `IOMMU_HW_CAP_*` bits. */
  out_capabilities: bigint;
}

/**
 * Layout of `struct iommu_hw_info`, sizeof 40; byte offsets: size 0, flags 4, dev_id 8, data_len 12,
 * data_uptr 16, in_data_type 24, out_data_type 24, out_max_pasid_log2 28, __reserved 29, out_capabilities
 * 32.
 */
export const iommuHwInfoStruct: UapiStruct<IommuHwInfo> = defineUapiStruct({
  name: 'iommu_hw_info',
  size: 40,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'dev_id', offset: 8, type: 'u32' },
    { name: 'data_len', offset: 12, type: 'u32' },
    { name: 'data_uptr', offset: 16, type: 'u64' },
    { name: 'in_data_type', offset: 24, type: 'u32' },
    { name: 'out_data_type', offset: 24, type: 'u32' },
    { name: 'out_max_pasid_log2', offset: 28, type: 'u8' },
    { name: '__reserved', offset: 29, type: 'u8', count: 3 },
    { name: 'out_capabilities', offset: 32, type: 'u64' },
  ],
});

/**
 * `struct iommu_hwpt_set_dirty_tracking` in plain-object form: the argument of
 * `IOMMU_HWPT_SET_DIRTY_TRACKING`.
 */
export interface IommuHwptSetDirtyTracking {
  /** Size of the struct as user space knows it, in bytes (at least 16). */
  size: number;
  /** `IOMMU_HWPT_DIRTY_TRACKING_ENABLE` to enable, 0 to disable. */
  flags: number;
  /** The paging HWPT. */
  hwpt_id: number;
  /** Must be 0. */
  __reserved: number;
}

/**
 * Layout of `struct iommu_hwpt_set_dirty_tracking`, sizeof 16; byte offsets: size 0, flags 4, hwpt_id 8,
 * __reserved 12.
 */
export const iommuHwptSetDirtyTrackingStruct: UapiStruct<IommuHwptSetDirtyTracking> = defineUapiStruct({
  name: 'iommu_hwpt_set_dirty_tracking',
  size: 16,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'hwpt_id', offset: 8, type: 'u32' },
    { name: '__reserved', offset: 12, type: 'u32' },
  ],
});

/**
 * `struct iommu_hwpt_get_dirty_bitmap` in plain-object form: the argument of `IOMMU_HWPT_GET_DIRTY_BITMAP`.
 */
export interface IommuHwptGetDirtyBitmap {
  /** Size of the struct as user space knows it, in bytes (at least 48). */
  size: number;
  /** The paging HWPT. */
  hwpt_id: number;
  /** A combination of `IOMMU_HWPT_GET_DIRTY_BITMAP_*` flags. */
  flags: number;
  /** Must be 0. */
  __reserved: number;
  /** IOVA of the first bit of the bitmap. */
  iova: bigint;
  /** Bytes of IOVA the bitmap covers. */
  length: bigint;
  /** Bytes of IOVA per bit. */
  page_size: bigint;
  /** User address of the bitmap, an array of 64-bit words. */
  data: bigint;
}

/**
 * Layout of `struct iommu_hwpt_get_dirty_bitmap`, sizeof 48; byte offsets: size 0, hwpt_id 4, flags 8,
 * __reserved 12, iova 16, length 24, page_size 32, data 40.
 */
export const iommuHwptGetDirtyBitmapStruct: UapiStruct<IommuHwptGetDirtyBitmap> = defineUapiStruct({
  name: 'iommu_hwpt_get_dirty_bitmap',
  size: 48,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'hwpt_id', offset: 4, type: 'u32' },
    { name: 'flags', offset: 8, type: 'u32' },
    { name: '__reserved', offset: 12, type: 'u32' },
    { name: 'iova', offset: 16, type: 'u64' },
    { name: 'length', offset: 24, type: 'u64' },
    { name: 'page_size', offset: 32, type: 'u64' },
    { name: 'data', offset: 40, type: 'u64' },
  ],
});

/**
 * `struct iommu_hwpt_vtd_s1_invalidate` in plain-object form: one VT-d stage-1 invalidation entry
 * (`IOMMU_HWPT_INVALIDATE_DATA_VTD_S1`).
 */
export interface IommuHwptVtdS1Invalidate {
  /** Start of the range, 4 KiB aligned; 0 with `npages` U64_MAX for everything. */
  addr: bigint;
  /** Number of 4 KiB pages. */
  npages: bigint;
  /** A combination of `IOMMU_VTD_INV_FLAGS_*` flags. */
  flags: number;
  /** Must be 0. */
  __reserved: number;
}

/**
 * Layout of `struct iommu_hwpt_vtd_s1_invalidate`, sizeof 24; byte offsets: addr 0, npages 8, flags 16,
 * __reserved 20.
 */
export const iommuHwptVtdS1InvalidateStruct: UapiStruct<IommuHwptVtdS1Invalidate> = defineUapiStruct({
  name: 'iommu_hwpt_vtd_s1_invalidate',
  size: 24,
  fields: [
    { name: 'addr', offset: 0, type: 'u64' },
    { name: 'npages', offset: 8, type: 'u64' },
    { name: 'flags', offset: 16, type: 'u32' },
    { name: '__reserved', offset: 20, type: 'u32' },
  ],
});

/**
 * `struct iommu_viommu_arm_smmuv3_invalidate` in plain-object form: one SMMUv3 invalidation command
 * (`IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3`).
 */
export interface IommuViommuArmSmmuv3Invalidate {
  /** The 128-bit command queue entry as two little-endian 64-bit words. */
  cmd: bigint[];
}

/** Layout of `struct iommu_viommu_arm_smmuv3_invalidate`, sizeof 16; byte offsets: cmd 0. */
export const iommuViommuArmSmmuv3InvalidateStruct: UapiStruct<IommuViommuArmSmmuv3Invalidate> =
  defineUapiStruct({
    name: 'iommu_viommu_arm_smmuv3_invalidate',
    size: 16,
    fields: [{ name: 'cmd', offset: 0, type: 'u64', count: 2 }],
  });

/** `struct iommu_hwpt_invalidate` in plain-object form: the argument of `IOMMU_HWPT_INVALIDATE`. */
export interface IommuHwptInvalidate {
  /** Size of the struct as user space knows it, in bytes (at least 32). */
  size: number;
  /** The nested HWPT or vIOMMU whose caches are invalidated. */
  hwpt_id: number;
  /** User address of the array of entries. */
  data_uptr: bigint;
  /** Type of every entry: one of the invalidation data types. */
  data_type: number;
  /** Bytes per entry. */
  entry_len: number;
  /** Input: number of entries. Output: number handled. */
  entry_num: number;
  /** Must be 0. */
  __reserved: number;
}

/**
 * Layout of `struct iommu_hwpt_invalidate`, sizeof 32; byte offsets: size 0, hwpt_id 4, data_uptr 8,
 * data_type 16, entry_len 20, entry_num 24, __reserved 28.
 */
export const iommuHwptInvalidateStruct: UapiStruct<IommuHwptInvalidate> = defineUapiStruct({
  name: 'iommu_hwpt_invalidate',
  size: 32,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'hwpt_id', offset: 4, type: 'u32' },
    { name: 'data_uptr', offset: 8, type: 'u64' },
    { name: 'data_type', offset: 16, type: 'u32' },
    { name: 'entry_len', offset: 20, type: 'u32' },
    { name: 'entry_num', offset: 24, type: 'u32' },
    { name: '__reserved', offset: 28, type: 'u32' },
  ],
});

/** `struct iommu_hwpt_pgfault` in plain-object form: one page-fault record read from a fault queue fd. */
export interface IommuHwptPgfault {
  /** A combination of `IOMMU_PGFAULT_FLAGS_*` flags. */
  flags: number;
  /** The device that faulted. */
  dev_id: number;
  /** The PASID, if `IOMMU_PGFAULT_FLAGS_PASID_VALID`. */
  pasid: number;
  /** The page request group index. */
  grpid: number;
  /** A combination of `IOMMU_PGFAULT_PERM_*` bits. */
  perm: number;
  /** Must be 0. */
  __reserved: number;
  /** The faulting address. */
  addr: bigint;
  /** Hint of how many bytes the device will access; 0 without a hint. */
  length: number;
  /** Identifies the fault group; echoed back in the response. */
  cookie: number;
}

/**
 * Layout of `struct iommu_hwpt_pgfault`, sizeof 40; byte offsets: flags 0, dev_id 4, pasid 8, grpid 12,
 * perm 16, __reserved 20, addr 24, length 32, cookie 36.
 */
export const iommuHwptPgfaultStruct: UapiStruct<IommuHwptPgfault> = defineUapiStruct({
  name: 'iommu_hwpt_pgfault',
  size: 40,
  fields: [
    { name: 'flags', offset: 0, type: 'u32' },
    { name: 'dev_id', offset: 4, type: 'u32' },
    { name: 'pasid', offset: 8, type: 'u32' },
    { name: 'grpid', offset: 12, type: 'u32' },
    { name: 'perm', offset: 16, type: 'u32' },
    { name: '__reserved', offset: 20, type: 'u32' },
    { name: 'addr', offset: 24, type: 'u64' },
    { name: 'length', offset: 32, type: 'u32' },
    { name: 'cookie', offset: 36, type: 'u32' },
  ],
});

/** `struct iommu_hwpt_page_response` in plain-object form: one response written to a fault queue fd. */
export interface IommuHwptPageResponse {
  /** The cookie of the fault group answered. */
  cookie: number;
  /** `IOMMUFD_PAGE_RESP_SUCCESS` or `IOMMUFD_PAGE_RESP_INVALID`. */
  code: number;
}

/** Layout of `struct iommu_hwpt_page_response`, sizeof 8; byte offsets: cookie 0, code 4. */
export const iommuHwptPageResponseStruct: UapiStruct<IommuHwptPageResponse> = defineUapiStruct({
  name: 'iommu_hwpt_page_response',
  size: 8,
  fields: [
    { name: 'cookie', offset: 0, type: 'u32' },
    { name: 'code', offset: 4, type: 'u32' },
  ],
});

/** `struct iommu_fault_alloc` in plain-object form: the argument of `IOMMU_FAULT_QUEUE_ALLOC`. */
export interface IommuFaultAlloc {
  /** Size of the struct as user space knows it, in bytes (at least 16). */
  size: number;
  /** Must be 0. */
  flags: number;
  /** Output: ID of the new fault queue object. */
  out_fault_id: number;
  /** Output: file descriptor to read faults from and write responses to. */
  out_fault_fd: number;
}

/**
 * Layout of `struct iommu_fault_alloc`, sizeof 16; byte offsets: size 0, flags 4, out_fault_id 8,
 * out_fault_fd 12.
 */
export const iommuFaultAllocStruct: UapiStruct<IommuFaultAlloc> = defineUapiStruct({
  name: 'iommu_fault_alloc',
  size: 16,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'out_fault_id', offset: 8, type: 'u32' },
    { name: 'out_fault_fd', offset: 12, type: 'u32' },
  ],
});

/**
 * `struct iommu_viommu_tegra241_cmdqv` in plain-object form: the driver data of a Tegra241 CMDQV vIOMMU.
 */
export interface IommuViommuTegra241Cmdqv {
  /** Output: mmap offset of the virtual interface page 0. */
  out_vintf_mmap_offset: bigint;
  /** Output: mmap length of the virtual interface page 0. */
  out_vintf_mmap_length: bigint;
}

/**
 * Layout of `struct iommu_viommu_tegra241_cmdqv`, sizeof 16; byte offsets: out_vintf_mmap_offset 0,
 * out_vintf_mmap_length 8.
 */
export const iommuViommuTegra241CmdqvStruct: UapiStruct<IommuViommuTegra241Cmdqv> = defineUapiStruct({
  name: 'iommu_viommu_tegra241_cmdqv',
  size: 16,
  fields: [
    { name: 'out_vintf_mmap_offset', offset: 0, type: 'u64' },
    { name: 'out_vintf_mmap_length', offset: 8, type: 'u64' },
  ],
});

/** `struct iommu_viommu_alloc` in plain-object form: the argument of `IOMMU_VIOMMU_ALLOC`. */
export interface IommuViommuAlloc {
  /** Size of the struct as user space knows it, in bytes (at least 24). */
  size: number;
  /** Must be 0. */
  flags: number;
  /** One of the `IOMMU_VIOMMU_TYPE_*` types other than DEFAULT. */
  type: number;
  /** A device whose physical IOMMU backs the vIOMMU. */
  dev_id: number;
  /** The nesting-parent paging HWPT. */
  hwpt_id: number;
  /** Output: ID of the new vIOMMU. */
  out_viommu_id: number;
  /** Length of the driver data at `data_uptr`, in bytes. */
  data_len: number;
  /** Must be 0 (not checked). */
  __reserved: number;
  /** User address of the driver data. */
  data_uptr: bigint;
}

/**
 * Layout of `struct iommu_viommu_alloc`, sizeof 40; byte offsets: size 0, flags 4, type 8, dev_id 12,
 * hwpt_id 16, out_viommu_id 20, data_len 24, __reserved 28, data_uptr 32.
 */
export const iommuViommuAllocStruct: UapiStruct<IommuViommuAlloc> = defineUapiStruct({
  name: 'iommu_viommu_alloc',
  size: 40,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'type', offset: 8, type: 'u32' },
    { name: 'dev_id', offset: 12, type: 'u32' },
    { name: 'hwpt_id', offset: 16, type: 'u32' },
    { name: 'out_viommu_id', offset: 20, type: 'u32' },
    { name: 'data_len', offset: 24, type: 'u32' },
    { name: '__reserved', offset: 28, type: 'u32' },
    { name: 'data_uptr', offset: 32, type: 'u64' },
  ],
});

/** `struct iommu_vdevice_alloc` in plain-object form: the argument of `IOMMU_VDEVICE_ALLOC`. */
export interface IommuVdeviceAlloc {
  /** Size of the struct as user space knows it, in bytes (at least 24). */
  size: number;
  /** The vIOMMU. */
  viommu_id: number;
  /** The physical device. */
  dev_id: number;
  /** Output: ID of the new vDEVICE. */
  out_vdevice_id: number;
  /** The device ID the guest sees on this vIOMMU (a virtual StreamID, RID, ...). */
  virt_id: bigint;
}

/**
 * Layout of `struct iommu_vdevice_alloc`, sizeof 24; byte offsets: size 0, viommu_id 4, dev_id 8,
 * out_vdevice_id 12, virt_id 16.
 */
export const iommuVdeviceAllocStruct: UapiStruct<IommuVdeviceAlloc> = defineUapiStruct({
  name: 'iommu_vdevice_alloc',
  size: 24,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'viommu_id', offset: 4, type: 'u32' },
    { name: 'dev_id', offset: 8, type: 'u32' },
    { name: 'out_vdevice_id', offset: 12, type: 'u32' },
    { name: 'virt_id', offset: 16, type: 'u64' },
  ],
});

/** `struct iommu_ioas_change_process` in plain-object form: the argument of `IOMMU_IOAS_CHANGE_PROCESS`. */
export interface IommuIoasChangeProcess {
  /** Size of the struct as user space knows it, in bytes (at least 8). */
  size: number;
  /** Must be 0. */
  __reserved: number;
}

/** Layout of `struct iommu_ioas_change_process`, sizeof 8; byte offsets: size 0, __reserved 4. */
export const iommuIoasChangeProcessStruct: UapiStruct<IommuIoasChangeProcess> = defineUapiStruct({
  name: 'iommu_ioas_change_process',
  size: 8,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: '__reserved', offset: 4, type: 'u32' },
  ],
});

/**
 * `struct iommufd_vevent_header` in plain-object form: the header before each record read from a vEVENTQ
 * fd.
 */
export interface IommufdVeventHeader {
  /** A combination of `IOMMU_VEVENTQ_FLAG_*` flags. */
  flags: number;
  /** Sequence number of the event, 0 to INT_MAX, then 0 again. */
  sequence: number;
}

/** Layout of `struct iommufd_vevent_header`, sizeof 8; byte offsets: flags 0, sequence 4. */
export const iommufdVeventHeaderStruct: UapiStruct<IommufdVeventHeader> = defineUapiStruct({
  name: 'iommufd_vevent_header',
  size: 8,
  fields: [
    { name: 'flags', offset: 0, type: 'u32' },
    { name: 'sequence', offset: 4, type: 'u32' },
  ],
});

/**
 * `struct iommu_vevent_arm_smmuv3` in plain-object form: an SMMUv3 virtual event
 * (`IOMMU_VEVENTQ_TYPE_ARM_SMMUV3`).
 */
export interface IommuVeventArmSmmuv3 {
  /** The 256-bit event record as four little-endian 64-bit words. */
  evt: bigint[];
}

/** Layout of `struct iommu_vevent_arm_smmuv3`, sizeof 32; byte offsets: evt 0. */
export const iommuVeventArmSmmuv3Struct: UapiStruct<IommuVeventArmSmmuv3> = defineUapiStruct({
  name: 'iommu_vevent_arm_smmuv3',
  size: 32,
  fields: [{ name: 'evt', offset: 0, type: 'u64', count: 4 }],
});

/**
 * `struct iommu_vevent_tegra241_cmdqv` in plain-object form: a Tegra241 CMDQV virtual event
 * (`IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV`).
 */
export interface IommuVeventTegra241Cmdqv {
  /** The 128-bit logical VCMDQ error map as two little-endian 64-bit words. */
  lvcmdq_err_map: bigint[];
}

/** Layout of `struct iommu_vevent_tegra241_cmdqv`, sizeof 16; byte offsets: lvcmdq_err_map 0. */
export const iommuVeventTegra241CmdqvStruct: UapiStruct<IommuVeventTegra241Cmdqv> = defineUapiStruct({
  name: 'iommu_vevent_tegra241_cmdqv',
  size: 16,
  fields: [{ name: 'lvcmdq_err_map', offset: 0, type: 'u64', count: 2 }],
});

/** `struct iommu_veventq_alloc` in plain-object form: the argument of `IOMMU_VEVENTQ_ALLOC`. */
export interface IommuVeventqAlloc {
  /** Size of the struct as user space knows it, in bytes (at least 28). */
  size: number;
  /** Must be 0. */
  flags: number;
  /** The vIOMMU the queue reports for. */
  viommu_id: number;
  /** One of the `IOMMU_VEVENTQ_TYPE_*` types other than DEFAULT. */
  type: number;
  /** Maximum number of queued events. */
  veventq_depth: number;
  /** Output: ID of the new vEVENTQ. */
  out_veventq_id: number;
  /** Output: file descriptor to read events from. */
  out_veventq_fd: number;
  /** Must be 0. */
  __reserved: number;
}

/**
 * Layout of `struct iommu_veventq_alloc`, sizeof 32; byte offsets: size 0, flags 4, viommu_id 8, type 12,
 * veventq_depth 16, out_veventq_id 20, out_veventq_fd 24, __reserved 28.
 */
export const iommuVeventqAllocStruct: UapiStruct<IommuVeventqAlloc> = defineUapiStruct({
  name: 'iommu_veventq_alloc',
  size: 32,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'viommu_id', offset: 8, type: 'u32' },
    { name: 'type', offset: 12, type: 'u32' },
    { name: 'veventq_depth', offset: 16, type: 'u32' },
    { name: 'out_veventq_id', offset: 20, type: 'u32' },
    { name: 'out_veventq_fd', offset: 24, type: 'u32' },
    { name: '__reserved', offset: 28, type: 'u32' },
  ],
});

/** `struct iommu_hw_queue_alloc` in plain-object form: the argument of `IOMMU_HW_QUEUE_ALLOC`. */
export interface IommuHwQueueAlloc {
  /** Size of the struct as user space knows it, in bytes (at least 40). */
  size: number;
  /** Must be 0. */
  flags: number;
  /** The vIOMMU the queue belongs to. */
  viommu_id: number;
  /** One of the `IOMMU_HW_QUEUE_TYPE_*` types other than DEFAULT. */
  type: number;
  /** Index of the queue among the queues of its type on the vIOMMU. */
  index: number;
  /** Output: ID of the new HW queue. */
  out_hw_queue_id: number;
  /** Address of the queue memory in the nesting parent (guest physical) address space. */
  nesting_parent_iova: bigint;
  /** Bytes of queue memory. */
  length: bigint;
}

/**
 * Layout of `struct iommu_hw_queue_alloc`, sizeof 40; byte offsets: size 0, flags 4, viommu_id 8, type 12,
 * index 16, out_hw_queue_id 20, nesting_parent_iova 24, length 32.
 */
export const iommuHwQueueAllocStruct: UapiStruct<IommuHwQueueAlloc> = defineUapiStruct({
  name: 'iommu_hw_queue_alloc',
  size: 40,
  fields: [
    { name: 'size', offset: 0, type: 'u32' },
    { name: 'flags', offset: 4, type: 'u32' },
    { name: 'viommu_id', offset: 8, type: 'u32' },
    { name: 'type', offset: 12, type: 'u32' },
    { name: 'index', offset: 16, type: 'u32' },
    { name: 'out_hw_queue_id', offset: 20, type: 'u32' },
    { name: 'nesting_parent_iova', offset: 24, type: 'u64' },
    { name: 'length', offset: 32, type: 'u64' },
  ],
});
// ---- the command table facts ----

/**
 * One iommufd ioctl as the uAPI defines it, the facts of one `IOCTL_OP` entry of
 * drivers/iommu/iommufd/main.c without its handler.
 *
 * @typeParam T - the plain-object form of the argument struct
 */
export interface IommufdUapiCommand<T> {
  /** The C name of the request (`'IOMMU_IOAS_MAP'`). */
  readonly name: string;
  /** The request value (`_IO(';', nr)`). */
  readonly request: number;
  /** The layout of the argument struct; its `size` is the kernel's `sizeof`. */
  readonly struct: UapiStruct<T>;
  /**
   * The smallest `size` accepted, in bytes: the end of the last field of the struct's first
   * version. A smaller `size` is EINVAL.
   */
  readonly minSize: number;
}

function uapiCommand<T>(
  name: string,
  request: number,
  struct: UapiStruct<T>,
  lastField: keyof T & string,
): IommufdUapiCommand<T> {
  return Object.freeze({ name, request, struct, minSize: struct.offsetofend(lastField) });
}

/** `IOMMU_DESTROY` with `struct iommu_destroy`; minimum `size` 8 (end of `id`). */
export const iommuDestroyCommand: IommufdUapiCommand<IommuDestroy> = uapiCommand(
  'IOMMU_DESTROY',
  IOMMU_DESTROY,
  iommuDestroyStruct,
  'id',
);

/** `IOMMU_IOAS_ALLOC` with `struct iommu_ioas_alloc`; minimum `size` 12 (end of `out_ioas_id`). */
export const iommuIoasAllocCommand: IommufdUapiCommand<IommuIoasAlloc> = uapiCommand(
  'IOMMU_IOAS_ALLOC',
  IOMMU_IOAS_ALLOC,
  iommuIoasAllocStruct,
  'out_ioas_id',
);

/**
 * `IOMMU_IOAS_ALLOW_IOVAS` with `struct iommu_ioas_allow_iovas`; minimum `size` 24 (end of
 * `allowed_iovas`).
 */
export const iommuIoasAllowIovasCommand: IommufdUapiCommand<IommuIoasAllowIovas> = uapiCommand(
  'IOMMU_IOAS_ALLOW_IOVAS',
  IOMMU_IOAS_ALLOW_IOVAS,
  iommuIoasAllowIovasStruct,
  'allowed_iovas',
);

/** `IOMMU_IOAS_COPY` with `struct iommu_ioas_copy`; minimum `size` 40 (end of `src_iova`). */
export const iommuIoasCopyCommand: IommufdUapiCommand<IommuIoasCopy> = uapiCommand(
  'IOMMU_IOAS_COPY',
  IOMMU_IOAS_COPY,
  iommuIoasCopyStruct,
  'src_iova',
);

/**
 * `IOMMU_IOAS_IOVA_RANGES` with `struct iommu_ioas_iova_ranges`; minimum `size` 32 (end of
 * `out_iova_alignment`).
 */
export const iommuIoasIovaRangesCommand: IommufdUapiCommand<IommuIoasIovaRanges> = uapiCommand(
  'IOMMU_IOAS_IOVA_RANGES',
  IOMMU_IOAS_IOVA_RANGES,
  iommuIoasIovaRangesStruct,
  'out_iova_alignment',
);

/** `IOMMU_IOAS_MAP` with `struct iommu_ioas_map`; minimum `size` 40 (end of `iova`). */
export const iommuIoasMapCommand: IommufdUapiCommand<IommuIoasMap> = uapiCommand(
  'IOMMU_IOAS_MAP',
  IOMMU_IOAS_MAP,
  iommuIoasMapStruct,
  'iova',
);

/** `IOMMU_IOAS_UNMAP` with `struct iommu_ioas_unmap`; minimum `size` 24 (end of `length`). */
export const iommuIoasUnmapCommand: IommufdUapiCommand<IommuIoasUnmap> = uapiCommand(
  'IOMMU_IOAS_UNMAP',
  IOMMU_IOAS_UNMAP,
  iommuIoasUnmapStruct,
  'length',
);

/** `IOMMU_OPTION` with `struct iommu_option`; minimum `size` 24 (end of `val64`). */
export const iommuOptionCommand: IommufdUapiCommand<IommuOption> = uapiCommand(
  'IOMMU_OPTION',
  IOMMU_OPTION,
  iommuOptionStruct,
  'val64',
);

/** `IOMMU_VFIO_IOAS` with `struct iommu_vfio_ioas`; minimum `size` 12 (end of `__reserved`). */
export const iommuVfioIoasCommand: IommufdUapiCommand<IommuVfioIoas> = uapiCommand(
  'IOMMU_VFIO_IOAS',
  IOMMU_VFIO_IOAS,
  iommuVfioIoasStruct,
  '__reserved',
);

/** `IOMMU_HWPT_ALLOC` with `struct iommu_hwpt_alloc`; minimum `size` 24 (end of `__reserved`). */
export const iommuHwptAllocCommand: IommufdUapiCommand<IommuHwptAlloc> = uapiCommand(
  'IOMMU_HWPT_ALLOC',
  IOMMU_HWPT_ALLOC,
  iommuHwptAllocStruct,
  '__reserved',
);

/** `IOMMU_GET_HW_INFO` with `struct iommu_hw_info`; minimum `size` 32 (end of `__reserved`). */
export const iommuGetHwInfoCommand: IommufdUapiCommand<IommuHwInfo> = uapiCommand(
  'IOMMU_GET_HW_INFO',
  IOMMU_GET_HW_INFO,
  iommuHwInfoStruct,
  '__reserved',
);

/**
 * `IOMMU_HWPT_SET_DIRTY_TRACKING` with `struct iommu_hwpt_set_dirty_tracking`; minimum `size` 16 (end of
 * `__reserved`).
 */
export const iommuHwptSetDirtyTrackingCommand: IommufdUapiCommand<IommuHwptSetDirtyTracking> = uapiCommand(
  'IOMMU_HWPT_SET_DIRTY_TRACKING',
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  iommuHwptSetDirtyTrackingStruct,
  '__reserved',
);

/**
 * `IOMMU_HWPT_GET_DIRTY_BITMAP` with `struct iommu_hwpt_get_dirty_bitmap`; minimum `size` 48 (end of
 * `data`).
 */
export const iommuHwptGetDirtyBitmapCommand: IommufdUapiCommand<IommuHwptGetDirtyBitmap> = uapiCommand(
  'IOMMU_HWPT_GET_DIRTY_BITMAP',
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  iommuHwptGetDirtyBitmapStruct,
  'data',
);

/** `IOMMU_HWPT_INVALIDATE` with `struct iommu_hwpt_invalidate`; minimum `size` 32 (end of `__reserved`). */
export const iommuHwptInvalidateCommand: IommufdUapiCommand<IommuHwptInvalidate> = uapiCommand(
  'IOMMU_HWPT_INVALIDATE',
  IOMMU_HWPT_INVALIDATE,
  iommuHwptInvalidateStruct,
  '__reserved',
);

/** `IOMMU_FAULT_QUEUE_ALLOC` with `struct iommu_fault_alloc`; minimum `size` 16 (end of `out_fault_fd`). */
export const iommuFaultQueueAllocCommand: IommufdUapiCommand<IommuFaultAlloc> = uapiCommand(
  'IOMMU_FAULT_QUEUE_ALLOC',
  IOMMU_FAULT_QUEUE_ALLOC,
  iommuFaultAllocStruct,
  'out_fault_fd',
);

/** `IOMMU_IOAS_MAP_FILE` with `struct iommu_ioas_map_file`; minimum `size` 40 (end of `iova`). */
export const iommuIoasMapFileCommand: IommufdUapiCommand<IommuIoasMapFile> = uapiCommand(
  'IOMMU_IOAS_MAP_FILE',
  IOMMU_IOAS_MAP_FILE,
  iommuIoasMapFileStruct,
  'iova',
);

/** `IOMMU_VIOMMU_ALLOC` with `struct iommu_viommu_alloc`; minimum `size` 24 (end of `out_viommu_id`). */
export const iommuViommuAllocCommand: IommufdUapiCommand<IommuViommuAlloc> = uapiCommand(
  'IOMMU_VIOMMU_ALLOC',
  IOMMU_VIOMMU_ALLOC,
  iommuViommuAllocStruct,
  'out_viommu_id',
);

/** `IOMMU_VDEVICE_ALLOC` with `struct iommu_vdevice_alloc`; minimum `size` 24 (end of `virt_id`). */
export const iommuVdeviceAllocCommand: IommufdUapiCommand<IommuVdeviceAlloc> = uapiCommand(
  'IOMMU_VDEVICE_ALLOC',
  IOMMU_VDEVICE_ALLOC,
  iommuVdeviceAllocStruct,
  'virt_id',
);

/**
 * `IOMMU_IOAS_CHANGE_PROCESS` with `struct iommu_ioas_change_process`; minimum `size` 8 (end of
 * `__reserved`).
 */
export const iommuIoasChangeProcessCommand: IommufdUapiCommand<IommuIoasChangeProcess> = uapiCommand(
  'IOMMU_IOAS_CHANGE_PROCESS',
  IOMMU_IOAS_CHANGE_PROCESS,
  iommuIoasChangeProcessStruct,
  '__reserved',
);

/** `IOMMU_VEVENTQ_ALLOC` with `struct iommu_veventq_alloc`; minimum `size` 28 (end of `out_veventq_fd`). */
export const iommuVeventqAllocCommand: IommufdUapiCommand<IommuVeventqAlloc> = uapiCommand(
  'IOMMU_VEVENTQ_ALLOC',
  IOMMU_VEVENTQ_ALLOC,
  iommuVeventqAllocStruct,
  'out_veventq_fd',
);

/** `IOMMU_HW_QUEUE_ALLOC` with `struct iommu_hw_queue_alloc`; minimum `size` 40 (end of `length`). */
export const iommuHwQueueAllocCommand: IommufdUapiCommand<IommuHwQueueAlloc> = uapiCommand(
  'IOMMU_HW_QUEUE_ALLOC',
  IOMMU_HW_QUEUE_ALLOC,
  iommuHwQueueAllocStruct,
  'length',
);

/** Every iommufd command of the uAPI header, in command-number order (without `IOMMU_TEST_CMD`). */
export const iommufdUapiCommands: readonly IommufdUapiCommand<object>[] = Object.freeze([
  iommuDestroyCommand,
  iommuIoasAllocCommand,
  iommuIoasAllowIovasCommand,
  iommuIoasCopyCommand,
  iommuIoasIovaRangesCommand,
  iommuIoasMapCommand,
  iommuIoasUnmapCommand,
  iommuOptionCommand,
  iommuVfioIoasCommand,
  iommuHwptAllocCommand,
  iommuGetHwInfoCommand,
  iommuHwptSetDirtyTrackingCommand,
  iommuHwptGetDirtyBitmapCommand,
  iommuHwptInvalidateCommand,
  iommuFaultQueueAllocCommand,
  iommuIoasMapFileCommand,
  iommuViommuAllocCommand,
  iommuVdeviceAllocCommand,
  iommuIoasChangeProcessCommand,
  iommuVeventqAllocCommand,
  iommuHwQueueAllocCommand,
]);
