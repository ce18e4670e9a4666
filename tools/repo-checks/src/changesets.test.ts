import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './fixture.js';

/** Published package names (non-private packages under packages/). */
function publishedPackages(): Set<string> {
  const names = new Set<string>();
  for (const dir of readdirSync(join(repoRoot, 'packages'))) {
    try {
      const manifest = JSON.parse(readFileSync(join(repoRoot, 'packages', dir, 'package.json'), 'utf8'));
      if (!manifest.private) names.add(manifest.name);
    } catch {
      // not a package directory
    }
  }
  return names;
}

describe('pending changesets', () => {
  // A formatter once rewrote the front matter into a heading, which changesets then ignores:
  // every pending changeset must still parse as `---`, `"package": bump` lines, `---`, a summary.
  it('have front matter naming published packages and a semver bump, and a summary', () => {
    const packages = publishedPackages();
    const dir = join(repoRoot, '.changeset');
    const files = readdirSync(dir).filter((f) => f.endsWith('.md') && f !== 'README.md');
    for (const file of files) {
      const text = readFileSync(join(dir, file), 'utf8');
      const match = /^---\n((?:"[^"\n]+": (?:major|minor|patch)\n)+)---\n\n(\S[\s\S]*)$/.exec(text);
      expect(match, `${file} does not parse as a changeset`).not.toBeNull();
      for (const line of match?.[1]?.trim().split('\n') ?? []) {
        const name = /^"([^"]+)"/.exec(line)?.[1];
        expect(packages.has(name ?? ''), `${file} names ${name}, not a published package`).toBe(true);
      }
    }
  });
});
