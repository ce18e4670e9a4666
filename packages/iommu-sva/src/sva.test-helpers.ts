// Shared set-up for iommu-sva tests: an arm64 machine, the test IOMMU with its hardware side,
// PCI functions with PASID, ATS and PRI enabled and on an IOPF queue, Endpoints to DMA with.

import { Scheduler } from '@iommu-ts/base';
import { iommuReportDeviceFault, iopfQueueAddDevice, iopfQueueAlloc } from '@iommu-ts/io-pgfault';
import {
  type Device,
  Endpoint,
  IommuSubsystem,
  type PciDevice,
  PciHostBridge,
  pciEnableAts,
  pciEnablePasid,
  pciEnablePri,
} from '@iommu-ts/iommu-core';
import { TestIommu, TestIommuHw } from '@iommu-ts/iommu-core/testing';
import { Machine } from '@iommu-ts/mm';

export interface FnOptions {
  pasidBits?: number;
  pri?: boolean;
  enablePasid?: boolean;
  acs?: boolean;
  /** Put the function in slot 4 of a multifunction device (devfn 0x20 + n). */
  multifunction?: number;
}

export function setup(opts: { seed?: number; maxPasids?: number } = {}) {
  const machine = new Machine({ memory: { size: 256 * 2 ** 20 } });
  const sched = new Scheduler(opts.seed === undefined ? {} : { seed: opts.seed });
  const sub = new IommuSubsystem();
  const drv = new TestIommu({
    memory: machine.memory,
    ...(opts.maxPasids ? { maxPasids: opts.maxPasids } : {}),
  });
  drv.register(sub);
  const hw = new TestIommuHw(drv, machine.memory);
  const record = drv.ops.pageResponse!;
  drv.ops.pageResponse = (dev, evt, msg) => {
    record(dev, evt, msg);
    hw.pageResponse(dev, msg);
  };
  hw.onFault = (dev, fault) => sched.spawn(() => iommuReportDeviceFault(dev, fault), 'prq-thread');
  const queue = iopfQueueAlloc('test-iommu', { scheduler: sched });
  const hb = new PciHostBridge();
  let nextFn = 0;
  const fn = (o: FnOptions = {}): PciDevice => {
    const pdev = hb.rootBus.addDevice({
      devfn: o.multifunction === undefined ? 0x30 + 8 * nextFn++ : 0x20 + o.multifunction,
      ...(o.multifunction === undefined ? {} : { multifunction: true }),
      ...(o.acs === false ? {} : { acs: { cap: 0x1f, ctrl: 0x1f } }),
      ats: {},
      ...(o.pri === false ? {} : { pri: { maxRequests: 32, prgResponsePasidRequired: true } }),
      ...(o.pasidBits === 0 ? {} : { pasid: { maxPasidWidth: o.pasidBits ?? 8 } }),
    });
    sub.addDevice(pdev);
    if (o.pasidBits !== 0 && o.enablePasid !== false) pciEnablePasid(pdev, 0);
    pciEnableAts(pdev, 12);
    if (o.pri !== false) {
      pciEnablePri(pdev, 32);
      iopfQueueAddDevice(queue, pdev);
    }
    return pdev;
  };
  const endpoint = (dev: Device) => new Endpoint({ device: dev as PciDevice, iommu: hw, scheduler: sched });
  const proc = () => machine.createProcess({ arch: 'arm64' });
  return { machine, sched, sub, drv, hw, queue, hb, fn, endpoint, proc };
}
