import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { Recorder } from '../metrics/recorder.js';
import { Rng } from './rng.js';
import type { Workload, WorkloadParams } from './workload.js';
import { fakeMachine } from './workload.test-helpers.js';
import { detectWorkloadFileFormat, parseWorkloadFile, WorkloadFileError } from './workload-file.js';
import { MAX_WORKLOAD_FILE_STEPS, workloadFileSchema } from './workload-file-schema.js';

const runs: Array<{ name: string; params: WorkloadParams }> = [];

function fake(name: string, params: Workload['params'], reason: string | null = null): Workload {
  return {
    name,
    description: `fake ${name}`,
    params,
    supports: () => reason,
    run: (ctx) => {
      runs.push({ name, params: ctx.params });
      ctx.rec.step('go');
    },
  };
}

const WORKLOADS: readonly Workload[] = [
  fake('vfio-passthrough', {
    device: { type: 'string', description: 'device', default: 'nic' },
    packets: { type: 'integer', description: 'frames', default: 256, minimum: 1, maximum: 4096 },
    mode: { type: 'string', description: 'uAPI', default: 'container', enum: ['container', 'iommufd'] },
    verify: { type: 'boolean', description: 'check data', default: true },
  }),
  fake('dma-api', {
    device: { type: 'string', description: 'device', default: 'nvme' },
    ios: { type: 'integer', description: 'I/Os', default: 512, minimum: 1, maximum: 100_000 },
    ratio: { type: 'number', description: 'read share', default: 0.5, minimum: 0, maximum: 1 },
  }),
  fake('noop', {}, 'needs nothing it has'),
];

const YAML_OK = [
  '# two flows', // 1
  'name: nic-and-nvme', // 2
  'description: Two flows on one machine', // 3
  'steps:', // 4
  '  - workload: vfio-passthrough', // 5
  '    params:', // 6
  '      device: nic1', // 7
  '      packets: 128', // 8
  '  - workload: dma-api', // 9
  '    params: { device: nvme0, ios: 64 }', // 10
  '',
].join('\n');

const JSON_OK = `{
  "name": "nic-and-nvme",
  "description": "Two flows on one machine",
  "steps": [
    { "workload": "vfio-passthrough", "params": { "device": "nic1", "packets": 128 } },
    { "workload": "dma-api", "params": { "device": "nvme0", "ios": 64 } }
  ]
}
`;

function errorOf(
  text: string,
  fileName: string,
  workloads: readonly Workload[] = WORKLOADS,
): WorkloadFileError {
  try {
    parseWorkloadFile(text, fileName, workloads);
  } catch (e) {
    expect(e).toBeInstanceOf(WorkloadFileError);
    const err = e as WorkloadFileError;
    expect(err.message).not.toMatch(/\n/);
    expect(err.message).not.toMatch(/must match "then" schema|must match a schema in/);
    return err;
  }
  throw new Error('expected a WorkloadFileError');
}

const msg = (text: string, fileName = 'flows.yaml', workloads: readonly Workload[] = WORKLOADS): string =>
  errorOf(text, fileName, workloads).message;

/** YAML_OK with line `n` (1-based) replaced. */
function yamlWith(n: number, line: string): string {
  const lines = YAML_OK.split('\n');
  lines[n - 1] = line;
  return lines.join('\n');
}

describe('parseWorkloadFile: valid files', () => {
  it('reads YAML into a composite that runs its steps in order with defaults', () => {
    const w = parseWorkloadFile(YAML_OK, 'flows.yaml', WORKLOADS);
    expect(w.name).toBe('nic-and-nvme');
    expect(w.description).toBe('Two flows on one machine');
    expect(w.params).toEqual({});
    expect(w.steps.map((s) => [s.workload.name, s.params])).toEqual([
      ['vfio-passthrough', { device: 'nic1', packets: 128 }],
      ['dma-api', { device: 'nvme0', ios: 64 }],
    ]);
    expect(w.steps[0]?.workload).toBe(WORKLOADS[0]);
    runs.length = 0;
    const machine = fakeMachine();
    const rec = new Recorder(machine);
    w.run({ machine, rec, rng: new Rng(3), params: {} });
    expect(runs).toEqual([
      { name: 'vfio-passthrough', params: { device: 'nic1', packets: 128, mode: 'container', verify: true } },
      { name: 'dma-api', params: { device: 'nvme0', ios: 64, ratio: 0.5 } },
    ]);
    expect(rec.timeline().map((e) => e.label)).toEqual(['1: go', '2: go']);
    expect(w.supports(machine, {})).toBeNull();
  });

  it('reads the same document as JSON', () => {
    const j = parseWorkloadFile(JSON_OK, 'flows.json', WORKLOADS);
    const y = parseWorkloadFile(YAML_OK, 'flows.yaml', WORKLOADS);
    expect(j.name).toBe(y.name);
    expect(j.description).toBe(y.description);
    expect(j.steps.map((s) => [s.workload, s.params])).toEqual(y.steps.map((s) => [s.workload, s.params]));
  });

  it('accepts every parameter type, YAML flow style and aliases, and describes a file without description', () => {
    const text = [
      'name: all-types',
      'steps:',
      '  - workload: vfio-passthrough',
      '    params: &vf { mode: iommufd, verify: false, packets: 4096 }',
      '  - workload: dma-api',
      '    params: { ratio: 0.25, ios: 1 }',
      '  - workload: vfio-passthrough',
      '    params: *vf',
      '  - workload: noop',
    ].join('\n');
    const w = parseWorkloadFile(text, 'x.yml', WORKLOADS);
    expect(w.description).toBe('x.yml: vfio-passthrough, then dma-api, then vfio-passthrough, then noop');
    expect(w.steps.map((s) => s.params)).toEqual([
      { mode: 'iommufd', verify: false, packets: 4096 },
      { ratio: 0.25, ios: 1 },
      { mode: 'iommufd', verify: false, packets: 4096 },
      {},
    ]);
    expect(w.supports(fakeMachine(), {})).toBe('step 4 (noop): needs nothing it has');
  });

  it('takes the format from the extension, else from the content', () => {
    expect(detectWorkloadFileFormat('name: x', 'a.JSON')).toBe('json');
    expect(detectWorkloadFileFormat('{}', 'a.yaml')).toBe('yaml');
    expect(detectWorkloadFileFormat('{}', 'a.YML')).toBe('yaml');
    expect(detectWorkloadFileFormat('\uFEFF \n [', 'flows')).toBe('json');
    expect(detectWorkloadFileFormat(' {"a": 1}', 'flows.txt')).toBe('json');
    expect(detectWorkloadFileFormat('name: x', 'flows.txt')).toBe('yaml');
    expect(parseWorkloadFile(JSON_OK, 'flows', WORKLOADS).name).toBe('nic-and-nvme');
    expect(parseWorkloadFile(YAML_OK, 'flows', WORKLOADS).name).toBe('nic-and-nvme');
    // JSON is YAML too: a .yaml file holding JSON reads fine.
    expect(parseWorkloadFile(JSON_OK, 'flows.yaml', WORKLOADS).steps.length).toBe(2);
    // A byte-order mark is skipped.
    expect(parseWorkloadFile(`\uFEFF${JSON_OK}`, 'flows.json', WORKLOADS).name).toBe('nic-and-nvme');
  });

  it('accepts the maximum number of steps', () => {
    const steps = Array.from({ length: MAX_WORKLOAD_FILE_STEPS }, () => ({ workload: 'noop' }));
    expect(parseWorkloadFile(JSON.stringify({ name: 'many', steps }), 'm.json', WORKLOADS).steps.length).toBe(
      64,
    );
  });
});

describe('parseWorkloadFile: schema errors name the line, column and field', () => {
  it('unknown workload', () => {
    expect(msg(yamlWith(5, '  - workload: vfio'))).toBe(
      'flows.yaml:5:15: steps[0].workload: unknown workload "vfio" (known: vfio-passthrough, dma-api, noop)',
    );
    const e = errorOf(yamlWith(9, '  - workload: dma'), 'flows.yaml');
    expect([e.fileName, e.line, e.column, e.path]).toEqual(['flows.yaml', 9, 15, 'steps[1].workload']);
    expect(e.detail).toBe('unknown workload "dma" (known: vfio-passthrough, dma-api, noop)');
    expect(msg('{"name": "x", "steps": [{"workload": "x"}]}', 'f.json', [])).toBe(
      'f.json:1:38: steps[0].workload: unknown workload "x" (known: none)',
    );
  });

  it('a number out of range, in block and flow style', () => {
    expect(msg(yamlWith(8, '      packets: 5000'))).toBe(
      'flows.yaml:8:16: steps[0].params.packets: must be <= 4096, got 5000',
    );
    expect(msg(yamlWith(10, '    params: { device: nvme0, ios: 0 }'))).toBe(
      'flows.yaml:10:35: steps[1].params.ios: must be >= 1, got 0',
    );
    expect(msg(yamlWith(10, '    params: { ratio: 1.5 }'))).toBe(
      'flows.yaml:10:22: steps[1].params.ratio: must be <= 1, got 1.5',
    );
  });

  it('an unknown key in params points at the key', () => {
    expect(msg(yamlWith(8, '      pakets: 128'))).toBe(
      'flows.yaml:8:7: steps[0].params: unknown parameter "pakets" (vfio-passthrough takes device, packets, mode, verify)',
    );
    expect(msg('{"name":"x","steps":[{"workload":"noop","params":{"a/b~":1}}]}', 'f.json')).toBe(
      'f.json:1:51: steps[0].params: unknown parameter "a/b~" (noop takes no parameters)',
    );
  });

  it('wrong types', () => {
    expect(msg(yamlWith(8, '      packets: many'))).toBe(
      'flows.yaml:8:16: steps[0].params.packets: must be integer, got "many"',
    );
    expect(msg(yamlWith(8, '      packets: 1.5'))).toBe(
      'flows.yaml:8:16: steps[0].params.packets: must be integer, got 1.5',
    );
    expect(msg(yamlWith(7, '      device: 3'))).toBe(
      'flows.yaml:7:15: steps[0].params.device: must be string, got 3',
    );
    expect(msg(yamlWith(7, '      verify: "yes"'))).toBe(
      'flows.yaml:7:15: steps[0].params.verify: must be boolean, got "yes"',
    );
    expect(msg(yamlWith(7, '      mode: vfio'))).toBe(
      'flows.yaml:7:13: steps[0].params.mode: must be one of "container", "iommufd", got "vfio"',
    );
    expect(msg(yamlWith(6, '    params: [1, 2]').replace(/ {6}(device|packets).*\n/g, ''))).toBe(
      'flows.yaml:6:13: steps[0].params: must be object, got an array',
    );
    expect(msg('{"name": "x", "steps": {"workload": "noop"}}', 'f.json')).toBe(
      'f.json:1:24: steps: must be array, got an object',
    );
    expect(msg('[1]', 'f.json')).toBe('f.json:1:1: must be object, got an array');
    expect(msg('', 'empty.yaml')).toBe('empty.yaml:1:1: must be object, got null');
  });

  it('empty, missing or too many steps', () => {
    expect(msg('name: x\nsteps: []\n')).toBe('flows.yaml:2:8: steps: must have at least 1 step');
    expect(msg('name: x\nsteps:\n')).toBe('flows.yaml:2:7: steps: must be array, got null');
    expect(msg('\nname: x\n')).toBe('flows.yaml:2:1: missing required key "steps"');
    const steps = Array.from({ length: 65 }, () => ({ workload: 'noop' }));
    expect(msg(JSON.stringify({ name: 'many', steps }), 'm.json')).toBe(
      'm.json:1:24: steps: must have at most 64 steps, got 65',
    );
  });

  it('name, unknown keys and missing workload', () => {
    expect(msg(yamlWith(2, 'name: Nic And NVMe'))).toBe(
      'flows.yaml:2:7: name: must match /^[a-z0-9-]+$/, got "Nic And NVMe"',
    );
    // The document (its top-level map) starts on line 3, after the comments.
    expect(msg(yamlWith(2, '#'))).toBe('flows.yaml:3:1: missing required key "name"');
    expect(msg(yamlWith(3, 'descripton: typo'))).toBe(
      'flows.yaml:3:1: unknown key "descripton" (allowed: name, description, steps)',
    );
    expect(msg(yamlWith(5, '  - workloads: dma-api'))).toBe(
      'flows.yaml:5:5: steps[0]: missing required key "workload"',
    );
    expect(
      msg(yamlWith(9, '  - { workload: dma-api, param: {} }').replace(/.*params: \{ device: nvme0.*\n/, '')),
    ).toBe('flows.yaml:9:26: steps[1]: unknown key "param" (allowed: workload, params)');
    expect(msg(yamlWith(9, '  - dma-api').replace(/.*params: \{ device: nvme0.*\n/, ''))).toBe(
      'flows.yaml:9:5: steps[1]: must be object, got "dma-api"',
    );
  });

  it('picks the deepest problem, then the first in the text', () => {
    // A bad name (depth 1) and a bad parameter (depth 4): the parameter is named.
    const two = yamlWith(2, 'name: Bad Name').replace('packets: 128', 'packets: 0');
    expect(msg(two)).toBe('flows.yaml:8:16: steps[0].params.packets: must be >= 1, got 0');
    // Two bad parameters in different steps: the first one in the text.
    const both = yamlWith(8, '      packets: 0').replace('ios: 64', 'ios: -1');
    expect(msg(both)).toBe('flows.yaml:8:16: steps[0].params.packets: must be >= 1, got 0');
    // Same depth, within one flow map: again the first in the text.
    expect(msg(yamlWith(10, '    params: { ratio: 2, ios: 0 }'))).toBe(
      'flows.yaml:10:22: steps[1].params.ratio: must be <= 1, got 2',
    );
  });

  it('JSON files get the same fields and positions', () => {
    const bad = JSON_OK.replace('"packets": 128', '"packets": 99999');
    expect(msg(bad, 'flows.json')).toBe(
      'flows.json:5:80: steps[0].params.packets: must be <= 4096, got 99999',
    );
    expect(msg(JSON_OK.replace('"dma-api"', '"dma"'), 'flows.json')).toBe(
      'flows.json:6:19: steps[1].workload: unknown workload "dma" (known: vfio-passthrough, dma-api, noop)',
    );
    expect(msg(JSON_OK.replace('"ios"', '"io"'), 'flows.json')).toBe(
      'flows.json:6:61: steps[1].params: unknown parameter "io" (dma-api takes device, ios, ratio)',
    );
  });
});

describe('parseWorkloadFile: syntax errors', () => {
  it('JSON syntax errors carry their line and column', () => {
    expect(msg('{\n  "name": "x",\n  "steps": [ { "workload": } ]\n}', 'f.json')).toBe(
      'f.json:3:28: not valid JSON: unexpected "}" (expected a value)',
    );
    expect(msg('{\n  "name": "x",\n  "steps": [', 'f.json')).toBe(
      'f.json:3:13: not valid JSON: unexpected end of input (expected a value)',
    );
    expect(msg('{"name": "x",}', 'f.json')).toBe(
      'f.json:1:14: not valid JSON: unexpected "}" (expected a key in double quotes)',
    );
    expect(msg('{"name": "x"} {}', 'f.json')).toBe(
      'f.json:1:15: not valid JSON: unexpected "{" after the end of the value',
    );
    expect(msg('{"name": "x", "name": "y"}', 'f.json')).toBe(
      'f.json:1:15: not valid JSON: duplicate key "name"',
    );
    expect(msg(YAML_OK, 'flows.json')).toBe(
      'flows.json:1:1: not valid JSON: unexpected "#" (expected a value)',
    );
    const e = errorOf('{"name": "x"', 'f.json');
    expect([e.line, e.column, e.path]).toEqual([1, 13, null]);
  });

  it('YAML syntax errors carry their line', () => {
    const dup = errorOf(yamlWith(3, 'name: again'), 'flows.yaml');
    expect(dup.message).toMatch(/^flows\.yaml:3:1: not valid YAML: .*unique/);
    const unclosed = errorOf(yamlWith(10, '    params: { device: nvme0, ios: 64'), 'flows.yaml');
    expect(unclosed.message).toMatch(/^flows\.yaml:1[01]:\d+: not valid YAML: /);
    const tab = errorOf(yamlWith(7, '\tdevice: nic1'), 'flows.yaml');
    expect(tab.line).toBe(7);
    expect(tab.message).toMatch(/^flows\.yaml:7:\d+: not valid YAML: /);
    expect(errorOf('name: a\n---\nname: b\n', 'two.yaml').message).toMatch(
      /^two\.yaml:2:1: not valid YAML: /,
    );
  });
});

describe('workloadFileSchema', () => {
  it('is a draft 2020-12 schema with one params definition per workload, no unknown keys', () => {
    const s = workloadFileSchema(WORKLOADS) as Record<string, unknown>;
    expect(s['$schema']).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    const defs = s['$defs'] as Record<string, Record<string, unknown>>;
    expect(Object.keys(defs).sort()).toEqual([
      'params-dma-api',
      'params-noop',
      'params-vfio-passthrough',
      'step',
    ]);
    expect(defs['params-dma-api']).toMatchObject({
      type: 'object',
      additionalProperties: false,
      properties: {
        device: { type: 'string', default: 'nvme' },
        ios: { type: 'integer', minimum: 1, maximum: 100_000, default: 512 },
        ratio: { type: 'number', minimum: 0, maximum: 1 },
      },
    });
    const vfioProps = defs['params-vfio-passthrough']?.['properties'] as Record<string, unknown>;
    expect(vfioProps['mode']).toMatchObject({
      enum: ['container', 'iommufd'],
    });
    expect(defs['step']?.['allOf']).toHaveLength(3);
  });

  it('compiles in strict Ajv and checks params per workload', () => {
    const warnings: unknown[] = [];
    const logger = {
      log: () => {},
      warn: (...a: unknown[]) => warnings.push(a),
      error: (...a: unknown[]) => warnings.push(a),
    };
    const validate = new Ajv2020({ strict: true, logger }).compile(workloadFileSchema(WORKLOADS));
    expect(warnings).toEqual([]);
    const file = (workload: string, params: unknown) => ({ name: 'x', steps: [{ workload, params }] });
    expect(validate(file('dma-api', { ios: 5 }))).toBe(true);
    // `packets` belongs to vfio-passthrough, not dma-api.
    expect(validate(file('dma-api', { packets: 5 }))).toBe(false);
    expect(validate(file('vfio-passthrough', { packets: 5 }))).toBe(true);
    expect(validate(file('noop', {}))).toBe(true);
    expect(validate(file('noop', { x: 1 }))).toBe(false);
    expect(validate({ name: 'x', steps: [{ workload: 'noop' }] })).toBe(true);
    expect(
      new Ajv2020({ strict: true, logger }).compile(workloadFileSchema([]))({
        name: 'x',
        steps: [{ workload: 'noop' }],
      }),
    ).toBe(false);
  });
});
