#!/usr/bin/env node
/** The `iommu-sim` executable: runs {@link main} on the process's arguments. */

import { main } from './main.js';

// `pnpm iommu-sim …` runs in the repository root; INIT_CWD is where the user typed it.
const cwd = process.env['INIT_CWD'] ?? process.cwd();
main(process.argv.slice(2), {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  cwd,
  isTty: process.stderr.isTTY === true,
}).then(
  (status) => {
    process.exitCode = status;
  },
  (e: unknown) => {
    process.stderr.write(`iommu-sim: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 2;
  },
);
