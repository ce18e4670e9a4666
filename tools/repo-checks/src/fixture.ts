import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (two levels above tools/repo-checks/src). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** A scratch repository laid out like the real one, removed by `dispose()`. */
export interface Fixture {
  readonly root: string;
  write(path: string, text: string): void;
  copyFromRepo(path: string): void;
  /** Link node_modules/@iommu-ts/<name> to packages/<name>, as pnpm does for workspace packages. */
  linkWorkspacePackage(name: string): void;
  dispose(): void;
}

/** Create an empty fixture repository in the system temp directory. */
export function createFixture(prefix: string): Fixture {
  const root = mkdtempSync(join(tmpdir(), `iommu-ts-${prefix}-`));
  const write = (path: string, text: string): void => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  return {
    root,
    write,
    copyFromRepo(path) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      cpSync(join(repoRoot, path), join(root, path), { recursive: true });
    },
    linkWorkspacePackage(name) {
      mkdirSync(join(root, 'node_modules/@iommu-ts'), { recursive: true });
      symlinkSync(join(root, 'packages', name), join(root, 'node_modules/@iommu-ts', name), 'dir');
    },
    dispose() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The outcome of running one of the repository's tools. */
export interface RunResult {
  readonly status: number | null;
  readonly output: string;
}

/**
 * Run a binary installed in the repository's node_modules/.bin.
 * @param bin - the binary name, e.g. `depcruise`
 * @param args - its arguments
 * @param cwd - where to run it
 */
export function runRepoBin(bin: string, args: readonly string[], cwd: string): RunResult {
  const result = spawnSync(join(repoRoot, 'node_modules/.bin', bin), args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}
