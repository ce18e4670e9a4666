/**
 * Terminal output: the per-platform summary table `iommu-sim run` prints, and the topology
 * `iommu-sim inspect` prints.
 */

import Table from 'cli-table3';
import pc from 'picocolors';
import type { TopologyView } from '../machine/machine.js';
import type { RunResult, WorkloadResult } from '../metrics/results.js';
import { compactTally, hex, humanBytes, mergeTallies, percent } from './format.js';

/** Options of {@link formatSummary}. */
export interface SummaryOptions {
  /** Colour the status column and headers with ANSI escapes (default `false`). */
  readonly color?: boolean;
}

/** Invalidation types shown per cell before `+N more`. */
const INVALIDATION_TYPES_SHOWN = 3;
/** Fault types shown per cell before `+N more`. */
const FAULT_TYPES_SHOWN = 4;

const HEADERS = [
  'workload',
  'status',
  'DMA req',
  'bytes',
  'IOTLB hit',
  'walks',
  'faults by type',
  'PRI req/resp',
  'invalidations by type',
  'peak pinned',
  'wall ms',
] as const;

/** Column widths including padding: 145 + 12 borders = 157 columns. */
const WIDTHS = [18, 9, 9, 11, 9, 7, 26, 9, 30, 9, 8] as const;

function statusText(r: WorkloadResult, c: ReturnType<typeof pc.createColors>): string {
  if (r.status === 'passed') return c.green('passed');
  if (r.status === 'failed') return c.red('FAILED');
  return c.yellow('skipped');
}

function row(r: WorkloadResult, c: ReturnType<typeof pc.createColors>): Table.HorizontalTableRow {
  const f = r.figures;
  const head = [r.workload, statusText(r, c)];
  if (r.status === 'skipped') return [...head, { colSpan: HEADERS.length - 2, content: r.message ?? '' }];
  const cells: Table.HorizontalTableRow = [
    ...head,
    String(f.dmaRequests),
    humanBytes(f.bytes),
    f.atcHitRate === null
      ? percent(f.iotlbHitRate)
      : `${percent(f.iotlbHitRate)}\nATC ${percent(f.atcHitRate)}`,
    String(f.pageWalks),
    compactTally(mergeTallies(f.dmaFaults, f.hwFaults), FAULT_TYPES_SHOWN),
    `${f.pageRequests}/${f.pageResponses}`,
    compactTally(f.invalidations, INVALIDATION_TYPES_SHOWN),
    String(f.peakPinnedPages),
    f.wallMs.toFixed(1),
  ];
  return cells;
}

/**
 * The summary of a run: per platform a heading line and one table (rows = workloads, columns =
 * status, DMA requests, bytes, IOTLB hit rate, page walks, faults by type, page requests and
 * responses, invalidations by type, peak pinned pages, wall time). A failed workload gets its
 * message on a row below its figures; a skipped one shows the reason instead of figures. Lines
 * fit 160 columns (long cells wrap).
 * @param run - the run
 * @param options - see {@link SummaryOptions}
 * @returns the text, ending with a newline
 */
export function formatSummary(run: RunResult, options: SummaryOptions = {}): string {
  const c = pc.createColors(options.color ?? false);
  const out: string[] = [];
  const names = [...new Set([...run.platforms.map((p) => p.name), ...run.results.map((r) => r.platform)])];
  for (const name of names) {
    const view = run.platforms.find((p) => p.name === name);
    const results = run.results.filter((r) => r.platform === name);
    const passed = results.filter((r) => r.status === 'passed').length;
    const failed = results.filter((r) => r.status === 'failed').length;
    const skipped = results.filter((r) => r.status === 'skipped').length;
    const what =
      view === undefined
        ? ''
        : ` (${view.kind === 'vtd' ? 'Intel VT-d' : 'Arm SMMUv3'}, ${describeSource(view)})`;
    out.push(
      `${c.bold(name)}${what}: ${passed} passed, ${failed > 0 ? c.red(`${failed} failed`) : '0 failed'}, ${skipped} skipped`,
    );
    const table = new Table({
      head: HEADERS.map((h) => c.bold(h)),
      colWidths: [...WIDTHS],
      wordWrap: true,
      wrapOnWordBoundary: true,
      style: { head: [], border: [] },
    });
    for (const r of results) {
      table.push(row(r, c));
      if (r.status === 'failed')
        table.push([{ colSpan: HEADERS.length, content: c.red(`↳ ${r.message ?? 'failed'}`) }]);
    }
    out.push(table.toString(), '');
  }
  out.push(`seed ${run.seed}, node ${run.host.node} on ${run.host.platform} (${run.host.cpus} CPUs)`);
  return `${out.join('\n')}\n`;
}

function describeSource(view: TopologyView): string {
  const s = view.source;
  return s.file === null ? `built-in ${s.format.toUpperCase()}` : `${s.format.toUpperCase()} ${s.file}`;
}

function flag(on: boolean, name: string): string {
  return on ? name : '-';
}

function formatParams(params: Readonly<Record<string, string | number | boolean>>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

/**
 * The topology of a built platform as `iommu-sim inspect` prints it: a header with the source
 * (format, form, file, OEM, revision), a counts line, each unit with its parameters and scope
 * lines, the reserved regions (hex ranges and devices), a table of devices (name, label, unit,
 * IDs in hex, ATS/PASID/PRI/stall flags, firmware or added) and the notes.
 * @param view - the topology
 * @returns the text, ending with a newline
 */
export function formatTopology(view: TopologyView): string {
  const s = view.source;
  const lines: string[] = [];
  lines.push(`${view.name}: ${view.kind === 'vtd' ? 'Intel VT-d' : 'Arm SMMUv3'} platform`);
  lines.push(
    `source: ${s.format.toUpperCase()} ${s.form}${s.file === null ? '' : ` ${s.file}`}` +
      `${s.oem === null ? '' : `, oem "${s.oem}"`}${s.revision === null ? '' : `, revision ${s.revision}`}`,
  );
  const { units, scopes, reservedRegions, ...extra } = view.counts;
  const counts = [`units ${units}`, `scopes ${scopes}`, `reserved regions ${reservedRegions}`];
  for (const [k, v] of Object.entries(extra)) counts.push(`${k} ${v}`);
  lines.push(`counts: ${counts.join(', ')}`, '');
  for (const u of view.units) {
    lines.push(`unit ${u.name} @ ${hex(u.base)}${u.error === null ? '' : `  [DOWN: ${u.error}]`}`);
    const params = formatParams(u.params);
    if (params !== '') lines.push(`  ${params}`);
    for (const sc of u.scopes) lines.push(`  scope ${sc}`);
  }
  if (view.units.length === 0) lines.push('no IOMMU units');
  lines.push('');
  if (view.reserved.length === 0) lines.push('reserved regions: none');
  else {
    lines.push('reserved regions:');
    for (const r of view.reserved) {
      const devs = r.devices.length === 0 ? '' : `  ${r.devices.join(', ')}`;
      lines.push(`  ${r.kind} ${hex(r.start)}-${hex(r.end)} (${humanBytes(r.end - r.start + 1n)})${devs}`);
    }
  }
  lines.push('');
  const table = new Table({
    head: ['device', 'label', 'unit', 'ids', 'ATS', 'PASID', 'PRI', 'stall', 'origin'],
    style: { head: [], border: [] },
  });
  for (const d of view.devices) {
    table.push([
      d.name,
      d.label,
      d.unit ?? '(none)',
      d.ids.map((id) => hex(id)).join(' '),
      flag(d.ats, 'ATS'),
      flag(d.pasid, 'PASID'),
      flag(d.pri, 'PRI'),
      flag(d.stall, 'stall'),
      d.fromFirmware ? 'firmware' : 'added',
    ]);
  }
  lines.push(view.devices.length === 0 ? 'devices: none' : table.toString());
  if (view.notes.length > 0) {
    lines.push('', 'notes:');
    for (const n of view.notes) lines.push(`  - ${n}`);
  }
  return `${lines.join('\n')}\n`;
}
