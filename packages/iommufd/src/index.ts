/**
 * @packageDocumentation
 * iommufd after Linux drivers/iommu/iommufd: `/dev/iommu` contexts and their objects (IOAS, HWPT,
 * device, access), the ioctl uAPI with Linux's numbers, layouts and errnos, the io_pagetable engine
 * that pins each user page once, and the kernel API drivers use. The selftest mock driver and
 * IOMMU_TEST_CMD are in the `@iommu-ts/iommufd/selftest` entry.
 */

export { ErrnoError } from '@iommu-ts/base';

// context and file

export { IommufdIoas, iommufdGetIoas, iommufdIoasAlloc } from './ioas.js';
export { Iommufd, type IommufdOpenOptions, iommufdCtxFromFile } from './iommufd.js';
export {
  IOMMUFD_OBJECT_ID_MAX,
  IommufdCtx,
  type IommufdCtxOptions,
  IommufdObject,
  IommufdObjectType,
} from './main.js';

// end context and file

// kernel API: devices, HW pagetables, accesses

export {
  IommufdAccess,
  type IommufdAccessOps,
  iommufdAccessAttach,
  iommufdAccessCreate,
  iommufdAccessDestroy,
  iommufdAccessDetach,
  iommufdAccessPinPages,
  iommufdAccessReplace,
  iommufdAccessRw,
  iommufdAccessUnpinPages,
} from './access.js';
export {
  type IommufdAttachHandle,
  IommufdDevice,
  type IommufdDeviceBindOptions,
  IommufdGroup,
  type IommufdHwInfoOps,
  iommufdDeviceAttach,
  iommufdDeviceBind,
  iommufdDeviceDetach,
  iommufdDeviceReplace,
  iommufdDeviceUnbind,
  iommufdGetDevice,
  iommufdHwPagetableAttach,
  iommufdHwPagetableDetach,
} from './device.js';
export {
  findHwptPaging,
  type IommufdCacheInvalidateOps,
  IommufdHwPagetable,
  IommufdHwptNested,
  IommufdHwptPaging,
  type IommuUserData,
  type IommuUserDataArray,
  iommuCopyStructFromUser,
  iommuCopyStructFromUserArray,
  iommufdGetHwptPaging,
  iommufdHwPagetablePut,
  iommufdHwptNestedAlloc,
  iommufdHwptPagingAlloc,
  iommufdHwptPagingEnforceCc,
} from './hw-pagetable.js';
export {
  type IoptDirtyBitmapRequest,
  ioptReadAndClearDirtyData,
  ioptSetDirtyTracking,
} from './hwpt-ioctls.js';
export { IOVA_BITMAP_WINDOW_BYTES, IommufdDirtyRecorder, IovaBitmap } from './iova-bitmap.js';

// end kernel API

// uAPI

export {
  createIoctlTable,
  defineIoctlOp,
  dispatchIoctl,
  type IoctlArg,
  type IommufdIoctlFallback,
  type IommufdIoctlOp,
  type IommufdIoctlTable,
  type IommufdIoctlTableDef,
  type IommufdUcmd,
  type UaccessTarget,
  type UserMemory,
  uaccessUserMemory,
} from './ioctl-dispatch.js';
export * from './uapi.js';
export { decodeUapi, encodeUapi, syncUapi, type UapiInput, type UapiInputValue } from './uapi-codec.js';
export * from './uapi-structs.js';

// end uAPI

// io_pagetable engine

export { IoptArea } from './area.js';
export {
  IOPT_ALLOC_IOVA,
  IoPagetable,
  type IoptAccess,
  IoptAreaContigIter,
  type IoptDebugPage,
  type IoptIovaRange,
  type IoptPagesListEntry,
  type IoptReserved,
  type IoptUnmapResult,
} from './io-pagetable.js';
export {
  __IOMMUFD_ACCESS_RW_SLOW_PATH,
  getTempMemoryLimit,
  IOMMUFD_ACCESS_RW_KTHREAD,
  IOMMUFD_ACCESS_RW_READ,
  IOMMUFD_ACCESS_RW_WRITE,
  IOPT_PAGE_SIZE,
  IOPT_PAGES_ACCOUNT_MM,
  IOPT_PAGES_ACCOUNT_NONE,
  IOPT_PAGES_ACCOUNT_USER,
  type IoptIndexRange,
  IoptPages,
  IoptPagesAccess,
  type IoptPagesAccountMode,
  setTempMemoryLimit,
  TEMP_MEMORY_LIMIT_DEFAULT,
} from './pages.js';

// end io_pagetable engine
