/**
 * The uAPI fuzzer's entry: `runFuzz` builds a {@link FuzzWorld} (machine, process, iommufd with the
 * selftest driver, VFIO container + group + device, /dev/ioasid) and runs the loop over the
 * generators of every file.
 */

import type { FuzzReport } from '../report.js';
import type { FuzzGenerator } from './call.js';
import { type FuzzSubject, fuzzLoop } from './engine.js';
import { ioasidGenerator } from './ioasid-calls.js';
import { iommufdGenerator } from './iommufd-calls.js';
import { refreshScratch } from './memory.js';
import { vfioContainerGenerator, vfioDeviceGenerator, vfioGroupGenerator } from './vfio-calls.js';
import { FuzzWorld } from './world.js';

/** Options of {@link runFuzz}. */
export interface RunFuzzOptions {
  /** ioctl calls to make. */
  readonly calls: number;
  /** Seed of every random choice (and of the machine's scheduler). */
  readonly seed: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

/** Test hooks of {@link fuzzSubject}. */
export interface FuzzSubjectOptions {
  /** Generators added to the real ones (a test's fake file). */
  readonly extraGenerators?: readonly FuzzGenerator[];
}

/**
 * The subject over a world: its generators with their weights, the invariants, recycling.
 * @param world - the world (owned by the caller, who disposes of it)
 * @param options - extra generators
 * @returns the subject
 */
export function fuzzSubject(world: FuzzWorld, options: FuzzSubjectOptions = {}): FuzzSubject {
  const generators: FuzzGenerator[] = [
    iommufdGenerator(world, 'iommufd', 45),
    iommufdGenerator(world, 'vfio', 8),
    vfioContainerGenerator(world, 20),
    vfioGroupGenerator(world, 5),
    vfioDeviceGenerator(world, 3),
    ioasidGenerator(world, 12),
    ...(options.extraGenerators ?? []),
  ];
  let tick = 0;
  return {
    generators,
    check: () => world.check(),
    recycle() {
      world.closeAll();
      const problems = world.checkClosed();
      world.open();
      return problems;
    },
    finish() {
      world.closeAll();
      return world.checkClosed();
    },
    beforeCall(v) {
      if (++tick % 64 === 0) refreshScratch(v, world);
    },
  };
}

/**
 * Fuzz the uAPIs of iommufd (with IOMMU_TEST_CMD), VFIO (container, group, device) and
 * /dev/ioasid: `calls` calls from `seed`, every exception that is not an `ErrnoError` and every
 * broken invariant reported as a problem.
 * @param options - budget, seed, log
 * @returns the report
 */
export function runFuzz(options: RunFuzzOptions): FuzzReport {
  const world = new FuzzWorld(options.seed);
  try {
    return fuzzLoop(fuzzSubject(world), {
      calls: options.calls,
      seed: options.seed,
      ...(options.log === undefined ? {} : { log: options.log }),
    });
  } finally {
    world.dispose();
  }
}
