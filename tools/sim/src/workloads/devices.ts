/**
 * Choosing the endpoint a workload drives: by name (`nic0`) or by role (`nic`), with the
 * capabilities the flow needs.
 */

import { devIsDmaCoherent, IommuCap } from '@iommu-ts/iommu-core';
import type { EndpointRole, SimEndpoint, SimMachine } from '../machine/machine.js';

/** Capabilities a flow needs from its endpoint. */
export interface EndpointNeeds {
  /** PCI ATS. */
  readonly ats?: boolean;
  /** PASID. */
  readonly pasid?: boolean;
  /** PRI. */
  readonly pri?: boolean;
  /** Stall model. */
  readonly stall?: boolean;
  /** Must be a PCI function (VFIO and iommufd device binding need one). */
  readonly pci?: boolean;
}

const ROLES: readonly EndpointRole[] = ['nic', 'nvme', 'accel', 'stall-accel', 'device'];

function lacks(ep: SimEndpoint, needs: EndpointNeeds): string | null {
  const missing: string[] = [];
  if (needs.ats === true && !ep.ats) missing.push('ATS');
  if (needs.pasid === true && !ep.pasid) missing.push('PASID');
  if (needs.pri === true && !ep.pri) missing.push('PRI');
  if (needs.stall === true && !ep.stall) missing.push('stall');
  if (needs.pci === true && ep.device.busType !== 'pci') missing.push('a PCI function');
  return missing.length === 0 ? null : missing.join(', ');
}

/**
 * The endpoints a role selector may pick, best first: those of the role; for `nic` and `nvme`
 * (flows any DMA master can carry) followed by the devices the firmware table lists, so a real
 * platform whose scopes name devices but leave no room for added ones still runs the flows on its
 * own devices (a flow that needs a PCI function says so in its needs).
 */
function candidates(machine: SimMachine, role: string): SimEndpoint[] {
  const own = machine.endpoints.filter((e) => e.role === role);
  if (role !== 'nic' && role !== 'nvme') return own;
  const fw = machine.endpoints.filter((e) => e.role !== role && e.fromFirmware);
  // 00:00.0 is the host bridge on PC platforms (QEMU q35's DMAR scopes name it): last resort.
  const hostBridge = (e: SimEndpoint): boolean => e.device.busType === 'pci' && e.ids[0] === 0;
  return [...own, ...fw.filter((e) => !hostBridge(e)), ...fw.filter(hostBridge)];
}

/**
 * Find an endpoint.
 * @param machine - the machine
 * @param selector - an endpoint name (`nic1`), or a role (`nic`: the first endpoint of that role
 *   that has the needed capabilities; for `nic` / `nvme`, else a PCI function the firmware lists)
 * @param needs - capabilities required
 * @returns the endpoint, or a one-line reason why none fits
 */
export function selectEndpoint(
  machine: SimMachine,
  selector: string,
  needs: EndpointNeeds = {},
): SimEndpoint | string {
  const byName = machine.endpoints.find((e) => e.name === selector);
  if (byName !== undefined) {
    const l = lacks(byName, needs);
    return l === null ? byName : `device ${selector} lacks ${l}`;
  }
  if (!(ROLES as readonly string[]).includes(selector)) return `the platform has no device named ${selector}`;
  const ofRole = candidates(machine, selector);
  if (ofRole.length === 0) return `the platform has no ${selector} device`;
  const fit = ofRole.find((e) => lacks(e, needs) === null);
  if (fit !== undefined) return fit;
  return `no ${selector} device of the platform has ${lacks(ofRole[0] as SimEndpoint, needs) ?? ''}`.trim();
}

/**
 * Find several distinct endpoints (e.g. two devices sharing one IOAS).
 * @param machine - the machine
 * @param selectors - one selector per endpoint wanted
 * @param needs - capabilities each must have
 * @returns the endpoints (distinct), or a one-line reason
 */
export function selectEndpoints(
  machine: SimMachine,
  selectors: readonly string[],
  needs: EndpointNeeds = {},
): SimEndpoint[] | string {
  const out: SimEndpoint[] = [];
  for (const sel of selectors) {
    const taken = new Set(out.map((e) => e.name));
    const byName = machine.endpoints.find((e) => e.name === sel);
    if (byName !== undefined) {
      if (taken.has(byName.name)) return `device ${sel} is named twice`;
      const l = lacks(byName, needs);
      if (l !== null) return `device ${sel} lacks ${l}`;
      out.push(byName);
      continue;
    }
    if (!(ROLES as readonly string[]).includes(sel)) return `the platform has no device named ${sel}`;
    const fit = candidates(machine, sel).find((e) => !taken.has(e.name) && lacks(e, needs) === null);
    if (fit === undefined)
      return `the platform has no further ${sel} device${Object.keys(needs).length ? ' with what the flow needs' : ''}`;
    out.push(fit);
  }
  return out;
}

/**
 * Why user-space DMA (VFIO, iommufd) cannot take a device, as Linux decides at device bind: the
 * device's DMA must be cache coherent and its IOMMU must enforce coherency
 * (`IOMMU_CAP_CACHE_COHERENCY`); an SoC with a non-coherent SMMU (no `dma-coherent`) is refused.
 * @param machine - the machine
 * @param ep - the endpoint
 * @returns `null` when it can be used, else a one-line reason
 */
export function userDmaRefusal(machine: SimMachine, ep: SimEndpoint): string | null {
  if (!devIsDmaCoherent(ep.device))
    return `device ${ep.name} does not do cache-coherent DMA (VFIO and iommufd refuse it, as Linux does)`;
  if (!machine.iommu.deviceIommuCapable(ep.device, IommuCap.CACHE_COHERENCY))
    return `the IOMMU of device ${ep.name} does not enforce cache coherency (VFIO and iommufd refuse it, as Linux does)`;
  return null;
}
