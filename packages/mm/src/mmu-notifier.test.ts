import { describe, expect, it } from 'vitest';
import {
  MmuNotifyEvent as E,
  FLUSH_ALL_END,
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  Machine,
  mmuNotifierRegister,
  mmuNotifierUnregister,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from './index.js';
import { type Rec, recorder, recordTlbi } from './mm.test-helpers.js';

const P = PAGE_SIZE;
const A = 0x1000_0000;
const RW = PROT_READ | PROT_WRITE;
const PRIV = MAP_PRIVATE | MAP_ANONYMOUS;

function setup(arch: 'arm64' | 'x86_64') {
  const m = new Machine();
  const p = m.createProcess({ arch });
  const log: Rec[] = [];
  const sub = recorder(log);
  mmuNotifierRegister(p.mm, sub);
  recordTlbi(m, log);
  p.mmap(4 * P, RW, PRIV | MAP_FIXED, A);
  return { m, p, log, sub };
}

const vae = (asid: number, va: number) => ({ k: 'tlbi', op: { kind: 'vae1is', asid, va, leaf: false } });

describe.each(['arm64', 'x86_64'] as const)('%s MMU notifiers', (arch) => {
  const tlbi = (asid: number, ...vas: number[]) => (arch === 'arm64' ? vas.map((va) => vae(asid, va)) : []);

  it('munmap: UNMAP start, PTEs cleared, TLBI + secondary over the cleared span, end', () => {
    const { p, log } = setup(arch);
    p.write(A + P, new Uint8Array([1]));
    const asid = p.mm.asid;
    log.length = 0;
    p.munmap(A, 4 * P);
    expect(log).toEqual([
      { k: 'start', event: E.UNMAP, start: A, end: A + 4 * P },
      ...tlbi(asid, A + P),
      { k: 'secondary', start: A + P, end: A + 2 * P },
      { k: 'end', event: E.UNMAP, start: A, end: A + 4 * P },
    ]);
    log.length = 0;
    p.munmap(A, P); // nothing mapped any more: no callbacks
    expect(log).toEqual([]);
  });

  it('munmap of a range clips the notifier range to the VMAs', () => {
    const { p, log } = setup(arch);
    log.length = 0;
    p.munmap(A - 4 * P, 6 * P);
    expect(log).toEqual([
      { k: 'start', event: E.UNMAP, start: A, end: A + 2 * P },
      { k: 'end', event: E.UNMAP, start: A, end: A + 2 * P },
    ]);
  });

  it('mprotect: PROTECTION_VMA only over populated parts; the whole part is flushed', () => {
    const { p, log } = setup(arch);
    p.write(A, new Uint8Array([1]));
    p.write(A + P, new Uint8Array([1]));
    const asid = p.mm.asid;
    log.length = 0;
    p.mprotect(A, 4 * P, PROT_READ);
    expect(log).toEqual([
      { k: 'start', event: E.PROTECTION_VMA, start: A, end: A + 4 * P },
      ...tlbi(asid, A, A + P, A + 2 * P, A + 3 * P),
      { k: 'secondary', start: A, end: A + 4 * P },
      { k: 'end', event: E.PROTECTION_VMA, start: A, end: A + 4 * P },
    ]);
    p.mmap(4 * P, RW, PRIV | MAP_FIXED, A + 8 * P);
    log.length = 0;
    p.mprotect(A + 8 * P, 4 * P, PROT_READ); // nothing populated
    expect(log).toEqual([]);
  });

  it('COW break: CLEAR over the one page, flush, end', () => {
    const { p, log } = setup(arch);
    p.write(A + 2 * P, new Uint8Array([1]));
    const c = p.fork();
    const asid = p.mm.asid;
    log.length = 0;
    p.write(A + 2 * P + 7, new Uint8Array([2]));
    expect(log).toEqual([
      { k: 'start', event: E.CLEAR, start: A + 2 * P, end: A + 3 * P },
      ...tlbi(asid, A + 2 * P),
      { k: 'secondary', start: A + 2 * P, end: A + 3 * P },
      { k: 'end', event: E.CLEAR, start: A + 2 * P, end: A + 3 * P },
    ]);
    c.exit();
  });

  it('fork: PROTECTION_PAGE per private VMA with pages, then one whole-mm flush', () => {
    const { p, log } = setup(arch);
    p.write(A, new Uint8Array([1]));
    const asid = p.mm.asid;
    log.length = 0;
    const c = p.fork();
    expect(log).toEqual([
      { k: 'start', event: E.PROTECTION_PAGE, start: A, end: A + 4 * P },
      { k: 'end', event: E.PROTECTION_PAGE, start: A, end: A + 4 * P },
      ...(arch === 'arm64' ? [{ k: 'tlbi', op: { kind: 'aside1is', asid } }] : []),
      { k: 'secondary', start: 0, end: FLUSH_ALL_END },
    ]);
    c.exit();
  });

  it('MADV_DONTNEED and migration: CLEAR ranges', () => {
    const { p, log } = setup(arch);
    p.write(A + P, new Uint8Array([9]));
    p.write(A + 3 * P, new Uint8Array([8]));
    const asid = p.mm.asid;
    log.length = 0;
    const newPa = p.migratePage(A + 3 * P + 5);
    expect(log).toEqual([
      { k: 'start', event: E.CLEAR, start: A + 3 * P, end: A + 4 * P },
      ...tlbi(asid, A + 3 * P),
      { k: 'secondary', start: A + 3 * P, end: A + 4 * P },
      { k: 'end', event: E.CLEAR, start: A + 3 * P, end: A + 4 * P },
    ]);
    expect(p.read(A + 3 * P, 1)[0]).toBe(8);
    expect(p.hwAccess(A + 3 * P, false)).toBe(newPa);
    log.length = 0;
    p.madvise(A, 2 * P, MADV_DONTNEED);
    expect(log).toEqual([
      { k: 'start', event: E.CLEAR, start: A, end: A + 2 * P },
      ...tlbi(asid, A + P),
      { k: 'secondary', start: A + P, end: A + 2 * P },
      { k: 'end', event: E.CLEAR, start: A, end: A + 2 * P },
    ]);
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
        ? [
            { k: 'tlbi', op: { kind: 'aside1is', asid: p.mm.asid } },
            { k: 'secondary', start: 0, end: FLUSH_ALL_END },
          ]
        : [{ k: 'secondary', start: a, end: a + 601 * P }];
    expect(log.slice(1, -1)).toEqual(flush);
  });

  it('exit: release once, nothing after; unregister afterwards does not release again', () => {
    const { p, log, sub } = setup(arch);
    p.write(A, new Uint8Array([1]));
    const mm = p.mm;
    expect(mm.count).toBe(2);
    log.length = 0;
    p.exit();
    expect(log.filter((r) => r.k !== 'tlbi')).toEqual([{ k: 'release' }]);
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
