import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFixture, type Fixture, runRepoBin } from './fixture.js';

const documented = `/**
 * Round a length up to whole pages.
 * @param bytes - a length in bytes
 * @returns the number of 4 KiB pages
 */
export declare function pagesOf(bytes: number): number;
`;

/** A package laid out like ours, with the real shared api-extractor and tsconfig settings. */
function apiFixture(dts: string): Fixture {
  const fx = createFixture('api');
  fx.copyFromRepo('api-extractor.base.json');
  fx.copyFromRepo('tsconfig.base.json');
  fx.copyFromRepo('packages/base/api-extractor.json');
  fx.write('packages/base/package.json', JSON.stringify({ name: '@iommu-ts/base', version: '0.0.0' }));
  fx.write(
    'packages/base/tsconfig.json',
    JSON.stringify({ extends: '../../tsconfig.base.json', include: ['dist'] }),
  );
  fx.write('packages/base/dist/index.d.ts', dts);
  fx.write('packages/base/etc/.keep', '');
  return fx;
}

const extractor = (fx: Fixture, ...args: string[]) =>
  runRepoBin('api-extractor', ['run', ...args], join(fx.root, 'packages/base'));

describe('API report check (api-extractor, shared config)', () => {
  let fx: Fixture | undefined;
  afterEach(() => fx?.dispose());

  it('passes when the committed report matches, and fails on an unreported API change', () => {
    fx = apiFixture(documented);
    expect(extractor(fx, '--local').status).toBe(0);
    const report = readFileSync(join(fx.root, 'packages/base/etc/base.api.md'), 'utf8');
    expect(report).toContain('export function pagesOf(bytes: number): number;');
    expect(extractor(fx).status).toBe(0);

    fx.write(
      'packages/base/dist/index.d.ts',
      `${documented}/** Bytes in a page. */\nexport declare const PAGE_SIZE = 4096;\n`,
    );
    const changed = extractor(fx);
    expect(changed.status).not.toBe(0);
    expect(changed.output).toMatch(/API report|api\.md/i);
    // The check leaves the committed report untouched.
    expect(readFileSync(join(fx.root, 'packages/base/etc/base.api.md'), 'utf8')).toBe(report);
  });

  it('fails on an exported symbol without a TSDoc comment', () => {
    fx = apiFixture(`${documented}export declare const undocumented: number;\n`);
    const run = extractor(fx, '--local');
    expect(run.status).not.toBe(0);
    expect(run.output).toContain('ae-undocumented');
  });
});
