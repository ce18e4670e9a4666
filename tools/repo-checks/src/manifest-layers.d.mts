/** Check every packages/<dir>/package.json against the layer table; returns one message per violation. */
export function checkManifestLayers(root: string, layers: Record<string, number>): string[];
/** The layer table of tools/repo-checks/src/layers.json. */
export function readLayers(): Record<string, number>;
