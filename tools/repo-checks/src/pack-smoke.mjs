// Packaging smoke test: what a user gets from npm, checked the way a user meets it.
// For every publishable package: `pnpm pack`; publint and arethetypeswrong on the tarball; install
// all tarballs into a scratch project with npm; load each through `import` and `require` (the same
// export names both ways); typecheck a consumer file of each module kind and every ```ts example of
// each README with tsc (NodeNext, strict, no skipLibCheck), then run the README examples.
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const bin = (name) => join(root, 'node_modules/.bin', name);
const keep = process.argv.includes('--keep');
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt > 0 ? process.argv[onlyAt + 1]?.split(',') : undefined;

/** Run a command; on failure print what it said and stop the whole check. */
function run(cmd, args, cwd, what) {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    console.error(`✖ ${what}\n${error.stdout ?? ''}${error.stderr ?? ''}`);
    process.exit(1);
  }
}

const packages = readdirSync(join(root, 'packages'))
  .map((dir) => ({ dir, path: join(root, 'packages', dir) }))
  .filter((p) => existsSync(join(p.path, 'package.json')))
  .map((p) => ({ ...p, manifest: JSON.parse(readFileSync(join(p.path, 'package.json'), 'utf8')) }))
  .filter((p) => !p.manifest.private && (only === undefined || only.includes(p.dir)));

const work = mkdtempSync(join(tmpdir(), 'iommu-ts-pack-'));
const tarballs = join(work, 'tarballs');
mkdirSync(tarballs);

for (const p of packages) {
  const out = run(
    bin('pnpm'),
    ['pack', '--pack-destination', tarballs],
    p.path,
    `pnpm pack ${p.manifest.name}`,
  );
  const tarball = out.trim().split('\n').pop();
  p.tarball = tarball;
  run(bin('publint'), ['run', tarball, '--strict'], work, `publint ${p.manifest.name}`);
  run(bin('attw'), [tarball, '--format', 'ascii', '--no-emoji'], work, `attw ${p.manifest.name}`);
  console.log(`✔ ${p.manifest.name}: packed, publint and attw clean`);
}

const consumer = join(work, 'consumer');
mkdirSync(consumer);
writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
run(
  'npm',
  [
    'install',
    '--no-audit',
    '--no-fund',
    '--no-package-lock',
    '--loglevel=error',
    ...packages.map((p) => p.tarball),
  ],
  consumer,
  'npm install of the tarballs',
);

/** Every module specifier a package exports: `@iommu-ts/x`, `@iommu-ts/x/testing`, ... */
const specifiers = (p) =>
  Object.keys(p.manifest.exports)
    .filter((sub) => !sub.endsWith('.json'))
    .map((sub) => (sub === '.' ? p.manifest.name : `${p.manifest.name}${sub.slice(1)}`));

const exportKeys = (spec, how) => {
  const script =
    how === 'import'
      ? `import(${JSON.stringify(spec)}).then((m) => console.log(JSON.stringify(Object.keys(m).filter((k) => k !== 'default').sort())))`
      : `console.log(JSON.stringify(Object.keys(require(${JSON.stringify(spec)})).sort()))`;
  return JSON.parse(run('node', ['-e', script], consumer, `${how} ${spec}`));
};

const sources = [];
for (const p of packages) {
  for (const spec of specifiers(p)) {
    const esm = exportKeys(spec, 'import');
    const cjs = exportKeys(spec, 'require');
    if (esm.length === 0) {
      console.error(`✖ ${spec} exports nothing`);
      process.exit(1);
    }
    if (JSON.stringify(esm) !== JSON.stringify(cjs)) {
      console.error(`✖ ${spec}: import and require give different exports\n${esm}\n${cjs}`);
      process.exit(1);
    }
    console.log(`✔ ${spec}: import and require both load ${esm.length} exports`);

    const id = spec.replace(/[^a-z0-9]/gi, '_');
    const probe = esm[0];
    writeFileSync(
      join(consumer, `types-${id}.mts`),
      `import * as pkg from '${spec}';\nexport const probe: typeof pkg.${probe} = pkg.${probe};\n`,
    );
    writeFileSync(
      join(consumer, `types-${id}.cts`),
      `import pkg = require('${spec}');\nexport const probe: typeof pkg.${probe} = pkg.${probe};\n`,
    );
  }
  const id = p.dir.replace(/[^a-z0-9]/gi, '_');
  const readme = readFileSync(join(p.path, 'README.md'), 'utf8');
  const examples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  if (examples.length === 0) {
    console.error(`✖ ${p.manifest.name}: README.md has no \`\`\`ts example`);
    process.exit(1);
  }
  examples.forEach((code, n) => {
    const file = `readme-${id}-${n}.mts`;
    writeFileSync(join(consumer, file), code);
    sources.push({ p, file });
  });
}

writeFileSync(
  join(consumer, 'tsconfig.json'),
  JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      lib: ['ES2022', 'DOM'],
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      exactOptionalPropertyTypes: true,
      noUncheckedIndexedAccess: true,
      skipLibCheck: false,
      types: [],
      outDir: 'out',
    },
    include: ['*.mts', '*.cts'],
  }),
);
run(
  'node',
  [join(root, 'node_modules/typescript/bin/tsc'), '-p', '.'],
  consumer,
  'tsc over the consumer files',
);
console.log('✔ types resolve from ESM and CJS consumers and every README example typechecks');

for (const { p, file } of sources) {
  run(
    'node',
    [join('out', file.replace(/\.mts$/, '.mjs'))],
    consumer,
    `README example ${file} of ${p.manifest.name}`,
  );
}
console.log(`✔ ${sources.length} README examples ran`);

if (keep) console.log(`(kept ${work})`);
else rmSync(work, { recursive: true, force: true });
