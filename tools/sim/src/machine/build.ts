/** Build a machine from any platform description. */

import type { BuildOptions, PlatformDescription } from '../platform/platform.js';
import type { SimMachine } from './machine.js';
import { buildSmmuMachine } from './smmu-machine.js';
import { buildVtdMachine } from './vtd-machine.js';

/**
 * Build a machine: RAM, one hardware model and driver per IOMMU unit of the table, the IOMMU core
 * with DMA ops, and endpoints for the devices.
 * @param desc - the platform
 * @param options - seed and RAM size
 * @returns the machine
 * @throws Error with a one-line message when the description cannot be built
 */
export function buildMachine(desc: PlatformDescription, options: BuildOptions): SimMachine {
  return desc.kind === 'vtd' ? buildVtdMachine(desc, options) : buildSmmuMachine(desc, options);
}
