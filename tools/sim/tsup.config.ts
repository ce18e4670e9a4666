import { defineConfig } from 'tsup';

// The CLI (dist/cli.js, the `iommu-sim` bin) and the library entry (dist/index.js) that tests and
// other tools import. ESM only: this is a command, not a published library.
export default defineConfig({
  entry: ['src/cli.ts', 'src/index.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  clean: true,
  sourcemap: true,
  target: 'node20',
});
