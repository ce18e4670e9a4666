import { defineConfig } from 'tsup';

// The `simtest` command (dist/cli.js) and the library entry the tests and CI import.
export default defineConfig({
  entry: ['src/cli.ts', 'src/index.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  clean: true,
  sourcemap: true,
  target: 'node20',
});
