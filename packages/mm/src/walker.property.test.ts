// Acceptance 2: an independent walker (mm.test-helpers.ts, not io-pgtable's) reads the CPU page
// tables out of PhysicalMemory and must agree with the process's own reads and writes.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  Machine,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  type Process,
} from './index.js';
import { handWalk } from './mm.test-helpers.js';

const P = PAGE_SIZE;
const H = 0x20_0000;
const BASE = 0x4000_0000;
// Three regions: private 4K (64 pages), shared 4K (16 pages), private hugetlb (2 x 2 MiB).
const REGIONS = [
  { start: BASE, len: 64 * P, flags: MAP_PRIVATE | MAP_ANONYMOUS },
  { start: BASE + 0x100_0000, len: 16 * P, flags: MAP_SHARED | MAP_ANONYMOUS },
  { start: BASE + 0x200_0000, len: 2 * H, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB },
];

const op = fc.oneof(
  fc.record({
    k: fc.constant('write' as const),
    who: fc.nat(3),
    r: fc.nat(2),
    off: fc.nat(2 * H - 1),
    data: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  }),
  fc.record({ k: fc.constant('read' as const), who: fc.nat(3), r: fc.nat(2), off: fc.nat(2 * H - 1) }),
  fc.record({ k: fc.constant('fork' as const), who: fc.nat(3) }),
  fc.record({ k: fc.constant('ro' as const), who: fc.nat(3), r: fc.nat(2) }),
);

describe.each(['arm64', 'x86_64'] as const)('%s: hand walker agrees with user accesses', (arch) => {
  it('random writes, reads, forks and mprotects', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => {
        const m = new Machine();
        const first = m.createProcess({ arch });
        for (const r of REGIONS) first.mmap(r.len, PROT_READ | PROT_WRITE, r.flags | MAP_FIXED, r.start);
        const procs: Process[] = [first];
        // Expected contents per process: private bytes per process, shared region bytes shared.
        const models: Map<number, number>[] = [new Map()];
        const shared = new Map<number, number>();
        const readonly: Set<number>[] = [new Set()];
        const expectByte = (i: number, va: number): number =>
          (va >= REGIONS[1]!.start && va < REGIONS[1]!.start + REGIONS[1]!.len ? shared : models[i]!).get(
            va,
          ) ?? 0;
        for (const o of ops) {
          const i = o.who % procs.length;
          const p = procs[i] as Process;
          if (o.k === 'fork') {
            if (procs.length < 4) {
              procs.push(p.fork());
              models.push(new Map(models[i]));
              readonly.push(new Set(readonly[i]));
            }
            continue;
          }
          const reg = REGIONS[o.r] as (typeof REGIONS)[number];
          if (o.k === 'ro') {
            p.mprotect(reg.start, reg.len, PROT_READ);
            readonly[i]!.add(o.r);
            continue;
          }
          const va = reg.start + (o.off % reg.len);
          if (o.k === 'write') {
            const n = Math.min(o.data.length, reg.start + reg.len - va);
            const data = o.data.subarray(0, n);
            if (readonly[i]!.has(o.r)) {
              expect(() => p.write(va, data)).toThrow(/SIGSEGV/);
              continue;
            }
            p.write(va, data);
            const model = o.r === 1 ? shared : (models[i] as Map<number, number>);
            data.forEach((b, k) => {
              model.set(va + k, b);
            });
            // The hand walker sees a writable, dirty leaf mapping exactly the bytes written.
            const w = handWalk(m.memory, arch, p.mm.pgd, va);
            expect(w?.userWrite).toBe(true);
            expect(w?.dirty).toBe(true);
            expect(w?.size).toBe(o.r === 2 ? H : P);
            expect(m.memory.read8(w?.pa as number)).toBe(data[0]);
          } else {
            const got = p.read(va, 1)[0];
            expect(got).toBe(expectByte(i, va));
            const w = handWalk(m.memory, arch, p.mm.pgd, va);
            expect(w?.userRead).toBe(true);
            expect(w?.young).toBe(true);
            expect(m.memory.read8(w?.pa as number)).toBe(got);
          }
        }
        // Final sweep: every byte each process's model knows is where the hand walker says.
        procs.forEach((p, i) => {
          for (const [va] of [...models[i]!, ...shared]) {
            const w = handWalk(m.memory, arch, p.mm.pgd, va);
            if (w === null) continue; // shared pages not yet faulted in this process
            expect(m.memory.read8(w.pa)).toBe(expectByte(i, va));
          }
        });
        for (const p of procs) p.exit();
        expect(m.memory.stats().allocatedPages).toBe(0);
      }),
      { numRuns: 60 },
    );
  });
});
