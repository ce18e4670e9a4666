import { isErrnoError } from '@iommu-ts/base';
import {
  allocIoPgtableOps,
  armLpae64S1Format,
  freeIoPgtableOps,
  IO_PGTABLE_QUIRK_NO_WARN,
  IOMMU_READ,
  IOMMU_WRITE,
  IommuIotlbGather,
  type IoPgtableCfg,
  type IoPgtableOps,
} from '@iommu-ts/io-pgtable';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_PAGE_ORDER, PAGE_SIZE } from './page.js';
import { BusError, PhysicalMemory } from './physical-memory.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

function errCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (isErrnoError(e)) return e.code;
    throw e;
  }
  return undefined;
}

describe('PhysicalMemory construction', () => {
  it('defaults to 64 GiB at 1 GiB and costs nothing until touched', () => {
    const m = new PhysicalMemory();
    expect(m.base).toBe(0x4000_0000);
    expect(m.size).toBe(64 * GiB);
    expect(m.totalPages).toBe(16 * 2 ** 20);
    const s = m.stats();
    expect(s).toMatchObject({
      totalPages: m.totalPages,
      allocatedPages: 0,
      freePages: m.totalPages,
      backedPages: 0,
      backedBytes: 0,
    });
    expect(s.metadataBytes).toBeLessThan(1 * MiB);
  });
  it('rejects bad geometry', () => {
    expect(errCode(() => new PhysicalMemory({ base: 123 }))).toBe('EINVAL');
    expect(errCode(() => new PhysicalMemory({ size: 100 }))).toBe('EINVAL');
    expect(errCode(() => new PhysicalMemory({ size: 0 }))).toBe('EINVAL');
    expect(errCode(() => new PhysicalMemory({ base: 2 ** 52 - 4096, size: 8192 }))).toBe('EINVAL');
  });
  it('supports an odd base and size (blocks stay naturally aligned in absolute PA)', () => {
    const m = new PhysicalMemory({ base: 0x3000, size: 0x7d000 });
    const pa = m.allocPages(4);
    expect(pa % (16 * PAGE_SIZE)).toBe(0);
    expect(m.contains(pa, 16 * PAGE_SIZE)).toBe(true);
    // Drain everything page by page: exactly totalPages allocations, then ENOMEM.
    m.freePages(pa, 4);
    const seen = new Set<number>();
    for (let i = 0; i < m.totalPages; i++) seen.add(m.allocPages(0));
    expect(seen.size).toBe(m.totalPages);
    expect(errCode(() => m.allocPages(0))).toBe('ENOMEM');
    for (const p of seen) m.freePages(p, 0);
    expect(m.stats().allocatedPages).toBe(0);
    // Everything merged back: the largest aligned block fits again.
    expect(m.allocPages(5) % (32 * PAGE_SIZE)).toBe(0);
  });
});

describe('page allocator', () => {
  it('is deterministic: lowest block of the smallest fitting order, realloc gets the same address', () => {
    const m = new PhysicalMemory({ size: 16 * MiB });
    const a = m.allocPages(0);
    const b = m.allocPages(0);
    const c = m.allocPages(2);
    expect([a, b, c]).toEqual([m.base, m.base + 0x1000, m.base + 0x4000]);
    m.freePages(b, 0);
    expect(m.allocPages(0)).toBe(b);
    m.freePages(c, 2);
    expect(m.allocPages(1)).toBe(m.base + 0x2000);
  });

  it('throws ENOMEM when exhausted and EINVAL for a bad order', () => {
    const m = new PhysicalMemory({ size: 4 * MiB });
    expect(errCode(() => m.allocPages(11))).toBe('ENOMEM');
    expect(errCode(() => m.allocPages(MAX_PAGE_ORDER + 1))).toBe('EINVAL');
    expect(errCode(() => m.allocPages(-1))).toBe('EINVAL');
    expect(m.allocPages(10)).toBe(m.base);
    expect(errCode(() => m.allocPages(0))).toBe('ENOMEM');
  });

  it('rejects double free, wrong order, tail frees, busy frees', () => {
    const m = new PhysicalMemory({ size: 16 * MiB });
    const p = m.allocPages(2);
    expect(errCode(() => m.freePages(p, 1))).toBe('EINVAL');
    expect(errCode(() => m.freePages(p + PAGE_SIZE, 0))).toBe('EINVAL');
    m.getPage(p);
    expect(errCode(() => m.freePages(p, 2))).toBe('EBUSY');
    m.putPage(p);
    m.pinPage(p);
    expect(errCode(() => m.freePages(p, 2))).toBe('EBUSY');
    m.unpinPage(p);
    m.freePages(p, 2);
    expect(errCode(() => m.freePages(p, 2))).toBe('EINVAL');
    expect(m.stats().allocatedPages).toBe(0);
  });

  it('matches a model: no overlap, natural alignment, conservation, ENOMEM only when no block fits', () => {
    const size = 8 * MiB; // 2048 pages
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(fc.record({ alloc: fc.integer({ min: 0, max: 9 }) }), fc.record({ free: fc.nat() })),
          {
            minLength: 1,
            maxLength: 120,
          },
        ),
        (ops) => {
          const m = new PhysicalMemory({ size });
          const live: { pa: number; order: number }[] = [];
          const owner = new Map<number, number>(); // page index -> block id
          let used = 0;
          const trace: number[] = [];
          for (const op of ops) {
            if ('alloc' in op) {
              const order = op.alloc;
              let pa: number;
              try {
                pa = m.allocPages(order);
              } catch (e) {
                expect(isErrnoError(e, 'ENOMEM')).toBe(true);
                // No naturally aligned free run of 2^order pages exists in the model.
                const n = 2 ** order;
                for (let i = 0; i + n <= size / PAGE_SIZE; i += n) {
                  let free = true;
                  for (let j = i; j < i + n && free; j++) if (owner.has(j)) free = false;
                  expect(free).toBe(false);
                }
                trace.push(-1);
                continue;
              }
              trace.push(pa);
              expect((pa - m.base) % (PAGE_SIZE * 2 ** order)).toBe(0);
              const first = (pa - m.base) / PAGE_SIZE;
              for (let j = first; j < first + 2 ** order; j++) {
                expect(owner.has(j)).toBe(false);
                owner.set(j, pa);
              }
              used += 2 ** order;
              live.push({ pa, order });
              expect(m.compoundHead(pa + (2 ** order - 1) * PAGE_SIZE)).toBe(pa);
              expect(m.compoundOrder(pa + (2 ** order - 1) * PAGE_SIZE)).toBe(order);
            } else if (live.length > 0) {
              const [blk] = live.splice(op.free % live.length, 1);
              if (blk === undefined) continue;
              m.freePages(blk.pa, blk.order);
              const first = (blk.pa - m.base) / PAGE_SIZE;
              for (let j = first; j < first + 2 ** blk.order; j++) owner.delete(j);
              used -= 2 ** blk.order;
              expect(m.isAllocated(blk.pa)).toBe(false);
            }
            expect(m.stats().allocatedPages).toBe(used);
          }
          // Determinism: replaying gives the same addresses.
          const m2 = new PhysicalMemory({ size });
          const live2: { pa: number; order: number }[] = [];
          const trace2: number[] = [];
          for (const op of ops) {
            if ('alloc' in op) {
              try {
                const pa = m2.allocPages(op.alloc);
                trace2.push(pa);
                live2.push({ pa, order: op.alloc });
              } catch {
                trace2.push(-1);
              }
            } else if (live2.length > 0) {
              const [blk] = live2.splice(op.free % live2.length, 1);
              if (blk !== undefined) m2.freePages(blk.pa, blk.order);
            }
          }
          expect(trace2).toEqual(trace);
          // Free everything: the whole RAM coalesces again into one order-11 region (two order-10 blocks).
          for (const b of live) m.freePages(b.pa, b.order);
          expect(m.stats().allocatedPages).toBe(0);
          expect(m.allocPages(10)).toBe(m.base);
          expect(m.allocPages(10)).toBe(m.base + 4 * MiB);
        },
      ),
      { numRuns: 150, seed: 7 },
    );
  });

  it('splitPage turns an order-n block into independent pages', () => {
    const m = new PhysicalMemory({ size: 16 * MiB });
    const p = m.allocPages(2);
    m.write32(p + 3 * PAGE_SIZE, 0xdeadbeef);
    m.setDirty(p, true);
    m.splitPage(p);
    for (let i = 0; i < 4; i++) {
      const q = p + i * PAGE_SIZE;
      expect(m.compoundHead(q)).toBe(q);
      expect(m.compoundOrder(q)).toBe(0);
      expect(m.pageRefcount(q)).toBe(1);
      expect(m.isDirty(q)).toBe(true);
    }
    expect(m.read32(p + 3 * PAGE_SIZE)).toBe(0xdeadbeef);
    m.freePages(p + PAGE_SIZE, 0);
    expect(m.read32(p + 3 * PAGE_SIZE)).toBe(0xdeadbeef);
    for (const i of [0, 2, 3]) m.freePages(p + i * PAGE_SIZE, 0);
    expect(m.stats()).toMatchObject({ allocatedPages: 0, backedPages: 0 });
    expect(m.allocPages(2)).toBe(p);
  });
});

describe('struct page metadata', () => {
  it('refcount: get/put, the last put frees', () => {
    const m = new PhysicalMemory({ size: 16 * MiB });
    const p = m.allocPages(0);
    expect(m.pageRefcount(p)).toBe(1);
    expect(m.getPage(p)).toBe(2);
    expect(m.putPage(p)).toBe(false);
    expect(m.pageRefcount(p)).toBe(1);
    expect(m.putPage(p)).toBe(true);
    expect(m.isAllocated(p)).toBe(false);
    expect(m.pageRefcount(p)).toBe(0);
    expect(errCode(() => m.putPage(p))).toBe('EINVAL');
    expect(errCode(() => m.getPage(p))).toBe('EINVAL');
  });

  it('pins hold one reference each; refcount counts pins; unpin of the last reference frees', () => {
    const m = new PhysicalMemory({ size: 16 * MiB });
    const p = m.allocPages(0);
    expect(m.pinPage(p)).toBe(1);
    expect(m.pinPage(p)).toBe(2);
    expect(m.pinCount(p)).toBe(2);
    expect(m.pageRefcount(p)).toBe(3);
    expect(m.putPage(p)).toBe(false); // the allocation reference
    expect(m.pageRefcount(p)).toBe(2);
    expect(errCode(() => m.putPage(p))).toBe('EINVAL'); // would steal a pin's reference
    expect(m.unpinPage(p)).toBe(false);
    expect(m.unpinPage(p)).toBe(true);
    expect(m.isAllocated(p)).toBe(false);
    const q = m.allocPages(0);
    expect(errCode(() => m.unpinPage(q))).toBe('EINVAL');
  });

  it('stats().pinnedPages counts the pages of blocks with a pin, once however many pins', () => {
    const m = new PhysicalMemory({ size: 16 * MiB });
    const a = m.allocPages(0);
    const b = m.allocPages(3);
    expect(m.stats().pinnedPages).toBe(0);
    m.pinPage(a);
    m.pinPage(a);
    expect(m.stats().pinnedPages).toBe(1);
    m.pinPage(b + 3 * PAGE_SIZE);
    expect(m.stats().pinnedPages).toBe(9);
    expect(errCode(() => m.splitPage(b))).toBe('EBUSY');
    expect(m.stats().pinnedPages).toBe(9);
    m.unpinPage(a);
    expect(m.stats().pinnedPages).toBe(9);
    m.unpinPage(a);
    m.unpinPage(b);
    expect(m.stats().pinnedPages).toBe(0);
  });

  it('dirty flag is per block and cleared on free', () => {
    const m = new PhysicalMemory({ size: 16 * MiB });
    const p = m.allocPages(3);
    expect(m.isDirty(p)).toBe(false);
    m.setDirty(p + 5 * PAGE_SIZE + 7, true);
    expect(m.isDirty(p)).toBe(true);
    expect(m.isDirty(p + 7 * PAGE_SIZE)).toBe(true);
    m.setDirty(p, false);
    expect(m.isDirty(p + PAGE_SIZE)).toBe(false);
    m.setDirty(p, true);
    m.freePages(p, 3);
    expect(m.isDirty(p)).toBe(false);
    expect(m.allocPages(3)).toBe(p);
    expect(m.isDirty(p)).toBe(false);
    expect(errCode(() => m.setDirty(p + 8 * PAGE_SIZE, true))).toBe('EINVAL');
  });

  it('compound metadata: tail operations act on the head', () => {
    const m = new PhysicalMemory({ size: 64 * MiB });
    const h = m.allocPages(9);
    const tail = h + 300 * PAGE_SIZE + 123;
    expect(m.compoundHead(tail)).toBe(h);
    expect(m.compoundOrder(tail)).toBe(9);
    expect(m.isAllocated(tail)).toBe(true);
    m.getPage(tail);
    m.pinPage(h + 511 * PAGE_SIZE);
    expect(m.pageRefcount(h)).toBe(3);
    expect(m.pinCount(tail)).toBe(1);
    expect(m.pageInfo(tail)).toEqual({
      pa: h + 300 * PAGE_SIZE,
      allocated: true,
      head: h,
      order: 9,
      refcount: 3,
      pincount: 1,
      dirty: false,
      backed: false,
    });
    const after = h + 512 * PAGE_SIZE;
    expect(m.isAllocated(after)).toBe(false);
    expect(m.compoundHead(after + 5)).toBe(after);
    expect(m.compoundOrder(after)).toBe(0);
    m.unpinPage(tail);
    m.putPage(tail);
    expect(m.putPage(tail)).toBe(true);
    expect(m.stats().allocatedPages).toBe(0);
  });
});

describe('access', () => {
  it('little-endian accesses of every width, across page boundaries', () => {
    const m = new PhysicalMemory({ size: 16 * MiB });
    const p = m.allocPages(0);
    const q = m.allocPages(0);
    expect(q).toBe(p + PAGE_SIZE);
    const edge = p + PAGE_SIZE - 3;
    m.write64(edge, 0x0102_0304_0506_0708n);
    expect(m.read64(edge)).toBe(0x0102_0304_0506_0708n);
    expect(m.read8(edge)).toBe(0x08);
    expect(m.read8(p + PAGE_SIZE)).toBe(0x05);
    expect(m.read16(edge + 2)).toBe(0x0506);
    expect(m.read32(edge + 1)).toBe(0x0405_0607);
    expect(m.read64Lo(edge)).toBe(0x0506_0708);
    expect(m.read64Hi(edge)).toBe(0x0102_0304);
    m.write32(p + PAGE_SIZE - 2, 0xffee_ddcc);
    expect(m.readBytes(p + PAGE_SIZE - 2, 4)).toEqual(new Uint8Array([0xcc, 0xdd, 0xee, 0xff]));
    m.write16(p + PAGE_SIZE - 1, 0xabcd);
    expect(m.read8(p + PAGE_SIZE - 1)).toBe(0xcd);
    expect(m.read8(p + PAGE_SIZE)).toBe(0xab);
    m.write64(p, 0xffff_ffff_ffff_ffffn);
    expect(m.read64(p)).toBe(0xffff_ffff_ffff_ffffn);
    expect(m.read32(p + 4)).toBe(0xffff_ffff);
    m.write64(p, -1n);
    expect(m.read64(p)).toBe(0xffff_ffff_ffff_ffffn);
    m.write64Halves(p + 8, 0x8000_0001, 0x7fff_fffe);
    expect(m.read64(p + 8)).toBe(0x7fff_fffe_8000_0001n);
    m.write8(p + 100, 0x1ff);
    expect(m.read8(p + 100)).toBe(0xff);
  });

  it('random byte writes agree with a byte-array model (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            at: fc.nat(3 * PAGE_SIZE - 9),
            w: fc.constantFrom(1, 2, 4, 8),
            v: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          }),
          { maxLength: 60 },
        ),
        (ops) => {
          const m = new PhysicalMemory({ size: 4 * MiB });
          const base = m.allocPages(2) + PAGE_SIZE / 2;
          const model = new Uint8Array(3 * PAGE_SIZE);
          const dv = new DataView(model.buffer);
          for (const o of ops) {
            const pa = base + o.at;
            if (o.w === 1) {
              m.write8(pa, Number(o.v & 0xffn));
              dv.setUint8(o.at, Number(o.v & 0xffn));
            } else if (o.w === 2) {
              m.write16(pa, Number(o.v & 0xffffn));
              dv.setUint16(o.at, Number(o.v & 0xffffn), true);
            } else if (o.w === 4) {
              m.write32(pa, Number(o.v & 0xffff_ffffn));
              dv.setUint32(o.at, Number(o.v & 0xffff_ffffn), true);
            } else {
              m.write64(pa, o.v);
              dv.setBigUint64(o.at, o.v, true);
            }
          }
          expect(m.readBytes(base, model.length)).toEqual(model);
          for (const o of ops) {
            expect(m.read32(base + o.at)).toBe(dv.getUint32(o.at, true));
            expect(m.read64(base + o.at)).toBe(dv.getBigUint64(o.at, true));
          }
        },
      ),
      { numRuns: 100, seed: 11 },
    );
  });

  it('BusError for any byte outside RAM, nothing written', () => {
    const m = new PhysicalMemory({ size: 1 * MiB });
    const end = m.base + m.size;
    const bus = (fn: () => unknown): BusError => {
      try {
        fn();
      } catch (e) {
        if (e instanceof BusError) return e;
        throw e;
      }
      throw new Error('no bus error');
    };
    let e = bus(() => m.read8(m.base - 1));
    expect(e.pa).toBe(m.base - 1);
    expect(e.code).toBe('EFAULT');
    expect(e.errno).toBe(14);
    expect(e.write).toBe(false);
    e = bus(() => m.write32(end - 2, 0x12345678));
    expect(e).toMatchObject({ pa: end, size: 4, write: true });
    expect(m.read16(end - 2)).toBe(0);
    expect(bus(() => m.read64(end - 4)).pa).toBe(end);
    expect(bus(() => m.read64Hi(end - 4)).pa).toBe(end);
    expect(bus(() => m.writeBytes(end - 1, new Uint8Array(2))).pa).toBe(end);
    expect(bus(() => m.readBytes(0, 4)).pa).toBe(0);
    expect(bus(() => m.tableWords(end)).pa).toBe(end);
    expect(bus(() => m.pageRefcount(end)).pa).toBe(end);
    expect(bus(() => m.zeroPage(end)).pa).toBe(end);
    expect(m.read8(end - 1)).toBe(0);
    expect(m.contains(end - 1)).toBe(true);
    expect(m.contains(end - 1, 2)).toBe(false);
  });

  it('allocated-but-untouched pages read as zeros without backing; zero-on-alloc; free drops contents', () => {
    const m = new PhysicalMemory({ size: 16 * MiB });
    const p = m.allocPages(1);
    expect(m.read64(p + 4000)).toBe(0n);
    expect(m.readBytes(p, 2 * PAGE_SIZE).every((b) => b === 0)).toBe(true);
    expect(m.stats().backedPages).toBe(0);
    m.write8(p + PAGE_SIZE + 1, 7);
    expect(m.stats().backedPages).toBe(2); // a compound block is backed as a whole
    expect(m.isBacked(p)).toBe(true);
    m.freePages(p, 1);
    expect(m.stats().backedPages).toBe(0);
    // DMA into free RAM is allowed; zeroing allocation drops it, zero: false keeps it.
    m.write32(p + 8, 0xaa55);
    expect(m.read32(p + 8)).toBe(0xaa55);
    const again = m.allocPages(1);
    expect(again).toBe(p);
    expect(m.read32(p + 8)).toBe(0);
    m.freePages(p, 1);
    m.write32(p + PAGE_SIZE + 8, 0x1234);
    const keep = m.allocPages(1, { zero: false });
    expect(m.read32(keep + PAGE_SIZE + 8)).toBe(0x1234);
    // and the kept contents now live in one contiguous buffer
    expect(m.tableWords(keep)).toBe(m.tableWords(keep + PAGE_SIZE));
    expect(m.tableWords(keep)[m.tableWordIndex(keep + PAGE_SIZE + 8)]).toBe(0x1234);
  });

  it('fill, copyPage, zeroPage', () => {
    const m = new PhysicalMemory({ size: 16 * MiB });
    const a = m.allocPages(0);
    const b = m.allocPages(0);
    m.fill(a + 10, 5000, 0x5a);
    expect(m.read8(a + 9)).toBe(0);
    expect(m.read8(a + 10)).toBe(0x5a);
    expect(m.read8(b + 5009 - PAGE_SIZE)).toBe(0x5a);
    expect(m.read8(b + 5010 - PAGE_SIZE)).toBe(0);
    const c = m.allocPages(0);
    m.copyPage(c, a);
    expect(m.readBytes(c, PAGE_SIZE)).toEqual(m.readBytes(a, PAGE_SIZE));
    m.zeroPage(a);
    expect(m.isBacked(a)).toBe(false);
    expect(m.read32(a + 12)).toBe(0);
    m.copyPage(c, a);
    expect(m.isBacked(c)).toBe(false);
    const big = m.allocPages(1);
    m.write32(big + PAGE_SIZE, 1);
    m.zeroPage(big + PAGE_SIZE);
    expect(m.read32(big + PAGE_SIZE)).toBe(0);
    expect(m.isBacked(big + PAGE_SIZE)).toBe(true); // part of a compound buffer
    m.fill(m.allocPages(0), PAGE_SIZE, 0);
    expect(errCode(() => m.copyPage(a + 1, b))).toBe('EINVAL');
    expect(errCode(() => m.zeroPage(a + 1))).toBe('EINVAL');
  });

  it('memory is proportional to touched pages: 64 GiB with 1,000 scattered pages', () => {
    const m = new PhysicalMemory();
    const pages: number[] = [];
    const spacers: number[] = [];
    // Lowest-first allocation packs blocks; untouched spacer blocks of orders 0 … 10 after each page
    // push the next page 8 MiB further.
    for (let i = 0; i < 1000; i++) {
      pages.push(m.allocPages(0));
      for (let k = 0; k <= 10; k++) spacers.push(m.allocPages(k));
    }
    for (const [i, p] of pages.entries()) m.write64(p + ((i * 8) % PAGE_SIZE), BigInt(i) + 1n);
    const span = (pages[999] as number) - (pages[0] as number);
    expect(span).toBeGreaterThan(7 * GiB);
    const s = m.stats();
    expect(s.backedPages).toBe(1000);
    expect(s.backedBytes).toBeLessThan(8 * MiB);
    // Bookkeeping is proportional to allocated blocks (12,000 here: 1,000 pages + 11,000 spacers).
    expect(s.metadataBytes).toBeLessThan(1024 * (pages.length + spacers.length));
    console.log(
      `64 GiB PhysicalMemory, 1000 scattered 4K pages over ${(span / GiB).toFixed(1)} GiB: backedBytes ${s.backedBytes} (${(s.backedBytes / MiB).toFixed(2)} MiB), metadata ≈ ${(s.metadataBytes / MiB).toFixed(2)} MiB for ${pages.length + spacers.length} blocks`,
    );
    for (const [i, p] of pages.entries()) expect(m.read64(p + ((i * 8) % PAGE_SIZE))).toBe(BigInt(i) + 1n);
    for (const p of pages) m.freePages(p, 0);
    for (const [i, p] of spacers.entries()) m.freePages(p, i % 11);
    expect(m.stats()).toMatchObject({ allocatedPages: 0, backedPages: 0, backedBytes: 0 });
  });

  it('a 1 GiB block can be allocated and backed lazily', () => {
    const m = new PhysicalMemory({ size: 4 * GiB });
    const g = m.allocPages(MAX_PAGE_ORDER);
    expect(g % GiB).toBe(0);
    expect(m.compoundHead(g + GiB - 1)).toBe(g);
    expect(m.stats().backedPages).toBe(0);
    m.freePages(g, MAX_PAGE_ORDER);
  });
});

describe('PageTableMemory', () => {
  it('multi-page tables are one contiguous word array', () => {
    const m = new PhysicalMemory({ size: 16 * MiB });
    m.allocPages(0);
    const t = m.allocTable(64 * 1024);
    expect(t % (64 * 1024)).toBe(0);
    const w = m.tableWords(t);
    const i = m.tableWordIndex(t);
    expect(w.length).toBe(16 * 1024);
    expect(i).toBe(0);
    w[i + 2 * 5000] = 0x1234_5003;
    w[i + 2 * 5000 + 1] = 0x0060_0000;
    expect(m.read64(t + 8 * 5000)).toBe(0x0060_0000_1234_5003n);
    expect(m.tableWords(t + 8 * 5000)).toBe(w);
    expect(m.tableWordIndex(t + 8 * 5000)).toBe(2 * 5000);
    const v = m.tableView(t + 40);
    expect(v.words).toBe(w);
    expect(v.index).toBe(10);
    m.write32(t + 12, 99);
    expect(m.read32(t + 12)).toBe(99);
    const small = m.allocTable(64);
    expect(small % PAGE_SIZE).toBe(0);
    expect(m.compoundOrder(small)).toBe(0);
    m.freeTable(small, 64);
    m.freeTable(t, 64 * 1024);
    expect(errCode(() => m.allocTable(2 * GiB))).toBe('EINVAL');
  });

  for (const [name, granule, block, bm] of [
    ['4K', 0x1000, 0x200000, 0x1000n | 0x200000n | 0x40000000n],
    ['16K', 0x4000, 0x2000000, 0x4000n | 0x2000000n],
    ['64K', 0x10000, 0x20000000, 0x10000n | 0x20000000n],
  ] as const) {
    it(`io-pgtable ARM_64_LPAE_S1 ${name} granule runs on it and frees every page`, () => {
      const m = new PhysicalMemory({ size: 2 * GiB });
      const cfg: IoPgtableCfg = {
        quirks: IO_PGTABLE_QUIRK_NO_WARN,
        pgsizeBitmap: bm,
        ias: 48,
        oas: 48,
        coherentWalk: true,
        memory: m,
      };
      const ops = allocIoPgtableOps(armLpae64S1Format, cfg, null) as IoPgtableOps;
      expect(ops).not.toBeNull();
      const before = m.stats().allocatedPages;
      expect(before).toBeGreaterThan(0);
      // Tables are granule-sized: blocks of the covering order.
      const data = m.allocPages(0);
      const prot = IOMMU_READ | IOMMU_WRITE;
      for (let k = 0; k < 20; k++)
        ops.mapPages(0x10_0000_0000 + k * 7 * block + granule * k, data - (data % granule), granule, 3, prot);
      ops.mapPages(0x40_0000_0000, 0x4000_0000, block, 2, prot);
      expect(ops.iovaToPhys(0x10_0000_0000 + 1 * 7 * block + granule + 17)).toBe(
        data - (data % granule) + 17,
      );
      expect(ops.iovaToPhys(0x40_0000_0000 + block + 5)).toBe(0x4000_0000 + block + 5);
      expect(m.stats().allocatedPages).toBeGreaterThan(before);
      // Every table block holding a descriptor is a compound block of the granule's order.
      for (let k = 0; k < 20; k++)
        ops.unmapPages(0x10_0000_0000 + k * 7 * block + granule * k, granule, 3, new IommuIotlbGather());
      expect(ops.unmapPages(0x40_0000_0000, block, 2, null)).toBe(2 * block);
      expect(ops.iovaToPhys(0x40_0000_0000)).toBe(0);
      freeIoPgtableOps(ops);
      m.freePages(data, 0);
      expect(m.stats()).toMatchObject({ allocatedPages: 0, backedPages: 0 });
    });
  }
});
