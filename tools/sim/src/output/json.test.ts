import { describe, expect, it } from 'vitest';
import { toJson, toJsonValue } from './json.js';
import { runResultSchema, validateRunJson } from './json-schema.js';
import { fixtureRun } from './test-fixtures.js';

type Json = Record<string, unknown>;

function parsed(): Json {
  return JSON.parse(toJson(fixtureRun)) as Json;
}

function at(v: unknown, ...path: Array<string | number>): Json {
  let cur = v;
  for (const p of path) cur = (cur as Record<string | number, unknown>)[p];
  return cur as Json;
}

describe('toJson', () => {
  it('writes bigints as hex strings, keys sorted, two-space indent', () => {
    const text = toJson(fixtureRun);
    expect(text.startsWith('{\n  "host": {\n    "cpus": 2,')).toBe(true);
    expect(text.endsWith('}\n')).toBe(true);
    const j = parsed();
    expect(Object.keys(j)).toEqual(['host', 'platforms', 'results', 'seed', 'version']);
    expect(at(j, 'platforms', 0, 'units', 0)['base']).toBe('0xfed90000');
    expect(at(j, 'platforms', 0, 'reserved', 0)).toEqual({
      devices: ['00:02.0 <gfx>'],
      end: '0x7c7fffff',
      kind: 'RMRR',
      start: '0x7c000000',
    });
    const range = at(j, 'results', 1, 'spaces', 0, 'ranges', 0);
    expect(range).toEqual({
      iova: '0x7f0000000000',
      label: 'huge pages (2M)',
      length: '0x40000000',
      mappedAt: 1,
      unmappedAt: 14,
    });
    expect(at(j, 'results', 2)['message']).toMatch(/^needs an endpoint/);
    expect(at(j, 'results', 0, 'figures')['iotlbHitRate']).toBeCloseTo(2001 / 2112, 12);
  });

  it('is stable whatever the insertion order of tallies', () => {
    const a = toJsonValue({ t: { b: 1, a: 2 }, n: 1n });
    const b = toJsonValue({ n: 1n, t: { a: 2, b: 1 } });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(JSON.stringify(a)).toBe('{"n":"0x1","t":{"a":2,"b":1}}');
    expect(toJsonValue({ x: undefined, y: Number.NaN })).toEqual({ y: null });
    expect(() => toJsonValue({ f: () => 0 })).toThrow(TypeError);
  });
});

describe('runResultSchema', () => {
  it('is a draft 2020-12 schema that closes fixed shapes', () => {
    expect(runResultSchema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(runResultSchema.additionalProperties).toBe(false);
  });

  it('accepts the fixture JSON', () => {
    expect(validateRunJson(parsed())).toEqual([]);
  });

  it('names a missing field', () => {
    const j = parsed();
    delete at(j, 'results', 1)['spaces'];
    expect(validateRunJson(j)).toEqual(['/results/1: missing required property "spaces"']);
  });

  it('names a value of the wrong type', () => {
    const j = parsed();
    at(j, 'results', 0, 'figures')['dmaRequests'] = '2112';
    expect(validateRunJson(j)).toEqual(['/results/0/figures/dmaRequests: must be integer']);
    const k = parsed();
    at(k, 'platforms', 1, 'units', 0)['base'] = 725614592;
    expect(validateRunJson(k)).toEqual(['/platforms/1/units/0/base: must be string']);
  });

  it('names an extra field', () => {
    const j = parsed();
    at(j, 'results', 3, 'timeline', 0)['extra'] = 1;
    expect(validateRunJson(j)).toEqual(['/results/3/timeline/0: unexpected property "extra"']);
  });

  it('checks enums, hex strings and the message of a passed result', () => {
    const j = parsed();
    at(j, 'platforms', 0)['kind'] = 'amd-vi';
    at(j, 'results', 0, 'spaces', 0, 'ranges', 0)['iova'] = '0XDEAD';
    at(j, 'results', 0)['message'] = 'ok';
    expect(validateRunJson(j)).toEqual([
      '/platforms/0/kind: must be equal to one of the allowed values ("vtd", "smmuv3")',
      '/results/0/message: must be null',
      '/results/0/spaces/0/ranges/0/iova: must match pattern "^0x[0-9a-f]+$"',
    ]);
    expect(validateRunJson(null)).toEqual(['/: must be object']);
  });
});
