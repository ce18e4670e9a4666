/** The built-in workloads, in the order `run` uses them by default. */

import { dmaApi } from './dma-api.js';
import { iommufdDpdk } from './iommufd-dpdk.js';
import { svaAccelerator } from './sva-accelerator.js';
import { vfioPassthrough } from './vfio-passthrough.js';
import type { Workload } from './workload.js';

/** @returns the built-in workloads */
export function builtinWorkloads(): readonly Workload[] {
  return [vfioPassthrough, iommufdDpdk, svaAccelerator, dmaApi];
}

/**
 * @param name - a workload name
 * @returns the built-in workload of that name, or `undefined`
 */
export function findBuiltinWorkload(name: string): Workload | undefined {
  return builtinWorkloads().find((w) => w.name === name);
}
