/**
 * Test harness for the D1 driver files: an SmmuV3Model on test RAM with wired interrupt lines, and
 * an ArmSmmuDevice that reaches it only through MMIO, memory and those lines.
 */

import { Scheduler } from '@iommu-ts/base';
import {
  DevIommu,
  type Device,
  genericDeviceGroup,
  type IommuOps,
  IommuSubsystem,
  PlatformDevice,
} from '@iommu-ts/iommu-core';
import { SmmuV3Model } from '../hw/smmu.js';
import type { SmmuHwConfig } from '../hw/smmu-config.js';
import { makeTestMemory } from '../hw/test-helpers.js';
import {
  ArmSmmuDevice,
  type ArmSmmuDriverOptions,
  type ArmSmmuIrqs,
  type ArmSmmuStreamMaster,
} from './arm-smmu-device.js';
import { armSmmuPageResponse } from './priq.js';

/** Options of {@link driverHarness}. */
export interface DriverHarnessOptions {
  /** Model configuration. */
  config?: Partial<SmmuHwConfig>;
  /** Driver options (default: queues capped at 2^8 entries). */
  options?: ArmSmmuDriverOptions;
  /** Which lines to wire to the driver (default all three). */
  lines?: ('evtq' | 'priq' | 'gerror')[];
  /** Firmware coherency override. */
  coherent?: boolean;
}

/** Build a model and a driver for it (not probed). */
export function driverHarness(opts: DriverHarnessOptions = {}) {
  const memory = makeTestMemory(64);
  const scheduler = new Scheduler();
  const lines = {
    evtq: scheduler.createIrqLine('evtq'),
    priq: scheduler.createIrqLine('priq'),
    gerror: scheduler.createIrqLine('gerror'),
    cmdqSync: scheduler.createIrqLine('cmdq-sync'),
  };
  const model = new SmmuV3Model({ memory, scheduler, config: opts.config ?? {}, irqs: lines });
  const iommu = new IommuSubsystem();
  const wired = opts.lines ?? ['evtq', 'priq', 'gerror'];
  const irqs: { -readonly [K in keyof ArmSmmuIrqs]: ArmSmmuIrqs[K] } = {};
  for (const l of wired) irqs[l] = lines[l];
  const smmu = new ArmSmmuDevice({
    iommu,
    mmio: model.mmio,
    memory,
    scheduler,
    irqs,
    ...(opts.coherent === undefined ? {} : { coherent: opts.coherent }),
    options: opts.options ?? { maxQueueLog2: 8 },
  });
  return { memory, scheduler, model, iommu, smmu, lines };
}

/**
 * Minimal IommuOps for tests of the D1 paths: page responses go to the driver; probe is not used.
 * @param smmu - the SMMU
 */
export function testOps(smmu: ArmSmmuDevice): IommuOps {
  return {
    name: 'arm-smmu-v3-test',
    probeDevice: () => smmu.iommuDevice,
    deviceGroup: (dev) => genericDeviceGroup(dev),
    pageResponse: (dev, evt, msg) => armSmmuPageResponse(smmu, dev, evt, msg),
  };
}

/**
 * Make a platform device look probed by this SMMU (what D2's probe does): a master with `sids`,
 * inserted into `smmu.streams` and stored as `dev.iommu.priv`.
 */
export function fakeMaster(
  smmu: ArmSmmuDevice,
  name: string,
  sids: number[],
  stallEnabled: boolean,
): { dev: Device; master: ArmSmmuStreamMaster } {
  const dev = new PlatformDevice(name);
  const master: ArmSmmuStreamMaster = { dev, stallEnabled, streamIds: sids };
  dev.iommu = new DevIommu(smmu.iommu);
  dev.iommu.iommuDev = smmu.iommuDevice;
  dev.iommu.priv = master;
  for (const sid of sids) {
    smmu.initL2Strtab(sid);
    smmu.streams.set(sid, master);
  }
  return { dev, master };
}
