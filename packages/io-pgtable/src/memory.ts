/**
 * The memory that page tables live in.
 *
 * @remarks
 * Linux's io-pgtable allocates table pages with `__arm_lpae_alloc_pages` / `iommu_alloc_pages_node`
 * (or a driver's custom `cfg->alloc`/`cfg->free`) and touches descriptors through plain CPU loads
 * and stores. Here every table access goes through a {@link PageTableMemory}, so that the same
 * formats can write into the package's own in-memory arena ({@link InMemoryPageTableMemory}) or into
 * the machine's sparse `PhysicalMemory` of `@iommu-ts/mm`, where a hardware model's walker reads
 * them back.
 *
 * Layout contract: a descriptor is stored little-endian. A 64-bit descriptor at physical address
 * `pa` is the 32-bit word at `pa` (bits 31:0) followed by the word at `pa + 4` (bits 63:32). The
 * hot-path accessors return a `Uint32Array` and a word index, so the host must be little-endian
 * (every platform Node supports in practice) for the raw bytes to match.
 */

/**
 * Where a table's words are: `words[index]` is the 32-bit word at the table's first byte.
 *
 * @remarks
 * Returned by {@link PageTableMemory.tableView}. Entry `i` of a table of 64-bit descriptors is
 * `words[index + 2 * i]` (bits 31:0) and `words[index + 2 * i + 1]` (bits 63:32); entry `i` of a
 * table of 32-bit descriptors is `words[index + i]`. The view stays valid until the table is freed.
 */
export interface TableView {
  /** A word view holding the whole table contiguously (it may hold other tables too). */
  readonly words: Uint32Array;
  /** Index in {@link TableView.words} of the table's first 32-bit word (`byte offset / 4`). */
  readonly index: number;
}

/**
 * Table memory as io-pgtable needs it: allocate zeroed tables, free them, and reach their words.
 *
 * @remarks
 * Physical addresses are `number`s (exact below 2^53; every address io-pgtable formats can encode is
 * below 2^52). Mirrors the allocation side of drivers/iommu/io-pgtable-arm.c
 * (`__arm_lpae_alloc_pages`, `__arm_lpae_free_pages`) and the custom allocator hooks of
 * `struct io_pgtable_cfg` (`alloc`, `free`).
 *
 * Implementations: {@link InMemoryPageTableMemory} (this package) and, later, `@iommu-ts/mm`'s
 * `PhysicalMemory`. Hot paths call {@link PageTableMemory.tableWords} and
 * {@link PageTableMemory.tableWordIndex} once per table visit and then index the array directly.
 */
export interface PageTableMemory {
  /**
   * Allocate a zeroed table.
   *
   * @param bytes - table size in bytes; a power of two from 4 up to 1 MiB (a concatenated
   *   stage-2 pgd reaches 256 KiB; the 64-byte LPAE minimum is the format's business)
   * @returns the table's physical address, aligned to `bytes` (natural alignment)
   * @throws ErrnoError `ENOMEM` when no memory is left (or an injected failure)
   */
  allocTable(bytes: number): number;

  /**
   * Free a table obtained from {@link PageTableMemory.allocTable}.
   *
   * @param pa - the physical address returned by `allocTable`
   * @param bytes - the same size that was allocated
   */
  freeTable(pa: number, bytes: number): void;

  /**
   * The word array that holds the table at `pa` (hot path, no allocation).
   *
   * @param pa - a table's physical address (or any address inside an allocated table)
   * @returns a `Uint32Array` in which the table is contiguous; pair with
   *   {@link PageTableMemory.tableWordIndex}
   */
  tableWords(pa: number): Uint32Array;

  /**
   * Index, in the array returned by {@link PageTableMemory.tableWords} for the same `pa`, of the
   * 32-bit word at `pa`.
   *
   * @param pa - a 4-byte-aligned physical address inside an allocated table
   */
  tableWordIndex(pa: number): number;

  /**
   * Both halves of the hot-path lookup in one object, for cold paths.
   *
   * @param pa - a table's physical address
   */
  tableView(pa: number): TableView;

  /**
   * Read a 64-bit little-endian descriptor (cold path: dump, tests, hardware models).
   *
   * @param pa - 8-byte-aligned physical address
   */
  read64(pa: number): bigint;

  /**
   * Write a 64-bit little-endian descriptor (cold path).
   *
   * @param pa - 8-byte-aligned physical address
   * @param value - the descriptor, 0 ≤ value \< 2^64
   */
  write64(pa: number, value: bigint): void;

  /**
   * Read a 32-bit little-endian descriptor (cold path; v7s tables).
   *
   * @param pa - 4-byte-aligned physical address
   * @returns an unsigned 32-bit number
   */
  read32(pa: number): number;

  /**
   * Write a 32-bit little-endian descriptor (cold path).
   *
   * @param pa - 4-byte-aligned physical address
   * @param value - an unsigned 32-bit number
   */
  write32(pa: number, value: number): void;
}
