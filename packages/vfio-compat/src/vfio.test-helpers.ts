// Shared set-up for the vfio-compat group, QEMU-flow and SVA tests (helper V2): an arm64 machine,
// the test IOMMU with its hardware side and PRI plumbing, PCI functions (PASID, ATS, PRI optional)
// registered with VFIO, and Endpoints to DMA with.

import { Scheduler } from '@iommu-ts/base';
import { iommuReportDeviceFault, iopfQueueAddDevice, iopfQueueAlloc } from '@iommu-ts/io-pgfault';
import {
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
import { VfioSubsystem } from './vfio-device.js';
import { VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET } from './vfio-uapi.js';

export interface FnOptions {
  /** PASID + ATS + PRI, on an IOPF queue (default false: a plain PCI function). */
  sva?: boolean;
  /** ACS on the function (default true: its own group). */
  acs?: boolean;
  /** Register with VFIO (default true). */
  register?: boolean;
  devfn?: number;
  multifunction?: boolean;
}

export function setup() {
  const machine = new Machine({ memory: { size: 256 * 2 ** 20 } });
  const sched = new Scheduler();
  const iommu = new IommuSubsystem();
  const drv = new TestIommu({ memory: machine.memory });
  drv.register(iommu);
  const hw = new TestIommuHw(drv, machine.memory);
  const record = drv.ops.pageResponse;
  drv.ops.pageResponse = (dev, evt, msg) => {
    record?.(dev, evt, msg);
    hw.pageResponse(dev, msg);
  };
  hw.onFault = (dev, fault) => sched.spawn(() => iommuReportDeviceFault(dev, fault), 'prq-thread');
  const queue = iopfQueueAlloc('test-iommu', { scheduler: sched });
  const hb = new PciHostBridge();
  const vfio = new VfioSubsystem(iommu);
  let next = 0;
  const fn = (o: FnOptions = {}): PciDevice => {
    const pdev = hb.rootBus.addDevice({
      devfn: o.devfn ?? 0x20 + 8 * next++,
      ...(o.multifunction ? { multifunction: true } : {}),
      ...(o.acs === false ? {} : { acs: { cap: 0x1f, ctrl: 0x1f } }),
      ...(o.sva
        ? { ats: {}, pri: { maxRequests: 32, prgResponsePasidRequired: true }, pasid: { maxPasidWidth: 8 } }
        : {}),
    });
    iommu.addDevice(pdev);
    if (o.sva) {
      pciEnablePasid(pdev, 0);
      pciEnableAts(pdev, 12);
      pciEnablePri(pdev, 32);
      iopfQueueAddDevice(queue, pdev);
    }
    if (o.register !== false)
      vfio.registerDevice(pdev, {
        flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
        numRegions: 9,
        numIrqs: 5,
      });
    return pdev;
  };
  const endpoint = (dev: PciDevice) => new Endpoint({ device: dev, iommu: hw, scheduler: sched });
  const proc = (o: { uid?: number; capabilities?: number[]; rlimitMemlock?: number } = {}) =>
    machine.createProcess({ arch: 'arm64', ...o });
  return { machine, sched, iommu, drv, hw, queue, hb, vfio, fn, endpoint, proc };
}

/** The errno code a call throws, or 'ok'. */
export function errnoOf(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    throw e;
  }
}
