/**
 * A small JSON parser that remembers where every value and key starts, so a schema error on a JSON
 * workload file can name its line and column, and reports the offset of the first syntax error
 * (which `JSON.parse`'s messages do not always carry).
 */

/** A JSON syntax error at a character offset of the text. */
export class JsonSyntaxError extends Error {
  /**
   * @param offset - offset (UTF-16 code units) of the offending character, or the text length at
   *   an unexpected end
   * @param message - one line: what was wrong
   */
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
    this.name = 'JsonSyntaxError';
  }
}

/** A parsed JSON text with the position of every value and object key. */
export interface JsonWithPositions {
  /** The value, as `JSON.parse` would give it. */
  readonly value: unknown;
  /** Offset where each value starts, by JSON Pointer (`''` for the root, `/steps/0/params`). */
  readonly valueAt: ReadonlyMap<string, number>;
  /** Offset where each object key (its opening quote) starts, by the JSON Pointer of its value. */
  readonly keyAt: ReadonlyMap<string, number>;
}

const MAX_DEPTH = 512;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const ESCAPES = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't']);

/**
 * A JSON Pointer token for a key or index.
 * @param key - object key or array index
 * @returns the escaped token
 */
export function pointerToken(key: string | number): string {
  return String(key).replaceAll('~', '~0').replaceAll('/', '~1');
}

function show(text: string, at: number): string {
  const ch = text[at];
  return ch === undefined ? 'end of input' : JSON.stringify(ch);
}

/**
 * Parse a JSON text (RFC 8259; a leading byte-order mark is skipped; a duplicate key is an error).
 * @param text - the text
 * @returns the value and where each value and key starts
 * @throws JsonSyntaxError at the first syntax error
 */
export function parseJsonWithPositions(text: string): JsonWithPositions {
  const valueAt = new Map<string, number>();
  const keyAt = new Map<string, number>();
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;

  const ws = (): void => {
    for (;;) {
      const c = text[i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') i++;
      else return;
    }
  };
  const fail = (what: string): never => {
    throw new JsonSyntaxError(i, `unexpected ${show(text, i)}${what === '' ? '' : ` (expected ${what})`}`);
  };

  const str = (): string => {
    const start = i;
    i++;
    for (;;) {
      const c = text[i];
      if (c === undefined) throw new JsonSyntaxError(start, 'unterminated string');
      if (c === '"') break;
      if (c.charCodeAt(0) < 0x20) throw new JsonSyntaxError(i, 'control character in a string (escape it)');
      if (c === '\\') {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
            throw new JsonSyntaxError(i, 'bad \\u escape (expected 4 hex digits)');
          }
          i += 6;
          continue;
        }
        if (e === undefined || !ESCAPES.has(e))
          throw new JsonSyntaxError(i, `bad escape ${show(text, i + 1)}`);
        i += 2;
        continue;
      }
      i++;
    }
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };

  const value = (path: string, depth: number): unknown => {
    if (depth > MAX_DEPTH) throw new JsonSyntaxError(i, `nested more than ${MAX_DEPTH} levels deep`);
    valueAt.set(path, i);
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: Record<string, unknown> = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        if (text[i] !== '"') fail('a key in double quotes');
        const keyStart = i;
        const key = str();
        if (Object.hasOwn(obj, key))
          throw new JsonSyntaxError(keyStart, `duplicate key ${JSON.stringify(key)}`);
        const sub = `${path}/${pointerToken(key)}`;
        keyAt.set(sub, keyStart);
        ws();
        if (text[i] !== ':') fail('":"');
        i++;
        ws();
        // defineProperty: a key named __proto__ is data, as with JSON.parse.
        Object.defineProperty(obj, key, {
          value: value(sub, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
        ws();
        if (text[i] === ',') {
          i++;
          ws();
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail('"," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(`${path}/${arr.length}`, depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          ws();
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail('"," or "]"');
      }
    }
    if (c === '"') return str();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (m === null) return fail('a number');
      i += m[0].length;
      return Number(m[0]);
    }
    for (const [word, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    return fail('a value');
  };

  ws();
  const v = value('', 0);
  ws();
  if (i < text.length) throw new JsonSyntaxError(i, `unexpected ${show(text, i)} after the end of the value`);
  return { value: v, valueAt, keyAt };
}
