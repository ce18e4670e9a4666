/**
 * Test-only hooks of the deterministic simulation: they plant a bug in the machine (through the
 * objects it exposes, never by editing a package) so the tests can prove the invariants catch it,
 * and carry the RAM slack the teardown check allows.
 */

import type { SimMachine } from '@iommu-ts/sim';

/** Hooks of one run. */
export interface DstHooks {
  /** Called once the machine is built, before any step (plant a bug here). */
  readonly onBuild?: (machine: SimMachine) => void;
  /**
   * RAM pages allowed beyond the baseline taken right after the machine was built (before any
   * process). Measured 0 over thousands of seeds: the VT-d and SMMUv3 drivers free their PASID and
   * CD tables, and the IOMMU page tables, with the last domain/PASID that used them.
   */
  readonly ramSlack: number;
}

/** No planted bug, no RAM slack. */
export const noHooks: DstHooks = { ramSlack: 0 };

/**
 * A device whose ATC ignores invalidations (drops no entry but still answers): after an unmap the
 * device keeps reaching the old page. Planted on `nic0` (the iommufd device, ATS capable).
 * @param name - the endpoint to break
 */
export function atcIgnoresInvalidation(name = 'nic0'): DstHooks {
  return {
    ramSlack: noHooks.ramSlack,
    onBuild(machine) {
      const ep = machine.endpoints.find((e) => e.name === name);
      if (ep === undefined) return;
      ep.endpoint.atc.invalidate = () => 0;
    },
  };
}
