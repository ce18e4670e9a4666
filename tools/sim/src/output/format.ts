/**
 * Small text helpers shared by the summary table, `inspect` output and the HTML report: hex
 * addresses, human byte sizes, compact tallies and HTML/XML escaping.
 */

/**
 * Format an address or ID as lower-case hex with a `0x` prefix.
 * @param value - a non-negative integer (number or bigint); negative bigints keep their sign
 * @returns e.g. `0xfed90000`
 */
export function hex(value: bigint | number): string {
  const v = typeof value === 'bigint' ? value : BigInt(value);
  return v < 0n ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/**
 * Format a byte count in binary units.
 * @param bytes - count (number or bigint)
 * @returns `512 B`, `4 KiB`, `1.5 MiB`… (one decimal below 10 units, none above)
 */
export function humanBytes(bytes: bigint | number): string {
  let v = typeof bytes === 'bigint' ? Number(bytes) : bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  if (i === 0) return `${v} B`;
  const digits = Math.abs(v) < 10 && !Number.isInteger(v) ? 1 : 0;
  return `${v.toFixed(digits)} ${UNITS[i]}`;
}

/**
 * Entries of a tally, largest count first, ties by name; zero counts dropped.
 * @param tally - counts by name
 * @returns `[name, count]` pairs
 */
export function sortedTally(tally: Readonly<Record<string, number>>): Array<[string, number]> {
  return Object.entries(tally)
    .filter(([, n]) => n !== 0)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/**
 * A tally as `name:count` words, largest first, at most `limit` of them then `+N more`.
 * @param tally - counts by name
 * @param limit - how many names to show (default: all)
 * @returns e.g. `TLBI_NH_VA:12 CMD_SYNC:12 +2 more`, or `-` when empty
 */
export function compactTally(
  tally: Readonly<Record<string, number>>,
  limit = Number.POSITIVE_INFINITY,
): string {
  const e = sortedTally(tally);
  if (e.length === 0) return '-';
  const shown = e.slice(0, limit).map(([k, n]) => `${k}:${n}`);
  if (e.length > limit) shown.push(`+${e.length - limit} more`);
  return shown.join(' ');
}

/**
 * Merge tallies key by key.
 * @param tallies - the tallies
 * @returns a new tally
 */
export function mergeTallies(
  ...tallies: ReadonlyArray<Readonly<Record<string, number>>>
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of tallies) for (const [k, n] of Object.entries(t)) out[k] = (out[k] ?? 0) + n;
  return out;
}

/**
 * Escape text for HTML and XML (element content and quoted attribute values).
 * @param text - any text
 * @returns the text with `&`, `<`, `>`, `"` and `'` replaced by entities
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;',
  );
}

/**
 * A percentage with one decimal.
 * @param ratio - between 0 and 1, or `null`
 * @returns `97.3%`, or `-` for `null`
 */
export function percent(ratio: number | null): string {
  return ratio === null ? '-' : `${(ratio * 100).toFixed(1)}%`;
}
