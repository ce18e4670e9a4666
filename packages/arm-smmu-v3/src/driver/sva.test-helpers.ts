/**
 * A machine for the SVA tests: an arm64 `Machine` (processes, CPU ASIDs, TLB broadcast) whose RAM
 * the SMMUv3 model walks, the driver probed / reset / registered on it with wired interrupt lines,
 * PCI functions (PASID, PRI, optional ATS) and stall-capable platform devices, and a decoder of
 * the commands the driver queued. Test-only (imports src/hw/).
 */

import { Scheduler } from '@iommu-ts/base';
import {
  Endpoint,
  IOMMU_FWSPEC_PCI_RC_ATS,
  IommuDevFeature,
  IommuSubsystem,
  type PciDevice,
  PciHostBridge,
  PlatformDevice,
} from '@iommu-ts/iommu-core';
import { Machine, type TlbiOp } from '@iommu-ts/mm';
import { SmmuV3Model } from '../hw/smmu.js';
import type { SmmuHwConfig } from '../hw/smmu-config.js';
import { makeTestMemory } from '../hw/test-helpers.js';
import type { ArmSmmuDevice, ArmSmmuDriverOptions } from './arm-smmu-device.js';
import { armSmmuDeviceProbe } from './arm-smmu-ops.js';
import { CMDQ_OP } from './regs.js';
import { type ArmSmmuSvaAsidMode, armSmmuSvaConfigure } from './sva.js';

const OP_NAMES = new Map<number, string>(Object.entries(CMDQ_OP).map(([k, v]) => [v as number, k]));
OP_NAMES.set(0, 'CMD_SYNC');

/** Options of {@link svaMachine}. */
export interface SvaMachineOptions {
  /** Model configuration. */
  config?: Partial<SmmuHwConfig>;
  /** Driver options. */
  options?: ArmSmmuDriverOptions;
  /** ASID design (default private). */
  asidMode?: ArmSmmuSvaAsidMode;
}

/** Build the machine. */
export function svaMachine(o: SvaMachineOptions = {}) {
  const memory = makeTestMemory(128);
  const machine = new Machine({ memory });
  const scheduler = new Scheduler();
  const lines = {
    evtq: scheduler.createIrqLine('evtq'),
    priq: scheduler.createIrqLine('priq'),
    gerror: scheduler.createIrqLine('gerror'),
  };
  // The model listens to the CPUs' broadcast TLBIs itself when the configuration has BTM.
  const model = new SmmuV3Model({
    memory,
    scheduler,
    config: o.config ?? {},
    irqs: lines,
    tlbBroadcast: machine.tlb,
  });
  const sub = new IommuSubsystem();
  const fwnode = { name: 'smmu0' };
  const smmu: ArmSmmuDevice = armSmmuDeviceProbe({
    iommu: sub,
    mmio: model.mmio,
    memory,
    scheduler,
    irqs: lines,
    fwnode,
    coherent: true,
    // The seed's shared ASIDs go with broadcast TLB maintenance (reset then leaves CR2.PTM clear).
    options: o.options ?? { maxQueueLog2: 8, btm: o.asidMode === 'shared' },
  });
  armSmmuSvaConfigure(smmu, { asidMode: o.asidMode ?? 'private' });
  const tlbiSeen: TlbiOp[] = [];
  // Every broadcast TLBI the CPUs publish, for assertions (recording only).
  machine.tlb.subscribe((op) => {
    tlbiSeen.push(op);
  });
  const hb = new PciHostBridge();
  let mark = smmu.cmdq.prod;
  const m = {
    memory,
    machine,
    scheduler,
    model,
    sub,
    smmu,
    fwnode,
    hb,
    lines,
    tlbiSeen,
    /** A PCI function with PASID (8 bits), PRI (32 requests), optional ATS; probed; SID = devfn. */
    pci(devfn: number, caps: { ats?: boolean; pri?: boolean } = {}): { pdev: PciDevice; ep: Endpoint } {
      const pdev = hb.rootBus.addDevice({
        devfn,
        acs: { cap: 0x1f, ctrl: 0x1f },
        ...(caps.ats ? { ats: {} } : {}),
        ...(caps.pri === false ? {} : { pri: { maxRequests: 32, prgResponsePasidRequired: true } }),
        pasid: { maxPasidWidth: 8 },
      });
      sub.iommuFwspecInit(pdev, fwnode);
      sub.iommuFwspecAddIds(pdev, [devfn]);
      const fw = pdev.iommu?.fwspec;
      if (fw && caps.ats) fw.flags |= IOMMU_FWSPEC_PCI_RC_ATS;
      const err = sub.addDevice(pdev);
      if (err) throw err;
      const ep = new Endpoint({ device: pdev, iommu: model, scheduler, requesterId: devfn });
      return { pdev, ep };
    },
    /** A `dma-can-stall` platform device with `pasid-num-bits` = 8 and one StreamID; probed. */
    platform(name: string, sid: number, canStall = true): { dev: PlatformDevice; ep: Endpoint } {
      const dev = new PlatformDevice(name, { dmaCanStall: canStall, pasidNumBits: 8, firmwareIds: [sid] });
      sub.iommuFwspecInit(dev, fwnode);
      sub.iommuFwspecAddIds(dev, [sid]);
      const err = sub.addDevice(dev);
      if (err) throw err;
      const ep = new Endpoint({ device: dev, iommu: model, scheduler, requesterId: sid });
      return { dev, ep };
    },
    /** What a device driver does before binding: enable IOPF, then SVA. */
    enableSva(dev: PciDevice | PlatformDevice): void {
      sub.iommuDevEnableFeature(dev, IommuDevFeature.IOPF);
      sub.iommuDevEnableFeature(dev, IommuDevFeature.SVA);
    },
    /** Commands the driver queued since the last call, as opcode names. */
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
