import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { inspectPlatform, runPlan } from '../run.js';
import { builtinWorkloads } from '../workloads/registry.js';
import { loadPlatform } from './load.js';

// Real server tables kept in tools/sim/fixtures (see the README there for their origin). The expected
// counts are taken from the iasl text itself, so the check does not rest on the parsers under test.

const fixture = (name: string): string => fileURLToPath(new URL(`../../fixtures/${name}`, import.meta.url));

interface Counts {
  units: number;
  scopes: number;
  reservedRegions: number;
}

/** Counts of an iasl DMAR listing: DRHDs, device scopes of DRHD/RMRR/ATSR/SATC, RMRRs. */
function dmarCountsFromText(text: string): Counts {
  const scoped = new Set([
    'Hardware Unit Definition',
    'Reserved Memory Region',
    'Root Port ATS Capability',
    'SoC Integrated Address Translation Cache',
  ]);
  let current = '';
  const counts = { units: 0, scopes: 0, reservedRegions: 0 };
  for (const line of text.split('\n')) {
    if (/^\s*Raw Table Data:/.test(line)) break;
    const sub = /Subtable Type : [0-9A-F]+ \[([^\]]+)\]/.exec(line);
    if (sub !== null) {
      current = sub[1] ?? '';
      if (current === 'Hardware Unit Definition') counts.units++;
      if (current === 'Reserved Memory Region') counts.reservedRegions++;
      continue;
    }
    if (/\]\s+Device Scope Type : /.test(line) && scoped.has(current)) counts.scopes++;
  }
  return counts;
}

/**
 * Counts of an iasl IORT listing: SMMUv3 nodes, ID mappings of root-complex and named-component nodes
 * whose output reference is an SMMUv3 node, RMR memory-range descriptors.
 */
function iortCountsFromText(text: string): Counts {
  const FIELD = /^\[([0-9A-F]+)h \d+\s+[0-9A-F]+h?\]\s*(.*?)\s*:\s*([0-9A-F]+)\b/;
  const nodes: { offset: number; type: number; outputs: number[]; rmrDescriptors: number }[] = [];
  for (const line of text.split('\n')) {
    if (/^\s*Raw Table Data:/.test(line)) break;
    const m = FIELD.exec(line);
    if (m === null) continue;
    const [, off = '', name = '', value = ''] = m;
    if (name === 'Type') {
      nodes.push({
        offset: Number.parseInt(off, 16),
        type: Number.parseInt(value, 16),
        outputs: [],
        rmrDescriptors: 0,
      });
      continue;
    }
    const node = nodes.at(-1);
    if (node === undefined) continue;
    if (name === 'Output Reference') node.outputs.push(Number.parseInt(value, 16));
    if (name === 'Length of RMR') node.rmrDescriptors++;
  }
  const smmus = new Set(nodes.filter((n) => n.type === 4).map((n) => n.offset));
  return {
    units: smmus.size,
    scopes: nodes
      .filter((n) => n.type === 1 || n.type === 2)
      .reduce((sum, n) => sum + n.outputs.filter((o) => smmus.has(o)).length, 0),
    reservedRegions: nodes.filter((n) => n.type === 6).reduce((sum, n) => sum + n.rmrDescriptors, 0),
  };
}

const FIXTURES = [
  {
    file: 'dell-poweredge-r820-dmar',
    kind: 'vtd',
    fromText: dmarCountsFromText,
    // What the table holds, read off the listing by hand: guards the text counters above.
    expected: { units: 4, scopes: 26, reservedRegions: 3 },
  },
  {
    file: 'ampere-altra-ava-iort',
    kind: 'smmuv3',
    fromText: iortCountsFromText,
    expected: { units: 6, scopes: 6, reservedRegions: 0 },
  },
] as const;

describe.each(FIXTURES)('real server table $file', ({ file, kind, fromText, expected }) => {
  const dsl = fixture(`${file}.dsl`);
  const text = readFileSync(dsl, 'utf8');

  it('the .bin is the table of the .dsl and both load', () => {
    const fromDsl = loadPlatform(dsl);
    const fromBin = loadPlatform(fixture(`${file}.bin`));
    expect(fromDsl.kind).toBe(kind);
    expect(fromDsl.source.form).toBe('iasl');
    expect(fromBin.source.form).toBe('binary');
    expect(Buffer.from(fromBin.bytes).equals(Buffer.from(fromDsl.bytes))).toBe(true);
    expect(fromDsl.bytes.reduce((a, b) => (a + b) & 0xff, 0)).toBe(0);
  });

  it('inspect reports the counts the listing states', () => {
    const counts = fromText(text);
    expect(counts).toEqual(expected);
    const view = inspectPlatform(loadPlatform(dsl));
    expect({
      units: view.counts.units,
      scopes: view.counts.scopes,
      reservedRegions: view.counts.reservedRegions,
    }).toEqual(counts);
    expect(view.units).toHaveLength(counts.units);
    expect(view.reserved).toHaveLength(counts.reservedRegions);
  });

  it('every built-in workload passes or is skipped with a reason', () => {
    const run = runPlan({
      platforms: [loadPlatform(dsl)],
      workloads: builtinWorkloads().map((workload) => ({ workload, required: false })),
      seed: 1,
    });
    expect(run.results).toHaveLength(builtinWorkloads().length);
    for (const r of run.results) {
      expect({ workload: r.workload, status: r.status, message: r.message }).not.toMatchObject({
        status: 'failed',
      });
      if (r.status === 'skipped') expect(r.message ?? '').not.toBe('');
    }
  });
});
