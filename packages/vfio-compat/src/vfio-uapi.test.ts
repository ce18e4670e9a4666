// VFIO numbers and struct layouts against include/uapi/linux/vfio.h (64-bit ABI) and the seed SVA
// series.

import { describe, expect, it } from 'vitest';
import * as u from './vfio-uapi.js';

describe('VFIO request numbers', () => {
  it('are _IO(";", 100 + n)', () => {
    expect([
      u.VFIO_GET_API_VERSION,
      u.VFIO_CHECK_EXTENSION,
      u.VFIO_SET_IOMMU,
      u.VFIO_GROUP_GET_STATUS,
      u.VFIO_GROUP_SET_CONTAINER,
      u.VFIO_GROUP_UNSET_CONTAINER,
      u.VFIO_GROUP_GET_DEVICE_FD,
      u.VFIO_DEVICE_GET_INFO,
      u.VFIO_IOMMU_GET_INFO,
      u.VFIO_IOMMU_MAP_DMA,
      u.VFIO_IOMMU_UNMAP_DMA,
      u.VFIO_IOMMU_ENABLE,
      u.VFIO_IOMMU_DISABLE,
      u.VFIO_IOMMU_DIRTY_PAGES,
      u.VFIO_IOMMU_BIND,
      u.VFIO_IOMMU_UNBIND,
    ]).toEqual([
      0x3b64, 0x3b65, 0x3b66, 0x3b67, 0x3b68, 0x3b69, 0x3b6a, 0x3b6b, 0x3b70, 0x3b71, 0x3b72, 0x3b73, 0x3b74,
      0x3b75, 0x3b7a, 0x3b7b,
    ]);
  });

  it('extension numbers 1 to 10 and the flag bits', () => {
    expect([
      u.VFIO_TYPE1_IOMMU,
      u.VFIO_SPAPR_TCE_IOMMU,
      u.VFIO_TYPE1v2_IOMMU,
      u.VFIO_DMA_CC_IOMMU,
      u.VFIO_EEH,
      u.VFIO_TYPE1_NESTING_IOMMU,
      u.VFIO_SPAPR_TCE_v2_IOMMU,
      u.VFIO_NOIOMMU_IOMMU,
      u.VFIO_UNMAP_ALL,
      u.VFIO_UPDATE_VADDR,
    ]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect([u.VFIO_DMA_MAP_FLAG_READ, u.VFIO_DMA_MAP_FLAG_WRITE, u.VFIO_DMA_MAP_FLAG_VADDR]).toEqual([
      1, 2, 4,
    ]);
    expect([
      u.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
      u.VFIO_DMA_UNMAP_FLAG_ALL,
      u.VFIO_DMA_UNMAP_FLAG_VADDR,
    ]).toEqual([1, 2, 4]);
    expect([u.VFIO_DEVICE_FLAGS_RESET, u.VFIO_DEVICE_FLAGS_PCI, u.VFIO_DEVICE_FLAGS_PLATFORM]).toEqual([
      1, 2, 4,
    ]);
    expect([u.VFIO_DEVICE_FLAGS_CAPS, u.VFIO_DEVICE_FLAGS_CDX]).toEqual([0x80, 0x100]);
    expect([
      u.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
      u.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
      u.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
    ]).toEqual([1, 2, 3]);
  });
});

describe('VFIO struct layouts', () => {
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

  it('vfio_iommu_type1_info: 24 bytes, minsz 16', () => {
    const s = u.vfioIommuType1InfoStruct;
    expect([s.size, s.offsetofend('iova_pgsizes')]).toEqual([24, 16]);
    expect(hex(s.encode({ argsz: 0x48, flags: 3, iova_pgsizes: 0x1000n, cap_offset: 24, pad: 0 }))).toBe(
      '48000000030000000010000000000000' + '1800000000000000',
    );
  });

  it('dma_map 32, dma_unmap 24, cap header 8, iova range cap 16 + 16n, dma_avail 12', () => {
    expect(
      hex(
        u.vfioIommuType1DmaMapStruct.encode({
          argsz: 32,
          flags: 3,
          vaddr: 0x1122n,
          iova: 0x3344n,
          size: 0x5566n,
        }),
      ),
    ).toBe('2000000003000000' + '2211000000000000' + '4433000000000000' + '6655000000000000');
    expect(hex(u.vfioIommuType1DmaUnmapStruct.encode({ argsz: 24, flags: 2, iova: 1n, size: 2n }))).toBe(
      '1800000002000000' + '0100000000000000' + '0200000000000000',
    );
    expect(
      hex(
        u.vfioIommuType1InfoCapIovaRangeStruct.encode({
          header: { id: 1, version: 1, next: 0x28 },
          nr_iovas: 2,
          reserved: 0,
        }),
      ),
    ).toBe('0100010028000000' + '0200000000000000');
    expect(u.vfioIovaRangeStruct.size).toBe(16);
    expect(
      hex(
        u.vfioIommuType1InfoDmaAvailStruct.encode({
          header: { id: 3, version: 1, next: 0 },
          avail: 0xffffffff,
        }),
      ),
    ).toBe('0300010000000000ffffffff');
  });

  it('group status 8, device info 24 (minsz 16), bind 8, bind_process 12 with a signed pid', () => {
    expect(u.vfioGroupStatusStruct.size).toBe(8);
    expect([u.vfioDeviceInfoStruct.size, u.vfioDeviceInfoStruct.offsetofend('num_irqs')]).toEqual([24, 16]);
    expect(u.vfioIommuType1BindStruct.size).toBe(8);
    const bp = u.vfioIommuType1BindProcessStruct;
    expect(hex(bp.encode({ flags: 1, pasid: 5, pid: -1 }))).toBe('0100000005000000ffffffff');
    expect(bp.decode(bp.encode({ flags: 1, pasid: 5, pid: -1 })).pid).toBe(-1);
  });
});
