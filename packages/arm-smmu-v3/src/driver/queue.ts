/**
 * Consumer side of the SMMU's output queues (event and PRI queues): Linux's `queue_remove_raw`,
 * `queue_sync_prod_in` and `queue_sync_cons_ovf` (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c).
 */

import type { MmioRegion } from '@iommu-ts/iommu-core';
import type { PhysicalMemory } from '@iommu-ts/mm';
import type { ArmSmmuQueue } from './arm-smmu-device.js';
import { Q_OVERFLOW_FLAG, queueEmpty, queueInc, queuePtr } from './regs.js';

/**
 * Read the entry at CONS into a new array and advance CONS, writing it to the SMMU
 * (`queue_remove_raw`). Uses the shadow PROD; refresh it with {@link queueSyncProdIn}.
 * @param q - the queue
 * @param memory - RAM holding the queue
 * @param page - the register page holding PROD/CONS (page 1)
 * @returns the entry's 64-bit words, or `undefined` if the queue is empty
 */
export function queueRemoveRaw(
  q: ArmSmmuQueue,
  memory: PhysicalMemory,
  page: MmioRegion,
): bigint[] | undefined {
  if (queueEmpty(q.prod, q.cons, q.log2)) return undefined;
  const pa = q.pa + queuePtr(q.cons, q.log2).idx * q.entDwords * 8;
  const ent: bigint[] = [];
  for (let i = 0; i < q.entDwords; i++) ent.push(memory.read64(pa + i * 8));
  q.cons = ((q.cons & Q_OVERFLOW_FLAG) | queueInc(q.cons, 1, q.log2)) >>> 0;
  page.writel(q.consReg, q.cons);
  return ent;
}

/**
 * Refresh the shadow PROD from the SMMU (`queue_sync_prod_in`).
 * @param q - the queue
 * @param page - the register page holding PROD
 * @returns whether PROD.OVFLG changed since the last refresh (an overflow: entries were lost)
 */
export function queueSyncProdIn(q: ArmSmmuQueue, page: MmioRegion): boolean {
  const prod = page.readl(q.prodReg) >>> 0;
  const overflow = ((prod ^ q.prod) & Q_OVERFLOW_FLAG) !== 0;
  q.prod = prod;
  return overflow;
}

/**
 * Acknowledge an overflow by copying PROD.OVFLG into CONS.OVACKFLG (`queue_sync_cons_ovf`).
 * @param q - the queue
 * @param page - the register page holding CONS
 */
export function queueSyncConsOvf(q: ArmSmmuQueue, page: MmioRegion): void {
  if (((q.prod ^ q.cons) & Q_OVERFLOW_FLAG) === 0) return;
  q.cons = ((q.cons & ~Q_OVERFLOW_FLAG) | (q.prod & Q_OVERFLOW_FLAG)) >>> 0;
  page.writel(q.consReg, q.cons);
}
