import { describe, expect, it } from 'vitest';
import type { RunResult } from '../metrics/results.js';
import { compactTally, hex, humanBytes } from './format.js';
import { formatSummary, formatTopology } from './summary-table.js';
import { fixtureRun } from './test-fixtures.js';

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes
const ANSI = /\u001b\[[0-9;]*m/g;

describe('format helpers', () => {
  it('formats hex, sizes and tallies', () => {
    expect(hex(0xfed90000n)).toBe('0xfed90000');
    expect(hex(24)).toBe('0x18');
    expect(humanBytes(512)).toBe('512 B');
    expect(humanBytes(4096)).toBe('4 KiB');
    expect(humanBytes(1536 * 1024)).toBe('1.5 MiB');
    expect(humanBytes(2n ** 31n)).toBe('2 GiB');
    expect(humanBytes(3_375_104)).toBe('3.2 MiB');
    expect(compactTally({})).toBe('-');
    expect(compactTally({ b: 1, a: 1, c: 5, z: 0 })).toBe('c:5 a:1 b:1');
    expect(compactTally({ b: 1, a: 1, c: 5, d: 2 }, 2)).toBe('c:5 d:2 +2 more');
  });
});

describe('formatSummary', () => {
  const text = formatSummary(fixtureRun);
  const lines = text.split('\n');

  it('prints one table per platform with the figures of each workload', () => {
    expect(lines[0]).toBe('default-x86 (Intel VT-d, built-in DMAR): 3 passed, 0 failed, 1 skipped');
    expect(text).toContain('default-arm (Arm SMMUv3, built-in IORT): 3 passed, 1 failed, 0 skipped');
    const vfio = lines.find((l) => l.includes('vfio-passthrough') && l.includes('passed'));
    expect(vfio).toBeDefined();
    const cells = (vfio as string).split('│').map((c) => c.trim());
    // workload, status, DMA requests, bytes, hit rate, walks, faults, PRQ, invalidations, peak pinned, wall ms
    expect(cells.slice(1, 12)).toEqual([
      'vfio-passthrough',
      'passed',
      '2112',
      '3.2 MiB',
      '94.7%',
      '111',
      'DMA_PTE_NO_READ/WRITE:2',
      '0/0',
      'iotlb:7 wait:7 dev-tlb:4 +1',
      '1048576',
      '412.6',
    ]);
    expect(text).toContain('16/16');
    expect(text).toContain('F_TRANSLATION:24');
    expect(text).toContain('seed 42, node v20.19.0 on linux (2 CPUs)');
  });

  it('shows why a workload was skipped and how one failed', () => {
    const skipped = lines.find((l) => l.includes('sva-accelerator') && l.includes('skipped'));
    expect(skipped).toContain('needs an endpoint with PASID and PRI');
    const failedAt = lines.findIndex((l) => l.includes('dma-api') && l.includes('FAILED'));
    expect(failedAt).toBeGreaterThan(0);
    expect(lines.slice(failedAt, failedAt + 4).join('\n')).toContain(
      '↳ data check failed: tx buffer <7> & "header": byte 12 is 0x0, expected 0x5a',
    );
  });

  it('fits 160 columns and has no colour unless asked', () => {
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(160);
    expect(text).not.toMatch(ANSI);
    const coloured = formatSummary(fixtureRun, { color: true });
    expect(coloured).toMatch(ANSI);
    expect(coloured.replace(ANSI, '')).toBe(text);
  });

  it('handles a run with no results', () => {
    const empty: RunResult = { ...fixtureRun, platforms: [], results: [] };
    expect(formatSummary(empty)).toBe('seed 42, node v20.19.0 on linux (2 CPUs)\n');
  });
});

describe('formatTopology', () => {
  const [x86, arm] = fixtureRun.platforms;

  it('prints source, counts, units, reserved regions, devices and notes', () => {
    const t = formatTopology(x86 as NonNullable<typeof x86>);
    const lines = t.split('\n');
    expect(lines[0]).toBe('default-x86: Intel VT-d platform');
    expect(lines[1]).toBe('source: DMAR builtin, oem "INTEL  EDK2    ", revision 1');
    expect(lines[2]).toBe('counts: units 1, scopes 5, reserved regions 1, atsr 1, satc 0, rhsa 0, andd 0');
    expect(t).toContain('unit dmar0 @ 0xfed90000\n  includePciAll=true segment=0 haw=39');
    expect(t).toContain('  scope IOAPIC 00:1e.1 id 2');
    expect(t).toContain('  RMRR 0x7c000000-0x7c7fffff (8 MiB)  00:02.0 <gfx>');
    const accel = lines.find((l) => l.includes('accel0'));
    expect(accel?.split('│').map((c) => c.trim())).toEqual([
      '',
      'accel0',
      '00:06.0 accelerator (PASID PRI ATS)',
      'dmar0',
      '0x30',
      'ATS',
      'PASID',
      'PRI',
      '-',
      'added',
      '',
    ]);
    expect(t).toContain('notes:\n  - IOAPIC 00:1e.1 and HPET 00:1e.6 are not DMA masters');
  });

  it('marks a unit that did not come up and devices without a unit', () => {
    const t = formatTopology(arm as NonNullable<typeof arm>);
    expect(t).toContain('unit smmu1 @ 0x2b500000  [DOWN: SMMU_IDR0: no stage-1 or stage-2 support]');
    const eth = t.split('\n').find((l) => l.includes('eth1'));
    expect(
      eth
        ?.split('│')
        .map((c) => c.trim())
        .slice(3, 5),
    ).toEqual(['(none)', '0x20']);
    expect(t).toContain(
      'counts: units 2, scopes 4, reserved regions 1, rootComplexes 1, namedComponents 2, rmr 1, its 1',
    );
  });
});
