// The README's quick start promises that its first command, on a fresh clone with only Node and
// npm, installs everything and prints the iommu-sim summary of the embedded default machines. This
// runs that exact command (read from the README, not copied here) in the repository and checks the
// summary. It runs as its own step of `pnpm check`, after the tests: the command reinstalls and
// rebuilds, which must not race with test workers reading the packages' dist/.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * The first ```sh block after the "## Quick start" heading of a README.
 * @param {string} readme - the README text
 * @returns {string} the command
 */
export function mainJobCommand(readme) {
  const start = readme.indexOf('## Quick start');
  const block = /```sh\n([^`]+?)\n```/.exec(readme.slice(Math.max(start, 0)));
  if (start < 0 || block === null) throw new Error('README has no sh block under "## Quick start"');
  return block[1].trim();
}

const EXPECTED = [
  /^x86-vtd \(Intel VT-d, built-in DMAR\): 4 passed, 0 failed, 0 skipped$/m,
  /^arm-smmuv3 \(Arm SMMUv3, built-in IORT\): 4 passed, 0 failed, 0 skipped$/m,
];

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const cmd = mainJobCommand(readFileSync(resolve(ROOT, 'README.md'), 'utf8'));
  if (!/iommu-sim run$/.test(cmd)) {
    console.error(`readme-main-job: the quick-start command does not end with "iommu-sim run": ${cmd}`);
    process.exit(1);
  }
  console.log(`readme-main-job: ${cmd}`);
  const r = spawnSync('bash', ['-c', cmd], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  const missing = EXPECTED.filter((re) => !re.test(r.stdout ?? ''));
  if (r.status !== 0 || missing.length > 0) {
    console.error(r.stdout, r.stderr);
    console.error(
      `readme-main-job: exit ${r.status}; summary lines missing: ${missing.map(String).join(', ') || 'none'}`,
    );
    process.exit(1);
  }
  console.log('readme-main-job: the README main job printed the summary of both default machines');
}
