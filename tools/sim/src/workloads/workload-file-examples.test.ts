import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Workload } from './workload.js';
import { parseWorkloadFile } from './workload-file.js';

const dir = fileURLToPath(new URL('../../examples/', import.meta.url));
const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f));

// The built-ins are checked for real once all four exist; until then this file is skipped.
const builtins: readonly Workload[] | null = await import('./registry.js')
  .then((m: { builtinWorkloads: () => readonly Workload[] }) => m.builtinWorkloads())
  .catch(() => null);

describe.skipIf(builtins === null)('tools/sim/examples', () => {
  it('has at least one YAML and one JSON example', () => {
    expect(files.some((f) => f.endsWith('.json'))).toBe(true);
    expect(files.some((f) => /\.ya?ml$/.test(f))).toBe(true);
  });

  it.each(files)('%s validates against the built-in workloads', (f) => {
    const w = parseWorkloadFile(readFileSync(`${dir}${f}`, 'utf8'), f, builtins ?? []);
    expect(`${w.name}${f.slice(f.lastIndexOf('.'))}`.replace('.yml', '.yaml')).toBe(
      f.replace('.yml', '.yaml'),
    );
    expect(w.steps.length).toBeGreaterThan(0);
  });
});
