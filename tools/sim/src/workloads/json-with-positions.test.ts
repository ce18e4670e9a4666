import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonSyntaxError, parseJsonWithPositions, pointerToken } from './json-with-positions.js';

function syntaxError(text: string): [number, string] {
  try {
    parseJsonWithPositions(text);
  } catch (e) {
    expect(e).toBeInstanceOf(JsonSyntaxError);
    return [(e as JsonSyntaxError).offset, (e as JsonSyntaxError).message];
  }
  throw new Error('expected a JsonSyntaxError');
}

describe('parseJsonWithPositions', () => {
  it('gives the same value as JSON.parse for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = JSON.stringify(v, null, 1);
        expect(parseJsonWithPositions(text).value).toEqual(JSON.parse(text));
      }),
      { numRuns: 200 },
    );
  });

  it('records where each value and key starts, by JSON Pointer', () => {
    const text = '{ "a": [1, {"b/c": true}],\n  "~": null }';
    const p = parseJsonWithPositions(text);
    expect(p.value).toEqual({ a: [1, { 'b/c': true }], '~': null });
    expect([...p.valueAt]).toEqual([
      ['', 0],
      ['/a', 7],
      ['/a/0', 8],
      ['/a/1', 11],
      ['/a/1/b~1c', 19],
      ['/~0', 34],
    ]);
    expect([...p.keyAt]).toEqual([
      ['/a', 2],
      ['/a/1/b~1c', 12],
      ['/~0', 29],
    ]);
    expect(pointerToken('a/b~c')).toBe('a~1b~0c');
  });

  it('keeps __proto__ as data, decodes escapes, skips a byte-order mark', () => {
    const v = parseJsonWithPositions('\uFEFF{"__proto__": 1, "s": "\\u0041\\n\\"", "n": -1.5e2}')
      .value as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(['__proto__', 's', 'n']);
    expect(v['s']).toBe('A\n"');
    expect(v['n']).toBe(-150);
  });

  it('reports the offset of the first syntax error', () => {
    expect(syntaxError('')).toEqual([0, 'unexpected end of input (expected a value)']);
    expect(syntaxError('[1,]')).toEqual([3, 'unexpected "]" (expected a value)']);
    expect(syntaxError('[1 2]')).toEqual([3, 'unexpected "2" (expected "," or "]")']);
    expect(syntaxError('{"a" 1}')).toEqual([5, 'unexpected "1" (expected ":")']);
    expect(syntaxError('{a: 1}')).toEqual([1, 'unexpected "a" (expected a key in double quotes)']);
    expect(syntaxError('{"a": 1 "b": 2}')).toEqual([8, 'unexpected "\\"" (expected "," or "}")']);
    expect(syntaxError('"abc')).toEqual([0, 'unterminated string']);
    expect(syntaxError('"a\nb"')).toEqual([2, 'control character in a string (escape it)']);
    expect(syntaxError('"\\x"')).toEqual([1, 'bad escape "x"']);
    expect(syntaxError('"\\u12g4"')).toEqual([1, 'bad \\u escape (expected 4 hex digits)']);
    expect(syntaxError('01')).toEqual([1, 'unexpected "1" after the end of the value']);
    expect(syntaxError('-')).toEqual([0, 'unexpected "-" (expected a number)']);
    expect(syntaxError('tru')).toEqual([0, 'unexpected "t" (expected a value)']);
    expect(syntaxError('{"a":1,"a":2}')).toEqual([7, 'duplicate key "a"']);
    expect(syntaxError('['.repeat(600))[1]).toBe('nested more than 512 levels deep');
  });
});
