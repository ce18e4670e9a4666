import { describe, expect, it } from 'vitest';
import { isErrnoError } from './errno.js';
import { traceWorkqueueQueueWork, type WorkqueueQueueWorkEvent } from './sched-trace.js';
import { Scheduler } from './scheduler.js';
import {
  cancelDelayedWork,
  cancelDelayedWorkSync,
  cancelWork,
  cancelWorkSync,
  DelayedWork,
  flushDelayedWork,
  flushWork,
  Work,
  WQ_DFL_ACTIVE,
} from './workqueue.js';

describe('queueWork', () => {
  it('returns false while pending and true otherwise; the work runs once', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq');
    let runs = 0;
    const work = new Work(() => runs++);
    expect(work.pending).toBe(false);
    expect(wq.queueWork(work)).toBe(true);
    expect(work.pending).toBe(true);
    expect(wq.queueWork(work)).toBe(false);
    expect(sched.scheduleWork(work)).toBe(false); // pending on another queue counts too
    expect(wq.pendingCount).toBe(1);
    sched.runUntilIdle();
    expect(runs).toBe(1);
    expect(work.pending).toBe(false);
    expect(wq.queueWork(work)).toBe(true);
    sched.runUntilIdle();
    expect(runs).toBe(2);
  });

  it('runs a work again when it is re-queued while running', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq');
    const states: boolean[] = [];
    let runs = 0;
    const work = new Work((w) => {
      runs++;
      states.push(w.pending, w.running);
      if (runs === 1) states.push(wq.queueWork(w), wq.queueWork(w));
    });
    wq.queueWork(work);
    sched.runUntilIdle();
    expect(runs).toBe(2);
    expect(states).toEqual([false, true, true, false, false, true]);
    expect(work.running).toBe(false);
  });

  it('names work tasks <queue>:<work> and emits workqueue_queue_work', () => {
    const sched = new Scheduler();
    const names: string[] = [];
    sched.onTaskRun = (e) => names.push(e.name);
    const events: WorkqueueQueueWorkEvent[] = [];
    const off = traceWorkqueueQueueWork.subscribe((e) => events.push(e));
    function handleFault(): void {}
    sched.allocWorkqueue('iopf').queueWork(new Work(handleFault));
    sched.systemWq.queueWork(new Work(() => {}, 'named'));
    sched.systemWq.queueWork(new Work(() => {}));
    off();
    sched.runUntilIdle();
    expect(names).toEqual(['iopf:handleFault', 'events:named', 'events:work']);
    expect(events.map((e) => `${e.workqueue}/${e.work}/${e.schedulerId === sched.id}`)).toEqual([
      'iopf/handleFault/true',
      'events/named/true',
      'events/work/true',
    ]);
  });
});

describe('ordered and max_active queues', () => {
  it('runs an ordered queue strictly in queue order under every seed', () => {
    for (let seed = 0; seed < 30; seed++) {
      const sched = new Scheduler({ seed });
      const owq = sched.allocWorkqueue('owq', { ordered: true });
      const wq = sched.allocWorkqueue('wq');
      const log: string[] = [];
      for (let i = 0; i < 6; i++) {
        owq.queueWork(new Work(() => log.push(`o${i}`)));
        wq.queueWork(new Work(() => log.push(`u${i}`)));
      }
      sched.runUntilIdle();
      expect(log.filter((x) => x.startsWith('o'))).toEqual(['o0', 'o1', 'o2', 'o3', 'o4', 'o5']);
      expect(log).toHaveLength(12);
    }
  });

  it('lets an unordered queue run in any order when seeded', () => {
    const orders = new Set<string>();
    for (let seed = 0; seed < 20; seed++) {
      const sched = new Scheduler({ seed });
      const wq = sched.allocWorkqueue('wq');
      const log: number[] = [];
      for (let i = 0; i < 3; i++) wq.queueWork(new Work(() => log.push(i)));
      sched.runUntilIdle();
      orders.add(log.join(''));
    }
    expect(orders.size).toBeGreaterThanOrEqual(3);
  });

  it('keeps only maxActive works of a queue ready at a time', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq', { maxActive: 2 });
    expect(wq.maxActive).toBe(2);
    expect(sched.allocWorkqueue('d').maxActive).toBe(WQ_DFL_ACTIVE);
    expect(sched.allocWorkqueue('o', { ordered: true }).maxActive).toBe(1);
    for (let i = 0; i < 5; i++) wq.queueWork(new Work(() => {}));
    expect(wq.pendingCount).toBe(5);
    expect(sched.readyCount).toBe(2);
    sched.step();
    expect(sched.readyCount).toBe(2);
    expect(wq.pendingCount).toBe(4);
    sched.runUntilIdle();
    expect(wq.pendingCount).toBe(0);
  });

  it('rejects bad options with EINVAL', () => {
    const sched = new Scheduler();
    const codes: unknown[] = [];
    for (const opts of [{ maxActive: 0 }, { maxActive: 1.5 }, { ordered: true, maxActive: 4 }]) {
      try {
        sched.allocWorkqueue('bad', opts);
      } catch (e) {
        codes.push(isErrnoError(e, 'EINVAL'));
      }
    }
    expect(codes).toEqual([true, true, true]);
  });
});

describe('flushWork', () => {
  it('runs only the flushed work, nested, and says whether it waited', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq');
    const log: string[] = [];
    const a = new Work(() => log.push('a'));
    const b = new Work(() => log.push('b'));
    const c = new Work(() => log.push('c'));
    wq.queueWork(a);
    wq.queueWork(b);
    wq.queueWork(c);
    expect(flushWork(b)).toBe(true);
    expect(log).toEqual(['b']);
    expect(flushWork(b)).toBe(false);
    expect(sched.readyCount).toBe(2);
    sched.runUntilIdle();
    expect(log).toEqual(['b', 'a', 'c']);
  });

  it('on an ordered queue runs everything ahead of the work first, and nothing after', () => {
    const sched = new Scheduler();
    const owq = sched.allocWorkqueue('owq', { ordered: true });
    const log: string[] = [];
    const works = ['a', 'b', 'c', 'd'].map((n) => new Work(() => log.push(n)));
    for (const w of works) owq.queueWork(w);
    expect(flushWork(works[2]!)).toBe(true);
    expect(log).toEqual(['a', 'b', 'c']);
    expect(works[3]!.pending).toBe(true);
    sched.runUntilIdle();
    expect(log).toEqual(['a', 'b', 'c', 'd']);
  });

  it('can be called from another work, running the target nested', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq');
    const log: string[] = [];
    const target = new Work(() => log.push('target'));
    const waiter = new Work(() => {
      log.push('waiter-start');
      log.push(String(flushWork(target)));
      log.push('waiter-end');
    });
    wq.queueWork(waiter);
    wq.queueWork(target);
    sched.runUntilIdle();
    expect(log).toEqual(['waiter-start', 'target', 'true', 'waiter-end']);
  });

  it('throws a deadlock error when a work flushes itself or a wait cycle forms', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq');
    const errors: string[] = [];
    const self = new Work((w) => {
      wq.queueWork(w);
      try {
        flushWork(w);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }, 'self');
    wq.queueWork(self);
    sched.step();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^deadlock: flush_work\('self'\)/);
    cancelWork(self);

    // a -> flush(b), b -> flush(a): a is on the stack when b waits for it.
    const a: Work = new Work(() => flushWork(b), 'a');
    const b: Work = new Work(() => {
      wq.queueWork(a);
      flushWork(a);
    }, 'b');
    wq.queueWork(a);
    wq.queueWork(b);
    expect(() => sched.runUntilIdle()).toThrow(/deadlock/);
  });

  it('throws a deadlock error when an ordered queue work flushes a later one', () => {
    const sched = new Scheduler();
    const owq = sched.allocWorkqueue('owq', { ordered: true });
    const later = new Work(() => {}, 'later');
    owq.queueWork(new Work(() => flushWork(later), 'head'));
    owq.queueWork(later);
    expect(() => sched.step()).toThrow(/deadlock.*ordered/);
  });

  it('throws a deadlock error when works on the stack hold every active slot', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq', { maxActive: 1 });
    const other = new Work(() => {}, 'other');
    wq.queueWork(new Work(() => flushWork(other), 'holder'));
    wq.queueWork(other);
    expect(() => sched.step()).toThrow(/deadlock.*active slots/);
  });
});

describe('Workqueue.flush / drain / destroy', () => {
  it('flush runs what was queued before the call but not what those works queue', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq', { ordered: true });
    const log: string[] = [];
    const chained = new Work(() => log.push('chained'));
    wq.queueWork(new Work(() => log.push('a')));
    wq.queueWork(
      new Work(() => {
        log.push('b');
        wq.queueWork(chained);
      }),
    );
    wq.flush();
    expect(log).toEqual(['a', 'b']);
    expect(chained.pending).toBe(true);
    expect(wq.pendingCount).toBe(1);
    sched.runUntilIdle();
    expect(log).toEqual(['a', 'b', 'chained']);
  });

  it('flush from one of its own works is a deadlock', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq');
    wq.queueWork(new Work(() => wq.flush()));
    expect(() => sched.runUntilIdle()).toThrow(/deadlock: flush_workqueue\('wq'\)/);
  });

  it('destroy drains chained work, then refuses new work', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq');
    const log: string[] = [];
    let left = 3;
    const chain = new Work((w) => {
      log.push(`chain${left}`);
      if (--left > 0) wq.queueWork(w);
    });
    wq.queueWork(chain);
    wq.destroy();
    expect(log).toEqual(['chain3', 'chain2', 'chain1']);
    expect(wq.destroyed).toBe(true);
    expect(() => wq.queueWork(new Work(() => {}))).toThrow(/destroyed/);
    expect(() => wq.queueDelayedWork(new DelayedWork(() => {}), 5)).toThrow(/destroyed/);
    expect(sched.idle).toBe(true);
    wq.destroy(); // idempotent
  });

  it('destroy refuses while a delayed work is armed onto the queue', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq');
    const dw = new DelayedWork(() => {});
    wq.queueDelayedWork(dw, 100);
    expect(() => wq.destroy()).toThrow(/still armed/);
    cancelDelayedWork(dw);
    wq.destroy();
    expect(wq.destroyed).toBe(true);
  });

  it('drain refuses queueing from outside its own works', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq');
    const other = sched.allocWorkqueue('other');
    const errors: string[] = [];
    const outsider = new Work(() => {
      try {
        wq.queueWork(new Work(() => {}));
      } catch (e) {
        errors.push((e as Error).message);
      }
    });
    other.queueWork(outsider);
    // The drained work flushes a work of another queue, which then queues onto `wq`: still chained
    // (a `wq` work is on the stack), so it is accepted.
    wq.queueWork(new Work(() => flushWork(outsider)));
    wq.drain();
    expect(errors).toEqual([]);
    expect(wq.pendingCount).toBe(0);
    expect(wq.destroyed).toBe(false);
  });
});

describe('cancelWorkSync / cancelWork', () => {
  it('returns whether the work was pending, and a cancelled work never runs', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq');
    let runs = 0;
    const work = new Work(() => runs++);
    expect(cancelWorkSync(work)).toBe(false);
    wq.queueWork(work);
    expect(cancelWorkSync(work)).toBe(true);
    expect(work.pending).toBe(false);
    expect(cancelWorkSync(work)).toBe(false);
    expect(sched.readyCount).toBe(0);
    sched.runUntilIdle();
    expect(runs).toBe(0);
    wq.queueWork(work);
    expect(cancelWork(work)).toBe(true);
    sched.runUntilIdle();
    expect(runs).toBe(0);
  });

  it('activates the next work of a max_active queue when a pending one is cancelled', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq', { ordered: true });
    const log: string[] = [];
    const a = new Work(() => log.push('a'));
    wq.queueWork(a);
    wq.queueWork(new Work(() => log.push('b')));
    expect(cancelWorkSync(a)).toBe(true);
    sched.runUntilIdle();
    expect(log).toEqual(['b']);
  });

  it('is a deadlock from inside the work itself', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq');
    const work: Work = new Work(() => cancelWorkSync(work), 'me');
    wq.queueWork(work);
    expect(() => sched.runUntilIdle()).toThrow(/deadlock: cancel_work_sync\('me'\)/);
  });
});

describe('delayed work', () => {
  it('fires at the right virtual time', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq');
    const times: number[] = [];
    const dw = new DelayedWork(() => times.push(sched.now));
    sched.advanceBy(1000);
    expect(wq.queueDelayedWork(dw, 500)).toBe(true);
    expect(dw.pending).toBe(true);
    expect(dw.timerPending).toBe(true);
    expect(wq.queueDelayedWork(dw, 10)).toBe(false);
    expect(wq.queueWork(dw)).toBe(false);
    expect(wq.pendingCount).toBe(0);
    sched.advanceBy(499);
    expect(times).toEqual([]);
    sched.advanceBy(1);
    expect(times).toEqual([1500]);
    expect(dw.pending).toBe(false);
    expect(wq.queueDelayedWork(dw, 0)).toBe(true);
    expect(dw.timerPending).toBe(false);
    expect(sched.timerCount).toBe(0);
    sched.runUntilIdle();
    expect(times).toEqual([1500, 1500]);
  });

  it('modDelayedWork re-arms a pending work and arms an idle one', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq');
    const times: number[] = [];
    const dw = new DelayedWork(() => times.push(sched.now));
    expect(wq.modDelayedWork(dw, 300)).toBe(false);
    sched.advanceBy(100);
    expect(wq.modDelayedWork(dw, 300)).toBe(true);
    expect(sched.timerCount).toBe(1);
    sched.runUntilIdle();
    expect(times).toEqual([400]);
    // mod of a queued (timer already fired) work pulls it back and re-delays it
    wq.queueDelayedWork(dw, 0);
    expect(wq.modDelayedWork(dw, 50)).toBe(true);
    expect(wq.pendingCount).toBe(0);
    sched.runUntilIdle();
    expect(times).toEqual([400, 450]);
  });

  it('cancelDelayedWork(Sync) disarms the timer and the work never runs', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq');
    let runs = 0;
    const dw = new DelayedWork(() => runs++);
    wq.queueDelayedWork(dw, 100);
    expect(cancelDelayedWork(dw)).toBe(true);
    expect(cancelDelayedWork(dw)).toBe(false);
    expect(sched.idle).toBe(true);
    wq.queueDelayedWork(dw, 100);
    expect(cancelDelayedWorkSync(dw)).toBe(true);
    expect(cancelDelayedWorkSync(dw)).toBe(false);
    sched.runUntilIdle();
    expect(runs).toBe(0);
    expect(sched.now).toBe(0);
  });

  it('flushWork ignores an armed timer; flushDelayedWork kicks it', () => {
    const sched = new Scheduler();
    const wq = sched.allocWorkqueue('wq');
    const times: number[] = [];
    const dw = new DelayedWork(() => times.push(sched.now));
    sched.scheduleDelayedWork(dw, 1000);
    expect(flushWork(dw)).toBe(false);
    expect(times).toEqual([]);
    expect(flushDelayedWork(dw)).toBe(true);
    expect(times).toEqual([0]);
    expect(sched.idle).toBe(true);
    expect(flushDelayedWork(dw)).toBe(false);
    expect(wq.pendingCount).toBe(0);
  });

  it('rejects bad delays', () => {
    const sched = new Scheduler();
    const dw = new DelayedWork(() => {});
    expect(() => sched.systemWq.queueDelayedWork(dw, -1)).toThrow(RangeError);
    expect(() => sched.systemWq.modDelayedWork(dw, Number.NaN)).toThrow(RangeError);
    expect(dw.pending).toBe(false);
  });
});
