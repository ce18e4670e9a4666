/**
 * `--json` output: a {@link RunResult} as JSON text. Bigints (addresses, lengths) become `"0x…"`
 * hex strings, object keys are sorted so two runs with the same seed give the same text apart
 * from wall times, and the text is indented by two spaces. output/json-schema.ts describes it.
 */

import type { RunResult } from '../metrics/results.js';
import { hex } from './format.js';

/** A JSON value as {@link toJsonValue} produces it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Convert a value to plain JSON data: bigints to `0x` hex strings, object keys sorted
 * (code-unit order), `undefined` members dropped, non-finite numbers to `null`.
 * @param value - any value built from objects, arrays, strings, numbers, bigints, booleans, null
 * @returns the JSON data
 * @throws TypeError for functions and symbols
 */
export function toJsonValue(value: unknown): JsonValue {
  if (value === null) return null;
  switch (typeof value) {
    case 'bigint':
      return hex(value);
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'string':
    case 'boolean':
      return value;
    case 'object': {
      if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : toJsonValue(v)));
      const out: { [key: string]: JsonValue } = {};
      const obj = value as Record<string, unknown>;
      for (const key of Object.keys(obj).sort()) {
        const v = obj[key];
        if (v !== undefined) out[key] = toJsonValue(v);
      }
      return out;
    }
    default:
      throw new TypeError(`cannot write a ${typeof value} as JSON`);
  }
}

/**
 * The `--json` text of a run.
 * @param run - the run
 * @returns JSON text (two-space indent, sorted keys, bigints as `"0x…"`), ending with a newline
 */
export function toJson(run: RunResult): string {
  return `${JSON.stringify(toJsonValue(run), null, 2)}\n`;
}
