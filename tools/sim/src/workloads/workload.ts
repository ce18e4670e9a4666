/**
 * The workload contract: a named flow through the public APIs of the stack, run on one machine,
 * with parameters a workload file can set, verifying its own data.
 */

import type { SimMachine } from '../machine/machine.js';
import type { Recorder } from '../metrics/recorder.js';
import type { Rng } from './rng.js';

/** A workload parameter value (what a workload file can write). */
export type WorkloadParam = number | string | boolean;

/** A workload's parameters after defaults are applied. */
export type WorkloadParams = Readonly<Record<string, WorkloadParam>>;

/**
 * JSON Schema (draft 2020-12 subset) of one parameter: `type` is `integer`, `number`, `string` or
 * `boolean`, with `minimum` / `maximum` / `enum` where they apply, a `default` and a `description`.
 */
export interface WorkloadParamSchema {
  /** JSON type. */
  readonly type: 'integer' | 'number' | 'string' | 'boolean';
  /** What the parameter means, with its unit. */
  readonly description: string;
  /** Value used when a file does not set it. */
  readonly default: WorkloadParam;
  /** Inclusive lower bound (numbers). */
  readonly minimum?: number;
  /** Inclusive upper bound (numbers). */
  readonly maximum?: number;
  /** Allowed values (strings). */
  readonly enum?: readonly string[];
}

/** What a running workload gets. */
export interface WorkloadContext {
  /** The machine, freshly built for this run. */
  readonly machine: SimMachine;
  /** Seeded random numbers (the run's `--seed` and the workload's position). */
  readonly rng: Rng;
  /** Where figures, timeline marks, IOVA-space changes and data checks go. */
  readonly rec: Recorder;
  /** Parameters, defaults applied. */
  readonly params: WorkloadParams;
}

/** A workload. */
export interface Workload {
  /** Name on the command line and in workload files (`vfio-passthrough`…). */
  readonly name: string;
  /** One line: what it does. */
  readonly description: string;
  /** Its parameters. */
  readonly params: Readonly<Record<string, WorkloadParamSchema>>;
  /**
   * Whether the machine has what the workload needs.
   * @param machine - the machine
   * @param params - parameters, defaults applied
   * @returns `null` when it can run, else a one-line reason (`needs a PCI endpoint with PRI`)
   */
  supports(machine: SimMachine, params: WorkloadParams): string | null;
  /**
   * Run the flow. Verifies the data it moves with {@link Recorder.verify} and throws on anything
   * unexpected (a DMA fault it did not plan, an ioctl errno, a data mismatch).
   * @param ctx - see {@link WorkloadContext}
   */
  run(ctx: WorkloadContext): void;
}

/**
 * Apply a workload's defaults to the given parameters.
 * @param w - the workload
 * @param given - parameters from a file or the caller
 * @returns every parameter of the workload with a value
 */
export function withDefaults(
  w: Workload,
  given: Readonly<Record<string, WorkloadParam>> = {},
): WorkloadParams {
  const out: Record<string, WorkloadParam> = {};
  for (const [k, s] of Object.entries(w.params)) out[k] = given[k] ?? s.default;
  return out;
}

/**
 * A parameter as a number.
 * @param p - parameters
 * @param key - parameter name
 * @returns its value
 * @throws Error when it is not a number (a workload bug: the schema validated the file)
 */
export function numParam(p: WorkloadParams, key: string): number {
  const v = p[key];
  if (typeof v !== 'number') throw new Error(`workload parameter ${key} is not a number`);
  return v;
}

/**
 * A parameter as a string.
 * @param p - parameters
 * @param key - parameter name
 * @returns its value
 * @throws Error when it is not a string
 */
export function strParam(p: WorkloadParams, key: string): string {
  const v = p[key];
  if (typeof v !== 'string') throw new Error(`workload parameter ${key} is not a string`);
  return v;
}

/**
 * A parameter as a boolean.
 * @param p - parameters
 * @param key - parameter name
 * @returns its value
 * @throws Error when it is not a boolean
 */
export function boolParam(p: WorkloadParams, key: string): boolean {
  const v = p[key];
  if (typeof v !== 'boolean') throw new Error(`workload parameter ${key} is not a boolean`);
  return v;
}
