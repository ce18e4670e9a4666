import { afterEach, describe, expect, it } from 'vitest';
import { FaultInjector, faultInjector, shouldFail } from './fault-inject.js';

afterEach(() => faultInjector.disarm());

describe('fault injection (fail_nth)', () => {
  it('is off by default: nothing counts, nothing fails', () => {
    const f = new FaultInjector();
    expect(f.active).toBe(false);
    for (let i = 0; i < 5; i++) expect(f.shouldFail('x')).toBe(false);
    expect(f.calls).toBe(0);
    expect(shouldFail('x')).toBe(false);
    expect(faultInjector.calls).toBe(0);
  });

  it('fails exactly the armed call, once, and says which', () => {
    faultInjector.arm(3);
    expect([shouldFail('a'), shouldFail('b'), shouldFail('c'), shouldFail('d'), shouldFail('c')]).toEqual([
      false,
      false,
      true,
      false,
      false,
    ]);
    expect(faultInjector.fired).toEqual({ nth: 3, site: 'c' });
    expect(faultInjector.calls).toBe(5);
  });

  it('arm restarts the count; a flow that never reaches the armed call leaves fired null', () => {
    faultInjector.arm(2);
    shouldFail('a');
    faultInjector.arm(10);
    expect(shouldFail('a')).toBe(false);
    expect(shouldFail('b')).toBe(false);
    expect(faultInjector.fired).toBeNull();
    expect(faultInjector.calls).toBe(2);
  });

  it('record lists the points passed without failing any; disarm stops counting', () => {
    faultInjector.record();
    shouldFail('mm.alloc_pages');
    shouldFail('iommufd.object_alloc');
    expect(faultInjector.log).toEqual([
      { nth: 1, site: 'mm.alloc_pages' },
      { nth: 2, site: 'iommufd.object_alloc' },
    ]);
    expect(faultInjector.fired).toBeNull();
    faultInjector.disarm();
    shouldFail('x');
    expect(faultInjector.calls).toBe(2);
  });

  it('rejects a negative or fractional nth', () => {
    expect(() => faultInjector.arm(-1)).toThrow(RangeError);
    expect(() => faultInjector.arm(1.5)).toThrow(RangeError);
    expect(faultInjector.active).toBe(false);
  });
});
