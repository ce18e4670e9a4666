/**
 * The report's IOVA space map: a horizontal address axis with hex ticks and the mappings of one
 * I/O address space as bars (coloured by whether they were unmapped before the end). Address
 * stretches far from any mapping are cut out of the axis and shown as a break marker, so a 4 KiB
 * ring next to a 1 GiB buffer at a distant address is still visible.
 */

import type { IovaRange, IovaSpace, TimelineEntry } from '../metrics/results.js';
import { hex, humanBytes } from './format.js';
import { CHAR_W, esc, fit, legend } from './svg.js';

/** A stretch of addresses drawn linearly: `[start, end)` at pixels `[x, x + width)`. */
export interface AxisSegment {
  /** First address. */
  readonly start: bigint;
  /** One past the last address. */
  readonly end: bigint;
  /** Left pixel. */
  readonly x: number;
  /** Width in pixels. */
  readonly width: number;
}

/** Width of the break marker between two segments (pixels). */
export const BREAK_W = 30;
/** Smallest width of a segment (pixels): room for its hex tick labels. */
export const MIN_SEGMENT_W = 120;
/** Most segments drawn; closer clusters merge beyond that. */
export const MAX_SEGMENTS = 5;

interface Cluster {
  start: bigint;
  end: bigint;
}

function maxBig(a: bigint, b: bigint): bigint {
  if (a >= b) return a;
  return b;
}

function span(c: Cluster): bigint {
  return c.end - c.start;
}

/**
 * Split the address space into the stretches that hold mappings. Neighbouring clusters merge when
 * the gap between them is no larger than the larger of the two; then the pair with the smallest
 * relative gap merges until at most {@link MAX_SEGMENTS} remain. Widths grow with the square root
 * of a segment's span, each at least {@link MIN_SEGMENT_W}, with {@link BREAK_W} between segments.
 * @param ranges - the mappings (zero-length ones count as one byte)
 * @param x0 - left pixel of the axis
 * @param width - axis width in pixels
 * @returns segments left to right (empty when there are no ranges)
 */
export function layoutIovaAxis(ranges: readonly IovaRange[], x0: number, width: number): AxisSegment[] {
  const iv = ranges
    .map((r) => ({ start: r.iova, end: r.iova + (r.length > 0n ? r.length : 1n) }))
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const clusters: Cluster[] = [];
  for (const r of iv) {
    const last = clusters[clusters.length - 1];
    if (last !== undefined) {
      const gap = r.start - last.end;
      const big = maxBig(span(last), r.end - r.start);
      if (gap <= big) {
        if (r.end > last.end) last.end = r.end;
        continue;
      }
    }
    clusters.push({ ...r });
  }
  while (clusters.length > MAX_SEGMENTS) {
    let best = 0;
    let bestRatio = Number.POSITIVE_INFINITY;
    for (let i = 0; i + 1 < clusters.length; i++) {
      const a = clusters[i] as Cluster;
      const b = clusters[i + 1] as Cluster;
      const ratio = Number(b.start - a.end) / Number(span(a) + span(b));
      if (ratio < bestRatio) {
        bestRatio = ratio;
        best = i;
      }
    }
    const a = clusters[best] as Cluster;
    const b = clusters[best + 1] as Cluster;
    a.end = maxBig(a.end, b.end);
    clusters.splice(best + 1, 1);
  }
  if (clusters.length === 0) return [];
  const usable = width - BREAK_W * (clusters.length - 1);
  const minW = Math.min(MIN_SEGMENT_W, usable / clusters.length);
  const weights = clusters.map((c) => Math.sqrt(Number(span(c))));
  const total = weights.reduce((a, b) => a + b, 0);
  const spare = usable - minW * clusters.length;
  const out: AxisSegment[] = [];
  let x = x0;
  clusters.forEach((c, i) => {
    const w = minW + (spare * (weights[i] ?? 0)) / total;
    out.push({ start: c.start, end: c.end, x, width: w });
    x += w + BREAK_W;
  });
  return out;
}

/**
 * Pixel position of an address on a laid-out axis.
 * @param segments - from {@link layoutIovaAxis}
 * @param addr - an address inside one of the segments (else clamped to the nearest edge)
 * @returns x in pixels
 */
export function addressToX(segments: readonly AxisSegment[], addr: bigint): number {
  for (const s of segments) {
    if (addr < s.start) return s.x;
    if (addr <= s.end) return s.x + (Number(addr - s.start) / Number(s.end - s.start)) * s.width;
  }
  const last = segments[segments.length - 1];
  return last === undefined ? 0 : last.x + last.width;
}

const MAPPED = '#2f7ed8';
const UNMAPPED = '#c3ccd6';
const LANE_H = 22;
const MAX_LANES = 12;

function stepName(timeline: readonly TimelineEntry[], i: number): string {
  const e = timeline[i];
  return e === undefined ? `step ${i} (end)` : `step ${i} (${e.label})`;
}

/**
 * Draw one I/O address space.
 * @param space - the space and its mappings
 * @param timeline - the workload's steps (names the steps in tooltips)
 * @param width - picture width in pixels (default 960)
 * @returns an `svg` element with class `iova-map` (no mappings: a one-line note picture)
 */
export function iovaMapSvg(space: IovaSpace, timeline: readonly TimelineEntry[], width = 960): string {
  const left = 12;
  const right = 12;
  const title = `${space.name} (${space.kind}) — ${space.devices.join(', ') || 'no device'} — ${space.ranges.length} mapping${space.ranges.length === 1 ? '' : 's'}`;
  const head = `<text x="${left}" y="16" class="title">${esc(fit(title, width - left - right))}</text>`;
  if (space.ranges.length === 0) {
    return `<svg class="iova-map" xmlns="http://www.w3.org/2000/svg" width="${width}" height="44" viewBox="0 0 ${width} 44" role="img"><title>${esc(title)}</title>${head}<text x="${left}" y="36" class="muted">no mappings recorded</text></svg>`;
  }
  const segs = layoutIovaAxis(space.ranges, left, width - left - right);
  // Lanes: a bar goes to the first lane whose last bar ends left of it.
  const lanesEnd: number[] = [];
  const bars: string[] = [];
  const order = space.ranges
    .map((r, i) => ({ r, i }))
    .sort((a, b) => (a.r.iova < b.r.iova ? -1 : a.r.iova > b.r.iova ? 1 : a.r.mappedAt - b.r.mappedAt));
  const top = 28;
  for (const { r, i } of order) {
    const x1 = addressToX(segs, r.iova);
    const x2 = Math.max(addressToX(segs, r.iova + r.length), x1 + 4);
    let lane = lanesEnd.findIndex((e) => e + 1 <= x1);
    if (lane < 0) {
      lane = lanesEnd.length < MAX_LANES ? lanesEnd.length : i % MAX_LANES;
    }
    lanesEnd[lane] = Math.max(lanesEnd[lane] ?? 0, x2);
    const y = top + lane * LANE_H;
    const live = r.unmappedAt === null;
    const tip =
      `${r.label}\n${hex(r.iova)}–${hex(r.iova + r.length - 1n)} (${humanBytes(r.length)})\n` +
      `mapped at ${stepName(timeline, r.mappedAt)}\n` +
      (live ? 'still mapped at the end' : `unmapped at ${stepName(timeline, r.unmappedAt ?? 0)}`);
    const w = x2 - x1;
    const shown = fit(r.label, w - 8);
    const text = shown === r.label || shown.length >= 8 ? shown : '';
    bars.push(
      `<g class="range ${live ? 'live' : 'gone'}"><title>${esc(tip)}</title>` +
        `<rect x="${x1.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${LANE_H - 4}" rx="2" fill="${live ? MAPPED : UNMAPPED}"` +
        `${live ? '' : ' stroke="#8793a0" stroke-dasharray="3 2"'}/>` +
        (text === ''
          ? ''
          : `<text x="${(x1 + 4).toFixed(1)}" y="${y + 13}" class="${live ? 'on-dark' : 'on-light'}">${esc(text)}</text>`) +
        '</g>',
    );
  }
  const axisY = top + lanesEnd.length * LANE_H + 4;
  const axis: string[] = [];
  const labelRows: Array<Array<[number, number]>> = [[], []];
  const axisMin = left;
  const axisMax = width - right;
  // Puts a label on the first of two rows where it overlaps no other; returns its row and left edge.
  const place = (x: number, label: string, anchor: 'start' | 'middle' | 'end'): [number, number] => {
    const w = label.length * CHAR_W + 10;
    let l = anchor === 'start' ? x - 5 : anchor === 'end' ? x - w + 5 : x - w / 2;
    l = Math.max(axisMin - 5, Math.min(l, axisMax + 5 - w));
    const row = labelRows.findIndex((occ) => occ.every(([a, b]) => l + w <= a || l >= b));
    if (row >= 0) labelRows[row]?.push([l, l + w]);
    return [row, l + 5];
  };
  segs.forEach((s, k) => {
    axis.push(
      `<line x1="${s.x.toFixed(1)}" y1="${axisY}" x2="${(s.x + s.width).toFixed(1)}" y2="${axisY}" class="axis"/>`,
    );
    // Segment edges first, then the mapping edges inside the segment while labels fit.
    const inside = new Set<bigint>();
    for (const r of space.ranges) {
      for (const a of [r.iova, r.iova + r.length]) if (a > s.start && a < s.end) inside.add(a);
    }
    const ticks: Array<[bigint, 'start' | 'middle' | 'end']> = [
      [s.start, 'start'],
      [s.end, 'end'],
      ...[...inside].sort((a, b) => (a < b ? -1 : 1)).map((a): [bigint, 'middle'] => [a, 'middle']),
    ];
    for (const [addr, anchor] of ticks) {
      const x = addressToX(segs, addr);
      const label = hex(addr);
      const [row, tx] = place(x, label, anchor);
      if (row < 0) continue;
      axis.push(
        `<line x1="${x.toFixed(1)}" y1="${axisY - 4}" x2="${x.toFixed(1)}" y2="${axisY + 4 + row * 13}" class="axis"/>` +
          `<text x="${tx.toFixed(1)}" y="${axisY + 14 + row * 13}" class="tick">${esc(label)}</text>`,
      );
    }
    const next = segs[k + 1];
    if (next !== undefined) {
      const bx = s.x + s.width + BREAK_W / 2;
      axis.push(
        `<g class="break"><title>${esc(`${humanBytes(next.start - s.end)} not drawn (${hex(s.end)}–${hex(next.start - 1n)})`)}</title>` +
          `<rect x="${(s.x + s.width + 2).toFixed(1)}" y="${top - 4}" width="${BREAK_W - 4}" height="${axisY - top + 12}" fill="#f4f6f8"/>` +
          `<path d="M${(bx - 7).toFixed(1)} ${axisY + 6} l6 -12 M${(bx + 1).toFixed(1)} ${axisY + 6} l6 -12" class="break-mark"/></g>`,
      );
    }
  });
  const lg = legend(
    [
      { color: MAPPED, label: 'mapped at the end' },
      {
        color: UNMAPPED,
        label: 'unmapped before the end',
        swatchAttrs: ' stroke="#8793a0" stroke-dasharray="3 2"',
      },
      ...(segs.length > 1
        ? [{ color: '#f4f6f8', label: '// addresses not drawn (gap)', swatchAttrs: ' stroke="#8793a0"' }]
        : []),
    ],
    left,
    axisY + 38,
    width - left - right,
  );
  const height = axisY + 38 + lg.height + 4;
  return (
    `<svg class="iova-map" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img">` +
    `<title>${esc(title)}</title>${head}${axis.join('')}${bars.join('')}${lg.svg}</svg>`
  );
}
