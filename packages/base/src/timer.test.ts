import { describe, expect, it } from 'vitest';
import { Scheduler } from './scheduler.js';

describe('Timer', () => {
  it('fires in expiry order, ties in arming order, with now equal to the expiry', () => {
    const sched = new Scheduler({ seed: 5 });
    const log: string[] = [];
    const mk = (name: string) => sched.createTimer(() => log.push(`${name}@${sched.now}`), name);
    const c = mk('c');
    const a = mk('a');
    const b1 = mk('b1');
    const b2 = mk('b2');
    const b0 = mk('b0');
    c.mod(300);
    b1.mod(200);
    a.mod(100);
    b2.mod(200);
    b0.mod(200);
    expect(sched.nextTimerExpiry).toBe(100);
    expect(sched.timerCount).toBe(5);
    sched.runUntilIdle();
    expect(log).toEqual(['a@100', 'b1@200', 'b2@200', 'b0@200', 'c@300']);
    expect(sched.now).toBe(300);
  });

  it('re-arming moves a timer to the back of its new expiry tie', () => {
    const sched = new Scheduler();
    const log: string[] = [];
    const x = sched.createTimer(() => log.push('x'));
    const y = sched.createTimer(() => log.push('y'));
    x.mod(50);
    y.mod(50);
    expect(x.mod(50)).toBe(true);
    sched.runUntilIdle();
    expect(log).toEqual(['y', 'x']);
  });

  it('del prevents firing and reports pending', () => {
    const sched = new Scheduler();
    let fired = 0;
    const t = sched.createTimer(() => fired++, 't');
    expect(t.pending).toBe(false);
    expect(t.del()).toBe(false);
    expect(t.mod(10)).toBe(false);
    expect(t.pending).toBe(true);
    expect(t.expires).toBe(10);
    expect(t.del()).toBe(true);
    expect(t.pending).toBe(false);
    expect(sched.idle).toBe(true);
    sched.runUntilIdle();
    expect(fired).toBe(0);
    expect(sched.now).toBe(0);
  });

  it('modAfter is relative to now; add refuses a pending timer; past expiries fire without going back', () => {
    const sched = new Scheduler();
    const times: number[] = [];
    const t = sched.createTimer(() => times.push(sched.now));
    sched.advanceBy(1000);
    t.modAfter(25);
    expect(t.expires).toBe(1025);
    expect(() => t.add(2000)).toThrow(/already pending/);
    sched.runUntilIdle();
    t.add(10); // in the past
    sched.runUntilIdle();
    expect(times).toEqual([1025, 1025]);
    expect(() => t.mod(-1)).toThrow(RangeError);
    expect(() => t.modAfter(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });

  it('lets the callback re-arm its timer, and delSync from inside it is a deadlock', () => {
    const sched = new Scheduler();
    const times: number[] = [];
    let error = '';
    const t = sched.createTimer((timer) => {
      times.push(sched.now);
      expect(timer.running).toBe(true);
      expect(timer.pending).toBe(false);
      if (times.length < 3) timer.modAfter(100);
      else {
        try {
          timer.delSync();
        } catch (e) {
          error = (e as Error).message;
        }
      }
    }, 'periodic');
    t.mod(0);
    sched.runUntilIdle();
    expect(times).toEqual([0, 100, 200]);
    expect(error).toMatch(/^deadlock: timer_delete_sync\(periodic\)/);
    t.mod(500);
    expect(t.delSync()).toBe(true);
    expect(t.running).toBe(false);
  });

  it('handles many timers with heavy re-arming in order', () => {
    const sched = new Scheduler();
    const fired: number[] = [];
    const timers = Array.from({ length: 200 }, (_, i) => sched.createTimer(() => fired.push(i)));
    for (let round = 0; round < 5; round++) {
      timers.forEach((t, i) => {
        t.mod(((i * 7919 + round) % 200) * 10);
      });
    }
    for (let i = 0; i < 200; i += 2) timers[i]!.del();
    sched.runUntilIdle();
    const expected = Array.from({ length: 200 }, (_, i) => i)
      .filter((i) => i % 2 === 1)
      .sort((a, b) => ((a * 7919 + 4) % 200) - ((b * 7919 + 4) % 200));
    expect(fired).toEqual(expected);
  });
});
