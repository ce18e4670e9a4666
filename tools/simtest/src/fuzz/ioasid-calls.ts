/**
 * Calls on /dev/ioasid (`IoasidUserFile`): GET_API_VERSION, GET_INFO, REQUEST_ALLOC and
 * REQUEST_FREE with both argument forms the file accepts (a plain object or the struct's bytes;
 * an integer, an `Int32Array` or bytes for FREE), short byte arrays, bad `argsz` and flags,
 * ranges that are empty, reversed, or beyond the user ID space, stale IDs, and unknown requests.
 */

import { _IO } from '@iommu-ts/base';
import {
  IOASID_BASE,
  IOASID_GET_API_VERSION,
  IOASID_GET_INFO,
  IOASID_REQUEST_ALLOC,
  IOASID_REQUEST_FREE,
  IOASID_TYPE,
  type IoasidUserIoctlArg,
} from '@iommu-ts/ioasid';
import type { FuzzCall, FuzzGenerator } from './call.js';
import { type FuzzValues, U32_MAX } from './values.js';
import { FilePool, type FuzzWorld } from './world.js';

/** The /dev/ioasid ioctls, by name. */
export const IOASID_IOCTLS: Readonly<Record<string, number>> = {
  IOASID_GET_API_VERSION,
  IOASID_GET_INFO,
  IOASID_REQUEST_ALLOC,
  IOASID_REQUEST_FREE,
};

function argsz(v: FuzzValues, size: number): number {
  return v.chance(0.7) ? size : v.pick([0, size - 1, size + 4, 4096, U32_MAX]);
}

function idArg(v: FuzzValues, world: FuzzWorld): number {
  if (world.ioasidRecent.length > 0 && v.chance(0.7)) return v.pick(world.ioasidRecent);
  return v.pick([0, 1, 2, -1, 0x7fff_ffff, -0x8000_0000, v.int(2000)]);
}

function rangeEnd(v: FuzzValues): number {
  return v.pick([0, 1, 10, 100, 1000, 0xf_ffff, 0x7fff_ffff, 0x8000_0000, U32_MAX, v.int(5000)]);
}

/** Bytes of `n` little-endian u32 words. */
function words(values: readonly number[], len: number): Uint8Array {
  const out = new Uint8Array(len);
  const view = new DataView(out.buffer);
  values.forEach((x, i) => {
    if (i * 4 + 4 <= len) view.setUint32(i * 4, x >>> 0, true);
  });
  return out;
}

/**
 * The /dev/ioasid calls.
 * @param world - the world
 * @param weight - relative weight
 * @returns the generator
 */
export function ioasidGenerator(world: FuzzWorld, weight: number): FuzzGenerator {
  return {
    weight,
    next(v): FuzzCall | null {
      const file = world.ioasid;
      if (file === null) return null;
      const call = (
        name: string,
        request: number,
        arg: IoasidUserIoctlArg | undefined,
        bytes: Uint8Array,
        onOk?: (ret: number) => void,
      ): FuzzCall => ({
        file: 'ioasid',
        ioctl: name,
        bytes,
        invoke: () => file.ioctl(request, arg),
        ...(onOk === undefined ? {} : { onSuccess: onOk }),
      });
      const r = v.int(100);
      if (r < 4) {
        const req = v.chance(0.7) ? _IO(IOASID_TYPE, IOASID_BASE + 4 + v.int(20)) : v.u32();
        return call(`unknown 0x${(req >>> 0).toString(16)}`, req, undefined, new Uint8Array(0));
      }
      if (r < 10) return call('IOASID_GET_API_VERSION', IOASID_GET_API_VERSION, undefined, new Uint8Array(0));
      if (r < 25) {
        const fields = [argsz(v, 12), v.chance(0.8) ? 0 : v.flags(2), 0];
        if (v.chance(0.5)) {
          const bytes = words(fields, v.chance(0.8) ? 12 : v.int(16));
          return call('IOASID_GET_INFO', IOASID_GET_INFO, bytes, bytes);
        }
        const obj = { argsz: fields[0] as number, flags: fields[1] as number, ioasid_bits: 0 };
        return call('IOASID_GET_INFO', IOASID_GET_INFO, obj, words(fields, 12));
      }
      if (r < 65) {
        const a = v.chance(0.6) ? v.pick([0, 1, 2, 10, 100]) : rangeEnd(v);
        const b = v.chance(0.6) ? a + v.pick([0, 1, 5, 100, 1000]) : rangeEnd(v);
        const fields = [argsz(v, 16), v.chance(0.9) ? 0 : v.flags(2), a, b];
        const onOk = (ret: number) => {
          world.ioasidsAllocated.add(ret);
          FilePool.remember(world.ioasidRecent, ret);
        };
        if (v.chance(0.4)) {
          const bytes = words(fields, v.chance(0.8) ? 16 : v.int(20));
          return call('IOASID_REQUEST_ALLOC', IOASID_REQUEST_ALLOC, bytes, bytes, onOk);
        }
        const obj = {
          argsz: fields[0] as number,
          flags: fields[1] as number,
          range: { min: a >>> 0, max: b >>> 0 },
        };
        return call('IOASID_REQUEST_ALLOC', IOASID_REQUEST_ALLOC, obj, words(fields, 16), onOk);
      }
      const id = idArg(v, world);
      const bytes = words([id], 4);
      const form = v.int(4);
      const arg: IoasidUserIoctlArg =
        form === 0
          ? Int32Array.of(id)
          : form === 1
            ? v.chance(0.8)
              ? bytes
              : bytes.subarray(0, v.int(4))
            : id;
      return call('IOASID_REQUEST_FREE', IOASID_REQUEST_FREE, arg, bytes);
    },
  };
}
