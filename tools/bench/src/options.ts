// Command-line options of the bench suites, parsed with Node's own util.parseArgs: every suite
// takes `--name N` positive-integer options with defaults, plus optional boolean flags.
import { parseArgs } from 'node:util';

/**
 * Parse `--name N` options (positive integers) and `--flag` booleans.
 * @param args - the suite's arguments, after the suite name
 * @param numbers - option name (camelCase in the result, kebab-case on the command line) → default
 * @param flags - boolean flag names (camelCase → kebab-case), default false
 * @returns the defaults overridden by the arguments
 * @throws Error naming the options when an option is unknown or not a positive integer
 */
export function parseBenchOptions<N extends string, F extends string = never>(
  args: string[],
  numbers: Record<N, number>,
  flags: readonly F[] = [],
): Record<N, number> & Record<F, boolean> {
  const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const usage = [
    ...Object.keys(numbers).map((n) => `--${kebab(n)} N`),
    ...flags.map((f) => `--${kebab(f)}`),
  ].join(', ');
  let values: Record<string, unknown>;
  try {
    values = parseArgs({
      args,
      strict: true,
      options: Object.fromEntries([
        ...Object.keys(numbers).map((n) => [kebab(n), { type: 'string' as const }]),
        ...flags.map((f) => [kebab(f), { type: 'boolean' as const }]),
      ]),
    }).values;
  } catch (error) {
    throw new Error(`${error instanceof Error ? error.message : error}; options: ${usage}`);
  }
  const result: Record<string, number | boolean> = {};
  for (const [name, fallback] of Object.entries<number>(numbers)) {
    const raw = values[kebab(name)];
    const value = raw === undefined ? fallback : Number(raw);
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new Error(`--${kebab(name)} needs a positive integer; options: ${usage}`);
    }
    result[name] = value;
  }
  for (const flag of flags) result[flag] = values[kebab(flag)] === true;
  return result as Record<N, number> & Record<F, boolean>;
}
