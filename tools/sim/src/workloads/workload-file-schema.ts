/**
 * The JSON Schema of a workload file, generated from the workloads a run knows so that each step's
 * `params` is checked against the parameters of the workload the step names.
 */

import type { Workload, WorkloadParamSchema } from './workload.js';

/** Most steps a workload file may have. */
export const MAX_WORKLOAD_FILE_STEPS = 64;

/** What a workload file's `name` must look like (lower-case letters, digits and dashes). */
export const WORKLOAD_FILE_NAME_PATTERN = '^[a-z0-9-]+$';

function paramSchema(p: WorkloadParamSchema): Record<string, unknown> {
  const s: Record<string, unknown> = { type: p.type, description: p.description, default: p.default };
  if (p.minimum !== undefined) s['minimum'] = p.minimum;
  if (p.maximum !== undefined) s['maximum'] = p.maximum;
  if (p.enum !== undefined) s['enum'] = [...p.enum];
  return s;
}

/** A JSON Pointer token as it appears in a URI fragment. */
function pointerToken(key: string): string {
  return encodeURIComponent(key.replaceAll('~', '~0').replaceAll('/', '~1'));
}

/**
 * The `$defs` key holding the parameter schema of workload `name`.
 * @param name - workload name
 * @returns the key (`params-dma-api`)
 */
export function paramsDefName(name: string): string {
  return `params-${name}`;
}

/**
 * The JSON Schema (draft 2020-12) of a workload file:
 *
 * - the top level is an object with `name` (required, `[a-z0-9-]+`, at most 64 characters),
 *   `description` (optional string) and `steps` (required array of 1 to
 *   {@link MAX_WORKLOAD_FILE_STEPS} steps), no other key;
 * - a step is an object with `workload` (required, one of the given workloads' names) and
 *   `params` (optional object), no other key;
 * - one `if`/`then` per workload: when a step's `workload` is that name, its `params` must match
 *   `$defs["params-NAME"]`, an object with exactly that workload's parameters (type, minimum,
 *   maximum, enum, default and description copied from its {@link WorkloadParamSchema}) and no
 *   other key.
 * @param workloads - the workloads a file may name (normally `builtinWorkloads()`)
 * @returns the schema, a plain JSON value (fit for `JSON.stringify` and Ajv 2020)
 */
export function workloadFileSchema(workloads: readonly Workload[]): object {
  const names = workloads.map((w) => w.name);
  const defs: Record<string, unknown> = {};
  for (const w of workloads) {
    const properties: Record<string, unknown> = {};
    for (const [k, p] of Object.entries(w.params)) properties[k] = paramSchema(p);
    defs[paramsDefName(w.name)] = {
      type: 'object',
      description: `Parameters of the ${w.name} workload: ${w.description}`,
      properties,
      additionalProperties: false,
    };
  }
  const stepRules = workloads.map((w) => ({
    if: { type: 'object', properties: { workload: { const: w.name } }, required: ['workload'] },
    // biome-ignore lint/suspicious/noThenProperty: `then` is the JSON Schema keyword, not a thenable
    then: {
      type: 'object',
      properties: { params: { $ref: `#/$defs/${pointerToken(paramsDefName(w.name))}` } },
    },
  }));
  defs['step'] = {
    type: 'object',
    description: 'One step: a built-in workload and its parameters.',
    properties: {
      workload:
        names.length > 0
          ? { type: 'string', description: 'A built-in workload name.', enum: names }
          : { type: 'string', description: 'A built-in workload name (none is known).', not: {} },
      params: { type: 'object', description: "The workload's parameters; unset ones take their default." },
    },
    required: ['workload'],
    additionalProperties: false,
    ...(stepRules.length > 0 ? { allOf: stepRules } : {}),
  };
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://iommu-ts.dev/schemas/iommu-sim/workload-file.json',
    title: 'iommu-sim workload file',
    description: 'Built-in workloads run in order on one machine.',
    type: 'object',
    properties: {
      name: {
        type: 'string',
        description: 'Name of the workload in tables and reports.',
        pattern: WORKLOAD_FILE_NAME_PATTERN,
        minLength: 1,
        maxLength: 64,
      },
      description: { type: 'string', description: 'One line: what the file runs.' },
      steps: {
        type: 'array',
        description: 'The steps, run in order on the same machine.',
        minItems: 1,
        maxItems: MAX_WORKLOAD_FILE_STEPS,
        items: { $ref: '#/$defs/step' },
      },
    },
    required: ['name', 'steps'],
    additionalProperties: false,
    $defs: defs,
  };
}
