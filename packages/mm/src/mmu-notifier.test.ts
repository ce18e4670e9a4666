import { describe, expect, it } from 'vitest';
import {
  MmuNotifyEvent as E,
  FLUSH_ALL_END,
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_HUGETLB,
  MAP_PRIVATE,
  Machine,
  mmuNotifierRegister,
  mmuNotifierUnregister,
  PAGE_SIZE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
} from './index.js';
import { type Rec, recorder, recordTlbi } from './mm.test-helpers.js';

const P = PAGE_SIZE;
const M2 = 0x20_0000;
// 512 GiB: the mapping is alone in its top-level entry, so freeing its tables flushes one 2 MiB stride.
const A = 2 ** 39;
const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;

function setup(arch: 'arm64' | 'x86_64') {
  const m = new Machine();
  const p = m.createProcess({ arch });
  const log: Rec[] = [];
  const sub = recorder(log);
  mmuNotifierRegister(p.mm, sub);
  recordTlbi(m, log);
  const base = m.memory.stats().allocatedPages;
  p.mmap(4 * P, RW, PRIV | MAP_FIXED, A);
  return { m, p, log, sub, base };
}

const vae = (asid: number, va: number, leaf: boolean): Rec => ({
  k: 'tlbi',
  op: { kind: 'vae1is', asid, va, leaf },
});
const start = (event: number, s: number, e: number): Rec => ({ k: 'start', event, start: s, end: e });
const end = (event: number, s: number, e: number): Rec => ({ k: 'end', event, start: s, end: e });
const sec = (s: number, e: number): Rec => ({ k: 'secondary', start: s, end: e });

// Linux's order per operation (arm64 and x86-64 both flush the mmu_gather at tlb_end_vma, so the
// leaf flush of munmap and MADV_DONTNEED is inside the notifier range; only freed page tables are
// flushed after invalidate_range_end, at tlb_finish_mmu).
describe.each(['arm64', 'x86_64'] as const)('%s MMU notifiers', (arch) => {
  /** TLBIs appear on the broadcast for arm64 only. */
  const tlbi = (...ops: Rec[]) => (arch === 'arm64' ? ops : []);
  const leaf = (asid: number, ...vas: number[]) => tlbi(...vas.map((va) => vae(asid, va, true)));
  const aside = (asid: number) => tlbi({ k: 'tlbi', op: { kind: 'aside1is', asid } });

  it('munmap: UNMAP start, PTEs cleared and leaf-flushed, end, then the freed tables flushed non-leaf', () => {
    const { m, p, log, base } = setup(arch);
    p.write(A + P, new Uint8Array([1]));
    const asid = p.mm.asid;
    log.length = 0;
    p.munmap(A, 4 * P);
    expect(log).toEqual([
      start(E.UNMAP, A, A + 4 * P),
      ...leaf(asid, A + P),
      sec(A + P, A + 2 * P),
      end(E.UNMAP, A, A + 4 * P),
      // free_pgtables freed the PTE, PMD and PUD tables of A: tlb_finish_mmu, last_level = false,
      // stride 2 MiB (a last-level table went), span [A, A + 4 KiB).
      ...tlbi(vae(asid, A, false)),
      sec(A, A + M2),
    ]);
    expect(m.memory.stats().allocatedPages).toBe(base);
    expect(p.mm.pgtable.tablePages).toBe(1);
    log.length = 0;
    p.munmap(A, P); // nothing mapped any more: no callbacks
    expect(log).toEqual([]);
  });

  it('munmap notifies the whole request (not clipped to the VMAs); tables a neighbour uses stay', () => {
    const { p, log } = setup(arch);
    p.mmap(4 * P, PROT_READ, PRIV | MAP_FIXED, A + 8 * P);
    p.write(A, new Uint8Array([1]));
    p.read(A + 8 * P, 1);
    const asid = p.mm.asid;
    const tables = p.mm.pgtable.tablePages;
    log.length = 0;
    p.munmap(A - 4 * P, 6 * P);
    expect(log).toEqual([
      start(E.UNMAP, A - 4 * P, A + 2 * P),
      ...leaf(asid, A),
      sec(A, A + P),
      end(E.UNMAP, A - 4 * P, A + 2 * P),
    ]);
    expect(p.mm.pgtable.tablePages).toBe(tables);
    log.length = 0;
    p.munmap(A + 2 * P, 2 * P); // VMA present, nothing populated: start/end only
    expect(log).toEqual([start(E.UNMAP, A + 2 * P, A + 4 * P), end(E.UNMAP, A + 2 * P, A + 4 * P)]);
  });

  it('munmap over several VMAs: one range, a leaf flush per VMA (tlb_end_vma), end, table flush', () => {
    const { p, log } = setup(arch);
    p.write(A, new Uint8Array([1]));
    p.write(A + 3 * P, new Uint8Array([1]));
    p.mprotect(A + 2 * P, 2 * P, PROT_READ);
    const asid = p.mm.asid;
    log.length = 0;
    p.munmap(A, 4 * P);
    expect(log).toEqual([
      start(E.UNMAP, A, A + 4 * P),
      ...leaf(asid, A),
      sec(A, A + P),
      ...leaf(asid, A + 3 * P),
      sec(A + 3 * P, A + 4 * P),
      end(E.UNMAP, A, A + 4 * P),
      ...tlbi(vae(asid, A, false)),
      sec(A, A + M2),
    ]);
  });

  it('MADV_DONTNEED: CLEAR start, leaf flush of the cleared span, end; tables stay', () => {
    const { p, log } = setup(arch);
    p.write(A + P, new Uint8Array([9]));
    const asid = p.mm.asid;
    const tables = p.mm.pgtable.tablePages;
    log.length = 0;
    p.madvise(A, 2 * P, MADV_DONTNEED);
    expect(log).toEqual([
      start(E.CLEAR, A, A + 2 * P),
      ...leaf(asid, A + P),
      sec(A + P, A + 2 * P),
      end(E.CLEAR, A, A + 2 * P),
    ]);
    expect(p.mm.pgtable.tablePages).toBe(tables);
  });

  it('mprotect: PROTECTION_VMA start/end per populated region, then the leaf flush of the changed PTEs', () => {
    const { p, log } = setup(arch);
    p.write(A, new Uint8Array([1]));
    p.write(A + P, new Uint8Array([1]));
    const asid = p.mm.asid;
    log.length = 0;
    p.mprotect(A, 4 * P, PROT_READ);
    expect(log).toEqual([
      start(E.PROTECTION_VMA, A, A + 4 * P),
      end(E.PROTECTION_VMA, A, A + 4 * P),
      ...leaf(asid, A, A + P),
      sec(A, A + 2 * P),
    ]);
    // Untouched VMA under a populated PUD entry: notified (change_pud_range), nothing to flush.
    p.mmap(4 * P, RW, PRIV | MAP_FIXED, A + 8 * P);
    log.length = 0;
    p.mprotect(A + 8 * P, 4 * P, PROT_READ);
    expect(log).toEqual([
      start(E.PROTECTION_VMA, A + 8 * P, A + 12 * P),
      end(E.PROTECTION_VMA, A + 8 * P, A + 12 * P),
    ]);
    // A VMA whose top-level entry is empty: no callbacks at all.
    p.mmap(4 * P, RW, PRIV | MAP_FIXED, 2 * A);
    log.length = 0;
    p.mprotect(2 * A, 4 * P, PROT_READ);
    expect(log).toEqual([]);
    // Two VMA parts: each gets its own range and its own flush (tlb_end_vma per VMA).
    p.mprotect(A + P, P, PROT_READ | PROT_EXEC);
    log.length = 0;
    p.mprotect(A, 2 * P, RW);
    expect(log).toEqual([
      start(E.PROTECTION_VMA, A, A + P),
      end(E.PROTECTION_VMA, A, A + P),
      ...leaf(asid, A),
      sec(A, A + P),
      start(E.PROTECTION_VMA, A + P, A + 2 * P),
      end(E.PROTECTION_VMA, A + P, A + 2 * P),
      ...leaf(asid, A + P),
      sec(A + P, A + 2 * P),
    ]);
  });

  it('hugetlb mprotect: start, change, non-leaf 2 MiB flush, end (hugetlb_change_protection)', () => {
    const { p, log } = setup(arch);
    const h = p.mmap(M2, RW, PRIV | MAP_HUGETLB);
    p.write(h, new Uint8Array([1]));
    const asid = p.mm.asid;
    log.length = 0;
    p.mprotect(h, M2, PROT_READ);
    expect(log).toEqual([
      start(E.PROTECTION_VMA, h, h + M2),
      ...tlbi(vae(asid, h, false)),
      sec(h, h + M2),
      end(E.PROTECTION_VMA, h, h + M2),
    ]);
  });

  it('COW break: CLEAR over the one page, PTE cleared and flushed (VALE1IS), new PTE, end', () => {
    const { p, log } = setup(arch);
    p.write(A + 2 * P, new Uint8Array([1]));
    const c = p.fork();
    const asid = p.mm.asid;
    log.length = 0;
    p.write(A + 2 * P + 7, new Uint8Array([2]));
    expect(log).toEqual([
      start(E.CLEAR, A + 2 * P, A + 3 * P),
      ...leaf(asid, A + 2 * P),
      sec(A + 2 * P, A + 3 * P),
      end(E.CLEAR, A + 2 * P, A + 3 * P),
    ]);
    c.exit();
  });

  it('migration and reclaim: CLEAR start, immediate flush, end', () => {
    const { p, log } = setup(arch);
    p.write(A + 3 * P, new Uint8Array([8]));
    p.mmap(P, PROT_READ, PRIV | MAP_FIXED, A + 8 * P);
    p.read(A + 8 * P, 1);
    const asid = p.mm.asid;
    log.length = 0;
    const newPa = p.migratePage(A + 3 * P + 5);
    expect(log).toEqual([
      start(E.CLEAR, A + 3 * P, A + 4 * P),
      ...leaf(asid, A + 3 * P),
      sec(A + 3 * P, A + 4 * P),
      end(E.CLEAR, A + 3 * P, A + 4 * P),
    ]);
    expect(p.read(A + 3 * P, 1)[0]).toBe(8);
    expect(p.hwAccess(A + 3 * P, false)).toBe(newPa);
    log.length = 0;
    p.reclaim(A + 8 * P);
    expect(log).toEqual([
      start(E.CLEAR, A + 8 * P, A + 9 * P),
      ...leaf(asid, A + 8 * P),
      sec(A + 8 * P, A + 9 * P),
      end(E.CLEAR, A + 8 * P, A + 9 * P),
    ]);
  });

  it('fork: PROTECTION_PAGE per private VMA with pages, then one whole-mm flush of the parent', () => {
    const { p, log } = setup(arch);
    p.write(A, new Uint8Array([1]));
    p.mmap(4 * P, PROT_READ, PRIV | MAP_FIXED, A + 8 * P); // no anon_vma: not copied, no range
    const h = p.mmap(M2, RW, PRIV | MAP_HUGETLB);
    p.write(h, new Uint8Array([1]));
    const asid = p.mm.asid;
    log.length = 0;
    const c = p.fork();
    expect(log).toEqual([
      start(E.PROTECTION_PAGE, A, A + 4 * P),
      end(E.PROTECTION_PAGE, A, A + 4 * P),
      start(E.CLEAR, h, h + M2), // copy_hugetlb_page_range
      end(E.CLEAR, h, h + M2),
      ...aside(asid),
      sec(0, FLUSH_ALL_END),
    ]);
    c.exit();
  });

  it('fork flushes the parent even when no VMA was write-protected (dup_mmap)', () => {
    const { p, log } = setup(arch);
    const asid = p.mm.asid;
    log.length = 0;
    const c = p.fork();
    expect(log).toEqual([...aside(asid), sec(0, FLUSH_ALL_END)]);
    c.exit();
  });

  it('a flush of 512 pages or more becomes a whole-ASID flush (arm64 MAX_DVM_OPS)', () => {
    const m = new Machine();
    const p = m.createProcess({ arch });
    const log: Rec[] = [];
    mmuNotifierRegister(p.mm, recorder(log));
    recordTlbi(m, log);
    const a = p.mmap(1024 * P, RW, PRIV);
    p.write(a, new Uint8Array([1]));
    p.write(a + 600 * P, new Uint8Array([1]));
    log.length = 0;
    p.munmap(a, 1024 * P);
    const flush =
      arch === 'arm64'
        ? [{ k: 'tlbi', op: { kind: 'aside1is', asid: p.mm.asid } }, sec(0, FLUSH_ALL_END)]
        : [sec(a, a + 601 * P)];
    expect(log.slice(1, 1 + flush.length)).toEqual(flush);
    expect(log[1 + flush.length]).toEqual(end(E.UNMAP, a, a + 1024 * P));
  });

  it('exit: release first, then teardown without callbacks (arm64: one ASID flush for the freed tables)', () => {
    const { p, log, sub } = setup(arch);
    p.write(A, new Uint8Array([1]));
    const mm = p.mm;
    const asid = mm.asid;
    expect(mm.count).toBe(2);
    log.length = 0;
    p.exit();
    expect(log).toEqual([{ k: 'release' }, ...aside(asid)]);
    expect(mm.count).toBe(1);
    mmuNotifierUnregister(mm, sub);
    expect(log.filter((r) => r.k === 'release')).toHaveLength(1);
    expect(mm.count).toBe(0);
  });

  it('unregister before exit calls release and stops callbacks', () => {
    const { p, log, sub } = setup(arch);
    mmuNotifierUnregister(p.mm, sub);
    expect(log).toEqual([{ k: 'release' }]);
    p.write(A, new Uint8Array([1]));
    p.munmap(A, P);
    expect(log.filter((r) => r.k !== 'tlbi')).toEqual([{ k: 'release' }]);
  });
});
