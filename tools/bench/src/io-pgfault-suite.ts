// The io-pgfault suite: page requests through report → group → handler → response with a trivial
// handler, on the test IOMMU driver.
//
// Rows:
// - single-request groups handled on the IOPF workqueue (the SVA-style iopfWorkHandler answering
//   SUCCESS), the scheduler run once per 1,000 faults;
// - the same with a synchronous handler that answers and frees inside the report call;
// - four-request groups (three partial requests, then the last one), per request;
// - the synchronous path again while 1 … 10,000 other groups stay pending (held by a handler on
//   another PASID), to show the cost per fault does not grow with the pending count.
// ns per fault = batch time / faults; best of `--rounds` after a warm-up batch at 1/10.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Scheduler } from '@iommu-ts/base';
import {
  iommuReportDeviceFault,
  iopfFreeGroup,
  iopfGroupResponse,
  iopfQueueAddDevice,
  iopfQueueAlloc,
  iopfWorkHandler,
} from '@iommu-ts/io-pgfault';
import {
  type Device,
  IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE,
  IOMMU_FAULT_PAGE_REQUEST_PASID_VALID,
  IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID,
  IOMMU_FAULT_PERM_READ,
  type IommuFault,
  IommuFaultType,
  type IommuIopfHandler,
  IommuPageResponseCode,
  IommuSubsystem,
  PciHostBridge,
} from '@iommu-ts/iommu-core';
import { TestIommu } from '@iommu-ts/iommu-core/testing';
import { machineInfo } from './machine.js';
import { parseBenchOptions } from './options.js';
import { bestNsPerOp, printTable } from './table.js';

interface Row {
  name: string;
  ns: number;
  note: string;
}

function request(grpid: number, pasid: number, last: boolean): IommuFault {
  return {
    type: IommuFaultType.PAGE_REQ,
    prm: {
      flags:
        (last ? IOMMU_FAULT_PAGE_REQUEST_LAST_PAGE : 0) |
        IOMMU_FAULT_PAGE_REQUEST_PASID_VALID |
        IOMMU_FAULT_PAGE_RESPONSE_NEEDS_PASID,
      pasid,
      grpid,
      perm: IOMMU_FAULT_PERM_READ,
      addr: 0x1000n,
      privateData: [0n, 0n],
    },
  };
}

function setup(handler: IommuIopfHandler) {
  const sched = new Scheduler();
  const sub = new IommuSubsystem();
  const drv = new TestIommu();
  drv.register(sub);
  let responses = 0;
  // Count responses instead of recording them (the test driver's log would grow without bound).
  drv.ops.pageResponse = () => {
    responses++;
  };
  const dev: Device = new PciHostBridge().rootBus.addDevice({
    devfn: 8,
    pasid: { maxPasidWidth: 8 },
    pri: { maxRequests: 512 },
  });
  sub.addDevice(dev);
  const queue = iopfQueueAlloc('bench', { scheduler: sched });
  iopfQueueAddDevice(queue, dev);
  const domain = sub.iommuPagingDomainAlloc(dev);
  domain.iopfHandler = handler;
  sub.iommuAttachDevicePasid(domain, dev, 1, { domain });
  return { sched, sub, drv, dev, responses: () => responses };
}

const syncHandler: IommuIopfHandler = (g) => {
  iopfGroupResponse(g, IommuPageResponseCode.SUCCESS);
  iopfFreeGroup(g);
};

export async function runIoPgfaultSuite(args: string[]): Promise<void> {
  const opts = parseBenchOptions(args, { faults: 200_000, rounds: 3 });
  const machine = machineInfo();
  console.log(
    `io-pgfault bench: ${opts.faults} faults per batch, best of ${opts.rounds} after a warm-up at 1/10`,
  );
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${machine.platform}`);
  const rows: Row[] = [];
  const faults = [request(0, 1, true), request(1, 1, true)];

  {
    const s = setup(iopfWorkHandler(() => IommuPageResponseCode.SUCCESS));
    const ns = bestNsPerOp(opts.rounds, opts.faults, (n) => {
      for (let i = 0; i < n; i++) {
        iommuReportDeviceFault(s.dev, faults[i & 1] as IommuFault);
        if ((i & 1023) === 1023) s.sched.runUntilIdle();
      }
      s.sched.runUntilIdle();
    });
    rows.push({ name: '1-request groups, workqueue handler', ns, note: `${s.responses()} responses` });
  }
  (() => {
    const s = setup(syncHandler);
    const ns = bestNsPerOp(opts.rounds, opts.faults, (n) => {
      for (let i = 0; i < n; i++) iommuReportDeviceFault(s.dev, faults[i & 1] as IommuFault);
    });
    rows.push({ name: '1-request groups, synchronous handler', ns, note: `${s.responses()} responses` });
  })();
  {
    const s = setup(syncHandler);
    const partial = request(7, 1, false);
    const last = request(7, 1, true);
    const ns = bestNsPerOp(opts.rounds, opts.faults, (n) => {
      for (let i = 0; i < n; i += 4) {
        iommuReportDeviceFault(s.dev, partial);
        iommuReportDeviceFault(s.dev, partial);
        iommuReportDeviceFault(s.dev, partial);
        iommuReportDeviceFault(s.dev, last);
      }
    });
    rows.push({
      name: '4-request groups (per request), synchronous',
      ns,
      note: `${s.responses()} responses`,
    });
  }
  const pendingRows: { pending: number; ns: number }[] = [];
  for (const pending of [1, 10, 100, 1_000, 10_000]) {
    const s = setup(syncHandler);
    const holder = s.sub.iommuPagingDomainAlloc(s.dev);
    holder.iopfHandler = () => {};
    s.sub.iommuAttachDevicePasid(holder, s.dev, 2, { domain: holder });
    for (let i = 0; i < pending; i++) iommuReportDeviceFault(s.dev, request(1000 + i, 2, true));
    const ns = bestNsPerOp(opts.rounds, opts.faults, (n) => {
      for (let i = 0; i < n; i++) iommuReportDeviceFault(s.dev, faults[i & 1] as IommuFault);
    });
    pendingRows.push({ pending, ns });
    const base = (pendingRows[0] as { ns: number }).ns;
    rows.push({
      name: `synchronous, ${pending} other groups pending`,
      ns,
      note: `${(ns / base).toFixed(2)}x of 1 pending`,
    });
  }

  const header = ['path', 'ns/fault', 'faults/s', 'notes'];
  const table = [
    header,
    ...rows.map((r) => [r.name, r.ns.toFixed(0), (1e9 / r.ns).toExponential(2), r.note]),
  ];
  printTable(table);
  const outFile = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'io-pgfault.json');
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, `${JSON.stringify({ machine, options: opts, rows, pendingRows }, null, 2)}\n`);
  console.log(`\nresults written to ${outFile}`);
}
