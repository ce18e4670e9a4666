/**
 * Workload files: a custom workload written as YAML or JSON, made of built-in workloads run in
 * order on one machine.
 *
 * ```yaml
 * name: nic-and-nvme                 # required, [a-z0-9-]+ (at most 64), names the run in tables
 * description: Two flows on one machine   # optional, one line
 * steps:                             # required, 1 to 64 steps, run in order on the same machine
 *   - workload: vfio-passthrough     # a built-in workload name
 *     params:                        # optional; checked against that workload's parameters
 *       device: nic1
 *       packets: 128
 *   - workload: dma-api
 *     params: { device: nvme0, ios: 64 }
 * ```
 *
 * The same document in JSON is accepted too. The format is chosen by the file name (`.json`,
 * `.yaml`, `.yml`), else by the content (a text starting with `{` or `[` is JSON). Every problem is
 * reported as one {@link WorkloadFileError} whose message is one line naming the file, the line and
 * column, and the field: `flows.yaml:7:16: steps[1].params.packets: must be <= 4096`.
 */

import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { Document, Node } from 'yaml';
import { isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { CompositeStep, CompositeWorkload } from './composite.js';
import { compositeWorkload } from './composite.js';
import { JsonSyntaxError, parseJsonWithPositions } from './json-with-positions.js';
import type { Workload, WorkloadParam } from './workload.js';
import { workloadFileSchema } from './workload-file-schema.js';

/** A workload file could not be read: bad syntax, or content the schema rejects. */
export class WorkloadFileError extends Error {
  /**
   * @param fileName - the file name as given (used as the message's prefix)
   * @param line - 1-based line of the problem
   * @param column - 1-based column of the problem (UTF-16 code units)
   * @param path - the field at fault (`steps[1].params.packets`), or `null` for the whole document
   *   or a syntax error
   * @param detail - one line: what is wrong (`must be <= 4096`)
   */
  constructor(
    readonly fileName: string,
    readonly line: number,
    readonly column: number,
    readonly path: string | null,
    readonly detail: string,
  ) {
    super(`${fileName}:${line}:${column}: ${path === null ? '' : `${path}: `}${oneLine(detail)}`);
    this.name = 'WorkloadFileError';
  }
}

/** The syntax of a workload file. */
export type WorkloadFileFormat = 'json' | 'yaml';

/**
 * Decide whether a workload file is JSON or YAML.
 * @param text - its content
 * @param fileName - its name (`.json` means JSON; `.yaml` and `.yml` mean YAML; case ignored)
 * @returns the format; for any other name, `json` when the first non-blank character is `{` or `[`,
 *   else `yaml`
 */
export function detectWorkloadFileFormat(text: string, fileName: string): WorkloadFileFormat {
  const lower = fileName.toLowerCase();
  if (lower.endsWith('.json')) return 'json';
  if (lower.endsWith('.yaml') || lower.endsWith('.yml')) return 'yaml';
  const first = text.replace(/^\uFEFF/, '').trimStart()[0];
  return first === '{' || first === '[' ? 'json' : 'yaml';
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

/** Where things are in the parsed text: offsets by JSON Pointer segments. */
interface SourcePositions {
  /** Offset where the value at `segs` starts, or `undefined` when there is no such value. */
  value(segs: readonly string[]): number | undefined;
  /** Offset where the key of the value at `segs` starts, or `undefined`. */
  key(segs: readonly string[]): number | undefined;
}

interface Parsed {
  readonly data: unknown;
  readonly positions: SourcePositions;
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const at = Math.max(0, Math.min(offset, text.length));
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < at; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  const bom = line === 1 && text.charCodeAt(0) === 0xfeff && at > 0 ? 1 : 0;
  return { line, column: at - lineStart + 1 - bom };
}

function parseJson(
  text: string,
  fail: (offset: number, path: string | null, detail: string) => never,
): Parsed {
  let parsed: ReturnType<typeof parseJsonWithPositions>;
  try {
    parsed = parseJsonWithPositions(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) return fail(e.offset, null, `not valid JSON: ${e.message}`);
    throw e;
  }
  const ptr = (segs: readonly string[]): string =>
    segs.map((s) => `/${s.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
  return {
    data: parsed.value,
    positions: {
      value: (segs) => parsed.valueAt.get(ptr(segs)),
      key: (segs) => parsed.keyAt.get(ptr(segs)),
    },
  };
}

function yamlKeyString(key: unknown): string {
  if (isScalar(key)) return String(key.value);
  return String(key);
}

function yamlStart(node: unknown): number | undefined {
  if (node !== null && typeof node === 'object' && 'range' in node) {
    const r = (node as Node).range;
    if (r !== undefined && r !== null) return r[0];
  }
  return undefined;
}

function yamlLookup(doc: Document, segs: readonly string[]): { node: unknown; key: unknown } | undefined {
  let node: unknown = doc.contents;
  let key: unknown;
  for (const seg of segs) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => yamlKeyString(p.key) === seg);
      if (pair === undefined) return undefined;
      key = pair.key;
      node = pair.value;
    } else if (isSeq(node)) {
      node = node.items[Number(seg)];
      key = undefined;
      if (node === undefined) return undefined;
    } else {
      return undefined;
    }
  }
  return { node, key };
}

function parseYaml(
  text: string,
  fail: (offset: number, path: string | null, detail: string) => never,
): Parsed {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err !== undefined) return fail(err.pos[0], null, `not valid YAML: ${err.message}`);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return fail(0, null, `not valid YAML: ${e instanceof Error ? e.message : String(e)}`);
  }
  return {
    data,
    positions: {
      value(segs) {
        const found = yamlLookup(doc, segs);
        if (found === undefined) return undefined;
        return yamlStart(found.node) ?? yamlStart(found.key);
      },
      key(segs) {
        const found = yamlLookup(doc, segs);
        return found === undefined ? undefined : yamlStart(found.key);
      },
    },
  };
}

const schemaCache = new WeakMap<readonly Workload[], ValidateFunction>();

function validator(workloads: readonly Workload[]): ValidateFunction {
  let v = schemaCache.get(workloads);
  if (v === undefined) {
    const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true });
    v = ajv.compile(workloadFileSchema(workloads));
    schemaCache.set(workloads, v);
  }
  return v;
}

function segments(instancePath: string): string[] {
  if (instancePath === '') return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/**
 * A field path as people write it.
 * @param segs - JSON Pointer segments of the field
 * @param data - the document (to tell array indexes from keys)
 * @returns `steps[1].params.packets`, or `null` for the document itself
 */
function fieldPath(segs: readonly string[], data: unknown): string | null {
  if (segs.length === 0) return null;
  let out = '';
  let here: unknown = data;
  for (const s of segs) {
    if (Array.isArray(here)) out += `[${s}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
    here = here !== null && typeof here === 'object' ? (here as Record<string, unknown>)[s] : undefined;
  }
  return out;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  const s = JSON.stringify(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

const COMBINATORS = new Set(['if', 'then', 'else', 'oneOf', 'anyOf', 'allOf', 'not', '$ref']);

/** Errors that are about a child of the instance (a missing or unexpected key). */
function aboutChild(e: ErrorObject): boolean {
  return e.keyword === 'required' || e.keyword === 'additionalProperties';
}

interface Located {
  readonly error: ErrorObject;
  readonly segs: string[];
  readonly offset: number;
}

/** The most useful error: not a combinator failure; the deepest; then the first in the text. */
function bestError(errors: readonly Located[]): Located | undefined {
  const specific = errors.filter((e) => !COMBINATORS.has(e.error.keyword));
  const pool = specific.length > 0 ? specific : errors;
  const depth = (e: Located): number => e.segs.length + (aboutChild(e.error) ? 1 : 0);
  let best: Located | undefined;
  for (const e of pool) {
    if (best === undefined || depth(e) > depth(best) || (depth(e) === depth(best) && e.offset < best.offset))
      best = e;
  }
  return best;
}

function isWorkloadField(segs: readonly string[]): boolean {
  return segs.length === 3 && segs[0] === 'steps' && segs[2] === 'workload';
}

function allowedKeys(e: ErrorObject): string[] {
  const ps: unknown = e.parentSchema;
  if (ps !== null && typeof ps === 'object' && 'properties' in ps) {
    const props: unknown = ps.properties;
    if (props !== null && typeof props === 'object') return Object.keys(props);
  }
  return [];
}

function explain(
  e: ErrorObject,
  segs: readonly string[],
  data: unknown,
  workloads: readonly Workload[],
): string {
  const p = e.params as Record<string, unknown>;
  const got = (): string => describe(e.data);
  switch (e.keyword) {
    case 'enum':
    case 'not':
      if (isWorkloadField(segs)) {
        const known = workloads.map((w) => w.name).join(', ');
        return `unknown workload ${describe(e.data)} (known: ${known === '' ? 'none' : known})`;
      }
      return `must be one of ${((p['allowedValues'] as unknown[] | undefined) ?? []).map((v) => JSON.stringify(v)).join(', ')}, got ${got()}`;
    case 'type':
      return `must be ${String(p['type'])}, got ${got()}`;
    case 'required':
      return `missing required key ${JSON.stringify(p['missingProperty'])}`;
    case 'additionalProperties': {
      const keys = allowedKeys(e);
      const key = JSON.stringify(p['additionalProperty']);
      const inParams = segs.length === 3 && segs[0] === 'steps' && segs[2] === 'params';
      if (inParams) {
        const step = (data as { steps: Array<{ workload: string }> }).steps[Number(segs[1])];
        const takes = keys.length === 0 ? 'takes no parameters' : `takes ${keys.join(', ')}`;
        return `unknown parameter ${key} (${step?.workload ?? 'the workload'} ${takes})`;
      }
      return `unknown key ${key} (allowed: ${keys.join(', ')})`;
    }
    case 'minItems':
      return `must have at least ${String(p['limit'])} ${segs.join('/') === 'steps' ? 'step' : 'entry'}${p['limit'] === 1 ? '' : 's'}`;
    case 'maxItems':
      return `must have at most ${String(p['limit'])} ${segs.join('/') === 'steps' ? 'steps' : 'entries'}, got ${
        Array.isArray(e.data) ? e.data.length : '?'
      }`;
    case 'pattern':
      return `must match /${String(p['pattern'])}/, got ${got()}`;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `${e.message ?? 'out of range'}, got ${got()}`;
    default:
      return e.message ?? `fails ${e.keyword}`;
  }
}

/** A workload file, as the schema guarantees it after validation. */
interface WorkloadFileDocument {
  readonly name: string;
  readonly description?: string;
  readonly steps: ReadonlyArray<{
    readonly workload: string;
    readonly params?: Record<string, WorkloadParam>;
  }>;
}

/**
 * Read a workload file: parse it (JSON or YAML, see {@link detectWorkloadFileFormat}), validate it
 * against {@link workloadFileSchema} of the given workloads, and build the composite workload it
 * describes (see {@link compositeWorkload}: its name is the file's `name`, its description the
 * file's `description` or a list of its steps).
 *
 * When the schema reports several problems, the error names the most specific one (a generic
 * `if`/`then` failure is never chosen; the deepest field wins; ties go to the one earliest in the
 * text). Its position is the start of the offending value, or of the offending key for an unknown
 * key, or of the object for a missing key.
 * @param text - the file's content
 * @param fileName - its name, used to pick the format and to prefix error messages
 * @param workloads - the workloads a step may name (normally `builtinWorkloads()`)
 * @returns the composite workload
 * @throws WorkloadFileError with a one-line message `FILE:LINE:COL: [FIELD: ]WHAT`
 */
export function parseWorkloadFile(
  text: string,
  fileName: string,
  workloads: readonly Workload[],
): CompositeWorkload {
  const fail = (offset: number, path: string | null, detail: string): never => {
    const { line, column } = lineColumn(text, offset);
    throw new WorkloadFileError(fileName, line, column, path, detail);
  };
  const format = detectWorkloadFileFormat(text, fileName);
  const { data, positions } = format === 'json' ? parseJson(text, fail) : parseYaml(text, fail);

  const validate = validator(workloads);
  if (!validate(data)) {
    const located = (validate.errors ?? []).map((error): Located => {
      const segs = segments(error.instancePath);
      let offset: number | undefined;
      if (error.keyword === 'additionalProperties') {
        offset = positions.key([
          ...segs,
          String((error.params as { additionalProperty: string }).additionalProperty),
        ]);
      }
      for (let n = segs.length; offset === undefined && n >= 0; n--)
        offset = positions.value(segs.slice(0, n));
      return { error, segs, offset: offset ?? 0 };
    });
    const best = bestError(located);
    if (best === undefined) return fail(0, null, 'does not match the workload file schema');
    return fail(best.offset, fieldPath(best.segs, data), explain(best.error, best.segs, data, workloads));
  }

  const doc = data as WorkloadFileDocument;
  const byName = new Map(workloads.map((w) => [w.name, w]));
  const steps: CompositeStep[] = doc.steps.map((s) => ({
    workload: byName.get(s.workload) as Workload,
    params: s.params ?? {},
  }));
  const description = doc.description ?? `${fileName}: ${doc.steps.map((s) => s.workload).join(', then ')}`;
  return compositeWorkload(doc.name, oneLine(description), steps);
}
