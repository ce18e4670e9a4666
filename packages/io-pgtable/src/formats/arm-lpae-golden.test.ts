// Golden descriptor and register values for the LPAE formats (§2.2, §2.6–§2.8 of the digest).
import { describe, expect, it } from 'vitest';
import type { IoPgtableCfg } from '../cfg.js';
import type { IoPgtableFormat } from '../format.js';
import { IommuIotlbGather } from '../gather.js';
import { allocIoPgtableOps, freeIoPgtableOps, type IoPgtableOps } from '../io-pgtable.js';
import {
  IOMMU_CACHE,
  IOMMU_DIRTY_NO_CLEAR,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
} from '../prot.js';
import {
  IO_PGTABLE_QUIRK_ARM_HD,
  IO_PGTABLE_QUIRK_ARM_NS,
  IO_PGTABLE_QUIRK_ARM_OUTER_WBWA,
  IO_PGTABLE_QUIRK_ARM_S2FWB,
  IO_PGTABLE_QUIRK_ARM_TTBR1,
  IO_PGTABLE_QUIRK_NO_PERMS,
} from '../quirks.js';
import { armLpae32S1Format, armLpae64S1Format, armLpae64S2Format } from './arm-lpae.js';
import { armSmmuV2PackTcr, armSmmuV2PackVtcr } from './arm-lpae-regs.js';

const BM4K = 0x1000n | 0x200000n | 0x40000000n;
const BM16K = 0x4000n | 0x2000000n;
const BM64K = 0x10000n | 0x20000000n;

function make(
  format: IoPgtableFormat,
  extra: Partial<IoPgtableCfg> = {},
): { ops: IoPgtableOps; cfg: IoPgtableCfg } {
  const cfg: IoPgtableCfg = { quirks: 0, pgsizeBitmap: BM4K, ias: 48, oas: 48, coherentWalk: true, ...extra };
  const ops = allocIoPgtableOps(format, cfg, null);
  if (ops === null) throw new Error('alloc failed');
  return { ops, cfg };
}

/** The leaf descriptor written for (prot, size) at PA `pa`. */
function leaf(
  format: IoPgtableFormat,
  prot: number,
  size = 0x1000,
  pa = 0,
  extra: Partial<IoPgtableCfg> = {},
): bigint {
  const { ops } = make(format, extra);
  ops.mapPages(0x4000_0000, pa, size, 1, prot);
  const w = ops.pgtableWalk(0x4000_0000);
  return w[w.length - 1] as bigint;
}

// S1 attribute expectation, written from the architecture rules (not from the implementation).
function s1Expect(prot: number, quirks: number, block: boolean): bigint {
  let v = 1n << 11n; // nG
  if ((prot & IOMMU_READ) !== 0 && (prot & IOMMU_WRITE) === 0) v |= 1n << 7n;
  else if (quirks & IO_PGTABLE_QUIRK_ARM_HD) v |= 1n << 51n;
  if ((prot & IOMMU_PRIV) === 0) v |= 1n << 6n;
  if (prot & IOMMU_MMIO) v |= 2n << 2n;
  else if (prot & IOMMU_CACHE) v |= 1n << 2n;
  v |= prot & IOMMU_CACHE ? 3n << 8n : 2n << 8n;
  if (prot & IOMMU_NOEXEC) v |= 3n << 53n;
  if (quirks & IO_PGTABLE_QUIRK_ARM_NS) v |= 1n << 5n;
  return v | (1n << 10n) | (block ? 1n : 3n);
}
function s2Expect(prot: number, quirks: number): bigint {
  let v = 0n;
  if (prot & IOMMU_READ) v |= 1n << 6n;
  if (prot & IOMMU_WRITE) v |= 1n << 7n;
  if (prot & IOMMU_MMIO) v |= 0x1n << 2n;
  else if (prot & IOMMU_CACHE) v |= (quirks & IO_PGTABLE_QUIRK_ARM_S2FWB ? 0x6n : 0xfn) << 2n;
  else v |= 0x5n << 2n;
  v |= prot & IOMMU_CACHE ? 3n << 8n : 2n << 8n;
  if (prot & IOMMU_NOEXEC) v |= 3n << 53n;
  return v | (1n << 10n) | 3n;
}

describe('LPAE leaf descriptors', () => {
  it('worked values of the digest', () => {
    const RW = IOMMU_READ | IOMMU_WRITE;
    expect(leaf(armLpae64S1Format, RW | IOMMU_CACHE)).toBe(0xf47n);
    expect(leaf(armLpae64S1Format, IOMMU_READ | IOMMU_CACHE)).toBe(0xfc7n);
    expect(leaf(armLpae64S1Format, RW | IOMMU_CACHE | IOMMU_NOEXEC)).toBe(0x0060_0000_0000_0f47n);
    expect(leaf(armLpae64S1Format, RW)).toBe(0xe43n);
    expect(leaf(armLpae64S1Format, RW | IOMMU_MMIO, 0x200000)).toBe(0xe49n);
    expect(leaf(armLpae64S1Format, RW | IOMMU_CACHE, 0x1000, 0, { quirks: IO_PGTABLE_QUIRK_ARM_HD })).toBe(
      0x0008_0000_0000_0f47n,
    );
    expect(leaf(armLpae64S2Format, RW | IOMMU_CACHE)).toBe(0x7ffn);
    expect(leaf(armLpae64S2Format, RW)).toBe(0x6d7n);
    expect(leaf(armLpae64S2Format, RW | IOMMU_MMIO)).toBe(0x6c7n);
  });

  it('every prot combination × quirk, S1 and S2, page and block', () => {
    const PA = 0x12_3460_0000;
    for (let prot = 1; prot < 64; prot++) {
      if ((prot & (IOMMU_READ | IOMMU_WRITE)) === 0) continue;
      for (const quirks of [
        0,
        IO_PGTABLE_QUIRK_ARM_NS,
        IO_PGTABLE_QUIRK_ARM_HD,
        IO_PGTABLE_QUIRK_ARM_NS | IO_PGTABLE_QUIRK_ARM_HD,
      ]) {
        expect(leaf(armLpae64S1Format, prot, 0x1000, PA, { quirks })).toBe(
          s1Expect(prot, quirks, false) | BigInt(PA),
        );
        expect(leaf(armLpae64S1Format, prot, 0x200000, PA, { quirks })).toBe(
          s1Expect(prot, quirks, true) | BigInt(PA),
        );
      }
      for (const quirks of [0, IO_PGTABLE_QUIRK_ARM_S2FWB]) {
        expect(leaf(armLpae64S2Format, prot, 0x1000, PA, { quirks })).toBe(
          s2Expect(prot, quirks) | BigInt(PA),
        );
      }
    }
  });

  it('prot without READ or WRITE fails with EINVAL', () => {
    const { ops } = make(armLpae64S1Format);
    expect(() => ops.mapPages(0, 0, 0x1000, 1, IOMMU_CACHE)).toThrow(/EINVAL/);
  });

  it('52-bit PA with the 64K granule: PA bits 51:48 in descriptor bits 15:12', () => {
    const pa = 0xa_bcde_f123_0000;
    const d = leaf(armLpae64S1Format, IOMMU_READ | IOMMU_WRITE, 0x10000, pa, {
      pgsizeBitmap: BM64K,
      ias: 52,
      oas: 52,
    });
    expect(d & 0xffff_ffff_f000n).toBe(BigInt(0xbcde_f123_0000) | (0xan << 12n));
    const { ops } = make(armLpae64S1Format, { pgsizeBitmap: BM64K, ias: 52, oas: 52 });
    ops.mapPages(0xf_0000_0000_0000, pa, 0x10000, 1, IOMMU_READ);
    expect(ops.iovaToPhys(0xf_0000_0000_0000n + 0x1234n)).toBe(pa + 0x1234);
  });

  it('table descriptors: NSTABLE with ARM_NS, SW_SYNC for non-coherent walkers', () => {
    const t = (extra: Partial<IoPgtableCfg>): bigint => {
      const { ops, cfg } = make(armLpae64S1Format, extra);
      ops.mapPages(0, 0x8000_0000, 0x1000, 1, IOMMU_READ);
      const top = ops.pgtableWalk(0)[0] as bigint;
      const next = cfg.memory === undefined ? ops.memory.read64(Number(cfg.armLpaeS1Cfg?.ttbr)) : 0n;
      expect(next).toBe(top);
      return top & ~0xffff_ffff_f000n;
    };
    expect(t({})).toBe(3n);
    expect(t({ quirks: IO_PGTABLE_QUIRK_ARM_NS })).toBe(3n | (1n << 63n));
    expect(t({ coherentWalk: false })).toBe(3n | (1n << 55n));
  });
});

describe('LPAE registers', () => {
  it('MAIR and the digest example TCR', () => {
    const { cfg } = make(armLpae64S1Format);
    expect(cfg.armLpaeS1Cfg?.mair).toBe(0xf404ff44n);
    expect(cfg.armLpaeS1Cfg?.tcr).toEqual({ ips: 5, tg: 0, sh: 3, orgn: 1, irgn: 1, tsz: 16 });
    expect(armSmmuV2PackTcr(cfg.armLpaeS1Cfg?.tcr as never, false)).toBe(0x0080_3510);
  });

  it('TG encodings per granule, TTBR0 and TTBR1; walk attributes', () => {
    const tg = (bm: bigint, quirks: number): number =>
      make(armLpae64S1Format, { pgsizeBitmap: bm, quirks }).cfg.armLpaeS1Cfg?.tcr.tg ?? -1;
    expect([tg(BM4K, 0), tg(BM64K, 0), tg(BM16K, 0)]).toEqual([0, 1, 2]);
    const T1 = IO_PGTABLE_QUIRK_ARM_TTBR1;
    expect([tg(BM16K, T1), tg(BM4K, T1), tg(BM64K, T1)]).toEqual([1, 2, 3]);
    const nc = make(armLpae64S1Format, { coherentWalk: false }).cfg.armLpaeS1Cfg?.tcr;
    expect([nc?.sh, nc?.irgn, nc?.orgn]).toEqual([2, 0, 0]);
    const wbwa = make(armLpae64S1Format, { coherentWalk: false, quirks: IO_PGTABLE_QUIRK_ARM_OUTER_WBWA }).cfg
      .armLpaeS1Cfg?.tcr;
    expect([wbwa?.sh, wbwa?.irgn, wbwa?.orgn]).toEqual([2, 0, 1]);
    expect(
      allocIoPgtableOps(
        armLpae64S1Format,
        { quirks: IO_PGTABLE_QUIRK_ARM_OUTER_WBWA, pgsizeBitmap: BM4K, ias: 48, oas: 48, coherentWalk: true },
        null,
      ),
    ).toBeNull();
  });

  it('IPS/PS for every oas; tsz = 64 - ias; unsupported oas fails', () => {
    const expected = [32, 36, 40, 42, 44, 48];
    for (const [ps, oas] of expected.entries()) {
      const s1 = make(armLpae64S1Format, { ias: 32, oas }).cfg.armLpaeS1Cfg?.tcr;
      expect([s1?.ips, s1?.tsz]).toEqual([ps, 32]);
      expect(make(armLpae64S2Format, { ias: 32, oas }).cfg.armLpaeS2Cfg?.vtcr.ps).toBe(ps);
    }
    expect(make(armLpae64S1Format, { pgsizeBitmap: BM64K, ias: 52, oas: 52 }).cfg.armLpaeS1Cfg?.tcr.ips).toBe(
      6,
    );
    expect(
      allocIoPgtableOps(
        armLpae64S1Format,
        { quirks: 0, pgsizeBitmap: BM4K, ias: 48, oas: 38, coherentWalk: true },
        null,
      ),
    ).toBeNull();
  });

  it('VTCR SL0 and concatenation per granule and size', () => {
    const v = (bm: bigint, ias: number, oas: number) => {
      const { cfg, ops } = make(armLpae64S2Format, { pgsizeBitmap: bm, ias, oas });
      const top = ops.instance.levels[0];
      return {
        sl: cfg.armLpaeS2Cfg?.vtcr.sl,
        start: top?.label,
        entries: 2 ** (top?.indexBits ?? 0),
        bytes: top?.tableBytes,
      };
    };
    expect(v(BM4K, 48, 48)).toEqual({ sl: 2, start: 0, entries: 512, bytes: 4096 });
    expect(v(BM4K, 40, 40)).toEqual({ sl: 1, start: 1, entries: 1024, bytes: 8192 }); // 2 tables
    expect(v(BM4K, 42, 42)).toEqual({ sl: 1, start: 1, entries: 4096, bytes: 32768 }); // 8 tables
    expect(v(BM4K, 40, 48)).toEqual({ sl: 2, start: 0, entries: 2, bytes: 64 }); // not mandatory
    expect(v(BM4K, 36, 48)).toEqual({ sl: 1, start: 1, entries: 64, bytes: 512 });
    expect(v(BM16K, 40, 40)).toEqual({ sl: 1, start: 2, entries: 16 * 2048, bytes: 262144 }); // 16 tables
    expect(v(BM16K, 48, 48)).toEqual({ sl: 2, start: 1, entries: 2 * 2048, bytes: 32768 }); // 2 tables
    expect(v(BM64K, 48, 48)).toEqual({ sl: 2, start: 1, entries: 64, bytes: 512 });
    expect(v(BM64K, 32, 48)).toEqual({ sl: 1, start: 2, entries: 8, bytes: 64 });
    const { cfg } = make(armLpae64S2Format);
    expect(armSmmuV2PackVtcr(cfg.armLpaeS2Cfg?.vtcr as never)).toBe(0x8005_3590);
  });

  it('S1 geometry table of the digest', () => {
    const rows: Array<[bigint, number, number, number, number]> = [
      [BM4K, 32, 3, 4, 64],
      [BM4K, 39, 3, 512, 4096],
      [BM4K, 40, 4, 2, 64],
      [BM4K, 44, 4, 32, 256],
      [BM16K, 36, 2, 2048, 16384],
      [BM16K, 40, 3, 16, 128],
      [BM16K, 48, 4, 2, 64],
      [BM64K, 42, 2, 8192, 65536],
      [BM64K, 44, 3, 4, 64],
      [BM64K, 52, 3, 1024, 8192],
    ];
    for (const [bm, ias, levels, entries, bytes] of rows) {
      const { ops } = make(armLpae64S1Format, { pgsizeBitmap: bm, ias, oas: ias === 52 ? 52 : 48 });
      const top = ops.instance.levels[0];
      expect(
        [ops.instance.levels.length, 2 ** (top?.indexBits ?? 0), top?.tableBytes],
        `${bm} ${ias}`,
      ).toEqual([levels, entries, bytes]);
    }
  });

  it('pgsize_bitmap narrowing and granule choice', () => {
    expect(make(armLpae64S1Format, { pgsizeBitmap: BM4K | BM16K | BM64K }).cfg.pgsizeBitmap).toBe(BM4K);
    expect(make(armLpae64S1Format, { pgsizeBitmap: BM16K | BM64K }).cfg.pgsizeBitmap).toBe(BM16K);
    const c = make(armLpae64S1Format, { pgsizeBitmap: BM64K | (1n << 42n), ias: 52, oas: 52 }).cfg;
    expect(c.pgsizeBitmap).toBe(BM64K | (1n << 42n));
    const d = make(armLpae64S1Format, { pgsizeBitmap: BM64K | (1n << 42n), ias: 52, oas: 48 }).cfg;
    expect([d.pgsizeBitmap, d.ias]).toEqual([BM64K, 52]);
    const e = make(armLpae64S1Format, { pgsizeBitmap: BM4K, ias: 52, oas: 52 }).cfg;
    expect([e.ias, e.oas]).toEqual([48, 48]);
    expect(make(armLpae32S1Format, { pgsizeBitmap: BM4K | BM64K, ias: 32, oas: 40 }).cfg.pgsizeBitmap).toBe(
      BM4K,
    );
    expect(
      allocIoPgtableOps(
        armLpae32S1Format,
        { quirks: 0, pgsizeBitmap: BM4K, ias: 36, oas: 40, coherentWalk: true },
        null,
      ),
    ).toBeNull();
  });

  it('quirks outside the accepted set fail allocation', () => {
    const base = { pgsizeBitmap: BM4K, ias: 48, oas: 48, coherentWalk: true };
    expect(
      allocIoPgtableOps(armLpae64S1Format, { ...base, quirks: IO_PGTABLE_QUIRK_ARM_S2FWB }, null),
    ).toBeNull();
    expect(
      allocIoPgtableOps(armLpae64S2Format, { ...base, quirks: IO_PGTABLE_QUIRK_ARM_NS }, null),
    ).toBeNull();
    expect(
      allocIoPgtableOps(armLpae64S1Format, { ...base, quirks: IO_PGTABLE_QUIRK_NO_PERMS }, null),
    ).toBeNull();
    expect(allocIoPgtableOps(99, { ...base, quirks: 0 }, null)).toBeNull();
  });
});

describe('LPAE errors, TTBR1, dirty tracking and TLB call order', () => {
  it('range and alignment errors', () => {
    const { ops } = make(armLpae64S1Format, { ias: 39, oas: 40 });
    expect(() => ops.mapPages(2 ** 39, 0, 0x1000, 1, IOMMU_READ)).toThrow(/ERANGE/);
    expect(() => ops.mapPages(0, 2 ** 40, 0x1000, 1, IOMMU_READ)).toThrow(/ERANGE/);
    expect(() => ops.mapPages(0, 0, 0x2000, 1, IOMMU_READ)).toThrow(/EINVAL/);
    expect(() => ops.mapPages(0x800, 0, 0x1000, 1, IOMMU_READ)).toThrow(/EINVAL/);
    expect(ops.unmapPages(0, 0x1000, 1, null)).toBe(0);
    expect(ops.unmapPages(2 ** 39, 0x1000, 1, null)).toBe(0);
    expect(ops.iovaToPhys(2 ** 39 + 5)).toBe(0);
  });

  it('EEXIST carries the bytes mapped before the collision', () => {
    const { ops } = make(armLpae64S1Format);
    ops.mapPages(0x5000, 0x5000, 0x1000, 1, IOMMU_READ);
    try {
      ops.mapPages(0x1000, 0x1000, 0x1000, 8, IOMMU_READ);
      expect.unreachable();
    } catch (e) {
      // Linux checks the whole run in one table before writing: nothing of it is mapped.
      expect((e as { code: string; mapped: number }).code).toBe('EEXIST');
      expect((e as { mapped: number }).mapped).toBe(0);
    }
    // Across a table boundary the first table's run is kept.
    ops.mapPages(0x20_0000, 0x20_0000, 0x1000, 1, IOMMU_READ);
    try {
      ops.mapPages(0x1f_e000, 0, 0x1000, 4, IOMMU_READ);
      expect.unreachable();
    } catch (e) {
      expect((e as { mapped: number }).mapped).toBe(0x2000);
    }
  });

  it('TTBR1: IOVAs with all-ones upper bits', () => {
    const { ops } = make(armLpae64S1Format, { quirks: IO_PGTABLE_QUIRK_ARM_TTBR1 });
    const iova = 0xffff_8000_1234_0000n;
    ops.mapPages(iova, 0x5000_0000, 0x1000, 1, IOMMU_READ);
    expect(ops.iovaToPhys(iova + 0x42n)).toBe(0x5000_0042);
    expect(() => ops.mapPages(0x1234_0000, 0, 0x1000, 1, IOMMU_READ)).toThrow(/ERANGE/);
    const seen: number[] = [];
    const ops2 = allocIoPgtableOps(
      armLpae64S1Format,
      {
        quirks: IO_PGTABLE_QUIRK_ARM_TTBR1,
        pgsizeBitmap: BM4K,
        ias: 48,
        oas: 48,
        coherentWalk: true,
        tlb: { tlbAddPage: (_g, i) => seen.push(i) },
      },
      null,
    ) as IoPgtableOps;
    ops2.mapPages(iova, 0, 0x1000, 1, IOMMU_READ);
    expect(ops2.unmapPages(iova, 0x1000, 1, new IommuIotlbGather())).toBe(0x1000);
    expect(BigInt(seen[0] as number)).toBe(iova);
  });

  it('read_and_clear_dirty with ARM_HD', () => {
    const { ops } = make(armLpae64S1Format, { quirks: IO_PGTABLE_QUIRK_ARM_HD });
    ops.mapPages(0, 0, 0x1000, 4, IOMMU_READ | IOMMU_WRITE);
    ops.mapPages(0x4000, 0x4000, 0x1000, 1, IOMMU_READ);
    const rec: Array<[number, number]> = [];
    const bm = { record: (i: number, l: number) => void rec.push([i, l]) };
    ops.readAndClearDirty(0, 0x5000, IOMMU_DIRTY_NO_CLEAR, bm);
    expect(rec.length).toBe(4);
    ops.readAndClearDirty(0, 0x5000, 0, bm);
    expect(rec.length).toBe(8);
    ops.readAndClearDirty(0, 0x5000, 0, bm);
    expect(rec.length).toBe(8); // now clean: AP[2] set
    expect((ops.pgtableWalk(0)[3] as bigint) & 0x80n).toBe(0x80n);
    expect(() => ops.readAndClearDirty(0, 0x6000, 0, bm)).toThrow(/EINVAL/);
    expect(() => ops.readAndClearDirty(0, 0, 0, bm)).toThrow(/EINVAL/);
    const s2 = make(armLpae64S2Format).ops;
    expect(() => s2.readAndClearDirty(0, 0x1000, 0, bm)).toThrow(/EINVAL/);
  });

  it('TLB callbacks in Linux order: flushWalk per removed table, then addPage per slot; flushAll on free', () => {
    const log: string[] = [];
    const cfg: IoPgtableCfg = {
      quirks: 0,
      pgsizeBitmap: BM4K,
      ias: 48,
      oas: 48,
      coherentWalk: true,
      tlb: {
        tlbFlushAll: () => void log.push('all'),
        tlbFlushWalk: (i, s, g) =>
          void log.push(`walk ${i.toString(16)} ${s.toString(16)} ${g.toString(16)}`),
        tlbAddPage: (_g, i, s) => void log.push(`add ${i.toString(16)} ${s.toString(16)}`),
      },
    };
    const ops = allocIoPgtableOps(armLpae64S1Format, cfg, null) as IoPgtableOps;
    ops.mapPages(0, 0, 0x1000, 2, IOMMU_READ); // table under 2M slot 0
    ops.mapPages(0x20_0000, 0x20_0000, 0x20_0000, 1, IOMMU_READ); // block at slot 1
    ops.mapPages(0x40_0000, 0, 0x1000, 1, IOMMU_READ); // table under slot 2
    const gather = new IommuIotlbGather();
    expect(ops.unmapPages(0, 0x20_0000, 3, gather)).toBe(0x60_0000);
    expect(log).toEqual([
      'walk 0 200000 1000',
      'walk 400000 200000 1000',
      'add 0 200000',
      'add 200000 200000',
      'add 400000 200000',
    ]);
    log.length = 0;
    ops.mapPages(0, 0, 0x1000, 1, IOMMU_READ);
    expect(ops.unmapPages(0, 0x1000, 1, null)).toBe(0x1000);
    gather.queued = true;
    ops.mapPages(0, 0, 0x1000, 1, IOMMU_READ);
    expect(ops.unmapPages(0, 0x1000, 1, gather)).toBe(0x1000);
    expect(log).toEqual([]); // no gather, or a queued one: no tlbAddPage
    // Map over an (emptied) table with a block removes it with tlbFlushWalk.
    ops.mapPages(0, 0, 0x20_0000, 1, IOMMU_READ);
    expect(log).toEqual(['walk 0 200000 1000']);
    freeIoPgtableOps(ops);
    expect(log).toEqual(['walk 0 200000 1000', 'all']);
  });

  it('emptied tables stay until a larger unmap or free', () => {
    const { ops } = make(armLpae64S1Format);
    const mem = ops.memory as unknown as { liveTables: number };
    ops.mapPages(0, 0, 0x1000, 1, IOMMU_READ);
    expect(mem.liveTables).toBe(4);
    expect(ops.unmapPages(0, 0x1000, 1, null)).toBe(0x1000);
    expect(mem.liveTables).toBe(4);
    expect(ops.unmapPages(0, 0x20_0000, 1, null)).toBe(0x20_0000);
    expect(mem.liveTables).toBe(3);
    freeIoPgtableOps(ops);
    expect(mem.liveTables).toBe(0);
  });

  it('allocation failure: ENOMEM with the bytes already mapped, no leak', () => {
    const { ops } = make(armLpae64S1Format);
    const mem = ops.memory as unknown as { failNextAllocs(n: number): void; liveTables: number };
    ops.mapPages(0x1f_f000, 0, 0x1000, 1, IOMMU_READ);
    mem.failNextAllocs(1);
    try {
      ops.mapPages(0x1f_f000 + 0x1000 * 0, 0, 0x1000, 1, IOMMU_READ);
    } catch {
      /* EEXIST */
    }
    mem.failNextAllocs(1);
    try {
      ops.mapPages(0x1f_e000, 0, 0x1000, 1, IOMMU_READ);
      ops.mapPages(0x20_0000, 0, 0x1000, 1, IOMMU_READ);
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe('ENOMEM');
    }
    freeIoPgtableOps(ops);
    expect(mem.liveTables).toBe(0);
  });
});
