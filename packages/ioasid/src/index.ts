// The public surface of @iommu-ts/ioasid: re-exports only.

export {
  IOASIDS_CGROUP_FILES,
  IoasidsCgroup,
  IoasidsCgroupController,
  type IoasidsCgroupFile,
} from './cgroup.js';
export {
  INVALID_IOASID,
  IOASID_SET_TYPE_NR,
  type Ioasid,
  IoasidNotify,
  IoasidPrio,
  IoasidSetType,
  IoasidState,
  PCI_PASID_MAX,
  pasidValid,
} from './constants.js';
export type { IoasidAllocatorOps } from './custom-allocator.js';
export { IOMMU_FIRST_GLOBAL_PASID, IOMMU_PASID_INVALID } from './global-pasid.js';
export { IdAllocator, type IdAllocatorOptions } from './id-allocator.js';
export { IoasidSet } from './ioasid-set.js';
export {
  type IoasidChargeHooks,
  type IoasidInfo,
  type IoasidLogger,
  IoasidSubsystem,
  type IoasidSubsystemOptions,
} from './ioasid-subsystem.js';
export { IoasidUserDevice, IoasidUserFile, type IoasidUserIoctlArg } from './ioasid-user.js';
export type { IoasidNbArgs, IoasidNotifierBlock } from './notifier.js';
export type { IoasidTask } from './task.js';
export {
  IOASID_API_VERSION,
  IOASID_BASE,
  IOASID_GET_API_VERSION,
  IOASID_GET_INFO,
  IOASID_REQUEST_ALLOC,
  IOASID_REQUEST_FREE,
  IOASID_TYPE,
  IOASID_USER_BITS,
  IOASID_USER_QUOTA,
  type IoasidUserAllocRange,
  type IoasidUserAllocRequest,
  type IoasidUserInfo,
  ioasidAllocRangeStruct,
  ioasidAllocRequestStruct,
  ioasidInfoStruct,
} from './uapi.js';
