import { describe, expect, it } from 'vitest';
import { atcIgnoresInvalidation } from './hooks.js';
import { runDst } from './run.js';

/** The `--replay` argument of a repro line. */
function replayOf(repro: string): string {
  const m = /--replay '([^']*)'/.exec(repro);
  if (m === null) throw new Error(`no replay in ${repro}`);
  return m[1] as string;
}

describe('runDst', () => {
  it('passes 40 seeds alternating the x86 VT-d and Arm SMMUv3 machines', () => {
    const r = runDst({ seeds: 40, firstSeed: 1000 });
    expect(r.failures).toEqual([]);
    expect(r.seeds).toBe(40);
    // ~60 steps per seed on average, one invariant check per step plus teardown.
    expect(r.steps).toBeGreaterThan(40 * 30);
    expect(r.checks).toBeGreaterThan(r.steps);
  });

  it('passes on each platform alone', () => {
    for (const platform of ['x86-vtd', 'arm-smmuv3'] as const)
      expect(runDst({ seeds: 5, firstSeed: 7, platform }).failures).toEqual([]);
  });

  it('catches a planted stale-ATC bug, shrinks it, and replays the same trace', () => {
    const hooks = atcIgnoresInvalidation('nic0');
    const r = runDst({ seeds: 3, firstSeed: 18, hooks });
    expect(r.failures.length).toBeGreaterThan(0);
    const f = r.failures[0];
    if (f === undefined) throw new Error('no failure');
    // Shrunk: a handful of steps, the violated invariant last.
    expect(f.trace.length).toBeLessThanOrEqual(14);
    expect(f.trace.at(-1)).toMatch(/^INVARIANT: dma nic0 (read|write) .*(reached memory|stale translation)/);
    expect(f.trace.some((l) => /^iommufd (unmap|close)/.test(l))).toBe(true);
    expect(f.repro).toMatch(/^pnpm simtest dst --seed \d+ --replay '[^']+'$/);
    // The repro line replays exactly, twice.
    const replay = replayOf(f.repro);
    const a = runDst({ seeds: 1, firstSeed: f.seed, replay, hooks });
    const b = runDst({ seeds: 1, firstSeed: f.seed, replay, hooks });
    expect(a.failures[0]?.trace).toEqual(f.trace);
    expect(b.failures[0]?.trace).toEqual(f.trace);
    expect(a.failures[0]?.repro).toBe(f.repro);
    // Without the planted bug the same scenario passes.
    expect(runDst({ seeds: 1, firstSeed: f.seed, replay }).failures).toEqual([]);
  });

  it('catches a planted lost page response (the DMA never completes)', () => {
    const hooks = {
      ramSlack: 0,
      onBuild(machine: import('@iommu-ts/sim').SimMachine) {
        const ep = machine.endpoints.find((e) => e.name === 'accel0');
        if (ep === undefined) return;
        let n = 0;
        const orig = ep.endpoint.prgResponse.bind(ep.endpoint);
        ep.endpoint.prgResponse = (msg) => {
          if (++n !== 2) orig(msg);
        };
      },
    };
    const r = runDst({ seeds: 2, firstSeed: 1, platform: 'x86-vtd', hooks });
    const f = r.failures[0];
    if (f === undefined) throw new Error('no failure');
    expect(f.trace.at(-1)).toMatch(/never completed/);
    expect(f.trace.length).toBeLessThanOrEqual(10);
  });
});
