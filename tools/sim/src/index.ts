/**
 * iommu-sim as a library: build machines from platform descriptions, run workloads on them, and
 * render the figures. The `iommu-sim` command (cli.ts) is a thin layer over this.
 * @packageDocumentation
 */

export { buildMachine } from './machine/build.js';
export type {
  EndpointRole,
  MachineCounters,
  PlatformKind,
  PlatformSource,
  SimEndpoint,
  SimMachine,
  SimProcessOptions,
  SimUnit,
  TopologyDevice,
  TopologyReservedRegion,
  TopologyUnit,
  TopologyView,
  UnitCounters,
} from './machine/machine.js';
export type { CliIo } from './main.js';
export { main, UsageError } from './main.js';
export { DataMismatchError, Recorder } from './metrics/recorder.js';
export type {
  IovaRange,
  IovaSpace,
  RunResult,
  TimelineEntry,
  WorkloadFigures,
  WorkloadResult,
} from './metrics/results.js';
export { toJson } from './output/json.js';
export { runResultSchema, validateRunJson } from './output/json-schema.js';
export { renderReport } from './output/report.js';
export { formatSummary, formatTopology } from './output/summary-table.js';
export { defaultPlatforms } from './platform/builtin.js';
export { loadPlatform, PlatformError, parsePlatform } from './platform/load.js';
export type {
  BuildOptions,
  DmarPlatform,
  DtPlatform,
  IortPlatform,
  PlatformDescription,
} from './platform/platform.js';
export type { PlannedWorkload, RunHooks, RunPlan } from './run.js';
export { inspectPlatform, runOne, runPlan } from './run.js';
export { builtinWorkloads, findBuiltinWorkload } from './workloads/registry.js';
export { Rng } from './workloads/rng.js';
export type {
  Workload,
  WorkloadContext,
  WorkloadParam,
  WorkloadParamSchema,
  WorkloadParams,
} from './workloads/workload.js';
export { parseWorkloadFile, WorkloadFileError } from './workloads/workload-file.js';
