import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { defaultPlatforms } from '../platform/builtin.js';
import { runPlan } from '../run.js';
import { builtinWorkloads } from '../workloads/registry.js';
import { renderReport } from './report.js';
import { fixtureRun } from './test-fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const OUT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../test-output');

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A report opened in headless Chromium with a fresh profile, and what went wrong while loading it. */
interface OpenedReport {
  readonly page: Page;
  readonly file: string;
  readonly problems: string[];
  readonly requests: string[];
  close(): Promise<void>;
}

async function openReport(html: string): Promise<OpenedReport> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install the Debian chromium package (apt-get install chromium)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'iommu-sim-report-'));
  const file = join(dir, 'report.html');
  writeFileSync(file, html);
  // A fresh profile (playwright passes it as --user-data-dir).
  const context = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1100, height: 900 },
    args: ARGS,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  return {
    page,
    file,
    problems,
    requests,
    close: async () => {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('HTML report in headless Chromium', () => {
  it('opens without errors, has the pictures, and screenshots', async () => {
    const { page, file, problems, requests, close } = await openReport(renderReport(fixtureRun));
    try {
      expect(problems).toEqual([]);
      // Self-contained: the page itself is the only request.
      expect(requests).toEqual([pathToFileURL(file).href]);
      expect(await page.title()).toBe('iommu-sim report — seed 42');

      // One section per platform, one topology picture each.
      const sections = page.locator('section.platform');
      expect(await sections.count()).toBe(2);
      for (const view of fixtureRun.platforms) {
        const sec = page.locator(`section.platform[data-platform="${view.name}"]`);
        expect(await sec.locator('svg.topology').count()).toBe(1);
        expect(await sec.locator('svg.topology g.unit').count()).toBe(view.units.length);
        expect(await sec.locator('svg.topology g.device').count()).toBe(view.devices.length);
        const results = fixtureRun.results.filter((r) => r.platform === view.name);
        expect(await sec.locator('table.summary tbody tr').count()).toBe(results.length);
        for (const r of results) {
          const wl = sec.locator(`div.workload[data-workload="${r.workload}"]`);
          expect(await wl.getAttribute('data-status')).toBe(r.status);
          const maps = r.status === 'skipped' ? 0 : r.spaces.length;
          expect(await wl.locator('svg.iova-map').count()).toBe(maps);
          expect(await wl.locator('svg.timeline').count()).toBe(r.status === 'skipped' ? 0 : 1);
          expect(await wl.locator('svg.iova-map g.range').count()).toBe(
            r.status === 'skipped' ? 0 : r.spaces.reduce((n, s) => n + s.ranges.length, 0),
          );
          if (r.message !== null) expect(await wl.locator('.message').textContent()).toBe(r.message);
        }
      }
      // Escaped text shows literally (no injected elements).
      expect(await page.locator('gfx').count()).toBe(0);
      expect(await page.getByText('guest RAM <0-640K> & "low"').first().count()).toBe(1);

      // Every SVG has a real size on screen.
      const sizes = await page.locator('svg').evaluateAll((els) =>
        els.map((e) => {
          const b = e.getBoundingClientRect();
          return [b.width, b.height];
        }),
      );
      for (const [w, h] of sizes) {
        expect(w).toBeGreaterThan(100);
        expect(h).toBeGreaterThan(20);
      }

      mkdirSync(OUT_DIR, { recursive: true });
      const png = join(OUT_DIR, 'report.png');
      await page.screenshot({ path: png, fullPage: true });
      const bytes = readFileSync(png);
      expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      // IHDR: width and height, big-endian, at bytes 16 and 20.
      expect(bytes.readUInt32BE(16)).toBe(1100);
      expect(bytes.readUInt32BE(20)).toBeGreaterThan(2000);
      expect(statSync(png).size).toBeGreaterThan(50_000);
    } finally {
      await close();
    }
  });

  it('a real run of the default machines opens without errors and screenshots', async () => {
    const run = runPlan({
      platforms: defaultPlatforms(),
      workloads: builtinWorkloads().map((workload) => ({ workload, required: false })),
      seed: 1,
    });
    expect(run.results.map((r) => r.status)).toEqual(Array(8).fill('passed'));
    const { page, problems, close } = await openReport(renderReport(run));
    try {
      expect(problems).toEqual([]);
      expect(await page.locator('section.platform').count()).toBe(2);
      for (const view of run.platforms) {
        const sec = page.locator(`section.platform[data-platform="${view.name}"]`);
        expect(await sec.locator('svg.topology g.device').count()).toBe(view.devices.length);
        for (const r of run.results.filter((x) => x.platform === view.name)) {
          const wl = sec.locator(`div.workload[data-workload="${r.workload}"]`);
          expect(await wl.getAttribute('data-status')).toBe('passed');
          expect(await wl.locator('svg.iova-map').count()).toBe(r.spaces.length);
          expect(await wl.locator('svg.timeline').count()).toBe(1);
        }
      }
      mkdirSync(OUT_DIR, { recursive: true });
      const png = join(OUT_DIR, 'report-default.png');
      await page.screenshot({ path: png, fullPage: true });
      const bytes = readFileSync(png);
      expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      expect(bytes.readUInt32BE(16)).toBe(1100);
    } finally {
      await close();
    }
  });
});
