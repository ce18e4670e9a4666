/**
 * The device-side DMA mapping constants and parameters (include/linux/dma-mapping.h,
 * include/linux/dma-direction.h, kernel/dma/mapping.c): directions, attributes,
 * `DMA_MAPPING_ERROR`, `DMA_BIT_MASK`, the DMA masks and the segment parameters of a device.
 *
 * @remarks
 * Masks and DMA addresses are `bigint` (u64, `dma_addr_t`). The streaming and coherent masks live on
 * {@link Device} (`dmaMask`, `coherentDmaMask`, `busDmaLimit`); the segment parameters
 * (`dev->dma_parms`) and cache coherence (`dev_is_dma_coherent`) are kept here per device.
 */

import { ErrnoError } from '@iommu-ts/base';
import type { Device } from './device.js';

/**
 * `DMA_MAPPING_ERROR` (`~(dma_addr_t)0`): what the streaming map functions return on failure.
 * @public
 */
export const DMA_MAPPING_ERROR = 0xffff_ffff_ffff_ffffn;

/**
 * `enum dma_data_direction`: which way the data moves (include/linux/dma-direction.h).
 * @public
 */
export const DmaDataDirection = {
  /** `DMA_BIDIRECTIONAL`: the device reads and writes. */
  BIDIRECTIONAL: 0,
  /** `DMA_TO_DEVICE`: the device reads memory. */
  TO_DEVICE: 1,
  /** `DMA_FROM_DEVICE`: the device writes memory. */
  FROM_DEVICE: 2,
  /** `DMA_NONE`: invalid for mapping (the IOMMU prot is then 0). */
  NONE: 3,
} as const;
/**
 * A value of {@link (DmaDataDirection:variable)}.
 * @public
 */
export type DmaDataDirection = (typeof DmaDataDirection)[keyof typeof DmaDataDirection];

/** `DMA_ATTR_WEAK_ORDERING` (bit 1). @public */
export const DMA_ATTR_WEAK_ORDERING = 1 << 1;
/** `DMA_ATTR_WRITE_COMBINE` (bit 2). @public */
export const DMA_ATTR_WRITE_COMBINE = 1 << 2;
/** `DMA_ATTR_NO_KERNEL_MAPPING` (bit 4). @public */
export const DMA_ATTR_NO_KERNEL_MAPPING = 1 << 4;
/** `DMA_ATTR_SKIP_CPU_SYNC` (bit 5): no cache maintenance on map/unmap. @public */
export const DMA_ATTR_SKIP_CPU_SYNC = 1 << 5;
/** `DMA_ATTR_FORCE_CONTIGUOUS` (bit 6): physically contiguous coherent buffers (always, here). @public */
export const DMA_ATTR_FORCE_CONTIGUOUS = 1 << 6;
/** `DMA_ATTR_ALLOC_SINGLE_PAGES` (bit 7). @public */
export const DMA_ATTR_ALLOC_SINGLE_PAGES = 1 << 7;
/** `DMA_ATTR_NO_WARN` (bit 8). @public */
export const DMA_ATTR_NO_WARN = 1 << 8;
/** `DMA_ATTR_PRIVILEGED` (bit 9): privileged-only access (`IOMMU_PRIV`). @public */
export const DMA_ATTR_PRIVILEGED = 1 << 9;
/** `DMA_ATTR_MMIO` (bit 10): the physical address is MMIO (`IOMMU_MMIO`). @public */
export const DMA_ATTR_MMIO = 1 << 10;

/**
 * `DMA_BIT_MASK(n)`: the mask of the low `n` address bits.
 * @param n - 0 … 64
 * @returns `2^n - 1` as u64 (all ones for 64)
 * @throws RangeError outside 0 … 64
 * @public
 */
export function DMA_BIT_MASK(n: number): bigint {
  if (!Number.isInteger(n) || n < 0 || n > 64) throw new RangeError(`DMA_BIT_MASK(${n})`);
  return n === 64 ? 0xffff_ffff_ffff_ffffn : (1n << BigInt(n)) - 1n;
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;

function checkMask(mask: bigint): void {
  if (typeof mask !== 'bigint' || mask < 0n || mask > U64_MAX)
    throw new ErrnoError('EIO', `DMA mask ${String(mask)} is not a u64`);
}

/**
 * `dma_set_mask(dev, mask)`: set the streaming DMA mask; IOVAs handed to the device stay at or
 * below it.
 * @param dev - the device
 * @param mask - u64 mask, e.g. `DMA_BIT_MASK(32)`
 * @throws ErrnoError `EIO` when the mask is not a u64 (Linux: not supported by the DMA ops; every
 *   mask is supported behind an IOMMU)
 * @public
 */
export function dmaSetMask(dev: Device, mask: bigint): void {
  checkMask(mask);
  dev.dmaMask = mask;
}

/**
 * `dma_set_coherent_mask(dev, mask)`: set the mask used for coherent allocations.
 * @throws ErrnoError `EIO` as {@link dmaSetMask}
 * @public
 */
export function dmaSetCoherentMask(dev: Device, mask: bigint): void {
  checkMask(mask);
  dev.coherentDmaMask = mask;
}

/**
 * `dma_set_mask_and_coherent(dev, mask)`: both masks.
 * @throws ErrnoError `EIO` as {@link dmaSetMask}
 * @public
 */
export function dmaSetMaskAndCoherent(dev: Device, mask: bigint): void {
  dmaSetMask(dev, mask);
  dmaSetCoherentMask(dev, mask);
}

/**
 * `dma_get_mask(dev)`: the streaming DMA mask (u64).
 * @public
 */
export function dmaGetMask(dev: Device): bigint {
  return dev.dmaMask;
}

/** Per-device DMA parameters (`struct device_dma_parameters` and `dma_coherent`). */
interface DevDmaParams {
  segBoundary: bigint;
  maxSegSize: number;
  coherent: boolean;
}

const params = new WeakMap<Device, DevDmaParams>();

function paramsOf(dev: Device): DevDmaParams {
  let p = params.get(dev);
  if (p === undefined) {
    // pci_device_add sets a 4 GiB boundary and 64 KiB segments; others get ULONG_MAX and 64 KiB.
    p = { segBoundary: dev.isPci ? 0xffff_ffffn : U64_MAX, maxSegSize: 0x1_0000, coherent: true };
    params.set(dev, p);
  }
  return p;
}

/**
 * `dma_get_seg_boundary(dev)`: a mapped segment may not cross a multiple of `mask + 1` (u64 mask;
 * PCI default `0xffff_ffff`, others all ones).
 * @public
 */
export function dmaGetSegBoundary(dev: Device): bigint {
  return paramsOf(dev).segBoundary;
}

/**
 * `dma_set_seg_boundary(dev, mask)`.
 * @param mask - `2^k - 1` (u64)
 * @throws ErrnoError `EIO` when `mask + 1` is not a power of two within u64
 * @public
 */
export function dmaSetSegBoundary(dev: Device, mask: bigint): void {
  checkMask(mask);
  if (((mask + 1n) & mask) !== 0n) throw new ErrnoError('EIO', 'segment boundary mask must be 2^k - 1');
  paramsOf(dev).segBoundary = mask;
}

/**
 * `dma_get_max_seg_size(dev)`: longest DMA segment `map_sg` may build, in bytes (default 64 KiB).
 * @public
 */
export function dmaGetMaxSegSize(dev: Device): number {
  return paramsOf(dev).maxSegSize;
}

/**
 * `dma_set_max_seg_size(dev, size)`.
 * @param size - bytes, a positive safe integer ≤ 2^32 - 1 (an `unsigned int`)
 * @throws ErrnoError `EIO` otherwise
 * @public
 */
export function dmaSetMaxSegSize(dev: Device, size: number): void {
  if (!Number.isSafeInteger(size) || size < 1 || size > 0xffff_ffff)
    throw new ErrnoError('EIO', `bad max segment size ${size}`);
  paramsOf(dev).maxSegSize = size;
}

/**
 * `dev_is_dma_coherent(dev)`: whether the device snoops CPU caches (default true). Coherent
 * devices get `IOMMU_CACHE` in their mappings.
 * @public
 */
export function devIsDmaCoherent(dev: Device): boolean {
  return paramsOf(dev).coherent;
}

/**
 * Set what {@link devIsDmaCoherent} returns (firmware's `dma-coherent` / `_CCA`, `arch_setup_dma_ops`).
 * @public
 */
export function devSetDmaCoherent(dev: Device, coherent: boolean): void {
  paramsOf(dev).coherent = coherent;
}
