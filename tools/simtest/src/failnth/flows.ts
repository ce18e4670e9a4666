/**
 * Every flow of the fail_nth harness: iommufd, VFIO (the iommufd-provided container) and
 * `/dev/ioasid`.
 */

import type { FailNthFlow } from './flow.js';
import { ioasidFlows } from './ioasid-flows.js';
import { iommufdFlows } from './iommufd-flows.js';
import { vfioFlows } from './vfio-flows.js';

/** Every flow, in report order (a fresh list each call). */
export function failNthFlows(): FailNthFlow[] {
  return [...iommufdFlows(), ...vfioFlows(), ...ioasidFlows()];
}
