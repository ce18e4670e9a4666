/**
 * The progress bar of long runs (cli-progress on stderr): one bar over every (platform, workload)
 * pair, advancing inside a pair as the workload reports progress.
 */

import cliProgress from 'cli-progress';

/** A progress display. */
export interface Progress {
  /** A pair starts. */
  start(index: number, label: string): void;
  /** Progress inside the pair. */
  progress(done: number, total: number): void;
  /** Remove the bar. */
  stop(): void;
}

/**
 * @param pairs - how many (platform, workload) pairs will run
 * @returns the progress display, writing to stderr
 */
export function createProgress(pairs: number): Progress {
  const bar = new cliProgress.SingleBar(
    {
      format: 'iommu-sim |{bar}| {percentage}% {label}',
      stream: process.stderr,
      clearOnComplete: true,
      hideCursor: true,
      barsize: 30,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  const scale = 1000;
  let base = 0;
  bar.start(pairs * scale, 0, { label: '' });
  return {
    start(index, label) {
      base = index * scale;
      bar.update(base, { label });
    },
    progress(done, total) {
      if (total > 0) bar.update(base + Math.min(scale, Math.floor((done / total) * scale)));
    },
    stop() {
      bar.update(pairs * scale);
      bar.stop();
    },
  };
}
