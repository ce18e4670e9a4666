// The built executable (dist/cli.js, what `pnpm iommu-sim` and the package's bin run): exit
// status and output of a real process, run after `pnpm build` as CI does.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = resolve(__dirname, '../dist/cli.js');

describe('dist/cli.js', () => {
  it('is built (run `pnpm build` first)', () => {
    expect(existsSync(CLI)).toBe(true);
  });

  it('runs a workload on the default machines, prints the summary and exits 0', () => {
    const r = spawnSync(process.execPath, [CLI, 'run', '-w', 'dma-api', '--seed', '3'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^x86-vtd \(Intel VT-d, built-in DMAR\): 1 passed, 0 failed, 0 skipped$/m);
    expect(r.stdout).toMatch(/^arm-smmuv3 \(Arm SMMUv3, built-in IORT\): 1 passed, 0 failed, 0 skipped$/m);
  });

  it('exits 2 with one line on bad input', () => {
    const r = spawnSync(process.execPath, [CLI, 'inspect', '-p', '/nonexistent/DMAR'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('iommu-sim: /nonexistent/DMAR: no such file\n');
  });
});
