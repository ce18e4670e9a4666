// Markdown tables for the bench suites' console output.

/**
 * Print `table` (first row the header) as a Markdown table with padded columns, after a blank line.
 * @param table - rows of cells; every row has the header's length
 */
export function printTable(table: readonly (readonly string[])[]): void {
  const header = table[0] ?? [];
  const widths = header.map((_, c) => Math.max(...table.map((row) => (row[c] ?? '').length)));
  const line = (row: readonly string[]): string =>
    `| ${row.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join(' | ')} |`;
  console.log('');
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of table.slice(1)) console.log(line(row));
}

/**
 * Run `fn(n)` once at n/10 (warm-up), then `rounds` times at `n`; the best time per op.
 * @param rounds - timed runs
 * @param n - ops per timed run
 * @param fn - does `n` ops
 * @returns nanoseconds per op of the fastest run
 */
export function bestNsPerOp(rounds: number, n: number, fn: (n: number) => void): number {
  fn(Math.max(1, Math.floor(n / 10)));
  let bestNs = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    fn(n);
    const ns = ((performance.now() - t0) * 1e6) / n;
    if (ns < bestNs) bestNs = ns;
  }
  return bestNs;
}
