/**
 * The eta template of the HTML report: one self-contained page (inline CSS, inline SVG, no
 * scripts, no network). `<%= %>` escapes text; `<%~ %>` inserts the SVG pictures, which their
 * builders escape themselves.
 */

/** Inline style sheet of the report. */
export const REPORT_CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d2630; background: #f4f6f8; }
header { background: #1d2630; color: #fff; padding: 16px 24px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #c3ccd6; }
main { max-width: 1010px; margin: 0 auto; padding: 12px 16px 40px; }
section.platform { background: #fff; border: 1px solid #d9dfe5; border-radius: 8px; padding: 4px 18px 18px; margin: 18px 0; }
h2 { font-size: 20px; margin: 14px 0 2px; }
h3 { font-size: 16px; margin: 18px 0 6px; border-bottom: 1px solid #e3e8ed; padding-bottom: 3px; }
h4 { font-size: 14px; margin: 12px 0 4px; color: #3b4650; }
.sub { color: #5b6670; margin: 0 0 8px; }
.notes { color: #7a4a00; background: #fff6e0; border-radius: 4px; padding: 6px 10px 6px 26px; margin: 8px 0; }
table.summary { border-collapse: collapse; width: 100%; font-size: 12px; margin: 6px 0; }
table.summary th, table.summary td { border: 1px solid #d9dfe5; padding: 3px 5px; text-align: right; vertical-align: top; }
table.summary th { background: #eef1f4; text-align: center; }
table.summary td.l { text-align: left; }
table.summary td.tally { text-align: left; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 11px; max-width: 230px; overflow-wrap: anywhere; }
.status { display: inline-block; border-radius: 9px; padding: 0 8px; font-size: 12px; font-weight: 600; color: #fff; }
.status.passed { background: #2ca02c; } .status.failed { background: #d62728; } .status.skipped { background: #8a939c; }
.message { border-left: 4px solid #8a939c; background: #f4f6f8; padding: 6px 10px; margin: 6px 0; white-space: pre-wrap; }
.message.failed { border-color: #d62728; background: #fdecec; }
.workload { margin-top: 8px; }
.figs { color: #3b4650; font-size: 13px; margin: 2px 0 6px; }
svg { display: block; max-width: 100%; height: auto; margin: 4px 0 10px; background: #fff; }
svg text { font: 11px ui-monospace, "DejaVu Sans Mono", monospace; fill: #1d2630; }
svg text.title, svg text.name, svg text.panel { font-weight: 700; }
svg text.muted { fill: #7a858f; }
svg text.small { fill: #3b4650; }
svg text.error { fill: #d62728; }
svg text.badge { fill: #fff; font-size: 9.5px; font-weight: 700; }
svg text.on-dark { fill: #fff; }
svg text.on-light { fill: #1d2630; }
svg text.tick { fill: #3b4650; font-size: 10.5px; }
svg .axis { stroke: #3b4650; stroke-width: 1; }
svg .grid { stroke: #e3e8ed; stroke-width: 1; }
svg .break-mark { stroke: #3b4650; stroke-width: 1.5; fill: none; }
svg .link { stroke: #8793a0; stroke-width: 1.5; fill: none; }
svg .unit-box { fill: #eaf2fb; stroke: #1f77b4; stroke-width: 1.5; }
svg .unit.down .unit-box { fill: #fdecec; stroke: #d62728; stroke-dasharray: 5 3; }
svg .dev-box { fill: #fff; stroke: #5b6670; stroke-width: 1.2; }
svg .device.orphan .dev-box { fill: #f4f6f8; stroke-dasharray: 4 3; }
svg rect.step { fill: transparent; }
svg rect.step:hover { fill: #eef1f4; }
svg .range:hover rect { stroke: #1d2630; stroke-width: 1.5; }
table.ranges { border-collapse: collapse; font-size: 11.5px; margin: -4px 0 10px; }
table.ranges td, table.ranges th { padding: 1px 8px 1px 0; text-align: left; }
table.ranges td.mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
footer { color: #7a858f; font-size: 12px; text-align: center; }
`;

/** The page template (eta syntax, data variable `it`: a `ReportModel` of output/report.ts). */
export const REPORT_TEMPLATE = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>iommu-sim report — seed <%= it.seed %></title>
<style><%~ it.css %></style>
</head>
<body>
<header>
<h1>iommu-sim report</h1>
<p>seed <%= it.seed %> · <%= it.platforms.length %> platform<%= it.platforms.length === 1 ? '' : 's' %> · <%= it.totals %> · node <%= it.host.node %> on <%= it.host.platform %>, <%= it.host.cpus %> CPUs</p>
</header>
<main>
<% for (const p of it.platforms) { %>
<section class="platform" id="<%= p.id %>" data-platform="<%= p.name %>">
<h2><%= p.name %></h2>
<p class="sub"><%= p.subtitle %></p>
<h3>Topology</h3>
<%~ p.topologySvg %>
<% if (p.notes.length > 0) { %><ul class="notes"><% for (const n of p.notes) { %><li><%= n %></li><% } %></ul><% } %>
<h3>Summary</h3>
<table class="summary">
<thead><tr><th>workload</th><th>status</th><th>DMA req</th><th>bytes</th><th>IOTLB hit</th><th>walks</th><th>faults by type</th><th>page req / resp</th><th>invalidations by type</th><th>peak pinned</th><th>wall ms</th></tr></thead>
<tbody>
<% for (const r of p.rows) { %>
<tr><td class="l"><a href="#<%= r.id %>"><%= r.workload %></a></td><td class="l"><span class="status <%= r.status %>"><%= r.status %></span></td>
<% if (r.status === 'skipped') { %><td class="l" colspan="9"><%= r.message %></td><% } else { %>
<td><%= r.cells.dma %></td><td><%= r.cells.bytes %></td><td><%= r.cells.hit %></td><td><%= r.cells.walks %></td><td class="tally"><%= r.cells.faults %></td><td><%= r.cells.prq %></td><td class="tally"><%= r.cells.inv %></td><td><%= r.cells.pinned %></td><td><%= r.cells.wall %></td>
<% } %></tr>
<% } %>
</tbody>
</table>
<% for (const r of p.rows) { %>
<div class="workload" id="<%= r.id %>" data-workload="<%= r.workload %>" data-status="<%= r.status %>">
<h3><%= r.workload %> <span class="status <%= r.status %>"><%= r.status %></span></h3>
<% if (r.message !== null) { %><div class="message <%= r.status %>"><%= r.message %></div><% } %>
<% if (r.status !== 'skipped') { %>
<p class="figs"><%= r.details %></p>
<h4>IOVA spaces</h4>
<% if (r.spaces.length === 0) { %><p class="sub">no I/O address space recorded</p><% } %>
<% for (const s of r.spaces) { %>
<%~ s.svg %>
<table class="ranges"><tr><th>mapping</th><th>IOVA</th><th>size</th><th>mapped at</th><th>unmapped at</th></tr>
<% for (const g of s.rows) { %><tr><td><%= g.label %></td><td class="mono"><%= g.range %></td><td><%= g.size %></td><td><%= g.mapped %></td><td><%= g.unmapped %></td></tr><% } %>
<% if (s.more > 0) { %><tr><td colspan="5">+<%= s.more %> more (hover the bars)</td></tr><% } %>
</table>
<% } %>
<h4>Faults and invalidations per step</h4>
<%~ r.timelineSvg %>
<% } %>
</div>
<% } %>
</section>
<% } %>
<footer>generated by iommu-sim · format version <%= it.version %></footer>
</main>
</body>
</html>
`;
