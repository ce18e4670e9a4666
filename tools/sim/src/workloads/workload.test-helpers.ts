// Shared by the workload tests: the two default machines, built fresh per test and disposed after
// it, and a run of one workload on a machine with its own Recorder.

import type { Endpoint } from '@iommu-ts/iommu-core';
import { afterEach, expect } from 'vitest';
import { buildMachine } from '../machine/build.js';
import type { MachineCounters, SimEndpoint, SimMachine } from '../machine/machine.js';
import { zeroUnitCounters } from '../metrics/counters.js';
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

/**
 * Just enough of a machine for a Recorder: counters that never move, no pinned page, time 0.
 * @param name - the machine's name
 * @returns the stand-in
 */
export function fakeMachine(name = 'fake'): SimMachine {
  const counters = (): MachineCounters => ({
    ...zeroUnitCounters(),
    dmaRequests: 0,
    atcHits: 0,
    atcMisses: 0,
    bytesRead: 0,
    bytesWritten: 0,
    dmaFaults: {},
    atsRequests: 0,
    atcInvalidations: 0,
  });
  return {
    name,
    counters,
    scheduler: { now: 0 },
    memory: { stats: () => ({ pinnedPages: 0 }) },
  } as unknown as SimMachine;
}

/** A view of `t` whose listed members are replaced (methods of `t` stay bound to it). */
function overlay<T extends object>(t: T, over: Record<string, unknown>): T {
  return new Proxy(t, {
    get(target, k) {
      if (typeof k === 'string' && k in over) return over[k];
      const v = Reflect.get(target, k, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

/**
 * The machine with one endpoint's members replaced (a misbehaving device for a test).
 * @param m - the machine
 * @param name - the endpoint's name
 * @param over - the replacement members, given the real endpoint model
 * @returns a view of the machine whose `endpoints` list has the replaced endpoint
 */
export function withEndpointOverride(
  m: SimMachine,
  name: string,
  over: (real: Endpoint) => Record<string, unknown>,
): SimMachine {
  const real = (m.endpoints.find((e) => e.name === name) as SimEndpoint).endpoint;
  const endpoint = overlay(real, over(real));
  const endpoints = m.endpoints.map((e) => (e.name === name ? { ...e, endpoint } : e));
  return overlay(m, { endpoints });
}
