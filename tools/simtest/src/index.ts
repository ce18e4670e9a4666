/**
 * simtest as a library: deterministic simulation, uAPI fuzzing and fail_nth fault injection over
 * the whole @iommu-ts stack.
 * @packageDocumentation
 */

export { runDst } from './dst/run.js';
export { runFailNth } from './failnth/run.js';
export { runFuzz } from './fuzz/run.js';
export { CI_BUDGET, main, type SimtestIo } from './main.js';
export type {
  DstFailure,
  DstReport,
  FailNthFlowReport,
  FailNthReport,
  FuzzIoctlReport,
  FuzzReport,
} from './report.js';
