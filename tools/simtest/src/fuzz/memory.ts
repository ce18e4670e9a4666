/**
 * Where the fuzzer puts argument structs and what its user pointers point at: the argument area
 * (two writable pages, then an unmapped guard page), the data buffer, read-only memory, the
 * scratch page, and addresses that fault.
 */

import { PROT_READ, PROT_WRITE } from '@iommu-ts/mm';
import { type FuzzValues, PAGE, U64_MAX } from './values.js';
import { BUF_PAGES, type FuzzWorld } from './world.js';

/**
 * Where a struct argument goes.
 * - `object`: a plain object (the files' in-memory form);
 * - `arg`: the argument area at `offset`;
 * - `edge`: the end of the argument area, `short` bytes of the struct falling into the guard page;
 * - `readonly`: read-only memory (copy-in works, copy-out faults);
 * - `bad`: an address that faults (`null`, `hole`, `kernel`, `top`).
 */
export type ArgPlacement =
  | { readonly kind: 'object' }
  | { readonly kind: 'arg'; readonly offset: number }
  | { readonly kind: 'edge'; readonly short: number }
  | { readonly kind: 'readonly' }
  | { readonly kind: 'bad'; readonly at: 'null' | 'hole' | 'kernel' | 'top' };

const TAIL = 64;

/**
 * Write a struct where the placement says and return its user address. In the argument area a
 * tail of zero bytes follows (so a larger `size` reads zeros, as an extended struct would).
 * @param world - the world
 * @param bytes - the struct
 * @param p - the placement (not `object`)
 * @returns the user address to pass
 */
export function placeArg(world: FuzzWorld, bytes: Uint8Array, p: ArgPlacement): bigint {
  const proc = world.proc;
  switch (p.kind) {
    case 'arg': {
      const buf = new Uint8Array(bytes.length + TAIL);
      buf.set(bytes);
      const va = world.arg + BigInt(p.offset);
      proc.write(va, buf);
      return va;
    }
    case 'edge': {
      const end = world.arg + 2n * PAGE;
      const keep = Math.max(0, bytes.length - p.short);
      const va = end - BigInt(keep);
      if (keep > 0) proc.write(va, bytes.subarray(0, keep));
      return va;
    }
    case 'readonly': {
      proc.mprotect(world.ro, PAGE, PROT_READ | PROT_WRITE);
      proc.write(world.ro, bytes);
      proc.mprotect(world.ro, PAGE, PROT_READ);
      return world.ro;
    }
    case 'bad':
      return p.at === 'null'
        ? 0n
        : p.at === 'hole'
          ? world.hole
          : p.at === 'kernel'
            ? 0xffff_8000_0000_0000n
            : U64_MAX - 7n;
    default:
      return world.arg;
  }
}

/**
 * A user pointer for a struct field (`user_va`, `uptr`, `data_uptr`, …): the data buffer (aligned
 * or not, at its end so a length runs off it), read-only memory, the scratch page, the argument
 * area, or a faulting address.
 * @param v - value source
 * @param world - the world
 * @returns the address
 */
export function pointer(v: FuzzValues, world: FuzzWorld): bigint {
  const r = v.int(20);
  if (r < 12) return world.buf + PAGE * BigInt(v.int(BUF_PAGES));
  if (r === 12) return world.buf + BigInt(1 + v.int(4095));
  if (r === 13) return world.buf + PAGE * BigInt(BUF_PAGES - 1);
  if (r === 14) return world.ro + PAGE * BigInt(v.int(4));
  if (r === 15) return world.scratch;
  if (r === 16) return world.arg;
  if (r === 17) return world.hole;
  return v.pick([0n, 0xffff_8000_0000_0000n, U64_MAX - PAGE + 1n, 1n << 47n]);
}

/**
 * Refill the scratch page with IOVA-range-like pairs or random words, so arrays the structs point
 * at hold something worth parsing.
 * @param v - value source
 * @param world - the world
 */
export function refreshScratch(v: FuzzValues, world: FuzzWorld): void {
  const bytes = new Uint8Array(256);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 16; i++) {
    if (v.chance(0.7)) {
      const start = v.iova([]);
      view.setBigUint64(i * 16, start, true);
      view.setBigUint64(i * 16 + 8, BigInt.asUintN(64, start + v.length(PAGE * 1024n) - 1n), true);
    } else {
      view.setBigUint64(i * 16, v.u64(), true);
      view.setBigUint64(i * 16 + 8, v.u64(), true);
    }
  }
  world.proc.write(world.scratch, bytes);
}
