/**
 * Fault injection in the manner of Linux's `fail_nth` (Documentation/fault-injection/
 * fault-injection.rst, lib/fault-inject.c): every allocation and every fallible step of the stack
 * asks {@link shouldFail} first, and a test can make the nth such call (counted from the moment it
 * arms the injector) fail once. A harness arms 1, 2, 3, … around one uAPI flow until the flow
 * completes without the armed call being reached; the number of calls the flow made is then its
 * number of injection points, and every one of them has been made to fail exactly once.
 *
 * The model is single-threaded, so one injector serves the whole process (Linux keeps the counter
 * per task). When nothing is armed or recorded a call costs one boolean test.
 */

/** One injection point passed while the injector was armed or recording. */
export interface FaultInjectionCall {
  /** 1-based position among the calls since {@link FaultInjector.arm} / {@link FaultInjector.record}. */
  readonly nth: number;
  /** Name of the point (`mm.alloc_pages`, `iommufd.object_alloc`…). */
  readonly site: string;
}

/** The injector's state (see {@link faultInjector}). */
export class FaultInjector {
  #active = false;
  #armed = 0;
  #calls = 0;
  #fired: FaultInjectionCall | null = null;
  #log: FaultInjectionCall[] | null = null;

  /**
   * Fail the `nth` call of {@link shouldFail} from now on (1-based), once; counting restarts.
   * @param nth - which call fails; 0 only counts (nothing fails)
   * @param log - also keep the list of points passed (for reports)
   * @throws RangeError when `nth` is not a non-negative integer
   */
  arm(nth: number, log = false): void {
    if (!Number.isInteger(nth) || nth < 0) throw new RangeError(`fail-nth wants an integer >= 0, got ${nth}`);
    this.#active = true;
    this.#armed = nth;
    this.#calls = 0;
    this.#fired = null;
    this.#log = log ? [] : null;
  }

  /**
   * Count (and list) the points passed without failing any: `arm(0, true)`.
   */
  record(): void {
    this.arm(0, true);
  }

  /** Stop counting; later calls of {@link shouldFail} cost one test and never fail. */
  disarm(): void {
    this.#active = false;
    this.#armed = 0;
  }

  /** Whether the injector counts calls (armed or recording). */
  get active(): boolean {
    return this.#active;
  }

  /** Calls of {@link shouldFail} since the last arm. */
  get calls(): number {
    return this.#calls;
  }

  /** The call that was made to fail since the last arm, or `null` (the flow never reached it). */
  get fired(): FaultInjectionCall | null {
    return this.#fired;
  }

  /** The points passed since the last arm, when it asked for a log; else `null`. */
  get log(): readonly FaultInjectionCall[] | null {
    return this.#log;
  }

  /**
   * The check an injection point makes (`should_fail()`).
   * @param site - the point's name
   * @returns `true` exactly once: on the armed call
   */
  shouldFail(site: string): boolean {
    if (!this.#active) return false;
    const nth = ++this.#calls;
    this.#log?.push({ nth, site });
    if (nth !== this.#armed) return false;
    this.#fired = { nth, site };
    return true;
  }
}

/** The process-wide injector (Linux: the current task's `fail_nth`). */
export const faultInjector: FaultInjector = new FaultInjector();

/**
 * Ask the process-wide injector whether this step must fail now. Call it where Linux may fail: an
 * allocation (`kmalloc`, `xa_alloc`, a page-table page) or another fallible step, and fail the way
 * Linux would there (usually `ENOMEM`) when it answers `true`.
 * @param site - the point's name, `<package>.<what>` (`iommufd.area_alloc`)
 * @returns `true` when the injector is armed for this very call
 */
export function shouldFail(site: string): boolean {
  return faultInjector.active && faultInjector.shouldFail(site);
}
