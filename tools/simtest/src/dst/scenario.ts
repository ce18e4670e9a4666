/**
 * The fast-check side of a scenario: arbitraries for each operation, weighted so that DMA and
 * memory churn dominate, wrapped as model-based commands (`fc.commands`) so fast-check shrinks the
 * command list and replays it exactly from a seed and a path.
 */

import fc from 'fast-check';
import { type DstOp, describeOp } from './ops.js';
import { DST_PROCESSES, DST_SLOTS, type DstWorld } from './world.js';

/** Model of the model-based run: the world keeps its own oracle, fast-check only sequences steps. */
export type DstModel = Record<string, never>;

/** One scenario step as a fast-check command. */
export class DstCommand implements fc.Command<DstModel, DstWorld> {
  /**
   * @param op - the step
   */
  constructor(readonly op: DstOp) {}

  /** Every step can run in any state (steps whose object is gone are skipped by the world). */
  check(): boolean {
    return true;
  }

  /**
   * Run the step on the world.
   * @param _m - unused model
   * @param w - the world
   */
  run(_m: DstModel, w: DstWorld): void {
    w.exec(this.op);
  }

  /** The step as generated. */
  toString(): string {
    return describeOp(this.op);
  }
}

const p = fc.nat(DST_PROCESSES - 1);
const idx = fc.nat(1023);

/** Weighted arbitraries of every operation. */
function opArbitraries(): fc.Arbitrary<DstOp>[] {
  const w = (weight: number, arb: fc.Arbitrary<DstOp>) => ({ weight, arbitrary: arb });
  return [
    fc.oneof(
      w(6, fc.record({ k: fc.constant('mmap' as const), p, pages: fc.integer({ min: 1, max: 4 }) })),
      w(2, fc.record({ k: fc.constant('munmap' as const), p, r: idx })),
      w(2, fc.record({ k: fc.constant('touch' as const), p, r: idx, page: idx })),
      w(1, fc.record({ k: fc.constant('dontneed' as const), p, r: idx })),
      w(2, fc.record({ k: fc.constant('migrate' as const), p, r: idx, page: idx })),
      w(1, fc.record({ k: fc.constant('reclaim' as const), p, r: idx, page: idx })),
      w(
        1,
        p.map((p) => ({ k: 'iommufdOpen', p }) as const),
      ),
      w(4, fc.record({ k: fc.constant('ioasMap' as const), p, r: idx, slot: fc.nat(DST_SLOTS - 1) })),
      w(2, fc.record({ k: fc.constant('ioasUnmap' as const), m: idx })),
      w(1, fc.constant({ k: 'iommufdClose' } as const)),
      w(
        1,
        p.map((p) => ({ k: 'vfioOpen', p }) as const),
      ),
      w(4, fc.record({ k: fc.constant('vfioMap' as const), p, r: idx, slot: fc.nat(DST_SLOTS - 1) })),
      w(2, fc.record({ k: fc.constant('vfioUnmap' as const), m: idx })),
      w(1, fc.constant({ k: 'vfioClose' } as const)),
      w(2, fc.record({ k: fc.constant('svaBind' as const), p, dev: fc.nat(1) })),
      w(1, fc.record({ k: fc.constant('svaUnbind' as const), b: idx })),
      w(
        14,
        fc.record({
          k: fc.constant('dma' as const),
          dev: fc.nat(3),
          write: fc.boolean(),
          target: fc.constantFrom('mapped' as const, 'mapped' as const, 'random' as const),
          i: fc.nat(0xffff),
          off: fc.nat(4095),
          len: fc.integer({ min: 1, max: 64 }),
        }),
      ),
      w(
        1,
        p.map((p) => ({ k: 'exit', p }) as const),
      ),
      w(2, fc.constant({ k: 'settle' } as const)),
    ),
  ];
}

/**
 * The scenario arbitrary: 0 to `2 * steps` commands (`steps` on average).
 * @param steps - average commands per scenario
 * @param replayPath - fast-check's replay path of the commands (replaying a counterexample)
 * @returns `fc.commands` over every operation
 */
export function scenarioArbitrary(
  steps: number,
  replayPath?: string,
): fc.Arbitrary<Iterable<fc.Command<DstModel, DstWorld>>> {
  return fc.commands(
    opArbitraries().map((a) => a.map((op) => new DstCommand(op))),
    replayPath === undefined
      ? { maxCommands: 2 * steps, size: 'max' }
      : { maxCommands: 2 * steps, size: 'max', replayPath },
  );
}

/**
 * The commands' replay path fast-check prints in a counterexample (which commands ran).
 * @param commands - the counterexample's command list
 * @returns the replay path, or `undefined` when the list does not carry one
 */
export function commandsReplayPath(commands: unknown): string | undefined {
  return /replayPath="([^"]*)"/.exec(String(commands))?.[1];
}
