import { isErrnoError, Scheduler } from '@iommu-ts/base';
import type { MmioRegion } from '@iommu-ts/iommu-core';
import { IommuSubsystem } from '@iommu-ts/iommu-core';
import { describe, expect, it } from 'vitest';
import { testMemory } from '../hw/structures.test-helpers.js';
import { agawToWidth, calculateAgaw, IntelIommu } from './intel-iommu.js';
import {
  DMA_GCMD_QIE,
  DMA_GCMD_SRTP,
  DMA_GCMD_TE,
  DMA_GSTS_QIES,
  DMA_GSTS_TES,
  DMA_RTADDR_SMT,
  DMAR_CCMD_REG,
  DMAR_FECTL_REG,
  DMAR_FSTS_REG,
  DMAR_GCMD_REG,
  DMAR_IQA_REG,
  DMAR_IQT_REG,
  DMAR_PECTL_REG,
  DMAR_PQA_REG,
  DMAR_PQH_REG,
  DMAR_PQT_REG,
  DMAR_RTADDR_REG,
} from './regs.js';
import { type MmioOp, unitHarness } from './unit.test-helpers.js';

const LEGACY = {
  smts: false,
  flts: false,
  slts: false,
  pasid: false,
  prs: false,
  nest: false,
  slads: false,
} as const;

const hex = (w: MmioOp[]) => w.map((x) => `${x.op} 0x${x.off.toString(16)} 0x${x.val.toString(16)}`);

/** Raw words of queue slot `i` (size 16 or 32). */
function slot(h: ReturnType<typeof unitHarness>, i: number): bigint[] {
  const qi = h.unit.qi;
  if (qi === null) throw new Error('no qi');
  const size = 1 << qi.shift;
  const n = size / 8;
  return Array.from({ length: n }, (_, k) => h.memory.read64(qi.descPa + i * size + 8 * k));
}

describe('IntelIommu.probe', () => {
  it('derives agaw, msagaw and max PASIDs from CAP/ECAP', () => {
    const h = unitHarness();
    h.unit.probe();
    expect(h.unit.agaw).toBe(3); // 57-bit, 5-level
    expect(h.unit.msagaw).toBe(3);
    expect(h.unit.maxPasids).toBe(1 << 20);
    expect(h.unit.iommuDevice.maxPasids).toBe(1 << 20);
    expect(h.unit.smSupported).toBe(true);
    expect(h.unit.ndoms).toBe(65536);
    expect(h.writes).toEqual([]);
    expect(h.unit.log[0]?.message).toMatch(
      /^DMAR: dmar0: reg_base_addr 0 ver 1:0 cap [0-9a-f]+ ecap [0-9a-f]+$/,
    );
  });

  it('4-level only hardware gets agaw 2; sm_off hides PASIDs', () => {
    const h = unitHarness({ config: { sagaw: [3, 4] }, options: { scalableMode: false } });
    h.unit.probe();
    expect(h.unit.agaw).toBe(2);
    expect(agawToWidth(h.unit.agaw)).toBe(48);
    expect(h.unit.smSupported).toBe(false);
    expect(h.unit.maxPasids).toBe(0);
  });

  it('calculateAgaw picks the largest supported index within the width', () => {
    expect(calculateAgaw(0b01110, 57)).toBe(3);
    expect(calculateAgaw(0b00110, 57)).toBe(2);
    expect(calculateAgaw(0b01000, 48)).toBe(-1);
    expect(calculateAgaw(0b10110, 64)).toBe(4);
  });

  it('ignores a unit without address widths (ENODEV) and writes nothing', () => {
    const regs = new Map<number, bigint>([[0x8, 0x0000_0000_0022_0000n]]); // CAP: FRO=0x22… SAGAW 0
    const writes: number[] = [];
    const mmio: MmioRegion = {
      size: 0x1000,
      readl: (o) => Number(regs.get(o) ?? 0n) >>> 0,
      readq: (o) => regs.get(o) ?? 0n,
      writel: (o) => writes.push(o),
      writeq: (o) => writes.push(o),
    };
    const u = new IntelIommu({
      iommu: new IommuSubsystem(),
      mmio,
      memory: testMemory(),
      scheduler: new Scheduler(),
    });
    let err: unknown;
    try {
      u.probe();
    } catch (e) {
      err = e;
    }
    expect(isErrnoError(err) && err.code).toBe('ENODEV');
    expect(u.probed).toBe(false);
    expect(writes).toEqual([]);
    expect(u.log.at(-1)?.message).toBe(
      'DMAR: dmar0: No supported address widths. Not attempting DMA translation.',
    );
  });
});

describe('IntelIommu.initDmar', () => {
  it('legacy unit with QI: exact register writes, root pointer, global flushes through the queue', () => {
    const h = unitHarness({ config: LEGACY });
    h.unit.probe();
    h.unit.initDmar();
    const qi = h.unit.qi;
    expect(qi).not.toBeNull();
    if (qi === null) return;
    expect(qi.shift).toBe(4);
    const root = h.unit.rootEntry;
    expect(hex(h.writes)).toEqual([
      `writeq 0x${DMAR_IQT_REG.toString(16)} 0x0`,
      `writeq 0x${DMAR_IQA_REG.toString(16)} 0x${qi.descPa.toString(16)}`,
      `writel 0x${DMAR_GCMD_REG.toString(16)} 0x${DMA_GCMD_QIE.toString(16)}`,
      `writeq 0x${DMAR_RTADDR_REG.toString(16)} 0x${root.toString(16)}`,
      `writel 0x${DMAR_GCMD_REG.toString(16)} 0x${(DMA_GCMD_QIE | DMA_GCMD_SRTP).toString(16)}`,
      `writeq 0x${DMAR_IQT_REG.toString(16)} 0x20`,
      `writeq 0x${DMAR_IQT_REG.toString(16)} 0x40`,
      `writel 0x${DMAR_FECTL_REG.toString(16)} 0x0`,
      `writel 0x${DMAR_FSTS_REG.toString(16)} 0x0`,
    ]);
    // Queue contents: context-cache global, wait, IOTLB global (DW|DR), wait.
    expect(slot(h, 0)).toEqual([0x11n, 0n]);
    expect(slot(h, 1)).toEqual([(2n << 32n) | 0x25n, BigInt(qi.statusPa + 4)]);
    expect(slot(h, 2)).toEqual([0xd2n, 0n]);
    expect(slot(h, 3)).toEqual([(2n << 32n) | 0x25n, BigInt(qi.statusPa + 12)]);
    expect(h.vtd.rootTableAddress).toBe(root);
    expect(h.mmioGsts() & (DMA_GSTS_QIES | DMA_GSTS_TES)).toBe(DMA_GSTS_QIES);
    expect(h.unit.log.map((l) => l.message)).toContain('DMAR: dmar0: Using Queued invalidation');
    // DIDs 0 and 1 reserved.
    expect(h.unit.didInUse(0)).toBe(true);
    expect(h.unit.didInUse(1)).toBe(true);
    expect(h.unit.allocDid()).toBe(2);
    expect(qi.freeCnt).toBe(256);
  });

  it('scalable unit: 256-bit queue, SMT root, PASID-cache global flush, PRQ set up', () => {
    const h = unitHarness();
    h.unit.probe();
    h.unit.initDmar();
    const qi = h.unit.qi;
    if (qi === null) throw new Error('no qi');
    expect(qi.shift).toBe(5);
    const w = h.writes;
    expect(w[1]).toEqual({ op: 'writeq', off: DMAR_IQA_REG, val: BigInt(qi.descPa) | (1n << 11n) | 1n });
    expect(w[3]).toEqual({
      op: 'writeq',
      off: DMAR_RTADDR_REG,
      val: BigInt(h.unit.rootEntry) | DMA_RTADDR_SMT,
    });
    // cc global, wait, pc global, wait, iotlb global, wait
    expect(slot(h, 0)).toEqual([0x11n, 0n, 0n, 0n]);
    expect(slot(h, 2)).toEqual([0x37n, 0n, 0n, 0n]);
    expect(slot(h, 4)).toEqual([0xd2n, 0n, 0n, 0n]);
    expect(h.vtd.ttm).toBe(1);
    const iqtWrites = w.filter((x) => x.off === DMAR_IQT_REG).map((x) => x.val);
    expect(iqtWrites).toEqual([0n, 0x40n, 0x80n, 0xc0n]);
    // PRQ.
    expect(h.unit.prq).not.toBe(0);
    const prqWrites = w.filter((x) =>
      [DMAR_PECTL_REG, DMAR_PQH_REG, DMAR_PQT_REG, DMAR_PQA_REG].includes(x.off),
    );
    expect(prqWrites).toEqual([
      { op: 'writel', off: DMAR_PECTL_REG, val: 0n },
      { op: 'writeq', off: DMAR_PQH_REG, val: 0n },
      { op: 'writeq', off: DMAR_PQT_REG, val: 0n },
      { op: 'writeq', off: DMAR_PQA_REG, val: BigInt(h.unit.prq) | 4n },
    ]);
    expect(h.unit.iopfQueue?.name).toBe('dmar0-iopfq');
  });

  it('ESRTPS: no invalidations after SRTP', () => {
    const h = unitHarness({ config: { ...LEGACY, esrtps: true } });
    h.unit.probe();
    h.unit.initDmar();
    expect(h.writes.filter((x) => x.off === DMAR_IQT_REG).map((x) => x.val)).toEqual([0n]);
    expect(h.unit.stats.qiSubmits).toBe(0);
  });

  it('without QI: register-based CCMD and IOTLB_REG global invalidations', () => {
    const h = unitHarness({ config: { ...LEGACY, qi: false } });
    h.unit.probe();
    h.unit.initDmar();
    expect(h.unit.qi).toBeNull();
    const iotlb = 0x0f * 16 + 8;
    const inv = h.writes.filter((x) => x.off === DMAR_CCMD_REG || x.off === iotlb);
    expect(inv).toEqual([
      { op: 'writeq', off: DMAR_CCMD_REG, val: (1n << 63n) | (1n << 61n) },
      { op: 'writeq', off: iotlb, val: (1n << 63n) | (1n << 60n) | (1n << 48n) },
    ]);
    expect(h.unit.log.map((l) => l.message)).toContain('DMAR: dmar0: Using Register based invalidation');
    expect(h.unit.log.some((l) => l.message === 'DMAR: Flush IOTLB failed')).toBe(false);
  });

  it('rejects initDmar before probe (EINVAL) and register before initDmar (EINVAL)', () => {
    const h = unitHarness();
    expect(() => h.unit.initDmar()).toThrowError(expect.objectContaining({ code: 'EINVAL' }));
    h.unit.probe();
    expect(() => h.unit.register({ name: 'x' } as never)).toThrowError(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(h.unit.registered).toBe(false);
  });

  it('enableTranslation sets TE in the shadow and GSTS', () => {
    const h = unitHarness({ config: LEGACY });
    h.unit.probe();
    h.unit.initDmar();
    h.unit.enableTranslation();
    expect(h.writes.at(-1)).toEqual({
      op: 'writel',
      off: DMAR_GCMD_REG,
      val: BigInt((DMA_GCMD_QIE | DMA_GCMD_TE) >>> 0),
    });
    expect((h.mmioGsts() & DMA_GSTS_TES) !== 0).toBe(true);
    expect(h.vtd.translationEnabled).toBe(true);
  });

  it('disables translation left on by firmware', () => {
    const h = unitHarness({ config: LEGACY });
    h.vtd.mmio.writeq(DMAR_RTADDR_REG, BigInt(h.memory.allocPages(0, { zero: true })));
    h.vtd.mmio.writel(DMAR_GCMD_REG, DMA_GCMD_SRTP);
    h.vtd.mmio.writel(DMAR_GCMD_REG, DMA_GCMD_TE);
    h.unit.probe();
    expect(h.unit.translationEnabled).toBe(true);
    h.unit.initDmar();
    expect(h.vtd.translationEnabled).toBe(false);
    expect(h.mmioGsts() & DMA_GSTS_TES).toBe(0);
  });
});

describe('domain IDs', () => {
  it('allocates lowest free from 2, ENOSPC when exhausted, frees, never frees 0/1', () => {
    const h = unitHarness({ config: { ...LEGACY, nd: 0 } });
    h.unit.probe();
    h.unit.initDmar();
    const got = Array.from({ length: 14 }, () => h.unit.allocDid());
    expect(got).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect(() => h.unit.allocDid()).toThrowError(expect.objectContaining({ code: 'ENOSPC' }));
    h.unit.freeDid(5);
    h.unit.freeDid(1);
    h.unit.freeDid(0);
    expect(h.unit.didInUse(1)).toBe(true);
    expect(h.unit.allocDid()).toBe(5);
  });
});
