/**
 * Reading the capability chain VFIO_IOMMU_GET_INFO leaves after `struct vfio_iommu_type1_info`
 * (user space's side of include/uapi/linux/vfio.h: follow `cap_offset`, then each header's
 * `next`).
 */

import {
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  type VfioIovaRange,
  vfioInfoCapHeaderStruct,
  vfioIommuType1InfoCapIovaRangeStruct,
  vfioIommuType1InfoDmaAvailStruct,
  vfioIommuType1InfoStruct,
  vfioIovaRangeStruct,
} from './vfio-uapi.js';

/** One capability found in the chain. */
export interface VfioInfoCap {
  /** Capability id (`VFIO_IOMMU_TYPE1_INFO_*`). */
  readonly id: number;
  /** Capability version. */
  readonly version: number;
  /** Offset of the capability's header from the start of the info buffer, in bytes. */
  readonly offset: number;
}

/** What {@link decodeVfioIommuType1InfoCaps} finds. */
export interface VfioIommuType1InfoCaps {
  /** Every capability in chain order. */
  readonly caps: readonly VfioInfoCap[];
  /** `avail` of the DMA_AVAIL capability, or undefined when absent. */
  readonly dmaAvail: number | undefined;
  /** The ranges of the IOVA_RANGE capability (inclusive ends), or undefined when absent. */
  readonly iovaRanges: readonly VfioIovaRange[] | undefined;
}

/**
 * Walk the capability chain of a VFIO_IOMMU_GET_INFO result.
 *
 * @param bytes - the info buffer from its first byte (at least 24 bytes; `cap_offset` 0 means no
 *   chain)
 * @returns the capabilities and the decoded DMA_AVAIL and IOVA_RANGE payloads
 * @throws RangeError if an offset points outside `bytes` or the chain loops
 */
export function decodeVfioIommuType1InfoCaps(bytes: Uint8Array): VfioIommuType1InfoCaps {
  const info = vfioIommuType1InfoStruct.decode(bytes);
  const caps: VfioInfoCap[] = [];
  let dmaAvail: number | undefined;
  let iovaRanges: VfioIovaRange[] | undefined;
  const seen = new Set<number>();
  for (let off = info.cap_offset; off !== 0; ) {
    if (seen.has(off)) throw new RangeError(`capability chain loops at ${off}`);
    seen.add(off);
    const header = vfioInfoCapHeaderStruct.decode(bytes, off);
    caps.push({ id: header.id, version: header.version, offset: off });
    if (header.id === VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
      dmaAvail = vfioIommuType1InfoDmaAvailStruct.decode(bytes, off).avail;
    } else if (header.id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
      const cap = vfioIommuType1InfoCapIovaRangeStruct.decode(bytes, off);
      iovaRanges = [];
      for (let i = 0; i < cap.nr_iovas; i++) {
        iovaRanges.push(
          vfioIovaRangeStruct.decode(bytes, off + vfioIommuType1InfoCapIovaRangeStruct.size + 16 * i),
        );
      }
    }
    off = header.next;
  }
  return { caps, dmaAvail, iovaRanges };
}
