// Shared test scaffolding: a naive array model of an interval tree and its span iteration, kept
// in bigint so one model serves both key kinds.

import type { IntervalKey } from './node.js';

/** One interval in the model, in bigint, with the node the tree returned for it. */
export interface ModelEntry<N> {
  start: bigint;
  last: bigint;
  node: N;
}

/** The model's spans of `[first, last]`, as `[isHole, start, last]` triples. */
export function modelSpans(
  intervals: ReadonlyArray<{ start: bigint; last: bigint }>,
  first: bigint,
  last: bigint,
): Array<[boolean, bigint, bigint]> {
  const hits = intervals
    .filter((e) => e.start <= last && first <= e.last)
    .map((e) => [e.start < first ? first : e.start, e.last > last ? last : e.last] as [bigint, bigint])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const runs: Array<[bigint, bigint]> = [];
  for (const [s, l] of hits) {
    const top = runs[runs.length - 1];
    if (top !== undefined && s <= top[1] + 1n) {
      if (l > top[1]) top[1] = l;
    } else {
      runs.push([s, l]);
    }
  }
  const out: Array<[boolean, bigint, bigint]> = [];
  let at = first;
  for (const [s, l] of runs) {
    if (s > at) out.push([true, at, s - 1n]);
    out.push([false, s, l]);
    at = l + 1n;
  }
  if (at <= last) out.push([true, at, last]);
  return out;
}

/** Entries overlapping `[start, last]`, ascending by start, equal starts in insertion order. */
export function modelOverlaps<N>(entries: ReadonlyArray<ModelEntry<N>>, start: bigint, last: bigint): N[] {
  return sortedByStart(entries.filter((e) => e.start <= last && start <= e.last)).map((e) => e.node);
}

/** Stable sort by start (Array.prototype.sort is stable), keeping insertion order for ties. */
export function sortedByStart<N>(entries: ReadonlyArray<ModelEntry<N>>): Array<ModelEntry<N>> {
  return [...entries].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
}

/** Convert a key of either kind to bigint. */
export function big(k: IntervalKey): bigint {
  return typeof k === 'bigint' ? k : BigInt(k);
}
