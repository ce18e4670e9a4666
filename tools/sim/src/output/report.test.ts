import { describe, expect, it } from 'vitest';
import type { IovaRange, RunResult, WorkloadResult } from '../metrics/results.js';
import {
  addressToX,
  BREAK_W,
  iovaMapSvg,
  layoutIovaAxis,
  MAX_SEGMENTS,
  MIN_SEGMENT_W,
} from './iova-map-svg.js';
import { renderReport } from './report.js';
import { fixtureRun } from './test-fixtures.js';
import { timelineSvg } from './timeline-svg.js';
import { topologySvg } from './topology-svg.js';

function range(iova: bigint, length: bigint, unmappedAt: number | null = null): IovaRange {
  return { iova, length, label: `r${iova.toString(16)}`, mappedAt: 0, unmappedAt };
}

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

describe('layoutIovaAxis', () => {
  it('cuts a large gap so a small range far away stays visible', () => {
    const segs = layoutIovaAxis([range(0x10000n, 0x4000n), range(0x7f0000000000n, 1n << 30n)], 0, 900);
    expect(segs.map((s) => [s.start, s.end])).toEqual([
      [0x10000n, 0x14000n],
      [0x7f0000000000n, 0x7f0040000000n],
    ]);
    expect(segs[0]?.width).toBeGreaterThanOrEqual(MIN_SEGMENT_W);
    expect((segs[1]?.x ?? 0) - ((segs[0]?.x ?? 0) + (segs[0]?.width ?? 0))).toBeCloseTo(BREAK_W, 9);
    const total = segs.reduce((a, s) => a + s.width, 0) + BREAK_W;
    expect(total).toBeCloseTo(900, 6);
    // The 16 KiB ring spans its whole segment.
    expect(addressToX(segs, 0x14000n) - addressToX(segs, 0x10000n)).toBeGreaterThanOrEqual(MIN_SEGMENT_W);
  });

  it('keeps near ranges on one linear segment', () => {
    const segs = layoutIovaAxis(
      [range(0n, 0xa0000n), range(0x100000n, 0x7ff00000n), range(1n << 32n, 1n << 31n)],
      10,
      500,
    );
    expect(segs).toHaveLength(1);
    expect(segs[0]).toMatchObject({ start: 0n, end: 0x180000000n, x: 10, width: 500 });
    expect(addressToX(segs, 0xc0000000n)).toBeCloseTo(10 + 250, 6);
  });

  it('merges down to at most MAX_SEGMENTS and stays monotonic', () => {
    const ranges = Array.from({ length: 20 }, (_, i) => range(BigInt(i) << BigInt(12 + 2 * i), 0x1000n));
    const segs = layoutIovaAxis(ranges, 0, 960);
    expect(segs.length).toBeLessThanOrEqual(MAX_SEGMENTS);
    let last = -1;
    for (const r of [...ranges].sort((a, b) => (a.iova < b.iova ? -1 : 1))) {
      const x = addressToX(segs, r.iova);
      expect(x).toBeGreaterThanOrEqual(last);
      last = x;
    }
    expect(layoutIovaAxis([], 0, 100)).toEqual([]);
  });
});

describe('SVG pictures', () => {
  it('draws every range with a tooltip and a break marker between far segments', () => {
    const svg = iovaMapSvg(
      {
        name: 'ioas <1>',
        kind: 'ioas',
        devices: ['nic0'],
        ranges: [range(0x10000n, 0x4000n), range(0x7f0000000000n, 1n << 30n, 1)],
      },
      [
        {
          index: 0,
          label: 'map & go',
          atNs: 0,
          dmaRequests: 0,
          faults: {},
          pageRequests: 0,
          invalidations: {},
          pinnedPages: 0,
        },
      ],
    );
    expect(count(svg, '<g class="range live">')).toBe(1);
    expect(count(svg, '<g class="range gone">')).toBe(1);
    expect(count(svg, '<g class="break">')).toBe(1);
    expect(svg).toContain('ioas &lt;1&gt; (ioas)');
    expect(svg).toContain('mapped at step 0 (map &amp; go)');
    expect(svg).toContain('unmapped at step 1 (end)');
    expect(svg).toContain('>0x7f0000000000<');
    expect(svg).not.toContain('ioas <1>');
  });

  it('stacks faults, page requests and invalidations per step', () => {
    const sva = fixtureRun.results.find(
      (r) => r.platform === 'default-arm' && r.workload === 'sva-accelerator',
    );
    const svg = timelineSvg(sva?.timeline ?? []);
    // step 1: F_TRANSLATION 16 + page requests 16; CMD_PRI_RESP 16 + CMD_SYNC 8
    expect(svg).toContain('step 1: jobs on fresh buffers (PRI)\nF_TRANSLATION: 16');
    expect(svg).toContain('step 1: jobs on fresh buffers (PRI)\npage requests: 16');
    expect(svg).toContain('step 1: jobs on fresh buffers (PRI)\nCMD_PRI_RESP: 16');
    expect(count(svg, '<rect x=') - count(svg, 'class="step"')).toBeGreaterThan(0);
    expect(count(svg, 'class="step"')).toBe(5);
    expect(timelineSvg([])).toContain('no steps recorded');
  });

  it('draws units, devices, links and badges', () => {
    const arm = fixtureRun.platforms[1];
    if (arm === undefined) throw new Error('fixture');
    const svg = topologySvg(arm);
    expect(count(svg, '<g class="unit')).toBe(2);
    expect(count(svg, '<g class="unit down">')).toBe(1);
    expect(count(svg, '<g class="device')).toBe(6);
    expect(count(svg, '<g class="device orphan">')).toBe(1);
    expect(count(svg, 'class="link"')).toBe(5);
    expect(count(svg, '>stall</text>')).toBe(1);
    expect(svg).toContain('RMR 0x80000000–0x8000ffff (64 KiB)  → SID 0x10000');
  });
});

describe('renderReport', () => {
  const html = renderReport(fixtureRun);

  it('is one self-contained page without scripts or external resources', () => {
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|src=|url\(|@import/i);
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  });

  it('has a section per platform and the pictures of each workload', () => {
    expect(count(html, '<section class="platform"')).toBe(2);
    expect(count(html, '<svg class="topology"')).toBe(2);
    const ran = fixtureRun.results.filter((r) => r.status !== 'skipped');
    expect(count(html, '<svg class="timeline"')).toBe(ran.length);
    expect(count(html, '<svg class="iova-map"')).toBe(ran.reduce((n, r) => n + r.spaces.length, 0));
    expect(count(html, 'data-status="skipped"')).toBe(1);
    expect(count(html, 'data-status="failed"')).toBe(1);
  });

  it('escapes every text it shows', () => {
    expect(html).not.toContain('<gfx>');
    expect(html).not.toContain('<7>');
    expect(html).toContain('tx buffer &lt;7&gt; &amp; &quot;header&quot;');
    expect(html).toContain('guest RAM &lt;0-640K&gt; &amp; &quot;low&quot;');
    const evil: WorkloadResult = {
      ...(fixtureRun.results[2] as WorkloadResult),
      workload: '"><script>alert(1)</script>',
      message: '<img src=x onerror=alert(1)>',
    };
    const run: RunResult = { ...fixtureRun, results: [evil] };
    const out = renderReport(run);
    expect(out).not.toContain('<script>');
    expect(out).not.toContain('<img');
    expect(out).toContain('&lt;img src=x onerror=alert(1)&gt;');
  });

  it('renders a run with no platforms', () => {
    const out = renderReport({ ...fixtureRun, platforms: [], results: [] });
    expect(count(out, '<section')).toBe(0);
    expect(out).toContain('0 passed, 0 failed, 0 skipped');
  });
});
