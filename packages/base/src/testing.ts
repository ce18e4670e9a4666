/**
 * Test helpers for code built on `@iommu-ts/base`, published as the `@iommu-ts/base/testing`
 * subpath so that tests of every package share them instead of redefining them.
 */

import { type ErrnoCode, ErrnoError } from './errno.js';

/**
 * Run `fn` and report the errno it failed with.
 *
 * @param fn - the call under test
 * @returns the `ErrnoError` code `fn` threw (for example `'EINVAL'`), or `undefined` if it returned
 * @throws whatever `fn` threw if it is not an `ErrnoError`, so unexpected failures stay visible
 */
export function errnoOf(fn: () => unknown): ErrnoCode | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof ErrnoError) return error.code;
    throw error;
  }
  return undefined;
}
