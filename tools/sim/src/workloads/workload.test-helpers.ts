// Shared by the workload tests: the two default machines, built fresh per test and disposed after
// it, and a run of one workload on a machine with its own Recorder.

import { afterEach, expect } from 'vitest';
import { buildMachine } from '../machine/build.js';
import type { SimMachine } from '../machine/machine.js';
import { Recorder } from '../metrics/recorder.js';
import { defaultArmPlatform } from '../platform/default-arm.js';
import { defaultX86Platform } from '../platform/default-x86.js';
import type { PlatformDescription } from '../platform/platform.js';
import { Rng } from './rng.js';
import { type Workload, type WorkloadParam, withDefaults } from './workload.js';

/** The embedded default platforms with a label for test names. */
export const DEFAULT_PLATFORMS = [
  ['x86 (VT-d)', defaultX86Platform],
  ['arm (SMMUv3)', defaultArmPlatform],
] as const;

/** A function making a platform description. */
export type PlatformFactory = () => PlatformDescription;

/**
 * A machine builder for one test file: every machine it builds (seed 1) is disposed after the test.
 * Call at module level.
 * @returns the builder
 */
export function machineBuilder(): (p: PlatformFactory) => SimMachine {
  let machines: SimMachine[] = [];
  afterEach(() => {
    for (const m of machines) m.dispose();
    machines = [];
  });
  return (p) => {
    const m = buildMachine(p(), { seed: 1 });
    machines.push(m);
    return m;
  };
}

/**
 * Run a workload on a machine (asserting the machine supports it).
 * @param w - the workload
 * @param machine - the machine
 * @param given - parameters (defaults applied)
 * @param seed - the workload's Rng seed
 * @returns the recorder with what the run reported
 */
export function runWorkload(
  w: Workload,
  machine: SimMachine,
  given: Record<string, WorkloadParam> = {},
  seed = 7,
): Recorder {
  const rec = new Recorder(machine);
  const params = withDefaults(w, given);
  expect(w.supports(machine, params)).toBeNull();
  w.run({ machine, rng: new Rng(seed), rec, params });
  return rec;
}
