/**
 * A machine for the SVA tests: a VT-d model in scalable mode with PRS, an `IntelIommu` brought up
 * with `intelIommuOps` plus the SVA ops of svm.ts, PCI functions with PASID, ATS and PRI, x86-64
 * processes on the same RAM, and the descriptor log of the unit. Test-only (imports src/hw/).
 */

import {
  Endpoint,
  IommuDevFeature,
  IommuSubsystem,
  type PciDevice,
  PciHostBridge,
} from '@iommu-ts/iommu-core';
import { Process } from '@iommu-ts/mm';
import type { VtdHwConfig } from '../hw/vtd-config.js';
import type { IntelIommuDriverOptions } from './intel-iommu.js';
import { intelIommuOps } from './intel-iommu-ops.js';
import { intelIommuSvaOps } from './svm.js';
import { unitHarness } from './unit.test-helpers.js';
import { descStr } from './vd2.test-helpers.js';

void IommuSubsystem;

/** Options of {@link svaMachine}. */
export interface SvaMachineOptions {
  /** Model configuration overrides. */
  readonly config?: Partial<VtdHwConfig>;
  /** Driver options. */
  readonly options?: IntelIommuDriverOptions;
}

/** Capabilities of a test function. */
export interface SvaPciCaps {
  /** ATS capability (default true). */
  readonly ats?: boolean;
  /** PRI capability (default true). */
  readonly pri?: boolean;
  /** PRG response carries the PASID (default true; probe enables PRI only then). */
  readonly prgPasid?: boolean;
  /** PASID width (default 8). */
  readonly pasidBits?: number;
}

/**
 * Build the machine: unit probed, initialised, registered with the SVA ops, TE on.
 *
 * The model's CAP.MAMV stays at its default (18): a PASID-based flush wider than that (the mm
 * frees page tables with ranges of 2^27 pages) falls back to a PASID-selective flush in the driver.
 */
export function svaMachine(o: SvaMachineOptions = {}) {
  const h = unitHarness({
    config: { ...o.config },
    ...(o.options === undefined ? {} : { options: o.options }),
  });
  const { unit, vtd, core, memory, scheduler } = h;
  unit.probe();
  unit.initDmar();
  unit.register(intelIommuOps(unit, intelIommuSvaOps));
  unit.enableTranslation();
  const hb = new PciHostBridge();
  let mark = vtd.iq.log.length;
  return {
    ...h,
    hb,
    /** A PCI function on the root bus, probed behind the unit, with an endpoint. */
    pci(devfn: number, caps: SvaPciCaps = {}): { pdev: PciDevice; ep: Endpoint } {
      const pdev = hb.rootBus.addDevice({
        devfn,
        acs: { cap: 0x1f, ctrl: 0x1f },
        ...(caps.ats === false ? {} : { ats: { pageAlignedRequest: true, invQueueDepth: 0 } }),
        ...(caps.pri === false
          ? {}
          : { pri: { maxRequests: 32, prgResponsePasidRequired: caps.prgPasid ?? true } }),
        pasid: { maxPasidWidth: caps.pasidBits ?? 8 },
      });
      core.iommuFwspecInit(pdev, unit.fwnode ?? { name: 'dmar0' });
      core.iommuFwspecAddIds(pdev, [pdev.requesterId]);
      const err = core.addDevice(pdev);
      if (err) throw err;
      const ep = new Endpoint({ device: pdev, iommu: vtd, scheduler, requesterId: pdev.requesterId });
      return { pdev, ep };
    },
    /** An x86-64 process on the machine's RAM. */
    process(): Process {
      return new Process(memory, { arch: 'x86_64' });
    },
    /** What a device driver did before binding (≤ v6.14): enable IOPF, then SVA. */
    enableSva(dev: PciDevice): void {
      core.iommuDevEnableFeature(dev, IommuDevFeature.IOPF);
      core.iommuDevEnableFeature(dev, IommuDevFeature.SVA);
    },
    /** Descriptors executed since the last call (wait descriptors dropped unless `waits`). */
    descs(waits = false): string[] {
      const out = vtd.iq.log.slice(mark).map(descStr);
      mark = vtd.iq.log.length;
      return waits ? out : out.filter((s) => s !== 'wait');
    },
    /** Raw descriptors executed since index `from` of the model's log. */
    rawSince(from: number) {
      return vtd.iq.log.slice(from);
    },
  };
}

/** The machine type. */
export type SvaMachine = ReturnType<typeof svaMachine>;
