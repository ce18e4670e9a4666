import { describe, expect, it } from 'vitest';
import { isErrnoError } from './errno.js';
import { traceSchedTaskRun } from './sched-trace.js';
import { defineTracepoint, getTracepoint, listTracepoints, subscribeTracepoint } from './tracepoint.js';

interface FooEvent {
  n: number;
}

describe('tracepoints', () => {
  it('is disabled without probes, enabled with, and disabled again after unsubscribe', () => {
    const tp = defineTracepoint<FooEvent>('test_tp_enable');
    expect(tp.enabled).toBe(false);
    expect(tp.probeCount).toBe(0);
    tp.emit({ n: 0 }); // no probes: nothing happens
    const seen: number[] = [];
    const off = tp.subscribe((e) => seen.push(e.n));
    expect(tp.enabled).toBe(true);
    tp.emit({ n: 1 });
    tp.emit({ n: 2 });
    off();
    off(); // idempotent
    expect(tp.enabled).toBe(false);
    tp.emit({ n: 3 });
    expect(seen).toEqual([1, 2]);
  });

  it('delivers to several probes in subscription order; changes during emit apply to the next event', () => {
    const tp = defineTracepoint<FooEvent>('test_tp_order');
    const log: string[] = [];
    let added = false;
    const offA = tp.subscribe((e) => {
      log.push(`a${e.n}`);
      if (!added) {
        added = true;
        tp.subscribe((ev) => log.push(`c${ev.n}`));
      }
    });
    tp.subscribe((e) => log.push(`b${e.n}`));
    tp.emit({ n: 1 });
    tp.emit({ n: 2 });
    offA();
    tp.emit({ n: 3 });
    expect(log).toEqual(['a1', 'b1', 'a2', 'b2', 'c2', 'b3', 'c3']);
    expect(tp.probeCount).toBe(2);
  });

  it('lets the same function subscribe twice, each unsubscribe removing one copy', () => {
    const tp = defineTracepoint<FooEvent>('test_tp_twice');
    let count = 0;
    const probe = (): void => {
      count++;
    };
    const off1 = tp.subscribe(probe);
    tp.subscribe(probe);
    tp.emit({ n: 0 });
    off1();
    tp.emit({ n: 0 });
    expect(count).toBe(3);
  });

  it('keeps a registry: list, lookup and subscribe by name', () => {
    const tp = defineTracepoint<FooEvent>('test_tp_registry');
    expect(listTracepoints()).toContain('test_tp_registry');
    expect(listTracepoints()).toContain('sched_task_run');
    expect(listTracepoints()).toContain('workqueue_queue_work');
    expect(getTracepoint('test_tp_registry')).toBe(tp);
    expect(getTracepoint('sched_task_run')).toBe(traceSchedTaskRun);
    expect(getTracepoint('no_such_tp')).toBeUndefined();
    const seen: FooEvent[] = [];
    const off = subscribeTracepoint<FooEvent>('test_tp_registry', (e) => seen.push(e));
    expect(tp.enabled).toBe(true);
    tp.emit({ n: 5 });
    off();
    expect(seen).toEqual([{ n: 5 }]);
  });

  it('rejects duplicate and malformed names and unknown subscriptions with errnos', () => {
    defineTracepoint('test_tp_dup');
    const codes: unknown[] = [];
    for (const f of [
      () => defineTracepoint('test_tp_dup'),
      () => defineTracepoint('not a name'),
      () => subscribeTracepoint('no_such_tp', () => {}),
    ]) {
      try {
        f();
      } catch (e) {
        codes.push(isErrnoError(e) ? e.code : e);
      }
    }
    expect(codes).toEqual(['EEXIST', 'EINVAL', 'ENOENT']);
  });
});
