// Races on the seeded scheduler: unbind or mm exit at a seed-chosen point while the device has
// page requests in flight. Whatever the interleaving: every page request group the device sent is
// answered once, every DMA settles, nothing touches a freed domain, the PASID is freed once.

import { iopfQueueFlushDev } from '@iommu-ts/io-pgfault';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '@iommu-ts/mm';
import { describe, expect, it } from 'vitest';
import { setup } from './sva.test-helpers.js';
import { iommuSvaBindDevice, iommuSvaGetPasid, iommuSvaUnbindDevice } from './sva-bind.js';
import { IOMMU_SVA_FEAT_IOPF, iommuSvaDeviceInit } from './sva-device.js';

function run(seed: number, teardown: 'unbind' | 'exit') {
  const e = setup({ seed });
  const dev = e.fn();
  const frees: number[] = [];
  const realFree = e.sub.iommuFreeGlobalPasid.bind(e.sub);
  e.sub.iommuFreeGlobalPasid = (pasid: number) => {
    frees.push(pasid);
    realFree(pasid);
  };
  let exits = 0;
  iommuSvaDeviceInit(dev, IOMMU_SVA_FEAT_IOPF, 0, () => {
    exits++;
  });
  const p = e.proc();
  const mm = p.mm;
  const va = p.mmap(0x8000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const h = iommuSvaBindDevice(dev, mm);
  const pasid = iommuSvaGetPasid(h);
  const ep = e.endpoint(dev);
  const tickets = [0, 1, 2, 3].map((i) =>
    ep.dmaWrite(BigInt(va + i * 0x2000), new Uint8Array(0x1800).fill(i + 1), { pasid }),
  );
  let waited = 0;
  const delay = seed % 12;
  const tear = () => {
    if (waited++ < delay) {
      e.sched.spawn(tear, 'teardown');
      return;
    }
    if (teardown === 'unbind') {
      // The driver's order: the device stopped issuing (no new DMA here), flush the fault queue, unbind.
      iopfQueueFlushDev(dev);
      iommuSvaUnbindDevice(h);
    } else {
      p.exit();
    }
  };
  e.sched.spawn(tear, 'teardown');
  e.sched.runUntilIdle();
  if (teardown === 'exit') iommuSvaUnbindDevice(h);
  else p.exit();
  e.sched.runUntilIdle();
  return { e, ep, tickets, frees, pasid, exits, mm, domain: h.domain };
}

describe('SVA races (seeded scheduler)', () => {
  for (const teardown of ['unbind', 'exit'] as const) {
    it(`${teardown} while page requests are in flight`, () => {
      for (let seed = 1; seed <= 60; seed++) {
        const { e, ep, tickets, frees, pasid, exits, mm, domain } = run(seed, teardown);
        const ctx = `seed ${seed}`;
        expect(
          tickets.map((t) => t.state === 'pending'),
          ctx,
        ).toEqual([false, false, false, false]);
        const lastRequests = e.hw.pageRequests.filter((r) => r.last).length;
        if (teardown === 'exit') {
          expect(e.drv.pageResponses.length, ctx).toBe(lastRequests);
          expect(ep.stats.prgUnexpected, ctx).toBe(0);
        } else {
          // After unbind, Linux answers every request that finds no handler, partial ones too
          // (io-pgfault.c answers before looking at LAST_PAGE): one answer per group at least.
          expect(e.drv.pageResponses.length, ctx).toBeGreaterThanOrEqual(lastRequests);
          expect(e.drv.pageResponses.length, ctx).toBeLessThanOrEqual(e.hw.pageRequests.length);
        }
        expect(frees, ctx).toEqual([pasid]);
        expect(exits, ctx).toBe(teardown === 'exit' ? 1 : 0);
        const freedAt = e.drv.calls.findIndex((c) => c.op === 'domain_free');
        expect(freedAt, ctx).toBeGreaterThan(-1);
        expect(
          e.drv.calls.slice(freedAt + 1).some((c) => 'domain' in c && c.domain === domain),
          ctx,
        ).toBe(false);
        expect(mm.count, ctx).toBe(0);
        expect(e.sched.idle, ctx).toBe(true);
      }
    });
  }
});
