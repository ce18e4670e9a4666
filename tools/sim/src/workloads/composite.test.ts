import { describe, expect, it } from 'vitest';
import { DataMismatchError, Recorder } from '../metrics/recorder.js';
import { compositeWorkload, stepPrefix } from './composite.js';
import { Rng } from './rng.js';
import type { Workload, WorkloadContext, WorkloadParams } from './workload.js';
import { fakeMachine } from './workload.test-helpers.js';

interface Call {
  readonly workload: string;
  readonly ctx: WorkloadContext;
  readonly params: WorkloadParams;
}

function recording(
  name: string,
  calls: Call[],
  opts: { reason?: (p: WorkloadParams) => string | null; fail?: Error; steps?: readonly string[] } = {},
): Workload {
  return {
    name,
    description: `fake ${name}`,
    params: {
      device: { type: 'string', description: 'endpoint', default: 'nic0' },
      count: { type: 'integer', description: 'how many', default: 4, minimum: 1, maximum: 100 },
    },
    supports: (_m, p) => opts.reason?.(p) ?? null,
    run(ctx) {
      calls.push({ workload: name, ctx, params: ctx.params });
      ctx.rec.space('ioas 1', 'ioas', [String(ctx.params['device'])]);
      ctx.rec.mapped('ioas 1', 0x1000n, 0x2000n, `${name} buffer`);
      for (const s of opts.steps ?? ['map', 'dma']) ctx.rec.step(s);
      ctx.rec.unmapped('ioas 1', 0x1000n, 0x2000n);
      ctx.rec.expect(`${name} ran`, true);
      if (opts.fail !== undefined) throw opts.fail;
    },
  };
}

describe('compositeWorkload', () => {
  it('runs its steps in order on one machine, rng and recorder, with defaults applied', () => {
    const calls: Call[] = [];
    const a = recording('alpha', calls);
    const b = recording('beta', calls, { steps: ['only'] });
    const c = compositeWorkload('two-flows', 'two flows', [
      { workload: a, params: { device: 'nic1' } },
      { workload: b, params: { count: 9 } },
      { workload: a, params: {} },
    ]);
    expect(c.name).toBe('two-flows');
    expect(c.description).toBe('two flows');
    expect(c.params).toEqual({});
    const machine = fakeMachine();
    const rec = new Recorder(machine);
    const rng = new Rng(7);
    c.run({ machine, rng, rec, params: {} });

    expect(calls.map((x) => x.workload)).toEqual(['alpha', 'beta', 'alpha']);
    expect(calls.map((x) => x.params)).toEqual([
      { device: 'nic1', count: 4 },
      { device: 'nic0', count: 9 },
      { device: 'nic0', count: 4 },
    ]);
    for (const x of calls) {
      expect(x.ctx.machine).toBe(machine);
      expect(x.ctx.rng).toBe(rng);
    }
    expect(rec.timeline().map((e) => e.label)).toEqual(['1: map', '1: dma', '2: only', '3: map', '3: dma']);
    expect(rec.timeline().map((e) => e.index)).toEqual([0, 1, 2, 3, 4]);
    // Each step's spaces stay apart even though all three call theirs `ioas 1`.
    expect(
      rec.spaces().map((s) => [s.name, s.devices, s.ranges.map((r) => [r.label, r.mappedAt, r.unmappedAt])]),
    ).toEqual([
      ['1: ioas 1', ['nic1'], [['alpha buffer', 0, 2]]],
      ['2: ioas 1', ['nic0'], [['beta buffer', 2, 3]]],
      ['3: ioas 1', ['nic0'], [['alpha buffer', 3, 5]]],
    ]);
    // Checks made through the step views land on the shared recorder.
    expect(rec.figures().checks).toBe(3);
  });

  it('gives each step a recorder whose other members are the shared one', () => {
    const seen: Recorder[] = [];
    const w: Workload = {
      name: 'peek',
      description: 'peek',
      params: {},
      supports: () => null,
      run: (ctx) => {
        seen.push(ctx.rec);
        ctx.rec.verify('bytes', new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3]));
        ctx.rec.tick();
      },
    };
    const machine = fakeMachine();
    const rec = new Recorder(machine);
    compositeWorkload('p', 'p', [{ workload: w, params: {} }]).run({
      machine,
      rng: new Rng(1),
      rec,
      params: {},
    });
    expect(seen[0]).not.toBe(rec);
    expect(seen[0]?.machine).toBe(machine);
    expect(rec.figures().bytesVerified).toBe(3);
  });

  it('stops at the first failing step, keeps the error class and names the step', () => {
    const calls: Call[] = [];
    const boom = new DataMismatchError('rx ring', 5, 0xaa, 0x00);
    const c = compositeWorkload('f', 'f', [
      { workload: recording('alpha', calls), params: {} },
      { workload: recording('beta', calls, { fail: boom }), params: {} },
      { workload: recording('gamma', calls), params: {} },
    ]);
    const machine = fakeMachine();
    const run = (): void => c.run({ machine, rng: new Rng(1), rec: new Recorder(machine), params: {} });
    expect(run).toThrow(DataMismatchError);
    expect(boom.message).toBe('step 2 (beta): data check failed: rx ring: byte 5 is 0x0, expected 0xaa');
    expect(calls.map((x) => x.workload)).toEqual(['alpha', 'beta']);
  });

  it('supports() returns the first step reason, prefixed, with the step params after defaults', () => {
    const calls: Call[] = [];
    const seen: WorkloadParams[] = [];
    const needsPri = recording('sva', calls, {
      reason: (p) => {
        seen.push(p);
        return p['device'] === 'nvme0' ? 'needs a PCI endpoint with PRI' : null;
      },
    });
    const never = recording('later', calls, { reason: () => 'should not be asked first' });
    const machine = fakeMachine();
    expect(
      compositeWorkload('ok', 'ok', [{ workload: needsPri, params: {} }]).supports(machine, {}),
    ).toBeNull();
    const c = compositeWorkload('x', 'x', [
      { workload: needsPri, params: {} },
      { workload: needsPri, params: { device: 'nvme0' } },
      { workload: never, params: {} },
    ]);
    expect(c.supports(machine, {})).toBe('step 2 (sva): needs a PCI endpoint with PRI');
    expect(seen.slice(-2)).toEqual([
      { device: 'nic0', count: 4 },
      { device: 'nvme0', count: 4 },
    ]);
    expect(
      compositeWorkload('y', 'y', [
        { workload: needsPri, params: {} },
        { workload: never, params: {} },
      ]).supports(machine, {}),
    ).toBe('step 2 (later): should not be asked first');
    expect(calls).toEqual([]);
  });

  it('rejects an empty step list and copies the steps it is given', () => {
    expect(() => compositeWorkload('e', 'e', [])).toThrow('composite workload e has no steps');
    const calls: Call[] = [];
    const params = { count: 2 };
    const steps = [{ workload: recording('a', calls), params }];
    const c = compositeWorkload('c', 'c', steps);
    params.count = 50;
    steps.push({ workload: recording('b', calls), params });
    expect(c.steps.length).toBe(1);
    expect(c.steps[0]?.params).toEqual({ count: 2 });
    expect(stepPrefix(0)).toBe('1: ');
  });
});
