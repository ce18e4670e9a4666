import { describe, expect, it } from 'vitest';
import { isErrnoError } from './errno.js';
import { IrqReturn } from './irq.js';
import { Scheduler } from './scheduler.js';

describe('IrqLine', () => {
  it('coalesces raises before the handler runs, and re-delivers a raise made after it started', () => {
    const sched = new Scheduler();
    const line = sched.createIrqLine('msi0');
    let runs = 0;
    line.requestIrq(() => {
      runs++;
      if (runs === 1) line.raise();
      return IrqReturn.HANDLED;
    });
    line.raise();
    line.raise();
    line.raise();
    expect(line.pending).toBe(true);
    expect(sched.readyCount).toBe(1);
    sched.runUntilIdle();
    expect(runs).toBe(2);
    expect(line.raised).toBe(4);
    expect(line.delivered).toBe(2);
    expect(line.pending).toBe(false);
  });

  it('keeps raises pending while disabled, with nesting, and delivers once on the final enable', () => {
    const sched = new Scheduler();
    const line = sched.createIrqLine('l');
    let runs = 0;
    line.requestIrq(() => {
      runs++;
      return IrqReturn.HANDLED;
    });
    line.raise(); // scheduled, then withdrawn by the disable
    line.disableIrq();
    line.disableIrqNosync();
    expect(line.disableDepth).toBe(2);
    line.raise();
    sched.runUntilIdle();
    expect(runs).toBe(0);
    expect(line.pending).toBe(true);
    line.enableIrq();
    sched.runUntilIdle();
    expect(runs).toBe(0);
    line.enableIrq();
    expect(line.disableDepth).toBe(0);
    sched.runUntilIdle();
    expect(runs).toBe(1);
    expect(line.pending).toBe(false);
    expect(() => line.enableIrq()).toThrow(/unbalanced/);
  });

  it('runs the thread function as a separate task on WAKE_THREAD', () => {
    const sched = new Scheduler();
    const names: string[] = [];
    sched.onTaskRun = (e) => names.push(`${e.kind}:${e.name}`);
    const line = sched.createIrqLine('evtq');
    const log: string[] = [];
    line.requestIrq(
      () => {
        log.push('hard');
        return IrqReturn.WAKE_THREAD;
      },
      {
        threadFn: () => {
          log.push('thread');
          return IrqReturn.HANDLED;
        },
        name: 'arm-smmu-v3-evtq',
      },
    );
    expect(line.actionName).toBe('arm-smmu-v3-evtq');
    line.raise();
    sched.spawn(() => log.push('other'));
    sched.runUntilIdle();
    expect(log).toEqual(['hard', 'other', 'thread']);
    expect(names).toEqual(['irq:irq:evtq', 'task:task', 'irq-thread:irq-thread:evtq']);
    expect(line.threadRuns).toBe(1);
  });

  it('coalesces wakes while the thread is pending and re-runs it once after a raise during its run', () => {
    const sched = new Scheduler();
    const line = sched.createIrqLine('prq');
    const log: string[] = [];
    let threadCalls = 0;
    let hardCalls = 0;
    line.requestIrq(
      () => {
        log.push('hard');
        if (++hardCalls === 1) line.raise(); // the next edge arrives while this handler runs
        return IrqReturn.WAKE_THREAD;
      },
      {
        threadFn: () => {
          threadCalls++;
          log.push(`thread${threadCalls}`);
          if (threadCalls === 1) {
            line.raise();
            line.raise();
            sched.spawn(() => log.push('between'));
          }
          return IrqReturn.HANDLED;
        },
      },
    );
    line.raise();
    sched.step(); // hard: queues hard again, then wakes the thread
    sched.step(); // hard again: the thread is still pending, so the wake coalesces
    expect(line.delivered).toBe(2);
    expect(sched.readyCount).toBe(1);
    sched.runUntilIdle();
    // thread1 raises twice while running: one hard run, which wakes the thread once more.
    expect(log).toEqual(['hard', 'hard', 'thread1', 'hard', 'between', 'thread2']);
    expect(line.threadRuns).toBe(2);
  });

  it('supports a purely threaded handler (null primary)', () => {
    const sched = new Scheduler();
    const line = sched.createIrqLine('t');
    let runs = 0;
    line.requestIrq(null, {
      threadFn: () => {
        runs++;
        return IrqReturn.HANDLED;
      },
    });
    line.raise();
    sched.runUntilIdle();
    expect(runs).toBe(1);
    expect(line.delivered).toBe(1);
  });

  it('counts spurious raises without a handler and unhandled NONE returns', () => {
    const sched = new Scheduler();
    const line = sched.createIrqLine('s');
    line.raise();
    line.raise();
    expect(line.spurious).toBe(2);
    expect(sched.idle).toBe(true);
    line.requestIrq(() => IrqReturn.NONE);
    line.raise();
    sched.runUntilIdle();
    expect(line.unhandled).toBe(1);
    expect(line.spurious).toBe(2);
    expect(line.delivered).toBe(1);
  });

  it('synchronizeIrq runs the pending handler and thread now, nested', () => {
    const sched = new Scheduler();
    const line = sched.createIrqLine('sync');
    const log: string[] = [];
    line.requestIrq(
      () => {
        log.push('hard');
        return IrqReturn.WAKE_THREAD;
      },
      {
        threadFn: () => {
          log.push('thread');
          return IrqReturn.HANDLED;
        },
      },
    );
    sched.spawn(() => {
      line.raise();
      log.push('before-sync');
      line.synchronizeIrq();
      log.push('after-sync');
    });
    sched.runUntilIdle();
    expect(log).toEqual(['before-sync', 'hard', 'thread', 'after-sync']);
    expect(sched.steps).toBe(1);
  });

  it('disableIrq waits for an already woken thread', () => {
    const sched = new Scheduler();
    const line = sched.createIrqLine('d');
    let threadRuns = 0;
    line.requestIrq(() => IrqReturn.WAKE_THREAD, {
      threadFn: () => {
        threadRuns++;
        return IrqReturn.HANDLED;
      },
    });
    line.raise();
    sched.step();
    line.disableIrq();
    expect(threadRuns).toBe(1);
    expect(sched.idle).toBe(true);
  });

  it('reports deadlocks for waiting on the line from its own handler', () => {
    const sched = new Scheduler();
    const line = sched.createIrqLine('dl');
    const errors: string[] = [];
    line.requestIrq(() => {
      for (const f of [() => line.synchronizeIrq(), () => line.disableIrq(), () => line.freeIrq()]) {
        try {
          f();
        } catch (e) {
          errors.push((e as Error).message);
        }
      }
      return IrqReturn.HANDLED;
    });
    line.raise();
    sched.runUntilIdle();
    expect(errors).toEqual([
      "deadlock: synchronize_irq('dl') called from the line's own handler",
      "deadlock: disable_irq('dl') called from the line's own handler",
      "deadlock: synchronize_irq('dl') called from the line's own handler",
    ]);
    expect(line.disableDepth).toBe(0);
  });

  it('requestIrq / freeIrq: EBUSY, EINVAL, freeing waits and drops latched raises', () => {
    const sched = new Scheduler();
    const line = sched.createIrqLine('f');
    let runs = 0;
    const h = (): IrqReturn => {
      runs++;
      return IrqReturn.HANDLED;
    };
    const errs: boolean[] = [];
    try {
      line.requestIrq(null);
    } catch (e) {
      errs.push(isErrnoError(e, 'EINVAL'));
    }
    line.requestIrq(h);
    try {
      line.requestIrq(h);
    } catch (e) {
      errs.push(isErrnoError(e, 'EBUSY'));
    }
    expect(errs).toEqual([true, true]);
    line.raise();
    line.freeIrq(); // synchronizes: the pending handler runs first
    expect(runs).toBe(1);
    expect(line.requested).toBe(false);
    expect(() => line.freeIrq()).toThrow(/no handler/);
    line.requestIrq(h);
    line.disableIrqNosync();
    line.raise();
    line.freeIrq();
    line.enableIrq();
    sched.runUntilIdle();
    expect(runs).toBe(1);
  });

  it('throws when WAKE_THREAD is returned without a thread function', () => {
    const sched = new Scheduler();
    const line = sched.createIrqLine('w');
    line.requestIrq(() => IrqReturn.WAKE_THREAD);
    line.raise();
    expect(() => sched.runUntilIdle()).toThrow(/no thread function/);
  });
});
