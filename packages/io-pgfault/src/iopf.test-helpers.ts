// Shared set-up for io-pgfault tests: a subsystem with the test IOMMU, PCI functions with PASID,
// an IOPF queue, and paging domains attached at PASIDs with attach handles.

import { Scheduler } from '@iommu-ts/base';
import {
  type Device,
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID,
  IOMMU_FAULT_PERM_READ,
  type IommuAttachHandle,
  type IommuDomain,
  type IommuFault,
  IommuFaultType,
  IommuSubsystem,
  PciHostBridge,
} from '@iommu-ts/iommu-core';
import { TestIommu } from '@iommu-ts/iommu-core/testing';
import { type IopfQueueOptions, iopfQueueAddDevice, iopfQueueAlloc } from './iopf-queue.js';
import { type IopfWarnEvent, traceIopfWarn } from './iopf-trace.js';

export function setup(opts: { devices?: number; seed?: number; queue?: IopfQueueOptions } = {}) {
  const sched = new Scheduler(opts.seed === undefined ? {} : { seed: opts.seed });
  const sub = new IommuSubsystem();
  const drv = new TestIommu();
  drv.register(sub);
  const hb = new PciHostBridge();
  const devs: Device[] = [];
  for (let i = 0; i < (opts.devices ?? 1); i++) {
    const d = hb.rootBus.addDevice({
      devfn: 0x20 + i * 8,
      acs: { cap: 0x1f, ctrl: 0x1f },
      pasid: { maxPasidWidth: 8 },
      pri: { maxRequests: 32 },
    });
    sub.addDevice(d);
    devs.push(d);
  }
  const queue = iopfQueueAlloc('test', { scheduler: sched, ...opts.queue });
  for (const d of devs) iopfQueueAddDevice(queue, d);
  const warnings: IopfWarnEvent[] = [];
  const unsub = traceIopfWarn.subscribe((e) => warnings.push(e));
  return { sched, sub, drv, hb, devs, queue, warnings, unsub };
}

/** Attach a fresh paging domain with `handler` at `pasid` of `dev` through a handle. */
export function attachWithHandle(
  sub: IommuSubsystem,
  dev: Device,
  pasid: number,
  handler: IommuDomain['iopfHandler'],
): { domain: IommuDomain; handle: IommuAttachHandle } {
  const domain = sub.iommuPagingDomainAlloc(dev);
  domain.iopfHandler = handler;
  const handle: IommuAttachHandle = { domain };
  sub.iommuAttachDevicePasid(domain, dev, pasid, handle);
  return { domain, handle };
}

/** A page request as Intel's PRQ handler reports it. */
export function pageRequest(
  grpid: number,
  addr: bigint,
  opts: { last?: boolean; pasid?: number | null; perm?: number } = {},
): IommuFault {
  const pasid = opts.pasid === undefined ? 1 : opts.pasid;
  let flags = opts.last ? IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE : 0;
  if (pasid !== null) flags |= IOMMU_FAULT_PAGE_REQUEST_PASID_VALID | IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID;
  return {
    type: IommuFaultType.PAGE_REQ,
    prm: {
      flags,
      pasid: pasid ?? 0,
      grpid,
      perm: opts.perm ?? IOMMU_FAULT_PERM_READ,
      addr,
      privateData: [0n, 0n],
    },
  };
}
