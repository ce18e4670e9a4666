/**
 * Page-size constants of the simulated machine (include/asm-generic/page.h,
 * arch/arm64/include/asm/page-def.h with CONFIG_ARM64_4K_PAGES, include/linux/mmzone.h).
 */

/** log2 of {@link PAGE_SIZE}: the machine's base page is 4 KiB (`PAGE_SHIFT`). */
export const PAGE_SHIFT = 12;

/** Size in bytes of one base page of physical memory (`PAGE_SIZE`, 4096). */
export const PAGE_SIZE = 4096;

/** Mask that clears the offset inside a page when and-ed with an address below 2^32 (`PAGE_MASK`, as a number: `~(PAGE_SIZE - 1)`); use `Math.floor(pa / PAGE_SIZE) * PAGE_SIZE` for larger addresses. */
export const PAGE_MASK = ~(PAGE_SIZE - 1);

/**
 * Largest order the page allocator hands out in one block (`MAX_PAGE_ORDER`, inclusive): 2^18 pages,
 * 1 GiB.
 *
 * @remarks
 * Linux's default is 10 (4 MiB) and gigantic pages come from CMA or memblock; here the buddy
 * allocator itself goes up to 1 GiB so that PMD (order 9, 2 MiB) and PUD (order 18, 1 GiB) huge pages
 * can be allocated the same way as any other block.
 */
export const MAX_PAGE_ORDER = 18;

/** Order of a PMD-sized (2 MiB) huge page with 4 KiB base pages (`HPAGE_PMD_ORDER`). */
export const HPAGE_PMD_ORDER = 9;

/** Order of a PUD-sized (1 GiB) huge page with 4 KiB base pages (`HPAGE_PUD_ORDER`). */
export const HPAGE_PUD_ORDER = 18;
