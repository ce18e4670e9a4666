/**
 * What each reliability mode reports: the fail_nth harness (injection points per flow), the uAPI
 * fuzzer (calls and errnos per ioctl), and the deterministic simulation (seeds, failures with their
 * reproduction). The CLI prints them; CI fails on any problem.
 */

/** One uAPI flow run under fail_nth. */
export interface FailNthFlowReport {
  /** Flow name (`iommufd: IOAS_MAP with a mock domain`). */
  readonly name: string;
  /** The file the flow drives. */
  readonly file: 'iommufd' | 'vfio' | 'ioasid';
  /** Injection points the flow passes when nothing fails (each was made to fail once). */
  readonly points: number;
  /** How many of those points each site contributed (`mm.alloc_pages` → 3). */
  readonly sites: Readonly<Record<string, number>>;
  /** Errnos the flow returned when a point failed, by name (`ENOMEM` → 9). */
  readonly errnos: Readonly<Record<string, number>>;
}

/** The fail_nth harness over every flow. */
export interface FailNthReport {
  /** One entry per flow. */
  readonly flows: readonly FailNthFlowReport[];
  /** Violations: a failure that threw something other than an ErrnoError, left a trace, or crashed. */
  readonly problems: readonly string[];
  /** Host wall time in milliseconds. */
  readonly wallMs: number;
}

/** Calls of one ioctl in a fuzzing run. */
export interface FuzzIoctlReport {
  /** Calls made. */
  readonly calls: number;
  /** Calls that returned success. */
  readonly ok: number;
  /** Failed calls by errno name. */
  readonly errnos: Readonly<Record<string, number>>;
}

/** A fuzzing run. */
export interface FuzzReport {
  /** The seed. */
  readonly seed: number;
  /** ioctl calls made in all. */
  readonly calls: number;
  /** Per ioctl (`iommufd IOMMU_IOAS_MAP`, `vfio VFIO_IOMMU_MAP_DMA`, `ioasid IOASID_ALLOC`…). */
  readonly byIoctl: Readonly<Record<string, FuzzIoctlReport>>;
  /** Invariant checks made. */
  readonly checks: number;
  /** Violations: a non-errno exception, a broken invariant (with the call that preceded it). */
  readonly problems: readonly string[];
  /** Host wall time in milliseconds. */
  readonly wallMs: number;
}

/** One failing scenario of the deterministic simulation. */
export interface DstFailure {
  /** The seed that fails. */
  readonly seed: number;
  /** One line that replays it (`pnpm simtest dst --seed 1234 --path …`). */
  readonly repro: string;
  /** The shrunk scenario, one step per line, and the violated invariant last. */
  readonly trace: readonly string[];
}

/** A deterministic-simulation run. */
export interface DstReport {
  /** Seeds run. */
  readonly seeds: number;
  /** Steps executed over all seeds. */
  readonly steps: number;
  /** Invariant checks made. */
  readonly checks: number;
  /** Failing seeds (empty when all held). */
  readonly failures: readonly DstFailure[];
  /** Host wall time in milliseconds. */
  readonly wallMs: number;
}
