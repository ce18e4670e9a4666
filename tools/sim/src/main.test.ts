// The command line end to end, in process: the default run, inspect and run on every committed real
// firmware table, the JSON and HTML outputs, and every kind of bad input ending in one line on stderr
// and a non-zero status.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CliIo, main } from './main.js';
import { validateRunJson } from './output/json-schema.js';

const ROOT = resolve(__dirname, '../../..');
const VTD = join(ROOT, 'packages/intel-vtd/src/firmware/fixtures');
const SMMU = join(ROOT, 'packages/arm-smmu-v3/src/firmware/fixtures');

async function cli(args: string[], cwd = ROOT): Promise<{ status: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { stdout: (t) => (out += t), stderr: (t) => (err += t), cwd, isTty: false };
  const status = await main(args, io);
  return { status, out, err };
}

function expectOneLineError(err: string, pattern: RegExp): void {
  const lines = err.split('\n').filter((l) => l !== '');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^iommu-sim: /);
  expect(lines[0]).toMatch(pattern);
  expect(err).not.toMatch(/\n\s+at /);
}

const tmp = mkdtempSync(join(tmpdir(), 'iommu-sim-cli-'));

describe('iommu-sim run (default platforms)', () => {
  it('with no arguments runs every built-in workload on both embedded machines and prints the summary', async () => {
    const r = await cli([]);
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    expect(r.out).toMatch(/^x86-vtd \(Intel VT-d, built-in DMAR\): 4 passed, 0 failed, 0 skipped$/m);
    expect(r.out).toMatch(/^arm-smmuv3 \(Arm SMMUv3, built-in IORT\): 4 passed, 0 failed, 0 skipped$/m);
    for (const w of ['vfio-passthrough', 'iommufd-dpdk', 'sva-accelerator', 'dma-api'])
      expect(r.out.match(new RegExp(`│ ${w} +│ passed`, 'g'))).toHaveLength(2);
  });

  it('--json writes figures that validate against the schema; --report writes the HTML page', async () => {
    const json = join(tmp, 'run.json');
    const html = join(tmp, 'run.html');
    const r = await cli([
      'run',
      '--seed',
      '5',
      '--json',
      json,
      '--report',
      html,
      '-w',
      'dma-api',
      '-w',
      'sva-accelerator',
    ]);
    expect(r.status).toBe(0);
    const data = JSON.parse(readFileSync(json, 'utf8')) as {
      seed: number;
      results: Array<{
        platform: string;
        workload: string;
        status: string;
        figures: Record<string, unknown>;
      }>;
    };
    expect(validateRunJson(data)).toEqual([]);
    expect(data.seed).toBe(5);
    expect(data.results.map((x) => `${x.platform}/${x.workload}/${x.status}`)).toEqual([
      'x86-vtd/dma-api/passed',
      'x86-vtd/sva-accelerator/passed',
      'arm-smmuv3/dma-api/passed',
      'arm-smmuv3/sva-accelerator/passed',
    ]);
    const sva = data.results[1]?.figures as { pageRequests: number; bytesVerified: number; checks: number };
    expect(sva.pageRequests).toBeGreaterThan(0);
    expect(sva.bytesVerified).toBeGreaterThan(0);
    const page = readFileSync(html, 'utf8');
    expect(page.startsWith('<!doctype html>') || page.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(page.match(/<svg/g)?.length ?? 0).toBeGreaterThanOrEqual(2 + 4 * 2);
  });

  it('--dma lazy runs the DMA API on flush-queue domains: fewer, whole-domain invalidations', async () => {
    const strict = join(tmp, 'strict.json');
    const lazy = join(tmp, 'lazy.json');
    expect((await cli(['run', '-w', 'dma-api', '--json', strict])).status).toBe(0);
    expect((await cli(['run', '-w', 'dma-api', '--dma', 'lazy', '--json', lazy])).status).toBe(0);
    type Inv = { results: Array<{ platform: string; figures: { invalidations: Record<string, number> } }> };
    const inv = (f: string) =>
      (JSON.parse(readFileSync(f, 'utf8')) as Inv).results.map((r) => r.figures.invalidations);
    const [sx, sa] = inv(strict);
    const [lx, la] = inv(lazy);
    // Strict: one page-selective flush per unmap; lazy: the flush queue flushes whole domains.
    expect(sx?.['pasid-iotlb']).toBeGreaterThan(500);
    expect(sa?.['TLBI_NH_VA']).toBeGreaterThan(500);
    expect(lx?.['pasid-iotlb'] ?? 0).toBeLessThan(50);
    expect(la?.['TLBI_NH_VA'] ?? 0).toBeLessThan(50);
    const bad = await cli(['run', '--dma', 'sometimes']);
    expect(bad.status).toBe(2);
    expectOneLineError(bad.err, /--dma wants strict or lazy, got "sometimes"$/);
  });

  it('the same seed gives the same figures (wall time aside)', async () => {
    const a = join(tmp, 'a.json');
    const b = join(tmp, 'b.json');
    await cli(['run', '-w', 'vfio-passthrough', '--seed', '9', '--json', a]);
    await cli(['run', '-w', 'vfio-passthrough', '--seed', '9', '--json', b]);
    const strip = (f: string) => readFileSync(f, 'utf8').replace(/"wallMs": [0-9.e-]+/g, '');
    expect(strip(a)).toBe(strip(b));
  });

  it('--help and workloads describe the command', async () => {
    const h = await cli(['--help']);
    expect(h.status).toBe(0);
    expect(h.out).toMatch(/run \[options\]/);
    expect(h.out).toMatch(/inspect \[options\]/);
    const s = await cli(['schema']);
    expect(s.status).toBe(0);
    const schema = JSON.parse(s.out) as { $schema: string; required: string[] };
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.required).toContain('results');
    const w = await cli(['workloads']);
    expect(w.status).toBe(0);
    expect(w.out).toMatch(/^vfio-passthrough: /m);
    expect(w.out).toMatch(/^ {4}packets \(integer, default 256\)/m);
  });
});

// Counts as each table's disassembly shows them (the machine builders' tests derive the same
// numbers from the .dsl/.dts text independently).
const REAL: ReadonlyArray<readonly [string, string, string]> = [
  [VTD, 'asrock-h310cm-hdv-dmar.bin', 'units 1, scopes 3, reserved regions 1'],
  [VTD, 'asrock-h310cm-hdv-dmar.acpidump', 'units 1, scopes 3, reserved regions 1'],
  [VTD, 'asrock-h310cm-hdv-dmar.dsl', 'units 1, scopes 3, reserved regions 1'],
  [VTD, 'asrock-x99-extreme4-dmar.bin', 'units 2, scopes 6, reserved regions 0'],
  [VTD, 'surface-book-2-dmar.bin', 'units 2, scopes 10, reserved regions 2'],
  [VTD, 'surface-laptop-studio-dmar.bin', 'units 4, scopes 6, reserved regions 1'],
  [VTD, 'qemu-q35-dmar.dsl', 'units 1, scopes 6, reserved regions 0'],
  [SMMU, 'cix-sky1-iort.bin', 'units 2, scopes 35, reserved regions 1'],
  [SMMU, 'qemu-virt-iort-smmuv3-dev.dsl', 'units 2, scopes 2, reserved regions 0'],
  [SMMU, 'fvp-base-revc-smmu.dtb', 'units 1, scopes 1, reserved regions 0'],
  [SMMU, 'rk3588-smmu.dtb', 'units 1, scopes 3, reserved regions 0'],
  [SMMU, 'ascend310-sdma-smmu.dtb', 'units 1, scopes 1, reserved regions 0'],
];

describe('iommu-sim inspect / run on real firmware tables', () => {
  it.each(REAL)('inspect %s/%s', async (dir, file, counts) => {
    const r = await cli(['inspect', '--platform', join(dir, file)]);
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    expect(r.out).toContain(`counts: ${counts}`);
  });

  it('inspect --json prints the topology view', async () => {
    const r = await cli(['inspect', '-p', join(VTD, 'surface-book-2-dmar.bin'), '--json']);
    const v = JSON.parse(r.out) as {
      counts: Record<string, number>;
      units: Array<{ name: string; base: string }>;
    };
    expect(v.counts).toMatchObject({ units: 2, scopes: 10, reservedRegions: 2, andd: 5 });
    expect(v.units.map((u) => u.name)).toEqual(['dmar0', 'dmar1']);
    expect(v.units[0]?.base).toMatch(/^0x[0-9a-f]+$/);
  });

  // What each table's topology supports: every workload passes or is skipped with a reason.
  const RUNS: ReadonlyArray<readonly [string, string, number]> = [
    [VTD, 'asrock-x99-extreme4-dmar.bin', 4],
    [VTD, 'asrock-h310cm-hdv-dmar.bin', 3],
    [VTD, 'surface-book-2-dmar.bin', 3],
    [VTD, 'surface-laptop-studio-dmar.bin', 3],
    [VTD, 'qemu-q35-dmar.bin', 3],
    [SMMU, 'cix-sky1-iort.bin', 4],
    [SMMU, 'qemu-virt-iort-its-off.bin', 3],
    [SMMU, 'fvp-base-revc-smmu.dtb', 4],
    [SMMU, 'rk3588-smmu.dtb', 1],
    [SMMU, 'ascend310-sdma-smmu.dtb', 2],
  ];
  it.each(RUNS)(
    'run on %s/%s: %i workloads pass, the rest are skipped with a reason',
    async (dir, file, passed) => {
      const json = join(tmp, `${file}.json`);
      const r = await cli(['run', '-p', join(dir, file), '--json', json]);
      expect(r.err).toBe('');
      expect(r.status).toBe(0);
      const data = JSON.parse(readFileSync(json, 'utf8')) as {
        results: Array<{ status: string; message: string | null }>;
      };
      expect(data.results.filter((x) => x.status === 'passed')).toHaveLength(passed);
      for (const x of data.results.filter((y) => y.status !== 'passed')) {
        expect(x.status).toBe('skipped');
        expect(x.message).toMatch(/\S/);
      }
    },
  );
});

describe('bad input: one line on stderr, status 2, no stack trace', () => {
  const dmar = readFileSync(join(VTD, 'asrock-x99-extreme4-dmar.bin'));
  const iort = readFileSync(join(SMMU, 'cix-sky1-iort.bin'));
  const write = (name: string, data: Uint8Array | string): string => {
    const f = join(tmp, name);
    writeFileSync(f, data);
    return f;
  };

  it('a missing platform file', async () => {
    const r = await cli(['run', '-p', 'no/such/dmar.bin']);
    expect(r.status).toBe(2);
    expectOneLineError(r.err, /no\/such\/dmar\.bin: no such file$/);
    expect(r.out).toBe('');
  });

  it('a truncated DMAR table', async () => {
    const r = await cli(['run', '-p', write('short.bin', dmar.subarray(0, 60))]);
    expect(r.status).toBe(2);
    expectOneLineError(r.err, /short\.bin: DMAR header length \d+ exceeds the 60 bytes given$/);
  });

  it('a DMAR table with one byte changed (wrong checksum)', async () => {
    const bad = Uint8Array.from(dmar);
    bad[60] = (bad[60] as number) ^ 0x10;
    const r = await cli(['inspect', '-p', write('flipped.bin', bad)]);
    expect(r.status).toBe(2);
    expectOneLineError(r.err, /flipped\.bin: DMAR checksum mismatch/);
  });

  it('an IORT with a wrong checksum and one cut short', async () => {
    const bad = Uint8Array.from(iort);
    bad[9] = (bad[9] as number) + 1;
    const a = await cli(['run', '-p', write('iort-sum.bin', bad)]);
    expect(a.status).toBe(2);
    expectOneLineError(a.err, /iort-sum\.bin: .*checksum/);
    const b = await cli(['run', '-p', write('iort-short.bin', iort.subarray(0, 100))]);
    expect(b.status).toBe(2);
    expectOneLineError(b.err, /iort-short\.bin: .*header length/);
  });

  it('a corrupt device tree blob and a file that is no table at all', async () => {
    const dtb = Uint8Array.from(readFileSync(join(SMMU, 'fvp-base-revc-smmu.dtb')));
    const a = await cli(['run', '-p', write('cut.dtb', dtb.subarray(0, 64))]);
    expect(a.status).toBe(2);
    expectOneLineError(a.err, /cut\.dtb: /);
    const b = await cli(['inspect', '-p', write('notes.txt', 'hello, this is not firmware\n')]);
    expect(b.status).toBe(2);
    expectOneLineError(b.err, /notes\.txt: not a DMAR or IORT table/);
    const c = await cli([
      'inspect',
      '-p',
      write('facp.bin', Uint8Array.from([...'FACP'].map((ch) => ch.charCodeAt(0)).concat(Array(40).fill(0)))),
    ]);
    expect(c.status).toBe(2);
    expectOneLineError(c.err, /facp\.bin: /);
  });

  it('an unknown workload, a missing workload file, a bad seed', async () => {
    const a = await cli(['run', '-w', 'vfio']);
    expect(a.status).toBe(2);
    expectOneLineError(
      a.err,
      /unknown workload "vfio" \(built-in: vfio-passthrough, iommufd-dpdk, sva-accelerator, dma-api/,
    );
    const b = await cli(['run', '-w', 'flows/none.yaml']);
    expect(b.status).toBe(2);
    expectOneLineError(b.err, /flows\/none\.yaml: no such workload file$/);
    const c = await cli(['run', '--seed', 'abc']);
    expect(c.status).toBe(2);
    expectOneLineError(c.err, /--seed wants an integer/);
    const d = await cli(['frobnicate']);
    expect(d.status).toBe(2);
    expectOneLineError(d.err, /unknown command 'frobnicate'/);
  });

  it('a workload file with a bad field names its line', async () => {
    const f = write('bad.yaml', 'name: bad\nsteps:\n  - workload: dma-api\n    params:\n      ios: -3\n');
    const r = await cli(['run', '-w', f]);
    expect(r.status).toBe(2);
    expectOneLineError(r.err, /bad\.yaml:5:\d+: steps\[0\]\.params\.ios: must be >= /);
  });

  it('a workload file asking for a device the platform lacks', async () => {
    const f = write(
      'nic7.yaml',
      'name: nic7\nsteps:\n  - workload: vfio-passthrough\n    params: { device: nic7 }\n',
    );
    const r = await cli(['run', '-w', f, '-p', join(VTD, 'asrock-x99-extreme4-dmar.bin')]);
    expect(r.status).toBe(2);
    expectOneLineError(
      r.err,
      /asrock-x99-extreme4-dmar: workload nic7 cannot run: step 1 \(vfio-passthrough\): the platform has no device named nic7$/,
    );
  });
});
