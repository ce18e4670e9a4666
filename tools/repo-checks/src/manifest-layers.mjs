// The second half of the layering check: package.json dependencies. dependency-cruiser sees
// imports; this sees declarations, so an upward dependency is caught even before any code uses it,
// and a package directory missing from the layer table is caught at all.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCOPE = '@iommu-ts/';

/**
 * Check every packages/<dir>/package.json of a repository against the layer table.
 * @param {string} root - the repository root
 * @param {Record<string, number>} layers - package directory name to layer
 * @returns {string[]} one message per violation; empty when the layering holds
 */
export function checkManifestLayers(root, layers) {
  const problems = [];
  const packagesDir = join(root, 'packages');
  const dirs = existsSync(packagesDir)
    ? readdirSync(packagesDir, { withFileTypes: true })
        .filter((d) => d.isDirectory() && existsSync(join(packagesDir, d.name, 'package.json')))
        .map((d) => d.name)
    : [];
  for (const dir of dirs) {
    const manifest = JSON.parse(readFileSync(join(packagesDir, dir, 'package.json'), 'utf8'));
    const layer = layers[dir];
    if (layer === undefined) {
      problems.push(`packages/${dir} is not in the layer table (tools/repo-checks/src/layers.json)`);
      continue;
    }
    if (manifest.name !== `${SCOPE}${dir}`) {
      problems.push(`packages/${dir}/package.json is named ${manifest.name}, expected ${SCOPE}${dir}`);
    }
    const deps = {
      ...manifest.dependencies,
      ...manifest.peerDependencies,
      ...manifest.optionalDependencies,
      ...manifest.devDependencies,
    };
    for (const dep of Object.keys(deps)) {
      if (!dep.startsWith(SCOPE)) continue;
      const target = dep.slice(SCOPE.length);
      const targetLayer = layers[target];
      if (targetLayer === undefined) {
        problems.push(`${SCOPE}${dir} depends on ${dep}, which is not a layered package`);
      } else if (targetLayer >= layer) {
        problems.push(
          `${SCOPE}${dir} (layer ${layer}) depends on ${dep} (layer ${targetLayer}): only lower layers are allowed`,
        );
      }
    }
  }
  return problems;
}

/**
 * Read the layer table shipped beside this file.
 * @returns {Record<string, number>}
 */
export function readLayers() {
  const file = fileURLToPath(new URL('./layers.json', import.meta.url));
  return JSON.parse(readFileSync(file, 'utf8')).layers;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = process.argv[2] ?? process.cwd();
  const problems = checkManifestLayers(root, readLayers());
  if (problems.length > 0) {
    for (const p of problems) console.error(`✖ ${p}`);
    process.exit(1);
  }
  console.log('✔ package.json dependencies respect the layer table');
}
