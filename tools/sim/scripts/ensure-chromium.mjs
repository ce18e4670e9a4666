#!/usr/bin/env node
// The iommu-sim report test opens the HTML report in headless Chromium (Debian's package, driven
// by playwright-core). This makes sure the browser is there before the tests run: present → done;
// absent and running as root with apt-get → install Debian's `chromium`; otherwise say how.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const BROWSER = process.env.IOMMU_SIM_CHROMIUM ?? '/usr/bin/chromium';

if (existsSync(BROWSER)) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasApt = existsSync('/usr/bin/apt-get');
if (!isRoot || !hasApt) {
  console.error(
    `ensure-chromium: ${BROWSER} is missing; the report test needs Chromium. ` +
      `Install it (Debian: sudo apt-get install chromium) or point IOMMU_SIM_CHROMIUM at a Chromium binary.`,
  );
  process.exit(1);
}
console.log('ensure-chromium: installing Debian chromium for the report test (apt-get)');
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: 'inherit', env });
if (!existsSync(BROWSER)) {
  console.error(`ensure-chromium: apt-get finished but ${BROWSER} is still missing`);
  process.exit(1);
}
