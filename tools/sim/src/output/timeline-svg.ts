/**
 * The report's fault and invalidation timeline: x is the step index of a workload, the upper panel
 * stacks faults by type and page requests per step, the lower panel stacks invalidation commands
 * by type; each panel has its own scale. Every bar segment and every step carries a tooltip.
 */

import type { TimelineEntry } from '../metrics/results.js';
import { compactTally, mergeTallies, sortedTally } from './format.js';
import {
  esc,
  FAULT_COLORS,
  INVALIDATION_COLORS,
  type LegendItem,
  legend,
  PAGE_REQUEST_COLOR,
  pick,
} from './svg.js';

interface Panel {
  readonly name: string;
  readonly empty: string;
  readonly keys: readonly string[];
  readonly colors: ReadonlyMap<string, string>;
  readonly values: (e: TimelineEntry) => Record<string, number>;
}

const PANEL_H = 96;
const LEFT = 56;
const RIGHT = 12;

function stepTip(e: TimelineEntry): string {
  return (
    `step ${e.index}: ${e.label}\n${e.dmaRequests} DMA requests, ${e.pinnedPages} pinned pages, t=${(e.atNs / 1000).toFixed(1)} µs\n` +
    `faults: ${compactTally(e.faults)}\npage requests: ${e.pageRequests}\ninvalidations: ${compactTally(e.invalidations)}`
  );
}

function drawPanel(p: Panel, timeline: readonly TimelineEntry[], y0: number, plotW: number): string {
  const slot = plotW / timeline.length;
  const barW = Math.max(1, Math.min(40, slot * 0.7));
  const totals = timeline.map((e) => Object.values(p.values(e)).reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...totals);
  const scale = PANEL_H / max;
  const out: string[] = [
    `<text x="${LEFT}" y="${y0 - 6}" class="panel">${esc(p.name)}</text>`,
    `<line x1="${LEFT}" y1="${y0 + PANEL_H}" x2="${LEFT + plotW}" y2="${y0 + PANEL_H}" class="axis"/>`,
    `<line x1="${LEFT}" y1="${y0}" x2="${LEFT}" y2="${y0 + PANEL_H}" class="axis"/>`,
  ];
  for (const v of [0, Math.round(max / 2), max]) {
    if (v === Math.round(max / 2) && (v === 0 || v === max)) continue;
    const y = y0 + PANEL_H - v * scale;
    out.push(
      `<line x1="${LEFT - 3}" y1="${y.toFixed(1)}" x2="${LEFT + plotW}" y2="${y.toFixed(1)}" class="grid"/>` +
        `<text x="${LEFT - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" class="tick">${v}</text>`,
    );
  }
  if (totals.every((t) => t === 0)) {
    out.push(`<text x="${LEFT + 10}" y="${y0 + PANEL_H / 2}" class="muted">${esc(p.empty)}</text>`);
  }
  timeline.forEach((e, i) => {
    const x = LEFT + i * slot + (slot - barW) / 2;
    let y = y0 + PANEL_H;
    const vals = p.values(e);
    for (const k of p.keys) {
      const n = vals[k] ?? 0;
      if (n === 0) continue;
      const h = Math.max(1, n * scale);
      y -= h;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${esc(p.colors.get(k) ?? '#888')}">` +
          `<title>${esc(`step ${e.index}: ${e.label}\n${k}: ${n}`)}</title></rect>`,
      );
    }
  });
  return out.join('');
}

/**
 * Draw a workload's timeline.
 * @param timeline - its steps
 * @param width - picture width in pixels (default 960)
 * @returns an `svg` element with class `timeline` (no steps: a one-line note picture)
 */
export function timelineSvg(timeline: readonly TimelineEntry[], width = 960): string {
  const plotW = width - LEFT - RIGHT;
  if (timeline.length === 0) {
    return `<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="${width}" height="28" viewBox="0 0 ${width} 28" role="img"><title>timeline</title><text x="${LEFT}" y="18" class="muted">no steps recorded</text></svg>`;
  }
  const faultKeys = sortedTally(mergeTallies(...timeline.map((e) => e.faults))).map(([k]) => k);
  const invKeys = sortedTally(mergeTallies(...timeline.map((e) => e.invalidations))).map(([k]) => k);
  const faultColors = new Map<string, string>(faultKeys.map((k, i) => [k, pick(FAULT_COLORS, i)]));
  faultColors.set('page requests', PAGE_REQUEST_COLOR);
  const invColors = new Map<string, string>(invKeys.map((k, i) => [k, pick(INVALIDATION_COLORS, i)]));
  const panels: Panel[] = [
    {
      name: 'faults by type and page requests per step',
      empty: 'no fault or page request in any step',
      keys: [...faultKeys, 'page requests'],
      colors: faultColors,
      values: (e) => ({ ...e.faults, 'page requests': e.pageRequests }),
    },
    {
      name: 'invalidation commands by type per step',
      empty: 'no invalidation command in any step',
      keys: invKeys,
      colors: invColors,
      values: (e) => ({ ...e.invalidations }),
    },
  ];
  const slot = plotW / timeline.length;
  const y1 = 24;
  const y2 = y1 + PANEL_H + 34;
  const axisY = y2 + PANEL_H;
  const parts: string[] = [];
  // Step hover areas first, so bar segments (drawn later) keep their own tooltips.
  timeline.forEach((e, i) => {
    parts.push(
      `<rect x="${(LEFT + i * slot).toFixed(1)}" y="${y1}" width="${slot.toFixed(1)}" height="${axisY - y1}" class="step"><title>${esc(stepTip(e))}</title></rect>`,
    );
  });
  parts.push(
    drawPanel(panels[0] as Panel, timeline, y1, plotW),
    drawPanel(panels[1] as Panel, timeline, y2, plotW),
  );
  const every = Math.max(1, Math.ceil(timeline.length / 30));
  timeline.forEach((e, i) => {
    if (i % every !== 0 && i !== timeline.length - 1) return;
    const x = LEFT + (i + 0.5) * slot;
    parts.push(
      `<text x="${x.toFixed(1)}" y="${axisY + 14}" text-anchor="middle" class="tick">${e.index}</text>`,
    );
  });
  parts.push(`<text x="${LEFT + plotW}" y="${axisY + 28}" text-anchor="end" class="muted">step</text>`);
  const items: LegendItem[] = [
    ...faultKeys.map((k) => ({ color: faultColors.get(k) ?? '#888', label: k })),
    ...(timeline.some((e) => e.pageRequests > 0)
      ? [{ color: PAGE_REQUEST_COLOR, label: 'page requests' }]
      : []),
    ...invKeys.map((k) => ({ color: invColors.get(k) ?? '#888', label: k })),
  ];
  const lg = legend(items, LEFT, axisY + 36, plotW);
  const height = axisY + 36 + lg.height + 4;
  return (
    `<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img">` +
    `<title>fault and invalidation timeline</title>${parts.join('')}${lg.svg}</svg>`
  );
}
