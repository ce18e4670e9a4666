/**
 * Size constants of include/linux/sizes.h, in bytes, as numbers (all are exact below 2^53).
 */

/** SZ_1: 2^0 bytes. */
export const SZ_1 = 0x1;

/** SZ_2: 2^1 bytes. */
export const SZ_2 = 0x2;

/** SZ_4: 2^2 bytes. */
export const SZ_4 = 0x4;

/** SZ_8: 2^3 bytes. */
export const SZ_8 = 0x8;

/** SZ_16: 2^4 bytes. */
export const SZ_16 = 0x10;

/** SZ_32: 2^5 bytes. */
export const SZ_32 = 0x20;

/** SZ_64: 2^6 bytes. */
export const SZ_64 = 0x40;

/** SZ_128: 2^7 bytes. */
export const SZ_128 = 0x80;

/** SZ_256: 2^8 bytes. */
export const SZ_256 = 0x100;

/** SZ_512: 2^9 bytes. */
export const SZ_512 = 0x200;

/** SZ_1K: 2^10 bytes. */
export const SZ_1K = 0x400;

/** SZ_2K: 2^11 bytes. */
export const SZ_2K = 0x800;

/** SZ_4K: 2^12 bytes. */
export const SZ_4K = 0x1000;

/** SZ_8K: 2^13 bytes. */
export const SZ_8K = 0x2000;

/** SZ_16K: 2^14 bytes. */
export const SZ_16K = 0x4000;

/** SZ_32K: 2^15 bytes. */
export const SZ_32K = 0x8000;

/** SZ_64K: 2^16 bytes. */
export const SZ_64K = 0x10000;

/** SZ_128K: 2^17 bytes. */
export const SZ_128K = 0x20000;

/** SZ_256K: 2^18 bytes. */
export const SZ_256K = 0x40000;

/** SZ_512K: 2^19 bytes. */
export const SZ_512K = 0x80000;

/** SZ_1M: 2^20 bytes. */
export const SZ_1M = 0x100000;

/** SZ_2M: 2^21 bytes. */
export const SZ_2M = 0x200000;

/** SZ_4M: 2^22 bytes. */
export const SZ_4M = 0x400000;

/** SZ_8M: 2^23 bytes. */
export const SZ_8M = 0x800000;

/** SZ_16M: 2^24 bytes. */
export const SZ_16M = 0x1000000;

/** SZ_32M: 2^25 bytes. */
export const SZ_32M = 0x2000000;

/** SZ_64M: 2^26 bytes. */
export const SZ_64M = 0x4000000;

/** SZ_128M: 2^27 bytes. */
export const SZ_128M = 0x8000000;

/** SZ_256M: 2^28 bytes. */
export const SZ_256M = 0x10000000;

/** SZ_512M: 2^29 bytes. */
export const SZ_512M = 0x20000000;

/** SZ_1G: 2^30 bytes. */
export const SZ_1G = 0x40000000;

/** SZ_2G: 2^31 bytes. */
export const SZ_2G = 0x80000000;

/** SZ_4G: 2^32 bytes. */
export const SZ_4G = 0x100000000;

/** SZ_8G: 2^33 bytes. */
export const SZ_8G = 0x200000000;

/** SZ_16G: 2^34 bytes. */
export const SZ_16G = 0x400000000;

/** SZ_32G: 2^35 bytes. */
export const SZ_32G = 0x800000000;

/** SZ_64G: 2^36 bytes. */
export const SZ_64G = 0x1000000000;

/** SZ_128G: 2^37 bytes. */
export const SZ_128G = 0x2000000000;

/** SZ_256G: 2^38 bytes. */
export const SZ_256G = 0x4000000000;

/** SZ_512G: 2^39 bytes. */
export const SZ_512G = 0x8000000000;

/** SZ_1T: 2^40 bytes. */
export const SZ_1T = 0x10000000000;

/** SZ_2T: 2^41 bytes. */
export const SZ_2T = 0x20000000000;

/** SZ_4T: 2^42 bytes. */
export const SZ_4T = 0x40000000000;

/** SZ_8T: 2^43 bytes. */
export const SZ_8T = 0x80000000000;

/** SZ_64T: 2^46 bytes. */
export const SZ_64T = 0x400000000000;
