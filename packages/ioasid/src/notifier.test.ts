import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INVALID_IOASID, IoasidNotify, IoasidSetType } from './constants.js';
import { IoasidSubsystem } from './ioasid-subsystem.js';
import { type IoasidNbArgs, type IoasidNotifierBlock, IoasidNotifierChain } from './notifier.js';

const args = (): IoasidNbArgs => {
  const set = new IoasidSubsystem().setAlloc(null, 1, IoasidSetType.NULL);
  return { id: 1, spid: INVALID_IOASID, set, pdata: undefined };
};

describe('IoasidNotifierChain', () => {
  it('property: calls by descending priority, ties in registration order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -2, max: 5 }), { maxLength: 20 }), (prios) => {
        const chain = new IoasidNotifierChain();
        const calls: number[] = [];
        prios.forEach((priority, i) => {
          chain.register({ priority, notifierCall: () => void calls.push(i) });
        });
        chain.call(IoasidNotify.ALLOC, args());
        const expected = prios.map((p, i) => [p, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
        expect(calls).toEqual(expected.map((e) => e[1]));
        expect(chain.length).toBe(prios.length);
      }),
    );
  });

  it('refuses duplicates, unregisters, and snapshots the chain for one call', () => {
    const chain = new IoasidNotifierChain();
    const calls: string[] = [];
    const late: IoasidNotifierBlock = { notifierCall: () => void calls.push('late') };
    const first: IoasidNotifierBlock = {
      priority: 1,
      notifierCall: () => {
        calls.push('first');
        chain.unregister(first);
        chain.register(late);
      },
    };
    expect(chain.register(first)).toBe(true);
    expect(chain.register(first)).toBe(false);
    chain.call(IoasidNotify.FREE, args());
    expect(calls).toEqual(['first']);
    chain.call(IoasidNotify.FREE, args());
    expect(calls).toEqual(['first', 'late']);
    expect(chain.has(first)).toBe(false);
    expect(chain.unregister(first)).toBe(false);
    chain.clear();
    expect(chain.length).toBe(0);
  });

  it('rethrows the first error after calling every block', () => {
    const chain = new IoasidNotifierChain();
    const calls: number[] = [];
    chain.register({
      notifierCall: () => {
        calls.push(1);
        throw new Error('one');
      },
    });
    chain.register({
      notifierCall: () => {
        calls.push(2);
        throw new Error('two');
      },
    });
    chain.register({ notifierCall: () => void calls.push(3) });
    expect(() => chain.call(IoasidNotify.BIND, args())).toThrow('one');
    expect(calls).toEqual([1, 2, 3]);
  });
});
