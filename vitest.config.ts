import { defineConfig } from 'vitest/config';

// One vitest run over every workspace package and tool; each directory is its own project so a
// package's tests can be run alone with `vitest run --project <name>`.
export default defineConfig({
  test: {
    projects: ['packages/*', 'tools/*'],
  },
});
