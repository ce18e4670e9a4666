/**
 * What a fail_nth flow is: a named recipe that builds its state from scratch and then makes the
 * uAPI call(s) under test, with the means to snapshot the observable state and to tear it all down.
 */

/** The file a flow drives (as in the report). */
export type FailNthFile = 'iommufd' | 'vfio' | 'ioasid';

/** One uAPI call under test. */
export interface FailNthStep {
  /** What the step does (`IOMMU_IOAS_MAP`). */
  readonly label: string;
  /** Make the call; throws what the ioctl throws. */
  readonly fn: () => void;
}

/** One fresh instance of a flow: its state, the call under test, and the checks. */
export interface FailNthRun {
  /**
   * Serialise everything a failed call must leave unchanged: object IDs and types, IOVA ranges and
   * areas, translations of the probed IOVAs in every domain, pin counts, locked_vm / pinned_vm,
   * allocated pages. Equal strings mean equal state.
   */
  snapshot(): string;
  /**
   * The uAPI call(s) under test, in order, each with a label. A failed step must leave the state
   * as it was just before that step (the steps before it stay done).
   */
  readonly steps: readonly FailNthStep[];
  /** Close every file and end every process of the run (nothing of the run may stay allocated). */
  teardown(): void;
  /** Pages allocated in the run's RAM right now. */
  allocatedPages(): number;
  /** Allocated pages before the run built anything (after the machine and its drivers). */
  readonly baselinePages: number;
  /** Problems found by the environment itself (driver warnings), read after the call and at teardown. */
  warnings(): readonly string[];
}

/** A named flow. */
export interface FailNthFlow {
  /** Report name (`iommufd: IOAS_MAP with a mock domain`). */
  readonly name: string;
  /** The file under test. */
  readonly file: FailNthFile;
  /** Build a fresh instance (nothing is armed while this runs). */
  setup(): FailNthRun;
}
