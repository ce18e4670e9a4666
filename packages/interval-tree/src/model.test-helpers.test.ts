import { describe, expect, it } from 'vitest';
import { modelSpans } from './model.test-helpers.js';

describe('modelSpans (the reference used by the property tests)', () => {
  it('tiles the range with alternating spans', () => {
    expect(
      modelSpans(
        [
          { start: 10n, last: 19n },
          { start: 21n, last: 30n },
        ],
        0n,
        99n,
      ),
    ).toEqual([
      [true, 0n, 9n],
      [false, 10n, 19n],
      [true, 20n, 20n],
      [false, 21n, 30n],
      [true, 31n, 99n],
    ]);
  });
});
