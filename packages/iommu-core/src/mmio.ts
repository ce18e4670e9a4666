/**
 * The register interface between a driver and an IOMMU model (`readl`/`writel`/`readq`/`writeq`
 * on an `ioremap`ped region in Linux): the only way a `driver/` may reach a `hw/` model's
 * registers, as ARCHITECTURE.md's hardware boundary requires. Offsets are bytes from the start of
 * the region; 32-bit values are unsigned numbers, 64-bit values bigints.
 */

/**
 * A memory-mapped register region of a device model.
 */
export interface MmioRegion {
  /** Size of the region in bytes. */
  readonly size: number;
  /**
   * 32-bit read (`readl`).
   * @param offset - byte offset, a multiple of 4
   * @returns the value, 0 … 2^32 - 1
   */
  readl(offset: number): number;
  /**
   * 32-bit write (`writel`).
   * @param offset - byte offset, a multiple of 4
   * @param value - 0 … 2^32 - 1
   */
  writel(offset: number, value: number): void;
  /**
   * 64-bit read (`readq`).
   * @param offset - byte offset, a multiple of 8
   * @returns the value, 0 … 2^64 - 1
   */
  readq(offset: number): bigint;
  /**
   * 64-bit write (`writeq`).
   * @param offset - byte offset, a multiple of 8
   * @param value - 0 … 2^64 - 1
   */
  writeq(offset: number, value: bigint): void;
}

/**
 * A view of `region` shifted by `base` bytes (a driver's second mapping of a register page, such as
 * SMMUv3's page 1 at +64 KiB).
 * @param region - the whole region
 * @param base - byte offset of the view's first byte
 * @param size - size of the view in bytes (default: the rest of the region)
 * @returns the view
 * @throws RangeError if the view does not fit in `region`
 */
export function mmioSubRegion(region: MmioRegion, base: number, size = region.size - base): MmioRegion {
  if (!Number.isInteger(base) || base < 0 || !Number.isInteger(size) || size < 0 || base + size > region.size)
    throw new RangeError(`MMIO view 0x${base.toString(16)}+0x${size.toString(16)} is outside the region`);
  return {
    size,
    readl: (offset) => region.readl(base + offset),
    writel: (offset, value) => region.writel(base + offset, value),
    readq: (offset) => region.readq(base + offset),
    writeq: (offset, value) => region.writeq(base + offset, value),
  };
}
