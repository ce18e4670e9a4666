export { BigIntIntervalTree } from './bigint-interval-tree.js';
export { IntervalTree } from './interval-tree.js';
export { IntervalTreeBase } from './interval-tree-base.js';
export type { IntervalKey, IntervalTreeNode } from './node.js';
export { type IntervalTreeSpan, IntervalTreeSpanIter, type SpanIterSource } from './span-iter.js';
