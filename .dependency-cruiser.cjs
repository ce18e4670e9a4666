// Layering check: run by `pnpm run layers` (dependency-cruiser) over packages/ and tools/.
// The layer table lives in tools/repo-checks/src/layers.json; one forbidden rule is generated per
// package, naming every package it may not import (same or higher layer). Imports of workspace
// packages resolve through node_modules symlinks to packages/<name>/, so the path rules see them.
const { layers } = require('./tools/repo-checks/src/layers.json');

const names = Object.keys(layers);
const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const layerRules = names.map((name) => {
  const notBelow = names.filter((other) => other !== name && layers[other] >= layers[name]);
  return {
    name: `layer-${name}`,
    comment: `${name} is layer ${layers[name]}: it may import only packages of a lower layer`,
    severity: 'error',
    from: { path: `^packages/${escapeRegExp(name)}/` },
    to: { path: notBelow.length ? `^packages/(${notBelow.map(escapeRegExp).join('|')})/` : '^$never' },
  };
});

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'hardware-boundary',
      comment:
        'an IOMMU driver reaches its hardware model only through MMIO, memory and interrupts (ARCHITECTURE.md): driver/ never imports hw/ (tests may)',
      severity: 'error',
      from: { path: '^packages/(arm-smmu-v3|intel-vtd)/src/driver/', pathNot: '\\.test(-helpers)?\\.ts$' },
      to: { path: '^packages/(arm-smmu-v3|intel-vtd)/src/hw/' },
    },
    {
      name: 'no-tools-from-packages',
      comment: 'published packages must not import repository tools',
      severity: 'error',
      from: { path: '^packages/' },
      to: { path: '^tools/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'an import that does not resolve cannot be checked for layering',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-circular',
      comment: 'a runtime import cycle; cycles closed only by type-only imports are harmless and allowed',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|temp|etc|node_modules|\\.turbo|fixtures)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.d.ts', '.json'],
    },
  },
};
