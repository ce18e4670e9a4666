import { _IOC_DIR, _IOC_NR, _IOC_SIZE, _IOC_TYPE } from '@iommu-ts/base';
import { describe, expect, it } from 'vitest';
import * as uapi from './uapi.js';

const UAPI: Readonly<Record<string, unknown>> = { ...uapi };

// Request values as the uAPI header defines them: consecutive from 0x3b80.
const REQUESTS: readonly (readonly [string, number])[] = [
  ['IOMMU_DESTROY', 0x3b80],
  ['IOMMU_IOAS_ALLOC', 0x3b81],
  ['IOMMU_IOAS_ALLOW_IOVAS', 0x3b82],
  ['IOMMU_IOAS_COPY', 0x3b83],
  ['IOMMU_IOAS_IOVA_RANGES', 0x3b84],
  ['IOMMU_IOAS_MAP', 0x3b85],
  ['IOMMU_IOAS_UNMAP', 0x3b86],
  ['IOMMU_OPTION', 0x3b87],
  ['IOMMU_VFIO_IOAS', 0x3b88],
  ['IOMMU_HWPT_ALLOC', 0x3b89],
  ['IOMMU_GET_HW_INFO', 0x3b8a],
  ['IOMMU_HWPT_SET_DIRTY_TRACKING', 0x3b8b],
  ['IOMMU_HWPT_GET_DIRTY_BITMAP', 0x3b8c],
  ['IOMMU_HWPT_INVALIDATE', 0x3b8d],
  ['IOMMU_FAULT_QUEUE_ALLOC', 0x3b8e],
  ['IOMMU_IOAS_MAP_FILE', 0x3b8f],
  ['IOMMU_VIOMMU_ALLOC', 0x3b90],
  ['IOMMU_VDEVICE_ALLOC', 0x3b91],
  ['IOMMU_IOAS_CHANGE_PROCESS', 0x3b92],
  ['IOMMU_VEVENTQ_ALLOC', 0x3b93],
  ['IOMMU_HW_QUEUE_ALLOC', 0x3b94],
];

describe('iommufd ioctl numbers', () => {
  it.each(REQUESTS)('%s = %i', (name, value) => {
    expect(UAPI[name]).toBe(value);
  });

  it('every request is _IO(";", nr): no direction or size bits', () => {
    for (const [, value] of REQUESTS) {
      expect(_IOC_TYPE(value)).toBe(0x3b);
      expect(_IOC_DIR(value)).toBe(0);
      expect(_IOC_SIZE(value)).toBe(0);
    }
    expect(uapi.IOMMUFD_TYPE).toBe(';'.charCodeAt(0));
  });

  it('the command numbers are consecutive from IOMMUFD_CMD_BASE and match the requests', () => {
    expect(uapi.IOMMUFD_CMD_BASE).toBe(0x80);
    expect(uapi.IOMMUFD_CMD_DESTROY).toBe(uapi.IOMMUFD_CMD_BASE);
    REQUESTS.forEach(([name, value], i) => {
      expect(_IOC_NR(value)).toBe(0x80 + i);
      const cmdName = `IOMMUFD_CMD_${name.slice('IOMMU_'.length)}`;
      expect(UAPI[cmdName], cmdName).toBe(0x80 + i);
    });
    expect(uapi.IOMMUFD_CMD_HW_QUEUE_ALLOC).toBe(0x94);
  });
});

describe('iommufd enums and flags', () => {
  it('map flags', () => {
    expect([
      uapi.IOMMU_IOAS_MAP_FIXED_IOVA,
      uapi.IOMMU_IOAS_MAP_WRITEABLE,
      uapi.IOMMU_IOAS_MAP_READABLE,
    ]).toEqual([1, 2, 4]);
  });

  it('options and option operations', () => {
    expect(uapi.IOMMU_OPTION_RLIMIT_MODE).toBe(0);
    expect(uapi.IOMMU_OPTION_HUGE_PAGES).toBe(1);
    expect(uapi.IOMMU_OPTION_OP_SET).toBe(0);
    expect(uapi.IOMMU_OPTION_OP_GET).toBe(1);
    expect([uapi.IOMMU_VFIO_IOAS_GET, uapi.IOMMU_VFIO_IOAS_SET, uapi.IOMMU_VFIO_IOAS_CLEAR]).toEqual([
      0, 1, 2,
    ]);
  });

  it('HWPT allocation flags and data types', () => {
    expect(uapi.IOMMU_HWPT_ALLOC_NEST_PARENT).toBe(1);
    expect(uapi.IOMMU_HWPT_ALLOC_DIRTY_TRACKING).toBe(2);
    expect(uapi.IOMMU_HWPT_FAULT_ID_VALID).toBe(4);
    expect(uapi.IOMMU_HWPT_ALLOC_PASID).toBe(8);
    expect([uapi.IOMMU_HWPT_DATA_NONE, uapi.IOMMU_HWPT_DATA_VTD_S1, uapi.IOMMU_HWPT_DATA_ARM_SMMUV3]).toEqual(
      [0, 1, 2],
    );
    expect([uapi.IOMMU_VTD_S1_SRE, uapi.IOMMU_VTD_S1_EAFE, uapi.IOMMU_VTD_S1_WPE]).toEqual([1, 2, 4]);
  });

  it('hardware information types, capabilities and flags', () => {
    expect(uapi.IOMMU_HW_INFO_TYPE_NONE).toBe(0);
    expect(uapi.IOMMU_HW_INFO_TYPE_DEFAULT).toBe(0);
    expect(uapi.IOMMU_HW_INFO_TYPE_INTEL_VTD).toBe(1);
    expect(uapi.IOMMU_HW_INFO_TYPE_ARM_SMMUV3).toBe(2);
    expect(uapi.IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV).toBe(3);
    expect(uapi.IOMMU_HW_CAP_DIRTY_TRACKING).toBe(1);
    expect(uapi.IOMMU_HW_CAP_PCI_PASID_EXEC).toBe(2);
    expect(uapi.IOMMU_HW_CAP_PCI_PASID_PRIV).toBe(4);
    expect(uapi.IOMMU_HW_INFO_FLAG_INPUT_TYPE).toBe(1);
    expect(uapi.IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17).toBe(1);
  });

  it('dirty tracking, invalidation and fault constants', () => {
    expect(uapi.IOMMU_HWPT_DIRTY_TRACKING_ENABLE).toBe(1);
    expect(uapi.IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR).toBe(1);
    expect(uapi.IOMMU_HWPT_INVALIDATE_DATA_VTD_S1).toBe(0);
    expect(uapi.IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3).toBe(1);
    expect(uapi.IOMMU_VTD_INV_FLAGS_LEAF).toBe(1);
    expect([uapi.IOMMU_PGFAULT_FLAGS_PASID_VALID, uapi.IOMMU_PGFAULT_FLAGS_LAST_PAGE]).toEqual([1, 2]);
    expect([
      uapi.IOMMU_PGFAULT_PERM_READ,
      uapi.IOMMU_PGFAULT_PERM_WRITE,
      uapi.IOMMU_PGFAULT_PERM_EXEC,
      uapi.IOMMU_PGFAULT_PERM_PRIV,
    ]).toEqual([1, 2, 4, 8]);
    expect(uapi.IOMMUFD_PAGE_RESP_SUCCESS).toBe(0);
    expect(uapi.IOMMUFD_PAGE_RESP_INVALID).toBe(1);
  });

  it('vIOMMU, vEVENTQ and HW queue types', () => {
    expect([
      uapi.IOMMU_VIOMMU_TYPE_DEFAULT,
      uapi.IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
      uapi.IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
    ]).toEqual([0, 1, 2]);
    expect([
      uapi.IOMMU_VEVENTQ_TYPE_DEFAULT,
      uapi.IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
      uapi.IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV,
    ]).toEqual([0, 1, 2]);
    expect(uapi.IOMMU_VEVENTQ_FLAG_LOST_EVENTS).toBe(1);
    expect(uapi.IOMMU_HW_QUEUE_TYPE_DEFAULT).toBe(0);
    expect(uapi.IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV).toBe(1);
  });
});
