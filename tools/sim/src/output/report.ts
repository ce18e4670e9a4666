/**
 * `--report`: the run as one self-contained HTML page. Per platform: the topology picture, the
 * summary table, and per workload its status, the IOVA space maps and the fault and invalidation
 * timeline. Rendered with eta from output/report-template.ts; all text is escaped.
 */

import { Eta } from 'eta';
import type { TopologyView } from '../machine/machine.js';
import type { IovaSpace, RunResult, TimelineEntry, WorkloadResult } from '../metrics/results.js';
import { compactTally, hex, humanBytes, mergeTallies, percent } from './format.js';
import { iovaMapSvg } from './iova-map-svg.js';
import { REPORT_CSS, REPORT_TEMPLATE } from './report-template.js';
import { timelineSvg } from './timeline-svg.js';
import { topologySvg } from './topology-svg.js';

/** Mapping rows listed under each IOVA map before `+N more`. */
const RANGE_ROWS = 8;

interface SpaceModel {
  svg: string;
  rows: Array<{ label: string; range: string; size: string; mapped: string; unmapped: string }>;
  more: number;
}

interface RowModel {
  id: string;
  workload: string;
  status: WorkloadResult['status'];
  message: string | null;
  cells: Record<'dma' | 'bytes' | 'hit' | 'walks' | 'faults' | 'prq' | 'inv' | 'pinned' | 'wall', string>;
  details: string;
  spaces: SpaceModel[];
  timelineSvg: string;
}

interface PlatformModel {
  id: string;
  name: string;
  subtitle: string;
  topologySvg: string;
  notes: readonly string[];
  rows: RowModel[];
}

/** What the template sees. */
interface ReportModel {
  version: number;
  seed: number;
  css: string;
  host: RunResult['host'];
  totals: string;
  platforms: PlatformModel[];
}

function slug(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'x'
  );
}

function stepLabel(timeline: readonly TimelineEntry[], i: number | null): string {
  if (i === null) return 'still mapped';
  const e = timeline[i];
  return e === undefined ? `${i} (end)` : `${i}: ${e.label}`;
}

function spaceModel(space: IovaSpace, timeline: readonly TimelineEntry[]): SpaceModel {
  return {
    svg: iovaMapSvg(space, timeline),
    rows: space.ranges.slice(0, RANGE_ROWS).map((r) => ({
      label: r.label,
      range: `${hex(r.iova)}–${hex(r.iova + r.length - 1n)}`,
      size: humanBytes(r.length),
      mapped: stepLabel(timeline, r.mappedAt),
      unmapped: stepLabel(timeline, r.unmappedAt),
    })),
    more: Math.max(0, space.ranges.length - RANGE_ROWS),
  };
}

function rowModel(r: WorkloadResult, platformId: string): RowModel {
  const f = r.figures;
  return {
    id: `${platformId}--${slug(r.workload)}`,
    workload: r.workload,
    status: r.status,
    message: r.message,
    cells: {
      dma: String(f.dmaRequests),
      bytes: humanBytes(f.bytes),
      hit:
        f.atcHitRate === null
          ? percent(f.iotlbHitRate)
          : `${percent(f.iotlbHitRate)} (ATC ${percent(f.atcHitRate)})`,
      walks: String(f.pageWalks),
      faults: compactTally(mergeTallies(f.dmaFaults, f.hwFaults)),
      prq: `${f.pageRequests} / ${f.pageResponses}`,
      inv: compactTally(f.invalidations, 5),
      pinned: String(f.peakPinnedPages),
      wall: f.wallMs.toFixed(1),
    },
    details:
      `read ${humanBytes(f.bytesRead)}, written ${humanBytes(f.bytesWritten)}, ` +
      `IOTLB ${f.iotlbHits} hits / ${f.iotlbMisses} misses, ATS requests ${f.atsRequests}, ` +
      `ATC ${f.atcHits} hits / ${f.atcMisses} misses, ATC invalidations ${f.atcInvalidations}, stalls ${f.stalls}, ` +
      `${f.checks} checks over ${humanBytes(f.bytesVerified)}, simulated ${(f.virtualNs / 1000).toFixed(1)} µs`,
    spaces: r.spaces.map((s) => spaceModel(s, r.timeline)),
    timelineSvg: timelineSvg(r.timeline),
  };
}

function subtitle(view: TopologyView | undefined): string {
  if (view === undefined) return 'topology not recorded';
  const s = view.source;
  const origin = s.file === null ? 'built-in' : s.file;
  const oem = s.oem === null ? '' : `, OEM ${s.oem.trim()}`;
  const rev = s.revision === null ? '' : `, revision ${s.revision}`;
  return `${view.kind === 'vtd' ? 'Intel VT-d' : 'Arm SMMUv3'} · ${s.format.toUpperCase()} (${s.form}) ${origin}${oem}${rev} · units ${view.counts.units}, scopes ${view.counts.scopes}, reserved regions ${view.counts.reservedRegions}`;
}

const eta = new Eta({ autoEscape: true, autoTrim: false, useWith: false, varName: 'it' });

/**
 * The HTML report of a run.
 * @param run - the run
 * @returns one self-contained HTML page (inline CSS and SVG; no scripts, no external resources)
 */
export function renderReport(run: RunResult): string {
  const names = [...new Set([...run.platforms.map((p) => p.name), ...run.results.map((r) => r.platform)])];
  const platforms = names.map((name, i): PlatformModel => {
    const view = run.platforms.find((p) => p.name === name);
    const id = `p${i}-${slug(name)}`;
    return {
      id,
      name,
      subtitle: subtitle(view),
      topologySvg: view === undefined ? '' : topologySvg(view),
      notes: view?.notes ?? [],
      rows: run.results.filter((r) => r.platform === name).map((r) => rowModel(r, id)),
    };
  });
  const by = (s: WorkloadResult['status']) => run.results.filter((r) => r.status === s).length;
  const model: ReportModel = {
    version: run.version,
    seed: run.seed,
    css: REPORT_CSS,
    host: run.host,
    totals: `${by('passed')} passed, ${by('failed')} failed, ${by('skipped')} skipped`,
    platforms,
  };
  return eta.renderString(REPORT_TEMPLATE, model);
}
