import { afterEach, describe, expect, it } from 'vitest';
import { createFixture, type Fixture, repoRoot, runRepoBin } from './fixture.js';
import { checkManifestLayers, readLayers } from './manifest-layers.mjs';

const layers = readLayers();

function packageJson(name: string, deps: Record<string, string> = {}): string {
  return JSON.stringify({
    name: `@iommu-ts/${name}`,
    version: '0.0.0',
    type: 'module',
    exports: { '.': './src/index.ts' },
    dependencies: deps,
  });
}

/** A fixture with the real dependency-cruiser config and two or three tiny packages. */
function layeredFixture(importsByPackage: Record<string, string[]>): Fixture {
  const fx = createFixture('layers');
  fx.copyFromRepo('.dependency-cruiser.cjs');
  fx.copyFromRepo('tsconfig.base.json');
  fx.copyFromRepo('tools/repo-checks/src/layers.json');
  for (const [name, imports] of Object.entries(importsByPackage)) {
    const deps = Object.fromEntries(imports.map((i) => [`@iommu-ts/${i}`, 'workspace:*']));
    fx.write(`packages/${name}/package.json`, packageJson(name, deps));
    const body = imports.map((i, n) => `import * as dep${n} from '@iommu-ts/${i}';\nexport { dep${n} };\n`);
    fx.write(`packages/${name}/src/index.ts`, `${body.join('')}export const here = '${name}';\n`);
    fx.linkWorkspacePackage(name);
  }
  return fx;
}

function cruise(fx: Fixture) {
  return runRepoBin('depcruise', ['packages', '--config', '.dependency-cruiser.cjs'], fx.root);
}

describe('layering check (dependency-cruiser over imports)', () => {
  let fx: Fixture | undefined;
  afterEach(() => fx?.dispose());

  it('passes a downward import (interval-tree → base)', () => {
    fx = layeredFixture({ base: [], 'interval-tree': ['base'] });
    const run = cruise(fx);
    expect(run.output).toContain('no dependency violations found');
    expect(run.status).toBe(0);
  });

  it('fails an upward import (base → interval-tree) and names the rule', () => {
    fx = layeredFixture({ base: ['interval-tree'], 'interval-tree': [] });
    const run = cruise(fx);
    expect(run.status).not.toBe(0);
    expect(run.output).toContain('layer-base');
    expect(run.output).toMatch(
      /packages\/base\/src\/index\.ts → [\s\S]*packages\/interval-tree\/src\/index\.ts/,
    );
  });

  it('fails an import between two packages of the same layer (io-pgtable → ioasid)', () => {
    fx = layeredFixture({ ioasid: [], 'io-pgtable': ['ioasid'] });
    const run = cruise(fx);
    expect(run.status).not.toBe(0);
    expect(run.output).toContain('layer-io-pgtable');
  });
});

describe('import cycles', () => {
  let fx: Fixture | undefined;
  afterEach(() => fx?.dispose());

  function cycleFixture(bImportsA: string): Fixture {
    const f = layeredFixture({ base: [] });
    f.write('packages/base/src/a.ts', "import { b } from './b.js';\nexport const a = () => b;\n");
    f.write('packages/base/src/b.ts', `${bImportsA}\nexport const b = 1;\nexport type B = A;\n`);
    f.write('packages/base/src/index.ts', "export { a } from './a.js';\n");
    return f;
  }

  it('fails a runtime import cycle', () => {
    fx = cycleFixture("import { a } from './a.js';\ntype A = typeof a;");
    const run = cruise(fx);
    expect(run.status).not.toBe(0);
    expect(run.output).toContain('no-circular');
  });

  it('allows a cycle closed by a type-only import', () => {
    fx = cycleFixture("import type { a } from './a.js';\ntype A = typeof a;");
    const run = cruise(fx);
    expect(run.output).toContain('no dependency violations found');
    expect(run.status).toBe(0);
  });
});

describe('layering check (package.json declarations)', () => {
  let fx: Fixture | undefined;
  afterEach(() => fx?.dispose());

  it('declares all twelve packages of the architecture, bottom to top', () => {
    expect(layers).toEqual({
      base: 0,
      'interval-tree': 1,
      ioasid: 1,
      'io-pgtable': 1,
      mm: 2,
      'iommu-core': 3,
      'io-pgfault': 4,
      'iommu-sva': 5,
      iommufd: 6,
      'arm-smmu-v3': 7,
      'intel-vtd': 7,
      'vfio-compat': 8,
    });
  });

  it('holds for the real repository', () => {
    expect(checkManifestLayers(repoRoot, layers)).toEqual([]);
  });

  it('reports an upward declared dependency and an undeclared package directory', () => {
    fx = createFixture('manifests');
    fx.write('packages/mm/package.json', packageJson('mm', { '@iommu-ts/iommufd': '0.0.0' }));
    fx.write('packages/iommufd/package.json', packageJson('iommufd', { '@iommu-ts/mm': '0.0.0' }));
    fx.write('packages/stray/package.json', packageJson('stray'));
    expect(checkManifestLayers(fx.root, layers).sort()).toEqual([
      '@iommu-ts/mm (layer 2) depends on @iommu-ts/iommufd (layer 6): only lower layers are allowed',
      'packages/stray is not in the layer table (tools/repo-checks/src/layers.json)',
    ]);
  });
});

describe('hardware boundary (driver/ never imports hw/)', () => {
  let fx: Fixture | undefined;
  afterEach(() => fx?.dispose());

  function boundaryFixture(driverFile: string, driverSource: string): Fixture {
    const f = layeredFixture({ 'arm-smmu-v3': [] });
    f.write('packages/arm-smmu-v3/src/hw/smmu.ts', 'export const SMMU_IDR0 = 0;\n');
    f.write(`packages/arm-smmu-v3/src/driver/${driverFile}`, driverSource);
    f.write(
      'packages/arm-smmu-v3/src/index.ts',
      "export { SMMU_IDR0 } from './hw/smmu.js';\nexport * from './driver/probe.js';\n",
    );
    if (driverFile !== 'probe.ts')
      f.write('packages/arm-smmu-v3/src/driver/probe.ts', 'export const probe = 1;\n');
    return f;
  }

  it('fails a driver file importing the hardware model, naming the rule', () => {
    fx = boundaryFixture(
      'probe.ts',
      "import { SMMU_IDR0 } from '../hw/smmu.js';\nexport const probe = SMMU_IDR0;\n",
    );
    const run = cruise(fx);
    expect(run.status).not.toBe(0);
    expect(run.output).toContain('hardware-boundary');
  });

  it('lets a driver test drive the hardware model', () => {
    fx = boundaryFixture(
      'probe.test.ts',
      "import { SMMU_IDR0 } from '../hw/smmu.js';\nexport const t = SMMU_IDR0;\n",
    );
    const run = cruise(fx);
    expect(run.output).toContain('no dependency violations found');
    expect(run.status).toBe(0);
  });
});
