/**
 * Shared pieces of the report's inline SVG pictures: text escaping, approximate text widths,
 * palettes and a legend laid out in rows.
 */

import { escapeHtml } from './format.js';

/** Width in pixels of one character of the 11 px monospace font the pictures use (approximate). */
export const CHAR_W = 6.7;

/** Colours for fault types (warm). */
export const FAULT_COLORS = ['#d62728', '#ff7f0e', '#b5179e', '#8c564b', '#e377c2', '#bcbd22'] as const;
/** Colours for invalidation types (cool). */
export const INVALIDATION_COLORS = [
  '#1f77b4',
  '#17becf',
  '#2ca02c',
  '#9467bd',
  '#393b79',
  '#6b6ecf',
  '#637939',
  '#0f5257',
] as const;
/** Colour of page requests. */
export const PAGE_REQUEST_COLOR = '#e6ab02';

/**
 * A colour of a palette by position, cycling.
 * @param palette - colours
 * @param i - position
 * @returns a CSS colour
 */
export function pick(palette: readonly string[], i: number): string {
  return palette[i % palette.length] ?? '#888';
}

/**
 * Escaped text for SVG content or attributes.
 * @param text - any text
 * @returns escaped text
 */
export const esc = escapeHtml;

/**
 * Shorten text to fit a width, with an ellipsis.
 * @param text - text
 * @param width - pixels available
 * @returns text of at most `width / CHAR_W` characters
 */
export function fit(text: string, width: number): string {
  const n = Math.floor(width / CHAR_W);
  if (text.length <= n) return text;
  return n <= 1 ? '' : `${text.slice(0, n - 1)}…`;
}

/** A coloured legend entry. */
export interface LegendItem {
  /** Fill colour of the swatch. */
  readonly color: string;
  /** Text after the swatch. */
  readonly label: string;
  /** Extra SVG attributes of the swatch (dashes, strokes), already escaped. */
  readonly swatchAttrs?: string;
}

/**
 * Lay out a legend in rows that wrap at `width`.
 * @param items - entries
 * @param x - left edge
 * @param y - top of the first row
 * @param width - pixels before wrapping
 * @returns the SVG group and the height it takes (pixels)
 */
export function legend(
  items: readonly LegendItem[],
  x: number,
  y: number,
  width: number,
): { svg: string; height: number } {
  const parts: string[] = [];
  let cx = x;
  let cy = y;
  for (const it of items) {
    const w = 18 + it.label.length * CHAR_W + 14;
    if (cx > x && cx + w > x + width) {
      cx = x;
      cy += 18;
    }
    parts.push(
      `<rect x="${cx}" y="${cy}" width="12" height="12" rx="2" fill="${esc(it.color)}"${it.swatchAttrs ?? ''}/>` +
        `<text x="${cx + 17}" y="${cy + 10}" class="legend">${esc(it.label)}</text>`,
    );
    cx += w;
  }
  return { svg: `<g class="legend">${parts.join('')}</g>`, height: items.length === 0 ? 0 : cy - y + 18 };
}
