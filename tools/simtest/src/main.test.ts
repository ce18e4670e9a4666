// The simtest command line: each mode on a small budget, the exit status, and bad usage.

import { describe, expect, it } from 'vitest';
import { main, type SimtestIo } from './main.js';

async function run(args: string[]): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: SimtestIo = { stdout: (t) => (out += t), stderr: (t) => (err += t) };
  const status = await main(args, io);
  return { status, out, err };
}

describe('simtest CLI', () => {
  it('dst: seeds run, all held, status 0', async () => {
    const r = await run(['dst', '--seeds', '6', '--seed', '40']);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(
      /^dst: 6 seeds, \d+ steps, \d+ invariant checks in [\d.]+ s \(\d+ seeds\/min\): all held$/m,
    );
  });

  it('fuzz: calls per ioctl and no violation', async () => {
    const r = await run(['fuzz', '--calls', '3000', '--seed', '5']);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(
      /^fuzz: 3000 ioctl calls \(seed 5\), \d+ ioctls, \d+ invariant checks .*: no violation$/m,
    );
    expect(r.out).toMatch(/iommufd IOMMU_IOAS_MAP +\d+ calls/);
  });

  it('failnth: one flow by name', async () => {
    const r = await run(['failnth', '--flow', 'IOASID_REQUEST_ALLOC + IOASID_REQUEST_FREE']);
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^failnth: 1 flows, 1 injection points/m);
  });

  it('bad usage: one line, status 2', async () => {
    const a = await run(['dst', '--seeds', 'many']);
    expect(a.status).toBe(2);
    expect(a.err).toBe('simtest: --seeds wants an integer >= 1, got "many"\n');
    const b = await run(['dst', '--platform', 'riscv']);
    expect(b.status).toBe(2);
    expect(b.err).toMatch(/^simtest: --platform wants x86-vtd, arm-smmuv3 or both/);
    const c = await run(['frob']);
    expect(c.status).toBe(2);
  });
});
