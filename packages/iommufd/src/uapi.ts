/**
 * The constants of the iommufd user ABI (include/uapi/linux/iommufd.h, up to the release that added
 * `IOMMU_HW_QUEUE_ALLOC`): the ioctl magic and command numbers, the request values built from them,
 * and every enum and flag of the header, under their exact C names.
 *
 * Every iommufd request is `_IO(';', nr)`: direction and size bits are 0 because the argument
 * struct carries its own size in its first `__u32`, so a request is simply 0x3b00 + nr.
 */

import { _IO } from '@iommu-ts/base';

/** The ioctl magic of iommufd (`IOMMUFD_TYPE`): the character `';'`, 0x3b, shared with VFIO. */
export const IOMMUFD_TYPE = 0x3b;

// ---- command numbers (the anonymous enum starting at IOMMUFD_CMD_BASE) ----

/**
 * First iommufd command number (`IOMMUFD_CMD_BASE`), 0x80; lower numbers go to the VFIO compatibility layer.
 */
export const IOMMUFD_CMD_BASE = 0x80;
/** Command number of {@link IOMMU_DESTROY} (`IOMMUFD_CMD_DESTROY`), 0x80. */
export const IOMMUFD_CMD_DESTROY = 0x80;
/** Command number of {@link IOMMU_IOAS_ALLOC} (`IOMMUFD_CMD_IOAS_ALLOC`), 0x81. */
export const IOMMUFD_CMD_IOAS_ALLOC = 0x81;
/** Command number of {@link IOMMU_IOAS_ALLOW_IOVAS} (`IOMMUFD_CMD_IOAS_ALLOW_IOVAS`), 0x82. */
export const IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82;
/** Command number of {@link IOMMU_IOAS_COPY} (`IOMMUFD_CMD_IOAS_COPY`), 0x83. */
export const IOMMUFD_CMD_IOAS_COPY = 0x83;
/** Command number of {@link IOMMU_IOAS_IOVA_RANGES} (`IOMMUFD_CMD_IOAS_IOVA_RANGES`), 0x84. */
export const IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84;
/** Command number of {@link IOMMU_IOAS_MAP} (`IOMMUFD_CMD_IOAS_MAP`), 0x85. */
export const IOMMUFD_CMD_IOAS_MAP = 0x85;
/** Command number of {@link IOMMU_IOAS_UNMAP} (`IOMMUFD_CMD_IOAS_UNMAP`), 0x86. */
export const IOMMUFD_CMD_IOAS_UNMAP = 0x86;
/** Command number of {@link IOMMU_OPTION} (`IOMMUFD_CMD_OPTION`), 0x87. */
export const IOMMUFD_CMD_OPTION = 0x87;
/** Command number of {@link IOMMU_VFIO_IOAS} (`IOMMUFD_CMD_VFIO_IOAS`), 0x88. */
export const IOMMUFD_CMD_VFIO_IOAS = 0x88;
/** Command number of {@link IOMMU_HWPT_ALLOC} (`IOMMUFD_CMD_HWPT_ALLOC`), 0x89. */
export const IOMMUFD_CMD_HWPT_ALLOC = 0x89;
/** Command number of {@link IOMMU_GET_HW_INFO} (`IOMMUFD_CMD_GET_HW_INFO`), 0x8a. */
export const IOMMUFD_CMD_GET_HW_INFO = 0x8a;
/** Command number of {@link IOMMU_HWPT_SET_DIRTY_TRACKING} (`IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING`), 0x8b. */
export const IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8b;
/** Command number of {@link IOMMU_HWPT_GET_DIRTY_BITMAP} (`IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP`), 0x8c. */
export const IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8c;
/** Command number of {@link IOMMU_HWPT_INVALIDATE} (`IOMMUFD_CMD_HWPT_INVALIDATE`), 0x8d. */
export const IOMMUFD_CMD_HWPT_INVALIDATE = 0x8d;
/** Command number of {@link IOMMU_FAULT_QUEUE_ALLOC} (`IOMMUFD_CMD_FAULT_QUEUE_ALLOC`), 0x8e. */
export const IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8e;
/** Command number of {@link IOMMU_IOAS_MAP_FILE} (`IOMMUFD_CMD_IOAS_MAP_FILE`), 0x8f. */
export const IOMMUFD_CMD_IOAS_MAP_FILE = 0x8f;
/** Command number of {@link IOMMU_VIOMMU_ALLOC} (`IOMMUFD_CMD_VIOMMU_ALLOC`), 0x90. */
export const IOMMUFD_CMD_VIOMMU_ALLOC = 0x90;
/** Command number of {@link IOMMU_VDEVICE_ALLOC} (`IOMMUFD_CMD_VDEVICE_ALLOC`), 0x91. */
export const IOMMUFD_CMD_VDEVICE_ALLOC = 0x91;
/** Command number of {@link IOMMU_IOAS_CHANGE_PROCESS} (`IOMMUFD_CMD_IOAS_CHANGE_PROCESS`), 0x92. */
export const IOMMUFD_CMD_IOAS_CHANGE_PROCESS = 0x92;
/** Command number of {@link IOMMU_VEVENTQ_ALLOC} (`IOMMUFD_CMD_VEVENTQ_ALLOC`), 0x93. */
export const IOMMUFD_CMD_VEVENTQ_ALLOC = 0x93;
/** Command number of {@link IOMMU_HW_QUEUE_ALLOC} (`IOMMUFD_CMD_HW_QUEUE_ALLOC`), 0x94; the last one. */
export const IOMMUFD_CMD_HW_QUEUE_ALLOC = 0x94;

// ---- request values ----

/** `IOMMU_DESTROY` = 0x3b80: destroy any destroyable object by ID; argument `struct iommu_destroy`. */
export const IOMMU_DESTROY = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY);
/** `IOMMU_IOAS_ALLOC` = 0x3b81: create an IO address space; argument `struct iommu_ioas_alloc`. */
export const IOMMU_IOAS_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC);
/**
 * `IOMMU_IOAS_ALLOW_IOVAS` = 0x3b82: replace an IOAS's allowed IOVA list; argument
 * `struct iommu_ioas_allow_iovas`.
 */
export const IOMMU_IOAS_ALLOW_IOVAS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOW_IOVAS);
/**
 * `IOMMU_IOAS_COPY` = 0x3b83: map a range already mapped in one IOAS into another; argument
 * `struct iommu_ioas_copy`.
 */
export const IOMMU_IOAS_COPY = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_COPY);
/**
 * `IOMMU_IOAS_IOVA_RANGES` = 0x3b84: report the usable IOVA ranges; argument `struct iommu_ioas_iova_ranges`.
 */
export const IOMMU_IOAS_IOVA_RANGES = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_IOVA_RANGES);
/** `IOMMU_IOAS_MAP` = 0x3b85: map user memory into an IOAS; argument `struct iommu_ioas_map`. */
export const IOMMU_IOAS_MAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP);
/** `IOMMU_IOAS_UNMAP` = 0x3b86: unmap whole mappings from an IOAS; argument `struct iommu_ioas_unmap`. */
export const IOMMU_IOAS_UNMAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP);
/** `IOMMU_OPTION` = 0x3b87: get or set a global or per-object option; argument `struct iommu_option`. */
export const IOMMU_OPTION = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION);
/**
 * `IOMMU_VFIO_IOAS` = 0x3b88: get, set or clear the VFIO compatibility IOAS; argument
 * `struct iommu_vfio_ioas`.
 */
export const IOMMU_VFIO_IOAS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VFIO_IOAS);
/** `IOMMU_HWPT_ALLOC` = 0x3b89: allocate a hardware page table; argument `struct iommu_hwpt_alloc`. */
export const IOMMU_HWPT_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC);
/** `IOMMU_GET_HW_INFO` = 0x3b8a: query a device's IOMMU information; argument `struct iommu_hw_info`. */
export const IOMMU_GET_HW_INFO = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO);
/**
 * `IOMMU_HWPT_SET_DIRTY_TRACKING` = 0x3b8b: turn dirty tracking of a paging HWPT on or off; argument
 * `struct iommu_hwpt_set_dirty_tracking`.
 */
export const IOMMU_HWPT_SET_DIRTY_TRACKING = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING);
/**
 * `IOMMU_HWPT_GET_DIRTY_BITMAP` = 0x3b8c: read (and by default clear) the dirty bits of an IOVA range;
 * argument `struct iommu_hwpt_get_dirty_bitmap`.
 */
export const IOMMU_HWPT_GET_DIRTY_BITMAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP);
/**
 * `IOMMU_HWPT_INVALIDATE` = 0x3b8d: invalidate caches of a nested HWPT or a vIOMMU; argument
 * `struct iommu_hwpt_invalidate`.
 */
export const IOMMU_HWPT_INVALIDATE = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_INVALIDATE);
/**
 * `IOMMU_FAULT_QUEUE_ALLOC` = 0x3b8e: create a fault queue object and its fd; argument
 * `struct iommu_fault_alloc`.
 */
export const IOMMU_FAULT_QUEUE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_FAULT_QUEUE_ALLOC);
/**
 * `IOMMU_IOAS_MAP_FILE` = 0x3b8f: map part of a memfd into an IOAS; argument `struct iommu_ioas_map_file`.
 */
export const IOMMU_IOAS_MAP_FILE = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP_FILE);
/** `IOMMU_VIOMMU_ALLOC` = 0x3b90: create a virtual IOMMU; argument `struct iommu_viommu_alloc`. */
export const IOMMU_VIOMMU_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VIOMMU_ALLOC);
/**
 * `IOMMU_VDEVICE_ALLOC` = 0x3b91: create a virtual device on a vIOMMU; argument `struct iommu_vdevice_alloc`.
 */
export const IOMMU_VDEVICE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VDEVICE_ALLOC);
/**
 * `IOMMU_IOAS_CHANGE_PROCESS` = 0x3b92: move the pinned-memory accounting of every map to the
 * calling process; argument `struct iommu_ioas_change_process`.
 */
export const IOMMU_IOAS_CHANGE_PROCESS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_CHANGE_PROCESS);
/**
 * `IOMMU_VEVENTQ_ALLOC` = 0x3b93: create a virtual event queue and its fd; argument
 * `struct iommu_veventq_alloc`.
 */
export const IOMMU_VEVENTQ_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VEVENTQ_ALLOC);
/**
 * `IOMMU_HW_QUEUE_ALLOC` = 0x3b94: create a hardware-accelerated queue; argument
 * `struct iommu_hw_queue_alloc`.
 */
export const IOMMU_HW_QUEUE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HW_QUEUE_ALLOC);

// ---- enum iommufd_ioas_map_flags ----

/**
 * Map flag: place the mapping at the given `iova` instead of choosing one (`IOMMU_IOAS_MAP_FIXED_IOVA`, bit
 * 0).
 */
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
/** Map flag: devices may write through the mapping (`IOMMU_IOAS_MAP_WRITEABLE`, bit 1). */
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
/** Map flag: devices may read through the mapping (`IOMMU_IOAS_MAP_READABLE`, bit 2). */
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;

// ---- enum iommufd_option / iommufd_option_ops ----

/**
 * Option: how RLIMIT_MEMLOCK is charged (`IOMMU_OPTION_RLIMIT_MODE`, 0); global (`object_id` 0).
 * Value 0 (default) charges the user, 1 charges the process; setting it needs CAP_SYS_RESOURCE.
 */
export const IOMMU_OPTION_RLIMIT_MODE = 0;
/**
 * Option: whether contiguous pages may be combined into large IOMMU mappings
 * (`IOMMU_OPTION_HUGE_PAGES`, 1); per IOAS (`object_id` is the IOAS ID). Value 1 is the default.
 */
export const IOMMU_OPTION_HUGE_PAGES = 1;
/** Option operation: store `val64` (`IOMMU_OPTION_OP_SET`, 0). */
export const IOMMU_OPTION_OP_SET = 0;
/** Option operation: return the value in `val64` (`IOMMU_OPTION_OP_GET`, 1). */
export const IOMMU_OPTION_OP_GET = 1;

// ---- enum iommufd_vfio_ioas_op ----

/** VFIO_IOAS operation: report the compatibility IOAS (`IOMMU_VFIO_IOAS_GET`, 0). */
export const IOMMU_VFIO_IOAS_GET = 0;
/** VFIO_IOAS operation: make `ioas_id` the compatibility IOAS (`IOMMU_VFIO_IOAS_SET`, 1). */
export const IOMMU_VFIO_IOAS_SET = 1;
/** VFIO_IOAS operation: forget the compatibility IOAS (`IOMMU_VFIO_IOAS_CLEAR`, 2). */
export const IOMMU_VFIO_IOAS_CLEAR = 2;

// ---- enum iommufd_hwpt_alloc_flags ----

/** HWPT_ALLOC flag: the HWPT may be the parent of nested HWPTs (`IOMMU_HWPT_ALLOC_NEST_PARENT`, bit 0). */
export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
/** HWPT_ALLOC flag: the HWPT must support dirty tracking (`IOMMU_HWPT_ALLOC_DIRTY_TRACKING`, bit 1). */
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
/**
 * HWPT_ALLOC flag: `fault_id` names a fault queue to report faults to (`IOMMU_HWPT_FAULT_ID_VALID`, bit 2).
 */
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
/** HWPT_ALLOC flag: the domain may be attached to PASIDs (`IOMMU_HWPT_ALLOC_PASID`, bit 3). */
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;

// ---- enum iommu_hwpt_vtd_s1_flags ----

/** VT-d stage-1 data flag: supervisor requests (`IOMMU_VTD_S1_SRE`, bit 0). */
export const IOMMU_VTD_S1_SRE = 1 << 0;
/** VT-d stage-1 data flag: extended access enable (`IOMMU_VTD_S1_EAFE`, bit 1). */
export const IOMMU_VTD_S1_EAFE = 1 << 1;
/** VT-d stage-1 data flag: write protect enable (`IOMMU_VTD_S1_WPE`, bit 2). */
export const IOMMU_VTD_S1_WPE = 1 << 2;

// ---- enum iommu_hwpt_data_type ----

/** HWPT data type: no driver data, a kernel-managed HWPT (`IOMMU_HWPT_DATA_NONE`, 0). */
export const IOMMU_HWPT_DATA_NONE = 0;
/** HWPT data type: `struct iommu_hwpt_vtd_s1` (`IOMMU_HWPT_DATA_VTD_S1`, 1). */
export const IOMMU_HWPT_DATA_VTD_S1 = 1;
/** HWPT data type: `struct iommu_hwpt_arm_smmuv3` (`IOMMU_HWPT_DATA_ARM_SMMUV3`, 2). */
export const IOMMU_HWPT_DATA_ARM_SMMUV3 = 2;

// ---- enum iommu_hw_info_vtd_flags ----

/**
 * VT-d hw_info flag: read-only mappings must not be used in a nesting parent (erratum 772415,
 * `IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17`, bit 0).
 */
export const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0;

// ---- enum iommu_hw_info_type ----

/** hw_info type reported by drivers without hardware information (`IOMMU_HW_INFO_TYPE_NONE`, 0). */
export const IOMMU_HW_INFO_TYPE_NONE = 0;
/** hw_info type asking for the driver's default type on input (`IOMMU_HW_INFO_TYPE_DEFAULT`, 0). */
export const IOMMU_HW_INFO_TYPE_DEFAULT = 0;
/** hw_info type: `struct iommu_hw_info_vtd` (`IOMMU_HW_INFO_TYPE_INTEL_VTD`, 1). */
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
/** hw_info type: `struct iommu_hw_info_arm_smmuv3` (`IOMMU_HW_INFO_TYPE_ARM_SMMUV3`, 2). */
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;
/** hw_info type: `struct iommu_hw_info_tegra241_cmdqv` (`IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV`, 3). */
export const IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV = 3;

// ---- enum iommufd_hw_capabilities ----

/** Capability: the IOMMU can track dirty pages (`IOMMU_HW_CAP_DIRTY_TRACKING`, bit 0). */
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0;
/** Capability: PCI PASID execute permission supported (`IOMMU_HW_CAP_PCI_PASID_EXEC`, bit 1). */
export const IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1;
/** Capability: PCI PASID privileged mode supported (`IOMMU_HW_CAP_PCI_PASID_PRIV`, bit 2). */
export const IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2;

// ---- enum iommufd_hw_info_flags ----

/** GET_HW_INFO flag: `in_data_type` selects the info type wanted (`IOMMU_HW_INFO_FLAG_INPUT_TYPE`, bit 0). */
export const IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0;

// ---- dirty tracking ----

/**
 * SET_DIRTY_TRACKING flag: enable tracking; without it tracking is disabled
 * (`IOMMU_HWPT_DIRTY_TRACKING_ENABLE`, 1).
 */
export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;
/**
 * GET_DIRTY_BITMAP flag: read the dirty bits without clearing them (`IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR`,
 * 1).
 */
export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;

// ---- enum iommu_hwpt_invalidate_data_type ----

/**
 * Invalidation entry type: `struct iommu_hwpt_vtd_s1_invalidate` (`IOMMU_HWPT_INVALIDATE_DATA_VTD_S1`, 0).
 */
export const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0;
/**
 * Invalidation entry type: `struct iommu_viommu_arm_smmuv3_invalidate`
 * (`IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3`, 1).
 */
export const IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1;

// ---- enum iommu_hwpt_vtd_s1_invalidate_flags ----

/** VT-d invalidation flag: only leaf entries changed (`IOMMU_VTD_INV_FLAGS_LEAF`, bit 0). */
export const IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0;

// ---- enum iommu_hwpt_pgfault_flags / iommu_hwpt_pgfault_perm ----

/** Fault record flag: `pasid` is valid (`IOMMU_PGFAULT_FLAGS_PASID_VALID`, bit 0). */
export const IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0;
/** Fault record flag: last fault of its group (`IOMMU_PGFAULT_FLAGS_LAST_PAGE`, bit 1). */
export const IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1;
/** Fault permission: read requested (`IOMMU_PGFAULT_PERM_READ`, bit 0). */
export const IOMMU_PGFAULT_PERM_READ = 1 << 0;
/** Fault permission: write requested (`IOMMU_PGFAULT_PERM_WRITE`, bit 1). */
export const IOMMU_PGFAULT_PERM_WRITE = 1 << 1;
/** Fault permission: execute requested in the PASID prefix (`IOMMU_PGFAULT_PERM_EXEC`, bit 2). */
export const IOMMU_PGFAULT_PERM_EXEC = 1 << 2;
/** Fault permission: privileged mode requested in the PASID prefix (`IOMMU_PGFAULT_PERM_PRIV`, bit 3). */
export const IOMMU_PGFAULT_PERM_PRIV = 1 << 3;

// ---- enum iommufd_page_response_code ----

/** Page response: the fault was handled, retry the access (`IOMMUFD_PAGE_RESP_SUCCESS`, 0). */
export const IOMMUFD_PAGE_RESP_SUCCESS = 0;
/** Page response: the fault cannot be handled, do not retry (`IOMMUFD_PAGE_RESP_INVALID`, 1). */
export const IOMMUFD_PAGE_RESP_INVALID = 1;

// ---- enum iommu_viommu_type ----

/** vIOMMU type 0, reserved (`IOMMU_VIOMMU_TYPE_DEFAULT`). */
export const IOMMU_VIOMMU_TYPE_DEFAULT = 0;
/** vIOMMU type: Arm SMMUv3 (`IOMMU_VIOMMU_TYPE_ARM_SMMUV3`, 1). */
export const IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1;
/** vIOMMU type: Arm SMMUv3 with NVIDIA Tegra241 CMDQV (`IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV`, 2). */
export const IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV = 2;

// ---- vEVENTQ ----

/** vEVENT header flag: events were lost after this point (`IOMMU_VEVENTQ_FLAG_LOST_EVENTS`, bit 0). */
export const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0;
/** vEVENTQ type 0, reserved (`IOMMU_VEVENTQ_TYPE_DEFAULT`). */
export const IOMMU_VEVENTQ_TYPE_DEFAULT = 0;
/** vEVENTQ type: Arm SMMUv3 event records (`IOMMU_VEVENTQ_TYPE_ARM_SMMUV3`, 1). */
export const IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1;
/** vEVENTQ type: Tegra241 CMDQV error interrupts (`IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV`, 2). */
export const IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV = 2;

// ---- enum iommu_hw_queue_type ----

/** HW queue type 0, reserved (`IOMMU_HW_QUEUE_TYPE_DEFAULT`). */
export const IOMMU_HW_QUEUE_TYPE_DEFAULT = 0;
/** HW queue type: Tegra241 CMDQV virtual command queue (`IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV`, 1). */
export const IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV = 1;
