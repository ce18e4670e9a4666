// Acceptance 4: memory use is proportional to touched pages, not to the mapping size.

import { describe, expect, it } from 'vitest';
import {
  MAP_ANONYMOUS,
  MAP_NORESERVE,
  MAP_PRIVATE,
  Machine,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
} from './index.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

describe.each(['arm64', 'x86_64'] as const)('%s memory use', (arch) => {
  it('64 GiB mapped, 1,000 pages touched: a few MiB of table pages and page contents', () => {
    const m = new Machine({ memory: { size: 4 * GiB } });
    const p = m.createProcess({ arch });
    const beforeMmap = m.memory.stats().allocatedPages; // the top-level table
    const len = 64 * GiB;
    const a = p.mmap(len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    // 1,000 pages spread over the whole mapping (a stride of ~64 MiB: every page needs its own last-level table).
    const stride = Math.floor(len / PAGE_SIZE / 1000) * PAGE_SIZE;
    for (let i = 0; i < 1000; i++) p.write(a + i * stride + 8, new Uint8Array([i & 0xff, 1]));
    for (let i = 0; i < 1000; i += 97) expect(p.read(a + i * stride + 8, 1)[0]).toBe(i & 0xff);
    const s = m.memory.stats();
    const tablePages = p.mm.pgtable.tablePages;
    const userPages = s.allocatedPages - tablePages;
    expect(userPages).toBe(1000);
    const bytes = s.allocatedPages * PAGE_SIZE;
    // Measured: 1,000 data pages + 1,066 table pages (1,000 PTE + 64 PMD + 1 PUD + PGD; x86-64: one
    // more PUD, the range crosses a 512 GiB boundary) = 8.07 MiB allocated and backed, 0.11 MiB metadata.
    expect(tablePages).toBeLessThanOrEqual(1000 + 66 + 3);
    expect(bytes).toBeLessThan(9 * MiB);
    expect(s.backedBytes).toBeLessThan(9 * MiB);
    expect(s.metadataBytes).toBeLessThan(4 * MiB);
    // munmap returns the data pages and, with no VMA left around them, every table page below the
    // top-level one (free_pgtables).
    // The TLBIs of munmap: leaf flushes of the cleared PTEs, then (arm64) the non-leaf flush of the
    // freed tables; by the time it is issued no walk from the root reaches them.
    const ops: { kind: string; leaf?: boolean; unhooked: boolean }[] = [];
    m.tlb.subscribe((op) =>
      ops.push({
        kind: op.kind,
        ...('leaf' in op ? { leaf: op.leaf } : {}),
        unhooked: !p.mm.pgtable.entryPresent(a, 1),
      }),
    );
    p.munmap(a, len);
    if (arch === 'arm64') {
      // 64 GiB of 2 MiB strides (and 1,000 pages spread over it) exceed MAX_DVM_OPS: whole-ASID flushes.
      expect(ops.at(-1)).toEqual({ kind: 'aside1is', unhooked: true });
      expect(ops.slice(0, -1).every((o) => !o.unhooked)).toBe(true);
    }
    expect(m.memory.stats().allocatedPages).toBe(beforeMmap);
    expect(p.mm.pgtable.tablePages).toBe(1);
    p.exit();
    expect(m.memory.stats().allocatedPages).toBe(0);
  });

  it('1,000 consecutive pages touched in 64 GiB: about 4 MiB', () => {
    const m = new Machine({ memory: { size: 4 * GiB } });
    const p = m.createProcess({ arch });
    const a = p.mmap(64 * GiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    for (let i = 0; i < 1000; i++) p.write(a + 32 * GiB + i * PAGE_SIZE, new Uint8Array([1]));
    const s = m.memory.stats();
    expect(s.allocatedPages * PAGE_SIZE).toBeLessThan(4.1 * MiB);
    p.exit();
  });
});
