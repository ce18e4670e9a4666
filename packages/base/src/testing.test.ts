import { describe, expect, it } from 'vitest';
import { ErrnoError } from './errno.js';
import { errnoOf } from './testing.js';

describe('errnoOf', () => {
  it('names the errno thrown, undefined on success, and rethrows anything else', () => {
    expect(
      errnoOf(() => {
        throw new ErrnoError('EBUSY');
      }),
    ).toBe('EBUSY');
    expect(errnoOf(() => 1)).toBeUndefined();
    expect(() =>
      errnoOf(() => {
        throw new RangeError('not an errno');
      }),
    ).toThrow(RangeError);
  });
});
