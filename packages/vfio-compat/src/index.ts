/**
 * @packageDocumentation
 * The VFIO type1 container on top of iommufd (drivers/iommu/iommufd/vfio_compat.c), VFIO groups and
 * device fds as far as DMA needs them, and the seed series' VFIO SVA binding.
 */

// uAPI

export * from './vfio-uapi.js';

// end uAPI

// container

export {
  iommufdVfioCompatIoas,
  iommufdVfioCompatIoasCreate,
  iommufdVfioCompatIoasGetId,
} from './compat-ioas.js';
export { iommufdVfioIoctl, openVfioContainer, type VfioContainerOpenOptions } from './container.js';
export {
  decodeVfioIommuType1InfoCaps,
  type VfioInfoCap,
  type VfioIommuType1InfoCaps,
} from './info-caps.js';

// end container

// groups, devices, SVA

export { VfioDeviceFile, vfioDeviceFileOf } from './device-file.js';
export { VfioGroupFile } from './group.js';
export { CAP_SYS_PTRACE, type VfioMm, vfioIommuBind, vfioIommuBoundMms } from './sva-bind.js';
export { VfioDevice, type VfioDeviceRegisterOptions, VfioGroup, VfioSubsystem } from './vfio-device.js';

// end groups, devices, SVA
