/**
 * Test harness for the VD1 unit code: a `VtdModel` wired to an `IntelIommu` through its MMIO
 * region (recorded), the machine's RAM and interrupt lines.
 */

import { Scheduler } from '@iommu-ts/base';
import { IommuSubsystem, type MmioRegion } from '@iommu-ts/iommu-core';
import { testMemory } from '../hw/structures.test-helpers.js';
import { VtdModel } from '../hw/vtd.js';
import type { VtdHwConfig } from '../hw/vtd-config.js';
import { IntelIommu, type IntelIommuDriverOptions } from './intel-iommu.js';

/** One recorded register access. */
export interface MmioOp {
  /** Kind. */
  readonly op: 'writel' | 'writeq';
  /** Offset. */
  readonly off: number;
  /** Value written. */
  readonly val: bigint;
}

/**
 * Wrap an MMIO region so that writes are recorded.
 * @param inner - the region
 * @returns the wrapper and the write log
 */
export function recordingMmio(inner: MmioRegion): { mmio: MmioRegion; writes: MmioOp[] } {
  const writes: MmioOp[] = [];
  return {
    writes,
    mmio: {
      size: inner.size,
      readl: (o) => inner.readl(o),
      readq: (o) => inner.readq(o),
      writel: (o, v) => {
        writes.push({ op: 'writel', off: o, val: BigInt(v >>> 0) });
        inner.writel(o, v);
      },
      writeq: (o, v) => {
        writes.push({ op: 'writeq', off: o, val: v });
        inner.writeq(o, v);
      },
    },
  };
}

/** Options of {@link unitHarness}. */
export interface UnitHarnessOptions {
  /** Model configuration overrides. */
  readonly config?: Partial<VtdHwConfig>;
  /** Driver options. */
  readonly options?: IntelIommuDriverOptions;
  /** Wire the fault and PRQ lines (default true). */
  readonly irqs?: boolean;
}

/**
 * A model and a driver unit on it (not yet probed).
 * @param opts - see {@link UnitHarnessOptions}
 * @returns the pieces
 */
export function unitHarness(opts: UnitHarnessOptions = {}) {
  const memory = testMemory();
  const scheduler = new Scheduler();
  const wire = opts.irqs ?? true;
  const irqs = wire
    ? { fault: scheduler.createIrqLine('dmar0-fault'), prq: scheduler.createIrqLine('dmar0-prq') }
    : {};
  const vtd = new VtdModel({
    memory,
    scheduler,
    irqs,
    ...(opts.config === undefined ? {} : { config: opts.config }),
  });
  const rec = recordingMmio(vtd.mmio);
  const core = new IommuSubsystem();
  const unit = new IntelIommu({
    iommu: core,
    mmio: rec.mmio,
    memory,
    scheduler,
    irqs,
    ...(opts.options === undefined ? {} : { options: opts.options }),
  });
  return {
    memory,
    scheduler,
    vtd,
    unit,
    core,
    writes: rec.writes,
    irqs,
    /** GSTS as the hardware reports it. */
    mmioGsts: (): number => vtd.mmio.readl(0x1c) >>> 0,
  };
}
