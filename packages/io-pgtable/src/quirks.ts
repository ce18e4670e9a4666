/**
 * `IO_PGTABLE_QUIRK_*` bits of `io_pgtable_cfg.quirks` (include/linux/io-pgtable.h).
 *
 * @remarks
 * A format rejects (allocation returns `null`) any quirk outside the set it accepts; see each
 * format's `quirksAllowed`.
 */

/** Bit 0: set NS in leaves and NSTABLE in table descriptors (LPAE stage 1, v7s). */
export const IO_PGTABLE_QUIRK_ARM_NS = 1 << 0;
/** Bit 1: v7s only, ignore READ/WRITE/NOEXEC and map everything with full access. */
export const IO_PGTABLE_QUIRK_NO_PERMS = 1 << 1;
/** Bit 3: v7s only, MediaTek 4 GiB extension (PA bits 32/33/34 in PTE bits 9/4/5). */
export const IO_PGTABLE_QUIRK_ARM_MTK_EXT = 1 << 3;
/** Bit 4: v7s only, MediaTek table base above 4 GiB. */
export const IO_PGTABLE_QUIRK_ARM_MTK_TTBR_EXT = 1 << 4;
/** Bit 5: LPAE stage 1, the table serves the upper (TTBR1) half; IOVA upper bits all ones. */
export const IO_PGTABLE_QUIRK_ARM_TTBR1 = 1 << 5;
/** Bit 6: LPAE stage 1, non-coherent walker but outer write-back write-allocate walks. */
export const IO_PGTABLE_QUIRK_ARM_OUTER_WBWA = 1 << 6;
/** Bit 7: LPAE stage 1, hardware dirty tracking (DBM on writable leaves). */
export const IO_PGTABLE_QUIRK_ARM_HD = 1 << 7;
/** Bit 8: LPAE stage 2, FWB MemAttr encoding for cacheable mappings. */
export const IO_PGTABLE_QUIRK_ARM_S2FWB = 1 << 8;
/** Bit 9: LPAE, failures on map-over-existing and unmap-of-nothing are silent (no warning). */
export const IO_PGTABLE_QUIRK_NO_WARN = 1 << 9;
