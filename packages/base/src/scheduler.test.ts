import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IrqReturn } from './irq.js';
import type { SchedTaskRunEvent } from './sched-trace.js';
import { traceSchedTaskRun } from './sched-trace.js';
import { Scheduler } from './scheduler.js';
import { cancelWorkSync, DelayedWork, flushWork, Work } from './workqueue.js';

/**
 * A race scenario mixing spawned tasks, an unordered and an ordered workqueue, timers, delayed work
 * and a threaded IRQ. Returns the order in which task bodies ran.
 */
function raceScenario(seed: number | bigint | undefined): string[] {
  const sched = new Scheduler(seed === undefined ? {} : { seed });
  const log: string[] = [];
  const wq = sched.allocWorkqueue('wq');
  const owq = sched.allocWorkqueue('owq', { ordered: true });
  const irq = sched.createIrqLine('dev');
  irq.requestIrq(
    () => {
      log.push('hard');
      return IrqReturn.WAKE_THREAD;
    },
    {
      threadFn: () => {
        log.push('thread');
        wq.queueWork(works[3]!);
        return IrqReturn.HANDLED;
      },
    },
  );
  const works = Array.from({ length: 4 }, (_, i) => new Work(() => log.push(`w${i}`), `w${i}`));
  const ordered = Array.from(
    { length: 3 },
    (_, i) =>
      new Work(() => {
        log.push(`o${i}`);
        if (i === 1) irq.raise();
      }, `o${i}`),
  );
  const dwork = new DelayedWork(() => {
    log.push(`d@${sched.now}`);
    owq.queueWork(ordered[2]!);
  }, 'd');
  const timer = sched.createTimer(() => {
    log.push(`t@${sched.now}`);
    wq.queueWork(works[2]!);
    irq.raise();
  });
  for (let i = 0; i < 4; i++) sched.spawn(() => log.push(`s${i}`), `s${i}`);
  wq.queueWork(works[0]!);
  wq.queueWork(works[1]!);
  owq.queueWork(ordered[0]!);
  owq.queueWork(ordered[1]!);
  wq.queueDelayedWork(dwork, 500);
  timer.mod(500);
  irq.raise();
  sched.runUntilIdle();
  return log;
}

describe('Scheduler: FIFO mode', () => {
  it('runs ready tasks in exactly the order they became ready', () => {
    expect(raceScenario(undefined)).toEqual([
      's0',
      's1',
      's2',
      's3',
      'w0',
      'w1',
      'o0',
      'hard',
      'o1',
      'thread',
      'hard',
      'w3',
      'thread',
      'w3',
      'd@500',
      'o2',
      't@500',
      'w2',
      'hard',
      'thread',
      'w3',
    ]);
  });

  it('steps one task at a time and reports idleness', () => {
    const sched = new Scheduler();
    const log: number[] = [];
    expect(sched.idle).toBe(true);
    expect(sched.step()).toBe(false);
    sched.spawn(() => {
      log.push(1);
      sched.spawn(() => log.push(3));
    });
    sched.spawn(() => log.push(2));
    expect(sched.pendingCount).toBe(2);
    expect(sched.step()).toBe(true);
    expect(log).toEqual([1]);
    expect(sched.readyCount).toBe(2);
    expect(sched.runUntilIdle()).toBe(2);
    expect(log).toEqual([1, 2, 3]);
    expect(sched.steps).toBe(3);
    expect(sched.idle).toBe(true);
  });

  it('cancels spawned tasks that have not started', () => {
    const sched = new Scheduler();
    const log: string[] = [];
    const a = sched.spawn(() => log.push('a'), 'a');
    const b = sched.spawn(() => log.push('b'), 'b');
    expect(b.cancel()).toBe(true);
    expect(b.cancel()).toBe(false);
    expect(b.state).toBe('cancelled');
    expect(sched.readyCount).toBe(1);
    sched.runUntilIdle();
    expect(log).toEqual(['a']);
    expect(a.state).toBe('done');
    expect(a.cancel()).toBe(false);
    expect(a.name).toBe('a');
    expect(a.kind).toBe('task');
  });

  it('keeps FIFO order across many tasks (queue compaction)', () => {
    const sched = new Scheduler();
    const log: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const h = sched.spawn(() => log.push(i));
      if (i % 3 === 0) h.cancel();
    }
    sched.runUntilIdle();
    expect(log).toEqual(Array.from({ length: 5000 }, (_, i) => i).filter((i) => i % 3 !== 0));
  });
});

describe('Scheduler: seeded mode', () => {
  it('reproduces the exact same interleaving for the same seed', () => {
    for (const seed of [1, 2, 99, 123456789n]) {
      const first = raceScenario(seed);
      expect(raceScenario(seed)).toEqual(first);
      // Whatever the interleaving, the ordered queue keeps its order and time-driven parts stay put.
      expect(first.filter((x) => x.startsWith('o'))).toEqual(['o0', 'o1', 'o2']);
      expect(first.filter((x) => x.startsWith('s')).sort()).toEqual(['s0', 's1', 's2', 's3']);
      expect(first.slice(first.indexOf('d@500'), first.indexOf('d@500') + 3)).toEqual([
        'd@500',
        'o2',
        't@500',
      ]);
    }
  });

  it('is reproducible and keeps the ordered-queue invariant for arbitrary seeds (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (seed) => {
        const log = raceScenario(seed);
        expect(raceScenario(seed)).toEqual(log);
        expect(log.filter((x) => x.startsWith('o'))).toEqual(['o0', 'o1', 'o2']);
      }),
      { numRuns: 100 },
    );
  });

  it('reaches different interleavings with different seeds', () => {
    const orders = new Set<string>();
    for (let seed = 0; seed < 20; seed++) orders.add(raceScenario(seed).join(','));
    expect(orders.size).toBeGreaterThanOrEqual(2);
  });

  it('reaches both outcomes of a two-task race', () => {
    const outcomes = new Set<string>();
    for (let seed = 0; seed < 20; seed++) {
      const sched = new Scheduler({ seed });
      let value = '';
      sched.spawn(() => {
        value += 'A';
      });
      sched.spawn(() => {
        value += 'B';
      });
      sched.runUntilIdle();
      outcomes.add(value);
    }
    expect([...outcomes].sort()).toEqual(['AB', 'BA']);
  });

  it('picks roughly uniformly among ready tasks', () => {
    const firsts = [0, 0, 0, 0];
    for (let seed = 0; seed < 4000; seed++) {
      const sched = new Scheduler({ seed });
      let first = -1;
      for (let i = 0; i < 4; i++) {
        sched.spawn(() => {
          if (first < 0) first = i;
        });
      }
      sched.step();
      firsts[first]!++;
    }
    for (const n of firsts) expect(Math.abs(n - 1000)).toBeLessThan(150);
  });

  it('exposes the seed as an unsigned 64-bit value', () => {
    expect(new Scheduler({ seed: -1 }).seed).toBe((1n << 64n) - 1n);
    expect(new Scheduler().seed).toBeUndefined();
  });
});

describe('Scheduler: virtual time and run loops', () => {
  it('advanceBy runs only what is due and then moves the clock', () => {
    const sched = new Scheduler();
    const log: string[] = [];
    sched.createTimer(() => log.push(`a@${sched.now}`)).mod(100);
    sched.createTimer(() => log.push(`b@${sched.now}`)).mod(250);
    sched.spawn(() => log.push(`s@${sched.now}`));
    sched.advanceBy(200);
    expect(log).toEqual(['s@0', 'a@100']);
    expect(sched.now).toBe(200);
    expect(sched.nextTimerExpiry).toBe(250);
    sched.advanceBy(50);
    expect(log).toEqual(['s@0', 'a@100', 'b@250']);
    expect(sched.now).toBe(250);
    sched.advanceTo(1000);
    expect(sched.now).toBe(1000);
    expect(() => sched.advanceBy(-1)).toThrow(RangeError);
  });

  it('runUntil stops as soon as the predicate holds, or returns false when idle', () => {
    const sched = new Scheduler();
    let n = 0;
    for (let i = 0; i < 10; i++) sched.spawn(() => n++);
    expect(sched.runUntil(() => n === 4)).toBe(true);
    expect(n).toBe(4);
    expect(sched.runUntil(() => n === 100)).toBe(false);
    expect(n).toBe(10);
  });

  it('throws a livelock error when maxSteps is exceeded', () => {
    const sched = new Scheduler();
    const respawn = (): void => {
      sched.spawn(respawn);
    };
    sched.spawn(respawn);
    expect(() => sched.runUntilIdle({ maxSteps: 1000 })).toThrow(/livelock/);
    expect(sched.steps).toBe(1000);
    const timerSched = new Scheduler();
    const periodic = timerSched.createTimer((t) => t.modAfter(10));
    periodic.mod(0);
    expect(() => timerSched.runUntilIdle({ maxSteps: 50 })).toThrow(/livelock/);
    expect(timerSched.now).toBe(490);
    expect(() => timerSched.advanceBy(10_000, { maxSteps: 50 })).toThrow(/livelock/);
    expect(() => timerSched.runUntil(() => false, { maxSteps: 5 })).toThrow(/5 steps/);
  });

  it('allows exactly maxSteps steps', () => {
    const sched = new Scheduler();
    for (let i = 0; i < 3; i++) sched.spawn(() => {});
    expect(sched.runUntilIdle({ maxSteps: 3 })).toBe(3);
  });

  it('refuses to be stepped from inside a task', () => {
    const sched = new Scheduler();
    let error: unknown;
    sched.spawn(() => {
      expect(sched.inTask).toBe(true);
      try {
        sched.runUntilIdle();
      } catch (e) {
        error = e;
      }
    });
    sched.runUntilIdle();
    expect(String(error)).toMatch(/inside a task/);
    expect(sched.inTask).toBe(false);
  });

  it('propagates a task exception and stays usable', () => {
    const sched = new Scheduler();
    const log: string[] = [];
    sched.spawn(() => {
      throw new Error('boom');
    });
    sched.spawn(() => log.push('after'));
    expect(() => sched.runUntilIdle()).toThrow('boom');
    expect(sched.runUntilIdle()).toBe(1);
    expect(log).toEqual(['after']);
  });
});

describe('Scheduler: tracing', () => {
  it('reports every task run through onTaskRun and the sched_task_run tracepoint', () => {
    const events: SchedTaskRunEvent[] = [];
    const sched = new Scheduler({ onTaskRun: (e) => events.push(e) });
    const fromTp: string[] = [];
    const off = traceSchedTaskRun.subscribe((e) => {
      if (e.schedulerId === sched.id) fromTp.push(`${e.kind}:${e.name}@${e.now}/${e.step}/${e.depth}`);
    });
    const work = new Work(() => {}, 'inner');
    sched.spawn(() => {
      sched.systemWq.queueWork(work);
      flushWork(work);
    }, 'outer');
    sched.createTimer(() => {}, 'tick').mod(42);
    sched.runUntilIdle();
    off();
    expect(fromTp).toEqual(['task:outer@0/1/0', 'work:events:inner@0/1/1', 'timer:timer:tick@42/2/0']);
    expect(events.map((e) => e.name)).toEqual(['outer', 'events:inner', 'timer:tick']);
    sched.onTaskRun = undefined;
    sched.spawn(() => {});
    sched.runUntilIdle();
    expect(events).toHaveLength(3);
    expect(cancelWorkSync(work)).toBe(false);
  });
});
