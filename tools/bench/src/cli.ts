// Entry point: `tsx src/cli.ts <suite> [options]`, or `pnpm bench <suite>` from the repo root.

import { runArmSmmuV3Suite } from './arm-smmu-v3-suite.js';
import { runIntelVtdSuite } from './intel-vtd-suite.js';
import { runIntervalTreeSuite } from './interval-tree-suite.js';
import { runIoPgfaultSuite } from './io-pgfault-suite.js';
import { runIoPgtableSuite } from './io-pgtable-suite.js';
import { runIoasidSuite } from './ioasid-suite.js';
import { runIommuCoreSuite } from './iommu-core-suite.js';
import { runIommufdSuite } from './iommufd-suite.js';
import { runSimSuite } from './sim-suite.js';

const suites: Record<string, (args: string[]) => Promise<void>> = {
  'arm-smmu-v3': runArmSmmuV3Suite,
  'interval-tree': runIntervalTreeSuite,
  ioasid: runIoasidSuite,
  'io-pgfault': runIoPgfaultSuite,
  'io-pgtable': runIoPgtableSuite,
  'intel-vtd': runIntelVtdSuite,
  'iommu-core': runIommuCoreSuite,
  iommufd: runIommufdSuite,
  sim: runSimSuite,
};

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  const names = Object.keys(suites).join(', ');
  if (name === undefined) {
    throw new Error(`usage: bench <suite> [options]; suites: ${names}`);
  }
  const suite = suites[name];
  if (suite === undefined) throw new Error(`unknown bench suite '${name}'; suites: ${names}`);
  await suite(rest);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
