/**
 * The report's topology picture: IOMMU units as boxes along the top, the machine's devices as
 * boxes below connected to the unit translating them, capabilities as badges, and the reserved
 * regions listed underneath.
 */

import type { TopologyDevice, TopologyUnit, TopologyView } from '../machine/machine.js';
import { hex, humanBytes } from './format.js';
import { CHAR_W, esc, fit } from './svg.js';

const UNIT_W = 230;
const UNIT_H = 84;
const DEV_W = 172;
const DEV_H = 58;
const GAP = 14;
const PAD = 12;

function badges(d: TopologyDevice): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (d.ats) out.push(['ATS', '#1f77b4']);
  if (d.pasid) out.push(['PASID', '#9467bd']);
  if (d.pri) out.push(['PRI', '#e6ab02']);
  if (d.stall) out.push(['stall', '#d62728']);
  out.push(d.fromFirmware ? ['firmware', '#5b6670'] : ['added', '#2ca02c']);
  return out;
}

function badgeRow(list: ReadonlyArray<[string, string]>, x: number, y: number): string {
  let cx = x;
  return list
    .map(([text, color]) => {
      const w = text.length * CHAR_W * 0.9 + 8;
      const s =
        `<rect x="${cx.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="14" rx="7" fill="${color}"/>` +
        `<text x="${(cx + w / 2).toFixed(1)}" y="${y + 10.5}" text-anchor="middle" class="badge">${esc(text)}</text>`;
      cx += w + 4;
      return s;
    })
    .join('');
}

function unitBox(u: TopologyUnit, kind: string, x: number, y: number): string {
  const params = Object.entries(u.params).map(([k, v]) => `${k}=${String(v)}`);
  const tip = [`${u.name} @ ${hex(u.base)}`, ...params, ...u.scopes.map((s) => `scope ${s}`)];
  if (u.error !== null) tip.push(`DOWN: ${u.error}`);
  // Two lines of parameters, wrapped at a parameter boundary.
  const perLine = Math.floor((UNIT_W - 16) / CHAR_W);
  const lines = ['', ''];
  let li = 0;
  for (const p of params) {
    const cur = lines[li] ?? '';
    if (cur !== '' && cur.length + 1 + p.length > perLine && li === 0) li = 1;
    lines[li] = lines[li] === '' ? p : `${lines[li]} ${p}`;
  }
  return (
    `<g class="unit${u.error === null ? '' : ' down'}"><title>${esc(tip.join('\n'))}</title>` +
    `<rect x="${x}" y="${y}" width="${UNIT_W}" height="${UNIT_H}" rx="6" class="unit-box"/>` +
    `<text x="${x + 8}" y="${y + 17}" class="name">${esc(fit(`${u.name}  ${kind}`, UNIT_W - 16))}</text>` +
    `<text x="${x + 8}" y="${y + 33}" class="mono">${esc(hex(u.base))}</text>` +
    `<text x="${x + 8}" y="${y + 48}" class="small">${esc(fit(lines[0] ?? '', UNIT_W - 16))}</text>` +
    `<text x="${x + 8}" y="${y + 62}" class="small">${esc(fit(lines[1] ?? '', UNIT_W - 16))}</text>` +
    (u.error === null
      ? `<text x="${x + 8}" y="${y + 77}" class="small">${esc(`${u.scopes.length} scope${u.scopes.length === 1 ? '' : 's'}`)}</text>`
      : `<text x="${x + 8}" y="${y + 77}" class="error">${esc(fit(`DOWN: ${u.error}`, UNIT_W - 16))}</text>`) +
    '</g>'
  );
}

function deviceBox(d: TopologyDevice, x: number, y: number): string {
  const tip = `${d.name} (${d.role})\n${d.label}\nunit ${d.unit ?? 'none'}\nids ${d.ids.map((i) => hex(i)).join(' ')}`;
  return (
    `<g class="device${d.unit === null ? ' orphan' : ''}"><title>${esc(tip)}</title>` +
    `<rect x="${x}" y="${y}" width="${DEV_W}" height="${DEV_H}" rx="6" class="dev-box"/>` +
    `<text x="${x + 8}" y="${y + 16}" class="name">${esc(fit(`${d.name}  ${d.ids.map((i) => hex(i)).join(' ')}`, DEV_W - 16))}</text>` +
    `<text x="${x + 8}" y="${y + 31}" class="small">${esc(fit(d.label, DEV_W - 16))}</text>` +
    badgeRow(badges(d), x + 8, y + 38) +
    '</g>'
  );
}

/**
 * Draw a platform's topology.
 * @param view - the topology
 * @param width - picture width in pixels (default 960)
 * @returns an `svg` element with class `topology`
 */
export function topologySvg(view: TopologyView, width = 960): string {
  const kind = view.kind === 'vtd' ? 'VT-d' : 'SMMUv3';
  const parts: string[] = [];
  const unitsPerRow = Math.max(1, Math.floor((width - 2 * PAD + GAP) / (UNIT_W + GAP)));
  const unitPos = new Map<string, { x: number; y: number }>();
  const unitRows = Math.max(1, Math.ceil(view.units.length / unitsPerRow));
  view.units.forEach((u, i) => {
    const row = Math.floor(i / unitsPerRow);
    const inRow = Math.min(unitsPerRow, view.units.length - row * unitsPerRow);
    const rowW = inRow * UNIT_W + (inRow - 1) * GAP;
    const x = (width - rowW) / 2 + (i % unitsPerRow) * (UNIT_W + GAP);
    const y = PAD + row * (UNIT_H + GAP);
    unitPos.set(u.name, { x, y });
    parts.push(unitBox(u, kind, x, y));
  });
  if (view.units.length === 0)
    parts.push(`<text x="${PAD}" y="${PAD + 20}" class="muted">no IOMMU units</text>`);
  const unitIndex = new Map(view.units.map((u, i) => [u.name, i]));
  const devices = [...view.devices].sort(
    (a, b) => (unitIndex.get(a.unit ?? '') ?? 1e9) - (unitIndex.get(b.unit ?? '') ?? 1e9),
  );
  const devPerRow = Math.max(1, Math.floor((width - 2 * PAD + GAP) / (DEV_W + GAP)));
  const devTop = PAD + unitRows * (UNIT_H + GAP) + 46;
  const links: string[] = [];
  const boxes: string[] = [];
  devices.forEach((d, i) => {
    const row = Math.floor(i / devPerRow);
    const inRow = Math.min(devPerRow, devices.length - row * devPerRow);
    const rowW = inRow * DEV_W + (inRow - 1) * GAP;
    const x = (width - rowW) / 2 + (i % devPerRow) * (DEV_W + GAP);
    const y = devTop + row * (DEV_H + GAP + 10);
    const u = d.unit === null ? undefined : unitPos.get(d.unit);
    if (u !== undefined) {
      const ux = u.x + UNIT_W / 2;
      const uy = u.y + UNIT_H;
      const dx = x + DEV_W / 2;
      const my = (uy + y) / 2;
      links.push(
        `<path d="M${ux.toFixed(1)} ${uy} C${ux.toFixed(1)} ${my} ${dx.toFixed(1)} ${my} ${dx.toFixed(1)} ${y}" class="link"/>`,
      );
    }
    boxes.push(deviceBox(d, x, y));
  });
  const devRows = Math.ceil(devices.length / devPerRow);
  let y = devTop + devRows * (DEV_H + GAP + 10) + 8;
  const reserved = [`reserved regions (${view.reserved.length})`];
  for (const r of view.reserved.slice(0, 10)) {
    reserved.push(
      `${r.kind} ${hex(r.start)}–${hex(r.end)} (${humanBytes(r.end - r.start + 1n)})${r.devices.length > 0 ? `  → ${r.devices.join(', ')}` : ''}`,
    );
  }
  if (view.reserved.length > 10) reserved.push(`+${view.reserved.length - 10} more`);
  if (view.reserved.length === 0) reserved.push('none');
  const lines = reserved.map(
    (t, i) =>
      `<text x="${PAD}" y="${y + i * 16}" class="${i === 0 ? 'panel' : 'mono'}">${esc(fit(t, width - 2 * PAD))}</text>`,
  );
  y += reserved.length * 16;
  const height = y + 4;
  return (
    `<svg class="topology" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img">` +
    `<title>${esc(`${view.name} topology: ${view.units.length} units, ${view.devices.length} devices`)}</title>` +
    `${links.join('')}${parts.join('')}${boxes.join('')}<g class="reserved">${lines.join('')}</g></svg>`
  );
}
