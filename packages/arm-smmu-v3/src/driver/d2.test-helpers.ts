/**
 * A machine for the D2 end-to-end tests: RAM, scheduler, the SMMUv3 hardware model, the driver
 * probed / reset / registered on it, a PCI host bridge, and a decoder of the commands the driver
 * put on the command queue. Test-only (imports src/hw/).
 */

import { Scheduler } from '@iommu-ts/base';
import {
  Endpoint,
  IOMMU_FWSPEC_PCI_RC_ATS,
  IommuSubsystem,
  type PciDevice,
  PciHostBridge,
} from '@iommu-ts/iommu-core';
import { SmmuV3Model } from '../hw/smmu.js';
import type { SmmuHwConfig } from '../hw/smmu-config.js';
import { makeTestMemory } from '../hw/test-helpers.js';
import type { ArmSmmuDevice, ArmSmmuDriverOptions } from './arm-smmu-device.js';
import { armSmmuDeviceProbe } from './arm-smmu-ops.js';
import { CMDQ_OP } from './regs.js';

const OP_NAMES = new Map<number, string>(Object.entries(CMDQ_OP).map(([k, v]) => [v as number, k]));
// An MSI-polled CMD_SYNC completes by the SMMU writing 0 over the low word of its own slot.
OP_NAMES.set(0, 'CMD_SYNC');

/** Build the machine. */
export function d2Machine(config: Partial<SmmuHwConfig> = {}, options: ArmSmmuDriverOptions = {}) {
  const memory = makeTestMemory(64);
  const scheduler = new Scheduler();
  const model = new SmmuV3Model({ memory, scheduler, config });
  const sub = new IommuSubsystem();
  const fwnode = { name: 'smmu0' };
  const smmu: ArmSmmuDevice = armSmmuDeviceProbe({
    iommu: sub,
    mmio: model.mmio,
    memory,
    scheduler,
    fwnode,
    coherent: true,
    options,
  });
  const hb = new PciHostBridge();
  let mark = smmu.cmdq.prod;
  const m = {
    memory,
    scheduler,
    model,
    sub,
    smmu,
    fwnode,
    hb,
    /** Add a PCI function on the root bus with the SMMU's fwspec (SID = `caps.sid`, default the RID) and probe it. */
    pci(
      devfn: number,
      caps: { ats?: boolean; pasidBits?: number; sid?: number } = {},
    ): { pdev: PciDevice; ep: Endpoint } {
      const pdev = hb.rootBus.addDevice({
        devfn,
        ...(caps.ats ? { ats: {} } : {}),
        ...(caps.pasidBits ? { pasid: { maxPasidWidth: caps.pasidBits } } : {}),
      });
      sub.iommuFwspecInit(pdev, fwnode);
      const sid = caps.sid ?? devfn;
      sub.iommuFwspecAddIds(pdev, [sid]);
      const fw = pdev.iommu?.fwspec;
      if (fw && caps.ats) fw.flags |= IOMMU_FWSPEC_PCI_RC_ATS;
      const err = sub.addDevice(pdev);
      if (err) throw err;
      const ep = new Endpoint({ device: pdev, iommu: model, scheduler, requesterId: sid });
      return { pdev, ep };
    },
    /** Commands the driver queued since the last call, as opcode names (read back from the queue in RAM). */
    cmds(): string[] {
      const q = smmu.cmdq;
      const out: string[] = [];
      const size = 1 << q.log2;
      const wrapMask = (2 << q.log2) - 1;
      let p = mark;
      while ((p & wrapMask) !== (q.prod & wrapMask)) {
        const idx = p & (size - 1);
        const d0 = memory.read64(q.pa + idx * 16);
        out.push(OP_NAMES.get(Number(d0 & 0xffn)) ?? `op${Number(d0 & 0xffn)}`);
        p = (p + 1) & wrapMask;
      }
      mark = q.prod;
      return out;
    },
  };
  return m;
}

/** Count each opcode name in a list. */
export function countOps(cmds: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of cmds) out[c] = (out[c] ?? 0) + 1;
  return out;
}
