/**
 * Argument choices shared by the iommufd and VFIO call generators: IDs from what came back before,
 * the `size`/`argsz` word, and where the argument goes.
 */

import type { ArgPlacement } from './memory.js';
import { type FuzzValues, U32_MAX } from './values.js';
import type { FilePool } from './world.js';

/**
 * An object ID: one that came back before (live or destroyed), a small number, or an edge value.
 * @param v - value source
 * @param pool - IDs seen
 * @returns the ID
 */
export function idValue(v: FuzzValues, pool: FilePool): number {
  if (pool.ids.length > 0 && v.chance(0.7)) return v.pick(pool.ids);
  return v.chance(0.7) ? v.int(12) : v.pick([U32_MAX, 0x7fff_ffff, 0x8000_0000, 1 << 20]);
}

/**
 * A `size` word for a struct: its size (mostly), its minimum, one below, 0, above with a zero
 * tail, random, or huge.
 * @param v - value source
 * @param size - the struct's size
 * @param minSize - the smallest accepted size
 * @returns the size word
 */
export function sizeWord(v: FuzzValues, size: number, minSize: number): number {
  switch (v.int(12)) {
    case 0:
      return minSize;
    case 1:
      return Math.max(0, minSize - 1 - v.int(4));
    case 2:
      return v.pick([0, 1, 4]);
    case 3:
      return size + 8 * (1 + v.int(4));
    case 4:
      return v.chance(0.5) ? v.int(size + 64) : v.pick([4096, 8192, U32_MAX]);
    default:
      return size;
  }
}

/**
 * Where a struct argument goes: mostly the argument area, sometimes as a plain object, at a page
 * end running into the guard page, in read-only memory, or at an unmapped address.
 * @param v - value source
 * @returns the placement
 */
export function choosePlacement(v: FuzzValues): ArgPlacement {
  const r = v.int(100);
  if (r < 25) return { kind: 'object' };
  if (r < 90) return { kind: 'arg', offset: v.chance(0.9) ? 0 : v.int(64) };
  if (r < 95) return { kind: 'edge', short: 1 + v.int(32) };
  if (r < 97) return { kind: 'readonly' };
  return { kind: 'bad', at: v.pick(['null', 'hole', 'kernel', 'top']) };
}
