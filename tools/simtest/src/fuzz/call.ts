/**
 * One fuzzed ioctl call, and what generates them.
 */

import type { FuzzValues } from './values.js';

/** A prepared ioctl call: which file, which request, its argument bytes, and how to run it. */
export interface FuzzCall {
  /** The file kind (`iommufd`, `vfio`, `ioasid`, or a test's fake). */
  readonly file: string;
  /** The ioctl name (`IOMMU_IOAS_MAP`), `unknown 0x…` for unknown numbers. */
  readonly ioctl: string;
  /** The argument bytes as generated (for reports and mutation); empty for integer arguments. */
  readonly bytes: Uint8Array;
  /**
   * Run the call.
   * @returns the ioctl's return value
   * @throws whatever the file throws (an `ErrnoError` is the only acceptable exception)
   */
  invoke(): number;
  /**
   * Learn from a success (IDs, fds, mappings), after {@link FuzzCall.invoke} returned.
   * @param ret - the return value
   */
  onSuccess?(ret: number): void;
  /**
   * The same call with other argument bytes, for mutation; absent when the bytes are not the
   * whole argument.
   * @param bytes - the mutated bytes
   * @returns the new call
   */
  remake?(bytes: Uint8Array): FuzzCall;
}

/** A source of calls on one file. */
export interface FuzzGenerator {
  /** Relative weight among the generators. */
  readonly weight: number;
  /**
   * The next call, or null when the file is not open (the run then draws again).
   * @param v - the run's value source
   * @returns the call
   */
  next(v: FuzzValues): FuzzCall | null;
}

/**
 * A mutated copy of argument bytes: a bit flip, a swap of two 32-bit words, a changed leading
 * size word, or a zeroed word.
 * @param v - value source
 * @param bytes - the original (not changed)
 * @returns the mutated copy
 */
export function mutateBytes(v: FuzzValues, bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  if (out.length === 0) return out;
  const view = new DataView(out.buffer);
  const words = Math.floor(out.length / 4);
  switch (v.int(4)) {
    case 0: {
      const bit = v.int(out.length * 8);
      out[bit >> 3] = (out[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      break;
    }
    case 1:
      if (words >= 2) {
        const a = v.int(words) * 4;
        const b = v.int(words) * 4;
        const x = view.getUint32(a, true);
        view.setUint32(a, view.getUint32(b, true), true);
        view.setUint32(b, x, true);
      }
      break;
    case 2:
      if (words >= 1)
        view.setUint32(0, (view.getUint32(0, true) + v.pick([-8, -4, -1, 1, 4, 8, 64])) >>> 0, true);
      break;
    default:
      if (words >= 1) view.setUint32(v.int(words) * 4, v.chance(0.5) ? 0 : v.u32(), true);
  }
  return out;
}
