/**
 * The operations a deterministic-simulation scenario is made of. Each carries raw random choices
 * (indices, sizes, offsets) that the world resolves against its current state when the step runs,
 * so a shrunk scenario (steps removed) still runs: an index past the live objects wraps, and a step
 * whose object does not exist is skipped with a note in the trace.
 */

/** Which DMA endpoints the scenario drives, by the names `@iommu-ts/sim` gives them. */
export type DstDevice = 'nic0' | 'nic1' | 'accel0' | 'stall0';

/** One step of a scenario (see the module comment). */
export type DstOp =
  | { readonly k: 'mmap'; readonly p: number; readonly pages: number }
  | { readonly k: 'munmap'; readonly p: number; readonly r: number }
  | { readonly k: 'touch'; readonly p: number; readonly r: number; readonly page: number }
  | { readonly k: 'dontneed'; readonly p: number; readonly r: number }
  | { readonly k: 'migrate'; readonly p: number; readonly r: number; readonly page: number }
  | { readonly k: 'reclaim'; readonly p: number; readonly r: number; readonly page: number }
  | { readonly k: 'iommufdOpen'; readonly p: number }
  | { readonly k: 'ioasMap'; readonly p: number; readonly r: number; readonly slot: number }
  | { readonly k: 'ioasUnmap'; readonly m: number }
  | { readonly k: 'iommufdClose' }
  | { readonly k: 'vfioOpen'; readonly p: number }
  | { readonly k: 'vfioMap'; readonly p: number; readonly r: number; readonly slot: number }
  | { readonly k: 'vfioUnmap'; readonly m: number }
  | { readonly k: 'vfioClose' }
  | { readonly k: 'svaBind'; readonly p: number; readonly dev: number }
  | { readonly k: 'svaUnbind'; readonly b: number }
  | {
      readonly k: 'dma';
      readonly dev: number;
      readonly write: boolean;
      readonly target: 'mapped' | 'random';
      readonly i: number;
      readonly off: number;
      readonly len: number;
    }
  | { readonly k: 'exit'; readonly p: number }
  | { readonly k: 'settle' };

/**
 * One line describing an operation as generated (before it is resolved against the world).
 * @param op - the operation
 * @returns `mmap p0 pages=3`, `dma dev=1 write target=mapped i=4 off=12 len=8`…
 */
export function describeOp(op: DstOp): string {
  const { k, ...rest } = op;
  const args = Object.entries(rest).map(([name, v]) =>
    typeof v === 'boolean' ? (v ? name : `!${name}`) : `${name}=${v}`,
  );
  return [k, ...args].join(' ');
}
