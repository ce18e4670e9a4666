/**
 * The JSON Schema (draft 2020-12) of the `--json` output written by output/json.ts, and a
 * validator built on ajv that turns its errors into `path: message` lines.
 */

import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';

const count = { type: 'integer', minimum: 0 } as const;
const hexString = { type: 'string', pattern: '^0x[0-9a-f]+$' } as const;
const tally = { type: 'object', additionalProperties: count } as const;
const params = { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } } as const;
const role = { enum: ['nic', 'nvme', 'accel', 'stall-accel', 'device'] } as const;

const figures = {
  type: 'object',
  additionalProperties: false,
  required: [
    'atcHitRate',
    'atcHits',
    'atcInvalidations',
    'atcMisses',
    'atsRequests',
    'bytes',
    'bytesRead',
    'bytesVerified',
    'bytesWritten',
    'checks',
    'dmaFaults',
    'dmaRequests',
    'hwFaults',
    'invalidations',
    'iotlbHitRate',
    'iotlbHits',
    'iotlbMisses',
    'pageRequests',
    'pageResponses',
    'pageWalks',
    'peakPinnedPages',
    'stalls',
    'virtualNs',
    'wallMs',
  ],
  properties: {
    atcHitRate: { type: ['number', 'null'], minimum: 0, maximum: 1 },
    atcHits: count,
    atcInvalidations: count,
    atcMisses: count,
    atsRequests: count,
    bytes: count,
    bytesRead: count,
    bytesVerified: count,
    bytesWritten: count,
    checks: count,
    dmaFaults: tally,
    dmaRequests: count,
    hwFaults: tally,
    invalidations: tally,
    iotlbHitRate: { type: ['number', 'null'], minimum: 0, maximum: 1 },
    iotlbHits: count,
    iotlbMisses: count,
    pageRequests: count,
    pageResponses: count,
    pageWalks: count,
    peakPinnedPages: count,
    stalls: count,
    virtualNs: { type: 'number', minimum: 0 },
    wallMs: { type: 'number', minimum: 0 },
  },
} as const;

const timelineEntry = {
  type: 'object',
  additionalProperties: false,
  required: [
    'atNs',
    'dmaRequests',
    'faults',
    'index',
    'invalidations',
    'label',
    'pageRequests',
    'pinnedPages',
  ],
  properties: {
    atNs: { type: 'number', minimum: 0 },
    dmaRequests: count,
    faults: tally,
    index: count,
    invalidations: tally,
    label: { type: 'string' },
    pageRequests: count,
    pinnedPages: count,
  },
} as const;

const iovaRange = {
  type: 'object',
  additionalProperties: false,
  required: ['iova', 'label', 'length', 'mappedAt', 'unmappedAt'],
  properties: {
    iova: hexString,
    label: { type: 'string' },
    length: hexString,
    mappedAt: count,
    unmappedAt: { anyOf: [count, { type: 'null' }] },
  },
} as const;

const iovaSpace = {
  type: 'object',
  additionalProperties: false,
  required: ['devices', 'kind', 'name', 'ranges'],
  properties: {
    devices: { type: 'array', items: { type: 'string' } },
    kind: { enum: ['ioas', 'container', 'dma-domain', 'sva'] },
    name: { type: 'string' },
    ranges: { type: 'array', items: iovaRange },
  },
} as const;

const workloadResult = {
  type: 'object',
  additionalProperties: false,
  required: ['figures', 'message', 'platform', 'spaces', 'status', 'timeline', 'workload'],
  properties: {
    figures,
    message: { type: ['string', 'null'] },
    platform: { type: 'string' },
    spaces: { type: 'array', items: iovaSpace },
    status: { enum: ['passed', 'failed', 'skipped'] },
    timeline: { type: 'array', items: timelineEntry },
    workload: { type: 'string' },
  },
  if: { properties: { status: { const: 'passed' } } },
  // biome-ignore lint/suspicious/noThenProperty: JSON Schema keyword
  then: { properties: { message: { type: 'null' } } },
  else: { properties: { message: { type: 'string' } } },
} as const;

const topologyUnit = {
  type: 'object',
  additionalProperties: false,
  required: ['base', 'error', 'name', 'params', 'scopes'],
  properties: {
    base: hexString,
    error: { type: ['string', 'null'] },
    name: { type: 'string' },
    params,
    scopes: { type: 'array', items: { type: 'string' } },
  },
} as const;

const reservedRegion = {
  type: 'object',
  additionalProperties: false,
  required: ['devices', 'end', 'kind', 'start'],
  properties: {
    devices: { type: 'array', items: { type: 'string' } },
    end: hexString,
    kind: { type: 'string' },
    start: hexString,
  },
} as const;

const topologyDevice = {
  type: 'object',
  additionalProperties: false,
  required: ['ats', 'fromFirmware', 'ids', 'label', 'name', 'pasid', 'pri', 'role', 'stall', 'unit'],
  properties: {
    ats: { type: 'boolean' },
    fromFirmware: { type: 'boolean' },
    ids: { type: 'array', items: count },
    label: { type: 'string' },
    name: { type: 'string' },
    pasid: { type: 'boolean' },
    pri: { type: 'boolean' },
    role,
    stall: { type: 'boolean' },
    unit: { type: ['string', 'null'] },
  },
} as const;

const topology = {
  type: 'object',
  additionalProperties: false,
  required: ['counts', 'devices', 'kind', 'name', 'notes', 'reserved', 'source', 'units'],
  properties: {
    counts: {
      type: 'object',
      required: ['reservedRegions', 'scopes', 'units'],
      properties: { reservedRegions: count, scopes: count, units: count },
      additionalProperties: count,
    },
    devices: { type: 'array', items: topologyDevice },
    kind: { enum: ['vtd', 'smmuv3'] },
    name: { type: 'string' },
    notes: { type: 'array', items: { type: 'string' } },
    reserved: { type: 'array', items: reservedRegion },
    source: {
      type: 'object',
      additionalProperties: false,
      required: ['file', 'form', 'format', 'oem', 'revision'],
      properties: {
        file: { type: ['string', 'null'] },
        form: { enum: ['binary', 'acpidump', 'iasl', 'builtin'] },
        format: { enum: ['dmar', 'iort', 'dtb'] },
        oem: { type: ['string', 'null'] },
        revision: { anyOf: [count, { type: 'null' }] },
      },
    },
    units: { type: 'array', items: topologyUnit },
  },
} as const;

/**
 * JSON Schema (draft 2020-12) of the text `toJson` (output/json.ts) writes for a run: the `RunResult` of
 * metrics/results.ts with bigints as `0x` hex strings. Fixed shapes forbid extra members;
 * tallies (faults, invalidations by type) and unit parameters are open maps.
 */
export const runResultSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://iommu-ts.dev/schemas/iommu-sim-run-v1.json',
  title: 'iommu-sim run result',
  type: 'object',
  additionalProperties: false,
  required: ['host', 'platforms', 'results', 'seed', 'version'],
  properties: {
    host: {
      type: 'object',
      additionalProperties: false,
      required: ['cpus', 'node', 'platform'],
      properties: { cpus: count, node: { type: 'string' }, platform: { type: 'string' } },
    },
    platforms: { type: 'array', items: topology },
    results: { type: 'array', items: workloadResult },
    seed: { type: 'integer' },
    version: { const: 1 },
  },
} as const;

let validator: ValidateFunction | null = null;

function formatError(e: ErrorObject): string {
  const path = e.instancePath === '' ? '/' : e.instancePath;
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${path}: unexpected property "${String(p['additionalProperty'])}"`;
    case 'required':
      return `${path}: missing required property "${String(p['missingProperty'])}"`;
    case 'enum':
      return `${path}: ${e.message ?? 'invalid'} (${(p['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')})`;
    default:
      return `${path}: ${e.message ?? 'invalid'}`;
  }
}

/**
 * Validate parsed `--json` output against {@link runResultSchema}.
 * @param value - the parsed JSON (`JSON.parse` of the file)
 * @returns `[]` when valid, else one `path: message` line per error (JSON Pointer paths, `/` for
 *   the root), e.g. `/results/0/figures/dmaRequests: must be integer`
 */
export function validateRunJson(value: unknown): string[] {
  if (validator === null) {
    const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
    validator = ajv.compile(runResultSchema);
  }
  if (validator(value)) return [];
  const lines = (validator.errors ?? []).filter((e) => e.keyword !== 'if').map(formatError);
  return [...new Set(lines)];
}
