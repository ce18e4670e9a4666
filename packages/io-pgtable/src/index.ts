/**
 * IOMMU page-table formats byte-exact with Linux io-pgtable (ARM LPAE, ARM v7s, x86-64, VT-d
 * second level), one generic walker, and a pluggable table memory.
 *
 * @packageDocumentation
 */
export * from './cfg.js';
export * from './dump.js';
export * from './format.js';
export * from './formats/arm-lpae.js';
export * from './formats/arm-lpae-regs.js';
export * from './formats/arm-v7s.js';
export * from './formats/arm-v7s-pte.js';
export * from './formats/arm-v7s-regs.js';
export * from './formats/vtd-sl.js';
export * from './formats/vtd-sl-bits.js';
export * from './formats/x86-64.js';
export * from './formats/x86-64-bits.js';
export * from './formats/x86-common.js';
export * from './gather.js';
export * from './io-pgtable.js';
export * from './memory.js';
export * from './memory-arena.js';
export * from './prot.js';
export * from './quirks.js';
export * from './walker.js';
